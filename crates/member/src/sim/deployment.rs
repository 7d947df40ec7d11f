//! The Deployment controller: ReplicaSets per template revision, rolling updates within
//! maxSurge/maxUnavailable, and the Deployment's status and conditions.

use super::*;

impl Sim {
    pub(super) async fn sync_deployment(&mut self, ns: &str, name: &str) {
        let Some(d) = self.get(Kind::Deployment, ns, name).cloned() else { return };
        if deleting(&d) {
            return;
        }
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = short_hash(&template.to_string());
        let rs_name = format!("{name}-{hash}");
        let desired = replicas(&d);
        let owned: Vec<(String, Value)> = self
            .children_of(Kind::ReplicaSet, ns, &d)
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Rolling update: the new ReplicaSet grows within maxSurge, old ones shrink while at
        // least desired − maxUnavailable pods stay ready (defaults 25% each).
        let percent = |v: Option<&Value>, round_up: bool| -> i64 {
            match v {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(Value::String(s)) if s.ends_with('%') => {
                    let p: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
                    if round_up { (desired * p + 99) / 100 } else { desired * p / 100 }
                }
                _ => {
                    if round_up {
                        (desired * 25 + 99) / 100
                    } else {
                        desired * 25 / 100
                    }
                }
            }
        };
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let max_surge = percent(d.pointer("/spec/strategy/rollingUpdate/maxSurge"), true);
        let max_unavailable =
            percent(d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"), false);
        let (max_surge, max_unavailable) = if max_surge == 0 && max_unavailable == 0 {
            (1, 0)
        } else {
            (max_surge, max_unavailable)
        };
        let old_total: i64 =
            owned.iter().filter(|(n, _)| *n != rs_name).map(|(_, rs)| replicas(rs)).sum();
        let old_ready: i64 = owned
            .iter()
            .filter(|(n, _)| *n != rs_name)
            .map(|(_, rs)| rs.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0))
            .sum();
        let new_ready = owned
            .iter()
            .find(|(n, _)| *n == rs_name)
            .and_then(|(_, rs)| rs.pointer("/status/readyReplicas").and_then(Value::as_i64))
            .unwrap_or(0);
        let new_target = if recreate {
            if old_total > 0 { 0 } else { desired }
        } else {
            desired.min((desired + max_surge - old_total).max(0))
        };
        // A new template gets its ReplicaSet, starting as large as the rollout allows (all of
        // it when nothing older runs).
        if !owned.iter().any(|(n, _)| n == &rs_name) {
            let mut rs_template = template.clone();
            let labels = object::string_map_mut(&mut rs_template, "labels");
            labels.insert("pod-template-hash".into(), json!(hash));
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut rs_labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            rs_labels["pod-template-hash"] = json!(hash);
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": rs_labels,
                    "ownerReferences": owner_ref(&d, "Deployment", "apps/v1")},
                "spec": {"replicas": new_target, "selector": selector, "template": rs_template}});
            self.create(Kind::ReplicaSet, ns, rs).await;
        }
        let mut may_remove = if recreate {
            old_total
        } else {
            (old_ready + new_ready - (desired - max_unavailable)).max(0)
        };
        for (rs_name_i, rs) in &owned {
            let want = if *rs_name_i == rs_name {
                new_target.max(replicas(rs).min(desired))
            } else {
                let current = replicas(rs);
                let cut = current.min(may_remove);
                may_remove -= cut;
                current - cut
            };
            if replicas(rs) != want {
                self.update(Kind::ReplicaSet, ns, rs_name_i, move |o| {
                    o["spec"]["replicas"] = json!(want)
                })
                .await;
            }
            if want == 0
                && *rs_name_i != rs_name
                && rs.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0) == 0
            {
                self.delete(Kind::ReplicaSet, ns, rs_name_i).await;
            }
        }
        let (mut total, mut ready, mut updated) = (0, 0, 0);
        for (n, rs) in &owned {
            let r = rs.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0);
            let rd = rs.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
            total += r;
            ready += rd;
            if *n == rs_name {
                updated = r;
            }
        }
        let available = ready;
        let mut status = json!({
            "observedGeneration": generation(&d), "replicas": total, "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": available,
            "conditions": [
                condition("Available", available >= desired, if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    if available >= desired { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }),
                condition("Progressing", true, if updated == desired && ready >= desired { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                    &format!("ReplicaSet \"{rs_name}\" is progressing.")),
            ],
        });
        if desired - available > 0 {
            status["unavailableReplicas"] = json!(desired - available);
        }
        for field in ["readyReplicas", "availableReplicas", "updatedReplicas", "replicas"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::Deployment, ns, name, status).await;
    }
}
