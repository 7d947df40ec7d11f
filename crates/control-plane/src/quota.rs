//! FederatedQuotaEnforcement inside the API server (upstream's ResourceBinding webhook): a
//! binding write that would take its namespace over a FederatedResourceQuota's `spec.overall`
//! is refused with 403 `QuotaExceeded`; one that fits adds what it changes to the quotas'
//! `status.overallUsed` once it is stored.
//!
//! Unlike the webhook, the check and the accounting of one namespace are serialized (a lock
//! held from the check until the write's usage is recorded), and usage is recorded only for
//! writes that were stored — so concurrent writes cannot both take the last of a quota, and a
//! retried write is not counted twice. The enforcement controller still recounts from the
//! bindings (deletions, periodically), as upstream's does.

use apimachinery::ApiError;
use apimachinery::object;
use apimachinery::quantity::Resources;
use apiserver::Storage;
use apiserver::quota::{NamespaceLocks, Usage};
use apiserver::registry::ResourceDef;
use apiserver::storage::{AfterCommit, CheckedWrite, WriteCheck};
use karmada_api::policy::FederatedResourceQuota;
use karmada_api::quota::{self as q, Verdict};
use karmada_api::work::ResourceBindingSpec;
use serde_json::Value;

/// Upstream's name of the webhook, which its denials carry.
pub const WEBHOOK: &str = "resourcebinding.karmada.io";
/// The Status reason of a write refused for a quota (upstream's `QuotaExceeded`).
pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";

const GROUP: &str = "policy.karmada.io";
const PLURAL: &str = "federatedresourcequotas";

/// The check, registered for ResourceBindings.
#[derive(Default)]
pub struct QuotaEnforcement {
    locks: NamespaceLocks,
}

/// Quotas of the namespace that limit something, decoded.
async fn quotas(
    storage: &Storage,
    def: &ResourceDef,
    namespace: &str,
) -> Result<Vec<FederatedResourceQuota>, ApiError> {
    Ok(storage
        .list_values(def, Some(namespace))
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value::<FederatedResourceQuota>(v).ok())
        .filter(|f| !f.spec.overall.is_empty() && f.metadata.deletion_timestamp.is_none())
        .collect())
}

fn spec_of(object: &Value) -> Option<ResourceBindingSpec> {
    serde_json::from_value(object.get("spec")?.clone()).ok()
}

#[async_trait::async_trait]
impl WriteCheck for QuotaEnforcement {
    async fn check(
        &self,
        storage: &Storage,
        write: &CheckedWrite<'_>,
    ) -> Result<Option<Box<dyn AfterCommit>>, ApiError> {
        // Status writes, metadata changes: nothing a quota counts changed.
        if write.old.is_some_and(|old| old.get("spec") == write.object.get("spec")) {
            return Ok(None);
        }
        let Some(new) = spec_of(write.object) else { return Ok(None) };
        let old = write.old.and_then(spec_of);
        match &old {
            None if new.clusters.is_empty() && new.components.is_empty() => return Ok(None),
            Some(old) if !q::usage_may_change(old, &new) => return Ok(None),
            _ => {}
        }
        let delta = q::delta(
            &q::binding_usage(&new),
            &old.as_ref().map(q::binding_usage).unwrap_or_default(),
        );
        if delta.is_empty() {
            return Ok(None);
        }
        let Some(def) = storage.registry().storage_def(GROUP, PLURAL) else { return Ok(None) };
        let namespace = object::namespace(write.object).to_owned();
        if quotas(storage, &def, &namespace).await?.is_empty() {
            return Ok(None);
        }
        let guard = self.locks.lock(&namespace).await;
        // Read again under the lock: usage recorded by the write before this one counts.
        let mut accounted = Vec::new();
        for quota in quotas(storage, &def, &namespace).await? {
            let name = quota.metadata.name.clone().unwrap_or_default();
            let overall = q::resources(&quota.spec.overall);
            let used =
                quota.status.as_ref().map(|s| q::resources(&s.overall_used)).unwrap_or_default();
            match q::judge(&namespace, &name, &overall, &used, &delta) {
                Verdict::Unaffected => {}
                Verdict::Within(_) => {
                    let limited: Resources = delta
                        .iter()
                        .filter(|(k, _)| overall.contains_key(*k))
                        .map(|(k, v)| (k.clone(), *v))
                        .collect();
                    accounted.push((name, limited));
                }
                Verdict::Exceeded(message) => {
                    return Err(ApiError::new(
                        403,
                        QUOTA_EXCEEDED,
                        format!("admission webhook {WEBHOOK:?} denied the request: {message}"),
                    ));
                }
            }
        }
        if write.dry_run || accounted.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(Usage { guard, def, namespace, field: "overallUsed", accounted })))
    }
}
