//! `remedy`: each cluster's `status.remedyActions` kept equal to what the Remedies ask of it
//! (`karmada_api::remedy::remedy_actions`), as its conditions change and Remedies come and go.
//! A level-triggered loop over the Remedies and the shared Cluster cache; a cluster is written
//! only when its actions change.

use std::sync::Arc;
use std::time::Duration;

use karmada_api::cluster::Cluster;
use karmada_api::remedy::{Remedy, remedy_actions};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

/// The remedy actions of a cluster to write, or `None` when it has them already.
pub fn actions_to_write(remedies: &[&Remedy], cluster: &Cluster) -> Option<Vec<String>> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let status = cluster.status.clone().unwrap_or_default();
    let wanted: Vec<String> = remedy_actions(remedies, name, &status.conditions)
        .into_iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    (wanted != status.remedy_actions).then_some(wanted)
}

/// Runs the `remedy` controller until the future is dropped.
pub async fn run(client: kube::Client, caches: crate::Caches) -> anyhow::Result<()> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let (remedies, watch) =
        crate::shared::cached::<Remedy>(&client, watcher::Config::default(), &notify);
    let _clusters = caches.clusters.notify_on_change(&notify);
    let api: Api<Cluster> = Api::all(client);
    loop {
        notify.notified().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if watch.is_finished() {
            anyhow::bail!("the Remedy watch stopped");
        }
        let listed = remedies.state();
        let all: Vec<&Remedy> = listed.iter().map(|r| r.as_ref()).collect();
        let mut failed = false;
        for cluster in caches.clusters.store().state() {
            if cluster.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(actions) = actions_to_write(&all, &cluster) else { continue };
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let value = if actions.is_empty() { json!(null) } else { json!(actions) };
            let patch = json!({"status": {"remedyActions": value}});
            if let Err(e) =
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await
            {
                tracing::debug!(cluster = name, error = %e, "remedy actions");
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_actions_are_written() {
        let remedy: Remedy = serde_json::from_value(json!({"metadata": {"name": "always"},
            "spec": {"actions": ["TrafficControl"]}}))
        .unwrap();
        let mut cluster: Cluster =
            serde_json::from_value(json!({"metadata": {"name": "member1"}, "spec": {}})).unwrap();
        assert_eq!(actions_to_write(&[&remedy], &cluster), Some(vec!["TrafficControl".to_owned()]));
        cluster.status.get_or_insert_default().remedy_actions = vec!["TrafficControl".into()];
        assert_eq!(actions_to_write(&[&remedy], &cluster), None);
        assert_eq!(actions_to_write(&[], &cluster), Some(vec![]), "removed with its Remedy");
    }
}
