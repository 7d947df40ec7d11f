//! Per-object commands over the control plane or one member (`--operation-scope members
//! --cluster NAME`, through the cluster proxy): describe, logs, exec, attach, top, label,
//! annotate, patch, delete, apply/create, and promote (adopting a member's object into the
//! control plane).

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{Context as _, bail};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, LogParams};
use serde_json::{Value, json};

use crate::multi::{self, Plane, ScopeArgs, Target, kind_of, request};

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    pub resource: String,
    pub names: Vec<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// A camelCase key as kubectl's generic describer shows it (`creationTimestamp` →
/// `Creation Timestamp`).
pub fn title(key: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
            continue;
        }
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (chars[i - 1].is_lowercase() || next_lower) {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

fn describe_value(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", title(key)));
                        describe_value(out, v, indent + 2);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", title(key)));
                        describe_value(out, v, indent + 2);
                    }
                    Value::Object(_) | Value::Array(_) => {}
                    other => out.push_str(&format!("{pad}{}:  {}\n", title(key), scalar(other))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) => {
                        let mut inner = String::new();
                        describe_value(&mut inner, item, indent + 2);
                        // The first line of each item is marked with a dash, as YAML would.
                        let mut lines = inner.lines();
                        if let Some(first) = lines.next() {
                            out.push_str(
                                &format!("{pad}  {}\n", first.trim_start())
                                    .replacen("  ", "- ", 1)
                                    .replacen(&format!("- {pad}"), &format!("{pad}- "), 1),
                            );
                        }
                        for line in lines {
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                    other => out.push_str(&format!("{pad}{}\n", scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn map_text(map: Option<&Value>) -> Vec<String> {
    match map.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect(),
        _ => vec!["<none>".into()],
    }
}

/// kubectl's generic description of any object, then its Events.
pub fn description(object: &Value, events: &[Value], now: i64) -> String {
    let mut out = String::new();
    let meta = &object["metadata"];
    out.push_str(&format!("Name:         {}\n", apimachinery::object::name(object)));
    if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
        out.push_str(&format!("Namespace:    {ns}\n"));
    }
    for (label, field) in [("Labels:      ", "labels"), ("Annotations: ", "annotations")] {
        let lines = map_text(meta.get(field));
        out.push_str(&format!("{label} {}\n", lines[0]));
        for line in &lines[1..] {
            out.push_str(&format!("              {line}\n"));
        }
    }
    out.push_str(&format!("API Version:  {}\n", scalar(&object["apiVersion"])));
    out.push_str(&format!("Kind:         {}\n", scalar(&object["kind"])));
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
        if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in ["name", "namespace", "labels", "annotations", "managedFields"] {
                m.remove(field);
            }
        }
    }
    describe_value(&mut out, &rest, 0);
    if events.is_empty() {
        out.push_str("Events:       <none>\n");
    } else {
        out.push_str("Events:\n");
        let mut table = multi::Printed {
            headers: ["  Type", "Reason", "Age", "From", "Message"].map(String::from).to_vec(),
            rows: Vec::new(),
        };
        table.rows.push(["  ----", "------", "----", "----", "-------"].map(String::from).to_vec());
        for e in events {
            let at = ["lastTimestamp", "eventTime", "firstTimestamp"]
                .iter()
                .find_map(|f| e[*f].as_str().and_then(apimachinery::time::parse_rfc3339));
            let from = e.pointer("/source/component").or_else(|| e.get("reportingComponent"));
            table.rows.push(vec![
                format!("  {}", scalar(&e["type"])),
                scalar(&e["reason"]),
                at.map_or("<unknown>".into(), |t| multi::age(now - t)),
                from.map_or(String::new(), scalar),
                scalar(&e["message"]),
            ]);
        }
        out.push_str(&table.render(false));
    }
    out
}

pub async fn describe(plane: &Plane, namespace: &str, args: DescribeArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let (word, mut names) = match args.resource.split_once('/') {
        Some((k, n)) => (k.to_owned(), vec![n.to_owned()]),
        None => (args.resource.clone(), Vec::new()),
    };
    names.extend(args.names);
    let kind = kind_of(&target.client, &word).await?;
    let objects: Vec<Value> = if names.is_empty() {
        let list = request(
            &target.client,
            http::Method::GET,
            &kind.path(Some(namespace)),
            "application/json",
            None,
        )
        .await?;
        list["items"].as_array().cloned().unwrap_or_default()
    } else {
        let mut found = Vec::new();
        for name in &names {
            let path = format!("{}/{name}", kind.path(Some(namespace)));
            found.push(
                request(&target.client, http::Method::GET, &path, "application/json", None).await?,
            );
        }
        found
    };
    let now = multi::now();
    let mut first = true;
    for object in objects {
        let mut object = object;
        object["apiVersion"] = Value::from(kind.api_version());
        object["kind"] = Value::from(kind.kind.clone());
        let uid = apimachinery::object::meta_str(&object, "uid").unwrap_or_default().to_owned();
        let events_ns =
            object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let selector = multi::encode(&format!(
            "involvedObject.name={},involvedObject.uid={uid}",
            apimachinery::object::name(&object)
        ));
        let events = request(
            &target.client,
            http::Method::GET,
            &format!("/api/v1/namespaces/{events_ns}/events?fieldSelector={selector}"),
            "application/json",
            None,
        )
        .await
        .ok()
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default();
        if !first {
            println!("\n");
        }
        first = false;
        print!("{}", description(&object, &events, now));
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The pod (or `pod/NAME`).
    pub pod: String,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines from the end to show (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    #[arg(long)]
    pub timestamps: bool,
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only lines newer than this many seconds.
    #[arg(long)]
    pub since_seconds: Option<i64>,
}

fn pod_name(word: &str) -> &str {
    word.strip_prefix("pod/").or_else(|| word.strip_prefix("pods/")).unwrap_or(word)
}

pub async fn logs(plane: &Plane, namespace: &str, args: LogsArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), namespace);
    let params = LogParams {
        container: args.container.clone(),
        follow: args.follow,
        tail_lines: (args.tail >= 0).then_some(args.tail),
        timestamps: args.timestamps,
        previous: args.previous,
        since_seconds: args.since_seconds,
        ..LogParams::default()
    };
    let mut lines =
        pods.log_stream(pod_name(&args.pod), &params).await.map_err(multi::api_error)?.lines();
    let mut stdout = std::io::stdout();
    while let Some(line) = lines.try_next().await? {
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    Ok(())
}

/// What `exec` and `attach` connect to, and how.
#[derive(clap::Args, Debug)]
pub struct StreamArgs {
    pub pod: String,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
}

impl StreamArgs {
    fn params(&self) -> AttachParams {
        let params =
            AttachParams::default().stdin(self.stdin).stdout(true).stderr(!self.tty).tty(self.tty);
        match &self.container {
            Some(c) => params.container(c.clone()),
            None => params,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The exit code a closing status reports (0: success).
pub fn exit_code(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> i32 {
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
        .unwrap_or(1)
}

/// Runs a command in a container; returns its exit code.
pub async fn exec(plane: &Plane, namespace: &str, args: ExecArgs) -> anyhow::Result<i32> {
    let target = plane.single(&args.stream.scope)?;
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), namespace);
    let mut attached = pods
        .exec(pod_name(&args.stream.pod), args.command.clone(), &args.stream.params())
        .await
        .map_err(multi::api_error)?;
    stream(&mut attached, args.stream.stdin).await?;
    let status = match attached.take_status() {
        Some(status) => status.await,
        None => None,
    };
    let code = status.as_ref().map_or(0, exit_code);
    if code != 0 {
        eprintln!("command terminated with exit code {code}");
    }
    Ok(code)
}

/// Copies the process's output to ours (and, with `stdin`, ours to it) until it ends.
async fn stream(attached: &mut kube::api::AttachedProcess, stdin: bool) -> anyhow::Result<()> {
    let mut out = attached.stdout();
    let mut err = attached.stderr();
    if stdin && let Some(mut input) = attached.stdin() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut input).await;
        });
    }
    let copy_out = async {
        if let Some(o) = out.as_mut() {
            let _ = tokio::io::copy(o, &mut tokio::io::stdout()).await;
        }
    };
    let copy_err = async {
        if let Some(e) = err.as_mut() {
            let _ = tokio::io::copy(e, &mut tokio::io::stderr()).await;
        }
    };
    tokio::join!(copy_out, copy_err);
    Ok(())
}

