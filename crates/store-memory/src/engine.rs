//! The MVCC engine: the latest value of every key, a window of history, and watch cursors.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use store::{Event, KeyValue, ListOptions, ListPage, Result, Revision, StoreError, WatchStream};
use tokio::sync::watch;

/// One write, as a backend submits it to [`Engine::prepare`].
#[derive(Clone, Debug)]
pub enum Op {
    Create { key: Bytes, value: Bytes },
    Update { key: Bytes, value: Bytes, expected: Revision },
    Delete { key: Bytes, expected: Option<Revision> },
}

impl Op {
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// A validated write with its revision assigned, ready to be made durable and applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub event: Event,
    /// The revision of the previous event on the same key (0: none in the key's history).
    /// Reads at past revisions walk this chain.
    pub prev_event: u64,
}

impl LogEntry {
    pub fn revision(&self) -> Revision {
        self.event.revision()
    }

    /// The bytes this entry keeps in the history: its key, and the value it wrote (a replaced
    /// or deleted value is counted by the entry that wrote it).
    pub fn bytes(&self) -> u64 {
        let (key, value) = match &self.event {
            Event::Put { kv, .. } => (kv.key.len(), kv.value.len()),
            Event::Delete { prev, .. } => (prev.key.len(), 0),
        };
        (key + value) as u64
    }

    /// The key's value just before this event.
    fn prev_value(&self) -> Option<KeyValue> {
        match &self.event {
            Event::Put { prev, .. } => prev.clone(),
            Event::Delete { prev, .. } => Some(prev.clone()),
        }
    }
}

/// How much history the engine keeps for reads at past revisions and for watch resumption.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Never compact the newest this-many revisions (a fresh list's revision stays watchable).
    pub min_revisions: u64,
    /// Always compact beyond this many revisions.
    pub max_revisions: u64,
    /// Compact revisions older than this (beyond `min_revisions`).
    pub max_age: Duration,
    /// Compact the oldest revisions while the history holds more than this many bytes of
    /// keys and values (beyond `min_revisions`): a burst of large writes cannot make it grow
    /// without bound before `max_revisions` or `max_age` would.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            min_revisions: 1_000,
            max_revisions: 100_000,
            max_age: Duration::from_secs(300),
            max_bytes: 128 << 20,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// `None`: a tombstone, kept while the delete is inside the history window.
    latest: Option<KeyValue>,
    /// Revision of the key's last event.
    last_event: u64,
}

#[derive(Debug)]
struct Timed {
    entry: LogEntry,
    at: Instant,
    /// What the entry adds to the history's size (see [`LogEntry::bytes`]).
    bytes: u64,
}

#[derive(Debug)]
struct State {
    map: BTreeMap<Bytes, Entry>,
    /// Events with revisions in `(compacted, revision]`, contiguous.
    log: VecDeque<Timed>,
    /// The sum of the log's entries' bytes.
    log_bytes: u64,
    revision: u64,
    compacted: u64,
}

impl State {
    fn log_get(&self, rev: u64) -> Option<&LogEntry> {
        let index = rev.checked_sub(self.compacted + 1)?;
        self.log.get(usize::try_from(index).ok()?).map(|t| &t.entry)
    }

    fn check_read_revision(&self, requested: Option<Revision>) -> Result<u64> {
        let Some(requested) = requested else { return Ok(self.revision) };
        if requested.0 < self.compacted {
            return Err(StoreError::Compacted { requested, compacted: Revision(self.compacted) });
        }
        if requested.0 > self.revision {
            return Err(StoreError::FutureRevision { requested, current: Revision(self.revision) });
        }
        Ok(requested.0)
    }

    /// The value of a key at `at` (which is inside the readable window).
    fn resolve(&self, entry: &Entry, at: u64) -> Result<Option<KeyValue>> {
        if entry.last_event <= at {
            return Ok(entry.latest.clone());
        }
        let mut rev = entry.last_event;
        loop {
            let Some(log_entry) = self.log_get(rev) else {
                return Err(StoreError::Corrupt {
                    message: format!("history chain broken at revision {rev}"),
                });
            };
            if log_entry.prev_event <= at {
                return Ok(log_entry.prev_value());
            }
            rev = log_entry.prev_event;
        }
    }

    fn current(&self, key: &Bytes) -> (Option<KeyValue>, u64) {
        self.map.get(key).map_or((None, 0), |e| (e.latest.clone(), e.last_event))
    }
}

/// The watch channel's value: how far the committed history reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tip {
    revision: u64,
    closed: bool,
}

