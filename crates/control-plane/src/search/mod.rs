//! karmada-search, served by the control plane's API server as upstream's aggregated
//! karmada-search is: ResourceRegistries choose kinds of member clusters to cache
//! ([`plan`]); each is listed and watched from its member ([`cache`]) with the control plane's
//! credentials for that cluster; and two endpoints read them:
//!
//! - `search.karmada.io/v1alpha1/search/cache/<API path>`: every cached object of a kind
//!   (in a namespace, or by name) across clusters, as a list, each annotated with the cluster
//!   it came from (`resource.karmada.io/cached-from-cluster`).
//! - `search.karmada.io/v1alpha1/proxying/karmada/proxy/<API path>`: a Kubernetes API for any
//!   client (`kubectl --server .../proxying/karmada/proxy`): get, list (chunked) and watch of
//!   cached kinds from the cache, with resource versions and continue tokens spanning clusters
//!   ([`version`]); other requests on a cached object go to the one cluster holding it,
//!   through the cluster proxy (the caller impersonated there); everything else is served by
//!   this API server itself, as the caller — unlike upstream, whose proxy reads the control
//!   plane with its own identity, so it never shows a caller what RBAC would not.

mod cache;
pub mod plan;
pub mod version;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::ApiError;
use apiserver::api::{Body, ProxyRequest};
use apiserver::registry::ResourceDef;
use apiserver::reply::{channel_body, json_response};
use apiserver::request::{Query, Route, Target, Verb};
use apiserver::storage::{Decision, Filter, Storage};
use apiserver::table::{IncludeObject, TableBuilder};
use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use karmada_api::apps::ResourceRegistry;
use karmada_api::cluster::Cluster;
use karmada_api::names::CACHE_SOURCE_ANNOTATION;
use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};

use self::cache::{Resolved, ResourceCache};
use self::plan::{CacheKey, Plan};
use self::version::{MultiContinue, MultiVersion};
use crate::proxy::ClusterProxy;

/// A watch of the cache ends after this long when the client did not ask for less.
const WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// Registries' conditions are brought up to date at least this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);

struct Entry {
    cache: Arc<ResourceCache>,
    /// The member client's `member_client::version` the cache was started with.
    client_version: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// karmada-search: the caches and what serves them.
pub struct Search {
    proxy: Arc<ClusterProxy>,
    caches: RwLock<BTreeMap<CacheKey, Entry>>,
    /// Bumped whenever the set of caches changes: open watches end (their clients list again
    /// and see the new set), as upstream's do.
    topology: tokio::sync::watch::Sender<u64>,
    clients: crate::members::MemberClients,
}

impl Search {
    pub fn new(proxy: Arc<ClusterProxy>) -> Arc<Search> {
        Arc::new(Search {
            proxy,
            caches: RwLock::new(BTreeMap::new()),
            topology: tokio::sync::watch::channel(0).0,
            clients: crate::members::MemberClients::default(),
        })
    }

    /// The two endpoints, as registered with the API server: (`search`, `proxying`).
    pub fn endpoints(self: &Arc<Self>) -> [(String, String, Arc<dyn apiserver::Proxy>); 2] {
        let group = "search.karmada.io".to_owned();
        [
            (group.clone(), "search".into(), Arc::new(CacheEndpoint(Arc::clone(self)))),
            (group, "proxying".into(), Arc::new(ProxyingEndpoint(Arc::clone(self)))),
        ]
    }

