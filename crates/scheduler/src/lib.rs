//! The scheduling core of karmada-rs: a pure pipeline over a snapshot of clusters —
//! filter → score → select (spread constraints) → assign replicas — turning a binding's
//! placement into target clusters and replica counts. No IO, no clock, no runtime: the
//! scheduler process feeds it snapshots and writes its decisions.
//!
//! Plugins are named registry entries ([`FILTERS`], [`SCORES`]) that can be disabled with
//! `*,-Name`. "Nothing fits" is a typed [`Unschedulable`] with a per-cluster diagnosis.

pub mod accurate;
pub mod assign;
pub mod estimate;
pub mod filter;
pub mod preempt;
pub mod select;

use std::collections::BTreeMap;

use karmada_api::cluster::Taint;
use karmada_api::policy::Placement;
use karmada_api::work::TargetCluster;

pub use estimate::{Capacity, ModelGrade};

/// What the scheduler knows about one cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterInfo {
    pub name: String,
    /// Shared, like the capacity: a decision copies every cluster's info (to deduct the
    /// replicas promised to decisions not yet reported), and at 1,000 clusters copying the maps
    /// was most of the scheduler's work.
    pub labels: std::sync::Arc<BTreeMap<String, String>>,
    pub provider: String,
    pub region: String,
    pub zones: Vec<String>,
    pub taints: Vec<Taint>,
    /// `group/version/Kind` (or `v1/Kind`) of every API the cluster serves; `None`: unknown
    /// (not reported yet), which the API-enablement filter treats as "serves everything".
    pub enabled_apis: Option<std::sync::Arc<std::collections::BTreeSet<String>>>,
    pub capacity: Option<std::sync::Arc<Capacity>>,
    pub deleting: bool,
}

impl ClusterInfo {
    /// What matching a cluster affinity needs of a cluster: its name, labels, location, taints
    /// (not its APIs or capacity, which scheduling adds).
    pub fn identity(cluster: &karmada_api::cluster::Cluster) -> ClusterInfo {
        let mut zones = cluster.spec.zones.clone();
        if zones.is_empty() && !cluster.spec.zone.is_empty() {
            zones.push(cluster.spec.zone.clone());
        }
        ClusterInfo {
            name: cluster.metadata.name.clone().unwrap_or_default(),
            labels: std::sync::Arc::new(cluster.metadata.labels.clone().unwrap_or_default()),
            provider: cluster.spec.provider.clone(),
            region: cluster.spec.region.clone(),
            zones,
            taints: cluster.spec.taints.clone(),
            enabled_apis: None,
            capacity: None,
            deleting: cluster.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// What the scheduler needs of one binding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BindingInfo {
    /// `group/version/Kind` of the resource template.
    pub gvk: String,
    pub replicas: i32,
    /// Per-replica requests in milli-units (`cpu`, `memory`, ...).
    pub requests: BTreeMap<String, i128>,
    /// The pod templates of a multi-template workload (`spec.components`), placed whole.
    pub components: Vec<ComponentInfo>,
    pub placement: Placement,
    /// The current assignment (for locality, scale up/down and eviction).
    pub previous: Vec<TargetCluster>,
    /// Clusters the binding is being evicted from.
    pub evicting: Vec<String>,
    /// A from-scratch assignment was requested (`rescheduleTriggeredAt` > last schedule).
    pub fresh: bool,
    /// The `clusterAffinities` term the last decision used (`schedulerObservingAffinityName`):
    /// ordered terms are tried from it on (from the first only when `fresh`), so a workload
    /// that moved to a later term stays there when an earlier one fits again, as upstream.
    pub observed_affinity: Option<String>,
    /// `workloadAffinity`: the clusters of each scheduled workload of the binding's affinity
    /// group (in its namespace; itself excluded). It may go only where all of them are; the
    /// first of a group goes anywhere.
    pub affinity_peers: Vec<Vec<String>>,
    /// `workloadAffinity`: the clusters holding workloads of its anti-affinity group.
    pub anti_affinity_taken: std::collections::BTreeSet<String>,
    /// The accurate estimator's answer per cluster (units: replicas, or sets for a
    /// multi-template workload); a cluster without one is estimated from its summary alone.
    pub estimates: BTreeMap<String, i64>,
}

/// One pod template of a multi-template workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    pub name: String,
    pub replicas: i32,
    /// Per-replica requests in milli-units.
    pub requests: BTreeMap<String, i128>,
}

impl BindingInfo {
    /// Whether the workload is scheduled as whole sets of its components: it has components
    /// and its placement asks for exactly one cluster (a `cluster` spread constraint with
    /// minGroups = maxGroups = 1), as upstream's MultiplePodTemplatesScheduling. Capacity is
    /// then counted in sets, and one set must fit.
    pub fn multi_template(&self) -> bool {
        !self.components.is_empty()
            && self
                .placement
                .spread_constraints
                .iter()
                .any(|c| c.spread_by_field == "cluster" && c.min_groups == 1 && c.max_groups == 1)
    }

