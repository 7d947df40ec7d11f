//! `karmada bench scheduler`: the scheduling algorithm alone, over many clusters.

use std::time::Instant;

use clap::Args as ClapArgs;
use karmada_api::policy::Placement;
use scheduler::{BindingInfo, Capacity, ClusterInfo, Plugins};

use super::report::{Report, Samples};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Bindings scheduled per cluster count.
    #[arg(long, default_value_t = 10_000)]
    bindings: usize,
    /// Cluster counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    clusters: Vec<usize>,
    /// Also measure end to end through the API server (watch → decide → write), with this
    /// many bindings over 100 clusters (0 skips it).
    #[arg(long, default_value_t = 5_000)]
    e2e_bindings: usize,
    /// Then create this many bindings at a steady `--steady-rate` (0 skips it), for the
    /// scheduling latency when the scheduler keeps up rather than under a burst.
    #[arg(long, default_value_t = 2_000)]
    steady_bindings: usize,
    /// Bindings per second offered in the steady phase.
    #[arg(long, default_value_t = 200.0)]
    steady_rate: f64,
    #[arg(long)]
    json: bool,
}

fn clusters(n: usize) -> Vec<ClusterInfo> {
    (0..n)
        .map(|i| ClusterInfo {
            name: format!("member{i}"),
            labels: std::sync::Arc::new(
                [("location".to_string(), if i % 2 == 0 { "eu" } else { "us" }.to_string())]
                    .into_iter()
                    .collect(),
            ),
            provider: "sim".into(),
            region: format!("region{}", i % 5),
            zones: vec![format!("zone{}", i % 10)],
            capacity: Some(std::sync::Arc::new(Capacity {
                allocatable: [
                    ("cpu".to_string(), 64_000),
                    ("memory".to_string(), 256i128 << 40),
                    ("pods".to_string(), 1_100_000),
                ]
                .into_iter()
                .collect(),
                allocated: [("cpu".to_string(), (i as i128 % 7) * 1000)].into_iter().collect(),
                ..Capacity::default()
            })),
            ..ClusterInfo::default()
        })
        .collect()
}

fn binding(i: usize, n: usize) -> BindingInfo {
    let placement: serde_json::Value = match i % 3 {
        0 => {
            serde_json::json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"location": "eu"}}}, "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 3, "minGroups": 1}]})
        }
        1 => {
            let names: Vec<String> = (0..3).map(|k| format!("member{}", (i + k * 7) % n)).collect();
            serde_json::json!({"clusterAffinity": {"clusterNames": names}, "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": [names[0]]}, "weight": 2}, {"targetCluster": {"clusterNames": [names[1], names[2]]}, "weight": 1}]}}})
        }
        _ => {
            serde_json::json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 3}, {"spreadByField": "cluster", "minGroups": 3, "maxGroups": 3}],
            "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}})
        }
    };
    BindingInfo {
        gvk: "apps/v1/Deployment".into(),
        replicas: 3 + (i % 10) as i32,
        requests: [("cpu".to_string(), 250)].into_iter().collect(),
        placement: serde_json::from_value::<Placement>(placement).unwrap_or_default(),
        ..BindingInfo::default()
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let plugins = Plugins::default();
    for n in &args.clusters {
        let cs = clusters(*n);
        let bindings: Vec<BindingInfo> = (0..args.bindings).map(|i| binding(i, *n)).collect();
        let mut samples = Samples::default();
        let mut failed = 0;
        let started = Instant::now();
        for b in &bindings {
            let t = Instant::now();
            if scheduler::schedule(b, &cs, &plugins).is_err() {
                failed += 1;
            }
            samples.push(t.elapsed());
        }
        let elapsed = started.elapsed();
        let subject = format!("scheduler core, {n} clusters");
        report.add(&subject, "decisions/s", args.bindings as f64 / elapsed.as_secs_f64(), "ops/s");
        report.latency(&subject, "decision latency", &mut samples);
        report.add(&subject, "unschedulable decisions", failed as f64, "bindings");
    }
    if args.e2e_bindings > 0 {
        end_to_end(args.e2e_bindings, (args.steady_bindings, args.steady_rate), &mut report)
            .await?;
    }
    report.print(args.json)
}

