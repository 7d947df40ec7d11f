//! `work.karmada.io/v1alpha1` ResourceBinding and ClusterResourceBinding: the older version,
//! served with its own schema and converted to and from the stored v1alpha2 form as upstream's
//! conversion webhook does. v1alpha1 knows the template reference (with its per-replica requests
//! and replicas inside it), the target clusters' names and replicas, the conditions and the
//! aggregated status' cluster, status, applied and appliedMessage; whatever v1alpha2 adds is not
//! seen through v1alpha1 (a v1alpha1 write replaces the object with what it can say, as upstream).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The template reference of v1alpha1, which carries the workload's replicas and requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// What one replica requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_per_replicas: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetCluster {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceBindingSpec {
    pub resource: ObjectReference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<TargetCluster>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedStatusItem {
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub applied_message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceBindingStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregated_status: Vec<AggregatedStatusItem>,
}

crate::object! {
    "work.karmada.io/v1alpha1",
    ResourceBinding {
        pub spec: ResourceBindingSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<ResourceBindingStatus>,
    }
}

/// The v1alpha1 schema (both binding kinds have the same shape).
pub fn schema() -> Value {
    crate::schema::of::<ResourceBinding>()
}

fn pick(from: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| from.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

fn with_version(mut object: Value, version: &str) -> Value {
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str) {
        let group = api_version.split_once('/').map_or("", |(g, _)| g).to_owned();
        object["apiVersion"] = json!(format!("{group}/{version}"));
    }
    object
}

/// The target clusters as both versions have them in common (names and replicas).
fn clusters(spec: &Value) -> Option<Value> {
    let clusters = spec.get("clusters")?.as_array()?;
    Some(Value::Array(
        clusters.iter().map(|c| Value::Object(pick(c, &["name", "replicas"]))).collect(),
    ))
}

/// The items of an aggregated status as both versions have them in common.
fn aggregated(status: &Value) -> Option<Value> {
    let items: Vec<Value> = status
        .get("aggregatedStatus")?
        .as_array()?
        .iter()
        .map(|i| Value::Object(pick(i, &["clusterName", "status", "applied", "appliedMessage"])))
        .collect();
    (!items.is_empty()).then_some(Value::Array(items))
}

fn status_of(object: &Value) -> Option<Value> {
    let status = object.get("status")?;
    let mut out = pick(status, &["conditions"]);
    if let Some(items) = aggregated(status) {
        out.insert("aggregatedStatus".into(), items);
    }
    Some(Value::Object(out))
}

/// A v1alpha1 binding in the stored (v1alpha2) form.
pub fn to_v1alpha2(object: Value) -> Value {
    let resource = object.pointer("/spec/resource").cloned().unwrap_or_else(|| json!({}));
    let mut spec = Map::new();
    spec.insert(
        "resource".into(),
        Value::Object(pick(
            &resource,
            &["apiVersion", "kind", "namespace", "name", "resourceVersion"],
        )),
    );
    if let Some(requests) = resource.get("resourcePerReplicas").filter(|r| !r.is_null()) {
        spec.insert("replicaRequirements".into(), json!({"resourceRequest": requests}));
    }
    if let Some(replicas) = resource.get("replicas").filter(|r| !r.is_null()) {
        spec.insert("replicas".into(), replicas.clone());
    }
    if let Some(clusters) = clusters(&object["spec"]) {
        spec.insert("clusters".into(), clusters);
    }
    let mut out = pick(&object, &["apiVersion", "kind", "metadata"]);
    out.insert("spec".into(), Value::Object(spec));
    if let Some(status) = status_of(&object) {
        out.insert("status".into(), status);
    }
    with_version(Value::Object(out), "v1alpha2")
}

/// A stored (v1alpha2) binding as v1alpha1 shows it.
pub fn from_v1alpha2(object: Value) -> Value {
    let spec = object.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut resource = spec
        .get("resource")
        .map(|r| pick(r, &["apiVersion", "kind", "namespace", "name", "resourceVersion"]))
        .unwrap_or_default();
    if let Some(requests) =
        spec.pointer("/replicaRequirements/resourceRequest").filter(|r| !r.is_null())
    {
        resource.insert("resourcePerReplicas".into(), requests.clone());
    }
    if let Some(replicas) = spec.get("replicas").filter(|r| !r.is_null() && **r != json!(0)) {
        resource.insert("replicas".into(), replicas.clone());
    }
    let mut v1 = Map::new();
    v1.insert("resource".into(), Value::Object(resource));
    if let Some(clusters) = clusters(&spec) {
        v1.insert("clusters".into(), clusters);
    }
    let mut out = pick(&object, &["apiVersion", "kind", "metadata"]);
    out.insert("spec".into(), Value::Object(v1));
    if let Some(status) = status_of(&object) {
        out.insert("status".into(), status);
    }
    with_version(Value::Object(out), "v1alpha1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_convert_both_ways_as_upstream() {
        let stored = json!({
            "apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "default", "resourceVersion": "7"},
            "spec": {
                "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default",
                             "name": "web", "uid": "u1", "resourceVersion": "3"},
                "replicas": 3,
                "replicaRequirements": {"resourceRequest": {"cpu": "100m"}, "namespace": "default"},
                "clusters": [{"name": "member1", "replicas": 2, "components": [{"name": "a", "replicas": 1}]},
                             {"name": "member2", "replicas": 1}],
                "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2"]}},
                "conflictResolution": "Abort"
            },
            "status": {
                "schedulerObservedGeneration": 2,
                "conditions": [{"type": "Scheduled", "status": "True", "reason": "Success", "message": "",
                                "lastTransitionTime": "2026-12-07T00:00:00Z"}],
                "aggregatedStatus": [{"clusterName": "member1", "applied": true, "health": "Healthy",
                                      "status": {"readyReplicas": 2}}]
            }
        });
        let old = from_v1alpha2(stored.clone());
        assert_eq!(
            old,
            json!({
                "apiVersion": "work.karmada.io/v1alpha1", "kind": "ResourceBinding",
                "metadata": {"name": "web-deployment", "namespace": "default", "resourceVersion": "7"},
                "spec": {
                    "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default",
                                 "name": "web", "resourceVersion": "3",
                                 "resourcePerReplicas": {"cpu": "100m"}, "replicas": 3},
                    "clusters": [{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 1}]
                },
                "status": {
                    "conditions": stored["status"]["conditions"],
                    "aggregatedStatus": [{"clusterName": "member1", "applied": true, "status": {"readyReplicas": 2}}]
                }
            })
        );
        // Back: what v1alpha1 carries comes back where v1alpha2 keeps it.
        let back = to_v1alpha2(old);
        assert_eq!(back["apiVersion"], "work.karmada.io/v1alpha2");
        assert_eq!(back["spec"]["replicas"], 3);
        assert_eq!(
            back["spec"]["replicaRequirements"],
            json!({"resourceRequest": {"cpu": "100m"}})
        );
        assert_eq!(
            back["spec"]["clusters"],
            json!([{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 1}])
        );
        assert_eq!(back["spec"]["resource"]["name"], "web");
        assert_eq!(back["status"]["aggregatedStatus"][0]["clusterName"], "member1");
        // A v1alpha1 object round-trips unchanged.
        let v1 = json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "ClusterResourceBinding",
            "metadata": {"name": "ns-binding"},
            "spec": {"resource": {"apiVersion": "v1", "kind": "Namespace", "name": "ns"},
                     "clusters": [{"name": "member1"}]}});
        assert_eq!(from_v1alpha2(to_v1alpha2(v1.clone())), v1);
    }
}
