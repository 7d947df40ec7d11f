//! `metrics.k8s.io/v1beta1` for simulated members, as metrics-server serves it: PodMetrics for
//! every running pod (each container using what it requests — 1m CPU and 4Mi memory when it
//! requests nothing) and NodeMetrics for every node (its pods' usage plus the node's own
//! overhead), computed on each read from the stored pods and nodes, so `kubectl top` works on a
//! member and through the cluster proxy.

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::ApiError;
use apimachinery::quantity::{self, Resources};
use apiserver::registry::ResourceDef;
use apiserver::storage::Storage;
use serde_json::{Value, json};

/// The collection window reported (metrics-server's default resolution).
const WINDOW: &str = "30s";

/// A container that requests nothing still uses a little.
const IDLE_CPU_MILLI: i128 = 1;
const IDLE_MEMORY_MILLI: i128 = 4 * 1024 * 1024 * 1000;

/// What a node uses itself (kubelet, runtime, system daemons).
const NODE_CPU_MILLI: i128 = 50;
const NODE_MEMORY_MILLI: i128 = 256 * 1024 * 1024 * 1000;

/// The two metrics kinds and what computes them (with the member's CPU load).
pub fn kinds(faults: &MemberFaults) -> Vec<(ResourceDef, Arc<dyn apiserver::Computed>)> {
    vec![
        (
            ResourceDef::metrics("PodMetrics", "pods", true),
            Arc::new(PodMetrics(Arc::clone(faults))) as Arc<dyn apiserver::Computed>,
        ),
        (
            ResourceDef::metrics("NodeMetrics", "nodes", false),
            Arc::new(NodeMetrics(Arc::clone(faults))),
        ),
    ]
}

/// The pod annotation that sets its containers' CPU load (a factor of what they request),
/// over the member's (`karmada fault NAME --load`).
pub const LOAD_ANNOTATION: &str = "simulation.karmada-rs.io/load";

/// The CPU load of a pod's containers: its annotation's, else the member's, else none (idle:
/// the containers use their idle minimum, as real ones nothing sends work to).
pub fn load_of(pod: &Value, member: Option<f64>) -> f64 {
    pod.pointer(&format!("/metadata/annotations/{}", LOAD_ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .or(member)
        .filter(|l| l.is_finite() && *l >= 0.0)
        .unwrap_or(0.0)
}

/// A running container's usage: its requests (idle minimums when it requests nothing), its CPU
/// scaled by `load`.
pub fn container_usage(container: &Value, load: f64) -> Resources {
    let requests = quantity::parse_list(container.pointer("/resources/requests"));
    let mut usage = Resources::new();
    let cpu = requests.get("cpu").copied().unwrap_or(IDLE_CPU_MILLI).max(IDLE_CPU_MILLI);
    usage.insert("cpu".into(), ((cpu as f64 * load).round() as i128).max(IDLE_CPU_MILLI));
    usage.insert(
        "memory".into(),
        requests.get("memory").copied().unwrap_or(IDLE_MEMORY_MILLI).max(IDLE_MEMORY_MILLI),
    );
    usage
}

/// A pod's usage as the metrics API reports it (`None` for a pod that is not running, which
/// the API does not report); `load`: the member's CPU load, if set.
pub fn pod_usage(pod: &Value, load: Option<f64>) -> Option<Resources> {
    if !running(pod) {
        return None;
    }
    let load = load_of(pod, load);
    let mut total = Resources::new();
    for c in containers(pod) {
        quantity::add(&mut total, &container_usage(&c, load));
    }
    Some(total)
}

fn running(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
}

fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Usage as metrics-server prints it: CPU in nanocores... rounded to what kubectl shows (`n`
/// suffix for CPU, `Ki` for memory).
fn render(usage: &Resources) -> Value {
    let cpu = usage.get("cpu").copied().unwrap_or(0);
    let memory = usage.get("memory").copied().unwrap_or(0) / 1000;
    json!({"cpu": format!("{}n", cpu * 1_000_000), "memory": format!("{}Ki", (memory + 1023) / 1024)})
}

/// One running pod's PodMetrics (`load`: the member's CPU load, if set).
pub fn pod_metrics(pod: &Value, now: &str, load: Option<f64>) -> Value {
    let load = load_of(pod, load);
    let containers: Vec<Value> = containers(pod)
        .iter()
        .map(|c| json!({"name": c.get("name"), "usage": render(&container_usage(c, load))}))
        .collect();
    let labels = pod.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    json!({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": apimachinery::object::name(pod), "namespace": apimachinery::object::namespace(pod),
            "labels": labels, "creationTimestamp": now},
        "timestamp": now, "window": WINDOW, "containers": containers})
}

/// Every node's NodeMetrics: its running pods' usage plus its own.
pub fn node_metrics(nodes: &[Value], pods: &[Value], now: &str, load: Option<f64>) -> Vec<Value> {
    let mut by_node: BTreeMap<&str, Resources> = BTreeMap::new();
    for pod in pods.iter().filter(|p| running(p)) {
        let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) else { continue };
        let used = by_node.entry(node).or_default();
        let pod_load = load_of(pod, load);
        for c in containers(pod) {
            quantity::add(used, &container_usage(&c, pod_load));
        }
    }
    nodes
        .iter()
        .map(|node| {
            let name = apimachinery::object::name(node);
            let mut usage: Resources =
                [("cpu".to_owned(), NODE_CPU_MILLI), ("memory".to_owned(), NODE_MEMORY_MILLI)]
                    .into_iter()
                    .collect();
            if let Some(pods) = by_node.get(name) {
                quantity::add(&mut usage, pods);
            }
            let labels = node.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
            json!({"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": name, "labels": labels, "creationTimestamp": now},
                "timestamp": now, "window": WINDOW, "usage": render(&usage)})
        })
        .collect()
}

