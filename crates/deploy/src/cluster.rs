//! Installing on, waiting for and removing from a host cluster: the writes `karmadactl init`
//! and `deinit` and the `karmada init-secrets` Job make with what [`crate::manifests`] and
//! [`crate::pki`] decide.

use std::time::{Duration, Instant};

use apiserver::pki::PkiError;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::pki::{self, Pki};
use crate::{BOOTSTRAPPING_LABEL, CERT_SECRET, KUBECONFIG_SECRET};

/// Why installing, waiting or removing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{api_version} {kind} is not a kind karmadactl init installs")]
    UnknownKind { api_version: String, kind: String },
    #[error(
        "Secret {namespace}/{CERT_SECRET} exists but holds no ca.crt and admin.key: remove it, or complete it"
    )]
    IncompleteSecret { namespace: String },
    #[error(
        "{what} is not ready after {seconds}s ({why}): see `kubectl -n {namespace} describe {what}` on the host cluster"
    )]
    NotReady { what: String, seconds: u64, why: String, namespace: String },
    #[error("certificates: {0}")]
    Pki(#[from] PkiError),
    #[error("encoding an object: {0}")]
    Encode(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, InstallError>;

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> InstallError {
    let what = what.into();
    move |source| InstallError::Api { what, source }
}

/// The field manager of what `karmadactl init` applies.
pub const FIELD_MANAGER: &str = "karmadactl";

/// The kinds [`crate::manifests`] and [`crate::pki`] make: (apiVersion, kind, plural,
/// namespaced), in the order `deinit` removes them (workloads before what they use).
const KINDS: [(&str, &str, &str, bool); 11] = [
    ("apps/v1", "Deployment", "deployments", true),
    ("apps/v1", "StatefulSet", "statefulsets", true),
    ("batch/v1", "Job", "jobs", true),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
    ("v1", "Service", "services", true),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Secret", "secrets", true),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("v1", "Namespace", "namespaces", false),
];

fn resource(api_version: &str, kind: &str) -> Result<(ApiResource, bool)> {
    let (_, _, plural, namespaced) =
        KINDS.iter().find(|(v, k, _, _)| *v == api_version && *k == kind).ok_or_else(|| {
            InstallError::UnknownKind { api_version: api_version.into(), kind: kind.into() }
        })?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok((ApiResource::from_gvk_with_plural(&gvk, plural), *namespaced))
}

fn api_for(client: &kube::Client, object: &Value) -> Result<(Api<DynamicObject>, String)> {
    let str_of = |path: &str| object.pointer(path).and_then(Value::as_str).unwrap_or_default();
    let (resource, namespaced) = resource(str_of("/apiVersion"), str_of("/kind"))?;
    let api = if namespaced {
        Api::namespaced_with(client.clone(), str_of("/metadata/namespace"), &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    Ok((api, format!("{}/{}", resource.plural, str_of("/metadata/name"))))
}

/// Applies `objects` server-side, in order; returns what was applied (`deployments/name`).
pub async fn apply(client: &kube::Client, objects: &[Value]) -> Result<Vec<String>> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::new();
    for object in objects {
        let (api, what) = api_for(client, object)?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(api_error(format!("applying {what}")))?;
        applied.push(what);
    }
    Ok(applied)
}

/// What happened to a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretOutcome {
    Created,
    /// It existed (an earlier install, the Job, or the user's): kept as it was.
    Kept,
}

/// Creates [`CERT_SECRET`] (from `make`, called only when it is missing) and
/// [`KUBECONFIG_SECRET`] (at `server`) unless they exist. Returns the certificates in effect —
/// the existing ones when there were — and what happened to each Secret.
pub async fn ensure_secrets(
    client: &kube::Client,
    namespace: &str,
    server: &str,
    make: impl FnOnce() -> std::result::Result<Pki, PkiError>,
) -> Result<(Pki, Vec<(&'static str, SecretOutcome)>)> {
    let secrets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Secret"), "secrets"),
    );
    let read = |object: DynamicObject| -> Result<Pki> {
        let value = serde_json::to_value(object)?;
        Pki::from_secret(&value)
            .ok_or_else(|| InstallError::IncompleteSecret { namespace: namespace.to_owned() })
    };
    let reading = || api_error(format!("reading Secret {namespace}/{CERT_SECRET}"));
    let mut outcomes = Vec::new();
    let pki = match secrets.get_opt(CERT_SECRET).await.map_err(reading())? {
        Some(existing) => {
            outcomes.push((CERT_SECRET, SecretOutcome::Kept));
            read(existing)?
        }
        None => {
            let pki = make()?;
            let object: DynamicObject = serde_json::from_value(pki::cert_secret(namespace, &pki))?;
            match secrets.create(&PostParams::default(), &object).await {
                Ok(_) => {
                    outcomes.push((CERT_SECRET, SecretOutcome::Created));
                    pki
                }
                // Another installer got there first: use what it made.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    outcomes.push((CERT_SECRET, SecretOutcome::Kept));
                    read(secrets.get(CERT_SECRET).await.map_err(reading())?)?
                }
                Err(e) => return Err(api_error(format!("creating Secret {CERT_SECRET}"))(e)),
            }
        }
    };
    let object: DynamicObject =
        serde_json::from_value(pki::kubeconfig_secret(namespace, &pki, server))?;
    match secrets.create(&PostParams::default(), &object).await {
        Ok(_) => outcomes.push((KUBECONFIG_SECRET, SecretOutcome::Created)),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            outcomes.push((KUBECONFIG_SECRET, SecretOutcome::Kept));
        }
        Err(e) => return Err(api_error(format!("creating Secret {KUBECONFIG_SECRET}"))(e)),
    }
    Ok((pki, outcomes))
}

