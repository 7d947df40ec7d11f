//! `karmadactl`: the operator CLI (same verbs and flags as upstream karmadactl where they apply).

#![allow(clippy::print_stdout)] // a CLI: stdout is its output

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use karmada_api::cluster::{Cluster, Taint, TaintEffect};
use karmada_api::names::{CLUSTER_NAMESPACE, execution_namespace};
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use member_client::{Credentials, client_for};
use serde_json::{Value, json};

mod init;
mod interpret;
mod multi;
mod objects;
mod register;

/// Where `karmadactl init` installs (upstream's default).
const INSTALL_NAMESPACE: &str = "karmada-system";

#[derive(Parser, Debug)]
#[command(name = "karmadactl", version, about = "karmadactl controls a karmada-rs control plane")]
struct Cli {
    /// Path to the control plane's kubeconfig (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The context of the control plane in the kubeconfig (default: its current context).
    #[arg(long, global = true)]
    karmada_context: Option<String>,
    /// Namespace for namespaced operations (default: `default`; for init and deinit, the
    /// control plane's namespace on the host cluster, `karmada-system`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register a cluster with the control plane in Push mode.
    Join(JoinArgs),
    /// Remove a cluster from the control plane. By default what Karmada propagated to it is
    /// removed from the member too (as upstream); --keep-resources leaves it there, detached.
    Unjoin(UnjoinArgs),
    /// Mark a cluster unschedulable (taint cluster.karmada.io/unschedulable:NoSchedule).
    Cordon { name: String },
    /// Mark a cluster schedulable again.
    Uncordon { name: String },
    /// Add (KEY[=VALUE]:EFFECT) or remove (KEY[:EFFECT]-) taints: `taint clusters NAME ...`.
    Taint {
        /// Always `clusters`.
        resource: String,
        name: String,
        taints: Vec<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// Show resources of any kind, in the control plane and (--operation-scope members|all) in
    /// member clusters, with the cluster each is in.
    Get(multi::GetArgs),
    /// Show details of objects (and their Events), in the control plane or a member.
    Describe(objects::DescribeArgs),
    /// Print a container's logs (in a member: --operation-scope members --cluster NAME).
    Logs(objects::LogsArgs),
    /// Run a command in a container.
    Exec(objects::ExecArgs),
    /// Attach to a container's output (and input).
    Attach(objects::AttachArgs),
    /// CPU and memory of pods or nodes (from the clusters' metrics API).
    Top(objects::TopArgs),
    /// Adopt an object that exists in a member cluster: create it as a resource template in
    /// the control plane, with a policy that propagates it back to that cluster and takes
    /// the member's copy over without restarting it.
    Promote(objects::PromoteArgs),
    /// Set (KEY=VALUE) or remove (KEY-) labels.
    Label(objects::MetadataArgs),
    /// Set (KEY=VALUE) or remove (KEY-) annotations.
    Annotate(objects::MetadataArgs),
    /// Patch an object (strategic merge, merge or JSON patch).
    Patch(objects::PatchArgs),
    /// Delete objects by kind and name.
    Delete(objects::DeleteArgs),
    /// Apply manifests (server-side); --all-clusters also propagates each object to every
    /// member cluster.
    Apply(objects::ApplyArgs),
    /// Create objects from manifests.
    Create(objects::ApplyArgs),
    /// The kinds a cluster serves.
    ApiResources(multi::ApiResourcesArgs),
    /// Edit an object in your editor and write back the change.
    Edit(objects::EditArgs),
    /// Documentation of a kind or one of its fields (`deployment.spec.replicas`).
    Explain(objects::ExplainArgs),
    /// The client's and the control plane's versions.
    Version,
    /// Shell completion script (bash, zsh, fish, powershell, elvish).
    Completion { shell: clap_complete::Shell },
    /// The flags every command takes.
    Options,
    /// Bootstrap tokens for registering Pull-mode clusters: `karmadactl token create`.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Register this member cluster in Pull mode with a bootstrap token (run where the member
    /// is; the control plane need not reach it).
    Register(register::RegisterArgs),
    /// Remove a Pull-mode cluster, even when its agent is gone.
    Unregister(register::UnregisterArgs),
    /// Install the control plane on the host cluster of --kubeconfig/--context (or print its
    /// manifests with --dry-run); writes the control plane's kubeconfig and prints how to join
    /// clusters.
    Init(Box<init::InitArgs>),
    /// Remove what `karmadactl init` installed from the host cluster.
    Deinit(init::DeinitArgs),
    /// Validate and test resource interpreter customizations before applying them: `--check`
    /// them, or run one `--operation` on given objects.
    Interpret(interpret::InterpretArgs),
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Create a bootstrap token (prints it, or the whole register command).
    Create(register::TokenCreateArgs),
    /// List bootstrap tokens.
    List,
    /// Delete bootstrap tokens (ID.SECRET or ID).
    Delete { tokens: Vec<String> },
}

#[derive(clap::Args, Debug)]
struct JoinArgs {
    /// The name the cluster gets in the control plane.
    name: String,
    /// Kubeconfig of the member cluster.
    #[arg(long)]
    cluster_kubeconfig: PathBuf,
    /// Context of the member in that kubeconfig (default: its current context).
    #[arg(long)]
    cluster_context: Option<String>,
    #[arg(long)]
    cluster_provider: Option<String>,
    #[arg(long)]
    cluster_region: Option<String>,
    #[arg(long, value_delimiter = ',')]
    cluster_zones: Vec<String>,
    /// Show what would be done without doing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct UnjoinArgs {
    name: String,
    /// Kubeconfig of the member: what joining created there (namespace karmada-cluster, its
    /// ServiceAccounts and RBAC) is removed too.
    #[arg(long)]
    cluster_kubeconfig: Option<PathBuf>,
    /// Context of the member in that kubeconfig (default: its current context).
    #[arg(long)]
    cluster_context: Option<String>,
    /// Wait until the cluster is gone.
    #[arg(long)]
    wait: bool,
    /// Leave propagated resources in the member (they are no longer managed by Karmada).
    #[arg(long)]
    keep_resources: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s")]
    timeout: humantime_lite::Duration,
}

mod humantime_lite {
    //! `30s`, `2m`, `500ms` durations for flags.
    #[derive(Clone, Copy, Debug)]
    pub struct Duration(pub std::time::Duration);

