//! The Events Karmada records: upstream's reasons and messages, on the objects upstream puts
//! them on (a resource template, its binding, a Work, a Cluster), so `kubectl describe` and
//! tools waiting for an Event see what they see with upstream Karmada.
//!
//! Pure: what to say. Recording (queueing, de-duplication, the API write) is the controllers'.

/// `Normal` or `Warning`, as Kubernetes spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

/// Upstream's Event reasons (the ones karmada-rs records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    ApplyPolicySucceed,
    ApplyPolicyFailed,
    ScheduleBindingSucceed,
    ScheduleBindingFailed,
    DescheduleBindingSucceed,
    DescheduleBindingFailed,
    /// A binding's placement released for a higher-priority one (karmada-rs; Kubernetes' pod
    /// preemption reason).
    Preempted,
    SyncWorkSucceed,
    SyncWorkFailed,
    ApplyOverridePolicySucceed,
    ApplyOverridePolicyFailed,
    AggregateStatusSucceed,
    /// A Work's manifests applied to its member (upstream's `SyncSucceed`).
    SyncWorkloadSucceed,
    /// A Work's manifests not applied (upstream's `SyncFailed`).
    SyncWorkloadFailed,
    EvictWorkloadFromClusterSucceed,
    TaintClusterSucceed,
    TaintClusterFailed,
    CreateExecutionSpaceSucceed,
    RemoveExecutionSpaceSucceed,
    GetDependenciesSucceed,
    SyncScheduleResultToDependenciesSucceed,
    DependencyPolicyConflict,
    /// A Work's dispatching started or was suspended (its `Dispatching` condition changed).
    WorkDispatching,
    /// A member object's status reflected into its Work.
    ReflectStatusSucceed,
    /// A member object's health interpreted (healthy or not).
    InterpretHealthSucceed,
    /// The replicas of a template interpreted.
    GetReplicasSucceed,
    /// A policy took a template over from a lower-priority one.
    PreemptPolicySucceed,
    /// The interpreter failed on the template's replicas (a customization's script).
    GetReplicasFailed,
    /// The interpreter failed on the template's status from its members'.
    AggregateStatusFailed,
    /// The interpreter failed on a member object's status.
    ReflectStatusFailed,
    /// The interpreter failed on a member object's health.
    InterpretHealthFailed,
    /// The interpreter failed on the template's dependencies.
    GetDependenciesFailed,
    /// The components of a multi-template workload interpreted.
    GetComponentsSucceed,
    /// The interpreter failed on a multi-template workload's components.
    GetComponentsFailed,
    /// A cluster's impersonation rules (unifiedAuth) written.
    SyncImpersonationConfigSucceed,
    /// A FederatedHPA changed its target's replicas (the HPA's reason).
    SuccessfulRescale,
    /// A FederatedHPA could not change its target's replicas.
    FailedRescale,
    /// A FederatedHPA could not read its target.
    FailedGetScale,
    /// A FederatedHPA got no usable metrics.
    FailedGetResourceMetric,
    /// A ServiceImport's derived Service written.
    SyncDerivedServiceSucceed,
    /// A ServiceImport's derived Service could not be written.
    SyncDerivedServiceFailed,
    /// A MultiClusterService's Service propagated to its provider and consumer clusters.
    SyncServiceSucceed,
    /// A MultiClusterService's Service could not be propagated (or a cluster was skipped).
    SyncServiceFailed,
    /// A MultiClusterService's EndpointSlices dispatched to its consumer clusters.
    DispatchEndpointSliceSucceed,
    /// A MultiClusterService's EndpointSlices could not be dispatched.
    DispatchEndpointSliceFailed,
    /// A cluster a MultiClusterService names does not exist.
    ClusterNotFound,
    /// A cluster a MultiClusterService names does not serve EndpointSlices.
    APIIncompatible,
    /// A FederatedResourceQuota's overall usage recounted from its namespace's bindings.
    CollectOverallStatusSucceed,
    /// A FederatedResourceQuota's overall usage could not be recounted.
    CollectOverallStatusFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ApplyPolicySucceed => "ApplyPolicySucceed",
            Reason::ApplyPolicyFailed => "ApplyPolicyFailed",
            Reason::ScheduleBindingSucceed => "ScheduleBindingSucceed",
            Reason::ScheduleBindingFailed => "ScheduleBindingFailed",
            Reason::DescheduleBindingSucceed => "DescheduleBindingSucceed",
            Reason::DescheduleBindingFailed => "DescheduleBindingFailed",
            Reason::Preempted => "Preempted",
            Reason::SyncWorkSucceed => "SyncWorkSucceed",
            Reason::SyncWorkFailed => "SyncWorkFailed",
            Reason::ApplyOverridePolicySucceed => "ApplyOverridePolicySucceed",
            Reason::ApplyOverridePolicyFailed => "ApplyOverridePolicyFailed",
            Reason::AggregateStatusSucceed => "AggregateStatusSucceed",
            Reason::SyncWorkloadSucceed => "SyncSucceed",
            Reason::SyncWorkloadFailed => "SyncFailed",
            Reason::EvictWorkloadFromClusterSucceed => "EvictWorkloadFromClusterSucceed",
            Reason::TaintClusterSucceed => "TaintClusterSucceed",
            Reason::TaintClusterFailed => "TaintClusterFailed",
            Reason::CreateExecutionSpaceSucceed => "CreateExecutionSpaceSucceed",
            Reason::RemoveExecutionSpaceSucceed => "RemoveExecutionSpaceSucceed",
            Reason::GetDependenciesSucceed => "GetDependenciesSucceed",
            Reason::SyncScheduleResultToDependenciesSucceed => {
                "SyncScheduleResultToDependenciesSucceed"
            }
            Reason::DependencyPolicyConflict => "DependencyPolicyConflict",
            Reason::WorkDispatching => "WorkDispatching",
            Reason::ReflectStatusSucceed => "ReflectStatusSucceed",
            Reason::InterpretHealthSucceed => "InterpretHealthSucceed",
            Reason::GetReplicasSucceed => "GetReplicasSucceed",
            Reason::PreemptPolicySucceed => "PreemptPolicySucceed",
            Reason::GetReplicasFailed => "GetReplicasFailed",
            Reason::AggregateStatusFailed => "AggregateStatusFailed",
            Reason::ReflectStatusFailed => "ReflectStatusFailed",
            Reason::InterpretHealthFailed => "InterpretHealthFailed",
            Reason::GetDependenciesFailed => "GetDependenciesFailed",
            Reason::GetComponentsSucceed => "GetComponentsSucceed",
            Reason::GetComponentsFailed => "GetComponentsFailed",
            Reason::SyncImpersonationConfigSucceed => "SyncImpersonationConfigSucceed",
            Reason::SuccessfulRescale => "SuccessfulRescale",
            Reason::FailedRescale => "FailedRescale",
            Reason::FailedGetScale => "FailedGetScale",
            Reason::FailedGetResourceMetric => "FailedGetResourceMetric",
            Reason::SyncDerivedServiceSucceed => "SyncDerivedServiceSucceed",
            Reason::SyncDerivedServiceFailed => "SyncDerivedServiceFailed",
            Reason::SyncServiceSucceed => "SyncServiceSucceed",
            Reason::SyncServiceFailed => "SyncServiceFailed",
            Reason::DispatchEndpointSliceSucceed => "DispatchEndpointSliceSucceed",
            Reason::DispatchEndpointSliceFailed => "DispatchEndpointSliceFailed",
            Reason::ClusterNotFound => "ClusterNotFound",
            Reason::APIIncompatible => "APIIncompatible",
            Reason::CollectOverallStatusSucceed => "CollectOverallStatusSucceed",
            Reason::CollectOverallStatusFailed => "CollectOverallStatusFailed",
        }
    }

    /// The type upstream records the reason with.
    pub fn event_type(self) -> EventType {
        match self {
            Reason::ApplyPolicyFailed
            | Reason::ScheduleBindingFailed
            | Reason::DescheduleBindingFailed
            | Reason::SyncWorkFailed
            | Reason::ApplyOverridePolicyFailed
            | Reason::SyncWorkloadFailed
            | Reason::TaintClusterFailed
            | Reason::DependencyPolicyConflict
            | Reason::GetReplicasFailed
            | Reason::AggregateStatusFailed
            | Reason::ReflectStatusFailed
            | Reason::InterpretHealthFailed
            | Reason::GetDependenciesFailed
            | Reason::GetComponentsFailed
            | Reason::FailedRescale
            | Reason::FailedGetScale
            | Reason::FailedGetResourceMetric
            | Reason::SyncDerivedServiceFailed
            | Reason::SyncServiceFailed
            | Reason::DispatchEndpointSliceFailed
            | Reason::ClusterNotFound
            | Reason::APIIncompatible
            | Reason::CollectOverallStatusFailed => EventType::Warning,
            _ => EventType::Normal,
        }
    }

    /// The Events API's `action` (what the reporting controller was doing).
    pub fn action(self) -> &'static str {
        match self {
            Reason::ApplyPolicySucceed | Reason::ApplyPolicyFailed => "ApplyPolicy",
            Reason::ScheduleBindingSucceed | Reason::ScheduleBindingFailed => "Schedule",
            Reason::DescheduleBindingSucceed | Reason::DescheduleBindingFailed => "Deschedule",
            Reason::Preempted => "Preempt",
            Reason::SyncWorkSucceed | Reason::SyncWorkFailed => "SyncWork",
            Reason::ApplyOverridePolicySucceed | Reason::ApplyOverridePolicyFailed => {
                "ApplyOverridePolicy"
            }
            Reason::AggregateStatusSucceed | Reason::AggregateStatusFailed => "AggregateStatus",
            Reason::SyncWorkloadSucceed | Reason::SyncWorkloadFailed => "Apply",
            Reason::EvictWorkloadFromClusterSucceed => "Evict",
            Reason::TaintClusterSucceed | Reason::TaintClusterFailed => "Taint",
            Reason::CreateExecutionSpaceSucceed | Reason::RemoveExecutionSpaceSucceed => {
                "ExecutionSpace"
            }
            Reason::GetDependenciesSucceed | Reason::GetDependenciesFailed => "GetDependencies",
            Reason::SyncScheduleResultToDependenciesSucceed => "SyncScheduleResult",
            Reason::DependencyPolicyConflict => "SyncDependencies",
            Reason::WorkDispatching => "Dispatch",
            Reason::ReflectStatusSucceed | Reason::ReflectStatusFailed => "ReflectStatus",
            Reason::InterpretHealthSucceed | Reason::InterpretHealthFailed => "InterpretHealth",
            Reason::GetReplicasSucceed | Reason::GetReplicasFailed => "GetReplicas",
            Reason::GetComponentsSucceed | Reason::GetComponentsFailed => "GetComponents",
            Reason::SyncImpersonationConfigSucceed => "SyncImpersonationConfig",
            Reason::PreemptPolicySucceed => "PreemptPolicy",
            Reason::SuccessfulRescale | Reason::FailedRescale => "Rescale",
            Reason::FailedGetScale => "GetScale",
            Reason::FailedGetResourceMetric => "GetMetrics",
            Reason::SyncDerivedServiceSucceed | Reason::SyncDerivedServiceFailed => {
                "SyncDerivedService"
            }
            Reason::SyncServiceSucceed | Reason::SyncServiceFailed => "SyncService",
            Reason::DispatchEndpointSliceSucceed | Reason::DispatchEndpointSliceFailed => {
                "DispatchEndpointSlice"
            }
            Reason::ClusterNotFound | Reason::APIIncompatible => "CheckCluster",
            Reason::CollectOverallStatusSucceed | Reason::CollectOverallStatusFailed => {
                "CollectOverallStatus"
            }
        }
    }
}

