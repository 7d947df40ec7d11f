//! Propagation end to end with the real binaries and kubectl: a CRD and its custom resources
//! (upstream's guestbook sample, via a ClusterPropagationPolicy), namespace auto-propagation,
//! conflict resolution, propagateDeps, drift correction, policy priority and preemption, and
//! policy deletion, and failover from a failed cluster.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::{ControlPlane, upstream};

const GUESTBOOK_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: guestbooks.webapp.my.domain
spec:
  group: webapp.my.domain
  scope: Namespaced
  names: {plural: guestbooks, singular: guestbook, kind: Guestbook}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              configMapName: {type: string}
              alias: {type: string}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

fn jsonpath(path: &str) -> String {
    format!("jsonpath={path}")
}

#[test]
fn crds_custom_resources_and_override_policies() {
    let cp = ControlPlane::with_joined(2);
    let samples = upstream("guestbook");
    let file = |name: &str| samples.join(name).to_str().unwrap().to_owned();
    cp.api.kubectl_stdin(&["apply", "-f", "-"], GUESTBOOK_CRD).ok();
    // The CRD goes to member1 only, through a ClusterResourceBinding.
    cp.api.kubectl(&["apply", "-f", &file("guestbooks-clusterpropagationpolicy.yaml")]).ok();
    eventually(Duration::from_secs(30), "the CRD in member1", || {
        (cp.member("member1", &["get", "crd", "guestbooks.webapp.my.domain"]).code == 0)
            .then_some(())
    });
    let crb = cp.api.kubectl(&[
        "get",
        "crb",
        "guestbooks.webapp.my.domain-customresourcedefinition",
        "-o",
        &jsonpath("{.spec.clusters[*].name}"),
    ]);
    assert_eq!(crb.ok(), "member1");
    assert_ne!(cp.member("member2", &["get", "crd", "guestbooks.webapp.my.domain"]).code, 0);
    // The custom resource follows, with member1's override.
    for f in
        ["guestbooks-propagationpolicy.yaml", "guestbooks-overridepolicy.yaml", "guestbook.yaml"]
    {
        cp.api.kubectl(&["apply", "-f", &file(f)]).ok();
    }
    eventually(Duration::from_secs(30), "the overridden guestbook in member1", || {
        let out = cp.member(
            "member1",
            &[
                "get",
                "guestbook",
                "guestbook-sample",
                "-o",
                &jsonpath("{.spec.size} {.metadata.annotations.OverridePolicy}"),
            ],
        );
        (out.stdout == "4 test").then_some(())
    });
    assert_eq!(
        cp.api
            .kubectl(&["get", "guestbook", "guestbook-sample", "-o", &jsonpath("{.spec.size}")])
            .ok(),
        "2",
        "the template itself is not overridden"
    );
    eventually(Duration::from_secs(30), "the guestbook binding fully applied", || {
        let out = cp.api.kubectl(&["get", "rb", "guestbook-sample-guestbook", "--no-headers"]);
        let columns: Vec<&str> = out.stdout.split_whitespace().collect();
        (columns.get(1..3) == Some(&["True", "True"][..])).then_some(())
    });
    // Deleting the template removes the member's copy.
    cp.api.kubectl(&["delete", "guestbook", "guestbook-sample"]).ok();
    eventually(Duration::from_secs(30), "the member copy removed", || {
        (cp.member("member1", &["get", "guestbook", "guestbook-sample"]).code != 0).then_some(())
    });

    // Upstream's image override: registries by cluster label.
    cp.api.kubectl(&["label", "cluster", "member1", "location=us"]).ok();
    cp.api.kubectl(&["label", "cluster", "member2", "location=cn"]).ok();
    let nginx = upstream("nginx");
    let artifacts = upstream("artifacts-example");
    for f in [
        nginx.join("deployment.yaml"),
        nginx.join("propagationpolicy.yaml"),
        artifacts.join("overridepolicy_image.yaml"),
    ] {
        cp.api.kubectl(&["apply", "-f", f.to_str().unwrap()]).ok();
    }
    let image = |cluster: &str| {
        cp.member(
            cluster,
            &[
                "get",
                "deploy",
                "nginx",
                "-o",
                &jsonpath("{.spec.template.spec.containers[0].image}"),
            ],
        )
        .stdout
    };
    eventually(Duration::from_secs(30), "registries rewritten by cluster label", || {
        (image("member1") == "fictional.registry.us/nginx"
            && image("member2") == "fictional.registry.cn/nginx")
            .then_some(())
    });
    // Every step left upstream's Events where users (kubectl describe) and tools (client-go
    // listing v1 Events by involvedObject.name) look for them.
    let reasons = |name: &str, kind: &str| {
        let selector = format!("involvedObject.name={name},involvedObject.kind={kind}");
        let out = cp.api.kubectl(&[
            "get",
            "events",
            "-A",
            "--field-selector",
            &selector,
            "-o",
            &jsonpath("{range .items[*]}{.reason}: {.message}{\"\\n\"}{end}"),
        ]);
        out.stdout
    };
    let expected = [
        (
            "nginx",
            "Deployment",
            "ApplyPolicySucceed: Apply policy(default/nginx-propagation) succeed",
        ),
        (
            "nginx",
            "Deployment",
            "ScheduleBindingSucceed: Binding has been scheduled successfully. Result: {member1:1, member2:1}",
        ),
        (
            "nginx",
            "Deployment",
            "SyncWorkSucceed: Sync work of ResourceBinding(default/nginx-deployment) successful.",
        ),
        (
            "nginx",
            "Deployment",
            "ApplyOverridePolicySucceed: Apply override policy(default/example-override) for cluster(member1) succeed.",
        ),
        (
            "nginx",
            "Deployment",
            "SyncSucceed: Successfully applied resource(default/nginx) to cluster member2",
        ),
        (
            "nginx-deployment",
            "ResourceBinding",
            "ScheduleBindingSucceed: Binding has been scheduled successfully.",
        ),
        (
            "nginx-deployment",
            "ResourceBinding",
            "AggregateStatusSucceed: Update ResourceBinding(default/nginx-deployment) with AggregatedStatus successfully.",
        ),
        (
            "member1",
            "Cluster",
            "CreateExecutionSpaceSucceed: Created execution space(karmada-es-member1) for cluster(member1).",
        ),
    ];
    for (name, kind, line) in expected {
        eventually(Duration::from_secs(30), line, || {
            reasons(name, kind).contains(line).then_some(())
        });
    }
    let described = cp.api.kubectl(&["describe", "deployment", "nginx"]);
    let described = described.ok();
    assert!(described.contains("ApplyPolicySucceed"), "{described}");
    // An override that cannot apply fails only its cluster, visibly.
    let broken = "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata:\n  name: broken\nspec:\n  resourceSelectors:\n  - {apiVersion: apps/v1, kind: Deployment, name: nginx}\n  overrideRules:\n  - targetCluster: {clusterNames: [member2]}\n    overriders:\n      plaintext:\n      - {path: /spec/nothing/deeper, operator: replace, value: 1}\n";
    cp.api.kubectl_stdin(&["apply", "-f", "-"], broken).ok();
    let condition = |field: &str| {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                "nginx-deployment",
                "-o",
                &jsonpath(&format!(
                    "{{.status.conditions[?(@.type==\"OverridesApplied\")].{field}}}"
                )),
            ])
            .stdout
    };
    let message = eventually(Duration::from_secs(30), "OverridesApplied=False", || {
        (condition("status") == "False").then(|| condition("message"))
    });
    assert!(message.contains("member2") && message.contains("broken"), "{message}");
    let reasons =
        cp.api.kubectl(&["get", "events.events.k8s.io", "-o", &jsonpath("{.items[*].reason}")]);
    assert!(reasons.ok().contains("ApplyOverridePolicyFailed"), "{}", reasons.stdout);
    assert_eq!(image("member1"), "fictional.registry.us/nginx", "other clusters are unaffected");
    cp.api.kubectl(&["delete", "op", "broken"]).ok();
    eventually(Duration::from_secs(30), "OverridesApplied=True again", || {
        (condition("status") == "True").then_some(())
    });
    // Deleting the image override renders the Works again without it.
    cp.api.kubectl(&["delete", "op", "example-override"]).ok();
    eventually(Duration::from_secs(30), "original images back", || {
        (image("member1") == "nginx" && image("member2") == "nginx").then_some(())
    });
}

