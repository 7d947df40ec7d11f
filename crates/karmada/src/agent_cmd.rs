//! `karmada agent`: the pull-mode agent beside one member cluster (see `controllers::agent`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;

use crate::cli::parse_duration;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Kubeconfig of the Karmada control plane (the agent's own, restricted credentials).
    #[arg(long)]
    karmada_kubeconfig: PathBuf,
    /// Context in that kubeconfig (default: current).
    #[arg(long)]
    karmada_context: Option<String>,
    /// Kubeconfig of the member cluster the agent serves.
    #[arg(long)]
    cluster_kubeconfig: PathBuf,
    /// Context in the member kubeconfig (default: current).
    #[arg(long)]
    cluster_context: Option<String>,
    /// The cluster's name in Karmada.
    #[arg(long)]
    cluster_name: String,
    #[arg(long, default_value = "")]
    cluster_provider: String,
    #[arg(long, default_value = "")]
    cluster_region: String,
    /// Comma-separated zones.
    #[arg(long, default_value = "")]
    cluster_zones: String,
    /// How often the cluster's status is reported and its Lease renewed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    cluster_status_update_frequency: Duration,
    /// The duration recorded in the agent's Lease.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    cluster_lease_duration: Duration,
    /// The agent's controllers to run, by upstream's names (`*`, `foo`, `-foo`; see
    /// `karmada controller-manager --help`).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// The member's API server URL as the control plane reaches it (default: the member
    /// kubeconfig's server).
    #[arg(long)]
    cluster_api_endpoint: Option<String>,
    /// The member credentials reported to the control plane: `KubeCredentials`,
    /// `KubeImpersonator` (the cluster proxy's), or `None`.
    #[arg(long, value_delimiter = ',', default_value = "KubeCredentials,KubeImpersonator")]
    report_secrets: Vec<String>,
    /// Feature gates, as upstream's: `Name=true|false` pairs (`AllAlpha=true`, `AllBeta=true` set
    /// every alpha/beta gate not named); upstream's defaults otherwise.
    #[arg(long, default_value = "", value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let selection = controllers::registry::Selection::parse(
        controllers::registry::AGENT_CONTROLLERS,
        &args.controllers,
    )
    .map_err(anyhow::Error::msg)?;
    let control =
        crate::cli::kube_client(&args.karmada_kubeconfig, args.karmada_context.as_deref()).await?;
    let member =
        crate::cli::kube_client(&args.cluster_kubeconfig, args.cluster_context.as_deref()).await?;
    let mut config = controllers::agent::AgentConfig::new(&args.cluster_name);
    config.provider = args.cluster_provider;
    config.region = args.cluster_region;
    config.zones = args
        .cluster_zones
        .split(',')
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect();
    config.report_interval = args.cluster_status_update_frequency;
    config.lease_duration = args.cluster_lease_duration;
    // The multi-cluster service collector runs behind its gate, as upstream's.
    config.controllers = selection.gated(&args.feature_gates);
    for secret in &args.report_secrets {
        if !matches!(secret.as_str(), "KubeCredentials" | "KubeImpersonator" | "None") {
            anyhow::bail!(
                "--report-secrets: unknown value {secret:?} (KubeCredentials, KubeImpersonator or None)"
            );
        }
    }
    config.report_credentials = args.report_secrets.iter().any(|s| s == "KubeCredentials");
    config.report_impersonator = args.report_secrets.iter().any(|s| s == "KubeImpersonator");
    config.api_endpoint = match args.cluster_api_endpoint {
        Some(endpoint) => endpoint,
        None => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&args.cluster_kubeconfig)?;
            let options = kube::config::KubeConfigOptions {
                context: args.cluster_context.clone(),
                ..Default::default()
            };
            let member = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            member.cluster_url.to_string().trim_end_matches('/').to_owned()
        }
    };
    tokio::select! {
        result = controllers::agent::run(control, member, config) => result,
        () = crate::cli::wait_for_signal() => Ok(()),
    }
}
