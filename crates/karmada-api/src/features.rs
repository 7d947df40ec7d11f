//! Feature gates: upstream Karmada's gate names, stages and defaults, and the `--feature-gates`
//! flag every component takes (`Failover=true,PolicyPreemption=false`, plus Kubernetes'
//! `AllAlpha`/`AllBeta`, which set every alpha/beta gate not named on its own).

use std::collections::BTreeMap;

/// How mature a gated feature is (what `AllAlpha`/`AllBeta` select).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Alpha,
    Beta,
}

/// Upstream's feature gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// Cluster failover: the taint manager's evictions and ClusterTaintPolicies.
    Failover,
    /// Evicted clusters keep their workload until the replacement is healthy.
    GracefulEviction,
    /// The dependencies distributor (`propagateDeps`).
    PropagateDeps,
    /// Clusters' resource models and the model-based estimate.
    CustomizedClusterResourceModeling,
    /// A higher-priority policy takes templates from a lower one.
    PolicyPreemption,
    /// MultiClusterService controllers.
    MultiClusterService,
    /// The scheduler estimator reads members' ResourceQuotas.
    ResourceQuotaEstimate,
    /// Failover injects state from the cluster left (`statePreservation`).
    StatefulFailoverInjection,
    /// `schedulePriority` on bindings and the scheduler's queue order.
    PriorityBasedScheduling,
    /// FederatedResourceQuota `overall` enforced on binding writes.
    FederatedQuotaEnforcement,
    LoggingAlphaOptions,
    LoggingBetaOptions,
    ContextualLogging,
    /// Workloads with several pod templates scheduled as whole sets (`components`).
    MultiplePodTemplatesScheduling,
    ControllerPriorityQueue,
    /// `placement.workloadAffinity`.
    WorkloadAffinity,
    SchedulingOvercommitProtection,
}

/// Every gate: name, default, stage (upstream's table).
const GATES: &[(Feature, &str, bool, Stage)] = &[
    (Feature::Failover, "Failover", false, Stage::Beta),
    (Feature::GracefulEviction, "GracefulEviction", true, Stage::Beta),
    (Feature::PropagateDeps, "PropagateDeps", true, Stage::Beta),
    (
        Feature::CustomizedClusterResourceModeling,
        "CustomizedClusterResourceModeling",
        true,
        Stage::Beta,
    ),
    (Feature::PolicyPreemption, "PolicyPreemption", false, Stage::Alpha),
    (Feature::MultiClusterService, "MultiClusterService", false, Stage::Alpha),
    (Feature::ResourceQuotaEstimate, "ResourceQuotaEstimate", false, Stage::Alpha),
    (Feature::StatefulFailoverInjection, "StatefulFailoverInjection", false, Stage::Alpha),
    (Feature::PriorityBasedScheduling, "PriorityBasedScheduling", true, Stage::Beta),
    (Feature::FederatedQuotaEnforcement, "FederatedQuotaEnforcement", false, Stage::Alpha),
    (Feature::LoggingAlphaOptions, "LoggingAlphaOptions", false, Stage::Alpha),
    (Feature::LoggingBetaOptions, "LoggingBetaOptions", true, Stage::Beta),
    (Feature::ContextualLogging, "ContextualLogging", true, Stage::Beta),
    (
        Feature::MultiplePodTemplatesScheduling,
        "MultiplePodTemplatesScheduling",
        false,
        Stage::Alpha,
    ),
    (Feature::ControllerPriorityQueue, "ControllerPriorityQueue", true, Stage::Beta),
    (Feature::WorkloadAffinity, "WorkloadAffinity", false, Stage::Alpha),
    (
        Feature::SchedulingOvercommitProtection,
        "SchedulingOvercommitProtection",
        false,
        Stage::Alpha,
    ),
];

impl Feature {
    pub fn name(self) -> &'static str {
        GATES.iter().find(|g| g.0 == self).map_or("", |g| g.1)
    }

    pub fn by_name(name: &str) -> Option<Feature> {
        GATES.iter().find(|g| g.1 == name).map(|g| g.0)
    }

    fn default_on(self) -> bool {
        GATES.iter().find(|g| g.0 == self).is_some_and(|g| g.2)
    }
}