    /// Follows Clusters and ResourceRegistries and keeps the caches as they ask, until the
    /// server shuts down.
    async fn run(self: Arc<Self>, storage: Arc<Storage>) {
        let (Some(clusters_def), Some(registries_def)) = (
            storage.registry().storage_def("cluster.karmada.io", "clusters"),
            storage.registry().storage_def("search.karmada.io", "resourceregistries"),
        ) else {
            return;
        };
        let clusters: Arc<Mutex<BTreeMap<String, Cluster>>> = Arc::default();
        let registries: Arc<Mutex<BTreeMap<String, ResourceRegistry>>> = Arc::default();
        let changed = Arc::new(tokio::sync::Notify::new());
        let followers = [
            follow(&storage, &clusters_def, Arc::clone(&clusters), Arc::clone(&changed)),
            follow(&storage, &registries_def, Arc::clone(&registries), Arc::clone(&changed)),
        ];
        let mut shutdown = storage.shutdown();
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        loop {
            let replan = tokio::select! {
                _ = shutdown.changed() => break,
                () = changed.notified() => true,
                // Caches become synced (or fail) without any object changing.
                _ = status_tick.tick() => false,
            };
            let registries: Vec<ResourceRegistry> = registries.lock().values().cloned().collect();
            // Without registries there is nothing to cache or report: a cluster's status
            // changing (every few seconds per cluster under load) costs nothing then.
            if registries.is_empty() && self.caches.read().is_empty() {
                continue;
            }
            let clusters = clusters.lock().clone();
            let all: Vec<Cluster> = clusters.values().cloned().collect();
            if replan {
                // A burst of changes (a cluster's status, several registries) is one pass.
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.reconcile(&storage, plan::plan(&registries, &all), &clusters).await;
            }
            self.write_statuses(&storage, &registries_def, &registries, &all).await;
        }
        for follower in followers {
            follower.abort();
        }
        self.caches.write().clear();
    }

    /// Starts the caches the plan asks for that are not running as asked, and stops the
    /// others.
    async fn reconcile(&self, storage: &Storage, plan: Plan, clusters: &BTreeMap<String, Cluster>) {
        let mut changed = false;
        for (key, namespaces) in &plan {
            let Some(cluster) = clusters.get(&key.cluster) else { continue };
            let client_version = member_client::version(cluster);
            if let Some(entry) = self.caches.read().get(key)
                && entry.cache.namespaces == *namespaces
                && entry.client_version == client_version
            {
                continue;
            }
            let client = match self.clients.get(storage, cluster).await {
                Ok(client) => client,
                Err(e) => {
                    tracing::warn!(cluster = %key.cluster, error = %e.message, "search cannot reach the cluster");
                    continue;
                }
            };
            let cache = ResourceCache::new(key.clone(), namespaces.clone(), builtin(storage, key));
            let task = tokio::spawn(Arc::clone(&cache).run(client));
            self.caches.write().insert(key.clone(), Entry { cache, client_version, task });
            changed = true;
        }
        self.caches.write().retain(|key, _| {
            let keep = plan.contains_key(key);
            changed |= !keep;
            keep
        });
        self.clients.retain(|name| plan.keys().any(|k| k.cluster == name));
        if changed {
            self.topology.send_modify(|generation| *generation += 1);
        }
    }

    /// Each registry's `Ready` condition, written when it changes.
    async fn write_statuses(
        &self,
        storage: &Storage,
        def: &ResourceDef,
        registries: &[ResourceRegistry],
        clusters: &[Cluster],
    ) {
        for registry in registries {
            let name = registry.metadata.name.clone().unwrap_or_default();
            let caches: Vec<(CacheKey, plan::CacheState)> = {
                let running = self.caches.read();
                plan::plan(std::slice::from_ref(registry), clusters)
                    .into_keys()
                    .map(|key| {
                        let state = running
                            .get(&key)
                            .map_or(plan::CacheState::Syncing, |e| e.cache.state());
                        (key, state)
                    })
                    .collect()
            };
            let (ready, reason, message) = plan::registry_condition(&caches);
            let status = if ready { "True" } else { "False" };
            let result = storage
                .guaranteed_update(def, None, &name, false, &mut |current| {
                    let Some(current) = current else { return Ok(Decision::Unchanged) };
                    let conditions = current.pointer("/status/conditions").and_then(Value::as_array);
                    let old = conditions.and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
                    if old.is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()) {
                        return Ok(Decision::Unchanged);
                    }
                    let since = match old {
                        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
                        _ => Value::from(apiserver::api::now_rfc3339()),
                    };
                    let mut updated = current.clone();
                    updated["status"] = json!({"conditions": [{"type": "Ready", "status": status,
                        "reason": reason, "message": message, "lastTransitionTime": since,
                        "observedGeneration": current.pointer("/metadata/generation").cloned().unwrap_or(json!(1))}]});
                    Ok(Decision::Update(updated))
                })
                .await;
            if let Err(e) = result
                && e.code != 404
            {
                tracing::warn!(registry = %name, error = %e.message, "writing a ResourceRegistry's status");
            }
        }
    }

