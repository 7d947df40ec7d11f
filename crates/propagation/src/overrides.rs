//! OverridePolicy and ClusterOverridePolicy application, pure: (template, cluster, policies) →
//! the rendered object and the list of applied overrides.
//!
//! Order as upstream: ClusterOverridePolicies first, then OverridePolicies of the template's
//! namespace; each group by implicit priority (match-all < label selector < name), then name;
//! rules in declaration order; within one overriders block: image → command → args → labels →
//! annotations → field → plaintext.

use apimachinery::patch::{PatchError, json as json_patch};
use karmada_api::policy::{
    ClusterAffinity, ClusterOverridePolicy, CommandArgsOverrider, FieldOverrider, ImageComponent,
    ImageOverrider, LabelAnnotationOverrider, OverridePolicy, OverrideSpec, OverriderOperator,
    Overriders, PlaintextOverrider,
};
use serde_json::{Value, json};

use crate::{Implicit, Template, selector_matches};

pub const APPLIED_OVERRIDES: &str = "policy.karmada.io/applied-overrides";
pub const APPLIED_CLUSTER_OVERRIDES: &str = "policy.karmada.io/applied-cluster-overrides";

/// An override policy as seen by the renderer.
#[derive(Clone, Debug)]
pub struct OverridePolicyRef<'a> {
    /// Empty for ClusterOverridePolicies.
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a OverrideSpec,
}

impl<'a> OverridePolicyRef<'a> {
    pub fn namespaced(policy: &'a OverridePolicy) -> Self {
        OverridePolicyRef {
            namespace: policy.metadata.namespace.as_deref().unwrap_or_default(),
            name: policy.metadata.name.as_deref().unwrap_or_default(),
            spec: &policy.spec,
        }
    }

    pub fn cluster(policy: &'a ClusterOverridePolicy) -> Self {
        OverridePolicyRef {
            namespace: "",
            name: policy.metadata.name.as_deref().unwrap_or_default(),
            spec: &policy.spec,
        }
    }
}

/// Why an override could not be applied to one cluster's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideError {
    /// The policy's namespace ("" for a ClusterOverridePolicy).
    pub namespace: String,
    pub policy: String,
    pub message: String,
}

/// The policies whose overrides a rendered copy got, from its applied-overrides annotations:
/// (namespace, name), namespace "" for a ClusterOverridePolicy; cluster policies first, each
/// group in the order applied.
pub fn applied_policies(rendered: &Value) -> Vec<(String, String)> {
    let namespace = rendered.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let mut out = Vec::new();
    for (annotation, ns) in [(APPLIED_CLUSTER_OVERRIDES, ""), (APPLIED_OVERRIDES, namespace)] {
        let Some(text) = rendered.pointer("/metadata/annotations").and_then(|a| a.get(annotation))
        else {
            continue;
        };
        let applied: Vec<Value> =
            text.as_str().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
        for entry in applied {
            if let Some(name) = entry.get("policyName").and_then(Value::as_str) {
                out.push((ns.to_owned(), name.to_owned()));
            }
        }
    }
    out
}

/// A parsed container image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

impl Image {
    /// Parses like Docker: the first segment is a host if it contains `.` or `:` or is
    /// `localhost`; `:tag` and `@sha256:...` are kept apart.
    pub fn parse(reference: &str) -> Image {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, d.to_owned()),
            None => (reference, String::new()),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, tail))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), tail)
            }
            _ => (String::new(), rest),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_owned(), t.to_owned()),
            _ => (path.to_owned(), String::new()),
        };
        Image { registry, repository, tag, digest }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.registry.is_empty() {
            out.push_str(&self.registry);
            out.push('/');
        }
        out.push_str(&self.repository);
        if !self.tag.is_empty() {
            out.push(':');
            out.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            out.push('@');
            out.push_str(&self.digest);
        }
        out
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.as_bytes()[0].is_ascii_alphanumeric() | (tag.as_bytes()[0] == b'_')
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_digest(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn override_image(image: &str, o: &ImageOverrider) -> String {
    let mut parsed = Image::parse(image);
    use ImageComponent::{Registry, Repository, Tag};
    use OverriderOperator::{Add, Remove, Replace};
    match (&o.component, &o.operator) {
        (Registry, Add) => parsed.registry.push_str(&o.value),
        (Registry, Replace) => parsed.registry = o.value.clone(),
        (Registry, Remove) => parsed.registry.clear(),
        (Repository, Add) => parsed.repository.push_str(&o.value),
        (Repository, Replace) => parsed.repository = o.value.clone(),
        (Repository, Remove) => parsed.repository.clear(),
        (Tag, Add | Replace) => {
            if valid_digest(&o.value) {
                parsed.digest = o.value.clone();
                parsed.tag.clear();
            } else if valid_tag(&o.value) {
                parsed.tag = o.value.clone();
                parsed.digest.clear();
            } else {
                // Neither a tag nor a digest: leave the image as it is.
                return image.to_owned();
            }
        }
        (Tag, Remove) => {
            parsed.tag.clear();
            parsed.digest.clear();
        }
        _ => return image.to_owned(),
    }
    parsed.render()
}

fn container_pointers(kind: &str, object: &Value) -> Vec<String> {
    let base = match kind {
        "Pod" => "/spec/containers",
        "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => {
            "/spec/template/spec/containers"
        }
        _ => return Vec::new(),
    };
    let count = object.pointer(base).and_then(Value::as_array).map_or(0, Vec::len);
    (0..count).map(|i| format!("{base}/{i}")).collect()
}

