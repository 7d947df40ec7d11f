//! The scheduler loop: watches ResourceBindings, ClusterResourceBindings and Clusters, asks the
//! pure core (`scheduler::schedule`) for a decision when one is due, and writes it: the
//! binding's `spec.clusters` with the `policy.karmada.io/applied-placement` annotation, then
//! its `Scheduled` condition. Bindings for another `schedulerName`, or with scheduling
//! suspended, are left alone; nothing is written when nothing changed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use karmada_api::cluster::Cluster;
use karmada_api::work::{ClusterResourceBinding, ResourceBinding, ResourceBindingSpec, ResourceBindingStatus, TargetCluster};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

pub const APPLIED_PLACEMENT: &str = "policy.karmada.io/applied-placement";
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Access to the parts of a binding the scheduler reads and writes.
pub trait Binding: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize + Send + Sync + 'static {
    fn spec(&self) -> &ResourceBindingSpec;
    fn status(&self) -> Option<&ResourceBindingStatus>;
}

impl Binding for ResourceBinding {
    fn spec(&self) -> &ResourceBindingSpec {
        &self.spec
    }
    fn status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
}

impl Binding for ClusterResourceBinding {
    fn spec(&self) -> &ResourceBindingSpec {
        &self.spec
    }
    fn status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
}

/// The scheduler's view of a cluster.
pub fn cluster_info(cluster: &Cluster) -> scheduler::ClusterInfo {
    let status = cluster.status.clone().unwrap_or_default();
    let enabled_apis = (!status.api_enablements.is_empty()).then(|| {
        status
            .api_enablements
            .iter()
            .flat_map(|e| e.resources.iter().map(move |r| format!("{}/{}", e.group_version, r.kind)))
            .collect()
    });
    let milli = |m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| -> BTreeMap<String, i128> {
        m.iter().filter_map(|(k, v)| Some((k.clone(), apimachinery::quantity::parse_milli(&v.0)?))).collect()
    };
    let capacity = status.resource_summary.as_ref().map(|s| scheduler::Capacity {
        allocatable: milli(&s.allocatable),
        allocated: milli(&s.allocated),
        allocating: milli(&s.allocating),
    });
    let mut zones = cluster.spec.zones.clone();
    if zones.is_empty() && !cluster.spec.zone.is_empty() {
        zones.push(cluster.spec.zone.clone());
    }
    scheduler::ClusterInfo {
        name: cluster.metadata.name.clone().unwrap_or_default(),
        labels: cluster.metadata.labels.clone().unwrap_or_default(),
        provider: cluster.spec.provider.clone(),
        region: cluster.spec.region.clone(),
        zones,
        taints: cluster.spec.taints.clone(),
        enabled_apis,
        capacity,
        deleting: cluster.metadata.deletion_timestamp.is_some(),
    }
}

/// What the scheduler needs of a binding.
pub fn binding_info(spec: &ResourceBindingSpec, status: Option<&ResourceBindingStatus>) -> Option<scheduler::BindingInfo> {
    let placement = spec.placement.clone()?;
    let resource = &spec.resource;
    let gvk = format!("{}/{}", resource.api_version, resource.kind);
    let requests = spec
        .replica_requirements
        .as_ref()
        .map(|r| r.resource_request.iter().filter_map(|(k, v)| Some((k.clone(), apimachinery::quantity::parse_milli(&v.0)?))).collect())
        .unwrap_or_default();
    let last = status.and_then(|s| s.last_scheduled_time.clone()).unwrap_or_default();
    let fresh = spec.reschedule_triggered_at.as_ref().is_some_and(|t| *t > last);
    Some(scheduler::BindingInfo {
        gvk,
        replicas: spec.replicas,
        requests,
        placement,
        previous: spec.clusters.clone(),
        evicting: spec.graceful_eviction_tasks.iter().map(|t| t.from_cluster.clone()).collect(),
        fresh,
    })
}

/// Whether a decision is due: nothing scheduled yet, the placement or replicas changed, a
/// target cluster went away, or a reschedule was requested.
pub fn needs_scheduling(spec: &ResourceBindingSpec, status: Option<&ResourceBindingStatus>, applied: Option<&str>, clusters: &[scheduler::ClusterInfo]) -> bool {
    let Some(placement) = &spec.placement else { return false };
    let applied_now = serde_json::to_string(placement).unwrap_or_default();
    if applied != Some(applied_now.as_str()) {
        return true;
    }
    if spec.clusters.is_empty() {
        return status.is_none_or(|s| !s.conditions.iter().any(|c| c.type_ == "Scheduled" && c.status == "False"));
    }
    if spec.clusters.iter().any(|t| !clusters.iter().any(|c| c.name == t.name && !c.deleting)) {
        return true;
    }
    let divided = placement.replica_scheduling.as_ref().is_some_and(|r| r.replica_scheduling_type == "Divided");
    let assigned: i32 = spec.clusters.iter().map(|t| t.replicas).sum();
    let replicas_changed = if divided { assigned != spec.replicas } else { spec.clusters.iter().any(|t| t.replicas != spec.replicas) };
    let last = status.and_then(|s| s.last_scheduled_time.clone()).unwrap_or_default();
    replicas_changed || spec.reschedule_triggered_at.as_ref().is_some_and(|t| *t > last)
}

