//! The storage core: every served resource's objects in the store, through the verbs (get,
//! list, create, update, patch, apply, delete, deletecollection; `watch` builds on `list_raw`),
//! each write through admission, the resource's strategy and schema checks, and the
//! optimistic-concurrency loop [`Storage::guaranteed_update`]. It knows nothing of HTTP
//! connections, callers' credentials, authorization or limits: the request pipeline (`api`)
//! does those and hands it a [`Req`]. In-process loops (garbage collector, CRD controller,
//! simulated members) use it directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::managed;
use apimachinery::object::{self, meta_str};
use apimachinery::patch::{self, PatchError};
use apimachinery::selector::{FieldSelector, LabelSelector};
use apimachinery::{ApiError, Cause};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Response};
use serde_json::{Value, json};
use store::{ListOptions, Revision, Store, StoreError};

use crate::admission::{Admission, AdmissionRequest, Operation};
use crate::auth::User;
use crate::clock::{now_rfc3339, now_seconds};
use crate::codec;
use crate::crd_schema as crd;
use crate::ctx::Req;
use crate::registry::{Registry, ResourceDef};
use crate::reply::{Body, json_response, respond};
use crate::request::{self, BodyType, Format, Query, Wanted};
use crate::strategy::{self, Part};
use crate::table::{IncludeObject, TableBuilder};

/// The storage core of one API server.
pub struct Storage {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) admission: Vec<Arc<dyn Admission>>,
    /// CustomResourceDefinitions of kinds served natively (Karmada's), by name.
    pub(crate) served_crds: HashMap<String, Value>,
    /// Set when the server shuts down (background loops and watches end).
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Kind-specific effects of writes, by (group, plural).
    pub(crate) write_hooks: Vec<(&'static str, &'static str, Arc<dyn WriteHook>)>,
    /// Checks of a kind's objects against the others stored, by (group, plural).
    pub(crate) peer_checks: Vec<(String, String, Arc<dyn PeerCheck>)>,
    /// Checks of a kind's writes against other stored objects, by (group, plural).
    pub(crate) write_checks: Vec<(String, String, Arc<dyn WriteCheck>)>,
}

/// A check of an object against the other stored objects of its kind before a create or an
/// update is written (what a validating webhook does when it lists them). As a webhook's, it
/// is not atomic with the write.
pub trait PeerCheck: Send + Sync {
    fn check(&self, object: &Value, peers: &[Value]) -> Result<(), ApiError>;
}

/// A create or update as a [`WriteCheck`] sees it.
pub struct CheckedWrite<'a> {
    pub def: &'a ResourceDef,
    /// The stored object it replaces; `None` for a create.
    pub old: Option<&'a Value>,
    pub object: &'a Value,
    pub dry_run: bool,
}

/// A check of a write against other stored objects that may write them too once the write is
/// stored (what a validating webhook with side effects does: upstream's ResourceBinding webhook
/// accounts usage in FederatedResourceQuotas). The decision is made before the write; the
/// [`AfterCommit`] it returns runs once the write is stored, and is dropped (with whatever it
/// holds, e.g. a lock) when the write is not — so a retried or failed write accounts nothing.
#[async_trait::async_trait]
pub trait WriteCheck: Send + Sync {
    async fn check(
        &self,
        storage: &Storage,
        write: &CheckedWrite<'_>,
    ) -> Result<Option<Box<dyn AfterCommit>>, ApiError>;
}

/// What a [`WriteCheck`] does once the write it allowed is stored.
#[async_trait::async_trait]
pub trait AfterCommit: Send {
    async fn committed(self: Box<Self>, storage: &Storage);
}

/// What a resource's storage does once one of its objects is written (committed), before the
/// write is answered: Kubernetes' REST storage does such things in its strategies' hooks.
pub trait WriteHook: Send + Sync {
    fn written(&self, storage: &Storage, object: &Value, written: Written);
}

/// An object's `PartialObjectMetadata` (what metadata-only clients ask for).
pub fn partial_metadata(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]})
}

pub fn store_error(def: &ResourceDef, name: &str, error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound { .. } => ApiError::not_found(&def.plural, &def.group, name),
        StoreError::AlreadyExists { .. } => ApiError::already_exists(&def.plural, &def.group, name),
        StoreError::Conflict { .. } => ApiError::conflict(&def.plural, &def.group, name),
        StoreError::Compacted { requested, compacted } => {
            ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
        }
        StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        StoreError::TooLarge { size, limit } => ApiError::too_large(format!(
            "request is too large: the object takes {size} bytes, the store holds at most {limit} per object"
        )),
        StoreError::Unavailable { message, .. } => {
            ApiError::service_unavailable(format!("storage unavailable: {message}"))
        }
        StoreError::Corrupt { message } => {
            ApiError::internal(format!("storage is corrupt: {message}"))
        }
    }
}

/// The outcome of a write.
pub enum Decision {
    Create(Value),
    Update(Value),
    Delete,
    Unchanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Deleted,
    Unchanged,
}

