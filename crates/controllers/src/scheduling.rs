//! The scheduler loop: watches ResourceBindings, ClusterResourceBindings and Clusters, asks the
//! pure core (`scheduler::schedule`) for a decision when one is due, and writes it: the
//! binding's `spec.clusters` with the `policy.karmada.io/applied-placement` annotation, then
//! its `Scheduled` condition. Bindings for another `schedulerName`, or with scheduling
//! suspended, are left alone; nothing is written when nothing changed.

use karmada_api::events::{Reason, message};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::in_flight::InFlight;
use crate::work_queue::{Next, Queue};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use karmada_api::cluster::Cluster;
use karmada_api::work::{
    ClusterResourceBinding, ResourceBinding, ResourceBindingSpec, ResourceBindingStatus,
    TargetCluster,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

pub use crate::Binding;

pub const APPLIED_PLACEMENT: &str = "policy.karmada.io/applied-placement";
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// The scheduler's view of a cluster (its capacity from the summary alone).
pub fn cluster_info(cluster: &Cluster) -> scheduler::ClusterInfo {
    cluster_info_with(cluster, false)
}

/// The scheduler's view of a cluster; with `modeling` (CustomizedClusterResourceModeling), a
/// cluster with resource models and its nodes counted in them is estimated by those nodes.
pub fn cluster_info_with(cluster: &Cluster, modeling: bool) -> scheduler::ClusterInfo {
    let empty = karmada_api::cluster::ClusterStatus::default();
    let status = cluster.status.as_ref().unwrap_or(&empty);
    let enabled_apis = (!status.api_enablements.is_empty()).then(|| {
        Arc::new(
            status
                .api_enablements
                .iter()
                .flat_map(|e| {
                    e.resources.iter().map(move |r| format!("{}/{}", e.group_version, r.kind))
                })
                .collect(),
        )
    });
    let milli = |m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| -> BTreeMap<String, i128> {
        m.iter().filter_map(|(k, v)| Some((k.clone(), apimachinery::quantity::parse_milli(&v.0)?))).collect()
    };
    let capacity = status.resource_summary.as_ref().map(|s| {
        let models =
            if modeling { model_grades(&cluster.spec.resource_models, s) } else { Vec::new() };
        Arc::new(scheduler::Capacity {
            allocatable: milli(&s.allocatable),
            allocated: milli(&s.allocated),
            allocating: milli(&s.allocating),
            models: Arc::new(models),
        })
    });
    scheduler::ClusterInfo { enabled_apis, capacity, ..scheduler::ClusterInfo::identity(cluster) }
}

/// A cluster's nodes by model grade, lowest first: each grade's minimums and the nodes the
/// summary counts in it; none unless the cluster has both models and counts.
fn model_grades(
    models: &[karmada_api::cluster::ResourceModel],
    summary: &karmada_api::cluster::ResourceSummary,
) -> Vec<scheduler::ModelGrade> {
    if models.is_empty() || summary.allocatable_modelings.is_empty() {
        return Vec::new();
    }
    let mut grades: Vec<scheduler::ModelGrade> = Vec::new();
    let mut ordered: Vec<&karmada_api::cluster::ResourceModel> = models.iter().collect();
    ordered.sort_by_key(|m| m.grade);
    for model in ordered {
        let nodes = summary
            .allocatable_modelings
            .iter()
            .filter(|a| a.grade == model.grade)
            .map(|a| a.count.max(0))
            .sum();
        let minimum = model
            .ranges
            .iter()
            .map(|r| (r.name.clone(), apimachinery::quantity::parse_milli(&r.min.0).unwrap_or(0)))
            .collect();
        grades.push(scheduler::ModelGrade { minimum, nodes });
    }
    grades
}

/// What the scheduler needs of a binding.
pub fn binding_info(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
) -> Option<scheduler::BindingInfo> {
    let placement = spec.placement.clone()?;
    let resource = &spec.resource;
    let gvk = format!("{}/{}", resource.api_version, resource.kind);
    let requests = spec
        .replica_requirements
        .as_ref()
        .map(|r| milli_requests(&r.resource_request))
        .unwrap_or_default();
    let components = spec
        .components
        .iter()
        .map(|c| scheduler::ComponentInfo {
            name: c.name.clone(),
            replicas: c.replicas,
            requests: c
                .replica_requirements
                .as_ref()
                .map(|r| milli_requests(&r.resource_request))
                .unwrap_or_default(),
        })
        .collect();
    let last = status.and_then(|s| s.last_scheduled_time.clone()).unwrap_or_default();
    let fresh = spec.reschedule_triggered_at.as_ref().is_some_and(|t| *t > last);
    Some(scheduler::BindingInfo {
        gvk,
        replicas: spec.replicas,
        requests,
        components,
        placement,
        previous: spec.clusters.clone(),
        evicting: spec.graceful_eviction_tasks.iter().map(|t| t.from_cluster.clone()).collect(),
        fresh,
        observed_affinity: status
            .map(|s| s.scheduler_observing_affinity_name.clone())
            .filter(|n| !n.is_empty()),
        affinity_peers: Vec::new(),
        anti_affinity_taken: std::collections::BTreeSet::new(),
        estimates: BTreeMap::new(),
    })
}

/// Requests in milli-units (what does not parse is left out).
pub(crate) fn milli_requests(
    list: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> BTreeMap<String, i128> {
    list.iter()
        .filter_map(|(k, v)| Some((k.clone(), apimachinery::quantity::parse_milli(&v.0)?)))
        .collect()
}

/// Whether a decision is due: nothing scheduled yet, the placement or replicas changed, a
/// target cluster went away, or a reschedule was requested.
pub fn needs_scheduling(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    applied: Option<&str>,
    clusters: &[scheduler::ClusterInfo],
) -> bool {
    let Some(placement) = &spec.placement else { return false };
    let applied_now = serde_json::to_string(placement).unwrap_or_default();
    if applied != Some(applied_now.as_str()) {
        return true;
    }
    if spec.clusters.is_empty() {
        return status.is_none_or(|s| {
            !s.conditions.iter().any(|c| c.type_ == "Scheduled" && c.status == "False")
        });
    }
    if spec.clusters.iter().any(|t| !clusters.iter().any(|c| c.name == t.name && !c.deleting)) {
        return true;
    }
    // A multi-template workload whose components changed (scaled, added, removed): the sets
    // recorded in its clusters are stale.
    if spec.components.len() > 1
        && binding_info(spec, status).is_some_and(|info| info.multi_template())
    {
        let wanted: Vec<(&str, i32)> =
            spec.components.iter().map(|c| (c.name.as_str(), c.replicas)).collect();
        let stale = spec.clusters.iter().any(|t| {
            t.components.iter().map(|c| (c.name.as_str(), c.replicas)).ne(wanted.iter().copied())
        });
        if stale {
            return true;
        }
    }
    let divided = placement.divides_replicas();
    let assigned: i32 = spec.clusters.iter().map(|t| t.replicas).sum();
    let replicas_changed = if divided {
        assigned != spec.replicas
    } else {
        spec.clusters.iter().any(|t| t.replicas != spec.replicas)
    };
    let last = status.and_then(|s| s.last_scheduled_time.clone()).unwrap_or_default();
    replicas_changed || spec.reschedule_triggered_at.as_ref().is_some_and(|t| *t > last)
}

struct Context {
    client: kube::Client,
    clusters: Store<Cluster>,
    plugins: scheduler::Plugins,
    in_flight: Arc<InFlight>,
    /// The accurate estimator, when enabled.
    estimator: Option<Arc<crate::estimator::Estimator>>,
    /// Bumped by the cluster watch after each change reaches `clusters`.
    cluster_changes: Arc<AtomicU64>,
    /// The scheduler's view of the clusters, rebuilt only when they changed (not once per
    /// binding: at 100 clusters rebuilding it cost more than the decision itself).
    snapshot: std::sync::Mutex<Arc<Snapshot>>,
    /// Each cluster's view by name, with the resourceVersion it was made from.
    infos: std::sync::Mutex<std::collections::HashMap<String, (String, scheduler::ClusterInfo)>>,
    /// Bindings (by uid) that did not fit, and the cluster (and member facts) generations they
    /// were tried against.
    tried: std::sync::Mutex<std::collections::HashMap<String, (u64, u64, u64)>>,
    events: crate::events::Events,
    /// Bumped on every change of a cluster's labels, spec or membership.
    placement_changes: Arc<AtomicU64>,
    /// Bindings (by uid): the `placement_changes` they were last scheduled against.
    refreshed: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The ResourceBindings (for `workloadAffinity` groups; none for cluster bindings).
    grouped: Option<Store<ResourceBinding>>,
    /// The clusters of the latest decisions written (`namespace/name` → resourceVersion,
    /// clusters): a group's peers as they are even before the watch brings them (upstream's
    /// "assigning bindings").
    decided: std::sync::Mutex<std::collections::HashMap<String, (u64, Vec<String>)>>,
    /// Held while a grouped workload is decided and written.
    group_turn: tokio::sync::Mutex<()>,
    /// PriorityBasedScheduling: the queue by priority, and preemption.
    priorities: bool,
    /// CustomizedClusterResourceModeling: modelled clusters are estimated by their models.
    modeling: bool,
    /// The bindings of the kind (a `Store<B>`), where preemption finds its candidates.
    store: Arc<dyn std::any::Any + Send + Sync>,
}

/// The `workloadAffinity` peers of a binding of `namespace`/`name` with `groups`: the clusters
/// of each scheduled workload of its affinity group, and those holding its anti-affinity group
/// (each peer as the newest of the cache and `decided` has it).
pub fn affinity_peers(
    namespace: &str,
    name: &str,
    groups: &karmada_api::work::WorkloadAffinityGroups,
    bindings: &[Arc<ResourceBinding>],
    decided: &std::collections::HashMap<String, (u64, Vec<String>)>,
) -> (Vec<Vec<String>>, std::collections::BTreeSet<String>) {
    let mut peers = Vec::new();
    let mut taken = std::collections::BTreeSet::new();
    for b in bindings {
        let (Some(ns), Some(n)) = (b.metadata.namespace.as_deref(), b.metadata.name.as_deref())
        else {
            continue;
        };
        if ns != namespace || n == name || b.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(theirs) = &b.spec.workload_affinity_groups else { continue };
        let cached_rv = b.metadata.resource_version.as_deref().and_then(|v| v.parse().ok());
        let clusters: Vec<String> = match decided.get(&format!("{ns}/{n}")) {
            Some((rv, clusters)) if Some(*rv) > cached_rv => clusters.clone(),
            _ => b.spec.clusters.iter().map(|c| c.name.clone()).collect(),
        };
        if clusters.is_empty() {
            continue;
        }
        if !groups.affinity_group.is_empty() && theirs.affinity_group == groups.affinity_group {
            peers.push(clusters.clone());
        }
        if !groups.anti_affinity_group.is_empty()
            && theirs.anti_affinity_group == groups.anti_affinity_group
        {
            taken.extend(clusters);
        }
    }
    (peers, taken)
}

/// Every cluster as the scheduler sees it, and each one's resourceVersion.
#[derive(Default)]
struct Snapshot {
    generation: u64,
    infos: Vec<scheduler::ClusterInfo>,
    versions: BTreeMap<String, String>,
}

impl Context {
    fn snapshot(&self) -> Arc<Snapshot> {
        // Read the counter first: the store is at least as new as the counter says.
        let generation = self.cluster_changes.load(Ordering::Acquire);
        if let Ok(cached) = self.snapshot.lock()
            && cached.generation == generation
            && generation != 0
        {
            return Arc::clone(&cached);
        }
        let state = self.clusters.state();
        let versions: BTreeMap<String, String> = state
            .iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        // Only the clusters that changed are converted again (a cluster's enabled-API set alone
        // is hundreds of strings; at 1,000 clusters their status updates kept a core busy).
        let infos = match self.infos.lock() {
            Ok(mut known) => {
                known.retain(|name, _| versions.contains_key(name));
                state
                    .iter()
                    .map(|c| {
                        let name = c.metadata.name.clone().unwrap_or_default();
                        let rv = versions.get(&name).cloned().unwrap_or_default();
                        match known.get(&name) {
                            Some((seen, info)) if *seen == rv => info.clone(),
                            _ => {
                                let info = cluster_info_with(c, self.modeling);
                                known.insert(name, (rv, info.clone()));
                                info
                            }
                        }
                    })
                    .collect()
            }
            Err(_) => state.iter().map(|c| cluster_info_with(c, self.modeling)).collect(),
        };
        let fresh = Arc::new(Snapshot { generation, infos, versions });
        if let Ok(mut cached) = self.snapshot.lock() {
            *cached = Arc::clone(&fresh);
        }
        fresh
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

async fn reconcile<B: Binding>(binding: Arc<B>, ctx: Arc<Context>) -> Result<Next, Error> {
    let spec = binding.spec();
    let scheduler_name =
        if spec.scheduler_name.is_empty() { SCHEDULER_NAME } else { spec.scheduler_name.as_str() };
    let suspended = spec.suspension.as_ref().and_then(|s| s.scheduling) == Some(true);
    if binding.meta().deletion_timestamp.is_some() {
        // Forget what was remembered of it (the maps would otherwise keep every binding ever).
        let uid = binding.meta().uid.clone().unwrap_or_default();
        if let Ok(mut refreshed) = ctx.refreshed.lock() {
            refreshed.remove(&uid);
        }
        if let Ok(mut tried) = ctx.tried.lock() {
            tried.remove(&uid);
        }
        if let Some(estimator) = &ctx.estimator {
            estimator.assumptions.release(&binding_key(binding.as_ref()));
        }
        ctx.in_flight.release(&binding_key(binding.as_ref()));
        return Ok(Next::Done);
    }
    let snapshot = ctx.snapshot();
    let own = binding_key(binding.as_ref());
    let healthy = crate::estimator::healthy(binding.status());
    ctx.in_flight.observe(&own, &healthy, &snapshot.versions);
    if let Some(estimator) = &ctx.estimator {
        estimator.assumptions.observe(&own, binding.status());
    }
    if scheduler_name != SCHEDULER_NAME || suspended {
        return Ok(Next::Done);
    }
    let applied = binding
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPLIED_PLACEMENT))
        .map(String::as_str);
    let key = binding.meta().uid.clone().unwrap_or_default();
    // A binding that did not fit is tried again once the clusters (or, with the estimator, the
    // members' nodes, pods or quotas) changed since its last try (capacity appeared, a node
    // became ready...), not on its own status writes.
    let attempt = (
        snapshot.generation,
        ctx.estimator.as_ref().map_or(0, |e| e.generation()),
        ctx.in_flight.sweep(&snapshot.versions, snapshot.generation),
    );
    // ... and once it changed itself (scaled down, its requests edited): what did not fit may.
    let changed = binding.status().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == "Scheduled"
                && c.observed_generation.is_some_and(|g| g < binding.meta().generation.unwrap_or(0))
        })
    });
    let retry = spec.clusters.is_empty()
        && unschedulable(binding.as_ref())
        && (changed || ctx.tried.lock().map(|t| t.get(&key) != Some(&attempt)).unwrap_or(true));
    // Whether a decision is due depends on the clusters' names only, so the cached snapshot
    // answers it; capacity (with in-flight promises deducted) is only needed to decide.
    let due = retry || needs_scheduling(spec, binding.status(), applied, &snapshot.infos);
    let Some(mut info) = binding_info(spec, binding.status()) else {
        return Ok(Next::Done);
    };
    // Workloads of groups are decided one at a time (each sees the one before).
    let _group_turn = match &spec.workload_affinity_groups {
        Some(_) => Some(ctx.group_turn.lock().await),
        None => None,
    };
    // A grouped workload that does not fit looks again in a while: its peers may have moved;
    // so does one the estimator judges (the members' facts change without the clusters), and
    // any while room is held in flight (it may end without a cluster event).
    let settled = if spec.workload_affinity_groups.is_some()
        || ctx.estimator.is_some()
        || ctx.in_flight.holding()
    {
        Next::After(Duration::from_secs(15))
    } else {
        Next::Done
    };
    if let (Some(groups), Some(store)) = (&spec.workload_affinity_groups, &ctx.grouped) {
        let bindings = store.state();
        let decided = ctx.decided.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (peers, taken) = affinity_peers(
            binding.meta().namespace.as_deref().unwrap_or_default(),
            binding.meta().name.as_deref().unwrap_or_default(),
            groups,
            &bindings,
            &decided,
        );
        drop(decided);
        (info.affinity_peers, info.anti_affinity_taken) = (peers, taken);
    }
    let duplicated = !info.placement.divides_replicas();
    if !due && (!duplicated || spec.clusters.is_empty()) {
        // One still waiting keeps looking every so often (`settled`): what may let it fit —
        // the members' facts, a group peer moving — sends it no event of its own.
        if spec.clusters.is_empty() && unschedulable(binding.as_ref()) {
            return Ok(settled);
        }
        return observe_generation(binding.as_ref(), &ctx).await;
    }
    let versions = &snapshot.versions;
    let mut clusters = snapshot.infos.clone();
    let priority = spec.schedule_priority.as_ref().map_or(0, |p| p.priority);
    ctx.in_flight.apply(&mut clusters, (versions, snapshot.generation), &own, priority);
    if let Some(estimator) = &ctx.estimator {
        info.estimates = estimator.estimates(&own, spec, info.multi_template());
    }
    if !due {
        // A Duplicated workload follows the clusters, as upstream schedules Duplicated bindings
        // on every cluster change: one that newly fits its placement (joined, relabelled,
        // untainted) gets it, one that no longer matches (relabelled, removed) loses it.
        // Taints do not take it away here (the filter ignores them on clusters it is on; the
        // taint manager evicts after the toleration).
        let changed = match scheduler::schedule(&info, &clusters, &ctx.plugins) {
            Ok(d) => changes_clusters(&spec.clusters, &d.clusters),
            // No cluster fits any more: the workload leaves (as upstream).
            Err(scheduler::Unschedulable::NoClusterFit { .. }) => true,
            Err(_) => false,
        };
        // Upstream schedules a Duplicated binding again on every cluster change, recording
        // the time even when the result stays: after a change of cluster labels, spec or
        // membership it is scheduled once more (lastScheduledTime moves).
        let placement_now = ctx.placement_changes.load(Ordering::Acquire);
        let stale = match ctx.refreshed.lock() {
            Ok(mut refreshed) => match refreshed.get(&key) {
                Some(seen) => *seen < placement_now,
                None => {
                    refreshed.insert(key.clone(), placement_now);
                    false
                }
            },
            Err(_) => false,
        };
        if !changed && !stale {
            return observe_generation(binding.as_ref(), &ctx).await;
        }
    }
    let name = binding.meta().name.clone().unwrap_or_default();
    let api = crate::binding_api::<B>(&ctx.client, binding.meta().namespace.as_deref());
    let placement =
        serde_json::to_string(spec.placement.as_ref().expect("checked by binding_info"))
            .unwrap_or_default();
    let generation = binding.meta().generation.unwrap_or(0);
    let _span = tracing::info_span!("schedule", binding = %name).entered();
    let mut short_of_room = false;
    let (condition, clusters_out, affinity) =
        match scheduler::schedule(&info, &clusters, &ctx.plugins) {
            Ok(decision) => {
                ctx.in_flight.promise(&own, &decision.clusters, &spec.clusters, &info, &healthy);
                if let Some(estimator) = &ctx.estimator {
                    estimator.assumptions.assume(&own, spec, binding.status(), &decision.clusters);
                }
                let message = "Binding has been scheduled successfully.".to_owned();
                (
                    condition("True", "Success", &message, generation),
                    Some(decision.clusters),
                    decision.affinity_name,
                )
            }
            Err(e) => {
                // No cluster passes the filters at all (upstream's FitError): the result is
                // cleared, so the workload leaves clusters that no longer fit (upstream
                // patches an empty result); not enough room keeps the current one.
                let no_fit = matches!(e, scheduler::Unschedulable::NoClusterFit { .. });
                short_of_room = !no_fit;
                let cleared = no_fit && !spec.clusters.is_empty();
                (
                    condition("False", e.reason(), &e.message(), generation),
                    cleared.then(Vec::new),
                    None,
                )
            }
        };
    drop(_span);
    let succeeded = condition.status == "True";
    // Short of room with a priority: lower-priority placements may make way; then it looks
    // again soon (its room appears as their pods go).
    let mut settled = settled;
    if short_of_room
        && ctx.priorities
        && spec.schedule_priority.is_some()
        && preempt(binding.as_ref(), &info, &clusters, &ctx).await
    {
        settled = Next::After(PREEMPTION_RETRY);
    }
    if let Ok(mut tried) = ctx.tried.lock() {
        if succeeded {
            tried.remove(&key);
        } else {
            tried.insert(key.clone(), attempt);
        }
    }
    // Still not fitting, for the same reason: nothing to write.
    let same_failure = clusters_out.is_none()
        && applied == Some(placement.as_str())
        && binding.status().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Scheduled"
                    && c.status == condition.status
                    && c.reason == condition.reason
                    && c.message == condition.message
                    && c.observed_generation == condition.observed_generation
            })
        });
    if same_failure {
        return Ok(settled);
    }
    // One write for the decision (spec + annotation), one for the condition.
    let mut patch = json!({"metadata": {"annotations": {APPLIED_PLACEMENT: placement}}});
    if let Some(clusters) = &clusters_out {
        patch["spec"] = json!({"clusters": clusters});
    }
    let written = match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(written) => written,
        // A FederatedResourceQuota of the namespace has no room for the decision: the binding
        // keeps its clusters, says why, and is tried again in a while (quota may be freed).
        Err(kube::Error::Api(e)) if e.code == 403 && e.reason == QUOTA_EXCEEDED => {
            let mut failed = condition.clone();
            (failed.status, failed.reason, failed.message) =
                ("False".into(), QUOTA_EXCEEDED.into(), e.message.clone());
            let failed = serde_json::to_value(&failed).unwrap_or_default();
            write_scheduled(&api, &name, binding.as_ref(), failed, &[]).await?;
            ctx.events.record_binding(binding.as_ref(), Reason::ScheduleBindingFailed, &e.message);
            return Ok(Next::After(QUOTA_RETRY));
        }
        Err(e) => return Err(e.into()),
    };
    if spec.workload_affinity_groups.is_some()
        && let (Some(rv), Some(clusters)) = (
            written.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()),
            &clusters_out,
        )
        && let Ok(mut decided) = ctx.decided.lock()
    {
        let key = format!(
            "{}/{}",
            written.metadata.namespace.as_deref().unwrap_or_default(),
            written.metadata.name.as_deref().unwrap_or_default()
        );
        decided.retain(|_, (at, _)| *at + 100_000 > rv);
        decided.insert(key, (rv, clusters.iter().map(|c| c.name.clone()).collect()));
    }
    // The scheduler has observed the generation its own write made (as upstream, whose next
    // pass records it), so `schedulerObservedGeneration == generation` means scheduled.
    let generation = written.metadata.generation.unwrap_or(generation);
    let mut condition = condition;
    condition.observed_generation = Some(generation);
    if let Ok(mut refreshed) = ctx.refreshed.lock() {
        refreshed.insert(key.clone(), ctx.placement_changes.load(Ordering::Acquire));
    }
    // The condition and the scheduler's status fields, without touching other controllers'
    // conditions; a guard failure (the status changed since it was read) re-reads and retries.
    let mut fields = vec![("schedulerObservedGeneration", json!(generation))];
    if succeeded {
        fields.push(("lastScheduledTime", json!(crate::now_rfc3339())));
    }
    if let Some(a) = affinity {
        fields.push(("schedulerObservingAffinityName", json!(a)));
    }
    let condition = serde_json::to_value(&condition).unwrap_or_default();
    write_scheduled(&api, &name, binding.as_ref(), condition.clone(), &fields).await?;
    match clusters_out.as_ref().filter(|_| succeeded) {
        Some(clusters) => ctx.events.record_binding(
            binding.as_ref(),
            Reason::ScheduleBindingSucceed,
            &message::schedule_binding_succeed(
                clusters.iter().map(|c| (c.name.as_str(), c.replicas)),
            ),
        ),
        None => {
            let message =
                condition.get("message").and_then(serde_json::Value::as_str).unwrap_or_default();
            ctx.events.record_binding(binding.as_ref(), Reason::ScheduleBindingFailed, message);
            return Ok(settled);
        }
    }
    Ok(Next::Done)
}

