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

/// The chart in BENCHMARKS.md is drawn from the committed results; drawing it must keep working.
#[test]
fn bench_chart_draws_the_committed_results() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks/results");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "{inputs:?}");
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("chart.png");
    let status = Command::new(KARMADA)
        .args(["bench", "chart", "--out"])
        .arg(&png)
        .args(&inputs)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
}