#[test]
fn namespaces_propagate_and_conflicts_follow_the_policy() {
    let cp = ControlPlane::with_joined(2);
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: quiet\n  labels:\n    namespace.karmada.io/skip-auto-propagation: \"true\"\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels:\n    team: a\n",
        )
        .ok();
    for cluster in ["member1", "member2"] {
        eventually(Duration::from_secs(30), "team-a in every member", || {
            let out = cp.member(
                cluster,
                &["get", "ns", "team-a", "-o", &jsonpath("{.metadata.labels.team}")],
            );
            (out.stdout == "a").then_some(())
        });
        assert_ne!(cp.member(cluster, &["get", "ns", "quiet"]).code, 0, "skip label honoured");
    }
    // An object that already exists in a member, not made by Karmada: Abort leaves it alone
    // and says so on the Work; Overwrite (from the policy) takes it over.
    cp.member_apply(
        "member2",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: team-a\ndata:\n  owner: member\n",
    );
    let policy = |resolution: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: team-a\ndata:\n  owner: control-plane\n---\n\
             apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: shared\n  namespace: team-a\nspec:\n  conflictResolution: {resolution}\n  \
             resourceSelectors:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: shared\n  placement:\n    clusterAffinity:\n      clusterNames: [member1, member2]\n"
        )
    };
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &policy("Abort")).ok();
    let message = eventually(Duration::from_secs(30), "Applied=False on member2's Work", || {
        let out = cp.api.kubectl(&[
            "get",
            "work",
            "-n",
            "karmada-es-member2",
            &karmada_api::names::work_name("ConfigMap", "shared", "team-a"),
            "-o",
            &jsonpath("{.status.conditions[?(@.type==\"Applied\")].status}|{.status.conditions[?(@.type==\"Applied\")].message}"),
        ]);
        out.stdout.strip_prefix("False|").map(str::to_owned)
    });
    assert!(message.contains("not managed by Karmada"), "{message}");
    let data = |cluster: &str| {
        cp.member(
            cluster,
            &["get", "cm", "shared", "-n", "team-a", "-o", &jsonpath("{.data.owner}")],
        )
        .stdout
    };
    eventually(Duration::from_secs(30), "member1 gets the control plane's copy", || {
        (data("member1") == "control-plane").then_some(())
    });
    assert_eq!(data("member2"), "member", "Abort keeps the member's object");
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &policy("Overwrite")).ok();
    eventually(Duration::from_secs(30), "Overwrite takes member2's object over", || {
        (data("member2") == "control-plane").then_some(())
    });
    // Migrating back out of Karmada (as upstream): with preserveResourcesOnDeletion, deleting
    // the template leaves the member objects running, no longer marked as Karmada's.
    cp.api
        .kubectl(&[
            "patch",
            "pp",
            "shared",
            "-n",
            "team-a",
            "--type=merge",
            "-p",
            r#"{"spec":{"preserveResourcesOnDeletion":true}}"#,
        ])
        .ok();
    let work = karmada_api::names::work_name("ConfigMap", "shared", "team-a");
    eventually(Duration::from_secs(30), "the Works say preserve", || {
        let out = cp.api.kubectl(&[
            "get",
            "work",
            "-A",
            "--field-selector",
            &format!("metadata.name={work}"),
            "-o",
            &jsonpath("{.items[*].spec.preserveResourcesOnDeletion}"),
        ]);
        (out.stdout == "true true").then_some(())
    });
    cp.api.kubectl(&["delete", "cm", "shared", "-n", "team-a"]).ok();
    for cluster in ["member1", "member2"] {
        let metadata = eventually(Duration::from_secs(30), "the member's copy let go of", || {
            let out = cp.member(
                cluster,
                &["get", "cm", "shared", "-n", "team-a", "-o", "jsonpath={.metadata}"],
            );
            let meta: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
            let karmadas = |field: &str, keys: &[&str]| {
                meta[field].as_object().is_some_and(|m| keys.iter().any(|k| m.contains_key(*k)))
            };
            let names = (
                karmada_api::names::MANAGED_RESOURCE_LABELS,
                karmada_api::names::MANAGED_RESOURCE_ANNOTATIONS,
            );
            (!karmadas("labels", names.0) && !karmadas("annotations", names.1)).then_some(meta)
        });
        assert!(metadata["uid"].is_string(), "{metadata}");
        assert_eq!(data(cluster), "control-plane");
    }
    // A Duplicated placement by cluster label follows the clusters: labelling member2 later
    // brings the object there too, and a cluster that no longer matches loses it (as
    // upstream reschedules Duplicated bindings on cluster changes).
    cp.api.kubectl(&["label", "cluster", "member1", "env=prod"]).ok();
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: follow\n  namespace: team-a\n---\n\
             apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: follow\n  namespace: team-a\nspec:\n  \
             resourceSelectors:\n  - {apiVersion: v1, kind: ConfigMap, name: follow}\n  placement:\n    clusterAffinity:\n      labelSelector:\n        matchLabels: {env: prod}\n",
        )
        .ok();
    let has_follow =
        |cluster: &str| cp.member(cluster, &["get", "cm", "follow", "-n", "team-a"]).code == 0;
    eventually(Duration::from_secs(30), "follow in member1", || {
        has_follow("member1").then_some(())
    });
    assert!(!has_follow("member2"));
    cp.api.kubectl(&["label", "cluster", "member2", "env=prod"]).ok();
    eventually(Duration::from_secs(30), "follow reaches the newly labelled member2", || {
        has_follow("member2").then_some(())
    });
    cp.api.kubectl(&["label", "cluster", "member1", "env-"]).ok();
    eventually(Duration::from_secs(30), "follow leaves the unlabelled member1", || {
        (!has_follow("member1") && has_follow("member2")).then_some(())
    });
    // No cluster matches any more: the result is cleared (as upstream) and the binding says
    // why.
    cp.api.kubectl(&["label", "cluster", "member2", "env-"]).ok();
    eventually(Duration::from_secs(30), "follow leaves every member", || {
        (!has_follow("member1") && !has_follow("member2")).then_some(())
    });
    let reason = cp.api.kubectl(&[
        "get",
        "rb",
        "-n",
        "team-a",
        "follow-configmap",
        "-o",
        &jsonpath("{.status.conditions[?(@.type==\"Scheduled\")].reason}"),
    ]);
    assert_eq!(reason.ok(), "NoClusterFit");

    // Deleting the namespace removes it from the members.
    cp.api.kubectl(&["delete", "ns", "team-a", "--wait=false"]).ok();
    for cluster in ["member1", "member2"] {
        eventually(Duration::from_secs(30), "team-a gone from the members", || {
            (cp.member(cluster, &["get", "ns", "team-a"]).code != 0).then_some(())
        });
    }
}

