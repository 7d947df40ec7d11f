//! Integration tests of the etcd backend against a real etcd started per test on free loopback
//! ports: the shared conformance suite, durability across an etcd restart, and TLS with client
//! certificates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod restart;

use std::sync::Arc;
use std::time::Duration;

use store_conformance::{Opened, conformance_tests};
use store_etcd::server::{self, EtcdServer};
use store_etcd::{EtcdOptions, EtcdStore};

/// A fresh one-node etcd in a temp dir. Panics loudly when etcd is not installed: CI installs
/// Debian's etcd-server package (`.ci/run`).
pub fn start_etcd(dir: &std::path::Path) -> EtcdServer {
    assert!(
        server::binary().is_some(),
        "etcd is not installed: `apt-get install etcd-server` (or set ETCD_BIN); .ci/run does this"
    );
    let mut etcd = EtcdServer::start_single(dir).expect("start etcd");
    etcd.wait_listening(Duration::from_secs(30)).expect("etcd listens");
    etcd
}

pub fn options(etcd: &EtcdServer) -> EtcdOptions {
    let mut options = EtcdOptions::new(&etcd.client_url);
    options.compaction_interval = None;
    options
}

pub async fn connect(etcd: &EtcdServer) -> EtcdStore {
    server::wait_ready(&options(etcd), Duration::from_secs(30)).await.expect("etcd ready");
    EtcdStore::connect(options(etcd)).await.expect("connect")
}

async fn open() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let etcd = start_etcd(dir.path());
    let store = connect(&etcd).await;
    Opened::with_guard(Arc::new(store), (etcd, dir))
}

conformance_tests!(open);
