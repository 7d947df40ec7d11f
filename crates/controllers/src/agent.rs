//! The pull-mode agent: runs next to one member cluster (behind NAT or a firewall, where the
//! control plane cannot reach it), registers that cluster with `syncMode: Pull`, renews a
//! heartbeat Lease, reports the cluster's status and applies the Works of its execution
//! namespace to the member — with the same code the control plane uses in push mode
//! ([`crate::cluster_status::observe_member`], [`crate::execution::run_scoped`]). It touches
//! nothing on the control plane but its own Cluster, its Lease and its Works.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use karmada_api::cluster::Cluster;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{CLUSTER_NAMESPACE, Settings, cluster_status};

/// Who the agent is and how often it reports.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub cluster_name: String,
    pub provider: String,
    pub region: String,
    pub zones: Vec<String>,
    /// Status and Lease renewal period (upstream: 10 s).
    pub report_interval: Duration,
    /// The Lease's duration (upstream: 40 s); the control plane's grace period decides when
    /// silence makes the cluster Unknown.
    pub lease_duration: Duration,
    pub probe_timeout: Duration,
    /// The agent's controllers that run (`--controllers` over
    /// [`crate::registry::AGENT_CONTROLLERS`]).
    pub controllers: crate::registry::Selection,
    /// The member's API server URL as the control plane may reach it (`apiEndpoint`; empty:
    /// not reported).
    pub api_endpoint: String,
    /// Report the member's credentials for the control plane (`KubeCredentials`: its own
    /// ServiceAccount token and CA) and for the cluster proxy (`KubeImpersonator`), as
    /// upstream's agent does by default (`--report-secrets`).
    pub report_credentials: bool,
    pub report_impersonator: bool,
}

impl AgentConfig {
    pub fn new(cluster_name: &str) -> AgentConfig {
        AgentConfig {
            cluster_name: cluster_name.into(),
            provider: String::new(),
            region: String::new(),
            zones: Vec::new(),
            report_interval: Duration::from_secs(10),
            lease_duration: Duration::from_secs(40),
            probe_timeout: Duration::from_secs(5),
            controllers: crate::registry::Selection::defaults(crate::registry::AGENT_CONTROLLERS),
            api_endpoint: String::new(),
            report_credentials: true,
            report_impersonator: true,
        }
    }
}

/// Creates or updates the agent's Cluster: Pull mode, identified by the member's
/// `kube-system` namespace UID (a different member under the same name is refused).
pub async fn register(
    control: &kube::Client,
    member: &kube::Client,
    config: &AgentConfig,
) -> anyhow::Result<()> {
    let id = Api::<Namespace>::all(member.clone())
        .get("kube-system")
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the member's kube-system namespace: {e}"))?
        .metadata
        .uid
        .unwrap_or_default();
    let clusters: Api<Cluster> = Api::all(control.clone());
    let mut spec = json!({"syncMode": "Pull", "id": id});
    if !config.provider.is_empty() {
        spec["provider"] = json!(config.provider);
    }
    if !config.region.is_empty() {
        spec["region"] = json!(config.region);
    }
    if !config.zones.is_empty() {
        spec["zones"] = json!(config.zones);
    }
    match clusters.get_opt(&config.cluster_name).await? {
        Some(existing) => {
            if !existing.spec.id.is_empty() && existing.spec.id != id {
                anyhow::bail!(
                    "cluster {} is already registered for another member (id {}, this one is {id})",
                    config.cluster_name,
                    existing.spec.id
                );
            }
            clusters
                .patch(
                    &config.cluster_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": spec})),
                )
                .await?;
        }
        None => {
            let cluster: Cluster = serde_json::from_value(json!({
                "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
                "metadata": {"name": config.cluster_name}, "spec": spec}))?;
            clusters.create(&PostParams::default(), &cluster).await?;
        }
    }
    if config.report_credentials || config.report_impersonator {
        report_secrets(control, member, config).await?;
    }
    Ok(())
}

