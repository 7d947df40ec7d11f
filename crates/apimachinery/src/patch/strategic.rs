//! Strategic merge patch for built-in kinds.
//!
//! Merge behaviour comes from a schema of the built-in types: which lists merge by which key
//! (`containers` by `name`, container `ports` by `containerPort`, Service `ports` by `port`,
//! `finalizers` as a set...). Lists not in the schema are replaced wholesale, maps merge, `null`
//! deletes. The directives kubectl sends are honoured: `$patch: replace|delete|merge`,
//! `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.

use serde_json::{Map, Value};

use super::PatchError;

/// `(type, field, child type, merge key)`. A merge key `$set` marks a list of primitives merged
/// as a set. An empty child type means "no further schema" (generic merge below).
const SCHEMA: &[(&str, &str, &str, &str)] = &[
    ("ObjectMeta", "finalizers", "", "$set"),
    ("ObjectMeta", "ownerReferences", "", "uid"),
    ("PodTemplateSpec", "metadata", "ObjectMeta", ""),
    ("PodTemplateSpec", "spec", "PodSpec", ""),
    ("PodSpec", "containers", "Container", "name"),
    ("PodSpec", "initContainers", "Container", "name"),
    ("PodSpec", "ephemeralContainers", "Container", "name"),
    ("PodSpec", "volumes", "", "name"),
    ("PodSpec", "imagePullSecrets", "", "name"),
    ("PodSpec", "hostAliases", "", "ip"),
    ("PodSpec", "topologySpreadConstraints", "", "topologyKey"),
    ("PodSpec", "resourceClaims", "", "name"),
    ("PodSpec", "schedulingGates", "", "name"),
    ("Container", "ports", "", "containerPort"),
    ("Container", "env", "", "name"),
    ("Container", "volumeMounts", "", "mountPath"),
    ("Container", "volumeDevices", "", "devicePath"),
    ("Deployment", "spec", "DeploymentSpec", ""),
    ("Deployment", "status", "WorkloadStatus", ""),
    ("DeploymentSpec", "template", "PodTemplateSpec", ""),
    ("ReplicaSet", "spec", "ReplicaSetSpec", ""),
    ("ReplicaSet", "status", "WorkloadStatus", ""),
    ("ReplicaSetSpec", "template", "PodTemplateSpec", ""),
    ("StatefulSet", "spec", "StatefulSetSpec", ""),
    ("StatefulSet", "status", "WorkloadStatus", ""),
    ("StatefulSetSpec", "template", "PodTemplateSpec", ""),
    ("DaemonSet", "spec", "DaemonSetSpec", ""),
    ("DaemonSet", "status", "WorkloadStatus", ""),
    ("DaemonSetSpec", "template", "PodTemplateSpec", ""),
    ("Job", "spec", "JobSpec", ""),
    ("Job", "status", "WorkloadStatus", ""),
    ("JobSpec", "template", "PodTemplateSpec", ""),
    ("CronJob", "spec", "CronJobSpec", ""),
    ("CronJobSpec", "jobTemplate", "JobTemplateSpec", ""),
    ("JobTemplateSpec", "metadata", "ObjectMeta", ""),
    ("JobTemplateSpec", "spec", "JobSpec", ""),
    ("PodTemplate", "template", "PodTemplateSpec", ""),
    ("ReplicationController", "spec", "ReplicaSetSpec", ""),
    ("WorkloadStatus", "conditions", "", "type"),
    ("Pod", "spec", "PodSpec", ""),
    ("Pod", "status", "PodStatus", ""),
    ("PodStatus", "conditions", "", "type"),
    ("Service", "spec", "ServiceSpec", ""),
    ("ServiceSpec", "ports", "", "port"),
    ("Node", "status", "NodeStatus", ""),
    ("NodeStatus", "conditions", "", "type"),
    ("NodeStatus", "addresses", "", "type"),
    ("Namespace", "status", "NamespaceStatus", ""),
    ("NamespaceStatus", "conditions", "", "type"),
    ("PersistentVolumeClaim", "status", "WorkloadStatus", ""),
    ("HorizontalPodAutoscaler", "status", "WorkloadStatus", ""),
    ("PodDisruptionBudget", "status", "WorkloadStatus", ""),
];

