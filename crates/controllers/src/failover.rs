//! Cluster failover: ClusterTaintPolicies taint clusters whose conditions match (e.g. `Ready`
//! False or Unknown → `cluster.karmada.io/not-ready:NoExecute`), and the taint manager evicts
//! bindings from clusters with a NoExecute taint their placement does not tolerate (after
//! `tolerationSeconds` when it tolerates it for a while): the cluster leaves `spec.clusters`
//! and a graceful eviction task (reason `TaintUntolerated`) records it, so the scheduler places
//! the replicas elsewhere while the binding controller keeps the old cluster's Work until the
//! new placement is healthy or the grace period ends (`purgeMode` Gracefully), removes it at
//! once (Directly) or keeps it (Never). Every eviction is an Event on the binding, and
//! evictions are rate-limited so one failing cluster cannot stampede the rest. Application
//! failover (`failover.application`) evicts the same way from a cluster where the workload has
//! stayed unhealthy longer than `decisionConditions.tolerationSeconds`.

use karmada_api::cluster::TaintEffect;
use karmada_api::events::{Reason, message};
use karmada_api::policy::PurgeMode;
use karmada_api::policy::{
    ClusterTaintPolicy, ClusterTaintPolicySpec, MatchCondition, MatchConditionOperator,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use karmada_api::cluster::{Cluster, Taint};
use karmada_api::work::{ClusterResourceBinding, ResourceBinding};
use kube::api::{Api, ApiResource, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::Binding;

/// The binding condition recording the latest eviction and why.
pub const EVICTED_CONDITION: &str = "Evicted";

/// What a ClusterTaintPolicy asks for a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaintAction {
    Add,
    Remove,
    Keep,
}

/// Whether every matcher (`conditionType`, `operator` In|NotIn, `statusValues`) holds; an
/// empty list never matches.
fn conditions_match(matchers: &[MatchCondition], conditions: &[Condition]) -> bool {
    !matchers.is_empty()
        && matchers.iter().all(|m| {
            let status =
                conditions.iter().find(|c| c.type_ == m.condition_type).map(|c| c.status.as_str());
            let inside = status.is_some_and(|s| m.status_values.iter().any(|v| v == s));
            match m.operator {
                MatchConditionOperator::NotIn => status.is_some() && !inside,
                MatchConditionOperator::In => inside,
            }
        })
}

/// A policy's decision for a cluster with these conditions.
pub fn taint_action(spec: &ClusterTaintPolicySpec, conditions: &[Condition]) -> TaintAction {
    if conditions_match(&spec.add_on_conditions, conditions) {
        TaintAction::Add
    } else if conditions_match(&spec.remove_on_conditions, conditions) {
        TaintAction::Remove
    } else {
        TaintAction::Keep
    }
}

/// The taints a cluster should have under the ClusterTaintPolicies that target it, applied in
/// order to its current taints (`now` stamps a NoExecute taint added now).
pub fn planned_taints(
    cluster: &Cluster,
    policies: &[&ClusterTaintPolicy],
    now: &str,
) -> Vec<Taint> {
    let conditions = cluster.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let info = crate::scheduling::cluster_info(cluster);
    let mut taints = cluster.spec.taints.clone();
    for policy in policies {
        let spec = &policy.spec;
        if spec
            .target_clusters
            .as_ref()
            .is_some_and(|a| !scheduler::filter::matches_affinity(a, &info))
        {
            continue;
        }
        let policy_taints: Vec<Taint> = spec
            .taints
            .iter()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
                time_added: None,
            })
            .collect();
        taints = apply_taints(&taints, &policy_taints, taint_action(spec, conditions), now);
    }
    taints
}

