//! Upstream Karmada's webhook defaulting and validation, as pure functions over the stored
//! JSON. Messages follow upstream's so that users see what they are used to.

use apimachinery::selector::{self, LabelSelector};
use apimachinery::{ApiError, Cause};
use serde_json::{Value, json};
use std::collections::BTreeSet;

use crate::names;
use crate::policy::{
    ActivationPreference, ClusterAffinity, ConflictResolution, DynamicWeight, OverrideSpec,
    Overriders, Preemption, PropagationSpec, PurgeMode, ReplicaDivisionPreference,
    ReplicaSchedulingType,
};

/// Where an object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// What defaulting may need from outside (kept out so that this stays pure).
pub struct Env<'a> {
    /// A new unique id (UUID) for permanent-id labels.
    pub new_id: &'a dyn Fn() -> String,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Compiles a resource interpreter script (named after its rule) without running it.
    pub check_script: &'a dyn Fn(&str, &str) -> Result<(), String>,
    /// CustomizedClusterResourceModeling: Clusters get default resource models.
    pub resource_modeling: bool,
}

/// A ResourceInterpreterCustomization as upstream's webhook checks it: a target kind, and
/// every script compiles.
pub fn validate_customization(
    spec: &crate::config::ResourceInterpreterCustomizationSpec,
    check_script: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Vec<Cause> {
    use crate::config::InterpreterOperation;
    let mut causes = Vec::new();
    if spec.target.api_version.is_empty() {
        causes.push(Cause::required(
            "spec.target.apiVersion",
            "the kind the customization interprets",
        ));
    }
    if spec.target.kind.is_empty() {
        causes.push(Cause::required("spec.target.kind", "the kind the customization interprets"));
    }
    for op in InterpreterOperation::CUSTOMIZABLE {
        let (Some(script), Some((rule, _))) = (spec.customizations.script(&op), op.rule()) else {
            continue;
        };
        if let Err(e) = check_script(script, rule) {
            causes.push(Cause::invalid(
                format!("spec.customizations.{rule}.luaScript"),
                &json!("<script>"),
                &format!("InterpreterOperation({op}) Lua script error: {e}"),
            ));
        }
    }
    causes
}

/// Operations a customization sets that another customization of the same kind (by name) sets
/// too, as upstream's webhook refuses them (dependency rules may be several and add up).
pub fn customization_conflicts(
    spec: &crate::config::ResourceInterpreterCustomizationSpec,
    others: &[(String, crate::config::ResourceInterpreterCustomizationSpec)],
) -> Vec<Cause> {
    use crate::config::InterpreterOperation;
    let mut causes = Vec::new();
    for (name, other) in others {
        if other.target != spec.target {
            continue;
        }
        for op in InterpreterOperation::CUSTOMIZABLE {
            if op == InterpreterOperation::InterpretDependency {
                continue;
            }
            let Some((rule, _)) = op.rule() else { continue };
            if spec.customizations.script(&op).is_some()
                && other.customizations.script(&op).is_some()
            {
                causes.push(Cause::invalid(
                    format!("spec.customizations.{rule}"),
                    &json!("<script>"),
                    &format!(
                        "conflicting with InterpreterOperation({op}) of existing ResourceInterpreterCustomization({name})"
                    ),
                ));
            }
        }
    }
    causes
}

pub const DELETION_PROTECTION_LABEL: &str = "resourcetemplate.karmada.io/deletion-protected";

/// Refuses to delete objects labelled `resourcetemplate.karmada.io/deletion-protected: Always`.
pub fn check_delete(object: &Value) -> Result<(), ApiError> {
    if apimachinery::object::label(object, DELETION_PROTECTION_LABEL) == Some("Always") {
        return Err(ApiError::forbidden(format!(
            "This resource is protected, please make sure to remove the label: {DELETION_PROTECTION_LABEL}"
        )));
    }
    Ok(())
}

/// A binding's components are named, each name once (as upstream's binding webhook).
fn validate_components(binding: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let components = binding.pointer("/spec/components").and_then(Value::as_array);
    for (i, component) in components.into_iter().flatten().enumerate() {
        let field = format!("spec.components[{i}].name");
        let name = component.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            causes.push(Cause::required(field, "component names must be non-empty"));
        } else if !seen.insert(name) {
            causes.push(Cause::duplicate(field, &Value::String(name.to_owned())));
        }
    }
    causes
}

fn invalid(kind: &str, group: &str, object: &Value, causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, group, apimachinery::object::name(object), causes))
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    kind: &str,
    group: &str,
    object: &Value,
    field: &str,
) -> Result<T, ApiError> {
    let part = object.get(field).cloned().unwrap_or(json!({}));
    serde_json::from_value(part).map_err(|e| {
        ApiError::invalid(
            kind,
            group,
            apimachinery::object::name(object),
            vec![Cause::invalid(field, &json!(null), &e.to_string())],
        )
    })
}

fn ensure_id_label(object: &mut Value, label: &str, env: &Env<'_>, old: Option<&Value>) {
    let previous = old.and_then(|o| apimachinery::object::label(o, label)).map(str::to_owned);
    let labels = apimachinery::object::string_map_mut(object, "labels");
    match previous {
        // The permanent id never changes once set.
        Some(id) => {
            labels.insert(label.to_owned(), json!(id));
        }
        None => {
            if labels.get(label).and_then(Value::as_str).is_none_or(str::is_empty) {
                labels.insert(label.to_owned(), json!((env.new_id)()));
            }
        }
    }
}

/// Marks a Work's manifest as upstream's Work webhook does: the Work's permanent id as a label
/// (once it has one), and the sorted lists of the annotation and label keys Karmada manages
/// on it (`resourcetemplate.karmada.io/managed-annotations`, `.../managed-labels`). Doing it
/// twice changes nothing.
pub fn stamp_workload(manifest: &mut Value, work_id: Option<&str>) {
    if !manifest.is_object() {
        return;
    }
    let annotation_keys = {
        let annotations = apimachinery::object::string_map_mut(manifest, "annotations");
        let mut keys: Vec<String> = annotations
            .keys()
            .filter(|k| {
                *k != names::MANAGED_ANNOTATIONS_ANNOTATION
                    && *k != names::MANAGED_LABELS_ANNOTATION
            })
            .cloned()
            .collect();
        keys.push(names::MANAGED_ANNOTATIONS_ANNOTATION.into());
        keys.push(names::MANAGED_LABELS_ANNOTATION.into());
        keys.sort();
        keys.join(",")
    };
    let labels = apimachinery::object::string_map_mut(manifest, "labels");
    if let Some(id) = work_id.filter(|id| !id.is_empty()) {
        labels.insert(names::WORK_PERMANENT_ID_LABEL.into(), json!(id));
    }
    let mut label_keys: Vec<&String> = labels.keys().collect();
    label_keys.sort();
    let label_keys = label_keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
    let annotations = apimachinery::object::string_map_mut(manifest, "annotations");
    annotations.insert(names::MANAGED_ANNOTATIONS_ANNOTATION.into(), json!(annotation_keys));
    annotations.insert(names::MANAGED_LABELS_ANNOTATION.into(), json!(label_keys));
}