/// Label and field selectors of a list or watch.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Filter {
    pub fn parse(def: &ResourceDef, query: &Query) -> Result<Filter, ApiError> {
        let labels = match query.get("labelSelector") {
            Some(s) => {
                let parsed = LabelSelector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?;
                (!parsed.is_empty()).then_some(parsed)
            }
            None => None,
        };
        let fields = match query.get("fieldSelector") {
            Some(s) => {
                let parsed = FieldSelector::parse(s).map_err(ApiError::bad_request)?;
                for r in &parsed.requirements {
                    if !strategy::supported_field(def, &r.field) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {}",
                            r.field
                        )));
                    }
                }
                (!parsed.is_empty()).then_some(parsed)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, def: &ResourceDef, object: &Value) -> bool {
        if let Some(labels) = &self.labels
            && !labels.matches(&apimachinery::selector::labels_of(object))
        {
            return false;
        }
        if let Some(fields) = &self.fields
            && !fields.matches(&|f| strategy::field_value(def, object, f))
        {
            return false;
        }
        true
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    start: String,
}

pub fn encode_continue(rv: u64, key: &[u8]) -> String {
    let token = ContinueToken { rv, start: String::from_utf8_lossy(key).into_owned() };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
    serde_json::from_slice(&raw).map_err(|_| ApiError::bad_request("continue key is not valid"))
}

fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.get("dryRun") {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value {other:?}: supported values: \"All\""
        ))),
    }
}

fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_owned();
    }
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The parts of `DeleteOptions` the server honours.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

pub(crate) fn delete_options(
    body: Option<&Value>,
    query: &Query,
) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions::default();
    if let Some(v) = body {
        options.propagation = v.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned);
        options.orphan_dependents = v.get("orphanDependents").and_then(Value::as_bool);
        options.uid = v.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned);
        options.resource_version =
            v.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_owned);
        options.dry_run =
            v.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|x| x == "All"));
    }
    if let Some(p) = query.get("propagationPolicy") {
        options.propagation = Some(p.to_owned());
    }
    if let Some(p) = &options.propagation
        && !matches!(p.as_str(), "Background" | "Foreground" | "Orphan")
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            vec![Cause::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Background", "Foreground", "Orphan"],
            )],
        ));
    }
    Ok(options)
}

