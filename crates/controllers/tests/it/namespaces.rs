//! The namespace controller (`namespace`): every namespace but reserved and skipped ones is in
//! every member, through one Work per (namespace, cluster).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use karmada_api::names;
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;

use crate::harness::{Plane, eventually, namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_reach_every_member_unless_skipped() {
    let mut plane = Plane::start(2).await;
    plane.members_ready().await;
    plane.run("cluster,namespace,execution", false);
    plane.apply(namespace("team-a")).await;
    plane
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-skip",
            "labels": {"namespace.karmada.io/skip-auto-propagation": "true"}}}))
        .await;
    for m in ["member1", "member2"] {
        let member: Api<Namespace> = Api::all(plane.member(m).clone());
        eventually("team-a in every member", Duration::from_secs(20), || async {
            member.get_opt("team-a").await.ok().flatten().map(|_| ())
        })
        .await;
    }
    let works: Api<Work> =
        Api::namespaced(plane.client.clone(), &names::execution_namespace("member1"));
    let listed: Vec<String> = works
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert!(listed.contains(&names::work_name("Namespace", "team-a", "")), "{listed:?}");
    for skipped in ["team-skip", "default", "kube-system", "karmada-system"] {
        assert!(
            !listed.contains(&names::work_name("Namespace", skipped, "")),
            "{skipped}: {listed:?}"
        );
    }
    // Deleting it removes it from the members too.
    Api::<Namespace>::all(plane.client.clone())
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    let member: Api<Namespace> = Api::all(plane.member("member1").clone());
    eventually("team-a gone from member1", Duration::from_secs(30), || async {
        let ns = member.get_opt("team-a").await.ok()?;
        let gone = ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some());
        gone.then_some(())
    })
    .await;
}
