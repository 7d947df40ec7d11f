//! Who may do what on the control plane: RBAC with the real kubectl — a table of principals
//! and requests, `kubectl auth can-i` (and `--list`), `kubectl auth whoami`, impersonation.

use crate::harness::ApiServer;

const POLICY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: settings-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [settings]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-settings, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: settings-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-edit, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: devs}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team-a}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: team-a}
data: {a: b}
"#;

#[test]
fn principals_and_requests() {
    let s = ApiServer::start("memory");
    s.kubectl_stdin(&["apply", "-f", "-"], POLICY).ok();
    let alice = s.user_kubeconfig("alice", &[]);
    let bob = s.user_kubeconfig("bob", &["devs"]);
    let eve = s.user_kubeconfig("eve", &[]);
    let pp = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: team-a}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n";
    let bob_pp = s.file("pp.yaml", pp);
    let cases: &[(&std::path::Path, &[&str], bool)] = &[
        (&alice, &["get", "configmap", "settings", "-n", "team-a"], true),
        (&alice, &["get", "configmap", "other", "-n", "team-a"], false),
        (&alice, &["get", "configmaps", "-n", "team-a"], false),
        (&alice, &["get", "secrets", "-n", "team-a"], false),
        (&bob, &["get", "configmaps", "-n", "team-a"], true),
        (&bob, &["get", "configmaps", "-n", "default"], false),
        (&bob, &["create", "-f", &bob_pp], true),
        (&bob, &["get", "roles", "-n", "team-a"], false),
        (&bob, &["get", "clusters"], false),
        (&eve, &["get", "namespaces"], false),
        (&eve, &["get", "--raw", "/apis"], true),
    ];
    let mut failures = Vec::new();
    for (config, args, allowed) in cases {
        let out = s.kubectl_as(config, args);
        let ok = out.code == 0;
        let forbidden = out.stderr.contains("Forbidden") || out.stderr.contains("forbidden");
        if ok != *allowed || (!ok && !forbidden) {
            failures.push(format!(
                "{} {args:?}: code {} {}",
                config.display(),
                out.code,
                out.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // kubectl auth can-i, for oneself and (impersonating, as cluster-admin) for others.
    let can = |config: Option<&std::path::Path>, args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = match config {
            Some(c) => s.kubectl_as(c, &all),
            None => s.kubectl(&all),
        };
        out.stdout.trim().to_owned()
    };
    assert_eq!(can(Some(&alice), &["get", "configmap/settings", "-n", "team-a"]), "yes");
    assert_eq!(can(Some(&alice), &["get", "configmap/other", "-n", "team-a"]), "no");
    assert_eq!(can(Some(&bob), &["create", "deployments", "-n", "team-a"]), "yes");
    assert_eq!(can(None, &["create", "deployments", "-n", "team-a", "--as", "bob"]), "no");
    assert_eq!(
        can(None, &["create", "deployments", "-n", "team-a", "--as", "bob", "--as-group", "devs"]),
        "yes"
    );
    let list = s.kubectl_as(&alice, &["auth", "can-i", "--list", "-n", "team-a"]);
    assert!(
        list.ok().contains("configmaps") && list.stdout.contains("[settings]"),
        "{}",
        list.stdout
    );

    // Impersonation needs the impersonate verb.
    let out = s.kubectl_as(&bob, &["get", "configmaps", "-n", "team-a", "--as", "alice"]);
    assert!(out.code != 0 && out.stderr.contains("impersonate"), "{out:?}");
    // ...for every impersonated attribute: before, a user allowed to impersonate users could
    // add any uid or extra.
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: impersonate-users}\nrules:\n- {apiGroups: [\"\"], resources: [users], verbs: [impersonate]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: eve-impersonates}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-users}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: eve}\n",
    )
    .ok();
    let as_alice = ["get", "configmap", "settings", "-n", "team-a", "--as", "alice"];
    assert!(s.kubectl_as(&eve, &as_alice).ok().contains("settings"));
    let mut args = as_alice.to_vec();
    args.extend(["--as-uid", "1234"]);
    let out = s.kubectl_as(&eve, &args);
    assert!(out.code != 0 && out.stderr.contains("impersonate"), "{out:?}");
    // kubectl has no flag for extras: a client sends the header itself.
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&eve).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let request = http::Request::get("/api/v1/namespaces/team-a/configmaps/settings")
            .header("Impersonate-User", "alice")
            .header("Impersonate-Extra-Scopes", "admin")
            .body(kube::client::Body::empty())
            .unwrap();
        client.send(request).await.unwrap().status().as_u16()
    });
    assert_eq!(status, 403, "impersonating an extra needs userextras/scopes");

    // whoami
    let who = s.kubectl_as(
        &bob,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"],
    );
    assert!(who.ok().starts_with("bob ") && who.stdout.contains("devs"), "{}", who.stdout);

    // Escalation: an admin of team-a may grant what it holds, nothing more.
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: carol-admin, namespace: team-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}\n",
    )
    .ok();
    let carol = s.user_kubeconfig("carol", &[]);
    let role = |name: &str, resource: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: team-a}}\nrules:\n- {{apiGroups: [\"\"], resources: [{resource}], verbs: [get]}}\n"
        )
    };
    let write = |config: &std::path::Path, manifest: &str| {
        let file = s.file("grant.yaml", manifest);
        s.kubectl_as(config, &["create", "-f", &file])
    };
    write(&carol, &role("secret-reader", "secrets")).ok();
    let denied = write(&carol, &role("node-reader", "nodes"));
    assert!(
        denied.code != 0
            && denied.stderr.contains("attempting to grant RBAC permissions not currently held"),
        "{denied:?}"
    );
    let bind = |name: &str, role: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: team-a}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: dave}}\n"
        )
    };
    write(&carol, &bind("dave-view", "view")).ok();
    let denied = write(&carol, &bind("dave-root", "cluster-admin"));
    assert!(denied.code != 0 && denied.stderr.contains("not currently held"), "{denied:?}");
    // Before, a binding to a role that does not exist was accepted, and granted whatever an
    // admin later created under that name. Binding it needs `bind`.
    let denied = write(&carol, &bind("dave-later", "not-yet-there"));
    assert!(
        denied.code != 0
            && denied.stderr.contains("binding a role before it exists needs the bind verb"),
        "{denied:?}"
    );

    // A revoked binding takes effect at once.
    s.kubectl(&["delete", "rolebinding", "devs-edit", "-n", "team-a"]).ok();
    crate::harness::eventually(std::time::Duration::from_secs(10), "revocation", || {
        (s.kubectl_as(&bob, &["get", "configmaps", "-n", "team-a"]).code != 0).then_some(())
    });

    // Bad credentials are 401, not 403.
    let anonymous = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            "/dev/null",
            "--server",
            &s.url,
            "--insecure-skip-tls-verify",
            "--token",
            "abc",
            "get",
            "ns",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&anonymous.stderr);
    assert!(err.contains("Unauthorized") || err.contains("must be logged in"), "{err}");
}

