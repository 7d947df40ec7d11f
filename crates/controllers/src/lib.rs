//! Controllers of the karmada-rs control plane. Every controller is an API client: it talks to
//! the control plane (and to member clusters) only through the Kubernetes API, with `kube`, so
//! it works unchanged against upstream's API server and real member clusters.
//!
//! - [`cluster`]: keeps `Cluster` objects true: execution namespaces, cleanup on removal, and
//!   the not-ready/unreachable taints after a grace period.
//! - [`cluster_status`]: probes push-mode members and writes their status (Ready condition,
//!   version, API enablements, node and resource summaries).
//! - [`registry`]: upstream's controllers by name, and which are on (`--controllers`).
//! - [`detector`]: matches resource templates to propagation policies and writes bindings.
//! - [`dependencies`]: `propagateDeps`: dependencies follow their workload (`requiredBy`).
//! - [`namespaces`]: namespaces are propagated to every cluster automatically.
//! - [`binding`]: renders each scheduled binding into one Work per target cluster.
//! - [`execution`]: applies Works to push-mode members and removes what they applied.
//! - [`failover`]: ClusterTaintPolicies and the taint manager (eviction from failed clusters).
//! - [`rebalancer`]: WorkloadRebalancer: reschedule named workloads from scratch.
//! - [`scheduling`]: the scheduler loop (run by `karmada scheduler`).
//!
//! Member clients and joining come from the `member-client` crate (re-exported as
//! [`member_client`] and [`join`]).

pub mod agent;
pub use member_client::{self, join};
pub mod binding;
pub mod cluster;
pub mod cluster_status;
pub mod cron_fhpa;
pub mod dependencies;
pub mod descheduler;
pub mod detector;
pub mod estimator;
pub mod events;
pub mod execution;
pub mod failover;
pub mod federated_hpa;
pub mod federated_quota;
pub mod hpa_replicas;
pub mod in_flight;
pub mod interpreting;
pub mod leader;
pub mod lean;
pub mod mcs;
pub mod multicluster_service;
pub mod namespaces;
pub mod rebalancer;
pub mod registry;
pub mod remedy;
pub mod scheduling;
pub mod shared;
pub mod templates;
pub mod unified_auth;
pub mod work_queue;

use std::fmt::Debug;
use std::time::Duration;

use karmada_api::work::{
    ClusterResourceBinding, ResourceBinding, ResourceBindingSpec, ResourceBindingStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Tunables shared by the controllers (defaults as upstream).
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often each push cluster's status is refreshed.
    pub cluster_status_update_frequency: Duration,
    /// How long a cluster may stay not-ready before it is tainted.
    pub cluster_monitor_grace_period: Duration,
    /// How often the cluster controller re-checks health.
    pub cluster_monitor_period: Duration,
    /// Timeout for one probe of a member.
    pub probe_timeout: Duration,
    /// At most this many bindings are evicted from tainted clusters per second.
    pub evictions_per_second: u32,
    /// The controllers that run (`--controllers`).
    pub controllers: registry::Selection,
    /// Whether workloads are evicted from clusters with untolerated NoExecute taints
    /// (`--enable-taint-manager`, part of the `cluster` controller as upstream).
    pub enable_taint_manager: bool,
    /// How often each FederatedHPA is evaluated (`--horizontal-pod-autoscaler-sync-period`).
    pub hpa_sync_period: Duration,
    /// How often FederatedResourceQuotas' usage is recounted from the bindings
    /// (`--federated-resource-quota-sync-period`).
    pub quota_sync_period: Duration,
    /// `--feature-gates` (upstream's defaults unless set).
    pub features: karmada_api::features::FeatureGates,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_status_update_frequency: Duration::from_secs(10),
            cluster_monitor_grace_period: Duration::from_secs(40),
            cluster_monitor_period: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(5),
            evictions_per_second: 20,
            controllers: registry::Selection::default(),
            enable_taint_manager: true,
            hpa_sync_period: federated_hpa::SYNC_PERIOD,
            quota_sync_period: Duration::from_secs(300),
            features: karmada_api::features::FeatureGates::default(),
        }
    }
}

/// How many reconciles of one controller run at once. kube-runtime's default is unbounded: in a
/// burst every queued object had a request in flight, each on its own HTTP/1.1 connection
/// (1,500 connections, as many TLS handshakes, and their buffers, from the controller-manager
/// at 10×1,000).
pub const CONCURRENCY: u16 = 64;

