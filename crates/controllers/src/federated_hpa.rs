//! FederatedHPA (`autoscaling.karmada.io/v1alpha1`), upstream's
//! `federatedHorizontalPodAutoscaler` controller: every sync period each FederatedHPA reads
//! its target template's replicas and selector, the matching pods in every member cluster
//! (their readiness and requests) and their usage from the control plane's `metrics.k8s.io`
//! (gathered from the members), runs the HPA algorithm (`hpa`) and writes the template's
//! replicas — which the scheduler then divides over the clusters as the policy says. Status,
//! conditions (`AbleToScale`, `ScalingActive`, `ScalingLimited`) and Events are the HPA's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use karmada_api::autoscaling::FederatedHPA;
use karmada_api::events::Reason;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::hpa::{self, Limit, PodSample, Sample, Target};

/// How often each FederatedHPA is evaluated by default (upstream's
/// `--horizontal-pod-autoscaler-sync-period`).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// How long a member may take to list its pods.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// What one FederatedHPA remembers between evaluations.
#[derive(Default)]
struct History {
    recommendations: Vec<Sample>,
    events: Vec<Sample>,
}

struct Context {
    client: kube::Client,
    caches: crate::Caches,
    events: crate::events::Events,
    history: Mutex<HashMap<String, History>>,
    kinds: Kinds,
    period: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// A label selector object as a query string (`a=b,c in (d,e),!f`).
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
        parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
    }
    for e in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> =
            e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// A pod's request for `resource` over its containers (`None` if a container has none).
fn request(pod: &Value, resource: &str) -> Option<i128> {
    let mut total = 0;
    for c in pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        let q = c.pointer(&format!("/resources/requests/{resource}")).and_then(Value::as_str)?;
        total += apimachinery::quantity::parse_milli(q)?;
    }
    Some(total)
}

