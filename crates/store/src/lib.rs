//! The store contract that everything in karmada-rs sits on.
//!
//! A [`Store`] is a revisioned key-value space with etcd's semantics: one global [`Revision`]
//! that only grows (every successful write takes the next one), compare-and-swap updates on a
//! key's mod-revision, consistent prefix lists at a revision with pagination, watches that replay
//! every change after a revision in order with no gaps, and compaction of old history.
//! The API server maps `metadata.resourceVersion` to the store revision, so these rules are what
//! make `resourceVersion`, list and watch behave exactly like Kubernetes.
//!
//! This crate owns the types, the closed error set and the trait. It holds no backend and must
//! not know any: backends (memory, redb, etcd) live in their own crates and are chosen only by
//! the binary. The shared conformance suite (`store-conformance`) defines what "etcd semantics"
//! means in executable form.

use std::fmt;
use std::num::NonZeroUsize;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;

/// The largest value a store accepts: etcd's default request limit (1.5 MiB).
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// A point in the store's history. The empty store is at revision 1; every successful write
/// moves the global revision up by exactly one. Revision 0 is never a state of the store (the
/// API server gives `resourceVersion: "0"` its own meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub u64);

impl Revision {
    /// The revision of a store that has never been written.
    pub const INITIAL: Revision = Revision(1);

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One key's value at some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    /// The revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key (the object's `resourceVersion`).
    pub mod_revision: Revision,
}

/// A change, as delivered by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was created or updated; `prev` is its value before this write, if it existed.
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// The key was deleted at `revision`; `prev` is the value it had.
    Delete { revision: Revision, prev: KeyValue },
}

impl Event {
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    pub fn key(&self) -> &Bytes {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// What a successful delete returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The revision of the delete itself.
    pub revision: Revision,
    /// The value the key had just before.
    pub prev: KeyValue,
}

/// How to read one page of a prefix list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read the state at this revision (`None`: the current one). Pass a page's
    /// [`ListPage::revision`] back to read the following pages from the same snapshot.
    pub revision: Option<Revision>,
    /// At most this many items (`None`: all).
    pub limit: Option<NonZeroUsize>,
    /// Start strictly after this key (the previous page's [`ListPage::next_after`]).
    pub start_after: Option<Bytes>,
}

/// One page of a prefix list, in ascending key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    pub items: Vec<KeyValue>,
    /// The revision the page was read at (the current revision unless one was asked for).
    pub revision: Revision,
    /// Set when more items remain: the key to pass as [`ListOptions::start_after`].
    pub next_after: Option<Bytes>,
}

/// The closed set of store errors. Backend details are boxed inside, never matched on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key:?} not found")]
    NotFound { key: Bytes },
    #[error("key {key:?} already exists")]
    AlreadyExists { key: Bytes },
    #[error("key {key:?} was modified: expected mod revision {expected}, found {actual}")]
    Conflict { key: Bytes, expected: Revision, actual: Revision },
    #[error("revision {requested} has been compacted (oldest readable is {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("store unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("store data is corrupt: {message}")]
    Corrupt { message: String },
}

impl StoreError {
    pub fn unavailable(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Unavailable { message: message.into(), source: Some(source.into()) }
    }

    /// Checks a value against [`MAX_VALUE_BYTES`].
    pub fn check_size(value: &[u8]) -> Result<()> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge { size: value.len(), limit: MAX_VALUE_BYTES });
        }
        Ok(())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stream of changes in revision order. It ends with `Err(Compacted)` when the consumer fell
/// so far behind that the history it still needed was compacted, and ends (`None`) when the
/// store shuts down.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// A revisioned key-value store with etcd semantics. See the crate docs and `store-conformance`.
///
/// Every write is acknowledged only when durable for the backend's durability model (a memory
/// backend is durable for the life of the process).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key`. Fails with [`StoreError::AlreadyExists`] if it exists.
    async fn create(&self, key: Bytes, value: Bytes) -> Result<KeyValue>;

    /// Reads `key` now, or as it was at `revision`.
    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>>;

    /// Replaces `key`'s value if its mod revision is `expected`
    /// ([`StoreError::Conflict`] otherwise, [`StoreError::NotFound`] if absent).
    async fn update(&self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key`, if `expected` is given only when its mod revision matches.
    async fn delete(&self, key: &[u8], expected: Option<Revision>) -> Result<Deleted>;

    /// Reads one page of the keys that start with `prefix`, consistent at one revision.
    async fn list(&self, prefix: &[u8], options: ListOptions) -> Result<ListPage>;

    /// Streams every change to keys under `prefix` with revision greater than `after`.
    async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream>;

    /// Drops history before `revision`: reads and watches from older revisions then fail with
    /// [`StoreError::Compacted`]. The state at `revision` itself stays readable.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the last committed write.
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable.
    async fn compacted_revision(&self) -> Result<Revision>;
}

/// The smallest key greater than every key with `prefix` (`None` when there is none), for range
/// scans over a prefix.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_cases() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"/a/", Some(b"/a0")),
            (b"a", Some(b"b")),
            (b"a\xff", Some(b"b")),
            (b"\xff\xff", None),
            (b"", None),
        ];
        for (prefix, expected) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), *expected, "prefix {prefix:?}");
        }
    }

    #[test]
    fn too_large_is_refused() {
        assert!(StoreError::check_size(&vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(matches!(
            StoreError::check_size(&vec![0; MAX_VALUE_BYTES + 1]),
            Err(StoreError::TooLarge { .. })
        ));
    }
}
