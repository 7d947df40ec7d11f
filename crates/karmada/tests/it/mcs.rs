//! Multi-cluster services end to end: the MCS API's CRDs propagate to the members, a
//! ServiceImport gets its `derived-<name>` Service on the control plane, and a policy selecting
//! the import takes the derived Service along to the consuming cluster.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

/// As upstream's e2e: the MCS CRDs, served by the control plane, propagated to both members
/// like any CRD.
fn propagate_mcs_crds(cp: &ControlPlane) {
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: mcs-crds}
spec:
  resourceSelectors:
  - {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: serviceexports.multicluster.x-k8s.io}
  - {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: serviceimports.multicluster.x-k8s.io}
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
"#,
        )
        .ok();
    eventually(Duration::from_secs(30), "the CRDs in both members", || {
        let ok = |m: &str| cp.member(m, &["get", "serviceexports,serviceimports"]).code == 0;
        (ok("member1") && ok("member2")).then_some(())
    });
}

#[test]
fn a_service_import_brings_its_derived_service_to_the_consumer() {
    let cp = ControlPlane::with_joined(2);
    propagate_mcs_crds(&cp);
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: hello, namespace: default}
spec:
  type: ClusterSetIP
  ports:
  - {name: tcp, port: 42, protocol: TCP}
  - {name: udp, port: 42, protocol: UDP}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: import-hello, namespace: default}
spec:
  resourceSelectors:
  - {apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, name: hello}
  placement:
    clusterAffinity: {clusterNames: [member2]}
"#,
        )
        .ok();
    assert_eq!(
        cp.api.kubectl(&["get", "pp", "import-hello", "-o", "jsonpath={.spec.propagateDeps}"]).ok(),
        "true",
        "a policy selecting a ServiceImport propagates its dependencies"
    );
    let ports = eventually(Duration::from_secs(20), "the derived Service", || {
        let out = cp.api.kubectl(&[
            "get",
            "svc",
            "derived-hello",
            "-o",
            "jsonpath={.spec.type} {.spec.ports[*].protocol}",
        ]);
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(ports, "ClusterIP TCP UDP");
    let events = cp.api.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=ServiceImport,reason=SyncDerivedServiceSucceed",
        "-o",
        "name",
    ]);
    assert!(!events.ok().trim().is_empty(), "a SyncDerivedServiceSucceed Event");
    eventually(Duration::from_secs(30), "the import and its derived Service in member2", || {
        let import = cp.member("member2", &["get", "serviceimport", "hello"]);
        let derived = cp.member("member2", &["get", "svc", "derived-hello"]);
        (import.code == 0 && derived.code == 0).then_some(())
    });
    assert_ne!(cp.member("member1", &["get", "svc", "derived-hello"]).code, 0, "only the consumer");
    // A consumer that already has a Service of the derived name, not Karmada's, keeps it: the
    // derived Service's Work says why it was not applied (the policy's default, Abort).
    cp.member_apply(
        "member2",
        "apiVersion: v1\nkind: Service\nmetadata: {name: derived-clash, namespace: default, labels: {owner: member2}}\n\
         spec: {ports: [{port: 80}]}\n",
    );
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: clash, namespace: default}\n\
             spec: {type: ClusterSetIP, ports: [{port: 42, protocol: TCP}]}\n---\n\
             apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: import-clash, namespace: default}\n\
             spec:\n  resourceSelectors: [{apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, name: clash}]\n  \
             placement: {clusterAffinity: {clusterNames: [member2]}}\n",
        )
        .ok();
    let work = karmada_api::names::work_name("Service", "derived-clash", "default");
    let message = eventually(
        Duration::from_secs(30),
        "Applied=False on the derived Service's Work",
        || {
            let out = cp.api.kubectl(&[
            "get",
            "work",
            "-n",
            "karmada-es-member2",
            &work,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Applied\")].status}|{.status.conditions[?(@.type==\"Applied\")].message}",
        ]);
            out.stdout.strip_prefix("False|").map(str::to_owned)
        },
    );
    assert!(message.contains("not managed by Karmada"), "{message}");
    let kept = cp.member(
        "member2",
        &["get", "svc", "derived-clash", "-o", "jsonpath={.metadata.labels.owner}"],
    );
    assert_eq!(kept.ok(), "member2", "the consumer's own Service is left as it was");
    // Without the import, its derived Service goes, here and in the member.
    cp.api.kubectl(&["delete", "serviceimport", "hello"]).ok();
    eventually(Duration::from_secs(30), "the derived Service gone", || {
        let here = cp.api.kubectl(&["get", "svc", "derived-hello"]);
        let there = cp.member("member2", &["get", "svc", "derived-hello"]);
        (here.code != 0 && there.code != 0).then_some(())
    });
}

