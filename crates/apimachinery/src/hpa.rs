//! The Kubernetes HPA algorithm as pure functions: resource metrics → a replica recommendation
//! (`resource_replicas`, kube-controller-manager's replica calculator: 10 % tolerance, unready
//! and missing pods assumed at 0 % / 100 % in the direction that damps the change), the
//! recommendation normalized by `behavior` (stabilization windows over past recommendations,
//! rate policies over past scale events) and min/max (`normalize`), and one evaluation of an
//! autoscaler from its spec and pods (`evaluate`) with the status it leads to.
//!
//! Two controllers run it: the control plane's FederatedHPA over the pods of every member
//! cluster, and a simulated member's HorizontalPodAutoscaler over its own pods.

use serde::Deserialize;
use serde_json::{Value, json};

/// `behavior` of an autoscaler's spec (`autoscaling/v2`'s shape).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    pub scale_up: Option<ScalingRules>,
    pub scale_down: Option<ScalingRules>,
}

/// One direction's rules.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    pub stabilization_window_seconds: Option<i32>,
    pub select_policy: Option<String>,
    pub policies: Option<Vec<ScalingPolicy>>,
}

/// A rate policy: at most `value` pods or percent per `period_seconds`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub type_: String,
    pub value: i32,
    pub period_seconds: i32,
}

/// The default tolerance on the metric ratio.
pub const TOLERANCE: f64 = 0.1;

/// One pod as the calculation sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSample {
    /// Running and Ready.
    pub ready: bool,
    /// The metric's usage (milli-units), if the metrics API reported the pod.
    pub usage: Option<i128>,
    /// The pod's request for the resource (milli-units), summed over its containers.
    pub request: Option<i128>,
}

/// A resource metric's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// Milli-units per pod.
    AverageValue(i128),
}

/// A resource metric's recommendation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recommendation {
    pub replicas: i32,
    /// The current utilization (percent) when the target is one, else 0.
    pub utilization: i32,
    /// The current average usage per pod (milli-units).
    pub average: i128,
}

/// Why a metric gives no recommendation (the `ScalingActive` condition's reason, message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricError {
    pub reason: &'static str,
    pub message: String,
}

fn ratio(samples: &[(i128, i128)], target: Target) -> (f64, i32, i128) {
    let usage: i128 = samples.iter().map(|(u, _)| u).sum();
    let requests: i128 = samples.iter().map(|(_, r)| r).sum();
    let average = if samples.is_empty() { 0 } else { usage / samples.len() as i128 };
    match target {
        Target::Utilization(t) => {
            let utilization =
                if requests > 0 { usage as f64 * 100.0 / requests as f64 } else { 0.0 };
            (utilization / f64::from(t.max(1)), utilization as i32, average)
        }
        Target::AverageValue(v) => {
            let avg = if samples.is_empty() { 0.0 } else { usage as f64 / samples.len() as f64 };
            (avg / v.max(1) as f64, 0, average)
        }
    }
}

/// The replica count a resource metric asks for, from `current` replicas and the pods (all
/// clusters), as kube-controller-manager's replica calculator decides it.
pub fn resource_replicas(
    current: i32,
    pods: &[PodSample],
    target: Target,
    resource: &str,
    tolerance: f64,
) -> Result<Recommendation, MetricError> {
    if pods.is_empty() {
        return Err(MetricError {
            reason: "FailedGetResourceMetric",
            message: format!(
                "failed to get {resource} utilization: unable to get metrics for resource {resource}: no pods returned"
            ),
        });
    }
    let ready: Vec<&PodSample> = pods.iter().filter(|p| p.ready && p.usage.is_some()).collect();
    let unready = pods.iter().filter(|p| !p.ready).count();
    let missing: Vec<&PodSample> = pods.iter().filter(|p| p.ready && p.usage.is_none()).collect();
    if ready.is_empty() {
        return Err(MetricError {
            reason: "FailedGetResourceMetric",
            message: format!(
                "failed to get {resource} utilization: unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
            ),
        });
    }
    let needs_request = matches!(target, Target::Utilization(_));
    if needs_request && pods.iter().any(|p| p.request.unwrap_or(0) <= 0) {
        return Err(MetricError {
            reason: "FailedGetResourceMetric",
            message: format!(
                "failed to get {resource} utilization: missing request for {resource}"
            ),
        });
    }
    let mut samples: Vec<(i128, i128)> =
        ready.iter().map(|p| (p.usage.unwrap_or(0), p.request.unwrap_or(0))).collect();
    let (usage_ratio, utilization, average) = ratio(&samples, target);
    let recommendation = |replicas: i32| Recommendation { replicas, utilization, average };
    let scale_up_with_unready = unready > 0 && usage_ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= tolerance {
            return Ok(recommendation(current));
        }
        return Ok(recommendation((usage_ratio * samples.len() as f64).ceil() as i32));
    }
    // Damp the change: pods without metrics count as at their request when scaling down and
    // as idle when scaling up; unready pods as idle when scaling up.
    let full = |p: &PodSample| match target {
        Target::Utilization(_) => p.request.unwrap_or(0),
        Target::AverageValue(v) => v,
    };
    for p in &missing {
        let request = p.request.unwrap_or(0);
        samples.push((if usage_ratio < 1.0 { full(p) } else { 0 }, request));
    }
    if scale_up_with_unready {
        for p in pods.iter().filter(|p| !p.ready) {
            samples.push((0, p.request.unwrap_or(0)));
        }
    }
    let (new_ratio, _, _) = ratio(&samples, target);
    if (1.0 - new_ratio).abs() <= tolerance
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(recommendation(current));
    }
    let replicas = (new_ratio * samples.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(recommendation(current));
    }
    Ok(recommendation(replicas))
}

