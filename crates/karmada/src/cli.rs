//! Command-line surface of the `karmada` binary.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{apiserver_cmd, bench, controller_manager_cmd, member_cmd, scheduler_cmd, up_cmd};

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
    /// Run simulated member clusters (an API server plus simulated nodes and workloads).
    Member(Box<member_cmd::Args>),
    /// Inject or clear faults in a running simulated member.
    Fault(member_cmd::FaultArgs),
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
            Command::Fault(args) => member_cmd::fault(args),
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
    Ok(kube::Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?)?)
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
