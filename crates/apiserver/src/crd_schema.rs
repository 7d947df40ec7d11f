//! CustomResourceDefinitions as data: turning a CRD into served resources (and the registry
//! kept in step with written CRDs), and the structural-schema validation and pruning of custom
//! resources. Pure: the storage core calls it on writes; `crd` is the controller.

use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::object::{self};
use apimachinery::{ApiError, Cause};
use serde_json::{Value, json};

use crate::registry::{Column, Printer, Registry, ResourceDef, ScaleDef};
use crate::table::default_crd_columns;

pub const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

fn strings(v: &Value, path: &str) -> Vec<String> {
    v.pointer(path)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The resources a CRD serves (one per served version).
pub fn defs_from_crd(crd: &Value) -> Vec<ResourceDef> {
    let group = s(crd, "/spec/group").unwrap_or_default().to_owned();
    let plural = s(crd, "/spec/names/plural").unwrap_or_default().to_owned();
    let kind = s(crd, "/spec/names/kind").unwrap_or_default().to_owned();
    let singular =
        s(crd, "/spec/names/singular").map(str::to_owned).unwrap_or_else(|| kind.to_lowercase());
    let namespaced = s(crd, "/spec/scope") != Some("Cluster");
    let versions =
        crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| {
            let columns: Vec<Column> = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| Column {
                            name: c
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            type_: c
                                .get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("string")
                                .to_owned(),
                            format: c
                                .get("format")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: c
                                .get("jsonPath")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            default_value: None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let columns = if columns.is_empty() { default_crd_columns() } else { columns };
            let scale = v.pointer("/subresources/scale").map(|sc| ScaleDef {
                spec_replicas_path: s(sc, "/specReplicasPath")
                    .unwrap_or(".spec.replicas")
                    .to_owned(),
                status_replicas_path: s(sc, "/statusReplicasPath")
                    .unwrap_or(".status.replicas")
                    .to_owned(),
                label_selector_path: s(sc, "/labelSelectorPath").map(str::to_owned),
            });
            ResourceDef {
                group: group.clone(),
                version: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(crd, "/spec/names/shortNames"),
                categories: strings(crd, "/spec/names/categories"),
                status: v.pointer("/subresources/status").is_some(),
                scale,
                generation: true,
                printer: Printer::Columns(columns),
                strategic: false,
                schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
                custom: true,
                storage_version: storage_version.clone(),
                protobuf: false,
                openapi: None,
                stored_as: None,
                conversion: None,
                verbs: crate::registry::Verbs::All,
            }
        })
        .collect()
}

/// Validates a CRD object (what the apiextensions strategy checks).
pub fn validate_crd(crd: &Value) -> Result<(), ApiError> {
    let name = object::name(crd);
    let mut causes = Vec::new();
    let group = s(crd, "/spec/group").unwrap_or_default();
    let plural = s(crd, "/spec/names/plural").unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::required("spec.group", ""));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural", ""));
    }
    if s(crd, "/spec/names/kind").unwrap_or_default().is_empty() {
        causes.push(Cause::required("spec.names.kind", ""));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match s(crd, "/spec/scope") {
        Some("Namespaced" | "Cluster") => {}
        other => causes.push(Cause::not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions =
        crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage =
        versions.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true)).count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(storage),
            "must have exactly one version marked as storage version",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes))
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
}

/// Removes fields the schema does not know (unless preserved) and returns their paths.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Value::Object(map) = object {
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&key)) {
                Some(child) => {
                    if let Some(v) = map.get_mut(&key) {
                        prune_value(child, v, &key, &mut unknown);
                    }
                }
                None if preserves_unknown(schema) => {}
                None => {
                    map.remove(&key);
                    unknown.push(key);
                }
            }
        }
    }
    unknown
}

fn prune_value(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if preserves_unknown(schema) && schema.get("properties").is_none() {
        return;
    }
    if schema.get("x-kubernetes-embedded-resource").and_then(Value::as_bool) == Some(true) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = format!("{path}.{key}");
                let child_schema = props
                    .and_then(|p| p.get(&key))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match child_schema {
                    Some(cs) => {
                        if let Some(v) = map.get_mut(&key) {
                            prune_value(cs, v, &child_path, unknown);
                        }
                    }
                    None if additional == Some(&Value::Bool(true)) || preserves_unknown(schema) => {
                    }
                    None if props.is_none() && additional.is_none() => {}
                    None => {
                        map.remove(&key);
                        unknown.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Validates a custom resource against its structural schema (types, required, enums, bounds).
pub fn validate(schema: &Value, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let (Some(props), Some(map)) =
        (schema.get("properties").and_then(Value::as_object), object.as_object())
    {
        for (key, child) in props {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(v) = map.get(key) {
                check(child, v, key, &mut causes);
            }
        }
        for required in strings(schema, "/required") {
            if !matches!(required.as_str(), "apiVersion" | "kind" | "metadata")
                && !map.contains_key(&required)
            {
                causes.push(Cause::required(required, ""));
            }
        }
    }
    causes
}

fn check(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true)
            && schema.get("type").is_some()
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        if !matches!(object::json_type(value), "integer" | "string") {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body must be of type integer-or-string"),
            ));
        }
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = object::json_type(value);
        let ok = actual == expected || (expected == "number" && actual == "integer");
        if !ok {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body must be of type {expected}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let supported: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map(str::to_owned).unwrap_or_else(|| o.to_string()))
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        causes.push(Cause::not_supported(path, value, &refs));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body should be greater than or equal to {min}"),
            ));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body should be less than or equal to {max}"),
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body should be at most {max} chars long"),
            ));
        }
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, v) in map {
                let child = props
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child) = child {
                    check(child, v, &format!("{path}.{key}"), causes);
                }
            }
            for required in strings(schema, "/required") {
                if !map.contains_key(&required) {
                    causes.push(Cause::required(format!("{path}.{required}"), ""));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    &format!("{path} in body should have at most {max} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn owner_of(crd: &Value) -> String {
    format!("crd:{}", object::name(crd))
}

/// Serves (or stops serving) a CRD's resources right away.
pub fn sync_registry(
    registry: &Registry,
    served_crds: &HashMap<String, Value>,
    crd: &Value,
    deleted: bool,
) {
    // A kind the server serves itself keeps its own definition whatever its CRD object says.
    if served_crds.contains_key(object::name(crd)) {
        return;
    }
    if deleted {
        registry.unregister(&owner_of(crd));
    } else {
        registry.register(&owner_of(crd), defs_from_crd(crd));
    }
}
