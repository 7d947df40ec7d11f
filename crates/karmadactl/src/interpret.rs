//! `karmadactl interpret`: check ResourceInterpreterCustomizations and run their rules locally
//! (as upstream's): from files (`-f`), or the ones stored on the control plane (by name).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use interpreter::{Interpreter, Operation};
use karmada_api::config::ResourceInterpreterCustomization;
use karmada_api::work::AggregatedStatusItem;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct InterpretArgs {
    /// Names of customizations stored on the control plane (instead of -f).
    pub names: Vec<String>,
    /// Files or directories holding the customizations (YAML or JSON; `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// The operation to run: one of Retain, InterpretReplica, InterpretComponent,
    /// ReviseReplica, InterpretStatus, AggregateStatus, InterpretHealth, InterpretDependency
    /// (any case).
    #[arg(long)]
    pub operation: Option<String>,
    /// Check the customizations (target set, every script compiles).
    #[arg(long)]
    pub check: bool,
    /// The object given to the rule as desiredObj.
    #[arg(long)]
    pub desired_file: Option<String>,
    /// The object given to the rule as observedObj.
    #[arg(long)]
    pub observed_file: Option<String>,
    /// The aggregated status items given to AggregateStatus (`-` for stdin).
    #[arg(long)]
    pub status_file: Option<String>,
    /// The desiredReplica given to ReviseReplica.
    #[arg(long, default_value_t = 0)]
    pub desired_replica: i32,
}

/// The operations in upstream's order, as `--operation` names them.
const OPERATIONS: [Operation; 8] = [
    Operation::Retain,
    Operation::InterpretReplica,
    Operation::InterpretComponent,
    Operation::ReviseReplica,
    Operation::InterpretStatus,
    Operation::AggregateStatus,
    Operation::InterpretHealth,
    Operation::InterpretDependency,
];

fn operation_named(name: &str) -> anyhow::Result<Operation> {
    OPERATIONS.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(name)).with_context(|| {
        format!(
            "operation {name} is not supported. Use one of: {}",
            OPERATIONS.map(|o| o.as_str().to_owned()).join(", ")
        )
    })
}

/// Every document in a file, a directory's files (`.yaml`, `.yml`, `.json`), or stdin (`-`);
/// a `List` (or a JSON array) gives its items. Each document with where it came from.
fn read_documents(source: &str, recursive: bool) -> anyhow::Result<Vec<(String, Value)>> {
    let mut texts: Vec<(String, String)> = Vec::new();
    if source == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        texts.push(("STDIN".to_owned(), text));
    } else {
        collect_files(Path::new(source), recursive, true, &mut texts)?;
    }
    let mut docs = Vec::new();
    for (origin, text) in texts {
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("parsing {origin}"))?;
            match value {
                Value::Null => {}
                Value::Array(items) => docs.extend(items.into_iter().map(|i| (origin.clone(), i))),
                v if v.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                    && v.get("items").is_some_and(Value::is_array) =>
                {
                    for item in v["items"].as_array().cloned().unwrap_or_default() {
                        docs.push((origin.clone(), item));
                    }
                }
                v => docs.push((origin.clone(), v)),
            }
        }
    }
    Ok(docs)
}

