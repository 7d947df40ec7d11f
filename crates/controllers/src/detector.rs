//! The resource detector: watches every resource type the control plane serves (found by
//! discovery; Karmada's own groups and bookkeeping kinds excluded), matches templates to the
//! highest-priority PropagationPolicy or ClusterPropagationPolicy (`propagation` crate), labels
//! the template with its claim, and writes one ResourceBinding (namespaced templates) or
//! ClusterResourceBinding (cluster-scoped ones) per template, owned by the template.
//! A template created before its policy is picked up when the policy arrives.

use karmada_api::events::{PolicyName, Reason, message};
use karmada_api::features::Feature;
use propagation::binding::Workload;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use karmada_api::names;
use karmada_api::policy::{ActivationPreference, ClusterPropagationPolicy, PropagationPolicy};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

use crate::lean::LeanObject;
use crate::templates::{TemplateKey, Templates, kind_id};
use kube::discovery::{Scope, verbs};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use propagation::{Policy, Template};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Namespaces whose templates are never propagated.
pub fn reserved_namespace(ns: &str) -> bool {
    ns == names::SYSTEM_NAMESPACE
        || ns == names::CLUSTER_NAMESPACE
        || names::cluster_of_execution_namespace(ns).is_some()
        || ns.starts_with("kube-")
}

/// Groups and kinds that are not resource templates (upstream skips Karmada's groups, Events
/// and Leases; namespaces have their own controller; nodes, endpoints and component statuses
/// describe a cluster rather than a workload). Pods are templates like any other.
fn skipped(resource: &ApiResource) -> bool {
    karmada_api::kinds::is_karmada_group(&resource.group)
        || matches!(resource.group.as_str(), "coordination.k8s.io" | "events.k8s.io")
        || (resource.group.is_empty()
            && matches!(
                resource.plural.as_str(),
                "events" | "namespaces" | "nodes" | "endpoints" | "componentstatuses"
            ))
}

struct State {
    client: kube::Client,
    templates: Arc<Templates>,
    bindings: Store<karmada_api::work::ResourceBinding>,
    pps: Store<PropagationPolicy>,
    cpps: Store<ClusterPropagationPolicy>,
    /// The binding last applied for each template, so an unchanged one is not written again.
    applied: Mutex<HashMap<TemplateKey, u64>>,
    /// Per template: a fingerprint of everything but its status, and the resourceVersion at
    /// which that last changed.
    versions: Mutex<HashMap<TemplateKey, (u64, String)>>,
    /// Bumped on every (cluster) propagation policy change, after the caches have it.
    policy_epoch: Arc<AtomicU64>,
    /// Per template: its content fingerprint and the policy epoch of its last complete pass.
    settled: Mutex<HashMap<TemplateKey, (u64, u64)>>,
    /// Per template: a fingerprint of what its users wrote (`user_hash`), and whether a
    /// complete pass has seen that version — a Lazy policy's binding is refreshed only by a
    /// version no pass has seen yet (a template created or changed by a user, or every
    /// template once after a restart, as upstream's detector).
    activation: Mutex<HashMap<TemplateKey, (u64, bool)>>,
    events: crate::events::Events,
    interpreter: Arc<crate::interpreting::Interpreting>,
    /// Where a retry of the templates the interpreter failed on is asked for, and whether one
    /// is already due.
    retry: mpsc::Sender<Change>,
    retry_due: Arc<std::sync::atomic::AtomicBool>,
    /// `PolicyPreemption`, `PriorityBasedScheduling`, `MultiplePodTemplatesScheduling`.
    features: karmada_api::features::FeatureGates,
    /// The (Cluster)OverridePolicies, for policies' `dependentOverrides`.
    overrides: Store<karmada_api::policy::OverridePolicy>,
    cluster_overrides: Store<karmada_api::policy::ClusterOverridePolicy>,
    /// Set while a template waits for a policy's dependent overrides: the next override
    /// created looks at every template again.
    waiting_overrides: Arc<std::sync::atomic::AtomicBool>,
}

/// How many templates are reconciled at once.
const WORKERS: usize = 16;

/// The detector's work queue: deduplicated by template, fresh changes before the resync
/// backlog, and a template changed while it is being reconciled goes again afterwards.
#[derive(Default)]
struct Queue {
    fresh: VecDeque<TemplateKey>,
    resync: VecDeque<TemplateKey>,
    queued: HashSet<TemplateKey>,
    running: HashSet<TemplateKey>,
    again: HashSet<TemplateKey>,
}

impl Queue {
    fn push_fresh(&mut self, k: TemplateKey) {
        if self.running.contains(&k) {
            self.again.insert(k);
        } else if self.queued.insert(k.clone()) {
            self.fresh.push_back(k);
        } else if self.resync.contains(&k) {
            // Promote a template waiting in the backlog.
            self.resync.retain(|r| r != &k);
            self.fresh.push_back(k);
        }
    }

