//! `karmada dashboard`: serves the web UI (`dashboard` crate) for the control plane a
//! kubeconfig names — its address and CA only: users sign in with their own tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args as ClapArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Address to serve the dashboard on (plain HTTP: keep it on loopback, or put a TLS proxy
    /// in front).
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// A kubeconfig of the control plane. Only its server address and CA are used — never its
    /// credentials: every user signs in with a token of their own.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Context in that kubeconfig (default: current).
    #[arg(long)]
    context: Option<String>,
}

/// The API server's URL and CA (PEM) of `context` in `kubeconfig`.
pub fn server_of(
    kubeconfig: &std::path::Path,
    context: Option<&str>,
) -> anyhow::Result<(String, Vec<u8>)> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let context_name = context
        .map(str::to_owned)
        .or(config.current_context.clone())
        .context("the kubeconfig has no current context: pass --context")?;
    let named = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .with_context(|| format!("no context {context_name:?} in {}", kubeconfig.display()))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == named.cluster)
        .and_then(|c| c.cluster.as_ref())
        .with_context(|| format!("no cluster {:?} in {}", named.cluster, kubeconfig.display()))?;
    let server = cluster.server.clone().context("the kubeconfig's cluster has no server")?;
    let ca = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("certificate-authority-data is not base64")?,
        (None, Some(path)) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
        (None, None) => anyhow::bail!("the kubeconfig's cluster has no certificate authority"),
    };
    Ok((server, ca))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (api_server, ca_pem) = server_of(&args.kubeconfig, args.context.as_deref())?;
    let dashboard = dashboard::start(dashboard::Config { bind: args.bind, api_server, ca_pem })
        .await
        .with_context(|| format!("serving on {}", args.bind))?;
    eprintln!("karmada dashboard listening on {}", dashboard.url());
    crate::cli::wait_for_signal().await;
    dashboard.stop();
    Ok(())
}
