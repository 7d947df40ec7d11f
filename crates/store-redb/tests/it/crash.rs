//! The crash test: a child process writes with acknowledgements while the test kills it with
//! SIGKILL at random moments; after reopening, every acknowledged write is present.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use store::{Revision, Store};
use store_redb::{RedbOptions, RedbStore};

const ROUNDS: usize = 6;

fn random_millis(lo: u64, hi: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(lo);
    lo + hasher.finish() % (hi - lo)
}

#[derive(Default)]
struct Acked {
    creates: HashMap<String, u64>,
    counters: HashMap<String, u64>,
    max_revision: u64,
}

fn parse(line: &str, acked: &mut Acked) {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["create", key, rev] => {
            let rev: u64 = rev.parse().expect("revision");
            acked.creates.insert((*key).to_owned(), rev);
            acked.max_revision = acked.max_revision.max(rev);
        }
        ["update", key, value, rev] => {
            let value: u64 = value.parse().expect("value");
            let rev: u64 = rev.parse().expect("revision");
            let slot = acked.counters.entry((*key).to_owned()).or_default();
            *slot = (*slot).max(value);
            acked.max_revision = acked.max_revision.max(rev);
        }
        // A line cut short by the kill was never acknowledged.
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut acked = Acked::default();
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_redb-crash-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let lines_before = acked.creates.len();
        // Kill at a random moment once it writes (a loaded machine may take a while to start
        // it: a fixed delay from the spawn could kill it before its first write).
        let first = rx.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(random_millis(150, 900)));
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        reader.join().expect("reader");
        for line in first.into_iter().chain(rx.try_iter()) {
            parse(&line, &mut acked);
        }
        assert!(
            acked.creates.len() > lines_before,
            "round {round}: the writer acknowledged writes"
        );

        let store = RedbStore::open(&path, RedbOptions::default()).expect("reopen after SIGKILL");
        for (key, rev) in &acked.creates {
            let kv = store.get(key.as_bytes(), None).await.unwrap();
            let kv = kv.unwrap_or_else(|| panic!("round {round}: acknowledged create {key} lost"));
            assert_eq!(kv.mod_revision, Revision(*rev), "{key}");
        }
        for (key, value) in &acked.counters {
            let kv = store.get(key.as_bytes(), None).await.unwrap().expect("counter");
            let stored: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
            assert!(stored >= *value, "round {round}: {key} went back from {value} to {stored}");
        }
        let current = store.current_revision().await.unwrap();
        assert!(current.0 >= acked.max_revision, "the revision never goes back");
        let next = store.create(format!("/crash/after/{round}").into(), "x".into()).await.unwrap();
        assert!(next.mod_revision.0 > acked.max_revision);
    }
}
