//! The scenarios in `samples/scenarios/` (active-active, remote DR, geo-redundant), applied as
//! a user would to clusters laid out like `karmada up`'s (memberN in region-N), with the
//! failover policies `karmada up` installs: each places as its README says, and when the
//! primary region fails, remote DR moves to the backup and geo-redundant keeps two regions.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{ApiServer, eventually};
use crate::plane::ControlPlane;

fn scenario(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/scenarios").join(name);
    assert!(dir.is_dir(), "the scenario samples are missing: {}", dir.display());
    dir.to_str().unwrap().to_owned()
}

/// `karmada up`'s default ClusterTaintPolicies: a cluster not Ready gets a NoExecute taint.
const TAINT_POLICIES: &str = r#"
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterTaintPolicy
metadata: {name: karmada-default-not-ready}
spec:
  addOnConditions: [{conditionType: Ready, operator: In, statusValues: ["False"]}]
  removeOnConditions: [{conditionType: Ready, operator: In, statusValues: ["True"]}]
  taints: [{key: cluster.karmada.io/not-ready, effect: NoExecute}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterTaintPolicy
metadata: {name: karmada-default-unreachable}
spec:
  addOnConditions: [{conditionType: Ready, operator: In, statusValues: ["Unknown"]}]
  removeOnConditions: [{conditionType: Ready, operator: In, statusValues: ["True"]}]
  taints: [{key: cluster.karmada.io/unreachable, effect: NoExecute}]
"#;

/// A binding's placement: (cluster, replicas), sorted.
fn placement(cp: &ControlPlane, binding: &str) -> Vec<(String, i64)> {
    let out = cp.api.kubectl(&["get", "rb", binding, "-o", "jsonpath={.spec.clusters}"]);
    let clusters: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let mut placed: Vec<(String, i64)> = clusters
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (c["name"].as_str().unwrap_or_default().to_owned(), c["replicas"].as_i64().unwrap_or(0))
        })
        .collect();
    placed.sort();
    placed
}

fn region(cluster: &str) -> String {
    cluster.replace("member", "region-")
}

#[test]
fn scenario_samples_place_as_described_and_fail_over() {
    let mut cp = ControlPlane::start_on(ApiServer::start("memory"), 3, Some(&[]));
    cp.start_scheduler();
    for i in 1..=3 {
        let (zone_a, zone_b) = (format!("zone-{i}a"), format!("zone-{i}b"));
        cp.join_in(&format!("member{i}"), &format!("region-{i}"), &[&zone_a, &zone_b]).ok();
    }
    eventually(Duration::from_secs(20), "clusters Ready", || {
        let out = cp.api.kubectl(&["get", "clusters", "--no-headers"]);
        (out.stdout.lines().filter(|l| l.contains(" True ")).count() == 3).then_some(())
    });
    cp.api.kubectl_stdin(&["apply", "-f", "-"], TAINT_POLICIES).ok();
    for name in ["active-active", "remote-dr", "geo-redundant"] {
        cp.api.kubectl(&["apply", "-f", &scenario(name)]).ok();
    }
    let ready = |cluster: &str, deploy: &str| {
        cp.member(cluster, &["get", "deploy", deploy, "-o", "jsonpath={.status.readyReplicas}"])
            .stdout
    };

    // Active-active: a full copy in every cluster of region-1 and region-2, none in region-3.
    eventually(Duration::from_secs(30), "web active in region-1 and region-2", || {
        let placed = placement(&cp, "web-deployment");
        (placed == [("member1".to_owned(), 3), ("member2".to_owned(), 3)]
            && ready("member1", "web") == "3"
            && ready("member2", "web") == "3")
            .then_some(())
    });
    assert_ne!(cp.member("member3", &["get", "deploy", "web"]).code, 0, "web is not in region-3");

    // Remote DR: the primary region only while it is healthy.
    eventually(Duration::from_secs(30), "ledger in the primary region", || {
        (placement(&cp, "ledger-deployment") == [("member1".to_owned(), 2)]
            && ready("member1", "ledger") == "2")
            .then_some(())
    });
    let term = |binding: &str| {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                binding,
                "-o",
                "jsonpath={.status.schedulerObservingAffinityName}",
            ])
            .stdout
    };
    assert_eq!(term("ledger-deployment"), "primary");

    // Geo-redundant: 6 replicas divided over at least two regions.
    let geo = eventually(Duration::from_secs(30), "catalog over two regions", || {
        let placed = placement(&cp, "catalog-deployment");
        let total: i64 = placed.iter().map(|(_, r)| r).sum();
        (total == 6 && placed.len() >= 2 && placed.iter().all(|(_, r)| *r > 0)).then_some(placed)
    });
    eprintln!("geo-redundant placement: {geo:?}");

    // region-1 is lost.
    cp.fault("member1", &["--unreachable", "true"]);
    // Remote DR: after the 30 s toleration the ledger moves to the backup region and runs there.
    eventually(Duration::from_secs(90), "ledger failed over to the backup region", || {
        (placement(&cp, "ledger-deployment") == [("member2".to_owned(), 2)]
            && ready("member2", "ledger") == "2")
            .then_some(())
    });
    assert_eq!(term("ledger-deployment"), "backup");
    // Geo-redundant: all 6 replicas on the two remaining regions.
    let after = eventually(Duration::from_secs(60), "catalog left region-1", || {
        let placed = placement(&cp, "catalog-deployment");
        let total: i64 = placed.iter().map(|(_, r)| r).sum();
        (total == 6 && placed.iter().all(|(c, _)| c != "member1")).then_some(placed)
    });
    let regions: std::collections::BTreeSet<String> =
        after.iter().map(|(c, _)| region(c)).collect();
    assert_eq!(regions.len(), 2, "still two regions after losing one: {after:?}");
    // Active-active tolerates an outage for the default 300 s: region-2 serves meanwhile and
    // region-1's copy is not abandoned for a short outage.
    assert_eq!(
        placement(&cp, "web-deployment"),
        [("member1".to_owned(), 3), ("member2".to_owned(), 3)]
    );
    assert_eq!(ready("member2", "web"), "3");
}
