//! Namespace auto-propagation (upstream's namespace sync controller): every namespace created
//! in the control plane exists in every member cluster, except reserved ones (`karmada-*`,
//! `kube-*`), `default`, and those labelled `namespace.karmada.io/skip-auto-propagation:
//! "true"`. One Work per (namespace, cluster), with ClusterOverridePolicies applied; a
//! namespace that already exists in a member is adopted (conflict resolution Overwrite).
//! Deleting the namespace (or adding the skip label) removes its Works, and so the namespace
//! from the members. A cluster that joins later gets every namespace.
//!
//! The controller computes the whole desired set from watch caches and writes the difference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use karmada_api::cluster::Cluster;
use karmada_api::policy::ClusterOverridePolicy;
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use propagation::Template;
use propagation::overrides::{OverridePolicyRef, render};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::binding::{CONFLICT_ANNOTATION, MANAGED_LABEL, strip};
use crate::execution_namespace;
use karmada_api::names;

/// The label that opts a namespace out of auto-propagation.
pub const SKIP_LABEL: &str = "namespace.karmada.io/skip-auto-propagation";
/// The label naming the namespace a Work propagates.
pub const NAMESPACE_WORK_LABEL: &str = "namespace.karmada.io/name";

/// Whether a namespace is propagated to every cluster.
pub fn auto_propagated(name: &str, labels: &BTreeMap<String, String>) -> bool {
    !crate::detector::reserved_namespace(name)
        && name != "default"
        && labels.get(SKIP_LABEL).map(String::as_str) != Some("true")
}

/// The namespace as sent to members: metadata only (no spec, status or server fields), marked
/// as Karmada's and adopting an existing namespace of the same name.
pub fn manifest(namespace: &Value) -> Value {
    let mut out = strip(namespace);
    if let Some(m) = out.as_object_mut() {
        m.remove("spec");
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("kind".into(), json!("Namespace"));
    }
    apimachinery::object::string_map_mut(&mut out, "labels")
        .insert(MANAGED_LABEL.into(), json!("true"));
    apimachinery::object::string_map_mut(&mut out, "annotations")
        .insert(CONFLICT_ANNOTATION.into(), json!("overwrite"));
    out
}

/// What upstream writes on a namespace Work's manifest: the Work's name and namespace (and id,
/// once it has one), and the managed key lists.
fn mark_manifest(manifest: &mut Value, work: &str, es: &str, work_id: Option<&str>) {
    let annotations = apimachinery::object::string_map_mut(manifest, "annotations");
    annotations.insert(names::WORK_NAME_ANNOTATION.into(), json!(work));
    annotations.insert(names::WORK_NAMESPACE_ANNOTATION.into(), json!(es));
    karmada_api::admission::stamp_workload(manifest, work_id);
}

/// The Work name of a namespace (the same in every execution namespace; upstream's).
pub fn namespace_work_name(namespace: &str) -> String {
    names::work_name("Namespace", namespace, "")
}

struct Caches {
    namespaces: Store<Namespace>,
    clusters: Store<Cluster>,
    works: Store<Work>,
    cops: Store<ClusterOverridePolicy>,
}

