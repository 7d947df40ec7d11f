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
    let Some(c) = capacity else { return i64::from(i32::MAX) };
    let free = |name: &str| -> Option<i128> {
        let total = *c.allocatable.get(name)?;
        Some(
            total
                - c.allocated.get(name).copied().unwrap_or(0)
                - c.allocating.get(name).copied().unwrap_or(0),
        )
    };
    let mut fit: i128 = i128::from(i32::MAX);
    if let Some(pods) = free("pods") {
        fit = fit.min(pods.max(0) / 1000);
    }
    for (name, per_replica) in requests {
        if *per_replica <= 0 || name == "pods" {
            continue;
        }
        match free(name) {
            Some(f) => fit = fit.min(f.max(0) / per_replica),
            None => return 0,
        }
    }
    (fit as i64 - in_flight).max(0)
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
}
