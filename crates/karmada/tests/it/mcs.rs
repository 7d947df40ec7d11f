//! Multi-cluster services end to end: the MCS API's CRDs propagate to the members, a
//! ServiceImport gets its `derived-<name>` Service on the control plane, and a policy selecting
//! the import takes the derived Service along to the consuming cluster.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

#[test]
fn a_service_import_brings_its_derived_service_to_the_consumer() {
    let cp = ControlPlane::with_joined(2);
    // As upstream's e2e: the CRDs are served by the control plane and propagated like any CRD.
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
    eventually(Duration::from_secs(30), "the CRDs in member2", || {
        (cp.member("member2", &["get", "serviceimports", "-A"]).code == 0).then_some(())
    });
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
    // Without the import, its derived Service goes, here and in the member.
    cp.api.kubectl(&["delete", "serviceimport", "hello"]).ok();
    eventually(Duration::from_secs(30), "the derived Service gone", || {
        let here = cp.api.kubectl(&["get", "svc", "derived-hello"]);
        let there = cp.member("member2", &["get", "svc", "derived-hello"]);
        (here.code != 0 && there.code != 0).then_some(())
    });
}
