//! A control plane for end-to-end tests: the real apiserver, controller-manager and (optionally)
//! scheduler binaries, simulated members in one `karmada member` process, and helpers to join
//! them and to run kubectl against the control plane or a member.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{ApiServer, KARMADA, Out, eventually};

/// Runs karmadactl against the control plane of `kubeconfig`.
pub fn karmadactl(kubeconfig: &std::path::Path, args: &[&str]) -> Out {
    let output = Command::new(karmadactl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn karmadactl_path() -> PathBuf {
    let path = PathBuf::from(KARMADA).with_file_name("karmadactl");
    assert!(
        path.exists(),
        "karmadactl is not built at {} (run the tests with --workspace)",
        path.display()
    );
    path
}

pub struct ControlPlane {
    pub api: ApiServer,
    pub children: Vec<Child>,
    pub members_dir: PathBuf,
    pub members_config: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ControlPlane {
    pub fn start(members: usize) -> ControlPlane {
        ControlPlane::start_on(ApiServer::start("memory"), members, Some(&[]))
    }

    /// `members` simulated clusters beside `api`, and (unless `controller_manager` is None) a
    /// controller-manager with fast cluster health settings plus the given flags.
    pub fn start_on(
        api: ApiServer,
        members: usize,
        controller_manager: Option<&[&str]>,
    ) -> ControlPlane {
        let members_dir = api.dir.path().join("members");
        let members_config = api.dir.path().join("members.config");
        let mut children = Vec::new();
        if let Some(extra) = controller_manager {
            children.push(
                Command::new(KARMADA)
                    .args([
                        "controller-manager",
                        // As upstream's install manifests (Failover, PolicyPreemption, ...).
                        "--feature-gates=AllAlpha=true,AllBeta=true",
                        "--cluster-status-update-frequency",
                        "1s",
                        "--cluster-monitor-grace-period",
                        "3s",
                        "--cluster-monitor-period",
                        "1s",
                        "--kubeconfig",
                    ])
                    .arg(&api.kubeconfig)
                    .args(extra)
                    .stdout(Stdio::null())
                    .stderr(crate::harness::log_sink("controller-manager"))
                    .spawn()
                    .unwrap(),
            );
        }
        let mut member = Command::new(KARMADA);
        member
            .args(["member", "--count", &members.to_string(), "--data-dir"])
            .arg(&members_dir)
            .arg("--kubeconfig")
            .arg(&members_config);
        children.push(
            member
                .stdout(Stdio::null())
                .stderr(crate::harness::log_sink("member"))
                .spawn()
                .unwrap(),
        );
        eventually(Duration::from_secs(30), "members kubeconfig", || {
            let text = std::fs::read_to_string(&members_config).ok()?;
            (text.matches("name: member").count() >= members * 3).then_some(())
        });
        ControlPlane { api, children, members_dir, members_config }
    }

    pub fn karmadactl(&self, args: &[&str]) -> Out {
        karmadactl(&self.api.kubeconfig, args)
    }

    pub fn join(&self, name: &str) -> Out {
        self.join_in(name, "eu", &[])
    }

    /// Joins a member located in `region` (and `zones`).
    pub fn join_in(&self, name: &str, region: &str, zones: &[&str]) -> Out {
        let zones = zones.join(",");
        let mut args = vec![
            "join",
            name,
            "--cluster-kubeconfig",
            self.members_config.to_str().unwrap(),
            "--cluster-context",
            name,
            "--cluster-region",
            region,
        ];
        if !zones.is_empty() {
            args.extend(["--cluster-zones", &zones]);
        }
        self.karmadactl(&args)
    }

    pub fn fault(&self, name: &str, args: &[&str]) {
        let status = Command::new(KARMADA)
            .args(["fault", name, "--data-dir"])
            .arg(&self.members_dir)
            .args(args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn jsonpath(&self, cluster: &str, path: &str) -> String {
        self.api.kubectl(&["get", "cluster", cluster, "-o", &format!("jsonpath={path}")]).stdout
    }
}

impl ControlPlane {
    /// A control plane with the scheduler, and `members` clusters joined and Ready.
    pub fn with_joined(members: usize) -> ControlPlane {
        ControlPlane::with_joined_and(members, &[])
    }

    /// Like [`ControlPlane::with_joined`], with more controller-manager flags.
    pub fn with_joined_and(members: usize, controller_manager: &[&str]) -> ControlPlane {
        ControlPlane::with_joined_flags(members, controller_manager, &[])
    }

    /// Like [`ControlPlane::with_joined_and`], with scheduler flags too.
    pub fn with_joined_flags(
        members: usize,
        controller_manager: &[&str],
        scheduler: &[&str],
    ) -> ControlPlane {
        let mut cp =
            ControlPlane::start_on(ApiServer::start("memory"), members, Some(controller_manager));
        cp.start_scheduler_with(scheduler);
        for i in 1..=members {
            cp.join(&format!("member{i}")).ok();
        }
        eventually(Duration::from_secs(20), "clusters Ready", || {
            let out = cp.api.kubectl(&["get", "clusters", "--no-headers"]);
            (out.stdout.lines().filter(|l| l.contains(" True ")).count() == members).then_some(())
        });
        cp
    }

    pub fn start_scheduler(&mut self) {
        self.start_scheduler_with(&[]);
    }

    pub fn start_scheduler_with(&mut self, flags: &[&str]) {
        self.children.push(
            Command::new(KARMADA)
                .args(["scheduler", "--kubeconfig"])
                .arg(&self.api.kubeconfig)
                .args(flags)
                .stdout(Stdio::null())
                .stderr(crate::harness::log_sink("scheduler"))
                .spawn()
                .unwrap(),
        );
    }

    /// Runs the real kubectl against a member cluster.
    pub fn member(&self, cluster: &str, args: &[&str]) -> Out {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.members_config)
            .args(["--context", cluster])
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Applies a manifest to a member cluster.
    pub fn member_apply(&self, cluster: &str, manifest: &str) {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.members_config)
            .args(["--context", cluster, "apply", "-f", "-"])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A directory of upstream Karmada samples (`../shared/upstream/<dir>`); fails loudly when the
/// samples are missing.
pub fn upstream(dir: &str) -> PathBuf {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream").join(dir);
    assert!(path.is_dir(), "the upstream samples are missing at {}", path.display());
    path
}
