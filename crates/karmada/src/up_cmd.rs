//! `karmada up`: a local Karmada in one process — the API server (redb in the data dir), the
//! controller-manager, the scheduler and N simulated members joined in push mode — with every
//! context in one kubeconfig.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use karmada_api::cluster::Cluster;
use kube::api::{Api, ListParams, Patch, PatchParams};
use member::{MemberConfig, SimConfig};
use member_client::Credentials;
use serde_json::json;

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated member clusters to start and join.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// The kubeconfig holding every context (default ~/.kube/karmada.config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Where state lives (default ~/.karmada); a second run reuses it.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The control plane's port (0 picks a free one).
    #[arg(long, default_value_t = 5443)]
    port: u16,
    /// Return once everything is running, leaving it in the background (logs in
    /// DATA_DIR/karmada.log); `karmada down` stops it.
    #[arg(long)]
    detach: bool,
    /// High availability on one machine: a 3-member etcd cluster on loopback (in DATA_DIR/etcd)
    /// instead of redb, two API servers on it (contexts `karmada-apiserver` and
    /// `karmada-apiserver-2`), and two leader-elected controller-managers and schedulers.
    #[arg(long)]
    ha: bool,
    /// The controller-manager's controllers, as `karmada controller-manager --controllers`
    /// (e.g. `*,-binding` to run upstream's binding controller against this control plane).
    /// The default is upstream's install manifests': every default controller plus the two
    /// that let member HPAs own replicas.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "*,hpaScaleTargetMarker,deploymentReplicasSyncer"
    )]
    controllers: Vec<String>,
    /// The dashboard's port on 127.0.0.1 (0 picks a free one); sign in with the token written
    /// to DATA_DIR/dashboard.token. A port in use leaves the rest running without it.
    #[arg(long, default_value_t = 8090)]
    dashboard_port: u16,
    /// Feature gates of every component, as upstream's: the default is what upstream's install
    /// manifests set (every alpha and beta feature on).
    #[arg(long, default_value = karmada_api::features::QUICK_START, value_parser = crate::cli::parse_feature_gates)]
    feature_gates: karmada_api::features::FeatureGates,
}

#[derive(ClapArgs, Debug)]
pub struct DownArgs {
    /// The data dir of the local Karmada to stop (default ~/.karmada).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

const PID_FILE: &str = "karmada.pid";
const STOP_FILE: &str = "karmada.stop";

/// Whether the process recorded in DATA_DIR/karmada.pid is alive.
fn running_pid(data_dir: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(data_dir.join(PID_FILE)).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// Whether `pid` is a live `karmada` process: not gone, not a zombie waiting to be reaped
/// (after a crash), and not another program that got the number since.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`: the state follows the last ')'.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains("karmada"))
        .unwrap_or(false)
}

/// `karmada down`: asks a detached `karmada up` on this data dir to stop, and waits for it.
#[allow(clippy::print_stdout)]
pub async fn down(args: DownArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| home().join(".karmada"));
    let Some(pid) = running_pid(&data_dir) else {
        anyhow::bail!(
            "no local Karmada is running on {} (no live pid in {})",
            data_dir.display(),
            data_dir.join(PID_FILE).display()
        );
    };
    std::fs::write(data_dir.join(STOP_FILE), pid.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "karmada up (pid {pid}) did not stop within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("Local Karmada stopped.");
    Ok(())
}

/// Runs `karmada up` again in the background with the same settings, relays its output until
/// it is running, and returns.
#[allow(clippy::print_stdout)]
fn detach(
    args: &Args,
    data_dir: &std::path::Path,
    kubeconfig: &std::path::Path,
) -> anyhow::Result<()> {
    let (members, port, ha, controllers) = (args.members, args.port, args.ha, &args.controllers);
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    apiserver::files::private_dir(data_dir)?;
    let log = data_dir.join("karmada.log");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["up", "--members", &members.to_string(), "--port", &port.to_string(), "--data-dir"])
        .arg(data_dir)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(ha.then_some("--ha"))
        .arg(format!("--controllers={}", controllers.join(",")))
        .arg(format!("--feature-gates={}", args.feature_gates.changed()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        // Its own process group: Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut out = std::io::stdout().lock();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if line == "Press Ctrl-C to stop." {
            writeln!(
                out,
                "Running in the background (pid {}); logs in {}.",
                child.id(),
                log.display()
            )?;
            writeln!(out, "Stop it with: karmada down --data-dir {}", data_dir.display())?;
            return Ok(());
        }
        writeln!(out, "{line}")?;
    }
    let status = child.wait()?;
    anyhow::bail!("karmada up exited ({status}) before it was running; see {}", log.display())
}