async fn sync(client: &kube::Client, caches: &Caches) -> Result<(), kube::Error> {
    let cops = caches.cops.state();
    let cop_refs: Vec<OverridePolicyRef<'_>> =
        cops.iter().map(|p| OverridePolicyRef::cluster(p)).collect();
    let clusters: Vec<Arc<Cluster>> = caches
        .clusters
        .state()
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .collect();
    // (execution namespace, work name) → Work spec.
    let mut desired: BTreeMap<(String, String), (String, Value)> = BTreeMap::new();
    for ns in caches.namespaces.state() {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        if ns.metadata.deletion_timestamp.is_some() || !auto_propagated(&name, &labels) {
            continue;
        }
        let object = serde_json::to_value(&*ns).unwrap_or_default();
        let base = manifest(&object);
        let t = Template::from_object(&base);
        for cluster in &clusters {
            let info = crate::scheduling::cluster_info(cluster);
            let matches = move |affinity: Option<&karmada_api::policy::ClusterAffinity>| {
                affinity.is_none_or(|a| scheduler::filter::matches_affinity(a, &info))
            };
            let rendered = match render("Namespace", &t, &base, &matches, &cop_refs, &[]) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(namespace = %name, policy = %e.policy, error = %e.message, "override failed; namespace not updated in this cluster");
                    continue;
                }
            };
            let es = execution_namespace(cluster.metadata.name.as_deref().unwrap_or_default());
            desired.insert(
                (es, namespace_work_name(&name)),
                (name.clone(), json!({"workload": {"manifests": [rendered]}})),
            );
        }
    }
    let existing: Vec<Arc<Work>> = caches
        .works
        .state()
        .into_iter()
        .filter(|w| {
            w.metadata.labels.as_ref().is_some_and(|l| l.contains_key(NAMESPACE_WORK_LABEL))
        })
        .collect();
    for work in &existing {
        let key = (
            work.metadata.namespace.clone().unwrap_or_default(),
            work.metadata.name.clone().unwrap_or_default(),
        );
        if !desired.contains_key(&key) && work.metadata.deletion_timestamp.is_none() {
            let api: Api<Work> = Api::namespaced(client.clone(), &key.0);
            // A Work named by an earlier version for a namespace still propagated: its
            // namespace in the member stays (the Work under the new name manages it).
            let namespace = work.metadata.labels.as_ref().and_then(|l| l.get(NAMESPACE_WORK_LABEL));
            if namespace
                .is_some_and(|n| desired.contains_key(&(key.0.clone(), namespace_work_name(n))))
            {
                crate::binding::retire_renamed_work(&api, &key.1).await?;
                continue;
            }
            match api.delete(&key.1, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    for ((es, work), (namespace, mut spec)) in desired {
        let current = existing.iter().find(|w| {
            w.metadata.namespace.as_deref() == Some(es.as_str())
                && w.metadata.name.as_deref() == Some(work.as_str())
        });
        if let Some(manifest) = spec.pointer_mut("/workload/manifests/0") {
            let work_id = current
                .and_then(|w| w.metadata.labels.as_ref()?.get(names::WORK_PERMANENT_ID_LABEL))
                .map(String::as_str);
            mark_manifest(manifest, &work, &es, work_id);
        }
        if current.is_some_and(|w| serde_json::to_value(&w.spec).ok().as_ref() == Some(&spec)) {
            continue;
        }
        let body = json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": work, "namespace": es,
                "labels": {NAMESPACE_WORK_LABEL: namespace, MANAGED_LABEL: "true"},
                "finalizers": [crate::execution::FINALIZER]},
            "spec": spec});
        let api: Api<Work> = Api::namespaced(client.clone(), &es);
        match api
            .patch(
                &work,
                &PatchParams::apply("karmada-namespace-sync").force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => {}
            // The execution namespace of a cluster being added or removed: next round.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs namespace auto-propagation until the future is dropped.
pub async fn run(client: kube::Client, shared: crate::Caches) -> anyhow::Result<()> {
    let notify = Arc::new(Notify::new());
    let (namespaces, t1) =
        crate::shared::cached::<Namespace>(&client, watcher::Config::default(), &notify);
    let clusters = shared.clusters.store();
    let t2 = shared.clusters.notify_on_change(&notify);
    let (works, t3) = crate::shared::cached::<Work>(
        &client,
        watcher::Config::default().labels(NAMESPACE_WORK_LABEL),
        &notify,
    );
    let cops = shared.cluster_override_policies.store();
    let t4 = shared.cluster_override_policies.notify_on_change(&notify);
    let _ = tokio::join!(
        namespaces.wait_until_ready(),
        shared.clusters.ready(),
        works.wait_until_ready(),
        shared.cluster_override_policies.ready()
    );
    let caches = Caches { namespaces, clusters, works, cops };
    loop {
        // Changes arriving together are handled in one pass.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Err(error) = sync(&client, &caches).await {
            tracing::warn!(%error, "namespace sync failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        crate::shared::next_change(&notify, &[&t1, &t2, &t3, &t4], "namespace sync").await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_namespaces_propagate() {
        let none = BTreeMap::new();
        for (name, want) in [
            ("team-a", true),
            ("default", false),
            ("kube-system", false),
            ("kube-public", false),
            ("karmada-system", false),
            ("karmada-cluster", false),
            ("karmada-es-member1", false),
        ] {
            assert_eq!(auto_propagated(name, &none), want, "{name}");
        }
        let skip: BTreeMap<String, String> =
            [(SKIP_LABEL.to_string(), "true".to_string())].into_iter().collect();
        assert!(!auto_propagated("team-a", &skip));
    }

    #[test]
    fn the_member_copy_is_metadata_only() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team-a", "uid": "u", "resourceVersion": "5", "labels": {"team": "a"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        assert_eq!(
            manifest(&ns),
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team-a", "labels": {"team": "a", MANAGED_LABEL: "true"},
                    "annotations": {CONFLICT_ANNOTATION: "overwrite"}}})
        );
        assert_ne!(namespace_work_name("a"), namespace_work_name("b"));
    }
}
