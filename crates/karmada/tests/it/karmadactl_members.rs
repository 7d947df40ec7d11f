//! Our karmadactl's multi-cluster verbs against a real control plane and members: get across
//! scopes with CLUSTER and ADOPTION, describe, logs, exec and top in a member (through the
//! cluster proxy), label/patch/delete, apply --all-clusters, and promote of a Deployment made
//! directly in a member (taken over without restarting its pods).

use std::time::Duration;

use crate::harness::eventually;
use crate::plane::ControlPlane;

#[test]
fn karmadactl_works_across_the_control_plane_and_its_members() {
    let cp = ControlPlane::with_joined(2);
    let ctl = |args: &[&str]| cp.karmadactl(args);
    cp.member("member1", &["create", "deployment", "web", "--image=nginx", "--replicas=2"]).ok();
    let pod = eventually(Duration::from_secs(20), "web's pods running in member1", || {
        let out = cp.member(
            "member1",
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].metadata.name} {.items[0].status.phase}",
            ],
        );
        out.stdout.strip_suffix(" Running").map(str::to_owned)
    });

    // get: any kind, in members, with the cluster and whether Karmada manages it.
    let listed = ctl(&["get", "deployments", "--operation-scope", "members", "-C", "member1"]);
    let header: Vec<&str> = listed.ok().lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CLUSTER", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "ADOPTION"]);
    let row: Vec<&str> = listed.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[1], row[6]), ("web", "member1", "N"), "{}", listed.stdout);
    let system = ctl(&[
        "get",
        "deploy",
        "coredns",
        "-n",
        "kube-system",
        "--operation-scope",
        "members",
        "-o",
        "name",
    ]);
    assert_eq!(system.ok(), "deployment.apps/coredns\ndeployment.apps/coredns\n", "one per member");
    let nodes = ctl(&["get", "nodes", "--operation-scope", "all", "--no-headers"]);
    assert!(nodes.ok().contains("member2-control-plane   member2"), "{}", nodes.stdout);
    let unknown = ctl(&["get", "nonsense"]);
    assert!(
        unknown.fails().contains(r#"the server doesn't have a resource type "nonsense""#),
        "{}",
        unknown.stderr
    );

    // A member's pod: logs, exec (the command's exit code is karmadactl's), top, describe.
    let member = ["--operation-scope", "members", "--cluster", "member1"];
    let logs = ctl(&[&["logs", pod.as_str()][..], &member[..]].concat());
    assert!(logs.ok().starts_with("starting nginx (nginx)\n"), "{}", logs.stdout);
    let exec = ctl(&[
        &["exec", pod.as_str()][..],
        &member[..],
        &["--", "sh", "-c", "echo $HOSTNAME; exit 4"][..],
    ]
    .concat());
    assert_eq!((exec.code, exec.stdout.trim()), (4, pod.as_str()), "{}", exec.stderr);
    assert!(exec.stderr.contains("command terminated with exit code 4"), "{}", exec.stderr);
    let top = eventually(Duration::from_secs(10), "top", || {
        let out = ctl(&[&["top", "pod", pod.as_str(), "--no-headers"][..], &member[..]].concat());
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(top.split_whitespace().collect::<Vec<_>>(), [pod.as_str(), "member1", "1m", "4Mi"]);
    let described = ctl(&[&["describe", "deployment", "web"][..], &member[..]].concat());
    assert!(
        described.ok().starts_with("Name:         web\nNamespace:    default\n"),
        "{}",
        described.stdout
    );
    assert!(described.stdout.contains("  Replicas:  2\n"), "{}", described.stdout);

    // promote: the member's Deployment becomes a template with a policy naming member1, and
    // Karmada takes the member's copy over without replacing its pods.
    let promoted = ctl(&["promote", "deployment", "web", "-C", "member1"]);
    assert!(
        promoted
            .ok()
            .contains("PropagationPolicy (default/web-6d7f8d5f5b) is created successfully"),
        "{}",
        promoted.stdout
    );
    eventually(Duration::from_secs(30), "adopted in member1", || {
        let out = ctl(&[
            "get",
            "deploy",
            "web",
            "--operation-scope",
            "members",
            "-C",
            "member1",
            "--no-headers",
        ]);
        out.stdout.trim_end().ends_with(" Y").then_some(())
    });
    let pods_after = cp.member("member1", &["get", "pods", "-l", "app=web", "-o", "name"]);
    assert!(pods_after.ok().contains(&pod), "the same pods run on: {}", pods_after.stdout);
    let generation =
        cp.member("member1", &["get", "deploy", "web", "-o", "jsonpath={.metadata.generation}"]);
    assert_eq!(generation.ok(), "1", "the spec did not change");
    let again = ctl(&["promote", "deployment", "web", "-C", "member1"]);
    assert!(
        again.stderr.contains("already exists in the Karmada control plane"),
        "{}",
        again.stderr
    );

    // Metadata and patches on the control plane; apply --all-clusters propagates.
    ctl(&["label", "deployment", "web", "team=a"]).ok();
    let clash = ctl(&["label", "deployment/web", "team=b"]);
    assert!(clash.fails().contains("'team' already has a value (a), and --overwrite is false"));
    ctl(&["patch", "deployment", "web", "-p", r#"{"spec":{"replicas":3}}"#]).ok();
    eventually(Duration::from_secs(30), "3 replicas in member1", || {
        let out =
            cp.member("member1", &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
        (out.stdout == "3").then_some(())
    });
    let manifest = cp.members_dir.join("everywhere.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: everywhere}\ndata: {a: b}\n",
    )
    .unwrap();
    let applied = ctl(&["apply", "-f", manifest.to_str().unwrap(), "--all-clusters"]);
    assert!(applied.ok().contains("configmap/everywhere created"), "{}", applied.stdout);
    eventually(Duration::from_secs(30), "everywhere in every member", || {
        let out =
            ctl(&["get", "configmap", "everywhere", "--operation-scope", "members", "-o", "name"]);
        (out.stdout.lines().count() == 2).then_some(())
    });
    ctl(&["delete", "configmap", "everywhere"]).ok();
    let explained = ctl(&["explain", "deployment.spec.replicas"]);
    assert!(explained.ok().contains("FIELD: replicas <integer>"), "{}", explained.stdout);
    let token = ctl(&["token", "create"]);
    let token = token.ok().trim().to_owned();
    assert!(ctl(&["token", "list"]).ok().contains(&token));
    ctl(&["token", "delete", &token]).ok();
    assert!(!ctl(&["token", "list"]).ok().contains(&token));
    let version = ctl(&["version"]);
    assert!(version.ok().contains("Server Version: v1."), "{}", version.stdout);
}
