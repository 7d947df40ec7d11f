//! The controller registry: every controller of upstream's controller-manager and agent, by
//! upstream's name, whether it runs by default, and which of our loops does its work.
//!
//! `--controllers` selects them as upstream's flag does: `*` turns on every controller that is
//! on by default, `foo` turns `foo` on, `-foo` turns it off, and the first item that names a
//! controller decides it. Where one of our loops does the work of several upstream
//! controllers (the binding loop renders Works *and* aggregates their status), the loop runs
//! when any of them is on and does only the parts that are on.
//!
//! The resource detector and the dependencies distributor are not in the table: upstream
//! always runs them too (the distributor behind its `PropagateDeps` feature gate, on by
//! default).

use std::collections::BTreeSet;

use karmada_api::features::{Feature, FeatureGates};

/// One of our controller loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loop {
    /// `cluster`: execution namespaces, cleanup of removed clusters, not-ready taints.
    Cluster,
    /// `clusterStatus`: push members' status.
    ClusterStatus,
    /// `binding`, `bindingStatus`, `gracefulEviction`: bindings → Works, their status back.
    Binding,
    /// `execution`, `workStatus`: Works applied to push members, member status reflected.
    Execution,
    /// `namespace`: namespaces propagated to every cluster.
    Namespace,
    /// `applicationFailover` and the taint manager (`cluster` with `--enable-taint-manager`).
    Failover,
    /// `clustertaintpolicy`: ClusterTaintPolicies → cluster taints.
    TaintPolicy,
    /// `workloadRebalancer`.
    Rebalancer,
    /// `unifiedAuth`: members let the cluster proxy's impersonator act for granted callers.
    UnifiedAuth,
    /// `federatedHorizontalPodAutoscaler`: FederatedHPAs scale their targets.
    FederatedHpa,
    /// `cronFederatedHorizontalPodAutoscaler`: scheduled scaling.
    CronFederatedHpa,
    /// `hpaScaleTargetMarker`: targets of propagated HPAs keep their members' replicas.
    HpaScaleTargetMarker,
    /// `deploymentReplicasSyncer`: member replicas flow back to Divided Deployments.
    DeploymentReplicasSyncer,
    /// `serviceImport`: ServiceImports get their derived Service.
    ServiceImport,
    /// `serviceExport`, `endpointsliceCollect`: members' EndpointSlices of exported Services
    /// and of MultiClusterServices' providers collected as Works.
    Collect,
    /// `multiclusterservice`: MultiClusterServices' Works, Service claims and bindings.
    MultiClusterService,
    /// `endpointsliceDispatch`: collected EndpointSlices dispatched to consumer clusters.
    EndpointSliceDispatch,
    /// `endpointSlice`: collected Works become EndpointSlices of the derived Services.
    EndpointSlice,
    /// `remedy`: clusters' `status.remedyActions` from the Remedies matching their conditions.
    Remedy,
    /// `federatedResourceQuotaSync`, `federatedResourceQuotaStatus`,
    /// `federatedResourceQuotaEnforcement`: FederatedResourceQuotas' member ResourceQuotas and
    /// status.
    FederatedResourceQuota,
    /// The agent's status reporter (`clusterStatus` in the agent).
    AgentStatus,
}

impl Loop {
    /// How logs and errors name the loop (upstream's name of its main controller).
    pub fn name(self) -> &'static str {
        match self {
            Loop::Cluster => names::CLUSTER,
            Loop::ClusterStatus | Loop::AgentStatus => names::CLUSTER_STATUS,
            Loop::Binding => names::BINDING,
            Loop::Execution => names::EXECUTION,
            Loop::Namespace => names::NAMESPACE,
            Loop::Failover => "failover",
            Loop::TaintPolicy => names::CLUSTER_TAINT_POLICY,
            Loop::Rebalancer => names::WORKLOAD_REBALANCER,
            Loop::UnifiedAuth => names::UNIFIED_AUTH,
            Loop::FederatedHpa => names::FEDERATED_HPA,
            Loop::CronFederatedHpa => names::CRON_FEDERATED_HPA,
            Loop::HpaScaleTargetMarker => names::HPA_SCALE_TARGET_MARKER,
            Loop::DeploymentReplicasSyncer => names::DEPLOYMENT_REPLICAS_SYNCER,
            Loop::ServiceImport => names::SERVICE_IMPORT,
            Loop::Collect => names::SERVICE_EXPORT,
            Loop::MultiClusterService => names::MULTI_CLUSTER_SERVICE,
            Loop::EndpointSliceDispatch => names::ENDPOINT_SLICE_DISPATCH,
            Loop::Remedy => names::REMEDY,
            Loop::FederatedResourceQuota => names::FEDERATED_RESOURCE_QUOTA_SYNC,
            Loop::EndpointSlice => names::ENDPOINT_SLICE,
        }
    }
}

