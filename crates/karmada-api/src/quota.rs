//! FederatedResourceQuota: what a binding's placement uses, whether a change of it fits the
//! quotas of its namespace (upstream's FederatedQuotaEnforcement), the status a quota reports,
//! and upstream's validation of the kind.
//!
//! Quantities are milli-units per resource name ([`Resources`]), as `apimachinery::quantity`
//! parses them; they are printed back the way Kubernetes prints a quantity.

use std::collections::BTreeMap;

use apimachinery::Cause;
use apimachinery::quantity;
pub use apimachinery::quantity::Resources;
use apimachinery::quota::format;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};

use crate::policy::FederatedResourceQuotaSpec;
use crate::work::ResourceBindingSpec;

/// A resource list of the API as milli-units (quantities that do not parse are left out:
/// admission refused them already).
pub fn resources(list: &BTreeMap<String, Quantity>) -> Resources {
    list.iter().filter_map(|(k, q)| Some((k.clone(), quantity::parse_milli(&q.0)?))).collect()
}

/// Milli-units as the API's resource list, each printed as Kubernetes prints it.
pub fn quantities(resources: &Resources) -> BTreeMap<String, Quantity> {
    resources.iter().map(|(k, v)| (k.clone(), Quantity(format(k, *v)))).collect()
}

/// What a binding's placement uses: each replica's request times the replicas scheduled; for a
/// workload of several pod templates, the whole set of components in every cluster it is
/// scheduled to. Nothing until it is scheduled.
pub fn binding_usage(spec: &ResourceBindingSpec) -> Resources {
    let mut usage = Resources::new();
    if !spec.components.is_empty() {
        let clusters = spec.clusters.len() as i128;
        for component in &spec.components {
            let Some(requirements) = &component.replica_requirements else { continue };
            for (name, per_replica) in resources(&requirements.resource_request) {
                let total = per_replica
                    .saturating_mul(i128::from(component.replicas))
                    .saturating_mul(clusters);
                *usage.entry(name).or_default() += total;
            }
        }
    } else if let Some(requirements) = &spec.replica_requirements {
        let replicas: i128 = spec.clusters.iter().map(|c| i128::from(c.replicas)).sum();
        for (name, per_replica) in resources(&requirements.resource_request) {
            usage.insert(name, per_replica.saturating_mul(replicas));
        }
    }
    usage.retain(|_, v| *v != 0);
    usage
}

/// Whether an update of a binding changes what it uses (upstream checks quotas only then): the
/// per-replica request, the replicas scheduled, or — for multi-template workloads — the
/// clusters or the components.
pub fn usage_may_change(old: &ResourceBindingSpec, new: &ResourceBindingSpec) -> bool {
    let request = |s: &ResourceBindingSpec| {
        s.replica_requirements.as_ref().map(|r| resources(&r.resource_request)).unwrap_or_default()
    };
    let scheduled = |s: &ResourceBindingSpec| s.clusters.iter().map(|c| c.replicas).sum::<i32>();
    if request(old) != request(new) || scheduled(old) != scheduled(new) {
        return true;
    }
    let components = !old.components.is_empty() || !new.components.is_empty();
    let names = |s: &ResourceBindingSpec| {
        s.clusters.iter().map(|c| c.name.clone()).collect::<std::collections::BTreeSet<_>>()
    };
    if components && (old.clusters.len() != new.clusters.len() || names(old) != names(new)) {
        return true;
    }
    let component = |s: &ResourceBindingSpec| {
        s.components
            .iter()
            .map(|c| {
                (
                    c.replicas,
                    c.replica_requirements.as_ref().map(|r| resources(&r.resource_request)),
                )
            })
            .collect::<Vec<_>>()
    };
    component(old) != component(new)
}

/// `new - old` per resource, zero entries left out.
pub fn delta(new: &Resources, old: &Resources) -> Resources {
    let mut out = new.clone();
    for (k, v) in old {
        *out.entry(k.clone()).or_default() -= v;
    }
    out.retain(|_, v| *v != 0);
    out
}

