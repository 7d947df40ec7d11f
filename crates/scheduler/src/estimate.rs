//! How many replicas a cluster can still take: from its resource summary, or, when the
//! cluster has resource models (CustomizedClusterResourceModeling), from the nodes its models
//! describe, as upstream's general estimator.

use std::collections::BTreeMap;

/// A cluster's resources in milli-units (`pods` counts too, ×1000).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub allocatable: BTreeMap<String, i128>,
    pub allocated: BTreeMap<String, i128>,
    pub allocating: BTreeMap<String, i128>,
    /// The cluster's nodes by resource-model grade, lowest grade first; empty when the cluster
    /// is not modelled (or modelling is off). Shared: a decision deducting in-flight room copies
    /// the rest of the capacity, not the grades.
    pub models: std::sync::Arc<Vec<ModelGrade>>,
}

/// One grade of a cluster's resource models as nodes: the grade's minimum of each modelled
/// resource (milli-units), and how many of the cluster's nodes have at least that free
/// (`status.resourceSummary.allocatableModelings`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelGrade {
    pub minimum: BTreeMap<String, i128>,
    pub nodes: i64,
}

/// The pods a node of a model holds (upstream's assumption for modelled nodes), ×1000.
const MODEL_NODE_PODS: i128 = 110_000;

/// Replicas of `requests` that fit, minus `in_flight` replicas already promised to other
/// decisions. From the summary: the minimum over pods and every requested resource of
/// (allocatable − allocated − allocating) / request. A modelled cluster: its free pods bound
/// the replicas that fit, one after another, in the nodes its models describe (each node of a
/// grade with that grade's minimum free), less what is allocating. Unknown capacity means
/// unlimited (`i32::MAX`).
pub fn available_replicas(
    capacity: Option<&Capacity>,
    requests: &BTreeMap<String, i128>,
    in_flight: i64,
) -> i64 {
    let mut unit: BTreeMap<String, i128> =
        requests.iter().filter(|(k, _)| *k != "pods").map(|(k, v)| (k.clone(), *v)).collect();
    unit.insert("pods".into(), 1000);
    let fit = match capacity {
        Some(c) if !c.models.is_empty() => {
            let pods = [("pods".to_owned(), 1000)].into_iter().collect();
            let by_models = c
                .models
                .iter()
                .map(|g| i128::from(g.nodes.max(0)) * per_model_node(&g.minimum, &unit))
                .sum::<i128>();
            let by_models = i64::try_from(by_models).unwrap_or(i64::MAX);
            available_units(Some(c), &pods).min(by_models - allocating_units(c, &unit))
        }
        _ => available_units(capacity, &unit),
    };
    (fit - in_flight).max(0)
}

/// Units that fit in one node of a model with `minimum` free.
fn per_model_node(minimum: &BTreeMap<String, i128>, unit: &BTreeMap<String, i128>) -> i128 {
    let mut fit = i128::from(i32::MAX);
    for (name, asked) in unit {
        if *asked <= 0 {
            continue;
        }
        let have = match minimum.get(name) {
            Some(have) => *have,
            None if name == "pods" => MODEL_NODE_PODS,
            // A resource nodes are sized in that the models do not name: none on such a node.
            None if sized_on_nodes(name) => 0,
            None => continue,
        };
        fit = fit.min(have.max(0) / asked);
    }
    fit
}

/// Whether a resource is one a node has a size of (upstream's node resources: CPU, memory,
/// ephemeral storage and scalar resources — extended or prefixed, hugepages, attachable
/// volumes).
fn sized_on_nodes(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage")
        || name.contains('/')
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
}

/// The units of `unit` that what is allocating in a modelled cluster takes (its nodes' grades
/// count only pods already on them), pods aside: an allocating pod asking for nothing takes no
/// room a sized unit needs.
fn allocating_units(c: &Capacity, unit: &BTreeMap<String, i128>) -> i64 {
    let taken = unit
        .iter()
        .filter(|(name, asked)| *name != "pods" && **asked > 0)
        .map(|(name, asked)| {
            let allocating = c.allocating.get(name).copied().unwrap_or(0).max(0);
            (allocating + asked - 1) / asked
        })
        .max()
        .unwrap_or(0);
    i64::try_from(taken).unwrap_or(i64::MAX)
}

/// Units that fit, a unit asking `unit` of the cluster (`pods` ×1000 among them): the minimum
/// over the resources asked of free / asked. A cluster that does not report its pod budget is
/// not bounded by it; one without a resource asked for fits nothing.
pub fn available_units(capacity: Option<&Capacity>, unit: &BTreeMap<String, i128>) -> i64 {
    let Some(c) = capacity else { return i64::from(i32::MAX) };
    let mut fit: i128 = i128::from(i32::MAX);
    for (name, asked) in unit {
        if *asked <= 0 {
            continue;
        }
        let Some(total) = c.allocatable.get(name) else {
            if name == "pods" {
                continue;
            }
            return 0;
        };
        let free = total
            - c.allocated.get(name).copied().unwrap_or(0)
            - c.allocating.get(name).copied().unwrap_or(0);
        fit = fit.min(free.max(0) / asked);
    }
    fit as i64
}

