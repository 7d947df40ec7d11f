//! What the workload controllers share: pod templates, the pods a workload owns, and which
//! workloads are made to fail.

use super::*;

impl Sim {
    pub(super) fn pod_template(
        &self,
        template: &Value,
        name: &str,
        ns: &str,
        owner_refs: Value,
        extra_labels: &BTreeMap<String, String>,
    ) -> Value {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
            "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        object::set_meta(&mut pod, "name", json!(name));
        object::set_meta(&mut pod, "namespace", json!(ns));
        object::set_meta(&mut pod, "ownerReferences", owner_refs);
        let labels = object::string_map_mut(&mut pod, "labels");
        for (k, v) in extra_labels {
            labels.insert(k.clone(), json!(v));
        }
        pod
    }

    pub(super) fn failing(&self, ns: &str, workload: &str) -> bool {
        self.faults.read().failing_workloads.iter().any(|w| w == &format!("{ns}/{workload}"))
    }

    /// The top-level workload a pod belongs to (ReplicaSets resolve to their Deployment).
    pub(super) fn workload_of(&self, ns: &str, pod: &Value) -> Option<String> {
        let (kind, name) = owner(pod)?;
        if kind == Kind::ReplicaSet {
            let rs = self.get(Kind::ReplicaSet, ns, &name)?;
            if let Some((Kind::Deployment, d)) = owner(rs) {
                return Some(d);
            }
        }
        Some(name)
    }

    /// The objects of `kind` in `ns` that `parent` owns, from the owner index.
    pub(super) fn children_of(
        &self,
        kind: Kind,
        ns: &str,
        parent: &Value,
    ) -> Vec<(&String, &Value)> {
        let Some(keys) = self.children_by_owner.get(&(kind, uid(parent))) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|(n, _)| n == ns)
            .filter_map(|(n, k)| {
                let child = self.get(kind, n, k)?;
                owned_by(child, parent).then_some((k, child))
            })
            .collect()
    }

    pub(super) fn live_pods_of(&self, ns: &str, parent: &Value) -> Vec<(String, Value)> {
        self.children_of(Kind::Pod, ns, parent)
            .into_iter()
            .filter(|(_, p)| !deleting(p))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }
}
