//! Raw wire checks from KUBE-API-COMPAT.md §7 (check numbers in comments).

use std::time::Duration;

use serde_json::json;

use crate::start;

/// Kinds that are not stored list only the verbs they answer, in both discovery forms, so
/// clients that watch every listable kind (Karmada's resource detector) leave them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_verbs_each_kind_answers() {
    let h = start().await;
    let verbs = |doc: &serde_json::Value, name: &str| {
        doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["verbs"]
            .clone()
    };
    let authn = h.get("/apis/authentication.k8s.io/v1").await.json();
    assert_eq!(verbs(&authn, "tokenreviews"), json!(["create"]));
    assert_eq!(verbs(&authn, "selfsubjectreviews"), json!(["create"]));
    let authz = h.get("/apis/authorization.k8s.io/v1").await.json();
    for review in [
        "subjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "localsubjectaccessreviews",
    ] {
        assert_eq!(verbs(&authz, review), json!(["create"]), "{review}");
    }
    let core = h.get("/api/v1").await.json();
    assert_eq!(
        verbs(&core, "configmaps"),
        json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"])
    );
    let v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let doc = h.raw("GET", "/apis", Some(v2), None, "").await.json();
    let group = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "authentication.k8s.io")
        .unwrap();
    let tokenreviews = group["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "tokenreviews")
        .unwrap();
    assert_eq!(tokenreviews["verbs"], json!(["create"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_forms() {
    let h = start().await;
    h.install_widgets().await;
    // 2
    let v2 =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = h.raw("GET", "/apis", Some(v2), None, "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.contains("v=v2;") && r.content_type.contains("as=APIGroupDiscoveryList"),
        "{}",
        r.content_type
    );
    let doc = r.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    for group in doc["items"].as_array().unwrap() {
        for version in group["versions"].as_array().unwrap() {
            for resource in version["resources"].as_array().unwrap() {
                assert!(
                    !resource["responseKind"]["kind"].as_str().unwrap().is_empty(),
                    "{resource}"
                );
            }
        }
    }
    // 3: never v2 to a client that asked only for v2beta1.
    let r = h.raw("GET", "/apis", Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"), None, "").await;
    assert!(
        r.content_type.contains("v=v2beta1") && !r.content_type.contains("v=v2;"),
        "{}",
        r.content_type
    );
    assert_eq!(r.json()["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    // 4
    let groups = h.raw("GET", "/apis", Some("application/json"), None, "").await.json();
    assert_eq!(groups["kind"], "APIGroupList");
    let example = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "example.com")
        .unwrap()
        .clone();
    assert_eq!(example["preferredVersion"]["version"], "v1");
    // 5
    let core = h.get("/api").await.json();
    assert_eq!(core["kind"], "APIVersions");
    assert_eq!(core["versions"], json!(["v1"]));
    let aggregated = h.raw("GET", "/api", Some(v2), None, "").await.json();
    assert_eq!(aggregated["items"][0]["metadata"]["name"], "");
    // 6
    let list = h.get("/apis/example.com/v1").await.json();
    assert_eq!(list["groupVersion"], "example.com/v1");
    let names: Vec<&str> =
        list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["widgets", "widgets/status", "widgets/scale"]);
    assert_eq!(list["resources"][2]["group"], "autoscaling");
    assert_eq!(list["resources"][2]["kind"], "Scale");
    // 13
    let r = h
        .raw(
            "GET",
            "/openapi/v2",
            Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            None,
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.content_type.contains('@'));
    // 1
    let version = h.get("/version").await.json();
    assert_eq!(version["minor"], "32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_pages_tables_and_errors() {
    let h = start().await;
    h.install_widgets().await;
    for (i, name) in ["w1", "w2", "w3"].iter().enumerate() {
        h.create_widget(name, i as i64 + 1, json!({"app": "demo"})).await;
    }
    // 16, 17
    let first = h.get("/apis/example.com/v1/namespaces/default/widgets?limit=2").await.json();
    assert_eq!(first["kind"], "WidgetList");
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["items"][0]["kind"], "Widget");
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
    let second = h
        .get(&format!("/apis/example.com/v1/namespaces/default/widgets?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["metadata"].get("continue").is_none());
    assert_eq!(first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"]);
    // 75: kube-rs's leading '&'.
    assert_eq!(
        h.get("/apis/example.com/v1/namespaces/default/widgets?&limit=500").await.status,
        200
    );
    // 22
    let r = h
        .get("/apis/example.com/v1/namespaces/default/widgets?resourceVersionMatch=NotOlderThan")
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["reason"], "Invalid");
    // 23
    let r = h.get("/apis/example.com/v1/namespaces/default/widgets/nope").await;
    let status = r.json();
    assert_eq!(
        (status["code"].clone(), status["reason"].clone(), status["details"]["name"].clone()),
        (json!(404), json!("NotFound"), json!("nope"))
    );
    // 25
    let table = h
        .raw(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets",
            Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
            None,
            "",
        )
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Size", "Phase", "Color", "Age"]);
    assert_eq!(table["columnDefinitions"][3]["priority"], 1);
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    // 72
    let r = h
        .raw(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets/w1",
            Some("application/vnd.kubernetes.protobuf,application/json"),
            None,
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "Widget");
    // 14
    let bogus = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "b"}, "spec": {"size": 1, "bogus": true}});
    let r = h
        .post(
            "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
            &bogus.to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("strict decoding error"), "{}", r.body);
    let r = h
        .post(
            "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Ignore",
            &bogus.to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json()["spec"].get("bogus").is_none(), "unknown fields are pruned");
    // 51
    let apply = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}});
    let r = h
        .raw(
            "PATCH",
            "/apis/example.com/v1/namespaces/default/widgets/w1",
            None,
            Some("application/apply-patch+yaml"),
            &apply.to_string(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("fieldManager"), "{}", r.body);
    let r = h
        .raw(
            "PATCH",
            "/apis/example.com/v1/namespaces/default/widgets/w1?force=true",
            None,
            Some("application/merge-patch+json"),
            "{}",
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Bodies over 3 MiB are refused.
    let huge = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"huge\"}},\"data\":{{\"a\":\"{}\"}}}}",
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let r = h.post("/api/v1/namespaces/default/configmaps", &huge).await;
    assert_eq!(r.status, 413);
    // Malformed JSON is a 400 Status, never a panic.
    let r = h.post("/api/v1/namespaces/default/configmaps", "{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["kind"], "Status");
}

fn lines(body: &str) -> Vec<serde_json::Value> {
    body.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_framing_bookmarks_initial_events_and_expiry() {
    let h = start().await;
    h.install_widgets().await;
    let w1 = h.create_widget("w1", 1, json!({"app": "demo"})).await;
    h.create_widget("w2", 2, json!({})).await;
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    // 63: no resourceVersion → synthetic ADDED for existing objects.
    let r = h.get(&format!("{base}?watch=true&timeoutSeconds=1")).await;
    let events = lines(&r.body);
    assert_eq!(events.iter().filter(|e| e["type"] == "ADDED").count(), 2);
    assert!(events.iter().all(|e| e["type"] != "BOOKMARK"), "no unrequested bookmarks");
    // 64
    let r = h
        .get(&format!(
            "{base}?watch=true&allowWatchBookmarks=true&timeoutSeconds=2&resourceVersion={}",
            w1["metadata"]["resourceVersion"].as_str().unwrap()
        ))
        .await;
    let events = lines(&r.body);
    let bookmark = events.iter().find(|e| e["type"] == "BOOKMARK").expect("a bookmark");
    assert_eq!(bookmark["object"]["kind"], "Widget");
    assert_eq!(bookmark["object"]["apiVersion"], "example.com/v1");
    assert!(bookmark["object"]["metadata"]["resourceVersion"].is_string());
    // 65
    let r = h.get(&format!("{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")).await;
    let events = lines(&r.body);
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "ADDED");
    assert_eq!(events[2]["type"], "BOOKMARK");
    assert_eq!(events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    let r = h.get(&format!("{base}?watch=true&sendInitialEvents=true")).await;
    assert_eq!(r.status, 422);
    // 62, 67: events in order, selector transitions.
    let list = h.get(base).await.json();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    let url =
        format!("{base}?watch=true&timeoutSeconds=3&labelSelector=app%3Ddemo&resourceVersion={rv}");
    let watcher = {
        let client = h.client.clone();
        tokio::spawn(async move {
            let request = http::Request::get(url).body(Vec::new()).unwrap();
            client.request_text(request).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let patch = |name: &str, body: serde_json::Value| {
        let h = &h;
        let path = format!("{base}/{name}");
        async move {
            h.raw("PATCH", &path, None, Some("application/merge-patch+json"), &body.to_string())
                .await
        }
    };
    assert_eq!(patch("w1", json!({"spec": {"size": 10}})).await.status, 200);
    assert_eq!(patch("w2", json!({"metadata": {"labels": {"app": "demo"}}})).await.status, 200);
    assert_eq!(patch("w1", json!({"metadata": {"labels": {"app": "other"}}})).await.status, 200);
    let body = watcher.await.unwrap();
    let events = lines(&body);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["object"]["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]);
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    // 66: a compacted resourceVersion is an in-stream ERROR 410, with HTTP 200.
    let current = h.store.current_revision().await.unwrap();
    h.store.compact(current).await.unwrap();
    let r = h.get(&format!("{base}?watch=true&resourceVersion=2")).await;
    assert_eq!(r.status, 200);
    let events = lines(&r.body);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    // A fresh list's resourceVersion is always watchable.
    let list = h.get(base).await.json();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap();
    let r = h.get(&format!("{base}?watch=true&timeoutSeconds=1&resourceVersion={rv}")).await;
    assert!(lines(&r.body).iter().all(|e| e["type"] != "ERROR"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unauthenticated_access() {
    let h = start().await;
    // A client that trusts the CA but presents no certificate.
    let kubeconfig = kube::config::Kubeconfig::read_from(&h.server.kubeconfig).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    config.auth_info = kube::config::AuthInfo::default();
    let anonymous = kube::Client::try_from(config).unwrap();
    let request = http::Request::get("/api/v1/namespaces").body(Vec::new()).unwrap();
    let err = anonymous.request_text(request).await.unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let request = http::Request::get("/healthz").body(Vec::new()).unwrap();
    assert_eq!(anonymous.request_text(request).await.unwrap(), "ok");
    let metrics = h.get("/metrics").await;
    assert!(metrics.body.contains("apiserver_request_total"), "{}", metrics.body);
}
