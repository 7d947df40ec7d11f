//! The resource interpreter's customizations (ResourceInterpreterCustomization) driving the
//! controllers for a kind Karmada knows nothing else about: replicas divided and revised,
//! member status reflected, health judged, status aggregated, dependencies followed; and a
//! broken script reported without holding anything else up.

use std::time::Duration;

use karmada_api::work::ResourceBinding;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::harness::{Plane, apply_to, eventually, namespace, web};

fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "replicateds.apps.example.io"},
        "spec": {"group": "apps.example.io", "scope": "Namespaced",
            "names": {"plural": "replicateds", "singular": "replicated", "kind": "Replicated", "listKind": "ReplicatedList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

fn replicated_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.example.io", "v1", "Replicated"),
        "replicateds",
    )
}

const RULES: &str = r#"{
  "replicaResource": {"luaScript": "local kube = require('kube')\nfunction GetReplicas(obj)\n  return obj.spec.size, kube.accuratePodRequirements(obj.spec.template)\nend"},
  "replicaRevision": {"luaScript": "function ReviseReplica(obj, n)\n  obj.spec.size = n\n  return obj\nend"},
  "statusReflection": {"luaScript": "function ReflectStatus(obj)\n  if obj.status == nil then return {} end\n  return {ready = obj.status.ready, size = obj.spec.size}\nend"},
  "healthInterpretation": {"luaScript": "function InterpretHealth(obj)\n  return obj.status ~= nil and obj.status.ready == obj.spec.size\nend"},
  "statusAggregation": {"luaScript": "function AggregateStatus(obj, items)\n  local ready = 0\n  for i = 1, #items do\n    if items[i].status ~= nil and items[i].status.ready ~= nil then ready = ready + items[i].status.ready end\n  end\n  obj.status = {ready = ready, clusters = #items}\n  return obj\nend"},
  "dependencyInterpretation": {"luaScript": "function GetDependencies(obj)\n  return {{apiVersion = 'v1', kind = 'ConfigMap', namespace = obj.metadata.namespace, name = obj.spec.settings}}\nend"}
}"#;

fn customization(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
        "metadata": {"name": name},
        "spec": {"target": {"apiVersion": "apps.example.io/v1", "kind": "Replicated"}, "customizations": rules}})
}

fn replicated_policy() -> Value {
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "shop", "namespace": "demo"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps.example.io/v1", "kind": "Replicated"}],
            "propagateDeps": true,
            "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2"]},
                "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": [
                        {"targetCluster": {"clusterNames": ["member1"]}, "weight": 1},
                        {"targetCluster": {"clusterNames": ["member2"]}, "weight": 1}]}}}}})
}

fn shop() -> Value {
    json!({"apiVersion": "apps.example.io/v1", "kind": "Replicated",
        "metadata": {"name": "shop", "namespace": "demo"},
        "spec": {"size": 4, "settings": "shop-settings",
            "template": {"spec": {"containers": [{"name": "c", "image": "shop", "resources": {"requests": {"cpu": "100m"}}}]}}}})
}

