//! Running the control plane on a Kubernetes host cluster: `karmadactl init` and `deinit`, the
//! plain manifests in `deploy/` and their certificate Job, against a simulated member acting as
//! the host. The simulation schedules and "runs" pods without running containers, so each test
//! also runs, as processes, the commands the installed pods would run — with the arguments and
//! Secrets read back from the host — to show they work as installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{ApiServer, KARMADA};
use crate::member_kubectl::Members;
use crate::plane::karmadactl;

const NS: &str = "karmada-system";

/// The flags `deploy/karmada-ha.yaml` is made with (`deploy/README.md`).
const HA_FLAGS: [&str; 10] = [
    "--store",
    "etcd",
    "--etcd-replicas",
    "3",
    "--karmada-apiserver-replicas",
    "2",
    "--karmada-controller-manager-replicas",
    "2",
    "--karmada-scheduler-replicas",
    "2",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

/// A Secret's files, decoded.
fn secret_files(host: &Members, name: &str) -> BTreeMap<String, String> {
    let secret =
        json_of(host.kubectl("host", &["-n", NS, "get", "secret", name, "-o", "json"]).ok());
    secret["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
            (k.clone(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

/// The arguments of a workload's first container.
fn container_args(host: &Members, kind: &str, name: &str) -> Vec<String> {
    let object = json_of(host.kubectl("host", &["-n", NS, "get", kind, name, "-o", "json"]).ok());
    object["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn private_files(dir: &Path, files: &BTreeMap<String, String>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Starts `karmada apiserver` as the Deployment's pod would run it: its arguments, the
/// certificate Secret where it is mounted (here a private directory: the simulation mounts
/// nothing), its own data directory, a loopback port in place of the pod's and, when given,
/// `etcd` in place of the etcd Service's address.
fn run_apiserver_as_installed(host: &Members, pki: &Path, etcd: Option<&str>) -> ApiServer {
    let args = container_args(host, "deployment", "karmada-apiserver");
    assert_eq!(args[0], "apiserver", "{args:?}");
    private_files(pki, &secret_files(host, "karmada-cert"));
    let mut store = String::new();
    let mut extra = Vec::new();
    for arg in &args[1..] {
        if let Some(s) = arg.strip_prefix("--store=") {
            store = match (s.strip_prefix("etcd:"), etcd) {
                (Some(_), Some(url)) => format!("etcd:{url}"),
                _ => s.to_owned(),
            };
        } else if !arg.starts_with("--bind=") && !arg.starts_with("--data-dir=") {
            extra.push(arg.replace("/etc/karmada/pki", pki.to_str().unwrap()));
        }
    }
    ApiServer::start_in(tempfile::tempdir().unwrap(), &store, &extra)
}

/// Runs etcd as the StatefulSet's first member would, alone: its command line with the
/// Secret's files where they are mounted, and loopback addresses in place of the members' DNS
/// names (which exist only in a cluster). Returns the process and its client URL.
fn run_etcd_as_installed(host: &Members, dir: &Path) -> (std::process::Child, String) {
    crate::ha::etcd_binary_or_panic();
    let set =
        json_of(host.kubectl("host", &["-n", NS, "get", "statefulset", "etcd", "-o", "json"]).ok());
    let command: Vec<String> = set["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let pki = dir.join("pki");
    let files = secret_files(host, "karmada-cert");
    let mounted: BTreeMap<String, String> = ["ca.crt", "etcd-server.crt", "etcd-server.key"]
        .iter()
        .map(|k| (k.to_string(), files[*k].clone()))
        .collect();
    private_files(&pki, &mounted);
    let spec = store_etcd::server::MemberSpec::on_free_ports("etcd-0").unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (client, peer) = (format!("https://{}", spec.client), format!("https://{}", spec.peer));
    let mut args = Vec::new();
    for arg in &command[1..] {
        let (flag, _) = arg.split_once('=').unwrap_or((arg, ""));
        args.push(match flag {
            "--name" => "--name=etcd-0".to_owned(),
            "--data-dir" => format!("--data-dir={}", dir.join("data").display()),
            "--listen-client-urls" | "--advertise-client-urls" => format!("{flag}={client}"),
            "--listen-peer-urls" | "--initial-advertise-peer-urls" => format!("{flag}={peer}"),
            "--initial-cluster" => format!("--initial-cluster=etcd-0={peer}"),
            "--listen-metrics-urls" => format!("--listen-metrics-urls=http://{metrics}"),
            _ => arg.replace("/etc/etcd/pki", pki.to_str().unwrap()),
        });
    }
    let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
    let child = std::process::Command::new(store_etcd::server::binary().unwrap())
        .args(&args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    crate::harness::eventually(std::time::Duration::from_secs(30), "etcd to listen", || {
        std::net::TcpStream::connect(spec.client).ok()
    });
    (child, client)
}

/// kubectl with `kubeconfig`, at `url` (the server it names is not reachable from here),
/// checking the serving certificate against `server_name` as a client at that name would.
fn kubectl_at(kubeconfig: &Path, url: &str, server_name: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--server", url, "--tls-server-name", server_name])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?} at {url} as {server_name}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `deploy/*.yaml` are exactly what `karmadactl init --dry-run` prints (single replica, and
/// HA with `HA_FLAGS`), and an API server with built-in validation accepts every object of
/// both (server-side dry run, one after the other: a dry run holds no node port) — and refuses
/// a broken copy, so the validation is real.
#[test]
fn deploy_manifests_are_what_init_prints_and_validate_against_the_schemas() {
    let api = ApiServer::start("memory");
    let nowhere = Path::new("/nonexistent/kubeconfig");
    for (file, flags) in [("karmada.yaml", &[][..]), ("karmada-ha.yaml", &HA_FLAGS[..])] {
        let path = deploy_dir().join(file);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut args = vec!["init", "--dry-run"];
        args.extend(flags);
        let printed = karmadactl(nowhere, &args).ok().to_owned();
        assert!(
            printed == committed,
            "deploy/{file} is not what `karmadactl {}` prints: regenerate it with that command",
            args.join(" ")
        );
        let out = api.kubectl(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        let applied = out.ok();
        assert!(
            applied.contains("deployment.apps/karmada-apiserver created (server dry run)"),
            "{applied}"
        );
    }
    let broken = deploy_dir().join("karmada.yaml");
    let broken =
        std::fs::read_to_string(broken).unwrap().replace("runAsUser: 65532", "runAsUser: -1");
    let file = api.file("broken.yaml", &broken);
    let refused = api.kubectl(&["apply", "--dry-run=server", "-f", &file]).fails().to_owned();
    assert!(refused.contains("runAsUser"), "{refused}");
}

/// `karmadactl init` on a host cluster: every object created, the components' pods scheduled
/// and Running (in the simulation), the kubeconfig written for the node's address and the join
/// commands printed. Then the API server runs exactly as installed — the Deployment's
/// arguments, the Secret's certificates read-only — and both the user's kubeconfig (at the
/// node address) and the components' (at the Service's DNS name) are served and trusted.
/// `deinit` removes it all, the data's claim only with `--purge-namespace`.
#[test]
fn init_installs_on_a_host_and_the_api_server_runs_as_installed() {
    let host = Members::start(&["host"], 1);
    let host_config = host.dir.path().join("members.config");
    let local = tempfile::tempdir().unwrap();
    let data = local.path().join("karmada");
    let pki = data.join("pki");
    let out = karmadactl(
        &host_config,
        &[
            "init",
            "--context",
            "host",
            "-d",
            data.to_str().unwrap(),
            "--karmada-pki",
            pki.to_str().unwrap(),
            "--wait-component-ready-timeout",
            "120",
        ],
    );
    let printed = out.ok().to_owned();
    let node =
        json_of(host.kubectl("host", &["get", "node", "host-control-plane", "-o", "json"]).ok());
    let node_ip = node["status"]["addresses"][0]["address"].as_str().unwrap().to_owned();
    let config = data.join("karmada-apiserver.config");
    for expected in [
        "deployments/karmada-apiserver ready".to_owned(),
        "jobs/karmada-init-secrets ready".to_owned(),
        format!("https://{node_ip}:32443"),
        format!("karmadactl --kubeconfig {} join", config.display()),
        format!(
            "karmadactl --kubeconfig {} token create --print-register-command",
            config.display()
        ),
    ] {
        assert!(printed.contains(&expected), "{expected:?} not in:\n{printed}");
    }
    for object in [
        "serviceaccount/karmada-init-secrets",
        "role/karmada-init-secrets",
        "rolebinding/karmada-init-secrets",
        "job/karmada-init-secrets",
        "persistentvolumeclaim/karmada-apiserver-data",
        "service/karmada-apiserver",
        "deployment/karmada-apiserver",
        "deployment/karmada-controller-manager",
        "deployment/karmada-scheduler",
        "secret/karmada-cert",
        "secret/karmada-kubeconfig",
    ] {
        host.kubectl("host", &["-n", NS, "get", object]).ok();
    }
    let phases = host
        .kubectl(
            "host",
            &[
                "-n",
                NS,
                "get",
                "pods",
                "-l",
                "app in (karmada-apiserver,karmada-controller-manager,karmada-scheduler)",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
        )
        .ok()
        .to_owned();
    assert_eq!(phases.split_whitespace().collect::<Vec<_>>(), ["Running"; 3], "{phases}");

    // The kubeconfig init wrote: the node's address and NodePort, this CA, the admin.
    let written: Value = serde_yaml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(written["clusters"][0]["cluster"]["server"], format!("https://{node_ip}:32443"));
    let local_pki: Vec<String> = std::fs::read_dir(&pki)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        local_pki.contains(&"ca.crt".to_owned()) && local_pki.contains(&"admin.key".to_owned())
    );

    let mounted = local.path().join("mounted-pki");
    let api = run_apiserver_as_installed(&host, &mounted, None);
    let before: Vec<_> = std::fs::read_dir(&mounted).unwrap().map(|e| e.unwrap().path()).collect();
    let namespaces = kubectl_at(&config, &api.url, &node_ip, &["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/karmada-system"), "{namespaces}");
    let components = local.path().join("components.config");
    std::fs::write(&components, &secret_files(&host, "karmada-kubeconfig")["karmada.config"])
        .unwrap();
    let service_name = "karmada-apiserver.karmada-system.svc.cluster.local";
    kubectl_at(&components, &api.url, service_name, &["get", "clusters"]);
    let after: Vec<_> = std::fs::read_dir(&mounted).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before, after, "the API server wrote into its (read-only) certificate mount");
    // The controllers' arguments are the binary's own flags.
    for (name, expect) in
        [("karmada-controller-manager", "controller-manager"), ("karmada-scheduler", "scheduler")]
    {
        let args = container_args(&host, "deployment", name);
        assert_eq!(args[0], expect);
        let check = std::process::Command::new(KARMADA).args(&args).arg("--help").output().unwrap();
        assert!(check.status.success(), "{name}: {}", String::from_utf8_lossy(&check.stderr));
    }

    let removed = karmadactl(&host_config, &["deinit", "--context", "host", "-f"]).ok().to_owned();
    for expected in [
        "deployments/karmada-apiserver deleted",
        "secrets/karmada-cert deleted",
        "jobs/karmada-init-secrets deleted",
    ] {
        assert!(removed.contains(expected), "{expected:?} not in:\n{removed}");
    }
    let left = host.kubectl(
        "host",
        &[
            "-n",
            NS,
            "get",
            "deployments,jobs,secrets,services",
            "-l",
            "karmada.io/bootstrapping",
            "-o",
            "name",
        ],
    );
    assert_eq!(left.ok().trim(), "");
    host.kubectl("host", &["-n", NS, "get", "persistentvolumeclaim/karmada-apiserver-data"]).ok();
    let purged =
        karmadactl(&host_config, &["deinit", "--context", "host", "-f", "--purge-namespace"])
            .ok()
            .to_owned();
    assert!(purged.contains("namespaces/karmada-system deleted"), "{purged}");
}

/// The plain manifests route: `kubectl apply -f deploy/karmada-ha.yaml` on a host, the Job's
/// command (run here with the host's credentials in place of its pod's service account)
/// creates the certificate and kubeconfig Secrets — etcd's included — once, keeping them when
/// it runs again; the etcd StatefulSet and every Deployment then come up (in the simulation).
/// Then etcd (Debian's, alone) and the API server run as installed, over TLS with those
/// certificates, and serve the components' kubeconfig.
#[test]
fn the_plain_manifests_make_their_certificates_with_their_job() {
    let host = Members::start(&["host"], 1);
    let host_config = host.dir.path().join("members.config");
    let ha = deploy_dir().join("karmada-ha.yaml");
    host.kubectl("host", &["apply", "-f", ha.to_str().unwrap()]).ok();
    let job = json_of(
        host.kubectl("host", &["-n", NS, "get", "job", "karmada-init-secrets", "-o", "json"]).ok(),
    );
    let args: Vec<String> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let run = || {
        let output = std::process::Command::new(KARMADA)
            .args(&args)
            .arg("--kubeconfig")
            .arg(&host_config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let first = run();
    assert!(first.contains("secret/karmada-cert created"), "{first}");
    assert!(first.contains("secret/karmada-kubeconfig created"), "{first}");
    let files = secret_files(&host, "karmada-cert");
    for key in [
        "ca.crt",
        "ca.key",
        "admin.crt",
        "sa.key",
        "encryption.key",
        "etcd-server.crt",
        "etcd-client.key",
    ] {
        assert!(files.contains_key(key), "{key} missing: {:?}", files.keys());
    }
    let again = run();
    assert!(again.contains("secret/karmada-cert exists, kept"), "{again}");
    assert_eq!(secret_files(&host, "karmada-cert"), files, "a second run changed the certificates");
    for workload in [
        "statefulset/etcd",
        "deployment/karmada-apiserver",
        "deployment/karmada-controller-manager",
        "deployment/karmada-scheduler",
    ] {
        host.kubectl("host", &["-n", NS, "rollout", "status", workload, "--timeout=120s"]).ok();
    }

    // etcd and the API server as installed, with the Job's certificates: TLS both ways
    // (etcd requires the API server's client certificate, the API server checks etcd's).
    let local = tempfile::tempdir().unwrap();
    let (mut etcd, client_url) = run_etcd_as_installed(&host, &local.path().join("etcd"));
    let api = run_apiserver_as_installed(&host, &local.path().join("pki"), Some(&client_url));
    let components = local.path().join("components.config");
    std::fs::write(&components, &secret_files(&host, "karmada-kubeconfig")["karmada.config"])
        .unwrap();
    let service_name = "karmada-apiserver.karmada-system.svc.cluster.local";
    kubectl_at(
        &components,
        &api.url,
        service_name,
        &["create", "configmap", "on-etcd", "--from-literal=a=b"],
    );
    let read = kubectl_at(
        &components,
        &api.url,
        service_name,
        &["get", "configmap", "on-etcd", "-o", "jsonpath={.data.a}"],
    );
    assert_eq!(read, "b");
    drop(api);
    let _ = etcd.kill();
    let _ = etcd.wait();
}

/// The image's files, laid out without Docker by the script the Dockerfile runs: exactly the
/// two binaries, executable, answering `--version`, and linking only what the distroless/cc
/// base has (a new system library would break the image: this says so here). The Dockerfile
/// runs the script on that base as the user the manifests run as.
#[test]
fn the_image_holds_both_binaries_needing_only_what_its_base_has() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rootfs = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(KARMADA).parent().unwrap();
    let output = std::process::Command::new(repo.join("scripts/image-rootfs"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg(rootfs.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["usr/local/bin/karmada", "usr/local/bin/karmadactl"]
    );
    // What distroless/cc-debian12 provides (glibc, libgcc).
    let base =
        ["libc.so.6", "libm.so.6", "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0", "librt.so.1"];
    for file in listed.lines() {
        let path = rootfs.path().join(file);
        let version = std::process::Command::new(&path).arg("--version").output().unwrap();
        assert!(version.status.success(), "{file} --version");
        assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
        let ldd = std::process::Command::new("ldd")
            .arg(&path)
            .output()
            .expect("ldd (Debian's libc-bin) is needed to check what the image's binaries link");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let Some((name, _)) = line.trim().split_once(" => ") else { continue };
            assert!(base.contains(&name), "{file} links {name}, which distroless/cc does not have");
        }
    }
    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).unwrap();
    for expected in [
        "RUN scripts/image-rootfs /rootfs".to_owned(),
        "FROM gcr.io/distroless/cc-debian12:nonroot".to_owned(),
        format!("USER {0}:{0}", deploy::RUN_AS),
        "ENTRYPOINT [\"/usr/local/bin/karmada\"]".to_owned(),
    ] {
        assert!(dockerfile.contains(&expected), "the Dockerfile lacks {expected:?}");
    }
    assert!(deploy::default_image().ends_with(&format!(":v{}", env!("CARGO_PKG_VERSION"))));
}

/// With a LoadBalancer Service the address is known only once the load balancer has it: init
/// then puts it in the API server's certificate (a second rollout) and in the kubeconfig.
#[test]
fn init_behind_a_load_balancer_certifies_and_writes_its_address() {
    let host = Members::start(&["host"], 1);
    let host_config = host.dir.path().join("members.config");
    let local = tempfile::tempdir().unwrap();
    let data = local.path().join("karmada");
    let pki = data.join("pki");
    let args = [
        "init",
        "--context",
        "host",
        "--karmada-apiserver-service-type",
        "LoadBalancer",
        "-d",
        data.to_str().unwrap(),
        "--karmada-pki",
        pki.to_str().unwrap(),
    ];
    let printed = karmadactl(&host_config, &args).ok().to_owned();
    let service = json_of(
        host.kubectl("host", &["-n", NS, "get", "service", "karmada-apiserver", "-o", "json"]).ok(),
    );
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    let address =
        service["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().unwrap().to_owned();
    let server = format!("https://{address}:5443");
    assert!(printed.contains(&server), "{server} not in:\n{printed}");
    let written: Value = serde_yaml::from_str(
        &std::fs::read_to_string(data.join("karmada-apiserver.config")).unwrap(),
    )
    .unwrap();
    assert_eq!(written["clusters"][0]["cluster"]["server"], server);
    let args = container_args(&host, "deployment", "karmada-apiserver");
    let sans = args.iter().find_map(|a| a.strip_prefix("--tls-san=")).unwrap();
    assert!(sans.split(',').any(|s| s == address), "{sans}");
    let api = run_apiserver_as_installed(&host, &local.path().join("mounted-pki"), None);
    kubectl_at(&data.join("karmada-apiserver.config"), &api.url, &address, &["get", "namespaces"]);
}
