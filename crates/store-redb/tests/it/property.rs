//! Random operation sequences give identical results on the memory and redb backends, including
//! across reopens of the redb store.

use std::num::NonZeroUsize;

use bytes::Bytes;
use futures_util::StreamExt;
use proptest::prelude::*;
use store::{ListOptions, Revision, Store};
use store_memory::MemoryStore;
use store_redb::{RedbOptions, RedbStore};

#[derive(Clone, Debug)]
enum Step {
    Create(u8, u8),
    /// Update with the key's current mod revision (`None`) or with an arbitrary one.
    Update(u8, u8, Option<u64>),
    Delete(u8, Option<Option<u64>>),
    /// Read `back` revisions before the current one.
    Get(u8, u64),
    List(Option<u8>, u64),
    Compact(u64),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..5;
    prop_oneof![
        4 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Step::Create(k, v)),
        4 => (key.clone(), any::<u8>(), proptest::option::weighted(0.8, Just(()))
            .prop_flat_map(|o| match o {
                Some(()) => Just(None).boxed(),
                None => (1u64..40).prop_map(Some).boxed(),
            }))
            .prop_map(|(k, v, e)| Step::Update(k, v, e)),
        2 => (key.clone(), proptest::option::of(proptest::option::of(1u64..40)))
            .prop_map(|(k, e)| Step::Delete(k, e)),
        2 => (key.clone(), 0u64..12).prop_map(|(k, back)| Step::Get(k, back)),
        2 => (proptest::option::of(1u8..4), 0u64..12).prop_map(|(l, back)| Step::List(l, back)),
        1 => (0u64..15).prop_map(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

fn key(k: u8) -> Bytes {
    Bytes::from(format!("/prop/{k}"))
}

/// Runs one step on a store and renders the outcome (errors by their full debug form, which
/// names the variant and its revisions).
async fn run(store: &dyn Store, step: &Step) -> String {
    let current = store.current_revision().await.unwrap_or_default();
    let back = |n: u64| Revision(current.0.saturating_sub(n).max(1));
    let out = match step {
        Step::Create(k, v) => format!("{:?}", store.create(key(*k), Bytes::from(vec![*v])).await),
        Step::Update(k, v, expected) => {
            let expected = match expected {
                Some(rev) => Revision(*rev),
                None => match store.get(&key(*k), None).await {
                    Ok(Some(kv)) => kv.mod_revision,
                    _ => Revision(1),
                },
            };
            format!("{:?}", store.update(key(*k), Bytes::from(vec![*v]), expected).await)
        }
        Step::Delete(k, expected) => {
            let expected = match expected {
                None => None,
                Some(Some(rev)) => Some(Revision(*rev)),
                Some(None) => {
                    store.get(&key(*k), None).await.ok().flatten().map(|kv| kv.mod_revision)
                }
            };
            format!("{:?}", store.delete(&key(*k), expected).await)
        }
        Step::Get(k, n) => format!("{:?}", store.get(&key(*k), Some(back(*n))).await),
        Step::List(limit, n) => {
            let options = ListOptions {
                revision: Some(back(*n)),
                limit: limit.and_then(|l| NonZeroUsize::new(l as usize)),
                start_after: None,
            };
            format!("{:?}", store.list(b"/prop/", options).await)
        }
        Step::Compact(n) => format!("{:?}", store.compact(back(*n)).await),
        Step::Reopen => String::new(),
    };
    format!("{step:?} -> {out}")
}

async fn replay_history(store: &dyn Store) -> Vec<String> {
    let compacted = store.compacted_revision().await.unwrap();
    let current = store.current_revision().await.unwrap();
    let mut watch = store.watch(b"/prop/", compacted).await.unwrap();
    let mut events = Vec::new();
    for _ in compacted.0..current.0 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await;
        events.push(format!("{:?}", event.expect("event in time")));
    }
    events
}

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prop.redb");
        let memory = MemoryStore::default();
        let mut redb = Some(RedbStore::open(&path, RedbOptions::default()).unwrap());
        for step in &steps {
            if let Step::Reopen = step {
                drop(redb.take());
                redb = Some(RedbStore::open(&path, RedbOptions::default()).unwrap());
                continue;
            }
            let store = redb.as_ref().unwrap();
            let expected = run(&memory, step).await;
            let got = run(store, step).await;
            prop_assert_eq!(got, expected);
        }
        let store = redb.as_ref().unwrap();
        prop_assert_eq!(
            store.current_revision().await.unwrap(),
            memory.current_revision().await.unwrap()
        );
        prop_assert_eq!(replay_history(store).await, replay_history(&memory).await);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_redb_agree(steps in proptest::collection::vec(step(), 1..60)) {
        check(steps)?;
    }
}
