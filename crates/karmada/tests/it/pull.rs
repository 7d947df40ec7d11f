//! Pull mode end to end: a simulated member served by `karmada agent` (the control plane
//! never reaches it), beside a push-mode member.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{KARMADA, eventually};
use crate::plane::{ControlPlane, upstream};

/// A kubeconfig for the agent of `cluster`: a client certificate from the control plane's CA
/// naming the agent identity (what `karmadactl register` obtains through a CSR).
fn agent_kubeconfig(cp: &ControlPlane, cluster: &str) -> std::path::PathBuf {
    cp.api.user_kubeconfig(&format!("system:karmada:agent:{cluster}"), &["system:karmada:agents"])
}

fn agent(cp: &ControlPlane, cluster: &str) -> Child {
    Command::new(KARMADA)
        .args(["agent", "--karmada-kubeconfig"])
        .arg(agent_kubeconfig(cp, cluster))
        .arg("--cluster-kubeconfig")
        .arg(&cp.members_config)
        .args([
            "--cluster-context",
            cluster,
            "--cluster-name",
            cluster,
            "--cluster-region",
            "edge",
            "--cluster-status-update-frequency",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_pull_mode_cluster_is_served_by_its_agent() {
    let mut cp = ControlPlane::start(2);
    cp.start_scheduler();
    cp.join("member1").ok();
    let pull = agent(&cp, "member2");
    let row = |name: &str| {
        let out = cp.api.kubectl(&["get", "cluster", name, "--no-headers"]);
        out.stdout.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(30), "member2 registered in Pull mode and Ready", || {
        let r = row("member2");
        (r.get(2).map(String::as_str) == Some("Pull")
            && r.get(3).map(String::as_str) == Some("True"))
        .then_some(())
    });
    assert_eq!(cp.jsonpath("member2", "{.spec.region}"), "edge");
    assert!(!cp.jsonpath("member2", "{.status.kubernetesVersion}").is_empty(), "status reported");
    // As upstream's agent by default, it reported the member's endpoint and credentials: the
    // cluster proxy reaches the Pull cluster too.
    assert_eq!(
        cp.jsonpath("member2", "{.spec.secretRef.name} {.spec.impersonatorSecretRef.name}"),
        "member2 member2-impersonator"
    );
    assert!(cp.jsonpath("member2", "{.spec.apiEndpoint}").starts_with("https://"));
    let nodes = eventually(Duration::from_secs(20), "member2's nodes through the proxy", || {
        let out = cp.api.kubectl(&[
            "get",
            "--raw",
            "/apis/cluster.karmada.io/v1alpha1/clusters/member2/proxy/api/v1/nodes",
        ]);
        (out.code == 0).then_some(out.stdout)
    });
    assert!(nodes.contains(r#""kind":"NodeList""#), "{nodes}");

    // nginx over member1 (push) and member2 (pull).
    let nginx = upstream("nginx");
    for file in ["deployment.yaml", "propagationpolicy.yaml"] {
        cp.api.kubectl(&["create", "-f", nginx.join(file).to_str().unwrap()]).ok();
    }
    eventually(Duration::from_secs(60), "nginx running in member2, aggregated", || {
        let pods = cp.member("member2", &["get", "pods", "--no-headers"]).stdout;
        let ready = cp.api.kubectl(&["get", "deploy", "nginx", "--no-headers"]).stdout;
        (pods.contains("Running") && ready.contains("2/2")).then_some(())
    });
    let applied = cp.api.kubectl(&[
        "get",
        "work",
        "-n",
        "karmada-es-member2",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type==\"Applied\")].status}",
    ]);
    assert_eq!(applied.ok(), "True", "the agent reports the Work applied");

    // The agent stops: after the grace period the cluster is Unknown (and tainted).
    stop(pull);
    eventually(Duration::from_secs(30), "member2 Unknown after its agent stopped", || {
        (row("member2").get(3).map(String::as_str) == Some("Unknown")).then_some(())
    });
    let reason = cp.jsonpath("member2", "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(reason.contains("lease"), "{reason}");

    // It comes back and resumes, without duplicating anything.
    let pull = agent(&cp, "member2");
    eventually(Duration::from_secs(30), "member2 Ready again", || {
        (row("member2").get(3).map(String::as_str) == Some("True")).then_some(())
    });
    let deployments = cp.member("member2", &["get", "deploy", "-o", "name"]);
    assert_eq!(deployments.ok().trim(), "deployment.apps/nginx");
    // A change to the template reaches the pull member through its agent.
    cp.api.kubectl(&["scale", "deploy", "nginx", "--replicas", "4"]).ok();
    eventually(Duration::from_secs(30), "member2 follows the new replica count", || {
        let r =
            cp.member("member2", &["get", "deploy", "nginx", "-o", "jsonpath={.spec.replicas}"]);
        (r.stdout == "2").then_some(())
    });

    // The agent's credentials reach nothing else.
    let agent_config = agent_kubeconfig(&cp, "member2");
    let as_agent = |args: &[&str]| {
        let out = cp.api.kubectl_as(&agent_config, args);
        (out.code == 0, out.stderr)
    };
    let (ok, _) = as_agent(&["get", "works", "-n", "karmada-es-member2"]);
    assert!(ok, "its own Works");
    for args in [
        &["get", "works", "-n", "karmada-es-member1"][..],
        &["get", "secrets", "-n", "karmada-cluster"],
        &["get", "clusters"],
        &["delete", "cluster", "member2"],
    ] {
        let (ok, err) = as_agent(args);
        assert!(!ok && err.to_lowercase().contains("forbidden"), "{args:?}: {err}");
    }
    let mut create = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&agent_config)
        .args(["create", "-f", "-"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: intruder\nspec:\n  syncMode: Pull\n")
        .unwrap();
    let out = create.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may only create its own"), "{err}");
    stop(pull);
}

fn karmadactl_path() -> std::path::PathBuf {
    std::path::PathBuf::from(KARMADA).with_file_name("karmadactl")
}

fn run_karmadactl(args: &[String]) -> (bool, String, String) {
    let out = Command::new(karmadactl_path()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Upstream's bootstrap: a token from `karmadactl token create --print-register-command`, a
/// `karmadactl register` that checks the CA pin and trades the token for the agent's own
/// certificate, the agent started as printed; wrong, expired and mis-pinned tokens refused
/// clearly; `unregister` works with the agent gone.
#[test]
fn register_with_a_bootstrap_token_and_unregister_without_the_agent() {
    let mut cp = ControlPlane::start(1);
    cp.start_scheduler();
    let printed = cp.karmadactl(&["token", "create", "--print-register-command", "--ttl", "1h"]);
    let command = printed.ok().trim().to_owned();
    assert!(command.starts_with("karmadactl register https://"), "{command}");
    let register: Vec<String> = command.split_whitespace().skip(1).map(str::to_owned).collect();
    let token = register[register.iter().position(|a| a == "--token").unwrap() + 1].clone();

    // A bootstrap token can do nothing but bootstrap.
    let ca = cp.api.dir.path().join("pki/ca.crt");
    let secrets = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &cp.api.url, "--token", &token])
        .arg(format!("--certificate-authority={}", ca.display()))
        .args(["get", "secrets", "-n", "kube-system"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let secrets = String::from_utf8_lossy(&secrets.stderr).into_owned();
    assert!(secrets.contains("Forbidden") && secrets.contains("system:bootstrap:"), "{secrets}");

    let dir = tempfile::tempdir().unwrap();
    let agent_config = dir.path().join("agent.config");
    let with = |args: &[String], extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        all.extend(
            [
                "--cluster-name",
                "member1",
                "--cluster-kubeconfig",
                cp.members_config.to_str().unwrap(),
                "--cluster-context",
                "member1",
                "--agent-kubeconfig",
                agent_config.to_str().unwrap(),
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        all
    };
    // A wrong CA pin is refused before anything is sent.
    let mut mis_pinned = register.clone();
    let pin = mis_pinned.iter().position(|a| a == "--discovery-token-ca-cert-hash").unwrap() + 1;
    mis_pinned[pin] = format!("sha256:{}", "0".repeat(64));
    let (ok, _, err) = run_karmadactl(&with(&mis_pinned, &[]));
    assert!(!ok && err.contains("refusing to register"), "{err}");
    // An unknown token.
    let mut unknown = register.clone();
    let at = unknown.iter().position(|a| a == "--token").unwrap() + 1;
    unknown[at] = "abcdef.0123456789abcdef".into();
    let (ok, _, err) = run_karmadactl(&with(&unknown, &[]));
    assert!(!ok && err.contains("refused the token") && err.contains("does not exist"), "{err}");
    // An expired token.
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-zzzzzz\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: zzzzzz\n  token-secret: 0123456789abcdef\n  expiration: \"2020-01-01T00:00:00Z\"\n  usage-bootstrap-authentication: \"true\"\n",
        )
        .ok();
    let mut expired = register.clone();
    expired[at] = "zzzzzz.0123456789abcdef".into();
    let (ok, _, err) = run_karmadactl(&with(&expired, &[]));
    assert!(!ok && err.contains("expired"), "{err}");

    // The real thing.
    let (ok, out, err) = run_karmadactl(&with(&register, &[]));
    assert!(ok, "{out} {err}");
    let agent_line = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("karmada agent "))
        .unwrap_or_else(|| panic!("register prints the agent command: {out}"))
        .to_owned();
    let agent_args: Vec<&str> = agent_line.split_whitespace().skip(1).collect();
    let agent = Command::new(KARMADA)
        .args(&agent_args)
        .args(["--cluster-status-update-frequency", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "member1 registered in Pull mode and Ready", || {
        let out = cp.api.kubectl(&["get", "cluster", "member1", "--no-headers"]).stdout;
        (out.contains(" Pull ") && out.contains(" True ")).then_some(())
    });
    // The agent's own identity shows in a 403 for anything beyond its cluster.
    let denied = cp.api.kubectl_as(&agent_config, &["get", "secrets", "-n", "default"]).stderr;
    assert!(denied.contains("system:karmada:agent:member1"), "{denied}");

    // The agent goes away for good; unregister still completes.
    stop(agent);
    let (ok, out, err) = run_karmadactl(&[
        "--kubeconfig".into(),
        cp.api.kubeconfig.to_str().unwrap().into(),
        "unregister".into(),
        "member1".into(),
        "--cleanup-timeout-seconds".into(),
        "2".into(),
    ]);
    assert!(ok, "{out} {err}");
    assert!(cp.api.kubectl(&["get", "cluster", "member1"]).code != 0);
}
