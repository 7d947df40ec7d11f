//! Request handling: from a decoded request to a response, per verb. The store is reached only
//! through [`Api::guaranteed_update`], `create`, `list` and `watch`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apimachinery::managed;
use apimachinery::object::{self, meta_str};
use apimachinery::patch::{self, PatchError};
use apimachinery::selector::{FieldSelector, LabelSelector};
use apimachinery::{ApiError, Cause};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use store::{ListOptions, Revision, Store, StoreError};

use crate::codec;
use crate::crd;
use crate::discovery;
use crate::metrics::Metrics;
use crate::registry::{Registry, ResourceDef};
use crate::request::{self, BodyType, Format, Query, Route, Target, Wanted};
use crate::strategy::{self, Part};
use crate::table::{IncludeObject, TableBuilder};

pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

fn too_many(message: &str) -> ApiError {
    let mut e = ApiError::new(429, "TooManyRequests", message);
    e.retry_after = Some(1);
    e
}

/// Reads a request body, bounded in size and in time.
async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let collect = http_body_util::Limited::new(body, MAX_BODY_BYTES).collect();
    match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Err(_) => Err(ApiError::new(
            408,
            "Timeout",
            format!("the request body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(
            ApiError::too_large(format!("the request body is larger than {MAX_BODY_BYTES} bytes")),
        ),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// A fair share of the server for each caller: no user (but the exempt groups, as Kubernetes
/// exempts `system:masters`) holds more than its share of in-flight slots or of bodies being
/// read at once.
pub struct Fairness {
    pub requests: WatchSlots,
    pub bodies: WatchSlots,
    pub exempt_groups: Vec<String>,
}

impl Fairness {
    /// Shares of a server allowing `inflight` requests at once (0: unbounded).
    pub fn new(inflight: usize, exempt_groups: Vec<String>) -> Fairness {
        let share = if inflight == 0 { 0 } else { (inflight / 4).max(1) };
        Fairness { requests: WatchSlots::new(share), bodies: WatchSlots::new(share), exempt_groups }
    }

    pub fn exempt(&self, user: &User) -> bool {
        user.groups.iter().any(|g| self.exempt_groups.contains(g))
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// What a write does, for admission plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

pub struct AdmissionRequest<'a> {
    pub operation: Operation,
    pub def: &'a ResourceDef,
    /// CRDs of kinds the server serves itself, by name.
    pub served_crds: &'a std::collections::HashMap<String, Value>,
    pub old: Option<&'a Value>,
    pub subresource: Option<&'a str>,
    pub user: &'a User,
}

/// Mutating and validating admission, run inside the API server (what upstream does in
/// webhooks). `object` is the object to be stored (for deletes: the stored object).
pub trait Admission: Send + Sync {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError>;
}

/// Decides whether `user` may perform a request. The default allows every authenticated user.
pub trait Authorizer: Send + Sync {
    fn authorize(
        &self,
        user: &User,
        verb: &str,
        target: Option<&Target>,
        path: &str,
    ) -> Result<(), ApiError>;
}

pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &User, _: &str, _: Option<&Target>, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Shared state of a running API server.
pub struct Api {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) admission: Vec<Arc<dyn Admission>>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    /// Signs and checks ServiceAccount tokens.
    pub(crate) sa_tokens: Option<Arc<crate::satoken::TokenSigner>>,
    /// The RBAC index (for rules reviews), when RBAC is on.
    pub(crate) rbac: Option<crate::rbac::RbacAuthorizer>,
    pub(crate) git_version: String,
    pub(crate) server_address: String,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// The longest a watch without `timeoutSeconds` stays open.
    pub(crate) default_watch_timeout: Duration,
    pub(crate) bookmark_interval: Duration,
    pub(crate) watch_lines: crate::watch::SharedLines,
    /// Fault injection (simulated members): stop answering, or fail health checks.
    pub availability: Availability,
    /// Bounds the requests being served at once (watches excepted); beyond it: 429.
    pub(crate) inflight: Option<Arc<tokio::sync::Semaphore>>,
    /// Where mutating requests are recorded.
    pub(crate) audit: Option<crate::audit::AuditLog>,
    /// Open watches per user.
    pub(crate) watches: WatchSlots,
    /// Each user's share of in-flight requests and of bodies being read.
    pub(crate) fairness: Fairness,
    /// Requests without credentials are served as `system:anonymous` (where authorized).
    pub(crate) anonymous_auth: bool,
    /// CustomResourceDefinitions of kinds served natively (Karmada's), by name.
    pub(crate) served_crds: std::collections::HashMap<String, Value>,
}

/// Switches for simulating an unreachable or unhealthy server.
#[derive(Default)]
pub struct Availability {
    pub unreachable: std::sync::atomic::AtomicBool,
    pub unhealthy: std::sync::atomic::AtomicBool,
}

impl Availability {
    pub fn is_unreachable(&self) -> bool {
        self.unreachable.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn is_unhealthy(&self) -> bool {
        self.unhealthy.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

pub fn json_response(status: u16, value: &Value) -> Response<Body> {
    respond(status, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after
        && let Ok(v) = seconds.to_string().parse()
    {
        response.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    response
}

/// An object's `PartialObjectMetadata` (what metadata-only clients ask for).
pub fn partial_metadata(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]})
}

pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    apimachinery::time::format_rfc3339(now_seconds())
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

/// `fieldValidation`: what happens to fields an object's schema does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// 400 `strict decoding error: unknown field "..."`.
    Strict,
    /// Dropped, with a `Warning` header per field (Kubernetes' default).
    Warn,
    /// Dropped silently.
    Ignore,
}

impl FieldValidation {
    fn parse(query: &Query) -> Result<FieldValidation, ApiError> {
        match query.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Strict\", \"Warn\": got {other:?}"
            ))),
        }
    }
}

