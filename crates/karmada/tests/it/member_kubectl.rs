//! `karmada member` and `karmada fault` as a user runs them, with the real kubectl.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{KARMADA, eventually};

/// A `karmada member` process (the members' kubeconfig is `dir/members.config`).
pub(crate) struct Members {
    child: Child,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Members {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Members {
    pub(crate) fn start(args: &[&str], expect: usize) -> Members {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(KARMADA)
            .arg("member")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("members"))
            .arg("--kubeconfig")
            .arg(dir.path().join("members.config"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("simulated member(s) running") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("members started");
        let _ = expect;
        Members { child, dir }
    }

    pub(crate) fn kubectl(&self, context: &str, args: &[&str]) -> crate::harness::Out {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("members.config"))
            .arg("--context")
            .arg(context)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        crate::harness::Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn fault(&self, name: &str, args: &[&str]) {
        let status = Command::new(KARMADA)
            .args(["fault", name, "--data-dir"])
            .arg(self.dir.path().join("members"))
            .args(args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn a_member_is_a_live_cluster_for_kubectl() {
    let m =
        Members::start(&["member1", "--nodes", "2", "--zones", "z1,z2", "--region", "eu-west"], 1);
    let nodes = m.kubectl("member1", &["get", "nodes", "-L", "topology.kubernetes.io/zone"]);
    assert!(
        nodes.ok().contains("member1-control-plane") && nodes.stdout.contains("z2"),
        "{}",
        nodes.stdout
    );
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nginx\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: nginx}\n  template:\n    metadata:\n      labels: {app: nginx}\n    spec:\n      containers:\n      - {name: nginx, image: nginx}\n";
    let file = m.dir.path().join("d.yaml");
    std::fs::write(&file, deploy).unwrap();
    m.kubectl("member1", &["apply", "-f", file.to_str().unwrap()]).ok();
    eventually(Duration::from_secs(10), "nginx 2/2", || {
        let out = m.kubectl("member1", &["get", "deploy", "nginx", "--no-headers"]);
        out.stdout.contains("2/2").then_some(())
    });
    let all = m.kubectl("member1", &["get", "nodes,pods,deploy", "-n", "default"]);
    assert_eq!(all.ok().matches("Running").count(), 2, "{}", all.stdout);
    // Fault injection from the command line.
    m.fault("member1", &["--fail-workload", "default/nginx"]);
    eventually(Duration::from_secs(10), "nginx 0/2", || {
        let out = m.kubectl("member1", &["get", "deploy", "nginx", "--no-headers"]);
        out.stdout.contains("0/2").then_some(())
    });
    m.fault("member1", &["--clear"]);
    eventually(Duration::from_secs(10), "nginx 2/2 again", || {
        let out = m.kubectl("member1", &["get", "deploy", "nginx", "--no-headers"]);
        out.stdout.contains("2/2").then_some(())
    });
    // An image the member's registry lacks: the rollout's new pods back off pulling it while
    // the running ones keep running; once the registry has it, the rollout completes.
    m.fault("member1", &["--missing-image", "example.com/*"]);
    m.kubectl("member1", &["set", "image", "deploy/nginx", "nginx=example.com/nginx:2"]).ok();
    let reasons = || {
        m.kubectl(
            "member1",
            &[
                "get",
                "pods",
                "-o",
                "jsonpath={.items[*].status.containerStatuses[*].state.waiting.reason}",
            ],
        )
        .stdout
    };
    eventually(Duration::from_secs(10), "ImagePullBackOff", || {
        reasons().contains("ImagePullBackOff").then_some(())
    });
    let pending = m.kubectl(
        "member1",
        &["get", "pods", "--field-selector", "status.phase=Pending", "--no-headers"],
    );
    assert!(pending.ok().contains("ImagePullBackOff"), "{}", pending.stdout);
    // maxSurge 25% of 2 rounds up to 1 new pod; maxUnavailable rounds down to 0, so both old
    // pods keep serving while it cannot start.
    let rollout = || {
        m.kubectl(
            "member1",
            &[
                "get",
                "deploy",
                "nginx",
                "-o",
                "jsonpath={.status.updatedReplicas}/{.status.readyReplicas}/{.status.replicas}",
            ],
        )
        .stdout
    };
    eventually(Duration::from_secs(10), "the rollout stalls at the surge", || {
        (rollout() == "1/2/3").then_some(())
    });
    m.fault("member1", &["--clear"]);
    eventually(Duration::from_secs(10), "rolled out once the image is there", || {
        let out = m.kubectl(
            "member1",
            &[
                "get",
                "deploy",
                "nginx",
                "-o",
                "jsonpath={.status.updatedReplicas}/{.status.readyReplicas}",
            ],
        );
        (out.stdout == "2/2" && !reasons().contains("ImagePullBackOff")).then_some(())
    });
}

#[test]
fn many_members_in_one_process() {
    let m = Members::start(&["--count", "5", "--name-prefix", "member"], 5);
    for i in 1..=5 {
        let out = m.kubectl(&format!("member{i}"), &["get", "nodes", "--no-headers"]);
        assert_eq!(out.ok().lines().count(), 3, "member{i}: {}", out.stdout);
    }
    let ids: std::collections::BTreeSet<String> = (1..=5)
        .map(|i| {
            m.kubectl(
                &format!("member{i}"),
                &["get", "ns", "kube-system", "-o", "jsonpath={.metadata.uid}"],
            )
            .ok()
            .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 5, "every member has its own cluster id");
}

#[test]
fn a_member_takes_imperative_generators_and_a_drain() {
    let m = Members::start(&["member1", "--nodes", "3"], 1);
    let files = tempfile::tempdir().unwrap();
    crate::builtins::generators(&|args| m.kubectl("member1", args), files.path(), false);
    // A drain evicts through the Eviction API (protobuf, as every client-go client), one pod
    // at a time as the disruption budget allows, while the Deployment replaces them elsewhere.
    eventually(Duration::from_secs(20), "web 2/2 with its budget allowing one disruption", || {
        let ready = m.kubectl(
            "member1",
            &["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.status.readyReplicas}"],
        );
        let allowed = m.kubectl(
            "member1",
            &["get", "pdb", "web", "-n", "demo", "-o", "jsonpath={.status.disruptionsAllowed}"],
        );
        (ready.stdout == "2" && allowed.stdout == "1").then_some(())
    });
    let node = m
        .kubectl(
            "member1",
            &[
                "get",
                "pods",
                "-n",
                "demo",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].spec.nodeName}",
            ],
        )
        .ok()
        .to_owned();
    let drain = m.kubectl(
        "member1",
        &[
            "drain",
            &node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
            "--pod-selector=app=web",
        ],
    );
    assert!(
        drain.ok().contains(&format!("node/{node} drained")),
        "{} {}",
        drain.stdout,
        drain.stderr
    );
    assert!(drain.stdout.contains("evicted"), "{}", drain.stdout);
    let on_node = m.kubectl(
        "member1",
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-l",
            "app=web",
            "--no-headers",
        ],
    );
    assert!(on_node.ok().trim().is_empty(), "pods left on the drained node: {}", on_node.stdout);
    eventually(Duration::from_secs(20), "web back to 2/2 on the other nodes", || {
        let ready = m.kubectl(
            "member1",
            &["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.status.readyReplicas}"],
        );
        (ready.stdout == "2").then_some(())
    });
    let cordoned =
        m.kubectl("member1", &["get", "node", &node, "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(cordoned.ok(), "true");
    // With the budget at its minimum, an eviction is refused with 429.
    m.kubectl("member1", &["scale", "deploy", "web", "-n", "demo", "--replicas=1"]).ok();
    eventually(Duration::from_secs(20), "the budget allows no disruption", || {
        let allowed = m.kubectl(
            "member1",
            &["get", "pdb", "web", "-n", "demo", "-o", "jsonpath={.status.disruptionsAllowed}"],
        );
        (allowed.stdout == "0").then_some(())
    });
    let other = m
        .kubectl(
            "member1",
            &[
                "get",
                "pods",
                "-n",
                "demo",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].spec.nodeName}",
            ],
        )
        .ok()
        .to_owned();
    let refused = m.kubectl(
        "member1",
        &["drain", &other, "--ignore-daemonsets", "--timeout=3s", "--pod-selector=app=web"],
    );
    assert!(
        refused
            .fails()
            .contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{}",
        refused.stderr
    );
}

#[test]
fn exec_and_attach_reach_a_pods_containers() {
    let m = Members::start(&["member1", "--nodes", "1"], 1);
    let manifest = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {app.conf: "mode=fast\n", greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  volumes: [{name: config, configMap: {name: app}}]
  containers:
  - name: app
    image: busybox
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: app, key: greeting}}}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    volumeMounts: [{name: config, mountPath: /etc/app}]
"#;
    let file = m.dir.path().join("pod.yaml");
    std::fs::write(&file, manifest).unwrap();
    m.kubectl("member1", &["apply", "-f", file.to_str().unwrap()]).ok();
    eventually(Duration::from_secs(10), "app running", || {
        let out = m.kubectl("member1", &["get", "pod", "app", "-o", "jsonpath={.status.phase}"]);
        (out.stdout == "Running").then_some(())
    });
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", "app", "--"];
        all.extend_from_slice(args);
        m.kubectl("member1", &all)
    };
    assert_eq!(exec(&["cat", "/etc/app/app.conf"]).ok(), "mode=fast\n");
    assert_eq!(exec(&["ls", "/etc/app"]).ok(), "app.conf\ngreeting\n");
    assert_eq!(exec(&["sh", "-c", "echo $GREETING from $POD"]).ok(), "hello from app\n");
    let missing = exec(&["cat", "/etc/app/nope"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("can't open '/etc/app/nope'"), "{}", missing.stderr);
    let unknown = exec(&["nginx"]);
    assert_eq!(unknown.code, 127, "{}", unknown.stderr);
    assert!(unknown.stderr.contains(r#"exec: "nginx": executable file not found in $PATH"#));
    // A pod that is not running cannot be entered.
    let gone = m.kubectl("member1", &["exec", "nope", "--", "true"]);
    assert!(gone.fails().contains(r#"pods "nope" not found"#), "{}", gone.stderr);
    // attach: the container's output as it is written (a heartbeat every 5 s), until the
    // client leaves.
    let mut attach = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(m.dir.path().join("members.config"))
        .args(["--context", "member1", "attach", "app"])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    attach.kill().unwrap();
    let output = attach.wait_with_output().unwrap();
    let attached = String::from_utf8_lossy(&output.stdout);
    assert!(attached.contains("heartbeat"), "{attached:?}");
}
