//! The resource interpreter for built-in kinds (upstream's defaults): replicas and per-replica
//! requirements, replica revision, retention of member-owned fields, health, and status
//! aggregation. Pure functions over JSON objects.

use std::collections::BTreeMap;

use apimachinery::quantity;
use k8s_openapi::api::core::v1::{NodeSelector, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use karmada_api::work::{NodeClaim, ReplicaRequirements};
use serde_json::{Map, Value, json};

fn pod_template(kind: &str, object: &Value) -> Option<Value> {
    match kind {
        "Pod" => Some(json!({"spec": object.get("spec").cloned().unwrap_or(json!({}))})),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            object.pointer("/spec/template").cloned()
        }
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template").cloned(),
        _ => None,
    }
}

/// What one replica of a pod template needs, as a binding's `replicaRequirements`: the node
/// claim (node selector, tolerations, required node affinity; absent when it has none), the
/// resources one pod requests (its containers, or its largest init container, plus overhead;
/// memory and storage with binary suffixes) and its priority class.
pub fn template_requirements(template: &Value) -> ReplicaRequirements {
    let spec = template.get("spec").cloned().unwrap_or(json!({}));
    let mut requests = quantity::pod_requests(template);
    requests.remove("pods");
    for (k, v) in quantity::parse_list(spec.get("overhead")) {
        *requests.entry(k).or_default() += v;
    }
    let node_selector: BTreeMap<String, String> = spec
        .get("nodeSelector")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let tolerations: Vec<Toleration> = spec
        .get("tolerations")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let hard_node_affinity: Option<NodeSelector> = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    let node_claim =
        (!node_selector.is_empty() || !tolerations.is_empty() || hard_node_affinity.is_some())
            .then_some(NodeClaim { hard_node_affinity, node_selector, tolerations });
    ReplicaRequirements {
        node_claim,
        resource_request: requests
            .iter()
            .map(|(k, v)| {
                (k.clone(), Quantity(quantity::format_canonical(*v, quantity::binary_resource(k))))
            })
            .collect(),
        namespace: String::new(),
        priority_class_name: spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Replicas of a workload and what each needs; `None` for kinds without replicas.
pub fn get_replicas(kind: &str, object: &Value) -> Option<(i32, ReplicaRequirements)> {
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64).map(|n| n as i32);
    let replicas = match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => int("/spec/replicas").unwrap_or(1),
        "Job" => {
            let parallelism = int("/spec/parallelism").unwrap_or(1);
            match int("/spec/completions") {
                Some(c) if c < parallelism => c,
                _ => parallelism,
            }
        }
        "Pod" => 1,
        _ => return None,
    };
    let template = pod_template(kind, object)?;
    Some((replicas, template_requirements(&template)))
}

/// The object with its replica count set for one cluster.
pub fn revise_replica(kind: &str, object: &mut Value, replicas: i32) {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => object["spec"]["replicas"] = json!(replicas),
        "Job" => object["spec"]["parallelism"] = json!(replicas),
        _ => {}
    }
}

/// Removes what the control plane's API server filled in that belongs to each member (as
/// upstream's prune): a Service's allocated cluster IPs (a headless Service keeps `None`).
pub fn prune(kind: &str, template: &mut Value) {
    if kind == "Service"
        && let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut)
        && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
}

