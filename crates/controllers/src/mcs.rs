//! Multi-cluster services (`multicluster.x-k8s.io`, the Kubernetes MCS API), upstream's three
//! controllers:
//! - `serviceExport`: for each Ready push cluster, a watch of its ServiceExports and
//!   EndpointSlices; every EndpointSlice of an exported Service (not one Karmada wrote) is
//!   collected as a Work in the cluster's execution namespace (`suspendDispatching`: not applied
//!   back), labelled with the Service's namespace and name (`collected_works`); unexported or
//!   gone, its Work is deleted.
//! - `endpointSlice`: each collected Work becomes `imported-<cluster>-<slice>` in the Service's
//!   namespace on the control plane, labelled `kubernetes.io/service-name: derived-<service>`
//!   (`imported_slices`); a finalizer on the Work removes them when it goes.
//! - `serviceImport`: each `ClusterSetIP` ServiceImport gets a `derived-<name>` Service (ClusterIP,
//!   the import's ports, `spec.ips` as load-balancer ingress), owned by the import.
//!
//! A policy selecting a ServiceImport propagates its dependencies — the derived Service and its
//! EndpointSlices — so the consuming clusters get every exporting cluster's endpoints, kept
//! current as pods come and go.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use karmada_api::events::Reason;
use karmada_api::mcs::ServiceImport;
use karmada_api::names::{self, derived_service_name};
use karmada_api::work::Work;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::{Value, json};

const MANAGER: &str = "service-import-controller";

/// The derived Service a ServiceImport asks for (`None`: not a `ClusterSetIP` import), and its
/// status.
pub fn derived_service(import: &ServiceImport) -> Option<(Value, Value)> {
    if import.spec.type_ != "ClusterSetIP" {
        return None;
    }
    let name = import.metadata.name.clone().unwrap_or_default();
    let namespace = import.metadata.namespace.clone().unwrap_or_default();
    let ports: Vec<Value> = import
        .spec
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({"port": p.port,
                "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())});
            if !p.name.is_empty() {
                port["name"] = json!(p.name);
            }
            if let Some(app) = &p.app_protocol {
                port["appProtocol"] = json!(app);
            }
            port
        })
        .collect();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": derived_service_name(&name), "namespace": namespace,
            "ownerReferences": [{"apiVersion": ServiceImport::API_VERSION, "kind": ServiceImport::KIND,
                "name": name, "uid": import.metadata.uid.clone().unwrap_or_default(),
                "blockOwnerDeletion": true}]},
        "spec": {"type": "ClusterIP", "ports": ports},
    });
    let ingress: Vec<Value> = import.spec.ips.iter().map(|ip| json!({"ip": ip})).collect();
    Some((service, json!({"loadBalancer": {"ingress": ingress}})))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

struct Context {
    client: kube::Client,
    events: crate::events::Events,
}

async fn reconcile(import: Arc<ServiceImport>, ctx: Arc<Context>) -> Result<Action, Error> {
    if import.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some((service, status)) = derived_service(&import) else {
        return Ok(Action::await_change());
    };
    let namespace = import.metadata.namespace.clone().unwrap_or_default();
    let name = service["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let regarding = crate::events::reference_of(import.as_ref());
    let written = async {
        services
            .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&service))
            .await?;
        services
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
    }
    .await;
    match written {
        Ok(_) => {
            ctx.events.record(
                regarding,
                Reason::SyncDerivedServiceSucceed,
                format!(
                    "Sync derived service for serviceImport({}) succeed.",
                    import.metadata.name.as_deref().unwrap_or_default()
                ),
            );
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.events.record(regarding, Reason::SyncDerivedServiceFailed, e.to_string());
            Err(e.into())
        }
    }
}

fn error_policy(_: Arc<ServiceImport>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "service import",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the `serviceImport` controller until the future is dropped.
pub async fn run_service_import(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<ServiceImport> = Api::all(client.clone());
    let events = crate::events::Events::start(client.clone(), "service-import-controller");
    Controller::new(api, watcher::Config::default())
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, Arc::new(Context { client, events }))
        .for_each(|_| async {})
        .await;
    Ok(())
}

// ---- serviceExport / endpointsliceCollect: member EndpointSlices → Works on the control plane

/// Who wants a member's EndpointSlices of a Service, as [`COLLECTORS`] orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Collector {
    /// A ServiceExport in the member (`serviceExport`).
    ServiceExport,
    /// A MultiClusterService naming the member a provider (`endpointsliceCollect`).
    MultiClusterService,
}