async fn install_kind(plane: &Plane) {
    apply_to(&plane.client, crd()).await;
    for (_, member) in &plane.members {
        apply_to(member, crd()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customized_kind_is_divided_reflected_and_aggregated() {
    let mut plane = Plane::start(2).await;
    install_kind(&plane).await;
    plane.apply(customization("replicated", serde_json::from_str(RULES).unwrap())).await;
    plane.run("*", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shop-settings", "namespace": "demo"}, "data": {"k": "v"}}))
        .await;
    plane.apply(replicated_policy()).await;
    plane.apply(shop()).await;

    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let rb = eventually(
        "the binding with the interpreted replicas",
        Duration::from_secs(30),
        || async {
            let rb = bindings.get_opt("shop-replicated").await.ok().flatten()?;
            (rb.spec.clusters.len() == 2).then_some(rb)
        },
    )
    .await;
    assert_eq!(rb.spec.replicas, 4);
    assert_eq!(
        serde_json::to_value(&rb.spec.replica_requirements).unwrap(),
        json!({"resourceRequest": {"cpu": "100m"}, "namespace": "demo"})
    );
    // Each member gets its share (ReviseReplica), and the dependency along.
    let ar = replicated_resource();
    for (m, member) in &plane.members {
        let objects: Api<DynamicObject> = Api::namespaced_with(member.clone(), "demo", &ar);
        let copy = eventually("the member's copy", Duration::from_secs(30), || async {
            objects.get_opt("shop").await.ok().flatten()
        })
        .await;
        assert_eq!(copy.data["spec"]["size"], 2, "{}", m.name);
        let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(member.clone(), "demo");
        eventually("the dependency on the member", Duration::from_secs(30), || async {
            configmaps.get_opt("shop-settings").await.ok().flatten()
        })
        .await;
    }
    // The members' operators report: one ready, one not yet.
    for ((_, member), ready) in plane.members.iter().zip([2, 1]) {
        let objects: Api<DynamicObject> = Api::namespaced_with(member.clone(), "demo", &ar);
        objects
            .patch_status(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"ready": ready}})),
            )
            .await
            .unwrap();
    }
    let rb = eventually("health and status reflected", Duration::from_secs(30), || async {
        let rb = bindings.get("shop-replicated").await.ok()?;
        let items = &rb.status.as_ref()?.aggregated_status;
        let health: Vec<&str> = items.iter().map(|i| i.health.as_str()).collect();
        (health == ["Healthy", "Unhealthy"]).then_some(rb)
    })
    .await;
    let reflected: Vec<Value> =
        rb.status.unwrap().aggregated_status.into_iter().map(|i| i.status.unwrap()).collect();
    assert_eq!(reflected, [json!({"ready": 2, "size": 2}), json!({"ready": 1, "size": 2})]);
    let templates: Api<DynamicObject> = Api::namespaced_with(plane.client.clone(), "demo", &ar);
    eventually("the template's aggregated status", Duration::from_secs(30), || async {
        let t = templates.get("shop").await.ok()?;
        (t.data["status"] == json!({"ready": 3, "clusters": 2})).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_script_is_reported_and_holds_nothing_else_up() {
    let mut plane = Plane::start(1).await;
    install_kind(&plane).await;
    let broken = json!({"replicaResource": {"luaScript":
        "function GetReplicas(obj)\n  return obj.spec.missing.size\nend"}});
    plane.apply(customization("replicated", broken)).await;
    plane.run("*", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    let mut policy = replicated_policy();
    policy["spec"]["resourceSelectors"] = json!([{"apiVersion": "apps.example.io/v1", "kind": "Replicated"}, {"apiVersion": "apps/v1", "kind": "Deployment"}]);
    policy["spec"]["placement"] = json!({"clusterAffinity": {"clusterNames": ["member1"]}});
    plane.apply(policy).await;
    plane.apply(shop()).await;
    plane.apply(web("demo", 1)).await;

    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(plane.client.clone(), "demo");
    let event = eventually(
        "a GetReplicasFailed Event on the template",
        Duration::from_secs(30),
        || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items.into_iter().find(|e| e.reason.as_deref() == Some("GetReplicasFailed"))
        },
    )
    .await;
    let message = event.message.unwrap_or_default();
    assert!(
        message.contains("replicaResource of ResourceInterpreterCustomization replicated")
            && message.contains("attempt to index"),
        "{message}"
    );
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.involved_object.name.as_deref(), Some("shop"));
    // The Deployment is propagated regardless.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(plane.member("member1").clone(), "demo");
    eventually("the Deployment on the member", Duration::from_secs(30), || async {
        deployments.get_opt("web").await.ok().flatten()
    })
    .await;
    // Mending the customization brings the workload through.
    let fixed = json!({"replicaResource": {"luaScript": "function GetReplicas(obj)\n  return obj.spec.size\nend"}});
    plane.apply(customization("replicated", fixed)).await;
    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let rb =
        eventually("the binding once the script is mended", Duration::from_secs(30), || async {
            bindings.get_opt("shop-replicated").await.ok().flatten()
        })
        .await;
    assert_eq!(rb.spec.replicas, 4);
}