/// A resource request being served: the resource, the caller, the query and how answers are
/// encoded. Verb handlers take it instead of long argument lists.
pub(crate) struct Req<'a> {
    pub def: &'a ResourceDef,
    pub ns: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: &'a Query,
    pub user: &'a User,
    /// The negotiated response encoding.
    pub format: Format,
    pub validation: FieldValidation,
    warnings: parking_lot::Mutex<Vec<String>>,
}

impl<'a> Req<'a> {
    pub fn new(
        def: &'a ResourceDef,
        ns: Option<&'a str>,
        headers: &'a HeaderMap,
        query: &'a Query,
        user: &'a User,
        format: Format,
    ) -> Result<Req<'a>, ApiError> {
        let validation = FieldValidation::parse(query)?;
        Ok(Req { def, ns, headers, query, user, format, validation, warnings: Default::default() })
    }

    /// Applies `fieldValidation` to fields the object's schema does not know.
    pub fn unknown_fields(&self, fields: &[String]) -> Result<(), ApiError> {
        if fields.is_empty() {
            return Ok(());
        }
        match self.validation {
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            FieldValidation::Warn => {
                let mut warnings = self.warnings.lock();
                for f in fields {
                    let w = format!("unknown field {f:?}");
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }

    /// Decodes a create or update body (JSON, YAML or protobuf). As Kubernetes' decoders, a
    /// body must say what it is: `kind` and `apiVersion` (which must then fit the endpoint).
    pub fn decode(&self, body: &[u8]) -> Result<Value, ApiError> {
        let decoded = crate::encoding::decode_body(self.headers, body)?;
        self.unknown_fields(&decoded.unknown_fields)?;
        let object = decoded.object;
        if object.is_object() {
            let text =
                |k: &str| object.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            let shown = || {
                let mut s = serde_json::to_string(&object).unwrap_or_default();
                if s.len() > 100 {
                    let mut cut = 100;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                    s.push_str("...");
                }
                s
            };
            if !text("kind") {
                return Err(ApiError::bad_request(format!(
                    "Object 'Kind' is missing in '{}'",
                    shown()
                )));
            }
            if !text("apiVersion") {
                return Err(ApiError::bad_request(format!(
                    "Object 'apiVersion' is missing in '{}'",
                    shown()
                )));
            }
        }
        Ok(object)
    }

    /// An object answer in the negotiated format, with any warnings.
    pub fn respond(&self, status: u16, object: &Value) -> Response<Body> {
        let (content_type, bytes) = crate::encoding::object_body(self.format, object);
        self.finish(respond(status, content_type, bytes))
    }

    /// Adds the collected warnings to a response.
    pub fn finish(&self, mut response: Response<Body>) -> Response<Body> {
        crate::encoding::add_warnings(response.headers_mut(), &self.warnings.lock());
        response
    }
}

impl Api {
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The Kubernetes version this server reports.
    pub fn git_version(&self) -> &str {
        &self.git_version
    }

    /// Handles one request from an authenticated (or anonymous) caller.
    ///
    /// The order bounds what one caller can hold: the caller is authenticated and authorized
    /// first; its body is then read within [`BODY_TIMEOUT`], holding none of the server's
    /// in-flight slots (a caller reads at most its share of bodies at once); only then does the
    /// request take an in-flight slot (again at most the caller's share of them) to be served.
    pub async fn handle(
        self: &Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
        user: Option<User>,
    ) -> Response<Body> {
        // An "unreachable" server never answers: hold the request until it is reachable again.
        while self.availability.is_unreachable() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let query = Query::parse(parts.uri.query());
        let route = request::route(&path);
        let (verb, resource) = describe(&parts.method, &route, &query);
        let public = matches!(route, Some(Route::Version | Route::Health(_)));
        let audit_user = user.clone();
        let audit_target = match (&self.audit, &route) {
            (Some(_), Some(Route::Resource(t))) => Some(t.clone()),
            _ => None,
        };
        let response =
            match self.serve(&parts, body, route, &query, &verb, &path, public, user).await {
                Ok(response) => response,
                Err(e) => error_response(&e),
            };
        if let Some(audit) = &self.audit
            && matches!(
                verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
        {
            audit.record(
                audit_user.as_ref(),
                &parts.headers,
                &verb,
                audit_target.as_ref(),
                &path,
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        if verb != "watch" {
            self.metrics.observe(&verb, &resource, response.status().as_u16(), started.elapsed());
        } else {
            self.metrics.observe(&verb, &resource, response.status().as_u16(), Duration::ZERO);
        }
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: hyper::body::Incoming,
        route: Option<Route>,
        query: &Query,
        verb: &str,
        path: &str,
        public: bool,
        user: Option<User>,
    ) -> Result<Response<Body>, ApiError> {
        let user = match (user, public) {
            (None, false) => return Err(ApiError::unauthorized()),
            (Some(mut user), _) => {
                if !user.groups.iter().any(|g| g == "system:authenticated") {
                    user.groups.push("system:authenticated".into());
                }
                user
            }
            (None, true) if !self.anonymous_auth => return Err(ApiError::unauthorized()),
            (None, true) => User {
                name: "system:anonymous".into(),
                groups: vec!["system:unauthenticated".into()],
            },
        };
        // Impersonation (`kubectl --as`, `--as-group`): allowed by the `impersonate` verb on
        // users / groups / serviceaccounts, then the request is theirs.
        let user = self.impersonate(&user, &parts.headers)?;
        // As Kubernetes does, a list or watch narrowed to one object by the field selector
        // `metadata.name=X` is authorized as a request for X.
        let named = match &route {
            Some(Route::Resource(t)) if t.name.is_none() && (verb == "list" || verb == "watch") => {
                query
                    .get("fieldSelector")
                    .and_then(|f| f.strip_prefix("metadata.name="))
                    .filter(|n| !n.contains(','))
                    .map(|n| Target { name: Some(n.to_owned()), ..t.clone() })
            }
            _ => None,
        };
        let target = match (&named, &route) {
            (Some(t), _) => Some(t),
            (None, Some(Route::Resource(t))) => Some(t),
            _ => None,
        };
        self.authorizer.authorize(&user, verb, target, path)?;
        let exempt = public || self.fairness.exempt(&user);
        let bytes = if matches!(
            parts.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            let _reading = if exempt {
                None
            } else {
                Some(self.fairness.bodies.take_or_429(&user.name, "request bodies being read")?)
            };
            read_body(body).await?
        } else {
            Bytes::new()
        };
        // Overload protection (Kubernetes' --max-requests-inflight): health checks and watches
        // are not counted; anything beyond the limit, or beyond the caller's share of it, is
        // refused at once with 429.
        let _permit = match (&self.inflight, verb == "watch" || public) {
            (Some(limit), false) => match Arc::clone(limit).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Err(too_many("too many requests in flight, please try again later"));
                }
            },
            _ => None,
        };
        let _share = match (verb == "watch" || exempt, self.inflight.is_some()) {
            (false, true) => {
                Some(self.fairness.requests.take_or_429(&user.name, "requests in flight")?)
            }
            _ => None,
        };
        // Each user holds a bounded number of open watches.
        let slot = if verb == "watch" {
            match self.watches.take(&user.name) {
                Some(slot) => Some(slot),
                None => {
                    return Err(ApiError::new(
                        429,
                        "TooManyRequests",
                        format!(
                            "too many open watches for user {:?} (at most {})",
                            user.name, self.watches.limit
                        ),
                    ));
                }
            }
        } else {
            None
        };
        let response = self.dispatch(parts, route, query, bytes, &user).await?;
        Ok(match slot {
            // The slot is released when the watch's body is dropped.
            Some(slot) => response.map(|body| {
                body.map_frame(move |frame| {
                    let _held = &slot;
                    frame
                })
                .boxed()
            }),
            None => response,
        })
    }

    async fn dispatch(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        route: Option<Route>,
        query: &Query,
        body: Bytes,
        user: &User,
    ) -> Result<Response<Body>, ApiError> {
        let Some(route) = route else { return Err(ApiError::path_not_found()) };
        let get_only = |m: &Method| {
            if *m == Method::GET || *m == Method::HEAD {
                Ok(())
            } else {
                Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ))
            }
        };
        match route {
            Route::Version => {
                get_only(&parts.method)?;
                Ok(json_response(200, &discovery::version(&self.git_version)))
            }
            Route::Health(_) if self.availability.is_unhealthy() => Ok(respond(
                500,
                "text/plain; charset=utf-8",
                "[-]etcd failed: reason withheld\nhealthz check failed",
            )),
            Route::Health(_) => Ok(respond(200, "text/plain; charset=utf-8", "ok")),
            Route::Metrics => Ok(respond(200, "text/plain; version=0.0.4", self.metrics.render())),
            Route::OpenApiV2 => {
                // An empty protobuf Document: kubectl accepts it and falls back to its compiled-in
                // types; see KUBE-API-COMPAT.md §0.3.
                Ok(respond(
                    200,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    Bytes::new(),
                ))
            }
            Route::OpenApiV3Index => {
                Ok(json_response(200, &discovery::openapi_v3_index(&self.registry)))
            }
            Route::OpenApiV3(gv) => match discovery::openapi_v3_doc(&self.registry, &gv) {
                Some(doc) => Ok(json_response(200, &doc)),
                None => Err(ApiError::path_not_found()),
            },
            Route::CoreGroup => {
                get_only(&parts.method)?;
                match request::aggregated_discovery(&parts.headers) {
                    Some(v) => Ok(respond(
                        200,
                        &discovery::aggregated_content_type(v),
                        serde_json::to_vec(&discovery::aggregated(&self.registry, true, v))
                            .unwrap_or_default(),
                    )),
                    None => Ok(json_response(200, &discovery::core_versions(&self.server_address))),
                }
            }
            Route::Groups => {
                get_only(&parts.method)?;
                match request::aggregated_discovery(&parts.headers) {
                    Some(v) => Ok(respond(
                        200,
                        &discovery::aggregated_content_type(v),
                        serde_json::to_vec(&discovery::aggregated(&self.registry, false, v))
                            .unwrap_or_default(),
                    )),
                    None => Ok(json_response(200, &discovery::groups(&self.registry))),
                }
            }
            Route::Group(name) => {
                get_only(&parts.method)?;
                discovery::group(&self.registry, &name)
                    .map(|g| json_response(200, &g))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::ResourceList { group, version } => {
                get_only(&parts.method)?;
                discovery::resource_list(&self.registry, &group, &version)
                    .map(|l| json_response(200, &l))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::Resource(target) if crate::review::is_review(&target) => {
                self.review(parts, &target, body, user).await
            }
            Route::Resource(target) => self.resource(parts, target, query, body, user).await,
        }
    }

    async fn resource(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        target: Target,
        query: &Query,
        body: Bytes,
        user: &User,
    ) -> Result<Response<Body>, ApiError> {
        let def = self
            .registry
            .get(&target.group, &target.version, &target.resource)
            .ok_or_else(ApiError::path_not_found)?;
        if !def.namespaced && target.namespace.is_some() {
            return Err(ApiError::path_not_found());
        }
        if def.namespaced && target.namespace.is_none() && target.name.is_some() {
            return Err(ApiError::path_not_found());
        }
        let ns = target.namespace.as_deref();
        let headers = &parts.headers;
        let (wanted, format) = request::negotiate(headers, def.protobuf)?;
        let req = Req::new(&def, ns, headers, query, user, format)?;
        let sub_ok = |sub: Option<&str>| match sub {
            None => true,
            Some("status") => def.status,
            Some("scale") => def.scale.is_some(),
            Some("approval") => {
                def.group == "certificates.k8s.io" && def.plural == "certificatesigningrequests"
            }
            Some(_) => false,
        };
        match (&parts.method, target.name.as_deref(), target.subresource.as_deref()) {
            (&Method::POST, Some(name), Some("token"))
                if def.group.is_empty() && def.plural == "serviceaccounts" =>
            {
                self.token_request(&req, name, &body).await
            }
            (&Method::POST, Some(name), Some("eviction"))
                if def.group.is_empty() && def.plural == "pods" =>
            {
                self.evict(&req, name, &body).await
            }
            (&Method::GET, None, None) => {
                if query.flag("watch") {
                    crate::watch::watch(
                        Arc::clone(self),
                        def,
                        ns.map(str::to_owned),
                        query.clone(),
                        wanted,
                        format,
                    )
                    .await
                } else {
                    self.list(&req, wanted).await
                }
            }
            (&Method::GET, Some(name), sub @ (None | Some("status" | "approval")))
                if sub_ok(sub) =>
            {
                self.get(&req, name, wanted).await
            }
            (&Method::GET, Some(name), Some("scale")) if def.scale.is_some() => {
                let object = self.read(&def, ns, name).await?;
                Ok(req.respond(200, &strategy::scale_of(&def, &object)?))
            }
            (&Method::POST, None, None) => self.create(&req, &body).await,
            (&Method::PUT, Some(name), sub) if sub_ok(sub) => {
                self.update(&req, name, sub, &body).await
            }
            (&Method::PATCH, Some(name), sub) if sub_ok(sub) => {
                self.patch(&req, name, sub, &body).await
            }
            (&Method::DELETE, Some(name), None) => self.delete(&req, name, &body).await,
            (&Method::DELETE, None, None) => self.delete_collection(&req, &body).await,
            (_, Some(_), sub) if !sub_ok(sub) => Err(ApiError::path_not_found()),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
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
    fn convert_out(&self, def: &ResourceDef, mut object: Value) -> Value {
        if let Some(alias) = def.stored_as {
            return alias.from_storage(object, &def.api_version());
        }
        if def.version != def.storage_version {
            object["apiVersion"] = json!(def.api_version());
        }
        object
    }

    fn convert_in(&self, def: &ResourceDef, mut object: Value) -> Value {
        if let Some(alias) = def.stored_as {
            return alias.to_storage(object);
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

    async fn get(
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
    async fn list_position(
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

    async fn list(&self, req: &Req<'_>, wanted: Wanted) -> Result<Response<Body>, ApiError> {
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

    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        for plugin in &self.admission {
            plugin.admit(request, object)?;
        }
        Ok(())
    }

    /// Checks that a namespace exists and is not terminating, for creates inside it.
    async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
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
    fn schema_checks(
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
    fn new_object(
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

    async fn create(&self, req: &Req<'_>, body: &[u8]) -> Result<Response<Body>, ApiError> {
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
        Ok(created)
    }

    /// Effects of a committed write that must be visible before the response: a CRD's kinds
    /// are served as soon as the CRD is stored.
    fn after_write(&self, def: &ResourceDef, object: &Value, written: Written) {
        if def.kind == "CustomResourceDefinition" && def.group == "apiextensions.k8s.io" {
            crd::sync_registry(self, object, written == Written::Deleted);
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
                        return Ok((object, Written::Created));
                    }
                    match self.store_create(def, ns, object).await {
                        Ok(created) => return Ok((created, Written::Created)),
                        Err(e) if e.code == 409 => continue,
                        Err(e) => return Err(e),
                    }
                }
                (Decision::Create(_), Some(_), _) => continue,
                (Decision::Update(object), Some(kv), _) => {
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
    fn decide_update(
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

    async fn update(
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

    async fn patch(
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

    async fn apply(
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

    async fn delete(
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
            self.admit(&AdmissionRequest { operation: Operation::Delete, served_crds: &self.served_crds, def, old: Some(current), subresource: None, user }, &mut check)?;
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
            object::set_meta(&mut new, "finalizers", json!(finalizers));
            if namespace_finalizing {
                new["status"]["phase"] = json!("Terminating");
            }
            Ok(Decision::Update(new))
        })
        .await
    }

    async fn delete_collection(
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
fn describe(method: &Method, route: &Option<Route>, query: &Query) -> (String, String) {
    let Some(Route::Resource(t)) = route else {
        return (method.as_str().to_lowercase(), String::new());
    };
    let verb = match (method, t.name.is_some()) {
        (&Method::GET, false) if query.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    };
    let resource = match &t.subresource {
        Some(sub) => format!("{}/{sub}", t.resource),
        None => t.resource.clone(),
    };
    (verb.to_owned(), resource)
}

/// Whether a bearer token has the shape of a bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn bootstrap_token_parts(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

impl Api {
    /// Authenticates a bootstrap token against its Secret `kube-system/bootstrap-token-<id>`
    /// (Kubernetes' format): the secret must match, the token must not have expired, and it
    /// must be usable for authentication. The user is `system:bootstrap:<id>` in
    /// `system:bootstrappers` (plus the token's `auth-extra-groups`).
    pub async fn bootstrap_user(&self, token: &str) -> Result<User, ApiError> {
        let refused =
            |why: &str| ApiError::new(401, "Unauthorized", format!("Unauthorized: {why}"));
        let Some((id, secret)) = bootstrap_token_parts(token) else {
            return Err(refused("not a bootstrap token"));
        };
        let def = self.registry.get("", "v1", "secrets").ok_or_else(|| refused("no secrets"))?;
        let stored =
            match self.read(&def, Some("kube-system"), &format!("bootstrap-token-{id}")).await {
                Ok(secret) => secret,
                Err(e) if e.code == 404 => {
                    return Err(refused(&format!("bootstrap token {id} does not exist")));
                }
                Err(e) => return Err(e),
            };
        let field = |name: &str| -> Option<String> {
            let encoded = stored.pointer(&format!("/data/{name}"))?.as_str()?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            String::from_utf8(bytes).ok()
        };
        if stored.get("type").and_then(Value::as_str) != Some("bootstrap.kubernetes.io/token")
            || field("token-secret").as_deref() != Some(secret)
        {
            return Err(refused(&format!("wrong secret for bootstrap token {id}")));
        }
        if field("usage-bootstrap-authentication").as_deref() != Some("true") {
            return Err(refused(&format!("bootstrap token {id} is not for authentication")));
        }
        if let Some(expiration) = field("expiration") {
            let at = apimachinery::time::parse_rfc3339(&expiration);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if at.is_none_or(|at| at <= now) {
                return Err(refused(&format!("bootstrap token {id} expired at {expiration}")));
            }
        }
        let mut groups = vec!["system:bootstrappers".to_owned()];
        if let Some(extra) = field("auth-extra-groups") {
            groups.extend(
                extra.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned),
            );
        }
        Ok(User { name: format!("system:bootstrap:{id}"), groups })
    }
}

impl Api {
    /// TokenRequest: a token for ServiceAccount `namespace/name`.
    async fn token_request(
        &self,
        req: &Req<'_>,
        name: &str,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let namespace = req.ns.unwrap_or_default();
        let signer = self
            .sa_tokens
            .as_ref()
            .ok_or_else(|| ApiError::internal("service account tokens are not configured"))?;
        let account = self.read(req.def, Some(namespace), name).await?;
        let uid = account.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
        let request = req.decode(body)?;
        let (audiences, seconds) = crate::satoken::token_request(&request)?;
        let seconds = seconds.clamp(600, 48 * 3600);
        let (token, expires) =
            signer.issue(namespace, name, uid, &audiences, seconds).map_err(ApiError::internal)?;
        Ok(req.respond(
            201,
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now_rfc3339()},
                "spec": {"audiences": audiences, "expirationSeconds": seconds},
                "status": {"token": token,
                    "expirationTimestamp": apimachinery::time::format_rfc3339(expires)}}),
        ))
    }

    /// The user of a ServiceAccount token: valid signature, not expired, and the
    /// ServiceAccount still exists with the UID the token was issued for.
    pub async fn service_account_user(&self, token: &str) -> Result<User, ApiError> {
        let refused =
            |why: &str| ApiError::new(401, "Unauthorized", format!("Unauthorized: {why}"));
        let signer = self.sa_tokens.as_ref().ok_or_else(|| refused("no service account tokens"))?;
        let claims = signer.verify(token).map_err(|e| refused(&e))?;
        let def = self
            .registry
            .get("", "v1", "serviceaccounts")
            .ok_or_else(|| refused("no serviceaccounts"))?;
        let account = self
            .read(&def, Some(&claims.namespace), &claims.name)
            .await
            .map_err(|_| refused("the service account no longer exists"))?;
        if account.pointer("/metadata/uid").and_then(Value::as_str) != Some(claims.uid.as_str()) {
            return Err(refused("the service account was recreated since the token was issued"));
        }
        Ok(User {
            name: format!("system:serviceaccount:{}:{}", claims.namespace, claims.name),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", claims.namespace),
            ],
        })
    }
}

/// Slots per user (open watches, requests in flight, bodies being read), bounded (0:
/// unbounded).
#[derive(Default)]
pub struct WatchSlots {
    pub limit: usize,
    open: Arc<parking_lot::Mutex<std::collections::HashMap<String, usize>>>,
}

/// One open watch; released when dropped.
pub struct WatchSlot {
    user: String,
    open: Arc<parking_lot::Mutex<std::collections::HashMap<String, usize>>>,
}

impl WatchSlots {
    pub fn new(limit: usize) -> WatchSlots {
        WatchSlots { limit, open: Default::default() }
    }

    /// A slot for `user`, or 429 naming what ran out.
    pub fn take_or_429(&self, user: &str, what: &str) -> Result<WatchSlot, ApiError> {
        self.take(user).ok_or_else(|| {
            too_many(&format!("too many {what} for user {user:?} (at most {} at once)", self.limit))
        })
    }

    fn take(&self, user: &str) -> Option<WatchSlot> {
        let mut open = self.open.lock();
        let count = open.entry(user.to_owned()).or_insert(0);
        if self.limit > 0 && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(WatchSlot { user: user.to_owned(), open: Arc::clone(&self.open) })
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}
