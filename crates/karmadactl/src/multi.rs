//! Commands over the control plane and its member clusters, with upstream karmadactl's flags:
//! `--operation-scope karmada|members|all` and `-C/--cluster(s)` choose where; members are
//! reached through the control plane's cluster proxy (`clusters/<name>/proxy`) with the
//! caller's own credentials, so the control plane's RBAC on `clusters/proxy` and each member's
//! RBAC (by impersonation) decide what a user sees.
//!
//! Kinds are found by discovery (aggregated, one request per root), so any kind a cluster
//! serves works by plural, singular, short name or kind, optionally `.group`-qualified.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use karmada_api::cluster::Cluster;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

/// Where a command operates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// The Karmada control plane.
    Karmada,
    /// Member clusters (through the cluster proxy).
    Members,
    /// Both.
    All,
}

/// `--operation-scope` and the clusters it names.
#[derive(clap::Args, Debug, Clone)]
pub struct ScopeArgs {
    /// Where to operate: karmada (the control plane), members (member clusters) or all.
    #[arg(long, value_enum, default_value = "karmada")]
    pub operation_scope: Scope,
    /// Member clusters to operate on (comma-separated; default: every Ready cluster).
    #[arg(short = 'C', long = "clusters", alias = "cluster", value_delimiter = ',')]
    pub clusters: Vec<String>,
}

/// A cluster a command talks to: the control plane (`cluster: None`) or a member.
pub struct Target {
    pub cluster: Option<String>,
    pub client: kube::Client,
}

impl Target {
    /// As upstream prints it in the CLUSTER column.
    pub fn label(&self) -> &str {
        self.cluster.as_deref().unwrap_or("Karmada")
    }
}

/// The control plane's connection settings, from which member clients are derived.
pub struct Plane {
    pub config: kube::Config,
    pub client: kube::Client,
}

impl Plane {
    /// A client for a member through the cluster proxy, with the caller's credentials.
    pub fn member(&self, cluster: &str) -> anyhow::Result<kube::Client> {
        let mut config = self.config.clone();
        let base = config.cluster_url.to_string();
        config.cluster_url = format!(
            "{}/apis/cluster.karmada.io/v1alpha1/clusters/{cluster}/proxy",
            base.trim_end_matches('/')
        )
        .parse()
        .with_context(|| format!("the proxy URL of cluster {cluster}"))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// The clusters a scope names (every Ready member when none is named).
    pub async fn targets(&self, scope: &ScopeArgs) -> anyhow::Result<Vec<Target>> {
        let mut targets = Vec::new();
        if matches!(scope.operation_scope, Scope::Karmada | Scope::All) {
            targets.push(Target { cluster: None, client: self.client.clone() });
        }
        if scope.operation_scope == Scope::Karmada {
            if !scope.clusters.is_empty() {
                bail!("--cluster needs --operation-scope members or all");
            }
            return Ok(targets);
        }
        let known: Vec<Cluster> =
            Api::<Cluster>::all(self.client.clone()).list(&ListParams::default()).await?.items;
        let ready = |c: &Cluster| {
            c.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
            })
        };
        let mut names: Vec<String> = if scope.clusters.is_empty() {
            known.iter().filter(|c| ready(c)).filter_map(|c| c.metadata.name.clone()).collect()
        } else {
            for name in &scope.clusters {
                if !known.iter().any(|c| c.metadata.name.as_deref() == Some(name)) {
                    bail!("cluster {name} is not a member of the control plane");
                }
            }
            scope.clusters.clone()
        };
        names.sort();
        names.dedup();
        for name in names {
            targets.push(Target { client: self.member(&name)?, cluster: Some(name) });
        }
        Ok(targets)
    }

    /// The one cluster a per-object command (logs, exec, describe...) works on.
    pub fn single(&self, scope: &ScopeArgs) -> anyhow::Result<Target> {
        match (scope.operation_scope, scope.clusters.as_slice()) {
            (Scope::Karmada, []) => Ok(Target { cluster: None, client: self.client.clone() }),
            (Scope::Karmada, [_, ..]) => {
                bail!("--cluster needs --operation-scope members")
            }
            (_, [one]) => Ok(Target { cluster: Some(one.clone()), client: self.member(one)? }),
            (_, []) => bail!("name the member cluster with --cluster (-C)"),
            (_, _) => bail!("this command works on one cluster at a time: give one --cluster"),
        }
    }
}

