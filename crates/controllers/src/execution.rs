//! The execution controller (push mode): applies each Work's manifests to its member cluster
//! with server-side apply (fields the member owns, like a Service's clusterIP, stay the
//! member's), leaves alone existing objects Karmada does not manage (conflictResolution Abort,
//! reported on the Work), and removes what it applied when the Work goes (unless
//! `preserveResourcesOnDeletion`).
//!
//! Status comes from one watch per (member, kind) of the objects Karmada manages there, not
//! from polling: every change of an applied object (its status, a hand edit, a deletion)
//! triggers its Work, which reflects the status and health and restores drift. An object that
//! already matches its manifest is not written again.

use karmada_api::events::{Reason, message};
use karmada_api::names;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Namespace;
use karmada_api::cluster::Cluster;
use karmada_api::work::{ManifestStatus, Work};
use kube::api::{Api, ApiResource, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::lean::LeanObject;
use crate::member_client;
use crate::shared::Watched;
use karmada_api::names::{CONFLICT_RESOLUTION_ANNOTATION as CONFLICT_ANNOTATION, MANAGED_LABEL};

pub const FINALIZER: &str = names::EXECUTION_FINALIZER;
const MANAGER: &str = "karmada-execution-controller";
/// Annotations on every applied object naming the Work it came from.
pub const WORK_NAME_ANNOTATION: &str = "work.karmada.io/name";
pub const WORK_NAMESPACE_ANNOTATION: &str = "work.karmada.io/namespace";

/// A watch of one kind in one member, and its cache.
struct KindWatch {
    resource: ApiResource,
    cache: Store<LeanObject>,
    /// True once the cache holds the watch's first list, or the watch failed (then the
    /// cache may stay empty: waiting for it would not help).
    settled: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// How long an apply waits for a new watch's first list before it asks the member instead
/// (well within the bound of a Work's apply, twice the member timeout).
const FIRST_LIST_WAIT: Duration = Duration::from_secs(3);

impl KindWatch {
    /// The cached object, once the first list is in (a fresh watch's empty cache would send
    /// every Work of a restart to the member one GET each); `None` when it is not cached.
    async fn cached(&self, object: &ObjectRef<LeanObject>) -> Option<Arc<LeanObject>> {
        let mut settled = self.settled.clone();
        let _ = tokio::time::timeout(FIRST_LIST_WAIT, settled.wait_for(|s| *s)).await;
        self.cache.get(object)
    }
}

impl Drop for KindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A member's client (rebuilt when its Cluster changes), its watches and the namespaces known
/// to exist there.
struct Member {
    version: String,
    client: kube::Client,
    /// Started once each, however many Works need it at once.
    kinds: HashMap<GroupVersionKind, Arc<tokio::sync::OnceCell<Arc<KindWatch>>>>,
    namespaces: HashSet<String>,
}

/// Which Works an execution controller serves.
#[derive(Clone)]
pub enum Scope {
    /// The control plane's controller-manager: Works of every Push cluster, each member
    /// reached with the credentials in its Cluster's secret (clients shared with the status
    /// probes).
    Push(Arc<member_client::Clients>),
    /// A pull-mode agent: the Works of its one cluster, applied with the member client it was
    /// given (the control plane never reaches the member).
    Agent { cluster: String, member: kube::Client },
}

struct Context {
    client: kube::Client,
    scope: Scope,
    clusters: Store<Cluster>,
    /// Every Work this controller serves (a Work being let go of leaves alone the member
    /// objects another Work applies).
    works: Store<Work>,
    members: Mutex<HashMap<String, Member>>,
    timeout: Duration,
    trigger: mpsc::UnboundedSender<ObjectRef<Work>>,
    /// When each Work's status was last written (to pace the steps of a rollout).
    status_written: Mutex<HashMap<(String, String), std::time::Instant>>,
    events: crate::events::Events,
    /// Record Events on the resource templates too (an agent may only write Events in its
    /// execution namespace).
    template_events: bool,
    /// Whether the member objects' status is reflected (`workStatus`).
    reflect: bool,
    /// The resource interpreter (health, status reflection, retention).
    interpreter: Arc<crate::interpreting::Interpreting>,
}

/// The Work's `Dispatching` condition when it has to change (upstream's execution controller
/// keeps it on every Work: False while dispatching is suspended).
fn dispatching_condition(work: &Work, suspended: bool) -> Option<Value> {
    let status = if suspended { "False" } else { "True" };
    let current =
        work.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == DISPATCHING));
    if current.is_some_and(|c| c.status == status) {
        return None;
    }
    let (reason, note) = if suspended {
        ("SuspendDispatching", message::WORK_DISPATCHING_SUSPENDED)
    } else {
        ("Dispatching", message::WORK_DISPATCHING)
    };
    Some(json!({"type": DISPATCHING, "status": status, "reason": reason, "message": note,
        "lastTransitionTime": crate::now_rfc3339()}))
}

const DISPATCHING: &str = "Dispatching";

