//! The scheduler's accurate estimator (`karmada scheduler --enable-scheduler-estimator`,
//! upstream's per-member karmada-scheduler-estimator, here in process): for each member the
//! scheduler places on, a watch of its Nodes, Pods and ResourceQuotas (with the member's own
//! credentials, as upstream's estimator has them) kept as the facts `scheduler::accurate`
//! estimates from — free resources per node, what the quotas of each namespace leave — and the
//! workloads the scheduler decided for a member that are not Healthy there yet (upstream's
//! assumptions: deducted first, released when the member reports the workload Healthy, after
//! [`ASSUMPTION_TTL`] at the latest, or when the binding leaves the member).
//!
//! A member whose facts are not listed yet has no accurate estimate (the summary's alone
//! counts, as upstream ignores an estimator that does not answer).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use karmada_api::cluster::{Cluster, Taint, TaintEffect};
use karmada_api::work::{ResourceBindingSpec, ResourceBindingStatus, TargetCluster};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use scheduler::accurate::{self, Assumed, Component};
use serde_json::Value;

/// How long a decision is assumed at most (upstream's default).
pub const ASSUMPTION_TTL: Duration = Duration::from_secs(300);

/// The estimator: member facts and assumptions, shared by the scheduler's loops.
pub struct Estimator {
    control: kube::Client,
    /// Whether the namespace's ResourceQuotas bound estimates (the ResourceQuotaEstimate gate).
    quotas: bool,
    members: Mutex<HashMap<String, Watched>>,
    pub assumptions: Assumptions,
    /// Bumped on every change of a member's facts.
    changes: Arc<AtomicU64>,
    /// Clusters whose client could not be built, and when (tried again after [`RETRY`]).
    failed: Mutex<HashMap<String, Instant>>,
}

/// How soon a cluster whose client could not be built is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// Decisions not yet seen Healthy in their members: binding (`namespace/name`) → cluster →
/// what was decided there.
#[derive(Default)]
pub struct Assumptions(Mutex<HashMap<String, HashMap<String, Assumption>>>);

struct Watched {
    /// The cluster's endpoint and credentials reference the watch was started for.
    version: String,
    facts: Arc<Mutex<Facts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Assumption {
    workload: Assumed,
    at: Instant,
    /// Whether the member reported the workload Healthy when it was decided: the assumption
    /// ends when it does so afresh.
    was_healthy: bool,
}

/// One member's facts, kept from its watches.
#[derive(Default)]
struct Facts {
    /// Which of nodes, pods, quotas have been listed (bits 0, 1, 2).
    listed: u8,
    nodes: HashMap<String, NodeFact>,
    /// Pods bound to a node and not finished: `namespace/name` → (node, requests).
    pods: HashMap<String, (String, BTreeMap<String, i128>)>,
    /// Per node, the requests of its pods (`pods` ×1000 each).
    requested: HashMap<String, BTreeMap<String, i128>>,
    /// `namespace/name` → (namespace, quota).
    quotas: HashMap<String, (String, accurate::Quota)>,
    /// Pods the member's scheduler could not place: `namespace/name` → (labels, since when).
    unschedulable: HashMap<String, (BTreeMap<String, String>, String)>,
}

struct NodeFact {
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    schedulable: bool,
    allocatable: BTreeMap<String, i128>,
}

const NODES: u8 = 1;
const PODS: u8 = 2;
const QUOTAS: u8 = 4;

impl Facts {
    fn member(&self) -> accurate::Member {
        let nodes = self
            .nodes
            .iter()
            .map(|(name, n)| {
                let mut free = n.allocatable.clone();
                if let Some(used) = self.requested.get(name) {
                    for (k, v) in used {
                        *free.entry(k.clone()).or_default() -= v;
                    }
                }
                accurate::Node {
                    name: name.clone(),
                    labels: n.labels.clone(),
                    taints: n.taints.clone(),
                    schedulable: n.schedulable,
                    free,
                }
            })
            .collect();
        let mut quotas: BTreeMap<String, Vec<accurate::Quota>> = BTreeMap::new();
        for (namespace, quota) in self.quotas.values() {
            quotas.entry(namespace.clone()).or_default().push(quota.clone());
        }
        accurate::Member { nodes, quotas }
    }

