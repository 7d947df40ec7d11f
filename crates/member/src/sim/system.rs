//! What a freshly made cluster already runs, so that a simulated member looks like the kind
//! clusters upstream Karmada's local setup and e2e suite use: the `default/kubernetes`
//! Service, CoreDNS (`kube-system/coredns`, two replicas behind `kube-dns`), kube-proxy on
//! every node, and the control plane's static pods (`etcd-<node>`, `kube-apiserver-<node>`,
//! ...) mirrored on the first node. They are created once, when missing, through the same API
//! as anything else, and then left to the simulation (and to the user: deleting CoreDNS is
//! allowed, as on a real cluster).

use super::*;

/// The control plane's static pods: (component, image, CPU request).
const STATIC_PODS: &[(&str, &str, &str)] = &[
    ("etcd", "registry.k8s.io/etcd:3.5.16-0", "100m"),
    ("kube-apiserver", "registry.k8s.io/kube-apiserver", "250m"),
    ("kube-controller-manager", "registry.k8s.io/kube-controller-manager", "200m"),
    ("kube-scheduler", "registry.k8s.io/kube-scheduler", "100m"),
];

/// A node name as kind gives them: `<cluster>-control-plane`, then `<cluster>-worker`,
/// `<cluster>-worker2`, ...
pub(super) fn node_name(cluster: &str, i: usize) -> String {
    match i {
        0 => format!("{cluster}-control-plane"),
        1 => format!("{cluster}-worker"),
        n => format!("{cluster}-worker{n}"),
    }
}

/// Tolerations system pods carry (they run on every node, control plane included).
fn tolerate_all() -> Value {
    json!([{"operator": "Exists"}])
}

impl Sim {
    pub(super) async fn ensure_system(&mut self) {
        let version = self.api_version();
        let dns_labels = json!({"k8s-app": "kube-dns"});
        if self.get(Kind::Service, "default", "kubernetes").is_none() {
            let service = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
            self.create(Kind::Service, "default", service).await;
        }
        if self.get(Kind::Service, "kube-system", "kube-dns").is_none() {
            let service = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
                "spec": {"selector": dns_labels, "clusterIP": "10.96.0.10", "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}});
            self.create(Kind::Service, "kube-system", service).await;
        }
        if self.get(Kind::Deployment, "kube-system", "coredns").is_none() {
            let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dns_labels},
                "spec": {"replicas": 2, "selector": {"matchLabels": dns_labels},
                    "template": {"metadata": {"labels": dns_labels}, "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "tolerations": tolerate_all(),
                        "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}}}]}}}});
            self.create(Kind::Deployment, "kube-system", deployment).await;
        }
        if self.get(Kind::DaemonSet, "kube-system", "kube-proxy").is_none() {
            let labels = json!({"k8s-app": "kube-proxy"});
            let daemonset = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
                "spec": {"selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {
                        "priorityClassName": "system-node-critical", "hostNetwork": true,
                        "tolerations": tolerate_all(),
                        "containers": [{"name": "kube-proxy", "image": format!("registry.k8s.io/kube-proxy:{version}"),
                            "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf"]}]}}}});
            self.create(Kind::DaemonSet, "kube-system", daemonset).await;
        }
        self.ensure_static_pods().await;
    }

    /// The control plane's static pods on the first node, as the kubelet mirrors them (owned by
    /// their Node).
    async fn ensure_static_pods(&mut self) {
        let node = node_name(&self.cluster, 0);
        // Read, not looked up: the node was created a moment ago and may not be indexed yet.
        let Ok(node_object) = self.api.read(&self.def(Kind::Node), None, &node).await else {
            return;
        };
        let version = self.api_version();
        for (component, image, cpu) in STATIC_PODS {
            let name = format!("{component}-{node}");
            if self.get(Kind::Pod, "kube-system", &name).is_some() {
                continue;
            }
            let image = if image.contains(':') {
                (*image).to_owned()
            } else {
                format!("{image}:{version}")
            };
            let pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "kube-system",
                    "labels": {"component": component, "tier": "control-plane"},
                    "annotations": {"kubernetes.io/config.mirror": short_hash(&name), "kubernetes.io/config.source": "file"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                        "uid": uid(&node_object), "controller": true}]},
                "spec": {"nodeName": node, "hostNetwork": true, "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                    "containers": [{"name": component, "image": image, "command": [component],
                        "resources": {"requests": {"cpu": cpu}}}]}});
            self.create(Kind::Pod, "kube-system", pod).await;
        }
    }
}
