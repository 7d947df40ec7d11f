//! `karmada bench failover`: how long workloads take to leave a failed cluster, against the
//! time the settings predict. The control plane runs as child processes (apiserver,
//! controller-manager with a 1 s status frequency, scheduler) with upstream's default
//! ClusterTaintPolicies; three simulated members run here. A Divided Deployment over the three
//! tolerates the not-ready and unreachable NoExecute taints for `--toleration` seconds; member1 is
//! made unreachable, and the bench reports when member1 was tainted, when the binding left it,
//! and when every replica was Ready on the other members — each round.

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use k8s_openapi::api::apps::v1::Deployment;
use karmada_api::cluster::Cluster;
use karmada_api::work::ResourceBinding;
use kube::api::{Api, Patch, PatchParams, PostParams};
use member::SimConfig;
use serde_json::json;

use super::process::{self, Proc};
use super::report::Report;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// How long the workload tolerates an unreachable cluster, in seconds.
    #[arg(long, default_value_t = 5)]
    toleration: i64,
    /// Failures measured (member1 fails and recovers each round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long)]
    json: bool,
}

const STATUS_FREQUENCY_SECS: u64 = 1;

async fn until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<Instant>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if check().await {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fault(data_dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["fault", "member1", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "karmada fault failed");
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_apiserver, kc, client) = process::memory_control_plane(dir.path()).await?;
    let members_dir = dir.path().join("members");
    let configs = process::member_configs(dir.path(), 3, SimConfig::default());
    let members = member::start_many(configs).await?;
    let _controller_manager = Proc::karmada(&[
        "controller-manager",
        "--kubeconfig",
        &kc,
        "--cluster-status-update-frequency",
        &format!("{STATUS_FREQUENCY_SECS}s"),
        "--cluster-monitor-period",
        "1s",
        "--cluster-monitor-grace-period",
        "40s",
    ])?;
    let _scheduler = Proc::karmada(&["scheduler", "--kubeconfig", &kc])?;
    crate::up_cmd::install_default_taint_policies(&client).await?;
    for m in &members {
        crate::up_cmd::join(&client, &m.name, &m.server).await?;
    }
    let clusters: Api<Cluster> = Api::all(client.clone());
    let ready_clusters = || async {
        clusters.list(&Default::default()).await.map_or(0, |l| {
            l.items
                .iter()
                .filter(|c| {
                    c.status.as_ref().is_some_and(|s| {
                        s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count()
        })
    };
    until("three Ready clusters", || async { ready_clusters().await == 3 }).await?;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))?;
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await?;
    let policy = json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2", "member3"]},
                "clusterTolerations": [
                    {"key": "cluster.karmada.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": args.toleration},
                    {"key": "cluster.karmada.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": args.toleration}],
                "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"}}}});
    Api::<karmada_api::policy::PropagationPolicy>::namespaced(client.clone(), "default")
        .patch("web", &PatchParams::apply("bench"), &Patch::Apply(&policy))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let bindings: Api<ResourceBinding> = Api::namespaced(client.clone(), "default");
    let all_ready = || async {
        deployments.get_opt("web").await.ok().flatten().and_then(|d| d.status?.ready_replicas)
            == Some(3)
    };
    let on_member1 =
        || async {
            bindings.get_opt("web-deployment").await.ok().flatten().is_some_and(|b| {
                b.spec.clusters.iter().any(|t| t.name == "member1" && t.replicas > 0)
            })
        };
    let tainted = || async {
        clusters.get_opt("member1").await.ok().flatten().is_some_and(|c| {
            c.spec.taints.iter().any(|t| t.effect == karmada_api::cluster::TaintEffect::NoExecute)
        })
    };
    let mut report = Report::default();
    // Detection takes up to one status period (a refused connection fails at once; a member
    // that black-holes packets adds up to the probe timeout), then the toleration, then about a
    // second to schedule, propagate and start the replicas elsewhere.
    let predicted = STATUS_FREQUENCY_SECS as f64 + args.toleration as f64 + 1.0;
    let mut totals = Vec::new();
    for round in 1..=args.rounds {
        // Start from 1/1/1 with member1 healthy and untainted.
        until("the workload on all three clusters and Ready", || async {
            on_member1().await && all_ready().await && !tainted().await
        })
        .await?;
        let failed = Instant::now();
        fault(&members_dir, &["--unreachable", "true"])?;
        let t_taint = until("member1 tainted NoExecute", || async { tainted().await }).await?;
        let t_left = until("the binding leaving member1", || async { !on_member1().await }).await?;
        let t_ready = until("3/3 Ready elsewhere", || async { all_ready().await }).await?;
        let s = format!("round {round}");
        let secs = |t: Instant| t.saturating_duration_since(failed).as_secs_f64();
        report.add(&s, "failure → member1 tainted NoExecute", secs(t_taint), "s");
        report.add(&s, "failure → binding left member1", secs(t_left), "s");
        report.add(&s, "failure → 3/3 Ready elsewhere", secs(t_ready), "s");
        totals.push(secs(t_ready));
        // Recover, and spread back for the next round.
        fault(&members_dir, &["--clear"])?;
        until("member1 Ready and untainted", || async { !tainted().await }).await?;
        let rebalancer = json!({"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
            "metadata": {"name": format!("back-{round}")},
            "spec": {"workloads": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "web"}]}});
        let resource = controllers::rebalancer::rebalancer_resource();
        // A second apart from the last scheduling, so the trigger is newer.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        Api::<kube::api::DynamicObject>::all_with(client.clone(), &resource)
            .patch(
                &format!("back-{round}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&rebalancer),
            )
            .await?;
    }
    let s = "summary";
    report.add(s, "predicted (status period + toleration + 1 s to reschedule)", predicted, "s");
    let mean = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    let worst = totals.iter().copied().fold(0.0_f64, f64::max);
    report.add(s, "measured failure → Ready elsewhere, mean", mean, "s");
    report.add(s, "measured failure → Ready elsewhere, worst", worst, "s");
    report.add(
        s,
        "worst deviation from predicted",
        (worst - predicted).abs().max((mean - predicted).abs()),
        "s",
    );
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    report.print(args.json)
}
