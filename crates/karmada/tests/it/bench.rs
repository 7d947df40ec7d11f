//! Smoke runs of the benchmarks, so they never rot: each runs at a tiny size and must print
//! its report with the rows that matter. CI checks that they run, not their speed.

use std::process::Command;

use crate::harness::KARMADA;

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(KARMADA).arg("bench").args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The report is the pretty-printed JSON array at the end of stdout.
    let start = if stdout.starts_with('[') { Some(0) } else { stdout.rfind("\n[").map(|i| i + 1) };
    let json = start.map(|i| &stdout[i..]).unwrap_or_else(|| panic!("no JSON in {stdout}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn metrics(report: &serde_json::Value) -> Vec<String> {
    let rows =
        report.get("rows").or(Some(report)).and_then(|r| r.as_array()).cloned().unwrap_or_default();
    rows.iter().filter_map(|r| r["metric"].as_str().map(str::to_owned)).collect()
}

#[test]
fn bench_propagate_smoke_on_redb_and_etcd() {
    for store in ["redb", "etcd"] {
        let report = bench(&[
            "propagate",
            "--clusters",
            "2",
            "--workloads",
            "5",
            "--clusters-per-workload",
            "2",
            "--store",
            store,
            "--rate",
            "20",
            "--timeout",
            "120",
        ]);
        let names = metrics(&report);
        for wanted in [
            "time until every member object exists",
            "Works applied",
            "control-plane peak RSS (3 processes)",
        ] {
            assert!(names.iter().any(|m| m == wanted), "{store}: no {wanted:?} in {names:?}");
        }
    }
}

/// The same load against a control plane the bench did not start (here ours, started as a
/// user would): it finds the Ready clusters through the members' kubeconfig, measures the
/// processes it is given, reports writes per workload, and deletes what it created.
#[test]
fn bench_propagate_runs_against_a_running_control_plane() {
    let cp = crate::plane::ControlPlane::with_joined(3);
    let controller_manager = cp.children[0].id().to_string();
    let scheduler = cp.children.last().unwrap().id().to_string();
    let control_plane = cp.api.kubeconfig.to_str().unwrap();
    let members = cp.members_config.to_str().unwrap();
    let report = bench(&[
        "propagate",
        "--control-plane",
        control_plane,
        "--members",
        members,
        "--pid",
        &format!("controller-manager={controller_manager}"),
        "--pid",
        &format!("scheduler={scheduler}"),
        "--workloads",
        "6",
        "--clusters-per-workload",
        "2",
        "--label",
        "karmada-rs",
        "--timeout",
        "120",
    ]);
    let rows = report.as_array().expect("rows");
    let value = |metric: &str| {
        rows.iter()
            .find(|r| r["metric"] == metric)
            .and_then(|r| r["value"].as_f64())
            .unwrap_or_else(|| panic!("no {metric:?} in {report}"))
    };
    assert!(
        rows.iter().all(|r| r["subject"] == "controller restart"
            || r["subject"] == "propagate 3×6 (Divided, 2 replicas, 2 clusters each, karmada-rs)"),
        "{report}"
    );
    // 6 workloads × 2 clusters × (the Deployment and the ConfigMap it mounts).
    assert_eq!(value("Works applied"), 24.0, "{report}");
    assert!(value("control-plane peak RSS (2 processes)") > 1.0, "{report}");
    assert!(value("  of which controller-manager") > 0.0, "{report}");
    // Each workload takes at least its two creates, a binding and two Works.
    assert!(value("control-plane writes per workload") >= 5.0, "{report}");
    assert!(!rows.iter().any(|r| r["subject"] == "controller restart"), "nothing restarted");
    // Nothing is left behind, on the control plane or in the members.
    crate::harness::eventually(std::time::Duration::from_secs(60), "bench namespace gone", || {
        cp.api.kubectl(&["get", "ns", "bench"]).code.ne(&0).then_some(())
    });
    for member in ["member1", "member2", "member3"] {
        crate::harness::eventually(
            std::time::Duration::from_secs(60),
            &format!("bench namespace gone from {member}"),
            || cp.member(member, &["get", "ns", "bench"]).code.ne(&0).then_some(()),
        );
    }
    // More clusters than there are is refused with the count; a run does not mix with what an
    // earlier one left behind, rather than counting it.
    let refused = |extra: &[&str]| {
        let out = Command::new(KARMADA)
            .args(["bench", "propagate", "--control-plane", control_plane, "--members", members])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(&["--clusters", "4"]);
    assert!(stderr.contains("--clusters 4: 3 Ready clusters have a context"), "{stderr}");
    cp.api.kubectl(&["create", "namespace", "bench"]).ok();
    let stderr = refused(&[]);
    assert!(stderr.contains("the namespace \"bench\" exists on the control plane"), "{stderr}");
}

#[test]
fn bench_apiserver_smoke_compares_redb_and_etcd() {
    let report = bench(&[
        "apiserver",
        "--seconds",
        "0.3",
        "--clients",
        "4",
        "--list-objects",
        "50",
        "--watchers",
        "5",
        "--events",
        "3",
        "--skip-store",
        "--store",
        "redb",
        "--store",
        "etcd",
    ]);
    let text = report.to_string();
    assert!(text.contains("apiserver(etcd)/apiserver(redb)"), "{text}");
    assert!(text.contains("watch events delivered"), "{text}");
}

#[test]
fn bench_apiserver_smoke_compares_json_and_protobuf_clients() {
    let report = bench(&[
        "apiserver",
        "--seconds",
        "0.3",
        "--clients",
        "4",
        "--list-objects",
        "50",
        "--watchers",
        "5",
        "--events",
        "3",
        "--skip-store",
        "--store",
        "memory",
        "--wire",
        "json",
        "--wire",
        "protobuf",
    ]);
    let text = report.to_string();
    assert!(text.contains("apiserver(memory, protobuf)/apiserver(memory, json)"), "{text}");
    // Every watcher saw every event, in both formats.
    let rows = report.as_array().expect("rows");
    for wire in ["json", "protobuf"] {
        let delivered = rows
            .iter()
            .find(|r| {
                r["subject"] == format!("apiserver(memory, {wire})")
                    && r["metric"].as_str().is_some_and(|m| m.starts_with("watch events delivered"))
            })
            .unwrap_or_else(|| panic!("no watch row for {wire}: {text}"));
        assert_eq!(delivered["value"], 15.0, "{wire}: {text}");
    }
}

#[test]
fn bench_scheduler_smoke_reports_burst_and_steady_latency() {
    let report = bench(&[
        "scheduler",
        "--bindings",
        "200",
        "--clusters",
        "100",
        "--e2e-bindings",
        "50",
        "--steady-bindings",
        "20",
        "--steady-rate",
        "50",
    ]);
    let rows = report.as_array().unwrap();
    let value = |subject: &str, metric: &str| {
        rows.iter()
            .find(|r| {
                r["subject"].as_str().is_some_and(|s| s.starts_with(subject))
                    && r["metric"] == metric
            })
            .and_then(|r| r["value"].as_f64())
            .unwrap_or_else(|| panic!("no {subject:?} {metric:?} in {report}"))
    };
    assert!(value("scheduler core, 100 clusters", "decisions/s") > 0.0);
    assert_eq!(value("scheduler e2e, 100 clusters (", "bindings scheduled"), 50.0);
    assert_eq!(value("scheduler e2e, 100 clusters, steady 50", "bindings scheduled"), 20.0);
    assert!(
        value(
            "scheduler e2e, 100 clusters, steady 50",
            "scheduling latency (created → clusters set) p99"
        ) > 0.0
    );
}

/// The charts in BENCHMARKS.md are drawn from the committed results; drawing them must keep
/// working.
#[test]
fn bench_chart_draws_the_committed_results() {
    for (results, flags, at_least) in
        [("results", &[][..], 3), ("side-by-side", &["--side-by-side"][..], 2)]
    {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks").join(results);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        inputs.sort();
        assert!(inputs.len() >= at_least, "{inputs:?}");
        let out = tempfile::tempdir().unwrap();
        let png = out.path().join("chart.png");
        let status = Command::new(KARMADA)
            .args(["bench", "chart"])
            .args(flags)
            .arg("--out")
            .arg(&png)
            .args(&inputs)
            .status()
            .unwrap();
        assert!(status.success(), "{results}");
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}
