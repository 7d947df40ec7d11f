//! `karmada dashboard`: serves the web UI (`dashboard` crate) for the control plane a
//! kubeconfig names — its address and CA only: users sign in with their own tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
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

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (api_server, ca_pem) =
        member_client::kubeconfig::server_and_ca(&args.kubeconfig, args.context.as_deref())?;
    let config = dashboard::Config { bind: args.bind, api_server, ca_pem: ca_pem.into_bytes() };
    let dashboard =
        dashboard::start(config).await.with_context(|| format!("serving on {}", args.bind))?;
    eprintln!("karmada dashboard listening on {}", dashboard.url());
    crate::cli::wait_for_signal().await;
    dashboard.stop();
    Ok(())
}
