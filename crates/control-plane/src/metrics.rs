//! `metrics.k8s.io` on the control plane, as upstream's karmada-metrics-adapter serves it:
//! PodMetrics and NodeMetrics gathered from every Ready member's own metrics API (in
//! parallel, each within a few seconds; a member that does not answer is left out), each
//! object annotated with the cluster it came from (`resource.karmada.io/query-from-cluster`).
//! So `kubectl top pods -l app=web` on the control plane lists a workload's pods in every
//! cluster, and the FederatedHPA controller reads them there. Answers are kept for a few
//! seconds, so that many readers cost the members one query.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::ApiError;
use apiserver::registry::ResourceDef;
use apiserver::storage::Storage;
use karmada_api::cluster::Cluster;
use parking_lot::Mutex;
use serde_json::Value;

use crate::members::MemberClients;

/// The annotation naming the cluster a metric came from (upstream's).
pub const QUERY_SOURCE_ANNOTATION: &str = "resource.karmada.io/query-from-cluster";
/// How long one member may take to answer.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer is reused.
const FRESH: Duration = Duration::from_secs(5);

type Cached = (Instant, Vec<Value>);

/// What both metrics kinds share: member clients and recent answers.
#[derive(Default)]
pub struct Gatherer {
    clients: MemberClients,
    recent: Mutex<HashMap<String, Cached>>,
}

fn ready(cluster: &Cluster) -> bool {
    crate::search::plan::cacheable(cluster)
}

/// `objects` with the cluster each came from.
pub fn annotate(mut objects: Vec<Value>, cluster: &str) -> Vec<Value> {
    for object in &mut objects {
        if !object["metadata"].is_object() {
            object["metadata"] = serde_json::json!({});
        }
        if !object["metadata"]["annotations"].is_object() {
            object["metadata"]["annotations"] = serde_json::json!({});
        }
        object["metadata"]["annotations"][QUERY_SOURCE_ANNOTATION] = Value::from(cluster);
    }
    objects
}

impl Gatherer {
    /// Every member's answer to `path` (a metrics list), merged.
    async fn gather(&self, storage: &Arc<Storage>, path: &str) -> Result<Vec<Value>, ApiError> {
        if let Some((at, objects)) = self.recent.lock().get(path)
            && at.elapsed() < FRESH
        {
            return Ok(objects.clone());
        }
        let def = storage
            .registry()
            .storage_def("cluster.karmada.io", "clusters")
            .ok_or_else(|| ApiError::internal("clusters are not served"))?;
        let clusters: Vec<Cluster> = storage
            .list_values(&def, None)
            .await?
            .into_iter()
            .filter_map(|c| serde_json::from_value(c).ok())
            .filter(ready)
            .collect();
        let queries = clusters.iter().map(|cluster| async move {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let client = self.clients.get(storage, cluster).await.ok()?;
            let request = http::Request::get(path).body(Vec::new()).ok()?;
            let text = tokio::time::timeout(MEMBER_TIMEOUT, client.request_text(request))
                .await
                .ok()?
                .map_err(|e| tracing::debug!(cluster = %name, error = %e, "member metrics"))
                .ok()?;
            let list: Value = serde_json::from_str(&text).ok()?;
            Some(annotate(list["items"].as_array().cloned().unwrap_or_default(), &name))
        });
        let objects: Vec<Value> =
            futures::future::join_all(queries).await.into_iter().flatten().flatten().collect();
        self.clients
            .retain(|name| clusters.iter().any(|c| c.metadata.name.as_deref() == Some(name)));
        self.recent.lock().insert(path.to_owned(), (Instant::now(), objects.clone()));
        Ok(objects)
    }
}

struct PodMetrics(Arc<Gatherer>);

#[async_trait::async_trait]
impl apiserver::Computed for PodMetrics {
    async fn list(
        &self,
        storage: &Arc<Storage>,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let path = match namespace {
            Some(ns) => format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"),
            None => "/apis/metrics.k8s.io/v1beta1/pods".to_owned(),
        };
        self.0.gather(storage, &path).await
    }

    fn not_found(&self, _: &ResourceDef, name: &str) -> ApiError {
        ApiError::not_found("pods", "", name)
    }
}

struct NodeMetrics(Arc<Gatherer>);

#[async_trait::async_trait]
impl apiserver::Computed for NodeMetrics {
    async fn list(&self, storage: &Arc<Storage>, _: Option<&str>) -> Result<Vec<Value>, ApiError> {
        self.0.gather(storage, "/apis/metrics.k8s.io/v1beta1/nodes").await
    }

    fn not_found(&self, _: &ResourceDef, name: &str) -> ApiError {
        ApiError::not_found("nodes", "", name)
    }
}

/// The two kinds and what serves them.
pub fn kinds() -> Vec<(ResourceDef, Arc<dyn apiserver::Computed>)> {
    let gatherer = Arc::new(Gatherer::default());
    vec![
        (
            ResourceDef::metrics("PodMetrics", "pods", true),
            Arc::new(PodMetrics(Arc::clone(&gatherer))) as Arc<dyn apiserver::Computed>,
        ),
        (ResourceDef::metrics("NodeMetrics", "nodes", false), Arc::new(NodeMetrics(gatherer))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_names_its_cluster() {
        let objects = annotate(
            vec![serde_json::json!({"metadata": {"name": "web-1"}}), serde_json::json!({})],
            "member2",
        );
        for o in objects {
            assert_eq!(o["metadata"]["annotations"][QUERY_SOURCE_ANNOTATION], "member2");
        }
    }
}
