//! Clusters end to end: karmadactl join/unjoin, the cluster and cluster-status controllers,
//! cordon and taints, against the real binaries and simulated members.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{KARMADA, eventually};
use crate::plane::{ControlPlane, upstream};

#[test]
fn join_status_faults_taints_and_unjoin() {
    let cp = ControlPlane::start(3);
    for name in ["member1", "member2", "member3"] {
        assert!(cp.join(name).ok().contains(&format!("cluster({name}) is joined successfully")));
    }
    eventually(Duration::from_secs(15), "three Ready clusters", || {
        let out = cp.api.kubectl(&["get", "clusters", "--no-headers"]);
        let ready =
            out.stdout.lines().filter(|l| l.split_whitespace().nth(3) == Some("True")).count();
        (ready == 3).then_some(())
    });
    let table = cp.api.kubectl(&["get", "clusters"]);
    assert!(table.ok().contains("v1.32.0   Push   True"), "{}", table.stdout);
    eventually(Duration::from_secs(10), "resource summary", || {
        let allocatable = cp.jsonpath("member1", "{.status.resourceSummary.allocatable.cpu}");
        let nodes = cp.jsonpath("member1", "{.status.nodeSummary.readyNum}");
        (allocatable == "24" && nodes == "3").then_some(())
    });
    assert!(cp.jsonpath("member1", "{.status.apiEnablements[*].groupVersion}").contains("apps/v1"));
    assert_eq!(
        cp.api.kubectl(&["get", "ns", "karmada-es-member1", "-o", "name"]).ok().trim(),
        "namespace/karmada-es-member1"
    );
    // Upstream's layout: the control plane holds the member's own ServiceAccount token (and
    // its CA), never the kubeconfig's credentials; the Secrets belong to the Cluster.
    let keys = |name: &str| {
        let out = cp.api.kubectl(&[
            "get",
            "secret",
            name,
            "-n",
            "karmada-cluster",
            "-o",
            "go-template={{range $k, $v := .data}}{{$k}} {{end}}",
        ]);
        out.ok().trim().to_owned()
    };
    assert_eq!(keys("member1"), "caBundle token");
    assert_eq!(keys("member1-impersonator"), "token");
    assert_eq!(
        cp.api
            .kubectl(&[
                "get",
                "secret",
                "member1",
                "-n",
                "karmada-cluster",
                "-o",
                "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"
            ])
            .ok(),
        "Cluster/member1"
    );
    assert_eq!(
        cp.jsonpath("member1", "{.spec.impersonatorSecretRef.name}"),
        "member1-impersonator"
    );
    let in_member =
        cp.member("member1", &["get", "sa,secret", "-n", "karmada-cluster", "-o", "name"]);
    for object in [
        "serviceaccount/karmada-member1",
        "serviceaccount/karmada-impersonator",
        "secret/karmada-member1",
    ] {
        assert!(in_member.stdout.contains(object), "{object} missing: {}", in_member.stdout);
    }
    cp.member(
        "member1",
        &["get", "clusterrolebinding", "karmada-controller-manager:karmada-member1"],
    )
    .ok();
    // Joining again is idempotent: still one cluster.
    cp.join("member1").ok();
    assert_eq!(cp.api.kubectl(&["get", "clusters", "--no-headers"]).ok().lines().count(), 3);
    // A name already used by another cluster is refused.
    let other = cp.karmadactl(&[
        "join",
        "member1",
        "--cluster-kubeconfig",
        cp.members_config.to_str().unwrap(),
        "--cluster-context",
        "member2",
    ]);
    assert!(other.fails().contains("already joined"), "{}", other.stderr);
    // Unreachable: Ready False (ClusterNotReachable), then the unreachable taint.
    cp.fault("member2", &["--unreachable", "true"]);
    // (Probes of an unreachable member time out after 5 s each; on a loaded machine the
    // failure threshold takes a while.)
    eventually(Duration::from_secs(40), "member2 unreachable and tainted", || {
        let reason = cp.jsonpath("member2", "{.status.conditions[?(@.type==\"Ready\")].reason}");
        let taints = cp.jsonpath("member2", "{.spec.taints[*].key}");
        (reason == "ClusterNotReachable" && taints.contains("cluster.karmada.io/unreachable"))
            .then_some(())
    });
    cp.fault("member2", &["--clear"]);
    eventually(Duration::from_secs(20), "member2 recovered", || {
        let status = cp.jsonpath("member2", "{.status.conditions[?(@.type==\"Ready\")].status}");
        let taints = cp.jsonpath("member2", "{.spec.taints}");
        (status == "True" && (taints.is_empty() || taints == "[]")).then_some(())
    });
    // Unhealthy: the not-ready taint.
    cp.fault("member3", &["--unhealthy", "true"]);
    eventually(Duration::from_secs(20), "member3 not ready", || {
        let reason = cp.jsonpath("member3", "{.status.conditions[?(@.type==\"Ready\")].reason}");
        let taints = cp.jsonpath("member3", "{.spec.taints[*].key}");
        (reason == "ClusterNotReady" && taints.contains("cluster.karmada.io/not-ready"))
            .then_some(())
    });
    cp.fault("member3", &["--clear"]);
    // Cordon, taint and their removal.
    cp.karmadactl(&["cordon", "member1"]).ok();
    assert!(
        cp.jsonpath("member1", "{.spec.taints[*].key}")
            .contains("cluster.karmada.io/unschedulable")
    );
    cp.karmadactl(&["uncordon", "member1"]).ok();
    assert!(!cp.jsonpath("member1", "{.spec.taints[*].key}").contains("unschedulable"));
    cp.karmadactl(&["taint", "clusters", "member1", "team=a:NoExecute"]).ok();
    assert_eq!(cp.jsonpath("member1", "{.spec.taints[0].effect}"), "NoExecute");
    assert!(
        !cp.jsonpath("member1", "{.spec.taints[0].timeAdded}").is_empty(),
        "NoExecute taints get timeAdded"
    );
    cp.karmadactl(&["taint", "clusters", "member1", "team:NoExecute-"]).ok();
    assert!(matches!(cp.jsonpath("member1", "{.spec.taints}").as_str(), "" | "[]"));
    let listed = cp.karmadactl(&["get", "clusters"]);
    assert_eq!(listed.ok().lines().count(), 4, "{}", listed.stdout);
    // Unjoin removes the Cluster, its Secrets and its execution namespace, and (given the
    // member's kubeconfig) what joining created in the member.
    cp.karmadactl(&[
        "unjoin",
        "member1",
        "--wait",
        "--cluster-kubeconfig",
        cp.members_config.to_str().unwrap(),
        "--cluster-context",
        "member1",
    ])
    .ok();
    cp.api.kubectl(&["get", "cluster", "member1"]).fails();
    cp.api.kubectl(&["get", "secret", "member1", "-n", "karmada-cluster"]).fails();
    cp.api.kubectl(&["get", "secret", "member1-impersonator", "-n", "karmada-cluster"]).fails();
    cp.member("member1", &["get", "clusterrole", "karmada-controller-manager:karmada-member1"])
        .fails();
    eventually(Duration::from_secs(10), "the member's karmada-cluster namespace removed", || {
        (cp.member("member1", &["get", "ns", "karmada-cluster"]).code != 0).then_some(())
    });
    eventually(Duration::from_secs(10), "execution namespace removed", || {
        (cp.api.kubectl(&["get", "ns", "karmada-es-member1"]).code != 0).then_some(())
    });
}