/// The endpoints of `derived-hello` a cluster's EndpointSlices hold (`None`: the control plane).
fn endpoints(cp: &ControlPlane, cluster: Option<&str>) -> Vec<String> {
    let args = [
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=derived-hello",
        "-o",
        "jsonpath={.items[*].endpoints[*].addresses[0]}",
    ];
    let out = match cluster {
        Some(c) => cp.member(c, &args),
        None => cp.api.kubectl(&args),
    };
    let mut ips: Vec<String> = out.stdout.split_whitespace().map(str::to_owned).collect();
    ips.sort();
    ips
}

/// A ServiceExport of `name`, propagated to member1.
fn export_from_member1(cp: &ControlPlane, name: &str) {
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &format!(
                r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {{name: {name}, namespace: default}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: export-{name}, namespace: default}}
spec:
  resourceSelectors: [{{apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport, name: {name}}}]
  placement: {{clusterAffinity: {{clusterNames: [member1]}}}}
"#
            ),
        )
        .ok();
}

#[test]
fn exported_endpoints_reach_the_importing_cluster() {
    let cp = ControlPlane::with_joined(2);
    propagate_mcs_crds(&cp);
    // The workload runs in member1 only, created there (as upstream's e2e does).
    cp.member_apply(
        "member1",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers: [{name: hello, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: default}
spec:
  selector: {app: hello}
  ports: [{name: tcp, port: 42, protocol: TCP}]
"#,
    );
    // The import comes first: the EndpointSlices it depends on appear only later.
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: hello, namespace: default}
spec:
  type: ClusterSetIP
  ports: [{name: tcp, port: 42, protocol: TCP}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: import-hello, namespace: default}
spec:
  resourceSelectors: [{apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, name: hello}]
  placement: {clusterAffinity: {clusterNames: [member2]}}
"#,
        )
        .ok();
    export_from_member1(&cp, "hello");
    // The export says its Service is there; one of a Service that does not exist says so.
    export_from_member1(&cp, "ghost");
    let validity = |name: &str| {
        cp.member(
            "member1",
            &[
                "get",
                "serviceexport",
                name,
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Valid")].status} {.status.conditions[?(@.type=="Valid")].reason}"#,
            ],
        )
        .stdout
    };
    eventually(Duration::from_secs(30), "both exports validated", || {
        (validity("hello") == "True ServiceFound" && validity("ghost") == "False ServiceNotFound")
            .then_some(())
    });
    // member1's endpoint (from its own pod range) collected into the control plane.
    let collected = eventually(Duration::from_secs(30), "the endpoint collected", || {
        let ips = endpoints(&cp, None);
        (ips.len() == 1).then_some(ips)
    });
    assert!(collected[0].starts_with("10.10."), "{collected:?}");
    eventually(Duration::from_secs(30), "the endpoint imported into member2", || {
        (endpoints(&cp, Some("member2")) == collected).then_some(())
    });
    // Pods come and go in the exporting cluster: the importing cluster follows.
    cp.member("member1", &["scale", "deploy", "hello", "--replicas=3"]).ok();
    eventually(Duration::from_secs(30), "three endpoints in member2", || {
        (endpoints(&cp, Some("member2")).len() == 3).then_some(())
    });
    // Unexported: the collected and imported endpoints go.
    cp.api.kubectl(&["delete", "serviceexport", "hello"]).ok();
    eventually(Duration::from_secs(30), "the endpoints gone", || {
        (endpoints(&cp, None).is_empty() && endpoints(&cp, Some("member2")).is_empty())
            .then_some(())
    });
}

