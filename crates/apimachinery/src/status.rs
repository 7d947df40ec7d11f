//! Kubernetes `Status` errors: every non-2xx answer of the API server is one of these.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` (or conflict) error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldManagerConflict`...
    pub reason: String,
    pub message: String,
    /// The field path, e.g. `metadata.name` or `spec.placement.clusterAffinity`.
    pub field: String,
}

impl Cause {
    pub fn required(field: impl Into<String>, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Cause { reason: "FieldValueRequired".into(), message, field: field.into() }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            Value::Null => "null".into(),
            other => other.to_string(),
        };
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {shown}: {detail}"),
            field: field.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {value}: supported values: {}", list.join(", ")),
            field: field.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
        Cause {
            reason: "FieldValueDuplicate".into(),
            message: format!("Duplicate value: {value}"),
            field: field.into(),
        }
    }
}

/// A Kubernetes API error, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` (a resource or kind, as Kubernetes does).
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// Seconds, for 429 and 504 answers.
    pub retry_after: Option<u64>,
}

/// `resource.group` (`configmaps` for the core group), as Kubernetes names resources in messages.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() { resource.to_owned() } else { format!("{resource}.{group}") }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after: None,
        }
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> ApiError {
        self.name = Some(name.into());
        self.group = Some(group.into());
        self.kind = Some(kind.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    /// A missing object of `resource` in `group`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{} {name:?} not found", qualified(resource, group)))
            .with_details(name, group, resource)
    }

    /// A path the server does not serve.
    pub fn path_not_found() -> ApiError {
        ApiError::new(404, "NotFound", "the server could not find the requested resource")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(resource, group)),
        )
        .with_details(name, group, resource)
    }

    /// A failed optimistic-concurrency precondition.
    pub fn conflict(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError::conflict_because(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_because(resource: &str, group: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                qualified(resource, group)
            ),
        )
        .with_details(name, group, resource)
    }

    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// Validation failed: `Kind.group "name" is invalid: field: message`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let summary = match causes.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => {
                let parts: Vec<String> =
                    many.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
                format!("[{}]", parts.join(", "))
            }
        };
        let mut error = ApiError::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {summary}", qualified(kind, group)),
        )
        .with_details(name, group, kind);
        error.causes = causes;
        error
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> ApiError {
        let mut error = ApiError::new(429, "TooManyRequests", message);
        error.retry_after = Some(retry_after);
        error
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "Timeout", message)
    }

    pub fn with_cause(mut self, cause: Cause) -> ApiError {
        self.causes.push(cause);
        self
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(name) = &self.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &self.group {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &self.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(seconds) = self.retry_after {
            details.insert("retryAfterSeconds".into(), json!(seconds));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// A `Status` of success, as returned by some deletes.
pub fn success_status(name: &str, group: &str, kind: &str, uid: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_kubernetes() {
        let cases = [
            (
                ApiError::not_found("widgets", "example.com", "nope"),
                404,
                "widgets.example.com \"nope\" not found",
            ),
            (ApiError::not_found("configmaps", "", "nope"), 404, "configmaps \"nope\" not found"),
            (
                ApiError::already_exists("widgets", "example.com", "w1"),
                409,
                "widgets.example.com \"w1\" already exists",
            ),
            (
                ApiError::conflict("widgets", "example.com", "w1"),
                409,
                "Operation cannot be fulfilled on widgets.example.com \"w1\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::invalid(
                    "Widget",
                    "example.com",
                    "",
                    vec![Cause::required("metadata.name", "name or generateName is required")],
                ),
                422,
                "Widget.example.com \"\" is invalid: metadata.name: Required value: name or generateName is required",
            ),
        ];
        for (error, code, message) in cases {
            assert_eq!(error.code, code);
            assert_eq!(error.message, message);
            let status = error.to_status();
            assert_eq!(status["code"], code);
            assert_eq!(status["kind"], "Status");
        }
    }

    #[test]
    fn invalid_lists_causes_in_details() {
        let error = ApiError::invalid(
            "PropagationPolicy",
            "policy.karmada.io",
            "p",
            vec![
                Cause::required("spec.resourceSelectors", ""),
                Cause::invalid("spec.priority", &json!("x"), "must be an integer"),
            ],
        );
        assert!(error.message.contains("is invalid: [spec.resourceSelectors: Required value, spec.priority: Invalid value: \"x\": must be an integer]"), "{}", error.message);
        let status = error.to_status();
        assert_eq!(status["details"]["causes"][0]["field"], "spec.resourceSelectors");
        assert_eq!(status["details"]["kind"], "PropagationPolicy");
    }
}
