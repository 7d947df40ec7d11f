//! Keys and data are private: every file that holds a secret is its owner's only, a key that
//! others can read is refused, and Secrets are sealed at rest by default.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{ApiServer, KARMADA};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[track_caller]
fn private(paths: &[&Path]) {
    for p in paths {
        let m = mode(p);
        assert_eq!(m & 0o077, 0, "{} is mode {m:04o}", p.display());
    }
}

/// Before: `DATA_DIR/pki/sa.key` and `store.redb` were 0644 (any local user could forge a
/// ServiceAccount token — done: it read a kube-system Secret), and a plain `karmada apiserver`
/// kept Secrets in plaintext (twice: the value and the last-applied annotation).
#[test]
fn the_apiserver_keeps_keys_and_data_private_and_seals_secrets() {
    let mut s = ApiServer::start("redb");
    let dir = s.dir.path().to_owned();
    let pki = dir.join("pki");
    private(&[
        &dir,
        &pki,
        &pki.join("sa.key"),
        &pki.join("ca.key"),
        &pki.join("admin.key"),
        &pki.join("encryption.key"),
        &dir.join("store.redb"),
        &s.kubeconfig,
    ]);
    // Sealed by default, the last-applied annotation included.
    let marker = "correct-horse-battery-staple";
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: default}}\nstringData: {{password: {marker}}}\n"
    );
    s.kubectl_stdin(&["apply", "-f", "-"], &secret).ok();
    let annotation = s.kubectl(&["get", "secret", "db", "-o", "jsonpath={.metadata.annotations}"]);
    assert!(
        annotation.ok().contains(marker),
        "kubectl apply records the value: {}",
        annotation.stdout
    );
    use base64::Engine as _;
    let data = std::fs::read(dir.join("store.redb")).unwrap();
    for needle in [marker.to_owned(), base64::engine::general_purpose::STANDARD.encode(marker)] {
        assert!(
            !data.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the store in the clear"
        );
    }
    // A signing key others can read is refused, with what to do about it.
    std::fs::set_permissions(pki.join("sa.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    s.stop();
    let out = Command::new(KARMADA)
        .args(["apiserver", "--bind", "127.0.0.1:0", "--store", "memory", "--data-dir"])
        .arg(&dir)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a readable key: {stderr}");
    assert!(
        stderr.contains("sa.key is accessible to other users (mode 0644)")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    // --encryption=none opts out.
    let plain = ApiServer::start_with("memory", &["--encryption=none".into()]);
    plain.kubectl(&["get", "ns"]).ok();
}

#[test]
fn members_keep_their_keys_private() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(KARMADA)
        .args(["member", "member1", "--data-dir"])
        .arg(dir.path().join("members"))
        .arg("--kubeconfig")
        .arg(dir.path().join("members.config"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let kubeconfig = dir.path().join("members.config");
    crate::harness::eventually(
        std::time::Duration::from_secs(30),
        "the member's kubeconfig",
        || kubeconfig.exists().then_some(()),
    );
    let pki = dir.path().join("members/member1/pki");
    crate::harness::eventually(std::time::Duration::from_secs(10), "the member's keys", || {
        pki.join("sa.key").exists().then_some(())
    });
    private(&[&pki, &pki.join("ca.key"), &pki.join("sa.key"), &pki.join("admin.key"), &kubeconfig]);
    let _ = child.kill();
    let _ = child.wait();
}