/// What one whole set of components asks of a cluster: each component's requests times its
/// replicas, and its pods (×1000).
pub fn set_requests(components: &[crate::ComponentInfo]) -> BTreeMap<String, i128> {
    let mut set: BTreeMap<String, i128> = BTreeMap::new();
    for c in components {
        let replicas = i128::from(c.replicas.max(0));
        for (name, per_replica) in &c.requests {
            if name != "pods" {
                *set.entry(name.clone()).or_default() += per_replica * replicas;
            }
        }
        *set.entry("pods".into()).or_default() += 1000 * replicas;
    }
    set
}

/// Whole sets of components that fit: by the summary, and in a modelled cluster also by
/// placing sets one after another in the nodes its models describe, each component's replicas
/// on the first nodes with room (upstream's first-fit simulation), less what is allocating.
pub fn available_sets(capacity: Option<&Capacity>, components: &[crate::ComponentInfo]) -> i64 {
    let set = set_requests(components);
    let by_summary = available_units(capacity, &set);
    let Some(c) = capacity.filter(|c| !c.models.is_empty()) else { return by_summary };
    let pods_per_set = set.get("pods").copied().unwrap_or(0);
    if pods_per_set <= 0 {
        return by_summary;
    }
    // No more sets than the modelled nodes have pods for.
    let model_pods: i128 =
        c.models.iter().map(|g| i128::from(g.nodes.max(0)) * MODEL_NODE_PODS).sum();
    let allocating = allocating_units(c, &set);
    let bound = by_summary
        .saturating_add(allocating)
        .min(i64::try_from(model_pods / pods_per_set).unwrap_or(i64::MAX));
    by_summary.min(model_sets(&c.models, components, bound) - allocating).max(0)
}