    /// The caches of a kind, by the API path's group, version and plural, ordered by cluster.
    fn caches_for(&self, target: &Target) -> Vec<(Arc<ResourceCache>, Resolved)> {
        self.caches
            .read()
            .values()
            .filter_map(|e| {
                let r = e.cache.resolved()?;
                (r.group == target.group
                    && r.version == target.version
                    && r.plural == target.resource)
                    .then(|| (Arc::clone(&e.cache), r))
            })
            .collect()
    }
}

impl apiserver::Background for Search {
    fn start(self: Arc<Self>, storage: Arc<Storage>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(storage))
    }
}

/// Keeps `objects` (by name) as stored under a kind, calling `changed` on every change.
fn follow<T>(
    storage: &Arc<Storage>,
    def: &ResourceDef,
    objects: Arc<Mutex<BTreeMap<String, T>>>,
    changed: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let prefix = def.collection_prefix(None);
    let storage = Arc::clone(storage);
    tokio::spawn(async move {
        apiserver::follow::changes(storage, prefix.as_bytes(), |change| {
            use apiserver::follow::Change;
            match change {
                Change::Relisting => objects.lock().clear(),
                Change::Put(object) => {
                    let name = apimachinery::object::name(&object).to_owned();
                    if let Ok(typed) = serde_json::from_value(object) {
                        objects.lock().insert(name, typed);
                    }
                }
                Change::Deleted(object) => {
                    objects.lock().remove(apimachinery::object::name(&object));
                }
            }
            changed.notify_one();
            None::<std::future::Ready<()>>
        })
        .await;
    })
}

/// How a built-in kind is served (members serve it the same way), known without asking.
fn builtin(storage: &Storage, key: &CacheKey) -> Option<Resolved> {
    let (group, version) = key.api_version.split_once('/').unwrap_or(("", &key.api_version));
    let def = storage.registry().by_kind(group, &key.kind).filter(|d| !d.custom)?;
    (def.version == version || storage.registry().get(group, version, &def.plural).is_some()).then(
        || Resolved {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: def.plural.clone(),
            namespaced: def.namespaced,
        },
    )
}

/// The definition used to filter and print a cached kind: the control plane's own when it
/// serves the kind, else one made of the member's names.
fn definition(storage: &Storage, resolved: &Resolved, kind: &str) -> Arc<ResourceDef> {
    storage.registry().get(&resolved.group, &resolved.version, &resolved.plural).unwrap_or_else(
        || {
            Arc::new(ResourceDef::external(
                &resolved.group,
                &resolved.version,
                kind,
                &resolved.plural,
                resolved.namespaced,
            ))
        },
    )
}

/// An object as served from the cache: with the cluster it came from, and (when given) a
/// resource version spanning clusters.
fn decorate(mut object: Value, cluster: &str, version: Option<String>) -> Value {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let metadata = &mut object["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][CACHE_SOURCE_ANNOTATION] = Value::from(cluster);
    if let Some(version) = version {
        metadata["resourceVersion"] = Value::from(version);
    }
    object
}

/// The objects of the caches in a namespace (all: `None`), or the one named, each with its
/// cluster.
fn gather(caches: &[(Arc<ResourceCache>, Resolved)], target: &Target) -> Vec<(String, Value)> {
    let namespace = target.namespace.as_deref();
    let mut found = Vec::new();
    for (cache, _) in caches {
        let cluster = &cache.key.cluster;
        match &target.name {
            Some(name) => {
                if let Some(object) = cache.get(namespace, name) {
                    found.push((cluster.clone(), object));
                }
            }
            None => {
                let (objects, _) = cache.list(namespace, "");
                found.extend(objects.into_iter().map(|(_, o)| (cluster.clone(), o)));
            }
        }
    }
    found
}

/// Serves `search/cache/<API path>`: lists, always (a name narrows it to that object).
struct CacheEndpoint(Arc<Search>);

#[async_trait::async_trait]
impl apiserver::Proxy for CacheEndpoint {
    async fn proxy(&self, request: ProxyRequest<'_>) -> Result<Response<Body>, ApiError> {
        if request.name != "cache" || !matches!(request.subresource, "api" | "apis") {
            return Err(ApiError::path_not_found());
        }
        if request.parts.method != http::Method::GET {
            return Err(ApiError::method_not_allowed("the search cache is read-only: use GET"));
        }
        let path = format!("/{}{}", request.subresource, request.path);
        let Some(Route::Resource(target)) = apiserver::request::route(&path) else {
            return Err(ApiError::path_not_found());
        };
        if target.subresource.is_some() {
            return Err(ApiError::path_not_found());
        }
        let caches = self.0.caches_for(&target);
        let kind = match caches.first() {
            Some((cache, _)) => cache.key.kind.clone(),
            None => request
                .storage
                .registry()
                .get(&target.group, &target.version, &target.resource)
                .map(|d| d.kind.clone())
                .ok_or_else(ApiError::path_not_found)?,
        };
        let query = Query::parse(request.parts.uri.query());
        let filter = match caches.first() {
            Some((cache, resolved)) => {
                let def = definition(request.storage, resolved, &cache.key.kind);
                Some((Filter::parse(&def, &query)?, def))
            }
            None => None,
        };
        let items: Vec<Value> = gather(&caches, &target)
            .into_iter()
            .filter(|(_, o)| filter.as_ref().is_none_or(|(f, def)| f.matches(def, o)))
            .map(|(cluster, o)| decorate(o, &cluster, None))
            .collect();
        let api_version = if target.group.is_empty() {
            target.version.clone()
        } else {
            format!("{}/{}", target.group, target.version)
        };
        Ok(json_response(
            200,
            &json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {}, "items": items}),
        ))
    }
}