#[test]
fn joining_an_unreachable_cluster_fails_clearly_and_creates_nothing() {
    let cp = ControlPlane::start(1);
    cp.fault("member1", &["--unreachable", "true"]);
    let members_config = cp.members_config.clone();
    eventually(Duration::from_secs(10), "member1 unreachable", || {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&members_config)
            .args(["--context", "member1", "--request-timeout=1s", "get", "ns"])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        (!out.status.success()).then_some(())
    });
    let out = cp.join("member1");
    let err = out.fails().to_owned();
    assert!(
        err.contains("member1") && (err.contains("cannot reach") || err.contains("did not answer")),
        "{err}"
    );
    assert_eq!(cp.api.kubectl(&["get", "clusters", "-o", "name"]).ok().trim(), "");
    cp.api.kubectl(&["get", "secret", "member1", "-n", "karmada-cluster"]).fails();
}

#[test]
fn the_scheduler_places_bindings_on_joined_clusters() {
    let cp = ControlPlane::with_joined(2);
    // A binding as the detector writes it for the quick start (Divided 1:1 over two clusters).
    let binding = r#"
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata:
  name: nginx-deployment
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: nginx}
  replicas: 2
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 1}
        - {targetCluster: {clusterNames: [member2]}, weight: 1}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], binding).ok();
    let placed = eventually(Duration::from_secs(15), "binding scheduled", || {
        let out =
            cp.api.kubectl(&["get", "rb", "nginx-deployment", "-o", "jsonpath={.spec.clusters}"]);
        (out.code == 0 && out.stdout.contains("member2")).then_some(out.stdout)
    });
    assert_eq!(placed, r#"[{"name":"member1","replicas":1},{"name":"member2","replicas":1}]"#);
    let table = cp.api.kubectl(&["get", "rb"]);
    assert!(table.ok().contains("nginx-deployment   True"), "{}", table.stdout);
    // Nothing fits: a clear NoClusterFit condition.
    let impossible =
        binding.replace("nginx-deployment", "nowhere").replace("[member1, member2]}", "[member9]}");
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &impossible).ok();
    let message = eventually(Duration::from_secs(15), "NoClusterFit", || {
        let out = cp.api.kubectl(&[
            "get",
            "rb",
            "nowhere",
            "-o",
            "jsonpath={.status.conditions[0].reason}: {.status.conditions[0].message}",
        ]);
        out.stdout.starts_with("NoClusterFit").then_some(out.stdout)
    });
    assert!(message.contains("0/2 clusters are available: 2 cluster(s) did not match the placement cluster affinity constraint."), "{message}");
}

