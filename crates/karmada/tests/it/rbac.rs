//! Who may do what on the control plane: RBAC with the real kubectl — a table of principals
//! and requests, `kubectl auth can-i` (and `--list`), `kubectl auth whoami`, impersonation.

use crate::harness::ApiServer;

const POLICY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: settings-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [settings]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-settings, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: settings-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-edit, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: devs}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team-a}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: team-a}
data: {a: b}
"#;

#[test]
fn principals_and_requests() {
    let s = ApiServer::start("memory");
    s.kubectl_stdin(&["apply", "-f", "-"], POLICY).ok();
    let alice = s.user_kubeconfig("alice", &[]);
    let bob = s.user_kubeconfig("bob", &["devs"]);
    let eve = s.user_kubeconfig("eve", &[]);
    let pp = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: team-a}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n";
    let bob_pp = s.file("pp.yaml", pp);
    let cases: &[(&std::path::Path, &[&str], bool)] = &[
        (&alice, &["get", "configmap", "settings", "-n", "team-a"], true),
        (&alice, &["get", "configmap", "other", "-n", "team-a"], false),
        (&alice, &["get", "configmaps", "-n", "team-a"], false),
        (&alice, &["get", "secrets", "-n", "team-a"], false),
        (&bob, &["get", "configmaps", "-n", "team-a"], true),
        (&bob, &["get", "configmaps", "-n", "default"], false),
        (&bob, &["create", "-f", &bob_pp], true),
        (&bob, &["get", "roles", "-n", "team-a"], false),
        (&bob, &["get", "clusters"], false),
        (&eve, &["get", "namespaces"], false),
        (&eve, &["get", "--raw", "/apis"], true),
    ];
    let mut failures = Vec::new();
    for (config, args, allowed) in cases {
        let out = s.kubectl_as(config, args);
        let ok = out.code == 0;
        let forbidden = out.stderr.contains("Forbidden") || out.stderr.contains("forbidden");
        if ok != *allowed || (!ok && !forbidden) {
            failures.push(format!(
                "{} {args:?}: code {} {}",
                config.display(),
                out.code,
                out.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // kubectl auth can-i, for oneself and (impersonating, as cluster-admin) for others.
    let can = |config: Option<&std::path::Path>, args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = match config {
            Some(c) => s.kubectl_as(c, &all),
            None => s.kubectl(&all),
        };
        out.stdout.trim().to_owned()
    };
    assert_eq!(can(Some(&alice), &["get", "configmap/settings", "-n", "team-a"]), "yes");
    assert_eq!(can(Some(&alice), &["get", "configmap/other", "-n", "team-a"]), "no");
    assert_eq!(can(Some(&bob), &["create", "deployments", "-n", "team-a"]), "yes");
    assert_eq!(can(None, &["create", "deployments", "-n", "team-a", "--as", "bob"]), "no");
    assert_eq!(
        can(None, &["create", "deployments", "-n", "team-a", "--as", "bob", "--as-group", "devs"]),
        "yes"
    );
    let list = s.kubectl_as(&alice, &["auth", "can-i", "--list", "-n", "team-a"]);
    assert!(
        list.ok().contains("configmaps") && list.stdout.contains("[settings]"),
        "{}",
        list.stdout
    );

    // Impersonation needs the impersonate verb.
    let out = s.kubectl_as(&bob, &["get", "configmaps", "-n", "team-a", "--as", "alice"]);
    assert!(out.code != 0 && out.stderr.contains("impersonate"), "{out:?}");

    // whoami
    let who = s.kubectl_as(
        &bob,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"],
    );
    assert!(who.ok().starts_with("bob ") && who.stdout.contains("devs"), "{}", who.stdout);

    // A revoked binding takes effect at once.
    s.kubectl(&["delete", "rolebinding", "devs-edit", "-n", "team-a"]).ok();
    crate::harness::eventually(std::time::Duration::from_secs(10), "revocation", || {
        (s.kubectl_as(&bob, &["get", "configmaps", "-n", "team-a"]).code != 0).then_some(())
    });

    // Bad credentials are 401, not 403.
    let anonymous = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            "/dev/null",
            "--server",
            &s.url,
            "--insecure-skip-tls-verify",
            "--token",
            "abc",
            "get",
            "ns",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&anonymous.stderr);
    assert!(err.contains("Unauthorized") || err.contains("must be logged in"), "{err}");
}
