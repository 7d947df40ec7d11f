//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules, so that of
//! several replicas of a component exactly one acts.
//!
//! A candidate tries every `retry_period` to create the Lease, renew its own, or take over one
//! whose holder has not renewed for `lease_duration` *as observed by this candidate's own clock*
//! (the holder's timestamps are never compared with our clock, so clock skew cannot elect two).
//! Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates cannot
//! both win a round. The leader renews every `retry_period`; if it cannot renew for
//! `renew_deadline` (shorter than `lease_duration`) it stops acting before anyone else may take
//! over. On a clean shutdown it releases the Lease so a standby takes over at once.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// Who competes for which Lease, and the timings (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// This replica's identity, unique among the candidates.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    /// Defaults for the Lease `name` in `karmada-system`, with a fresh identity.
    pub fn new(name: &str) -> LeaderElection {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        LeaderElection {
            namespace: "karmada-system".into(),
            lease_name: name.into(),
            identity: format!("{host}_{}", uuid::Uuid::new_v4()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Refuses timings that could let two replicas act at once.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lease_duration > self.renew_deadline,
            "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
            self.lease_duration,
            self.renew_deadline
        );
        anyhow::ensure!(
            self.renew_deadline > self.retry_period,
            "the renew deadline ({:?}) must be longer than the retry period ({:?})",
            self.renew_deadline,
            self.retry_period
        );
        Ok(())
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// What one round against the Lease found.
enum Round {
    /// We hold it (created, renewed or taken over).
    Held,
    /// Someone else holds it and has renewed within the lease duration we observed.
    HeldBy(String),
}

/// The candidate's memory of the Lease: the last record seen, and when we first saw it.
struct Observer {
    record: Option<(String, Option<MicroTime>)>,
    since: Instant,
}

impl Observer {
    /// Whether the holder has let `lease_duration` pass (by our clock) without a change.
    fn observe(&mut self, spec: &LeaseSpec, lease_duration: Duration) -> bool {
        let record = (spec.holder_identity.clone().unwrap_or_default(), spec.renew_time.clone());
        if self.record.as_ref() != Some(&record) {
            self.record = Some(record);
            self.since = Instant::now();
        }
        self.since.elapsed() >= lease_duration
    }
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaderElection,
    observer: &mut Observer,
) -> anyhow::Result<Round> {
    let seconds = config.lease_duration.as_secs().max(1) as i32;
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.lease_name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        api.create(&PostParams::default(), &lease).await?;
        return Ok(Round::Held);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let expired = observer.observe(spec, config.lease_duration);
    let ours = holder == config.identity;
    if !ours && !holder.is_empty() && !expired {
        return Ok(Round::HeldBy(holder));
    }
    if !ours {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now());
    // The resourceVersion we read makes this a compare-and-swap.
    api.replace(&config.lease_name, &PostParams::default(), &lease).await?;
    Ok(Round::Held)
}

/// Ensures the Lease's namespace exists (a fresh control plane may not have it yet).
async fn ensure_namespace(client: &kube::Client, namespace: &str) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let ns = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta { name: Some(namespace.into()), ..ObjectMeta::default() },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if crate::is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Waits to become leader, then runs `work` for as long as leadership lasts. Returns `work`'s
/// result, or an error as soon as the Lease could not be renewed within the renew deadline
/// (`work` is dropped first: a replica that lost the Lease never acts again). When `shutdown`
/// completes, stops `work` and releases the Lease.
pub async fn run<W, S>(
    client: kube::Client,
    config: LeaderElection,
    work: impl FnOnce() -> W,
    shutdown: S,
) -> anyhow::Result<()>
where
    W: Future<Output = anyhow::Result<()>>,
    S: Future<Output = ()>,
{
    config.validate()?;
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let mut observer = Observer { record: None, since: Instant::now() };
    tokio::pin!(shutdown);

    // 1. Campaign.
    let mut announced = None;
    loop {
        let round = async {
            ensure_namespace(&client, &config.namespace).await?;
            try_acquire_or_renew(&api, &config, &mut observer).await
        };
        match round.await {
            Ok(Round::Held) => break,
            Ok(Round::HeldBy(holder)) => {
                if announced.as_ref() != Some(&holder) {
                    tracing::info!(lease = %config.lease_name, %holder, "waiting: another replica leads");
                    announced = Some(holder);
                }
            }
            Err(e) => tracing::debug!(lease = %config.lease_name, error = %e, "lease round failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(config.retry_period) => {}
            () = &mut shutdown => return Ok(()),
        }
    }
    eprintln!(
        "became leader: lease {}/{} held by {}",
        config.namespace, config.lease_name, config.identity
    );
    tracing::info!(lease = %config.lease_name, identity = %config.identity, "became leader");

    // 2. Lead: work, while renewing.
    let renew = async {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(config.retry_period).await;
            match tokio::time::timeout(
                config.renew_deadline,
                try_acquire_or_renew(&api, &config, &mut observer),
            )
            .await
            {
                Ok(Ok(Round::Held)) => last_renewal = Instant::now(),
                Ok(Ok(Round::HeldBy(holder))) => {
                    return anyhow::anyhow!("lost the lease {} to {holder}", config.lease_name);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the lease"),
                Err(_) => tracing::warn!("renewing the lease timed out"),
            }
            if last_renewal.elapsed() >= config.renew_deadline {
                return anyhow::anyhow!(
                    "could not renew the lease {} within {:?}",
                    config.lease_name,
                    config.renew_deadline
                );
            }
        }
    };
    let outcome = tokio::select! {
        result = work() => result,
        lost = renew => Err(lost.context("leader election lost: stopping")),
        () = &mut shutdown => {
            release(&api, &config).await;
            Ok(())
        }
    };
    outcome
}

/// Gives the Lease up so that a standby need not wait for it to expire.
async fn release(api: &Api<Lease>, config: &LeaderElection) {
    let Ok(Some(mut lease)) = api.get_opt(&config.lease_name).await else { return };
    let Some(spec) = lease.spec.as_mut() else { return };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = Some(String::new());
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    match api.replace(&config.lease_name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(lease = %config.lease_name, "released the lease"),
        Err(e) => tracing::warn!(error = %e, "cannot release the lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_that_could_elect_two_are_refused() {
        let mut config = LeaderElection::new("x");
        assert!(config.validate().is_ok());
        config.renew_deadline = config.lease_duration;
        assert!(config.validate().is_err());
        config.renew_deadline = Duration::from_secs(1);
        config.retry_period = Duration::from_secs(1);
        assert!(config.validate().is_err());
    }

    #[test]
    fn expiry_is_measured_by_our_clock_from_the_last_change() {
        let mut observer = Observer { record: None, since: Instant::now() };
        let spec = LeaseSpec { holder_identity: Some("a".into()), ..LeaseSpec::default() };
        assert!(!observer.observe(&spec, Duration::from_millis(50)), "just seen");
        std::thread::sleep(Duration::from_millis(60));
        assert!(observer.observe(&spec, Duration::from_millis(50)), "unchanged for the duration");
        let renewed = LeaseSpec { renew_time: Some(now()), ..spec };
        assert!(!observer.observe(&renewed, Duration::from_millis(50)), "a renewal resets it");
    }
}