/// The configuration every controller runs with (bounded concurrency).
pub(crate) fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(CONCURRENCY)
}

/// Whether resourceVersion `have` is at least `want` (both etcd-style revisions; an empty
/// `want` asks for nothing, and versions that are not numbers only match themselves).
pub(crate) fn rv_at_least(have: Option<&str>, want: &str) -> bool {
    if want.is_empty() {
        return true;
    }
    let Some(have) = have else { return false };
    match (have.parse::<u64>(), want.parse::<u64>()) {
        (Ok(h), Ok(w)) => h >= w,
        _ => have == want,
    }
}

pub use karmada_api::names::{CLUSTER_NAMESPACE, execution_namespace};

/// The watch caches the controller-manager's controllers share: one watch and one copy per
/// kind (see [`shared`]).
#[derive(Clone)]
pub struct Caches {
    /// Every resource template, kept by the detector.
    pub templates: std::sync::Arc<templates::Templates>,
    pub bindings: std::sync::Arc<shared::Watched<ResourceBinding>>,
    pub cluster_bindings: std::sync::Arc<shared::Watched<ClusterResourceBinding>>,
    pub works: std::sync::Arc<shared::Watched<karmada_api::work::Work>>,
    pub clusters: std::sync::Arc<shared::Watched<karmada_api::cluster::Cluster>>,
    /// OverridePolicies and ClusterOverridePolicies (the binding and namespace controllers).
    pub override_policies: std::sync::Arc<shared::Watched<karmada_api::policy::OverridePolicy>>,
    pub cluster_override_policies:
        std::sync::Arc<shared::Watched<karmada_api::policy::ClusterOverridePolicy>>,
    /// Clients of the push members, shared by the status probes and the execution controller.
    pub member_clients: std::sync::Arc<member_client::Clients>,
    /// The resource interpreter with the control plane's customizations.
    pub interpreter: std::sync::Arc<interpreting::Interpreting>,
}

impl Caches {
    /// Starts the shared watches (the detector fills `templates`).
    pub fn start(client: &kube::Client) -> Self {
        let config = kube::runtime::watcher::Config::default;
        Caches {
            templates: std::sync::Arc::default(),
            bindings: shared::Watched::start(kube::Api::all(client.clone()), config()),
            cluster_bindings: shared::Watched::start(kube::Api::all(client.clone()), config()),
            works: shared::Watched::start(kube::Api::all(client.clone()), config()),
            clusters: shared::Watched::start(kube::Api::all(client.clone()), config()),
            override_policies: shared::Watched::start(kube::Api::all(client.clone()), config()),
            cluster_override_policies: shared::Watched::start(
                kube::Api::all(client.clone()),
                config(),
            ),
            member_clients: std::sync::Arc::default(),
            interpreter: interpreting::Interpreting::start(client),
        }
    }
}

