//! `karmada scheduler`: places bindings on clusters (an API client of the control plane).

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
    /// Enabled plugins: `*` (all), `*,-Name` to disable one.
    #[arg(long, default_value = "*")]
    plugins: String,
    /// Feature gates, as upstream's: `Name=true|false` pairs (`AllAlpha=true`, `AllBeta=true` set
    /// every alpha/beta gate not named); upstream's defaults otherwise. ResourceQuotaEstimate
    /// lets the estimator bound placements by the members' ResourceQuotas; PriorityBasedScheduling
    /// orders the queue by `schedulePriority` and lets a binding short of room preempt
    /// lower-priority placements.
    #[arg(long, default_value = "", value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
    /// Estimate what fits in each member from its nodes (free resources per node, node
    /// selectors, affinity, taints) and the ResourceQuotas of the workload's namespace, as
    /// upstream's karmada-scheduler-estimator does (here in process, watching each member with
    /// its own credentials), besides the cluster's resource summary.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_scheduler_estimator: bool,
    #[command(flatten)]
    leader: crate::cli::LeaderElectFlags,
    #[command(flatten)]
    probes: crate::health::ProbeFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let plugins =
        scheduler::Plugins::parse(&args.plugins).map_err(|e| anyhow::anyhow!("--plugins: {e}"))?;
    let client = crate::cli::kube_client(&args.kubeconfig, args.context.as_deref()).await?;
    tracing::info!(gates = %args.feature_gates.changed(), "feature gates set");
    eprintln!("karmada scheduler running");
    let options = controllers::scheduling::Options {
        plugins,
        estimator: args.enable_scheduler_estimator,
        features: args.feature_gates.clone(),
    };
    let work = {
        let client = client.clone();
        move || controllers::scheduling::run_with(client, options.clone())
    };
    args.probes.start().await?;
    args.leader.run(client, "karmada-scheduler", work).await
}