fn collect_files(
    path: &Path,
    recursive: bool,
    top: bool,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    if path.is_dir() {
        if !top && !recursive {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let wanted = entry.is_dir()
                || entry
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if wanted {
                collect_files(&entry, recursive, false, out)?;
            }
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("the path \"{}\" does not exist", path.display()))?;
    out.push((path.display().to_string(), text));
    Ok(())
}

/// The one object in a file.
fn read_object(source: &str) -> anyhow::Result<Value> {
    let mut docs = read_documents(source, false)?;
    match docs.len() {
        0 => bail!("no object in {source}"),
        1 => Ok(docs.remove(0).1),
        n => bail!("get {n} objects, expect one at most"),
    }
}

/// The customizations named on the command line: from files, or from the control plane.
pub async fn customizations(
    args: &InterpretArgs,
    control: Option<kube::Client>,
) -> anyhow::Result<Vec<(String, ResourceInterpreterCustomization)>> {
    let mut out = Vec::new();
    if !args.filenames.is_empty() {
        for f in &args.filenames {
            for (origin, doc) in read_documents(f, args.recursive)? {
                let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
                if kind != "ResourceInterpreterCustomization" {
                    bail!("not a ResourceInterpreterCustomization, got {kind:?} in {origin}");
                }
                let c: ResourceInterpreterCustomization = serde_json::from_value(doc)
                    .with_context(|| format!("decoding the customization in {origin}"))?;
                out.push((origin, c));
            }
        }
        return Ok(out);
    }
    let Some(control) = control else {
        bail!("give the customizations with -f, or name ones stored on the control plane");
    };
    let api: kube::Api<ResourceInterpreterCustomization> = kube::Api::all(control);
    if args.names.is_empty() {
        for c in api.list(&Default::default()).await?.items {
            out.push((c.metadata.name.clone().unwrap_or_default(), c));
        }
    } else {
        for name in &args.names {
            let c = api.get(name).await.with_context(|| {
                format!("resourceinterpretercustomizations.config.karmada.io {name:?}")
            })?;
            out.push((name.clone(), c));
        }
    }
    Ok(out)
}

/// `--check`: every customization's target and rules; false when any fails.
pub fn check(customizations: &[(String, ResourceInterpreterCustomization)]) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for (origin, c) in customizations {
        out.push_str("-----------------------------------\n");
        let source = c.metadata.name.clone().filter(|n| !n.is_empty()).unwrap_or(origin.clone());
        out.push_str(&format!("SOURCE: {source}\n"));
        let target = &c.spec.target;
        if target.kind.is_empty() {
            ok = false;
            out.push_str("target.kind no set\n");
            continue;
        }
        if target.api_version.is_empty() {
            ok = false;
            out.push_str("target.apiVersion no set\n");
            continue;
        }
        out.push_str(&format!("TARGET: {} {}\n", target.api_version, target.kind));
        out.push_str("RULERS:\n");
        let width = OPERATIONS.iter().map(|o| o.as_str().len() + 1).max().unwrap_or(0) + 3;
        for op in OPERATIONS {
            let label = format!("{}:", op.as_str());
            let verdict = match c.spec.customizations.script(&op) {
                None => "UNSET".to_owned(),
                Some(script) => {
                    let (rule, _) = op.rule().unwrap_or_default();
                    match interpreter::check_syntax(script, rule) {
                        Ok(()) => "PASS".to_owned(),
                        Err(e) => {
                            ok = false;
                            format!("ERROR: {}", e.trim())
                        }
                    }
                }
            };
            out.push_str(&format!("    {label:<width$}{verdict}\n"));
        }
    }
    (out, ok)
}