/// An HTTPS GET without credentials: the answer's status.
fn anonymous_get(s: &ApiServer, path: &str) -> u16 {
    let connector = raw_tls_as(s, false);
    let address = s.url.trim_start_matches("https://").to_owned();
    tokio::runtime::Runtime::new().unwrap().block_on(raw_get(&connector, &address, path))
}

/// Before: anonymous `/healthz`, `/livez`, `/readyz` and `/version` got 403 (load balancers and
/// probes need them; Kubernetes serves them to everyone through system:public-info-viewer).
#[test]
fn health_and_version_are_public_unless_anonymous_auth_is_off() {
    let s = ApiServer::start("memory");
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(anonymous_get(&s, path), 200, "{path}");
    }
    assert_eq!(anonymous_get(&s, "/api/v1/namespaces"), 401, "nothing else is public");
    let closed = ApiServer::start_with("memory", &["--anonymous-auth=false".into()]);
    assert_eq!(anonymous_get(&closed, "/healthz"), 401);
}

#[test]
fn overload_gets_429_and_mutations_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let s = ApiServer::start_with(
        "memory",
        &[
            "--max-requests-inflight".into(),
            "1".into(),
            "--audit-log-path".into(),
            audit.to_str().unwrap().into(),
        ],
    );
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let codes = runtime.block_on(async {
        // Objects to list, so that each request takes a little while.
        let client = s.client().await;
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client.clone(), "default");
        let payload = "x".repeat(4096);
        for i in 0..300 {
            let cm: k8s_openapi::api::core::v1::ConfigMap =
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("load-{i}")}, "data": {"payload": payload}
                }))
                .unwrap();
            api.create(&Default::default(), &cm).await.unwrap();
        }
        // Raw HTTPS requests, each on its own connection: kube-rs and kubectl retry 429s, and
        // this wants to see them.
        let connector = raw_tls(&s);
        let address = s.url.trim_start_matches("https://").to_owned();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (connector, address) = (connector.clone(), address.clone());
            tasks.push(tokio::spawn(async move {
                raw_get(&connector, &address, "/api/v1/namespaces/default/configmaps").await
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes
    });
    let refused = codes.iter().filter(|c| **c == 429).count();
    assert!(refused > 0, "a flood beyond the in-flight limit gets 429s: {codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    // Still responsive (kubectl honours Retry-After on 429).
    s.kubectl(&["get", "ns", "default"]).ok();

    s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audited, namespace: default}\n",
    )
    .ok();
    s.kubectl(&["delete", "configmap", "audited"]).ok();
    crate::harness::eventually(std::time::Duration::from_secs(10), "audit lines", || {
        let text = std::fs::read_to_string(&audit).ok()?;
        let events: Vec<serde_json::Value> =
            text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let create = events.iter().any(|e| {
            e["verb"] == "create"
                && e["resource"] == "configmaps"
                && e["namespace"] == "default"
                && e["user"] == "admin"
                && e["code"] == 201
                && e["latencyMs"].is_number()
        });
        let delete = events.iter().any(|e| {
            e["verb"] == "delete"
                && e["name"] == "audited"
                && e["user"] == "admin"
                && e["code"] == 200
        });
        (create && delete).then_some(())
    });
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains("\"verb\":\"list\""), "reads are not audited");
}

