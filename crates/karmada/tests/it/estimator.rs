//! The scheduler's accurate estimator (`--enable-scheduler-estimator`) end to end: placements
//! bounded by the members' ResourceQuotas (what they leave, less what was just decided) and by
//! their nodes (a node selector no node satisfies fits nothing), as upstream's
//! karmada-scheduler-estimator.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

/// A Deployment of `replicas` × 10m CPU in `namespace`, `extra` added to its pod spec, placed
/// Divided by available replicas on `clusters`.
fn deployment(namespace: &str, name: &str, replicas: u32, extra: &str, clusters: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      {extra}
      containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: 10m}}, limits: {{cpu: 10m}}}}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  placement:
    clusterAffinity: {{clusterNames: [{clusters}]}}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {{dynamicWeight: AvailableReplicas}}
"#
    )
}

/// A 30m `requests.cpu` ResourceQuota in `namespace`, propagated to member1.
fn quota(namespace: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {{name: small, namespace: {namespace}}}
spec: {{hard: {{requests.cpu: 30m}}}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: small, namespace: {namespace}}}
spec:
  resourceSelectors: [{{apiVersion: v1, kind: ResourceQuota, name: small}}]
  placement: {{clusterAffinity: {{clusterNames: [member1]}}}}
"#
    )
}

/// The binding's `Scheduled` reason and message, and its clusters.
fn scheduled(cp: &ControlPlane, namespace: &str, name: &str) -> (String, String) {
    let out = cp.api.kubectl(&[
        "get",
        "rb",
        "-n",
        namespace,
        &format!("{name}-deployment"),
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Scheduled\")].reason}|{.status.conditions[?(@.type==\"Scheduled\")].message}|{.spec.clusters}",
    ]);
    let mut parts = out.stdout.splitn(3, '|');
    let reason = parts.next().unwrap_or_default().to_owned();
    let message = parts.next().unwrap_or_default().to_owned();
    (reason, format!("{message} clusters={}", parts.next().unwrap_or_default()))
}

#[test]
fn member_quotas_and_nodes_bound_what_is_placed() {
    let cp = ControlPlane::with_joined_flags(
        2,
        &[],
        &["--enable-scheduler-estimator", "--feature-gates=ResourceQuotaEstimate=true"],
    );
    for namespace in ["fits", "over"] {
        cp.api.kubectl_stdin(&["apply", "-f", "-"], &quota(namespace)).ok();
        eventually(Duration::from_secs(30), "the quota's status in member1", || {
            let out = cp.member(
                "member1",
                &[
                    "get",
                    "quota",
                    "small",
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.status.used.requests\\.cpu}",
                ],
            );
            (out.code == 0 && !out.stdout.is_empty()).then_some(())
        });
    }
    // Three replicas of 10m fit the 30m quota.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("fits", "web", 3, "", "member1")).ok();
    let (reason, detail) = eventually(Duration::from_secs(30), "web scheduled", || {
        let (reason, detail) = scheduled(&cp, "fits", "web");
        (!reason.is_empty()).then_some((reason, detail))
    });
    assert_eq!(reason, "Success", "{detail}");
    eventually(Duration::from_secs(30), "web's pods in member1", || {
        let out = cp.member(
            "member1",
            &["get", "deploy", "web", "-n", "fits", "-o", "jsonpath={.status.readyReplicas}"],
        );
        (out.stdout == "3").then_some(())
    });
    // Five do not: no cluster is given, upstream's Unschedulable, nothing reaches the member.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("over", "big", 5, "", "member1")).ok();
    let (reason, detail) = eventually(Duration::from_secs(30), "big tried", || {
        let (reason, detail) = scheduled(&cp, "over", "big");
        (!reason.is_empty()).then_some((reason, detail))
    });
    assert_eq!(reason, "Unschedulable", "{detail}");
    assert!(detail.ends_with("clusters="), "no clusters: {detail}");
    // The quota `web` used up leaves nothing for one more replica in its namespace.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("fits", "more", 1, "", "member1")).ok();
    let (reason, detail) = eventually(Duration::from_secs(30), "more tried", || {
        let (reason, detail) = scheduled(&cp, "fits", "more");
        (!reason.is_empty()).then_some((reason, detail))
    });
    assert_eq!(reason, "Unschedulable", "{detail}");
    assert_ne!(cp.member("member1", &["get", "deploy", "big", "-n", "over"]).code, 0);
    // A node selector no node of either member satisfies: the summaries have room, the nodes
    // do not (without the estimator the pods would wait Pending in a member).
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &deployment("default", "ssd", 2, "nodeSelector: {disktype: ssd}", "member1, member2"),
        )
        .ok();
    let (reason, detail) = eventually(Duration::from_secs(30), "ssd tried", || {
        let (reason, detail) = scheduled(&cp, "default", "ssd");
        (!reason.is_empty()).then_some((reason, detail))
    });
    assert_eq!(reason, "Unschedulable", "{detail}");
    // Once member1's nodes have the label, the workload goes there and only there.
    cp.member("member1", &["label", "nodes", "--all", "disktype=ssd"]).ok();
    let detail = eventually(Duration::from_secs(30), "ssd placed on member1", || {
        let (reason, detail) = scheduled(&cp, "default", "ssd");
        (reason == "Success").then_some(detail)
    });
    assert!(detail.contains("member1") && !detail.contains("member2"), "{detail}");
}

