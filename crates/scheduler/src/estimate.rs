//! How many replicas a cluster can still take, from its resource summary.

use std::collections::BTreeMap;

/// A cluster's resources in milli-units (`pods` counts too, ×1000).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub allocatable: BTreeMap<String, i128>,
    pub allocated: BTreeMap<String, i128>,
    pub allocating: BTreeMap<String, i128>,
}

/// Replicas of `requests` that fit: the minimum over pods and every requested resource of
/// (allocatable − allocated − allocating) / request, minus `in_flight` replicas already
/// promised to other decisions. Unknown capacity means unlimited (`i32::MAX`).
pub fn available_replicas(
    capacity: Option<&Capacity>,
    requests: &BTreeMap<String, i128>,
    in_flight: i64,
) -> i64 {
    let mut unit: BTreeMap<String, i128> =
        requests.iter().filter(|(k, _)| *k != "pods").map(|(k, v)| (k.clone(), *v)).collect();
    unit.insert("pods".into(), 1000);
    (available_units(capacity, &unit) - in_flight).max(0)
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

/// Whole sets of components that fit.
pub fn available_sets(capacity: Option<&Capacity>, components: &[crate::ComponentInfo]) -> i64 {
    available_units(capacity, &set_requests(components))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(alloc: &[(&str, i128)], used: &[(&str, i128)]) -> Capacity {
        Capacity {
            allocatable: alloc.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            allocated: used.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            allocating: BTreeMap::new(),
        }
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
