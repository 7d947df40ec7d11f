//! `karmada bench ...`: benchmarks that print numbers (never timed tests).

mod report;
mod store;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Target {
    /// The store backends: durable commits, concurrent writes, get and list latency.
    Store(store::Args),
}

pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Store(args) => store::run(args).await,
    }
}
