//! What karmada-search caches, decided from the ResourceRegistries and the clusters: for each
//! Ready, reachable cluster a registry's `targetCluster` selects, every kind of its
//! `resourceSelectors`, in the namespaces they name (a selector without one: all).

use std::collections::{BTreeMap, BTreeSet};

use karmada_api::apps::ResourceRegistry;
use karmada_api::cluster::Cluster;

/// One kind cached from one cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey {
    pub cluster: String,
    pub api_version: String,
    pub kind: String,
}

/// Which namespaces of a kind are cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    All,
    Only(BTreeSet<String>),
}

impl Namespaces {
    fn add(&mut self, namespace: &str) {
        match self {
            Namespaces::All => {}
            _ if namespace.is_empty() => *self = Namespaces::All,
            Namespaces::Only(set) => {
                set.insert(namespace.to_owned());
            }
        }
    }

    /// Whether an object in `namespace` (`""`: cluster-scoped) is cached.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Only(set) => namespace.is_empty() || set.contains(namespace),
        }
    }
}

pub type Plan = BTreeMap<CacheKey, Namespaces>;

/// Whether the cache can and should hold a cluster's objects: Ready, not being deleted, and
/// with an endpoint and credentials to reach it by.
pub fn cacheable(cluster: &Cluster) -> bool {
    cluster.is_ready()
        && cluster.metadata.deletion_timestamp.is_none()
        && !cluster.spec.api_endpoint.is_empty()
        && cluster.spec.secret_ref.is_some()
}

pub fn plan(registries: &[ResourceRegistry], clusters: &[Cluster]) -> Plan {
    let mut plan = Plan::new();
    for cluster in clusters.iter().filter(|c| cacheable(c)) {
        let info = scheduler::ClusterInfo::identity(cluster);
        for registry in registries {
            if registry.metadata.deletion_timestamp.is_some()
                || !scheduler::filter::matches_affinity(&registry.spec.target_cluster, &info)
            {
                continue;
            }
            for selector in &registry.spec.resource_selectors {
                if selector.api_version.is_empty() || selector.kind.is_empty() {
                    continue;
                }
                let key = CacheKey {
                    cluster: info.name.clone(),
                    api_version: selector.api_version.clone(),
                    kind: selector.kind.clone(),
                };
                plan.entry(key)
                    .or_insert_with(|| Namespaces::Only(BTreeSet::new()))
                    .add(&selector.namespace);
            }
        }
    }
    plan
}

/// How one cache stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// Listed and watching.
    Synced,
    /// Not listed yet.
    Syncing,
    /// Failing: why.
    Failed(String),
}

