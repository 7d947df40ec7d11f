//! The service account token controller (kube-controller-manager's `serviceaccount-token`): a
//! Secret of type `kubernetes.io/service-account-token` naming a ServiceAccount gets a token
//! for it, the cluster's CA and the namespace, as upstream Karmada's `karmadactl join` and every
//! tool that creates such Secrets expect.

use std::sync::Arc;

use apimachinery::object::{self, meta_str};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::satoken::TokenSigner;
use crate::storage::{Decision, Storage};

const TYPE: &str = "kubernetes.io/service-account-token";
const NAME: &str = "kubernetes.io/service-account.name";
const UID: &str = "kubernetes.io/service-account.uid";
const PREFIX: &[u8] = b"/registry/core/secrets/";
/// Legacy service account tokens do not expire; ours last a century.
const LIFETIME: i64 = 100 * 365 * 24 * 3600;

/// What a token Secret lacks, if anything: the ServiceAccount (namespace, name) to fill it for.
pub fn wants_token(secret: &Value) -> Option<(String, String)> {
    if secret.get("type").and_then(Value::as_str) != Some(TYPE)
        || meta_str(secret, "deletionTimestamp").is_some()
    {
        return None;
    }
    let account = object::annotation(secret, NAME).filter(|n| !n.is_empty())?;
    let filled =
        secret.pointer("/data/token").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    (!filled).then(|| (object::namespace(secret).to_owned(), account.to_owned()))
}

async fn fill(
    api: &Storage,
    signer: &TokenSigner,
    ca_pem: &str,
    namespace: &str,
    secret_name: &str,
    account: &str,
) {
    let (Some(secrets), Some(accounts)) =
        (api.registry.get("", "v1", "secrets"), api.registry.get("", "v1", "serviceaccounts"))
    else {
        return;
    };
    let Ok(sa) = api.read(&accounts, Some(namespace), account).await else {
        // Kubernetes waits for the ServiceAccount; the Secret is looked at again when it changes.
        return;
    };
    let uid = meta_str(&sa, "uid").unwrap_or_default().to_owned();
    let Ok((token, _)) = signer.issue(namespace, account, &uid, &[], LIFETIME) else { return };
    let b64 = |s: &str| json!(base64::engine::general_purpose::STANDARD.encode(s));
    let result = api
        .guaranteed_update(&secrets, Some(namespace), secret_name, false, &mut |current| {
            let Some(current) = current else { return Ok(Decision::Unchanged) };
            if wants_token(current).is_none() {
                return Ok(Decision::Unchanged);
            }
            let mut new = current.clone();
            let data = new
                .as_object_mut()
                .map(|m| m.entry("data").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut);
            if let Some(data) = data {
                data.insert("token".into(), b64(&token));
                data.insert("ca.crt".into(), b64(ca_pem));
                data.insert("namespace".into(), b64(namespace));
            }
            object::string_map_mut(&mut new, "annotations").insert(UID.into(), json!(uid));
            Ok(Decision::Update(new))
        })
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, namespace, secret_name, "filling a service account token failed");
    }
}

/// Runs until the server shuts down.
pub async fn run(api: Arc<Storage>, signer: Arc<TokenSigner>, ca_pem: String) {
    let follower = Arc::clone(&api);
    crate::follow::puts(follower, PREFIX, |secret| {
        let api = Arc::clone(&api);
        let signer = Arc::clone(&signer);
        let ca_pem = ca_pem.clone();
        async move {
            if let Some((ns, account)) = wants_token(&secret) {
                fill(&api, &signer, &ca_pem, &ns, object::name(&secret), &account).await;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_secrets_get_a_token() {
        let secret = |extra: Value| {
            let mut s = json!({"type": TYPE, "metadata": {"name": "t", "namespace": "ns", "annotations": {NAME: "robot"}}});
            if let (Value::Object(s), Value::Object(e)) = (&mut s, extra) {
                s.extend(e);
            }
            s
        };
        assert_eq!(wants_token(&secret(json!({}))), Some(("ns".into(), "robot".into())));
        assert_eq!(wants_token(&secret(json!({"data": {"token": "eA=="}}))), None);
        assert_eq!(wants_token(&secret(json!({"type": "Opaque"}))), None);
        assert_eq!(wants_token(&json!({"type": TYPE, "metadata": {"name": "t"}})), None);
    }
}
