//! `karmada bench autoscaling`: what FederatedHPAs cost the control plane over many clusters,
//! and how fast a change in load becomes running replicas. The API server, controller-manager
//! and scheduler run as child processes; `--clusters` simulated members run here (their CPU is
//! this process's). `--workloads` Deployments (100m CPU each, `--replicas` each) are divided
//! over the clusters at a CPU load of 0.5. The control plane is measured at rest over
//! `--seconds`, first without FederatedHPAs and then with one per Deployment (50 % CPU target,
//! at most twice the replicas):
//! the difference is the cost of evaluating them — every sync period each lists its pods and
//! their metrics from every cluster. Then the members' load doubles and the bench reports when
//! every template was scaled and when every new replica was Running in the members.

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use k8s_openapi::api::apps::v1::Deployment;
use karmada_api::cluster::Cluster;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use member::{Faults, SimConfig};
use serde_json::json;

use super::process::{self, Proc};
use super::report::Report;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated member clusters.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Deployments, each with a FederatedHPA.
    #[arg(long, default_value_t = 10)]
    workloads: usize,
    /// Each Deployment's replicas before the load rises (twice as many after).
    #[arg(long, default_value_t = 4)]
    replicas: i32,
    /// How long each at-rest measurement lasts.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[arg(long)]
    json: bool,
}

async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<Instant>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU % (of one core) of each measured process over `seconds`.
async fn at_rest(procs: &[(&str, u32)], seconds: u64) -> Vec<(String, f64)> {
    let before: Vec<f64> = procs.iter().map(|(_, pid)| process::cpu_seconds(*pid)).collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let wall = started.elapsed().as_secs_f64();
    procs
        .iter()
        .zip(before)
        .map(|((name, pid), b)| {
            ((*name).to_owned(), (process::cpu_seconds(*pid) - b) / wall * 100.0)
        })
        .collect()
}

fn set_load(dir: &std::path::Path, clusters: usize, load: f64) -> anyhow::Result<()> {
    for i in 1..=clusters {
        Faults { load: Some(load), ..Faults::default() }.save(dir, &format!("member{i}"))?;
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.clusters > 0 && args.workloads > 0 && args.replicas > 0, "nothing to do");
    let dir = tempfile::tempdir()?;
    let (apiserver, kc, client) = process::memory_control_plane(dir.path()).await?;
    let members_dir = dir.path().join("members");
    let configs = process::member_configs(
        dir.path(),
        args.clusters,
        SimConfig { nodes: 1, system_components: false, ..SimConfig::default() },
    );
    let members = member::start_many(configs).await?;
    set_load(&members_dir, args.clusters, 0.5)?;
    let controller_manager = Proc::karmada(&["controller-manager", "--kubeconfig", &kc])?;
    let scheduler = Proc::karmada(&["scheduler", "--kubeconfig", &kc])?;
    for m in &members {
        crate::up_cmd::join(&client, &m.name, &m.server).await?;
    }
    let clusters: Api<Cluster> = Api::all(client.clone());
    until("every cluster Ready", Duration::from_secs(300), || async {
        clusters
            .list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.iter().filter(|c| c.is_ready()).count() == args.clusters)
    })
    .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let apply = |api: Api<DynamicObject>, name: String, object: serde_json::Value| async move {
        api.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&object)).await
    };
    let resource = |api_version: &str, kind: &str, plural: &str| {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        kube::discovery::ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    };
    let dynamic = |r: &kube::discovery::ApiResource| {
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", r)
    };
    let policy = resource("policy.karmada.io/v1alpha1", "PropagationPolicy", "propagationpolicies");
    apply(
        dynamic(&policy),
        "bench".into(),
        json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"bench": "autoscaling"}}}],
                "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"}}}}),
    )
    .await?;
    let deployment = resource("apps/v1", "Deployment", "deployments");
    for i in 0..args.workloads {
        let name = format!("web-{i}");
        apply(
            dynamic(&deployment),
            name.clone(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "default", "labels": {"bench": "autoscaling"}},
                "spec": {"replicas": args.replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}}}),
        )
        .await?;
    }
    let all_at = |replicas: i32| {
        let deployments = deployments.clone();
        async move {
            deployments.list(&ListParams::default().labels("bench=autoscaling")).await.is_ok_and(
                |l| {
                    l.items.len() == args.workloads
                        && l.items.iter().all(|d| {
                            d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas)
                                && d.status.as_ref().and_then(|s| s.ready_replicas)
                                    == Some(replicas)
                        })
                },
            )
        }
    };
    until("every Deployment Ready in the members", Duration::from_secs(300), || {
        all_at(args.replicas)
    })
    .await?;
    let procs = [
        ("karmada-apiserver", apiserver.pid()),
        ("controller-manager", controller_manager.pid()),
        ("scheduler", scheduler.pid()),
        ("members (this process)", std::process::id()),
    ];
    let mut report = Report::default();
    let subject = format!("{} clusters, {} Deployments", args.clusters, args.workloads);
    for (name, percent) in at_rest(&procs, args.seconds).await {
        report.add(&subject, &format!("at rest without FederatedHPAs: {name} CPU"), percent, "%");
    }
    let fhpa = resource("autoscaling.karmada.io/v1alpha1", "FederatedHPA", "federatedhpas");
    for i in 0..args.workloads {
        let name = format!("web-{i}");
        apply(
            dynamic(&fhpa),
            name.clone(),
            json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "FederatedHPA",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": 1, "maxReplicas": args.replicas * 2,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}),
        )
        .await?;
    }
    let fhpas = dynamic(&fhpa);
    until("every FederatedHPA evaluated", Duration::from_secs(120), || async {
        fhpas.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.len() == args.workloads
                && l.items.iter().all(|f| {
                    f.data["status"]["conditions"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "ValidMetricFound"))
                })
        })
    })
    .await?;
    for (name, percent) in at_rest(&procs, args.seconds).await {
        report.add(
            &subject,
            &format!("at rest with a FederatedHPA each: {name} CPU"),
            percent,
            "%",
        );
    }
    // Twice the load: each FederatedHPA doubles its replicas at its next evaluation (every pod
    // of the simulation uses its request times the load however many there are, so its
    // maximum, twice the replicas, is where it stops).
    let raised = Instant::now();
    set_load(&members_dir, args.clusters, 1.0)?;
    let scaled = until("every template scaled", Duration::from_secs(120), || async {
        deployments.list(&ListParams::default().labels("bench=autoscaling")).await.is_ok_and(|l| {
            l.items
                .iter()
                .all(|d| d.spec.as_ref().and_then(|s| s.replicas) == Some(args.replicas * 2))
        })
    })
    .await?;
    let running =
        until("every new replica Running", Duration::from_secs(120), || all_at(args.replicas * 2))
            .await?;
    let secs = |t: Instant| t.saturating_duration_since(raised).as_secs_f64();
    report.add(&subject, "load ×2 → every template scaled (sync period 15 s)", secs(scaled), "s");
    report.add(&subject, "load ×2 → every new replica Running in the members", secs(running), "s");
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    report.print(args.json)
}
