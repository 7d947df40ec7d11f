//! The kubelet: bound pods start after the configured delay (or fail to pull a missing
//! image, or crash-loop), get IPs and container statuses, and Job pods complete.

use super::*;

impl Sim {
    /// The images of a pod's containers that the member's registry does not have.
    pub(super) fn missing_images(&self, pod: &Value) -> BTreeSet<String> {
        let faults = self.faults.read();
        if faults.missing_images.is_empty() {
            return BTreeSet::new();
        }
        ["/spec/initContainers", "/spec/containers"]
            .iter()
            .filter_map(|path| pod.pointer(path).and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
            .filter(|image| faults.image_missing(image))
            .map(str::to_owned)
            .collect()
    }

    /// The pod's IP: the one it has, or the next free one.
    pub(super) fn pod_ip(&mut self, pod: &Value) -> Value {
        if let Some(ip) = pod.pointer("/status/podIP") {
            return ip.clone();
        }
        self.pod_ips += 1;
        let subnet = self.config.pod_subnet.unwrap_or(244);
        json!(format!("10.{subnet}.{}.{}", (self.pod_ips / 250) % 250, self.pod_ips % 250 + 2))
    }

    /// The kubelet: starts bound pods after the delay; fails the pods of failing workloads;
    /// finishes Job pods.
    pub(super) async fn kubelet(&mut self) {
        let now = Instant::now();
        let queue = std::mem::take(&mut self.kubelet_queue);
        let pods: Vec<(Key, Value)> = queue
            .into_iter()
            .filter_map(|(ns, name)| {
                let p = self.get(Kind::Pod, &ns, &name)?;
                (p.pointer("/spec/nodeName").is_some() && !deleting(p) && !terminated(p))
                    .then(|| ((ns, name), p.clone()))
            })
            .collect();
        for ((ns, name), pod) in pods {
            let key = (ns.clone(), name.clone());
            let since = *self.bound_at.entry(key.clone()).or_insert(now);
            let running = pod.pointer("/status/phase") == Some(&json!("Running"));
            let workload = self.workload_of(&ns, &pod).unwrap_or_default();
            let failing = self.failing(&ns, &workload);
            let is_job = matches!(owner(&pod), Some((Kind::Job, _)));
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let node_ok = self.get(Kind::Node, "", &node).is_some_and(node_ready);
            if now.duration_since(since) < self.config.start_delay {
                self.kubelet_queue.insert(key);
                continue;
            }
            // Its image cannot be pulled: the pod waits (as a real kubelet's back-off does)
            // until the registry has it; a pod already running keeps running.
            let missing = self.missing_images(&pod);
            if !running && !missing.is_empty() {
                if pull_failure_reported(&pod, &missing) {
                    continue;
                }
                let containers = pull_failed_statuses(&pod, &missing);
                let ip = self.pod_ip(&pod);
                self.update(Kind::Pod, &ns, &name, move |p| {
                    p["status"]["phase"] = json!("Pending");
                    p["status"]["podIP"] = ip.clone();
                    p["status"]["podIPs"] = json!([{"ip": ip.clone()}]);
                    p["status"]["hostIP"] = json!(HOST_IP);
                    if p["status"].get("startTime").is_none() {
                        p["status"]["startTime"] = json!(now_rfc3339());
                    }
                    p["status"]["conditions"] = json!([
                        {"type": "PodScheduled", "status": "True"},
                        {"type": "Initialized", "status": "True"},
                        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                    ]);
                    p["status"]["containerStatuses"] = containers.clone();
                })
                .await;
                continue;
            }
            if is_job
                && running
                && !failing
                && now.duration_since(since) < self.config.start_delay + self.config.job_duration
            {
                self.kubelet_queue.insert(key.clone());
            }
            if is_job
                && running
                && !failing
                && now.duration_since(since) >= self.config.start_delay + self.config.job_duration
            {
                let containers = container_statuses(&pod, false, true);
                self.update(Kind::Pod, &ns, &name, move |p| {
                    p["status"]["phase"] = json!("Succeeded");
                    p["status"]["conditions"] =
                        json!([{"type": "Ready", "status": "False", "reason": "PodCompleted"}]);
                    p["status"]["containerStatuses"] = containers.clone();
                })
                .await;
                continue;
            }
            let want_ready = !failing && node_ok;
            if running && pod_ready(&pod) == want_ready && !failing {
                continue;
            }
            let restarts = if failing { 1 } else { 0 };
            let containers = container_statuses(&pod, want_ready, false);
            let ip = self.pod_ip(&pod);
            let host_ip = json!(HOST_IP);
            self.update(Kind::Pod, &ns, &name, move |p| {
                let previous_restarts = p
                    .pointer("/status/containerStatuses/0/restartCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let mut statuses = containers.clone();
                if restarts > 0 {
                    for s in statuses.as_array_mut().into_iter().flatten() {
                        s["restartCount"] = json!(previous_restarts.max(1));
                    }
                }
                p["status"]["phase"] = json!("Running");
                p["status"]["podIP"] = ip.clone();
                p["status"]["podIPs"] = json!([{"ip": ip.clone()}]);
                p["status"]["hostIP"] = host_ip.clone();
                if p["status"].get("startTime").is_none() {
                    p["status"]["startTime"] = json!(now_rfc3339());
                }
                let ready = if want_ready { "True" } else { "False" };
                p["status"]["conditions"] = json!([
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "ContainersReady", "status": ready},
                    {"type": "Ready", "status": ready},
                ]);
                p["status"]["containerStatuses"] = statuses;
            })
            .await;
        }
    }
}

pub(super) fn container_statuses(pod: &Value, ready: bool, completed: bool) -> Value {
    statuses_of(pod, ready, |_| {
        if completed {
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now_rfc3339()}})
        } else if ready {
            json!({"running": {"startedAt": now_rfc3339()}})
        } else {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (simulated)"}})
        }
    })
}

