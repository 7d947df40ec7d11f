//! The Works a binding wants, as values: one per target cluster, holding the template rendered
//! for that cluster — server-owned metadata and status stripped, the cluster's replica share
//! and Job completions, override policies applied, the binding's conflict resolution, state
//! preserved by a failover — and marked as upstream marks it (the binding's id and names, the
//! template's uid and generation, the Work's name, namespace and id). The binding controller
//! compares the plan with the Works that exist and writes the difference.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use karmada_api::names;
use karmada_api::policy::{ClusterAffinity, ConflictResolution};
use karmada_api::work::{Manifest, ResourceBindingSpec, Work, WorkSpec, WorkloadTemplate};
use serde_json::{Value, json};

use crate::Template;
use crate::overrides::{OverridePolicyRef, render};

/// A binding as its Works and their member objects refer to it (upstream's layout: its
/// permanent id as a label, its name and namespace as annotations — a name can be longer than
/// a label value may be).
#[derive(Clone, Copy, Debug)]
pub struct BindingRef<'a> {
    /// None for a ClusterResourceBinding.
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// The binding's permanent id (the API server gives every binding one).
    pub permanent_id: Option<&'a str>,
}

impl<'a> BindingRef<'a> {
    pub fn of(meta: &'a ObjectMeta) -> Self {
        let namespace = meta.namespace.as_deref();
        let id_label = match namespace {
            Some(_) => names::RB_PERMANENT_ID_LABEL,
            None => names::CRB_PERMANENT_ID_LABEL,
        };
        BindingRef {
            namespace,
            name: meta.name.as_deref().unwrap_or_default(),
            permanent_id: meta.labels.as_ref().and_then(|l| l.get(id_label)).map(String::as_str),
        }
    }

    /// The labels of its Works (and of their member objects).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let key = match self.namespace {
            Some(_) => names::RB_PERMANENT_ID_LABEL,
            None => names::CRB_PERMANENT_ID_LABEL,
        };
        self.permanent_id.map(|id| (key.to_owned(), id.to_owned())).into_iter().collect()
    }

    /// The annotations of its Works (and of their member objects).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::new();
        match self.namespace {
            Some(ns) => {
                annotations.insert(names::RB_NAMESPACE_ANNOTATION.to_owned(), ns.to_owned());
                annotations.insert(names::RB_NAME_ANNOTATION.to_owned(), self.name.to_owned());
            }
            None => {
                annotations.insert(names::CRB_NAME_ANNOTATION.to_owned(), self.name.to_owned());
            }
        }
        annotations
    }
}

/// The Work metadata and manifest metadata a binding's Work in one cluster gets, as upstream
/// writes them: on the manifest the binding's id label, `karmada.io/managed`, the binding's
/// name annotations, the template's uid (and generation), the Work's name and namespace, and
/// (once the Work has one) the Work's id; then the managed label/annotation key lists.
pub fn mark_manifest(
    manifest: &mut Value,
    binding: &BindingRef<'_>,
    template: &ObjectMeta,
    work_name: &str,
    work_namespace: &str,
    work_id: Option<&str>,
) {
    let labels = apimachinery::object::string_map_mut(manifest, "labels");
    for (k, v) in binding.labels() {
        labels.insert(k, json!(v));
    }
    labels.insert(names::MANAGED_LABEL.into(), json!("true"));
    let annotations = apimachinery::object::string_map_mut(manifest, "annotations");
    for (k, v) in binding.annotations() {
        annotations.insert(k, json!(v));
    }
    if let Some(generation) = template.generation.filter(|g| *g > 0) {
        annotations
            .insert(names::TEMPLATE_GENERATION_ANNOTATION.into(), json!(generation.to_string()));
    }
    annotations.insert(
        names::TEMPLATE_UID_ANNOTATION.into(),
        json!(template.uid.as_deref().unwrap_or_default()),
    );
    annotations.insert(names::WORK_NAME_ANNOTATION.into(), json!(work_name));
    annotations.insert(names::WORK_NAMESPACE_ANNOTATION.into(), json!(work_namespace));
    karmada_api::admission::stamp_workload(manifest, work_id);
}

/// The clusters a binding's Works go to, with each one's replica share: the scheduled
/// clusters, plus (with no replicas of their own) the clusters of every binding that requires
/// this one. Empty while the binding is being deleted.
pub fn work_targets(spec: &ResourceBindingSpec) -> BTreeMap<String, i32> {
    let mut targets: BTreeMap<String, i32> =
        spec.clusters.iter().map(|t| (t.name.clone(), t.replicas)).collect();
    for snapshot in &spec.required_by {
        for t in &snapshot.clusters {
            targets.entry(t.name.clone()).or_insert(0);
        }
    }
    targets
}

