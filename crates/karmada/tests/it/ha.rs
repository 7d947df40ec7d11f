//! The control plane on etcd: several apiservers on one etcd (over TLS with client
//! certificates) behave as one API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use store_etcd::server::{self, EtcdServer, MemberSpec, ServerTls};

use crate::harness::{ApiServer, eventually, eventually_seen};

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
    let mut server = EtcdServer::start_member(
        &dir.path().join("data"),
        &spec,
        std::slice::from_ref(&spec),
        Some(&tls),
    )
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
    // The cause chain follows (usually etcd's BadCertificate alert; when the connection is
    // torn down before the alert is read, a closed-connection transport error).
    assert!(stderr.contains("Caused by"), "{stderr}");
}

/// A controller-manager or scheduler replica whose stderr is watched for "became leader".
struct Replica {
    child: std::process::Child,
    leading: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Replica {
    fn start(component: &str, kubeconfig: &Path) -> Replica {
        let mut command = std::process::Command::new(crate::harness::KARMADA);
        command.arg(component).arg("--kubeconfig").arg(kubeconfig).args([
            "--leader-elect",
            "--leader-elect-lease-duration",
            "3s",
            "--leader-elect-renew-deadline",
            "2s",
            "--leader-elect-retry-period",
            "500ms",
        ]);
        if component == "controller-manager" {
            command.args([
                "--cluster-status-update-frequency",
                "1s",
                "--cluster-monitor-period",
                "1s",
            ]);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let leading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stderr, flag) = (child.stderr.take().unwrap(), leading.clone());
        // With KARMADA_IT_LOGS set, every line is kept there too.
        let mut log = crate::harness::log_file(component);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(log, "{line}");
                }
                if line.starts_with("became leader") {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        Replica { child, leading }
    }

    fn leading(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: ha}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: c\n        image: nginx\n"
    )
}

const POLICY: &str = "apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: ha
  namespace: default
spec:
  resourceSelectors:
  - apiVersion: apps/v1
    kind: Deployment
    labelSelector:
      matchLabels: {app: ha}
  placement:
    clusterAffinity:
      clusterNames: [member1, member2]
";

/// Two apiservers on one etcd, two controller-managers and two schedulers with leader
/// election (one of each on either apiserver). Exactly one of each leads; killing both leaders
/// while workloads are being created hands over to the standbys, and every workload lands in
/// every member exactly once.
#[test]
fn leader_election_hands_over_without_losing_or_doubling_work() {
    etcd_binary_or_panic();
    let etcd_dir = tempfile::tempdir().unwrap();
    let mut etcd = EtcdServer::start_single(etcd_dir.path()).unwrap();
    etcd.wait_listening(Duration::from_secs(30)).unwrap();
    let store = format!("etcd:{}", etcd.client_url);
    // API servers sharing a store share its encryption key (as Kubernetes' share one
    // EncryptionConfiguration), or each could not read the other's Secrets.
    let key = etcd_dir.path().join("encryption.key");
    apiserver::encryption::ensure_key_file(&key).unwrap();
    let shared = ["--encryption-key-file".to_owned(), key.to_str().unwrap().to_owned()];
    let a = ApiServer::start_with(&store, &shared);
    let b = ApiServer::start_with(&store, &shared);
    let b_kubeconfig = b.kubeconfig.clone();
    let cp = crate::plane::ControlPlane::start_on(a, 2, None);

    let mut managers = [
        Replica::start("controller-manager", &cp.api.kubeconfig),
        Replica::start("controller-manager", &b_kubeconfig),
    ];
    let mut schedulers = [
        Replica::start("scheduler", &cp.api.kubeconfig),
        Replica::start("scheduler", &b_kubeconfig),
    ];
    for member in ["member1", "member2"] {
        cp.join(member).ok();
    }
    eventually(Duration::from_secs(30), "clusters Ready", || {
        let out = cp.api.kubectl(&["get", "clusters", "--no-headers"]);
        (out.stdout.lines().filter(|l| l.contains(" True ")).count() == 2).then_some(())
    });
    let leader = |replicas: &[Replica; 2]| -> usize {
        eventually(Duration::from_secs(20), "a leader", || {
            let leading: Vec<usize> = (0..2).filter(|&i| replicas[i].leading()).collect();
            assert!(leading.len() <= 1, "two replicas lead at once");
            leading.first().copied()
        })
    };
    let (cm_leader, sched_leader) = (leader(&managers), leader(&schedulers));
    // The standbys stay standbys while the leaders live.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!managers[1 - cm_leader].leading() && !schedulers[1 - sched_leader].leading());
    let holder = cp.api.kubectl(&[
        "get",
        "lease",
        "-n",
        "karmada-system",
        "karmada-controller-manager",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert!(!holder.ok().is_empty(), "the Lease names its holder");

    cp.api.kubectl_stdin(&["apply", "-f", "-"], POLICY).ok();
    for i in 0..5 {
        cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment(&format!("ha-{i}"))).ok();
    }
    // Kill both leaders (no release: the standbys must wait out the lease) mid-stream.
    let _ = managers[cm_leader].child.kill();
    let _ = schedulers[sched_leader].child.kill();
    for i in 5..10 {
        cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment(&format!("ha-{i}"))).ok();
    }
    eventually(Duration::from_secs(20), "the standbys take over", || {
        (managers[1 - cm_leader].leading() && schedulers[1 - sched_leader].leading()).then_some(())
    });
    for member in ["member1", "member2"] {
        let deployments = || {
            let out = cp.member(
                member,
                &[
                    "get",
                    "deployments",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}",
                ],
            );
            let mut got: Vec<String> = out.stdout.split_whitespace().map(str::to_owned).collect();
            got.sort();
            got
        };
        let started = std::time::Instant::now();
        let got = eventually_seen(
            Duration::from_secs(60),
            &format!("all 10 workloads in {member}"),
            || {
                let got = deployments();
                if got.len() == 10 {
                    return Ok(got);
                }
                if started.elapsed() < Duration::from_secs(55) {
                    return Err(format!("{got:?}"));
                }
                // What the control plane holds for the missing ones, to tell where they stopped.
                let missing: Vec<String> = (0..10)
                    .map(|i| format!("ha-{i}"))
                    .filter(|n| !got.iter().any(|g| g.starts_with(&format!("{n}="))))
                    .collect();
                let bindings = cp.api.kubectl(&[
                    "get",
                    "rb",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name}: clusters={.spec.clusters} \
                     conditions={.status.conditions}{'\\n'}{end}",
                ]);
                let works = cp.api.kubectl(&[
                    "get",
                    "works",
                    "-A",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}: \
                     {.status.conditions}{'\\n'}{end}",
                ]);
                Err(format!(
                    "{member} has {got:?}, missing {missing:?}\nbindings:\n{}\nworks:\n{}",
                    bindings.stdout, works.stdout
                ))
            },
        );
        let mut want: Vec<String> = (0..10).map(|i| format!("ha-{i}=2")).collect();
        want.sort();
        assert_eq!(got, want, "every workload exactly once in {member}, as written");
    }
    let works = cp.api.kubectl(&["get", "works", "-n", "karmada-es-member1", "--no-headers"]);
    assert_eq!(works.ok().lines().filter(|l| l.contains("ha-")).count(), 10, "{}", works.stdout);
}

