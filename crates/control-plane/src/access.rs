//! Who may do what on the control plane, for the identities Karmada itself hands out (until
//! full RBAC lands): a pull-mode agent (`system:karmada:agent:<cluster>`, group
//! `system:karmada:agents`) may touch only its own cluster's Works, its Cluster and its Lease;
//! a bootstrap token (group `system:bootstrappers`) may only submit certificate signing
//! requests and read the CA in `kube-public/cluster-info`. Every other authenticated identity
//! is allowed everything, as before.

use apimachinery::ApiError;
use apiserver::request::Target;
use apiserver::{Admission, AdmissionRequest, Authorizer, Operation, User};
use karmada_api::names;
use serde_json::Value;

pub const AGENT_GROUP: &str = "system:karmada:agents";
pub const AGENT_USER_PREFIX: &str = "system:karmada:agent:";
pub const BOOTSTRAP_GROUP: &str = "system:bootstrappers";
/// The identities `karmada up` gives its components (with the roles of the same names).
pub const COMPONENT_CONTROLLER_MANAGER: &str = "system:karmada:controller-manager";
pub const COMPONENT_SCHEDULER: &str = "system:karmada:scheduler";
pub const COMPONENT_DESCHEDULER: &str = "system:karmada:descheduler";
/// The control plane's own components: not held to a user's share of in-flight requests (as
/// Kubernetes' system components are not held to a tenant's).
pub const COMPONENTS_GROUP: &str = "system:karmada:components";

/// The cluster an agent identity serves (`None` for anyone else).
pub fn agent_cluster(user: &User) -> Option<&str> {
    if !user.groups.iter().any(|g| g == AGENT_GROUP) {
        return None;
    }
    user.name.strip_prefix(AGENT_USER_PREFIX).filter(|c| !c.is_empty())
}

fn is_bootstrapper(user: &User) -> bool {
    user.groups.iter().any(|g| g == BOOTSTRAP_GROUP)
}

fn denied(user: &User, verb: &str, target: Option<&Target>, path: &str, why: &str) -> ApiError {
    apiserver::rbac::forbidden_because(user, verb, target, path, Some(why))
}

/// What an agent of `cluster` may do.
fn agent_allows(cluster: &str, verb: &str, target: Option<&Target>) -> bool {
    let Some(t) = target else { return verb == "get" };
    let ns = t.namespace.as_deref();
    let named = |name: &str| t.name.as_deref() == Some(name);
    let read = matches!(verb, "get" | "list" | "watch");
    let write = matches!(verb, "update" | "patch");
    match (t.group.as_str(), t.resource.as_str()) {
        ("work.karmada.io", "works") => ns == Some(&names::execution_namespace(cluster)),
        ("cluster.karmada.io", "clusters") => {
            (named(cluster) && (read || write)) || (verb == "create" && t.subresource.is_none())
        }
        ("coordination.k8s.io", "leases") => {
            ns == Some(names::CLUSTER_NAMESPACE)
                && ((named(cluster) && (read || write)) || verb == "create")
        }
        ("" | "events.k8s.io", "events") => {
            ns == Some(&names::execution_namespace(cluster))
                && matches!(verb, "create" | "patch" | "update")
        }
        // The member's credentials it reports (upstream's `--report-secrets`).
        ("", "secrets") => {
            let impersonator = format!("{cluster}-impersonator");
            ns == Some(names::CLUSTER_NAMESPACE)
                && ((named(cluster) || named(&impersonator))
                    && matches!(verb, "get" | "update" | "patch")
                    || verb == "create")
        }
        // The resource interpreter's configuration (health, status, retention of its Works).
        (
            "config.karmada.io",
            "resourceinterpretercustomizations" | "resourceinterpreterwebhookconfigurations",
        ) => read,
        _ => false,
    }
}

/// What a bootstrap token may do.
fn bootstrapper_allows(verb: &str, target: Option<&Target>) -> bool {
    let Some(t) = target else { return verb == "get" };
    match (t.group.as_str(), t.resource.as_str()) {
        ("certificates.k8s.io", "certificatesigningrequests") => {
            matches!(verb, "create" | "get" | "list" | "watch") && t.subresource.is_none()
        }
        ("", "configmaps") => {
            verb == "get"
                && t.namespace.as_deref() == Some("kube-public")
                && t.name.as_deref() == Some("cluster-info")
        }
        _ => false,
    }
}

