//! The `pods/eviction` subresource (`kubectl drain`): a pod is deleted unless that would take
//! its PodDisruptionBudget below what it allows.

use apimachinery::object::{self, meta_str};
use apimachinery::selector::{LabelSelector, labels_of};
use apimachinery::{ApiError, Cause};
use http::Response;
use serde_json::{Value, json};

use crate::clock::now_rfc3339;
use crate::ctx::Req;
use crate::reply::Body;
use crate::storage::{Decision, Filter, Storage};

/// What an eviction may do, decided from the pod and the budgets in its namespace.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Delete the pod without consulting a budget.
    Delete,
    /// Delete the pod, taking one disruption from this budget.
    DeleteWithin(String),
    Refused(ApiError),
}

/// Decides an eviction (Kubernetes' eviction REST logic): terminal, pending or terminating pods
/// are always evictable; otherwise the one matching budget must allow a disruption.
pub fn decide(pod: &Value, budgets: &[Value]) -> Verdict {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed" | "Pending")
        || meta_str(pod, "deletionTimestamp").is_some()
    {
        return Verdict::Delete;
    }
    let labels = labels_of(pod);
    let matching: Vec<&Value> = budgets
        .iter()
        .filter(|pdb| {
            pdb.pointer("/spec/selector")
                .and_then(|s| LabelSelector::from_object(s).ok())
                .is_some_and(|s| s.matches(&labels))
        })
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Verdict::Delete,
        [one] => *one,
        _ => {
            return Verdict::Refused(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let name = object::name(pdb).to_owned();
    let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let refused = |message: String, cause: Option<String>| {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            format!("Cannot evict pod as it would violate the pod's disruption budget.{message}"),
        );
        if let Some(c) = cause {
            e = e.with_cause(Cause {
                reason: "DisruptionBudget".into(),
                message: c,
                field: String::new(),
            });
        }
        // No Retry-After: client-go would retry the eviction itself (ten times), holding up
        // `kubectl drain`, which retries on its own schedule.
        Verdict::Refused(e)
    };
    if int("/status/observedGeneration") < int("/metadata/generation") {
        return refused(
            format!(" The disruption budget {name} is still being processed by the server."),
            None,
        );
    }
    if int("/status/disruptionsAllowed") <= 0 {
        return refused(
            String::new(),
            Some(format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int("/status/desiredHealthy"),
                int("/status/currentHealthy")
            )),
        );
    }
    Verdict::DeleteWithin(name)
}

impl Storage {
    pub(crate) async fn evict(
        &self,
        req: &Req<'_>,
        name: &str,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let ns = req.ns.unwrap_or_default();
        let eviction = crate::encoding::decode_options(req.headers, body, "Eviction")?
            .ok_or_else(|| ApiError::bad_request("an Eviction is required"))?;
        if eviction.get("kind").and_then(Value::as_str).is_some_and(|k| k != "Eviction") {
            return Err(ApiError::bad_request("the body of the request is not an Eviction"));
        }
        let named = object::name(&eviction);
        if !named.is_empty() && named != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let options = crate::storage::delete_options(eviction.get("deleteOptions"), req.query)?;
        let pod = self.read(req.def, Some(ns), name).await?;
        let pdb_def = self
            .registry
            .get("policy", "v1", "poddisruptionbudgets")
            .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not served"))?;
        let revision = self
            .store
            .current_revision()
            .await
            .map_err(|e| crate::storage::store_error(&pdb_def, "", e))?;
        let (items, _, _) =
            self.list_raw(&pdb_def, Some(ns), &Filter::default(), revision, None, None).await?;
        let budgets: Vec<Value> =
            items.into_iter().map(|(b, rv, _)| crate::codec::decode(&b, rv)).collect();
        match decide(&pod, &budgets) {
            Verdict::Refused(e) => return Err(e),
            Verdict::Delete => {}
            Verdict::DeleteWithin(pdb) => {
                let pod_name = name.to_owned();
                self.guaranteed_update(&pdb_def, Some(ns), &pdb, false, &mut |current| {
                    let Some(current) = current else {
                        return Err(ApiError::conflict(&pdb_def.plural, &pdb_def.group, &pdb));
                    };
                    if let Verdict::Refused(e) = decide(&pod, std::slice::from_ref(current)) {
                        return Err(e);
                    }
                    let mut new = current.clone();
                    let allowed = new
                        .pointer("/status/disruptionsAllowed")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    new["status"]["disruptionsAllowed"] = json!(allowed - 1);
                    new["status"]["disruptedPods"][&pod_name] = json!(now_rfc3339());
                    Ok(Decision::Update(new))
                })
                .await?;
            }
        }
        let dry = options.dry_run;
        match self.delete_object(req.def, Some(ns), name, &options, dry, req.user).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
        Ok(req.respond(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str) -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "status": {"phase": phase}})
    }

    fn pdb(name: &str, allowed: i64) -> Value {
        json!({"metadata": {"name": name, "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "desiredHealthy": 2, "currentHealthy": 2}})
    }

    #[test]
    fn evictions_follow_the_budget() {
        assert_eq!(decide(&pod("Running"), &[]), Verdict::Delete);
        assert_eq!(decide(&pod("Running"), &[pdb("a", 1)]), Verdict::DeleteWithin("a".into()));
        match decide(&pod("Running"), &[pdb("a", 0)]) {
            Verdict::Refused(e) => {
                assert_eq!(e.code, 429);
                assert_eq!(
                    e.message,
                    "Cannot evict pod as it would violate the pod's disruption budget."
                );
                assert_eq!(
                    e.causes[0].message,
                    "The disruption budget a needs 2 healthy pods and has 2 currently"
                );
            }
            other => panic!("{other:?}"),
        }
        // Pods that are not running are always evictable.
        assert_eq!(decide(&pod("Succeeded"), &[pdb("a", 0)]), Verdict::Delete);
        assert_eq!(decide(&pod("Pending"), &[pdb("a", 0)]), Verdict::Delete);
        // A budget not yet observed refuses.
        let mut stale = pdb("a", 3);
        stale["metadata"]["generation"] = json!(2);
        assert!(
            matches!(decide(&pod("Running"), &[stale]), Verdict::Refused(e) if e.message.contains("still being processed"))
        );
        // Two budgets: refused.
        assert!(
            matches!(decide(&pod("Running"), &[pdb("a", 1), pdb("b", 1)]), Verdict::Refused(e) if e.code == 500)
        );
        // A budget for other pods does not count.
        let mut other = pdb("o", 0);
        other["spec"]["selector"] = json!({"matchLabels": {"app": "db"}});
        assert_eq!(decide(&pod("Running"), &[other]), Verdict::Delete);
    }
}
