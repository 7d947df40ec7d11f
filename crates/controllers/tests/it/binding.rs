//! The binding controller (`binding`): a scheduled binding becomes one Work per cluster.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use karmada_api::names;
use karmada_api::work::{ResourceBinding, Work};
use kube::api::{Api, ListParams};

use crate::harness::{Plane, eventually, namespace, policy, web};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_binding_becomes_one_work_per_cluster() {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run("cluster,binding", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 4)).await;
    plane.apply(policy("demo", &["member1", "member2"], true)).await;

    let work_name = names::work_name("Deployment", "web", "demo");
    let mut replicas = Vec::new();
    for cluster in ["member1", "member2"] {
        let works: Api<Work> =
            Api::namespaced(plane.client.clone(), &names::execution_namespace(cluster));
        let work = eventually("the Work of each cluster", Duration::from_secs(20), || async {
            works.get_opt(&work_name).await.ok().flatten()
        })
        .await;
        let manifest = work.spec.workload.manifests[0].value();
        replicas.push(manifest["spec"]["replicas"].as_i64().unwrap());
        let labels = work.metadata.labels.clone().unwrap_or_default();
        assert!(labels.contains_key(names::RB_PERMANENT_ID_LABEL), "{labels:?}");
        let annotations = work.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get(names::RB_NAME_ANNOTATION).map(String::as_str),
            Some("web-deployment")
        );
        assert_eq!(
            work.metadata.finalizers.as_deref(),
            Some(&[names::EXECUTION_FINALIZER.to_owned()][..])
        );
    }
    assert_eq!(replicas, vec![2, 2], "4 replicas divided over two clusters of equal weight");
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let rb = bindings.get("web-deployment").await.unwrap();
    assert!(
        rb.metadata.finalizers.unwrap_or_default().iter().any(|f| f == names::BINDING_FINALIZER)
    );
    // Execution is not running: nothing reached the members.
    let deployments: Api<Deployment> = Api::namespaced(plane.member("member1").clone(), "demo");
    assert!(deployments.list(&ListParams::default()).await.map_or(true, |l| l.items.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_binding_off_no_work_is_rendered() {
    let mut plane = Plane::start(1).await;
    plane.members_ready().await;
    plane.run("*,-binding", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 1)).await;
    plane.apply(policy("demo", &["member1"], false)).await;
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    eventually("the binding scheduled", Duration::from_secs(20), || async {
        let rb = bindings.get_opt("web-deployment").await.ok().flatten()?;
        (!rb.spec.clusters.is_empty()).then_some(())
    })
    .await;
    // Everything else runs (the cluster controller made the execution namespace), so a Work
    // would have been written by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let works: Api<Work> =
        Api::namespaced(plane.client.clone(), &names::execution_namespace("member1"));
    let listed = works.list(&ListParams::default()).await.unwrap();
    let found: Vec<_> = listed.items.iter().filter_map(|w| w.metadata.name.as_deref()).collect();
    // The namespace controller's Work for `demo` is there: the loops that are on do run.
    assert!(found.contains(&names::work_name("Namespace", "demo", "").as_str()), "{found:?}");
    assert!(!found.contains(&names::work_name("Deployment", "web", "demo").as_str()), "{found:?}");
}
