//! Joining a member cluster in Push mode, with upstream Karmada's layout (what its karmadactl,
//! controllers and e2e framework expect): in the member, namespace `karmada-cluster` holding a
//! ServiceAccount `karmada-<cluster>` bound to ClusterRole
//! `karmada-controller-manager:karmada-<cluster>` and an impersonator ServiceAccount, each with
//! a service account token Secret; in the control plane, Secrets `karmada-cluster/<cluster>`
//! (`caBundle`, `token`) and `<cluster>-impersonator` (`token`), owned by the Cluster.
//! The control plane then holds a dedicated identity for the member, never the credentials
//! the operator joined with.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use karmada_api::cluster::Cluster;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use karmada_api::names::CLUSTER_NAMESPACE;

/// The label upstream puts on what Karmada creates for itself.
pub const SYSTEM_LABEL: &str = "karmada.io/system";
/// The impersonator ServiceAccount (for the cluster proxy).
pub const IMPERSONATOR: &str = "karmada-impersonator";
const MANAGER: &str = "karmadactl";
/// How long the member may take to issue its tokens.
const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// The ServiceAccount the control plane uses in member `cluster`.
pub fn service_account(cluster: &str) -> String {
    format!("karmada-{cluster}")
}

/// The ClusterRole (and its binding) granting that ServiceAccount its access.
pub fn cluster_role(cluster: &str) -> String {
    format!("karmada-controller-manager:{}", service_account(cluster))
}

/// The control plane's Secret holding the impersonator's token.
pub fn impersonator_secret(cluster: &str) -> String {
    format!("{cluster}-impersonator")
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{what} in cluster {cluster}: {source}")]
    Member {
        cluster: String,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what} in the control plane: {source}")]
    Control {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "cluster {cluster} issued no token for ServiceAccount {CLUSTER_NAMESPACE}/{account} within {}s (does it run kube-controller-manager's token controller?)",
        TOKEN_WAIT.as_secs()
    )]
    NoToken { cluster: String, account: String },
}

/// What to join.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    pub name: String,
    /// The member's API server as the control plane reaches it.
    pub api_endpoint: String,
    /// The member's id (its kube-system namespace UID).
    pub id: String,
    /// Fields merged into the Cluster's spec (`provider`, `region`, `zones`).
    pub extra_spec: Value,
}

fn labels() -> Value {
    json!({SYSTEM_LABEL: "true"})
}

async fn apply<K>(api: &Api<K>, name: &str, object: Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&object)).await
}

