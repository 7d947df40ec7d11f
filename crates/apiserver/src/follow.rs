//! In-process controllers' view of the store: every object under a prefix, first as listed,
//! then as it changes, re-listed when the watch breaks (so nothing is missed).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use store::{Event, ListOptions};

use crate::storage::Storage;

/// What happens under a followed prefix.
pub enum Change {
    /// The prefix is listed (again): what was known of it is replaced by the puts that follow.
    Relisting,
    /// An object as stored (listed or written), with its resourceVersion.
    Put(Value),
    /// An object as it was before it was deleted.
    Deleted(Value),
}

/// Every object stored under `prefix` and the revision the list was read at (all pages).
pub async fn list_all(
    api: &Storage,
    prefix: &[u8],
) -> store::Result<(Vec<store::KeyValue>, store::Revision)> {
    let mut options = ListOptions::default();
    let mut items = Vec::new();
    loop {
        let page = api.store.list(prefix, options.clone()).await?;
        items.extend(page.items);
        match page.next_after {
            Some(after) => {
                options.start_after = Some(after);
                options.revision = Some(page.revision);
            }
            None => return Ok((items, page.revision)),
        }
    }
}

/// Calls `on_change` with every object stored under `prefix`, then with every change there,
/// listing again whenever the watch breaks, until the server shuts down. A returned future is
/// awaited before the next change.
pub async fn changes<F, Fut>(api: Arc<Storage>, prefix: &[u8], mut on_change: F)
where
    F: FnMut(Change) -> Option<Fut>,
    Fut: Future<Output = ()>,
{
    let mut shutdown = api.shutdown.clone();
    loop {
        let (items, revision) = match list_all(&api, prefix).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, prefix = %String::from_utf8_lossy(prefix), "listing failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Some(f) = on_change(Change::Relisting) {
            f.await;
        }
        for kv in &items {
            if let Some(f) =
                on_change(Change::Put(crate::codec::decode(&kv.value, kv.mod_revision.0)))
            {
                f.await;
            }
        }
        let Ok(mut stream) = api.store.watch(prefix, revision).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            let change = tokio::select! {
                _ = shutdown.changed() => return,
                event = stream.next() => match event {
                    Some(Ok(Event::Put { kv, .. })) => {
                        Change::Put(crate::codec::decode(&kv.value, kv.mod_revision.0))
                    }
                    Some(Ok(Event::Delete { prev, .. })) => {
                        Change::Deleted(crate::codec::decode(&prev.value, prev.mod_revision.0))
                    }
                    Some(Err(_)) => break,
                    None => return,
                },
            };
            if let Some(f) = on_change(change) {
                f.await;
            }
        }
    }
}

/// Calls `on_put` with every object stored under `prefix` (with its resourceVersion), then with
/// every object written there, until the server shuts down.
pub async fn puts<F, Fut>(api: Arc<Storage>, prefix: &[u8], mut on_put: F)
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = ()>,
{
    changes(api, prefix, |change| match change {
        Change::Put(object) => Some(on_put(object)),
        Change::Relisting | Change::Deleted(_) => None,
    })
    .await;
}
