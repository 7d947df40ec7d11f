//! `karmada bench apiserver`: the API server over HTTPS, measured from a client process
//! against a separate `karmada apiserver` process (so its RSS is its own). Every request is
//! made and its answer decoded in the chosen wire format: JSON, or Kubernetes protobuf as
//! client-go sends and asks for it (`--wire json --wire protobuf` compares them).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use futures::{AsyncBufReadExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::report::{Report, Samples};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// How long the create and get phases run, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent clients in the create and get phases.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Objects in the listed namespace.
    #[arg(long, default_value_t = 10_000)]
    list_objects: usize,
    /// Concurrent watchers for the delivery-latency phase.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Events written while the watchers listen.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// The server's store: `redb`, `memory`, `etcd` (a local etcd this benchmark starts) or
    /// `etcd:URL`. Repeat to compare several in one run (e.g. `--store redb --store etcd`).
    #[arg(long, default_value = "redb")]
    store: Vec<String>,
    /// Skip measuring the raw store (the apiserver/store ratio).
    #[arg(long)]
    skip_store: bool,
    /// The clients' wire format: `json`, or `protobuf` (client-go's). Repeat to compare.
    #[arg(long, default_value = "json")]
    wire: Vec<Wire>,
    #[arg(long)]
    json: bool,
}

fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    Json,
    Protobuf,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Json => "json",
            Wire::Protobuf => "protobuf",
        }
    }

    fn accept(self) -> &'static str {
        match self {
            Wire::Json => "application/json",
            Wire::Protobuf => "application/vnd.kubernetes.protobuf,application/json",
        }
    }

    fn encode(self, object: &Value) -> anyhow::Result<(Vec<u8>, &'static str)> {
        Ok(match self {
            Wire::Json => (serde_json::to_vec(object)?, "application/json"),
            Wire::Protobuf => (kube_protobuf::encode(object)?, kube_protobuf::MEDIA_TYPE),
        })
    }

    /// Decodes an answer as the client would, checking it came in this format.
    fn decode(self, content_type: &str, body: &[u8]) -> anyhow::Result<Value> {
        match self {
            Wire::Json => Ok(serde_json::from_slice(body)?),
            Wire::Protobuf => {
                anyhow::ensure!(
                    content_type.starts_with(kube_protobuf::MEDIA_TYPE),
                    "asked for protobuf, got {content_type}"
                );
                Ok(kube_protobuf::decode(body)?.object)
            }
        }
    }
}

fn configmap(name: &str, payload: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": payload}})
}

/// One request in `wire`: the answer's status, decoded object and size.
async fn call(
    client: &kube::Client,
    wire: Wire,
    method: http::Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value, usize)> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, wire.accept());
    let bytes = match body {
        Some(object) => {
            let (bytes, content_type) = wire.encode(object)?;
            request = request.header(http::header::CONTENT_TYPE, content_type);
            bytes
        }
        None => Vec::new(),
    };
    let response = client.send(request.body(kube::client::Body::from(bytes))?).await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    if status >= 300 {
        return Ok((status, Value::Null, body.len()));
    }
    Ok((status, wire.decode(&content_type, &body)?, body.len()))
}

async fn create(client: &kube::Client, wire: Wire, ns: &str, object: &Value) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let (status, _, _) = call(client, wire, http::Method::POST, &path, Some(object)).await?;
    anyhow::ensure!(status == 201, "create answered {status}");
    Ok(())
}

async fn ensure_namespace(client: &kube::Client, wire: Wire, name: &str) -> anyhow::Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, _, _) =
        call(client, wire, http::Method::POST, "/api/v1/namespaces", Some(&ns)).await?;
    anyhow::ensure!(matches!(status, 201 | 409), "creating namespace {name} answered {status}");
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let mut rates = Vec::new();
    for store in &args.store {
        for wire in &args.wire {
            let dir = tempfile::tempdir()?;
            // `etcd` alone: a one-member etcd on loopback, kept for this store's run.
            let (spec, etcd) = super::process::store_spec(store, dir.path()).await?;
            let name = if args.wire.len() > 1 {
                format!("{store}, {}", wire.name())
            } else {
                store.clone()
            };
            let rate = measure(&args, *wire, &name, &spec, dir.path(), &mut report).await?;
            drop(etcd);
            rates.push((name, rate));
        }
    }
    if let Some((first, base)) = rates.first() {
        for (store, rate) in &rates[1..] {
            report.add(
                &format!("apiserver({store})/apiserver({first})"),
                "create throughput ratio",
                rate / base,
                "x",
            );
        }
    }
    if !args.skip_store {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn store::Store> = Arc::new(store_redb::RedbStore::open(
            dir.path().join("s.redb"),
            store_redb::RedbOptions::default(),
        )?);
        let store_rate =
            super::store::concurrent_writes(&store, args.clients, 2048, Duration::from_secs(2))
                .await?;
        report.add(
            "store(redb)",
            &format!("create/s, {} writers, 2 KiB", args.clients),
            store_rate,
            "ops/s",
        );
        for (name, rate) in &rates {
            report.add(
                &format!("apiserver({name})/store(redb)"),
                "create throughput ratio",
                rate / store_rate,
                "x",
            );
        }
    }
    report.print(args.json)
}