/// The cluster's taints after adding or removing a policy's taints (matched by key and effect;
/// NoExecute taints get `timeAdded`).
pub fn apply_taints(
    current: &[Taint],
    policy: &[Taint],
    action: TaintAction,
    now: &str,
) -> Vec<Taint> {
    let same = |a: &Taint, b: &Taint| a.key == b.key && a.effect == b.effect;
    let mut out = current.to_vec();
    match action {
        TaintAction::Keep => {}
        TaintAction::Remove => out.retain(|t| !policy.iter().any(|p| same(p, t))),
        TaintAction::Add => {
            for p in policy {
                if !out.iter().any(|t| same(p, t)) {
                    let mut t = p.clone();
                    if t.effect == TaintEffect::NoExecute && t.time_added.is_none() {
                        t.time_added = Some(now.to_owned());
                    }
                    out.push(t);
                }
            }
        }
    }
    out
}

/// When a binding must leave a cluster with these taints (seconds since the epoch): `Some(0)`
/// at once for an untolerated NoExecute taint, the taint's time plus `tolerationSeconds` for
/// one tolerated for a while, `None` when every NoExecute taint is tolerated for good.
pub fn eviction_due(taints: &[Taint], tolerations: &[Toleration]) -> Option<i64> {
    taints
        .iter()
        .filter(|t| t.effect == TaintEffect::NoExecute)
        .filter_map(|t| {
            let matching: Vec<&Toleration> = tolerations
                .iter()
                .filter(|tol| scheduler::filter::tolerated(std::slice::from_ref(*tol), t))
                .collect();
            if matching.is_empty() {
                return Some(0);
            }
            if matching.iter().any(|tol| tol.toleration_seconds.is_none()) {
                return None;
            }
            let seconds = matching.iter().filter_map(|tol| tol.toleration_seconds).max()?;
            let added =
                t.time_added.as_deref().and_then(apimachinery::time::parse_rfc3339).unwrap_or(0);
            Some(added + seconds)
        })
        .min()
}

/// The API resource of ClusterTaintPolicies.
pub fn taint_policy_resource() -> ApiResource {
    ApiResource::erase::<ClusterTaintPolicy>(&())
}

/// Keeps every cluster's taints in step with the ClusterTaintPolicies.
/// Runs the ClusterTaintPolicy controller (`clustertaintpolicy`) until the future is dropped.
pub async fn run_taint_policies(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let notify = Arc::new(Notify::new());
    let (policies, writer) = reflector::store::<ClusterTaintPolicy>();
    let n = Arc::clone(&notify);
    let policy_task = tokio::spawn(
        watcher::watcher(
            Api::<ClusterTaintPolicy>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(crate::lean)
        .reflect(writer)
        .for_each(move |_| {
            n.notify_one();
            async {}
        }),
    );
    let clusters = caches.clusters.store();
    let cluster_task = caches.clusters.notify_on_change(&notify);
    let _ = tokio::join!(policies.wait_until_ready(), caches.clusters.ready());
    let api: Api<Cluster> = Api::all(client.clone());
    let events = crate::events::Events::start(client.clone(), "cluster-taint-policy-controller");
    loop {
        let policy_list = policies.state();
        for cluster in clusters.state() {
            if cluster.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let policies: Vec<&ClusterTaintPolicy> =
                policy_list.iter().map(AsRef::as_ref).collect();
            let taints = planned_taints(&cluster, &policies, &crate::now_rfc3339());
            if taints != cluster.spec.taints {
                let name = cluster.metadata.name.clone().unwrap_or_default();
                tracing::info!(cluster = %name, ?taints, "cluster taints updated by ClusterTaintPolicy");
                let patch = json!({"metadata": {"resourceVersion": cluster.metadata.resource_version},
                    "spec": {"taints": taints}});
                let regarding = crate::events::reference_of(cluster.as_ref());
                match api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    Ok(_) => events.record(
                        regarding,
                        Reason::TaintClusterSucceed,
                        message::cluster_taints_updated(&name, &message::taints(&taints)),
                    ),
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot taint cluster");
                        events.record(regarding, Reason::TaintClusterFailed, e.to_string());
                    }
                }
            }
        }
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        if policy_task.is_finished() || cluster_task.is_finished() {
            anyhow::bail!("a ClusterTaintPolicy watch stopped");
        }
    }
}

