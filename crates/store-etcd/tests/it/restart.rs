//! Durability: what etcd acknowledged survives a crash of etcd, the store reports the outage as
//! Unavailable (never a hang or a made-up answer), and reconnects by itself afterwards.

use std::time::Duration;

use bytes::Bytes;
use store::{Store, StoreError};

use super::{connect, start_etcd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_an_etcd_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = start_etcd(dir.path());
    let store = connect(&etcd).await;
    let mut written = Vec::new();
    for i in 0..50 {
        let key = Bytes::from(format!("/r/{i:02}"));
        written.push(store.create(key, Bytes::from(format!("v{i}"))).await.unwrap());
    }
    let last = written.last().unwrap().mod_revision;

    etcd.kill();
    let outage = tokio::time::timeout(Duration::from_secs(30), store.get(b"/r/00", None)).await;
    match outage {
        Ok(Err(StoreError::Unavailable { .. })) => {}
        other => panic!("a read with etcd down must fail as Unavailable, got {other:?}"),
    }

    etcd.restart().unwrap();
    etcd.wait_listening(Duration::from_secs(30)).unwrap();
    // The same client reconnects: poll (bounded) until etcd answers again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let revision = loop {
        match store.current_revision().await {
            Ok(revision) => break revision,
            Err(e) if std::time::Instant::now() > deadline => panic!("no reconnect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(revision, last, "no acknowledged write lost, nothing made up");
    let page = store.list(b"/r/", Default::default()).await.unwrap();
    assert_eq!(page.items, written);
}
