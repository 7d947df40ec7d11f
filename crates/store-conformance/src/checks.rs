//! The conformance checks. Each takes a fresh store.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use store::{
    Event, KeyValue, ListOptions, MAX_VALUE_BYTES, Revision, Store, StoreError, WatchStream,
};

type S = Arc<dyn Store>;

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn rev(r: Revision, plus: u64) -> Revision {
    Revision(r.0 + plus)
}

/// How long a watch may take to deliver an event that is already committed.
const WATCH_DEADLINE: Duration = Duration::from_secs(10);

async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(WATCH_DEADLINE, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no watch event within {WATCH_DEADLINE:?}"),
    }
}

async fn list_all(store: &S, prefix: &str, revision: Option<Revision>) -> Vec<KeyValue> {
    let options = ListOptions { revision, ..Default::default() };
    let page = store.list(prefix.as_bytes(), options).await.unwrap();
    assert!(page.next_after.is_none(), "an unlimited list has no next page");
    page.items
}

fn values(items: &[KeyValue]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect()
}

pub async fn crud(store: &S) {
    let r0 = store.current_revision().await.unwrap();
    let k = b("/crud/a");

    let kv = store.create(k.clone(), b("v1")).await.unwrap();
    assert_eq!(kv.mod_revision, rev(r0, 1));
    assert_eq!(kv.create_revision, rev(r0, 1));
    assert_eq!(kv.value, b("v1"));

    let err = store.create(k.clone(), b("other")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");

    assert_eq!(store.get(&k, None).await.unwrap(), Some(kv.clone()));
    assert_eq!(store.get(b"/crud/missing", None).await.unwrap(), None);

    let kv2 = store.update(k.clone(), b("v2"), kv.mod_revision).await.unwrap();
    assert_eq!(kv2.mod_revision, rev(r0, 2));
    assert_eq!(kv2.create_revision, rev(r0, 1), "update keeps the create revision");

    let err = store.update(k.clone(), b("v3"), kv.mod_revision).await.unwrap_err();
    match err {
        StoreError::Conflict { expected, actual, .. } => {
            assert_eq!(expected, kv.mod_revision);
            assert_eq!(actual, kv2.mod_revision);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let err = store.update(b("/crud/missing"), b("x"), kv.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    let err = store.delete(&k, Some(kv.mod_revision)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let deleted = store.delete(&k, Some(kv2.mod_revision)).await.unwrap();
    assert_eq!(deleted.revision, rev(r0, 3));
    assert_eq!(deleted.prev, kv2, "delete returns the deleted value");
    let err = store.delete(&k, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get(&k, None).await.unwrap(), None);

    let kv4 = store.create(k.clone(), b("v4")).await.unwrap();
    assert_eq!(kv4.create_revision, rev(r0, 4), "a re-created key starts a new incarnation");
    let deleted = store.delete(&k, None).await.unwrap();
    assert_eq!(deleted.prev, kv4, "an unconditional delete returns the value");
    assert_eq!(store.current_revision().await.unwrap(), rev(r0, 5));
}

pub async fn revisions_are_consecutive(store: &S) {
    let r0 = store.current_revision().await.unwrap();
    let mut expected = r0;
    for i in 0..50 {
        let key = b(format!("/seq/{}", i % 7));
        expected = expected.next();
        let got = match store.get(&key, None).await.unwrap() {
            None => store.create(key, b(format!("{i}"))).await.unwrap().mod_revision,
            Some(kv) if i % 3 == 0 => {
                store.delete(&key, Some(kv.mod_revision)).await.unwrap().revision
            }
            Some(kv) => {
                store.update(key, b(format!("{i}")), kv.mod_revision).await.unwrap().mod_revision
            }
        };
        assert_eq!(got, expected, "write {i}");
        assert_eq!(store.current_revision().await.unwrap(), expected);
    }
}

pub async fn failed_writes_take_no_revision(store: &S) {
    let kv = store.create(b("/fail/a"), b("1")).await.unwrap();
    let r = store.current_revision().await.unwrap();
    assert!(store.create(b("/fail/a"), b("2")).await.is_err());
    assert!(store.update(b("/fail/a"), b("2"), Revision(kv.mod_revision.0 + 100)).await.is_err());
    assert!(store.update(b("/fail/none"), b("2"), kv.mod_revision).await.is_err());
    assert!(store.delete(b"/fail/none", None).await.is_err());
    let huge = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    assert!(store.create(b("/fail/huge"), huge).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), r);
    let next = store.create(b("/fail/b"), b("1")).await.unwrap();
    assert_eq!(next.mod_revision, r.next());
}

pub async fn get_at_past_revisions(store: &S) {
    let k = b("/past/k");
    let r0 = store.current_revision().await.unwrap();
    let v1 = store.create(k.clone(), b("v1")).await.unwrap();
    store.create(b("/past/other"), b("o")).await.unwrap();
    let v2 = store.update(k.clone(), b("v2"), v1.mod_revision).await.unwrap();
    let del = store.delete(&k, None).await.unwrap();
    let v4 = store.create(k.clone(), b("v4")).await.unwrap();
    let v5 = store.update(k.clone(), b("v5"), v4.mod_revision).await.unwrap();

    let at = |r: Revision| {
        let store = store.clone();
        let k = k.clone();
        async move { store.get(&k, Some(r)).await.unwrap().map(|kv| kv.value) }
    };
    assert_eq!(at(r0).await, None);
    assert_eq!(at(v1.mod_revision).await, Some(b("v1")));
    assert_eq!(at(rev(v1.mod_revision, 1)).await, Some(b("v1")), "unrelated write in between");
    assert_eq!(at(v2.mod_revision).await, Some(b("v2")));
    assert_eq!(at(del.revision).await, None);
    assert_eq!(at(v4.mod_revision).await, Some(b("v4")));
    assert_eq!(at(v5.mod_revision).await, Some(b("v5")));
    let full = store.get(&k, Some(v2.mod_revision)).await.unwrap().unwrap();
    assert_eq!(full, v2, "a past read returns that revision's key-value with its metadata");

    let names = |items: Vec<KeyValue>| values(&items);
    assert_eq!(names(list_all(store, "/past/", Some(r0)).await), vec![]);
    assert_eq!(
        names(list_all(store, "/past/", Some(v2.mod_revision)).await),
        vec![("/past/k".into(), "v2".into()), ("/past/other".into(), "o".into())]
    );
    assert_eq!(
        names(list_all(store, "/past/", Some(del.revision)).await),
        vec![("/past/other".into(), "o".into())]
    );
    assert_eq!(
        names(list_all(store, "/past/", None).await),
        vec![("/past/k".into(), "v5".into()), ("/past/other".into(), "o".into())]
    );
}

pub async fn future_revisions_are_refused(store: &S) {
    store.create(b("/future/a"), b("1")).await.unwrap();
    let r = store.current_revision().await.unwrap();
    let err = store.get(b"/future/a", Some(r.next())).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    let options = ListOptions { revision: Some(r.next()), ..Default::default() };
    let err = store.list(b"/future/", options).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    let err = store.compact(rev(r, 10)).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
}

pub async fn compare_and_swap_race(store: &S) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 25;
    let key = b("/cas/counter");
    let first = store.create(key.clone(), b("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0usize;
            for _ in 0..INCREMENTS {
                loop {
                    let kv = store.get(&key, None).await.unwrap().unwrap();
                    let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store.update(key.clone(), b((n + 1).to_string()), kv.mod_revision).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("update failed: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = store.get(&key, None).await.unwrap().unwrap();
    assert_eq!(last.value, b((TASKS * INCREMENTS).to_string()), "no update was lost");
    assert_eq!(last.create_revision, first.create_revision);
}

pub async fn create_race(store: &S) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.create(b("/race/one"), b(i.to_string())).await },
        ));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(kv) => won.push(kv),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one create wins");
    assert_eq!(store.get(b"/race/one", None).await.unwrap(), Some(won[0].clone()));
}

pub async fn list_prefix(store: &S) {
    for key in ["/p/c", "/p/a", "/pa", "/p/b", "/q", "/p", "/p/a/nested"] {
        store.create(b(key), b(format!("v{key}"))).await.unwrap();
    }
    let page = store.list(b"/p/", ListOptions::default()).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, vec![b("/p/a"), b("/p/a/nested"), b("/p/b"), b("/p/c")], "sorted, in prefix");
    assert_eq!(page.items[0].value, b("v/p/a"));
    assert_eq!(page.revision, store.current_revision().await.unwrap());
    assert!(page.next_after.is_none());
    let empty = store.list(b"/nothing/", ListOptions::default()).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.revision, page.revision, "an empty list still reports the revision");
}

pub async fn list_pagination(store: &S) {
    for i in 0..25 {
        store.create(b(format!("/page/{i:03}")), b(i.to_string())).await.unwrap();
    }
    let mut options = ListOptions { limit: NonZeroUsize::new(10), ..Default::default() };
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    let mut revision = None;
    loop {
        let page = store.list(b"/page/", options.clone()).await.unwrap();
        sizes.push(page.items.len());
        if let Some(r) = revision {
            assert_eq!(page.revision, r, "every page reports the first page's revision");
        }
        revision = Some(page.revision);
        all.extend(page.items);
        match page.next_after {
            Some(after) => {
                options.start_after = Some(after);
                options.revision = revision;
            }
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    let keys: Vec<_> = all.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<_> = (0..25).map(|i| b(format!("/page/{i:03}"))).collect();
    assert_eq!(keys, expected);

    // An exact fit has no next page.
    let page = store
        .list(b"/page/", ListOptions { limit: NonZeroUsize::new(25), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 25);
    assert!(page.next_after.is_none(), "no next page when nothing remains");
}

pub async fn list_pagination_is_consistent_under_writes(store: &S) {
    for i in 0..200 {
        store.create(b(format!("/snap/{i:04}")), b("0")).await.unwrap();
    }
    let snapshot = list_all(store, "/snap/", None).await;
    let snapshot_rev = store.current_revision().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = b(format!("/snap/{:04}", (i * 7) % 260));
                match store.get(&key, None).await.unwrap() {
                    Some(kv) if i.is_multiple_of(2) => {
                        let _ = store.delete(&key, Some(kv.mod_revision)).await;
                    }
                    Some(kv) => {
                        let _ = store.update(key, b(i.to_string()), kv.mod_revision).await;
                    }
                    None => {
                        let _ = store.create(key, b(i.to_string())).await;
                    }
                }
                i += 1;
                if i.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
            i
        })
    };
    let mut paged = Vec::new();
    let mut options = ListOptions {
        limit: NonZeroUsize::new(7),
        revision: Some(snapshot_rev),
        start_after: None,
    };
    loop {
        let page = store.list(b"/snap/", options.clone()).await.unwrap();
        assert_eq!(page.revision, snapshot_rev);
        paged.extend(page.items);
        match page.next_after {
            Some(after) => options.start_after = Some(after),
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 0, "the writer ran during pagination");
    assert_eq!(paged, snapshot, "pages at one revision equal the snapshot");
}

pub async fn watch_replays_missed_events(store: &S) {
    let r0 = store.current_revision().await.unwrap();
    let a1 = store.create(b("/wr/a"), b("1")).await.unwrap();
    let b1 = store.create(b("/wr/b"), b("1")).await.unwrap();
    let a2 = store.update(b("/wr/a"), b("2"), a1.mod_revision).await.unwrap();
    let del = store.delete(b"/wr/b", None).await.unwrap();
    let c1 = store.create(b("/wr/c"), b("1")).await.unwrap();

    let mut watch = store.watch(b"/wr/", rev(r0, 1)).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: b1.clone(), prev: None });
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: a2.clone(), prev: Some(a1) });
    assert_eq!(next_event(&mut watch).await, Event::Delete { revision: del.revision, prev: b1 });
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: c1, prev: None });

    let a3 = store.update(b("/wr/a"), b("3"), a2.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: a3, prev: Some(a2) });

    // A second watch from the very start replays the whole history too.
    let mut again = store.watch(b"/wr/", r0).await.unwrap();
    let first = next_event(&mut again).await;
    assert_eq!(first.revision(), rev(r0, 1));
}

