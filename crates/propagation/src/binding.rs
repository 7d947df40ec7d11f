//! The binding a claimed template wants, as a value: what the resource detector server-side
//! applies (and so owns) — the template's identity and the version it was last changed at, the
//! claiming policy's placement and propagation settings (with upstream's defaults), the
//! replicas and per-replica requirements the interpreter found, the claim's labels and
//! annotations, the binding controller's finalizer, and the template as controlling owner.
//! Fields others own (the scheduler's `clusters`, the dependencies distributor's
//! `requiredBy`, failover's eviction tasks) are left out.

use std::collections::BTreeMap;

use karmada_api::names;
use karmada_api::policy::{ConflictResolution, PropagationSpec};
use karmada_api::work::{
    BindingSnapshot, ClusterResourceBinding, ResourceBinding, WorkloadAffinityGroups,
};
use serde_json::{Value, json};

use crate::interpreter::Dependency;
use karmada_api::work::{Component, ReplicaRequirements};

/// What the interpreter found of a template's replicas.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Workload {
    /// Not a workload (a ConfigMap, a Service...): no replicas.
    #[default]
    Plain,
    /// Replicas, and what each needs (when known).
    Replicas(i32, Option<ReplicaRequirements>),
    /// The pod templates of a workload with several (job manager and task managers...).
    Components(Vec<Component>),
}

/// What a template's binding is made from.
pub struct BindingInputs<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// Empty for a cluster-scoped template (its binding is a ClusterResourceBinding).
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: Option<&'a str>,
    /// The template's resourceVersion of its last change that was not a status update.
    pub resource_version: &'a str,
    pub policy: &'a PropagationSpec,
    /// The replicas and per-replica requirements, or the components, of a workload kind.
    pub workload: &'a Workload,
    /// The claim's labels and annotations (the policy's id and name).
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    /// The value of the policy's PriorityClass (`schedulePriority`), when it names one.
    pub priority: Option<i32>,
    /// The template's `placement.workloadAffinity` groups ([`workload_affinity_groups`]).
    pub affinity_groups: Option<&'a WorkloadAffinityGroups>,
}

/// The groups a template belongs to under `placement.workloadAffinity`: `<key>=<value>` of
/// each term's label on the template; `None` when it has neither label.
pub fn workload_affinity_groups(
    placement: &karmada_api::policy::Placement,
    template_labels: &BTreeMap<String, String>,
) -> Option<WorkloadAffinityGroups> {
    let terms = placement.workload_affinity.as_ref()?;
    let group = |term: &Option<karmada_api::policy::WorkloadAffinityTerm>| {
        term.as_ref()
            .and_then(|t| {
                let value = template_labels.get(&t.group_by_label_key)?;
                Some(format!("{}={value}", t.group_by_label_key))
            })
            .unwrap_or_default()
    };
    let groups = WorkloadAffinityGroups {
        affinity_group: group(&terms.affinity),
        anti_affinity_group: group(&terms.anti_affinity),
    };
    (!groups.affinity_group.is_empty() || !groups.anti_affinity_group.is_empty()).then_some(groups)
}

/// The ResourceBinding (or ClusterResourceBinding) of a claimed template, as the detector
/// applies it.
pub fn binding_for(input: &BindingInputs<'_>) -> Value {
    let policy = input.policy;
    let namespaced = !input.namespace.is_empty();
    let mut spec = json!({
        "resource": {"apiVersion": input.api_version, "kind": input.kind, "name": input.name,
            "uid": input.uid, "resourceVersion": input.resource_version},
        "placement": policy.placement,
        "schedulerName": if policy.scheduler_name.is_empty() { "default-scheduler" } else { policy.scheduler_name.as_str() },
        "conflictResolution": if policy.conflict_resolution.is_unset() { "Abort" } else { policy.conflict_resolution.as_str() },
    });
    if namespaced {
        spec["resource"]["namespace"] = json!(input.namespace);
    }
    if policy.propagate_deps {
        spec["propagateDeps"] = json!(true);
    }
    if let Some(priority) = input.priority {
        spec["schedulePriority"] = json!({"priority": priority});
    }
    if let Some(groups) = input.affinity_groups.filter(|_| namespaced) {
        spec["workloadAffinityGroups"] = json!(groups);
    }
    for (field, value) in [
        ("failover", serde_json::to_value(&policy.failover).unwrap_or(Value::Null)),
        ("suspension", serde_json::to_value(&policy.suspension).unwrap_or(Value::Null)),
        (
            "preserveResourcesOnDeletion",
            serde_json::to_value(policy.preserve_resources_on_deletion).unwrap_or(Value::Null),
        ),
    ] {
        if !value.is_null() {
            spec[field] = value;
        }
    }
    match input.workload {
        Workload::Plain => {}
        Workload::Replicas(count, req) => {
            spec["replicas"] = json!(count);
            if let Some(req) = req {
                let mut req = req.clone();
                // The namespace is the workload's when the interpreter did not say.
                if req.namespace.is_empty() {
                    req.namespace = input.namespace.to_owned();
                }
                spec["replicaRequirements"] = serde_json::to_value(&req).unwrap_or(Value::Null);
            }
        }
        Workload::Components(components) => {
            spec["components"] = serde_json::to_value(components).unwrap_or(Value::Null);
        }
    }
    let (api_version, kind) = if namespaced {
        (ResourceBinding::API_VERSION, ResourceBinding::KIND)
    } else {
        (ClusterResourceBinding::API_VERSION, ClusterResourceBinding::KIND)
    };
    let mut binding = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": crate::binding_name(input.kind, input.name), "labels": input.labels,
            "annotations": input.annotations,
            "finalizers": [names::BINDING_FINALIZER],
            "ownerReferences": [{"apiVersion": input.api_version, "kind": input.kind, "name": input.name,
                "uid": input.uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec,
    });
    if namespaced {
        binding["metadata"]["namespace"] = json!(input.namespace);
    }
    binding
}

