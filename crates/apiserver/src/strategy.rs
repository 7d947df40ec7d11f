//! Per-resource rules for writes: what the server sets on create, what an update may change,
//! generation, status and scale subresources, finalizers. Pure functions of (definition, old,
//! new, clock): the handlers call them and do the IO.

use apimachinery::managed::{self, ListKind};
use apimachinery::object::{self, meta_str};
use apimachinery::patch::strategic;
use apimachinery::{ApiError, Cause};
use apimachinery::{selector, validation};
use serde_json::{Map, Value, json};

use crate::registry::ResourceDef;

/// Metadata fields only the server sets.
const SERVER_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
];

/// The list kind of a field path, for field ownership: built-in lists with merge keys, CRD
/// schema list types, and finalizers as a set.
pub fn list_kind(def: &ResourceDef, path: &[&str]) -> ListKind {
    if path == ["metadata", "finalizers"] {
        return ListKind::Set;
    }
    if path == ["metadata", "ownerReferences"] {
        return ListKind::Map(vec!["uid".into()]);
    }
    if let Some(schema) = &def.schema {
        let mut cursor: &Value = schema;
        for step in path {
            match schema_child(cursor, step) {
                Some(n) => cursor = n,
                None => return ListKind::Atomic,
            }
        }
        return match cursor.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => ListKind::Map(
                cursor
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
            ),
            Some("set") => ListKind::Set,
            _ => ListKind::Atomic,
        };
    }
    if def.custom {
        return ListKind::Atomic;
    }
    match strategic::merge_key_at(&def.kind, path) {
        Some("$set") => ListKind::Set,
        Some(key) => ListKind::Map(vec![key.to_owned()]),
        None => ListKind::Atomic,
    }
}

/// The schema of property `step` under `cursor` (stepping into list items first).
fn schema_child<'a>(cursor: &'a Value, step: &str) -> Option<&'a Value> {
    let c = if cursor.get("type").and_then(Value::as_str) == Some("array") {
        cursor.get("items")?
    } else {
        cursor
    };
    c.get("properties")
        .and_then(|p| p.get(step))
        .or_else(|| c.get("additionalProperties").filter(|v| v.is_object()))
}

/// The object with metadata removed (and status, for resources with a status subresource):
/// what `generation` tracks.
fn spec_part(def: &ResourceDef, object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(m) = &mut copy {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if def.status {
            m.remove("status");
        }
    }
    copy
}

/// Checks `apiVersion`/`kind` of a body against the endpoint, filling them in when absent.
pub fn check_type(def: &ResourceDef, object: &mut Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    let api_version = def.api_version();
    match object.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => object["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match object.get("kind").and_then(Value::as_str) {
        None | Some("") => object["kind"] = json!(def.kind),
        Some(k) if k == def.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
    }
    Ok(())
}

/// Checks the body's namespace against the URL's, filling it in.
pub fn check_namespace(
    def: &ResourceDef,
    object: &mut Value,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    if !def.namespaced {
        object::remove_meta(object, "namespace");
        return Ok(());
    }
    let url_ns = namespace.unwrap_or_default();
    match meta_str(object, "namespace") {
        None | Some("") => object::set_meta(object, "namespace", json!(url_ns)),
        Some(ns) if ns == url_ns => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

/// Validates object metadata common to every kind: the name (by the kind's rule), labels and
/// annotations (syntax, total size), owner references.
pub fn validate_meta(def: &ResourceDef, object: &Value) -> Result<(), ApiError> {
    let name = object::name(object);
    let mut causes = Vec::new();
    let rule = validation::NameRule::of(&def.group, &def.kind, def.custom);
    let problem = if name.is_empty() {
        Some("name or generateName is required".to_owned())
    } else if name.len() > 253 {
        Some("must be no more than 253 characters".to_owned())
    } else {
        rule.check(name)
    };
    if let Some(detail) = problem {
        causes.push(Cause::invalid("metadata.name", &json!(name), &detail));
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = object.pointer(&format!("/metadata/{field}")) {
            let Some(map) = map.as_object() else {
                causes.push(Cause::invalid(
                    format!("metadata.{field}"),
                    map,
                    "must be a map of strings",
                ));
                continue;
            };
            for (k, v) in map {
                if !v.is_string() {
                    causes.push(Cause::invalid(
                        format!("metadata.{field}.{k}"),
                        v,
                        "must be a string",
                    ));
                }
            }
        }
    }
    validation::metadata(object, "", &mut causes);
    if let Some(refs) = object.pointer("/metadata/ownerReferences").and_then(Value::as_array) {
        for (i, r) in refs.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if r.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                    causes.push(Cause::required(
                        format!("metadata.ownerReferences[{i}].{field}"),
                        "",
                    ));
                }
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, name, causes))
    }
}

