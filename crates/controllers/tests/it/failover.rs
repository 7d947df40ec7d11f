//! The taint manager (`cluster` with `--enable-taint-manager`): bindings leave clusters with
//! NoExecute taints they do not tolerate.

use std::time::Duration;

use karmada_api::cluster::Cluster;
use karmada_api::work::ResourceBinding;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_taint_manager_nothing_is_evicted() {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run("cluster,binding", false);
    plane.run_scheduler();
    let bindings = scheduled_on_both(&plane).await;
    taint_member1(&plane).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rb = bindings.get("web-deployment").await.unwrap();
    assert!(rb.spec.graceful_eviction_tasks.is_empty());
    assert!(rb.spec.clusters.iter().any(|c| c.name == "member1"));
}
