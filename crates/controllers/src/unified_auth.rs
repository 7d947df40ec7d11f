//! Unified authentication (upstream's `unifiedAuth` controller): the cluster proxy reaches a
//! member as the cluster's impersonator ServiceAccount impersonating the caller, so each member
//! must let that ServiceAccount impersonate exactly the subjects the control plane grants
//! `clusters/proxy` on that cluster. For every cluster with an impersonator Secret, this
//! controller keeps two Works in its execution namespace: the ClusterRole
//! `karmada-impersonator` (the `impersonate` verb on those users, ServiceAccounts and groups)
//! and its ClusterRoleBinding to the impersonator ServiceAccount, recomputed whenever a
//! ClusterRole, ClusterRoleBinding or Cluster changes. What the impersonated caller may then
//! do in the member is the member's own RBAC.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Subject};
use karmada_api::cluster::Cluster;
use karmada_api::events::{Reason, message};
use karmada_api::names;
use karmada_api::work::Work;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::binding::MANAGED_LABEL;
use crate::execution_namespace;

/// The ClusterRole and ClusterRoleBinding written to members (upstream's name).
pub const IMPERSONATOR: &str = "karmada-impersonator";

const MANAGER: &str = "karmada-unified-auth";

fn matches(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

fn resource_matches(list: &[String], group_resource: &str) -> bool {
    let (resource, _) = group_resource.split_once('/').unwrap_or((group_resource, ""));
    list.iter().any(|v| v == "*" || v == group_resource || *v == format!("{resource}/*"))
}

/// Whether a rule grants something on `clusters/proxy` of `cluster` (or on search's proxying,
/// which reaches every cluster).
fn grants_proxy(rule: &PolicyRule, cluster: &str) -> bool {
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let names = rule.resource_names.as_deref().unwrap_or_default();
    let cluster_proxy = matches(groups, "cluster.karmada.io")
        && resource_matches(resources, "clusters/proxy")
        && (names.is_empty() || matches(names, cluster));
    let search_proxy =
        matches(groups, "search.karmada.io") && resource_matches(resources, "proxying/proxy");
    cluster_proxy || search_proxy
}

/// The subjects the control plane lets reach `cluster` through the proxy: those bound (by a
/// ClusterRoleBinding) to a ClusterRole granting `clusters/proxy` on it.
pub fn proxy_subjects(
    cluster: &str,
    roles: &[Arc<ClusterRole>],
    bindings: &[Arc<ClusterRoleBinding>],
) -> Vec<Subject> {
    let granting: BTreeSet<&str> = roles
        .iter()
        .filter(|r| r.rules.iter().flatten().any(|rule| grants_proxy(rule, cluster)))
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    bindings
        .iter()
        .filter(|b| b.role_ref.kind == "ClusterRole" && granting.contains(b.role_ref.name.as_str()))
        .flat_map(|b| b.subjects.iter().flatten().cloned())
        .collect()
}

/// The `impersonate` rules for these subjects: users, ServiceAccounts and groups by name, each
/// list sorted and without repeats (none: no rules).
pub fn impersonation_rules(subjects: &[Subject]) -> Vec<Value> {
    let mut by_kind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in subjects {
        let resource = match s.kind.as_str() {
            "User" => "users",
            "ServiceAccount" => "serviceaccounts",
            "Group" => "groups",
            _ => continue,
        };
        by_kind.entry(resource).or_default().insert(s.name.as_str());
    }
    ["users", "serviceaccounts", "groups"]
        .iter()
        .filter_map(|resource| {
            let names = by_kind.get(resource)?;
            Some(json!({"apiGroups": [""], "resources": [resource], "verbs": ["impersonate"],
                "resourceNames": names}))
        })
        .collect()
}

/// The two objects a member gets: the ClusterRole and its binding to the impersonator.
pub fn manifests(rules: Vec<Value>, impersonator_namespace: &str) -> [Value; 2] {
    let labels = json!({"karmada.io/system": "true"});
    [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": IMPERSONATOR, "labels": labels}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": IMPERSONATOR, "labels": labels},
            "subjects": [{"kind": "ServiceAccount", "namespace": impersonator_namespace,
                "name": IMPERSONATOR}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": IMPERSONATOR}}),
    ]
}

struct Caches {
    roles: Store<ClusterRole>,
    bindings: Store<ClusterRoleBinding>,
    clusters: Store<Cluster>,
}

/// Writes each cluster's Works when they differ from what was last written.
async fn sync(
    client: &kube::Client,
    caches: &Caches,
    written: &mut BTreeMap<String, Value>,
    events: &crate::events::Events,
) -> Result<(), kube::Error> {
    let roles = caches.roles.state();
    let bindings = caches.bindings.state();
    let mut seen = BTreeSet::new();
    for cluster in caches.clusters.state() {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let Some(secret) = &cluster.spec.impersonator_secret_ref else { continue };
        if cluster.metadata.deletion_timestamp.is_some() {
            continue;
        }
        seen.insert(name.clone());
        let rules = impersonation_rules(&proxy_subjects(&name, &roles, &bindings));
        let objects = manifests(rules, &secret.namespace);
        let fingerprint = json!([objects, cluster.metadata.uid]);
        if written.get(&name) == Some(&fingerprint) {
            continue;
        }
        let es = execution_namespace(&name);
        let works: Api<Work> = Api::namespaced(client.clone(), &es);
        for object in &objects {
            let kind = object["kind"].as_str().unwrap_or_default();
            let work_name = names::work_name(kind, IMPERSONATOR, "");
            let body = json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": work_name, "namespace": es,
                    "labels": {MANAGED_LABEL: "true"},
                    "finalizers": [names::EXECUTION_FINALIZER],
                    "ownerReferences": [{"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
                        "name": name, "uid": cluster.metadata.uid, "controller": true,
                        "blockOwnerDeletion": true}]},
                "spec": {"workload": {"manifests": [object]}}});
            match works
                .patch(&work_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
                .await
            {
                Ok(_) => {}
                // The execution namespace not there yet (a cluster joining): next round.
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        events.record(
            crate::events::reference_of(cluster.as_ref()),
            Reason::SyncImpersonationConfigSucceed,
            message::IMPERSONATION_SYNCED,
        );
        written.insert(name, fingerprint);
    }
    written.retain(|name, _| seen.contains(name));
    Ok(())
}

/// Runs unified authentication until the future is dropped.
pub async fn run(client: kube::Client, shared: crate::Caches) -> anyhow::Result<()> {
    let notify = Arc::new(Notify::new());
    let (roles, t1) =
        crate::shared::cached::<ClusterRole>(&client, watcher::Config::default(), &notify);
    let (bindings, t2) =
        crate::shared::cached::<ClusterRoleBinding>(&client, watcher::Config::default(), &notify);
    let t3 = shared.clusters.notify_on_change(&notify);
    let _ = tokio::join!(
        roles.wait_until_ready(),
        bindings.wait_until_ready(),
        shared.clusters.ready()
    );
    let caches = Caches { roles, bindings, clusters: shared.clusters.store() };
    let events = crate::events::Events::start(client.clone(), "unified-auth-controller");
    let mut written = BTreeMap::new();
    loop {
        // Changes arriving together are handled in one pass.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Err(error) = sync(&client, &caches, &mut written, &events).await {
            tracing::warn!(%error, "unified auth sync failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        crate::shared::next_change(&notify, &[&t1, &t2, &t3], "unified auth").await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, rules: Value) -> Arc<ClusterRole> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).unwrap(),
        )
    }

    fn binding(role: &str, subjects: Value) -> Arc<ClusterRoleBinding> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": format!("{role}-binding")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects}))
            .unwrap(),
        )
    }

    #[test]
    fn who_may_be_impersonated_in_a_member() {
        let roles = [
            role(
                "member1-proxy",
                json!([{"apiGroups": ["cluster.karmada.io"], "resources": ["clusters/proxy"],
                "verbs": ["*"], "resourceNames": ["member1"]}]),
            ),
            role(
                "any-proxy",
                json!([{"apiGroups": ["cluster.karmada.io"], "resources": ["clusters/*"], "verbs": ["get"]}]),
            ),
            role(
                "reader",
                json!([{"apiGroups": ["cluster.karmada.io"], "resources": ["clusters"], "verbs": ["get"]}]),
            ),
        ];
        let bindings = [
            binding(
                "member1-proxy",
                json!([{"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "tom", "namespace": "ns"},
                {"kind": "Group", "name": "system:serviceaccounts"}]),
            ),
            binding(
                "any-proxy",
                json!([{"kind": "User", "name": "bob"}, {"kind": "User", "name": "alice"}]),
            ),
            binding("reader", json!([{"kind": "User", "name": "carol"}])),
        ];
        let rules = |cluster| impersonation_rules(&proxy_subjects(cluster, &roles, &bindings));
        assert_eq!(
            rules("member1"),
            [
                json!({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice", "bob"]}),
                json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"], "resourceNames": ["tom"]}),
                json!({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["system:serviceaccounts"]}),
            ]
        );
        assert_eq!(
            rules("member2"),
            [
                json!({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice", "bob"]})
            ],
            "member1-proxy names member1 only; carol may read clusters, not proxy"
        );
        assert!(impersonation_rules(&[]).is_empty());
        let [role, binding] = manifests(Vec::new(), "karmada-cluster");
        assert_eq!(role["metadata"]["name"], IMPERSONATOR);
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "namespace": "karmada-cluster", "name": IMPERSONATOR})
        );
    }
}
