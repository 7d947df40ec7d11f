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