/// What upstream's install (and `karmada up`) runs every component with.
pub const QUICK_START: &str = "AllAlpha=true,AllBeta=true";

/// The gates a component runs with: each feature on or off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureGates {
    on: BTreeMap<Feature, bool>,
}

impl Default for FeatureGates {
    /// Upstream's defaults.
    fn default() -> Self {
        FeatureGates { on: GATES.iter().map(|g| (g.0, g.2)).collect() }
    }
}

impl FeatureGates {
    /// Parses `--feature-gates`, as Kubernetes' components do: `Name=bool` pairs separated by
    /// commas; `AllAlpha`/`AllBeta` set every gate of that stage not named itself. An unknown
    /// gate or a value that is not a boolean is an error naming it.
    pub fn parse(spec: &str) -> Result<FeatureGates, String> {
        let mut gates = FeatureGates::default();
        let mut named = BTreeMap::new();
        let mut all: Vec<(Stage, bool)> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("missing bool value for {item}"));
            };
            let (name, value) = (name.trim(), value.trim());
            let on = match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => true,
                "false" | "0" | "f" => false,
                _ => {
                    return Err(format!(
                        "invalid value of {name}={value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ));
                }
            };
            match name {
                "AllAlpha" => all.push((Stage::Alpha, on)),
                "AllBeta" => all.push((Stage::Beta, on)),
                _ => match Feature::by_name(name) {
                    Some(f) => {
                        named.insert(f, on);
                    }
                    None => return Err(format!("unrecognized feature gate: {name}")),
                },
            }
        }
        for (stage, on) in all {
            for g in GATES.iter().filter(|g| g.3 == stage) {
                gates.on.insert(g.0, on);
            }
        }
        gates.on.extend(named);
        Ok(gates)
    }

    pub fn enabled(&self, feature: Feature) -> bool {
        self.on.get(&feature).copied().unwrap_or_else(|| feature.default_on())
    }

    /// The gates set away from upstream's defaults, as `--feature-gates` would say them.
    pub fn changed(&self) -> String {
        self.on
            .iter()
            .filter(|(f, on)| **on != f.default_on())
            .map(|(f, on)| format!("{}={on}", f.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let g = FeatureGates::default();
        assert!(!g.enabled(Feature::Failover));
        assert!(g.enabled(Feature::PropagateDeps) && g.enabled(Feature::PriorityBasedScheduling));
        assert!(
            !g.enabled(Feature::FederatedQuotaEnforcement)
                && !g.enabled(Feature::MultiClusterService)
        );
        assert_eq!(g.changed(), "");
    }

    #[test]
    fn the_flag_reads_as_kubernetes_reads_it() {
        let g = FeatureGates::parse("Failover=true, PropagateDeps=false").unwrap();
        assert!(g.enabled(Feature::Failover) && !g.enabled(Feature::PropagateDeps));
        assert_eq!(g.changed(), "Failover=true,PropagateDeps=false");
        // AllAlpha/AllBeta set the rest of their stage; a gate named itself wins, in any order.
        let g = FeatureGates::parse("PolicyPreemption=false,AllAlpha=true,AllBeta=true").unwrap();
        assert!(g.enabled(Feature::MultiClusterService) && g.enabled(Feature::Failover));
        assert!(!g.enabled(Feature::PolicyPreemption));
        let g = FeatureGates::parse("AllBeta=false").unwrap();
        assert!(!g.enabled(Feature::GracefulEviction) && !g.enabled(Feature::Failover));
        assert!(!g.enabled(Feature::MultiClusterService), "alpha untouched");
        assert_eq!(FeatureGates::parse("").unwrap(), FeatureGates::default());
        assert_eq!(
            FeatureGates::parse("Bogus=true").unwrap_err(),
            "unrecognized feature gate: Bogus"
        );
        assert!(
            FeatureGates::parse("Failover=yes")
                .unwrap_err()
                .contains("invalid value of Failover=yes")
        );
        assert_eq!(FeatureGates::parse("Failover").unwrap_err(), "missing bool value for Failover");
        let quick = FeatureGates::parse(QUICK_START).unwrap();
        assert!(
            quick.enabled(Feature::FederatedQuotaEnforcement) && quick.enabled(Feature::Failover)
        );
    }
}
