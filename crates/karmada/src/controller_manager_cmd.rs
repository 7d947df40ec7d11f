//! `karmada controller-manager`: the control plane's controllers, as an API client.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;

use crate::cli::{LeaderElectFlags, parse_duration};

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
    /// At most this many bindings are evicted from tainted clusters per second, so that
    /// several clusters failing at once cannot stampede the healthy ones.
    #[arg(long, default_value_t = 20)]
    evictions_per_second: u32,
    /// Controllers to run, by upstream's names: `*` every controller on by default, `foo` turns
    /// `foo` on, `-foo` turns it off (the first mention decides). Names karmada-rs does not
    /// implement yet are accepted and logged.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Evict workloads from clusters with NoExecute taints they do not tolerate (part of the
    /// `cluster` controller).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_taint_manager: bool,
    /// How often each FederatedHPA is evaluated.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    horizontal_pod_autoscaler_sync_period: Duration,
    /// How often FederatedResourceQuotas' overall usage is recounted from the bindings
    /// (between recounts the API server accounts each binding write).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    federated_resource_quota_sync_period: Duration,
    /// Feature gates, as upstream's: `Name=true|false` pairs (`AllAlpha=true`, `AllBeta=true` set
    /// every alpha/beta gate not named); upstream's defaults otherwise.
    #[arg(long, default_value = "", value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
    #[command(flatten)]
    leader: LeaderElectFlags,
    #[command(flatten)]
    probes: crate::health::ProbeFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let selection = controllers::registry::Selection::parse(
        controllers::registry::CONTROLLERS,
        &args.controllers,
    )
    .map_err(anyhow::Error::msg)?;
    let client = crate::cli::kube_client(&args.kubeconfig, args.context.as_deref()).await?;
    let settings = controllers::Settings {
        cluster_status_update_frequency: args.cluster_status_update_frequency,
        cluster_monitor_grace_period: args.cluster_monitor_grace_period,
        cluster_monitor_period: args.cluster_monitor_period,
        evictions_per_second: args.evictions_per_second,
        controllers: selection,
        enable_taint_manager: args.enable_taint_manager,
        hpa_sync_period: args.horizontal_pod_autoscaler_sync_period,
        quota_sync_period: args.federated_resource_quota_sync_period,
        features: args.feature_gates,
        ..controllers::Settings::default()
    };
    eprintln!("karmada controller-manager running");
    let work = {
        let client = client.clone();
        move || controllers::run(client, settings)
    };
    args.probes.start().await?;
    args.leader.run(client, "karmada-controller-manager", work).await
}