fn apply_images(kind: &str, object: &mut Value, overriders: &[ImageOverrider]) {
    for o in overriders {
        let targets: Vec<String> = match &o.predicate {
            Some(p) => vec![p.path.clone()],
            None => {
                container_pointers(kind, object).into_iter().map(|c| format!("{c}/image")).collect()
            }
        };
        for pointer in targets {
            if let Some(slot) = object.pointer_mut(&pointer)
                && let Some(image) = slot.as_str()
            {
                *slot = json!(override_image(image, o));
            }
        }
    }
}

fn apply_command_args(
    kind: &str,
    object: &mut Value,
    overriders: &[CommandArgsOverrider],
    field: &str,
) {
    for o in overriders {
        for container in container_pointers(kind, object) {
            let Some(c) = object.pointer_mut(&container) else { continue };
            if c.get("name").and_then(Value::as_str) != Some(o.container_name.as_str()) {
                continue;
            }
            let list =
                c.as_object_mut().map(|m| m.entry(field.to_owned()).or_insert_with(|| json!([])));
            let Some(Value::Array(items)) = list else { continue };
            match o.operator {
                OverriderOperator::Add => items.extend(o.value.iter().map(|v| json!(v))),
                OverriderOperator::Remove => items.retain(|i| !o.value.iter().any(|v| i == v)),
                _ => {}
            }
        }
    }
}

fn apply_map(object: &mut Value, overriders: &[LabelAnnotationOverrider], field: &str) {
    for o in overriders {
        let map = apimachinery::object::string_map_mut(object, field);
        for (k, v) in &o.value {
            match o.operator {
                OverriderOperator::Add => {
                    map.insert(k.clone(), json!(v));
                }
                OverriderOperator::Replace if map.contains_key(k) => {
                    map.insert(k.clone(), json!(v));
                }
                OverriderOperator::Remove => {
                    map.remove(k);
                }
                _ => {}
            }
        }
    }
    apimachinery::object::tidy_metadata(object);
}

fn apply_fields(object: &mut Value, overriders: &[FieldOverrider]) -> Result<(), String> {
    for o in overriders {
        let Some(text) = object.pointer(&o.field_path).and_then(Value::as_str).map(str::to_owned)
        else {
            return Err(format!("fieldOverrider: {} is not a string field", o.field_path));
        };
        let yaml = o.json.is_empty();
        let mut doc: Value = if yaml {
            serde_yaml::from_str(&text)
                .map_err(|e| format!("fieldOverrider: {} is not YAML: {e}", o.field_path))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("fieldOverrider: {} is not JSON: {e}", o.field_path))?
        };
        let ops: Vec<Value> = o
            .json
            .iter()
            .chain(&o.yaml)
            .map(|op| {
                let mut v = json!({"op": op.operator, "path": op.sub_path});
                if let Some(value) = &op.value {
                    v["value"] = value.clone();
                }
                v
            })
            .collect();
        json_patch::apply(&mut doc, &Value::Array(ops))
            .map_err(|e| format!("fieldOverrider {}: {e}", o.field_path))?;
        let rendered = if yaml {
            serde_yaml::to_string(&doc).map_err(|e| e.to_string())?
        } else {
            serde_json::to_string(&doc).map_err(|e| e.to_string())?
        };
        if let Some(slot) = object.pointer_mut(&o.field_path) {
            *slot = json!(rendered);
        }
    }
    Ok(())
}

