//! The resource interpreter: how Karmada reads and changes a kind it propagates — replicas and
//! what each needs, a cluster's replica count, fields a member owns, a member's status and
//! health, the template's status from every member's, and the objects a workload needs.
//!
//! For every operation, as upstream: a `ResourceInterpreterCustomization` rule for the kind
//! (a Lua script, run in [`lua::Vm`]) comes first, then an interpreter webhook
//! ([`webhook`]), then the customizations bundled for well-known third-party kinds
//! ([`thirdparty`]), then the built-in rules ([`propagation::interpreter`]). Customizations for one kind merge in name order: the first
//! script for an operation wins, except dependency rules, which all run and add up.

pub mod convert;
pub mod kube;
pub mod lua;
pub mod thirdparty;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use karmada_api::config::{DependentObjectReference, ResourceInterpreterCustomization};
use karmada_api::work::{AggregatedStatusItem, ReplicaRequirements};
use mlua::Value as LuaValue;
use parking_lot::RwLock;
use propagation::interpreter::MemberStatus;
use serde_json::{Value, json};

pub use karmada_api::config::InterpreterOperation as Operation;

/// Who interpreted: a customization (by name) or a webhook (`<configuration>/<webhook>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Customization(String),
    Webhook(String),
}

/// An interpretation that failed: which operation, by whom, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub operation: Operation,
    pub by: Source,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.by {
            Source::Customization(name) => {
                let (rule, function) = self.operation.rule().unwrap_or(("", ""));
                write!(
                    f,
                    "{function} ({rule} of ResourceInterpreterCustomization {name}) failed: {}",
                    self.message
                )
            }
            Source::Webhook(uid) => {
                write!(f, "{} (interpreter webhook {uid}) failed: {}", self.operation, self.message)
            }
        }
    }
}

impl std::error::Error for Failure {}

/// One customization's script for one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub customization: String,
    pub script: String,
}

/// The customization rules in force, by target (`apiVersion`, `kind`).
#[derive(Clone, Debug, Default)]
pub struct Customizations {
    targets: HashMap<(String, String), Target>,
}

#[derive(Clone, Debug, Default)]
struct Target {
    rules: HashMap<Operation, Rule>,
    dependencies: Vec<Rule>,
}

impl Customizations {
    /// The merged rules of these customizations (see the crate docs).
    pub fn new<'a>(list: impl IntoIterator<Item = &'a ResourceInterpreterCustomization>) -> Self {
        let mut sorted: Vec<&ResourceInterpreterCustomization> = list.into_iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut targets: HashMap<(String, String), Target> = HashMap::new();
        for c in sorted {
            let name = c.metadata.name.clone().unwrap_or_default();
            let key = (c.spec.target.api_version.clone(), c.spec.target.kind.clone());
            let target = targets.entry(key).or_default();
            for op in Operation::CUSTOMIZABLE {
                let Some(script) = c.spec.customizations.script(&op) else { continue };
                let rule = Rule { customization: name.clone(), script: script.to_owned() };
                if op == Operation::InterpretDependency {
                    target.dependencies.push(rule);
                } else {
                    target.rules.entry(op).or_insert(rule);
                }
            }
        }
        Customizations { targets }
    }

    fn target(&self, api_version: &str, kind: &str) -> Option<&Target> {
        self.targets.get(&(api_version.to_owned(), kind.to_owned()))
    }

    /// The rule for one operation on a kind.
    pub fn rule(&self, api_version: &str, kind: &str, op: &Operation) -> Option<&Rule> {
        self.target(api_version, kind)?.rules.get(op)
    }

    /// Whether a kind has a customization rule for the operation.
    pub fn has(&self, api_version: &str, kind: &str, op: &Operation) -> bool {
        match op {
            Operation::InterpretDependency => {
                self.target(api_version, kind).is_some_and(|t| !t.dependencies.is_empty())
            }
            _ => self.rule(api_version, kind, op).is_some(),
        }
    }
}

fn type_of(object: &Value) -> (&str, &str) {
    let text = |f: &str| object.get(f).and_then(Value::as_str).unwrap_or_default();
    (text("apiVersion"), text("kind"))
}

/// Who interprets an operation for a kind.
enum Route {
    Script(Rule),
    Hook(webhook::Hook),
    BuiltIn,
}

