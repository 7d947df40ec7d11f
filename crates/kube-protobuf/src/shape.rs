//! The JSON shape of a built-in kind, checked as Go's decoder reads it into the kind's struct:
//! a field the type does not have is dropped (and reported, for `fieldValidation`), a value of
//! the wrong JSON type is an error naming the field. `null` is accepted anywhere (Go leaves the
//! field at its zero value).

use apimachinery::object::json_type;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::schema::{FieldType, MapValue, MsgId, Scalar, Schema, Special};

/// A value whose JSON type does not fit its field.
#[derive(Clone, Debug, PartialEq)]
pub struct WrongType {
    /// `spec.replicas`
    pub path: String,
    /// The offending value.
    pub value: Value,
    /// What was expected, as Kubernetes words schema errors (`must be of type integer`).
    pub detail: String,
}

#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Paths of fields the kind does not have, removed from the object.
    pub unknown: Vec<String>,
    pub wrong: Vec<WrongType>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

struct Checker<'s> {
    schema: &'s Schema,
    report: Report,
}

impl Checker<'_> {
    fn wrong(&mut self, path: &str, value: &Value, expected: &str) {
        self.report.wrong.push(WrongType {
            path: path.to_owned(),
            value: value.clone(),
            detail: format!("{path} in body must be of type {expected}: \"{}\"", json_type(value)),
        });
    }

    fn invalid(&mut self, path: &str, value: &Value, detail: String) {
        self.report.wrong.push(WrongType { path: path.to_owned(), value: value.clone(), detail });
    }

    /// Checks an object against message `id`; `top` skips `apiVersion` and `kind`.
    fn object(
        &mut self,
        id: MsgId,
        map: &mut Map<String, Value>,
        path: &str,
        top: bool,
        only: Option<&str>,
    ) {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if top && matches!(key.as_str(), "apiVersion" | "kind") {
                continue;
            }
            if only.is_some_and(|o| o != key) {
                continue;
            }
            let child_path = join(path, &key);
            match self.schema.json_field(id, &key) {
                Some((ty, repeated)) => {
                    if let Some(value) = map.get_mut(&key) {
                        self.value(ty, repeated, value, &child_path);
                    }
                }
                None => {
                    map.remove(&key);
                    self.report.unknown.push(child_path);
                }
            }
        }
    }

    fn value(&mut self, ty: FieldType, repeated: bool, value: &mut Value, path: &str) {
        if value.is_null() {
            return;
        }
        if repeated {
            let Value::Array(items) = value else { return self.wrong(path, value, "array") };
            for (i, item) in items.iter_mut().enumerate() {
                self.value(ty, false, item, &format!("{path}[{i}]"));
            }
            return;
        }
        match ty {
            FieldType::Scalar(s) => self.scalar(s, value, path),
            FieldType::Message(id) => self.message(id, value, path),
            FieldType::Map(_, item) => {
                let Value::Object(map) = value else { return self.wrong(path, value, "object") };
                for (k, v) in map.iter_mut() {
                    let p = format!("{path}[{k}]");
                    match item {
                        MapValue::Scalar(s) if !v.is_null() => self.scalar(s, v, &p),
                        MapValue::Message(id) if !v.is_null() => self.message(id, v, &p),
                        _ => {}
                    }
                }
            }
        }
    }

    fn scalar(&mut self, scalar: Scalar, value: &Value, path: &str) {
        match scalar {
            Scalar::String => {
                if !value.is_string() {
                    self.wrong(path, value, "string");
                }
            }
            Scalar::Bytes => match value {
                Value::String(s) => {
                    if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                        self.invalid(
                            path,
                            value,
                            format!("{path} in body must be base64-encoded data"),
                        );
                    }
                }
                _ => self.wrong(path, value, "string"),
            },
            Scalar::Bool => {
                if !value.is_boolean() {
                    self.wrong(path, value, "boolean");
                }
            }
            Scalar::Double | Scalar::Float => {
                if !value.is_number() {
                    self.wrong(path, value, "number");
                }
            }
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => match value.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => {}
                Some(_) => {
                    self.invalid(path, value, format!("{path} in body must fit a 32-bit integer"))
                }
                None => self.wrong(path, value, "integer"),
            },
            Scalar::Uint32 | Scalar::Fixed32 => match value.as_u64() {
                Some(i) if u32::try_from(i).is_ok() => {}
                _ => self.wrong(path, value, "integer"),
            },
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => {
                if value.as_i64().is_none() {
                    self.wrong(path, value, "integer");
                }
            }
            Scalar::Uint64 | Scalar::Fixed64 => {
                if value.as_u64().is_none() {
                    self.wrong(path, value, "integer");
                }
            }
        }
    }

    fn message(&mut self, id: MsgId, value: &mut Value, path: &str) {
        let Some(special) = self.schema.message(id).special else {
            match value {
                Value::Object(map) => self.object(id, map, path, false, None),
                other => self.wrong(path, other, "object"),
            }
            return;
        };
        let props = || {
            self.schema
                .by_name("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
        };
        match special {
            Special::Time | Special::MicroTime => match &*value {
                Value::String(s) => {
                    if crate::encode::parse_time(s).is_none() {
                        let detail = format!("{path} in body must be of type date-time: {s:?}");
                        self.invalid(path, value, detail);
                    }
                }
                other => self.wrong(path, other, "string"),
            },
            Special::Duration => match &*value {
                Value::String(s) => {
                    if crate::duration::parse(s).is_none() {
                        let detail = format!("{path} in body must be a duration: {s:?}");
                        self.invalid(path, value, detail);
                    }
                }
                other => self.wrong(path, other, "string"),
            },
            Special::Quantity => match value {
                Value::String(s) => {
                    if apimachinery::quantity::parse_milli(s).is_none() {
                        self.invalid(
                            path,
                            value,
                            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".to_owned(),
                        );
                    }
                }
                Value::Number(_) => {}
                other => self.wrong(path, other, "integer-or-string"),
            },
            Special::IntOrString => {
                if !matches!(json_type(value), "integer" | "string") {
                    self.wrong(path, value, "integer-or-string");
                }
            }
            Special::RawJson => {}
            Special::StringList => match value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_string() && !item.is_null() {
                            self.wrong(&format!("{path}[{i}]"), item, "string");
                        }
                    }
                }
                other => self.wrong(path, other, "array"),
            },
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray => {
                let Some(props) = props() else { return };
                if value.is_object() {
                    return self.message(props, value, path);
                }
                match (special, value) {
                    (Special::PropsOrBool, Value::Bool(_)) => {}
                    (Special::PropsOrArray, Value::Array(items)) => {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.message(props, item, &format!("{path}[{i}]"));
                        }
                    }
                    (Special::PropsOrStringArray, Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if !item.is_string() {
                                self.wrong(&format!("{path}[{i}]"), item, "string");
                            }
                        }
                    }
                    (Special::PropsOrBool, other) => self.wrong(path, other, "object or boolean"),
                    (_, other) => self.wrong(path, other, "object or array"),
                }
            }
        }
    }
}

