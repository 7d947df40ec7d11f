//! Multi-cluster services (`multicluster.x-k8s.io`, the Kubernetes MCS API), upstream's three
//! controllers:
//! - `serviceExport`: for each Ready push cluster, a watch of its ServiceExports and
//!   EndpointSlices; every EndpointSlice of an exported Service (not one Karmada wrote) is
//!   collected as a Work in the cluster's execution namespace (`suspendDispatching`: not applied
//!   back), labelled with the Service's namespace and name (`collected_works`); unexported or
//!   gone, its Work is deleted.
//! - `endpointSlice`: each collected Work becomes `imported-<cluster>-<slice>` in the Service's
//!   namespace on the control plane, labelled `kubernetes.io/service-name: derived-<service>`
//!   (`imported_slices`); a finalizer on the Work removes them when it goes.
//! - `serviceImport`: each `ClusterSetIP` ServiceImport gets a `derived-<name>` Service (ClusterIP,
//!   the import's ports, `spec.ips` as load-balancer ingress), owned by the import.
//!
//! A policy selecting a ServiceImport propagates its dependencies — the derived Service and its
//! EndpointSlices — so the consuming clusters get every exporting cluster's endpoints, kept
//! current as pods come and go.

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

// ---- serviceExport: member EndpointSlices of exported Services → Works on the control plane

/// Labels of a collected EndpointSlice's Work (upstream's): the exported Service's namespace
/// and name, and which controller collected it.
pub const SERVICE_NAMESPACE_LABEL: &str = "endpointslice.karmada.io/namespace";
pub const SERVICE_NAME_LABEL: &str = "endpointslice.karmada.io/name";
pub const WORK_MANAGED_BY_LABEL: &str = "endpointslice.karmada.io/managed-by";
/// Held on a collected EndpointSlice's Work until the EndpointSlices made from it are gone.
pub const ENDPOINTSLICE_FINALIZER: &str = "karmada.io/endpointslice-controller";
/// `endpointslice.kubernetes.io/managed-by` of the EndpointSlices Karmada writes.
pub const ENDPOINTSLICE_MANAGER: &str = "endpointslice-controller.karmada.io";
const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// The Works collecting a member's EndpointSlices: one per EndpointSlice of an exported
/// Service (`exports`: namespace, name) that Karmada did not write itself, by Work name.
pub fn collected_works(
    cluster: &str,
    exports: &std::collections::BTreeSet<(String, String)>,
    slices: &[Value],
) -> std::collections::BTreeMap<String, Value> {
    let namespace = karmada_api::names::execution_namespace(cluster);
    let mut works = std::collections::BTreeMap::new();
    for slice in slices {
        let labels = &slice["metadata"]["labels"];
        let Some(service) = labels[SERVICE_NAME].as_str() else { continue };
        let slice_namespace = apimachinery::object::namespace(slice).to_owned();
        if labels[MANAGED_BY] == ENDPOINTSLICE_MANAGER
            || !exports.contains(&(slice_namespace.clone(), service.to_owned()))
        {
            continue;
        }
        let slice_name = apimachinery::object::name(slice);
        let work_name =
            karmada_api::names::work_name("EndpointSlice", slice_name, &slice_namespace);
        let mut manifest = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": slice_namespace, "labels": labels},
            "addressType": slice["addressType"],
            "endpoints": slice.get("endpoints").cloned().unwrap_or_else(|| json!([])),
        });
        if let Some(ports) = slice.get("ports") {
            manifest["ports"] = ports.clone();
        }
        works.insert(
            work_name.clone(),
            json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": work_name, "namespace": namespace,
                    "labels": {SERVICE_NAMESPACE_LABEL: slice_namespace, SERVICE_NAME_LABEL: service,
                        WORK_MANAGED_BY_LABEL: "ServiceExport"},
                    "finalizers": [ENDPOINTSLICE_FINALIZER]},
                // Collected, not to be applied back to the member.
                "spec": {"suspendDispatching": true, "workload": {"manifests": [manifest]}}}),
        );
    }
    works
}

