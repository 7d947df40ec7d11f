//! `karmada bench mcs`: how long a pod that becomes Ready in an exporting cluster takes to
//! appear as an endpoint in an importing cluster. The API server, controller-manager and
//! scheduler run as child processes; two simulated members run here. A Deployment of 0
//! replicas lives in member1. `--via service-export` (the MCS API): its Service too, exported
//! by a ServiceExport propagated there, and a ServiceImport propagated to member2 (endpoints
//! arrive in `derived-web`'s slices). `--via multi-cluster-service`: the Service is on the
//! control plane with a CrossCluster MultiClusterService from member1 to member2 (endpoints
//! arrive in the dispatched `member1-…` slices). The Deployment is scaled to `--pods` and the
//! bench watches member1's pods (when each is first seen Ready) and member2's EndpointSlices
//! (when each pod IP first appears).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use karmada_api::cluster::Cluster;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use member::SimConfig;
use serde_json::json;

use super::process::{self, Proc};
use super::report::{Report, Samples};

/// How the endpoints travel.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// ServiceExport in the provider, ServiceImport in the consumer.
    ServiceExport,
    /// A CrossCluster MultiClusterService.
    MultiClusterService,
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Pods started in the exporting cluster.
    #[arg(long, default_value_t = 100)]
    pods: i32,
    #[arg(long, value_enum, default_value = "service-export")]
    via: Via,
    #[arg(long)]
    json: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn apply(client: &kube::Client, object: serde_json::Value) -> anyhow::Result<()> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or_default();
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            object["metadata"]["namespace"].as_str().unwrap_or("default"),
            &resource,
        ),
        kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    api.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&object)).await?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_apiserver, kc, client) = process::memory_control_plane(dir.path()).await?;
    let sim = SimConfig { system_components: false, ..SimConfig::default() };
    let members = member::start_many(process::member_configs(dir.path(), 2, sim)).await?;
    let _controller_manager = Proc::karmada(&["controller-manager", "--kubeconfig", &kc])?;
    let _scheduler = Proc::karmada(&["scheduler", "--kubeconfig", &kc])?;
    for m in &members {
        crate::up_cmd::join(&client, &m.name, &m.server).await?;
    }
    let member_client = |name: &str| {
        let path = dir.path().join("members.config");
        let context = name.to_owned();
        async move {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            let options =
                kube::config::KubeConfigOptions { context: Some(context), ..Default::default() };
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            anyhow::Ok(kube::Client::try_from(config)?)
        }
    };
    let (exporter, importer) = (member_client("member1").await?, member_client("member2").await?);
    let clusters: Api<Cluster> = Api::all(client.clone());
    until("both clusters Ready", || async {
        clusters
            .list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.iter().filter(|c| c.is_ready()).count() == 2)
    })
    .await?;
    apply(&exporter, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "1m"}}}]}}}})).await?;
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}});
    let slice_selector = match args.via {
        Via::ServiceExport => {
            apply(&exporter, service).await?;
            export_and_import(&client, &exporter, &importer).await?;
            "kubernetes.io/service-name=derived-web".to_owned()
        }
        Via::MultiClusterService => {
            apply(&client, service).await?;
            apply(&client, json!({"apiVersion": "networking.karmada.io/v1alpha1", "kind": "MultiClusterService",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"types": ["CrossCluster"], "providerClusters": [{"name": "member1"}],
                    "consumerClusters": [{"name": "member2"}]}})).await?;
            let services =
                Api::<k8s_openapi::api::core::v1::Service>::namespaced(importer.clone(), "default");
            until("the Service in member2", || async {
                services.get_opt("web").await.ok().flatten().is_some()
            })
            .await?;
            format!(
                "kubernetes.io/service-name=web,endpointslice.kubernetes.io/managed-by={}",
                karmada_api::names::ENDPOINTSLICE_DISPATCH_CONTROLLER
            )
        }
    };
    // Watch both ends, then start the pods.
    let ready_at: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let seen_at: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let pods_watch = {
        let ready_at = Arc::clone(&ready_at);
        let api: Api<Pod> = Api::namespaced(exporter.clone(), "default");
        tokio::spawn(
            watcher(api, watcher::Config::default().labels("app=web"))
                .default_backoff()
                .applied_objects()
                .for_each(move |pod| {
                    if let Ok(pod) = pod {
                        let status = pod.status.unwrap_or_default();
                        let ready = status
                            .conditions
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                        if let (true, Some(ip)) = (ready, status.pod_ip) {
                            lock(&ready_at).entry(ip).or_insert_with(Instant::now);
                        }
                    }
                    async {}
                }),
        )
    };
    let slices_watch = {
        let seen_at = Arc::clone(&seen_at);
        let api: Api<EndpointSlice> = Api::namespaced(importer.clone(), "default");
        tokio::spawn(
            watcher(api, watcher::Config::default().labels(&slice_selector))
                .default_backoff()
                .applied_objects()
                .for_each(move |slice| {
                    if let Ok(slice) = slice {
                        let now = Instant::now();
                        let mut seen = lock(&seen_at);
                        for endpoint in slice.endpoints {
                            for ip in endpoint.addresses {
                                seen.entry(ip).or_insert(now);
                            }
                        }
                    }
                    async {}
                }),
        )
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    Api::<Deployment>::namespaced(exporter.clone(), "default")
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": args.pods}})),
        )
        .await?;
    let pods = args.pods.max(0) as usize;
    let arrived = until("every pod's endpoint in member2", || async {
        let ready = lock(&ready_at);
        let seen = lock(&seen_at);
        ready.len() >= pods && ready.keys().all(|ip| seen.contains_key(ip))
    })
    .await;
    if let Err(e) = arrived {
        anyhow::bail!(
            "{e}: {} pods Ready in member1, {} endpoints in member2",
            lock(&ready_at).len(),
            lock(&seen_at).len()
        );
    }
    let total = started.elapsed();
    pods_watch.abort();
    slices_watch.abort();
    let mut samples = Samples::default();
    {
        let ready = lock(&ready_at);
        let seen = lock(&seen_at);
        for (ip, at) in ready.iter() {
            if let Some(s) = seen.get(ip) {
                samples.push(s.saturating_duration_since(*at));
            }
        }
    }
    let mut report = Report::default();
    let subject = format!("{} pods, member1 → member2, {:?}", args.pods, args.via);
    report.latency(
        &subject,
        "pod Ready in the exporter → its endpoint in the importer",
        &mut samples,
    );
    report.add(&subject, "scale → every endpoint in the importer", total.as_secs_f64(), "s");
    futures::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
    report.print(args.json)
}

