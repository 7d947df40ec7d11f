//! `karmada bench propagate`: the whole pipeline at scale. By default the control plane runs
//! as child processes (apiserver, controller-manager, scheduler — measured apart) and N
//! simulated members run in this process; with `--control-plane` and `--members` the same load
//! runs against a control plane and members that are already running (any Karmada: ours, or
//! upstream's components), measuring the processes named by `--pid` and reading only what any
//! client may read (the API, and the API server's `/metrics` when it serves them). M
//! Deployments, each with a ConfigMap it mounts (propagated with `propagateDeps`), are spread by
//! N policies over K clusters each. Reported: time until every member object exists and every
//! template shows its replicas Ready, latency percentiles (template created → object in a
//! member; → aggregated status Ready on the template), scheduler decisions/s, Works applied/s,
//! control-plane writes per workload, peak memory and CPU, and (own control plane only) a
//! restart of the controller-manager and scheduler (time until they are idle again, and how
//! long a template created during that resync takes to reach its member).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
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
    /// Member clusters: simulated ones started for the run (default 10), or, with
    /// `--control-plane`, the first N Ready clusters that `--members` has a context for
    /// (default all of them).
    #[arg(long)]
    clusters: Option<usize>,
    /// Run against this already running control plane (a kubeconfig) instead of starting one:
    /// needs `--members`; nothing is restarted, and the `bench` namespace it creates is deleted
    /// at the end.
    #[arg(long, requires = "members")]
    control_plane: Option<std::path::PathBuf>,
    /// The context of `--control-plane` to use (default: its current context).
    #[arg(long, requires = "control_plane")]
    control_plane_context: Option<String>,
    /// A kubeconfig with a context named after each member cluster (e.g. `karmada up`'s):
    /// where the bench watches the propagated objects arrive.
    #[arg(long, requires = "control_plane")]
    members: Option<std::path::PathBuf>,
    /// A process to measure (CPU and peak RSS), as NAME=PID; repeat for each component. Only
    /// with `--control-plane` (the bench measures its own children otherwise).
    #[arg(long = "pid", value_name = "NAME=PID", value_parser = parse_pid, requires = "control_plane")]
    pids: Vec<(String, u32)>,
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
    /// What the report calls this run (default: the store, or "external control plane").
    #[arg(long)]
    label: Option<String>,
    #[arg(long)]
    json: bool,
}

const NAMESPACE: &str = "bench";

fn parse_pid(value: &str) -> Result<(String, u32), String> {
    let (name, pid) = value.split_once('=').ok_or("expected NAME=PID, e.g. scheduler=4242")?;
    let pid: u32 = pid.parse().map_err(|_| format!("{pid:?} is not a process id"))?;
    if name.is_empty() {
        return Err("the process needs a name (NAME=PID)".into());
    }
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!("no process {pid} on this machine"));
    }
    Ok((name.to_owned(), pid))
}

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

/// The control-plane components the bench started, as processes.
struct ControlPlane {
    apiserver: Proc,
    controller_manager: Proc,
    scheduler: Proc,
}