    fn push_resync(&mut self, k: TemplateKey) {
        if self.running.contains(&k) {
            self.again.insert(k);
        } else if self.queued.insert(k.clone()) {
            self.resync.push_back(k);
        }
    }

    /// The next template to reconcile (marked running).
    fn next(&mut self) -> Option<TemplateKey> {
        let k = self.fresh.pop_front().or_else(|| self.resync.pop_front())?;
        self.queued.remove(&k);
        self.running.insert(k.clone());
        Some(k)
    }

    fn done(&mut self, k: &TemplateKey) {
        self.running.remove(k);
        if self.again.remove(k) {
            self.push_fresh(k.clone());
        }
    }
}

/// What policies match a template by: its kind, namespace, name and labels.
/// A fingerprint of what a template's users wrote: everything but its status, server
/// bookkeeping and the labels and annotations Karmada puts on it (claims, markers), so that
/// neither Karmada's writes nor status updates count as changes of the template.
fn user_hash(obj: &LeanObject) -> u64 {
    const KARMADA_KEYS: &[&str] = &[
        names::PP_PERMANENT_ID_LABEL,
        names::PP_NAME_ANNOTATION,
        names::PP_NAMESPACE_ANNOTATION,
        names::CPP_PERMANENT_ID_LABEL,
        names::CPP_NAME_ANNOTATION,
        names::LEGACY_PP_NAME_LABEL,
        names::LEGACY_PP_NAMESPACE_LABEL,
        names::LEGACY_CPP_NAME_LABEL,
        names::CLAIMED_BY_LABEL,
        names::MCS_PERMANENT_ID_LABEL,
        names::MCS_NAME_ANNOTATION,
        names::MCS_NAMESPACE_ANNOTATION,
        names::RETAIN_REPLICAS_LABEL,
    ];
    obj.user_hash(KARMADA_KEYS)
}

fn template_of(ar: &ApiResource, obj: &LeanObject) -> Template {
    Template {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name.clone().unwrap_or_default(),
        labels: obj.metadata.labels.clone().unwrap_or_default(),
    }
}

