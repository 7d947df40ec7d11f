//! WorkloadRebalancer (`apps.karmada.io/v1alpha1`): a one-off request to schedule the named
//! workloads again from scratch — e.g. to spread replicas back over a cluster that recovered
//! after a failover. Each workload's binding gets `spec.rescheduleTriggeredAt`, the scheduler
//! then ignores the current placement once; the rebalancer's status lists each workload's
//! result, and it is deleted `ttlSecondsAfterFinished` after it finished (if set).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::{Value, json};

/// The API resource of WorkloadRebalancers.
pub fn rebalancer_resource() -> ApiResource {
    ApiResource {
        group: "apps.karmada.io".into(),
        version: "v1alpha1".into(),
        api_version: "apps.karmada.io/v1alpha1".into(),
        kind: "WorkloadRebalancer".into(),
        plural: "workloadrebalancers".into(),
    }
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
pub fn next_observed(spec: &[Value], status: &[Value]) -> Vec<Value> {
    let mut wanted: Vec<&Value> = spec.iter().collect();
    let mut out = Vec::new();
    for item in status {
        let workload = &item["workload"];
        if let Some(i) = wanted.iter().position(|w| *w == workload) {
            wanted.remove(i);
            out.push(item.clone());
        } else if item.get("result").and_then(Value::as_str) == Some("Successful") {
            out.push(item.clone());
        }
    }
    for workload in wanted {
        if !out.iter().any(|o| &o["workload"] == workload) {
            out.push(json!({"workload": workload}));
        }
    }
    let key = |v: &Value| {
        let w = &v["workload"];
        let s = |f: &str| w.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
        format!("{} {} {} {}", s("apiVersion"), s("kind"), s("namespace"), s("name"))
    };
    out.sort_by_key(key);
    out
}

async fn reconcile(rebalancer: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = rebalancer.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &rebalancer_resource());
    let now = crate::now_secs();
    let current = rebalancer.data.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let settled = current.is_some() && current == rebalancer.metadata.generation;
    if let Some(finished) = rebalancer
        .data
        .pointer("/status/finishTime")
        .and_then(Value::as_str)
        .and_then(apimachinery::time::parse_rfc3339)
        && settled
    {
        let Some(ttl) =
            rebalancer.data.pointer("/spec/ttlSecondsAfterFinished").and_then(Value::as_i64)
        else {
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
    let list = |p: &str| rebalancer.data.pointer(p).and_then(Value::as_array).cloned();
    let mut observed = next_observed(
        &list("/spec/workloads").unwrap_or_default(),
        &list("/status/observedWorkloads").unwrap_or_default(),
    );
    for entry in &mut observed {
        if entry.get("result").is_some() {
            continue;
        }
        let workload = entry["workload"].clone();
        let text = |f: &str| workload.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (kind, namespace, object) = (text("kind"), text("namespace"), text("name"));
        let binding = propagation::binding_name(&kind, &object);
        let bindings: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(ctx.client.clone(), &crate::binding_resource(false))
        } else {
            Api::namespaced_with(ctx.client.clone(), &namespace, &crate::binding_resource(true))
        };
        let patch = json!({"spec": {"rescheduleTriggeredAt": stamp}});
        let (result, reason) =
            match bindings.patch(&binding, &PatchParams::default(), &Patch::Merge(patch)).await {
                Ok(_) => ("Successful", None),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    ("Failed", Some("ReferencedBindingNotFound"))
                }
                Err(e) => return Err(e.into()),
            };
        entry["result"] = json!(result);
        if let Some(r) = reason {
            entry["reason"] = json!(r);
        }
    }
    let status = json!({"status": {"observedWorkloads": observed, "finishTime": stamp,
        "observedGeneration": rebalancer.metadata.generation}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
    tracing::info!(rebalancer = %name, "workloads rescheduled");
    Ok(Action::await_change())
}

fn error_policy(_: Arc<DynamicObject>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "workload rebalancer",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the WorkloadRebalancer controller until the future is dropped.
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &rebalancer_resource());
    Controller::new_with(api, watcher::Config::default(), rebalancer_resource())
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
        let w = |kind: &str, name: &str| json!({"apiVersion": "apps/v1", "kind": kind, "namespace": "ns", "name": name});
        let done =
            |kind: &str, name: &str| json!({"workload": w(kind, name), "result": "Successful"});
        let failed = |name: &str| json!({"workload": w("Deployment", name), "result": "Failed", "reason": "ReferencedBindingNotFound"});
        // First pass: every workload pending, sorted by apiVersion, kind, namespace, name.
        let first = next_observed(&[w("Deployment", "b"), w("Deployment", "a")], &[]);
        assert_eq!(
            first,
            vec![
                json!({"workload": w("Deployment", "a")}),
                json!({"workload": w("Deployment", "b")})
            ]
        );
        // The spec changes: a succeeded workload dropped from the spec stays, a failed one goes,
        // a kept one keeps its result, a new one is pending.
        let status = [done("Deployment", "a"), failed("gone"), done("Deployment", "kept")];
        let next = next_observed(&[w("Deployment", "kept"), w("Deployment", "new")], &status);
        assert_eq!(
            next,
            vec![
                done("Deployment", "a"),
                done("Deployment", "kept"),
                json!({"workload": w("Deployment", "new")})
            ]
        );
    }
}
