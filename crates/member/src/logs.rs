//! Pod logs (`pods/<name>/log`) for simulated members: each started container "writes" a
//! start line, a line naming where it runs, then a heartbeat every [`HEARTBEAT`] seconds while it
//! runs. The lines are derived from the pod (its container's start time), so every read agrees
//! with the last; `follow` keeps the response open and writes each heartbeat as it falls due,
//! until the container stops, the pod goes, or the client leaves. `container`, `tailLines`,
//! `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes` and `previous` behave as the
//! kubelet's, with its error messages.

use std::time::Duration;

use apimachinery::ApiError;
use apiserver::api::{Body, SubresourceRequest};
use bytes::Bytes;
use serde_json::Value;

/// Seconds between a running container's heartbeat lines.
pub const HEARTBEAT: i64 = 5;

/// At most this many heartbeat lines are kept (a container's log rotates).
const KEPT: i64 = 1000;

/// One container's log line: when, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub at: i64,
    pub text: String,
}

/// What a log request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub container: Option<String>,
    pub tail_lines: Option<usize>,
    /// Only lines at or after this time.
    pub since: Option<i64>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
    pub previous: bool,
    pub follow: bool,
}

impl Options {
    fn parse(query: &apiserver::request::Query, now: i64) -> Result<Options, ApiError> {
        let number = |name: &str| -> Result<Option<i64>, ApiError> {
            match query.get(name) {
                None => Ok(None),
                Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                    ApiError::bad_request(format!("{name}: invalid value {v:?}: must be a number"))
                }),
            }
        };
        let since = match (number("sinceSeconds")?, query.get("sinceTime")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "at most one of sinceTime or sinceSeconds may be specified",
                ));
            }
            (Some(s), None) if s < 1 => {
                return Err(ApiError::bad_request("sinceSeconds: must be greater than 0"));
            }
            (Some(s), None) => Some(now - s),
            (None, Some(t)) => Some(apimachinery::time::parse_rfc3339(t).ok_or_else(|| {
                ApiError::bad_request(format!("sinceTime: invalid value {t:?}: not RFC 3339"))
            })?),
            (None, None) => None,
        };
        let non_negative = |name: &str, v: Option<i64>| -> Result<Option<usize>, ApiError> {
            match v {
                Some(n) if n < 0 => Err(ApiError::bad_request(format!(
                    "{name}: must be greater than or equal to 0"
                ))),
                Some(n) => Ok(Some(n as usize)),
                None => Ok(None),
            }
        };
        Ok(Options {
            container: query.get("container").map(str::to_owned),
            tail_lines: non_negative("tailLines", number("tailLines")?)?,
            since,
            timestamps: query.flag("timestamps"),
            limit_bytes: non_negative("limitBytes", number("limitBytes")?)?,
            previous: query.flag("previous"),
            follow: query.flag("follow"),
        })
    }
}

fn names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The container a request reads (the only one when it names none), as the kubelet decides.
pub fn container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let pod_name = apimachinery::object::name(pod);
    let all = names(pod);
    match asked {
        Some(name) if all.iter().any(|c| c == name) => Ok(name.to_owned()),
        Some(name) => {
            let init = pod
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(name));
            if init {
                Ok(name.to_owned())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {name} is not valid for pod {pod_name}"
                )))
            }
        }
        None if all.len() == 1 => Ok(all[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// When the container started and, if it stopped, when; `Err` when it has not started.
pub fn run_span(pod: &Value, container: &str) -> Result<(i64, Option<i64>), ApiError> {
    let pod_name = apimachinery::object::name(pod);
    let status = ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let state = status.and_then(|s| s.get("state"));
    let time =
        |v: Option<&Value>| v.and_then(Value::as_str).and_then(apimachinery::time::parse_rfc3339);
    if let Some(running) = state.and_then(|s| s.get("running"))
        && let Some(started) = time(running.get("startedAt"))
    {
        return Ok((started, None));
    }
    if let Some(ended) = state.and_then(|s| s.get("terminated"))
        && let Some(started) = time(ended.get("startedAt"))
    {
        return Ok((started, time(ended.get("finishedAt"))));
    }
    let reason = state
        .and_then(|s| s.pointer("/waiting/reason"))
        .and_then(Value::as_str)
        .unwrap_or("ContainerCreating");
    Err(ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
    )))
}

/// The container's log up to `now`.
pub fn lines(
    pod: &Value,
    container: &str,
    started: i64,
    ended: Option<i64>,
    now: i64,
) -> Vec<Line> {
    let image = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
    let mut out = vec![
        Line { at: started, text: format!("starting {container} ({image})") },
        Line {
            at: started,
            text: format!(
                "{container} running in pod {}/{} on node {node}",
                apimachinery::object::namespace(pod),
                apimachinery::object::name(pod)
            ),
        },
    ];
    let until = ended.unwrap_or(now).min(now);
    let beats = ((until - started) / HEARTBEAT).max(0);
    for n in (beats - KEPT + 1).max(1)..=beats {
        out.push(heartbeat(started, n));
    }
    if let Some(ended) = ended.filter(|e| *e <= now) {
        out.push(Line { at: ended, text: format!("{container} stopped") });
    }
    out
}

fn heartbeat(started: i64, n: i64) -> Line {
    Line { at: started + n * HEARTBEAT, text: format!("heartbeat {n}") }
}

