//! Recording Events (upstream's reasons and messages, from `karmada_api::events`) without
//! slowing a reconcile down.
//!
//! A controller hands an Event to [`Events::record`], which only queues it; one task per
//! controller writes them (`events.k8s.io/v1`, two at a time). As with client-go's recorder,
//! Events are best effort: a full queue drops the newest, one already recorded with the same
//! object, reason and message within [`REPEAT_AFTER`] is not written again (reconciles repeat;
//! the API server should not get an Event per repeat), and `Normal` Events beyond a budget
//! ([`RATE`] a second, bursts of [`BURST`]) are dropped, so a burst of thousands of workloads
//! costs the API server a bounded number of Event writes (an Event costs about as much as the
//! object it reports on). Warnings are always written.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use karmada_api::events::{EventType, Reason};
use kube::api::{Api, PostParams};

/// Events waiting to be written, per controller (client-go's broadcaster queues 1,000).
const QUEUE: usize = 1000;
/// Writes in flight at once, per controller.
const IN_FLIGHT: usize = 2;
/// `Normal` Events written per second and controller, sustained...
pub const RATE: f64 = 20.0;
/// ... and at once after a quiet time.
pub const BURST: f64 = 100.0;

/// A token bucket for `Normal` Events.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(now: Instant) -> Budget {
        Budget { tokens: BURST, at: now }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * RATE;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
/// The same Event (object, reason, message) is written at most once in this long.
pub const REPEAT_AFTER: Duration = Duration::from_secs(600);
/// Recently written Events remembered for de-duplication.
const REMEMBERED: usize = 50_000;

struct Pending {
    regarding: ObjectReference,
    reason: Reason,
    message: String,
}

/// A controller's Event recorder (cheap to clone).
#[derive(Clone)]
pub struct Events {
    queue: tokio::sync::mpsc::Sender<Pending>,
}

impl Events {
    /// Starts the writer; `controller` is the Events' `reportingController`.
    pub fn start(client: kube::Client, controller: &str) -> Events {
        let (queue, pending) = tokio::sync::mpsc::channel(QUEUE);
        tokio::spawn(write_all(client, controller.to_owned(), pending));
        Events { queue }
    }

    /// Records an Event on `regarding` (queued; never waits).
    pub fn record(&self, regarding: ObjectReference, reason: Reason, message: impl Into<String>) {
        let pending = Pending { regarding, reason, message: message.into() };
        if self.queue.try_send(pending).is_err() {
            tracing::debug!(reason = reason.as_str(), "Event queue full; Event dropped");
        }
    }
}

/// What makes two Events the same for de-duplication.
type Key = (String, Reason, String);

fn key(p: &Pending) -> Key {
    let r = &p.regarding;
    let who = match r.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!(
            "{}/{}/{}",
            r.kind.as_deref().unwrap_or_default(),
            r.namespace.as_deref().unwrap_or_default(),
            r.name.as_deref().unwrap_or_default()
        ),
    };
    (who, p.reason, p.message.clone())
}

fn written_recently(recent: &HashMap<Key, Instant>, key: &Key, now: Instant) -> bool {
    recent.get(key).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER)
}

/// Whether to write `key` now (and remembers that it was), given what was written recently.
fn first_in_a_while(recent: &mut HashMap<Key, Instant>, key: Key, now: Instant) -> bool {
    if written_recently(recent, &key, now) {
        return false;
    }
    if recent.len() >= REMEMBERED {
        recent.retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
        if recent.len() >= REMEMBERED {
            recent.clear();
        }
    }
    recent.insert(key, now);
    true
}

async fn write_all(
    client: kube::Client,
    controller: String,
    mut pending: tokio::sync::mpsc::Receiver<Pending>,
) {
    let instance = format!("{controller}-{}", std::process::id());
    let (client, controller, instance) = (&client, &controller, &instance);
    let mut recent = HashMap::new();
    let mut budget = Budget::new(Instant::now());
    let mut dropped = 0u64;
    futures::stream::poll_fn(move |cx| pending.poll_recv(cx))
        .filter(move |p| {
            let now = Instant::now();
            let k = key(p);
            let write = !written_recently(&recent, &k, now)
                && (p.reason.event_type() == EventType::Warning || budget.take(now))
                && first_in_a_while(&mut recent, k, now);
            if !write {
                dropped += 1;
                if dropped.is_power_of_two() {
                    tracing::debug!(dropped, "Events not written (repeats or over budget)");
                }
            }
            std::future::ready(write)
        })
        .for_each_concurrent(IN_FLIGHT, |p| async move {
            let event = event(&p, controller, instance);
            let namespace = event.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, reason = p.reason.as_str(), "cannot record an Event");
            }
        })
        .await;
}

