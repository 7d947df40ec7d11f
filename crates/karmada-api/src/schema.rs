//! OpenAPI v3 (structural) schemas generated from the types, as a CustomResourceDefinition's
//! `openAPIV3Schema` wants them: every subschema inlined, free-form values marked
//! `x-kubernetes-preserve-unknown-fields`, Work manifests marked as embedded resources, and
//! `metadata` left to the API server. The API server prunes, validates and publishes
//! (`kubectl explain`) with these; `karmada crds` prints them as CRD manifests.

use kube_core::schema::{OptionalEnum, OptionalIntOrString, StructuralSchemaRewriter};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

/// The structural schema of a top-level kind.
pub fn of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(OptionalEnum)
        .with_transform(OptionalIntOrString)
        .with_transform(StructuralSchemaRewriter)
        .into_generator();
    let root = generator.into_root_schema_for::<T>();
    let mut schema = serde_json::to_value(root).unwrap_or_else(|_| json!({"type": "object"}));
    if let Some(map) = schema.as_object_mut() {
        map.remove("title");
        map.remove("$schema");
        map.remove("definitions");
        map.remove("$defs");
        map.remove("components");
        map.insert("type".into(), json!("object"));
    }
    structural(&mut schema);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase."}),
        );
        props.insert("metadata".into(), json!({"type": "object"}));
    }
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
        if required.is_empty() {
            schema.as_object_mut().map(|m| m.remove("required"));
        }
    }
    schema
}

/// Rewrites what schemars emits into what Kubernetes accepts as a structural schema.
fn structural(schema: &mut Value) {
    match schema {
        // `true` (anything) from `serde_json::Value` fields; an untyped node (e.g. an optional
        // `Value`) is marked below.
        Value::Bool(true) => *schema = json!({"x-kubernetes-preserve-unknown-fields": true}),
        Value::Object(map) => {
            // serde's defaults are the types' business: the server does not apply them.
            map.remove("default");
            // Kubernetes knows int32/int64 only; unsigned ints keep their minimum of 0.
            match map.get("format").and_then(Value::as_str) {
                Some("uint32" | "uint16" | "uint8") => {
                    map.insert("format".into(), json!("int32"));
                }
                Some("uint64" | "uint" | "int" | "uint128" | "int128") => {
                    map.insert("format".into(), json!("int64"));
                }
                _ => {}
            }
            if let Some(min) = map.get("minimum").and_then(Value::as_f64)
                && min.fract() == 0.0
            {
                map.insert("minimum".into(), json!(min as i64));
            }
            if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
                for child in props.values_mut() {
                    structural(child);
                }
            }
            for key in ["items", "additionalProperties"] {
                if let Some(child) = map.get_mut(key)
                    && !child.is_boolean()
                {
                    structural(child);
                }
            }
            for key in ["allOf", "anyOf", "oneOf"] {
                if let Some(list) = map.get_mut(key).and_then(Value::as_array_mut) {
                    for child in list {
                        structural(child);
                    }
                }
            }
            let typed = [
                "type",
                "properties",
                "items",
                "additionalProperties",
                "allOf",
                "anyOf",
                "oneOf",
                "enum",
                "$ref",
            ]
            .iter()
            .any(|k| map.contains_key(*k))
                || map.keys().any(|k| k.starts_with("x-kubernetes-"));
            if !typed {
                map.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            }
        }
        _ => {}
    }
}

/// `Work.spec.workload.manifests`: complete Kubernetes objects of any kind.
pub fn embedded_resources(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// A CustomResourceDefinition (apiextensions.k8s.io/v1) for a kind, as upstream ships them.
pub fn crd(kind: &crate::kinds::Kind) -> Value {
    let versions: Vec<Value> = kind
        .versions
        .iter()
        .enumerate()
        .map(|(i, version)| {
            let columns: Vec<Value> = kind
                .columns
                .iter()
                .map(|(name, type_, path, priority, _)| {
                    let mut c = json!({"name": name, "type": type_, "jsonPath": path});
                    if *priority != 0 {
                        c["priority"] = json!(priority);
                    }
                    c
                })
                .collect();
            let mut v = json!({
                "name": version,
                "served": true,
                "storage": i == 0,
                "schema": {"openAPIV3Schema": kind.schema_of(version)},
                "additionalPrinterColumns": columns,
            });
            if kind.status {
                v["subresources"] = json!({"status": {}});
            }
            v
        })
        .collect();
    let singular = kind.kind.to_lowercase();
    let mut names = json!({
        "kind": kind.kind,
        "listKind": format!("{}List", kind.kind),
        "plural": kind.plural,
        "singular": singular,
        "categories": [crate::kinds::CATEGORY],
    });
    if !kind.short_names.is_empty() {
        names["shortNames"] = json!(kind.short_names);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", kind.plural, kind.group)},
        "spec": {
            "group": kind.group,
            "names": names,
            "scope": if kind.namespaced { "Namespaced" } else { "Cluster" },
            "versions": versions,
        }
    })
}