pub async fn watch_filters_by_prefix(store: &S) {
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch(b"/wf/in/", r0).await.unwrap();
    for i in 0..10 {
        let prefix = if i % 2 == 0 { "/wf/in/" } else { "/wf/out/" };
        store.create(b(format!("{prefix}{i}")), b("x")).await.unwrap();
    }
    store.create(b("/wf/in"), b("no trailing slash: not in the prefix")).await.unwrap();
    store.create(b("/wf/in/last"), b("x")).await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..6 {
        keys.push(next_event(&mut watch).await.key().clone());
    }
    let expected: Vec<_> =
        ["/wf/in/0", "/wf/in/2", "/wf/in/4", "/wf/in/6", "/wf/in/8", "/wf/in/last"]
            .into_iter()
            .map(b)
            .collect();
    assert_eq!(keys, expected);
}

pub async fn watch_has_no_gaps_under_concurrent_writes(store: &S) {
    const TASKS: usize = 4;
    const PER_TASK: usize = 100;
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch(b"/wc/", r0).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let key = b(format!("/wc/{t}/{i}"));
                let kv = store.create(key.clone(), b("1")).await.unwrap();
                if i % 4 == 0 {
                    store.update(key, b("2"), kv.mod_revision).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = TASKS * PER_TASK + TASKS * PER_TASK / 4;
    let mut last = r0;
    let mut latest: BTreeMap<Bytes, Bytes> = BTreeMap::new();
    for _ in 0..total {
        let event = next_event(&mut watch).await;
        assert_eq!(event.revision(), last.next(), "events arrive in revision order with no gaps");
        last = event.revision();
        if let Event::Put { kv, .. } = event {
            latest.insert(kv.key, kv.value);
        }
    }
    assert_eq!(last, store.current_revision().await.unwrap());
    let listed: BTreeMap<Bytes, Bytes> =
        list_all(store, "/wc/", None).await.into_iter().map(|kv| (kv.key, kv.value)).collect();
    assert_eq!(latest, listed, "replaying the watch reproduces the listed state");
}

pub async fn watch_from_current_sees_only_new_events(store: &S) {
    store.create(b("/wn/old"), b("1")).await.unwrap();
    let r = store.current_revision().await.unwrap();
    let mut watch = store.watch(b"/wn/", r).await.unwrap();
    let fresh = store.create(b("/wn/new"), b("1")).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: fresh, prev: None });
    let nothing = tokio::time::timeout(Duration::from_millis(100), watch.next()).await;
    assert!(nothing.is_err(), "no event without a write, got {nothing:?}");
}

