//! `karmada bench store`: raw store throughput and latency, per backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args as ClapArgs, ValueEnum};
use store::{ListOptions, Store};
use store_memory::MemoryStore;
use store_redb::{RedbOptions, RedbStore};

use super::report::{Report, Samples};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Redb,
    Memory,
    All,
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Which backend to measure.
    #[arg(long, value_enum, default_value_t = Backend::All)]
    backend: Backend,
    /// Directory for the redb file (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// How long each write phase runs, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Concurrent writers in the group-commit phase.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Keys under the listed prefix.
    #[arg(long, default_value_t = 10_000)]
    list_keys: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let backends: &[Backend] = match args.backend {
        Backend::All => &[Backend::Redb, Backend::Memory],
        Backend::Redb => &[Backend::Redb],
        Backend::Memory => &[Backend::Memory],
    };
    for backend in backends {
        let temp = tempfile::tempdir()?;
        let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
        let (name, store): (&str, Arc<dyn Store>) = match backend {
            Backend::Memory => ("memory", Arc::new(MemoryStore::default())),
            _ => {
                std::fs::create_dir_all(&dir)?;
                let path = dir.join("bench-store.redb");
                let _ = std::fs::remove_file(&path);
                ("redb", Arc::new(RedbStore::open(&path, RedbOptions::default())?))
            }
        };
        measure(name, store, &args, &mut report).await?;
    }
    report.print(args.json)
}

/// Runs every phase against `store`, adding rows to `report`.
pub async fn measure(
    name: &str,
    store: Arc<dyn Store>,
    args: &Args,
    report: &mut Report,
) -> anyhow::Result<()> {
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let phase = Duration::from_secs_f64(args.seconds);

    // 1. One writer: every write waits for its own durable commit.
    let (count, mut latency) = write_phase(&store, "/bench/single/", 1, &value, phase).await?;
    let single = count as f64 / phase.as_secs_f64();
    report.add(name, "create/s, 1 writer", single, "ops/s");
    report.latency(name, "create latency, 1 writer", &mut latency);

    // 2. Many writers: group commit.
    let (count, mut latency) =
        write_phase(&store, "/bench/concurrent/", args.writers, &value, phase).await?;
    let concurrent = count as f64 / phase.as_secs_f64();
    report.add(name, &format!("create/s, {} writers", args.writers), concurrent, "ops/s");
    report.latency(name, &format!("create latency, {} writers", args.writers), &mut latency);

    // 3. Gets and lists over a prefix of `list_keys` keys.
    fill(&store, "/bench/list/", args.list_keys, &value, args.writers).await?;
    let mut gets = Samples::default();
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < phase.min(Duration::from_secs(2)) {
        let key = format!("/bench/list/{:08}", (n * 7919) % args.list_keys);
        let t = Instant::now();
        let kv = store.get(key.as_bytes(), None).await?;
        gets.push(t.elapsed());
        anyhow::ensure!(kv.is_some(), "bench key {key} missing");
        n += 1;
    }
    report.add(name, "get/s, 1 reader", n as f64 / started.elapsed().as_secs_f64(), "ops/s");
    report.latency(name, "get latency", &mut gets);

    let mut lists = Samples::default();
    for _ in 0..20 {
        let t = Instant::now();
        let page = store.list(b"/bench/list/", ListOptions::default()).await?;
        lists.push(t.elapsed());
        anyhow::ensure!(page.items.len() == args.list_keys, "list returned {}", page.items.len());
    }
    let metric = format!("list of {} keys", args.list_keys);
    for p in [50.0, 99.0] {
        report.add(name, &format!("{metric} p{p}"), lists.percentile(p).as_secs_f64() * 1e3, "ms");
    }
    Ok(())
}

/// Creates/s of `value_size`-byte values from `writers` concurrent writers over `duration`.
pub async fn concurrent_writes(
    store: &Arc<dyn Store>,
    writers: usize,
    value_size: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let value = Bytes::from(vec![b'v'; value_size]);
    let (count, _) = write_phase(store, "/bench/ratio/", writers, &value, duration).await?;
    Ok(count as f64 / duration.as_secs_f64())
}

async fn write_phase(
    store: &Arc<dyn Store>,
    prefix: &str,
    writers: usize,
    value: &Bytes,
    phase: Duration,
) -> anyhow::Result<(usize, Samples)> {
    let deadline = Instant::now() + phase;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(store);
        let value = value.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let key = Bytes::from(format!("{prefix}{w:04}/{i:08}"));
                let t = Instant::now();
                store.create(key, value.clone()).await?;
                samples.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok((i, samples))
        }));
    }
    let mut count = 0;
    let mut all = Samples::default();
    for task in tasks {
        let (n, samples) = task.await??;
        count += n;
        all.extend(samples);
    }
    Ok((count, all))
}

async fn fill(
    store: &Arc<dyn Store>,
    prefix: &str,
    keys: usize,
    value: &Bytes,
    writers: usize,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    let writers = writers.max(1);
    for w in 0..writers {
        let store = Arc::clone(store);
        let value = value.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (w..keys).step_by(writers) {
                store.create(Bytes::from(format!("{prefix}{i:08}")), value.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