/// Secrets: `stringData` is write-only; it is merged into `data` (base64), as Kubernetes does.
fn fold_string_data(def: &ResourceDef, object: &mut Value) {
    use base64::Engine as _;
    if def.kind != "Secret" || !def.group.is_empty() {
        return;
    }
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    let data = object.as_object_mut().map(|m| m.entry("data").or_insert_with(|| json!({})));
    if let Some(Value::Object(data)) = data {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

/// Prepares an object for creation: server-set metadata, status and generation rules.
pub fn prepare_create(
    def: &ResourceDef,
    object: &mut Value,
    now: &str,
    uid: &str,
) -> Result<(), ApiError> {
    fold_string_data(def, object);
    if meta_str(object, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let meta = object::metadata_mut(object);
    for field in SERVER_META {
        meta.remove(*field);
    }
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(now));
    if def.generation || def.custom {
        meta.insert("generation".into(), json!(1));
    }
    // Status is the server's (or a controller's) to set: clear it, as Kubernetes does,
    // except for Nodes (whose registrant reports status at creation).
    if def.status
        && def.kind != "Node"
        && let Value::Object(m) = object
    {
        m.remove("status");
    }
    if def.kind == "Pod" && def.group.is_empty() {
        object["status"] = json!({"phase": "Pending"});
    }
    if def.kind == "Namespace" && def.group.is_empty() {
        let name = object::name(object).to_owned();
        object::string_map_mut(object, "labels")
            .insert("kubernetes.io/metadata.name".into(), json!(name));
        object["spec"] = json!({"finalizers": ["kubernetes"]});
        object["status"] = json!({"phase": "Active"});
    }
    object::tidy_metadata(object);
    Ok(())
}

/// The finalizers an update may not add while the object is being deleted.
fn check_finalizers(def: &ResourceDef, old: &Value, new: &Value) -> Result<(), ApiError> {
    if meta_str(old, "deletionTimestamp").is_none() {
        return Ok(());
    }
    let before = object::finalizers(old);
    let added: Vec<String> =
        object::finalizers(new).into_iter().filter(|f| !before.contains(f)).collect();
    if added.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        &def.kind,
        &def.group,
        object::name(old),
        vec![Cause::forbidden(
            "metadata.finalizers",
            &format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            ),
        )],
    ))
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// `certificatesigningrequests/approval`: only `status.conditions` changes.
    Approval,
}

impl Part {
    /// The part a subresource writes.
    pub fn of(subresource: Option<&str>) -> Part {
        match subresource {
            Some("status") => Part::Status,
            Some("approval") => Part::Approval,
            _ => Part::Main,
        }
    }

    /// The subresource's name, for admission and managed fields.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Part::Main => None,
            Part::Status => Some("status"),
            Part::Approval => Some("approval"),
        }
    }
}

