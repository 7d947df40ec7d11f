//! Control-plane components as child processes of a benchmark, so their memory and CPU are
//! measured apart from the load generator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// Starts `karmada ARGS...` (this binary) with its output discarded, or its stderr
    /// appended to `$KARMADA_BENCH_LOGS/<command>.log` when that is set (to see what a
    /// component logged during a run; `RUST_LOG` is passed on).
    pub fn karmada(args: &[&str]) -> anyhow::Result<Proc> {
        let stderr = match std::env::var_os("KARMADA_BENCH_LOGS") {
            Some(dir) => {
                let name = args.first().copied().unwrap_or("karmada");
                let path = Path::new(&dir).join(format!("{name}.log"));
                Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
            }
            None => Stdio::null(),
        };
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(Proc { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss(&self) -> u64 {
        rss_bytes(self.pid())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `karmada apiserver` on a free loopback port with its data in `dir`; returns the process and
/// its admin kubeconfig once it listens.
pub fn apiserver(store: &str, dir: &Path) -> anyhow::Result<(Proc, PathBuf)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["apiserver", "--bind", "127.0.0.1:0", "--store", store, "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("karmada-apiserver listening on ") {
                let _ = tx.send(());
            }
        }
    });
    let proc = Proc { child };
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| anyhow::anyhow!("the apiserver did not start"))?;
    Ok((proc, dir.join("karmada-apiserver.config")))
}

/// A `karmada apiserver` on the memory store in `dir/control-plane`: the process, its admin
/// kubeconfig's path (for the components' `--kubeconfig`) and a client.
pub async fn memory_control_plane(dir: &Path) -> anyhow::Result<(Proc, String, kube::Client)> {
    let (apiserver, kubeconfig) = apiserver("memory", &dir.join("control-plane"))?;
    let client = crate::cli::kube_client(&kubeconfig, None).await?;
    Ok((apiserver, kubeconfig.to_str().unwrap_or_default().to_owned(), client))
}

/// Resident memory of a process, in bytes (0 if it is gone).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// User + system CPU time of a process, in seconds (Linux reports clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Resolves a benchmark's `--store`: `etcd` alone starts a one-member etcd on loopback in
/// `dir` (returned, so it lives as long as the caller keeps it) and becomes `etcd:URL`; any
/// other value is passed to `karmada apiserver --store` as it is.
pub async fn store_spec(
    store: &str,
    dir: &Path,
) -> anyhow::Result<(String, Option<store_etcd::server::EtcdServer>)> {
    if store != "etcd" {
        return Ok((store.to_owned(), None));
    }
    let mut etcd = store_etcd::server::EtcdServer::start_single(&dir.join("etcd"))?;
    etcd.wait_listening(Duration::from_secs(30))?;
    let options = store_etcd::EtcdOptions::new(&etcd.client_url);
    store_etcd::server::wait_ready(&options, Duration::from_secs(30)).await?;
    Ok((format!("etcd:{}", etcd.client_url), Some(etcd)))
}

/// `n` simulated members `member1`..`memberN` on loopback, their data in `dir/members` and
/// their contexts in `dir/members.config`.
pub fn member_configs(dir: &Path, n: usize, sim: member::SimConfig) -> Vec<member::MemberConfig> {
    (1..=n)
        .map(|i| member::MemberConfig {
            name: format!("member{i}"),
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.join("members"),
            kubeconfig: dir.join("members.config"),
            kubernetes_version: "v1.32.0".into(),
            sim: sim.clone(),
        })
        .collect()
}
