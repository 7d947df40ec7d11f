//! Starts the real `karmada` binary and drives it with the real `kubectl`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KARMADA: &str = env!("CARGO_BIN_EXE_karmada");

/// The output of one command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed: stdout={:?} stderr={:?}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_ne!(self.code, 0, "command should have failed: stdout={:?}", self.stdout);
        &self.stderr
    }
}

/// A `karmada apiserver` process on a free loopback port.
pub struct ApiServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    store: String,
    extra: Vec<String>,
}

fn spawn(dir: &Path, store: &str, bind: &str, extra: &[String]) -> (Child, String) {
    let mut child = Command::new(KARMADA)
        // As upstream's install runs its webhook (FederatedQuotaEnforcement on).
        .args(["apiserver", "--feature-gates", "AllAlpha=true,AllBeta=true"])
        .args(["--bind", bind, "--store", store, "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start karmada apiserver");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("karmada-apiserver listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url =
        rx.recv_timeout(Duration::from_secs(30)).expect("apiserver did not start within 30 s");
    (child, url)
}

impl ApiServer {
    pub fn start(store: &str) -> ApiServer {
        ApiServer::start_with(store, &[])
    }

    /// Starts with more `karmada apiserver` flags (e.g. `--etcd-cafile`).
    pub fn start_with(store: &str, extra: &[String]) -> ApiServer {
        ApiServer::start_in(tempfile::tempdir().expect("temp dir"), store, extra)
    }

    /// Starts on an existing data dir (what an earlier server or release left there).
    pub fn start_in(dir: tempfile::TempDir, store: &str, extra: &[String]) -> ApiServer {
        let (child, url) = spawn(dir.path(), store, "127.0.0.1:0", extra);
        let kubeconfig = dir.path().join("karmada-apiserver.config");
        ApiServer {
            child: Some(child),
            dir,
            kubeconfig,
            url,
            store: store.into(),
            extra: extra.to_vec(),
        }
    }

    /// Stops the process (SIGKILL), keeping its data dir.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process (SIGKILL) and starts it again on the same data dir and port.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let bind = self.url.trim_start_matches("https://").to_owned();
        let (child, url) = spawn(self.dir.path(), &self.store, &bind, &self.extra);
        self.child = Some(child);
        self.url = url;
    }

    fn kubectl_command(&self, binary: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd.arg("--cache-dir").arg(self.dir.path().join("kube-cache"));
        cmd.args(args);
        cmd.env_remove("KUBECONFIG");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_with("kubectl", args, None)
    }

    /// Runs a specific kubectl (e.g. `kubectl.1.27`, found beside the dispatcher).
    pub fn kubectl_version(&self, version: &str, args: &[&str]) -> Out {
        let dispatcher = std::fs::canonicalize(which("kubectl")).expect("kubectl on PATH");
        let binary = dispatcher.with_file_name(format!("kubectl.{version}"));
        self.kubectl_with(binary.to_str().expect("utf-8 path"), args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Out {
        self.kubectl_with("kubectl", args, Some(input))
    }

    fn kubectl_with(&self, binary: &str, args: &[&str], input: Option<&str>) -> Out {
        let mut cmd = self.kubectl_command(binary, args);
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = input {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("kubectl output");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts kubectl in the background (for `get -w`, `delete` that waits...).
    pub fn kubectl_spawn(&self, args: &[&str]) -> Child {
        self.kubectl_command("kubectl", args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl")
    }

    pub async fn client(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube config");
        kube::Client::try_from(config).expect("kube client")
    }

    /// A kubeconfig for `user` in `groups`: a client certificate from the server's CA.
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        let pki = self.dir.path().join("pki");
        let ca = apiserver::pki::Authority::load_or_create(&pki, "unused").expect("the CA");
        let identity = ca.client(user, groups).expect("a client certificate");
        let path = self.dir.path().join(format!("user-{}.config", user.replace(':', "_")));
        let entry = apiserver::pki::KubeconfigEntry {
            name: "karmada".into(),
            server: self.url.clone(),
            ca_pem: ca.cert_pem().to_owned(),
            client: Some(identity),
            token: None,
        };
        apiserver::pki::write_kubeconfig(&path, &[entry], Some("karmada")).expect("kubeconfig");
        path
    }

    /// Runs kubectl with another kubeconfig (another identity).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Out {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache-users"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Writes a manifest into the server's temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write manifest");
        path.to_str().expect("utf-8").to_owned()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Polls `check` until it returns Some, for at most `timeout`.
#[track_caller]
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Like [`eventually`], saying what was last seen when time runs out (`check` gives it as its
/// error).
pub fn eventually_seen<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {timeout:?} waiting for {what}: {seen}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
              replicas: {type: integer}
          status:
            type: object
            properties:
              phase: {type: string}
              replicas: {type: integer}
              conditions:
                type: array
                items: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

pub fn widget(name: &str, size: i64, extra_meta: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  size: {size}\n  color: red\n"
    )
}

impl ApiServer {
    /// Installs the Widget CRD and waits until it is established.
    pub fn install_widgets(&self) {
        let crd = self.file("crd.yaml", WIDGET_CRD);
        self.kubectl(&["apply", "-f", &crd]).ok();
        self.kubectl(&[
            "wait",
            "--for",
            "condition=established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ])
        .ok();
    }
}

/// `karmada up --port 0 --data-dir DATA --kubeconfig KUBECONFIG EXTRA...`, with its stdout
/// lines delivered on a channel (the first is `Local Karmada is running.` once it is).
pub fn karmada_up(
    extra: &[&str],
    data: &Path,
    kubeconfig: &Path,
) -> (Child, mpsc::Receiver<String>) {
    let mut up = Command::new(KARMADA)
        .arg("up")
        .args(extra)
        .args(["--port", "0", "--dashboard-port", "0", "--data-dir"])
        .arg(data)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start karmada up");
    let stdout = up.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (up, rx)
}

/// kubectl against one context of a kubeconfig: (exit code, stdout).
pub fn kubectl_context(kubeconfig: &Path, context: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--context", context])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where a component started by a test writes its log: with `KARMADA_IT_LOGS=<dir>`, a file
/// `<dir>/<component>-<n>.log` (for looking into a failure), nowhere otherwise.
pub fn log_sink(component: &str) -> Stdio {
    log_file(component).map_or_else(Stdio::null, Stdio::from)
}

/// A new file for `component`'s log under `KARMADA_IT_LOGS`, when that is set.
pub fn log_file(component: &str) -> Option<std::fs::File> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::var_os("KARMADA_IT_LOGS")?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = Path::new(&dir).join(format!("{component}-{}-{n}.log", std::process::id()));
    std::fs::File::create(path).ok()
}