impl Collector {
    /// Its name in `endpointslice.karmada.io/managed-by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Collector::ServiceExport => "ServiceExport",
            Collector::MultiClusterService => "MultiClusterService",
        }
    }

    /// The labels naming the Service on the Work, and the finalizer its consumer holds.
    fn keys(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Collector::ServiceExport => (
                names::SERVICE_NAMESPACE_LABEL,
                names::SERVICE_NAME_LABEL,
                names::ENDPOINTSLICE_FINALIZER,
            ),
            Collector::MultiClusterService => {
                (names::MCS_NAMESPACE_LABEL, names::MCS_NAME_LABEL, names::MCS_DISPATCH_FINALIZER)
            }
        }
    }
}

/// The collectors of one member that are on (`serviceExport`, `endpointsliceCollect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectParts {
    pub exports: bool,
    pub services: bool,
}

/// The Services (namespace, name) whose EndpointSlices a member gives, by who wants them.
pub type Wanted = BTreeMap<(String, String), BTreeSet<Collector>>;

/// The `endpointslice.karmada.io/managed-by` value of a Work wanted by `by`.
fn managed_by(by: &BTreeSet<Collector>) -> String {
    by.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(".")
}

/// The Works collecting a member's EndpointSlices: one per EndpointSlice of a wanted Service
/// that Karmada did not write itself, by Work name, labelled for each collector that wants it
/// (upstream's labels: a Work wanted by both carries both).
pub fn collected_works(
    cluster: &str,
    wanted: &Wanted,
    slices: &[Value],
) -> BTreeMap<String, Value> {
    let namespace = names::execution_namespace(cluster);
    let mut works = BTreeMap::new();
    for slice in slices {
        let labels = &slice["metadata"]["labels"];
        let Some(service) = labels[names::SERVICE_NAME_OF_SLICE_LABEL].as_str() else { continue };
        let slice_namespace = apimachinery::object::namespace(slice).to_owned();
        if names::endpoint_slice_by_karmada(labels[names::SLICE_MANAGED_BY_LABEL].as_str()) {
            continue;
        }
        let Some(by) = wanted.get(&(slice_namespace.clone(), service.to_owned())) else {
            continue;
        };
        let slice_name = apimachinery::object::name(slice);
        let work_name = names::work_name("EndpointSlice", slice_name, &slice_namespace);
        let mut manifest = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": slice_namespace, "labels": labels},
            "addressType": slice["addressType"],
            "endpoints": slice.get("endpoints").cloned().unwrap_or_else(|| json!([])),
        });
        if let Some(ports) = slice.get("ports") {
            manifest["ports"] = ports.clone();
        }
        let mut work_labels = json!({names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL: managed_by(by)});
        let mut finalizers = Vec::new();
        for c in by {
            let (ns_label, name_label, finalizer) = c.keys();
            work_labels[ns_label] = json!(slice_namespace);
            work_labels[name_label] = json!(service);
            finalizers.push(finalizer);
        }
        works.insert(
            work_name.clone(),
            json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": work_name, "namespace": namespace, "labels": work_labels,
                    "finalizers": finalizers},
                // Collected, not to be applied back to the member.
                "spec": {"suspendDispatching": true, "workload": {"manifests": [manifest]}}}),
        );
    }
    works
}

/// The `Valid` condition of a ServiceExport (the MCS API's): whether the Service it exports
/// exists in the member. `None`: the export already says so.
pub fn export_validity(
    export: &karmada_api::mcs::ServiceExport,
    service_exists: bool,
    cluster: &str,
    now: &str,
) -> Option<Value> {
    let (status, reason, message) = if service_exists {
        ("True", "ServiceFound", "the Service is exported".to_owned())
    } else {
        (
            "False",
            "ServiceNotFound",
            format!(
                "Service {}/{} does not exist in cluster {cluster}",
                export.metadata.namespace.as_deref().unwrap_or_default(),
                export.metadata.name.as_deref().unwrap_or_default()
            ),
        )
    };
    let current =
        export.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid"));
    if current.is_some_and(|c| c.status == status && c.reason == reason && c.message == message) {
        return None;
    }
    Some(json!({"type": "Valid", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now}))
}

/// Whether a collected Work that exists must go: no longer wanted, or wanted by fewer
/// collectors than before (its deletion lets each consumer that no longer wants it clean up
/// behind its finalizer; it is collected again once gone). One being deleted is left alone.
pub fn collected_goes(existing: &Work, desired: Option<&Value>) -> bool {
    if existing.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(desired) = desired else { return true };
    let had = existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL))
        .cloned()
        .unwrap_or_default();
    let wants = desired["metadata"]["labels"][names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL]
        .as_str()
        .unwrap_or_default();
    had.split('.').any(|c| !c.is_empty() && !wants.split('.').any(|w| w == c))
}

