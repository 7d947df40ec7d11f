//! karmada-search with the real kubectl: a ResourceRegistry caches member kinds; the cache
//! lists them across clusters with the cluster each came from and follows creates and
//! deletes; `proxying/karmada/proxy` is an API kubectl can use (get, chunked list, watch,
//! writes to the holding cluster), authorized on the control plane.

use std::time::Duration;

use serde_json::Value;

use crate::harness::eventually;
use crate::plane::ControlPlane;

const CACHE: &str = "/apis/search.karmada.io/v1alpha1/search/cache";

/// (name, cluster) of every object a search-cache list returned.
fn cached(cp: &ControlPlane, path: &str) -> Vec<(String, String)> {
    let out = cp.api.kubectl(&["get", "--raw", &format!("{CACHE}{path}")]);
    let list: Value = serde_json::from_str(out.ok()).unwrap();
    let mut items: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let cluster = &o["metadata"]["annotations"]["resource.karmada.io/cached-from-cluster"];
            (
                o["metadata"]["name"].as_str().unwrap().to_owned(),
                cluster.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    items
}

fn named(items: &[(String, String)], prefix: &str) -> Vec<(String, String)> {
    items.iter().filter(|(n, _)| n.starts_with(prefix)).cloned().collect()
}

fn pair(name: &str, cluster: &str) -> (String, String) {
    (name.to_owned(), cluster.to_owned())
}

#[test]
fn a_resource_registry_caches_member_deployments_and_the_proxy_serves_them() {
    let cp = ControlPlane::with_joined(2);
    cp.member("member1", &["create", "deployment", "web-a", "--image=nginx"]).ok();
    cp.member("member2", &["create", "deployment", "web-b", "--image=nginx"]).ok();
    // Nothing is searchable before a registry asks for it.
    assert!(named(&cached(&cp, "/apis/apps/v1/deployments"), "web-").is_empty());
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: search.karmada.io/v1alpha1
kind: ResourceRegistry
metadata: {name: deployments}
spec:
  targetCluster: {clusterNames: [member1, member2]}
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
"#,
        )
        .ok();
    let both = eventually(Duration::from_secs(20), "both members' deployments", || {
        let items = named(&cached(&cp, "/apis/apps/v1/deployments"), "web-");
        (items.len() == 2).then_some(items)
    });
    assert_eq!(both, [pair("web-a", "member1"), pair("web-b", "member2")]);
    // The registry says what it caches.
    let ready = eventually(Duration::from_secs(10), "the registry Ready", || {
        let out = cp.api.kubectl(&[
            "get",
            "resourceregistry",
            "deployments",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}: {.status.conditions[0].message}",
        ]);
        out.stdout.starts_with("CacheSynced").then_some(out.stdout)
    });
    assert_eq!(ready, "CacheSynced: caching Deployment from member1, member2");
    // The members' own system workloads too, once per cluster.
    let dns = cached(&cp, "/apis/apps/v1/namespaces/kube-system/deployments");
    assert_eq!(dns, [pair("coredns", "member1"), pair("coredns", "member2")]);
    // Creates and deletes in members are followed.
    cp.member("member1", &["create", "deployment", "web-c", "--image=nginx"]).ok();
    cp.member("member1", &["delete", "deployment", "web-a"]).ok();
    eventually(Duration::from_secs(10), "web-c in, web-a out", || {
        let items = named(&cached(&cp, "/apis/apps/v1/deployments"), "web-");
        (items == [pair("web-b", "member2"), pair("web-c", "member1")]).then_some(())
    });

    // The proxy: an API server for kubectl.
    let server = format!("{}/apis/search.karmada.io/v1alpha1/proxying/karmada/proxy", cp.api.url);
    let proxied = |args: &[&str]| {
        let mut all = vec!["--server", server.as_str()];
        all.extend_from_slice(args);
        cp.api.kubectl(&all)
    };
    let listed = proxied(&["get", "deployments", "-o", "name"]);
    // In cluster order, as upstream lists them.
    assert_eq!(listed.ok().trim(), "deployment.apps/web-c\ndeployment.apps/web-b");
    let chunked = proxied(&["get", "deployments", "-A", "-o", "name", "--chunk-size=1"]);
    assert_eq!(
        chunked.ok().matches("deployment.apps/").count(),
        4,
        "coredns ×2, web-b, web-c: {}",
        chunked.stdout
    );
    let annotations =
        proxied(&["get", "deployment", "web-b", "-o", "jsonpath={.metadata.annotations}"]);
    assert!(annotations.ok().contains(r#""resource.karmada.io/cached-from-cluster":"member2""#));
    // A name held by two clusters is ambiguous.
    let ambiguous = proxied(&["get", "deployment", "coredns", "-n", "kube-system"]);
    assert!(
        ambiguous.fails().contains("ambiguous objects in clusters [member1, member2]"),
        "{}",
        ambiguous.stderr
    );
    // Writes go to the cluster holding the object, without what the cache added.
    proxied(&["annotate", "deployment", "web-b", "touched=yes"]).ok();
    let in_member2 = cp.member(
        "member2",
        &["get", "deployment", "web-b", "-o", "jsonpath={.metadata.annotations}"],
    );
    assert!(
        in_member2.ok().contains("touched") && !in_member2.stdout.contains("cached-from-cluster")
    );
    let fetched = proxied(&["get", "deployment", "web-b", "-o", "json"]);
    let mut object: Value = serde_json::from_str(fetched.ok()).unwrap();
    object["metadata"]["labels"]["edited"] = "by-replace".into();
    cp.api
        .kubectl_stdin(&["--server", server.as_str(), "replace", "-f", "-"], &object.to_string())
        .ok();
    assert_eq!(
        cp.member(
            "member2",
            &["get", "deployment", "web-b", "-o", "jsonpath={.metadata.labels.edited}"]
        )
        .ok(),
        "by-replace",
        "an update with the proxy's version and annotation lands as the member's"
    );
    // A watch follows the members.
    let watch = cp.api.kubectl_spawn(&[
        "--server",
        server.as_str(),
        "get",
        "deployments",
        "--watch-only",
        "-o",
        "name",
        "--request-timeout=6s",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    cp.member("member2", &["create", "deployment", "watched", "--image=nginx"]).ok();
    let output = watch.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("deployment.apps/watched"),
        "{:?} {:?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // What is not cached is the control plane's own, read as the caller.
    cp.api.kubectl(&["create", "configmap", "on-the-control-plane"]).ok();
    let configmaps = proxied(&["get", "configmaps", "-o", "name"]);
    assert!(configmaps.ok().contains("configmap/on-the-control-plane"), "{}", configmaps.stdout);
    let denied = proxied(&["get", "deployments", "--as", "mallory"]);
    assert!(
        denied
            .fails()
            .contains(r#"cannot get resource "proxying/proxy" in API group "search.karmada.io""#),
        "{}",
        denied.stderr
    );

    // Without the registry nothing is cached, and the proxy serves the control plane's own.
    cp.api.kubectl(&["delete", "resourceregistry", "deployments"]).ok();
    eventually(Duration::from_secs(10), "cache emptied", || {
        named(&cached(&cp, "/apis/apps/v1/deployments"), "web-").is_empty().then_some(())
    });
    assert_eq!(proxied(&["get", "deployments", "-o", "name"]).ok(), "");
}

#[test]
fn registries_follow_cluster_labels_and_namespaces() {
    let cp = ControlPlane::with_joined(2);
    for (cluster, namespace) in
        [("member1", "team-a"), ("member1", "team-b"), ("member2", "team-a")]
    {
        cp.member(cluster, &["create", "namespace", namespace]);
        cp.member(
            cluster,
            &["create", "secret", "generic", &format!("s-{cluster}"), "-n", namespace],
        )
        .ok();
    }
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"
apiVersion: search.karmada.io/v1alpha1
kind: ResourceRegistry
metadata: {name: team-a-secrets}
spec:
  targetCluster: {labelSelector: {matchExpressions: [{key: search, operator: Exists}]}}
  resourceSelectors: [{apiVersion: v1, kind: Secret, namespace: team-a}]
"#,
        )
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    assert!(cached(&cp, "/api/v1/secrets").is_empty(), "no cluster is labelled yet");
    let reason = cp.api.kubectl(&[
        "get",
        "resourceregistry",
        "team-a-secrets",
        "-o",
        "jsonpath={.status.conditions[0].reason}",
    ]);
    assert_eq!(reason.ok(), "NoMatchingClusters");
    cp.api.kubectl(&["label", "cluster", "member1", "search=yes"]).ok();
    let one = eventually(Duration::from_secs(10), "member1's team-a secret", || {
        let items = named(&cached(&cp, "/api/v1/secrets"), "s-");
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(one, [pair("s-member1", "member1")], "team-b is not selected");
    cp.api.kubectl(&["label", "cluster", "member2", "search=yes"]).ok();
    eventually(Duration::from_secs(10), "member2's too", || {
        (named(&cached(&cp, "/api/v1/namespaces/team-a/secrets"), "s-").len() == 2).then_some(())
    });
    // A kind no member serves: the registry says so.
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: search.karmada.io/v1alpha1\nkind: ResourceRegistry\nmetadata: {name: widgets}\nspec:\n  targetCluster: {clusterNames: [member1]}\n  resourceSelectors: [{apiVersion: example.com/v1, kind: Widget}]\n",
        )
        .ok();
    let failed = eventually(Duration::from_secs(15), "widgets failing", || {
        let out = cp.api.kubectl(&[
            "get",
            "resourceregistry",
            "widgets",
            "-o",
            "jsonpath={.status.conditions[0].reason}: {.status.conditions[0].message}",
        ]);
        out.stdout.starts_with("CacheFailed").then_some(out.stdout)
    });
    assert!(failed.contains("Widget of member1: member1 does not serve Widget"), "{failed}");
    cp.api.kubectl(&["label", "cluster", "member1", "search-"]).ok();
    eventually(Duration::from_secs(10), "member1 dropped", || {
        let items = named(&cached(&cp, "/api/v1/secrets"), "s-");
        (items == [pair("s-member2", "member2")]).then_some(())
    });
}
