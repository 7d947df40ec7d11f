//! Karmada's APIs in the control plane: every upstream sample manifest applies with the real
//! kubectl and reads back without loss; printing, defaulting and validation as upstream.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::ApiServer;

/// `../shared/upstream`, which CI provides beside the checkout.
fn upstream_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream");
    assert!(
        dir.is_dir(),
        "the upstream Karmada samples are missing: expected them at {} (shared/upstream beside the checkout)",
        dir.display()
    );
    dir
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every field of `want` is in `got` with the same value.
fn contains(got: &Value, want: &Value, path: &str, problems: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => contains(gv, wv, &format!("{path}.{k}"), problems),
                    None if wv.is_null() => {}
                    None => problems.push(format!("{path}.{k} missing")),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                contains(gv, wv, &format!("{path}[{i}]"), problems);
            }
        }
        (g, w) if g == w => {}
        (g, w) => problems.push(format!("{path}: stored {g} != applied {w}")),
    }
}

/// Test fixtures for the two sample CRs whose CRDs upstream ships elsewhere.
const FIXTURE_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: guestbooks.webapp.my.domain}
spec:
  group: webapp.my.domain
  scope: Namespaced
  names: {plural: guestbooks, singular: guestbook, kind: Guestbook}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: workloads.workload.example.io}
spec:
  group: workload.example.io
  scope: Namespaced
  names: {plural: workloads, singular: workload, kind: Workload}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

#[test]
fn every_upstream_and_project_sample_applies_and_reads_back() {
    let s = ApiServer::start("memory");
    let fixtures = s.file("fixture-crds.yaml", FIXTURE_CRDS);
    s.kubectl(&["apply", "-f", &fixtures]).ok();
    s.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "crd/guestbooks.webapp.my.domain",
        "crd/workloads.workload.example.io",
        "--timeout=10s",
    ])
    .ok();
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: karmada-cluster\n",
    )
    .ok();
    let mut applied = 0;
    // The project's own samples (samples/) must apply and read back the same way.
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    let project = manifests(&samples);
    assert!(project.len() >= 5, "the project's samples/ are missing");
    for path in manifests(&upstream_dir()).into_iter().chain(project) {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = text
            .split("\n---")
            .filter_map(|d| serde_yaml::from_str::<Value>(d).ok())
            .filter(|d| d.get("apiVersion").is_some() && d.get("kind").is_some())
            .collect();
        if docs.is_empty() {
            // Not a Kubernetes manifest (e.g. the interpreter's status-file.yaml).
            continue;
        }
        let file = path.to_str().unwrap();
        let out = s.kubectl(&["apply", "-f", file]);
        assert_eq!(out.code, 0, "{file}: {out:?}");
        let read = s.kubectl(&["get", "-f", file, "-o", "json"]);
        let read: Value = serde_json::from_str(read.ok()).unwrap();
        let items: Vec<Value> = match read.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![read.clone()],
        };
        for (doc, got) in docs.iter().zip(&items) {
            let mut want = doc.clone();
            // Secrets' stringData is write-only: it reads back base64-encoded in data.
            if let Some(strings) = want.as_object_mut().and_then(|m| m.remove("stringData")) {
                for (k, _) in strings.as_object().unwrap() {
                    assert!(got["data"].get(k).is_some(), "{file}: stringData.{k} not in data");
                }
            }
            // Status is written through /status, never by apply (as in Kubernetes).
            if let Some(m) = want.as_object_mut() {
                m.remove("status");
            }
            // A cluster-scoped object ignores a namespace in the manifest.
            if got["metadata"].get("namespace").is_none()
                && let Some(meta) = want.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.remove("namespace");
            }
            // Default tolerations of not-ready/unreachable clusters are added, as upstream's
            // webhook does, to policies that do not tolerate those taints.
            let mut got = got.clone();
            if let Some(list) =
                got.pointer_mut("/spec/placement/clusterTolerations").and_then(Value::as_array_mut)
            {
                let wanted = want.pointer("/spec/placement/clusterTolerations").cloned();
                list.retain(|t| {
                    let defaulted = t["tolerationSeconds"] == 300
                        && t["key"].as_str().is_some_and(|k| k.starts_with("cluster.karmada.io/"));
                    !defaulted
                        || wanted.as_ref().and_then(Value::as_array).is_some_and(|w| w.contains(t))
                });
            }
            let mut problems = Vec::new();
            contains(&got, &want, "", &mut problems);
            assert!(problems.is_empty(), "{file}: {problems:?}");
            applied += 1;
        }
    }
    assert!(applied >= 31, "applied only {applied} upstream and project objects");
}

