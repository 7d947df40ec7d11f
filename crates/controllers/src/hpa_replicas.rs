//! Replicas that follow member HPAs: upstream's `hpaScaleTargetMarker` and
//! `deploymentReplicasSyncer` (off by default, as upstream; its install manifests — and
//! `karmada up` — turn both on).
//!
//! - The marker labels the target template of every propagated HorizontalPodAutoscaler with
//!   `resourcetemplate.karmada.io/retain-replicas: "true"`, so members keep the replicas their
//!   own HPA sets instead of having the template's applied over them, and takes the label off
//!   when the HPA goes away or targets another workload.
//! - The syncer writes a Divided Deployment's replicas as the members have them (its collected
//!   `status.replicas`) back to its `spec.replicas`, once its binding has caught up with the
//!   template and collected every scheduled cluster's status: the scheduler then divides what
//!   the member HPAs chose.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use karmada_api::names::{
    CPP_PERMANENT_ID_LABEL, PP_PERMANENT_ID_LABEL, RETAIN_REPLICAS_LABEL, binding_name,
};
use karmada_api::work::ResourceBinding;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::federated_hpa::Kinds;

/// An HPA's scale target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub namespace: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

impl Target {
    fn of(hpa: &HorizontalPodAutoscaler) -> Target {
        let r = &hpa.spec.as_ref().map(|s| s.scale_target_ref.clone()).unwrap_or_default();
        Target {
            namespace: hpa.metadata.namespace.clone().unwrap_or_default(),
            api_version: r.api_version.clone().unwrap_or_else(|| "apps/v1".into()),
            kind: r.kind.clone(),
            name: r.name.clone(),
        }
    }
}

/// Whether a policy propagates the HPA (upstream marks only those targets).
fn propagated(hpa: &HorizontalPodAutoscaler) -> bool {
    hpa.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key(PP_PERMANENT_ID_LABEL) || l.contains_key(CPP_PERMANENT_ID_LABEL)
    })
}

/// The label changes one HPA event calls for: `last` is the target the HPA had when last seen,
/// `now` the HPA as it is (`None`: deleted). `true`: add the label, `false`: remove it.
pub fn marks(last: Option<&Target>, now: Option<&HorizontalPodAutoscaler>) -> Vec<(Target, bool)> {
    let current = now.map(Target::of);
    let mut out = Vec::new();
    if let Some(last) = last
        && current.as_ref() != Some(last)
    {
        out.push((last.clone(), false));
    }
    if let (Some(hpa), Some(target)) = (now, current)
        && propagated(hpa)
    {
        out.push((target, true));
    }
    out
}