/// A Deployment `web` in member1 and a MultiClusterService taking its Service from member1
/// to member2.
const WEB_ACROSS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
---
apiVersion: networking.karmada.io/v1alpha1
kind: MultiClusterService
metadata: {name: web, namespace: default}
spec:
  types: [CrossCluster]
  providerClusters: [{name: member1}]
  consumerClusters: [{name: member2}]
"#;

/// The addresses of the EndpointSlices of Service `web` in a member, by slice name.
fn slices_of_web(cp: &ControlPlane, cluster: &str) -> Vec<(String, usize)> {
    let out = cp.member(
        cluster,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            r#"go-template={{range .items}}{{.metadata.name}} {{len .endpoints}}{{"\n"}}{{end}}"#,
        ],
    );
    let mut slices: Vec<(String, usize)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (name, n) = l.split_once(' ')?;
            Some((name.to_owned(), n.parse().ok()?))
        })
        .collect();
    slices.sort();
    slices
}

/// A MultiClusterService from member1 (provider, where the workload runs) to member2
/// (consumer): the Service goes to both, member1's EndpointSlice to member2 as
/// `member1-<slice>`, following the pods; member1 unreachable withdraws its endpoints; the
/// MultiClusterService deleted, everything it dispatched goes.
#[test]
fn a_multi_cluster_service_takes_the_providers_endpoints_to_its_consumers() {
    let cp = ControlPlane::with_joined(2);
    cp.api.kubectl_stdin(&["apply", "-f", "-"], WEB_ACROSS).ok();
    let provided = eventually(Duration::from_secs(30), "member1's slice with 2 endpoints", || {
        let slices = slices_of_web(&cp, "member1");
        (slices.len() == 1 && slices[0].1 == 2).then(|| slices[0].0.clone())
    });
    let dispatched = format!("member1-{provided}");
    eventually(Duration::from_secs(30), "the slice dispatched to member2", || {
        slices_of_web(&cp, "member2").contains(&(dispatched.clone(), 2)).then_some(())
    });
    // Conditions and Events are written after the slices go out: looked for until there.
    let conditions = || {
        cp.api
            .kubectl(&[
                "get",
                "mcs",
                "web",
                "-o",
                r#"jsonpath={range .status.conditions[*]}{.type}={.status} {end}"#,
            ])
            .stdout
    };
    eventually(Duration::from_secs(20), "ServiceApplied and EndpointSliceDispatched", || {
        let c = conditions();
        (c.contains("ServiceApplied=True") && c.contains("EndpointSliceDispatched=True"))
            .then_some(())
    });
    eventually(Duration::from_secs(20), "the Service claimed", || {
        let claimed = cp.api.kubectl(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.labels.resourcetemplate\\.karmada\\.io/claimed-by}",
        ]);
        (claimed.stdout == "MultiClusterService").then_some(())
    });
    eventually(
        Duration::from_secs(20),
        "SyncServiceSucceed and DispatchEndpointSliceSucceed",
        || {
            let reasons = cp.api.kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=MultiClusterService",
                "-o",
                "jsonpath={.items[*].reason}",
            ]);
            (reasons.stdout.contains("SyncServiceSucceed")
                && reasons.stdout.contains("DispatchEndpointSliceSucceed"))
            .then_some(())
        },
    );
    // The workload scales in the provider: the consumer follows.
    cp.api.kubectl(&["scale", "deploy", "web", "--replicas=3"]).ok();
    eventually(Duration::from_secs(30), "3 endpoints in member2", || {
        slices_of_web(&cp, "member2").contains(&(dispatched.clone(), 3)).then_some(())
    });
    // A provider that is unreachable gives no endpoints (within the failover time), and gives
    // them again when it is back.
    cp.fault("member1", &["--unreachable", "true"]);
    eventually(Duration::from_secs(40), "member1's endpoints withdrawn from member2", || {
        (!slices_of_web(&cp, "member2").iter().any(|(n, _)| n.starts_with("member1-")))
            .then_some(())
    });
    cp.fault("member1", &["--unreachable", "false"]);
    eventually(Duration::from_secs(40), "member1's endpoints back in member2", || {
        slices_of_web(&cp, "member2").iter().any(|(n, _)| n.starts_with("member1-")).then_some(())
    });
    // Deleted: what it dispatched goes, the Service is released (and stays where it is).
    cp.api.kubectl(&["delete", "mcs", "web"]).ok();
    eventually(Duration::from_secs(30), "the dispatched slices gone", || {
        (!slices_of_web(&cp, "member2").iter().any(|(n, _)| n.starts_with("member1-")))
            .then_some(())
    });
    let released = cp.api.kubectl(&["get", "svc", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert!(!released.stdout.contains("claimed-by"), "{}", released.stdout);
}

#[test]
fn a_multi_cluster_service_is_validated() {
    let api = crate::harness::ApiServer::start("memory");
    let out = api.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: networking.karmada.io/v1alpha1
kind: MultiClusterService
metadata: {name: web, namespace: default}
spec:
  types: [CrossCluster, Sideways]
  ports: [{name: http, port: 80}, {name: http, port: 70000}]
  providerClusters: [{name: Member_1}]
"#,
    );
    assert_ne!(out.code, 0);
    for field in [
        "spec.types[1]",
        "spec.ports[1].name",
        "spec.ports[1].port",
        "spec.providerClusters[0].name",
    ] {
        assert!(out.stderr.contains(field), "{field} in {}", out.stderr);
    }
}

