//! Certificate signing requests (`certificates.k8s.io/v1`) signed by the API server's own CA:
//! a pending request for the `kubernetes.io/kube-apiserver-client` signer is shown to the
//! configured [`CsrApprover`]; when it approves, the request is marked Approved and gets a
//! client certificate, otherwise Denied with the approver's reason. This is how a cluster agent
//! trades a bootstrap token for its own credentials.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::{Value, json};
use store::{Event, ListOptions};

use crate::api::{Api, Decision};
use crate::pki::{self, Authority};

/// The signer this server implements.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// A request as the approver sees it.
pub struct Request<'a> {
    /// Who submitted it (set by the server from the authenticated user).
    pub username: &'a str,
    pub groups: Vec<&'a str>,
    /// The subject asked for.
    pub common_name: &'a str,
    pub organizations: &'a [String],
}

/// Decides which requests to sign: `Ok(reason)` approves, `Err(reason)` denies.
pub trait CsrApprover: Send + Sync {
    fn review(&self, request: &Request<'_>) -> Result<String, String>;
}

async fn handle(api: &Arc<Api>, authority: &Authority, approver: &dyn CsrApprover, object: &Value) {
    let decided = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    if decided || object.pointer("/spec/signerName").and_then(Value::as_str) != Some(CLIENT_SIGNER)
    {
        return;
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let pem = object
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let now = crate::api::now_rfc3339();
    let outcome = match pki::request_subject(&pem) {
        None => Err("the request is not a valid PEM certificate signing request".to_owned()),
        Some((common_name, organizations)) => {
            let groups = object
                .pointer("/spec/groups")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let request = Request {
                username: object
                    .pointer("/spec/username")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                groups,
                common_name: &common_name,
                organizations: &organizations,
            };
            approver.review(&request).and_then(|reason| {
                authority
                    .sign_client_request(&pem)
                    .map(|cert| (reason, cert))
                    .map_err(|e| format!("signing failed: {e}"))
            })
        }
    };
    let status = match &outcome {
        Ok((reason, cert)) => json!({
            "conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved",
                "message": reason, "lastUpdateTime": now, "lastTransitionTime": now}],
            "certificate": base64::engine::general_purpose::STANDARD.encode(cert),
        }),
        Err(reason) => json!({
            "conditions": [{"type": "Denied", "status": "True", "reason": "AutoDenied",
                "message": reason, "lastUpdateTime": now, "lastTransitionTime": now}],
        }),
    };
    let Some(def) = api.registry.get("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return;
    };
    let result = api
        .guaranteed_update(&def, None, name, false, &mut |current| {
            let Some(current) = current else { return Ok(Decision::Unchanged) };
            if current
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
            {
                return Ok(Decision::Unchanged);
            }
            let mut new = current.clone();
            new["status"] = status.clone();
            Ok(Decision::Update(new))
        })
        .await;
    match (result, outcome) {
        (Err(e), _) => {
            tracing::warn!(csr = name, error = %e.message, "cannot record the CSR decision")
        }
        (Ok(_), Ok(_)) => tracing::info!(csr = name, "signed a client certificate"),
        (Ok(_), Err(reason)) => tracing::info!(csr = name, %reason, "denied a CSR"),
    }
}

/// Watches certificate signing requests and decides the pending ones.
pub async fn run(api: Arc<Api>, authority: Arc<Authority>, approver: Arc<dyn CsrApprover>) {
    let Some(def) = api.registry.get("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return;
    };
    let prefix = def.collection_prefix(None);
    let mut shutdown = api.shutdown.clone();
    loop {
        let page = match api.store.list(prefix.as_bytes(), ListOptions::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "listing CSRs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for kv in &page.items {
            let object = crate::codec::decode(&kv.value, kv.mod_revision.0);
            handle(&api, &authority, approver.as_ref(), &object).await;
        }
        let Ok(mut stream) = api.store.watch(prefix.as_bytes(), page.revision).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = stream.next() => match event {
                    Some(Ok(Event::Put { kv, .. })) => {
                        let object = crate::codec::decode(&kv.value, kv.mod_revision.0);
                        handle(&api, &authority, approver.as_ref(), &object).await;
                    }
                    Some(Ok(Event::Delete { .. })) => {}
                    Some(Err(_)) => break,
                    None => return,
                },
            }
        }
    }
}
