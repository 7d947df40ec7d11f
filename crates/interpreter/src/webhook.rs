//! Interpreter webhooks (`ResourceInterpreterWebhookConfiguration`), as upstream calls them:
//! the first webhook (by `<configuration>/<webhook>` name) whose rules match the operation and
//! the object's group, version and kind gets a `ResourceInterpreterContext` (v1alpha1) by
//! HTTPS POST, and its response is checked before use: the uid echoed, `successful` (or a
//! status saying why not), and the field the operation needs (`replicas`, `rawStatus`,
//! `healthy`, `dependencies`, or a JSONPatch for ReviseReplica, Retain and AggregateStatus).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use karmada_api::config::{
    DependentObjectReference, ResourceInterpreterWebhook, ResourceInterpreterWebhookConfiguration,
};
use karmada_api::work::{AggregatedStatusItem, ReplicaRequirements};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Operation;

/// Upstream's default when a webhook sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a webhook may take, whatever it asks for.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response read from a webhook.
const MAX_RESPONSE: usize = 8 << 20;

/// One webhook, as configured.
#[derive(Clone, Debug)]
pub struct Hook {
    /// `<configuration name>/<webhook name>`: its identity and its order.
    pub uid: String,
    pub webhook: ResourceInterpreterWebhook,
}

impl Hook {
    fn matches(&self, group: &str, version: &str, kind: &str, op: &Operation) -> bool {
        let any = |items: &[String], want: &str| items.iter().any(|i| i == "*" || i == want);
        self.webhook.rules.iter().any(|r| {
            r.operations.iter().any(|o| o == "*" || o == op.as_str())
                && any(&r.api_groups, group)
                && any(&r.api_versions, version)
                && any(&r.kinds, kind)
        })
    }
}

/// The webhooks in force, in upstream's order.
#[derive(Clone, Debug, Default)]
pub struct Webhooks {
    hooks: Vec<Hook>,
}

impl Webhooks {
    pub fn new<'a>(
        list: impl IntoIterator<Item = &'a ResourceInterpreterWebhookConfiguration>,
    ) -> Self {
        let mut hooks: Vec<Hook> = list
            .into_iter()
            .flat_map(|c| {
                let config = c.metadata.name.clone().unwrap_or_default();
                c.webhooks
                    .iter()
                    .map(move |w| Hook { uid: format!("{config}/{}", w.name), webhook: w.clone() })
            })
            .collect();
        hooks.sort_by(|a, b| a.uid.cmp(&b.uid));
        Webhooks { hooks }
    }

    /// The webhook that interprets `op` for objects of this type, if any.
    pub fn first(&self, api_version: &str, kind: &str, op: &Operation) -> Option<&Hook> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.hooks.iter().find(|h| h.matches(group, version, kind, op))
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
}

/// What a call is about.
pub struct Attributes<'a> {
    pub operation: Operation,
    pub object: &'a Value,
    pub observed: Option<&'a Value>,
    pub desired_replicas: i32,
    pub aggregated_status: &'a [AggregatedStatusItem],
}

/// A webhook's answer, checked for the operation.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub successful: bool,
    #[serde(default)]
    pub status: Option<ResponseStatus>,
    /// A JSONPatch (base64 in JSON, as Go writes bytes).
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub patch_type: Option<String>,
    #[serde(default)]
    pub replica_requirements: Option<ReplicaRequirements>,
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub dependencies: Option<Vec<DependentObjectReference>>,
    #[serde(default)]
    pub raw_status: Option<Value>,
    #[serde(default)]
    pub healthy: Option<bool>,
    #[serde(default)]
    pub components: Option<Vec<karmada_api::work::Component>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: i32,
}

/// The request a webhook is sent.
pub fn request_body(uid: &str, attributes: &Attributes<'_>) -> Value {
    let object = attributes.object;
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let api_version = text("/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let mut request = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": text("/kind")},
        "name": text("/metadata/name"),
        "operation": attributes.operation.as_str(),
        "object": object,
        "replicas": attributes.desired_replicas,
    });
    let namespace = text("/metadata/namespace");
    if !namespace.is_empty() {
        request["namespace"] = json!(namespace);
    }
    if let Some(observed) = attributes.observed {
        request["observedObject"] = observed.clone();
    }
    if !attributes.aggregated_status.is_empty() {
        request["aggregatedStatus"] = json!(attributes.aggregated_status);
    }
    json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterContext",
        "request": request})
}