/// Every stored object of a built-in kind (in `namespace`).
async fn stored(
    storage: &Arc<Storage>,
    plural: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let def = storage
        .registry()
        .storage_def("", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    storage.list_values(&def, namespace).await
}

/// The member's faults, for its CPU load.
type MemberFaults = Arc<parking_lot::RwLock<crate::Faults>>;

struct PodMetrics(MemberFaults);

#[async_trait::async_trait]
impl apiserver::Computed for PodMetrics {
    async fn list(
        &self,
        storage: &Arc<Storage>,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let now = apiserver::api::now_rfc3339();
        let load = self.0.read().load;
        let pods = stored(storage, "pods", namespace).await?;
        Ok(pods.iter().filter(|p| running(p)).map(|p| pod_metrics(p, &now, load)).collect())
    }

    /// As metrics-server says it: the pod is not found.
    fn not_found(&self, _: &ResourceDef, name: &str) -> ApiError {
        ApiError::not_found("pods", "", name)
    }
}

struct NodeMetrics(MemberFaults);

#[async_trait::async_trait]
impl apiserver::Computed for NodeMetrics {
    async fn list(&self, storage: &Arc<Storage>, _: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let now = apiserver::api::now_rfc3339();
        let load = self.0.read().load;
        let nodes = stored(storage, "nodes", None).await?;
        let pods = stored(storage, "pods", None).await?;
        Ok(node_metrics(&nodes, &pods, &now, load))
    }

    fn not_found(&self, _: &ResourceDef, name: &str) -> ApiError {
        ApiError::not_found("nodes", "", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_requests_times_load_on_their_nodes() {
        let pod = |name: &str, node: &str, phase: &str, requests: Value| {
            json!({"metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": requests}}]},
                "status": {"phase": phase}})
        };
        let web = pod("web-1", "node-1", "Running", json!({"cpu": "250m", "memory": "64Mi"}));
        let metrics = pod_metrics(&web, "2026-01-01T00:00:00Z", Some(1.0));
        assert_eq!(
            metrics["containers"],
            json!([{"name": "c", "usage": {"cpu": "250000000n", "memory": "65536Ki"}}])
        );
        // Without a load a pod idles: 1m CPU, its memory as requested.
        let idle = pod_metrics(&web, "2026-01-01T00:00:00Z", None);
        assert_eq!(idle["containers"][0]["usage"], json!({"cpu": "1000000n", "memory": "65536Ki"}));
        assert_eq!(metrics["metadata"]["labels"], json!({"app": "web"}), "selectable by labels");
        let idle = pod("idle", "node-1", "Running", json!({}));
        let pending = pod("later", "node-1", "Pending", json!({"cpu": "4"}));
        let nodes =
            [json!({"metadata": {"name": "node-1"}}), json!({"metadata": {"name": "node-2"}})];
        let all =
            node_metrics(&nodes, &[web.clone(), idle, pending], "2026-01-01T00:00:00Z", Some(1.0));
        // node-1: 50m + 250m + 1m; 256Mi + 64Mi + 4Mi. node-2: the node's own.
        assert_eq!(all[0]["usage"], json!({"cpu": "301000000n", "memory": "331776Ki"}));
        assert_eq!(all[1]["usage"], json!({"cpu": "50000000n", "memory": "262144Ki"}));
        // Load: the member's factor, or the pod's own annotation over it (CPU only).
        let loaded = pod_metrics(&web, "2026-01-01T00:00:00Z", Some(1.8));
        assert_eq!(loaded["containers"][0]["usage"]["cpu"], "450000000n");
        assert_eq!(loaded["containers"][0]["usage"]["memory"], "65536Ki");
        let mut calm = web;
        calm["metadata"]["annotations"] = json!({LOAD_ANNOTATION: "0.2"});
        let calmed = pod_metrics(&calm, "2026-01-01T00:00:00Z", Some(1.8));
        assert_eq!(calmed["containers"][0]["usage"]["cpu"], "50000000n");
    }
}
