//! The cluster proxy: `/apis/cluster.karmada.io/v1alpha1/clusters/<name>/proxy/<path>` passes a
//! request on to the member's API server, as upstream's karmada-aggregated-apiserver does. The
//! API server has already authorized the caller for `clusters/proxy` (RBAC, by the request's
//! method); the member sees the request made by the cluster's impersonator ServiceAccount
//! (`impersonatorSecretRef`) on behalf of the caller (`Impersonate-User` / `-Group`), never by
//! the control plane's own identity. Bodies stream both ways (watches, `logs -f`).
//!
//! A Pull cluster is reached the same way when its agent reported its API endpoint and
//! credentials (upstream's agent does by default) and the control plane can connect to it;
//! one that did not, and clusters that are not Ready, get a 503 saying why.

use std::collections::HashMap;
use std::time::Duration;

use apimachinery::ApiError;
use apiserver::api::{Body, ProxyRequest};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use k8s_openapi::ByteString;
use karmada_api::cluster::Cluster;
use parking_lot::Mutex;

/// How long connecting to a member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Request headers passed on to the member (everything else — credentials above all — is not).
const FORWARDED: &[&str] =
    &["accept", "accept-encoding", "content-type", "user-agent", "x-stream-protocol-version"];

/// Response headers passed back.
const RETURNED: &[&str] = &["content-type", "content-encoding", "cache-control", "warning"];

/// More headers both ways when a request upgrades its connection (exec, attach,
/// port-forward over WebSocket or SPDY).
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "x-stream-protocol-version",
];

/// The cluster proxy, with a client per member (rebuilt when the Cluster or its Secrets
/// change).
#[derive(Default)]
pub struct ClusterProxy {
    clients: Mutex<HashMap<String, (String, kube::Client)>>,
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", message)
}

/// Whether a cluster is reachable for proxying, or why not.
pub fn proxyable(cluster: &Cluster) -> Result<(), String> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let reachable =
        !cluster.spec.api_endpoint.is_empty() && cluster.spec.impersonator_secret_ref.is_some();
    if cluster.spec.sync_mode == "Pull" && !reachable {
        return Err(format!(
            "cluster {name} is in Pull mode and its agent reported no API endpoint or impersonator credentials (karmada agent --cluster-api-endpoint, --report-secrets), so the control plane cannot reach it"
        ));
    }
    let ready = cluster
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        return Err(format!("cluster {name} is not ready"));
    }
    if cluster.spec.api_endpoint.is_empty() {
        return Err(format!("cluster {name} has no API endpoint"));
    }
    if cluster.spec.impersonator_secret_ref.is_none() {
        return Err(format!("cluster {name} has no impersonatorSecretRef"));
    }
    Ok(())
}

/// The impersonation headers for a caller: its name and groups (`system:authenticated` is
/// added by the member itself).
pub fn impersonation(user: &apiserver::User) -> Vec<(&'static str, String)> {
    let mut headers = vec![("impersonate-user", user.name.clone())];
    for group in &user.groups {
        if group != "system:authenticated" {
            headers.push(("impersonate-group", group.clone()));
        }
    }
    headers
}