#[test]
fn the_quick_start_deployment_gets_a_scheduled_binding() {
    let cp = ControlPlane::with_joined(2);
    let upstream = upstream("nginx");
    // The template first, the policy after: the detector picks it up when the policy arrives.
    cp.api.kubectl(&["create", "-f", upstream.join("deployment.yaml").to_str().unwrap()]).ok();
    cp.api
        .kubectl(&["create", "-f", upstream.join("propagationpolicy.yaml").to_str().unwrap()])
        .ok();
    let clusters = eventually(Duration::from_secs(20), "nginx binding scheduled", || {
        let out =
            cp.api.kubectl(&["get", "rb", "nginx-deployment", "-o", "jsonpath={.spec.clusters}"]);
        (out.code == 0 && out.stdout.contains("member2")).then_some(out.stdout)
    });
    assert_eq!(clusters, r#"[{"name":"member1","replicas":1},{"name":"member2","replicas":1}]"#);
    // Claimed as upstream claims: the policy's name as an annotation.
    let claim = cp.api.kubectl(&[
        "get",
        "deploy",
        "nginx",
        "-o",
        "jsonpath={.metadata.annotations.propagationpolicy\\.karmada\\.io/name}",
    ]);
    assert_eq!(claim.ok(), "nginx-propagation");
    let owner = cp.api.kubectl(&[
        "get",
        "rb",
        "nginx-deployment",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind} {.spec.replicas}",
    ]);
    assert_eq!(owner.ok(), "Deployment 2");
    // One Work per cluster, with that cluster's share and its overrides.
    cp.api.kubectl(&["create", "-f", upstream.join("overridepolicy.yaml").to_str().unwrap()]).ok();
    let manifest = |cluster: &str, path: &str| {
        let out = cp.api.kubectl(&[
            "get",
            "work",
            "-n",
            &format!("karmada-es-{cluster}"),
            "-o",
            // The Deployment's Work (the execution namespace also holds unifiedAuth's).
            &format!(
                "jsonpath={{.items[?(@.spec.workload.manifests[0].kind==\"Deployment\")].spec.workload.manifests[0]{path}}}"
            ),
        ]);
        out.stdout
    };
    eventually(Duration::from_secs(40), "Works with overrides", || {
        let ok = manifest("member1", ".spec.replicas") == "1"
            && manifest("member2", ".spec.replicas") == "1"
            && manifest("member2", ".metadata.labels.env") == "skoala-dev"
            && manifest("member1", ".metadata.annotations.env") == "skoala-stage";
        ok.then_some(())
    });
    assert_eq!(manifest("member1", ".metadata.labels.karmada\\.io/managed"), "true");
    assert_eq!(manifest("member2", ".metadata.uid"), "", "server-owned metadata is stripped");
    // The execution controller runs each share in its member.
    let member = |cluster: &str, args: &[&str]| cp.member(cluster, args).stdout;
    eventually(Duration::from_secs(30), "nginx 1/1 in both members", || {
        let m1 = member(
            "member1",
            &["get", "deploy", "nginx", "-o", "jsonpath={.status.readyReplicas}"],
        );
        let m2 = member(
            "member2",
            &["get", "deploy", "nginx", "-o", "jsonpath={.status.readyReplicas}"],
        );
        (m1 == "1" && m2 == "1").then_some(())
    });
    assert_eq!(
        member("member2", &["get", "deploy", "nginx", "-o", "jsonpath={.metadata.labels.env}"]),
        "skoala-dev"
    );
    let applied = cp.api.kubectl(&[
        "get",
        "work",
        "-n",
        "karmada-es-member1",
        "-o",
        "jsonpath={.items[0].status.conditions[0].status}",
    ]);
    assert_eq!(applied.ok(), "True");
    // Status comes back: the control plane shows 2/2 and the binding is fully applied.
    let ready = eventually(Duration::from_secs(30), "nginx 2/2 on the control plane", || {
        let out = cp.api.kubectl(&["get", "deploy", "nginx", "--no-headers"]);
        out.stdout.contains("2/2").then_some(out.stdout)
    });
    assert!(
        ready.split_whitespace().collect::<Vec<_>>()[..4] == ["nginx", "2/2", "2", "2"],
        "{ready}"
    );
    eventually(Duration::from_secs(30), "binding scheduled and fully applied", || {
        let rb = cp.api.kubectl(&["get", "rb", "nginx-deployment", "--no-headers"]);
        rb.stdout.contains("True   True").then_some(())
    });
    // Deleting the template removes its binding (owner reference), and then its Works.
    cp.api.kubectl(&["delete", "deploy", "nginx"]).ok();
    eventually(Duration::from_secs(20), "binding collected", || {
        (cp.api.kubectl(&["get", "rb", "nginx-deployment"]).code != 0).then_some(())
    });
    eventually(Duration::from_secs(30), "member copies removed", || {
        let gone = member("member1", &["get", "deploy", "-o", "name"]).trim().is_empty()
            && member("member2", &["get", "deploy", "-o", "name"]).trim().is_empty();
        gone.then_some(())
    });
}

