//! Propagation decisions as pure functions, for the resource detector: which policy claims a
//! resource template (matching and upstream's priority order), whether a claimed template may
//! be preempted, the claim labels, and the binding's name; for the binding controller, the
//! Works a binding wants ([`works`]), with the overrides ([`overrides`]) and the built-in
//! interpretation of kinds ([`interpreter`]).
//!
//! No IO: the detector feeds templates and policies and writes what these functions decide.

pub mod binding;
pub mod interpreter;
pub mod overrides;
pub mod works;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use apimachinery::selector::LabelSelector;
use karmada_api::names;
use karmada_api::policy::{PropagationSpec, ResourceSelector};
use serde_json::Value;

/// What the matcher needs of a resource template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped templates.
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Template {
    pub fn from_object(object: &Value) -> Template {
        Template {
            api_version: object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kind: object.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: apimachinery::object::namespace(object).to_owned(),
            name: apimachinery::object::name(object).to_owned(),
            labels: apimachinery::selector::labels_of(object),
        }
    }
}

/// A policy as the matcher sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy<'a> {
    /// Empty for ClusterPropagationPolicies.
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a PropagationSpec,
}

impl Policy<'_> {
    pub fn cluster_scoped(&self) -> bool {
        self.namespace.is_empty()
    }
}

/// How specifically a selector picked a template (upstream's implicit priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Implicit {
    MatchAll = 1,
    LabelSelector = 2,
    Name = 3,
}

/// How one selector matches a template, if it does.
pub fn selector_matches(selector: &ResourceSelector, template: &Template) -> Option<Implicit> {
    if selector.api_version != template.api_version || selector.kind != template.kind {
        return None;
    }
    if !selector.namespace.is_empty() && selector.namespace != template.namespace {
        return None;
    }
    if !selector.name.is_empty() {
        return (selector.name == template.name).then_some(Implicit::Name);
    }
    match &selector.label_selector {
        // Labels alone (the common selector) are compared directly: converting the selector for
        // every template × policy pair dominated the detector with many policies.
        Some(ls) if ls.match_expressions.as_ref().is_none_or(Vec::is_empty) => ls
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| template.labels.get(k) == Some(v))
            .then_some(Implicit::LabelSelector),
        Some(ls) => {
            let value = serde_json::to_value(ls).unwrap_or_default();
            let parsed = LabelSelector::from_object(&value).ok()?;
            parsed.matches(&template.labels).then_some(Implicit::LabelSelector)
        }
        None => Some(Implicit::MatchAll),
    }
}

/// The best implicit priority with which a policy matches a template, if any. A namespaced
/// policy only matches templates in its namespace.
pub fn policy_matches(policy: &Policy<'_>, template: &Template) -> Option<Implicit> {
    if !policy.cluster_scoped() && policy.namespace != template.namespace {
        return None;
    }
    policy.spec.resource_selectors.iter().filter_map(|s| selector_matches(s, template)).max()
}

fn explicit(policy: &Policy<'_>) -> i32 {
    policy.spec.priority.unwrap_or(0)
}

/// Orders two matching policies: higher explicit priority, then higher implicit priority,
/// then the alphabetically smaller name wins (`Ordering::Less` = `a` wins).
pub fn compare(a: (&Policy<'_>, Implicit), b: (&Policy<'_>, Implicit)) -> Ordering {
    explicit(b.0).cmp(&explicit(a.0)).then(b.1.cmp(&a.1)).then(a.0.name.cmp(b.0.name))
}

/// The policy that should claim a template: PropagationPolicies of its namespace first, then
/// ClusterPropagationPolicies, each in priority order.
pub fn best_policy<'p, 'a>(
    template: &Template,
    propagation: &'p [Policy<'a>],
    cluster: &'p [Policy<'a>],
) -> Option<&'p Policy<'a>> {
    let pick = |candidates: &'p [Policy<'a>]| -> Option<&'p Policy<'a>> {
        candidates
            .iter()
            .filter_map(|p| policy_matches(p, template).map(|i| (p, i)))
            .min_by(|a, b| compare(*a, *b))
            .map(|(p, _)| p)
    };
    pick(propagation).or_else(|| pick(cluster))
}

/// Whether `challenger` may take a template already claimed by `holder`: only with
/// `preemption: Always` and a strictly higher priority (a PropagationPolicy always outranks
/// a ClusterPropagationPolicy).
pub fn may_preempt(challenger: (&Policy<'_>, Implicit), holder: (&Policy<'_>, Implicit)) -> bool {
    if challenger.0.spec.preemption != karmada_api::policy::Preemption::Always {
        return false;
    }
    match (challenger.0.cluster_scoped(), holder.0.cluster_scoped()) {
        (false, true) => true,
        (true, false) => false,
        _ => explicit(challenger.0) > explicit(holder.0),
    }
}

