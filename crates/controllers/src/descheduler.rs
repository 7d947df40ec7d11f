//! The descheduler (`karmada descheduler`, upstream's karmada-descheduler): every
//! `--descheduling-interval` each ResourceBinding of a Deployment whose applied placement divides
//! replicas by what clusters can take (Divided: Aggregated, or Weighted by a dynamic weight) is
//! looked at; in a cluster holding fewer ready replicas than assigned, the replicas whose pods
//! have been unschedulable in the member for `--unschedulable-threshold` are taken from its
//! assignment (never below what is ready there), and the scheduler places them where they fit.
//! The member's pods come from the estimator's watches (each member read with its own
//! credentials, as upstream's per-member estimators).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use karmada_api::events::Reason;
use karmada_api::policy::Placement;
use karmada_api::work::{ResourceBinding, TargetCluster};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

use crate::estimator::Estimator;
use crate::scheduling::APPLIED_PLACEMENT;

/// How the descheduler runs (upstream's flags and defaults).
#[derive(Clone, Debug)]
pub struct Options {
    /// `--descheduling-interval`.
    pub interval: Duration,
    /// `--unschedulable-threshold`.
    pub threshold: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { interval: Duration::from_secs(120), threshold: Duration::from_secs(300) }
    }
}

/// The new assignment of a binding and the Event message, or `None` when nothing moves.
/// `ready` holds the ready replicas each cluster reports (absent: not reported), and
/// `unschedulable` the replicas unschedulable there for the threshold (absent: unknown).
pub fn plan(
    clusters: &[TargetCluster],
    ready: &BTreeMap<String, i32>,
    unschedulable: &BTreeMap<String, i32>,
) -> Option<(Vec<TargetCluster>, String)> {
    let mut out = clusters.to_vec();
    let mut total = 0;
    let mut message = String::from("Binding has been descheduled");
    for target in &mut out {
        let spec = target.replicas;
        let ready_here = ready.get(&target.name).copied();
        if ready_here.is_some_and(|r| r >= spec) {
            continue;
        }
        let stuck = unschedulable.get(&target.name).copied().unwrap_or(0);
        if stuck <= 0 || spec < stuck {
            continue;
        }
        let mut kept = spec - stuck;
        if let Some(r) = ready_here
            && kept < r
            && r <= spec
        {
            kept = r;
        }
        let moved = spec - kept;
        if moved == 0 {
            continue;
        }
        target.replicas = kept;
        total += moved;
        message.push_str(&format!(", {moved} replica(s) in cluster({})", target.name));
    }
    (total > 0).then(|| {
        message.push_str(&format!(", {total} total descheduled replica(s)"));
        (out, message)
    })
}

/// Whether the descheduler looks at a binding: a Deployment, not being deleted, whose applied
/// placement divides replicas dynamically.
fn concerns(binding: &ResourceBinding) -> bool {
    let resource = &binding.spec.resource;
    if resource.api_version != "apps/v1"
        || resource.kind != "Deployment"
        || binding.metadata.deletion_timestamp.is_some()
    {
        return false;
    }
    binding
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPLIED_PLACEMENT))
        .and_then(|p| serde_json::from_str::<Placement>(p).ok())
        .is_some_and(|p| p.divides_dynamically())
}

/// Ready replicas per cluster, from the binding's aggregated status.
fn ready_replicas(binding: &ResourceBinding) -> BTreeMap<String, i32> {
    binding
        .status
        .iter()
        .flat_map(|s| &s.aggregated_status)
        .filter_map(|item| {
            let ready = item.status.as_ref()?.get("readyReplicas")?.as_i64()?;
            Some((item.cluster_name.clone(), i32::try_from(ready).ok()?))
        })
        .collect()
}