struct Context {
    client: kube::Client,
    clusters: Store<Cluster>,
    events: crate::events::Events,
    /// Evictions in the current one-second window (rate limit).
    window: Mutex<(Instant, u32)>,
    per_second: u32,
    /// Since when (seconds since the epoch) a workload has been unhealthy in a cluster, by
    /// `namespace/binding@cluster`.
    unhealthy: Mutex<HashMap<String, i64>>,
    parts: Parts,
}

impl Context {
    /// Remembers since when the workload has been unhealthy in each of the binding's clusters
    /// (forgetting clusters where it is healthy again) and returns that memory for the binding.
    /// Only bindings with application failover (when it is on) are followed.
    fn track_health(
        &self,
        binding_key: &str,
        spec: &karmada_api::work::ResourceBindingSpec,
        status: Option<&karmada_api::work::ResourceBindingStatus>,
        now: i64,
    ) -> HashMap<String, i64> {
        let followed = self.parts.application
            && spec.failover.as_ref().is_some_and(|f| f.application.is_some());
        let Ok(mut memory) = self.unhealthy.lock() else { return HashMap::new() };
        let mut since = HashMap::new();
        for target in &spec.clusters {
            let key = format!("{binding_key}@{}", target.name);
            let unhealthy = status.is_some_and(|s| {
                s.aggregated_status
                    .iter()
                    .any(|i| i.cluster_name == target.name && i.health == "Unhealthy")
            });
            if followed && unhealthy {
                since.insert(target.name.clone(), *memory.entry(key).or_insert(now));
            } else {
                memory.remove(&key);
            }
        }
        since
    }

    /// Takes an eviction token; false when this second's budget is spent.
    fn allow(&self) -> bool {
        let Ok(mut w) = self.window.lock() else { return false };
        take_token(&mut w, self.per_second, Instant::now())
    }
}

/// A fixed one-second window: at most `per_second` tokens per window.
fn take_token(window: &mut (Instant, u32), per_second: u32, now: Instant) -> bool {
    if now.duration_since(window.0) >= Duration::from_secs(1) {
        *window = (now, 0);
    }
    if window.1 >= per_second {
        return false;
    }
    window.1 += 1;
    true
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// One cluster a binding must leave, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Eviction {
    pub target: karmada_api::work::TargetCluster,
    pub preserved: std::collections::BTreeMap<String, String>,
    pub reason: &'static str,
    pub message: String,
    pub purge_mode: PurgeMode,
    pub grace_period_seconds: Option<i32>,
}

/// What failover decides for one binding at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvictionPlan {
    /// The clusters it must leave now.
    pub evict: Vec<Eviction>,
    /// When (seconds since the epoch) the next eviction falls due, if one is pending.
    pub next: Option<i64>,
}

/// The inputs of [`plan_evictions`] besides the binding: its clusters' taints, since when the
/// workload has been unhealthy in each cluster (application failover's memory), the moment,
/// and which evictions are on.
pub struct Observed<'a> {
    pub taints: &'a (dyn Fn(&str) -> Option<Vec<Taint>> + Sync),
    pub unhealthy_since: &'a HashMap<String, i64>,
    pub now: i64,
    pub parts: Parts,
}