/// The binding of a workload's dependency that no policy claims (`propagateDeps`): attached
/// (labelled so, owned by the dependency object, with the binding controller's finalizer), it
/// lists the requiring workloads with their clusters and inherits the requiring workload's
/// conflict resolution and resource preservation. `None` when the parts do not make a valid
/// binding (the type refuses them).
#[allow(clippy::too_many_arguments)]
pub fn attached_binding_for(
    dependency: &Dependency,
    namespace: &str,
    uid: Option<&str>,
    resource_version: Option<&str>,
    required_by: &[BindingSnapshot],
    conflict_resolution: &ConflictResolution,
    preserve_resources_on_deletion: Option<bool>,
) -> Option<ResourceBinding> {
    let uid = uid.unwrap_or_default();
    let mut spec = json!({
        "resource": {"apiVersion": dependency.api_version, "kind": dependency.kind,
            "namespace": namespace, "name": dependency.name, "uid": uid,
            "resourceVersion": resource_version.unwrap_or_default()},
        "requiredBy": required_by,
    });
    if !conflict_resolution.is_unset() {
        spec["conflictResolution"] = json!(conflict_resolution);
    }
    if let Some(preserve) = preserve_resources_on_deletion {
        spec["preserveResourcesOnDeletion"] = json!(preserve);
    }
    serde_json::from_value(json!({
        "apiVersion": ResourceBinding::API_VERSION, "kind": ResourceBinding::KIND,
        "metadata": {"name": crate::binding_name(&dependency.kind, &dependency.name),
            "namespace": namespace, "labels": {names::ATTACHED_LABEL: "true"},
            "finalizers": [names::BINDING_FINALIZER],
            "ownerReferences": [{"apiVersion": dependency.api_version, "kind": dependency.kind,
                "name": dependency.name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec,
    }))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_as_the_detector_applies_them() {
        let policy: PropagationSpec = serde_json::from_value(json!({
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"clusterAffinity": {"clusterNames": ["m1"]}},
            "propagateDeps": true,
            "failover": {"application": {"decisionConditions": {"tolerationSeconds": 60}}},
        }))
        .unwrap();
        let requirements: ReplicaRequirements = serde_json::from_value(json!({
            "resourceRequest": {"cpu": "250m"}, "nodeClaim": {"nodeSelector": {"disk": "ssd"}}}))
        .unwrap();
        let workload = Workload::Replicas(3, Some(requirements));
        let labels =
            BTreeMap::from([(names::PP_PERMANENT_ID_LABEL.to_owned(), "pp-id".to_owned())]);
        let annotations =
            BTreeMap::from([(names::PP_NAME_ANNOTATION.to_owned(), "web".to_owned())]);
        let input = BindingInputs {
            api_version: "apps/v1",
            kind: "Deployment",
            namespace: "ns",
            name: "web",
            uid: Some("uid-1"),
            resource_version: "41",
            policy: &policy,
            workload: &workload,
            labels: &labels,
            annotations: &annotations,
            priority: None,
            affinity_groups: None,
        };
        assert_eq!(
            binding_for(&input),
            json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "web-deployment", "namespace": "ns",
                    "labels": {names::PP_PERMANENT_ID_LABEL: "pp-id"},
                    "annotations": {names::PP_NAME_ANNOTATION: "web"},
                    "finalizers": ["karmada.io/binding-controller"],
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                        "uid": "uid-1", "controller": true, "blockOwnerDeletion": true}]},
                "spec": {
                    "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns",
                        "name": "web", "uid": "uid-1", "resourceVersion": "41"},
                    "placement": {"clusterAffinity": {"clusterNames": ["m1"]}},
                    "schedulerName": "default-scheduler",
                    "conflictResolution": "Abort",
                    "propagateDeps": true,
                    "failover": {"application": {"decisionConditions": {"tolerationSeconds": 60}}},
                    "replicas": 3,
                    "replicaRequirements": {"resourceRequest": {"cpu": "250m"}, "namespace": "ns",
                        "nodeClaim": {"nodeSelector": {"disk": "ssd"}}}}})
        );
        let prioritized = binding_for(&BindingInputs { priority: Some(1000), ..input });
        assert_eq!(prioritized["spec"]["schedulePriority"], json!({"priority": 1000}));
        // workloadAffinity: the template's label values name its groups.
        let placement: karmada_api::policy::Placement = serde_json::from_value(json!({
            "workloadAffinity": {"affinity": {"groupByLabelKey": "app.group"},
                "antiAffinity": {"groupByLabelKey": "ha"}}}))
        .unwrap();
        let template_labels = BTreeMap::from([("app.group".to_owned(), "frontend".to_owned())]);
        let groups = workload_affinity_groups(&placement, &template_labels).unwrap();
        assert_eq!(
            (groups.affinity_group.as_str(), groups.anti_affinity_group.as_str()),
            ("app.group=frontend", "")
        );
        assert_eq!(workload_affinity_groups(&placement, &BTreeMap::new()), None);
        let grouped = binding_for(&BindingInputs { affinity_groups: Some(&groups), ..input });
        assert_eq!(
            grouped["spec"]["workloadAffinityGroups"],
            json!({"affinityGroup": "app.group=frontend"})
        );
        let cluster_scoped = BindingInputs {
            api_version: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRole",
            namespace: "",
            name: "reader",
            workload: &Workload::Plain,
            ..input
        };
        let crb = binding_for(&cluster_scoped);
        assert_eq!(
            (crb["kind"].as_str(), crb["metadata"]["name"].as_str()),
            (Some("ClusterResourceBinding"), Some("reader-clusterrole"))
        );
        assert!(
            crb["metadata"].get("namespace").is_none()
                && crb["spec"]["resource"].get("namespace").is_none()
        );
        assert!(crb["spec"].get("replicas").is_none());
        let components: Vec<Component> = serde_json::from_value(json!([
            {"name": "jobmanager", "replicas": 1,
                "replicaRequirements": {"resourceRequest": {"cpu": "50m"}}},
            {"name": "taskmanager", "replicas": 2}]))
        .unwrap();
        let multi =
            binding_for(&BindingInputs { workload: &Workload::Components(components), ..input });
        assert_eq!(
            multi["spec"]["components"],
            json!([{"name": "jobmanager", "replicas": 1,
                "replicaRequirements": {"resourceRequest": {"cpu": "50m"}}},
                {"name": "taskmanager", "replicas": 2}])
        );
        assert!(
            multi["spec"].get("replicas").is_none()
                && multi["spec"].get("replicaRequirements").is_none(),
            "components replace the replicas"
        );
    }

    #[test]
    fn attached_bindings_follow_the_requiring_workload() {
        let dep = Dependency::new("v1", "ConfigMap", "cfg");
        let requiring: Vec<BindingSnapshot> = serde_json::from_value(json!([
            {"namespace": "ns", "name": "web-deployment", "clusters": [{"name": "m1", "replicas": 2}]}
        ]))
        .unwrap();
        let rb = attached_binding_for(
            &dep,
            "ns",
            Some("cm-uid"),
            Some("7"),
            &requiring,
            &ConflictResolution::Overwrite,
            Some(true),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&rb).unwrap(),
            json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "cfg-configmap", "namespace": "ns",
                    "labels": {names::ATTACHED_LABEL: "true"},
                    "finalizers": ["karmada.io/binding-controller"],
                    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "cfg",
                        "uid": "cm-uid", "controller": true, "blockOwnerDeletion": true}]},
                "spec": {
                    "resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns",
                        "name": "cfg", "uid": "cm-uid", "resourceVersion": "7"},
                    "requiredBy": [{"namespace": "ns", "name": "web-deployment", "clusters": [{"name": "m1", "replicas": 2}]}],
                    "conflictResolution": "Overwrite",
                    "preserveResourcesOnDeletion": true}})
        );
        let plain = attached_binding_for(
            &dep,
            "ns",
            None,
            None,
            &requiring,
            &ConflictResolution::Unset,
            None,
        )
        .unwrap();
        assert!(plain.spec.conflict_resolution.is_unset());
        assert_eq!(plain.spec.preserve_resources_on_deletion, None);
    }
}
