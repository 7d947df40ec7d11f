//! FederatedHPA end to end: a Deployment divided over two members scales up when the members'
//! CPU load rises (`karmada fault --load`) and back down after the scale-down stabilization
//! window when it falls; `kubectl top pods` on the control plane lists the pods of every member.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

#[test]
fn a_federated_hpa_follows_the_members_load() {
    let cp = ControlPlane::with_joined_and(2, &["--horizontal-pod-autoscaler-sync-period=1s"]);
    for member in ["member1", "member2"] {
        cp.fault(member, &["--load", "0.5"]);
    }
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        resources: {limits: {cpu: 100m, memory: 64Mi}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 1}
        - {targetCluster: {clusterNames: [member2]}, weight: 1}
---
apiVersion: autoscaling.karmada.io/v1alpha1
kind: FederatedHPA
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 6
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 3}
"#,
        )
        .ok();
    let replicas =
        || cp.api.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).stdout;
    // At 50 % of their requests (the limits, defaulted to requests) nothing changes.
    let active = eventually(Duration::from_secs(30), "the FederatedHPA active", || {
        let out = cp.api.kubectl(&[
            "get",
            "federatedhpa",
            "web",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].reason} {.status.currentMetrics[0].resource.current.averageUtilization}",
        ]);
        out.stdout.starts_with("ValidMetricFound").then_some(out.stdout)
    });
    assert_eq!(active, "ValidMetricFound 50");
    assert_eq!(replicas(), "2");
    // kubectl top on the control plane: the pods of both members.
    let top = cp.api.kubectl(&["top", "pods", "-l", "app=web", "--no-headers"]);
    assert_eq!(top.ok().lines().count(), 2, "{}", top.stdout);
    assert!(top.stdout.contains("50m"), "{}", top.stdout);
    // Load rises to 180 %: ceil(3.6 × 2) = 8, at most 6; divided over both members.
    for member in ["member1", "member2"] {
        cp.fault(member, &["--load", "1.8"]);
    }
    eventually(Duration::from_secs(30), "scaled up to 6", || (replicas() == "6").then_some(()));
    eventually(Duration::from_secs(30), "6 running in the members", || {
        let count = |m: &str| {
            cp.member(m, &["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"])
                .stdout
                .parse::<i32>()
                .unwrap_or(0)
        };
        (count("member1") + count("member2") == 6).then_some(())
    });
    let limited = cp.api.kubectl(&[
        "get",
        "federatedhpa",
        "web",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"ScalingLimited\")].reason}",
    ]);
    assert_eq!(limited.ok(), "TooManyReplicas");
    let events =
        cp.api.kubectl(&["get", "events", "--field-selector", "involvedObject.kind=FederatedHPA"]);
    assert!(
        events.ok().contains(
            "New size: 6; reason: cpu resource utilization (percentage of request) above target"
        ),
        "{}",
        events.stdout
    );
    // Load falls to 10 %: down to the minimum once the stabilization window has passed.
    for member in ["member1", "member2"] {
        cp.fault(member, &["--load", "0.1"]);
    }
    eventually(Duration::from_secs(40), "scaled down to 1", || (replicas() == "1").then_some(()));
}

#[test]
fn a_cron_federated_hpa_scales_on_its_schedule() {
    let cp = ControlPlane::with_joined(1);
    cp.api.kubectl(&["create", "deployment", "nightly", "--image=nginx", "--replicas=2"]).ok();
    let invalid = cp.api.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: autoscaling.karmada.io/v1alpha1
kind: CronFederatedHPA
metadata: {name: broken, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: nightly}
  rules: [{name: up, schedule: "61 * * * *", targetReplicas: 3}]
"#,
    );
    assert!(invalid.fails().contains("spec.rules[0].schedule"), "{}", invalid.stderr);
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: autoscaling.karmada.io/v1alpha1
kind: CronFederatedHPA
metadata: {name: every-minute, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: nightly}
  rules:
  - {name: up, schedule: "*/1 * * * *", targetReplicas: 3}
  - {name: paused, schedule: "*/1 * * * *", targetReplicas: 9, suspend: true}
"#,
        )
        .ok();
    // The rule fires at the next minute.
    eventually(Duration::from_secs(75), "3 replicas", || {
        let out = cp.api.kubectl(&["get", "deploy", "nightly", "-o", "jsonpath={.spec.replicas}"]);
        (out.stdout == "3").then_some(())
    });
    let history = eventually(Duration::from_secs(10), "the execution recorded", || {
        let out = cp.api.kubectl(&[
            "get",
            "cronfederatedhpa",
            "every-minute",
            "-o",
            "jsonpath={.status.executionHistories[0].successfulExecutions[0].appliedReplicas} {.status.executionHistories[0].nextExecutionTime}",
        ]);
        out.stdout.starts_with("3 ").then_some(out.stdout)
    });
    assert!(history.ends_with('Z'), "a next execution time: {history}");
    let paused = cp.api.kubectl(&[
        "get",
        "cronfederatedhpa",
        "every-minute",
        "-o",
        "jsonpath={.status.executionHistories[1].successfulExecutions}",
    ]);
    assert_eq!(paused.ok(), "", "a suspended rule does not run");
}

#[test]
fn member_hpas_own_the_replicas_of_a_divided_deployment() {
    let cp = ControlPlane::with_joined_and(
        2,
        &["--controllers=*,hpaScaleTargetMarker,deploymentReplicasSyncer"],
    );
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: nginx
        resources: {requests: {cpu: 10m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 6
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: api, namespace: default}
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: api}
  - {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: api}
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 1}
        - {targetCluster: {clusterNames: [member2]}, weight: 1}
"#,
        )
        .ok();
    let template = |path: &str| {
        cp.api.kubectl(&["get", "deploy", "api", "-o", &format!("jsonpath={path}")]).stdout
    };
    let members = || {
        ["member1", "member2"].map(|m| {
            cp.member(m, &["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"]).stdout
        })
    };
    // The propagated HPA's target keeps its members' replicas.
    eventually(Duration::from_secs(30), "the template marked", || {
        (template("{.metadata.labels.resourcetemplate\\.karmada\\.io/retain-replicas}") == "true")
            .then_some(())
    });
    eventually(Duration::from_secs(30), "2 + 2 in the members", || {
        (members() == ["2", "2"]).then_some(())
    });
    // The members' HPAs scale (a higher minimum): the template follows their sum.
    cp.api
        .kubectl(&["patch", "hpa", "api", "--type=merge", "-p", r#"{"spec":{"minReplicas":3}}"#])
        .ok();
    eventually(Duration::from_secs(40), "3 + 3 in the members, 6 in the template", || {
        (members() == ["3", "3"] && template("{.spec.replicas}") == "6").then_some(())
    });
    // A manual change to the template does not override the members' HPAs.
    cp.api.kubectl(&["scale", "deploy", "api", "--replicas=10"]).ok();
    eventually(Duration::from_secs(40), "back to the members' 6", || {
        (template("{.spec.replicas}") == "6").then_some(())
    });
    assert_eq!(members(), ["3", "3"]);
    // Without the HPA the template's replicas apply again.
    cp.api.kubectl(&["delete", "hpa", "api"]).ok();
    eventually(Duration::from_secs(30), "the label removed", || {
        template("{.metadata.labels}").contains("retain-replicas").then_some(()).xor(Some(()))
    });
}
