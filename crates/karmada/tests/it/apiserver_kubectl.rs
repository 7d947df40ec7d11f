//! The API server black-box checklist (KUBE-API-COMPAT.md §7), driven with the real kubectl
//! against the real `karmada apiserver` binary. Check numbers refer to that list.

use std::io::Read;
use std::time::Duration;

use crate::harness::{ApiServer, eventually, widget};

#[test]
fn discovery_and_version_with_every_kubectl() {
    let s = ApiServer::start("memory");
    // 1
    let out = s.kubectl(&["version"]);
    assert!(out.ok().contains("Server Version: v1.32.0"), "{}", out.stdout);
    s.install_widgets();
    // 7, 8: discovery negotiation works for old and new kubectl alike.
    for version in ["1.27", "1.29", "1.33"] {
        let out = s.kubectl_version(version, &["api-resources"]);
        let row =
            out.ok().lines().find(|l| l.starts_with("widgets")).unwrap_or_default().to_owned();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols,
            ["widgets", "wg", "example.com/v1", "true", "Widget"],
            "kubectl {version}: {row:?}"
        );
        // 12: create with default validation works (needs /openapi/v2 for 1.27).
        let name = format!("v{}", version.replace('.', "-"));
        let file = s.file(&format!("{name}.yaml"), &widget(&name, 1, ""));
        let out = s.kubectl_version(version, &["create", "-f", &file]);
        assert!(
            out.ok().contains(&format!("widget.example.com/{name} created")),
            "kubectl {version}: {out:?}"
        );
    }
    // 9: a CRD created now is usable right away.
    let gadgets = crate::harness::WIDGET_CRD
        .replace("widgets", "gadgets")
        .replace("widget", "gadget")
        .replace("Widget", "Gadget")
        .replace("[wg]", "[gd]");
    let file = s.file("gadgets.yaml", &gadgets);
    s.kubectl(&["apply", "-f", &file]).ok();
    eventually(Duration::from_secs(10), "gadgets served", || {
        (s.kubectl(&["get", "gadgets"]).code == 0).then_some(())
    });
    // 10: get all includes widgets.
    let out = s.kubectl(&["get", "all"]);
    assert!(out.ok().contains("widget.example.com/v1-27"), "{}", out.stdout);
    // 74
    assert_eq!(s.kubectl(&["get", "--raw", "/healthz"]).ok(), "ok");
    let raw = s.kubectl(&["get", "--raw", "/apis/example.com/v1/namespaces/default/widgets/v1-33"]);
    let v: serde_json::Value = serde_json::from_str(raw.ok()).unwrap();
    assert_eq!(v["kind"], "Widget");
}

