//! The execution loop: `execution` applies Works to push members, `workStatus` reflects the
//! member objects' status back, and `bindingStatus` aggregates it into the template.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use karmada_api::names;
use karmada_api::work::Work;
use kube::api::Api;

use crate::harness::{Plane, eventually, namespace, policy, web};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_are_applied_and_their_status_comes_back() {
    let mut plane = Plane::start(1).await;
    plane.run("*", true);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 2)).await;
    plane.apply(policy("demo", &["member1"], false)).await;

    let member: Api<Deployment> = Api::namespaced(plane.member("member1").clone(), "demo");
    let applied = eventually("the Deployment in member1", Duration::from_secs(30), || async {
        member.get_opt("web").await.ok().flatten()
    })
    .await;
    let labels = applied.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get(names::MANAGED_LABEL).map(String::as_str), Some("true"));
    let works: Api<Work> =
        Api::namespaced(plane.client.clone(), &names::execution_namespace("member1"));
    let work_name = names::work_name("Deployment", "web", "demo");
    let work = eventually("the member's status in the Work", Duration::from_secs(30), || async {
        let w = works.get(&work_name).await.ok()?;
        let s = w.status.as_ref()?;
        let healthy = s.manifest_statuses.first()?.health == "Healthy";
        healthy.then_some(w)
    })
    .await;
    let applied = work.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Applied");
    assert_eq!(applied.map(|c| c.status).as_deref(), Some("True"));
    let templates: Api<Deployment> = Api::namespaced(plane.client.clone(), "demo");
    eventually("the template's aggregated status", Duration::from_secs(30), || async {
        let d = templates.get("web").await.ok()?;
        (d.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_work_status_off_works_are_applied_without_member_status() {
    let mut plane = Plane::start(1).await;
    plane.run("*,-workStatus", true);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(web("demo", 1)).await;
    plane.apply(policy("demo", &["member1"], false)).await;
    let works: Api<Work> =
        Api::namespaced(plane.client.clone(), &names::execution_namespace("member1"));
    let work_name = names::work_name("Deployment", "web", "demo");
    let work = eventually("the Work applied", Duration::from_secs(30), || async {
        let w = works.get(&work_name).await.ok()?;
        let applied = w
            .status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.type_ == "Applied" && c.status == "True");
        applied.then_some(w)
    })
    .await;
    let member: Api<Deployment> = Api::namespaced(plane.member("member1").clone(), "demo");
    assert!(member.get_opt("web").await.unwrap().is_some());
    assert!(work.status.unwrap().manifest_statuses.is_empty(), "nothing reflected");
}