/// A Remedy acting on a problem detector's cluster condition: member1's DNS reported broken →
/// `TrafficControl` in its `status.remedyActions` → its endpoints withdrawn from the consumer;
/// reported fixed → back.
#[test]
fn a_remedy_keeps_traffic_away_from_a_cluster() {
    let cp = ControlPlane::with_joined(2);
    cp.api.kubectl_stdin(&["apply", "-f", "-"], WEB_ACROSS).ok();
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: remedy.karmada.io/v1alpha1
kind: Remedy
metadata: {name: dns}
spec:
  clusterAffinity: {clusterNames: [member1]}
  decisionMatches:
  - clusterConditionMatch: {conditionType: ServiceDomainNameResolutionReady, operator: Equal, conditionStatus: "False"}
  actions: [TrafficControl]
"#,
        )
        .ok();
    let dispatched =
        || slices_of_web(&cp, "member2").iter().any(|(n, _)| n.starts_with("member1-"));
    eventually(Duration::from_secs(30), "member1's endpoints in member2", || {
        dispatched().then_some(())
    });
    // As a problem detector reports cluster conditions.
    let patch_status = |patch: &str| {
        cp.api
            .kubectl(&[
                "patch",
                "cluster",
                "member1",
                "--subresource=status",
                "--type=json",
                "-p",
                patch,
            ])
            .ok();
    };
    let report = |status: &str| {
        patch_status(&format!(
            r#"[{{"op": "add", "path": "/status/conditions/-", "value": {{"type": "ServiceDomainNameResolutionReady",
                "status": "{status}", "reason": "Detected", "message": "", "lastTransitionTime": "2026-12-07T00:00:00Z"}}}}]"#
        ));
    };
    let actions = || {
        cp.api
            .kubectl(&["get", "cluster", "member1", "-o", "jsonpath={.status.remedyActions}"])
            .stdout
    };
    report("False");
    eventually(Duration::from_secs(30), "TrafficControl on member1", || {
        actions().contains("TrafficControl").then_some(())
    });
    eventually(Duration::from_secs(30), "member1's endpoints withdrawn", || {
        (!dispatched()).then_some(())
    });
    // The problem's condition survives the cluster's status updates; fixed, the action goes.
    let conditions = cp.api.kubectl(&[
        "get",
        "cluster",
        "member1",
        "-o",
        "jsonpath={.status.conditions[*].type}",
    ]);
    assert!(
        conditions.stdout.contains("ServiceDomainNameResolutionReady"),
        "{}",
        conditions.stdout
    );
    let index = conditions
        .stdout
        .split_whitespace()
        .position(|t| t == "ServiceDomainNameResolutionReady")
        .unwrap();
    patch_status(&format!(
        r#"[{{"op": "replace", "path": "/status/conditions/{index}/status", "value": "True"}}]"#
    ));
    eventually(Duration::from_secs(30), "no action on member1", || {
        actions().is_empty().then_some(())
    });
    eventually(Duration::from_secs(30), "member1's endpoints back", || dispatched().then_some(()));
}