#[test]
fn read_list_selectors_and_tables() {
    let s = ApiServer::start("memory");
    s.install_widgets();
    for (name, size, labels) in [
        ("w1", 3, "  labels: {app: demo}\n"),
        ("w2", 1, "  labels: {app: x, tier: web}\n"),
        ("w3", 2, ""),
    ] {
        let file = s.file(&format!("{name}.yaml"), &widget(name, size, labels));
        // 11
        assert!(
            s.kubectl(&["create", "-f", &file])
                .ok()
                .contains(&format!("widget.example.com/{name} created"))
        );
    }
    // 15
    let v: serde_json::Value =
        serde_json::from_str(s.kubectl(&["get", "wg", "w1", "-o", "json"]).ok()).unwrap();
    assert_eq!(v["apiVersion"], "example.com/v1");
    assert_eq!(v["metadata"]["generation"], 1);
    assert_eq!(v["metadata"]["namespace"], "default");
    assert!(v["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(v["metadata"]["resourceVersion"].as_str().is_some_and(|rv| rv.parse::<u64>().is_ok()));
    // 26
    let out = s.kubectl(&["get", "wg"]);
    let header: Vec<&str> = out.ok().lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "PHASE", "AGE"]);
    let wide = s.kubectl(&["get", "wg", "-o", "wide"]);
    assert!(wide.ok().lines().next().unwrap().contains("COLOR"));
    // 27
    let labels = s.kubectl(&["get", "wg", "--show-labels"]);
    assert!(labels.ok().contains("app=demo"));
    let column = s.kubectl(&["get", "wg", "-L", "app"]);
    assert!(column.ok().lines().next().unwrap().contains("APP"));
    // 28
    let sorted = s.kubectl(&["get", "wg", "--sort-by=.spec.size", "-o", "name"]);
    assert_eq!(
        sorted.ok().lines().collect::<Vec<_>>(),
        ["widget.example.com/w2", "widget.example.com/w3", "widget.example.com/w1"]
    );
    let sorted_table = s.kubectl(&["get", "wg", "--sort-by=.spec.size"]);
    let names: Vec<&str> =
        sorted_table.ok().lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["w2", "w3", "w1"]);
    // 19
    let select = |sel: &str| -> Vec<String> {
        let out = s.kubectl(&["get", "wg", "-l", sel, "-o", "name"]);
        out.ok().lines().map(|l| l.trim_start_matches("widget.example.com/").to_owned()).collect()
    };
    assert_eq!(select("app=demo"), ["w1"]);
    assert_eq!(select("app!=demo"), ["w2", "w3"]);
    assert_eq!(select("app in (demo,x)"), ["w1", "w2"]);
    assert_eq!(select("!tier"), ["w1", "w3"]);
    assert_eq!(select("tier"), ["w2"]);
    // 20
    let out = s.kubectl(&["get", "wg", "--field-selector", "metadata.name=w1", "-o", "name"]);
    assert_eq!(out.ok().trim(), "widget.example.com/w1");
    let bad = s.kubectl(&["get", "wg", "--field-selector", "spec.size=3"]);
    assert!(bad.fails().contains("field label not supported"), "{}", bad.stderr);
    // 18
    for i in 0..3 {
        s.kubectl(&[
            "create",
            "configmap",
            &format!("cm{i}"),
            "--from-literal=a=b",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .ok();
        let cm =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  a: b\n");
        s.kubectl_stdin(&["create", "-f", "-"], &cm).ok();
    }
    let chunked = s.kubectl(&["get", "cm", "--chunk-size=1", "-o", "name"]);
    assert_eq!(chunked.ok().lines().count(), 3);
    // 21
    let all = s.kubectl(&["get", "wg", "-A"]);
    assert!(all.ok().lines().next().unwrap().starts_with("NAMESPACE"));
    // 23, 24
    let missing = s.kubectl(&["get", "wg", "nope"]);
    assert!(
        missing
            .fails()
            .contains("Error from server (NotFound): widgets.example.com \"nope\" not found"),
        "{}",
        missing.stderr
    );
    s.kubectl(&["create", "namespace", "empty", "--dry-run=client", "-o", "yaml"]).ok();
    s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: empty\n",
    )
    .ok();
    let empty = s.kubectl(&["get", "wg", "-n", "empty"]);
    empty.ok();
    assert!(empty.stderr.contains("No resources found in empty namespace."), "{}", empty.stderr);
    // 29
    let one = s.kubectl(&["get", "wg", "w1"]);
    assert_eq!(one.ok().lines().count(), 2);
    // Built-in printers.
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - {name: nginx, image: nginx}\n";
    s.kubectl_stdin(&["apply", "-f", "-"], deploy).ok();
    let out = s.kubectl(&["get", "deploy"]);
    let header: Vec<&str> = out.ok().lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(out.stdout.contains("web    0/2"), "{}", out.stdout);
    let cms = s.kubectl(&["get", "cm"]);
    assert_eq!(
        cms.ok().lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DATA", "AGE"]
    );
}