/// Defaults and validates a create or update of a Karmada kind. Other kinds pass untouched.
pub fn admit(
    group: &str,
    kind: &str,
    operation: Operation,
    old: Option<&Value>,
    object: &mut Value,
    env: &Env<'_>,
) -> Result<(), ApiError> {
    let _ = operation;
    match (group, kind) {
        ("policy.karmada.io", "PropagationPolicy" | "ClusterPropagationPolicy") => {
            let namespaced = kind == "PropagationPolicy";
            default_propagation(object, namespaced, env);
            let label = if namespaced {
                "propagationpolicy.karmada.io/permanent-id"
            } else {
                "clusterpropagationpolicy.karmada.io/permanent-id"
            };
            ensure_id_label(object, label, env, old);
            let spec: PropagationSpec = decode(kind, group, object, "spec")?;
            invalid(
                kind,
                group,
                object,
                validate_propagation(
                    &spec,
                    namespaced.then(|| apimachinery::object::namespace(object)),
                ),
            )
        }
        ("policy.karmada.io", "OverridePolicy" | "ClusterOverridePolicy") => {
            let namespaced = kind == "OverridePolicy";
            if namespaced {
                default_selector_namespaces(object);
            }
            let spec: OverrideSpec = decode(kind, group, object, "spec")?;
            invalid(
                kind,
                group,
                object,
                validate_override(
                    &spec,
                    namespaced.then(|| apimachinery::object::namespace(object)),
                ),
            )
        }
        ("cluster.karmada.io", "Cluster") => {
            default_cluster(object, env, old.is_none());
            let mut causes = validate_cluster(object);
            if let Some(old) = old {
                let old_id = old.pointer("/spec/id").and_then(Value::as_str).unwrap_or_default();
                let new_id = object.pointer("/spec/id").and_then(Value::as_str).unwrap_or_default();
                if !old_id.is_empty() && old_id != new_id {
                    causes.push(Cause::invalid("spec.id", &json!(new_id), "field is immutable"));
                }
            }
            invalid(kind, group, object, causes)
        }
        ("networking.karmada.io", "MultiClusterService") => {
            ensure_id_label(object, names::MCS_PERMANENT_ID_LABEL, env, old);
            let mut causes = validate_multi_cluster_service(object);
            if let Some(old) = old
                && old.pointer("/spec/types") != object.pointer("/spec/types")
            {
                causes.push(Cause::invalid(
                    "spec.types",
                    old.pointer("/spec/types").unwrap_or(&Value::Null),
                    "MultiClusterService types are immutable",
                ));
            }
            invalid(kind, group, object, causes)
        }
        ("policy.karmada.io", "FederatedResourceQuota") => {
            invalid(kind, group, object, crate::quota::validate(object))
        }
        ("autoscaling.karmada.io", "FederatedHPA") => {
            invalid(kind, group, object, validate_federated_hpa(object))
        }
        ("autoscaling.karmada.io", "CronFederatedHPA") => {
            invalid(kind, group, object, validate_cron_federated_hpa(object))
        }
        ("config.karmada.io", "ResourceInterpreterCustomization") => {
            let spec: crate::config::ResourceInterpreterCustomizationSpec =
                decode(kind, group, object, "spec")?;
            invalid(kind, group, object, validate_customization(&spec, env.check_script))
        }
        ("work.karmada.io", "ResourceBinding") => {
            ensure_id_label(object, names::RB_PERMANENT_ID_LABEL, env, old);
            invalid(kind, group, object, validate_components(object))
        }
        ("work.karmada.io", "ClusterResourceBinding") => {
            ensure_id_label(object, names::CRB_PERMANENT_ID_LABEL, env, old);
            invalid(kind, group, object, validate_components(object))
        }
        ("work.karmada.io", "Work") => {
            ensure_id_label(object, names::WORK_PERMANENT_ID_LABEL, env, old);
            let id = apimachinery::object::label(object, names::WORK_PERMANENT_ID_LABEL)
                .map(str::to_owned);
            if let Some(manifests) =
                object.pointer_mut("/spec/workload/manifests").and_then(Value::as_array_mut)
            {
                for manifest in manifests {
                    stamp_workload(manifest, id.as_deref());
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn default_selector_namespaces(object: &mut Value) {
    let namespace = apimachinery::object::namespace(object).to_owned();
    if let Some(selectors) =
        object.pointer_mut("/spec/resourceSelectors").and_then(Value::as_array_mut)
    {
        for s in selectors {
            if s.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
                s["namespace"] = json!(namespace);
            }
        }
    }
}

/// How long workloads tolerate a not-ready or unreachable cluster by default (upstream's
/// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

fn default_propagation(object: &mut Value, namespaced: bool, _env: &Env<'_>) {
    if namespaced {
        default_selector_namespaces(object);
    }
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for (field, value) in [
        ("schedulerName", "default-scheduler"),
        ("conflictResolution", "Abort"),
        ("preemption", "Never"),
    ] {
        if spec.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            spec.insert(field.to_owned(), json!(value));
        }
    }
    // Upstream's CRD defaults (the API server fills them in before its webhook runs).
    spec.entry("priority").or_insert(json!(0));
    // A ServiceImport needs its derived Service and EndpointSlices where it goes.
    let imports_service =
        spec.get("resourceSelectors").and_then(Value::as_array).is_some_and(|s| {
            s.iter().any(|r| {
                r["kind"] == crate::mcs::ServiceImport::KIND
                    && r["apiVersion"] == crate::mcs::ServiceImport::API_VERSION
            })
        });
    if imports_service {
        spec.insert("propagateDeps".to_owned(), json!(true));
    }
    if let Some(rs) = spec
        .get_mut("placement")
        .and_then(|p| p.get_mut("replicaScheduling"))
        .and_then(Value::as_object_mut)
    {
        rs.entry("replicaSchedulingType").or_insert(json!("Divided"));
    }
    if let Some(failover) = spec.get_mut("failover").and_then(Value::as_object_mut) {
        if let Some(app) = failover.get_mut("application").and_then(Value::as_object_mut) {
            app.entry("purgeMode").or_insert(json!("Gracefully"));
            if let Some(conditions) =
                app.get_mut("decisionConditions").and_then(Value::as_object_mut)
            {
                conditions.entry("tolerationSeconds").or_insert(json!(300));
            }
        }
        if let Some(cluster) = failover.get_mut("cluster").and_then(Value::as_object_mut) {
            cluster.entry("purgeMode").or_insert(json!("Gracefully"));
        }
    }
    if let Some(constraints) = spec
        .get_mut("placement")
        .and_then(|p| p.get_mut("spreadConstraints"))
        .and_then(Value::as_array_mut)
    {
        for c in constraints {
            let by_field =
                c.get("spreadByField").and_then(Value::as_str).unwrap_or_default().is_empty();
            let by_label =
                c.get("spreadByLabel").and_then(Value::as_str).unwrap_or_default().is_empty();
            if by_field && by_label {
                c["spreadByField"] = json!("cluster");
            }
            if c.get("minGroups").and_then(Value::as_i64).unwrap_or(0) == 0 {
                c["minGroups"] = json!(1);
            }
        }
    }
    if let Some(rs) = spec
        .get_mut("placement")
        .and_then(|p| p.get_mut("replicaScheduling"))
        .and_then(Value::as_object_mut)
        && rs.get("replicaSchedulingType").and_then(Value::as_str) == Some("Divided")
        && rs.get("replicaDivisionPreference").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        rs.insert("replicaDivisionPreference".into(), json!("Weighted"));
    }
    // As upstream's webhook: a workload tolerates a not-ready or unreachable cluster for 300 s
    // before the taint manager moves it (unless the policy says otherwise).
    let placement = spec.entry("placement").or_insert_with(|| json!({}));
    if let Some(placement) = placement.as_object_mut() {
        let tolerations = placement.entry("clusterTolerations").or_insert_with(|| json!([]));
        if let Some(list) = tolerations.as_array_mut() {
            for key in ["cluster.karmada.io/not-ready", "cluster.karmada.io/unreachable"] {
                let present = list.iter().any(|t| {
                    t.get("key").and_then(Value::as_str) == Some(key)
                        && t.get("effect")
                            .and_then(Value::as_str)
                            .is_none_or(|e| e == "NoExecute" || e.is_empty())
                });
                if !present {
                    list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}));
                }
            }
        }
    }
    if let Some(app) = spec
        .get_mut("failover")
        .and_then(|f| f.get_mut("application"))
        .and_then(Value::as_object_mut)
    {
        let graceful = matches!(
            app.get("purgeMode").and_then(Value::as_str),
            Some("Gracefully" | "Graciously")
        );
        if graceful && app.get("gracePeriodSeconds").is_none() {
            app.insert("gracePeriodSeconds".into(), json!(600));
        }
    }
}

