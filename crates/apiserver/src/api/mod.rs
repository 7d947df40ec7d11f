//! The request pipeline: every request passes authentication (done by the connection, see
//! `lib.rs`) → impersonation → authorization → fairness and in-flight limits → the handler →
//! audit and metrics. Handlers are discovery, health and metrics, reviews (`review`), and
//! resource requests, which reach the storage core ([`Storage`]) through its verbs with a
//! [`Req`] (or a watch, `crate::watch`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::ApiError;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use store::Store;

mod review;

pub use crate::admission::{Admission, AdmissionRequest, Operation};
pub use crate::auth::{AllowAll, Authorizer, User, bootstrap_token_parts};
pub use crate::clock::{now_rfc3339, now_seconds};
use crate::ctx::Req;
use crate::discovery;
use crate::metrics::Metrics;
use crate::registry::Registry;
pub use crate::reply::{
    BODY_TIMEOUT, Body, MAX_BODY_BYTES, channel_body, error_response, full, json_response, respond,
};
use crate::reply::{read_body, too_many};
use crate::request::{self, Query, Route, Target, Verb};
use crate::storage::Storage;
use crate::strategy::{self};

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

/// Shared state of a running API server.
pub struct Api {
    /// The storage core the requests reach once through the pipeline.
    pub storage: Arc<Storage>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    /// Signs and checks ServiceAccount tokens.
    pub(crate) sa_tokens: Option<Arc<crate::satoken::TokenSigner>>,
    /// The RBAC index (for rules reviews), when RBAC is on.
    pub(crate) rbac: Option<crate::rbac::RbacAuthorizer>,
    pub(crate) git_version: String,
    pub(crate) server_address: String,
    pub(crate) metrics: Metrics,
    pub(crate) watching: Arc<crate::watch::Watching>,
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
    /// What serves `proxy` subresources, by (group, plural).
    pub(crate) proxies: Vec<(String, String, Arc<dyn Proxy>)>,
    /// Subresources served by handlers of their own, by (group, plural, subresource).
    pub(crate) subresources: Vec<(String, String, String, Arc<dyn Subresource>)>,
    /// Kinds computed on read, by (group, plural).
    pub(crate) computed: Vec<(String, String, Arc<dyn Computed>)>,
}

/// The handler registered for (group, plural).
fn find<H: ?Sized>(
    handlers: &[(String, String, Arc<H>)],
    group: &str,
    plural: &str,
) -> Option<Arc<H>> {
    handlers.iter().find(|(g, r, _)| g == group && r == plural).map(|(_, _, h)| Arc::clone(h))
}

/// A request passed on by a `<resource>/<name>/proxy/...` route.
pub struct ProxyRequest<'a> {
    /// The object's name (a Cluster's).
    pub name: &'a str,
    /// The word after the name (`proxy`).
    pub subresource: &'a str,
    /// The path after the subresource, from its `/` (at least `/`), as sent.
    pub path: &'a str,
    /// This server, for a handler that passes (part of) a request on to it again.
    pub api: &'a Arc<Api>,
    /// The method, the query (in `uri`) and the headers, as sent.
    pub parts: &'a http::request::Parts,
    pub body: Bytes,
    /// The caller, authorized for the `proxy` subresource with the method's verb.
    pub user: &'a User,
    /// This server's objects (the Cluster and its Secrets).
    pub storage: &'a Arc<Storage>,
}

/// What serves connect requests on a kind's objects (`<name>/proxy/...` and
/// `<name>/<subresource>/<more path>`): the control plane's cluster proxy, karmada-search.
#[async_trait::async_trait]
pub trait Proxy: Send + Sync {
    async fn proxy(&self, request: ProxyRequest<'_>) -> Result<Response<Body>, ApiError>;
}

/// A request for a subresource served by a handler of its own (a pod's `log`).
pub struct SubresourceRequest<'a> {
    pub target: &'a Target,
    pub parts: &'a http::request::Parts,
    pub query: &'a Query,
    pub user: &'a User,
    pub storage: &'a Arc<Storage>,
}