/// How soon a binding that preempted others looks again.
const PREEMPTION_RETRY: Duration = Duration::from_secs(2);

/// Releases the placements of the fewest lower-priority bindings whose room lets `binding` fit
/// (`scheduler::preempt`); whether it is waiting for room so made (now or recently).
async fn preempt<B: Binding>(
    binding: &B,
    info: &scheduler::BindingInfo,
    clusters: &[scheduler::ClusterInfo],
    ctx: &Context,
) -> bool {
    let key = binding_key(binding);
    if ctx.in_flight.nominated(&key) {
        return true;
    }
    let Some(store) = ctx.store.downcast_ref::<Store<B>>() else { return false };
    let priority = binding.spec().schedule_priority.as_ref().map_or(0, |p| p.priority);
    let bindings = store.state();
    let (holders, candidates): (Vec<&Arc<B>>, Vec<scheduler::preempt::Candidate>) = bindings
        .iter()
        .filter(|b| b.meta().deletion_timestamp.is_none() && !b.spec().clusters.is_empty())
        .filter_map(|b| {
            let theirs = b.spec().schedule_priority.as_ref().map_or(0, |p| p.priority);
            let candidate_key = binding_key(b.as_ref());
            if theirs >= priority || candidate_key == key {
                return None;
            }
            let info = binding_info(b.spec(), b.status())?;
            Some((
                b,
                scheduler::preempt::Candidate {
                    in_flight: ctx.in_flight.held_by(&candidate_key),
                    key: candidate_key,
                    priority: theirs,
                    binding: info,
                },
            ))
        })
        .unzip();
    let Some((chosen, decision)) =
        scheduler::preempt::victims(info, priority, clusters, &candidates, &ctx.plugins)
    else {
        return false;
    };
    let mut all_released = true;
    for i in chosen {
        let victim = holders[i];
        let name = victim.meta().name.clone().unwrap_or_default();
        let api = crate::binding_api::<B>(&ctx.client, victim.meta().namespace.as_deref());
        // Guarded by the version it was chosen from: a victim that changed meanwhile is left.
        let patch = json!({
            "metadata": {"resourceVersion": victim.meta().resource_version},
            "spec": {"clusters": []},
        });
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                // Its room is given back: what it held in flight too.
                ctx.in_flight.release(&binding_key(victim.as_ref()));
                let released: Vec<&str> =
                    victim.spec().clusters.iter().map(|c| c.name.as_str()).collect();
                let message =
                    message::binding_preempted(key.trim_start_matches('/'), priority, &released);
                tracing::info!(binding = %name, %message, "preempted");
                ctx.events.record_binding(victim.as_ref(), Reason::Preempted, &message);
            }
            Err(e) => {
                // Chosen again on the next try (soon), from what it is then.
                tracing::debug!(binding = %name, error = %e, "preemption skipped");
                all_released = false;
            }
        }
    }
    if all_released {
        ctx.in_flight.nominate(&key, priority, &decision.clusters, info);
    }
    true
}