/// A (Cluster)PropagationPolicy or (Cluster)OverridePolicy, as messages name it: `ns/name`
/// for a namespaced policy, `name` for a cluster-scoped one.
#[derive(Clone, Copy, Debug)]
pub struct PolicyName<'a> {
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// The messages, word for word as upstream writes them.
pub mod message {
    use std::fmt::Write as _;

    use super::PolicyName;

    /// A FederatedResourceQuota's Works written (`ns/name`).
    pub fn quota_works_synced(quota: &str) -> String {
        format!("Sync works for FederatedResourceQuota({quota}) succeed.")
    }

    /// A FederatedResourceQuota's status collected, from its members or from its bindings.
    pub fn quota_status_collected(quota: &str) -> String {
        format!("Collect status of FederatedResourceQuota({quota}) succeed.")
    }

    pub fn apply_policy_succeed(policy: PolicyName<'_>) -> String {
        match policy.namespace {
            Some(ns) => format!("Apply policy({ns}/{}) succeed", policy.name),
            None => format!("Apply cluster policy({}) succeed", policy.name),
        }
    }

    /// `by` took the template from `from`.
    pub fn preempted(by: PolicyName<'_>, from: PolicyName<'_>) -> String {
        let name = |p: PolicyName<'_>, capital: bool| match (p.namespace, capital) {
            (Some(ns), true) => format!("Propagation policy({ns}/{})", p.name),
            (Some(ns), false) => format!("propagation policy({ns}/{})", p.name),
            (None, true) => format!("Cluster propagation policy({})", p.name),
            (None, false) => format!("cluster propagation policy({})", p.name),
        };
        format!("{} preempted {} successfully", name(by, true), name(from, false))
    }

    pub fn apply_policy_failed(policy: PolicyName<'_>, error: &str) -> String {
        match policy.namespace {
            Some(ns) => format!("Apply policy({ns}/{}) failed: {error}", policy.name),
            None => format!("Apply cluster policy({}) failed: {error}", policy.name),
        }
    }

    /// A binding preempted by `by` (`namespace/name` or `name`) of `priority`.
    pub fn binding_preempted(by: &str, priority: i32, clusters: &[&str]) -> String {
        format!(
            "Preempted by {by} (priority {priority}): its placement on {} was released for the higher-priority workload.",
            clusters.join(", ")
        )
    }

    /// `clusters`: (name, replicas) of the schedule result.
    pub fn schedule_binding_succeed<'a>(
        clusters: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> String {
        let result: Vec<String> =
            clusters.into_iter().map(|(name, replicas)| format!("{name}:{replicas}")).collect();
        format!("Binding has been scheduled successfully. Result: {{{}}}", result.join(", "))
    }

    /// A binding: `namespace` is None for a ClusterResourceBinding.
    pub fn sync_work_succeed(namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("Sync work of ResourceBinding({ns}/{name}) successful."),
            None => format!("Sync work of ClusterResourceBinding({name}) successful."),
        }
    }

    pub fn aggregate_status_succeed(namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => {
                format!("Update ResourceBinding({ns}/{name}) with AggregatedStatus successfully.")
            }
            None => {
                format!("Update ClusterResourceBinding({name}) with AggregatedStatus successfully.")
            }
        }
    }

    pub fn apply_override_policy(policy: PolicyName<'_>, cluster: &str, succeeded: bool) -> String {
        let outcome = if succeeded { "succeed" } else { "failed" };
        match policy.namespace {
            Some(ns) => {
                format!(
                    "Apply override policy({ns}/{}) for cluster({cluster}) {outcome}.",
                    policy.name
                )
            }
            None => format!(
                "Apply cluster override policy({}) for cluster({cluster}) {outcome}.",
                policy.name
            ),
        }
    }

    /// On the resource template a Work's manifest came from.
    pub fn workload_applied(namespace: &str, name: &str, cluster: &str) -> String {
        format!("Successfully applied resource({namespace}/{name}) to cluster {cluster}")
    }

    /// On the Work.
    pub fn work_synced(namespace: &str, name: &str, cluster: &str) -> String {
        format!("Sync work({namespace}/{name}) to cluster({cluster}) successful.")
    }

    pub fn work_sync_failed(namespace: &str, name: &str, cluster: &str, error: &str) -> String {
        format!("Failed to sync work({namespace}/{name}) to cluster({cluster}), err: {error}")
    }

    pub fn status_reflected(kind: &str, namespace: &str, name: &str) -> String {
        format!("Reflect status for object({kind}/{namespace}/{name}) succeed.")
    }

    pub fn health_interpreted(kind: &str, namespace: &str, name: &str, healthy: bool) -> String {
        let health = if healthy { "healthy" } else { "unhealthy" };
        format!("Interpret health of object({kind}/{namespace}/{name}) as {health}.")
    }

    pub const REPLICAS_INTERPRETED: &str = "Get replicas of resource template successfully.";

    pub const COMPONENTS_INTERPRETED: &str = "Get components of resource template successfully.";

    pub const IMPERSONATION_SYNCED: &str = "Sync impersonation config succeed.";

    /// On a template whose status was aggregated from its members.
    pub const TEMPLATE_STATUS_AGGREGATED: &str =
        "Update Resource with AggregatedStatus successfully.";

    pub fn evicted(cluster: &str) -> String {
        format!("Evict from cluster {cluster} succeed.")
    }

    /// Taints as `{Key:k,Value:v,Effect:e}` (Value left out when empty).
    pub fn taints(taints: &[crate::cluster::Taint]) -> String {
        if taints.is_empty() {
            return "cluster now does not have taints".into();
        }
        let mut out = String::new();
        for (i, t) in taints.iter().enumerate() {
            let (key, value, effect) = (&t.key, &t.value, &t.effect);
            if i > 0 {
                out.push(',');
            }
            if value.is_empty() {
                let _ = write!(out, "{{Key:{key},Effect:{effect}}}");
            } else {
                let _ = write!(out, "{{Key:{key},Value:{value},Effect:{effect}}}");
            }
        }
        format!("cluster now has taints([{out}])")
    }

    /// The cluster controller's not-ready/unreachable taints.
    pub fn taint_cluster_succeed(taints: &str) -> String {
        format!("Taint cluster succeed: {taints}.")
    }

    /// A ClusterTaintPolicy's taints.
    pub fn cluster_taints_updated(cluster: &str, taints: &str) -> String {
        format!("Update Cluster({cluster}) with taints({taints}) succeed")
    }

    pub fn execution_space_created(namespace: &str, cluster: &str) -> String {
        format!("Created execution space({namespace}) for cluster({cluster}).")
    }

    pub fn execution_space_removed(cluster: &str) -> String {
        format!("Removed execution space for cluster({cluster}).")
    }

    /// One dependency: apiVersion, kind, namespace, name (Go's `%+v` of upstream's
    /// references, whose label selector is nil for a named dependency).
    pub fn dependencies_found<'a>(
        dependencies: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
    ) -> String {
        let items: Vec<String> = dependencies
            .into_iter()
            .map(|(api_version, kind, namespace, name)| {
                format!("{{APIVersion:{api_version} Kind:{kind} Namespace:{namespace} Name:{name} LabelSelector:<nil>}}")
            })
            .collect();
        format!("Get dependencies([{}]) succeed.", items.join(" "))
    }

    /// A Work's `Dispatching` condition (and Event) while dispatching is suspended.
    pub const WORK_DISPATCHING_SUSPENDED: &str = "Work dispatching is in a suspended state.";
    /// ... and otherwise.
    pub const WORK_DISPATCHING: &str = "Work is being dispatched to member clusters.";

    pub const SCHEDULE_RESULT_SYNCED_TO_DEPENDENCIES: &str =
        "Sync schedule results to dependencies succeed.";

    /// `conflicts`: which settings of the bindings requiring a dependency disagree.
    pub fn dependency_policy_conflict(conflict_resolution: bool, preserve: bool) -> Option<String> {
        let mut reasons = Vec::new();
        if conflict_resolution {
            reasons.push("ConflictResolution conflicted (Overwrite vs Abort)");
        }
        if preserve {
            reasons.push("PreserveResourcesOnDeletion conflicted (true vs false)");
        }
        (!reasons.is_empty())
            .then(|| format!("Dependency policy conflict detected: {}.", reasons.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::message::*;
    use super::*;

    #[test]
    fn messages_read_like_upstreams() {
        let pp = PolicyName { namespace: Some("default"), name: "nginx" };
        let cpp = PolicyName { namespace: None, name: "all" };
        assert_eq!(apply_policy_succeed(pp), "Apply policy(default/nginx) succeed");
        assert_eq!(apply_policy_succeed(cpp), "Apply cluster policy(all) succeed");
        assert_eq!(
            preempted(pp, cpp),
            "Propagation policy(default/nginx) preempted cluster propagation policy(all) successfully"
        );
        assert_eq!(
            schedule_binding_succeed([("member1", 2), ("member2", 0)]),
            "Binding has been scheduled successfully. Result: {member1:2, member2:0}"
        );
        assert_eq!(
            sync_work_succeed(Some("default"), "nginx-deployment"),
            "Sync work of ResourceBinding(default/nginx-deployment) successful."
        );
        assert_eq!(
            apply_override_policy(cpp, "member1", true),
            "Apply cluster override policy(all) for cluster(member1) succeed."
        );
        let taint = |key: &str, value: &str, effect: &str| crate::cluster::Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
            time_added: None,
        };
        assert_eq!(
            taints(&[
                taint("cluster.karmada.io/not-ready", "", "NoSchedule"),
                taint("a", "b", "NoExecute")
            ]),
            "cluster now has taints([{Key:cluster.karmada.io/not-ready,Effect:NoSchedule},{Key:a,Value:b,Effect:NoExecute}])"
        );
        assert_eq!(taints(&[]), "cluster now does not have taints");
        assert_eq!(
            dependency_policy_conflict(true, true).unwrap(),
            "Dependency policy conflict detected: ConflictResolution conflicted (Overwrite vs Abort); PreserveResourcesOnDeletion conflicted (true vs false)."
        );
        assert_eq!(dependency_policy_conflict(false, false), None);
        assert_eq!(
            dependencies_found([
                ("v1", "ConfigMap", "default", "cm"),
                ("v1", "Secret", "default", "s")
            ]),
            "Get dependencies([{APIVersion:v1 Kind:ConfigMap Namespace:default Name:cm LabelSelector:<nil>} {APIVersion:v1 Kind:Secret Namespace:default Name:s LabelSelector:<nil>}]) succeed."
        );
        assert_eq!(Reason::SyncWorkloadSucceed.as_str(), "SyncSucceed");
        assert_eq!(Reason::EvictWorkloadFromClusterSucceed.event_type(), EventType::Normal);
        assert_eq!(Reason::DependencyPolicyConflict.event_type(), EventType::Warning);
    }
}
