//! The service account token controller: a token Secret is filled in, and its token
//! authenticates as the ServiceAccount.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_token_secrets_are_filled_in() {
    let h = start().await;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}});
    assert_eq!(
        h.post("/api/v1/namespaces/default/serviceaccounts", &sa.to_string()).await.status,
        201
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}});
    assert_eq!(h.post("/api/v1/namespaces/default/secrets", &secret.to_string()).await.status, 201);
    let mut filled = Value::Null;
    for _ in 0..100 {
        filled = h.get("/api/v1/namespaces/default/secrets/robot-token").await.json();
        if filled.pointer("/data/token").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decode = |k: &str| {
        let text = filled["data"][k].as_str().unwrap_or_else(|| panic!("no {k}: {filled}"));
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
    };
    assert_eq!(decode("namespace"), "default");
    assert!(decode("ca.crt").contains("BEGIN CERTIFICATE"));
    assert!(filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"].is_string());
    // The token is the ServiceAccount's identity.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": decode("token")}});
    let r = h.post("/apis/authentication.k8s.io/v1/tokenreviews", &review.to_string()).await;
    assert_eq!(
        r.json()["status"]["user"]["username"],
        "system:serviceaccount:default:robot",
        "{}",
        r.body
    );
    // Other Secrets are left alone.
    let plain = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}, "data": {"k": "dg=="}});
    assert_eq!(h.post("/api/v1/namespaces/default/secrets", &plain.to_string()).await.status, 201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let plain = h.get("/api/v1/namespaces/default/secrets/plain").await.json();
    assert!(plain["data"].get("token").is_none());
}
