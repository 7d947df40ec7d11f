//! The binding controller: for each scheduled ResourceBinding, render the template once per
//! target cluster (server-owned metadata and status stripped, that cluster's replica share,
//! override policies applied, `karmada.io/managed` stamped) and write a Work into the cluster's
//! execution namespace; Works of clusters no longer targeted are deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use karmada_api::policy::{ClusterAffinity, ClusterOverridePolicy, OverridePolicy};
use karmada_api::work::{ResourceBinding, Work};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use propagation::Template;
use propagation::overrides::{OverridePolicyRef, render};
use serde_json::{Value, json};

use crate::execution_namespace;

pub const BINDING_NAMESPACE_LABEL: &str = "resourcebinding.karmada.io/namespace";
pub const BINDING_NAME_LABEL: &str = "resourcebinding.karmada.io/name";
pub const MANAGED_LABEL: &str = "karmada.io/managed";
pub const FINALIZER: &str = "karmada.io/binding-controller";

/// The Work name for a binding: readable, and unique across namespaces.
pub fn work_name(namespace: &str, binding: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{namespace}/{binding}").bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{binding}-{h:08x}")
}

/// The template as it is sent to members: no server-owned metadata, no status.
pub fn strip(template: &Value) -> Value {
    let mut out = template.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "ownerReferences",
            "finalizers",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(field);
        }
        if let Some(Value::Object(a)) = m.get_mut("annotations") {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if let Some(m) = out.as_object_mut() {
        m.remove("status");
    }
    out
}

struct Context {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

fn affinity_matches(
    cluster: &karmada_api::cluster::Cluster,
) -> impl Fn(Option<&ClusterAffinity>) -> bool + '_ {
    let info = crate::scheduling::cluster_info(cluster);
    move |affinity| affinity.is_none_or(|a| scheduler::filter::matches_affinity(a, &info))
}