/// Checks a built-in object (its `apiVersion` and `kind` name the type) as Go's decoder would,
/// removing fields the type does not have. `only` limits the check to one top-level field
/// (`status` for status writes). `None` when the kind is not a built-in.
pub fn check(object: &mut Value, only: Option<&str>) -> Option<Report> {
    let schema = Schema::get();
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let id = schema.kind(api_version, kind)?;
    let mut checker = Checker { schema, report: Report::default() };
    if let Value::Object(map) = object {
        checker.object(id, map, "", true, only);
    }
    Some(checker.report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_removed_and_types_checked() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"replicas": "three", "replica": 2, "paused": null,
                "selector": {"matchLabels": {"a": 1}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1.5}},
                "template": {"spec": {"containers": "notalist",
                    "volumes": [{"name": "v", "configMap": {"name": "c", "nope": true}}]}}}});
        let report = check(&mut d, None).unwrap();
        assert_eq!(
            report.unknown,
            ["metadata.bogus", "spec.replica", "spec.template.spec.volumes[0].configMap.nope"]
        );
        assert!(d["spec"].get("replica").is_none() && d["metadata"].get("bogus").is_none());
        let wrong: Vec<(&str, &str)> =
            report.wrong.iter().map(|w| (w.path.as_str(), w.detail.as_str())).collect();
        assert_eq!(
            wrong,
            [
                ("spec.replicas", "spec.replicas in body must be of type integer: \"string\""),
                (
                    "spec.selector.matchLabels[a]",
                    "spec.selector.matchLabels[a] in body must be of type string: \"integer\""
                ),
                (
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "spec.strategy.rollingUpdate.maxUnavailable in body must be of type integer-or-string: \"number\""
                ),
                (
                    "spec.template.spec.containers",
                    "spec.template.spec.containers in body must be of type array: \"string\""
                ),
            ]
        );
    }

    #[test]
    fn special_types_and_inline_fields() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": null},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"port": "http"}, "periodSeconds": 3}}],
                "volumes": [{"name": "v", "secret": {"secretName": "s"}}]},
            "status": {"startTime": "2026-12-06T08:30:15Z"}});
        assert_eq!(check(&mut pod, None).unwrap(), Report::default());
        let mut bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"},
            "spec": {"containers": [{"resources": {"limits": {"cpu": "lots"}}}]}});
        let report = check(&mut bad, None).unwrap();
        assert_eq!(report.wrong.len(), 2, "{report:?}");
        let mut secret =
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}});
        assert_eq!(check(&mut secret, None).unwrap().wrong[0].path, "data[k]");
        // Status writes check the status only.
        let mut status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"x": 1}, "status": {"replicas": "1"}});
        let report = check(&mut status, Some("status")).unwrap();
        assert!(report.unknown.is_empty());
        assert_eq!(report.wrong[0].path, "status.replicas");
        // Kinds that are not built in are not checked.
        assert!(check(&mut json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy"}), None).is_none());
    }
}