    impl std::str::FromStr for Duration {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (n, unit) = s.split_at(split);
            let n: u64 = n.parse().map_err(|_| format!("invalid duration {s:?}"))?;
            let d = match unit {
                "ms" => std::time::Duration::from_millis(n),
                "" | "s" => std::time::Duration::from_secs(n),
                "m" => std::time::Duration::from_secs(n * 60),
                "h" => std::time::Duration::from_secs(n * 3600),
                _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m or h)")),
            };
            Ok(Duration(d))
        }
    }
}

fn default_kubeconfig() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next()) {
        return k;
    }
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".kube/config"), |h| PathBuf::from(h).join(".kube/config"))
}

async fn config(path: &Path, context: Option<&str>) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.with_context(|| {
            format!(
                "using kubeconfig {} (context {})",
                path.display(),
                context.unwrap_or("current")
            )
        })?;
    Ok(config)
}

/// The member's endpoint and credentials, read from its kubeconfig.
fn member_credentials(path: &Path, context: Option<&str>) -> anyhow::Result<(String, Credentials)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let context = match context {
        Some(c) => c.to_owned(),
        None => doc["current-context"].as_str().unwrap_or_default().to_owned(),
    };
    let find = |section: &str, name: &str| -> Option<Value> {
        doc[section].as_array()?.iter().find(|e| e["name"] == name).cloned()
    };
    let ctx = find("contexts", &context)
        .with_context(|| format!("context {context:?} not found in {}", path.display()))?;
    let cluster = find("clusters", ctx["context"]["cluster"].as_str().unwrap_or_default())
        .context("the context's cluster is missing")?;
    let user = find("users", ctx["context"]["user"].as_str().unwrap_or_default())
        .unwrap_or(json!({"user": {}}));
    let dir = path.parent().unwrap_or(Path::new("."));
    let data = |v: &Value, inline: &str, file: &str| -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(b64) = v[inline].as_str() {
            return Ok(Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .context("invalid base64 in kubeconfig")?,
            ));
        }
        if let Some(f) = v[file].as_str() {
            return Ok(Some(std::fs::read(dir.join(f)).with_context(|| format!("reading {f}"))?));
        }
        Ok(None)
    };
    let server = cluster["cluster"]["server"]
        .as_str()
        .context("the member's cluster has no server")?
        .to_owned();
    let u = &user["user"];
    let token = match (u["token"].as_str(), u["tokenFile"].as_str()) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(f)) => Some(std::fs::read_to_string(dir.join(f))?.trim().to_owned()),
        _ => None,
    };
    Ok((
        server,
        Credentials {
            ca_pem: data(
                &cluster["cluster"],
                "certificate-authority-data",
                "certificate-authority",
            )?
            .unwrap_or_default(),
            token,
            cert_pem: data(u, "client-certificate-data", "client-certificate")?,
            key_pem: data(u, "client-key-data", "client-key")?,
        },
    ))
}