/// A kind as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
}

impl ApiResource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection's path, in a namespace or across all.
    pub fn path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{root}/namespaces/{ns}/{}", self.plural),
            None => format!("{root}/{}", self.plural),
        }
    }

    /// `plural.group` as kubectl names the kind (`deployments.apps`, `pods`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `kind.group` as `-o name` prints it (`deployment.apps`, `pod`).
    pub fn name_prefix(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() { kind } else { format!("{kind}.{}", self.group) }
    }
}

const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// Every kind in an aggregated discovery document (`APIGroupDiscoveryList`); versions in the
/// order served (the preferred first).
pub fn parse_discovery(doc: &Value) -> Vec<ApiResource> {
    let mut out = Vec::new();
    for group in doc["items"].as_array().into_iter().flatten() {
        let name = group.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        for version in group["versions"].as_array().into_iter().flatten() {
            let v = version["version"].as_str().unwrap_or_default();
            for r in version["resources"].as_array().into_iter().flatten() {
                let strings = |key: &str| -> Vec<String> {
                    r[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                };
                out.push(ApiResource {
                    group: name.to_owned(),
                    version: v.to_owned(),
                    plural: r["resource"].as_str().unwrap_or_default().to_owned(),
                    singular: r["singularResource"].as_str().unwrap_or_default().to_owned(),
                    kind: r
                        .pointer("/responseKind/kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    namespaced: r["scope"] == "Namespaced",
                    short_names: strings("shortNames"),
                    verbs: strings("verbs"),
                });
            }
        }
    }
    out
}

/// The kind a command-line word names: a plural, singular, short name or kind (any case),
/// optionally `.group` or `.version.group` qualified; the first (preferred) version wins, and
/// core kinds win over same-named ones of other groups, as kubectl's.
pub fn resolve<'a>(resources: &'a [ApiResource], word: &str) -> Option<&'a ApiResource> {
    let word = word.to_lowercase();
    let (name, qualifier) = match word.split_once('.') {
        Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
        None => (word.clone(), None),
    };
    let names = |r: &ApiResource| {
        r.plural == name
            || r.singular == name
            || r.kind.to_lowercase() == name
            || r.short_names.iter().any(|s| s.to_lowercase() == name)
    };
    let group_ok = |r: &ApiResource| match &qualifier {
        None => true,
        Some(q) => *q == r.group || *q == format!("{}.{}", r.version, r.group),
    };
    let mut found: Vec<&ApiResource> =
        resources.iter().filter(|r| !r.plural.contains('/') && names(r) && group_ok(r)).collect();
    found.sort_by_key(|r| !r.group.is_empty());
    found.first().copied()
}

/// Discovery of one cluster.
pub async fn discover(client: &kube::Client) -> anyhow::Result<Vec<ApiResource>> {
    let mut all = Vec::new();
    for root in ["/api", "/apis"] {
        let request = http::Request::get(root)
            .header(http::header::ACCEPT, AGGREGATED)
            .body(Vec::new())
            .context("a discovery request")?;
        let text =
            client.request_text(request).await.with_context(|| format!("discovery ({root})"))?;
        let doc: Value = serde_json::from_str(&text).context("the discovery document")?;
        if doc["kind"] != "APIGroupDiscoveryList" {
            bail!("the server does not serve aggregated discovery (apidiscovery.k8s.io/v2)");
        }
        all.extend(parse_discovery(&doc));
    }
    Ok(all)
}

