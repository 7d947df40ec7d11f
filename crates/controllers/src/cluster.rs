//! The cluster controller: a finalizer on every Cluster; its execution namespace
//! `karmada-es-<name>` created while it exists, emptied and removed when it goes; and the
//! `cluster.karmada.io/not-ready` / `unreachable` NoSchedule taints kept in step with the Ready
//! condition after a grace period.

use karmada_api::cluster::TaintEffect;
use karmada_api::events::{Reason, message};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use karmada_api::cluster::{Cluster, Taint};
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use serde_json::json;

use crate::{Settings, execution_namespace};

pub const FINALIZER: &str = karmada_api::names::CLUSTER_FINALIZER;
pub const TAINT_NOT_READY: &str = "cluster.karmada.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "cluster.karmada.io/unreachable";

/// The taints a cluster should carry, given its Ready condition and the time.
pub fn desired_taints(
    current: &[Taint],
    ready: Option<&Condition>,
    now_secs: i64,
    grace: Duration,
) -> Vec<Taint> {
    let mut taints: Vec<Taint> = current.to_vec();
    let Some(ready) = ready else { return taints };
    let since = ready.last_transition_time.0.as_second();
    let want: Option<&str> = if ready.status == "True" {
        None
    } else if now_secs - since < grace.as_secs() as i64 {
        // Within the grace period: leave the taints as they are.
        return taints;
    } else if ready.status == "Unknown" || ready.reason == "ClusterNotReachable" {
        Some(TAINT_UNREACHABLE)
    } else {
        Some(TAINT_NOT_READY)
    };
    taints.retain(|t| {
        !((t.key == TAINT_NOT_READY || t.key == TAINT_UNREACHABLE)
            && Some(t.key.as_str()) != want
            && t.effect == TaintEffect::NoSchedule)
    });
    if let Some(key) = want
        && !taints.iter().any(|t| t.key == key && t.effect == TaintEffect::NoSchedule)
    {
        taints.push(Taint {
            key: key.to_owned(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
            time_added: None,
        });
    }
    taints
}

struct Context {
    client: kube::Client,
    settings: Settings,
    /// Execution namespaces known to exist, and when that was checked: every status update of
    /// every cluster reconciles it, and a GET each time was the control plane's most frequent
    /// request at 1,000 clusters. Checked again after a minute.
    ensured: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    events: crate::events::Events,
}

const ENSURED_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let clusters: Api<Cluster> = Api::all(ctx.client.clone());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let es = execution_namespace(&name);
    let finalizers = cluster.metadata.finalizers.clone().unwrap_or_default();
    if cluster.metadata.deletion_timestamp.is_some() {
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        // Remove the cluster's Works, then its execution namespace, then the finalizer.
        let works: Api<Work> = Api::namespaced(ctx.client.clone(), &es);
        let remaining = match works.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for work in &remaining {
            if work.metadata.deletion_timestamp.is_none() {
                let _ = works
                    .delete(
                        work.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::default(),
                    )
                    .await;
            }
        }
        if !remaining.is_empty() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if let Ok(mut ensured) = ctx.ensured.lock() {
            ensured.remove(&es);
        }
        match namespaces.get_opt(&es).await? {
            Some(ns) => {
                if ns.metadata.deletion_timestamp.is_none() {
                    let _ = namespaces.delete(&es, &DeleteParams::default()).await;
                }
                return Ok(Action::requeue(Duration::from_millis(500)));
            }
            None => {
                ctx.events.record(
                    crate::events::reference_of(cluster.as_ref()),
                    Reason::RemoveExecutionSpaceSucceed,
                    message::execution_space_removed(&name),
                );
                crate::set_finalizer(&clusters, &name, &finalizers, FINALIZER, false).await?;
                return Ok(Action::await_change());
            }
        }
    }
    crate::set_finalizer(&clusters, &name, &finalizers, FINALIZER, true).await?;
    let known = ctx
        .ensured
        .lock()
        .map(|e| e.get(&es).is_some_and(|at| at.elapsed() < ENSURED_FOR))
        .unwrap_or(false);
    if !known && namespaces.get_opt(&es).await?.is_none() {
        let ns: Namespace = serde_json::from_value(
            json!({"metadata": {"name": es, "labels": {crate::join::SYSTEM_LABEL: "true"}}}),
        )
        .unwrap_or_default();
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => ctx.events.record(
                crate::events::reference_of(cluster.as_ref()),
                Reason::CreateExecutionSpaceSucceed,
                message::execution_space_created(&es, &name),
            ),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !known && let Ok(mut ensured) = ctx.ensured.lock() {
        ensured.insert(es.clone(), std::time::Instant::now());
    }
    let ready =
        cluster.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let taints = desired_taints(
        &cluster.spec.taints,
        ready,
        crate::now_secs(),
        ctx.settings.cluster_monitor_grace_period,
    );
    if taints != cluster.spec.taints {
        let regarding = crate::events::reference_of(cluster.as_ref());
        let patch = json!({"spec": {"taints": taints}});
        match clusters.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => ctx.events.record(
                regarding,
                Reason::TaintClusterSucceed,
                message::taint_cluster_succeed(&message::taints(&taints)),
            ),
            Err(e) => {
                ctx.events.record(regarding, Reason::TaintClusterFailed, e.to_string());
                return Err(e.into());
            }
        }
    }
    Ok(Action::requeue(ctx.settings.cluster_monitor_period))
}

fn error_policy(_: Arc<Cluster>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "cluster reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

pub async fn run(
    client: kube::Client,
    settings: Settings,
    caches: crate::Caches,
) -> anyhow::Result<()> {
    let events = crate::events::Events::start(client.clone(), "cluster-controller");
    let context = Arc::new(Context { client, settings, ensured: Default::default(), events });
    Controller::for_shared_stream(caches.clusters.applied(), caches.clusters.store())
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn cond(status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(at).unwrap()),
            observed_generation: None,
        }
    }

    fn keys(t: &[Taint]) -> Vec<&str> {
        t.iter().map(|t| t.key.as_str()).collect()
    }

    #[test]
    fn taints_follow_readiness_after_grace() {
        let grace = Duration::from_secs(40);
        let user = Taint {
            key: "team".into(),
            value: "a".into(),
            effect: TaintEffect::NoSchedule,
            time_added: None,
        };
        type Case = (Vec<Taint>, Option<Condition>, i64, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (vec![], None, 100, vec![]),
            (vec![], Some(cond("True", "ClusterReady", 0)), 100, vec![]),
            (vec![], Some(cond("False", "ClusterNotReachable", 90)), 100, vec![]),
            (vec![], Some(cond("False", "ClusterNotReachable", 0)), 100, vec![TAINT_UNREACHABLE]),
            (vec![], Some(cond("False", "ClusterNotReady", 0)), 100, vec![TAINT_NOT_READY]),
            (
                vec![user.clone()],
                Some(cond("Unknown", "", 0)),
                100,
                vec!["team", TAINT_UNREACHABLE],
            ),
            (
                vec![
                    user.clone(),
                    Taint {
                        key: TAINT_UNREACHABLE.into(),
                        value: String::new(),
                        effect: TaintEffect::NoSchedule,
                        time_added: None,
                    },
                ],
                Some(cond("True", "ClusterReady", 95)),
                100,
                vec!["team"],
            ),
        ];
        for (current, ready, now, want) in cases {
            assert_eq!(
                keys(&desired_taints(&current, ready.as_ref(), now, grace)),
                want,
                "{ready:?}"
            );
        }
    }
}