/// Which clusters a binding must leave: those whose NoExecute taints it does not tolerate (or
/// no longer: `tolerationSeconds` passed), and — with application failover — those where its
/// workload has been unhealthy longer than tolerated. Clusters the binding is not scheduled to,
/// or that are gone, are not looked at.
pub fn plan_evictions(
    spec: &karmada_api::work::ResourceBindingSpec,
    status: Option<&karmada_api::work::ResourceBindingStatus>,
    observed: &Observed<'_>,
) -> EvictionPlan {
    let now = observed.now;
    let mut plan = EvictionPlan::default();
    let tolerations =
        spec.placement.as_ref().map(|p| p.cluster_tolerations.clone()).unwrap_or_default();
    let cluster_failover = spec.failover.as_ref().and_then(|f| f.cluster.as_ref());
    let cluster_purge = cluster_failover
        .map(|c| c.purge_mode.clone())
        .filter(|m| !m.is_unset())
        .unwrap_or(PurgeMode::Gracefully);
    let application = spec
        .failover
        .as_ref()
        .and_then(|f| f.application.as_ref())
        .filter(|_| observed.parts.application);
    let status_in = |cluster: &str| {
        status?
            .aggregated_status
            .iter()
            .find(|i| i.cluster_name == cluster)
            .and_then(|i| i.status.as_ref())
    };
    for target in &spec.clusters {
        let Some(taints) = (observed.taints)(&target.name) else { continue };
        if observed.parts.taints {
            match eviction_due(&taints, &tolerations) {
                Some(at) if at <= now => {
                    let taint = taints
                        .iter()
                        .find(|t| t.effect == TaintEffect::NoExecute)
                        .map(|t| format!("{}:{}", t.key, t.effect))
                        .unwrap_or_default();
                    let rules = cluster_failover
                        .and_then(|c| c.state_preservation.as_ref())
                        .filter(|_| observed.parts.preserve_state)
                        .map(|p| p.rules.as_slice())
                        .unwrap_or_default();
                    plan.evict.push(Eviction {
                        preserved: preserved_state(rules, status_in(&target.name)),
                        target: target.clone(),
                        reason: "TaintUntolerated",
                        message: format!(
                            "evicted from cluster {}: untolerated taint {taint}",
                            target.name
                        ),
                        purge_mode: cluster_purge.clone(),
                        grace_period_seconds: None,
                    });
                    continue;
                }
                Some(at) => plan.later(at),
                None => {}
            }
        }
        // Application failover: unhealthy for longer than tolerated.
        let Some(app) = application else { continue };
        let Some(&since) = observed.unhealthy_since.get(&target.name) else { continue };
        let due = application_eviction_due(app.decision_conditions.toleration_seconds, since);
        if due > now {
            plan.later(due);
            continue;
        }
        let purge_mode =
            if app.purge_mode.is_unset() { PurgeMode::Gracefully } else { app.purge_mode.clone() };
        if purge_mode == PurgeMode::Gracefully && !observed.parts.graceful {
            tracing::warn!(
                cluster = %target.name,
                "GracefulEviction featureGate must be enabled when purgeMode is Gracefully"
            );
            continue;
        }
        let rules = app
            .state_preservation
            .as_ref()
            .filter(|_| observed.parts.preserve_state)
            .map(|p| p.rules.as_slice())
            .unwrap_or_default();
        plan.evict.push(Eviction {
            preserved: preserved_state(rules, status_in(&target.name)),
            target: target.clone(),
            reason: "ApplicationFailure",
            message: format!(
                "evicted from cluster {}: the workload has been unhealthy there for {} s",
                target.name,
                now - since
            ),
            purge_mode,
            grace_period_seconds: app.grace_period_seconds,
        });
    }
    plan
}

impl EvictionPlan {
    fn later(&mut self, at: i64) {
        self.next = Some(self.next.map_or(at, |n| n.min(at)));
    }
}

/// The merge patch that carries out `evict` on a binding read at `resource_version`: the
/// clusters leave `spec.clusters`, and each gets a graceful eviction task (unless it has one).
pub fn eviction_patch(
    spec: &karmada_api::work::ResourceBindingSpec,
    resource_version: Option<&str>,
    evict: &[Eviction],
    stamp: &str,
) -> Value {
    let mut tasks: Vec<Value> = spec
        .graceful_eviction_tasks
        .iter()
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .collect();
    for e in evict {
        if spec.graceful_eviction_tasks.iter().any(|t| t.from_cluster == e.target.name) {
            continue;
        }
        let mut task = json!({"fromCluster": e.target.name, "purgeMode": e.purge_mode, "replicas": e.target.replicas,
            "reason": e.reason, "message": e.message,
            "producer": if e.reason == "TaintUntolerated" { "TaintManager" } else { "ApplicationFailover" },
            "creationTimestamp": stamp});
        if let Some(g) = e.grace_period_seconds {
            task["gracePeriodSeconds"] = json!(g);
        }
        // Never: kept until someone sets suppressDeletion false (as upstream).
        if e.purge_mode == PurgeMode::Never {
            task["suppressDeletion"] = json!(true);
        }
        if !e.preserved.is_empty() {
            task["preservedLabelState"] = json!(e.preserved);
            let before: Vec<&str> = spec.clusters.iter().map(|t| t.name.as_str()).collect();
            task["clustersBeforeFailover"] = json!(before);
        }
        tasks.push(task);
    }
    let remaining: Vec<Value> = spec
        .clusters
        .iter()
        .filter(|t| !evict.iter().any(|e| e.target.name == t.name))
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .collect();
    json!({"metadata": {"resourceVersion": resource_version},
        "spec": {"clusters": remaining, "gracefulEvictionTasks": tasks}})
}

