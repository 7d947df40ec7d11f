//! One user cannot freeze the server: bodies that cost more than they weigh are refused early,
//! slow senders do not hold others up, and names and paths are checked as Kubernetes does.

use crate::start;

/// A 500 KB YAML body of 100,000 nested flow mappings took 70 s of CPU to refuse (the YAML
/// parser is quadratic in that depth); now it is refused before parsing, and the server keeps
/// answering while eight of them are in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
    let h = start().await;
    let deep = format!("{}1{}", "{a: ".repeat(100_000), "}".repeat(100_000));
    let mut posts = Vec::new();
    for _ in 0..8 {
        let client = h.client.clone();
        let body = deep.clone();
        posts.push(tokio::spawn(async move {
            let request = http::Request::post("/api/v1/namespaces/default/configmaps")
                .header(http::header::CONTENT_TYPE, "application/yaml")
                .body(kube::client::Body::from(body.into_bytes()))
                .unwrap();
            let response = client.send(request).await.unwrap();
            let status = response.status().as_u16();
            let body =
                http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }));
    }
    let namespaces = h.get("/api/v1/namespaces").await;
    assert_eq!(namespaces.status, 200);
    for post in posts {
        let (status, body) = post.await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("nested more than 128 levels"), "{body}");
    }
    // Ordinary YAML still works.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: '[{]}'}\n";
    let r = h
        .raw("POST", "/api/v1/namespaces/default/configmaps", None, Some("application/yaml"), yaml)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}