/// The metadata a policy's claim puts on a template and its binding, as upstream: the
/// policy's permanent id as a label, its name (and namespace) as annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Claim {
    pub fn of(policy: &Policy<'_>, permanent_id: &str) -> Claim {
        let mut claim = Claim::default();
        if policy.cluster_scoped() {
            claim.labels.insert(names::CPP_PERMANENT_ID_LABEL.into(), permanent_id.to_owned());
            claim.annotations.insert(names::CPP_NAME_ANNOTATION.into(), policy.name.to_owned());
        } else {
            claim.labels.insert(names::PP_PERMANENT_ID_LABEL.into(), permanent_id.to_owned());
            claim
                .annotations
                .insert(names::PP_NAMESPACE_ANNOTATION.into(), policy.namespace.to_owned());
            claim.annotations.insert(names::PP_NAME_ANNOTATION.into(), policy.name.to_owned());
        }
        claim
    }

    /// The policy an object's metadata says claims it: (namespace, name; namespace empty for
    /// a ClusterPropagationPolicy). Reads the annotations, and the labels earlier versions
    /// wrote.
    pub fn holder<'m>(
        labels: &'m BTreeMap<String, String>,
        annotations: &'m BTreeMap<String, String>,
    ) -> Option<(&'m str, &'m str)> {
        let pp = annotations
            .get(names::PP_NAME_ANNOTATION)
            .map(|n| (annotations.get(names::PP_NAMESPACE_ANNOTATION), n))
            .or_else(|| {
                labels
                    .get(names::LEGACY_PP_NAME_LABEL)
                    .map(|n| (labels.get(names::LEGACY_PP_NAMESPACE_LABEL), n))
            });
        if let Some((namespace, name)) = pp {
            return Some((namespace.map(String::as_str).unwrap_or_default(), name.as_str()));
        }
        annotations
            .get(names::CPP_NAME_ANNOTATION)
            .or_else(|| labels.get(names::LEGACY_CPP_NAME_LABEL))
            .map(|n| ("", n.as_str()))
    }
}

/// Every label a claim (or an earlier version's claim) may have put on an object.
pub const CLAIM_LABELS: [&str; 5] = [
    names::PP_PERMANENT_ID_LABEL,
    names::CPP_PERMANENT_ID_LABEL,
    names::LEGACY_PP_NAME_LABEL,
    names::LEGACY_PP_NAMESPACE_LABEL,
    names::LEGACY_CPP_NAME_LABEL,
];

/// Every annotation a claim may have put on an object.
pub const CLAIM_ANNOTATIONS: [&str; 3] =
    [names::PP_NAME_ANNOTATION, names::PP_NAMESPACE_ANNOTATION, names::CPP_NAME_ANNOTATION];

