//! Compact cached objects. A watch cache that holds `serde_json::Value` trees pays about ten
//! times an object's JSON size in memory (a B-tree node per map, a heap string per key), and
//! every cache insert deep-clones the tree. [`LeanObject`] keeps an object's metadata typed
//! (without `managedFields`, which no controller reads and which are as large as the object
//! for anything written by server-side apply) and every other top-level field as the JSON
//! text it arrived as; a field is parsed only when a controller reads it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{ApiResource, TypeMeta};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// An object of any kind as a cache holds it: typed metadata (no `managedFields`) and the
/// other top-level fields (`spec`, `status`, `data`...) as compact JSON text. Clones share the
/// text.
#[derive(Clone, Debug)]
pub struct LeanObject {
    pub types: Option<TypeMeta>,
    pub metadata: ObjectMeta,
    fields: Arc<[(Box<str>, Box<RawValue>)]>,
}

/// `ObjectMeta` without `managedFields`: serde skips that field without building it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

impl From<LeanMeta> for ObjectMeta {
    fn from(m: LeanMeta) -> Self {
        ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: m.self_link,
            uid: m.uid,
        }
    }
}

impl LeanObject {
    /// A top-level field (other than apiVersion, kind and metadata) as JSON text.
    pub fn raw(&self, name: &str) -> Option<&RawValue> {
        self.fields.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
    }

    /// A top-level field, parsed.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.raw(name).and_then(|r| serde_json::from_str(r.get()).ok())
    }

    /// The whole object as a JSON value (`apiVersion` and `kind` when it carried them).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A fingerprint of the object without its status and server bookkeeping
    /// (resourceVersion): it changes when anything a controller propagates changes.
    pub fn content_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut meta = self.metadata.clone();
        meta.resource_version = None;
        serde_json::to_string(&meta).unwrap_or_default().hash(&mut h);
        for (k, v) in self.fields.iter().filter(|(k, _)| &**k != "status") {
            k.hash(&mut h);
            v.get().hash(&mut h);
        }
        h.finish()
    }

    /// A fingerprint of what the object's users wrote: its labels and annotations but those in
    /// `ignored` (set by controllers), and every field but metadata and status.
    pub fn user_hash(&self, ignored: &[&str]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for map in [&self.metadata.labels, &self.metadata.annotations] {
            for (k, v) in map.iter().flatten() {
                if !ignored.contains(&k.as_str()) {
                    k.hash(&mut h);
                    v.hash(&mut h);
                }
            }
            0u8.hash(&mut h);
        }
        for (k, v) in self.fields.iter().filter(|(k, _)| &**k != "status") {
            k.hash(&mut h);
            v.get().hash(&mut h);
        }
        h.finish()
    }

    /// An object from a JSON value (an API response read as a whole).
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value)
    }
}

impl<'de> Deserialize<'de> for LeanObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = LeanObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanObject, A::Error> {
                let (mut api_version, mut kind, mut metadata) = (None, None, None);
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "apiVersion" => api_version = map.next_value::<Option<String>>()?,
                        "kind" => kind = map.next_value::<Option<String>>()?,
                        "metadata" => {
                            metadata =
                                Some(map.next_value::<Option<LeanMeta>>()?.unwrap_or_default())
                        }
                        _ => {
                            fields.push((key.into_boxed_str(), map.next_value::<Box<RawValue>>()?))
                        }
                    }
                }
                let types = match (api_version, kind) {
                    (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
                    (None, None) => None,
                    _ => return Err(de::Error::custom("an object needs both apiVersion and kind")),
                };
                Ok(LeanObject {
                    types,
                    metadata: metadata.map(ObjectMeta::from).unwrap_or_default(),
                    fields: fields.into(),
                })
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

impl Serialize for LeanObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(t) = &self.types {
            map.serialize_entry("apiVersion", &t.api_version)?;
            map.serialize_entry("kind", &t.kind)?;
        }
        map.serialize_entry("metadata", &self.metadata)?;
        for (k, v) in self.fields.iter() {
            map.serialize_entry(&**k, &**v)?;
        }
        map.end()
    }
}

impl kube::Resource for LeanObject {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"readyReplicas": 1}})
    }

    #[test]
    fn keeps_everything_but_managed_fields() {
        let text = sample().to_string();
        let lean: LeanObject = serde_json::from_str(&text).unwrap();
        assert_eq!(lean.metadata.name.as_deref(), Some("web"));
        assert!(lean.metadata.managed_fields.is_none());
        assert_eq!(lean.field("spec").unwrap()["replicas"], 2);
        assert_eq!(lean.raw("status").unwrap().get(), r#"{"readyReplicas":1}"#);
        let mut want = sample();
        want["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert_eq!(lean.to_value(), want);
        // The same through a JSON value (a whole response read first).
        assert_eq!(LeanObject::from_value(sample()).unwrap().to_value(), want);
    }

    #[test]
    fn content_hash_ignores_status_and_resource_version() {
        let base: LeanObject = serde_json::from_value(sample()).unwrap();
        let mut v = sample();
        v["status"]["readyReplicas"] = json!(2);
        v["metadata"]["resourceVersion"] = json!("8");
        v["metadata"]["managedFields"] = json!([]);
        let status_only: LeanObject = serde_json::from_value(v).unwrap();
        assert_eq!(base.content_hash(), status_only.content_hash());
        let mut v = sample();
        v["spec"]["replicas"] = json!(3);
        assert_ne!(base.content_hash(), LeanObject::from_value(v).unwrap().content_hash());
        let mut v = sample();
        v["metadata"]["labels"]["tier"] = json!("front");
        assert_ne!(base.content_hash(), LeanObject::from_value(v).unwrap().content_hash());
    }

    #[test]
    fn list_items_and_watch_events_decode() {
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [
            {"metadata": {"name": "a"}, "data": {"k": "v"}}]});
        let parsed: kube::core::ObjectList<LeanObject> =
            serde_json::from_str(&list.to_string()).unwrap();
        assert_eq!(parsed.items[0].field("data").unwrap()["k"], "v");
        assert!(parsed.items[0].types.is_none());
        // As Kubernetes and our API server write them: the type first.
        let event = format!(r#"{{"type":"MODIFIED","object":{}}}"#, sample());
        let parsed: kube::core::WatchEvent<LeanObject> = serde_json::from_str(&event).unwrap();
        assert!(
            matches!(parsed, kube::core::WatchEvent::Modified(o) if o.metadata.name.as_deref() == Some("web"))
        );
    }
}
