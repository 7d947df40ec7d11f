//! Kube clients for member clusters, from a Cluster's `apiEndpoint` and its credentials Secret
//! (`caBundle`, and `token` or `tls.crt`/`tls.key`).

pub mod join;
pub mod kubeconfig;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::ByteString;
use karmada_api::cluster::Cluster;

/// Server names whose TLS sessions a member client keeps for resumption (it has one server).
const RESUMPTION_NAMES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cluster {0} has no apiEndpoint")]
    NoEndpoint(String),
    #[error("cluster {0} has no secretRef")]
    NoSecret(String),
    #[error("reading secret {namespace}/{name}: {source}")]
    Secret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("building a client for {cluster}: {message}")]
    Build { cluster: String, message: String },
}

/// Credentials for one member, as stored in its Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub ca_pem: Vec<u8>,
    pub token: Option<String>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
}

impl Credentials {
    pub fn to_secret_data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        data.insert("caBundle".to_owned(), ByteString(self.ca_pem.clone()));
        if let Some(t) = &self.token {
            data.insert("token".to_owned(), ByteString(t.as_bytes().to_vec()));
        }
        if let Some(c) = &self.cert_pem {
            data.insert("tls.crt".to_owned(), ByteString(c.clone()));
        }
        if let Some(k) = &self.key_pem {
            data.insert("tls.key".to_owned(), ByteString(k.clone()));
        }
        data
    }

    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Credentials {
        Credentials {
            ca_pem: data.get("caBundle").map(|b| b.0.clone()).unwrap_or_default(),
            token: data.get("token").map(|b| String::from_utf8_lossy(&b.0).into_owned()),
            cert_pem: data.get("tls.crt").map(|b| b.0.clone()),
            key_pem: data.get("tls.key").map(|b| b.0.clone()),
        }
    }
}

/// A client for `endpoint` with `credentials`, whose connections and reads give up after
/// `timeout`.
pub async fn client_for(
    name: &str,
    endpoint: &str,
    credentials: &Credentials,
    timeout: std::time::Duration,
) -> Result<kube::Client, ClientError> {
    build(name, endpoint, credentials, timeout, Some(timeout)).await
}

/// A client for `endpoint` that keeps watches open: connecting gives up after `timeout`, but
/// reads wait (a watch of objects that do not change is silent for minutes; with a read
/// timeout it broke and was re-established every few seconds). Requests made with it bound
/// their own time.
pub async fn watching_client_for(
    name: &str,
    endpoint: &str,
    credentials: &Credentials,
    timeout: std::time::Duration,
) -> Result<kube::Client, ClientError> {
    build(name, endpoint, credentials, timeout, None).await
}

/// A client for `endpoint` that speaks HTTP/1.1 only, so that a request may upgrade its
/// connection (`exec`, `attach`, `port-forward` over WebSocket or SPDY: `hyper::upgrade::on`
/// on the response); reads do not time out.
pub async fn upgrading_client_for(
    name: &str,
    endpoint: &str,
    credentials: &Credentials,
    timeout: std::time::Duration,
) -> Result<kube::Client, ClientError> {
    let config = kube_config(name, endpoint, credentials).await?;
    http_client(config, timeout, false)
        .map_err(|e| ClientError::Build { cluster: name.to_owned(), message: e.to_string() })
}

async fn kube_config(
    name: &str,
    endpoint: &str,
    credentials: &Credentials,
) -> Result<kube::Config, ClientError> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut user = serde_json::Map::new();
    if let Some(t) = &credentials.token {
        user.insert("token".into(), t.clone().into());
    }
    if let (Some(c), Some(k)) = (&credentials.cert_pem, &credentials.key_pem) {
        user.insert("client-certificate-data".into(), b64(c).into());
        user.insert("client-key-data".into(), b64(k).into());
    }
    let mut cluster = serde_json::json!({"server": endpoint});
    if !credentials.ca_pem.is_empty() {
        cluster["certificate-authority-data"] = b64(&credentials.ca_pem).into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    });
    let build = |message: String| ClientError::Build { cluster: name.to_owned(), message };
    let kubeconfig: kube::config::Kubeconfig =
        serde_json::from_value(doc).map_err(|e| build(e.to_string()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| build(e.to_string()))
}

async fn build(
    name: &str,
    endpoint: &str,
    credentials: &Credentials,
    connect_timeout: std::time::Duration,
    read_timeout: Option<std::time::Duration>,
) -> Result<kube::Client, ClientError> {
    let build = |message: String| ClientError::Build { cluster: name.to_owned(), message };
    let mut config = kube_config(name, endpoint, credentials).await?;
    config.connect_timeout = Some(connect_timeout);
    config.read_timeout = read_timeout;
    config.write_timeout = read_timeout;
    if read_timeout.is_some() {
        return kube::Client::try_from(config).map_err(|e| build(e.to_string()));
    }
    http2_client(config, connect_timeout).map_err(|e| build(e.to_string()))
}

