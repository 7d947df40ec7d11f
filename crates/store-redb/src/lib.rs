//! The durable embedded backend of the store contract, on redb.
//!
//! Reads never touch the disk: the in-memory MVCC [`Engine`] (from `store-memory`) holds the
//! latest value of every key and a window of history, and serves get, list and watch. Writes go
//! to one writer thread that *group-commits*: it takes every write queued while the previous
//! commit was syncing, validates them in order against the committed state, writes them in one
//! redb transaction with `Durability::Immediate`, and only after that commit is durable applies
//! them to the engine and acknowledges each caller. So a 2xx from the API server means the write
//! is on disk, readers never see a write that a crash could lose, and throughput grows with the
//! number of concurrent writers.
//!
//! On disk: table `kv` (key → create/mod revision + value: the live state), table `log`
//! (revision → event with the replaced value: the history window, which survives restarts so
//! watchers can resume across them) and table `meta` (`revision`, `compacted`, `schema`).
//! Compaction trims `log` in the background under the engine's [`Retention`] policy.
//!
//! This crate knows nothing of HTTP or Kubernetes.

mod codec;

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use store::{
    Deleted, Event, KeyValue, ListOptions, ListPage, Result, Revision, Store, StoreError,
    WatchStream,
};
pub use store_memory::Retention;
use store_memory::{Engine, LogEntry, Op, delete_result, put_result};
use tokio::sync::oneshot;

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_SCHEMA: &str = "schema";
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";
const SCHEMA_VERSION: u64 = 1;

/// Tuning for [`RedbStore::open`].
#[derive(Clone, Copy, Debug)]
pub struct RedbOptions {
    pub retention: Retention,
    /// The most writes in one group commit.
    pub max_batch: usize,
    /// redb's page cache. Reads are served from memory, so this only speeds up commits.
    pub cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions { retention: Retention::default(), max_batch: 4096, cache_bytes: 8 << 20 }
    }
}

enum Command {
    Write(Op, oneshot::Sender<Result<Event>>),
    Compact(Revision, oneshot::Sender<Result<()>>),
}

/// A durable [`Store`] in one redb file. Dropping it stops the writer thread (after it finishes
/// the commit in flight) and ends every watch stream.
pub struct RedbStore {
    engine: Arc<Engine>,
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("revision", &self.engine.revision()).finish()
    }
}

fn db_error(context: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

impl RedbStore {
    /// Opens (creating if missing) the store at `path` and loads it into memory.
    pub fn open(path: impl AsRef<Path>, options: RedbOptions) -> Result<RedbStore> {
        let path = path.as_ref();
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|e| db_error("cannot open the redb file")(e.into()))?;
        let (revision, compacted) = init_meta(&db)?;
        let (live, history) = load(&db, compacted)?;
        tracing::info!(
            path = %path.display(),
            keys = live.len(),
            history = history.len(),
            revision,
            "opened redb store"
        );
        let engine = Engine::restore(
            options.retention,
            Revision(revision),
            Revision(compacted),
            live,
            history,
        );
        let (commands, queue) = mpsc::channel();
        let writer =
            Writer { db, engine: Arc::clone(&engine), max_batch: options.max_batch.max(1) };
        let writer = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::unavailable("cannot start the writer thread", e))?;
        Ok(RedbStore { engine, commands: Some(commands), writer: Some(writer) })
    }

    async fn write(&self, op: Op) -> Result<Event> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Write(op, reply))?;
        response.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.as_ref().ok_or_else(writer_gone)?.send(command).map_err(|_| writer_gone())
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable { message: "the store writer has stopped".into(), source: None }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the redb writer thread panicked");
        }
        self.engine.close();
    }
}

/// Creates the tables on first open and reads (revision, compacted).
fn init_meta(db: &Database) -> Result<(u64, u64)> {
    let txn = db.begin_write().map_err(|e| db_error("begin")(e.into()))?;
    let result = {
        let mut meta = txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
        txn.open_table(KV).map_err(|e| db_error("open kv")(e.into()))?;
        txn.open_table(LOG).map_err(|e| db_error("open log")(e.into()))?;
        let read = |meta: &redb::Table<&str, u64>, key: &str| -> Result<Option<u64>> {
            Ok(meta.get(key).map_err(|e| db_error("read meta")(e.into()))?.map(|v| v.value()))
        };
        match read(&meta, META_SCHEMA)? {
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Corrupt {
                    message: format!(
                        "unsupported store schema {other} (expected {SCHEMA_VERSION})"
                    ),
                });
            }
            None => {
                let mut set = |key: &str, value: u64| -> Result<()> {
                    meta.insert(key, value).map_err(|e| db_error("write meta")(e.into()))?;
                    Ok(())
                };
                set(META_SCHEMA, SCHEMA_VERSION)?;
                set(META_REVISION, Revision::INITIAL.0)?;
                set(META_COMPACTED, Revision::INITIAL.0)?;
            }
        }
        let revision = read(&meta, META_REVISION)?.unwrap_or(Revision::INITIAL.0);
        let compacted = read(&meta, META_COMPACTED)?.unwrap_or(Revision::INITIAL.0);
        (revision, compacted)
    };
    txn.commit().map_err(|e| db_error("commit")(e.into()))?;
    Ok(result)
}

