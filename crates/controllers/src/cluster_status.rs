//! The cluster-status controller: for every push-mode cluster, every
//! `cluster_status_update_frequency`, probe the member and write what it finds into
//! `Cluster.status` (only when something changed). A pull-mode cluster's agent does the same
//! from inside the member's network ([`observe_member`]); here we only watch its Lease and mark
//! the cluster Unknown when the agent falls silent.
//!
//! Memory stays bounded: pods are summarised page by page into request totals, never kept.

use std::collections::BTreeMap;

use apimachinery::quantity::{self, Resources};
use futures::future::join_all;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use karmada_api::cluster::{
    ApiEnablement, ApiResourceRef, Cluster, ClusterStatus, NodeSummary, ResourceSummary,
};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::Settings;
use crate::member_client;

/// What a probe of a member found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// Reachable, but its health endpoint did not say ok.
    NotReady(String),
    /// Not reachable at all.
    Unreachable(String),
}

/// The Ready condition for a probe result, keeping the transition time when unchanged.
pub fn ready_condition(
    health: &Health,
    previous: Option<&Condition>,
    now: &str,
    generation: i64,
) -> Condition {
    let (status, reason, message) = match health {
        Health::Ready => {
            ("True", "ClusterReady", "cluster is healthy and ready to accept workloads".to_owned())
        }
        Health::NotReady(detail) => (
            "False",
            "ClusterNotReady",
            format!("cluster is reachable but health endpoint responded without ok: {detail}"),
        ),
        Health::Unreachable(detail) => {
            ("False", "ClusterNotReachable", format!("cluster is not reachable: {detail}"))
        }
    };
    let since = previous
        .filter(|p| p.status == status && p.reason == reason)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or_else(|| Time(now.parse().unwrap_or_default()));
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
        observed_generation: Some(generation),
    }
}

async fn probe(client: &kube::Client) -> Health {
    let get = |path: &str| {
        let request = http::Request::get(path).body(Vec::new()).expect("static request");
        client.request_text(request)
    };
    match get("/readyz").await {
        Ok(body) if body.trim() == "ok" => Health::Ready,
        Ok(body) => Health::NotReady(body),
        Err(kube::Error::Api(status)) if status.code == 404 => match get("/healthz").await {
            Ok(body) if body.trim() == "ok" => Health::Ready,
            Ok(body) => Health::NotReady(body),
            Err(kube::Error::Api(s)) => Health::NotReady(format!("/healthz returned {}", s.code)),
            Err(e) => Health::Unreachable(e.to_string()),
        },
        Err(kube::Error::Api(status)) => {
            Health::NotReady(format!("/readyz returned {}", status.code))
        }
        Err(e) => Health::Unreachable(e.to_string()),
    }
}

async fn api_enablements(client: &kube::Client) -> Result<Vec<ApiEnablement>, kube::Error> {
    // Aggregated discovery: two requests instead of one per group version (at 1,000 clusters
    // probed every few seconds, legacy discovery was thousands of requests a second); members
    // older than Kubernetes 1.26 get the legacy walk.
    let discovery = match kube::Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(_) => kube::Discovery::new(client.clone()).run().await?,
    };
    let mut out: BTreeMap<String, Vec<ApiResourceRef>> = BTreeMap::new();
    for group in discovery.groups() {
        for version in group.versions() {
            let gv = if group.name().is_empty() {
                version.to_owned()
            } else {
                format!("{}/{version}", group.name())
            };
            let entry = out.entry(gv).or_default();
            for (resource, _caps) in group.versioned_resources(version) {
                entry.push(ApiResourceRef {
                    name: resource.plural.clone(),
                    kind: resource.kind.clone(),
                });
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(group_version, mut resources)| {
            resources.sort_by(|a, b| a.name.cmp(&b.name));
            ApiEnablement { group_version, resources }
        })
        .collect())
}

