#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::pages;

fn cluster(value: Value) -> Cluster {
    serde_json::from_value(value).unwrap()
}

fn binding(value: Value) -> ResourceBinding {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_cluster_row_shows_readiness_capacity_and_taints() {
    let row = cluster_row(&cluster(json!({
        "metadata": {"name": "member1"},
        "spec": {"syncMode": "Push", "taints": [
            {"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"},
            {"key": "team", "value": "a", "effect": "NoSchedule"}]},
        "status": {"kubernetesVersion": "v1.32.0",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ClusterNotReachable",
                            "message": "cluster is not reachable", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "nodeSummary": {"totalNum": 3, "readyNum": 2},
            "resourceSummary": {"allocatable": {"cpu": "24", "memory": "96Gi"},
                                "allocated": {"cpu": "3500m", "memory": "12Gi"}}},
    })));
    assert_eq!(row.name, "member1");
    assert!(!row.ready.ok);
    assert_eq!(row.ready.reason, "ClusterNotReachable");
    assert_eq!(row.nodes, (2, 3));
    let cpu = row.cpu.unwrap();
    assert_eq!((cpu.percent(), cpu.label.as_str()), (15, "3.5 / 24 cores"));
    assert_eq!(row.memory.unwrap().label, "12 / 96 GiB");
    assert_eq!(row.taints, ["cluster.karmada.io/not-ready:NoExecute", "team=a:NoSchedule"]);
    // A cluster that has not reported: not ready, no capacity, no crash.
    let new =
        cluster_row(&cluster(json!({"metadata": {"name": "fresh"}, "spec": {"syncMode": "Pull"}})));
    assert!(!new.ready.ok && new.cpu.is_none() && new.nodes == (0, 0));
}

#[test]
fn a_workload_row_shows_where_its_replicas_are_and_why_it_fails() {
    let row = workload_row(&binding(json!({
        "metadata": {"name": "nginx-deployment", "namespace": "default",
            "annotations": {"propagationpolicy.karmada.io/name": "nginx-propagation",
                            "propagationpolicy.karmada.io/namespace": "default"}},
        "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "nginx"},
                 "replicas": 3,
                 "clusters": [{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 1}]},
        "status": {
            "conditions": [
                {"type": "Scheduled", "status": "True", "reason": "Success", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "FullyApplied", "status": "False", "reason": "FullyAppliedFailed", "message": "member2: quota exceeded", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "aggregatedStatus": [
                {"clusterName": "member1", "applied": true, "health": "Healthy", "status": {"replicas": 2, "readyReplicas": 2}},
                {"clusterName": "member2", "applied": false, "appliedMessage": "quota exceeded"}]},
    })));
    assert_eq!(
        (row.kind.as_str(), row.namespace.as_str(), row.name.as_str()),
        ("Deployment", "default", "nginx")
    );
    assert_eq!(row.policy.as_deref(), Some("default/nginx-propagation"));
    assert_eq!(row.desired, 3);
    assert_eq!(row.ready(), Some(2));
    assert_eq!(
        row.placements[0],
        Placement {
            cluster: "member1".into(),
            replicas: 2,
            ready: Some(2),
            health: "Healthy".into(),
            applied: true,
            message: String::new()
        }
    );
    assert_eq!((row.placements[1].health.as_str(), row.placements[1].applied), ("Unknown", false));
    assert!(row.failing());
    let counts = counts(&[], std::slice::from_ref(&row), 1, 0);
    assert_eq!((counts.workloads, counts.workloads_failing), (1, 1));
}

#[test]
fn pages_escape_what_users_named() {
    let mut row = workload_row(&binding(json!({
        "metadata": {"name": "b"},
        "spec": {"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "<script>alert(1)</script>"}},
    })));
    row.policy = Some("\"><img src=x>".into());
    let html = pages::workloads(&[row], None);
    assert!(!html.contains("<script>alert") && !html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let login = pages::login(Some("<b>no</b>"));
    assert!(login.contains("&lt;b&gt;no&lt;/b&gt;") && login.contains("role=\"alert\""));
    assert!(login.contains("<label for=\"token\">"), "the token field is labelled");
}

#[test]
fn every_cluster_gets_the_schedulers_verdict() {
    let bound = binding(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "web"},
                 "replicas": 2,
                 "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2", "member3"]}},
                 "clusters": [{"name": "member1", "replicas": 2}]},
    }));
    let clusters: Vec<Cluster> = ["member1", "member2", "member3", "member4"]
        .iter()
        .map(|name| {
            let taints = if *name == "member3" {
                json!([{"key": "maintenance", "effect": "NoSchedule"}])
            } else {
                json!([])
            };
            cluster(
                json!({"metadata": {"name": name}, "spec": {"syncMode": "Push", "taints": taints}}),
            )
        })
        .collect();
    let verdicts = why_not(&bound.spec, bound.status.as_ref(), &clusters);
    assert_eq!(verdicts[0], ("member1".into(), Verdict::Chosen(2)));
    assert_eq!(verdicts[1], ("member2".into(), Verdict::NotPicked));
    assert!(
        matches!(&verdicts[2].1, Verdict::FilteredOut { plugin: "TaintToleration", .. }),
        "{verdicts:?}"
    );
    assert!(
        matches!(&verdicts[3].1, Verdict::FilteredOut { plugin: "ClusterAffinity", .. }),
        "{verdicts:?}"
    );
}