pub struct KarmadaAuthorizer;

impl Authorizer for KarmadaAuthorizer {
    fn authorize(
        &self,
        user: &User,
        verb: &str,
        target: Option<&Target>,
        path: &str,
    ) -> Result<(), ApiError> {
        if let Some(cluster) = agent_cluster(user) {
            return if agent_allows(cluster, verb, target) {
                Ok(())
            } else {
                Err(denied(
                    user,
                    verb,
                    target,
                    path,
                    &format!(
                        "a cluster agent may only access the Works in {}, its own Cluster, Lease and credential Secrets (and read the resource interpreter's configuration)",
                        names::execution_namespace(cluster)
                    ),
                ))
            };
        }
        if is_bootstrapper(user) {
            return if bootstrapper_allows(verb, target) {
                Ok(())
            } else {
                Err(denied(
                    user,
                    verb,
                    target,
                    path,
                    "a bootstrap token may only submit certificate signing requests",
                ))
            };
        }
        if user.groups.iter().any(|g| g == AGENT_GROUP) {
            // In the agents' group but not named as one: nothing.
            return Err(denied(user, verb, target, path, "not a valid cluster agent identity"));
        }
        Ok(())
    }
}

/// Creates by an agent must name its own cluster: the Cluster it registers and its Lease. A
/// certificate signing request records who submitted it (whatever the body says), as in
/// Kubernetes.
pub struct AgentAdmission;

impl Admission for AgentAdmission {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.operation == Operation::Create
            && request.def.group == "certificates.k8s.io"
            && request.def.plural == "certificatesigningrequests"
        {
            let spec = object
                .as_object_mut()
                .map(|o| o.entry("spec").or_insert_with(|| serde_json::json!({})));
            if let Some(spec) = spec.and_then(Value::as_object_mut) {
                spec.insert("username".into(), request.user.name.clone().into());
                spec.insert("groups".into(), serde_json::json!(request.user.groups));
            }
            return Ok(());
        }
        let Some(cluster) = agent_cluster(request.user) else { return Ok(()) };
        if request.operation != Operation::Create {
            return Ok(());
        }
        let kind = (request.def.group.as_str(), request.def.plural.as_str());
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if kind == ("", "secrets") {
            // Only the Secrets of the credentials it reports.
            if name == cluster || name == format!("{cluster}-impersonator") {
                return Ok(());
            }
            return Err(ApiError::forbidden(format!(
                "secrets \"{name}\" is forbidden: the agent of cluster {cluster} may only create its own ({cluster}, {cluster}-impersonator)"
            )));
        }
        if !matches!(kind, ("cluster.karmada.io", "clusters") | ("coordination.k8s.io", "leases")) {
            return Ok(());
        }
        if name != cluster {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: the agent of cluster {cluster} may only create its own ({cluster})",
                request.def.plural
            )));
        }
        Ok(())
    }
}