/// A client speaking HTTP/2 when the server offers it (falling back to HTTP/1.1): one
/// connection carries every watch and request, instead of one connection (and TLS session and
/// buffers) each; connection keep-alive pings notice a server that went away without closing
/// the connection. Connecting gives up after `timeout`; reads do not time out (watches).
pub fn http2_client(
    config: kube::Config,
    timeout: std::time::Duration,
) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    http_client(config, timeout, true)
}

/// A client offering HTTP/2 (`h2`) or speaking HTTP/1.1 only.
fn http_client(
    config: kube::Config,
    timeout: std::time::Duration,
    h2: bool,
) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    use kube::client::ConfigExt;
    // (hyper-rustls offers h2 and http/1.1 by ALPN itself.)
    let mut tls = config.rustls_client_config()?;
    // A client talks to one server: rustls' default session cache is sized for 256 server
    // names and allocated up front, ~100 KiB per member at 1,000 members.
    tls.resumption = rustls::client::Resumption::in_memory_sessions(RESUMPTION_NAMES);
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    // HTTP/2 writes a request as several frames: without this, Nagle's algorithm held the
    // later ones back behind the server's delayed ACK (~40 ms a hop).
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1();
    let https =
        if h2 { https.enable_http2().wrap_connector(http) } else { https.wrap_connector(http) };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .http2_keep_alive_timeout(timeout)
        .http2_keep_alive_while_idle(true)
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .map_err(
            |e: hyper_util::client::legacy::Error| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(e)
            },
        )
        .service(client);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// What a member client is built from: a client stays valid while this is unchanged (the
/// generation moves with any change of the Cluster's spec, its secret reference included).
pub fn version(cluster: &Cluster) -> String {
    format!("{}/{}", cluster.spec.api_endpoint, cluster.metadata.generation.unwrap_or(0))
}

/// A client for a joined cluster, from its Secret in the control plane (reads time out after
/// `timeout`, or, when `watching`, never: see [`watching_client_for`]).
pub async fn for_cluster(
    control: &kube::Client,
    cluster: &Cluster,
    timeout: std::time::Duration,
    watching: bool,
) -> Result<kube::Client, ClientError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    if cluster.spec.api_endpoint.is_empty() {
        return Err(ClientError::NoEndpoint(name));
    }
    let secret_ref =
        cluster.spec.secret_ref.clone().ok_or_else(|| ClientError::NoSecret(name.clone()))?;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(control.clone(), &secret_ref.namespace);
    let secret = secrets.get(&secret_ref.name).await.map_err(|source| ClientError::Secret {
        namespace: secret_ref.namespace.clone(),
        name: secret_ref.name.clone(),
        source,
    })?;
    let credentials = Credentials::from_secret_data(&secret.data.unwrap_or_default());
    let read_timeout = (!watching).then_some(timeout);
    build(&name, &cluster.spec.api_endpoint, &credentials, timeout, read_timeout).await
}

/// Member clients shared by the cluster-status probes and the execution controller (one
/// HTTP/2 connection per member for both): building one reads the cluster's Secret and starts
/// a new TLS connection, which at 1,000 clusters probed every few seconds was a large share of
/// the controller-manager's work. A client is rebuilt when its `member_client::version`
/// changes, after a failed probe, and at least every five minutes; each build has its own
/// serial, so a holder of long-lived state on a client (the execution controller's watches)
/// knows when to move to the new one.
#[derive(Default)]
pub struct Clients {
    built: std::sync::Mutex<(HashMap<String, Built>, u64)>,
    /// One build at a time per cluster: the requests that find no client at once (all of a
    /// restart's) wait for that build instead of each making its own.
    building: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A client, the version it was built for, when, and its serial.
struct Built {
    version: String,
    client: kube::Client,
    at: Instant,
    serial: u64,
}

impl Clients {
    const MAX_AGE: Duration = Duration::from_secs(300);

    /// The client of `cluster` and its serial.
    pub async fn get(
        &self,
        control: &kube::Client,
        cluster: &Cluster,
        timeout: Duration,
    ) -> Result<(kube::Client, u64), String> {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let wanted = version(cluster);
        let current = || {
            let cache = self.built.lock().ok()?;
            let b = cache.0.get(&name)?;
            (b.version == wanted && b.at.elapsed() < Self::MAX_AGE)
                .then(|| (b.client.clone(), b.serial))
        };
        if let Some(found) = current() {
            return Ok(found);
        }
        let lock = match self.building.lock() {
            Ok(mut building) => Arc::clone(building.entry(name.clone()).or_default()),
            Err(_) => Arc::default(),
        };
        let _building = lock.lock().await;
        // Built by whoever held the lock before.
        if let Some(found) = current() {
            return Ok(found);
        }
        let client =
            for_cluster(control, cluster, timeout, true).await.map_err(|e| e.to_string())?;
        let Ok(mut cache) = self.built.lock() else { return Ok((client, 0)) };
        cache.1 += 1;
        let serial = cache.1;
        let built = Built { version: wanted, client: client.clone(), at: Instant::now(), serial };
        cache.0.insert(name, built);
        Ok((client, serial))
    }

    pub fn forget(&self, name: &str) {
        if let Ok(mut cache) = self.built.lock() {
            cache.0.remove(name);
        }
    }
}
