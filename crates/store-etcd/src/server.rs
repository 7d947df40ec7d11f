//! Local etcd processes on loopback: one node for tests, or the members of a small cluster for
//! `karmada up --ha`. The `etcd` binary comes from `$ETCD_BIN` or `PATH` (Debian's
//! `etcd-server` package).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// etcd's request limit, raised so that a store value of [`store::MAX_VALUE_BYTES`] plus its
/// key and the request framing fits (etcd's default is exactly 1.5 MiB, too tight).
pub const MAX_REQUEST_BYTES: usize = 2 << 20;

/// Serving TLS for an etcd member: its certificate and key, and the CA that client
/// certificates must chain to (`--client-cert-auth`).
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
}

/// One member of a cluster to start.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub name: String,
    pub client: SocketAddr,
    pub peer: SocketAddr,
}

impl MemberSpec {
    /// A member on free loopback ports.
    pub fn on_free_ports(name: &str) -> std::io::Result<MemberSpec> {
        Ok(MemberSpec { name: name.to_string(), client: free_port()?, peer: free_port()? })
    }
}

/// A running etcd process; killed when dropped.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    spec: MemberSpec,
    all: Vec<MemberSpec>,
    dir: PathBuf,
    tls: Option<ServerTls>,
    pub name: String,
    /// `http(s)://127.0.0.1:PORT`.
    pub client_url: String,
    pub data_dir: PathBuf,
}

/// Where the etcd binary is, if anywhere.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("etcd")).find(|p| p.is_file())
    })
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl EtcdServer {
    /// Starts a one-member cluster with its data in `dir` on free loopback ports.
    pub fn start_single(dir: &Path) -> anyhow::Result<EtcdServer> {
        let spec = MemberSpec::on_free_ports("default")?;
        EtcdServer::start_member(dir, &spec, std::slice::from_ref(&spec), None)
    }

    /// Starts one member of the cluster `all` (which includes `spec`), with data in
    /// `dir/<name>` (reused if present: a restarted member rejoins) and its log beside it.
    pub fn start_member(
        dir: &Path,
        spec: &MemberSpec,
        all: &[MemberSpec],
        tls: Option<&ServerTls>,
    ) -> anyhow::Result<EtcdServer> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut server = EtcdServer {
            child: None,
            spec: spec.clone(),
            all: all.to_vec(),
            dir: dir.to_path_buf(),
            tls: tls.cloned(),
            name: spec.name.clone(),
            client_url: format!("{scheme}://{}", spec.client),
            data_dir: dir.join(&spec.name),
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts the process again after [`EtcdServer::kill`], on the same ports and data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let (dir, spec, all, tls) = (&self.dir, &self.spec, &self.all, self.tls.as_ref());
        let binary = binary().ok_or_else(|| {
            anyhow::anyhow!(
                "etcd is not installed: install Debian's etcd-server package or set ETCD_BIN"
            )
        })?;
        let data_dir = &self.data_dir;
        let existing = data_dir.join("member").exists();
        std::fs::create_dir_all(dir)?;
        let client_url = &self.client_url;
        let peer_url = format!("http://{}", spec.peer);
        let cluster = all
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", spec.name)))?;
        let mut command = Command::new(&binary);
        command
            .arg(format!("--name={}", spec.name))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={cluster}"))
            .arg(format!("--initial-cluster-state={}", if existing { "existing" } else { "new" }))
            .arg("--initial-cluster-token=karmada-rs")
            .arg(format!("--max-request-bytes={MAX_REQUEST_BYTES}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(tls) = tls {
            command
                .arg(format!("--cert-file={}", tls.cert_file.display()))
                .arg(format!("--key-file={}", tls.key_file.display()))
                .arg(format!("--trusted-ca-file={}", tls.client_ca_file.display()))
                .arg("--client-cert-auth");
        }
        let child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the member accepts connections on its client port (not that the cluster
    /// has a leader: see [`wait_ready`]). Fails early if the process exits.
    pub fn wait_listening(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let address = self
            .client_url
            .rsplit_once("://")
            .map_or(self.client_url.as_str(), |(_, a)| a)
            .to_string();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "etcd {} exited with {status}; see its log beside {}",
                    self.name,
                    self.data_dir.display()
                );
            }
            if std::net::TcpStream::connect(&address).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("etcd {} did not listen on {address} within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (like a crash: no graceful shutdown) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the cluster behind `endpoints` serves a linearizable read (it has a leader and
/// a quorum).
pub async fn wait_ready(options: &crate::EtcdOptions, timeout: Duration) -> anyhow::Result<()> {
    use store::Store;
    let deadline = Instant::now() + timeout;
    let mut options = options.clone();
    options.compaction_interval = None;
    options.connect_timeout = Duration::from_secs(2);
    loop {
        let attempt = async {
            let store = crate::EtcdStore::connect(options.clone()).await?;
            store.current_revision().await
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                anyhow::bail!(
                    "etcd at {} not ready within {timeout:?}: {e}",
                    options.endpoints.join(",")
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
