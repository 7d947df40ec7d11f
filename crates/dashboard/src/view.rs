//! What the pages show, decided from the API's objects: pure functions from Clusters and
//! ResourceBindings to rows (tested on their own), no IO.

use apimachinery::quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use karmada_api::cluster::Cluster;
use karmada_api::work::{
    ClusterResourceBinding, ResourceBinding, ResourceBindingSpec, ResourceBindingStatus,
};
use serde_json::Value;

/// A condition worth showing: its type, whether it holds, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionView {
    pub kind: String,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

/// How much of a resource is used, of how much.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    pub used: f64,
    pub total: f64,
    /// E.g. `3.5 / 24 cores`.
    pub label: String,
}

impl Usage {
    /// Percent used, 0–100.
    pub fn percent(&self) -> u32 {
        if self.total <= 0.0 {
            return 0;
        }
        ((self.used / self.total) * 100.0).clamp(0.0, 100.0).round() as u32
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterRow {
    pub name: String,
    /// `Push` or `Pull`.
    pub mode: String,
    pub ready: ConditionView,
    pub version: String,
    pub nodes: (i32, i32),
    pub cpu: Option<Usage>,
    pub memory: Option<Usage>,
    /// `key=value:Effect`.
    pub taints: Vec<String>,
}

/// One cluster's share of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub cluster: String,
    pub replicas: i32,
    /// Ready replicas reported from that cluster, when it reports them.
    pub ready: Option<i64>,
    /// `Healthy`, `Unhealthy` or `Unknown`.
    pub health: String,
    pub applied: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadRow {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub binding: String,
    pub desired: i32,
    pub placements: Vec<Placement>,
    /// The policy that placed it (`namespace/name` of a PropagationPolicy, or a
    /// ClusterPropagationPolicy's name).
    pub policy: Option<String>,
    pub conditions: Vec<ConditionView>,
}

impl WorkloadRow {
    /// Ready replicas over every cluster that reports them.
    pub fn ready(&self) -> Option<i64> {
        let reported: Vec<i64> = self.placements.iter().filter_map(|p| p.ready).collect();
        (!reported.is_empty()).then(|| reported.iter().sum())
    }

    /// A condition that does not hold (scheduling or applying failed).
    pub fn failing(&self) -> bool {
        self.conditions.iter().any(|c| !c.ok)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub clusters: usize,
    pub clusters_ready: usize,
    pub workloads: usize,
    pub workloads_failing: usize,
    pub propagation_policies: usize,
    pub override_policies: usize,
}

impl From<&Condition> for ConditionView {
    fn from(c: &Condition) -> ConditionView {
        ConditionView {
            kind: c.type_.clone(),
            ok: c.status == "True",
            reason: c.reason.clone(),
            message: c.message.clone(),
        }
    }
}

fn condition(conditions: &[Condition], kind: &str) -> ConditionView {
    match conditions.iter().find(|c| c.type_ == kind) {
        Some(c) => ConditionView::from(c),
        None => ConditionView {
            kind: kind.to_owned(),
            ok: false,
            reason: "Unknown".into(),
            message: "not reported yet".into(),
        },
    }
}

fn usage(summary: &karmada_api::cluster::ResourceSummary, resource: &str) -> Option<Usage> {
    // Milli-units: milli-cores, milli-bytes.
    let parse = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
        quantity::parse_milli(&q.0).map(|m| m as f64 / 1000.0)
    };
    let total = parse(summary.allocatable.get(resource)?)?;
    let used = summary.allocated.get(resource).and_then(parse).unwrap_or(0.0);
    let label = match resource {
        "cpu" => format!("{} / {} cores", short(used), short(total)),
        _ => format!("{} / {} GiB", short(used / 1024f64.powi(3)), short(total / 1024f64.powi(3))),
    };
    Some(Usage { used, total, label })
}

/// At most one decimal, none when whole.
fn short(n: f64) -> String {
    let rounded = (n * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 { format!("{rounded:.0}") } else { format!("{rounded:.1}") }
}

pub fn cluster_row(cluster: &Cluster) -> ClusterRow {
    let status = cluster.status.clone().unwrap_or_default();
    let summary = status.resource_summary.clone().unwrap_or_default();
    ClusterRow {
        name: cluster.metadata.name.clone().unwrap_or_default(),
        mode: cluster.spec.sync_mode.clone(),
        ready: condition(&status.conditions, "Ready"),
        version: status.kubernetes_version.clone(),
        nodes: status.node_summary.map_or((0, 0), |n| (n.ready_num, n.total_num)),
        cpu: usage(&summary, "cpu"),
        memory: usage(&summary, "memory"),
        taints: cluster
            .spec
            .taints
            .iter()
            .map(|t| match t.value.as_str() {
                "" => format!("{}:{}", t.key, t.effect.as_str()),
                v => format!("{}={v}:{}", t.key, t.effect.as_str()),
            })
            .collect(),
    }
}

/// The ready replicas a member reports in a binding's aggregated status.
fn ready_of(status: &Value) -> Option<i64> {
    status.get("readyReplicas").and_then(Value::as_i64).or_else(|| {
        // A reported status without the field: none ready yet.
        status.get("replicas").map(|_| 0)
    })
}

pub fn workload_row(binding: &ResourceBinding) -> WorkloadRow {
    row(&binding.metadata, &binding.spec, binding.status.as_ref())
}

/// A cluster-scoped template's (a ClusterResourceBinding's) row.
pub fn cluster_workload_row(binding: &ClusterResourceBinding) -> WorkloadRow {
    row(&binding.metadata, &binding.spec, binding.status.as_ref())
}

fn row(
    meta: &ObjectMeta,
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
) -> WorkloadRow {
    let labels = meta.labels.clone().unwrap_or_default();
    let annotations = meta.annotations.clone().unwrap_or_default();
    let status = status.cloned().unwrap_or_default();
    let placements = spec
        .clusters
        .iter()
        .map(|target| {
            let item = status.aggregated_status.iter().find(|i| i.cluster_name == target.name);
            Placement {
                cluster: target.name.clone(),
                replicas: target.replicas,
                ready: item.and_then(|i| i.status.as_ref()).and_then(ready_of),
                health: item.map_or("Unknown".into(), |i| {
                    if i.health.is_empty() { "Unknown".into() } else { i.health.clone() }
                }),
                applied: item.is_some_and(|i| i.applied),
                message: item.map(|i| i.applied_message.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let policy = match (
        annotations.get("propagationpolicy.karmada.io/name"),
        annotations.get("propagationpolicy.karmada.io/namespace"),
        annotations.get("clusterpropagationpolicy.karmada.io/name"),
    ) {
        (Some(name), Some(ns), _) => Some(format!("{ns}/{name}")),
        (_, _, Some(name)) => Some(name.clone()),
        _ => labels.get("propagationpolicy.karmada.io/name").cloned(),
    };
    WorkloadRow {
        api_version: spec.resource.api_version.clone(),
        kind: spec.resource.kind.clone(),
        namespace: spec.resource.namespace.clone(),
        name: spec.resource.name.clone(),
        binding: meta.name.clone().unwrap_or_default(),
        desired: spec.replicas,
        placements,
        policy,
        conditions: ["Scheduled", "FullyApplied"]
            .iter()
            .filter(|kind| status.conditions.iter().any(|c| c.type_ == **kind))
            .map(|kind| condition(&status.conditions, kind))
            .collect(),
    }
}

pub fn counts(
    clusters: &[ClusterRow],
    workloads: &[WorkloadRow],
    propagation_policies: usize,
    override_policies: usize,
) -> Counts {
    Counts {
        clusters: clusters.len(),
        clusters_ready: clusters.iter().filter(|c| c.ready.ok).count(),
        workloads: workloads.len(),
        workloads_failing: workloads.iter().filter(|w| w.failing()).count(),
        propagation_policies,
        override_policies,
    }
}

/// A policy and what it placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRow {
    pub kind: &'static str,
    /// `namespace/name`, or the name of a cluster-scoped one.
    pub id: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `apps/v1 Deployment nginx`, one per selector.
    pub selects: Vec<String>,
    /// Where (propagation) or what it changes (override).
    pub summary: String,
    /// Workloads whose binding names this policy.
    pub placed: Vec<String>,
}

/// `apps/v1 Deployment team-a/nginx`, `apps/v1 Deployment (labels app=web) in team-a`,
/// `v1 ConfigMap (all)`.
fn selector_text(selector: &Value) -> String {
    let str_at = |p: &str| selector.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let mut text = format!("{} {} ", str_at("/apiVersion"), str_at("/kind"));
    let namespace = str_at("/namespace");
    match (
        str_at("/name"),
        selector.pointer("/labelSelector/matchLabels").and_then(Value::as_object),
    ) {
        (name, _) if !name.is_empty() && !namespace.is_empty() => {
            text.push_str(&format!("{namespace}/{name}"));
        }
        (name, _) if !name.is_empty() => text.push_str(name),
        (_, labels) => {
            match labels {
                Some(labels) => {
                    let labels: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    text.push_str(&format!("(labels {})", labels.join(",")));
                }
                None => text.push_str("(all)"),
            }
            if !namespace.is_empty() {
                text.push_str(&format!(" in {namespace}"));
            }
        }
    }
    text
}

/// Where a propagation policy places, or what an override policy changes, in a few words.
fn policy_summary(kind: &str, spec: &Value) -> String {
    if kind.ends_with("OverridePolicy") {
        let rules = spec.get("overrideRules").and_then(Value::as_array).map_or(0, Vec::len);
        return format!("{rules} override rule{}", if rules == 1 { "" } else { "s" });
    }
    let clusters: Vec<&str> = spec
        .pointer("/placement/clusterAffinity/clusterNames")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut text = if clusters.is_empty() { "any cluster".to_owned() } else { clusters.join(", ") };
    if let Some(kind) =
        spec.pointer("/placement/replicaScheduling/replicaSchedulingType").and_then(Value::as_str)
    {
        text.push_str(&format!("; replicas {kind}"));
        if let Some(preference) = spec
            .pointer("/placement/replicaScheduling/replicaDivisionPreference")
            .and_then(Value::as_str)
        {
            text.push_str(&format!(" ({preference})"));
        }
    }
    text
}

/// Rows of policies of `kind` (objects as the API returns them), each with the workloads whose
/// binding names it.
pub fn policy_rows(
    kind: &'static str,
    objects: &[Value],
    workloads: &[WorkloadRow],
) -> Vec<PolicyRow> {
    objects
        .iter()
        .map(|object| {
            let str_at =
                |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            let (name, namespace) = (str_at("/metadata/name"), str_at("/metadata/namespace"));
            let namespace = (!namespace.is_empty()).then_some(namespace);
            let id = match &namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            };
            let spec = object.get("spec").cloned().unwrap_or_default();
            let selects = spec
                .get("resourceSelectors")
                .and_then(Value::as_array)
                .map(|list| list.iter().map(selector_text).collect())
                .unwrap_or_default();
            let placed = if kind.ends_with("PropagationPolicy") {
                workloads
                    .iter()
                    .filter(|w| w.policy.as_deref() == Some(id.as_str()))
                    .map(|w| format!("{} {}/{}", w.kind, w.namespace, w.name))
                    .collect()
            } else {
                Vec::new()
            };
            PolicyRow {
                kind,
                id,
                namespace,
                name,
                selects,
                summary: policy_summary(kind, &spec),
                placed,
            }
        })
        .collect()
}

/// One resource of a cluster: allocatable, allocated, allocating (as the API writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLine {
    pub name: String,
    pub allocatable: String,
    pub allocated: String,
    pub allocating: String,
}

/// A cluster's page: its row, every condition, every resource, and what runs there.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterDetail {
    pub row: ClusterRow,
    pub conditions: Vec<ConditionView>,
    pub resources: Vec<ResourceLine>,
    /// (workload, replicas placed there), by workload.
    pub workloads: Vec<(String, i32)>,
}

pub fn cluster_detail(cluster: &Cluster, workloads: &[WorkloadRow]) -> ClusterDetail {
    let row = cluster_row(cluster);
    let status = cluster.status.clone().unwrap_or_default();
    let summary = status.resource_summary.unwrap_or_default();
    let text =
        |map: &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
         name: &str| { map.get(name).map(|q| q.0.clone()).unwrap_or_else(|| "0".into()) };
    let resources = summary
        .allocatable
        .keys()
        .map(|name| ResourceLine {
            name: name.clone(),
            allocatable: text(&summary.allocatable, name),
            allocated: text(&summary.allocated, name),
            allocating: text(&summary.allocating, name),
        })
        .collect();
    let conditions = status.conditions.iter().map(ConditionView::from).collect();
    let mut placed: Vec<(String, i32)> = workloads
        .iter()
        .filter_map(|w| {
            let p = w.placements.iter().find(|p| p.cluster == row.name)?;
            Some((format!("{} {}", w.kind, w.id()), p.replicas))
        })
        .collect();
    placed.sort();
    ClusterDetail { row, conditions, resources, workloads: placed }
}

impl WorkloadRow {
    /// `namespace/name`, or the name of a cluster-scoped template.
    pub fn id(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// Its page: `/workloads/NAMESPACE/BINDING` (`-` for a cluster-scoped one).
    pub fn path(&self) -> String {
        let ns = if self.namespace.is_empty() { "-" } else { self.namespace.as_str() };
        format!("/workloads/{ns}/{}", self.binding)
    }
}

/// An Event as the Events page and a workload's page show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub time: String,
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    /// `Kind namespace/name` of the object it is about.
    pub object: String,
    pub note: String,
    pub count: i32,
}

/// At most this many events are shown (the newest).
pub const MAX_EVENTS: usize = 500;

pub fn event_row(event: &k8s_openapi::api::events::v1::Event) -> EventRow {
    let regarding = event.regarding.clone().unwrap_or_default();
    let object = match (regarding.namespace.as_deref(), regarding.name.as_deref()) {
        (Some(ns), Some(name)) if !ns.is_empty() => {
            format!("{} {ns}/{name}", regarding.kind.unwrap_or_default())
        }
        (_, name) => format!("{} {}", regarding.kind.unwrap_or_default(), name.unwrap_or_default()),
    };
    let time = event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0.to_string())
        .or_else(|| event.deprecated_last_timestamp.as_ref().map(|t| t.0.to_string()))
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default();
    EventRow {
        time,
        kind: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        object,
        note: event.note.clone().unwrap_or_default(),
        count: event.series.as_ref().map(|s| s.count).or(event.deprecated_count).unwrap_or(1),
    }
}

/// What the Events page filters by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `Normal` or `Warning`; empty: both.
    pub kind: String,
    /// Found (ignoring case) in the reason, the object or the note; empty: anything.
    pub text: String,
}

/// The events `filter` keeps, newest first, at most [`MAX_EVENTS`].
pub fn filter_events(mut rows: Vec<EventRow>, filter: &EventFilter) -> Vec<EventRow> {
    let text = filter.text.to_lowercase();
    rows.retain(|e| {
        (filter.kind.is_empty() || e.kind == filter.kind)
            && (text.is_empty()
                || [&e.reason, &e.object, &e.note].iter().any(|f| f.to_lowercase().contains(&text)))
    });
    rows.sort_by(|a, b| b.time.cmp(&a.time));
    rows.truncate(MAX_EVENTS);
    rows
}

/// The OverridePolicies (`namespace/name`) and ClusterOverridePolicies (`name`) that select
/// the template, as the override controller matches them.
pub fn overrides_for(
    template: &propagation::Template,
    namespaced: &[karmada_api::policy::OverridePolicy],
    cluster: &[karmada_api::policy::ClusterOverridePolicy],
) -> Vec<String> {
    use propagation::overrides::policy_priority;
    let mut out: Vec<String> = cluster
        .iter()
        .filter(|p| policy_priority(&p.spec, template).is_some())
        .map(|p| format!("ClusterOverridePolicy {}", p.metadata.name.clone().unwrap_or_default()))
        .collect();
    out.extend(
        namespaced
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(template.namespace.as_str()))
            .filter(|p| policy_priority(&p.spec, template).is_some())
            .map(|p| {
                format!(
                    "OverridePolicy {}/{}",
                    template.namespace,
                    p.metadata.name.clone().unwrap_or_default()
                )
            }),
    );
    out
}

