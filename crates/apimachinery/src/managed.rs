//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Every write records which manager owns which leaf fields: an `Update` entry for ordinary
//! writes (the manager takes the fields it changed), an `Apply` entry for server-side apply
//! (the manager owns exactly what it applied). Apply merges the applied configuration into the
//! object, removes fields the manager applied before but no longer applies (unless someone else
//! owns them), and reports conflicts when it would change a field another manager owns.
//!
//! Lists are atomic unless a `ListKeys` lookup says they are keyed (merged by that key, like
//! `containers` by `name`) or sets of primitives.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    Field(String),
    /// An element of a keyed list, by its key fields as compact JSON (`{"name":"nginx"}`).
    Key(String),
    /// A member of a set of primitives, as JSON.
    Value(String),
}

pub type Path = Vec<Elem>;
pub type FieldSet = BTreeSet<Path>;

/// How a list at a path merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Tells the list kind of the list at a field path (of `Field` steps; keyed-list steps are
/// skipped).
pub type ListKeys<'a> = &'a dyn Fn(&[&str]) -> ListKind;

/// Paths that no manager owns (server-maintained or identifying).
fn ignored(path: &[&str]) -> bool {
    matches!(
        path,
        ["apiVersion"]
            | ["kind"]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ]
    )
}

fn field_names(path: &Path) -> Vec<&str> {
    path.iter()
        .filter_map(|e| match e {
            Elem::Field(f) => Some(f.as_str()),
            _ => None,
        })
        .collect()
}

fn key_of(item: &Value, keys: &[String]) -> Option<String> {
    let mut map = Map::new();
    for k in keys {
        map.insert(k.clone(), item.get(k)?.clone());
    }
    Some(Value::Object(map).to_string())
}

/// The leaf fields set in `value`.
pub fn fields_of(value: &Value, lists: ListKeys<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    walk(value, &mut Vec::new(), lists, &mut out);
    out
}

