//! Replica assignment: Duplicated, Divided by static weights (Webster/Sainte-Laguë), Divided
//! by dynamic weight (available replicas), and Divided+Aggregated.

use karmada_api::policy::{DynamicWeight, ReplicaDivisionPreference, ReplicaSchedulingType};
use karmada_api::work::{TargetCluster, TargetComponent};

use crate::filter::matches_affinity;
use crate::{BindingInfo, ClusterInfo, Unschedulable};

/// Divides `seats` among `weights` by the Sainte-Laguë (Webster) method. Ties go to the larger
/// weight, then to the earlier entry, so the result is deterministic.
pub fn apportion(seats: i64, weights: &[i64]) -> Vec<i64> {
    let mut out = vec![0i64; weights.len()];
    if weights.iter().all(|w| *w <= 0) {
        return out;
    }
    let total: i64 = weights.iter().filter(|w| **w > 0).sum();
    // Start from a safe lower bound (exact quota minus one), then hand out the rest by quotient.
    let mut given = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w > 0 {
            let quota = (i128::from(seats) * i128::from(*w) / i128::from(total)) as i64;
            out[i] = (quota - 1).max(0);
            given += out[i];
        }
    }
    while given < seats {
        let mut best: Option<usize> = None;
        for (i, w) in weights.iter().enumerate() {
            if *w <= 0 {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    // Compare w_i / (2 s_i + 1) with w_b / (2 s_b + 1) exactly.
                    let lhs = i128::from(*w) * i128::from(2 * out[b] + 1);
                    let rhs = i128::from(weights[b]) * i128::from(2 * out[i] + 1);
                    if lhs > rhs || (lhs == rhs && *w > weights[b]) { Some(i) } else { Some(b) }
                }
            };
        }
        let Some(b) = best else { break };
        out[b] += 1;
        given += 1;
    }
    out
}

fn targets(selected: &[&ClusterInfo], replicas: &[i64]) -> Vec<TargetCluster> {
    selected
        .iter()
        .zip(replicas)
        .filter(|(_, r)| **r > 0)
        .map(|(c, r)| TargetCluster {
            name: c.name.clone(),
            replicas: i32::try_from(*r).unwrap_or(i32::MAX),
            components: Vec::new(),
        })
        .collect()
}

