//! The Kubernetes-compatible API server of karmada-rs.
//!
//! It serves built-in Kubernetes kinds as stored objects (the control plane runs no pods),
//! Karmada's kinds (registered by the binary), and any CRD created at run time, over HTTPS with
//! client-certificate or token authentication, so that the real `kubectl` and `kube-rs` work
//! unchanged. The same server, on the memory store, is the API of simulated member clusters.
//!
//! Layers: wire decoding (`request`: routes, queries, verbs, negotiation) → the request
//! pipeline (`api`: impersonation, authorization, limits, audit, metrics; discovery, reviews)
//! → the storage core (`storage`: the verbs on a `ctx::Req`, admission, the
//! optimistic-concurrency loop; `watch`) → per-resource rules (`strategy`, `crd_schema`) → the
//! store (`store::Store`, objects encoded by `codec`). Leaf modules (`auth`, `admission`,
//! `reply`, `clock`) hold the types every layer shares. Background loops (`crd` controller,
//! `gc` garbage collector and namespace finalizer, `services`, `tokens`, `csr`) run in-process
//! on the storage core. No module imports one that imports it back.
//!
//! It knows nothing of Karmada's scheduling or propagation: those are API clients.

pub mod admission;
pub mod alias;
pub mod api;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod codec;
pub mod crd;
pub mod crd_schema;
pub mod csr;
pub mod ctx;
pub mod defaults;
pub mod discovery;
pub mod encoding;
pub mod encryption;
pub mod eviction;
pub mod files;
pub mod follow;
pub mod format;
pub mod gc;
pub mod metrics;
pub mod pki;
pub mod quota;
pub mod rbac;
pub mod registry;
pub mod reply;
pub mod request;

pub mod satoken;
pub mod services;
pub mod storage;
pub mod strategy;
pub mod table;
pub mod tokens;
pub mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use api::{
    Admission, AdmissionRequest, Api, Authorizer, Computed, Operation, Proxy, ProxyRequest,
    Subresource, SubresourceRequest, User,
};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
pub use registry::{Registry, ResourceDef};
pub use storage::Storage;
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio_rustls::TlsAcceptor;

/// How to start an API server.
pub struct Config {
    /// Certificates and the kubeconfig are kept here.
    pub data_dir: PathBuf,
    /// Port 0 picks a free port.
    pub bind: SocketAddr,
    pub store: Arc<dyn Store>,
    /// Where to write the admin kubeconfig (default `data_dir/karmada-apiserver.config`).
    pub kubeconfig: Option<PathBuf>,
    /// The CA, the admin certificate and the service account key (default `data_dir/pki`,
    /// created there on first start); when they are all present the directory is only read,
    /// so it may be a read-only mount (a Secret shared by several API servers).
    pub pki_dir: Option<PathBuf>,
    /// The kubeconfig context (and cluster/user) name.
    pub context: String,
    /// Reported by `/version` (its minor picks the kubectl the dispatcher runs).
    pub kubernetes_version: String,
    /// Extra names for the serving certificate.
    pub extra_sans: Vec<String>,
    /// Resources served in addition to the built-ins (e.g. Karmada's kinds).
    pub resources: Vec<ResourceDef>,
    pub admission: Vec<Arc<dyn Admission>>,
    pub authorizer: Arc<dyn Authorizer>,
    /// Static bearer tokens.
    pub tokens: HashMap<String, User>,
    /// A watch without `timeoutSeconds` lasts this long times a random factor in [1, 2).
    pub watch_timeout: Duration,
    pub bookmark_interval: Duration,
    /// Run the garbage collector and namespace finalizer.
    pub gc: bool,
    /// Namespaces created at startup besides Kubernetes' own (e.g. `karmada-system`).
    pub namespaces: Vec<String>,
    /// Signs client certificate requests this approver approves (None: none are signed).
    pub csr_approver: Option<Arc<dyn csr::CsrApprover>>,
    /// Authorize with RBAC (after `authorizer`, which may only narrow), creating the default
    /// roles and bindings plus `rbac_bootstrap` at startup.
    pub rbac: bool,
    /// More RBAC objects (ClusterRoles, ClusterRoleBindings) created at startup if missing.
    pub rbac_bootstrap: Vec<serde_json::Value>,
    /// At most this many requests served at once (watches excepted); 0: unbounded.
    pub max_requests_inflight: usize,
    /// Record mutating requests here (JSON lines), rotating past `audit_log_max_bytes`.
    pub audit_log: Option<PathBuf>,
    pub audit_log_max_bytes: u64,
    /// At most this many open watches per user (0: unbounded).
    pub max_watches_per_user: usize,
    /// Groups whose members are not held to a share of the in-flight requests (Kubernetes
    /// exempts `system:masters`).
    pub exempt_groups: Vec<String>,
    /// Serve requests without credentials as `system:anonymous` where RBAC allows it (health
    /// and version); off: every request needs credentials (401).
    pub anonymous_auth: bool,
    /// CustomResourceDefinition objects for kinds in `resources`, shown to clients as if the
    /// kinds were CRDs (`kubectl get crd`); see `crd::ServedCrds`.
    pub served_crds: Vec<serde_json::Value>,
    /// Events are deleted this long after they were last seen (Kubernetes' `--event-ttl`).
    pub event_ttl: Duration,
    /// Checks of a kind's objects against the others stored, by (group, plural).
    pub peer_checks: Vec<(String, String, Arc<dyn storage::PeerCheck>)>,
    /// Checks of a kind's writes against other stored objects (that may write those too),
    /// by (group, plural).
    pub write_checks: Vec<(String, String, Arc<dyn storage::WriteCheck>)>,
    /// What serves `proxy` subresources, by (group, plural) (the cluster proxy).
    pub proxies: Vec<(String, String, Arc<dyn api::Proxy>)>,
    /// Subresources served by handlers of their own, by (group, plural, subresource) (a
    /// simulated member's pod logs).
    pub subresources: Vec<(String, String, String, Arc<dyn api::Subresource>)>,
    /// Read-only kinds computed on each read (registered and discoverable like any other).
    pub computed: Vec<(registry::ResourceDef, Arc<dyn api::Computed>)>,
    /// Loops that run beside the server on its storage, for as long as it runs.
    pub background: Vec<Arc<dyn Background>>,
}

