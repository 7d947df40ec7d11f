//! `karmada bench ...`: benchmarks that print numbers (never timed tests).

mod apiserver;
mod report;
mod store;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Target {
    /// The store backends: durable commits, concurrent writes, get and list latency.
    Store(store::Args),
    /// The API server over HTTPS: creates, gets, lists, watch delivery latency, memory.
    Apiserver(apiserver::Args),
}

pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Store(args) => store::run(args).await,
        Target::Apiserver(args) => apiserver::run(args).await,
    }
}