/// Serves `proxying/karmada/proxy/<API path>`.
struct ProxyingEndpoint(Arc<Search>);

#[async_trait::async_trait]
impl apiserver::Proxy for ProxyingEndpoint {
    async fn proxy(&self, request: ProxyRequest<'_>) -> Result<Response<Body>, ApiError> {
        if request.name != "karmada" || request.subresource != "proxy" {
            return Err(ApiError::path_not_found());
        }
        let route = apiserver::request::route(request.path);
        if let Some(Route::Resource(target)) = &route {
            let caches = self.0.caches_for(target);
            if !caches.is_empty() {
                let query = Query::parse(request.parts.uri.query());
                let verb = Verb::of(&request.parts.method, route.as_ref(), &query);
                let read = target.subresource.is_none();
                return match verb {
                    Verb::Get if read => get(&request, target, &caches, &query),
                    Verb::List if read => list(&request, target, &caches, &query),
                    Verb::Watch if read => watch(&self.0, &request, target, caches, &query),
                    Verb::Create if target.name.is_none() => {
                        Err(ApiError::method_not_allowed(format!(
                            "create is not supported on {}: the proxy does not know which cluster to create in",
                            target.resource
                        )))
                    }
                    _ => self.0.to_member(request, target, &caches, verb).await,
                };
            }
        }
        karmada(request).await
    }
}

/// A request for what is not cached, served by this API server as the caller.
async fn karmada(request: ProxyRequest<'_>) -> Result<Response<Body>, ApiError> {
    let parts = request.parts;
    let uri = match parts.uri.query() {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.to_owned(),
    };
    let mut inner = http::Request::builder().method(parts.method.clone()).uri(&uri);
    for (name, value) in &parts.headers {
        // The caller is already known (and impersonated, if it asked to be someone else).
        if name != http::header::AUTHORIZATION && !name.as_str().starts_with("impersonate-") {
            inner = inner.header(name, value);
        }
    }
    let inner = inner
        .body(http_body_util::Full::new(request.body))
        .map_err(|e| ApiError::bad_request(format!("cannot proxy {uri}: {e}")))?;
    Ok(request.api.handle(inner, Some(request.user.clone())).await)
}

fn wanted(request: &ProxyRequest<'_>) -> Result<apiserver::request::Wanted, ApiError> {
    // Cached objects are served as JSON (or Tables), which every client that asks for protobuf
    // also accepts.
    Ok(apiserver::request::negotiate(&request.parts.headers, false)?.0)
}

fn table(
    def: &ResourceDef,
    query: &Query,
    objects: &[Value],
    metadata: Value,
    with_columns: bool,
) -> Value {
    let include = IncludeObject::parse(query.get("includeObject"));
    let builder = TableBuilder::new(def, include, apiserver::clock::now_seconds());
    builder.table(objects.iter().map(|o| builder.row(o)).collect(), metadata, with_columns)
}

