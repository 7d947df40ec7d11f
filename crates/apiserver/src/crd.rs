//! The CRD controller: loads stored CRDs into the registry at start-up, keeps CRD status
//! (`Established`, `NamesAccepted`) true, removes a CRD's objects when it is deleted, and keeps
//! the CRD objects of kinds the server serves itself ([`ServedCrds`]). The CRD data model and
//! schema checks are `crd_schema`.

use std::sync::Arc;

use apimachinery::ApiError;
use apimachinery::object::{self, meta_str};
use futures_util::StreamExt;
use serde_json::{Value, json};
use store::Revision;

use crate::admission::{Admission, AdmissionRequest, Operation};
use crate::clock::now_rfc3339;
pub use crate::crd_schema::{
    CRD_PREFIX, defs_from_crd, prune, sync_registry, validate, validate_crd,
};
use crate::registry::ResourceDef;
use crate::storage::{Decision, Storage, WriteHook, Written};

fn desired_status(crd: &Value) -> Value {
    let now = now_rfc3339();
    let existing =
        crd.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let condition = |type_: &str, reason: &str, message: &str| {
        let since = existing
            .iter()
            .find(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now));
        json!({"type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": since})
    };
    let versions: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "storedVersions": versions,
    })
}

/// Serves (or stops serving) a CRD's kinds as soon as the CRD is written.
pub struct RegistrySync;

impl WriteHook for RegistrySync {
    fn written(&self, storage: &Storage, crd: &Value, written: Written) {
        sync_registry(&storage.registry, &storage.served_crds, crd, written == Written::Deleted);
    }
}

/// Loads every stored CRD into the registry (at start-up), and returns the revision read at.
pub async fn load_all(api: &Storage) -> Result<Revision, store::StoreError> {
    let page = api.store.list(CRD_PREFIX.as_bytes(), store::ListOptions::default()).await?;
    for kv in &page.items {
        let crd: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
        sync_registry(&api.registry, &api.served_crds, &crd, false);
    }
    Ok(page.revision)
}

/// Keeps CRD status true and removes a CRD's objects when the CRD goes away.
pub async fn run_controller(api: Arc<Storage>, from: Revision) {
    let def = match api.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
        Some(d) => d,
        None => return,
    };
    let mut shutdown = api.shutdown.clone();
    // Establish what is already there.
    if let Ok(page) = api.store.list(CRD_PREFIX.as_bytes(), store::ListOptions::default()).await {
        for kv in page.items {
            let crd: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
            establish(&api, &def, object::name(&crd)).await;
        }
    }
    let mut after = from;
    loop {
        let mut stream = match api.store.watch(CRD_PREFIX.as_bytes(), after).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "CRD watch failed; restarting from the current revision");
                after = api.store.current_revision().await.unwrap_or(after);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = stream.next() => match event {
                    None => return,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "CRD watch ended");
                        after = api.store.current_revision().await.unwrap_or(after);
                        break;
                    }
                    Some(Ok(store::Event::Put { kv, .. })) => {
                        after = kv.mod_revision;
                        let crd: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                        sync_registry(&api.registry, &api.served_crds, &crd, false);
                        if meta_str(&crd, "deletionTimestamp").is_none() {
                            establish(&api, &def, object::name(&crd)).await;
                        }
                    }
                    Some(Ok(store::Event::Delete { revision, prev })) => {
                        after = revision;
                        let crd: Value = serde_json::from_slice(&prev.value).unwrap_or_default();
                        if api.served_crds.contains_key(object::name(&crd)) {
                            // Never: its objects are not the CRD's (deletion is refused).
                            continue;
                        }
                        let defs = defs_from_crd(&crd);
                        sync_registry(&api.registry, &api.served_crds, &crd, true);
                        if let Some(d) = defs.first() {
                            remove_objects(&api, d).await;
                        }
                    }
                },
            }
        }
    }
}

