//! The disruption controller: PodDisruptionBudgets' status (what `pods/eviction` checks).

use super::*;

impl Sim {
    /// The disruption controller: how many of a budget's pods are healthy, how many must be,
    /// and so how many may be evicted now (pods being evicted count as gone).
    pub(super) async fn sync_disruption_budget(&mut self, ns: &str, name: &str) {
        let Some(pdb) = self.get(Kind::PodDisruptionBudget, ns, name).cloned() else { return };
        if deleting(&pdb) {
            return;
        }
        let selector = pdb
            .pointer("/spec/selector")
            .filter(|s| !s.is_null())
            .and_then(|s| apimachinery::selector::LabelSelector::from_object(s).ok());
        let pods: Vec<&Value> = self
            .all(Kind::Pod)
            .filter(|((n, _), p)| {
                n == ns
                    && !terminated(p)
                    && !deleting(p)
                    && selector
                        .as_ref()
                        .is_some_and(|s| s.matches(&apimachinery::selector::labels_of(p)))
            })
            .map(|(_, p)| p)
            .collect();
        let disrupted: serde_json::Map<String, Value> = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(pod, _)| pods.iter().any(|p| object::name(p) == pod.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected = pods.len() as i64;
        let healthy = pods
            .iter()
            .filter(|p| pod_ready(p) && !disrupted.contains_key(object::name(p)))
            .count() as i64;
        let share = |v: &Value, round_up: bool| -> i64 {
            match v {
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => {
                    let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                    let scaled = expected * pct;
                    if round_up { (scaled + 99) / 100 } else { scaled / 100 }
                }
                _ => 0,
            }
        };
        let desired = if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
            (expected - share(max, true)).max(0)
        } else if let Some(min) = pdb.pointer("/spec/minAvailable") {
            share(min, true)
        } else {
            0
        };
        let allowed = (healthy - desired).max(0);
        let mut status = json!({
            "observedGeneration": generation(&pdb),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [{
                "type": "DisruptionAllowed",
                "status": if allowed > 0 { "True" } else { "False" },
                "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                "message": "",
                "observedGeneration": generation(&pdb),
                "lastTransitionTime": now_rfc3339(),
            }],
        });
        if !disrupted.is_empty() {
            status["disruptedPods"] = Value::Object(disrupted);
        }
        let unchanged = pdb.get("status").is_some_and(|old| {
            let mut a = old.clone();
            let mut b = status.clone();
            for v in [&mut a, &mut b] {
                if let Some(c) = v.pointer_mut("/conditions/0")
                    && let Some(m) = c.as_object_mut()
                {
                    m.remove("lastTransitionTime");
                }
            }
            a == b
        });
        if !unchanged {
            self.set_status(Kind::PodDisruptionBudget, ns, name, status).await;
        }
    }
}