/// Whether dispatching to `cluster` is suspended by the binding.
pub fn dispatch_suspended(spec: &ResourceBindingSpec, cluster: &str) -> bool {
    spec.suspension.as_ref().is_some_and(|s| {
        s.dispatching == Some(true)
            || s.dispatching_on_clusters
                .as_ref()
                .is_some_and(|c| c.cluster_names.iter().any(|n| n == cluster))
    })
}

/// A Divided Job's `completions`, split in proportion to the clusters' replica shares
/// (Sainte-Laguë; a cluster with no share gets none).
pub fn split_completions(
    completions: i64,
    shares: &BTreeMap<String, i32>,
) -> BTreeMap<String, i64> {
    let weights: Vec<i64> = shares.values().map(|r| i64::from(*r)).collect();
    let parts = scheduler::assign::apportion(completions, &weights);
    shares.keys().cloned().zip(parts).collect()
}

/// The template as it is sent to members: no server-owned metadata, no status.
pub fn strip(template: &Value) -> Value {
    let mut out = template.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "ownerReferences",
            "finalizers",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(field);
        }
        if let Some(Value::Object(a)) = m.get_mut("annotations") {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if let Some(m) = out.as_object_mut() {
        m.remove("status");
    }
    let kind = out.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    crate::interpreter::prune(&kind, &mut out);
    out
}

/// What a binding's Works are made from, besides the binding itself.
pub struct WorkInputs<'a> {
    pub binding: BindingRef<'a>,
    pub spec: &'a ResourceBindingSpec,
    /// The template, with its `apiVersion` and `kind`.
    pub template: &'a Value,
    /// The template's metadata as read (uid and generation go on every manifest).
    pub template_meta: &'a ObjectMeta,
    /// The clusters the control plane knows: a target that is not here gets no Work.
    pub clusters: &'a BTreeMap<String, scheduler::ClusterInfo>,
    pub cluster_overrides: &'a [OverridePolicyRef<'a>],
    pub namespaced_overrides: &'a [OverridePolicyRef<'a>],
    /// The permanent id of the Work already in each execution namespace (kept by upstream on
    /// the manifests it applies).
    pub work_ids: &'a BTreeMap<String, String>,
    /// The workload revised to each replica count a cluster gets (the resource interpreter's
    /// ReviseReplica of [`base_manifest`], for [`revisions_needed`]); an error leaves that
    /// cluster's Work as it is.
    pub revisions: &'a Revisions,
}

/// ReviseReplica's results by replica count.
pub type Revisions = BTreeMap<i32, Result<Value, String>>;

/// The template as every cluster's copy starts: stripped, marked for Overwrite when the
/// binding says so. (What ReviseReplica is given.)
pub fn base_manifest(template: &Value, spec: &ResourceBindingSpec) -> Value {
    let mut stripped = strip(template);
    if spec.conflict_resolution == ConflictResolution::Overwrite {
        apimachinery::object::string_map_mut(&mut stripped, "annotations")
            .insert(names::CONFLICT_RESOLUTION_ANNOTATION.into(), json!("overwrite"));
    }
    stripped
}

fn divided(spec: &ResourceBindingSpec) -> bool {
    spec.placement.as_ref().is_some_and(|p| p.divides_replicas())
}

/// Whether a cluster's copy gets the replicas the scheduler gave it: every workload, divided
/// or duplicated, on a cluster the scheduler chose (as upstream: members follow the scheduling
/// result, not the template, so a scale-up the scheduler could not place — refused by a
/// FederatedResourceQuota, say — does not reach them).
fn revises(spec: &ResourceBindingSpec, cluster: &str) -> bool {
    let workload = spec.replicas > 0 || spec.replica_requirements.is_some();
    workload && spec.components.is_empty() && spec.clusters.iter().any(|t| t.name == cluster)
}

/// The replica counts [`works_for`] needs ReviseReplica's results for (on [`base_manifest`]).
pub fn revisions_needed(spec: &ResourceBindingSpec) -> std::collections::BTreeSet<i32> {
    work_targets(spec)
        .into_iter()
        .filter(|(cluster, _)| revises(spec, cluster))
        .map(|(_, replicas)| replicas)
        .collect()
}