/// The admin credentials of an API server started in this process (a simulated member's).
fn admin_credentials(server: &apiserver::Server) -> Credentials {
    Credentials {
        ca_pem: server.ca_pem.as_bytes().to_vec(),
        token: None,
        cert_pem: Some(server.admin.cert_pem.as_bytes().to_vec()),
        key_pem: Some(server.admin.key_pem.as_bytes().to_vec()),
    }
}

pub(crate) async fn join(
    control: &kube::Client,
    name: &str,
    server: &apiserver::Server,
) -> anyhow::Result<()> {
    join_at(control, name, server, json!({})).await
}

/// Joins a member, with `location` (provider, region, zones) merged into the Cluster's spec.
pub(crate) async fn join_at(
    control: &kube::Client,
    name: &str,
    server: &apiserver::Server,
    location: serde_json::Value,
) -> anyhow::Result<()> {
    let credentials = admin_credentials(server);
    let member =
        member_client::client_for(name, &server.url, &credentials, Duration::from_secs(10)).await?;
    // Upstream's layout: the control plane gets the member's own ServiceAccount token, not
    // the admin credentials used to join.
    member_client::join::join(control, &member, name, &server.url, &credentials.ca_pem, location)
        .await?;
    Ok(())
}

/// A client of the control plane acting as `user` in `groups` (a client certificate from its
/// CA).
/// The descheduler's client: its own identity, among the control plane's components.
async fn descheduler_client(
    data_dir: &std::path::Path,
    server: &apiserver::Server,
) -> anyhow::Result<kube::Client> {
    component_client(
        data_dir,
        server,
        control_plane::access::COMPONENT_DESCHEDULER,
        &[control_plane::access::COMPONENTS_GROUP],
    )
    .await
}

async fn component_client(
    data_dir: &std::path::Path,
    server: &apiserver::Server,
    user: &str,
    groups: &[&str],
) -> anyhow::Result<kube::Client> {
    let authority = apiserver::pki::Authority::load_or_create(&data_dir.join("pki"), "unused")?;
    let identity = authority.client(user, groups)?;
    let credentials = Credentials {
        ca_pem: server.ca_pem.as_bytes().to_vec(),
        token: None,
        cert_pem: Some(identity.cert_pem.into_bytes()),
        key_pem: Some(identity.key_pem.into_bytes()),
    };
    // The components watch: reads must not time out (see `watching_client_for`).
    Ok(member_client::watching_client_for(
        "karmada",
        &server.url,
        &credentials,
        Duration::from_secs(10),
    )
    .await?)
}

