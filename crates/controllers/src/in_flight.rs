//! What the scheduler's recent decisions hold in clusters before the clusters' resource
//! summaries show it, so that concurrent decisions never overcommit a cluster (karmada#1385).
//!
//! A **promise** is what a decision adds to a cluster (replicas, or a whole set of a
//! multi-template workload, times their requests). It is held until the member reports the
//! workload Healthy there (afresh, when it already did at the decision) and then the cluster's
//! status is written once more — the first summary sure to count its pods — or, as a status
//! is only written when it changes, [`REPORT_GRACE`] after that report (a collection ran
//! meanwhile and found the summary already counting them); [`PROMISE_TTL`] at the latest. A new
//! status alone does not end it: a summary written while the pods were still being created
//! does not count them (a binding placed then took the same room again).
//!
//! A **nomination** is the room a binding that preempted others is waiting for: bindings of a
//! lower priority do not see it as free (as the Kubernetes scheduler's nominated pods), so a
//! victim rescheduled meanwhile cannot take back what it was preempted for. It ends when the
//! nominated binding is decided, deleted, or after [`NOMINATION`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use karmada_api::work::TargetCluster;

/// How long a promise is held at most (a workload that never reports Healthy): upstream's
/// assumption TTL, as the estimator's assumptions.
pub const PROMISE_TTL: Duration = crate::estimator::ASSUMPTION_TTL;
/// How long after the workload's Healthy report a promise is held without a new cluster
/// status: upstream's default `--cluster-status-update-frequency`, so a collection ran.
pub const REPORT_GRACE: Duration = Duration::from_secs(10);
/// How long a binding that preempted others holds the room it is waiting for.
pub const NOMINATION: Duration = Duration::from_secs(60);

/// Requests in milli-units by resource name.
type Requests = BTreeMap<String, i128>;

/// Promises and nominations, shared by the scheduler's binding kinds.
#[derive(Default)]
pub struct InFlight(Mutex<State>);

#[derive(Default)]
struct State {
    /// Binding (`namespace/name`) → cluster → its promise there.
    promises: HashMap<String, HashMap<String, Promise>>,
    /// Cluster → the sum of its promises (kept as promises come and go: a decision reads it
    /// without walking every promise).
    totals: HashMap<String, Requests>,
    /// Binding → the room it preempted for.
    nominations: HashMap<String, Nomination>,
    /// Bumped whenever something held ends (room may have appeared).
    released: u64,
    /// The cluster generation and time of the last sweep.
    swept: Option<(u64, Instant)>,
}

/// How often promises are looked over for their time while the clusters do not change.
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

struct Promise {
    requests: Requests,
    units: i64,
    at: Instant,
    hold: Hold,
}

/// What ends a promise.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hold {
    /// The member's report of the workload being Healthy; `was_healthy`: it was reported
    /// Healthy when promised, so only a report after an unhealthy one counts.
    Report { was_healthy: bool },
    /// Reported Healthy when the cluster's status was at this resourceVersion (at this time):
    /// the next one counts its pods.
    Status(String, Instant),
}

struct Nomination {
    priority: i32,
    by_cluster: HashMap<String, Requests>,
    at: Instant,
}

impl InFlight {
    /// Ends what is due given the clusters' status `versions` (as of the scheduler's cluster
    /// `generation`): promises reported Healthy before the cluster's current status, promises
    /// and nominations past their time. Returns the release generation (it changes when
    /// anything ended).
    pub fn sweep(&self, versions: &BTreeMap<String, String>, generation: u64) -> u64 {
        let Ok(mut state) = self.0.lock() else { return 0 };
        state.sweep(versions, generation);
        state.released
    }

    /// Whether any promise or nomination is held (something may free room without a cluster
    /// event: a binding that does not fit should look again in a while).
    pub fn holding(&self) -> bool {
        self.0.lock().is_ok_and(|s| !s.promises.is_empty() || !s.nominations.is_empty())
    }