fn default_cluster(object: &mut Value, env: &Env<'_>, created: bool) {
    // Resource models as upstream's API server: the default grades on a new cluster without
    // any, user models standardized.
    if env.resource_modeling
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        let models = spec.get_mut("resourceModels").and_then(Value::as_array_mut);
        match models {
            Some(models) if !models.is_empty() => crate::modeling::standardize(models),
            _ if created => {
                spec.insert("resourceModels".into(), crate::modeling::default_models());
            }
            _ => {}
        }
    }
    if let Some(taints) = object.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
        for t in taints {
            if t.get("effect").and_then(Value::as_str) == Some("NoExecute")
                && t.get("timeAdded").is_none_or(Value::is_null)
            {
                t["timeAdded"] = json!(env.now);
            }
        }
    }
}

fn validate_label_selector(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    field: &str,
    causes: &mut Vec<Cause>,
) {
    let value = serde_json::to_value(selector).unwrap_or(Value::Null);
    if let Err(e) = LabelSelector::from_object(&value) {
        causes.push(Cause::invalid(field, &value, &e));
    }
    for (k, v) in selector.match_labels.iter().flatten() {
        if let Err(e) = selector::validate_label_key(k) {
            causes.push(Cause::invalid(format!("{field}.matchLabels"), &json!(k), &e));
        }
        if let Err(e) = selector::validate_label_value(v) {
            causes.push(Cause::invalid(format!("{field}.matchLabels"), &json!(v), &e));
        }
    }
}

/// A term's `overflowAffinities`, as upstream: only with dynamic weights or Aggregated, only
/// after a non-empty primary group, names that are label keys, unique and not the term's.
fn validate_overflow(
    term: &crate::policy::ClusterAffinityTerm,
    placement: &crate::policy::Placement,
    index: usize,
    causes: &mut Vec<Cause>,
) {
    if term.overflow_affinities.is_empty() {
        return;
    }
    let field = format!("spec.placement.clusterAffinities[{index}].overflowAffinities");
    if !placement.divides_dynamically() {
        causes.push(Cause::invalid(
            field.clone(),
            &json!(term.overflow_affinities),
            "overflowAffinities can only be used together with dynamic weight or aggregated scheduling",
        ));
    }
    let primary = &term.affinity;
    if primary.label_selector.is_none()
        && primary.field_selector.is_none()
        && primary.cluster_names.is_empty()
        && primary.exclude.is_empty()
    {
        causes.push(Cause::invalid(
            field.clone(),
            &json!(term.overflow_affinities),
            "overflowAffinities can only be used together with the inline ClusterAffinity",
        ));
    }
    let mut names = std::collections::BTreeSet::from([term.affinity_name.as_str()]);
    for (i, overflow) in term.overflow_affinities.iter().enumerate() {
        let name_field = format!("{field}[{i}].affinityName");
        if let Err(e) = apimachinery::selector::validate_label_key(&overflow.affinity_name) {
            causes.push(Cause::invalid(name_field.clone(), &json!(overflow.affinity_name), &e));
        }
        if !names.insert(overflow.affinity_name.as_str()) {
            causes.push(Cause::invalid(
                name_field,
                &json!(overflow.affinity_name),
                "overflow affinity name must be unique and must not duplicate the primary group's affinityName",
            ));
        }
        validate_affinity(&overflow.affinity, &format!("{field}[{i}]"), causes);
    }
}

fn validate_affinity(affinity: &ClusterAffinity, field: &str, causes: &mut Vec<Cause>) {
    if let Some(ls) = &affinity.label_selector {
        validate_label_selector(ls, &format!("{field}.labelSelector"), causes);
    }
    if let Some(fs) = &affinity.field_selector {
        for (i, req) in fs.match_expressions.iter().enumerate() {
            let path = format!("{field}.fieldSelector.matchExpressions[{i}]");
            if !matches!(req.key.as_str(), "provider" | "region" | "zone") {
                causes.push(Cause::invalid(
                    format!("{path}.key"),
                    &json!(req.key),
                    &format!("unsupported key {:?}, must be provider, region, or zone", req.key),
                ));
            }
            if !matches!(req.operator.as_str(), "In" | "NotIn") {
                causes.push(Cause::invalid(
                    format!("{path}.operator"),
                    &json!(req.operator),
                    &format!("unsupported operator {:?}, must be In or NotIn", req.operator),
                ));
            }
        }
    }
}

