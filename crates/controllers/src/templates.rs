//! Every resource template the detector watches, shared with the binding controller (which
//! renders Works from here instead of reading templates from the API).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kube::api::ApiResource;

use crate::lean::LeanObject;

/// A kind's identity in [`TemplateKey`]: `apiVersion/plural`.
pub(crate) fn kind_id(ar: &ApiResource) -> String {
    format!("{}/{}", ar.api_version, ar.plural)
}

pub type TemplateKey = (String, String, String); // (group/version/plural, namespace, name)

/// Every resource template the detector watches, with its kind and scope. The binding
/// controller renders Works from here instead of reading templates from the API.
#[derive(Default)]
pub struct Templates(parking_lot::RwLock<HashMap<TemplateKey, TemplateEntry>>);

/// A template and its API resource (shared by every template of the kind).
pub type TemplateEntry = (Arc<ApiResource>, bool, LeanObject);

impl Templates {
    /// The template of kind `ar` (`apiVersion/plural` as in [`TemplateKey`]) at `namespace/name`.
    pub fn get(&self, ar: &ApiResource, namespace: &str, name: &str) -> Option<LeanObject> {
        let k = (kind_id(ar), namespace.to_owned(), name.to_owned());
        self.0.read().get(&k).map(|(_, _, o)| o.clone())
    }

    pub(crate) fn entry(&self, k: &TemplateKey) -> Option<TemplateEntry> {
        self.0.read().get(k).cloned()
    }

    /// Keeps `entry` unless a newer version of the template is already there (a template
    /// claimed by the detector is stored from the claim's response, before its watch event
    /// and possibly before older events still on their way).
    pub(crate) fn insert_newer(&self, k: TemplateKey, entry: TemplateEntry) {
        let mut map = self.0.write();
        let rv = |o: &LeanObject| o.metadata.resource_version.as_deref()?.parse::<u64>().ok();
        if let Some((_, _, held)) = map.get(&k)
            && held.metadata.uid == entry.2.metadata.uid
            && rv(&entry.2).zip(rv(held)).is_some_and(|(new, held)| new < held)
        {
            return;
        }
        map.insert(k, entry);
    }

    pub(crate) fn remove(&self, k: &TemplateKey) {
        self.0.write().remove(k);
    }

    /// The templates of `kind` that are not in `listed`.
    pub(crate) fn missing(&self, kind: &str, listed: &HashSet<TemplateKey>) -> Vec<TemplateKey> {
        self.0.read().keys().filter(|k| k.0 == kind && !listed.contains(*k)).cloned().collect()
    }

    pub(crate) fn keys(&self) -> Vec<TemplateKey> {
        self.0.read().keys().cloned().collect()
    }
}