/// Creates, in the member, the identities the control plane will use and returns their token
/// Secrets (the control plane's own, the impersonator's).
pub async fn prepare_member(
    member: &kube::Client,
    cluster: &str,
) -> Result<(Secret, Secret), JoinError> {
    let fail = |what: &str| {
        let (cluster, what) = (cluster.to_owned(), what.to_owned());
        move |source| JoinError::Member { cluster, what, source }
    };
    apply(
        &Api::<Namespace>::all(member.clone()),
        CLUSTER_NAMESPACE,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLUSTER_NAMESPACE, "labels": labels()}}),
    )
    .await
    .map_err(fail("creating namespace karmada-cluster"))?;
    let accounts: Api<ServiceAccount> = Api::namespaced(member.clone(), CLUSTER_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(member.clone(), CLUSTER_NAMESPACE);
    let own = service_account(cluster);
    for account in [IMPERSONATOR, own.as_str()] {
        apply(
            &accounts,
            account,
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": account, "namespace": CLUSTER_NAMESPACE, "labels": labels()}}),
        )
        .await
        .map_err(fail(&format!("creating ServiceAccount {account}")))?;
    }
    let role = cluster_role(cluster);
    apply(
        &Api::<ClusterRole>::all(member.clone()),
        &role,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": role, "labels": labels()},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["get"]}]}),
    )
    .await
    .map_err(fail(&format!("creating ClusterRole {role}")))?;
    apply(
        &Api::<ClusterRoleBinding>::all(member.clone()),
        &role,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": role, "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": own, "namespace": CLUSTER_NAMESPACE}]}),
    )
    .await
    .map_err(fail(&format!("creating ClusterRoleBinding {role}")))?;
    let mut tokens = Vec::new();
    for account in [own.as_str(), IMPERSONATOR] {
        if secrets.get_opt(account).await.map_err(fail("reading token Secrets"))?.is_none() {
            let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {"name": account, "namespace": CLUSTER_NAMESPACE,
                    "annotations": {"kubernetes.io/service-account.name": account}}});
            apply(&secrets, account, secret)
                .await
                .map_err(fail(&format!("creating the token Secret of {account}")))?;
        }
        let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
        let secret = loop {
            let secret = secrets.get(account).await.map_err(fail("reading token Secrets"))?;
            if secret.data.as_ref().is_some_and(|d| d.get("token").is_some_and(|t| !t.0.is_empty()))
            {
                break secret;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(JoinError::NoToken {
                    cluster: cluster.to_owned(),
                    account: account.to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokens.push(secret);
    }
    let impersonator = tokens.pop().unwrap_or_default();
    let own = tokens.pop().unwrap_or_default();
    Ok((own, impersonator))
}

/// Joins a member: its identities prepared by [`prepare_member`] (whose tokens are in
/// `own`/`impersonator`; `ca_pem` is the member's CA when its token Secret lacks one), the
/// control plane's Secrets and the Cluster.
/// Joins the member `member` reaches in one step, as `karmadactl join` does once its checks
/// pass: its id read from the member (the `kube-system` namespace UID), its ServiceAccounts
/// prepared, and its Cluster registered with `extra_spec` merged in.
pub async fn join(
    control: &kube::Client,
    member: &kube::Client,
    name: &str,
    api_endpoint: &str,
    ca_pem: &[u8],
    extra_spec: Value,
) -> Result<Cluster, JoinError> {
    let id = Api::<Namespace>::all(member.clone())
        .get("kube-system")
        .await
        .map_err(|source| JoinError::Member {
            cluster: name.to_owned(),
            what: "reading namespace kube-system".to_owned(),
            source,
        })?
        .metadata
        .uid
        .unwrap_or_default();
    let (own, impersonator) = prepare_member(member, name).await?;
    let options = JoinOptions {
        name: name.to_owned(),
        api_endpoint: api_endpoint.to_owned(),
        id,
        extra_spec,
    };
    register(control, &options, &own, &impersonator, ca_pem).await
}

/// Writes a credentials Secret in the control plane's `karmada-cluster` whole (PUT, so that the
/// credentials of an earlier join — a client certificate — go), owned by `owner` when given
/// (else keeping the owners it has).
pub async fn put_secret(
    secrets: &Api<Secret>,
    name: &str,
    data: Vec<(&str, Vec<u8>)>,
    owner: Option<&Value>,
) -> Result<(), kube::Error> {
    let mut secret: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": CLUSTER_NAMESPACE, "labels": labels(),
            "ownerReferences": owner}}))
    .map_err(kube::Error::SerdeError)?;
    secret.data = Some(data.into_iter().map(|(k, v)| (k.to_owned(), ByteString(v))).collect());
    match secrets.get_opt(name).await? {
        Some(existing) => {
            secret.metadata.resource_version = existing.metadata.resource_version;
            if owner.is_none() {
                secret.metadata.owner_references = existing.metadata.owner_references;
            }
            secrets.replace(name, &Default::default(), &secret).await?;
        }
        None => {
            secrets.create(&Default::default(), &secret).await?;
        }
    }
    Ok(())
}

