//! The garbage collector and namespace finalizer, in-process.
//!
//! It follows every write (one store watch over `/registry/`) and keeps an index of object uids
//! and owner references. When an owner disappears, dependents whose owners are all gone are
//! deleted (background propagation). An owner being deleted with the `foregroundDeletion`
//! finalizer has its dependents deleted first; with `orphan`, its dependents lose the owner
//! reference. A namespace being deleted has its contents deleted, then its `kubernetes`
//! finalizer removed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::object::{self, meta_str};
use futures_util::StreamExt;
use serde_json::{Value, json};
use store::{Event, ListOptions};

use crate::auth::User;
use crate::registry::ResourceDef;
use crate::storage::{Decision, DeleteOptions, Storage};

/// Where an object lives: (group, plural, namespace, name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ObjectKey {
    group: String,
    plural: String,
    namespace: Option<String>,
    name: String,
}

fn parse_key(key: &[u8]) -> Option<ObjectKey> {
    let key = std::str::from_utf8(key).ok()?;
    let parts: Vec<&str> = key.strip_prefix("/registry/")?.split('/').collect();
    let group = |g: &str| if g == "core" { String::new() } else { g.to_owned() };
    match parts.as_slice() {
        [g, plural, ns, name] => Some(ObjectKey {
            group: group(g),
            plural: (*plural).into(),
            namespace: Some((*ns).into()),
            name: (*name).into(),
        }),
        [g, plural, name] => Some(ObjectKey {
            group: group(g),
            plural: (*plural).into(),
            namespace: None,
            name: (*name).into(),
        }),
        _ => None,
    }
}

/// What the collector reads of a stored object: its uid, owners, and deletion state, decoded
/// without building the rest of the object (it follows every write in the store).
#[derive(Debug, Default, PartialEq)]
struct Head {
    uid: String,
    owners: Vec<String>,
    deleting: bool,
    finalizers: Vec<String>,
    /// A namespace whose `spec.finalizers` are not empty (namespaces only).
    namespace_finalizers: bool,
}

#[derive(serde::Deserialize)]
struct HeadDoc {
    #[serde(default)]
    metadata: Option<HeadMeta>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadMeta {
    uid: Option<String>,
    owner_references: Option<Vec<OwnerUid>>,
    deletion_timestamp: Option<String>,
    finalizers: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct OwnerUid {
    uid: Option<String>,
}

impl Head {
    fn of(key: &ObjectKey, bytes: &[u8]) -> Head {
        let is_namespace = key.group.is_empty() && key.plural == "namespaces";
        let typed = if is_namespace { None } else { serde_json::from_slice::<HeadDoc>(bytes).ok() };
        match typed {
            Some(doc) => {
                let m = doc.metadata.unwrap_or_default();
                Head {
                    uid: m.uid.unwrap_or_default(),
                    owners: m
                        .owner_references
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|o| o.uid)
                        .collect(),
                    deleting: m.deletion_timestamp.is_some(),
                    finalizers: m.finalizers.unwrap_or_default(),
                    namespace_finalizers: false,
                }
            }
            // Namespaces (their spec matters) and anything the typed view cannot read.
            None => {
                let object: Value = serde_json::from_slice(bytes).unwrap_or_default();
                Head::of_value(&object)
            }
        }
    }

    fn of_value(object: &Value) -> Head {
        Head {
            uid: meta_str(object, "uid").unwrap_or_default().to_owned(),
            owners: object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .map(|refs| {
                    refs.iter()
                        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            deleting: meta_str(object, "deletionTimestamp").is_some(),
            finalizers: object::finalizers(object),
            namespace_finalizers: object
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty()),
        }
    }
}

#[derive(Default)]
struct Index {
    /// uid → where the object is.
    uids: HashMap<String, ObjectKey>,
    /// key → (uid, owner uids).
    objects: HashMap<ObjectKey, (String, Vec<String>)>,
    /// owner uid → dependents.
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
}

impl Index {
    fn apply(&mut self, key: ObjectKey, head: &Head) {
        self.remove(&key);
        let (uid, owners) = (head.uid.clone(), head.owners.clone());
        for owner in &owners {
            self.dependents.entry(owner.clone()).or_default().insert(key.clone());
        }
        if !uid.is_empty() {
            self.uids.insert(uid.clone(), key.clone());
        }
        self.objects.insert(key, (uid, owners));
    }

    fn remove(&mut self, key: &ObjectKey) {
        if let Some((uid, owners)) = self.objects.remove(key) {
            if self.uids.get(&uid) == Some(key) {
                self.uids.remove(&uid);
            }
            for owner in owners {
                if let Some(set) = self.dependents.get_mut(&owner) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&owner);
                    }
                }
            }
        }
    }

    fn orphaned(&self, key: &ObjectKey) -> bool {
        match self.objects.get(key) {
            Some((_, owners)) => {
                !owners.is_empty() && owners.iter().all(|o| !self.uids.contains_key(o))
            }
            None => false,
        }
    }
}