/// A quota's answer to a change in what its namespace uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The quota limits none of the resources that change.
    Unaffected,
    /// Within the quota: its `status.overallUsed` becomes this.
    Within(Resources),
    /// Over the quota, with upstream's message.
    Exceeded(String),
}

/// One FederatedResourceQuota's verdict on `delta`: its limits are `spec.overall`, what is in
/// use `status.overallUsed`. Only the resources it limits count; a decrease always fits.
pub fn judge(
    namespace: &str,
    name: &str,
    overall: &Resources,
    used: &Resources,
    delta: &Resources,
) -> Verdict {
    let relevant: Resources = delta
        .iter()
        .filter(|(k, _)| overall.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if relevant.values().all(|v| *v == 0) {
        return Verdict::Unaffected;
    }
    let mut after = used.clone();
    quantity::add(&mut after, &relevant);
    for (resource, requested) in &after {
        if *requested <= 0 {
            continue;
        }
        let Some(limit) = overall.get(resource) else { continue };
        if requested > limit && relevant.get(resource).is_some_and(|d| *d > 0) {
            return Verdict::Exceeded(format!(
                "FederatedResourceQuota({namespace}/{name}) exceeded for resource {resource}: requested sum {}, limit {}.",
                format(resource, *requested),
                format(resource, *limit)
            ));
        }
    }
    Verdict::Within(after)
}

/// What a namespace's bindings use of the resources a quota limits (the enforcement
/// controller's recount).
pub fn overall_used<'a>(
    bindings: impl IntoIterator<Item = &'a ResourceBindingSpec>,
    overall: &Resources,
) -> Resources {
    let mut used = Resources::new();
    for spec in bindings {
        quantity::add(&mut used, &binding_usage(spec));
    }
    used.retain(|k, _| overall.contains_key(k));
    used
}

/// The ResourceQuota a quota's static assignment puts in `cluster` (named and namespaced as the
/// FederatedResourceQuota).
pub fn member_quota(namespace: &str, name: &str, hard: &BTreeMap<String, Quantity>) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hard": hard}})
}

/// Resource names a quota may limit without a domain prefix.
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Resources counted in whole units.
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