pub type AttachArgs = StreamArgs;

pub async fn attach(plane: &Plane, namespace: &str, args: AttachArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), namespace);
    let mut attached =
        pods.attach(pod_name(&args.pod), &args.params()).await.map_err(multi::api_error)?;
    stream(&mut attached, args.stdin).await
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// `pod` or `node`.
    pub what: String,
    pub name: Option<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub list: multi::ListArgs,
}

fn milli(q: &Value) -> i128 {
    q.as_str().and_then(apimachinery::quantity::parse_milli).unwrap_or(0)
}

/// `kubectl top`'s cells: CPU in millicores, memory in Mi.
pub fn usage_cells(usage: &Value) -> (String, String) {
    let cpu = milli(&usage["cpu"]);
    let memory = milli(&usage["memory"]) / 1000;
    (format!("{cpu}m"), format!("{}Mi", memory / (1024 * 1024)))
}

pub async fn top(plane: &Plane, namespace: &str, args: TopArgs) -> anyhow::Result<()> {
    let pods = match args.what.as_str() {
        "pod" | "pods" | "po" => true,
        "node" | "nodes" | "no" => false,
        other => bail!("unknown command \"{other}\" for \"karmadactl top\": use pod or node"),
    };
    let targets = plane.targets(&args.scope).await?;
    let multi = args.scope.operation_scope != multi::Scope::Karmada;
    let mut headers = vec!["NAME".to_owned()];
    if pods && args.list.all_namespaces {
        headers.insert(0, "NAMESPACE".into());
    }
    if multi {
        headers.push("CLUSTER".into());
    }
    headers.extend(if pods {
        ["CPU(cores)", "MEMORY(bytes)"].map(String::from).to_vec()
    } else {
        ["CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"].map(String::from).to_vec()
    });
    let mut printed = multi::Printed { headers, rows: Vec::new() };
    for target in &targets {
        let base = if pods {
            match (&args.name, args.list.all_namespaces) {
                (_, true) => "/apis/metrics.k8s.io/v1beta1/pods".to_owned(),
                _ => format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"),
            }
        } else {
            "/apis/metrics.k8s.io/v1beta1/nodes".to_owned()
        };
        let path = match (&args.name, &args.list.selector) {
            (Some(n), _) => format!("{base}/{n}"),
            (None, Some(s)) => format!("{base}?labelSelector={}", multi::encode(s)),
            (None, None) => base,
        };
        let body = match request(&target.client, http::Method::GET, &path, "application/json", None)
            .await
        {
            Ok(b) => b,
            Err(e)
                if format!("{e:#}")
                    .contains("the server could not find the requested resource") =>
            {
                bail!(
                    "Metrics API not available{}",
                    target.cluster.as_ref().map_or(String::new(), |c| format!(" in {c}"))
                )
            }
            Err(e) => return Err(e),
        };
        let items: Vec<Value> = match body["items"].as_array() {
            Some(items) => items.clone(),
            None => vec![body],
        };
        let allocatable: BTreeMap<String, Value> = if pods {
            BTreeMap::new()
        } else {
            let nodes = request(
                &target.client,
                http::Method::GET,
                "/api/v1/nodes",
                "application/json",
                None,
            )
            .await?;
            nodes["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    (
                        apimachinery::object::name(n).to_owned(),
                        n.pointer("/status/allocatable").cloned().unwrap_or_default(),
                    )
                })
                .collect()
        };
        for item in items {
            let name = apimachinery::object::name(&item).to_owned();
            let mut row = Vec::new();
            if pods && args.list.all_namespaces {
                row.push(apimachinery::object::namespace(&item).to_owned());
            }
            row.push(name.clone());
            if multi {
                row.push(target.label().to_owned());
            }
            if pods {
                let mut total = json!({"cpu": "0", "memory": "0"});
                let (mut cpu, mut memory) = (0i128, 0i128);
                for c in item["containers"].as_array().into_iter().flatten() {
                    cpu += milli(&c["usage"]["cpu"]);
                    memory += milli(&c["usage"]["memory"]);
                }
                total["cpu"] = Value::from(format!("{cpu}m"));
                total["memory"] = Value::from(format!("{}", memory / 1000));
                let (c, m) = usage_cells(&total);
                row.extend([c, m]);
            } else {
                let (c, m) = usage_cells(&item["usage"]);
                let percent = |used: i128, of: i128| {
                    if of > 0 { format!("{}%", used * 100 / of) } else { "<unknown>".into() }
                };
                let alloc = allocatable.get(&name).cloned().unwrap_or_default();
                row.extend([
                    c,
                    percent(milli(&item["usage"]["cpu"]), milli(&alloc["cpu"])),
                    m,
                    percent(milli(&item["usage"]["memory"]), milli(&alloc["memory"])),
                ]);
            }
            printed.rows.push(row);
        }
    }
    print!("{}", printed.render(args.list.no_headers));
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct MetadataArgs {
    /// `kind name` or `kind/name`, then `KEY=VALUE` to set and `KEY-` to remove.
    #[arg(required = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[arg(long)]
    pub overwrite: bool,
}

