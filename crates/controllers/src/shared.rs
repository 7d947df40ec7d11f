//! Watch caches shared by the controllers of one process, as client-go's shared informers:
//! one watch and one cached copy per kind however many controllers read it, each controller
//! subscribing to the changes. (Three controllers each watching ResourceBindings held three
//! copies of every binding and decoded every event three times.)

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::channel::mpsc;
use kube::Resource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

/// A change a shared watch saw, as kube's `watcher::Event` but with shared objects.
#[derive(Debug)]
pub enum Change<K> {
    /// A (re)list starts: the objects it brings follow as `Listed`.
    Relisting,
    Listed(Arc<K>),
    /// The (re)list is complete: what it did not bring is gone.
    Relisted,
    Applied(Arc<K>),
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Relisting => Change::Relisting,
            Change::Listed(o) => Change::Listed(Arc::clone(o)),
            Change::Relisted => Change::Relisted,
            Change::Applied(o) => Change::Applied(Arc::clone(o)),
            Change::Deleted(o) => Change::Deleted(Arc::clone(o)),
        }
    }
}

impl<K> Change<K> {
    /// The object changed, if the change is about one.
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Change::Listed(o) | Change::Applied(o) | Change::Deleted(o) => Some(o),
            Change::Relisting | Change::Relisted => None,
        }
    }

    /// The object, unless the change is its deletion (kube's `applied_objects`).
    pub fn applied(self) -> Option<Arc<K>> {
        match self {
            Change::Listed(o) | Change::Applied(o) => Some(o),
            _ => None,
        }
    }
}

/// The subscribers, and what a late one must be given first.
struct Hub<K> {
    subscribers: Vec<mpsc::UnboundedSender<Change<K>>>,
    /// The objects of a (re)list in progress so far.
    listing: Option<Vec<Arc<K>>>,
    /// Whether a list has completed (the cache holds one).
    listed: bool,
}

type Shared<K> = Arc<Mutex<Hub<K>>>;

/// One watch of a kind, its cache, and the controllers subscribed to its changes. The watch
/// runs until this is dropped.
pub struct Watched<K: Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    hub: Shared<K>,
    /// True once the first list is in the cache. (kube's `Store::wait_until_ready` wakes only
    /// the last of several tasks waiting on one store: a shared store needs its own signal.)
    ready: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Resource + 'static> Drop for Watched<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts watching `api` (managedFields dropped from what is cached).
    pub fn start(api: kube::Api<K>, config: watcher::Config) -> Arc<Self> {
        let (store, mut writer) = reflector::store::<K>();
        let hub: Shared<K> =
            Arc::new(Mutex::new(Hub { subscribers: Vec::new(), listing: None, listed: false }));
        let to = Arc::clone(&hub);
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let events = watcher::watcher(api, config).default_backoff().modify(crate::lean);
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                // Errors are retried by the watcher (with backoff).
                let Ok(event) = event else { continue };
                writer.apply_watcher_event(&event);
                if matches!(event, watcher::Event::InitDone) {
                    ready_tx.send_replace(true);
                }
                let change = match event {
                    watcher::Event::Init => Change::Relisting,
                    watcher::Event::InitApply(o) => Change::Listed(Arc::new(o)),
                    watcher::Event::InitDone => Change::Relisted,
                    watcher::Event::Apply(o) => Change::Applied(Arc::new(o)),
                    watcher::Event::Delete(o) => Change::Deleted(Arc::new(o)),
                };
                if let Ok(mut hub) = to.lock() {
                    match &change {
                        Change::Relisting => hub.listing = Some(Vec::new()),
                        Change::Listed(o) => {
                            if let Some(l) = hub.listing.as_mut() {
                                l.push(Arc::clone(o));
                            }
                        }
                        Change::Relisted => {
                            hub.listing = None;
                            hub.listed = true;
                        }
                        Change::Applied(_) | Change::Deleted(_) => {}
                    }
                    hub.subscribers.retain(|s| s.unbounded_send(change.clone()).is_ok());
                }
            }
        });
        Arc::new(Watched { store, hub, ready, task })
    }

    /// The cache. Wait for it to be filled with [`Watched::ready`], not with its
    /// `wait_until_ready`.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Waits until the cache holds the first list.
    pub async fn ready(&self) {
        let _ = self.ready.clone().wait_for(|ready| *ready).await;
    }

    /// Every change from now on, after what the cache holds (as a list, or the part of a
    /// list in progress): a late subscriber misses nothing.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Change<K>> {
        let (tx, rx) = mpsc::unbounded();
        if let Ok(mut hub) = self.hub.lock() {
            // Under the lock: no change is sent between this snapshot and the registration.
            if let Some(listing) = &hub.listing {
                let _ = tx.unbounded_send(Change::Relisting);
                for o in listing {
                    let _ = tx.unbounded_send(Change::Listed(Arc::clone(o)));
                }
            } else if hub.listed {
                let _ = tx.unbounded_send(Change::Relisting);
                for o in self.store.state() {
                    let _ = tx.unbounded_send(Change::Listed(o));
                }
                let _ = tx.unbounded_send(Change::Relisted);
            }
            hub.subscribers.push(tx);
        }
        rx
    }

    /// The objects applied from now on (kube's `applied_objects`), for
    /// `Controller::for_shared_stream`.
    pub fn applied(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe().filter_map(|c| futures::future::ready(c.applied()))
    }
}

/// A stream of objects without the ones whose `key` is unchanged since the object was last
/// let through (kube's `predicate_filter` for shared objects).
pub fn changed_by<K, S>(
    objects: S,
    key: fn(&K) -> Option<u64>,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send,
    S: futures::Stream<Item = Arc<K>> + Send + 'static,
{
    let mut seen: std::collections::HashMap<reflector::ObjectRef<K>, u64> =
        std::collections::HashMap::new();
    objects.filter_map(move |o| {
        let pass = match key(&o) {
            None => true,
            Some(k) => seen.insert(reflector::ObjectRef::from_obj(&*o), k) != Some(k),
        };
        futures::future::ready(pass.then_some(o))
    })
}
