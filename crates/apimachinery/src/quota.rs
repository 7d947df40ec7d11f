//! ResourceQuota: what an object counts against a namespace's quotas (Kubernetes' quota
//! evaluators for pods, services and object counts) and the admission decision on a create.

use serde_json::Value;

use crate::quantity::{self, Resources};

/// The compute resources a quota limits on pods, each as `<name>`, `requests.<name>` and
/// `limits.<name>`.
const COMPUTE: &[&str] = &["cpu", "memory", "ephemeral-storage"];

fn terminal(pod: &Value) -> bool {
    matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

/// Sum of one field (`requests`/`limits`) over a pod's containers, or its largest init
/// container's if larger (as the scheduler and quota count it).
fn pod_resources(pod: &Value, field: &str) -> Resources {
    let of = |c: &Value| quantity::parse_list(c.pointer(&format!("/resources/{field}")));
    let mut total = Resources::new();
    for c in pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        quantity::add(&mut total, &of(c));
    }
    for c in pod.pointer("/spec/initContainers").and_then(Value::as_array).into_iter().flatten() {
        quantity::max(&mut total, &of(c));
    }
    total
}

/// The key a quota counts objects of a resource by (`count/deployments.apps`, `count/pods`).
pub fn count_key(group: &str, plural: &str) -> String {
    if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") }
}

/// What one object counts against quotas: for pods that are not finished, `pods` and their
/// requests and limits (`cpu` = `requests.cpu`); for Services, `services`, their node ports and
/// load balancers; for the core kinds with a name of their own (`configmaps`, `secrets`...)
/// that name; for every kind its `count/<resource>` key.
pub fn usage(group: &str, plural: &str, object: &Value) -> Resources {
    let mut out = Resources::new();
    if group.is_empty() && plural == "pods" && terminal(object) {
        return out;
    }
    out.insert(count_key(group, plural), 1000);
    if group.is_empty() {
        match plural {
            "pods" => {
                out.insert("pods".into(), 1000);
                let requests = pod_resources(object, "requests");
                let mut limits = pod_resources(object, "limits");
                for (name, value) in &requests {
                    let native = COMPUTE.contains(&name.as_str());
                    if native {
                        out.insert(name.clone(), *value);
                    }
                    if native || name.starts_with("hugepages-") || name.contains('/') {
                        out.insert(format!("requests.{name}"), *value);
                    }
                }
                // A limit without a request stands for the request (API defaulting).
                for (name, value) in &limits {
                    if !requests.contains_key(name) && COMPUTE.contains(&name.as_str()) {
                        out.insert(name.clone(), *value);
                        out.insert(format!("requests.{name}"), *value);
                    }
                }
                limits.retain(|k, _| COMPUTE.contains(&k.as_str()));
                for (name, value) in limits {
                    out.insert(format!("limits.{name}"), value);
                }
            }
            "services" => {
                out.insert("services".into(), 1000);
                let kind =
                    object.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
                if matches!(kind, "NodePort" | "LoadBalancer") {
                    let ports =
                        object.pointer("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len);
                    out.insert("services.nodeports".into(), ports as i128 * 1000);
                }
                if kind == "LoadBalancer" {
                    out.insert("services.loadbalancers".into(), 1000);
                }
            }
            "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas" => {
                out.insert(plural.to_owned(), 1000);
            }
            _ => {}
        }
    }
    out
}

/// Whether a quota key concerns a resource's objects at all (a quota of only `count/secrets`
/// has nothing to say about pods).
pub fn concerns(group: &str, plural: &str, key: &str) -> bool {
    if key == count_key(group, plural) {
        return true;
    }
    if !group.is_empty() {
        return false;
    }
    match plural {
        "pods" => {
            key == "pods"
                || COMPUTE.contains(&key)
                || key.starts_with("requests.")
                || key.starts_with("limits.")
        }
        "services" => key.starts_with("services"),
        other => key == other,
    }
}

/// One quota quantity as Kubernetes prints it (`requests.memory` in binary units).
pub fn format(key: &str, milli: i128) -> String {
    let base = key.rsplit('.').next().unwrap_or(key);
    quantity::format_canonical(milli, quantity::binary_resource(base))
}

/// A quota's `used` (or `hard`) as the API writes it.
pub fn to_json(resources: &Resources) -> Value {
    Value::Object(
        resources.iter().map(|(k, v)| (k.clone(), Value::String(format(k, *v)))).collect(),
    )
}

/// The resource a quota key counts objects of, as (group, plural): `count/deployments.apps` →
/// (`apps`, `deployments`), `secrets` → (``, `secrets`); `None` for keys of compute resources.
pub fn counted_resource(key: &str) -> Option<(String, String)> {
    if let Some(rest) = key.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_owned(), plural.to_owned()),
            None => (String::new(), rest.to_owned()),
        });
    }
    matches!(
        key,
        "pods"
            | "services"
            | "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas"
    )
    .then(|| (String::new(), key.to_owned()))
}