/// What a loop last applied, by object: a desired object is written again only when it
/// changed or its object is gone (the API server stamps Works' manifests, so what is stored
/// never equals what was sent).
#[derive(Default)]
pub(crate) struct Applied(std::collections::HashMap<String, u64>);

impl Applied {
    fn fingerprint(desired: &Value) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        desired.to_string().hash(&mut h);
        h.finish()
    }

    /// Whether `desired` must be written (`exists`: its object is there, not being deleted).
    pub(crate) fn needs(&self, key: &str, desired: &Value, exists: bool) -> bool {
        !exists || self.0.get(key) != Some(&Self::fingerprint(desired))
    }

    pub(crate) fn record(&mut self, key: &str, desired: &Value) {
        self.0.insert(key.to_owned(), Self::fingerprint(desired));
    }

    /// Forgets what is not in `keep`.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|k, _| keep(k));
    }
}

fn label_of<'a>(work: &'a Work, key: &str) -> Option<&'a str> {
    work.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// What a collector reads its Works from, and what wakes it.
pub struct WorkSource {
    pub works: Arc<CollectorWorks>,
    pub notify: Arc<tokio::sync::Notify>,
}

/// Whether a Work concerns the collectors: a MultiClusterService's, or a collected one.
pub fn concerns_collectors(work: &Work) -> bool {
    label_of(work, names::MCS_PERMANENT_ID_LABEL).is_some()
        || label_of(work, names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL).is_some()
}

type ByNamespace = HashMap<String, BTreeMap<String, Arc<Work>>>;

/// The Works the collectors read (MultiClusterServices' and collected ones) by execution
/// namespace, kept from a shared Work cache's changes, and each namespace's collector woken
/// when one of its Works changes (every collector on a relist). A collector reads the few
/// Works of its own namespace: walking every Work of the control plane on each wake of each
/// collector was a fifth of the controller-manager's CPU at 100 clusters × 10,000 workloads.
/// The collectors add no watch of their own to the API server.
#[derive(Default)]
pub struct CollectorWorks {
    state: parking_lot::Mutex<Collected>,
}

#[derive(Default)]
struct Collected {
    works: ByNamespace,
    /// What a (re)list in progress has brought so far.
    listing: Option<ByNamespace>,
    wakeups: HashMap<String, Arc<tokio::sync::Notify>>,
}

fn work_key(work: &Work) -> (String, String) {
    (
        work.metadata.namespace.clone().unwrap_or_default(),
        work.metadata.name.clone().unwrap_or_default(),
    )
}

impl CollectorWorks {
    /// Follows `works` until the returned task is aborted.
    pub fn start(
        works: &crate::shared::Watched<Work>,
    ) -> (Arc<CollectorWorks>, tokio::task::JoinHandle<()>) {
        let this = Arc::new(CollectorWorks::default());
        let to = Arc::clone(&this);
        let task = tokio::spawn(works.subscribe().for_each(move |change| {
            to.apply(change);
            async {}
        }));
        (this, task)
    }

    /// A collector for `namespace`: the notify its Works' changes wake.
    pub fn register(&self, namespace: &str) -> Arc<tokio::sync::Notify> {
        let notify = Arc::new(tokio::sync::Notify::new());
        self.state.lock().wakeups.insert(namespace.to_owned(), Arc::clone(&notify));
        notify
    }

    pub fn unregister(&self, namespace: &str) {
        self.state.lock().wakeups.remove(namespace);
    }