/// A past recommendation or scale event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    /// Replicas recommended; for a scale event, the change.
    pub value: i32,
}

/// Why the replicas are not what the metrics ask for (`ScalingLimited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    None,
    TooFewReplicas,
    TooManyReplicas,
    ScaleUpLimit,
    ScaleDownLimit,
}

impl Limit {
    /// The `ScalingLimited` condition's reason and message.
    pub fn condition(self) -> (bool, &'static str, &'static str) {
        match self {
            Limit::None => {
                (false, "DesiredWithinRange", "the desired count is within the acceptable range")
            }
            Limit::TooFewReplicas => (
                true,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            ),
            Limit::TooManyReplicas => (
                true,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ),
            Limit::ScaleUpLimit => (
                true,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            ),
            Limit::ScaleDownLimit => (
                true,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            ),
        }
    }
}

/// A direction's rules with Kubernetes' defaults filled in.
fn rules(given: Option<&ScalingRules>, up: bool) -> (i64, Vec<(String, i32, i64)>, String) {
    let window = given
        .and_then(|r| r.stabilization_window_seconds)
        .map_or(if up { 0 } else { 300 }, i64::from);
    let policies: Vec<(String, i32, i64)> = match given.and_then(|r| r.policies.as_ref()) {
        Some(p) if !p.is_empty() => {
            p.iter().map(|p| (p.type_.clone(), p.value, i64::from(p.period_seconds))).collect()
        }
        _ if up => vec![("Percent".into(), 100, 15), ("Pods".into(), 4, 15)],
        _ => vec![("Percent".into(), 100, 15)],
    };
    let select = given.and_then(|r| r.select_policy.clone()).unwrap_or_else(|| "Max".into());
    (window, policies, select)
}

/// What `normalize` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    pub replicas: i32,
    pub limit: Limit,
}