/// A loop that runs beside the server on its storage (karmada-search's caches), started once
/// the server accepts; it ends when the storage's [`Storage::shutdown`] signal says so.
pub trait Background: Send + Sync {
    fn start(self: Arc<Self>, storage: Arc<storage::Storage>) -> tokio::task::JoinHandle<()>;
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, bind: SocketAddr, store: Arc<dyn Store>) -> Config {
        Config {
            data_dir: data_dir.into(),
            bind,
            store,
            kubeconfig: None,
            pki_dir: None,
            context: "karmada-apiserver".into(),
            kubernetes_version: "v1.32.0".into(),
            extra_sans: Vec::new(),
            resources: Vec::new(),
            admission: Vec::new(),
            authorizer: Arc::new(api::AllowAll),
            tokens: HashMap::new(),
            namespaces: Vec::new(),
            csr_approver: None,
            rbac: false,
            rbac_bootstrap: Vec::new(),
            max_requests_inflight: 0,
            exempt_groups: vec![rbac::MASTERS.to_owned()],
            anonymous_auth: true,
            served_crds: Vec::new(),
            audit_log: None,
            audit_log_max_bytes: 100 << 20,
            max_watches_per_user: 0,
            watch_timeout: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(60),
            gc: true,
            event_ttl: Duration::from_secs(3600),
            peer_checks: Vec::new(),
            write_checks: Vec::new(),
            proxies: Vec::new(),
            subresources: Vec::new(),
            computed: Vec::new(),
            background: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("certificates: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("audit log: {0}")]
    Audit(#[source] std::io::Error),
    #[error("service account signing key: {0}")]
    ServiceAccountKey(String),
    #[error("store: {0}")]
    Format(#[from] format::FormatError),
}

/// HTTP/2 streams one connection may have open at once (watches included).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// A running API server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub kubeconfig: PathBuf,
    pub ca_pem: String,
    pub admin: pki::Issued,
    pub api: Arc<Api>,
    /// The storage core behind `api` (what in-process loops read and write through).
    pub storage: Arc<storage::Storage>,
    shutdown: signal::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Stops accepting, ends watches and background loops, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// The kubeconfig entry for this server with the admin credentials.
    pub fn kubeconfig_entry(&self, name: &str) -> pki::KubeconfigEntry {
        pki::KubeconfigEntry {
            name: name.to_owned(),
            server: self.url.clone(),
            ca_pem: self.ca_pem.clone(),
            client: Some(self.admin.clone()),
            token: None,
        }
    }
}

/// Starts the server: certificates, listener, background loops. Returns once it accepts.
pub async fn start(config: Config) -> Result<Server, StartError> {
    let pki_dir = config.pki_dir.clone().unwrap_or_else(|| config.data_dir.join("pki"));
    let authority = pki::Authority::load_or_create(&pki_dir, &format!("{}-ca", config.context))?;
    let listener =
        listen(config.bind).map_err(|source| StartError::Bind { addr: config.bind, source })?;
    let addr =
        listener.local_addr().map_err(|source| StartError::Bind { addr: config.bind, source })?;
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), addr.ip().to_string()];
    hosts.extend(config.extra_sans.iter().cloned());
    let serving = authority.serving(&hosts)?;
    let admin = authority.client_in(&pki_dir, "admin", "admin", &["system:masters"])?;
    let tls = TlsAcceptor::from(authority.server_config(&serving)?);
    let host =
        if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let url = format!("https://{host}:{}", addr.port());

    let registry = Arc::new(Registry::with_builtins());
    let mut by_group: std::collections::BTreeMap<String, Vec<ResourceDef>> = Default::default();
    for def in config.resources.into_iter().chain(config.computed.iter().map(|(d, _)| d.clone())) {
        by_group.entry(def.group.clone()).or_default().push(def);
    }
    for (group, defs) in by_group {
        registry.register(&format!("static:{group}"), defs);
    }
    let (shutdown_tx, shutdown_rx) = signal::channel(false);
    let rbac_authorizer = config.rbac.then(rbac::RbacAuthorizer::default);
    let mut admission = config.admission;
    admission.push(Arc::new(crd::ServedCrds));
    // Every Kubernetes API server allocates Service addresses.
    let services = Arc::new(services::ServiceAllocator::default());
    admission.push(Arc::clone(&services) as Arc<dyn Admission>);
    admission.push(Arc::new(defaults::BuiltinDefaults));
    if let Some(rbac) = &rbac_authorizer {
        admission.push(Arc::new(rbac::EscalationCheck { index: Arc::clone(&rbac.index) }));
    }
    let authorizer: Arc<dyn Authorizer> = match &rbac_authorizer {
        Some(rbac) => Arc::new(rbac::All(vec![config.authorizer, Arc::new(rbac.clone())])),
        None => config.authorizer,
    };
    let storage = Arc::new(storage::Storage {
        store: Arc::clone(&config.store),
        registry,
        admission,
        served_crds: config
            .served_crds
            .iter()
            .map(|crd| (apimachinery::object::name(crd).to_owned(), crd.clone()))
            .collect(),
        shutdown: shutdown_rx.clone(),
        write_hooks: vec![(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            Arc::new(crd::RegistrySync) as Arc<dyn storage::WriteHook>,
        )],
        peer_checks: config.peer_checks,
        write_checks: config.write_checks,
    });
    let sa_tokens = Arc::new(
        satoken::TokenSigner::load_or_create(&pki_dir).map_err(StartError::ServiceAccountKey)?,
    );
    let api = Arc::new(Api {
        storage: Arc::clone(&storage),
        authorizer,
        rbac: rbac_authorizer.clone(),
        sa_tokens: Some(Arc::clone(&sa_tokens)),
        git_version: config.kubernetes_version,
        server_address: format!("{host}:{}", addr.port()),
        metrics: metrics::Metrics::default(),
        watching: Arc::new(watch::Watching {
            lines: Default::default(),
            default_timeout: config.watch_timeout,
            bookmark_interval: config.bookmark_interval,
        }),
        availability: Default::default(),
        watches: api::WatchSlots::new(config.max_watches_per_user),
        fairness: api::Fairness::new(config.max_requests_inflight, config.exempt_groups.clone()),
        anonymous_auth: config.anonymous_auth,
        proxies: config.proxies.clone(),
        subresources: config.subresources.clone(),
        computed: config
            .computed
            .iter()
            .map(|(def, handler)| (def.group.clone(), def.plural.clone(), Arc::clone(handler)))
            .collect(),
        inflight: (config.max_requests_inflight > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_requests_inflight))),
        audit: match &config.audit_log {
            Some(path) => Some(
                audit::AuditLog::start(path.clone(), config.audit_log_max_bytes)
                    .map_err(StartError::Audit)?,
            ),
            None => None,
        },
    });
    format::open(config.store.as_ref()).await?;
    let crd_revision = crd::load_all(&storage).await?;
    ensure_default_namespaces(&storage, &config.namespaces).await;
    for crd in &config.served_crds {
        crd::ensure_served(&storage, crd).await;
    }

    let kubeconfig =
        config.kubeconfig.unwrap_or_else(|| config.data_dir.join("karmada-apiserver.config"));
    let entry = pki::KubeconfigEntry {
        name: config.context.clone(),
        server: url.clone(),
        ca_pem: authority.cert_pem().to_owned(),
        client: Some(admin.clone()),
        token: None,
    };
    pki::write_kubeconfig(&kubeconfig, &[entry], None)?;

    publish_cluster_info(&storage, &url, authority.cert_pem()).await;

    let mut tasks = Vec::new();
    if let Some(rbac) = &rbac_authorizer {
        for object in rbac::bootstrap_policy().into_iter().chain(config.rbac_bootstrap) {
            ensure_object(&storage, object).await;
        }
        for (kind, prefix, revision) in rbac::load(&storage, &rbac.index).await {
            tasks.push(tokio::spawn(rbac::watch(
                Arc::clone(&storage),
                Arc::clone(&rbac.index),
                kind,
                prefix,
                revision,
            )));
        }
    }
    tasks.push(tokio::spawn(crd::run_controller(Arc::clone(&storage), crd_revision)));
    tasks.push(tokio::spawn(services.run(Arc::clone(&storage))));
    if let Some(approver) = config.csr_approver {
        let authority = Arc::new(pki::Authority::load_or_create(&pki_dir, "unused")?);
        tasks.push(tokio::spawn(csr::run(Arc::clone(&storage), authority, approver)));
    }
    if config.gc {
        tasks.push(tokio::spawn(gc::run(Arc::clone(&storage))));
        tasks.push(tokio::spawn(gc::expire_events(Arc::clone(&storage), config.event_ttl)));
    }
    tasks.push(tokio::spawn(tokens::run(
        Arc::clone(&storage),
        sa_tokens,
        authority.cert_pem().to_owned(),
    )));
    for background in &config.background {
        tasks.push(Arc::clone(background).start(Arc::clone(&storage)));
    }
    tasks.push(tokio::spawn(serve(
        listener,
        tls,
        authority.client_verifier()?,
        Arc::clone(&api),
        Arc::new(config.tokens),
        shutdown_rx,
    )));
    tracing::info!(%url, kubeconfig = %kubeconfig.display(), "apiserver listening");
    Ok(Server {
        addr,
        url,
        kubeconfig,
        ca_pem: authority.cert_pem().to_owned(),
        admin,
        api,
        storage,
        shutdown: shutdown_tx,
        tasks,
    })
}