/// The in-memory MVCC state shared by a backend and its watch streams.
///
/// Writers go through [`Engine::prepare`] (validate against committed state, assign revisions)
/// and [`Engine::apply`] (publish). Readers and watchers only ever see applied writes, so a
/// durable backend applies after its commit is durable. Exactly one writer at a time may run
/// prepare→apply; backends guarantee it (a mutex, or a single writer thread).
#[derive(Debug)]
pub struct Engine {
    state: RwLock<State>,
    tip: watch::Sender<Tip>,
    retention: Retention,
}

/// How many log entries a watch cursor scans per lock acquisition.
const WATCH_SCAN: usize = 1024;

impl Engine {
    /// An empty engine at [`Revision::INITIAL`].
    pub fn new(retention: Retention) -> Arc<Engine> {
        Engine::restore(retention, Revision::INITIAL, Revision::INITIAL, Vec::new(), Vec::new())
    }

    /// An engine rebuilt from durable state: the live key-values, and the history
    /// `(compacted, revision]` in ascending order.
    pub fn restore(
        retention: Retention,
        revision: Revision,
        compacted: Revision,
        live: Vec<KeyValue>,
        history: Vec<LogEntry>,
    ) -> Arc<Engine> {
        let now = Instant::now();
        let mut map = BTreeMap::new();
        for kv in live {
            map.insert(kv.key.clone(), Entry { last_event: kv.mod_revision.0, latest: Some(kv) });
        }
        for entry in &history {
            if let Event::Delete { revision, prev } = &entry.event
                && map.get(&prev.key).is_none_or(|e| e.latest.is_none())
            {
                map.insert(prev.key.clone(), Entry { latest: None, last_event: revision.0 });
            }
        }
        let log: VecDeque<Timed> = history
            .into_iter()
            .map(|entry| Timed { bytes: entry.bytes(), entry, at: now })
            .collect();
        let log_bytes = log.iter().map(|t| t.bytes).sum();
        let state = State { map, log, log_bytes, revision: revision.0, compacted: compacted.0 };
        let (tip, _) = watch::channel(Tip { revision: revision.0, closed: false });
        Arc::new(Engine { state: RwLock::new(state), tip, retention })
    }

