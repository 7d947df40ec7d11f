//! JSON → protobuf: an object's JSON written as its Kubernetes message. Fields the message does
//! not have are left out (as a Go client would drop them when decoding the JSON).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::schema::{Field, FieldType, MapValue, MsgId, Scalar, Schema, Special};
use crate::wire::{put_bytes, put_key, put_nested, put_varint_field};
use crate::{Error, MAX_DEPTH};

pub struct Encoder<'s> {
    pub schema: &'s Schema,
    /// Leave out a field whose JSON does not fit its type instead of failing.
    pub lenient: bool,
}

fn mismatch(expected: &str, found: &Value) -> Error {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::Malformed { path: String::new(), message: format!("expected {expected}, found {found}") }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

impl Encoder<'_> {
    /// Writes the fields of message `id` from a JSON object.
    pub fn message(
        &self,
        id: MsgId,
        object: &Map<String, Value>,
        out: &mut Vec<u8>,
        depth: usize,
        path: &str,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { path: path.to_owned(), limit: MAX_DEPTH });
        }
        let message = self.schema.message(id);
        for field in &message.fields {
            let mark = out.len();
            let result = if field.inline {
                match field.ty {
                    FieldType::Message(inner) => put_nested(out, field.number, |o| {
                        self.message(inner, object, o, depth + 1, path)
                    }),
                    _ => Ok(()),
                }
            } else {
                match object.get(&field.json) {
                    None | Some(Value::Null) => Ok(()),
                    Some(value) => {
                        let field_path = join(path, &field.json);
                        self.field(field, value, out, depth, &field_path)
                            .map_err(|e| e.at(&field_path))
                    }
                }
            };
            if let Err(e) = result {
                if self.lenient && !matches!(e, Error::TooDeep { .. }) {
                    out.truncate(mark);
                } else {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn field(
        &self,
        field: &Field,
        value: &Value,
        out: &mut Vec<u8>,
        depth: usize,
        path: &str,
    ) -> Result<(), Error> {
        match field.ty {
            FieldType::Scalar(scalar) if field.repeated => {
                let Value::Array(items) = value else { return Err(mismatch("an array", value)) };
                for item in items {
                    scalar_field(out, field.number, scalar, item)?;
                }
                Ok(())
            }
            FieldType::Scalar(scalar) => scalar_field(out, field.number, scalar, value),
            FieldType::Message(id) if field.repeated => {
                let Value::Array(items) = value else { return Err(mismatch("an array", value)) };
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        put_bytes(out, field.number, &[]);
                        continue;
                    }
                    let item_path = format!("{path}[{i}]");
                    put_nested(out, field.number, |o| {
                        self.message_value(id, item, o, depth + 2, &item_path)
                    })
                    .map_err(|e| e.at(&item_path))?;
                }
                Ok(())
            }
            FieldType::Message(id) => {
                put_nested(out, field.number, |o| self.message_value(id, value, o, depth + 1, path))
            }
            FieldType::Map(key_type, value_type) => {
                let Value::Object(map) = value else { return Err(mismatch("an object", value)) };
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let item = &map[key];
                    let item_path = format!("{path}[{key}]");
                    put_nested(out, field.number, |o| {
                        scalar_field(o, 1, key_type, &Value::String(key.clone()))?;
                        match value_type {
                            MapValue::Scalar(s) => {
                                if !item.is_null() {
                                    scalar_field(o, 2, s, item)?;
                                }
                                Ok(())
                            }
                            MapValue::Message(id) => {
                                if item.is_null() {
                                    return Ok(());
                                }
                                put_nested(o, 2, |o| {
                                    self.message_value(id, item, o, depth + 2, &item_path)
                                })
                            }
                        }
                    })
                    .map_err(|e| e.at(&item_path))?;
                }
                Ok(())
            }
        }
    }

    /// Writes the content of one message from its JSON value (an object, or a special type's
    /// JSON form).
    pub fn message_value(
        &self,
        id: MsgId,
        value: &Value,
        out: &mut Vec<u8>,
        depth: usize,
        path: &str,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { path: path.to_owned(), limit: MAX_DEPTH });
        }
        let Some(special) = self.schema.message(id).special else {
            let Value::Object(object) = value else { return Err(mismatch("an object", value)) };
            return self.message(id, object, out, depth, path);
        };
        match special {
            Special::Time | Special::MicroTime => {
                let Value::String(s) = value else { return Err(mismatch("a timestamp", value)) };
                let (seconds, nanos) = parse_time(s).ok_or_else(|| Error::Malformed {
                    path: String::new(),
                    message: format!("{s:?} is not an RFC 3339 time"),
                })?;
                put_varint_field(out, 1, seconds as u64);
                put_varint_field(out, 2, i64::from(nanos) as u64);
            }
            Special::Duration => {
                let Value::String(s) = value else { return Err(mismatch("a duration", value)) };
                let nanos = crate::duration::parse(s).ok_or_else(|| Error::Malformed {
                    path: String::new(),
                    message: format!("{s:?} is not a duration"),
                })?;
                put_varint_field(out, 1, nanos as u64);
            }
            Special::Quantity => match value {
                Value::String(s) => put_bytes(out, 1, s.as_bytes()),
                Value::Number(n) => put_bytes(out, 1, n.to_string().as_bytes()),
                other => return Err(mismatch("a quantity", other)),
            },
            Special::IntOrString => match value {
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| mismatch("a 32-bit integer or a string", value))?;
                    put_varint_field(out, 1, 0);
                    put_varint_field(out, 2, i64::from(i) as u64);
                    put_bytes(out, 3, b"");
                }
                Value::String(s) => {
                    put_varint_field(out, 1, 1);
                    put_varint_field(out, 2, 0);
                    put_bytes(out, 3, s.as_bytes());
                }
                other => return Err(mismatch("an integer or a string", other)),
            },
            Special::RawJson => {
                let raw = serde_json::to_vec(value).map_err(|e| Error::Malformed {
                    path: String::new(),
                    message: e.to_string(),
                })?;
                put_bytes(out, 1, &raw);
            }
            Special::StringList => {
                let Value::Array(items) = value else { return Err(mismatch("an array", value)) };
                for item in items {
                    scalar_field(out, 1, Scalar::String, item)?;
                }
            }
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray => {
                let props = self
                    .schema
                    .by_name(
                        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
                    )
                    .ok_or_else(|| Error::Malformed {
                        path: String::new(),
                        message: "no JSONSchemaProps in the schema".into(),
                    })?;
                match (special, value) {
                    (Special::PropsOrBool, Value::Bool(b)) => {
                        put_varint_field(out, 1, u64::from(*b))
                    }
                    (Special::PropsOrBool, Value::Object(_)) => {
                        put_varint_field(out, 1, 1);
                        put_nested(out, 2, |o| {
                            self.message_value(props, value, o, depth + 1, path)
                        })?;
                    }
                    (_, Value::Object(_)) => {
                        put_nested(out, 1, |o| {
                            self.message_value(props, value, o, depth + 1, path)
                        })?;
                    }
                    (Special::PropsOrArray, Value::Array(items)) => {
                        for item in items {
                            put_nested(out, 2, |o| {
                                self.message_value(props, item, o, depth + 2, path)
                            })?;
                        }
                    }
                    (Special::PropsOrStringArray, Value::Array(items)) => {
                        for item in items {
                            scalar_field(out, 2, Scalar::String, item)?;
                        }
                    }
                    (_, other) => return Err(mismatch("a schema", other)),
                }
            }
        }
        Ok(())
    }
}