fn system_user() -> User {
    User {
        name: "system:serviceaccount:kube-system:generic-garbage-collector".into(),
        groups: vec!["system:masters".into()],
    }
}

struct Collector {
    api: Arc<Storage>,
    index: Index,
    /// Owners being deleted in the foreground or orphaning, and namespaces terminating.
    pending: BTreeSet<ObjectKey>,
    /// Terminating namespaces whose content could not be deleted: when to try again, and the
    /// last wait.
    backoff: HashMap<String, (std::time::Instant, Duration)>,
}

impl Collector {
    fn def(&self, key: &ObjectKey) -> Option<Arc<ResourceDef>> {
        self.api.registry.storage_def(&key.group, &key.plural)
    }

    /// Deletes an object; false when the server refused (admission, e.g. deletion
    /// protection).
    async fn delete(&self, key: &ObjectKey, propagation: &str) -> bool {
        let Some(def) = self.def(key) else { return true };
        let options = DeleteOptions { propagation: Some(propagation.into()), ..Default::default() };
        match self
            .api
            .delete_object(
                &def,
                key.namespace.as_deref(),
                &key.name,
                &options,
                false,
                &system_user(),
            )
            .await
        {
            Ok(_) => true,
            Err(e) if e.code == 404 => true,
            Err(e) => {
                tracing::warn!(object = ?key, error = %e, "garbage collection delete failed");
                false
            }
        }
    }