const WEB: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        volumeMounts:
        - {name: config, mountPath: /etc/web}
      volumes:
      - name: config
        configMap: {name: web-config}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: web
spec:
  propagateDeps: true
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: web}
  placement:
    clusterAffinity:
      clusterNames: [member1]
"#;

const TAKEOVER: &str = r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: takeover
spec:
  priority: 10
  preemption: Always
  propagateDeps: true
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: web}
  placement:
    clusterAffinity:
      clusterNames: [member2]
"#;

#[test]
fn dependencies_drift_preemption_and_policy_deletion() {
    let cp = ControlPlane::with_joined(2);
    cp.api.kubectl_stdin(&["apply", "-f", "-"], WEB).ok();
    let has = |cluster: &str, what: &str| cp.member(cluster, &["get", what]).code == 0;
    eventually(Duration::from_secs(30), "web and its ConfigMap in member1", || {
        let ready = cp.member(
            "member1",
            &["get", "deploy", "web", "-o", &jsonpath("{.status.readyReplicas}")],
        );
        (ready.stdout == "2" && has("member1", "cm/web-config")).then_some(())
    });
    assert!(!has("member2", "deploy/web") && !has("member2", "cm/web-config"));
    let required = cp.api.kubectl(&[
        "get",
        "rb",
        "web-config-configmap",
        "-o",
        &jsonpath("{.spec.requiredBy[0].name} {.spec.requiredBy[0].clusters[0].name}"),
    ]);
    assert_eq!(required.ok(), "web-deployment member1");
    // A change to the dependency reaches the member.
    cp.api.kubectl(&["patch", "cm", "web-config", "-p", r#"{"data":{"greeting":"bonjour"}}"#]).ok();
    eventually(Duration::from_secs(30), "the updated ConfigMap in member1", || {
        let out =
            cp.member("member1", &["get", "cm", "web-config", "-o", &jsonpath("{.data.greeting}")]);
        (out.stdout == "bonjour").then_some(())
    });
    // Drift: hand edits and deletions in the member are undone.
    cp.member("member1", &["scale", "deploy", "web", "--replicas=5"]);
    cp.member("member1", &["delete", "cm", "web-config"]);
    eventually(Duration::from_secs(30), "drift corrected", || {
        let replicas =
            cp.member("member1", &["get", "deploy", "web", "-o", &jsonpath("{.spec.replicas}")]);
        (replicas.stdout == "2" && has("member1", "cm/web-config")).then_some(())
    });
    // A higher-priority policy with preemption takes the template over: the workload and its
    // dependency move to member2.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], TAKEOVER).ok();
    let claim = || {
        cp.api
            .kubectl(&[
                "get",
                "deploy",
                "web",
                "-o",
                &jsonpath("{.metadata.annotations.propagationpolicy\\.karmada\\.io/name}"),
            ])
            .stdout
    };
    eventually(Duration::from_secs(30), "the workload moved to member2", || {
        let moved = claim() == "takeover"
            && has("member2", "deploy/web")
            && has("member2", "cm/web-config")
            && !has("member1", "deploy/web")
            && !has("member1", "cm/web-config");
        moved.then_some(())
    });
    eventually(Duration::from_secs(30), "the PreemptPolicySucceed Event", || {
        let out = cp.api.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web,reason=PreemptPolicySucceed",
            "-o",
            &jsonpath("{.items[*].message}"),
        ]);
        out.stdout
            .contains("Propagation policy(default/takeover) preempted propagation policy(default/web) successfully")
            .then_some(())
    });
    // Deleting the preempting policy hands the template back to the remaining one.
    cp.api.kubectl(&["delete", "pp", "takeover"]).ok();
    eventually(Duration::from_secs(30), "back on member1 under the first policy", || {
        (claim() == "web" && has("member1", "deploy/web") && !has("member2", "deploy/web"))
            .then_some(())
    });
    // Deleting the last policy unclaims the template; what was propagated stays.
    cp.api.kubectl(&["delete", "pp", "web"]).ok();
    eventually(Duration::from_secs(30), "template unclaimed", || claim().is_empty().then_some(()));
    let binding_claim =
        cp.api.kubectl(&["get", "rb", "web-deployment", "-o", &jsonpath("{.metadata}")]);
    assert!(
        !binding_claim.ok().contains("propagationpolicy.karmada.io/"),
        "{}",
        binding_claim.stdout
    );
    assert!(has("member1", "deploy/web"), "unclaiming does not remove what was propagated");
}

pub(crate) const NOT_READY_POLICY: &str = r#"
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterTaintPolicy
metadata:
  name: not-ready
spec:
  addOnConditions:
  - {conditionType: Ready, operator: In, statusValues: ["False", "Unknown"]}
  removeOnConditions:
  - {conditionType: Ready, operator: In, statusValues: ["True"]}
  taints:
  - {key: cluster.karmada.io/not-ready, effect: NoExecute}
