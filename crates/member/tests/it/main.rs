//! Simulated members behave like clusters, seen through kube-rs only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use member::{Faults, MemberConfig, SimConfig};
use serde_json::json;

struct Cluster {
    member: member::Member,
    client: kube::Client,
    dir: tempfile::TempDir,
}

async fn start(sim: SimConfig) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let config = MemberConfig {
        name: "member1".into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("members"),
        kubeconfig: dir.path().join("members.config"),
        kubernetes_version: "v1.31.4".into(),
        sim,
    };
    let member = member::start(config).await.unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(dir.path().join("members.config")).unwrap();
    let options =
        kube::config::KubeConfigOptions { context: Some("member1".into()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    Cluster { member, client: kube::Client::try_from(config).unwrap(), dir }
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn deployment(name: &str, replicas: i32, cpu: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_run_and_capacity_limits_apply() {
    // 2 nodes × 2 cores; pods request 100m: room for 40 (a bare cluster: no system pods
    // taking their share).
    let config = SimConfig {
        nodes: 2,
        node_cpu_milli: 2000,
        system_components: false,
        ..SimConfig::default()
    };
    let c = start(config).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let listed = eventually("nodes", Duration::from_secs(5), || async {
        let l = nodes.list(&ListParams::default()).await.ok()?;
        (l.items.len() == 2).then_some(l)
    })
    .await;
    assert!(listed.items.iter().all(|n| {
        n.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }));
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    deploys.create(&PostParams::default(), &deployment("web", 3, "100m")).await.unwrap();
    eventually("3/3 ready", Duration::from_secs(5), || async {
        let d = deploys.get("web").await.ok()?;
        let s = d.status?;
        (s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.updated_replicas == Some(3)
            && s.observed_generation == Some(1))
        .then_some(())
    })
    .await;
    let running = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(running.items.len(), 3);
    assert!(running.items.iter().all(|p| p.spec.as_ref().unwrap().node_name.is_some()
        && p.status.as_ref().unwrap().phase.as_deref() == Some("Running")));
    // Scale to 50 with room for 40.
    deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 50}})))
        .await
        .unwrap();
    let (ready, pending) =
        eventually("40 ready, 10 unschedulable", Duration::from_secs(20), || async {
            let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
            let ready = list
                .items
                .iter()
                .filter(|p| {
                    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                        cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count();
            let unschedulable: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| {
                    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.type_ == "PodScheduled"
                                && c.status == "False"
                                && c.reason.as_deref() == Some("Unschedulable")
                        })
                    })
                })
                .collect();
            (ready == 40 && unschedulable.len() == 10).then(|| {
                (
                    ready,
                    unschedulable[0].status.as_ref().unwrap().conditions.as_ref().unwrap()[0]
                        .message
                        .clone()
                        .unwrap(),
                )
            })
        })
        .await;
    assert_eq!(ready, 40);
    assert!(pending.contains("Insufficient cpu"), "{pending}");
    eventually("deployment status 40/50", Duration::from_secs(10), || async {
        let d = deploys.get("web").await.ok()?.status?;
        ((d.ready_replicas, d.unavailable_replicas) == (Some(40), Some(10))).then_some(())
    })
    .await;
    // A template change rolls out a new ReplicaSet.
    deploys.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:2", "resources": {"requests": {"cpu": "100m"}}}]}}}}))).await.unwrap();
    eventually("rolled out", Duration::from_secs(10), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let images: Vec<String> = list
            .items
            .iter()
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap_or_default())
            .collect();
        (images.len() == 2 && images.iter().all(|i| i == "nginx:2")).then_some(())
    })
    .await;
    c.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_daemonsets_jobs_and_services() {
    let c = start(SimConfig {
        nodes: 3,
        job_duration: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let sts: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let ds: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    sts.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "x"}}, "template": template}})).unwrap()).await.unwrap();
    ds.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})).unwrap()).await.unwrap();
    jobs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "batch"}, "spec": {"completions": 2, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).unwrap()).await.unwrap();
    svcs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 80}]}})).unwrap()).await.unwrap();
    eventually("statefulset 2/2", Duration::from_secs(10), || async {
        (sts.get("db").await.ok()?.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    assert!(pods.get("db-0").await.is_ok() && pods.get("db-1").await.is_ok());
    eventually("daemonset on every node", Duration::from_secs(10), || async {
        let s = ds.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 3 && s.number_ready == 3).then_some(())
    })
    .await;
    eventually("job complete", Duration::from_secs(15), || async {
        let s = jobs.get("batch").await.ok()?.status?;
        (s.succeeded == Some(2)
            && s.conditions?.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
        .then_some(())
    })
    .await;
    let svc = eventually("load balancer ingress", Duration::from_secs(10), || async {
        let s = svcs.get("lb").await.ok()?;
        s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.ip.as_ref()?;
        Some(s)
    })
    .await;
    assert!(svc.spec.unwrap().cluster_ip.unwrap().starts_with("10.96."));
    c.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_round_trips() {
    let c = start(SimConfig { nodes: 2, ..SimConfig::default() }).await;
    let data_dir = c.dir.path().join("members");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let nodes: Api<Node> = Api::all(c.client.clone());
    deploys.create(&PostParams::default(), &deployment("app", 2, "10m")).await.unwrap();
    eventually("2/2", Duration::from_secs(5), || async {
        (deploys.get("app").await.ok()?.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    let readyz = |client: kube::Client| async move {
        let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
        client.request_text(request).await
    };
    // Unhealthy.
    Faults { unhealthy: true, ..Faults::default() }.save(&data_dir, "member1").unwrap();
    eventually("unhealthy", Duration::from_secs(5), || async {
        readyz(c.client.clone()).await.is_err().then_some(())
    })
    .await;
    // Failing workload pods, and a NotReady node.
    Faults {
        failing_workloads: vec!["default/app".into()],
        not_ready_nodes: vec!["member1-control-plane".into()],
        ..Faults::default()
    }
    .save(&data_dir, "member1")
    .unwrap();
    eventually("healthy again, pods failing", Duration::from_secs(10), || async {
        readyz(c.client.clone()).await.ok()?;
        let s = deploys.get("app").await.ok()?.status?;
        (s.ready_replicas.unwrap_or(0) == 0).then_some(())
    })
    .await;
    eventually("member1-control-plane NotReady", Duration::from_secs(5), || async {
        let n = nodes.get("member1-control-plane").await.ok()?;
        n.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
            .then_some(())
    })
    .await;
    // Unreachable: requests stop being answered.
    Faults { unreachable: true, ..Faults::default() }.save(&data_dir, "member1").unwrap();
    eventually("an unreachable member does not answer", Duration::from_secs(10), || async {
        let probe = tokio::time::timeout(Duration::from_secs(1), readyz(c.client.clone())).await;
        (probe.is_err() || probe.is_ok_and(|r| r.is_err())).then_some(())
    })
    .await;
    // Everything undone.
    Faults::default().save(&data_dir, "member1").unwrap();
    eventually("recovered", Duration::from_secs(15), || async {
        readyz(c.client.clone()).await.ok()?;
        let s = deploys.get("app").await.ok()?.status?;
        let n = nodes.get("member1-control-plane").await.ok()?;
        let node_ready =
            n.status?.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        (s.ready_replicas == Some(2) && node_ready).then_some(())
    })
    .await;
    c.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_cluster_id() {
    let c = start(SimConfig::default()).await;
    let version = c.client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str(), version.git_version.as_str()),
        ("1", "31", "v1.31.4")
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    let uid = namespaces.get("kube-system").await.unwrap().metadata.uid.unwrap();
    assert_eq!(uid.len(), 36, "the kube-system namespace UID identifies the cluster");
    c.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_keeps_its_cluster_id() {
    let c = start(SimConfig::default()).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    let first = namespaces.get("kube-system").await.unwrap().metadata.uid.unwrap();
    let dir = c.dir;
    c.member.shutdown().await;
    let config = MemberConfig {
        name: "member1".into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("members"),
        kubeconfig: dir.path().join("members.config"),
        kubernetes_version: "v1.31.4".into(),
        sim: SimConfig::default(),
    };
    let again = member::start(config).await.unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(dir.path().join("members.config")).unwrap();
    let options =
        kube::config::KubeConfigOptions { context: Some("member1".into()), ..Default::default() };
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap(),
    )
    .unwrap();
    let second = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    assert_eq!(first, second);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_member_runs_what_a_kind_cluster_runs() {
    let c = start(SimConfig { nodes: 2, ..SimConfig::default() }).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let names = eventually("nodes", Duration::from_secs(5), || async {
        let l = nodes.list(&ListParams::default()).await.ok()?;
        let mut names: Vec<String> =
            l.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
        names.sort();
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(names, ["member1-control-plane", "member1-worker"]);
    let system: Api<Pod> = Api::namespaced(c.client.clone(), "kube-system");
    let running = eventually("system pods running", Duration::from_secs(10), || async {
        let l = system.list(&ListParams::default()).await.ok()?;
        let running: Vec<String> = l
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        // 4 static pods, 2 CoreDNS, a kube-proxy per node.
        (running.len() == 8).then_some(running)
    })
    .await;
    for name in ["etcd-member1-control-plane", "kube-apiserver-member1-control-plane"] {
        assert!(running.iter().any(|p| p == name), "{name} in {running:?}");
    }
    assert_eq!(running.iter().filter(|p| p.starts_with("coredns-")).count(), 2, "{running:?}");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "kube-system");
    assert!(deploys.get("coredns").await.is_ok());
    let services: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let kubernetes = services.get("kubernetes").await.unwrap();
    assert_eq!(kubernetes.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizontal_pod_autoscalers_scale_on_load() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let c = start(SimConfig { system_components: false, ..SimConfig::default() }).await;
    let data_dir = c.dir.path().join("members");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), "default");
    deploys.create(&PostParams::default(), &deployment("web", 2, "100m")).await.unwrap();
    let ready = |n: i32| {
        let deploys = deploys.clone();
        async move {
            let d = deploys.get("web").await.ok()?;
            (d.spec?.replicas == Some(n) && d.status?.ready_replicas == Some(n)).then_some(())
        }
    };
    eventually("2/2", Duration::from_secs(5), || ready(2)).await;
    let metrics_show = |cpu: &'static str| {
        let client = c.client.clone();
        async move {
            let request = http::Request::get(
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
            )
            .body(Vec::new())
            .unwrap();
            let text = client.request_text(request).await.ok()?;
            text.contains(&format!("\"{cpu}\"")).then_some(())
        }
    };
    // As metrics-server lists them: read only (no watch for informers to try).
    let discovery = http::Request::get("/apis/metrics.k8s.io/v1beta1").body(Vec::new()).unwrap();
    let discovery: serde_json::Value =
        serde_json::from_str(&c.client.request_text(discovery).await.unwrap()).unwrap();
    for resource in discovery["resources"].as_array().unwrap() {
        assert_eq!(resource["verbs"], serde_json::json!(["get", "list"]), "{resource}");
    }
    // Idle pods (1m of 100m) would leave the HPA at its minimum: load them to what they
    // request, 100 % against a 50 % target → twice the pods.
    Faults { load: Some(1.0), ..Faults::default() }.save(&data_dir, "member1").unwrap();
    eventually("the metrics API sees the load", Duration::from_secs(5), || {
        metrics_show("100000000n")
    })
    .await;
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}
    }))
    .unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();
    eventually("scaled to 4", Duration::from_secs(10), || ready(4)).await;
    let status = eventually("status", Duration::from_secs(5), || async {
        let s = hpas.get("web").await.ok()?.status?;
        (s.desired_replicas == 4).then_some(s)
    })
    .await;
    let utilization =
        status.current_metrics.as_ref().unwrap()[0].resource.as_ref().unwrap().current.clone();
    assert_eq!(utilization.average_utilization, Some(100));
    assert!(status.last_scale_time.is_some());
    let reason = |t: &str| {
        status.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap().reason.clone()
    };
    assert_eq!(reason("AbleToScale").as_deref(), Some("SucceededRescale"));
    assert_eq!(reason("ScalingActive").as_deref(), Some("ValidMetricFound"));
    // A raised minimum applies at once (the HPA changed), whatever the metrics say.
    hpas.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"minReplicas": 5}})))
        .await
        .unwrap();
    eventually("scaled to the minimum 5", Duration::from_secs(10), || ready(5)).await;
    // The load drops to 20 %: 5 pods at 40 % of the target → 2.
    Faults { load: Some(0.2), ..Faults::default() }.save(&data_dir, "member1").unwrap();
    eventually("the metrics API sees the lower load", Duration::from_secs(5), || {
        metrics_show("20000000n")
    })
    .await;
    hpas.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"minReplicas": 1}})))
        .await
        .unwrap();
    eventually("scaled down to 2", Duration::from_secs(10), || ready(2)).await;
    // A missing target is said in the status.
    hpas.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"scaleTargetRef": {"name": "nothing"}}})),
    )
    .await
    .unwrap();
    eventually("FailedGetScale", Duration::from_secs(5), || async {
        let s = hpas.get("web").await.ok()?.status?;
        s.conditions?
            .iter()
            .any(|c| c.reason.as_deref() == Some("FailedGetScale") && c.status == "False")
            .then_some(())
    })
    .await;
    c.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_started_together_give_pods_ips_from_their_own_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let configs = ["member1", "member2"]
        .map(|name| MemberConfig {
            name: name.into(),
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("members"),
            kubeconfig: dir.path().join("members.config"),
            kubernetes_version: "v1.31.4".into(),
            sim: SimConfig { system_components: false, ..SimConfig::default() },
        })
        .to_vec();
    let members = member::start_many(configs).await.unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(dir.path().join("members.config")).unwrap();
    for (member, subnet) in [("member1", "10.10."), ("member2", "10.11.")] {
        let options =
            kube::config::KubeConfigOptions { context: Some(member.into()), ..Default::default() };
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
        deploys.create(&PostParams::default(), &deployment("web", 2, "10m")).await.unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let ips = eventually("2 pods with IPs", Duration::from_secs(5), || async {
            let listed = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
            let ips: Vec<String> =
                listed.items.iter().filter_map(|p| p.status.as_ref()?.pod_ip.clone()).collect();
            (ips.len() == 2).then_some(ips)
        })
        .await;
        assert!(ips.iter().all(|ip| ip.starts_with(subnet)), "{member}: {ips:?}");
    }
    futures_util::future::join_all(members.into_iter().map(member::Member::shutdown)).await;
}
