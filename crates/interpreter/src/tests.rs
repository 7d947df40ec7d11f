//! Table tests per rule, with scripts written here for two made-up but typical kinds: a
//! CloneSet-like workload (`apps.example.io/v1 Replicated`) and a batch job with two roles
//! (`batch.example.io/v1 Pipeline`).

use super::*;
use serde_json::json;

fn customization(name: &str, kind: &str, rules: Value) -> ResourceInterpreterCustomization {
    serde_json::from_value(json!({
        "apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
        "metadata": {"name": name},
        "spec": {"target": {"apiVersion": "apps.example.io/v1", "kind": kind}, "customizations": rules}
    }))
    .expect("a customization")
}

fn lua(script: &str) -> Value {
    json!({"luaScript": script})
}

const REPLICAS: &str = r#"
local kube = require("kube")
function GetReplicas(obj)
  local replicas = obj.spec.replicas
  if replicas == nil then replicas = 1 end
  return replicas, kube.accuratePodRequirements(obj.spec.template)
end"#;

const REVISE: &str = r#"
function ReviseReplica(obj, desired)
  obj.spec.replicas = desired
  return obj
end"#;

const RETAIN: &str = r#"
function Retain(desired, observed)
  if observed.spec.paused ~= nil then desired.spec.paused = observed.spec.paused end
  return desired
end"#;

const REFLECT: &str = r#"
function ReflectStatus(observed)
  if observed.status == nil then return {} end
  return {replicas = observed.status.replicas, readyReplicas = observed.status.readyReplicas,
          observedGeneration = observed.status.observedGeneration, generation = observed.metadata.generation}
end"#;

const HEALTH: &str = r#"
function InterpretHealth(observed)
  if observed.status == nil then return false end
  local want = observed.spec.replicas or 1
  return (observed.status.readyReplicas or 0) >= want
end"#;