/// The label values `statePreservation` rules take from the workload's status in the cluster
/// it is leaving (JSONPath like `{ .updateRevision }`); rules that find nothing are skipped.
pub fn preserved_state(
    rules: &[karmada_api::policy::StatePreservationRule],
    status: Option<&Value>,
) -> std::collections::BTreeMap<String, String> {
    let Some(status) = status else { return Default::default() };
    rules
        .iter()
        .filter_map(|r| {
            let path = apimachinery::jsonpath::JsonPath::parse(&r.json_path).ok()?;
            Some((r.alias_label_name.clone(), path.render(status)?))
        })
        .collect()
}

/// Application failover: when a workload has been unhealthy in a cluster for longer than
/// `decisionConditions.tolerationSeconds` (default 300), the moment it must leave (seconds
/// since the epoch); `unhealthy_since` is when it was first seen unhealthy there.
pub fn application_eviction_due(toleration_seconds: Option<i32>, unhealthy_since: i64) -> i64 {
    unhealthy_since + i64::from(toleration_seconds.unwrap_or(300))
}

async fn reconcile<B: Binding>(rb: Arc<B>, ctx: Arc<Context>) -> Result<Action, Error> {
    let spec = rb.spec();
    let binding_key = format!(
        "{}/{}",
        rb.meta().namespace.as_deref().unwrap_or_default(),
        rb.meta().name.as_deref().unwrap_or_default()
    );
    if rb.meta().deletion_timestamp.is_some() || spec.clusters.is_empty() {
        return Ok(Action::await_change());
    }
    let now = crate::now_secs();
    let unhealthy_since = ctx.track_health(&binding_key, spec, rb.status(), now);
    let taints =
        |cluster: &str| Some(ctx.clusters.get(&ObjectRef::new(cluster))?.spec.taints.clone());
    let observed =
        Observed { taints: &taints, unhealthy_since: &unhealthy_since, now, parts: ctx.parts };
    let EvictionPlan { evict, next } = plan_evictions(spec, rb.status(), &observed);
    if evict.is_empty() {
        return Ok(next.map_or_else(Action::await_change, |at| {
            Action::requeue(Duration::from_secs(u64::try_from(at - now).unwrap_or(0) + 1))
        }));
    }
    if !ctx.allow() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let stamp = crate::now_rfc3339();
    let patch = eviction_patch(spec, rb.meta().resource_version.as_deref(), &evict, &stamp);
    let api = crate::binding_api::<B>(&ctx.client, rb.meta().namespace.as_deref());
    let name = rb.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    // The binding says why, too (the latest eviction).
    if let Some(last) = evict.last() {
        let condition = json!({"type": EVICTED_CONDITION, "status": "True", "reason": last.reason,
            "message": evict.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "),
            "lastTransitionTime": stamp});
        let mut read = rb.status().map(|s| serde_json::to_value(s).unwrap_or_default());
        for _ in 0..3 {
            let ops = crate::status_ops(read.as_ref(), condition.clone(), &[]);
            if crate::patch_status_ops(&api, &name, ops).await?.is_some() {
                break;
            }
            read = api.get(&name).await?.data.get("status").cloned();
        }
    }
    for e in evict {
        if let Ok(mut map) = ctx.unhealthy.lock() {
            map.remove(&format!("{binding_key}@{}", e.target.name));
        }
        tracing::info!(binding = %name, reason = e.reason, message = %e.message, "eviction");
        ctx.events.record_binding(
            rb.as_ref(),
            Reason::EvictWorkloadFromClusterSucceed,
            &message::evicted(&e.target.name),
        );
    }
    Ok(Action::await_change())
}

