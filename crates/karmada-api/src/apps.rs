//! `apps.karmada.io/v1alpha1`: WorkloadRebalancer; `search.karmada.io/v1alpha1`:
//! ResourceRegistry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::LocalSecretReference;
use crate::policy::ClusterAffinity;

/// A workload to reschedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRebalancerSpec {
    pub workloads: Vec<WorkloadReference>,
    /// Delete the rebalancer this long after it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedWorkload {
    pub workload: WorkloadReference,
    /// `Successful` or `Failed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result: String,
    /// e.g. `ReferencedBindingNotFound`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRebalancerStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_workloads: Vec<ObservedWorkload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Time>,
}

crate::object! {
    "apps.karmada.io/v1alpha1",
    /// Reschedules workloads from scratch once.
    WorkloadRebalancer {
        pub spec: WorkloadRebalancerSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<WorkloadRebalancerStatus>,
    }
}

/// Which member resources a ResourceRegistry caches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySelector {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenSearchConfig {
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalSecretReference>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendStoreConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_search: Option<OpenSearchConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRegistrySpec {
    pub target_cluster: ClusterAffinity,
    pub resource_selectors: Vec<RegistrySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_store: Option<BackendStoreConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRegistryStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

crate::object! {
    "search.karmada.io/v1alpha1",
    /// `search.karmada.io/v1alpha1`: caches member resources for search.
    ResourceRegistry {
        pub spec: ResourceRegistrySpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<ResourceRegistryStatus>,
    }
}