fn key(ar: &ApiResource, obj: &LeanObject) -> TemplateKey {
    (
        kind_id(ar),
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

/// How long after an interpreter failure its templates are tried again (a failure that
/// passes — a script that ran out of time under load — heals; a broken script is tried again
/// when its customization changes, and every so often).
const RETRY_FAILED: Duration = Duration::from_secs(30);

impl State {
    /// Another look at every unsettled template in a while (at most one pending).
    fn retry_failed(&self) {
        if self.retry_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let (tx, due) = (self.retry.clone(), Arc::clone(&self.retry_due));
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_FAILED).await;
            due.store(false, Ordering::Release);
            let _ = tx.send(Change::Policies).await;
        });
    }

    /// Matches a template to its policy and writes its binding, unless neither the template
    /// (status aside) nor any policy changed since its last complete pass: the aggregated
    /// status written back to templates, several times per rollout, costs no policy matching.
    async fn reconcile(
        &self,
        ar: &ApiResource,
        namespaced: bool,
        template: &LeanObject,
    ) -> Result<(), kube::Error> {
        let ns = template.metadata.namespace.clone().unwrap_or_default();
        if reserved_namespace(&ns) || template.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // Propagated by something else (a MultiClusterService claims its Service): no policy
        // takes it, as upstream's detector.
        if template
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(names::CLAIMED_BY_LABEL))
            .is_some_and(|v| !v.is_empty())
        {
            return Ok(());
        }
        // Read before the policy caches: a policy change after this bumps it again.
        let epoch = self.policy_epoch.load(Ordering::Acquire);
        let content = template.content_hash();
        let k = key(ar, template);
        let user = user_hash(template);
        if let Ok(mut activation) = self.activation.lock() {
            let entry = activation.entry(k.clone()).or_insert((user, false));
            if entry.0 != user {
                *entry = (user, false);
            }
        }
        if self.settled.lock().is_ok_and(|s| s.get(&k) == Some(&(content, epoch))) {
            return Ok(());
        }
        // A template claimed in this pass goes on to its binding as the claim returned it
        // (not a second pass when its watch event comes back); at most one claim per pass.
        let mut current = Cow::Borrowed(template);
        let mut content = content;
        for _ in 0..2 {
            let mut object = current.to_value();
            object["apiVersion"] = json!(ar.api_version);
            object["kind"] = json!(ar.kind);
            match self.reconcile_object(ar, namespaced, &current, object, content).await? {
                Pass::Done => break,
                Pass::Failed => {
                    self.retry_failed();
                    return Ok(());
                }
                Pass::Claimed(claimed) => {
                    content = claimed.content_hash();
                    current = Cow::Owned(*claimed);
                }
            }
        }
        if let Ok(mut activation) = self.activation.lock()
            && let Some(entry) = activation.get_mut(&k)
        {
            entry.1 = true;
        }
        if let Ok(mut settled) = self.settled.lock() {
            settled.insert(k, (content, epoch));
        }
        Ok(())
    }

    /// Whether a Lazy policy may refresh this template's binding now: a version of it no
    /// complete pass has seen (its user changed it, or it is new to this detector).
    fn unseen_version(&self, k: &TemplateKey) -> bool {
        self.activation.lock().map(|a| a.get(k).is_none_or(|(_, seen)| !seen)).unwrap_or(true)
    }

    async fn reconcile_object(
        &self,
        ar: &ApiResource,
        namespaced: bool,
        template: &LeanObject,
        object: Value,
        content: u64,
    ) -> Result<Pass, kube::Error> {
        let ns = template.metadata.namespace.clone().unwrap_or_default();
        let t = template_of(ar, template);
        let pp_list = self.pps.state();
        let cpp_list = self.cpps.state();
        let (pps, cpps) = live_policies(&pp_list, &cpp_list);
        let labels = template.metadata.labels.clone().unwrap_or_default();
        let annotations = template.metadata.annotations.clone().unwrap_or_default();
        // A claimed template keeps its policy unless a preempting policy outranks it.
        let holder = propagation::Claim::holder(&labels, &annotations)
            .and_then(|(pns, pname)| {
                if pns.is_empty() {
                    cpps.iter().find(|p| p.name == pname)
                } else {
                    pps.iter().find(|p| p.name == pname && p.namespace == pns && pns == ns)
                }
            })
            .and_then(|p| propagation::policy_matches(p, &t).map(|i| (p, i)));
        // A cluster-scoped template can only match ClusterPropagationPolicies.
        let namespace_policies: &[Policy<'_>] = if namespaced { &pps } else { &[] };
        let best = propagation::best_policy(&t, namespace_policies, &cpps)
            .and_then(|p| propagation::policy_matches(p, &t).map(|i| (p, i)));
        // The holder a higher-priority policy takes the template from (for the Event); only
        // with PolicyPreemption.
        let may_preempt = |b, h| {
            self.features.enabled(Feature::PolicyPreemption) && propagation::may_preempt(b, h)
        };
        let preempted = match (holder, best) {
            (Some(h), Some(b))
                if (b.0.name != h.0.name || b.0.namespace != h.0.namespace)
                    && may_preempt(b, h) =>
            {
                Some(h.0)
            }
            _ => None,
        };
        let chosen = match (holder, best) {
            (Some(h), Some(b)) if b.0.name != h.0.name || b.0.namespace != h.0.namespace => {
                if may_preempt(b, h) {
                    Some(b.0)
                } else {
                    Some(h.0)
                }
            }
            (Some(h), _) => Some(h.0),
            (None, b) => b.map(|(p, _)| p),
        };
        let name = template.metadata.name.clone().unwrap_or_default();
        let templates: Api<LeanObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), &ns, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        };
        let Some(policy) = chosen else {
            // No policy (any more): a template claimed by a deleted policy is unclaimed; its
            // binding stays, without the claim, and what was propagated stays where it is.
            if claimed(&labels, &annotations) {
                self.unclaim(ar, namespaced, &templates, &name, &labels, &annotations).await?;
            }
            // Any kind can be a dependency (customizations and webhooks name them): an
            // attached binding follows its object (a cache lookup for the others).
            if namespaced {
                self.refresh_attached(ar, &ns, &name, template).await?;
            }
            return Ok(Pass::Done);
        };
        // `dependentOverrides`: the policy takes effect only once every override it names
        // exists (in its namespace; ClusterOverridePolicies for a cluster policy), as upstream.
        let missing = policy.spec.dependent_overrides.iter().find(|o| {
            if policy.cluster_scoped() {
                !self.cluster_overrides.state().iter().any(|c| c.metadata.name.as_ref() == Some(*o))
            } else {
                !self.overrides.state().iter().any(|c| {
                    c.metadata.name.as_ref() == Some(*o)
                        && c.metadata.namespace.as_deref() == Some(policy.namespace)
                })
            }
        });
        if let Some(missing) = missing {
            tracing::info!(template = %name, policy = policy.name, %missing, "waiting for dependent overrides");
            self.waiting_overrides.store(true, Ordering::Release);
            return Ok(Pass::Failed);
        }
        let policy_id = if policy.cluster_scoped() {
            cpp_list.iter().find(|p| p.metadata.name.as_deref() == Some(policy.name)).and_then(
                |p| p.metadata.labels.as_ref()?.get(names::CPP_PERMANENT_ID_LABEL).cloned(),
            )
        } else {
            pp_list
                .iter()
                .find(|p| {
                    p.metadata.name.as_deref() == Some(policy.name)
                        && p.metadata.namespace.as_deref() == Some(policy.namespace)
                })
                .and_then(|p| {
                    p.metadata.labels.as_ref()?.get(names::PP_PERMANENT_ID_LABEL).cloned()
                })
        }
        .unwrap_or_default();
        // The template, as its Events name it.
        let regarding = crate::events::reference(
            &ar.api_version,
            &ar.kind,
            Some(&ns),
            &name,
            template.metadata.uid.as_deref(),
        );
        // Claim the template (dropping the claim of a policy it was taken from).
        let claim = propagation::Claim::of(policy, &policy_id);
        if let Some(patch) = claim_patch(&claim, &labels, &annotations) {
            let claimed = templates.patch(&name, &PatchParams::default(), &patch).await?;
            if let Some(from) = preempted {
                self.events.record(
                    regarding.clone(),
                    Reason::PreemptPolicySucceed,
                    message::preempted(
                        PolicyName {
                            namespace: (!policy.cluster_scoped()).then_some(policy.namespace),
                            name: policy.name,
                        },
                        PolicyName {
                            namespace: (!from.cluster_scoped()).then_some(from.namespace),
                            name: from.name,
                        },
                    ),
                );
            }
            self.templates.insert_newer(
                key(ar, &claimed),
                (Arc::new(ar.clone()), namespaced, claimed.clone()),
            );
            return Ok(Pass::Claimed(Box::new(claimed)));
        }
        // A Lazy policy takes effect when the template next changes, not when the policy does
        // (the claim above is made either way, as upstream's).
        if policy.spec.activation_preference == ActivationPreference::Lazy
            && !self.unseen_version(&key(ar, template))
        {
            return Ok(Pass::Done);
        }
        // The binding. It records the template's resourceVersion of its last change that
        // was not a status update (aggregated status written back is not a change to
        // propagate).
        let memo = (kind_id(ar), ns.clone(), name.clone());
        let current_rv = template.metadata.resource_version.clone().unwrap_or_default();
        let recorded_rv = match self.versions.lock() {
            Ok(mut versions) => {
                let entry = versions.entry(memo.clone()).or_insert((content, current_rv.clone()));
                if entry.0 != content {
                    *entry = (content, current_rv.clone());
                }
                entry.1.clone()
            }
            Err(_) => current_rv,
        };
        // Components first (a workload with several pod templates), then replicas, as upstream
        // (components only with MultiplePodTemplatesScheduling).
        let components = if self.features.enabled(Feature::MultiplePodTemplatesScheduling) {
            self.interpreter.get_components(&object).await
        } else {
            Ok(None)
        };
        let workload = match components {
            Err(failure) => {
                tracing::warn!(template = %name, error = %failure, "interpreting components failed");
                self.events.record(regarding, Reason::GetComponentsFailed, failure.to_string());
                return Ok(Pass::Failed);
            }
            Ok(Some(components)) => {
                self.events.record(
                    regarding.clone(),
                    Reason::GetComponentsSucceed,
                    message::COMPONENTS_INTERPRETED,
                );
                Workload::Components(components)
            }
            Ok(None) => match self.interpreter.get_replicas(&object).await {
                Err(failure) => {
                    tracing::warn!(template = %name, error = %failure, "interpreting replicas failed");
                    self.events.record(regarding, Reason::GetReplicasFailed, failure.to_string());
                    return Ok(Pass::Failed);
                }
                Ok(Some((count, requirements))) => {
                    self.events.record(
                        regarding.clone(),
                        Reason::GetReplicasSucceed,
                        message::REPLICAS_INTERPRETED,
                    );
                    Workload::Replicas(count, requirements)
                }
                Ok(None) => Workload::Plain,
            },
        };
        // `schedulePriority` (KubePriorityClass): the class's value goes on the binding; a
        // class that does not exist means no binding (tried again in a while), as upstream.
        let priority = match &policy.spec.schedule_priority {
            Some(p)
                if self.features.enabled(Feature::PriorityBasedScheduling)
                    && p.priority_class_source == "KubePriorityClass"
                    && !p.priority_class_name.is_empty() =>
            {
                let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> =
                    Api::all(self.client.clone());
                match classes.get_opt(&p.priority_class_name).await? {
                    Some(class) => Some(class.value),
                    None => {
                        let policy_name = PolicyName {
                            namespace: (!policy.cluster_scoped()).then_some(policy.namespace),
                            name: policy.name,
                        };
                        self.events.record(
                            regarding,
                            Reason::ApplyPolicyFailed,
                            message::apply_policy_failed(
                                policy_name,
                                &format!(
                                    "priorityclasses.scheduling.k8s.io {:?} not found",
                                    p.priority_class_name
                                ),
                            ),
                        );
                        return Ok(Pass::Failed);
                    }
                }
            }
            _ => None,
        };
        // `workloadAffinity` groups, behind the WorkloadAffinity gate.
        let affinity_groups = if self.features.enabled(Feature::WorkloadAffinity) {
            let template_labels = template.metadata.labels.clone().unwrap_or_default();
            propagation::binding::workload_affinity_groups(&policy.spec.placement, &template_labels)
        } else {
            None
        };
        let binding = propagation::binding::binding_for(&propagation::binding::BindingInputs {
            api_version: &ar.api_version,
            kind: &ar.kind,
            namespace: if namespaced { ns.as_str() } else { "" },
            name: &name,
            uid: template.metadata.uid.as_deref(),
            resource_version: &recorded_rv,
            policy: policy.spec,
            workload: &workload,
            labels: &claim.labels,
            annotations: &claim.annotations,
            priority,
            affinity_groups: affinity_groups.as_ref(),
        });
        let binding_name = propagation::binding_name(&ar.kind, &name);
        let binding_ar = crate::binding_resource(namespaced);
        let bindings: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), &ns, &binding_ar)
        } else {
            Api::all_with(self.client.clone(), &binding_ar)
        };
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            binding.to_string().hash(&mut h);
            h.finish()
        };
        if self.applied.lock().is_ok_and(|a| a.get(&memo) == Some(&fingerprint)) {
            return Ok(Pass::Done);
        }
        let written = bindings
            .patch(
                &binding_name,
                &PatchParams::apply("karmada-detector").force(),
                &Patch::Apply(&binding),
            )
            .await;
        let policy_name = PolicyName {
            namespace: (!policy.cluster_scoped()).then_some(policy.namespace),
            name: policy.name,
        };
        if let Err(e) = written {
            self.events.record(
                regarding,
                Reason::ApplyPolicyFailed,
                message::apply_policy_failed(policy_name, &crate::error_text(&e)),
            );
            return Err(e);
        }
        self.events.record(
            regarding,
            Reason::ApplyPolicySucceed,
            message::apply_policy_succeed(policy_name),
        );
        if let Ok(mut applied) = self.applied.lock() {
            applied.insert(memo, fingerprint);
        }
        Ok(Pass::Done)
    }
}