async fn establish(api: &Storage, def: &ResourceDef, name: &str) {
    let result = api
        .guaranteed_update(def, None, name, false, &mut |current| {
            let Some(current) = current else { return Ok(Decision::Unchanged) };
            let status = desired_status(current);
            if current.get("status") == Some(&status) {
                return Ok(Decision::Unchanged);
            }
            let mut new = current.clone();
            new["status"] = status;
            Ok(Decision::Update(new))
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(crd = name, error = %e, "could not update CRD status");
    }
}

/// Deletes every object stored for a removed CRD.
async fn remove_objects(api: &Storage, def: &ResourceDef) {
    let prefix = def.prefix();
    loop {
        let options =
            store::ListOptions { limit: std::num::NonZeroUsize::new(1000), ..Default::default() };
        let Ok(page) = api.store.list(prefix.as_bytes(), options).await else { return };
        if page.items.is_empty() {
            return;
        }
        for kv in page.items {
            let _ = api.store.delete(&kv.key, None).await;
        }
    }
}

/// The CustomResourceDefinition objects of kinds the server serves itself (Karmada's kinds),
/// shown as upstream installs them (`kubectl get crd`): their spec stays the server's — an
/// applied CRD for the same kind (upstream's YAML) is accepted and changes nothing — and they
/// cannot be deleted (that would delete every object of the kind).
pub struct ServedCrds;

impl Admission for ServedCrds {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.def.kind != "CustomResourceDefinition"
            || request.def.group != "apiextensions.k8s.io"
        {
            return Ok(());
        }
        let Some(served) = request.served_crds.get(object::name(object)) else { return Ok(()) };
        match request.operation {
            Operation::Delete => Err(ApiError::forbidden(format!(
                "customresourcedefinitions.apiextensions.k8s.io {:?} is forbidden: the kind is served by karmada-rs itself; deleting its definition would delete every object of it",
                object::name(object)
            ))),
            _ => {
                if request.subresource.is_none() {
                    object["spec"] = served["spec"].clone();
                }
                Ok(())
            }
        }
    }
}

/// Stores a served kind's CRD object, or brings its spec back to the server's (after an
/// upgrade that changed the schema).
pub async fn ensure_served(api: &Storage, crd: &Value) {
    let Some(def) = api.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let name = object::name(crd).to_owned();
    let result = api
        .guaranteed_update(&def, None, &name, false, &mut |current| match current {
            Some(current) if current.get("spec") == crd.get("spec") => Ok(Decision::Unchanged),
            Some(current) => {
                let mut new = current.clone();
                new["spec"] = crd["spec"].clone();
                Ok(Decision::Update(new))
            }
            None => {
                let mut object = crd.clone();
                let now = now_rfc3339();
                let uid = uuid::Uuid::new_v4().to_string();
                crate::strategy::prepare_create(&def, &mut object, &now, &uid)?;
                object["status"] = desired_status(&object);
                Ok(Decision::Create(object))
            }
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(crd = name, error = %e.message, "cannot store the CRD of a served kind");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"], "categories": ["all"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 0},
                            "color": {"type": "string", "enum": ["red", "blue"]},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}}]}
        })
    }

    #[test]
    fn crd_to_defs() {
        let defs = defs_from_crd(&widget_crd());
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(
            (d.group.as_str(), d.version.as_str(), d.plural.as_str(), d.kind.as_str()),
            ("example.com", "v1", "widgets", "Widget")
        );
        assert!(d.namespaced && d.status && d.scale.is_some() && d.custom);
        assert!(validate_crd(&widget_crd()).is_ok());
        let mut bad = widget_crd();
        bad["metadata"]["name"] = json!("wrong");
        assert!(validate_crd(&bad).is_err());
    }

    #[test]
    fn prune_and_validate() {
        let defs = defs_from_crd(&widget_crd());
        let schema = defs[0].schema.clone().unwrap();
        let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, "bogus": 1, "free": {"anything": {"goes": 1}}}, "extra": true});
        let unknown = prune(&schema, &mut object);
        assert_eq!(unknown, vec!["extra".to_owned(), "spec.bogus".to_owned()]);
        assert_eq!(object["spec"], json!({"size": 3, "free": {"anything": {"goes": 1}}}));
        assert!(validate(&schema, &object).is_empty());
        let bad = json!({"spec": {"size": "x", "color": "green"}});
        let causes = validate(&schema, &bad);
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(
            causes.iter().any(|c| c.field == "spec.size")
                && causes.iter().any(|c| c.field == "spec.color")
        );
        let missing = validate(&schema, &json!({"spec": {}}));
        assert_eq!(missing[0].field, "spec.size");
        let negative = validate(&schema, &json!({"spec": {"size": -1}}));
        assert_eq!(negative.len(), 1);
    }
}
