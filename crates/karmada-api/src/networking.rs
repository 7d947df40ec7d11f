//! `networking.karmada.io/v1alpha1`: MultiClusterService and MultiClusterIngress.

use k8s_openapi::api::core::v1::ServiceStatus;
use k8s_openapi::api::networking::v1::{IngressLoadBalancerStatus, IngressSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposurePort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub port: i32,
}

/// Deprecated: use `providerClusters` / `consumerClusters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposureRange {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_names: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSelector {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterServiceSpec {
    /// `CrossCluster` and/or `LoadBalancer`.
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ExposurePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ExposureRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_provision_clusters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_consumption_clusters: Vec<String>,
    /// The clusters that provide the service's backends (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_clusters: Vec<ClusterSelector>,
    /// The clusters where the service is consumed (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_clusters: Vec<ClusterSelector>,
}

/// How a MultiClusterService exposes its Service (`spec.types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExposureType {
    /// Reachable from the consumer clusters through the providers' endpoints.
    CrossCluster,
    /// Exposed through the members' load balancers.
    LoadBalancer,
}

impl ExposureType {
    pub const NAMES: &[&str] = &["CrossCluster", "LoadBalancer"];

    pub fn parse(s: &str) -> Option<ExposureType> {
        match s {
            "CrossCluster" => Some(ExposureType::CrossCluster),
            "LoadBalancer" => Some(ExposureType::LoadBalancer),
            _ => None,
        }
    }
}

impl MultiClusterServiceSpec {
    /// Whether `spec.types` holds `t`.
    pub fn exposes(&self, t: ExposureType) -> bool {
        self.types.iter().any(|s| ExposureType::parse(s) == Some(t))
    }

    /// The provider clusters named (empty: every cluster).
    pub fn provider_names(&self) -> Vec<&str> {
        self.provider_clusters.iter().map(|c| c.name.as_str()).collect()
    }

    /// The consumer clusters named (empty: every cluster).
    pub fn consumer_names(&self) -> Vec<&str> {
        self.consumer_clusters.iter().map(|c| c.name.as_str()).collect()
    }
}

crate::object! {
    "networking.karmada.io/v1alpha1",
    /// Exposes a Service across clusters.
    MultiClusterService {
        pub spec: MultiClusterServiceSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<ServiceStatus>,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLocation {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterIngressStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<IngressLoadBalancerStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_block_clusters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_locations: Vec<ServiceLocation>,
}

crate::object! {
    "networking.karmada.io/v1alpha1",
    /// An Ingress across clusters.
    MultiClusterIngress {
        #[serde(default)]
        pub spec: IngressSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<MultiClusterIngressStatus>,
    }
}