/// A controller by upstream's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controller {
    pub name: &'static str,
    pub enabled_by_default: bool,
    /// The loop that does its work; `None`: karmada-rs does not have it yet (turning it on
    /// does nothing and is said at startup).
    pub runs_in: Option<Loop>,
}

const fn on(name: &'static str, runs_in: Loop) -> Controller {
    Controller { name, enabled_by_default: true, runs_in: Some(runs_in) }
}

const fn off(name: &'static str, runs_in: Loop) -> Controller {
    Controller { name, enabled_by_default: false, runs_in: Some(runs_in) }
}

const fn missing(name: &'static str, enabled_by_default: bool) -> Controller {
    Controller { name, enabled_by_default, runs_in: None }
}

/// Upstream's controller-manager controllers, in upstream's order.
pub const CONTROLLERS: &[Controller] = &[
    on(names::CLUSTER, Loop::Cluster),
    on(names::CLUSTER_STATUS, Loop::ClusterStatus),
    on(names::BINDING, Loop::Binding),
    on(names::BINDING_STATUS, Loop::Binding),
    on(names::EXECUTION, Loop::Execution),
    on(names::WORK_STATUS, Loop::Execution),
    on(names::NAMESPACE, Loop::Namespace),
    on(names::SERVICE_EXPORT, Loop::Collect),
    on(names::ENDPOINT_SLICE, Loop::EndpointSlice),
    on(names::SERVICE_IMPORT, Loop::ServiceImport),
    on(names::UNIFIED_AUTH, Loop::UnifiedAuth),
    on(names::FEDERATED_RESOURCE_QUOTA_SYNC, Loop::FederatedResourceQuota),
    on(names::FEDERATED_RESOURCE_QUOTA_STATUS, Loop::FederatedResourceQuota),
    on(names::FEDERATED_RESOURCE_QUOTA_ENFORCEMENT, Loop::FederatedResourceQuota),
    on(names::GRACEFUL_EVICTION, Loop::Binding),
    on(names::APPLICATION_FAILOVER, Loop::Failover),
    on(names::FEDERATED_HPA, Loop::FederatedHpa),
    on(names::CRON_FEDERATED_HPA, Loop::CronFederatedHpa),
    off(names::HPA_SCALE_TARGET_MARKER, Loop::HpaScaleTargetMarker),
    off(names::DEPLOYMENT_REPLICAS_SYNCER, Loop::DeploymentReplicasSyncer),
    on(names::MULTI_CLUSTER_SERVICE, Loop::MultiClusterService),
    on(names::ENDPOINT_SLICE_COLLECT, Loop::Collect),
    on(names::ENDPOINT_SLICE_DISPATCH, Loop::EndpointSliceDispatch),
    on(names::REMEDY, Loop::Remedy),
    on(names::WORKLOAD_REBALANCER, Loop::Rebalancer),
    // The API server approves agents' certificate requests itself (`apiserver::csr`).
    missing("agentcsrapproving", true),
    on(names::CLUSTER_TAINT_POLICY, Loop::TaintPolicy),
];

/// Upstream's agent controllers.
pub const AGENT_CONTROLLERS: &[Controller] = &[
    on(names::CLUSTER_STATUS, Loop::AgentStatus),
    on(names::EXECUTION, Loop::Execution),
    on(names::WORK_STATUS, Loop::Execution),
    on(names::SERVICE_EXPORT, Loop::Collect),
    missing("certRotation", true),
    on(names::ENDPOINT_SLICE_COLLECT, Loop::Collect),
];

/// Controller names used in code (the table's other names are only data).
pub mod names {
    pub const CLUSTER: &str = "cluster";
    pub const CLUSTER_STATUS: &str = "clusterStatus";
    pub const BINDING: &str = "binding";
    pub const BINDING_STATUS: &str = "bindingStatus";
    pub const EXECUTION: &str = "execution";
    pub const WORK_STATUS: &str = "workStatus";
    pub const NAMESPACE: &str = "namespace";
    pub const GRACEFUL_EVICTION: &str = "gracefulEviction";
    pub const APPLICATION_FAILOVER: &str = "applicationFailover";
    pub const WORKLOAD_REBALANCER: &str = "workloadRebalancer";
    pub const CLUSTER_TAINT_POLICY: &str = "clustertaintpolicy";
    pub const UNIFIED_AUTH: &str = "unifiedAuth";
    pub const FEDERATED_HPA: &str = "federatedHorizontalPodAutoscaler";
    pub const CRON_FEDERATED_HPA: &str = "cronFederatedHorizontalPodAutoscaler";
    pub const HPA_SCALE_TARGET_MARKER: &str = "hpaScaleTargetMarker";
    pub const DEPLOYMENT_REPLICAS_SYNCER: &str = "deploymentReplicasSyncer";
    pub const SERVICE_IMPORT: &str = "serviceImport";
    pub const SERVICE_EXPORT: &str = "serviceExport";
    pub const ENDPOINT_SLICE: &str = "endpointSlice";
    pub const MULTI_CLUSTER_SERVICE: &str = "multiclusterservice";
    pub const ENDPOINT_SLICE_COLLECT: &str = "endpointsliceCollect";
    pub const ENDPOINT_SLICE_DISPATCH: &str = "endpointsliceDispatch";
    pub const REMEDY: &str = "remedy";
    pub const FEDERATED_RESOURCE_QUOTA_SYNC: &str = "federatedResourceQuotaSync";
    pub const FEDERATED_RESOURCE_QUOTA_STATUS: &str = "federatedResourceQuotaStatus";
    pub const FEDERATED_RESOURCE_QUOTA_ENFORCEMENT: &str = "federatedResourceQuotaEnforcement";
}