"#;

pub(crate) const FAILOVER_POLICY: &str = r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: nginx-propagation
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: nginx}
  placement:
    clusterAffinity:
      clusterNames: [member1, member2]
    clusterTolerations:
    - {key: cluster.karmada.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
    replicaScheduling:
      replicaDivisionPreference: Weighted
      replicaSchedulingType: Divided
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 1}
        - {targetCluster: {clusterNames: [member2]}, weight: 1}
"#;

#[test]
fn workloads_leave_a_failed_cluster_and_its_stale_copy_is_removed_on_recovery() {
    let cp = ControlPlane::with_joined(2);
    cp.api.kubectl_stdin(&["apply", "-f", "-"], NOT_READY_POLICY).ok();
    cp.api
        .kubectl(&["apply", "-f", upstream("nginx").join("deployment.yaml").to_str().unwrap()])
        .ok();
    // The quick start's policy, tolerating a not-ready cluster for 2 s (instead of the
    // default 300 s).
    cp.api.kubectl_stdin(&["apply", "-f", "-"], FAILOVER_POLICY).ok();
    let tolerations = cp.api.kubectl(&[
        "get",
        "pp",
        "nginx-propagation",
        "-o",
        &jsonpath("{.spec.placement.clusterTolerations[*].tolerationSeconds}"),
    ]);
    assert_eq!(tolerations.ok(), "2 300", "the unreachable toleration is defaulted");
    let ready = |cluster: &str| {
        cp.member(cluster, &["get", "deploy", "nginx", "-o", &jsonpath("{.status.readyReplicas}")])
            .stdout
    };
    eventually(Duration::from_secs(30), "one replica in each member", || {
        (ready("member1") == "1" && ready("member2") == "1").then_some(())
    });
    // member1 fails: the policy taints it NoExecute, the taint manager evicts, and the
    // scheduler moves its replica to member2.
    cp.fault("member1", &["--unreachable", "true"]);
    let clusters = || {
        cp.api
            .kubectl(&["get", "rb", "nginx-deployment", "-o", &jsonpath("{.spec.clusters}")])
            .stdout
    };
    eventually(Duration::from_secs(60), "both replicas on member2", || {
        (clusters() == r#"[{"name":"member2","replicas":2}]"# && ready("member2") == "2")
            .then_some(())
    });
    let taints = cp.jsonpath("member1", "{.spec.taints[*].key}");
    assert!(taints.contains("cluster.karmada.io/not-ready"), "{taints}");
    let why = cp.api.kubectl(&[
        "get",
        "rb",
        "nginx-deployment",
        "-o",
        &jsonpath("{.status.conditions[?(@.type==\"Evicted\")].reason}: {.status.conditions[?(@.type==\"Evicted\")].message}"),
    ]);
    assert!(
        why.ok().starts_with("TaintUntolerated: evicted from cluster member1"),
        "{}",
        why.stdout
    );
    let reasons =
        cp.api.kubectl(&["get", "events.events.k8s.io", "-o", &jsonpath("{.items[*].reason}")]);
    assert!(reasons.ok().contains("EvictWorkloadFromClusterSucceed"), "{}", reasons.stdout);
    eventually(Duration::from_secs(30), "the eviction completes once member2 is healthy", || {
        let tasks = cp.api.kubectl(&[
            "get",
            "rb",
            "nginx-deployment",
            "-o",
            &jsonpath("{.spec.gracefulEvictionTasks}"),
        ]);
        matches!(tasks.stdout.as_str(), "" | "[]").then_some(())
    });
    eventually(Duration::from_secs(30), "nginx 2/2 on the control plane", || {
        let out = cp.api.kubectl(&["get", "deploy", "nginx", "--no-headers"]);
        out.stdout.contains("2/2").then_some(())
    });
    // member1 comes back: its stale copy is removed, nothing else is.
    cp.fault("member1", &["--clear"]);
    eventually(Duration::from_secs(60), "the stale copy on member1 removed", || {
        (cp.member("member1", &["get", "deploy", "nginx"]).code != 0).then_some(())
    });
    eventually(Duration::from_secs(30), "every taint lifted", || {
        cp.jsonpath("member1", "{.spec.taints[*].key}").is_empty().then_some(())
    });
    assert_eq!(ready("member2"), "2", "member2 keeps the workload");
    assert_eq!(clusters(), r#"[{"name":"member2","replicas":2}]"#);

    // A WorkloadRebalancer spreads the replicas back.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: apps.karmada.io/v1alpha1\nkind: WorkloadRebalancer\nmetadata:\n  name: spread-back\nspec:\n  workloads:\n  - {apiVersion: apps/v1, kind: Deployment, namespace: default, name: nginx}\n").ok();
    eventually(Duration::from_secs(30), "one replica in each member again", || {
        let placed = clusters();
        (placed.contains(r#"{"name":"member1","replicas":1}"#)
            && placed.contains(r#"{"name":"member2","replicas":1}"#)
            && ready("member1") == "1")
            .then_some(())
    });
    let result = cp.api.kubectl(&[
        "get",
        "workloadrebalancer",
        "spread-back",
        "-o",
        &jsonpath("{.status.observedWorkloads[0].result}"),
    ]);
    assert_eq!(result.ok(), "Successful");
    // Adding a workload to the rebalancer processes it (a missing one fails, naming why); the
    // list is kept sorted and the earlier result stays.
    cp.api
        .kubectl(&[
            "patch",
            "workloadrebalancer",
            "spread-back",
            "--type",
            "json",
            "-p",
            r#"[{"op": "add", "path": "/spec/workloads/-", "value": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "absent"}}]"#,
        ])
        .ok();
    eventually(Duration::from_secs(30), "the added workload observed", || {
        let out = cp.api.kubectl(&[
            "get",
            "workloadrebalancer",
            "spread-back",
            "-o",
            &jsonpath(
                "{range .status.observedWorkloads[*]}{.workload.name}={.result}/{.reason} {end}",
            ),
        ]);
        (out.stdout.trim() == "absent=Failed/ReferencedBindingNotFound nginx=Successful/")
            .then_some(())
    });

    // Application failover: a workload unhealthy in member1 for longer than tolerated leaves
    // it (purgeMode Directly: member1's copy goes at once).
    cp.api.kubectl_stdin(&["apply", "-f", "-"], APP_FAILOVER).ok();
    let app_ready = |cluster: &str| {
        cp.member(cluster, &["get", "deploy", "app", "-o", &jsonpath("{.status.readyReplicas}")])
            .stdout
    };
    eventually(Duration::from_secs(30), "app in both members", || {
        (app_ready("member1") == "1" && app_ready("member2") == "1").then_some(())
    });
    cp.fault("member1", &["--fail-workload", "default/app"]);
    eventually(Duration::from_secs(60), "app moved to member2", || {
        let placed =
            cp.api.kubectl(&["get", "rb", "app-deployment", "-o", &jsonpath("{.spec.clusters}")]);
        (placed.stdout == r#"[{"name":"member2","replicas":2}]"#
            && app_ready("member2") == "2"
            && cp.member("member1", &["get", "deploy", "app"]).code != 0)
            .then_some(())
    });
}

const APP_FAILOVER: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {app: app}
spec:
  replicas: 2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - {name: app, image: nginx}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: app
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: app}
  failover:
    application:
      decisionConditions: {tolerationSeconds: 2}
      purgeMode: Directly
  placement:
    clusterAffinity:
      clusterNames: [member1, member2]
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
"#;

/// Upstream's metadata layout, which tools and upstream's tests read: a policy's id is a label
/// and its name an annotation on the template and binding; a Work is named after its template
/// (`names.GenerateWorkName`) and carries its binding's id label and name annotations; the
/// member object carries the binding's and Work's ids and names. With a name longer than a
/// label value may be (63 characters), which must still propagate.
#[test]
fn long_names_propagate_with_upstreams_labels_and_annotations() {
    use karmada_api::names;
    let cp = ControlPlane::with_joined(1);
    let name = "a-deployment-whose-name-is-longer-than-sixty-three-characters-in-all";
    assert!(name.len() > 63);
    let manifest = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: long}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: long}}}}
  template:
    metadata: {{labels: {{app: long}}}}
    spec:
      containers: [{{name: c, image: nginx}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: a-policy-name-that-is-also-longer-than-sixty-three-characters-long}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  placement: {{clusterAffinity: {{clusterNames: [member1]}}}}
"#
    );
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok();
    let get = |args: &[&str]| -> serde_json::Value {
        let out = cp.api.kubectl(&[args, &["-o", "json"]].concat());
        serde_json::from_str(out.ok()).unwrap()
    };
    let work = names::work_name("Deployment", name, "default");
    let member_object = eventually(Duration::from_secs(30), "the deployment in member1", || {
        let out = cp.member("member1", &["get", "deploy", name, "-o", "json"]);
        (out.code == 0).then(|| serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap())
    });
    let policy =
        get(&["get", "pp", "a-policy-name-that-is-also-longer-than-sixty-three-characters-long"]);
    let policy_id = policy["metadata"]["labels"][names::PP_PERMANENT_ID_LABEL].as_str().unwrap();
    let template = get(&["get", "deploy", name]);
    let binding_name = names::binding_name("Deployment", name);
    let binding = get(&["get", "rb", &binding_name]);
    let binding_id = binding["metadata"]["labels"][names::RB_PERMANENT_ID_LABEL].as_str().unwrap();
    let w = get(&["get", "work", "-n", "karmada-es-member1", &work]);
    let work_id = w["metadata"]["labels"][names::WORK_PERMANENT_ID_LABEL].as_str().unwrap();

    for (what, object) in [("template", &template), ("binding", &binding)] {
        let meta = &object["metadata"];
        assert_eq!(meta["labels"][names::PP_PERMANENT_ID_LABEL], policy_id, "{what}");
        assert_eq!(
            meta["annotations"][names::PP_NAME_ANNOTATION],
            "a-policy-name-that-is-also-longer-than-sixty-three-characters-long",
            "{what}"
        );
        assert_eq!(meta["annotations"][names::PP_NAMESPACE_ANNOTATION], "default", "{what}");
        assert!(meta["labels"].get(names::LEGACY_PP_NAME_LABEL).is_none(), "{what}: no name label");
    }
    assert_eq!(w["metadata"]["labels"][names::RB_PERMANENT_ID_LABEL], binding_id);
    assert_eq!(w["metadata"]["annotations"][names::RB_NAME_ANNOTATION], binding_name.as_str());
    assert_eq!(w["metadata"]["annotations"][names::RB_NAMESPACE_ANNOTATION], "default");
    let meta = &member_object["metadata"];
    assert_eq!(meta["labels"][names::RB_PERMANENT_ID_LABEL], binding_id);
    assert_eq!(meta["labels"][names::WORK_PERMANENT_ID_LABEL], work_id);
    assert_eq!(meta["labels"][names::PP_PERMANENT_ID_LABEL], policy_id);
    assert_eq!(meta["labels"][names::MANAGED_LABEL], "true");
    assert_eq!(meta["annotations"][names::WORK_NAME_ANNOTATION], work.as_str());
    assert_eq!(meta["annotations"][names::WORK_NAMESPACE_ANNOTATION], "karmada-es-member1");
    assert_eq!(meta["annotations"][names::RB_NAME_ANNOTATION], binding_name.as_str());
    assert_eq!(meta["annotations"][names::TEMPLATE_UID_ANNOTATION], template["metadata"]["uid"]);
    // The Work is written once, not rewritten forever (its manifest as the API server marks it).
    let generation = w["metadata"]["generation"].clone();
    std::thread::sleep(Duration::from_secs(3));
    let again = get(&["get", "work", "-n", "karmada-es-member1", &work]);
    assert_eq!(again["metadata"]["generation"], generation, "the Work keeps being rewritten");
}

