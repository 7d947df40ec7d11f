//! `karmada bench member`: many simulated clusters in one process (start time, memory), and
//! pod throughput in one cluster.

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use member::{MemberConfig, SimConfig};

use super::report::Report;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated clusters started in this process.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Pods created (as one Deployment) in a single cluster.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    #[arg(long)]
    json: bool,
}

pub fn rss_bytes() -> u64 {
    super::process::rss_bytes(std::process::id())
}

fn config(name: String, dir: &std::path::Path, sim: SimConfig) -> MemberConfig {
    MemberConfig {
        name,
        bind: "127.0.0.1:0".parse().expect("literal address"),
        data_dir: dir.join("members"),
        kubeconfig: dir.join("members.config"),
        kubernetes_version: "v1.32.0".into(),
        sim,
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let dir = tempfile::tempdir()?;

    // 1. Many idle clusters with 3 nodes each.
    let before = rss_bytes();
    let started = Instant::now();
    let configs = (1..=args.clusters)
        .map(|i| config(format!("member{i}"), dir.path(), SimConfig::default()))
        .collect();
    let members = member::start_many(configs).await?;
    let elapsed = started.elapsed();
    tracing::info!(?elapsed, "members started");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_bytes();
    let subject = format!("member x{}", args.clusters);
    report.add(&subject, "start time", elapsed.as_secs_f64(), "s");
    report.add(
        &subject,
        "process RSS growth",
        (after.saturating_sub(before)) as f64 / (1 << 20) as f64,
        "MiB",
    );
    report.add(
        &subject,
        "RSS per idle cluster (3 nodes)",
        (after.saturating_sub(before)) as f64 / args.clusters as f64 / (1 << 20) as f64,
        "MiB",
    );
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    tracing::info!("members stopped");

    // 2. Pods to Running in one cluster.
    let nodes = args.pods / 100 + 1;
    let sim = SimConfig { nodes, node_pods: 110, ..SimConfig::default() };
    let m = member::start(config("big".into(), dir.path(), sim)).await?;
    let client = crate::cli::kube_client(&dir.path().join("members.config"), Some("big")).await?;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "load"},
        "spec": {"replicas": args.pods, "selector": {"matchLabels": {"app": "load"}},
            "template": {"metadata": {"labels": {"app": "load"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))?;
    let started = Instant::now();
    deploys.create(&PostParams::default(), &deployment).await?;
    let deadline = started + Duration::from_secs(600);
    let mut ready = 0;
    while Instant::now() < deadline {
        ready =
            deploys.get("load").await?.status.and_then(|s| s.ready_replicas).unwrap_or(0) as usize;
        if ready >= args.pods {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    report.add(
        "member (1 cluster)",
        &format!("pods Ready (of {})", args.pods),
        ready as f64,
        "pods",
    );
    report.add(
        "member (1 cluster)",
        "time to all pods Running and Ready",
        elapsed.as_secs_f64(),
        "s",
    );
    report.add(
        "member (1 cluster)",
        "pods/s to Running",
        ready as f64 / elapsed.as_secs_f64(),
        "pods/s",
    );
    m.shutdown().await;
    report.print(args.json)
}