/// The replicas to set from a recommendation: stabilized over the windows of past
/// `recommendations` (the newest one is added), limited by the rate policies over past
/// scale `events`, within `min`..=`max`.
#[allow(clippy::too_many_arguments)]
pub fn normalize(
    now: i64,
    current: i32,
    recommended: i32,
    min: i32,
    max: i32,
    behavior: Option<&Behavior>,
    recommendations: &mut Vec<Sample>,
    events: &[Sample],
) -> Normalized {
    let (up_window, up_policies, up_select) =
        rules(behavior.and_then(|b| b.scale_up.as_ref()), true);
    let (down_window, down_policies, down_select) =
        rules(behavior.and_then(|b| b.scale_down.as_ref()), false);
    // Stabilization: scale up no further than the lowest recommendation in the up window,
    // down no further than the highest in the down window.
    let (mut up_bound, mut down_bound) = (recommended, recommended);
    for r in recommendations.iter() {
        if r.at > now - up_window {
            up_bound = up_bound.min(r.value);
        }
        if r.at > now - down_window {
            down_bound = down_bound.max(r.value);
        }
    }
    let keep = up_window.max(down_window);
    recommendations.retain(|r| r.at > now - keep);
    recommendations.push(Sample { at: now, value: recommended });
    let stabilized = current.max(up_bound).min(down_bound);
    // Rate policies over what changed within each policy's period.
    let changed = |period: i64, up: bool| -> i32 {
        events
            .iter()
            .filter(|e| e.at > now - period && (e.value > 0) == up)
            .map(|e| e.value.abs())
            .sum()
    };
    // As kube-controller-manager: the rate limit bounds the change only where it is tighter
    // than min/max (which then name the limit).
    if stabilized > current {
        let limits: Vec<i32> = up_policies
            .iter()
            .map(|(kind, value, period)| {
                let start = current - changed(*period, true);
                match kind.as_str() {
                    "Pods" => start + value,
                    _ => (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32,
                }
            })
            .collect();
        let rate = match up_select.as_str() {
            "Disabled" => current,
            "Min" => limits.iter().copied().min().unwrap_or(current),
            _ => limits.iter().copied().max().unwrap_or(current),
        }
        .max(current);
        let (maximum, limit) =
            if max > rate { (rate, Limit::ScaleUpLimit) } else { (max, Limit::TooManyReplicas) };
        if stabilized > maximum {
            return Normalized { replicas: maximum, limit };
        }
    } else if stabilized < current {
        let limits: Vec<i32> = down_policies
            .iter()
            .map(|(kind, value, period)| {
                let start = current + changed(*period, false);
                match kind.as_str() {
                    "Pods" => start - value,
                    _ => (f64::from(start) * (1.0 - f64::from(*value) / 100.0)).ceil() as i32,
                }
            })
            .collect();
        let rate = match down_select.as_str() {
            "Disabled" => current,
            "Min" => limits.iter().copied().max().unwrap_or(current),
            _ => limits.iter().copied().min().unwrap_or(current),
        }
        .min(current);
        let (minimum, limit) =
            if min < rate { (rate, Limit::ScaleDownLimit) } else { (min, Limit::TooFewReplicas) };
        if stabilized < minimum {
            return Normalized { replicas: minimum, limit };
        }
    }
    if stabilized > max {
        return Normalized { replicas: max, limit: Limit::TooManyReplicas };
    }
    if stabilized < min {
        return Normalized { replicas: min, limit: Limit::TooFewReplicas };
    }
    Normalized { replicas: stabilized, limit: Limit::None }
}

/// What an autoscaler remembers between evaluations.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub recommendations: Vec<Sample>,
    /// Scale events (the change in replicas) of the last 30 minutes.
    pub events: Vec<Sample>,
}

impl History {
    /// Records that the target was scaled by `change` at `now`.
    pub fn scaled(&mut self, now: i64, change: i32) {
        self.events.retain(|e| e.at > now - 1800);
        self.events.push(Sample { at: now, value: change });
    }
}

/// What evaluation needs of an autoscaler's spec (a HorizontalPodAutoscaler's or a
/// FederatedHPA's: the same fields).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub min: i32,
    pub max: i32,
    /// `metrics`, defaulted to 80 % CPU utilization when empty, as the API server does.
    pub metrics: Vec<Value>,
    pub behavior: Option<Behavior>,
}

impl Spec {
    /// From a spec object.
    pub fn from_json(spec: &Value) -> Spec {
        let metrics = match spec["metrics"].as_array() {
            Some(m) if !m.is_empty() => m.clone(),
            _ => vec![json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}})],
        };
        Spec {
            min: spec["minReplicas"].as_i64().map_or(1, |m| m as i32),
            max: spec["maxReplicas"].as_i64().unwrap_or(0) as i32,
            metrics,
            behavior: serde_json::from_value(spec["behavior"].clone()).ok(),
        }
    }
}

/// A resource metric of a spec: (resource, target); other metric types are not supported.
pub fn resource_target(metric: &Value) -> Option<(String, Target)> {
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
            Target::AverageValue(crate::quantity::parse_milli(target["averageValue"].as_str()?)?),
        )),
        _ => None,
    }
}

/// Whether a pod counts as ready for the calculation (Running and Ready).
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Whether a pod takes part at all (not being deleted, not finished).
pub fn pod_counts(pod: &Value) -> bool {
    crate::object::meta_str(pod, "deletionTimestamp").is_none()
        && !matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// A pod's request for `resource` over its containers (`None` if a container has none).
pub fn pod_request(pod: &Value, resource: &str) -> Option<i128> {
    let mut total = 0;
    for c in pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        let q = c.pointer(&format!("/resources/requests/{resource}")).and_then(Value::as_str)?;
        total += crate::quantity::parse_milli(q)?;
    }
    Some(total)
}

