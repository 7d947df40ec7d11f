//! FederatedResourceQuota: upstream's `federatedResourceQuotaSync`,
//! `federatedResourceQuotaStatus` and `federatedResourceQuotaEnforcement` in one
//! level-triggered loop, each part run when its controller is on.
//!
//! - sync: each static assignment becomes a Work carrying a ResourceQuota (the quota's name and
//!   namespace, the assignment's `hard`) to that cluster, kept as the assignments and clusters
//!   change; Works of clusters no longer assigned, and of quotas gone, are deleted.
//! - status: `status.aggregatedStatus` from those Works' status (each member's ResourceQuota
//!   `hard`/`used`); without enforcement also `overall` and `overallUsed` (their sum).
//! - enforcement: `status.overall` is `spec.overall` and `status.overallUsed` is recounted from
//!   the namespace's bindings — when the quota or its `overall` is new, when a binding of its
//!   namespace is deleted, and every `--federated-resource-quota-sync-period`. Between
//!   recounts the API server accounts each binding write (`control_plane::quota`).
//!
//! Decisions are pure ([`quota_works`], [`aggregated_status`], [`status_patch`]); the loop reads
//! caches and writes only what differs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use karmada_api::events::{Reason, message};
use karmada_api::names;
use karmada_api::policy::{ClusterQuotaStatus, FederatedResourceQuota};
use karmada_api::quota as q;
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::shared::Change;

const MANAGER: &str = "federated-resource-quota-sync-controller";

/// Which of upstream's three controllers are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    pub sync: bool,
    pub status: bool,
    pub enforcement: bool,
}

fn key_of(quota: &FederatedResourceQuota) -> (String, String) {
    (
        quota.metadata.namespace.clone().unwrap_or_default(),
        quota.metadata.name.clone().unwrap_or_default(),
    )
}

/// The Works a quota wants, by cluster: one per assigned cluster that exists.
pub fn quota_works(
    quota: &FederatedResourceQuota,
    clusters: &BTreeSet<String>,
) -> BTreeMap<String, Value> {
    let (namespace, name) = key_of(quota);
    quota
        .spec
        .static_assignments
        .iter()
        .filter(|a| clusters.contains(&a.cluster_name))
        .map(|a| {
            let work = json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {
                    "name": names::work_name("ResourceQuota", &name, &namespace),
                    "namespace": names::execution_namespace(&a.cluster_name),
                    "labels": {names::FRQ_NAMESPACE_LABEL: namespace, names::FRQ_NAME_LABEL: name}},
                "spec": {"workload": {"manifests": [q::member_quota(&namespace, &name, &a.hard)]}}});
            (a.cluster_name.clone(), work)
        })
        .collect()
}

/// The quota a Work belongs to, from its labels.
fn owner_of(work: &Work) -> Option<(String, String)> {
    let labels = work.metadata.labels.as_ref()?;
    Some((
        labels.get(names::FRQ_NAMESPACE_LABEL)?.clone(),
        labels.get(names::FRQ_NAME_LABEL)?.clone(),
    ))
}

