//! `karmadactl init` and `deinit`: install the control plane on a host Kubernetes cluster (or
//! print what would be installed) and remove it, as upstream's commands of the same names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use deploy::{Options, ServiceType, Storage, Store};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The context of the host cluster in the kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Print the manifests instead of installing (the certificates are then made by the
    /// `karmada-init-secrets` Job in the cluster); `deploy/*.yaml` are made this way.
    #[arg(long)]
    dry_run: bool,
    /// The karmada-rs image (the `karmada` binary with its subcommands, and `karmadactl`).
    #[arg(long, default_value_t = deploy::default_image())]
    image: String,
    #[arg(long, default_value = "IfNotPresent")]
    image_pull_policy: String,
    /// Secrets (in the namespace) to pull the images with. Comma-separated.
    #[arg(long, value_delimiter = ',')]
    image_pull_secrets: Vec<String>,
    /// The API server's store: `redb` (one API server replica, its data on the volume of
    /// --etcd-storage-mode) or `etcd` (a StatefulSet of --etcd-replicas with TLS). Ignored with
    /// --external-etcd-servers.
    #[arg(long, default_value = "redb", value_parser = ["redb", "etcd"])]
    store: String,
    #[arg(long, default_value_t = 1)]
    etcd_replicas: u32,
    #[arg(long, default_value = deploy::DEFAULT_ETCD_IMAGE)]
    etcd_image: String,
    /// Where the store keeps its data: PVC, hostPath or emptyDir.
    #[arg(long, default_value = "PVC")]
    etcd_storage_mode: String,
    /// The StorageClass of the volume claims (default: the cluster's default class).
    #[arg(long)]
    storage_classes_name: Option<String>,
    #[arg(long, default_value = "5Gi")]
    etcd_pvc_size: String,
    /// The node directory of hostPath mode.
    #[arg(long, default_value = "/var/lib/karmada-etcd")]
    etcd_data: String,
    /// URLs of an external etcd cluster (comma-separated): no etcd is installed.
    #[arg(long, value_delimiter = ',')]
    external_etcd_servers: Vec<String>,
    #[arg(long)]
    external_etcd_ca_cert_path: Option<PathBuf>,
    #[arg(long)]
    external_etcd_client_cert_path: Option<PathBuf>,
    #[arg(long)]
    external_etcd_client_key_path: Option<PathBuf>,
    #[arg(long, default_value = "")]
    external_etcd_key_prefix: String,
    #[arg(long, default_value_t = 1)]
    karmada_apiserver_replicas: u32,
    #[arg(long, default_value_t = 1)]
    karmada_controller_manager_replicas: u32,
    #[arg(long, default_value_t = 1)]
    karmada_scheduler_replicas: u32,
    /// How the API server is reached from outside: NodePort (on --port), LoadBalancer or
    /// ClusterIP.
    #[arg(long, default_value = "NodePort")]
    karmada_apiserver_service_type: String,
    /// The API server's node port.
    #[arg(short = 'p', long, default_value_t = 32443)]
    port: u16,
    /// The address users reach the API server at (default: the first node's InternalIP).
    #[arg(long)]
    karmada_apiserver_advertise_address: Option<String>,
    /// More IP addresses for the API server's certificate. Comma-separated.
    #[arg(long, value_delimiter = ',')]
    cert_external_ip: Vec<String>,
    /// More DNS names for the API server's certificate. Comma-separated.
    #[arg(long, value_delimiter = ',')]
    cert_external_dns: Vec<String>,
    /// Issue the certificates from this CA (with --ca-key-file) instead of a new one.
    #[arg(long, requires = "ca_key_file")]
    ca_cert_file: Option<PathBuf>,
    #[arg(long, requires = "ca_cert_file")]
    ca_key_file: Option<PathBuf>,
    /// The host cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    host_cluster_domain: String,
    #[arg(long, default_value = "system-node-critical")]
    priority_class: String,
    /// Where to write the control plane's kubeconfig (`karmada-apiserver.config`).
    #[arg(short = 'd', long, default_value = "/etc/karmada")]
    karmada_data: PathBuf,
    /// Where to write the certificates.
    #[arg(long, default_value = "/etc/karmada/pki")]
    karmada_pki: PathBuf,
    /// Seconds to wait for each component to be ready (0: forever).
    #[arg(long, default_value_t = 120)]
    wait_component_ready_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct DeinitArgs {
    /// The context of the host cluster in the kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Print what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Delete the namespace too, with the store's volume claims (the data).
    #[arg(long)]
    purge_namespace: bool,
}

