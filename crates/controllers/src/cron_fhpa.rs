//! CronFederatedHPA (`autoscaling.karmada.io/v1alpha1`), upstream's
//! `cronFederatedHorizontalPodAutoscaler` controller: each rule's cron schedule (five fields,
//! in its `timeZone`, UTC by default) fires at most once per scheduled minute; a rule scales a
//! workload template to `targetReplicas`, or sets a FederatedHPA's `minReplicas` /
//! `maxReplicas`; suspended rules wait. Status keeps, per rule, the next execution time and
//! the last `successfulHistoryLimit` / `failedHistoryLimit` (default 3) executions.

use std::collections::HashMap;
use std::time::Duration;

use apimachinery::cron::Schedule;

use crate::federated_hpa::Kinds;
use karmada_api::autoscaling::{CronFederatedHPA, CronFederatedHPARule, ExecutionHistory};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// How often schedules are looked at (each fires within this of its minute).
const TICK: Duration = Duration::from_secs(5);
/// A rule's history keeps this many executions of each outcome by default.
const DEFAULT_HISTORY: i32 = 3;

/// The offset (seconds east of UTC) of `time_zone` at `at` (UTC when unset).
pub fn offset(time_zone: Option<&str>, at: i64) -> Result<i64, String> {
    let Some(name) = time_zone.filter(|z| !z.is_empty()) else { return Ok(0) };
    let zone =
        jiff::tz::TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))?;
    let instant = jiff::Timestamp::from_second(at).map_err(|e| e.to_string())?;
    Ok(i64::from(zone.to_offset(instant).seconds()))
}

/// The scheduled minutes (unix seconds of their start) in `(after, until]`, the latest last.
pub fn due(schedule: &Schedule, time_zone: Option<&str>, after: i64, until: i64) -> Option<i64> {
    let mut minute = until - until.rem_euclid(60);
    while minute > after {
        let local = minute + offset(time_zone, minute).ok()?;
        if schedule.matches(local) {
            return Some(minute);
        }
        minute -= 60;
    }
    None
}

/// The next scheduled minute after `now` (within a year).
pub fn next(schedule: &Schedule, time_zone: Option<&str>, now: i64) -> Option<i64> {
    let mut minute = now - now.rem_euclid(60) + 60;
    for _ in 0..(366 * 24 * 60) {
        let local = minute + offset(time_zone, minute).ok()?;
        if schedule.matches(local) {
            return Some(minute);
        }
        minute += 60;
    }
    None
}

fn time(at: i64) -> Value {
    json!(apimachinery::time::format_rfc3339(at))
}

/// Applies one rule to its target; returns what it applied (the execution's fields).
async fn apply(
    client: &kube::Client,
    kinds: &Kinds,
    namespace: &str,
    target: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
    rule: &CronFederatedHPARule,
) -> Result<Value, String> {
    let api_version = target.api_version.clone().unwrap_or_else(|| "apps/v1".into());
    if target.kind == "FederatedHPA" {
        let fhpas: Api<karmada_api::autoscaling::FederatedHPA> =
            Api::namespaced(client.clone(), namespace);
        let mut spec = serde_json::Map::new();
        let mut applied = serde_json::Map::new();
        if let Some(min) = rule.target_min_replicas {
            spec.insert("minReplicas".into(), json!(min));
            applied.insert("appliedMinReplicas".into(), json!(min));
        }
        if let Some(max) = rule.target_max_replicas {
            spec.insert("maxReplicas".into(), json!(max));
            applied.insert("appliedMaxReplicas".into(), json!(max));
        }
        if spec.is_empty() {
            return Err(
                "a rule on a FederatedHPA needs targetMinReplicas or targetMaxReplicas".into()
            );
        }
        fhpas
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(json!({"spec": spec})))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Value::Object(applied));
    }
    let Some(replicas) = rule.target_replicas else {
        return Err(format!("a rule on a {} needs targetReplicas", target.kind));
    };
    let templates = kinds
        .templates(client, namespace, &api_version, &target.kind)
        .await
        .map_err(|e| e.to_string())?;
    templates
        .patch(
            &target.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"appliedReplicas": replicas}))
}