fn lookup(ty: &str, field: &str) -> (&'static str, &'static str) {
    if field == "metadata" && !ty.is_empty() {
        return ("ObjectMeta", "");
    }
    SCHEMA
        .iter()
        .find(|(t, f, _, _)| *t == ty && *f == field)
        .map_or(("", ""), |(_, _, child, key)| (*child, *key))
}

/// The merge key of the list at `path` (field names from the root of a `kind` object), if the
/// list merges by key (`$set` for sets of primitives).
pub fn merge_key_at(kind: &str, path: &[&str]) -> Option<&'static str> {
    let (last, parents) = path.split_last()?;
    let mut ty = kind;
    for field in parents {
        let (child, _) = lookup(ty, field);
        if child.is_empty() {
            return None;
        }
        ty = child;
    }
    let (_, key) = lookup(ty, last);
    (!key.is_empty()).then_some(key)
}

/// Applies a strategic merge patch to an object of built-in `kind`.
pub fn apply(target: &mut Value, patch: &Value, kind: &str) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed("a strategic merge patch must be a JSON object".into()));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return Ok(()) };
    if merge_map(map, patch, kind)? == Outcome::Delete {
        *target = Value::Object(Map::new());
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Keep,
    Delete,
}

fn directive(patch: &Map<String, Value>) -> Option<&str> {
    patch.get("$patch").and_then(Value::as_str)
}

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ty: &str,
) -> Result<Outcome, PatchError> {
    match directive(patch) {
        Some("replace") => {
            *orig = strip_map(patch);
            return Ok(Outcome::Keep);
        }
        Some("delete") => return Ok(Outcome::Delete),
        Some("merge") | None => {}
        Some(other) => return Err(PatchError::Malformed(format!("unknown patch type {other:?}"))),
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            orig.remove(key);
            continue;
        }
        let (child, merge_key) = lookup(ty, key);
        match (orig.get_mut(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                if merge_map(o, p, child)? == Outcome::Delete {
                    orig.remove(key);
                }
            }
            (Some(Value::Array(o)), Value::Array(p)) if !merge_key.is_empty() => {
                merge_list(o, p, merge_key, child)?;
            }
            (_, Value::Object(p)) if directive(p) == Some("delete") => {
                orig.remove(key);
            }
            (_, value) => {
                orig.insert(key.clone(), strip(value, merge_key));
            }
        }
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = value.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|v| !remove.contains(v));
            }
        }
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            let order = value.as_array().cloned().unwrap_or_default();
            let (_, merge_key) = lookup(ty, field);
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                reorder(list, &order, merge_key);
            }
        }
    }
    if let Some(keys) = patch.get("$retainKeys") {
        let keys: Vec<&str> = keys
            .as_array()
            .ok_or_else(|| PatchError::Malformed("$retainKeys must be a list".into()))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        orig.retain(|k, _| keys.contains(&k.as_str()));
    }
    Ok(Outcome::Keep)
}

