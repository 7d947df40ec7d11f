//! RBAC authorization with Kubernetes' rules: Roles and ClusterRoles (verbs, apiGroups,
//! resources with `resource/subresource`, resourceNames, nonResourceURLs with a trailing `*`,
//! wildcards, aggregated ClusterRoles via `aggregationRule`), bound to users, groups and
//! ServiceAccounts by RoleBindings and ClusterRoleBindings. `system:masters` may do everything.
//!
//! The rules live in the store; an in-memory [`Index`] is kept current by a watch of the four
//! RBAC kinds, so a decision never waits on I/O. The default roles and bindings are created at
//! startup if missing ([`bootstrap_policy`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::RwLock;
use serde_json::{Value, json};
use store::Event;

use crate::auth::{Authorizer, User};
use crate::request::Target;
use crate::storage::Storage;
use apimachinery::ApiError;

pub const MASTERS: &str = "system:masters";

/// One policy rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

impl Rule {
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    fn verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// Whether the rule allows `verb` on `target` (a resource request) or `path` (otherwise).
    pub fn allows(&self, verb: &str, target: Option<&Target>, path: &str) -> bool {
        if !self.verb(verb) {
            return false;
        }
        let Some(t) = target else {
            return self.non_resource_urls.iter().any(|u| {
                u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
            });
        };
        if !self.api_groups.iter().any(|g| g == "*" || *g == t.group) {
            return false;
        }
        let combined = match &t.subresource {
            Some(sub) => format!("{}/{sub}", t.resource),
            None => t.resource.clone(),
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (t.subresource.is_some()
                    && *r == format!("*/{}", t.subresource.as_deref().unwrap_or_default()))
                || (t.subresource.is_none() && *r == t.resource)
        });
        if !resource_ok {
            return false;
        }
        self.resource_names.is_empty()
            || t.name.as_deref().is_some_and(|n| self.resource_names.iter().any(|r| r == n))
    }
}

