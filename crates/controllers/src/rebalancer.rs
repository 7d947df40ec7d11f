//! WorkloadRebalancer (`apps.karmada.io/v1alpha1`): a one-off request to schedule the named
//! workloads again from scratch — e.g. to spread replicas back over a cluster that recovered
//! after a failover. Each workload's binding gets `spec.rescheduleTriggeredAt`, the scheduler
//! then ignores the current placement once; the rebalancer's status lists each workload's
//! result, and it is deleted `ttlSecondsAfterFinished` after it finished (if set).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use karmada_api::apps::{
    ObservedWorkload, WorkloadRebalancer, WorkloadRebalancerStatus, WorkloadReference,
};
use karmada_api::work::{ClusterResourceBinding, ResourceBinding};
use kube::api::{Api, ApiResource, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

/// The API resource of WorkloadRebalancers.
pub fn rebalancer_resource() -> ApiResource {
    ApiResource::erase::<WorkloadRebalancer>(&())
}

struct Context {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The observed workloads after a (new) spec, as upstream keeps them: an entry still in the
/// spec keeps its result, one no longer in it stays only if it succeeded, new ones start
/// without a result (to be triggered); sorted by `apiVersion kind namespace name`.
pub fn next_observed(
    spec: &[WorkloadReference],
    status: &[ObservedWorkload],
) -> Vec<ObservedWorkload> {
    let mut wanted: Vec<&WorkloadReference> = spec.iter().collect();
    let mut out = Vec::new();
    for item in status {
        if let Some(i) = wanted.iter().position(|w| **w == item.workload) {
            wanted.remove(i);
            out.push(item.clone());
        } else if item.result == "Successful" {
            out.push(item.clone());
        }
    }
    for workload in wanted {
        if !out.iter().any(|o| &o.workload == workload) {
            out.push(ObservedWorkload {
                workload: workload.clone(),
                ..ObservedWorkload::default()
            });
        }
    }
    out.sort_by(|a, b| {
        let key = |o: &ObservedWorkload| {
            let w = &o.workload;
            (w.api_version.clone(), w.kind.clone(), w.namespace.clone(), w.name.clone())
        };
        key(a).cmp(&key(b))
    });
    out
}

async fn reconcile(
    rebalancer: Arc<WorkloadRebalancer>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let name = rebalancer.metadata.name.clone().unwrap_or_default();
    let api: Api<WorkloadRebalancer> = Api::all(ctx.client.clone());
    let now = crate::now_secs();
    let status = rebalancer.status.clone().unwrap_or_default();
    let settled = status.observed_generation.is_some()
        && status.observed_generation == rebalancer.metadata.generation;
    if let Some(finished) = status.finish_time.as_ref().map(|t| t.0.as_second())
        && settled
    {
        let Some(ttl) = rebalancer.spec.ttl_seconds_after_finished.map(i64::from) else {
            return Ok(Action::await_change());
        };
        if now >= finished + ttl {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(Action::await_change());
        }
        return Ok(Action::requeue(Duration::from_secs(
            u64::try_from(finished + ttl - now).unwrap_or(0) + 1,
        )));
    }
    let stamp = crate::now_rfc3339();
    let mut observed = next_observed(&rebalancer.spec.workloads, &status.observed_workloads);
    for entry in observed.iter_mut().filter(|e| e.result.is_empty()) {
        let workload = &entry.workload;
        let binding = propagation::binding_name(&workload.kind, &workload.name);
        let patch = Patch::Merge(json!({"spec": {"rescheduleTriggeredAt": stamp}}));
        let written = if workload.namespace.is_empty() {
            let bindings: Api<ClusterResourceBinding> = Api::all(ctx.client.clone());
            bindings.patch(&binding, &PatchParams::default(), &patch).await.map(|_| ())
        } else {
            let bindings: Api<ResourceBinding> =
                Api::namespaced(ctx.client.clone(), &workload.namespace);
            bindings.patch(&binding, &PatchParams::default(), &patch).await.map(|_| ())
        };
        match written {
            Ok(()) => entry.result = "Successful".into(),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                entry.result = "Failed".into();
                entry.reason = "ReferencedBindingNotFound".into();
            }
            Err(e) => return Err(e.into()),
        }
    }
    let finish_time = k8s_openapi::jiff::Timestamp::from_second(now).ok().map(Time);
    let status = WorkloadRebalancerStatus {
        observed_workloads: observed,
        observed_generation: rebalancer.metadata.generation,
        finish_time,
    };
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await?;
    tracing::info!(rebalancer = %name, "workloads rescheduled");
    Ok(Action::await_change())
}

fn error_policy(_: Arc<WorkloadRebalancer>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "workload rebalancer",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the WorkloadRebalancer controller until the future is dropped.
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<WorkloadRebalancer> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_workloads_follow_the_spec_like_upstream() {
        let w = |kind: &str, name: &str| WorkloadReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
        };
        let pending = |kind: &str, name: &str| ObservedWorkload {
            workload: w(kind, name),
            ..ObservedWorkload::default()
        };
        let done = |kind: &str, name: &str| ObservedWorkload {
            workload: w(kind, name),
            result: "Successful".into(),
            reason: String::new(),
        };
        let failed = |name: &str| ObservedWorkload {
            workload: w("Deployment", name),
            result: "Failed".into(),
            reason: "ReferencedBindingNotFound".into(),
        };
        // First pass: every workload pending, sorted by apiVersion, kind, namespace, name.
        let first = next_observed(&[w("Deployment", "b"), w("Deployment", "a")], &[]);
        assert_eq!(first, vec![pending("Deployment", "a"), pending("Deployment", "b")]);
        // The spec changes: a succeeded workload dropped from the spec stays, a failed one goes,
        // a kept one keeps its result, a new one is pending.
        let status = [done("Deployment", "a"), failed("gone"), done("Deployment", "kept")];
        let next = next_observed(&[w("Deployment", "kept"), w("Deployment", "new")], &status);
        assert_eq!(
            next,
            vec![done("Deployment", "a"), done("Deployment", "kept"), pending("Deployment", "new")]
        );
    }
}
