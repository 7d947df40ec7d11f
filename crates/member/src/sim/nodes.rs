//! The member's nodes: created at start, with capacity and labels from the configuration, and
//! their readiness following the fault file.

use super::*;

impl Sim {
    pub(super) fn node_labels(&self, i: usize) -> Value {
        let name = system::node_name(&self.cluster, i);
        let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"});
        if !self.config.zones.is_empty() {
            labels["topology.kubernetes.io/zone"] =
                json!(self.config.zones[i % self.config.zones.len()]);
        }
        if !self.config.region.is_empty() {
            labels["topology.kubernetes.io/region"] = json!(self.config.region);
        }
        labels
    }

    pub(super) fn node_status(&self, ready: bool) -> Value {
        let capacity = json!({
            "cpu": quantity::format_milli(self.config.node_cpu_milli),
            "memory": format!("{}", self.config.node_memory),
            "pods": format!("{}", self.config.node_pods),
        });
        let version = self.api_version();
        json!({
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                "message": if ready { "kubelet is posting ready status" } else { "simulated node failure" },
                "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
            "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.0", "osImage": "karmada-rs simulated node"},
        })
    }

    pub(super) fn api_version(&self) -> String {
        self.version.clone()
    }

    pub(super) async fn ensure_nodes(&mut self) {
        for i in 0..self.config.nodes {
            let name = system::node_name(&self.cluster, i);
            if self.get(Kind::Node, "", &name).is_some() {
                continue;
            }
            let mut labels = self.node_labels(i);
            if i == 0 {
                labels["node-role.kubernetes.io/control-plane"] = json!("");
            }
            let subnet = self.config.pod_subnet.unwrap_or(244);
            let cidr = format!("10.{subnet}.{i}.0/24");
            let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}, "status": self.node_status(true)});
            // As a kind node's, on the node network (one /24 per member, like its pods' /16).
            node["status"]["addresses"] = json!([
                {"type": "InternalIP", "address": format!("172.18.{subnet}.{}", i + 2)},
                {"type": "Hostname", "address": name},
            ]);
            self.create(Kind::Node, "", node).await;
        }
    }

    pub(super) async fn sync_node_faults(&self) {
        let failing: Vec<String> = self.faults.read().not_ready_nodes.clone();
        let nodes: Vec<(String, bool)> =
            self.all(Kind::Node).map(|((_, n), v)| (n.clone(), node_ready(v))).collect();
        for (name, ready) in nodes {
            let should = !failing.contains(&name);
            if ready != should {
                let status = self.node_status(should);
                self.update(Kind::Node, "", &name, move |o| {
                    let capacity = o.pointer("/status/capacity").cloned();
                    let addresses = o.pointer("/status/addresses").cloned();
                    o["status"] = status.clone();
                    if let Some(a) = addresses {
                        o["status"]["addresses"] = a;
                    }
                    if let Some(c) = capacity {
                        o["status"]["capacity"] = c.clone();
                        o["status"]["allocatable"] = c;
                    }
                })
                .await;
            }
        }
    }
}
