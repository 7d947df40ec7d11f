//! The taint manager (`cluster` with `--enable-taint-manager`): bindings leave clusters with
//! NoExecute taints they do not tolerate.

use std::time::Duration;

use karmada_api::cluster::Cluster;
use karmada_api::work::{ResourceBinding, Work};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::{Plane, eventually, namespace, policy, web};

async fn scheduled_on_both(plane: &Plane) -> Api<ResourceBinding> {
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 2)).await;
    plane.apply(policy("demo", &["member1", "member2"], false)).await;
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    eventually("the binding on both clusters", Duration::from_secs(20), || async {
        let rb = bindings.get_opt("web-deployment").await.ok().flatten()?;
        (rb.spec.clusters.len() == 2).then_some(())
    })
    .await;
    bindings
}

async fn taint_member1(plane: &Plane) {
    let clusters: Api<Cluster> = Api::all(plane.client.clone());
    let taint = json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute",
        "timeAdded": "2026-01-01T00:00:00Z"}]}});
    clusters.patch("member1", &PatchParams::default(), &Patch::Merge(taint)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untolerated_noexecute_taint_evicts() {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run("cluster,binding", true);
    plane.run_scheduler();
    let bindings = scheduled_on_both(&plane).await;
    taint_member1(&plane).await;
    let rb = eventually("the eviction from member1", Duration::from_secs(20), || async {
        let rb = bindings.get("web-deployment").await.ok()?;
        (!rb.spec.graceful_eviction_tasks.is_empty()).then_some(rb)
    })
    .await;
    let task = &rb.spec.graceful_eviction_tasks[0];
    assert_eq!((task.from_cluster.as_str(), task.producer.as_str()), ("member1", "TaintManager"));
    assert_eq!(task.reason, "TaintUntolerated");
    assert!(rb.spec.clusters.iter().all(|c| c.name != "member1"), "{:?}", rb.spec.clusters);
}

/// A NoExecute taint on member1 evicts nothing with these settings.
async fn nothing_is_evicted(configure: impl FnOnce(&mut controllers::Settings)) {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run_with("cluster,binding", configure);
    plane.run_scheduler();
    let bindings = scheduled_on_both(&plane).await;
    taint_member1(&plane).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rb = bindings.get("web-deployment").await.unwrap();
    assert!(rb.spec.graceful_eviction_tasks.is_empty());
    assert!(rb.spec.clusters.iter().any(|c| c.name == "member1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_taint_manager_nothing_is_evicted() {
    nothing_is_evicted(|s| s.enable_taint_manager = false).await;
}

/// The Failover gate off (upstream's default): the taint manager is not started, a NoExecute
/// taint evicts nothing, as `--feature-gates=Failover=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_failover_gate_off_nothing_is_evicted() {
    nothing_is_evicted(|s| {
        s.features = karmada_api::features::FeatureGates::parse("Failover=false").unwrap();
    })
    .await;
}

/// Two of three clusters fail at once: every workload leaves both for the backup affinity
/// term, evictions are paced by `evictions_per_second` (1: each eviction in its own second),
/// and with `purgeMode: Never` the failed clusters keep their Works, also once their taints are
/// gone, while the placement stays on the backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_from_several_clusters_are_paced_and_never_purges_nothing() {
    let mut plane = Plane::start(3).await;
    plane.members_ready().await;
    plane.run_with("cluster,binding", |s| s.evictions_per_second = 1);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane
        .apply(json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "fo", "namespace": "demo"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "fo"}}}],
                "placement": {"clusterAffinities": [
                    {"affinityName": "primary", "clusterNames": ["member1", "member2"]},
                    {"affinityName": "backup", "clusterNames": ["member3"]}]},
                "failover": {"cluster": {"purgeMode": "Never"}}}}))
        .await;
    for i in 0..6 {
        let mut d = web("demo", 1);
        d["metadata"]["name"] = json!(format!("fo-{i}"));
        d["metadata"]["labels"] = json!({"app": "fo"});
        plane.apply(d).await;
    }
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let placed = |rb: &ResourceBinding| -> Vec<String> {
        let mut c: Vec<String> = rb.spec.clusters.iter().map(|t| t.name.clone()).collect();
        c.sort();
        c
    };
    eventually("every workload on the primary term", Duration::from_secs(20), || async {
        let list = bindings.list(&Default::default()).await.ok()?;
        let on_primary = list.items.iter().filter(|rb| placed(rb) == ["member1", "member2"]);
        (on_primary.count() == 6).then_some(())
    })
    .await;

    let clusters: Api<Cluster> = Api::all(plane.client.clone());
    let taint = json!({"spec": {"taints": [{"key": "cluster.karmada.io/unreachable", "effect": "NoExecute",
        "timeAdded": "2026-01-01T00:00:00Z"}]}});
    for m in ["member1", "member2"] {
        clusters.patch(m, &PatchParams::default(), &Patch::Merge(&taint)).await.unwrap();
    }
    let list = eventually("every workload on member3 only", Duration::from_secs(30), || async {
        let list = bindings.list(&Default::default()).await.ok()?;
        list.items.iter().all(|rb| placed(rb) == ["member3"]).then_some(list)
    })
    .await;
    // Pacing: each binding's evictions happen in one reconcile (one token) or several; every
    // token lands in its own second.
    let mut tokens = std::collections::BTreeSet::new();
    for rb in &list.items {
        for task in &rb.spec.graceful_eviction_tasks {
            assert_eq!(task.purge_mode, karmada_api::policy::PurgeMode::Never);
            let stamp = task.creation_timestamp.clone().unwrap_or_default();
            tokens.insert((rb.metadata.name.clone().unwrap_or_default(), stamp));
        }
    }
    assert!(tokens.len() >= 6, "every binding was evicted: {tokens:?}");
    let seconds: std::collections::BTreeSet<&str> =
        tokens.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(seconds.len(), tokens.len(), "at most one eviction per second: {tokens:?}");
    // purgeMode Never: the failed clusters' Works stay, also when the clusters recover.
    let works_in = |cluster: &'static str| {
        let works: Api<Work> = Api::namespaced(
            plane.client.clone(),
            &karmada_api::names::execution_namespace(cluster),
        );
        async move {
            let list = works.list(&Default::default()).await.unwrap();
            list.items
                .iter()
                .filter(|w| w.metadata.name.as_deref().is_some_and(|n| n.starts_with("fo-")))
                .count()
        }
    };
    assert_eq!((works_in("member1").await, works_in("member2").await), (6, 6));
    for m in ["member1", "member2"] {
        clusters
            .patch(m, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": []}})))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((works_in("member1").await, works_in("member2").await), (6, 6));
    let list = bindings.list(&Default::default()).await.unwrap();
    assert!(list.items.iter().all(|rb| placed(rb) == ["member3"]), "the placement stays");
}