/// Checks a response for the operation (upstream's rules).
pub fn verify(uid: &str, op: &Operation, context: &Value) -> Result<Response, String> {
    let Some(raw) = context.get("response").filter(|r| !r.is_null()) else {
        return Err("webhook response was absent".into());
    };
    let response: Response = serde_json::from_value(raw.clone())
        .map_err(|e| format!("invalid webhook response: {e}"))?;
    if response.uid != uid {
        return Err(format!("expected response.uid {uid:?}, got {:?}", response.uid));
    }
    if !response.successful {
        let Some(status) = &response.status else {
            return Err("webhook require response.status when response.successful is false".into());
        };
        return Err(format!(
            "webhook call failed, get status code: {}, msg: {}",
            status.code, status.message
        ));
    }
    match op {
        Operation::InterpretReplica if response.replicas.is_none() => {
            Err("webhook returned nil response.replicas".into())
        }
        Operation::InterpretStatus if response.raw_status.is_none() => {
            Err("webhook returned nil response.rawStatus".into())
        }
        Operation::InterpretHealth if response.healthy.is_none() => {
            Err("webhook returned nil response.healthy".into())
        }
        Operation::InterpretDependency => {
            crate::verify_dependencies(response.dependencies.as_deref().unwrap_or_default())?;
            Ok(response)
        }
        Operation::ReviseReplica | Operation::Retain | Operation::AggregateStatus => {
            let patch = response.patch.as_deref().unwrap_or_default();
            match response.patch_type.as_deref() {
                None if patch.is_empty() => {}
                None => return Err("webhook returned nil response.patchType".into()),
                Some(_) if patch.is_empty() => {
                    return Err("webhook returned empty response.patch".into());
                }
                Some("JSONPatch") => {}
                Some(other) => {
                    return Err(format!(
                        "webhook returned invalid response.patchType of {other:?}"
                    ));
                }
            }
            Ok(response)
        }
        _ => Ok(response),
    }
}

/// `object` with a response's JSONPatch applied (unchanged without one).
pub fn apply_patch(object: &Value, response: &Response) -> Result<Value, String> {
    let Some(encoded) = response.patch.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(object.clone());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the webhook's patch is not base64: {e}"))?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the webhook's patch is not a JSONPatch: {e}"))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch)
        .map_err(|e| format!("applying the webhook's patch: {e}"))?;
    Ok(patched)
}

/// Where a webhook is reached: its URL and the name its certificate is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub server_name: Option<String>,
}