/// What serves one subresource of a kind.
#[async_trait::async_trait]
pub trait Subresource: Send + Sync {
    async fn serve(&self, request: SubresourceRequest<'_>) -> Result<Response<Body>, ApiError>;

    /// The methods it answers (others get 405).
    fn methods(&self) -> &'static [Method] {
        &[Method::GET, Method::HEAD]
    }
}

/// A request's connection upgrade (WebSocket or SPDY, as `kubectl exec` asks for), kept in
/// the request's extensions for the handler that takes the connection over.
#[derive(Clone, Default)]
pub struct Upgrade(Arc<parking_lot::Mutex<Option<hyper::upgrade::OnUpgrade>>>);

impl Upgrade {
    /// The upgrade of a request, once (`None`: it asked for none, or it was taken).
    pub fn take(parts: &http::request::Parts) -> Option<hyper::upgrade::OnUpgrade> {
        if !parts.headers.contains_key(http::header::UPGRADE) {
            return None;
        }
        parts.extensions.get::<Upgrade>()?.0.lock().take()
    }
}

/// A read-only kind whose objects are computed on each read from the stored ones (a simulated
/// member's `metrics.k8s.io`, as metrics-server serves it): get and list, no watch.
#[async_trait::async_trait]
pub trait Computed: Send + Sync {
    /// Every object now, in `namespace` (all namespaces: `None`).
    async fn list(
        &self,
        storage: &Arc<Storage>,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError>;

    /// The error for a get of an object that is not there.
    fn not_found(&self, def: &crate::registry::ResourceDef, name: &str) -> ApiError {
        ApiError::not_found(&def.plural, &def.group, name)
    }
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

impl Api {
    /// Serves a kind computed on read: get, and list (with label and field selectors).
    async fn computed(
        &self,
        handler: Arc<dyn Computed>,
        target: &Target,
        verb: Verb,
        query: &Query,
    ) -> Result<Response<Body>, ApiError> {
        let def = self
            .storage
            .registry
            .get(&target.group, &target.version, &target.resource)
            .ok_or_else(ApiError::path_not_found)?;
        let objects = handler.list(&self.storage, target.namespace.as_deref()).await?;
        match verb {
            Verb::Get => {
                let name = target.name.as_deref().unwrap_or_default();
                objects
                    .into_iter()
                    .find(|o| apimachinery::object::name(o) == name)
                    .map(|o| json_response(200, &o))
                    .ok_or_else(|| handler.not_found(&def, name))
            }
            Verb::List => {
                let filter = crate::storage::Filter::parse(&def, query)?;
                let items: Vec<Value> =
                    objects.into_iter().filter(|o| filter.matches(&def, o)).collect();
                Ok(json_response(
                    200,
                    &json!({"kind": def.list_kind(), "apiVersion": def.api_version(),
                        "metadata": {}, "items": items}),
                ))
            }
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }

    fn subresource_handler(&self, target: &Target) -> Option<Arc<dyn Subresource>> {
        let sub = target.subresource.as_deref()?;
        self.subresources
            .iter()
            .find(|(g, r, s, _)| *g == target.group && *r == target.resource && s == sub)
            .map(|(_, _, _, h)| Arc::clone(h))
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.storage.registry
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.storage.store
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
    ///
    /// A handler may pass a request on to this server again (karmada-search's proxy does, for
    /// what it does not cache) with the caller it was authorized for: it is then authorized
    /// again, as that caller, for what it asks.
    pub async fn handle<B>(
        self: &Arc<Self>,
        req: http::Request<B>,
        user: Option<User>,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // An "unreachable" server never answers: hold the request until it is reachable again.
        while self.availability.is_unreachable() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        let (mut parts, body) = req.into_parts();
        if let Some(upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
            parts.extensions.insert(Upgrade(Arc::new(parking_lot::Mutex::new(Some(upgrade)))));
        }
        let path = parts.uri.path().to_owned();
        let query = Query::parse(parts.uri.query());
        let route = request::route(&path);
        let verb = Verb::of(&parts.method, route.as_ref(), &query);
        let resource = metric_resource(route.as_ref());
        let public = matches!(route, Some(Route::Version | Route::Health(_)));
        let audit_user = user.clone();
        let audit_target = match (&self.audit, &route) {
            (Some(_), Some(Route::Resource(t) | Route::Connect(t, _))) => Some(t.clone()),
            _ => None,
        };
        let response =
            match self.serve(&parts, body, route, &query, verb, &path, public, user).await {
                Ok(response) => response,
                Err(e) => error_response(&e),
            };
        if let Some(audit) = &self.audit
            && verb.is_mutating()
        {
            audit.record(
                audit_user.as_ref(),
                &parts.headers,
                verb.as_str(),
                audit_target.as_ref(),
                &path,
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        let elapsed = if verb == Verb::Watch { Duration::ZERO } else { started.elapsed() };
        self.metrics.observe(verb.as_str(), &resource, response.status().as_u16(), elapsed);
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve<B>(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: B,
        route: Option<Route>,
        query: &Query,
        verb: Verb,
        path: &str,
        public: bool,
        user: Option<User>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
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
            Some(Route::Resource(t))
                if t.name.is_none() && matches!(verb, Verb::List | Verb::Watch) =>
            {
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
            (None, Some(Route::Resource(t) | Route::Connect(t, _))) => Some(t),
            _ => None,
        };
        self.authorizer.authorize(&user, verb.as_str(), target, path)?;
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
        // A watch, or a proxied watch or log stream, holds its connection for long.
        let streams = match &route {
            Some(Route::Connect(..)) => true,
            Some(Route::Resource(t)) => t.subresource.as_deref() == Some("log"),
            _ => false,
        };
        // An upgraded connection (exec, attach, port-forward) lasts as long as its session.
        let upgrading = parts.headers.contains_key(http::header::UPGRADE);
        let long_running = verb == Verb::Watch
            || upgrading
            || (streams && (query.flag("watch") || query.flag("follow")));
        let _permit = match (&self.inflight, long_running || public) {
            (Some(limit), false) => match Arc::clone(limit).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Err(too_many("too many requests in flight, please try again later"));
                }
            },
            _ => None,
        };
        let _share = match (long_running || exempt, self.inflight.is_some()) {
            (false, true) => {
                Some(self.fairness.requests.take_or_429(&user.name, "requests in flight")?)
            }
            _ => None,
        };
        // Each user holds a bounded number of open watches.
        let slot = if verb == Verb::Watch {
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
        let response = self.dispatch(parts, route, verb, query, bytes, &user).await?;
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
        verb: Verb,
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
                Ok(json_response(200, &discovery::openapi_v3_index(&self.storage.registry)))
            }
            Route::OpenApiV3(gv) => match discovery::openapi_v3_doc(&self.storage.registry, &gv) {
                Some(doc) => Ok(json_response(200, &doc)),
                None => Err(ApiError::path_not_found()),
            },
            Route::CoreGroup => {
                get_only(&parts.method)?;
                match request::aggregated_discovery(&parts.headers) {
                    Some(v) => Ok(respond(
                        200,
                        &discovery::aggregated_content_type(v),
                        serde_json::to_vec(&discovery::aggregated(&self.storage.registry, true, v))
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
                        serde_json::to_vec(&discovery::aggregated(
                            &self.storage.registry,
                            false,
                            v,
                        ))
                        .unwrap_or_default(),
                    )),
                    None => Ok(json_response(200, &discovery::groups(&self.storage.registry))),
                }
            }
            Route::Group(name) => {
                get_only(&parts.method)?;
                discovery::group(&self.storage.registry, &name)
                    .map(|g| json_response(200, &g))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::ResourceList { group, version } => {
                get_only(&parts.method)?;
                discovery::resource_list(&self.storage.registry, &group, &version)
                    .map(|l| json_response(200, &l))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::Resource(target) if review::is_review(&target) => {
                self.review(parts, &target, body, user).await
            }
            Route::Resource(target) => {
                // A kind or subresource with a handler of its own, else the storage core.
                if let Some(handler) = self.subresource_handler(&target) {
                    if !handler.methods().contains(&parts.method) {
                        return Err(ApiError::method_not_allowed(
                            "the server does not allow this method on the requested resource",
                        ));
                    }
                    let request = SubresourceRequest {
                        target: &target,
                        parts,
                        query,
                        user,
                        storage: &self.storage,
                    };
                    return handler.serve(request).await;
                }
                if target.subresource.is_none()
                    && let Some(handler) = find(&self.computed, &target.group, &target.resource)
                {
                    return self.computed(handler, &target, verb, query).await;
                }
                self.resource(parts, target, verb, query, body, user).await
            }
            Route::Connect(target, rest) => {
                let proxy = find(&self.proxies, &target.group, &target.resource)
                    .ok_or_else(ApiError::path_not_found)?;
                let name = target.name.as_deref().unwrap_or_default();
                proxy
                    .proxy(ProxyRequest {
                        name,
                        subresource: target.subresource.as_deref().unwrap_or_default(),
                        path: &rest,
                        api: self,
                        parts,
                        body,
                        user,
                        storage: &self.storage,
                    })
                    .await
            }
        }
    }

    async fn resource(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        target: Target,
        verb: Verb,
        query: &Query,
        body: Bytes,
        user: &User,
    ) -> Result<Response<Body>, ApiError> {
        let def = self
            .storage
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
        let storage = &self.storage;
        match (verb, target.name.as_deref(), target.subresource.as_deref()) {
            // Subresources with REST storage of their own, as in Kubernetes.
            (Verb::Create, Some(name), Some("token"))
                if def.group.is_empty() && def.plural == "serviceaccounts" =>
            {
                self.token_request(&req, name, &body).await
            }
            (Verb::Create, Some(name), Some("eviction"))
                if def.group.is_empty() && def.plural == "pods" =>
            {
                storage.evict(&req, name, &body).await
            }
            (Verb::Watch, None, None) => {
                crate::watch::watch(
                    Arc::clone(storage),
                    Arc::clone(&self.watching),
                    def,
                    ns.map(str::to_owned),
                    query.clone(),
                    wanted,
                    format,
                )
                .await
            }
            (Verb::List, None, None) => storage.list(&req, wanted).await,
            (Verb::Get, Some(name), sub @ (None | Some("status" | "approval"))) if sub_ok(sub) => {
                storage.get(&req, name, wanted).await
            }
            (Verb::Get, Some(name), Some("scale")) if def.scale.is_some() => {
                let object = storage.read(&def, ns, name).await?;
                Ok(req.respond(200, &strategy::scale_of(&def, &object)?))
            }
            (Verb::Create, None, None) => storage.create(&req, &body).await,
            (Verb::Update, Some(name), sub) if sub_ok(sub) => {
                storage.update(&req, name, sub, &body).await
            }
            (Verb::Patch, Some(name), sub) if sub_ok(sub) => {
                storage.patch(&req, name, sub, &body).await
            }
            (Verb::Delete, Some(name), None) => storage.delete(&req, name, &body).await,
            (Verb::DeleteCollection, None, None) => storage.delete_collection(&req, &body).await,
            (_, Some(_), sub) if !sub_ok(sub) => Err(ApiError::path_not_found()),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }
}

/// The resource a request is counted under in the metrics (`pods`, `pods/status`; empty
/// outside the resource API).
fn metric_resource(route: Option<&Route>) -> String {
    match route {
        Some(Route::Resource(t) | Route::Connect(t, _)) => match &t.subresource {
            Some(sub) => format!("{}/{sub}", t.resource),
            None => t.resource.clone(),
        },
        _ => String::new(),
    }
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
        let def =
            self.storage.registry.get("", "v1", "secrets").ok_or_else(|| refused("no secrets"))?;
        let stored = match self
            .storage
            .read(&def, Some("kube-system"), &format!("bootstrap-token-{id}"))
            .await
        {
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
        let account = self.storage.read(req.def, Some(namespace), name).await?;
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
            .storage
            .registry
            .get("", "v1", "serviceaccounts")
            .ok_or_else(|| refused("no serviceaccounts"))?;
        let account = self
            .storage
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
