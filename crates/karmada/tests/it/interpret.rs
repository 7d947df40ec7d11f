//! Resource interpreter customizations end to end with the real binaries: the API server
//! refuses a customization whose script does not compile, and `karmadactl interpret` checks and
//! runs rules from files and from the control plane, printing as upstream's.

use crate::harness::{ApiServer, Out};

fn karmadactl(api: &ApiServer, args: &[&str]) -> Out {
    crate::plane::karmadactl(&api.kubeconfig, args)
}

const CUSTOMIZATION: &str = r#"apiVersion: config.karmada.io/v1alpha1
kind: ResourceInterpreterCustomization
metadata:
  name: replicated
spec:
  target:
    apiVersion: apps.example.io/v1
    kind: Replicated
  customizations:
    replicaResource:
      luaScript: |
        local kube = require("kube")
        function GetReplicas(obj)
          return obj.spec.size, kube.accuratePodRequirements(obj.spec.template)
        end
    retention:
      luaScript: |
        function Retain(desired, observed)
          desired.spec.paused = observed.spec.paused
          return desired
        end
    healthInterpretation:
      luaScript: |
        function InterpretHealth(obj)
          return obj.status ~= nil and obj.status.ready == obj.spec.size
        end
"#;

const OBJECT: &str = r#"apiVersion: apps.example.io/v1
kind: Replicated
metadata:
  name: shop
  namespace: demo
spec:
  size: 3
  paused: false
  template:
    spec:
      containers:
      - name: c
        image: shop
        resources:
          requests:
            cpu: 200m
status:
  ready: 3
"#;

#[test]
fn karmadactl_interpret_checks_and_runs_customizations() {
    let api = ApiServer::start("memory");
    let customization = api.file("customization.yaml", CUSTOMIZATION);
    let object = api.file("object.yaml", OBJECT);

    let out = karmadactl(&api, &["interpret", "-f", &customization, "--check"]);
    let text = out.ok();
    assert!(
        text.contains("SOURCE: replicated")
            && text.contains("TARGET: apps.example.io/v1 Replicated"),
        "{text}"
    );
    for (rule, verdict) in [
        ("Retain", "PASS"),
        ("InterpretReplica", "PASS"),
        ("InterpretHealth", "PASS"),
        ("AggregateStatus", "UNSET"),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{rule}:")))
            .unwrap_or_else(|| panic!("{rule} in {text}"));
        assert!(line.ends_with(verdict), "{line}");
    }

    // One operation of the customization file on the object.
    let run = |operation: &str| {
        karmadactl(
            &api,
            &[
                "interpret",
                "-f",
                &customization,
                "--operation",
                operation,
                "--observed-file",
                &object,
            ],
        )
    };
    let out = run("interpretReplica");
    assert_eq!(
        out.ok(),
        "---\n# [1/2] replica:\n3\n---\n# [2/2] requires:\nresourceRequest:\n  cpu: 200m\n"
    );
    let out = run("InterpretHealth");
    assert_eq!(out.ok(), "---\n# [1/1] healthy:\ntrue\n");
    let out = run("aggregateStatus");
    assert_eq!(out.stderr, "Execute AggregateStatus error: rule is not enabled\n");

    // A script that does not compile: --check fails, and the control plane refuses it.
    let broken = api.file(
        "broken.yaml",
        &CUSTOMIZATION.replace("return obj.spec.size,", "return obj.spec.size +,"),
    );
    let out = karmadactl(&api, &["interpret", "-f", &broken, "--check"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("InterpretReplica:") && l.contains("ERROR: replicaResource:")),
        "{}",
        out.stdout
    );
    let refused = api.kubectl(&["apply", "-f", &broken]);
    let message = refused.fails();
    assert!(
        message.contains("spec.customizations.replicaResource.luaScript")
            && message.contains("InterpreterOperation(InterpretReplica) Lua script error"),
        "{message}"
    );

    // Stored on the control plane, the customization is run by name.
    api.kubectl(&["apply", "-f", &customization]).ok();
    let observed = api.file("observed.yaml", &OBJECT.replace("paused: false", "paused: true"));
    let out = karmadactl(
        &api,
        &[
            "interpret",
            "replicated",
            "--operation",
            "retain",
            "--desired-file",
            &object,
            "--observed-file",
            &observed,
        ],
    );
    let text = out.ok();
    assert!(text.starts_with("---\n# [1/1] retained:\n"), "{text}");
    assert!(text.contains("paused: true"), "{text}");

    // A second customization of the kind may not set an operation the first sets (as
    // upstream's webhook), but may set others.
    let renamed = CUSTOMIZATION.replace("name: replicated", "name: rival");
    let rival = api.file("rival.yaml", renamed.split("    healthInterpretation:").next().unwrap());
    let refused = api.kubectl(&["apply", "-f", &rival]);
    let message = refused.fails();
    assert!(
        message.contains("spec.customizations.retention")
            && message.contains("conflicting with InterpreterOperation(Retain) of existing ResourceInterpreterCustomization(replicated)"),
        "{message}"
    );
    let status_only = r#"apiVersion: config.karmada.io/v1alpha1
kind: ResourceInterpreterCustomization
metadata:
  name: status-only
spec:
  target:
    apiVersion: apps.example.io/v1
    kind: Replicated
  customizations:
    statusReflection:
      luaScript: |
        function ReflectStatus(obj) return obj.status end
"#;
    api.kubectl(&["apply", "-f", &api.file("status-only.yaml", status_only)]).ok();
}