    fn add_pod(&mut self, key: String, node: String, requests: BTreeMap<String, i128>) {
        self.remove_pod(&key);
        let used = self.requested.entry(node.clone()).or_default();
        for (k, v) in &requests {
            *used.entry(k.clone()).or_default() += v;
        }
        *used.entry("pods".into()).or_default() += 1000;
        self.pods.insert(key, (node, requests));
    }

    fn remove_pod(&mut self, key: &str) {
        if let Some((node, requests)) = self.pods.remove(key)
            && let Some(used) = self.requested.get_mut(&node)
        {
            for (k, v) in &requests {
                *used.entry(k.clone()).or_default() -= v;
            }
            *used.entry("pods".into()).or_default() -= 1000;
        }
    }
}

fn key_of(object: &Value) -> String {
    format!(
        "{}/{}",
        object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default(),
        object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    )
}

/// A node as the estimator sees it: Ready and not cordoned to be schedulable.
fn node_fact(node: &Value) -> NodeFact {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let cordoned = node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some(Taint {
                        key: t.get("key")?.as_str()?.to_owned(),
                        value: t
                            .get("value")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        effect: TaintEffect::from(t.get("effect")?.as_str()?),
                        time_added: None,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    NodeFact {
        labels: apimachinery::selector::labels_of(node),
        taints,
        schedulable: ready && !cordoned,
        allocatable: apimachinery::quantity::parse_list(node.pointer("/status/allocatable")),
    }
}

/// A pod that holds room on a node: bound and not finished.
fn pod_fact(pod: &Value) -> Option<(String, BTreeMap<String, i128>)> {
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        return None;
    }
    let requests = apimachinery::quantity::pod_requests(pod)
        .into_iter()
        .filter(|(k, _)| k != "pods")
        .collect();
    Some((node.to_owned(), requests))
}

/// Since when a pod has been unschedulable (`PodScheduled=False`, reason `Unschedulable`, not
/// bound, not finished).
fn unschedulable_since(pod: &Value) -> Option<String> {
    let bound =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
    if bound
        || matches!(phase, "Succeeded" | "Failed")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        return None;
    }
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| {
            c["type"] == "PodScheduled" && c["status"] == "False" && c["reason"] == "Unschedulable"
        })
        .map(|c| c.get("lastTransitionTime").and_then(Value::as_str).unwrap_or_default().to_owned())
}

