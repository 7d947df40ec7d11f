//! The etcd backend of the store contract, for a control plane that outgrows one machine.
//!
//! Everything maps onto etcd's own MVCC model, so several API servers on one etcd agree on every
//! revision: store revisions *are* etcd revisions, compare-and-swap is an etcd transaction on
//! the key's `mod_revision` (and `create_revision` for existence), list pages read at one pinned
//! revision, and watches resume from a revision with etcd's watch, whose compaction
//! cancellation maps to [`StoreError::Compacted`]. Reads are linearizable (etcd's default), so a
//! list on one API server right after a write acknowledged by another sees that write.
//!
//! Keys are stored under an optional prefix (like kube-apiserver's `--etcd-prefix`), so one etcd
//! can hold several control planes. Connections may use TLS with a client certificate.
//! History is compacted in the background: every interval, up to the revision seen one interval
//! before (so anything younger than one interval stays watchable); several API servers doing
//! this on one etcd is harmless.
//!
//! [`server`] starts local etcd processes (tests, `karmada up --ha`). This crate knows nothing
//! of HTTP or Kubernetes.

pub mod server;

/// etcd's v3 gRPC API, generated once and committed (building needs no `protoc`).
#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
pub mod pb {
    pub mod mvccpb {
        include!("pb/mvccpb.rs");
    }
    pub mod authpb {
        include!("pb/authpb.rs");
    }
    pub mod etcdserverpb {
        include!("pb/etcdserverpb.rs");
    }
}

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::etcdserverpb::kv_client::KvClient;
use pb::etcdserverpb::watch_client::WatchClient;
use pb::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest,
    WatchResponse, request_op, response_op, watch_request,
};
use pb::mvccpb;
use store::{
    Deleted, Event, KeyValue, ListOptions, ListPage, Result, Revision, Store, StoreError,
    WatchStream,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The largest gRPC message we accept from etcd (a page of large values, a watch batch).
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How many keys one range request of an unlimited list reads.
const LIST_CHUNK: usize = 500;

/// TLS material for talking to etcd, as PEM.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificate (`None`: the system roots are not loaded,
    /// so this is normally set).
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key, for etcd's `--client-cert-auth`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify etcd's certificate against (default: the endpoint's host).
    pub domain: Option<String>,
}

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port`, one per etcd member.
    pub endpoints: Vec<String>,
    /// Prepended to every key (e.g. `/karmada`); keys come back without it.
    pub prefix: Vec<u8>,
    pub tls: Option<EtcdTls>,
    /// Compact history every this often (`None`: never; compaction is then someone else's job).
    pub compaction_interval: Option<Duration>,
    /// Gives up on connecting after this long.
    pub connect_timeout: Duration,
}

impl EtcdOptions {
    /// Options for a comma-separated endpoint list, with the defaults: no prefix, no TLS,
    /// compaction every 5 minutes (kube-apiserver's default).
    pub fn new(endpoints: &str) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            prefix: Vec::new(),
            tls: None,
            compaction_interval: Some(Duration::from_secs(300)),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`Store`] on an etcd cluster.
pub struct EtcdStore {
    /// One channel to the members (balanced over the endpoints); clients over it are cheap.
    channel: Channel,
    prefix: Arc<[u8]>,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").field("prefix", &String::from_utf8_lossy(&self.prefix)).finish()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(compactor) = self.compactor.take() {
            compactor.abort();
        }
    }
}

fn unavailable(context: &'static str) -> impl FnOnce(tonic::Status) -> StoreError {
    move |e| StoreError::unavailable(format!("etcd: {context}"), e)
}

/// What an etcd error means for the store contract.
enum ErrorKind {
    Compacted,
    Future,
    TooLarge,
    Other,
}

fn classify(status: &tonic::Status) -> ErrorKind {
    let message = status.message();
    if message.contains("required revision has been compacted") {
        ErrorKind::Compacted
    } else if message.contains("required revision is a future revision") {
        ErrorKind::Future
    } else if message.contains("too large") || message.contains("larger than max") {
        ErrorKind::TooLarge
    } else {
        ErrorKind::Other
    }
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers.
    pub async fn connect(options: EtcdOptions) -> Result<EtcdStore> {
        if options.endpoints.is_empty() {
            return Err(StoreError::Unavailable {
                message: "etcd: no endpoints given".into(),
                source: None,
            });
        }
        let tls = match &options.tls {
            None => None,
            Some(tls) => {
                let mut config = ClientTlsConfig::new();
                if let Some(ca) = &tls.ca_pem {
                    config = config.ca_certificate(tonic::transport::Certificate::from_pem(ca));
                }
                if let Some((cert, key)) = &tls.identity {
                    config = config.identity(tonic::transport::Identity::from_pem(cert, key));
                }
                if let Some(domain) = &tls.domain {
                    config = config.domain_name(domain.clone());
                }
                Some(config)
            }
        };
        let mut endpoints = Vec::new();
        for url in &options.endpoints {
            let mut endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| StoreError::unavailable(format!("etcd: bad endpoint {url}"), e))?
                .connect_timeout(options.connect_timeout)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .map_err(|e| StoreError::unavailable("etcd: TLS configuration", e))?;
            }
            endpoints.push(endpoint);
        }
        let client = Channel::balance_list(endpoints.into_iter());
        let mut store =
            EtcdStore { channel: client, prefix: options.prefix.into(), compactor: None };
        // Connecting is lazy: make one request so that a wrong address fails here.
        tokio::time::timeout(options.connect_timeout, store.current_revision()).await.map_err(
            |_| StoreError::Unavailable {
                message: format!(
                    "etcd: {} did not answer within {:?}",
                    options.endpoints.join(","),
                    options.connect_timeout
                ),
                source: None,
            },
        )??;
        if let Some(interval) = options.compaction_interval {
            store.compactor = Some(tokio::spawn(compact_periodically(
                EtcdStore {
                    channel: store.channel.clone(),
                    prefix: store.prefix.clone(),
                    compactor: None,
                },
                interval,
            )));
        }
        Ok(store)
    }

    fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn watch_client(&self) -> WatchClient<Channel> {
        WatchClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Runs one etcd request, retrying (bounded, about 3 s) while etcd is unreachable: always
    /// for reads, and for writes only when the request provably never left (the connection
    /// was refused), so a retried write can never apply twice. With several endpoints this
    /// moves a request off a dead member.
    async fn call<T>(
        &self,
        read: bool,
        request: impl Fn(KvClient<Channel>) -> BoxFuture<T>,
    ) -> Result<T, tonic::Status> {
        let mut delay = Duration::from_millis(20);
        let mut attempt = 0;
        loop {
            match request(self.kv()).await {
                Err(e) if attempt < 8 && retryable(&e, read) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                outcome => return outcome,
            }
        }
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, tonic::Status> {
        self.call(true, |mut kv| {
            let request = request.clone();
            Box::pin(async move { kv.range(request).await.map(tonic::Response::into_inner) })
        })
        .await
    }

    async fn txn(&self, txn: TxnRequest) -> Result<TxnResponse, tonic::Status> {
        self.call(false, |mut kv| {
            let txn = txn.clone();
            Box::pin(async move { kv.txn(txn).await.map(tonic::Response::into_inner) })
        })
        .await
    }

    /// A count-only read of nothing (`\0`) at `revision` (`None`: the current one): cheap, and
    /// it fails exactly when that revision is compacted or in the future.
    fn probe(&self, revision: Option<Revision>) -> RangeRequest {
        RangeRequest {
            key: self.full(b"\0"),
            count_only: true,
            revision: revision.map_or(0, |r| r.0 as i64),
            ..Default::default()
        }
    }

    /// The etcd key for a store key.
    fn full(&self, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key);
        full
    }

    fn kv_from(&self, kv: &mvccpb::KeyValue) -> KeyValue {
        convert(&self.prefix, kv)
    }

    /// Whether the state at `revision` can still be read (`false`: compacted).
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        match self.range(self.probe(Some(revision))).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(classify(&e), ErrorKind::Compacted) => Ok(false),
            Err(e) => Err(unavailable("read failed")(e)),
        }
    }

    /// Turns a read error into the store's terms, learning the numbers the error lacks.
    async fn read_error(&self, e: tonic::Status, requested: Option<Revision>) -> StoreError {
        match (classify(&e), requested) {
            (ErrorKind::Compacted, Some(requested)) => match self.compacted_revision().await {
                Ok(compacted) => StoreError::Compacted { requested, compacted },
                Err(e) => e,
            },
            (ErrorKind::Future, Some(requested)) => match self.current_revision().await {
                Ok(current) => StoreError::FutureRevision { requested, current },
                Err(e) => e,
            },
            _ => unavailable("read failed")(e),
        }
    }

    /// Why a guarded write did not apply: the key's current state.
    async fn write_refused(&self, key: Bytes, expected: Option<Revision>) -> Result<StoreError> {
        let current = self.get(&key, None).await?;
        Ok(match (current, expected) {
            (None, _) => StoreError::NotFound { key },
            (Some(kv), Some(expected)) => {
                StoreError::Conflict { key, expected, actual: kv.mod_revision }
            }
            (Some(_), None) => StoreError::AlreadyExists { key },
        })
    }
}

type BoxFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tonic::Status>> + Send>>;

/// Whether a failed request may be sent again (see [`EtcdStore::call`]): reads whenever etcd
/// was unavailable, writes only when the connection could not even be made.
fn retryable(status: &tonic::Status, read: bool) -> bool {
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    if read {
        return true;
    }
    // The transport's error chain says whether the request never left.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut text = status.message().to_lowercase();
    while let Some(e) = source {
        text.push(' ');
        text.push_str(&e.to_string().to_lowercase());
        source = e.source();
    }
    text.contains("connect error") || text.contains("connection refused")
}

fn convert(prefix: &[u8], kv: &mvccpb::KeyValue) -> KeyValue {
    let key = kv.key.strip_prefix(prefix).unwrap_or(&kv.key);
    KeyValue {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(&kv.value),
        create_revision: Revision(kv.create_revision as u64),
        mod_revision: Revision(kv.mod_revision as u64),
    }
}

fn header_revision(header: Option<&ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| Revision(h.revision as u64))
        .ok_or_else(|| StoreError::Corrupt { message: "etcd response without a header".into() })
}

/// `key`'s create (or mod) revision compared with `revision`.
fn compare(key: &[u8], target: CompareTarget, result: CompareResult, revision: i64) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(match target {
            CompareTarget::Create => TargetUnion::CreateRevision(revision),
            _ => TargetUnion::ModRevision(revision),
        }),
    }
}

fn write_error(e: tonic::Status, size: usize) -> StoreError {
    match classify(&e) {
        ErrorKind::TooLarge => StoreError::TooLarge { size, limit: store::MAX_VALUE_BYTES },
        _ => unavailable("write failed")(e),
    }
}

/// The end of the etcd key range covering every key with `prefix` (etcd's "\0" means "to the
/// end of the keyspace").
fn range_end(prefix: &[u8]) -> Vec<u8> {
    store::prefix_end(prefix).unwrap_or_else(|| vec![0])
}

async fn compact_periodically(store: EtcdStore, interval: Duration) {
    let mut previous: Option<Revision> = None;
    loop {
        tokio::time::sleep(interval).await;
        let current = match store.current_revision().await {
            Ok(current) => current,
            Err(e) => {
                tracing::warn!(error = %e, "etcd compaction: cannot read the revision");
                continue;
            }
        };
        if let Some(target) = previous {
            match store.compact(target).await {
                Ok(()) => tracing::debug!(%target, "compacted etcd history"),
                // Another API server compacted as far or further: fine.
                Err(StoreError::Compacted { .. }) => {}
                Err(e) => tracing::warn!(error = %e, %target, "etcd compaction failed"),
            }
        }
        previous = Some(current);
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn create(&self, key: Bytes, value: Bytes) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        let full = self.full(&key);
        let txn = TxnRequest {
            compare: vec![compare(&full, CompareTarget::Create, CompareResult::Equal, 0)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: full,
                    value: value.to_vec(),
                    ..Default::default()
                })),
            }],
            failure: Vec::new(),
        };
        let response = self.txn(txn).await.map_err(|e| write_error(e, value.len()))?;
        if !response.succeeded {
            return Err(StoreError::AlreadyExists { key });
        }
        let revision = header_revision(response.header.as_ref())?;
        Ok(KeyValue { key, value, create_revision: revision, mod_revision: revision })
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let request = RangeRequest {
            key: self.full(key),
            revision: revision.map_or(0, |r| r.0 as i64),
            ..Default::default()
        };
        match self.range(request).await {
            Ok(response) => Ok(response.kvs.first().map(|kv| self.kv_from(kv))),
            Err(e) => Err(self.read_error(e, revision).await),
        }
    }

    async fn update(&self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue> {
        StoreError::check_size(&value)?;
        let full = self.full(&key);
        let txn = TxnRequest {
            compare: vec![
                compare(&full, CompareTarget::Create, CompareResult::Greater, 0),
                compare(&full, CompareTarget::Mod, CompareResult::Equal, expected.0 as i64),
            ],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: full,
                    value: value.to_vec(),
                    prev_kv: true,
                    ..Default::default()
                })),
            }],
            failure: Vec::new(),
        };
        let response = self.txn(txn).await.map_err(|e| write_error(e, value.len()))?;
        if !response.succeeded {
            return Err(self.write_refused(key, Some(expected)).await?);
        }
        let revision = header_revision(response.header.as_ref())?;
        let create_revision = response
            .responses
            .iter()
            .find_map(|op| match &op.response {
                Some(response_op::Response::ResponsePut(put)) => {
                    put.prev_kv.as_ref().map(|kv| kv.create_revision)
                }
                _ => None,
            })
            .ok_or_else(|| StoreError::Corrupt {
                message: "etcd updated a key without returning its previous value".into(),
            })?;
        Ok(KeyValue {
            key,
            value,
            create_revision: Revision(create_revision as u64),
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &[u8], expected: Option<Revision>) -> Result<Deleted> {
        let full = self.full(key);
        let mut compares = vec![compare(&full, CompareTarget::Create, CompareResult::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(compare(
                &full,
                CompareTarget::Mod,
                CompareResult::Equal,
                expected.0 as i64,
            ));
        }
        let txn = TxnRequest {
            compare: compares,
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                    key: full,
                    prev_kv: true,
                    ..Default::default()
                })),
            }],
            failure: Vec::new(),
        };
        let response = self.txn(txn).await.map_err(unavailable("delete failed"))?;
        let key = Bytes::copy_from_slice(key);
        if !response.succeeded {
            return Err(match self.write_refused(key.clone(), expected).await? {
                // The key exists but no revision was demanded: it was recreated in between.
                StoreError::AlreadyExists { .. } => StoreError::Conflict {
                    key,
                    expected: expected.unwrap_or_default(),
                    actual: Revision::default(),
                },
                refused => refused,
            });
        }
        let revision = header_revision(response.header.as_ref())?;
        let prev = response
            .responses
            .iter()
            .find_map(|op| match &op.response {
                Some(response_op::Response::ResponseDeleteRange(delete)) => {
                    delete.prev_kvs.first().map(|kv| self.kv_from(kv))
                }
                _ => None,
            })
            .ok_or_else(|| StoreError::Corrupt {
                message: "etcd deleted a key without returning its previous value".into(),
            })?;
        Ok(Deleted { revision, prev })
    }

    async fn list(&self, prefix: &[u8], options: ListOptions) -> Result<ListPage> {
        let full_prefix = self.full(prefix);
        let end = range_end(&full_prefix);
        let mut start = match &options.start_after {
            Some(after) => {
                let mut start = self.full(after);
                start.push(0);
                start
            }
            None => full_prefix,
        };
        let wanted = options.limit.map(|l| l.get());
        let mut revision = options.revision;
        let mut items = Vec::new();
        loop {
            let chunk = wanted.map_or(LIST_CHUNK, |w| (w - items.len()).min(LIST_CHUNK));
            let request = RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: chunk as i64,
                revision: revision.map_or(0, |r| r.0 as i64),
                ..Default::default()
            };
            let response = match self.range(request).await {
                Ok(response) => response,
                Err(e) => return Err(self.read_error(e, revision).await),
            };
            let read_at = *revision.get_or_insert(header_revision(response.header.as_ref())?);
            let kvs = &response.kvs;
            if let Some(last) = kvs.last() {
                start = last.key.clone();
                start.push(0);
            }
            items.extend(kvs.iter().map(|kv| self.kv_from(kv)));
            let full = wanted.is_some_and(|w| items.len() >= w);
            if !response.more || kvs.is_empty() || full {
                let next_after = if response.more && full {
                    items.last().map(|kv| kv.key.clone())
                } else {
                    None
                };
                return Ok(ListPage { items, revision: read_at, next_after });
            }
        }
    }

    async fn watch(&self, prefix: &[u8], after: Revision) -> Result<WatchStream> {
        // etcd reports a compacted start only later, on the stream: check up front with a
        // cheap read at `after`, which fails exactly when that state is compacted (or future).
        if after.0 > 0
            && let Err(e) = self.range(self.probe(Some(after))).await
        {
            return Err(self.read_error(e, Some(after)).await);
        }
        let full_prefix = self.full(prefix);
        // Start *at* `after` rather than after it: etcd then refuses exactly when the state at
        // `after` is compacted, which is the contract; the events at `after` are dropped below.
        let start = after.0.max(1);
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(WatchCreateRequest {
                range_end: range_end(&full_prefix),
                key: full_prefix,
                start_revision: start as i64,
                prev_kv: true,
                ..Default::default()
            })),
        };
        // The request stream stays open for as long as the watch lives.
        let requests = futures_util::stream::iter([create]).chain(futures_util::stream::pending());
        let mut stream = self
            .watch_client()
            .watch(requests)
            .await
            .map_err(unavailable("cannot start a watch"))?
            .into_inner();
        // The first answer confirms (or cancels) the watch; events follow.
        let first =
            stream.message().await.map_err(unavailable("watch failed"))?.ok_or_else(|| {
                StoreError::Unavailable {
                    message: "etcd closed the watch before it started".into(),
                    source: None,
                }
            })?;
        if first.canceled {
            return Err(watch_canceled(&first, after));
        }
        let state = WatchState {
            stream,
            pending: first_events(&self.prefix, &first, after),
            prefix: self.prefix.clone(),
            after,
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(state, WatchState::step)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.current_revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision { requested: revision, current });
        }
        match self
            .call(false, |mut kv| {
                let request = CompactionRequest { revision: revision.0 as i64, physical: true };
                Box::pin(async move { kv.compact(request).await.map(tonic::Response::into_inner) })
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(classify(&e), ErrorKind::Compacted) => {
                let compacted = self.compacted_revision().await?;
                if compacted == revision {
                    Ok(())
                } else {
                    Err(StoreError::Compacted { requested: revision, compacted })
                }
            }
            Err(e) => Err(unavailable("compaction failed")(e)),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response =
            self.range(self.probe(None)).await.map_err(unavailable("cannot read the revision"))?;
        header_revision(response.header.as_ref())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        // etcd does not report its compaction point, but a read at a revision fails exactly
        // when that revision is compacted: binary-search the oldest readable one (about 30
        // cheap count-only reads; only error paths and compaction ask).
        let (mut low, mut high) = (Revision::INITIAL.0, self.current_revision().await?.0);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.readable_at(Revision(middle)).await? {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Ok(Revision(low))
    }
}

fn watch_canceled(response: &WatchResponse, after: Revision) -> StoreError {
    if response.compact_revision > 0 {
        StoreError::Compacted {
            requested: after,
            compacted: Revision(response.compact_revision as u64),
        }
    } else {
        StoreError::Unavailable {
            message: format!("etcd cancelled the watch: {}", response.cancel_reason),
            source: None,
        }
    }
}

fn first_events(
    prefix: &[u8],
    response: &WatchResponse,
    after: Revision,
) -> std::collections::VecDeque<Result<Event>> {
    response.events.iter().filter_map(|e| convert_event(prefix, e, after)).collect()
}

/// One etcd event in the store's terms (`None` for events at or before `after`).
fn convert_event(prefix: &[u8], event: &mvccpb::Event, after: Revision) -> Option<Result<Event>> {
    let kv = event.kv.as_ref()?;
    let revision = Revision(kv.mod_revision as u64);
    if revision <= after {
        return None;
    }
    let prev = event.prev_kv.as_ref().map(|p| convert(prefix, p));
    Some(match mvccpb::event::EventType::try_from(event.r#type) {
        Ok(mvccpb::event::EventType::Put) => {
            // A first version has no predecessor, whatever etcd attached.
            let prev = if kv.version == 1 { None } else { prev };
            Ok(Event::Put { kv: convert(prefix, kv), prev })
        }
        Ok(mvccpb::event::EventType::Delete) => match prev {
            Some(prev) => Ok(Event::Delete { revision, prev }),
            // etcd could not load the value the key had: that history is compacted away.
            None => Err(StoreError::Compacted {
                requested: after,
                compacted: Revision(revision.0.saturating_sub(1)),
            }),
        },
        Err(_) => Err(StoreError::Corrupt {
            message: format!("etcd sent an event of unknown type {}", event.r#type),
        }),
    })
}

struct WatchState {
    stream: tonic::Streaming<WatchResponse>,
    pending: std::collections::VecDeque<Result<Event>>,
    prefix: Arc<[u8]>,
    after: Revision,
    done: bool,
}

impl WatchState {
    async fn step(mut self) -> Option<(Result<Event>, WatchState)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    // An error ends the stream.
                    self.pending.clear();
                    self.done = true;
                }
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.stream.next().await {
                Some(Ok(response)) => {
                    if response.canceled {
                        self.pending.push_back(Err(watch_canceled(&response, self.after)));
                        continue;
                    }
                    for event in &response.events {
                        if let Some(item) = convert_event(&self.prefix, event, self.after) {
                            if let Ok(event) = &item {
                                self.after = event.revision();
                            }
                            self.pending.push_back(item);
                        }
                    }
                }
                Some(Err(e)) => self.pending.push_back(Err(unavailable("watch failed")(e))),
                None => return None,
            }
        }
    }
}