/// Runs the selected controllers (`settings.controllers`) until the future is dropped or one
/// of them fails.
pub async fn run(client: kube::Client, settings: Settings) -> anyhow::Result<()> {
    use karmada_api::features::Feature;
    use registry::Loop;
    let features = settings.features.clone();
    let selection = settings.controllers.clone().gated(&features);
    for name in selection.missing() {
        tracing::info!(controller = name, "not implemented in karmada-rs; skipped");
    }
    let caches = Caches::start(&client);
    let mut loops = selection.loops();
    // Taint-based eviction only with the Failover gate, as upstream.
    let taint_manager = settings.enable_taint_manager
        && selection.has(registry::names::CLUSTER)
        && features.enabled(Feature::Failover);
    if taint_manager {
        loops.insert(Loop::Failover);
    }
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)> = vec![
        // Always on, as upstream's resource detector.
        ("detector", tokio::spawn(detector::run(client.clone(), caches.clone(), features.clone()))),
    ];
    // The dependencies distributor, behind PropagateDeps.
    if features.enabled(Feature::PropagateDeps) {
        tasks.push((
            "dependencies",
            tokio::spawn(dependencies::run(client.clone(), caches.clone())),
        ));
    }
    for l in loops {
        let (c, s, k) = (client.clone(), settings.clone(), caches.clone());
        let task = match l {
            Loop::Cluster => tokio::spawn(cluster::run(c, s, k)),
            Loop::ClusterStatus => tokio::spawn(cluster_status::run(c, s, k)),
            Loop::Binding => tokio::spawn(binding::run(c, k, selection.binding_parts())),
            Loop::Execution => {
                tokio::spawn(execution::run(c, s.probe_timeout, k, selection.execution_parts()))
            }
            Loop::Namespace => tokio::spawn(namespaces::run(c, k)),
            Loop::Failover => tokio::spawn(failover::run(
                c,
                s.evictions_per_second,
                k,
                failover::Parts {
                    taints: taint_manager,
                    application: selection.has(registry::names::APPLICATION_FAILOVER),
                    preserve_state: features.enabled(Feature::StatefulFailoverInjection),
                    graceful: features.enabled(Feature::GracefulEviction),
                },
            )),
            Loop::TaintPolicy => tokio::spawn(failover::run_taint_policies(c, k)),
            Loop::Rebalancer => tokio::spawn(rebalancer::run(c)),
            Loop::UnifiedAuth => tokio::spawn(unified_auth::run(c, k)),
            Loop::FederatedHpa => tokio::spawn(federated_hpa::run(c, k, s.hpa_sync_period)),
            Loop::CronFederatedHpa => tokio::spawn(cron_fhpa::run(c)),
            Loop::HpaScaleTargetMarker => tokio::spawn(hpa_replicas::run_scale_target_marker(c)),
            Loop::DeploymentReplicasSyncer => tokio::spawn(hpa_replicas::run_replicas_syncer(c)),
            Loop::ServiceImport => tokio::spawn(mcs::run_service_import(c)),
            Loop::Collect => tokio::spawn(mcs::run_collectors(c, k, selection.collect_parts())),
            // With the status of LoadBalancer MultiClusterServices and MultiClusterIngresses.
            Loop::MultiClusterService => tokio::spawn(async move {
                tokio::try_join!(
                    multicluster_service::run(c.clone(), k.clone()),
                    multicluster_service::run_exposure_status(c, k)
                )
                .map(|_| ())
            }),
            Loop::EndpointSliceDispatch => tokio::spawn(multicluster_service::run_dispatch(c, k)),
            Loop::Remedy => tokio::spawn(remedy::run(c, k)),
            Loop::FederatedResourceQuota => tokio::spawn(federated_quota::run(
                c,
                k,
                selection.quota_parts(),
                s.quota_sync_period,
            )),
            Loop::EndpointSlice => tokio::spawn(mcs::run_endpoint_slice(c)),
            Loop::AgentStatus => continue,
        };
        tasks.push((l.name(), task));
    }
    let (result, index, _) = futures::future::select_all(tasks.iter_mut().map(|(_, t)| t)).await;
    let name = tasks[index].0;
    for (_, t) in &tasks {
        t.abort();
    }
    match result {
        Ok(Ok(())) => anyhow::bail!("controller {name} stopped"),
        Ok(Err(e)) => Err(e.context(format!("controller {name}"))),
        Err(e) => Err(anyhow::anyhow!("controller {name} panicked: {e}")),
    }
}

/// Seconds since the Unix epoch by the wall clock (0 if the clock is before it).
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The wall-clock time as an RFC 3339 timestamp, as Kubernetes conditions carry it.
pub(crate) fn now_rfc3339() -> String {
    apimachinery::time::format_rfc3339(now_secs())
}

/// A ResourceBinding or ClusterResourceBinding: the parts the scheduler and the binding
/// controller read and write.
/// A binding's API (ResourceBinding in `namespace`, or ClusterResourceBinding), untyped.
pub(crate) fn binding_api<B: Binding>(
    client: &kube::Client,
    namespace: Option<&str>,
) -> kube::Api<kube::api::DynamicObject> {
    let resource = kube::discovery::ApiResource::erase::<B>(&());
    match namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    }
}

pub trait Binding:
    kube::Resource<DynamicType = ()>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
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

/// Logs a failed reconcile and returns when to retry: a write that lost an optimistic
/// concurrency race (409) is routine and retried at once, quietly; anything else is a warning.
pub(crate) fn retry_after(
    controller: &str,
    error: &dyn std::fmt::Display,
    conflict: bool,
    delay: Duration,
) -> kube::runtime::controller::Action {
    if conflict {
        tracing::debug!(%error, "{controller}: write conflict, retrying");
        kube::runtime::controller::Action::requeue(Duration::from_millis(50))
    } else {
        tracing::warn!(%error, "{controller} reconcile failed");
        kube::runtime::controller::Action::requeue(delay)
    }
}