/// One pass over the bindings.
async fn deschedule_once(
    client: &kube::Client,
    estimator: &Estimator,
    events: &crate::events::Events,
    options: &Options,
) -> Result<(), kube::Error> {
    let bindings: Api<ResourceBinding> = Api::all(client.clone());
    let deployments = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    for binding in bindings.list(&Default::default()).await?.items {
        if !concerns(&binding) || binding.spec.clusters.is_empty() {
            continue;
        }
        let ready = ready_replicas(&binding);
        let undesired: Vec<&TargetCluster> = binding
            .spec
            .clusters
            .iter()
            .filter(|t| ready.get(&t.name).is_none_or(|r| *r < t.replicas))
            .collect();
        if undesired.is_empty() {
            continue;
        }
        // The workload's pods: its selector, from the template.
        let resource = &binding.spec.resource;
        let template: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &resource.namespace, &deployments);
        let Some(template) = template.get_opt(&resource.name).await? else { continue };
        let Some(selector) = template
            .data
            .pointer("/spec/selector")
            .and_then(|s| apimachinery::selector::LabelSelector::from_object(s).ok())
        else {
            continue;
        };
        let unschedulable: BTreeMap<String, i32> = undesired
            .iter()
            .filter_map(|t| {
                let n = estimator.unschedulable(
                    &t.name,
                    &resource.namespace,
                    &selector,
                    options.threshold,
                )?;
                Some((t.name.clone(), n))
            })
            .collect();
        let Some((clusters, message)) = plan(&binding.spec.clusters, &ready, &unschedulable) else {
            continue;
        };
        let name = binding.metadata.name.clone().unwrap_or_default();
        let api: Api<ResourceBinding> = Api::namespaced(
            client.clone(),
            binding.metadata.namespace.as_deref().unwrap_or_default(),
        );
        // Guarded by the resourceVersion the plan was made from, as upstream's Update.
        let patch = json!({
            "metadata": {"resourceVersion": binding.metadata.resource_version},
            "spec": {"clusters": clusters},
        });
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(binding = %name, %message, "descheduled");
                events.record_binding(&binding, Reason::DescheduleBindingSucceed, &message);
            }
            Err(e) => {
                events.record_binding(
                    &binding,
                    Reason::DescheduleBindingFailed,
                    &crate::error_text(&e),
                );
            }
        }
    }
    Ok(())
}

/// Runs the descheduler until the future is dropped.
pub async fn run(client: kube::Client, options: Options) -> anyhow::Result<()> {
    let estimator = Arc::new(Estimator::new(client.clone(), false));
    let events = crate::events::Events::start(client.clone(), "karmada-descheduler");
    let clusters: Api<karmada_api::cluster::Cluster> = Api::all(client.clone());
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match clusters.list(&Default::default()).await {
            Ok(list) => {
                let list: Vec<Arc<_>> = list.items.into_iter().map(Arc::new).collect();
                estimator.follow_clusters(&list).await;
            }
            Err(e) => tracing::warn!(error = %e, "listing clusters failed"),
        }
        if let Err(e) = deschedule_once(&client, &estimator, &events, &options).await {
            tracing::warn!(error = %e, "descheduling pass failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn unschedulable_replicas_leave_their_cluster() {
        let clusters = [TargetCluster::new("m1", 4), TargetCluster::new("m2", 2)];
        // m1 runs 1 of 4, 3 stuck: they go; m2 is fine.
        let (out, message) =
            plan(&clusters, &map(&[("m1", 1), ("m2", 2)]), &map(&[("m1", 3), ("m2", 0)])).unwrap();
        assert_eq!(out, [TargetCluster::new("m1", 1), TargetCluster::new("m2", 2)]);
        assert_eq!(
            message,
            "Binding has been descheduled, 3 replica(s) in cluster(m1), 3 total descheduled replica(s)"
        );
        // Never below what is ready (pods counted stuck while others became ready).
        let (out, _) = plan(&clusters, &map(&[("m1", 2)]), &map(&[("m1", 3)])).unwrap();
        assert_eq!(out[0].replicas, 2);
        // Nothing stuck long enough, an unknown count, or more stuck than assigned: nothing moves.
        assert!(plan(&clusters, &map(&[("m1", 1)]), &map(&[("m1", 0)])).is_none());
        assert!(plan(&clusters, &map(&[("m1", 1)]), &map(&[])).is_none());
        assert!(plan(&clusters, &map(&[("m1", 1)]), &map(&[("m1", 5)])).is_none());
        // A cluster that reports no status yet has no floor.
        let (out, _) = plan(&clusters, &map(&[]), &map(&[("m1", 4)])).unwrap();
        assert_eq!(out[0].replicas, 0);
    }

    #[test]
    fn only_dynamically_divided_deployments_are_descheduled() {
        let binding = |kind: &str, placement: serde_json::Value| -> ResourceBinding {
            serde_json::from_value(json!({
                "apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "b", "namespace": "ns",
                             "annotations": {APPLIED_PLACEMENT: placement.to_string()}},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": kind, "namespace": "ns", "name": "w"}}
            }))
            .unwrap()
        };
        let dynamic = json!({"replicaScheduling": {"replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}});
        let aggregated = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}});
        let fixed = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
            "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["m1"]}, "weight": 1}]}}});
        let duplicated = json!({"replicaScheduling": {"replicaSchedulingType": "Duplicated"}});
        assert!(concerns(&binding("Deployment", dynamic.clone())));
        assert!(concerns(&binding("Deployment", aggregated)));
        assert!(!concerns(&binding("Deployment", fixed)));
        assert!(!concerns(&binding("Deployment", duplicated)));
        assert!(!concerns(&binding("StatefulSet", dynamic)));
    }
}