async fn join(control: kube::Client, args: JoinArgs) -> anyhow::Result<()> {
    let (server, credentials) =
        member_credentials(&args.cluster_kubeconfig, args.cluster_context.as_deref())?;
    let member = client_for(&args.name, &server, &credentials, Duration::from_secs(10)).await?;
    let version = tokio::time::timeout(Duration::from_secs(15), member.apiserver_version())
        .await
        .map_err(|_| anyhow::anyhow!("cluster {} at {server} did not answer within 15 s", args.name))?
        .map_err(|e| anyhow::anyhow!("cannot reach cluster {} at {server}: {e}; check --cluster-kubeconfig and --cluster-context", args.name))?;
    let namespaces: Api<Namespace> = Api::all(member.clone());
    let id = namespaces
        .get("kube-system")
        .await
        .with_context(|| {
            format!(
                "reading the kube-system namespace of {} (its UID is the cluster id)",
                args.name
            )
        })?
        .metadata
        .uid
        .unwrap_or_default();
    let clusters: Api<Cluster> = Api::all(control.clone());
    let existing = clusters.get_opt(&args.name).await?;
    if let Some(existing) = &existing
        && !existing.spec.id.is_empty()
        && existing.spec.id != id
    {
        bail!(
            "a different cluster (id {}) is already joined as {:?}; unjoin it first (karmadactl unjoin {}) or choose another name",
            existing.spec.id,
            args.name,
            args.name
        );
    }
    if args.dry_run {
        println!(
            "cluster({}) would be joined: endpoint {server}, version {}, id {id}",
            args.name, version.git_version
        );
        return Ok(());
    }
    // As upstream: the control plane gets a ServiceAccount of its own in the member, never
    // the credentials of this kubeconfig.
    let (own, impersonator) = member_client::join::prepare_member(&member, &args.name).await?;
    let mut extra = json!({});
    if let Some(p) = &args.cluster_provider {
        extra["provider"] = json!(p);
    }
    if let Some(r) = &args.cluster_region {
        extra["region"] = json!(r);
    }
    if !args.cluster_zones.is_empty() {
        extra["zones"] = json!(args.cluster_zones);
    }
    let options = member_client::join::JoinOptions {
        name: args.name.clone(),
        api_endpoint: server.clone(),
        id,
        extra_spec: extra,
    };
    member_client::join::register(&control, &options, &own, &impersonator, &credentials.ca_pem)
        .await?;
    println!("cluster({}) is joined successfully", args.name);
    Ok(())
}

