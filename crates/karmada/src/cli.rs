//! Command-line surface of the `karmada` binary.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{
    agent_cmd, apiserver_cmd, bench, controller_manager_cmd, dashboard_cmd, descheduler_cmd,
    init_secrets_cmd, karmada_apis, member_cmd, scheduler_cmd, up_cmd,
};

#[derive(Parser, Debug)]
#[command(
    name = "karmada",
    version,
    about = "karmada-rs: a multi-cluster Kubernetes control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local Karmada: control plane, controllers, scheduler and simulated members.
    Up(up_cmd::Args),
    /// Stop a local Karmada started with `karmada up --detach`.
    Down(up_cmd::DownArgs),
    /// Serve the control plane's Kubernetes-compatible API.
    Apiserver(apiserver_cmd::Args),
    /// Run the control plane's controllers (cluster, cluster-status, ...).
    ControllerManager(controller_manager_cmd::Args),
    /// Run the scheduler (fills ResourceBinding spec.clusters from the placement).
    Scheduler(scheduler_cmd::Args),
    /// Run the descheduler (moves replicas that stay unschedulable in a member elsewhere).
    Descheduler(descheduler_cmd::Args),
    /// Run simulated member clusters (an API server plus simulated nodes and workloads).
    Member(Box<member_cmd::Args>),
    /// The pull-mode agent of one member cluster: registers it, reports its status and applies
    /// its Works from inside the member's network.
    Agent(agent_cmd::Args),
    /// Inject or clear faults in a running simulated member.
    Fault(member_cmd::FaultArgs),
    /// Serve the web dashboard of a control plane (users sign in with their own tokens).
    Dashboard(dashboard_cmd::Args),
    /// Generate the control plane's certificates and kubeconfig into Secrets of the host
    /// cluster unless they exist (the Job of `karmadactl init`'s manifests).
    InitSecrets(init_secrets_cmd::Args),
    /// Print the CustomResourceDefinitions of Karmada's kinds (generated from the types), as
    /// YAML, for installing Karmada's APIs into another API server.
    Crds(karmada_apis::CrdsArgs),
    /// Measure a component and print a table of numbers.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,kube_client::client::builder=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Bench { target } => bench::run(target).await,
            Command::Apiserver(args) => apiserver_cmd::run(args).await,
            Command::Up(args) => up_cmd::run(args).await,
            Command::Down(args) => up_cmd::down(args).await,
            Command::Member(args) => member_cmd::run(*args).await,
            Command::ControllerManager(args) => controller_manager_cmd::run(args).await,
            Command::Scheduler(args) => scheduler_cmd::run(args).await,
            Command::Descheduler(args) => descheduler_cmd::run(args).await,
            Command::Fault(args) => member_cmd::fault(args),
            Command::Agent(args) => agent_cmd::run(args).await,
            Command::InitSecrets(args) => init_secrets_cmd::run(args).await,
            Command::Dashboard(args) => dashboard_cmd::run(args).await,
            Command::Crds(args) => karmada_apis::print_crds(&args),
        }
    })
}

/// A kube client from a kubeconfig file (and context, or its current one).
pub async fn kube_client(
    path: &std::path::Path,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    // HTTP/2: the controllers' watches and concurrent requests share one connection.
    member_client::http2_client(config, std::time::Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("building a client: {e}"))
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses `10` (seconds) or a Go duration as Kubernetes' flags take them (`500ms`, `10s`,
/// `2m`, `1h0m0s`).
/// `--feature-gates`, as every Karmada component takes it (`Name=true,Other=false`,
/// `AllAlpha=true`, `AllBeta=true`).
pub fn parse_feature_gates(s: &str) -> Result<karmada_api::features::FeatureGates, String> {
    karmada_api::features::FeatureGates::parse(s)
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    if let Ok(seconds) = s.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    match kube_protobuf::duration::parse(s) {
        Some(nanos) if nanos >= 0 => Ok(Duration::from_nanos(nanos as u64)),
        _ => Err(format!("invalid duration {s:?} (e.g. 500ms, 10s, 2m, 1h0m0s)")),
    }
}

/// Leader election for a component that may run as several replicas (upstream's flag names).
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectFlags {
    /// Compete for a Lease so that of several replicas exactly one acts (`--leader-elect` or
    /// `--leader-elect=true`). Off by default: a single replica starts acting at once.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a standby waits, after the leader's last renewal, before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,
    /// How long the leader keeps trying to renew before it stops acting.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: std::time::Duration,
    /// How often candidates try to acquire, and the leader renews.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: std::time::Duration,
    /// Namespace of the Lease.
    #[arg(long, default_value = "karmada-system")]
    pub leader_elect_resource_namespace: String,
}

impl LeaderElectFlags {
    /// Runs `work` until a signal — as the leader of `lease` when leader election is on.
    pub async fn run<W>(
        &self,
        client: kube::Client,
        lease: &str,
        work: impl FnOnce() -> W,
    ) -> anyhow::Result<()>
    where
        W: std::future::Future<Output = anyhow::Result<()>>,
    {
        if !self.leader_elect {
            return tokio::select! {
                result = work() => result,
                () = wait_for_signal() => Ok(()),
            };
        }
        let mut config = controllers::leader::LeaderElection::new(lease);
        config.namespace = self.leader_elect_resource_namespace.clone();
        config.lease_duration = self.leader_elect_lease_duration;
        config.renew_deadline = self.leader_elect_renew_deadline;
        config.retry_period = self.leader_elect_retry_period;
        controllers::leader::run(client, config, work, wait_for_signal()).await
    }
}