pub async fn register(
    control: &kube::Client,
    options: &JoinOptions,
    own: &Secret,
    impersonator: &Secret,
    ca_pem: &[u8],
) -> Result<Cluster, JoinError> {
    let fail = |what: &str| {
        let what = what.to_owned();
        move |source| JoinError::Control { what, source }
    };
    let name = options.name.as_str();
    apply(
        &Api::<Namespace>::all(control.clone()),
        CLUSTER_NAMESPACE,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLUSTER_NAMESPACE, "labels": labels()}}),
    )
    .await
    .map_err(fail("creating namespace karmada-cluster"))?;
    let data = |s: &Secret, key: &str| -> Vec<u8> {
        s.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone()).unwrap_or_default()
    };
    let ca = match data(own, "ca.crt") {
        ca if ca.is_empty() => ca_pem.to_vec(),
        ca => ca,
    };
    let secrets: Api<Secret> = Api::namespaced(control.clone(), CLUSTER_NAMESPACE);
    let impersonator_name = impersonator_secret(name);
    for (secret_name, data) in [
        (name.to_owned(), vec![("caBundle", ca), ("token", data(own, "token"))]),
        (impersonator_name.clone(), vec![("token", data(impersonator, "token"))]),
    ] {
        put_secret(&secrets, &secret_name, data, None)
            .await
            .map_err(fail(&format!("writing Secret {secret_name}")))?;
    }
    let mut spec = json!({
        "id": options.id, "syncMode": "Push", "apiEndpoint": options.api_endpoint,
        "secretRef": {"namespace": CLUSTER_NAMESPACE, "name": name},
        "impersonatorSecretRef": {"namespace": CLUSTER_NAMESPACE, "name": impersonator_name},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), options.extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    let cluster = apply(
        &Api::<Cluster>::all(control.clone()),
        name,
        json!({"apiVersion": Cluster::API_VERSION, "kind": Cluster::KIND, "metadata": {"name": name}, "spec": spec}),
    )
    .await
    .map_err(fail(&format!("creating Cluster {name}")))?;
    // The Secrets go with the Cluster.
    let owner = json!([{"apiVersion": Cluster::API_VERSION, "kind": Cluster::KIND, "name": name,
        "uid": cluster.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);
    for secret_name in [name, impersonator_name.as_str()] {
        secrets
            .patch(
                secret_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"ownerReferences": owner}})),
            )
            .await
            .map_err(fail(&format!("owning Secret {secret_name}")))?;
    }
    Ok(cluster)
}

/// Removes what [`prepare_member`] created in the member.
pub async fn clean_member(member: &kube::Client, cluster: &str) -> Result<(), JoinError> {
    let fail = |what: &str| {
        let (cluster, what) = (cluster.to_owned(), what.to_owned());
        move |source| JoinError::Member { cluster, what, source }
    };
    let gone = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    };
    let role = cluster_role(cluster);
    gone(
        Api::<ClusterRoleBinding>::all(member.clone())
            .delete(&role, &DeleteParams::default())
            .await
            .map(drop),
    )
    .map_err(fail(&format!("deleting ClusterRoleBinding {role}")))?;
    gone(
        Api::<ClusterRole>::all(member.clone())
            .delete(&role, &DeleteParams::default())
            .await
            .map(drop),
    )
    .map_err(fail(&format!("deleting ClusterRole {role}")))?;
    let accounts: Api<ServiceAccount> = Api::namespaced(member.clone(), CLUSTER_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(member.clone(), CLUSTER_NAMESPACE);
    for account in [service_account(cluster).as_str(), IMPERSONATOR] {
        gone(secrets.delete(account, &DeleteParams::default()).await.map(drop))
            .map_err(fail(&format!("deleting Secret {account}")))?;
        gone(accounts.delete(account, &DeleteParams::default()).await.map(drop))
            .map_err(fail(&format!("deleting ServiceAccount {account}")))?;
    }
    // The namespace goes too when Karmada made it (an operator's own one stays).
    let namespaces = Api::<Namespace>::all(member.clone());
    let ours = namespaces
        .get_opt(CLUSTER_NAMESPACE)
        .await
        .map_err(fail("reading namespace karmada-cluster"))?
        .and_then(|ns| ns.metadata.labels)
        .is_some_and(|l| l.get(SYSTEM_LABEL).map(String::as_str) == Some("true"));
    if ours {
        gone(namespaces.delete(CLUSTER_NAMESPACE, &DeleteParams::default()).await.map(drop))
            .map_err(fail("deleting namespace karmada-cluster"))?;
    }
    Ok(())
}