fn merge_list(
    orig: &mut Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    child: &str,
) -> Result<(), PatchError> {
    let replace =
        patch.iter().any(|v| v.as_object().is_some_and(|m| directive(m) == Some("replace")));
    if replace {
        *orig = patch
            .iter()
            .filter(|v| v.as_object().is_none_or(|m| directive(m).is_none()))
            .map(|v| strip(v, ""))
            .collect();
        return Ok(());
    }
    if merge_key == "$set" {
        for item in patch {
            if !orig.contains(item) {
                orig.push(item.clone());
            }
        }
        return Ok(());
    }
    for item in patch {
        let Value::Object(item_map) = item else {
            if !orig.contains(item) {
                orig.push(item.clone());
            }
            continue;
        };
        let key_value = item_map.get(merge_key);
        if key_value.is_none() && directive(item_map).is_none() {
            return Err(PatchError::Failed(format!(
                "map: {item} does not contain declared merge key: {merge_key}"
            )));
        }
        let position = orig.iter().position(|o| o.get(merge_key) == key_value);
        if directive(item_map) == Some("delete") {
            orig.retain(|o| o.get(merge_key) != key_value);
            continue;
        }
        match position {
            Some(i) => {
                if let Value::Object(existing) = &mut orig[i]
                    && merge_map(existing, item_map, child)? == Outcome::Delete
                {
                    orig.remove(i);
                }
            }
            None => orig.push(strip(item, "")),
        }
    }
    Ok(())
}

fn reorder(list: &mut [Value], order: &[Value], merge_key: &str) {
    let rank = |v: &Value| -> usize {
        let found = if merge_key.is_empty() || merge_key == "$set" {
            order.iter().position(|o| o == v)
        } else {
            order
                .iter()
                .position(|o| o.get(merge_key).is_some() && o.get(merge_key) == v.get(merge_key))
        };
        found.unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

/// A value from the patch, with its directives removed, as it is stored.
fn strip(value: &Value, _merge_key: &str) -> Value {
    match value {
        Value::Object(m) => Value::Object(strip_map(m)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| !v.as_object().is_some_and(|m| directive(m).is_some() && m.len() == 1))
                .map(|v| strip(v, ""))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn strip_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
        .map(|(k, v)| (k.clone(), strip(v, "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}})
    }

    fn check(kind: &str, mut target: Value, patch: Value, want: Value) {
        apply(&mut target, &patch, kind).unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert_eq!(target, want, "patch {patch}");
    }

    #[test]
    fn containers_merge_by_name() {
        check(
            "Deployment",
            deployment(
                json!([{"name": "nginx", "image": "nginx:1.25"}, {"name": "sidecar", "image": "busybox"}]),
            ),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}),
            deployment(
                json!([{"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]),
            ),
        );
    }

    #[test]
    fn kubectl_apply_patch_with_set_element_order() {
        check(
            "Deployment",
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
                "containers": [{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}]
            }}}}),
            deployment(
                json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}]),
            ),
        );
    }

    #[test]
    fn delete_and_replace_directives() {
        check(
            "Deployment",
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}}),
            deployment(json!([{"name": "b", "image": "b:1"}])),
        );
        check(
            "Deployment",
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}}}}),
            deployment(json!([{"name": "z", "image": "z"}])),
        );
        check(
            "ConfigMap",
            json!({"data": {"a": "1", "b": "2"}}),
            json!({"data": {"$patch": "replace", "c": "3"}}),
            json!({"data": {"c": "3"}}),
        );
    }

    #[test]
    fn ports_by_container_port_and_service_port() {
        check(
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]}}),
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 443, "name": "https"}]}]}}),
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}]}]}}),
        );
        check(
            "Service",
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
    }

    #[test]
    fn unknown_lists_replace_and_null_deletes() {
        check(
            "Deployment",
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "a"}], "nodeSelector": {"x": "1", "y": "2"}}}}}),
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}], "nodeSelector": {"x": null}}}}}),
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}], "nodeSelector": {"y": "2"}}}}}),
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_primitive_deletes() {
        check(
            "ConfigMap",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        );
        check(
            "ConfigMap",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": ["b"]}}),
        );
    }

    #[test]
    fn retain_keys() {
        check(
            "Deployment",
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
    }

    #[test]
    fn errors() {
        let mut target = deployment(json!([{"name": "a"}]));
        let err = apply(
            &mut target,
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "Deployment",
        );
        assert!(matches!(err, Err(PatchError::Failed(_))));
        assert!(matches!(
            apply(&mut target, &json!([1]), "Deployment"),
            Err(PatchError::Malformed(_))
        ));
    }
}
