//! The HorizontalPodAutoscaler controller (kube-controller-manager's): each HPA is evaluated
//! when it changes and every sync period (15 s, kube's default) — its target's replicas and
//! pods, their usage as this member's metrics API reports it (requests × load), the HPA
//! algorithm (`apimachinery::hpa`, the one the control plane's FederatedHPA runs) — and the
//! target's `spec.replicas` and the HPA's status are written. Events are not recorded.

use apimachinery::hpa::{self, PodSample};
use apimachinery::selector::LabelSelector;

use super::*;

/// kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`.
const SYNC_PERIOD: Duration = Duration::from_secs(15);

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Sim {
    /// Marks the autoscalers whose sync period has passed.
    pub(super) fn autoscalers_due(&mut self) {
        let due: Vec<Key> = self
            .all(Kind::HorizontalPodAutoscaler)
            .filter(|(k, _)| {
                self.autoscalers.get(*k).is_none_or(|(_, at)| at.elapsed() >= SYNC_PERIOD)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (ns, name) in due {
            self.dirty.insert((Kind::HorizontalPodAutoscaler, ns, name));
        }
    }

    pub(super) async fn sync_hpa(&mut self, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        let Some(autoscaler) = self.get(Kind::HorizontalPodAutoscaler, ns, name).cloned() else {
            self.autoscalers.remove(&key);
            return;
        };
        if deleting(&autoscaler) {
            return;
        }
        let mut history = self.autoscalers.remove(&key).map(|(h, _)| h).unwrap_or_default();
        let now = now_rfc3339();
        let old_status = autoscaler.get("status").cloned().unwrap_or_else(|| json!({}));
        let target_ref = &autoscaler["spec"]["scaleTargetRef"];
        let target_name = target_ref["name"].as_str().unwrap_or_default().to_owned();
        let kind = target_ref["kind"]
            .as_str()
            .and_then(kind_of_owner)
            .filter(|k| matches!(k, Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet));
        let target = kind.and_then(|k| Some((k, self.get(k, ns, &target_name)?.clone())));
        let status = match target {
            None => {
                let message = format!(
                    "the HPA controller was unable to get the target's current scale: {} {:?} not found",
                    target_ref["kind"].as_str().unwrap_or_default(),
                    target_name
                );
                hpa::failed_get_scale_status(&message, &old_status, &now)
            }
            Some((kind, target)) => {
                let current = replicas(&target) as i32;
                let spec = hpa::Spec::from_json(&autoscaler["spec"]);
                let selector = target
                    .pointer("/spec/selector")
                    .and_then(|s| LabelSelector::from_object(s).ok());
                let load = self.faults.read().load;
                let pods: Vec<&Value> = self
                    .all(Kind::Pod)
                    .filter(|((n, _), p)| {
                        n == ns
                            && hpa::pod_counts(p)
                            && selector.as_ref().is_some_and(|s| {
                                !s.is_empty() && s.matches(&apimachinery::selector::labels_of(p))
                            })
                    })
                    .map(|(_, p)| p)
                    .collect();
                let samples = |resource: &str| -> Vec<PodSample> {
                    pods.iter()
                        .map(|p| PodSample {
                            ready: hpa::pod_ready(p),
                            usage: crate::metrics::pod_usage(p, load)
                                .and_then(|u| u.get(resource).copied()),
                            request: hpa::pod_request(p, resource),
                        })
                        .collect()
                };
                let outcome = hpa::evaluate(now_secs(), current, &spec, samples, &mut history);
                let scaled = match outcome.scale_to(current) {
                    None => None,
                    Some(to) => {
                        self.update(kind, ns, &target_name, move |o| {
                            o["spec"]["replicas"] = json!(to);
                        })
                        .await;
                        history.scaled(now_secs(), to - current);
                        Some(Ok(()))
                    }
                };
                outcome.status(
                    current,
                    scaled.as_ref(),
                    &old_status,
                    &now,
                    autoscaler.pointer("/metadata/generation").and_then(Value::as_i64),
                )
            }
        };
        self.autoscalers.insert(key, (history, Instant::now()));
        if status != old_status {
            self.update(Kind::HorizontalPodAutoscaler, ns, name, move |o| {
                o["status"] = status.clone();
            })
            .await;
        }
    }
}