/// A TLS connector presenting the admin's client certificate.
fn raw_tls(s: &ApiServer) -> tokio_rustls::TlsConnector {
    raw_tls_as(s, true)
}

/// A TLS connector trusting the server's CA, presenting the admin's certificate or none.
fn raw_tls_as(s: &ApiServer, admin: bool) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = s.dir.path().join("pki");
    let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read("ca.crt")) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if admin {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read("admin.crt")).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(&read("admin.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// The status code of one GET over a fresh HTTP/1.1 connection (0 on a transport error).
async fn raw_get(connector: &tokio_rustls::TlsConnector, address: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(tcp) = tokio::net::TcpStream::connect(address).await else { return 0 };
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else { return 0 };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if tls.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    if tls.read_exact(&mut head).await.is_err() {
        return 0;
    }
    std::str::from_utf8(&head[9..12]).ok().and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Secrets at rest: with an encryption key, a Secret's value is nowhere in the store's file
/// (neither as written nor base64-encoded), reads return it, and it survives a restart.
#[test]
fn secrets_are_not_readable_in_plaintext_in_the_data_files() {
    use base64::Engine as _;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("encryption.key");
    std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode([42u8; 32])).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut s = ApiServer::start_with(
        "redb",
        &["--encryption-key-file".into(), key.to_str().unwrap().into()],
    );
    let marker = "hunter2-plaintext-marker";
    s.kubectl_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: default}}\nstringData: {{password: {marker}}}\n"),
    )
    .ok();
    let read = |s: &ApiServer| {
        let out = s.kubectl(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
        String::from_utf8(
            base64::engine::general_purpose::STANDARD.decode(out.ok().trim()).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(read(&s), marker);
    let encoded = base64::engine::general_purpose::STANDARD.encode(marker);
    let data = std::fs::read(s.dir.path().join("store.redb")).unwrap();
    let contains = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(marker.as_bytes()) && !contains(encoded.as_bytes()),
        "the secret is in the data file in the clear"
    );
    s.restart();
    assert_eq!(read(&s), marker, "readable after a restart with the same key");
}

/// ServiceAccount tokens: `kubectl create token`, used as a bearer token under RBAC, checked by
/// a TokenReview, and dead once the ServiceAccount is deleted.
#[test]
fn service_account_tokens() {
    let s = ApiServer::start("memory");
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ci}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: deployer, namespace: ci}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: deployer-edit, namespace: ci}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects:\n- {kind: ServiceAccount, name: deployer, namespace: ci}\n",
    )
    .ok();
    let token = s.kubectl(&["create", "token", "deployer", "-n", "ci"]).ok().trim().to_owned();
    assert!(token.starts_with("eyJ"), "{token}");
    let ca = s.dir.path().join("pki/ca.crt");
    let with_token = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &s.url, "--token", &token])
            .arg(format!("--certificate-authority={}", ca.display()))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = with_token(&["get", "configmaps", "-n", "ci"]);
    assert!(ok, "{err}");
    let (ok, err) = with_token(&["get", "secrets", "-n", "default"]);
    assert!(!ok && err.contains("system:serviceaccount:ci:deployer"), "{err}");
    let review = s.kubectl_stdin(
        &["create", "-f", "-", "-o", "jsonpath={.status.authenticated} {.status.user.username}"],
        &format!("{{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{{\"token\":\"{token}\"}}}}"),
    );
    assert_eq!(review.ok(), "true system:serviceaccount:ci:deployer");
    s.kubectl(&["delete", "serviceaccount", "deployer", "-n", "ci"]).ok();
    let (ok, err) = with_token(&["get", "configmaps", "-n", "ci"]);
    assert!(!ok && (err.contains("Unauthorized") || err.contains("logged in")), "{err}");
}