/// Assigns replicas to the selected clusters.
pub fn run(
    binding: &BindingInfo,
    selected: &[&ClusterInfo],
) -> Result<Vec<TargetCluster>, Unschedulable> {
    let strategy = binding.placement.replica_scheduling.clone().unwrap_or_default();
    let replicas = i64::from(binding.replicas);
    let divided = strategy.replica_scheduling_type == ReplicaSchedulingType::Divided;
    if !divided || replicas == 0 {
        // Duplicated (the default): every cluster runs all replicas. A multi-template workload
        // is not divided either: each cluster runs a whole set, its components recorded.
        let components: Vec<TargetComponent> =
            if binding.components.len() > 1 && binding.multi_template() {
                binding
                    .components
                    .iter()
                    .map(|c| TargetComponent { name: c.name.clone(), replicas: c.replicas })
                    .collect()
            } else {
                Vec::new()
            };
        return Ok(selected
            .iter()
            .map(|c| TargetCluster {
                name: c.name.clone(),
                replicas: binding.replicas,
                components: components.clone(),
            })
            .collect());
    }
    let available: Vec<i64> = selected
        .iter()
        .map(|c| {
            if binding.multi_template() {
                // Counted in sets elsewhere; here the replicas of its own requests.
                crate::estimate::available_replicas(c.capacity.as_deref(), &binding.requests, 0)
            } else {
                binding.available(c)
            }
        })
        .collect();
    let previous = |c: &ClusterInfo| -> i64 {
        if binding.fresh {
            return 0;
        }
        binding.previous.iter().find(|t| t.name == c.name).map_or(0, |t| i64::from(t.replicas))
    };
    if strategy.replica_division_preference == ReplicaDivisionPreference::Aggregated {
        // Fewest clusters: those already used first, then the roomiest.
        let mut order: Vec<usize> = (0..selected.len()).collect();
        order.sort_by(|a, b| {
            (previous(selected[*b]) > 0)
                .cmp(&(previous(selected[*a]) > 0))
                .then(available[*b].cmp(&available[*a]))
                .then(selected[*a].name.cmp(&selected[*b].name))
        });
        // What the workload holds stays where it is: a scale-up adds to it (its own replicas
        // already count against the clusters' room), a scale-down keeps the clusters it uses
        // most (as upstream's dynamic scale-up and scale-down).
        let held: Vec<i64> = selected.iter().map(|c| previous(c)).collect();
        let assigned: i64 = held.iter().sum();
        let mut out = vec![0i64; selected.len()];
        let mut left = replicas;
        if assigned > 0 && replicas <= assigned {
            let mut by_held: Vec<usize> = (0..selected.len()).collect();
            by_held.sort_by(|a, b| {
                held[*b].cmp(&held[*a]).then(selected[*a].name.cmp(&selected[*b].name))
            });
            for i in by_held {
                let take = held[i].min(left);
                out[i] = take;
                left -= take;
            }
            return Ok(targets(selected, &out));
        }
        if assigned > 0 {
            out.clone_from(&held);
            left -= assigned;
        }
        for i in order {
            if left == 0 {
                break;
            }
            let take = available[i].min(left);
            out[i] += take;
            left -= take;
        }
        if left > 0 {
            return Err(Unschedulable::NotEnough {
                message: format!(
                    "no enough resource: {replicas} replicas requested, {} available in {} clusters",
                    replicas - left,
                    selected.len()
                ),
            });
        }
        return Ok(targets(selected, &out));
    }
    let weight_preference = strategy.weight_preference.clone().unwrap_or_default();
    if weight_preference.dynamic_weight == DynamicWeight::AvailableReplicas {
        let before: Vec<i64> = selected.iter().map(|c| previous(c)).collect();
        let assigned: i64 = before.iter().sum();
        let out = if assigned == 0 {
            apportion(replicas, &available)
        } else if replicas > assigned {
            // Scale up: only the added replicas, by what each cluster can still take.
            let added = apportion(replicas - assigned, &available);
            before.iter().zip(added).map(|(b, a)| b + a).collect()
        } else {
            // Scale down (or same): in proportion to the previous assignment.
            apportion(replicas, &before)
        };
        let total_available: i64 = available.iter().sum();
        if total_available < replicas - assigned.min(replicas) {
            return Err(Unschedulable::NotEnough {
                message: format!(
                    "no enough resource: {replicas} replicas requested, {total_available} available"
                ),
            });
        }
        return Ok(targets(selected, &out));
    }
    // Static weights (equal weights when none are listed).
    let weights: Vec<i64> = if weight_preference.static_weight_list.is_empty() {
        vec![1; selected.len()]
    } else {
        selected
            .iter()
            .map(|c| {
                weight_preference
                    .static_weight_list
                    .iter()
                    .filter(|w| matches_affinity(&w.target_cluster, c))
                    .map(|w| w.weight)
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    };
    if weights.iter().all(|w| *w <= 0) {
        return Err(Unschedulable::NotEnough {
            message: "no cluster matches the static weight list".into(),
        });
    }
    Ok(targets(selected, &apportion(replicas, &weights)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sainte_lague_examples() {
        assert_eq!(apportion(12, &[3, 2, 1]), [6, 4, 2]);
        assert_eq!(apportion(13, &[3, 2, 1]), [7, 4, 2]);
        assert_eq!(apportion(14, &[3, 2, 1]), [7, 5, 2]);
        assert_eq!(apportion(12, &[6, 8, 10]), [3, 4, 5]);
        assert_eq!(apportion(2, &[1, 1]), [1, 1]);
        assert_eq!(apportion(3, &[1, 1]), [2, 1], "ties go to the earlier cluster");
        assert_eq!(apportion(5, &[0, 1]), [0, 5]);
        assert_eq!(apportion(0, &[1, 2]), [0, 0]);
    }

    proptest! {
        #[test]
        fn apportionment_keeps_the_total_and_proportion(seats in 0i64..5000, weights in proptest::collection::vec(0i64..100, 1..12)) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let out = apportion(seats, &weights);
            prop_assert_eq!(out.iter().sum::<i64>(), seats);
            let total: i64 = weights.iter().sum();
            for (o, w) in out.iter().zip(&weights) {
                if *w == 0 {
                    prop_assert_eq!(*o, 0);
                }
                let exact = seats as f64 * *w as f64 / total as f64;
                prop_assert!((*o as f64 - exact).abs() < (weights.len() as f64), "{o} vs {exact}");
            }
            prop_assert_eq!(apportion(seats, &weights), out, "deterministic");
        }
    }
}
