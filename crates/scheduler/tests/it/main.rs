//! Table tests of the scheduling pipeline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use karmada_api::cluster::Taint;
use karmada_api::policy::Placement;
use karmada_api::work::TargetCluster;
use scheduler::{BindingInfo, Capacity, ClusterInfo, Plugins, schedule};
use serde_json::json;

fn cluster(name: &str, region: &str, cpu_cores: i128) -> ClusterInfo {
    ClusterInfo {
        name: name.into(),
        labels: std::sync::Arc::new(
            [("location".to_string(), region.to_string())].into_iter().collect(),
        ),
        provider: "sim".into(),
        region: region.into(),
        zones: vec![format!("{region}-a")],
        capacity: Some(std::sync::Arc::new(Capacity {
            allocatable: [("cpu".to_string(), cpu_cores * 1000), ("pods".to_string(), 110_000)]
                .into_iter()
                .collect(),
            ..Capacity::default()
        })),
        ..ClusterInfo::default()
    }
}

fn binding(replicas: i32, placement: serde_json::Value) -> BindingInfo {
    BindingInfo {
        gvk: "apps/v1/Deployment".into(),
        replicas,
        requests: [("cpu".to_string(), 1000)].into_iter().collect(),
        placement: serde_json::from_value::<Placement>(placement).unwrap(),
        ..BindingInfo::default()
    }
}

fn clusters() -> Vec<ClusterInfo> {
    vec![cluster("m1", "eu", 6), cluster("m2", "eu", 8), cluster("m3", "us", 10)]
}

fn check(b: BindingInfo, cs: &[ClusterInfo], want: &[(&str, i32)]) {
    let got = schedule(&b, cs, &Plugins::default())
        .unwrap_or_else(|e| panic!("{:?}: {}", b.placement, e.message()));
    let got: Vec<(String, i32)> =
        got.clusters.into_iter().map(|t: TargetCluster| (t.name, t.replicas)).collect();
    let want: Vec<(String, i32)> = want.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(sorted, want_sorted, "placement {:?}", b.placement);
}

#[test]
fn duplicated_is_the_default() {
    check(
        binding(2, json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}})),
        &clusters(),
        &[("m1", 2), ("m2", 2)],
    );
    check(binding(3, json!({})), &clusters(), &[("m1", 3), ("m2", 3), ("m3", 3)]);
}

#[test]
fn affinity_by_names_labels_fields_and_exclusion() {
    check(
        binding(
            1,
            json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"location": "eu"}}}}),
        ),
        &clusters(),
        &[("m1", 1), ("m2", 1)],
    );
    check(
        binding(
            1,
            json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["eu"]}]}}}),
        ),
        &clusters(),
        &[("m3", 1)],
    );
    check(
        binding(1, json!({"clusterAffinity": {"exclude": ["m2"]}})),
        &clusters(),
        &[("m1", 1), ("m3", 1)],
    );
    let err = schedule(
        &binding(1, json!({"clusterAffinity": {"clusterNames": ["nope"]}})),
        &clusters(),
        &Plugins::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "NoClusterFit");
    assert_eq!(
        err.message(),
        "0/3 clusters are available: 3 cluster(s) did not match the placement cluster affinity constraint."
    );
}

#[test]
fn ordered_affinity_terms_fall_back() {
    let b = binding(
        1,
        json!({"clusterAffinities": [
            {"affinityName": "primary", "clusterNames": ["gone"]},
            {"affinityName": "backup", "clusterNames": ["m3"]}
        ]}),
    );
    let decision = schedule(&b, &clusters(), &Plugins::default()).unwrap();
    assert_eq!(decision.affinity_name.as_deref(), Some("backup"));
    assert_eq!(decision.clusters, [TargetCluster::new("m3", 1)]);
    // Once on the backup term it stays there when the primary fits again (as upstream); a
    // requested reschedule starts from the first term.
    let mut recovered = binding(
        1,
        json!({"clusterAffinities": [
            {"affinityName": "primary", "clusterNames": ["m1"]},
            {"affinityName": "backup", "clusterNames": ["m3"]}
        ]}),
    );
    recovered.observed_affinity = Some("backup".into());
    let stays = schedule(&recovered, &clusters(), &Plugins::default()).unwrap();
    assert_eq!(stays.affinity_name.as_deref(), Some("backup"));
    recovered.fresh = true;
    let back = schedule(&recovered, &clusters(), &Plugins::default()).unwrap();
    assert_eq!(back.affinity_name.as_deref(), Some("primary"));
    // Every term failing reports the first term's reason.
    let mut nowhere = binding(
        1,
        json!({"clusterAffinities": [
            {"affinityName": "a", "clusterNames": ["gone"]},
            {"affinityName": "b", "labelSelector": {"matchLabels": {"none": "x"}}}
        ]}),
    );
    nowhere.observed_affinity = Some("a".into());
    let err = schedule(&nowhere, &clusters(), &Plugins::default()).unwrap_err();
    assert!(err.message().contains("0/3 clusters are available"), "{}", err.message());
}