/// Registers `member` in Pull mode the way `karmadactl register` would end up: an agent with its
/// own restricted identity (a client certificate from the control plane's CA naming
/// `system:karmada:agent:<name>`), running in this process beside the member.
async fn start_pull_agent(
    data_dir: &std::path::Path,
    server: &apiserver::Server,
    features: &karmada_api::features::FeatureGates,
    member: &member::Member,
    location: &serde_json::Value,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let agent = format!("{}{}", control_plane::access::AGENT_USER_PREFIX, member.name);
    let control =
        component_client(data_dir, server, &agent, &[control_plane::access::AGENT_GROUP]).await?;
    let timeout = Duration::from_secs(10);
    let member_admin = admin_credentials(&member.server);
    let member_client =
        member_client::client_for(&member.name, &member.server.url, &member_admin, timeout).await?;
    let mut config = controllers::agent::AgentConfig::new(&member.name);
    let text =
        |key: &str| location.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    config.provider = text("provider");
    config.region = text("region");
    config.zones = location
        .get("zones")
        .and_then(|z| z.as_array())
        .map(|z| z.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    config.report_interval = Duration::from_secs(2);
    config.controllers = config.controllers.clone().gated(features);
    config.api_endpoint = member.server.url.clone();
    controllers::agent::register(&control, &member_client, &config).await?;
    Ok(tokio::spawn(controllers::agent::run(control, member_client, config)))
}

/// Failover out of the box: a cluster whose Ready condition is False gets
/// `cluster.karmada.io/not-ready:NoExecute`, one whose Ready is Unknown (unreachable) gets
/// `cluster.karmada.io/unreachable:NoExecute`; both are lifted when it is Ready again. Workloads
/// tolerate them for 300 s by default (the policies' `clusterTolerations` say otherwise).
/// The file (in the data dir, the owner's only) holding the dashboard token of the local
/// administrator.
const DASHBOARD_TOKEN: &str = "dashboard.token";
/// The ServiceAccount (in karmada-system, bound to cluster-admin) that token is for.
const DASHBOARD_ADMIN: &str = "karmada-dashboard-admin";

/// Starts the dashboard on 127.0.0.1:`port` and writes a day-long token of a cluster-admin
/// ServiceAccount for the local administrator (whoever may read the data dir, as with the
/// admin kubeconfig) to sign in with. The dashboard itself holds no credentials.
async fn start_dashboard(
    control: &kube::Client,
    server: &apiserver::Server,
    data_dir: &std::path::Path,
    port: u16,
) -> anyhow::Result<dashboard::Dashboard> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::PostParams;
    let accounts: Api<ServiceAccount> = Api::namespaced(control.clone(), "karmada-system");
    let apply = PatchParams::apply("karmada-up").force();
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": DASHBOARD_ADMIN, "namespace": "karmada-system"}});
    accounts.patch(DASHBOARD_ADMIN, &apply, &Patch::Apply(&account)).await?;
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(control.clone());
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": DASHBOARD_ADMIN},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": DASHBOARD_ADMIN, "namespace": "karmada-system"}]});
    bindings.patch(DASHBOARD_ADMIN, &apply, &Patch::Apply(&binding)).await?;
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(86_400), ..Default::default() },
        ..Default::default()
    };
    let token: TokenRequest = accounts
        .create_subresource("token", DASHBOARD_ADMIN, &PostParams::default(), &request)
        .await?;
    let token = token.status.map(|s| s.token).unwrap_or_default();
    apiserver::files::write_private(&data_dir.join(DASHBOARD_TOKEN), token.as_bytes())?;
    let config = dashboard::Config {
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        api_server: server.url.clone(),
        ca_pem: server.ca_pem.clone().into_bytes(),
    };
    Ok(dashboard::start(config).await?)
}

pub(crate) async fn install_default_taint_policies(control: &kube::Client) -> anyhow::Result<()> {
    let resource = controllers::failover::taint_policy_resource();
    let api: Api<kube::api::DynamicObject> = Api::all_with(control.clone(), &resource);
    for (name, status, key) in [
        ("karmada-default-not-ready", "False", "cluster.karmada.io/not-ready"),
        ("karmada-default-unreachable", "Unknown", "cluster.karmada.io/unreachable"),
    ] {
        let policy = json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterTaintPolicy",
            "metadata": {"name": name},
            "spec": {"addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": [status]}],
                "removeOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["True"]}],
                "taints": [{"key": key, "effect": "NoExecute"}]}});
        api.patch(name, &PatchParams::apply("karmada-up").force(), &Patch::Apply(&policy)).await?;
    }
    Ok(())
}

