//! FederatedResourceQuota end to end: static assignments become ResourceQuotas in the members
//! (which enforce them), their usage comes back in the quota's status, and `overall` limits
//! binding writes on the control plane (scale-ups and new workloads refused with upstream's
//! message, the refused decision never reaching a member).

use std::time::Duration;

use crate::harness::{ApiServer, eventually};
use crate::plane::ControlPlane;

const ASSIGNED: &str = r#"
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: team, namespace: quota}
spec:
  overall: {cpu: "8", memory: 16Gi}
  staticAssignments:
  - clusterName: member1
    hard: {cpu: "1", memory: 2Gi}
  - clusterName: member2
    hard: {cpu: "1", memory: 2Gi}
"#;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: quota}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m, memory: 64Mi}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: quota}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#;

fn events(cp: &ControlPlane, namespace: &str) -> String {
    cp.api
        .kubectl(&[
            "get",
            "events",
            "-n",
            namespace,
            "-o",
            r#"go-template={{range .items}}{{.involvedObject.kind}}/{{.involvedObject.name}} {{.reason}}: {{.message}}{{"\n"}}{{end}}"#,
        ])
        .stdout
}

/// Static assignments land as member ResourceQuotas that the members enforce; their hard and
/// used limits come back per cluster, and the overall usage is what the bindings schedule;
/// assignments removed and the quota deleted take the member quotas away.
#[test]
fn static_assignments_become_member_quotas_with_their_usage_in_status() {
    let cp = ControlPlane::with_joined(2);
    cp.api.kubectl(&["create", "namespace", "quota"]).ok();
    cp.api.kubectl_stdin(&["apply", "-f", "-"], ASSIGNED).ok();
    for m in ["member1", "member2"] {
        eventually(Duration::from_secs(30), "the member quota", || {
            let hard = cp.member(
                m,
                &["get", "quota", "team", "-n", "quota", "-o", "jsonpath={.status.hard}"],
            );
            (hard.stdout.contains(r#""cpu":"1""#) && hard.stdout.contains("2Gi")).then_some(())
        });
    }
    cp.api.kubectl_stdin(&["apply", "-f", "-"], WEB).ok();
    let status = |path: &str| {
        cp.api
            .kubectl(&["get", "frq", "team", "-n", "quota", "-o", &format!("jsonpath={path}")])
            .stdout
    };
    eventually(Duration::from_secs(30), "member1's usage and the overall usage", || {
        let member1 = status(r#"{.status.aggregatedStatus[?(@.clusterName=="member1")].used}"#);
        let overall = status("{.status.overallUsed}");
        (member1.contains(r#""cpu":"200m""#)
            && member1.contains("128Mi")
            && overall.contains(r#""cpu":"200m""#)
            && overall.contains("128Mi"))
        .then_some(())
    });
    assert!(status("{.status.overall}").contains("16Gi"));
    assert_eq!(
        status("{.status.aggregatedStatus[*].clusterName}"),
        "member1 member2",
        "by cluster name"
    );
    // The member enforces its share: 1 CPU, 200m of it taken by web.
    let refused = cp.member(
        "member1",
        &["run", "big", "-n", "quota", "--image", "nginx", "--overrides",
          r#"{"spec":{"containers":[{"name":"big","image":"nginx","resources":{"requests":{"cpu":"900m","memory":"1Mi"}}}]}}"#],
    );
    assert!(
        refused.stderr.contains(r#"pods "big" is forbidden: exceeded quota: team, requested: cpu=900m, used: cpu=200m, limited: cpu=1"#),
        "{}",
        refused.stderr
    );
    let listed = cp.member("member1", &["get", "quota", "-n", "quota"]).ok().to_owned();
    assert!(listed.contains("cpu: 200m/1, memory: 128Mi/2Gi"), "{listed}");
    let log = events(&cp, "quota");
    for reason in ["SyncWorkSucceed", "AggregateStatusSucceed", "CollectOverallStatusSucceed"] {
        assert!(
            log.contains(&format!("FederatedResourceQuota/team {reason}: ")),
            "{reason} in {log}"
        );
    }
    assert!(log.contains("Sync works for FederatedResourceQuota(quota/team) succeed."), "{log}");
    // member2's assignment removed: its quota goes.
    cp.api
        .kubectl(&[
            "patch",
            "frq",
            "team",
            "-n",
            "quota",
            "--type",
            "json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/staticAssignments/1"}]"#,
        ])
        .ok();
    eventually(Duration::from_secs(30), "member2's quota removed", || {
        let q = cp.member("member2", &["get", "quota", "-n", "quota", "-o", "name"]);
        (q.code == 0 && q.stdout.trim().is_empty()).then_some(())
    });
    cp.api.kubectl(&["delete", "frq", "team", "-n", "quota"]).ok();
    eventually(Duration::from_secs(30), "member1's quota removed", || {
        let q = cp.member("member1", &["get", "quota", "-n", "quota", "-o", "name"]);
        (q.code == 0 && q.stdout.trim().is_empty()).then_some(())
    });
}

/// `overall` limits what the namespace's bindings may schedule: a scale-up beyond it and a new
/// workload that does not fit are refused (condition QuotaExceeded, Events with upstream's
/// message, members unchanged), a bigger request is not taken into the binding, and deleting
/// a workload frees its share.
#[test]
fn overall_limits_refuse_what_does_not_fit() {
    let cp = ControlPlane::with_joined(1);
    cp.api.kubectl(&["create", "namespace", "quota"]).ok();
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: small, namespace: quota}
spec:
  overall: {cpu: 10m, memory: 100Mi}
"#,
        )
        .ok();
    let deployment = |name: &str| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: quota}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: 10m}}}}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: quota}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  placement: {{clusterAffinity: {{clusterNames: [member1]}}}}