/// Splits `kind name KEY=V KEY-` (or `kind/name ...`) into the kind, the name and the changes.
pub fn metadata_changes(
    args: &[String],
) -> anyhow::Result<(String, String, BTreeMap<String, Option<String>>)> {
    let (kind, name, rest) = match args.first().and_then(|a| a.split_once('/')) {
        Some((k, n)) => (k.to_owned(), n.to_owned(), &args[1..]),
        None if args.len() >= 2 => (args[0].clone(), args[1].clone(), &args[2..]),
        None => bail!("give the object as KIND NAME or KIND/NAME"),
    };
    let mut changes = BTreeMap::new();
    for change in rest {
        if let Some((k, v)) = change.split_once('=') {
            changes.insert(k.to_owned(), Some(v.to_owned()));
        } else if let Some(k) = change.strip_suffix('-') {
            changes.insert(k.to_owned(), None);
        } else {
            bail!("invalid change {change:?}: use KEY=VALUE or KEY-");
        }
    }
    if changes.is_empty() {
        bail!("at least one change is required (KEY=VALUE or KEY-)");
    }
    Ok((kind, name, changes))
}

/// `label` (`field: labels`) and `annotate` (`annotations`).
pub async fn set_metadata(
    plane: &Plane,
    namespace: &str,
    args: MetadataArgs,
    field: &str,
) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let (word, name, changes) = metadata_changes(&args.args)?;
    let kind = kind_of(&target.client, &word).await?;
    let path = format!("{}/{name}", kind.path(Some(namespace)));
    let current =
        request(&target.client, http::Method::GET, &path, "application/json", None).await?;
    let mut patch = serde_json::Map::new();
    for (key, value) in &changes {
        let existing = current
            .pointer(&format!("/metadata/{field}/{}", key.replace('~', "~0").replace('/', "~1")));
        if let (Some(_), Some(existing)) = (value, existing)
            && !args.overwrite
            && existing.as_str() != value.as_deref()
        {
            bail!("'{key}' already has a value ({}), and --overwrite is false", scalar(existing));
        }
        patch.insert(key.clone(), value.clone().map_or(Value::Null, Value::from));
    }
    let body = json!({"metadata": {field: patch}});
    request(
        &target.client,
        http::Method::PATCH,
        &path,
        "application/json",
        Some(("application/merge-patch+json", serde_json::to_vec(&body)?)),
    )
    .await?;
    let verb = if field == "labels" { "labeled" } else { "annotated" };
    println!("{}/{name} {verb}", kind.name_prefix());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PatchArgs {
    pub resource: String,
    pub name: Option<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// The patch.
    #[arg(short = 'p', long)]
    pub patch: String,
    /// strategic, merge or json.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
}

