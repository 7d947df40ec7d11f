//! The store contract in executable form: one suite that every backend (memory, redb, etcd)
//! runs unchanged.
//!
//! Each check is an async function over an `Arc<dyn Store>` that is fresh for that check. A
//! backend's integration tests expand [`conformance_tests!`] with a function that opens a fresh
//! store, which turns every check into its own `#[tokio::test]`. Checks use revisions relative
//! to the store's current one, never absolute numbers, and panic with a message on failure
//! (this is test code).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::sync::Arc;

use store::Store;

pub mod checks;

/// A freshly opened store, plus whatever must live as long as it (a temp dir, a child process).
pub struct Opened {
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl Opened {
    pub fn new(store: Arc<dyn Store>) -> Opened {
        Opened { store, _guard: Box::new(()) }
    }

    pub fn with_guard(store: Arc<dyn Store>, guard: impl Any + Send + Sync) -> Opened {
        Opened { store, _guard: Box::new(guard) }
    }
}

/// Expands to one `#[tokio::test]` per conformance check. `$open` is an `async fn() -> Opened`.
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@each $open;
            crud,
            revisions_are_consecutive,
            failed_writes_take_no_revision,
            get_at_past_revisions,
            future_revisions_are_refused,
            compare_and_swap_race,
            create_race,
            list_prefix,
            list_pagination,
            list_pagination_is_consistent_under_writes,
            watch_replays_missed_events,
            watch_filters_by_prefix,
            watch_has_no_gaps_under_concurrent_writes,
            watch_from_current_sees_only_new_events,
            compaction,
            compaction_keeps_latest_state,
            slow_watcher_learns_it_was_compacted,
            large_values,
            many_keys
        );
    };
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let opened = $open().await;
                $crate::checks::$check(&opened.store).await;
            }
        )*
    };
}
