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

use apimachinery::hpa::{self, EventReason, History, PodSample};

/// How often each FederatedHPA is evaluated by default (upstream's
/// `--horizontal-pod-autoscaler-sync-period`).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// How long a member may take to list its pods.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

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
        .filter(|(_, p)| hpa::pod_counts(p))
        .map(|(cluster, p)| PodSample {
            ready: hpa::pod_ready(p),
            usage: by_pod
                .get(&(cluster.clone(), apimachinery::object::name(p).to_owned()))
                .copied(),
            request: hpa::pod_request(p, resource),
        })
        .collect()
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
    let old_status = serde_json::to_value(&fhpa.status).unwrap_or_default();
    let regarding = crate::events::reference_of(fhpa.as_ref());
    let apis: Api<FederatedHPA> = Api::namespaced(ctx.client.clone(), &namespace);
    let target_ref = &fhpa.spec.scale_target_ref;
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
            write_status(hpa::failed_get_scale_status(&message, &old_status, &stamp)).await?;
            return Ok(Action::requeue(ctx.period));
        }
    };
    let template = serde_json::to_value(&template).unwrap_or_default();
    let current = template.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) as i32;
    let spec = hpa::Spec::from_json(&serde_json::to_value(&fhpa.spec).unwrap_or_default());
    // The pods and their metrics, only when the bounds do not decide alone.
    let (pods, metrics) = if current == 0 || current < spec.min || current > spec.max {
        (Vec::new(), Vec::new())
    } else {
        let selector = selector_string(template.pointer("/spec/selector").unwrap_or(&Value::Null));
        (
            member_pods(&ctx, &namespace, &selector).await,
            pod_metrics(&ctx, &namespace, &selector).await,
        )
    };
    let outcome = {
        let mut history = ctx.history.lock();
        let h = history.entry(key.clone()).or_default();
        hpa::evaluate(now, current, &spec, |resource| samples(&pods, &metrics, resource), h)
    };
    let scaled = match outcome.scale_to(current) {
        None => None,
        Some(replicas) => {
            let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            Some(match templates.patch(&target_ref.name, &PatchParams::default(), &patch).await {
                Ok(_) => {
                    ctx.history
                        .lock()
                        .entry(key.clone())
                        .or_default()
                        .scaled(now, replicas - current);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            })
        }
    };
    for (reason, message) in
        outcome.event(current, scaled.as_ref()).into_iter().chain(outcome.metric_event())
    {
        let reason = match reason {
            EventReason::SuccessfulRescale => Reason::SuccessfulRescale,
            EventReason::FailedRescale => Reason::FailedRescale,
            EventReason::FailedGetResourceMetric => Reason::FailedGetResourceMetric,
        };
        ctx.events.record(regarding.clone(), reason, message);
    }
    let status =
        outcome.status(current, scaled.as_ref(), &old_status, &stamp, fhpa.metadata.generation);
    if status != old_status {
        write_status(status).await?;
    }
    Ok(Action::requeue(ctx.period))
}

async fn pod_metrics(ctx: &Context, namespace: &str, selector: &str) -> Vec<Value> {
    let path = format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={}",
        apimachinery::selector::query_escape(selector)
    );
    match ctx
        .client
        .request_text(http::Request::get(&path).body(Vec::new()).unwrap_or_default())
        .await
    {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!(namespace, error = %e, "metrics");
            Vec::new()
        }
    }
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
    use apimachinery::hpa::Target;

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
            hpa::resource_target(
                &json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}})
            ),
            Some(("cpu".into(), Target::Utilization(50)))
        );
    }
}
