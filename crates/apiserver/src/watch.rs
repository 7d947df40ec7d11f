//! Watch streams: newline-delimited JSON events (or one-row Tables), or length-prefixed protobuf
//! `WatchEvent` frames for clients that ask for protobuf; bookmarks, initial events, timeouts,
//! and "too old resourceVersion" as an in-stream ERROR event.

use std::sync::Arc;
use std::time::Duration;

use apimachinery::{ApiError, Cause};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use store::{Event, Revision, StoreError};
use tokio::sync::mpsc;

use crate::clock::now_seconds;
use crate::codec;
use crate::registry::ResourceDef;
use crate::reply::Body;
use crate::request::{Format, Query, Wanted};
use crate::storage::{Filter, Storage};
use crate::table::{IncludeObject, TableBuilder};

/// How this server serves watches: the encoded lines every plain watcher shares, how long a
/// watch without `timeoutSeconds` lasts, and how often bookmarks go out.
pub struct Watching {
    pub(crate) lines: SharedLines,
    /// The longest a watch without `timeoutSeconds` stays open (times a factor in [1, 2)).
    pub(crate) default_timeout: Duration,
    pub(crate) bookmark_interval: Duration,
}

/// Recently encoded watch lines, shared by every watcher that needs the same bytes (plain
/// JSON, no selector): an event is serialized once however many watchers receive it.
#[derive(Default)]
pub struct SharedLines {
    lines: parking_lot::Mutex<std::collections::VecDeque<(u64, &'static str, Format, Bytes)>>,
}

const SHARED_LINES: usize = 4096;

impl SharedLines {
    fn get_or_encode(
        &self,
        rv: u64,
        kind: &'static str,
        format: Format,
        encode: impl FnOnce() -> Bytes,
    ) -> Bytes {
        {
            let lines = self.lines.lock();
            // Recent events are at the back.
            if let Some((_, _, _, line)) = lines
                .iter()
                .rev()
                .take(256)
                .find(|(r, k, f, _)| *r == rv && *k == kind && *f == format)
            {
                return line.clone();
            }
        }
        let line = encode();
        let mut lines = self.lines.lock();
        if lines.len() >= SHARED_LINES {
            lines.pop_front();
        }
        lines.push_back((rv, kind, format, line.clone()));
        line
    }
}

/// Encodes events for one watcher.
struct Encoder {
    def: Arc<ResourceDef>,
    wanted: Wanted,
    format: Format,
    table: Option<TableBuilder>,
    columns_sent: bool,
    shared: Arc<Watching>,
}

impl Encoder {
    fn event(
        &mut self,
        kind: &'static str,
        stored: &[u8],
        rv: u64,
        decoded: Option<Value>,
    ) -> Bytes {
        if self.wanted == Wanted::Json && self.def.served_as_stored() {
            let watching = Arc::clone(&self.shared);
            let format = self.format;
            return watching
                .lines
                .get_or_encode(rv, kind, format, || self.encode(kind, stored, rv, decoded));
        }
        self.encode(kind, stored, rv, decoded)
    }

