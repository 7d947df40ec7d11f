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
    /// every alpha/beta gate not named); upstream's defaults otherwise. (The scheduler's own gates —
    /// PriorityBasedScheduling's queue order, WorkloadAffinity — are accepted; karmada-rs does
    /// not have those features yet.)
    #[arg(long, default_value = "", value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
    #[command(flatten)]
    leader: crate::cli::LeaderElectFlags,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let plugins =
        scheduler::Plugins::parse(&args.plugins).map_err(|e| anyhow::anyhow!("--plugins: {e}"))?;
    let client = crate::cli::kube_client(&args.kubeconfig, args.context.as_deref()).await?;
    tracing::info!(gates = %args.feature_gates.changed(), "feature gates set");
    eprintln!("karmada scheduler running");
    let work = {
        let client = client.clone();
        move || controllers::scheduling::run(client, plugins)
    };
    args.leader.run(client, "karmada-scheduler", work).await
}
