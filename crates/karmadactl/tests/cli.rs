//! The karmadactl command line: help, and clear errors for bad input (no control plane needed).

use std::process::Command;

const KARMADACTL: &str = env!("CARGO_BIN_EXE_karmadactl");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KARMADACTL)
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .expect("run karmadactl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_verbs() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for verb in ["join", "unjoin", "cordon", "uncordon", "taint", "get"] {
        assert!(stdout.contains(verb), "{verb} missing from {stdout}");
    }
    let (_, unjoin_help, _) = run(&["unjoin", "--help"]);
    assert!(unjoin_help.contains("--keep-resources"), "{unjoin_help}");
}

#[test]
fn a_missing_kubeconfig_is_a_clear_error() {
    let (code, _, stderr) = run(&["get", "clusters"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: reading kubeconfig /nonexistent/kubeconfig"), "{stderr}");
    let (code, _, stderr) = run(&["join", "m1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--cluster-kubeconfig"), "{stderr}");
}