/// The controllers turned on, from a `--controllers` list over one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    table: &'static [Controller],
    enabled: BTreeSet<&'static str>,
}

impl Selection {
    /// Every controller that is on by default (`--controllers=*`).
    pub fn defaults(table: &'static [Controller]) -> Selection {
        let enabled = table.iter().filter(|c| c.enabled_by_default).map(|c| c.name).collect();
        Selection { table, enabled }
    }

    /// Parses `--controllers` items (each may itself be comma-separated). A name the table
    /// does not know is an error naming the known ones: upstream ignores it, but a typo that
    /// silently changes nothing is worse.
    pub fn parse<S: AsRef<str>>(
        table: &'static [Controller],
        items: &[S],
    ) -> Result<Selection, String> {
        let items: Vec<&str> = items
            .iter()
            .flat_map(|i| i.as_ref().split(','))
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        for item in &items {
            let name = item.strip_prefix('-').unwrap_or(item);
            if *item != "*" && !table.iter().any(|c| c.name == name) {
                let known: Vec<&str> = table.iter().map(|c| c.name).collect();
                return Err(format!(
                    "--controllers: unknown controller {name:?}; the controllers are: {}",
                    known.join(", ")
                ));
            }
        }
        let star = items.contains(&"*");
        let enabled = table
            .iter()
            .filter(|c| {
                let explicit = items.iter().find_map(|i| match i.strip_prefix('-') {
                    Some(n) if n == c.name => Some(false),
                    None if *i == c.name => Some(true),
                    _ => None,
                });
                explicit.unwrap_or(star && c.enabled_by_default)
            })
            .map(|c| c.name)
            .collect();
        Ok(Selection { table, enabled })
    }

    /// The selection with the controllers upstream starts only behind a feature gate turned
    /// off when their gate is off: `clustertaintpolicy` (Failover), the multi-cluster service
    /// ones (MultiClusterService), `federatedResourceQuotaEnforcement`
    /// (FederatedQuotaEnforcement).
    pub fn gated(mut self, features: &FeatureGates) -> Selection {
        let gates: &[(&str, Feature)] = &[
            (names::CLUSTER_TAINT_POLICY, Feature::Failover),
            (names::MULTI_CLUSTER_SERVICE, Feature::MultiClusterService),
            (names::ENDPOINT_SLICE_COLLECT, Feature::MultiClusterService),
            (names::ENDPOINT_SLICE_DISPATCH, Feature::MultiClusterService),
            (names::FEDERATED_RESOURCE_QUOTA_ENFORCEMENT, Feature::FederatedQuotaEnforcement),
        ];
        for (name, feature) in gates {
            if !features.enabled(*feature) {
                self.enabled.remove(name);
            }
        }
        self
    }

    /// Whether the controller named `name` is on.
    pub fn has(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    /// The loops to start: those doing the work of a controller that is on.
    pub fn loops(&self) -> BTreeSet<Loop> {
        self.table.iter().filter(|c| self.has(c.name)).filter_map(|c| c.runs_in).collect()
    }

    /// Controllers that are on but that karmada-rs does not have yet.
    pub fn missing(&self) -> Vec<&'static str> {
        self.table
            .iter()
            .filter(|c| c.runs_in.is_none() && self.has(c.name))
            .map(|c| c.name)
            .collect()
    }

    /// What the FederatedResourceQuota loop does.
    pub fn quota_parts(&self) -> crate::federated_quota::Parts {
        crate::federated_quota::Parts {
            sync: self.has(names::FEDERATED_RESOURCE_QUOTA_SYNC),
            status: self.has(names::FEDERATED_RESOURCE_QUOTA_STATUS),
            enforcement: self.has(names::FEDERATED_RESOURCE_QUOTA_ENFORCEMENT),
        }
    }