/// The interpreter a process shares: the customizations and webhooks in force, the Lua VM,
/// and the webhook clients.
#[derive(Default)]
pub struct Interpreter {
    customizations: RwLock<Arc<Customizations>>,
    webhooks: RwLock<Arc<webhook::Webhooks>>,
    vm: lua::Vm,
    caller: webhook::Caller,
    /// The control plane (webhooks given as a Service are found there).
    control: Option<::kube::Client>,
}

impl Interpreter {
    pub fn new(limits: lua::Limits) -> Self {
        Interpreter { vm: lua::Vm::new(limits), ..Interpreter::default() }
    }

    /// An interpreter that finds webhook Services on this control plane.
    pub fn with_control(control: ::kube::Client) -> Self {
        Interpreter { control: Some(control), ..Interpreter::default() }
    }

    /// Puts these webhook configurations in force (all of them).
    pub fn load_webhooks<'a>(
        &self,
        list: impl IntoIterator<Item = &'a karmada_api::config::ResourceInterpreterWebhookConfiguration>,
    ) {
        *self.webhooks.write() = Arc::new(webhook::Webhooks::new(list));
    }

    /// The webhook that interprets `op` for the object's type, if any.
    fn hook(&self, object: &Value, op: &Operation) -> Option<webhook::Hook> {
        let webhooks = self.webhooks.read().clone();
        if webhooks.is_empty() {
            return None;
        }
        let (api_version, kind) = type_of(object);
        webhooks.first(api_version, kind, op).cloned()
    }

    async fn call_hook(
        &self,
        hook: &webhook::Hook,
        attributes: webhook::Attributes<'_>,
    ) -> Result<webhook::Response, Failure> {
        self.caller
            .call(self.control.as_ref(), hook, &attributes)
            .await
            .map_err(|message| Self::hook_failure(hook, attributes.operation.clone(), message))
    }

    /// `attributes.object` with the JSONPatch `hook` answers.
    async fn patch_by_hook(
        &self,
        hook: &webhook::Hook,
        attributes: webhook::Attributes<'_>,
    ) -> Result<Value, Failure> {
        let (op, object) = (attributes.operation.clone(), attributes.object);
        let r = self.call_hook(hook, attributes).await?;
        webhook::apply_patch(object, &r).map_err(|m| Self::hook_failure(hook, op, m))
    }

    fn hook_failure(hook: &webhook::Hook, operation: Operation, message: String) -> Failure {
        Failure { operation, by: Source::Webhook(hook.uid.clone()), message }
    }

    /// Puts these customizations in force (all of them: the ones absent are gone).
    pub fn load<'a>(&self, list: impl IntoIterator<Item = &'a ResourceInterpreterCustomization>) {
        *self.customizations.write() = Arc::new(Customizations::new(list));
    }

    pub fn customizations(&self) -> Arc<Customizations> {
        self.customizations.read().clone()
    }

    /// Whether the operation is customized for the object's kind.
    pub fn customized(&self, object: &Value, op: &Operation) -> bool {
        let (api_version, kind) = type_of(object);
        self.customizations().has(api_version, kind, op)
    }

    /// Who interprets `op` for the object's kind: a customization, else a webhook, else a
    /// bundled customization ([`thirdparty`]), else the built-in rules.
    fn route(&self, object: &Value, op: &Operation) -> Route {
        let (api_version, kind) = type_of(object);
        if let Some(rule) = self.customizations().rule(api_version, kind, op) {
            return Route::Script(rule.clone());
        }
        if let Some(hook) = self.hook(object, op) {
            return Route::Hook(hook);
        }
        match thirdparty::bundled().rule(api_version, kind, op) {
            Some(rule) => Route::Script(rule.clone()),
            None => Route::BuiltIn,
        }
    }

    /// Runs a rule's function with these arguments; `read` turns the returned values into the
    /// answer.
    fn run<T>(
        &self,
        rule: &Rule,
        op: &Operation,
        args: &[&Value],
        read: impl FnOnce(Vec<LuaValue>) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let (chunk, function) = op.rule().unwrap_or(("script", "main"));
        self.vm.call(&rule.script, chunk, function, args, read).map_err(|message| Failure {
            operation: op.clone(),
            by: Source::Customization(rule.customization.clone()),
            message,
        })
    }

    /// The replicas of a workload and what each needs (`None` for a kind without replicas);
    /// requirements may be absent when a customization says so.
    pub async fn get_replicas(
        &self,
        object: &Value,
    ) -> Result<Option<(i32, Option<ReplicaRequirements>)>, Failure> {
        let op = Operation::InterpretReplica;
        let rule = match self.route(object, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let r = self.call_hook(&hook, attributes(op, object)).await?;
                return Ok(Some((r.replicas.unwrap_or_default(), r.replica_requirements)));
            }
            Route::BuiltIn => {
                let (_, kind) = type_of(object);
                return Ok(
                    propagation::interpreter::get_replicas(kind, object).map(|(n, r)| (n, Some(r)))
                );
            }
        };
        self.run(&rule, &op, &[object], |rets| {
            let replicas = match rets.first() {
                Some(LuaValue::Integer(i)) => *i as i32,
                Some(LuaValue::Number(n)) => *n as i32,
                other => return Err(expected("a number of replicas", other)),
            };
            let requirements = match rets.get(1) {
                None | Some(LuaValue::Nil) => None,
                Some(t @ LuaValue::Table(_)) => {
                    let mut json = convert::restore_empty(convert::to_json(t)?, true, &[]);
                    canonical_requests(&mut json);
                    Some(
                        serde_json::from_value(json)
                            .map_err(|e| format!("the replica requirements returned: {e}"))?,
                    )
                }
                other => return Err(expected("a table of replica requirements", other)),
            };
            Ok(Some((replicas, requirements)))
        })
    }

    /// The components of a workload with several pod templates (`None`: nothing says; there
    /// is no built-in rule, as upstream).
    pub async fn get_components(
        &self,
        object: &Value,
    ) -> Result<Option<Vec<karmada_api::work::Component>>, Failure> {
        let op = Operation::InterpretComponent;
        let rule = match self.route(object, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let r = self.call_hook(&hook, attributes(op, object)).await?;
                return Ok(Some(r.components.unwrap_or_default()));
            }
            Route::BuiltIn => return Ok(None),
        };
        self.run(&rule, &op, &[object], |rets| match rets.first() {
            None | Some(LuaValue::Nil) => Ok(Some(Vec::new())),
            Some(t @ LuaValue::Table(_)) => {
                let mut list = convert::restore_empty(convert::to_json(t)?, false, &[]);
                for component in list.as_array_mut().into_iter().flatten() {
                    if let Some(requirements) = component.get_mut("replicaRequirements") {
                        canonical_requests(requirements);
                    }
                }
                serde_json::from_value(list)
                    .map(Some)
                    .map_err(|e| format!("the components returned: {e}"))
            }
            other => Err(expected("a table of components", other)),
        })
    }

    /// The object with one cluster's replica count.
    pub async fn revise_replica(&self, object: &Value, replicas: i64) -> Result<Value, Failure> {
        let op = Operation::ReviseReplica;
        let rule = match self.route(object, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let mut attrs = attributes(op, object);
                attrs.desired_replicas = replicas as i32;
                return self.patch_by_hook(&hook, attrs).await;
            }
            Route::BuiltIn => {
                let mut revised = object.clone();
                let (_, kind) = type_of(object);
                propagation::interpreter::revise_replica(kind, &mut revised, replicas as i32);
                return Ok(revised);
            }
        };
        self.run(&rule, &op, &[object, &json!(replicas)], |rets| {
            object_result(rets.first(), &[object])
        })
    }

    /// The desired object with what the member owns kept from the observed one, when a
    /// customization says how (`None`: the built-in way, which server-side apply does by
    /// leaving other managers' fields alone).
    pub async fn retain(
        &self,
        desired: &Value,
        observed: &Value,
    ) -> Result<Option<Value>, Failure> {
        let op = Operation::Retain;
        let rule = match self.route(desired, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let mut attrs = attributes(op, desired);
                attrs.observed = Some(observed);
                return self.patch_by_hook(&hook, attrs).await.map(Some);
            }
            Route::BuiltIn => return Ok(None),
        };
        self.run(&rule, &op, &[desired, observed], |rets| {
            object_result(rets.first(), &[desired, observed]).map(Some)
        })
    }

    /// The part of a member object's status reported back (`null`: none).
    pub async fn reflect_status(&self, observed: &Value) -> Result<Value, Failure> {
        let op = Operation::InterpretStatus;
        let rule = match self.route(observed, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let r = self.call_hook(&hook, attributes(op, observed)).await?;
                return Ok(r.raw_status.unwrap_or(Value::Null));
            }
            Route::BuiltIn => {
                let (_, kind) = type_of(observed);
                return Ok(propagation::interpreter::reflect_status(kind, observed));
            }
        };
        self.run(&rule, &op, &[observed], |rets| object_result(rets.first(), &[]))
    }

    /// Whether a member's copy is healthy (`None`: the kind has no health rule).
    pub async fn health(&self, observed: &Value) -> Result<Option<bool>, Failure> {
        let op = Operation::InterpretHealth;
        let rule = match self.route(observed, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let r = self.call_hook(&hook, attributes(op, observed)).await?;
                return Ok(r.healthy);
            }
            Route::BuiltIn => {
                let (_, kind) = type_of(observed);
                return Ok(propagation::interpreter::is_healthy(kind, observed));
            }
        };
        self.run(&rule, &op, &[observed], |rets| match rets.first() {
            Some(LuaValue::Boolean(b)) => Ok(Some(*b)),
            other => Err(expected("a boolean", other)),
        })
    }

    /// The template's status from its members' (`None`: the kind has no aggregation, the
    /// template's status is left alone).
    pub async fn aggregate_status(
        &self,
        template: &Value,
        items: &[AggregatedStatusItem],
    ) -> Result<Option<Value>, Failure> {
        // No items is `nil` to a script, as the binding's empty list is to upstream's.
        let items = (!items.is_empty()).then_some(items);
        Ok(self
            .aggregate(template, items)
            .await?
            .and_then(|object| object.get("status").cloned())
            .filter(|s| !s.is_null()))
    }

    /// The template as the aggregation returns it, status included (what `karmadactl
    /// interpret` prints); `None` when the kind has no aggregation. A script is given `nil`
    /// for `None` items, an empty table for none.
    pub async fn aggregate(
        &self,
        template: &Value,
        items: Option<&[AggregatedStatusItem]>,
    ) -> Result<Option<Value>, Failure> {
        let listed = items;
        let items = items.unwrap_or_default();
        let op = Operation::AggregateStatus;
        let rule = match self.route(template, &op) {
            Route::Script(rule) => rule,
            Route::Hook(hook) => {
                let mut attrs = attributes(op, template);
                attrs.aggregated_status = items;
                return self.patch_by_hook(&hook, attrs).await.map(Some);
            }
            Route::BuiltIn => {
                return Ok(native_aggregate(template, items).map(|status| {
                    let mut object = template.clone();
                    object["status"] = status;
                    object
                }));
            }
        };
        let items = match listed {
            None => Value::Null,
            Some(items) => serde_json::to_value(items).unwrap_or(Value::Null),
        };
        self.run(&rule, &op, &[template, &items], |rets| object_result(rets.first(), &[]).map(Some))
    }

    /// The objects a workload needs propagated along with it, each checked as upstream does.
    pub async fn dependencies(
        &self,
        object: &Value,
    ) -> Result<Vec<DependentObjectReference>, Failure> {
        let (api_version, kind) = type_of(object);
        let dependency_rules = |c: &Customizations| {
            c.target(api_version, kind).map(|t| t.dependencies.clone()).unwrap_or_default()
        };
        let mut rules = dependency_rules(&self.customizations());
        let op = Operation::InterpretDependency;
        if rules.is_empty()
            && let Some(hook) = self.hook(object, &op)
        {
            let r = self.call_hook(&hook, attributes(op, object)).await?;
            return Ok(r.dependencies.unwrap_or_default());
        }
        if rules.is_empty() {
            rules = dependency_rules(thirdparty::bundled());
        }
        if rules.is_empty() {
            let namespace =
                object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
            if kind == "ServiceImport" {
                return Ok(service_import_dependencies(object, namespace));
            }
            return Ok(propagation::interpreter::dependencies(kind, object)
                .into_iter()
                .map(|d| DependentObjectReference {
                    api_version: d.api_version,
                    kind: d.kind,
                    namespace: namespace.to_owned(),
                    name: d.name,
                    label_selector: None,
                })
                .collect());
        }
        let mut all: Vec<DependentObjectReference> = Vec::new();
        for rule in &rules {
            let found = self.run(rule, &op, &[object], |rets| {
                let list = match rets.first() {
                    Some(t @ LuaValue::Table(_)) => {
                        convert::restore_empty(convert::to_json(t)?, false, &[])
                    }
                    other => return Err(expected("a table of dependencies", other)),
                };
                let refs: Vec<DependentObjectReference> = serde_json::from_value(list)
                    .map_err(|e| format!("the dependencies returned: {e}"))?;
                verify_dependencies(&refs)?;
                Ok(refs)
            })?;
            for r in found {
                if !all.contains(&r) {
                    all.push(r);
                }
            }
        }
        all.sort_by(|a, b| {
            (&a.api_version, &a.kind, &a.namespace, &a.name).cmp(&(
                &b.api_version,
                &b.kind,
                &b.namespace,
                &b.name,
            ))
        });
        Ok(all)
    }
}