/// The policies not being deleted, as the matcher sees them.
fn live_policies<'a>(
    pp_list: &'a [Arc<PropagationPolicy>],
    cpp_list: &'a [Arc<ClusterPropagationPolicy>],
) -> (Vec<Policy<'a>>, Vec<Policy<'a>>) {
    let pps = pp_list
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| Policy {
            namespace: p.metadata.namespace.as_deref().unwrap_or_default(),
            name: p.metadata.name.as_deref().unwrap_or_default(),
            spec: &p.spec,
        })
        .collect();
    let cpps = cpp_list
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| Policy {
            namespace: "",
            name: p.metadata.name.as_deref().unwrap_or_default(),
            spec: &p.spec,
        })
        .collect();
    (pps, cpps)
}

/// What a pass over a template did.
enum Pass {
    Done,
    /// The interpreter failed (its Event is recorded): the template is not settled, a change
    /// to it or to the customizations brings it back.
    Failed,
    /// It claimed the template; the claimed template (as the API returned it) is next.
    Claimed(Box<LeanObject>),
}

impl State {
    /// Whether a template listed at (re)start is new work: not claimed by any policy yet, and
    /// one matches it. Claimed templates (their bindings exist) and templates no policy
    /// selects are the resync, which comes after new work.
    fn is_new_work(&self, ar: &ApiResource, namespaced: bool, obj: &LeanObject) -> bool {
        let labels = obj.metadata.labels.clone().unwrap_or_default();
        let annotations = obj.metadata.annotations.clone().unwrap_or_default();
        if claimed(&labels, &annotations) {
            return false;
        }
        let t = template_of(ar, obj);
        let (pp_list, cpp_list) = (self.pps.state(), self.cpps.state());
        let (pps, cpps) = live_policies(&pp_list, &cpp_list);
        let namespace_policies: &[Policy<'_>] = if namespaced { &pps } else { &[] };
        propagation::best_policy(&t, namespace_policies, &cpps).is_some()
    }

    /// Drops what is remembered of a deleted template.
    fn forget(&self, k: &TemplateKey) {
        self.templates.remove(k);
        if let Ok(mut applied) = self.applied.lock() {
            applied.remove(k);
        }
        if let Ok(mut versions) = self.versions.lock() {
            versions.remove(k);
        }
        if let Ok(mut settled) = self.settled.lock() {
            settled.remove(k);
        }
        if let Ok(mut activation) = self.activation.lock() {
            activation.remove(k);
        }
    }

    /// Removes a deleted policy's claim from a template and its binding.
    async fn unclaim(
        &self,
        ar: &ApiResource,
        namespaced: bool,
        templates: &Api<LeanObject>,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), kube::Error> {
        if let Some(patch) = claim_patch(&propagation::Claim::default(), labels, annotations) {
            templates.patch(name, &PatchParams::default(), &patch).await?;
        }
        let binding_ar = crate::binding_resource(namespaced);
        let ns = templates.namespace().unwrap_or_default();
        let bindings: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), ns, &binding_ar)
        } else {
            Api::all_with(self.client.clone(), &binding_ar)
        };
        let binding = propagation::binding_name(&ar.kind, name);
        if let Some(b) = bindings.get_opt(&binding).await? {
            let (held, noted) =
                (b.metadata.labels.unwrap_or_default(), b.metadata.annotations.unwrap_or_default());
            if let Some(patch) = claim_patch(&propagation::Claim::default(), &held, &noted) {
                bindings.patch(&binding, &PatchParams::default(), &patch).await?;
            }
        }
        tracing::info!(kind = %ar.kind, %name, "template unclaimed: its policy is gone");
        Ok(())
    }
}