impl ClusterProxy {
    pub(crate) async fn secret(
        storage: &apiserver::storage::Storage,
        namespace: &str,
        name: &str,
    ) -> Result<(String, std::collections::BTreeMap<String, ByteString>), ApiError> {
        let def = storage
            .registry()
            .storage_def("", "secrets")
            .ok_or_else(|| ApiError::internal("secrets are not served"))?;
        let secret = storage.read(&def, Some(namespace), name).await.map_err(|e| {
            if e.code == 404 {
                unavailable(format!("the Secret {namespace}/{name} of the cluster is missing"))
            } else {
                e
            }
        })?;
        let rv = apimachinery::object::meta_str(&secret, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(secret)
            .map_err(|e| ApiError::internal(format!("the Secret {namespace}/{name}: {e}")))?;
        Ok((rv, secret.data.unwrap_or_default()))
    }

    /// A client for the member that authenticates as its impersonator (`upgrading`: one that
    /// speaks HTTP/1.1, made for one request that upgrades its connection).
    async fn client(
        &self,
        storage: &apiserver::storage::Storage,
        cluster: &Cluster,
        cluster_rv: &str,
        upgrading: bool,
    ) -> Result<kube::Client, ApiError> {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let spec = &cluster.spec;
        let impersonator = spec
            .impersonator_secret_ref
            .as_ref()
            .ok_or_else(|| unavailable(format!("cluster {name} has no impersonatorSecretRef")))?;
        let (impersonator_rv, impersonator_data) =
            Self::secret(storage, &impersonator.namespace, &impersonator.name).await?;
        let (ca_rv, ca_pem) = match &spec.secret_ref {
            Some(r) => {
                let (rv, data) = Self::secret(storage, &r.namespace, &r.name).await?;
                (rv, data.get("caBundle").map(|b| b.0.clone()).unwrap_or_default())
            }
            None => (String::new(), Vec::new()),
        };
        let fingerprint = format!("{cluster_rv}/{impersonator_rv}/{ca_rv}");
        if !upgrading
            && let Some((seen, client)) = self.clients.lock().get(&name)
            && *seen == fingerprint
        {
            return Ok(client.clone());
        }
        let token = impersonator_data
            .get("token")
            .map(|t| String::from_utf8_lossy(&t.0).into_owned())
            .ok_or_else(|| {
                unavailable(format!(
                    "the Secret {}/{} of cluster {name} holds no token",
                    impersonator.namespace, impersonator.name
                ))
            })?;
        let credentials = member_client::Credentials {
            ca_pem: if spec.insecure_skip_tls_verification { Vec::new() } else { ca_pem },
            token: Some(token),
            ..Default::default()
        };
        if upgrading {
            return member_client::upgrading_client_for(
                &name,
                &spec.api_endpoint,
                &credentials,
                CONNECT_TIMEOUT,
            )
            .await
            .map_err(|e| unavailable(e.to_string()));
        }
        let client = member_client::watching_client_for(
            &name,
            &spec.api_endpoint,
            &credentials,
            CONNECT_TIMEOUT,
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        self.clients.lock().insert(name, (fingerprint, client.clone()));
        Ok(client)
    }
}

impl ClusterProxy {
    /// Passes a request on to cluster `name` as its impersonator, on behalf of `user`: `path`
    /// (with the query of `parts`), the method, the headers that may go, and `body`.
    pub async fn forward(
        &self,
        storage: &apiserver::storage::Storage,
        name: &str,
        path: &str,
        parts: &http::request::Parts,
        body: Bytes,
        user: &apiserver::User,
    ) -> Result<Response<Body>, ApiError> {
        let def = storage
            .registry()
            .storage_def("cluster.karmada.io", "clusters")
            .ok_or_else(|| ApiError::internal("clusters are not served"))?;
        let object = storage.read(&def, None, name).await?;
        let cluster_rv = apimachinery::object::meta_str(&object, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        let cluster: Cluster = serde_json::from_value(object)
            .map_err(|e| ApiError::internal(format!("cluster {name}: {e}")))?;
        proxyable(&cluster).map_err(unavailable)?;
        let upgrade = apiserver::api::Upgrade::take(parts);
        let client = self.client(storage, &cluster, &cluster_rv, upgrade.is_some()).await?;
        let passed: Vec<&str> = FORWARDED
            .iter()
            .chain(if upgrade.is_some() { UPGRADE_HEADERS } else { &[] })
            .copied()
            .collect();

        let target = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let mut outgoing = http::Request::builder().method(parts.method.clone()).uri(&target);
        for header in &passed {
            for value in parts.headers.get_all(*header) {
                outgoing = outgoing.header(*header, value);
            }
        }
        for (header, value) in impersonation(user) {
            let value = HeaderValue::from_str(&value).map_err(|_| {
                ApiError::bad_request(format!("the caller's {header} cannot be sent in a header"))
            })?;
            outgoing = outgoing.header(header, value);
        }
        let outgoing = outgoing
            .body(kube::client::Body::from(body.to_vec()))
            .map_err(|e| ApiError::bad_request(format!("cannot proxy {target}: {e}")))?;
        let mut response = client
            .send(outgoing)
            .await
            .map_err(|e| unavailable(format!("error trying to reach cluster {name}: {e}")))?;
        if let Some(caller) = upgrade
            && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
        {
            return switch(caller, &mut response, name);
        }
        let (member_parts, body) = response.into_parts();
        // The body as it arrives (copied by a task: the member's body is not `Sync`); a stream
        // the member breaks off simply ends, and one the caller drops stops the copying.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let mut chunks = body.into_data_stream();
            while let Some(Ok(chunk)) = chunks.next().await {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut reply = Response::builder().status(member_parts.status);
        for header in RETURNED {
            for value in member_parts.headers.get_all(*header) {
                reply = reply.header(*header, value);
            }
        }
        reply
            .body(apiserver::api::channel_body(rx))
            .map_err(|e| ApiError::internal(format!("proxying {target}: {e}")))
    }
}

/// The member switched protocols: so does the caller, and the two connections are joined
/// until either side closes.
fn switch(
    caller: hyper::upgrade::OnUpgrade,
    response: &mut http::Response<kube::client::Body>,
    cluster: &str,
) -> Result<Response<Body>, ApiError> {
    let member = hyper::upgrade::on(&mut *response);
    let cluster = cluster.to_owned();
    tokio::spawn(async move {
        let (caller, member) = match tokio::join!(caller, member) {
            (Ok(caller), Ok(member)) => (caller, member),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(%cluster, error = %e, "an upgraded proxy connection failed");
                return;
            }
        };
        let mut caller = hyper_util::rt::TokioIo::new(caller);
        let mut member = hyper_util::rt::TokioIo::new(member);
        let _ = tokio::io::copy_bidirectional(&mut caller, &mut member).await;
    });
    let mut reply = Response::builder().status(http::StatusCode::SWITCHING_PROTOCOLS);
    for header in UPGRADE_HEADERS.iter().chain(RETURNED) {
        for value in response.headers().get_all(*header) {
            reply = reply.header(*header, value);
        }
    }
    reply
        .body(apiserver::api::full(Bytes::new()))
        .map_err(|e| ApiError::internal(format!("switching protocols: {e}")))
}

#[async_trait::async_trait]
impl apiserver::Proxy for ClusterProxy {
    async fn proxy(&self, request: ProxyRequest<'_>) -> Result<Response<Body>, ApiError> {
        if request.subresource != "proxy" {
            return Err(ApiError::path_not_found());
        }
        self.forward(
            request.storage,
            request.name,
            request.path,
            request.parts,
            request.body,
            request.user,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(spec: serde_json::Value, ready: bool) -> Cluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "member1"}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "reason": "ClusterReady", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_ready_push_clusters_with_credentials_are_proxied() {
        let push = serde_json::json!({"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:1",
            "impersonatorSecretRef": {"namespace": "karmada-cluster", "name": "member1-impersonator"}});
        assert_eq!(proxyable(&cluster(push.clone(), true)), Ok(()));
        let why = |spec, ready| proxyable(&cluster(spec, ready)).unwrap_err();
        assert!(why(push.clone(), false).contains("not ready"));
        assert!(why(serde_json::json!({"syncMode": "Pull"}), true).contains("Pull mode"));
        let mut reported = push.clone();
        reported["syncMode"] = serde_json::json!("Pull");
        assert_eq!(
            proxyable(&cluster(reported, true)),
            Ok(()),
            "a Pull cluster its agent reported"
        );
        let mut bare = push;
        bare.as_object_mut().unwrap().remove("impersonatorSecretRef");
        assert!(why(bare, true).contains("impersonatorSecretRef"));
    }

    #[test]
    fn the_caller_is_impersonated_with_its_groups() {
        let user = apiserver::User {
            name: "alice".into(),
            groups: vec!["devs".into(), "system:authenticated".into()],
        };
        assert_eq!(
            impersonation(&user),
            [("impersonate-user", "alice".to_owned()), ("impersonate-group", "devs".to_owned())]
        );
    }
}