fn options(args: &InitArgs, namespace: &str) -> anyhow::Result<Options> {
    let store = if !args.external_etcd_servers.is_empty() {
        Store::ExternalEtcd {
            servers: args.external_etcd_servers.clone(),
            prefix: args.external_etcd_key_prefix.clone(),
        }
    } else if args.store == "etcd" {
        Store::Etcd { replicas: args.etcd_replicas, image: args.etcd_image.clone() }
    } else {
        Store::Redb
    };
    let mut tls_sans = args.cert_external_ip.clone();
    tls_sans.extend(args.cert_external_dns.iter().cloned());
    tls_sans.extend(args.karmada_apiserver_advertise_address.iter().cloned());
    let options = Options {
        namespace: namespace.to_owned(),
        image: args.image.clone(),
        pull_policy: deploy::PullPolicy::parse(&args.image_pull_policy)?,
        pull_secrets: args.image_pull_secrets.clone(),
        store,
        storage: Storage::parse(
            &args.etcd_storage_mode,
            args.storage_classes_name.clone(),
            args.etcd_pvc_size.clone(),
            args.etcd_data.clone(),
        )?,
        apiserver_replicas: args.karmada_apiserver_replicas,
        controller_manager_replicas: args.karmada_controller_manager_replicas,
        scheduler_replicas: args.karmada_scheduler_replicas,
        service: ServiceType::parse(&args.karmada_apiserver_service_type, args.port)?,
        cluster_domain: args.host_cluster_domain.clone(),
        tls_sans,
        priority_class: args.priority_class.clone(),
    };
    options.validate()?;
    Ok(options)
}

/// The external etcd's certificates as a Secret, when given.
fn external_etcd_secret(args: &InitArgs, namespace: &str) -> anyhow::Result<Option<Value>> {
    if args.external_etcd_servers.is_empty() {
        return Ok(None);
    }
    let read = |flag: &str, path: &Option<PathBuf>| -> anyhow::Result<String> {
        let path =
            path.as_ref().with_context(|| format!("--external-etcd-servers needs {flag}"))?;
        std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))
    };
    Ok(Some(deploy::pki::external_etcd_secret(
        namespace,
        read("--external-etcd-ca-cert-path", &args.external_etcd_ca_cert_path)?,
        read("--external-etcd-client-cert-path", &args.external_etcd_client_cert_path)?,
        read("--external-etcd-client-key-path", &args.external_etcd_client_key_path)?,
    )))
}

async fn host_client(kubeconfig: &Path, context: Option<&str>) -> anyhow::Result<kube::Client> {
    let config = crate::config(kubeconfig, context)
        .await
        .with_context(|| format!("the host cluster's kubeconfig {}", kubeconfig.display()))?;
    Ok(kube::Client::try_from(config)?)
}

/// The first node's InternalIP (where a NodePort answers), as upstream picks it.
async fn first_node_address(client: &kube::Client) -> anyhow::Result<String> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let list = nodes.list(&Default::default()).await.context("listing the host's nodes")?;
    list.items
        .iter()
        .flat_map(|n| n.status.iter().flat_map(|s| s.addresses.iter().flatten()))
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
        .context("no node has an InternalIP: pass --karmada-apiserver-advertise-address")
}

