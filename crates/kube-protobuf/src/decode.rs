//! Protobuf → JSON: a message read with its schema becomes the JSON the same Go object would
//! marshal to (JSON names, inline structs, `omitempty` zeros left out, pointers' zeros kept, the
//! special types in their JSON forms).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::schema::{Field, FieldType, MapValue, MsgId, Scalar, Schema, Special};
use crate::wire::{Reader, WireValue};
use crate::{Error, MAX_DEPTH};

/// What decoding noticed besides the object: fields the schema does not know.
#[derive(Default)]
pub struct Notes {
    /// `path (field N)` of each unknown field, in wire order.
    pub unknown: Vec<String>,
}

pub struct Decoder<'s> {
    pub schema: &'s Schema,
    pub notes: Notes,
}

fn malformed(message: impl Into<String>) -> Error {
    Error::Malformed { path: String::new(), message: message.into() }
}

impl<'s> Decoder<'s> {
    pub fn new(schema: &'s Schema) -> Decoder<'s> {
        Decoder { schema, notes: Notes::default() }
    }

    /// Decodes message `id` from `buf` into `out` (merging into what is there).
    pub fn message(
        &mut self,
        id: MsgId,
        buf: &[u8],
        out: &mut Map<String, Value>,
        depth: usize,
        path: &str,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { path: path.to_owned(), limit: MAX_DEPTH });
        }
        let schema = self.schema;
        let message = schema.message(id);
        let mut reader = Reader::new(buf);
        loop {
            let (number, value) = match reader.field() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Error::Malformed {
                        path: path.to_owned(),
                        message: format!("{e} in {}", message.name),
                    });
                }
            };
            let Some(field) = message.field(number) else {
                self.notes.unknown.push(format!(
                    "{}(field {number} of {})",
                    if path.is_empty() { String::new() } else { format!("{path} ") },
                    message.name
                ));
                continue;
            };
            let field_path = if field.inline {
                path.to_owned()
            } else if path.is_empty() {
                field.json.clone()
            } else {
                format!("{path}.{}", field.json)
            };
            self.field(field, value, out, depth, &field_path).map_err(|e| e.at(&field_path))?;
        }
    }

    fn field(
        &mut self,
        field: &Field,
        value: WireValue<'_>,
        out: &mut Map<String, Value>,
        depth: usize,
        path: &str,
    ) -> Result<(), Error> {
        match field.ty {
            FieldType::Scalar(scalar) => {
                if field.repeated {
                    let list = array_at(out, &field.json);
                    match (value, scalar.wire_type()) {
                        // Packed numbers.
                        (WireValue::Bytes(bytes), wt) if wt != 2 => {
                            let mut r = Reader::new(bytes);
                            while !r.is_empty() {
                                let v = match wt {
                                    0 => WireValue::Varint(
                                        r.varint().map_err(|e| malformed(e.to_string()))?,
                                    ),
                                    1 => WireValue::Fixed64(
                                        r.fixed64().map_err(|e| malformed(e.to_string()))?,
                                    ),
                                    _ => WireValue::Fixed32(
                                        r.fixed32().map_err(|e| malformed(e.to_string()))?,
                                    ),
                                };
                                list.push(scalar_value(scalar, v)?);
                            }
                        }
                        (v, _) => list.push(scalar_value(scalar, v)?),
                    }
                    return Ok(());
                }
                let v = scalar_value(scalar, value)?;
                if !field.pointer && field.omitempty && is_zero(&v) {
                    out.remove(&field.json);
                } else {
                    out.insert(field.json.clone(), v);
                }
                Ok(())
            }
            FieldType::Message(id) => {
                let WireValue::Bytes(bytes) = value else {
                    return Err(malformed(format!(
                        "expected a length-delimited message, found {}",
                        value.wire_name()
                    )));
                };
                if field.inline {
                    return self.message(id, bytes, out, depth + 1, path);
                }
                if field.repeated {
                    let item = self.message_value(id, bytes, depth + 2, path)?;
                    array_at(out, &field.json).push(item.unwrap_or(Value::Null));
                    return Ok(());
                }
                if self.schema.message(id).special.is_none()
                    && let Some(Value::Object(existing)) = out.get_mut(&field.json)
                {
                    // A message field seen twice is merged, as protobuf does.
                    let mut merged = std::mem::take(existing);
                    self.message(id, bytes, &mut merged, depth + 1, path)?;
                    out.insert(field.json.clone(), Value::Object(merged));
                    return Ok(());
                }
                match self.message_value(id, bytes, depth + 1, path)? {
                    Some(v) => out.insert(field.json.clone(), v),
                    None => out.remove(&field.json),
                };
                Ok(())
            }
            FieldType::Map(key_type, value_type) => {
                let WireValue::Bytes(entry) = value else {
                    return Err(malformed("expected a length-delimited map entry"));
                };
                let mut key = None;
                let mut item = None;
                let mut r = Reader::new(entry);
                while let Some((n, v)) = r.field().map_err(|e| malformed(e.to_string()))? {
                    match n {
                        1 => key = Some(scalar_value(key_type, v)?),
                        2 => {
                            item = Some(match value_type {
                                MapValue::Scalar(s) => Some(scalar_value(s, v)?),
                                MapValue::Message(id) => {
                                    let WireValue::Bytes(b) = v else {
                                        return Err(malformed(
                                            "expected a length-delimited map value",
                                        ));
                                    };
                                    self.message_value(id, b, depth + 2, path)?
                                }
                            })
                        }
                        _ => {}
                    }
                }
                let key = match key {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let item = match (item, value_type) {
                    (Some(Some(v)), _) => v,
                    (Some(None), _) => Value::Null,
                    (None, MapValue::Scalar(s)) => zero(s),
                    (None, MapValue::Message(id)) => {
                        self.message_value(id, &[], depth + 2, path)?.unwrap_or(Value::Null)
                    }
                };
                object_at(out, &field.json).insert(key, item);
                Ok(())
            }
        }
    }

    /// The JSON of one message value (`None`: Go would marshal it as `null`).
    pub fn message_value(
        &mut self,
        id: MsgId,
        bytes: &[u8],
        depth: usize,
        path: &str,
    ) -> Result<Option<Value>, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { path: path.to_owned(), limit: MAX_DEPTH });
        }
        let schema = self.schema;
        let Some(special) = schema.message(id).special else {
            let mut map = Map::new();
            self.message(id, bytes, &mut map, depth, path)?;
            return Ok(Some(Value::Object(map)));
        };
        let fields = raw_fields(bytes)?;
        let int = |n: u32| -> i64 {
            fields
                .iter()
                .rev()
                .find_map(|(f, v)| match v {
                    WireValue::Varint(x) if *f == n => Some(*x as i64),
                    _ => None,
                })
                .unwrap_or(0)
        };
        let bytes_of = |n: u32| -> Option<&[u8]> {
            fields.iter().rev().find_map(|(f, v)| match v {
                WireValue::Bytes(b) if *f == n => Some(*b),
                _ => None,
            })
        };
        let string = |n: u32| -> String {
            bytes_of(n).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
        };
        Ok(match special {
            Special::Time | Special::MicroTime => {
                let (seconds, nanos) = (int(1), int(2) as i32);
                if seconds == 0 && nanos == 0 {
                    None
                } else if special == Special::Time {
                    Some(Value::String(apimachinery::time::format_rfc3339(seconds)))
                } else {
                    Some(Value::String(apimachinery::time::format_rfc3339_micros(
                        seconds.saturating_mul(1_000_000) + i64::from(nanos / 1000),
                    )))
                }
            }
            Special::Duration => Some(Value::String(crate::duration::format(int(1)))),
            Special::Quantity => {
                let s = string(1);
                Some(Value::String(if s.is_empty() { "0".to_owned() } else { s }))
            }
            Special::IntOrString => Some(if int(1) == 1 {
                Value::String(string(3))
            } else {
                Value::from(int(2) as i32)
            }),
            Special::RawJson => match bytes_of(1) {
                None | Some([]) => None,
                Some(raw) => Some(self.raw_json(raw, depth, path)?),
            },
            Special::StringList => Some(Value::Array(
                fields
                    .iter()
                    .filter_map(|(f, v)| match v {
                        WireValue::Bytes(b) if *f == 1 => {
                            Some(Value::String(String::from_utf8_lossy(b).into_owned()))
                        }
                        _ => None,
                    })
                    .collect(),
            )),
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray => {
                let props = schema
                    .by_name(
                        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
                    )
                    .ok_or_else(|| malformed("no JSONSchemaProps in the schema"))?;
                let (schema_field, other_field) = match special {
                    Special::PropsOrBool => (2, 1),
                    _ => (1, 2),
                };
                if let Some(b) = bytes_of(schema_field) {
                    self.message_value(props, b, depth + 1, path)?
                } else if special == Special::PropsOrBool {
                    Some(Value::Bool(int(other_field) != 0))
                } else {
                    let mut items = Vec::new();
                    for (f, v) in &fields {
                        if let (n, WireValue::Bytes(b)) = (*f, v)
                            && n == other_field
                        {
                            items.push(if special == Special::PropsOrArray {
                                self.message_value(props, b, depth + 2, path)?
                                    .unwrap_or(Value::Null)
                            } else {
                                Value::String(String::from_utf8_lossy(b).into_owned())
                            });
                        }
                    }
                    Some(Value::Array(items))
                }
            }
        })
    }

    /// Embedded raw bytes: JSON (what clients put there), or a nested protobuf object.
    fn raw_json(&mut self, raw: &[u8], depth: usize, path: &str) -> Result<Value, Error> {
        if raw.starts_with(crate::MAGIC) {
            return crate::decode_envelope(self, raw, depth + 1);
        }
        let mut de = serde_json::Deserializer::from_slice(raw);
        let value = serde::Deserialize::deserialize(&mut de)
            .and_then(|v: Value| de.end().map(|()| v))
            .map_err(|e| Error::Malformed {
                path: path.to_owned(),
                message: format!("embedded raw data is not JSON: {e}"),
            })?;
        Ok(value)
    }
}