pub async fn compaction(store: &S) {
    let k = b("/compact/k");
    let mut kv = store.create(k.clone(), b("0")).await.unwrap();
    let mut revs = vec![kv.mod_revision];
    for i in 1..10 {
        kv = store.update(k.clone(), b(i.to_string()), kv.mod_revision).await.unwrap();
        revs.push(kv.mod_revision);
    }
    let target = revs[5];
    store.compact(target).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), target);

    let err = store.get(&k, Some(revs[4])).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    assert_eq!(store.get(&k, Some(target)).await.unwrap().map(|kv| kv.value), Some(b("5")));
    let options = ListOptions { revision: Some(revs[4]), ..Default::default() };
    let err = store.list(b"/compact/", options).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let err = store.watch(b"/compact/", revs[4]).await.err().expect("watch below compaction fails");
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");

    let mut watch = store.watch(b"/compact/", target).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), revs[6], "resumes right after target");

    let err = store.compact(revs[2]).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    store.compact(target).await.unwrap();
}

pub async fn compaction_keeps_latest_state(store: &S) {
    let a = store.create(b("/ck/a"), b("1")).await.unwrap();
    store.update(b("/ck/a"), b("2"), a.mod_revision).await.unwrap();
    store.create(b("/ck/b"), b("1")).await.unwrap();
    store.delete(b"/ck/b", None).await.unwrap();
    store.create(b("/ck/c"), b("1")).await.unwrap();
    let before = list_all(store, "/ck/", None).await;
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    assert_eq!(list_all(store, "/ck/", None).await, before);
    assert_eq!(list_all(store, "/ck/", Some(current)).await, before);
    assert_eq!(store.get(b"/ck/b", None).await.unwrap(), None, "deleted stays deleted");
    let b2 = store.create(b("/ck/b"), b("again")).await.unwrap();
    assert_eq!(b2.create_revision, current.next());
}