/// Writes `conditions` into the Work's status (replacing those of the same types, keeping the
/// others) and, when given, its manifest statuses.
async fn write_conditions(
    works: &Api<Work>,
    work: &Work,
    conditions: &[Value],
    manifest_statuses: Option<Vec<Value>>,
) -> Result<(), Error> {
    let mut all: Vec<Value> = work
        .status
        .as_ref()
        .map(|s| {
            s.conditions
                .iter()
                .filter(|c| !conditions.iter().any(|n| n["type"] == c.type_.as_str()))
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default();
    all.extend(conditions.iter().cloned());
    let mut status = json!({"conditions": all});
    if let Some(m) = manifest_statuses {
        status["manifestStatuses"] = json!(m);
    }
    let name = work.metadata.name.as_deref().unwrap_or_default();
    works
        .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await?;
    Ok(())
}

/// The resource template a manifest was rendered from (by its uid annotation), with its
/// namespace and name.
fn template_of(manifest: &Value) -> (k8s_openapi::api::core::v1::ObjectReference, String, String) {
    let s = |p: &str| manifest.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let uid = manifest
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(names::TEMPLATE_UID_ANNOTATION))
        .and_then(Value::as_str);
    let (ns, name) = (s("/metadata/namespace"), s("/metadata/name"));
    let regarding = crate::events::reference(s("/apiVersion"), s("/kind"), Some(ns), name, uid);
    (regarding, ns.to_owned(), name.to_owned())
}

/// How often a Work of a cluster that is not Ready is looked at again (becoming Ready also
/// triggers it).
const NOT_READY_RETRY: Duration = Duration::from_secs(30);

/// Whether a cluster's Ready condition is True.
fn ready(cluster: &Cluster) -> bool {
    cluster.is_ready()
}

/// The least time between two status writes of a Work whose workload is still coming up.
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Member(#[from] member_client::ClientError),
    #[error("the member cluster did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Interpreter(#[from] interpreter::Failure),
}

/// `work` bounded by `limit` (member clients keep watches open, so their reads have no
/// timeout of their own).
async fn bounded<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, work).await.unwrap_or(Err(Error::Timeout(limit)))
}

impl Context {
    /// The client for a member, with its watches (rebuilt when the client is: its Cluster
    /// changed, or the shared client was rebuilt).
    async fn member(&self, cluster: &Cluster) -> Result<kube::Client, Error> {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let (version, client) = match &self.scope {
            Scope::Agent { member, .. } => ("agent".to_owned(), member.clone()),
            Scope::Push(clients) => {
                let (client, serial) =
                    clients.get(&self.client, cluster, self.timeout).await.map_err(|message| {
                        member_client::ClientError::Build { cluster: name.clone(), message }
                    })?;
                (serial.to_string(), client)
            }
        };
        if let Ok(mut members) = self.members.lock() {
            match members.get(&name) {
                Some(m) if m.version == version => return Ok(m.client.clone()),
                _ => {
                    let member = Member {
                        version,
                        client: client.clone(),
                        kinds: HashMap::new(),
                        namespaces: HashSet::new(),
                    };
                    members.insert(name, member);
                }
            }
        }
        Ok(client)
    }

    /// The watch of a kind in a member, started on first use (once: Works of that kind in
    /// that member that arrive meanwhile wait for it).
    async fn kind(
        &self,
        cluster: &str,
        member: &kube::Client,
        gvk: &GroupVersionKind,
    ) -> Result<Arc<KindWatch>, kube::Error> {
        let cell = match self.members.lock() {
            Ok(mut members) => match members.get_mut(cluster) {
                Some(m) => Arc::clone(m.kinds.entry(gvk.clone()).or_default()),
                None => Arc::default(),
            },
            Err(_) => Arc::default(),
        };
        let watch = cell.get_or_try_init(|| self.start_watch(member, gvk)).await?;
        Ok(Arc::clone(watch))
    }

    async fn start_watch(
        &self,
        member: &kube::Client,
        gvk: &GroupVersionKind,
    ) -> Result<Arc<KindWatch>, kube::Error> {
        let (resource, _) = kube::discovery::pinned_kind(member, gvk).await?;
        let writer = reflector::store::Writer::<LeanObject>::new(resource.clone());
        let cache = writer.as_reader();
        let (settled_tx, settled) = tokio::sync::watch::channel(false);
        let api: Api<LeanObject> = Api::all_with(member.clone(), &resource);
        let trigger = self.trigger.clone();
        let task = tokio::spawn(
            watcher::watcher(api, watcher::Config::default().labels(MANAGED_LABEL))
                .default_backoff()
                .reflect(writer)
                .for_each(move |event| {
                    let object = match event {
                        Ok(watcher::Event::InitDone) | Err(_) => {
                            settled_tx.send_replace(true);
                            None
                        }
                        Ok(
                            watcher::Event::Apply(o)
                            | watcher::Event::InitApply(o)
                            | watcher::Event::Delete(o),
                        ) => Some(o),
                        Ok(watcher::Event::Init) => None,
                    };
                    if let Some(object) = object {
                        let annotations = object.metadata.annotations.unwrap_or_default();
                        if let (Some(name), Some(ns)) = (
                            annotations.get(WORK_NAME_ANNOTATION),
                            annotations.get(WORK_NAMESPACE_ANNOTATION),
                        ) {
                            let _ = trigger.unbounded_send(ObjectRef::new(name).within(ns));
                        }
                    }
                    async {}
                }),
        );
        Ok(Arc::new(KindWatch { resource, cache, settled, task }))
    }