fn raw_fields(bytes: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, Error> {
    let mut out = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some(f) = r.field().map_err(|e| malformed(e.to_string()))? {
        out.push(f);
    }
    Ok(out)
}

fn array_at<'m>(out: &'m mut Map<String, Value>, key: &str) -> &'m mut Vec<Value> {
    let slot = out.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

fn object_at<'m>(out: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = out.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn zero(scalar: Scalar) -> Value {
    match scalar {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

fn scalar_value(scalar: Scalar, value: WireValue<'_>) -> Result<Value, Error> {
    let mismatch = || {
        malformed(format!(
            "expected {} for a {scalar:?} field, found {}",
            match scalar.wire_type() {
                0 => "a varint",
                1 => "fixed64",
                2 => "length-delimited bytes",
                _ => "fixed32",
            },
            value.wire_name()
        ))
    };
    Ok(match (scalar, value) {
        (Scalar::String, WireValue::Bytes(b)) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        (Scalar::Bytes, WireValue::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Scalar::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, WireValue::Varint(v)) => Value::from(v as i64 as i32),
        (Scalar::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Scalar::Uint32, WireValue::Varint(v)) => Value::from(v as u32),
        (Scalar::Uint64, WireValue::Varint(v)) => Value::from(v),
        (Scalar::Sint32, WireValue::Varint(v)) => {
            Value::from(((v >> 1) as i64 ^ -((v & 1) as i64)) as i32)
        }
        (Scalar::Sint64, WireValue::Varint(v)) => Value::from((v >> 1) as i64 ^ -((v & 1) as i64)),
        (Scalar::Fixed32, WireValue::Fixed32(v)) => Value::from(v),
        (Scalar::Sfixed32, WireValue::Fixed32(v)) => Value::from(v as i32),
        (Scalar::Fixed64, WireValue::Fixed64(v)) => Value::from(v),
        (Scalar::Sfixed64, WireValue::Fixed64(v)) => Value::from(v as i64),
        (Scalar::Double, WireValue::Fixed64(v)) => float(f64::from_bits(v))?,
        (Scalar::Float, WireValue::Fixed32(v)) => float(f64::from(f32::from_bits(v)))?,
        _ => return Err(mismatch()),
    })
}

/// A float as Go's JSON writes it: integral values without a fraction.
fn float(f: f64) -> Result<Value, Error> {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Ok(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| malformed(format!("{f} cannot be represented in JSON")))
}