/// Runs every phase against one apiserver process on `spec`; returns its creates/s.
async fn measure(
    args: &Args,
    wire: Wire,
    name: &str,
    spec: &str,
    dir: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<f64> {
    let subject = format!("apiserver({name})");
    let (server, kubeconfig) = super::process::apiserver(spec, dir)?;
    let client = crate::cli::kube_client(&kubeconfig, None).await?;
    let payload: String = "x".repeat(2048);
    let phase = Duration::from_secs_f64(args.seconds);

    // 1. Durable creates of 2 KiB ConfigMaps from many clients.
    ensure_namespace(&client, wire, "bench").await?;
    let deadline = Instant::now() + phase;
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                create(&client, wire, "bench", &configmap(&format!("c{c}-{n}"), &payload)).await?;
                samples.push(t.elapsed());
                n += 1;
            }
            anyhow::Ok((n, samples))
        }));
    }
    let mut created = 0;
    let mut per_client = Vec::new();
    let mut latency = Samples::default();
    for t in tasks {
        let (n, s) = t.await??;
        created += n;
        per_client.push(n.max(1));
        latency.extend(s);
    }
    let creates_per_sec = created as f64 / phase.as_secs_f64();
    report.add(
        &subject,
        &format!("create/s (2 KiB ConfigMap, {} clients)", args.clients),
        creates_per_sec,
        "ops/s",
    );
    report.latency(&subject, "create latency", &mut latency);

    // 2. Gets of the objects just created.
    let deadline = Instant::now() + phase;
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let per_client = per_client[c];
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let path = format!("/api/v1/namespaces/bench/configmaps/c{c}-{}", n % per_client);
                let (status, _, _) = call(&client, wire, http::Method::GET, &path, None).await?;
                anyhow::ensure!(status == 200, "get answered {status}");
                samples.push(t.elapsed());
                n += 1;
            }
            anyhow::Ok((n, samples))
        }));
    }
    let mut gets = 0;
    let mut latency = Samples::default();
    for t in tasks {
        let (n, s) = t.await??;
        gets += n;
        latency.extend(s);
    }
    report.add(
        &subject,
        &format!("get/s ({} clients)", args.clients),
        gets as f64 / phase.as_secs_f64(),
        "ops/s",
    );
    report.latency(&subject, "get latency", &mut latency);

    // 3. LIST of a namespace holding `list_objects` objects (raw bytes: server cost + transfer).
    ensure_namespace(&client, wire, "list").await?;
    let mut tasks = Vec::new();
    let small = "y".repeat(256);
    for c in 0..args.clients {
        let client = client.clone();
        let (n, clients, small) = (args.list_objects, args.clients, small.clone());
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(clients) {
                create(&client, wire, "list", &configmap(&format!("l{i}"), &small)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut lists = Samples::default();
    let mut decodes = Samples::default();
    let mut bytes = 0;
    for _ in 0..10 {
        let request = http::Request::get("/api/v1/namespaces/list/configmaps")
            .header(http::header::ACCEPT, wire.accept())
            .body(kube::client::Body::empty())?;
        let t = Instant::now();
        let response = client.send(request).await?;
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await?.to_bytes();
        lists.push(t.elapsed());
        let t = Instant::now();
        let list = wire.decode(&content_type, &body)?;
        decodes.push(t.elapsed());
        anyhow::ensure!(
            list["items"].as_array().map(Vec::len) == Some(args.list_objects),
            "the list lacks items"
        );
        bytes = body.len();
    }
    let metric = format!("LIST of {} objects", args.list_objects);
    for p in [50.0, 99.0] {
        report.add(
            &subject,
            &format!("{metric} p{p}"),
            lists.percentile(p).as_secs_f64() * 1e3,
            "ms",
        );
    }
    report.add(
        &subject,
        &format!("{metric}, client decode p50"),
        decodes.percentile(50.0).as_secs_f64() * 1e3,
        "ms",
    );
    report.add(&subject, &format!("{metric}, response size"), bytes as f64 / 1024.0, "KiB");

    // 4. Watch delivery latency with many concurrent watchers.
    ensure_namespace(&client, wire, "watch").await?;
    let received = Arc::new(parking_lot_free::Collector::default());
    let mut watchers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.watchers);
    // Watchers come from many clients (a connection carries a bounded number of streams, and
    // the writes below need theirs), 250 per connection.
    let mut watch_clients = Vec::new();
    for _ in 0..args.watchers.div_ceil(250) {
        watch_clients.push(crate::cli::kube_client(&kubeconfig, None).await?);
    }
    for w in 0..args.watchers {
        let client = watch_clients[w / 250].clone();
        let received = Arc::clone(&received);
        let ready = ready_tx.clone();
        let expected = args.events;
        watchers.push(tokio::spawn(async move {
            let path = "/api/v1/namespaces/watch/configmaps?watch=true&resourceVersion=1&timeoutSeconds=120";
            let mut seen = 0;
            let mut record = |object: &Value| {
                if let Some(sent) = object.pointer("/data/sent").and_then(Value::as_str).and_then(|s| s.parse::<u128>().ok()) {
                    received.push(Duration::from_micros(now_micros().saturating_sub(sent) as u64));
                    seen += 1;
                }
                seen == expected
            };
            match wire {
                Wire::Json => {
                    let stream = client.request_stream(http::Request::get(path).body(Vec::new())?).await?;
                    let _ = ready.send(()).await;
                    let mut lines = stream.lines();
                    while let Some(line) = lines.next().await {
                        let event: Value = serde_json::from_str(&line?)?;
                        if record(&event["object"]) {
                            break;
                        }
                    }
                }
                Wire::Protobuf => {
                    let request = http::Request::get(path)
                        .header(http::header::ACCEPT, wire.accept())
                        .body(kube::client::Body::empty())?;
                    let response = client.send(request).await?;
                    let _ = ready.send(()).await;
                    let mut body = response.into_body();
                    let mut buffer = Vec::new();
                    'frames: while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame?.into_data() {
                            buffer.extend_from_slice(&data);
                        }
                        let (events, rest) = kube_protobuf::read_watch_frames(&buffer)?;
                        let rest = rest.to_vec();
                        for (_, envelope) in events {
                            if record(&kube_protobuf::decode(&envelope)?.object) {
                                break 'frames;
                            }
                        }
                        buffer = rest;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    drop(ready_tx);
    for _ in 0..args.watchers {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..args.events {
        let mut cm = configmap(&format!("w{i}"), "v");
        cm["data"]["sent"] = json!(now_micros().to_string());
        create(&client, wire, "watch", &cm).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let watch_deadline = Instant::now() + Duration::from_secs(60);
    for w in watchers {
        let left = watch_deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, w).await;
    }
    let mut delivered = received.take();
    let expected = args.events * args.watchers;
    report.add(
        &subject,
        &format!("watch events delivered ({} watchers)", args.watchers),
        delivered.len() as f64,
        "events",
    );
    report.add(&subject, "watch events expected", expected as f64, "events");
    for p in [50.0, 99.0] {
        report.add(
            &subject,
            &format!("watch delivery p{p}"),
            delivered.percentile(p).as_secs_f64() * 1e3,
            "ms",
        );
    }

    // 5. Memory: server RSS against the encoded size of what it stores.
    let rss = server.rss();
    let stored_objects = created + args.list_objects + args.events;
    let encoded = (created * (payload.len() + 250)
        + args.list_objects * (small.len() + 250)
        + args.events * 300) as f64;
    report.add(&subject, "stored objects", stored_objects as f64, "objects");
    report.add(
        &subject,
        "encoded size of stored objects (approx.)",
        encoded / (1 << 20) as f64,
        "MiB",
    );
    report.add(&subject, "server RSS", rss as f64 / (1 << 20) as f64, "MiB");
    report.add(
        &subject,
        "RSS budget (2 x encoded + 100 MiB)",
        (2.0 * encoded + 100.0 * (1 << 20) as f64) / (1 << 20) as f64,
        "MiB",
    );
    drop(server);
    Ok(creates_per_sec)
}

/// A tiny thread-safe sample collector.
mod parking_lot_free {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::Samples;

    #[derive(Default)]
    pub struct Collector(Mutex<Samples>);

    impl Collector {
        pub fn push(&self, d: Duration) {
            if let Ok(mut s) = self.0.lock() {
                s.push(d);
            }
        }

        pub fn take(&self) -> Samples {
            self.0.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
        }
    }
}
