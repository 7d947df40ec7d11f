//! `karmada apiserver`: the control plane's API server as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args as ClapArgs;
use store::Store;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Feature gates of upstream's webhook, which this API server plays:
    /// FederatedQuotaEnforcement (`Name=true|false`, `AllAlpha=true`, `AllBeta=true`).
    #[arg(long, default_value = "", value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
    /// Directory for certificates, the kubeconfig and (with redb) the data.
    #[arg(long, default_value = "karmada-data")]
    data_dir: PathBuf,
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5443")]
    bind: SocketAddr,
    /// `redb` (durable, in the data dir), `redb:PATH`, `memory`, or
    /// `etcd:URL[,URL...]` (e.g. `etcd:https://10.0.0.1:2379,https://10.0.0.2:2379`).
    #[arg(long, default_value = "redb")]
    store: String,
    #[command(flatten)]
    etcd: EtcdFlags,
    /// At most this many requests served at once (watches excepted); more get 429 with
    /// Retry-After. 0: unbounded.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// At most this many open watches per user; more get 429. 0: unbounded.
    #[arg(long, default_value_t = 5000)]
    max_watches_per_user: usize,
    /// Write a JSON line per mutating request here.
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// Encryption at rest of Secrets: `aesgcm` (AES-256-GCM with the key of
    /// --encryption-key-file) or `none`.
    #[arg(long, value_enum, default_value_t = Encryption::Aesgcm)]
    encryption: Encryption,
    /// The AES-256 key (32 bytes, raw or base64) Secrets are sealed with, generated (mode 0600)
    /// if missing (default: PKI_DIR/encryption.key); values stored unencrypted are sealed
    /// on their next write.
    #[arg(long)]
    encryption_key_file: Option<PathBuf>,
    /// Rotate the audit log past this many megabytes (the previous file is kept as .1).
    #[arg(long, default_value_t = 100)]
    audit_log_maxsize: u64,
    /// Serve unauthenticated requests as system:anonymous where RBAC allows (health and
    /// version, as Kubernetes); false: every request needs credentials.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Keep Events this long after they were last seen (kube-apiserver's flag).
    #[arg(long, default_value = "1h0m0s", value_parser = crate::cli::parse_duration)]
    event_ttl: std::time::Duration,
    /// Where to write the admin kubeconfig (default: DATA_DIR/karmada-apiserver.config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The CA (`ca.crt`, `ca.key`), admin certificate (`admin.crt`, `admin.key`) and service
    /// account key (`sa.key`); default DATA_DIR/pki, created on first start. When they are all
    /// there it is only read: a Secret mounted read-only, shared by several API servers
    /// (`karmadactl init` makes one).
    #[arg(long)]
    pki_dir: Option<PathBuf>,
    /// More names (DNS or IP) for the serving certificate, which always has localhost,
    /// 127.0.0.1 and the bind address: a Service's DNS names, a node or load balancer address
    /// (as k3s's flag). Comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encryption {
    Aesgcm,
    None,
}

/// How to talk to etcd when `--store etcd:...` (kube-apiserver's flag names).
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct EtcdFlags {
    /// CA bundle that signed etcd's serving certificates.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (with --etcd-keyfile).
    #[arg(long, requires = "etcd_keyfile")]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key for etcd (with --etcd-certfile).
    #[arg(long, requires = "etcd_certfile")]
    pub etcd_keyfile: Option<PathBuf>,
    /// Prefix of every key in etcd, so that several control planes can share one etcd.
    #[arg(long, default_value = "")]
    pub etcd_prefix: String,
    /// Compact etcd history this often, in seconds (0: never; another process does it).
    #[arg(long, default_value_t = 300)]
    pub etcd_compaction_interval: u64,
}