/// One pass over a CronFederatedHPA: fires the rules that are due since `last` (by rule),
/// and writes the status.
async fn pass(
    client: &kube::Client,
    kinds: &Kinds,
    cron: &CronFederatedHPA,
    last: &mut HashMap<String, i64>,
    now: i64,
) -> Result<(), kube::Error> {
    let namespace = cron.metadata.namespace.clone().unwrap_or_default();
    let name = cron.metadata.name.clone().unwrap_or_default();
    let uid = cron.metadata.uid.clone().unwrap_or_default();
    let old = cron.status.clone().unwrap_or_default();
    let mut histories = Vec::new();
    for rule in &cron.spec.rules {
        let mut history = old
            .execution_histories
            .iter()
            .find(|h| h.rule_name == rule.name)
            .cloned()
            .unwrap_or_else(|| ExecutionHistory {
                rule_name: rule.name.clone(),
                ..Default::default()
            });
        let Ok(schedule) = Schedule::parse(&rule.schedule) else {
            histories.push(history);
            continue;
        };
        let zone = rule.time_zone.as_deref();
        let key = format!("{uid}/{}", rule.name);
        let since = *last.entry(key.clone()).or_insert(now);
        last.insert(key, now);
        let mut value = serde_json::to_value(&history).unwrap_or_default();
        if rule.suspend != Some(true)
            && let Some(scheduled) = due(&schedule, zone, since, now)
        {
            match apply(client, kinds, &namespace, &cron.spec.scale_target_ref, rule).await {
                Ok(applied) => {
                    let mut execution =
                        json!({"scheduleTime": time(scheduled), "executionTime": time(now)});
                    for (k, v) in applied.as_object().into_iter().flatten() {
                        execution[k] = v.clone();
                    }
                    push_limited(
                        &mut value,
                        "successfulExecutions",
                        execution,
                        rule.successful_history_limit,
                    );
                }
                Err(message) => {
                    tracing::warn!(cron = %name, rule = %rule.name, %message, "CronFederatedHPA rule failed");
                    let execution = json!({"scheduleTime": time(scheduled), "executionTime": time(now), "message": message});
                    push_limited(
                        &mut value,
                        "failedExecutions",
                        execution,
                        rule.failed_history_limit,
                    );
                }
            }
        }
        value["ruleName"] = json!(rule.name);
        match next(&schedule, zone, now) {
            Some(at) if rule.suspend != Some(true) => value["nextExecutionTime"] = time(at),
            _ => {
                if let Some(map) = value.as_object_mut() {
                    map.remove("nextExecutionTime");
                }
            }
        }
        history = serde_json::from_value(value).unwrap_or(history);
        histories.push(history);
    }
    if histories != old.execution_histories {
        let api: Api<CronFederatedHPA> = Api::namespaced(client.clone(), &namespace);
        let status = json!({"status": {"executionHistories": histories}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
    }
    Ok(())
}

/// Appends an execution, keeping the newest `limit` (default 3).
fn push_limited(history: &mut Value, field: &str, execution: Value, limit: Option<i32>) {
    let limit = usize::try_from(limit.unwrap_or(DEFAULT_HISTORY)).unwrap_or(0);
    if !history[field].is_array() {
        history[field] = json!([]);
    }
    if let Some(list) = history[field].as_array_mut() {
        list.push(execution);
        let excess = list.len().saturating_sub(limit);
        list.drain(..excess);
    }
}

/// Runs the CronFederatedHPA controller until the future is dropped.
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let api: Api<CronFederatedHPA> = Api::all(client.clone());
    let mut last: HashMap<String, i64> = HashMap::new();
    let kinds = Kinds::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let crons = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::debug!(error = %e, "listing CronFederatedHPAs");
                continue;
            }
        };
        let now = crate::now_secs();
        let live: Vec<String> = crons.iter().filter_map(|c| c.metadata.uid.clone()).collect();
        last.retain(|key, _| live.iter().any(|uid| key.starts_with(uid.as_str())));
        for cron in crons.iter().filter(|c| c.metadata.deletion_timestamp.is_none()) {
            if let Err(e) = pass(&client, &kinds, cron, &mut last, now).await {
                tracing::debug!(error = %e, "CronFederatedHPA status");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_once_per_scheduled_minute_in_their_zone() {
        let every_minute = Schedule::parse("*/1 * * * *").unwrap();
        // 2026-11-25T10:30:00Z.
        let t = 1_795_602_600;
        assert_eq!(due(&every_minute, None, t - 1, t + 5), Some(t));
        assert_eq!(due(&every_minute, None, t + 5, t + 10), None, "not twice in one minute");
        assert_eq!(next(&every_minute, None, t + 5), Some(t + 60));
        let at_ten = Schedule::parse("30 10 * * *").unwrap();
        assert_eq!(due(&at_ten, None, t - 60, t), Some(t));
        // 10:30 in Tokyo (UTC+9) is 01:30 UTC.
        assert_eq!(offset(Some("Asia/Tokyo"), t), Ok(9 * 3600));
        assert_eq!(due(&at_ten, Some("Asia/Tokyo"), t - 60, t), None);
        assert_eq!(next(&at_ten, Some("Asia/Tokyo"), t), Some(t + 15 * 3600));
        assert!(offset(Some("Mars/Olympus"), t).is_err());
    }

    #[test]
    fn histories_keep_the_newest_executions() {
        let mut history = json!({});
        for i in 0..5 {
            push_limited(&mut history, "successfulExecutions", json!(i), None);
        }
        assert_eq!(history["successfulExecutions"], json!([2, 3, 4]));
        push_limited(&mut history, "failedExecutions", json!("x"), Some(0));
        assert_eq!(history["failedExecutions"], json!([]));
    }
}