#[test]
fn create_update_patch_and_conflicts() {
    let s = ApiServer::start("memory");
    s.install_widgets();
    let w1 = s.file("w1.yaml", &widget("w1", 3, "  labels: {app: demo}\n"));
    s.kubectl(&["create", "-f", &w1]).ok();
    // 31
    let again = s.kubectl(&["create", "-f", &w1]);
    assert!(
        again.fails().contains("Error from server (AlreadyExists): error when creating"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("widgets.example.com \"w1\" already exists"));
    // 32
    let generated = s.file("gen.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  generateName: gen-\nspec:\n  size: 1\n");
    let out = s.kubectl(&["create", "-f", &generated]);
    let line = out.ok().trim().to_owned();
    assert!(
        line.starts_with("widget.example.com/gen-")
            && line.ends_with(" created")
            && line.len() == "widget.example.com/gen-xxxxx created".len(),
        "{line}"
    );
    // 33
    let noname = s.file(
        "noname.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {}\nspec:\n  size: 1\n",
    );
    let out = s.kubectl(&["create", "-f", &noname]);
    assert!(
        out.fails().contains("metadata.name: Required value: name or generateName is required"),
        "{}",
        out.stderr
    );
    // 34
    let other_ns = s.file("other.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: x\n  namespace: other\nspec:\n  size: 1\n");
    let out = s.kubectl(&["create", "-f", &other_ns, "-n", "default"]);
    assert!(out.fails().contains("namespace"), "{}", out.stderr);
    // 35
    let w2 = s.file("w2.yaml", &widget("w2", 2, ""));
    let out = s.kubectl(&["create", "--dry-run=server", "-f", &w2]);
    assert!(out.ok().contains("widget.example.com/w2 created (server dry run)"));
    s.kubectl(&["get", "wg", "w2"]).fails();
    // 36
    let stale = s.file("stale.yaml", &widget("w1", 9, "  resourceVersion: \"1\"\n"));
    let out = s.kubectl(&["replace", "-f", &stale]);
    assert!(out.fails().contains("Error from server (Conflict)"), "{}", out.stderr);
    assert!(out.stderr.contains("the object has been modified; please apply your changes to the latest version and try again"));
    // 37, 38
    let rv = |s: &ApiServer| {
        s.kubectl(&[
            "get",
            "wg",
            "w1",
            "-o",
            "jsonpath={.metadata.resourceVersion} {.metadata.generation}",
        ])
        .ok()
        .to_owned()
    };
    let before = rv(&s);
    let out = s.kubectl(&["patch", "wg", "w1", "--type", "merge", "-p", "{\"spec\":{\"size\":3}}"]);
    assert!(out.ok().contains("widget.example.com/w1 patched (no change)"), "{}", out.stdout);
    assert_eq!(rv(&s), before, "a no-op patch keeps the resourceVersion");
    s.kubectl(&["label", "wg", "w1", "extra=yes"]).ok();
    let after_label = rv(&s);
    assert_ne!(after_label, before);
    assert!(after_label.ends_with(" 1"), "labels do not bump generation: {after_label}");
    s.kubectl(&["patch", "wg", "w1", "--type", "merge", "-p", "{\"spec\":{\"size\":4}}"]).ok();
    assert!(rv(&s).ends_with(" 2"), "spec changes bump generation");
    // 39
    s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        "{\"status\":{\"phase\":\"Ready\"}}",
    ])
    .ok();
    let v =
        s.kubectl(&["get", "wg", "w1", "-o", "jsonpath={.status.phase} {.metadata.generation}"]);
    assert_eq!(v.ok(), "Ready 2");
    // 41
    s.kubectl(&["patch", "wg", "w1", "--type", "merge", "-p", "{\"spec\":{\"color\":null}}"]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "w1", "-o", "jsonpath={.spec.color}"]).ok(), "");
    // 42
    s.kubectl(&["patch", "wg", "w1", "--type", "json", "-p", "[{\"op\":\"test\",\"path\":\"/spec/size\",\"value\":4},{\"op\":\"replace\",\"path\":\"/spec/size\",\"value\":5}]"]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "w1", "-o", "jsonpath={.spec.size}"]).ok(), "5");
    s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--type",
        "json",
        "-p",
        "[{\"op\":\"test\",\"path\":\"/spec/size\",\"value\":99}]",
    ])
    .fails();
    // 43
    s.kubectl(&["patch", "wg", "w1", "--type", "json", "-p", "[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":null},{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"x/y\"]}]"]).ok();
    assert_eq!(
        s.kubectl(&["get", "wg", "w1", "-o", "jsonpath={.metadata.finalizers}"]).ok(),
        "[\"x/y\"]"
    );
    s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--type",
        "merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ])
    .ok();
    // 44
    let out = s.kubectl(&["patch", "wg", "w1", "-p", "{\"spec\":{\"size\":5}}"]);
    assert!(out.fails().contains("accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"), "{}", out.stderr);
    // 45
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - {name: nginx, image: nginx}\n      - {name: sidecar, image: busybox}\n";
    s.kubectl_stdin(&["create", "-f", "-"], deploy).ok();
    s.kubectl(&["patch", "deploy", "web", "-p", "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx:1.27\"}]}}}}"]).ok();
    let images = s.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]);
    assert_eq!(images.ok(), "nginx:1.27 busybox");
    // 46
    let out = s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--type",
        "merge",
        "-p",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"size\":6}}",
    ]);
    assert!(out.fails().contains("Conflict"), "{}", out.stderr);
    // 69, 70
    assert!(
        s.kubectl(&["scale", "deploy", "web", "--replicas=5"])
            .ok()
            .contains("deployment.apps/web scaled")
    );
    s.kubectl(&["scale", "deploy", "web", "--replicas=6", "--current-replicas=5"]).ok();
    assert_eq!(s.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).ok(), "6");
    s.kubectl(&["scale", "wg", "w1", "--replicas=2"]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "w1", "-o", "jsonpath={.spec.replicas}"]).ok(), "2");
}