/// Each member's ResourceQuota status, from the quota's Works applied there, by cluster name.
pub fn aggregated_status(works: &[&Work]) -> Vec<ClusterQuotaStatus> {
    let mut out: Vec<ClusterQuotaStatus> = works
        .iter()
        .filter_map(|w| {
            let status = w.status.as_ref()?;
            let applied =
                status.conditions.iter().any(|c| c.type_ == "Applied" && c.status == "True");
            if !applied {
                return None;
            }
            let reported = status.manifest_statuses.first()?.status.as_ref()?;
            let cluster = names::cluster_of_execution_namespace(w.metadata.namespace.as_deref()?)?;
            let list = |field: &str| -> BTreeMap<String, _> {
                reported
                    .get(field)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default()
            };
            Some(ClusterQuotaStatus {
                cluster_name: cluster.to_owned(),
                hard: list("hard"),
                used: list("used"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out
}

/// A merge patch of the quota's status to what the parts want, or `None` when it has it.
/// `recounted`: the enforcement part's recount of `overallUsed`, when one is due. The patch
/// carries the quota's resourceVersion, so a recount never overwrites usage the API server
/// accounted after the quota was read.
pub fn status_patch(
    quota: &FederatedResourceQuota,
    parts: Parts,
    aggregated: Option<Vec<ClusterQuotaStatus>>,
    recounted: Option<&q::Resources>,
) -> Option<Value> {
    let current = quota.status.clone().unwrap_or_default();
    let mut status = serde_json::Map::new();
    let same =
        |a: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
         b: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            q::resources(a) == q::resources(b) && a.len() == b.len()
        };
    // A map replaced whole: keys it no longer has are nulled.
    let replace =
        |old: &BTreeMap<String, _>,
         new: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            let mut m: serde_json::Map<String, Value> =
                old.keys().map(|k: &String| (k.clone(), Value::Null)).collect();
            for (k, v) in new {
                m.insert(k.clone(), json!(v));
            }
            Value::Object(m)
        };
    if let Some(aggregated) = aggregated {
        if parts.status && aggregated != current.aggregated_status {
            status.insert("aggregatedStatus".into(), json!(aggregated));
        }
        if parts.status && !parts.enforcement {
            let mut used = q::Resources::new();
            for a in &aggregated {
                apimachinery::quantity::add(&mut used, &q::resources(&a.used));
            }
            let used = q::quantities(&used);
            if !same(&current.overall_used, &used) {
                status.insert("overallUsed".into(), replace(&current.overall_used, &used));
            }
        }
    }
    if (parts.status || parts.enforcement) && !same(&current.overall, &quota.spec.overall) {
        status.insert("overall".into(), replace(&current.overall, &quota.spec.overall));
    }
    if parts.enforcement
        && let Some(recounted) = recounted
    {
        let used = q::quantities(recounted);
        if !same(&current.overall_used, &used) {
            status.insert("overallUsed".into(), replace(&current.overall_used, &used));
        }
    }
    if status.is_empty() {
        return None;
    }
    Some(
        json!({"metadata": {"resourceVersion": quota.metadata.resource_version}, "status": status}),
    )
}

/// Runs the parts that are on until the future is dropped.
pub async fn run(
    client: kube::Client,
    caches: crate::Caches,
    parts: Parts,
    resync: Duration,
) -> anyhow::Result<()> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let (quotas, quota_watch) = crate::shared::cached::<FederatedResourceQuota>(
        &client,
        watcher::Config::default(),
        &notify,
    );
    // Only the quotas' own Works, selected by the API server.
    let (works, work_watch) = crate::shared::cached::<Work>(
        &client,
        watcher::Config::default().labels(names::FRQ_NAME_LABEL),
        &notify,
    );
    let _clusters = caches.clusters.notify_on_change(&notify);
    // Bindings deleted, by namespace: the recount is due there.
    let deleted: Arc<parking_lot::Mutex<BTreeSet<String>>> = Arc::default();
    let bindings_watch = {
        let (deleted, notify) = (Arc::clone(&deleted), Arc::clone(&notify));
        tokio::spawn(caches.bindings.subscribe().for_each(move |change| {
            if let Change::Deleted(b) = &change {
                deleted.lock().insert(b.metadata.namespace.clone().unwrap_or_default());
                notify.notify_one();
            }
            async {}
        }))
    };
    let events =
        crate::events::Events::start(client.clone(), "federated-resource-quota-controller");
    let mut applied = crate::mcs::Applied::default();
    // The overall each quota was last recounted for, and when.
    let mut counted: HashMap<(String, String), (Value, Instant)> = HashMap::new();
    quotas.wait_until_ready().await?;
    works.wait_until_ready().await?;
    caches.clusters.ready().await;
    caches.bindings.ready().await;
    notify.notify_one();
    loop {
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(resync.min(Duration::from_secs(60))) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if quota_watch.is_finished() || work_watch.is_finished() || bindings_watch.is_finished() {
            anyhow::bail!("a FederatedResourceQuota controller watch stopped");
        }
        let clusters: BTreeSet<String> = caches
            .clusters
            .store()
            .state()
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        let all_quotas = quotas.state();
        let all_works = works.state();
        let deleted_in = std::mem::take(&mut *deleted.lock());
        let mut by_quota: HashMap<(String, String), Vec<&Work>> = HashMap::new();
        for w in &all_works {
            if let Some(owner) = owner_of(w) {
                by_quota.entry(owner).or_default().push(w.as_ref());
            }
        }
        let mut failed = false;
        let live: BTreeSet<(String, String)> = all_quotas.iter().map(|f| key_of(f)).collect();
        // Works of quotas gone.
        if parts.sync {
            for (owner, ws) in &by_quota {
                if live.contains(owner) {
                    continue;
                }
                for w in ws {
                    failed |= delete_work(&client, w).await.is_err();
                }
            }
        }
        // Bindings by namespace, for the recounts due.
        let mut recount_ns: BTreeSet<String> = BTreeSet::new();
        if parts.enforcement {
            for quota in &all_quotas {
                let key = key_of(quota);
                let overall = json!(quota.spec.overall);
                let due = match counted.get(&key) {
                    None => true,
                    Some((was, at)) => *was != overall || at.elapsed() >= resync,
                } || deleted_in.contains(&key.0);
                if due {
                    recount_ns.insert(key.0.clone());
                }
            }
        }
        let mut usage_by_ns: HashMap<String, Vec<karmada_api::work::ResourceBindingSpec>> =
            HashMap::new();
        if !recount_ns.is_empty() {
            for b in caches.bindings.store().state() {
                let ns = b.metadata.namespace.clone().unwrap_or_default();
                if recount_ns.contains(&ns) && b.metadata.deletion_timestamp.is_none() {
                    usage_by_ns.entry(ns).or_default().push(b.spec.clone());
                }
            }
        }
        for quota in &all_quotas {
            if quota.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = key_of(quota);
            let quota_name = format!("{}/{}", key.0, key.1);
            let regarding = crate::events::reference_of(quota.as_ref());
            let mine = by_quota.get(&key).cloned().unwrap_or_default();
            if parts.sync {
                match sync_works(&client, quota, &clusters, &mine, &mut applied).await {
                    Ok(true) => events.record(
                        regarding.clone(),
                        Reason::SyncWorkSucceed,
                        message::quota_works_synced(&quota_name),
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        failed = true;
                        events.record(
                            regarding.clone(),
                            Reason::SyncWorkFailed,
                            crate::error_text(&e),
                        );
                    }
                }
            }
            let recounted = recount_ns.contains(&key.0).then(|| {
                let overall = q::resources(&quota.spec.overall);
                q::overall_used(usage_by_ns.get(&key.0).into_iter().flatten(), &overall)
            });
            let aggregated = parts.status.then(|| aggregated_status(&mine));
            let aggregated_changed = aggregated
                .as_ref()
                .is_some_and(|a| *a != quota.status.clone().unwrap_or_default().aggregated_status);
            if let Some(patch) = status_patch(quota, parts, aggregated, recounted.as_ref()) {
                let api: Api<FederatedResourceQuota> = Api::namespaced(client.clone(), &key.0);
                match api.patch_status(&key.1, &PatchParams::default(), &Patch::Merge(&patch)).await
                {
                    Ok(_) => {
                        if aggregated_changed {
                            events.record(
                                regarding.clone(),
                                Reason::AggregateStatusSucceed,
                                message::quota_status_collected(&quota_name),
                            );
                        }
                    }
                    Err(e) => {
                        failed = true;
                        tracing::debug!(quota = quota_name, error = %e, "FederatedResourceQuota status");
                        if recounted.is_some() && !crate::is_conflict(&e) {
                            events.record(
                                regarding.clone(),
                                Reason::CollectOverallStatusFailed,
                                crate::error_text(&e),
                            );
                        }
                        continue;
                    }
                }
            }
            if recounted.is_some() {
                counted.insert(key.clone(), (json!(quota.spec.overall), Instant::now()));
                events.record(
                    regarding,
                    Reason::CollectOverallStatusSucceed,
                    message::quota_status_collected(&quota_name),
                );
            }
        }
        counted.retain(|k, _| live.contains(k));
        applied.retain(|k| live.iter().any(|(ns, n)| k.starts_with(&format!("{ns}/{n}/"))));
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            notify.notify_one();
        }
    }
}

/// Writes a quota's Works and deletes those of clusters no longer assigned; whether anything
/// was written.
async fn sync_works(
    client: &kube::Client,
    quota: &FederatedResourceQuota,
    clusters: &BTreeSet<String>,
    existing: &[&Work],
    applied: &mut crate::mcs::Applied,
) -> Result<bool, kube::Error> {
    let (namespace, name) = key_of(quota);
    let wanted = quota_works(quota, clusters);
    let mut wrote = false;
    for (cluster, work) in &wanted {
        let memo = format!("{namespace}/{name}/{cluster}");
        let exec_ns = names::execution_namespace(cluster);
        let exists = existing.iter().any(|w| {
            w.metadata.namespace.as_deref() == Some(exec_ns.as_str())
                && w.metadata.deletion_timestamp.is_none()
        });
        if !applied.needs(&memo, work, exists) {
            continue;
        }
        let api: Api<Work> = Api::namespaced(client.clone(), &exec_ns);
        let work_name = work["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(work_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(work)).await?;
        applied.record(&memo, work);
        wrote = true;
    }
    for w in existing {
        let cluster = w
            .metadata
            .namespace
            .as_deref()
            .and_then(names::cluster_of_execution_namespace)
            .unwrap_or_default();
        if !wanted.contains_key(cluster) && w.metadata.deletion_timestamp.is_none() {
            delete_work(client, w).await?;
            wrote = true;
        }
    }
    Ok(wrote)
}

async fn delete_work(client: &kube::Client, work: &Work) -> Result<(), kube::Error> {
    if work.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let api: Api<Work> =
        Api::namespaced(client.clone(), work.metadata.namespace.as_deref().unwrap_or_default());
    match api
        .delete(work.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(spec: Value, status: Value) -> FederatedResourceQuota {
        serde_json::from_value(
            json!({"metadata": {"name": "q", "namespace": "ns", "resourceVersion": "7"},
            "spec": spec, "status": status}),
        )
        .unwrap()
    }

    fn work(cluster: &str, applied: bool, status: Value) -> Work {
        serde_json::from_value(json!({"metadata": {"name": "w", "namespace": names::execution_namespace(cluster),
            "labels": {names::FRQ_NAMESPACE_LABEL: "ns", names::FRQ_NAME_LABEL: "q"}},
            "spec": {},
            "status": {"conditions": [{"type": "Applied", "status": if applied {"True"} else {"False"},
                "reason": "x", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "manifestStatuses": [{"identifier": {"ordinal": 0, "version": "v1", "kind": "ResourceQuota", "name": "q", "namespace": "ns", "resource": "resourcequotas"},
                    "status": status}]}}))
        .unwrap()
    }

    #[test]
    fn assignments_become_works_in_existing_clusters() {
        let frq = quota(
            json!({"overall": {"cpu": "8"}, "staticAssignments": [
                {"clusterName": "member1", "hard": {"cpu": "1"}}, {"clusterName": "gone", "hard": {"cpu": "1"}}]}),
            json!({}),
        );
        let clusters: BTreeSet<String> = ["member1".to_owned(), "member2".to_owned()].into();
        let works = quota_works(&frq, &clusters);
        assert_eq!(works.keys().collect::<Vec<_>>(), ["member1"]);
        let w = &works["member1"];
        assert_eq!(w["metadata"]["namespace"], "karmada-es-member1");
        assert_eq!(w["metadata"]["labels"][names::FRQ_NAME_LABEL], "q");
        assert_eq!(
            w["spec"]["workload"]["manifests"][0],
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "ns"},
                "spec": {"hard": {"cpu": "1"}}})
        );
    }

    #[test]
    fn status_comes_from_applied_works_and_the_recount() {
        let frq = quota(
            json!({"overall": {"cpu": "8", "memory": "16Gi"}}),
            json!({"overallUsed": {"cpu": "1", "pods": "2"}}),
        );
        let w1 = work("member2", true, json!({"hard": {"cpu": "1"}, "used": {"cpu": "500m"}}));
        let w2 = work("member1", true, json!({"hard": {"cpu": "2"}, "used": {"cpu": "0"}}));
        let w3 = work("member3", false, json!({"hard": {"cpu": "9"}}));
        let aggregated = aggregated_status(&[&w1, &w2, &w3]);
        assert_eq!(
            aggregated.iter().map(|a| a.cluster_name.as_str()).collect::<Vec<_>>(),
            ["member1", "member2"]
        );
        let all = Parts { sync: true, status: true, enforcement: true };
        // Enforcement: overallUsed is the recount, keys no longer used are removed.
        let recount: q::Resources = [("cpu".to_owned(), 250)].into();
        let patch = status_patch(&frq, all, Some(aggregated.clone()), Some(&recount)).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert_eq!(patch["status"]["overallUsed"], json!({"cpu": "250m", "pods": null}));
        assert_eq!(patch["status"]["overall"], json!({"cpu": "8", "memory": "16Gi"}));
        assert_eq!(patch["status"]["aggregatedStatus"][1]["used"], json!({"cpu": "500m"}));
        // No recount due: overallUsed is the API server's accounting, left alone.
        let patch = status_patch(&frq, all, Some(aggregated.clone()), None).unwrap();
        assert!(patch["status"].get("overallUsed").is_none());
        // Without enforcement: the members' sum.
        let no_enforcement = Parts { enforcement: false, ..all };
        let patch = status_patch(&frq, no_enforcement, Some(aggregated), None).unwrap();
        assert_eq!(patch["status"]["overallUsed"], json!({"cpu": "500m", "pods": null}));
        // Nothing to change: no write.
        let done = quota(
            json!({"overall": {"cpu": "8"}}),
            json!({"overall": {"cpu": "8"}, "overallUsed": {"cpu": "250m"}}),
        );
        assert_eq!(status_patch(&done, all, Some(vec![]), Some(&recount)), None);
    }
}