/// A status for each of the pod's containers, in `state_of(container)`.
pub(super) fn statuses_of(pod: &Value, ready: bool, state_of: impl Fn(&Value) -> Value) -> Value {
    let containers =
        pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    Value::Array(
        containers
            .iter()
            .map(|c| {
                json!({"name": c.get("name").cloned().unwrap_or(json!("")), "image": c.get("image").cloned().unwrap_or(json!("")),
                    "imageID": "", "ready": ready, "started": ready, "restartCount": 0, "state": state_of(c)})
            })
            .collect(),
    )
}

/// The node address every simulated pod reports.
pub(super) const HOST_IP: &str = "172.17.0.2";

/// Container statuses of a pod whose `missing` images cannot be pulled: those containers back
/// off pulling, the others wait for them.
pub(super) fn pull_failed_statuses(pod: &Value, missing: &BTreeSet<String>) -> Value {
    statuses_of(pod, false, |c| {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        if missing.contains(image) {
            json!({"waiting": {"reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}\"")}})
        } else {
            json!({"waiting": {"reason": "ContainerCreating"}})
        }
    })
}

/// Whether the pod already reports exactly these images failing to pull.
pub(super) fn pull_failure_reported(pod: &Value, missing: &BTreeSet<String>) -> bool {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let backing_off: BTreeSet<String> = statuses
        .iter()
        .filter(|s| s.pointer("/state/waiting/reason") == Some(&json!("ImagePullBackOff")))
        .filter_map(|s| s.get("image").and_then(Value::as_str).map(str::to_owned))
        .collect();
    // An init container's image is not reported per container: only the phase tells.
    let expected: BTreeSet<String> =
        missing.iter().filter(|m| containers_use(pod, "/spec/containers", m)).cloned().collect();
    pod.pointer("/status/phase") == Some(&json!("Pending"))
        && !statuses.is_empty()
        && backing_off == expected
}

/// Whether a container at `path` of the pod uses `image`.
pub(super) fn containers_use(pod: &Value, path: &str, image: &str) -> bool {
    pod.pointer(path)
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c.get("image").and_then(Value::as_str) == Some(image)))
}
