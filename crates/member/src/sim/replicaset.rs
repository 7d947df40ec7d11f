//! The ReplicaSet controller: pods up or down to the wanted replicas, and status.

use super::*;

impl Sim {
    pub(super) async fn sync_replicaset(&mut self, ns: &str, name: &str) {
        let Some(rs) = self.get(Kind::ReplicaSet, ns, name).cloned() else { return };
        if deleting(&rs) {
            return;
        }
        let desired = replicas(&rs).max(0) as usize;
        let mut pods: Vec<(String, Value)> =
            self.live_pods_of(ns, &rs).into_iter().filter(|(_, p)| !terminated(p)).collect();
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        while pods.len() < desired {
            let pod_name =
                format!("{name}-{}", &short_hash(&uuid::Uuid::new_v4().to_string())[..5]);
            let pod = self.pod_template(
                &template,
                &pod_name,
                ns,
                owner_ref(&rs, "ReplicaSet", "apps/v1"),
                &BTreeMap::new(),
            );
            self.create(Kind::Pod, ns, pod.clone()).await;
            pods.push((pod_name, pod));
        }
        if pods.len() > desired {
            // Delete unscheduled pods first, then not-ready ones, then the newest.
            pods.sort_by_key(|(n, p)| {
                (p.pointer("/spec/nodeName").is_some(), pod_ready(p), std::cmp::Reverse(n.clone()))
            });
            for (pod_name, _) in pods.drain(..pods.len() - desired) {
                self.delete(Kind::Pod, ns, &pod_name).await;
            }
        }
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count();
        let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": generation(&rs)});
        for field in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::ReplicaSet, ns, name, status).await;
    }
}