pub async fn slow_watcher_learns_it_was_compacted(store: &S) {
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch(b"/slow/", r0).await.unwrap();
    for i in 0..10 {
        store.create(b(format!("/slow/{i}")), b("x")).await.unwrap();
    }
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    // A backend may have delivered some events before the compaction: what arrives must be a
    // gap-free prefix of the history, and then either the rest or a Compacted error.
    let mut expected = r0.next();
    loop {
        match tokio::time::timeout(WATCH_DEADLINE, watch.next()).await {
            Ok(Some(Ok(event))) => {
                assert_eq!(event.revision(), expected);
                if expected == current {
                    break;
                }
                expected = expected.next();
            }
            Ok(Some(Err(StoreError::Compacted { .. }))) => {
                let after = tokio::time::timeout(WATCH_DEADLINE, watch.next()).await;
                assert!(matches!(after, Ok(None)), "the stream ends after Compacted");
                break;
            }
            other => panic!("unexpected watch result {other:?}"),
        }
    }
}

pub async fn large_values(store: &S) {
    let big = Bytes::from((0..MAX_VALUE_BYTES).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let kv = store.create(b("/large/a"), big.clone()).await.unwrap();
    assert_eq!(store.get(b"/large/a", None).await.unwrap().unwrap().value, big);
    let r = store.current_revision().await.unwrap();
    let too_big = Bytes::from(vec![1u8; MAX_VALUE_BYTES + 1]);
    let err = store.update(b("/large/a"), too_big.clone(), kv.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    let err = store.create(b("/large/b"), too_big).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert_eq!(store.current_revision().await.unwrap(), r);
    let small = store.update(b("/large/a"), b("small"), kv.mod_revision).await.unwrap();
    assert_eq!(small.value, b("small"));
}

pub async fn many_keys(store: &S) {
    const KEYS: usize = 100_000;
    const TASKS: usize = 64;
    let value = Bytes::from(vec![b'v'; 100]);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..KEYS).step_by(TASKS) {
                store.create(b(format!("/many/{i:06}")), value.clone()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = list_all(store, "/many/", None).await;
    assert_eq!(all.len(), KEYS);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted");

    let mut options = ListOptions { limit: NonZeroUsize::new(5_000), ..Default::default() };
    let mut count = 0;
    loop {
        let page = store.list(b"/many/", options.clone()).await.unwrap();
        count += page.items.len();
        options.revision = Some(page.revision);
        match page.next_after {
            Some(after) => options.start_after = Some(after),
            None => break,
        }
    }
    assert_eq!(count, KEYS);
    for i in (0..KEYS).step_by(9_973) {
        let kv = store.get(format!("/many/{i:06}").as_bytes(), None).await.unwrap();
        assert_eq!(kv.map(|kv| kv.value), Some(value.clone()));
    }
}
