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

/// An interpreter webhook for `Replicated` served by this test over HTTPS (with its own CA):
/// replicas and revision, status, health and aggregation, as an operator's webhook would.
async fn serve_webhook(dir: &std::path::Path) -> (String, String) {
    use http_body_util::BodyExt;
    let ca = apiserver::pki::Authority::load_or_create(dir, "webhook-ca").unwrap();
    let serving = ca.serving(&["127.0.0.1".to_owned()]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(&serving).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/interpret", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        if req.uri().path() != "/interpret" {
                            let mut missing = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from("404 page not found"),
                            ));
                            *missing.status_mut() = hyper::StatusCode::NOT_FOUND;
                            return Ok(missing);
                        }
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let context: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let answer = json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterContext",
                        "response": interpret(&context["request"])});
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(answer.to_string())),
                        ))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(io, service)
                .await;
            });
        }
    });
    (url, ca.cert_pem().to_owned())
}

/// The webhook's answers.
fn interpret(request: &Value) -> Value {
    use base64::Engine as _;
    let object = &request["object"];
    let patch =
        |ops: Value| base64::engine::general_purpose::STANDARD.encode(ops.to_string().as_bytes());
    let mut response = json!({"uid": request["uid"], "successful": true});
    match request["operation"].as_str().unwrap_or_default() {
        "InterpretReplica" => {
            response["replicas"] = object["spec"]["size"].clone();
            response["replicaRequirements"] = json!({"resourceRequest": {"cpu": "250m"}});
        }
        "ReviseReplica" => {
            response["patch"] = json!(patch(
                json!([{"op": "replace", "path": "/spec/size", "value": request["replicas"]}])
            ));
            response["patchType"] = json!("JSONPatch");
        }
        "InterpretStatus" => response["rawStatus"] = json!({"ready": object["status"]["ready"]}),
        "InterpretHealth" => {
            response["healthy"] = json!(object["status"]["ready"] == object["spec"]["size"]);
        }
        "AggregateStatus" => {
            let ready: i64 = request["aggregatedStatus"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["status"]["ready"].as_i64())
                .sum();
            response["patch"] =
                json!(patch(json!([{"op": "add", "path": "/status", "value": {"ready": ready}}])));
            response["patchType"] = json!("JSONPatch");
        }
        _ => {}
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_interprets_a_kind() {
    let mut plane = Plane::start(2).await;
    install_kind(&plane).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, ca) = serve_webhook(dir.path()).await;
    use base64::Engine as _;
    plane.apply(json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterWebhookConfiguration",
        "metadata": {"name": "examples"},
        "webhooks": [{"name": "replicated.example.io", "interpreterContextVersions": ["v1alpha1"], "timeoutSeconds": 3,
            "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
            "rules": [{"operations": ["InterpretReplica", "ReviseReplica", "InterpretStatus", "InterpretHealth", "AggregateStatus"],
                "apiGroups": ["apps.example.io"], "apiVersions": ["v1"], "kinds": ["Replicated"]}]}]}))
        .await;
    plane.run("*", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    let mut policy = replicated_policy();
    policy["spec"]["propagateDeps"] = json!(false);
    plane.apply(policy).await;
    plane.apply(shop()).await;

    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let rb =
        eventually("the binding with the webhook's replicas", Duration::from_secs(30), || async {
            let rb = bindings.get_opt("shop-replicated").await.ok().flatten()?;
            (rb.spec.clusters.len() == 2).then_some(rb)
        })
        .await;
    assert_eq!(rb.spec.replicas, 4);
    assert_eq!(
        serde_json::to_value(&rb.spec.replica_requirements).unwrap(),
        json!({"resourceRequest": {"cpu": "250m"}, "namespace": "demo"})
    );
    let ar = replicated_resource();
    for ((_, member), ready) in plane.members.iter().zip([2, 1]) {
        let objects: Api<DynamicObject> = Api::namespaced_with(member.clone(), "demo", &ar);
        let copy = eventually("the member's copy", Duration::from_secs(30), || async {
            objects.get_opt("shop").await.ok().flatten()
        })
        .await;
        assert_eq!(copy.data["spec"]["size"], 2, "revised by the webhook's patch");
        objects
            .patch_status(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"ready": ready}})),
            )
            .await
            .unwrap();
    }
    eventually("health and status from the webhook", Duration::from_secs(30), || async {
        let rb = bindings.get("shop-replicated").await.ok()?;
        let items = &rb.status.as_ref()?.aggregated_status;
        let seen: Vec<(&str, Option<&Value>)> =
            items.iter().map(|i| (i.health.as_str(), i.status.as_ref())).collect();
        (seen
            == [("Healthy", Some(&json!({"ready": 2}))), ("Unhealthy", Some(&json!({"ready": 1})))])
        .then_some(())
    })
    .await;
    let templates: Api<DynamicObject> = Api::namespaced_with(plane.client.clone(), "demo", &ar);
    eventually("the template's status from the webhook", Duration::from_secs(30), || async {
        let t = templates.get("shop").await.ok()?;
        (t.data["status"] == json!({"ready": 3})).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customized_health_drives_application_failover() {
    let mut plane = Plane::start(2).await;
    install_kind(&plane).await;
    let rules = json!({
        "replicaResource": {"luaScript": "function GetReplicas(obj)\n  return obj.spec.size, nil\nend"},
        "healthInterpretation": {"luaScript": "function InterpretHealth(obj)\n  return obj.status ~= nil and obj.status.ready == obj.spec.size\nend"}});
    plane.apply(customization("replicated", rules)).await;
    plane.run("*", false);
    plane.run_scheduler();
    plane.apply(namespace("demo")).await;
    plane.apply(json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "shop", "namespace": "demo"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps.example.io/v1", "kind": "Replicated"}],
            "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2"]},
                "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}]},
            "failover": {"application": {"decisionConditions": {"tolerationSeconds": 1}, "purgeMode": "Directly"}}}}))
        .await;
    let mut shop = shop();
    shop["spec"].as_object_mut().unwrap().remove("settings");
    plane.apply(shop).await;

    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "demo");
    let first = eventually("scheduled on one cluster", Duration::from_secs(30), || async {
        let rb = bindings.get_opt("shop-replicated").await.ok().flatten()?;
        (rb.spec.clusters.len() == 1).then(|| rb.spec.clusters[0].name.clone())
    })
    .await;
    // Its operator there never gets it ready: the customization says Unhealthy (without it the
    // kind has no health rule and counts as healthy).
    let member = plane.member(&first).clone();
    let objects: Api<DynamicObject> = Api::namespaced_with(member, "demo", &replicated_resource());
    eventually("the copy on the first cluster", Duration::from_secs(30), || async {
        objects.get_opt("shop").await.ok().flatten()
    })
    .await;
    objects
        .patch_status(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": 0}})),
        )
        .await
        .unwrap();
    let moved = eventually("moved to the other cluster", Duration::from_secs(40), || async {
        let rb = bindings.get("shop-replicated").await.ok()?;
        let now = rb.spec.clusters.first()?.name.clone();
        (now != first).then_some(now)
    })
    .await;
    assert_ne!(moved, first);
}