    /// What one unit of this binding asks of a cluster, `pods` included (×1000): a replica,
    /// or a whole set of components when [`BindingInfo::multi_template`].
    pub fn unit_requests(&self) -> BTreeMap<String, i128> {
        if self.multi_template() {
            return estimate::set_requests(&self.components);
        }
        let mut unit = self.requests.clone();
        unit.insert("pods".into(), 1000);
        unit
    }

    /// The units a target cluster holds: its replicas, or one set when it runs the components.
    pub fn units(&self, target: &TargetCluster) -> i64 {
        if self.multi_template() {
            i64::from(!target.components.is_empty())
        } else {
            i64::from(target.replicas)
        }
    }

    /// How many units fit in a cluster.
    /// How many units fit in a cluster: the summary's estimate, bounded by the accurate
    /// estimator's when there is one (upstream takes the smaller of its estimators).
    pub fn available(&self, cluster: &ClusterInfo) -> i64 {
        let capacity = cluster.capacity.as_deref();
        let general = if self.multi_template() {
            estimate::available_sets(capacity, &self.components)
        } else {
            estimate::available_replicas(capacity, &self.requests, 0)
        };
        self.estimates.get(&cluster.name).map_or(general, |accurate| general.min(*accurate))
    }

    /// The units the placement asks for: the replicas, or one set.
    pub fn needed(&self) -> i64 {
        if self.multi_template() { 1 } else { i64::from(self.replicas) }
    }
}

/// One cluster's reason for not being picked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejection {
    pub cluster: String,
    pub plugin: &'static str,
    pub reason: String,
}

/// Why a binding could not be scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unschedulable {
    /// No cluster passed the filters.
    NoClusterFit { total: usize, rejections: Vec<Rejection> },
    /// Clusters fit, but not in the numbers or with the capacity asked for.
    NotEnough { message: String },
    /// The spread constraints could not pick enough clusters with room (upstream's plain
    /// scheduling error).
    SelectionFailed { message: String },
}

impl Unschedulable {
    /// The condition reason (`NoClusterFit`, `Unschedulable` or `SchedulerError`).
    pub fn reason(&self) -> &'static str {
        match self {
            Unschedulable::NoClusterFit { .. } => "NoClusterFit",
            Unschedulable::NotEnough { .. } => "Unschedulable",
            Unschedulable::SelectionFailed { .. } => "SchedulerError",
        }
    }

    /// `0/N clusters are available: 2 cluster(s) did not match the placement cluster affinity constraint, ...`
    pub fn message(&self) -> String {
        match self {
            Unschedulable::NoClusterFit { total, rejections } => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for r in rejections {
                    *counts.entry(r.reason.as_str()).or_default() += 1;
                }
                let parts: Vec<String> =
                    counts.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
                format!("0/{total} clusters are available: {}.", parts.join(", "))
            }
            Unschedulable::NotEnough { message } => message.clone(),
            Unschedulable::SelectionFailed { message } => {
                format!("failed to select clusters: {message}")
            }
        }
    }
}

/// Which plugins run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plugins {
    disabled: Vec<String>,
}

impl Plugins {
    /// Parses `--plugins=*,-TaintToleration` style lists.
    pub fn parse(spec: &str) -> Result<Plugins, String> {
        let mut disabled = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.strip_prefix('-') {
                Some(name) => {
                    let known = filter::FILTERS
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(SCORES.iter().copied())
                        .any(|n| n == name);
                    if !known {
                        return Err(format!("unknown plugin {name:?}"));
                    }
                    disabled.push(name.to_owned());
                }
                None if item == "*" => {}
                None => {
                    let known = filter::FILTERS
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(SCORES.iter().copied())
                        .any(|n| n == item);
                    if !known {
                        return Err(format!("unknown plugin {item:?}"));
                    }
                }
            }
        }
        Ok(Plugins { disabled })
    }

    pub fn enabled(&self, name: &str) -> bool {
        !self.disabled.iter().any(|d| d == name)
    }
}

/// Score plugins, in order.
pub const SCORES: &[&str] = &["ClusterLocality", "ClusterAffinity"];

/// A scheduling decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub clusters: Vec<TargetCluster>,
    /// The `clusterAffinities` term used, if the placement has ordered terms.
    pub affinity_name: Option<String>,
}