/// Keeps fields the member cluster owns when Karmada updates an object there.
pub fn retain(kind: &str, desired: &mut Value, observed: &Value) {
    let copy = |desired: &mut Value, pointer: &str| {
        if let Some(v) = observed.pointer(pointer) {
            let path: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
            apimachinery::object::set_path(desired, &path, v.clone());
        }
    };
    match kind {
        "Service" => {
            for p in ["/spec/clusterIP", "/spec/clusterIPs", "/spec/healthCheckNodePort"] {
                copy(desired, p);
            }
            // Allocated node ports stay.
            if let (Some(obs), Some(want)) = (
                observed.pointer("/spec/ports").and_then(Value::as_array).cloned(),
                desired.pointer_mut("/spec/ports").and_then(Value::as_array_mut),
            ) {
                for port in want {
                    if port.get("nodePort").is_none()
                        && let Some(o) = obs.iter().find(|o| {
                            o.get("port") == port.get("port")
                                && o.get("protocol") == port.get("protocol")
                        })
                        && let Some(np) = o.get("nodePort")
                    {
                        port["nodePort"] = np.clone();
                    }
                }
            }
        }
        "Pod" => copy(desired, "/spec/nodeName"),
        "Job" => {
            copy(desired, "/spec/selector");
            if let Some(labels) = observed.pointer("/spec/template/metadata/labels") {
                apimachinery::object::set_path(
                    desired,
                    &["spec", "template", "metadata", "labels"],
                    labels.clone(),
                );
            }
        }
        "ServiceAccount" => copy(desired, "/secrets"),
        _ => {}
    }
    let retain_replicas =
        apimachinery::object::label(desired, karmada_api::names::RETAIN_REPLICAS_LABEL)
            == Some("true");
    if retain_replicas && matches!(kind, "Deployment" | "ReplicaSet" | "StatefulSet") {
        copy(desired, "/spec/replicas");
    }
}

/// Whether a member's copy of a workload is healthy.
pub fn is_healthy(kind: &str, object: &Value) -> Option<bool> {
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let generation = int("/metadata/generation");
    let observed = int("/status/observedGeneration");
    Some(match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            let desired = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let updated = if kind == "ReplicaSet" {
                int("/status/replicas")
            } else {
                int("/status/updatedReplicas")
            };
            let available = if kind == "StatefulSet" {
                int("/status/readyReplicas")
            } else {
                int("/status/availableReplicas")
            };
            observed >= generation && updated >= desired && available >= desired
        }
        "DaemonSet" => {
            observed >= generation
                && int("/status/updatedNumberScheduled") >= int("/status/desiredNumberScheduled")
                && int("/status/numberAvailable") >= int("/status/desiredNumberScheduled")
        }
        "Pod" => {
            let phase = object.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
            phase == "Succeeded"
                || (phase == "Running"
                    && object.pointer("/status/conditions").and_then(Value::as_array).is_some_and(
                        |cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"),
                    ))
        }
        "Service" => {
            object.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer")
                || object
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .is_some_and(|i| !i.is_empty())
        }
        "PersistentVolumeClaim" => {
            object.pointer("/status/phase").and_then(Value::as_str) == Some("Bound")
        }
        "PodDisruptionBudget" => int("/status/currentHealthy") >= int("/status/desiredHealthy"),
        // An address assigned.
        "Ingress" => object
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter().any(|i| {
                    ["hostname", "ip"]
                        .iter()
                        .any(|f| i.get(*f).and_then(Value::as_str).is_some_and(|v| !v.is_empty()))
                })
            }),
        _ => return None,
    })
}

/// One member's reflected status (as the Work status controller records it).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberStatus {
    pub cluster: String,
    pub status: Value,
    /// The member's `metadata.generation` and `status.observedGeneration`, when known.
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
}

/// The part of a member object's status that is reflected into its Work (and from there into
/// the binding's `aggregatedStatus`): for the kinds the built-in interpreter knows, the
/// counters and outcomes the aggregation and health need, not the timestamps and conditions
/// that change at every step of a rollout (so a step that changes nothing that matters writes
/// nothing); the whole status for other kinds. `generation` is the object's own (for
/// "observed its current generation").
pub fn reflect_status(kind: &str, object: &Value) -> Value {
    let Some(status) = object.get("status").filter(|s| s.is_object()) else {
        return Value::Null;
    };
    let fields: &[&str] = match kind {
        "Deployment" => &[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
        ],
        "StatefulSet" => &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
        "DaemonSet" => &[
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberAvailable",
            "numberMisscheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberUnavailable",
            "observedGeneration",
        ],
        "Job" => &["active", "succeeded", "failed", "conditions", "startTime", "completionTime"],
        "HorizontalPodAutoscaler" => &["currentReplicas", "desiredReplicas"],
        "PodDisruptionBudget" => &[
            "disruptionsAllowed",
            "expectedPods",
            "desiredHealthy",
            "currentHealthy",
            "disruptedPods",
        ],
        _ => {
            let mut whole = status.clone();
            if let (Some(s), Some(g)) =
                (whole.as_object_mut(), object.pointer("/metadata/generation"))
            {
                s.insert("generation".into(), g.clone());
            }
            return whole;
        }
    };
    let mut out: Map<String, Value> =
        fields.iter().filter_map(|f| Some(((*f).to_owned(), status.get(*f)?.clone()))).collect();
    if let Some(g) = object.pointer("/metadata/generation") {
        out.insert("generation".into(), g.clone());
    }
    Value::Object(out)
}