    /// Removes `finalizer` from an object (and, for namespaces, `spec.finalizers`).
    async fn finish(&self, key: &ObjectKey, finalizer: Option<&str>, namespace_spec: bool) {
        let Some(def) = self.def(key) else { return };
        let result = self
            .api
            .guaranteed_update(&def, key.namespace.as_deref(), &key.name, false, &mut |current| {
                let Some(current) = current else { return Ok(Decision::Unchanged) };
                let mut new = current.clone();
                if let Some(f) = finalizer {
                    let rest: Vec<String> =
                        object::finalizers(current).into_iter().filter(|x| x != f).collect();
                    object::set_meta(&mut new, "finalizers", json!(rest));
                    if rest.is_empty() {
                        object::remove_meta(&mut new, "finalizers");
                    }
                }
                if namespace_spec {
                    new["spec"]["finalizers"] = json!([]);
                }
                if new == *current { Ok(Decision::Unchanged) } else { Ok(Decision::Update(new)) }
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(object = ?key, error = %e, "could not remove a finalizer");
        }
    }

    async fn handle_object(&mut self, key: &ObjectKey, head: &Head) {
        if !head.deleting {
            return;
        }
        let is_namespace = key.group.is_empty() && key.plural == "namespaces";
        if head.finalizers.iter().any(|f| f == "foregroundDeletion" || f == "orphan")
            || (is_namespace && head.namespace_finalizers)
        {
            self.pending.insert(key.clone());
        }
    }

    /// Advances owners and namespaces being deleted. Returns true if work remains.
    async fn progress(&mut self) -> bool {
        let pending: Vec<ObjectKey> = self.pending.iter().cloned().collect();
        for key in pending {
            let Some(def) = self.def(&key) else {
                self.pending.remove(&key);
                continue;
            };
            let Ok(object) = self.api.read(&def, key.namespace.as_deref(), &key.name).await else {
                self.pending.remove(&key);
                if key.group.is_empty() && key.plural == "namespaces" {
                    self.backoff.remove(&key.name);
                }
                continue;
            };
            let uid = meta_str(&object, "uid").unwrap_or_default().to_owned();
            let finalizers = object::finalizers(&object);
            let dependents: Vec<ObjectKey> = self
                .index
                .dependents
                .get(&uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            if finalizers.iter().any(|f| f == "orphan") {
                for dependent in &dependents {
                    self.strip_owner(dependent, &uid).await;
                }
                self.finish(&key, Some("orphan"), false).await;
                continue;
            }
            if finalizers.iter().any(|f| f == "foregroundDeletion") {
                if dependents.is_empty() {
                    self.finish(&key, Some("foregroundDeletion"), false).await;
                } else {
                    for dependent in &dependents {
                        self.delete(dependent, "Foreground").await;
                    }
                }
                continue;
            }
            if key.group.is_empty() && key.plural == "namespaces" {
                let now = std::time::Instant::now();
                // Content is deleted a grace period after the namespace was (Kubernetes'
                // namespace controller waits 5 s, for last-moment creations to be seen).
                let due = self
                    .backoff
                    .entry(key.name.clone())
                    .or_insert((now + NAMESPACE_DELETION_GRACE, Duration::ZERO))
                    .0;
                if now < due {
                    continue;
                }
                match self.empty_namespace(&key.name).await {
                    Emptying::Empty => {
                        self.backoff.remove(&key.name);
                        self.finish(&key, None, true).await;
                    }
                    Emptying::Waiting => {}
                    // Content the server refuses to delete (deletion protection): try again
                    // later, waiting longer each time, as Kubernetes' namespace controller does.
                    Emptying::Refused => {
                        let wait = match self.backoff.get(&key.name) {
                            Some((_, w)) if !w.is_zero() => (*w * 2).min(NAMESPACE_RETRY_MAX),
                            _ => NAMESPACE_RETRY_FIRST,
                        };
                        self.backoff.insert(key.name.clone(), (now + wait, wait));
                    }
                }
                continue;
            }
            self.pending.remove(&key);
        }
        !self.pending.is_empty()
    }

    async fn strip_owner(&self, key: &ObjectKey, owner_uid: &str) {
        let Some(def) = self.def(key) else { return };
        let _ = self
            .api
            .guaranteed_update(&def, key.namespace.as_deref(), &key.name, false, &mut |current| {
                let Some(current) = current else { return Ok(Decision::Unchanged) };
                let mut new = current.clone();
                if let Some(refs) =
                    new.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                }
                object::tidy_metadata(&mut new);
                if new == *current { Ok(Decision::Unchanged) } else { Ok(Decision::Update(new)) }
            })
            .await;
    }

    /// Deletes what is left in a terminating namespace.
    async fn empty_namespace(&self, namespace: &str) -> Emptying {
        let mut empty = true;
        let mut refused = false;
        let mut seen = HashSet::new();
        for def in self.api.registry.all() {
            if !def.namespaced || !def.served_as_stored() || !seen.insert(def.prefix()) {
                continue;
            }
            let prefix = def.collection_prefix(Some(namespace));
            let Ok(page) = self.api.store.list(prefix.as_bytes(), ListOptions::default()).await
            else {
                empty = false;
                continue;
            };
            for kv in page.items {
                empty = false;
                let object: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                if meta_str(&object, "deletionTimestamp").is_some() {
                    continue;
                }
                if let Some(key) = parse_key(&kv.key)
                    && !self.delete(&key, "Background").await
                {
                    refused = true;
                }
            }
        }
        match (empty, refused) {
            (true, _) => Emptying::Empty,
            (false, true) => Emptying::Refused,
            (false, false) => Emptying::Waiting,
        }
    }

    async fn on_deleted(&mut self, key: &ObjectKey) {
        let uid = self.index.objects.get(key).map(|(uid, _)| uid.clone());
        let owners = self.index.objects.get(key).map(|(_, o)| o.clone()).unwrap_or_default();
        self.index.remove(key);
        if let Some(uid) = uid {
            let dependents: Vec<ObjectKey> = self
                .index
                .dependents
                .get(&uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for dependent in dependents {
                if self.index.orphaned(&dependent) {
                    self.delete(&dependent, "Background").await;
                }
            }
        }
        // A foreground owner may be waiting for this dependent.
        for owner in owners {
            if let Some(owner_key) = self.index.uids.get(&owner)
                && self.pending.contains(owner_key)
            {
                return;
            }
        }
    }
}

/// What emptying a terminating namespace found.
enum Emptying {
    Empty,
    /// Deletions under way (finalizers).
    Waiting,
    /// The server refused to delete something.
    Refused,
}

const NAMESPACE_DELETION_GRACE: Duration = Duration::from_secs(5);
const NAMESPACE_RETRY_FIRST: Duration = Duration::from_secs(1);
const NAMESPACE_RETRY_MAX: Duration = Duration::from_secs(60);

/// Runs until the server shuts down.
pub async fn run(api: Arc<Storage>) {
    let mut shutdown = api.shutdown.clone();
    let mut collector = Collector {
        api: Arc::clone(&api),
        index: Index::default(),
        pending: BTreeSet::new(),
        backoff: HashMap::new(),
    };
    let Ok(page) = api.store.list(b"/registry/", ListOptions::default()).await else {
        tracing::error!("garbage collector could not list objects");
        return;
    };
    let mut after = page.revision;
    let mut startup = Vec::new();
    for kv in page.items {
        if let Some(key) = parse_key(&kv.key) {
            let head = Head::of(&key, &kv.value);
            collector.index.apply(key.clone(), &head);
            startup.push((key, head));
        }
    }
    for (key, head) in &startup {
        collector.handle_object(key, head).await;
        if collector.index.orphaned(key) {
            collector.delete(key, "Background").await;
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let mut stream = match api.store.watch(b"/registry/", after).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector watch failed; resyncing");
                after = api.store.current_revision().await.unwrap_or(after);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {
                    if !collector.pending.is_empty() {
                        collector.progress().await;
                    }
                }
                event = stream.next() => match event {
                    None => return,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "garbage collector watch ended");
                        after = api.store.current_revision().await.unwrap_or(after);
                        break;
                    }
                    Some(Ok(Event::Put { kv, .. })) => {
                        after = kv.mod_revision;
                        if let Some(key) = parse_key(&kv.key) {
                            let head = Head::of(&key, &kv.value);
                            collector.index.apply(key.clone(), &head);
                            collector.handle_object(&key, &head).await;
                            if collector.index.orphaned(&key) {
                                collector.delete(&key, "Background").await;
                            }
                            if collector.pending.contains(&key) {
                                collector.progress().await;
                            }
                        }
                    }
                    Some(Ok(Event::Delete { revision, prev })) => {
                        after = revision;
                        if let Some(key) = parse_key(&prev.key) {
                            collector.on_deleted(&key).await;
                            if !collector.pending.is_empty() {
                                collector.progress().await;
                            }
                        }
                    }
                },
            }
        }
    }
}

