//! The in-memory store: the reference backend for the store contract, and the MVCC engine that
//! durable backends use as their read path.
//!
//! [`Engine`] keeps the latest value of every key, a window of history (each event with the
//! value it replaced, so reads at past revisions and watch resumption need no disk), and serves
//! watches as cursors over that history. [`MemoryStore`] is the engine with a mutex in front of
//! writes. This crate knows nothing of disks, HTTP or Kubernetes.

mod engine;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
pub use engine::{Engine, LogEntry, Op, Retention};
use parking_lot::Mutex;
use store::{
    Deleted, Event, KeyValue, ListOptions, ListPage, Result, Revision, Store, StoreError,
    WatchStream,
};

/// A [`Store`] whose data lives only as long as the process: the reference backend, and the
/// store of simulated member clusters.
#[derive(Debug)]
pub struct MemoryStore {
    engine: Arc<Engine>,
    writer: Mutex<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(Retention::default())
    }
}

impl MemoryStore {
    pub fn new(retention: Retention) -> MemoryStore {
        MemoryStore { engine: Engine::new(retention), writer: Mutex::new(()) }
    }

    fn write(&self, op: Op) -> Result<Event> {
        let _writer = self.writer.lock();
        let mut prepared = self.engine.prepare(std::slice::from_ref(&op));
        let entry = prepared.pop().unwrap_or_else(|| {
            Err(StoreError::Corrupt { message: "prepare returned no result".into() })
        })?;
        let event = entry.event.clone();
        self.engine.apply([entry])?;
        if let Some(target) = self.engine.compaction_due(Instant::now()) {
            self.engine.compact(target)?;
        }
        Ok(event)
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.engine.close();
    }
}

/// Unpacks the event of a successful create or update.
pub fn put_result(event: Event) -> Result<KeyValue> {
    match event {
        Event::Put { kv, .. } => Ok(kv),
        Event::Delete { .. } => {
            Err(StoreError::Corrupt { message: "a put produced a delete event".into() })
        }
    }
}

/// Unpacks the event of a successful delete.
pub fn delete_result(event: Event) -> Result<Deleted> {
    match event {
        Event::Delete { revision, prev } => Ok(Deleted { revision, prev }),
        Event::Put { .. } => {
            Err(StoreError::Corrupt { message: "a delete produced a put event".into() })
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn create(&self, key: Bytes, value: Bytes) -> Result<KeyValue> {
        put_result(self.write(Op::Create { key, value })?)
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.engine.get(key, revision)
    }

    async fn update(&self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue> {
        put_result(self.write(Op::Update { key, value, expected })?)
    }

    async fn delete(&self, key: &[u8], expected: Option<Revision>) -> Result<Deleted> {
        delete_result(self.write(Op::Delete { key: Bytes::copy_from_slice(key), expected })?)
    }

    async fn list(&self, prefix: &[u8], options: ListOptions) -> Result<ListPage> {
        self.engine.list(prefix, &options)
    }

    async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream> {
        self.engine.watch(Bytes::copy_from_slice(prefix), after)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let _writer = self.writer.lock();
        self.engine.compact(revision)
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.engine.revision())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.engine.compacted())
    }
}
