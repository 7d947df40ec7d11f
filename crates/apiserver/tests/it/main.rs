//! In-process tests of the API server with real kube-rs clients: raw wire checks (discovery
//! negotiation, Tables, pagination, watch framing, 410 as an ERROR event), the kube-runtime
//! watcher/reflector, and a Controller with a finalizer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz;
mod hardening;
mod protobuf;
mod runtime;
mod tokens;
mod wire;

use std::sync::Arc;

use apiserver::{Config, Server};
use http_body_util::BodyExt;
use serde_json::Value;
use store::Store;

pub struct Harness {
    pub server: Server,
    pub store: Arc<dyn Store>,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

/// Starts a server with a changed configuration.
pub async fn start_with(change: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(store_memory::MemoryStore::default());
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap(), Arc::clone(&store));
    config.bookmark_interval = std::time::Duration::from_secs(1);
    change(&mut config);
    let server = apiserver::start(config).await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    Harness { server, store, client, dir }
}

/// A raw response: status, content type, body.
pub struct Raw {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Harness {
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        accept: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> Raw {
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(a) = accept {
            request = request.header(http::header::ACCEPT, a);
        }
        if let Some(c) = content_type {
            request = request.header(http::header::CONTENT_TYPE, c);
        }
        let request = request.body(kube::client::Body::from(body.as_bytes().to_vec())).unwrap();
        let response = self.client.send(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Raw { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Raw {
        self.raw("GET", path, None, None, "").await
    }

    pub async fn post(&self, path: &str, body: &str) -> Raw {
        self.raw("POST", path, None, Some("application/json"), body).await
    }

    /// Installs the Widget CRD (namespaced, status and scale subresources, printer columns).
    pub async fn install_widgets(&self) {
        let crd = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"], "categories": ["all"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "color": {"type": "string"}, "replicas": {"type": "integer"}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
        });
        let r = self
            .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd.to_string())
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    pub async fn create_widget(&self, name: &str, size: i64, labels: Value) -> Value {
        let body = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "labels": labels}, "spec": {"size": size}});
        let r =
            self.post("/apis/example.com/v1/namespaces/default/widgets", &body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    }
}

/// Services get addresses as from kube-apiserver: a cluster IP, a node port for each port of a
/// NodePort Service; a requested node port must be free and in range; deleting a Service frees
/// its node port.
#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, DeleteParams, PostParams};
    let h = start().await;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let service = |name: &str, node_port: Option<i32>| -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name},
                "ports": [{"name": "a", "port": 80, "nodePort": node_port}, {"name": "b", "port": 81}]}}))
        .unwrap()
    };
    let created = services.create(&PostParams::default(), &service("a", None)).await.unwrap();
    let spec = created.spec.unwrap();
    assert!(spec.cluster_ip.as_deref().is_some_and(|ip| ip.starts_with("10.")), "{spec:?}");
    let ports: Vec<i32> = spec.ports.unwrap().iter().filter_map(|p| p.node_port).collect();
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    assert!(ports.iter().all(|p| (30000..=32767).contains(p)), "{ports:?}");
    // Taken, and out of range: 422 naming the field.
    let taken = services.create(&PostParams::default(), &service("b", Some(ports[0]))).await;
    let kube::Error::Api(status) = taken.unwrap_err() else { panic!("not an API error") };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.ports[0].nodePort")
            && status.message.contains("already allocated"),
        "{}",
        status.message
    );
    let outside = services.create(&PostParams::default(), &service("b", Some(80))).await;
    let kube::Error::Api(status) = outside.unwrap_err() else { panic!("not an API error") };
    assert!(status.code == 422 && status.message.contains("valid range"), "{}", status.message);
    // An update that leaves the node ports out keeps them.
    let mut changed = service("a", None);
    changed.metadata.resource_version = created.metadata.resource_version;
    let updated = services.replace("a", &PostParams::default(), &changed).await.unwrap();
    let kept: Vec<i32> =
        updated.spec.unwrap().ports.unwrap().iter().filter_map(|p| p.node_port).collect();
    assert_eq!(kept, ports);
    // Deleted: its port is free again (once the store has said so).
    services.delete("a", &DeleteParams::default()).await.unwrap();
    let mut reused = None;
    for _ in 0..50 {
        if let Ok(s) = services.create(&PostParams::default(), &service("b", Some(ports[0]))).await
        {
            reused = s.spec.and_then(|s| s.ports).and_then(|p| p[0].node_port);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reused, Some(ports[0]));
}
