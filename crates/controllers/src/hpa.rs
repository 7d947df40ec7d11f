//! The Kubernetes HPA algorithm, as pure functions over the pods of every member cluster (what
//! upstream's FederatedHPA controller runs): resource metrics → a replica recommendation
//! (`resource_replicas`, kube-controller-manager's replica calculator: 10 % tolerance, unready
//! and missing pods assumed at 0 % / 100 % in the direction that damps the change), then the
//! recommendation normalized by `behavior` (stabilization windows over past recommendations,
//! rate policies over past scale events) and min/max (`normalize`).

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

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
fn rules(given: Option<&HPAScalingRules>, up: bool) -> (i64, Vec<(String, i32, i64)>, String) {
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
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
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

    fn behavior(up_window: i32, down_window: i32) -> HorizontalPodAutoscalerBehavior {
        HorizontalPodAutoscalerBehavior {
            scale_up: Some(HPAScalingRules {
                stabilization_window_seconds: Some(up_window),
                ..Default::default()
            }),
            scale_down: Some(HPAScalingRules {
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
}
