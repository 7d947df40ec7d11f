//! Simulated member clusters.
//!
//! A member is our API server on the in-memory store, plus a simulation that makes workloads
//! behave as on a real cluster: Ready nodes with capacity, a scheduler that binds pods by
//! resource requests, node selectors and tolerations (or leaves them Pending/Unschedulable), a
//! kubelet that starts bound pods after a short delay, and controllers for Deployments,
//! ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs and Services. Everything a control
//! plane sees goes through the standard Kubernetes API, so it cannot tell a simulated member
//! from a real cluster. Many members can share one process (`start_many`).
//!
//! Faults (unreachable, unhealthy, node NotReady, failing workload pods) are switched through a
//! small JSON file per member (see [`Faults`]) so that tests and the `karmada fault` command can
//! script them.

pub mod exec;
pub mod logs;
pub mod metrics;
mod sim;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use apiserver::Server;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use sim::SimConfig;

/// How to start one simulated member.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    pub name: String,
    pub bind: SocketAddr,
    /// Certificates and the fault file live in `data_dir/<name>`.
    pub data_dir: PathBuf,
    /// The kubeconfig file a context named `name` is merged into.
    pub kubeconfig: PathBuf,
    pub kubernetes_version: String,
    pub sim: SimConfig,
}

/// Fault injection switches, read from `data_dir/<name>/faults.json` (absent: no faults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Stop answering API requests.
    pub unreachable: bool,
    /// Fail `/readyz`, `/healthz` and `/livez`.
    pub unhealthy: bool,
    /// Nodes to report NotReady.
    pub not_ready_nodes: Vec<String>,
    /// Workloads (`namespace/name` of a Deployment, StatefulSet, DaemonSet or Job) whose pods
    /// crash-loop.
    pub failing_workloads: Vec<String>,
    /// CPU load of the member's containers, as a factor of what they request (unset: idle, as
    /// a container nothing sends work to); a pod's `simulation.karmada-rs.io/load` annotation
    /// sets its own.
    pub load: Option<f64>,
    /// Images the member's registry does not have: a full reference (`repo:tag`), a repository
    /// (every tag), or a pattern where `*` stands for any text (`example.com/*`). A pod that
    /// needs one stays Pending in `ErrImagePull`/`ImagePullBackOff`, as on a real cluster; pods
    /// already running keep running (their image was pulled before).
    pub missing_images: Vec<String>,
}

impl Faults {
    /// Whether `image` is one of the [`missing_images`](Self::missing_images).
    pub fn image_missing(&self, image: &str) -> bool {
        // The repository without its tag or digest: a `:` after the last `/` starts the tag.
        let repository = image.split('@').next().unwrap_or(image);
        let repository = match repository.rfind(':') {
            Some(colon) if !repository[colon..].contains('/') => &repository[..colon],
            _ => repository,
        };
        self.missing_images.iter().any(|p| glob(p, image) || glob(p, repository))
    }

    pub fn path(data_dir: &Path, member: &str) -> PathBuf {
        data_dir.join(member).join("faults.json")
    }

    pub fn load(path: &Path) -> Faults {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Writes the faults for a member (atomically).
    pub fn save(&self, data_dir: &Path, member: &str) -> std::io::Result<()> {
        let path = Faults::path(data_dir, member);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else { return pattern == text };
    let Some(mut text) = text.strip_prefix(head) else { return false };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let tail = parts.pop().unwrap_or_default();
    for part in parts {
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.len() >= tail.len() && text.ends_with(tail)
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("starting the API server of {name}: {source}")]
    Start {
        name: String,
        #[source]
        source: apiserver::StartError,
    },
    #[error("writing the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: apiserver::pki::PkiError,
    },
}

/// A running simulated member.
pub struct Member {
    pub name: String,
    pub server: Server,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Member {
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.server.shutdown().await;
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }
}

async fn start_server(
    config: &MemberConfig,
    store: Arc<dyn store::Store>,
    faults: &Arc<parking_lot::RwLock<Faults>>,
) -> Result<Server, MemberError> {
    let dir = config.data_dir.join(&config.name);
    let mut api_config = apiserver::Config::new(&dir, config.bind, store);
    api_config.context = config.name.clone();
    api_config.kubeconfig = Some(dir.join("kubeconfig"));
    api_config.kubernetes_version = config.kubernetes_version.clone();
    // As a real cluster: requests are authorized by RBAC (the admin kubeconfig is
    // system:masters; the control plane's own ServiceAccount is bound to its ClusterRole at
    // join; the cluster proxy's impersonator to what the unifiedAuth controller allows).
    api_config.rbac = true;
    api_config.subresources.push((
        String::new(),
        "pods".into(),
        "log".into(),
        Arc::new(logs::PodLogs) as Arc<dyn apiserver::Subresource>,
    ));
    for (name, attach) in [("exec", false), ("attach", true)] {
        api_config.subresources.push((
            String::new(),
            "pods".into(),
            name.into(),
            Arc::new(exec::PodStream { attach }) as Arc<dyn apiserver::Subresource>,
        ));
    }
    api_config.computed.extend(metrics::kinds(faults));
    // ResourceQuota admission, as a real cluster's API server does (the simulation recounts
    // the quotas' usage, as kube-controller-manager does).
    let quota = Arc::new(apiserver::quota::ResourceQuotaAdmission::default());
    for (group, plural) in [
        ("", "pods"),
        ("", "services"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "persistentvolumeclaims"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ] {
        api_config.write_checks.push((
            group.to_owned(),
            plural.to_owned(),
            Arc::clone(&quota) as Arc<dyn apiserver::storage::WriteCheck>,
        ));
    }
    apiserver::start(api_config)
        .await
        .map_err(|source| MemberError::Start { name: config.name.clone(), source })
}

/// A simulated member's identity (its kube-system namespace UID) is kept in
/// `data_dir/<name>/cluster-id`, so that a member restarted on the same data dir is the same
/// cluster to a control plane that joined it before.
async fn seed_identity(config: &MemberConfig, store: &Arc<dyn store::Store>) {
    let path = config.data_dir.join(&config.name).join("cluster-id");
    let id = match std::fs::read_to_string(&path) {
        Ok(id) if id.trim().len() == 36 => id.trim().to_owned(),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(&path, &id);
            id
        }
    };
    let registry = apiserver::Registry::with_builtins();
    let Some(def) = registry.get("", "v1", "namespaces") else { return };
    let mut namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}});
    if apiserver::strategy::prepare_create(
        &def,
        &mut namespace,
        &apiserver::api::now_rfc3339(),
        &id,
    )
    .is_ok()
    {
        let key = def.key(None, "kube-system");
        let _ = store
            .create(
                bytes::Bytes::from(key.into_bytes()),
                bytes::Bytes::from(apiserver::codec::encode(&namespace)),
            )
            .await;
    }
}