/// A member whose nodes are drained: the pods of a workload placed there stay Pending, and the
/// descheduler takes those replicas away after the threshold; the scheduler (whose estimator
/// sees no schedulable node there) puts them in the other member.
#[test]
fn the_descheduler_moves_replicas_that_stay_unschedulable() {
    let mut cp = ControlPlane::with_joined_flags(2, &[], &["--enable-scheduler-estimator"]);
    cp.children.push(
        std::process::Command::new(crate::harness::KARMADA)
            .args(["descheduler", "--kubeconfig"])
            .arg(&cp.api.kubeconfig)
            .args(["--descheduling-interval", "1s", "--unschedulable-threshold", "2s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &deployment("default", "web", 4, "", "member1, member2"),
        )
        .ok();
    let replicas = |cluster: &str| {
        cp.member(
            cluster,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}/{.status.readyReplicas}"],
        )
        .stdout
    };
    let split = eventually(Duration::from_secs(30), "web ready in both members", || {
        let (one, two) = (replicas("member1"), replicas("member2"));
        let ready = |s: &str| {
            s.split_once('/').is_some_and(|(want, have)| !want.is_empty() && want == have)
        };
        (ready(&one) && ready(&two)).then_some((one, two))
    });
    // Drain member1: its nodes cordoned, its pods of web gone; their replacements stay Pending.
    let nodes = cp.member("member1", &["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    for node in nodes.ok().split_whitespace() {
        cp.member("member1", &["cordon", node]).ok();
    }
    cp.member("member1", &["delete", "pods", "-l", "app=web", "--wait=false"]).ok();
    let clusters = eventually(Duration::from_secs(40), "web's replicas all in member2", || {
        let out = cp.api.kubectl(&[
            "get",
            "rb",
            "web-deployment",
            "-o",
            "jsonpath={range .spec.clusters[*]}{.name}={.replicas} {end}",
        ]);
        let text = out.stdout.trim().to_owned();
        (text.contains("member2=4") && !text.contains("member1=1") && !text.contains("member1=2"))
            .then_some(text)
    });
    assert!(
        !clusters.contains("member1=3") && !clusters.contains("member1=4"),
        "{clusters} (was {split:?})"
    );
    eventually(Duration::from_secs(30), "4 ready in member2", || {
        (replicas("member2") == "4/4").then_some(())
    });
    let events = cp.api.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=DescheduleBindingSucceed",
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.kind}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.stdout.contains("Deployment: Binding has been descheduled, ")
            && events.stdout.contains("replica(s) in cluster(member1)"),
        "{}",
        events.stdout
    );
}

/// PriorityBasedScheduling: a workload of a higher PriorityClass that does not fit takes the
/// room of a lower one (its placement released, a `Preempted` Event), and is placed once that
/// room is free; the lower one waits.
#[test]
fn a_higher_priority_workload_preempts_a_lower_one() {
    // Room counted by the summary (CPU by CPU), not by resource-model grades.
    let cp = ControlPlane::with_joined_flags(1, &[], &[crate::clusters::SUMMARY_ESTIMATE]);
    let workload = |name: &str, class: &str, replicas: u32| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: "1"}}}}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  schedulePriority: {{priorityClassSource: KubePriorityClass, priorityClassName: {class}}}
  placement:
    clusterAffinity: {{clusterNames: [member1]}}
    replicaScheduling: {{replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}}
"#
        )
    };
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 100\n---\n\
             apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
        )
        .ok();
    let scheduled = |name: &str| {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                &format!("{name}-deployment"),
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Scheduled\")].status} {.spec.clusters}",
            ])
            .stdout
    };
    // member1's three 8-core nodes hold 18 one-core replicas of `low`, not 10 more.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &workload("low", "low", 18)).ok();
    eventually(Duration::from_secs(30), "low ready in member1", || {
        let out = cp
            .member("member1", &["get", "deploy", "low", "-o", "jsonpath={.status.readyReplicas}"]);
        (out.stdout == "18").then_some(())
    });
    // The cluster's summary counts them (the scheduler estimates from it).
    eventually(Duration::from_secs(30), "member1's summary with low's pods", || {
        let out = cp.api.kubectl(&[
            "get",
            "cluster",
            "member1",
            "-o",
            "jsonpath={.status.resourceSummary.allocated.cpu}",
        ]);
        let milli = apimachinery::quantity::parse_milli(out.stdout.trim()).unwrap_or(0);
        (milli >= 18_000).then_some(())
    });
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &workload("high", "high", 10)).ok();
    let high = eventually(Duration::from_secs(60), "high placed", || {
        let s = scheduled("high");
        s.starts_with("True").then_some(s)
    });
    assert!(high.contains(r#""name":"member1","replicas":10"#), "{high}");
    let low = scheduled("low");
    assert!(low.starts_with("False"), "low waits for room: {low}");
    eventually(Duration::from_secs(30), "high ready in member1, low gone", || {
        let high = cp.member(
            "member1",
            &["get", "deploy", "high", "-o", "jsonpath={.status.readyReplicas}"],
        );
        let low = cp.member("member1", &["get", "deploy", "low"]);
        (high.stdout == "10" && low.code != 0).then_some(())
    });
    let events = cp.api.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=Preempted,involvedObject.kind=Deployment",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.stdout.contains(
            "Preempted by default/high-deployment (priority 1000): its placement on member1"
        ),
        "{}",
        events.stdout
    );
}