/// The kind `word` names on `client`'s cluster.
pub async fn kind_of(client: &kube::Client, word: &str) -> anyhow::Result<ApiResource> {
    let resources = discover(client).await?;
    resolve(&resources, word)
        .cloned()
        .with_context(|| format!("the server doesn't have a resource type \"{word}\""))
}

/// A request's result: the body, or the API's error message.
pub async fn request(
    client: &kube::Client,
    method: http::Method,
    path: &str,
    accept: &str,
    body: Option<(&str, Vec<u8>)>,
) -> anyhow::Result<Value> {
    let mut builder =
        http::Request::builder().method(method).uri(path).header(http::header::ACCEPT, accept);
    let bytes = match body {
        Some((content_type, bytes)) => {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
            bytes
        }
        None => Vec::new(),
    };
    let text = client.request_text(builder.body(bytes)?).await.map_err(api_error)?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// An API error as kubectl prints it (`Error from server (NotFound): ...`).
pub fn api_error(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) => {
            anyhow::anyhow!("Error from server ({}): {}", status.reason, status.message)
        }
        other => anyhow::Error::new(other),
    }
}

/// What `get` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table { wide: bool },
    Name,
    Json,
    Yaml,
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "wide" => Output::Table { wide: true },
            "name" => Output::Name,
            "json" => Output::Json,
            "yaml" => Output::Yaml,
            other => {
                return Err(format!(
                    "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,name,wide,yaml"
                ));
            }
        })
    }
}

/// How a listing command (`get`, `top`) selects and prints.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Across every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The kind (any the clusters serve), or `kind/name`.
    pub resource: String,
    pub names: Vec<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub list: ListArgs,
    #[arg(long)]
    pub field_selector: Option<String>,
    /// wide, name, json or yaml.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
}

/// A printed table: column names and rows of cells.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Printed {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Printed {
    /// As kubectl aligns it: columns padded to their widest cell, three spaces apart.
    pub fn render(&self, no_headers: bool) -> String {
        let mut lines: Vec<&Vec<String>> = Vec::new();
        if !no_headers {
            lines.push(&self.headers);
        }
        lines.extend(self.rows.iter());
        let columns = self.headers.len();
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                lines.iter().map(|l| l.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i] - cell.chars().count() + 3;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A server's Table cell as text (dates as ages, as kubectl shows them).
fn cell_text(cell: &Value, column_type: &str, now: i64) -> String {
    match cell {
        Value::Null => "<none>".into(),
        Value::String(s) if column_type == "date" => match apimachinery::time::parse_rfc3339(s) {
            Some(at) => age(now - at),
            None => s.clone(),
        },
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// kubectl's short human durations (`45s`, `5m10s`, `3h`, `2d5h`, `90d`).
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m{r}s", s / 60),
        },
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => match (s / 60) % 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => match (s / 3600) % 24 {
            0 => format!("{}d", s / 86400),
            h => format!("{}d{h}h", s / 86400),
        },
        s if s < 365 * 86400 * 2 => format!("{}d", s / 86400),
        s => format!("{}y{}d", s / (365 * 86400), (s / 86400) % 365),
    }
}

/// The label upstream marks what Karmada manages in members with (the ADOPTION column).
const MANAGED_BY: (&str, &str) = ("karmada.io/managed", "true");