/// Schedules one binding over a snapshot of clusters.
pub fn schedule(
    binding: &BindingInfo,
    clusters: &[ClusterInfo],
    plugins: &Plugins,
) -> Result<Decision, Unschedulable> {
    let placement = &binding.placement;
    // Ordered affinity terms: try each from the observed one until one yields a decision; the
    // failure reported is the first term's.
    if !placement.cluster_affinities.is_empty() {
        let start = match (&binding.observed_affinity, binding.fresh) {
            (Some(name), false) => placement
                .cluster_affinities
                .iter()
                .position(|t| &t.affinity_name == name)
                .unwrap_or(0),
            _ => 0,
        };
        let mut first = None;
        for term in &placement.cluster_affinities[start..] {
            match schedule_term(binding, clusters, plugins, term) {
                Ok(clusters) => {
                    return Ok(Decision {
                        clusters,
                        affinity_name: Some(term.affinity_name.clone()),
                    });
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        return Err(first.unwrap_or(Unschedulable::NoClusterFit {
            total: clusters.len(),
            rejections: Vec::new(),
        }));
    }
    let clusters = schedule_with(binding, clusters, plugins, placement.cluster_affinity.as_ref())?;
    Ok(Decision { clusters, affinity_name: None })
}

/// One `clusterAffinities` term: its clusters, and for a divided workload with
/// `overflowAffinities` the overflow groups in order — each group (tier) takes what the groups
/// before it cannot (its clusters' room plus what the workload holds there already), so a
/// workload grows into later groups and, as it shrinks, leaves them first (as upstream).
fn schedule_term(
    binding: &BindingInfo,
    clusters: &[ClusterInfo],
    plugins: &Plugins,
    term: &karmada_api::policy::ClusterAffinityTerm,
) -> Result<Vec<TargetCluster>, Unschedulable> {
    if term.overflow_affinities.is_empty()
        || binding.replicas == 0
        || !binding.placement.divides_replicas()
        || binding.multi_template()
    {
        return schedule_with(binding, clusters, plugins, Some(&term.affinity));
    }
    let groups =
        std::iter::once(&term.affinity).chain(term.overflow_affinities.iter().map(|o| &o.affinity));
    let mut seen = std::collections::BTreeSet::new();
    let mut tiers: Vec<Vec<&ClusterInfo>> = Vec::new();
    let mut first_rejections = None;
    for affinity in groups {
        let (feasible, rejections) = filter::run(binding, clusters, plugins, Some(affinity));
        first_rejections.get_or_insert(rejections);
        // A cluster belongs to the first group it is in.
        tiers.push(feasible.into_iter().filter(|c| seen.insert(c.name.as_str())).collect());
    }
    if tiers.iter().all(Vec::is_empty) {
        return Err(Unschedulable::NoClusterFit {
            total: clusters.len(),
            rejections: first_rejections.unwrap_or_default(),
        });
    }
    let held = |c: &ClusterInfo| {
        binding.previous.iter().find(|p| p.name == c.name).map_or(0, |p| i64::from(p.replicas))
    };
    let mut remaining = i64::from(binding.replicas);
    let mut out = Vec::new();
    for tier in tiers.iter().filter(|t| !t.is_empty()) {
        if remaining == 0 {
            break;
        }
        let room: i64 = tier.iter().map(|c| binding.available(c) + held(c)).sum();
        let take = remaining.min(room);
        if take == 0 {
            continue;
        }
        let mut part = binding.clone();
        part.replicas = i32::try_from(take).unwrap_or(i32::MAX);
        part.previous.retain(|p| tier.iter().any(|c| c.name == p.name));
        let scored: Vec<(&ClusterInfo, i64)> =
            tier.iter().map(|c| (*c, score(&part, c, plugins))).collect();
        let selected = select::run(&part, &scored)?;
        out.extend(assign::run(&part, &selected)?);
        remaining -= take;
    }
    if remaining > 0 {
        return Err(Unschedulable::NotEnough {
            message: "Clusters available replicas are not enough to schedule.".into(),
        });
    }
    out.retain(|t| t.replicas > 0);
    Ok(out)
}

fn schedule_with(
    binding: &BindingInfo,
    clusters: &[ClusterInfo],
    plugins: &Plugins,
    affinity: Option<&karmada_api::policy::ClusterAffinity>,
) -> Result<Vec<TargetCluster>, Unschedulable> {
    let (feasible, rejections) = filter::run(binding, clusters, plugins, affinity);
    if feasible.is_empty() {
        return Err(Unschedulable::NoClusterFit { total: clusters.len(), rejections });
    }
    let scored: Vec<(&ClusterInfo, i64)> =
        feasible.iter().map(|c| (*c, score(binding, c, plugins))).collect();
    let selected = select::run(binding, &scored)?;
    assign::run(binding, &selected)
}

fn score(binding: &BindingInfo, cluster: &ClusterInfo, plugins: &Plugins) -> i64 {
    let mut total = 0;
    if plugins.enabled("ClusterLocality") && binding.previous.iter().any(|t| t.name == cluster.name)
    {
        total += 100;
    }
    total
}