/// Reports the member's credentials as upstream's agent does (`--report-secrets`): the
/// identities are prepared in the member as `karmadactl join` prepares them, their tokens
/// stored in the control plane's `karmada-cluster/<cluster>` and `<cluster>-impersonator`
/// Secrets (owned by the Cluster), and the Cluster points at them and at the member's API
/// endpoint — so the control plane can proxy to a Pull cluster it can reach.
async fn report_secrets(
    control: &kube::Client,
    member: &kube::Client,
    config: &AgentConfig,
) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let name = config.cluster_name.as_str();
    let (own, impersonator) = member_client::join::prepare_member(member, name).await?;
    let data = |s: &Secret, key: &str| -> Vec<u8> {
        s.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone()).unwrap_or_default()
    };
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(control.clone(), CLUSTER_NAMESPACE);
    let impersonator_name = member_client::join::impersonator_secret(name);
    let mut reported = Vec::new();
    let mut spec = json!({});
    if !config.api_endpoint.is_empty() {
        spec["apiEndpoint"] = json!(config.api_endpoint);
    }
    if config.report_credentials {
        reported.push((
            name.to_owned(),
            vec![("caBundle", data(&own, "ca.crt")), ("token", data(&own, "token"))],
        ));
        spec["secretRef"] = json!({"namespace": CLUSTER_NAMESPACE, "name": name});
    }
    if config.report_impersonator {
        reported.push((impersonator_name.clone(), vec![("token", data(&impersonator, "token"))]));
        spec["impersonatorSecretRef"] =
            json!({"namespace": CLUSTER_NAMESPACE, "name": impersonator_name});
    }
    let cluster = Api::<Cluster>::all(control.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": spec})))
        .await?;
    let owner = json!([{"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "name": name,
        "uid": cluster.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);
    for (secret_name, entries) in reported {
        member_client::join::put_secret(&secrets, &secret_name, entries, Some(&owner)).await?;
    }
    Ok(())
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Renews (creating on first use) the Lease `karmada-cluster/<cluster>`.
pub async fn renew_lease(control: &kube::Client, config: &AgentConfig) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(control.clone(), CLUSTER_NAMESPACE);
    let spec = LeaseSpec {
        holder_identity: Some(config.cluster_name.clone()),
        lease_duration_seconds: Some(config.lease_duration.as_secs() as i32),
        renew_time: Some(now()),
        ..LeaseSpec::default()
    };
    match leases.get_opt(&config.cluster_name).await? {
        Some(mut lease) => {
            lease.spec = Some(spec);
            leases.replace(&config.cluster_name, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.cluster_name.clone()),
                    namespace: Some(CLUSTER_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// Every `report_interval`: the Lease is renewed and the cluster's status observed through the
/// member client and written to the Cluster (when it changed).
async fn report(control: kube::Client, member: kube::Client, config: AgentConfig) {
    let clusters: Api<Cluster> = Api::all(control.clone());
    let settings = Settings { probe_timeout: config.probe_timeout, ..Settings::default() };
    loop {
        if let Err(e) = renew_lease(&control, &config).await {
            tracing::warn!(error = %e, "renewing the cluster lease failed");
        }
        match clusters.get_opt(&config.cluster_name).await {
            Ok(Some(cluster)) => {
                let status =
                    cluster_status::observe_member(Ok(member.clone()), &cluster, &settings).await;
                if let Err(e) = cluster_status::write(&control, &cluster, status).await {
                    tracing::warn!(error = %e, "writing the cluster status failed");
                }
            }
            Ok(None) => tracing::warn!(cluster = %config.cluster_name, "the Cluster is gone"),
            Err(e) => tracing::warn!(error = %e, "reading the Cluster failed"),
        }
        tokio::time::sleep(config.report_interval).await;
    }
}

/// Registers the cluster, then reports and executes until an error or the end of the process.
pub async fn run(
    control: kube::Client,
    member: kube::Client,
    config: AgentConfig,
) -> anyhow::Result<()> {
    register(&control, &member, &config).await?;
    renew_lease(&control, &config).await?;
    eprintln!("karmada agent: cluster {} registered in Pull mode", config.cluster_name);
    let selection = config.controllers.clone();
    for name in selection.missing() {
        tracing::info!(controller = name, "not implemented in karmada-rs; skipped");
    }
    let loops = selection.loops();
    // The status reporter renews the agent's Lease too (as upstream's clusterStatus does).
    let reporter = loops
        .contains(&crate::registry::Loop::AgentStatus)
        .then(|| tokio::spawn(report(control.clone(), member.clone(), config.clone())));
    // Its credentials reach its own Works and its own Cluster only.
    let works = crate::shared::Watched::start(
        kube::Api::namespaced(control.clone(), &crate::execution_namespace(&config.cluster_name)),
        kube::runtime::watcher::Config::default(),
    );
    // Its own EndpointSlices, collected for ServiceExports and MultiClusterServices.
    let _collector = loops.contains(&crate::registry::Loop::Collect).then(|| {
        let (collected, router) = crate::mcs::CollectorWorks::start(&works);
        let source = crate::mcs::WorkSource {
            notify: collected.register(&crate::execution_namespace(&config.cluster_name)),
            works: collected,
        };
        (
            crate::AbortOnDrop(router),
            crate::AbortOnDrop(tokio::spawn(crate::mcs::collect_member(
                control.clone(),
                member.clone(),
                config.cluster_name.clone(),
                selection.collect_parts(),
                source,
            ))),
        )
    });
    if !loops.contains(&crate::registry::Loop::Execution) {
        std::future::pending::<()>().await;
    }
    let scope = crate::execution::Scope::Agent { cluster: config.cluster_name.clone(), member };
    let clusters = crate::shared::Watched::start(
        kube::Api::all(control.clone()),
        kube::runtime::watcher::Config::default()
            .fields(&format!("metadata.name={}", config.cluster_name)),
    );
    let interpreter = crate::interpreting::Interpreting::start(&control);
    let result = crate::execution::run_scoped(
        control,
        config.probe_timeout,
        scope,
        works,
        clusters,
        interpreter,
        selection.execution_parts(),
    )
    .await;
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    result
}
