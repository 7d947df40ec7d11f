//! `policy.karmada.io/v1alpha1`: PropagationPolicy, ClusterPropagationPolicy, OverridePolicy,
//! ClusterOverridePolicy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn is_false(b: &bool) -> bool {
    !*b
}

/// Selects resource templates by type and by name, namespace or labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSelector {
    /// The API version of the target resources, e.g. `apps/v1`.
    pub api_version: String,
    /// The kind of the target resources, e.g. `Deployment`.
    pub kind: String,
    /// The namespace of the target resources (a PropagationPolicy's own namespace when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The name of the target resource (all names when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Selects resources by label; ignored when `name` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// Cluster fields a placement can select on: `provider`, `region`, `zone`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<NodeSelectorRequirement>,
}

/// Which clusters a policy (or an override rule) targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinity {
    /// Selects clusters by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Selects clusters by `provider`, `region` or `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// Selects these clusters by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_names: Vec<String>,
    /// Never selects these clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// One term of the ordered `clusterAffinities` list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinityTerm {
    /// The unique name of this term; the scheduler records the term in use in the binding's `status.schedulerObservingAffinityName`.
    pub affinity_name: String,
    #[serde(flatten)]
    pub affinity: ClusterAffinity,
    /// Further cluster groups a workload's replicas overflow into, in order, when the term's
    /// own clusters (the primary group) lack room; they leave them in reverse order on
    /// scale-down. A cluster in several groups belongs to the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overflow_affinities: Vec<OverflowClusterAffinity>,
}

/// A cluster group a workload overflows into.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverflowClusterAffinity {
    /// The group's name.
    pub affinity_name: String,
    #[serde(flatten)]
    pub affinity: ClusterAffinity,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpreadConstraint {
    /// `cluster`, `region`, `zone` or `provider`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spread_by_field: String,
    /// Spread over groups of clusters by this label (exclusive with `spreadByField`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spread_by_label: String,
    /// At most this many groups are selected.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_groups: i64,
    /// At least this many groups are selected (1 when unset).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_groups: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticClusterWeight {
    /// The clusters that get this weight.
    pub target_cluster: ClusterAffinity,
    /// The relative share of replicas of the matched clusters.
    pub weight: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPreferences {
    /// Fixed weights per cluster group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_weight_list: Vec<StaticClusterWeight>,
    /// `AvailableReplicas`.
    #[serde(default, skip_serializing_if = "DynamicWeight::is_unset")]
    pub dynamic_weight: DynamicWeight,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSchedulingStrategy {
    /// `Duplicated` or `Divided`.
    #[serde(default, skip_serializing_if = "ReplicaSchedulingType::is_unset")]
    pub replica_scheduling_type: ReplicaSchedulingType,
    /// `Aggregated` or `Weighted` (for `Divided`).
    #[serde(default, skip_serializing_if = "ReplicaDivisionPreference::is_unset")]
    pub replica_division_preference: ReplicaDivisionPreference,
    /// How `Divided`/`Weighted` replicas are weighted: `staticWeightList` or `dynamicWeight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_preference: Option<ClusterPreferences>,
}

/// Where and how a resource is placed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The clusters the resource may be placed in (exclusive with `clusterAffinities`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_affinity: Option<ClusterAffinity>,
    /// Ordered cluster groups: the first group that can hold the resource is used, later ones are fallbacks (exclusive with `clusterAffinity`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_affinities: Vec<ClusterAffinityTerm>,
    /// The cluster taints the resource tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_tolerations: Vec<Toleration>,
    /// How many clusters, regions, zones or providers the resource spreads over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread_constraints: Vec<SpreadConstraint>,
    /// How replicas are placed: duplicated to every cluster, or divided among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_scheduling: Option<ReplicaSchedulingStrategy>,
    /// Co-location with, or separation from, the workloads of the same group (by a label of
    /// the template; groups are per namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_affinity: Option<WorkloadAffinity>,
}

/// Inter-workload affinity and anti-affinity (both hard requirements).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinity {
    /// Workloads of the same group go only where the group's scheduled workloads are (the
    /// first of a group goes anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<WorkloadAffinityTerm>,
    /// Workloads of the same group avoid the clusters where the group's workloads are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<WorkloadAffinityTerm>,
}

/// A workload group: the templates with the same value of a label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinityTerm {
    /// The template label whose value names the group.
    pub group_by_label_key: String,
}

impl Placement {
    /// Whether replicas are divided over the clusters (else every cluster gets them all).
    pub fn divides_replicas(&self) -> bool {
        self.replica_scheduling
            .as_ref()
            .is_some_and(|r| r.replica_scheduling_type == ReplicaSchedulingType::Divided)
    }

