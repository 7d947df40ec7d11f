//! Pull-mode registration, as upstream: `token create` mints a bootstrap token, `register`
//! trades it (after checking the control plane's CA against a pinned hash) for the agent's own
//! client certificate through a CertificateSigningRequest, and `unregister` removes a Pull
//! cluster even when its agent is gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use karmada_api::cluster::Cluster;
use karmada_api::work::Work;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub const AGENT_USER_PREFIX: &str = "system:karmada:agent:";
pub const AGENT_GROUP: &str = "system:karmada:agents";

#[derive(clap::Args, Debug)]
pub struct TokenCreateArgs {
    /// How long the token is valid (`24h`, `30m`, `0` for never).
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Also print the `karmadactl register` command a member should run.
    #[arg(long)]
    print_register_command: bool,
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(clap::Args, Debug)]
pub struct RegisterArgs {
    /// The control plane's API server, e.g. `https://10.0.0.1:5443`.
    endpoint: String,
    /// A bootstrap token (`karmadactl token create`).
    #[arg(long)]
    token: String,
    /// `sha256:<hex>` of the control plane CA's public key (printed by `token create
    /// --print-register-command`).
    #[arg(long)]
    discovery_token_ca_cert_hash: Option<String>,
    /// Trust whatever CA the endpoint presents (only for tests and labs).
    #[arg(long)]
    discovery_token_unsafe_skip_ca_verification: bool,
    #[arg(long)]
    cluster_name: String,
    /// Kubeconfig of the member cluster (for the agent command printed at the end).
    #[arg(long)]
    cluster_kubeconfig: PathBuf,
    #[arg(long)]
    cluster_context: Option<String>,
    /// Where to write the agent's kubeconfig (default ~/.karmada/agent-<cluster>.config).
    #[arg(long)]
    agent_kubeconfig: Option<PathBuf>,
    /// How long to wait for the certificate.
    #[arg(long, default_value_t = 60)]
    timeout_seconds: u64,
}

#[derive(clap::Args, Debug)]
pub struct UnregisterArgs {
    name: String,
    /// How long the agent gets to remove what it applied before its Works are let go (an agent
    /// that is gone cannot; what it applied then stays in the member).
    #[arg(long, default_value_t = 30)]
    cleanup_timeout_seconds: u64,
}

fn parse_ttl(ttl: &str) -> anyhow::Result<Option<Duration>> {
    if ttl == "0" {
        return Ok(None);
    }
    let split = ttl.find(|c: char| !c.is_ascii_digit()).unwrap_or(ttl.len());
    let (n, unit) = ttl.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("invalid --ttl {ttl:?}"))?;
    let seconds = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("invalid --ttl {ttl:?}: use s, m or h"),
    };
    Ok(Some(Duration::from_secs(seconds)))
}

/// `[a-z0-9]` characters from random bytes.
fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::new();
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            // 252 = 7 * 36: drop the remainder so every character is equally likely.
            if *b < 252 && out.len() < n {
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    out
}

/// `sha256:<hex>` of a PEM certificate's SubjectPublicKeyInfo (kubeadm's CA pin).
pub fn ca_hash(ca_pem: &str) -> anyhow::Result<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the CA is not PEM: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| anyhow::anyhow!("the CA is not X.509: {e}"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    Ok(format!("sha256:{}", digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

pub async fn token_create(
    control: kube::Client,
    kubeconfig: &Path,
    context: Option<&str>,
    args: TokenCreateArgs,
) -> anyhow::Result<()> {
    let ttl = parse_ttl(&args.ttl)?;
    let (id, secret) = (random_chars(6), random_chars(16));
    let mut data = json!({
        "token-id": id, "token-secret": secret,
        "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
        "description": if args.description.is_empty() { "karmadactl token create".to_owned() } else { args.description.clone() },
    });
    if let Some(ttl) = ttl {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + ttl.as_secs() as i64;
        data["expiration"] = json!(apimachinery::time::format_rfc3339(at));
    }
    let secret_object: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token", "stringData": data,
    }))?;
    Api::<Secret>::namespaced(control, "kube-system")
        .create(&PostParams::default(), &secret_object)
        .await
        .context("creating the bootstrap token Secret")?;
    let token = format!("{id}.{secret}");
    if args.print_register_command {
        let (server, ca) = member_client::kubeconfig::server_and_ca(kubeconfig, context)?;
        println!(
            "karmadactl register {server} --token {token} --discovery-token-ca-cert-hash {}",
            ca_hash(&ca)?
        );
    } else {
        println!("{token}");
    }
    Ok(())
}