/// Objects written by an earlier karmada-rs (claim labels on templates, Works named
/// `<binding>-<hash>` with binding-name labels) are brought to upstream's layout: the legacy
/// labels go, the old Work is removed without deleting what it applied in the member.
#[test]
fn an_earlier_versions_claims_and_work_names_are_migrated_without_touching_members() {
    let cp = ControlPlane::with_joined(1);
    let manifest = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {a: "1"}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: settings, namespace: default}
spec:
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: settings}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], manifest).ok();
    let member_uid = || {
        cp.member("member1", &["get", "cm", "settings", "-o", &jsonpath("{.metadata.uid}")]).stdout
    };
    let uid = eventually(Duration::from_secs(30), "settings in member1", || {
        Some(member_uid()).filter(|u| !u.is_empty())
    });
    // What an earlier version left: a claim label on the template, and a second Work for the
    // same object under the old name with binding-name labels.
    cp.api.kubectl(&["label", "cm", "settings", "propagationpolicy.karmada.io/name=settings"]).ok();
    let new_name = karmada_api::names::work_name("ConfigMap", "settings", "default");
    let work =
        cp.api.kubectl(&["get", "work", "-n", "karmada-es-member1", &new_name, "-o", "json"]);
    let mut old: serde_json::Value = serde_json::from_str(work.ok()).unwrap();
    let meta = old["metadata"].as_object_mut().unwrap();
    for field in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"] {
        meta.remove(field);
    }
    meta.remove("annotations");
    meta.insert("name".into(), "settings-configmap-0a1b2c3d".into());
    meta.insert(
        "labels".into(),
        serde_json::json!({"resourcebinding.karmada.io/name": "settings-configmap",
            "resourcebinding.karmada.io/namespace": "default", "karmada.io/managed": "true"}),
    );
    old.as_object_mut().unwrap().remove("status");
    cp.api.kubectl_stdin(&["create", "-f", "-"], &old.to_string()).ok();

    eventually(Duration::from_secs(30), "the old Work removed, the legacy label gone", || {
        let gone = cp
            .api
            .kubectl(&["get", "work", "-n", "karmada-es-member1", "settings-configmap-0a1b2c3d"])
            .code
            != 0;
        let label = cp
            .api
            .kubectl(&[
                "get",
                "cm",
                "settings",
                "-o",
                &jsonpath("{.metadata.labels.propagationpolicy\\.karmada\\.io/name}"),
            ])
            .stdout;
        (gone && label.is_empty()).then_some(())
    });
    // The member's object was never deleted (same uid), and the new Work still manages it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(member_uid(), uid);
    let managed = cp.member(
        "member1",
        &["get", "cm", "settings", "-o", &jsonpath("{.metadata.labels.karmada\\.io/managed}")],
    );
    assert_eq!(
        managed.stdout, "true",
        "the retired Work did not let go of what the new one manages"
    );
    cp.api
        .kubectl(&["patch", "cm", "settings", "--type=merge", "-p", r#"{"data":{"a":"2"}}"#])
        .ok();
    eventually(Duration::from_secs(30), "an update still reaches member1", || {
        let a = cp.member("member1", &["get", "cm", "settings", "-o", &jsonpath("{.data.a}")]);
        (a.stdout == "2").then_some(())
    });
    assert_eq!(member_uid(), uid);
}

/// A policy that suspends dispatching keeps its Works from the members and says so as
/// upstream does (the Work's `Dispatching` condition False, a `WorkDispatching` Event); an
/// empty suspension resumes it, and a JSON patch may `replace` a field the client never sent
/// (as with Kubernetes, the field is set).
#[test]
fn suspended_dispatching_holds_works_and_resumes() {
    let cp = ControlPlane::with_joined(1);
    let manifest = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: held}
data: {k: v}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: held}
spec:
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: held}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
  suspension: {dispatching: true}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], manifest).ok();
    let work = karmada_api::names::work_name("ConfigMap", "held", "default");
    let condition = |field: &str| {
        cp.api
            .kubectl(&[
                "get",
                "work",
                "-n",
                "karmada-es-member1",
                &work,
                "-o",
                &jsonpath(&format!("{{.status.conditions[?(@.type==\"Dispatching\")].{field}}}")),
            ])
            .stdout
    };
    eventually(Duration::from_secs(30), "Dispatching=False", || {
        (condition("status") == "False").then_some(())
    });
    assert_eq!(condition("reason"), "SuspendDispatching");
    let selector = format!("involvedObject.name={work}");
    eventually(Duration::from_secs(30), "the WorkDispatching Event", || {
        let out = cp.api.kubectl(&[
            "get",
            "events",
            "-n",
            "karmada-es-member1",
            "--field-selector",
            &selector,
            "-o",
            &jsonpath("{.items[*].reason}: {.items[*].message}"),
        ]);
        (out.stdout == "WorkDispatching: Work dispatching is in a suspended state.").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(cp.member("member1", &["get", "cm", "held"]).code, 0, "nothing dispatched");
    // Resume: replace a field that was never sent.
    let patch = r#"[{"op": "replace", "path": "/spec/suspension", "value": {}}, {"op": "replace", "path": "/spec/propagateDeps", "value": false}]"#;
    cp.api.kubectl(&["patch", "pp", "held", "--type", "json", "-p", patch]).ok();
    eventually(Duration::from_secs(30), "the ConfigMap in member1", || {
        (cp.member("member1", &["get", "cm", "held"]).code == 0).then_some(())
    });
    eventually(Duration::from_secs(30), "Dispatching=True", || {
        (condition("status") == "True").then_some(())
    });
    assert_eq!(condition("message"), "Work is being dispatched to member clusters.");
}

/// Templates upstream propagates that are easy to get wrong: a RoleBinding whose Role does
/// not exist yet (claiming it is an update Kubernetes allows only with `bind`), a Pod, and a
/// custom resource whose group happens to end in `karmada.io`.
#[test]
fn role_bindings_pods_and_user_karmada_io_groups_propagate() {
    let cp = ControlPlane::with_joined(1);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: foos.example.karmada.io}
spec:
  group: example.karmada.io
  scope: Namespaced
  names: {kind: Foo, plural: foos, singular: foo}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: foos}
