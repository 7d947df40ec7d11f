//! ResourceQuota admission (Kubernetes' `ResourceQuota` plugin): a create that would take its
//! namespace over a ResourceQuota's `hard` is refused with 403, naming the quota, what was
//! requested, used and limited; a pod must state the requests and limits a quota limits. What
//! an admitted object counts is added to the quotas' `status.used` once it is stored (a lock
//! per namespace from the check to the accounting, so two creates cannot both take the last of
//! a quota); a controller recounting `used` (the simulated member's) corrects the rest, as
//! kube-controller-manager's does.
//!
//! Registered by resource (`Config::write_checks`) where a quota controller runs: simulated
//! members.

use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::ApiError;
use apimachinery::object::{self, meta_str};
use apimachinery::quantity::{self, Resources};
use apimachinery::quota;
use serde_json::{Value, json};

use crate::registry::ResourceDef;
use crate::storage::{AfterCommit, CheckedWrite, Decision, Storage, WriteCheck};

/// The check, for the resources it is registered for.
#[derive(Default)]
pub struct ResourceQuotaAdmission {
    locks: NamespaceLocks,
}

/// One lock per namespace, held by a quota check from its decision until what it admitted is
/// accounted (entries of namespaces no one holds are dropped).
#[derive(Default)]
pub struct NamespaceLocks(parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl NamespaceLocks {
    pub async fn lock(&self, namespace: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock();
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(locks.entry(namespace.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

/// The namespace's quotas that say something about `def`'s objects.
async fn quotas(
    storage: &Storage,
    quota_def: &ResourceDef,
    def: &ResourceDef,
    ns: &str,
) -> Result<Vec<Value>, ApiError> {
    Ok(storage
        .list_values(quota_def, Some(ns))
        .await?
        .into_iter()
        .filter(|q| meta_str(q, "deletionTimestamp").is_none())
        .filter(|q| {
            q.pointer("/spec/hard")
                .and_then(Value::as_object)
                .is_some_and(|h| h.keys().any(|k| quota::concerns(&def.group, &def.plural, k)))
        })
        .collect())
}

#[async_trait::async_trait]
impl WriteCheck for ResourceQuotaAdmission {
    async fn check(
        &self,
        storage: &Storage,
        write: &CheckedWrite<'_>,
    ) -> Result<Option<Box<dyn AfterCommit>>, ApiError> {
        let ns = object::namespace(write.object).to_owned();
        if write.old.is_some() || ns.is_empty() {
            return Ok(None);
        }
        let Some(quota_def) = storage.registry().storage_def("", "resourcequotas") else {
            return Ok(None);
        };
        let def = write.def;
        if quotas(storage, &quota_def, def, &ns).await?.is_empty() {
            return Ok(None);
        }
        let guard = self.locks.lock(&ns).await;
        let usage = quota::usage(&def.group, &def.plural, write.object);
        let pod = (def.group.is_empty() && def.plural == "pods").then_some(write.object);
        let mut accounted = Vec::new();
        for q in quotas(storage, &quota_def, def, &ns).await? {
            let name = object::name(&q).to_owned();
            // The limits the quota controller last confirmed, or the spec's until it has.
            let hard = quantity::parse_list(q.pointer("/status/hard").or(q.pointer("/spec/hard")));
            let used = quantity::parse_list(q.pointer("/status/used"));
            match quota::admit(&name, &hard, &used, &usage, pod) {
                Ok(_) => {
                    let delta: Resources = usage
                        .iter()
                        .filter(|(k, v)| hard.contains_key(*k) && **v != 0)
                        .map(|(k, v)| (k.clone(), *v))
                        .collect();
                    if !delta.is_empty() {
                        accounted.push((name, delta));
                    }
                }
                Err(message) => {
                    return Err(ApiError::forbidden(format!(
                        "{} {:?} is forbidden: {message}",
                        def.plural,
                        object::name(write.object)
                    )));
                }
            }
        }
        if write.dry_run || accounted.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(Usage { guard, def: quota_def, namespace: ns, field: "used", accounted })))
    }
}

/// Usage admitted, added to quotas' `status.<field>` once the write is stored; holds the
/// namespace's lock until then.
pub struct Usage {
    pub guard: tokio::sync::OwnedMutexGuard<()>,
    /// The quotas' kind.
    pub def: Arc<ResourceDef>,
    pub namespace: String,
    pub field: &'static str,
    /// What each quota (by name) gets added.
    pub accounted: Vec<(String, Resources)>,
}

#[async_trait::async_trait]
impl AfterCommit for Usage {
    async fn committed(self: Box<Self>, storage: &Storage) {
        let pointer = format!("/status/{}", self.field);
        for (name, delta) in &self.accounted {
            let result = storage
                .guaranteed_update(&self.def, Some(&self.namespace), name, false, &mut |current| {
                    let Some(current) = current else { return Ok(Decision::Unchanged) };
                    if meta_str(current, "deletionTimestamp").is_some() {
                        return Ok(Decision::Unchanged);
                    }
                    let mut used = quantity::parse_list(current.pointer(&pointer));
                    quantity::add(&mut used, delta);
                    let mut updated = current.clone();
                    if !updated.get("status").is_some_and(Value::is_object) {
                        updated["status"] = json!({});
                    }
                    updated["status"][self.field] = quota::to_json(&used);
                    Ok(Decision::Update(updated))
                })
                .await;
            if let Err(e) = result {
                // The quota controller's recount corrects it.
                tracing::warn!(quota = %name, namespace = %self.namespace, error = %e.message, "recording quota usage");
            }
        }
        drop(self.guard);
    }
}