fn apply_plaintext(object: &mut Value, overriders: &[PlaintextOverrider]) -> Result<(), String> {
    let ops: Vec<Value> = overriders
        .iter()
        .map(|p| {
            let mut v = json!({"op": p.operator, "path": p.path});
            if let Some(value) = &p.value {
                v["value"] = value.clone();
            }
            v
        })
        .collect();
    json_patch::apply(object, &Value::Array(ops)).map_err(|e| match e {
        PatchError::Malformed(m) | PatchError::Failed(m) => format!("plaintext: {m}"),
    })
}

/// Applies one overriders block.
pub fn apply_overriders(kind: &str, object: &mut Value, o: &Overriders) -> Result<(), String> {
    apply_images(kind, object, &o.image_overrider);
    apply_command_args(kind, object, &o.command_overrider, "command");
    apply_command_args(kind, object, &o.args_overrider, "args");
    apply_map(object, &o.labels_overrider, "labels");
    apply_map(object, &o.annotations_overrider, "annotations");
    apply_fields(object, &o.field_overrider)?;
    apply_plaintext(object, &o.plaintext)
}

/// How specifically an override policy selects a template (no selectors select every one), if
/// it does; the namespace is the caller's to check.
pub fn policy_priority(spec: &OverrideSpec, template: &Template) -> Option<Implicit> {
    if spec.resource_selectors.is_empty() {
        return Some(Implicit::MatchAll);
    }
    spec.resource_selectors.iter().filter_map(|s| selector_matches(s, template)).max()
}