/// The MCS API's way: the MCS CRDs in both members, a ServiceExport propagated to member1 and
/// a ServiceImport to member2, until member2 has the derived Service.
async fn export_and_import(
    client: &kube::Client,
    exporter: &kube::Client,
    importer: &kube::Client,
) -> anyhow::Result<()> {
    apply(client, json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterPropagationPolicy",
        "metadata": {"name": "mcs-crds"},
        "spec": {"resourceSelectors": [
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "serviceexports.multicluster.x-k8s.io"},
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "serviceimports.multicluster.x-k8s.io"}],
            "placement": {"clusterAffinity": {"clusterNames": ["member1", "member2"]}}}})).await?;
    until("the MCS CRDs in both members", || async {
        let listed = |c: kube::Client| async move {
            let r = kube::discovery::ApiResource {
                group: "multicluster.x-k8s.io".into(),
                version: "v1alpha1".into(),
                api_version: "multicluster.x-k8s.io/v1alpha1".into(),
                kind: "ServiceImport".into(),
                plural: "serviceimports".into(),
            };
            Api::<DynamicObject>::all_with(c, &r).list(&ListParams::default()).await.is_ok()
        };
        listed(exporter.clone()).await && listed(importer.clone()).await
    })
    .await?;
    for object in [
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "web", "namespace": "default"}}),
        json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "export-web", "namespace": "default"},
            "spec": {"resourceSelectors": [{"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport", "name": "web"}],
                "placement": {"clusterAffinity": {"clusterNames": ["member1"]}}}}),
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "ClusterSetIP", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "import-web", "namespace": "default"},
            "spec": {"resourceSelectors": [{"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport", "name": "web"}],
                "placement": {"clusterAffinity": {"clusterNames": ["member2"]}}}}),
    ] {
        apply(client, object).await?;
    }
    let derived =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(importer.clone(), "default");
    until("the derived Service in member2", || async {
        derived.get_opt("derived-web").await.ok().flatten().is_some()
    })
    .await?;
    Ok(())
}