pub async fn patch(plane: &Plane, namespace: &str, args: PatchArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let (word, name) = match (args.resource.split_once('/'), &args.name) {
        (Some((k, n)), _) => (k.to_owned(), n.to_owned()),
        (None, Some(n)) => (args.resource.clone(), n.clone()),
        (None, None) => bail!("give the object as KIND NAME or KIND/NAME"),
    };
    let content_type = match args.patch_type.as_str() {
        "strategic" => "application/strategic-merge-patch+json",
        "merge" => "application/merge-patch+json",
        "json" => "application/json-patch+json",
        other => bail!("--type must be strategic, merge or json, not {other:?}"),
    };
    let body: Value = serde_yaml::from_str(&args.patch).context("the patch is not JSON or YAML")?;
    let kind = kind_of(&target.client, &word).await?;
    let path = format!("{}/{name}", kind.path(Some(namespace)));
    request(
        &target.client,
        http::Method::PATCH,
        &path,
        "application/json",
        Some((content_type, serde_json::to_vec(&body)?)),
    )
    .await?;
    println!("{}/{name} patched", kind.name_prefix());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    pub resource: String,
    pub names: Vec<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[arg(long)]
    pub ignore_not_found: bool,
}

pub async fn delete(plane: &Plane, namespace: &str, args: DeleteArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let (word, mut names) = match args.resource.split_once('/') {
        Some((k, n)) => (k.to_owned(), vec![n.to_owned()]),
        None => (args.resource.clone(), Vec::new()),
    };
    names.extend(args.names);
    if names.is_empty() {
        bail!("resource(s) were provided, but no name was specified");
    }
    let kind = kind_of(&target.client, &word).await?;
    for name in names {
        let path = format!("{}/{name}", kind.path(Some(namespace)));
        match request(&target.client, http::Method::DELETE, &path, "application/json", None).await {
            Ok(_) => println!("{} \"{name}\" deleted", kind.name_prefix()),
            Err(e) if args.ignore_not_found && format!("{e:#}").contains("(NotFound)") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// Manifest files (`-` for stdin).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Also propagate every object to all member clusters (a PropagationPolicy, or a
    /// ClusterPropagationPolicy for cluster-scoped objects, per object).
    #[arg(long)]
    pub all_clusters: bool,
}

/// The documents of manifest files.
pub fn documents(files: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for file in files {
        let text = if file == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
        };
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize_yaml(doc)?;
            match value {
                Value::Null => {}
                v if v["kind"] == "List" => {
                    out.extend(v["items"].as_array().cloned().unwrap_or_default())
                }
                v => out.push(v),
            }
        }
    }
    Ok(out)
}

