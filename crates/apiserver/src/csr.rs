//! Certificate signing requests (`certificates.k8s.io/v1`) signed by the API server's own CA,
//! as kube-controller-manager's approving and signing controllers do: a pending request for the
//! `kubernetes.io/kube-apiserver-client` signer is shown to the configured [`CsrApprover`],
//! which approves it, denies it, or leaves it for a person (`kubectl certificate approve`);
//! every approved request gets its client certificate. This is how a cluster agent trades a
//! bootstrap token for its own credentials.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::pki::{self, Authority};
use crate::storage::{Decision, Storage};

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

/// What an approver makes of a pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve(String),
    Deny(String),
    /// Not the approver's to decide: it stays pending for someone with the `approve` verb.
    Pending,
}

/// Decides which pending requests are approved or denied automatically.
pub trait CsrApprover: Send + Sync {
    fn review(&self, request: &Request<'_>) -> Verdict;
}

fn conditions(object: &Value) -> Vec<&str> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("type").and_then(Value::as_str)).collect())
        .unwrap_or_default()
}

async fn handle(
    api: &Arc<Storage>,
    authority: &Authority,
    approver: &dyn CsrApprover,
    object: &Value,
) {
    if object.pointer("/spec/signerName").and_then(Value::as_str) != Some(CLIENT_SIGNER)
        || object
            .pointer("/status/certificate")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
    {
        return;
    }
    let decided = conditions(object);
    if decided.iter().any(|c| matches!(*c, "Denied" | "Failed")) {
        return;
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let pem = object
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let now = crate::clock::now_rfc3339();
    let condition = |type_: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let sign = || authority.sign_client_request(&pem).map_err(|e| format!("signing failed: {e}"));
    // (conditions to add, certificate)
    let outcome: Option<(Vec<Value>, Option<String>)> = if decided.contains(&"Approved") {
        // Approved by someone: the signing controller's part.
        Some(match sign() {
            Ok(cert) => (Vec::new(), Some(cert)),
            Err(reason) => (vec![condition("Failed", "SignerFailed", &reason)], None),
        })
    } else {
        match pki::request_subject(&pem) {
            None => Some((
                vec![condition(
                    "Denied",
                    "AutoDenied",
                    "the request is not a valid PEM certificate signing request",
                )],
                None,
            )),
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
                match approver.review(&request) {
                    Verdict::Pending => None,
                    Verdict::Deny(reason) => {
                        Some((vec![condition("Denied", "AutoDenied", &reason)], None))
                    }
                    Verdict::Approve(reason) => Some(match sign() {
                        Ok(cert) => {
                            (vec![condition("Approved", "AutoApproved", &reason)], Some(cert))
                        }
                        Err(e) => (
                            vec![
                                condition("Approved", "AutoApproved", &reason),
                                condition("Failed", "SignerFailed", &e),
                            ],
                            None,
                        ),
                    }),
                }
            }
        }
    };
    let Some((added, certificate)) = outcome else { return };
    let Some(def) = api.registry.get("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return;
    };
    let result = api
        .guaranteed_update(&def, None, name, false, &mut |current| {
            let Some(current) = current else { return Ok(Decision::Unchanged) };
            if current
                .pointer("/status/certificate")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty())
                || conditions(current) != decided
            {
                return Ok(Decision::Unchanged);
            }
            let mut new = current.clone();
            if !added.is_empty() {
                let list = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
                new["status"]["conditions"] =
                    Value::Array(list.into_iter().chain(added.iter().cloned()).collect());
            }
            if let Some(cert) = &certificate {
                new["status"]["certificate"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(cert));
            }
            Ok(Decision::Update(new))
        })
        .await;
    match result {
        Err(e) => tracing::warn!(csr = name, error = %e.message, "cannot record the CSR decision"),
        Ok(_) if certificate.is_some() => tracing::info!(csr = name, "signed a client certificate"),
        Ok(_) => tracing::info!(csr = name, "decided a CSR"),
    }
}

/// Watches certificate signing requests and decides the pending ones.
pub async fn run(api: Arc<Storage>, authority: Arc<Authority>, approver: Arc<dyn CsrApprover>) {
    let Some(def) = api.registry.get("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return;
    };
    let prefix = def.collection_prefix(None);
    let follower = Arc::clone(&api);
    crate::follow::puts(follower, prefix.as_bytes(), |object| {
        let (api, authority, approver) =
            (Arc::clone(&api), Arc::clone(&authority), Arc::clone(&approver));
        async move { handle(&api, &authority, approver.as_ref(), &object).await }
    })
    .await;
}