spec:
  resourceSelectors: [{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: foos.example.karmada.io}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], crd).ok();
    eventually(Duration::from_secs(30), "the CRD in member1", || {
        (cp.member("member1", &["get", "crd", "foos.example.karmada.io"]).code == 0).then_some(())
    });
    let templates = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "system:test.binding"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "system:test.not-yet"}
---
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  containers:
  - {name: web, image: nginx, ports: [{name: web, containerPort: 80}]}
  - {name: side, image: busybox, command: [sleep, "3600"], ports: [{name: web, containerPort: 81}]}
---
apiVersion: example.karmada.io/v1alpha1
kind: Foo
metadata: {name: foo}
spec: {size: 1}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: all-three}
spec:
  resourceSelectors:
  - {apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, name: "system:test.binding"}
  - {apiVersion: v1, kind: Pod, name: solo}
  - {apiVersion: example.karmada.io/v1alpha1, kind: Foo, name: foo}
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], templates).ok();
    for (kind, name) in [("rolebinding", "system:test.binding"), ("pod", "solo"), ("foo", "foo")] {
        eventually(Duration::from_secs(30), &format!("{kind} {name} in member1"), || {
            (cp.member("member1", &["get", kind, name]).code == 0).then_some(())
        });
    }
}

/// A ConfigMap two workloads depend on, under policies that disagree: its attached binding
/// takes the safer union (Overwrite if either overwrites, preserved if either preserves) and a
/// `DependencyPolicyConflict` Event says what disagrees, as upstream's distributor does.
#[test]
fn a_shared_dependency_resolves_conflicting_policies() {
    let cp = ControlPlane::with_joined(1);
    let workload = |name: &str, resolution: &str, preserve: bool| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: nginx}}]
      volumes: [{{name: shared, configMap: {{name: shared}}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}}}