/// Prints `name=value` pairs as Kubernetes' quota messages do (sorted by name).
fn pairs(resources: &Resources) -> String {
    resources.iter().map(|(k, v)| format!("{k}={}", format(k, *v))).collect::<Vec<_>>().join(",")
}

/// The admission decision of one quota (`hard`, what `used` already) on a new object that
/// counts `request`: the quota's new `used`, or why the object is refused. A pod must state
/// the requests and limits the quota limits.
pub fn admit(
    quota: &str,
    hard: &Resources,
    used: &Resources,
    request: &Resources,
    pod: Option<&Value>,
) -> Result<Resources, String> {
    if let Some(pod) = pod {
        let mut missing = Vec::new();
        for key in hard.keys() {
            let (field, name) = match key.split_once('.') {
                Some(("requests", n)) if COMPUTE.contains(&n) => ("requests", n),
                Some(("limits", n)) if COMPUTE.contains(&n) => ("limits", n),
                None if COMPUTE.contains(&key.as_str()) => ("requests", key.as_str()),
                _ => continue,
            };
            let containers: Vec<&str> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| {
                    let has = |f: &str| c.pointer(&format!("/resources/{f}/{name}")).is_some();
                    !(has(field) || field == "requests" && has("limits"))
                })
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect();
            if !containers.is_empty() {
                missing.push(format!("{key} for: {}", containers.join(",")));
            }
        }
        if !missing.is_empty() {
            return Err(format!("failed quota: {quota}: must specify {}", missing.join("; ")));
        }
    }
    let relevant: Resources = request
        .iter()
        .filter(|(k, v)| hard.contains_key(*k) && **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let mut after = used.clone();
    quantity::add(&mut after, &relevant);
    let over: Vec<&String> = relevant
        .keys()
        .filter(|k| after.get(*k).unwrap_or(&0) > hard.get(*k).unwrap_or(&0))
        .collect();
    if !over.is_empty() {
        let pick = |from: &Resources| -> Resources {
            over.iter().map(|k| ((*k).clone(), *from.get(*k).unwrap_or(&0))).collect()
        };
        return Err(format!(
            "exceeded quota: {quota}, requested: {}, used: {}, limited: {}",
            pairs(&pick(&relevant)),
            pairs(&pick(used)),
            pairs(&pick(hard))
        ));
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn res(pairs: &[(&str, &str)]) -> Resources {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), quantity::parse_milli(v).unwrap())).collect()
    }

    fn pod(requests: Value, limits: Value) -> Value {
        json!({"spec": {"containers": [{"name": "app", "resources": {"requests": requests, "limits": limits}}]}})
    }

    #[test]
    fn objects_count_as_kubernetes_evaluators_count_them() {
        let p = pod(json!({"cpu": "100m", "memory": "64Mi"}), json!({"cpu": "200m"}));
        assert_eq!(
            usage("", "pods", &p),
            res(&[
                ("count/pods", "1"),
                ("pods", "1"),
                ("cpu", "100m"),
                ("requests.cpu", "100m"),
                ("memory", "64Mi"),
                ("requests.memory", "64Mi"),
                ("limits.cpu", "200m")
            ])
        );
        let mut done = p.clone();
        done["status"] = json!({"phase": "Succeeded"});
        assert!(usage("", "pods", &done).is_empty(), "finished pods count nothing");
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            usage("", "services", &lb),
            res(&[
                ("count/services", "1"),
                ("services", "1"),
                ("services.nodeports", "2"),
                ("services.loadbalancers", "1")
            ])
        );
        assert_eq!(
            usage("apps", "deployments", &json!({})),
            res(&[("count/deployments.apps", "1")])
        );
        assert!(concerns("", "pods", "requests.cpu") && !concerns("", "pods", "count/secrets"));
        assert!(concerns("apps", "deployments", "count/deployments.apps"));
    }

    #[test]
    fn admission_refuses_what_exceeds_or_is_unstated() {
        let hard = res(&[("requests.cpu", "1"), ("pods", "2")]);
        let used = res(&[("requests.cpu", "900m"), ("pods", "1")]);
        let p = pod(json!({"cpu": "200m"}), json!({}));
        assert_eq!(
            admit("q", &hard, &used, &usage("", "pods", &p), Some(&p)),
            Err("exceeded quota: q, requested: requests.cpu=200m, used: requests.cpu=900m, limited: requests.cpu=1".into())
        );
        let small = pod(json!({"cpu": "100m"}), json!({}));
        assert_eq!(
            admit("q", &hard, &used, &usage("", "pods", &small), Some(&small)),
            Ok(res(&[("requests.cpu", "1"), ("pods", "2")]))
        );
        let none = pod(json!({}), json!({}));
        assert_eq!(
            admit("q", &hard, &used, &usage("", "pods", &none), Some(&none)),
            Err("failed quota: q: must specify requests.cpu for: app".into())
        );
        // A quota of other things lets the pod through.
        let secrets = res(&[("secrets", "1")]);
        assert!(
            admit("q", &secrets, &Resources::new(), &usage("", "pods", &none), Some(&none)).is_ok()
        );
    }
}
