//! The binding controller: for each scheduled ResourceBinding or ClusterResourceBinding, render
//! the template once per target cluster (server-owned metadata and status stripped, that
//! cluster's replica share and Job completions, override policies applied, the binding's
//! conflict resolution and `karmada.io/managed` stamped) and write a Work into the cluster's
//! execution namespace; Works of clusters no longer targeted are deleted. A binding's targets
//! are its scheduled clusters plus the clusters of the bindings that require it
//! (`spec.requiredBy`, dependencies propagated with their workload).
//!
//! Policies, clusters and Works are read from watch caches; a reconcile makes no write when
//! nothing changed.

use karmada_api::events::{PolicyName, Reason, message};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use karmada_api::cluster::Cluster;
use karmada_api::policy::{ClusterOverridePolicy, OverridePolicy, PurgeMode};
use karmada_api::work::{
    AggregatedStatusItem, ClusterResourceBinding, ResourceBinding, ResourceBindingSpec,
    ResourceBindingStatus, Work,
};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use propagation::overrides::OverridePolicyRef;
use serde_json::{Value, json};

use crate::lean::LeanObject;
use crate::shared::{Change, Watched};
use crate::{Binding, execution_namespace};
use karmada_api::names;
pub use propagation::works::{
    BindingRef, WorkInputs, dispatch_suspended, mark_manifest, split_completions, strip,
    work_targets, works_for,
};

pub const MANAGED_LABEL: &str = names::MANAGED_LABEL;
pub const FINALIZER: &str = names::BINDING_FINALIZER;
/// The binding condition saying whether every override policy could be applied.
pub const OVERRIDES_CONDITION: &str = "OverridesApplied";
/// The binding condition about the resource interpreter's customizations.
pub const INTERPRETED_CONDITION: &str = "Interpreted";
/// The annotation on a Work's manifest that lets it overwrite an existing unmanaged object.
pub const CONFLICT_ANNOTATION: &str = names::CONFLICT_RESOLUTION_ANNOTATION;

/// The key of a binding in the Work index: `rb:<namespace>/<name>` or `crb:<name>`.
fn owner_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("rb:{ns}/{name}"),
        None => format!("crb:{name}"),
    }
}

/// The owning binding of a Work.
fn owner_of(work: &Work) -> Option<String> {
    owning_binding(work).map(|(name, ns)| owner_key(ns, name))
}

/// The name and (for a ResourceBinding) namespace of a Work's binding: from its annotations,
/// or the labels earlier versions wrote.
pub fn owning_binding(work: &Work) -> Option<(&str, Option<&str>)> {
    fn from<'m>(
        map: Option<&'m BTreeMap<String, String>>,
        name_key: &str,
        ns_key: &str,
        cluster_key: &str,
    ) -> Option<(&'m str, Option<&'m str>)> {
        let map = map?;
        match (map.get(name_key), map.get(ns_key)) {
            (Some(name), Some(ns)) => Some((name.as_str(), Some(ns.as_str()))),
            _ => map.get(cluster_key).map(|n| (n.as_str(), None)),
        }
    }
    from(
        work.metadata.annotations.as_ref(),
        names::RB_NAME_ANNOTATION,
        names::RB_NAMESPACE_ANNOTATION,
        names::CRB_NAME_ANNOTATION,
    )
    .or_else(|| {
        from(
            work.metadata.labels.as_ref(),
            names::LEGACY_RB_NAME_LABEL,
            names::LEGACY_RB_NAMESPACE_LABEL,
            names::LEGACY_CRB_NAME_LABEL,
        )
    })
}

