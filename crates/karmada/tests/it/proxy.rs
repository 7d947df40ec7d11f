//! The cluster proxy (`clusters/<name>/proxy`) with the real kubectl: a kubeconfig pointed at
//! a member through the control plane, RBAC on `clusters/proxy` per cluster, and clear
//! statuses for what cannot be proxied.

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

#[test]
fn kubectl_reaches_members_through_the_cluster_proxy() {
    let cp = ControlPlane::with_joined(2);
    let proxy = |cluster: &str| {
        format!("{}/apis/cluster.karmada.io/v1alpha1/clusters/{cluster}/proxy", cp.api.url)
    };
    let through = |cluster: &str, args: &[&str]| {
        let server = proxy(cluster);
        let mut all = vec!["--server", server.as_str()];
        all.extend_from_slice(args);
        cp.api.kubectl(&all)
    };
    // The member's own objects, listed through the control plane.
    let nodes = eventually(Duration::from_secs(20), "member1's nodes through the proxy", || {
        let out = through("member1", &["get", "nodes", "-o", "name"]);
        (out.code == 0 && out.stdout.contains("node/")).then_some(out.stdout)
    });
    let direct = cp.member("member1", &["get", "nodes", "-o", "name"]);
    assert_eq!(nodes, direct.ok(), "the same nodes as member1 itself lists");
    // Writes pass through too, and land in that member only.
    through("member1", &["create", "configmap", "via-proxy", "--from-literal=k=v"]).ok();
    assert_eq!(
        cp.member("member1", &["get", "configmap", "via-proxy", "-o", "jsonpath={.data.k}"]).ok(),
        "v"
    );
    assert!(cp.member("member2", &["get", "configmap", "via-proxy"]).code != 0);
    assert!(
        cp.api.kubectl(&["get", "configmap", "via-proxy"]).code != 0,
        "not on the control plane"
    );
    // A watch streams through: a ConfigMap created in member1 meanwhile shows up.
    let server = proxy("member1");
    let watch = cp.api.kubectl_spawn(&[
        "--server",
        server.as_str(),
        "get",
        "configmaps",
        "--watch-only",
        "-o",
        "name",
        "--request-timeout=6s",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    cp.member("member1", &["create", "configmap", "watched"]).ok();
    let output = watch.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("configmap/watched"),
        "{:?} {:?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Pod logs, read and followed through the proxy.
    cp.member("member1", &["create", "deployment", "logger", "--image=busybox"]).ok();
    let pod = eventually(Duration::from_secs(30), "the logger pod running", || {
        let out = cp.member(
            "member1",
            &[
                "get",
                "pods",
                "-l",
                "app=logger",
                "-o",
                "jsonpath={.items[0].metadata.name} {.items[0].status.phase}",
            ],
        );
        out.stdout.strip_suffix(" Running").map(str::to_owned)
    });
    let logs = through("member1", &["logs", &pod]);
    assert!(logs.ok().starts_with("starting busybox (busybox)\n"), "{}", logs.stdout);
    assert!(
        logs.stdout.contains(&format!("running in pod default/{pod} on node")),
        "{}",
        logs.stdout
    );
    let followed =
        through("member1", &["logs", &pod, "-f", "--timestamps", "--request-timeout=12s"]);
    let beats = followed.stdout.lines().filter(|l| l.contains("heartbeat")).count();
    assert!(beats >= 2, "a followed log grows: {:?} {:?}", followed.stdout, followed.stderr);

    // exec through the proxy: the connection upgrade (WebSocket) passes through to the member.
    let exec = through("member1", &["exec", &pod, "--", "sh", "-c", "echo $HOSTNAME; exit 3"]);
    assert_eq!(exec.code, 3, "the command's exit code: {} {}", exec.stdout, exec.stderr);
    assert_eq!(exec.stdout, format!("{pod}\n"));
    assert!(exec.stderr.contains("command terminated with exit code 3"), "{}", exec.stderr);
    let server = proxy("member1");
    let echoed = cp.api.kubectl_stdin(
        &["--server", server.as_str(), "exec", "-i", &pod, "--", "cat"],
        "sent on stdin\n",
    );
    assert_eq!(echoed.ok(), "sent on stdin\n");

    // kubectl top: the member's metrics API, directly and through the proxy.
    let top = eventually(Duration::from_secs(10), "top through the proxy", || {
        let out = through("member1", &["top", "pod", &pod, "--no-headers"]);
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(
        top.split_whitespace().collect::<Vec<_>>(),
        [pod.as_str(), "1m", "4Mi"],
        "an idle container that requests nothing"
    );
    let missing = through("member1", &["top", "pod", "nope"]);
    assert!(
        missing.fails().contains(r#"pods "nope" not found"#),
        "as metrics-server says it: {}",
        missing.stderr
    );
    let nodes_top = cp.member("member1", &["top", "nodes", "--no-headers"]);
    assert!(nodes_top.ok().lines().count() >= 1, "{}", nodes_top.stdout);

    // RBAC: a user needs `clusters/proxy` on that cluster.
    let as_alice = |cluster: &str| {
        let server = proxy(cluster);
        cp.api.kubectl(&[
            "--server",
            server.as_str(),
            "--as",
            "alice",
            "get",
            "nodes",
            "-o",
            "name",
        ])
    };
    let denied = as_alice("member1");
    assert!(
        denied.fails().contains(
            r#"User "alice" cannot get resource "clusters/proxy" in API group "cluster.karmada.io""#
        ),
        "{}",
        denied.stderr
    );
    cp.api
        .kubectl(&[
            "create",
            "clusterrole",
            "member1-proxy",
            "--verb=get,list,watch",
            "--resource=clusters.cluster.karmada.io/proxy",
            "--resource-name=member1",
        ])
        .ok();
    cp.api
        .kubectl(&[
            "create",
            "clusterrolebinding",
            "alice-member1-proxy",
            "--clusterrole=member1-proxy",
            "--user=alice",
        ])
        .ok();
    // Through to member1 now, where alice is herself: the member's RBAC decides (unifiedAuth
    // let the impersonator act for her there), and she may not list nodes yet.
    let in_member = eventually(Duration::from_secs(15), "alice reaching member1", || {
        let out = as_alice("member1");
        out.stderr.contains("nodes is forbidden").then_some(out.stderr)
    });
    assert!(
        in_member.contains(
            r#"User "alice" cannot list resource "nodes" in API group "" at the cluster scope"#
        ),
        "{in_member}"
    );
    cp.member(
        "member1",
        &["create", "clusterrole", "node-reader", "--verb=get,list,watch", "--resource=nodes"],
    )
    .ok();
    cp.member(
        "member1",
        &[
            "create",
            "clusterrolebinding",
            "alice-nodes",
            "--clusterrole=node-reader",
            "--user=alice",
        ],
    )
    .ok();
    let allowed = eventually(Duration::from_secs(10), "alice allowed on member1", || {
        let out = as_alice("member1");
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(allowed, direct.stdout);
    let impersonator = cp.member(
        "member1",
        &["get", "clusterrole", "karmada-impersonator", "-o", "jsonpath={.rules[0].resourceNames}"],
    );
    assert!(impersonator.ok().contains("alice"), "{}", impersonator.stdout);
    let raw = |cluster: &str, as_user: Option<&str>| {
        let path =
            format!("/apis/cluster.karmada.io/v1alpha1/clusters/{cluster}/proxy/api/v1/nodes");
        let mut args = vec!["get", "--raw", path.as_str()];
        if let Some(user) = as_user {
            args.extend(["--as", user]);
        }
        cp.api.kubectl(&args)
    };
    let other = raw("member2", Some("alice"));
    assert!(
        other.fails().contains(r#"clusters.cluster.karmada.io "member2" is forbidden: User "alice" cannot get resource "clusters/proxy""#),
        "only member1 is granted: {}",
        other.stderr
    );
    assert!(raw("member1", Some("alice")).ok().contains(r#""kind":"NodeList""#));

    // What cannot be proxied says why.
    let unknown = raw("nowhere", None);
    assert!(
        unknown.fails().contains(r#"clusters.cluster.karmada.io "nowhere" not found"#),
        "{}",
        unknown.stderr
    );
    cp.api
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge\nspec:\n  syncMode: Pull\n",
        )
        .ok();
    let pull = raw("edge", None);
    assert!(pull.fails().contains("cluster edge is in Pull mode"), "{}", pull.stderr);
}