/// Sets (`add`) or removes the retain-replicas label on a target; a missing target is fine.
async fn mark(
    client: &kube::Client,
    kinds: &Kinds,
    target: &Target,
    add: bool,
) -> kube::Result<()> {
    let api = kinds.templates(client, &target.namespace, &target.api_version, &target.kind).await?;
    let Some(object) = api.get_opt(&target.name).await? else { return Ok(()) };
    let has = object.metadata.labels.as_ref().and_then(|l| l.get(RETAIN_REPLICAS_LABEL))
        == Some(&"true".to_owned());
    if has == add {
        return Ok(());
    }
    let value = if add { json!("true") } else { Value::Null };
    let patch = Patch::Merge(json!({"metadata": {"labels": {RETAIN_REPLICAS_LABEL: value}}}));
    match api.patch(&target.name, &PatchParams::default(), &patch).await {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Runs the `hpaScaleTargetMarker` controller until the future is dropped.
pub async fn run_scale_target_marker(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<HorizontalPodAutoscaler> = Api::all(client.clone());
    let kinds = Kinds::default();
    // Each HPA's target as last seen, and the targets seen before a relist (what is not listed
    // again was deleted meanwhile).
    let mut seen: HashMap<(String, String), Target> = HashMap::new();
    let mut relisted: Option<HashMap<(String, String), Target>> = None;
    let mut retry: Vec<(Target, bool)> = Vec::new();
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let mut todo: Vec<(Target, bool)> = Vec::new();
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { anyhow::bail!("the HPA watch ended") };
                let event = match event {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::debug!(error = %e, "hpa watch");
                        continue;
                    }
                };
                let key = |h: &HorizontalPodAutoscaler| {
                    (h.metadata.namespace.clone().unwrap_or_default(), h.metadata.name.clone().unwrap_or_default())
                };
                match event {
                    watcher::Event::Init => relisted = Some(std::mem::take(&mut seen)),
                    watcher::Event::InitApply(hpa) | watcher::Event::Apply(hpa) => {
                        let k = key(&hpa);
                        let last = seen.get(&k).or_else(|| relisted.as_ref().and_then(|r| r.get(&k)));
                        todo.extend(marks(last, Some(&hpa)));
                        if let Some(r) = relisted.as_mut() {
                            r.remove(&k);
                        }
                        seen.insert(k, Target::of(&hpa));
                    }
                    watcher::Event::Delete(hpa) => {
                        let last = seen.remove(&key(&hpa));
                        todo.extend(marks(last.as_ref(), None));
                    }
                    watcher::Event::InitDone => {
                        for (_, gone) in relisted.take().unwrap_or_default() {
                            todo.extend(marks(Some(&gone), None));
                        }
                    }
                }
            }
            _ = tick.tick() => todo = std::mem::take(&mut retry),
        }
        for (target, add) in todo {
            if let Err(e) = mark(&client, &kinds, &target, add).await {
                tracing::debug!(error = %e, ?target, add, "retain-replicas label; retrying");
                retry.push((target, add));
            }
        }
    }
}

/// What the syncer does with one Deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// Nothing to do.
    Nothing,
    /// The binding or the collected status has not caught up yet: look again soon.
    Wait,
    /// Write these replicas to the Deployment's spec.
    Set(i32),
}