/// What a ServiceImport needs in a member (as upstream): its derived Service and that
/// Service's EndpointSlices.
fn service_import_dependencies(object: &Value, namespace: &str) -> Vec<DependentObjectReference> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let derived = karmada_api::names::derived_service_name(name);
    let selector =
        serde_json::from_value(json!({"matchLabels": {"kubernetes.io/service-name": derived}}))
            .ok();
    vec![
        DependentObjectReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: namespace.to_owned(),
            name: derived.clone(),
            label_selector: None,
        },
        DependentObjectReference {
            api_version: "discovery.k8s.io/v1".into(),
            kind: "EndpointSlice".into(),
            namespace: namespace.to_owned(),
            name: String::new(),
            label_selector: selector,
        },
    ]
}

/// A script's `resourceRequest` as Kubernetes would store it: numbers (`cpu = 0.5`) become
/// quantities, and quantities print canonically (`0.05` → `50m`), as upstream's decoding
/// into typed quantities does.
fn canonical_requests(requirements: &mut Value) {
    let Some(list) = requirements.get_mut("resourceRequest").and_then(Value::as_object_mut) else {
        return;
    };
    for value in list.values_mut() {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => continue,
        };
        if let Some(canonical) = apimachinery::quantity::canonicalize(&text) {
            *value = Value::String(canonical);
        }
    }
}