fn get(
    request: &ProxyRequest<'_>,
    target: &Target,
    caches: &[(Arc<ResourceCache>, Resolved)],
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (cache, resolved) = &caches[0];
    let name = target.name.as_deref().unwrap_or_default();
    let mut found = gather(caches, target);
    let (cluster, object) = match found.len() {
        0 => return Err(ApiError::not_found(&target.resource, &target.group, name)),
        1 => found.remove(0),
        _ => {
            let clusters: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
            return Err(ApiError::conflict_because(
                &target.resource,
                &target.group,
                name,
                &format!("ambiguous objects in clusters [{}]", clusters.join(", ")),
            ));
        }
    };
    let mut version = MultiVersion::default();
    version.set(
        &cluster,
        apimachinery::object::meta_str(&object, "resourceVersion").unwrap_or_default(),
    );
    let object = decorate(object, &cluster, Some(version.encode()));
    if wanted(request)? == apiserver::request::Wanted::Table {
        let def = definition(request.storage, resolved, &cache.key.kind);
        return Ok(json_response(200, &table(&def, query, &[object], json!({}), true)));
    }
    Ok(json_response(200, &object))
}

fn list(
    request: &ProxyRequest<'_>,
    target: &Target,
    caches: &[(Arc<ResourceCache>, Resolved)],
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (first, resolved) = &caches[0];
    let def = definition(request.storage, resolved, &first.key.kind);
    let filter = Filter::parse(&def, query)?;
    let namespace = target.namespace.as_deref();
    let limit = query.int("limit")?.filter(|l| *l > 0);
    let from = query.get("continue").map(MultiContinue::parse);
    let mut version = match &from {
        Some(c) => MultiVersion::parse(&c.rv),
        None => MultiVersion::parse(query.get("resourceVersion").unwrap_or_default()),
    };
    let start = from.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let mut remaining = limit;
    let mut next = MultiContinue::default();
    let mut items = Vec::new();
    let mut started = start.is_empty();
    for (i, (cache, _)) in caches.iter().enumerate() {
        let cluster = &cache.key.cluster;
        started |= *cluster == start;
        if !started {
            continue;
        }
        let after = match &from {
            Some(c) if c.cluster == *cluster => c.continue_.as_str(),
            _ => "",
        };
        let (objects, at) = cache.list(namespace, after);
        version.set(cluster, &at);
        let mut taken = 0;
        let mut more = false;
        let mut last = String::new();
        for (key, object) in objects {
            if !filter.matches(&def, &object) {
                continue;
            }
            if remaining.is_some_and(|r| taken >= r) {
                more = true;
                break;
            }
            items.push(decorate(object, cluster, None));
            taken += 1;
            last = key;
        }
        if let Some(r) = remaining.as_mut() {
            *r -= taken;
            if *r <= 0 {
                if more {
                    next = MultiContinue {
                        cluster: cluster.clone(),
                        continue_: last,
                        ..Default::default()
                    };
                } else if let Some((following, _)) = caches.get(i + 1) {
                    next = MultiContinue {
                        cluster: following.key.cluster.clone(),
                        ..Default::default()
                    };
                }
                break;
            }
        }
    }
    next.rv = version.encode();
    let mut metadata = json!({"resourceVersion": version.encode()});
    let token = next.encode();
    if !token.is_empty() {
        metadata["continue"] = Value::from(token);
    }
    if wanted(request)? == apiserver::request::Wanted::Table {
        return Ok(json_response(200, &table(&def, query, &items, metadata, true)));
    }
    Ok(json_response(
        200,
        &json!({"apiVersion": def.api_version(), "kind": def.list_kind(), "metadata": metadata, "items": items}),
    ))
}