/// Merges an update into the stored object according to the resource's rules. `new` is the
/// complete desired object (after patching).
pub fn prepare_update(
    def: &ResourceDef,
    old: &Value,
    mut new: Value,
    part: Part,
) -> Result<Value, ApiError> {
    if object::name(&new) != object::name(old) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            object::name(&new),
            object::name(old)
        )));
    }
    let mut result = match part {
        Part::Status => {
            // Only status (and metadata that the status strategy allows: none) changes.
            let mut result = old.clone();
            match new.get("status") {
                Some(status) => result["status"] = status.clone(),
                None => {
                    if let Value::Object(m) = &mut result {
                        m.remove("status");
                    }
                }
            }
            if let Some(fields) = new.pointer("/metadata/managedFields") {
                object::set_meta(&mut result, "managedFields", fields.clone());
            }
            result
        }
        Part::Approval => {
            let mut result = old.clone();
            let conditions = new.pointer("/status/conditions").cloned();
            let types: Vec<&str> = conditions
                .as_ref()
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c.get("type").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if types.contains(&"Approved") && types.contains(&"Denied") {
                return Err(ApiError::invalid(
                    &def.kind,
                    &def.group,
                    object::name(old),
                    vec![Cause::invalid(
                        "status.conditions",
                        &json!("Approved"),
                        "Approved and Denied conditions are mutually exclusive",
                    )],
                ));
            }
            match conditions {
                Some(c) => result["status"]["conditions"] = c,
                None => {
                    if let Some(status) = result.get_mut("status").and_then(Value::as_object_mut) {
                        status.remove("conditions");
                    }
                }
            }
            result
        }
        Part::Main => {
            check_finalizers(def, old, &new)?;
            fold_string_data(def, &mut new);
            if def.status {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Value::Object(m) = &mut new {
                            m.remove("status");
                        }
                    }
                }
            }
            new
        }
    };
    // Server-owned metadata always comes from the stored object.
    let old_meta = old.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    let meta: &mut Map<String, Value> = object::metadata_mut(&mut result);
    for field in SERVER_META {
        match old_meta.get(*field) {
            Some(v) => {
                meta.insert((*field).to_owned(), v.clone());
            }
            None => {
                meta.remove(*field);
            }
        }
    }
    if def.namespaced
        && let Some(ns) = old_meta.get("namespace")
    {
        meta.insert("namespace".into(), ns.clone());
    }
    if !meta.contains_key("managedFields")
        && let Some(fields) = old_meta.get("managedFields")
    {
        meta.insert("managedFields".into(), fields.clone());
    }
    if (def.generation || def.custom)
        && part == Part::Main
        && spec_part(def, old) != spec_part(def, &result)
    {
        let generation = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        object::set_meta(&mut result, "generation", json!(generation));
    }
    if def.kind == "Namespace" && def.group.is_empty() {
        if part == Part::Main
            && let Some(spec) = old.get("spec")
        {
            result["spec"] = spec.clone();
        }
        if meta_str(&result, "deletionTimestamp").is_none() {
            result["status"]["phase"] = json!("Active");
        }
    }
    object::tidy_metadata(&mut result);
    Ok(result)
}

/// True when `a` and `b` are the same object for the purposes of a no-op check (ignores
/// `resourceVersion` and managed-field timestamps).
pub fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for e in entries {
                    if let Some(m) = e.as_object_mut() {
                        m.remove("time");
                    }
                }
            }
        }
        c
    };
    strip(a) == strip(b)
}

/// Records ownership of a write in `managedFields`.
pub fn record_managed(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    part: Part,
) {
    let empty = json!({});
    let old = old.unwrap_or(&empty);
    let lists = |path: &[&str]| list_kind(def, path);
    let mut entries = managed::decode_entries(new);
    let (scope_old, scope_new) = match part {
        Part::Main if def.status => (without(old, "status"), without(new, "status")),
        Part::Main => (old.clone(), new.clone()),
        Part::Status | Part::Approval => (
            json!({"status": old.get("status").cloned().unwrap_or(Value::Null)}),
            json!({"status": new.get("status").cloned().unwrap_or(Value::Null)}),
        ),
    };
    let subresource = part.subresource();
    managed::record_update(
        &mut entries,
        &scope_old,
        &scope_new,
        manager,
        &def.api_version(),
        now,
        subresource,
        &lists,
    );
    set_entries(new, &entries);
}

