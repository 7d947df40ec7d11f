//! `networking.karmada.io` MultiClusterService with `types: [CrossCluster]`: upstream's
//! `multiclusterservice` and `endpointsliceDispatch` controllers (the collection from the
//! providers is the collectors' in [`crate::mcs`], `endpointsliceCollect`).
//!
//! - `multiclusterservice` (one reconcile per MultiClusterService): a Work carrying the
//!   MultiClusterService into each Ready provider's execution namespace (suspended: the
//!   providers' collectors read it, nothing is applied); the Service of the same name claimed
//!   (`resourcetemplate.karmada.io/claimed-by: MultiClusterService`, so no policy takes it) and
//!   bound to providers ∪ consumers by a ResourceBinding it writes itself; condition
//!   `ServiceApplied` and Events `SyncServiceSucceed`/`SyncServiceFailed`/`ClusterNotFound`.
//!   Deleted, or no longer CrossCluster: its Works go, the Service is released, the binding
//!   stays (as when a policy is deleted).
//! - `endpointsliceDispatch` (one level-triggered loop): every EndpointSlice collected for a
//!   MultiClusterService from a Ready provider goes to each Ready consumer but the provider
//!   itself as `<provider>-<slice>`, labelled `kubernetes.io/service-name: <service>` and
//!   `endpointslice.kubernetes.io/managed-by: endpointslice-dispatch-controller.karmada.io`;
//!   what is no longer wanted (a provider gone or not Ready, a consumer removed, the
//!   MultiClusterService deleted) is deleted. Condition `EndpointSliceDispatched` and Events
//!   `DispatchEndpointSliceSucceed`/`Failed`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use karmada_api::cluster::Cluster;
use karmada_api::events::Reason;
use karmada_api::names;
use karmada_api::networking::{ExposureType, MultiClusterIngress, MultiClusterService};
use karmada_api::remedy::RemedyAction;
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::mcs::Applied;

const KIND: &str = "MultiClusterService";
const MANAGER: &str = "multiclusterservice-controller";
const DISPATCH_MANAGER: &str = "endpointslice-dispatch-controller";
/// Condition types on a MultiClusterService.
pub const SERVICE_APPLIED: &str = "ServiceApplied";
pub const ENDPOINT_SLICE_DISPATCHED: &str = "EndpointSliceDispatched";

/// A cluster as a MultiClusterService sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub name: String,
    pub ready: bool,
    /// Whether it serves `discovery.k8s.io/v1` EndpointSlices (as far as its status says).
    pub endpoint_slices: bool,
    /// A Remedy keeps traffic away from it (`TrafficControl` in `status.remedyActions`).
    pub traffic_blocked: bool,
}

impl Member {
    pub fn of(cluster: &Cluster) -> Member {
        let enablements =
            cluster.status.as_ref().map(|s| s.api_enablements.as_slice()).unwrap_or_default();
        let endpoint_slices =
            enablements.is_empty() || cluster.serves("discovery.k8s.io/v1", "EndpointSlice");
        Member {
            name: cluster.metadata.name.clone().unwrap_or_default(),
            ready: cluster.is_ready() && cluster.metadata.deletion_timestamp.is_none(),
            endpoint_slices,
            traffic_blocked: cluster.status.as_ref().is_some_and(|s| {
                s.remedy_actions.iter().any(|a| a == RemedyAction::TrafficControl.as_str())
            }),
        }
    }
}

/// The clusters named, or every cluster when none is.
fn named_or_all(named: Vec<&str>, members: &[Member]) -> BTreeSet<String> {
    if named.is_empty() {
        members.iter().map(|m| m.name.clone()).collect()
    } else {
        named.into_iter().map(str::to_owned).collect()
    }
}

/// The provider and consumer clusters of a MultiClusterService.
pub fn clusters_of(
    mcs: &MultiClusterService,
    members: &[Member],
) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        named_or_all(mcs.spec.provider_names(), members),
        named_or_all(mcs.spec.consumer_names(), members),
    )
}

/// What `multiclusterservice` writes for one MultiClusterService (that is CrossCluster and not
/// being deleted).
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// The providers (named or all): only they keep a Work.
    pub providers: BTreeSet<String>,
    /// The providers and consumers: what the Service's binding places it on.
    pub placement: BTreeSet<String>,
    /// The Work carrying the MultiClusterService to each Ready provider, by cluster.
    pub works: BTreeMap<String, Value>,
    /// Events: a named cluster that does not exist, is not Ready or lacks EndpointSlices.
    pub events: Vec<(Reason, String)>,
}

pub fn plan(mcs: &MultiClusterService, members: &[Member]) -> Plan {
    let (providers, consumers) = clusters_of(mcs, members);
    let name = mcs.metadata.name.clone().unwrap_or_default();
    let namespace = mcs.metadata.namespace.clone().unwrap_or_default();
    let labels = mcs.metadata.labels.clone().unwrap_or_default();
    let id = labels.get(names::MCS_PERMANENT_ID_LABEL).cloned().unwrap_or_default();
    let mut out = Plan { placement: &providers | &consumers, ..Plan::default() };
    out.providers = providers.clone();
    for cluster in &providers {
        let Some(member) = members.iter().find(|m| &m.name == cluster) else {
            out.events.push((
                Reason::ClusterNotFound,
                format!("Provider cluster {cluster} is not found"),
            ));
            continue;
        };
        if !member.ready {
            out.events.push((
                Reason::SyncServiceFailed,
                format!(
                    "Provider cluster {cluster} is not ready, skip to propagate MultiClusterService"
                ),
            ));
            continue;
        }
        if !member.endpoint_slices {
            out.events.push((
                Reason::APIIncompatible,
                format!("Provider cluster {cluster} does not support EndpointSlice"),
            ));
            continue;
        }
        let work_name = names::work_name(KIND, &name, &namespace);
        out.works.insert(
            cluster.clone(),
            json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": work_name, "namespace": names::execution_namespace(cluster),
                "labels": {names::MCS_PERMANENT_ID_LABEL: id, names::MCS_NAMESPACE_LABEL: namespace,
                    names::MCS_NAME_LABEL: name}},
            "spec": {"suspendDispatching": true, "workload": {"manifests": [{
                "apiVersion": MultiClusterService::API_VERSION, "kind": KIND,
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": mcs.spec,
            }]}}}),
        );
    }
    for cluster in consumers.difference(&providers) {
        if !members.iter().any(|m| &m.name == cluster) {
            out.events.push((
                Reason::ClusterNotFound,
                format!("Consumer cluster {cluster} is not found"),
            ));
        }
    }
    out
}