#[test]
fn karmada_up_runs_the_quick_start() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("karmada.config");
    let (up, rx) =
        crate::harness::karmada_up(&["--members", "2"], &dir.path().join("data"), &kubeconfig);
    let running = rx.recv_timeout(Duration::from_secs(60));
    let kill = |mut up: Child| {
        let _ = up.kill();
        let _ = up.wait();
    };
    if running.as_deref() != Ok("Local Karmada is running.") {
        kill(up);
        panic!("karmada up did not start: {running:?}");
    }
    let kubectl =
        |context: &str, args: &[&str]| crate::harness::kubectl_context(&kubeconfig, context, args);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (_, clusters) = kubectl("karmada-apiserver", &["get", "clusters", "--no-headers"]);
        assert_eq!(clusters.lines().filter(|l| l.contains(" True ")).count(), 2, "{clusters}");
        let upstream = upstream("nginx");
        for file in ["deployment.yaml", "propagationpolicy.yaml"] {
            let (code, _) = kubectl(
                "karmada-apiserver",
                &["create", "-f", upstream.join(file).to_str().unwrap()],
            );
            assert_eq!(code, 0, "{file}");
        }
        eventually(Duration::from_secs(30), "nginx 2/2 on the control plane", || {
            let (_, out) =
                kubectl("karmada-apiserver", &["get", "deployment", "nginx", "--no-headers"]);
            out.contains("2/2").then_some(())
        });
        let (_, pods) = kubectl("member1", &["get", "pods", "--no-headers"]);
        assert!(pods.contains("Running"), "{pods}");
        let (_, policies) =
            kubectl("karmada-apiserver", &["get", "clustertaintpolicies", "-o", "name"]);
        assert_eq!(policies.lines().count(), 2, "default failover policies: {policies}");
        // Every Karmada kind is listed as a CRD, as upstream installs them.
        let (_, crds) = kubectl("karmada-apiserver", &["get", "crd", "-o", "name"]);
        for kind in karmada_api::kinds::KINDS {
            let crd = karmada_api::schema::crd(kind);
            let name = crd["metadata"]["name"].as_str().unwrap();
            assert!(crds.contains(name), "{name} missing from kubectl get crd: {crds}");
        }
        // The dashboard, and the local administrator's token to sign in with.
        let line = rx
            .iter()
            .find(|l| l.starts_with("Dashboard: "))
            .expect("karmada up names its dashboard");
        let rest = line.strip_prefix("Dashboard: http://").expect(&line);
        let (addr, rest) = rest.split_once(' ').unwrap();
        let token_file =
            rest.trim_start_matches("(sign in with the token in ").trim_end_matches(')');
        let token = std::fs::read_to_string(token_file).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token is the owner's only");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let body = format!("token={}", token.trim());
        std::io::Write::write_all(
            &mut stream,
            format!(
                "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 303") && reply.contains("karmada_dashboard="),
            "{reply}"
        );
    }));
    kill(up);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn karmada_up_detaches_and_karmada_down_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kubeconfig = dir.path().join("karmada.config");
    let up = |extra: &[&str]| {
        Command::new(KARMADA)
            .args(["up", "--members", "1", "--port", "0", "--dashboard-port", "0", "--data-dir"])
            .arg(&data)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let down = || Command::new(KARMADA).args(["down", "--data-dir"]).arg(&data).output().unwrap();
    let started = up(&["--detach"]);
    let stdout = String::from_utf8_lossy(&started.stdout).into_owned();
    assert!(started.status.success(), "{stdout} {}", String::from_utf8_lossy(&started.stderr));
    assert!(stdout.starts_with("Local Karmada is running."), "{stdout}");
    assert!(stdout.contains("karmada down"), "{stdout}");
    let clusters = || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--context",
                "karmada-apiserver",
                "--request-timeout=2s",
                "get",
                "clusters",
                "--no-headers",
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let listed = clusters();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(String::from_utf8_lossy(&listed.stdout).contains(" True "), "{listed:?}");
        // Keys, the store and credentials are the owner's only.
        use std::os::unix::fs::PermissionsExt;
        let pki = data.join("pki");
        for path in [
            data.clone(),
            pki.join("sa.key"),
            pki.join("ca.key"),
            pki.join("encryption.key"),
            data.join("store.redb"),
            kubeconfig.clone(),
        ] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is mode {mode:04o}", path.display());
        }
        // A second one on the same data dir is refused while the first runs.
        let again = up(&[]);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    }));
    let stopped = down();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(stopped.status.success(), "{stopped:?}");
    assert_eq!(String::from_utf8_lossy(&stopped.stdout).trim(), "Local Karmada stopped.");
    assert!(!clusters().status.success(), "the control plane is gone");
    let nothing = down();
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no local Karmada is running"));
}

