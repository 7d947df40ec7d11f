//! One kind of one member cluster, cached: listed, then kept current by a watch (listed again
//! when the watch cannot resume), with the recent changes kept so that a watch of the cache
//! can start from a version a list returned.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::broadcast;

use super::plan::{CacheKey, Namespaces};

/// Changes kept for watches that start from an older version.
const HISTORY: usize = 1024;
/// Changes a watcher may fall behind by before it is closed (its client lists again).
const FANOUT: usize = 4096;
/// A watch of the member is renewed this often.
const WATCH_SECONDS: u32 = 290;

/// How a kind is served by the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespaced: bool,
}

/// A change of a cached object.
#[derive(Debug)]
pub struct Change {
    pub type_: &'static str,
    pub object: Value,
    /// The member's resource version after the change.
    pub version: u64,
}

#[derive(Default)]
struct State {
    resolved: Option<Resolved>,
    /// By `namespace/name` (`/name` when cluster-scoped), sorted: pages continue after a key.
    objects: BTreeMap<String, Value>,
    /// The member's version the cache is at.
    version: String,
    history: VecDeque<Arc<Change>>,
    synced: bool,
    error: Option<String>,
}

/// One kind cached from one cluster.
pub struct ResourceCache {
    pub key: CacheKey,
    pub namespaces: Namespaces,
    state: RwLock<State>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// What a watch of the cache starts with: the changes after the requested version (or every
/// object as ADDED), then the live ones.
pub struct Subscription {
    pub backlog: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
}

fn object_key(object: &Value) -> String {
    format!("{}/{}", apimachinery::object::namespace(object), apimachinery::object::name(object))
}

fn version_of(object: &Value) -> u64 {
    apimachinery::object::meta_str(object, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl ResourceCache {
    pub fn new(key: CacheKey, namespaces: Namespaces, resolved: Option<Resolved>) -> Arc<Self> {
        let (changes, _) = broadcast::channel(FANOUT);
        let state = State { resolved, ..State::default() };
        Arc::new(ResourceCache { key, namespaces, state: RwLock::new(state), changes })
    }

    pub fn resolved(&self) -> Option<Resolved> {
        self.state.read().resolved.clone()
    }

    pub fn state(&self) -> super::plan::CacheState {
        let state = self.state.read();
        match (&state.error, state.synced) {
            (Some(why), _) => super::plan::CacheState::Failed(why.clone()),
            (None, true) => super::plan::CacheState::Synced,
            (None, false) => super::plan::CacheState::Syncing,
        }
    }

    /// The cached objects in `namespace` (all: `None`), sorted by namespace and name, starting
    /// after the key `after`, and the version they are at.
    pub fn list(&self, namespace: Option<&str>, after: &str) -> (Vec<(String, Value)>, String) {
        let state = self.state.read();
        let items = state
            .objects
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, o)| namespace.is_none_or(|ns| apimachinery::object::namespace(o) == ns))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        (items, state.version.clone())
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.state.read().objects.get(&format!("{}/{name}", namespace.unwrap_or_default())).cloned()
    }

    /// A watch from `version` (`""` or `"0"`: every object now, as ADDED), or `None` when the
    /// changes since `version` are no longer kept (the client must list again).
    pub fn subscribe(&self, version: &str) -> Option<Subscription> {
        let state = self.state.read();
        let live = self.changes.subscribe();
        let from: Option<u64> = match version {
            "" | "0" => None,
            v => Some(v.parse().ok()?),
        };
        let backlog = match from {
            None => state
                .objects
                .values()
                .map(|o| {
                    Arc::new(Change { type_: "ADDED", object: o.clone(), version: version_of(o) })
                })
                .collect(),
            Some(from) => {
                let current: u64 = state.version.parse().unwrap_or(0);
                let oldest = state.history.front().map_or(current, |c| c.version);
                // The changes after `from` are all kept when it is at least the version
                // before the oldest kept change.
                if from < current && from + 1 < oldest {
                    return None;
                }
                state.history.iter().filter(|c| c.version > from).cloned().collect()
            }
        };
        Some(Subscription { backlog, live })
    }

    fn record(&self, state: &mut State, change: Change) {
        let change = Arc::new(change);
        state.history.push_back(Arc::clone(&change));
        if state.history.len() > HISTORY {
            state.history.pop_front();
        }
        let _ = self.changes.send(change);
    }

    fn apply(&self, type_: &'static str, object: Value) {
        let namespace = apimachinery::object::namespace(&object);
        if !self.namespaces.contains(namespace) {
            return;
        }
        let version = version_of(&object);
        let key = object_key(&object);
        let mut state = self.state.write();
        match type_ {
            "DELETED" => {
                state.objects.remove(&key);
            }
            _ => {
                state.objects.insert(key, object.clone());
            }
        }
        state.version = version.to_string();
        self.record(&mut state, Change { type_, object, version });
    }

    /// Replaces the objects with a fresh list, telling watchers what changed meanwhile.
    fn replace(&self, objects: Vec<Value>, version: &str) {
        let numeric: u64 = version.parse().unwrap_or(0);
        let mut fresh = BTreeMap::new();
        for object in objects {
            let namespace = apimachinery::object::namespace(&object);
            if self.namespaces.contains(namespace) {
                fresh.insert(object_key(&object), object);
            }
        }
        let mut state = self.state.write();
        let old = std::mem::take(&mut state.objects);
        for (key, object) in &old {
            if !fresh.contains_key(key) {
                let change = Change { type_: "DELETED", object: object.clone(), version: numeric };
                self.record(&mut state, change);
            }
        }
        for (key, object) in &fresh {
            let type_ = match old.get(key) {
                None => "ADDED",
                Some(o) if version_of(o) != version_of(object) => "MODIFIED",
                Some(_) => continue,
            };
            let change = Change { type_, object: object.clone(), version: version_of(object) };
            self.record(&mut state, change);
        }
        state.objects = fresh;
        state.version = version.to_owned();
        state.synced = true;
        state.error = None;
    }

    fn failed(&self, error: String) {
        let mut state = self.state.write();
        if state.error.as_deref() != Some(&error) {
            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, %error, "search cache");
        }
        state.error = Some(error);
    }