#[test]
fn taints_need_tolerations_unless_already_scheduled() {
    let mut cs = clusters();
    cs[0].taints = vec![Taint {
        key: "cluster.karmada.io/not-ready".into(),
        value: String::new(),
        effect: "NoSchedule".into(),
        time_added: None,
    }];
    check(binding(1, json!({})), &cs, &[("m2", 1), ("m3", 1)]);
    check(
        binding(
            1,
            json!({"clusterTolerations": [{"key": "cluster.karmada.io/not-ready", "operator": "Exists"}]}),
        ),
        &cs,
        &[("m1", 1), ("m2", 1), ("m3", 1)],
    );
    let mut already = binding(1, json!({}));
    already.previous = vec![TargetCluster::new("m1", 1)];
    check(already, &cs, &[("m1", 1), ("m2", 1), ("m3", 1)]);
    let all_tainted: Vec<ClusterInfo> = cs
        .iter()
        .cloned()
        .map(|mut c| {
            c.taints = cs[0].taints.clone();
            c
        })
        .collect();
    let err = schedule(&binding(1, json!({})), &all_tainted, &Plugins::default()).unwrap_err();
    assert!(
        err.message()
            .contains("3 cluster(s) had untolerated taint {cluster.karmada.io/not-ready: }"),
        "{}",
        err.message()
    );
    // Disabling the plugin lets them through.
    let plugins = Plugins::parse("*,-TaintToleration").unwrap();
    assert!(schedule(&binding(1, json!({})), &all_tainted, &plugins).is_ok());
    assert!(Plugins::parse("*,-Nope").is_err());
}

#[test]
fn static_weights() {
    let weighted = |replicas: i32| {
        binding(
            replicas,
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"staticWeightList": [
            {"targetCluster": {"clusterNames": ["m1"]}, "weight": 3},
            {"targetCluster": {"clusterNames": ["m2"]}, "weight": 2},
            {"targetCluster": {"clusterNames": ["m3"]}, "weight": 1}]}}}),
        )
    };
    check(weighted(12), &clusters(), &[("m1", 6), ("m2", 4), ("m3", 2)]);
    check(weighted(13), &clusters(), &[("m1", 7), ("m2", 4), ("m3", 2)]);
    check(weighted(14), &clusters(), &[("m1", 7), ("m2", 5), ("m3", 2)]);
    // The quick start: 2 replicas at 1:1 over member1/member2.
    let quick = binding(
        2,
        json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}, "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["m1"]}, "weight": 1}, {"targetCluster": {"clusterNames": ["m2"]}, "weight": 1}]}}}),
    );
    check(quick, &clusters(), &[("m1", 1), ("m2", 1)]);
    // Unmatched clusters get nothing; zero-replica clusters are dropped.
    let partial = binding(
        4,
        json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["m3"]}, "weight": 1}]}}}),
    );
    check(partial, &clusters(), &[("m3", 4)]);
}

#[test]
fn dynamic_weights_follow_available_replicas() {
    let dynamic = |replicas: i32| {
        binding(
            replicas,
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}),
        )
    };
    check(dynamic(12), &clusters(), &[("m1", 3), ("m2", 4), ("m3", 5)]);
    // Scale up: only the added replicas are divided by availability.
    let mut up = dynamic(24);
    up.previous =
        vec![TargetCluster::new("m1", 3), TargetCluster::new("m2", 4), TargetCluster::new("m3", 5)];
    check(up, &clusters(), &[("m1", 6), ("m2", 8), ("m3", 10)]);
    // Scale down: in proportion to the previous assignment.
    let mut down = dynamic(6);
    down.previous = vec![TargetCluster::new("m1", 6), TargetCluster::new("m2", 6)];
    check(down, &clusters(), &[("m1", 3), ("m2", 3)]);
}