/// `karmada up --ha`: a 3-member etcd cluster, two API servers, leader-elected components;
/// the quick start works through either API server, and a stop (SIGTERM) takes etcd down too.
#[test]
fn karmada_up_ha_runs_the_quick_start_on_etcd() {
    etcd_binary_or_panic();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("karmada.config");
    let data = dir.path().join("data");
    let (mut up, rx) = crate::harness::karmada_up(&["--ha", "--members", "2"], &data, &kubeconfig);
    let stop = |up: &mut std::process::Child| {
        let _ = std::process::Command::new("kill").args(["-TERM", &up.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = up.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = up.kill();
        let _ = up.wait();
        panic!("karmada up --ha did not stop within 30 s of SIGTERM");
    };
    let running = rx.recv_timeout(Duration::from_secs(90));
    if running.as_deref() != Ok("Local Karmada is running.") {
        stop(&mut up);
        panic!("karmada up --ha did not start: {running:?}");
    }
    let kubectl =
        |context: &str, args: &[&str]| crate::harness::kubectl_context(&kubeconfig, context, args);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for context in ["karmada-apiserver", "karmada-apiserver-2"] {
            let (_, clusters) = kubectl(context, &["get", "clusters", "--no-headers"]);
            assert_eq!(clusters.lines().filter(|l| l.contains(" True ")).count(), 2, "{clusters}");
        }
        let (_, leases) = kubectl(
            "karmada-apiserver-2",
            &[
                "get",
                "leases",
                "-n",
                "karmada-system",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity} {end}",
            ],
        );
        for lease in ["karmada-controller-manager=", "karmada-scheduler="] {
            let holder = leases.split_whitespace().find_map(|l| l.strip_prefix(lease));
            assert!(holder.is_some_and(|h| !h.is_empty()), "{lease} held: {leases}");
        }
        let upstream = crate::plane::upstream("nginx");
        let (code, _) = kubectl(
            "karmada-apiserver",
            &["create", "-f", upstream.join("deployment.yaml").to_str().unwrap()],
        );
        assert_eq!(code, 0);
        let (code, _) = kubectl(
            "karmada-apiserver-2",
            &["create", "-f", upstream.join("propagationpolicy.yaml").to_str().unwrap()],
        );
        assert_eq!(code, 0);
        eventually(Duration::from_secs(30), "nginx 2/2 through the second API server", || {
            let (_, out) =
                kubectl("karmada-apiserver-2", &["get", "deployment", "nginx", "--no-headers"]);
            out.contains("2/2").then_some(())
        });
    }));
    let etcd_ports: Vec<String> = std::fs::read_to_string(data.join("etcd/members"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    stop(&mut up);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_eq!(etcd_ports.len(), 3, "the etcd members are recorded");
    for port in etcd_ports {
        eventually(Duration::from_secs(10), &format!("etcd on {port} stopped"), || {
            std::net::TcpStream::connect(&port).is_err().then_some(())
        });
    }
}