async fn reconcile(rb: Arc<ResourceBinding>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = rb.metadata.namespace.clone().unwrap_or_default();
    let name = rb.metadata.name.clone().unwrap_or_default();
    let works_all: Api<Work> = Api::all(ctx.client.clone());
    let selector = format!("{BINDING_NAMESPACE_LABEL}={ns},{BINDING_NAME_LABEL}={name}");
    let existing = works_all.list(&ListParams::default().labels(&selector)).await?.items;
    let targets: BTreeSet<String> = if rb.metadata.deletion_timestamp.is_some() {
        BTreeSet::new()
    } else {
        rb.spec.clusters.iter().map(|t| t.name.clone()).collect()
    };
    // Works of clusters no longer targeted go.
    for work in &existing {
        let cluster = work
            .metadata
            .namespace
            .as_deref()
            .and_then(|n| n.strip_prefix("karmada-es-"))
            .unwrap_or_default();
        if !targets.contains(cluster) {
            let api: Api<Work> = Api::namespaced(
                ctx.client.clone(),
                work.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let _ = api
                .delete(work.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default())
                .await;
        }
    }
    let bindings: Api<ResourceBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let finalizers = rb.metadata.finalizers.clone().unwrap_or_default();
    if rb.metadata.deletion_timestamp.is_some() {
        // Works go first (their own finalizers clean the members), then the binding.
        let remaining = works_all.list(&ListParams::default().labels(&selector)).await?.items;
        if !remaining.is_empty() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if finalizers.iter().any(|f| f == FINALIZER) {
            let rest: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
            bindings
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
                )
                .await?;
        }
        return Ok(Action::await_change());
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut all = finalizers.clone();
        all.push(FINALIZER.to_owned());
        bindings
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": all}})),
            )
            .await?;
    }
    if targets.is_empty() {
        return Ok(Action::await_change());
    }
    let resource = &rb.spec.resource;
    let (group, version) =
        resource.api_version.split_once('/').unwrap_or(("", resource.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &resource.kind);
    let (ar, _caps) = kube::discovery::pinned_kind(&ctx.client, &gvk).await?;
    let templates: Api<DynamicObject> = if resource.namespace.is_empty() {
        Api::all_with(ctx.client.clone(), &ar)
    } else {
        Api::namespaced_with(ctx.client.clone(), &resource.namespace, &ar)
    };
    let Some(template) = templates.get_opt(&resource.name).await? else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let mut object = serde_json::to_value(&template).unwrap_or_default();
    object["apiVersion"] = json!(ar.api_version);
    object["kind"] = json!(ar.kind);
    let t = Template::from_object(&object);
    let stripped = strip(&object);
    let ops: Vec<OverridePolicy> = Api::<OverridePolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items;
    let cops: Vec<ClusterOverridePolicy> = Api::<ClusterOverridePolicy>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let op_refs: Vec<OverridePolicyRef<'_>> = ops
        .iter()
        .map(|p| OverridePolicyRef {
            namespace: p.metadata.namespace.as_deref().unwrap_or_default(),
            name: p.metadata.name.as_deref().unwrap_or_default(),
            spec: &p.spec,
        })
        .collect();
    let cop_refs: Vec<OverridePolicyRef<'_>> = cops
        .iter()
        .map(|p| OverridePolicyRef {
            namespace: "",
            name: p.metadata.name.as_deref().unwrap_or_default(),
            spec: &p.spec,
        })
        .collect();
    let clusters: Api<karmada_api::cluster::Cluster> = Api::all(ctx.client.clone());
    let divided = rb
        .spec
        .placement
        .as_ref()
        .and_then(|p| p.replica_scheduling.as_ref())
        .is_some_and(|r| r.replica_scheduling_type == "Divided");
    let work_name = work_name(&ns, &name);
    for target in &rb.spec.clusters {
        let Some(cluster) = clusters.get_opt(&target.name).await? else { continue };
        let mut rendered = stripped.clone();
        if divided {
            propagation::interpreter::revise_replica(&ar.kind, &mut rendered, target.replicas);
        }
        let matches = affinity_matches(&cluster);
        let mut rendered = match render(&ar.kind, &t, &rendered, &matches, &cop_refs, &op_refs) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(binding = %name, cluster = %target.name, policy = %e.policy, error = %e.message, "override failed; this cluster's copy is not updated");
                continue;
            }
        };
        apimachinery::object::string_map_mut(&mut rendered, "labels")
            .insert(MANAGED_LABEL.into(), json!("true"));
        let work = json!({
            "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": work_name, "namespace": execution_namespace(&target.name),
                "labels": {BINDING_NAMESPACE_LABEL: ns, BINDING_NAME_LABEL: name, MANAGED_LABEL: "true"}},
            "spec": {"workload": {"manifests": [rendered]}},
        });
        let api: Api<Work> =
            Api::namespaced(ctx.client.clone(), &execution_namespace(&target.name));
        api.patch(
            &work_name,
            &PatchParams::apply("karmada-binding-controller").force(),
            &Patch::Apply(&work),
        )
        .await?;
    }
    aggregate(&ctx, &rb, &existing, &ar, &templates, &template).await?;
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// Binding `aggregatedStatus` and `FullyApplied` from the Works, and the template's status
/// from its members' statuses (only written when they change).
async fn aggregate(
    ctx: &Context,
    rb: &ResourceBinding,
    works: &[Work],
    ar: &ApiResource,
    templates: &Api<DynamicObject>,
    template: &DynamicObject,
) -> Result<(), kube::Error> {
    let mut items = Vec::new();
    let mut members = Vec::new();
    for work in works {
        let cluster = work
            .metadata
            .namespace
            .as_deref()
            .and_then(|n| n.strip_prefix("karmada-es-"))
            .unwrap_or_default()
            .to_owned();
        if !rb.spec.clusters.iter().any(|t| t.name == cluster) {
            continue;
        }
        let status = work.status.clone().unwrap_or_default();
        let applied = status.conditions.iter().find(|c| c.type_ == "Applied");
        let manifest = status.manifest_statuses.first();
        let mut item =
            json!({"clusterName": cluster, "applied": applied.is_some_and(|c| c.status == "True")});
        if let Some(c) = applied.filter(|c| c.status != "True") {
            item["appliedMessage"] = json!(c.message);
        }
        if let Some(m) = manifest {
            if let Some(s) = &m.status {
                item["status"] = s.clone();
                members.push(propagation::interpreter::MemberStatus {
                    cluster: cluster.clone(),
                    status: s.clone(),
                    generation: s.get("generation").and_then(Value::as_i64),
                    observed_generation: s.get("observedGeneration").and_then(Value::as_i64),
                });
            }
            item["health"] = json!(m.health);
        }
        items.push(item);
    }
    items.sort_by(|a, b| a["clusterName"].as_str().cmp(&b["clusterName"].as_str()));
    let fully = !rb.spec.clusters.is_empty()
        && items.len() == rb.spec.clusters.len()
        && items.iter().all(|i| i["applied"] == true);
    let current = serde_json::to_value(rb.status.as_ref().map(|s| &s.aggregated_status))
        .unwrap_or(Value::Null);
    let was_fully = rb
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "FullyApplied"))
        .map(|c| c.status == "True");
    if current != json!(items) || was_fully != Some(fully) {
        let now = crate::now_rfc3339();
        let mut conditions: Vec<Value> = rb
            .status
            .as_ref()
            .map(|s| {
                s.conditions
                    .iter()
                    .filter(|c| c.type_ != "FullyApplied")
                    .map(|c| serde_json::to_value(c).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        conditions.push(json!({"type": "FullyApplied", "status": if fully { "True" } else { "False" },
            "reason": if fully { "FullyAppliedSuccess" } else { "FullyAppliedFailed" },
            "message": if fully { "All works have been successfully applied" } else { "Not every Work has been applied yet" },
            "lastTransitionTime": now}));
        let bindings: Api<ResourceBinding> = Api::namespaced(
            ctx.client.clone(),
            rb.metadata.namespace.as_deref().unwrap_or_default(),
        );
        // Against the version the conditions were read from (shared with the scheduler).
        bindings
            .patch_status(
                rb.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"resourceVersion": rb.metadata.resource_version}, "status": {"aggregatedStatus": items, "conditions": conditions}})),
            )
            .await?;
    }
    let generation = template.metadata.generation.unwrap_or(0);
    if let Some(status) = propagation::interpreter::aggregate_status(&ar.kind, &members, generation)
    {
        let current = template.data.get("status").cloned().unwrap_or(Value::Null);
        if current != status {
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
                Ok(_) => {}
                // A kind without a status subresource keeps its status as is.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn error_policy(_: Arc<ResourceBinding>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "binding reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the binding controller (namespaced bindings) until the future is dropped. Any change
/// to an override policy re-renders every binding's Works.
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    use kube::runtime::WatchStreamExt;
    let bindings: Api<ResourceBinding> = Api::all(client.clone());
    let ops =
        watcher::watcher(Api::<OverridePolicy>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .touched_objects()
            .map(|_| ());
    let cops = watcher::watcher(
        Api::<ClusterOverridePolicy>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ());
    let ctx = Arc::new(Context { client: client.clone() });
    let works: Api<Work> = Api::all(client.clone());
    Controller::new(bindings, watcher::Config::default())
        .watches(works, watcher::Config::default().labels(BINDING_NAME_LABEL), |work: Work| {
            let labels = work.metadata.labels.unwrap_or_default();
            let name = labels.get(BINDING_NAME_LABEL)?;
            let ns = labels.get(BINDING_NAMESPACE_LABEL)?;
            Some(kube::runtime::reflector::ObjectRef::new(name).within(ns))
        })
        .reconcile_all_on(futures::stream::select(ops, cops))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_ne!(work_name("a", "x"), work_name("b", "x"));
        assert!(work_name("default", "nginx-deployment").starts_with("nginx-deployment-"));
    }
}