/// (verb, resource) for metrics and authorization.
impl Storage {
    /// Turns true when the server shuts down.
    pub fn shutdown(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.clone()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one object (current state), as stored plus its resourceVersion.
    pub async fn read(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = def.key(ns, name);
        match self.store.get(key.as_bytes(), None).await.map_err(|e| store_error(def, name, e))? {
            Some(kv) => Ok(self.convert_out(def, codec::decode(&kv.value, kv.mod_revision.0))),
            None => Err(ApiError::not_found(&def.plural, &def.group, name)),
        }
    }

    /// Sets the apiVersion a client asked for (all served versions share one schema shape).
    pub(crate) fn convert_out(&self, def: &ResourceDef, mut object: Value) -> Value {
        if let Some(alias) = def.stored_as {
            return alias.from_storage(object, &def.api_version());
        }
        if let Some(conversion) = def.conversion {
            return (conversion.from_storage)(object);
        }
        if def.version != def.storage_version {
            object["apiVersion"] = json!(def.api_version());
        }
        object
    }

    pub(crate) fn convert_in(&self, def: &ResourceDef, mut object: Value) -> Value {
        if let Some(alias) = def.stored_as {
            return alias.to_storage(object);
        }
        if let Some(conversion) = def.conversion {
            return (conversion.to_storage)(object);
        }
        if def.version != def.storage_version {
            let group = &def.group;
            object["apiVersion"] = json!(if group.is_empty() {
                def.storage_version.clone()
            } else {
                format!("{group}/{}", def.storage_version)
            });
        }
        object
    }

    pub(crate) async fn get(
        &self,
        req: &Req<'_>,
        name: &str,
        wanted: Wanted,
    ) -> Result<Response<Body>, ApiError> {
        let def = req.def;
        if let Some(rv) = req.query.get("resourceVersion")
            && rv.parse::<u64>().is_err()
        {
            return Err(ApiError::bad_request(format!("invalid resource version: {rv:?}")));
        }
        let object = self.read(def, req.ns, name).await?;
        Ok(match wanted {
            Wanted::Json => req.respond(200, &object),
            Wanted::Metadata => req.respond(200, &partial_metadata(&object)),
            Wanted::Table => {
                let builder = TableBuilder::new(
                    def,
                    IncludeObject::parse(req.query.get("includeObject")),
                    now_seconds(),
                );
                let meta = json!({"resourceVersion": meta_str(&object, "resourceVersion").unwrap_or_default()});
                json_response(200, &builder.table(vec![builder.row(&object)], meta, true))
            }
        })
    }

    /// Resolves the revision a list reads at, and where it starts.
    pub(crate) async fn list_position(
        &self,
        def: &ResourceDef,
        query: &Query,
    ) -> Result<(Revision, Option<Bytes>), ApiError> {
        let rv = query.get("resourceVersion");
        let rvm = query.get("resourceVersionMatch");
        let cont = query.get("continue");
        let invalid = |field: &str, value: &str, detail: &str| {
            ApiError::invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                vec![Cause::invalid(field, &json!(value), detail)],
            )
        };
        if query.get("sendInitialEvents").is_some() {
            return Err(ApiError::invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                vec![Cause::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list",
                )],
            ));
        }
        if let Some(m) = rvm {
            if !matches!(m, "NotOlderThan" | "Exact") {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "supported values: \"Exact\", \"NotOlderThan\"",
                ));
            }
            if rv.is_none() {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "meta.k8s.io",
                    "",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )],
                ));
            }
            if cont.is_some() {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "meta.k8s.io",
                    "",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    )],
                ));
            }
            if m == "Exact" && rv == Some("0") {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "meta.k8s.io",
                    "",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    )],
                ));
            }
        }
        if let Some(token) = cont {
            let token = decode_continue(token)?;
            return Ok((Revision(token.rv), Some(Bytes::from(token.start.into_bytes()))));
        }
        let current = self.store.current_revision().await.map_err(|e| store_error(def, "", e))?;
        match rv {
            None | Some("0") => Ok((current, None)),
            Some(v) => {
                let n: u64 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {v:?}"))
                })?;
                if rvm == Some("Exact") {
                    return Ok((Revision(n), None));
                }
                if n > current.0 {
                    // Wait briefly for the revision to arrive (another apiserver may have written it).
                    let deadline = Instant::now() + Duration::from_secs(3);
                    loop {
                        let now = self
                            .store
                            .current_revision()
                            .await
                            .map_err(|e| store_error(def, "", e))?;
                        if now.0 >= n {
                            return Ok((now, None));
                        }
                        if Instant::now() > deadline {
                            return Err(ApiError::timeout(format!(
                                "Too large resource version: {n}, current: {}",
                                now.0
                            ))
                            .with_cause(Cause {
                                reason: "ResourceVersionTooLarge".into(),
                                message: "Too large resource version".into(),
                                field: String::new(),
                            }));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                Ok((current, None))
            }
        }
    }

    /// Every stored object of a kind (in `namespace`), decoded, at the current revision.
    pub async fn list_values(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let revision =
            self.store.current_revision().await.map_err(|e| ApiError::internal(e.to_string()))?;
        let (items, _, _) =
            self.list_raw(def, namespace, &Filter::default(), revision, None, None).await?;
        Ok(items
            .into_iter()
            .map(|(bytes, rv, decoded)| decoded.unwrap_or_else(|| codec::decode(&bytes, rv)))
            .collect())
    }

    /// Lists matching objects: returns (objects as stored-with-rv bytes, revision, continue).
    pub async fn list_raw(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        filter: &Filter,
        revision: Revision,
        start_after: Option<Bytes>,
        limit: Option<usize>,
    ) -> Result<(Vec<(Bytes, u64, Option<Value>)>, Revision, Option<String>), ApiError> {
        let prefix = def.collection_prefix(ns);
        let mut items = Vec::new();
        let mut start = start_after;
        let chunk = limit.map(|l| l.clamp(1, 10_000)).unwrap_or(usize::MAX);
        loop {
            let options = ListOptions {
                revision: Some(revision),
                limit: std::num::NonZeroUsize::new(chunk.clamp(1, 10_000))
                    .filter(|_| chunk != usize::MAX),
                start_after: start.clone(),
            };
            let page = self.store.list(prefix.as_bytes(), options).await.map_err(|e| match e {
                StoreError::Compacted { .. } if start.is_some() => ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."),
                other => store_error(def, "", other),
            })?;
            let page_len = page.items.len();
            for (i, kv) in page.items.into_iter().enumerate() {
                let decoded = if filter.is_empty() {
                    None
                } else {
                    Some(codec::decode(&kv.value, kv.mod_revision.0))
                };
                if let Some(obj) = &decoded
                    && !filter.matches(def, obj)
                {
                    continue;
                }
                items.push((kv.value, kv.mod_revision.0, decoded));
                if let Some(l) = limit
                    && items.len() == l
                {
                    let more = i + 1 < page_len || page.next_after.is_some();
                    let token = more.then(|| encode_continue(revision.0, &kv.key));
                    return Ok((items, revision, token));
                }
            }
            match page.next_after {
                Some(after) => start = Some(after),
                None => return Ok((items, revision, None)),
            }
        }
    }

    pub(crate) async fn list(
        &self,
        req: &Req<'_>,
        wanted: Wanted,
    ) -> Result<Response<Body>, ApiError> {
        let (def, ns, query) = (req.def, req.ns, req.query);
        let filter = Filter::parse(def, query)?;
        let (revision, start) = self.list_position(def, query).await?;
        let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
        let (items, revision, token) =
            self.list_raw(def, ns, &filter, revision, start, limit).await?;
        let mut meta = json!({"resourceVersion": revision.0.to_string()});
        if let Some(token) = &token {
            meta["continue"] = json!(token);
        }
        let decode = |(b, rv, d): &(Bytes, u64, Option<Value>)| {
            d.clone().unwrap_or_else(|| codec::decode(b, *rv))
        };
        if req.format == Format::Protobuf && wanted != Wanted::Table {
            // A list whose items do not all fit their message is answered in JSON instead.
            let encoded = if wanted == Wanted::Metadata {
                kube_protobuf::encode_list(
                    "meta.k8s.io/v1",
                    "PartialObjectMetadata",
                    &meta,
                    items.iter().map(|i| partial_metadata(&decode(i))),
                )
            } else {
                kube_protobuf::encode_list(
                    &def.api_version(),
                    &def.kind,
                    &meta,
                    items.iter().map(|i| self.convert_out(def, decode(i))),
                )
            };
            if let Ok(bytes) = encoded {
                return Ok(req.finish(respond(200, kube_protobuf::MEDIA_TYPE, bytes)));
            }
        }
        match wanted {
            Wanted::Json if def.served_as_stored() => {
                let mut out = BytesMut::with_capacity(
                    items.iter().map(|(b, _, _)| b.len() + 32).sum::<usize>() + 256,
                );
                out.extend_from_slice(
                    format!(
                        "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
                        def.list_kind(),
                        def.api_version()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
                out.extend_from_slice(b",\"items\":[");
                for (i, (stored, rv, _)) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    codec::splice_into(&mut out, stored, *rv);
                }
                out.extend_from_slice(b"]}");
                Ok(respond(200, "application/json", out.freeze()))
            }
            Wanted::Json => {
                let objects: Vec<Value> =
                    items.iter().map(|i| self.convert_out(def, decode(i))).collect();
                Ok(json_response(
                    200,
                    &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": meta, "items": objects}),
                ))
            }
            Wanted::Metadata => {
                let objects: Vec<Value> =
                    items.iter().map(|i| partial_metadata(&decode(i))).collect();
                Ok(json_response(
                    200,
                    &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": objects}),
                ))
            }
            Wanted::Table => {
                let builder = TableBuilder::new(
                    def,
                    IncludeObject::parse(query.get("includeObject")),
                    now_seconds(),
                );
                let rows: Vec<Value> =
                    items.iter().map(|i| builder.row(&self.convert_out(def, decode(i)))).collect();
                Ok(json_response(200, &builder.table(rows, meta, true)))
            }
        }
    }

    pub(crate) fn admit(
        &self,
        request: &AdmissionRequest<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        for plugin in &self.admission {
            plugin.admit(request, object)?;
        }
        Ok(())
    }

    /// Checks that a namespace exists and is not terminating, for creates inside it.
    pub(crate) async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let key = format!("/registry/core/namespaces/{ns}");
        match self.store.get(key.as_bytes(), None).await {
            Ok(Some(kv)) => {
                let object: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                if meta_str(&object, "deletionTimestamp").is_some() {
                    return Err(ApiError::forbidden(format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    )));
                }
                Ok(())
            }
            Ok(None) => Err(ApiError::not_found("namespaces", "", ns)),
            Err(e) => Err(ApiError::service_unavailable(format!("storage unavailable: {e}"))),
        }
    }

    /// Schema checks shared by creates and updates: custom resources against their structural
    /// schema, built-in kinds against their type (as Go's decoder reads them) and Kubernetes'
    /// per-kind rules. Unknown fields are dropped and handled by `fieldValidation`.
    pub(crate) fn schema_checks(
        &self,
        req: &Req<'_>,
        object: &mut Value,
        old: Option<&Value>,
        part: Part,
    ) -> Result<(), ApiError> {
        let def = req.def;
        if let Some(schema) = &def.schema {
            let unknown = crd::prune(schema, object);
            req.unknown_fields(&unknown)?;
            let causes = crd::validate(schema, object);
            if !causes.is_empty() {
                return Err(ApiError::invalid(&def.kind, &def.group, object::name(object), causes));
            }
        } else if def.protobuf && !def.custom {
            let only = (part != Part::Main).then_some("status");
            if let Some(report) = kube_protobuf::shape::check(object, only) {
                req.unknown_fields(&report.unknown)?;
                if !report.wrong.is_empty() {
                    let causes = report
                        .wrong
                        .iter()
                        .map(|w| {
                            // As for custom resources, the type is shown as the value.
                            Cause::invalid(&w.path, &json!(object::json_type(&w.value)), &w.detail)
                        })
                        .collect();
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        object::name(object),
                        causes,
                    ));
                }
            }
            if part == Part::Main {
                let causes = apimachinery::validation::builtin(&def.group, &def.kind, object, old);
                if !causes.is_empty() {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        object::name(object),
                        causes,
                    ));
                }
            }
        }
        if def.kind == "CustomResourceDefinition" && def.group == "apiextensions.k8s.io" {
            crd::validate_crd(object)?;
        }
        Ok(())
    }

    /// Builds a new object for storage: type and namespace checks, name generation, server
    /// metadata, custom-resource schema, admission and ownership.
    pub(crate) fn new_object(
        &self,
        req: &Req<'_>,
        mut object: Value,
        manager: &str,
        apply: bool,
    ) -> Result<Value, ApiError> {
        let (def, ns) = (req.def, req.ns);
        strategy::check_type(def, &mut object)?;
        strategy::check_namespace(def, &mut object, ns)?;
        if object::name(&object).is_empty() {
            match meta_str(&object, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    let name = format!("{prefix}{}", random_suffix());
                    object::set_meta(&mut object, "name", json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        "",
                        vec![Cause::required("metadata.name", "name or generateName is required")],
                    ));
                }
            }
        }
        strategy::validate_meta(def, &object)?;
        let now = now_rfc3339();
        let uid = uuid::Uuid::new_v4().to_string();
        let applied = object.clone();
        strategy::prepare_create(def, &mut object, &now, &uid)?;
        self.schema_checks(req, &mut object, None, Part::Main)?;
        self.admit(
            &AdmissionRequest {
                operation: Operation::Create,
                served_crds: &self.served_crds,
                def,
                old: None,
                subresource: None,
                user: req.user,
                dry_run: dry_run(req.query).unwrap_or(false),
            },
            &mut object,
        )?;
        object::remove_meta(&mut object, "managedFields");
        if apply {
            let lists = |path: &[&str]| strategy::list_kind(def, path);
            let mut entries = Vec::new();
            let mut scoped = applied.clone();
            if def.status
                && let Value::Object(m) = &mut scoped
            {
                m.remove("status");
            }
            let _ = managed::apply(
                &json!({}),
                &mut entries,
                &scoped,
                manager,
                &def.api_version(),
                &now,
                None,
                true,
                &lists,
            );
            strategy::set_entries(&mut object, &entries);
        } else {
            strategy::record_managed(def, None, &mut object, manager, &now, Part::Main);
        }
        Ok(object)
    }

    pub(crate) async fn create(
        &self,
        req: &Req<'_>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let (def, ns) = (req.def, req.ns);
        let dry = dry_run(req.query)?;
        let object = req.decode(body)?;
        let manager = field_manager(req.query, req.headers);
        if let Some(ns) = ns {
            self.check_namespace_open(ns).await?;
        }
        let generated = object::name(&object).is_empty();
        for _attempt in 0..8 {
            let prepared = self.new_object(req, object.clone(), &manager, false)?;
            if dry {
                self.check_write(def, None, &prepared, true).await?;
                return Ok(req.respond(201, &prepared));
            }
            let created = self.store_create(def, ns, prepared).await;
            match created {
                Err(e) if generated && e.code == 409 => continue,
                Err(e) => return Err(e),
                Ok(object) => return Ok(req.respond(201, &object)),
            }
        }
        Err(ApiError::already_exists(&def.plural, &def.group, "generated name"))
    }

    /// Creates an object as an in-process controller would through the API (defaulting,
    /// validation, admission and ownership included).
    pub async fn create_object(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        object: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let user = User { name: manager.to_owned(), groups: vec!["system:masters".into()] };
        let (headers, query) = (HeaderMap::new(), Query::default());
        let req = Req::new(def, ns, &headers, &query, &user, Format::Json)?;
        let prepared = self.new_object(&req, object, manager, false)?;
        self.store_create(def, ns, prepared).await
    }

    /// Stores a new object and returns it with its resourceVersion.
    pub async fn store_create(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        let commits = self.check_write(def, None, &object, false).await?;
        let object = self.convert_in(def, object);
        let name = object::name(&object).to_owned();
        let key = def.key(ns, &name);
        let kv = self
            .store
            .create(Bytes::from(key.into_bytes()), Bytes::from(codec::encode(&object)))
            .await
            .map_err(|e| store_error(def, &name, e))?;
        let created = self.convert_out(def, codec::decode(&kv.value, kv.mod_revision.0));
        self.after_write(def, &created, Written::Created);
        self.committed(commits).await;
        Ok(created)
    }

    /// Runs the kind's [`WriteCheck`]s and [`PeerCheck`]s before `object` is written over `old`
    /// (`None`: created); what the write checks want done once it is stored.
    pub(crate) async fn check_write(
        &self,
        def: &ResourceDef,
        old: Option<&Value>,
        object: &Value,
        dry_run: bool,
    ) -> Result<Vec<Box<dyn AfterCommit>>, ApiError> {
        self.check_peers(def, object).await?;
        let mut commits = Vec::new();
        let write = CheckedWrite { def, old, object, dry_run };
        for (group, plural, check) in &self.write_checks {
            if def.group == *group && def.plural == *plural {
                commits.extend(check.check(self, &write).await?);
            }
        }
        Ok(commits)
    }

    /// Runs what write checks wanted done once their write is stored.
    async fn committed(&self, commits: Vec<Box<dyn AfterCommit>>) {
        for commit in commits {
            commit.committed(self).await;
        }
    }

    /// Runs the kind's [`PeerCheck`]s, if it has any, against every other stored object of it.
    async fn check_peers(&self, def: &ResourceDef, object: &Value) -> Result<(), ApiError> {
        let checks: Vec<&Arc<dyn PeerCheck>> = self
            .peer_checks
            .iter()
            .filter(|(group, plural, _)| def.group == *group && def.plural == *plural)
            .map(|(_, _, check)| check)
            .collect();
        if checks.is_empty() {
            return Ok(());
        }
        let prefix = def.collection_prefix(None);
        let mut peers = Vec::new();
        let mut start_after = None;
        loop {
            let options =
                ListOptions { start_after: start_after.clone(), ..ListOptions::default() };
            let page = self
                .store
                .list(prefix.as_bytes(), options)
                .await
                .map_err(|e| store_error(def, "", e))?;
            for kv in &page.items {
                let peer = self.convert_out(def, codec::decode(&kv.value, kv.mod_revision.0));
                if object::name(&peer) != object::name(object)
                    || object::namespace(&peer) != object::namespace(object)
                {
                    peers.push(peer);
                }
            }
            match page.next_after {
                Some(after) => start_after = Some(after),
                None => break,
            }
        }
        for check in checks {
            check.check(object, &peers)?;
        }
        Ok(())
    }

    /// Effects of a committed write that must be visible before the response, by resource
    /// (e.g. a CRD's kinds are served as soon as the CRD is stored).
    pub(crate) fn after_write(&self, def: &ResourceDef, object: &Value, written: Written) {
        for (group, plural, hook) in &self.write_hooks {
            if def.group == *group && def.plural == *plural {
                hook.written(self, object, written);
            }
        }
    }

    /// The optimistic-concurrency loop behind every update, patch and delete: read, decide,
    /// compare-and-swap, retry on a concurrent change (the decision re-checks any client
    /// precondition against the fresh object).
    pub async fn guaranteed_update(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        dry: bool,
        decide: &mut (dyn FnMut(Option<&Value>) -> Result<Decision, ApiError> + Send),
    ) -> Result<(Value, Written), ApiError> {
        let key = def.key(ns, name);
        for _attempt in 0..32 {
            let kv = self
                .store
                .get(key.as_bytes(), None)
                .await
                .map_err(|e| store_error(def, name, e))?;
            let current = kv
                .as_ref()
                .map(|kv| self.convert_out(def, codec::decode(&kv.value, kv.mod_revision.0)));
            let decision = decide(current.as_ref())?;
            let decision = match decision {
                Decision::Update(new)
                    if meta_str(&new, "deletionTimestamp").is_some()
                        && object::finalizers(&new).is_empty()
                        && !(def.kind == "Namespace"
                            && def.group.is_empty()
                            && new
                                .pointer("/spec/finalizers")
                                .and_then(Value::as_array)
                                .is_some_and(|f| !f.is_empty())) =>
                {
                    Decision::Delete
                }
                other => other,
            };
            match (decision, kv, current) {
                (Decision::Unchanged, _, Some(current)) => {
                    return Ok((current, Written::Unchanged));
                }
                (Decision::Unchanged, _, None) => {
                    return Err(ApiError::not_found(&def.plural, &def.group, name));
                }
                (Decision::Create(object), None, _) => {
                    if dry {
                        self.check_write(def, None, &object, true).await?;
                        return Ok((object, Written::Created));
                    }
                    match self.store_create(def, ns, object).await {
                        Ok(created) => return Ok((created, Written::Created)),
                        Err(e) if e.code == 409 => continue,
                        Err(e) => return Err(e),
                    }
                }
                (Decision::Create(_), Some(_), _) => continue,
                (Decision::Update(object), Some(kv), current) => {
                    let commits = self.check_write(def, current.as_ref(), &object, dry).await?;
                    if dry {
                        return Ok((object, Written::Updated));
                    }
                    let object = self.convert_in(def, object);
                    match self
                        .store
                        .update(
                            Bytes::from(key.clone().into_bytes()),
                            Bytes::from(codec::encode(&object)),
                            kv.mod_revision,
                        )
                        .await
                    {
                        Ok(new) => {
                            let updated = self
                                .convert_out(def, codec::decode(&new.value, new.mod_revision.0));
                            self.after_write(def, &updated, Written::Updated);
                            self.committed(commits).await;
                            return Ok((updated, Written::Updated));
                        }
                        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                        Err(e) => return Err(store_error(def, name, e)),
                    }
                }
                (Decision::Delete, Some(kv), Some(current)) => {
                    if dry {
                        return Ok((current, Written::Deleted));
                    }
                    match self.store.delete(key.as_bytes(), Some(kv.mod_revision)).await {
                        Ok(deleted) => {
                            let mut last = current;
                            object::set_meta(
                                &mut last,
                                "resourceVersion",
                                json!(deleted.revision.0.to_string()),
                            );
                            self.after_write(def, &last, Written::Deleted);
                            return Ok((last, Written::Deleted));
                        }
                        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                        Err(e) => return Err(store_error(def, name, e)),
                    }
                }
                (Decision::Update(_) | Decision::Delete, _, _) => {
                    return Err(ApiError::not_found(&def.plural, &def.group, name));
                }
            }
        }
        Err(ApiError::conflict_because(
            &def.plural,
            &def.group,
            name,
            "too many concurrent modifications; please retry",
        ))
    }

    /// The shared part of update and patch: from the desired object to a decision.
    pub(crate) fn decide_update(
        &self,
        req: &Req<'_>,
        current: &Value,
        desired: Value,
        part: Part,
        manager: &str,
        record: bool,
    ) -> Result<Decision, ApiError> {
        let def = req.def;
        let mut new = strategy::prepare_update(def, current, desired, part)?;
        strategy::validate_meta(def, &new)?;
        self.schema_checks(req, &mut new, Some(current), part)?;
        let subresource = part.subresource();
        self.admit(
            &AdmissionRequest {
                operation: Operation::Update,
                served_crds: &self.served_crds,
                def,
                old: Some(current),
                subresource,
                user: req.user,
                dry_run: dry_run(req.query).unwrap_or(false),
            },
            &mut new,
        )?;
        if record {
            strategy::record_managed(def, Some(current), &mut new, manager, &now_rfc3339(), part);
        }
        if strategy::same_object(current, &new) {
            return Ok(Decision::Unchanged);
        }
        Ok(Decision::Update(new))
    }

    pub(crate) async fn update(
        &self,
        req: &Req<'_>,
        name: &str,
        sub: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let (def, ns) = (req.def, req.ns);
        let dry = dry_run(req.query)?;
        let mut desired = req.decode(body)?;
        let manager = field_manager(req.query, req.headers);
        if sub == Some("scale") {
            let precondition = meta_str(&desired, "resourceVersion").map(str::to_owned);
            let (object, _) = self
                .guaranteed_update(def, ns, name, dry, &mut |current| {
                    let Some(current) = current else {
                        return Err(ApiError::not_found(&def.plural, &def.group, name));
                    };
                    if let Some(rv) = &precondition
                        && meta_str(current, "resourceVersion") != Some(rv.as_str())
                    {
                        return Err(ApiError::conflict(&def.plural, &def.group, name));
                    }
                    let mut new = current.clone();
                    strategy::apply_scale(def, &mut new, &desired)?;
                    self.decide_update(req, current, new, Part::Main, &manager, true)
                })
                .await?;
            return Ok(req.respond(200, &strategy::scale_of(def, &object)?));
        }
        let part = Part::of(sub);
        strategy::check_type(def, &mut desired)?;
        strategy::check_namespace(def, &mut desired, ns)?;
        if object::name(&desired) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object::name(&desired)
            )));
        }
        let precondition =
            meta_str(&desired, "resourceVersion").filter(|s| !s.is_empty()).map(str::to_owned);
        let (object, _) = self
            .guaranteed_update(def, ns, name, dry, &mut |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(&def.plural, &def.group, name));
                };
                if let Some(rv) = &precondition
                    && meta_str(current, "resourceVersion") != Some(rv.as_str())
                {
                    return Err(ApiError::conflict(&def.plural, &def.group, name));
                }
                self.decide_update(req, current, desired.clone(), part, &manager, true)
            })
            .await?;
        Ok(req.respond(200, &object))
    }

    pub(crate) async fn patch(
        &self,
        req: &Req<'_>,
        name: &str,
        sub: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let (def, query, headers) = (req.def, req.query, req.headers);
        let dry = dry_run(query)?;
        let kind = request::body_type(headers);
        let force = query.get("force");
        if kind != BodyType::ApplyPatch && force.is_some() {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                vec![Cause::forbidden("force", "may not be specified for non-apply patch")],
            ));
        }
        let patch_doc = match kind {
            BodyType::JsonPatch
            | BodyType::MergePatch
            | BodyType::StrategicPatch
            | BodyType::Json => request::parse_document(body, false)?,
            BodyType::ApplyPatch => request::parse_document(body, true)?,
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
        };
        if kind == BodyType::StrategicPatch && !def.strategic {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        if kind == BodyType::ApplyPatch {
            return self.apply(req, name, sub, patch_doc, force == Some("true"), dry).await;
        }
        let manager = field_manager(query, headers);
        let part = Part::of(sub);
        let apply_patch = |target: &mut Value| -> Result<(), ApiError> {
            let result = match kind {
                BodyType::JsonPatch => patch::json::apply(target, &patch_doc),
                BodyType::StrategicPatch => patch::strategic::apply(
                    target,
                    &patch_doc,
                    if sub == Some("scale") { "Scale" } else { &def.kind },
                ),
                _ => {
                    if !patch_doc.is_object() {
                        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                    }
                    patch::merge::apply(target, &patch_doc);
                    Ok(())
                }
            };
            result.map_err(|e| match e {
                PatchError::Malformed(m) => ApiError::bad_request(m),
                PatchError::Failed(m) => ApiError::unprocessable(m),
            })
        };
        let (object, written) = self
            .guaranteed_update(def, req.ns, name, dry, &mut |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(&def.plural, &def.group, name));
                };
                let current_rv =
                    meta_str(current, "resourceVersion").unwrap_or_default().to_owned();
                if sub == Some("scale") {
                    let mut scale = strategy::scale_of(def, current)?;
                    apply_patch(&mut scale)?;
                    if meta_str(&scale, "resourceVersion").is_some_and(|rv| rv != current_rv) {
                        return Err(ApiError::conflict(&def.plural, &def.group, name));
                    }
                    let mut new = current.clone();
                    strategy::apply_scale(def, &mut new, &scale)?;
                    return self.decide_update(req, current, new, Part::Main, &manager, true);
                }
                let mut patched = current.clone();
                apply_patch(&mut patched)?;
                if let Some(rv) = meta_str(&patched, "resourceVersion")
                    && rv != current_rv
                {
                    return Err(ApiError::conflict(&def.plural, &def.group, name));
                }
                strategy::check_type(def, &mut patched)?;
                // A patch that replaces managedFields (kubectl's CSA→SSA migration) is kept as is.
                let replaced_managed = patched.pointer("/metadata/managedFields")
                    != current.pointer("/metadata/managedFields");
                self.decide_update(req, current, patched, part, &manager, !replaced_managed)
            })
            .await?;
        let _ = written;
        if sub == Some("scale") {
            return Ok(req.respond(200, &strategy::scale_of(def, &object)?));
        }
        Ok(req.respond(200, &object))
    }

    pub(crate) async fn apply(
        &self,
        req: &Req<'_>,
        name: &str,
        sub: Option<&str>,
        mut applied: Value,
        force: bool,
        dry: bool,
    ) -> Result<Response<Body>, ApiError> {
        let (def, ns) = (req.def, req.ns);
        let Some(manager) = req.query.get("fieldManager").map(str::to_owned) else {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                vec![Cause::required("fieldManager", "is required for apply patch")],
            ));
        };
        if !applied.is_object() {
            return Err(ApiError::bad_request("an apply patch must be an object"));
        }
        strategy::check_type(def, &mut applied)?;
        strategy::check_namespace(def, &mut applied, ns)?;
        if object::name(&applied) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object::name(&applied)
            )));
        }
        let part = Part::of(sub);
        if let Some(ns) = ns {
            self.check_namespace_open(ns).await?;
        }
        let lists = |path: &[&str]| strategy::list_kind(def, path);
        let precondition =
            meta_str(&applied, "resourceVersion").filter(|s| !s.is_empty()).map(str::to_owned);
        let (object, written) = self
            .guaranteed_update(def, ns, name, dry, &mut |current| {
                let Some(current) = current else {
                    if part != Part::Main {
                        return Err(ApiError::not_found(&def.plural, &def.group, name));
                    }
                    let created = self.new_object(req, applied.clone(), &manager, true)?;
                    return Ok(Decision::Create(created));
                };
                if let Some(rv) = &precondition
                    && meta_str(current, "resourceVersion") != Some(rv.as_str())
                {
                    return Err(ApiError::conflict(&def.plural, &def.group, name));
                }
                let mut entries = managed::decode_entries(current);
                let mut scoped_applied = applied.clone();
                if let Value::Object(m) = &mut scoped_applied {
                    m.remove("status");
                    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                        meta.remove("managedFields");
                    }
                }
                if part != Part::Main {
                    scoped_applied =
                        json!({"status": applied.get("status").cloned().unwrap_or(json!({}))});
                }
                let subresource = part.subresource();
                let merged = managed::apply(
                    current,
                    &mut entries,
                    &scoped_applied,
                    &manager,
                    &def.api_version(),
                    &now_rfc3339(),
                    subresource,
                    force,
                    &lists,
                )
                .map_err(|conflicts| {
                    let mut error =
                        ApiError::new(409, "Conflict", managed::conflict_message(&conflicts));
                    error.causes = conflicts
                        .iter()
                        .map(|c| Cause {
                            reason: "FieldManagerConflict".into(),
                            message: if c.operation == "Update" {
                                format!("conflict with {:?} using {}", c.manager, c.api_version)
                            } else {
                                format!("conflict with {:?}", c.manager)
                            },
                            field: c.field.clone(),
                        })
                        .collect();
                    error
                })?;
                let mut merged = merged;
                strategy::set_entries(&mut merged, &entries);
                self.decide_update(req, current, merged, part, &manager, false)
            })
            .await?;
        let status = if written == Written::Created { 201 } else { 200 };
        Ok(req.respond(status, &object))
    }

    pub(crate) async fn delete(
        &self,
        req: &Req<'_>,
        name: &str,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let options = delete_options(
            crate::encoding::decode_options(req.headers, body, "DeleteOptions")?.as_ref(),
            req.query,
        )?;
        let dry = dry_run(req.query)? || options.dry_run;
        let (object, written) =
            self.delete_object(req.def, req.ns, name, &options, dry, req.user).await?;
        let status = if written == Written::Deleted
            || written == Written::Updated
            || written == Written::Unchanged
        {
            200
        } else {
            202
        };
        Ok(req.respond(status, &object))
    }

    /// Deletes one object under the given options (finalizers and propagation honoured).
    pub async fn delete_object(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        options: &DeleteOptions,
        dry: bool,
        user: &User,
    ) -> Result<(Value, Written), ApiError> {
        self.guaranteed_update(def, ns, name, dry, &mut |current| {
            let Some(current) = current else { return Err(ApiError::not_found(&def.plural, &def.group, name)) };
            if let Some(uid) = &options.uid
                && meta_str(current, "uid") != Some(uid.as_str())
            {
                return Err(ApiError::conflict_because(&def.plural, &def.group, name, &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(current, "uid").unwrap_or_default()
                )));
            }
            if let Some(rv) = &options.resource_version
                && meta_str(current, "resourceVersion") != Some(rv.as_str())
            {
                return Err(ApiError::conflict_because(&def.plural, &def.group, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(current, "resourceVersion").unwrap_or_default()
                )));
            }
            let mut check = current.clone();
            self.admit(&AdmissionRequest { operation: Operation::Delete, served_crds: &self.served_crds, def, old: Some(current), subresource: None, user, dry_run: dry }, &mut check)?;
            let mut finalizers = object::finalizers(current);
            let policy_finalizer = match options.propagation.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ if options.orphan_dependents == Some(true) => Some("orphan"),
                _ => None,
            };
            let namespace_finalizing = def.kind == "Namespace" && def.group.is_empty()
                && current.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
            let deleting = meta_str(current, "deletionTimestamp").is_some();
            if let Some(f) = policy_finalizer
                && !finalizers.iter().any(|x| x == f)
                && !deleting
            {
                finalizers.push(f.to_owned());
            }
            if finalizers.is_empty() && !namespace_finalizing {
                return Ok(Decision::Delete);
            }
            if deleting {
                return Ok(Decision::Unchanged);
            }
            let mut new = current.clone();
            object::set_meta(&mut new, "deletionTimestamp", json!(now_rfc3339()));
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            // Being deleted is a change of what the object asks for: its generation moves (as
            // Kubernetes' registry marks an object as deleting), so controllers that follow
            // generation changes only see it.
            if let Some(generation) = current.pointer("/metadata/generation").and_then(Value::as_i64)
                && generation > 0
            {
                object::set_meta(&mut new, "generation", json!(generation + 1));
            }
            object::set_meta(&mut new, "finalizers", json!(finalizers));
            if namespace_finalizing {
                new["status"]["phase"] = json!("Terminating");
            }
            Ok(Decision::Update(new))
        })
        .await
    }

    pub(crate) async fn delete_collection(
        &self,
        req: &Req<'_>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let (def, ns, query, user) = (req.def, req.ns, req.query, req.user);
        let options = delete_options(
            crate::encoding::decode_options(req.headers, body, "DeleteOptions")?.as_ref(),
            query,
        )?;
        let dry = dry_run(query)? || options.dry_run;
        let filter = Filter::parse(def, query)?;
        let revision = self.store.current_revision().await.map_err(|e| store_error(def, "", e))?;
        let (items, _, _) = self.list_raw(def, ns, &filter, revision, None, None).await?;
        let mut deleted = Vec::new();
        for (stored, rv, decoded) in items {
            let object = decoded.unwrap_or_else(|| codec::decode(&stored, rv));
            let name = object::name(&object).to_owned();
            let item_ns =
                if def.namespaced { Some(object::namespace(&object).to_owned()) } else { None };
            match self.delete_object(def, item_ns.as_deref(), &name, &options, dry, user).await {
                Ok((object, _)) => deleted.push(object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json_response(
            200,
            &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": {}, "items": deleted}),
        ))
    }
}