#[test]
fn aggregated_uses_the_fewest_clusters() {
    let agg = |replicas: i32| {
        binding(
            replicas,
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
        )
    };
    check(agg(9), &clusters(), &[("m3", 9)]);
    check(agg(14), &clusters(), &[("m3", 10), ("m2", 4)]);
    let err = schedule(&agg(100), &clusters(), &Plugins::default()).unwrap_err();
    assert_eq!(err.reason(), "Unschedulable");
    let mut sticky = agg(5);
    sticky.previous = vec![TargetCluster::new("m1", 5)];
    check(sticky, &clusters(), &[("m1", 5)]);
}

#[test]
fn spread_constraints_by_cluster_and_region() {
    let by_cluster = binding(
        1,
        json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 1, "maxGroups": 2}]}),
    );
    let got = schedule(&by_cluster, &clusters(), &Plugins::default()).unwrap();
    assert_eq!(got.clusters.len(), 2);
    let by_region = binding(
        1,
        json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}, {"spreadByField": "cluster", "minGroups": 2, "maxGroups": 2}]}),
    );
    let got = schedule(&by_region, &clusters(), &Plugins::default()).unwrap();
    let regions: std::collections::BTreeSet<&str> =
        got.clusters.iter().map(|t| if t.name == "m3" { "us" } else { "eu" }).collect();
    assert_eq!(regions.len(), 2, "{:?}", got.clusters);
    let too_many = binding(
        1,
        json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 3}, {"spreadByField": "cluster", "minGroups": 3}]}),
    );
    let err = schedule(&too_many, &clusters(), &Plugins::default()).unwrap_err();
    assert!(err.message().contains("less than spreadConstraint.MinGroups"), "{}", err.message());
    // Divided: swap in the roomier cluster when the first choice cannot hold the replicas.
    let divided = binding(
        9,
        json!({"spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}], "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
    );
    check(divided, &clusters(), &[("m3", 9)]);
    let zoneless: Vec<ClusterInfo> = clusters()
        .into_iter()
        .map(|mut c| {
            c.zones.clear();
            c
        })
        .collect();
    let by_zone = binding(
        1,
        json!({"spreadConstraints": [{"spreadByField": "zone", "minGroups": 1}, {"spreadByField": "cluster"}]}),
    );
    let err = schedule(&by_zone, &zoneless, &Plugins::default()).unwrap_err();
    assert!(err.message().contains("did not have zone property"), "{}", err.message());
}

/// Upstream's spread-by-region e2e layout: two clusters with a region each, one without; one
/// cluster per region at least, whatever the cluster constraint's maximum says, and the
/// region-less cluster is no candidate.
#[test]
fn spread_by_region_skips_clusters_without_one() {
    let mut cs =
        vec![cluster("member1", "2", 4), cluster("member2", "1", 4), cluster("member3", "", 4)];
    cs[2].zones.clear();
    let policy = json!({"replicaScheduling": {"replicaSchedulingType": "Duplicated"},
        "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1},
                              {"spreadByField": "region", "maxGroups": 2, "minGroups": 2}]});
    check(binding(3, policy), &cs, &[("member1", 3), ("member2", 3)]);
    let one_region = json!({"replicaScheduling": {"replicaSchedulingType": "Duplicated"},
        "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1},
                              {"spreadByField": "region", "maxGroups": 1, "minGroups": 1}]});
    let got = schedule(&binding(3, one_region), &cs, &Plugins::default()).unwrap();
    assert_eq!(got.clusters.len(), 1);
    assert_ne!(got.clusters[0].name, "member3");
}

/// Static weights decide alone (upstream ignores spread constraints for them).
#[test]
fn static_weights_ignore_spread_constraints() {
    let policy = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
            "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["m1"]}, "weight": 1},
                                                      {"targetCluster": {"clusterNames": ["m3"]}, "weight": 1}]}},
        "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}]});
    check(binding(4, policy), &clusters(), &[("m1", 2), ("m3", 2)]);
}