    /// Validates `ops` in order against the committed state (and the earlier ops of the same
    /// batch), assigning consecutive revisions to the ones that succeed.
    pub fn prepare(&self, ops: &[Op]) -> Vec<Result<LogEntry>> {
        let state = self.state.read();
        let mut revision = state.revision;
        let mut overlay: HashMap<Bytes, (Option<KeyValue>, u64)> = HashMap::new();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let key = op.key();
            let (current, last_event) =
                overlay.get(key).cloned().unwrap_or_else(|| state.current(key));
            let result = prepare_one(op, current, last_event, revision + 1);
            if let Ok(entry) = &result {
                revision += 1;
                let latest = match &entry.event {
                    Event::Put { kv, .. } => Some(kv.clone()),
                    Event::Delete { .. } => None,
                };
                overlay.insert(key.clone(), (latest, revision));
            }
            out.push(result);
        }
        out
    }

    /// Publishes prepared entries (in order, continuing the revision sequence).
    pub fn apply(&self, entries: impl IntoIterator<Item = LogEntry>) -> Result<()> {
        let now = Instant::now();
        let revision = {
            let mut state = self.state.write();
            for entry in entries {
                let rev = entry.revision().0;
                if rev != state.revision + 1 {
                    return Err(StoreError::Corrupt {
                        message: format!(
                            "applied revision {rev} does not follow current revision {}",
                            state.revision
                        ),
                    });
                }
                let (key, latest) = match &entry.event {
                    Event::Put { kv, .. } => (kv.key.clone(), Some(kv.clone())),
                    Event::Delete { prev, .. } => (prev.key.clone(), None),
                };
                state.map.insert(key, Entry { latest, last_event: rev });
                state.revision = rev;
                let bytes = entry.bytes();
                state.log_bytes += bytes;
                state.log.push_back(Timed { entry, at: now, bytes });
            }
            state.revision
        };
        self.tip.send_modify(|tip| tip.revision = revision);
        Ok(())
    }

    /// Drops history up to and including `target`: the state at `target` stays readable.
    pub fn compact(&self, target: Revision) -> Result<()> {
        let mut state = self.state.write();
        if target.0 > state.revision {
            return Err(StoreError::FutureRevision {
                requested: target,
                current: Revision(state.revision),
            });
        }
        if target.0 < state.compacted {
            return Err(StoreError::Compacted {
                requested: target,
                compacted: Revision(state.compacted),
            });
        }
        while state.log.front().is_some_and(|t| t.entry.revision().0 <= target.0) {
            let Some(timed) = state.log.pop_front() else { break };
            state.log_bytes -= timed.bytes;
            if let Event::Delete { revision, prev } = &timed.entry.event
                && state.map.get(&prev.key).is_some_and(|e| e.last_event == revision.0)
            {
                state.map.remove(&prev.key);
            }
        }
        state.compacted = target.0;
        Ok(())
    }

    /// The revision to compact to under the retention policy, if compaction is due now.
    pub fn compaction_due(&self, now: Instant) -> Option<Revision> {
        let state = self.state.read();
        let retained = state.revision - state.compacted;
        let keep_floor = state.revision.saturating_sub(self.retention.min_revisions);
        if retained <= self.retention.min_revisions {
            return None;
        }
        let mut target = state.compacted;
        // Compact in chunks so that a steady write load does not compact on every write.
        let slack = (self.retention.max_revisions / 16).max(1);
        if retained > self.retention.max_revisions + slack {
            target = state.revision - self.retention.max_revisions;
        }
        let cutoff = now.checked_sub(self.retention.max_age);
        if let (Some(cutoff), Some(front)) = (cutoff, state.log.front())
            && front.at < cutoff
        {
            // Entries are in time order: find the last one older than the cutoff.
            let old = state.log.partition_point(|t| t.at < cutoff);
            let rev = state.compacted + old as u64;
            target = target.max(rev.min(keep_floor));
        }
        let byte_slack = self.retention.max_bytes / 16;
        if state.log_bytes > self.retention.max_bytes + byte_slack {
            // Drop the oldest entries until what is left fits.
            let (mut left, mut dropped) = (state.log_bytes, 0u64);
            for timed in &state.log {
                if left <= self.retention.max_bytes {
                    break;
                }
                left -= timed.bytes;
                dropped += 1;
            }
            target = target.max((state.compacted + dropped).min(keep_floor));
        }
        (target > state.compacted).then_some(Revision(target))
    }

    pub fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let state = self.state.read();
        let at = state.check_read_revision(revision)?;
        match state.map.get(key) {
            Some(entry) => state.resolve(entry, at),
            None => Ok(None),
        }
    }

    pub fn list(&self, prefix: &[u8], options: &ListOptions) -> Result<ListPage> {
        let state = self.state.read();
        let at = state.check_read_revision(options.revision)?;
        let start = match &options.start_after {
            Some(after) if after.as_ref() >= prefix => Bound::Excluded(after.as_ref()),
            _ => Bound::Included(prefix),
        };
        let end_key = store::prefix_end(prefix);
        let end = match &end_key {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        let limit = options.limit.map_or(usize::MAX, |l| l.get());
        let mut items = Vec::new();
        let mut next_after = None;
        for (_, entry) in state.map.range::<[u8], _>((start, end)) {
            let Some(kv) = state.resolve(entry, at)? else { continue };
            if items.len() == limit {
                next_after = items.last().map(|last: &KeyValue| last.key.clone());
                break;
            }
            items.push(kv);
        }
        Ok(ListPage { items, revision: Revision(at), next_after })
    }

    pub fn revision(&self) -> Revision {
        Revision(self.state.read().revision)
    }

    pub fn compacted(&self) -> Revision {
        Revision(self.state.read().compacted)
    }

    /// Ends every watch stream (after it drains what it already read).
    pub fn close(&self) {
        self.tip.send_modify(|tip| tip.closed = true);
    }

    /// A stream of the events under `prefix` after revision `after`.
    pub fn watch(self: &Arc<Self>, prefix: Bytes, after: Revision) -> Result<WatchStream> {
        {
            let state = self.state.read();
            if after.0 < state.compacted {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: Revision(state.compacted),
                });
            }
        }
        let cursor = Cursor {
            engine: Arc::clone(self),
            tip: self.tip.subscribe(),
            prefix,
            next: after.0 + 1,
            buffer: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(cursor, Cursor::step)))
    }
}