"#
        )
    };
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("first")).ok();
    let frq = |path: &str| {
        cp.api
            .kubectl(&["get", "frq", "small", "-n", "quota", "-o", &format!("jsonpath={path}")])
            .stdout
    };
    eventually(Duration::from_secs(30), "first in member1, its usage counted", || {
        let running = cp.member(
            "member1",
            &["get", "deploy", "first", "-n", "quota", "-o", "jsonpath={.status.readyReplicas}"],
        );
        (running.stdout == "1" && frq("{.status.overallUsed.cpu}") == "10m").then_some(())
    });
    assert_eq!(frq("{.status.overall}"), r#"{"cpu":"10m","memory":"100Mi"}"#);
    let denied = r#"admission webhook "resourcebinding.karmada.io" denied the request: FederatedResourceQuota(quota/small) exceeded for resource cpu: requested sum 20m, limit 10m."#;
    let scheduled = |binding: &str| {
        cp.api
            .kubectl(&["get", "rb", binding, "-n", "quota", "-o",
                r#"jsonpath={.spec.clusters} {.status.conditions[?(@.type=="Scheduled")].reason}: {.status.conditions[?(@.type=="Scheduled")].message}"#])
            .stdout
    };
    // Scaling up beyond the quota: refused; member1 keeps one replica.
    cp.api.kubectl(&["scale", "deployment", "first", "-n", "quota", "--replicas", "2"]).ok();
    eventually(Duration::from_secs(30), "the scale-up refused", || {
        (scheduled("first-deployment")
            == format!(r#"[{{"name":"member1","replicas":1}}] QuotaExceeded: {denied}"#))
        .then_some(())
    });
    eventually(
        Duration::from_secs(10),
        "ScheduleBindingFailed on the binding and the template",
        || {
            let log = events(&cp, "quota");
            (log.contains(&format!(
                "ResourceBinding/first-deployment ScheduleBindingFailed: {denied}"
            )) && log.contains(&format!("Deployment/first ScheduleBindingFailed: {denied}")))
            .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let replicas = cp.member(
        "member1",
        &["get", "deploy", "first", "-n", "quota", "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(replicas.stdout, "1", "the refused scale-up never reached the member");
    cp.api.kubectl(&["scale", "deployment", "first", "-n", "quota", "--replicas", "1"]).ok();
    // A bigger request: the binding keeps the old one; the template says why.
    cp.api
        .kubectl(&[
            "set",
            "resources",
            "deployment",
            "first",
            "-n",
            "quota",
            "--requests",
            "cpu=20m",
        ])
        .ok();
    eventually(Duration::from_secs(30), "ApplyPolicyFailed", || {
        events(&cp, "quota")
            .contains(&format!(
                "Deployment/first ApplyPolicyFailed: Apply policy(quota/first) failed: {denied}"
            ))
            .then_some(())
    });
    let request = cp.api.kubectl(&[
        "get",
        "rb",
        "first-deployment",
        "-n",
        "quota",
        "-o",
        "jsonpath={.spec.replicaRequirements.resourceRequest}",
    ]);
    assert_eq!(request.stdout, r#"{"cpu":"10m"}"#);
    cp.api
        .kubectl(&[
            "set",
            "resources",
            "deployment",
            "first",
            "-n",
            "quota",
            "--requests",
            "cpu=10m",
        ])
        .ok();
    // A new workload with no room: no clusters, never in the member.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("second")).ok();
    eventually(Duration::from_secs(30), "second refused", || {
        (scheduled("second-deployment") == format!(" QuotaExceeded: {denied}")).then_some(())
    });
    // The first one deleted frees its share (recounted when its binding goes): the second is
    // scheduled on its next try.
    cp.api.kubectl(&["delete", "deployment", "first", "-n", "quota"]).ok();
    eventually(Duration::from_secs(40), "second scheduled once first is gone", || {
        let running = cp.member(
            "member1",
            &["get", "deploy", "second", "-n", "quota", "-o", "jsonpath={.status.readyReplicas}"],
        );
        (running.stdout == "1" && frq("{.status.overallUsed.cpu}") == "10m").then_some(())
    });
}

/// Concurrent binding writes cannot take more than the quota: every one is checked and
/// accounted in turn, and the usage recorded is exactly what was admitted.
#[test]
fn concurrent_bindings_never_take_more_than_the_quota() {
    let api = ApiServer::start("memory");
    api.kubectl(&["create", "namespace", "quota"]).ok();
    api.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: q, namespace: quota}
spec:
  overall: {cpu: 100m}
"#,
    )
    .ok();
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let api = &api;
                s.spawn(move || {
                    let binding = format!(
                        r#"
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {{name: b{i}, namespace: quota}}
spec:
  resource: {{apiVersion: apps/v1, kind: Deployment, name: d{i}, namespace: quota}}
  replicas: 1
  replicaRequirements: {{resourceRequest: {{cpu: 10m}}}}
  clusters: [{{name: member1, replicas: 1}}]
"#
                    );
                    let out = api.kubectl_stdin(&["create", "-f", "-"], &binding);
                    if out.code != 0 {
                        assert!(
                            out.stderr.contains(
                                "exceeded for resource cpu: requested sum 110m, limit 100m."
                            ),
                            "{}",
                            out.stderr
                        );
                    }
                    usize::from(out.code == 0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 10);
    let used = api.kubectl(&[
        "get",
        "frq",
        "q",
        "-n",
        "quota",
        "-o",
        "jsonpath={.status.overallUsed.cpu}",
    ]);
    assert_eq!(used.stdout, "100m");
    let names =
        api.kubectl(&["get", "rb", "-n", "quota", "-o", "jsonpath={.items[*].metadata.name}"]);
    let first = names.stdout.split_whitespace().next().unwrap_or_default().to_owned();
    // A dry run is checked but accounts nothing.
    let out = api.kubectl(&[
        "patch",
        "rb",
        &first,
        "-n",
        "quota",
        "--type",
        "merge",
        "--dry-run=server",
        "-p",
        r#"{"spec":{"clusters":[{"name":"member1","replicas":2}]}}"#,
    ]);
    assert!(
        out.stderr.contains("QuotaExceeded") || out.stderr.contains("exceeded for resource cpu"),
        "{}",
        out.stderr
    );
    // Shrinking fits and frees what it no longer uses.
    api.kubectl(&[
        "patch",
        "rb",
        &first,
        "-n",
        "quota",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"clusters":[{"name":"member1","replicas":0}]}}"#,
    ])
    .ok();
    let used = api.kubectl(&[
        "get",
        "frq",
        "q",
        "-n",
        "quota",
        "-o",
        "jsonpath={.status.overallUsed.cpu}",
    ]);
    assert_eq!(used.stdout, "90m");
}

/// Upstream's validation of the kind, as 422s naming the field.
#[test]
fn a_federated_resource_quota_is_validated() {
    let api = ApiServer::start("memory");
    api.kubectl(&["create", "namespace", "quota"]).ok();
    let out = api.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: bad, namespace: quota}
spec:
  overall: {cpu: "1", pods: "1.5"}
  staticAssignments:
  - clusterName: member1
    hard: {cpu: "2", memory: 1Gi}
"#,
    );
    let message = out.fails();
    for expected in [
        "spec.overall[cpu]: Invalid value: \"1\": overall is less than assignments",
        "spec.overall[pods]: Invalid value: \"1.5\": must be an integer",
        "spec.staticAssignments[0].hard[memory]: Invalid value: \"memory\": assignment resourceName is not exist in overall",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
}