/// A 3-member etcd cluster on loopback with its data in `dir`. The members' ports are chosen
/// on the first start and recorded in `dir/members`, so a restart rejoins the same cluster.
async fn start_etcd_cluster(
    dir: &std::path::Path,
) -> anyhow::Result<(Vec<store_etcd::server::EtcdServer>, store_etcd::EtcdOptions)> {
    use store_etcd::server::{EtcdServer, MemberSpec};
    apiserver::files::private_dir(dir)?;
    let record = dir.join("members");
    let recorded: Option<Vec<MemberSpec>> =
        std::fs::read_to_string(&record).ok().and_then(|text| {
            text.lines()
                .map(|line| {
                    let mut fields = line.split_whitespace();
                    Some(MemberSpec {
                        name: fields.next()?.to_string(),
                        client: fields.next()?.parse().ok()?,
                        peer: fields.next()?.parse().ok()?,
                    })
                })
                .collect()
        });
    let specs = match recorded {
        Some(specs) if specs.len() == 3 => specs,
        _ => {
            let specs = (0..3)
                .map(|i| MemberSpec::on_free_ports(&format!("etcd{i}")))
                .collect::<std::io::Result<Vec<_>>>()?;
            let text: String =
                specs.iter().map(|m| format!("{} {} {}\n", m.name, m.client, m.peer)).collect();
            std::fs::write(&record, text)?;
            specs
        }
    };
    let mut servers = Vec::new();
    for spec in &specs {
        servers.push(EtcdServer::start_member(dir, spec, &specs, None)?);
    }
    for server in &mut servers {
        server.wait_listening(Duration::from_secs(30))?;
    }
    let endpoints: Vec<String> = servers.iter().map(|s| s.client_url.clone()).collect();
    let options = store_etcd::EtcdOptions::new(&endpoints.join(","));
    store_etcd::server::wait_ready(&options, Duration::from_secs(60)).await?;
    Ok((servers, options))
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| home().join(".karmada"));
    let kubeconfig = args.kubeconfig.clone().unwrap_or_else(|| home().join(".kube/karmada.config"));
    let selection = controllers::registry::Selection::parse(
        controllers::registry::CONTROLLERS,
        &args.controllers,
    )
    .map_err(anyhow::Error::msg)?;
    if args.detach {
        return detach(&args, &data_dir, &kubeconfig);
    }
    // Keys, the store and credentials live here: the owner's only.
    apiserver::files::private_dir(&data_dir)?;
    if let Some(pid) = running_pid(&data_dir) {
        anyhow::bail!(
            "a local Karmada is already running on {} (pid {pid}); `karmada down` stops it",
            data_dir.display()
        );
    }
    let _ = std::fs::remove_file(data_dir.join(STOP_FILE));
    let progress = |step: &str| eprintln!("[{:>5.1}s] {step}", started.elapsed().as_secs_f64());

    let mut etcd = Vec::new();
    let mut standby_server = None;
    let store = if args.ha {
        progress("starting a 3-member etcd cluster on loopback");
        let (servers, options) = start_etcd_cluster(&data_dir.join("etcd")).await?;
        etcd = servers;
        // The second API server gets its own connection, as a separate process would.
        let standby: std::sync::Arc<dyn store::Store> =
            std::sync::Arc::new(store_etcd::EtcdStore::connect(options.clone()).await?);
        standby_server = Some(standby);
        std::sync::Arc::new(store_etcd::EtcdStore::connect(options).await?)
    } else {
        crate::apiserver_cmd::open_store("redb", &data_dir, &Default::default()).await?
    };
    // Secrets (member credentials among them) are encrypted at rest with a key of the data dir.
    let key_file = data_dir.join("pki").join("encryption.key");
    apiserver::encryption::ensure_key_file(&key_file)?;
    let store = crate::apiserver_cmd::encrypt_secrets(store, &key_file)?;
    let standby_server = match standby_server {
        Some(s) => Some(crate::apiserver_cmd::encrypt_secrets(s, &key_file)?),
        None => None,
    };
    progress(&format!("feature gates (every component): {}", args.feature_gates.changed()));
    progress("starting the control plane");
    let mut config =
        apiserver::Config::new(&data_dir, SocketAddr::from(([127, 0, 0, 1], args.port)), store);
    config.kubeconfig = Some(kubeconfig.clone());
    control_plane::install(&mut config, &args.feature_gates);
    let server = apiserver::start(config).await?;
    let control = crate::cli::kube_client(&kubeconfig, Some("karmada-apiserver")).await?;
    // With --ha, a second API server on the same etcd (same CA and admin certificate).
    let second = match standby_server {
        Some(store) => {
            let mut config =
                apiserver::Config::new(&data_dir, SocketAddr::from(([127, 0, 0, 1], 0)), store);
            config.kubeconfig = Some(kubeconfig.clone());
            config.context = "karmada-apiserver-2".into();
            control_plane::install(&mut config, &args.feature_gates);
            let server = apiserver::start(config).await?;
            let client = crate::cli::kube_client(&kubeconfig, Some("karmada-apiserver-2")).await?;
            Some((server, client))
        }
        None => None,
    };

    progress(&format!("starting {} simulated member cluster(s)", args.members));
    let configs: Vec<MemberConfig> = (1..=args.members)
        .map(|i| MemberConfig {
            name: format!("member{i}"),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.join("members"),
            kubeconfig: kubeconfig.clone(),
            kubernetes_version: "v1.32.0".into(),
            // One node per member, as upstream's local-up makes single-node kind clusters (a
            // DaemonSet runs once per member), with the capacity of three.
            sim: SimConfig {
                nodes: 1,
                node_cpu_milli: 24_000 * i as i128,
                node_memory: 96 << 30,
                node_pods: 330,
                region: format!("region-{i}"),
                zones: vec![format!("zone-{i}a"), format!("zone-{i}b")],
                provider: "karmada-rs".into(),
                ..SimConfig::default()
            },
        })
        .collect();
    let locations: std::collections::HashMap<String, serde_json::Value> = configs
        .iter()
        .map(|c| {
            let location =
                json!({"provider": c.sim.provider, "region": c.sim.region, "zones": c.sim.zones});
            (c.name.clone(), location)
        })
        .collect();
    let members = member::start_many(configs).await?;

    let settings = controllers::Settings {
        cluster_status_update_frequency: Duration::from_secs(2),
        controllers: selection,
        features: args.feature_gates.clone(),
        ..controllers::Settings::default()
    };
    // As upstream's local-up deploys a scheduler-estimator per member and turns the
    // scheduler's estimator on.
    let scheduler_options = controllers::scheduling::Options {
        plugins: scheduler::Plugins::default(),
        estimator: true,
        features: args.feature_gates.clone(),
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut components = Vec::new();
    if let Some((second_server, _)) = &second {
        progress("starting two leader-elected controller-managers and schedulers");
        // One of each on either API server.
        for api_server in [&server, second_server] {
            let until_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            let manager = component_client(
                &data_dir,
                api_server,
                control_plane::access::COMPONENT_CONTROLLER_MANAGER,
                &[control_plane::access::COMPONENTS_GROUP],
            )
            .await?;
            let (c, settings) = (manager.clone(), settings.clone());
            components.push(tokio::spawn(controllers::leader::run(
                manager,
                controllers::leader::LeaderElection::new("karmada-controller-manager"),
                move || controllers::run(c, settings),
                until_stop(stopping.clone()),
            )));
            let scheduler_client = component_client(
                &data_dir,
                api_server,
                control_plane::access::COMPONENT_SCHEDULER,
                &[control_plane::access::COMPONENTS_GROUP],
            )
            .await?;
            let (c, options) = (scheduler_client.clone(), scheduler_options.clone());
            components.push(tokio::spawn(controllers::leader::run(
                scheduler_client,
                controllers::leader::LeaderElection::new("karmada-scheduler"),
                move || controllers::scheduling::run_with(c, options.clone()),
                until_stop(stopping.clone()),
            )));
            let descheduler_client = descheduler_client(&data_dir, api_server).await?;
            let c = descheduler_client.clone();
            components.push(tokio::spawn(controllers::leader::run(
                descheduler_client,
                controllers::leader::LeaderElection::new("karmada-descheduler"),
                move || controllers::descheduler::run(c, Default::default()),
                until_stop(stopping.clone()),
            )));
        }
    } else {
        progress("starting the controller-manager, the scheduler and the descheduler");
        let manager = component_client(
            &data_dir,
            &server,
            control_plane::access::COMPONENT_CONTROLLER_MANAGER,
            &[control_plane::access::COMPONENTS_GROUP],
        )
        .await?;
        let scheduler_client = component_client(
            &data_dir,
            &server,
            control_plane::access::COMPONENT_SCHEDULER,
            &[control_plane::access::COMPONENTS_GROUP],
        )
        .await?;
        components.push(tokio::spawn(controllers::run(manager, settings)));
        components.push(tokio::spawn(controllers::scheduling::run_with(
            scheduler_client,
            scheduler_options,
        )));
        let descheduler_client = descheduler_client(&data_dir, &server).await?;
        components.push(tokio::spawn(controllers::descheduler::run(
            descheduler_client,
            Default::default(),
        )));
    }

    progress("installing the default ClusterTaintPolicies (failover)");
    install_default_taint_policies(&control).await?;

    progress(if members.len() >= 3 {
        "joining the members (member3 in pull mode with its agent, the others in push mode)"
    } else {
        "joining the members (push mode)"
    });
    let mut agents = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let location = locations.get(&m.name).cloned().unwrap_or_else(|| json!({}));
        if i == 2 {
            agents.push(
                start_pull_agent(&data_dir, &server, &args.feature_gates, m, &location).await?,
            );
        } else {
            join_at(&control, &m.name, &m.server, location).await?;
        }
    }
    let clusters: Api<Cluster> = Api::all(control.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = clusters.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|c| {
                c.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready >= members.len() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {} clusters became Ready within 60 s",
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress("every cluster is Ready");
    let dashboard = start_dashboard(&control, &server, &data_dir, args.dashboard_port).await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Local Karmada is running.")?;
    writeln!(out)?;
    writeln!(out, "Kubeconfig: {}", kubeconfig.display())?;
    writeln!(out, "  export KUBECONFIG={}", kubeconfig.display())?;
    writeln!(out)?;
    writeln!(out, "{:<20} SERVER", "CONTEXT")?;
    writeln!(out, "{:<20} {}", "karmada-apiserver", server.url)?;
    if let Some((second, _)) = &second {
        writeln!(out, "{:<20} {}", "karmada-apiserver-2", second.url)?;
    }
    for m in &members {
        writeln!(out, "{:<20} {}", m.name, m.url())?;
    }
    writeln!(out)?;
    match &dashboard {
        Ok(d) => writeln!(
            out,
            "Dashboard: {} (sign in with the token in {})",
            d.url(),
            data_dir.join(DASHBOARD_TOKEN).display()
        )?,
        Err(e) => writeln!(out, "Dashboard: not started ({e:#})")?,
    }
    writeln!(out)?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    drop(out);
    std::fs::write(data_dir.join(PID_FILE), std::process::id().to_string())?;
    let stop_file = data_dir.join(STOP_FILE);
    let stop_requested = async {
        while !stop_file.exists() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = crate::cli::wait_for_signal() => {}
        () = stop_requested => {}
    }
    progress("stopping");
    // Leader-elected components release their Leases; the others just stop.
    let _ = stop.send(true);
    if second.is_some() {
        let releasing = futures::future::join_all(components.iter_mut());
        let _ = tokio::time::timeout(Duration::from_secs(2), releasing).await;
    }
    for component in &components {
        component.abort();
    }
    for agent in &agents {
        agent.abort();
    }
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    if let Some((second, _)) = second {
        second.shutdown().await;
    }
    server.shutdown().await;
    drop(etcd);
    let _ = std::fs::remove_file(data_dir.join(PID_FILE));
    let _ = std::fs::remove_file(data_dir.join(STOP_FILE));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Before: a crashed `karmada up` left a zombie for ~1 s, and its pid counted as running.
    #[test]
    fn zombies_and_strangers_are_not_running() {
        assert!(alive(std::process::id()), "this test binary is a karmada process");
        // A child that exits and is not reaped yet is a zombie.
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')) {
                break;
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "a zombie is not running");
        drop(child);
        // pid 1 exists, and is not karmada.
        assert!(!alive(1));
    }
}
