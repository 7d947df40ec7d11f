//! Multi-cluster services (`multicluster.x-k8s.io`), upstream's `serviceImport` controller: each
//! `ClusterSetIP` ServiceImport gets a `derived-<name>` Service in its namespace on the control
//! plane (ClusterIP, the import's ports; its `spec.ips` as the Service's load-balancer ingress),
//! which follows the ServiceImport to the clusters it is propagated to (a policy selecting a
//! ServiceImport propagates its dependencies: the derived Service and its EndpointSlices). The
//! derived Service is owned by the ServiceImport, so it goes when the import goes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use karmada_api::events::Reason;
use karmada_api::mcs::ServiceImport;
use karmada_api::names::derived_service_name;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::{Value, json};

const MANAGER: &str = "service-import-controller";

/// The derived Service a ServiceImport asks for (`None`: not a `ClusterSetIP` import), and its
/// status.
pub fn derived_service(import: &ServiceImport) -> Option<(Value, Value)> {
    if import.spec.type_ != "ClusterSetIP" {
        return None;
    }
    let name = import.metadata.name.clone().unwrap_or_default();
    let namespace = import.metadata.namespace.clone().unwrap_or_default();
    let ports: Vec<Value> = import
        .spec
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({"port": p.port,
                "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())});
            if !p.name.is_empty() {
                port["name"] = json!(p.name);
            }
            if let Some(app) = &p.app_protocol {
                port["appProtocol"] = json!(app);
            }
            port
        })
        .collect();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": derived_service_name(&name), "namespace": namespace,
            "ownerReferences": [{"apiVersion": ServiceImport::API_VERSION, "kind": ServiceImport::KIND,
                "name": name, "uid": import.metadata.uid.clone().unwrap_or_default(),
                "blockOwnerDeletion": true}]},
        "spec": {"type": "ClusterIP", "ports": ports},
    });
    let ingress: Vec<Value> = import.spec.ips.iter().map(|ip| json!({"ip": ip})).collect();
    Some((service, json!({"loadBalancer": {"ingress": ingress}})))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

struct Context {
    client: kube::Client,
    events: crate::events::Events,
}

async fn reconcile(import: Arc<ServiceImport>, ctx: Arc<Context>) -> Result<Action, Error> {
    if import.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some((service, status)) = derived_service(&import) else {
        return Ok(Action::await_change());
    };
    let namespace = import.metadata.namespace.clone().unwrap_or_default();
    let name = service["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let regarding = crate::events::reference_of(import.as_ref());
    let written = async {
        services
            .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&service))
            .await?;
        services
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
    }
    .await;
    match written {
        Ok(_) => {
            ctx.events.record(
                regarding,
                Reason::SyncDerivedServiceSucceed,
                format!(
                    "Sync derived service for serviceImport({}) succeed.",
                    import.metadata.name.as_deref().unwrap_or_default()
                ),
            );
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.events.record(regarding, Reason::SyncDerivedServiceFailed, e.to_string());
            Err(e.into())
        }
    }
}

fn error_policy(_: Arc<ServiceImport>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "service import",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the `serviceImport` controller until the future is dropped.
pub async fn run_service_import(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<ServiceImport> = Api::all(client.clone());
    let events = crate::events::Events::start(client.clone(), "service-import-controller");
    Controller::new(api, watcher::Config::default())
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, Arc::new(Context { client, events }))
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_set_ip_import_derives_a_service_with_its_ports() {
        let import: ServiceImport = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "shop", "uid": "u1"},
            "spec": {"type": "ClusterSetIP", "ips": ["10.1.2.3"], "ports": [
                {"name": "tcp", "port": 42, "protocol": "TCP"}, {"name": "udp", "port": 42, "protocol": "UDP"}]}
        }))
        .unwrap();
        let (service, status) = derived_service(&import).unwrap();
        assert_eq!(service["metadata"]["name"], "derived-hello");
        assert_eq!(service["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(service["spec"]["type"], "ClusterIP");
        assert_eq!(
            service["spec"]["ports"],
            json!([{"name": "tcp", "port": 42, "protocol": "TCP"}, {"name": "udp", "port": 42, "protocol": "UDP"}])
        );
        assert_eq!(status["loadBalancer"]["ingress"], json!([{"ip": "10.1.2.3"}]));
        let mut headless = import;
        headless.spec.type_ = "Headless".into();
        assert_eq!(derived_service(&headless), None);
    }
}
