//! The simulation: nodes, a scheduler, a kubelet and workload controllers, over an in-memory
//! index fed by one store watch. Each pass computes what should change from the index and
//! writes it through the API server's in-process handlers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::object::{self, meta_str};
use apimachinery::quantity::{self, Resources};
use apiserver::Api;
use apiserver::api::{Decision, DeleteOptions, User, now_rfc3339};
use apiserver::registry::ResourceDef;
use futures_util::StreamExt;
use parking_lot::RwLock;
use serde_json::{Value, json};
use store::{Event, ListOptions};

use crate::Faults;

/// The shape of a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    /// Per node, in milli-cores.
    pub node_cpu_milli: i128,
    /// Per node, in bytes.
    pub node_memory: i128,
    pub node_pods: i128,
    pub provider: String,
    pub region: String,
    pub zones: Vec<String>,
    /// From a pod being bound to it running and Ready.
    pub start_delay: Duration,
    /// How long a Job's pods run before they succeed.
    pub job_duration: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            node_cpu_milli: 8_000,
            node_memory: 32 << 30,
            node_pods: 110,
            provider: String::new(),
            region: String::new(),
            zones: Vec::new(),
            start_delay: Duration::from_millis(200),
            job_duration: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Node,
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    PodDisruptionBudget,
}

const KINDS: &[(Kind, &str, &str)] = &[
    (Kind::Node, "", "nodes"),
    (Kind::Pod, "", "pods"),
    (Kind::Deployment, "apps", "deployments"),
    (Kind::ReplicaSet, "apps", "replicasets"),
    (Kind::StatefulSet, "apps", "statefulsets"),
    (Kind::DaemonSet, "apps", "daemonsets"),
    (Kind::Job, "batch", "jobs"),
    (Kind::CronJob, "batch", "cronjobs"),
    (Kind::Service, "", "services"),
    (Kind::PodDisruptionBudget, "policy", "poddisruptionbudgets"),
];

fn kind_of_key(key: &[u8]) -> Option<(Kind, String, String)> {
    let key = std::str::from_utf8(key).ok()?;
    for (kind, group, plural) in KINDS {
        let g = if group.is_empty() { "core" } else { group };
        if let Some(rest) = key.strip_prefix(&format!("/registry/{g}/{plural}/")) {
            return Some(match rest.split_once('/') {
                Some((ns, name)) => (*kind, ns.to_owned(), name.to_owned()),
                None => (*kind, String::new(), rest.to_owned()),
            });
        }
    }
    None
}

fn kind_of_owner(owner_kind: &str) -> Option<Kind> {
    Some(match owner_kind {
        "Deployment" => Kind::Deployment,
        "ReplicaSet" => Kind::ReplicaSet,
        "StatefulSet" => Kind::StatefulSet,
        "DaemonSet" => Kind::DaemonSet,
        "Job" => Kind::Job,
        "CronJob" => Kind::CronJob,
        _ => return None,
    })
}

type Key = (String, String);

struct Sim {
    api: Arc<Api>,
    config: SimConfig,
    faults: Arc<RwLock<Faults>>,
    defs: HashMap<Kind, Arc<ResourceDef>>,
    objects: HashMap<Kind, BTreeMap<Key, Value>>,
    dirty: BTreeSet<(Kind, String, String)>,
    /// When a pod was bound (the kubelet starts it `start_delay` later).
    bound_at: HashMap<Key, Instant>,
    user: User,
    pod_ips: u32,
    /// Pods without a node (the scheduler's queue).
    unscheduled: BTreeSet<Key>,
    /// Bound pods whose observed state may not match what the kubelet wants.
    kubelet_queue: BTreeSet<Key>,
    /// Pods and ReplicaSets by their kind and the uid of their owner (no scan of every
    /// ReplicaSet per Deployment sync).
    children_by_owner: HashMap<(Kind, String), BTreeSet<Key>>,
}

fn owner(object: &Value) -> Option<(Kind, String)> {
    object.pointer("/metadata/ownerReferences")?.as_array()?.iter().find_map(|r| {
        if r.get("controller").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        Some((kind_of_owner(r.get("kind")?.as_str()?)?, r.get("name")?.as_str()?.to_owned()))
    })
}

fn uid(object: &Value) -> String {
    meta_str(object, "uid").unwrap_or_default().to_owned()
}

fn owned_by(child: &Value, parent: &Value) -> bool {
    let parent_uid = uid(parent);
    child.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
        refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(parent_uid.as_str()))
    })
}

fn owner_ref(parent: &Value, kind: &str, api_version: &str) -> Value {
    json!([{
        "apiVersion": api_version, "kind": kind, "name": object::name(parent), "uid": uid(parent),
        "controller": true, "blockOwnerDeletion": true
    }])
}

fn replicas(object: &Value) -> i64 {
    object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn generation(object: &Value) -> i64 {
    object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1)
}

fn terminated(pod: &Value) -> bool {
    matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

fn deleting(object: &Value) -> bool {
    meta_str(object, "deletionTimestamp").is_some()
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

use apimachinery::quantity::pod_requests;

fn tolerates(pod: &Value, taint: &Value) -> bool {
    let effect = taint.get("effect").and_then(Value::as_str).unwrap_or_default();
    if effect == "PreferNoSchedule" {
        return true;
    }
    let key = taint.get("key").and_then(Value::as_str).unwrap_or_default();
    let value = taint.get("value").and_then(Value::as_str).unwrap_or_default();
    pod.pointer("/spec/tolerations").and_then(Value::as_array).into_iter().flatten().any(|t| {
        let t_key = t.get("key").and_then(Value::as_str).unwrap_or_default();
        let t_effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
        let exists = t.get("operator").and_then(Value::as_str) == Some("Exists");
        (t_key.is_empty() && exists || t_key == key)
            && (t_effect.is_empty() || t_effect == effect)
            && (exists || t.get("value").and_then(Value::as_str).unwrap_or_default() == value)
    })
}

fn node_selects(pod: &Value, node: &Value) -> bool {
    let labels = apimachinery::selector::labels_of(node);
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()));
    let taints_ok = node.pointer("/spec/taints").and_then(Value::as_array).is_none_or(|taints| {
        taints
            .iter()
            .all(|t| t.get("effect") == Some(&json!("PreferNoSchedule")) || tolerates(pod, t))
    });
    selector_ok
        && taints_ok
        && node.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true)
}

fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn short_hash(text: &str) -> String {
    // FNV-1a, rendered with Kubernetes' safe alphabet.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10).map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char).collect()
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason, "message": message,
           "lastUpdateTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()})
}

impl Sim {
    fn def(&self, kind: Kind) -> Arc<ResourceDef> {
        Arc::clone(&self.defs[&kind])
    }

    fn all(&self, kind: Kind) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.iter())
    }

    fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&kind)?.get(&(ns.to_owned(), name.to_owned()))
    }

    fn namespaced(ns: &str) -> Option<&str> {
        (!ns.is_empty()).then_some(ns)
    }

    async fn create(&self, kind: Kind, ns: &str, object: Value) {
        let def = self.def(kind);
        if let Err(e) = self
            .api
            .create_object(&def, Sim::namespaced(ns), object, "karmada-member-simulator")
            .await
            && e.code != 409
        {
            tracing::debug!(error = %e, ?kind, "simulated create failed");
        }
    }

    async fn delete(&self, kind: Kind, ns: &str, name: &str) {
        let def = self.def(kind);
        let _ = self
            .api
            .delete_object(
                &def,
                Sim::namespaced(ns),
                name,
                &DeleteOptions::default(),
                false,
                &self.user,
            )
            .await;
    }

    /// Rewrites an object with `change` (skipped if nothing changes).
    async fn update(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        change: impl Fn(&mut Value) + Send + Sync,
    ) {
        let def = self.def(kind);
        let result = self
            .api
            .guaranteed_update(&def, Sim::namespaced(ns), name, false, &mut |current| {
                let Some(current) = current else { return Ok(Decision::Unchanged) };
                let mut new = current.clone();
                change(&mut new);
                if new == *current { Ok(Decision::Unchanged) } else { Ok(Decision::Update(new)) }
            })
            .await;
        if let Err(e) = result
            && e.code != 404
        {
            tracing::debug!(error = %e, ?kind, name, "simulated update failed");
        }
    }

    async fn set_status(&self, kind: Kind, ns: &str, name: &str, status: Value) {
        self.update(kind, ns, name, move |o| {
            // Keep condition transition times when nothing else changed.
            let mut status = status.clone();
            if let (Some(old), Some(new)) = (
                o.pointer("/status/conditions").and_then(Value::as_array),
                status.get_mut("conditions").and_then(Value::as_array_mut),
            ) {
                for c in new.iter_mut() {
                    if let Some(prev) = old.iter().find(|p| {
                        p["type"] == c["type"]
                            && p["status"] == c["status"]
                            && p["reason"] == c["reason"]
                    }) {
                        c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
                        c["lastUpdateTime"] =
                            prev.get("lastUpdateTime").cloned().unwrap_or(Value::Null);
                        if c["lastUpdateTime"].is_null() {
                            c.as_object_mut().map(|m| m.remove("lastUpdateTime"));
                        }
                    }
                }
            }
            o["status"] = status;
        })
        .await;
    }

    fn node_labels(&self, i: usize) -> Value {
        let name = format!("node-{}", i + 1);
        let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"});
        if !self.config.zones.is_empty() {
            labels["topology.kubernetes.io/zone"] =
                json!(self.config.zones[i % self.config.zones.len()]);
        }
        if !self.config.region.is_empty() {
            labels["topology.kubernetes.io/region"] = json!(self.config.region);
        }
        labels
    }

    fn node_status(&self, ready: bool) -> Value {
        let capacity = json!({
            "cpu": quantity::format_milli(self.config.node_cpu_milli),
            "memory": format!("{}", self.config.node_memory),
            "pods": format!("{}", self.config.node_pods),
        });
        let version = self.api_version();
        json!({
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                "message": if ready { "kubelet is posting ready status" } else { "simulated node failure" },
                "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
            "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.0", "osImage": "karmada-rs simulated node"},
        })
    }

    fn api_version(&self) -> String {
        crate::sim::version_of(&self.api)
    }

    async fn ensure_nodes(&mut self) {
        for i in 0..self.config.nodes {
            let name = format!("node-{}", i + 1);
            if self.get(Kind::Node, "", &name).is_some() {
                continue;
            }
            let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": self.node_labels(i)},
                "spec": {"podCIDR": format!("10.244.{i}.0/24")}, "status": self.node_status(true)});
            self.create(Kind::Node, "", node).await;
        }
    }

    async fn sync_node_faults(&self) {
        let failing: Vec<String> = self.faults.read().not_ready_nodes.clone();
        let nodes: Vec<(String, bool)> =
            self.all(Kind::Node).map(|((_, n), v)| (n.clone(), node_ready(v))).collect();
        for (name, ready) in nodes {
            let should = !failing.contains(&name);
            if ready != should {
                let status = self.node_status(should);
                self.update(Kind::Node, "", &name, move |o| {
                    let capacity = o.pointer("/status/capacity").cloned();
                    o["status"] = status.clone();
                    if let Some(c) = capacity {
                        o["status"]["capacity"] = c.clone();
                        o["status"]["allocatable"] = c;
                    }
                })
                .await;
            }
        }
    }

    fn pod_template(
        &self,
        template: &Value,
        name: &str,
        ns: &str,
        owner_refs: Value,
        extra_labels: &BTreeMap<String, String>,
    ) -> Value {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
            "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        object::set_meta(&mut pod, "name", json!(name));
        object::set_meta(&mut pod, "namespace", json!(ns));
        object::set_meta(&mut pod, "ownerReferences", owner_refs);
        let labels = object::string_map_mut(&mut pod, "labels");
        for (k, v) in extra_labels {
            labels.insert(k.clone(), json!(v));
        }
        pod
    }

    /// The images of a pod's containers that the member's registry does not have.
    fn missing_images(&self, pod: &Value) -> BTreeSet<String> {
        let faults = self.faults.read();
        if faults.missing_images.is_empty() {
            return BTreeSet::new();
        }
        ["/spec/initContainers", "/spec/containers"]
            .iter()
            .filter_map(|path| pod.pointer(path).and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
            .filter(|image| faults.image_missing(image))
            .map(str::to_owned)
            .collect()
    }

    /// The pod's IP: the one it has, or the next free one.
    fn pod_ip(&mut self, pod: &Value) -> Value {
        if let Some(ip) = pod.pointer("/status/podIP") {
            return ip.clone();
        }
        self.pod_ips += 1;
        json!(format!("10.244.{}.{}", (self.pod_ips / 250) % 250, self.pod_ips % 250 + 2))
    }

    fn failing(&self, ns: &str, workload: &str) -> bool {
        self.faults.read().failing_workloads.iter().any(|w| w == &format!("{ns}/{workload}"))
    }

    /// The top-level workload a pod belongs to (ReplicaSets resolve to their Deployment).
    fn workload_of(&self, ns: &str, pod: &Value) -> Option<String> {
        let (kind, name) = owner(pod)?;
        if kind == Kind::ReplicaSet {
            let rs = self.get(Kind::ReplicaSet, ns, &name)?;
            if let Some((Kind::Deployment, d)) = owner(rs) {
                return Some(d);
            }
        }
        Some(name)
    }

    // ---- controllers ----

    async fn sync_deployment(&mut self, ns: &str, name: &str) {
        let Some(d) = self.get(Kind::Deployment, ns, name).cloned() else { return };
        if deleting(&d) {
            return;
        }
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = short_hash(&template.to_string());
        let rs_name = format!("{name}-{hash}");
        let desired = replicas(&d);
        let owned: Vec<(String, Value)> = self
            .children_of(Kind::ReplicaSet, ns, &d)
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Rolling update: the new ReplicaSet grows within maxSurge, old ones shrink while at
        // least desired − maxUnavailable pods stay ready (defaults 25% each).
        let percent = |v: Option<&Value>, round_up: bool| -> i64 {
            match v {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(Value::String(s)) if s.ends_with('%') => {
                    let p: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
                    if round_up { (desired * p + 99) / 100 } else { desired * p / 100 }
                }
                _ => {
                    if round_up {
                        (desired * 25 + 99) / 100
                    } else {
                        desired * 25 / 100
                    }
                }
            }
        };
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let max_surge = percent(d.pointer("/spec/strategy/rollingUpdate/maxSurge"), true);
        let max_unavailable =
            percent(d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"), false);
        let (max_surge, max_unavailable) = if max_surge == 0 && max_unavailable == 0 {
            (1, 0)
        } else {
            (max_surge, max_unavailable)
        };
        let old_total: i64 =
            owned.iter().filter(|(n, _)| *n != rs_name).map(|(_, rs)| replicas(rs)).sum();
        let old_ready: i64 = owned
            .iter()
            .filter(|(n, _)| *n != rs_name)
            .map(|(_, rs)| rs.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0))
            .sum();
        let new_ready = owned
            .iter()
            .find(|(n, _)| *n == rs_name)
            .and_then(|(_, rs)| rs.pointer("/status/readyReplicas").and_then(Value::as_i64))
            .unwrap_or(0);
        let new_target = if recreate {
            if old_total > 0 { 0 } else { desired }
        } else {
            desired.min((desired + max_surge - old_total).max(0))
        };
        // A new template gets its ReplicaSet, starting as large as the rollout allows (all of
        // it when nothing older runs).
        if !owned.iter().any(|(n, _)| n == &rs_name) {
            let mut rs_template = template.clone();
            let labels = object::string_map_mut(&mut rs_template, "labels");
            labels.insert("pod-template-hash".into(), json!(hash));
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut rs_labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            rs_labels["pod-template-hash"] = json!(hash);
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": rs_labels,
                    "ownerReferences": owner_ref(&d, "Deployment", "apps/v1")},
                "spec": {"replicas": new_target, "selector": selector, "template": rs_template}});
            self.create(Kind::ReplicaSet, ns, rs).await;
        }
        let mut may_remove = if recreate {
            old_total
        } else {
            (old_ready + new_ready - (desired - max_unavailable)).max(0)
        };
        for (rs_name_i, rs) in &owned {
            let want = if *rs_name_i == rs_name {
                new_target.max(replicas(rs).min(desired))
            } else {
                let current = replicas(rs);
                let cut = current.min(may_remove);
                may_remove -= cut;
                current - cut
            };
            if replicas(rs) != want {
                self.update(Kind::ReplicaSet, ns, rs_name_i, move |o| {
                    o["spec"]["replicas"] = json!(want)
                })
                .await;
            }
            if want == 0
                && *rs_name_i != rs_name
                && rs.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0) == 0
            {
                self.delete(Kind::ReplicaSet, ns, rs_name_i).await;
            }
        }
        let (mut total, mut ready, mut updated) = (0, 0, 0);
        for (n, rs) in &owned {
            let r = rs.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0);
            let rd = rs.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
            total += r;
            ready += rd;
            if *n == rs_name {
                updated = r;
            }
        }
        let available = ready;
        let mut status = json!({
            "observedGeneration": generation(&d), "replicas": total, "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": available,
            "conditions": [
                condition("Available", available >= desired, if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    if available >= desired { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }),
                condition("Progressing", true, if updated == desired && ready >= desired { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                    &format!("ReplicaSet \"{rs_name}\" is progressing.")),
            ],
        });
        if desired - available > 0 {
            status["unavailableReplicas"] = json!(desired - available);
        }
        for field in ["readyReplicas", "availableReplicas", "updatedReplicas", "replicas"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::Deployment, ns, name, status).await;
    }

    /// The objects of `kind` in `ns` that `parent` owns, from the owner index.
    fn children_of(&self, kind: Kind, ns: &str, parent: &Value) -> Vec<(&String, &Value)> {
        let Some(keys) = self.children_by_owner.get(&(kind, uid(parent))) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|(n, _)| n == ns)
            .filter_map(|(n, k)| {
                let child = self.get(kind, n, k)?;
                owned_by(child, parent).then_some((k, child))
            })
            .collect()
    }

    fn live_pods_of(&self, ns: &str, parent: &Value) -> Vec<(String, Value)> {
        self.children_of(Kind::Pod, ns, parent)
            .into_iter()
            .filter(|(_, p)| !deleting(p))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    async fn sync_replicaset(&mut self, ns: &str, name: &str) {
        let Some(rs) = self.get(Kind::ReplicaSet, ns, name).cloned() else { return };
        if deleting(&rs) {
            return;
        }
        let desired = replicas(&rs).max(0) as usize;
        let mut pods: Vec<(String, Value)> =
            self.live_pods_of(ns, &rs).into_iter().filter(|(_, p)| !terminated(p)).collect();
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        while pods.len() < desired {
            let pod_name =
                format!("{name}-{}", &short_hash(&uuid::Uuid::new_v4().to_string())[..5]);
            let pod = self.pod_template(
                &template,
                &pod_name,
                ns,
                owner_ref(&rs, "ReplicaSet", "apps/v1"),
                &BTreeMap::new(),
            );
            self.create(Kind::Pod, ns, pod.clone()).await;
            pods.push((pod_name, pod));
        }
        if pods.len() > desired {
            // Delete unscheduled pods first, then not-ready ones, then the newest.
            pods.sort_by_key(|(n, p)| {
                (p.pointer("/spec/nodeName").is_some(), pod_ready(p), std::cmp::Reverse(n.clone()))
            });
            for (pod_name, _) in pods.drain(..pods.len() - desired) {
                self.delete(Kind::Pod, ns, &pod_name).await;
            }
        }
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count();
        let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": generation(&rs)});
        for field in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::ReplicaSet, ns, name, status).await;
    }

    async fn sync_statefulset(&mut self, ns: &str, name: &str) {
        let Some(sts) = self.get(Kind::StatefulSet, ns, name).cloned() else { return };
        if deleting(&sts) {
            return;
        }
        let desired = replicas(&sts).max(0) as usize;
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let pods = self.live_pods_of(ns, &sts);
        for i in 0..desired {
            let pod_name = format!("{name}-{i}");
            if !pods.iter().any(|(n, _)| *n == pod_name) {
                let extra: BTreeMap<String, String> =
                    [("statefulset.kubernetes.io/pod-name".to_owned(), pod_name.clone())]
                        .into_iter()
                        .collect();
                let mut pod = self.pod_template(
                    &template,
                    &pod_name,
                    ns,
                    owner_ref(&sts, "StatefulSet", "apps/v1"),
                    &extra,
                );
                pod["spec"]["hostname"] = json!(pod_name);
                self.create(Kind::Pod, ns, pod).await;
            }
        }
        for (pod_name, _) in &pods {
            let index = pod_name.rsplit('-').next().and_then(|i| i.parse::<usize>().ok());
            if index.is_none_or(|i| i >= desired) {
                self.delete(Kind::Pod, ns, pod_name).await;
            }
        }
        let current = pods.len().min(desired);
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count().min(desired);
        let mut status = json!({"replicas": current, "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": current,
            "availableReplicas": ready, "observedGeneration": generation(&sts)});
        if ready == 0 {
            status.as_object_mut().map(|m| m.remove("readyReplicas"));
        }
        self.set_status(Kind::StatefulSet, ns, name, status).await;
    }

    async fn sync_daemonset(&mut self, ns: &str, name: &str) {
        let Some(ds) = self.get(Kind::DaemonSet, ns, name).cloned() else { return };
        if deleting(&ds) {
            return;
        }
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let probe = json!({"spec": template.get("spec").cloned().unwrap_or(json!({}))});
        let eligible: Vec<String> = self
            .all(Kind::Node)
            .filter(|(_, n)| node_selects(&probe, n))
            .map(|((_, n), _)| n.clone())
            .collect();
        let pods = self.live_pods_of(ns, &ds);
        for node in &eligible {
            if !pods.iter().any(|(_, p)| {
                p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node.as_str())
            }) {
                let pod_name = format!("{name}-{}", &short_hash(&format!("{name}/{node}"))[..5]);
                let mut pod = self.pod_template(
                    &template,
                    &pod_name,
                    ns,
                    owner_ref(&ds, "DaemonSet", "apps/v1"),
                    &BTreeMap::new(),
                );
                pod["spec"]["nodeName"] = json!(node);
                self.create(Kind::Pod, ns, pod).await;
            }
        }
        for (pod_name, p) in &pods {
            let on = p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
            if !eligible.iter().any(|n| n == on) {
                self.delete(Kind::Pod, ns, pod_name).await;
            }
        }
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count();
        let status = json!({"desiredNumberScheduled": eligible.len(), "currentNumberScheduled": pods.len().min(eligible.len()),
            "numberReady": ready, "updatedNumberScheduled": pods.len().min(eligible.len()), "numberAvailable": ready,
            "numberMisscheduled": 0, "observedGeneration": generation(&ds)});
        self.set_status(Kind::DaemonSet, ns, name, status).await;
    }

    async fn sync_job(&mut self, ns: &str, name: &str) {
        let Some(job) = self.get(Kind::Job, ns, name).cloned() else { return };
        if deleting(&job) {
            return;
        }
        let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
        let parallelism = job.pointer("/spec/parallelism").and_then(Value::as_i64).unwrap_or(1);
        let pods = self.live_pods_of(ns, &job);
        let succeeded = pods
            .iter()
            .filter(|(_, p)| p.pointer("/status/phase") == Some(&json!("Succeeded")))
            .count() as i64;
        let failed = pods
            .iter()
            .filter(|(_, p)| p.pointer("/status/phase") == Some(&json!("Failed")))
            .count() as i64;
        let active = pods.iter().filter(|(_, p)| !terminated(p)).count() as i64;
        let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let want_active =
            if suspended { 0 } else { parallelism.min(completions - succeeded).max(0) };
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let controller_uid = uid(&job);
        for _ in active..want_active {
            let pod_name =
                format!("{name}-{}", &short_hash(&uuid::Uuid::new_v4().to_string())[..5]);
            let extra: BTreeMap<String, String> = [
                ("batch.kubernetes.io/controller-uid".to_owned(), controller_uid.clone()),
                ("batch.kubernetes.io/job-name".to_owned(), name.to_owned()),
                ("job-name".to_owned(), name.to_owned()),
            ]
            .into_iter()
            .collect();
            let pod = self.pod_template(
                &template,
                &pod_name,
                ns,
                owner_ref(&job, "Job", "batch/v1"),
                &extra,
            );
            self.create(Kind::Pod, ns, pod).await;
        }
        let start =
            job.pointer("/status/startTime").cloned().unwrap_or_else(|| json!(now_rfc3339()));
        let mut status =
            json!({"startTime": start, "active": active, "succeeded": succeeded, "failed": failed});
        if succeeded >= completions {
            let done = job
                .pointer("/status/completionTime")
                .cloned()
                .unwrap_or_else(|| json!(now_rfc3339()));
            status["completionTime"] = done;
            status["active"] = json!(0);
            status["conditions"] = json!([
                condition("Complete", true, "", ""),
                condition("SuccessCriteriaMet", true, "", "")
            ]);
        } else if failed > job.pointer("/spec/backoffLimit").and_then(Value::as_i64).unwrap_or(6) {
            status["conditions"] = json!([condition(
                "Failed",
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            )]);
        }
        for field in ["active", "succeeded", "failed"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::Job, ns, name, status).await;
    }

    async fn sync_cronjob(&mut self, ns: &str, name: &str) {
        let Some(cj) = self.get(Kind::CronJob, ns, name).cloned() else { return };
        if deleting(&cj) || cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
            return;
        }
        // Runs at the minutes the (UTC) schedule names; a missed minute is not caught up.
        let text = cj.pointer("/spec/schedule").and_then(Value::as_str).unwrap_or_default();
        let Ok(schedule) = crate::cron::Schedule::parse(text) else {
            tracing::debug!(cronjob = name, schedule = text, "unparsable schedule");
            return;
        };
        let now = apiserver::api::now_seconds();
        let slot = now - now.rem_euclid(60);
        let last = cj
            .pointer("/status/lastScheduleTime")
            .and_then(Value::as_str)
            .and_then(apimachinery::time::parse_rfc3339)
            .unwrap_or(0);
        if last >= slot || !schedule.matches(slot) {
            return;
        }
        let job_name = format!("{name}-{}", slot / 60);
        let template = cj.pointer("/spec/jobTemplate").cloned().unwrap_or(json!({}));
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
            "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        object::set_meta(&mut job, "name", json!(job_name));
        object::set_meta(&mut job, "ownerReferences", owner_ref(&cj, "CronJob", "batch/v1"));
        self.create(Kind::Job, ns, job).await;
        let time = apimachinery::time::format_rfc3339(slot);
        self.update(Kind::CronJob, ns, name, move |o| {
            o["status"]["lastScheduleTime"] = json!(time)
        })
        .await;
    }

    /// The disruption controller: how many of a budget's pods are healthy, how many must be,
    /// and so how many may be evicted now (pods being evicted count as gone).
    async fn sync_disruption_budget(&mut self, ns: &str, name: &str) {
        let Some(pdb) = self.get(Kind::PodDisruptionBudget, ns, name).cloned() else { return };
        if deleting(&pdb) {
            return;
        }
        let selector = pdb
            .pointer("/spec/selector")
            .filter(|s| !s.is_null())
            .and_then(|s| apimachinery::selector::LabelSelector::from_object(s).ok());
        let pods: Vec<&Value> = self
            .all(Kind::Pod)
            .filter(|((n, _), p)| {
                n == ns
                    && !terminated(p)
                    && !deleting(p)
                    && selector
                        .as_ref()
                        .is_some_and(|s| s.matches(&apimachinery::selector::labels_of(p)))
            })
            .map(|(_, p)| p)
            .collect();
        let disrupted: serde_json::Map<String, Value> = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(pod, _)| pods.iter().any(|p| object::name(p) == pod.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected = pods.len() as i64;
        let healthy = pods
            .iter()
            .filter(|p| pod_ready(p) && !disrupted.contains_key(object::name(p)))
            .count() as i64;
        let share = |v: &Value, round_up: bool| -> i64 {
            match v {
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => {
                    let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                    let scaled = expected * pct;
                    if round_up { (scaled + 99) / 100 } else { scaled / 100 }
                }
                _ => 0,
            }
        };
        let desired = if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
            (expected - share(max, true)).max(0)
        } else if let Some(min) = pdb.pointer("/spec/minAvailable") {
            share(min, true)
        } else {
            0
        };
        let allowed = (healthy - desired).max(0);
        let mut status = json!({
            "observedGeneration": generation(&pdb),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [{
                "type": "DisruptionAllowed",
                "status": if allowed > 0 { "True" } else { "False" },
                "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                "message": "",
                "observedGeneration": generation(&pdb),
                "lastTransitionTime": now_rfc3339(),
            }],
        });
        if !disrupted.is_empty() {
            status["disruptedPods"] = Value::Object(disrupted);
        }
        let unchanged = pdb.get("status").is_some_and(|old| {
            let mut a = old.clone();
            let mut b = status.clone();
            for v in [&mut a, &mut b] {
                if let Some(c) = v.pointer_mut("/conditions/0")
                    && let Some(m) = c.as_object_mut()
                {
                    m.remove("lastTransitionTime");
                }
            }
            a == b
        });
        if !unchanged {
            self.set_status(Kind::PodDisruptionBudget, ns, name, status).await;
        }
    }

    async fn sync_service(&mut self, ns: &str, name: &str) {
        let Some(svc) = self.get(Kind::Service, ns, name).cloned() else { return };
        if deleting(&svc) {
            return;
        }
        if svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
            && svc.pointer("/status/loadBalancer/ingress").is_none()
        {
            let n = short_hash(&uid(&svc))
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
            let ip = format!("172.18.{}.{}", (n >> 8) % 250, n % 250 + 1);
            self.update(Kind::Service, ns, name, move |o| {
                o["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}})
            })
            .await;
        }
        // EndpointSlice with the ready pods the selector picks.
        let Some(selector) = svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
            .cloned()
        else {
            return;
        };
        let endpoints: Vec<Value> = self
            .all(Kind::Pod)
            .filter(|((n, _), p)| {
                let labels = apimachinery::selector::labels_of(p);
                n == ns && !deleting(p) && selector.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
            })
            .filter_map(|(_, p)| {
                let ip = p.pointer("/status/podIP")?.as_str()?;
                Some(json!({"addresses": [ip], "conditions": {"ready": pod_ready(p)},
                    "nodeName": p.pointer("/spec/nodeName"), "targetRef": {"kind": "Pod", "name": object::name(p), "namespace": ns, "uid": uid(p)}}))
            })
            .collect();
        let ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p.get("targetPort").filter(|t| t.is_number()).or(p.get("port")).cloned(), "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})).collect())
            .unwrap_or_default();
        let Some(slice_def) = self.api.registry().get("discovery.k8s.io", "v1", "endpointslices")
        else {
            return;
        };
        let desired = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "ownerReferences": owner_ref(&svc, "Service", "v1")},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
        match self.api.read(&slice_def, Some(ns), name).await {
            Ok(current) => {
                if current.get("endpoints") != desired.get("endpoints")
                    || current.get("ports") != desired.get("ports")
                {
                    let _ = self
                        .api
                        .guaranteed_update(&slice_def, Some(ns), name, false, &mut |cur| {
                            let Some(cur) = cur else { return Ok(Decision::Unchanged) };
                            let mut new = cur.clone();
                            new["endpoints"] = desired["endpoints"].clone();
                            new["ports"] = desired["ports"].clone();
                            Ok(Decision::Update(new))
                        })
                        .await;
                }
            }
            Err(_) => {
                let _ = self
                    .api
                    .create_object(&slice_def, Some(ns), desired, "karmada-member-simulator")
                    .await;
            }
        }
    }

    /// The scheduler: binds pending pods to nodes that fit.
    async fn schedule(&mut self) {
        let queue = std::mem::take(&mut self.unscheduled);
        let pending: Vec<(Key, Value)> = queue
            .into_iter()
            .filter_map(|(ns, name)| {
                let p = self.get(Kind::Pod, &ns, &name)?;
                (p.pointer("/spec/nodeName").is_none() && !deleting(p) && !terminated(p))
                    .then(|| ((ns, name), p.clone()))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        // Free capacity per ready node.
        let mut free: BTreeMap<String, (Resources, Value)> = BTreeMap::new();
        for ((_, name), node) in self.all(Kind::Node) {
            if node_ready(node) {
                free.insert(
                    name.clone(),
                    (quantity::parse_list(node.pointer("/status/allocatable")), node.clone()),
                );
            }
        }
        for (_, pod) in self.all(Kind::Pod) {
            if terminated(pod) {
                continue;
            }
            if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str)
                && let Some((res, _)) = free.get_mut(node)
            {
                for (k, v) in pod_requests(pod) {
                    *res.entry(k).or_default() -= v;
                }
            }
        }
        for ((ns, name), pod) in pending {
            let requests = pod_requests(&pod);
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            let mut best: Option<(String, (i128, i128))> = None;
            for (node_name, (res, node)) in &free {
                if !node_selects(&pod, node) {
                    *reasons.entry("node(s) didn't match Pod's node affinity/selector or had untolerated taint".into()).or_default() += 1;
                    continue;
                }
                let short: Vec<&String> = requests
                    .iter()
                    .filter(|(k, v)| res.get(*k).copied().unwrap_or(0) < **v && **v > 0)
                    .map(|(k, _)| k)
                    .collect();
                if let Some(first) = short.first() {
                    let reason = if first.as_str() == "pods" {
                        "Too many pods".to_owned()
                    } else {
                        format!("Insufficient {first}")
                    };
                    *reasons.entry(reason).or_default() += 1;
                    continue;
                }
                // Spread: most free pod slots, then most free CPU.
                let score =
                    (res.get("pods").copied().unwrap_or(0), res.get("cpu").copied().unwrap_or(0));
                if best.as_ref().is_none_or(|(_, s)| score > *s) {
                    best = Some((node_name.clone(), score));
                }
            }
            match best {
                Some((node, _)) => {
                    if let Some((res, _)) = free.get_mut(&node) {
                        for (k, v) in &requests {
                            *res.entry(k.clone()).or_default() -= v;
                        }
                    }
                    let node_for = node.clone();
                    self.update(Kind::Pod, &ns, &name, move |p| {
                        p["spec"]["nodeName"] = json!(node_for);
                        p["status"]["phase"] = json!("Pending");
                        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]);
                    })
                    .await;
                    self.bound_at.insert((ns, name), Instant::now());
                }
                None => {
                    let total = free.len();
                    let detail: Vec<String> =
                        reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                    let message = format!("0/{total} nodes are available: {}.", detail.join(", "));
                    self.update(Kind::Pod, &ns, &name, move |p| {
                        p["status"]["phase"] = json!("Pending");
                        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message.clone()}]);
                    })
                    .await;
                }
            }
        }
    }

    /// The kubelet: starts bound pods after the delay; fails the pods of failing workloads;
    /// finishes Job pods.
    async fn kubelet(&mut self) {
        let now = Instant::now();
        let queue = std::mem::take(&mut self.kubelet_queue);
        let pods: Vec<(Key, Value)> = queue
            .into_iter()
            .filter_map(|(ns, name)| {
                let p = self.get(Kind::Pod, &ns, &name)?;
                (p.pointer("/spec/nodeName").is_some() && !deleting(p) && !terminated(p))
                    .then(|| ((ns, name), p.clone()))
            })
            .collect();
        for ((ns, name), pod) in pods {
            let key = (ns.clone(), name.clone());
            let since = *self.bound_at.entry(key.clone()).or_insert(now);
            let running = pod.pointer("/status/phase") == Some(&json!("Running"));
            let workload = self.workload_of(&ns, &pod).unwrap_or_default();
            let failing = self.failing(&ns, &workload);
            let is_job = matches!(owner(&pod), Some((Kind::Job, _)));
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let node_ok = self.get(Kind::Node, "", &node).is_some_and(node_ready);
            if now.duration_since(since) < self.config.start_delay {
                self.kubelet_queue.insert(key);
                continue;
            }
            // Its image cannot be pulled: the pod waits (as a real kubelet's back-off does)
            // until the registry has it; a pod already running keeps running.
            let missing = self.missing_images(&pod);
            if !running && !missing.is_empty() {
                if pull_failure_reported(&pod, &missing) {
                    continue;
                }
                let containers = pull_failed_statuses(&pod, &missing);
                let ip = self.pod_ip(&pod);
                self.update(Kind::Pod, &ns, &name, move |p| {
                    p["status"]["phase"] = json!("Pending");
                    p["status"]["podIP"] = ip.clone();
                    p["status"]["podIPs"] = json!([{"ip": ip.clone()}]);
                    p["status"]["hostIP"] = json!(HOST_IP);
                    if p["status"].get("startTime").is_none() {
                        p["status"]["startTime"] = json!(now_rfc3339());
                    }
                    p["status"]["conditions"] = json!([
                        {"type": "PodScheduled", "status": "True"},
                        {"type": "Initialized", "status": "True"},
                        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                    ]);
                    p["status"]["containerStatuses"] = containers.clone();
                })
                .await;
                continue;
            }
            if is_job
                && running
                && !failing
                && now.duration_since(since) < self.config.start_delay + self.config.job_duration
            {
                self.kubelet_queue.insert(key.clone());
            }
            if is_job
                && running
                && !failing
                && now.duration_since(since) >= self.config.start_delay + self.config.job_duration
            {
                let containers = container_statuses(&pod, false, true);
                self.update(Kind::Pod, &ns, &name, move |p| {
                    p["status"]["phase"] = json!("Succeeded");
                    p["status"]["conditions"] =
                        json!([{"type": "Ready", "status": "False", "reason": "PodCompleted"}]);
                    p["status"]["containerStatuses"] = containers.clone();
                })
                .await;
                continue;
            }
            let want_ready = !failing && node_ok;
            if running && pod_ready(&pod) == want_ready && !failing {
                continue;
            }
            let restarts = if failing { 1 } else { 0 };
            let containers = container_statuses(&pod, want_ready, false);
            let ip = self.pod_ip(&pod);
            let host_ip = json!(HOST_IP);
            self.update(Kind::Pod, &ns, &name, move |p| {
                let previous_restarts = p
                    .pointer("/status/containerStatuses/0/restartCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let mut statuses = containers.clone();
                if restarts > 0 {
                    for s in statuses.as_array_mut().into_iter().flatten() {
                        s["restartCount"] = json!(previous_restarts.max(1));
                    }
                }
                p["status"]["phase"] = json!("Running");
                p["status"]["podIP"] = ip.clone();
                p["status"]["podIPs"] = json!([{"ip": ip.clone()}]);
                p["status"]["hostIP"] = host_ip.clone();
                if p["status"].get("startTime").is_none() {
                    p["status"]["startTime"] = json!(now_rfc3339());
                }
                let ready = if want_ready { "True" } else { "False" };
                p["status"]["conditions"] = json!([
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "ContainersReady", "status": ready},
                    {"type": "Ready", "status": ready},
                ]);
                p["status"]["containerStatuses"] = statuses;
            })
            .await;
        }
    }

    async fn reconcile(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for (kind, ns, name) in dirty {
            match kind {
                Kind::Deployment => self.sync_deployment(&ns, &name).await,
                Kind::ReplicaSet => self.sync_replicaset(&ns, &name).await,
                Kind::StatefulSet => self.sync_statefulset(&ns, &name).await,
                Kind::DaemonSet => self.sync_daemonset(&ns, &name).await,
                Kind::Job => self.sync_job(&ns, &name).await,
                Kind::CronJob => self.sync_cronjob(&ns, &name).await,
                Kind::Service => self.sync_service(&ns, &name).await,
                Kind::PodDisruptionBudget => self.sync_disruption_budget(&ns, &name).await,
                Kind::Node | Kind::Pod => {}
            }
        }
        self.schedule().await;
        self.kubelet().await;
    }

    fn requeue_unschedulable(&mut self) {
        let waiting: Vec<Key> = self
            .all(Kind::Pod)
            .filter(|(_, p)| p.pointer("/spec/nodeName").is_none())
            .map(|(k, _)| k.clone())
            .collect();
        self.unscheduled.extend(waiting);
    }

    /// Whether anything is waiting for a pass.
    fn busy(&self) -> bool {
        !self.dirty.is_empty() || !self.unscheduled.is_empty() || !self.kubelet_queue.is_empty()
    }

    /// Applies one store event to the index.
    fn apply(&mut self, event: Event) {
        match event {
            Event::Put { kv, .. } => {
                if let Some((kind, ns, name)) = kind_of_key(&kv.key) {
                    self.observe(
                        kind,
                        ns,
                        name,
                        Some(apiserver::codec::decode(&kv.value, kv.mod_revision.0)),
                    );
                }
            }
            Event::Delete { prev, .. } => {
                if let Some((kind, ns, name)) = kind_of_key(&prev.key) {
                    self.observe(kind, ns, name, None);
                }
            }
        }
    }

    /// Records a change and marks what it affects.
    fn observe(&mut self, kind: Kind, ns: String, name: String, object: Option<Value>) {
        let key = (ns.clone(), name.clone());
        let previous = match &object {
            Some(o) => self.objects.entry(kind).or_default().insert(key.clone(), o.clone()),
            None => self.objects.entry(kind).or_default().remove(&key),
        };
        let subject = object.as_ref().or(previous.as_ref());
        if matches!(kind, Kind::Pod | Kind::ReplicaSet) {
            let owners = |o: &Value| -> Vec<String> {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .map(|refs| {
                        refs.iter()
                            .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for owner_uid in previous.as_ref().map(owners).unwrap_or_default() {
                let index = (kind, owner_uid);
                if let Some(set) = self.children_by_owner.get_mut(&index) {
                    set.remove(&key);
                    if set.is_empty() {
                        self.children_by_owner.remove(&index);
                    }
                }
            }
            for owner_uid in object.as_ref().map(owners).unwrap_or_default() {
                self.children_by_owner.entry((kind, owner_uid)).or_default().insert(key.clone());
            }
        }
        match kind {
            Kind::Pod => {
                match &object {
                    None => {
                        self.bound_at.remove(&key);
                        if previous.as_ref().is_some_and(|p| p.pointer("/spec/nodeName").is_some())
                        {
                            self.requeue_unschedulable();
                        }
                    }
                    Some(pod) if pod.pointer("/spec/nodeName").is_none() => {
                        // A Pending pod that was already found unschedulable waits for a change in capacity.
                        let unschedulable = pod.pointer("/status/conditions/0/reason")
                            == Some(&json!("Unschedulable"));
                        if !unschedulable {
                            self.unscheduled.insert(key.clone());
                        }
                    }
                    Some(_) => {
                        self.kubelet_queue.insert(key.clone());
                    }
                }
                if let Some((owner_kind, owner_name)) = subject.and_then(owner) {
                    self.dirty.insert((owner_kind, ns.clone(), owner_name));
                }
                for watcher in [Kind::Service, Kind::PodDisruptionBudget] {
                    let names: Vec<String> = self
                        .all(watcher)
                        .filter(|((n, _), _)| *n == ns)
                        .map(|((_, s), _)| s.clone())
                        .collect();
                    for s in names {
                        self.dirty.insert((watcher, ns.clone(), s));
                    }
                }
            }
            Kind::ReplicaSet | Kind::Job => {
                self.dirty.insert((kind, ns.clone(), name.clone()));
                if let Some((owner_kind, owner_name)) = subject.and_then(owner) {
                    self.dirty.insert((owner_kind, ns, owner_name));
                }
            }
            Kind::Node => {
                self.requeue_unschedulable();
                let bound: Vec<Key> = self
                    .all(Kind::Pod)
                    .filter(|(_, p)| {
                        p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(name.as_str())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                self.kubelet_queue.extend(bound);
                let daemonsets: Vec<Key> =
                    self.all(Kind::DaemonSet).map(|(k, _)| k.clone()).collect();
                for (n, d) in daemonsets {
                    self.dirty.insert((Kind::DaemonSet, n, d));
                }
            }
            _ => {
                self.dirty.insert((kind, ns, name));
            }
        }
    }
}

fn container_statuses(pod: &Value, ready: bool, completed: bool) -> Value {
    statuses_of(pod, ready, |_| {
        if completed {
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now_rfc3339()}})
        } else if ready {
            json!({"running": {"startedAt": now_rfc3339()}})
        } else {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (simulated)"}})
        }
    })
}

/// A status for each of the pod's containers, in `state_of(container)`.
fn statuses_of(pod: &Value, ready: bool, state_of: impl Fn(&Value) -> Value) -> Value {
    let containers =
        pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    Value::Array(
        containers
            .iter()
            .map(|c| {
                json!({"name": c.get("name").cloned().unwrap_or(json!("")), "image": c.get("image").cloned().unwrap_or(json!("")),
                    "imageID": "", "ready": ready, "started": ready, "restartCount": 0, "state": state_of(c)})
            })
            .collect(),
    )
}

/// The node address every simulated pod reports.
const HOST_IP: &str = "172.17.0.2";

/// Container statuses of a pod whose `missing` images cannot be pulled: those containers back
/// off pulling, the others wait for them.
fn pull_failed_statuses(pod: &Value, missing: &BTreeSet<String>) -> Value {
    statuses_of(pod, false, |c| {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        if missing.contains(image) {
            json!({"waiting": {"reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}\"")}})
        } else {
            json!({"waiting": {"reason": "ContainerCreating"}})
        }
    })
}