/// What running a rule gave: named results, as upstream prints them.
pub type RuleResults = Vec<(&'static str, Value)>;

/// Runs one operation's rule of the customizations on the given objects.
pub async fn execute(
    customizations: &[(String, ResourceInterpreterCustomization)],
    op: &Operation,
    desired: Option<&Value>,
    observed: Option<&Value>,
    status: Option<&[AggregatedStatusItem]>,
    desired_replica: i32,
) -> Result<RuleResults, String> {
    let interpreter = Interpreter::default();
    interpreter.load(customizations.iter().map(|(_, c)| c));
    let object = || -> Result<&Value, String> {
        match (desired, observed) {
            (None, None) => Err("desired-file, observed-file options are not set".into()),
            (Some(_), Some(_)) => {
                Err("you can not specify both desired-file and observed-file options".into())
            }
            (Some(o), None) | (None, Some(o)) => Ok(o),
        }
    };
    let subject = match op {
        Operation::Retain => desired.ok_or("desired, desired-file options are not set")?,
        _ => object()?,
    };
    if !interpreter.customized(subject, op) {
        return Err("rule is not enabled".into());
    }
    let failed = |f: interpreter::Failure| f.to_string();
    Ok(match op {
        Operation::Retain => {
            let observed = observed.ok_or("observed, observed-file options are not set")?;
            let retained = interpreter.retain(subject, observed).await.map_err(failed)?;
            vec![("retained", retained.unwrap_or(Value::Null))]
        }
        Operation::InterpretReplica => {
            let (replica, requires) =
                interpreter.get_replicas(subject).await.map_err(failed)?.unwrap_or((0, None));
            vec![("replica", json!(replica)), ("requires", json!(requires))]
        }
        Operation::ReviseReplica => {
            let revised = interpreter
                .revise_replica(subject, i64::from(desired_replica))
                .await
                .map_err(failed)?;
            vec![("revised", revised)]
        }
        Operation::InterpretStatus => {
            vec![("status", interpreter.reflect_status(subject).await.map_err(failed)?)]
        }
        Operation::AggregateStatus => {
            let object = interpreter.aggregate(subject, status).await.map_err(failed)?;
            vec![("aggregatedStatus", object.unwrap_or(Value::Null))]
        }
        Operation::InterpretHealth => {
            let healthy = interpreter.health(subject).await.map_err(failed)?;
            vec![("healthy", json!(healthy.unwrap_or(false)))]
        }
        Operation::InterpretDependency => {
            let deps = interpreter.dependencies(subject).await.map_err(failed)?;
            vec![("dependencies", serde_json::to_value(deps).unwrap_or(Value::Null))]
        }
        Operation::InterpretComponent => {
            let components = interpreter.get_components(subject).await.map_err(failed)?;
            vec![("components", serde_json::to_value(components).unwrap_or(Value::Null))]
        }
        _ => return Err("rule is not enabled".into()),
    })
}

/// The results as upstream prints them: each after `---` and `# [i/n] NAME:`, as YAML.
pub fn render(results: &RuleResults) -> String {
    let mut out = String::new();
    for (i, (name, value)) in results.iter().enumerate() {
        out.push_str("---\n");
        out.push_str(&format!("# [{}/{}] {name}:\n", i + 1, results.len()));
        out.push_str(&serde_yaml::to_string(value).unwrap_or_default());
    }
    out
}

/// `karmadactl interpret`.
pub async fn run(args: InterpretArgs, control: Option<kube::Client>) -> anyhow::Result<()> {
    if let Some(op) = &args.operation {
        operation_named(op)?;
    }
    let customizations = customizations(&args, control).await?;
    if args.check {
        let (text, ok) = check(&customizations);
        print!("{text}");
        if !ok {
            std::process::exit(1);
        }
        return Ok(());
    }
    let Some(op) = &args.operation else { bail!("operation is not set for executing") };
    let op = operation_named(op)?;
    let desired = args.desired_file.as_deref().map(read_object).transpose()?;
    let observed = args.observed_file.as_deref().map(read_object).transpose()?;
    let mut status = Vec::new();
    let listed = args.status_file.is_some();
    if let Some(f) = &args.status_file {
        for (origin, doc) in read_documents(f, false)? {
            status.push(
                serde_json::from_value::<AggregatedStatusItem>(doc)
                    .with_context(|| format!("decoding a status item in {origin}"))?,
            );
        }
    }
    match execute(
        &customizations,
        &op,
        desired.as_ref(),
        observed.as_ref(),
        listed.then_some(status.as_slice()),
        args.desired_replica,
    )
    .await
    {
        Ok(results) => print!("{}", render(&results)),
        Err(e) => eprintln!("Execute {} error: {e}", op.as_str()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn customization(rules: Value) -> (String, ResourceInterpreterCustomization) {
        let c = serde_json::from_value(json!({
            "apiVersion": "config.karmada.io/v1alpha1", "kind": "ResourceInterpreterCustomization",
            "metadata": {"name": "web"},
            "spec": {"target": {"apiVersion": "apps/v1", "kind": "Deployment"}, "customizations": rules}}))
        .unwrap();
        ("web.yaml".to_owned(), c)
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "paused": true}})
    }

    #[tokio::test]
    async fn rules_run_and_print_as_upstream() {
        let c = [customization(json!({
            "replicaResource": {"luaScript": "function GetReplicas(o) return o.spec.replicas, nil end"},
            "retention": {"luaScript": "function Retain(d, o) d.spec.paused = o.spec.paused return d end"}}))];
        let results = execute(&c, &Operation::InterpretReplica, None, Some(&deployment()), None, 0)
            .await
            .unwrap();
        assert_eq!(render(&results), "---\n# [1/2] replica:\n3\n---\n# [2/2] requires:\nnull\n");
        let mut observed = deployment();
        observed["spec"]["paused"] = json!(false);
        let results =
            execute(&c, &Operation::Retain, Some(&deployment()), Some(&observed), None, 0)
                .await
                .unwrap();
        assert_eq!(results[0].1["spec"]["paused"], false);
        assert_eq!(
            execute(&c, &Operation::InterpretHealth, None, Some(&deployment()), None, 0).await,
            Err("rule is not enabled".to_owned())
        );
        assert_eq!(
            execute(&c, &Operation::InterpretReplica, None, None, None, 0).await,
            Err("desired-file, observed-file options are not set".to_owned())
        );
    }

    #[test]
    fn check_reports_every_rule() {
        let c = [customization(json!({
            "replicaResource": {"luaScript": "function GetReplicas(o) return 1 end"},
            "retention": {"luaScript": "function Retain(d, o) return d"}}))];
        let (text, ok) = check(&c);
        assert!(!ok);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "SOURCE: web");
        assert_eq!(lines[2], "TARGET: apps/v1 Deployment");
        assert!(
            lines[4].starts_with("    Retain:") && lines[4].contains("ERROR: retention:"),
            "{text}"
        );
        assert!(
            lines[5].ends_with("PASS") && lines[5].starts_with("    InterpretReplica:"),
            "{text}"
        );
        assert!(lines[6].ends_with("UNSET"), "{text}");
    }

    #[test]
    fn operations_are_named_in_any_case() {
        assert_eq!(operation_named("interpretreplica").unwrap(), Operation::InterpretReplica);
        assert_eq!(operation_named("retain").unwrap(), Operation::Retain);
        assert!(operation_named("explode").unwrap_err().to_string().contains("Use one of: Retain"));
    }
}