/// What the summary reads of a pod (the rest of it is skipped while parsing: a status probe
/// lists every pod of the member).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodUsage {
    spec: PodUsageSpec,
    status: PodUsageStatus,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodUsageSpec {
    node_name: Option<String>,
    containers: Vec<ContainerUsage>,
    init_containers: Vec<ContainerUsage>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ContainerUsage {
    resources: Value,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PodUsageStatus {
    phase: Option<String>,
}

/// A page of the member's pods, read as [`PodUsage`].
type PodPage = kube::core::ObjectList<PodUsage>;

impl PodUsage {
    fn requests(&self) -> Resources {
        quantity::requests_of(
            self.spec.containers.iter().map(|c| &c.resources),
            self.spec.init_containers.iter().map(|c| &c.resources),
        )
    }
}

fn to_quantities(
    r: &Resources,
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    r.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(quantity::format_milli(*v)),
            )
        })
        .collect()
}

async fn summaries(
    client: &kube::Client,
    models: &[karmada_api::cluster::ResourceModel],
) -> Result<(NodeSummary, ResourceSummary), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut summary = NodeSummary::default();
    let mut allocatable = Resources::new();
    // Each node's free resources, for the resource models' counts.
    let mut free_by_node: BTreeMap<String, Resources> = BTreeMap::new();
    for node in nodes.list(&ListParams::default()).await?.items {
        summary.total_num += 1;
        let status = node.status.unwrap_or_default();
        let node_allocatable = serde_json::to_value(&status.allocatable).unwrap_or(Value::Null);
        free_by_node.insert(
            node.metadata.name.clone().unwrap_or_default(),
            quantity::parse_list(Some(&node_allocatable)),
        );
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            summary.ready_num += 1;
            let value = serde_json::to_value(&status.allocatable).unwrap_or(Value::Null);
            quantity::add(&mut allocatable, &quantity::parse_list(Some(&value)));
        }
    }
    let (mut allocated, mut allocating) = (Resources::new(), Resources::new());
    let pods = kube::core::Request::new("/api/v1/pods");
    let mut params = ListParams::default().limit(500);
    loop {
        let request = pods.list(&params).map_err(kube::Error::BuildRequest)?;
        let page: PodPage = client.request(request).await?;
        for pod in &page.items {
            let phase = pod.status.phase.as_deref().unwrap_or("Pending");
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            let requests = pod.requests();
            if let Some(node) = pod.spec.node_name.as_ref() {
                quantity::add(&mut allocated, &requests);
                if let Some(free) = free_by_node.get_mut(node) {
                    for (k, v) in &requests {
                        *free.entry(k.clone()).or_default() -= v;
                    }
                }
            } else {
                quantity::add(&mut allocating, &requests);
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let resources = ResourceSummary {
        allocatable: to_quantities(&allocatable),
        allocating: to_quantities(&allocating),
        allocated: to_quantities(&allocated),
        allocatable_modelings: if models.is_empty() {
            Vec::new()
        } else {
            let frees: Vec<Resources> = free_by_node.into_values().collect();
            karmada_api::modeling::allocatable_modelings(models, &frees)
        },
    };
    Ok((summary, resources))
}

/// Computes the status of one cluster.
pub async fn observe(
    control: &kube::Client,
    cluster: &Cluster,
    settings: &Settings,
    clients: &member_client::Clients,
) -> ClusterStatus {
    let member = clients.get(control, cluster, settings.probe_timeout).await.map(|(c, _)| c);
    let status = observe_member(member, cluster, settings).await;
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        // Next time with a fresh client (and credentials read again).
        clients.forget(cluster.metadata.name.as_deref().unwrap_or_default());
    }
    status
}

/// Puts the `Ready` condition in place, keeping the others (a problem detector's, as
/// `ServiceDomainNameResolutionReady`, which Remedies act on).
pub fn set_ready(conditions: &mut Vec<Condition>, ready: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == ready.type_) {
        Some(c) => *c = ready,
        None => conditions.insert(0, ready),
    }
}

