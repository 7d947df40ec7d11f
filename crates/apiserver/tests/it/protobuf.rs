//! What client-go does, done with a small protobuf client: built-in objects created, updated,
//! scaled and deleted with protobuf bodies, and read back, listed and watched in protobuf.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::{Harness, start};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const CLIENT_GO_ACCEPT: &str = "application/vnd.kubernetes.protobuf,application/json";

pub struct RawBytes {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl RawBytes {
    /// The answer as JSON, whichever encoding it came in.
    fn object(&self) -> Value {
        if self.content_type.starts_with(PROTOBUF) {
            kube_protobuf::decode(&self.body)
                .unwrap_or_else(|e| panic!("undecodable protobuf answer: {e}"))
                .object
        } else {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
            })
        }
    }
}

impl Harness {
    async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> RawBytes {
        let mut request =
            http::Request::builder().method(method).uri(path).header(http::header::ACCEPT, accept);
        if let Some(c) = content_type {
            request = request.header(http::header::CONTENT_TYPE, c);
        }
        let response =
            self.client.send(request.body(kube::client::Body::from(body)).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        RawBytes { status, content_type, body }
    }

    /// As client-go does: a protobuf body, protobuf preferred in the answer.
    async fn proto(&self, method: &str, path: &str, object: &Value) -> RawBytes {
        let body = kube_protobuf::encode(object).unwrap();
        self.send_bytes(method, path, CLIENT_GO_ACCEPT, Some(PROTOBUF), body).await
    }
}

/// The collection path of a sample object.
fn collection(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap();
    let plural = match kind {
        "Endpoints" => "endpoints".to_owned(),
        "Ingress" => "ingresses".to_owned(),
        "NetworkPolicy" => "networkpolicies".to_owned(),
        "PriorityClass" => "priorityclasses".to_owned(),
        "StorageClass" => "storageclasses".to_owned(),
        "IngressClass" => "ingressclasses".to_owned(),
        "CustomResourceDefinition" => "customresourcedefinitions".to_owned(),
        "PodDisruptionBudget" => "poddisruptionbudgets".to_owned(),
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    let root = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{root}/namespaces/{ns}/{plural}"),
        None => format!("{root}/{plural}"),
    }
}

/// An object as read back, without what the server sets differently each time.
fn comparable(mut object: Value) -> Value {
    let meta = object["metadata"].as_object_mut().unwrap();
    for volatile in
        ["name", "uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink"]
    {
        meta.remove(volatile);
    }
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        labels.remove("kubernetes.io/metadata.name");
    }
    object
}