/// Finds the address of a `service` reference (as upstream's resolver: the Service's cluster
/// IP and port, or its external name; `<name>.<namespace>.svc` when there is no such
/// Service). Given the control plane's client.
pub async fn resolve(
    control: Option<&kube::Client>,
    config: &WebhookClientConfig,
) -> Result<Endpoint, String> {
    if let Some(url) = &config.url {
        return Ok(Endpoint { url: url.clone(), server_name: None });
    }
    let Some(service) = &config.service else {
        return Err("the webhook's clientConfig has neither url nor service".into());
    };
    let port = service.port.unwrap_or(443);
    let path = service.path.clone().unwrap_or_default();
    let dns = format!("{}.{}.svc", service.name, service.namespace);
    let found = match control {
        Some(client) => {
            let services: kube::Api<k8s_openapi::api::core::v1::Service> =
                kube::Api::namespaced(client.clone(), &service.namespace);
            services.get_opt(&service.name).await.map_err(|e| e.to_string())?
        }
        None => None,
    };
    let host = match found.and_then(|s| s.spec) {
        None => dns.clone(),
        Some(spec) => match spec.type_.as_deref().unwrap_or("ClusterIP") {
            "ExternalName" => spec.external_name.unwrap_or_default(),
            "ClusterIP" if spec.cluster_ip.as_deref() == Some("None") => {
                return Err("cannot route to service with ClusterIP \"None\"".into());
            }
            "ClusterIP" | "NodePort" | "LoadBalancer" => {
                if !spec.ports.unwrap_or_default().iter().any(|p| p.port == port) {
                    return Err(format!(
                        "no service port {port} found for service {:?}",
                        service.name
                    ));
                }
                spec.cluster_ip.unwrap_or_default()
            }
            other => return Err(format!("unsupported service type {other:?}")),
        },
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    Ok(Endpoint { url: format!("https://{host}:{port}{path}"), server_name: Some(dns) })
}

/// A webhook client's server URL, certificate name and CA bundle.
type ClientKey = (String, Option<String>, Vec<u8>);

/// Calls webhooks, keeping one client per endpoint and CA bundle.
#[derive(Default)]
pub struct Caller {
    clients: Mutex<HashMap<ClientKey, kube::Client>>,
}

impl Caller {
    /// A client for the server of `url` (requests name their path).
    fn client(
        &self,
        url: &http::Uri,
        server_name: Option<&str>,
        ca: &[u8],
        timeout: Duration,
    ) -> Result<kube::Client, String> {
        let mut base = http::uri::Parts::default();
        base.scheme = url.scheme().cloned();
        base.authority = url.authority().cloned();
        base.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        let base = http::Uri::from_parts(base).map_err(|e| format!("webhook url: {e}"))?;
        let key = (base.to_string(), server_name.map(str::to_owned), ca.to_vec());
        if let Some(c) = self.clients.lock().get(&key) {
            return Ok(c.clone());
        }
        let mut config = kube::Config::new(base);
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        config.tls_server_name = server_name.map(str::to_owned);
        if !ca.is_empty() {
            config.root_cert = Some(pem_certificates(ca)?);
        }
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let mut clients = self.clients.lock();
        if clients.len() > 64 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Calls `hook` and checks its response for the operation.
    pub async fn call(
        &self,
        control: Option<&kube::Client>,
        hook: &Hook,
        attributes: &Attributes<'_>,
    ) -> Result<Response, String> {
        let webhook = &hook.webhook;
        if !webhook.interpreter_context_versions.iter().any(|v| v == "v1alpha1") {
            return Err(
                "webhook does not accept known ResourceInterpreterContext versions (v1alpha1)"
                    .into(),
            );
        }
        let timeout = webhook
            .timeout_seconds
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64))
            .min(MAX_TIMEOUT);
        let endpoint = resolve(control, &webhook.client_config).await?;
        let ca = webhook.client_config.ca_bundle.as_ref().map(|b| b.0.clone()).unwrap_or_default();
        let url: http::Uri =
            endpoint.url.parse().map_err(|e| format!("webhook url {:?}: {e}", endpoint.url))?;
        let client = self.client(&url, endpoint.server_name.as_deref(), &ca, timeout)?;
        let uid = uuid::Uuid::new_v4().to_string();
        let body =
            serde_json::to_vec(&request_body(&uid, attributes)).map_err(|e| e.to_string())?;
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .map_err(|e| e.to_string())?;
        let text = tokio::time::timeout(timeout, client.request_text(request))
            .await
            .map_err(|_| format!("failed to call webhook: no answer within {timeout:?}"))?
            .map_err(|e| format!("failed to call webhook: {e}"))?;
        if text.len() > MAX_RESPONSE {
            return Err(format!("the webhook's response is larger than {MAX_RESPONSE} bytes"));
        }
        let context: Value = serde_json::from_str(&text)
            .map_err(|e| format!("received invalid webhook response: {e}"))?;
        verify(&uid, &attributes.operation, &context)
            .map_err(|e| format!("received invalid webhook response: {e}"))
    }
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut inside = false;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            body.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|e| format!("the webhook's caBundle: {e}"))?,
            );
        } else if inside {
            body.push_str(line);
        }
    }
    if out.is_empty() {
        return Err("the webhook's caBundle holds no PEM certificate".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, hooks: Value) -> ResourceInterpreterWebhookConfiguration {
        serde_json::from_value(json!({"apiVersion": "config.karmada.io/v1alpha1",
            "kind": "ResourceInterpreterWebhookConfiguration", "metadata": {"name": name}, "webhooks": hooks}))
        .expect("a configuration")
    }

    fn hook(name: &str, ops: &[&str], kinds: &[&str]) -> Value {
        json!({"name": name, "clientConfig": {"url": "https://127.0.0.1:1/interpret"},
            "rules": [{"operations": ops, "apiGroups": ["workload.example.io"], "apiVersions": ["v1alpha1"], "kinds": kinds}],
            "interpreterContextVersions": ["v1alpha1"]})
    }

    #[test]
    fn the_first_matching_webhook_by_name_answers() {
        let w = Webhooks::new(&[
            config("b", json!([hook("all", &["*"], &["*"])])),
            config("a", json!([hook("health", &["InterpretHealth"], &["Workload"])])),
        ]);
        let first =
            |op| w.first("workload.example.io/v1alpha1", "Workload", &op).map(|h| h.uid.clone());
        assert_eq!(first(Operation::InterpretHealth).as_deref(), Some("a/health"));
        assert_eq!(first(Operation::InterpretReplica).as_deref(), Some("b/all"));
        assert!(w.first("apps/v1", "Deployment", &Operation::InterpretReplica).is_none());
    }

    #[test]
    fn requests_carry_the_context_upstream_sends() {
        let object = json!({"apiVersion": "workload.example.io/v1alpha1", "kind": "Workload",
            "metadata": {"name": "w", "namespace": "n"}, "spec": {"replicas": 3}});
        let body = request_body(
            "u-1",
            &Attributes {
                operation: Operation::ReviseReplica,
                object: &object,
                observed: None,
                desired_replicas: 2,
                aggregated_status: &[],
            },
        );
        assert_eq!(
            body,
            json!({"apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterContext",
            "request": {"uid": "u-1", "kind": {"group": "workload.example.io", "version": "v1alpha1", "kind": "Workload"},
                "name": "w", "namespace": "n", "operation": "ReviseReplica", "object": object, "replicas": 2}})
        );
    }

    #[test]
    fn responses_are_checked_for_the_operation() {
        let ok = |extra: Value| {
            let mut r = json!({"uid": "u", "successful": true});
            r.as_object_mut()
                .expect("object")
                .extend(extra.as_object().cloned().unwrap_or_default());
            json!({"response": r})
        };
        assert!(verify("u", &Operation::InterpretReplica, &ok(json!({"replicas": 2}))).is_ok());
        assert_eq!(
            verify("u", &Operation::InterpretReplica, &ok(json!({}))).unwrap_err(),
            "webhook returned nil response.replicas"
        );
        assert!(
            verify("x", &Operation::InterpretHealth, &ok(json!({"healthy": true})))
                .unwrap_err()
                .contains("expected response.uid")
        );
        let failed = json!({"response": {"uid": "u", "successful": false, "status": {"message": "no", "code": 500}}});
        assert_eq!(
            verify("u", &Operation::InterpretHealth, &failed).unwrap_err(),
            "webhook call failed, get status code: 500, msg: no"
        );
        let patch = base64::engine::general_purpose::STANDARD
            .encode(br#"[{"op": "replace", "path": "/spec/replicas", "value": 2}]"#);
        let r = verify(
            "u",
            &Operation::ReviseReplica,
            &ok(json!({"patch": patch, "patchType": "JSONPatch"})),
        )
        .unwrap();
        assert_eq!(
            apply_patch(&json!({"spec": {"replicas": 5}}), &r).unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert!(
            verify("u", &Operation::Retain, &ok(json!({"patch": patch})))
                .unwrap_err()
                .contains("patchType")
        );
        assert!(
            verify(
                "u",
                &Operation::InterpretDependency,
                &ok(json!({"dependencies": [{"apiVersion": "v1", "kind": "Secret"}]}))
            )
            .is_err()
        );
    }
}