pub async fn init(kubeconfig: &Path, namespace: &str, args: InitArgs) -> anyhow::Result<()> {
    let mut options = options(&args, namespace)?;
    let external = external_etcd_secret(&args, namespace)?;
    let with_external = |mut objects: Vec<Value>| {
        if let Some(secret) = &external {
            objects.insert(1, secret.clone());
        }
        objects
    };
    if args.dry_run {
        print!("{}", deploy::to_yaml(&with_external(deploy::manifests(&options)?)));
        return Ok(());
    }
    let client = host_client(kubeconfig, args.context.as_deref()).await?;
    let advertise = match (&args.karmada_apiserver_advertise_address, options.service) {
        (Some(address), _) => Some(address.clone()),
        (None, ServiceType::NodePort { .. }) => {
            let address = first_node_address(&client).await?;
            options.tls_sans.push(address.clone());
            Some(address)
        }
        (None, _) => None,
    };
    let objects = with_external(deploy::manifests(&options)?);
    let (namespace_object, rest) = objects.split_first().context("no objects")?;
    deploy::cluster::apply(&client, std::slice::from_ref(namespace_object)).await?;
    let ca = match (&args.ca_cert_file, &args.ca_key_file) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            Some(apiserver::pki::Authority::from_pem(&read(cert)?, &read(key)?)?)
        }
        _ => None,
    };
    let etcd_sans = options.etcd_sans();
    let make = || deploy::pki::Pki::generate(deploy::pki::Request { ca, etcd_sans: &etcd_sans });
    let (pki, outcomes) =
        deploy::cluster::ensure_secrets(&client, namespace, &options.in_cluster_server(), make)
            .await?;
    for (name, outcome) in outcomes {
        if outcome == deploy::cluster::SecretOutcome::Kept {
            println!("secret/{name} exists: kept (its certificates are used)");
        }
    }
    for what in deploy::cluster::apply(&client, rest).await? {
        println!("{what} applied");
    }
    let timeout = match args.wait_component_ready_timeout {
        0 => Duration::MAX / 2,
        seconds => Duration::from_secs(seconds),
    };
    let ready = |what: &str| println!("{what} ready");
    deploy::cluster::wait_ready(&client, &objects, timeout, ready).await?;
    let server = match (options.service, advertise) {
        (ServiceType::NodePort { port }, Some(address)) => {
            format!("https://{}:{port}", host_port(&address))
        }
        (_, Some(address)) => format!("https://{}:{}", host_port(&address), deploy::APISERVER_PORT),
        (ServiceType::LoadBalancer, None) => {
            // Known only now: the API server's certificate must name it too, so its
            // Deployment is applied again with it (a rollout) and awaited.
            let address = load_balancer_address(&client, namespace, timeout).await?;
            options.tls_sans.push(address.clone());
            let apiserver: Vec<Value> = deploy::manifests(&options)?
                .into_iter()
                .filter(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == deploy::APISERVER)
                .collect();
            deploy::cluster::apply(&client, &apiserver).await?;
            deploy::cluster::wait_ready(&client, &apiserver, timeout, ready).await?;
            format!("https://{}:{}", host_port(&address), deploy::APISERVER_PORT)
        }
        (ServiceType::ClusterIp | ServiceType::NodePort { .. }, None) => {
            options.in_cluster_server()
        }
    };
    let config_path = args.karmada_data.join("karmada-apiserver.config");
    write_files(&pki, &server, &config_path, &args.karmada_pki)?;
    print_next_steps(&config_path, &server);
    Ok(())
}

/// An IPv6 address in brackets, for a URL.
fn host_port(address: &str) -> String {
    if address.contains(':') { format!("[{address}]") } else { address.to_owned() }
}

async fn load_balancer_address(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let services: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client.clone(), namespace);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let service = services.get(deploy::APISERVER).await?;
        let ingress = service
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .and_then(|i| i.into_iter().next());
        if let Some(address) = ingress.and_then(|i| i.ip.or(i.hostname)) {
            return Ok(address);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "service/{} got no load balancer address: pass --karmada-apiserver-advertise-address",
            deploy::APISERVER
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The kubeconfig (admin, at `server`) and the certificates, readable by their owner only.
fn write_files(
    pki: &deploy::pki::Pki,
    server: &str,
    config_path: &Path,
    pki_dir: &Path,
) -> anyhow::Result<()> {
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    apiserver::files::write_private(config_path, pki.admin_kubeconfig(server).as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    apiserver::files::private_dir(pki_dir)
        .with_context(|| format!("creating {}", pki_dir.display()))?;
    for (name, contents) in &pki.files {
        let path = pki_dir.join(name);
        apiserver::files::write_private(&path, contents.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_next_steps(config: &Path, server: &str) {
    let config = config.display();
    println!(
        r#"
Karmada (karmada-rs) is installed successfully.
Its API server: {server}
Its kubeconfig: {config}

Register a cluster in Push mode (the control plane reaches the member's API server):
    karmadactl --kubeconfig {config} join <CLUSTER_NAME> --cluster-kubeconfig=<member kubeconfig>
    kubectl --kubeconfig {config} get clusters

Register a cluster in Pull mode (the member's agent reaches the control plane):
    karmadactl --kubeconfig {config} token create --print-register-command
    then run the printed `karmadactl register ...` with --kubeconfig=<member kubeconfig>
    kubectl --kubeconfig {config} get clusters
"#
    );
}

pub async fn deinit(kubeconfig: &Path, namespace: &str, args: DeinitArgs) -> anyhow::Result<()> {
    let client = host_client(kubeconfig, args.context.as_deref()).await?;
    println!("removing karmada-rs from namespace {namespace} of the host cluster");
    if !args.force && !args.dry_run && !confirm()? {
        println!("nothing removed");
        return Ok(());
    }
    let removed =
        deploy::cluster::remove(&client, namespace, args.purge_namespace, args.dry_run).await?;
    for what in &removed {
        println!("{what} {}", if args.dry_run { "would be deleted" } else { "deleted" });
    }
    if removed.is_empty() {
        println!("nothing installed by karmadactl init was found in {namespace}");
    } else if !args.purge_namespace {
        println!(
            "The store's data is kept: the volume claims in {namespace} (PVC mode) or the nodes' directories (hostPath mode). --purge-namespace deletes the namespace with its claims."
        );
    }
    Ok(())
}

fn confirm() -> anyhow::Result<bool> {
    use std::io::Write as _;
    print!("Are you sure? [y/N]: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
