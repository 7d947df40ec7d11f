//! Clients of member clusters for what the control plane's API server itself reads from them
//! (karmada-search's caches, the metrics API): the control plane's credentials for each
//! cluster (its `secretRef`), one HTTP/2 client per cluster, rebuilt when the Cluster's
//! endpoint or spec changes.

use std::collections::HashMap;
use std::time::Duration;

use apimachinery::ApiError;
use apiserver::storage::Storage;
use karmada_api::cluster::Cluster;
use parking_lot::Mutex;

use crate::proxy::ClusterProxy;

/// Connecting to a member gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct MemberClients(Mutex<HashMap<String, (String, kube::Client)>>);

impl MemberClients {
    /// The client of `cluster` (built when missing or made for another version of it).
    pub async fn get(
        &self,
        storage: &Storage,
        cluster: &Cluster,
    ) -> Result<kube::Client, ApiError> {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let version = member_client::version(cluster);
        if let Some((built_for, client)) = self.0.lock().get(&name)
            && *built_for == version
        {
            return Ok(client.clone());
        }
        let secret_ref = cluster.spec.secret_ref.as_ref().ok_or_else(|| {
            ApiError::service_unavailable(format!("cluster {name} has no secretRef"))
        })?;
        let (_, data) =
            ClusterProxy::secret(storage, &secret_ref.namespace, &secret_ref.name).await?;
        let mut credentials = member_client::Credentials::from_secret_data(&data);
        if cluster.spec.insecure_skip_tls_verification {
            credentials.ca_pem.clear();
        }
        let client = member_client::watching_client_for(
            &name,
            &cluster.spec.api_endpoint,
            &credentials,
            CONNECT_TIMEOUT,
        )
        .await
        .map_err(|e| ApiError::service_unavailable(e.to_string()))?;
        self.0.lock().insert(name, (version, client.clone()));
        Ok(client)
    }

    /// Forgets the clients of clusters not in `keep`.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0.lock().retain(|name, _| keep(name));
    }
}
