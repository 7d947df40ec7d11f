//! Selection: which of the feasible clusters to use, honouring spread constraints by cluster,
//! region, zone, provider or label (min/max groups), capacity-aware for divided replicas.

use karmada_api::policy::{ReplicaDivisionPreference, ReplicaSchedulingType};
use std::collections::BTreeMap;

use crate::{BindingInfo, ClusterInfo, Unschedulable};

fn divided(binding: &BindingInfo) -> bool {
    binding.placement.divides_replicas()
}

fn group_key(cluster: &ClusterInfo, field: &str, label: &str) -> String {
    if !label.is_empty() {
        return cluster.labels.get(label).cloned().unwrap_or_default();
    }
    match field {
        "region" => cluster.region.clone(),
        "provider" => cluster.provider.clone(),
        "zone" => cluster.zones.first().cloned().unwrap_or_default(),
        _ => cluster.name.clone(),
    }
}

/// Divided by static weights (a weight list, or no preference at all): upstream ignores spread
/// constraints then, the weights say where replicas go.
fn static_weighted(binding: &BindingInfo) -> bool {
    binding.placement.replica_scheduling.as_ref().is_some_and(|r| {
        r.replica_scheduling_type == ReplicaSchedulingType::Divided
            && r.replica_division_preference == ReplicaDivisionPreference::Weighted
            && r.weight_preference
                .as_ref()
                .is_none_or(|w| !w.static_weight_list.is_empty() && w.dynamic_weight.is_unset())
    })
}

/// Picks the clusters to assign replicas to, best first.
/// A ranked candidate: (cluster, score, available replicas).
type Ranked<'a> = (&'a ClusterInfo, i64, i64);

pub fn run<'a>(
    binding: &BindingInfo,
    scored: &[(&'a ClusterInfo, i64)],
) -> Result<Vec<&'a ClusterInfo>, Unschedulable> {
    let available = |c: &ClusterInfo| binding.available(c);
    let mut ranked: Vec<(&ClusterInfo, i64, i64)> =
        scored.iter().map(|(c, s)| (*c, *s, available(c))).collect();
    // Best first: score, then capacity when dividing, then name (deterministic).
    ranked.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| if divided(binding) { b.2.cmp(&a.2) } else { std::cmp::Ordering::Equal })
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let constraints = &binding.placement.spread_constraints;
    if constraints.is_empty() || static_weighted(binding) {
        return Ok(ranked.into_iter().map(|(c, _, _)| c).collect());
    }
    let by_cluster = constraints.iter().find(|c| c.spread_by_field == "cluster");
    let by_group = constraints.iter().find(|c| {
        c.spread_by_field != "cluster"
            && (!c.spread_by_field.is_empty() || !c.spread_by_label.is_empty())
    });

    let mut candidates: Vec<(&ClusterInfo, i64, i64)> = ranked.clone();
    let mut group_count = 0;
    if let Some(g) = by_group {
        let mut groups: BTreeMap<String, Vec<(&ClusterInfo, i64, i64)>> = BTreeMap::new();
        for entry in &ranked {
            // A cluster without the field (no region...) is in no group, so not a candidate.
            let key = group_key(entry.0, &g.spread_by_field, &g.spread_by_label);
            if !key.is_empty() {
                groups.entry(key).or_default().push(*entry);
            }
        }
        let mut ordered: Vec<(String, Vec<Ranked<'_>>)> = groups.into_iter().collect();
        ordered.sort_by(|a, b| {
            let score =
                |v: &Vec<(&ClusterInfo, i64, i64)>| v.iter().map(|e| e.1).max().unwrap_or(0);
            let capacity = |v: &Vec<(&ClusterInfo, i64, i64)>| v.iter().map(|e| e.2).sum::<i64>();
            score(&b.1)
                .cmp(&score(&a.1))
                .then(capacity(&b.1).cmp(&capacity(&a.1)))
                .then(a.0.cmp(&b.0))
        });
        let min = g.min_groups.max(1) as usize;
        if ordered.len() < min {
            return Err(Unschedulable::SelectionFailed {
                message: format!(
                    "the number of feasible clusters is less than spreadConstraint.MinGroups: {} groups by {} for minGroups {min}",
                    ordered.len(),
                    if g.spread_by_label.is_empty() {
                        &g.spread_by_field
                    } else {
                        &g.spread_by_label
                    }
                ),
            });
        }
        let max = if g.max_groups > 0 { g.max_groups as usize } else { ordered.len() };
        ordered.truncate(max.min(ordered.len()));
        group_count = ordered.len();
        // One from each group first, then the rest by rank.
        let mut firsts = Vec::new();
        let mut rest = Vec::new();
        for (_, members) in ordered {
            let mut members = members.into_iter();
            if let Some(first) = members.next() {
                firsts.push(first);
            }
            rest.extend(members);
        }
        rest.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.name.cmp(&b.0.name)));
        candidates = firsts.into_iter().chain(rest).collect();
    }
    let chosen: Vec<(&ClusterInfo, i64, i64)> = match by_cluster {
        Some(c) => {
            let min = (c.min_groups.max(1) as usize).max(group_count);
            if candidates.len() < c.min_groups.max(1) as usize {
                return Err(Unschedulable::SelectionFailed {
                    message: format!(
                        "the number of feasible clusters is less than spreadConstraint.MinGroups: {} clusters for minGroups {}",
                        candidates.len(),
                        c.min_groups.max(1)
                    ),
                });
            }
            let max = if c.max_groups > 0 {
                (c.max_groups as usize).max(group_count)
            } else {
                candidates.len()
            };
            let mut chosen: Vec<_> = candidates.iter().take(max).copied().collect();
            if divided(binding) {
                // Capacity-aware: swap in higher-capacity clusters until the replicas fit.
                let need = binding.needed();
                let mut spare: Vec<_> = candidates.iter().skip(max).copied().collect();
                spare.sort_by_key(|e| std::cmp::Reverse(e.2));
                for candidate in spare {
                    let total: i64 = chosen.iter().map(|e| e.2).sum();
                    if total >= need {
                        break;
                    }
                    if let Some((i, weakest)) =
                        chosen.iter().enumerate().skip(group_count).min_by_key(|(_, e)| e.2)
                        && candidate.2 > weakest.2
                    {
                        chosen[i] = candidate;
                    }
                }
                let total: i64 = chosen.iter().map(|e| e.2).sum();
                if total < need {
                    return Err(Unschedulable::SelectionFailed {
                        message: format!(
                            "no enough resource when selecting {} clusters",
                            chosen.len().max(min)
                        ),
                    });
                }
            }
            chosen
        }
        None => candidates,
    };
    Ok(chosen.into_iter().map(|(c, _, _)| c).collect())
}