trait YamlValue {
    fn deserialize_yaml(doc: serde_yaml::Deserializer<'_>) -> anyhow::Result<Value>;
}

impl YamlValue for Value {
    fn deserialize_yaml(doc: serde_yaml::Deserializer<'_>) -> anyhow::Result<Value> {
        Ok(serde::Deserialize::deserialize(doc)?)
    }
}

/// The policy `apply --all-clusters` and `promote` create for an object: a
/// PropagationPolicy (ClusterPropagationPolicy when cluster-scoped) selecting it, named as
/// upstream names it.
pub fn policy_for(object: &Value, clusters: Option<&[String]>, adopt: bool, deps: bool) -> Value {
    let name = apimachinery::object::name(object);
    let namespace =
        object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let policy_name = karmada_api::names::promoted_policy_name(namespace, name, api_version, kind);
    let mut selector = json!({"apiVersion": api_version, "kind": kind, "name": name});
    if !namespace.is_empty() {
        selector["namespace"] = Value::from(namespace);
    }
    let affinity = match clusters {
        Some(names) => json!({"clusterNames": names}),
        None => json!({}),
    };
    let mut spec =
        json!({"resourceSelectors": [selector], "placement": {"clusterAffinity": affinity}});
    if adopt {
        spec["conflictResolution"] = Value::from("Overwrite");
        spec["preserveResourcesOnDeletion"] = Value::from(true);
    }
    if deps {
        spec["propagateDeps"] = Value::from(true);
    }
    let mut policy = json!({"apiVersion": "policy.karmada.io/v1alpha1", "metadata": {"name": policy_name}, "spec": spec});
    if namespace.is_empty() {
        policy["kind"] = Value::from("ClusterPropagationPolicy");
    } else {
        policy["kind"] = Value::from("PropagationPolicy");
        policy["metadata"]["namespace"] = Value::from(namespace);
    }
    policy
}

/// Applies (server-side) one object; returns how kubectl would say it went.
async fn apply_one(target: &Target, namespace: &str, mut object: Value) -> anyhow::Result<String> {
    let word = object["kind"].as_str().unwrap_or_default().to_owned();
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let qualified = if group.is_empty() { word.clone() } else { format!("{word}.{group}") };
    let kind = kind_of(&target.client, &qualified).await?;
    let name = apimachinery::object::name(&object).to_owned();
    if name.is_empty() {
        bail!("a {word} without metadata.name cannot be applied");
    }
    if kind.namespaced && object.pointer("/metadata/namespace").is_none() {
        object["metadata"]["namespace"] = Value::from(namespace);
    }
    let ns = object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
    let path = format!("{}/{name}", kind.path(ns.as_deref()));
    let existed =
        request(&target.client, http::Method::GET, &path, "application/json", None).await.is_ok();
    request(
        &target.client,
        http::Method::PATCH,
        &format!("{path}?fieldManager=karmadactl&force=true"),
        "application/json",
        Some(("application/apply-patch+yaml", serde_json::to_vec(&object)?)),
    )
    .await?;
    Ok(format!("{}/{name} {}", kind.name_prefix(), if existed { "configured" } else { "created" }))
}

pub async fn apply(plane: &Plane, namespace: &str, args: ApplyArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    for object in documents(&args.files)? {
        println!("{}", apply_one(&target, namespace, object.clone()).await?);
        if args.all_clusters || !args.scope.clusters.is_empty() && target.cluster.is_none() {
            let mut placed = object;
            if placed.pointer("/metadata/namespace").is_none() {
                let kind = placed["kind"].as_str().unwrap_or_default().to_owned();
                if kind_of(&target.client, &kind).await.is_ok_and(|k| k.namespaced) {
                    placed["metadata"]["namespace"] = Value::from(namespace);
                }
            }
            let policy = policy_for(&placed, None, false, false);
            println!("{}", apply_one(&target, namespace, policy).await?);
        }
    }
    Ok(())
}

/// `create -f`: every object created (an existing one is an error, as kubectl's).
pub async fn create(plane: &Plane, namespace: &str, args: ApplyArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    for mut object in documents(&args.files)? {
        let word = object["kind"].as_str().unwrap_or_default().to_owned();
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let kind = kind_of(
            &target.client,
            &if group.is_empty() { word.clone() } else { format!("{word}.{group}") },
        )
        .await?;
        if kind.namespaced && object.pointer("/metadata/namespace").is_none() {
            object["metadata"]["namespace"] = Value::from(namespace);
        }
        let ns = object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
        let created = request(
            &target.client,
            http::Method::POST,
            &kind.path(ns.as_deref()),
            "application/json",
            Some(("application/json", serde_json::to_vec(&object)?)),
        )
        .await?;
        println!("{}/{} created", kind.name_prefix(), apimachinery::object::name(&created));
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PromoteArgs {
    /// The kind (any the member serves).
    pub resource: String,
    pub name: String,
    /// The member cluster the object is in.
    #[arg(short = 'C', long = "cluster", required = true)]
    pub cluster: String,
    /// The name of the policy created (default: as upstream generates it).
    #[arg(long)]
    pub policy_name: Option<String>,
    /// Create a policy that propagates the object back to its cluster.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_policy: bool,
    /// Propagate what it depends on too (`propagateDeps`).
    #[arg(short = 'd', long)]
    pub dependencies: bool,
    /// Print the template and the policy (yaml or json) instead of creating them.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(long)]
    pub dry_run: bool,
}

/// A member's object as a resource template: what its API server filled in removed (as
/// upstream's `RemoveIrrelevantFields`), and marked to overwrite the member's copy when
/// Karmada takes it over.
pub fn as_template(mut object: Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "resourceVersion",
            "selfLink",
            "uid",
            "ownerReferences",
            "finalizers",
        ] {
            meta.remove(field);
        }
    }
    let remove = |object: &mut Value, pointer: &str, key: &str| {
        if let Some(map) = object.pointer_mut(pointer).and_then(Value::as_object_mut) {
            map.remove(key);
        }
    };
    match kind.as_str() {
        "Deployment" => {
            for a in
                ["deployment.kubernetes.io/revision", "deployment.kubernetes.io/revision-history"]
            {
                remove(&mut object, "/metadata/annotations", a);
            }
        }
        "Job" if object.pointer("/spec/manualSelector").and_then(Value::as_bool) != Some(true) => {
            for label in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
                remove(&mut object, "/spec/selector/matchLabels", label);
                remove(&mut object, "/spec/template/metadata/labels", label);
            }
        }
        "Secret" if object["type"] == "kubernetes.io/service-account-token" => {
            remove(&mut object, "/metadata/annotations", "kubernetes.io/service-account.uid");
            object["data"] = Value::Null;
        }
        "PersistentVolumeClaim" => {
            remove(&mut object, "/metadata/annotations", "volume.kubernetes.io/selected-node")
        }
        "ServiceAccount" => {
            let token = format!("{}-token-", apimachinery::object::name(&object));
            if let Some(secrets) = object.get_mut("secrets").and_then(Value::as_array_mut) {
                secrets.retain(|s| !s["name"].as_str().is_some_and(|n| n.starts_with(&token)));
            }
        }
        _ => {}
    }
    propagation::interpreter::prune(&kind, &mut object);
    if !object["metadata"]["annotations"].is_object() {
        object["metadata"]["annotations"] = json!({});
    }
    object["metadata"]["annotations"].as_object_mut().map(|a| {
        a.entry("work.karmada.io/conflict-resolution").or_insert_with(|| Value::from("overwrite"))
    });
    object
}