async fn unjoin(control: kube::Client, args: UnjoinArgs) -> anyhow::Result<()> {
    let clusters: Api<Cluster> = Api::all(control.clone());
    if clusters.get_opt(&args.name).await?.is_none() {
        bail!(
            "cluster {:?} is not joined (karmadactl get clusters lists the joined ones)",
            args.name
        );
    }
    if args.keep_resources {
        let works: Api<Work> = Api::namespaced(control.clone(), &execution_namespace(&args.name));
        for work in works.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
            let name = work.metadata.name.clone().unwrap_or_default();
            works
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"preserveResourcesOnDeletion": true}})),
                )
                .await?;
        }
    }
    clusters.delete(&args.name, &DeleteParams::default()).await?;
    let secrets: Api<Secret> = Api::namespaced(control.clone(), CLUSTER_NAMESPACE);
    for secret in [args.name.clone(), member_client::join::impersonator_secret(&args.name)] {
        match secrets.delete(&secret, &DeleteParams::default()).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(path) = &args.cluster_kubeconfig {
        let (server, credentials) = member_credentials(path, args.cluster_context.as_deref())?;
        let member = client_for(&args.name, &server, &credentials, Duration::from_secs(10)).await?;
        member_client::join::clean_member(&member, &args.name).await?;
    }
    if args.wait {
        let deadline = tokio::time::Instant::now() + args.timeout.0;
        while clusters.get_opt(&args.name).await?.is_some() {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "cluster {} is still being removed after {:?}; is the controller-manager running?",
                    args.name,
                    args.timeout.0
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!("cluster({}) is unjoined successfully", args.name);
    Ok(())
}

fn parse_taint(spec: &str) -> anyhow::Result<(Taint, bool)> {
    let (body, remove) = match spec.strip_suffix('-') {
        Some(b) => (b, true),
        None => (spec, false),
    };
    let (kv, effect) = match body.split_once(':') {
        Some((kv, e)) => (kv, TaintEffect::from(e)),
        None if remove => (body, TaintEffect::Unset),
        None => bail!(
            "invalid taint {spec:?}: use KEY[=VALUE]:EFFECT to add or KEY[:EFFECT]- to remove"
        ),
    };
    if let TaintEffect::Other(effect) = &effect {
        bail!("invalid taint effect {effect:?}: use NoSchedule, PreferNoSchedule or NoExecute");
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    apimachinery::selector::validate_label_key(key)
        .map_err(|e| anyhow::anyhow!("invalid taint key: {e}"))?;
    Ok((Taint { key: key.to_owned(), value: value.to_owned(), effect, time_added: None }, remove))
}

async fn change_taints(
    control: kube::Client,
    name: &str,
    changes: Vec<(Taint, bool)>,
    overwrite: bool,
) -> anyhow::Result<()> {
    let clusters: Api<Cluster> = Api::all(control);
    let cluster =
        clusters.get_opt(name).await?.with_context(|| format!("cluster {name:?} not found"))?;
    let mut taints = cluster.spec.taints.clone();
    for (taint, remove) in changes {
        let same =
            |t: &Taint| t.key == taint.key && (taint.effect.is_unset() || t.effect == taint.effect);
        if remove {
            let before = taints.len();
            taints.retain(|t| !same(t));
            if before == taints.len() {
                bail!("taint {:?} not found on cluster {name}", taint.key);
            }
        } else if let Some(existing) = taints.iter_mut().find(|t| same(t)) {
            if !overwrite && existing.value != taint.value {
                bail!(
                    "cluster {name} already has taint {} with a different value; use --overwrite",
                    taint.key
                );
            }
            existing.value = taint.value;
        } else {
            taints.push(taint);
        }
    }
    clusters
        .patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": taints}})))
        .await?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Registering needs no control-plane kubeconfig: only the token.
    let cli = match cli.command {
        Command::Register(args) => return register::register(args).await,
        // The host cluster's kubeconfig, not the control plane's.
        Command::Init(args) => {
            let path = cli.kubeconfig.unwrap_or_else(default_kubeconfig);
            let ns = cli.namespace.as_deref().unwrap_or(INSTALL_NAMESPACE);
            return init::init(&path, ns, *args).await;
        }
        Command::Deinit(args) => {
            let path = cli.kubeconfig.unwrap_or_else(default_kubeconfig);
            let ns = cli.namespace.as_deref().unwrap_or(INSTALL_NAMESPACE);
            return init::deinit(&path, ns, args).await;
        }
        // Customizations from files need no control plane.
        Command::Interpret(args) if !args.filenames.is_empty() => {
            return interpret::run(args, None).await;
        }
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "karmadactl", &mut std::io::stdout());
            return Ok(());
        }
        Command::Options => {
            let command = <Cli as clap::CommandFactory>::command();
            println!("The following options can be passed to any command:\n");
            for arg in command.get_arguments().filter(|a| a.is_global_set()) {
                let long = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
                let short = arg.get_short().map(|s| format!("-{s}, ")).unwrap_or_default();
                println!(
                    "    {short}{long}:\n\t{}\n",
                    arg.get_help().map(|h| h.to_string()).unwrap_or_default()
                );
            }
            return Ok(());
        }
        command => Cli { command, ..cli },
    };
    let path = cli.kubeconfig.clone().unwrap_or_else(default_kubeconfig);
    let plane_config = config(&path, cli.karmada_context.as_deref()).await?;
    let control = kube::Client::try_from(plane_config.clone())?;
    let plane = multi::Plane { config: plane_config, client: control.clone() };
    let ns = cli.namespace.as_deref().unwrap_or("default");
    match cli.command {
        Command::Register(_) | Command::Init(_) | Command::Deinit(_) => {
            unreachable!("handled above")
        }
        Command::Interpret(args) => interpret::run(args, Some(control)).await,
        Command::Token { action: TokenAction::Create(args) } => {
            register::token_create(control, &path, cli.karmada_context.as_deref(), args).await
        }
        Command::Token { action: TokenAction::List } => register::token_list(control).await,
        Command::Token { action: TokenAction::Delete { tokens } } => {
            register::token_delete(control, &tokens).await
        }
        Command::Unregister(args) => register::unregister(control, args).await,
        Command::Join(args) => join(control, args).await,
        Command::Unjoin(args) => unjoin(control, args).await,
        Command::Cordon { name } => {
            let t = Taint {
                key: "cluster.karmada.io/unschedulable".into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
                time_added: None,
            };
            change_taints(control, &name, vec![(t, false)], true).await?;
            println!("cluster/{name} cordoned");
            Ok(())
        }
        Command::Uncordon { name } => {
            let t = Taint {
                key: "cluster.karmada.io/unschedulable".into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
                time_added: None,
            };
            let clusters: Api<Cluster> = Api::all(control.clone());
            let cordoned = clusters.get(&name).await?.spec.taints.iter().any(|x| x.key == t.key);
            if cordoned {
                change_taints(control, &name, vec![(t, true)], true).await?;
            }
            println!("cluster/{name} uncordoned");
            Ok(())
        }
        Command::Taint { resource, name, taints, overwrite } => {
            if !matches!(resource.as_str(), "cluster" | "clusters") {
                bail!(
                    "karmadactl taint only works on clusters: karmadactl taint clusters NAME KEY=VALUE:EFFECT"
                );
            }
            let changes =
                taints.iter().map(|t| parse_taint(t)).collect::<anyhow::Result<Vec<_>>>()?;
            change_taints(control, &name, changes, overwrite).await?;
            println!("cluster/{name} tainted");
            Ok(())
        }
        Command::Get(args) => multi::get(&plane, ns, args).await,
        Command::Describe(args) => objects::describe(&plane, ns, args).await,
        Command::Logs(args) => objects::logs(&plane, ns, args).await,
        Command::Exec(args) => {
            let code = objects::exec(&plane, ns, args).await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Attach(args) => objects::attach(&plane, ns, args).await,
        Command::Top(args) => objects::top(&plane, ns, args).await,
        Command::Promote(args) => objects::promote(&plane, ns, args).await,
        Command::Label(args) => objects::set_metadata(&plane, ns, args, "labels").await,
        Command::Annotate(args) => objects::set_metadata(&plane, ns, args, "annotations").await,
        Command::Patch(args) => objects::patch(&plane, ns, args).await,
        Command::Delete(args) => objects::delete(&plane, ns, args).await,
        Command::Apply(args) => objects::apply(&plane, ns, args).await,
        Command::Create(args) => objects::create(&plane, ns, args).await,
        Command::ApiResources(args) => multi::api_resources(&plane, args).await,
        Command::Edit(args) => objects::edit(&plane, ns, args).await,
        Command::Explain(args) => objects::explain(&plane, args).await,
        Command::Version => objects::version(&plane).await,
        Command::Completion { .. } | Command::Options => unreachable!("handled above"),
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