/// A webhook call about `object` with nothing else.
fn attributes(operation: Operation, object: &Value) -> webhook::Attributes<'_> {
    webhook::Attributes {
        operation,
        object,
        observed: None,
        desired_replicas: 0,
        aggregated_status: &[],
    }
}

/// Checks what a dependency rule returned, as upstream: an apiVersion and a kind, and a name
/// or a label selector.
pub(crate) fn verify_dependencies(refs: &[DependentObjectReference]) -> Result<(), String> {
    let mut problems = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if r.api_version.is_empty() {
            problems.push(format!("dependencies[{i}].apiVersion: missing required apiVersion"));
        }
        if r.kind.is_empty() {
            problems.push(format!("dependencies[{i}].kind: missing required kind"));
        }
        if r.name.is_empty() && r.label_selector.is_none() {
            problems.push(format!("dependencies[{i}]: needs a name or a labelSelector"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join(", ")) }
}

fn expected(what: &str, got: Option<&LuaValue>) -> String {
    format!("expected {what}, got {}", got.map_or("nothing", LuaValue::type_name))
}

/// A returned table as an object, its empty tables decided by `references`.
fn object_result(returned: Option<&LuaValue>, references: &[&Value]) -> Result<Value, String> {
    match returned {
        Some(t @ LuaValue::Table(_)) => {
            Ok(convert::restore_empty(convert::to_json(t)?, true, references))
        }
        other => Err(expected("a table", other)),
    }
}

/// The built-in aggregation, from the status each member reported.
fn native_aggregate(template: &Value, items: &[AggregatedStatusItem]) -> Option<Value> {
    let (_, kind) = type_of(template);
    let members: Vec<MemberStatus> = items
        .iter()
        .filter_map(|item| {
            let status = item.status.clone()?;
            Some(MemberStatus {
                cluster: item.cluster_name.clone(),
                generation: status.get("generation").and_then(Value::as_i64),
                observed_generation: status.get("observedGeneration").and_then(Value::as_i64),
                status,
            })
        })
        .collect();
    let generation = template.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let spec = template.get("spec").cloned().unwrap_or(Value::Null);
    let unreported = items.len() - members.len();
    propagation::interpreter::aggregate_phase(kind, &members, unreported)
        .or_else(|| propagation::interpreter::aggregate_status(kind, &members, generation, &spec))
}

/// Compiles a script without running it (admission's check): the error is the first line of
/// Lua's message.
pub fn check_syntax(script: &str, chunk: &str) -> Result<(), String> {
    lua::check_syntax(script, chunk)
}

#[cfg(test)]
mod tests;
