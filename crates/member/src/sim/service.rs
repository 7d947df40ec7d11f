//! The EndpointSlice controller: a Service's slices of its ready pods' addresses.

use super::*;

impl Sim {
    pub(super) async fn sync_service(&mut self, ns: &str, name: &str) {
        let Some(svc) = self.get(Kind::Service, ns, name).cloned() else { return };
        if deleting(&svc) {
            return;
        }
        if svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
            && svc.pointer("/status/loadBalancer/ingress").is_none()
        {
            let n = short_hash(&uid(&svc))
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
            let ip = format!("172.18.{}.{}", (n >> 8) % 250, n % 250 + 1);
            self.update(Kind::Service, ns, name, move |o| {
                o["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}})
            })
            .await;
        }
        // EndpointSlice with the ready pods the selector picks.
        let Some(selector) = svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
            .cloned()
        else {
            return;
        };
        let endpoints: Vec<Value> = self
            .all(Kind::Pod)
            .filter(|((n, _), p)| {
                let labels = apimachinery::selector::labels_of(p);
                n == ns && !deleting(p) && selector.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
            })
            .filter_map(|(_, p)| {
                let ip = p.pointer("/status/podIP")?.as_str()?;
                Some(json!({"addresses": [ip], "conditions": {"ready": pod_ready(p)},
                    "nodeName": p.pointer("/spec/nodeName"), "targetRef": {"kind": "Pod", "name": object::name(p), "namespace": ns, "uid": uid(p)}}))
            })
            .collect();
        let ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p.get("targetPort").filter(|t| t.is_number()).or(p.get("port")).cloned(), "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})).collect())
            .unwrap_or_default();
        let Some(slice_def) = self.api.registry().get("discovery.k8s.io", "v1", "endpointslices")
        else {
            return;
        };
        // Named as kube-controller-manager's generateName does (`<service>-<5 random>`): each
        // member's slice of a Service has its own name.
        let prefix: String = name.chars().take(57).collect();
        let slice_name = format!("{prefix}-{}", &short_hash(&uid(&svc))[..5]);
        let slice_name = slice_name.as_str();
        let desired = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": ns, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "ownerReferences": owner_ref(&svc, "Service", "v1")},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
        match self.api.read(&slice_def, Some(ns), slice_name).await {
            Ok(current) => {
                if current.get("endpoints") != desired.get("endpoints")
                    || current.get("ports") != desired.get("ports")
                {
                    let _ = self
                        .api
                        .guaranteed_update(&slice_def, Some(ns), slice_name, false, &mut |cur| {
                            let Some(cur) = cur else { return Ok(Decision::Unchanged) };
                            let mut new = cur.clone();
                            new["endpoints"] = desired["endpoints"].clone();
                            new["ports"] = desired["ports"].clone();
                            Ok(Decision::Update(new))
                        })
                        .await;
                }
            }
            Err(_) => {
                let _ = self
                    .api
                    .create_object(&slice_def, Some(ns), desired, "karmada-member-simulator")
                    .await;
            }
        }
    }
}