/// Sets placed first-fit in the nodes of `models`, up to `bound`.
fn model_sets(models: &[ModelGrade], components: &[crate::ComponentInfo], bound: i64) -> i64 {
    let mut nodes: Vec<BTreeMap<String, i128>> = Vec::new();
    for grade in models {
        let mut node = grade.minimum.clone();
        node.insert("pods".into(), MODEL_NODE_PODS);
        nodes.extend(std::iter::repeat_n(node, usize::try_from(grade.nodes).unwrap_or(0)));
    }
    // What one replica of each component asks, pods included (the same for every set).
    let units: Vec<(BTreeMap<String, i128>, i128)> = components
        .iter()
        .map(|c| {
            let mut unit = c.requests.clone();
            unit.insert("pods".into(), 1000);
            (unit, i128::from(c.replicas.max(0)))
        })
        .collect();
    let mut sets = 0;
    while sets < bound {
        for (unit, replicas) in &units {
            let mut remaining = *replicas;
            for node in nodes.iter_mut() {
                if remaining == 0 {
                    break;
                }
                let placed = per_model_node(node, unit).min(remaining);
                if placed <= 0 {
                    continue;
                }
                for (name, asked) in unit {
                    if let Some(have) = node.get_mut(name) {
                        *have -= asked * placed;
                    }
                }
                remaining -= placed;
            }
            if remaining > 0 {
                return sets;
            }
        }
        sets += 1;
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(alloc: &[(&str, i128)], used: &[(&str, i128)]) -> Capacity {
        Capacity {
            allocatable: alloc.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            allocated: used.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            allocating: BTreeMap::new(),
            models: Default::default(),
        }
    }

    /// `nodes` modelled nodes of 2 CPUs and 16Gi (upstream's default grade 2).
    fn modelled(nodes: i64) -> Capacity {
        let mut c =
            caps(&[("cpu", 24_000), ("memory", 96 << 30), ("pods", 330_000)], &[("pods", 10_000)]);
        c.models = std::sync::Arc::new(vec![
            ModelGrade { minimum: [("cpu".into(), 0), ("memory".into(), 0)].into(), nodes: 0 },
            ModelGrade {
                minimum: [("cpu".into(), 2000), ("memory".into(), (16i128 << 30) * 1000)].into(),
                nodes,
            },
        ]);
        c
    }

    #[test]
    fn a_modelled_cluster_fits_what_its_model_nodes_hold() {
        let req = |pairs: &[(&str, i128)]| -> BTreeMap<String, i128> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let c = modelled(3);
        // Three nodes of 2 CPUs: 6 one-CPU replicas (the summary would say 24).
        assert_eq!(available_replicas(Some(&c), &req(&[("cpu", 1000)]), 0), 6);
        assert_eq!(available_replicas(Some(&c), &req(&[("cpu", 1500)]), 0), 3, "one per node");
        assert_eq!(available_replicas(Some(&c), &req(&[("cpu", 1000)]), 2), 4, "in flight");
        // What is allocating takes its share of the model's room.
        let mut busy = c.clone();
        busy.allocating.insert("cpu".into(), 1500);
        assert_eq!(available_replicas(Some(&busy), &req(&[("cpu", 1000)]), 0), 4);
        // The summary's free pods still bound it.
        let mut crowded = c.clone();
        crowded.allocated.insert("pods".into(), 327_000);
        assert_eq!(available_replicas(Some(&crowded), &req(&[("cpu", 100)]), 0), 3);
        // A node resource the models do not size fits nothing; another name is not a node's.
        assert_eq!(available_replicas(Some(&c), &req(&[("nvidia.com/gpu", 1000)]), 0), 0);
        assert_eq!(available_replicas(Some(&c), &req(&[("cpu", 1000), ("example", 5)]), 0), 6);
        // No requests: pods bound it, 110 per modelled node and the summary's free pods.
        assert_eq!(available_replicas(Some(&c), &BTreeMap::new(), 0), 320);
        assert_eq!(available_replicas(Some(&modelled(0)), &req(&[("cpu", 1)]), 0), 0);
    }

    #[test]
    fn sets_are_placed_first_fit_in_model_nodes() {
        let component = |name: &str, replicas, cpu| crate::ComponentInfo {
            name: name.into(),
            replicas,
            requests: [("cpu".to_string(), cpu)].into_iter().collect(),
        };
        // A leader of 1.5 CPUs and two workers of 1: the summary's 24 CPUs hold 6 sets, three
        // nodes of 2 CPUs hold one (the leader alone on a node, the workers on the next; the
        // second leader on the third, its workers nowhere).
        let set = [component("leader", 1, 1500), component("worker", 2, 1000)];
        assert_eq!(available_sets(Some(&modelled(3)), &set), 1);
        assert_eq!(available_sets(Some(&modelled(4)), &set), 2);
        let mut plain = modelled(3);
        plain.models = Default::default();
        assert_eq!(available_sets(Some(&plain), &set), 6);
        // Nothing asked: the summary decides.
        assert_eq!(
            available_sets(Some(&modelled(3)), &[component("none", 0, 0)]),
            i64::from(i32::MAX)
        );
    }

    #[test]
    fn estimates() {
        let c = caps(
            &[("cpu", 4000), ("memory", 8 << 30), ("pods", 110_000)],
            &[("cpu", 1000), ("pods", 10_000)],
        );
        let req = |cpu: i128| [("cpu".to_string(), cpu)].into_iter().collect::<BTreeMap<_, _>>();
        assert_eq!(available_replicas(Some(&c), &req(500), 0), 6);
        assert_eq!(available_replicas(Some(&c), &req(500), 4), 2);
        assert_eq!(available_replicas(Some(&c), &BTreeMap::new(), 0), 100);
        assert_eq!(available_replicas(None, &req(500), 0), i64::from(i32::MAX));
        let gpu = [("nvidia.com/gpu".to_string(), 1000)].into_iter().collect();
        assert_eq!(
            available_replicas(Some(&c), &gpu, 0),
            0,
            "a resource the cluster lacks fits nothing"
        );
    }

    #[test]
    fn sets_of_components() {
        let c = caps(&[("cpu", 4000), ("memory", 8 << 30), ("pods", 10_000)], &[("cpu", 1000)]);
        let component = |name: &str, replicas, cpu| crate::ComponentInfo {
            name: name.into(),
            replicas,
            requests: [("cpu".to_string(), cpu)].into_iter().collect(),
        };
        // A set: 1 × 500m + 2 × 250m = 1 CPU and 3 pods; 3 CPUs free, 10 pods.
        let set = [component("leader", 1, 500), component("worker", 2, 250)];
        assert_eq!(set_requests(&set).get("pods"), Some(&3000));
        assert_eq!(available_sets(Some(&c), &set), 3);
        // Pods bound it: 4 workers of nothing each fit twice in 10 pods.
        assert_eq!(available_sets(Some(&c), &[component("w", 4, 0)]), 2);
        assert_eq!(available_sets(None, &set), i64::from(i32::MAX));
        let gpu = crate::ComponentInfo {
            name: "trainer".into(),
            replicas: 1,
            requests: [("nvidia.com/gpu".to_string(), 1000)].into_iter().collect(),
        };
        assert_eq!(available_sets(Some(&c), &[gpu]), 0);
    }
}