fn hugepages(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// An extended resource (`example.com/gpu`): counted in whole units.
fn extended(name: &str) -> bool {
    name.contains('/')
        && !name.starts_with("kubernetes.io/")
        && !name.contains(".kubernetes.io/")
        && !name.starts_with("requests.")
}

/// A resource list of a quota: names a quota may limit, quantities that are not negative and
/// whole where the resource counts objects.
fn validate_list(list: &BTreeMap<String, Quantity>, field: &str, causes: &mut Vec<Cause>) {
    for (name, q) in list {
        let path = format!("{field}[{name}]");
        if let Err(e) = apimachinery::selector::validate_label_key(name) {
            causes.push(Cause::invalid(&path, &json!(name), &e));
            continue;
        }
        if !name.contains('/')
            && !STANDARD_QUOTA_RESOURCES.contains(&name.as_str())
            && !hugepages(name)
        {
            causes.push(Cause::invalid(
                &path,
                &json!(name),
                "must be a standard resource for quota",
            ));
        }
        let Some(milli) = quantity::parse_milli(&q.0) else {
            causes.push(Cause::invalid(&path, &json!(q.0), "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
            continue;
        };
        if milli < 0 {
            causes.push(Cause::invalid(&path, &json!(q.0), "must be greater than or equal to 0"));
        }
        if (INTEGER_RESOURCES.contains(&name.as_str()) || extended(name)) && milli % 1000 != 0 {
            causes.push(Cause::invalid(&path, &json!(q.0), "must be an integer"));
        }
    }
}

/// Upstream's FederatedResourceQuota webhook: the name a label, valid resource lists, every
/// assigned resource limited overall, and `overall` at least the sum of the assignments.
pub fn validate(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = apimachinery::object::name(object);
    if name.len() > 63 {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 63 characters",
        ));
    }
    let spec: FederatedResourceQuotaSpec =
        match serde_json::from_value(object.get("spec").cloned().unwrap_or_else(|| json!({}))) {
            Ok(spec) => spec,
            Err(e) => {
                causes.push(Cause::invalid("spec", &Value::Null, &e.to_string()));
                return causes;
            }
        };
    validate_list(&spec.overall, "spec.overall", &mut causes);
    for (i, a) in spec.static_assignments.iter().enumerate() {
        let field = format!("spec.staticAssignments[{i}]");
        if a.cluster_name.len() > 48 || !apimachinery::selector::is_dns1123_label(&a.cluster_name) {
            causes.push(Cause::invalid(
                format!("{field}.clusterName"),
                &json!(a.cluster_name),
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (at most 48 characters)",
            ));
        }
        validate_list(&a.hard, &format!("{field}.hard"), &mut causes);
    }
    let overall = resources(&spec.overall);
    let mut assigned = Resources::new();
    for a in &spec.static_assignments {
        quantity::add(&mut assigned, &resources(&a.hard));
    }
    for (name, limit) in &overall {
        if assigned.get(name).is_some_and(|sum| sum > limit) {
            causes.push(Cause::invalid(
                format!("spec.overall[{name}]"),
                &json!(format(name, *limit)),
                "overall is less than assignments",
            ));
        }
    }
    for (i, a) in spec.static_assignments.iter().enumerate() {
        for name in a.hard.keys() {
            if !spec.overall.contains_key(name) {
                causes.push(Cause::invalid(
                    format!("spec.staticAssignments[{i}].hard[{name}]"),
                    &json!(name),
                    "assignment resourceName is not exist in overall",
                ));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: Value) -> ResourceBindingSpec {
        serde_json::from_value(value).unwrap()
    }

    fn res(pairs: &[(&str, &str)]) -> Resources {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), quantity::parse_milli(v).unwrap())).collect()
    }

    #[test]
    fn a_binding_uses_its_request_times_the_replicas_scheduled() {
        let rb = |clusters: Value| {
            spec(json!({"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                "replicaRequirements": {"resourceRequest": {"cpu": "10m", "memory": "100Mi"}},
                "replicas": 3, "clusters": clusters}))
        };
        assert_eq!(binding_usage(&rb(json!([]))), Resources::new(), "not scheduled yet");
        assert_eq!(
            binding_usage(&rb(
                json!([{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 1}])
            )),
            res(&[("cpu", "30m"), ("memory", "300Mi")])
        );
        // Several pod templates: the whole set in every cluster (upstream's FlinkDeployment case).
        let flink = spec(
            json!({"resource": {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "name": "f"},
            "components": [
                {"name": "jobmanager", "replicas": 1, "replicaRequirements": {"resourceRequest": {"cpu": "50m", "memory": "100m"}}},
                {"name": "taskmanager", "replicas": 2, "replicaRequirements": {"resourceRequest": {"cpu": "50m", "memory": "50m"}}}],
            "clusters": [{"name": "m1"}]}),
        );
        assert_eq!(binding_usage(&flink), res(&[("cpu", "150m"), ("memory", "200m")]));
        assert_eq!(quantities(&binding_usage(&flink))["memory"].0, "200m");
    }

    #[test]
    fn only_changes_of_usage_are_checked() {
        let base = json!({"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
            "replicaRequirements": {"resourceRequest": {"cpu": "10m"}},
            "clusters": [{"name": "m1", "replicas": 1}]});
        let mut more = base.clone();
        more["clusters"][0]["replicas"] = json!(2);
        let mut moved = base.clone();
        moved["clusters"][0]["name"] = json!("m2");
        let mut bigger = base.clone();
        bigger["replicaRequirements"]["resourceRequest"]["cpu"] = json!("20m");
        let mut same = base.clone();
        same["replicaRequirements"]["resourceRequest"]["cpu"] = json!("0.01");
        assert!(usage_may_change(&spec(base.clone()), &spec(more)));
        assert!(usage_may_change(&spec(base.clone()), &spec(bigger)));
        assert!(!usage_may_change(&spec(base.clone()), &spec(moved)), "same replicas elsewhere");
        assert!(!usage_may_change(&spec(base.clone()), &spec(same)), "10m written as 0.01");
    }

    #[test]
    fn verdicts_follow_upstreams_quota_enforcement() {
        let overall = res(&[("cpu", "10m"), ("memory", "100Mi")]);
        let used = res(&[("cpu", "10m")]);
        assert_eq!(
            judge("ns", "q", &overall, &used, &res(&[("cpu", "10m")])),
            Verdict::Exceeded(
                "FederatedResourceQuota(ns/q) exceeded for resource cpu: requested sum 20m, limit 10m."
                    .into()
            )
        );
        assert_eq!(
            judge("ns", "q", &overall, &Resources::new(), &res(&[("cpu", "10m")])),
            Verdict::Within(res(&[("cpu", "10m")]))
        );
        assert_eq!(
            judge("ns", "q", &overall, &used, &res(&[("nvidia.com/gpu", "1")])),
            Verdict::Unaffected,
            "a resource the quota does not limit"
        );
        assert_eq!(
            judge("ns", "q", &overall, &used, &res(&[("cpu", "-10m")])),
            Verdict::Within(res(&[("cpu", "0")])),
            "a decrease fits"
        );
        // Over the limit already (the limit was lowered): what does not grow still fits.
        let over = res(&[("cpu", "50m"), ("memory", "1Mi")]);
        assert!(matches!(
            judge("ns", "q", &overall, &over, &res(&[("memory", "1Mi")])),
            Verdict::Within(_)
        ));
    }

    #[test]
    fn the_recount_counts_only_limited_resources() {
        let a = spec(json!({"resource": {"apiVersion": "v1", "kind": "Pod", "name": "a"},
            "replicaRequirements": {"resourceRequest": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}},
            "clusters": [{"name": "m1", "replicas": 2}]}));
        let b = spec(json!({"resource": {"apiVersion": "v1", "kind": "Pod", "name": "b"},
            "replicaRequirements": {"resourceRequest": {"cpu": "500m"}},
            "clusters": [{"name": "m1", "replicas": 1}]}));
        let overall = res(&[("cpu", "8"), ("memory", "16Gi")]);
        let used = overall_used([&a, &b], &overall);
        assert_eq!(used, res(&[("cpu", "2500m"), ("memory", "2Gi")]));
        let printed = quantities(&used);
        assert_eq!((printed["cpu"].0.as_str(), printed["memory"].0.as_str()), ("2500m", "2Gi"));
    }

    #[test]
    fn validation_is_upstreams() {
        let frq = |spec: Value| json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": spec});
        let fields = |spec: Value| -> Vec<String> {
            validate(&frq(spec))
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()
        };
        assert!(fields(json!({"overall": {"cpu": "8", "memory": "16Gi"},
            "staticAssignments": [{"clusterName": "member1", "hard": {"cpu": "1", "memory": "2Gi"}}]}))
        .is_empty());
        let bad = fields(json!({"overall": {"cpu": "1", "pods": "1.5", "bogus": "1"},
            "staticAssignments": [
                {"clusterName": "member1", "hard": {"cpu": "1", "memory": "1Gi"}},
                {"clusterName": "Member_2", "hard": {"cpu": "500m"}}]}));
        assert!(
            bad.iter()
                .any(|c| c.starts_with("spec.overall[pods]") && c.contains("must be an integer")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|c| c.starts_with("spec.overall[bogus]")
                && c.contains("standard resource for quota")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|c| c.starts_with("spec.overall[cpu]")
                && c.contains("overall is less than assignments")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|c| c.starts_with("spec.staticAssignments[0].hard[memory]")
                && c.contains("not exist in overall")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|c| c.starts_with("spec.staticAssignments[1].clusterName")),
            "{bad:?}"
        );
        assert!(
            fields(json!({"overall": {"cpu": "-1"}}))[0].contains("greater than or equal to 0")
        );
    }
}