#[test]
fn client_side_and_server_side_apply() {
    let s = ApiServer::start("memory");
    s.install_widgets();
    // 47, 48, 49
    let w2 = s.file("w2.yaml", &widget("w2", 1, ""));
    assert!(s.kubectl(&["apply", "-f", &w2]).ok().contains("widget.example.com/w2 created"));
    let annotations = s.kubectl(&["get", "wg", "w2", "-o", "jsonpath={.metadata.annotations}"]);
    assert!(annotations.ok().contains("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(s.kubectl(&["apply", "-f", &w2]).ok().contains("widget.example.com/w2 unchanged"));
    let w2 = s.file("w2.yaml", &widget("w2", 5, ""));
    assert!(s.kubectl(&["apply", "-f", &w2]).ok().contains("widget.example.com/w2 configured"));
    // 50
    let w3 = s.file("w3.yaml", &widget("w3", 1, ""));
    assert!(
        s.kubectl(&["apply", "--server-side", "-f", &w3])
            .ok()
            .contains("widget.example.com/w3 serverside-applied")
    );
    let managers = s.kubectl(&[
        "get",
        "wg",
        "w3",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager} {.metadata.managedFields[*].operation}",
        "--show-managed-fields",
    ]);
    assert_eq!(managers.ok(), "kubectl Apply");
    // 52
    let w2_ssa = s.file("w2b.yaml", &widget("w2", 9, ""));
    let out = s.kubectl(&["apply", "--server-side", "-f", &w2_ssa]);
    assert!(out.fails().contains("conflict with \"kubectl-client-side-apply\""), "{}", out.stderr);
    assert!(out.stderr.contains(".spec.size"));
    s.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &w2_ssa]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "w2", "-o", "jsonpath={.spec.size}"]).ok(), "9");
    // 53
    let both = s.file("w4.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w4\nspec:\n  size: 1\n  color: red\n");
    s.kubectl(&["apply", "--server-side", "-f", &both]).ok();
    let fewer = s.file(
        "w4.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w4\nspec:\n  size: 1\n",
    );
    s.kubectl(&["apply", "--server-side", "-f", &fewer]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "w4", "-o", "jsonpath={.spec}"]).ok(), "{\"size\":1}");
    // 54
    let unchanged = s.kubectl(&["diff", "-f", &w3]);
    assert_eq!(unchanged.code, 0, "{unchanged:?}");
    let changed = s.file("w3c.yaml", &widget("w3", 7, ""));
    let diff = s.kubectl(&["diff", "-f", &changed]);
    assert_eq!(diff.code, 1, "{diff:?}");
    assert!(diff.stdout.contains("+  size: 7"), "{}", diff.stdout);
    assert_eq!(
        s.kubectl(&["get", "wg", "w3", "-o", "jsonpath={.spec.size}"]).ok(),
        "1",
        "diff persists nothing"
    );
    // Built-in apply sends a strategic merge patch.
    let deploy = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - {{name: nginx, image: {image}}}\n"
        )
    };
    s.kubectl_stdin(&["apply", "-f", "-"], &deploy("nginx")).ok();
    assert!(
        s.kubectl_stdin(&["apply", "-f", "-"], &deploy("nginx:1.27"))
            .ok()
            .contains("deployment.apps/web configured")
    );
}

