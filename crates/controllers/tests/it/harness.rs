//! A control plane and members in this process.

use std::sync::Arc;
use std::time::Duration;

use karmada_api::cluster::Cluster;
use kube::api::{Api, Patch, PatchParams};
use member::{MemberConfig, SimConfig};
use member_client::Credentials;
use serde_json::{Value, json};

pub struct Plane {
    pub client: kube::Client,
    pub members: Vec<(member::Member, kube::Client)>,
    _server: apiserver::Server,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

fn credentials(server: &apiserver::Server) -> Credentials {
    Credentials {
        ca_pem: server.ca_pem.as_bytes().to_vec(),
        token: None,
        cert_pem: Some(server.admin.cert_pem.as_bytes().to_vec()),
        key_pem: Some(server.admin.key_pem.as_bytes().to_vec()),
    }
}

async fn admin_client(name: &str, server: &apiserver::Server) -> kube::Client {
    member_client::watching_client_for(
        name,
        &server.url,
        &credentials(server),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

impl Plane {
    /// A control plane with Karmada's APIs and `members` simulated members joined in Push mode
    /// (`member1`, `member2`, ...; region `region<i>`), no controller running yet.
    pub async fn start(members: usize) -> Plane {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn store::Store> = Arc::new(store_memory::MemoryStore::default());
        let mut config = apiserver::Config::new(
            dir.path().join("control"),
            "127.0.0.1:0".parse().unwrap(),
            store,
        );
        control_plane::install(
            &mut config,
            &karmada_api::features::FeatureGates::parse(karmada_api::features::QUICK_START)
                .unwrap(),
        );
        let server = apiserver::start(config).await.unwrap();
        let client = admin_client("karmada", &server).await;
        let configs = (1..=members)
            .map(|i| MemberConfig {
                name: format!("member{i}"),
                bind: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.path().join("members"),
                kubeconfig: dir.path().join("members.config"),
                kubernetes_version: "v1.31.4".into(),
                sim: SimConfig { region: format!("region{i}"), ..SimConfig::default() },
            })
            .collect();
        let mut joined = Vec::new();
        for m in member::start_many(configs).await.unwrap() {
            let member_client = admin_client(&m.name, &m.server).await;
            let location = json!({"region": format!("region{}", joined.len() + 1)});
            member_client::join::join(
                &client,
                &member_client,
                &m.name,
                &m.server.url,
                m.server.ca_pem.as_bytes(),
                location,
            )
            .await
            .unwrap();
            joined.push((m, member_client));
        }
        Plane { client, members: joined, _server: server, tasks: Vec::new(), _dir: dir }
    }

    /// Runs the controller-manager with `--controllers=<controllers>` (and the taint manager as
    /// `taint_manager` says) until the plane is dropped.
    pub fn run(&mut self, controllers: &str, taint_manager: bool) {
        self.run_with(controllers, |s| s.enable_taint_manager = taint_manager);
    }

    /// Runs the controller-manager with `--controllers=<controllers>` and settings changed by
    /// `configure`, until the plane is dropped.
    pub fn run_with(
        &mut self,
        controllers: &str,
        configure: impl FnOnce(&mut controllers::Settings),
    ) {
        let selection = controllers::registry::Selection::parse(
            controllers::registry::CONTROLLERS,
            &[controllers],
        )
        .unwrap();
        let mut settings = controllers::Settings {
            cluster_status_update_frequency: Duration::from_millis(500),
            controllers: selection,
            // As upstream's install manifests (Failover, PolicyPreemption, ...).
            features: karmada_api::features::FeatureGates::parse(
                karmada_api::features::QUICK_START,
            )
            .unwrap(),
            ..controllers::Settings::default()
        };
        configure(&mut settings);
        let client = self.client.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = controllers::run(client, settings).await {
                panic!("controllers stopped: {e:#}");
            }
        }));
    }

    /// Runs the scheduler until the plane is dropped.
    pub fn run_scheduler(&mut self) {
        let client = self.client.clone();
        self.tasks.push(tokio::spawn(async move {
            let _ = controllers::scheduling::run(client, scheduler::Plugins::default()).await;
        }));
    }

    /// Marks every member Ready with room for work (what `clusterStatus` would report), for
    /// tests that do not run it.
    pub async fn members_ready(&self) {
        let clusters: Api<Cluster> = Api::all(self.client.clone());
        for (m, _) in &self.members {
            let status = json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady", "message": "cluster is healthy and ready to accept workloads", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}],
                "resourceSummary": {"allocatable": {"cpu": "100", "memory": "400Gi", "pods": "1000"}}
            }});
            clusters
                .patch_status(&m.name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .unwrap();
        }
    }

    /// Applies `object` (server-side apply) to the control plane.
    pub async fn apply(&self, object: Value) {
        apply_to(&self.client, object).await;
    }

    pub fn member(&self, name: &str) -> &kube::Client {
        &self.members.iter().find(|(m, _)| m.name == name).expect("a member of this plane").1
    }
}

/// Server-side applies `object` through `client`, finding its resource by discovery.
pub async fn apply_to(client: &kube::Client, object: Value) {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let name = object["metadata"]["name"].as_str().unwrap();
    let api: Api<kube::api::DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&object)).await.unwrap();
}

impl Drop for Plane {
    fn drop(&mut self) {
        // The servers' tasks end with the test's runtime.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Polls `f` every 100 ms until it yields, failing the test after `timeout` with `what`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Deployment template and a PropagationPolicy sending it to `clusters`, divided by weight
/// when `divided`.
pub fn web(namespace: &str, replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "10m"}}}]}}}})
}

pub fn policy(namespace: &str, clusters: &[&str], divided: bool) -> Value {
    let mut placement = json!({"clusterAffinity": {"clusterNames": clusters}});
    if divided {
        placement["replicaScheduling"] = json!({"replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {"staticWeightList": clusters.iter().map(|c| json!({"targetCluster": {"clusterNames": [c]}, "weight": 1})).collect::<Vec<_>>()}});
    }
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "placement": placement}})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}
