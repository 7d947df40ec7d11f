//! `karmada bench interpreter`: what one interpretation costs — a ResourceInterpreterCustomization's
//! Lua rules (the sandboxed VM: a fresh environment, the object converted in and the result
//! out) against the built-in rules, on a Deployment-sized object; and the customizations bundled
//! for third-party kinds (OpenKruise's CloneSet, Flink's multi-template FlinkDeployment).

use std::time::Instant;

use clap::Args as ClapArgs;
use interpreter::Interpreter;
use karmada_api::config::ResourceInterpreterCustomization;
use karmada_api::work::AggregatedStatusItem;
use serde_json::{Value, json};

use super::report::{Report, Samples};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Calls per rule.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    #[arg(long)]
    json: bool,
}

/// Typical rules, in the style upstream's customizations are written (not upstream's own).
const RULES: &str = r#"{
  "replicaResource": {"luaScript": "local kube = require('kube')\nfunction GetReplicas(obj)\n  local replicas = obj.spec.replicas or 1\n  return replicas, kube.accuratePodRequirements(obj.spec.template)\nend"},
  "replicaRevision": {"luaScript": "function ReviseReplica(obj, desired)\n  obj.spec.replicas = desired\n  return obj\nend"},
  "healthInterpretation": {"luaScript": "function InterpretHealth(obj)\n  if obj.status == nil then return false end\n  return (obj.status.readyReplicas or 0) >= (obj.spec.replicas or 1) and obj.status.observedGeneration == obj.metadata.generation\nend"},
  "statusAggregation": {"luaScript": "function AggregateStatus(desired, items)\n  local ready, replicas = 0, 0\n  for i = 1, #items do\n    local s = items[i].status\n    if s ~= nil then\n      ready = ready + (s.readyReplicas or 0)\n      replicas = replicas + (s.replicas or 0)\n    end\n  end\n  desired.status = {readyReplicas = ready, replicas = replicas}\n  return desired\nend"}
}"#;

fn deployment(api_version: &str, kind: &str) -> Value {
    let containers: Vec<Value> = (0..3)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": format!("registry.example/app{i}:1.2.3"),
                "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "production"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080 + i}, "periodSeconds": 5}})
        })
        .collect();
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": "web", "namespace": "shop", "generation": 4,
            "labels": {"app": "web", "tier": "frontend"}, "annotations": {"team": "storefront"}},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
                    "containers": containers, "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}]}}},
        "status": {"replicas": 6, "readyReplicas": 6, "updatedReplicas": 6, "availableReplicas": 6, "observedGeneration": 4}})
}

fn items() -> Vec<AggregatedStatusItem> {
    (1..=3)
        .map(|i| AggregatedStatusItem {
            cluster_name: format!("member{i}"),
            status: Some(json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                "observedGeneration": 4, "generation": 4})),
            applied: true,
            health: "Healthy".into(),
            ..AggregatedStatusItem::default()
        })
        .collect()
}

async fn measure<F, Fut>(
    report: &mut Report,
    subject: &str,
    calls: usize,
    mut f: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // Warm-up: the pool's state and the compiled script.
    for _ in 0..100 {
        f().await?;
    }
    let mut samples = Samples::default();
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        f().await?;
        samples.push(t.elapsed());
    }
    let total = started.elapsed().as_secs_f64();
    report.latency(subject, "per call", &mut samples);
    report.add(subject, "calls/s", calls as f64 / total, "/s");
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let customized = Interpreter::default();
    let c: ResourceInterpreterCustomization = serde_json::from_value(json!({
        "apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
        "metadata": {"name": "bench"},
        "spec": {"target": {"apiVersion": "apps.example.io/v1", "kind": "CloneSet"},
            "customizations": serde_json::from_str::<Value>(RULES)?}}))?;
    customized.load([&c]);
    let builtin = Interpreter::default();
    let lua_object = deployment("apps.example.io/v1", "CloneSet");
    let native_object = deployment("apps/v1", "Deployment");
    let bundled_object = deployment("apps.kruise.io/v1alpha1", "CloneSet");
    let items = items();
    let n = args.calls;
    let mut report = Report::default();
    let fail = |e: interpreter::Failure| anyhow::anyhow!("{e}");
    for (subject, interp, object) in [
        ("Lua customization", &customized, &lua_object),
        ("bundled (Kruise CloneSet)", &builtin, &bundled_object),
        ("built-in", &builtin, &native_object),
    ] {
        measure(&mut report, &format!("{subject}: GetReplicas"), n, || async {
            interp.get_replicas(object).await.map_err(fail)?;
            Ok(())
        })
        .await?;
        measure(&mut report, &format!("{subject}: ReviseReplica"), n, || async {
            interp.revise_replica(object, 2).await.map_err(fail)?;
            Ok(())
        })
        .await?;
        measure(&mut report, &format!("{subject}: InterpretHealth"), n, || async {
            interp.health(object).await.map_err(fail)?;
            Ok(())
        })
        .await?;
        measure(&mut report, &format!("{subject}: AggregateStatus (3 members)"), n, || async {
            interp.aggregate_status(object, &items).await.map_err(fail)?;
            Ok(())
        })
        .await?;
    }
    let flink = json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": "clicks", "namespace": "stream"},
        "spec": {"flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"}, "job": {"parallelism": 8},
            "jobManager": {"resource": {"cpu": 1, "memory": "2048m"}},
            "taskManager": {"resource": {"cpu": 2, "memory": "4Gi"}},
            "podTemplate": {"spec": {"nodeSelector": {"pool": "stream"}}}}});
    measure(&mut report, "bundled (FlinkDeployment): GetComponents", n, || async {
        builtin.get_components(&flink).await.map_err(fail)?;
        Ok(())
    })
    .await?;
    report.print(args.json)
}