    /// Deducts what is held from each cluster's capacity in a snapshot, as seen by a decision
    /// for `binding` of `priority`: every promise (its own too: its pods are not counted yet
    /// either), and the nominations of other bindings of at least its priority.
    pub fn apply(
        &self,
        clusters: &mut [scheduler::ClusterInfo],
        (versions, generation): (&BTreeMap<String, String>, u64),
        binding: &str,
        priority: i32,
    ) {
        let Ok(mut state) = self.0.lock() else { return };
        state.sweep(versions, generation);
        let nominations: Vec<&Nomination> = state
            .nominations
            .iter()
            .filter(|(key, n)| key.as_str() != binding && n.priority >= priority)
            .map(|(_, n)| n)
            .collect();
        for c in clusters.iter_mut() {
            let Some(capacity) = c.capacity.as_mut() else { continue };
            let held = state
                .totals
                .get(&c.name)
                .into_iter()
                .chain(nominations.iter().filter_map(|n| n.by_cluster.get(&c.name)));
            let mut held = held.peekable();
            if held.peek().is_none() {
                continue;
            }
            let capacity = Arc::make_mut(capacity);
            for requests in held {
                for (k, v) in requests {
                    *capacity.allocating.entry(k.clone()).or_default() += v;
                }
            }
        }
    }

    /// Records a decision for `binding`: what it adds to each cluster over `previous` is
    /// promised there (on top of what is still promised from before); clusters it left are
    /// released. `healthy`: the clusters where the member reports the workload Healthy now.
    /// A nomination of the binding ends: it has been decided.
    pub fn promise(
        &self,
        binding_key: &str,
        decision: &[TargetCluster],
        previous: &[TargetCluster],
        binding: &scheduler::BindingInfo,
        healthy: &[&str],
    ) {
        let Ok(mut state) = self.0.lock() else { return };
        let unit = binding.unit_requests();
        let old = state.promises.remove(binding_key).unwrap_or_default();
        let mut promised = HashMap::new();
        for target in decision {
            let before =
                previous.iter().find(|p| p.name == target.name).map_or(0, |p| binding.units(p));
            let now = binding.units(target);
            let added = (now - before).max(0);
            let kept = old.get(&target.name).map_or(0, |p| p.units);
            let units = (kept + added).min(now);
            if units <= 0 {
                continue;
            }
            let hold = match old.get(&target.name) {
                Some(p) if added == 0 => p.hold.clone(),
                _ => Hold::Report { was_healthy: healthy.contains(&target.name.as_str()) },
            };
            let at =
                old.get(&target.name).filter(|_| added == 0).map_or_else(Instant::now, |p| p.at);
            let requests = unit.iter().map(|(k, v)| (k.clone(), v * i128::from(units))).collect();
            promised.insert(target.name.clone(), Promise { requests, units, at, hold });
        }
        for (cluster, p) in &old {
            state.subtract(cluster, &p.requests);
        }
        for (cluster, p) in &promised {
            let total = state.totals.entry(cluster.clone()).or_default();
            for (k, v) in &p.requests {
                *total.entry(k.clone()).or_default() += v;
            }
        }
        if !promised.is_empty() {
            state.promises.insert(binding_key.to_owned(), promised);
        }
        if state.nominations.remove(binding_key).is_some() || !old.is_empty() {
            state.released += 1;
        }
    }

    /// Notes the member's reports for `binding` (`healthy`: where it is Healthy now) at the
    /// clusters' status `versions`.
    pub fn observe(&self, binding: &str, healthy: &[&str], versions: &BTreeMap<String, String>) {
        let Ok(mut state) = self.0.lock() else { return };
        let Some(promises) = state.promises.get_mut(binding) else { return };
        for (cluster, p) in promises.iter_mut() {
            let now = healthy.contains(&cluster.as_str());
            match &mut p.hold {
                Hold::Report { was_healthy } if !now => *was_healthy = false,
                Hold::Report { was_healthy: false } => {
                    let version = versions.get(cluster).cloned().unwrap_or_default();
                    p.hold = Hold::Status(version, Instant::now());
                }
                _ => {}
            }
        }
    }

