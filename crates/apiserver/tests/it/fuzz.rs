//! Random request bodies, paths, queries and content types never crash the server or produce a
//! 5xx: every error is a Kubernetes Status.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use crate::start;

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        Just(
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}"
                .to_owned()
        ),
        Just("[{\"op\":\"add\",\"path\":\"/data\",\"value\":{}}]".to_owned()),
        Just("{\"metadata\":{\"labels\":{\"bad key\":1}}}".to_owned()),
        Just("{\"metadata\":{\"finalizers\":[\"a\"],\"ownerReferences\":[{}]}}".to_owned()),
        Just("{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}".to_owned()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
        "\\{\"[a-z]{1,5}\":[0-9]{1,3}\\}",
        // Deep YAML of every kind of nesting (flow mappings are quadratic for the YAML parser).
        (1usize..3000, 0usize..3).prop_map(|(n, shape)| match shape {
            0 => format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)),
            1 => format!("{}{}", "[".repeat(n), "]".repeat(n)),
            _ => format!("{}x\n", "- ".repeat(n)),
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_status_errors_not_crashes() {
    let h = start().await;
    h.install_widgets().await;
    h.create_widget("w1", 1, serde_json::json!({})).await;
    let r = h
        .post(
            "/api/v1/namespaces/default/configmaps",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}",
        )
        .await;
    assert_eq!(r.status, 201);
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/x",
        "/api/v1/namespaces/default/configmaps/x/status",
        "/apis/apps/v1/namespaces/default/deployments",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
        "/apis/example.com/v1/namespaces/default/widgets/w1/status",
        "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
        "/api/v1/namespaces",
        "/api/v1/namespaces/default",
    ];
    let methods = ["POST", "PUT", "PATCH", "DELETE", "GET"];
    let types = [
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
    ];
    let queries = [
        "",
        "?fieldManager=f",
        "?dryRun=All",
        "?fieldValidation=Strict",
        "?dryRun=Bad",
        "?force=true&fieldManager=f",
        "?labelSelector=a%3D",
        "?limit=x",
        "?resourceVersion=abc",
    ];
    let cases = (0..paths.len(), 0..methods.len(), 0..types.len(), 0..queries.len(), body());
    let mut runner = TestRunner::new(Config { cases: 160, ..Config::default() });
    let generated: Vec<_> =
        (0..160).map(|_| cases.new_tree(&mut runner).unwrap().current()).collect();
    for (p, m, t, q, body) in generated {
        let path = format!("{}{}", paths[p], queries[q]);
        let r = h.raw(methods[m], &path, None, Some(types[t]), &body).await;
        assert!(
            r.status < 500,
            "{} {path} ({}) with {body:?} -> {}: {}",
            methods[m],
            types[t],
            r.status,
            r.body
        );
        if r.status >= 400 {
            let status = r.json();
            assert_eq!(status["kind"], "Status", "{}", r.body);
            assert_eq!(status["code"], r.status);
        }
    }
    // The server still serves normally.
    assert_eq!(h.get("/api/v1/namespaces/default/configmaps").await.status, 200);
}