impl EtcdFlags {
    pub fn options(&self, endpoints: &str) -> anyhow::Result<store_etcd::EtcdOptions> {
        let mut options = store_etcd::EtcdOptions::new(endpoints);
        anyhow::ensure!(!options.endpoints.is_empty(), "--store etcd: needs at least one URL");
        options.prefix = self.etcd_prefix.clone().into_bytes();
        options.compaction_interval = (self.etcd_compaction_interval > 0)
            .then(|| std::time::Duration::from_secs(self.etcd_compaction_interval));
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
        };
        if self.etcd_cafile.is_some() || self.etcd_certfile.is_some() {
            options.tls = Some(store_etcd::EtcdTls {
                ca_pem: self.etcd_cafile.as_ref().map(read).transpose()?,
                identity: match (&self.etcd_certfile, &self.etcd_keyfile) {
                    (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                    _ => None,
                },
                domain: None,
            });
        }
        Ok(options)
    }
}

/// Opens the store a `--store` flag names.
pub async fn open_store(
    spec: &str,
    data_dir: &std::path::Path,
    etcd: &EtcdFlags,
) -> anyhow::Result<Arc<dyn Store>> {
    match spec.split_once(':').map_or((spec, None), |(k, v)| (k, Some(v))) {
        ("memory", None) => Ok(Arc::new(store_memory::MemoryStore::default())),
        ("etcd", Some(endpoints)) => {
            let options = etcd.options(endpoints)?;
            let store = store_etcd::EtcdStore::connect(options).await.map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot use etcd at {endpoints}"))
            })?;
            Ok(Arc::new(store))
        }
        ("redb", path) => {
            apiserver::files::private_dir(data_dir)?;
            let path = path.map_or_else(|| data_dir.join("store.redb"), PathBuf::from);
            let store = store_redb::RedbStore::open(&path, store_redb::RedbOptions::default())
                .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", path.display()))?;
            // The store holds every object, Secrets included: the owner's only.
            apiserver::files::make_private(&path)?;
            Ok(Arc::new(store))
        }
        _ => anyhow::bail!(
            "unknown --store {spec:?}: use redb, redb:PATH, memory or etcd:URL[,URL...]"
        ),
    }
}

/// Wraps `store` so that Secrets are sealed with the key in `path`.
pub fn encrypt_secrets(
    store: Arc<dyn Store>,
    path: &std::path::Path,
) -> anyhow::Result<Arc<dyn Store>> {
    apiserver::files::check_private(path)?;
    let key = apiserver::encryption::read_key_file(path)
        .map_err(|e| anyhow::anyhow!("cannot read the encryption key {}: {e}", path.display()))?;
    Ok(Arc::new(apiserver::encryption::EncryptedSecrets::new(store, key)?))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Keys and credentials live in the data dir: the owner's only.
    apiserver::files::private_dir(&args.data_dir)?;
    let pki_dir = args.pki_dir.clone().unwrap_or_else(|| args.data_dir.join("pki"));
    let mut store = open_store(&args.store, &args.data_dir, &args.etcd).await?;
    match args.encryption {
        Encryption::Aesgcm => {
            let path =
                args.encryption_key_file.clone().unwrap_or_else(|| pki_dir.join("encryption.key"));
            apiserver::encryption::ensure_key_file(&path)?;
            store = encrypt_secrets(store, &path)?;
        }
        Encryption::None => {
            anyhow::ensure!(
                args.encryption_key_file.is_none(),
                "--encryption-key-file needs --encryption=aesgcm"
            );
        }
    }
    let mut config = apiserver::Config::new(&args.data_dir, args.bind, store);
    config.kubeconfig = args.kubeconfig;
    config.pki_dir = args.pki_dir;
    config.extra_sans = args.tls_san;
    config.max_requests_inflight = args.max_requests_inflight;
    config.max_watches_per_user = args.max_watches_per_user;
    config.event_ttl = args.event_ttl;
    config.anonymous_auth = args.anonymous_auth;
    config.audit_log = args.audit_log_path;
    config.audit_log_max_bytes = args.audit_log_maxsize << 20;
    control_plane::install(&mut config, &args.feature_gates);
    let server = apiserver::start(config).await?;
    eprintln!("karmada-apiserver listening on {}", server.url);
    eprintln!("kubeconfig: {}", server.kubeconfig.display());
    crate::cli::wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}