/// The ResourceBinding that propagates the Service to `placement` (upstream's: Overwrite
/// conflicts, managed by the MultiClusterService).
pub fn service_binding(
    mcs: &MultiClusterService,
    service: &Service,
    placement: &BTreeSet<String>,
) -> Value {
    let name = service.metadata.name.clone().unwrap_or_default();
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let id = permanent_id(&mcs.metadata).unwrap_or_default().to_owned();
    json!({
        "apiVersion": karmada_api::work::ResourceBinding::API_VERSION, "kind": "ResourceBinding",
        "metadata": {"name": propagation::binding_name("Service", &name), "namespace": namespace,
            "labels": {names::BINDING_MANAGED_BY_LABEL: KIND, names::MCS_PERMANENT_ID_LABEL: id},
            "annotations": {names::MCS_NAME_ANNOTATION: mcs.metadata.name, names::MCS_NAMESPACE_ANNOTATION: mcs.metadata.namespace},
            "finalizers": [names::BINDING_FINALIZER],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                "uid": service.metadata.uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "resource": {"apiVersion": "v1", "kind": "Service", "namespace": namespace, "name": name,
                "uid": service.metadata.uid, "resourceVersion": service.metadata.resource_version},
            "placement": {"clusterAffinity": {"clusterNames": placement}},
            "conflictResolution": "Overwrite",
        },
    })
}

/// The merge patch that makes the Service the MultiClusterService's (and no policy's), or
/// `None` when it already is.
pub fn claim_patch(mcs: &MultiClusterService, service: &Service) -> Option<Value> {
    let labels = service.metadata.labels.clone().unwrap_or_default();
    let annotations = service.metadata.annotations.clone().unwrap_or_default();
    let id = permanent_id(&mcs.metadata).unwrap_or_default().to_owned();
    let mut label_patch = serde_json::Map::new();
    let mut annotation_patch = serde_json::Map::new();
    let want = |patch: &mut serde_json::Map<String, Value>,
                map: &BTreeMap<String, String>,
                key: &str,
                value: Option<&str>| {
        if map.get(key).map(String::as_str) != value {
            patch.insert(key.to_owned(), value.map_or(Value::Null, |v| json!(v)));
        }
    };
    want(&mut label_patch, &labels, names::CLAIMED_BY_LABEL, Some(KIND));
    want(&mut label_patch, &labels, names::MCS_PERMANENT_ID_LABEL, Some(&id));
    for policy_label in [names::PP_PERMANENT_ID_LABEL, names::CPP_PERMANENT_ID_LABEL] {
        want(&mut label_patch, &labels, policy_label, None);
    }
    want(
        &mut annotation_patch,
        &annotations,
        names::MCS_NAME_ANNOTATION,
        mcs.metadata.name.as_deref(),
    );
    want(
        &mut annotation_patch,
        &annotations,
        names::MCS_NAMESPACE_ANNOTATION,
        mcs.metadata.namespace.as_deref(),
    );
    for policy_annotation in
        [names::PP_NAME_ANNOTATION, names::PP_NAMESPACE_ANNOTATION, names::CPP_NAME_ANNOTATION]
    {
        want(&mut annotation_patch, &annotations, policy_annotation, None);
    }
    (!label_patch.is_empty() || !annotation_patch.is_empty())
        .then(|| json!({"metadata": {"labels": label_patch, "annotations": annotation_patch}}))
}

/// The merge patch that releases an object (Service or binding) from a MultiClusterService:
/// its claim labels and annotations removed (`None`: it carries none).
pub fn release_patch(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<Value> {
    let label_keys =
        [names::CLAIMED_BY_LABEL, names::MCS_PERMANENT_ID_LABEL, names::BINDING_MANAGED_BY_LABEL];
    let annotation_keys = [names::MCS_NAME_ANNOTATION, names::MCS_NAMESPACE_ANNOTATION];
    let l: serde_json::Map<String, Value> = label_keys
        .iter()
        .filter(|k| labels.contains_key(**k))
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    let a: serde_json::Map<String, Value> = annotation_keys
        .iter()
        .filter(|k| annotations.contains_key(**k))
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    (!l.is_empty() || !a.is_empty()).then(|| json!({"metadata": {"labels": l, "annotations": a}}))
}

/// A condition as it is to be written: the transition time kept while its status holds.
fn condition(current: Option<&Value>, type_: &str, ok: bool, reason: &str, message: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = current
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(crate::now_rfc3339()));
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

/// Whether `status` already holds `wanted` (its time aside).
fn holds(status: Option<&Value>, wanted: &Value) -> bool {
    status.and_then(|s| s.get("conditions")).and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == wanted["type"]
                && c["status"] == wanted["status"]
                && c["reason"] == wanted["reason"]
                && c["message"] == wanted["message"]
        })
    })
}

/// Writes `wanted` into a MultiClusterService's status unless it holds it already.
async fn set_condition(
    api: &Api<MultiClusterService>,
    mcs: &MultiClusterService,
    wanted: Value,
) -> Result<bool, kube::Error> {
    let status = mcs.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
    if holds(status.as_ref(), &wanted) {
        return Ok(false);
    }
    let name = mcs.metadata.name.clone().unwrap_or_default();
    let ops = crate::status_ops(status.as_ref(), wanted, &[]);
    Ok(crate::patch_status_ops(api, &name, ops).await?.is_some())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("service {0} not found")]
    ServiceMissing(String),
}

struct Context {
    client: kube::Client,
    caches: crate::Caches,
    events: crate::events::Events,
    /// The bindings and claims written, by MultiClusterService (what changes is written again).
    applied: std::sync::Mutex<Applied>,
}

fn members(caches: &crate::Caches) -> Vec<Member> {
    caches.clusters.store().state().iter().map(|c| Member::of(c)).collect()
}