/// The lines a request reads, as text, with its filters.
pub fn render(lines: &[Line], options: &Options) -> String {
    let selected: Vec<&Line> =
        lines.iter().filter(|l| options.since.is_none_or(|s| l.at >= s)).collect();
    let skip = options.tail_lines.map_or(0, |n| selected.len().saturating_sub(n));
    let mut text = String::new();
    for line in &selected[skip..] {
        text.push_str(&format_line(line, options.timestamps));
    }
    if let Some(limit) = options.limit_bytes {
        let mut cut = limit.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

fn format_line(line: &Line, timestamps: bool) -> String {
    if timestamps {
        let at = apimachinery::time::format_rfc3339(line.at);
        format!("{}.000000000Z {}\n", &at[..at.len() - 1], line.text)
    } else {
        format!("{}\n", line.text)
    }
}

/// Serves `pods/<name>/log`.
pub struct PodLogs;

pub(crate) async fn read_pod(
    storage: &apiserver::storage::Storage,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let def = storage
        .registry()
        .storage_def("", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    storage.read(&def, Some(namespace), name).await
}

#[async_trait::async_trait]
impl apiserver::Subresource for PodLogs {
    async fn serve(
        &self,
        request: SubresourceRequest<'_>,
    ) -> Result<http::Response<Body>, ApiError> {
        let namespace = request.target.namespace.clone().unwrap_or_default();
        let name = request.target.name.clone().unwrap_or_default();
        let now = apiserver::api::now_seconds();
        let options = Options::parse(request.query, now)?;
        let pod = read_pod(request.storage, &namespace, &name).await?;
        let container = container(&pod, options.container.as_deref())?;
        if options.previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let (started, ended) = run_span(&pod, &container)?;
        let past = render(&lines(&pod, &container, started, ended, now), &options);
        let response = |body: Body| {
            http::Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(body)
                .map_err(|e| ApiError::internal(e.to_string()))
        };
        if !options.follow || ended.is_some() {
            return response(apiserver::api::full(past));
        }
        // Following: what was written so far, then each heartbeat as it falls due.
        let storage = std::sync::Arc::clone(request.storage);
        let timestamps = options.timestamps;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            if !past.is_empty() && tx.send(Bytes::from(past)).await.is_err() {
                return;
            }
            let mut next = (now - started) / HEARTBEAT + 1;
            loop {
                let due = started + next * HEARTBEAT;
                let wait = (due - apiserver::api::now_seconds()).max(0) as u64;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    _ = tx.closed() => return,
                }
                // The pod or its container gone: the log ends.
                let Ok(pod) = read_pod(&storage, &namespace, &name).await else { return };
                if run_span(&pod, &container).map_or(true, |(s, e)| s != started || e.is_some()) {
                    return;
                }
                let line = format_line(&heartbeat(started, next), timestamps);
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
                next += 1;
            }
        });
        response(apiserver::api::channel_body(rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], started: &str) -> Value {
        json!({"metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"nodeName": "member1-worker",
                "containers": containers.iter().map(|c| json!({"name": c, "image": format!("{c}:1")})).collect::<Vec<_>>()},
            "status": {"containerStatuses": containers.iter().map(|c| json!({"name": c,
                "state": {"running": {"startedAt": started}}})).collect::<Vec<_>>()}})
    }

    #[test]
    fn the_container_is_the_only_one_or_the_named_one() {
        let one = pod(&["app"], "2026-01-01T00:00:00Z");
        assert_eq!(container(&one, None).unwrap(), "app");
        let two = pod(&["app", "sidecar"], "2026-01-01T00:00:00Z");
        assert_eq!(
            container(&two, None).unwrap_err().message,
            "a container name must be specified for pod web-1, choose one of: [app sidecar]"
        );
        assert_eq!(
            container(&two, Some("db")).unwrap_err().message,
            "container db is not valid for pod web-1"
        );
        let mut waiting = one.clone();
        waiting["status"]["containerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(
            run_span(&waiting, "app").unwrap_err().message,
            "container \"app\" in pod \"web-1\" is waiting to start: ImagePullBackOff"
        );
    }

    #[test]
    fn lines_grow_with_time_and_filter_as_the_kubelet_does() {
        let p = pod(&["app"], "2026-01-01T00:00:00Z");
        let started = apimachinery::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let log = lines(&p, "app", started, None, started + 12);
        assert_eq!(
            render(&log, &Options::default()),
            "starting app (app:1)\napp running in pod shop/web-1 on node member1-worker\nheartbeat 1\nheartbeat 2\n"
        );
        let tail = Options { tail_lines: Some(1), timestamps: true, ..Options::default() };
        assert_eq!(render(&log, &tail), "2026-01-01T00:00:10.000000000Z heartbeat 2\n");
        let since = Options { since: Some(started + 5), ..Options::default() };
        assert_eq!(render(&log, &since), "heartbeat 1\nheartbeat 2\n");
        let limited = Options { limit_bytes: Some(8), ..Options::default() };
        assert_eq!(render(&log, &limited), "starting");
        // A long-running container keeps its last KEPT heartbeats.
        let old = lines(&p, "app", started, None, started + HEARTBEAT * (KEPT + 50));
        assert_eq!(old.len() as i64, 2 + KEPT);
        let stopped = lines(&p, "app", started, Some(started + 6), started + 100);
        assert_eq!(stopped.last().unwrap().text, "app stopped");
    }
}