pub async fn promote(plane: &Plane, namespace: &str, args: PromoteArgs) -> anyhow::Result<()> {
    let member = plane.member(&args.cluster)?;
    let kind = kind_of(&member, &args.resource).await?;
    let path = format!("{}/{}", kind.path(Some(namespace)), args.name);
    let mut object =
        request(&member, http::Method::GET, &path, "application/json", None).await.with_context(
            || format!("the {} {} in cluster {}", kind.qualified(), args.name, args.cluster),
        )?;
    object["apiVersion"] = Value::from(kind.api_version());
    object["kind"] = Value::from(kind.kind.clone());
    let template = as_template(object);
    let mut policy =
        policy_for(&template, Some(std::slice::from_ref(&args.cluster)), true, args.dependencies);
    if let Some(name) = &args.policy_name {
        policy["metadata"]["name"] = Value::from(name.clone());
    }
    if let Some(format) = &args.output {
        let mut documents = vec![template];
        if args.auto_create_policy {
            documents.push(policy);
        }
        for doc in documents {
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&doc)?),
                "yaml" => print!("---\n{}", serde_yaml::to_string(&doc)?),
                other => bail!("--output must be yaml or json, not {other:?}"),
            }
        }
        return Ok(());
    }
    if args.dry_run {
        return Ok(());
    }
    let control = Target { cluster: None, client: plane.client.clone() };
    let where_ =
        if kind.namespaced { format!("{namespace}/{}", args.name) } else { args.name.clone() };
    let in_plane = format!("{}/{}", kind.path(Some(namespace)), args.name);
    if request(&control.client, http::Method::GET, &in_plane, "application/json", None)
        .await
        .is_ok()
    {
        eprintln!(
            "Resource {:?}({where_}) already exists in the Karmada control plane; edit its PropagationPolicy and OverridePolicy to propagate it",
            kind.qualified()
        );
        return Ok(());
    }
    request(
        &control.client,
        http::Method::POST,
        &kind.path(Some(namespace)),
        "application/json",
        Some(("application/json", serde_json::to_vec(&template)?)),
    )
    .await
    .with_context(|| format!("creating {} {where_} in the control plane", kind.qualified()))?;
    println!("ResourceTemplate ({where_}) is created successfully");
    if args.auto_create_policy {
        let policy_kind = policy["kind"].as_str().unwrap_or_default().to_owned();
        let policy_name = apimachinery::object::name(&policy).to_owned();
        let plural =
            if kind.namespaced { "propagationpolicies" } else { "clusterpropagationpolicies" };
        let collection = if kind.namespaced {
            format!("/apis/policy.karmada.io/v1alpha1/namespaces/{namespace}/{plural}")
        } else {
            format!("/apis/policy.karmada.io/v1alpha1/{plural}")
        };
        request(
            &control.client,
            http::Method::POST,
            &collection,
            "application/json",
            Some(("application/json", serde_json::to_vec(&policy)?)),
        )
        .await
        .with_context(|| format!("creating the {policy_kind} {policy_name}"))?;
        if kind.namespaced {
            println!("{policy_kind} ({namespace}/{policy_name}) is created successfully");
        } else {
            println!("{policy_kind} {policy_name} is created successfully");
        }
    }
    println!("Resource {:?}({where_}) is promoted successfully", kind.qualified());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct EditArgs {
    pub resource: String,
    pub name: Option<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// Opens an object in `$KUBE_EDITOR` or `$EDITOR` (default `vi`) and writes back what changed.
pub async fn edit(plane: &Plane, namespace: &str, args: EditArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let (word, name) = match (args.resource.split_once('/'), &args.name) {
        (Some((k, n)), _) => (k.to_owned(), n.to_owned()),
        (None, Some(n)) => (args.resource.clone(), n.clone()),
        (None, None) => bail!("give the object as KIND NAME or KIND/NAME"),
    };
    let kind = kind_of(&target.client, &word).await?;
    let path = format!("{}/{name}", kind.path(Some(namespace)));
    let mut object =
        request(&target.client, http::Method::GET, &path, "application/json", None).await?;
    object["apiVersion"] = Value::from(kind.api_version());
    object["kind"] = Value::from(kind.kind.clone());
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let original = serde_yaml::to_string(&object)?;
    let file =
        std::env::temp_dir().join(format!("karmadactl-edit-{}-{name}.yaml", std::process::id()));
    std::fs::write(&file, &original)?;
    let editor = std::env::var("KUBE_EDITOR")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(&file)
        .status()
        .with_context(|| format!("starting the editor {editor:?}"))?;
    let edited = std::fs::read_to_string(&file)?;
    let _ = std::fs::remove_file(&file);
    if !status.success() {
        bail!("the editor {editor:?} failed ({status})");
    }
    if edited == original {
        println!("Edit cancelled, no changes made.");
        return Ok(());
    }
    let changed: Value = serde_yaml::from_str(&edited).context("the edited object is not YAML")?;
    request(
        &target.client,
        http::Method::PUT,
        &path,
        "application/json",
        Some(("application/json", serde_json::to_vec(&changed)?)),
    )
    .await?;
    println!("{}/{name} edited", kind.name_prefix());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A kind, optionally with a field path (`deployment.spec.replicas`).
    pub path: String,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// The schema an OpenAPI v3 reference points at.
fn deref<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let reference = schema["$ref"].as_str().or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &document["components"]["schemas"][name.replace("~1", "/")],
        None => schema,
    }
}