/// What one evaluation decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The target has 0 replicas and `minReplicas` is not 0: scaling is off.
    Disabled,
    /// The current replicas are outside min/max: the bound, whatever the metrics say.
    Bounds { replicas: i32, limit: Limit, why: &'static str },
    /// No metric gave a recommendation.
    NoMetrics(MetricError),
    /// The metrics' recommendation, normalized.
    Metrics {
        normalized: Normalized,
        /// The metric that asked for the most, as messages name it.
        metric: String,
        /// `status.currentMetrics`.
        current_metrics: Vec<Value>,
    },
}

/// An Event an evaluation is reported with (the HPA's reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventReason {
    SuccessfulRescale,
    FailedRescale,
    FailedGetResourceMetric,
}

/// Evaluates an autoscaler whose target has `current` replicas; `samples(resource)` gives the
/// target's pods as the metric of `resource` sees them. The recommendation joins `history`.
pub fn evaluate(
    now: i64,
    current: i32,
    spec: &Spec,
    samples: impl Fn(&str) -> Vec<PodSample>,
    history: &mut History,
) -> Outcome {
    if current == 0 && spec.min != 0 {
        return Outcome::Disabled;
    }
    if current > spec.max {
        return Outcome::Bounds {
            replicas: spec.max,
            limit: Limit::TooManyReplicas,
            why: "Current number of replicas above Spec.MaxReplicas",
        };
    }
    if current < spec.min {
        return Outcome::Bounds {
            replicas: spec.min,
            limit: Limit::TooFewReplicas,
            why: "Current number of replicas below Spec.MinReplicas",
        };
    }
    let mut best: Option<(i32, String)> = None;
    let mut current_metrics = Vec::new();
    let mut failure: Option<MetricError> = None;
    for metric in &spec.metrics {
        let Some((resource, target)) = resource_target(metric) else {
            failure.get_or_insert(MetricError {
                reason: "FailedGetObjectMetric",
                message: format!(
                    "unsupported metric {}: karmada-rs scales on resource metrics (cpu, memory)",
                    metric["type"]
                ),
            });
            continue;
        };
        match resource_replicas(current, &samples(&resource), target, &resource, TOLERANCE) {
            Ok(r) => {
                let mut value = json!({"averageValue": crate::quantity::format_milli(r.average)});
                let described = match target {
                    Target::Utilization(_) => {
                        value["averageUtilization"] = json!(r.utilization);
                        format!("{resource} resource utilization (percentage of request)")
                    }
                    Target::AverageValue(_) => format!("{resource} resource"),
                };
                if best.as_ref().is_none_or(|(replicas, _)| r.replicas > *replicas) {
                    best = Some((r.replicas, described));
                }
                current_metrics.push(
                    json!({"type": "Resource", "resource": {"name": resource, "current": value}}),
                );
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let Some((recommended, metric)) = best else {
        return Outcome::NoMetrics(failure.unwrap_or(MetricError {
            reason: "FailedGetResourceMetric",
            message: "no metrics".into(),
        }));
    };
    let normalized = normalize(
        now,
        current,
        recommended,
        spec.min,
        spec.max,
        spec.behavior.as_ref(),
        &mut history.recommendations,
        &history.events,
    );
    Outcome::Metrics { normalized, metric, current_metrics }
}

/// A status condition, keeping its transition time from `old` when its status did not change.
pub fn condition(
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

/// The status of an autoscaler whose target could not be read.
pub fn failed_get_scale_status(message: &str, old_status: &Value, now: &str) -> Value {
    let old = old_status["conditions"].as_array().cloned().unwrap_or_default();
    json!({
        "currentReplicas": old_status["currentReplicas"],
        "desiredReplicas": old_status["desiredReplicas"].as_i64().unwrap_or(0),
        "conditions": [condition("AbleToScale", false, "FailedGetScale", message, &old, now)],
    })
}

impl Outcome {
    /// The replicas to write to the target, when they change.
    pub fn scale_to(&self, current: i32) -> Option<i32> {
        match self {
            Outcome::Bounds { replicas, .. } => Some(*replicas),
            Outcome::Metrics { normalized, .. } if normalized.replicas != current => {
                Some(normalized.replicas)
            }
            _ => None,
        }
    }

    /// The Event to report, given how writing `scale_to` went (`None`: nothing was written).
    pub fn event(
        &self,
        current: i32,
        scaled: Option<&Result<(), String>>,
    ) -> Option<(EventReason, String)> {
        let new = self.scale_to(current)?;
        match (self, scaled) {
            (_, Some(Err(e))) => {
                Some((EventReason::FailedRescale, format!("New size: {new}; error: {e}")))
            }
            (Outcome::Bounds { why, .. }, Some(Ok(()))) => {
                Some((EventReason::SuccessfulRescale, format!("New size: {new}; reason: {why}")))
            }
            (Outcome::Metrics { metric, .. }, Some(Ok(()))) => {
                let direction = if new > current { "above" } else { "below" };
                Some((
                    EventReason::SuccessfulRescale,
                    format!("New size: {new}; reason: {metric} {direction} target"),
                ))
            }
            _ => None,
        }
    }

    /// The Event for a failed metric (reported even though nothing was scaled).
    pub fn metric_event(&self) -> Option<(EventReason, String)> {
        match self {
            Outcome::NoMetrics(e) => {
                Some((EventReason::FailedGetResourceMetric, e.message.clone()))
            }
            _ => None,
        }
    }

    /// The autoscaler's new status from its `old_status`, given how writing `scale_to` went.
    pub fn status(
        &self,
        current: i32,
        scaled: Option<&Result<(), String>>,
        old_status: &Value,
        now: &str,
        generation: Option<i64>,
    ) -> Value {
        let old = old_status["conditions"].as_array().cloned().unwrap_or_default();
        let cond = |t: &str, s: bool, r: &str, m: &str| condition(t, s, r, m, &old, now);
        let got_scale = || {
            cond(
                "AbleToScale",
                true,
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            )
        };
        let able = |to: i32| match scaled {
            Some(Err(e)) => cond(
                "AbleToScale",
                false,
                "FailedUpdateScale",
                &format!("New size: {to}; error: {e}"),
            ),
            Some(Ok(())) => cond(
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {to}"),
            ),
            None => cond(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
        };
        let scaled_now = matches!(scaled, Some(Ok(())));
        let mut last_scale_time = old_status["lastScaleTime"].clone();
        if scaled_now {
            last_scale_time = json!(now);
        }
        let mut status = match self {
            Outcome::Disabled => json!({"currentReplicas": 0, "desiredReplicas": 0, "conditions": [
                got_scale(),
                cond("ScalingActive", false, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero"),
            ]}),
            Outcome::Bounds { replicas, limit, why } => {
                let (_, reason, _) = limit.condition();
                json!({"currentReplicas": current, "desiredReplicas": replicas, "conditions": [
                    able(*replicas),
                    cond("ScalingLimited", true, reason, why),
                ]})
            }
            Outcome::NoMetrics(e) => {
                json!({"currentReplicas": current, "desiredReplicas": current, "conditions": [
                    got_scale(),
                    cond("ScalingActive", false, e.reason, &e.message),
                ]})
            }
            Outcome::Metrics { normalized, metric, current_metrics } => {
                let (limited, reason, message) = normalized.limit.condition();
                json!({"currentReplicas": current, "desiredReplicas": normalized.replicas,
                    "currentMetrics": current_metrics, "conditions": [
                    able(normalized.replicas),
                    cond("ScalingActive", true, "ValidMetricFound", &format!("the HPA was able to successfully calculate a replica count from {metric}")),
                    cond("ScalingLimited", limited, reason, message),
                ]})
            }
        };
        if !last_scale_time.is_null() {
            status["lastScaleTime"] = last_scale_time;
        }
        if let Some(g) = generation {
            status["observedGeneration"] = json!(g);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(usages: &[Option<i128>], request: i128) -> Vec<PodSample> {
        usages
            .iter()
            .map(|u| PodSample { ready: true, usage: *u, request: Some(request) })
            .collect()
    }

    fn replicas(current: i32, pods: &[PodSample], target: Target) -> i32 {
        resource_replicas(current, pods, target, "cpu", TOLERANCE).unwrap().replicas
    }

    #[test]
    fn utilization_drives_replicas_within_tolerance() {
        // 3 pods at 90% of 100m against 50%: ceil(1.8 × 3) = 6.
        assert_eq!(replicas(3, &pods(&[Some(90); 3], 100), Target::Utilization(50)), 6);
        // 53% against 50% is within 10%: unchanged.
        assert_eq!(replicas(3, &pods(&[Some(53); 3], 100), Target::Utilization(50)), 3);
        // 10% against 50%: ceil(0.2 × 4) = 1.
        assert_eq!(replicas(4, &pods(&[Some(10); 4], 100), Target::Utilization(50)), 1);
        // Average value: 300m per pod against 100m.
        assert_eq!(replicas(2, &pods(&[Some(300); 2], 100), Target::AverageValue(100)), 6);
        let found = resource_replicas(
            2,
            &pods(&[Some(75); 2], 100),
            Target::Utilization(50),
            "cpu",
            TOLERANCE,
        )
        .unwrap();
        assert_eq!((found.utilization, found.average), (75, 75));
    }

    #[test]
    fn unready_and_missing_pods_damp_the_change() {
        // Scaling up: an unready pod counts as idle. 2 ready at 100% + 1 unready at 0 → 66% vs
        // 50% → ceil(1.33 × 3) = 4 (not ceil(2 × 2) = 4 either way here), and one at 60%:
        let mut three = pods(&[Some(60), Some(60)], 100);
        three.push(PodSample { ready: false, usage: None, request: Some(100) });
        // (60+60+0)/300 = 40% < 50%: the unready pod reverses the direction → unchanged.
        assert_eq!(replicas(3, &three, Target::Utilization(50)), 3);
        // Scaling down with a pod missing metrics: it counts at its request.
        let missing = pods(&[Some(10), Some(10), None], 100);
        // ready ratio 0.2; with the missing pod at 100%: 120/300 = 40% → ceil(0.8 × 3) = 3.
        assert_eq!(replicas(3, &missing, Target::Utilization(50)), 3);
        let errors = [
            resource_replicas(1, &[], Target::Utilization(50), "cpu", TOLERANCE),
            resource_replicas(1, &pods(&[None], 100), Target::Utilization(50), "cpu", TOLERANCE),
            resource_replicas(
                1,
                &[PodSample { ready: true, usage: Some(5), request: None }],
                Target::Utilization(50),
                "cpu",
                TOLERANCE,
            ),
        ];
        for e in errors {
            assert_eq!(e.unwrap_err().reason, "FailedGetResourceMetric");
        }
    }

    fn behavior(up_window: i32, down_window: i32) -> Behavior {
        Behavior {
            scale_up: Some(ScalingRules {
                stabilization_window_seconds: Some(up_window),
                ..Default::default()
            }),
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(down_window),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn scale_down_waits_for_its_stabilization_window() {
        let b = behavior(0, 60);
        let mut history = Vec::new();
        // t=0: 8 recommended from 8.
        assert_eq!(normalize(0, 8, 8, 1, 10, Some(&b), &mut history, &[]).replicas, 8);
        // t=30: 2 recommended, but 8 was recommended within the window: stay at 8.
        assert_eq!(normalize(30, 8, 2, 1, 10, Some(&b), &mut history, &[]).replicas, 8);
        // t=61: the 8 left the window; the highest since is 2.
        assert_eq!(normalize(61, 8, 2, 1, 10, Some(&b), &mut history, &[]).replicas, 2);
    }

    #[test]
    fn scale_up_is_limited_by_rate_policies_and_bounds() {
        let mut history = Vec::new();
        // Default scale-up: max(double, +4) per 15 s: 2 → 6, not 20.
        let up = normalize(0, 2, 20, 1, 50, None, &mut history, &[]);
        assert_eq!(up, Normalized { replicas: 6, limit: Limit::ScaleUpLimit });
        // Having just added 4, the period's start was 2: still at most 6.
        let again = normalize(5, 6, 20, 1, 50, None, &mut history, &[Sample { at: 0, value: 4 }]);
        assert_eq!(again.replicas, 6);
        // After the period, from 6: 12.
        assert_eq!(
            normalize(16, 6, 20, 1, 50, None, &mut history, &[Sample { at: 0, value: 4 }]).replicas,
            12
        );
        // Where max is as tight as the rate limit, max names the limit (as upstream's).
        assert_eq!(
            normalize(0, 2, 20, 1, 6, None, &mut Vec::new(), &[]),
            Normalized { replicas: 6, limit: Limit::TooManyReplicas }
        );
        // Bounds last.
        assert_eq!(
            normalize(40, 12, 20, 1, 10, Some(&behavior(0, 0)), &mut Vec::new(), &[]).limit,
            Limit::TooManyReplicas
        );
        assert_eq!(
            normalize(40, 3, 0, 2, 10, Some(&behavior(0, 0)), &mut Vec::new(), &[]),
            Normalized { replicas: 2, limit: Limit::TooFewReplicas }
        );
    }

    #[test]
    fn evaluation_decides_bounds_first_then_metrics_and_says_why() {
        let spec = Spec::from_json(&json!({"minReplicas": 2, "maxReplicas": 6}));
        assert_eq!(spec.metrics[0]["resource"]["target"]["averageUtilization"], 80);
        let busy = |_: &str| pods(&[Some(180), Some(180)], 100);
        let mut history = History::default();
        // Zero replicas with a minimum: off.
        let off = evaluate(0, 0, &spec, busy, &mut history);
        assert_eq!(off, Outcome::Disabled);
        assert_eq!(off.scale_to(0), None);
        let status = off.status(0, None, &json!({}), "t0", Some(3));
        assert_eq!(status["conditions"][1]["reason"], "ScalingDisabled");
        assert_eq!(status["observedGeneration"], 3);
        // Below the minimum: the minimum, whatever the metrics say.
        let below = evaluate(0, 1, &spec, |_: &str| Vec::new(), &mut history);
        assert_eq!(below.scale_to(1), Some(2));
        assert_eq!(
            below.event(1, Some(&Ok(()))),
            Some((
                EventReason::SuccessfulRescale,
                "New size: 2; reason: Current number of replicas below Spec.MinReplicas".into()
            ))
        );
        let status = below.status(1, Some(&Ok(())), &json!({}), "t1", None);
        assert_eq!(status["desiredReplicas"], 2);
        assert_eq!(status["lastScaleTime"], "t1");
        assert_eq!(status["conditions"][1]["reason"], "TooFewReplicas");
        // Above the maximum: the maximum.
        assert_eq!(evaluate(0, 9, &spec, busy, &mut history).scale_to(9), Some(6));
        // 180 % of an 80 % target on 2 pods: 5 (within the default rate limit of +4 or ×2).
        let up = evaluate(0, 2, &spec, busy, &mut history);
        assert_eq!(up.scale_to(2), Some(5));
        let (reason, message) = up.event(2, Some(&Ok(()))).unwrap();
        assert_eq!(reason, EventReason::SuccessfulRescale);
        assert_eq!(
            message,
            "New size: 5; reason: cpu resource utilization (percentage of request) above target"
        );
        let status = up.status(2, Some(&Ok(())), &json!({}), "t2", None);
        assert_eq!(status["currentMetrics"][0]["resource"]["current"]["averageUtilization"], 180);
        assert_eq!(status["conditions"][0]["reason"], "SucceededRescale");
        assert_eq!(status["conditions"][1]["reason"], "ValidMetricFound");
        // A failed write is reported as such.
        let failed = up.status(2, Some(&Err("conflict".into())), &json!({}), "t2", None);
        assert_eq!(failed["conditions"][0]["status"], "False");
        assert_eq!(failed["conditions"][0]["reason"], "FailedUpdateScale");
        assert!(failed.get("lastScaleTime").is_none());
        // No pods: no metrics, no scaling, the reason in ScalingActive and an Event.
        let none = evaluate(0, 3, &spec, |_: &str| Vec::new(), &mut history);
        assert_eq!(none.scale_to(3), None);
        assert_eq!(none.metric_event().unwrap().0, EventReason::FailedGetResourceMetric);
        let status = none.status(3, None, &json!({}), "t3", None);
        assert_eq!(status["conditions"][1]["status"], "False");
        assert_eq!(status["conditions"][1]["reason"], "FailedGetResourceMetric");
        // Transition times stay while a condition's status stays.
        let again = none.status(3, None, &status, "t4", None);
        assert_eq!(again["conditions"][1]["lastTransitionTime"], "t3");
    }

    #[test]
    fn behavior_reads_the_api_shape() {
        let spec = Spec::from_json(&json!({"maxReplicas": 3, "behavior": {"scaleDown": {
            "stabilizationWindowSeconds": 10, "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}}}));
        let down = spec.behavior.unwrap().scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(10));
        assert_eq!(down.policies.unwrap()[0].period_seconds, 30);
        assert_eq!(spec.min, 1);
    }
}