/// A binding's `namespace/name` (`/name` for a cluster binding), as assumptions are keyed.
fn binding_key<B: Binding>(binding: &B) -> String {
    format!(
        "{}/{}",
        binding.meta().namespace.as_deref().unwrap_or_default(),
        binding.meta().name.as_deref().unwrap_or_default()
    )
}

/// Writes the `Scheduled` condition and the scheduler's status `fields` without touching other
/// controllers' conditions; a guard failure (the status changed since it was read) re-reads
/// and retries.
async fn write_scheduled<B: Binding>(
    api: &Api<kube::api::DynamicObject>,
    name: &str,
    binding: &B,
    condition: serde_json::Value,
    fields: &[(&str, serde_json::Value)],
) -> Result<(), kube::Error> {
    let mut read = binding.status().map(|s| serde_json::to_value(s).unwrap_or_default());
    for _ in 0..5 {
        let ops = crate::status_ops(read.as_ref(), condition.clone(), fields);
        if crate::patch_status_ops(api, name, ops).await?.is_some() {
            break;
        }
        read = api.get(name).await?.data.get("status").cloned();
    }
    Ok(())
}

/// A binding that needs no decision: its generation is recorded as observed when the last
/// decision succeeded and the binding changed since in ways scheduling does not look at (as
/// upstream does), so `schedulerObservedGeneration == generation` keeps meaning "scheduled".
async fn observe_generation<B: Binding>(binding: &B, ctx: &Context) -> Result<Next, Error> {
    let generation = binding.meta().generation.unwrap_or(0);
    let Some(status) = binding.status() else { return Ok(Next::Done) };
    let scheduled = status.conditions.iter().any(|c| c.type_ == "Scheduled" && c.status == "True");
    if !scheduled || status.scheduler_observed_generation == generation || generation == 0 {
        return Ok(Next::Done);
    }
    let api = crate::binding_api::<B>(&ctx.client, binding.meta().namespace.as_deref());
    let name = binding.meta().name.clone().unwrap_or_default();
    let patch = json!({"status": {"schedulerObservedGeneration": generation}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(Next::Done)
}

/// The reason of the Status a binding write refused for a FederatedResourceQuota carries, and
/// of the `Scheduled` condition it leads to (upstream's `QuotaExceeded`).
const QUOTA_EXCEEDED: &str = "QuotaExceeded";
/// How soon a decision refused for quota is tried again.
const QUOTA_RETRY: Duration = Duration::from_secs(10);

fn condition(status: &str, reason: &str, message: &str, generation: i64) -> Condition {
    Condition {
        type_: "Scheduled".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Time(crate::now_rfc3339().parse().unwrap_or_default()),
        observed_generation: Some(generation),
    }
}

/// When a failed reconcile is tried again: a lost write race at once, anything else in a
/// second (logged).
fn error_policy(error: &Error) -> Next {
    if matches!(error, Error::Kube(e) if crate::is_conflict(e)) {
        tracing::debug!(%error, "scheduling: write conflict, retrying");
        Next::After(Duration::from_millis(50))
    } else {
        tracing::warn!(%error, "scheduling reconcile failed");
        Next::After(Duration::from_secs(1))
    }
}

/// Whether a decision places the workload on another set of clusters than the current one.
pub fn changes_clusters(current: &[TargetCluster], decided: &[TargetCluster]) -> bool {
    decided.len() != current.len()
        || decided.iter().any(|d| !current.iter().any(|c| c.name == d.name))
}

/// What a cluster change means for the bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// Membership, labels, spec (taints, location), readiness or served APIs changed: every
    /// binding gets another look.
    All,
    /// Only the status otherwise (resource summary, heartbeat): bindings not yet scheduled
    /// get another look, as capacity may now fit them.
    Unscheduled,
}

/// Classifies cluster changes by comparing what placement depends on with the last view; the
/// second value says whether the cluster's labels, spec or membership changed (not only its
/// readiness or APIs).
fn classify(seen: &mut BTreeMap<String, (String, String)>, cluster: &Cluster) -> (Signal, bool) {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let status = cluster.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    let apis = status.map(|s| serde_json::to_string(&s.api_enablements).unwrap_or_default());
    let placement = format!(
        "{:?}|{}|{}",
        cluster.metadata.labels,
        serde_json::to_string(&cluster.spec).unwrap_or_default(),
        cluster.metadata.deletion_timestamp.is_some(),
    );
    let health = format!("{ready:?}|{apis:?}");
    let now = (placement, health);
    match seen.insert(name, now.clone()) {
        Some(before) if before == now => (Signal::Unscheduled, false),
        Some(before) => (Signal::All, before.0 != now.0),
        None => (Signal::All, true),
    }
}

/// Whether the scheduler tried this binding and could not place it.
fn unschedulable<B: Binding>(binding: &B) -> bool {
    binding
        .status()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Scheduled" && c.status != "True"))
}

async fn run_for<B: Binding>(
    client: kube::Client,
    clusters: Store<Cluster>,
    cluster_changes: impl futures::Stream<Item = Signal> + Send + 'static,
    plugins: scheduler::Plugins,
    in_flight: Arc<InFlight>,
    estimator: Option<Arc<crate::estimator::Estimator>>,
    cluster_generation: Arc<AtomicU64>,
    placement_changes: Arc<AtomicU64>,
    features: karmada_api::features::FeatureGates,
) {
    use karmada_api::features::Feature;
    let priorities = features.enabled(Feature::PriorityBasedScheduling);
    let modeling = features.enabled(Feature::CustomizedClusterResourceModeling);
    let api: Api<B> = Api::all(client.clone());
    let (bindings, changes) = crate::lean_watch(api);
    // ResourceBindings carry workloadAffinity groups; the scheduler reads their peers here.
    let grouped =
        (&bindings as &dyn std::any::Any).downcast_ref::<Store<ResourceBinding>>().cloned();
    let ctx = Arc::new(Context {
        events: crate::events::Events::start(client.clone(), "karmada-scheduler"),
        client,
        clusters,
        plugins,
        in_flight,
        estimator,
        cluster_changes: cluster_generation,
        snapshot: std::sync::Mutex::default(),
        infos: std::sync::Mutex::default(),
        tried: std::sync::Mutex::default(),
        placement_changes,
        refreshed: std::sync::Mutex::default(),
        grouped,
        decided: std::sync::Mutex::default(),
        group_turn: tokio::sync::Mutex::default(),
        priorities,
        modeling,
        store: Arc::new(bindings.clone()),
    });
    // The queue: by schedulePriority with PriorityBasedScheduling (upstream's priority queue),
    // first come first served otherwise.
    let queue: Arc<Queue<ObjectRef<B>>> = Arc::default();
    let priority = {
        let bindings = bindings.clone();
        move |key: &ObjectRef<B>| -> i32 {
            if !priorities {
                return 0;
            }
            bindings
                .get(key)
                .and_then(|b| b.spec().schedule_priority.as_ref().map(|p| p.priority))
                .unwrap_or(0)
        }
    };
    let router = {
        let (queue, bindings, priority) = (Arc::clone(&queue), bindings.clone(), priority.clone());
        tokio::spawn(cluster_changes.for_each(move |signal| {
            // Every binding on a placement-relevant change; on a capacity-only one, only the
            // bindings that were tried and did not fit (those never tried are already queued by
            // their own watch event; re-queueing them on every cluster status change made the
            // scheduler's work grow with clusters × pending bindings during a burst).
            for b in bindings.state() {
                if signal == Signal::All || unschedulable(b.as_ref()) {
                    let key = ObjectRef::from_obj(b.as_ref());
                    let p = priority(&key);
                    queue.push(key, p);
                }
            }
            async {}
        }))
    };
    let feeder = {
        let (queue, priority) = (Arc::clone(&queue), priority.clone());
        tokio::spawn(changes.for_each(move |changed| {
            if let Ok(b) = changed {
                let key = ObjectRef::from_obj(&b);
                let p = priority(&key);
                queue.push(key, p);
            }
            async {}
        }))
    };
    let workers: Vec<_> = (0..usize::from(crate::CONCURRENCY))
        .map(|_| {
            let (queue, bindings, ctx, priority) =
                (Arc::clone(&queue), bindings.clone(), Arc::clone(&ctx), priority.clone());
            tokio::spawn(async move {
                loop {
                    let key = queue.pop().await;
                    let next = match bindings.get(&key) {
                        Some(binding) => match reconcile::<B>(binding, Arc::clone(&ctx)).await {
                            Ok(next) => next,
                            Err(e) => error_policy(&e),
                        },
                        // Gone: nothing to schedule.
                        None => Next::Done,
                    };
                    queue.done(key, next, &priority);
                }
            })
        })
        .collect();
    // Runs until the watch ends (never, short of the process stopping).
    let _ = feeder.await;
    router.abort();
    for worker in workers {
        worker.abort();
    }
}

/// How the scheduler runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub plugins: scheduler::Plugins,
    /// Estimate from the members' nodes and quotas too (`--enable-scheduler-estimator`).
    pub estimator: bool,
    pub features: karmada_api::features::FeatureGates,
}

