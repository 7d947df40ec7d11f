//! The Job and CronJob controllers: pods until completions, success after the configured run
//! time, and Jobs made on schedule.

use super::*;

impl Sim {
    pub(super) async fn sync_job(&mut self, ns: &str, name: &str) {
        let Some(job) = self.get(Kind::Job, ns, name).cloned() else { return };
        if deleting(&job) {
            return;
        }
        let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
        let parallelism = job.pointer("/spec/parallelism").and_then(Value::as_i64).unwrap_or(1);
        let pods = self.live_pods_of(ns, &job);
        let succeeded = pods
            .iter()
            .filter(|(_, p)| p.pointer("/status/phase") == Some(&json!("Succeeded")))
            .count() as i64;
        let failed = pods
            .iter()
            .filter(|(_, p)| p.pointer("/status/phase") == Some(&json!("Failed")))
            .count() as i64;
        let active = pods.iter().filter(|(_, p)| !terminated(p)).count() as i64;
        let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let want_active =
            if suspended { 0 } else { parallelism.min(completions - succeeded).max(0) };
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let controller_uid = uid(&job);
        for _ in active..want_active {
            let pod_name =
                format!("{name}-{}", &short_hash(&uuid::Uuid::new_v4().to_string())[..5]);
            let extra: BTreeMap<String, String> = [
                ("batch.kubernetes.io/controller-uid".to_owned(), controller_uid.clone()),
                ("batch.kubernetes.io/job-name".to_owned(), name.to_owned()),
                ("job-name".to_owned(), name.to_owned()),
            ]
            .into_iter()
            .collect();
            let pod = self.pod_template(
                &template,
                &pod_name,
                ns,
                owner_ref(&job, "Job", "batch/v1"),
                &extra,
            );
            self.create(Kind::Pod, ns, pod).await;
        }
        let start =
            job.pointer("/status/startTime").cloned().unwrap_or_else(|| json!(now_rfc3339()));
        let mut status =
            json!({"startTime": start, "active": active, "succeeded": succeeded, "failed": failed});
        if succeeded >= completions {
            let done = job
                .pointer("/status/completionTime")
                .cloned()
                .unwrap_or_else(|| json!(now_rfc3339()));
            status["completionTime"] = done;
            status["active"] = json!(0);
            status["conditions"] = json!([
                condition("Complete", true, "", ""),
                condition("SuccessCriteriaMet", true, "", "")
            ]);
        } else if failed > job.pointer("/spec/backoffLimit").and_then(Value::as_i64).unwrap_or(6) {
            status["conditions"] = json!([condition(
                "Failed",
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            )]);
        }
        for field in ["active", "succeeded", "failed"] {
            if status[field] == 0 {
                status.as_object_mut().map(|m| m.remove(field));
            }
        }
        self.set_status(Kind::Job, ns, name, status).await;
    }

    pub(super) async fn sync_cronjob(&mut self, ns: &str, name: &str) {
        let Some(cj) = self.get(Kind::CronJob, ns, name).cloned() else { return };
        if deleting(&cj) || cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
            return;
        }
        // Runs at the minutes the (UTC) schedule names; a missed minute is not caught up.
        let text = cj.pointer("/spec/schedule").and_then(Value::as_str).unwrap_or_default();
        let Ok(schedule) = apimachinery::cron::Schedule::parse(text) else {
            tracing::debug!(cronjob = name, schedule = text, "unparsable schedule");
            return;
        };
        let now = apiserver::api::now_seconds();
        let slot = now - now.rem_euclid(60);
        let last = cj
            .pointer("/status/lastScheduleTime")
            .and_then(Value::as_str)
            .and_then(apimachinery::time::parse_rfc3339)
            .unwrap_or(0);
        if last >= slot || !schedule.matches(slot) {
            return;
        }
        let job_name = format!("{name}-{}", slot / 60);
        let template = cj.pointer("/spec/jobTemplate").cloned().unwrap_or(json!({}));
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
            "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        object::set_meta(&mut job, "name", json!(job_name));
        object::set_meta(&mut job, "ownerReferences", owner_ref(&cj, "CronJob", "batch/v1"));
        self.create(Kind::Job, ns, job).await;
        let time = apimachinery::time::format_rfc3339(slot);
        self.update(Kind::CronJob, ns, name, move |o| {
            o["status"]["lastScheduleTime"] = json!(time)
        })
        .await;
    }
}