fn type_name(document: &Value, schema: &Value) -> String {
    let target = deref(document, schema);
    match target["type"].as_str() {
        Some("array") => format!("[]{}", type_name(document, &target["items"])),
        Some("object") if target.get("additionalProperties").is_some() => {
            "map[string]string".into()
        }
        Some(t) => t.to_owned(),
        None if target.get("properties").is_some() => "Object".into(),
        None => "Object".into(),
    }
}

/// `explain`: a kind's (or a field's) description and fields, from the cluster's OpenAPI v3.
pub async fn explain(plane: &Plane, args: ExplainArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let mut parts = args.path.split('.');
    let word = parts.next().unwrap_or_default().to_owned();
    let fields: Vec<String> = parts.map(str::to_owned).collect();
    let kind = kind_of(&target.client, &word).await?;
    let root = if kind.group.is_empty() {
        format!("/openapi/v3/api/{}", kind.version)
    } else {
        format!("/openapi/v3/apis/{}/{}", kind.group, kind.version)
    };
    let document =
        request(&target.client, http::Method::GET, &root, "application/json", None).await?;
    let schemas = document["components"]["schemas"]
        .as_object()
        .context("the OpenAPI document has no schemas")?;
    let mut schema = schemas
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"].as_array().into_iter().flatten().any(|g| {
                g["group"] == kind.group.as_str()
                    && g["version"] == kind.version.as_str()
                    && g["kind"] == kind.kind.as_str()
            })
        })
        .with_context(|| format!("no schema for {} in the OpenAPI document", kind.kind))?;
    let mut field_line = None;
    for field in &fields {
        let here = deref(&document, schema);
        let next = here["properties"].get(field).or_else(|| here["items"]["properties"].get(field));
        let Some(next) = next else { bail!("field \"{field}\" does not exist") };
        field_line = Some(format!("FIELD: {field} <{}>", type_name(&document, next)));
        schema = next;
    }
    let here = deref(&document, schema);
    println!("GROUP:      {}", kind.group);
    println!("KIND:       {}", kind.kind);
    println!("VERSION:    {}\n", kind.version);
    if let Some(line) = field_line {
        println!("{line}\n");
    }
    let description = schema["description"]
        .as_str()
        .or_else(|| here["description"].as_str())
        .unwrap_or("<empty>");
    println!("DESCRIPTION:");
    for line in description.lines() {
        println!("    {line}");
    }
    let item = if here["type"] == "array" { deref(&document, &here["items"]) } else { here };
    if let Some(properties) = item["properties"].as_object() {
        let required: Vec<&str> =
            item["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!("\nFIELDS:");
        for (name, property) in properties {
            let marker = if required.contains(&name.as_str()) { " -required-" } else { "" };
            println!("  {name}\t<{}>{marker}", type_name(&document, property));
            let text = property["description"]
                .as_str()
                .or_else(|| deref(&document, property)["description"].as_str())
                .unwrap_or("<no description>");
            for line in text.lines().take(3) {
                println!("    {line}");
            }
            println!();
        }
    }
    Ok(())
}

