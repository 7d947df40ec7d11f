//! Server-side printing (`meta.k8s.io/v1` Tables): the columns `kubectl get` shows.

use apimachinery::jsonpath::JsonPath;
use apimachinery::time::{human_duration, parse_rfc3339};
use serde_json::{Value, json};

use crate::registry::{Column, Printer, ResourceDef};

/// A column definition plus how to compute its cell.
struct Col {
    name: &'static str,
    type_: &'static str,
    priority: i64,
    cell: fn(&Value, i64) -> Value,
}

const fn col(
    name: &'static str,
    type_: &'static str,
    priority: i64,
    cell: fn(&Value, i64) -> Value,
) -> Col {
    Col { name, type_, priority, cell }
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    v.pointer(path)
}

fn text(v: &Value, path: &str) -> Value {
    match s(v, path) {
        Some(Value::String(x)) => json!(x),
        Some(Value::Null) | None => json!(""),
        Some(other) => json!(other.to_string()),
    }
}

fn int(v: &Value, path: &str) -> i64 {
    s(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn age_of(v: &Value, field: &str, now: i64) -> Value {
    match s(v, field).and_then(Value::as_str).and_then(parse_rfc3339) {
        Some(t) => json!(human_duration(now - t)),
        None => json!("<unknown>"),
    }
}

fn age(v: &Value, now: i64) -> Value {
    age_of(v, "/metadata/creationTimestamp", now)
}

fn name(v: &Value, _: i64) -> Value {
    text(v, "/metadata/name")
}

fn count(v: &Value, path: &str) -> usize {
    match s(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn or_none(s: String) -> Value {
    if s.is_empty() { json!("<none>") } else { json!(s) }
}

fn selector_string(v: &Value, path: &str) -> String {
    match s(v, path) {
        Some(sel @ Value::Object(_)) => apimachinery::selector::LabelSelector::from_object(sel)
            .map(|l| l.to_selector_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn containers_field(v: &Value, field: &str) -> Value {
    let items: Vec<String> = s(v, "/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get(field)?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    json!(items.join(","))
}

fn map_pairs(v: &Value, path: &str) -> String {
    s(v, path)
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<String> =
                m.iter().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default())).collect();
            pairs.sort();
            pairs.join(",")
        })
        .unwrap_or_default()
}

fn pod_ready(v: &Value) -> (usize, usize) {
    let total = s(v, "/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
    let ready = s(v, "/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |cs| cs.iter().filter(|c| c.get("ready") == Some(&json!(true))).count());
    (ready, total)
}

fn pod_status(v: &Value) -> String {
    if s(v, "/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let reason = s(v, "/status/reason").and_then(Value::as_str);
    if let Some(reason) = reason {
        return reason.to_owned();
    }
    if let Some(statuses) = s(v, "/status/containerStatuses").and_then(Value::as_array) {
        for c in statuses {
            if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                return r.to_owned();
            }
            if let Some(r) = c.pointer("/state/terminated/reason").and_then(Value::as_str)
                && s(v, "/status/phase").and_then(Value::as_str) != Some("Running")
            {
                return r.to_owned();
            }
        }
    }
    s(v, "/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_owned()
}

fn pod_restarts(v: &Value) -> i64 {
    s(v, "/status/containerStatuses").and_then(Value::as_array).map_or(0, |cs| {
        cs.iter().map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0)).sum()
    })
}

fn service_ports(v: &Value) -> String {
    let ports = s(v, "/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let parts: Vec<String> = ports
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    if parts.is_empty() { "<none>".into() } else { parts.join(",") }
}

fn external_ip(v: &Value) -> String {
    let mut ips: Vec<String> = s(v, "/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(ingress) = s(v, "/status/loadBalancer/ingress").and_then(Value::as_array) {
        for i in ingress {
            if let Some(ip) = i.get("ip").or_else(|| i.get("hostname")).and_then(Value::as_str) {
                ips.push(ip.to_owned());
            }
        }
    }
    if !ips.is_empty() {
        return ips.join(",");
    }
    match s(v, "/spec/type").and_then(Value::as_str) {
        Some("LoadBalancer") => "<pending>".into(),
        Some("ExternalName") => {
            s(v, "/spec/externalName").and_then(Value::as_str).unwrap_or_default().to_owned()
        }
        _ => "<none>".into(),
    }
}

fn condition_status(v: &Value, type_: &str) -> Option<String> {
    s(v, "/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
        .map(str::to_owned)
}

fn node_status(v: &Value) -> String {
    let mut status = match condition_status(v, "Ready").as_deref() {
        Some("True") => "Ready".to_owned(),
        _ => "NotReady".to_owned(),
    };
    if s(v, "/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(v: &Value) -> String {
    let roles: Vec<String> = s(v, "/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() { "<none>".into() } else { roles.join(",") }
}

fn job_status(v: &Value) -> String {
    for (cond, label) in
        [("Complete", "Complete"), ("Failed", "Failed"), ("Suspended", "Suspended")]
    {
        if condition_status(v, cond).as_deref() == Some("True") {
            return label.into();
        }
    }
    "Running".into()
}

fn job_duration(v: &Value, now: i64) -> Value {
    let start = s(v, "/status/startTime").and_then(Value::as_str).and_then(parse_rfc3339);
    let end = s(v, "/status/completionTime").and_then(Value::as_str).and_then(parse_rfc3339);
    match (start, end) {
        (Some(a), Some(b)) => json!(human_duration(b - a)),
        (Some(a), None) => json!(human_duration(now - a)),
        _ => json!(""),
    }
}

fn builtin_columns(kind: &str) -> Vec<Col> {
    let mut cols = vec![col("Name", "string", 0, name)];
    let extra: Vec<Col> = match kind {
        "Namespace" => vec![col("Status", "string", 0, |v, _| text(v, "/status/phase"))],
        "ConfigMap" => vec![col("Data", "integer", 0, |v, _| {
            json!(count(v, "/data") + count(v, "/binaryData"))
        })],
        "Secret" => vec![
            col("Type", "string", 0, |v, _| text(v, "/type")),
            col("Data", "integer", 0, |v, _| json!(count(v, "/data"))),
        ],
        "Service" => vec![
            col("Type", "string", 0, |v, _| text(v, "/spec/type")),
            col("Cluster-IP", "string", 0, |v, _| {
                or_none(text(v, "/spec/clusterIP").as_str().unwrap_or("").to_owned())
            }),
            col("External-IP", "string", 0, |v, _| json!(external_ip(v))),
            col("Port(s)", "string", 0, |v, _| json!(service_ports(v))),
        ],
        "ServiceAccount" => vec![col("Secrets", "integer", 0, |v, _| json!(count(v, "/secrets")))],
        "Pod" => vec![
            col("Ready", "string", 0, |v, _| {
                let (r, t) = pod_ready(v);
                json!(format!("{r}/{t}"))
            }),
            col("Status", "string", 0, |v, _| json!(pod_status(v))),
            col("Restarts", "string", 0, |v, _| json!(pod_restarts(v).to_string())),
        ],
        "Deployment" => vec![
            col("Ready", "string", 0, |v, _| {
                json!(format!(
                    "{}/{}",
                    int(v, "/status/readyReplicas"),
                    s(v, "/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
                ))
            }),
            col("Up-to-date", "integer", 0, |v, _| json!(int(v, "/status/updatedReplicas"))),
            col("Available", "integer", 0, |v, _| json!(int(v, "/status/availableReplicas"))),
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            col("Desired", "integer", 0, |v, _| {
                json!(s(v, "/spec/replicas").and_then(Value::as_i64).unwrap_or(1))
            }),
            col("Current", "integer", 0, |v, _| json!(int(v, "/status/replicas"))),
            col("Ready", "integer", 0, |v, _| json!(int(v, "/status/readyReplicas"))),
        ],
        "StatefulSet" => vec![col("Ready", "string", 0, |v, _| {
            json!(format!(
                "{}/{}",
                int(v, "/status/readyReplicas"),
                s(v, "/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
            ))
        })],
        "DaemonSet" => vec![
            col("Desired", "integer", 0, |v, _| json!(int(v, "/status/desiredNumberScheduled"))),
            col("Current", "integer", 0, |v, _| json!(int(v, "/status/currentNumberScheduled"))),
            col("Ready", "integer", 0, |v, _| json!(int(v, "/status/numberReady"))),
            col("Up-to-date", "integer", 0, |v, _| json!(int(v, "/status/updatedNumberScheduled"))),
            col("Available", "integer", 0, |v, _| json!(int(v, "/status/numberAvailable"))),
            col("Node Selector", "string", 0, |v, _| {
                or_none(map_pairs(v, "/spec/template/spec/nodeSelector"))
            }),
        ],
        "Job" => vec![
            col("Status", "string", 0, |v, _| json!(job_status(v))),
            col("Completions", "string", 0, |v, _| {
                json!(format!(
                    "{}/{}",
                    int(v, "/status/succeeded"),
                    s(v, "/spec/completions").and_then(Value::as_i64).unwrap_or(1)
                ))
            }),
            col("Duration", "string", 0, job_duration),
        ],
        "CronJob" => vec![
            col("Schedule", "string", 0, |v, _| text(v, "/spec/schedule")),
            col("Timezone", "string", 0, |v, _| {
                or_none(text(v, "/spec/timeZone").as_str().unwrap_or("").to_owned())
            }),
            col("Suspend", "boolean", 0, |v, _| {
                json!(s(v, "/spec/suspend").and_then(Value::as_bool).unwrap_or(false))
            }),
            col("Active", "integer", 0, |v, _| json!(count(v, "/status/active"))),
            col("Last Schedule", "string", 0, |v, now| match s(v, "/status/lastScheduleTime") {
                Some(_) => age_of(v, "/status/lastScheduleTime", now),
                None => json!("<none>"),
            }),
        ],
        "Node" => vec![
            col("Status", "string", 0, |v, _| json!(node_status(v))),
            col("Roles", "string", 0, |v, _| json!(node_roles(v))),
        ],
        "Event" => vec![
            col("Type", "string", 0, |v, _| text(v, "/type")),
            col("Reason", "string", 0, |v, _| text(v, "/reason")),
            col("Object", "string", 0, |v, _| {
                let kind =
                    v.pointer("/involvedObject/kind").or_else(|| v.pointer("/regarding/kind"));
                let name =
                    v.pointer("/involvedObject/name").or_else(|| v.pointer("/regarding/name"));
                json!(format!(
                    "{}/{}",
                    kind.and_then(Value::as_str).unwrap_or_default().to_lowercase(),
                    name.and_then(Value::as_str).unwrap_or_default()
                ))
            }),
            col("Message", "string", 0, |v, _| {
                v.get("message").or_else(|| v.get("note")).cloned().unwrap_or(json!(""))
            }),
        ],
        "Lease" => vec![col("Holder", "string", 0, |v, _| text(v, "/spec/holderIdentity"))],
        "EndpointSlice" => vec![
            col("AddressType", "string", 0, |v, _| text(v, "/addressType")),
            col("Ports", "string", 0, |v, _| {
                let ports: Vec<String> = s(v, "/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                        (Some(n), _) => n.to_string(),
                        (None, Some(Value::String(name))) => name.clone(),
                        _ => "*".to_owned(),
                    })
                    .collect();
                json!(at_most_three(&ports))
            }),
            col("Endpoints", "string", 0, |v, _| {
                let addresses: Vec<String> = s(v, "/endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|e| {
                        e.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default()
                    })
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                json!(at_most_three(&addresses))
            }),
        ],
        "Endpoints" => vec![col("Endpoints", "string", 0, |v, _| {
            let mut out = Vec::new();
            for subset in s(v, "/subsets").and_then(Value::as_array).into_iter().flatten() {
                for a in subset.get("addresses").and_then(Value::as_array).into_iter().flatten() {
                    for p in subset.get("ports").and_then(Value::as_array).into_iter().flatten() {
                        out.push(format!(
                            "{}:{}",
                            a.get("ip").and_then(Value::as_str).unwrap_or_default(),
                            p.get("port").and_then(Value::as_i64).unwrap_or(0)
                        ));
                    }
                }
            }
            or_none(out.join(","))
        })],
        "PersistentVolumeClaim" => vec![
            col("Status", "string", 0, |v, _| text(v, "/status/phase")),
            col("Volume", "string", 0, |v, _| text(v, "/spec/volumeName")),
            col("Capacity", "string", 0, |v, _| text(v, "/status/capacity/storage")),
            col("Storage Class", "string", 0, |v, _| text(v, "/spec/storageClassName")),
        ],
        "Ingress" => vec![
            col("Class", "string", 0, |v, _| {
                or_none(text(v, "/spec/ingressClassName").as_str().unwrap_or("").to_owned())
            }),
            col("Hosts", "string", 0, |v, _| {
                let hosts: Vec<String> = s(v, "/spec/rules")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.get("host")?.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if hosts.is_empty() { "*".to_owned() } else { hosts.join(",") })
            }),
        ],
        "HorizontalPodAutoscaler" => vec![
            col("Reference", "string", 0, |v, _| {
                json!(format!(
                    "{}/{}",
                    text(v, "/spec/scaleTargetRef/kind").as_str().unwrap_or(""),
                    text(v, "/spec/scaleTargetRef/name").as_str().unwrap_or("")
                ))
            }),
            col("MinPods", "string", 0, |v, _| {
                json!(s(v, "/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1).to_string())
            }),
            col("MaxPods", "string", 0, |v, _| json!(int(v, "/spec/maxReplicas").to_string())),
            col("Replicas", "string", 0, |v, _| {
                json!(int(v, "/status/currentReplicas").to_string())
            }),
        ],
        "PodDisruptionBudget" => vec![
            col("Min Available", "string", 0, |v, _| {
                or_none(text(v, "/spec/minAvailable").as_str().unwrap_or("").to_owned())
            }),
            col("Max Unavailable", "string", 0, |v, _| {
                or_none(text(v, "/spec/maxUnavailable").as_str().unwrap_or("").to_owned())
            }),
            col("Allowed Disruptions", "integer", 0, |v, _| {
                json!(int(v, "/status/disruptionsAllowed"))
            }),
        ],
        "StorageClass" => vec![col("Provisioner", "string", 0, |v, _| text(v, "/provisioner"))],
        "PriorityClass" => vec![col("Value", "integer", 0, |v, _| json!(int(v, "/value")))],
        "CustomResourceDefinition" => {
            // kubectl prints "NAME  CREATED AT" for CRDs.
            return vec![
                col("Name", "string", 0, name),
                col("Created At", "date", 0, |v, _| text(v, "/metadata/creationTimestamp")),
            ];
        }
        _ => vec![],
    };
    cols.extend(extra);
    cols.push(col("Age", "date", 0, age));
    let wide: Vec<Col> = match kind {
        "Deployment" => vec![
            col("Containers", "string", 1, |v, _| containers_field(v, "name")),
            col("Images", "string", 1, |v, _| containers_field(v, "image")),
            col("Selector", "string", 1, |v, _| json!(selector_string(v, "/spec/selector"))),
        ],
        "Pod" => vec![
            col("IP", "string", 1, |v, _| {
                or_none(text(v, "/status/podIP").as_str().unwrap_or("").to_owned())
            }),
            col("Node", "string", 1, |v, _| {
                or_none(text(v, "/spec/nodeName").as_str().unwrap_or("").to_owned())
            }),
        ],
        "Service" => {
            vec![col("Selector", "string", 1, |v, _| or_none(map_pairs(v, "/spec/selector")))]
        }
        "Node" => {
            vec![col("Version", "string", 0, |v, _| text(v, "/status/nodeInfo/kubeletVersion"))]
        }
        "ResourceQuota" => vec![
            col("Request", "string", 0, |v, _| json!(quota_usage(v, false))),
            col("Limit", "string", 0, |v, _| json!(quota_usage(v, true))),
        ],
        _ => vec![],
    };
    cols.extend(wide);
    cols
}

/// A ResourceQuota's `used/hard` per resource (`pods: 1/2, requests.cpu: 800m/1`): the
/// `limits.*` ones or the others.
fn quota_usage(quota: &Value, limits: bool) -> String {
    let Some(hard) = s(quota, "/status/hard").and_then(Value::as_object) else {
        return String::new();
    };
    hard.iter()
        .filter(|(k, _)| k.starts_with("limits.") == limits)
        .map(|(k, h)| {
            let used = s(quota, "/status/used")
                .and_then(|u| u.get(k.as_str()))
                .and_then(Value::as_str)
                .unwrap_or("0");
            format!("{k}: {used}/{}", h.as_str().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn name_column_description() -> &'static str {
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
}

/// Computes one cell of a row.
type Cell = Box<dyn Fn(&Value) -> Value + Send + Sync>;

/// Renders objects as a Table. `include_object`: `None`, `Metadata` (default) or `Object`.
pub struct TableBuilder {
    columns: Vec<Value>,
    cells: Vec<Cell>,
    include_object: IncludeObject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn crd_cell(column: &Column, path: &JsonPath, object: &Value, now: i64) -> Value {
    let found = path.find(object);
    let Some(first) = found.first() else {
        return column.default_value.as_ref().map_or(Value::Null, |d| json!(d));
    };
    match column.type_.as_str() {
        "integer" => first.as_i64().map_or(Value::Null, |n| json!(n)),
        "number" => first.as_f64().map_or(Value::Null, |n| json!(n)),
        "boolean" => first.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match first.as_str().and_then(parse_rfc3339) {
            Some(t) => json!(human_duration(now - t)),
            None => Value::Null,
        },
        _ => json!(path.render(object).unwrap_or_default()),
    }
}

impl TableBuilder {
    pub fn new(def: &ResourceDef, include_object: IncludeObject, now: i64) -> TableBuilder {
        let mut columns = Vec::new();
        let mut cells: Vec<Cell> = Vec::new();
        match &def.printer {
            Printer::Builtin => {
                for c in builtin_columns(&def.kind) {
                    let format = if c.name == "Name" { "name" } else { "" };
                    let description = if c.name == "Name" { name_column_description() } else { "" };
                    columns.push(json!({"name": c.name, "type": c.type_, "format": format,
                        "description": description, "priority": c.priority}));
                    let f = c.cell;
                    cells.push(Box::new(move |v| f(v, now)));
                }
            }
            Printer::Columns(list) => {
                columns.push(json!({"name": "Name", "type": "string", "format": "name",
                    "description": name_column_description(), "priority": 0}));
                cells.push(Box::new(|v| text(v, "/metadata/name")));
                for column in list {
                    columns.push(
                        json!({"name": column.name, "type": column.type_, "format": column.format,
                        "description": column.description, "priority": column.priority}),
                    );
                    let column = column.clone();
                    match JsonPath::parse(&column.json_path) {
                        Ok(path) => cells.push(Box::new(move |v| crd_cell(&column, &path, v, now))),
                        Err(_) => cells.push(Box::new(|_| Value::Null)),
                    }
                }
            }
        }
        TableBuilder { columns, cells, include_object }
    }

    pub fn row(&self, object: &Value) -> Value {
        let cells: Vec<Value> = self.cells.iter().map(|f| f(object)).collect();
        let mut row = json!({"cells": cells});
        match self.include_object {
            IncludeObject::None => {}
            IncludeObject::Object => row["object"] = object.clone(),
            IncludeObject::Metadata => {
                row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or(json!({}))});
            }
        }
        row
    }

    /// A Table with `rows`; `with_columns` false for watch events after the first.
    pub fn table(&self, rows: Vec<Value>, list_meta: Value, with_columns: bool) -> Value {
        let mut table = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "rows": rows});
        if with_columns {
            table["columnDefinitions"] = Value::Array(self.columns.clone());
        }
        table
    }
}

/// The default CRD columns: just Age.
pub fn default_crd_columns() -> Vec<Column> {
    vec![Column {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
        default_value: None,
    }]
}

/// Up to three items, then how many more (kubectl's `a,b,c + 2 more...`); `<unset>` for none.
fn at_most_three(items: &[String]) -> String {
    match items.len() {
        0 => "<unset>".to_owned(),
        n if n <= 3 => items.join(","),
        n => format!("{} + {} more...", items[..3].join(","), n - 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_slices_print_as_kubectl_prints_them() {
        let slice = json!({"addressType": "IPv4", "ports": [{"name": "http", "port": 80}, {"name": "dns"}],
            "endpoints": [{"addresses": ["10.10.0.2"]}, {"addresses": ["10.10.0.3"]},
                {"addresses": ["10.10.0.4"]}, {"addresses": ["10.10.0.5"]}]});
        // Name, AddressType, Ports, Endpoints, Age.
        let cols = builtin_columns("EndpointSlice");
        let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "AddressType", "Ports", "Endpoints", "Age"]);
        let cols = &cols[1..4];
        let cells: Vec<Value> = cols.iter().map(|c| (c.cell)(&slice, 0)).collect();
        assert_eq!(
            cells,
            [json!("IPv4"), json!("80,dns"), json!("10.10.0.2,10.10.0.3,10.10.0.4 + 1 more...")]
        );
        let empty: Vec<Value> = cols.iter().map(|c| (c.cell)(&json!({}), 0)).collect();
        assert_eq!(empty[1], "<unset>");
        assert_eq!(empty[2], "<unset>");
    }
}
