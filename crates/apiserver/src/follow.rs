//! In-process controllers' view of the store: every object under a prefix, first as listed,
//! then as it changes, re-listed when the watch breaks (so nothing is missed).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use store::{Event, ListOptions};

use crate::api::Api;

/// Calls `on_put` with every object stored under `prefix` (with its resourceVersion), then with
/// every object written there, until the server shuts down.
pub async fn puts<F, Fut>(api: Arc<Api>, prefix: &[u8], mut on_put: F)
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut shutdown = api.shutdown.clone();
    loop {
        let page = match api.store.list(prefix, ListOptions::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, prefix = %String::from_utf8_lossy(prefix), "listing failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for kv in &page.items {
            on_put(crate::codec::decode(&kv.value, kv.mod_revision.0)).await;
        }
        let Ok(mut stream) = api.store.watch(prefix, page.revision).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = stream.next() => match event {
                    Some(Ok(Event::Put { kv, .. })) => {
                        on_put(crate::codec::decode(&kv.value, kv.mod_revision.0)).await;
                    }
                    Some(Ok(Event::Delete { .. })) => {}
                    Some(Err(_)) => break,
                    None => return,
                },
            }
        }
    }
}
