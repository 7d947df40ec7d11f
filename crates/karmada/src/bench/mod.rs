//! `karmada bench ...`: benchmarks that print numbers (never timed tests).

mod apiserver;
mod autoscaling;
mod chart;
mod failover;
mod interpreter;
mod mcs;
mod member;
mod process;
mod propagate;
mod report;
mod scheduler;
mod store;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Target {
    /// The store backends: durable commits, concurrent writes, get and list latency.
    Store(store::Args),
    /// The API server over HTTPS: creates, gets, lists, watch delivery latency, memory.
    Apiserver(apiserver::Args),
    /// Simulated members: 1,000 clusters in one process, and pods/s to Running.
    Member(member::Args),
    /// The scheduling algorithm alone: decisions/s over 100 and 1,000 clusters.
    Scheduler(scheduler::Args),
    /// The whole pipeline: N simulated clusters × M workloads (each with a ConfigMap
    /// dependency), propagation latency, Works/s, control-plane memory and CPU, and a
    /// controller restart.
    Propagate(propagate::Args),
    /// FederatedHPAs over many clusters: the control plane's CPU at rest with and without
    /// them (metrics collection), and a load change → replicas Running.
    Autoscaling(autoscaling::Args),
    /// Multi-cluster services: a pod Ready in an exporting cluster → its endpoint in an
    /// importing one.
    Mcs(mcs::Args),
    /// Failover timing: a member fails, how long until its workload is Ready elsewhere,
    /// against the time the settings predict.
    Failover(failover::Args),
    /// The resource interpreter: per-call cost of Lua customization rules and built-in rules.
    Interpreter(interpreter::Args),
    /// Draw BENCHMARKS.md's chart (PNG) from `bench propagate --json` result files.
    Chart(chart::Args),
}

pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Store(args) => store::run(args).await,
        Target::Apiserver(args) => apiserver::run(args).await,
        Target::Member(args) => member::run(args).await,
        Target::Scheduler(args) => scheduler::run(args).await,
        Target::Propagate(args) => propagate::run(args).await,
        Target::Failover(args) => failover::run(args).await,
        Target::Autoscaling(args) => autoscaling::run(args).await,
        Target::Mcs(args) => mcs::run(args).await,
        Target::Interpreter(args) => interpreter::run(args).await,
        Target::Chart(args) => chart::run(args).await,
    }
}