/// Whether a workload of [`crate::manifests`] has done what it is for: a Deployment's or
/// StatefulSet's replicas all ready and up to date, a Job succeeded. `None` for other kinds.
pub fn ready(object: &Value) -> Option<std::result::Result<(), String>> {
    let int = |path: &str| object.pointer(path).and_then(Value::as_i64).unwrap_or(0);
    let kind = object.get("kind")?.as_str()?;
    let outcome = match kind {
        "Deployment" | "StatefulSet" => {
            let want = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = int("/status/readyReplicas");
            let updated = int("/status/updatedReplicas");
            let observed = int("/status/observedGeneration") >= int("/metadata/generation");
            if observed && ready >= want && updated >= want {
                Ok(())
            } else {
                Err(format!("{ready}/{want} ready"))
            }
        }
        "Job" if int("/status/succeeded") >= 1 => Ok(()),
        "Job" => Err(format!("{} failed attempts", int("/status/failed"))),
        _ => return None,
    };
    Some(outcome)
}

/// Waits (up to `timeout` in all) until every workload among `objects` is [`ready`], in order,
/// reporting each through `progress` when it is.
pub async fn wait_ready(
    client: &kube::Client,
    objects: &[Value],
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for object in objects.iter().filter(|o| ready(o).is_some()) {
        let (api, what) = api_for(client, object)?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        loop {
            let state =
                match api.get_opt(name).await.map_err(api_error(format!("reading {what}")))? {
                    Some(live) => ready(&serde_json::to_value(live)?).unwrap_or(Ok(())),
                    None => Err("not found".to_owned()),
                };
            match state {
                Ok(()) => break,
                Err(why) if Instant::now() >= deadline => {
                    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
                    return Err(InstallError::NotReady {
                        what,
                        seconds: timeout.as_secs(),
                        why,
                        namespace: namespace.unwrap_or_default().to_owned(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        progress(&what);
    }
    Ok(())
}

/// Removes what `karmadactl init` installed in `namespace` (every object with the
/// bootstrapping label; volume claims only with `purge_namespace`, which also deletes the
/// namespace). Returns what was (or with `dry_run` would be) deleted.
pub async fn remove(
    client: &kube::Client,
    namespace: &str,
    purge_namespace: bool,
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let params = DeleteParams::background();
    for (api_version, kind, _, namespaced) in KINDS {
        if !namespaced || (kind == "PersistentVolumeClaim" && !purge_namespace) {
            continue;
        }
        let (resource, _) = resource(api_version, kind)?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let list = match api.list(&ListParams::default().labels(BOOTSTRAPPING_LABEL)).await {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => return Err(api_error(format!("listing {}", resource.plural))(e)),
        };
        for object in list.items {
            let name = object.metadata.name.unwrap_or_default();
            if !dry_run {
                match api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => {
                        return Err(api_error(format!("deleting {}/{name}", resource.plural))(e));
                    }
                }
            }
            removed.push(format!("{}/{name}", resource.plural));
        }
    }
    if purge_namespace {
        let (resource, _) = resource("v1", "Namespace")?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let what = format!("namespaces/{namespace}");
        if api.get_opt(namespace).await.map_err(api_error(what.clone()))?.is_some() {
            if !dry_run {
                api.delete(namespace, &params).await.map_err(api_error(what.clone()))?;
            }
            removed.push(format!("namespaces/{namespace}"));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_the_manifests_make_is_known() {
        let ha = crate::Options {
            store: crate::Store::Etcd { replicas: 3, image: "e".into() },
            apiserver_replicas: 2,
            ..crate::Options::default()
        };
        for object in crate::manifests(&ha).unwrap() {
            let (v, k) = (object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap());
            resource(v, k).unwrap();
        }
        resource("v1", "Secret").unwrap();
    }

    #[test]
    fn readiness_of_each_workload_kind() {
        let deployment = |ready: i64, generation: i64| {
            json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": generation, "readyReplicas": ready, "updatedReplicas": ready}})
        };
        assert_eq!(ready(&deployment(2, 2)), Some(Ok(())));
        assert_eq!(ready(&deployment(1, 2)), Some(Err("1/2 ready".into())));
        // An old generation's readiness does not count.
        assert!(matches!(ready(&deployment(2, 1)), Some(Err(_))));
        assert_eq!(ready(&json!({"kind": "Job", "status": {"succeeded": 1}})), Some(Ok(())));
        assert!(matches!(ready(&json!({"kind": "Job", "status": {}})), Some(Err(_))));
        assert_eq!(ready(&json!({"kind": "Service"})), None);
    }
}
