//! Kinds served as a view of another kind's objects.
//!
//! Kubernetes keeps one storage per resource and serves some of them under more than one
//! group: an Event written as `events.k8s.io/v1` is the same object as the `v1` Event
//! `kubectl describe` lists, only with renamed fields. Such a kind's `ResourceDef` names its
//! [`StoredAs`]; its objects are stored in the other kind's form (under that kind's prefix) and
//! converted on every read, write and watch event.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The kind whose storage an aliased kind shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredAs {
    /// `events.k8s.io/v1` Events are stored as core `v1` Events.
    CoreEvent,
}

/// events.k8s.io/v1 field → core/v1 field (the fields both forms share keep their names).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

impl StoredAs {
    /// The store prefix of the kind objects are stored as.
    pub fn prefix(self) -> &'static str {
        match self {
            StoredAs::CoreEvent => "/registry/core/events/",
        }
    }

    /// An object in the served form → its stored form.
    pub fn to_storage(self, object: Value) -> Value {
        match self {
            StoredAs::CoreEvent => rename(object, "v1", EVENT_FIELDS.iter().copied()),
        }
    }

    /// A stored object → the served form (`api_version` is the served kind's).
    pub fn from_storage(self, object: Value, api_version: &str) -> Value {
        match self {
            StoredAs::CoreEvent => rename(
                object,
                api_version,
                EVENT_FIELDS.iter().map(|(served, stored)| (*stored, *served)),
            ),
        }
    }

    /// A field selector's field (in the served form's names) as it reads on a stored object.
    pub fn stored_field(self, field: &str) -> Cow<'_, str> {
        match self {
            StoredAs::CoreEvent => {
                for (served, stored) in EVENT_FIELDS {
                    if field == *served {
                        return Cow::Owned((*stored).to_owned());
                    }
                    if let Some(rest) = field.strip_prefix(served).and_then(|r| r.strip_prefix('.'))
                    {
                        return Cow::Owned(format!("{stored}.{rest}"));
                    }
                }
                Cow::Owned(field.to_owned())
            }
        }
    }
}

/// Renames top-level fields (`from` → `to`) and sets `apiVersion`, keeping field order.
fn rename<'a>(
    object: Value,
    api_version: &str,
    pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Value {
    let Value::Object(fields) = object else { return object };
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in fields {
        let key = pairs.clone().find(|(from, _)| *from == key).map_or(key, |(_, to)| to.to_owned());
        out.insert(key, value);
    }
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_convert_both_ways() {
        let served = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "note": "Scheduled", "reason": "ScheduleBindingSucceed", "type": "Normal",
            "action": "Schedule", "reportingController": "karmada-scheduler",
            "reportingInstance": "karmada-scheduler-1",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "deprecatedCount": 3
        });
        let stored = StoredAs::CoreEvent.to_storage(served.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["message"], "Scheduled");
        assert_eq!(stored["reportingComponent"], "karmada-scheduler");
        assert_eq!(stored["count"], 3);
        assert_eq!(stored["series"]["count"], 2);
        assert!(stored.get("regarding").is_none() && stored.get("note").is_none());
        let back = StoredAs::CoreEvent.from_storage(stored, "events.k8s.io/v1");
        assert_eq!(back, served);
    }

    #[test]
    fn field_selectors_read_the_stored_names() {
        let s = StoredAs::CoreEvent;
        assert_eq!(s.stored_field("regarding.name"), "involvedObject.name");
        assert_eq!(s.stored_field("reportingController"), "reportingComponent");
        assert_eq!(s.stored_field("reason"), "reason");
        assert_eq!(s.stored_field("regardingX"), "regardingX");
        assert_eq!(s.stored_field("metadata.name"), "metadata.name");
    }
}