/// One cluster's Table, as rows for `get`: with NAMESPACE first when listing every
/// namespace, the CLUSTER after the name and ADOPTION last when members are shown.
pub fn table_rows(
    table: &Value,
    cluster: Option<&str>,
    multi: bool,
    wide: bool,
    all_namespaces: bool,
    adoption_column: bool,
    now: i64,
) -> Printed {
    let columns: Vec<&Value> =
        table["columnDefinitions"].as_array().map(|c| c.iter().collect()).unwrap_or_default();
    let shown: Vec<usize> = (0..columns.len())
        .filter(|i| wide || columns[*i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE".to_owned());
    }
    for (n, i) in shown.iter().enumerate() {
        headers.push(columns[*i]["name"].as_str().unwrap_or_default().to_uppercase());
        if n == 0 && multi {
            headers.push("CLUSTER".into());
        }
    }
    if multi && adoption_column {
        headers.push("ADOPTION".into());
    }
    let mut rows = Vec::new();
    for row in table["rows"].as_array().into_iter().flatten() {
        let object = &row["object"];
        let mut cells = Vec::new();
        if all_namespaces {
            cells.push(
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        for (n, i) in shown.iter().enumerate() {
            let cell = row["cells"].get(*i).unwrap_or(&Value::Null);
            cells.push(cell_text(cell, columns[*i]["type"].as_str().unwrap_or_default(), now));
            if n == 0 && multi {
                cells.push(cluster.unwrap_or("Karmada").to_owned());
            }
        }
        if multi && adoption_column {
            let managed = object
                .pointer(&format!("/metadata/labels/{}", MANAGED_BY.0.replace('/', "~1")))
                .and_then(Value::as_str)
                == Some(MANAGED_BY.1);
            cells.push(match (cluster, managed) {
                (None, _) => "-".into(),
                (Some(_), true) => "Y".into(),
                (Some(_), false) => "N".into(),
            });
        }
        rows.push(cells);
    }
    Printed { headers, rows }
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

pub async fn get(plane: &Plane, namespace: &str, args: GetArgs) -> anyhow::Result<()> {
    let (word, mut names) = match args.resource.split_once('/') {
        Some((kind, name)) => (kind.to_owned(), vec![name.to_owned()]),
        None => (args.resource.clone(), Vec::new()),
    };
    names.extend(args.names.iter().cloned());
    let targets = plane.targets(&args.scope).await?;
    let multi = args.scope.operation_scope != Scope::Karmada;
    let output = args.output.unwrap_or(Output::Table { wide: false });
    let now = now();
    let mut printed = Printed::default();
    let mut objects: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    let mut kind: Option<ApiResource> = None;
    for target in &targets {
        let resource = match kind_of(&target.client, &word).await {
            Ok(r) => r,
            Err(e) if targets.len() > 1 => {
                errors.push(format!("{}: {e:#}", target.label()));
                continue;
            }
            Err(e) => return Err(e),
        };
        let namespace = (!args.list.all_namespaces).then_some(namespace);
        let mut query = Vec::new();
        if let Some(s) = &args.list.selector {
            query.push(format!("labelSelector={}", encode(s)));
        }
        if let Some(s) = &args.field_selector {
            query.push(format!("fieldSelector={}", encode(s)));
        }
        let accept = match output {
            Output::Table { .. } => {
                query.push("includeObject=Object".into());
                TABLE
            }
            _ => "application/json",
        };
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let paths: Vec<String> = if names.is_empty() {
            vec![format!("{}{query}", resource.path(namespace))]
        } else {
            names.iter().map(|n| format!("{}/{n}{query}", resource.path(namespace))).collect()
        };
        for path in paths {
            let body = match request(&target.client, http::Method::GET, &path, accept, None).await {
                Ok(body) => body,
                Err(e) if multi => {
                    errors.push(format!("{}: {e:#}", target.label()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            match output {
                Output::Table { wide } => {
                    let adoption = resource.plural != "pods" || wide;
                    let rows = table_rows(
                        &body,
                        target.cluster.as_deref(),
                        multi,
                        wide,
                        args.list.all_namespaces && resource.namespaced,
                        adoption,
                        now,
                    );
                    if printed.headers.is_empty() {
                        printed.headers = rows.headers;
                    }
                    printed.rows.extend(rows.rows);
                }
                _ => match body["items"].as_array() {
                    Some(items) => {
                        objects.extend(items.iter().map(|o| with_kind(o.clone(), &resource)))
                    }
                    None => objects.push(body),
                },
            }
        }
        kind = Some(resource);
    }
    let mut stdout = std::io::stdout().lock();
    match output {
        Output::Table { .. } if printed.rows.is_empty() => {
            if errors.is_empty() {
                match (&kind, args.list.all_namespaces) {
                    (Some(k), false) if k.namespaced => {
                        eprintln!("No resources found in {namespace} namespace.")
                    }
                    _ => eprintln!("No resources found"),
                }
            }
        }
        Output::Table { .. } => write!(stdout, "{}", printed.render(args.list.no_headers))?,
        Output::Name => {
            let prefix = kind.as_ref().map(ApiResource::name_prefix).unwrap_or_default();
            for o in &objects {
                writeln!(stdout, "{prefix}/{}", apimachinery::object::name(o))?;
            }
        }
        Output::Json | Output::Yaml => {
            let document = match objects.len() {
                1 if !names.is_empty() => objects.remove(0),
                _ => {
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects})
                }
            };
            if output == Output::Json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&document)?)?;
            } else {
                write!(stdout, "{}", serde_yaml::to_string(&document)?)?;
            }
        }
    }
    // A named object missing from some clusters is not worth a word when others have it.
    let found = !printed.rows.is_empty() || !objects.is_empty();
    for e in errors.iter().filter(|e| !(found && e.contains("(NotFound)"))) {
        eprintln!("{e}");
    }
    if !errors.is_empty() && printed.rows.is_empty() && objects.is_empty() {
        bail!("nothing found");
    }
    Ok(())
}

/// List items carry no kind: give it back, as kubectl does.
fn with_kind(mut object: Value, resource: &ApiResource) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.entry("apiVersion").or_insert_with(|| Value::from(resource.api_version()));
        map.entry("kind").or_insert_with(|| Value::from(resource.kind.clone()));
    }
    object
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Query-string encoding of a selector.
pub fn encode(s: &str) -> String {
    apimachinery::selector::query_escape(s)
}

#[derive(clap::Args, Debug)]
pub struct ApiResourcesArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only namespaced (true) or cluster-scoped (false) kinds.
    #[arg(long)]
    pub namespaced: Option<bool>,
    /// Only kinds of this API group.
    #[arg(long)]
    pub api_group: Option<String>,
    #[arg(long)]
    pub no_headers: bool,
    /// `wide` adds the verbs; `name` prints `plural.group` only.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

pub async fn api_resources(plane: &Plane, args: ApiResourcesArgs) -> anyhow::Result<()> {
    let target = plane.single(&args.scope)?;
    let resources = discover(&target.client).await?;
    let mut seen = std::collections::BTreeSet::new();
    let mut printed = Printed {
        headers: ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    let wide = args.output.as_deref() == Some("wide");
    if wide {
        printed.headers.push("VERBS".into());
    }
    let mut names = Vec::new();
    for r in &resources {
        if r.plural.contains('/')
            || !seen.insert((r.group.clone(), r.plural.clone()))
            || args.namespaced.is_some_and(|n| n != r.namespaced)
            || args.api_group.as_ref().is_some_and(|g| *g != r.group)
        {
            continue;
        }
        names.push(r.qualified());
        let mut row = vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ];
        if wide {
            row.push(format!("[{}]", r.verbs.join(" ")));
        }
        printed.rows.push(row);
    }
    if args.output.as_deref() == Some("name") {
        for n in names {
            println!("{n}");
        }
    } else {
        print!("{}", printed.render(args.no_headers));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery() -> Vec<ApiResource> {
        parse_discovery(&json!({"kind": "APIGroupDiscoveryList", "items": [
            {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
                {"resource": "pods", "singularResource": "pod", "scope": "Namespaced", "shortNames": ["po"],
                 "responseKind": {"kind": "Pod"}, "verbs": ["get", "list"]},
                {"resource": "pods/log", "scope": "Namespaced", "responseKind": {"kind": "Pod"}},
                {"resource": "events", "singularResource": "event", "scope": "Namespaced", "shortNames": ["ev"],
                 "responseKind": {"kind": "Event"}}]}]},
            {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
                {"resource": "deployments", "singularResource": "deployment", "scope": "Namespaced",
                 "shortNames": ["deploy"], "responseKind": {"kind": "Deployment"}}]}]},
            {"metadata": {"name": "events.k8s.io"}, "versions": [{"version": "v1", "resources": [
                {"resource": "events", "singularResource": "event", "scope": "Namespaced", "shortNames": ["ev"],
                 "responseKind": {"kind": "Event"}}]}]},
            {"metadata": {"name": "cluster.karmada.io"}, "versions": [{"version": "v1alpha1", "resources": [
                {"resource": "clusters", "singularResource": "cluster", "scope": "Cluster",
                 "responseKind": {"kind": "Cluster"}}]}]}
        ]}))
    }

    #[test]
    fn words_resolve_as_kubectl_resolves_them() {
        let all = discovery();
        let plural = |w: &str| resolve(&all, w).map(ApiResource::qualified);
        assert_eq!(plural("deploy").as_deref(), Some("deployments.apps"));
        assert_eq!(plural("Deployment").as_deref(), Some("deployments.apps"));
        assert_eq!(plural("deployments.apps").as_deref(), Some("deployments.apps"));
        assert_eq!(plural("deployment.v1.apps").as_deref(), Some("deployments.apps"));
        assert_eq!(plural("po").as_deref(), Some("pods"));
        assert_eq!(plural("events").as_deref(), Some("events"), "the core group first");
        assert_eq!(plural("events.events.k8s.io").as_deref(), Some("events.events.k8s.io"));
        assert_eq!(plural("cluster").as_deref(), Some("clusters.cluster.karmada.io"));
        assert_eq!(plural("log"), None, "subresources are not kinds");
        let clusters = resolve(&all, "clusters").unwrap();
        assert_eq!(clusters.path(Some("default")), "/apis/cluster.karmada.io/v1alpha1/clusters");
        assert_eq!(resolve(&all, "po").unwrap().path(Some("a")), "/api/v1/namespaces/a/pods");
    }

    #[test]
    fn member_rows_get_their_cluster_and_adoption() {
        let table = json!({"columnDefinitions": [
            {"name": "Name", "type": "string", "priority": 0},
            {"name": "Ready", "type": "string", "priority": 0},
            {"name": "Images", "type": "string", "priority": 1},
            {"name": "Age", "type": "date", "priority": 0}],
          "rows": [
            {"cells": ["web", "2/2", "nginx", "2026-01-01T00:00:00Z"],
             "object": {"metadata": {"name": "web", "namespace": "default", "labels": {"karmada.io/managed": "true"}}}},
            {"cells": ["mine", "1/1", "nginx", "2026-01-01T00:00:00Z"],
             "object": {"metadata": {"name": "mine", "namespace": "default"}}}]});
        let now = apimachinery::time::parse_rfc3339("2026-01-01T00:05:10Z").unwrap();
        let printed = table_rows(&table, Some("member1"), true, false, false, true, now);
        assert_eq!(printed.headers, ["NAME", "CLUSTER", "READY", "AGE", "ADOPTION"]);
        assert_eq!(printed.rows[0], ["web", "member1", "2/2", "5m10s", "Y"]);
        assert_eq!(printed.rows[1][4], "N");
        let karmada = table_rows(&table, None, true, true, true, true, now);
        assert_eq!(
            karmada.headers,
            ["NAMESPACE", "NAME", "CLUSTER", "READY", "IMAGES", "AGE", "ADOPTION"]
        );
        assert_eq!(karmada.rows[0], ["default", "web", "Karmada", "2/2", "nginx", "5m10s", "-"]);
        assert_eq!(
            printed.render(false),
            "NAME   CLUSTER   READY   AGE     ADOPTION\nweb    member1   2/2     5m10s   Y\nmine   member1   1/1     5m10s   N\n"
        );
    }

    #[test]
    fn ages_are_kubectls() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (130, "2m10s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (86400 * 3, "3d"),
            (86400 * 30, "30d"),
        ] {
            assert_eq!(age(s), want, "{s}");
        }
    }
}