impl State {
    /// A dependency propagated with its workload (an attached binding) is re-rendered when it
    /// changes: its binding records the template's new resourceVersion.
    async fn refresh_attached(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
        template: &LeanObject,
    ) -> Result<(), kube::Error> {
        let binding = propagation::binding_name(&ar.kind, name);
        // From the cache: one not there yet was just created, and the dependencies distributor
        // brings it up to date with the template when it sees it.
        let Some(b) = self.bindings.get(&reflector::ObjectRef::new(&binding).within(ns)) else {
            return Ok(());
        };
        let attached =
            b.metadata.labels.as_ref().is_some_and(|l| l.contains_key(names::ATTACHED_LABEL));
        let recorded = b.spec.resource.resource_version.as_str();
        if attached && Some(recorded) != template.metadata.resource_version.as_deref() {
            let bindings: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &crate::binding_resource(true));
            let patch = json!({"spec": {"resource": {"resourceVersion": template.metadata.resource_version}}});
            bindings.patch(&binding, &PatchParams::default(), &Patch::Merge(patch)).await?;
        }
        Ok(())
    }
}

/// Whether an object carries a policy's claim (or an earlier version's claim labels).
fn claimed(labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>) -> bool {
    propagation::CLAIM_LABELS.iter().any(|k| labels.contains_key(*k))
        || propagation::CLAIM_ANNOTATIONS.iter().any(|k| annotations.contains_key(*k))
}