/// The README's quick start, run literally: the `sh` block after `<!-- quick-start -->`, line
/// by line with bash from the repository root, against `karmada up` (the `export KUBECONFIG`
/// line is replaced by the test's kubeconfig). A line ending in `# shows: TEXT` is retried until
/// its output contains TEXT; every other line must succeed the first time.
#[test]
fn the_readme_quick_start_runs_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split_once("<!-- quick-start -->")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block.to_owned())
        .expect("README.md has a sh block after <!-- quick-start -->");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 6, "the quick start has its steps: {lines:?}");
    assert_eq!(
        lines[0], "export KUBECONFIG=~/.kube/karmada.config",
        "the quick start starts from karmada up's default kubeconfig"
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("karmada.config");
    let (mut up, rx) =
        crate::harness::karmada_up(&["--members", "3"], &dir.path().join("data"), &kubeconfig);
    let running = rx.recv_timeout(Duration::from_secs(60));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(running.as_deref(), Ok("Local Karmada is running."));
        for line in &lines[1..] {
            let (command, shows) = match line.split_once("# shows:") {
                Some((command, shows)) => (command.trim(), Some(shows.trim())),
                None => (line.trim(), None),
            };
            let run = || {
                let out = Command::new("bash")
                    .args(["-c", command])
                    .current_dir(&root)
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .unwrap();
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            };
            match shows {
                Some(text) => {
                    eventually(
                        Duration::from_secs(60),
                        &format!("`{command}` shows {text}"),
                        || {
                            let (ok, out, _) = run();
                            (ok && out.contains(text)).then_some(())
                        },
                    );
                }
                None => {
                    let (ok, out, err) = run();
                    assert!(ok, "`{command}` failed: {out} {err}");
                }
            }
        }
    }));
    let _ = up.kill();
    let _ = up.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Capacity-aware division end to end: a Divided workload that does not fit the clusters' ready
