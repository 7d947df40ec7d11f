//! Customizations bundled for well-known third-party kinds (Flink, Volcano, ...), written for
//! karmada-rs as ordinary `ResourceInterpreterCustomization` objects (the YAML files under
//! `crates/interpreter/thirdparty/`, one per kind). They rank below the user's customizations
//! and interpreter webhooks and above the built-in rules, as upstream's bundled ones do; a user
//! customization for the same kind and operation replaces them.

use std::sync::LazyLock;

use karmada_api::config::ResourceInterpreterCustomization;

use crate::Customizations;

/// Each bundled file: its path under `thirdparty/` and its text (listed by `build.rs`).
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled customizations, parsed (a file that does not parse is a build defect, caught
/// by this module's tests, and is left out rather than taking the process down).
pub fn list() -> Vec<ResourceInterpreterCustomization> {
    FILES.iter().filter_map(|(_, text)| serde_yaml::from_str(text).ok()).collect()
}

static BUNDLED: LazyLock<Customizations> = LazyLock::new(|| Customizations::new(&list()));

/// The bundled customizations' rules.
pub fn bundled() -> &'static Customizations {
    &BUNDLED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operation;

    #[test]
    fn every_bundled_customization_parses_compiles_and_targets_its_own_kind() {
        let mut targets = std::collections::BTreeSet::new();
        for (path, text) in FILES {
            let c: ResourceInterpreterCustomization =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
            let target = (c.spec.target.api_version.clone(), c.spec.target.kind.clone());
            assert!(path.ends_with(&format!("/{}.yaml", target.1)), "{path} targets {target:?}");
            assert!(targets.insert(target.clone()), "{path}: {target:?} bundled twice");
            let name = c.metadata.name.clone().unwrap_or_default();
            assert!(name.starts_with("thirdparty-"), "{path}: named {name:?}");
            let mut rules = 0;
            for op in Operation::CUSTOMIZABLE {
                if let Some(script) = c.spec.customizations.script(&op) {
                    let (chunk, function) = op.rule().unwrap();
                    crate::check_syntax(script, chunk)
                        .unwrap_or_else(|e| panic!("{path}: {chunk}: {e}"));
                    assert!(
                        script.contains(&format!("function {function}(")),
                        "{path}: {chunk} defines no {function}"
                    );
                    rules += 1;
                }
            }
            assert!(rules > 0, "{path} has no rules");
        }
        assert_eq!(list().len(), FILES.len());
    }

    fn status_item(
        cluster: &str,
        status: serde_json::Value,
    ) -> karmada_api::work::AggregatedStatusItem {
        serde_json::from_value(
            serde_json::json!({"clusterName": cluster, "status": status, "applied": true}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn bundled_rules_interpret_well_known_kinds() {
        use serde_json::json;
        let interpreter = crate::Interpreter::default();
        // Volcano: one component per task, minAvailable of each, requests from its template.
        let job = json!({"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
            "metadata": {"name": "train", "namespace": "ml"},
            "spec": {"tasks": [
                {"name": "ps", "replicas": 2, "minAvailable": 1, "template": {"spec": {"containers": [
                    {"name": "c", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}}},
                {"replicas": 4, "template": {"spec": {"containers": [
                    {"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}}}]}});
        let components = interpreter.get_components(&job).await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&components).unwrap(),
            json!([{"name": "ps", "replicas": 1, "replicaRequirements": {"resourceRequest": {"cpu": "2", "memory": "4Gi"}}},
                   {"name": "task-1", "replicas": 1, "replicaRequirements": {"resourceRequest": {"cpu": "500m"}}}])
        );
        // CloneSet: replicas divided and revised, counters added up, health from the counters.
        let cloneset = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "web", "namespace": "shop", "generation": 3},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "c", "resources": {"requests": {"cpu": "250m"}}}]}}}});
        let (replicas, _) = interpreter.get_replicas(&cloneset).await.unwrap().unwrap();
        assert_eq!(replicas, 5);
        let revised = interpreter.revise_replica(&cloneset, 2).await.unwrap();
        assert_eq!(revised["spec"]["replicas"], 2);
        let member = |ready| {
            json!({"replicas": 2, "readyReplicas": ready, "availableReplicas": ready,
            "updatedReplicas": 2, "generation": 1, "observedGeneration": 1, "resourceTemplateGeneration": 3})
        };
        let status = interpreter
            .aggregate_status(
                &cloneset,
                &[status_item("m1", member(2)), status_item("m2", member(1))],
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&status["replicas"], &status["readyReplicas"], &status["observedGeneration"]),
            (&json!(4), &json!(3), &json!(3)),
            "{status}"
        );
        let mut observed = cloneset.clone();
        observed["status"] =
            json!({"observedGeneration": 3, "updatedReplicas": 5, "availableReplicas": 4});
        assert_eq!(interpreter.health(&observed).await.unwrap(), Some(false), "one not available");
        // Flux: Ready after a successful reconciliation; the Secrets it needs follow.
        let repo = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "flux"},
            "spec": {"secretRef": {"name": "git-auth"}, "verify": {"secretRef": {"name": "git-auth"}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}]}});
        assert_eq!(interpreter.health(&repo).await.unwrap(), Some(true));
        let dependencies = interpreter.dependencies(&repo).await.unwrap();
        let names: Vec<(&str, &str)> =
            dependencies.iter().map(|d| (d.kind.as_str(), d.name.as_str())).collect();
        assert_eq!(names, [("Secret", "git-auth")], "each once");
        // Spark: a pod's memory with Spark's overhead (non-JVM: 40 %, at least 384 MiB).
        let app = json!({"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": "etl", "namespace": "data"},
            "spec": {"type": "Python", "driver": {"cores": 1, "memory": "512m"},
                "executor": {"cores": 2, "memory": "2g", "instances": 3}}});
        let components = interpreter.get_components(&app).await.unwrap().unwrap();
        let memory: Vec<(String, i32, String)> = components
            .iter()
            .map(|c| {
                let request = &c.replica_requirements.as_ref().unwrap().resource_request;
                (c.name.clone(), c.replicas, request["memory"].0.clone())
            })
            .collect();
        assert_eq!(
            memory,
            [
                ("driver".to_string(), 1, "896Mi".to_string()),
                // 2867.2 MiB: not whole bytes, so in milli-bytes as Kubernetes prints it.
                ("executor".to_string(), 3, "3006477107200m".to_string()),
            ],
            "512Mi + 384Mi; 2Gi + 40 %"
        );
        // RayService: the head is one replica; workers shared in proportion.
        let service = json!({"apiVersion": "ray.io/v1", "kind": "RayService",
            "metadata": {"name": "serve", "namespace": "ml"},
            "spec": {"rayClusterConfig": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "head"}]}}},
                "workerGroupSpecs": [{"groupName": "cpu", "replicas": 3}, {"groupName": "gpu", "replicas": 1}]}}});
        let revised = interpreter.revise_replica(&service, 9).await.unwrap();
        let groups = &revised["spec"]["rayClusterConfig"]["workerGroupSpecs"];
        assert_eq!((&groups[0]["replicas"], &groups[1]["replicas"]), (&json!(6), &json!(2)));
    }

    #[tokio::test]
    async fn a_user_customization_replaces_the_bundled_rule() {
        use serde_json::json;
        let interpreter = crate::Interpreter::default();
        let cloneset = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 5}});
        let mine: ResourceInterpreterCustomization = serde_json::from_value(json!({
            "apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
            "metadata": {"name": "mine"},
            "spec": {"target": {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet"},
                "customizations": {"replicaResource": {"luaScript": "function GetReplicas(obj)\n  return 7\nend"}}}}))
        .unwrap();
        interpreter.load([&mine]);
        let (replicas, requirements) = interpreter.get_replicas(&cloneset).await.unwrap().unwrap();
        assert_eq!((replicas, requirements), (7, None));
        // The other operations stay bundled.
        assert_eq!(interpreter.revise_replica(&cloneset, 2).await.unwrap()["spec"]["replicas"], 2);
    }
}