/// Renders one cluster's copy: applies every matching policy's rules whose target cluster
/// matches, in upstream's order, and records the applied overrides as annotations.
pub fn render(
    kind: &str,
    template: &Template,
    object: &Value,
    cluster_matches: &dyn Fn(Option<&ClusterAffinity>) -> bool,
    cluster_policies: &[OverridePolicyRef<'_>],
    namespaced_policies: &[OverridePolicyRef<'_>],
) -> Result<Value, OverrideError> {
    let mut out = object.clone();
    for (group, annotation) in
        [(cluster_policies, APPLIED_CLUSTER_OVERRIDES), (namespaced_policies, APPLIED_OVERRIDES)]
    {
        let mut matching: Vec<(&OverridePolicyRef<'_>, Implicit)> = group
            .iter()
            .filter(|p| p.namespace.is_empty() || p.namespace == template.namespace)
            .filter_map(|p| policy_priority(p.spec, template).map(|i| (p, i)))
            .collect();
        // Least specific first, so the most specific applies last.
        matching.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.name.cmp(b.0.name)));
        let mut applied = Vec::new();
        for (policy, _) in matching {
            let mut rules: Vec<(Option<&ClusterAffinity>, &Overriders)> = policy
                .spec
                .override_rules
                .iter()
                .map(|r| (r.target_cluster.as_ref(), &r.overriders))
                .collect();
            if !policy.spec.overriders.is_empty() {
                rules.push((policy.spec.target_cluster.as_ref(), &policy.spec.overriders));
            }
            let mut used = Vec::new();
            for (target, overriders) in rules {
                if !cluster_matches(target) {
                    continue;
                }
                apply_overriders(kind, &mut out, overriders).map_err(|message| OverrideError {
                    namespace: policy.namespace.to_owned(),
                    policy: policy.name.to_owned(),
                    message,
                })?;
                used.push(serde_json::to_value(overriders).unwrap_or_default());
            }
            if !used.is_empty() {
                applied.push(json!({"policyName": policy.name, "overriders": used}));
            }
        }
        if !applied.is_empty() {
            apimachinery::object::string_map_mut(&mut out, "annotations")
                .insert(annotation.to_owned(), json!(Value::Array(applied).to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let cases = [
            ("nginx", ("", "nginx", "", "")),
            ("nginx:1.27", ("", "nginx", "1.27", "")),
            ("library/nginx:1.27", ("", "library/nginx", "1.27", "")),
            ("docker.io/library/nginx", ("docker.io", "library/nginx", "", "")),
            ("localhost/app:v1", ("localhost", "app", "v1", "")),
            ("registry:5000/team/app:v2", ("registry:5000", "team/app", "v2", "")),
            ("quay.io/a/b@sha256:abc", ("quay.io", "a/b", "", "sha256:abc")),
            ("quay.io/a/b:v1@sha256:abc", ("quay.io", "a/b", "v1", "sha256:abc")),
        ];
        for (reference, (registry, repository, tag, digest)) in cases {
            let image = Image::parse(reference);
            assert_eq!(
                (
                    image.registry.as_str(),
                    image.repository.as_str(),
                    image.tag.as_str(),
                    image.digest.as_str()
                ),
                (registry, repository, tag, digest),
                "{reference}"
            );
            assert_eq!(image.render(), reference);
        }
    }

    fn img(component: &str, operator: &str, value: &str) -> ImageOverrider {
        ImageOverrider {
            predicate: None,
            component: component.into(),
            operator: operator.into(),
            value: value.into(),
        }
    }

    #[test]
    fn image_overriders() {
        let cases = [
            (
                "nginx:1.27",
                img("Registry", "replace", "fictional.registry.us"),
                "fictional.registry.us/nginx:1.27",
            ),
            ("docker.io/nginx", img("Registry", "add", "-mirror"), "docker.io-mirror/nginx"),
            ("docker.io/nginx", img("Registry", "remove", ""), "nginx"),
            ("docker.io/nginx:1", img("Repository", "replace", "team/web"), "docker.io/team/web:1"),
            ("nginx:1", img("Tag", "replace", "2"), "nginx:2"),
            ("nginx@sha256:abc", img("Tag", "add", "v3"), "nginx:v3"),
            ("nginx:1", img("Tag", "replace", "not a tag!"), "nginx:1"),
            ("nginx:1", img("Tag", "remove", ""), "nginx"),
        ];
        for (image, o, want) in cases {
            assert_eq!(override_image(image, &o), want, "{image} {o:?}");
        }
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx", "for": "for", "bar": "old"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx", "args": ["-a"]}, {"name": "side", "image": "busybox"}]}}},
            "data": {"config.yaml": "a: 1\nb: [x]\n"}})
    }

    fn template() -> Template {
        Template::from_object(&deployment())
    }

    fn spec(v: Value) -> OverrideSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_overrider() {
        let o: Overriders = serde_json::from_value(json!({
            "imageOverrider": [{"component": "Registry", "operator": "replace", "value": "mirror.io"}],
            "commandOverrider": [{"containerName": "side", "operator": "add", "value": ["sleep", "10"]}],
            "argsOverrider": [{"containerName": "nginx", "operator": "remove", "value": ["-a"]}],
            "labelsOverrider": [{"operator": "add", "value": {"env": "dev"}}, {"operator": "remove", "value": {"for": "for"}}, {"operator": "replace", "value": {"bar": "test", "missing": "x"}}],
            "annotationsOverrider": [{"operator": "add", "value": {"note": "hi"}}],
            "fieldOverrider": [{"fieldPath": "/data/config.yaml", "yaml": [{"subPath": "/a", "operator": "replace", "value": 2}]}],
            "plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 5}]
        }))
        .unwrap();
        let mut object = deployment();
        apply_overriders("Deployment", &mut object, &o).unwrap();
        assert_eq!(object["spec"]["template"]["spec"]["containers"][0]["image"], "mirror.io/nginx");
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][1]["image"],
            "mirror.io/busybox"
        );
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][1]["command"],
            json!(["sleep", "10"])
        );
        assert_eq!(object["spec"]["template"]["spec"]["containers"][0]["args"], json!([]));
        assert_eq!(
            object["metadata"]["labels"],
            json!({"app": "nginx", "bar": "test", "env": "dev"})
        );
        assert_eq!(object["metadata"]["annotations"]["note"], "hi");
        assert_eq!(object["data"]["config.yaml"], "a: 2\nb:\n- x\n");
        assert_eq!(object["spec"]["replicas"], 5);
        // Deterministic: applying the same overriders to the same input gives the same object.
        let mut again = deployment();
        apply_overriders("Deployment", &mut again, &o).unwrap();
        assert_eq!(again, object);
        // A bad pointer fails this rendering with a message, without a panic.
        let bad: Overriders = serde_json::from_value(json!({"plaintext": [{"path": "/spec/nothing/deeper", "operator": "replace", "value": 1}]})).unwrap();
        assert!(
            apply_overriders("Deployment", &mut deployment(), &bad)
                .unwrap_err()
                .starts_with("plaintext:")
        );
    }

    #[test]
    fn policy_and_rule_order_and_annotations() {
        let all = spec(
            json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "overrideRules": [{"overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 1}]}}]}),
        );
        let named = spec(
            json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}],
            "overrideRules": [
                {"targetCluster": {"clusterNames": ["member1"]}, "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 7}]}},
                {"targetCluster": {"clusterNames": ["member2"]}, "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 9}]}}]}),
        );
        let cluster_wide = spec(
            json!({"overrideRules": [{"overriders": {"labelsOverrider": [{"operator": "add", "value": {"from": "cop"}}]}}]}),
        );
        let ops = [
            OverridePolicyRef { namespace: "default", name: "z-named", spec: &named },
            OverridePolicyRef { namespace: "default", name: "a-all", spec: &all },
        ];
        let cops = [OverridePolicyRef { namespace: "", name: "cop", spec: &cluster_wide }];
        let on = |cluster: &'static str| {
            move |t: Option<&ClusterAffinity>| {
                t.is_none_or(|a| a.cluster_names.iter().any(|n| n == cluster))
            }
        };
        let m1 =
            render("Deployment", &template(), &deployment(), &on("member1"), &cops, &ops).unwrap();
        assert_eq!(m1["spec"]["replicas"], 7, "the named policy applies after the match-all one");
        assert_eq!(m1["metadata"]["labels"]["from"], "cop");
        let annotation: Value = serde_json::from_str(
            m1["metadata"]["annotations"][APPLIED_OVERRIDES].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(annotation[0]["policyName"], "a-all");
        assert_eq!(annotation[1]["policyName"], "z-named");
        assert!(
            m1["metadata"]["annotations"][APPLIED_CLUSTER_OVERRIDES]
                .as_str()
                .unwrap()
                .contains("cop")
        );
        let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
        };
        assert_eq!(
            applied_policies(&m1),
            owned(&[("", "cop"), ("default", "a-all"), ("default", "z-named")])
        );
        let m3 =
            render("Deployment", &template(), &deployment(), &on("member3"), &[], &ops).unwrap();
        assert_eq!(applied_policies(&m3), owned(&[("default", "a-all")]));
        assert_eq!(m3["spec"]["replicas"], 1, "only the match-all rule targets member3");
        let other_ns = [OverridePolicyRef { namespace: "other", name: "x", spec: &all }];
        let untouched =
            render("Deployment", &template(), &deployment(), &on("member1"), &[], &other_ns)
                .unwrap();
        assert_eq!(untouched, deployment(), "an OverridePolicy only applies in its namespace");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = String> {
            "[a-z][a-z0-9]{0,6}"
        }

        fn reference() -> impl Strategy<Value = String> {
            (
                prop::option::of(prop_oneof![
                    segment().prop_map(|h| format!("{h}.io")),
                    (segment(), 1u16..65535).prop_map(|(h, p)| format!("{h}.io:{p}")),
                    Just("localhost".to_string()),
                ]),
                prop::collection::vec(segment(), 1..3),
                prop::option::of("[a-z0-9][a-z0-9._-]{0,8}"),
                prop::option::of("[0-9a-f]{64}"),
            )
                .prop_map(|(host, path, tag, digest)| {
                    let mut s = host.map(|h| format!("{h}/")).unwrap_or_default();
                    s.push_str(&path.join("/"));
                    if let Some(t) = tag {
                        s.push(':');
                        s.push_str(&t);
                    }
                    if let Some(d) = digest {
                        s.push_str("@sha256:");
                        s.push_str(&d);
                    }
                    s
                })
        }

        fn replacing_overriders() -> impl Strategy<Value = Overriders> {
            (
                prop::sample::select(vec!["Registry", "Repository", "Tag"]),
                segment(),
                prop::collection::btree_map(segment(), segment(), 0..3),
                prop::collection::btree_map(segment(), segment(), 0..3),
                0i64..50,
            )
                .prop_map(|(component, value, labels, annotations, replicas)| {
                    let value = if component == "Registry" { format!("{value}.io") } else { value };
                    serde_json::from_value(json!({
                        "imageOverrider": [{"component": component, "operator": "replace", "value": value}],
                        "labelsOverrider": [{"operator": "add", "value": labels}],
                        "annotationsOverrider": [{"operator": "replace", "value": annotations}],
                        "plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": replicas}],
                    }))
                    .unwrap()
                })
        }

        proptest! {
            #[test]
            fn image_references_round_trip(r in reference()) {
                prop_assert_eq!(Image::parse(&r).render(), r);
            }

            #[test]
            fn replacing_overriders_are_idempotent(image in reference(), o in replacing_overriders()) {
                let mut object = deployment();
                object["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
                let mut once = object.clone();
                apply_overriders("Deployment", &mut once, &o).unwrap();
                let mut twice = once.clone();
                apply_overriders("Deployment", &mut twice, &o).unwrap();
                prop_assert_eq!(once, twice);
            }

            #[test]
            fn any_plaintext_pointer_fails_cleanly_or_applies(path in "(/[a-z0-9~]{0,6}){0,4}", op in prop::sample::select(vec!["add", "remove", "replace"])) {
                let o: Overriders = serde_json::from_value(json!({"plaintext": [{"path": path, "operator": op, "value": 1}]})).unwrap();
                let mut object = deployment();
                let _ = apply_overriders("Deployment", &mut object, &o);
            }
        }
    }
}