const AGGREGATE: &str = r#"
function AggregateStatus(desired, items)
  local ready, total = 0, 0
  for i = 1, #items do
    local s = items[i].status
    if s ~= nil then
      ready = ready + (s.readyReplicas or 0)
      total = total + (s.replicas or 0)
    end
  end
  desired.status = {readyReplicas = ready, replicas = total, clusters = #items}
  return desired
end"#;

const DEPENDENCIES: &str = r#"
local kube = require("kube")
function GetDependencies(obj)
  return kube.getPodDependencies(obj.spec.template, obj.metadata.namespace)
end"#;

fn replicated() -> Value {
    json!({"apiVersion": "apps.example.io/v1", "kind": "Replicated",
        "metadata": {"name": "web", "namespace": "shop", "generation": 2},
        "spec": {"replicas": 5, "paused": false, "selector": {},
            "template": {"metadata": {}, "spec": {
                "nodeSelector": {"zone": "a"},
                "containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}},
                    "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "token", "key": "k"}}}]}]}}}})
}

fn interpreter(rules: Value) -> Interpreter {
    let i = Interpreter::default();
    i.load(&[customization("replicated", "Replicated", rules)]);
    i
}

#[tokio::test]
async fn kinds_without_customizations_use_the_built_in_rules() {
    let i = Interpreter::default();
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "n"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c"}]}}}});
    assert_eq!(i.get_replicas(&deploy).await.expect("built in").map(|r| r.0), Some(3));
    assert_eq!(i.revise_replica(&deploy, 1).await.expect("built in")["spec"]["replicas"], 1);
    assert_eq!(i.retain(&deploy, &deploy).await, Ok(None));
    assert_eq!(i.get_replicas(&replicated()).await, Ok(None), "an unknown kind has no replicas");
    assert_eq!(i.health(&replicated()).await, Ok(None));
    assert_eq!(i.dependencies(&replicated()).await, Ok(vec![]));
}

#[tokio::test]
async fn replicas_and_requirements_come_from_the_script() {
    let i = interpreter(json!({"replicaResource": lua(REPLICAS)}));
    let (replicas, requirements) =
        i.get_replicas(&replicated()).await.expect("runs").expect("replicas");
    assert_eq!(replicas, 5);
    assert_eq!(
        serde_json::to_value(requirements).expect("json"),
        json!({"nodeClaim": {"nodeSelector": {"zone": "a"}}, "resourceRequest": {"cpu": "200m", "memory": "1Gi"}})
    );
    // Upstream's e2e script shape: an empty nodeClaim table is dropped.
    let i = interpreter(json!({"replicaResource": lua(
        "function GetReplicas(o) local r = {} r.nodeClaim = {} r.resourceRequest = o.spec.template.spec.containers[1].resources.requests return o.spec.replicas + 1, r end")}));
    let (replicas, requirements) =
        i.get_replicas(&replicated()).await.expect("runs").expect("replicas");
    assert_eq!(replicas, 6);
    assert_eq!(
        serde_json::to_value(requirements).expect("json"),
        json!({"resourceRequest": {"cpu": "200m", "memory": "1Gi"}})
    );
    // No requirements at all.
    let i = interpreter(json!({"replicaResource": lua("function GetReplicas(o) return 2 end")}));
    assert_eq!(i.get_replicas(&replicated()).await, Ok(Some((2, None))));
}

#[tokio::test]
async fn revision_retention_reflection_and_health() {
    let i = interpreter(json!({
        "replicaRevision": lua(REVISE), "retention": lua(RETAIN),
        "statusReflection": lua(REFLECT), "healthInterpretation": lua(HEALTH)}));
    let revised = i.revise_replica(&replicated(), 2).await.expect("revises");
    assert_eq!(revised["spec"]["replicas"], 2);
    // Empty objects of the input stay objects.
    assert_eq!(revised["spec"]["selector"], json!({}));
    assert_eq!(revised["spec"]["template"]["metadata"], json!({}));

    let mut observed = replicated();
    observed["spec"]["paused"] = json!(true);
    observed["status"] =
        json!({"replicas": 5, "readyReplicas": 4, "observedGeneration": 2, "conditions": []});
    let retained = i.retain(&replicated(), &observed).await.expect("runs").expect("customized");
    assert_eq!(retained["spec"]["paused"], true);

    assert_eq!(
        i.reflect_status(&observed).await,
        Ok(json!({"replicas": 5, "readyReplicas": 4, "observedGeneration": 2, "generation": 2}))
    );
    assert_eq!(i.health(&observed).await, Ok(Some(false)));
    observed["status"]["readyReplicas"] = json!(5);
    assert_eq!(i.health(&observed).await, Ok(Some(true)));
}

#[tokio::test]
async fn status_aggregates_from_every_member() {
    let i = interpreter(json!({"statusAggregation": lua(AGGREGATE)}));
    let items: Vec<AggregatedStatusItem> = serde_json::from_value(json!([
        {"clusterName": "m1", "status": {"replicas": 2, "readyReplicas": 2}, "applied": true, "health": "Healthy"},
        {"clusterName": "m2", "status": {"replicas": 3, "readyReplicas": 1}, "applied": true, "health": "Unhealthy"},
        {"clusterName": "m3", "applied": false},
    ]))
    .expect("items");
    assert_eq!(
        i.aggregate_status(&replicated(), &items).await,
        Ok(Some(json!({"readyReplicas": 3, "replicas": 5, "clusters": 3})))
    );
}

#[tokio::test]
async fn dependency_rules_of_every_customization_add_up() {
    let second = r#"
function GetDependencies(obj)
  return {{apiVersion = "v1", kind = "ConfigMap", namespace = obj.metadata.namespace, name = obj.metadata.name .. "-settings"},
          {apiVersion = "v1", kind = "Secret", namespace = obj.metadata.namespace, name = "token"}}
end"#;
    let i = Interpreter::default();
    i.load(&[
        customization("b-more", "Replicated", json!({"dependencyInterpretation": lua(second)})),
        customization(
            "a-pods",
            "Replicated",
            json!({"dependencyInterpretation": lua(DEPENDENCIES)}),
        ),
    ]);
    let got: Vec<(String, String)> = i
        .dependencies(&replicated())
        .await
        .expect("runs")
        .into_iter()
        .map(|d| (d.kind, d.name))
        .collect();
    assert_eq!(
        got,
        [("ConfigMap", "web-settings"), ("Secret", "token")]
            .map(|(k, n)| (k.to_owned(), n.to_owned()))
    );
    // A dependency without a name or selector is refused.
    let i = interpreter(json!({"dependencyInterpretation": lua(
        "function GetDependencies(o) return {{apiVersion = 'v1', kind = 'Secret'}} end")}));
    let err = i.dependencies(&replicated()).await.expect_err("refused");
    assert!(err.message.contains("name or a labelSelector"), "{err}");
}

#[tokio::test]
async fn the_first_customization_by_name_wins_an_operation() {
    let i = Interpreter::default();
    i.load(&[
        customization(
            "z",
            "Replicated",
            json!({"replicaResource": lua("function GetReplicas(o) return 9 end")}),
        ),
        customization(
            "a",
            "Replicated",
            json!({"replicaResource": lua("function GetReplicas(o) return 1 end")}),
        ),
    ]);
    assert_eq!(i.get_replicas(&replicated()).await, Ok(Some((1, None))));
    i.load(&[]);
    assert_eq!(i.get_replicas(&replicated()).await, Ok(None), "a removed customization is gone");
}

#[tokio::test]
async fn failing_scripts_name_the_rule_and_never_hang() {
    let cases = [
        ("function GetReplicas(o) return o.spec.missing.field end", "attempt to index"),
        ("function GetReplicas(o) return 'five' end", "expected a number of replicas, got string"),
        ("function Other(o) return 1 end", "defines no function GetReplicas"),
        ("function GetReplicas(o) while true do end end", "longer than|budget of"),
        ("function GetReplicas(o) local s = 'x' while true do s = s .. s end end", "out of memory"),
        ("function GetReplicas(o) return loadstring('return 1')() end", "not available"),
        ("function GetReplicas(o) return os.execute('true') end", "attempt to call"),
        ("function GetReplicas(o) return require('io') end", "module 'io' not found"),
        ("function GetReplicas(o) return 1, {f = print} end", "cannot encode function"),
        ("function GetReplicas(o return 1 end", "expected"),
        ("function GetReplicas(o) error('custom failure') end", "custom failure"),
    ];
    let i = Interpreter::new(lua::Limits {
        wall: std::time::Duration::from_millis(200),
        instructions: 50_000_000,
        memory: 16 << 20,
    });
    for (script, want) in cases {
        i.load(&[customization("broken", "Replicated", json!({"replicaResource": lua(script)}))]);
        let err = i.get_replicas(&replicated()).await.expect_err(script);
        assert_eq!(err.operation, Operation::InterpretReplica);
        assert_eq!(err.by, Source::Customization("broken".into()));
        assert!(want.split('|').any(|w| err.to_string().contains(w)), "{script}: {err}");
        assert!(err.to_string().starts_with(
            "GetReplicas (replicaResource of ResourceInterpreterCustomization broken) failed: "
        ));
    }
    // The VM is still good for the next call.
    i.load(&[customization(
        "ok",
        "Replicated",
        json!({"replicaResource": lua("function GetReplicas(o) return 4 end")}),
    )]);
    assert_eq!(i.get_replicas(&replicated()).await, Ok(Some((4, None))));
}

#[tokio::test]
async fn globals_do_not_leak_between_calls() {
    let i = interpreter(json!({"replicaResource": lua(
        "function GetReplicas(o) if seen == nil then seen = 0 end seen = seen + 1 return seen end")}));
    assert_eq!(i.get_replicas(&replicated()).await, Ok(Some((1, None))));
    assert_eq!(i.get_replicas(&replicated()).await, Ok(Some((1, None))));
}

#[test]
fn syntax_is_checked_without_running() {
    assert_eq!(check_syntax("function F() return 1 end", "replicaResource"), Ok(()));
    let err = check_syntax("function F( return 1 end", "replicaResource").expect_err("bad");
    assert!(err.starts_with("replicaResource:1:"), "{err}");
}

#[tokio::test]
async fn a_service_import_needs_its_derived_service_and_endpoint_slices() {
    let import = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "web", "namespace": "shop"}});
    let deps =
        serde_json::to_value(Interpreter::default().dependencies(&import).await.expect("built in"))
            .expect("json");
    assert_eq!(
        deps,
        json!([
            {"apiVersion": "v1", "kind": "Service", "namespace": "shop", "name": "derived-web"},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "namespace": "shop",
                "labelSelector": {"matchLabels": {"kubernetes.io/service-name": "derived-web"}}},
        ])
    );
}

#[tokio::test]
async fn pods_aggregate_pending_until_every_member_reports() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
    let items: Vec<AggregatedStatusItem> = serde_json::from_value(json!([
        {"clusterName": "m1", "status": {"phase": "Running"}, "applied": true},
        {"clusterName": "m2", "applied": false},
    ]))
    .expect("items");
    let status = Interpreter::default().aggregate_status(&pod, &items).await.expect("built in");
    assert_eq!(status.expect("aggregated")["phase"], "Pending");
}

#[tokio::test]
async fn components_come_from_the_script() {
    let script = r#"
local kube = require("kube")
function GetComponents(obj)
  local out = {}
  for _, role in ipairs({"leader", "worker"}) do
    local spec = obj.spec[role]
    local r = kube.accuratePodRequirements(spec.template)
    table.insert(out, {name = role, replicas = spec.replicas or 1,
      replicaRequirements = {resourceRequest = r.resourceRequest, nodeClaim = r.nodeClaim}})
  end
  return out
end"#;
    let i = interpreter(json!({"componentResource": lua(script)}));
    let job = json!({"apiVersion": "apps.example.io/v1", "kind": "Replicated", "metadata": {"name": "j"},
        "spec": {
            "leader": {"template": {"spec": {"containers": [{"name": "l", "resources": {"requests": {"cpu": "500m"}}}]}}},
            "worker": {"replicas": 4, "template": {"spec": {"nodeSelector": {"gpu": "yes"},
                "containers": [{"name": "w", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]}}}}});
    let components = i.get_components(&job).await.expect("runs").expect("customized");
    assert_eq!(
        serde_json::to_value(components).expect("json"),
        json!([
            {"name": "leader", "replicas": 1, "replicaRequirements": {"resourceRequest": {"cpu": "500m"}}},
            {"name": "worker", "replicas": 4, "replicaRequirements": {"nodeClaim": {"nodeSelector": {"gpu": "yes"}},
                "resourceRequest": {"cpu": "2", "memory": "1Gi"}}},
        ])
    );
    assert_eq!(Interpreter::default().get_components(&job).await, Ok(None), "no built-in rule");
}