/// Whether the pod already reports exactly these images failing to pull.
fn pull_failure_reported(pod: &Value, missing: &BTreeSet<String>) -> bool {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let backing_off: BTreeSet<String> = statuses
        .iter()
        .filter(|s| s.pointer("/state/waiting/reason") == Some(&json!("ImagePullBackOff")))
        .filter_map(|s| s.get("image").and_then(Value::as_str).map(str::to_owned))
        .collect();
    // An init container's image is not reported per container: only the phase tells.
    let expected: BTreeSet<String> =
        missing.iter().filter(|m| containers_use(pod, "/spec/containers", m)).cloned().collect();
    pod.pointer("/status/phase") == Some(&json!("Pending"))
        && !statuses.is_empty()
        && backing_off == expected
}

/// Whether a container at `path` of the pod uses `image`.
fn containers_use(pod: &Value, path: &str, image: &str) -> bool {
    pod.pointer(path)
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c.get("image").and_then(Value::as_str) == Some(image)))
}

pub(crate) fn version_of(api: &Api) -> String {
    api.git_version().to_owned()
}

/// Runs the simulation for one member until the task is aborted.
pub async fn run(api: Arc<Api>, config: SimConfig, faults: Arc<RwLock<Faults>>) {
    let registry = Arc::clone(api.registry());
    let mut defs = HashMap::new();
    for (kind, group, plural) in KINDS {
        if let Some(def) = registry.get(group, "v1", plural) {
            defs.insert(*kind, def);
        }
    }
    let mut sim = Sim {
        api: Arc::clone(&api),
        config,
        faults,
        defs,
        objects: HashMap::new(),
        dirty: BTreeSet::new(),
        bound_at: HashMap::new(),
        user: User {
            name: "system:karmada-member-simulator".into(),
            groups: vec!["system:masters".into()],
        },
        pod_ips: 0,
        unscheduled: BTreeSet::new(),
        kubelet_queue: BTreeSet::new(),
        children_by_owner: HashMap::new(),
    };
    let store = Arc::clone(api.store());
    let Ok(page) = store.list(b"/registry/", ListOptions::default()).await else { return };
    for kv in page.items {
        if let Some((kind, ns, name)) = kind_of_key(&kv.key) {
            let object = apiserver::codec::decode(&kv.value, kv.mod_revision.0);
            sim.observe(kind, ns, name, Some(object));
        }
    }
    let mut after = page.revision;
    sim.ensure_nodes().await;
    let mut last_faults = sim.faults.read().clone();
    let mut next_pass = tokio::time::Instant::now();
    loop {
        let mut stream = match store.watch(b"/registry/", after).await {
            Ok(s) => s,
            Err(_) => {
                // Fell behind compaction: rebuild the index from a fresh list.
                let Ok(page) = store.list(b"/registry/", ListOptions::default()).await else {
                    return;
                };
                sim.objects.clear();
                for kv in page.items {
                    if let Some((kind, ns, name)) = kind_of_key(&kv.key) {
                        sim.observe(
                            kind,
                            ns,
                            name,
                            Some(apiserver::codec::decode(&kv.value, kv.mod_revision.0)),
                        );
                    }
                }
                after = page.revision;
                continue;
            }
        };
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    None => return,
                    Some(Err(_)) => break,
                    Some(Ok(event)) => {
                        after = event.revision();
                        next_pass = next_pass.min(tokio::time::Instant::now() + Duration::from_millis(20));
                        sim.apply(event);
                    }
                },
                () = tokio::time::sleep_until(next_pass) => {
                    // Catch the index up with every committed write first: acting on a stale
                    // index would, e.g., create pods that already exist.
                    let target = store.current_revision().await.unwrap_or(after);
                    let mut broken = false;
                    while after < target {
                        match stream.next().await {
                            Some(Ok(event)) => {
                                after = event.revision();
                                sim.apply(event);
                            }
                            _ => {
                                broken = true;
                                break;
                            }
                        }
                    }
                    if broken {
                        break;
                    }
                    let cronjobs: Vec<Key> = sim.all(Kind::CronJob).map(|(k, _)| k.clone()).collect();
                    for (ns, name) in cronjobs {
                        sim.dirty.insert((Kind::CronJob, ns, name));
                    }
                    let faults = sim.faults.read().clone();
                    if faults != last_faults {
                        // Failing workloads start or stop: every bound pod gets another look.
                        let bound: Vec<Key> = sim.all(Kind::Pod).map(|(k, _)| k.clone()).collect();
                        sim.kubelet_queue.extend(bound);
                        last_faults = faults;
                    }
                    sim.sync_node_faults().await;
                    sim.ensure_nodes().await;
                    sim.reconcile().await;
                    // Busy: another pass soon. Idle: wake for events, or once a second.
                    let pause = if sim.busy() { Duration::from_millis(50) } else { Duration::from_secs(1) };
                    next_pass = tokio::time::Instant::now() + pause;
                }
            }
        }
    }
}