/// The template's status from its members' statuses (sums, load-balancer addresses, as
/// upstream), or `None` for kinds without an aggregation. `template_generation` becomes
/// `observedGeneration` only once every member has observed its own current generation;
/// `template_spec` is the template's spec (a Service's type decides whether it aggregates).
pub fn aggregate_status(
    kind: &str,
    members: &[MemberStatus],
    template_generation: i64,
    template_spec: &Value,
) -> Option<Value> {
    match kind {
        "Service" => {
            if template_spec.get("type").and_then(Value::as_str) != Some("LoadBalancer") {
                return None;
            }
            return Some(json!({"loadBalancer": load_balancer_ingress(members)}));
        }
        "Ingress" => return Some(json!({"loadBalancer": load_balancer_ingress(members)})),
        "CronJob" => {
            // Every member's active Jobs; the latest schedule and success anywhere.
            let mut active = Vec::new();
            for m in members {
                active.extend(
                    m.status.get("active").and_then(Value::as_array).cloned().unwrap_or_default(),
                );
            }
            let latest = |field: &str| {
                members.iter().filter_map(|m| m.status.get(field).and_then(Value::as_str)).max()
            };
            let mut out = Map::new();
            if !active.is_empty() {
                out.insert("active".into(), Value::Array(active));
            }
            for field in ["lastScheduleTime", "lastSuccessfulTime"] {
                if let Some(t) = latest(field) {
                    out.insert(field.into(), json!(t));
                }
            }
            return Some(Value::Object(out));
        }
        "HorizontalPodAutoscaler" => {
            let sum = |field: &str| -> i64 {
                members.iter().filter_map(|m| m.status.get(field).and_then(Value::as_i64)).sum()
            };
            return Some(
                json!({"currentReplicas": sum("currentReplicas"), "desiredReplicas": sum("desiredReplicas")}),
            );
        }
        "PodDisruptionBudget" => {
            let mut out = Map::new();
            for field in ["currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed"]
            {
                let total: i64 = members
                    .iter()
                    .filter_map(|m| m.status.get(field).and_then(Value::as_i64))
                    .sum();
                out.insert(field.to_owned(), json!(total));
            }
            let mut disrupted = Map::new();
            for m in members {
                if let Some(pods) = m.status.get("disruptedPods").and_then(Value::as_object) {
                    for (pod, at) in pods {
                        disrupted.insert(format!("{}/{pod}", m.cluster), at.clone());
                    }
                }
            }
            if !disrupted.is_empty() {
                out.insert("disruptedPods".into(), Value::Object(disrupted));
            }
            return Some(Value::Object(out));
        }
        _ => {}
    }
    let sum_fields: &[&str] = match kind {
        "Deployment" => &[
            "replicas",
            "readyReplicas",
            "updatedReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
        "ReplicaSet" => &["replicas", "readyReplicas", "availableReplicas", "fullyLabeledReplicas"],
        "StatefulSet" => &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
        ],
        "DaemonSet" => &[
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberAvailable",
            "numberMisscheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberUnavailable",
        ],
        "Job" => &["active", "succeeded", "failed"],
        _ => return None,
    };
    let mut out = Map::new();
    for field in sum_fields {
        let total: i64 =
            members.iter().filter_map(|m| m.status.get(*field).and_then(Value::as_i64)).sum();
        if total != 0 {
            out.insert((*field).to_owned(), json!(total));
        }
    }
    let all_observed = !members.is_empty()
        && members.iter().all(|m| m.generation.is_some() && m.generation == m.observed_generation);
    if all_observed && kind != "Job" {
        out.insert("observedGeneration".into(), json!(template_generation));
    }
    if kind == "Job" {
        let complete = !members.is_empty()
            && members.iter().all(|m| {
                m.status.pointer("/conditions").and_then(Value::as_array).is_some_and(|cs| {
                    cs.iter().any(|c| c["type"] == "Complete" && c["status"] == "True")
                })
            });
        if complete {
            out.insert("conditions".into(), json!([{"type": "Complete", "status": "True", "reason": "Completed", "message": "Job completed in every member cluster"}]));
        }
        if let Some(start) =
            members.iter().filter_map(|m| m.status.get("startTime").and_then(Value::as_str)).min()
        {
            out.insert("startTime".into(), json!(start));
        }
        if complete
            && let Some(end) = members
                .iter()
                .filter_map(|m| m.status.get("completionTime").and_then(Value::as_str))
                .max()
        {
            out.insert("completionTime".into(), json!(end));
        }
    }
    Some(Value::Object(out))
}