fn quota_fact(quota: &Value) -> (String, accurate::Quota) {
    let list = |path: &str| apimachinery::quantity::parse_list(quota.pointer(path));
    let mut scopes: Vec<(String, String, Vec<String>)> = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .map(|es| {
            es.iter()
                .map(|e| {
                    let text =
                        |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                    let values = e
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|vs| vs.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    (text("scopeName"), text("operator"), values)
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(named) = quota.pointer("/spec/scopes").and_then(Value::as_array) {
        scopes.extend(
            named
                .iter()
                .filter_map(Value::as_str)
                .map(|s| (s.to_owned(), "Exists".to_owned(), Vec::new())),
        );
    }
    let namespace =
        quota.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name =
        quota.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    (
        namespace,
        accurate::Quota {
            name,
            scopes,
            free: accurate::quota_free(&list("/status/hard"), &list("/status/used")),
        },
    )
}

/// Keeps one kind of a member's facts from a watch, until the task is aborted.
async fn follow(
    member: kube::Client,
    resource: ApiResource,
    bit: u8,
    facts: Arc<Mutex<Facts>>,
    changes: Arc<AtomicU64>,
) {
    let api: Api<DynamicObject> = Api::all_with(member, &resource);
    let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let apply = |facts: &mut Facts, object: &Value| match bit {
        NODES => {
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            facts.nodes.insert(name.to_owned(), node_fact(object));
        }
        PODS => {
            let key = key_of(object);
            match pod_fact(object) {
                Some((node, requests)) => facts.add_pod(key.clone(), node, requests),
                None => facts.remove_pod(&key),
            }
            match unschedulable_since(object) {
                Some(since) => {
                    let labels = apimachinery::selector::labels_of(object);
                    facts.unschedulable.insert(key, (labels, since));
                }
                None => {
                    facts.unschedulable.remove(&key);
                }
            }
        }
        _ => {
            let (namespace, quota) = quota_fact(object);
            facts.quotas.insert(key_of(object), (namespace, quota));
        }
    };
    let delete = |facts: &mut Facts, object: &Value| match bit {
        NODES => {
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            facts.nodes.remove(name);
        }
        PODS => {
            facts.remove_pod(&key_of(object));
            facts.unschedulable.remove(&key_of(object));
        }
        _ => {
            facts.quotas.remove(&key_of(object));
        }
    };
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        changes.fetch_add(1, Ordering::AcqRel);
        let Ok(mut facts) = facts.lock() else { return };
        match event {
            watcher::Event::Init => {
                facts.listed &= !bit;
                match bit {
                    NODES => facts.nodes.clear(),
                    PODS => {
                        facts.pods.clear();
                        facts.requested.clear();
                        facts.unschedulable.clear();
                    }
                    _ => facts.quotas.clear(),
                }
            }
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                apply(&mut facts, &serde_json::to_value(&o).unwrap_or_default())
            }
            watcher::Event::Delete(o) => {
                delete(&mut facts, &serde_json::to_value(&o).unwrap_or_default())
            }
            watcher::Event::InitDone => facts.listed |= bit,
        }
    }
}

/// The namespace a workload's pods run in (its replica requirements', else its template's).
fn workload_namespace(spec: &ResourceBindingSpec) -> String {
    spec.replica_requirements
        .as_ref()
        .map(|r| r.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| spec.resource.namespace.clone())
}

/// `replicas` pods of what `requirements` (a replica's or a component's) ask.
fn component(
    replicas: i32,
    requests: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    claim: Option<&karmada_api::work::NodeClaim>,
    priority_class: Option<&str>,
) -> Component {
    Component {
        replicas: i64::from(replicas),
        requests: requests.map(crate::scheduling::milli_requests).unwrap_or_default(),
        claim: claim.cloned(),
        priority_class: priority_class.unwrap_or_default().to_owned(),
    }
}

/// The pod templates of a multi-template workload, `replicas` each as its spec says.
fn components(
    spec: &ResourceBindingSpec,
    replicas: impl Fn(&str) -> Option<i32>,
) -> Vec<Component> {
    spec.components
        .iter()
        .filter_map(|c| {
            let r = c.replica_requirements.as_ref();
            Some(component(
                replicas(&c.name)?,
                r.map(|r| &r.resource_request),
                r.and_then(|r| r.node_claim.as_ref()),
                r.map(|r| r.priority_class_name.as_str()),
            ))
        })
        .collect()
}

/// What a decision places on one cluster: its replicas, or its components' replicas there.
fn placed(spec: &ResourceBindingSpec, target: &TargetCluster) -> Vec<Component> {
    if !target.components.is_empty() {
        return components(spec, |name| {
            target.components.iter().find(|t| t.name == name).map(|t| t.replicas)
        });
    }
    let r = spec.replica_requirements.as_ref();
    vec![component(
        target.replicas,
        r.map(|r| &r.resource_request),
        r.and_then(|r| r.node_claim.as_ref()),
        r.map(|r| r.priority_class_name.as_str()),
    )]
}

/// The clusters where a binding's status says its workload is Healthy.
pub(crate) fn healthy(status: Option<&ResourceBindingStatus>) -> Vec<&str> {
    status
        .map(|s| {
            s.aggregated_status
                .iter()
                .filter(|i| i.health == "Healthy")
                .map(|i| i.cluster_name.as_str())
                .collect()
        })
        .unwrap_or_default()
}

impl Estimator {
    pub fn new(control: kube::Client, quotas: bool) -> Estimator {
        Estimator {
            control,
            quotas,
            members: Mutex::default(),
            assumptions: Assumptions::default(),
            changes: Arc::default(),
            failed: Mutex::default(),
        }
    }

    /// Grows whenever a member's facts change.
    pub fn generation(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Watches the members of `clusters` (starting new watches for new or re-credentialled
    /// clusters, stopping those of clusters gone).
    pub async fn follow_clusters(&self, clusters: &[Arc<Cluster>]) {
        let wanted: HashMap<String, (String, &Cluster)> = clusters
            .iter()
            .filter(|c| !c.spec.api_endpoint.is_empty() && c.spec.secret_ref.is_some())
            .map(|c| {
                let name = c.metadata.name.clone().unwrap_or_default();
                (name, (member_client::version(c), c.as_ref()))
            })
            .collect();
        let missing: Vec<(String, String, Cluster)> = {
            let Ok(mut members) = self.members.lock() else { return };
            members.retain(|name, w| wanted.get(name).is_some_and(|(v, _)| *v == w.version));
            let failed = self.failed.lock().map(|f| f.clone()).unwrap_or_default();
            wanted
                .iter()
                .filter(|(name, _)| !members.contains_key(*name))
                .filter(|(name, _)| failed.get(*name).is_none_or(|at| at.elapsed() >= RETRY))
                .map(|(name, (v, c))| (name.clone(), v.clone(), (*c).clone()))
                .collect()
        };
        for (name, version, cluster) in missing {
            let member = match member_client::for_cluster(
                &self.control,
                &cluster,
                Duration::from_secs(10),
                true,
            )
            .await
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::info!(cluster = %name, error = %e, "no accurate estimate for the cluster yet");
                    if let Ok(mut failed) = self.failed.lock() {
                        failed.insert(name, Instant::now());
                    }
                    continue;
                }
            };
            if let Ok(mut failed) = self.failed.lock() {
                failed.remove(&name);
            }
            tracing::info!(cluster = %name, "estimating from the member's nodes and quotas");
            let facts = Arc::new(Mutex::new(Facts::default()));
            let kinds = [
                (ApiResource::erase::<k8s_openapi::api::core::v1::Node>(&()), NODES),
                (ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()), PODS),
                (ApiResource::erase::<k8s_openapi::api::core::v1::ResourceQuota>(&()), QUOTAS),
            ];
            let watches: Vec<_> = kinds
                .into_iter()
                .map(|(resource, bit)| {
                    follow(
                        member.clone(),
                        resource,
                        bit,
                        Arc::clone(&facts),
                        Arc::clone(&self.changes),
                    )
                })
                .collect();
            let task = tokio::spawn(async move {
                futures::future::join_all(watches).await;
            });
            if let Ok(mut members) = self.members.lock() {
                members.insert(name, Watched { version, facts, task });
            }
        }
    }

    /// How many pods of `namespace` whose labels `selector` matches have been unschedulable in
    /// `cluster` for at least `threshold` (upstream's GetUnschedulableReplicas); `None` when the
    /// member's pods are not listed.
    pub fn unschedulable(
        &self,
        cluster: &str,
        namespace: &str,
        selector: &apimachinery::selector::LabelSelector,
        threshold: Duration,
    ) -> Option<i32> {
        let members = self.members.lock().ok()?;
        let facts = members.get(cluster)?.facts.lock().ok()?;
        if facts.listed & PODS == 0 {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let threshold = threshold.as_secs() as i64;
        let old_enough = |since: &str| {
            apimachinery::time::parse_rfc3339(since).is_some_and(|t| now - t >= threshold)
        };
        let count = facts
            .unschedulable
            .iter()
            .filter(|(key, (labels, since))| {
                key.split_once('/').is_some_and(|(ns, _)| ns == namespace)
                    && selector.matches(labels)
                    && old_enough(since)
            })
            .count();
        Some(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// The accurate estimate of every member with listed facts, in the binding's units
    /// (replicas, or whole sets when `sets`), after the other bindings' assumptions.
    pub fn estimates(
        &self,
        binding: &str,
        spec: &ResourceBindingSpec,
        sets: bool,
    ) -> BTreeMap<String, i64> {
        let namespace = workload_namespace(spec);
        let components: Vec<Component> = if sets {
            let replicas: BTreeMap<&str, i32> =
                spec.components.iter().map(|c| (c.name.as_str(), c.replicas)).collect();
            components(spec, |name| replicas.get(name).copied())
        } else {
            placed(spec, &TargetCluster { replicas: 1, ..TargetCluster::default() })
        };
        let assumed = self.assumptions.by_cluster(binding);
        let Ok(members) = self.members.lock() else { return BTreeMap::new() };
        members
            .iter()
            .filter_map(|(name, watched)| {
                let member = {
                    let facts = watched.facts.lock().ok()?;
                    (facts.listed == NODES | PODS | QUOTAS).then(|| facts.member())?
                };
                let assumed = assumed.get(name).map_or(&[][..], Vec::as_slice);
                let units = if sets {
                    accurate::units(&member, &namespace, &components, assumed, self.quotas)
                } else {
                    accurate::replicas(&member, &namespace, &components[0], assumed, self.quotas)
                };
                Some((name.clone(), units))
            })
            .collect()
    }
}

impl Assumptions {
    /// Every unexpired assumption but `binding`'s, by cluster.
    pub fn by_cluster(&self, binding: &str) -> HashMap<String, Vec<Assumed>> {
        let mut by_cluster: HashMap<String, Vec<Assumed>> = HashMap::new();
        let Ok(mut all) = self.0.lock() else { return by_cluster };
        all.retain(|_, clusters| {
            clusters.retain(|_, a| a.at.elapsed() < ASSUMPTION_TTL);
            !clusters.is_empty()
        });
        for (key, clusters) in all.iter() {
            if key == binding {
                continue;
            }
            for (cluster, a) in clusters {
                by_cluster.entry(cluster.clone()).or_default().push(a.workload.clone());
            }
        }
        by_cluster
    }

    /// Records a decision: each cluster of it holds its part, assumed until the member shows it
    /// Healthy (clusters it left are released).
    pub fn assume(
        &self,
        binding: &str,
        spec: &ResourceBindingSpec,
        status: Option<&ResourceBindingStatus>,
        decision: &[TargetCluster],
    ) {
        let namespace = workload_namespace(spec);
        let healthy = healthy(status);
        let entries: HashMap<String, Assumption> = decision
            .iter()
            .filter(|t| t.replicas > 0 || !t.components.is_empty())
            .map(|t| {
                let workload =
                    Assumed { namespace: namespace.clone(), components: placed(spec, t) };
                let was_healthy = healthy.contains(&t.name.as_str());
                (t.name.clone(), Assumption { workload, at: Instant::now(), was_healthy })
            })
            .collect();
        if let Ok(mut all) = self.0.lock() {
            if entries.is_empty() {
                all.remove(binding);
            } else {
                all.insert(binding.to_owned(), entries);
            }
        }
    }

    /// Follows a binding's reported health: a cluster that turned Healthy since its decision no
    /// longer needs its assumption.
    pub fn observe(&self, binding: &str, status: Option<&ResourceBindingStatus>) {
        let healthy = healthy(status);
        let Ok(mut all) = self.0.lock() else { return };
        let Some(clusters) = all.get_mut(binding) else { return };
        clusters.retain(|cluster, a| {
            let now = healthy.contains(&cluster.as_str());
            if !now {
                a.was_healthy = false;
            }
            !now || a.was_healthy
        });
        if clusters.is_empty() {
            all.remove(binding);
        }
    }

    /// Forgets a deleted binding.
    pub fn release(&self, binding: &str) {
        if let Ok(mut all) = self.0.lock() {
            all.remove(binding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_pods_and_quotas_become_facts() {
        let mut facts = Facts::default();
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}},
            "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}});
        facts.nodes.insert("n1".into(), node_fact(&node));
        let pod = |name: &str, phase: &str| {
            json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]},
            "status": {"phase": phase}})
        };
        for (name, phase) in [("a", "Running"), ("b", "Pending"), ("done", "Succeeded")] {
            match pod_fact(&pod(name, phase)) {
                Some((n, r)) => facts.add_pod(key_of(&pod(name, phase)), n, r),
                None => facts.remove_pod(&key_of(&pod(name, phase))),
            }
        }
        let member = facts.member();
        assert_eq!(member.nodes[0].free["cpu"], 3000, "two unfinished pods of 500m");
        assert_eq!(member.nodes[0].free["pods"], 108_000);
        assert_eq!(member.nodes[0].taints[0].effect, TaintEffect::NoSchedule);
        assert!(member.nodes[0].schedulable);
        // A pod that finishes gives its room back; one that is re-applied is not counted twice.
        facts.add_pod("ns/a".into(), "n1".into(), BTreeMap::from([("cpu".into(), 500)]));
        facts.remove_pod("ns/b");
        assert_eq!(facts.member().nodes[0].free["cpu"], 3500);
        let quota = json!({"metadata": {"name": "q", "namespace": "ns"},
            "spec": {"hard": {"requests.cpu": "30m"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}},
            "status": {"hard": {"requests.cpu": "30m"}, "used": {"requests.cpu": "10m"}}});
        let (namespace, q) = quota_fact(&quota);
        assert_eq!(namespace, "ns");
        assert_eq!(q.free, BTreeMap::from([("cpu".to_owned(), 20)]));
        assert_eq!(
            q.scopes,
            vec![("PriorityClass".to_owned(), "In".to_owned(), vec!["high".to_owned()])]
        );
    }

    #[test]
    fn assumptions_last_until_the_member_turns_healthy() {
        let spec: ResourceBindingSpec = serde_json::from_value(json!({
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web"},
            "replicas": 3,
            "replicaRequirements": {"resourceRequest": {"cpu": "100m"}, "namespace": "ns"}
        }))
        .unwrap();
        let status = |health: &str| -> ResourceBindingStatus {
            serde_json::from_value(json!({"aggregatedStatus": [{"clusterName": "m1", "applied": true, "health": health}]}))
                .unwrap()
        };
        let assumptions = Assumptions::default();
        let decision = [TargetCluster::new("m1", 2), TargetCluster::new("m2", 1)];
        assumptions.assume("ns/web", &spec, None, &decision);
        let seen = assumptions.by_cluster("ns/other");
        assert_eq!(seen["m1"][0].components[0].replicas, 2);
        assert_eq!(seen["m1"][0].components[0].requests["cpu"], 100);
        assert_eq!(seen["m1"][0].namespace, "ns");
        assert!(
            assumptions.by_cluster("ns/web").is_empty(),
            "a binding is estimated without its own"
        );
        // m1 turns Healthy: its assumption ends, m2's stays.
        assumptions.observe("ns/web", Some(&status("Healthy")));
        let seen = assumptions.by_cluster("ns/other");
        assert!(!seen.contains_key("m1"));
        assert_eq!(seen["m2"][0].components[0].replicas, 1);
        // Decided while already Healthy (a scale-up): kept until it is seen unhealthy and then
        // healthy again.
        assumptions.assume("ns/web", &spec, Some(&status("Healthy")), &decision[..1]);
        assumptions.observe("ns/web", Some(&status("Healthy")));
        assert!(assumptions.by_cluster("ns/other").contains_key("m1"));
        assumptions.observe("ns/web", Some(&status("Unhealthy")));
        assumptions.observe("ns/web", Some(&status("Healthy")));
        assert!(assumptions.by_cluster("ns/other").is_empty());
        // A deleted binding is forgotten.
        assumptions.assume("ns/web", &spec, None, &decision);
        assumptions.release("ns/web");
        assert!(assumptions.by_cluster("ns/other").is_empty());
    }
}
