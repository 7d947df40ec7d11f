//! Discovery documents (legacy lists and aggregated v2/v2beta1), `/version`, and OpenAPI.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceDef};

fn subresource_verbs() -> Value {
    json!(["get", "patch", "update"])
}

/// `/version`.
pub fn version(git_version: &str) -> Value {
    let minor = git_version.trim_start_matches('v').split('.').nth(1).unwrap_or("32").to_owned();
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api` (legacy form).
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn group_entry(registry: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = registry
        .group_versions(group)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `/apis` (legacy form).
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| group_entry(registry, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    if name.is_empty() || !registry.groups().iter().any(|g| g == name) {
        return None;
    }
    let mut entry = group_entry(registry, name);
    entry["kind"] = "APIGroup".into();
    entry["apiVersion"] = "v1".into();
    Some(entry)
}

/// `/api/v1` and `/apis/<g>/<v>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> =
        registry.all().into_iter().filter(|d| d.group == group && d.version == version).collect();
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for def in &defs {
        let mut entry = json!({
            "name": def.plural, "singularName": def.singular, "namespaced": def.namespaced,
            "kind": def.kind, "verbs": def.verbs.names(),
        });
        if !def.short_names.is_empty() {
            entry["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            entry["categories"] = json!(def.categories);
        }
        resources.push(entry);
        if def.status {
            resources.push(json!({"name": format!("{}/status", def.plural), "singularName": "",
                "namespaced": def.namespaced, "kind": def.kind, "verbs": subresource_verbs()}));
        }
        if def.scale.is_some() {
            resources.push(json!({"name": format!("{}/scale", def.plural), "singularName": "",
                "namespaced": def.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": subresource_verbs()}));
        }
        for (sub, group, version, kind, verbs) in action_subresources(def) {
            resources.push(json!({"name": format!("{}/{sub}", def.plural), "singularName": "",
                "namespaced": def.namespaced, "group": group, "version": version, "kind": kind,
                "verbs": verbs}));
        }
    }
    let group_version =
        if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// Subresources that answer with another kind: (name, group, version, kind, verbs).
fn action_subresources(
    def: &ResourceDef,
) -> &'static [(&'static str, &'static str, &'static str, &'static str, &'static [&'static str])] {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => &[("eviction", "policy", "v1", "Eviction", &["create"])],
        ("", "serviceaccounts") => {
            &[("token", "authentication.k8s.io", "v1", "TokenRequest", &["create"])]
        }
        _ => &[],
    }
}

fn aggregated_resource(def: &ResourceDef) -> Value {
    let kind = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let mut entry = json!({
        "resource": def.plural,
        "responseKind": kind,
        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": def.singular,
        "verbs": def.verbs.names(),
    });
    if !def.short_names.is_empty() {
        entry["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        entry["categories"] = json!(def.categories);
    }
    let mut subs = Vec::new();
    if def.status {
        subs.push(
            json!({"subresource": "status", "responseKind": kind, "verbs": subresource_verbs()}),
        );
    }
    if def.scale.is_some() {
        subs.push(json!({"subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": subresource_verbs()}));
    }
    for (sub, group, version, kind, verbs) in action_subresources(def) {
        subs.push(json!({"subresource": sub,
            "responseKind": {"group": group, "version": version, "kind": kind},
            "verbs": verbs}));
    }
    if !subs.is_empty() {
        entry["subresources"] = Value::Array(subs);
    }
    entry
}

/// Aggregated discovery (`APIGroupDiscoveryList`) for the core group (`legacy`) or the others.
pub fn aggregated(registry: &Registry, legacy: bool, version: &str) -> Value {
    let all = registry.all();
    let mut items = Vec::new();
    for group in registry.groups() {
        if group.is_empty() != legacy {
            continue;
        }
        let mut versions = Vec::new();
        for v in registry.group_versions(&group) {
            let resources: Vec<Value> = all
                .iter()
                .filter(|d| d.group == group && d.version == v)
                .map(|d| aggregated_resource(d))
                .collect();
            versions.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        items.push(
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions}),
        );
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
           "metadata": {}, "items": items})
}

/// The content type of an aggregated discovery answer.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/openapi/v3`: one path per group-version. Each document lists a PATCH operation per kind
/// with the `fieldValidation` parameter, which tells kubectl ≥ 1.29 that the server validates
/// fields itself (so no client-side schema is needed).
pub fn openapi_v3_index(registry: &Registry) -> Value {
    let hash = format!("{:016X}", registry.generation());
    let mut paths = serde_json::Map::new();
    let mut seen = Vec::new();
    for def in registry.all() {
        let gv = if def.group.is_empty() {
            "api/v1".to_owned()
        } else {
            format!("apis/{}/{}", def.group, def.version)
        };
        if !seen.contains(&gv) {
            paths.insert(
                gv.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
            );
            seen.push(gv);
        }
    }
    json!({"paths": paths})
}

pub fn openapi_v3_doc(registry: &Registry, gv_path: &str) -> Option<Value> {
    let (group, version) = match gv_path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => return None,
    };
    let defs: Vec<_> =
        registry.all().into_iter().filter(|d| d.group == group && d.version == version).collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    // Built-in kinds' schemas (and everything they use) come from one generator.
    let mut generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    for def in defs {
        let base = if group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", def.plural)
        } else {
            format!("{base}/{}/{{name}}", def.plural)
        };
        let builtin_ref =
            def.openapi.map(|add| serde_json::to_value(add(&mut generator)).unwrap_or_default());
        let schema_name =
            match builtin_ref.as_ref().and_then(|r| r.get("$ref")).and_then(Value::as_str) {
                Some(reference) => reference.trim_start_matches("#/components/schemas/").to_owned(),
                None => format!(
                    "{}.{}.{}",
                    if group.is_empty() { "core" } else { &group },
                    version,
                    def.kind
                ),
            };
        let body_schema = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        paths.insert(path, json!({"patch": {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": "patch",
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}}
            ],
            "requestBody": {"content": {
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}}
            }},
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body_schema}}}}
        }}));
        if builtin_ref.is_some() {
            // Filled in from the generator's definitions below.
            schemas.insert(schema_name, json!({"x-kubernetes-group-version-kind": [gvk]}));
            continue;
        }
        let mut schema =
            def.schema.as_deref().cloned().unwrap_or_else(|| json!({"type": "object"}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(schema_name, schema);
    }
    for (name, definition) in generator.take_definitions(true) {
        let mut definition = definition;
        kubernetes_refs(&mut definition);
        match schemas.get_mut(&name) {
            Some(Value::Object(kind)) => {
                let gvk = kind.remove("x-kubernetes-group-version-kind");
                if let (Value::Object(map), Some(gvk)) = (&mut definition, gvk) {
                    map.insert("x-kubernetes-group-version-kind".into(), gvk);
                }
                schemas.insert(name, definition);
            }
            _ => {
                schemas.insert(name, definition);
            }
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// Writes a reference with siblings (`{"$ref", "description"}`) as Kubernetes does, as
/// `{"allOf": [{"$ref"}], "description"}`: OpenAPI 3.0 ignores a `$ref`'s siblings, and
/// `kubectl explain` reads the description from beside the `allOf`.
fn kubernetes_refs(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if map.len() > 1
        && let Some(reference) = map.remove("$ref")
    {
        map.insert("allOf".into(), json!([{"$ref": reference}]));
    }
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(kubernetes_refs);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            kubernetes_refs(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            items.iter_mut().for_each(kubernetes_refs);
        }
    }
}