    fn encode(&mut self, kind: &str, stored: &[u8], rv: u64, decoded: Option<Value>) -> Bytes {
        if self.format == Format::Protobuf {
            let object = decoded.unwrap_or_else(|| codec::decode(stored, rv));
            let object = match self.wanted {
                Wanted::Metadata => crate::storage::partial_metadata(&object),
                _ => self.convert(object),
            };
            return frame(kind, &object);
        }
        let mut out = BytesMut::with_capacity(stored.len() + 64);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match (self.wanted, &self.table) {
            (Wanted::Json, _) if self.def.served_as_stored() => {
                codec::splice_into(&mut out, stored, rv)
            }
            (Wanted::Table, Some(builder)) => {
                let object = self.convert(decoded.unwrap_or_else(|| codec::decode(stored, rv)));
                let meta = json!({"resourceVersion": rv.to_string()});
                let table = builder.table(vec![builder.row(&object)], meta, !self.columns_sent);
                self.columns_sent = true;
                out.extend_from_slice(&serde_json::to_vec(&table).unwrap_or_default());
            }
            (Wanted::Metadata, _) => {
                let object = decoded.unwrap_or_else(|| codec::decode(stored, rv));
                let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]});
                out.extend_from_slice(&serde_json::to_vec(&partial).unwrap_or_default());
            }
            _ => {
                let object = self.convert(decoded.unwrap_or_else(|| codec::decode(stored, rv)));
                out.extend_from_slice(&serde_json::to_vec(&object).unwrap_or_default());
            }
        }
        out.extend_from_slice(b"}\n");
        out.freeze()
    }

    fn convert(&self, mut object: Value) -> Value {
        if let Some(alias) = self.def.stored_as {
            return alias.from_storage(object, &self.def.api_version());
        }
        if let Some(conversion) = self.def.conversion {
            return (conversion.from_storage)(object);
        }
        if self.def.version != self.def.storage_version {
            object["apiVersion"] = json!(self.def.api_version());
        }
        object
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata});
        if self.format == Format::Protobuf {
            return frame("BOOKMARK", &object);
        }
        line(&json!({"type": "BOOKMARK", "object": object}))
    }
}

/// One protobuf watch frame (fields that do not fit their message are left out: a stream
/// cannot change its format midway).
fn frame(kind: &str, object: &Value) -> Bytes {
    match kube_protobuf::encode_lenient(object) {
        Ok(envelope) => Bytes::from(kube_protobuf::watch_frame(kind, &envelope)),
        Err(e) => {
            let status = ApiError::internal(format!("encoding a watch event: {e}")).to_status();
            let envelope = kube_protobuf::encode_lenient(&status).unwrap_or_default();
            Bytes::from(kube_protobuf::watch_frame("ERROR", &envelope))
        }
    }
}

fn line(value: &Value) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn expired_event(format: Format, message: String) -> Bytes {
    let status = ApiError::expired(message).to_status();
    match format {
        Format::Json => line(&json!({"type": "ERROR", "object": status})),
        Format::Protobuf => frame("ERROR", &status),
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>, format: Format) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(Frame::data(chunk)), rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(match format {
            Format::Json => "application/json",
            Format::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        }),
    );
    response
        .headers_mut()
        .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    response
}

