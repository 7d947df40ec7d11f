//! A work queue ordered by priority, then arrival (upstream scheduler's priority queue under
//! PriorityBasedScheduling; with every priority equal it is first come, first served): a key is
//! queued at most once (pushed again, it keeps its place, or moves up if its priority rose), is
//! never handed to two workers at once (pushed while being worked on, it comes back once that
//! work is done), and a requeue after a delay keeps a single timer per key (the earliest).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a worker asks for after handling a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing until the key is pushed again.
    Done,
    /// The key comes back after this long (unless pushed sooner).
    After(Duration),
}

struct Entry<K> {
    priority: i32,
    seq: Reverse<u64>,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

struct Inner<K> {
    heap: BinaryHeap<Entry<K>>,
    /// Keys waiting, with the (priority, seq) of their live heap entry (others are stale).
    queued: HashMap<K, (i32, u64)>,
    running: HashSet<K>,
    /// Keys pushed while running: queued again when their work is done.
    dirty: HashMap<K, i32>,
    /// Pending delayed requeues: the deadline of each key's timer.
    timers: HashMap<K, Instant>,
    seq: u64,
}

pub struct Queue<K> {
    inner: Mutex<Inner<K>>,
    ready: Notify,
}

impl<K: Clone + Eq + Hash + Send + 'static> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                queued: HashMap::new(),
                running: HashSet::new(),
                dirty: HashMap::new(),
                timers: HashMap::new(),
                seq: 0,
            }),
            ready: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Queue<K> {
    /// Queues `key` at `priority` (higher first).
    pub fn push(&self, key: K, priority: i32) {
        let Ok(mut inner) = self.inner.lock() else { return };
        if inner.running.contains(&key) {
            let p = inner.dirty.entry(key).or_insert(priority);
            *p = (*p).max(priority);
            return;
        }
        if let Some((queued_priority, _)) = inner.queued.get(&key)
            && *queued_priority >= priority
        {
            return;
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.queued.insert(key.clone(), (priority, seq));
        inner.heap.push(Entry { priority, seq: Reverse(seq), key });
        drop(inner);
        self.ready.notify_one();
    }

    fn try_pop(&self) -> Option<K> {
        let mut inner = self.inner.lock().ok()?;
        while let Some(entry) = inner.heap.pop() {
            if inner.queued.get(&entry.key) == Some(&(entry.priority, entry.seq.0)) {
                inner.queued.remove(&entry.key);
                inner.running.insert(entry.key.clone());
                return Some(entry.key);
            }
        }
        None
    }

    /// The highest-priority key waiting (the earliest of equals), once there is one.
    pub async fn pop(&self) -> K {
        loop {
            let notified = self.ready.notified();
            if let Some(key) = self.try_pop() {
                // Others may be waiting for what is left.
                self.ready.notify_one();
                return key;
            }
            notified.await;
        }
    }

    /// Ends the work on `key`; it is queued again if it was pushed meanwhile, or after the delay
    /// `next` asks for.
    pub fn done(self: &Arc<Self>, key: K, next: Next, priority: impl Fn(&K) -> i32) {
        let again = {
            let Ok(mut inner) = self.inner.lock() else { return };
            inner.running.remove(&key);
            inner.dirty.remove(&key)
        };
        if let Some(p) = again {
            self.push(key.clone(), p);
        }
        if let Next::After(delay) = next {
            let p = priority(&key);
            self.after(key, delay, p);
        }
    }

    /// Queues `key` after `delay` (one timer per key: the earliest deadline wins).
    pub fn after(self: &Arc<Self>, key: K, delay: Duration, priority: i32) {
        let deadline = Instant::now() + delay;
        {
            let Ok(mut inner) = self.inner.lock() else { return };
            match inner.timers.get(&key) {
                Some(existing) if *existing <= deadline => return,
                _ => {
                    inner.timers.insert(key.clone(), deadline);
                }
            }
        }
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            let fire = match queue.inner.lock() {
                Ok(mut inner) if inner.timers.get(&key) == Some(&deadline) => {
                    inner.timers.remove(&key);
                    true
                }
                _ => false,
            };
            if fire {
                queue.push(key, priority);
            }
        });
    }

    /// Keys waiting (not running).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.queued.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn higher_priority_first_then_arrival() {
        let q: Arc<Queue<&str>> = Arc::default();
        q.push("low-1", 0);
        q.push("high", 100);
        q.push("low-2", 0);
        q.push("mid", 50);
        q.push("low-1", 0); // already queued: keeps its place
        assert_eq!(q.len(), 4);
        let mut order = Vec::new();
        for _ in 0..4 {
            let k = q.pop().await;
            order.push(k);
            q.done(k, Next::Done, |_| 0);
        }
        assert_eq!(order, ["high", "mid", "low-1", "low-2"]);
        // A key whose priority rises moves up.
        q.push("a", 0);
        q.push("b", 0);
        q.push("b", 10);
        assert_eq!(q.pop().await, "b");
    }

    #[tokio::test]
    async fn a_key_is_never_worked_on_twice_at_once() {
        let q: Arc<Queue<&str>> = Arc::default();
        q.push("k", 0);
        let k = q.pop().await;
        q.push("k", 0); // while running
        assert!(q.is_empty(), "held back until its work is done");
        q.done(k, Next::Done, |_| 0);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop().await, "k");
    }

    #[tokio::test(start_paused = true)]
    async fn requeues_after_a_delay_keep_one_timer() {
        let q: Arc<Queue<&str>> = Arc::default();
        q.push("k", 0);
        let k = q.pop().await;
        q.done(k, Next::After(Duration::from_secs(10)), |_| 0);
        q.after("k", Duration::from_secs(30), 0); // later than the pending one: ignored
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop().await, "k");
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(q.is_empty(), "the later timer was not kept");
    }
}