/// Karmada's default RBAC: what agents and bootstrap tokens may do (the authorizer above then
/// narrows agents to their own cluster), and Karmada's kinds in the user-facing edit/view roles.
pub fn rbac_bootstrap() -> Vec<Value> {
    use serde_json::json;
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    let role = |name: &str, labels: Value, rules: Vec<Value>| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels}, "rules": rules})
    };
    let user_binding = |name: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    let binding = |name: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    let karmada_groups: &[&str] = &[
        "policy.karmada.io",
        "work.karmada.io",
        "cluster.karmada.io",
        "config.karmada.io",
        "autoscaling.karmada.io",
        "networking.karmada.io",
        "apps.karmada.io",
    ];
    let all = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    vec![
        role(
            "system:karmada:agent",
            json!({}),
            vec![
                rule(&["work.karmada.io"], &["works", "works/status"], &all),
                rule(
                    &["cluster.karmada.io"],
                    &["clusters", "clusters/status"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(&["", "events.k8s.io"], &["events"], &["create", "update", "patch"]),
                rule(&[""], &["secrets"], &["get", "create", "update", "patch"]),
                rule(
                    &["config.karmada.io"],
                    &[
                        "resourceinterpretercustomizations",
                        "resourceinterpreterwebhookconfigurations",
                    ],
                    &["get", "list", "watch"],
                ),
            ],
        ),
        binding("system:karmada:agent", AGENT_GROUP),
        role(
            "system:karmada:bootstrapper",
            json!({}),
            vec![
                rule(
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                    &["create", "get", "list", "watch"],
                ),
                json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"], "verbs": ["get"]}),
            ],
        ),
        binding("system:karmada:bootstrapper", BOOTSTRAP_GROUP),
        // As upstream installs it: the administrator may use the cluster proxy (upstream's
        // admin is `system:admin`; ours, from the generated kubeconfig, `admin`).
        role(
            "cluster-proxy-admin",
            json!({}),
            vec![rule(&["cluster.karmada.io"], &["clusters/proxy"], &["*"])],
        ),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-proxy-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-proxy-admin"},
            "subjects": [
                {"kind": "User", "name": "system:admin", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "User", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"}]}),
        // The components, each with its own identity. The controller-manager propagates any
        // kind, so it may read and write everything, but not impersonate. It propagates RBAC
        // objects too: claiming a (Cluster)RoleBinding is an update of it, which Kubernetes
        // allows only with `bind` on its role (the role may be propagated later, or exist
        // only in the members) and a Role with more rights than its own needs `escalate`.
        role(
            COMPONENT_CONTROLLER_MANAGER,
            json!({}),
            vec![
                rule(&["*"], &["*"], &all),
                rule(
                    &["rbac.authorization.k8s.io"],
                    &["roles", "clusterroles"],
                    &["bind", "escalate"],
                ),
                json!({"nonResourceURLs": ["*"], "verbs": ["get"]}),
            ],
        ),
        user_binding(COMPONENT_CONTROLLER_MANAGER),
        role(
            COMPONENT_SCHEDULER,
            json!({}),
            vec![
                rule(
                    &["work.karmada.io"],
                    &[
                        "resourcebindings",
                        "resourcebindings/status",
                        "clusterresourcebindings",
                        "clusterresourcebindings/status",
                    ],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(&["cluster.karmada.io"], &["clusters"], &["get", "list", "watch"]),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(&[""], &["namespaces"], &["get"]),
                rule(&["", "events.k8s.io"], &["events"], &["create", "update", "patch"]),
                // The in-process estimator reads the members with their credentials, as
                // upstream's per-member estimators are given them.
                rule(&[""], &["secrets"], &["get"]),
            ],
        ),
        user_binding(COMPONENT_SCHEDULER),
        role(
            COMPONENT_DESCHEDULER,
            json!({}),
            vec![
                rule(
                    &["work.karmada.io"],
                    &["resourcebindings"],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(&["cluster.karmada.io"], &["clusters"], &["get", "list", "watch"]),
                // The workloads' selectors, and the members' credentials (it reads their pods).
                rule(&["apps"], &["deployments"], &["get"]),
                rule(&[""], &["secrets"], &["get"]),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(&["", "events.k8s.io"], &["events"], &["create", "update", "patch"]),
            ],
        ),
        user_binding(COMPONENT_DESCHEDULER),
        role(
            "karmada:aggregate-to-edit",
            json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                "rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
            vec![rule(karmada_groups, &["*"], &all)],
        ),
        role(
            "karmada:aggregate-to-view",
            json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
            vec![rule(karmada_groups, &["*"], &["get", "list", "watch"])],
        ),
    ]
}

/// Signs an agent's client certificate when a bootstrap token asked for it and the subject is
/// exactly an agent identity (`CN=system:karmada:agent:<cluster>`, `O=system:karmada:agents`).
pub struct AgentCsrApprover;

impl apiserver::csr::CsrApprover for AgentCsrApprover {
    fn review(&self, request: &apiserver::csr::Request<'_>) -> apiserver::csr::Verdict {
        use apiserver::csr::Verdict;
        if !request.groups.contains(&BOOTSTRAP_GROUP) {
            // Anyone else's request waits for a person to approve or deny it.
            return Verdict::Pending;
        }
        let cluster = request.common_name.strip_prefix(AGENT_USER_PREFIX).unwrap_or_default();
        let valid_name = !cluster.is_empty()
            && cluster.len() <= 48
            && cluster.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name || request.organizations != [AGENT_GROUP.to_owned()] {
            return Verdict::Deny(format!(
                "the subject must be CN={AGENT_USER_PREFIX}<cluster>, O={AGENT_GROUP}; got CN={}, O={}",
                request.common_name,
                request.organizations.join(",")
            ));
        }
        Verdict::Approve(format!(
            "agent certificate for cluster {cluster}, requested by {}",
            request.username
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User { name: name.into(), groups: groups.iter().map(|g| (*g).to_owned()).collect() }
    }

    fn target(group: &str, resource: &str, ns: Option<&str>, name: Option<&str>) -> Target {
        Target {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: None,
        }
    }

    #[test]
    fn agent_certificates_are_approved_for_bootstrap_tokens_only() {
        use apiserver::csr::{CsrApprover, Request, Verdict};
        let org = [AGENT_GROUP.to_owned()];
        let request = |groups: Vec<&'static str>, cn: &'static str| Request {
            username: "system:bootstrap:abcdef",
            groups,
            common_name: cn,
            organizations: &org,
        };
        let agent = format!("{AGENT_USER_PREFIX}member5");
        let agent: &'static str = Box::leak(agent.into_boxed_str());
        assert!(matches!(
            AgentCsrApprover.review(&request(vec![BOOTSTRAP_GROUP], agent)),
            Verdict::Approve(_)
        ));
        assert!(matches!(
            AgentCsrApprover.review(&request(vec![BOOTSTRAP_GROUP], "admin")),
            Verdict::Deny(_)
        ));
        // Anyone else's request waits for `kubectl certificate approve`.
        assert_eq!(
            AgentCsrApprover.review(&request(vec!["system:authenticated"], agent)),
            Verdict::Pending
        );
    }

    #[test]
    fn agents_reach_only_their_own_cluster() {
        let agent = user("system:karmada:agent:member2", &[AGENT_GROUP]);
        let a = KarmadaAuthorizer;
        let cases: &[(&str, Target, bool)] = &[
            ("list", target("work.karmada.io", "works", Some("karmada-es-member2"), None), true),
            (
                "patch",
                target("work.karmada.io", "works", Some("karmada-es-member2"), Some("w")),
                true,
            ),
            ("list", target("work.karmada.io", "works", Some("karmada-es-member1"), None), false),
            ("list", target("work.karmada.io", "works", None, None), false),
            // Its own credential Secrets only (it reports them), never another's or a list.
            ("get", target("", "secrets", Some("karmada-cluster"), Some("member2")), true),
            (
                "update",
                target("", "secrets", Some("karmada-cluster"), Some("member2-impersonator")),
                true,
            ),
            ("get", target("", "secrets", Some("karmada-cluster"), Some("member1")), false),
            ("get", target("", "secrets", Some("karmada-system"), Some("member2")), false),
            ("list", target("", "secrets", Some("karmada-cluster"), None), false),
            ("get", target("cluster.karmada.io", "clusters", None, Some("member2")), true),
            ("watch", target("cluster.karmada.io", "clusters", None, Some("member2")), true),
            ("list", target("cluster.karmada.io", "clusters", None, None), false),
            ("get", target("cluster.karmada.io", "clusters", None, Some("member1")), false),
            ("delete", target("cluster.karmada.io", "clusters", None, Some("member2")), false),
            (
                "update",
                target("coordination.k8s.io", "leases", Some("karmada-cluster"), Some("member2")),
                true,
            ),
            (
                "update",
                target("coordination.k8s.io", "leases", Some("karmada-cluster"), Some("member1")),
                false,
            ),
            (
                "update",
                target("coordination.k8s.io", "leases", Some("karmada-system"), Some("member2")),
                false,
            ),
            (
                "create",
                target("policy.karmada.io", "propagationpolicies", Some("default"), None),
                false,
            ),
        ];
        for (verb, t, allowed) in cases {
            let got = a.authorize(&agent, verb, Some(t), "/x").is_ok();
            assert_eq!(got, *allowed, "{verb} {t:?}");
        }
        let admin = user("admin", &["system:masters"]);
        assert!(a.authorize(&admin, "get", Some(&cases[4].1), "/x").is_ok());
        let bootstrap = user("system:bootstrap:abcdef", &[BOOTSTRAP_GROUP]);
        let csr = target("certificates.k8s.io", "certificatesigningrequests", None, None);
        assert!(a.authorize(&bootstrap, "create", Some(&csr), "/x").is_ok());
        assert!(a.authorize(&bootstrap, "list", Some(&cases[0].1), "/x").is_err());
        // Another cluster's credentials.
        let message = a.authorize(&agent, "get", Some(&cases[6].1), "/x").unwrap_err().message;
        assert!(message.contains("cannot get resource \"secrets\""), "{message}");
    }
}
