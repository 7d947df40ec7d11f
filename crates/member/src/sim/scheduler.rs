//! The scheduler: pending pods bound to nodes with room, selectors and tolerations;
//! unschedulable ones retried when something changes.

use super::*;

impl Sim {
    /// The scheduler: binds pending pods to nodes that fit.
    pub(super) async fn schedule(&mut self) {
        let queue = std::mem::take(&mut self.unscheduled);
        let pending: Vec<(Key, Value)> = queue
            .into_iter()
            .filter_map(|(ns, name)| {
                let p = self.get(Kind::Pod, &ns, &name)?;
                (p.pointer("/spec/nodeName").is_none() && !deleting(p) && !terminated(p))
                    .then(|| ((ns, name), p.clone()))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        // Free capacity per ready node.
        let mut free: BTreeMap<String, (Resources, Value)> = BTreeMap::new();
        for ((_, name), node) in self.all(Kind::Node) {
            if node_ready(node) {
                free.insert(
                    name.clone(),
                    (quantity::parse_list(node.pointer("/status/allocatable")), node.clone()),
                );
            }
        }
        for (_, pod) in self.all(Kind::Pod) {
            if terminated(pod) {
                continue;
            }
            if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str)
                && let Some((res, _)) = free.get_mut(node)
            {
                for (k, v) in pod_requests(pod) {
                    *res.entry(k).or_default() -= v;
                }
            }
        }
        for ((ns, name), pod) in pending {
            let requests = pod_requests(&pod);
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            let mut best: Option<(String, (i128, i128))> = None;
            for (node_name, (res, node)) in &free {
                if !node_selects(&pod, node) {
                    *reasons.entry("node(s) didn't match Pod's node affinity/selector or had untolerated taint".into()).or_default() += 1;
                    continue;
                }
                let short: Vec<&String> = requests
                    .iter()
                    .filter(|(k, v)| res.get(*k).copied().unwrap_or(0) < **v && **v > 0)
                    .map(|(k, _)| k)
                    .collect();
                if let Some(first) = short.first() {
                    let reason = if first.as_str() == "pods" {
                        "Too many pods".to_owned()
                    } else {
                        format!("Insufficient {first}")
                    };
                    *reasons.entry(reason).or_default() += 1;
                    continue;
                }
                // Spread: most free pod slots, then most free CPU.
                let score =
                    (res.get("pods").copied().unwrap_or(0), res.get("cpu").copied().unwrap_or(0));
                if best.as_ref().is_none_or(|(_, s)| score > *s) {
                    best = Some((node_name.clone(), score));
                }
            }
            match best {
                Some((node, _)) => {
                    if let Some((res, _)) = free.get_mut(&node) {
                        for (k, v) in &requests {
                            *res.entry(k.clone()).or_default() -= v;
                        }
                    }
                    let node_for = node.clone();
                    self.update(Kind::Pod, &ns, &name, move |p| {
                        p["spec"]["nodeName"] = json!(node_for);
                        p["status"]["phase"] = json!("Pending");
                        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]);
                    })
                    .await;
                    self.bound_at.insert((ns, name), Instant::now());
                }
                None => {
                    let total = free.len();
                    let detail: Vec<String> =
                        reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                    let message = format!("0/{total} nodes are available: {}.", detail.join(", "));
                    self.update(Kind::Pod, &ns, &name, move |p| {
                        // Unschedulable since the first time it was found so (what the
                        // descheduler measures against its threshold).
                        let since = p
                            .pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .and_then(|cs| {
                                cs.iter().find(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
                            })
                            .and_then(|c| c.get("lastTransitionTime").cloned())
                            .unwrap_or_else(|| json!(now_rfc3339()));
                        p["status"]["phase"] = json!("Pending");
                        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": message.clone(), "lastProbeTime": null, "lastTransitionTime": since}]);
                    })
                    .await;
                }
            }
        }
    }

    pub(super) fn requeue_unschedulable(&mut self) {
        let waiting: Vec<Key> = self
            .all(Kind::Pod)
            .filter(|(_, p)| p.pointer("/spec/nodeName").is_none())
            .map(|(k, _)| k.clone())
            .collect();
        self.unscheduled.extend(waiting);
    }
}