fn watch(
    search: &Arc<Search>,
    request: &ProxyRequest<'_>,
    target: &Target,
    caches: Vec<(Arc<ResourceCache>, Resolved)>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (first, resolved) = &caches[0];
    let def = definition(request.storage, resolved, &first.key.kind);
    let filter = Filter::parse(&def, query)?;
    let as_table = wanted(request)? == apiserver::request::Wanted::Table;
    let namespace = target.namespace.clone();
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map_or(WATCH_TIMEOUT, |s| Duration::from_secs(s as u64).min(WATCH_TIMEOUT));
    let mut version = MultiVersion::parse(query.get("resourceVersion").unwrap_or_default());
    let mut topology = search.topology.subscribe();
    topology.mark_unchanged();
    // Every cluster's changes from its part of the version; one that is too old ends the
    // watch with 410 Expired (the client lists again).
    let mut backlog = Vec::new();
    let mut live = Vec::new();
    let mut expired = None;
    for (cache, _) in &caches {
        let cluster = cache.key.cluster.clone();
        match cache.subscribe(version.get(&cluster)) {
            Some(s) => {
                backlog.extend(s.backlog.into_iter().map(|c| (cluster.clone(), Ok(c))));
                let events = futures::stream::unfold(s.live, |mut rx| async move {
                    use tokio::sync::broadcast::error::RecvError;
                    match rx.recv().await {
                        Ok(change) => Some((Ok(change), rx)),
                        Err(RecvError::Lagged(_)) => Some((Err(()), rx)),
                        Err(RecvError::Closed) => None,
                    }
                });
                live.push(events.map(move |c| (cluster.clone(), c)).boxed());
            }
            None => {
                expired = Some(format!(
                    "too old resource version: {} ({cluster})",
                    version.get(&cluster)
                ));
            }
        }
    }
    let query = query.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |value: &Value| {
            let mut bytes = serde_json::to_vec(value).unwrap_or_default();
            bytes.push(b'\n');
            Bytes::from(bytes)
        };
        let error = |message: String| {
            line(&json!({"type": "ERROR", "object": ApiError::expired(message).to_status()}))
        };
        if let Some(message) = expired {
            let _ = tx.send(error(message)).await;
            return;
        }
        let mut first_table = true;
        let mut merged = futures::stream::select_all(live);
        let mut pending = backlog.into_iter();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let (cluster, change) = match pending.next() {
                Some(next) => next,
                None => tokio::select! {
                    next = merged.next() => match next {
                        Some(next) => next,
                        None => return,
                    },
                    _ = topology.changed() => return,
                    () = &mut deadline => return,
                },
            };
            let Ok(change) = change else {
                let _ = tx.send(error("the watch fell behind; list again".into())).await;
                return;
            };
            let object = &change.object;
            if namespace.as_deref().is_some_and(|ns| apimachinery::object::namespace(object) != ns)
                || !filter.matches(&def, object)
            {
                continue;
            }
            version.set(&cluster, &change.version.to_string());
            let object = decorate(object.clone(), &cluster, Some(version.encode()));
            let object = if as_table {
                let t = table(&def, &query, &[object], json!({}), first_table);
                first_table = false;
                t
            } else {
                object
            };
            if tx.send(line(&json!({"type": change.type_, "object": object}))).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(channel_body(rx));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(response)
}

impl Search {
    /// Any other request on a cached kind: to the one cluster holding the object, through the
    /// cluster proxy (an update's body first loses what the cache added).
    async fn to_member(
        &self,
        request: ProxyRequest<'_>,
        target: &Target,
        caches: &[(Arc<ResourceCache>, Resolved)],
        verb: Verb,
    ) -> Result<Response<Body>, ApiError> {
        let name = target.name.as_deref().unwrap_or_default();
        let holders: Vec<String> = gather(caches, target).into_iter().map(|(c, _)| c).collect();
        let cluster = match holders.as_slice() {
            [] => return Err(ApiError::not_found(&target.resource, &target.group, name)),
            [one] => one.clone(),
            many => {
                return Err(ApiError::conflict_because(
                    &target.resource,
                    &target.group,
                    name,
                    &format!("ambiguous objects in clusters [{}]", many.join(", ")),
                ));
            }
        };
        let mut parts = request.parts.clone();
        let mut body = request.body.clone();
        if verb == Verb::Update && !body.is_empty() {
            let mut object = apiserver::encoding::decode_body(&parts.headers, &body)?.object;
            let mut changed = false;
            if let Some(annotations) =
                object.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)
            {
                changed |= annotations.remove(CACHE_SOURCE_ANNOTATION).is_some();
            }
            let sent =
                apimachinery::object::meta_str(&object, "resourceVersion").unwrap_or_default();
            if let Some(own) = MultiVersion::of_cluster(sent, &cluster) {
                object["metadata"]["resourceVersion"] = Value::from(own);
                changed = true;
            }
            if changed {
                body = Bytes::from(serde_json::to_vec(&object).unwrap_or_default());
                parts.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
        }
        self.proxy
            .forward(request.storage, &cluster, request.path, &parts, body, request.user)
            .await
    }
}