/// The template's phase from its members' (as upstream, for kinds whose status is a phase): a
/// member that reported nothing yet counts as Pending; the most troubled phase wins. Pods
/// also gather every member's container states. `None` for other kinds.
pub fn aggregate_phase(kind: &str, members: &[MemberStatus], unreported: usize) -> Option<Value> {
    let phases: Vec<&str> =
        members.iter().filter_map(|m| m.status.get("phase").and_then(Value::as_str)).collect();
    let has = |p: &str| phases.contains(&p);
    // The first phase of `order` a member is in; a member not reported yet is Pending.
    let worst = |order: &[&'static str]| {
        order.iter().copied().find(|p| has(p) || (*p == "Pending" && unreported > 0))
    };
    match kind {
        "Pod" => {
            let phase = worst(&["Failed", "Pending", "Running", "Succeeded"]);
            let states = |field: &str| -> Vec<Value> {
                members
                    .iter()
                    .flat_map(|m| {
                        m.status.get(field).and_then(Value::as_array).cloned().unwrap_or_default()
                    })
                    .map(|c| {
                        let mut kept =
                            json!({"ready": c.get("ready").cloned().unwrap_or(json!(false))});
                        if let Some(state) = c.get("state") {
                            kept["state"] = state.clone();
                        }
                        kept
                    })
                    .collect()
            };
            let mut out = json!({"containerStatuses": states("containerStatuses")});
            let init = states("initContainerStatuses");
            if !init.is_empty() {
                out["initContainerStatuses"] = Value::Array(init);
            }
            if let Some(p) = phase {
                out["phase"] = json!(p);
            }
            Some(out)
        }
        "PersistentVolume" => {
            let phase = worst(&["Failed", "Pending", "Available", "Bound", "Released"]);
            Some(phase.map_or_else(|| json!({}), |p| json!({"phase": p})))
        }
        "PersistentVolumeClaim" => {
            let phase = if has("Lost") {
                "Lost"
            } else {
                phases.iter().copied().find(|p| *p != "Bound").unwrap_or("Bound")
            };
            Some(json!({"phase": phase}))
        }
        _ => None,
    }
}

/// Every member's `status.loadBalancer.ingress`, de-duplicated (by hostname, IP and IP mode,
/// their port statuses merged) and sorted as upstream sorts them: hostnames first (by name),
/// then by IP, then IP mode; `{}` when there are none.
fn load_balancer_ingress(members: &[MemberStatus]) -> Value {
    let mut merged: Vec<Value> = Vec::new();
    for m in members {
        let Some(list) = m.status.pointer("/loadBalancer/ingress").and_then(Value::as_array) else {
            continue;
        };
        for ingress in list {
            let key = |v: &Value| {
                (v.get("hostname").cloned(), v.get("ip").cloned(), v.get("ipMode").cloned())
            };
            match merged.iter_mut().find(|e| key(e) == key(ingress)) {
                Some(existing) => {
                    let ports =
                        ingress.get("ports").and_then(Value::as_array).cloned().unwrap_or_default();
                    if let Some(list) = existing.get_mut("ports").and_then(Value::as_array_mut) {
                        for p in ports {
                            if !list.contains(&p) {
                                list.push(p);
                            }
                        }
                    } else if !ports.is_empty() {
                        existing["ports"] = Value::Array(ports);
                    }
                }
                None => merged.push(ingress.clone()),
            }
        }
    }
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
    merged.sort_by(|a, b| {
        let (ha, hb) = (text(a, "hostname"), text(b, "hostname"));
        // A hostname sorts before none.
        (ha.is_empty(), ha, text(a, "ip"), text(a, "ipMode")).cmp(&(
            hb.is_empty(),
            hb,
            text(b, "ip"),
            text(b, "ipMode"),
        ))
    });
    for entry in &mut merged {
        if let Some(ports) = entry.get_mut("ports").and_then(Value::as_array_mut) {
            ports.sort_by_key(|p| {
                (p.get("port").and_then(Value::as_i64), text(p, "protocol"), text(p, "error"))
            });
        }
    }
    if merged.is_empty() { json!({}) } else { json!({"ingress": merged}) }
}