/// A subject of a binding.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    fn from_json(v: &Value, binding_namespace: Option<&str>) -> Option<Subject> {
        let name = v.get("name").and_then(Value::as_str)?.to_owned();
        match v.get("kind").and_then(Value::as_str)? {
            "User" => Some(Subject::User(name)),
            "Group" => Some(Subject::Group(name)),
            "ServiceAccount" => Some(Subject::ServiceAccount {
                namespace: v
                    .get("namespace")
                    .and_then(Value::as_str)
                    .or(binding_namespace)
                    .unwrap_or_default()
                    .to_owned(),
                name,
            }),
            _ => None,
        }
    }

    fn matches(&self, user: &User) -> bool {
        match self {
            Subject::User(n) => *n == user.name,
            Subject::Group(g) => user.groups.iter().any(|ug| ug == g),
            Subject::ServiceAccount { namespace, name } => {
                user.name == format!("system:serviceaccount:{namespace}:{name}")
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Binding {
    /// `None`: a ClusterRoleBinding (applies everywhere).
    namespace: Option<String>,
    /// ("ClusterRole" | "Role", name)
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

type Labels = BTreeMap<String, String>;

/// A ClusterRole: its own rules, its aggregation selectors (label maps) and its labels.
type ClusterRoleEntry = (Vec<Rule>, Vec<Labels>, Labels);

/// Every RBAC object, by key.
#[derive(Default, Debug)]
pub struct Index {
    /// ClusterRole name → (rules, aggregation selectors as label maps, labels).
    cluster_roles: BTreeMap<String, ClusterRoleEntry>,
    /// (namespace, Role name) → rules.
    roles: BTreeMap<(String, String), Vec<Rule>>,
    /// binding key → binding.
    bindings: BTreeMap<String, Binding>,
}

fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

impl Index {
    /// Applies one stored object of `kind` (`None`: deleted).
    pub fn apply(
        &mut self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        object: Option<&Value>,
    ) {
        let rules = |o: &Value| -> Vec<Rule> {
            o.get("rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().map(Rule::from_json).collect())
                .unwrap_or_default()
        };
        match kind {
            "ClusterRole" => match object {
                Some(o) => {
                    let selectors = o
                        .pointer("/aggregationRule/clusterRoleSelectors")
                        .and_then(Value::as_array)
                        .map(|s| {
                            s.iter()
                                .map(|sel| {
                                    sel.get("matchLabels")
                                        .and_then(Value::as_object)
                                        .map(|m| {
                                            m.iter()
                                                .filter_map(|(k, v)| {
                                                    Some((k.clone(), v.as_str()?.to_owned()))
                                                })
                                                .collect()
                                        })
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    self.cluster_roles.insert(name.to_owned(), (rules(o), selectors, labels(o)));
                }
                None => {
                    self.cluster_roles.remove(name);
                }
            },
            "Role" => {
                let key = (namespace.unwrap_or_default().to_owned(), name.to_owned());
                match object {
                    Some(o) => {
                        self.roles.insert(key, rules(o));
                    }
                    None => {
                        self.roles.remove(&key);
                    }
                }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let key = format!("{kind}/{}/{name}", namespace.unwrap_or_default());
                match object {
                    Some(o) => {
                        let ns = (kind == "RoleBinding")
                            .then(|| namespace.unwrap_or_default().to_owned());
                        let subjects = o
                            .get("subjects")
                            .and_then(Value::as_array)
                            .map(|s| {
                                s.iter()
                                    .filter_map(|v| Subject::from_json(v, ns.as_deref()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        self.bindings.insert(
                            key,
                            Binding {
                                namespace: ns,
                                role_kind: o
                                    .pointer("/roleRef/kind")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                                role_name: o
                                    .pointer("/roleRef/name")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                                subjects,
                            },
                        );
                    }
                    None => {
                        self.bindings.remove(&key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Forgets every object of `kind`.
    fn clear(&mut self, kind: &str) {
        match kind {
            "ClusterRole" => self.cluster_roles.clear(),
            "Role" => self.roles.clear(),
            _ => {
                let prefix = format!("{kind}/");
                self.bindings.retain(|key, _| !key.starts_with(&prefix));
            }
        }
    }

    /// A ClusterRole's rules, including those aggregated into it.
    fn cluster_role_rules(&self, name: &str) -> Vec<Rule> {
        let Some((rules, selectors, _)) = self.cluster_roles.get(name) else { return Vec::new() };
        let mut all = rules.clone();
        for selector in selectors {
            for (other, (other_rules, _, other_labels)) in &self.cluster_roles {
                if other != name && selector.iter().all(|(k, v)| other_labels.get(k) == Some(v)) {
                    all.extend(other_rules.iter().cloned());
                }
            }
        }
        all
    }

    /// Every rule that applies to `user` in `namespace` (`None`: cluster-scoped requests).
    pub fn rules_for(&self, user: &User, namespace: Option<&str>) -> Vec<Rule> {
        let mut out = Vec::new();
        for binding in self.bindings.values() {
            if !binding.subjects.iter().any(|s| s.matches(user)) {
                continue;
            }
            if let Some(ns) = &binding.namespace
                && Some(ns.as_str()) != namespace
            {
                continue;
            }
            match (binding.role_kind.as_str(), &binding.namespace) {
                ("ClusterRole", _) => out.extend(self.cluster_role_rules(&binding.role_name)),
                ("Role", Some(ns)) => out.extend(
                    self.roles
                        .get(&(ns.clone(), binding.role_name.clone()))
                        .cloned()
                        .unwrap_or_default(),
                ),
                _ => {}
            }
        }
        out
    }

    pub fn allows(&self, user: &User, verb: &str, target: Option<&Target>, path: &str) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        let namespace = target.and_then(|t| t.namespace.as_deref());
        self.rules_for(user, namespace).iter().any(|r| r.allows(verb, target, path))
    }
}

/// The RBAC authorizer: decisions from the in-memory index.
#[derive(Clone, Default)]
pub struct RbacAuthorizer {
    pub index: Arc<RwLock<Index>>,
}

pub fn forbidden(user: &User, verb: &str, target: Option<&Target>, path: &str) -> ApiError {
    forbidden_because(user, verb, target, path, None)
}

/// Kubernetes' 403 message for a request, with an optional reason appended.
pub fn forbidden_because(
    user: &User,
    verb: &str,
    target: Option<&Target>,
    path: &str,
    why: Option<&str>,
) -> ApiError {
    let message = match target {
        Some(t) => {
            let resource = match &t.subresource {
                Some(sub) => format!("{}/{sub}", t.resource),
                None => t.resource.clone(),
            };
            // As Kubernetes' NewForbidden: the group-qualified resource (no subresource).
            let qualified = if t.group.is_empty() {
                t.resource.clone()
            } else {
                format!("{}.{}", t.resource, t.group)
            };
            let what =
                t.name.as_deref().map_or(qualified.clone(), |n| format!("{qualified} \"{n}\""));
            let scope = match &t.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_owned(),
            };
            format!(
                "{what} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                user.name, t.group
            )
        }
        None => format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name),
    };
    match why {
        Some(why) => ApiError::forbidden(format!("{message}: {why}")),
        None => ApiError::forbidden(message),
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize(
        &self,
        user: &User,
        verb: &str,
        target: Option<&Target>,
        path: &str,
    ) -> Result<(), ApiError> {
        if self.index.read().allows(user, verb, target, path) {
            Ok(())
        } else {
            Err(forbidden(user, verb, target, path))
        }
    }
}

/// Every authorizer must allow (a narrowing layer in front of RBAC).
pub struct All(pub Vec<Arc<dyn Authorizer>>);

impl Authorizer for All {
    fn authorize(
        &self,
        user: &User,
        verb: &str,
        target: Option<&Target>,
        path: &str,
    ) -> Result<(), ApiError> {
        for a in &self.0 {
            a.authorize(user, verb, target, path)?;
        }
        Ok(())
    }
}

const KINDS: [(&str, &str); 4] = [
    ("ClusterRole", "clusterroles"),
    ("Role", "roles"),
    ("ClusterRoleBinding", "clusterrolebindings"),
    ("RoleBinding", "rolebindings"),
];

fn apply_stored(index: &mut Index, kind: &str, object: &Value, deleted: bool) {
    let ns = object.pointer("/metadata/namespace").and_then(Value::as_str);
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    index.apply(kind, ns, name, (!deleted).then_some(object));
}

/// (Re)loads every object of one RBAC kind into `index`, replacing what it held of that kind;
/// returns the revision read at (`None` if the store could not be read).
async fn load_kind(
    api: &Storage,
    index: &RwLock<Index>,
    kind: &str,
    prefix: &str,
) -> Option<store::Revision> {
    let (items, revision) = crate::follow::list_all(api, prefix.as_bytes()).await.ok()?;
    let mut guard = index.write();
    guard.clear(kind);
    for kv in &items {
        apply_stored(&mut guard, kind, &crate::codec::decode(&kv.value, kv.mod_revision.0), false);
    }
    Some(revision)
}

/// Loads every RBAC object into `index`; returns each kind's store prefix and the revision
/// to watch it from.
pub async fn load(
    api: &Arc<Storage>,
    index: &Arc<RwLock<Index>>,
) -> Vec<(&'static str, String, store::Revision)> {
    let mut out = Vec::new();
    for (kind, plural) in KINDS {
        let Some(def) = api.registry.get("rbac.authorization.k8s.io", "v1", plural) else {
            continue;
        };
        let prefix = def.collection_prefix(None);
        if let Some(revision) = load_kind(api, index, kind, &prefix).await {
            out.push((kind, prefix, revision));
        }
    }
    out
}

/// Keeps one RBAC kind in `index` current from the store's watch (reloading the kind when
/// the watch cannot resume).
pub async fn watch(
    api: Arc<Storage>,
    index: Arc<RwLock<Index>>,
    kind: &'static str,
    prefix: String,
    mut after: store::Revision,
) {
    let mut shutdown = api.shutdown.clone();
    loop {
        let mut stream = match api.store.watch(prefix.as_bytes(), after).await {
            Ok(s) => s,
            Err(_) => {
                // Compacted or unavailable: reload this kind from scratch.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(revision) = load_kind(&api, &index, kind, &prefix).await {
                    after = revision;
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = stream.next() => match event {
                    Some(Ok(Event::Put { kv, .. })) => {
                        after = kv.mod_revision;
                        let object = crate::codec::decode(&kv.value, kv.mod_revision.0);
                        apply_stored(&mut index.write(), kind, &object, false);
                    }
                    Some(Ok(Event::Delete { revision, prev })) => {
                        after = revision;
                        let object = crate::codec::decode(&prev.value, prev.mod_revision.0);
                        apply_stored(&mut index.write(), kind, &object, true);
                    }
                    Some(Err(_)) => break,
                    None => return,
                },
            }
        }
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Kubernetes' default roles (simplified but with the same intent) and bindings: cluster-admin
/// for system:masters, discovery and self-reviews for every authenticated user, and the
/// user-facing admin / edit / view roles (aggregating, so CRDs can extend them).
pub fn bootstrap_policy() -> Vec<Value> {
    let all_verbs: Vec<&str> = READ.iter().chain(WRITE).copied().collect();
    let cluster_role = |name: &str, rules: Vec<Value>, labels: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels}, "rules": rules})
    };
    let aggregated = |name: &str, label: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]},
            "rules": []})
    };
    let binding = |name: &str, role: &str, kind: &str, subject: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": kind, "name": subject, "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    let workloads: &[&str] = &[
        "pods",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "persistentvolumeclaims",
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "horizontalpodautoscalers",
        "ingresses",
        "networkpolicies",
        "poddisruptionbudgets",
        "events",
        "deployments/scale",
        "statefulsets/scale",
        "replicasets/scale",
        "pods/log",
        "pods/status",
    ];
    let groups: &[&str] =
        &["", "apps", "batch", "autoscaling", "networking.k8s.io", "policy", "events.k8s.io"];
    let view_workloads: Vec<&str> = workloads.iter().copied().filter(|r| *r != "secrets").collect();
    vec![
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), json!({"nonResourceURLs": ["*"], "verbs": ["*"]})],
            json!({}),
        ),
        binding("cluster-admin", "cluster-admin", "Group", MASTERS),
        cluster_role(
            "system:discovery",
            vec![json!({"nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
            "/healthz", "/livez", "/readyz"], "verbs": ["get"]})],
            json!({}),
        ),
        binding("system:discovery", "system:discovery", "Group", "system:authenticated"),
        // Health and version for everyone, the unauthenticated included (load balancers and
        // probes), as Kubernetes' system:public-info-viewer.
        cluster_role(
            "system:public-info-viewer",
            vec![
                json!({"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
            json!({}),
        ),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:public-info-viewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:public-info-viewer"},
            "subjects": [
                {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}]}),
        cluster_role(
            "system:basic-user",
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
            json!({}),
        ),
        binding("system:basic-user", "system:basic-user", "Group", "system:authenticated"),
        aggregated("admin", "rbac.authorization.k8s.io/aggregate-to-admin"),
        aggregated("edit", "rbac.authorization.k8s.io/aggregate-to-edit"),
        aggregated("view", "rbac.authorization.k8s.io/aggregate-to-view"),
        cluster_role(
            "system:aggregate-to-admin",
            vec![rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], &all_verbs)],
            json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            vec![rule(groups, workloads, &all_verbs)],
            json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                   "rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
        ),
        cluster_role(
            "system:aggregate-to-view",
            vec![rule(groups, &view_workloads, READ)],
            json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                   "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                   "rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        ),
    ]
}

/// Whether `owner` rules cover every permission of `rule` (Kubernetes' escalation check:
/// wildcards in `rule` must be matched by wildcards).
pub fn covers(owner: &[Rule], rule: &Rule) -> bool {
    let has = |list: &[String], value: &str| {
        list.iter().any(|x| x == "*" || (value != "*" && x == value))
    };
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            let ok = owner.iter().any(|o| {
                has(&o.verbs, verb)
                    && o.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == url
                            || u.strip_suffix('*').is_some_and(|p| url.starts_with(p))
                    })
            });
            if !ok {
                return false;
            }
        }
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let names: Vec<Option<&str>> = if rule.resource_names.is_empty() {
                    vec![None]
                } else {
                    rule.resource_names.iter().map(|n| Some(n.as_str())).collect()
                };
                for name in names {
                    let ok = owner.iter().any(|o| {
                        has(&o.verbs, verb)
                            && has(&o.api_groups, group)
                            && has(&o.resources, resource)
                            && (o.resource_names.is_empty()
                                || name.is_some_and(|n| o.resource_names.iter().any(|x| x == n)))
                    });
                    if !ok {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// Escalation prevention, as Kubernetes: a Role or ClusterRole may only be written by someone
/// who holds every permission in it (or may `escalate`), and a binding only by someone who
/// holds the bound role's permissions (or may `bind` it).
pub struct EscalationCheck {
    pub index: Arc<RwLock<Index>>,
}

impl crate::admission::Admission for EscalationCheck {
    fn admit(
        &self,
        request: &crate::admission::AdmissionRequest<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if request.def.group != "rbac.authorization.k8s.io"
            || request.operation == crate::admission::Operation::Delete
        {
            return Ok(());
        }
        let user = request.user;
        let index = self.index.read();
        if user.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let held = index.rules_for(user, if request.def.namespaced { namespace } else { None });
        let target = |resource: &str, name: &str| Target {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            subresource: None,
        };
        match request.def.plural.as_str() {
            plural @ ("roles" | "clusterroles") => {
                if index.allows(user, "escalate", Some(&target(plural, name)), "") {
                    return Ok(());
                }
                let rules: Vec<Rule> = object
                    .get("rules")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().map(Rule::from_json).collect())
                    .unwrap_or_default();
                if let Some(missing) = rules.iter().find(|r| !covers(&held, r)) {
                    return Err(ApiError::forbidden(format!(
                        "{plural} \"{name}\" is forbidden: user \"{}\" is attempting to grant RBAC permissions not currently held: {{verbs: {:?}, apiGroups: {:?}, resources: {:?}, resourceNames: {:?}, nonResourceURLs: {:?}}}",
                        user.name,
                        missing.verbs,
                        missing.api_groups,
                        missing.resources,
                        missing.resource_names,
                        missing.non_resource_urls
                    )));
                }
                Ok(())
            }
            "rolebindings" | "clusterrolebindings" => {
                let kind =
                    object.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
                let role =
                    object.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
                let role_resource = if kind == "Role" { "roles" } else { "clusterroles" };
                if index.allows(user, "bind", Some(&target(role_resource, role)), "") {
                    return Ok(());
                }
                // A role that does not exist grants nothing today but whatever it will hold
                // once someone creates it: binding it needs `bind`, as in Kubernetes.
                let exists = match kind {
                    "Role" => index
                        .roles
                        .contains_key(&(namespace.unwrap_or_default().to_owned(), role.to_owned())),
                    _ => index.cluster_roles.contains_key(role),
                };
                if !exists {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: user \"{}\" may not bind {kind} \"{role}\": it does not exist, and binding a role before it exists needs the bind verb on it",
                        request.def.plural, user.name
                    )));
                }
                let role_rules = match kind {
                    "Role" => index
                        .roles
                        .get(&(namespace.unwrap_or_default().to_owned(), role.to_owned()))
                        .cloned()
                        .unwrap_or_default(),
                    _ => index.cluster_role_rules(role),
                };
                if role_rules.iter().all(|r| covers(&held, r)) {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: user \"{}\" is attempting to grant RBAC permissions not currently held (binding {kind} {role})",
                        request.def.plural, user.name
                    )))
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User { name: name.into(), groups: groups.iter().map(|g| (*g).to_owned()).collect() }
    }

    fn target(
        group: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Target {
        Target {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        }
    }

    fn index(objects: &[Value]) -> Index {
        let mut index = Index::default();
        for o in objects {
            let kind = o["kind"].as_str().unwrap_or_default();
            let ns = o.pointer("/metadata/namespace").and_then(Value::as_str);
            let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            index.apply(kind, ns, name, Some(o));
        }
        index
    }

    #[test]
    fn rules_bindings_and_aggregation() {
        let mut objects = bootstrap_policy();
        objects.push(json!({"kind": "Role", "metadata": {"name": "cm-reader", "namespace": "team-a"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]}]}));
        objects.push(json!({"kind": "RoleBinding", "metadata": {"name": "alice-cm", "namespace": "team-a"},
            "roleRef": {"kind": "Role", "name": "cm-reader"}, "subjects": [{"kind": "User", "name": "alice"}]}));
        objects.push(json!({"kind": "RoleBinding", "metadata": {"name": "bob-view", "namespace": "team-a"},
            "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Group", "name": "devs"}]}));
        objects.push(json!({"kind": "ClusterRole", "metadata": {"name": "widgets-view",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.io"], "resources": ["widgets"], "verbs": ["list"]}]}));
        objects.push(json!({"kind": "ClusterRoleBinding", "metadata": {"name": "sa-edit"},
            "roleRef": {"kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]}));
        let index = index(&objects);
        let alice = user("alice", &["system:authenticated"]);
        let bob = user("bob", &["devs", "system:authenticated"]);
        let sa = user("system:serviceaccount:ci:deployer", &["system:authenticated"]);
        let admin = user("root", &[MASTERS]);
        let cm = |ns: &str, name: Option<&str>| target("", "configmaps", None, Some(ns), name);
        let cases: Vec<(&User, &str, Option<Target>, &str, bool)> = vec![
            (&alice, "get", Some(cm("team-a", Some("settings"))), "", true),
            (&alice, "get", Some(cm("team-a", Some("other"))), "", false),
            (&alice, "list", Some(cm("team-a", None)), "", false),
            (&alice, "get", Some(cm("team-b", Some("settings"))), "", false),
            (&alice, "get", None, "/apis/apps/v1", true),
            (&alice, "get", None, "/metrics", false),
            (&bob, "list", Some(cm("team-a", None)), "", true),
            (&bob, "create", Some(cm("team-a", None)), "", false),
            (&bob, "get", Some(target("", "secrets", None, Some("team-a"), Some("s"))), "", false),
            (
                &bob,
                "list",
                Some(target("example.io", "widgets", None, Some("team-a"), None)),
                "",
                true,
            ),
            (&bob, "list", Some(cm("team-b", None)), "", false),
            (
                &sa,
                "patch",
                Some(target("apps", "deployments", Some("scale"), Some("x"), Some("d"))),
                "",
                true,
            ),
            (
                &sa,
                "update",
                Some(target("apps", "deployments", Some("status"), Some("x"), Some("d"))),
                "",
                false,
            ),
            (
                &sa,
                "create",
                Some(target("rbac.authorization.k8s.io", "roles", None, Some("x"), None)),
                "",
                false,
            ),
            (&admin, "delete", Some(target("", "nodes", None, None, Some("n"))), "", true),
            (
                &alice,
                "create",
                Some(target("authorization.k8s.io", "selfsubjectaccessreviews", None, None, None)),
                "",
                true,
            ),
        ];
        for (u, verb, t, path, want) in cases {
            assert_eq!(
                index.allows(u, verb, t.as_ref(), path),
                want,
                "{} {verb} {t:?} {path}",
                u.name
            );
        }
    }

    #[test]
    fn deleting_a_binding_revokes() {
        let binding = json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "carol"}]});
        let mut index = index(&[bootstrap_policy()[0].clone(), binding]);
        let carol = user("carol", &[]);
        let t = target("", "secrets", None, Some("x"), None);
        assert!(index.allows(&carol, "list", Some(&t), ""));
        index.apply("ClusterRoleBinding", None, "b", None);
        assert!(!index.allows(&carol, "list", Some(&t), ""));
    }
}
