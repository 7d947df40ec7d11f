//! `karmada bench propagate`: the whole pipeline at scale. The control plane runs as child
//! processes (apiserver, controller-manager, scheduler — measured apart); N simulated members
//! run in this process. M Deployments, each with a ConfigMap it mounts (propagated with
//! `propagateDeps`), are spread by N policies over K clusters each. Reported: time until every
//! member object exists and every template shows its replicas Ready, latency percentiles
//! (template created → object in a member; → aggregated status Ready on the template),
//! scheduler decisions/s, Works applied/s, control-plane peak memory and CPU, and a restart of
//! the controller-manager and scheduler (time until they are idle again, and how long a
//! template created during that resync takes to reach its member).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, ValueEnum};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use karmada_api::cluster::Cluster;
use karmada_api::work::{ResourceBinding, Work};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use member::{MemberConfig, SimConfig};
use serde_json::json;

use super::process::{self, Proc};
use super::report::{Report, Samples};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Every target cluster runs all replicas.
    Duplicated,
    /// Replicas are divided over the target clusters.
    Divided,
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated member clusters.
    #[arg(long, default_value_t = 10)]
    clusters: usize,
    /// Deployments created (each with its own ConfigMap).
    #[arg(long, default_value_t = 1000)]
    workloads: usize,
    /// Replicas per Deployment.
    #[arg(long, default_value_t = 2)]
    replicas: i32,
    #[arg(long, value_enum, default_value = "divided")]
    mode: Mode,
    /// Clusters each workload is placed on.
    #[arg(long, default_value_t = 3)]
    clusters_per_workload: usize,
    /// The control plane's store: `redb`, `memory`, `etcd` (a local etcd started for the run)
    /// or `etcd:URL`.
    #[arg(long, default_value = "redb")]
    store: String,
    /// Concurrent clients creating the workloads.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Create the workloads at this steady rate (workloads per second) instead of as fast as
    /// the writers can: the propagation latency under light load rather than behind a burst.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[arg(long)]
    json: bool,
}

const NAMESPACE: &str = "bench";

/// First-seen instants by key, shared with watch tasks.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, Instant>>>);

impl Seen {
    fn mark(&self, key: String) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(key).or_insert_with(Instant::now);
        }
    }
    fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<String, Instant> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    fn get(&self, key: &str) -> Option<Instant> {
        self.0.lock().ok().and_then(|m| m.get(key).copied())
    }
}

/// The control-plane components as processes.
struct ControlPlane {
    apiserver: Proc,
    controller_manager: Proc,
    scheduler: Proc,
}

impl ControlPlane {
    fn pids(&self) -> [u32; 3] {
        [self.apiserver.pid(), self.controller_manager.pid(), self.scheduler.pid()]
    }
    fn rss(&self) -> u64 {
        self.apiserver.rss() + self.controller_manager.rss() + self.scheduler.rss()
    }
}

fn controllers(kubeconfig: &str) -> anyhow::Result<(Proc, Proc)> {
    let cm = Proc::karmada(&[
        "controller-manager",
        "--kubeconfig",
        kubeconfig,
        "--cluster-status-update-frequency",
        "5s",
    ])?;
    let scheduler = Proc::karmada(&["scheduler", "--kubeconfig", kubeconfig])?;
    Ok((cm, scheduler))
}

fn policy(group: usize, args: &Args) -> serde_json::Value {
    let names = group_clusters(group, args);
    let scheduling = match args.mode {
        Mode::Duplicated => json!({"replicaSchedulingType": "Duplicated"}),
        Mode::Divided => {
            json!({"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"})
        }
    };
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": format!("group-{group}"), "namespace": NAMESPACE},
        "spec": {"propagateDeps": true,
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "labelSelector": {"matchLabels": {"bench-group": group.to_string()}}}],
            "placement": {"clusterAffinity": {"clusterNames": names}, "replicaScheduling": scheduling}}})
}

fn workload(i: usize, args: &Args) -> anyhow::Result<(ConfigMap, Deployment)> {
    let name = format!("app-{i}");
    let group = i % args.clusters;
    let cm = serde_json::from_value(json!({"metadata": {"name": format!("{name}-config")},
        "data": {"index": i.to_string()}}))?;
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench-group": group.to_string()}},
        "spec": {"replicas": args.replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "app", "image": "nginx",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]}],
                "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}}]}}}}))?;
    Ok((cm, deployment))
}