/// A ResourceRegistry's `Ready` condition from the caches it asks for (by cluster and kind):
/// (ready, reason, message).
pub fn registry_condition(caches: &[(CacheKey, CacheState)]) -> (bool, &'static str, String) {
    if caches.is_empty() {
        return (false, "NoMatchingClusters", "no Ready cluster matches targetCluster".into());
    }
    let failed: Vec<String> = caches
        .iter()
        .filter_map(|(k, s)| match s {
            CacheState::Failed(why) => Some(format!("{} of {}: {why}", k.kind, k.cluster)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return (false, "CacheFailed", failed.join("; "));
    }
    let syncing: Vec<String> = caches
        .iter()
        .filter(|(_, s)| *s == CacheState::Syncing)
        .map(|(k, _)| format!("{} of {}", k.kind, k.cluster))
        .collect();
    if !syncing.is_empty() {
        return (false, "Syncing", format!("listing {}", syncing.join(", ")));
    }
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, _) in caches {
        by_kind.entry(&k.kind).or_default().push(&k.cluster);
    }
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(kind, clusters)| format!("{kind} from {}", clusters.join(", ")))
        .collect();
    (true, "CacheSynced", format!("caching {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(name: &str, labels: serde_json::Value, ready: bool) -> Cluster {
        serde_json::from_value(json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:1",
                "secretRef": {"namespace": "karmada-cluster", "name": name}},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn registry(
        name: &str,
        target: serde_json::Value,
        selectors: serde_json::Value,
    ) -> ResourceRegistry {
        serde_json::from_value(json!({
            "apiVersion": "search.karmada.io/v1alpha1", "kind": "ResourceRegistry",
            "metadata": {"name": name},
            "spec": {"targetCluster": target, "resourceSelectors": selectors}
        }))
        .unwrap()
    }

    fn key(cluster: &str, api_version: &str, kind: &str) -> CacheKey {
        CacheKey { cluster: cluster.into(), api_version: api_version.into(), kind: kind.into() }
    }

    #[test]
    fn registries_select_clusters_kinds_and_namespaces() {
        let clusters = [
            cluster("member1", json!({"env": "prod"}), true),
            cluster("member2", json!({}), true),
            cluster("member3", json!({"env": "prod"}), false),
        ];
        let registries = [
            registry(
                "deployments",
                json!({"clusterNames": ["member1"]}),
                json!([{"apiVersion": "apps/v1", "kind": "Deployment"}]),
            ),
            registry(
                "prod-secrets",
                json!({"labelSelector": {"matchLabels": {"env": "prod"}}}),
                json!([{"apiVersion": "v1", "kind": "Secret", "namespace": "a"}]),
            ),
            registry(
                "more-secrets",
                json!({"clusterNames": ["member1", "member2"]}),
                json!([{"apiVersion": "v1", "kind": "Secret", "namespace": "b"}]),
            ),
            registry("all-nodes", json!({}), json!([{"apiVersion": "v1", "kind": "Node"}])),
        ];
        let plan = plan(&registries, &clusters);
        let only = |names: &[&str]| Namespaces::Only(names.iter().map(|n| n.to_string()).collect());
        let want: Plan = [
            (key("member1", "apps/v1", "Deployment"), Namespaces::All),
            (key("member1", "v1", "Node"), Namespaces::All),
            (key("member1", "v1", "Secret"), only(&["a", "b"])),
            (key("member2", "v1", "Node"), Namespaces::All),
            (key("member2", "v1", "Secret"), only(&["b"])),
        ]
        .into_iter()
        .collect();
        assert_eq!(plan, want, "member3 is not Ready");
        assert!(
            only(&["a"]).contains("a") && !only(&["a"]).contains("b") && only(&["a"]).contains("")
        );
    }

    #[test]
    fn a_registry_is_ready_when_all_its_caches_are_synced() {
        let k = |c: &str, kind: &str| CacheKey {
            cluster: c.into(),
            api_version: "v1".into(),
            kind: kind.into(),
        };
        assert_eq!(registry_condition(&[]).1, "NoMatchingClusters");
        let ready = registry_condition(&[
            (k("member1", "Node"), CacheState::Synced),
            (k("member2", "Node"), CacheState::Synced),
            (k("member1", "Pod"), CacheState::Synced),
        ]);
        assert_eq!(
            ready,
            (true, "CacheSynced", "caching Node from member1, member2; Pod from member1".into())
        );
        let syncing = registry_condition(&[(k("member1", "Node"), CacheState::Syncing)]);
        assert_eq!((syncing.0, syncing.1), (false, "Syncing"));
        let failed = registry_condition(&[
            (k("member1", "Node"), CacheState::Syncing),
            (k("member2", "Widget"), CacheState::Failed("member2 does not serve Widget".into())),
        ]);
        assert_eq!(
            failed,
            (false, "CacheFailed", "Widget of member2: member2 does not serve Widget".into())
        );
    }

    #[test]
    fn a_selector_without_namespace_widens_to_all() {
        let clusters = [cluster("member1", json!({}), true)];
        let registries = [
            registry(
                "one",
                json!({}),
                json!([{"apiVersion": "v1", "kind": "Secret", "namespace": "a"}]),
            ),
            registry("all", json!({}), json!([{"apiVersion": "v1", "kind": "Secret"}])),
        ];
        assert_eq!(plan(&registries, &clusters)[&key("member1", "v1", "Secret")], Namespaces::All);
    }
}
