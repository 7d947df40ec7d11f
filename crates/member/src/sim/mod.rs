//! The simulation: nodes, a scheduler, a kubelet and workload controllers, over an in-memory
//! index fed by one store watch. Each pass computes what should change from the index and
//! writes it through the API server's storage core. This module holds the index, the writes
//! and the loop; each simulated controller is a module of its own (`deployment`, `kubelet`,
//! `scheduler`, ...), adding its part to [`Sim`].

mod daemonset;
mod deployment;
mod disruption;
mod hpa;
mod job;
mod kubelet;
mod nodes;
mod pods;
mod quota;
mod replicaset;
mod scheduler;
mod service;
mod statefulset;
mod system;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::object::{self, meta_str};
use apimachinery::quantity::{self, Resources};
use apiserver::Storage;
use apiserver::api::{User, now_rfc3339};
use apiserver::registry::ResourceDef;
use apiserver::storage::{Decision, DeleteOptions};
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
    /// Run what a fresh cluster runs (CoreDNS, kube-proxy, the control plane's static pods,
    /// the `kubernetes` Service: see `system.rs`); off: a bare cluster, all capacity free.
    pub system_components: bool,
    /// Pods get IPs from `10.<pod_subnet>.0.0/16`, so members' pods do not overlap (as multi-
    /// cluster services need). `None`: `start_many` gives each member its own, 10.10 for the
    /// first, 10.11 for the second... (as upstream's kind clusters have them).
    pub pod_subnet: Option<u8>,
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
            system_components: true,
            pod_subnet: None,
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
    HorizontalPodAutoscaler,
    ResourceQuota,
}

/// (kind, group, version, plural) of what the simulation watches.
const KINDS: &[(Kind, &str, &str, &str)] = &[
    (Kind::Node, "", "v1", "nodes"),
    (Kind::Pod, "", "v1", "pods"),
    (Kind::Deployment, "apps", "v1", "deployments"),
    (Kind::ReplicaSet, "apps", "v1", "replicasets"),
    (Kind::StatefulSet, "apps", "v1", "statefulsets"),
    (Kind::DaemonSet, "apps", "v1", "daemonsets"),
    (Kind::Job, "batch", "v1", "jobs"),
    (Kind::CronJob, "batch", "v1", "cronjobs"),
    (Kind::Service, "", "v1", "services"),
    (Kind::PodDisruptionBudget, "policy", "v1", "poddisruptionbudgets"),
    (Kind::HorizontalPodAutoscaler, "autoscaling", "v2", "horizontalpodautoscalers"),
    (Kind::ResourceQuota, "", "v1", "resourcequotas"),
];

fn kind_of_key(key: &[u8]) -> Option<(Kind, String, String)> {
    let key = std::str::from_utf8(key).ok()?;
    for (kind, group, _, plural) in KINDS {
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
    api: Arc<Storage>,
    /// The member's name (its nodes are named after it, as kind's).
    cluster: String,
    /// The Kubernetes version the member's API server reports (its nodes' kubelets too).
    version: String,
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
    /// Each HorizontalPodAutoscaler's past recommendations and scale events, and when it
    /// was last evaluated.
    autoscalers: HashMap<Key, (apimachinery::hpa::History, Instant)>,
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

    // ---- controllers ----

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
                Kind::HorizontalPodAutoscaler => self.sync_hpa(&ns, &name).await,
                Kind::ResourceQuota => self.sync_resource_quota(&ns, &name).await,
                Kind::Node | Kind::Pod => {}
            }
        }
        self.schedule().await;
        self.kubelet().await;
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
        // What is counted against a namespace's quotas changed: they are recounted.
        if kind != Kind::ResourceQuota && !ns.is_empty() {
            let quotas: Vec<String> = self
                .all(Kind::ResourceQuota)
                .filter(|((n, _), _)| *n == ns)
                .map(|((_, q), _)| q.clone())
                .collect();
            for q in quotas {
                self.dirty.insert((Kind::ResourceQuota, ns.clone(), q));
            }
        }
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
            Kind::HorizontalPodAutoscaler => {
                // Its own status writes do not call for another evaluation; its sync period
                // does (`autoscalers_due`).
                let spec = |o: Option<&Value>| o.map(|o| o["spec"].clone());
                if spec(object.as_ref()) != spec(previous.as_ref()) {
                    self.dirty.insert((kind, ns, name));
                }
            }
            _ => {
                self.dirty.insert((kind, ns, name));
            }
        }
    }
}

/// Runs the simulation for one member until the task is aborted.
pub async fn run(
    api: Arc<Storage>,
    cluster: String,
    version: String,
    config: SimConfig,
    faults: Arc<RwLock<Faults>>,
) {
    let registry = Arc::clone(api.registry());
    let mut defs = HashMap::new();
    for (kind, group, version, plural) in KINDS {
        if let Some(def) = registry.get(group, version, plural) {
            defs.insert(*kind, def);
        }
    }
    let mut sim = Sim {
        api: Arc::clone(&api),
        cluster,
        version,
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
        autoscalers: HashMap::new(),
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
    if sim.config.system_components {
        sim.ensure_system().await;
    }
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
                    sim.autoscalers_due();
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
