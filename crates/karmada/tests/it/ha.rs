//! The control plane on etcd: several apiservers on one etcd (over TLS with client
//! certificates) behave as one API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use store_etcd::server::{self, EtcdServer, MemberSpec, ServerTls};

use crate::harness::{ApiServer, eventually};

/// A one-node etcd on loopback serving TLS and requiring client certificates, plus the
/// `karmada apiserver` flags that reach it.
pub struct TlsEtcd {
    _server: EtcdServer,
    pub flags: Vec<String>,
    pub store: String,
    _dir: tempfile::TempDir,
}

pub fn etcd_binary_or_panic() {
    assert!(
        server::binary().is_some(),
        "etcd is not installed: `apt-get install etcd-server` (or set ETCD_BIN); .ci/run does this"
    );
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

pub fn tls_etcd() -> TlsEtcd {
    etcd_binary_or_panic();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ca = apiserver::pki::Authority::load_or_create(&pki, "etcd-ca").unwrap();
    let serving = ca.serving(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let client = ca.client("karmada-apiserver", &[]).unwrap();
    let tls = ServerTls {
        cert_file: write(&pki, "server.crt", &serving.cert_pem).into(),
        key_file: write(&pki, "server.key", &serving.key_pem).into(),
        client_ca_file: pki.join("ca.crt"),
    };
    let spec = MemberSpec::on_free_ports("etcd0").unwrap();
    let mut server =
        EtcdServer::start_member(&dir.path().join("data"), &spec, &[spec.clone()], Some(&tls))
            .unwrap();
    server.wait_listening(Duration::from_secs(30)).unwrap();
    let flags = vec![
        "--etcd-cafile".into(),
        pki.join("ca.crt").to_str().unwrap().into(),
        "--etcd-certfile".into(),
        write(&pki, "client.crt", &client.cert_pem),
        "--etcd-keyfile".into(),
        write(&pki, "client.key", &client.key_pem),
    ];
    let store = format!("etcd:{}", server.client_url);
    TlsEtcd { _server: server, flags, store, _dir: dir }
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
  namespace: default
data:
  written: through-a
";

#[test]
fn two_apiservers_on_one_etcd_are_one_api() {
    let etcd = tls_etcd();
    let a = ApiServer::start_with(&etcd.store, &etcd.flags);
    let b = ApiServer::start_with(&etcd.store, &etcd.flags);

    // A watcher on B, from now.
    let mut watch = b.kubectl_spawn(&["get", "configmaps", "-n", "default", "-w", "--no-headers"]);
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // The watch is established once B answers; give kubectl a moment by listing through B.
    eventually(Duration::from_secs(20), "B serves", || {
        b.kubectl(&["get", "ns", "default"]).code.eq(&0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));

    a.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP).ok();
    // Read-your-writes across replicas: B lists the object A just acknowledged, at once.
    let on_b = b.kubectl(&[
        "get",
        "configmap",
        "shared",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.written} {.metadata.resourceVersion}",
    ]);
    let on_a = a.kubectl(&[
        "get",
        "configmap",
        "shared",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.written} {.metadata.resourceVersion}",
    ]);
    assert_eq!(
        on_b.ok(),
        on_a.ok(),
        "both replicas serve the same object at the same resourceVersion"
    );
    assert!(on_b.stdout.starts_with("through-a "), "{on_b:?}");

    // The watcher on B saw the write through A.
    let seen = lines.recv_timeout(Duration::from_secs(20)).expect("B's watcher sees A's write");
    assert!(seen.starts_with("shared "), "{seen}");

    // An update through B with A's resourceVersion succeeds; a stale one conflicts on A.
    let rv = on_a.stdout.split_whitespace().nth(1).unwrap().to_owned();
    b.kubectl(&[
        "patch",
        "configmap",
        "shared",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"data":{"written":"through-b"}}"#,
    ])
    .ok();
    let stale = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"shared","namespace":"default","resourceVersion":"{rv}"}},"data":{{"written":"stale"}}}}"#
    );
    let conflict = a.kubectl_stdin(&["replace", "-f", "-"], &stale);
    assert!(conflict.fails().contains("the object has been modified"), "{conflict:?}");
    assert_eq!(
        a.kubectl(&[
            "get",
            "configmap",
            "shared",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.written}"
        ])
        .ok(),
        "through-b"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn an_apiserver_without_the_client_certificate_is_refused_by_etcd() {
    let etcd = tls_etcd();
    // Only the CA, no client certificate: etcd (--client-cert-auth) refuses the handshake and
    // the apiserver exits with a clear error instead of serving.
    let output = std::process::Command::new(crate::harness::KARMADA)
        .args(["apiserver", "--bind", "127.0.0.1:0", "--store", &etcd.store, "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(&etcd.flags[..2])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use etcd at"), "{stderr}");
    assert!(stderr.contains("BadCertificate"), "the cause is shown: {stderr}");
}