fn samples() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/samples/builtins.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_kind_reads_the_same_through_protobuf() {
    let h = start().await;
    let samples = samples();
    let served: Vec<_> =
        h.server.api.registry().all().into_iter().filter(|d| d.protobuf && !d.custom).collect();
    // Every stored built-in kind has a sample (reviews are answered, not stored).
    for def in &served {
        if def.group.ends_with("authentication.k8s.io")
            || def.group.ends_with("authorization.k8s.io")
        {
            continue;
        }
        assert!(
            samples
                .iter()
                .any(|s| s["kind"] == def.kind.as_str()
                    && s["apiVersion"] == def.api_version().as_str()),
            "no sample for {} {}",
            def.api_version(),
            def.kind
        );
    }
    // Names are unique across samples: kinds served under two groups share one storage
    // (Events).
    for (i, sample) in samples.into_iter().enumerate() {
        let kind = sample["kind"].as_str().unwrap().to_owned();
        let path = collection(&sample);
        let mut by_json = sample.clone();
        by_json["metadata"]["name"] =
            json!(format!("{}-{i}-json", sample["metadata"]["name"].as_str().unwrap()));
        let mut by_proto = sample.clone();
        by_proto["metadata"]["name"] =
            json!(format!("{}-{i}-proto", sample["metadata"]["name"].as_str().unwrap()));
        if kind == "CustomResourceDefinition" {
            by_json["metadata"]["name"] = json!("gadgets.example.org");
            by_json["spec"]["names"] =
                json!({"plural": "gadgets", "singular": "gadget", "kind": "Gadget"});
            by_proto["metadata"]["name"] = json!("widgets.example.net");
            by_proto["spec"]["group"] = json!("example.net");
            by_proto["spec"]["names"] =
                json!({"plural": "widgets", "singular": "widget", "kind": "Widget"});
        }
        let created = h.post(&path, &by_json.to_string()).await;
        assert_eq!(created.status, 201, "{kind} by JSON: {}", created.body);
        let r = h.proto("POST", &path, &by_proto).await;
        assert_eq!(r.status, 201, "{kind} by protobuf: {}", String::from_utf8_lossy(&r.body));
        assert!(r.content_type.starts_with(PROTOBUF), "{kind}: answered {}", r.content_type);
        let name_j = by_json["metadata"]["name"].as_str().unwrap();
        let name_p = by_proto["metadata"]["name"].as_str().unwrap();
        if kind == "CustomResourceDefinition" {
            // A new CRD's status is written by the establishing controller, after the create:
            // read it once established, so that the reads below see the same object.
            for name in [name_j, name_p] {
                for _ in 0..100 {
                    let crd = h.get(&format!("{path}/{name}")).await.json();
                    let established = crd
                        .pointer("/status/conditions")
                        .and_then(|c| c.as_array())
                        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established"));
                    if established {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        let json_path = h.get(&format!("{path}/{name_j}")).await.json();
        let proto_path = h.get(&format!("{path}/{name_p}")).await.json();
        let (mut a, mut b) = (comparable(json_path), comparable(proto_path.clone()));
        if kind == "CustomResourceDefinition" {
            for v in [&mut a, &mut b] {
                v["spec"]["group"] = json!("g");
                v["spec"]["names"] = json!({});
                v["status"] = json!({});
            }
        }
        if kind == "Service" {
            // Each Service gets its own addresses.
            for v in [&mut a, &mut b] {
                v["spec"]["clusterIP"] = json!("allocated");
                v["spec"]["clusterIPs"] = json!(["allocated"]);
                for port in v["spec"]["ports"].as_array_mut().into_iter().flatten() {
                    assert!(port["nodePort"].is_u64(), "{kind}: a node port for {port}");
                    port["nodePort"] = json!(0);
                }
            }
        }
        assert_eq!(a, b, "{kind}: JSON path vs protobuf path");
        // Read back in protobuf: the same object.
        let got =
            h.send_bytes("GET", &format!("{path}/{name_p}"), CLIENT_GO_ACCEPT, None, vec![]).await;
        assert!(got.content_type.starts_with(PROTOBUF), "{kind}");
        assert_eq!(got.object(), proto_path, "{kind}: protobuf GET");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_go_lifecycle_in_protobuf() {
    let h = start().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
    // A watch started first sees everything that follows, as protobuf frames.
    let watch = h
        .client
        .send(
            http::Request::builder()
                .uri(format!(
                    "{path}?watch=true&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=20"
                ))
                .header(http::header::ACCEPT, CLIENT_GO_ACCEPT)
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        watch.headers()[http::header::CONTENT_TYPE],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let created = h.proto("POST", path, &deployment).await;
    assert_eq!(created.status, 201);
    let created = created.object();
    assert_eq!(created["spec"]["replicas"], 1);
    // Update with the resourceVersion read (a protobuf PUT).
    let mut update = created.clone();
    update["spec"]["replicas"] = json!(0);
    let r = h.proto("PUT", &format!("{path}/web"), &update).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.object()["spec"]["replicas"], 0, "a pointer's zero is kept");
    // A stale resourceVersion conflicts.
    let r = h.proto("PUT", &format!("{path}/web"), &update).await;
    assert_eq!(r.status, 409);
    // Status and scale subresources.
    let current =
        h.send_bytes("GET", &format!("{path}/web"), CLIENT_GO_ACCEPT, None, vec![]).await.object();
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": current["metadata"].clone(), "status": {"replicas": 3, "readyReplicas": 2}});
    let r = h.proto("PUT", &format!("{path}/web/status"), &status).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.object()["status"]["readyReplicas"], 2);
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 4}});
    let r = h.proto("PUT", &format!("{path}/web/scale"), &scale).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.content_type.starts_with(PROTOBUF));
    assert_eq!(r.object()["kind"], "Scale");
    assert_eq!(r.object()["spec"]["replicas"], 4);
    let r = h.send_bytes("GET", &format!("{path}/web/scale"), CLIENT_GO_ACCEPT, None, vec![]).await;
    assert_eq!(r.object()["status"]["replicas"], 3);
    // Lists page in protobuf.
    let mut second = deployment.clone();
    second["metadata"]["name"] = json!("api");
    assert_eq!(h.proto("POST", path, &second).await.status, 201);
    let page =
        h.send_bytes("GET", &format!("{path}?limit=1"), CLIENT_GO_ACCEPT, None, vec![]).await;
    assert!(page.content_type.starts_with(PROTOBUF));
    let page = page.object();
    assert_eq!(page["kind"], "DeploymentList");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let rest = h
        .send_bytes(
            "GET",
            &format!("{path}?limit=1&continue={token}"),
            CLIENT_GO_ACCEPT,
            None,
            vec![],
        )
        .await
        .object();
    assert_eq!(rest["items"][0]["metadata"]["name"], "web");
    assert!(rest["metadata"].get("continue").is_none());
    // Metadata-only lists in protobuf, as client-go's metadata informers ask.
    let meta = h
        .send_bytes("GET", path, "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json", None, vec![])
        .await;
    assert!(meta.content_type.starts_with(PROTOBUF));
    let meta = meta.object();
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert_eq!(meta["items"][0]["metadata"]["name"], "api");
    assert!(meta["items"][0].get("spec").is_none());
    // Delete with protobuf DeleteOptions: foreground leaves a finalizer while dependents go.
    let options =
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"});
    let r = h.proto("DELETE", &format!("{path}/api"), &options).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let options =
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": "not-it"}});
    let r = h.proto("DELETE", &format!("{path}/web"), &options).await;
    assert_eq!(r.status, 409, "a failed precondition");
    let r = h
        .proto(
            "DELETE",
            &format!("{path}/web"),
            &json!({"apiVersion": "v1", "kind": "DeleteOptions"}),
        )
        .await;
    assert_eq!(r.status, 200);
    // The watch saw it all, in order.
    let mut body = watch.into_body();
    let mut buffer = Vec::new();
    let mut seen: Vec<(String, Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|(t, o)| t == "DELETED" && o["metadata"]["name"] == "web") {
        let frame =
            tokio::time::timeout_at(deadline, body.frame()).await.expect("watch events in time");
        let Some(Ok(frame)) = frame else { panic!("watch ended early: {seen:?}") };
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
        }
        let (events, rest) = kube_protobuf::read_watch_frames(&buffer).unwrap();
        let rest = rest.to_vec();
        for (t, envelope) in events {
            seen.push((t, kube_protobuf::decode(&envelope).unwrap().object));
        }
        buffer = rest;
    }
    let types: Vec<&str> =
        seen.iter().filter(|(t, _)| t != "BOOKMARK").map(|(t, _)| t.as_str()).collect();
    assert_eq!(types[0], "ADDED");
    assert!(types.contains(&"MODIFIED"));
    assert!(seen.iter().all(|(_, o)| o["metadata"]["resourceVersion"].is_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protobuf_gets_a_status_naming_the_problem() {
    let h = start().await;
    let path = "/api/v1/namespaces/default/configmaps";
    let check = |r: &RawBytes, code: u16, text: &str| {
        let status: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, code, "{status}");
        assert_eq!(status["kind"], "Status");
        assert!(status["message"].as_str().unwrap().contains(text), "{status}");
    };
    let r = h
        .send_bytes("POST", path, CLIENT_GO_ACCEPT, Some(PROTOBUF), b"{\"kind\":1}".to_vec())
        .await;
    check(&r, 400, "expected prefix");
    let good = kube_protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    let r = h
        .send_bytes("POST", path, CLIENT_GO_ACCEPT, Some(PROTOBUF), good[..good.len() - 6].to_vec())
        .await;
    check(&r, 400, "protobuf body is not valid");
    // The wrong kind for the resource.
    let secret = kube_protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    )
    .unwrap();
    let r = h.send_bytes("POST", path, CLIENT_GO_ACCEPT, Some(PROTOBUF), secret).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // Over the size limit.
    let mut big = good.clone();
    big.resize(3 * 1024 * 1024 + 10, 0);
    let r = h.send_bytes("POST", path, CLIENT_GO_ACCEPT, Some(PROTOBUF), big).await;
    check(&r, 413, "larger than");
    // A field the message does not have: dropped, or refused under Strict.
    let mut raw = Vec::new();
    kube_protobuf::wire::put_bytes(&mut raw, 1, &{
        let mut m = Vec::new();
        kube_protobuf::wire::put_bytes(&mut m, 1, b"extra");
        m
    });
    kube_protobuf::wire::put_varint_field(&mut raw, 77, 1);
    let mut type_meta = Vec::new();
    kube_protobuf::wire::put_bytes(&mut type_meta, 1, b"v1");
    kube_protobuf::wire::put_bytes(&mut type_meta, 2, b"ConfigMap");
    let mut body = b"k8s\0".to_vec();
    kube_protobuf::wire::put_bytes(&mut body, 1, &type_meta);
    kube_protobuf::wire::put_bytes(&mut body, 2, &raw);
    let r = h
        .send_bytes(
            "POST",
            &format!("{path}?fieldValidation=Strict"),
            CLIENT_GO_ACCEPT,
            Some(PROTOBUF),
            body.clone(),
        )
        .await;
    check(
        &r,
        400,
        "strict decoding error: unknown field \"(field 77 of k8s.io.api.core.v1.ConfigMap)\"",
    );
    let r = h.send_bytes("POST", path, CLIENT_GO_ACCEPT, Some(PROTOBUF), body).await;
    assert_eq!(r.status, 201);
    // A 100,000-deep body is refused at once, and the server keeps serving.
    let mut inner = Vec::new();
    for _ in 0..100_000 {
        let mut outer = Vec::with_capacity(inner.len() + 8);
        kube_protobuf::wire::put_bytes(&mut outer, 28, &inner);
        inner = outer;
        if inner.len() > 2_500_000 {
            break;
        }
    }
    let mut v = Vec::new();
    kube_protobuf::wire::put_bytes(&mut v, 1, b"v1");
    kube_protobuf::wire::put_bytes(&mut v, 4, &{
        let mut x = Vec::new();
        kube_protobuf::wire::put_bytes(&mut x, 1, &inner);
        x
    });
    let mut spec = Vec::new();
    kube_protobuf::wire::put_bytes(&mut spec, 7, &v);
    let mut crd = Vec::new();
    kube_protobuf::wire::put_bytes(&mut crd, 2, &spec);
    let mut tm = Vec::new();
    kube_protobuf::wire::put_bytes(&mut tm, 1, b"apiextensions.k8s.io/v1");
    kube_protobuf::wire::put_bytes(&mut tm, 2, b"CustomResourceDefinition");
    let mut deep = b"k8s\0".to_vec();
    kube_protobuf::wire::put_bytes(&mut deep, 1, &tm);
    kube_protobuf::wire::put_bytes(&mut deep, 2, &crd);
    let r = h
        .send_bytes(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            CLIENT_GO_ACCEPT,
            Some(PROTOBUF),
            deep,
        )
        .await;
    check(&r, 400, "nested deeper than");
    assert_eq!(h.get("/api/v1/namespaces/default/configmaps").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_stay_json_for_protobuf_clients() {
    let h = start().await;
    h.install_widgets().await;
    h.create_widget("w1", 1, json!({})).await;
    let r = h
        .send_bytes(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets/w1",
            CLIENT_GO_ACCEPT,
            None,
            vec![],
        )
        .await;
    assert_eq!(r.content_type, "application/json");
    let r = h
        .send_bytes(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets/w1",
            PROTOBUF,
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, 406);
    // Their metadata is protobuf-able.
    let r = h
        .send_bytes(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets",
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            None,
            vec![],
        )
        .await;
    assert!(r.content_type.starts_with(PROTOBUF));
    assert_eq!(r.object()["items"][0]["metadata"]["name"], "w1");
}

/// Mutated protobuf bodies (bytes flipped, cut, inserted) never crash the server or produce a
/// 5xx, on any verb that takes a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_protobuf_bodies_get_status_errors() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let h = start().await;
    let seeds: Vec<Vec<u8>> = samples()
        .iter()
        .filter(|s| s["kind"] != "CustomResourceDefinition")
        .map(|s| kube_protobuf::encode(s).unwrap())
        .collect();
    let r = h
        .proto(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            &samples().into_iter().find(|s| s["kind"] == "Deployment").unwrap(),
        )
        .await;
    assert_eq!(r.status, 201);
    let targets = [
        ("POST", "/api/v1/namespaces/default/configmaps"),
        ("POST", "/apis/apps/v1/namespaces/default/deployments"),
        ("PUT", "/apis/apps/v1/namespaces/default/deployments/x"),
        ("PUT", "/apis/apps/v1/namespaces/default/deployments/x/status"),
        ("PUT", "/apis/apps/v1/namespaces/default/deployments/x/scale"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/nope"),
        ("POST", "/api/v1/namespaces/default/pods/x/eviction"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ];
    let mutation = (
        0..seeds.len(),
        0..targets.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    );
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    for _ in 0..300 {
        let (seed, target, edits) = mutation.new_tree(&mut runner).unwrap().current();
        let mut body = seeds[seed].clone();
        for (at, byte, op) in edits {
            if body.is_empty() {
                break;
            }
            let i = at % body.len();
            match op {
                0 => body[i] = byte,
                1 => body.truncate(i.max(4)),
                _ => body.insert(i, byte),
            }
        }
        let (method, path) = targets[target];
        let r = h.send_bytes(method, path, CLIENT_GO_ACCEPT, Some(PROTOBUF), body.clone()).await;
        assert!(
            r.status < 500,
            "{method} {path} with {body:?} -> {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if r.status >= 400 {
            let status: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(status["kind"], "Status");
        }
    }
    assert_eq!(h.get("/api/v1/namespaces/default/configmaps").await.status, 200);
}