/// Validation of a (Cluster)PropagationPolicy spec. `namespace` is the policy's, for PPs.
pub fn validate_propagation(spec: &PropagationSpec, namespace: Option<&str>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if spec.resource_selectors.is_empty() {
        causes
            .push(Cause::required("spec.resourceSelectors", "resourceSelectors must not be empty"));
    }
    for (i, rs) in spec.resource_selectors.iter().enumerate() {
        let field = format!("spec.resourceSelectors[{i}]");
        if rs.api_version.is_empty() {
            causes.push(Cause::required(format!("{field}.apiVersion"), ""));
        }
        if rs.kind.is_empty() {
            causes.push(Cause::required(format!("{field}.kind"), ""));
        }
        if let Some(ns) = namespace
            && !rs.namespace.is_empty()
            && rs.namespace != ns
        {
            causes.push(Cause::invalid(
                format!("{field}.namespace"),
                &json!(rs.namespace),
                "the namespace of resourceSelector should be the same as the namespace of policy",
            ));
        }
        if let Some(ls) = &rs.label_selector {
            validate_label_selector(ls, &format!("{field}.labelSelector"), &mut causes);
        }
        if spec.preemption == Preemption::Always && rs.name.is_empty() {
            causes.push(Cause::invalid(format!("{field}.name"), &json!(""), "name cannot be empty if preemption is Always, the empty name may cause unexpected resources preemption"));
        }
    }
    if matches!(spec.preemption, Preemption::Other(_)) {
        causes.push(Cause::not_supported(
            "spec.preemption",
            &json!(spec.preemption),
            Preemption::VALUES,
        ));
    }
    if matches!(spec.conflict_resolution, ConflictResolution::Other(_)) {
        causes.push(Cause::not_supported(
            "spec.conflictResolution",
            &json!(spec.conflict_resolution),
            ConflictResolution::VALUES,
        ));
    }
    if matches!(spec.activation_preference, ActivationPreference::Other(_)) {
        causes.push(Cause::not_supported(
            "spec.activationPreference",
            &json!(spec.activation_preference),
            &["", "Lazy"],
        ));
    }
    let placement = &spec.placement;
    if placement.cluster_affinity.is_some() && !placement.cluster_affinities.is_empty() {
        causes.push(Cause::invalid(
            "spec.placement",
            &json!(null),
            "clusterAffinities cannot co-exist with clusterAffinity",
        ));
    }
    if let Some(affinity) = &placement.cluster_affinity {
        validate_affinity(affinity, "spec.placement.clusterAffinity", &mut causes);
    }
    if let Some(w) = &placement.workload_affinity {
        for (term, name) in [(&w.affinity, "affinity"), (&w.anti_affinity, "antiAffinity")] {
            let Some(term) = term else { continue };
            if let Err(e) = apimachinery::selector::validate_label_key(&term.group_by_label_key) {
                causes.push(Cause::invalid(
                    format!("spec.placement.workloadAffinity.{name}.groupByLabelKey"),
                    &json!(term.group_by_label_key),
                    &e,
                ));
            }
        }
        if let (Some(a), Some(b)) = (&w.affinity, &w.anti_affinity)
            && a.group_by_label_key == b.group_by_label_key
        {
            causes.push(Cause::invalid(
                "spec.placement.workloadAffinity",
                &json!(w),
                "affinity and antiAffinity must not use the same groupByLabelKey",
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, term) in placement.cluster_affinities.iter().enumerate() {
        if !names.insert(term.affinity_name.as_str()) {
            causes.push(Cause::invalid(
                format!("spec.placement.clusterAffinities[{i}].affinityName"),
                &json!(term.affinity_name),
                "each affinity term in a policy must have a unique name",
            ));
        }
        validate_affinity(
            &term.affinity,
            &format!("spec.placement.clusterAffinities[{i}]"),
            &mut causes,
        );
        validate_overflow(term, placement, i, &mut causes);
    }
    for (i, t) in placement.cluster_tolerations.iter().enumerate() {
        let field = format!("spec.placement.clusterTolerations[{i}]");
        match t.operator.as_deref() {
            None | Some("" | "Equal" | "Exists") => {}
            Some(other) => causes.push(Cause::not_supported(
                format!("{field}.operator"),
                &json!(other),
                &["Equal", "Exists"],
            )),
        }
        if t.operator.as_deref() == Some("Exists")
            && t.value.as_deref().is_some_and(|v| !v.is_empty())
        {
            causes.push(Cause::invalid(
                format!("{field}.operator"),
                &json!(t.value),
                "value must be empty when `operator` is 'Exists'",
            ));
        }
        match t.effect.as_deref() {
            None | Some("" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") => {}
            Some(other) => causes.push(Cause::not_supported(
                format!("{field}.effect"),
                &json!(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
    }
    let constraints = &placement.spread_constraints;
    let mut cluster_constraints = 0;
    let mut any_field = false;
    for (i, c) in constraints.iter().enumerate() {
        let field = format!("spec.placement.spreadConstraints[{i}]");
        if !c.spread_by_field.is_empty() && !c.spread_by_label.is_empty() {
            causes.push(Cause::invalid(
                field.clone(),
                &json!(null),
                "spreadByLabel should not co-exist with spreadByField",
            ));
        }
        if !c.spread_by_field.is_empty() {
            any_field = true;
            if !matches!(c.spread_by_field.as_str(), "cluster" | "region" | "zone" | "provider") {
                causes.push(Cause::not_supported(
                    format!("{field}.spreadByField"),
                    &json!(c.spread_by_field),
                    &["cluster", "region", "zone", "provider"],
                ));
            }
        }
        if c.spread_by_field == "cluster" {
            cluster_constraints += 1;
        }
        if c.max_groups > 0 && c.max_groups < c.min_groups {
            causes.push(Cause::invalid(
                field,
                &json!(c.max_groups),
                "maxGroups lower than minGroups is not allowed",
            ));
        }
    }
    if cluster_constraints > 1 {
        causes.push(Cause::invalid(
            "spec.placement.spreadConstraints",
            &json!(null),
            "multiple cluster spread constraints are not allowed",
        ));
    }
    if any_field && cluster_constraints == 0 {
        causes.push(Cause::invalid("spec.placement.spreadConstraints", &json!(null), "the cluster spread constraint must be enabled in one of the constraints in case of SpreadByField is enabled"));
    }
    if let Some(rs) = &placement.replica_scheduling {
        if matches!(rs.replica_scheduling_type, ReplicaSchedulingType::Other(_)) {
            causes.push(Cause::not_supported(
                "spec.placement.replicaScheduling.replicaSchedulingType",
                &json!(rs.replica_scheduling_type),
                ReplicaSchedulingType::VALUES,
            ));
        }
        if matches!(rs.replica_division_preference, ReplicaDivisionPreference::Other(_)) {
            causes.push(Cause::not_supported(
                "spec.placement.replicaScheduling.replicaDivisionPreference",
                &json!(rs.replica_division_preference),
                ReplicaDivisionPreference::VALUES,
            ));
        }
        if let Some(wp) = &rs.weight_preference {
            if matches!(wp.dynamic_weight, DynamicWeight::Other(_)) {
                causes.push(Cause::not_supported(
                    "spec.placement.replicaScheduling.weightPreference.dynamicWeight",
                    &json!(wp.dynamic_weight),
                    DynamicWeight::VALUES,
                ));
            }
            for (i, w) in wp.static_weight_list.iter().enumerate() {
                if w.weight <= 0 {
                    causes.push(Cause::invalid(format!("spec.placement.replicaScheduling.weightPreference.staticWeightList[{i}].weight"), &json!(w.weight), "must be greater than 0"));
                }
                validate_affinity(
                    &w.target_cluster,
                    &format!(
                        "spec.placement.replicaScheduling.weightPreference.staticWeightList[{i}].targetCluster"
                    ),
                    &mut causes,
                );
            }
        }
    }
    if let Some(failover) = &spec.failover
        && let Some(app) = &failover.application
    {
        if app.decision_conditions.toleration_seconds.is_some_and(|s| s < 0) {
            causes.push(Cause::invalid(
                "spec.failover.application.decisionConditions.tolerationSeconds",
                &json!(app.decision_conditions.toleration_seconds),
                "must be greater than or equal to 0",
            ));
        }
        if matches!(app.purge_mode, PurgeMode::Other(_)) {
            causes.push(Cause::not_supported(
                "spec.failover.application.purgeMode",
                &json!(app.purge_mode),
                &["Directly", "Gracefully", "Never"],
            ));
        }
        let graceful = matches!(app.purge_mode, PurgeMode::Gracefully | PurgeMode::Graciously);
        if let Some(g) = app.grace_period_seconds {
            if !graceful {
                causes.push(Cause::invalid(
                    "spec.failover.application.gracePeriodSeconds",
                    &json!(g),
                    "only takes effect when purgeMode is Gracefully",
                ));
            } else if g <= 0 {
                causes.push(Cause::invalid(
                    "spec.failover.application.gracePeriodSeconds",
                    &json!(g),
                    "must be greater than 0",
                ));
            }
        }
    }
    if let Some(s) = &spec.suspension
        && s.dispatching == Some(true)
        && s.dispatching_on_clusters.as_ref().is_some_and(|c| !c.cluster_names.is_empty())
    {
        causes.push(Cause::invalid(
            "spec.suspension",
            &json!(null),
            "dispatching and dispatchingOnClusters cannot be set at the same time",
        ));
    }
    causes
}

fn validate_overriders(o: &Overriders, field: &str, causes: &mut Vec<Cause>) {
    for (i, p) in o.plaintext.iter().enumerate() {
        let f = format!("{field}.plaintext[{i}]");
        match p.operator.as_str() {
            "add" | "replace" => {
                if p.value.is_none() {
                    causes.push(Cause::required(
                        format!("{f}.value"),
                        &format!("value is required for {} operation", p.operator),
                    ));
                }
            }
            "remove" => {
                if p.value.as_ref().is_some_and(|v| !v.is_null()) {
                    causes.push(Cause::invalid(
                        format!("{f}.value"),
                        p.value.as_ref().unwrap_or(&Value::Null),
                        "value is not allowed for remove operation",
                    ));
                }
            }
            other => causes.push(Cause::not_supported(
                format!("{f}.operator"),
                &json!(other),
                &["add", "remove", "replace"],
            )),
        }
        if !p.path.starts_with('/') {
            causes.push(Cause::invalid(
                format!("{f}.path"),
                &json!(p.path),
                "must be a JSON pointer starting with '/'",
            ));
        }
    }
    for (i, img) in o.image_overrider.iter().enumerate() {
        let f = format!("{field}.imageOverrider[{i}]");
        if !matches!(img.component.as_str(), "Registry" | "Repository" | "Tag") {
            causes.push(Cause::not_supported(
                format!("{f}.component"),
                &json!(img.component),
                &["Registry", "Repository", "Tag"],
            ));
        }
        if !matches!(img.operator.as_str(), "add" | "remove" | "replace") {
            causes.push(Cause::not_supported(
                format!("{f}.operator"),
                &json!(img.operator),
                &["add", "remove", "replace"],
            ));
        }
        if img.predicate.as_ref().is_some_and(|p| !p.path.starts_with('/')) {
            causes.push(Cause::invalid(
                format!("{f}.predicate.path"),
                &json!(img.predicate.as_ref().map(|p| p.path.clone())),
                "must be a JSON pointer starting with '/'",
            ));
        }
    }
    for (name, list) in
        [("commandOverrider", &o.command_overrider), ("argsOverrider", &o.args_overrider)]
    {
        for (i, c) in list.iter().enumerate() {
            let f = format!("{field}.{name}[{i}]");
            if c.container_name.is_empty() {
                causes.push(Cause::required(format!("{f}.containerName"), ""));
            }
            if !matches!(c.operator.as_str(), "add" | "remove") {
                causes.push(Cause::not_supported(
                    format!("{f}.operator"),
                    &json!(c.operator),
                    &["add", "remove"],
                ));
            }
        }
    }
    for (name, list, labels) in [
        ("labelsOverrider", &o.labels_overrider, true),
        ("annotationsOverrider", &o.annotations_overrider, false),
    ] {
        for (i, l) in list.iter().enumerate() {
            let f = format!("{field}.{name}[{i}]");
            if !matches!(l.operator.as_str(), "add" | "remove" | "replace") {
                causes.push(Cause::not_supported(
                    format!("{f}.operator"),
                    &json!(l.operator),
                    &["add", "remove", "replace"],
                ));
            }
            for (k, v) in &l.value {
                if let Err(e) = selector::validate_label_key(k) {
                    causes.push(Cause::invalid(format!("{f}.value"), &json!(k), &e));
                }
                if labels && let Err(e) = selector::validate_label_value(v) {
                    causes.push(Cause::invalid(format!("{f}.value"), &json!(v), &e));
                }
            }
        }
    }
    for (i, fo) in o.field_overrider.iter().enumerate() {
        let f = format!("{field}.fieldOverrider[{i}]");
        match (fo.json.is_empty(), fo.yaml.is_empty()) {
            (false, false) => causes.push(Cause::invalid(
                f.clone(),
                &json!(null),
                "FieldOverrider has both YAML and JSON set. Only one is allowed",
            )),
            (true, true) => causes.push(Cause::invalid(
                f.clone(),
                &json!(null),
                "FieldOverrider must have either YAML or JSON set",
            )),
            _ => {}
        }
        if !fo.field_path.starts_with('/') {
            causes.push(Cause::invalid(
                format!("{f}.fieldPath"),
                &json!(fo.field_path),
                "must be a JSON pointer starting with '/'",
            ));
        }
        for op in fo.json.iter().chain(&fo.yaml) {
            if !matches!(op.operator.as_str(), "add" | "remove" | "replace") {
                causes.push(Cause::not_supported(
                    format!("{f}.operator"),
                    &json!(op.operator),
                    &["add", "remove", "replace"],
                ));
            }
        }
    }
}

/// Validation of an (Cluster)OverridePolicy spec.
pub fn validate_override(spec: &OverrideSpec, namespace: Option<&str>) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, rs) in spec.resource_selectors.iter().enumerate() {
        if let Some(ns) = namespace
            && !rs.namespace.is_empty()
            && rs.namespace != ns
        {
            causes.push(Cause::invalid(
                format!("spec.resourceSelectors[{i}].namespace"),
                &json!(rs.namespace),
                "the namespace of resourceSelector should be the same as the namespace of policy",
            ));
        }
        if rs.api_version.is_empty() || rs.kind.is_empty() {
            causes.push(Cause::required(
                format!("spec.resourceSelectors[{i}]"),
                "apiVersion and kind are required",
            ));
        }
    }
    let legacy = spec.target_cluster.is_some() || !spec.overriders.is_empty();
    if legacy && !spec.override_rules.is_empty() {
        causes.push(Cause::invalid(
            "spec",
            &json!(null),
            "overrideRules and (overriders or targetCluster) can't be set at the same time",
        ));
    }
    if let Some(tc) = &spec.target_cluster {
        validate_affinity(tc, "spec.targetCluster", &mut causes);
    }
    validate_overriders(&spec.overriders, "spec.overriders", &mut causes);
    for (i, rule) in spec.override_rules.iter().enumerate() {
        if let Some(tc) = &rule.target_cluster {
            validate_affinity(tc, &format!("spec.overrideRules[{i}].targetCluster"), &mut causes);
        }
        validate_overriders(
            &rule.overriders,
            &format!("spec.overrideRules[{i}].overriders"),
            &mut causes,
        );
    }
    causes
}

/// Validation of a Cluster object.
/// A FederatedHPA's replica bounds.
pub fn validate_federated_hpa(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let max = object.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if max < 1 {
        causes.push(Cause::invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to 1",
        ));
    }
    if let Some(min) = object.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        if min < 1 {
            causes.push(Cause::invalid(
                "spec.minReplicas",
                &json!(min),
                "must be greater than or equal to 1",
            ));
        } else if min > max && max >= 1 {
            causes.push(Cause::invalid(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than or equal to `minReplicas`",
            ));
        }
    }
    causes
}

/// A CronFederatedHPA's rules: named once each, valid cron schedules, and what they set
/// fitting their target (a FederatedHPA's bounds, or a workload's replicas).
pub fn validate_cron_federated_hpa(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let scales_fhpa =
        object.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str) == Some("FederatedHPA");
    let rules =
        object.pointer("/spec/rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut names = std::collections::BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = |f: &str| format!("spec.rules[{i}].{f}");
        let name = rule["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            causes.push(Cause::required(field("name"), "a rule needs a name"));
        } else if !names.insert(name.to_owned()) {
            causes.push(Cause::duplicate(field("name"), &json!(name)));
        }
        let schedule = rule["schedule"].as_str().unwrap_or_default();
        if let Err(e) = apimachinery::cron::Schedule::parse(schedule) {
            causes.push(Cause::invalid(
                field("schedule"),
                &json!(schedule),
                &format!("invalid cron schedule: {e}"),
            ));
        }
        if scales_fhpa {
            if rule.get("targetMinReplicas").is_none() && rule.get("targetMaxReplicas").is_none() {
                causes.push(Cause::required(
                    field("targetMinReplicas"),
                    "a rule scaling a FederatedHPA sets targetMinReplicas or targetMaxReplicas",
                ));
            }
        } else {
            match rule["targetReplicas"].as_i64() {
                None => causes.push(Cause::required(
                    field("targetReplicas"),
                    "a rule scaling a workload sets targetReplicas",
                )),
                Some(n) if n < 0 => causes.push(Cause::invalid(
                    field("targetReplicas"),
                    &json!(n),
                    "must be greater than or equal to 0",
                )),
                Some(_) => {}
            }
        }
    }
    causes
}

/// A MultiClusterService as upstream's webhook checks it: a DNS-1035 name, known exposure
/// types (one kind), valid unique port names and port numbers, valid cluster names.
pub fn validate_multi_cluster_service(object: &Value) -> Vec<Cause> {
    use crate::networking::ExposureType;
    let mut causes = Vec::new();
    let name = apimachinery::object::name(object);
    if !selector::is_dns1123_label(name) || name.starts_with(|c: char| c.is_ascii_digit()) {
        causes.push(Cause::invalid("metadata.name", &json!(name), "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"));
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in
        object.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        let port_name = port.get("name").and_then(Value::as_str).unwrap_or_default();
        if !port_name.is_empty() {
            if !selector::is_dns1123_label(port_name) {
                causes.push(Cause::invalid(format!("spec.ports[{i}].name"), &json!(port_name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
            } else if !port_names.insert(port_name) {
                causes.push(Cause::duplicate(format!("spec.ports[{i}].name"), &json!(port_name)));
            }
        }
        let number = port.get("port").and_then(Value::as_i64).unwrap_or_default();
        if !(1..=65535).contains(&number) {
            causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                &json!(number),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    let types: Vec<&Value> =
        object.pointer("/spec/types").and_then(Value::as_array).into_iter().flatten().collect();
    for (i, t) in types.iter().enumerate() {
        if t.as_str().and_then(ExposureType::parse).is_none() {
            causes.push(Cause::not_supported(format!("spec.types[{i}]"), t, ExposureType::NAMES));
        }
    }
    let distinct: BTreeSet<String> = types.iter().map(|t| t.to_string()).collect();
    if distinct.len() > 1 {
        causes.push(Cause::invalid(
            "spec.types",
            &json!(types),
            "MultiClusterService types should not contain more than one type",
        ));
    }
    for field in ["providerClusters", "consumerClusters"] {
        let listed = object.pointer(&format!("/spec/{field}")).and_then(Value::as_array);
        for (i, c) in listed.into_iter().flatten().enumerate() {
            let cluster = c.get("name").and_then(Value::as_str).unwrap_or_default();
            if cluster.is_empty() || cluster.len() > 48 || !selector::is_dns1123_label(cluster) {
                causes.push(Cause::invalid(
                    format!("spec.{field}[{i}].name"),
                    &json!(cluster),
                    "must be a cluster name: a lowercase RFC 1123 label of at most 48 characters",
                ));
            }
        }
    }
    causes
}

pub fn validate_cluster(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = apimachinery::object::name(object);
    if name.len() > 48 {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 48 characters",
        ));
    } else if !selector::is_dns1123_label(name) {
        causes.push(Cause::invalid("metadata.name", &json!(name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
    }
    match object.pointer("/spec/syncMode").and_then(Value::as_str) {
        Some("Push" | "Pull") => {}
        None | Some("") => causes.push(Cause::required("spec.syncMode", "")),
        Some(other) => {
            causes.push(Cause::not_supported("spec.syncMode", &json!(other), &["Push", "Pull"]))
        }
    }
    for (i, t) in
        object.pointer("/spec/taints").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = selector::validate_label_key(key) {
            causes.push(Cause::invalid(format!("spec.taints[{i}].key"), &json!(key), &e));
        }
        match t.get("effect").and_then(Value::as_str) {
            Some("NoSchedule" | "PreferNoSchedule" | "NoExecute") => {}
            other => causes.push(Cause::not_supported(
                format!("spec.taints[{i}].effect"),
                &json!(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
    }
    causes
}

#[cfg(test)]
mod tests {

    #[test]
    fn autoscalers_are_checked_as_upstream_checks_them() {
        let fields = |causes: Vec<Cause>| causes.into_iter().map(|c| c.field).collect::<Vec<_>>();
        let fhpa = json!({"spec": {"minReplicas": 3, "maxReplicas": 2}});
        assert_eq!(fields(validate_federated_hpa(&fhpa)), ["spec.maxReplicas"]);
        let cron = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "rules": [
            {"name": "up", "schedule": "*/1 * * * *", "targetReplicas": 3},
            {"name": "up", "schedule": "61 * * * *", "targetReplicas": 3},
            {"name": "", "schedule": "* * * * *"}]}});
        assert_eq!(
            fields(validate_cron_federated_hpa(&cron)),
            [
                "spec.rules[1].name",
                "spec.rules[1].schedule",
                "spec.rules[2].name",
                "spec.rules[2].targetReplicas"
            ]
        );
        let on_fhpa = json!({"spec": {"scaleTargetRef": {"kind": "FederatedHPA", "name": "web"}, "rules": [
            {"name": "night", "schedule": "0 22 * * *", "targetReplicas": 1}]}});
        assert_eq!(
            fields(validate_cron_federated_hpa(&on_fhpa)),
            ["spec.rules[0].targetMinReplicas"]
        );
    }

    use super::*;

    fn env() -> Env<'static> {
        Env {
            new_id: &|| "11111111-2222-3333-4444-555555555555".to_owned(),
            now: "2026-11-25T00:00:00Z",
            resource_modeling: true,
            check_script: &|script: &str, _: &str| {
                if script.contains("syntax error") { Err("bad".to_owned()) } else { Ok(()) }
            },
        }
    }

    fn pp(spec: Value) -> Value {
        json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    fn check_pp(spec: Value, expect: Option<&str>) {
        let mut object = pp(spec.clone());
        let result = admit(
            "policy.karmada.io",
            "PropagationPolicy",
            Operation::Create,
            None,
            &mut object,
            &env(),
        );
        match (expect, result) {
            (None, Ok(())) => {}
            (Some(message), Err(e)) => assert!(
                e.message.contains(message),
                "{spec}: expected {message:?} in {:?}",
                e.message
            ),
            (None, Err(e)) => panic!("{spec}: unexpected error {}", e.message),
            (Some(message), Ok(())) => panic!("{spec}: expected an error with {message:?}"),
        }
    }

    const SEL: &str = r#"[{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}]"#;

    fn spec(placement: Value) -> Value {
        json!({"resourceSelectors": serde_json::from_str::<Value>(SEL).unwrap(), "placement": placement})
    }

    #[test]
    fn propagation_validation_rules() {
        let cases: Vec<(Value, Option<&str>)> = vec![
            (spec(json!({"clusterAffinity": {"clusterNames": ["m1"]}})), None),
            (
                spec(json!({"clusterAffinity": {}, "clusterAffinities": [{"affinityName": "a"}]})),
                Some("clusterAffinities cannot co-exist with clusterAffinity"),
            ),
            (
                spec(json!({"clusterAffinities": [{"affinityName": "a"}, {"affinityName": "a"}]})),
                Some("each affinity term in a policy must have a unique name"),
            ),
            (
                spec(json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["m1"],
                    "overflowAffinities": [{"affinityName": "b", "clusterNames": ["m2"]}]}],
                    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}})),
                None,
            ),
            (
                spec(json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["m1"],
                    "overflowAffinities": [{"affinityName": "b", "clusterNames": ["m2"]}]}]})),
                Some(
                    "overflowAffinities can only be used together with dynamic weight or aggregated scheduling",
                ),
            ),
            (
                spec(json!({"clusterAffinities": [{"affinityName": "a",
                    "overflowAffinities": [{"affinityName": "b", "clusterNames": ["m2"]}]}],
                    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}})),
                Some(
                    "overflowAffinities can only be used together with the inline ClusterAffinity",
                ),
            ),
            (
                spec(json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["m1"],
                    "overflowAffinities": [{"affinityName": "a", "clusterNames": ["m2"]}]}],
                    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}})),
                Some("must not duplicate the primary group's affinityName"),
            ),
            (
                spec(
                    json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 3, "maxGroups": 2}]}),
                ),
                Some("maxGroups lower than minGroups is not allowed"),
            ),
            (
                spec(
                    json!({"spreadConstraints": [{"spreadByField": "cluster"}, {"spreadByField": "cluster"}]}),
                ),
                Some("multiple cluster spread constraints are not allowed"),
            ),
            (
                spec(json!({"spreadConstraints": [{"spreadByField": "region"}]})),
                Some(
                    "the cluster spread constraint must be enabled in one of the constraints in case of SpreadByField is enabled",
                ),
            ),
            (
                spec(
                    json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 1}, {"spreadByField": "cluster"}]}),
                ),
                None,
            ),
            (
                spec(
                    json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["x"]}]}}}),
                ),
                Some("unsupported key \"foo\", must be provider, region, or zone"),
            ),
            (
                spec(json!({"clusterTolerations": [{"key": "a", "operator": "Lt", "value": "1"}]})),
                Some("Unsupported value"),
            ),
            (
                spec(json!({"replicaScheduling": {"replicaSchedulingType": "Sharded"}})),
                Some("Unsupported value"),
            ),
            (
                json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}], "preemption": "Always", "placement": {}}),
                Some("name cannot be empty if preemption is Always"),
            ),
            (
                json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "other"}], "placement": {}}),
                Some(
                    "the namespace of resourceSelector should be the same as the namespace of policy",
                ),
            ),
            (
                json!({"resourceSelectors": [], "placement": {}}),
                Some("resourceSelectors must not be empty"),
            ),
            (
                json!({"resourceSelectors": serde_json::from_str::<Value>(SEL).unwrap(), "suspension": {"dispatching": true, "dispatchingOnClusters": {"clusterNames": ["m1"]}}}),
                Some("cannot be set at the same time"),
            ),
            (
                json!({"resourceSelectors": serde_json::from_str::<Value>(SEL).unwrap(), "failover": {"application": {"decisionConditions": {"tolerationSeconds": 10}, "purgeMode": "Directly", "gracePeriodSeconds": 5}}}),
                Some("only takes effect when purgeMode is Gracefully"),
            ),
        ];
        for (spec, expect) in cases {
            check_pp(spec, expect);
        }
    }

    #[test]
    fn binding_components_are_named_once() {
        let binding = |components: Value| {
            json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "job-flinkdeployment", "namespace": "default"},
                "spec": {"resource": {"apiVersion": "flink.apache.org/v1beta1",
                    "kind": "FlinkDeployment", "name": "job"}, "components": components}})
        };
        let admit_rb = |mut object: Value| {
            admit(
                "work.karmada.io",
                "ResourceBinding",
                Operation::Create,
                None,
                &mut object,
                &env(),
            )
        };
        assert!(
            admit_rb(binding(json!([{"name": "jobmanager", "replicas": 1},
                {"name": "taskmanager", "replicas": 2}])))
            .is_ok()
        );
        let e =
            admit_rb(binding(json!([{"name": "a", "replicas": 1}, {"name": "a", "replicas": 1},
            {"name": "", "replicas": 1}])))
            .unwrap_err();
        assert!(
            e.message.contains("spec.components[1].name: Duplicate value: \"a\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("spec.components[2].name: Required value"), "{}", e.message);
    }

    #[test]
    fn propagation_defaults() {
        let mut object = pp(json!({
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"spreadConstraints": [{"maxGroups": 2}], "replicaScheduling": {"replicaSchedulingType": "Divided"}},
            "failover": {"application": {"decisionConditions": {}, "purgeMode": "Gracefully"}}
        }));
        admit(
            "policy.karmada.io",
            "PropagationPolicy",
            Operation::Create,
            None,
            &mut object,
            &env(),
        )
        .unwrap();
        assert_eq!(object["spec"]["resourceSelectors"][0]["namespace"], "default");
        assert_eq!(
            object["spec"]["placement"]["spreadConstraints"][0],
            json!({"spreadByField": "cluster", "maxGroups": 2, "minGroups": 1})
        );
        assert_eq!(
            object["spec"]["placement"]["replicaScheduling"]["replicaDivisionPreference"],
            "Weighted"
        );
        assert_eq!(object["spec"]["failover"]["application"]["gracePeriodSeconds"], 600);
        assert_eq!(
            object["spec"]["placement"]["clusterTolerations"],
            json!([
                {"key": "cluster.karmada.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "cluster.karmada.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]),
            "upstream's default tolerations"
        );
        assert_eq!(object["spec"]["conflictResolution"], "Abort");
        assert_eq!(object["spec"]["schedulerName"], "default-scheduler");
        assert!(object["spec"].get("propagateDeps").is_none());
        // Selecting a ServiceImport turns on propagateDeps (its derived Service follows it).
        let mut import = pp(json!({
            "resourceSelectors": [{"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport", "name": "web"}],
            "placement": {}
        }));
        admit(
            "policy.karmada.io",
            "PropagationPolicy",
            Operation::Create,
            None,
            &mut import,
            &env(),
        )
        .unwrap();
        assert_eq!(import["spec"]["propagateDeps"], true);
        assert_eq!(
            object["metadata"]["labels"]["propagationpolicy.karmada.io/permanent-id"],
            "11111111-2222-3333-4444-555555555555"
        );
        // The permanent id survives updates that drop it.
        let old = object.clone();
        let mut updated = object.clone();
        updated["metadata"]["labels"] = json!({});
        let other = Env {
            new_id: &|| "changed".to_owned(),
            now: "x",
            check_script: &|_, _| Ok(()),
            resource_modeling: true,
        };
        admit(
            "policy.karmada.io",
            "PropagationPolicy",
            Operation::Update,
            Some(&old),
            &mut updated,
            &other,
        )
        .unwrap();
        assert_eq!(
            updated["metadata"]["labels"]["propagationpolicy.karmada.io/permanent-id"],
            "11111111-2222-3333-4444-555555555555"
        );
    }

    fn check_op(spec: Value, expect: Option<&str>) {
        let mut object = json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy", "metadata": {"name": "o", "namespace": "default"}, "spec": spec});
        let result = admit(
            "policy.karmada.io",
            "OverridePolicy",
            Operation::Create,
            None,
            &mut object,
            &env(),
        );
        match (expect, result) {
            (None, Ok(())) => {}
            (Some(message), Err(e)) => {
                assert!(e.message.contains(message), "expected {message:?} in {:?}", e.message)
            }
            (None, Err(e)) => panic!("unexpected error {}", e.message),
            (Some(message), Ok(())) => panic!("expected an error with {message:?}"),
        }
    }

    #[test]
    fn override_validation_rules() {
        let rule = |overriders: Value| json!({"resourceSelectors": serde_json::from_str::<Value>(SEL).unwrap(), "overrideRules": [{"overriders": overriders}]});
        check_op(
            rule(
                json!({"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 1}]}),
            ),
            None,
        );
        check_op(
            rule(json!({"plaintext": [{"path": "/spec/replicas", "operator": "replace"}]})),
            Some("value is required for replace operation"),
        );
        check_op(
            rule(
                json!({"plaintext": [{"path": "/spec/replicas", "operator": "remove", "value": 1}]}),
            ),
            Some("value is not allowed for remove operation"),
        );
        check_op(
            rule(
                json!({"fieldOverrider": [{"fieldPath": "/data/a", "json": [{"subPath": "/x", "operator": "add", "value": 1}], "yaml": [{"subPath": "/y", "operator": "add", "value": 1}]}]}),
            ),
            Some("Only one is allowed"),
        );
        check_op(
            rule(json!({"fieldOverrider": [{"fieldPath": "/data/a"}]})),
            Some("must have either YAML or JSON set"),
        );
        check_op(
            rule(json!({"labelsOverrider": [{"operator": "add", "value": {"bad key": "x"}}]})),
            Some("invalid label key"),
        );
        check_op(
            rule(
                json!({"imageOverrider": [{"component": "Host", "operator": "replace", "value": "x"}]}),
            ),
            Some("Unsupported value"),
        );
        check_op(
            json!({"resourceSelectors": serde_json::from_str::<Value>(SEL).unwrap(), "overrideRules": [{"overriders": {}}], "overriders": {"plaintext": [{"path": "/a", "operator": "remove"}]}}),
            Some("can't be set at the same time"),
        );
        check_op(
            json!({"targetCluster": {"clusterNames": ["m1"]}, "overriders": {"plaintext": [{"path": "/a", "operator": "remove"}]}}),
            None,
        );
    }

    #[test]
    fn cluster_rules() {
        let mut ok = json!({"metadata": {"name": "member1"}, "spec": {"syncMode": "Push", "taints": [{"key": "a", "effect": "NoExecute"}]}});
        admit("cluster.karmada.io", "Cluster", Operation::Create, None, &mut ok, &env()).unwrap();
        assert_eq!(ok["spec"]["taints"][0]["timeAdded"], "2026-11-25T00:00:00Z");
        let mut long = json!({"metadata": {"name": "a".repeat(49)}, "spec": {"syncMode": "Push"}});
        let e = admit("cluster.karmada.io", "Cluster", Operation::Create, None, &mut long, &env())
            .unwrap_err();
        assert!(e.message.contains("must be no more than 48 characters"), "{}", e.message);
        let mut no_mode = json!({"metadata": {"name": "m"}, "spec": {}});
        let e =
            admit("cluster.karmada.io", "Cluster", Operation::Create, None, &mut no_mode, &env())
                .unwrap_err();
        assert!(e.message.contains("spec.syncMode: Required value"), "{}", e.message);
        let old = json!({"metadata": {"name": "m"}, "spec": {"syncMode": "Push", "id": "a"}});
        let mut changed =
            json!({"metadata": {"name": "m"}, "spec": {"syncMode": "Push", "id": "b"}});
        let e = admit(
            "cluster.karmada.io",
            "Cluster",
            Operation::Update,
            Some(&old),
            &mut changed,
            &env(),
        )
        .unwrap_err();
        assert!(e.message.contains("field is immutable"), "{}", e.message);
    }

    #[test]
    fn deletion_protection() {
        let protected =
            json!({"metadata": {"name": "x", "labels": {DELETION_PROTECTION_LABEL: "Always"}}});
        let e = check_delete(&protected).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(
            e.message.contains("remove the label: resourcetemplate.karmada.io/deletion-protected")
        );
        assert!(check_delete(&json!({"metadata": {"name": "x"}})).is_ok());
    }

    #[test]
    fn customizations_need_a_target_and_scripts_that_compile() {
        let mut ric = json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
            "metadata": {"name": "c"},
            "spec": {"target": {"apiVersion": "apps/v1", "kind": "Deployment"},
                "customizations": {"replicaResource": {"luaScript": "function GetReplicas(o) return 1 end"}}}});
        let admit_it = |object: &mut Value| {
            admit(
                "config.karmada.io",
                "ResourceInterpreterCustomization",
                Operation::Create,
                None,
                object,
                &env(),
            )
        };
        assert!(admit_it(&mut ric.clone()).is_ok());
        ric["spec"]["customizations"]["retention"] = json!({"luaScript": "syntax error here"});
        ric["spec"]["target"]["kind"] = json!("");
        let err = admit_it(&mut ric).expect_err("refused");
        assert_eq!(err.code, 422);
        let fields: Vec<&str> = err.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.target.kind", "spec.customizations.retention.luaScript"]);
        assert!(
            err.message.contains("InterpreterOperation(Retain) Lua script error: bad"),
            "{}",
            err.message
        );
    }

    #[test]
    fn customizations_of_one_kind_may_not_both_set_an_operation() {
        let spec = |target: &str,
                    rules: Value|
         -> crate::config::ResourceInterpreterCustomizationSpec {
            serde_json::from_value(json!({"target": {"apiVersion": "apps/v1", "kind": target}, "customizations": rules}))
                .unwrap()
        };
        let lua = |s: &str| json!({"luaScript": s});
        let new = spec(
            "Deployment",
            json!({"retention": lua("a"), "dependencyInterpretation": lua("d")}),
        );
        let others = vec![
            ("same-op".to_owned(), spec("Deployment", json!({"retention": lua("b")}))),
            (
                "deps-add-up".to_owned(),
                spec("Deployment", json!({"dependencyInterpretation": lua("e")})),
            ),
            ("other-op".to_owned(), spec("Deployment", json!({"replicaResource": lua("c")}))),
            ("other-kind".to_owned(), spec("StatefulSet", json!({"retention": lua("b")}))),
        ];
        let causes = customization_conflicts(&new, &others);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec.customizations.retention");
        assert!(causes[0].message.contains("conflicting with InterpreterOperation(Retain) of existing ResourceInterpreterCustomization(same-op)"));
    }
}
