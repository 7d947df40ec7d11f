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
