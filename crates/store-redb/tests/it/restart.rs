//! Restarts: everything acknowledged, the revision and the history window survive a reopen.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use store::{Event, ListOptions, Revision, Store, StoreError};
use store_redb::{RedbOptions, RedbStore, Retention};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn open(path: &std::path::Path) -> RedbStore {
    RedbStore::open(path, RedbOptions::default()).expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_revision_and_history_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (before, mid, current) = {
        let store = open(&path);
        let a = store.create(b("/r/a"), b("1")).await.unwrap();
        store.create(b("/r/b"), b("1")).await.unwrap();
        let mid = store.current_revision().await.unwrap();
        store.update(b("/r/a"), b("2"), a.mod_revision).await.unwrap();
        store.delete(b"/r/b", None).await.unwrap();
        store.create(b("/r/c"), b("1")).await.unwrap();
        let before = store.list(b"/r/", ListOptions::default()).await.unwrap().items;
        let mid_list =
            store.list(b"/r/", ListOptions { revision: Some(mid), ..Default::default() }).await;
        assert_eq!(mid_list.unwrap().items.len(), 2);
        (before, mid, store.current_revision().await.unwrap())
    };
    let store = open(&path);
    assert_eq!(store.current_revision().await.unwrap(), current);
    assert_eq!(store.list(b"/r/", ListOptions::default()).await.unwrap().items, before);
    let at_mid = store
        .list(b"/r/", ListOptions { revision: Some(mid), ..Default::default() })
        .await
        .unwrap();
    let values: Vec<_> = at_mid.items.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
    assert_eq!(values, vec![(b("/r/a"), b("1")), (b("/r/b"), b("1"))], "past reads after reopen");
    let next = store.create(b("/r/d"), b("1")).await.unwrap();
    assert_eq!(next.mod_revision, current.next(), "the revision continues upward");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (resume_from, expected) = {
        let store = open(&path);
        let a = store.create(b("/w/a"), b("1")).await.unwrap();
        let resume_from = store.current_revision().await.unwrap();
        let a2 = store.update(b("/w/a"), b("2"), a.mod_revision).await.unwrap();
        let gone = store.delete(b"/w/a", None).await.unwrap();
        (
            resume_from,
            vec![
                Event::Put { kv: a2.clone(), prev: Some(a) },
                Event::Delete { revision: gone.revision, prev: a2 },
            ],
        )
    };
    let store = open(&path);
    let mut watch = store.watch(b"/w/", resume_from).await.unwrap();
    for want in expected {
        let got = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
        assert_eq!(got.unwrap().unwrap().unwrap(), want);
    }
    let live = store.create(b("/w/b"), b("1")).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
    assert_eq!(got.unwrap().unwrap().unwrap(), Event::Put { kv: live, prev: None });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let target = {
        let store = open(&path);
        let mut kv = store.create(b("/c/k"), b("0")).await.unwrap();
        for i in 1..20 {
            kv =
                store.update(b("/c/k"), Bytes::from(i.to_string()), kv.mod_revision).await.unwrap();
        }
        let target = Revision(kv.mod_revision.0 - 5);
        store.compact(target).await.unwrap();
        target
    };
    let store = open(&path);
    assert_eq!(store.compacted_revision().await.unwrap(), target);
    let err = store.get(b"/c/k", Some(Revision(target.0 - 1))).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    assert_eq!(store.get(b"/c/k", Some(target)).await.unwrap().unwrap().value, b("14"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_compacted_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let retention = Retention {
        min_revisions: 10,
        max_revisions: 64,
        max_age: Duration::from_secs(3600),
        ..Retention::default()
    };
    let options = RedbOptions { retention, ..Default::default() };
    let store = RedbStore::open(&path, options).unwrap();
    let mut kv = store.create(b("/bg/k"), b("0")).await.unwrap();
    for i in 1..500 {
        kv = store.update(b("/bg/k"), Bytes::from(i.to_string()), kv.mod_revision).await.unwrap();
    }
    let compacted = store.compacted_revision().await.unwrap();
    let current = store.current_revision().await.unwrap();
    assert!(compacted.0 > 1, "background compaction ran");
    assert!(
        current.0 - compacted.0 <= 64 + 64 / 16 + 1,
        "history is bounded: {compacted}..{current}"
    );
    assert!(current.0 - compacted.0 >= 10, "the newest revisions are kept");
    drop(store);
    let store = RedbStore::open(&path, options).unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), compacted);
    assert_eq!(store.get(b"/bg/k", None).await.unwrap().unwrap().value, b("499"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let _first = open(&path);
    let err = RedbStore::open(&path, RedbOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
}
