//! The execution controller (push mode): applies each Work's manifests to its member cluster
//! with server-side apply (fields the member owns, like a Service's clusterIP, stay the
//! member's), leaves alone existing objects Karmada does not manage (conflictResolution Abort,
//! reported on the Work), and removes what it applied when the Work goes (unless
//! `preserveResourcesOnDeletion`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use karmada_api::cluster::Cluster;
use karmada_api::work::Work;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::binding::MANAGED_LABEL;
use crate::member_client;

pub const FINALIZER: &str = "karmada.io/execution-controller";
const MANAGER: &str = "karmada-execution-controller";
/// A template annotation that opts into overwriting existing unmanaged objects.
pub const CONFLICT_ANNOTATION: &str = "work.karmada.io/conflict-resolution";

struct Context {
    client: kube::Client,
    members: Mutex<HashMap<String, (String, kube::Client)>>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Member(#[from] member_client::ClientError),
}

impl Context {
    /// A cached client for a member (rebuilt when its Cluster changes).
    async fn member(&self, cluster: &Cluster) -> Result<kube::Client, Error> {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let version =
            format!("{}/{}", cluster.spec.api_endpoint, cluster.metadata.generation.unwrap_or(0));
        if let Ok(cache) = self.members.lock()
            && let Some((v, client)) = cache.get(&name)
            && *v == version
        {
            return Ok(client.clone());
        }
        let client = member_client::for_cluster(&self.client, cluster, self.timeout).await?;
        if let Ok(mut cache) = self.members.lock() {
            cache.insert(name, (version, client.clone()));
        }
        Ok(client)
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

fn target_api(member: &kube::Client, ar: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    if namespace.is_empty() {
        Api::all_with(member.clone(), ar)
    } else {
        Api::namespaced_with(member.clone(), namespace, ar)
    }
}

async fn ensure_namespace(member: &kube::Client, namespace: &str) -> Result<(), kube::Error> {
    if namespace.is_empty() {
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
    Ok(())
}

/// Applies one manifest; `Ok(Some(reason))` when it was deliberately not applied.
async fn apply_manifest(member: &kube::Client, manifest: &Value) -> Result<Option<String>, Error> {
    let (ar, _) = kube::discovery::pinned_kind(member, &gvk_of(manifest)).await?;
    let namespace =
        manifest.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    ensure_namespace(member, namespace).await?;
    let api = target_api(member, &ar, namespace);
    if let Some(existing) = api.get_opt(name).await? {
        let managed =
            existing.metadata.labels.as_ref().is_some_and(|l| l.get(MANAGED_LABEL).is_some());
        let overwrite = manifest
            .pointer(&format!("/metadata/annotations/{}", CONFLICT_ANNOTATION.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some("overwrite");
        if !managed && !overwrite {
            return Ok(Some(format!(
                "{} {namespace}/{name} already exists in the member cluster and is not managed by Karmada (conflictResolution Abort)",
                ar.kind
            )));
        }
    }
    api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(manifest)).await?;
    Ok(None)
}

async fn reconcile(work: Arc<Work>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(cluster_name) =
        work.metadata.namespace.as_deref().and_then(|n| n.strip_prefix("karmada-es-"))
    else {
        return Ok(Action::await_change());
    };
    let works: Api<Work> =
        Api::namespaced(ctx.client.clone(), work.metadata.namespace.as_deref().unwrap_or_default());
    let name = work.metadata.name.clone().unwrap_or_default();
    let finalizers = work.metadata.finalizers.clone().unwrap_or_default();
    let cluster = Api::<Cluster>::all(ctx.client.clone()).get_opt(cluster_name).await?;
    if work.metadata.deletion_timestamp.is_some() {
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        let preserve = work.spec.preserve_resources_on_deletion == Some(true);
        if let (false, Some(cluster)) = (preserve, &cluster)
            && let Ok(member) = ctx.member(cluster).await
        {
            for manifest in &work.spec.workload.manifests {
                if let Ok((ar, _)) = kube::discovery::pinned_kind(&member, &gvk_of(manifest)).await
                {
                    let namespace = manifest
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let name = manifest
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match target_api(&member, &ar, namespace)
                        .delete(name, &DeleteParams::default())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let rest: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
        works
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
            )
            .await?;
        return Ok(Action::await_change());
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut all = finalizers.clone();
        all.push(FINALIZER.to_owned());
        works
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": all}})),
            )
            .await?;
    }
    if work.spec.suspend_dispatching == Some(true) {
        return Ok(Action::await_change());
    }
    let Some(cluster) = cluster else { return Ok(Action::requeue(Duration::from_secs(2))) };
    let mut manifest_statuses = Vec::new();
    let mut all_healthy = true;
    let (applied, message) = match ctx.member(&cluster).await {
        Err(e) => (false, format!("cannot reach cluster {cluster_name}: {e}")),
        Ok(member) => {
            let mut problems = Vec::new();
            for (ordinal, manifest) in work.spec.workload.manifests.iter().enumerate() {
                match apply_manifest(&member, manifest).await {
                    Ok(None) => {}
                    Ok(Some(reason)) => problems.push(reason),
                    Err(e) => problems.push(format!("applying to {cluster_name} failed: {e}")),
                }
                // Reflect the member's view of the object (status and health).
                if let Ok((ar, _)) = kube::discovery::pinned_kind(&member, &gvk_of(manifest)).await
                {
                    let namespace = manifest
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let name = manifest
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if let Ok(Some(observed)) =
                        target_api(&member, &ar, namespace).get_opt(name).await
                    {
                        let observed = serde_json::to_value(&observed).unwrap_or_default();
                        let health = match propagation::interpreter::is_healthy(&ar.kind, &observed)
                        {
                            Some(true) => "Healthy",
                            Some(false) => "Unhealthy",
                            None => "Unknown",
                        };
                        all_healthy &= health != "Unhealthy";
                        let mut status = observed.get("status").cloned().unwrap_or(Value::Null);
                        if let (Some(s), Some(generation)) =
                            (status.as_object_mut(), observed.pointer("/metadata/generation"))
                        {
                            s.insert("generation".into(), generation.clone());
                        }
                        manifest_statuses.push(json!({
                            "identifier": {"ordinal": ordinal, "group": ar.group, "version": ar.version, "kind": ar.kind,
                                "resource": ar.plural, "namespace": namespace, "name": name},
                            "status": status, "health": health,
                        }));
                    }
                }
            }
            if problems.is_empty() {
                (true, "Manifest has been successfully applied".to_owned())
            } else {
                (false, problems.join("; "))
            }
        }
    };
    let current =
        work.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Applied"));
    let status_word = if applied { "True" } else { "False" };
    let statuses_now = serde_json::to_value(work.status.as_ref().map(|s| &s.manifest_statuses))
        .unwrap_or(Value::Null);
    let changed_statuses = statuses_now != json!(manifest_statuses)
        && !(statuses_now.is_null() && manifest_statuses.is_empty());
    if current.is_none_or(|c| c.status != status_word || c.message != message) || changed_statuses {
        let now = crate::now_rfc3339();
        let since = current
            .filter(|c| c.status == status_word)
            .map_or(json!(now), |c| json!(c.last_transition_time));
        let condition = json!({"type": "Applied", "status": status_word, "reason": if applied { "AppliedSuccessful" } else { "AppliedFailed" },
            "message": message, "lastTransitionTime": since});
        works.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [condition], "manifestStatuses": manifest_statuses}}))).await?;
    }
    // Re-check: quickly while the member converges, then periodically (which also restores
    // objects edited or deleted by hand in the member).
    Ok(Action::requeue(if applied && all_healthy {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(1)
    }))
}

fn error_policy(_: Arc<Work>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "execution reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

pub async fn run(client: kube::Client, timeout: Duration) -> anyhow::Result<()> {
    let works: Api<Work> = Api::all(client.clone());
    let ctx = Arc::new(Context { client, members: Mutex::new(HashMap::new()), timeout });
    Controller::new(works, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}