/// The MultiClusterService Works of `id` in the shared Work cache, by cluster.
fn service_works(caches: &crate::Caches, id: &str) -> Vec<Arc<Work>> {
    caches
        .works
        .store()
        .state()
        .into_iter()
        .filter(|w| {
            !id.is_empty()
                && permanent_id(&w.metadata) == Some(id)
                && w.spec.workload.manifests.iter().any(|m| m.value()["kind"] == KIND)
        })
        .collect()
}

async fn reconcile(mcs: Arc<MultiClusterService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = mcs.metadata.name.clone().unwrap_or_default();
    let namespace = mcs.metadata.namespace.clone().unwrap_or_default();
    let id = permanent_id(&mcs.metadata).unwrap_or_default().to_owned();
    let api: Api<MultiClusterService> = Api::namespaced(ctx.client.clone(), &namespace);
    let finalizers = mcs.metadata.finalizers.clone().unwrap_or_default();
    let regarding = crate::events::reference_of(mcs.as_ref());
    let key = format!("{namespace}/{name}");
    if mcs.metadata.deletion_timestamp.is_some() || !mcs.spec.exposes(ExposureType::CrossCluster) {
        if !finalizers.iter().any(|f| f == names::MCS_FINALIZER) {
            return Ok(Action::await_change());
        }
        if let Err(e) = release(&ctx, &namespace, &name, &id).await {
            ctx.events.record(
                regarding,
                Reason::SyncServiceFailed,
                format!("failed to delete service work :{e}"),
            );
            return Err(e.into());
        }
        if let Ok(mut applied) = ctx.applied.lock() {
            let prefix = format!("{key}/");
            applied.retain(|k| !k.starts_with(&prefix));
        }
        crate::set_finalizer(&api, &name, &finalizers, names::MCS_FINALIZER, false).await?;
        return Ok(Action::await_change());
    }
    crate::set_finalizer(&api, &name, &finalizers, names::MCS_FINALIZER, true).await?;
    let members = members(&ctx.caches);
    let plan = plan(&mcs, &members);
    for (reason, message) in &plan.events {
        ctx.events.record(regarding.clone(), *reason, message.clone());
    }
    let result = propagate(&ctx, &mcs, &plan, &id, &key).await;
    let status_view = mcs.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
    let (wanted, reason, message) = match &result {
        Ok(_) => {
            let message = "Service is propagated to target clusters.";
            (
                condition(
                    status_view.as_ref(),
                    SERVICE_APPLIED,
                    true,
                    "ServiceAppliedSucceed",
                    message,
                ),
                Reason::SyncServiceSucceed,
                message.to_owned(),
            )
        }
        Err(e) => {
            let message = e.to_string();
            (
                condition(
                    status_view.as_ref(),
                    SERVICE_APPLIED,
                    false,
                    "ServiceAppliedFailed",
                    &message,
                ),
                Reason::SyncServiceFailed,
                message,
            )
        }
    };
    let changed = set_condition(&api, &mcs, wanted).await?;
    if changed || result.as_ref().is_ok_and(|wrote| *wrote) || result.is_err() {
        ctx.events.record(regarding, reason, message);
    }
    result.map(|_| Action::await_change())
}

