//! The shared conformance suite on the memory backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use store_conformance::{Opened, conformance_tests};
use store_memory::MemoryStore;

async fn open() -> Opened {
    Opened::new(Arc::new(MemoryStore::default()))
}

conformance_tests!(open);