fn flink_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "flinkdeployments.flink.apache.org"},
        "spec": {"group": "flink.apache.org", "scope": "Namespaced",
            "names": {"plural": "flinkdeployments", "singular": "flinkdeployment", "kind": "FlinkDeployment", "listKind": "FlinkDeploymentList"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_multi_template_kind_is_placed_whole_with_its_components() {
    // No customization is created: FlinkDeployment is interpreted by the bundled one.
    let mut plane = Plane::start(2).await;
    apply_to(&plane.client, flink_crd()).await;
    for (_, member) in &plane.members {
        apply_to(member, flink_crd()).await;
    }
    plane.run("*", false);
    plane.run_scheduler();
    plane.apply(namespace("stream")).await;
    plane.apply(json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "jobs", "namespace": "stream"},
        "spec": {"resourceSelectors": [{"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment"}],
            "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2"]},
                "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}],
                "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}}}))
        .await;
    plane
        .apply(json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": "clicks", "namespace": "stream"},
        "spec": {"flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "job": {"parallelism": 4, "jarURI": "local:///opt/flink/clicks.jar"},
            "jobManager": {"resource": {"cpu": 0.5, "memory": "1024m"}},
            "taskManager": {"resource": {"cpu": 1, "memory": "2Gi"}}}}))
        .await;

    let bindings: Api<ResourceBinding> = Api::namespaced(plane.client.clone(), "stream");
    let rb = eventually("scheduled whole on one cluster", Duration::from_secs(30), || async {
        let rb = bindings.get_opt("clicks-flinkdeployment").await.ok().flatten()?;
        (rb.spec.clusters.len() == 1).then_some(rb)
    })
    .await;
    assert_eq!(
        serde_json::to_value(&rb.spec.components).unwrap(),
        json!([{"name": "jobmanager", "replicas": 1, "replicaRequirements": {"resourceRequest": {"cpu": "500m", "memory": "1024m"}}},
               {"name": "taskmanager", "replicas": 2, "replicaRequirements": {"resourceRequest": {"cpu": "1", "memory": "2Gi"}}}]),
        "task managers: parallelism 4 over 2 slots each"
    );
    assert_eq!((rb.spec.replicas, rb.spec.replica_requirements.is_none()), (0, true));
    let target = &rb.spec.clusters[0];
    let recorded: Vec<(&str, i32)> =
        target.components.iter().map(|c| (c.name.as_str(), c.replicas)).collect();
    assert_eq!(recorded, [("jobmanager", 1), ("taskmanager", 2)]);

    // The bundled health rule: the job running in its member is healthy, and its status
    // reaches the template.
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
        "flinkdeployments",
    );
    let member = plane.member(&target.name).clone();
    let copies: Api<DynamicObject> = Api::namespaced_with(member, "stream", &ar);
    eventually("the copy in its member", Duration::from_secs(30), || async {
        copies.get_opt("clicks").await.ok().flatten()
    })
    .await;
    copies
        .patch_status(
            "clicks",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"jobStatus": {"state": "RUNNING"}, "lifecycleState": "STABLE"}}),
            ),
        )
        .await
        .unwrap();
    eventually("healthy in its member", Duration::from_secs(30), || async {
        let rb = bindings.get("clicks-flinkdeployment").await.ok()?;
        let items = &rb.status.as_ref()?.aggregated_status;
        (items.len() == 1 && items[0].health == "Healthy").then_some(())
    })
    .await;
    let templates: Api<DynamicObject> = Api::namespaced_with(plane.client.clone(), "stream", &ar);
    eventually("the job's state on the template", Duration::from_secs(30), || async {
        let t = templates.get("clicks").await.ok()?;
        (t.data["status"]["jobStatus"]["state"] == "RUNNING"
            && t.data["status"]["lifecycleState"] == "STABLE")
            .then_some(())
    })
    .await;
}