/// Whether an error is a 409 Conflict from the API.
/// An error as Go clients print it in Events and conditions: an API server's refusal is its
/// Status message alone.
pub(crate) fn error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 409)
}

/// JSON-patch operations that put `condition` (matched by its `type`) into a status read as
/// `status`, and set each of `fields` under `/status`, without touching the other
/// controllers' conditions and fields. `test` operations guard what was read: if the condition
/// list changed shape meanwhile, the patch fails (422) and is retried from a fresh view, so no
/// other writer's update is lost and no resourceVersion precondition is needed.
pub fn status_ops(
    status: Option<&serde_json::Value>,
    condition: serde_json::Value,
    fields: &[(&str, serde_json::Value)],
) -> Vec<serde_json::Value> {
    use serde_json::{Value, json};
    let Some(status) = status.filter(|s| s.is_object()) else {
        let mut value = serde_json::Map::new();
        value.insert("conditions".into(), json!([condition]));
        for (k, v) in fields {
            value.insert((*k).to_owned(), v.clone());
        }
        return vec![
            json!({"op": "test", "path": "/status", "value": null}),
            json!({"op": "add", "path": "/status", "value": value}),
        ];
    };
    let mut ops = Vec::new();
    let kind = condition.get("type").cloned().unwrap_or(Value::Null);
    match status.get("conditions").and_then(Value::as_array) {
        None => {
            ops.push(json!({"op": "test", "path": "/status/conditions", "value": null}));
            ops.push(json!({"op": "add", "path": "/status/conditions", "value": [condition]}));
        }
        Some(list) => match list.iter().position(|c| c.get("type") == Some(&kind)) {
            Some(i) => {
                ops.push(json!({"op": "test", "path": format!("/status/conditions/{i}/type"), "value": kind}));
                ops.push(json!({"op": "replace", "path": format!("/status/conditions/{i}"), "value": condition}));
            }
            None => {
                ops.push(json!({"op": "test", "path": "/status/conditions", "value": list}));
                ops.push(json!({"op": "add", "path": "/status/conditions/-", "value": condition}));
            }
        },
    }
    for (k, v) in fields {
        ops.push(json!({"op": "add", "path": format!("/status/{k}"), "value": v}));
    }
    ops
}

/// Drops what no controller reads from a cached object: its managedFields (for a Work or a
/// member object written by server-side apply, as large as the manifest itself).
pub(crate) fn lean<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A lean watch of every object of a kind, reflected into a new store: the stream of changed
/// objects and the store, for `Controller::for_stream`.
pub(crate) fn lean_watch<K>(
    api: kube::Api<K>,
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    use kube::runtime::WatchStreamExt;
    let (store, writer) = kube::runtime::reflector::store::<K>();
    let stream = kube::runtime::watcher::watcher(api, kube::runtime::watcher::Config::default())
        .default_backoff()
        .modify(lean)
        .reflect(writer)
        .applied_objects();
    (store, stream)
}

/// A watch predicate for controllers that act on an object's spec and lifecycle, not its
/// status: its generation, whether it is being deleted, and its finalizers.
pub(crate) fn spec_relevant<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    meta.finalizers.hash(&mut h);
    Some(h.finish())
}

/// Applies `status_ops` to an object's status subresource: the updated object, or `None` when
/// a guard failed (the object changed meanwhile; retry from a fresh view).
pub(crate) async fn patch_status_ops<K>(
    api: &kube::Api<K>,
    name: &str,
    ops: Vec<serde_json::Value>,
) -> Result<Option<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + Debug,
{
    let patch: json_patch::Patch = match serde_json::from_value(serde_json::Value::Array(ops)) {
        Ok(p) => p,
        Err(e) => return Err(kube::Error::SerdeError(e)),
    };
    match api
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(updated) => Ok(Some(updated)),
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_ops_touch_only_their_condition() {
        let fully = json!({"type": "FullyApplied", "status": "True"});
        assert_eq!(
            status_ops(None, fully.clone(), &[("aggregatedStatus", json!([]))]),
            vec![
                json!({"op": "test", "path": "/status", "value": null}),
                json!({"op": "add", "path": "/status", "value": {"conditions": [fully.clone()], "aggregatedStatus": []}}),
            ]
        );
        let scheduled_only = json!({"conditions": [{"type": "Scheduled", "status": "True"}]});
        let ops = status_ops(Some(&scheduled_only), fully.clone(), &[]);
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(
            ops[1],
            json!({"op": "add", "path": "/status/conditions/-", "value": fully.clone()})
        );
        let both = json!({"conditions": [{"type": "Scheduled"}, {"type": "FullyApplied", "status": "False"}]});
        let ops = status_ops(Some(&both), fully.clone(), &[("x", json!(1))]);
        assert_eq!(
            ops,
            vec![
                json!({"op": "test", "path": "/status/conditions/1/type", "value": "FullyApplied"}),
                json!({"op": "replace", "path": "/status/conditions/1", "value": fully}),
                json!({"op": "add", "path": "/status/x", "value": 1}),
            ]
        );
        let mut target = both.clone();
        let mut whole = json!({"status": target.take()});
        let patch: json_patch::Patch = serde_json::from_value(json!(ops)).unwrap();
        json_patch::patch(&mut whole, &patch).unwrap();
        assert_eq!(whole["status"]["conditions"][0]["type"], "Scheduled", "others are kept");
        assert_eq!(whole["status"]["conditions"][1]["status"], "True");
    }
}