/// The Event object: named like client-go names them (`<object>.<hex nanoseconds>`), in the
/// object's namespace (`default` for a cluster-scoped object).
fn event(p: &Pending, controller: &str, instance: &str) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let object = p.regarding.name.as_deref().unwrap_or(controller);
    let namespace = p.regarding.namespace.clone().filter(|n| !n.is_empty());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.unwrap_or_else(|| "default".into())),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(p.reason.action().into()),
        reason: Some(p.reason.as_str().into()),
        note: Some(p.message.chars().take(1024).collect()),
        regarding: Some(p.regarding.clone()),
        reporting_controller: Some(controller.into()),
        reporting_instance: Some(instance.into()),
        type_: Some(
            match p.reason.event_type() {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Event::default()
    }
}

/// A reference to an object (for [`Events::record`]).
pub fn reference(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    uid: Option<&str>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        namespace: namespace.filter(|n| !n.is_empty()).map(str::to_owned),
        name: Some(name.into()),
        uid: uid.filter(|u| !u.is_empty()).map(str::to_owned),
        ..ObjectReference::default()
    }
}

/// The reference of a typed object.
pub fn reference_of<K: kube::Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    object.object_ref(&())
}

/// The resource template a binding is for.
pub fn template_reference(resource: &karmada_api::work::ObjectReference) -> ObjectReference {
    reference(
        &resource.api_version,
        &resource.kind,
        Some(&resource.namespace),
        &resource.name,
        Some(&resource.uid),
    )
}

impl Events {
    /// Records an Event on a binding and on its resource template (as upstream does for
    /// scheduling, syncing Works and evictions).
    pub fn record_binding<B: crate::Binding>(&self, binding: &B, reason: Reason, message: &str) {
        self.record(reference_of(binding), reason, message);
        self.record(template_reference(&binding.spec().resource), reason, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_event_is_written_once_in_a_while() {
        let mut recent = HashMap::new();
        let t0 = Instant::now();
        let k = |m: &str| ("uid-1".to_owned(), Reason::SyncWorkSucceed, m.to_owned());
        assert!(first_in_a_while(&mut recent, k("a"), t0));
        assert!(!first_in_a_while(&mut recent, k("a"), t0 + Duration::from_secs(5)));
        assert!(first_in_a_while(&mut recent, k("b"), t0 + Duration::from_secs(5)));
        assert!(first_in_a_while(&mut recent, k("a"), t0 + REPEAT_AFTER + Duration::from_secs(1)));
    }

    #[test]
    fn normal_events_have_a_budget() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0);
        let burst = (0..1000).filter(|_| budget.take(t0)).count();
        assert_eq!(burst, BURST as usize);
        assert!(!budget.take(t0));
        let later = t0 + Duration::from_secs(1);
        let refilled = (0..1000).filter(|_| budget.take(later)).count();
        assert_eq!(refilled, RATE as usize);
    }

    #[test]
    fn remembering_is_bounded() {
        let mut recent = HashMap::new();
        let t0 = Instant::now();
        for i in 0..REMEMBERED + 10 {
            let key = (format!("uid-{i}"), Reason::ApplyPolicySucceed, String::new());
            assert!(first_in_a_while(&mut recent, key, t0));
        }
        assert!(recent.len() <= REMEMBERED);
    }

    #[test]
    fn events_are_named_and_placed_like_client_gos() {
        let p = Pending {
            regarding: reference(
                "cluster.karmada.io/v1alpha1",
                "Cluster",
                None,
                "member1",
                Some("u1"),
            ),
            reason: Reason::TaintClusterSucceed,
            message: "m".into(),
        };
        let e = event(&p, "cluster-controller", "cluster-controller-1");
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert!(e.metadata.name.as_deref().unwrap().starts_with("member1."));
        assert_eq!(e.reason.as_deref(), Some("TaintClusterSucceed"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.regarding.unwrap().namespace, None);
    }
}