    fn namespace_known(&self, cluster: &str, namespace: &str) -> bool {
        self.members
            .lock()
            .is_ok_and(|m| m.get(cluster).is_some_and(|m| m.namespaces.contains(namespace)))
    }

    fn remember_namespace(&self, cluster: &str, namespace: &str) {
        if let Ok(mut members) = self.members.lock()
            && let Some(m) = members.get_mut(cluster)
        {
            m.namespaces.insert(namespace.to_owned());
        }
    }

    fn forget_namespace(&self, cluster: &str, namespace: &str) {
        if let Ok(mut members) = self.members.lock()
            && let Some(m) = members.get_mut(cluster)
        {
            m.namespaces.remove(namespace);
        }
    }
}

fn gvk_of(manifest: &Value) -> GroupVersionKind {
    let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(
        group,
        version,
        manifest.get("kind").and_then(Value::as_str).unwrap_or_default(),
    )
}

fn target_api(member: &kube::Client, ar: &ApiResource, namespace: &str) -> Api<LeanObject> {
    if namespace.is_empty() {
        Api::all_with(member.clone(), ar)
    } else {
        Api::namespaced_with(member.clone(), namespace, ar)
    }
}

/// Whether `observed` already carries everything `desired` says (a JSON subset: objects by
/// key, arrays element by element, numbers by value).
pub fn contains(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (_, Value::Null) => true,
        (Value::Object(o), Value::Object(d)) => {
            d.iter().all(|(k, v)| o.get(k).is_some_and(|ov| contains(ov, v)) || v.is_null())
        }
        (Value::Array(o), Value::Array(d)) => {
            o.len() == d.len() && o.iter().zip(d).all(|(a, b)| contains(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The manifest as it is applied: marked as Karmada's, and naming its Work.
pub fn desired(manifest: &Value, work_namespace: &str, work_name: &str) -> Value {
    let mut out = manifest.clone();
    apimachinery::object::string_map_mut(&mut out, "labels")
        .insert(MANAGED_LABEL.into(), json!("true"));
    let annotations = apimachinery::object::string_map_mut(&mut out, "annotations");
    annotations.insert(WORK_NAME_ANNOTATION.into(), json!(work_name));
    annotations.insert(WORK_NAMESPACE_ANNOTATION.into(), json!(work_namespace));
    out
}

/// Whether an existing member object may be written: Karmada manages it, or the manifest asks
/// to overwrite.
fn may_write(existing: &LeanObject, manifest: &Value) -> bool {
    let managed = existing.metadata.labels.as_ref().is_some_and(|l| l.get(MANAGED_LABEL).is_some());
    let overwrite = manifest
        .pointer(&format!("/metadata/annotations/{}", CONFLICT_ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
        == Some("overwrite");
    managed || overwrite
}

async fn ensure_namespace(
    ctx: &Context,
    cluster: &str,
    member: &kube::Client,
    namespace: &str,
) -> Result<(), kube::Error> {
    if namespace.is_empty() || ctx.namespace_known(cluster, namespace) {
        return Ok(());
    }
    let namespaces: Api<Namespace> = Api::all(member.clone());
    if namespaces.get_opt(namespace).await?.is_none() {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap_or_default();
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    ctx.remember_namespace(cluster, namespace);
    Ok(())
}

/// What applying one manifest found.
struct Applied {
    /// Why it was deliberately not applied.
    refused: Option<String>,
    /// The member's object after the apply (or as found).
    observed: Option<LeanObject>,
    resource: ApiResource,
    /// It was written now (not found as wanted, nor refused).
    written: bool,
}

async fn apply_manifest(
    ctx: &Context,
    cluster: &str,
    member: &kube::Client,
    manifest: &Value,
) -> Result<Applied, Error> {
    let watch = ctx.kind(cluster, member, &gvk_of(manifest)).await?;
    let ar = watch.resource.clone();
    let namespace =
        manifest.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let api = target_api(member, &ar, namespace);
    // The watch cache holds managed objects; an unmanaged one is only found by asking.
    let mut object_ref = ObjectRef::new_with(name, ar.clone());
    if !namespace.is_empty() {
        object_ref = object_ref.within(namespace);
    }
    let existing = match watch.cached(&object_ref).await {
        Some(o) => Some((*o).clone()),
        None => api.get_opt(name).await?,
    };
    let mut current = None;
    if let Some(existing) = &existing {
        if !may_write(existing, manifest) {
            return Ok(Applied {
                refused: Some(format!(
                    "{} {namespace}/{name} already exists in the member cluster and is not managed by Karmada (conflictResolution Abort)",
                    ar.kind
                )),
                observed: None,
                resource: ar,
                written: false,
            });
        }
        // Type fields may be absent from cached list items.
        let mut value = existing.to_value();
        value["apiVersion"] = manifest.get("apiVersion").cloned().unwrap_or_default();
        value["kind"] = manifest.get("kind").cloned().unwrap_or_default();
        current = Some(value);
    }
    // Fields the member owns, as a Retain customization keeps them; without one the built-in
    // rules (replicas a member HPA owns, allocated Service IPs and ports, ...), and server-side
    // apply leaves other managers' fields alone.
    let retained = match &current {
        Some(current) => match ctx.interpreter.retain(manifest, current).await? {
            Some(customized) => Some(customized),
            None => {
                let mut kept = manifest.clone();
                propagation::interpreter::retain(&ar.kind, &mut kept, current);
                (kept != *manifest).then_some(kept)
            }
        },
        None => None,
    };
    let manifest = retained.as_ref().unwrap_or(manifest);
    if let (Some(existing), Some(current)) = (&existing, &current) {
        // Nothing to write when the member already has what is wanted.
        let mut want = manifest.clone();
        if let Some(m) = want.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        if contains(current, &want) {
            return Ok(Applied {
                refused: None,
                observed: Some(existing.clone()),
                resource: ar,
                written: false,
            });
        }
    }
    ensure_namespace(ctx, cluster, member, namespace).await?;
    match api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(manifest)).await {
        Ok(observed) => {
            Ok(Applied { refused: None, observed: Some(observed), resource: ar, written: true })
        }
        Err(e) => {
            // The namespace may have been removed by hand: check it again next time.
            ctx.forget_namespace(cluster, namespace);
            Err(e.into())
        }
    }
}

/// Removes what a Work applied (only objects Karmada manages).
/// The objects `work` applied that are still in the member: each with the API it is reached
/// through and the manifest it came from.
async fn applied_objects(
    member: &kube::Client,
    work: &Work,
) -> Result<Vec<(Api<LeanObject>, LeanObject, Value)>, Error> {
    let mut found = Vec::new();
    for manifest in &work.spec.workload.manifests {
        let manifest = manifest.value();
        let ar = match kube::discovery::pinned_kind(member, &gvk_of(&manifest)).await {
            Ok((ar, _)) => ar,
            // The kind is not served there (any more): nothing of it is left.
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(kube::Error::Discovery(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let api = target_api(member, &ar, apimachinery::object::namespace(&manifest));
        if let Some(existing) = api.get_opt(apimachinery::object::name(&manifest)).await? {
            found.push((api, existing, manifest));
        }
    }
    Ok(found)
}

async fn remove_applied(ctx: &Context, cluster: &Cluster, work: &Work) -> Result<(), Error> {
    // An unreachable member keeps the Work (and its finalizer) until it can be cleaned: a
    // copy left behind would run again when the member comes back.
    let member = ctx.member(cluster).await?;
    for (api, existing, _) in applied_objects(&member, work).await? {
        if existing.metadata.labels.as_ref().is_none_or(|l| l.get(MANAGED_LABEL).is_none()) {
            continue;
        }
        let name = existing.metadata.name.as_deref().unwrap_or_default();
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Lets go of what a Work deleted with `preserveResourcesOnDeletion` applied (as upstream):
/// the member objects stay and lose the labels and annotations that made them Karmada's, so
/// that nothing treats them as managed any more — unless another Work took them over (a Work
/// that replaced this one under a new name).
async fn release_applied(ctx: &Context, cluster: &Cluster, work: &Work) -> Result<(), Error> {
    let member = ctx.member(cluster).await?;
    let (work_ns, work_name) = (
        work.metadata.namespace.as_deref().unwrap_or_default(),
        work.metadata.name.as_deref().unwrap_or_default(),
    );
    let others: Vec<Arc<Work>> = ctx
        .works
        .state()
        .into_iter()
        .filter(|w| {
            w.metadata.namespace.as_deref() == Some(work_ns)
                && w.metadata.name.as_deref() != Some(work_name)
                && w.metadata.deletion_timestamp.is_none()
        })
        .collect();
    for (api, existing, manifest) in applied_objects(&member, work).await? {
        if others.iter().any(|w| applies(w, &manifest)) {
            continue;
        }
        let Some(patch) = release_patch(&existing.metadata, work_ns, work_name) else { continue };
        let name = existing.metadata.name.as_deref().unwrap_or_default();
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether `work` has a manifest for the same object as `manifest`.
fn applies(work: &Work, manifest: &Value) -> bool {
    let same = |m: &Value| {
        gvk_of(m) == gvk_of(manifest)
            && apimachinery::object::namespace(m) == apimachinery::object::namespace(manifest)
            && apimachinery::object::name(m) == apimachinery::object::name(manifest)
    };
    work.spec.workload.manifests.iter().any(|m| same(&m.value()))
}

/// The merge patch that removes Karmada's labels and annotations from a member object that
/// Work `work_ns/work_name` applied; `None` when there is nothing to remove or the object names
/// another Work as its own.
fn release_patch(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    work_ns: &str,
    work_name: &str,
) -> Option<Value> {
    let annotations = meta.annotations.clone().unwrap_or_default();
    let names_other = |key: &str, own: &str| annotations.get(key).is_some_and(|v| v != own);
    if names_other(names::WORK_NAME_ANNOTATION, work_name)
        || names_other(names::WORK_NAMESPACE_ANNOTATION, work_ns)
    {
        return None;
    }
    let labels = meta.labels.clone().unwrap_or_default();
    let legacy = [
        names::LEGACY_PP_NAME_LABEL,
        names::LEGACY_PP_NAMESPACE_LABEL,
        names::LEGACY_CPP_NAME_LABEL,
        names::LEGACY_RB_NAME_LABEL,
        names::LEGACY_RB_NAMESPACE_LABEL,
        names::LEGACY_CRB_NAME_LABEL,
    ];
    let nulls = |keys: &mut dyn Iterator<Item = &&str>,
                 present: &std::collections::BTreeMap<String, String>| {
        keys.filter(|k| present.contains_key(**k))
            .map(|k| ((*k).to_owned(), Value::Null))
            .collect::<serde_json::Map<String, Value>>()
    };
    let labels = nulls(&mut names::MANAGED_RESOURCE_LABELS.iter().chain(legacy.iter()), &labels);
    let annotations = nulls(&mut names::MANAGED_RESOURCE_ANNOTATIONS.iter(), &annotations);
    if labels.is_empty() && annotations.is_empty() {
        return None;
    }
    let mut metadata = serde_json::Map::new();
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    Some(json!({ "metadata": metadata }))
}

/// What applying a Work's manifests to its member found.
struct ApplyOutcome {
    /// Every manifest was applied (or already as wanted).
    applied: bool,
    /// The `Applied` condition's message.
    message: String,
    /// The member objects' status and health, for the Work's `manifestStatuses` (`workStatus`).
    manifest_statuses: Vec<Value>,
    /// What was reflected: (kind, namespace, name, health when the kind has an interpretation).
    reflected: Vec<(String, String, String, Option<bool>)>,
}

/// Applies each of the Work's manifests to its member cluster, and reads back the member's
/// view of each (status and health) when `workStatus` is on.
async fn apply_work(ctx: &Context, cluster: &Cluster, work: &Work) -> ApplyOutcome {
    let cluster_name = cluster.metadata.name.as_deref().unwrap_or_default();
    let work_ns = work.metadata.namespace.as_deref().unwrap_or_default();
    let name = work.metadata.name.as_deref().unwrap_or_default();
    let mut manifest_statuses = Vec::new();
    let mut reflected: Vec<(String, String, String, Option<bool>)> = Vec::new();
    let (applied, message) = match ctx.member(cluster).await {
        Err(e) => (false, format!("cannot reach cluster {cluster_name}: {e}")),
        Ok(member) => {
            let mut problems = Vec::new();
            for (ordinal, manifest) in work.spec.workload.manifests.iter().enumerate() {
                let manifest = desired(&manifest.value(), work_ns, name);
                let applying = apply_manifest(ctx, cluster_name, &member, &manifest);
                let template = ctx.template_events.then(|| template_of(&manifest));
                let outcome = match bounded(ctx.timeout * 2, applying).await {
                    Ok(a) => a,
                    Err(e) => {
                        if let Some((regarding, ns, name)) = template {
                            ctx.events.record(
                                regarding,
                                Reason::SyncWorkloadFailed,
                                format!("Failed to create or update resource({ns}/{name}) in member cluster({cluster_name}): {e}"),
                            );
                        }
                        problems.push(format!("applying to {cluster_name} failed: {e}"));
                        continue;
                    }
                };
                if let (true, Some((regarding, ns, name))) = (outcome.written, template) {
                    ctx.events.record(
                        regarding,
                        Reason::SyncWorkloadSucceed,
                        message::workload_applied(&ns, &name, cluster_name),
                    );
                }
                if let Some(reason) = outcome.refused {
                    problems.push(reason);
                }
                // Reflect the member's view of the object (status and health).
                let Some(observed) = outcome.observed.filter(|_| ctx.reflect) else { continue };
                let ar = outcome.resource;
                let mut observed = observed.to_value();
                observed["apiVersion"] = json!(ar.api_version);
                observed["kind"] = json!(ar.kind);
                // A kind without a health interpretation counts as healthy, one whose
                // customization fails as Unknown (as upstream).
                let (healthy, health) = match ctx.interpreter.health(&observed).await {
                    Ok(h) => (h, if h == Some(false) { "Unhealthy" } else { "Healthy" }),
                    Err(failure) => {
                        ctx.events.record(
                            crate::events::reference_of(work),
                            Reason::InterpretHealthFailed,
                            failure.to_string(),
                        );
                        (None, "Unknown")
                    }
                };
                reflected.push((
                    ar.kind.clone(),
                    apimachinery::object::namespace(&observed).to_owned(),
                    apimachinery::object::name(&observed).to_owned(),
                    healthy,
                ));
                let status = match ctx.interpreter.reflect_status(&observed).await {
                    Ok(status) => status,
                    Err(failure) => {
                        ctx.events.record(
                            crate::events::reference_of(work),
                            Reason::ReflectStatusFailed,
                            failure.to_string(),
                        );
                        Value::Null
                    }
                };
                manifest_statuses.push(json!({
                    "identifier": {"ordinal": ordinal, "group": ar.group, "version": ar.version, "kind": ar.kind,
                        "resource": ar.plural, "namespace": apimachinery::object::namespace(&observed),
                        "name": apimachinery::object::name(&observed)},
                    "status": status, "health": health,
                }));
            }
            if problems.is_empty() {
                (true, "Manifest has been successfully applied".to_owned())
            } else {
                (false, problems.join("; "))
            }
        }
    };
    ApplyOutcome { applied, message, manifest_statuses, reflected }
}

async fn reconcile(work: Arc<Work>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(cluster_name) =
        work.metadata.namespace.as_deref().and_then(names::cluster_of_execution_namespace)
    else {
        return Ok(Action::await_change());
    };
    let work_ns = work.metadata.namespace.clone().unwrap_or_default();
    let works: Api<Work> = Api::namespaced(ctx.client.clone(), &work_ns);
    let name = work.metadata.name.clone().unwrap_or_default();
    let finalizers = work.metadata.finalizers.clone().unwrap_or_default();
    let cluster = ctx.clusters.get(&ObjectRef::new(cluster_name));
    // A Pull cluster's agent applies its Works. The control plane only lets go of the Works of
    // a Pull cluster that is gone (unregistered while its agent was away: nothing can reach
    // the member any more).
    if matches!(ctx.scope, Scope::Push(_)) {
        match &cluster {
            Some(c) if c.spec.sync_mode == "Pull" => return Ok(Action::await_change()),
            None if work.metadata.deletion_timestamp.is_some() => {
                crate::set_finalizer(&works, &name, &finalizers, FINALIZER, false).await?;
                return Ok(Action::await_change());
            }
            _ => {}
        }
    }
    // A push cluster that is not Ready is not asked anything (as upstream): with a bounded
    // number of reconciles at once, requests that wait out a dead member's timeout would hold
    // every slot and starve the healthy clusters. Its Works are taken up again when it is
    // Ready (the cluster watch triggers them).
    let unreachable =
        matches!(ctx.scope, Scope::Push(_)) && cluster.as_ref().is_some_and(|c| !ready(c));
    if work.metadata.deletion_timestamp.is_some() {
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        if unreachable {
            // What it applied stays (and the Work with it) until the member can be cleaned,
            // unless the cluster itself is going away.
            if cluster.as_ref().is_some_and(|c| c.metadata.deletion_timestamp.is_none()) {
                return Ok(Action::requeue(NOT_READY_RETRY));
            }
            crate::set_finalizer(&works, &name, &finalizers, FINALIZER, false).await?;
            return Ok(Action::await_change());
        }
        let preserve = work.spec.preserve_resources_on_deletion == Some(true);
        if let Some(cluster) = &cluster {
            let cleaned = if preserve {
                bounded(ctx.timeout * 2, release_applied(&ctx, cluster, &work)).await
            } else {
                bounded(ctx.timeout * 2, remove_applied(&ctx, cluster, &work)).await
            };
            match cleaned {
                Ok(_) => {}
                // The cluster is going away and its member cannot be cleaned (unjoin deleted
                // its credentials, or it stopped answering): the Work goes anyway, as upstream
                // lets an unjoin finish.
                Err(error) if cluster.metadata.deletion_timestamp.is_some() => {
                    tracing::warn!(work = %name, cluster = %cluster_name, %error,
                        "cluster being removed and its member cannot be cleaned; releasing the Work");
                }
                Err(error) => return Err(error),
            }
        }
        crate::set_finalizer(&works, &name, &finalizers, FINALIZER, false).await?;
        return Ok(Action::await_change());
    }
    crate::set_finalizer(&works, &name, &finalizers, FINALIZER, true).await?;
    let suspended = work.spec.suspend_dispatching == Some(true);
    let dispatching = dispatching_condition(&work, suspended);
    if let Some(condition) = &dispatching {
        let note = condition["message"].as_str().unwrap_or_default().to_owned();
        ctx.events.record(
            crate::events::reference_of(work.as_ref()),
            Reason::WorkDispatching,
            note,
        );
    }
    if suspended {
        if let Some(condition) = dispatching {
            write_conditions(&works, &work, &[condition], None).await?;
        }
        return Ok(Action::await_change());
    }
    let Some(cluster) = cluster else { return Ok(Action::requeue(Duration::from_secs(2))) };
    if unreachable {
        return Ok(Action::requeue(NOT_READY_RETRY));
    }
    let ApplyOutcome { applied, message, manifest_statuses, reflected } =
        apply_work(&ctx, &cluster, &work).await;
    let current =
        work.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Applied"));
    let status_word = if applied { "True" } else { "False" };
    // Compared in the stored form (a `null` status or an empty namespace is left out there).
    let wanted: Option<Vec<ManifestStatus>> =
        serde_json::from_value(Value::Array(manifest_statuses.clone())).ok();
    let statuses_now = work.status.as_ref().map(|s| s.manifest_statuses.as_slice()).unwrap_or(&[]);
    let changed_statuses = wanted.as_deref() != Some(statuses_now);
    let condition_changed = current.is_none_or(|c| c.status != status_word || c.message != message);
    // While a workload is still coming up (not every object healthy), its status changes in
    // quick steps: reflect them at most every 500 ms. A first successful apply of a workload
    // still coming up waits those 500 ms too (most are healthy by then: one status write
    // instead of two or three, and as many fewer aggregations). A failure, a later change of
    // the Applied condition, and the step that makes everything healthy are written at once.
    let settled = manifest_statuses.iter().all(|m| m["health"] != "Unhealthy");
    let key = (work_ns.clone(), name.clone());
    let first_unsettled = current.is_none() && applied && !settled;
    if (changed_statuses && !condition_changed && !settled) || first_unsettled {
        let since_last =
            ctx.status_written.lock().ok().and_then(|m| m.get(&key).map(|t| t.elapsed()));
        match since_last {
            Some(elapsed) if elapsed < STATUS_INTERVAL => {
                return Ok(Action::requeue(STATUS_INTERVAL - elapsed));
            }
            None if first_unsettled => {
                if let Ok(mut m) = ctx.status_written.lock() {
                    m.insert(key, std::time::Instant::now());
                }
                return Ok(Action::requeue(STATUS_INTERVAL));
            }
            _ => {}
        }
    }
    if condition_changed {
        let regarding = crate::events::reference_of(work.as_ref());
        if applied {
            let note = message::work_synced(&work_ns, &name, cluster_name);
            ctx.events.record(regarding, Reason::SyncWorkloadSucceed, note);
        } else {
            let note = message::work_sync_failed(&work_ns, &name, cluster_name, &message);
            ctx.events.record(regarding, Reason::SyncWorkloadFailed, note);
        }
    }
    if changed_statuses {
        let regarding = crate::events::reference_of(work.as_ref());
        for (kind, ns, object, healthy) in &reflected {
            ctx.events.record(
                regarding.clone(),
                Reason::ReflectStatusSucceed,
                message::status_reflected(kind, ns, object),
            );
            if let Some(healthy) = healthy {
                ctx.events.record(
                    regarding.clone(),
                    Reason::InterpretHealthSucceed,
                    message::health_interpreted(kind, ns, object, *healthy),
                );
            }
        }
    }
    if condition_changed || changed_statuses {
        if let Ok(mut m) = ctx.status_written.lock() {
            if m.len() > 100_000 {
                m.retain(|_, t| t.elapsed() < STATUS_INTERVAL);
            }
            m.insert(key, std::time::Instant::now());
        }
        let now = crate::now_rfc3339();
        let since = current
            .filter(|c| c.status == status_word)
            .map_or(json!(now), |c| json!(c.last_transition_time));
        let condition = json!({"type": "Applied", "status": status_word, "reason": if applied { "AppliedSuccessful" } else { "AppliedFailed" },
            "message": message, "lastTransitionTime": since});
        let mut conditions = vec![condition];
        conditions.extend(dispatching);
        write_conditions(&works, &work, &conditions, Some(manifest_statuses)).await?;
    } else if let Some(condition) = dispatching {
        write_conditions(&works, &work, &[condition], None).await?;
    }
    // Changes in the member arrive through its watches; a failed apply is retried, and a slow
    // resync covers anything a watch missed.
    Ok(Action::requeue(if applied { Duration::from_secs(300) } else { Duration::from_secs(2) }))
}

fn error_policy(_: Arc<Work>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "execution",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

pub async fn run(
    client: kube::Client,
    timeout: Duration,
    caches: crate::Caches,
    parts: crate::registry::ExecutionParts,
) -> anyhow::Result<()> {
    let scope = Scope::Push(caches.member_clients);
    run_scoped(client, timeout, scope, caches.works, caches.clusters, caches.interpreter, parts)
        .await
}

/// The execution controller for `scope`, over `works` and `clusters` (an agent watches only its
/// own cluster's Works and Cluster, which is all its credentials allow).
pub async fn run_scoped(
    client: kube::Client,
    timeout: Duration,
    scope: Scope,
    works: Arc<Watched<Work>>,
    clusters: Arc<Watched<Cluster>>,
    interpreter: Arc<crate::interpreting::Interpreting>,
    parts: crate::registry::ExecutionParts,
) -> anyhow::Result<()> {
    if !parts.apply {
        // Our Work status is what applying observed: there is nothing to reflect without it.
        tracing::warn!(
            "workStatus runs with execution in karmada-rs; with execution off it does nothing"
        );
        return std::future::pending().await;
    }
    // Member changes come in bursts (a Deployment's status moves several times while its
    // pods start): they are coalesced for 100 ms, so a Work's status is written once per
    // burst rather than once per step.
    let (trigger, raw) = mpsc::unbounded::<ObjectRef<Work>>();
    let triggered = crate::coalesce(raw, Duration::from_millis(100));
    let store = works.store();
    // A cluster that becomes Ready has its Works looked at at once.
    let mut was_ready: HashMap<String, bool> = HashMap::new();
    let (works_of, ready_trigger) = (store.clone(), trigger.clone());
    let cluster_watch = tokio::spawn(clusters.applied().for_each(move |cluster| {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let now = ready(&cluster);
        if was_ready.insert(name.clone(), now) == Some(false) && now {
            let es = crate::execution_namespace(&name);
            for w in works_of.state() {
                if w.metadata.namespace.as_deref() == Some(es.as_str()) {
                    let _ = ready_trigger.unbounded_send(ObjectRef::from_obj(&*w));
                }
            }
        }
        async {}
    }));
    clusters.ready().await;
    interpreter.ready().await;
    let ctx = Arc::new(Context {
        template_events: matches!(scope, Scope::Push(_)),
        events: crate::events::Events::start(client.clone(), "execution-controller"),
        client,
        scope,
        clusters: clusters.store(),
        works: store.clone(),
        members: Mutex::new(HashMap::new()),
        timeout,
        trigger,
        status_written: Mutex::new(HashMap::new()),
        reflect: parts.reflect,
        interpreter,
    });
    // A Work's own status writes (this controller's) trigger nothing: only what it is asked to
    // apply (spec, deletion, finalizers) and what happens in the member do. After a restart
    // every Work is listed and looked at again; a Work written meanwhile goes first (the
    // listed ones are fed as the controller keeps up).
    let pace = Arc::new(crate::shared::Pace::default());
    let objects = crate::shared::listed_last(
        works.subscribe(),
        Arc::clone(&pace),
        crate::CONCURRENCY as u64,
        None,
    );
    let changes = crate::shared::changed_by(objects, crate::spec_relevant::<Work>);
    Controller::for_shared_stream(changes, store)
        .with_config(crate::controller_config())
        .reconcile_on(triggered)
        .run(
            move |work, ctx| {
                let pace = Arc::clone(&pace);
                async move {
                    let result = reconcile(work, ctx).await;
                    pace.finished();
                    result
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;
    cluster_watch.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_removes_karmadas_metadata_only_from_its_own_objects() {
        let meta = |v: Value| serde_json::from_value(v).unwrap();
        let own = meta(json!({"name": "d", "labels": {"app": "d", "karmada.io/managed": "true",
                "resourcebinding.karmada.io/permanent-id": "1", "work.karmada.io/permanent-id": "2",
                "propagationpolicy.karmada.io/permanent-id": "3", "propagationpolicy.karmada.io/name": "old"},
            "annotations": {"note": "x", "work.karmada.io/name": "d-123", "work.karmada.io/namespace": "karmada-es-m1",
                "resourcetemplate.karmada.io/uid": "u", "propagationpolicy.karmada.io/name": "pp",
                "resourcetemplate.karmada.io/managed-labels": "app"}}));
        assert_eq!(
            release_patch(&own, "karmada-es-m1", "d-123"),
            Some(json!({"metadata": {
                "labels": {"karmada.io/managed": null, "resourcebinding.karmada.io/permanent-id": null,
                    "work.karmada.io/permanent-id": null, "propagationpolicy.karmada.io/permanent-id": null,
                    "propagationpolicy.karmada.io/name": null},
                "annotations": {"work.karmada.io/name": null, "work.karmada.io/namespace": null,
                    "resourcetemplate.karmada.io/uid": null, "propagationpolicy.karmada.io/name": null,
                    "resourcetemplate.karmada.io/managed-labels": null}}}))
        );
        // Another Work (one that replaced this one under a new name) owns it now.
        assert_eq!(release_patch(&own, "karmada-es-m1", "d-old"), None);
        assert_eq!(release_patch(&own, "karmada-es-m2", "d-123"), None);
        // Nothing of Karmada's left: nothing to write.
        assert_eq!(
            release_patch(&meta(json!({"name": "d", "labels": {"app": "d"}})), "ns", "w"),
            None
        );
        // An object from before the Work annotations existed is still let go of.
        let bare = meta(json!({"name": "d", "labels": {"karmada.io/managed": "true"}}));
        assert_eq!(
            release_patch(&bare, "ns", "w"),
            Some(json!({"metadata": {"labels": {"karmada.io/managed": null}}}))
        );
    }

    #[test]
    fn subset_check() {
        let observed = json!({"metadata": {"name": "n", "labels": {"a": "1", "b": "2"}, "uid": "x"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always"}]}}},
            "status": {"replicas": 2}});
        let cases = [
            (
                json!({"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {"replicas": 2}}),
                true,
            ),
            (json!({"spec": {"replicas": 2.0}}), true),
            (json!({"spec": {"replicas": 3}}), false),
            (json!({"metadata": {"labels": {"c": "3"}}}), false),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
                true,
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}),
                false,
            ),
            (json!({"spec": {"template": {"spec": {"containers": []}}}}), false),
            (json!({"spec": {"paused": null}}), true),
            (json!({"spec": {"paused": false}}), false),
        ];
        for (desired, want) in cases {
            assert_eq!(contains(&observed, &desired), want, "{desired}");
        }
    }

    #[test]
    fn applied_objects_name_their_work() {
        let m = desired(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "karmada-es-m1",
            "c-configmap-1",
        );
        assert_eq!(m["metadata"]["labels"][MANAGED_LABEL], "true");
        assert_eq!(m["metadata"]["annotations"][WORK_NAME_ANNOTATION], "c-configmap-1");
        assert_eq!(m["metadata"]["annotations"][WORK_NAMESPACE_ANNOTATION], "karmada-es-m1");
        let unmanaged: LeanObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .unwrap();
        assert!(may_write(&serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {MANAGED_LABEL: "true"}}})).unwrap(), &m));
        assert!(!may_write(&unmanaged, &m));
        let mut overwrite = m.clone();
        overwrite["metadata"]["annotations"][CONFLICT_ANNOTATION] = json!("overwrite");
        assert!(may_write(&unmanaged, &overwrite));
    }
}