/// nodes is Unschedulable with a clear message, is scheduled as soon as capacity appears (nodes
/// become Ready), and its replicas follow each cluster's available replicas. (By the clusters'
/// resource summaries: resource modelling, which estimates by model grades instead, is off.)
#[test]
fn a_workload_too_big_for_the_clusters_waits_and_lands_when_capacity_appears() {
    let cp = ControlPlane::with_joined_flags(2, &[], &[SUMMARY_ESTIMATE]);
    // member1 keeps none of its 3 nodes (8 CPU each), member2 one: 0 + 8 CPU ready.
    cp.fault(
        "member1",
        &[
            "--node-not-ready",
            "member1-control-plane",
            "--node-not-ready",
            "member1-worker",
            "--node-not-ready",
            "member1-worker2",
        ],
    );
    cp.fault(
        "member2",
        &["--node-not-ready", "member2-worker", "--node-not-ready", "member2-worker2"],
    );
    let cpu = |c: &str| cp.jsonpath(c, "{.status.resourceSummary.allocatable.cpu}");
    // (A cluster without ready nodes reports no cpu at all: the old value must not linger.)
    eventually(Duration::from_secs(30), "capacity reported", || {
        (cpu("member1").is_empty() || cpu("member1") == "0").then_some(())?;
        (cpu("member2") == "8").then_some(())
    });
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: big, namespace: default}
spec:
  replicas: 6
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec:
      containers:
      - name: c
        image: nginx
        resources: {requests: {cpu: "3"}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: big, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: big}]
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], manifest).ok();
    let condition = || {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                "big-deployment",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Scheduled\")].reason}: {.status.conditions[?(@.type==\"Scheduled\")].message}",
            ])
            .stdout
    };
    let waiting = eventually(Duration::from_secs(30), "Unschedulable", || {
        let c = condition();
        c.starts_with("Unschedulable").then_some(c)
    });
    assert!(
        waiting.contains("no enough resource") && waiting.contains("6 replicas requested"),
        "{waiting}"
    );
    let clusters =
        cp.api.kubectl(&["get", "rb", "big-deployment", "-o", "jsonpath={.spec.clusters}"]);
    assert_eq!(clusters.stdout, "", "nothing is placed while it does not fit");
    // Capacity appears: member1's nodes come back (24 CPU → 8 replicas), member2 stays at 2.
    cp.fault("member1", &["--clear"]);
    let placed = eventually(Duration::from_secs(60), "scheduled once capacity appeared", || {
        let out =
            cp.api.kubectl(&["get", "rb", "big-deployment", "-o", "jsonpath={.spec.clusters}"]);
        (condition().starts_with("Success") && !out.stdout.is_empty()).then_some(out.stdout)
    });
    let placed: serde_json::Value = serde_json::from_str(&placed).unwrap();
    let replicas = |name: &str| {
        placed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["replicas"].as_i64())
            .unwrap_or(0)
    };
    assert_eq!(replicas("member1") + replicas("member2"), 6, "{placed}");
    assert!(replicas("member1") > replicas("member2"), "divided by available replicas: {placed}");
    assert!(replicas("member2") <= 2, "never more than a cluster can hold: {placed}");
    eventually(Duration::from_secs(60), "pods running in member1", || {
        let out = cp
            .member("member1", &["get", "deploy", "big", "-o", "jsonpath={.status.readyReplicas}"]);
        (out.stdout == replicas("member1").to_string()).then_some(())
    });
}

