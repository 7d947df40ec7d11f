//! kube-runtime against the server: watcher and reflector, recovery after compaction, and a
//! Controller using the finalizer helper (checks 76, 77, 79, 80).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};

use crate::start;

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}
    }))
    .unwrap()
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_every_change_in_order() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    api.create(&PostParams::default(), &cm("before", "1")).await.unwrap();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    // 76: Init, InitApply for existing objects, InitDone.
    let mut initial = Vec::new();
    loop {
        match within("initial events", events.next()).await.unwrap().unwrap() {
            Event::Init => {}
            Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["before"]);
    api.create(&PostParams::default(), &cm("a", "1")).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(serde_json::json!({"data": {"k": "2"}})))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match within("live events", events.next()).await.unwrap().unwrap() {
            Event::Apply(o) => {
                seen.push(format!("apply {} {}", o.metadata.name.unwrap(), o.data.unwrap()["k"]))
            }
            Event::Delete(o) => seen.push(format!("delete {}", o.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["apply a 1", "apply a 2", "delete a"]);
    // 79
    let params = PatchParams::apply("probe").force();
    let applied = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "v"}});
    api.patch("ssa", &params, &Patch::Apply(&applied)).await.unwrap();
    api.patch("ssa", &params, &Patch::Apply(&applied)).await.unwrap();
    assert!(api.get_opt("nope").await.unwrap().is_none());
    let mut stale = api.get("ssa").await.unwrap();
    stale.metadata.resource_version = Some("1".into());
    match api.replace("ssa", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_recovers_after_compaction() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let (reader, writer) = reflector::store();
    // A short server-side timeout makes the watcher re-watch from its last resourceVersion.
    let config = watcher::Config::default().timeout(1);
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&inits);
    let stream = watcher::watcher(api.clone(), config)
        .default_backoff()
        .map(move |e| {
            if matches!(e, Ok(Event::InitDone)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            e
        })
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    within("first sync", reader.wait_until_ready()).await.unwrap();
    api.create(&PostParams::default(), &cm("one", "1")).await.unwrap();
    // Writes elsewhere move the store past the watcher's last resourceVersion; compacting
    // then makes its next re-watch too old: it gets an in-stream 410, relists, and still
    // ends up with every object.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(h.client.clone(), "default");
    for i in 0..5 {
        let secret = serde_json::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("s{i}")}})).unwrap();
        secrets.create(&PostParams::default(), &secret).await.unwrap();
    }
    let current = h.store.current_revision().await.unwrap();
    h.store.compact(current).await.unwrap();
    // Let the 1-second watch end so that the watcher re-watches from its old version.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    api.create(&PostParams::default(), &cm("after", "1")).await.unwrap();
    within("the reflector to see everything", async {
        loop {
            if reader.state().len() == 2
                && reader.get(&reflector::ObjectRef::new("after").within("default")).is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    within("a relist", async {
        while inits.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_with_finalizer_cleans_up() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let cleaned = Arc::new(AtomicUsize::new(0));
    let context = Arc::new((api.clone(), Arc::clone(&cleaned)));
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            |object: Arc<ConfigMap>, ctx: Arc<(Api<ConfigMap>, Arc<AtomicUsize>)>| async move {
                let (api, cleaned) = (&ctx.0, Arc::clone(&ctx.1));
                finalizer(api, "example.com/cleanup", object, |event| async move {
                    if let Finalizer::Cleanup(_) = event {
                        cleaned.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, std::convert::Infallible>(Action::await_change())
                })
                .await
            },
            |_, _error, _| Action::requeue(Duration::from_millis(200)),
            context,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    api.create(&PostParams::default(), &cm("guarded", "1")).await.unwrap();
    within("the finalizer to be added", async {
        loop {
            let o = api.get("guarded").await.unwrap();
            if o.metadata.finalizers.unwrap_or_default() == ["example.com/cleanup"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    api.delete("guarded", &DeleteParams::default()).await.unwrap();
    within("cleanup and removal", async {
        loop {
            if api.get_opt("guarded").await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    task.abort();
}

/// Events are one storage under two groups, as in Kubernetes: what kube-runtime's Recorder
/// writes as `events.k8s.io/v1` is the `v1` Event `kubectl describe` and client-go list by
/// `involvedObject.name`, and a `v1` Event reads back (and is watched) as `events.k8s.io/v1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_one_storage_under_both_groups() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as EventsV1;
    use kube::api::ListParams;
    use kube::runtime::events::{Event as Note, EventType, Recorder, Reporter};

    let h = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let web = cms.create(&PostParams::default(), &cm("web", "1")).await.unwrap();
    let recorder = Recorder::new(
        h.client.clone(),
        Reporter { controller: "probe-controller".into(), instance: Some("probe-1".into()) },
    );
    let note = Note {
        type_: EventType::Normal,
        reason: "SyncWorkSucceed".into(),
        note: Some("Sync work of resourceBinding(default/web) successful.".into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&note, &kube::Resource::object_ref(&web, &())).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(h.client.clone(), "default");
    let listed = core.list(&ListParams::default().fields("involvedObject.name=web")).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{listed:?}");
    let event = &listed.items[0];
    assert_eq!(event.reason.as_deref(), Some("SyncWorkSucceed"));
    assert_eq!(
        event.message.as_deref(),
        Some("Sync work of resourceBinding(default/web) successful.")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(event.reporting_component.as_deref(), Some("probe-controller"));
    assert!(
        core.list(&ListParams::default().fields("involvedObject.name=other"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Written as v1, read, selected and watched as events.k8s.io/v1.
    let v1: Api<EventsV1> = Api::namespaced(h.client.clone(), "default");
    let mut watch =
        watcher::watcher(v1.clone(), watcher::Config::default().fields("regarding.name=db"))
            .boxed();
    loop {
        if let Event::InitDone = within("initial events", watch.next()).await.unwrap().unwrap() {
            break;
        }
    }
    let written: CoreEvent = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "db.1"},
        "involvedObject": {"kind": "ConfigMap", "name": "db", "namespace": "default"},
        "reason": "ApplyPolicySucceed", "message": "Apply policy(default/p) succeed", "type": "Normal",
        "source": {"component": "resource-detector"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    core.create(&PostParams::default(), &written).await.unwrap();
    let seen = loop {
        if let Event::Apply(e) = within("watched event", watch.next()).await.unwrap().unwrap() {
            break e;
        }
    };
    assert_eq!(seen.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("db"));
    assert_eq!(seen.note.as_deref(), Some("Apply policy(default/p) succeed"));
    assert_eq!(seen.deprecated_count, Some(1));
    assert_eq!(
        seen.deprecated_source.and_then(|s| s.component).as_deref(),
        Some("resource-detector")
    );
    let all = v1.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
}

/// Events expire a TTL after they were last seen (Kubernetes' `--event-ttl`), so a busy
/// control plane does not keep every Event it ever recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_ttl() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use kube::api::ListParams;

    let h = crate::start_with(|c| c.event_ttl = Duration::from_secs(5)).await;
    let core: Api<CoreEvent> = Api::namespaced(h.client.clone(), "default");
    let now = apimachinery::time::format_rfc3339(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64,
    );
    let event = |name: &str, last: &str| -> CoreEvent {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "ConfigMap", "name": "web", "namespace": "default"},
            "reason": "SyncWorkSucceed", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": last
        }))
        .unwrap()
    };
    core.create(&PostParams::default(), &event("old", "2026-01-01T00:00:00Z")).await.unwrap();
    core.create(&PostParams::default(), &event("recent", &now)).await.unwrap();
    within("the old Event expires", async {
        loop {
            let names: Vec<String> = core
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|e| e.metadata.name)
                .collect();
            if names == ["recent"] {
                break;
            }
            assert!(names.contains(&"recent".to_owned()), "{names:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}