/// The merge patch that makes an object's claim metadata `claim` (an empty claim removes
/// it), or None when it already is.
fn claim_patch(
    claim: &propagation::Claim,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<Patch<Value>> {
    let part = |want: &BTreeMap<String, String>,
                have: &BTreeMap<String, String>,
                keys: &[&str]|
     -> serde_json::Map<String, Value> {
        let mut patch: serde_json::Map<String, Value> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        for k in keys {
            if have.contains_key(*k) && !want.contains_key(*k) {
                patch.insert((*k).to_owned(), Value::Null);
            }
        }
        patch
    };
    let label_patch = part(&claim.labels, labels, &propagation::CLAIM_LABELS);
    let annotation_patch = part(&claim.annotations, annotations, &propagation::CLAIM_ANNOTATIONS);
    if label_patch.is_empty() && annotation_patch.is_empty() {
        return None;
    }
    let mut metadata = serde_json::Map::new();
    if !label_patch.is_empty() {
        metadata.insert("labels".into(), Value::Object(label_patch));
    }
    if !annotation_patch.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotation_patch));
    }
    Some(Patch::Merge(json!({ "metadata": metadata })))
}

enum Change {
    /// A template as watched, and whether it is a fresh change (not part of an initial list).
    Template(Box<(Arc<ApiResource>, bool, LeanObject)>, bool),
    Gone(TemplateKey),
    /// A (re)list of one kind (`group/version/plural`) is complete with these templates: any
    /// other of the kind was deleted while nobody watched.
    Relisted(String, HashSet<TemplateKey>),
    Policies,
}

/// Runs the detector until the future is dropped.
/// Every served group at its preferred version, one request per group: a group that cannot be
/// read (a CRD being removed, an aggregated API that is down) is logged and skipped, and does
/// not hide the others (kube's `Discovery::run` fails as a whole).
async fn discover(client: &kube::Client) -> Vec<kube::discovery::ApiGroup> {
    let mut versions = vec![kube::core::GroupVersion::gv("", "v1")];
    match client.list_api_groups().await {
        Ok(list) => versions.extend(list.groups.iter().filter_map(|g| {
            let preferred = g.preferred_version.as_ref().or(g.versions.first())?;
            Some(kube::core::GroupVersion::gv(&g.name, &preferred.version))
        })),
        Err(e) => tracing::warn!(error = %e, "discovery: cannot list API groups"),
    }
    let mut groups = Vec::with_capacity(versions.len());
    for gv in versions {
        match kube::discovery::pinned_group(client, &gv).await {
            Ok(group) => groups.push(group),
            Err(e) => {
                tracing::warn!(group = %gv.api_version(), error = %e, "discovery: group skipped")
            }
        }
    }
    groups
}