/// `--controllers` takes upstream's names: a name no Karmada has is refused with the list of
/// the known ones, before anything starts (by the controller-manager, the agent and `karmada
/// up` alike).
#[test]
fn an_unknown_controller_name_is_refused_clearly() {
    for args in [
        &["controller-manager", "--kubeconfig", "/nonexistent", "--controllers", "*,-bindings"][..],
        &["up", "--data-dir", "/nonexistent/karmada", "--controllers", "bindings"][..],
    ] {
        let out = std::process::Command::new(KARMADA).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("unknown controller \"bindings\""), "{args:?}: {stderr}");
        assert!(stderr.contains("bindingStatus"), "the known names are listed: {stderr}");
    }
    let out = std::process::Command::new(KARMADA)
        .args(["agent", "--karmada-kubeconfig", "/x", "--cluster-kubeconfig", "/y"])
        .args(["--cluster-name", "m1", "--controllers", "binding"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown controller \"binding\""), "not an agent's: {stderr}");
}

/// `--feature-gates` as upstream's components take it: every component accepts upstream's
/// gates and refuses a gate no Karmada has, or a value that is not a boolean, before anything
/// starts.
#[test]
fn feature_gates_are_upstreams() {
    let components: [&[&str]; 5] = [
        &["controller-manager", "--kubeconfig", "/nonexistent"],
        &["scheduler", "--kubeconfig", "/nonexistent"],
        &["apiserver", "--data-dir", "/nonexistent/karmada"],
        &[
            "agent",
            "--karmada-kubeconfig",
            "/x",
            "--cluster-kubeconfig",
            "/y",
            "--cluster-name",
            "m1",
        ],
        &["up", "--data-dir", "/nonexistent/karmada"],
    ];
    for args in components {
        let run = |gates: &str| {
            let mut words = gates.split(' ');
            let out = std::process::Command::new(KARMADA)
                .args(args)
                .arg(format!("--feature-gates={}", words.next().unwrap_or_default()))
                .args(words)
                .output()
                .unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let (ok, stderr) = run("Failover=true,Bogus=true");
        assert!(!ok && stderr.contains("unrecognized feature gate: Bogus"), "{args:?}: {stderr}");
        let (ok, stderr) = run("Failover=maybe");
        assert!(!ok && stderr.contains("invalid value of Failover=maybe"), "{args:?}: {stderr}");
        // Upstream's gates are accepted (`--help` after them: nothing starts).
        let (ok, stderr) =
            run("AllAlpha=true,AllBeta=false,Failover=true,MultiClusterService=false --help");
        assert!(ok, "{args:?}: {stderr}");
    }
}

/// The scheduler flag that makes it estimate by clusters' resource summaries, not by their
/// resource models.
pub const SUMMARY_ESTIMATE: &str = "--feature-gates=CustomizedClusterResourceModeling=false";

/// CustomizedClusterResourceModeling: a joined cluster gets upstream's nine default grades, its
/// status counts its nodes per grade by what each has free, user models are standardized, and
/// the scheduler estimates a modelled cluster by its grades (each node as its grade's minimum).
#[test]
fn clusters_have_resource_models_and_count_their_nodes_by_grade() {
    let cp = ControlPlane::with_joined(1);
    let grades = cp.jsonpath("member1", "{.spec.resourceModels[*].grade}");
    assert_eq!(grades, "0 1 2 3 4 5 6 7 8");
    assert_eq!(
        cp.jsonpath("member1", "{.spec.resourceModels[8].ranges[0].max}"),
        "9223372036854775807"
    );
    // Three nodes of 8 cores and 32Gi: 4–8 cores free is grade 3, and so is 32Gi of memory;
    // a node where system pods (CoreDNS) request memory has less than 32Gi free: grade 2.
    let counts = eventually(Duration::from_secs(20), "allocatableModelings", || {
        let out = cp.jsonpath(
            "member1",
            "{range .status.resourceSummary.allocatableModelings[*]}{.grade}={.count} {end}",
        );
        (!out.trim().is_empty()).then_some(out)
    });
    let counted: Vec<(u32, i64)> = counts
        .split_whitespace()
        .filter_map(|p| {
            p.split_once('=').and_then(|(g, c)| Some((g.parse().ok()?, c.parse().ok()?)))
        })
        .collect();
    assert_eq!(counted.len(), 9, "{counts}");
    assert_eq!(counted.iter().map(|(_, c)| c).sum::<i64>(), 3, "{counts}");
    assert!(counted.iter().all(|(g, c)| *c == 0 || (2..=3).contains(g)), "{counts}");
    // Models a user writes: ordered by grade, the first from 0, the last unbounded.
    cp.api
        .kubectl(&[
            "patch",
            "cluster",
            "member1",
            "--type=merge",
            "-p",
            r#"{"spec":{"resourceModels":[{"grade":1,"ranges":[{"name":"cpu","min":"4","max":"8"}]},{"grade":0,"ranges":[{"name":"cpu","min":"1","max":"4"}]}]}}"#,
        ])
        .ok();
    let models = cp.jsonpath(
        "member1",
        "{range .spec.resourceModels[*]}{.grade}:{.ranges[0].min}-{.ranges[0].max} {end}",
    );
    assert_eq!(models.trim(), "0:0-4 1:4-9223372036854775807");
    let counts = eventually(Duration::from_secs(20), "counts by the new models", || {
        let out = cp.jsonpath(
            "member1",
            "{range .status.resourceSummary.allocatableModelings[*]}{.grade}={.count} {end}",
        );
        (out.trim() == "0=0 1=3").then_some(out)
    });
    assert_eq!(counts.trim(), "0=0 1=3");
    // Three nodes of grade 1 (at least 4 cores free) hold one 3-core replica each: five do not
    // fit, although the summary's 23 free cores would say seven.
    let workload = |replicas: u32| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: graded, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: graded}}}}
  template:
    metadata: {{labels: {{app: graded}}}}
    spec:
      containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: "3"}}}}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: graded, namespace: default}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: graded}}]
  placement:
    clusterAffinity: {{clusterNames: [member1]}}
    replicaScheduling: {{replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}}
"#
        )
    };
    let scheduled = || {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                "graded-deployment",
                "-o",
                "jsonpath={.spec.replicas} {.status.conditions[?(@.type==\"Scheduled\")].message}|{.spec.clusters}",
            ])
            .stdout
    };
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &workload(5)).ok();
    let waiting = eventually(Duration::from_secs(30), "five do not fit", || {
        let s = scheduled();
        s.contains("no enough resource").then_some(s)
    });
    assert!(waiting.contains("5 replicas requested"), "{waiting}");
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &workload(3)).ok();
    crate::harness::eventually_seen(Duration::from_secs(30), "three fit", || {
        let s = scheduled();
        if s.ends_with(r#"|[{"name":"member1","replicas":3}]"#) { Ok(()) } else { Err(s) }
    });
}