#[test]
fn api_enablement_and_eviction() {
    let mut cs = clusters();
    cs[0].enabled_apis =
        Some(std::sync::Arc::new(["v1/ConfigMap".to_string()].into_iter().collect()));
    check(binding(1, json!({})), &cs, &[("m2", 1), ("m3", 1)]);
    let mut evicting = binding(1, json!({}));
    evicting.evicting = vec!["m2".into()];
    check(evicting, &clusters(), &[("m1", 1), ("m3", 1)]);
}

mod capacity_properties {
    use super::*;
    use proptest::prelude::*;

    fn with_capacity(i: usize, cpu_milli: i128, pods: i128) -> ClusterInfo {
        ClusterInfo {
            name: format!("m{i}"),
            capacity: Some(std::sync::Arc::new(Capacity {
                allocatable: [("cpu".to_string(), cpu_milli), ("pods".to_string(), pods * 1000)]
                    .into_iter()
                    .collect(),
                ..Capacity::default()
            })),
            ..ClusterInfo::default()
        }
    }

    proptest! {
        /// Capacity-aware division (dynamic weights, Aggregated) never gives a cluster more
        /// replicas than it can take, and either places every replica or says it cannot.
        #[test]
        fn never_more_than_a_cluster_can_take(
            caps in prop::collection::vec((0i128..20_000, 0i128..40), 1..8),
            replicas in 1i32..60,
            request in 100i128..3000,
            aggregated in any::<bool>(),
        ) {
            let cs: Vec<ClusterInfo> =
                caps.iter().enumerate().map(|(i, (cpu, pods))| with_capacity(i, *cpu, *pods)).collect();
            let preference = if aggregated {
                json!({"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"})
            } else {
                json!({"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"dynamicWeight": "AvailableReplicas"}})
            };
            let mut b = binding(replicas, json!({"replicaScheduling": preference}));
            b.requests = [("cpu".to_string(), request)].into_iter().collect();
            let available: Vec<i64> = cs
                .iter()
                .map(|c| scheduler::estimate::available_replicas(c.capacity.as_deref(), &b.requests, 0))
                .collect();
            let total: i64 = available.iter().sum();
            match schedule(&b, &cs, &Plugins::default()) {
                Ok(decision) => {
                    let placed: i64 = decision.clusters.iter().map(|t| i64::from(t.replicas)).sum();
                    prop_assert_eq!(placed, i64::from(replicas));
                    for t in &decision.clusters {
                        let i = cs.iter().position(|c| c.name == t.name).unwrap();
                        prop_assert!(i64::from(t.replicas) <= available[i], "{} got {} > {}", t.name, t.replicas, available[i]);
                    }
                }
                Err(_) => prop_assert!(total < i64::from(replicas), "refused although {total} fit"),
            }
        }
    }
}

fn multi_template(
    leader_cores: i128,
    worker_cores: i128,
    placement: serde_json::Value,
) -> BindingInfo {
    let component = |name: &str, replicas, cores: i128| scheduler::ComponentInfo {
        name: name.into(),
        replicas,
        requests: [("cpu".to_string(), cores * 1000)].into_iter().collect(),
    };
    BindingInfo {
        gvk: "flink.apache.org/v1beta1/FlinkDeployment".into(),
        components: vec![
            component("jobmanager", 1, leader_cores),
            component("taskmanager", 2, worker_cores),
        ],
        placement: serde_json::from_value::<Placement>(placement).unwrap(),
        ..BindingInfo::default()
    }
}

const ONE_CLUSTER: &str = r#"{"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 1, "maxGroups": 1}],
    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}"#;

#[test]
fn a_multi_template_workload_goes_whole_to_one_cluster_that_fits_a_set() {
    // A set asks 4 + 2 × 3 = 10 cores: only m3 (10 cores) holds one.
    let b = multi_template(4, 3, serde_json::from_str(ONE_CLUSTER).unwrap());
    assert!(b.multi_template());
    let decision = schedule(&b, &clusters(), &Plugins::default()).unwrap();
    let recorded: Vec<(String, i32)> =
        decision.clusters[0].components.iter().map(|c| (c.name.clone(), c.replicas)).collect();
    assert_eq!(
        (
            decision.clusters.len(),
            decision.clusters[0].name.as_str(),
            decision.clusters[0].replicas
        ),
        (1, "m3", 0)
    );
    assert_eq!(recorded, [("jobmanager".to_string(), 1), ("taskmanager".to_string(), 2)]);
    // 12 cores a set: no cluster holds one.
    let too_big = multi_template(4, 4, serde_json::from_str(ONE_CLUSTER).unwrap());
    let e = schedule(&too_big, &clusters(), &Plugins::default()).unwrap_err();
    // As upstream: the spread constraint's selection fails, a plain scheduler error.
    assert_eq!(e.reason(), "SchedulerError", "{}", e.message());
    assert!(
        e.message().contains("no enough resource when selecting 1 clusters"),
        "{}",
        e.message()
    );
}

#[test]
fn components_without_a_single_cluster_placement_go_everywhere_unrecorded() {
    // As upstream: a multi-component workload is not divided; without a one-cluster spread
    // constraint it is propagated to every candidate, no per-component result recorded.
    let b = multi_template(4, 4, json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}}));
    assert!(!b.multi_template());
    let decision = schedule(&b, &clusters(), &Plugins::default()).unwrap();
    let names: Vec<&str> = decision.clusters.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["m1", "m2"]);
    assert!(decision.clusters.iter().all(|t| t.replicas == 0 && t.components.is_empty()));
}