/// Computes the status of one cluster through a client of the member (or why there is none).
/// Shared by the control plane (push mode) and the agent (pull mode).
pub async fn observe_member(
    member: Result<kube::Client, String>,
    cluster: &Cluster,
    settings: &Settings,
) -> ClusterStatus {
    let now = crate::now_rfc3339();
    let previous = cluster.status.clone().unwrap_or_default();
    let previous_ready = previous.conditions.iter().find(|c| c.type_ == "Ready");
    let generation = cluster.metadata.generation.unwrap_or(0);
    let client = match member {
        Ok(c) => c,
        Err(e) => {
            let mut status = previous.clone();
            set_ready(
                &mut status.conditions,
                ready_condition(&Health::Unreachable(e), previous_ready, &now, generation),
            );
            return status;
        }
    };
    let health = match tokio::time::timeout(settings.probe_timeout, probe(&client)).await {
        Ok(h) => h,
        Err(_) => Health::Unreachable(format!("no answer within {:?}", settings.probe_timeout)),
    };
    let mut status = previous.clone();
    set_ready(&mut status.conditions, ready_condition(&health, previous_ready, &now, generation));
    if health != Health::Ready {
        return status;
    }
    let detail = async {
        let version = client.apiserver_version().await?;
        let enablements = api_enablements(&client).await?;
        let (nodes, resources) = summaries(&client, &cluster.spec.resource_models).await?;
        Ok::<_, kube::Error>((version.git_version, enablements, nodes, resources))
    };
    match tokio::time::timeout(settings.probe_timeout * 4, detail).await {
        Ok(Ok((version, enablements, nodes, resources))) => {
            status.kubernetes_version = version;
            status.api_enablements = enablements;
            status.node_summary = Some(nodes);
            status.resource_summary = Some(resources);
        }
        Ok(Err(e)) => {
            tracing::warn!(cluster = ?cluster.metadata.name, error = %e, "collecting cluster details failed")
        }
        Err(_) => {
            tracing::warn!(cluster = ?cluster.metadata.name, "collecting cluster details timed out")
        }
    }
    status
}

/// Writes the status when it differs from what is stored.
pub async fn write(
    control: &kube::Client,
    cluster: &Cluster,
    status: ClusterStatus,
) -> Result<(), kube::Error> {
    if cluster.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let clusters: Api<Cluster> = Api::all(control.clone());
    let name = cluster.metadata.name.clone().unwrap_or_default();
    // A merge patch from the status we know: what went away is removed (e.g. the cpu of a
    // cluster whose nodes all became NotReady), not left at its old value.
    let old = serde_json::to_value(&cluster.status).unwrap_or(Value::Null);
    let new = serde_json::to_value(&status).unwrap_or(Value::Null);
    let Some(diff) = apimachinery::patch::merge::diff(&old, &new) else { return Ok(()) };
    clusters
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": diff})))
        .await?;
    Ok(())
}

pub async fn run(
    control: kube::Client,
    settings: Settings,
    caches: crate::Caches,
) -> anyhow::Result<()> {
    let clusters = caches.clusters.store();
    let member_clients = std::sync::Arc::clone(&caches.member_clients);
    caches.clusters.ready().await;
    loop {
        let work = clusters.state().into_iter().filter(|c| c.metadata.deletion_timestamp.is_none()).map(
            |cluster| {
                let control = control.clone();
                let settings = settings.clone();
                let member_clients = std::sync::Arc::clone(&member_clients);
                async move {
                    let status = if cluster.spec.sync_mode == "Pull" {
                        // Its agent reports; we only notice when it stops.
                        match pull_cluster_silence(&control, &cluster, &settings).await {
                            Some(status) => status,
                            None => return,
                        }
                    } else {
                        observe(&control, &cluster, &settings, &member_clients).await
                    };
                    if let Err(e) = write(&control, &cluster, status).await {
                        tracing::warn!(cluster = ?cluster.metadata.name, error = %e, "writing cluster status failed");
                    }
                }
            },
        );
        join_all(work).await;
        tokio::time::sleep(settings.cluster_status_update_frequency).await;
    }
}

