//! A three-member etcd cluster on loopback: killing one member (the leader, the hardest case: an
//! election follows) loses no acknowledged write, and writes go on through the new quorum.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::Store;
use store_etcd::server::{self, EtcdServer, MemberSpec};
use store_etcd::{EtcdOptions, EtcdStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_members_loses_no_acknowledged_write() {
    assert!(server::binary().is_some(), "etcd is not installed: `apt-get install etcd-server`");
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<MemberSpec> =
        (0..3).map(|i| MemberSpec::on_free_ports(&format!("etcd{i}")).unwrap()).collect();
    let mut members: Vec<EtcdServer> = specs
        .iter()
        .map(|spec| EtcdServer::start_member(dir.path(), spec, &specs, None).unwrap())
        .collect();
    for member in &mut members {
        member.wait_listening(Duration::from_secs(30)).unwrap();
    }
    let endpoints: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    let mut options = EtcdOptions::new(&endpoints.join(","));
    options.compaction_interval = None;
    server::wait_ready(&options, Duration::from_secs(30)).await.unwrap();
    let store = Arc::new(EtcdStore::connect(options).await.unwrap());

    // Four writers create keys until told to stop, remembering what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut failed = 0usize;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let key = Bytes::from(format!("/ha/{w}/{i:06}"));
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    store.create(key.clone(), Bytes::from(format!("{i}"))),
                )
                .await
                {
                    Ok(Ok(kv)) => acknowledged.push((kv, Instant::now())),
                    _ => failed += 1,
                }
                i += 1;
            }
            (acknowledged, failed)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader = leader_of(&members).await;
    let killed_at = Instant::now();
    members[leader].kill();
    // Bounded wait until a new leader takes writes, then let the writers run a little more.
    let mut probe = 0;
    let recovered = loop {
        let key = Bytes::from(format!("/probe/{probe}"));
        probe += 1;
        let attempt = store.create(key, Bytes::from("p"));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "no write accepted after the kill");
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for writer in writers {
        let (acks, fails) = writer.await.unwrap();
        acknowledged.extend(acks);
        failed += fails;
    }
    let after_kill = acknowledged.iter().filter(|(_, at)| *at > killed_at).count();
    assert!(
        after_kill > 0,
        "writes go on through the surviving quorum ({failed} failed, probe after {recovered:?})"
    );

    // Every acknowledged write is there, as acknowledged, read from the survivors.
    let page = match store.list(b"/ha/", Default::default()).await {
        Ok(page) => page,
        Err(e) => panic!("list: {e:?}"),
    };
    let stored: std::collections::HashMap<Bytes, store::KeyValue> =
        page.items.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
    for (kv, _) in &acknowledged {
        assert_eq!(stored.get(&kv.key), Some(kv), "acknowledged write {:?} lost", kv.key);
    }
    eprintln!(
        "leader killed; writes accepted again after {recovered:?}; {} acknowledged ({} after \
         the kill), {failed} failed or timed out, {} stored",
        acknowledged.len(),
        after_kill,
        stored.len()
    );
}

/// The index of the member that is the raft leader.
async fn leader_of(members: &[EtcdServer]) -> usize {
    for (i, member) in members.iter().enumerate() {
        use store_etcd::pb::etcdserverpb::StatusRequest;
        use store_etcd::pb::etcdserverpb::maintenance_client::MaintenanceClient;
        let mut client = MaintenanceClient::connect(member.client_url.clone()).await.unwrap();
        let status = client.status(StatusRequest {}).await.unwrap().into_inner();
        if status.header.map(|h| h.member_id) == Some(status.leader) {
            return i;
        }
    }
    panic!("no member is the leader");
}