#[test]
fn workload_affinity_and_anti_affinity() {
    let one = json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 1, "maxGroups": 1}]});
    // Anti-affinity: not where the group already is.
    let mut b = binding(1, one.clone());
    b.anti_affinity_taken = ["m3".to_string()].into_iter().collect();
    let got = schedule(&b, &clusters(), &Plugins::default()).unwrap();
    assert!(got.clusters.iter().all(|t| t.name != "m3"), "{:?}", got.clusters);
    // ... unless it is there already.
    b.previous = vec![TargetCluster::new("m3", 1)];
    check(b, &clusters(), &[("m3", 1)]);
    // Affinity: only where every scheduled peer is.
    let mut b = binding(1, one.clone());
    b.affinity_peers = vec![vec!["m1".into(), "m2".into()], vec!["m2".into()]];
    check(b, &clusters(), &[("m2", 1)]);
    // Nowhere left: why, per cluster, as upstream words it.
    let mut b = binding(1, one);
    b.affinity_peers = vec![vec!["gone".into()]];
    b.anti_affinity_taken = ["m1".to_string()].into_iter().collect();
    let e = schedule(&b, &clusters(), &Plugins::default()).unwrap_err();
    assert_eq!(
        e.message(),
        "0/3 clusters are available: 3 ResourceBinding with the same affinity group does not target this cluster."
    );
}

/// `overflowAffinities`: replicas fill the primary group, then each overflow group in order;
/// on scale-down the last groups are left first.
#[test]
fn overflow_affinities_fill_groups_in_order_and_leave_them_in_reverse() {
    let placement = json!({
        "clusterAffinities": [{
            "affinityName": "primary", "clusterNames": ["m1"],
            "overflowAffinities": [
                {"affinityName": "first", "clusterNames": ["m2", "m1"]},
                {"affinityName": "second", "clusterNames": ["m3"]}
            ]
        }],
        "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}
    });
    let overflow = |replicas| binding(replicas, placement.clone());
    check(overflow(4), &clusters(), &[("m1", 4)]);
    check(overflow(10), &clusters(), &[("m1", 6), ("m2", 4)]);
    check(overflow(20), &clusters(), &[("m1", 6), ("m2", 8), ("m3", 6)]);
    let err = schedule(&overflow(30), &clusters(), &Plugins::default()).unwrap_err();
    assert_eq!(err.reason(), "Unschedulable", "{}", err.message());
    // Running 6 + 8 + 6 (the clusters' capacity taken by them), scaled down to 10: the second
    // overflow group is left, the first shrinks, the primary keeps its replicas.
    let running = |name: &str, cpu: i128, used: i128| {
        let mut c = cluster(name, "eu", cpu);
        let capacity = std::sync::Arc::make_mut(c.capacity.as_mut().unwrap());
        capacity.allocated = [("cpu".to_string(), used * 1000)].into_iter().collect();
        c
    };
    let busy = [running("m1", 6, 6), running("m2", 8, 8), running("m3", 10, 6)];
    let mut down = overflow(10);
    down.previous =
        vec![TargetCluster::new("m1", 6), TargetCluster::new("m2", 8), TargetCluster::new("m3", 6)];
    check(down, &busy, &[("m1", 6), ("m2", 4)]);
    // Without overflow groups the term is its clusters alone.
    let plain = json!({
        "clusterAffinities": [{"affinityName": "primary", "clusterNames": ["m1"]}],
        "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}
    });
    let err = schedule(&binding(10, plain), &clusters(), &Plugins::default()).unwrap_err();
    assert_eq!(err.reason(), "Unschedulable", "{}", err.message());
}