/// The built-in ReviseReplica's [`Revisions`] (for kinds without customizations).
pub fn native_revisions(template: &Value, spec: &ResourceBindingSpec) -> Revisions {
    let base = base_manifest(template, spec);
    let kind = base.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    revisions_needed(spec)
        .into_iter()
        .map(|n| {
            let mut revised = base.clone();
            crate::interpreter::revise_replica(&kind, &mut revised, n);
            (n, Ok(revised))
        })
        .collect()
}

/// One cluster's Work as the binding wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedWork {
    pub cluster: String,
    pub work: Work,
}

/// An override policy that could not be applied to one cluster's copy (that cluster's Work is
/// left as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideFailure {
    pub cluster: String,
    /// The policy's namespace ("" for a ClusterOverridePolicy).
    pub namespace: String,
    pub policy: String,
    pub message: String,
}

/// An override policy applied to one cluster's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedOverride {
    pub cluster: String,
    pub namespace: String,
    pub policy: String,
}

/// A cluster whose replica count could not be set on its copy (that cluster's Work is left
/// as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviseFailure {
    pub cluster: String,
    pub message: String,
}

/// The Works a binding wants, and what happened with override policies on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkPlan {
    pub works: Vec<PlannedWork>,
    pub applied: Vec<AppliedOverride>,
    pub failures: Vec<OverrideFailure>,
    pub revise_failures: Vec<ReviseFailure>,
}

