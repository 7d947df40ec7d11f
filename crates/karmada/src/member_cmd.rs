//! `karmada member` (simulated member clusters) and `karmada fault` (fault injection).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use member::{Faults, MemberConfig, SimConfig};

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The member's name (also its kubeconfig context). Omit with --count.
    name: Option<String>,
    /// Host this many members in one process, named PREFIX1..PREFIXN.
    #[arg(long)]
    count: Option<usize>,
    #[arg(long, default_value = "member")]
    name_prefix: String,
    /// Kubeconfig file to merge the member contexts into (default ~/.kube/members.config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Address for the member's API (port 0: a free port per member).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Where certificates and fault files live (default ~/.karmada/members).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// CPU cores per node.
    #[arg(long, default_value = "8")]
    node_cpu: String,
    /// Memory per node.
    #[arg(long, default_value = "32Gi")]
    node_memory: String,
    /// Pods per node.
    #[arg(long, default_value_t = 110)]
    node_pods: i128,
    #[arg(long, default_value = "")]
    provider: String,
    #[arg(long, default_value = "")]
    region: String,
    /// Comma-separated zones (nodes are spread over them).
    #[arg(long, value_delimiter = ',')]
    zones: Vec<String>,
    #[arg(long, default_value = "v1.32.0")]
    kubernetes_version: String,
    /// How long a bound pod takes to become Running and Ready.
    #[arg(long, default_value_t = 200)]
    start_delay_ms: u64,
    /// How long Job pods run before they succeed.
    #[arg(long, default_value_t = 2000)]
    job_duration_ms: u64,
    /// Run what a fresh kind cluster runs (CoreDNS, kube-proxy, the control plane's static
    /// pods, the `kubernetes` Service); false: a bare cluster with all capacity free.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    system_components: bool,
    /// Pods get IPs from 10.N.0.0/16 (with --count: N for the first member, N+1 for the
    /// next...). Default: 10 and up, by position; give members started apart different ones.
    #[arg(long, value_name = "N")]
    pod_subnet: Option<u8>,
}

impl Args {
    pub fn configs(&self) -> anyhow::Result<Vec<MemberConfig>> {
        let parse = |what: &str, s: &str| {
            apimachinery::quantity::parse_milli(s)
                .ok_or_else(|| anyhow::anyhow!("invalid {what} quantity {s:?}"))
        };
        let sim = SimConfig {
            nodes: self.nodes,
            node_cpu_milli: parse("--node-cpu", &self.node_cpu)?,
            node_memory: parse("--node-memory", &self.node_memory)? / 1000,
            node_pods: self.node_pods,
            provider: self.provider.clone(),
            region: self.region.clone(),
            zones: self.zones.clone(),
            start_delay: Duration::from_millis(self.start_delay_ms),
            job_duration: Duration::from_millis(self.job_duration_ms),
            system_components: self.system_components,
            pod_subnet: None,
        };
        let names: Vec<String> = match (&self.name, self.count) {
            (Some(name), None) => vec![name.clone()],
            (None, Some(n)) => (1..=n).map(|i| format!("{}{i}", self.name_prefix)).collect(),
            (Some(_), Some(_)) => anyhow::bail!("give either a NAME or --count, not both"),
            (None, None) => anyhow::bail!("give the member's NAME (or --count N for N members)"),
        };
        let data_dir = self.data_dir.clone().unwrap_or_else(|| home().join(".karmada/members"));
        let kubeconfig =
            self.kubeconfig.clone().unwrap_or_else(|| home().join(".kube/members.config"));
        Ok(names
            .into_iter()
            .enumerate()
            .map(|(i, name)| MemberConfig {
                name,
                bind: self.bind,
                data_dir: data_dir.clone(),
                kubeconfig: kubeconfig.clone(),
                kubernetes_version: self.kubernetes_version.clone(),
                sim: SimConfig {
                    pod_subnet: self.pod_subnet.map(|n| n.wrapping_add(i as u8)),
                    ..sim.clone()
                },
            })
            .collect())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let configs = args.configs()?;
    let kubeconfig = configs[0].kubeconfig.clone();
    let members = member::start_many(configs).await?;
    for m in &members {
        eprintln!(
            "member {} listening on {} (context {} in {})",
            m.name,
            m.url(),
            m.name,
            kubeconfig.display()
        );
    }
    eprintln!("{} simulated member(s) running; Ctrl-C to stop", members.len());
    crate::cli::wait_for_signal().await;
    for m in members {
        m.shutdown().await;
    }
    Ok(())
}

#[derive(ClapArgs, Debug)]
pub struct FaultArgs {
    /// The simulated member to change.
    name: String,
    /// The members' data dir (default ~/.karmada/members).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop (true) or resume (false) answering API requests.
    #[arg(long)]
    unreachable: Option<bool>,
    /// Fail (true) or pass (false) /readyz and /healthz.
    #[arg(long)]
    unhealthy: Option<bool>,
    /// Report this node NotReady (repeatable).
    #[arg(long = "node-not-ready")]
    node_not_ready: Vec<String>,
    /// Make the pods of NAMESPACE/WORKLOAD crash-loop (repeatable).
    #[arg(long = "fail-workload")]
    fail_workload: Vec<String>,
    /// Take IMAGE out of the member's registry (repeatable): a reference, a repository (every
    /// tag) or a pattern with `*` (`example.com/*`). Pods that need it stay Pending in
    /// ImagePullBackOff until it is back (`--clear`).
    #[arg(long = "missing-image")]
    missing_image: Vec<String>,
    /// CPU load of the member's containers as a factor of what they request (1: as
    /// requested; without a load they idle at 1m); a pod's `simulation.karmada-rs.io/load`
    /// annotation sets its own.
    #[arg(long)]
    load: Option<f64>,
    /// Clear every fault first.
    #[arg(long)]
    clear: bool,
}

pub fn fault(args: FaultArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| home().join(".karmada/members"));
    let path = Faults::path(&data_dir, &args.name);
    let mut faults = if args.clear { Faults::default() } else { Faults::load(&path) };
    if let Some(v) = args.unreachable {
        faults.unreachable = v;
    }
    if let Some(v) = args.unhealthy {
        faults.unhealthy = v;
    }
    faults.not_ready_nodes.extend(args.node_not_ready);
    faults.failing_workloads.extend(args.fail_workload);
    faults.missing_images.extend(args.missing_image);
    if let Some(load) = args.load {
        anyhow::ensure!(load.is_finite() && load >= 0.0, "--load must be a number >= 0");
        faults.load = Some(load);
    }
    faults.save(&data_dir, &args.name)?;
    eprintln!("faults of {}: {}", args.name, serde_json::to_string(&faults)?);
    Ok(())
}