    /// Whether replicas are divided by what the clusters can take (Aggregated, or Weighted by a
    /// dynamic weight): the placements the descheduler may take replicas from.
    pub fn divides_dynamically(&self) -> bool {
        let Some(r) = self.replica_scheduling.as_ref().filter(|_| self.divides_replicas()) else {
            return false;
        };
        match r.replica_division_preference {
            ReplicaDivisionPreference::Aggregated => true,
            ReplicaDivisionPreference::Weighted => {
                r.weight_preference.as_ref().is_some_and(|w| !w.dynamic_weight.is_unset())
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionConditions {
    /// How long a cluster's copy may stay unhealthy before failing over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservationRule {
    /// The label the preserved value is written to on the new cluster's copy.
    pub alias_label_name: String,
    /// The JSONPath of the value, in the failed cluster's status.
    pub json_path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservation {
    #[serde(default)]
    pub rules: Vec<StatePreservationRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFailoverBehavior {
    /// When a copy counts as failed.
    #[serde(default)]
    pub decision_conditions: DecisionConditions,
    /// `Directly`, `Gracefully` or `Never` (older: `Immediately`, `Graciously`).
    #[serde(default, skip_serializing_if = "PurgeMode::is_unset")]
    pub purge_mode: PurgeMode,
    /// With `Gracefully`: how long the old copy may stay while the new one becomes healthy (600 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i32>,
    /// State carried from the failed copy to the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFailoverBehavior {
    #[serde(default, skip_serializing_if = "PurgeMode::is_unset")]
    pub purge_mode: PurgeMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverBehavior {
    /// Failover when an application's copy is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationFailoverBehavior>,
    /// Failover when a cluster fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFailoverBehavior>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendClusters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_names: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    /// Stop applying changes to every member cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching: Option<bool>,
    /// Stop applying changes to these clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching_on_clusters: Option<SuspendClusters>,
    /// Stop scheduling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePriority {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_name: String,
}

/// The spec of PropagationPolicy and ClusterPropagationPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationSpec {
    /// The resource templates this policy propagates.
    #[serde(default)]
    pub resource_selectors: Vec<ResourceSelector>,
    /// Deprecated in favour of `propagateDeps`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub association: bool,
    /// Propagate the ConfigMaps, Secrets, ServiceAccounts and PVCs a workload uses along with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_deps: bool,
    /// Where and how the resources are placed.
    #[serde(default)]
    pub placement: Placement,
    /// Among policies matching a resource, the highest priority wins (0 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `Always` or `Never`.
    #[serde(default, skip_serializing_if = "Preemption::is_unset")]
    pub preemption: Preemption,
    /// OverridePolicies that must exist before the resources propagate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependent_overrides: Vec<String>,
    /// The scheduler that places the resources (`default-scheduler` when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
    /// Application and cluster failover behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverBehavior>,
    /// `Abort` or `Overwrite`.
    #[serde(default, skip_serializing_if = "ConflictResolution::is_unset")]
    pub conflict_resolution: ConflictResolution,
    /// `Lazy`, or empty.
    #[serde(default, skip_serializing_if = "ActivationPreference::is_unset")]
    pub activation_preference: ActivationPreference,
    /// Pauses scheduling or dispatching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    /// Keep member clusters' copies when the template is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_resources_on_deletion: Option<bool>,
    /// The priority of the resources in the scheduling queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_priority: Option<SchedulePriority>,
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    PropagationPolicy {
        #[serde(default)]
        pub spec: PropagationSpec,
    }
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    ClusterPropagationPolicy {
        #[serde(default)]
        pub spec: PropagationSpec,
    }
}

/// RFC 6902-style operation at a JSON pointer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaintextOverrider {
    /// A JSON pointer into the resource, e.g. `/spec/replicas`.
    pub path: String,
    /// `add`, `remove` or `replace`.
    pub operator: OverriderOperator,
    /// The value to add or replace with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePredicate {
    pub path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageOverrider {
    /// The image field to change (every container image when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<ImagePredicate>,
    /// `Registry`, `Repository` or `Tag`.
    pub component: ImageComponent,
    /// `add`, `remove` or `replace`.
    pub operator: OverriderOperator,
    /// The new registry, repository or tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandArgsOverrider {
    /// The container to change.
    pub container_name: String,
    /// `add` or `remove`.
    pub operator: OverriderOperator,
    /// The items to add or remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelAnnotationOverrider {
    /// `add`, `remove` or `replace`.
    pub operator: OverriderOperator,
    /// The keys and values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchOperation {
    /// A JSON pointer inside the document.
    pub sub_path: String,
    /// `add`, `remove` or `replace`.
    pub operator: OverriderOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldOverrider {
    /// A JSON pointer to the string field holding the document.
    pub field_path: String,
    /// Operations on a JSON document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<PatchOperation>,
    /// Operations on a YAML document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yaml: Vec<PatchOperation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overriders {
    /// JSON-patch-like operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plaintext: Vec<PlaintextOverrider>,
    /// Changes to container images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_overrider: Vec<ImageOverrider>,
    /// Changes to container commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_overrider: Vec<CommandArgsOverrider>,
    /// Changes to container arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args_overrider: Vec<CommandArgsOverrider>,
    /// Changes to labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_overrider: Vec<LabelAnnotationOverrider>,
    /// Changes to annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations_overrider: Vec<LabelAnnotationOverrider>,
    /// Changes inside a JSON or YAML document held in a string field (e.g. a ConfigMap value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_overrider: Vec<FieldOverrider>,
}

impl Overriders {
    pub fn is_empty(&self) -> bool {
        self == &Overriders::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleWithCluster {
    /// The clusters this rule applies to (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// The changes to make.
    #[serde(default)]
    pub overriders: Overriders,
}

/// The spec of OverridePolicy and ClusterOverridePolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// The resource templates this policy customises (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_selectors: Vec<ResourceSelector>,
    /// Per-cluster changes, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub override_rules: Vec<RuleWithCluster>,
    /// Deprecated: use `overrideRules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// Deprecated: use `overrideRules`.
    #[serde(default, skip_serializing_if = "Overriders::is_empty")]
    pub overriders: Overriders,
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    OverridePolicy {
        #[serde(default)]
        pub spec: OverrideSpec,
    }
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    ClusterOverridePolicy {
        #[serde(default)]
        pub spec: OverrideSpec,
    }
}

/// One cluster's share of a FederatedResourceQuota.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticClusterAssignment {
    pub cluster_name: String,
    /// The hard limits in this cluster (a ResourceQuota's `hard`).
    pub hard: BTreeMap<String, Quantity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedResourceQuotaSpec {
    /// The total quota of the namespace across all clusters.
    #[serde(default)]
    pub overall: BTreeMap<String, Quantity>,
    /// Fixed shares of the overall quota per cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_assignments: Vec<StaticClusterAssignment>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterQuotaStatus {
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hard: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub used: BTreeMap<String, Quantity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedResourceQuotaStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overall: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overall_used: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregated_status: Vec<ClusterQuotaStatus>,
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    /// A namespace's resource quota across clusters.
    FederatedResourceQuota {
        pub spec: FederatedResourceQuotaSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<FederatedResourceQuotaStatus>,
    }
}

/// A test on one of a cluster's status conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchCondition {
    /// The condition's type, e.g. `Ready`.
    pub condition_type: String,
    /// `In` or `NotIn`.
    pub operator: MatchConditionOperator,
    /// The condition statuses (`True`, `False`, `Unknown`) the operator compares with.
    pub status_values: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MatchConditionOperator {
    #[default]
    In,
    NotIn,
}

/// A taint a ClusterTaintPolicy adds or removes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTaint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// `NoSchedule` or `NoExecute`.
    pub effect: crate::cluster::TaintEffect,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTaintPolicySpec {
    /// The clusters the policy applies to (all clusters when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_clusters: Option<ClusterAffinity>,
    /// When all of these hold, the taints are added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_on_conditions: Vec<MatchCondition>,
    /// When all of these hold, the taints are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_on_conditions: Vec<MatchCondition>,
    pub taints: Vec<PolicyTaint>,
}

crate::object! {
    "policy.karmada.io/v1alpha1",
    /// Taints clusters by their status conditions.
    ClusterTaintPolicy {
        pub spec: ClusterTaintPolicySpec,
    }
}

crate::string_enum! {
    /// How replicas are scheduled: every cluster gets them all, or they are divided.
    ReplicaSchedulingType {
        Duplicated = "Duplicated",
        Divided = "Divided",
    }
}

crate::string_enum! {
    /// How divided replicas are split: packed into few clusters, or by weight.
    ReplicaDivisionPreference {
        Aggregated = "Aggregated",
        Weighted = "Weighted",
    }
}

crate::string_enum! {
    /// Weights computed from the clusters (instead of a static list).
    DynamicWeight {
        AvailableReplicas = "AvailableReplicas",
    }
}

crate::string_enum! {
    /// When a workload's copy leaves a cluster it is evicted from.
    PurgeMode {
        /// At once.
        Directly = "Directly",
        /// Once the workload is healthy elsewhere (or the grace period ends).
        Gracefully = "Gracefully",
        /// Never: the copy stays until the eviction task is removed.
        Never = "Never",
        /// The older name of `Directly`.
        Immediately = "Immediately",
        /// The older name of `Gracefully`.
        Graciously = "Graciously",
    }
}

impl PurgeMode {
    /// Whether the evicted cluster's copy goes at once.
    pub fn is_direct(&self) -> bool {
        matches!(self, PurgeMode::Directly | PurgeMode::Immediately)
    }
}

crate::string_enum! {
    /// What happens when a member already has an object Karmada did not create.
    ConflictResolution {
        /// Leave it and report the conflict (the default).
        Abort = "Abort",
        /// Take it over.
        Overwrite = "Overwrite",
    }
}

crate::string_enum! {
    /// Whether a policy may take templates claimed by a lower-priority policy.
    Preemption {
        Always = "Always",
        Never = "Never",
    }
}

crate::string_enum! {
    /// When a policy's changes take effect: at once (unset), or when the template next changes.
    ActivationPreference {
        Lazy = "Lazy",
    }
}

crate::string_enum! {
    /// What an overrider does at its place.
    OverriderOperator {
        Add = "add",
        Remove = "remove",
        Replace = "replace",
    }
}

crate::string_enum! {
    /// The part of an image reference an image overrider changes.
    ImageComponent {
        Registry = "Registry",
        Repository = "Repository",
        Tag = "Tag",
    }
}