/// The bootstrap tokens in the control plane, as kubeadm lists them.
pub async fn token_list(control: kube::Client) -> anyhow::Result<()> {
    let secrets = Api::<Secret>::namespaced(control, "kube-system")
        .list(&kube::api::ListParams::default())
        .await
        .context("listing bootstrap tokens")?;
    let text = |s: &Secret, key: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    println!(
        "TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION"
    );
    let tokens = secrets
        .items
        .iter()
        .filter(|s| s.type_.as_deref() == Some("bootstrap.kubernetes.io/token"));
    for secret in tokens {
        let id = text(secret, "token-id");
        if id.is_empty() {
            continue;
        }
        let expiration = text(secret, "expiration");
        let ttl = match apimachinery::time::parse_rfc3339(&expiration) {
            Some(at) if at <= now => "<invalid>".to_owned(),
            Some(at) => format!("{}h", (at - now + 3599) / 3600),
            None => "<forever>".to_owned(),
        };
        let usages: Vec<String> = ["authentication", "signing"]
            .iter()
            .filter(|u| text(secret, &format!("usage-bootstrap-{u}")) == "true")
            .map(|u| (*u).to_owned())
            .collect();
        let expires = if expiration.is_empty() { "<never>".to_owned() } else { expiration };
        println!(
            "{:<25} {:<11} {:<22} {:<24} {}",
            format!("{id}.{}", text(secret, "token-secret")),
            ttl,
            expires,
            usages.join(","),
            text(secret, "description")
        );
    }
    Ok(())
}

/// Deletes bootstrap tokens, given as `ID.SECRET` or `ID`.
pub async fn token_delete(control: kube::Client, tokens: &[String]) -> anyhow::Result<()> {
    let secrets = Api::<Secret>::namespaced(control, "kube-system");
    for token in tokens {
        let id = token.split('.').next().unwrap_or_default();
        if id.len() != 6 || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            bail!("{token:?} is not a bootstrap token (ID.SECRET, or its 6-character ID)");
        }
        secrets
            .delete(&format!("bootstrap-token-{id}"), &kube::api::DeleteParams::default())
            .await
            .with_context(|| format!("deleting bootstrap token {id}"))?;
        println!("bootstrap token {id:?} deleted");
    }
    Ok(())
}

/// A client of `endpoint` authenticated by a bearer token, trusting `ca_pem` (or nothing).
async fn token_client(
    endpoint: &str,
    token: &str,
    ca_pem: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::new(endpoint.parse().context("invalid endpoint URL")?);
    config.auth_info.token = Some(token.to_owned().into());
    match ca_pem {
        Some(ca) => {
            let der = x509_parser::pem::parse_x509_pem(ca.as_bytes())
                .map_err(|e| anyhow::anyhow!("the CA is not PEM: {e}"))?
                .1
                .contents;
            config.root_cert = Some(vec![der]);
        }
        None => config.accept_invalid_certs = true,
    }
    Ok(kube::Client::try_from(config)?)
}

fn kube_error(what: &str, e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) if status.code == 401 => {
            anyhow::anyhow!("{what}: the control plane refused the token ({})", status.message)
        }
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

