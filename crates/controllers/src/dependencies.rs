//! The dependencies distributor (`propagateDeps`): a workload's ConfigMaps, Secrets,
//! ServiceAccount and PersistentVolumeClaims follow it to the clusters it was scheduled to.
//! For every binding with `propagateDeps`, each dependency's binding (`<name>-<kind>`) lists
//! the workload in `spec.requiredBy` with its clusters; a dependency without a binding of its
//! own gets an attached one (no placement, owned by the dependency object). The binding
//! controller sends a binding to its scheduled clusters plus those of `requiredBy`.

use karmada_api::events::{Reason, message};
use karmada_api::policy::ConflictResolution;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use karmada_api::work::{BindingSnapshot, ResourceBinding, TargetCluster};
use kube::api::{Api, ApiResource, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use propagation::interpreter::Dependency;
use serde_json::json;

use crate::lean::LeanObject;

/// The label on bindings this controller created for dependencies.
pub use karmada_api::names::ATTACHED_LABEL;

/// `requiredBy` after `parent` requires the binding with `clusters`, or (with `None`) no
/// longer does; sorted by namespace and name.
pub fn required_by_with(
    current: &[BindingSnapshot],
    parent_namespace: &str,
    parent_name: &str,
    clusters: Option<&[TargetCluster]>,
) -> Vec<BindingSnapshot> {
    let mut out: Vec<BindingSnapshot> = current
        .iter()
        .filter(|s| !(s.namespace == parent_namespace && s.name == parent_name))
        .cloned()
        .collect();
    if let Some(clusters) = clusters {
        out.push(BindingSnapshot {
            namespace: parent_namespace.to_owned(),
            name: parent_name.to_owned(),
            clusters: clusters.to_vec(),
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// What an attached binding takes from the workloads that require it, as upstream resolves
/// it: `Overwrite` if any of them overwrites, resources preserved on deletion if any of them
/// preserves; and whether they disagree (reported as a `DependencyPolicyConflict` Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencySettings {
    pub conflict_resolution: ConflictResolution,
    pub preserve: bool,
    pub conflict_resolution_conflict: bool,
    pub preserve_conflict: bool,
}

/// `requiring`: each requiring binding's `conflictResolution` (unset is Abort) and
/// `preserveResourcesOnDeletion`.
pub fn dependency_settings<'a>(
    requiring: impl IntoIterator<Item = (&'a ConflictResolution, Option<bool>)>,
) -> DependencySettings {
    let (mut overwrite, mut abort, mut preserve, mut keep) = (false, false, false, false);
    for (resolution, preserved) in requiring {
        if *resolution == ConflictResolution::Overwrite {
            overwrite = true
        } else {
            abort = true
        }
        if preserved == Some(true) { preserve = true } else { keep = true }
    }
    DependencySettings {
        conflict_resolution: if overwrite {
            ConflictResolution::Overwrite
        } else {
            ConflictResolution::Abort
        },
        preserve,
        conflict_resolution_conflict: overwrite && abort,
        preserve_conflict: preserve && keep,
    }
}

/// A binding's namespace and name.
type BindingKey = (String, String);

/// What a pass over a workload's dependencies depended on: the template version, the clusters,
/// the dependencies found, and the settings its dependencies inherit.
type Pass = (String, Vec<TargetCluster>, Vec<Dependency>, ConflictResolution, Option<bool>);

struct Context {
    client: kube::Client,
    bindings: Store<ResourceBinding>,
    /// The detector's templates (workloads and their dependencies are read from here).
    templates: Arc<crate::templates::Templates>,
    kinds: crate::KindCache,
    /// Workloads that have propagated dependencies (so turning `propagateDeps` off, or
    /// deleting the workload, is noticed without scanning every binding for the others).
    parents: Mutex<BTreeSet<(String, String)>>,
    /// A workload's dependencies by the template resourceVersion its binding recorded.
    found: Mutex<HashMap<BindingKey, (String, Vec<Dependency>)>>,
    /// The inputs of each workload's last complete pass.
    passes: Mutex<HashMap<BindingKey, Pass>>,
    /// Attached bindings created here recently (the cache may not show them yet).
    created: Mutex<HashMap<(String, String), std::time::Instant>>,
    /// By workload, the names of the bindings (in its namespace) that may list it in
    /// `requiredBy`: built from the cache on first use, then kept as this controller writes
    /// `requiredBy`. It may name bindings that no longer list the workload (the binding itself
    /// is checked), never miss one, so a pass looks at those, not at every binding.
    listed: Mutex<Option<HashMap<BindingKey, BTreeSet<String>>>>,
    events: crate::events::Events,
    interpreter: Arc<crate::interpreting::Interpreting>,
    /// Dependencies named by a label selector, by the binding that has them: an object of
    /// that kind appearing, changing or going in that namespace finds them again.
    selected: Arc<Mutex<HashMap<BindingKey, Vec<Selected>>>>,
    /// The kinds watched for `selected` (one watch each).
    watched: Mutex<BTreeSet<String>>,
    /// Bindings to look at again (a selected dependency changed).
    again: futures::channel::mpsc::UnboundedSender<ObjectRef<ResourceBinding>>,
}

/// A dependency named by a label selector.
#[derive(Clone, Debug)]
struct Selected {
    kind: String,
    namespace: String,
    selector: apimachinery::selector::LabelSelector,
}

/// The objects the interpreter's references name: by name, or every object of the kind in
/// the workload's namespace its label selector matches (a reference to another namespace is
/// skipped: dependencies follow their workload in its namespace).
async fn resolve(
    ctx: &Context,
    namespace: &str,
    refs: Vec<karmada_api::config::DependentObjectReference>,
) -> Result<Vec<Dependency>, Error> {
    let mut out: Vec<Dependency> = Vec::new();
    for r in refs {
        if !r.namespace.is_empty() && r.namespace != namespace {
            tracing::warn!(dependency = %r.name, namespace = %r.namespace, "a dependency in another namespace is not propagated");
            continue;
        }
        let names = match (&r.label_selector, r.name.is_empty()) {
            (Some(selector), true) => {
                let (group, version) =
                    r.api_version.split_once('/').unwrap_or(("", &r.api_version));
                let ar = ctx.resource(&GroupVersionKind::gvk(group, version, &r.kind)).await?;
                let selector = apimachinery::selector::LabelSelector::from_object(
                    &serde_json::to_value(selector).unwrap_or_default(),
                )
                .map_err(|e| Error::Invalid(format!("dependency label selector: {e}")))?;
                let listed = Api::<LeanObject>::namespaced_with(ctx.client.clone(), namespace, &ar)
                    .list(&kube::api::ListParams::default().labels(&selector.to_selector_string()))
                    .await?;
                listed.items.into_iter().filter_map(|o| o.metadata.name).collect()
            }
            _ => vec![r.name.clone()],
        };
        for name in names {
            let d = Dependency::new(&r.api_version, &r.kind, &name);
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Context {
    /// Remembers the label-selector dependencies of `parent` and watches their kinds, so that
    /// a matching object created, changed or removed later finds them again (as upstream's
    /// distributor does).
    async fn watch_selected(
        &self,
        parent: &BindingKey,
        namespace: &str,
        refs: &[karmada_api::config::DependentObjectReference],
    ) -> Result<(), Error> {
        let mut selected = Vec::new();
        for r in refs.iter().filter(|r| r.name.is_empty()) {
            let Some(selector) = &r.label_selector else { continue };
            let selector = apimachinery::selector::LabelSelector::from_object(
                &serde_json::to_value(selector).unwrap_or_default(),
            )
            .map_err(|e| Error::Invalid(format!("dependency label selector: {e}")))?;
            let (group, version) = r.api_version.split_once('/').unwrap_or(("", &r.api_version));
            let ar = self.resource(&GroupVersionKind::gvk(group, version, &r.kind)).await?;
            let id = format!("{}/{}", ar.api_version, ar.kind);
            selected.push(Selected { kind: id.clone(), namespace: namespace.to_owned(), selector });
            if self.watched.lock().map(|mut w| w.insert(id.clone())).unwrap_or(false) {
                tokio::spawn(watch_kind(
                    self.client.clone(),
                    ar,
                    id,
                    Arc::clone(&self.selected),
                    self.again.clone(),
                ));
            }
        }
        if let Ok(mut all) = self.selected.lock() {
            if selected.is_empty() {
                all.remove(parent);
            } else {
                all.insert(parent.clone(), selected);
            }
        }
        Ok(())
    }

    /// The settings an attached binding inherits from the bindings in its `requiredBy` (read
    /// from the cache; `parent`, being reconciled, as it is now).
    fn settings_for(
        &self,
        required_by: &[BindingSnapshot],
        parent: Option<&ResourceBinding>,
    ) -> DependencySettings {
        let requiring: Vec<(ConflictResolution, Option<bool>)> = required_by
            .iter()
            .filter_map(|s| {
                let is_parent = parent.is_some_and(|p| {
                    p.metadata.namespace.as_deref() == Some(s.namespace.as_str())
                        && p.metadata.name.as_deref() == Some(s.name.as_str())
                });
                let b = if is_parent {
                    parent.cloned().map(Arc::new)
                } else {
                    self.bindings.get(&ObjectRef::new(&s.name).within(&s.namespace))
                };
                b.map(|b| {
                    (b.spec.conflict_resolution.clone(), b.spec.preserve_resources_on_deletion)
                })
            })
            .collect();
        dependency_settings(requiring.iter().map(|(c, p)| (c, *p)))
    }

    /// The bindings that may list `parent` in `requiredBy`.
    fn listing(&self, parent: &BindingKey) -> Vec<Arc<ResourceBinding>> {
        let Ok(mut listed) = self.listed.lock() else { return Vec::new() };
        let index = listed.get_or_insert_with(|| {
            let mut index: HashMap<BindingKey, BTreeSet<String>> = HashMap::new();
            for b in self.bindings.state() {
                for s in &b.spec.required_by {
                    index
                        .entry((s.namespace.clone(), s.name.clone()))
                        .or_default()
                        .insert(b.metadata.name.clone().unwrap_or_default());
                }
            }
            index
        });
        let Some(names) = index.get_mut(parent) else { return Vec::new() };
        let found: Vec<Arc<ResourceBinding>> = names
            .iter()
            .filter_map(|n| self.bindings.get(&ObjectRef::new(n).within(&parent.0)))
            .collect();
        // Names whose binding is gone or no longer lists the workload are dropped (a binding
        // the cache does not show yet is kept).
        names.retain(|n| {
            found.iter().find(|b| b.metadata.name.as_deref() == Some(n.as_str())).is_none_or(|b| {
                b.spec.required_by.iter().any(|s| s.namespace == parent.0 && s.name == parent.1)
            })
        });
        if names.is_empty() {
            index.remove(parent);
        }
        found
    }

    /// Records the workloads a binding lists (once the index exists; before, it is built from
    /// the cache).
    fn note_listed(&self, binding: &ResourceBinding) {
        let Ok(mut listed) = self.listed.lock() else { return };
        let Some(index) = listed.as_mut() else { return };
        let name = binding.metadata.name.clone().unwrap_or_default();
        for s in &binding.spec.required_by {
            index.entry((s.namespace.clone(), s.name.clone())).or_default().insert(name.clone());
        }
    }

    /// The API resource of a kind (discovered once).
    async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, kube::Error> {
        self.kinds.resource(&self.client, gvk).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Writes a binding's new `requiredBy`, against the version it was computed from; an attached
/// binding nobody requires any more is deleted.
async fn write_required_by(
    ctx: &Context,
    api: &Api<ResourceBinding>,
    binding: &ResourceBinding,
    required_by: Vec<BindingSnapshot>,
    parent: Option<&ResourceBinding>,
) -> Result<(), kube::Error> {
    let name = binding.metadata.name.clone().unwrap_or_default();
    let attached = is_attached(binding);
    if required_by.is_empty() && attached && binding.spec.placement.is_none() {
        return match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        };
    }
    let mut spec = json!({"requiredBy": required_by});
    if let Some(settings) = attached.then(|| ctx.settings_for(&required_by, parent)) {
        spec["conflictResolution"] = json!(settings.conflict_resolution);
        spec["preserveResourcesOnDeletion"] = json!(settings.preserve);
        report_conflict(ctx, binding, &settings);
    }
    let patch = json!({"metadata": {"resourceVersion": binding.metadata.resource_version},
        "spec": spec});
    let written = api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    ctx.note_listed(&written);
    Ok(())
}

fn is_attached(binding: &ResourceBinding) -> bool {
    binding.metadata.labels.as_ref().is_some_and(|l| l.contains_key(ATTACHED_LABEL))
}

/// A `DependencyPolicyConflict` Event on an attached binding whose requiring workloads disagree
/// (each time the settings are worked out, written or not: the Event says what the conflict is
/// now; identical Events are deduplicated by the recorder).
fn report_conflict(ctx: &Context, binding: &ResourceBinding, settings: &DependencySettings) {
    let conflict = message::dependency_policy_conflict(
        settings.conflict_resolution_conflict,
        settings.preserve_conflict,
    );
    if let Some(note) = conflict {
        let regarding = crate::events::reference_of(binding);
        ctx.events.record(regarding, Reason::DependencyPolicyConflict, note);
    }
}

/// Whether a dependency's binding must be written: its `requiredBy` changes, or (attached)
/// the settings it inherits do.
fn needs_write(
    ctx: &Context,
    binding: &ResourceBinding,
    next: &[BindingSnapshot],
    parent: &ResourceBinding,
) -> bool {
    if next != binding.spec.required_by {
        return true;
    }
    if !is_attached(binding) || next.is_empty() {
        return false;
    }
    let settings = ctx.settings_for(next, Some(parent));
    report_conflict(ctx, binding, &settings);
    let current = match &binding.spec.conflict_resolution {
        ConflictResolution::Unset => &ConflictResolution::Abort,
        set => set,
    };
    *current != settings.conflict_resolution
        || binding.spec.preserve_resources_on_deletion.unwrap_or(false) != settings.preserve
}

async fn reconcile(rb: Arc<ResourceBinding>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = rb.metadata.namespace.clone().unwrap_or_default();
    let name = rb.metadata.name.clone().unwrap_or_default();
    let parent = (ns.clone(), name.clone());
    let was_parent = ctx.parents.lock().is_ok_and(|p| p.contains(&parent));
    if !rb.spec.propagate_deps && !was_parent && rb.spec.required_by.is_empty() {
        return Ok(Action::await_change());
    }
    let api: Api<ResourceBinding> = Api::namespaced(ctx.client.clone(), &ns);
    // An attached binding follows its dependency's changes (the detector records them; one
    // that changed before this binding reached the detector's cache is caught up here).
    if rb.metadata.labels.as_ref().is_some_and(|l| l.contains_key(ATTACHED_LABEL)) {
        let resource = &rb.spec.resource;
        let (group, version) =
            resource.api_version.split_once('/').unwrap_or(("", resource.api_version.as_str()));
        let ar = ctx.resource(&GroupVersionKind::gvk(group, version, &resource.kind)).await?;
        let current = ctx
            .templates
            .get(&ar, &resource.namespace, &resource.name)
            .and_then(|t| t.metadata.resource_version);
        if let Some(rv) = current.filter(|rv| {
            *rv != resource.resource_version
                && crate::rv_at_least(Some(rv), &resource.resource_version)
        }) {
            let patch = json!({"metadata": {"resourceVersion": rb.metadata.resource_version},
                "spec": {"resource": {"resourceVersion": rv}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
            return Ok(Action::await_change());
        }
    }
    // Entries of workloads that are gone are dropped.
    let stale: Vec<&BindingSnapshot> = rb
        .spec
        .required_by
        .iter()
        .filter(|s| {
            s.namespace == ns
                && ctx.bindings.get(&ObjectRef::new(&s.name).within(&s.namespace)).is_none()
        })
        .collect();
    if !stale.is_empty() {
        let mut kept = rb.spec.required_by.clone();
        kept.retain(|s| !stale.contains(&s));
        write_required_by(&ctx, &api, &rb, kept, None).await?;
        return Ok(Action::await_change());
    }
    // What this binding's workload needs now.
    let mut wanted: Vec<Dependency> = Vec::new();
    let mut missing = false;
    let mut pending = false;
    if rb.spec.propagate_deps && rb.metadata.deletion_timestamp.is_none() {
        let resource = &rb.spec.resource;
        // Label-selected dependencies are listed again each time (what they select changes
        // without the workload changing).
        let selects = ctx.selected.lock().is_ok_and(|s| s.contains_key(&parent));
        let known = ctx.found.lock().ok().filter(|_| !selects).and_then(|f| {
            f.get(&parent)
                .filter(|(rv, _)| *rv == resource.resource_version)
                .map(|(_, d)| d.clone())
        });
        if let Some(deps) = known {
            wanted = deps;
        } else {
            let (group, version) =
                resource.api_version.split_once('/').unwrap_or(("", resource.api_version.as_str()));
            let ar = ctx.resource(&GroupVersionKind::gvk(group, version, &resource.kind)).await?;
            let cached = ctx.templates.get(&ar, &resource.namespace, &resource.name).filter(|t| {
                crate::rv_at_least(
                    t.metadata.resource_version.as_deref(),
                    &resource.resource_version,
                )
            });
            let template = match cached {
                Some(t) => Some(t),
                None => {
                    Api::<LeanObject>::namespaced_with(ctx.client.clone(), &resource.namespace, &ar)
                        .get_opt(&resource.name)
                        .await?
                }
            };
            if let Some(template) = template {
                let mut object = template.to_value();
                object["apiVersion"] = json!(ar.api_version);
                object["kind"] = json!(ar.kind);
                wanted = match ctx.interpreter.dependencies(&object).await {
                    Ok(refs) => {
                        ctx.watch_selected(&parent, &ns, &refs).await?;
                        resolve(&ctx, &ns, refs).await?
                    }
                    Err(failure) => {
                        tracing::warn!(workload = %name, error = %failure, "interpreting dependencies failed");
                        ctx.events.record(
                            crate::events::template_reference(resource),
                            Reason::GetDependenciesFailed,
                            failure.to_string(),
                        );
                        return Ok(Action::requeue(Duration::from_secs(30)));
                    }
                };
                ctx.events.record(
                    crate::events::template_reference(resource),
                    Reason::GetDependenciesSucceed,
                    message::dependencies_found(wanted.iter().map(|d| {
                        (d.api_version.as_str(), d.kind.as_str(), ns.as_str(), d.name.as_str())
                    })),
                );
                if let Ok(mut found) = ctx.found.lock() {
                    found.insert(
                        parent.clone(),
                        (resource.resource_version.clone(), wanted.clone()),
                    );
                }
            }
        }
    }
    // Nothing changed for this workload since its last complete pass (a status update).
    let fingerprint = (
        rb.spec.resource.resource_version.clone(),
        rb.spec.clusters.clone(),
        wanted.clone(),
        rb.spec.conflict_resolution.clone(),
        rb.spec.preserve_resources_on_deletion,
    );
    if ctx.passes.lock().is_ok_and(|p| p.get(&parent) == Some(&fingerprint)) {
        return Ok(Action::await_change());
    }
    if let Ok(mut parents) = ctx.parents.lock() {
        if wanted.is_empty() {
            parents.remove(&parent);
            if let Ok(mut found) = ctx.found.lock() {
                found.remove(&parent);
            }
            if !rb.spec.propagate_deps || rb.metadata.deletion_timestamp.is_some() {
                ctx.selected.lock().map(|mut s| s.remove(&parent)).ok();
            }
        } else {
            parents.insert(parent.clone());
        }
    }
    let wanted_names: BTreeSet<String> =
        wanted.iter().map(|d| propagation::binding_name(&d.kind, &d.name)).collect();
    // Dependencies no longer needed lose this workload.
    for b in ctx.listing(&parent) {
        let b_name = b.metadata.name.clone().unwrap_or_default();
        let listed = b.spec.required_by.iter().any(|s| s.namespace == ns && s.name == name);
        if listed && !wanted_names.contains(&b_name) {
            let next = required_by_with(&b.spec.required_by, &ns, &name, None);
            write_required_by(&ctx, &api, &b, next, None).await?;
        }
    }
    // Dependencies needed get (or keep) this workload with its current clusters.
    for dep in &wanted {
        let dep_binding = propagation::binding_name(&dep.kind, &dep.name);
        if let Some(b) = ctx.bindings.get(&ObjectRef::new(&dep_binding).within(&ns)) {
            if let Ok(mut created) = ctx.created.lock() {
                created.remove(&(ns.clone(), dep_binding.clone()));
            }
            let next = required_by_with(&b.spec.required_by, &ns, &name, Some(&rb.spec.clusters));
            if needs_write(&ctx, &b, &next, &rb) {
                write_required_by(&ctx, &api, &b, next, Some(&rb)).await?;
            }
            continue;
        }
        // Nothing to follow until the workload is scheduled: the dependency's binding is
        // created with the workload's clusters (one write, not a create and an update).
        if rb.spec.clusters.is_empty() {
            continue;
        }
        let created_key = (ns.clone(), dep_binding.clone());
        let recent = ctx.created.lock().is_ok_and(|c| {
            c.get(&created_key).is_some_and(|at| at.elapsed() < Duration::from_secs(30))
        });
        if recent {
            // Created by this controller and not yet in its cache: wait for it.
            pending = true;
            continue;
        }
        let (group, version) = dep.api_version.split_once('/').unwrap_or(("", &dep.api_version));
        let ar = ctx.resource(&GroupVersionKind::gvk(group, version, &dep.kind)).await?;
        let object = match ctx.templates.get(&ar, &ns, &dep.name) {
            Some(o) => Some(o),
            None => {
                Api::<LeanObject>::namespaced_with(ctx.client.clone(), &ns, &ar)
                    .get_opt(&dep.name)
                    .await?
            }
        };
        let Some(object) = object else {
            missing = true;
            continue;
        };
        let Some(binding) = propagation::binding::attached_binding_for(
            dep,
            &ns,
            object.metadata.uid.as_deref(),
            object.metadata.resource_version.as_deref(),
            &required_by_with(&[], &ns, &name, Some(&rb.spec.clusters)),
            &rb.spec.conflict_resolution,
            rb.spec.preserve_resources_on_deletion,
        ) else {
            tracing::warn!(dependency = %dep.name, "cannot build an attached binding");
            continue;
        };
        ctx.note_listed(&binding);
        match api.create(&PostParams::default(), &binding).await {
            Ok(_) => {
                if let Ok(mut created) = ctx.created.lock() {
                    created.retain(|_, at| at.elapsed() < Duration::from_secs(30));
                    created.insert(created_key, std::time::Instant::now());
                }
            }
            // Created meanwhile (by the detector or another workload): next pass updates it.
            // It exists but the cache has not shown it yet (it lags under load): update it
            // from a fresh read instead of waiting.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let current = api.get(&dep_binding).await?;
                let next = required_by_with(
                    &current.spec.required_by,
                    &ns,
                    &name,
                    Some(&rb.spec.clusters),
                );
                if needs_write(&ctx, &current, &next, &rb) {
                    write_required_by(&ctx, &api, &current, next, Some(&rb)).await?;
                }
                if let Ok(mut created) = ctx.created.lock() {
                    created.insert((ns.clone(), dep_binding.clone()), std::time::Instant::now());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if pending {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if let Ok(mut passes) = ctx.passes.lock() {
        if missing {
            passes.remove(&parent);
        } else {
            passes.insert(parent.clone(), fingerprint);
        }
    }
    if missing {
        // A dependency created after its workload is picked up on a later pass.
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    if rb.spec.propagate_deps {
        ctx.events.record(
            crate::events::reference_of(rb.as_ref()),
            Reason::SyncScheduleResultToDependenciesSucceed,
            message::SCHEDULE_RESULT_SYNCED_TO_DEPENDENCIES,
        );
    }
    Ok(Action::requeue(Duration::from_secs(if rb.spec.required_by.is_empty() { 300 } else { 60 })))
}

fn error_policy(_: Arc<ResourceBinding>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "dependencies",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(1),
    )
}

/// Runs the dependencies distributor until the future is dropped.
/// Watches one kind of label-selected dependencies: each object applied or deleted sends the
/// bindings whose selectors (in its namespace) match it to be looked at again.
async fn watch_kind(
    client: kube::Client,
    ar: ApiResource,
    id: String,
    selected: Arc<Mutex<HashMap<BindingKey, Vec<Selected>>>>,
    again: futures::channel::mpsc::UnboundedSender<ObjectRef<ResourceBinding>>,
) {
    use kube::runtime::{WatchStreamExt, watcher};
    let api = Api::<LeanObject>::all_with(client, &ar);
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(
                watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o),
            ) => o,
            _ => continue,
        };
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let labels: std::collections::BTreeMap<String, String> =
            object.metadata.labels.clone().unwrap_or_default().into_iter().collect();
        let bindings: Vec<BindingKey> = selected
            .lock()
            .map(|all| {
                all.iter()
                    .filter(|(_, deps)| {
                        deps.iter().any(|d| {
                            d.kind == id && d.namespace == namespace && d.selector.matches(&labels)
                        })
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (ns, name) in bindings {
            if again.unbounded_send(ObjectRef::new(&name).within(&ns)).is_err() {
                return;
            }
        }
    }
}

pub async fn run(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let bindings = caches.bindings.store();
    let templates = Arc::clone(&caches.templates);
    let (again, again_rx) = futures::channel::mpsc::unbounded();
    let controller = Controller::for_shared_stream(caches.bindings.applied(), bindings.clone())
        .with_config(crate::controller_config())
        .reconcile_on(again_rx);
    let ctx = Arc::new(Context {
        events: crate::events::Events::start(client.clone(), "dependencies-distributor"),
        client,
        bindings,
        templates,
        kinds: crate::KindCache::default(),
        parents: Mutex::new(BTreeSet::new()),
        found: Mutex::new(HashMap::new()),
        created: Mutex::new(HashMap::new()),
        passes: Mutex::new(HashMap::new()),
        listed: Mutex::new(None),
        interpreter: Arc::clone(&caches.interpreter),
        selected: Arc::default(),
        watched: Mutex::new(BTreeSet::new()),
        again,
    });
    caches.interpreter.ready().await;
    // A customization change may change any workload's dependencies: found again.
    let forget = Arc::clone(&ctx);
    let changes = caches.interpreter.changes().map(move |()| {
        if let Ok(mut found) = forget.found.lock() {
            found.clear();
        }
    });
    controller
        .reconcile_all_on(changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABORT: ConflictResolution = ConflictResolution::Abort;
    const OVERWRITE: ConflictResolution = ConflictResolution::Overwrite;

    fn snap(ns: &str, name: &str, clusters: &[&str]) -> BindingSnapshot {
        BindingSnapshot {
            namespace: ns.into(),
            name: name.into(),
            clusters: clusters.iter().map(|c| TargetCluster::new(*c, 1)).collect(),
        }
    }

    #[test]
    fn shared_dependencies_resolve_settings_like_upstream() {
        let s = dependency_settings([(&ConflictResolution::Unset, None)]);
        assert_eq!((s.conflict_resolution, s.preserve), (ABORT, false));
        assert!(!s.conflict_resolution_conflict && !s.preserve_conflict);
        let s = dependency_settings([(&OVERWRITE, Some(true)), (&ABORT, Some(false))]);
        assert_eq!((s.conflict_resolution, s.preserve), (OVERWRITE, true));
        assert!(s.conflict_resolution_conflict && s.preserve_conflict);
        let s = dependency_settings([(&OVERWRITE, Some(true)), (&OVERWRITE, Some(true))]);
        assert_eq!((s.conflict_resolution, s.preserve), (OVERWRITE, true));
        assert!(!s.conflict_resolution_conflict && !s.preserve_conflict);
        let s = dependency_settings([(&ABORT, None), (&ConflictResolution::Unset, Some(false))]);
        assert_eq!((s.conflict_resolution, s.preserve), (ABORT, false));
        assert!(!s.conflict_resolution_conflict && !s.preserve_conflict);
    }

    #[test]
    fn required_by_is_kept_sorted_and_updated_in_place() {
        let current = vec![snap("default", "b", &["m1"]), snap("default", "a", &["m2"])];
        let m3 = [TargetCluster::new("m3", 1)];
        let next = required_by_with(&current, "default", "b", Some(&m3));
        assert_eq!(next, vec![snap("default", "a", &["m2"]), snap("default", "b", &["m3"])]);
        let next = required_by_with(&next, "default", "c", Some(&[]));
        assert_eq!(next.len(), 3);
        assert_eq!(next[2].name, "c");
        let next = required_by_with(&next, "default", "a", None);
        assert_eq!(next.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(
            required_by_with(&next, "other", "b", None).len(),
            2,
            "namespaces are kept apart"
        );
    }
}