#[test]
fn delete_finalizers_gc_and_namespaces() {
    let s = ApiServer::start("memory");
    s.install_widgets();
    let w1 = s.file("w1.yaml", &widget("w1", 1, ""));
    s.kubectl(&["create", "-f", &w1]).ok();
    // 55, 56
    assert!(s.kubectl(&["delete", "wg", "w1"]).ok().contains("widget.example.com \"w1\" deleted"));
    let out = s.kubectl(&["delete", "cm", "nope"]);
    assert!(
        out.fails().contains("Error from server (NotFound): configmaps \"nope\" not found"),
        "{}",
        out.stderr
    );
    // 57, 58
    let wfin = s.file("wfin.yaml", &widget("wfin", 1, "  finalizers: [example.com/hold]\n"));
    s.kubectl(&["create", "-f", &wfin]).ok();
    let mut deleting = s.kubectl_spawn(&["delete", "wg", "wfin", "--timeout=30s"]);
    eventually(Duration::from_secs(10), "deletionTimestamp", || {
        let ts = s.kubectl(&["get", "wg", "wfin", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
        (ts.code == 0 && !ts.stdout.is_empty()).then_some(())
    });
    // Marking it as being deleted bumps its generation, as Kubernetes does: controllers that
    // only look at generation changes (controller-runtime's GenerationChangedPredicate, as
    // upstream Karmada's use) see the deletion.
    assert_eq!(
        s.kubectl(&["get", "wg", "wfin", "-o", "jsonpath={.metadata.generation}"]).ok(),
        "2"
    );
    let out = s.kubectl(&[
        "patch",
        "wg",
        "wfin",
        "--type",
        "merge",
        "-p",
        "{\"metadata\":{\"finalizers\":[\"example.com/hold\",\"x/new\"]}}",
    ]);
    assert!(
        out.fails().contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        out.stderr
    );
    s.kubectl(&[
        "patch",
        "wg",
        "wfin",
        "--type",
        "merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ])
    .ok();
    let status = eventually(Duration::from_secs(10), "background delete to finish", || {
        deleting.try_wait().ok().flatten()
    });
    assert!(status.success());
    s.kubectl(&["get", "wg", "wfin"]).fails();
    // 59: background GC of a dependent.
    let owner = s.file("owner.yaml", &widget("owner", 1, ""));
    s.kubectl(&["create", "-f", &owner]).ok();
    let uid = s.kubectl(&["get", "wg", "owner", "-o", "jsonpath={.metadata.uid}"]).ok().to_owned();
    let child = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child\n  ownerReferences:\n  - {{apiVersion: example.com/v1, kind: Widget, name: owner, uid: \"{uid}\"}}\ndata: {{a: b}}\n"
    );
    s.kubectl_stdin(&["create", "-f", "-"], &child).ok();
    s.kubectl(&["delete", "wg", "owner"]).ok();
    eventually(Duration::from_secs(30), "the dependent to be collected", || {
        (s.kubectl(&["get", "cm", "child"]).code != 0).then_some(())
    });
    // Foreground: kubectl returns only after the child is gone.
    s.kubectl(&["create", "-f", &owner]).ok();
    let uid = s.kubectl(&["get", "wg", "owner", "-o", "jsonpath={.metadata.uid}"]).ok().to_owned();
    let child =
        child.replace(&child[child.find("uid: \"").unwrap() + 6..child.find("\"}").unwrap()], &uid);
    s.kubectl_stdin(&["create", "-f", "-"], &child).ok();
    s.kubectl(&["delete", "wg", "owner", "--cascade=foreground", "--timeout=30s"]).ok();
    s.kubectl(&["get", "cm", "child"]).fails();
    // Orphan keeps the child without the reference.
    s.kubectl(&["create", "-f", &owner]).ok();
    let uid = s.kubectl(&["get", "wg", "owner", "-o", "jsonpath={.metadata.uid}"]).ok().to_owned();
    let orphan = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphan\n  ownerReferences:\n  - {{apiVersion: example.com/v1, kind: Widget, name: owner, uid: \"{uid}\"}}\ndata: {{a: b}}\n"
    );
    s.kubectl_stdin(&["create", "-f", "-"], &orphan).ok();
    s.kubectl(&["delete", "wg", "owner", "--cascade=orphan", "--timeout=30s"]).ok();
    let refs = s.kubectl(&["get", "cm", "orphan", "-o", "jsonpath={.metadata.ownerReferences}"]);
    assert_eq!(refs.ok(), "");
    // 60
    for name in ["a", "b", "c"] {
        let f = s.file(
            &format!("{name}.yaml"),
            &widget(name, 1, if name == "c" { "" } else { "  labels: {app: demo}\n" }),
        );
        s.kubectl(&["create", "-f", &f]).ok();
    }
    s.kubectl(&["delete", "wg", "-l", "app=demo"]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "-o", "name"]).ok().trim(), "widget.example.com/c");
    s.kubectl(&["delete", "wg", "--all"]).ok();
    assert_eq!(s.kubectl(&["get", "wg", "-o", "name"]).ok().trim(), "");
    // Deleting a namespace deletes its contents.
    s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
    )
    .ok();
    s.kubectl(&["create", "-f", &w1, "-n", "team-a"]).ok();
    s.kubectl(&["delete", "namespace", "team-a", "--timeout=30s"]).ok();
    s.kubectl(&["get", "namespace", "team-a"]).fails();
    assert_eq!(s.kubectl(&["get", "wg", "-A", "-o", "name"]).ok().trim(), "");
    // Creating in a missing namespace is a clear 404.
    let out = s.kubectl(&["create", "-f", &w1, "-n", "missing"]);
    assert!(out.fails().contains("namespaces \"missing\" not found"), "{}", out.stderr);
}

#[test]
fn watch_with_kubectl_and_wait() {
    let s = ApiServer::start("memory");
    s.install_widgets();
    let w1 = s.file("w1.yaml", &widget("w1", 1, ""));
    s.kubectl(&["create", "-f", &w1]).ok();
    // 61: Table watch rows with the full column set. Patch until the watcher prints the
    // change (it may take a moment to attach).
    let mut watcher = s.kubectl_spawn(&["get", "wg", "-w", "--request-timeout=30s"]);
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut updated = None;
    'outer: for size in 40..100 {
        s.kubectl(&[
            "patch",
            "wg",
            "w1",
            "--type",
            "merge",
            "-p",
            &format!("{{\"spec\":{{\"size\":{size}}}}}"),
        ])
        .ok();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            if line
                .split_whitespace()
                .nth(1)
                .is_some_and(|c| c.parse::<i64>().is_ok_and(|n| n >= 40))
            {
                updated = Some(line);
                break 'outer;
            }
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let updated = updated.expect("kubectl get -w printed an updated row");
    assert!(updated.starts_with("w1") && updated.split_whitespace().count() == 3, "{updated:?}");
    // 68
    let mut waiter = s.kubectl_spawn(&["wait", "--for=condition=Ready", "wg/w1", "--timeout=20s"]);
    std::thread::sleep(Duration::from_millis(500));
    s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
    ])
    .ok();
    let status =
        eventually(Duration::from_secs(20), "kubectl wait", || waiter.try_wait().ok().flatten());
    let mut out = String::new();
    waiter.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success() && out.contains("widget.example.com/w1 condition met"), "{out}");
    s.kubectl(&[
        "patch",
        "wg",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        "{\"status\":{\"phase\":\"Ready\"}}",
    ])
    .ok();
    let out =
        s.kubectl(&["wait", "--for=jsonpath={.status.phase}=Ready", "wg/w1", "--timeout=10s"]);
    out.ok();
    s.kubectl(&["wait", "--for=delete", "wg/gone", "--timeout=5s"]).ok();
    // 71
    let described = s.kubectl(&["describe", "wg", "w1"]);
    assert!(described.ok().contains("Events:"), "{}", described.stdout);
}