/// Listens with SO_REUSEADDR, so that a restarted server gets its port back even while
/// connections of the previous process linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from the start.
async fn ensure_default_namespaces(api: &Storage, extra: &[String]) {
    let builtin = ["default", "kube-system", "kube-public", "kube-node-lease"];
    for name in builtin.iter().copied().chain(extra.iter().map(String::as_str)) {
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ensure_object(api, namespace).await;
    }
}

/// Who a request comes from, as far as can be told without the store.
enum Caller {
    /// A client certificate, a static token, or nobody (`None`).
    Known(Option<User>),
    /// A bootstrap token, checked against its Secret.
    Bootstrap(String),
    /// A ServiceAccount token (a JWT this server signed).
    ServiceAccount(String),
    /// A client certificate that does not check out (why).
    Invalid(String),
}

/// Creates `object` (cluster-scoped or with its namespace) unless it exists.
async fn ensure_object(api: &Storage, mut object: serde_json::Value) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let Some(def) = api.registry.by_kind(group, &kind).filter(|d| d.version == version) else {
        tracing::warn!(%kind, "cannot create a default object of an unknown kind");
        return;
    };
    let name = object
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let ns = object
        .pointer("/metadata/namespace")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    if api.read(&def, ns.as_deref(), &name).await.is_ok() {
        if kind == "ClusterRole" && group == "rbac.authorization.k8s.io" {
            reconcile_default_role(api, &def, &name, &object).await;
        }
        return;
    }
    let now = clock::now_rfc3339();
    let uid = uuid::Uuid::new_v4().to_string();
    if strategy::prepare_create(&def, &mut object, &now, &uid).is_ok()
        && let Err(e) = api.store_create(&def, ns.as_deref(), object).await
        && e.code != 409
    {
        tracing::warn!(%kind, %name, error = %e.message, "cannot create a default object");
    }
}

