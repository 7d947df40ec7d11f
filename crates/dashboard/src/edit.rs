//! The editor: YAML (or JSON) documents applied server-side with the signed-in user's token —
//! a dry run first if they ask — and what the API answered, each error with the fields it
//! names, so that the page can show a 422 where it belongs.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// At most this much text, and this many documents, per submission.
pub const MAX_BYTES: usize = 256 * 1024;
pub const MAX_DOCUMENTS: usize = 20;

/// The dashboard's field manager (what `managedFields` says wrote the applied fields).
pub const FIELD_MANAGER: &str = "karmada-dashboard";

/// What became of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `deployment.apps/web` (or `configmap/settings`) applied.
    Applied(String),
    Failed(Failure),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which document (1-based) and what it is, e.g. `2 (PropagationPolicy web)`.
    pub document: String,
    pub message: String,
    /// Each field the API named, with why.
    pub fields: Vec<(String, String)>,
}

/// The documents of `text`, each a Kubernetes object with apiVersion, kind and a name.
pub fn documents(text: &str) -> Result<Vec<Value>, Failure> {
    let fail =
        |document: String, message: String| Failure { document, message, fields: Vec::new() };
    if text.len() > MAX_BYTES {
        return Err(fail(
            "all".into(),
            format!("more than {} KiB: apply it in parts", MAX_BYTES / 1024),
        ));
    }
    let mut docs = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        if n > MAX_DOCUMENTS {
            return Err(fail("all".into(), format!("more than {MAX_DOCUMENTS} documents")));
        }
        let value: Value = serde::Deserialize::deserialize(document)
            .map_err(|e| fail(n.to_string(), format!("not valid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let str_at = |p: &str| value.pointer(p).and_then(Value::as_str).unwrap_or_default();
        for (path, field) in
            [("/apiVersion", "apiVersion"), ("/kind", "kind"), ("/metadata/name", "metadata.name")]
        {
            if str_at(path).is_empty() {
                return Err(Failure {
                    document: n.to_string(),
                    message: format!("{field} is required"),
                    fields: vec![(field.to_owned(), "Required value".to_owned())],
                });
            }
        }
        docs.push(value);
    }
    if docs.is_empty() {
        return Err(fail("all".into(), "nothing to apply".into()));
    }
    Ok(docs)
}

fn label(n: usize, object: &Value) -> String {
    let str_at = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!("{n} ({} {})", str_at("/kind"), str_at("/metadata/name"))
}

fn api_failure(document: String, error: kube::Error) -> Failure {
    match error {
        kube::Error::Api(status) => Failure {
            document,
            message: format!("{} ({}): {}", status.reason, status.code, status.message),
            fields: status
                .details
                .map(|d| d.causes.into_iter().map(|c| (c.field, c.message)).collect())
                .unwrap_or_default(),
        },
        other => Failure { document, message: other.to_string(), fields: Vec::new() },
    }
}

/// Applies each document in order (server-side apply, `dryRun=All` when `dry_run`), stopping
/// at the first failure.
pub async fn apply(client: &kube::Client, documents: &[Value], dry_run: bool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (i, object) in documents.iter().enumerate() {
        let document = label(i + 1, object);
        let str_at = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let (group, version) =
            str_at("/apiVersion").split_once('/').unwrap_or(("", str_at("/apiVersion")));
        let gvk = GroupVersionKind::gvk(group, version, str_at("/kind"));
        let (resource, capabilities) = match kube::discovery::pinned_kind(client, &gvk).await {
            Ok(found) => found,
            Err(e) => {
                outcomes.push(Outcome::Failed(api_failure(document, e)));
                break;
            }
        };
        let namespaced = capabilities.scope == kube::discovery::Scope::Namespaced;
        let api: Api<DynamicObject> = if namespaced {
            let ns = match str_at("/metadata/namespace") {
                "" => "default",
                ns => ns,
            };
            Api::namespaced_with(client.clone(), ns, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.dry_run = dry_run;
        let name = str_at("/metadata/name");
        match api.patch(name, &params, &Patch::Apply(object)).await {
            Ok(_) => {
                // As kubectl names what it applied: `configmap/a`, `deployment.apps/b`.
                let kind = if resource.group.is_empty() {
                    resource.kind.to_lowercase()
                } else {
                    format!("{}.{}", resource.kind.to_lowercase(), resource.group)
                };
                let suffix = if dry_run { " (dry run)" } else { "" };
                outcomes.push(Outcome::Applied(format!("{kind}/{name} applied{suffix}")));
            }
            Err(e) => {
                outcomes.push(Outcome::Failed(api_failure(document, e)));
                break;
            }
        }
    }
    outcomes
}

/// An object as YAML to edit: what its author wrote (no status, no server-set metadata).
pub fn editable(object: &Value) -> String {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "finalizers",
            "ownerReferences",
        ] {
            meta.remove(field);
        }
    }
    serde_yaml::to_string(&copy).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_bounded_and_checked() {
        let docs = documents("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n").unwrap();
        assert_eq!(docs.len(), 2);
        let missing = documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert_eq!(missing.fields, [("metadata.name".to_owned(), "Required value".to_owned())]);
        assert!(documents("a: [").unwrap_err().message.starts_with("not valid YAML"));
        assert_eq!(documents("").unwrap_err().message, "nothing to apply");
        let many = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n"
            .repeat(MAX_DOCUMENTS + 1);
        assert!(documents(&many).unwrap_err().message.contains("documents"));
        assert!(documents(&"#".repeat(MAX_BYTES + 1)).unwrap_err().message.contains("KiB"));
    }

    #[test]
    fn editable_drops_what_the_server_set() {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "uid": "u", "managedFields": [], "labels": {"x": "y"}},
            "data": {"k": "v"}, "status": {}});
        let text = editable(&object);
        assert!(
            !text.contains("resourceVersion")
                && !text.contains("managedFields")
                && !text.contains("status")
        );
        assert!(text.contains("labels") && text.contains("k: v"));
    }
}
