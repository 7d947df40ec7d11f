//! Controllers driven by policy objects: `clustertaintpolicy` (cluster conditions → taints) and
//! `workloadRebalancer` (a one-off reschedule of named workloads).

use std::time::Duration;

use karmada_api::apps::WorkloadRebalancer;
use karmada_api::cluster::Cluster;
use karmada_api::work::ResourceBinding;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::{Plane, eventually, namespace, policy, web};

fn ready(status: &str) -> serde_json::Value {
    json!({"status": {"conditions": [{"type": "Ready", "status": status, "reason": "Probe",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_taint_policies_follow_the_clusters_conditions() {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run("clustertaintpolicy", false);
    plane
        .apply(json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterTaintPolicy",
            "metadata": {"name": "not-ready"},
            "spec": {"targetClusters": {"clusterNames": ["member1"]},
                "addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["False", "Unknown"]}],
                "removeOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["True"]}],
                "taints": [{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"}]}}))
        .await;
    let clusters: Api<Cluster> = Api::all(plane.client.clone());
    for m in ["member1", "member2"] {
        clusters
            .patch_status(m, &PatchParams::default(), &Patch::Merge(ready("False")))
            .await
            .unwrap();
    }
    let keys =
        |c: &Cluster| -> Vec<String> { c.spec.taints.iter().map(|t| t.key.clone()).collect() };
    let tainted = eventually("member1 tainted", Duration::from_secs(20), || async {
        let c = clusters.get("member1").await.ok()?;
        (keys(&c) == ["cluster.karmada.io/not-ready"]).then_some(c)
    })
    .await;
    assert!(tainted.spec.taints[0].time_added.is_some(), "a NoExecute taint says when");
    assert!(keys(&clusters.get("member2").await.unwrap()).is_empty(), "not a target");
    clusters
        .patch_status("member1", &PatchParams::default(), &Patch::Merge(ready("True")))
        .await
        .unwrap();
    eventually("member1 untainted", Duration::from_secs(20), || async {
        clusters.get("member1").await.ok()?.spec.taints.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_rebalancer_triggers_a_fresh_schedule_once() {
    let mut plane = Plane::start(1).await;
    plane.members_ready().await;
    plane.run("workloadRebalancer", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 1)).await;
    plane.apply(policy("demo", &["member1"], false)).await;
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    eventually("the binding", Duration::from_secs(20), || async {
        bindings.get_opt("web-deployment").await.ok().flatten().map(|_| ())
    })
    .await;
    plane
        .apply(json!({"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
            "metadata": {"name": "again"},
            "spec": {"workloads": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "absent"}]}}))
        .await;
    let rebalancers: Api<WorkloadRebalancer> = Api::all(plane.client.clone());
    let done = eventually("the rebalancer's status", Duration::from_secs(20), || async {
        let r = rebalancers.get("again").await.ok()?;
        r.status.as_ref()?.finish_time.as_ref()?;
        Some(r)
    })
    .await;
    let status = done.status.unwrap();
    assert_eq!(status.observed_generation, done.metadata.generation);
    let results: Vec<(&str, &str, &str)> = status
        .observed_workloads
        .iter()
        .map(|o| (o.workload.name.as_str(), o.result.as_str(), o.reason.as_str()))
        .collect();
    assert_eq!(
        results,
        [("absent", "Failed", "ReferencedBindingNotFound"), ("web", "Successful", "")],
        "sorted by apiVersion, kind, namespace, name"
    );
    let rb = bindings.get("web-deployment").await.unwrap();
    assert!(rb.spec.reschedule_triggered_at.is_some());
}