/// A Pull cluster's health comes from its agent's Lease (`karmada-cluster/<name>`): when the
/// agent has not renewed it within the grace period, the cluster's Ready condition becomes
/// Unknown (the taints of the cluster controller follow). `None`: nothing to change.
async fn pull_cluster_silence(
    control: &kube::Client,
    cluster: &Cluster,
    settings: &Settings,
) -> Option<ClusterStatus> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let leases: Api<Lease> = Api::namespaced(control.clone(), crate::CLUSTER_NAMESPACE);
    let renewed = match leases.get_opt(&name).await {
        Ok(lease) => lease.and_then(|l| l.spec).and_then(|s| s.renew_time).map(|t| t.0.as_second()),
        Err(e) => {
            tracing::warn!(cluster = %name, error = %e, "reading the agent lease failed");
            return None;
        }
    };
    let silent_for = renewed.map(|at| crate::now_secs() - at);
    let grace = settings.cluster_monitor_grace_period.as_secs() as i64;
    if silent_for.is_some_and(|s| s <= grace) {
        return None;
    }
    let previous = cluster.status.clone().unwrap_or_default();
    let previous_ready = previous.conditions.iter().find(|c| c.type_ == "Ready");
    if previous_ready.is_some_and(|c| c.status == "Unknown") {
        return None;
    }
    let why = match silent_for {
        Some(s) => format!("the cluster agent has not renewed its lease for {s} s"),
        None => "the cluster agent has never reported (no lease)".to_owned(),
    };
    let mut status = previous.clone();
    let mut condition = ready_condition(
        &Health::Unreachable(why),
        previous_ready,
        &crate::now_rfc3339(),
        cluster.metadata.generation.unwrap_or(0),
    );
    condition.status = "Unknown".into();
    condition.reason = "ClusterStatusUnknown".into();
    set_ready(&mut status.conditions, condition);
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_pod_is_read_for_its_requests_only() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}, "managedFields": [{"manager": "x"}]},
            "spec": {"nodeName": "node-1",
                "containers": [
                    {"name": "a", "image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                    {"name": "b", "image": "nginx", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "200m"}}},
                    {"name": "c", "image": "nginx", "resources": {"limits": {"memory": "1Gi"}}}],
                "initContainers": [{"name": "i", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let page: PodPage = serde_json::from_value(json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": "next"}, "items": [pod.clone(), {}]}))
        .unwrap();
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        let usage = &page.items[0];
        assert_eq!(usage.spec.node_name.as_deref(), Some("node-1"));
        assert_eq!(usage.status.phase.as_deref(), Some("Running"));
        // The same totals as from the whole pod: init containers' maximum, limits where no
        // request is given, and one pod.
        assert_eq!(usage.requests(), quantity::pod_requests(&pod));
        assert_eq!(usage.requests()["cpu"], 2000);
        // A pod without a spec counts as one pod, nowhere yet.
        let empty = &page.items[1];
        assert_eq!((empty.spec.node_name.as_deref(), empty.requests().len()), (None, 1));
    }

    #[test]
    fn ready_condition_keeps_transition_time() {
        let first = ready_condition(&Health::Ready, None, "2026-01-01T00:00:00Z", 1);
        assert_eq!((first.status.as_str(), first.reason.as_str()), ("True", "ClusterReady"));
        let again = ready_condition(&Health::Ready, Some(&first), "2026-01-01T00:05:00Z", 1);
        assert_eq!(again.last_transition_time, first.last_transition_time);
        let down = ready_condition(
            &Health::Unreachable("refused".into()),
            Some(&again),
            "2026-01-01T00:06:00Z",
            1,
        );
        assert_eq!((down.status.as_str(), down.reason.as_str()), ("False", "ClusterNotReachable"));
        assert_ne!(down.last_transition_time, first.last_transition_time);
        let sick = ready_condition(
            &Health::NotReady("500".into()),
            Some(&down),
            "2026-01-01T00:07:00Z",
            1,
        );
        assert_eq!(sick.reason, "ClusterNotReady");
    }
}
