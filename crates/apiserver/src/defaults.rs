//! Built-in defaults Kubernetes fills in that clients read back and rely on (a growing set;
//! the rest of Kubernetes' defaulting is not done — see docs/features.md).
//!
//! Jobs: `parallelism` 1, `completions` 1 when neither is given, `backoffLimit` 6,
//! `completionMode` NonIndexed and `suspend` false, as the batch/v1 defaulter does.
//! Pods: a container's request for a resource it only limits is the limit (what schedulers,
//! quotas and autoscalers read).
//! StatefulSets: `replicas` 1, `podManagementPolicy` OrderedReady, `updateStrategy` RollingUpdate
//! with partition 0, `revisionHistoryLimit` 10, claims retained when deleted or scaled (what
//! `kubectl rollout status` requires and the apps/v1 defaulter sets).

use apimachinery::ApiError;
use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionRequest, Operation};

/// Fills the defaults of built-in kinds on create and update.
pub struct BuiltinDefaults;

/// The batch/v1 Job defaults.
pub fn default_job(job: &mut Value) {
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let unset = |spec: &serde_json::Map<String, Value>, field: &str| {
        spec.get(field).is_none_or(Value::is_null)
    };
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    for (field, value) in [
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
    ] {
        if unset(spec, field) {
            spec.insert(field.into(), value);
        }
    }
}

/// The apps/v1 StatefulSet defaults.
pub fn default_statefulset(set: &mut Value) {
    let Some(spec) = set.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let unset =
        |spec: &serde_json::Map<String, Value>, f: &str| spec.get(f).is_none_or(Value::is_null);
    for (field, value) in [
        ("replicas", json!(1)),
        ("podManagementPolicy", json!("OrderedReady")),
        ("updateStrategy", json!({"type": "RollingUpdate"})),
        ("revisionHistoryLimit", json!(10)),
        (
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        ),
    ] {
        if unset(spec, field) {
            spec.insert(field.into(), value);
        }
    }
    if let Some(strategy) = spec.get_mut("updateStrategy").and_then(Value::as_object_mut)
        && strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && strategy.get("rollingUpdate").is_none_or(Value::is_null)
    {
        strategy.insert("rollingUpdate".into(), json!({"partition": 0}));
    }
}

/// The core/v1 Pod defaults: requests from limits.
pub fn default_pod(pod: &mut Value) {
    for list in ["containers", "initContainers"] {
        let Some(containers) =
            pod.pointer_mut(&format!("/spec/{list}")).and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let Some(limits) =
                container.pointer("/resources/limits").and_then(Value::as_object).cloned()
            else {
                continue;
            };
            if !container["resources"]["requests"].is_object() {
                container["resources"]["requests"] = json!({});
            }
            if let Some(requests) = container["resources"]["requests"].as_object_mut() {
                for (resource, limit) in limits {
                    requests.entry(resource).or_insert(limit);
                }
            }
        }
    }
}

impl Admission for BuiltinDefaults {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.subresource.is_some()
            || !matches!(request.operation, Operation::Create | Operation::Update)
        {
            return Ok(());
        }
        if request.def.group == "batch" && request.def.kind == "Job" {
            default_job(object);
        }
        if request.def.group == "apps" && request.def.kind == "StatefulSet" {
            default_statefulset(object);
        }
        if request.def.group.is_empty()
            && request.def.kind == "Pod"
            && request.operation == Operation::Create
        {
            default_pod(object);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_request_what_they_only_limit() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "10m", "memory": "10Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}}},
            {"name": "c"}]}});
        default_pod(&mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "10m", "memory": "10Mi"})
        );
        assert_eq!(pod["spec"]["containers"][1]["resources"]["requests"], json!({"cpu": "500m"}));
        assert_eq!(pod["spec"]["containers"][2], json!({"name": "c"}));
    }

    #[test]
    fn statefulsets_get_apps_v1_defaults() {
        let mut set = json!({"spec": {"serviceName": "db", "podManagementPolicy": "Parallel"}});
        default_statefulset(&mut set);
        assert_eq!(
            set["spec"],
            json!({"serviceName": "db", "replicas": 1, "podManagementPolicy": "Parallel",
                   "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                   "revisionHistoryLimit": 10,
                   "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}})
        );
        let mut on_delete =
            json!({"spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete"}}});
        default_statefulset(&mut on_delete);
        assert_eq!(on_delete["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn jobs_get_batch_v1_defaults() {
        let mut job = json!({"spec": {"template": {}}});
        default_job(&mut job);
        assert_eq!(
            job["spec"],
            json!({"template": {}, "completions": 1, "parallelism": 1, "backoffLimit": 6,
                "completionMode": "NonIndexed", "suspend": false})
        );
        // A work queue (parallelism without completions) keeps completions unset.
        let mut queue = json!({"spec": {"parallelism": 3, "backoffLimit": 2, "suspend": true}});
        default_job(&mut queue);
        assert_eq!(
            queue["spec"],
            json!({"parallelism": 3, "backoffLimit": 2, "suspend": true, "completionMode": "NonIndexed"})
        );
    }
}
