//! The storage format: how the API server lays objects out in its store (keys under
//! `/registry/`, values as JSON, Secrets sealed), versioned so that a newer binary opens what
//! an older one wrote — a redb data dir or an etcd prefix alike — and an older binary refuses,
//! with a clear message, what a newer one wrote rather than misreading it.
//!
//! The version lives in one key outside `/registry/` (no resource lists it). A store without
//! it was written before the key existed, in format 1 (which is also how an empty store
//! starts). Opening an older format runs the migrations from it to [`CURRENT`] in order, then
//! records the new version; none has been needed yet.

use bytes::Bytes;
use store::{Store, StoreError};

/// The key holding the format version.
pub const KEY: &str = "/karmada-rs/storage-format";

/// The format this binary writes.
pub const CURRENT: u32 = 1;

/// The format of a store written before [`KEY`] existed.
const UNMARKED: u32 = 1;

/// Rewrites a store from format `n` to `n + 1`, by `n` (index `n - 1`).
type Migration = fn(&dyn Store) -> futures_util::future::BoxFuture<'_, Result<(), StoreError>>;
const MIGRATIONS: [Migration; (CURRENT - 1) as usize] = [];

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "the store was written in storage format {found} by a newer karmada-rs; this binary reads formats 1 to {CURRENT}: run the newer binary, or restore a backup taken before the upgrade"
    )]
    Newer { found: u32 },
    #[error("the storage format key {KEY} holds {value:?}, not a format version")]
    Unreadable { value: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn encode(version: u32) -> Bytes {
    Bytes::from(serde_json::json!({ "format": version }).to_string())
}

fn decode(value: &[u8]) -> Result<u32, FormatError> {
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v.get("format")?.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| FormatError::Unreadable { value: String::from_utf8_lossy(value).into() })
}

/// Checks the store's format at startup: records [`CURRENT`] in a new store, migrates an older
/// one, refuses a newer one. Returns the format found (before any migration). Safe when several
/// API servers start on one store at once: each migration step is recorded with a
/// compare-and-swap, so one of them runs it.
pub async fn open(store: &dyn Store) -> Result<u32, FormatError> {
    let found = loop {
        match store.get(KEY.as_bytes(), None).await? {
            Some(kv) => break (decode(&kv.value)?, kv.mod_revision),
            None => {
                match store.create(Bytes::from_static(KEY.as_bytes()), encode(UNMARKED)).await {
                    Ok(kv) => break (UNMARKED, kv.mod_revision),
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    };
    let (first, mut revision) = found;
    if first > CURRENT {
        return Err(FormatError::Newer { found: first });
    }
    let mut version = first;
    while version < CURRENT {
        MIGRATIONS[(version - 1) as usize](store).await?;
        match store.update(Bytes::from_static(KEY.as_bytes()), encode(version + 1), revision).await
        {
            Ok(kv) => revision = kv.mod_revision,
            // Another API server migrated this step meanwhile: read where it got to.
            Err(StoreError::Conflict { .. }) => {
                let kv = store
                    .get(KEY.as_bytes(), None)
                    .await?
                    .ok_or(StoreError::NotFound { key: Bytes::from_static(KEY.as_bytes()) })?;
                revision = kv.mod_revision;
                version = decode(&kv.value)?;
                if version > CURRENT {
                    return Err(FormatError::Newer { found: version });
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        version += 1;
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_store_is_marked_with_the_current_format() {
        let store = store_memory::MemoryStore::default();
        assert_eq!(open(&store).await.unwrap(), CURRENT);
        let kv = store.get(KEY.as_bytes(), None).await.unwrap().unwrap();
        assert_eq!(decode(&kv.value).unwrap(), CURRENT);
        // Opening again finds it and changes nothing.
        assert_eq!(open(&store).await.unwrap(), CURRENT);
        let again = store.get(KEY.as_bytes(), None).await.unwrap().unwrap();
        assert_eq!(again.mod_revision, kv.mod_revision);
    }

    #[tokio::test]
    async fn a_store_from_before_the_marker_is_format_one() {
        let store = store_memory::MemoryStore::default();
        store
            .create(Bytes::from_static(b"/registry/core/namespaces/legacy"), Bytes::from("{}"))
            .await
            .unwrap();
        assert_eq!(open(&store).await.unwrap(), 1);
        let kv = store.get(KEY.as_bytes(), None).await.unwrap().unwrap();
        assert_eq!(decode(&kv.value).unwrap(), CURRENT);
    }

    #[tokio::test]
    async fn a_newer_format_is_refused_with_what_to_do() {
        let store = store_memory::MemoryStore::default();
        store.create(Bytes::from_static(KEY.as_bytes()), encode(CURRENT + 1)).await.unwrap();
        let error = open(&store).await.unwrap_err();
        assert!(matches!(error, FormatError::Newer { found } if found == CURRENT + 1));
        let message = error.to_string();
        assert!(message.contains("newer karmada-rs"), "{message}");
        assert!(message.contains(&format!("formats 1 to {CURRENT}")), "{message}");
    }

    #[tokio::test]
    async fn garbage_in_the_format_key_is_refused() {
        let store = store_memory::MemoryStore::default();
        store.create(Bytes::from_static(KEY.as_bytes()), Bytes::from("seven")).await.unwrap();
        let error = open(&store).await.unwrap_err();
        assert!(error.to_string().contains("not a format version"), "{error}");
    }
}