/// Removes a Work that was renamed (an earlier version's name) without touching what it
/// applied: the Work under its new name manages the same member object.
pub async fn retire_renamed_work(api: &Api<Work>, name: &str) -> Result<(), kube::Error> {
    let preserve = json!({"spec": {"preserveResourcesOnDeletion": true}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&preserve)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

type WorkKey = (String, String);
type ByOwner = HashMap<String, std::collections::HashSet<WorkKey>>;

/// Works by owning binding, kept from the Work watch. It may hold Works that are gone (the
/// store is the truth, looked up by the keys found here) but never misses one: a relist
/// replaces it only once the new list is complete.
#[derive(Default)]
pub struct WorkIndex {
    /// The index, and the one being rebuilt while a relist is in progress.
    inner: Mutex<(ByOwner, Option<ByOwner>)>,
}

impl WorkIndex {
    fn key(work: &Work) -> Option<(String, WorkKey)> {
        let owner = owner_of(work)?;
        Some((owner, (work.metadata.namespace.clone()?, work.metadata.name.clone()?)))
    }

    pub fn observe(&self, change: &Change<Work>) {
        let Ok(mut guard) = self.inner.lock() else { return };
        let (current, relist) = &mut *guard;
        match change {
            Change::Applied(w) => {
                if let Some((owner, key)) = Self::key(w) {
                    current.entry(owner).or_default().insert(key);
                }
            }
            Change::Deleted(w) => {
                if let Some((owner, key)) = Self::key(w)
                    && let Some(set) = current.get_mut(&owner)
                {
                    set.remove(&key);
                    if set.is_empty() {
                        current.remove(&owner);
                    }
                }
            }
            Change::Relisting => *relist = Some(HashMap::new()),
            Change::Listed(w) => {
                if let Some((owner, key)) = Self::key(w) {
                    current.entry(owner.clone()).or_default().insert(key.clone());
                    if let Some(fresh) = relist.as_mut() {
                        fresh.entry(owner).or_default().insert(key);
                    }
                }
            }
            Change::Relisted => {
                if let Some(fresh) = relist.take() {
                    *current = fresh;
                }
            }
        }
    }

    pub fn works_of(&self, owner: &str) -> Vec<WorkKey> {
        self.inner
            .lock()
            .map(|g| g.0.get(owner).map(|s| s.iter().cloned().collect()).unwrap_or_default())
            .unwrap_or_default()
    }
}

struct Context {
    client: kube::Client,
    ops: Store<OverridePolicy>,
    cops: Store<ClusterOverridePolicy>,
    clusters: Store<Cluster>,
    works: Store<Work>,
    /// Whether `works` holds its first list.
    works_ready: tokio::sync::watch::Receiver<bool>,
    work_index: Arc<WorkIndex>,
    kinds: crate::KindCache,
    /// The detector's templates: a binding renders from here (a GET only when the cache is
    /// older than the template version the binding records).
    templates: Arc<crate::templates::Templates>,
    /// Template status written here, by template: (the resourceVersion it produced, the
    /// status). Used while the cache still shows an older version.
    template_statuses: Mutex<HashMap<String, (String, Value)>>,
    /// Bumped on every change that can alter a rendering (an override policy, a cluster's
    /// labels or location, a cluster added or removed).
    epoch: Arc<AtomicU64>,
    /// What each binding's last complete rendering was made from: a reconcile caused only by
    /// its Works' status (most of them) skips straight to the status aggregation.
    rendered: Mutex<HashMap<String, Rendered>>,
    /// Status written here, by binding: (the resourceVersion it was written over, the status).
    /// Kept only until the cache shows another version.
    own_statuses: Mutex<HashMap<String, (String, Arc<ResourceBindingStatus>)>>,
    events: crate::events::Events,
    parts: crate::registry::BindingParts,
    interpreter: Arc<crate::interpreting::Interpreting>,
}

/// The inputs of a binding's rendering: the policy/cluster epoch, the binding's uid and
/// generation (its spec, including the template version it records), and each of its Works'
/// generation and deletion state by execution namespace.
#[derive(Clone, PartialEq, Debug)]
struct Rendered {
    epoch: u64,
    uid: String,
    generation: i64,
    works: BTreeMap<String, (i64, bool)>,
}

impl Rendered {
    fn of(epoch: u64, meta: &kube::core::ObjectMeta, works: &[Arc<Work>]) -> Self {
        Rendered {
            epoch,
            uid: meta.uid.clone().unwrap_or_default(),
            generation: meta.generation.unwrap_or(0),
            works: works
                .iter()
                .map(|w| {
                    (
                        w.metadata.namespace.clone().unwrap_or_default(),
                        (
                            w.metadata.generation.unwrap_or(0),
                            w.metadata.deletion_timestamp.is_some(),
                        ),
                    )
                })
                .collect(),
        }
    }
}

impl Context {
    /// The template's status as last known here: the one written here while the cache lags
    /// behind that write, else the cached one.
    fn template_status(&self, key: &str, template: &LeanObject) -> Value {
        let cached = template.field("status").unwrap_or(Value::Null);
        let Ok(mut own) = self.template_statuses.lock() else { return cached };
        match own.get(key) {
            Some((rv, status))
                if !crate::rv_at_least(template.metadata.resource_version.as_deref(), rv) =>
            {
                status.clone()
            }
            Some(_) => {
                own.remove(key);
                cached
            }
            None => cached,
        }
    }

    fn remember_template_status(&self, key: String, updated: &LeanObject) {
        if let (Ok(mut own), Some(rv), Some(status)) = (
            self.template_statuses.lock(),
            updated.metadata.resource_version.clone(),
            updated.field("status"),
        ) {
            own.insert(key, (rv, status));
        }
    }

    /// The API resource of a kind (discovered once).
    async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, kube::Error> {
        self.kinds.resource(&self.client, gvk).await
    }

    /// The binding status last written here, if the cache still shows the version that write
    /// replaced (`cached_rv`); otherwise the cache is at least as new and the entry goes.
    fn own_status(
        &self,
        owner: &str,
        cached_rv: Option<&str>,
    ) -> Option<Arc<ResourceBindingStatus>> {
        let mut own = self.own_statuses.lock().ok()?;
        match own.get(owner) {
            Some((over, status)) if Some(over.as_str()) == cached_rv => Some(Arc::clone(status)),
            Some(_) => {
                own.remove(owner);
                None
            }
            None => None,
        }
    }

    fn remember_own_status(&self, owner: String, over: Option<&str>, updated: &DynamicObject) {
        let status = updated
            .data
            .get("status")
            .and_then(|s| serde_json::from_value::<ResourceBindingStatus>(s.clone()).ok());
        if let (Ok(mut own), Some(over), Some(status)) = (self.own_statuses.lock(), over, status) {
            own.insert(owner, (over.to_owned(), Arc::new(status)));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("the binding changed while its status was being written")]
    Stale,
}

/// Asks the interpreter (customizations and webhooks may answer) for every revision the
/// binding's Works need.
async fn revise(
    ctx: &Context,
    template: &Value,
    spec: &ResourceBindingSpec,
) -> propagation::works::Revisions {
    let mut out = propagation::works::Revisions::new();
    let needed = propagation::works::revisions_needed(spec);
    if needed.is_empty() {
        return out;
    }
    let base = propagation::works::base_manifest(template, spec);
    for replicas in needed {
        let revised = ctx.interpreter.revise_replica(&base, i64::from(replicas)).await;
        out.insert(replicas, revised.map_err(|f| f.to_string()));
    }
    out
}

/// The Works this binding wants (`works_for`), from the cached override policies and
/// clusters and the Works that exist (their permanent ids).
fn plan_works(
    ctx: &Context,
    binding: BindingRef<'_>,
    spec: &ResourceBindingSpec,
    template: &Value,
    template_meta: &kube::core::ObjectMeta,
    targets: &BTreeMap<String, i32>,
    existing: &[Arc<Work>],
    revisions: &propagation::works::Revisions,
) -> propagation::works::WorkPlan {
    let namespace = binding.namespace.unwrap_or_default();
    let ops = ctx.ops.state();
    let cops = ctx.cops.state();
    let op_refs: Vec<OverridePolicyRef<'_>> = ops
        .iter()
        .filter(|p| !namespace.is_empty() && p.metadata.namespace.as_deref() == Some(namespace))
        .map(|p| OverridePolicyRef::namespaced(p))
        .collect();
    let cop_refs: Vec<OverridePolicyRef<'_>> =
        cops.iter().map(|p| OverridePolicyRef::cluster(p)).collect();
    let clusters: BTreeMap<String, scheduler::ClusterInfo> = targets
        .keys()
        .filter_map(|c| ctx.clusters.get(&ObjectRef::new(c)))
        .map(|c| {
            let info = scheduler::ClusterInfo::identity(&c);
            (info.name.clone(), info)
        })
        .collect();
    let work_ids: BTreeMap<String, String> = existing
        .iter()
        .filter_map(|w| {
            let id = w.metadata.labels.as_ref()?.get(names::WORK_PERMANENT_ID_LABEL)?;
            Some((w.metadata.namespace.clone()?, id.clone()))
        })
        .collect();
    works_for(&WorkInputs {
        binding,
        spec,
        template,
        template_meta,
        clusters: &clusters,
        cluster_overrides: &cop_refs,
        namespaced_overrides: &op_refs,
        work_ids: &work_ids,
        revisions,
    })
}

/// Events for the override policies a plan applied and could not apply; the failures, as the
/// `OverridesApplied` condition words them.
fn report_plan(
    ctx: &Context,
    binding: &str,
    spec: &ResourceBindingSpec,
    plan: &propagation::works::WorkPlan,
) -> Vec<String> {
    let template_ref = crate::events::template_reference(&spec.resource);
    for applied in &plan.applied {
        let policy = PolicyName {
            namespace: (!applied.namespace.is_empty()).then_some(applied.namespace.as_str()),
            name: &applied.policy,
        };
        ctx.events.record(
            template_ref.clone(),
            Reason::ApplyOverridePolicySucceed,
            message::apply_override_policy(policy, &applied.cluster, true),
        );
    }
    let mut failures = Vec::new();
    for failure in &plan.failures {
        let policy = PolicyName {
            namespace: (!failure.namespace.is_empty()).then_some(failure.namespace.as_str()),
            name: &failure.policy,
        };
        ctx.events.record(
            template_ref.clone(),
            Reason::ApplyOverridePolicyFailed,
            message::apply_override_policy(policy, &failure.cluster, false),
        );
        tracing::warn!(%binding, cluster = %failure.cluster, policy = %failure.policy, error = %failure.message, "override failed; this cluster's copy is not updated");
        failures.push(format!(
            "cluster {}: override policy {} cannot be applied: {}",
            failure.cluster, failure.policy, failure.message
        ));
    }
    failures
}

/// Writes the planned Works that differ from the existing ones (server-side apply); returns
/// each written Work's execution namespace and generation.
async fn write_works<B: Binding>(
    ctx: &Context,
    rb: &B,
    plan: &propagation::works::WorkPlan,
    existing: &[Arc<Work>],
    work_name: &str,
) -> Result<Vec<(String, i64)>, Error> {
    let mut written_works = Vec::new();
    for planned in &plan.works {
        let es = execution_namespace(&planned.cluster);
        let current = existing.iter().find(|w| w.metadata.namespace.as_deref() == Some(&es));
        // Compared as JSON values: the stored manifest's keys may come in another order.
        if current.is_some_and(|w| {
            w.metadata.deletion_timestamp.is_none()
                && serde_json::to_value(&w.spec).ok()
                    == serde_json::to_value(&planned.work.spec).ok()
        }) {
            continue;
        }
        let api: Api<Work> = Api::namespaced(ctx.client.clone(), &es);
        let written = match api
            .patch(
                work_name,
                &PatchParams::apply("karmada-binding-controller").force(),
                &Patch::Apply(&planned.work),
            )
            .await
        {
            Ok(written) => written,
            Err(e) => {
                ctx.events.record_binding(rb, Reason::SyncWorkFailed, &e.to_string());
                return Err(e.into());
            }
        };
        written_works.push((es, written.metadata.generation.unwrap_or(0)));
    }
    Ok(written_works)
}

/// The API of a binding kind, for patches of either scope.
async fn reconcile<B: Binding>(rb: Arc<B>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Read before the caches: a change after this point bumps it again.
    let epoch = ctx.epoch.load(Ordering::Acquire);
    let namespace = rb.meta().namespace.clone();
    let name = rb.meta().name.clone().unwrap_or_default();
    let spec = rb.spec();
    let resource = &spec.resource;
    let work_name = names::work_name(&resource.kind, &resource.name, &resource.namespace);
    let binding_ref = BindingRef::of(rb.meta());
    // This binding's Works, from the index of Works by owning binding (not a lookup in every
    // cluster's execution namespace: that cost grew with the clusters on every reconcile).
    let owner = owner_key(namespace.as_deref(), &name);
    let deleting = rb.meta().deletion_timestamp.is_some();
    // Until the Work cache holds its first list (after a restart: tens of thousands of Works),
    // a binding that changed is not held back behind it. Its Works are read one by one from
    // the clusters it targets, and what needs all of them (removing Works, completing
    // evictions, the status aggregation) waits for the cache.
    let partial = !*ctx.works_ready.borrow();
    if partial && deleting {
        return Ok(Action::requeue(PARTIAL_RETRY));
    }
    let (mut existing, renamed): (Vec<Arc<Work>>, Vec<Arc<Work>>) = if partial {
        (works_by_name(&ctx, spec, &work_name, &owner).await?, Vec::new())
    } else {
        ctx.work_index
            .works_of(&owner)
            .into_iter()
            .filter_map(|(es, work)| ctx.works.get(&ObjectRef::new(&work).within(&es)))
            .filter(|w| owner_of(w).as_deref() == Some(owner.as_str()))
            .partition(|w| w.metadata.name.as_deref() == Some(work_name.as_str()))
    };
    // Works named by an earlier version go, leaving their member objects to the new Works
    // (unless the binding goes: then they are deleted like the others).
    if deleting {
        existing.extend(renamed);
    } else if ctx.parts.render {
        for work in &renamed {
            if work.metadata.deletion_timestamp.is_none() {
                let api: Api<Work> = Api::namespaced(
                    ctx.client.clone(),
                    work.metadata.namespace.as_deref().unwrap_or_default(),
                );
                retire_renamed_work(&api, work.metadata.name.as_deref().unwrap_or_default())
                    .await?;
            }
        }
    }
    let targets = if deleting { BTreeMap::new() } else { work_targets(spec) };
    // Clusters being evicted gracefully (or never purged) keep their Work for now.
    let keep: std::collections::BTreeSet<String> = if deleting {
        Default::default()
    } else {
        spec.graceful_eviction_tasks
            .iter()
            .filter(|t| !t.purge_mode.is_direct())
            .map(|t| t.from_cluster.clone())
            .collect()
    };
    // Works of clusters no longer targeted go (all of them are known only from the cache).
    for work in existing.iter().filter(|_| ctx.parts.render && !partial) {
        let work_ns = work.metadata.namespace.as_deref().unwrap_or_default();
        let cluster = names::cluster_of_execution_namespace(work_ns).unwrap_or_default();
        if !targets.contains_key(cluster)
            && !keep.contains(cluster)
            && work.metadata.deletion_timestamp.is_none()
        {
            let api: Api<Work> = Api::namespaced(ctx.client.clone(), work_ns);
            let own_name = work.metadata.name.as_deref().unwrap_or_default();
            match api.delete(own_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let bindings = crate::binding_api::<B>(&ctx.client, namespace.as_deref());
    let finalizers = rb.meta().finalizers.clone().unwrap_or_default();
    if deleting && !ctx.parts.render {
        return Ok(Action::await_change());
    }
    if deleting {
        if let Ok(mut rendered) = ctx.rendered.lock() {
            rendered.remove(&owner_key(namespace.as_deref(), &name));
        }
        // Works go first (their own finalizers clean the members), then the binding.
        if !existing.is_empty() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        crate::set_finalizer(&bindings, &name, &finalizers, FINALIZER, false).await?;
        return Ok(Action::await_change());
    }
    if ctx.parts.render {
        crate::set_finalizer(&bindings, &name, &finalizers, FINALIZER, true).await?;
    }
    if targets.is_empty() {
        return Ok(Action::await_change());
    }
    let (group, version) =
        resource.api_version.split_once('/').unwrap_or(("", resource.api_version.as_str()));
    let ar = ctx.resource(&GroupVersionKind::gvk(group, version, &resource.kind)).await?;
    let templates: Api<LeanObject> = if resource.namespace.is_empty() {
        Api::all_with(ctx.client.clone(), &ar)
    } else {
        Api::namespaced_with(ctx.client.clone(), &resource.namespace, &ar)
    };
    let cached = ctx.templates.get(&ar, &resource.namespace, &resource.name).filter(|t| {
        crate::rv_at_least(t.metadata.resource_version.as_deref(), &resource.resource_version)
    });
    let template = match cached {
        Some(t) => t,
        None => match templates.get_opt(&resource.name).await? {
            Some(t) => t,
            None => return Ok(Action::requeue(Duration::from_secs(1))),
        },
    };
    let mut inputs = Rendered::of(epoch, rb.meta(), &existing);
    let unchanged = ctx.rendered.lock().is_ok_and(|r| r.get(&owner) == Some(&inputs));
    // Works written now have no status yet: their watch events bring the binding back here
    // for the aggregation (by then the cache also shows the scheduler's status write).
    let mut wrote_works = false;
    if !unchanged && ctx.parts.render {
        let mut object = template.to_value();
        object["apiVersion"] = json!(ar.api_version);
        object["kind"] = json!(ar.kind);
        let revisions = revise(&ctx, &object, spec).await;
        let plan = plan_works(
            &ctx,
            binding_ref,
            spec,
            &object,
            &template.metadata,
            &targets,
            &existing,
            &revisions,
        );
        let override_failures = report_plan(&ctx, &name, spec, &plan);
        for (es, generation) in write_works::<B>(&ctx, &rb, &plan, &existing, &work_name).await? {
            inputs.works.insert(es, (generation, false));
            wrote_works = true;
        }
        report_step::<B>(&ctx, &rb, &OVERRIDES, &override_failures).await?;
        let revise_failures: Vec<String> = plan
            .revise_failures
            .iter()
            .map(|f| format!("cluster {}: {}", f.cluster, f.message))
            .collect();
        report_step::<B>(&ctx, &rb, &INTERPRETED, &revise_failures).await?;
        let override_failures: Vec<String> =
            override_failures.into_iter().chain(revise_failures).collect();
        if override_failures.is_empty() {
            ctx.events.record_binding(
                rb.as_ref(),
                Reason::SyncWorkSucceed,
                &message::sync_work_succeed(rb.meta().namespace.as_deref(), &name),
            );
        }
        if let Ok(mut rendered) = ctx.rendered.lock() {
            if override_failures.is_empty() && !partial {
                rendered.insert(owner.clone(), inputs);
            } else {
                rendered.remove(&owner);
            }
        }
    }
    if partial {
        return Ok(Action::requeue(PARTIAL_RETRY));
    }
    if ctx.parts.evictions
        && let Some(action) = complete_evictions::<B>(&ctx, &rb, &existing).await?
    {
        return Ok(action);
    }
    if wrote_works {
        return Ok(Action::requeue(Duration::from_secs(300)));
    }
    if ctx.parts.status {
        let own = ctx.own_status(&owner, rb.meta().resource_version.as_deref());
        let shown = own.as_deref().or(rb.status());
        if let Some(wait) = awaiting_first_reports(&existing, shown, crate::now_secs()) {
            return Ok(Action::requeue(wait));
        }
        aggregate::<B>(&ctx, &rb, &existing, &ar, &templates, &template).await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// How soon a binding reconciled before the Work cache was filled comes back for what needs
/// every one of its Works.
const PARTIAL_RETRY: Duration = Duration::from_secs(1);

/// This binding's Works in the clusters it targets (and those it is being evicted from),
/// read one by one: its Works while the Work cache is not filled yet.
async fn works_by_name(
    ctx: &Context,
    spec: &ResourceBindingSpec,
    work_name: &str,
    owner: &str,
) -> Result<Vec<Arc<Work>>, kube::Error> {
    let mut clusters: std::collections::BTreeSet<String> = work_targets(spec).into_keys().collect();
    clusters.extend(spec.graceful_eviction_tasks.iter().map(|t| t.from_cluster.clone()));
    let reads = clusters.into_iter().map(|cluster| {
        let api: Api<Work> = Api::namespaced(ctx.client.clone(), &execution_namespace(&cluster));
        async move { api.get_opt(work_name).await }
    });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .filter(|w| owner_of(w).as_deref() == Some(owner))
        .map(Arc::new)
        .collect())
}

/// How long a binding's Works may take to report for the first time before the binding says
/// they have not (`applied: false`, health Unknown, `FullyApplied=False`).
pub const FIRST_REPORT_GRACE_SECS: i64 = 10;

/// Whether the first aggregation of a binding waits, and how long at most: its Works were all
/// created within [`FIRST_REPORT_GRACE_SECS`], some have not reported yet, and the binding
/// shows no aggregated status. Their first reports follow within moments (each brings the
/// binding back); writing "not applied yet", or one cluster's report before the other's, would
/// cost binding and template status writes that are overwritten at once. A Work that does not
/// report in time (its cluster is down) is shown as not applied once the grace is over.
pub fn awaiting_first_reports(
    works: &[Arc<Work>],
    shown: Option<&ResourceBindingStatus>,
    now_secs: i64,
) -> Option<Duration> {
    if shown.is_some_and(|s| !s.aggregated_status.is_empty()) {
        return None;
    }
    let mut oldest = None::<i64>;
    let mut silent = false;
    for work in works.iter().filter(|w| w.metadata.deletion_timestamp.is_none()) {
        silent |= work.status.as_ref().is_none_or(|s| s.conditions.is_empty());
        let created = work.metadata.creation_timestamp.as_ref()?.0.as_second();
        oldest = Some(oldest.map_or(created, |o| o.min(created)));
    }
    let age = now_secs - oldest?;
    (silent && age < FIRST_REPORT_GRACE_SECS)
        .then(|| Duration::from_secs((FIRST_REPORT_GRACE_SECS - age).max(1) as u64))
}

/// Which graceful eviction tasks are done (as upstream's graceful eviction controller judges
/// them, whatever the purge mode — Directly only removes the old cluster's Work sooner): a task
/// with `suppressDeletion` waits for it to be set false (Never sets it true); any other once the
/// binding's scheduled clusters all run the workload healthily (`scheduled_healthy`) or its
/// grace period (default 600 s) has passed. Until then its cluster stays out of scheduling and
/// the state it preserved stays on the new clusters.
pub fn finished_evictions(
    tasks: &[karmada_api::work::GracefulEvictionTask],
    scheduled_healthy: bool,
    now_secs: i64,
) -> Vec<bool> {
    tasks
        .iter()
        .map(|t| {
            if let Some(suppress) = t.suppress_deletion {
                return !suppress;
            }
            if t.purge_mode == PurgeMode::Never {
                return false;
            }
            let created = t
                .creation_timestamp
                .as_deref()
                .and_then(apimachinery::time::parse_rfc3339)
                .unwrap_or(now_secs);
            let grace = i64::from(t.grace_period_seconds.unwrap_or(600));
            scheduled_healthy || now_secs >= created + grace
        })
        .collect()
}

/// Whether every cluster of the binding's current schedule runs the workload healthily, the
/// schedule being current (the scheduler has seen the binding's generation).
fn scheduled_healthy<B: Binding>(rb: &B, works: &[Arc<Work>]) -> bool {
    let spec = rb.spec();
    let observed = rb.status().map_or(0, |s| s.scheduler_observed_generation);
    if observed != rb.meta().generation.unwrap_or(0) {
        return false;
    }
    let items = aggregated_items(works, &spec.resource);
    spec.clusters
        .iter()
        .all(|t| items.iter().any(|i| i.cluster_name == t.name && i.health == "Healthy"))
}

async fn complete_evictions<B: Binding>(
    ctx: &Context,
    rb: &B,
    works: &[Arc<Work>],
) -> Result<Option<Action>, Error> {
    let spec = rb.spec();
    if spec.graceful_eviction_tasks.is_empty() {
        return Ok(None);
    }
    let healthy_elsewhere = scheduled_healthy(rb, works);
    let done =
        finished_evictions(&spec.graceful_eviction_tasks, healthy_elsewhere, crate::now_secs());
    if !done.iter().any(|d| *d) {
        let waiting = spec
            .graceful_eviction_tasks
            .iter()
            .any(|t| t.suppress_deletion.is_none() && t.purge_mode != PurgeMode::Never);
        return Ok(waiting.then(|| Action::requeue(Duration::from_secs(5))));
    }
    let remaining: Vec<&karmada_api::work::GracefulEvictionTask> = spec
        .graceful_eviction_tasks
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(t, _)| t)
        .collect();
    for (t, _) in spec.graceful_eviction_tasks.iter().zip(&done).filter(|(_, d)| **d) {
        tracing::info!(binding = ?rb.meta().name, cluster = %t.from_cluster, healthy_elsewhere, "eviction complete; removing the old cluster's Work");
    }
    let bindings = crate::binding_api::<B>(&ctx.client, rb.meta().namespace.as_deref());
    let patch = json!({"metadata": {"resourceVersion": rb.meta().resource_version},
        "spec": {"gracefulEvictionTasks": remaining}});
    bindings
        .patch(
            rb.meta().name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    Ok(Some(Action::await_change()))
}

/// One of the binding's conditions about a step that can fail for some clusters, written only
/// when the outcome changes (a binding that never failed carries none).
struct StepCondition {
    type_: &'static str,
    ok_reason: &'static str,
    ok_message: &'static str,
    failed: Reason,
}

/// `OverridesApplied`: override policies applied to every cluster's copy.
const OVERRIDES: StepCondition = StepCondition {
    type_: OVERRIDES_CONDITION,
    ok_reason: "OverridesApplied",
    ok_message: "Override policies have been applied",
    failed: Reason::ApplyOverridePolicyFailed,
};

/// `Interpreted`: the resource interpreter's customizations for the kind (ReviseReplica,
/// AggregateStatus) ran; when one fails its message names the rule and the customization.
const INTERPRETED: StepCondition = StepCondition {
    type_: INTERPRETED_CONDITION,
    ok_reason: "InterpretSucceeded",
    ok_message: "The resource interpreter has interpreted the resource",
    failed: Reason::SyncWorkFailed,
};

/// Writes a [`StepCondition`], with a Warning Event when the step failed (the clusters it
/// failed for keep their last good Work; the others are unaffected).
async fn report_step<B: Binding>(
    ctx: &Context,
    rb: &B,
    step: &StepCondition,
    failures: &[String],
) -> Result<(), Error> {
    let current = rb.status().and_then(|s| s.conditions.iter().find(|c| c.type_ == step.type_));
    let (word, reason, message) = if failures.is_empty() {
        ("True", step.ok_reason, step.ok_message.to_owned())
    } else {
        ("False", step.failed.as_str(), failures.join("; "))
    };
    if current.is_none() && failures.is_empty() {
        return Ok(());
    }
    if current.is_some_and(|c| c.status == word && c.message == message) {
        return Ok(());
    }
    let condition = json!({"type": step.type_, "status": word, "reason": reason,
        "message": message, "lastTransitionTime": crate::now_rfc3339()});
    let bindings = crate::binding_api::<B>(&ctx.client, rb.meta().namespace.as_deref());
    let name = rb.meta().name.as_deref().unwrap_or_default();
    let read = rb.status().map(|s| serde_json::to_value(s).unwrap_or_default());
    if crate::patch_status_ops(&bindings, name, crate::status_ops(read.as_ref(), condition, &[]))
        .await?
        .is_none()
    {
        return Err(Error::Stale);
    }
    if !failures.is_empty() {
        ctx.events.record(crate::events::reference_of(rb), step.failed, message);
    }
    Ok(())
}

/// A binding's `aggregatedStatus` from its Works (as upstream assembles it): one item per Work
/// not being deleted, by cluster; a Work not applied has Unknown health and says why, an
/// applied one carries the status and health reflected for the binding's resource (Unknown
/// while none is).
pub fn aggregated_items(
    works: &[Arc<Work>],
    resource: &karmada_api::work::ObjectReference,
) -> Vec<AggregatedStatusItem> {
    let (group, version) =
        resource.api_version.split_once('/').unwrap_or(("", &resource.api_version));
    let mut items: Vec<AggregatedStatusItem> = works
        .iter()
        .filter(|w| w.metadata.deletion_timestamp.is_none())
        .filter_map(|work| {
            let cluster =
                names::cluster_of_execution_namespace(work.metadata.namespace.as_deref()?)?;
            let status = work.status.as_ref();
            let applied = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Applied"));
            let mut item = AggregatedStatusItem {
                cluster_name: cluster.to_owned(),
                applied: applied.is_some_and(|c| c.status == "True"),
                health: "Unknown".to_owned(),
                ..Default::default()
            };
            if !item.applied {
                item.applied_message = applied.map(|c| c.message.clone()).unwrap_or_default();
                return Some(item);
            }
            let reflected = status.and_then(|s| {
                s.manifest_statuses.iter().find(|m| {
                    let id = &m.identifier;
                    id.group == group
                        && id.version == version
                        && id.kind == resource.kind
                        && id.namespace == resource.namespace
                        && id.name == resource.name
                })
            });
            if let Some(m) = reflected {
                item.status = m.status.clone();
                if !m.health.is_empty() {
                    item.health = m.health.clone();
                }
            }
            Some(item)
        })
        .collect();
    items.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    items
}

/// `FullyApplied`: the binding has clusters, and each of them — scheduled, required by a
/// dependent, or still being evicted gracefully — has exactly one applied Work.
pub fn fully_applied(spec: &ResourceBindingSpec, items: &[AggregatedStatusItem]) -> bool {
    let mut clusters: std::collections::BTreeSet<String> = work_targets(spec).into_keys().collect();
    clusters.extend(
        spec.graceful_eviction_tasks
            .iter()
            .filter(|t| !t.purge_mode.is_direct())
            .map(|t| t.from_cluster.clone()),
    );
    !clusters.is_empty()
        && items.len() == clusters.len()
        && items.iter().all(|i| i.applied && clusters.contains(&i.cluster_name))
}

/// Binding `aggregatedStatus` and `FullyApplied` from the Works, and the template's status
/// from its members' statuses (only written when they change; the updated template is
/// returned).
async fn aggregate<B: Binding>(
    ctx: &Context,
    rb: &B,
    works: &[Arc<Work>],
    ar: &ApiResource,
    templates: &Api<LeanObject>,
    template: &LeanObject,
) -> Result<(), Error> {
    let spec = rb.spec();
    let name = rb.meta().name.as_deref().unwrap_or_default();
    let owner = owner_key(rb.meta().namespace.as_deref(), name);
    // The status this controller wrote last, while the cache still shows the version it was
    // written over (the cache lags its own writes under load).
    let own = ctx.own_status(&owner, rb.meta().resource_version.as_deref());
    let status = own.as_deref().or(rb.status());
    let items = aggregated_items(works, &spec.resource);
    let fully = fully_applied(spec, &items);
    // Compared as the stored form (fields at their defaults are left out of both).
    let same_items = status.is_some_and(|s| s.aggregated_status == items);
    let was_fully = status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "FullyApplied"))
        .map(|c| c.status == "True");
    if !same_items || was_fully != Some(fully) {
        let word = if fully { "True" } else { "False" };
        let since = status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "FullyApplied"))
            .filter(|c| c.status == word)
            .map_or_else(|| json!(crate::now_rfc3339()), |c| json!(c.last_transition_time));
        let condition = json!({"type": "FullyApplied", "status": word,
            "reason": if fully { "FullyAppliedSuccess" } else { "FullyAppliedFailed" },
            "message": if fully { "All works have been successfully applied" } else { "Failed to apply all works, see status.aggregatedStatus for details" },
            "lastTransitionTime": since});
        let mut read = status.map(|s| serde_json::to_value(s).unwrap_or_default());
        let bindings = crate::binding_api::<B>(&ctx.client, rb.meta().namespace.as_deref());
        let fields = [("aggregatedStatus", json!(items))];
        let mut written = None;
        // The cached binding may lag under load: on a guard failure, re-read it and retry.
        for _ in 0..5 {
            let ops = crate::status_ops(read.as_ref(), condition.clone(), &fields);
            if let Some(updated) = crate::patch_status_ops(&bindings, name, ops).await? {
                written = Some(updated);
                break;
            }
            read = bindings.get(name).await?.data.get("status").cloned();
        }
        let Some(updated) = written else { return Err(Error::Stale) };
        ctx.remember_own_status(owner, rb.meta().resource_version.as_deref(), &updated);
        ctx.events.record(
            crate::events::reference_of(rb),
            Reason::AggregateStatusSucceed,
            message::aggregate_status_succeed(rb.meta().namespace.as_deref(), name),
        );
    }
    let mut object = template.to_value();
    object["apiVersion"] = json!(ar.api_version);
    object["kind"] = json!(ar.kind);
    let aggregated = match ctx.interpreter.aggregate_status(&object, &items).await {
        Ok(status) => status,
        Err(failure) => {
            tracing::warn!(binding = %name, error = %failure, "aggregating the template's status failed");
            ctx.events.record(
                crate::events::template_reference(&rb.spec().resource),
                Reason::AggregateStatusFailed,
                failure.to_string(),
            );
            None
        }
    };
    if let Some(status) = aggregated {
        let template_key = format!(
            "{}/{}/{}",
            ar.plural,
            template.metadata.namespace.as_deref().unwrap_or_default(),
            template.metadata.name.as_deref().unwrap_or_default()
        );
        let current = ctx.template_status(&template_key, template);
        let aggregated = || {
            ctx.events.record(
                crate::events::template_reference(&rb.spec().resource),
                Reason::AggregateStatusSucceed,
                message::TEMPLATE_STATUS_AGGREGATED,
            );
        };
        if current == status {
            aggregated();
        } else {
            let mut patch = status.clone();
            // Fields that dropped out of the aggregate are removed.
            if let (Some(p), Some(c)) = (patch.as_object_mut(), current.as_object()) {
                for k in c.keys() {
                    p.entry(k.clone()).or_insert(Value::Null);
                }
            }
            match templates
                .patch_status(
                    template.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": patch})),
                )
                .await
            {
                Ok(updated) => {
                    ctx.remember_template_status(template_key, &updated);
                    aggregated();
                }
                // A kind without a status subresource keeps its status as is.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn error_policy<B: Binding>(_: Arc<B>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "binding",
        error,
        matches!(error, Error::Stale) || matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(1),
    )
}

/// Only the cluster changes that can change a rendering: a cluster added or removed, or its
/// labels or location changed (status heartbeats are not).
fn placement_relevant(
    clusters: impl futures::Stream<Item = Change<Cluster>> + Send + 'static,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    let mut seen: HashMap<String, (Option<BTreeMap<String, String>>, String)> = HashMap::new();
    clusters.filter_map(move |change| {
        let changed = match change {
            Change::Applied(c) | Change::Listed(c) => {
                let name = c.metadata.name.clone().unwrap_or_default();
                let gone = c.metadata.deletion_timestamp.is_some();
                let fingerprint = (
                    c.metadata.labels.clone(),
                    format!("{gone}/{}/{}/{:?}", c.spec.provider, c.spec.region, c.spec.zones),
                );
                seen.insert(name, fingerprint.clone()) != Some(fingerprint)
            }
            Change::Deleted(c) => {
                seen.remove(c.metadata.name.as_deref().unwrap_or_default());
                true
            }
            Change::Relisting | Change::Relisted => false,
        };
        futures::future::ready(changed.then_some(()))
    })
}

async fn run_for<B: Binding>(
    ctx: Arc<Context>,
    bindings: Arc<Watched<B>>,
    works: impl futures::Stream<Item = ObjectRef<B>> + Send + 'static,
    policy_changes: impl futures::Stream<Item = ()> + Send + 'static,
) {
    // Status writes (the aggregation's own, the scheduler's condition) trigger nothing here:
    // a binding is reconciled for its spec, deletion and finalizers, and for its Works.
    // After a restart every binding is listed and rendered again; a binding created or
    // changed meanwhile goes first (the listed ones are fed as the controller keeps up, once
    // the Work cache is filled).
    let pace = Arc::new(crate::shared::Pace::default());
    let objects = crate::shared::listed_last(
        bindings.subscribe(),
        Arc::clone(&pace),
        crate::CONCURRENCY as u64,
        Some(ctx.works_ready.clone()),
    );
    let changes = crate::shared::changed_by(objects, crate::spec_relevant::<B>);
    let works_ready = ctx.works_ready.clone();
    Controller::for_shared_stream(changes, bindings.store())
        .with_config(crate::controller_config())
        .reconcile_on(works)
        .reconcile_all_on(policy_changes.filter(move |()| {
            // Before the Work cache is filled every binding would be rendered the slow way;
            // the listed ones follow anyway once it is (with whatever changed meanwhile).
            futures::future::ready(*works_ready.borrow())
        }))
        .run(
            move |rb, ctx| {
                let pace = Arc::clone(&pace);
                async move {
                    let result = reconcile::<B>(rb, ctx).await;
                    pace.finished();
                    result
                }
            },
            error_policy::<B>,
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// Runs the binding controller (ResourceBindings and ClusterResourceBindings) until the future
/// is dropped. Any change to an override policy re-renders every binding's Works.
pub async fn run(
    client: kube::Client,
    caches: crate::Caches,
    parts: crate::registry::BindingParts,
) -> anyhow::Result<()> {
    let ops = caches.override_policies.store();
    let cops = caches.cluster_override_policies.store();
    let clusters = caches.clusters.store();
    let works = caches.works.store();
    // The index is updated before a Work's change reaches the controllers (they look the
    // binding's Works up in it).
    let work_index = Arc::new(WorkIndex::default());
    let index = Arc::clone(&work_index);
    // A binding's Works report one after another (and each several times while its
    // workload starts): their changes are gathered for 100 ms, so the binding aggregates them
    // once per burst, not once per Work status write.
    let (rb_works, rb_rx) = futures::channel::mpsc::unbounded::<ObjectRef<ResourceBinding>>();
    let (crb_works, crb_rx) =
        futures::channel::mpsc::unbounded::<ObjectRef<ClusterResourceBinding>>();
    // The Works of the first list do not trigger their bindings: every binding comes with
    // its own first list (paced, see `run_for`). A later relist's do (changes may have been
    // missed).
    let mut first_list = true;
    let work_watch = tokio::spawn(caches.works.subscribe().for_each(move |change| {
        index.observe(&change);
        let initial = match &change {
            Change::Relisted => std::mem::replace(&mut first_list, false),
            Change::Listed(_) => first_list,
            _ => false,
        };
        if let Some((name, namespace)) =
            change.object().filter(|_| !initial).and_then(|w| owning_binding(w))
        {
            match namespace {
                Some(ns) => {
                    let _ = rb_works.unbounded_send(ObjectRef::new(name).within(ns));
                }
                None => {
                    let _ = crb_works.unbounded_send(ObjectRef::new(name));
                }
            }
        }
        async {}
    }));
    let window = Duration::from_millis(100);
    let (rb_rx, crb_rx) = (crate::coalesce(rb_rx, window), crate::coalesce(crb_rx, window));
    let (changes_tx, _) = tokio::sync::broadcast::channel::<()>(64);
    let epoch = Arc::new(AtomicU64::new(0));
    let forward = |stream: futures::stream::BoxStream<'static, ()>| {
        let tx = changes_tx.clone();
        let epoch = Arc::clone(&epoch);
        tokio::spawn(stream.for_each(move |()| {
            epoch.fetch_add(1, Ordering::AcqRel);
            let _ = tx.send(());
            async {}
        }))
    };
    let feeders = [
        forward(caches.override_policies.subscribe().map(|_| ()).boxed()),
        forward(caches.cluster_override_policies.subscribe().map(|_| ()).boxed()),
        forward(placement_relevant(caches.clusters.subscribe()).boxed()),
        // A customization can change how replicas are revised or status aggregated.
        forward(caches.interpreter.changes().boxed()),
    ];
    // Not the Works: a binding changed meanwhile is reconciled before their list is complete
    // (see `reconcile`), the listed bindings only after it.
    let _ = tokio::join!(
        caches.override_policies.ready(),
        caches.cluster_override_policies.ready(),
        caches.clusters.ready(),
        caches.interpreter.ready()
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        ops,
        cops,
        clusters,
        works,
        works_ready: caches.works.ready_signal(),
        work_index,
        kinds: crate::KindCache::default(),
        templates: Arc::clone(&caches.templates),
        template_statuses: Mutex::new(HashMap::new()),
        epoch,
        rendered: Mutex::new(HashMap::new()),
        own_statuses: Mutex::new(HashMap::new()),
        events: crate::events::Events::start(client.clone(), "binding-controller"),
        parts,
        interpreter: Arc::clone(&caches.interpreter),
    });
    tokio::join!(
        run_for::<ResourceBinding>(
            Arc::clone(&ctx),
            Arc::clone(&caches.bindings),
            rb_rx,
            crate::signals(&changes_tx),
        ),
        run_for::<ClusterResourceBinding>(
            ctx,
            Arc::clone(&caches.cluster_bindings),
            crb_rx,
            crate::signals(&changes_tx),
        ),
    );
    work_watch.abort();
    for f in feeders {
        f.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_aggregation_waits_for_fresh_works_to_report() {
        let t0 = apimachinery::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let work = |cluster: &str, created: i64, reported: bool, deleting: bool| {
            let mut w: Work = serde_json::from_value(json!({
                "metadata": {"name": "d-1", "namespace": format!("karmada-es-{cluster}"),
                    "creationTimestamp": apimachinery::time::format_rfc3339(t0 + created)},
                "spec": {"workload": {"manifests": []}},
            }))
            .unwrap();
            if reported {
                w.status = Some(
                    serde_json::from_value(json!({"conditions": [{"type": "Applied",
                        "status": "True", "reason": "r", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}))
                    .unwrap(),
                );
            }
            if deleting {
                w.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ));
            }
            Arc::new(w)
        };
        let fresh = [work("m1", 0, false, false), work("m2", 1, false, false)];
        // Counted from the oldest Work: 3 s after it, 7 s are left.
        assert_eq!(awaiting_first_reports(&fresh, None, t0 + 3), Some(Duration::from_secs(7)));
        assert_eq!(awaiting_first_reports(&fresh, None, t0 + 9), Some(Duration::from_secs(1)));
        // Past the grace, the binding says they have not reported.
        assert_eq!(awaiting_first_reports(&fresh, None, t0 + 10), None);
        // The first aggregation waits for every Work's report, not one cluster's.
        let one = [work("m1", 0, true, false), work("m2", 0, false, false)];
        assert_eq!(awaiting_first_reports(&one, None, t0 + 1), Some(Duration::from_secs(9)));
        let both = [work("m1", 0, true, false), work("m2", 0, true, false)];
        assert_eq!(awaiting_first_reports(&both, None, t0 + 1), None);
        // A binding that already shows an aggregated status is kept current at once.
        let shown: ResourceBindingStatus = serde_json::from_value(json!({
            "aggregatedStatus": [{"clusterName": "m1", "health": "Unknown"}]}))
        .unwrap();
        assert_eq!(awaiting_first_reports(&fresh, Some(&shown), t0 + 1), None);
        let scheduled_only: ResourceBindingStatus =
            serde_json::from_value(json!({"schedulerObservedGeneration": 2})).unwrap();
        assert!(awaiting_first_reports(&fresh, Some(&scheduled_only), t0 + 1).is_some());
        // No Works (or only Works going away): nothing to wait for.
        assert_eq!(awaiting_first_reports(&[], None, t0), None);
        assert_eq!(awaiting_first_reports(&[work("m1", 0, false, true)], None, t0), None);
    }

    /// Aggregation as upstream's `assembleWorkStatus` and `generateFullyAppliedCondition`.
    #[test]
    fn aggregated_status_follows_the_works() {
        let resource: karmada_api::work::ObjectReference = serde_json::from_value(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "d"}),
        )
        .unwrap();
        let work = |cluster: &str, applied: Option<(&str, &str)>, health: &str, deleting: bool| {
            let mut w: Work = serde_json::from_value(json!({
                "metadata": {"name": "d-1", "namespace": format!("karmada-es-{cluster}")},
                "spec": {"workload": {"manifests": []}},
                "status": {
                    "conditions": applied.map(|(s, m)| vec![json!({"type": "Applied", "status": s,
                        "reason": "r", "message": m, "lastTransitionTime": "2026-01-01T00:00:00Z"})])
                        .unwrap_or_default(),
                    "manifestStatuses": [
                        {"identifier": {"ordinal": 0, "group": "", "version": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "d"},
                         "status": {"other": true}, "health": "Unhealthy"},
                        {"identifier": {"ordinal": 1, "group": "apps", "version": "v1", "kind": "Deployment", "namespace": "ns", "name": "d"},
                         "status": {"replicas": 1}, "health": health}]}
            }))
            .unwrap();
            if deleting {
                w.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ));
            }
            Arc::new(w)
        };
        let works = [
            work("m2", Some(("True", "")), "Healthy", false),
            work("m1", Some(("False", "not managed by Karmada")), "Healthy", false),
            work("m3", None, "", false),
            work("m4", Some(("True", "")), "Healthy", true),
        ];
        let items = aggregated_items(&works, &resource);
        let items: Vec<Value> = items.iter().map(|i| serde_json::to_value(i).unwrap()).collect();
        assert_eq!(
            items,
            [
                json!({"clusterName": "m1", "appliedMessage": "not managed by Karmada", "health": "Unknown"}),
                json!({"clusterName": "m2", "applied": true, "status": {"replicas": 1}, "health": "Healthy"}),
                json!({"clusterName": "m3", "health": "Unknown"}),
            ]
        );
        let spec = |v: Value| serde_json::from_value::<ResourceBindingSpec>(v).unwrap();
        let base = json!({"resource": resource});
        let item = |c: &str, applied: bool| AggregatedStatusItem {
            cluster_name: c.into(),
            applied,
            ..Default::default()
        };
        let mut scheduled = base.clone();
        scheduled["clusters"] = json!([{"name": "m1", "replicas": 1}]);
        assert!(!fully_applied(&spec(base.clone()), &[]), "not scheduled");
        assert!(fully_applied(&spec(scheduled.clone()), &[item("m1", true)]));
        assert!(!fully_applied(&spec(scheduled.clone()), &[item("m1", false)]));
        assert!(!fully_applied(&spec(scheduled.clone()), &[item("m2", true)]));
        // A cluster required by a dependent, and one still being evicted gracefully, count.
        let mut attached = base.clone();
        attached["requiredBy"] = json!([{"name": "w", "clusters": [{"name": "m1"}]}]);
        assert!(fully_applied(&spec(attached), &[item("m1", true)]));
        scheduled["gracefulEvictionTasks"] = json!([{"fromCluster": "m2", "purgeMode": "Gracefully", "reason": "r", "producer": "p"}]);
        assert!(!fully_applied(&spec(scheduled.clone()), &[item("m1", true)]));
        assert!(fully_applied(&spec(scheduled), &[item("m1", true), item("m2", true)]));
    }

    fn work(ns: &str, name: &str, binding: &str) -> Work {
        let mut w = Work::default();
        w.metadata.namespace = Some(ns.into());
        w.metadata.name = Some(name.into());
        w.metadata.annotations = Some(
            BindingRef { namespace: Some("default"), name: binding, permanent_id: Some("id") }
                .annotations(),
        );
        w
    }

    #[test]
    fn the_work_index_follows_the_watch_and_a_relist_drops_only_what_is_gone() {
        let index = WorkIndex::default();
        let owner = owner_key(Some("default"), "web");
        let a = work("karmada-es-member1", "w", "web");
        let b = work("karmada-es-member2", "w", "web");
        let other = work("karmada-es-member1", "x", "db");
        for w in [&a, &b, &other] {
            index.observe(&Change::Applied(Arc::new(w.clone())));
        }
        let mut got = index.works_of(&owner);
        got.sort();
        assert_eq!(
            got,
            [("karmada-es-member1".into(), "w".into()), ("karmada-es-member2".into(), "w".into())]
        );
        index.observe(&Change::Deleted(Arc::new(a.clone())));
        assert_eq!(index.works_of(&owner), [("karmada-es-member2".to_string(), "w".to_string())]);
        // A relist: until it is done the old entries stay (never a missing Work); after it,
        // what the new list lacks is gone (b was deleted while the watch was down).
        index.observe(&Change::Relisting);
        index.observe(&Change::Listed(Arc::new(other.clone())));
        assert_eq!(index.works_of(&owner).len(), 1);
        index.observe(&Change::Relisted);
        assert!(index.works_of(&owner).is_empty());
        assert_eq!(index.works_of(&owner_key(Some("default"), "db")).len(), 1);
        // Cluster-scoped bindings have their own keys.
        let mut c = Work::default();
        c.metadata.namespace = Some("karmada-es-member1".into());
        c.metadata.name = Some("c".into());
        c.metadata.annotations =
            Some(BindingRef { namespace: None, name: "crd-x", permanent_id: None }.annotations());
        index.observe(&Change::Applied(Arc::new(c)));
        assert_eq!(index.works_of(&owner_key(None, "crd-x")).len(), 1);
    }

    #[test]
    fn stripping_and_names() {
        let template = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default", "uid": "u", "resourceVersion": "9", "generation": 2, "labels": {"app": "nginx"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}, "managedFields": []},
            "spec": {"replicas": 2}, "status": {"replicas": 2}});
        assert_eq!(
            strip(&template),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}, "annotations": {"keep": "me"}},
            "spec": {"replicas": 2}})
        );
    }

    /// Upstream's layout: ids as labels, names as annotations (a binding name may be longer
    /// than 63 characters); Works named after their template.
    #[test]
    fn work_and_manifest_metadata() {
        let long = "a-deployment-name-that-is-much-longer-than-sixty-three-characters-x";
        let binding = names::binding_name("Deployment", long);
        let rb =
            BindingRef { namespace: Some("default"), name: &binding, permanent_id: Some("rb-id") };
        assert_eq!(
            rb.labels(),
            BTreeMap::from([(names::RB_PERMANENT_ID_LABEL.to_owned(), "rb-id".to_owned())])
        );
        assert_eq!(rb.annotations()[names::RB_NAME_ANNOTATION], binding);
        assert_eq!(rb.annotations()[names::RB_NAMESPACE_ANNOTATION], "default");
        for value in rb.labels().values() {
            assert!(apimachinery::selector::validate_label_value(value).is_ok());
        }
        let crb = BindingRef { namespace: None, name: "crd-x", permanent_id: Some("crb-id") };
        assert!(crb.labels().contains_key(names::CRB_PERMANENT_ID_LABEL));
        assert_eq!(crb.annotations().keys().collect::<Vec<_>>(), [names::CRB_NAME_ANNOTATION]);

        let template = kube::core::ObjectMeta {
            uid: Some("tpl-uid".into()),
            generation: Some(3),
            ..Default::default()
        };
        let mut manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": long, "namespace": "default", "labels": {"app": "web"}}});
        let work = names::work_name("Deployment", long, "default");
        mark_manifest(&mut manifest, &rb, &template, &work, "karmada-es-m1", Some("work-id"));
        let once = manifest.clone();
        mark_manifest(&mut manifest, &rb, &template, &work, "karmada-es-m1", Some("work-id"));
        assert_eq!(manifest, once, "marking twice changes nothing");
        assert_eq!(
            manifest["metadata"]["labels"],
            json!({"app": "web", "karmada.io/managed": "true",
                "resourcebinding.karmada.io/permanent-id": "rb-id",
                "work.karmada.io/permanent-id": "work-id"})
        );
        let annotations = &manifest["metadata"]["annotations"];
        assert_eq!(annotations["resourcetemplate.karmada.io/uid"], "tpl-uid");
        assert_eq!(annotations["resourcetemplate.karmada.io/generation"], "3");
        assert_eq!(annotations["work.karmada.io/name"], json!(work));
        assert_eq!(annotations["work.karmada.io/namespace"], "karmada-es-m1");
        assert_eq!(annotations["resourcebinding.karmada.io/name"], json!(binding));
        assert_eq!(
            annotations["resourcetemplate.karmada.io/managed-labels"],
            "app,karmada.io/managed,resourcebinding.karmada.io/permanent-id,work.karmada.io/permanent-id"
        );
        assert_eq!(
            annotations["resourcetemplate.karmada.io/managed-annotations"],
            "resourcebinding.karmada.io/name,resourcebinding.karmada.io/namespace,resourcetemplate.karmada.io/generation,resourcetemplate.karmada.io/managed-annotations,resourcetemplate.karmada.io/managed-labels,resourcetemplate.karmada.io/uid,work.karmada.io/name,work.karmada.io/namespace"
        );

        // A Work is found to belong to its binding by its annotations, or by the labels an
        // earlier version wrote.
        let mut w = Work::default();
        w.metadata.annotations = Some(rb.annotations());
        assert_eq!(owning_binding(&w), Some((binding.as_str(), Some("default"))));
        let mut legacy = Work::default();
        legacy.metadata.labels = Some(BTreeMap::from([
            (names::LEGACY_RB_NAME_LABEL.to_owned(), "web-deployment".to_owned()),
            (names::LEGACY_RB_NAMESPACE_LABEL.to_owned(), "default".to_owned()),
        ]));
        assert_eq!(owning_binding(&legacy), Some(("web-deployment", Some("default"))));
    }

    fn spec(v: Value) -> ResourceBindingSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn targets_include_the_clusters_of_requiring_bindings() {
        let s = spec(json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
            "clusters": [{"name": "member1", "replicas": 2}],
            "requiredBy": [
                {"namespace": "default", "name": "a-deployment", "clusters": [{"name": "member1", "replicas": 5}, {"name": "member2", "replicas": 1}]},
                {"namespace": "default", "name": "b-deployment", "clusters": [{"name": "member3"}]}]}));
        let t = work_targets(&s);
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            vec![("member1".into(), 2), ("member2".into(), 0), ("member3".into(), 0)],
            "own shares win; requiring clusters add no replicas"
        );
        let attached = spec(
            json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
            "requiredBy": [{"namespace": "default", "name": "a", "clusters": [{"name": "member2", "replicas": 1}]}]}),
        );
        assert_eq!(work_targets(&attached).len(), 1);
        assert!(
            work_targets(&spec(
                json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}})
            ))
            .is_empty()
        );
    }

    #[test]
    fn job_completions_follow_the_replica_shares() {
        let shares: BTreeMap<String, i32> =
            [("a".to_string(), 3), ("b".to_string(), 1), ("c".to_string(), 0)]
                .into_iter()
                .collect();
        let split = split_completions(8, &shares);
        assert_eq!(split["a"], 6);
        assert_eq!(split["b"], 2);
        assert_eq!(split["c"], 0);
        assert_eq!(split_completions(7, &shares).values().sum::<i64>(), 7);
        let none: BTreeMap<String, i32> = [("a".to_string(), 0)].into_iter().collect();
        assert_eq!(split_completions(5, &none)["a"], 0);
    }

    #[test]
    fn suspension() {
        let base = json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}});
        assert!(!dispatch_suspended(&spec(base.clone()), "m1"));
        let mut all = base.clone();
        all["suspension"] = json!({"dispatching": true});
        assert!(dispatch_suspended(&spec(all), "m1"));
        let mut some = base;
        some["suspension"] = json!({"dispatchingOnClusters": {"clusterNames": ["m2"]}});
        assert!(!dispatch_suspended(&spec(some.clone()), "m1"));
        assert!(dispatch_suspended(&spec(some), "m2"));
    }

    #[test]
    fn graceful_evictions_finish_when_the_new_placement_is_healthy_or_time_is_up() {
        let task = |mode: &str, created: &str, grace: Option<i32>| {
            karmada_api::work::GracefulEvictionTask {
                from_cluster: "m1".into(),
                purge_mode: PurgeMode::from(mode),
                creation_timestamp: Some(created.into()),
                grace_period_seconds: grace,
                ..Default::default()
            }
        };
        let t0 = apimachinery::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let tasks = [
            task("Directly", "2026-01-01T00:00:00Z", None),
            task("Gracefully", "2026-01-01T00:00:00Z", Some(60)),
            task("Never", "2026-01-01T00:00:00Z", None),
        ];
        // Directly is judged like Gracefully (it only removes the old Work sooner).
        assert_eq!(finished_evictions(&tasks, false, t0 + 10), vec![false, false, false]);
        assert_eq!(finished_evictions(&tasks, true, t0 + 10), vec![true, true, false]);
        assert_eq!(finished_evictions(&tasks, false, t0 + 60), vec![false, true, false]);
        assert_eq!(finished_evictions(&tasks, false, t0 + 600), vec![true, true, false]);
        // suppressDeletion decides, whatever the mode: true keeps, false lets go at once.
        let mut suppressed = task("Never", "2026-01-01T00:00:00Z", None);
        suppressed.suppress_deletion = Some(true);
        assert_eq!(
            finished_evictions(std::slice::from_ref(&suppressed), true, t0 + 9999),
            vec![false]
        );
        suppressed.suppress_deletion = Some(false);
        assert_eq!(finished_evictions(&[suppressed], false, t0), vec![true]);
        assert_eq!(
            finished_evictions(
                &[task("Gracefully", "2026-01-01T00:00:00Z", None)],
                false,
                t0 + 599
            ),
            vec![false],
            "default grace is 600 s"
        );
    }
}
