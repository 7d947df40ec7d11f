//! Integration tests of the redb backend: the shared conformance suite, restarts, a property
//! test against the memory backend, and a crash test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod property;
mod restart;

use std::sync::Arc;

use store_conformance::{Opened, conformance_tests};
use store_redb::{RedbOptions, RedbStore};

async fn open() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        RedbStore::open(dir.path().join("store.redb"), RedbOptions::default()).expect("open");
    Opened::with_guard(Arc::new(store), dir)
}

conformance_tests!(open);