/// The syncer's decision for a Deployment labelled to retain replicas and its binding.
pub fn sync_replicas(deployment: &Deployment, binding: &ResourceBinding) -> Sync {
    if !binding.spec.placement.as_ref().is_some_and(|p| p.divides_replicas()) {
        return Sync::Nothing;
    }
    let spec = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if spec == status {
        return Sync::Nothing;
    }
    let Some(b) = binding.status.as_ref() else { return Sync::Wait };
    // The binding holds the template's replicas and the scheduler has placed them.
    if binding.spec.replicas != spec
        || binding.metadata.generation.unwrap_or(0) != b.scheduler_observed_generation
    {
        return Sync::Wait;
    }
    // Every scheduled cluster reported, each with pods (its HPA's minimum is at least 1).
    if b.aggregated_status.len() != binding.spec.clusters.len() {
        return Sync::Wait;
    }
    let mut members = 0;
    for item in &b.aggregated_status {
        let replicas = item.status.as_ref().and_then(|s| s["replicas"].as_i64()).unwrap_or(0);
        if replicas <= 0 {
            return Sync::Wait;
        }
        members += replicas as i32;
    }
    // And the sum reached the template's status.
    if status != members {
        return Sync::Wait;
    }
    Sync::Set(status)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

const WAIT: Duration = Duration::from_secs(1);

async fn reconcile(
    deployment: Arc<Deployment>,
    client: Arc<kube::Client>,
) -> Result<Action, Error> {
    let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let retained = deployment.metadata.labels.as_ref().and_then(|l| l.get(RETAIN_REPLICAS_LABEL))
        == Some(&"true".to_owned());
    if !retained || deployment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let bindings: Api<ResourceBinding> = Api::namespaced((*client).clone(), &namespace);
    let Some(binding) = bindings.get_opt(&binding_name("Deployment", &name)).await? else {
        return Ok(Action::await_change());
    };
    match sync_replicas(&deployment, &binding) {
        Sync::Nothing => Ok(Action::await_change()),
        Sync::Wait => Ok(Action::requeue(WAIT)),
        Sync::Set(replicas) => {
            let deployments: Api<Deployment> = Api::namespaced((*client).clone(), &namespace);
            // Guarded by the version read: a change meanwhile is a conflict, looked at again.
            let patch = json!({"metadata": {"resourceVersion": deployment.metadata.resource_version},
                "spec": {"replicas": replicas}});
            deployments.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
            tracing::info!(namespace, name, replicas, "deployment replicas synced from members");
            Ok(Action::await_change())
        }
    }
}

fn error_policy(_: Arc<Deployment>, error: &Error, _: Arc<kube::Client>) -> Action {
    crate::retry_after(
        "deployment replicas syncer",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the `deploymentReplicasSyncer` controller until the future is dropped.
pub async fn run_replicas_syncer(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::all(client.clone());
    let config = watcher::Config::default().labels(&format!("{RETAIN_REPLICAS_LABEL}=true"));
    Controller::new(api, config)
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(target: &str, propagated: bool) -> HorizontalPodAutoscaler {
        let labels = if propagated { json!({PP_PERMANENT_ID_LABEL: "id"}) } else { json!({}) };
        serde_json::from_value(json!({"metadata": {"namespace": "ns", "name": "h", "labels": labels},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "maxReplicas": 3}}))
        .unwrap()
    }

    fn target(name: &str) -> Target {
        Target {
            namespace: "ns".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: name.into(),
        }
    }

    #[test]
    fn propagated_hpas_mark_their_targets_and_unmark_what_they_leave() {
        assert_eq!(marks(None, Some(&hpa("web", false))), vec![], "not propagated: nothing");
        assert_eq!(marks(None, Some(&hpa("web", true))), vec![(target("web"), true)]);
        assert_eq!(
            marks(Some(&target("web")), Some(&hpa("api", true))),
            vec![(target("web"), false), (target("api"), true)],
            "a new target: the old one loses the label"
        );
        assert_eq!(marks(Some(&target("web")), None), vec![(target("web"), false)]);
    }

    fn deployment(spec: i32, status: i32) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": spec, "selector": {}, "template": {}}, "status": {"replicas": status}}))
        .unwrap()
    }

    fn binding(divided: bool, replicas: i32, members: &[i64], observed: bool) -> ResourceBinding {
        let placement = if divided {
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}})
        } else {
            json!({})
        };
        let clusters: Vec<Value> = (0..members.len())
            .map(|i| json!({"name": format!("member{}", i + 1), "replicas": 1}))
            .collect();
        let aggregated: Vec<Value> = members
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"clusterName": format!("member{}", i + 1), "status": {"replicas": r}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "web-deployment", "namespace": "ns", "generation": 2},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "replicas": replicas, "placement": placement, "clusters": clusters},
            "status": {"schedulerObservedGeneration": if observed { 2 } else { 1 }, "aggregatedStatus": aggregated}}))
        .unwrap()
    }

    #[test]
    fn member_replicas_flow_back_only_once_everything_caught_up() {
        let cases = [
            (deployment(4, 6), binding(true, 4, &[3, 3], true), Sync::Set(6)),
            (deployment(4, 6), binding(false, 4, &[3, 3], true), Sync::Nothing),
            (deployment(6, 6), binding(true, 6, &[3, 3], true), Sync::Nothing),
            // The binding has not seen the template's replicas, or the scheduler the binding.
            (deployment(10, 6), binding(true, 6, &[3, 3], true), Sync::Wait),
            (deployment(4, 6), binding(true, 4, &[3, 3], false), Sync::Wait),
            // A cluster has not reported, or reported no pods.
            (deployment(4, 3), binding(true, 4, &[3], true), Sync::Set(3)),
            (deployment(4, 6), binding(true, 4, &[6, 0], true), Sync::Wait),
            // The template's status has not reached the members' sum yet.
            (deployment(4, 5), binding(true, 4, &[3, 3], true), Sync::Wait),
        ];
        for (i, (d, b, want)) in cases.into_iter().enumerate() {
            assert_eq!(sync_replicas(&d, &b), want, "case {i}");
        }
    }
}
