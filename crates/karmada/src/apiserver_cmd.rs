//! `karmada apiserver`: the control plane's API server as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args as ClapArgs;
use store::Store;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Directory for certificates, the kubeconfig and (with redb) the data.
    #[arg(long, default_value = "karmada-data")]
    data_dir: PathBuf,
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5443")]
    bind: SocketAddr,
    /// `redb` (durable, in the data dir), `redb:PATH`, or `memory`.
    #[arg(long, default_value = "redb")]
    store: String,
    /// Where to write the admin kubeconfig (default: DATA_DIR/karmada-apiserver.config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// Opens the store a `--store` flag names.
pub fn open_store(spec: &str, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
    match spec.split_once(':').map_or((spec, None), |(k, v)| (k, Some(v))) {
        ("memory", None) => Ok(Arc::new(store_memory::MemoryStore::default())),
        ("redb", path) => {
            std::fs::create_dir_all(data_dir)?;
            let path = path.map_or_else(|| data_dir.join("store.redb"), PathBuf::from);
            let store = store_redb::RedbStore::open(&path, store_redb::RedbOptions::default())
                .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", path.display()))?;
            Ok(Arc::new(store))
        }
        _ => anyhow::bail!("unknown --store {spec:?}: use redb, redb:PATH or memory"),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let store = open_store(&args.store, &args.data_dir)?;
    let mut config = apiserver::Config::new(&args.data_dir, args.bind, store);
    config.kubeconfig = args.kubeconfig;
    crate::karmada_apis::install(&mut config);
    let server = apiserver::start(config).await?;
    eprintln!("karmada-apiserver listening on {}", server.url);
    eprintln!("kubeconfig: {}", server.kubeconfig.display());
    crate::cli::wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}