/// Triggers gathered for `window` after the first of a burst and let through once each: a
/// burst of changes for one object (a Deployment's status moving while its pods start, a
/// binding's Works reporting one after another) becomes one reconcile.
pub(crate) fn coalesce<T>(
    mut triggers: futures::channel::mpsc::UnboundedReceiver<T>,
    window: Duration,
) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: std::hash::Hash + Eq + Send + 'static,
{
    use futures::StreamExt;
    let (out, coalesced) = futures::channel::mpsc::unbounded();
    let task = tokio::spawn(async move {
        while let Some(first) = triggers.next().await {
            tokio::time::sleep(window).await;
            let mut batch = std::collections::HashSet::from([first]);
            while let Ok(more) = triggers.try_recv() {
                batch.insert(more);
            }
            for t in batch {
                if out.unbounded_send(t).is_err() {
                    return;
                }
            }
        }
    });
    // The task ends with the stream (its sender fails) or with the triggers.
    let guard = AbortOnDrop(task);
    coalesced.map(move |t| {
        let _ = &guard;
        t
    })
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stream that yields once per message of a broadcast of "something changed" signals; a
/// lagging receiver still yields (it missed changes, so it has something to look at).
pub(crate) fn signals(
    tx: &tokio::sync::broadcast::Sender<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(tx.subscribe(), |mut rx| async move {
        match rx.recv().await {
            Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(((), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// API resources by kind, found by discovery once and then remembered.
#[derive(Default)]
pub(crate) struct KindCache(
    std::sync::Mutex<
        std::collections::HashMap<kube::core::GroupVersionKind, kube::api::ApiResource>,
    >,
);

impl KindCache {
    pub(crate) async fn resource(
        &self,
        client: &kube::Client,
        gvk: &kube::core::GroupVersionKind,
    ) -> Result<kube::api::ApiResource, kube::Error> {
        if let Some(ar) = self.0.lock().ok().and_then(|k| k.get(gvk).cloned()) {
            return Ok(ar);
        }
        let (ar, _) = kube::discovery::pinned_kind(client, gvk).await?;
        if let Ok(mut kinds) = self.0.lock() {
            kinds.insert(gvk.clone(), ar.clone());
        }
        Ok(ar)
    }
}

/// The API resource of ResourceBindings (namespaced) or ClusterResourceBindings.
pub(crate) fn binding_resource(namespaced: bool) -> kube::api::ApiResource {
    if namespaced {
        kube::api::ApiResource::erase::<ResourceBinding>(&())
    } else {
        kube::api::ApiResource::erase::<ClusterResourceBinding>(&())
    }
}

/// Adds (`present`) or removes `finalizer` on an object whose finalizers were read as
/// `current`; no request when nothing would change.
pub(crate) async fn set_finalizer<K>(
    api: &kube::Api<K>,
    name: &str,
    current: &[String],
    finalizer: &str,
    present: bool,
) -> Result<(), kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + Debug,
{
    let has = current.iter().any(|f| f == finalizer);
    if has == present {
        return Ok(());
    }
    let next: Vec<&str> = if present {
        current.iter().map(String::as_str).chain(std::iter::once(finalizer)).collect()
    } else {
        current.iter().map(String::as_str).filter(|f| *f != finalizer).collect()
    };
    let patch = serde_json::json!({"metadata": {"finalizers": next}});
    api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch)).await?;
    Ok(())
}