/// The clusters of policy group `group`: K consecutive members, wrapping around.
fn group_clusters(group: usize, args: &Args) -> Vec<String> {
    (0..args.clusters_per_workload.min(args.clusters))
        .map(|k| format!("member{}", (group + k) % args.clusters + 1))
        .collect()
}

/// Target clusters of workload `i`.
fn targets(i: usize, args: &Args) -> Vec<String> {
    group_clusters(i % args.clusters, args)
}

/// Clusters that actually get a share (a Divided workload with fewer replicas than clusters
/// leaves some out).
fn expected_objects(args: &Args) -> usize {
    let k = args.clusters_per_workload.min(args.clusters);
    let per = match args.mode {
        Mode::Duplicated => k,
        Mode::Divided => k.min(usize::try_from(args.replicas.max(0)).unwrap_or(0)),
    };
    per * args.workloads
}

async fn create_workloads(
    client: &kube::Client,
    range: std::ops::Range<usize>,
    args: &Args,
    created: &Seen,
) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let first = range.start;
    let indices: Vec<usize> = range.collect();
    let writers = args.writers.max(1);
    let rate = args.rate;
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mine: Vec<usize> = indices.iter().copied().skip(w).step_by(writers).collect();
        let (cms, deployments, created) = (cms.clone(), deployments.clone(), created.clone());
        let items: Vec<(usize, ConfigMap, Deployment)> = mine
            .into_iter()
            .map(|i| workload(i, args).map(|(c, d)| (i, c, d)))
            .collect::<anyhow::Result<_>>()?;
        tasks.push(tokio::spawn(async move {
            for (i, cm, deployment) in items {
                if rate > 0.0 {
                    let due = Duration::from_secs_f64((i - first) as f64 / rate);
                    tokio::time::sleep_until(started + due).await;
                }
                created.mark(format!("app-{i}"));
                cms.create(&PostParams::default(), &cm).await?;
                deployments.create(&PostParams::default(), &deployment).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !done() {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

/// CPU seconds the processes have used so far, together.
fn cpu_total(pids: &[u32]) -> f64 {
    pids.iter().map(|p| process::cpu_seconds(*p)).sum()
}

/// CPU the processes use per second when nothing is being created (status probes of many
/// clusters keep controllers busy even then), measured over two seconds.
async fn steady_cpu(pids: &[u32]) -> f64 {
    let before = cpu_total(pids);
    tokio::time::sleep(Duration::from_secs(2)).await;
    (cpu_total(pids) - before) / 2.0
}

/// Waits until the processes are back at their steady CPU use (`baseline` cores; plus 5% of a
/// core) for half a second.
async fn until_idle(pids: &[u32], timeout: Duration, baseline: f64) -> Duration {
    let started = Instant::now();
    let mut last = cpu_total(pids);
    let mut quiet = 0;
    while started.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = cpu_total(pids);
        if now - last < 0.005 + baseline * 0.1 * 1.5 {
            quiet += 1;
            if quiet >= 5 {
                return started.elapsed() - Duration::from_millis(500);
            }
        } else {
            quiet = 0;
        }
        last = now;
    }
    started.elapsed()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clusters > 0 && args.workloads > 0,
        "--clusters and --workloads must be > 0"
    );
    let mut report = Report::default();
    let timeout = Duration::from_secs(args.timeout);
    let dir = tempfile::tempdir()?;
    let (store, _etcd) = process::store_spec(&args.store, dir.path()).await?;
    let (apiserver, kubeconfig) = process::apiserver(&store, &dir.path().join("control-plane"))?;
    let kubeconfig_str = kubeconfig.to_str().unwrap_or_default().to_owned();
    let client = crate::cli::kube_client(&kubeconfig, None).await?;

    // Members, sized for their share of pods.
    let k = args.clusters_per_workload.min(args.clusters);
    let pods_total = match args.mode {
        Mode::Duplicated => args.workloads * k * args.replicas.max(0) as usize,
        Mode::Divided => args.workloads * args.replicas.max(0) as usize,
    };
    let per_cluster = pods_total * 3 / (2 * args.clusters) + 10;
    let node_pods = 500;
    let nodes = per_cluster.div_ceil(node_pods).max(1);
    let configs: Vec<MemberConfig> = (1..=args.clusters)
        .map(|i| MemberConfig {
            name: format!("member{i}"),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("members"),
            kubeconfig: dir.path().join("members.config"),
            kubernetes_version: "v1.32.0".into(),
            sim: SimConfig {
                nodes,
                node_pods: node_pods as i128,
                node_cpu_milli: 64_000,
                node_memory: 256 << 30,
                region: format!("region-{}", i % 4),
                ..SimConfig::default()
            },
        })
        .collect();
    let members = member::start_many(configs).await?;
    let (controller_manager, scheduler) = controllers(&kubeconfig_str)?;
    let mut cp = ControlPlane { apiserver, controller_manager, scheduler };
    for m in &members {
        crate::up_cmd::join(&client, &m.name, &m.server).await?;
    }
    let clusters: Api<Cluster> = Api::all(client.clone());
    let ready_clusters = || {
        let clusters = clusters.clone();
        async move {
            clusters.list(&ListParams::default()).await.map_or(0, |l| {
                l.items
                    .iter()
                    .filter(|c| {
                        c.status.as_ref().is_some_and(|s| {
                            s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                    })
                    .count()
            })
        }
    };
    let started = Instant::now();
    while ready_clusters().await < args.clusters {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "clusters did not become Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{} clusters Ready; creating {} workloads", args.clusters, args.workloads);

    // Observers: member objects, bindings scheduled, Works applied, template status.
    let in_member = Seen::default();
    let bound = Seen::default();
    let scheduled = Seen::default();
    let applied = Seen::default();
    let ready = Seen::default();
    let mut watches = Vec::new();
    for m in &members {
        let credentials = member_client::Credentials {
            ca_pem: m.server.ca_pem.as_bytes().to_vec(),
            token: None,
            cert_pem: Some(m.server.admin.cert_pem.as_bytes().to_vec()),
            key_pem: Some(m.server.admin.key_pem.as_bytes().to_vec()),
        };
        let member_client = member_client::client_for(
            &m.name,
            &m.server.url,
            &credentials,
            Duration::from_secs(30),
        )
        .await?;
        let (seen, cluster) = (in_member.clone(), m.name.clone());
        watches.push(tokio::spawn(
            watcher::watcher(
                Api::<Deployment>::namespaced(member_client, NAMESPACE),
                watcher::Config::default(),
            )
            .for_each(move |e| {
                if let Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = e {
                    seen.mark(format!("{cluster}/{}", d.metadata.name.unwrap_or_default()));
                }
                async {}
            }),
        ));
    }
    let (seen, bound_seen) = (scheduled.clone(), bound.clone());
    watches.push(tokio::spawn(
        watcher::watcher(
            Api::<ResourceBinding>::namespaced(client.clone(), NAMESPACE),
            watcher::Config::default(),
        )
        .for_each(move |e| {
            if let Ok(watcher::Event::Apply(rb) | watcher::Event::InitApply(rb)) = e
                && rb.spec.resource.kind == "Deployment"
            {
                let name = rb.metadata.name.unwrap_or_default();
                if !rb.spec.clusters.is_empty() {
                    seen.mark(name.clone());
                }
                bound_seen.mark(name);
            }
            async {}
        }),
    ));
    let seen = applied.clone();
    watches.push(tokio::spawn(
        watcher::watcher(Api::<Work>::all(client.clone()), watcher::Config::default()).for_each(
            move |e| {
                if let Ok(watcher::Event::Apply(w) | watcher::Event::InitApply(w)) = e
                    && w.status.as_ref().is_some_and(|s| {
                        s.conditions.iter().any(|c| c.type_ == "Applied" && c.status == "True")
                    })
                {
                    seen.mark(format!(
                        "{}/{}",
                        w.metadata.namespace.unwrap_or_default(),
                        w.metadata.name.unwrap_or_default()
                    ));
                }
                async {}
            },
        ),
    ));
    // A template's status sums its members' (as upstream's): a duplicated workload is Ready
    // with its replicas in each of its clusters.
    let replicas = match args.mode {
        Mode::Duplicated => args.replicas * i32::try_from(k).unwrap_or(i32::MAX),
        Mode::Divided => args.replicas,
    };
    let seen = ready.clone();
    watches.push(tokio::spawn(
        watcher::watcher(
            Api::<Deployment>::namespaced(client.clone(), NAMESPACE),
            watcher::Config::default(),
        )
        .for_each(move |e| {
            if let Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = e
                && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(replicas)
            {
                seen.mark(d.metadata.name.unwrap_or_default());
            }
            async {}
        }),
    ));

    // The namespace (propagated to every cluster) and the policies.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
    let policies: Api<karmada_api::policy::PropagationPolicy> =
        Api::namespaced(client.clone(), NAMESPACE);
    for g in 0..args.clusters {
        policies.create(&PostParams::default(), &serde_json::from_value(policy(g, &args))?).await?;
    }

    // Load: sample the control plane's memory while workloads are created and propagated.
    let cpu_before = cpu_total(&cp.pids());
    let peak = Arc::new(Mutex::new(cp.rss()));
    let sampler = {
        let peak = Arc::clone(&peak);
        let pids = cp.pids();
        tokio::spawn(async move {
            loop {
                let rss: u64 = pids.iter().map(|p| process::rss_bytes(*p)).sum();
                if let Ok(mut p) = peak.lock() {
                    *p = (*p).max(rss);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let created = Seen::default();
    let load_started = Instant::now();
    create_workloads(&client, 0..args.workloads, &args, &created).await?;
    let create_elapsed = load_started.elapsed();
    let expected = expected_objects(&args);
    let all_in_members = {
        let in_member = in_member.clone();
        wait_until("every member object", timeout, move || in_member.len() >= expected).await?;
        load_started.elapsed()
    };
    let all_ready = {
        let ready = ready.clone();
        let n = args.workloads;
        wait_until("every template Ready", timeout, move || ready.len() >= n).await?;
        load_started.elapsed()
    };
    let total = load_started.elapsed();
    sampler.abort();
    let cpu_each: Vec<f64> = cp.pids().iter().map(|p| process::cpu_seconds(*p)).collect();
    let cpu_load: f64 = cpu_each.iter().sum::<f64>() - cpu_before;
    let peak_rss = peak.lock().map(|p| *p).unwrap_or(0);

    // Where the control plane's requests went (to stderr, for whoever tunes it).
    if let Ok(text) = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap_or_default())
        .await
    {
        let mut counts: Vec<(u64, String)> = text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter_map(|l| {
                let (labels, n) = l.rsplit_once(' ')?;
                Some((
                    n.parse().ok()?,
                    labels.trim_start_matches("apiserver_request_total").to_owned(),
                ))
            })
            .collect();
        counts.sort_by(|a, b| b.cmp(a));
        eprintln!("control-plane requests during the run (top 12):");
        for (n, labels) in counts.iter().take(12) {
            eprintln!("  {n:>8} {labels}");
        }
    }

    // Latencies.
    let created_at = created.snapshot();
    let member_at = in_member.snapshot();
    let mut to_member = Samples::default();
    let mut to_status = Samples::default();
    for i in 0..args.workloads {
        let name = format!("app-{i}");
        let Some(c) = created_at.get(&name) else { continue };
        for cluster in targets(i, &args) {
            if let Some(m) = member_at.get(&format!("{cluster}/{name}")) {
                to_member.push(m.saturating_duration_since(*c));
            }
        }
        if let Some(r) = ready.get(&name) {
            to_status.push(r.saturating_duration_since(*c));
        }
    }
    let first = created_at.values().min().copied().unwrap_or(load_started);
    let last_scheduled = scheduled.snapshot().values().max().copied().unwrap_or(first);
    let works = applied.snapshot();
    let last_work = works.values().max().copied().unwrap_or(first);
    let pace = if args.rate > 0.0 { format!(", {}/s", args.rate) } else { String::new() };
    let subject = format!(
        "propagate {}×{} ({:?}, {} replicas, {} clusters each, {}{pace})",
        args.clusters, args.workloads, args.mode, args.replicas, k, args.store
    );
    let s = subject.as_str();
    report.add(s, "workloads created", args.workloads as f64, "deployments");
    report.add(
        s,
        "create rate (Deployment + ConfigMap)",
        args.workloads as f64 / create_elapsed.as_secs_f64(),
        "workloads/s",
    );
    report.add(s, "time until every member object exists", all_in_members.as_secs_f64(), "s");
    report.add(s, "time until every template is Ready", all_ready.as_secs_f64(), "s");
    report.latency(s, "created → object in member", &mut to_member);
    report.latency(s, "created → Ready status on template", &mut to_status);
    report.add(
        s,
        "scheduler decisions/s (first create → last scheduled)",
        scheduled.len() as f64
            / last_scheduled.saturating_duration_since(first).as_secs_f64().max(1e-3),
        "ops/s",
    );
    report.add(s, "Works applied", works.len() as f64, "works");
    report.add(
        s,
        "Works applied/s (first create → last applied)",
        works.len() as f64 / last_work.saturating_duration_since(first).as_secs_f64().max(1e-3),
        "ops/s",
    );
    report.add(
        s,
        "control-plane peak RSS (3 processes)",
        peak_rss as f64 / (1 << 20) as f64,
        "MiB",
    );
    report.add(s, "control-plane CPU during the load", cpu_load, "s");
    for (name, cpu) in ["apiserver", "controller-manager", "scheduler"].iter().zip(&cpu_each) {
        report.add(s, &format!("  of which {name} (since start)"), *cpu, "s");
    }
    report.add(s, "wall time of the load", total.as_secs_f64(), "s");

    // Restart the controller-manager and the scheduler; a template created meanwhile.
    // Let the load's aftermath (status updates still arriving) settle, within bounds, and take
    // the CPU the control plane then uses as its steady state.
    until_idle(&cp.pids(), timeout.min(Duration::from_secs(60)), 0.0).await;
    let baseline = steady_cpu(&cp.pids()).await;
    report.add(
        "controller restart",
        "control plane's steady CPU before the restart",
        baseline * 100.0,
        "% of a core",
    );
    cp.controller_manager.kill();
    cp.scheduler.kill();
    let restarted = Instant::now();
    let (controller_manager, scheduler) = controllers(&kubeconfig_str)?;
    cp.controller_manager = controller_manager;
    cp.scheduler = scheduler;
    let fresh = args.workloads;
    let fresh_args = Args { workloads: fresh + 1, ..args };
    tokio::time::sleep(Duration::from_millis(200)).await;
    create_workloads(&client, fresh..fresh + 1, &fresh_args, &created).await?;
    let fresh_created = created.get(&format!("app-{fresh}")).unwrap_or(restarted);
    // It reaches its first member (a Divided workload need not use every target).
    let fresh_keys: Vec<String> =
        targets(fresh, &fresh_args).iter().map(|c| format!("{c}/app-{fresh}")).collect();
    let first_in_member = {
        let in_member = in_member.clone();
        let keys = fresh_keys.clone();
        let first = move || keys.iter().filter_map(|k| in_member.get(k)).min();
        let probe = first.clone();
        wait_until("the template created during the resync", timeout, move || probe().is_some())
            .await?;
        first().unwrap_or(fresh_created)
    };
    let fresh_latency = first_in_member.saturating_duration_since(fresh_created);
    let since = |t: Option<Instant>| {
        t.map_or(-1.0, |t| t.saturating_duration_since(fresh_created).as_secs_f64() * 1e3)
    };
    let idle = until_idle(&cp.pids(), timeout, baseline).await;
    // The Work's Applied status may follow the member object (its status write is paced).
    let fresh_work = applied
        .snapshot()
        .into_iter()
        .filter(|(k, _)| k.contains(&format!("/app-{fresh}-deployment")))
        .map(|(_, t)| t)
        .min();
    eprintln!(
        "template created during the resync: binding +{:.0} ms, scheduled +{:.0} ms, in member +{:.0} ms, Work Applied +{:.0} ms",
        since(bound.get(&format!("app-{fresh}-deployment"))),
        since(scheduled.get(&format!("app-{fresh}-deployment"))),
        since(Some(first_in_member)),
        since(fresh_work),
    );
    let s = "controller restart";
    report.add(
        s,
        "restart → controllers idle again (resync done)",
        (idle + Duration::from_millis(200)).as_secs_f64(),
        "s",
    );
    report.add(
        s,
        "template created 0.2 s after restart → in member",
        fresh_latency.as_secs_f64() * 1e3,
        "ms",
    );
    report.add(
        s,
        "restart → that template in member",
        first_in_member.saturating_duration_since(restarted).as_secs_f64() * 1e3,
        "ms",
    );
    report.add(
        s,
        "controller-manager RSS after resync",
        cp.controller_manager.rss() as f64 / (1 << 20) as f64,
        "MiB",
    );
    report.add(s, "apiserver RSS", cp.apiserver.rss() as f64 / (1 << 20) as f64, "MiB");

    for w in watches {
        w.abort();
    }
    drop(cp);
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    report.print(fresh_args.json)
}