fn error_policy<B: Binding>(_: Arc<B>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "taint manager",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(1),
    )
}

async fn run_manager_for<B: Binding>(
    ctx: Arc<Context>,
    cluster_changes: impl futures::Stream<Item = ()> + Send + 'static,
    bindings: Arc<crate::shared::Watched<B>>,
) {
    Controller::for_shared_stream(bindings.applied(), bindings.store())
        .with_config(crate::controller_config())
        .reconcile_all_on(cluster_changes)
        .run(reconcile::<B>, error_policy::<B>, ctx)
        .for_each(|_| async {})
        .await;
}

/// Which evictions the failover loop makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// The taint manager: from clusters with untolerated NoExecute taints.
    pub taints: bool,
    /// `applicationFailover`: from clusters where the workload stays unhealthy.
    pub application: bool,
    /// StatefulFailoverInjection: `statePreservation` rules carry state to the new clusters.
    pub preserve_state: bool,
    /// GracefulEviction: without it an application failover with purge mode `Gracefully` is
    /// refused (as upstream).
    pub graceful: bool,
}

/// Runs the taint manager and application failover (as `parts` says) until the future is
/// dropped.
pub async fn run(
    client: kube::Client,
    evictions_per_second: u32,
    caches: crate::Caches,
    parts: Parts,
) -> anyhow::Result<()> {
    let clusters = caches.clusters.store();
    let (tx, _) = tokio::sync::broadcast::channel::<()>(64);
    let tx_taints = tx.clone();
    // Only taint changes matter here.
    let mut seen: HashMap<String, Vec<Taint>> = HashMap::new();
    let cluster_task = tokio::spawn(caches.clusters.subscribe().for_each(move |change| {
        if let Some(c) = change.object() {
            let name = c.metadata.name.clone().unwrap_or_default();
            if seen.insert(name, c.spec.taints.clone()).as_ref() != Some(&c.spec.taints) {
                let _ = tx_taints.send(());
            }
        }
        async {}
    }));
    caches.clusters.ready().await;
    let ctx = Arc::new(Context {
        client: client.clone(),
        clusters,
        events: crate::events::Events::start(client, "taint-manager"),
        window: Mutex::new((Instant::now(), 0)),
        per_second: evictions_per_second.max(1),
        unhealthy: Mutex::new(HashMap::new()),
        parts,
    });
    tokio::join!(
        run_manager_for::<ResourceBinding>(
            Arc::clone(&ctx),
            crate::signals(&tx),
            Arc::clone(&caches.bindings)
        ),
        run_manager_for::<ClusterResourceBinding>(
            ctx,
            crate::signals(&tx),
            Arc::clone(&caches.cluster_bindings)
        ),
    );
    cluster_task.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(status: &str) -> Condition {
        serde_json::from_value(
            json!({"type": "Ready", "status": status, "reason": "r", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}),
        )
        .unwrap()
    }

    fn taint(key: &str, effect: &str, added: Option<&str>) -> Taint {
        Taint {
            key: key.into(),
            value: String::new(),
            effect: effect.into(),
            time_added: added.map(Into::into),
        }
    }

    #[test]
    fn taint_policies() {
        let spec: ClusterTaintPolicySpec = serde_json::from_value(json!({"addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["False", "Unknown"]}],
            "removeOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["True"]}],
            "taints": [{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"}]}))
        .unwrap();
        assert_eq!(taint_action(&spec, &[condition("False")]), TaintAction::Add);
        assert_eq!(taint_action(&spec, &[condition("Unknown")]), TaintAction::Add);
        assert_eq!(taint_action(&spec, &[condition("True")]), TaintAction::Remove);
        assert_eq!(taint_action(&spec, &[]), TaintAction::Keep, "no condition: no decision");
        let not_in: ClusterTaintPolicySpec = serde_json::from_value(json!({"addOnConditions": [{"conditionType": "Ready", "operator": "NotIn", "statusValues": ["True"]}], "taints": []}))
        .unwrap();
        assert_eq!(taint_action(&not_in, &[condition("False")]), TaintAction::Add);
        assert_eq!(taint_action(&not_in, &[condition("True")]), TaintAction::Keep);

        let policy = [taint("cluster.karmada.io/not-ready", "NoExecute", None)];
        let other = taint("team", "NoSchedule", None);
        let added = apply_taints(
            std::slice::from_ref(&other),
            &policy,
            TaintAction::Add,
            "2026-11-25T10:00:00Z",
        );
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].time_added.as_deref(), Some("2026-11-25T10:00:00Z"));
        assert_eq!(apply_taints(&added, &policy, TaintAction::Add, "later"), added, "added once");
        assert_eq!(apply_taints(&added, &policy, TaintAction::Remove, "x"), vec![other]);
    }

    #[test]
    fn planned_taints_follow_the_policies_that_target_the_cluster() {
        let cluster: Cluster = serde_json::from_value(json!({"metadata": {"name": "m1", "labels": {"env": "prod"}},
            "spec": {"taints": [{"key": "team", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
        .unwrap();
        let policy = |name: &str, target: Value| -> ClusterTaintPolicy {
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"targetClusters": target,
                "addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["False"]}],
                "taints": [{"key": format!("{name}/down"), "effect": "NoExecute"}]}}))
            .unwrap()
        };
        let prod = policy("prod", json!({"labelSelector": {"matchLabels": {"env": "prod"}}}));
        let dev = policy("dev", json!({"labelSelector": {"matchLabels": {"env": "dev"}}}));
        let all = policy("all", Value::Null);
        let taints = planned_taints(&cluster, &[&prod, &dev, &all], "2026-01-02T00:00:00Z");
        let keys: Vec<&str> = taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["team", "prod/down", "all/down"], "dev does not target this cluster");
        assert_eq!(taints[1].time_added.as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(taints[0].time_added, None, "a taint already there is kept as it is");
    }

    #[test]
    fn when_a_binding_must_leave() {
        let tol = |key: &str, seconds: Option<i64>| -> Toleration {
            serde_json::from_value(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})).unwrap()
        };
        let not_ready =
            [taint("cluster.karmada.io/not-ready", "NoExecute", Some("2026-01-01T00:00:00Z"))];
        let t0 = apimachinery::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(eviction_due(&not_ready, &[]), Some(0), "untolerated: now");
        assert_eq!(
            eviction_due(&not_ready, &[tol("cluster.karmada.io/not-ready", Some(30))]),
            Some(t0 + 30)
        );
        assert_eq!(
            eviction_due(&not_ready, &[tol("cluster.karmada.io/not-ready", None)]),
            None,
            "tolerated for good"
        );
        assert_eq!(eviction_due(&not_ready, &[tol("other", Some(30))]), Some(0));
        assert_eq!(
            eviction_due(&[taint("x", "NoSchedule", None)], &[]),
            None,
            "only NoExecute evicts"
        );
    }

    #[test]
    fn state_preservation_reads_the_old_status() {
        let rules: Vec<karmada_api::policy::StatePreservationRule> =
            serde_json::from_value(json!([
                {"aliasLabelName": "app.example/revision", "jsonPath": "{ .updateRevision }"},
                {"aliasLabelName": "app.example/ready", "jsonPath": "{.readyReplicas}"},
                {"aliasLabelName": "app.example/missing", "jsonPath": "{.nothing}"}
            ]))
            .unwrap();
        let status = json!({"updateRevision": "web-7d9f", "readyReplicas": 3});
        let state = preserved_state(&rules, Some(&status));
        assert_eq!(state.len(), 2);
        assert_eq!(state["app.example/revision"], "web-7d9f");
        assert_eq!(state["app.example/ready"], "3");
        assert!(preserved_state(&rules, None).is_empty());
    }

    #[test]
    fn eviction_plans() {
        let spec: karmada_api::work::ResourceBindingSpec = serde_json::from_value(json!({
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web"},
            "placement": {"clusterTolerations": [{"key": "slow", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]},
            "failover": {"application": {"decisionConditions": {"tolerationSeconds": 30}, "purgeMode": "Directly",
                "statePreservation": {"rules": [{"aliasLabelName": "rev", "jsonPath": "{.rev}"}]}}},
            "clusters": [{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 1}, {"name": "m3", "replicas": 1}, {"name": "gone"}],
        }))
        .unwrap();
        let status: karmada_api::work::ResourceBindingStatus = serde_json::from_value(json!({
            "aggregatedStatus": [{"clusterName": "m2", "health": "Unhealthy", "status": {"rev": "r7"}}]
        }))
        .unwrap();
        let t0 = apimachinery::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let taints = |cluster: &str| match cluster {
            "m1" => Some(vec![taint(
                "cluster.karmada.io/not-ready",
                "NoExecute",
                Some("2026-01-01T00:00:00Z"),
            )]),
            "m3" => Some(vec![taint("slow", "NoExecute", Some("2026-01-01T00:00:00Z"))]),
            "gone" => None,
            _ => Some(vec![]),
        };
        let since = HashMap::from([("m2".to_owned(), t0)]);
        let all = Parts { taints: true, application: true, preserve_state: true, graceful: true };
        let plan = |now: i64, parts: Parts| {
            let observed = Observed { taints: &taints, unhealthy_since: &since, now, parts };
            plan_evictions(&spec, Some(&status), &observed)
        };
        let early = plan(t0 + 10, all);
        let evicted: Vec<(&str, &str)> =
            early.evict.iter().map(|e| (e.target.name.as_str(), e.reason)).collect();
        assert_eq!(evicted, vec![("m1", "TaintUntolerated")], "untolerated: at once");
        assert_eq!(early.evict[0].purge_mode, PurgeMode::Gracefully, "cluster failover's default");
        assert_eq!(early.next, Some(t0 + 30), "m2's application toleration ends first");
        let later = plan(t0 + 61, all);
        let evicted: Vec<(&str, &str)> =
            later.evict.iter().map(|e| (e.target.name.as_str(), e.reason)).collect();
        assert_eq!(
            evicted,
            vec![
                ("m1", "TaintUntolerated"),
                ("m2", "ApplicationFailure"),
                ("m3", "TaintUntolerated")
            ]
        );
        assert_eq!(later.evict[1].purge_mode, PurgeMode::Directly);
        assert_eq!(later.evict[1].preserved.get("rev").map(String::as_str), Some("r7"));
        assert_eq!(later.next, None);
        let only_taints = plan(t0 + 61, Parts { application: false, ..all });
        assert_eq!(only_taints.evict.len(), 2, "application failover off");
        let only_app = plan(t0 + 61, Parts { taints: false, ..all });
        assert_eq!(only_app.evict.len(), 1, "taint manager off");

        let patch = eviction_patch(&spec, Some("42"), &later.evict[..2], "2026-01-01T00:01:01Z");
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let left: Vec<&str> = patch["spec"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(left, vec!["m3", "gone"]);
        let tasks = patch["spec"]["gracefulEvictionTasks"].as_array().unwrap();
        assert_eq!(tasks[0]["producer"], "TaintManager");
        assert_eq!(tasks[1]["producer"], "ApplicationFailover");
        assert_eq!(tasks[1]["preservedLabelState"], json!({"rev": "r7"}));
        assert_eq!(tasks[1]["clustersBeforeFailover"], json!(["m1", "m2", "m3", "gone"]));
    }

    #[test]
    fn evictions_are_rate_limited() {
        let start = Instant::now();
        let mut window = (start, 0);
        let granted = (0..50).filter(|_| take_token(&mut window, 20, start)).count();
        assert_eq!(granted, 20, "a burst of evictions is capped per second");
        assert!(!take_token(&mut window, 20, start + Duration::from_millis(999)));
        assert!(take_token(&mut window, 20, start + Duration::from_secs(1)), "next second");
    }
}