    /// Records that `binding` (of `priority`) preempted others for `decision`: lower bindings
    /// do not see that room as free until it is decided.
    pub fn nominate(
        &self,
        binding_key: &str,
        priority: i32,
        decision: &[TargetCluster],
        binding: &scheduler::BindingInfo,
    ) {
        let unit = binding.unit_requests();
        let previous = &binding.previous;
        let by_cluster = decision
            .iter()
            .filter_map(|t| {
                let before =
                    previous.iter().find(|p| p.name == t.name).map_or(0, |p| binding.units(p));
                let added = i128::from((binding.units(t) - before).max(0));
                (added > 0).then(|| {
                    (t.name.clone(), unit.iter().map(|(k, v)| (k.clone(), v * added)).collect())
                })
            })
            .collect();
        if let Ok(mut state) = self.0.lock() {
            state.nominations.insert(
                binding_key.to_owned(),
                Nomination { priority, by_cluster, at: Instant::now() },
            );
        }
    }

    /// Whether `binding` preempted others and still waits for that room.
    pub fn nominated(&self, binding: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|s| s.nominations.get(binding).is_some_and(|n| n.at.elapsed() < NOMINATION))
    }

    /// What `binding` holds in flight, by cluster.
    pub fn held_by(&self, binding: &str) -> BTreeMap<String, Requests> {
        let Ok(state) = self.0.lock() else { return BTreeMap::new() };
        state
            .promises
            .get(binding)
            .into_iter()
            .flatten()
            .map(|(c, p)| (c.clone(), p.requests.clone()))
            .collect()
    }

    /// Forgets what `binding` holds (deleted, or preempted: its room is given back).
    pub fn release(&self, binding: &str) {
        let Ok(mut state) = self.0.lock() else { return };
        let nominated = state.nominations.remove(binding).is_some();
        let promised = state.promises.remove(binding);
        for (cluster, p) in promised.iter().flatten() {
            state.subtract(cluster, &p.requests);
        }
        if nominated || promised.is_some() {
            state.released += 1;
        }
    }
}

impl State {
    fn subtract(&mut self, cluster: &str, requests: &Requests) {
        let Some(total) = self.totals.get_mut(cluster) else { return };
        for (k, v) in requests {
            if let Some(t) = total.get_mut(k) {
                *t -= v;
                if *t <= 0 {
                    total.remove(k);
                }
            }
        }
        if total.is_empty() {
            self.totals.remove(cluster);
        }
    }