#[test]
fn restart_on_redb_keeps_objects_and_resource_versions() {
    let mut s = ApiServer::start("redb");
    s.install_widgets();
    let w1 = s.file("w1.yaml", &widget("w1", 1, ""));
    s.kubectl(&["create", "-f", &w1]).ok();
    let before = s
        .kubectl(&["get", "wg", "w1", "-o", "jsonpath={.metadata.uid} {.metadata.resourceVersion}"])
        .ok()
        .to_owned();
    s.restart();
    // The CRD is served again after the restart, and the object is unchanged.
    let after = eventually(Duration::from_secs(20), "widgets after restart", || {
        let out = s.kubectl(&[
            "get",
            "wg",
            "w1",
            "-o",
            "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
        ]);
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(after, before);
    let rv_before: u64 = before.split(' ').nth(1).unwrap().parse().unwrap();
    s.kubectl(&["patch", "wg", "w1", "--type", "merge", "-p", "{\"spec\":{\"size\":2}}"]).ok();
    let rv_after: u64 = s
        .kubectl(&["get", "wg", "w1", "-o", "jsonpath={.metadata.resourceVersion}"])
        .ok()
        .parse()
        .unwrap();
    assert!(rv_after > rv_before, "resourceVersions keep growing across restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_resumes_across_a_restart_without_missing_events() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    use kube::runtime::{WatchStreamExt, watcher};

    let mut s = ApiServer::start("redb");
    let client = s.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
    };
    api.create(&PostParams::default(), &cm("before")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream =
        watcher::watcher(api.clone(), watcher::Config::default().timeout(2)).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event {
                let _ = tx.send(o.metadata.name.unwrap_or_default());
            }
        }
    });
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("event in time")
            .expect("stream open")
    }
    assert_eq!(next(&mut rx).await, "before");
    api.create(&PostParams::default(), &cm("one")).await.unwrap();
    assert_eq!(next(&mut rx).await, "one");
    let _server = tokio::task::spawn_blocking(move || {
        s.restart();
        s
    })
    .await
    .map(|restarted| {
        let api = api.clone();
        async move {
            let mut created = false;
            for _ in 0..100 {
                if api.create(&PostParams::default(), &cm("after-restart")).await.is_ok() {
                    created = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(created, "the restarted server accepts writes");
            restarted
        }
    })
    .unwrap()
    .await;
    // The watcher reconnects from its last resourceVersion (kept across the restart by redb) and
    // sees the write made after the restart, with nothing missed in between.
    let mut names = Vec::new();
    while !names.contains(&"after-restart".to_owned()) {
        names.push(next(&mut rx).await);
    }
    assert!(
        names.iter().all(|n| ["before", "one", "after-restart"].contains(&n.as_str())),
        "{names:?}"
    );
    task.abort();
}