/// Writes a MultiClusterService's Works, claim and binding; whether anything was written.
async fn propagate(
    ctx: &Context,
    mcs: &MultiClusterService,
    plan: &Plan,
    id: &str,
    key: &str,
) -> Result<bool, Error> {
    let namespace = mcs.metadata.namespace.clone().unwrap_or_default();
    let name = mcs.metadata.name.clone().unwrap_or_default();
    let mut wrote = false;
    let existing = service_works(&ctx.caches, id);
    for (cluster, work) in &plan.works {
        let work_key = format!("{key}/work/{cluster}");
        let exists = existing.iter().any(|w| {
            w.metadata.namespace.as_deref() == work["metadata"]["namespace"].as_str()
                && w.metadata.deletion_timestamp.is_none()
        });
        if !ctx.applied.lock().map(|a| a.needs(&work_key, work, exists)).unwrap_or(true) {
            continue;
        }
        let works: Api<Work> =
            Api::namespaced(ctx.client.clone(), &names::execution_namespace(cluster));
        let work_name = work["metadata"]["name"].as_str().unwrap_or_default();
        works.patch(work_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(work)).await?;
        if let Ok(mut applied) = ctx.applied.lock() {
            applied.record(&work_key, work);
        }
        wrote = true;
    }
    // Providers no longer named lose theirs (a provider not Ready keeps it).
    for w in &existing {
        let ns = w.metadata.namespace.clone().unwrap_or_default();
        let cluster = names::cluster_of_execution_namespace(&ns).unwrap_or_default().to_owned();
        if !plan.providers.contains(&cluster) && w.metadata.deletion_timestamp.is_none() {
            let works: Api<Work> = Api::namespaced(ctx.client.clone(), &ns);
            match works
                .delete(w.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default())
                .await
            {
                Ok(_) => wrote = true,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(service) = services.get_opt(&name).await? else {
        return Err(Error::ServiceMissing(format!("{namespace}/{name}")));
    };
    if let Some(patch) = claim_patch(mcs, &service) {
        services.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        wrote = true;
    }
    let binding = service_binding(mcs, &service, &plan.placement);
    let binding_key = format!("{key}/binding");
    let binding_name = binding["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let exists = ctx.caches.bindings.store().state().iter().any(|b| {
        b.metadata.namespace.as_deref() == Some(namespace.as_str())
            && b.metadata.name.as_deref() == Some(binding_name.as_str())
    });
    if ctx.applied.lock().map(|a| a.needs(&binding_key, &binding, exists)).unwrap_or(true) {
        let bindings: Api<karmada_api::work::ResourceBinding> =
            Api::namespaced(ctx.client.clone(), &namespace);
        bindings
            .patch(&binding_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&binding))
            .await?;
        if let Ok(mut applied) = ctx.applied.lock() {
            applied.record(&binding_key, &binding);
        }
        wrote = true;
    }
    Ok(wrote)
}

/// Undoes a MultiClusterService: its Works deleted, its Service and the binding released (the
/// binding stays, as a policy's does when the policy goes).
async fn release(ctx: &Context, namespace: &str, name: &str, id: &str) -> Result<(), kube::Error> {
    for w in service_works(&ctx.caches, id) {
        let works: Api<Work> = Api::namespaced(
            ctx.client.clone(),
            w.metadata.namespace.as_deref().unwrap_or_default(),
        );
        match works
            .delete(w.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    release_object(&Api::<Service>::namespaced(ctx.client.clone(), namespace), name, id).await?;
    let bindings: Api<karmada_api::work::ResourceBinding> =
        Api::namespaced(ctx.client.clone(), namespace);
    release_object(&bindings, &propagation::binding_name("Service", name), id).await?;
    Ok(())
}

/// The MultiClusterService permanent id an object carries.
fn permanent_id(meta: &kube::api::ObjectMeta) -> Option<&str> {
    meta.labels.as_ref()?.get(names::MCS_PERMANENT_ID_LABEL).map(String::as_str)
}

/// Releases the object `name` (a Service or its binding) if the MultiClusterService `id`
/// claims it.
async fn release_object<K>(api: &Api<K>, name: &str, id: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Some(object) = api.get_opt(name).await?
        && permanent_id(object.meta()) == Some(id)
        && let Some(patch) = release_patch(
            &object.meta().labels.clone().unwrap_or_default(),
            &object.meta().annotations.clone().unwrap_or_default(),
        )
    {
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    Ok(())
}

fn error_policy(_: Arc<MultiClusterService>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "multicluster service",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// A stream that yields whenever the clusters' names, readiness or EndpointSlice support
/// change (what a MultiClusterService's plan depends on).
fn member_changes(caches: &crate::Caches) -> impl futures::Stream<Item = ()> + Send + 'static {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let notify = Arc::new(tokio::sync::Notify::new());
    let watch = caches.clusters.notify_on_change(&notify);
    let store = caches.clusters.store();
    tokio::spawn(async move {
        let _watch = watch;
        let mut last: Option<BTreeSet<Member>> = None;
        loop {
            notify.notified().await;
            let now: BTreeSet<Member> = store.state().iter().map(|c| Member::of(c)).collect();
            if last.as_ref() != Some(&now) {
                last = Some(now);
                if tx.unbounded_send(()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Runs the `multiclusterservice` controller until the future is dropped.
pub async fn run(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let api: Api<MultiClusterService> = Api::all(client.clone());
    let events = crate::events::Events::start(client.clone(), "multiclusterservice-controller");
    let changes = member_changes(&caches);
    Controller::new(api, watcher::Config::default())
        .with_config(crate::controller_config())
        .watches(Api::<Service>::all(client.clone()), watcher::Config::default(), |svc: Service| {
            Some(
                ObjectRef::<MultiClusterService>::new(svc.metadata.name.as_deref()?)
                    .within(svc.metadata.namespace.as_deref()?),
            )
        })
        .reconcile_all_on(changes)
        .run(
            reconcile,
            error_policy,
            Arc::new(Context { client, caches, events, applied: Default::default() }),
        )
        .for_each(|_| async {})
        .await;
    Ok(())
}

// ---- Load balancer and ingress status

/// `types: [LoadBalancer]`: the MultiClusterService's `status.loadBalancer` is its Service's
/// members' load balancers (the Service's status aggregates them from every member it runs in).
pub fn load_balancer_status(service: Option<&Service>) -> Value {
    let ingress = service
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    json!({"ingress": ingress})
}

/// The backend Services a MultiClusterIngress routes to (default backend and every path).
pub fn ingress_backends(mci: &MultiClusterIngress) -> BTreeSet<String> {
    let spec = &mci.spec;
    let default =
        spec.default_backend.iter().filter_map(|b| Some(b.service.as_ref()?.name.clone()));
    let paths = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .filter_map(|p| Some(p.backend.service.as_ref()?.name.clone()));
    default.chain(paths).collect()
}

/// A MultiClusterIngress's status: the load balancers of the Ingress of its name (aggregated
/// from the members it runs in), per backend Service the clusters it is scheduled to, and
/// which of those a Remedy keeps traffic away from (`trafficBlockClusters`, from `blocked`).
pub fn ingress_status(
    mci: &MultiClusterIngress,
    ingress: Option<&Value>,
    scheduled: &dyn Fn(&str) -> Vec<String>,
    blocked: &BTreeSet<String>,
) -> Value {
    let mut block = BTreeSet::new();
    let load_balancer = ingress
        .and_then(|i| i.pointer("/status/loadBalancer"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let locations: Vec<Value> = ingress_backends(mci)
        .into_iter()
        .map(|service| {
            let clusters = scheduled(&service);
            block.extend(clusters.iter().filter(|c| blocked.contains(*c)).cloned());
            let mut location = json!({"name": service});
            if !clusters.is_empty() {
                location["clusters"] = json!(clusters);
            }
            location
        })
        .collect();
    let mut status = json!({"loadBalancer": load_balancer});
    if !locations.is_empty() {
        status["serviceLocations"] = json!(locations);
    }
    if !block.is_empty() {
        status["trafficBlockClusters"] = json!(block);
    }
    status
}

fn key_of(meta: &kube::api::ObjectMeta) -> (String, String) {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// Keeps the status of LoadBalancer MultiClusterServices and of MultiClusterIngresses
/// current (a level-triggered loop over Services, Ingresses and bindings), until dropped.
pub async fn run_exposure_status(
    client: kube::Client,
    caches: crate::Caches,
) -> anyhow::Result<()> {
    use k8s_openapi::api::networking::v1::Ingress;
    let notify = Arc::new(tokio::sync::Notify::new());
    let (services, w1) =
        crate::shared::cached::<MultiClusterService>(&client, watcher::Config::default(), &notify);
    let (ingresses, w2) =
        crate::shared::cached::<MultiClusterIngress>(&client, watcher::Config::default(), &notify);
    let (plain_services, w3) =
        crate::shared::cached::<Service>(&client, watcher::Config::default(), &notify);
    let (plain_ingresses, w4) =
        crate::shared::cached::<Ingress>(&client, watcher::Config::default(), &notify);
    let _bindings = caches.bindings.notify_on_change(&notify);
    let _clusters = caches.clusters.notify_on_change(&notify);
    loop {
        notify.notified().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if [&w1, &w2, &w3, &w4].iter().any(|w| w.is_finished()) {
            anyhow::bail!("a watch of the exposure status loop stopped");
        }
        let mut failed = false;
        for mcs in services.state() {
            if mcs.metadata.deletion_timestamp.is_some()
                || !mcs.spec.exposes(ExposureType::LoadBalancer)
            {
                continue;
            }
            let (namespace, name) = key_of(&mcs.metadata);
            let service = plain_services.get(&ObjectRef::new(&name).within(&namespace));
            let wanted = load_balancer_status(service.as_deref());
            let current = mcs
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| serde_json::to_value(lb).ok())
                .map(|mut lb| {
                    if lb.get("ingress").is_none() {
                        lb["ingress"] = json!([]);
                    }
                    lb
                });
            if current.as_ref() != Some(&wanted) {
                let api: Api<MultiClusterService> = Api::namespaced(client.clone(), &namespace);
                let patch = json!({"status": {"loadBalancer": wanted}});
                if let Err(e) =
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await
                {
                    tracing::debug!(service = name, error = %e, "MultiClusterService load balancer status");
                    failed = true;
                }
            }
        }
        let bindings = caches.bindings.store();
        let blocked: BTreeSet<String> =
            members(&caches).into_iter().filter(|m| m.traffic_blocked).map(|m| m.name).collect();
        for mci in ingresses.state() {
            if mci.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let (namespace, name) = key_of(&mci.metadata);
            let ingress = plain_ingresses
                .get(&ObjectRef::new(&name).within(&namespace))
                .and_then(|i| serde_json::to_value(i.as_ref()).ok());
            let scheduled = |service: &str| -> Vec<String> {
                let binding_name = propagation::binding_name("Service", service);
                let mut clusters: Vec<String> = bindings
                    .get(&ObjectRef::new(&binding_name).within(&namespace))
                    .iter()
                    .flat_map(|b| b.spec.clusters.iter().map(|c| c.name.clone()))
                    .collect();
                clusters.sort();
                clusters.dedup();
                clusters
            };
            let wanted = ingress_status(&mci, ingress.as_ref(), &scheduled, &blocked);
            let current =
                mci.status.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or_default();
            let differs = current.get("loadBalancer").unwrap_or(&json!({}))
                != &wanted["loadBalancer"]
                || current.get("serviceLocations") != wanted.get("serviceLocations")
                || current.get("trafficBlockClusters") != wanted.get("trafficBlockClusters");
            if differs {
                let api: Api<MultiClusterIngress> = Api::namespaced(client.clone(), &namespace);
                let mut status = wanted;
                for field in ["serviceLocations", "trafficBlockClusters"] {
                    if status.get(field).is_none() {
                        status[field] = Value::Null;
                    }
                }
                let patch = json!({"status": status});
                if let Err(e) =
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await
                {
                    tracing::debug!(ingress = name, error = %e, "MultiClusterIngress status");
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

// ---- endpointsliceDispatch

/// What one MultiClusterService's EndpointSlices are dispatched as.
#[derive(Debug, Default, PartialEq)]
pub struct ServiceDispatch {
    /// The dispatched Works it wants (`namespace/name`).
    pub works: BTreeSet<String>,
    /// Its Events (consumer clusters missing, not Ready...).
    pub events: Vec<(Reason, String)>,
}

/// What the dispatch loop writes, from every MultiClusterService, the Works labelled with one
/// (collected and dispatched) and the clusters.
#[derive(Debug, Default, PartialEq)]
pub struct Dispatch {
    /// The dispatched Works wanted, by `namespace/name`.
    pub works: BTreeMap<String, Value>,
    /// Per MultiClusterService (`namespace/name`) with EndpointSlices collected for it: the
    /// dispatched Works it wants (for its condition) and its Events.
    pub services: BTreeMap<String, ServiceDispatch>,
    /// Collected Works being deleted whose dispatch finalizer can go once the Works
    /// dispatched from them are gone (`namespace/name`).
    pub released: Vec<(String, String)>,
}

fn label<'a>(work: &'a Work, key: &str) -> Option<&'a str> {
    work.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn provision_cluster(work: &Work) -> Option<&str> {
    work.metadata.annotations.as_ref()?.get(names::PROVISION_CLUSTER_ANNOTATION).map(String::as_str)
}

/// The dispatched EndpointSlice Work for `consumer` of a slice collected from `provider`.
pub fn dispatched_work(
    mcs_namespace: &str,
    mcs_name: &str,
    provider: &str,
    consumer: &str,
    slice: &Value,
) -> Value {
    let slice_name = format!("{provider}-{}", apimachinery::object::name(slice));
    let slice_namespace = apimachinery::object::namespace(slice).to_owned();
    let mut manifest = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name, "namespace": slice_namespace,
            "labels": {names::SERVICE_NAME_OF_SLICE_LABEL: mcs_name,
                names::SLICE_MANAGED_BY_LABEL: names::ENDPOINTSLICE_DISPATCH_CONTROLLER},
            "annotations": {names::PROVISION_CLUSTER_ANNOTATION: provider}},
        "addressType": slice["addressType"],
        "endpoints": slice.get("endpoints").cloned().unwrap_or_else(|| json!([])),
    });
    if let Some(ports) = slice.get("ports") {
        manifest["ports"] = ports.clone();
    }
    json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
        "metadata": {"name": names::work_name("EndpointSlice", &slice_name, &slice_namespace),
            "namespace": names::execution_namespace(consumer),
            "labels": {names::MCS_NAME_LABEL: mcs_name, names::MCS_NAMESPACE_LABEL: mcs_namespace},
            "annotations": {names::PROVISION_CLUSTER_ANNOTATION: provider}},
        "spec": {"workload": {"manifests": [manifest]}}})
}

pub fn dispatch(
    services: &[Arc<MultiClusterService>],
    works: &[Arc<Work>],
    members: &[Member],
) -> Dispatch {
    let mut out = Dispatch::default();
    let by_key: HashMap<(String, String), &MultiClusterService> = services
        .iter()
        .filter(|m| {
            m.metadata.deletion_timestamp.is_none() && m.spec.exposes(ExposureType::CrossCluster)
        })
        .map(|m| {
            (
                (
                    m.metadata.namespace.clone().unwrap_or_default(),
                    m.metadata.name.clone().unwrap_or_default(),
                ),
                m.as_ref(),
            )
        })
        .collect();
    // Providers whose endpoints are served: Ready, and no Remedy keeps traffic away.
    let serving: HashSet<&str> = members
        .iter()
        .filter(|m| m.ready && m.endpoint_slices && !m.traffic_blocked)
        .map(|m| m.name.as_str())
        .collect();
    for work in works {
        // Collected ones: in a provider's namespace, not dispatched themselves.
        if provision_cluster(work).is_some()
            || label(work, names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL).is_none()
        {
            continue;
        }
        let work_namespace = work.metadata.namespace.clone().unwrap_or_default();
        if work.metadata.deletion_timestamp.is_some() {
            if work.metadata.finalizers.iter().flatten().any(|f| f == names::MCS_DISPATCH_FINALIZER)
            {
                out.released.push((work_namespace, work.metadata.name.clone().unwrap_or_default()));
            }
            continue;
        }
        let (Some(mcs_namespace), Some(mcs_name)) =
            (label(work, names::MCS_NAMESPACE_LABEL), label(work, names::MCS_NAME_LABEL))
        else {
            continue;
        };
        let Some(mcs) = by_key.get(&(mcs_namespace.to_owned(), mcs_name.to_owned())) else {
            continue;
        };
        let Some(provider) = names::cluster_of_execution_namespace(&work_namespace) else {
            continue;
        };
        let service_key = format!("{mcs_namespace}/{mcs_name}");
        let (providers, consumers) = clusters_of(mcs, members);
        let entry = out.services.entry(service_key).or_default();
        // A provider no longer named or not Ready gives no endpoints (failover).
        if !providers.contains(provider) || !serving.contains(provider) {
            continue;
        }
        for consumer in consumers.iter().filter(|c| c.as_str() != provider) {
            match members.iter().find(|m| &m.name == consumer) {
                None => {
                    entry.events.push((
                        Reason::ClusterNotFound,
                        format!("Consumer cluster {consumer} is not found"),
                    ));
                    continue;
                }
                Some(m) if !m.ready => {
                    entry.events.push((
                        Reason::SyncServiceFailed,
                        format!("Consumer cluster {consumer} is not ready, skip to propagate EndpointSlice"),
                    ));
                    continue;
                }
                Some(m) if !m.endpoint_slices => {
                    entry.events.push((
                        Reason::APIIncompatible,
                        format!("Consumer cluster {consumer} does not support EndpointSlice"),
                    ));
                    continue;
                }
                Some(_) => {}
            }
            for slice in work
                .spec
                .workload
                .manifests
                .iter()
                .map(|m| m.value())
                .filter(|m| m["kind"] == "EndpointSlice")
            {
                let dispatched =
                    dispatched_work(mcs_namespace, mcs_name, provider, consumer, &slice);
                let key = format!(
                    "{}/{}",
                    dispatched["metadata"]["namespace"].as_str().unwrap_or_default(),
                    dispatched["metadata"]["name"].as_str().unwrap_or_default()
                );
                entry.works.insert(key.clone());
                out.works.insert(key, dispatched);
            }
        }
        entry.events.sort_by(|a, b| a.1.cmp(&b.1));
        entry.events.dedup();
    }
    out
}

/// Runs the `endpointsliceDispatch` loop until the future is dropped.
pub async fn run_dispatch(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let (services, service_watch) =
        crate::shared::cached::<MultiClusterService>(&client, watcher::Config::default(), &notify);
    let (works, work_watch) = crate::shared::cached::<Work>(
        &client,
        watcher::Config::default().labels(names::MCS_NAME_LABEL),
        &notify,
    );
    let _clusters = caches.clusters.notify_on_change(&notify);
    let events = crate::events::Events::start(client.clone(), "endpointslice-dispatch-controller");
    let mut applied = Applied::default();
    // The Events last recorded per MultiClusterService (recorded again when they change).
    let mut recorded: HashMap<String, Vec<(Reason, String)>> = HashMap::new();
    loop {
        notify.notified().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if service_watch.is_finished() || work_watch.is_finished() {
            anyhow::bail!("a watch of the endpointslice dispatch loop stopped");
        }
        let service_list = services.state();
        let work_list = works.state();
        let members = members(&caches);
        let plan = dispatch(&service_list, &work_list, &members);
        let mut failed_keys: HashSet<String> = HashSet::new();
        let mut written_keys: HashSet<String> = HashSet::new();
        let existing: HashMap<String, &Arc<Work>> = work_list
            .iter()
            .filter(|w| provision_cluster(w).is_some())
            .map(|w| {
                (
                    format!(
                        "{}/{}",
                        w.metadata.namespace.as_deref().unwrap_or_default(),
                        w.metadata.name.as_deref().unwrap_or_default()
                    ),
                    w,
                )
            })
            .collect();
        applied.retain(|k| plan.works.contains_key(k));
        for (key, work) in &plan.works {
            let exists = existing.get(key).is_some_and(|w| w.metadata.deletion_timestamp.is_none());
            if !applied.needs(key, work, exists) {
                continue;
            }
            let api: Api<Work> = Api::namespaced(
                client.clone(),
                work["metadata"]["namespace"].as_str().unwrap_or_default(),
            );
            let name = work["metadata"]["name"].as_str().unwrap_or_default();
            match api
                .patch(name, &PatchParams::apply(DISPATCH_MANAGER).force(), &Patch::Apply(work))
                .await
            {
                Ok(_) => {
                    applied.record(key, work);
                    written_keys.insert(key.clone());
                }
                Err(e) => {
                    tracing::debug!(work = key, error = %e, "dispatch EndpointSlice");
                    failed_keys.insert(key.clone());
                }
            }
        }
        let mut failed = !failed_keys.is_empty();
        let mut removing: HashSet<(String, String)> = HashSet::new();
        for (key, w) in &existing {
            if plan.works.contains_key(key) {
                continue;
            }
            if let Some(provider) = provision_cluster(w) {
                removing.insert((provider.to_owned(), w.metadata.name.clone().unwrap_or_default()));
            }
            if w.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let api: Api<Work> = Api::namespaced(
                client.clone(),
                w.metadata.namespace.as_deref().unwrap_or_default(),
            );
            match api
                .delete(w.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::debug!(work = key, error = %e, "remove dispatched EndpointSlice");
                    failed = true;
                }
            }
        }
        // A collected Work being deleted lets go once nothing dispatched from it is left.
        if !failed {
            for (namespace, name) in &plan.released {
                let api: Api<Work> = Api::namespaced(client.clone(), namespace);
                let Some(w) = work_list.iter().find(|w| {
                    w.metadata.namespace.as_deref() == Some(namespace.as_str())
                        && w.metadata.name.as_deref() == Some(name.as_str())
                }) else {
                    continue;
                };
                let finalizers = w.metadata.finalizers.clone().unwrap_or_default();
                if let Err(e) = crate::set_finalizer(
                    &api,
                    name,
                    &finalizers,
                    names::MCS_DISPATCH_FINALIZER,
                    false,
                )
                .await
                    && !matches!(&e, kube::Error::Api(s) if s.code == 404)
                {
                    tracing::debug!(work = name, error = %e, "release collected EndpointSlice");
                    failed = true;
                }
            }
        }
        // Conditions and Events per MultiClusterService.
        for (key, ServiceDispatch { works: wanted, events: service_events }) in &plan.services {
            let Some((namespace, name)) = key.split_once('/') else { continue };
            let Some(mcs) = services.get(&ObjectRef::new(name).within(namespace)) else {
                continue;
            };
            let regarding = crate::events::reference_of(mcs.as_ref());
            if recorded.get(key) != Some(service_events) {
                for (reason, message) in service_events {
                    events.record(regarding.clone(), *reason, message.clone());
                }
                recorded.insert(key.clone(), service_events.clone());
            }
            let failures: Vec<&String> =
                wanted.iter().filter(|k| failed_keys.contains(*k)).collect();
            let ok = failures.is_empty();
            let (reason, message, event) = if ok {
                (
                    "EndpointSliceDispatchedSucceed",
                    "EndpointSlice are dispatched successfully".to_owned(),
                    Reason::DispatchEndpointSliceSucceed,
                )
            } else {
                (
                    "EndpointSliceDispatchedFailed",
                    format!(
                        "failed to dispatch {} EndpointSlice Work(s), first {}",
                        failures.len(),
                        failures[0]
                    ),
                    Reason::DispatchEndpointSliceFailed,
                )
            };
            let status = mcs.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
            let wanted_condition =
                condition(status.as_ref(), ENDPOINT_SLICE_DISPATCHED, ok, reason, &message);
            let api: Api<MultiClusterService> = Api::namespaced(
                client.clone(),
                mcs.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let changed = match set_condition(&api, &mcs, wanted_condition).await {
                Ok(changed) => changed,
                Err(e) => {
                    tracing::debug!(service = key, error = %e, "EndpointSliceDispatched condition");
                    failed = true;
                    false
                }
            };
            if changed || !ok || wanted.iter().any(|k| written_keys.contains(k)) {
                events.record(regarding, event, message);
            }
        }
        recorded.retain(|k, _| plan.services.contains_key(k));
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mcs(providers: &[&str], consumers: &[&str]) -> MultiClusterService {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {names::MCS_PERMANENT_ID_LABEL: "id-1"}},
            "spec": {"types": ["CrossCluster"],
                "providerClusters": providers.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                "consumerClusters": consumers.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    fn member(name: &str, ready: bool) -> Member {
        Member { name: name.into(), ready, endpoint_slices: true, traffic_blocked: false }
    }

    #[test]
    fn providers_get_the_service_and_missing_clusters_are_reported() {
        let members = [member("member1", true), member("member2", true), member("member3", false)];
        let p = plan(&mcs(&["member1", "member3", "gone"], &["member2"]), &members);
        assert_eq!(p.placement, ["gone", "member1", "member2", "member3"].map(String::from).into());
        assert_eq!(p.works.keys().collect::<Vec<_>>(), ["member1"], "only Ready providers");
        let work = &p.works["member1"];
        assert_eq!(work["metadata"]["namespace"], "karmada-es-member1");
        assert_eq!(work["metadata"]["labels"][names::MCS_PERMANENT_ID_LABEL], "id-1");
        assert_eq!(work["spec"]["suspendDispatching"], true);
        assert_eq!(work["spec"]["workload"]["manifests"][0]["kind"], "MultiClusterService");
        let reasons: Vec<(Reason, &str)> = p.events.iter().map(|(r, m)| (*r, m.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (Reason::ClusterNotFound, "Provider cluster gone is not found"),
                (
                    Reason::SyncServiceFailed,
                    "Provider cluster member3 is not ready, skip to propagate MultiClusterService"
                ),
            ]
        );
        // Empty lists: every cluster.
        let all = plan(&mcs(&[], &[]), &members);
        assert_eq!(all.placement.len(), 3);
        assert_eq!(all.works.len(), 2);
    }

    #[test]
    fn the_service_is_claimed_from_its_policy_and_released() {
        let service: Service = serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop", "uid": "s1",
            "labels": {names::PP_PERMANENT_ID_LABEL: "pp"}, "annotations": {names::PP_NAME_ANNOTATION: "pp"}}}))
        .unwrap();
        let m = mcs(&["member1"], &["member2"]);
        let patch = claim_patch(&m, &service).unwrap();
        assert_eq!(patch["metadata"]["labels"][names::CLAIMED_BY_LABEL], "MultiClusterService");
        assert_eq!(patch["metadata"]["labels"][names::PP_PERMANENT_ID_LABEL], Value::Null);
        assert_eq!(patch["metadata"]["annotations"][names::MCS_NAME_ANNOTATION], "web");
        let mut claimed = serde_json::to_value(&service).unwrap();
        json_patch::merge(&mut claimed, &patch);
        let claimed: Service = serde_json::from_value(claimed).unwrap();
        assert_eq!(claim_patch(&m, &claimed), None, "claimed once");
        let release = release_patch(
            claimed.metadata.labels.as_ref().unwrap(),
            claimed.metadata.annotations.as_ref().unwrap(),
        )
        .unwrap();
        assert_eq!(release["metadata"]["labels"][names::CLAIMED_BY_LABEL], Value::Null);
        let binding =
            service_binding(&m, &claimed, &["member1".to_owned(), "member2".to_owned()].into());
        assert_eq!(binding["metadata"]["name"], propagation::binding_name("Service", "web"));
        assert_eq!(
            binding["metadata"]["labels"][names::BINDING_MANAGED_BY_LABEL],
            "MultiClusterService"
        );
        assert_eq!(
            binding["spec"]["placement"]["clusterAffinity"]["clusterNames"],
            json!(["member1", "member2"])
        );
        assert_eq!(binding["spec"]["conflictResolution"], "Overwrite");
        assert_eq!(binding["spec"]["resource"]["uid"], "s1");
    }

    fn collected(cluster: &str, deleting: bool) -> Arc<Work> {
        let mut w = json!({"metadata": {"name": "web-abcde-x", "namespace": names::execution_namespace(cluster),
                "labels": {names::MCS_NAME_LABEL: "web", names::MCS_NAMESPACE_LABEL: "shop",
                    names::ENDPOINTSLICE_WORK_MANAGED_BY_LABEL: "MultiClusterService"},
                "finalizers": [names::MCS_DISPATCH_FINALIZER]},
            "spec": {"workload": {"manifests": [{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abcde", "namespace": "shop"}, "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.10.0.5"]}]}]}}});
        if deleting {
            w["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
        }
        Arc::new(serde_json::from_value(w).unwrap())
    }

    #[test]
    fn slices_go_from_ready_providers_to_the_other_consumers() {
        let services = [Arc::new(mcs(&["member1", "member2"], &[]))];
        let members = [member("member1", true), member("member2", true), member("member3", true)];
        let works = [collected("member1", false), collected("member2", false)];
        let d = dispatch(&services, &works, &members);
        // member1's slice to member2 and member3, member2's to member1 and member3.
        assert_eq!(d.works.len(), 4, "{:#?}", d.works.keys());
        let to_member3: Vec<&Value> = d
            .works
            .values()
            .filter(|w| w["metadata"]["namespace"] == "karmada-es-member3")
            .collect();
        let mut names: Vec<&str> = to_member3
            .iter()
            .map(|w| w["spec"]["workload"]["manifests"][0]["metadata"]["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["member1-web-abcde", "member2-web-abcde"]);
        let slice = &to_member3[0]["spec"]["workload"]["manifests"][0];
        assert_eq!(slice["metadata"]["labels"][names::SERVICE_NAME_OF_SLICE_LABEL], "web");
        assert_eq!(
            slice["metadata"]["labels"][names::SLICE_MANAGED_BY_LABEL],
            names::ENDPOINTSLICE_DISPATCH_CONTROLLER
        );
        assert_eq!(slice["endpoints"][0]["addresses"][0], "10.10.0.5");
        assert_eq!(d.services["shop/web"].works.len(), 4);

        // member1 unreachable: its endpoints are withdrawn everywhere.
        let failed_over =
            [member("member1", false), member("member2", true), member("member3", true)];
        let d = dispatch(&services, &works, &failed_over);
        assert!(d.works.values().all(|w| w["metadata"]["annotations"]
            [names::PROVISION_CLUSTER_ANNOTATION]
            == "member2"));
        assert!(
            d.services["shop/web"].events.iter().any(|(r, _)| *r == Reason::SyncServiceFailed),
            "member1 as consumer is not ready"
        );

        // A Remedy keeps traffic away from member2: its endpoints are withdrawn too.
        let mut remedied = members.clone();
        remedied[1].traffic_blocked = true;
        let d = dispatch(&services, &works, &remedied);
        assert!(d.works.values().all(|w| w["metadata"]["annotations"]
            [names::PROVISION_CLUSTER_ANNOTATION]
            == "member1"));

        // No MultiClusterService: nothing; a collected Work being deleted is released.
        let d = dispatch(&[], &[collected("member1", true)], &members);
        assert!(d.works.is_empty());
        assert_eq!(d.released, [("karmada-es-member1".to_owned(), "web-abcde-x".to_owned())]);
    }

    #[test]
    fn load_balancers_and_ingress_locations_are_reported() {
        let service: Service = serde_json::from_value(json!({"metadata": {"name": "web"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.1"}, {"ip": "172.18.3.4"}]}}}))
        .unwrap();
        assert_eq!(
            load_balancer_status(Some(&service)),
            json!({"ingress": [{"ip": "172.18.0.1"}, {"ip": "172.18.3.4"}]})
        );
        assert_eq!(load_balancer_status(None), json!({"ingress": []}));
        let mci: MultiClusterIngress =
            serde_json::from_value(json!({"metadata": {"name": "shop", "namespace": "shop"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
                "rules": [{"http": {"paths": [{"path": "/api", "pathType": "Prefix",
                    "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}))
            .unwrap();
        let ingress = json!({"status": {"loadBalancer": {"ingress": [{"ip": "172.19.0.9"}]}}});
        let scheduled = |s: &str| -> Vec<String> {
            if s == "web" { vec!["member1".into(), "member2".into()] } else { vec![] }
        };
        let status = ingress_status(&mci, Some(&ingress), &scheduled, &BTreeSet::new());
        assert_eq!(
            status,
            json!({"loadBalancer": {"ingress": [{"ip": "172.19.0.9"}]},
                "serviceLocations": [{"name": "api"}, {"name": "web", "clusters": ["member1", "member2"]}]})
        );
        // A Remedy keeps traffic away from member2 (and member9, which runs none of it).
        let blocked: BTreeSet<String> = ["member2".to_owned(), "member9".to_owned()].into();
        let status = ingress_status(&mci, Some(&ingress), &scheduled, &blocked);
        assert_eq!(status["trafficBlockClusters"], json!(["member2"]));
    }
}
