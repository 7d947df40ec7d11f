//! Preemption (under PriorityBasedScheduling): when a binding with a priority does not fit, the
//! lower-priority placements whose room would let it fit. Candidates are taken lowest priority
//! first (then by key), only those holding replicas on a cluster the binding could use, and
//! only as many as needed; each one taken gives back everything it holds.

use std::collections::BTreeSet;

use crate::{BindingInfo, ClusterInfo, Decision, Plugins, schedule};

/// A scheduled binding that might make room: its key, priority, and what it needs and holds
/// (`BindingInfo::previous` is its placement; `in_flight`, by cluster, what of it the clusters'
/// summaries may not count yet and is deducted as `allocating`).
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    pub key: String,
    pub priority: i32,
    pub binding: BindingInfo,
    pub in_flight: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i128>>,
}

/// How many candidates are looked at, at most (the lowest priorities first).
pub const MAX_CANDIDATES: usize = 100;

/// The candidates (indices into `candidates`) to preempt so that `binding` (of `priority`) fits,
/// and the decision it would then get; `None` when preempting every eligible candidate would
/// not be enough.
pub fn victims(
    binding: &BindingInfo,
    priority: i32,
    clusters: &[ClusterInfo],
    candidates: &[Candidate],
    plugins: &Plugins,
) -> Option<(Vec<usize>, Decision)> {
    let usable = usable_clusters(binding, clusters, plugins);
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|i| {
            let c = &candidates[*i];
            c.priority < priority && c.binding.previous.iter().any(|t| usable.contains(&t.name))
        })
        .collect();
    order.sort_by(|a, b| {
        let (a, b) = (&candidates[*a], &candidates[*b]);
        a.priority.cmp(&b.priority).then(a.key.cmp(&b.key))
    });
    order.truncate(MAX_CANDIDATES);
    let mut freed: Vec<ClusterInfo> = clusters.to_vec();
    let mut trial = binding.clone();
    let mut chosen = Vec::new();
    for i in order {
        let victim = &candidates[i].binding;
        let unit = victim.unit_requests();
        for target in &victim.previous {
            let units = i128::from(victim.units(target).max(0));
            let Some(cluster) = freed.iter_mut().find(|c| c.name == target.name) else { continue };
            if let Some(capacity) = cluster.capacity.as_mut() {
                let capacity = std::sync::Arc::make_mut(capacity);
                for (k, v) in &unit {
                    let held = capacity.allocated.entry(k.clone()).or_default();
                    *held = (*held - v * units).max(0);
                }
                // What it holds in flight is given back too.
                for (k, v) in candidates[i].in_flight.get(&target.name).into_iter().flatten() {
                    let held = capacity.allocating.entry(k.clone()).or_default();
                    *held = (*held - v).max(0);
                }
            }
            // The accurate estimate was made with the victim there: the summary with its room
            // given back counts instead.
            trial.estimates.remove(&target.name);
        }
        chosen.push(i);
        if let Ok(decision) = schedule(&trial, &freed, plugins) {
            return Some((chosen, decision));
        }
    }
    None
}

/// The clusters a binding's placement could use at all (its affinity or any affinity term,
/// taints, APIs...), whatever their room.
fn usable_clusters(
    binding: &BindingInfo,
    clusters: &[ClusterInfo],
    plugins: &Plugins,
) -> BTreeSet<String> {
    let placement = &binding.placement;
    let mut affinities: Vec<Option<&karmada_api::policy::ClusterAffinity>> = Vec::new();
    if placement.cluster_affinities.is_empty() {
        affinities.push(placement.cluster_affinity.as_ref());
    }
    for term in &placement.cluster_affinities {
        affinities.push(Some(&term.affinity));
        affinities.extend(term.overflow_affinities.iter().map(|o| Some(&o.affinity)));
    }
    affinities
        .into_iter()
        .flat_map(|a| crate::filter::run(binding, clusters, plugins, a).0)
        .map(|c| c.name.clone())
        .collect()
}