    /// Lists and watches the member until the task is aborted.
    pub async fn run(self: Arc<Self>, client: kube::Client) {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.sync(&client).await {
                Ok(()) => backoff = Duration::from_millis(500),
                Err(e) => {
                    self.failed(e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// How the member serves the kind: from its discovery (once).
    async fn resolve(&self, client: &kube::Client) -> Result<Resolved, String> {
        if let Some(r) = self.resolved() {
            return Ok(r);
        }
        let (group, version) = match self.key.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.key.api_version.as_str()),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, &self.key.kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| format!("{} does not serve {}: {e}", self.key.cluster, self.key.kind))?;
        let resolved = Resolved {
            group: resource.group,
            version: resource.version,
            plural: resource.plural,
            namespaced: capabilities.scope == kube::discovery::Scope::Namespaced,
        };
        self.state.write().resolved = Some(resolved.clone());
        Ok(resolved)
    }

    /// One list and the watches that follow it; returns when the member must be listed again.
    async fn sync(&self, client: &kube::Client) -> Result<(), String> {
        let resolved = self.resolve(client).await?;
        let resource = ApiResource {
            group: resolved.group.clone(),
            version: resolved.version.clone(),
            api_version: self.key.api_version.clone(),
            kind: self.key.kind.clone(),
            plural: resolved.plural.clone(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let typed = |object: DynamicObject| -> Value {
            let mut value = serde_json::to_value(object).unwrap_or_default();
            value["apiVersion"] = Value::from(self.key.api_version.clone());
            value["kind"] = Value::from(self.key.kind.clone());
            value
        };
        let mut objects = Vec::new();
        let mut params = ListParams::default().limit(500);
        let version = loop {
            let page = tokio::time::timeout(Duration::from_secs(60), api.list(&params))
                .await
                .map_err(|_| {
                    format!("listing {} of {} timed out", resolved.plural, self.key.cluster)
                })?
                .map_err(|e| format!("listing {} of {}: {e}", resolved.plural, self.key.cluster))?;
            objects.extend(page.items.into_iter().map(typed));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break page.metadata.resource_version.unwrap_or_default(),
            }
        };
        self.replace(objects, &version);
        let mut version = version;
        loop {
            let params = WatchParams::default().timeout(WATCH_SECONDS);
            let mut stream = api
                .watch(&params, &version)
                .await
                .map_err(|e| format!("watching {} of {}: {e}", resolved.plural, self.key.cluster))?
                .boxed();
            while let Some(event) = stream.next().await {
                match event.map_err(|e| format!("watching {}: {e}", self.key.cluster))? {
                    WatchEvent::Added(o) => {
                        let o = typed(o);
                        version = apimachinery::object::meta_str(&o, "resourceVersion")
                            .unwrap_or_default()
                            .to_owned();
                        self.apply("ADDED", o);
                    }
                    WatchEvent::Modified(o) => {
                        let o = typed(o);
                        version = apimachinery::object::meta_str(&o, "resourceVersion")
                            .unwrap_or_default()
                            .to_owned();
                        self.apply("MODIFIED", o);
                    }
                    WatchEvent::Deleted(o) => {
                        let o = typed(o);
                        version = apimachinery::object::meta_str(&o, "resourceVersion")
                            .unwrap_or_default()
                            .to_owned();
                        self.apply("DELETED", o);
                    }
                    WatchEvent::Bookmark(b) => {
                        version = b.metadata.resource_version;
                        self.state.write().version = version.clone();
                    }
                    // Expired (410) or anything else: list again.
                    WatchEvent::Error(_) => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, version: u64) -> Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "resourceVersion": version.to_string()}})
    }

    fn cache() -> Arc<ResourceCache> {
        let key =
            CacheKey { cluster: "member1".into(), api_version: "v1".into(), kind: "Node".into() };
        ResourceCache::new(key, Namespaces::All, None)
    }

    #[test]
    fn a_relist_tells_watchers_what_changed_and_watches_resume_from_a_version() {
        let cache = cache();
        cache.replace(vec![node("a", 5), node("b", 6)], "6");
        let (items, version) = cache.list(None, "");
        assert_eq!((items.len(), version.as_str()), (2, "6"));
        let from_start = cache.subscribe("").unwrap();
        assert_eq!(
            from_start.backlog.iter().map(|c| c.type_).collect::<Vec<_>>(),
            ["ADDED", "ADDED"]
        );
        let mut from_six = cache.subscribe("6").unwrap();
        assert!(from_six.backlog.is_empty());
        cache.apply("MODIFIED", node("a", 7));
        cache.replace(vec![node("a", 7), node("c", 9)], "9");
        let live: Vec<(&str, String)> = std::iter::from_fn(|| from_six.live.try_recv().ok())
            .map(|c| (c.type_, apimachinery::object::name(&c.object).to_owned()))
            .collect();
        assert_eq!(
            live,
            [("MODIFIED", "a".into()), ("DELETED", "b".into()), ("ADDED", "c".into())]
        );
        let resumed = cache.subscribe("7").unwrap();
        assert_eq!(resumed.backlog.len(), 2, "the changes after 7");
        // Pages continue after a key.
        let (rest, _) = cache.list(None, "/a");
        assert_eq!(rest.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["/c"]);
    }

    #[test]
    fn a_version_older_than_the_history_must_list_again() {
        let cache = cache();
        cache.replace(vec![], "1");
        for v in 2..(HISTORY as u64 + 10) {
            cache.apply("ADDED", node(&format!("n{v}"), v));
        }
        assert!(cache.subscribe("1").is_none());
        assert!(cache.subscribe("100").is_some());
    }

    #[test]
    fn only_the_selected_namespaces_are_kept() {
        let key = CacheKey { cluster: "m".into(), api_version: "v1".into(), kind: "Secret".into() };
        let cache = ResourceCache::new(key, Namespaces::Only(["a".to_owned()].into()), None);
        let secret =
            |ns: &str| json!({"metadata": {"name": "s", "namespace": ns, "resourceVersion": "3"}});
        cache.replace(vec![secret("a"), secret("b")], "3");
        cache.apply("ADDED", secret("c"));
        let (items, _) = cache.list(None, "");
        assert_eq!(items.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a/s"]);
    }
}