/// A PodMetrics' usage of `resource` over its containers.
fn usage(metrics: &Value, resource: &str) -> i128 {
    metrics["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["usage"][resource].as_str().and_then(apimachinery::quantity::parse_milli))
        .sum()
}

/// The samples for one resource: every member pod, with its usage when the metrics API has it.
pub fn samples(pods: &[(String, Value)], metrics: &[Value], resource: &str) -> Vec<PodSample> {
    let by_pod: HashMap<(String, String), i128> = metrics
        .iter()
        .map(|m| {
            let cluster = m
                .pointer("/metadata/annotations/resource.karmada.io~1query-from-cluster")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            ((cluster, apimachinery::object::name(m).to_owned()), usage(m, resource))
        })
        .collect();
    pods.iter()
        .filter(|(_, p)| apimachinery::object::meta_str(p, "deletionTimestamp").is_none())
        .filter(|(_, p)| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .map(|(cluster, p)| PodSample {
            ready: ready(p),
            usage: by_pod
                .get(&(cluster.clone(), apimachinery::object::name(p).to_owned()))
                .copied(),
            request: request(p, resource),
        })
        .collect()
}

/// A resource metric of the spec: (resource, target); others are not supported.
fn resource_target(metric: &Value) -> Option<(String, Target)> {
    if metric["type"] != "Resource" {
        return None;
    }
    let resource = metric.pointer("/resource/name")?.as_str()?.to_owned();
    let target = &metric["resource"]["target"];
    match target["type"].as_str()? {
        "Utilization" => {
            Some((resource, Target::Utilization(target["averageUtilization"].as_i64()? as i32)))
        }
        "AverageValue" => Some((
            resource,
            Target::AverageValue(apimachinery::quantity::parse_milli(
                target["averageValue"].as_str()?,
            )?),
        )),
        _ => None,
    }
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    old: &[Value],
    now: &str,
) -> Value {
    let status = if status { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

async fn member_pods(ctx: &Context, namespace: &str, selector: &str) -> Vec<(String, Value)> {
    let clusters: Vec<Arc<karmada_api::cluster::Cluster>> = ctx.caches.clusters.store().state();
    let lists = clusters.iter().filter(|c| c.is_ready()).map(|cluster| async move {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let (client, _) =
            ctx.caches.member_clients.get(&ctx.client, cluster, MEMBER_TIMEOUT).await.ok()?;
        let pods: Api<DynamicObject> = Api::namespaced_with(
            client,
            namespace,
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        );
        let list = tokio::time::timeout(
            MEMBER_TIMEOUT,
            pods.list(&ListParams::default().labels(selector)),
        )
        .await
        .ok()?
        .ok()?;
        Some(
            list.items
                .into_iter()
                .map(|p| (name.clone(), serde_json::to_value(p).unwrap_or_default()))
                .collect::<Vec<_>>(),
        )
    });
    futures::future::join_all(lists).await.into_iter().flatten().flatten().collect()
}

/// Workload kinds as the control plane serves them, found by discovery once each (shared by
/// the FederatedHPA and CronFederatedHPA controllers, which scale templates of any kind).
#[derive(Default)]
pub(crate) struct Kinds(Mutex<HashMap<String, kube::discovery::ApiResource>>);

impl Kinds {
    /// The namespaced API of a kind's templates.
    pub(crate) async fn templates(
        &self,
        client: &kube::Client,
        namespace: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>, kube::Error> {
        let key = format!("{api_version}/{kind}");
        let known = self.0.lock().get(&key).cloned();
        let resource = match known {
            Some(r) => r,
            None => {
                let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
                let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
                let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await?;
                self.0.lock().insert(key, resource.clone());
                resource
            }
        };
        Ok(Api::namespaced_with(client.clone(), namespace, &resource))
    }
}

/// The `AbleToScale` condition once the target was read.
fn got_scale(old: &[Value], now: &str) -> Value {
    condition(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        old,
        now,
    )
}

async fn reconcile(fhpa: Arc<FederatedHPA>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = fhpa.metadata.namespace.clone().unwrap_or_default();
    let name = fhpa.metadata.name.clone().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    if fhpa.metadata.deletion_timestamp.is_some() {
        ctx.history.lock().remove(&key);
        return Ok(Action::await_change());
    }
    let now = crate::now_secs();
    let stamp = crate::now_rfc3339();
    let spec = &fhpa.spec;
    let old_status = serde_json::to_value(&fhpa.status).unwrap_or_default();
    let old_conditions: Vec<Value> =
        old_status["conditions"].as_array().cloned().unwrap_or_default();
    let regarding = crate::events::reference_of(fhpa.as_ref());
    let apis: Api<FederatedHPA> = Api::namespaced(ctx.client.clone(), &namespace);
    let target_ref = &spec.scale_target_ref;
    let api_version = target_ref.api_version.clone().unwrap_or_else(|| "apps/v1".into());
    let write_status = |status: Value| {
        let apis = apis.clone();
        let name = name.clone();
        async move {
            apis.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        }
    };
    // The target.
    let target =
        match ctx.kinds.templates(&ctx.client, &namespace, &api_version, &target_ref.kind).await {
            Ok(templates) => templates.get(&target_ref.name).await.map(|t| (templates, t)),
            Err(e) => Err(e),
        };
    let (templates, template) = match target {
        Ok(found) => found,
        Err(e) => {
            let message =
                format!("the HPA controller was unable to get the target's current scale: {e}");
            ctx.events.record(regarding, Reason::FailedGetScale, message.clone());
            let conditions = vec![condition(
                "AbleToScale",
                false,
                "FailedGetScale",
                &message,
                &old_conditions,
                &stamp,
            )];
            write_status(json!({"currentReplicas": old_status["currentReplicas"], "desiredReplicas": old_status["desiredReplicas"].as_i64().unwrap_or(0), "conditions": conditions})).await?;
            return Ok(Action::requeue(ctx.period));
        }
    };
    let template = serde_json::to_value(&template).unwrap_or_default();
    let current = template.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) as i32;
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let selector = selector_string(template.pointer("/spec/selector").unwrap_or(&Value::Null));
    // The metrics.
    let metric_specs: Vec<Value> = if spec.metrics.is_empty() {
        vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}),
        ]
    } else {
        spec.metrics.iter().map(|m| serde_json::to_value(m).unwrap_or_default()).collect()
    };
    let mut recommendation: Option<i32> = None;
    let mut current_metrics = Vec::new();
    let mut failure: Option<hpa::MetricError> = None;
    let mut reason_metric = String::new();
    if current == 0 && min != 0 {
        let conditions = vec![
            got_scale(&old_conditions, &stamp),
            condition(
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                &old_conditions,
                &stamp,
            ),
        ];
        write_status(json!({"currentReplicas": 0, "desiredReplicas": 0, "conditions": conditions, "observedGeneration": fhpa.metadata.generation})).await?;
        return Ok(Action::requeue(ctx.period));
    }
    // Outside min/max the bounds decide, whatever the metrics say (as the HPA does).
    let out_of_bounds = if current > max {
        Some((max, "Current number of replicas above Spec.MaxReplicas"))
    } else if current < min {
        Some((min, "Current number of replicas below Spec.MinReplicas"))
    } else {
        None
    };
    if let Some((bound, why)) = out_of_bounds {
        let patch = Patch::Merge(json!({"spec": {"replicas": bound}}));
        templates.patch(&target_ref.name, &PatchParams::default(), &patch).await?;
        ctx.events.record(
            regarding,
            Reason::SuccessfulRescale,
            format!("New size: {bound}; reason: {why}"),
        );
        ctx.history
            .lock()
            .entry(key.clone())
            .or_default()
            .events
            .push(Sample { at: now, value: bound - current });
        let conditions = vec![
            condition(
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {bound}"),
                &old_conditions,
                &stamp,
            ),
            condition(
                "ScalingLimited",
                true,
                if current > max { "TooManyReplicas" } else { "TooFewReplicas" },
                why,
                &old_conditions,
                &stamp,
            ),
        ];
        write_status(
            json!({"currentReplicas": current, "desiredReplicas": bound, "lastScaleTime": stamp,
            "conditions": conditions, "observedGeneration": fhpa.metadata.generation}),
        )
        .await?;
        return Ok(Action::requeue(ctx.period));
    }
    let pods = member_pods(&ctx, &namespace, &selector).await;
    let metrics_path = format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={}",
        apimachinery::selector::query_escape(&selector)
    );
    let metrics: Vec<Value> = match ctx
        .client
        .request_text(http::Request::get(&metrics_path).body(Vec::new()).unwrap_or_default())
        .await
    {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!(fhpa = %key, error = %e, "metrics");
            Vec::new()
        }
    };
    for metric in &metric_specs {
        let Some((resource, target)) = resource_target(metric) else {
            failure.get_or_insert(hpa::MetricError {
                reason: "FailedGetObjectMetric",
                message: format!(
                    "unsupported metric {}: karmada-rs scales on resource metrics (cpu, memory)",
                    metric["type"]
                ),
            });
            continue;
        };
        match hpa::resource_replicas(
            current,
            &samples(&pods, &metrics, &resource),
            target,
            &resource,
            hpa::TOLERANCE,
        ) {
            Ok(r) => {
                if recommendation.is_none_or(|best| r.replicas > best) {
                    reason_metric = resource.clone();
                }
                recommendation =
                    Some(recommendation.map_or(r.replicas, |best| best.max(r.replicas)));
                let mut current_value =
                    json!({"averageValue": apimachinery::quantity::format_milli(r.average)});
                if let Target::Utilization(_) = target {
                    current_value["averageUtilization"] = json!(r.utilization);
                }
                current_metrics.push(json!({"type": "Resource", "resource": {"name": resource, "current": current_value}}));
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let Some(recommended) = recommendation else {
        let error = failure.unwrap_or(hpa::MetricError {
            reason: "FailedGetResourceMetric",
            message: "no metrics".into(),
        });
        ctx.events.record(regarding, Reason::FailedGetResourceMetric, error.message.clone());
        let conditions = vec![
            got_scale(&old_conditions, &stamp),
            condition(
                "ScalingActive",
                false,
                error.reason,
                &error.message,
                &old_conditions,
                &stamp,
            ),
        ];
        write_status(json!({"currentReplicas": current, "desiredReplicas": current, "conditions": conditions, "observedGeneration": fhpa.metadata.generation})).await?;
        return Ok(Action::requeue(ctx.period));
    };
    let normalized = {
        let mut history = ctx.history.lock();
        let h = history.entry(key.clone()).or_default();
        h.events.retain(|e| e.at > now - 1800);
        hpa::normalize(
            now,
            current,
            recommended,
            min,
            max,
            spec.behavior.as_ref(),
            &mut h.recommendations,
            &h.events,
        )
    };
    let mut last_scale_time = old_status["lastScaleTime"].clone();
    let mut able = ("ReadyForNewScale", "recommended size matches current size".to_owned());
    if normalized.replicas != current {
        let patch = Patch::Merge(json!({"spec": {"replicas": normalized.replicas}}));
        match templates.patch(&target_ref.name, &PatchParams::default(), &patch).await {
            Ok(_) => {
                let direction = if normalized.replicas > current { "above" } else { "below" };
                let message = format!(
                    "New size: {}; reason: {reason_metric} resource utilization (percentage of request) {direction} target",
                    normalized.replicas
                );
                ctx.events.record(regarding, Reason::SuccessfulRescale, message);
                ctx.history
                    .lock()
                    .entry(key.clone())
                    .or_default()
                    .events
                    .push(Sample { at: now, value: normalized.replicas - current });
                last_scale_time = json!(stamp);
                able = (
                    "SucceededRescale",
                    format!(
                        "the HPA controller was able to update the target scale to {}",
                        normalized.replicas
                    ),
                );
            }
            Err(e) => {
                let message = format!("New size: {}; error: {e}", normalized.replicas);
                ctx.events.record(regarding, Reason::FailedRescale, message.clone());
                able = ("FailedUpdateScale", message);
            }
        }
    }
    let (limited, limit_reason, limit_message) = normalized.limit.condition();
    let conditions = vec![
        condition(
            "AbleToScale",
            able.0 != "FailedUpdateScale",
            able.0,
            &able.1,
            &old_conditions,
            &stamp,
        ),
        condition(
            "ScalingActive",
            true,
            "ValidMetricFound",
            &format!(
                "the HPA was able to successfully calculate a replica count from {reason_metric} resource utilization (percentage of request)"
            ),
            &old_conditions,
            &stamp,
        ),
        condition("ScalingLimited", limited, limit_reason, limit_message, &old_conditions, &stamp),
    ];
    let mut status = json!({"currentReplicas": current, "desiredReplicas": normalized.replicas,
        "currentMetrics": current_metrics, "conditions": conditions, "observedGeneration": fhpa.metadata.generation});
    if !last_scale_time.is_null() {
        status["lastScaleTime"] = last_scale_time;
    }
    if normalized.limit == Limit::None && old_status == status {
        return Ok(Action::requeue(ctx.period));
    }
    write_status(status).await?;
    Ok(Action::requeue(ctx.period))
}

fn error_policy(_: Arc<FederatedHPA>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry_after(
        "federated hpa",
        error,
        matches!(error, Error::Kube(e) if crate::is_conflict(e)),
        Duration::from_secs(2),
    )
}

/// Runs the FederatedHPA controller until the future is dropped.
pub async fn run(
    client: kube::Client,
    caches: crate::Caches,
    period: Duration,
) -> anyhow::Result<()> {
    let api: Api<FederatedHPA> = Api::all(client.clone());
    let events = crate::events::Events::start(client.clone(), "federatedhpa-controller");
    let ctx = Arc::new(Context {
        client,
        caches,
        events,
        history: Mutex::default(),
        kinds: Kinds::default(),
        period,
    });
    Controller::new(api, watcher::Config::default())
        .with_config(crate::controller_config())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_query_strings() {
        let selector = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&selector), "app=web,tier in (a,b),!canary");
    }

    #[test]
    fn samples_join_member_pods_with_their_clusters_metrics() {
        let pod = |name: &str, ready: bool| {
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
        };
        let pods = vec![
            ("member1".to_owned(), pod("web-1", true)),
            ("member2".to_owned(), pod("web-1", false)),
        ];
        let metrics = vec![
            json!({"metadata": {"name": "web-1", "annotations": {"resource.karmada.io/query-from-cluster": "member1"}},
            "containers": [{"name": "c", "usage": {"cpu": "90000000n"}}]}),
        ];
        assert_eq!(
            samples(&pods, &metrics, "cpu"),
            vec![
                PodSample { ready: true, usage: Some(90), request: Some(100) },
                PodSample { ready: false, usage: None, request: Some(100) },
            ],
            "the same pod name in two clusters is two pods"
        );
        assert_eq!(
            resource_target(
                &json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}})
            ),
            Some(("cpu".into(), Target::Utilization(50)))
        );
    }
}