/// The Works of a (not deleting) binding: one for each of [`work_targets`] that is a known
/// cluster, in cluster name order.
pub fn works_for(input: &WorkInputs<'_>) -> WorkPlan {
    let spec = input.spec;
    let resource = &spec.resource;
    let kind = input.template.get("kind").and_then(Value::as_str).unwrap_or_default();
    let work_name = names::work_name(&resource.kind, &resource.name, &resource.namespace);
    let targets = work_targets(spec);
    let template = Template::from_object(input.template);
    let stripped = base_manifest(input.template, spec);
    let divided = divided(spec);
    let completions = if divided && kind == "Job" {
        input.template.pointer("/spec/completions").and_then(Value::as_i64)
    } else {
        None
    };
    let completions = completions.map(|c| split_completions(c, &targets));
    let mut plan = WorkPlan::default();
    for (cluster, replicas) in &targets {
        let Some(info) = input.clusters.get(cluster) else { continue };
        let mut rendered = if revises(spec, cluster) {
            match input.revisions.get(replicas) {
                Some(Ok(revised)) => revised.clone(),
                failed => {
                    let message = match failed {
                        Some(Err(message)) => message.clone(),
                        _ => format!("no revision to {replicas} replicas was prepared"),
                    };
                    plan.revise_failures.push(ReviseFailure { cluster: cluster.clone(), message });
                    continue;
                }
            }
        } else {
            stripped.clone()
        };
        if let Some(c) = completions.as_ref().and_then(|c| c.get(cluster)) {
            rendered["spec"]["completions"] = json!(c);
        }
        let matches = |affinity: Option<&ClusterAffinity>| {
            affinity.is_none_or(|a| scheduler::filter::matches_affinity(a, info))
        };
        let mut rendered = match render(
            kind,
            &template,
            &rendered,
            &matches,
            input.cluster_overrides,
            input.namespaced_overrides,
        ) {
            Ok(r) => {
                for (namespace, policy) in crate::overrides::applied_policies(&r) {
                    plan.applied.push(AppliedOverride {
                        cluster: cluster.clone(),
                        namespace,
                        policy,
                    });
                }
                r
            }
            Err(e) => {
                plan.failures.push(OverrideFailure {
                    cluster: cluster.clone(),
                    namespace: e.namespace,
                    policy: e.policy,
                    message: e.message,
                });
                continue;
            }
        };
        // State preserved from a cluster the workload failed over from (statePreservation) is
        // carried as labels to the clusters it moved to.
        for task in &spec.graceful_eviction_tasks {
            if !task.clusters_before_failover.iter().any(|c| c == cluster) {
                let labels = apimachinery::object::string_map_mut(&mut rendered, "labels");
                for (k, v) in &task.preserved_label_state {
                    labels.insert(k.clone(), json!(v));
                }
            }
        }
        let namespace = names::execution_namespace(cluster);
        let work_id = input.work_ids.get(&namespace).map(String::as_str);
        mark_manifest(
            &mut rendered,
            &input.binding,
            input.template_meta,
            &work_name,
            &namespace,
            work_id,
        );
        let work = Work {
            metadata: ObjectMeta {
                name: Some(work_name.clone()),
                namespace: Some(namespace),
                labels: Some(input.binding.labels()),
                annotations: Some(input.binding.annotations()),
                finalizers: Some(vec![names::EXECUTION_FINALIZER.to_owned()]),
                ..ObjectMeta::default()
            },
            spec: WorkSpec {
                workload: WorkloadTemplate { manifests: vec![Manifest::new(&rendered)] },
                suspend_dispatching: dispatch_suspended(spec, cluster).then_some(true),
                preserve_resources_on_deletion: spec.preserve_resources_on_deletion.filter(|p| *p),
            },
            ..Work::default()
        };
        plan.works.push(PlannedWork { cluster: cluster.clone(), work });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use karmada_api::policy::OverrideSpec;

    fn cluster(name: &str, region: &str) -> (String, scheduler::ClusterInfo) {
        let info = scheduler::ClusterInfo {
            name: name.into(),
            labels: Default::default(),
            provider: String::new(),
            region: region.into(),
            zones: Vec::new(),
            taints: Vec::new(),
            enabled_apis: None,
            capacity: None,
            deleting: false,
        };
        (name.into(), info)
    }

    fn manifest(w: &PlannedWork) -> Value {
        w.work.spec.workload.manifests[0].value()
    }

    /// One binding, three targets (one unknown), overrides for one region, and the fields a
    /// Work carries, checked together as upstream writes them.
    #[test]
    fn a_binding_becomes_one_work_per_known_cluster() {
        let spec: ResourceBindingSpec = serde_json::from_value(json!({
            "resource": {"apiVersion": "batch/v1", "kind": "Job", "namespace": "ns", "name": "job"},
            "replicas": 4, "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided"}},
            "clusters": [{"name": "m1", "replicas": 3}, {"name": "m2", "replicas": 1}, {"name": "gone", "replicas": 0}],
            "conflictResolution": "Overwrite",
            "preserveResourcesOnDeletion": true,
            "suspension": {"dispatchingOnClusters": {"clusterNames": ["m2"]}},
            "gracefulEvictionTasks": [{"fromCluster": "m3", "reason": "TaintUntolerated", "producer": "TaintManager",
                "preservedLabelState": {"app.example/rev": "r7"}, "clustersBeforeFailover": ["m3"]}],
        }))
        .unwrap();
        let template = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "job", "namespace": "ns", "uid": "tpl-uid", "generation": 2,
                "resourceVersion": "9", "labels": {"app": "job"}},
            "spec": {"parallelism": 4, "completions": 8, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"active": 1}});
        let meta: ObjectMeta = serde_json::from_value(template["metadata"].clone()).unwrap();
        let clusters: BTreeMap<_, _> = [cluster("m1", "east"), cluster("m2", "west")].into();
        let override_spec: OverrideSpec = serde_json::from_value(json!({
            "resourceSelectors": [{"apiVersion": "batch/v1", "kind": "Job"}],
            "overrideRules": [{"targetCluster": {"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": ["east"]}]}},
                "overriders": {"imageOverrider": [{"component": "Registry", "operator": "replace", "value": "east.example"}]}}]
        }))
        .unwrap();
        let ops =
            [OverridePolicyRef { namespace: "ns", name: "east-images", spec: &override_spec }];
        let binding_meta: ObjectMeta =
            serde_json::from_value(json!({"name": "job-job", "namespace": "ns",
            "labels": {names::RB_PERMANENT_ID_LABEL: "rb-id"}}))
            .unwrap();
        let work_ids = BTreeMap::from([("karmada-es-m1".to_owned(), "work-id-1".to_owned())]);
        let plan = works_for(&WorkInputs {
            binding: BindingRef::of(&binding_meta),
            spec: &spec,
            template: &template,
            template_meta: &meta,
            clusters: &clusters,
            cluster_overrides: &[],
            namespaced_overrides: &ops,
            work_ids: &work_ids,
            revisions: &native_revisions(&template, &spec),
        });
        assert!(plan.failures.is_empty(), "{:?}", plan.failures);
        let on: Vec<&str> = plan.works.iter().map(|w| w.cluster.as_str()).collect();
        assert_eq!(on, ["m1", "m2"], "an unknown cluster gets no Work");
        assert_eq!(
            plan.applied,
            [AppliedOverride {
                cluster: "m1".into(),
                namespace: "ns".into(),
                policy: "east-images".into()
            }]
        );
        let (m1, m2) = (&plan.works[0], &plan.works[1]);
        let work_name = names::work_name("Job", "job", "ns");
        assert_eq!(m1.work.metadata.name.as_deref(), Some(work_name.as_str()));
        assert_eq!(m1.work.metadata.namespace.as_deref(), Some("karmada-es-m1"));
        assert_eq!(m1.work.metadata.finalizers, Some(vec![names::EXECUTION_FINALIZER.to_owned()]));
        assert_eq!(
            m1.work.metadata.labels.as_ref().unwrap()[names::RB_PERMANENT_ID_LABEL],
            "rb-id"
        );
        assert_eq!(
            m1.work.metadata.annotations.as_ref().unwrap()[names::RB_NAME_ANNOTATION],
            "job-job"
        );
        assert_eq!(m1.work.spec.preserve_resources_on_deletion, Some(true));
        assert_eq!(
            (m1.work.spec.suspend_dispatching, m2.work.spec.suspend_dispatching),
            (None, Some(true))
        );
        let (a, b) = (manifest(m1), manifest(m2));
        // Replicas (parallelism) and completions divided 3:1.
        assert_eq!(
            (a["spec"]["parallelism"].as_i64(), b["spec"]["parallelism"].as_i64()),
            (Some(3), Some(1))
        );
        assert_eq!(
            (a["spec"]["completions"].as_i64(), b["spec"]["completions"].as_i64()),
            (Some(6), Some(2))
        );
        assert_eq!(a["spec"]["template"]["spec"]["containers"][0]["image"], "east.example/busybox");
        assert_eq!(b["spec"]["template"]["spec"]["containers"][0]["image"], "busybox");
        for m in [&a, &b] {
            assert!(m.get("status").is_none() && m["metadata"].get("uid").is_none());
            assert!(m["metadata"].get("resourceVersion").is_none());
            let annotations = &m["metadata"]["annotations"];
            assert_eq!(annotations[names::CONFLICT_RESOLUTION_ANNOTATION], "overwrite");
            assert_eq!(annotations[names::TEMPLATE_UID_ANNOTATION], "tpl-uid");
            assert_eq!(annotations[names::TEMPLATE_GENERATION_ANNOTATION], "2");
            assert_eq!(m["metadata"]["labels"][names::MANAGED_LABEL], "true");
            assert_eq!(
                m["metadata"]["labels"]["app.example/rev"], "r7",
                "preserved failover state"
            );
        }
        assert_eq!(a["metadata"]["labels"][names::WORK_PERMANENT_ID_LABEL], "work-id-1");
        assert!(b["metadata"]["labels"].get(names::WORK_PERMANENT_ID_LABEL).is_none());
    }

    #[test]
    fn a_failing_override_leaves_out_that_clusters_work() {
        let spec: ResourceBindingSpec = serde_json::from_value(json!({
            "resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "cm"},
            "clusters": [{"name": "m1"}, {"name": "m2"}],
        }))
        .unwrap();
        let template = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "1"}});
        let meta: ObjectMeta = serde_json::from_value(template["metadata"].clone()).unwrap();
        let clusters: BTreeMap<_, _> = [cluster("m1", "east"), cluster("m2", "west")].into();
        let bad: OverrideSpec = serde_json::from_value(json!({
            "overrideRules": [{"targetCluster": {"clusterNames": ["m2"]},
                "overriders": {"plaintext": [{"path": "/data/missing/deeper", "operator": "replace", "value": "x"}]}}]
        }))
        .unwrap();
        let cops = [OverridePolicyRef { namespace: "", name: "broken", spec: &bad }];
        let binding_meta = ObjectMeta {
            name: Some("cm-configmap".into()),
            namespace: Some("ns".into()),
            ..ObjectMeta::default()
        };
        let plan = works_for(&WorkInputs {
            binding: BindingRef::of(&binding_meta),
            spec: &spec,
            template: &template,
            template_meta: &meta,
            clusters: &clusters,
            cluster_overrides: &cops,
            namespaced_overrides: &[],
            work_ids: &BTreeMap::new(),
            revisions: &native_revisions(&template, &spec),
        });
        let on: Vec<&str> = plan.works.iter().map(|w| w.cluster.as_str()).collect();
        assert_eq!(on, ["m1"]);
        assert_eq!(plan.failures.len(), 1);
        assert_eq!(
            (plan.failures[0].cluster.as_str(), plan.failures[0].policy.as_str()),
            ("m2", "broken")
        );
        assert_eq!(manifest(&plan.works[0])["data"], json!({"a": "1"}));
    }
}