/// Why a cluster holds a workload or does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Chosen, with this many replicas.
    Chosen(i32),
    /// Passes every filter, but the placement (spread, replicas, weights) did not pick it.
    NotPicked,
    /// Filtered out: the scheduler plugin and its reason.
    FilteredOut { plugin: &'static str, reason: String },
}

/// Every cluster's verdict for a binding, by running the scheduler's own filters (the
/// `scheduler` crate the scheduler runs) on the binding's placement and the clusters as they
/// are now — so it explains the present, which may differ from when it was scheduled.
pub fn why_not(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    clusters: &[Cluster],
) -> Vec<(String, Verdict)> {
    let Some(binding) = controllers::scheduling::binding_info(spec, status) else {
        return Vec::new();
    };
    let infos: Vec<scheduler::ClusterInfo> =
        clusters.iter().map(controllers::scheduling::cluster_info).collect();
    let placement = &binding.placement;
    let affinity = placement.cluster_affinity.as_ref().or_else(|| {
        let terms = &placement.cluster_affinities;
        binding
            .observed_affinity
            .as_deref()
            .and_then(|name| terms.iter().find(|t| t.affinity_name == name))
            .or(terms.first())
            .map(|t| &t.affinity)
    });
    let (_, rejections) =
        scheduler::filter::run(&binding, &infos, &scheduler::Plugins::default(), affinity);
    let mut verdicts: Vec<(String, Verdict)> = infos
        .iter()
        .map(|c| {
            let verdict = match (
                spec.clusters.iter().find(|t| t.name == c.name),
                rejections.iter().find(|r| r.cluster == c.name),
            ) {
                (Some(target), _) => Verdict::Chosen(target.replicas),
                (None, Some(r)) => {
                    Verdict::FilteredOut { plugin: r.plugin, reason: r.reason.clone() }
                }
                (None, None) => Verdict::NotPicked,
            };
            (c.name.clone(), verdict)
        })
        .collect();
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    verdicts
}

#[cfg(test)]
mod tests;