/// Adds a default ClusterRole's missing rules to the stored one, as Kubernetes reconciles its
/// bootstrap roles at startup (so an upgrade's new permissions reach existing installations),
/// unless the stored role says `rbac.authorization.kubernetes.io/autoupdate: "false"`.
async fn reconcile_default_role(
    api: &Storage,
    def: &registry::ResourceDef,
    name: &str,
    default: &serde_json::Value,
) {
    let wanted = default["rules"].as_array().cloned().unwrap_or_default();
    let result = api
        .guaranteed_update(def, None, name, false, &mut |current| {
            let Some(current) = current else { return Ok(storage::Decision::Unchanged) };
            let autoupdate = current
                .pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate")
                .and_then(serde_json::Value::as_str);
            if autoupdate == Some("false") {
                return Ok(storage::Decision::Unchanged);
            }
            let mut rules = current["rules"].as_array().cloned().unwrap_or_default();
            let before = rules.len();
            for rule in &wanted {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
            if rules.len() == before {
                return Ok(storage::Decision::Unchanged);
            }
            let mut updated = current.clone();
            updated["rules"] = serde_json::Value::Array(rules);
            Ok(storage::Decision::Update(updated))
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(%name, error = %e.message, "cannot reconcile a default role");
    }
}

/// Publishes `kube-public/cluster-info` (the server URL and CA in a kubeconfig), which a
/// cluster registering with a bootstrap token reads and checks against the CA hash it was
/// given (Kubernetes' discovery).
async fn publish_cluster_info(api: &Storage, url: &str, ca_pem: &str) {
    use base64::Engine as _;
    let Some(def) = api.registry.get("", "v1", "configmaps") else { return };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\n",
        base64::engine::general_purpose::STANDARD.encode(ca_pem)
    );
    let result = api
        .guaranteed_update(&def, Some("kube-public"), "cluster-info", false, &mut |current| {
            let mut object = current.cloned().unwrap_or_else(|| {
                serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cluster-info", "namespace": "kube-public"}})
            });
            if object.pointer("/data/kubeconfig").and_then(serde_json::Value::as_str)
                == Some(kubeconfig.as_str())
            {
                return Ok(storage::Decision::Unchanged);
            }
            object["data"] = serde_json::json!({"kubeconfig": kubeconfig});
            Ok(match current {
                Some(_) => storage::Decision::Update(object),
                None => {
                    let now = clock::now_rfc3339();
                    let uid = uuid::Uuid::new_v4().to_string();
                    strategy::prepare_create(&def, &mut object, &now, &uid)?;
                    storage::Decision::Create(object)
                }
            })
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e.message, "cannot publish kube-public/cluster-info");
    }
}

fn authenticate(
    peer: &Result<Option<(String, Vec<String>)>, String>,
    headers: &http::HeaderMap,
    tokens: &HashMap<String, User>,
) -> Caller {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(token) = auth.strip_prefix("Bearer ")
    {
        let token = token.trim();
        if let Some(user) = tokens.get(token) {
            return Caller::Known(Some(user.clone()));
        }
        if api::bootstrap_token_parts(token).is_some() {
            return Caller::Bootstrap(token.to_owned());
        }
        if satoken::looks_like_jwt(token) {
            return Caller::ServiceAccount(token.to_owned());
        }
        return Caller::Known(None);
    }
    match peer {
        Ok(peer) => Caller::Known(
            peer.as_ref().map(|(name, groups)| User { name: name.clone(), groups: groups.clone() }),
        ),
        Err(why) => Caller::Invalid(why.clone()),
    }
}

async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    client_verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    api: Arc<Api>,
    tokens: Arc<HashMap<String, User>>,
    mut shutdown: signal::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, _) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if api.availability.is_unreachable() {
            // Unreachable: accept nothing useful (the connection is dropped unanswered).
            drop(tcp);
            continue;
        }
        let tls = tls.clone();
        let api = Arc::clone(&api);
        let tokens = Arc::clone(&tokens);
        let client_verifier = Arc::clone(&client_verifier);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let peer = pki::check_client_certificate(
                client_verifier.as_ref(),
                stream.get_ref().1.peer_certificates(),
            );
            let peer = Arc::new(peer);
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let api = Arc::clone(&api);
                let caller = authenticate(peer.as_ref(), req.headers(), &tokens);
                async move {
                    let user = match caller {
                        Caller::Known(user) => Ok(user),
                        Caller::Invalid(why) => Err(apimachinery::ApiError::new(
                            401,
                            "Unauthorized",
                            format!("Unauthorized: {why}"),
                        )),
                        Caller::ServiceAccount(token) => {
                            api.service_account_user(&token).await.map(Some)
                        }
                        Caller::Bootstrap(token) => api.bootstrap_user(&token).await.map(Some),
                    };
                    let user = match user {
                        Ok(user) => user,
                        Err(e) => {
                            return Ok::<_, std::convert::Infallible>(api::error_response(&e));
                        }
                    };
                    Ok::<_, std::convert::Infallible>(api.handle(req, user).await)
                }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // As kube-apiserver (--http2-max-streams-per-connection): one client's watches
            // share its connection; hyper's default of 200 streams would leave the 201st
            // watch waiting for another to end.
            builder.http2().max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
            // A client that never finishes its request headers is dropped.
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = shutdown.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), connection).await;
                }
            }
        });
    }
}
