//! `karmada descheduler`: takes replicas that stay unschedulable in a member away from it, so
//! the scheduler places them where they fit (an API client of the control plane; it reads the
//! members with the credentials of their Cluster Secrets).

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Kubeconfig of the control plane.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Context in that kubeconfig (default: current).
    #[arg(long)]
    context: Option<String>,
    /// Time between two passes over the bindings.
    #[arg(long, default_value = "2m", value_parser = crate::cli::parse_duration)]
    descheduling_interval: std::time::Duration,
    /// How long a pod must have been unschedulable in its member for its replica to move.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    unschedulable_threshold: std::time::Duration,
    #[command(flatten)]
    leader: crate::cli::LeaderElectFlags,
    #[command(flatten)]
    probes: crate::health::ProbeFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = crate::cli::kube_client(&args.kubeconfig, args.context.as_deref()).await?;
    let options = controllers::descheduler::Options {
        interval: args.descheduling_interval,
        threshold: args.unschedulable_threshold,
    };
    eprintln!("karmada descheduler running");
    let work = {
        let client = client.clone();
        move || controllers::descheduler::run(client, options)
    };
    args.probes.start().await?;
    args.leader.run(client, "karmada-descheduler", work).await
}
