//! Filter plugins: which clusters may take a binding at all.

use karmada_api::cluster::Taint;
use karmada_api::cluster::TaintEffect;
use karmada_api::policy::ClusterAffinity;

use crate::{BindingInfo, ClusterInfo, Plugins, Rejection};

type Filter = fn(&BindingInfo, &ClusterInfo, Option<&ClusterAffinity>) -> Option<String>;

/// The filter registry, in order.
pub const FILTERS: &[(&str, Filter)] = &[
    ("ClusterEviction", cluster_eviction),
    ("APIEnablement", api_enablement),
    ("TaintToleration", taint_toleration),
    ("ClusterAffinity", cluster_affinity),
    ("SpreadConstraint", spread_constraint),
    ("WorkloadAffinity", workload_affinity),
    ("WorkloadAntiAffinity", workload_anti_affinity),
];

/// Only where every scheduled workload of its affinity group is (a cluster it is already on
/// stays).
fn workload_affinity(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    let missing = binding.affinity_peers.iter().any(|peer| !peer.contains(&cluster.name));
    (missing && !scheduled_on(binding, cluster)).then(|| {
        "ResourceBinding with the same affinity group does not target this cluster".to_owned()
    })
}

/// Not where a workload of its anti-affinity group is (a cluster it is already on stays).
fn workload_anti_affinity(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    (binding.anti_affinity_taken.contains(&cluster.name) && !scheduled_on(binding, cluster))
        .then(|| "cluster already has workload with the same anti-affinity group".to_owned())
}

fn scheduled_on(binding: &BindingInfo, cluster: &ClusterInfo) -> bool {
    binding.previous.iter().any(|t| t.name == cluster.name)
}

fn cluster_eviction(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    binding
        .evicting
        .contains(&cluster.name)
        .then(|| "cluster(s) is in the process of eviction".to_owned())
}

fn api_enablement(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    let apis = cluster.enabled_apis.as_ref()?;
    (!apis.contains(&binding.gvk) && !scheduled_on(binding, cluster))
        .then(|| "cluster(s) did not have the API resource".to_owned())
}

/// Whether a toleration list tolerates a taint (Kubernetes' rules).
pub fn tolerated(tolerations: &[k8s_openapi::api::core::v1::Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t.effect.as_deref().is_none_or(str::is_empty)
            || t.effect.as_deref() == Some(taint.effect.as_str());
        let key = t.key.as_deref().unwrap_or_default();
        let exists = t.operator.as_deref() == Some("Exists");
        let key_ok = (key.is_empty() && exists) || key == taint.key;
        let value_ok = exists || t.value.as_deref().unwrap_or_default() == taint.value;
        effect_ok && key_ok && value_ok
    })
}

fn taint_toleration(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    if scheduled_on(binding, cluster) {
        return None;
    }
    let tolerations = &binding.placement.cluster_tolerations;
    cluster
        .taints
        .iter()
        .filter(|t| t.effect == TaintEffect::NoSchedule || t.effect == TaintEffect::NoExecute)
        .find(|t| !tolerated(tolerations, t))
        .map(|t| format!("cluster(s) had untolerated taint {{{}: {}}}", t.key, t.value))
}

/// Whether a cluster matches an affinity (names, exclusions, labels, provider/region/zone).
pub fn matches_affinity(affinity: &ClusterAffinity, cluster: &ClusterInfo) -> bool {
    if !affinity.cluster_names.is_empty() && !affinity.cluster_names.contains(&cluster.name) {
        return false;
    }
    if affinity.exclude.contains(&cluster.name) {
        return false;
    }
    if let Some(selector) = &affinity.label_selector {
        let value = serde_json::to_value(selector).unwrap_or_default();
        match apimachinery::selector::LabelSelector::from_object(&value) {
            Ok(s) => {
                if !s.matches(&cluster.labels) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    if let Some(fields) = &affinity.field_selector {
        for req in &fields.match_expressions {
            let values: Vec<&str> = req.values.iter().flatten().map(String::as_str).collect();
            let actual: Vec<&str> = match req.key.as_str() {
                "provider" => vec![cluster.provider.as_str()],
                "region" => vec![cluster.region.as_str()],
                "zone" => cluster.zones.iter().map(String::as_str).collect(),
                _ => return false,
            };
            let hit = actual.iter().any(|a| !a.is_empty() && values.contains(a));
            let ok = match req.operator.as_str() {
                "In" => hit,
                "NotIn" => !hit,
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

fn cluster_affinity(
    _: &BindingInfo,
    cluster: &ClusterInfo,
    affinity: Option<&ClusterAffinity>,
) -> Option<String> {
    let affinity = affinity?;
    (!matches_affinity(affinity, cluster))
        .then(|| "cluster(s) did not match the placement cluster affinity constraint".to_owned())
}

fn spread_constraint(
    binding: &BindingInfo,
    cluster: &ClusterInfo,
    _: Option<&ClusterAffinity>,
) -> Option<String> {
    for c in &binding.placement.spread_constraints {
        let missing = match c.spread_by_field.as_str() {
            "provider" => cluster.provider.is_empty(),
            "region" => cluster.region.is_empty(),
            "zone" => cluster.zones.is_empty(),
            _ => false,
        };
        if missing {
            return Some(format!("cluster(s) did not have {} property", c.spread_by_field));
        }
    }
    None
}

/// Runs the enabled filters: (feasible clusters, rejections).
pub fn run<'a>(
    binding: &BindingInfo,
    clusters: &'a [ClusterInfo],
    plugins: &Plugins,
    affinity: Option<&ClusterAffinity>,
) -> (Vec<&'a ClusterInfo>, Vec<Rejection>) {
    let mut feasible = Vec::new();
    let mut rejections = Vec::new();
    'clusters: for cluster in clusters {
        if cluster.deleting {
            rejections.push(Rejection {
                cluster: cluster.name.clone(),
                plugin: "ClusterDeleting",
                reason: "cluster(s) is being deleted".into(),
            });
            continue;
        }
        for (name, filter) in FILTERS {
            if !plugins.enabled(name) {
                continue;
            }
            if let Some(reason) = filter(binding, cluster, affinity) {
                rejections.push(Rejection { cluster: cluster.name.clone(), plugin: name, reason });
                continue 'clusters;
            }
        }
        feasible.push(cluster);
    }
    (feasible, rejections)
}