/// When an Event was last seen (Unix seconds): the latest of its series, its deprecated last
/// timestamp and its event time; its creation when it has none of them.
fn event_last_seen(event: &Value) -> Option<i64> {
    let time = |p: &str| {
        event.pointer(p).and_then(Value::as_str).and_then(apimachinery::time::parse_rfc3339)
    };
    ["/series/lastObservedTime", "/lastTimestamp", "/eventTime"]
        .iter()
        .filter_map(|p| time(p))
        .max()
        .or_else(|| time("/metadata/creationTimestamp"))
}

/// Deletes Events last seen more than `ttl` ago (Kubernetes' `--event-ttl`, which etcd leases
/// do there), checking every `ttl / 4` (at most once a minute), a page at a time.
pub async fn expire_events(api: Arc<Storage>, ttl: Duration) {
    const PREFIX: &[u8] = b"/registry/core/events/";
    let mut shutdown = api.shutdown.clone();
    let every = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let cutoff = crate::clock::now_seconds() - ttl.as_secs() as i64;
        let mut options =
            ListOptions { limit: std::num::NonZeroUsize::new(500), ..ListOptions::default() };
        let mut expired = 0usize;
        loop {
            let Ok(page) = api.store.list(PREFIX, options.clone()).await else { break };
            for kv in &page.items {
                let event: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                if event_last_seen(&event).is_some_and(|seen| seen < cutoff)
                    && api.store.delete(&kv.key, Some(kv.mod_revision)).await.is_ok()
                {
                    expired += 1;
                }
            }
            match page.next_after {
                Some(after) => {
                    options.start_after = Some(after);
                    options.revision = Some(page.revision);
                }
                None => break,
            }
        }
        if expired > 0 {
            tracing::debug!(expired, "expired Events");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_reads_what_the_full_object_says() {
        let key = |plural: &str| ObjectKey {
            group: String::new(),
            plural: plural.into(),
            namespace: None,
            name: "x".into(),
        };
        for (plural, object) in [
            ("configmaps", json!({"metadata": {"name": "x", "uid": "u1"}, "data": {"a": "b"}})),
            (
                "configmaps",
                json!({"metadata": {"uid": "u2", "deletionTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": ["orphan"], "ownerReferences": [{"uid": "o1", "name": "p"}, {"uid": "o2"}]}}),
            ),
            (
                "pods",
                json!({"metadata": {"uid": null, "ownerReferences": null, "finalizers": null}}),
            ),
            ("pods", json!({"spec": {"finalizers": {"odd": true}}})),
            (
                "namespaces",
                json!({"metadata": {"uid": "n", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"finalizers": ["kubernetes"]}}),
            ),
            ("namespaces", json!({"metadata": {"uid": "n"}, "spec": {"finalizers": []}})),
        ] {
            let bytes = serde_json::to_vec(&object).unwrap();
            assert_eq!(Head::of(&key(plural), &bytes), Head::of_value(&object), "{object}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(
            parse_key(b"/registry/core/configmaps/default/a"),
            Some(ObjectKey {
                group: String::new(),
                plural: "configmaps".into(),
                namespace: Some("default".into()),
                name: "a".into()
            })
        );
        assert_eq!(
            parse_key(
                b"/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com"
            ),
            Some(ObjectKey {
                group: "apiextensions.k8s.io".into(),
                plural: "customresourcedefinitions".into(),
                namespace: None,
                name: "widgets.example.com".into()
            })
        );
        assert_eq!(parse_key(b"/other/x"), None);
    }
}
