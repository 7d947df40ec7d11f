//! `karmada init-secrets`: the Job of the plain manifests (`deploy/`, `karmadactl init
//! --dry-run`) that generates the control plane's certificates and kubeconfig into Secrets of
//! the host cluster — unless they exist (`karmadactl init` made them, or an earlier run did).

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Namespace of the Secrets (the control plane's on the host cluster).
    #[arg(long, default_value = "karmada-system")]
    namespace: String,
    /// The API server's in-cluster URL, written in the components' kubeconfig.
    #[arg(long)]
    server: String,
    /// Names of a local etcd's members: generates their certificate and the API server's etcd
    /// client certificate too. Comma-separated.
    #[arg(long, value_delimiter = ',')]
    etcd_sans: Vec<String>,
    /// The host cluster's kubeconfig (default: the pod's service account, or $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = match &args.kubeconfig {
        Some(path) => crate::cli::kube_client(path, None).await?,
        None => kube::Client::try_default().await?,
    };
    let make = || {
        deploy::pki::Pki::generate(deploy::pki::Request { ca: None, etcd_sans: &args.etcd_sans })
    };
    let (_, outcomes) =
        deploy::cluster::ensure_secrets(&client, &args.namespace, &args.server, make).await?;
    for (name, outcome) in outcomes {
        let what = match outcome {
            deploy::cluster::SecretOutcome::Created => "created",
            deploy::cluster::SecretOutcome::Kept => "exists, kept",
        };
        eprintln!("secret/{name} {what}");
    }
    Ok(())
}