spec:
  propagateDeps: true
  conflictResolution: {resolution}
  preserveResourcesOnDeletion: {preserve}
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  placement: {{clusterAffinity: {{clusterNames: [member1]}}}}
"#
        )
    };
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: shared}}\ndata: {{k: v}}\n---{}---{}",
        workload("alpha", "Overwrite", true),
        workload("beta", "Abort", false)
    );
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok();
    let settings = || {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                "shared-configmap",
                "-o",
                &jsonpath("{.spec.conflictResolution} {.spec.preserveResourcesOnDeletion} {.spec.requiredBy[*].name}"),
            ])
            .stdout
    };
    eventually(Duration::from_secs(30), "the attached binding's resolved settings", || {
        (settings() == "Overwrite true alpha-deployment beta-deployment").then_some(())
    });
    let events = |name: &str| {
        cp.api
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={name}"),
                "-o",
                &jsonpath("{range .items[*]}{.reason}: {.message}{\"\\n\"}{end}"),
            ])
            .stdout
    };
    let conflict = "DependencyPolicyConflict: Dependency policy conflict detected: ConflictResolution conflicted (Overwrite vs Abort); PreserveResourcesOnDeletion conflicted (true vs false).";
    eventually(Duration::from_secs(30), "the conflict Event", || {
        events("shared-configmap").contains(conflict).then_some(())
    });
    let found = "GetDependenciesSucceed: Get dependencies([{APIVersion:v1 Kind:ConfigMap Namespace:default Name:shared LabelSelector:<nil>}]) succeed.";
    eventually(Duration::from_secs(30), "GetDependenciesSucceed", || {
        events("alpha").contains(found).then_some(())
    });
    eventually(Duration::from_secs(30), "SyncScheduleResultToDependenciesSucceed", || {
        events("beta-deployment")
            .contains("SyncScheduleResultToDependenciesSucceed: Sync schedule results to dependencies succeed.")
            .then_some(())
    });
    // The policies agree again: the binding follows.
    let settings_of = |policy: &str, resolution: &str, preserve: bool| {
        let patch = format!(
            r#"{{"spec":{{"conflictResolution":"{resolution}","preserveResourcesOnDeletion":{preserve}}}}}"#
        );
        cp.api.kubectl(&["patch", "pp", policy, "--type", "merge", "-p", &patch]).ok();
    };
    settings_of("beta", "Overwrite", true);
    settings_of("alpha", "Abort", false);
    settings_of("beta", "Abort", false);
    eventually(Duration::from_secs(30), "Abort and not preserved once both say so", || {
        (settings() == "Abort false alpha-deployment beta-deployment").then_some(())
    });
}

/// A NodePort Service gets its node port from the control plane (as from kube-apiserver), and
/// every member serves it on that same port; cluster IPs stay each member's own.
#[test]
fn node_ports_are_the_same_in_every_member() {
    let cp = ControlPlane::with_joined(2);
    let manifest = r#"
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: default}
spec:
  type: NodePort
  selector: {app: edge}
  ports: [{name: http, port: 80}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: edge, namespace: default}
spec:
  resourceSelectors: [{apiVersion: v1, kind: Service, name: edge}]
  placement: {clusterAffinity: {clusterNames: [member1, member2]}}
"#;
    cp.api.kubectl_stdin(&["apply", "-f", "-"], manifest).ok();
    let port =
        cp.api.kubectl(&["get", "svc", "edge", "-o", &jsonpath("{.spec.ports[0].nodePort}")]);
    let port = port.ok().to_owned();
    assert!(port.parse::<u16>().is_ok_and(|p| (30000..=32767).contains(&p)), "{port}");
    for cluster in ["member1", "member2"] {
        let seen = eventually(Duration::from_secs(30), "the Service in the member", || {
            let out = cp.member(
                cluster,
                &[
                    "get",
                    "svc",
                    "edge",
                    "-o",
                    &jsonpath("{.spec.ports[0].nodePort} {.spec.clusterIP}"),
                ],
            );
            (out.code == 0 && !out.stdout.is_empty()).then_some(out.stdout)
        });
        let (member_port, ip) = seen.split_once(' ').unwrap_or_default();
        assert_eq!(member_port, port, "{cluster}");
        assert!(ip.starts_with("10."), "{cluster}: {seen}");
        // The control plane's cluster IP is not sent: each member allocates its own (an
        // existing member Service keeps its own, which is immutable).
        let manifest = cp.api.kubectl(&[
            "get",
            "work",
            "-n",
            &format!("karmada-es-{cluster}"),
            &karmada_api::names::work_name("Service", "edge", "default"),
            "-o",
            &jsonpath("{.spec.workload.manifests[0].spec}"),
        ]);
        assert!(
            manifest.ok().contains("nodePort") && !manifest.stdout.contains("clusterIP"),
            "{}",
            manifest.stdout
        );
    }
}

/// `activationPreference: Lazy`: a policy's creation and changes reach a template only when
/// the template itself next changes; a policy made immediate again takes effect at once.
#[test]
fn a_lazy_policy_takes_effect_when_the_template_changes() {
    let cp = ControlPlane::with_joined(2);
    let in_member = |m: &str| cp.member(m, &["get", "deploy", "lazy"]).code == 0;
    // Long enough for a propagation that should not happen to have happened (they take
    // well under a second here).
    let settle = || std::thread::sleep(Duration::from_secs(3));
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: lazy, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: lazy}}
  template:
    metadata: {labels: {app: lazy}}
    spec: {containers: [{name: web, image: nginx}]}
"#,
        )
        .ok();
    let policy = |cluster: &str, lazy: bool| {
        let preference = if lazy { "activationPreference: Lazy" } else { "" };
        format!(
            r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: lazy, namespace: default}}
spec:
  {preference}
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: lazy}}]
  placement: {{clusterAffinity: {{clusterNames: [{cluster}]}}}}
"#
        )
    };
    // Created after the template: it is claimed, not propagated.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &policy("member1", true)).ok();
    eventually(Duration::from_secs(20), "the template claimed", || {
        let labels =
            cp.api.kubectl(&["get", "deploy", "lazy", "-o", "jsonpath={.metadata.labels}"]);
        labels.stdout.contains("propagationpolicy.karmada.io/permanent-id").then_some(())
    });
    settle();
    assert!(!in_member("member1"), "a lazy policy waits for the template to change");
    // The template changes: now it goes.
    cp.api.kubectl(&["label", "deploy", "lazy", "tier=web"]).ok();
    eventually(Duration::from_secs(20), "in member1", || in_member("member1").then_some(()));
    // The lazy policy changes: nothing moves until the template does.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &policy("member2", true)).ok();
    settle();
    assert!(in_member("member1") && !in_member("member2"), "the lazy change waits");
    cp.api.kubectl(&["scale", "deploy", "lazy", "--replicas=2"]).ok();
    eventually(Duration::from_secs(20), "moved to member2", || {
        (in_member("member2") && !in_member("member1")).then_some(())
    });
    // Immediate again, to member1: at once.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &policy("member1", false)).ok();
    eventually(Duration::from_secs(20), "back in member1", || {
        (in_member("member1") && !in_member("member2")).then_some(())
    });
}