/// RFC 3339 → (Unix seconds, nanoseconds).
pub fn parse_time(s: &str) -> Option<(i64, i32)> {
    let seconds = apimachinery::time::parse_rfc3339(s)?;
    let mut nanos = 0i32;
    if let Some(frac) = s.get(19..).and_then(|r| r.strip_prefix('.')) {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).take(9).collect();
        let n: i32 = digits.parse().ok()?;
        nanos = n * 10i32.pow(9 - digits.len() as u32);
    }
    Some((seconds, nanos))
}

fn scalar_field(
    out: &mut Vec<u8>,
    number: u32,
    scalar: Scalar,
    value: &Value,
) -> Result<(), Error> {
    let int = || -> Result<i64, Error> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)
                })
                .ok_or_else(|| mismatch("an integer", value)),
            _ => Err(mismatch("an integer", value)),
        }
    };
    match scalar {
        Scalar::String => match value {
            Value::String(s) => put_bytes(out, number, s.as_bytes()),
            other => return Err(mismatch("a string", other)),
        },
        Scalar::Bytes => match value {
            Value::String(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
                    .map_err(|_| Error::Malformed {
                        path: String::new(),
                        message: "illegal base64 data".into(),
                    })?;
                put_bytes(out, number, &bytes);
            }
            other => return Err(mismatch("a base64 string", other)),
        },
        Scalar::Bool => match value {
            Value::Bool(b) => put_varint_field(out, number, u64::from(*b)),
            other => return Err(mismatch("a boolean", other)),
        },
        Scalar::Int32 => {
            let i = int()?;
            let i = i32::try_from(i).map_err(|_| mismatch("a 32-bit integer", value))?;
            put_varint_field(out, number, i64::from(i) as u64);
        }
        Scalar::Int64 => put_varint_field(out, number, int()? as u64),
        Scalar::Uint32 => {
            let i =
                u32::try_from(int()?).map_err(|_| mismatch("an unsigned 32-bit integer", value))?;
            put_varint_field(out, number, u64::from(i));
        }
        Scalar::Uint64 => {
            let u = match value {
                Value::Number(n) => {
                    n.as_u64().ok_or_else(|| mismatch("an unsigned integer", value))?
                }
                other => return Err(mismatch("an unsigned integer", other)),
            };
            put_varint_field(out, number, u);
        }
        Scalar::Sint32 | Scalar::Sint64 => {
            let i = int()?;
            put_varint_field(out, number, ((i << 1) ^ (i >> 63)) as u64);
        }
        Scalar::Fixed32 | Scalar::Sfixed32 => {
            put_key(out, number, 5);
            out.extend_from_slice(&(int()? as u32).to_le_bytes());
        }
        Scalar::Fixed64 | Scalar::Sfixed64 => {
            put_key(out, number, 1);
            out.extend_from_slice(&(int()? as u64).to_le_bytes());
        }
        Scalar::Double | Scalar::Float => {
            let f = value.as_f64().ok_or_else(|| mismatch("a number", value))?;
            if scalar == Scalar::Double {
                put_key(out, number, 1);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            } else {
                put_key(out, number, 5);
                out.extend_from_slice(&(f as f32).to_bits().to_le_bytes());
            }
        }
    }
    Ok(())
}
