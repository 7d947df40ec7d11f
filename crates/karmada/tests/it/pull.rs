//! Pull mode end to end: a simulated member served by `karmada agent` (the control plane
//! never reaches it), beside a push-mode member.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{KARMADA, eventually};
use crate::plane::{ControlPlane, upstream};

/// A kubeconfig for the agent of `cluster`: a client certificate from the control plane's CA
/// naming the agent identity (what `karmadactl register` obtains through a CSR).
fn agent_kubeconfig(cp: &ControlPlane, cluster: &str) -> std::path::PathBuf {
    let pki = cp.api.dir.path().join("pki");
    let ca = apiserver::pki::Authority::load_or_create(&pki, "unused").unwrap();
    let identity =
        ca.client(&format!("system:karmada:agent:{cluster}"), &["system:karmada:agents"]).unwrap();
    let server = cp.api.url.clone();
    let path = cp.api.dir.path().join(format!("agent-{cluster}.config"));
    let entry = apiserver::pki::KubeconfigEntry {
        name: "karmada".into(),
        server,
        ca_pem: ca.cert_pem().to_owned(),
        client: Some(identity),
        token: None,
    };
    apiserver::pki::write_kubeconfig(&path, &[entry], Some("karmada")).unwrap();
    path
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
    let as_agent = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(agent_kubeconfig(&cp, "member2"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
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
        .arg(agent_kubeconfig(&cp, "member2"))
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