/// The name of a template's binding (upstream's: `<name>-<kind>` in lowercase).
pub fn binding_name(kind: &str, name: &str) -> String {
    names::binding_name(kind, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> PropagationSpec {
        serde_json::from_value(v).unwrap()
    }

    fn template() -> Template {
        Template {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "nginx".into(),
            labels: [("app".to_string(), "nginx".to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn selectors() {
        let t = template();
        let sel = |v: Value| -> ResourceSelector { serde_json::from_value(v).unwrap() };
        let cases = [
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}),
                Some(Implicit::Name),
            ),
            (json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"}), None),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "nginx"}}}),
                Some(Implicit::LabelSelector),
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "x"}}}),
                None,
            ),
            (json!({"apiVersion": "apps/v1", "kind": "Deployment"}), Some(Implicit::MatchAll)),
            (json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "other"}), None),
            (json!({"apiVersion": "v1", "kind": "Deployment"}), None),
            (json!({"apiVersion": "apps/v1", "kind": "StatefulSet"}), None),
            // A name wins over a label selector in the same selector.
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "labelSelector": {"matchLabels": {"app": "x"}}}),
                Some(Implicit::Name),
            ),
            // An empty label selector selects everything (as Kubernetes' do).
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {}}),
                Some(Implicit::LabelSelector),
            ),
            // Expressions, alone and with labels.
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx", "web"]}]}}),
                Some(Implicit::LabelSelector),
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "nginx"}, "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["nginx"]}]}}),
                None,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Bogus"}]}}),
                None,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(selector_matches(&sel(s.clone()), &t), want, "{s}");
        }
    }

    #[test]
    fn priority_order() {
        let by_name = spec(
            json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}]}),
        );
        let by_label = spec(
            json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "nginx"}}}]}),
        );
        let all =
            spec(json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}));
        let all_high = spec(
            json!({"priority": 5, "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}),
        );
        let t = template();
        fn pp<'a>(name: &'a str, spec: &'a PropagationSpec) -> Policy<'a> {
            Policy { namespace: "default", name, spec }
        }
        let (by_name, by_label, all, all_high) = (&by_name, &by_label, &all, &all_high);
        let policies = [pp("c-all", all), pp("b-label", by_label), pp("z-name", by_name)];
        assert_eq!(
            best_policy(&t, &policies, &[]).unwrap().name,
            "z-name",
            "name > label > match-all"
        );
        let policies = [pp("c-all", all), pp("b-label", by_label), pp("x-high", all_high)];
        assert_eq!(
            best_policy(&t, &policies, &[]).unwrap().name,
            "x-high",
            "explicit priority first"
        );
        let policies = [pp("b", all), pp("a", all)];
        assert_eq!(best_policy(&t, &policies, &[]).unwrap().name, "a", "then the smaller name");
        let cpp = [Policy { namespace: "", name: "cluster", spec: by_name }];
        assert_eq!(
            best_policy(&t, &[pp("ns", all)], &cpp).unwrap().name,
            "ns",
            "namespace policies before cluster policies"
        );
        assert_eq!(best_policy(&t, &[], &cpp).unwrap().name, "cluster");
        let elsewhere = [Policy { namespace: "other", name: "p", spec: all }];
        assert!(
            best_policy(&t, &elsewhere, &[]).is_none(),
            "a PropagationPolicy only sees its namespace"
        );
    }

    #[test]
    fn preemption() {
        let holder_spec = spec(
            json!({"priority": 1, "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}),
        );
        let higher_always = spec(
            json!({"priority": 2, "preemption": "Always", "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}]}),
        );
        let higher_never = spec(
            json!({"priority": 2, "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}]}),
        );
        let equal_always = spec(
            json!({"priority": 1, "preemption": "Always", "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}]}),
        );
        let holder =
            (&Policy { namespace: "default", name: "h", spec: &holder_spec }, Implicit::MatchAll);
        assert!(may_preempt(
            (&Policy { namespace: "default", name: "c", spec: &higher_always }, Implicit::Name),
            holder
        ));
        assert!(!may_preempt(
            (&Policy { namespace: "default", name: "c", spec: &higher_never }, Implicit::Name),
            holder
        ));
        assert!(!may_preempt(
            (&Policy { namespace: "default", name: "c", spec: &equal_always }, Implicit::Name),
            holder
        ));
        let cluster_holder =
            (&Policy { namespace: "", name: "h", spec: &holder_spec }, Implicit::MatchAll);
        assert!(
            may_preempt(
                (&Policy { namespace: "default", name: "c", spec: &equal_always }, Implicit::Name),
                cluster_holder
            ),
            "a PP preempts a CPP"
        );
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(binding_name("Deployment", "nginx"), "nginx-deployment");
        assert_eq!(
            binding_name("CustomResourceDefinition", "guestbooks.webapp.my.domain"),
            "guestbooks.webapp.my.domain-customresourcedefinition"
        );
        assert_eq!(binding_name("Role", "system:controller"), "system.controller-role");
        let s = spec(json!({"resourceSelectors": []}));
        let claim = Claim::of(&Policy { namespace: "default", name: "p", spec: &s }, "id");
        assert_eq!(claim.annotations["propagationpolicy.karmada.io/name"], "p");
        assert_eq!(claim.annotations["propagationpolicy.karmada.io/namespace"], "default");
        assert_eq!(claim.labels["propagationpolicy.karmada.io/permanent-id"], "id");
        assert_eq!(claim.labels.len(), 1, "names are annotations: they may exceed 63 characters");
        assert_eq!(Claim::holder(&claim.labels, &claim.annotations), Some(("default", "p")));
        let claim = Claim::of(&Policy { namespace: "", name: "c", spec: &s }, "id");
        assert_eq!(claim.labels["clusterpropagationpolicy.karmada.io/permanent-id"], "id");
        assert_eq!(claim.annotations["clusterpropagationpolicy.karmada.io/name"], "c");
        assert_eq!(Claim::holder(&claim.labels, &claim.annotations), Some(("", "c")));
        // Claimed by an earlier version (labels).
        let legacy: BTreeMap<String, String> = [
            ("propagationpolicy.karmada.io/name".to_string(), "old".to_string()),
            ("propagationpolicy.karmada.io/namespace".to_string(), "ns".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(Claim::holder(&legacy, &BTreeMap::new()), Some(("ns", "old")));
        assert_eq!(Claim::holder(&BTreeMap::new(), &BTreeMap::new()), None);
    }
}
