//! `karmada controller-manager`: the control plane's controllers, as an API client.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    }
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Kubeconfig of the control plane.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Context in that kubeconfig (default: current).
    #[arg(long)]
    context: Option<String>,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    cluster_status_update_frequency: Duration,
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    cluster_monitor_grace_period: Duration,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    cluster_monitor_period: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = crate::cli::kube_client(&args.kubeconfig, args.context.as_deref()).await?;
    let settings = controllers::Settings {
        cluster_status_update_frequency: args.cluster_status_update_frequency,
        cluster_monitor_grace_period: args.cluster_monitor_grace_period,
        cluster_monitor_period: args.cluster_monitor_period,
        ..controllers::Settings::default()
    };
    eprintln!("karmada controller-manager running");
    tokio::select! {
        result = controllers::run(client, settings) => result,
        () = crate::cli::wait_for_signal() => Ok(()),
    }
}