pub fn set_entries(object: &mut Value, entries: &[managed::Entry]) {
    let encoded = managed::encode_entries(entries);
    if encoded.as_array().is_some_and(Vec::is_empty) {
        object::remove_meta(object, "managedFields");
    } else {
        object::set_meta(object, "managedFields", encoded);
    }
}

fn without(v: &Value, key: &str) -> Value {
    let mut c = v.clone();
    if let Value::Object(m) = &mut c {
        m.remove(key);
    }
    c
}

/// The `autoscaling/v1` Scale view of an object.
pub fn scale_of(def: &ResourceDef, object: &Value) -> Result<Value, ApiError> {
    let Some(scale) = &def.scale else {
        return Err(ApiError::path_not_found());
    };
    let path_value = |path: &str| object::get_path(object, &object::dotted(path)).cloned();
    let replicas = path_value(&scale.spec_replicas_path)
        .and_then(|v| v.as_i64())
        .unwrap_or(if def.custom { 0 } else { 1 });
    let status_replicas =
        path_value(&scale.status_replicas_path).and_then(|v| v.as_i64()).unwrap_or(0);
    let selector = scale.label_selector_path.as_deref().and_then(path_value).map(|v| match v {
        Value::String(s) => s,
        obj @ Value::Object(_) => selector::LabelSelector::from_object(&obj)
            .map(|s| s.to_selector_string())
            .unwrap_or_default(),
        _ => String::new(),
    });
    let mut metadata = json!({});
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = object.pointer(&format!("/metadata/{field}")) {
            metadata[field] = v.clone();
        }
    }
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        status["selector"] = json!(selector);
    }
    Ok(json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
              "spec": {"replicas": replicas}, "status": status}))
}

/// Applies a (patched or replaced) Scale's `spec.replicas` to the object.
pub fn apply_scale(def: &ResourceDef, object: &mut Value, scale: &Value) -> Result<(), ApiError> {
    let Some(scale_def) = &def.scale else {
        return Err(ApiError::path_not_found());
    };
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).ok_or_else(|| {
        ApiError::invalid(
            "Scale",
            "autoscaling",
            object::name(object),
            vec![Cause::required("spec.replicas", "")],
        )
    })?;
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            object::name(object),
            vec![Cause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    object::set_path(object, &object::dotted(&scale_def.spec_replicas_path), json!(replicas));
    Ok(())
}

/// The selectable fields of an object for `fieldSelector`.
pub fn field_value(def: &ResourceDef, object: &Value, field: &str) -> Option<String> {
    let as_string = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match field {
        "metadata.name" => Some(object::name(object).to_owned()),
        "metadata.namespace" => Some(object::namespace(object).to_owned()),
        _ => {
            let stored = def.stored_as.map(|alias| alias.stored_field(field));
            let path: Vec<&str> = stored.as_deref().unwrap_or(field).split('.').collect();
            object::get_path(object, &path).map(as_string).or_else(|| {
                // Known but absent fields compare as "".
                supported_field(def, field).then(String::new)
            })
        }
    }
}

/// Whether `field` is selectable on this resource.
pub fn supported_field(def: &ResourceDef, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("", "Event") | ("events.k8s.io", "Event") => {
            field.starts_with("involvedObject.")
                || field.starts_with("regarding.")
                || matches!(
                    field,
                    "reason" | "source" | "type" | "reportingComponent" | "reportingController"
                )
        }
        ("", "Secret") => field == "type",
        ("", "Namespace") => field == "status.phase",
        ("", "Node") => field == "spec.unschedulable",
        ("batch", "Job") => field == "status.successful",
        _ => false,
    }
}