pub async fn version(plane: &Plane) -> anyhow::Result<()> {
    println!("Client Version: v{}", env!("CARGO_PKG_VERSION"));
    let server =
        request(&plane.client, http::Method::GET, "/version", "application/json", None).await?;
    println!("Server Version: {}", scalar(&server["gitVersion"]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_titled_as_kubectl_titles_them() {
        assert_eq!(title("creationTimestamp"), "Creation Timestamp");
        assert_eq!(title("apiVersion"), "API Version".replace("API", "Api"));
        assert_eq!(title("replicas"), "Replicas");
        assert_eq!(title("podIP"), "Pod IP");
    }

    #[test]
    fn a_member_object_becomes_a_template_and_a_policy_naming_its_cluster() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "5",
                "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [],
                "annotations": {"deployment.kubernetes.io/revision": "1", "team": "a"}},
            "spec": {"replicas": 2}, "status": {"replicas": 2}});
        let template = as_template(object);
        assert_eq!(
            template,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default",
                "annotations": {"team": "a", "work.karmada.io/conflict-resolution": "overwrite"}},
            "spec": {"replicas": 2}})
        );
        let policy = policy_for(&template, Some(&["member1".to_owned()]), true, false);
        assert_eq!(
            policy,
            json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "web-6d7f8d5f5b", "namespace": "default"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"}],
                "placement": {"clusterAffinity": {"clusterNames": ["member1"]}},
                "conflictResolution": "Overwrite", "preserveResourcesOnDeletion": true}})
        );
        let service = as_template(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"], "ports": [{"port": 80}]}}),
        );
        assert_eq!(service["spec"], json!({"ports": [{"port": 80}]}));
    }

    #[test]
    fn metadata_changes_parse_as_kubectls() {
        let args: Vec<String> = ["deploy/web", "a=1", "b-"].iter().map(|s| s.to_string()).collect();
        let (kind, name, changes) = metadata_changes(&args).unwrap();
        assert_eq!((kind.as_str(), name.as_str()), ("deploy", "web"));
        assert_eq!(
            changes,
            BTreeMap::from([("a".to_owned(), Some("1".to_owned())), ("b".to_owned(), None)])
        );
        assert!(metadata_changes(&["deploy".to_owned(), "web".to_owned()]).is_err());
    }

    #[test]
    fn exit_codes_come_from_the_closing_status() {
        let status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_value(json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}))
            .unwrap();
        assert_eq!(exit_code(&status), 3);
    }

    #[test]
    fn descriptions_list_fields_and_events() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "d", "labels": {"a": "b"}, "uid": "u"},
            "data": {"key": "value"}});
        let text = description(&object, &[], 0);
        assert!(text.starts_with("Name:         c\nNamespace:    d\nLabels:       a=b\nAnnotations:  <none>\nAPI Version:  v1\nKind:         ConfigMap\n"), "{text}");
        assert!(text.contains("Data:\n  Key:  value\n"), "{text}");
        assert!(text.ends_with("Events:       <none>\n"), "{text}");
    }
}