pub async fn watch(
    api: Arc<Storage>,
    watching: Arc<Watching>,
    def: Arc<ResourceDef>,
    ns: Option<String>,
    query: Query,
    wanted: Wanted,
    format: Format,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::parse(&def, &query)?;
    let rv = query.get("resourceVersion").map(str::to_owned);
    let rvm = query.get("resourceVersionMatch");
    let send_initial = query.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = query.flag("allowWatchBookmarks");
    match (send_initial, rvm) {
        (Some(_), Some("NotOlderThan")) => {}
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                vec![Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                vec![Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )],
            ));
        }
        (None, None) => {}
    }
    let timeout = match query.int("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => {
            // Kubernetes: the minimum request timeout times a random factor in [1, 2).
            let jitter = uuid::Uuid::new_v4().as_bytes()[0] as f64 / 256.0;
            watching.default_timeout.mul_f64(1.0 + jitter)
        }
    };
    let initial = match send_initial {
        Some(flag) => flag,
        None => rv.as_deref().is_none_or(|v| v == "0"),
    };
    let current =
        api.store.current_revision().await.map_err(|e| crate::storage::store_error(&def, "", e))?;
    let start = if initial {
        current
    } else {
        let n: u64 = rv.as_deref().unwrap_or("0").parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {:?}", rv.unwrap_or_default()))
        })?;
        Revision(n)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut encoder = Encoder {
        def: Arc::clone(&def),
        wanted,
        format,
        table: (wanted == Wanted::Table).then(|| {
            TableBuilder::new(&def, IncludeObject::parse(query.get("includeObject")), now_seconds())
        }),
        columns_sent: false,
        shared: Arc::clone(&watching),
    };
    let prefix = def.collection_prefix(ns.as_deref());
    let stream = match api.store.watch(prefix.as_bytes(), start).await {
        Ok(s) => s,
        Err(StoreError::Compacted { requested, compacted }) => {
            // kube-rs relists only on an in-stream 410 (KUBE-API-COMPAT.md §0.5).
            let _ = tx.try_send(expired_event(
                format,
                format!("too old resource version: {requested} ({compacted})"),
            ));
            drop(tx);
            return Ok(stream_response(rx, format));
        }
        Err(e) => return Err(crate::storage::store_error(&def, "", e)),
    };
    let initial_items = if initial {
        let (items, _, _) = api.list_raw(&def, ns.as_deref(), &filter, start, None, None).await?;
        items
    } else {
        Vec::new()
    };
    let mut shutdown = api.shutdown.clone();
    let bookmark_interval = watching.bookmark_interval;
    tokio::spawn(async move {
        for (stored, rv, decoded) in initial_items {
            if tx.send(encoder.event("ADDED", &stored, rv, decoded)).await.is_err() {
                return;
            }
        }
        if send_initial == Some(true)
            && bookmarks
            && tx.send(encoder.bookmark(start.0, true)).await.is_err()
        {
            return;
        }
        let mut last = start.0;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + bookmark_interval,
            bookmark_interval,
        );
        let mut stream = stream;
        loop {
            tokio::select! {
                event = stream.next() => {
                    let chunk = match event {
                        None => return,
                        Some(Err(StoreError::Compacted { requested, compacted })) => {
                            let _ = tx.send(expired_event(format, format!("too old resource version: {requested} ({compacted})"))).await;
                            return;
                        }
                        Some(Err(_)) => return,
                        Some(Ok(event)) => {
                            last = event.revision().0;
                            encode_event(&mut encoder, &filter, event)
                        }
                    };
                    if let Some(chunk) = chunk
                        && tx.send(chunk).await.is_err()
                    {
                        return;
                    }
                }
                _ = ticker.tick() => {
                    if bookmarks && tx.send(encoder.bookmark(last, false)).await.is_err() {
                        return;
                    }
                }
                () = &mut deadline => {
                    if bookmarks {
                        let _ = tx.send(encoder.bookmark(last, false)).await;
                    }
                    return;
                }
                () = tx.closed() => return,
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok(stream_response(rx, format))
}

/// One store event as zero or one watch events, applying selector transitions.
fn encode_event(encoder: &mut Encoder, filter: &Filter, event: Event) -> Option<Bytes> {
    let def = Arc::clone(&encoder.def);
    match event {
        Event::Put { kv, prev } => {
            if filter.is_empty() {
                let kind = if prev.is_none() { "ADDED" } else { "MODIFIED" };
                return Some(encoder.event(kind, &kv.value, kv.mod_revision.0, None));
            }
            let now = codec::decode(&kv.value, kv.mod_revision.0);
            let matched_now = filter.matches(&def, &now);
            let matched_before = prev
                .as_ref()
                .is_some_and(|p| filter.matches(&def, &codec::decode(&p.value, p.mod_revision.0)));
            let kind = match (matched_before, matched_now) {
                (false, true) => "ADDED",
                (true, true) => "MODIFIED",
                (true, false) => "DELETED",
                (false, false) => return None,
            };
            Some(encoder.event(kind, &kv.value, kv.mod_revision.0, Some(now)))
        }
        Event::Delete { revision, prev } => {
            if filter.is_empty() {
                return Some(encoder.event("DELETED", &prev.value, revision.0, None));
            }
            let last = codec::decode(&prev.value, revision.0);
            filter
                .matches(&def, &last)
                .then(|| encoder.event("DELETED", &prev.value, revision.0, Some(last)))
        }
    }
}