#[test]
fn karmada_printing_defaulting_and_validation() {
    let s = ApiServer::start("memory");
    let cluster = "apiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: member1\nspec:\n  syncMode: Push\n  apiEndpoint: https://127.0.0.1:6443\n  region: eu\n  provider: sim\n  zones: [a, b]\n";
    s.kubectl_stdin(&["apply", "-f", "-"], cluster).ok();
    let out = s.kubectl(&["get", "clusters"]);
    let lines: Vec<Vec<&str>> = out.ok().lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "VERSION", "MODE", "READY", "AGE"]);
    assert_eq!(&lines[1][..3], ["member1", "Push", "Unknown"], "{}", out.stdout);
    let wide = s.kubectl(&["get", "clusters", "-o", "wide"]);
    let header: Vec<&str> = wide.ok().lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "VERSION",
            "MODE",
            "READY",
            "AGE",
            "ZONES",
            "REGION",
            "PROVIDER",
            "API-ENDPOINT",
            "PROXY-URL"
        ]
    );
    let pp = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: nginx\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: nginx\n  placement:\n    spreadConstraints:\n    - maxGroups: 2\n";
    s.kubectl_stdin(&["apply", "-f", "-"], pp).ok();
    let got: Value =
        serde_json::from_str(s.kubectl(&["get", "pp", "nginx", "-o", "json"]).ok()).unwrap();
    assert_eq!(got["spec"]["resourceSelectors"][0]["namespace"], "default");
    assert_eq!(got["spec"]["placement"]["spreadConstraints"][0]["spreadByField"], "cluster");
    assert_eq!(got["spec"]["placement"]["spreadConstraints"][0]["minGroups"], 1);
    assert!(
        got["metadata"]["labels"]["propagationpolicy.karmada.io/permanent-id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    let header: Vec<String> = s
        .kubectl(&["get", "pp"])
        .ok()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, ["NAME", "CONFLICT-RESOLUTION", "PRIORITY", "AGE"]);
    let bad = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: bad\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n  placement:\n    clusterAffinity: {clusterNames: [m1]}\n    clusterAffinities:\n    - affinityName: a\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    assert!(
        out.fails().contains("clusterAffinities cannot co-exist with clusterAffinity"),
        "{}",
        out.stderr
    );
    let bad_cluster = "apiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: nomode\nspec: {}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad_cluster);
    assert!(out.fails().contains("spec.syncMode: Required value"), "{}", out.stderr);
    // Deletion protection works for any object.
    s.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  labels:\n    resourcetemplate.karmada.io/deletion-protected: Always\n").ok();
    let out = s.kubectl(&["delete", "cm", "keep"]);
    assert!(out.fails().contains("This resource is protected"), "{}", out.stderr);
    s.kubectl(&["label", "cm", "keep", "resourcetemplate.karmada.io/deletion-protected-"]).ok();
    s.kubectl(&["delete", "cm", "keep"]).ok();
    // A namespace holding a protected object is deleted but stays (Terminating) until the
    // protection goes; then it is retried (with a backoff, as Kubernetes' namespace controller)
    // and disappears.
    s.kubectl(&["create", "ns", "guarded"]).ok();
    s.kubectl_stdin(&["apply", "-n", "guarded", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  labels:\n    resourcetemplate.karmada.io/deletion-protected: Always\n").ok();
    s.kubectl(&["delete", "ns", "guarded", "--wait=false"]).ok();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let phase = s.kubectl(&["get", "ns", "guarded", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase.ok(), "Terminating");
    s.kubectl(&[
        "label",
        "cm",
        "keep",
        "-n",
        "guarded",
        "resourcetemplate.karmada.io/deletion-protected-",
    ])
    .ok();
    assert_eq!(
        s.kubectl(&["get", "ns", "guarded", "-o", "jsonpath={.status.phase}"]).ok(),
        "Terminating",
        "still there right after the protection is removed"
    );
    crate::harness::eventually(std::time::Duration::from_secs(30), "the namespace gone", || {
        (s.kubectl(&["get", "ns", "guarded"]).code != 0).then_some(())
    });
    // Short names and the category.
    s.kubectl(&["get", "cpp,op,cop,rb,crb,work"]).ok();
    assert!(s.kubectl(&["get", "karmada-io"]).ok().contains("cluster.cluster.karmada.io/member1"));
}

/// The schemas generated from the types are published: `kubectl explain` works on every
/// supported kubectl, unknown fields are refused under kubectl's strict validation (and pruned
/// without it), and wrongly typed fields get a 422 naming the field.
#[test]
fn karmada_kinds_have_schemas_for_explain_pruning_and_validation() {
    let s = ApiServer::start("memory");
    for version in ["1.27", "1.33"] {
        let out = s.kubectl_version(version, &["explain", "propagationpolicy.spec.placement"]);
        let text = out.ok();
        for want in [
            "KIND:",
            "PropagationPolicy",
            "clusterAffinity",
            "clusterAffinities",
            "spreadConstraints",
            "replicaScheduling",
            "Where and how",
        ] {
            assert!(text.contains(want), "kubectl {version} explain lacks {want:?}:\n{text}");
        }
        let out = s.kubectl_version(version, &["explain", "cluster.spec.syncMode"]);
        assert!(out.ok().contains("syncMode"), "{}", out.stdout);
        let out = s.kubectl_version(version, &["explain", "rb.spec.clusters", "--recursive"]);
        assert!(out.ok().contains("replicas"), "{}", out.stdout);
        let out = s.kubectl_version(version, &["explain", "workloadrebalancer.spec.workloads"]);
        assert!(out.ok().contains("apiVersion"), "{}", out.stdout);
    }
    let typo = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: typo\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n  placement:\n    clusterAfinity:\n      clusterNames: [member1]\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], typo);
    let err = out.fails();
    assert!(err.contains("unknown field") && err.contains("clusterAfinity"), "{err}");
    // Without strict validation the unknown field is pruned, as upstream's CRDs do.
    s.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], typo).ok();
    let got = s.kubectl(&["get", "pp", "typo", "-o", "jsonpath={.spec.placement}"]);
    assert!(!got.ok().contains("clusterAfinity"), "{}", got.stdout);
    let wrong = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: wrong\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n  priority: high\n";
    let err = s.kubectl_stdin(&["apply", "-f", "-"], wrong).fails().to_owned();
    assert!(err.contains("spec.priority") && err.contains("integer"), "{err}");
    let rebalancer = "apiVersion: apps.karmada.io/v1alpha1\nkind: WorkloadRebalancer\nmetadata:\n  name: r\nspec:\n  workloads:\n  - kind: Deployment\n    name: web\n";
    let err = s.kubectl_stdin(&["apply", "-f", "-"], rebalancer).fails().to_owned();
    assert!(err.contains("apiVersion") && err.contains("Required"), "{err}");
}

