//! The ResourceQuota controller: each quota's `status.hard` is its `spec.hard` and
//! `status.used` what its namespace's objects count (`apimachinery::quota::usage`), recounted
//! when they change. Kinds the simulation does not index are counted from a list.

use apimachinery::quantity::{self, Resources};
use apimachinery::quota;
use serde_json::{Value, json};

use super::{KINDS, Kind, Sim, deleting};

impl Sim {
    pub(super) async fn sync_resource_quota(&mut self, ns: &str, name: &str) {
        let Some(rq) = self.get(Kind::ResourceQuota, ns, name).cloned() else { return };
        if deleting(&rq) {
            return;
        }
        let hard_json = rq.pointer("/spec/hard").cloned().unwrap_or_else(|| json!({}));
        let hard = quantity::parse_list(Some(&hard_json));
        let mut used: Resources = hard.keys().map(|k| (k.clone(), 0)).collect();
        let mut counted = Vec::new();
        for (kind, group, _, plural) in KINDS {
            if *kind == Kind::Node {
                continue;
            }
            counted.push((*group, *plural));
            for ((n, _), object) in self.all(*kind) {
                if n != ns || deleting(object) {
                    continue;
                }
                for (k, v) in quota::usage(group, plural, object) {
                    if let Some(u) = used.get_mut(&k) {
                        *u += v;
                    }
                }
            }
        }
        // Counts of kinds not indexed here.
        for key in hard.keys() {
            let Some((group, plural)) = quota::counted_resource(key) else { continue };
            if counted.iter().any(|(g, p)| *g == group && *p == plural) {
                continue;
            }
            let Some(def) = self.api.registry().storage_def(&group, &plural) else { continue };
            if let Ok(objects) = self.api.list_values(&def, Some(ns)).await {
                let live = objects.iter().filter(|o| !deleting(o)).count() as i128;
                used.insert(key.clone(), live * 1000);
            }
        }
        let status = json!({"hard": hard_json, "used": quota::to_json(&used)});
        if rq.get("status") != Some(&status) {
            self.update(Kind::ResourceQuota, ns, name, move |o: &mut Value| {
                o["status"] = status.clone();
            })
            .await;
        }
    }
}