/// An object a workload needs in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

impl Dependency {
    pub fn new(api_version: &str, kind: &str, name: &str) -> Self {
        Dependency {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// The ConfigMaps, Secrets, ServiceAccount and PersistentVolumeClaims a workload's pod
/// template refers to (see [`template_dependencies`]); an Ingress's TLS Secrets. Empty for
/// other kinds.
pub fn dependencies(kind: &str, object: &Value) -> Vec<Dependency> {
    if kind == "Ingress" {
        // Its TLS certificates.
        let mut secrets: Vec<Dependency> = object
            .pointer("/spec/tls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("secretName").and_then(Value::as_str))
            .filter(|n| !n.is_empty())
            .map(|n| Dependency::new("v1", "Secret", n))
            .collect();
        secrets.sort();
        secrets.dedup();
        return secrets;
    }
    pod_template(kind, object).map(|t| template_dependencies(&t)).unwrap_or_default()
}

/// The ConfigMaps, Secrets, ServiceAccount and PersistentVolumeClaims a pod template refers to
/// (volumes, projected sources, env and envFrom of every container and init container,
/// imagePullSecrets, serviceAccountName other than `default`), sorted and without duplicates.
pub fn template_dependencies(template: &Value) -> Vec<Dependency> {
    let spec = template.get("spec").cloned().unwrap_or(json!({}));
    let mut out = std::collections::BTreeSet::new();
    let mut add = |api_version: &str, kind: &str, name: Option<&Value>| {
        if let Some(name) = name.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            out.insert(Dependency::new(api_version, kind, name));
        }
    };
    let items = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for volume in items(spec.get("volumes")) {
        add("v1", "ConfigMap", volume.pointer("/configMap/name"));
        add("v1", "Secret", volume.pointer("/secret/secretName"));
        add("v1", "PersistentVolumeClaim", volume.pointer("/persistentVolumeClaim/claimName"));
        for source in items(volume.pointer("/projected/sources")) {
            add("v1", "ConfigMap", source.pointer("/configMap/name"));
            add("v1", "Secret", source.pointer("/secret/name"));
        }
    }
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        for container in items(spec.get(field)) {
            for env in items(container.get("env")) {
                add("v1", "ConfigMap", env.pointer("/valueFrom/configMapKeyRef/name"));
                add("v1", "Secret", env.pointer("/valueFrom/secretKeyRef/name"));
            }
            for from in items(container.get("envFrom")) {
                add("v1", "ConfigMap", from.pointer("/configMapRef/name"));
                add("v1", "Secret", from.pointer("/secretRef/name"));
            }
        }
    }
    for secret in items(spec.get("imagePullSecrets")) {
        add("v1", "Secret", secret.get("name"));
    }
    let account = spec.get("serviceAccountName").filter(|n| n.as_str() != Some("default"));
    add("v1", "ServiceAccount", account);
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "generation": 3},
            "spec": {"replicas": 4, "template": {"spec": {
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "overhead": {"cpu": "10m"},
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}, {"name": "b", "resources": {"limits": {"cpu": "200m"}}}],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "500m"}}}]}}}})
    }

    #[test]
    fn replicas_and_requirements() {
        let (replicas, req) = get_replicas("Deployment", &deploy()).unwrap();
        assert_eq!(replicas, 4);
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"resourceRequest": {"cpu": "510m", "memory": "64Mi"},
                "nodeClaim": {"nodeSelector": {"disk": "ssd"},
                    "tolerations": [{"key": "k", "operator": "Exists"}]}}),
            "cpu: max(init 500m, containers 300m) + overhead 10m"
        );
        let job = json!({"spec": {"parallelism": 5, "completions": 3, "template": {"spec": {"containers": []}}}});
        assert_eq!(get_replicas("Job", &job).unwrap().0, 3);
        let job = json!({"spec": {"parallelism": 2, "template": {"spec": {"containers": []}}}});
        assert_eq!(get_replicas("Job", &job).unwrap().0, 2);
        assert_eq!(get_replicas("Pod", &json!({"spec": {"containers": []}})).unwrap().0, 1);
        assert!(get_replicas("ConfigMap", &json!({})).is_none());
        let mut d = deploy();
        revise_replica("Deployment", &mut d, 2);
        assert_eq!(d["spec"]["replicas"], 2);
    }

    #[test]
    fn retention() {
        let mut desired = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        let observed = json!({"spec": {"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        retain("Service", &mut desired, &observed);
        assert_eq!(desired["spec"]["clusterIP"], "10.96.0.5");
        assert_eq!(desired["spec"]["ports"][0]["nodePort"], 30080);
        let mut d = deploy();
        d["metadata"]["labels"] = json!({"resourcetemplate.karmada.io/retain-replicas": "true"});
        retain("Deployment", &mut d, &json!({"spec": {"replicas": 9}}));
        assert_eq!(d["spec"]["replicas"], 9);
        let mut plain = deploy();
        retain("Deployment", &mut plain, &json!({"spec": {"replicas": 9}}));
        assert_eq!(plain["spec"]["replicas"], 4);
    }

    #[test]
    fn services_lose_the_control_planes_cluster_ips_but_not_headless_or_node_ports() {
        let mut service = json!({"spec": {"clusterIP": "10.96.0.4", "clusterIPs": ["10.96.0.4"],
            "ports": [{"port": 80, "nodePort": 30080}]}});
        prune("Service", &mut service);
        assert_eq!(service, json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}));
        let mut headless = json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        prune("Service", &mut headless);
        assert_eq!(headless["spec"]["clusterIP"], "None");
        let mut other = json!({"spec": {"clusterIP": "x"}});
        prune("ConfigMap", &mut other);
        assert_eq!(other["spec"]["clusterIP"], "x");
    }

    #[test]
    fn health() {
        let healthy = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(is_healthy("Deployment", &healthy), Some(true));
        let stale = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(is_healthy("Deployment", &stale), Some(false));
        assert_eq!(is_healthy("Service", &json!({"spec": {"type": "LoadBalancer"}})), Some(false));
        assert_eq!(is_healthy("ConfigMap", &json!({})), None);
    }

    #[test]
    fn reflected_status_keeps_what_aggregation_and_health_need() {
        let deployment = json!({"metadata": {"generation": 3}, "status": {
            "replicas": 2, "readyReplicas": 1, "observedGeneration": 3,
            "conditions": [{"type": "Available", "lastUpdateTime": "2026-01-01T00:00:00Z"}]}});
        assert_eq!(
            reflect_status("Deployment", &deployment),
            json!({"replicas": 2, "readyReplicas": 1, "observedGeneration": 3, "generation": 3})
        );
        let job = json!({"metadata": {"generation": 1}, "status": {"succeeded": 1, "uncountedTerminatedPods": {},
            "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            reflect_status("Job", &job),
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}], "generation": 1})
        );
        let service = json!({"metadata": {"generation": 1}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}});
        assert_eq!(
            reflect_status("Service", &service),
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}, "generation": 1}),
            "other kinds keep their whole status"
        );
        assert_eq!(reflect_status("ConfigMap", &json!({"data": {}})), Value::Null);
        // What is reflected still aggregates to the same template status.
        let full = MemberStatus {
            cluster: "m1".into(),
            status: deployment["status"].clone(),
            generation: Some(3),
            observed_generation: Some(3),
        };
        let reflected =
            MemberStatus { status: reflect_status("Deployment", &deployment), ..full.clone() };
        assert_eq!(
            aggregate_status("Deployment", &[full], 7, &Value::Null),
            aggregate_status("Deployment", &[reflected], 7, &Value::Null)
        );
    }

    #[test]
    fn aggregation() {
        let m = |cluster: &str, ready: i64, generation: i64, observed: i64| MemberStatus {
            cluster: cluster.into(),
            status: json!({"replicas": 1, "readyReplicas": ready, "updatedReplicas": 1, "availableReplicas": ready}),
            generation: Some(generation),
            observed_generation: Some(observed),
        };
        let status =
            aggregate_status("Deployment", &[m("m1", 1, 1, 1), m("m2", 1, 2, 2)], 5, &Value::Null)
                .unwrap();
        assert_eq!(
            status,
            json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "observedGeneration": 5})
        );
        let lagging =
            aggregate_status("Deployment", &[m("m1", 1, 2, 1), m("m2", 0, 1, 1)], 5, &Value::Null)
                .unwrap();
        assert!(
            lagging.get("observedGeneration").is_none(),
            "a member has not observed its generation yet"
        );
        assert_eq!(lagging["readyReplicas"], 1);
        assert!(aggregate_status("ConfigMap", &[], 1, &Value::Null).is_none());
        // Load balancers: every member's addresses, de-duplicated and sorted as upstream.
        let lb = |cluster: &str, ingress: Value| MemberStatus {
            cluster: cluster.into(),
            status: json!({"loadBalancer": {"ingress": ingress}}),
            generation: None,
            observed_generation: None,
        };
        let members = [
            lb("m2", json!([{"ip": "172.19.1.7"}, {"hostname": "b.example"}])),
            lb("m1", json!([{"ip": "172.19.1.6"}, {"ip": "172.19.1.7"}])),
        ];
        let service = aggregate_status("Service", &members, 1, &json!({"type": "LoadBalancer"}));
        assert_eq!(
            service,
            Some(
                json!({"loadBalancer": {"ingress": [{"hostname": "b.example"}, {"ip": "172.19.1.6"}, {"ip": "172.19.1.7"}]}})
            )
        );
        assert_eq!(aggregate_status("Service", &members, 1, &json!({"type": "ClusterIP"})), None);
        assert_eq!(
            aggregate_status("Ingress", &[], 1, &Value::Null),
            Some(json!({"loadBalancer": {}}))
        );
        let pdb = |cluster: &str, healthy: i64| MemberStatus {
            cluster: cluster.into(),
            status: json!({"currentHealthy": healthy, "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": healthy - 1,
                "disruptedPods": {"p": "2026-01-01T00:00:00Z"}}),
            generation: None,
            observed_generation: None,
        };
        assert_eq!(
            aggregate_status("PodDisruptionBudget", &[pdb("m1", 2), pdb("m2", 1)], 1, &Value::Null),
            Some(
                json!({"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 4, "disruptionsAllowed": 1,
                "disruptedPods": {"m1/p": "2026-01-01T00:00:00Z", "m2/p": "2026-01-01T00:00:00Z"}})
            )
        );
    }

    #[test]
    fn dependencies_of_a_pod_template() {
        let deployment = json!({"spec": {"template": {"spec": {
            "serviceAccountName": "runner",
            "imagePullSecrets": [{"name": "registry"}],
            "volumes": [
                {"name": "a", "configMap": {"name": "settings"}},
                {"name": "b", "secret": {"secretName": "tls"}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "d", "projected": {"sources": [{"configMap": {"name": "extra"}}, {"secret": {"name": "token"}}]}},
                {"name": "e", "emptyDir": {}}],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "settings"}}]}],
            "containers": [{"name": "c", "env": [
                {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "x"}}},
                {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "y"}}},
                {"name": "Z", "value": "plain"}],
                "envFrom": [{"secretRef": {"name": "bulk"}}]}]}}}});
        let names: Vec<String> = dependencies("Deployment", &deployment)
            .into_iter()
            .map(|d| format!("{}/{}", d.kind, d.name))
            .collect();
        assert_eq!(
            names,
            [
                "ConfigMap/env-cm",
                "ConfigMap/extra",
                "ConfigMap/settings",
                "PersistentVolumeClaim/data",
                "Secret/bulk",
                "Secret/env-secret",
                "Secret/registry",
                "Secret/tls",
                "Secret/token",
                "ServiceAccount/runner",
            ]
        );
        let default_account = json!({"spec": {"serviceAccountName": "default", "containers": []}});
        assert!(dependencies("Pod", &default_account).is_empty());
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}}}}}});
        assert_eq!(dependencies("CronJob", &cron).len(), 1);
        assert!(dependencies("ConfigMap", &json!({"data": {}})).is_empty());
    }

    fn member(cluster: &str, status: Value) -> MemberStatus {
        MemberStatus {
            cluster: cluster.into(),
            status,
            generation: None,
            observed_generation: None,
        }
    }

    /// Upstream's native rules for the kinds with phases, CronJobs and HPAs.
    #[test]
    fn phases_cronjobs_and_autoscalers_aggregate_as_upstream() {
        let pods = [
            member(
                "m1",
                json!({"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}, "restartCount": 2}]}),
            ),
            member("m2", json!({"phase": "Succeeded"})),
        ];
        assert_eq!(
            aggregate_phase("Pod", &pods, 0),
            Some(
                json!({"phase": "Running", "containerStatuses": [{"ready": true, "state": {"running": {}}}]})
            )
        );
        assert_eq!(
            aggregate_phase("Pod", &pods, 1).unwrap()["phase"],
            "Pending",
            "a member not reported yet"
        );
        let failed =
            [member("m1", json!({"phase": "Pending"})), member("m2", json!({"phase": "Failed"}))];
        assert_eq!(aggregate_phase("Pod", &failed, 0).unwrap()["phase"], "Failed");
        let claims = |phases: &[&str]| -> Vec<MemberStatus> {
            phases.iter().map(|p| member("m", json!({"phase": p}))).collect()
        };
        assert_eq!(
            aggregate_phase("PersistentVolumeClaim", &claims(&["Bound", "Pending"]), 0),
            Some(json!({"phase": "Pending"}))
        );
        assert_eq!(
            aggregate_phase("PersistentVolumeClaim", &claims(&["Pending", "Lost"]), 0),
            Some(json!({"phase": "Lost"}))
        );
        assert_eq!(
            aggregate_phase("PersistentVolumeClaim", &claims(&["Bound"]), 0),
            Some(json!({"phase": "Bound"}))
        );
        assert_eq!(
            aggregate_phase("PersistentVolume", &claims(&["Bound", "Available"]), 0),
            Some(json!({"phase": "Available"}))
        );
        assert_eq!(aggregate_phase("Deployment", &[], 0), None);

        let cron = [
            member(
                "m1",
                json!({"active": [{"name": "j1"}], "lastScheduleTime": "2026-01-01T00:00:00Z", "lastSuccessfulTime": "2026-01-01T00:01:00Z"}),
            ),
            member(
                "m2",
                json!({"active": [{"name": "j2"}], "lastScheduleTime": "2026-01-02T00:00:00Z"}),
            ),
        ];
        assert_eq!(
            aggregate_status("CronJob", &cron, 1, &Value::Null),
            Some(
                json!({"active": [{"name": "j1"}, {"name": "j2"}], "lastScheduleTime": "2026-01-02T00:00:00Z", "lastSuccessfulTime": "2026-01-01T00:01:00Z"})
            )
        );
        let hpa = [
            member("m1", json!({"currentReplicas": 2, "desiredReplicas": 3})),
            member("m2", json!({"currentReplicas": 1, "desiredReplicas": 1})),
        ];
        assert_eq!(
            aggregate_status("HorizontalPodAutoscaler", &hpa, 1, &Value::Null),
            Some(json!({"currentReplicas": 3, "desiredReplicas": 4}))
        );
    }

    #[test]
    fn ingresses_are_healthy_with_an_address_and_need_their_tls_secrets() {
        let ingress = |lb: Value| json!({"spec": {"tls": [{"secretName": "web-tls"}, {"secretName": "web-tls"}, {"hosts": ["x"]}]}, "status": {"loadBalancer": lb}});
        assert_eq!(
            is_healthy("Ingress", &ingress(json!({"ingress": [{"ip": "10.0.0.1"}]}))),
            Some(true)
        );
        assert_eq!(is_healthy("Ingress", &ingress(json!({"ingress": [{}]}))), Some(false));
        assert_eq!(is_healthy("Ingress", &ingress(json!({}))), Some(false));
        assert_eq!(
            dependencies("Ingress", &ingress(json!({}))),
            vec![Dependency::new("v1", "Secret", "web-tls")]
        );
    }
}
