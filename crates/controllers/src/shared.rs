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

    /// Shows `true` once the cache holds the first list.
    pub fn ready_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Wakes `notify` on every change (for a controller that recomputes its whole state).
    pub fn notify_on_change(&self, notify: &Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()>
    where
        K: Send + Sync,
    {
        let notify = Arc::clone(notify);
        tokio::spawn(self.subscribe().for_each(move |_| {
            notify.notify_one();
            async {}
        }))
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

/// How far a controller has got: reconciles finished so far. [`listed_last`] releases a
/// (re)list's objects to the controller only as it keeps up.
#[derive(Default)]
pub struct Pace {
    finished: std::sync::atomic::AtomicU64,
    notify: tokio::sync::Notify,
}

impl Pace {
    /// Call when a reconcile finishes.
    pub fn finished(&self) {
        self.finished.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.notify.notify_one();
    }

    fn count(&self) -> u64 {
        self.finished.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The applied objects of `changes` for a controller, with the objects of a (re)list held
/// back and released only `ahead` at a time beyond the reconciles the controller has
/// finished: a change that arrives while a restarted controller goes through thousands of
/// listed objects is reconciled next, not behind all of them. (kube's controller queue runs
/// triggers in arrival order.) Changes pass at once; the task ends with `changes`.
///
/// With `hold`, listed objects are not released at all until it shows `true` (a controller
/// that can reconcile a change before one of its caches is filled, but would only repeat
/// the whole list the slow way before that).
pub fn listed_last<K>(
    mut changes: mpsc::UnboundedReceiver<Change<K>>,
    pace: Arc<Pace>,
    ahead: u64,
    hold: Option<tokio::sync::watch::Receiver<bool>>,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Send + Sync + 'static,
{
    let (tx, rx) = mpsc::unbounded();
    let task = tokio::spawn(async move {
        let mut backlog: std::collections::VecDeque<Arc<K>> = std::collections::VecDeque::new();
        let mut released: u64 = 0;
        let mut hold = hold;
        loop {
            if hold.as_ref().is_some_and(|h| *h.borrow()) {
                hold = None;
            }
            // Release what the controller has room for.
            while hold.is_none() && !backlog.is_empty() && released < pace.count() + ahead {
                if let Some(o) = backlog.pop_front()
                    && tx.unbounded_send(o).is_err()
                {
                    return;
                }
                released += 1;
            }
            if backlog.is_empty() || hold.is_some() {
                // Nothing released: reconciles of other changes earn no credit for a later
                // list (nor for a held one: it starts `ahead` at a time when the hold ends).
                released = released.max(pace.count());
            }
            let waiting = !backlog.is_empty() && hold.is_none();
            tokio::select! {
                // The hold ends (or its sender is gone: nothing holds the list any longer).
                changed = async { hold.as_mut()?.changed().await.ok() }, if hold.is_some() => {
                    if changed.is_none() {
                        hold = None;
                    }
                }
                change = changes.next() => {
                    let Some(change) = change else { break };
                    match change {
                        Change::Listed(o) => backlog.push_back(o),
                        Change::Applied(o) => {
                            if tx.unbounded_send(o).is_err() {
                                return;
                            }
                        }
                        Change::Relisting | Change::Relisted | Change::Deleted(_) => {}
                    }
                }
                () = pace.notify.notified(), if waiting => {}
                // A reconcile that never reports (or triggers merged into one) cannot hold
                // the backlog forever.
                () = tokio::time::sleep(std::time::Duration::from_millis(50)), if waiting => {
                    released = released.saturating_sub(ahead);
                }
            }
        }
        // The changes ended: what is held still goes (then the stream ends).
        for o in backlog {
            if tx.unbounded_send(o).is_err() {
                return;
            }
        }
    });
    // The task ends with the stream, as `coalesce`'s.
    let guard = crate::AbortOnDrop(task);
    rx.map(move |o| {
        let _ = &guard;
        o
    })
}

/// Waits for the next change a whole-state controller is told of (or five minutes, a periodic
/// resync); an error when one of the watches feeding it stopped.
pub async fn next_change(
    notify: &tokio::sync::Notify,
    watches: &[&tokio::task::JoinHandle<()>],
    what: &str,
) -> anyhow::Result<()> {
    tokio::select! {
        () = notify.notified() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(300)) => {}
    }
    if watches.iter().any(|w| w.is_finished()) {
        anyhow::bail!("a {what} watch stopped");
    }
    Ok(())
}

/// A reflector over every `K` (narrowed by `config`) whose every change wakes `notify`: the
/// cache of a controller that recomputes its whole desired state on each change.
pub fn cached<K>(
    client: &kube::Client,
    config: watcher::Config,
    notify: &Arc<tokio::sync::Notify>,
) -> (reflector::Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let notify = Arc::clone(notify);
    let task = tokio::spawn(
        watcher::watcher(kube::Api::<K>::all(client.clone()), config)
            .default_backoff()
            .modify(crate::lean)
            .reflect(writer)
            .for_each(move |event| {
                // A failing watch (retried with backoff) changes nothing to look at.
                if event.is_ok() {
                    notify.notify_one();
                }
                async {}
            }),
    );
    (reader, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_goes_before_the_held_back_list() {
        let (tx, rx) = mpsc::unbounded();
        let pace = Arc::new(Pace::default());
        let out = listed_last(rx, Arc::clone(&pace), 4, None);
        futures::pin_mut!(out);
        tx.unbounded_send(Change::Relisting).unwrap();
        for i in 0..100 {
            tx.unbounded_send(Change::Listed(Arc::new(i))).unwrap();
        }
        tx.unbounded_send(Change::Relisted).unwrap();
        tx.unbounded_send(Change::Applied(Arc::new(1000))).unwrap();
        tx.unbounded_send(Change::Deleted(Arc::new(7))).unwrap();
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(*out.next().await.unwrap());
        }
        // Four listed objects were let through before the controller finished anything;
        // the change overtakes the other 96.
        assert_eq!(got, vec![0, 1, 2, 3, 1000]);
        // Each finished reconcile lets one more listed object through.
        pace.finished();
        pace.finished();
        assert_eq!(*out.next().await.unwrap(), 4);
        assert_eq!(*out.next().await.unwrap(), 5);
        // Nothing is lost: with the changes ended, the rest follows and the stream ends.
        drop(tx);
        let rest: Vec<i32> = out.map(|o| *o).collect().await;
        assert_eq!(rest, (6..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_held_list_waits_for_its_hold_to_end_and_changes_do_not() {
        let (tx, rx) = mpsc::unbounded();
        let (open, hold) = tokio::sync::watch::channel(false);
        let pace = Arc::new(Pace::default());
        let out = listed_last(rx, Arc::clone(&pace), 4, Some(hold));
        futures::pin_mut!(out);
        tx.unbounded_send(Change::Relisting).unwrap();
        for i in 0..10 {
            tx.unbounded_send(Change::Listed(Arc::new(i))).unwrap();
        }
        tx.unbounded_send(Change::Relisted).unwrap();
        tx.unbounded_send(Change::Applied(Arc::new(1000))).unwrap();
        assert_eq!(*out.next().await.unwrap(), 1000);
        // Held, however long the controller has been idle.
        let held = tokio::time::timeout(std::time::Duration::from_millis(300), out.next()).await;
        assert!(held.is_err(), "a listed object passed while held: {held:?}");
        open.send_replace(true);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(*out.next().await.unwrap());
        }
        assert_eq!(got, vec![0, 1, 2, 3]);
        // A hold whose sender goes away holds nothing any longer.
        let (tx, rx) = mpsc::unbounded();
        let (gone, hold) = tokio::sync::watch::channel(false);
        let out = listed_last(rx, Arc::new(Pace::default()), 4, Some(hold));
        futures::pin_mut!(out);
        tx.unbounded_send(Change::Listed(Arc::new(7))).unwrap();
        drop(gone);
        assert_eq!(*out.next().await.unwrap(), 7);
    }
}