/// Client certificates that do not check out get a 401 that says why (not a TLS failure):
/// one from another CA, and an expired one from the right CA.
#[test]
fn bad_client_certificates_are_401() {
    let s = ApiServer::start("memory");
    let pki = s.dir.path().join("pki");
    let ca_pem = std::fs::read_to_string(pki.join("ca.crt")).unwrap();
    let write_config = |name: &str, cert: &str, key: &str| {
        let path = s.dir.path().join(format!("{name}.config"));
        let entry = apiserver::pki::KubeconfigEntry {
            name: "karmada".into(),
            server: s.url.clone(),
            ca_pem: ca_pem.clone(),
            client: Some(apiserver::pki::Issued { cert_pem: cert.into(), key_pem: key.into() }),
            token: None,
        };
        apiserver::pki::write_kubeconfig(&path, &[entry], Some("karmada")).unwrap();
        path
    };
    // From another CA.
    let other_dir = tempfile::tempdir().unwrap();
    let other = apiserver::pki::Authority::load_or_create(other_dir.path(), "elsewhere").unwrap();
    let stranger = other.client("mallory", &["system:masters"]).unwrap();
    let config = write_config("stranger", &stranger.cert_pem, &stranger.key_pem);
    let out = s.kubectl_as(&config, &["get", "ns"]);
    // kubectl's words for a 401.
    let unauthorized =
        |err: &str| err.contains("must be logged in") || err.contains("Unauthorized");
    assert!(out.code != 0 && unauthorized(&out.stderr), "{out:?}");
    // From the right CA, but expired.
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "old-admin");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let expired = params.signed_by(&key, &issuer).unwrap();
    let config = write_config("expired", &expired.pem(), &key.serialize_pem());
    let out = s.kubectl_as(&config, &["get", "ns"]);
    assert!(out.code != 0 && unauthorized(&out.stderr), "{out:?}");
    // The valid admin still gets in on the same server.
    s.kubectl(&["get", "ns"]).ok();
}

/// Open watches are bounded per user: beyond the limit 429, and a closed watch frees its slot.
#[test]
fn watches_per_user_are_bounded() {
    let s = ApiServer::start_with("memory", &["--max-watches-per-user".into(), "2".into()]);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let connector = raw_tls(&s);
        let address = s.url.trim_start_matches("https://").to_owned();
        let open = || async {
            let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let request = format!(
                "GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: {address}\r\n\r\n"
            );
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut head = [0u8; 12];
            tls.read_exact(&mut head).await.unwrap();
            let code: u16 = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
            (code, tls)
        };
        let (first, first_stream) = open().await;
        let (second, _second_stream) = open().await;
        assert_eq!((first, second), (200, 200));
        let (third, _) = open().await;
        assert_eq!(third, 429, "a third watch is refused");
        drop(first_stream);
        let mut freed = 0;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (code, stream) = open().await;
            if code == 200 {
                freed = code;
                drop(stream);
                break;
            }
        }
        assert_eq!(freed, 200, "closing a watch frees its slot");
    });
}
