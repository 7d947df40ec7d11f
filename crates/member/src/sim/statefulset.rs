//! The StatefulSet controller: ordinal pods, and status.

use super::*;

impl Sim {
    pub(super) async fn sync_statefulset(&mut self, ns: &str, name: &str) {
        let Some(sts) = self.get(Kind::StatefulSet, ns, name).cloned() else { return };
        if deleting(&sts) {
            return;
        }
        let desired = replicas(&sts).max(0) as usize;
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let pods = self.live_pods_of(ns, &sts);
        for i in 0..desired {
            let pod_name = format!("{name}-{i}");
            if !pods.iter().any(|(n, _)| *n == pod_name) {
                let extra: BTreeMap<String, String> =
                    [("statefulset.kubernetes.io/pod-name".to_owned(), pod_name.clone())]
                        .into_iter()
                        .collect();
                let mut pod = self.pod_template(
                    &template,
                    &pod_name,
                    ns,
                    owner_ref(&sts, "StatefulSet", "apps/v1"),
                    &extra,
                );
                pod["spec"]["hostname"] = json!(pod_name);
                self.create(Kind::Pod, ns, pod).await;
            }
        }
        for (pod_name, _) in &pods {
            let index = pod_name.rsplit('-').next().and_then(|i| i.parse::<usize>().ok());
            if index.is_none_or(|i| i >= desired) {
                self.delete(Kind::Pod, ns, pod_name).await;
            }
        }
        let current = pods.len().min(desired);
        let ready = pods.iter().filter(|(_, p)| pod_ready(p)).count().min(desired);
        let mut status = json!({"replicas": current, "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": current,
            "availableReplicas": ready, "observedGeneration": generation(&sts)});
        if ready == 0 {
            status.as_object_mut().map(|m| m.remove("readyReplicas"));
        }
        self.set_status(Kind::StatefulSet, ns, name, status).await;
    }
}