/// Runs the scheduler with the default plugins until the future is dropped.
pub async fn run(client: kube::Client, plugins: scheduler::Plugins) -> anyhow::Result<()> {
    run_with(client, Options { plugins, ..Options::default() }).await
}

/// Runs the scheduler until the future is dropped.
pub async fn run_with(client: kube::Client, options: Options) -> anyhow::Result<()> {
    let plugins = options.plugins;
    let (reader, writer) = reflector::store::<Cluster>();
    let clusters: Api<Cluster> = Api::all(client.clone());
    let (tx, _) = tokio::sync::broadcast::channel::<Signal>(256);
    let tx_clusters = tx.clone();
    let mut seen = BTreeMap::new();
    let cluster_changes = Arc::new(AtomicU64::new(1));
    let bump = Arc::clone(&cluster_changes);
    let placement_changes = Arc::new(AtomicU64::new(1));
    let bump_placement = Arc::clone(&placement_changes);
    let cluster_stream = tokio::spawn(
        watcher::watcher(clusters, watcher::Config::default())
            .default_backoff()
            .modify(crate::lean)
            .reflect(writer)
            .touched_objects()
            .for_each(move |c| {
                bump.fetch_add(1, Ordering::AcqRel);
                let (signal, placement) = match c {
                    Ok(c) => classify(&mut seen, &c),
                    Err(_) => (Signal::All, true),
                };
                if placement {
                    bump_placement.fetch_add(1, Ordering::AcqRel);
                }
                let _ = tx_clusters.send(signal);
                async {}
            }),
    );
    let _ = reader.wait_until_ready().await;
    let changes = |tx: &tokio::sync::broadcast::Sender<Signal>| {
        futures::stream::unfold(tx.subscribe(), |mut rx| async move {
            // A lagging receiver may have missed anything: look at everything.
            match rx.recv().await {
                Ok(signal) => Some((signal, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((Signal::All, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        })
    };
    let in_flight = Arc::new(InFlight::default());
    let estimator = options.estimator.then(|| {
        Arc::new(crate::estimator::Estimator::new(
            client.clone(),
            options.features.enabled(karmada_api::features::Feature::ResourceQuotaEstimate),
        ))
    });
    // The estimator follows the clusters: a watch of each member's nodes, pods and quotas.
    let following = estimator.as_ref().map(|estimator| {
        let (estimator, clusters) = (Arc::clone(estimator), reader.clone());
        let mut signals = changes(&tx).boxed();
        tokio::spawn(async move {
            loop {
                estimator.follow_clusters(&clusters.state()).await;
                if signals.next().await.is_none() {
                    break;
                }
                // Cluster status changes come in bursts: look once per burst.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let namespaced = run_for::<ResourceBinding>(
        client.clone(),
        reader.clone(),
        changes(&tx),
        plugins.clone(),
        Arc::clone(&in_flight),
        estimator.clone(),
        Arc::clone(&cluster_changes),
        Arc::clone(&placement_changes),
        options.features.clone(),
    );
    let cluster_scoped = run_for::<ClusterResourceBinding>(
        client,
        reader,
        changes(&tx),
        plugins,
        in_flight,
        estimator,
        cluster_changes,
        placement_changes,
        options.features,
    );
    tokio::join!(namespaced, cluster_scoped);
    cluster_stream.abort();
    if let Some(task) = following {
        task.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_peers_come_from_the_group_in_the_namespace_newest_first() {
        let rb = |ns: &str, name: &str, rv: &str, groups: serde_json::Value, clusters: &[&str]| {
            let clusters: Vec<serde_json::Value> =
                clusters.iter().map(|c| json!({"name": c, "replicas": 1})).collect();
            Arc::new(
                serde_json::from_value::<ResourceBinding>(json!({
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
                    "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "workloadAffinityGroups": groups, "clusters": clusters}}))
                .unwrap(),
            )
        };
        let mine: karmada_api::work::WorkloadAffinityGroups =
            serde_json::from_value(json!({"affinityGroup": "g=a", "antiAffinityGroup": "ha=x"}))
                .unwrap();
        let bindings = vec![
            rb("ns", "self", "1", json!({"affinityGroup": "g=a"}), &["m9"]),
            rb("ns", "peer", "5", json!({"affinityGroup": "g=a"}), &["m1", "m2"]),
            rb("ns", "unscheduled", "5", json!({"affinityGroup": "g=a"}), &[]),
            rb("other", "elsewhere", "5", json!({"affinityGroup": "g=a"}), &["m3"]),
            rb("ns", "rival", "5", json!({"antiAffinityGroup": "ha=x"}), &["m1"]),
            rb("ns", "unrelated", "5", json!({"antiAffinityGroup": "ha=y"}), &["m2"]),
        ];
        // The scheduler's own newer decision for the rival wins over the cache.
        let decided = [("ns/rival".to_owned(), (9, vec!["m4".to_owned()]))].into_iter().collect();
        let (peers, taken) = affinity_peers("ns", "self", &mine, &bindings, &decided);
        assert_eq!(peers, vec![vec!["m1".to_owned(), "m2".to_owned()]]);
        assert_eq!(taken.into_iter().collect::<Vec<_>>(), ["m4"]);
    }

    #[test]
    fn scheduling_is_due_only_when_something_changed() {
        let spec: ResourceBindingSpec = serde_json::from_value(json!({
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "namespace": "default"},
            "replicas": 2, "placement": {"clusterAffinity": {"clusterNames": ["m1"]}},
            "clusters": [{"name": "m1", "replicas": 2}]
        }))
        .unwrap();
        let applied = serde_json::to_string(spec.placement.as_ref().unwrap()).unwrap();
        let clusters = vec![scheduler::ClusterInfo { name: "m1".into(), ..Default::default() }];
        assert!(!needs_scheduling(&spec, None, Some(&applied), &clusters));
        assert!(needs_scheduling(&spec, None, None, &clusters), "placement never applied");
        let mut scaled = spec.clone();
        scaled.replicas = 3;
        assert!(needs_scheduling(&scaled, None, Some(&applied), &clusters), "replicas changed");
        assert!(needs_scheduling(&spec, None, Some(&applied), &[]), "the target cluster left");
        let mut rescheduled = spec.clone();
        rescheduled.reschedule_triggered_at = Some("2026-01-02T00:00:00Z".into());
        let status: ResourceBindingStatus =
            serde_json::from_value(json!({"lastScheduledTime": "2026-01-01T00:00:00Z"})).unwrap();
        assert!(
            needs_scheduling(&rescheduled, Some(&status), Some(&applied), &clusters),
            "reschedule requested"
        );
    }

    #[test]
    fn a_modelled_cluster_is_seen_by_its_grades_when_modelling_is_on() {
        let cluster: Cluster = serde_json::from_value(json!({"metadata": {"name": "m1"},
            "spec": {"resourceModels": [
                {"grade": 1, "ranges": [{"name": "cpu", "min": "4", "max": "9223372036854775807"}]},
                {"grade": 0, "ranges": [{"name": "cpu", "min": "0", "max": "4"}]}]},
            "status": {"resourceSummary": {"allocatable": {"cpu": "24", "pods": "330"},
                "allocatableModelings": [{"grade": 0, "count": 1}, {"grade": 1, "count": 2}]}}}))
        .unwrap();
        let grades = |modeling: bool| {
            let info = cluster_info_with(&cluster, modeling);
            info.capacity
                .map(|c| c.models.iter().map(|g| (g.minimum["cpu"], g.nodes)).collect::<Vec<_>>())
        };
        assert_eq!(grades(true), Some(vec![(0, 1), (4000, 2)]), "lowest grade first");
        assert_eq!(grades(false), Some(vec![]));
        // Without counts (a status from before models), the summary decides.
        let mut uncounted = cluster.clone();
        if let Some(s) = uncounted.status.as_mut().and_then(|s| s.resource_summary.as_mut()) {
            s.allocatable_modelings.clear();
        }
        assert!(cluster_info_with(&uncounted, true).capacity.unwrap().models.is_empty());
    }

    #[test]
    fn only_placement_relevant_cluster_changes_rescan_everything() {
        let cluster = |labels: serde_json::Value, cpu: &str| -> Cluster {
            serde_json::from_value(json!({"metadata": {"name": "m1", "labels": labels},
                "spec": {"apiEndpoint": "https://x"},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                    "resourceSummary": {"allocatable": {"cpu": cpu}}}}))
            .unwrap()
        };
        let mut seen = BTreeMap::new();
        assert_eq!(
            classify(&mut seen, &cluster(json!({"a": "1"}), "8")),
            (Signal::All, true),
            "new"
        );
        assert_eq!(
            classify(&mut seen, &cluster(json!({"a": "1"}), "4")),
            (Signal::Unscheduled, false),
            "capacity only"
        );
        assert_eq!(
            classify(&mut seen, &cluster(json!({"a": "2"}), "4")),
            (Signal::All, true),
            "labels"
        );
        let mut not_ready = cluster(json!({"a": "2"}), "4");
        not_ready.status.as_mut().unwrap().conditions[0].status = "False".into();
        assert_eq!(
            classify(&mut seen, &not_ready),
            (Signal::All, false),
            "readiness: every binding looks again, placement unchanged"
        );
    }

    #[test]
    fn a_decision_changes_with_the_set_of_clusters() {
        let t = |n: &str| TargetCluster::new(n, 2);
        assert!(changes_clusters(&[t("m1")], &[t("m1"), t("m2")]));
        assert!(
            changes_clusters(&[t("m1"), t("m2")], &[t("m1")]),
            "a cluster that stopped fitting"
        );
        assert!(!changes_clusters(&[t("m1")], &[t("m1")]));
        assert!(!changes_clusters(&[t("m1"), t("m2")], &[t("m2"), t("m1")]), "order aside");
    }
}