/// `schedulePriority` from a Kubernetes PriorityClass: its value on the binding; a class that
/// does not exist: no binding.
#[test]
fn a_policys_priority_class_sets_its_bindings_priority() {
    let cp = ControlPlane::with_joined(1);
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: important}
value: 1000
---
apiVersion: v1
kind: ConfigMap
metadata: {name: first, namespace: default}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: second, namespace: default}
data: {a: "2"}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: important, namespace: default}
spec:
  schedulePriority: {priorityClassSource: KubePriorityClass, priorityClassName: important}
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: first}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: missing, namespace: default}
spec:
  schedulePriority: {priorityClassSource: KubePriorityClass, priorityClassName: no-such-class}
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: second}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#,
        )
        .ok();
    let priority = eventually(Duration::from_secs(20), "the binding's priority", || {
        let out = cp.api.kubectl(&[
            "get",
            "rb",
            "first-configmap",
            "-o",
            "jsonpath={.spec.schedulePriority.priority}",
        ]);
        (out.code == 0 && !out.stdout.is_empty()).then_some(out.stdout)
    });
    assert_eq!(priority, "1000");
    eventually(Duration::from_secs(20), "an ApplyPolicyFailed Event naming the class", || {
        let events = cp.api.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=second,reason=ApplyPolicyFailed",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        events.stdout.contains("no-such-class").then_some(())
    });
    assert_ne!(cp.api.kubectl(&["get", "rb", "second-configmap"]).code, 0, "no binding");
}

/// `placement.workloadAffinity`: workloads of one anti-affinity group land in different
/// clusters, those of one affinity group in the same one, and a third member of the
/// anti-affinity group finds no cluster left (NoClusterFit, with upstream's reason).
#[test]
fn workload_affinity_groups_co_locate_and_keep_apart() {
    let cp = ControlPlane::with_joined(2);
    let deployment = |name: &str, labels: &str| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default, labels: {{{labels}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
---"#
        )
    };
    let policy = |name: &str, selector: &str, term: &str, key: &str| {
        format!(
            r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, labelSelector: {{matchLabels: {{{selector}}}}}}}]
  placement:
    workloadAffinity: {{{term}: {{groupByLabelKey: {key}}}}}
    spreadConstraints: [{{spreadByField: cluster, minGroups: 1, maxGroups: 1}}]
---"#
        )
    };
    let manifests = [
        policy("apart", "tier: ha", "antiAffinity", "ha.group"),
        policy("together", "tier: app", "affinity", "app.group"),
        deployment("ha-1", "tier: ha, ha.group: db"),
        deployment("ha-2", "tier: ha, ha.group: db"),
        deployment("app-1", "tier: app, app.group: shop"),
        deployment("app-2", "tier: app, app.group: shop"),
        deployment("app-3", "tier: app, app.group: shop"),
    ]
    .concat();
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &manifests).ok();
    let clusters = |name: &str| {
        cp.api
            .kubectl(&[
                "get",
                "rb",
                &format!("{name}-deployment"),
                "-o",
                "jsonpath={.spec.clusters[*].name}",
            ])
            .stdout
    };
    let (a, b) = eventually(Duration::from_secs(30), "both ha workloads scheduled", || {
        let (a, b) = (clusters("ha-1"), clusters("ha-2"));
        (!a.is_empty() && !b.is_empty()).then_some((a, b))
    });
    assert_ne!(a, b, "one anti-affinity group, two clusters");
    let shop = eventually(Duration::from_secs(30), "the shop workloads scheduled", || {
        let all: Vec<String> = ["app-1", "app-2", "app-3"].iter().map(|n| clusters(n)).collect();
        all.iter().all(|c| !c.is_empty()).then_some(all)
    });
    assert!(shop.iter().all(|c| *c == shop[0]), "one affinity group, one cluster: {shop:?}");
    let groups = cp.api.kubectl(&[
        "get",
        "rb",
        "app-1-deployment",
        "-o",
        "jsonpath={.spec.workloadAffinityGroups}",
    ]);
    assert_eq!(groups.stdout, r#"{"affinityGroup":"app.group=shop"}"#);
    // A third of the anti-affinity group: both clusters are taken.
    cp.api.kubectl_stdin(&["apply", "-f", "-"], &deployment("ha-3", "tier: ha, ha.group: db")).ok();
    eventually(Duration::from_secs(30), "ha-3 unschedulable", || {
        let condition = cp.api.kubectl(&["get", "rb", "ha-3-deployment", "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Scheduled")].reason}: {.status.conditions[?(@.type=="Scheduled")].message}"#]);
        (condition.stdout
            == "NoClusterFit: 0/2 clusters are available: 2 cluster already has workload with the same anti-affinity group.")
            .then_some(())
    });
    // An invalid group key is refused, naming the field.
    let bad = cp
        .api
        .kubectl_stdin(&["apply", "-f", "-"], &policy("bad", "tier: x", "affinity", "-nope-"));
    assert!(
        bad.fails().contains("spec.placement.workloadAffinity.affinity.groupByLabelKey"),
        "{}",
        bad.stderr
    );
}

/// `dependentOverrides`: a policy takes effect only once the overrides it names exist; the
/// template then propagates with them applied.
#[test]
fn a_policy_waits_for_its_dependent_overrides() {
    let cp = ControlPlane::with_joined(1);
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {mode: plain}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: settings, namespace: default}
spec:
  dependentOverrides: [settings-override]
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: settings}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
"#,
        )
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    let binding = cp.api.kubectl(&["get", "rb", "settings-configmap"]);
    assert_ne!(binding.code, 0, "no binding while the override is missing");
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: settings-override, namespace: default}
spec:
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: settings}]
  overrideRules:
  - targetCluster: {clusterNames: [member1]}
    overriders:
      plaintext: [{path: /data/mode, operator: replace, value: member}]
"#,
        )
        .ok();
    eventually(Duration::from_secs(20), "the ConfigMap in member1, overridden", || {
        let mode = cp.member("member1", &["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]);
        (mode.stdout == "member").then_some(())
    });
}
