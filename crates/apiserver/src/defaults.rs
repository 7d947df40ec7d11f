//! Built-in defaults Kubernetes fills in that clients read back and rely on (a growing set;
//! the rest of Kubernetes' defaulting is not done — see docs/features.md).
//!
//! Jobs: `parallelism` 1, `completions` 1 when neither is given, `backoffLimit` 6,
//! `completionMode` NonIndexed and `suspend` false, as the batch/v1 defaulter does.

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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