fn walk(value: &Value, path: &mut Path, lists: ListKeys<'_>, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() || path.is_empty() => {
            for (k, v) in map {
                path.push(Elem::Field(k.clone()));
                if !ignored(&field_names(path)) {
                    walk(v, path, lists, out);
                }
                path.pop();
            }
        }
        Value::Array(items) => match lists(&field_names(path)) {
            ListKind::Map(keys) => {
                for item in items {
                    match key_of(item, &keys) {
                        Some(k) => {
                            path.push(Elem::Key(k));
                            out.insert(path.clone());
                            walk(item, path, lists, out);
                            path.pop();
                        }
                        None => {
                            out.insert(path.clone());
                        }
                    }
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(Elem::Value(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at a path, if present.
pub fn get_at<'a>(value: &'a Value, path: &[Elem], lists: ListKeys<'_>) -> Option<&'a Value> {
    let mut cursor = value;
    let mut names: Vec<&str> = Vec::new();
    for elem in path {
        match elem {
            Elem::Field(f) => {
                cursor = cursor.get(f)?;
                names.push(f);
            }
            Elem::Key(k) => {
                let ListKind::Map(keys) = lists(&names) else { return None };
                cursor =
                    cursor.as_array()?.iter().find(|i| key_of(i, &keys).as_deref() == Some(k))?;
            }
            Elem::Value(v) => {
                cursor = cursor.as_array()?.iter().find(|i| i.to_string() == *v)?;
            }
        }
    }
    Some(cursor)
}

/// Removes the value at a path (and empty parents it leaves behind inside keyed lists).
pub fn remove_at(value: &mut Value, path: &[Elem], lists: ListKeys<'_>) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut names: Vec<String> = Vec::new();
    let mut cursor = value;
    for elem in parents {
        let next = match elem {
            Elem::Field(f) => {
                names.push(f.clone());
                cursor.get_mut(f)
            }
            Elem::Key(k) => {
                let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let ListKind::Map(keys) = lists(&name_refs) else { return };
                cursor
                    .as_array_mut()
                    .and_then(|a| a.iter_mut().find(|i| key_of(i, &keys).as_deref() == Some(k)))
            }
            Elem::Value(_) => None,
        };
        match next {
            Some(n) => cursor = n,
            None => return,
        }
    }
    match last {
        Elem::Field(f) => {
            if let Some(m) = cursor.as_object_mut() {
                m.remove(f);
            }
        }
        Elem::Key(k) => {
            let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
            if let (ListKind::Map(keys), Some(a)) = (lists(&name_refs), cursor.as_array_mut()) {
                a.retain(|i| key_of(i, &keys).as_deref() != Some(k));
            }
        }
        Elem::Value(v) => {
            if let Some(a) = cursor.as_array_mut() {
                a.retain(|i| i.to_string().as_str() != v.as_str());
            }
        }
    }
}

/// Merges an applied configuration into `target`: maps recursively, keyed lists by key, sets
/// by value, everything else replaced.
pub fn merge(target: &mut Value, applied: &Value, lists: ListKeys<'_>) {
    merge_at(target, applied, &mut Vec::new(), lists);
}

fn merge_at(target: &mut Value, applied: &Value, names: &mut Vec<String>, lists: ListKeys<'_>) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                names.push(k.clone());
                match t.get_mut(k) {
                    Some(existing) => merge_at(existing, v, names, lists),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
                names.pop();
            }
        }
        (Value::Array(t), Value::Array(a)) => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            match lists(&refs) {
                ListKind::Map(keys) => {
                    for item in a {
                        let k = key_of(item, &keys);
                        match t.iter_mut().find(|i| k.is_some() && key_of(i, &keys) == k) {
                            Some(existing) => merge_at(existing, item, names, lists),
                            None => t.push(item.clone()),
                        }
                    }
                }
                ListKind::Set => {
                    for item in a {
                        if !t.contains(item) {
                            t.push(item.clone());
                        }
                    }
                }
                ListKind::Atomic => *t = a.clone(),
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

fn elem_key(e: &Elem) -> String {
    match e {
        Elem::Field(f) => format!("f:{f}"),
        Elem::Key(k) => format!("k:{k}"),
        Elem::Value(v) => format!("v:{v}"),
    }
}

fn parse_elem(s: &str) -> Option<Elem> {
    let (prefix, rest) = s.split_at_checked(2)?;
    match prefix {
        "f:" => Some(Elem::Field(rest.to_owned())),
        "k:" => Some(Elem::Key(rest.to_owned())),
        "v:" => Some(Elem::Value(rest.to_owned())),
        _ => None,
    }
}

/// Encodes a field set as `fieldsV1`.
pub fn encode_fields(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut cursor = &mut root;
        for elem in path {
            let entry = cursor.entry(elem_key(elem)).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            cursor = entry.as_object_mut().expect("just made an object");
        }
        if matches!(path.last(), Some(Elem::Key(_))) {
            cursor.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// Decodes `fieldsV1` into leaf paths.
pub fn decode_fields(value: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    fn go(v: &Value, path: &mut Path, out: &mut FieldSet) {
        let Some(map) = v.as_object() else { return };
        let children: Vec<(&String, &Value)> =
            map.iter().filter(|(k, _)| k.as_str() != ".").collect();
        if map.contains_key(".") || (children.is_empty() && !path.is_empty()) {
            out.insert(path.clone());
        }
        for (k, child) in children {
            if let Some(elem) = parse_elem(k) {
                path.push(elem);
                go(child, path, out);
                path.pop();
            }
        }
    }
    go(value, &mut Vec::new(), &mut out);
    out
}

pub fn decode_entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some(Entry {
                        manager: e.get("manager")?.as_str()?.to_owned(),
                        operation: e
                            .get("operation")
                            .and_then(Value::as_str)
                            .unwrap_or("Update")
                            .to_owned(),
                        api_version: e
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        time: e.get("time").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        fields: e.get("fieldsV1").map(decode_fields).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn encode_entries(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                    "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": encode_fields(&e.fields),
                });
                if let Some(sub) = &e.subresource {
                    v["subresource"] = json!(sub);
                }
                v
            })
            .collect(),
    )
}

/// Leaf paths whose value differs between `old` and `new` (added, changed or removed).
pub fn changed_fields(old: &Value, new: &Value, lists: ListKeys<'_>) -> (FieldSet, FieldSet) {
    let old_fields = fields_of(old, lists);
    let new_fields = fields_of(new, lists);
    let changed = new_fields
        .iter()
        .filter(|p| get_at(old, p, lists) != get_at(new, p, lists) || !old_fields.contains(*p))
        .cloned()
        .collect();
    let removed = old_fields.difference(&new_fields).cloned().collect();
    (changed, removed)
}

/// Identifies a manager entry (the same manager can own fields through several operations).
fn same_entry(e: &Entry, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
    e.manager == manager && e.operation == operation && e.subresource.as_deref() == subresource
}

/// Records an ordinary write: `manager` takes ownership of what it changed, nobody keeps
/// ownership of removed fields.
pub fn record_update(
    entries: &mut Vec<Entry>,
    old: &Value,
    new: &Value,
    manager: &str,
    api_version: &str,
    time: &str,
    subresource: Option<&str>,
    lists: ListKeys<'_>,
) {
    let (changed, removed) = changed_fields(old, new, lists);
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for e in entries.iter_mut() {
        e.fields.retain(|p| !(removed.contains(p) || changed.contains(p) && e.manager != manager));
    }
    match entries.iter_mut().find(|e| same_entry(e, manager, "Update", subresource)) {
        Some(e) => {
            e.fields.extend(changed);
            e.time = time.to_owned();
            e.api_version = api_version.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Update".into(),
            api_version: api_version.to_owned(),
            time: time.to_owned(),
            subresource: subresource.map(str::to_owned),
            fields: changed,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    /// `.spec.size` style.
    pub field: String,
}

/// Renders a path as Kubernetes prints it in conflict messages (`.spec.containers[name="x"].image`).
pub fn render_path(path: &Path) -> String {
    let mut out = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Elem::Key(k) => {
                let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let inner: Vec<String> = parsed
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                out.push_str(&format!("[{}]", inner.join(",")));
            }
            Elem::Value(v) => out.push_str(&format!("[={v}]")),
        }
    }
    out
}

/// Server-side apply of `applied` by `manager` onto `current` (None: the object is created).
/// Returns the new object and entries, or the conflicts.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    current: &Value,
    entries: &mut Vec<Entry>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    time: &str,
    subresource: Option<&str>,
    force: bool,
    lists: ListKeys<'_>,
) -> Result<Value, Vec<Conflict>> {
    let applied_fields = fields_of(applied, lists);
    let mut conflicts = Vec::new();
    for path in &applied_fields {
        let differs = get_at(current, path, lists) != get_at(applied, path, lists);
        if !differs {
            continue;
        }
        for e in entries.iter() {
            if e.manager != manager && e.fields.contains(path) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation.clone(),
                    api_version: e.api_version.clone(),
                    field: render_path(path),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let previous: FieldSet = entries
        .iter()
        .find(|e| same_entry(e, manager, "Apply", subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut result = current.clone();
    for path in previous.difference(&applied_fields) {
        let owned_elsewhere = entries.iter().any(|e| {
            !(e.manager == manager && e.operation == "Apply")
                && e.fields.iter().any(|p| p.starts_with(path))
        });
        if !owned_elsewhere {
            remove_at(&mut result, path, lists);
        }
    }
    merge(&mut result, applied, lists);
    // Forced (or uncontested) changes move ownership to the applier; equal values are shared.
    for e in entries.iter_mut() {
        if same_entry(e, manager, "Apply", subresource) {
            continue;
        }
        e.fields.retain(|p| {
            !(applied_fields.contains(p) && get_at(current, p, lists) != get_at(applied, p, lists))
        });
    }
    match entries.iter_mut().find(|e| same_entry(e, manager, "Apply", subresource)) {
        Some(e) => {
            e.fields = applied_fields;
            e.time = time.to_owned();
            e.api_version = api_version.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Apply".into(),
            api_version: api_version.to_owned(),
            time: time.to_owned(),
            subresource: subresource.map(str::to_owned),
            fields: applied_fields,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(result)
}

/// The conflict message and causes, as Kubernetes words them.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let describe = |c: &Conflict| {
        if c.operation == "Update" {
            format!("conflict with {:?} using {}", c.manager, c.api_version)
        } else {
            format!("conflict with {:?}", c.manager)
        }
    };
    match conflicts {
        [one] => format!("Apply failed with 1 conflict: {}: {}", describe(one), one.field),
        many => {
            let lines: Vec<String> =
                many.iter().map(|c| format!("{}:\n- {}", describe(c), c.field)).collect();
            format!("Apply failed with {} conflicts: {}", many.len(), lines.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(path: &[&str]) -> ListKind {
        match path {
            ["spec", "template", "spec", "containers"] | ["spec", "containers"] => {
                ListKind::Map(vec!["name".into()])
            }
            ["metadata", "finalizers"] => ListKind::Set,
            _ => ListKind::Atomic,
        }
    }

    #[test]
    fn fields_encode_and_decode() {
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "labels": {"app": "demo"}, "finalizers": ["x"]},
                         "spec": {"size": 1, "args": ["a", "b"], "containers": [{"name": "c", "image": "i"}]}});
        let fields = fields_of(&obj, &lists);
        let encoded = encode_fields(&fields);
        assert_eq!(
            encoded,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:size": {}, "f:args": {}, "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {}}}}
            })
        );
        assert_eq!(decode_fields(&encoded), fields);
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let mut entries = Vec::new();
        let base = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}});
        // A client-side write owns spec.size.
        let v1 = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"size": 1, "color": "red"}});
        record_update(
            &mut entries,
            &base,
            &v1,
            "kubectl-client-side-apply",
            "example.com/v1",
            "t",
            None,
            &lists,
        );
        let applied = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"size": 9}});
        let conflicts = apply(
            &v1,
            &mut entries.clone(),
            &applied,
            "kubectl",
            "example.com/v1",
            "t",
            None,
            false,
            &lists,
        )
        .unwrap_err();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field, ".spec.size");
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using example.com/v1: .spec.size"
        );
        let forced = apply(
            &v1,
            &mut entries,
            &applied,
            "kubectl",
            "example.com/v1",
            "t",
            None,
            true,
            &lists,
        )
        .unwrap();
        assert_eq!(forced["spec"], json!({"size": 9, "color": "red"}));
        let owner = entries
            .iter()
            .find(|e| {
                e.fields.contains(&vec![Elem::Field("spec".into()), Elem::Field("size".into())])
            })
            .unwrap();
        assert_eq!(owner.manager, "kubectl");

        // SSA removal: the applier drops a field only it owned.
        let mut entries = Vec::new();
        let a1 = json!({"apiVersion": "v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"size": 1, "color": "red"}});
        let o1 = apply(&base, &mut entries, &a1, "m", "v1", "t", None, false, &lists).unwrap();
        let a2 = json!({"apiVersion": "v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"size": 1}});
        let o2 = apply(&o1, &mut entries, &a2, "m", "v1", "t", None, false, &lists).unwrap();
        assert_eq!(o2["spec"], json!({"size": 1}));
    }

    #[test]
    fn keyed_lists_merge_by_key() {
        let current = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let mut target = current.clone();
        merge(&mut target, &json!({"spec": {"containers": [{"name": "b", "image": "2"}]}}), &lists);
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}})
        );
    }
}