fn prepare_one(
    op: &Op,
    current: Option<KeyValue>,
    last_event: u64,
    revision: u64,
) -> Result<LogEntry> {
    let rev = Revision(revision);
    let event = match op {
        Op::Create { key, value } => {
            if current.is_some() {
                return Err(StoreError::AlreadyExists { key: key.clone() });
            }
            StoreError::check_size(value)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: rev,
                mod_revision: rev,
            };
            Event::Put { kv, prev: None }
        }
        Op::Update { key, value, expected } => {
            let Some(current) = current else {
                return Err(StoreError::NotFound { key: key.clone() });
            };
            if current.mod_revision != *expected {
                return Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: current.mod_revision,
                });
            }
            StoreError::check_size(value)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: current.create_revision,
                mod_revision: rev,
            };
            Event::Put { kv, prev: Some(current) }
        }
        Op::Delete { key, expected } => {
            let Some(current) = current else {
                return Err(StoreError::NotFound { key: key.clone() });
            };
            if let Some(expected) = expected
                && current.mod_revision != *expected
            {
                return Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: current.mod_revision,
                });
            }
            Event::Delete { revision: rev, prev: current }
        }
    };
    Ok(LogEntry { event, prev_event: last_event })
}

/// A watcher's position in the shared history. Watchers hold no per-watcher buffers beyond one
/// scan: a slow consumer simply lags, and learns it fell behind compaction when it did.
struct Cursor {
    engine: Arc<Engine>,
    tip: watch::Receiver<Tip>,
    prefix: Bytes,
    /// The next revision to look at.
    next: u64,
    buffer: VecDeque<Event>,
    done: bool,
}

impl Cursor {
    async fn step(mut self) -> Option<(Result<Event>, Cursor)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let tip = *self.tip.borrow_and_update();
            {
                let engine = Arc::clone(&self.engine);
                let state = engine.state.read();
                if self.next <= state.compacted {
                    self.done = true;
                    let error = StoreError::Compacted {
                        requested: Revision(self.next - 1),
                        compacted: Revision(state.compacted),
                    };
                    drop(state);
                    return Some((Err(error), self));
                }
                let mut scanned = 0;
                while self.next <= state.revision && scanned < WATCH_SCAN {
                    if let Some(entry) = state.log_get(self.next)
                        && entry.event.key().starts_with(&self.prefix)
                    {
                        self.buffer.push_back(entry.event.clone());
                    }
                    self.next += 1;
                    scanned += 1;
                }
                if !self.buffer.is_empty() || self.next <= state.revision {
                    continue;
                }
            }
            if tip.closed || self.tip.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(engine: &Engine, key: &str, size: usize) {
        let op =
            Op::Create { key: Bytes::from(key.to_owned()), value: Bytes::from(vec![b'x'; size]) };
        let entries: Vec<LogEntry> =
            engine.prepare(std::slice::from_ref(&op)).into_iter().map(Result::unwrap).collect();
        engine.apply(entries).unwrap();
    }

    #[test]
    fn history_is_bounded_by_bytes_as_well_as_revisions() {
        let retention = Retention {
            min_revisions: 2,
            max_revisions: 1_000,
            max_age: Duration::from_secs(3600),
            max_bytes: 10_000,
        };
        let engine = Engine::new(retention);
        // 20 writes of ~1 KB (a 2-byte key and 1,000 bytes of value): 20 KB of history.
        for i in 0..20 {
            write(&engine, &format!("{i:02}"), 1_000);
        }
        let target = engine.compaction_due(Instant::now()).expect("over the byte bound");
        engine.compact(target).unwrap();
        let state = engine.state.read();
        assert!(state.log_bytes <= 10_000, "{}", state.log_bytes);
        assert_eq!(state.log.len(), 9, "the newest 9 entries (9,018 bytes) fit");
        assert_eq!(state.log_bytes, 9 * 1_002);
        drop(state);
        // Within the bound (and its slack) nothing is due; the live values are all readable.
        assert_eq!(engine.compaction_due(Instant::now()), None);
        assert!(engine.get(b"00", None).unwrap().is_some());
        // The newest `min_revisions` stay, whatever their size.
        let engine = Engine::new(retention);
        write(&engine, "a", 50_000);
        write(&engine, "b", 50_000);
        assert_eq!(engine.compaction_due(Instant::now()), None);
        write(&engine, "c", 50_000);
        let target = engine.compaction_due(Instant::now()).unwrap();
        assert_eq!(target, Revision(Revision::INITIAL.0 + 1), "only the oldest goes");
    }

    #[test]
    fn restored_history_counts_its_bytes() {
        let engine = Engine::new(Retention::default());
        write(&engine, "k", 100);
        let history: Vec<LogEntry> =
            engine.state.read().log.iter().map(|t| t.entry.clone()).collect();
        let restored = Engine::restore(
            Retention::default(),
            engine.revision(),
            engine.compacted(),
            Vec::new(),
            history,
        );
        assert_eq!(restored.state.read().log_bytes, 101);
    }
}