pub async fn register(args: RegisterArgs) -> anyhow::Result<()> {
    // 1. Discovery: read the CA from kube-public/cluster-info and check it against the pin.
    let insecure = token_client(&args.endpoint, &args.token, None).await?;
    let info = Api::<ConfigMap>::namespaced(insecure, "kube-public")
        .get("cluster-info")
        .await
        .map_err(|e| kube_error("reading kube-public/cluster-info", e))?;
    let kubeconfig = info
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .context("kube-public/cluster-info has no kubeconfig")?;
    let doc: Value = serde_yaml::from_str(kubeconfig)?;
    let ca = doc
        .pointer("/clusters/0/cluster/certificate-authority-data")
        .and_then(Value::as_str)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .context("cluster-info carries no CA")?;
    match (&args.discovery_token_ca_cert_hash, args.discovery_token_unsafe_skip_ca_verification) {
        (Some(expected), _) => {
            let got = ca_hash(&ca)?;
            if !got.eq_ignore_ascii_case(expected) {
                bail!(
                    "the control plane's CA has hash {got}, not the expected {expected}: refusing to register"
                );
            }
        }
        (None, true) => {}
        (None, false) => bail!(
            "give --discovery-token-ca-cert-hash (printed by `karmadactl token create --print-register-command`) or --discovery-token-unsafe-skip-ca-verification"
        ),
    }
    // 2. A key pair and a CSR for the agent identity, submitted with the token.
    let client = token_client(&args.endpoint, &args.token, Some(&ca)).await?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{AGENT_USER_PREFIX}{}", args.cluster_name));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, AGENT_GROUP);
    let request = params.serialize_request(&key)?.pem()?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client);
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": format!("agent-{}-", args.cluster_name)},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(&request),
            "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["digital signature", "key encipherment", "client auth"]},
    }))?;
    let created = csrs
        .create(&PostParams::default(), &csr)
        .await
        .map_err(|e| kube_error("submitting the certificate signing request", e))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_seconds);
    let certificate = loop {
        let current = csrs.get(&name).await.map_err(|e| kube_error("reading the CSR", e))?;
        let status = current.status.unwrap_or_default();
        if let Some(denied) =
            status.conditions.iter().flatten().find(|c| c.type_ == "Denied" || c.type_ == "Failed")
        {
            bail!(
                "the control plane denied the certificate: {}",
                denied.message.clone().unwrap_or_default()
            );
        }
        if let Some(cert) = status.certificate {
            break String::from_utf8(cert.0).context("the certificate is not PEM text")?;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no certificate within {} s (CSR {name} is still pending)", args.timeout_seconds);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // 3. The agent's kubeconfig.
    let path = args.agent_kubeconfig.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(format!(".karmada/agent-{}.config", args.cluster_name))
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "karmada",
        "clusters": [{"name": "karmada", "cluster": {"server": args.endpoint, "certificate-authority-data": b64(&ca)}}],
        "users": [{"name": "karmada", "user": {"client-certificate-data": b64(&certificate), "client-key-data": b64(&key.serialize_pem())}}],
        "contexts": [{"name": "karmada", "context": {"cluster": "karmada", "user": "karmada"}}],
    });
    write_private(&path, &serde_yaml::to_string(&config)?)?;
    println!(
        "cluster({}) is registered: agent kubeconfig written to {}",
        args.cluster_name,
        path.display()
    );
    let context = args
        .cluster_context
        .as_deref()
        .map(|c| format!(" --cluster-context {c}"))
        .unwrap_or_default();
    println!(
        "start its agent with:\n  karmada agent --karmada-kubeconfig {} --cluster-kubeconfig {}{context} --cluster-name {}",
        path.display(),
        args.cluster_kubeconfig.display(),
        args.cluster_name
    );
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

pub async fn unregister(control: kube::Client, args: UnregisterArgs) -> anyhow::Result<()> {
    let clusters: Api<Cluster> = Api::all(control.clone());
    let Some(cluster) = clusters.get_opt(&args.name).await? else {
        bail!("cluster {:?} is not registered", args.name);
    };
    if cluster.spec.sync_mode != "Pull" {
        bail!("cluster {} is in {} mode: use karmadactl unjoin", args.name, cluster.spec.sync_mode);
    }
    clusters.delete(&args.name, &DeleteParams::default()).await?;
    let namespace = karmada_api::names::execution_namespace(&args.name);
    let works: Api<Work> = Api::namespaced(control.clone(), &namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.cleanup_timeout_seconds);
    let mut let_go = 0;
    loop {
        if clusters.get_opt(&args.name).await?.is_none() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            // The agent did not clean up (it is gone): release its Works so the cluster can go.
            for work in works.list(&ListParams::default()).await?.items {
                let finalizers = work.metadata.finalizers.clone().unwrap_or_default();
                if finalizers.iter().any(|f| f == karmada_api::names::EXECUTION_FINALIZER) {
                    let kept: Vec<&String> = finalizers
                        .iter()
                        .filter(|f| *f != karmada_api::names::EXECUTION_FINALIZER)
                        .collect();
                    let name = work.metadata.name.clone().unwrap_or_default();
                    works
                        .patch(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"finalizers": kept}})),
                        )
                        .await?;
                    let_go += 1;
                }
            }
        }
        if tokio::time::Instant::now() > deadline + Duration::from_secs(60) {
            bail!(
                "cluster {} is still being removed; is the controller-manager running?",
                args.name
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leases: Api<Lease> = Api::namespaced(control, karmada_api::names::CLUSTER_NAMESPACE);
    let _ = leases.delete(&args.name, &DeleteParams::default()).await;
    if let_go > 0 {
        println!(
            "warning: the agent of {} did not clean up within {} s; {let_go} Work(s) were let go and what they applied stays in the member",
            args.name, args.cleanup_timeout_seconds
        );
    }
    println!("cluster({}) is unregistered", args.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_and_token_shapes() {
        assert_eq!(parse_ttl("0").unwrap(), None);
        assert_eq!(parse_ttl("2h").unwrap(), Some(Duration::from_secs(7200)));
        assert!(parse_ttl("2d").is_err());
        let t = random_chars(16);
        assert_eq!(t.len(), 16);
        assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}