    /// Looks every promise over when the clusters changed since the last time, or a while
    /// passed (not once per decision: thousands may be held during a burst).
    fn sweep(&mut self, versions: &BTreeMap<String, String>, generation: u64) {
        if self.swept.is_some_and(|(g, at)| g == generation && at.elapsed() < SWEEP_PERIOD) {
            return;
        }
        self.swept = Some((generation, Instant::now()));
        let mut ended: Vec<(String, String)> = Vec::new();
        for (binding, promises) in &self.promises {
            for (cluster, p) in promises {
                let counted = matches!(&p.hold, Hold::Status(v, at)
                    if versions.get(cluster) != Some(v) || at.elapsed() >= REPORT_GRACE);
                if counted || p.at.elapsed() >= PROMISE_TTL {
                    ended.push((binding.clone(), cluster.clone()));
                }
            }
        }
        for (binding, cluster) in &ended {
            let Some(promises) = self.promises.get_mut(binding) else { continue };
            let Some(p) = promises.remove(cluster) else { continue };
            if promises.is_empty() {
                self.promises.remove(binding);
            }
            self.subtract(cluster, &p.requests);
        }
        let before = self.nominations.len();
        self.nominations.retain(|_, n| n.at.elapsed() < NOMINATION);
        if !ended.is_empty() || self.nominations.len() != before {
            self.released += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, cpu: i128) -> scheduler::ClusterInfo {
        scheduler::ClusterInfo {
            name: name.into(),
            capacity: Some(Arc::new(scheduler::Capacity {
                allocatable: [("cpu".to_string(), cpu), ("pods".to_string(), 110_000)]
                    .into_iter()
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn one_cpu() -> scheduler::BindingInfo {
        let requests = [("cpu".to_string(), 1000)].into_iter().collect();
        scheduler::BindingInfo { requests, ..Default::default() }
    }

    fn versions(v: &str) -> BTreeMap<String, String> {
        [("m1".to_string(), v.to_string())].into_iter().collect()
    }

    /// Replicas of one CPU that fit in m1 (4 CPUs) as a decision for `binding` of `priority`
    /// sees it at cluster status `v` (cluster generation `g`).
    fn room(in_flight: &InFlight, v: &str, g: u64, binding: &str, priority: i32) -> i64 {
        let mut snapshot = vec![cluster("m1", 4000)];
        in_flight.apply(&mut snapshot, (&versions(v), g), binding, priority);
        scheduler::estimate::available_replicas(
            snapshot[0].capacity.as_deref(),
            &one_cpu().requests,
            0,
        )
    }

    #[test]
    fn a_promise_holds_until_a_status_after_the_workload_is_healthy() {
        let in_flight = InFlight::default();
        in_flight.promise("ns/a", &[TargetCluster::new("m1", 3)], &[], &one_cpu(), &[]);
        assert_eq!(room(&in_flight, "5", 1, "ns/b", 0), 1, "3 of 4 cores are promised");
        // A new status written while the pods were being created does not count them.
        assert_eq!(room(&in_flight, "6", 2, "ns/b", 0), 1);
        // Healthy at status 6: the next status counts its pods.
        in_flight.observe("ns/a", &["m1"], &versions("6"));
        assert_eq!(room(&in_flight, "6", 2, "ns/b", 0), 1);
        let before = in_flight.sweep(&versions("6"), 2);
        assert_eq!(room(&in_flight, "7", 3, "ns/b", 0), 4);
        assert_ne!(in_flight.sweep(&versions("7"), 3), before, "a release is seen");
        assert!(!in_flight.holding());
    }

    #[test]
    fn a_scale_up_of_a_healthy_workload_waits_for_a_fresh_report() {
        let in_flight = InFlight::default();
        let previous = [TargetCluster::new("m1", 1)];
        in_flight.promise("ns/a", &[TargetCluster::new("m1", 3)], &previous, &one_cpu(), &["m1"]);
        assert_eq!(room(&in_flight, "5", 1, "ns/b", 0), 2, "2 added replicas are promised");
        // Still the old report: not yet.
        in_flight.observe("ns/a", &["m1"], &versions("5"));
        assert_eq!(room(&in_flight, "6", 2, "ns/b", 0), 2);
        // Progressing, then Healthy again, then a status after it.
        in_flight.observe("ns/a", &[], &versions("6"));
        in_flight.observe("ns/a", &["m1"], &versions("6"));
        assert_eq!(room(&in_flight, "7", 3, "ns/b", 0), 4);
    }

    #[test]
    fn a_new_decision_replaces_the_old_promise_and_deletion_releases_it() {
        let in_flight = InFlight::default();
        in_flight.promise("ns/a", &[TargetCluster::new("m1", 2)], &[], &one_cpu(), &[]);
        // Scaled from 2 to 3 before any pod was counted: 3 held, not 2 + 3.
        let previous = [TargetCluster::new("m1", 2)];
        in_flight.promise("ns/a", &[TargetCluster::new("m1", 3)], &previous, &one_cpu(), &[]);
        assert_eq!(room(&in_flight, "5", 1, "ns/b", 0), 1);
        // Moved away from m1: nothing held there.
        in_flight.promise("ns/a", &[TargetCluster::new("m2", 3)], &[], &one_cpu(), &[]);
        assert_eq!(room(&in_flight, "5", 1, "ns/b", 0), 4);
        in_flight.release("ns/a");
        assert!(!in_flight.holding());
    }

    #[test]
    fn a_nomination_holds_room_from_lower_priorities_only() {
        let in_flight = InFlight::default();
        in_flight.nominate("ns/high", 1000, &[TargetCluster::new("m1", 3)], &one_cpu());
        assert!(in_flight.nominated("ns/high"));
        assert_eq!(room(&in_flight, "5", 1, "ns/low", 100), 1, "a lower one sees it taken");
        assert_eq!(room(&in_flight, "5", 1, "ns/higher", 2000), 4, "a higher one does not");
        assert_eq!(room(&in_flight, "5", 1, "ns/high", 1000), 4, "nor the nominated one");
        // Decided: the nomination becomes its promise.
        in_flight.promise("ns/high", &[TargetCluster::new("m1", 3)], &[], &one_cpu(), &[]);
        assert!(!in_flight.nominated("ns/high"));
        assert_eq!(room(&in_flight, "5", 1, "ns/higher", 2000), 1);
    }
}