struct Context {
    client: kube::Client,
    clusters: Store<Cluster>,
    plugins: scheduler::Plugins,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

fn now() -> String {
    apimachinery::time::format_rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0))
}

async fn reconcile<B: Binding>(binding: Arc<B>, ctx: Arc<Context>) -> Result<Action, Error> {
    let spec = binding.spec();
    let scheduler_name = if spec.scheduler_name.is_empty() { SCHEDULER_NAME } else { spec.scheduler_name.as_str() };
    let suspended = spec.suspension.as_ref().and_then(|s| s.scheduling) == Some(true);
    if scheduler_name != SCHEDULER_NAME || suspended || binding.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let clusters: Vec<scheduler::ClusterInfo> = ctx.clusters.state().iter().map(|c| cluster_info(c)).collect();
    let applied = binding.meta().annotations.as_ref().and_then(|a| a.get(APPLIED_PLACEMENT)).map(String::as_str);
    if !needs_scheduling(spec, binding.status(), applied, &clusters) {
        return Ok(Action::await_change());
    }
    let Some(info) = binding_info(spec, binding.status()) else { return Ok(Action::await_change()) };
    let name = binding.meta().name.clone().unwrap_or_default();
    let resource = kube::discovery::ApiResource::erase::<B>(&());
    let api: Api<kube::api::DynamicObject> = match &binding.meta().namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    };
    let placement = serde_json::to_string(spec.placement.as_ref().expect("checked by binding_info")).unwrap_or_default();
    let generation = binding.meta().generation.unwrap_or(0);
    let _span = tracing::info_span!("schedule", binding = %name).entered();
    let (condition, clusters_out, affinity) = match scheduler::schedule(&info, &clusters, &ctx.plugins) {
        Ok(decision) => {
            let message = "Binding has been scheduled successfully.".to_owned();
            (condition("True", "Success", &message, generation), Some(decision.clusters), decision.affinity_name)
        }
        Err(e) => (condition("False", e.reason(), &e.message(), generation), None, None),
    };
    drop(_span);
    // One write for the decision (spec + annotation), one for the condition.
    let mut patch = json!({"metadata": {"annotations": {APPLIED_PLACEMENT: placement}}});
    if let Some(clusters) = &clusters_out {
        patch["spec"] = json!({"clusters": clusters});
    }
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let mut status = json!({
        "conditions": [condition],
        "schedulerObservedGeneration": generation,
    });
    if clusters_out.is_some() {
        status["lastScheduledTime"] = json!(now());
    }
    if let Some(a) = affinity {
        status["schedulerObservingAffinityName"] = json!(a);
    }
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    let _: Option<Vec<TargetCluster>> = clusters_out;
    Ok(Action::await_change())
}

fn condition(status: &str, reason: &str, message: &str, generation: i64) -> Condition {
    Condition {
        type_: "Scheduled".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Time(now().parse().unwrap_or_default()),
        observed_generation: Some(generation),
    }
}

fn error_policy<B: Binding>(_: Arc<B>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "scheduling failed");
    Action::requeue(Duration::from_secs(1))
}

async fn run_for<B: Binding>(client: kube::Client, clusters: Store<Cluster>, cluster_changes: impl futures::Stream<Item = ()> + Send + 'static, plugins: scheduler::Plugins) {
    let api: Api<B> = Api::all(client.clone());
    let ctx = Arc::new(Context { client, clusters, plugins });
    Controller::new(api, watcher::Config::default())
        .reconcile_all_on(cluster_changes)
        .run(reconcile::<B>, error_policy::<B>, ctx)
        .for_each(|_| async {})
        .await;
}

/// Runs the scheduler until the future is dropped.
pub async fn run(client: kube::Client, plugins: scheduler::Plugins) -> anyhow::Result<()> {
    let (reader, writer) = reflector::store::<Cluster>();
    let clusters: Api<Cluster> = Api::all(client.clone());
    let (tx, _) = tokio::sync::broadcast::channel::<()>(64);
    let tx_clusters = tx.clone();
    let cluster_stream = tokio::spawn(
        watcher::watcher(clusters, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .for_each(move |_| {
                let _ = tx_clusters.send(());
                async {}
            }),
    );
    let _ = reader.wait_until_ready().await;
    let changes = |tx: &tokio::sync::broadcast::Sender<()>| {
        futures::stream::unfold(tx.subscribe(), |mut rx| async move {
            // A lagging receiver still means "clusters changed".
            match rx.recv().await {
                Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(((), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        })
    };
    let namespaced = run_for::<ResourceBinding>(client.clone(), reader.clone(), changes(&tx), plugins.clone());
    let cluster_scoped = run_for::<ClusterResourceBinding>(client, reader, changes(&tx), plugins);
    tokio::join!(namespaced, cluster_scoped);
    cluster_stream.abort();
    Ok(())
}