/// `karmada crds` prints a CRD per kind, generated from the same types the server uses.
#[test]
fn karmada_crds_prints_every_kind() {
    let out = std::process::Command::new(crate::harness::KARMADA).arg("crds").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let crds: Vec<Value> = text
        .split("\n---")
        .filter_map(|d| serde_yaml::from_str::<Value>(d).ok())
        .filter(|d| d.is_object())
        .collect();
    let names: Vec<&str> = crds.iter().filter_map(|c| c["metadata"]["name"].as_str()).collect();
    for want in [
        "propagationpolicies.policy.karmada.io",
        "clusters.cluster.karmada.io",
        "works.work.karmada.io",
        "resourcebindings.work.karmada.io",
        "workloadrebalancers.apps.karmada.io",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let pp = crds
        .iter()
        .find(|c| c["metadata"]["name"] == "propagationpolicies.policy.karmada.io")
        .unwrap();
    let schema = &pp["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(schema.pointer("/properties/spec/properties/placement/properties/clusterAffinity/properties/clusterNames/type"), Some(&Value::from("array")));
    assert_eq!(pp["spec"]["names"]["shortNames"][0], "pp");
}

/// Upstream installs Karmada's kinds as CRDs and tools look for them there: `kubectl get crd`
/// lists every kind; applying upstream's own CRD YAML (here a deliberately different schema)
/// is accepted and leaves the server's definition in force; deleting one is refused.
#[test]
fn karmada_kinds_are_listed_as_crds_that_keep_the_servers_definition() {
    let s = ApiServer::start("memory");
    let names = s.kubectl(&["get", "crd", "-o", "name"]).ok().to_owned();
    for kind in karmada_api::kinds::KINDS {
        let crd = karmada_api::schema::crd(kind);
        let name = crd["metadata"]["name"].as_str().unwrap();
        assert!(
            names.contains(&format!("customresourcedefinition.apiextensions.k8s.io/{name}")),
            "{name} missing from kubectl get crd:\n{names}"
        );
    }
    let established = s.kubectl(&[
        "get",
        "crd",
        "propagationpolicies.policy.karmada.io",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(established.ok(), "True");
    let before = s
        .kubectl(&["get", "crd", "propagationpolicies.policy.karmada.io", "-o", "jsonpath={.spec}"])
        .ok()
        .to_owned();

    // A CRD for the same kind with a schema that would forbid every real policy.
    let foreign = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: propagationpolicies.policy.karmada.io\nspec:\n  group: policy.karmada.io\n  scope: Namespaced\n  names:\n    kind: PropagationPolicy\n    plural: propagationpolicies\n    singular: propagationpolicy\n    listKind: PropagationPolicyList\n  versions:\n  - name: v1alpha1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            required: [onlyThis]\n            properties:\n              onlyThis:\n                type: string\n";
    s.kubectl_stdin(&["apply", "-f", "-"], foreign).ok();
    let after = s
        .kubectl(&["get", "crd", "propagationpolicies.policy.karmada.io", "-o", "jsonpath={.spec}"])
        .ok()
        .to_owned();
    assert_eq!(before, after, "applying a CRD changed a served kind's definition");

    let pp = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: web\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  placement:\n    clusterAffinity:\n      clusterNames: [member1]\n";
    s.kubectl_stdin(&["apply", "-f", "-"], pp).ok();
    assert_eq!(s.kubectl(&["get", "pp", "web", "-o", "jsonpath={.metadata.name}"]).ok(), "web");

    let err =
        s.kubectl(&["delete", "crd", "propagationpolicies.policy.karmada.io"]).fails().to_owned();
    assert!(err.contains("forbidden"), "{err}");
    assert_eq!(s.kubectl(&["get", "pp", "web", "-o", "jsonpath={.metadata.name}"]).ok(), "web");

    // The definitions survive a restart unchanged (they are stored, then brought back).
    let mut s = s;
    s.restart();
    let again = s
        .kubectl(&["get", "crd", "propagationpolicies.policy.karmada.io", "-o", "jsonpath={.spec}"])
        .ok()
        .to_owned();
    assert_eq!(before, again);
}

/// ResourceBinding v1alpha1 is served with its own shape and converted to and from the stored
/// v1alpha2, as upstream's conversion webhook: a binding written as v1alpha2 reads as v1alpha1
/// (replicas and requests inside `spec.resource`), one written as v1alpha1 reads as v1alpha2,
/// watches in either version see their own shape, and each version has its own schema.
#[test]
fn resource_bindings_convert_between_v1alpha1_and_v1alpha2() {
    let s = ApiServer::start("memory");
    let v2 = r#"
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {name: web-deployment, namespace: default}
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: web}
  replicas: 3
  replicaRequirements: {resourceRequest: {cpu: 100m}}
  placement: {clusterAffinity: {clusterNames: [member1]}}
  clusters: [{name: member1, replicas: 3}]
"#;
    s.kubectl_stdin(&["apply", "-f", "-"], v2).ok();
    let old = s.kubectl(&[
        "get",
        "resourcebindings.v1alpha1.work.karmada.io",
        "web-deployment",
        "-o",
        "json",
    ]);
    let old: Value = serde_json::from_str(old.ok()).unwrap();
    assert_eq!(old["apiVersion"], "work.karmada.io/v1alpha1");
    assert_eq!(old["spec"]["resource"]["replicas"], 3);
    assert_eq!(old["spec"]["resource"]["resourcePerReplicas"]["cpu"], "100m");
    assert_eq!(old["spec"]["clusters"][0]["replicas"], 3);
    assert!(old["spec"].get("placement").is_none(), "v1alpha1 has no placement: {old}");
    // Written as v1alpha1, read as v1alpha2.
    let v1 = r#"
apiVersion: work.karmada.io/v1alpha1
kind: ResourceBinding
metadata: {name: legacy, namespace: default}
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: legacy, replicas: 2, resourcePerReplicas: {memory: 64Mi}}
  clusters: [{name: member2, replicas: 2}]
"#;
    s.kubectl_stdin(&["apply", "-f", "-"], v1).ok();
    let new = s.kubectl(&["get", "rb", "legacy", "-o", "json"]);
    let new: Value = serde_json::from_str(new.ok()).unwrap();
    assert_eq!(new["apiVersion"], "work.karmada.io/v1alpha2");
    assert_eq!(new["spec"]["replicas"], 2);
    assert_eq!(new["spec"]["replicaRequirements"]["resourceRequest"]["memory"], "64Mi");
    assert_eq!(new["spec"]["clusters"][0]["name"], "member2");
    // A v1alpha1 list holds both in the v1alpha1 shape.
    let list = s.kubectl(&[
        "get",
        "resourcebindings.v1alpha1.work.karmada.io",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}:{.spec.resource.replicas} {end}",
    ]);
    assert_eq!(list.ok().trim(), "legacy:2 web-deployment:3");
    // Each version validates its own shape: v1alpha1 has no spec.replicas.
    let wrong = v1.replace("clusters: [{name: member2, replicas: 2}]", "replicas: 2");
    let err = s.kubectl_stdin(&["apply", "-f", "-"], &wrong).fails().to_owned();
    assert!(err.contains("unknown field") && err.contains("spec.replicas"), "{err}");
}