/// Starts one member and merges its context into `config.kubeconfig`.
pub async fn start(config: MemberConfig) -> Result<Member, MemberError> {
    let mut members = start_many(vec![config]).await?;
    Ok(members.remove(0))
}

/// Starts several members (one port each) and merges all their contexts at once.
pub async fn start_many(configs: Vec<MemberConfig>) -> Result<Vec<Member>, MemberError> {
    let mut members = Vec::new();
    let mut entries: Vec<(PathBuf, apiserver::pki::KubeconfigEntry)> = Vec::new();
    for (position, mut config) in configs.into_iter().enumerate() {
        config.sim.pod_subnet.get_or_insert((10 + position % 240) as u8);
        let store: Arc<dyn store::Store> = Arc::new(store_memory::MemoryStore::default());
        seed_identity(&config, &store).await;
        let fault_file = Faults::path(&config.data_dir, &config.name);
        let faults = Arc::new(parking_lot::RwLock::new(Faults::load(&fault_file)));
        let server = start_server(&config, store, &faults).await?;
        entries.push((config.kubeconfig.clone(), server.kubeconfig_entry(&config.name)));
        let api = Arc::clone(&server.api);
        let tasks = vec![
            tokio::spawn(watch_faults(Arc::clone(&api), fault_file, Arc::clone(&faults))),
            tokio::spawn(sim::run(
                Arc::clone(&server.storage),
                config.name.clone(),
                api.git_version().to_owned(),
                config.sim.clone(),
                faults,
            )),
        ];
        members.push(Member { name: config.name.clone(), server, tasks });
    }
    // One write per kubeconfig file, so that many members do not race on it.
    let mut by_file: std::collections::BTreeMap<PathBuf, Vec<apiserver::pki::KubeconfigEntry>> =
        Default::default();
    for (path, entry) in entries {
        by_file.entry(path).or_default().push(entry);
    }
    for (path, entries) in by_file {
        apiserver::pki::write_kubeconfig(&path, &entries, None).map_err(|source| {
            MemberError::Kubeconfig { path: path.display().to_string(), source }
        })?;
    }
    Ok(members)
}

/// Applies the fault file to the server switches, re-reading it a few times a second.
async fn watch_faults(
    api: Arc<apiserver::Api>,
    path: PathBuf,
    faults: Arc<parking_lot::RwLock<Faults>>,
) {
    let mut last: Option<std::time::SystemTime> = None;
    loop {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if modified != last {
            last = modified;
            let current = Faults::load(&path);
            api.availability.unreachable.store(current.unreachable, Ordering::SeqCst);
            api.availability.unhealthy.store(current.unhealthy, Ordering::SeqCst);
            *faults.write() = current;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_match_references_repositories_and_patterns() {
        let faults = Faults {
            missing_images: vec![
                "fake/*".into(),
                "nginx:0.0.0".into(),
                "registry.local:5000/app".into(),
                "*:broken".into(),
            ],
            ..Faults::default()
        };
        let cases = [
            ("fake/nginx:1.19.0", true),
            ("fake/nginx", true),
            ("docker.io/fake/nginx:1", false),
            ("nginx:0.0.0", true),
            ("nginx:1.25", false),
            ("nginx", false),
            ("registry.local:5000/app:v2", true),
            ("registry.local:5000/app@sha256:abc", true),
            ("registry.local:5000/application:v2", false),
            ("busybox:broken", true),
            ("busybox:latest", false),
        ];
        for (image, missing) in cases {
            assert_eq!(faults.image_missing(image), missing, "{image}");
        }
        assert!(!Faults::default().image_missing("anything"));
        assert!(
            glob("a*b*c", "a-b-c") && glob("*", "") && !glob("a*b", "ba") && glob("ab*b", "abb")
        );
        assert!(!glob("ab*ba", "aba"));
    }
}
