//! Test helper for the crash test: writes to a redb store forever from many tasks and prints one
//! line per acknowledged write, so that a test can SIGKILL it at a random moment and then check
//! that every acknowledged write survived.
//!
//! Usage: `redb-crash-writer PATH`. Output lines: `create KEY REVISION` and
//! `update KEY VALUE REVISION`.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use store::{Store, StoreError};
use store_redb::{RedbOptions, RedbStore};

const TASKS: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::args().nth(1).ok_or("usage: redb-crash-writer PATH")?;
    let store = Arc::new(RedbStore::open(&path, RedbOptions::default())?);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move { write_forever(&*store, task).await }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(())
    })
}

async fn write_forever(
    store: &dyn Store,
    task: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let counter = Bytes::from(format!("/crash/counter/{task}"));
    let mut current = match store.get(&counter, None).await? {
        Some(kv) => kv,
        None => store.create(counter.clone(), Bytes::from_static(b"0")).await?,
    };
    let base: u64 = std::str::from_utf8(&current.value)?.parse()?;
    for i in 1.. {
        let key = format!("/crash/keys/{task}/{}", base + i);
        match store.create(Bytes::from(key.clone()), Bytes::from(vec![b'x'; 512])).await {
            Ok(kv) => ack(&format!("create {key} {}", kv.mod_revision))?,
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let value = base + i;
        current = store
            .update(counter.clone(), Bytes::from(value.to_string()), current.mod_revision)
            .await?;
        ack(&format!(
            "update {} {value} {}",
            String::from_utf8_lossy(&counter),
            current.mod_revision
        ))?;
    }
    Ok(())
}

fn ack(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