pub async fn run(
    client: kube::Client,
    caches: crate::Caches,
    features: karmada_api::features::FeatureGates,
) -> anyhow::Result<()> {
    let templates = Arc::clone(&caches.templates);
    let (pp_reader, pp_writer) = reflector::store::<PropagationPolicy>();
    let (cpp_reader, cpp_writer) = reflector::store::<ClusterPropagationPolicy>();
    let (tx, mut rx) = mpsc::channel::<Change>(4096);
    let mut tasks = Vec::new();
    let policy_epoch = Arc::new(AtomicU64::new(0));
    {
        let tx = tx.clone();
        let epoch = Arc::clone(&policy_epoch);
        let api: Api<PropagationPolicy> = Api::all(client.clone());
        tasks.push(tokio::spawn(
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(crate::lean)
                .reflect(pp_writer)
                .touched_objects()
                .for_each(move |_| {
                    let tx = tx.clone();
                    epoch.fetch_add(1, Ordering::AcqRel);
                    async move {
                        let _ = tx.send(Change::Policies).await;
                    }
                }),
        ));
    }
    {
        let tx = tx.clone();
        let epoch = Arc::clone(&policy_epoch);
        let api: Api<ClusterPropagationPolicy> = Api::all(client.clone());
        tasks.push(tokio::spawn(
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(crate::lean)
                .reflect(cpp_writer)
                .touched_objects()
                .for_each(move |_| {
                    let tx = tx.clone();
                    epoch.fetch_add(1, Ordering::AcqRel);
                    async move {
                        let _ = tx.send(Change::Policies).await;
                    }
                }),
        ));
    }
    let _ = pp_reader.wait_until_ready().await;
    let _ = cpp_reader.wait_until_ready().await;
    // Templates of every served type; new types (CRDs) are found by re-running discovery.
    let mut watched: HashSet<String> = HashSet::new();
    let mut rediscover = tokio::time::interval(Duration::from_secs(5));
    let state = Arc::new(State {
        client: client.clone(),
        templates: Arc::clone(&templates),
        bindings: caches.bindings.store(),
        pps: pp_reader,
        cpps: cpp_reader,
        applied: Mutex::new(HashMap::new()),
        versions: Mutex::new(HashMap::new()),
        policy_epoch,
        settled: Mutex::new(HashMap::new()),
        activation: Mutex::new(HashMap::new()),
        events: crate::events::Events::start(client.clone(), "resource-detector"),
        interpreter: Arc::clone(&caches.interpreter),
        retry: tx.clone(),
        retry_due: Arc::default(),
        features,
        overrides: caches.override_policies.store(),
        cluster_overrides: caches.cluster_override_policies.store(),
        waiting_overrides: Arc::default(),
    });
    // An override created while templates wait for it: they are looked at again.
    for changes in [
        caches.override_policies.subscribe().map(|c| c.applied().is_some()).boxed(),
        caches.cluster_override_policies.subscribe().map(|c| c.applied().is_some()).boxed(),
    ] {
        let tx = tx.clone();
        let epoch = Arc::clone(&state.policy_epoch);
        let waiting = Arc::clone(&state.waiting_overrides);
        tasks.push(tokio::spawn(changes.for_each(move |applied| {
            let wake = applied && waiting.swap(false, Ordering::AcqRel);
            if wake {
                epoch.fetch_add(1, Ordering::AcqRel);
            }
            let tx = tx.clone();
            async move {
                if wake {
                    let _ = tx.send(Change::Policies).await;
                }
            }
        })));
    }
    // Templates are interpreted with the customizations in force; a change to them is a
    // change for every template (as a policy change).
    caches.interpreter.ready().await;
    {
        let tx = tx.clone();
        let epoch = Arc::clone(&state.policy_epoch);
        tasks.push(tokio::spawn(caches.interpreter.changes().for_each(move |()| {
            epoch.fetch_add(1, Ordering::AcqRel);
            let tx = tx.clone();
            async move {
                let _ = tx.send(Change::Policies).await;
            }
        })));
    }
    let mut queue = Queue::default();
    let mut running: tokio::task::JoinSet<TemplateKey> = tokio::task::JoinSet::new();
    loop {
        // Start work: fresh changes first, then the resync backlog, at most WORKERS at once
        // and never two at once for one template.
        while running.len() < WORKERS {
            let Some(k) = queue.next() else { break };
            let Some((ar, namespaced, obj)) = templates.entry(&k) else {
                queue.done(&k);
                continue;
            };
            let state = Arc::clone(&state);
            running.spawn(async move {
                if let Err(e) = state.reconcile(&ar, namespaced, &obj).await {
                    tracing::warn!(error = %e, template = ?obj.metadata.name, "detector reconcile failed");
                }
                k
            });
        }
        tokio::select! {
            biased;
            change = rx.recv() => {
                let Some(change) = change else { break };
                match change {
                    Change::Template(boxed, fresh) => {
                        let (ar, namespaced, obj) = *boxed;
                        let k = key(&ar, &obj);
                        let new_work = fresh || state.is_new_work(&ar, namespaced, &obj);
                        templates.insert_newer(k.clone(), (ar, namespaced, obj));
                        if new_work {
                            queue.push_fresh(k);
                        } else {
                            queue.push_resync(k);
                        }
                    }
                    Change::Gone(k) => state.forget(&k),
                    Change::Relisted(kind, listed) => {
                        for k in templates.missing(&kind, &listed) {
                            state.forget(&k);
                        }
                    }
                    Change::Policies => {
                        // Policies changed: every known template gets another look, behind
                        // any fresh change.
                        for k in templates.keys() {
                            queue.push_resync(k);
                        }
                    }
                }
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(k) = done {
                    queue.done(&k);
                }
            }
            _ = rediscover.tick() => {
                for group in discover(&client).await {
                    for (ar, caps) in group.recommended_resources() {
                        let id = kind_id(&ar);
                        if skipped(&ar) || !caps.supports_operation(verbs::WATCH) || ar.plural.contains('/') || !watched.insert(id) {
                            continue;
                        }
                        let namespaced = caps.scope == Scope::Namespaced;
                        let api: Api<LeanObject> = Api::all_with(client.clone(), &ar);
                        let tx = tx.clone();
                        let ar = Arc::new(ar);
                        let mut listed: HashSet<TemplateKey> = HashSet::new();
                        tasks.push(tokio::spawn(watcher::watcher(api, watcher::Config::default()).default_backoff().for_each(move |event| {
                            let tx = tx.clone();
                            let ar = Arc::clone(&ar);
                            let change = match event {
                                Ok(watcher::Event::Apply(obj)) => Some(Change::Template(Box::new((ar, namespaced, obj)), true)),
                                Ok(watcher::Event::Init) => {
                                    listed.clear();
                                    None
                                }
                                // The initial list (at start or after a re-list) is a resync.
                                Ok(watcher::Event::InitApply(obj)) => {
                                    listed.insert(key(&ar, &obj));
                                    Some(Change::Template(Box::new((ar, namespaced, obj)), false))
                                }
                                Ok(watcher::Event::InitDone) => Some(Change::Relisted(kind_id(&ar), std::mem::take(&mut listed))),
                                Ok(watcher::Event::Delete(obj)) => Some(Change::Gone(key(&ar, &obj))),
                                Err(_) => None,
                            };
                            async move {
                                if let Some(change) = change {
                                    let _ = tx.send(change).await;
                                }
                            }
                        })));
                    }
                }
            }
        }
    }
    running.abort_all();
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> TemplateKey {
        ("apps/v1/deployments".into(), "default".into(), n.into())
    }

    #[test]
    fn fresh_changes_go_before_the_resync_backlog() {
        let mut q = Queue::default();
        for n in ["a", "b", "c"] {
            q.push_resync(k(n));
        }
        q.push_fresh(k("new"));
        q.push_fresh(k("c")); // promoted out of the backlog
        q.push_fresh(k("new")); // deduplicated
        assert_eq!(q.next(), Some(k("new")));
        assert_eq!(q.next(), Some(k("c")));
        // A template changed while running goes again once it is done, not twice at once.
        q.push_fresh(k("c"));
        assert_eq!(q.next(), Some(k("a")));
        q.done(&k("c"));
        assert_eq!(q.next(), Some(k("c")));
        assert_eq!(q.next(), Some(k("b")));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn reserved_and_skipped() {
        for ns in [
            "karmada-system",
            "karmada-cluster",
            "karmada-es-member1",
            "kube-system",
            "kube-public",
        ] {
            assert!(reserved_namespace(ns), "{ns}");
        }
        assert!(!reserved_namespace("default"));
        let ar = |group: &str, plural: &str| ApiResource {
            group: group.into(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "K".into(),
            plural: plural.into(),
        };
        assert!(skipped(&ar("policy.karmada.io", "propagationpolicies")));
        assert!(skipped(&ar("", "events")));
        assert!(!skipped(&ar("apps", "deployments")));
        assert!(!skipped(&ar("", "configmaps")));
        assert!(!skipped(&ar("", "pods")), "pods propagate as upstream's do");
        assert!(!skipped(&ar("example.karmada.io", "foos")), "a user's group under karmada.io");
        assert!(skipped(&ar("work.karmada.io", "works")));
        assert!(!skipped(&ar("multicluster.x-k8s.io", "serviceimports")), "MCS objects propagate");
        assert!(
            !skipped(&ar("discovery.k8s.io", "endpointslices")),
            "imported EndpointSlices follow their ServiceImport, changes included"
        );
        assert!(
            !skipped(&ar("apiextensions.k8s.io", "customresourcedefinitions")),
            "CRDs are templates too"
        );
    }
}