    /// What the binding loop does.
    pub fn binding_parts(&self) -> BindingParts {
        BindingParts {
            render: self.has(names::BINDING),
            status: self.has(names::BINDING_STATUS),
            evictions: self.has(names::GRACEFUL_EVICTION),
        }
    }

    /// What the collectors collect for.
    pub fn collect_parts(&self) -> crate::mcs::CollectParts {
        crate::mcs::CollectParts {
            exports: self.has(names::SERVICE_EXPORT),
            services: self.has(names::ENDPOINT_SLICE_COLLECT),
        }
    }

    /// What the execution loop does.
    pub fn execution_parts(&self) -> ExecutionParts {
        ExecutionParts { apply: self.has(names::EXECUTION), reflect: self.has(names::WORK_STATUS) }
    }
}

impl Default for Selection {
    fn default() -> Self {
        Selection::defaults(CONTROLLERS)
    }
}

/// The parts of the binding loop that are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingParts {
    /// `binding`: Works rendered from bindings (and removed when no longer wanted).
    pub render: bool,
    /// `bindingStatus`: Works' status aggregated into the binding and its template.
    pub status: bool,
    /// `gracefulEviction`: graceful eviction tasks removed when done.
    pub evictions: bool,
}

impl BindingParts {
    pub const ALL: BindingParts = BindingParts { render: true, status: true, evictions: true };
}

/// The parts of the execution loop that are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionParts {
    /// `execution`: manifests applied to the member (and removed with the Work).
    pub apply: bool,
    /// `workStatus`: the member objects' status and health reflected into the Work.
    pub reflect: bool,
}

impl ExecutionParts {
    pub const ALL: ExecutionParts = ExecutionParts { apply: true, reflect: true };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_of(items: &[&str]) -> Vec<&'static str> {
        let s = Selection::parse(CONTROLLERS, items).unwrap();
        CONTROLLERS.iter().filter(|c| s.has(c.name)).map(|c| c.name).collect()
    }

    #[test]
    fn selection_follows_upstream_rules() {
        let defaults = on_of(&["*"]);
        assert!(defaults.contains(&"binding") && defaults.contains(&"remedy"));
        assert!(!defaults.contains(&"hpaScaleTargetMarker"), "off by default");
        assert_eq!(
            Selection::defaults(CONTROLLERS),
            Selection::parse(CONTROLLERS, &["*"]).unwrap()
        );
        let without = on_of(&["*,-binding"]);
        assert!(!without.contains(&"binding") && without.contains(&"bindingStatus"));
        assert_eq!(on_of(&["binding", "execution"]), vec!["binding", "execution"], "no star");
        assert!(on_of(&["*", "hpaScaleTargetMarker"]).contains(&"hpaScaleTargetMarker"));
        assert!(on_of(&["-binding", "binding"]).is_empty(), "the first mention decides");
        assert_eq!(on_of(&["binding", "-binding"]), vec!["binding"]);
        assert!(on_of(&[]).is_empty());
        let err = Selection::parse(CONTROLLERS, &["*,-bindings"]).unwrap_err();
        assert!(err.contains("\"bindings\"") && err.contains("bindingStatus"), "{err}");
    }

    #[test]
    fn loops_and_parts() {
        let s = Selection::parse(CONTROLLERS, &["*,-binding,-gracefulEviction"]).unwrap();
        assert!(s.loops().contains(&Loop::Binding), "bindingStatus still needs the loop");
        assert_eq!(
            s.binding_parts(),
            BindingParts { render: false, status: true, evictions: false }
        );
        let s = Selection::parse(CONTROLLERS, &["*,-binding,-bindingStatus,-gracefulEviction"])
            .unwrap();
        assert!(!s.loops().contains(&Loop::Binding));
        assert_eq!(
            Selection::parse(CONTROLLERS, &["agentcsrapproving"]).unwrap().missing(),
            vec!["agentcsrapproving"]
        );
        let quota =
            Selection::parse(CONTROLLERS, &["*,-federatedResourceQuotaEnforcement"]).unwrap();
        assert!(quota.loops().contains(&Loop::FederatedResourceQuota));
        assert_eq!(
            quota.quota_parts(),
            crate::federated_quota::Parts { sync: true, status: true, enforcement: false }
        );
        let collect = Selection::parse(CONTROLLERS, &["endpointsliceCollect"]).unwrap();
        assert!(collect.loops().contains(&Loop::Collect));
        assert_eq!(
            collect.collect_parts(),
            crate::mcs::CollectParts { exports: false, services: true }
        );
        let agent = Selection::parse(AGENT_CONTROLLERS, &["*,-workStatus"]).unwrap();
        assert_eq!(agent.execution_parts(), ExecutionParts { apply: true, reflect: false });
        assert!(Selection::parse(AGENT_CONTROLLERS, &["binding"]).is_err(), "not an agent's");
    }
}