fn load(db: &Database, compacted: u64) -> Result<(Vec<KeyValue>, Vec<LogEntry>)> {
    let txn = db.begin_read().map_err(|e| db_error("begin read")(e.into()))?;
    let kv = txn.open_table(KV).map_err(|e| db_error("open kv")(e.into()))?;
    let mut live = Vec::new();
    for item in kv.iter().map_err(|e| db_error("scan kv")(e.into()))? {
        let (key, value) = item.map_err(|e| db_error("scan kv")(e.into()))?;
        live.push(codec::decode_kv(key.value(), value.value())?);
    }
    let log = txn.open_table(LOG).map_err(|e| db_error("open log")(e.into()))?;
    let mut history = Vec::new();
    let scan = log.range(compacted + 1..).map_err(|e| db_error("scan log")(e.into()))?;
    for (expected, item) in (compacted + 1..).zip(scan) {
        let (rev, value) = item.map_err(|e| db_error("scan log")(e.into()))?;
        let rev = rev.value();
        if rev != expected {
            return Err(StoreError::Corrupt {
                message: format!("history has a gap: expected revision {expected}, found {rev}"),
            });
        }
        history.push(codec::decode_log(rev, value.value())?);
    }
    Ok((live, history))
}

struct Writer {
    db: Database,
    engine: Arc<Engine>,
    max_batch: usize,
}

impl Writer {
    fn run(self, queue: mpsc::Receiver<Command>) {
        while let Ok(first) = queue.recv() {
            let mut writes = Vec::new();
            let mut compactions = Vec::new();
            let mut push = |command| match command {
                Command::Write(op, reply) => writes.push((op, reply)),
                Command::Compact(target, reply) => compactions.push((target, reply)),
            };
            push(first);
            let mut taken = 1;
            while taken < self.max_batch {
                let Ok(command) = queue.try_recv() else { break };
                push(command);
                taken += 1;
            }
            if !writes.is_empty() {
                self.commit_writes(writes);
            }
            for (target, reply) in compactions {
                let _ = reply.send(self.compact(target));
            }
            if let Some(target) = self.engine.compaction_due(Instant::now())
                && let Err(error) = self.compact(target)
            {
                tracing::warn!(%error, %target, "background compaction failed");
            }
        }
    }

    fn commit_writes(&self, writes: Vec<(Op, oneshot::Sender<Result<Event>>)>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = writes.into_iter().unzip();
        let prepared = self.engine.prepare(&ops);
        let entries: Vec<LogEntry> =
            prepared.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let committed = if entries.is_empty() {
            Ok(())
        } else {
            self.persist(&entries).and_then(|()| self.engine.apply(entries))
        };
        for (result, reply) in prepared.into_iter().zip(replies) {
            let outcome = match (result, &committed) {
                (Ok(entry), Ok(())) => Ok(entry.event),
                (Ok(_), Err(error)) => Err(StoreError::Unavailable {
                    message: format!("commit failed: {error}"),
                    source: None,
                }),
                (Err(error), _) => Err(error),
            };
            // The caller may have gone away (cancelled request): the write still happened.
            let _ = reply.send(outcome);
        }
    }

    fn persist(&self, entries: &[LogEntry]) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| db_error("begin")(e.into()))?;
        {
            let mut kv = txn.open_table(KV).map_err(|e| db_error("open kv")(e.into()))?;
            let mut log = txn.open_table(LOG).map_err(|e| db_error("open log")(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
            let mut last = 0;
            for entry in entries {
                match &entry.event {
                    Event::Put { kv: value, .. } => {
                        kv.insert(value.key.as_ref(), codec::encode_kv(value).as_slice())
                            .map_err(|e| db_error("write kv")(e.into()))?;
                    }
                    Event::Delete { prev, .. } => {
                        kv.remove(prev.key.as_ref())
                            .map_err(|e| db_error("delete kv")(e.into()))?;
                    }
                }
                last = entry.revision().0;
                log.insert(last, codec::encode_log(entry).as_slice())
                    .map_err(|e| db_error("write log")(e.into()))?;
            }
            meta.insert(META_REVISION, last).map_err(|e| db_error("write meta")(e.into()))?;
        }
        txn.commit().map_err(|e| db_error("commit")(e.into()))
    }

    fn compact(&self, target: Revision) -> Result<()> {
        let (current, compacted) = (self.engine.revision(), self.engine.compacted());
        if target > current {
            return Err(StoreError::FutureRevision { requested: target, current });
        }
        if target < compacted {
            return Err(StoreError::Compacted { requested: target, compacted });
        }
        if target == compacted {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(|e| db_error("begin")(e.into()))?;
        // Losing a compaction in a crash is harmless (it is redone), so it need not fsync: the
        // next durable commit persists it.
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StoreError::unavailable("set durability", e))?;
        {
            let mut log = txn.open_table(LOG).map_err(|e| db_error("open log")(e.into()))?;
            log.retain_in(..=target.0, |_, _| false)
                .map_err(|e| db_error("compact log")(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
            meta.insert(META_COMPACTED, target.0).map_err(|e| db_error("write meta")(e.into()))?;
        }
        txn.commit().map_err(|e| db_error("commit")(e.into()))?;
        self.engine.compact(target)
    }
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn create(&self, key: Bytes, value: Bytes) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        put_result(self.write(Op::Create { key, value }).await?)
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.engine.get(key, revision)
    }

    async fn update(&self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        put_result(self.write(Op::Update { key, value, expected }).await?)
    }

    async fn delete(&self, key: &[u8], expected: Option<Revision>) -> Result<Deleted> {
        delete_result(self.write(Op::Delete { key: Bytes::copy_from_slice(key), expected }).await?)
    }

    async fn list(&self, prefix: &[u8], options: ListOptions) -> Result<ListPage> {
        self.engine.list(prefix, &options)
    }

    async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream> {
        self.engine.watch(Bytes::copy_from_slice(prefix), after)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Compact(revision, reply))?;
        response.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.engine.revision())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.engine.compacted())
    }
}
