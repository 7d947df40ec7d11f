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

/// A raw HTTP/1.1 client over TLS with its own client certificate: for requests kube clients
/// cannot make (a body that trickles in).
mod raw {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::client::TlsStream;

    pub struct Identity {
        pub config: Arc<rustls::ClientConfig>,
        pub addr: std::net::SocketAddr,
    }

    impl Identity {
        pub fn new(h: &crate::Harness, user: &str) -> Identity {
            let ca = apiserver::pki::Authority::load_or_create(&h.dir.path().join("pki"), "unused")
                .unwrap();
            let issued = ca.client(user, &[]).unwrap();
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(h.server.ca_pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                    .map(Result::unwrap)
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(certs, key)
                .unwrap();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Identity { config: Arc::new(config), addr: h.server.addr }
        }

        pub async fn connect(&self) -> TlsStream<tokio::net::TcpStream> {
            let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
            connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap()
        }

        /// One complete request; the status code of the answer.
        pub async fn request(&self, method: &str, path: &str, body: &str) -> u16 {
            let mut stream = self.connect().await;
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            status(&mut stream).await
        }
    }

    pub async fn status(stream: &mut (impl AsyncReadExt + Unpin)) -> u16 {
        let mut buf = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            match stream.read(&mut buf[read..]).await {
                Ok(0) | Err(_) => return 0,
                Ok(n) => read += n,
            }
        }
        String::from_utf8_lossy(&buf[9..12]).parse().unwrap_or(0)
    }
}

/// Before: bodies were read while holding an in-flight slot and without a deadline, so 410
/// clients trickling POST bodies made every other request get 429 (and one trickled body stayed
/// open 180 s). Now bodies are read outside the slots, within a deadline, and each user reads
/// at most its share of them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_bodies_do_not_hold_up_other_clients() {
    use tokio::io::AsyncWriteExt;
    let h = crate::start_with(|c| c.max_requests_inflight = 8).await;
    let mallory = std::sync::Arc::new(raw::Identity::new(&h, "mallory"));
    let bob = raw::Identity::new(&h, "bob");
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut trickles = Vec::new();
    for _ in 0..20 {
        let (mallory, stop) = (std::sync::Arc::clone(&mallory), std::sync::Arc::clone(&stop));
        trickles.push(tokio::spawn(async move {
            let stream = mallory.connect().await;
            let (mut reader, mut writer) = tokio::io::split(stream);
            let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{";
            writer.write_all(head.as_bytes()).await.unwrap();
            tokio::select! {
                status = raw::status(&mut reader) => Some(status),
                () = async {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        if writer.write_all(b" ").await.is_err() { break; }
                    }
                } => None,
                () = stop.notified() => None,
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Others are served while the bodies trickle.
    for i in 0..10 {
        assert_eq!(bob.request("GET", "/api/v1/namespaces", "").await, 200);
        let cm = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"bob-{i}\"}}}}"
        );
        assert_eq!(bob.request("POST", "/api/v1/namespaces/default/configmaps", &cm).await, 201);
        assert_eq!(h.get("/api/v1/namespaces/default/configmaps").await.status, 200);
    }
    stop.notify_waiters();
    // Beyond mallory's share of bodies being read, her requests were refused at once.
    let mut refused = 0;
    for t in trickles {
        if let Ok(Some(429)) = t.await {
            refused += 1;
        }
    }
    assert_eq!(refused, 18, "20 trickles, a share of 8 / 4 = 2 bodies at once");
}

/// Before: names containing `:` skipped validation (`"a b:c"`, names with NUL or U+202E were
/// created), and path segments were not percent-decoded, so `kubectl delete cm 'a b:c'` could
/// not find what it had created. Now every name is checked by its kind's rule and each path
/// segment is decoded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_checked_by_kind_and_paths_decoded() {
    let h = start().await;
    let cm = |name: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
            .to_string()
    };
    for bad in ["a b:c", "a\u{0}b", "x\u{202E}y", "UPPER", "a/b", ".."] {
        let r = h.post("/api/v1/namespaces/default/configmaps", &cm(bad)).await;
        assert_eq!(r.status, 422, "{bad:?}: {}", r.body);
        assert!(r.body.contains("metadata.name"), "{}", r.body);
    }
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "has.dot"}});
    assert_eq!(h.post("/api/v1/namespaces", &ns.to_string()).await.status, 422);
    // RBAC names may hold colons; sent encoded, they are found.
    let role = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:demo:reader"}});
    assert_eq!(
        h.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", &role.to_string()).await.status,
        201
    );
    let r = h.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Ademo%3Areader").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .raw(
            "DELETE",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Ademo%3Areader",
            None,
            None,
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A segment that decodes to a slash names nothing.
    assert_eq!(h.get("/api/v1/namespaces/default/configmaps/a%2Fb").await.status, 404);
}

/// Before: a create without `kind` or `apiVersion` was accepted, and a GET with
/// `resourceVersion=garbage` answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_say_what_they_are_and_versions_are_numbers() {
    let h = start().await;
    let r = h.post("/api/v1/namespaces/default/configmaps", r#"{"metadata":{"name":"x"}}"#).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Object 'Kind' is missing"), "{}", r.body);
    let r = h
        .post(
            "/api/v1/namespaces/default/configmaps",
            r#"{"kind":"ConfigMap","metadata":{"name":"x"}}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Object 'apiVersion' is missing"), "{}", r.body);
    let r = h.get("/api/v1/namespaces/default?resourceVersion=garbage").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(h.get("/api/v1/namespaces/default?resourceVersion=0").await.status, 200);
}