impl ControlPlane {
    fn processes(&self) -> Vec<(String, u32)> {
        vec![
            ("apiserver".into(), self.apiserver.pid()),
            ("controller-manager".into(), self.controller_manager.pid()),
            ("scheduler".into(), self.scheduler.pid()),
        ]
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

/// What is created, and where it should land: the workloads over the named clusters.
struct Load<'a> {
    args: &'a Args,
    clusters: Vec<String>,
}

impl Load<'_> {
    fn policy(&self, group: usize) -> serde_json::Value {
        let names = self.group_clusters(group);
        let scheduling = match self.args.mode {
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

    fn workload(&self, i: usize) -> anyhow::Result<(ConfigMap, Deployment)> {
        let name = format!("app-{i}");
        let group = i % self.clusters.len();
        let cm = serde_json::from_value(json!({"metadata": {"name": format!("{name}-config")},
            "data": {"index": i.to_string()}}))?;
        let deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"bench-group": group.to_string()}},
            "spec": {"replicas": self.args.replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {
                    "containers": [{"name": "app", "image": "nginx",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]}],
                    "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}}]}}}}))?;
        Ok((cm, deployment))
    }

    /// Clusters each workload is placed on.
    fn per_workload(&self) -> usize {
        self.args.clusters_per_workload.min(self.clusters.len())
    }

    /// The clusters of policy group `group`: K consecutive clusters, wrapping around.
    fn group_clusters(&self, group: usize) -> Vec<String> {
        let n = self.clusters.len();
        (0..self.per_workload()).map(|k| self.clusters[(group + k) % n].clone()).collect()
    }

    /// Target clusters of workload `i`.
    fn targets(&self, i: usize) -> Vec<String> {
        self.group_clusters(i % self.clusters.len())
    }

    /// Member objects expected: clusters that actually get a share (a Divided workload with
    /// fewer replicas than clusters leaves some out), for `workloads` workloads.
    fn expected_objects(&self, workloads: usize) -> usize {
        let k = self.per_workload();
        let per = match self.args.mode {
            Mode::Duplicated => k,
            Mode::Divided => k.min(usize::try_from(self.args.replicas.max(0)).unwrap_or(0)),
        };
        per * workloads
    }
}

async fn create_workloads(
    client: &kube::Client,
    range: std::ops::Range<usize>,
    load: &Load<'_>,
    created: &Seen,
) -> anyhow::Result<()> {
    let args = load.args;
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
            .map(|i| load.workload(i).map(|(c, d)| (i, c, d)))
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

/// The control plane and members a run loads.
struct Setup {
    client: kube::Client,
    /// The clusters the workloads are spread over, in order.
    clusters: Vec<String>,
    /// A client of each of those members.
    members: Vec<(String, kube::Client)>,
    /// The processes measured, by name.
    measured: Vec<(String, u32)>,
    /// What the bench started itself (restarted in the second phase, stopped at the end).
    own: Option<Own>,
}

struct Own {
    cp: ControlPlane,
    kubeconfig: String,
    members: Vec<member::Member>,
    _etcd: Option<store_etcd::server::EtcdServer>,
    _dir: tempfile::TempDir,
}

/// Starts the control plane (child processes) and simulated members (in this process).
async fn own_setup(args: &Args) -> anyhow::Result<Setup> {
    let n = args.clusters.unwrap_or(10);
    anyhow::ensure!(n > 0, "--clusters must be > 0");
    let dir = tempfile::tempdir()?;
    let (store, etcd) = process::store_spec(&args.store, dir.path()).await?;
    let (apiserver, kubeconfig) = process::apiserver(&store, &dir.path().join("control-plane"))?;
    let kubeconfig_str = kubeconfig.to_str().unwrap_or_default().to_owned();
    let client = crate::cli::kube_client(&kubeconfig, None).await?;

    // Members, sized for their share of pods.
    let k = args.clusters_per_workload.min(n);
    let pods_total = match args.mode {
        Mode::Duplicated => args.workloads * k * args.replicas.max(0) as usize,
        Mode::Divided => args.workloads * args.replicas.max(0) as usize,
    };
    let per_cluster = pods_total * 3 / (2 * n) + 10;
    let node_pods = 500;
    let nodes = per_cluster.div_ceil(node_pods).max(1);
    let members_config = dir.path().join("members.config");
    let configs: Vec<MemberConfig> = (1..=n)
        .map(|i| MemberConfig {
            name: format!("member{i}"),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("members"),
            kubeconfig: members_config.clone(),
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
    let cp = ControlPlane { apiserver, controller_manager, scheduler };
    for m in &members {
        crate::up_cmd::join(&client, &m.name, &m.server).await?;
    }
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let started = Instant::now();
    loop {
        let ready = ready_clusters(&client).await?;
        if names.iter().all(|n| ready.contains(n)) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "clusters did not become Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut member_clients = Vec::new();
    for name in &names {
        member_clients
            .push((name.clone(), crate::cli::kube_client(&members_config, Some(name)).await?));
    }
    Ok(Setup {
        client,
        clusters: names,
        members: member_clients,
        measured: cp.processes(),
        own: Some(Own { cp, kubeconfig: kubeconfig_str, members, _etcd: etcd, _dir: dir }),
    })
}

/// A control plane and members that are already running: the Ready clusters `--members` has
/// a context for.
async fn external_setup(args: &Args, control_plane: &std::path::Path) -> anyhow::Result<Setup> {
    let members_path = args.members.as_deref().context("--control-plane needs --members")?;
    let client = crate::cli::kube_client(control_plane, args.control_plane_context.as_deref())
        .await
        .with_context(|| format!("reaching the control plane of {}", control_plane.display()))?;
    let contexts: std::collections::HashSet<String> =
        kube::config::Kubeconfig::read_from(members_path)
            .with_context(|| format!("reading {}", members_path.display()))?
            .contexts
            .into_iter()
            .map(|c| c.name)
            .collect();
    let ready = ready_clusters(&client).await?;
    let mut usable: Vec<String> = ready.into_iter().filter(|c| contexts.contains(c)).collect();
    usable.sort_by_key(|name| natural_key(name));
    anyhow::ensure!(
        !usable.is_empty(),
        "no Ready cluster of the control plane has a context in {}",
        members_path.display()
    );
    if let Some(n) = args.clusters {
        anyhow::ensure!(
            n > 0 && n <= usable.len(),
            "--clusters {n}: {} Ready clusters have a context in {}",
            usable.len(),
            members_path.display()
        );
        usable.truncate(n);
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    anyhow::ensure!(
        namespaces.get_opt(NAMESPACE).await?.is_none(),
        "the namespace {NAMESPACE:?} exists on the control plane (left by an earlier run?); \
         delete it first: the bench creates and deletes it"
    );
    let mut members = Vec::new();
    for name in &usable {
        let member = crate::cli::kube_client(members_path, Some(name))
            .await
            .with_context(|| format!("reaching member {name}"))?;
        members.push((name.clone(), member));
    }
    Ok(Setup { client, clusters: usable, members, measured: args.pids.clone(), own: None })
}

/// Orders `member2` before `member10`.
fn natural_key(name: &str) -> (String, u64, String) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_owned(), number.parse().unwrap_or(0), name.to_owned())
}

/// Names of the clusters whose Ready condition is True.
async fn ready_clusters(client: &kube::Client) -> anyhow::Result<Vec<String>> {
    let clusters: Api<Cluster> = Api::all(client.clone());
    Ok(clusters
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .filter_map(|c| c.metadata.name)
        .collect())
}

/// The API server's request counters (`apiserver_request_total`, as Kubernetes' API server
/// and ours serve them at `/metrics`) by their labels, or None when it does not serve them.
async fn request_counts(client: &kube::Client) -> Option<BTreeMap<String, f64>> {
    let text =
        client.request_text(http::Request::get("/metrics").body(Vec::new()).ok()?).await.ok()?;
    Some(parse_request_counts(&text))
}

fn parse_request_counts(text: &str) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else { continue };
        let Some((labels, n)) = rest.rsplit_once("} ") else { continue };
        let Ok(n) = n.trim().parse::<f64>() else { continue };
        *counts.entry(request_key(labels)).or_insert(0.0) += n;
    }
    counts
}

/// `verb resource[/subresource]` from a counter's labels (codes and the rest summed).
fn request_key(labels: &str) -> String {
    let label = |name: &str| {
        labels.split(',').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    let verb = label("verb").unwrap_or_default().to_ascii_lowercase();
    let mut resource = label("resource").unwrap_or_default();
    if let Some(sub) = label("subresource").filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    format!("{verb} {resource}")
}

/// Whether a counter's verb writes (RBAC verbs as ours counts them, HTTP-style as
/// Kubernetes' does).
fn is_write(key: &str) -> bool {
    let verb = key.split(' ').next().unwrap_or_default();
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection" | "post" | "put" | "apply"
    )
}

/// The requests made between two readings of the counters, most first.
fn requests_between(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    let mut diff: Vec<(String, f64)> = after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect();
    diff.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    diff
}

/// Deletes what the run created on an external control plane (the namespace, and with it the
/// templates, policies and, through Karmada, the member objects), waiting a bounded time.
async fn clean_up(client: &kube::Client, timeout: Duration) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Err(e) = namespaces.delete(NAMESPACE, &kube::api::DeleteParams::default()).await {
        eprintln!("cleaning up: deleting the namespace {NAMESPACE:?} failed: {e}");
        return;
    }
    let started = Instant::now();
    while started.elapsed() < timeout {
        if matches!(namespaces.get_opt(NAMESPACE).await, Ok(None)) {
            eprintln!("cleaned up: namespace {NAMESPACE:?} deleted in {:.1?}", started.elapsed());
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("cleaning up: the namespace {NAMESPACE:?} is still terminating after {timeout:?}");
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.workloads > 0, "--workloads must be > 0");
    let mut setup = match &args.control_plane {
        None => own_setup(&args).await?,
        Some(path) => external_setup(&args, path).await?,
    };
    let result = load_and_measure(&args, &mut setup).await;
    if setup.own.is_none() {
        clean_up(&setup.client, Duration::from_secs(args.timeout.min(120))).await;
    }
    if let Some(own) = setup.own.take() {
        drop(own.cp);
        futures::future::join_all(own.members.into_iter().map(member::Member::shutdown)).await;
    }
    result?.print(args.json)
}

async fn load_and_measure(args: &Args, setup: &mut Setup) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let timeout = Duration::from_secs(args.timeout);
    let client = setup.client.clone();
    let load = Load { args, clusters: setup.clusters.clone() };
    let n = load.clusters.len();
    let k = load.per_workload();
    eprintln!(
        "{n} clusters Ready ({}); creating {} workloads",
        load.clusters.join(", "),
        args.workloads
    );

    // Observers: member objects, bindings scheduled, Works applied, template status.
    let in_member = Seen::default();
    let bound = Seen::default();
    let scheduled = Seen::default();
    let applied = Seen::default();
    let written = Seen::default();
    let ready = Seen::default();
    let mut watches = Vec::new();
    for (cluster, member_client) in &setup.members {
        let (seen, cluster) = (in_member.clone(), cluster.clone());
        watches.push(tokio::spawn(
            watcher::watcher(
                Api::<Deployment>::namespaced(member_client.clone(), NAMESPACE),
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
    let (seen, written_seen) = (applied.clone(), written.clone());
    watches.push(tokio::spawn(
        watcher::watcher(Api::<Work>::all(client.clone()), watcher::Config::default()).for_each(
            move |e| {
                if let Ok(watcher::Event::Apply(w) | watcher::Event::InitApply(w)) = e
                    // A binding's Work of this run (on a shared control plane there are others).
                    && w.metadata.annotations.as_ref().is_some_and(|a| {
                        a.get(karmada_api::names::RB_NAMESPACE_ANNOTATION).map(String::as_str)
                            == Some(NAMESPACE)
                    })
                {
                    let key = format!(
                        "{}/{}",
                        w.metadata.namespace.as_deref().unwrap_or_default(),
                        w.metadata.name.as_deref().unwrap_or_default()
                    );
                    if w.status.as_ref().is_some_and(|s| {
                        s.conditions.iter().any(|c| c.type_ == "Applied" && c.status == "True")
                    }) {
                        seen.mark(key.clone());
                    }
                    written_seen.mark(key);
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
    let _stop_watches = AbortOnDrop(watches);

    // The namespace (propagated to every cluster) and the policies.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
    let policies: Api<karmada_api::policy::PropagationPolicy> =
        Api::namespaced(client.clone(), NAMESPACE);
    for g in 0..n {
        policies.create(&PostParams::default(), &serde_json::from_value(load.policy(g))?).await?;
    }

    // Load: sample the measured processes' memory while workloads are created and propagated.
    let pids: Vec<u32> = setup.measured.iter().map(|(_, p)| *p).collect();
    let cpu_before: Vec<f64> = pids.iter().map(|p| process::cpu_seconds(*p)).collect();
    let requests_before = request_counts(&client).await;
    let peak = Arc::new(Mutex::new(0u64));
    let sampler = {
        let peak = Arc::clone(&peak);
        let pids = pids.clone();
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
    create_workloads(&client, 0..args.workloads, &load, &created).await?;
    let create_elapsed = load_started.elapsed();
    let expected = load.expected_objects(args.workloads);
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
    let cpu_each: Vec<f64> =
        pids.iter().zip(&cpu_before).map(|(p, before)| process::cpu_seconds(*p) - before).collect();
    let cpu_load: f64 = cpu_each.iter().sum();
    let peak_rss = peak.lock().map(|p| *p).unwrap_or(0);

    // Where the control plane's requests went (to stderr, for whoever tunes it).
    let requests = match (requests_before, request_counts(&client).await) {
        (Some(before), Some(after)) => Some(requests_between(&before, &after)),
        _ => None,
    };
    let per_workload = |n: f64| n / args.workloads as f64;
    if let Some(requests) = &requests {
        eprintln!("control-plane requests during the load (top 16; per workload):");
        for (key, n) in requests.iter().take(16) {
            eprintln!("  {n:>8} {:>6.2} {key}", per_workload(*n));
        }
    } else {
        eprintln!("the control plane's API server serves no request counters at /metrics");
    }

    // Latencies.
    let created_at = created.snapshot();
    let member_at = in_member.snapshot();
    let mut to_member = Samples::default();
    let mut to_status = Samples::default();
    for i in 0..args.workloads {
        let name = format!("app-{i}");
        let Some(c) = created_at.get(&name) else { continue };
        for cluster in load.targets(i) {
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
    let against = match (&args.label, setup.own.is_some()) {
        (Some(label), _) => label.clone(),
        (None, true) => args.store.clone(),
        (None, false) => "external control plane".into(),
    };
    let subject = format!(
        "propagate {}×{} ({:?}, {} replicas, {} clusters each, {against}{pace})",
        n, args.workloads, args.mode, args.replicas, k
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
    if let Some(requests) = &requests {
        let writes: f64 = requests.iter().filter(|(k, _)| is_write(k)).map(|(_, n)| n).sum();
        let all: f64 = requests.iter().map(|(_, n)| n).sum();
        report.add(s, "control-plane writes per workload", per_workload(writes), "requests");
        report.add(s, "control-plane requests per workload", per_workload(all), "requests");
    }
    if !pids.is_empty() {
        report.add(
            s,
            &format!("control-plane peak RSS ({} processes)", pids.len()),
            peak_rss as f64 / (1 << 20) as f64,
            "MiB",
        );
        report.add(s, "control-plane CPU during the load", cpu_load, "s");
        report.add(
            s,
            "control-plane CPU per workload",
            cpu_load * 1e3 / args.workloads as f64,
            "ms",
        );
        for ((name, _), cpu) in setup.measured.iter().zip(&cpu_each) {
            report.add(s, &format!("  of which {name}"), *cpu, "s");
        }
    }
    report.add(s, "wall time of the load", total.as_secs_f64(), "s");

    if let Some(own) = setup.own.as_mut() {
        restart(
            args,
            &load,
            own,
            &client,
            &created,
            &Observed { in_member, bound, scheduled, written, applied },
            &mut report,
        )
        .await?;
    } else {
        eprintln!("(no controller restart: the bench did not start this control plane)");
    }
    Ok(report)
}

/// Stops the watch tasks however the run ends.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// What the watches saw, for the restart phase.
struct Observed {
    in_member: Seen,
    bound: Seen,
    scheduled: Seen,
    /// Works of the run, when first seen (written by the binding controller).
    written: Seen,
    applied: Seen,
}

/// Restarts the controller-manager and the scheduler; a template is created meanwhile.
async fn restart(
    args: &Args,
    load: &Load<'_>,
    own: &mut Own,
    client: &kube::Client,
    created: &Seen,
    seen: &Observed,
    report: &mut Report,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    let pids = |own: &Own| own.cp.processes().into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    // Let the load's aftermath (status updates still arriving) settle, within bounds, and take
    // the CPU the control plane then uses as its steady state.
    until_idle(&pids(own), timeout.min(Duration::from_secs(60)), 0.0).await;
    let baseline = steady_cpu(&pids(own)).await;
    report.add(
        "controller restart",
        "control plane's steady CPU before the restart",
        baseline * 100.0,
        "% of a core",
    );
    own.cp.controller_manager.kill();
    own.cp.scheduler.kill();
    let restarted = Instant::now();
    let (controller_manager, scheduler) = controllers(&own.kubeconfig)?;
    own.cp.controller_manager = controller_manager;
    own.cp.scheduler = scheduler;
    let fresh = args.workloads;
    tokio::time::sleep(Duration::from_millis(200)).await;
    create_workloads(client, fresh..fresh + 1, load, created).await?;
    let fresh_created = created.get(&format!("app-{fresh}")).unwrap_or(restarted);
    // It reaches its first member (a Divided workload need not use every target).
    let fresh_keys: Vec<String> =
        load.targets(fresh).iter().map(|c| format!("{c}/app-{fresh}")).collect();
    let first_in_member = {
        let in_member = seen.in_member.clone();
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
    let idle = until_idle(&pids(own), timeout, baseline).await;
    // The Work's Applied status may follow the member object (its status write is paced).
    let fresh_work = format!(
        "/{}",
        karmada_api::names::work_name("Deployment", &format!("app-{fresh}"), NAMESPACE)
    );
    let first = |seen: &Seen| {
        seen.snapshot().into_iter().filter(|(k, _)| k.ends_with(&fresh_work)).map(|(_, t)| t).min()
    };
    eprintln!(
        "template created during the resync: binding +{:.0} ms, scheduled +{:.0} ms, Work written +{:.0} ms, in member +{:.0} ms, Work Applied +{:.0} ms",
        since(seen.bound.get(&format!("app-{fresh}-deployment"))),
        since(seen.scheduled.get(&format!("app-{fresh}-deployment"))),
        since(first(&seen.written)),
        since(Some(first_in_member)),
        since(first(&seen.applied)),
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
        own.cp.controller_manager.rss() as f64 / (1 << 20) as f64,
        "MiB",
    );
    report.add(s, "apiserver RSS", own.cp.apiserver.rss() as f64 / (1 << 20) as f64, "MiB");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counters_of_either_api_server_are_read_by_verb_and_resource() {
        let ours = "# TYPE apiserver_request_total counter
apiserver_request_total{verb=\"patch\",resource=\"works/status\",code=\"200\"} 12
apiserver_request_total{verb=\"patch\",resource=\"works/status\",code=\"409\"} 3
apiserver_request_total{verb=\"get\",resource=\"clusters\",code=\"200\"} 7
apiserver_request_duration_seconds_bucket{verb=\"get\",resource=\"clusters\",le=\"0.1\"} 7
";
        let counts = parse_request_counts(ours);
        assert_eq!(counts.get("patch works/status"), Some(&15.0));
        assert_eq!(counts.get("get clusters"), Some(&7.0));
        assert_eq!(counts.len(), 2);
        let kubernetes = "apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"work.karmada.io\",resource=\"works\",scope=\"resource\",subresource=\"status\",verb=\"APPLY\",version=\"v1alpha1\"} 4
apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 2
";
        let counts = parse_request_counts(kubernetes);
        assert_eq!(counts.get("apply works/status"), Some(&4.0));
        assert_eq!(counts.get("post configmaps"), Some(&2.0));
        assert!(is_write("apply works/status") && is_write("post configmaps"));
        assert!(is_write("patch works/status") && !is_write("get clusters"));
        assert!(!is_write("watch works") && !is_write("list works"));
    }

    #[test]
    fn requests_between_two_readings_are_the_increase_most_first() {
        let before = BTreeMap::from([("get a".to_owned(), 5.0), ("patch b".to_owned(), 1.0)]);
        let after = BTreeMap::from([
            ("get a".to_owned(), 5.0),
            ("patch b".to_owned(), 4.0),
            ("create c".to_owned(), 9.0),
        ]);
        assert_eq!(
            requests_between(&before, &after),
            vec![("create c".to_owned(), 9.0), ("patch b".to_owned(), 3.0)]
        );
    }

    #[test]
    fn clusters_are_ordered_by_their_number() {
        let mut names = vec!["member10", "member2", "edge", "member1"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["edge", "member1", "member2", "member10"]);
    }

    #[test]
    fn workloads_go_to_consecutive_named_clusters() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::parse_from(["bench", "--replicas", "2", "--clusters-per-workload", "3"]);
        let load =
            Load { args: &cli.args, clusters: ["a", "b", "c", "d"].map(str::to_owned).to_vec() };
        assert_eq!(load.targets(0), ["a", "b", "c"]);
        assert_eq!(load.targets(3), ["d", "a", "b"]);
        assert_eq!(load.targets(5), ["b", "c", "d"]);
        // Two replicas divided over three clusters use two of them.
        assert_eq!(load.expected_objects(10), 20);
        assert_eq!(
            load.policy(3)["spec"]["placement"]["clusterAffinity"]["clusterNames"],
            json!(["d", "a", "b"])
        );
    }

    #[test]
    fn an_external_run_needs_members_and_pids_need_an_external_run() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        assert!(Cli::try_parse_from(["bench", "--control-plane", "cp.config"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--pid", "x=1"]).is_err());
        let pid = format!("scheduler={}", std::process::id());
        let cli = Cli::try_parse_from([
            "bench",
            "--control-plane",
            "cp.config",
            "--members",
            "m.config",
            "--pid",
            &pid,
        ])
        .unwrap();
        assert_eq!(cli.args.pids, [("scheduler".to_owned(), std::process::id())]);
        let bad = Cli::try_parse_from([
            "bench",
            "--control-plane",
            "c",
            "--members",
            "m",
            "--pid",
            "scheduler",
        ]);
        assert!(bad.unwrap_err().to_string().contains("NAME=PID"));
    }
}