/// Preemption: a binding that does not fit takes the room of the fewest lower-priority
/// placements on clusters it could use, lowest priority first.
#[test]
fn preemption_takes_the_fewest_lower_priority_placements() {
    use scheduler::preempt::{Candidate, victims};
    // m1 (6 cores) and m2 (8) are full: m1 with low-a (2) and low-b (4), m2 with mid (8).
    let full = |name: &str, cpu: i128| {
        let mut c = cluster(name, "eu", cpu);
        let capacity = std::sync::Arc::make_mut(c.capacity.as_mut().unwrap());
        capacity.allocated = [("cpu".to_string(), cpu * 1000)].into_iter().collect();
        c
    };
    let clusters = [full("m1", 6), full("m2", 8)];
    let holding = |key: &str, priority: i32, cluster: &str, replicas: i32| {
        let mut b = binding(replicas, json!({"clusterAffinity": {"clusterNames": [cluster]}}));
        b.previous = vec![TargetCluster::new(cluster, replicas)];
        Candidate { key: key.into(), priority, binding: b, ..Candidate::default() }
    };
    let candidates = [
        holding("ns/mid", 50, "m2", 8),
        holding("ns/low-b", 10, "m1", 4),
        holding("ns/low-a", 10, "m1", 2),
    ];
    let wants = |replicas: i32, names: &[&str]| {
        binding(
            replicas,
            json!({"clusterAffinity": {"clusterNames": names},
                   "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
        )
    };
    assert!(schedule(&wants(2, &["m1", "m2"]), &clusters, &Plugins::default()).is_err());
    // Two cores: the lowest priority, first by key (low-a, 2 cores) is enough.
    let (chosen, decision) =
        victims(&wants(2, &["m1", "m2"]), 100, &clusters, &candidates, &Plugins::default())
            .unwrap();
    let keys: Vec<&str> = chosen.iter().map(|i| candidates[*i].key.as_str()).collect();
    assert_eq!(keys, ["ns/low-a"]);
    assert_eq!(decision.clusters, [TargetCluster::new("m1", 2)]);
    // Five cores: both low ones.
    let (chosen, _) =
        victims(&wants(5, &["m1", "m2"]), 100, &clusters, &candidates, &Plugins::default())
            .unwrap();
    assert_eq!(chosen.len(), 2);
    // Only m2 usable: the low ones on m1 do not help; mid (priority 50) does for priority 100 ...
    let (chosen, _) =
        victims(&wants(3, &["m2"]), 100, &clusters, &candidates, &Plugins::default()).unwrap();
    let keys: Vec<&str> = chosen.iter().map(|i| candidates[*i].key.as_str()).collect();
    assert_eq!(keys, ["ns/mid"]);
    // ... but not for priority 50 (equal), nor when nothing lower holds enough.
    assert!(victims(&wants(3, &["m2"]), 50, &clusters, &candidates, &Plugins::default()).is_none());
    assert!(
        victims(&wants(20, &["m1", "m2"]), 100, &clusters, &candidates, &Plugins::default())
            .is_none()
    );
    // A placement the summary does not count yet is held in flight (`allocating`): taking it
    // gives that back too.
    let mut m3 = cluster("m3", "eu", 4);
    std::sync::Arc::make_mut(m3.capacity.as_mut().unwrap()).allocating =
        [("cpu".to_string(), 4000)].into_iter().collect();
    let mut fresh = holding("ns/fresh", 10, "m3", 4);
    fresh.in_flight = [("m3".to_string(), [("cpu".to_string(), 4000)].into_iter().collect())]
        .into_iter()
        .collect();
    let (chosen, decision) =
        victims(&wants(4, &["m3"]), 100, &[m3.clone()], &[fresh.clone()], &Plugins::default())
            .unwrap();
    assert_eq!((chosen, decision.clusters), (vec![0], vec![TargetCluster::new("m3", 4)]));
    fresh.in_flight.clear();
    assert!(victims(&wants(4, &["m3"]), 100, &[m3], &[fresh], &Plugins::default()).is_none());
}