/// Watch → decide → write through a real API server (in this process, memory store).
async fn end_to_end(count: usize, paced: (usize, f64), report: &mut Report) -> anyhow::Result<()> {
    use std::collections::HashMap;
    use std::sync::Arc;

    use futures::StreamExt;
    use karmada_api::cluster::Cluster;
    use karmada_api::work::ResourceBinding;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use kube::runtime::watcher;

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn store::Store> = Arc::new(store_memory::MemoryStore::default());
    let mut config = apiserver::Config::new(dir.path(), "127.0.0.1:0".parse()?, store);
    control_plane::install(&mut config, &karmada_api::features::FeatureGates::default());
    let server = apiserver::start(config).await?;
    let client = crate::cli::kube_client(&server.kubeconfig, None).await?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    let n_clusters = 100;
    for i in 0..n_clusters {
        let cluster: Cluster = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("member{i}")},
            "spec": {"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:1", "region": format!("region{}", i % 5)}
        }))?;
        clusters.create(&PostParams::default(), &cluster).await?;
        let status = serde_json::json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "resourceSummary": {"allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "100000"}}
        }});
        clusters
            .patch_status(&format!("member{i}"), &PatchParams::default(), &Patch::Merge(status))
            .await?;
    }
    let scheduler_task =
        tokio::spawn(controllers::scheduling::run(client.clone(), Plugins::default()));
    let bindings: Api<ResourceBinding> = Api::namespaced(client.clone(), "default");
    let scheduled_at: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = Arc::clone(&scheduled_at);
    let watch = tokio::spawn(
        watcher::watcher(bindings.clone(), watcher::Config::default()).for_each(move |event| {
            if let Ok(watcher::Event::Apply(rb) | watcher::Event::InitApply(rb)) = event
                && !rb.spec.clusters.is_empty()
                && let Ok(mut map) = seen.lock()
            {
                map.entry(rb.metadata.name.unwrap_or_default()).or_insert_with(Instant::now);
            }
            async {}
        }),
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // A burst: 32 writers create as fast as the API server takes them (throughput; the
    // latency then is mostly queueing behind the burst).
    let subject = "scheduler e2e, 100 clusters (apiserver on memory)";
    let (done, elapsed, mut latency) =
        create_and_measure(&bindings, "b", count, None, n_clusters, &scheduled_at).await?;
    report.add(subject, "bindings scheduled", done as f64, "bindings");
    report.add(
        subject,
        "bindings/s (create → scheduled, all)",
        done as f64 / elapsed.as_secs_f64(),
        "ops/s",
    );
    report.latency(subject, "scheduling latency (created → clusters set)", &mut latency);
    // A steady load below capacity: the latency a binding sees when the scheduler keeps up.
    if paced.0 > 0 {
        let (count, rate) = paced;
        let subject = format!("scheduler e2e, 100 clusters, steady {rate:.0} bindings/s");
        let (done, _, mut latency) =
            create_and_measure(&bindings, "p", count, Some(rate), n_clusters, &scheduled_at)
                .await?;
        report.add(&subject, "bindings scheduled", done as f64, "bindings");
        report.latency(&subject, "scheduling latency (created → clusters set)", &mut latency);
    }
    watch.abort();
    scheduler_task.abort();
    server.shutdown().await;
    Ok(())
}

type Stamps = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>;

/// Creates `count` bindings named `{prefix}{i}` (as fast as 32 writers can, or at `rate` per
/// second from one writer) and waits until the watch saw each one scheduled. Returns how many
/// were scheduled, the time from the first create to the last decision, and the latencies.
async fn create_and_measure(
    bindings: &kube::Api<karmada_api::work::ResourceBinding>,
    prefix: &str,
    count: usize,
    rate: Option<f64>,
    n_clusters: usize,
    scheduled_at: &Stamps,
) -> anyhow::Result<(usize, std::time::Duration, Samples)> {
    use kube::api::PostParams;

    let started = Instant::now();
    let created_at: Stamps = Stamps::default();
    let writers = if rate.is_some() { 1 } else { 32 };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let bindings = bindings.clone();
        let created_at = std::sync::Arc::clone(&created_at);
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (w..count).step_by(writers) {
                if let Some(rate) = rate {
                    let due = started + std::time::Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let names: Vec<String> =
                    (0..3).map(|k| format!("member{}", (i + k * 7) % n_clusters)).collect();
                let rb: karmada_api::work::ResourceBinding = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("{prefix}{i}")},
                    "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": format!("d{i}")},
                        "replicas": 6, "replicaRequirements": {"resourceRequest": {"cpu": "100m"}},
                        "placement": {"clusterAffinity": {"clusterNames": names}, "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"}}}
                }))?;
                let t = Instant::now();
                bindings.create(&PostParams::default(), &rb).await?;
                if let Ok(mut map) = created_at.lock() {
                    map.insert(format!("{prefix}{i}"), t);
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let ours = |m: &std::collections::HashMap<String, Instant>| {
        m.keys()
            .filter(|k| k.strip_prefix(prefix).is_some_and(|n| n.parse::<usize>().is_ok()))
            .count()
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let done = scheduled_at.lock().map(|m| ours(&m)).unwrap_or(0);
        if done >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let scheduled = scheduled_at.lock().map(|m| m.clone()).unwrap_or_default();
    let created = created_at.lock().map(|m| m.clone()).unwrap_or_default();
    let mut latency = Samples::default();
    let mut last = started;
    for (name, c) in &created {
        if let Some(at) = scheduled.get(name) {
            latency.push(at.saturating_duration_since(*c));
            last = last.max(*at);
        }
    }
    Ok((ours(&scheduled), last.saturating_duration_since(started), latency))
}