    /// The collectors' Works in `namespace`, by name.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<Work>> {
        self.state
            .lock()
            .works
            .get(namespace)
            .map(|w| w.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A Work changed (`kept`) or went: the index follows, and its namespace's collector is
    /// woken if the Work concerns the collectors or was indexed. A Work that concerns no
    /// collector (nearly all of them) costs a lookup, no allocation.
    fn update(state: &mut Collected, work: Arc<Work>, kept: bool) {
        let concerns = concerns_collectors(&work);
        let ns = work.metadata.namespace.as_deref().unwrap_or_default();
        let name = work.metadata.name.as_deref().unwrap_or_default();
        let had = state.works.get_mut(ns).is_some_and(|m| m.remove(name).is_some());
        if kept && concerns {
            let name = name.to_owned();
            state.works.entry(ns.to_owned()).or_default().insert(name, Arc::clone(&work));
        } else if state.works.get(ns).is_some_and(BTreeMap::is_empty) {
            state.works.remove(ns);
        }
        if (concerns || had)
            && let Some(n) = state.wakeups.get(ns)
        {
            n.notify_one();
        }
    }

    fn apply(&self, change: crate::shared::Change<Work>) {
        use crate::shared::Change;
        let mut state = self.state.lock();
        match change {
            Change::Relisting => state.listing = Some(ByNamespace::new()),
            Change::Listed(w) => {
                if concerns_collectors(&w) {
                    let (ns, name) = work_key(&w);
                    match state.listing.as_mut() {
                        Some(listing) => listing.entry(ns).or_default().insert(name, w),
                        None => state.works.entry(ns).or_default().insert(name, w),
                    };
                }
            }
            Change::Relisted => {
                state.works = state.listing.take().unwrap_or_default();
                state.wakeups.values().for_each(|n| n.notify_one());
            }
            Change::Applied(w) => Self::update(&mut state, w, true),
            Change::Deleted(w) => Self::update(&mut state, w, false),
        }
    }
}

/// One member: watches its EndpointSlices (and ServiceExports and Services), reads the
/// MultiClusterService Works in its execution namespace and the Works collected from it from
/// `source`, and keeps the latter equal to `collected_works`, until aborted. The
/// controller-manager runs one per Ready push member, the agent one for its own cluster.
pub async fn collect_member(
    control: kube::Client,
    member: kube::Client,
    cluster: String,
    parts: CollectParts,
    source: WorkSource,
) {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::DeleteParams;
    let notify = Arc::clone(&source.notify);
    let namespace = names::execution_namespace(&cluster);
    let works: Api<Work> = Api::namespaced(control, &namespace);
    // A first pass over what is there already.
    notify.notify_one();
    let (slices, slice_watch) = crate::shared::cached::<EndpointSlice>(
        &member,
        watcher::Config::default().labels(names::SERVICE_NAME_OF_SLICE_LABEL),
        &notify,
    );
    let mut watches = vec![slice_watch];
    let exports = parts.exports.then(|| {
        let (store, task) = crate::shared::cached::<karmada_api::mcs::ServiceExport>(
            &member,
            watcher::Config::default(),
            &notify,
        );
        watches.push(task);
        store
    });
    let member_services = parts.exports.then(|| {
        let (store, task) =
            crate::shared::cached::<Service>(&member, watcher::Config::default(), &notify);
        watches.push(task);
        store
    });
    let _abort = AbortAll(watches.iter().map(|t| t.abort_handle()).collect());
    let mut applied = Applied::default();
    loop {
        notify.notified().await;
        // Let a burst of changes settle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if watches.iter().any(|t| t.is_finished()) {
            return;
        }
        let mut wanted = Wanted::new();
        for e in exports.iter().flat_map(|s| s.state()) {
            if e.metadata.deletion_timestamp.is_none() {
                let key = (
                    e.metadata.namespace.clone().unwrap_or_default(),
                    e.metadata.name.clone().unwrap_or_default(),
                );
                wanted.entry(key).or_default().insert(Collector::ServiceExport);
            }
        }
        let in_namespace = source.works.in_namespace(&namespace);
        let service_works = in_namespace
            .iter()
            .filter(|w| parts.services && label_of(w, names::MCS_PERMANENT_ID_LABEL).is_some());
        for w in service_works {
            if w.metadata.deletion_timestamp.is_some()
                || !w
                    .spec
                    .workload
                    .manifests
                    .iter()
                    .any(|m| m.value()["kind"] == "MultiClusterService")
            {
                continue;
            }
            let labels = w.metadata.labels.clone().unwrap_or_default();
            if let (Some(ns), Some(name)) =
                (labels.get(names::MCS_NAMESPACE_LABEL), labels.get(names::MCS_NAME_LABEL))
            {
                wanted
                    .entry((ns.clone(), name.clone()))
                    .or_default()
                    .insert(Collector::MultiClusterService);
            }
        }
        // Each export says whether its Service is there (not an error loop: a condition).
        for e in exports.iter().flat_map(|s| s.state()) {
            if e.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = (e.metadata.namespace.as_deref(), e.metadata.name.as_deref());
            let exists = member_services.iter().flat_map(|s| s.state()).any(|svc| {
                (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref()) == key
            });
            if let Some(condition) = export_validity(&e, exists, &cluster, &crate::now_rfc3339()) {
                let api: Api<karmada_api::mcs::ServiceExport> =
                    Api::namespaced(member.clone(), key.0.unwrap_or_default());
                let status = e.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
                let ops = crate::status_ops(status.as_ref(), condition, &[]);
                if let Err(err) =
                    crate::patch_status_ops(&api, key.1.unwrap_or_default(), ops).await
                {
                    tracing::debug!(cluster, export = key.1, error = %err, "ServiceExport status");
                }
            }
        }
        let listed: Vec<Value> = slices
            .state()
            .iter()
            .map(|s| serde_json::to_value(s.as_ref()).unwrap_or_default())
            .collect();
        let desired = collected_works(&cluster, &wanted, &listed);
        let existing: Vec<&Arc<Work>> = in_namespace
            .iter()
            .filter(|w| label_of(w, names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL).is_some())
            .collect();
        let mut failed = false;
        for w in &existing {
            let name = w.metadata.name.clone().unwrap_or_default();
            if collected_goes(w, desired.get(&name))
                && let Err(e) = works.delete(&name, &DeleteParams::default()).await
            {
                tracing::debug!(cluster, work = name, error = %e, "remove collected EndpointSlice");
                failed = true;
            }
        }
        applied.retain(|name| desired.contains_key(name));
        for (name, work) in &desired {
            let current =
                existing.iter().find(|w| w.metadata.name.as_deref() == Some(name.as_str()));
            // One being deleted (or about to be) is collected again once gone.
            if current.is_some_and(|w| {
                w.metadata.deletion_timestamp.is_some() || collected_goes(w, Some(work))
            }) {
                continue;
            }
            if !applied.needs(name, work, current.is_some()) {
                continue;
            }
            match works
                .patch(name, &PatchParams::apply(COLLECT_MANAGER).force(), &Patch::Apply(work))
                .await
            {
                Ok(_) => applied.record(name, work),
                Err(e) => {
                    tracing::debug!(cluster, work = name, error = %e, "collect EndpointSlice");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            notify.notify_one();
        }
    }
}

/// Aborts the watch tasks when the collector ends (or is aborted).
struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

const COLLECT_MANAGER: &str = "service-export-controller";

/// Runs the collectors until the future is dropped: one per Ready push cluster (the agent
/// collects for a pull cluster).
pub async fn run_collectors(
    client: kube::Client,
    caches: crate::Caches,
    parts: CollectParts,
) -> anyhow::Result<()> {
    // Each collector with the parts it runs: a member that starts or stops serving
    // ServiceExports gets a new collector.
    let mut collectors: HashMap<String, (CollectParts, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    let notify = Arc::new(tokio::sync::Notify::new());
    let _watch = caches.clusters.notify_on_change(&notify);
    let (works, router) = CollectorWorks::start(&caches.works);
    let _router = crate::AbortOnDrop(router);
    loop {
        let clusters = caches.clusters.store().state();
        let wanted: Vec<Arc<karmada_api::cluster::Cluster>> =
            clusters.into_iter().filter(|c| c.spec.sync_mode != "Pull" && c.is_ready()).collect();
        let parts_of = |cluster: &karmada_api::cluster::Cluster| CollectParts {
            // As upstream's: no ServiceExport watch on a member without the API (a watch
            // that fails, retried forever, for every member).
            exports: parts.exports && {
                use karmada_api::mcs::ServiceExport;
                use kube::Resource;
                cluster.serves(&ServiceExport::api_version(&()), &ServiceExport::kind(&()))
            },
            ..parts
        };
        collectors.retain(|name, (running, task)| {
            let keep = !task.is_finished()
                && wanted.iter().any(|c| {
                    c.metadata.name.as_deref() == Some(name.as_str()) && parts_of(c) == *running
                });
            if !keep {
                task.abort();
                works.unregister(&names::execution_namespace(name));
            }
            keep
        });
        for cluster in wanted {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            if collectors.contains_key(&name) {
                continue;
            }
            match caches.member_clients.get(&client, &cluster, Duration::from_secs(5)).await {
                Ok((member, _)) => {
                    let source = WorkSource {
                        works: Arc::clone(&works),
                        notify: works.register(&names::execution_namespace(&name)),
                    };
                    let parts = parts_of(&cluster);
                    collectors.insert(
                        name.clone(),
                        (
                            parts,
                            tokio::spawn(collect_member(
                                client.clone(),
                                member,
                                name,
                                parts,
                                source,
                            )),
                        ),
                    );
                }
                Err(e) => tracing::debug!(cluster = name, error = %e, "collect: no client"),
            }
        }
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

// ---- endpointSlice: collected Works → EndpointSlices of the derived Service on the control plane

/// The EndpointSlices a collected Work stands for on the control plane: each of its slices as
/// `imported-<cluster>-<name>`, labelled for the derived Service and with the Work's identity.
pub fn imported_slices(work: &karmada_api::work::Work) -> Vec<Value> {
    let namespace = work.metadata.namespace.clone().unwrap_or_default();
    let Some(cluster) = karmada_api::names::cluster_of_execution_namespace(&namespace) else {
        return Vec::new();
    };
    let labels = work.metadata.labels.clone().unwrap_or_default();
    let service = labels.get(names::SERVICE_NAME_LABEL).cloned().unwrap_or_default();
    let permanent_id =
        labels.get(karmada_api::names::WORK_PERMANENT_ID_LABEL).cloned().unwrap_or_default();
    work.spec
        .workload
        .manifests
        .iter()
        .map(|m| m.value())
        .filter(|m| m["kind"] == "EndpointSlice")
        .map(|m| {
            let mut slice = m.clone();
            let mut slice_labels = m["metadata"]["labels"].clone();
            if !slice_labels.is_object() {
                slice_labels = json!({});
            }
            slice_labels[karmada_api::names::WORK_PERMANENT_ID_LABEL] = json!(permanent_id);
            slice_labels[names::SERVICE_NAME_OF_SLICE_LABEL] =
                json!(derived_service_name(&service));
            slice_labels[names::SLICE_MANAGED_BY_LABEL] = json!(names::ENDPOINTSLICE_CONTROLLER);
            slice["metadata"] = json!({
                "name": format!("imported-{cluster}-{}", apimachinery::object::name(&m)),
                "namespace": apimachinery::object::namespace(&m),
                "labels": slice_labels,
                "annotations": {"work.karmada.io/namespace": namespace,
                    "work.karmada.io/name": work.metadata.name.clone().unwrap_or_default()},
            });
            slice
        })
        .collect()
}

async fn reconcile_work(
    work: Arc<karmada_api::work::Work>,
    client: Arc<kube::Client>,
) -> Result<Action, Error> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{DeleteParams, ListParams};
    let labels = work.metadata.labels.clone().unwrap_or_default();
    let Some(service_namespace) = labels.get(names::SERVICE_NAMESPACE_LABEL) else {
        return Ok(Action::await_change());
    };
    let slices: Api<EndpointSlice> = Api::namespaced((*client).clone(), service_namespace);
    let has_finalizer =
        work.metadata.finalizers.iter().flatten().any(|f| f == names::ENDPOINTSLICE_FINALIZER);
    if work.metadata.deletion_timestamp.is_some() {
        // Its EndpointSlices go first, then the finalizer.
        let work_name = work.metadata.name.clone().unwrap_or_default();
        let work_namespace = work.metadata.namespace.clone().unwrap_or_default();
        let listed = slices
            .list(&ListParams::default().labels(&format!(
                "{}={}",
                names::SLICE_MANAGED_BY_LABEL,
                names::ENDPOINTSLICE_CONTROLLER
            )))
            .await?;
        for slice in listed.items {
            let annotations = slice.metadata.annotations.clone().unwrap_or_default();
            if annotations.get("work.karmada.io/name") == Some(&work_name)
                && annotations.get("work.karmada.io/namespace") == Some(&work_namespace)
            {
                let name = slice.metadata.name.clone().unwrap_or_default();
                match slices.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if has_finalizer {
            let remaining: Vec<&String> = work
                .metadata
                .finalizers
                .iter()
                .flatten()
                .filter(|f| *f != names::ENDPOINTSLICE_FINALIZER)
                .collect();
            let works: Api<karmada_api::work::Work> =
                Api::namespaced((*client).clone(), &work_namespace);
            let patch = json!({"metadata": {"finalizers": remaining,
                "resourceVersion": work.metadata.resource_version}});
            match works.patch(&work_name, &PatchParams::default(), &Patch::Merge(patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::await_change());
    }
    for slice in imported_slices(&work) {
        let name = apimachinery::object::name(&slice).to_owned();
        slices
            .patch(
                &name,
                &PatchParams::apply(names::ENDPOINTSLICE_CONTROLLER).force(),
                &Patch::Apply(&slice),
            )
            .await?;
    }
    Ok(Action::await_change())
}

fn work_error_policy(
    _: Arc<karmada_api::work::Work>,
    error: &Error,
    _: Arc<kube::Client>,
) -> Action {
    crate::retry_after(
        "endpoint slice",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the `endpointSlice` controller until the future is dropped.
pub async fn run_endpoint_slice(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<karmada_api::work::Work> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default().labels(names::SERVICE_NAMESPACE_LABEL))
        .with_config(crate::controller_config())
        .run(reconcile_work, work_error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collectors_read_and_are_woken_by_their_own_namespaces_works_only() {
        use crate::shared::Change;
        let work = |ns: &str, name: &str, label: Option<&str>| {
            let labels = label.map(|l| json!({l: "x"})).unwrap_or(json!({}));
            Arc::new(
                serde_json::from_value::<Work>(json!({
                    "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": {}
                }))
                .unwrap(),
            )
        };
        let woken =
            |n: &tokio::sync::Notify| futures::FutureExt::now_or_never(n.notified()).is_some();
        let collected = CollectorWorks::default();
        let one = collected.register("karmada-es-member1");
        let two = collected.register("karmada-es-member2");
        collected.apply(Change::Relisting);
        collected.apply(Change::Listed(work("karmada-es-member1", "plain", None)));
        collected.apply(Change::Listed(work(
            "karmada-es-member1",
            "mcs",
            Some(names::MCS_PERMANENT_ID_LABEL),
        )));
        // Not visible before the list completes.
        assert!(collected.in_namespace("karmada-es-member1").is_empty());
        collected.apply(Change::Relisted);
        let names = |ns: &str| {
            collected
                .in_namespace(ns)
                .iter()
                .map(|w| w.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("karmada-es-member1"), ["mcs"]);
        assert!(woken(&one) && woken(&two), "a relist wakes every collector");
        // A workload's Work wakes nobody.
        collected.apply(Change::Applied(work("karmada-es-member2", "plain", None)));
        assert!(!woken(&one) && !woken(&two));
        // A collected Work wakes its namespace's collector only.
        let slice =
            work("karmada-es-member2", "slice", Some(names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL));
        collected.apply(Change::Applied(Arc::clone(&slice)));
        assert!(!woken(&one) && woken(&two));
        assert_eq!(names("karmada-es-member2"), ["slice"]);
        // One that stops concerning the collectors leaves (and says so).
        collected.apply(Change::Applied(work("karmada-es-member1", "mcs", None)));
        assert!(woken(&one));
        assert!(names("karmada-es-member1").is_empty());
        collected.apply(Change::Deleted(slice));
        assert!(woken(&two));
        assert!(names("karmada-es-member2").is_empty());
        // A relist replaces what was there.
        collected.apply(Change::Applied(work(
            "karmada-es-member1",
            "a",
            Some(names::MCS_PERMANENT_ID_LABEL),
        )));
        collected.apply(Change::Relisting);
        collected.apply(Change::Listed(work(
            "karmada-es-member1",
            "b",
            Some(names::MCS_PERMANENT_ID_LABEL),
        )));
        collected.apply(Change::Relisted);
        assert_eq!(names("karmada-es-member1"), ["b"]);
        collected.unregister("karmada-es-member1");
        let _ = woken(&one);
        collected.apply(Change::Applied(work(
            "karmada-es-member1",
            "c",
            Some(names::MCS_PERMANENT_ID_LABEL),
        )));
        assert!(!woken(&one), "an unregistered collector is not woken");
    }

    #[test]
    fn a_cluster_set_ip_import_derives_a_service_with_its_ports() {
        let import: ServiceImport = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "shop", "uid": "u1"},
            "spec": {"type": "ClusterSetIP", "ips": ["10.1.2.3"], "ports": [
                {"name": "tcp", "port": 42, "protocol": "TCP"}, {"name": "udp", "port": 42, "protocol": "UDP"}]}
        }))
        .unwrap();
        let (service, status) = derived_service(&import).unwrap();
        assert_eq!(service["metadata"]["name"], "derived-hello");
        assert_eq!(service["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(service["spec"]["type"], "ClusterIP");
        assert_eq!(
            service["spec"]["ports"],
            json!([{"name": "tcp", "port": 42, "protocol": "TCP"}, {"name": "udp", "port": 42, "protocol": "UDP"}])
        );
        assert_eq!(status["loadBalancer"]["ingress"], json!([{"ip": "10.1.2.3"}]));
        let mut headless = import;
        headless.spec.type_ = "Headless".into();
        assert_eq!(derived_service(&headless), None);
    }

    #[test]
    fn exported_services_endpoint_slices_are_collected_and_imported() {
        let slice = |name: &str, ns: &str, service: &str, managed: Option<&str>| {
            let mut labels = json!({"kubernetes.io/service-name": service});
            if let Some(m) = managed {
                labels["endpointslice.kubernetes.io/managed-by"] = json!(m);
            }
            json!({"metadata": {"name": name, "namespace": ns, "labels": labels, "resourceVersion": "7"},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.10.0.3"], "conditions": {"ready": true}}],
                "ports": [{"name": "tcp", "port": 42, "protocol": "TCP"}]})
        };
        let exports: Wanted =
            [(("shop".to_owned(), "hello".to_owned()), [Collector::ServiceExport].into())].into();
        let slices = [
            slice("hello-abc", "shop", "hello", Some("endpointslice-controller.k8s.io")),
            slice("other-abc", "shop", "other", None),
            slice("hello-xyz", "dev", "hello", None),
            slice(
                "imported-member2-hello-abc",
                "shop",
                "hello",
                Some(names::ENDPOINTSLICE_CONTROLLER),
            ),
            slice(
                "member2-hello-abc",
                "shop",
                "hello",
                Some(names::ENDPOINTSLICE_DISPATCH_CONTROLLER),
            ),
        ];
        let works = collected_works("member1", &exports, &slices);
        assert_eq!(works.len(), 1, "only the exported Service's own slices: {works:#?}");
        let (name, work) = works.into_iter().next().unwrap();
        assert_eq!(name, karmada_api::names::work_name("EndpointSlice", "hello-abc", "shop"));
        assert_eq!(work["metadata"]["namespace"], "karmada-es-member1");
        assert_eq!(work["metadata"]["labels"][names::SERVICE_NAME_LABEL], "hello");
        assert_eq!(work["spec"]["suspendDispatching"], true, "collected, not applied back");
        let manifest = &work["spec"]["workload"]["manifests"][0];
        assert!(manifest["metadata"].get("resourceVersion").is_none());
        assert_eq!(manifest["endpoints"][0]["addresses"][0], "10.10.0.3");
        let mut work: karmada_api::work::Work = serde_json::from_value(work).unwrap();
        work.metadata
            .labels
            .get_or_insert_default()
            .insert(karmada_api::names::WORK_PERMANENT_ID_LABEL.into(), "id-1".into());
        let imported = imported_slices(&work);
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0]["metadata"]["name"], "imported-member1-hello-abc");
        assert_eq!(imported[0]["metadata"]["namespace"], "shop");
        assert_eq!(
            imported[0]["metadata"]["labels"]["kubernetes.io/service-name"],
            "derived-hello"
        );
        assert_eq!(
            imported[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            names::ENDPOINTSLICE_CONTROLLER
        );
        assert_eq!(
            imported[0]["metadata"]["labels"][karmada_api::names::WORK_PERMANENT_ID_LABEL],
            "id-1"
        );
        assert_eq!(imported[0]["endpoints"][0]["addresses"][0], "10.10.0.3");

        // Also a MultiClusterService's provider: one Work, labelled for both.
        let both: Wanted = [(
            ("shop".to_owned(), "hello".to_owned()),
            [Collector::ServiceExport, Collector::MultiClusterService].into(),
        )]
        .into();
        let works = collected_works("member1", &both, &slices);
        let shared = works.values().next().unwrap();
        assert_eq!(
            shared["metadata"]["labels"][names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL],
            "ServiceExport.MultiClusterService"
        );
        assert_eq!(shared["metadata"]["labels"][names::MCS_NAME_LABEL], "hello");
        assert_eq!(
            shared["metadata"]["finalizers"],
            json!([names::ENDPOINTSLICE_FINALIZER, names::MCS_DISPATCH_FINALIZER])
        );
        // Unexported but still served: the shared Work goes (each consumer cleans up
        // behind its finalizer) and is collected again for the MultiClusterService alone.
        let existing: Work = serde_json::from_value(shared.clone()).unwrap();
        let served: Wanted =
            [(("shop".to_owned(), "hello".to_owned()), [Collector::MultiClusterService].into())]
                .into();
        let after = collected_works("member1", &served, &slices);
        assert!(collected_goes(&existing, after.values().next()));
        assert!(!collected_goes(&existing, Some(shared)));
        assert!(collected_goes(&existing, None));
        let only_served: Work =
            serde_json::from_value(after.values().next().unwrap().clone()).unwrap();
        assert!(!collected_goes(&only_served, Some(shared)), "more collectors: rewritten, kept");
    }

    #[test]
    fn an_export_says_whether_its_service_exists() {
        let export: karmada_api::mcs::ServiceExport =
            serde_json::from_value(json!({"metadata": {"name": "ghost", "namespace": "shop"}}))
                .unwrap();
        let missing = export_validity(&export, false, "member1", "2026-12-07T00:00:00Z").unwrap();
        assert_eq!(missing["status"], "False");
        assert_eq!(missing["reason"], "ServiceNotFound");
        assert_eq!(missing["message"], "Service shop/ghost does not exist in cluster member1");
        let mut reported = export.clone();
        reported.status = Some(serde_json::from_value(json!({"conditions": [missing]})).unwrap());
        assert_eq!(export_validity(&reported, false, "member1", "later"), None, "said once");
        let found = export_validity(&reported, true, "member1", "later").unwrap();
        assert_eq!(
            (found["status"].as_str(), found["reason"].as_str()),
            (Some("True"), Some("ServiceFound"))
        );
    }
}