/// One push member: watches its ServiceExports and EndpointSlices and keeps its collected
/// Works (read from the controller-manager's shared Work cache) equal to `collected_works`,
/// until aborted.
async fn collect_member(
    control: kube::Client,
    member: kube::Client,
    cluster: String,
    cached_works: kube::runtime::reflector::Store<karmada_api::work::Work>,
) {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::DeleteParams;
    let notify = Arc::new(tokio::sync::Notify::new());
    let (slices, slice_watch) = crate::shared::cached::<EndpointSlice>(
        &member,
        watcher::Config::default().labels(SERVICE_NAME),
        &notify,
    );
    let (exports, export_watch) = crate::shared::cached::<karmada_api::mcs::ServiceExport>(
        &member,
        watcher::Config::default(),
        &notify,
    );
    let namespace = karmada_api::names::execution_namespace(&cluster);
    let works: Api<karmada_api::work::Work> = Api::namespaced(control, &namespace);
    loop {
        notify.notified().await;
        // Let a burst of changes settle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if slice_watch.is_finished() || export_watch.is_finished() {
            return;
        }
        let exported: std::collections::BTreeSet<(String, String)> = exports
            .state()
            .iter()
            .filter(|e| e.metadata.deletion_timestamp.is_none())
            .map(|e| {
                (
                    e.metadata.namespace.clone().unwrap_or_default(),
                    e.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        let listed: Vec<Value> = slices
            .state()
            .iter()
            .map(|s| serde_json::to_value(s.as_ref()).unwrap_or_default())
            .collect();
        let desired = collected_works(&cluster, &exported, &listed);
        let existing: Vec<Arc<karmada_api::work::Work>> = cached_works
            .state()
            .into_iter()
            .filter(|w| {
                w.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && w.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(WORK_MANAGED_BY_LABEL))
            })
            .collect();
        let mut failed = false;
        for (name, work) in &desired {
            let same = existing.iter().any(|w| {
                w.metadata.name.as_deref() == Some(name.as_str())
                    && serde_json::to_value(&w.spec.workload).ok().as_ref()
                        == Some(&work["spec"]["workload"])
            });
            if !same
                && let Err(e) = works
                    .patch(name, &PatchParams::apply(EXPORT_MANAGER).force(), &Patch::Apply(work))
                    .await
            {
                tracing::debug!(cluster, work = name, error = %e, "collect EndpointSlice");
                failed = true;
            }
        }
        for w in &existing {
            let name = w.metadata.name.clone().unwrap_or_default();
            if !desired.contains_key(&name)
                && w.metadata.deletion_timestamp.is_none()
                && let Err(e) = works.delete(&name, &DeleteParams::default()).await
            {
                tracing::debug!(cluster, work = name, error = %e, "remove collected EndpointSlice");
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            notify.notify_one();
        }
    }
}

const EXPORT_MANAGER: &str = "service-export-controller";

/// Runs the `serviceExport` controller until the future is dropped: one collector per Ready
/// push cluster (pull members' exports are not collected yet).
pub async fn run_service_export(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let mut collectors: std::collections::HashMap<String, tokio::task::JoinHandle<()>> =
        std::collections::HashMap::new();
    let notify = Arc::new(tokio::sync::Notify::new());
    let _watch = caches.clusters.notify_on_change(&notify);
    loop {
        let clusters = caches.clusters.store().state();
        let wanted: Vec<Arc<karmada_api::cluster::Cluster>> =
            clusters.into_iter().filter(|c| c.spec.sync_mode != "Pull" && c.is_ready()).collect();
        collectors.retain(|name, task| {
            let keep = !task.is_finished()
                && wanted.iter().any(|c| c.metadata.name.as_deref() == Some(name.as_str()));
            if !keep {
                task.abort();
            }
            keep
        });
        for cluster in wanted {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            if collectors.contains_key(&name) {
                continue;
            }
            match caches.member_clients.get(&client, &cluster, Duration::from_secs(5)).await {
                Ok((member, _)) => {
                    collectors.insert(
                        name.clone(),
                        tokio::spawn(collect_member(
                            client.clone(),
                            member,
                            name,
                            caches.works.store(),
                        )),
                    );
                }
                Err(e) => tracing::debug!(cluster = name, error = %e, "service export: no client"),
            }
        }
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

// ---- endpointSlice: collected Works → EndpointSlices of the derived Service on the control plane

/// The EndpointSlices a collected Work stands for on the control plane: each of its slices as
/// `imported-<cluster>-<name>`, labelled for the derived Service and with the Work's identity.
pub fn imported_slices(work: &karmada_api::work::Work) -> Vec<Value> {
    let namespace = work.metadata.namespace.clone().unwrap_or_default();
    let Some(cluster) = karmada_api::names::cluster_of_execution_namespace(&namespace) else {
        return Vec::new();
    };
    let labels = work.metadata.labels.clone().unwrap_or_default();
    let service = labels.get(SERVICE_NAME_LABEL).cloned().unwrap_or_default();
    let permanent_id =
        labels.get(karmada_api::names::WORK_PERMANENT_ID_LABEL).cloned().unwrap_or_default();
    work.spec
        .workload
        .manifests
        .iter()
        .map(|m| m.value())
        .filter(|m| m["kind"] == "EndpointSlice")
        .map(|m| {
            let mut slice = m.clone();
            let mut slice_labels = m["metadata"]["labels"].clone();
            if !slice_labels.is_object() {
                slice_labels = json!({});
            }
            slice_labels[karmada_api::names::WORK_PERMANENT_ID_LABEL] = json!(permanent_id);
            slice_labels[SERVICE_NAME] = json!(derived_service_name(&service));
            slice_labels[MANAGED_BY] = json!(ENDPOINTSLICE_MANAGER);
            slice["metadata"] = json!({
                "name": format!("imported-{cluster}-{}", apimachinery::object::name(&m)),
                "namespace": apimachinery::object::namespace(&m),
                "labels": slice_labels,
                "annotations": {"work.karmada.io/namespace": namespace,
                    "work.karmada.io/name": work.metadata.name.clone().unwrap_or_default()},
            });
            slice
        })
        .collect()
}

async fn reconcile_work(
    work: Arc<karmada_api::work::Work>,
    client: Arc<kube::Client>,
) -> Result<Action, Error> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{DeleteParams, ListParams};
    let labels = work.metadata.labels.clone().unwrap_or_default();
    let Some(service_namespace) = labels.get(SERVICE_NAMESPACE_LABEL) else {
        return Ok(Action::await_change());
    };
    let slices: Api<EndpointSlice> = Api::namespaced((*client).clone(), service_namespace);
    let has_finalizer =
        work.metadata.finalizers.iter().flatten().any(|f| f == ENDPOINTSLICE_FINALIZER);
    if work.metadata.deletion_timestamp.is_some() {
        // Its EndpointSlices go first, then the finalizer.
        let work_name = work.metadata.name.clone().unwrap_or_default();
        let work_namespace = work.metadata.namespace.clone().unwrap_or_default();
        let listed = slices
            .list(&ListParams::default().labels(&format!("{MANAGED_BY}={ENDPOINTSLICE_MANAGER}")))
            .await?;
        for slice in listed.items {
            let annotations = slice.metadata.annotations.clone().unwrap_or_default();
            if annotations.get("work.karmada.io/name") == Some(&work_name)
                && annotations.get("work.karmada.io/namespace") == Some(&work_namespace)
            {
                let name = slice.metadata.name.clone().unwrap_or_default();
                match slices.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if has_finalizer {
            let remaining: Vec<&String> = work
                .metadata
                .finalizers
                .iter()
                .flatten()
                .filter(|f| *f != ENDPOINTSLICE_FINALIZER)
                .collect();
            let works: Api<karmada_api::work::Work> =
                Api::namespaced((*client).clone(), &work_namespace);
            let patch = json!({"metadata": {"finalizers": remaining,
                "resourceVersion": work.metadata.resource_version}});
            match works.patch(&work_name, &PatchParams::default(), &Patch::Merge(patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::await_change());
    }
    for slice in imported_slices(&work) {
        let name = apimachinery::object::name(&slice).to_owned();
        slices
            .patch(&name, &PatchParams::apply(ENDPOINTSLICE_MANAGER).force(), &Patch::Apply(&slice))
            .await?;
    }
    Ok(Action::await_change())
}

fn work_error_policy(
    _: Arc<karmada_api::work::Work>,
    error: &Error,
    _: Arc<kube::Client>,
) -> Action {
    crate::retry_after(
        "endpoint slice",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the `endpointSlice` controller until the future is dropped.
pub async fn run_endpoint_slice(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<karmada_api::work::Work> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default().labels(SERVICE_NAMESPACE_LABEL))
        .with_config(crate::controller_config())
        .run(reconcile_work, work_error_policy, Arc::new(client))
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

    #[test]
    fn exported_services_endpoint_slices_are_collected_and_imported() {
        let slice = |name: &str, ns: &str, service: &str, managed: Option<&str>| {
            let mut labels = json!({"kubernetes.io/service-name": service});
            if let Some(m) = managed {
                labels["endpointslice.kubernetes.io/managed-by"] = json!(m);
            }
            json!({"metadata": {"name": name, "namespace": ns, "labels": labels, "resourceVersion": "7"},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.10.0.3"], "conditions": {"ready": true}}],
                "ports": [{"name": "tcp", "port": 42, "protocol": "TCP"}]})
        };
        let exports: std::collections::BTreeSet<(String, String)> =
            [("shop".to_owned(), "hello".to_owned())].into();
        let slices = [
            slice("hello-abc", "shop", "hello", Some("endpointslice-controller.k8s.io")),
            slice("other-abc", "shop", "other", None),
            slice("hello-xyz", "dev", "hello", None),
            slice("imported-member2-hello-abc", "shop", "hello", Some(ENDPOINTSLICE_MANAGER)),
        ];
        let works = collected_works("member1", &exports, &slices);
        assert_eq!(works.len(), 1, "only the exported Service's own slices: {works:#?}");
        let (name, work) = works.into_iter().next().unwrap();
        assert_eq!(name, karmada_api::names::work_name("EndpointSlice", "hello-abc", "shop"));
        assert_eq!(work["metadata"]["namespace"], "karmada-es-member1");
        assert_eq!(work["metadata"]["labels"][SERVICE_NAME_LABEL], "hello");
        assert_eq!(work["spec"]["suspendDispatching"], true, "collected, not applied back");
        let manifest = &work["spec"]["workload"]["manifests"][0];
        assert!(manifest["metadata"].get("resourceVersion").is_none());
        assert_eq!(manifest["endpoints"][0]["addresses"][0], "10.10.0.3");
        let mut work: karmada_api::work::Work = serde_json::from_value(work).unwrap();
        work.metadata
            .labels
            .get_or_insert_default()
            .insert(karmada_api::names::WORK_PERMANENT_ID_LABEL.into(), "id-1".into());
        let imported = imported_slices(&work);
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0]["metadata"]["name"], "imported-member1-hello-abc");
        assert_eq!(imported[0]["metadata"]["namespace"], "shop");
        assert_eq!(
            imported[0]["metadata"]["labels"]["kubernetes.io/service-name"],
            "derived-hello"
        );
        assert_eq!(
            imported[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            ENDPOINTSLICE_MANAGER
        );
        assert_eq!(
            imported[0]["metadata"]["labels"][karmada_api::names::WORK_PERMANENT_ID_LABEL],
            "id-1"
        );
        assert_eq!(imported[0]["endpoints"][0]["addresses"][0], "10.10.0.3");
    }
}
