//! The DaemonSet controller: one pod per eligible node, and status.

use super::*;

impl Sim {
    pub(super) async fn sync_daemonset(&mut self, ns: &str, name: &str) {
        let Some(ds) = self.get(Kind::DaemonSet, ns, name).cloned() else { return };
        if deleting(&ds) {
            return;
        }
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let probe = json!({"spec": template.get("spec").cloned().unwrap_or(json!({}))});
        let eligible: Vec<String> = self
            .all(Kind::Node)
            .filter(|(_, n)| node_selects(&probe, n))
            .map(|((_, n), _)| n.clone())
            .collect();
        let pods = self.live_pods_of(ns, &ds);
        for node in &eligible {
            if !pods.iter().any(|(_, p)| {
                p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node.as_str())
            }) {
                let pod_name = format!("{name}-{}", &short_hash(&format!("{name}/{node}"))[..5]);
                let mut pod = self.pod_template(
                    &template,
                    &pod_name,
                    ns,
                    owner_ref(&ds, "DaemonSet", "apps/v1"),
                    &BTreeMap::new(),
                );
                pod["spec"]["nodeName"] = json!(node);
                self.create(Kind::Pod, ns, pod).await;
            }
        }
        for (pod_name, p) in &pods {
            let on = p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
            if !eligible.iter().any(|n| n == on) {
                self.delete(Kind::Pod, ns, pod_name).await;
            }
        }
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count();
        let status = json!({"desiredNumberScheduled": eligible.len(), "currentNumberScheduled": pods.len().min(eligible.len()),
            "numberReady": ready, "updatedNumberScheduled": pods.len().min(eligible.len()), "numberAvailable": ready,
            "numberMisscheduled": 0, "observedGeneration": generation(&ds)});
        self.set_status(Kind::DaemonSet, ns, name, status).await;
    }
}
