//! The accurate estimator (upstream's karmada-scheduler-estimator, computed in process): how many
//! replicas — or whole sets of components — of a workload a member can still take, from the
//! member's own nodes (free resources per node, node selectors, required node affinity, taints)
//! and the ResourceQuotas of the workload's namespace there, less what recent decisions assumed
//! for the member and its pods do not show yet.
//!
//! Quantities are milli-units; `pods` counts ×1000, as in [`crate::Capacity`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, Toleration};
use karmada_api::cluster::{Taint, TaintEffect};
use karmada_api::work::NodeClaim;

/// What a member has, as the estimator sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Member {
    pub nodes: Vec<Node>,
    /// ResourceQuotas by namespace.
    pub quotas: BTreeMap<String, Vec<Quota>>,
}

/// One node: its labels and taints, whether pods may go there (Ready, not cordoned), and what
/// is free on it (allocatable less the requests of its pods that have not finished; `pods`
/// ×1000 less one per such pod).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub schedulable: bool,
    pub free: BTreeMap<String, i128>,
}

/// One ResourceQuota: the PriorityClass scopes it is limited to, and what is free under it per
/// compute resource (`cpu`, `memory`, extended resources; `requests.x` counts as `x`): hard less
/// used, both from its status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quota {
    pub name: String,
    /// `scopeSelector`/`scopes` requirements (scope name, operator, values).
    pub scopes: Vec<(String, String, Vec<String>)>,
    pub free: BTreeMap<String, i128>,
}

/// One pod template: how many replicas of it a unit holds, and what each asks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Component {
    pub replicas: i64,
    /// Per replica, without `pods`.
    pub requests: BTreeMap<String, i128>,
    pub claim: Option<NodeClaim>,
    pub priority_class: String,
}

/// A workload decided for the member and not yet seen running there (upstream's assumed
/// workload): its namespace and what it places.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assumed {
    pub namespace: String,
    pub components: Vec<Component>,
}

/// The most units a member can be asked for (upstream's estimator answers in int32).
pub const UNBOUNDED: i64 = i32::MAX as i64;

/// The replicas of `replica` (one pod of the workload) the member can take in `namespace`: the
/// smaller of what its nodes hold and (when `quotas`) what the namespace's ResourceQuotas allow.
pub fn replicas(
    member: &Member,
    namespace: &str,
    replica: &Component,
    assumed: &[Assumed],
    quotas: bool,
) -> i64 {
    let one = Component { replicas: 1, ..replica.clone() };
    units(member, namespace, std::slice::from_ref(&one), assumed, quotas)
}

/// The whole sets of `components` the member can take in `namespace` (each set: every component
/// with its replicas).
pub fn units(
    member: &Member,
    namespace: &str,
    components: &[Component],
    assumed: &[Assumed],
    quotas: bool,
) -> i64 {
    let by_nodes = node_units(&member.nodes, components, assumed);
    if !quotas {
        return by_nodes;
    }
    by_nodes.min(quota_units(
        member.quotas.get(namespace).map_or(&[], Vec::as_slice),
        namespace,
        components,
        assumed,
    ))
}

/// Units that fit on the nodes once the assumed workloads are placed (first fit, as upstream's
/// simulator). Placing sets one after another stops at [`UNBOUNDED`] or when one does not fit.
fn node_units(nodes: &[Node], components: &[Component], assumed: &[Assumed]) -> i64 {
    let mut free: Vec<BTreeMap<String, i128>> = nodes.iter().map(|n| n.free.clone()).collect();
    for workload in assumed {
        for c in &workload.components {
            // What does not fit any more is simply not deducted (the member will show it).
            place(nodes, &mut free, c, c.replicas);
        }
    }
    // A single component: each node's share at once.
    if let [only] = components {
        if only.replicas <= 0 {
            return UNBOUNDED;
        }
        let mut replicas: i64 = 0;
        for (node, free) in nodes.iter().zip(&free) {
            if admits(node, only.claim.as_ref()) {
                replicas = replicas.saturating_add(fits(free, &only.requests));
            }
        }
        return (replicas / only.replicas).min(UNBOUNDED);
    }
    let mut sets = 0;
    while sets < UNBOUNDED {
        let mut trial = free.clone();
        let whole =
            components.iter().all(|c| place(nodes, &mut trial, c, c.replicas) == c.replicas);
        if !whole {
            break;
        }
        free = trial;
        sets += 1;
        // A set that takes nothing would fit forever.
        if components.iter().all(|c| c.replicas <= 0) {
            return UNBOUNDED;
        }
    }
    sets
}

/// Places up to `replicas` of `component` on the nodes that admit it, first fit, deducting from
/// `free`; returns how many were placed.
fn place(nodes: &[Node], free: &mut [BTreeMap<String, i128>], c: &Component, replicas: i64) -> i64 {
    let mut left = replicas.max(0);
    for (node, free) in nodes.iter().zip(free.iter_mut()) {
        if left == 0 {
            break;
        }
        if !admits(node, c.claim.as_ref()) {
            continue;
        }
        let take = fits(free, &c.requests).min(left);
        if take == 0 {
            continue;
        }
        for (k, v) in &c.requests {
            *free.entry(k.clone()).or_default() -= v * i128::from(take);
        }
        *free.entry("pods".into()).or_default() -= 1000 * i128::from(take);
        left -= take;
    }
    replicas.max(0) - left
}

/// Pods of `requests` that fit in `free` (one pod slot each; a resource the node lacks fits
/// none).
fn fits(free: &BTreeMap<String, i128>, requests: &BTreeMap<String, i128>) -> i64 {
    let mut n = free.get("pods").copied().unwrap_or(0).max(0) / 1000;
    for (k, v) in requests {
        if *v <= 0 || k == "pods" {
            continue;
        }
        n = n.min(free.get(k).copied().unwrap_or(0).max(0) / v);
    }
    i64::try_from(n).unwrap_or(UNBOUNDED).min(UNBOUNDED)
}

/// Whether a node may run a pod with `claim`: schedulable, its labels match the node selector
/// and the required node affinity, and every NoSchedule/NoExecute taint is tolerated.
pub fn admits(node: &Node, claim: Option<&NodeClaim>) -> bool {
    if !node.schedulable {
        return false;
    }
    let empty = NodeClaim::default();
    let claim = claim.unwrap_or(&empty);
    claim.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
        && claim.hard_node_affinity.as_ref().is_none_or(|a| affinity_matches(a, node))
        && node
            .taints
            .iter()
            .filter(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute))
            .all(|t| tolerates(&claim.tolerations, t))
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    crate::filter::tolerated(tolerations, taint)
}

/// A required node affinity: any term whose expressions (and fields) all match; an empty term
/// matches nothing, as in Kubernetes.
fn affinity_matches(selector: &NodeSelector, node: &Node) -> bool {
    selector.node_selector_terms.iter().any(|term| {
        let expressions = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if expressions.is_empty() && fields.is_empty() {
            return false;
        }
        expressions
            .iter()
            .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
            && fields.iter().all(|r| {
                r.key == "metadata.name" && requirement_matches(r, Some(node.name.as_str()))
            })
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) =
                (value.and_then(number), values.first().and_then(|b| number(b)))
            else {
                return false;
            };
            if r.operator == "Gt" { have > bound } else { have < bound }
        }
        _ => false,
    }
}

/// Units the namespace's quotas allow: for each quota that applies (no PriorityClass scope, or
/// one the components match), what is free after the assumed workloads of the namespace, over
/// what a unit asks of the resources the quota limits. A quota the assumed workloads already
/// exhaust allows none.
fn quota_units(
    quotas: &[Quota],
    namespace: &str,
    components: &[Component],
    assumed: &[Assumed],
) -> i64 {
    let mut allowed = UNBOUNDED;
    for quota in quotas {
        let matched: Vec<&Component> =
            components.iter().filter(|c| applies(quota, &c.priority_class)).collect();
        if matched.is_empty() || quota.free.is_empty() {
            continue;
        }
        let mut free = quota.free.clone();
        let assumed_here = assumed
            .iter()
            .filter(|a| a.namespace == namespace)
            .flat_map(|a| &a.components)
            .filter(|c| applies(quota, &c.priority_class));
        for c in assumed_here {
            for (k, v) in &c.requests {
                if let Some(f) = free.get_mut(k) {
                    *f -= v * i128::from(c.replicas.max(0));
                }
            }
        }
        if free.values().any(|f| *f < 0) {
            return 0;
        }
        let mut unit: BTreeMap<&str, i128> = BTreeMap::new();
        for c in matched {
            for (k, v) in &c.requests {
                *unit.entry(k.as_str()).or_default() += v * i128::from(c.replicas.max(0));
            }
        }
        for (k, asked) in unit {
            if asked <= 0 {
                continue;
            }
            if let Some(f) = free.get(k) {
                let n = i64::try_from(*f / asked).unwrap_or(UNBOUNDED);
                allowed = allowed.min(n);
            }
        }
    }
    allowed
}

/// Whether a quota counts a pod of `priority_class`: it has no scopes, or a PriorityClass scope
/// requirement matches (requirements on other scopes never match a workload here, as upstream).
fn applies(quota: &Quota, priority_class: &str) -> bool {
    if quota.scopes.is_empty() {
        return true;
    }
    quota.scopes.iter().any(|(scope, operator, values)| {
        scope == "PriorityClass"
            && match operator.as_str() {
                "In" => values.iter().any(|v| v == priority_class),
                "NotIn" => !values.iter().any(|v| v == priority_class),
                "Exists" => !priority_class.is_empty(),
                "DoesNotExist" => priority_class.is_empty(),
                _ => false,
            }
    })
}

/// The compute resources a quota limits, free per resource: `hard − used` from its status, for
/// `cpu`, `memory`, `requests.<resource>` (as `<resource>`) and extended resources; `limits.*`,
/// counts and `pods` are not estimated (as upstream). A resource missing from `used` is left out.
pub fn quota_free(
    hard: &BTreeMap<String, i128>,
    used: &BTreeMap<String, i128>,
) -> BTreeMap<String, i128> {
    let mut free = BTreeMap::new();
    for (key, h) in hard {
        if key.starts_with("limits.") || key.starts_with("count/") || key == "pods" {
            continue;
        }
        let resource = key.strip_prefix("requests.").unwrap_or(key);
        let compute = matches!(resource, "cpu" | "memory")
            || (resource.contains('/') && !resource.starts_with("kubernetes.io/"));
        if !compute {
            continue;
        }
        let Some(u) = used.get(key) else { continue };
        let f = free.entry(resource.to_owned()).or_insert(i128::MAX);
        *f = (*f).min(h - u);
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSelectorTerm;

    fn node(name: &str, cpu: i128, pods: i128) -> Node {
        Node {
            name: name.into(),
            labels: BTreeMap::from([("kubernetes.io/hostname".into(), name.into())]),
            taints: Vec::new(),
            schedulable: true,
            free: BTreeMap::from([("cpu".into(), cpu), ("pods".into(), pods * 1000)]),
        }
    }

    fn replica(cpu: i128) -> Component {
        Component {
            replicas: 1,
            requests: BTreeMap::from([("cpu".into(), cpu)]),
            ..Component::default()
        }
    }

    #[test]
    fn replicas_are_counted_per_node() {
        // 2.5 cores on one node and 1.5 on the other: 1-core replicas fit 2 + 1, not 4.
        let member =
            Member { nodes: vec![node("a", 2500, 110), node("b", 1500, 110)], ..Member::default() };
        assert_eq!(replicas(&member, "ns", &replica(1000), &[], true), 3);
        // Pod slots bound too.
        let member = Member { nodes: vec![node("a", 100_000, 2)], ..Member::default() };
        assert_eq!(replicas(&member, "ns", &replica(1000), &[], true), 2);
        // A node that is not schedulable holds nothing.
        let mut cordoned = node("c", 8000, 110);
        cordoned.schedulable = false;
        let member = Member { nodes: vec![cordoned], ..Member::default() };
        assert_eq!(replicas(&member, "ns", &replica(1000), &[], true), 0);
        // No request at all: the pod slots.
        let member = Member { nodes: vec![node("a", 0, 5)], ..Member::default() };
        assert_eq!(replicas(&member, "ns", &replica(0), &[], true), 5);
    }

    #[test]
    fn node_claims_pick_the_nodes() {
        let mut gpu = node("gpu", 4000, 110);
        gpu.labels.insert("accelerator".into(), "a100".into());
        gpu.taints.push(Taint {
            key: "dedicated".into(),
            value: "ml".into(),
            effect: TaintEffect::NoSchedule,
            time_added: None,
        });
        let mut soft = node("soft", 4000, 110);
        soft.taints.push(Taint {
            key: "spot".into(),
            value: String::new(),
            effect: TaintEffect::PreferNoSchedule,
            time_added: None,
        });
        let member = Member { nodes: vec![gpu, soft], ..Member::default() };
        // No claim: the tainted node is out, PreferNoSchedule does not matter.
        assert_eq!(replicas(&member, "ns", &replica(1000), &[], true), 4);
        let toleration = Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("ml".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        };
        let mut with = replica(1000);
        with.claim = Some(NodeClaim {
            node_selector: BTreeMap::from([("accelerator".into(), "a100".into())]),
            tolerations: vec![toleration.clone()],
            ..NodeClaim::default()
        });
        assert_eq!(
            replicas(&member, "ns", &with, &[], true),
            4,
            "only the selected node, its taint tolerated"
        );
        with.claim = Some(NodeClaim {
            hard_node_affinity: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "accelerator".into(),
                        operator: "NotIn".into(),
                        values: Some(vec!["a100".into()]),
                    }]),
                    ..NodeSelectorTerm::default()
                }],
            }),
            tolerations: vec![toleration],
            ..NodeClaim::default()
        });
        assert_eq!(
            replicas(&member, "ns", &with, &[], true),
            4,
            "affinity keeps only the other node"
        );
        with.claim = Some(NodeClaim {
            hard_node_affinity: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm::default()],
            }),
            ..NodeClaim::default()
        });
        assert_eq!(replicas(&member, "ns", &with, &[], true), 0, "an empty term matches no node");
    }

    #[test]
    fn assumed_workloads_take_their_room_first() {
        let member =
            Member { nodes: vec![node("a", 2000, 110), node("b", 2000, 110)], ..Member::default() };
        let assumed = Assumed {
            namespace: "other".into(),
            components: vec![Component { replicas: 3, ..replica(1000) }],
        };
        assert_eq!(replicas(&member, "ns", &replica(1000), &[assumed], true), 1);
    }

    #[test]
    fn quotas_of_the_namespace_bound_the_replicas() {
        let quota = |free: i128| Quota {
            name: "q".into(),
            scopes: Vec::new(),
            free: BTreeMap::from([("cpu".into(), free)]),
        };
        let member = Member {
            nodes: vec![node("a", 100_000, 110)],
            quotas: BTreeMap::from([("ns".into(), vec![quota(30)])]),
        };
        // As upstream's e2e: 30m of requests.cpu holds 3 replicas of 10m, not 5.
        assert_eq!(replicas(&member, "ns", &replica(10), &[], true), 3);
        assert_eq!(
            replicas(&member, "elsewhere", &replica(10), &[], true),
            110,
            "another namespace: the pod slots"
        );
        assert_eq!(replicas(&member, "ns", &replica(10), &[], false), 110, "quotas not estimated");
        // Assumed workloads of the namespace count against it; exhausting it leaves nothing.
        let assumed = |cpu| Assumed { namespace: "ns".into(), components: vec![replica(cpu)] };
        assert_eq!(replicas(&member, "ns", &replica(10), &[assumed(20)], true), 1);
        assert_eq!(replicas(&member, "ns", &replica(10), &[assumed(40)], true), 0);
        // A quota scoped to a PriorityClass counts only that class.
        let mut scoped = quota(0);
        scoped.scopes.push(("PriorityClass".into(), "In".into(), vec!["high".into()]));
        let member = Member {
            nodes: vec![node("a", 1000, 110)],
            quotas: BTreeMap::from([("ns".into(), vec![scoped])]),
        };
        assert_eq!(replicas(&member, "ns", &replica(100), &[], true), 10);
        let mut high = replica(100);
        high.priority_class = "high".into();
        assert_eq!(replicas(&member, "ns", &high, &[], true), 0);
    }

    #[test]
    fn a_quota_frees_only_compute_resources_from_its_status() {
        let hard = BTreeMap::from([
            ("requests.cpu".to_owned(), 1000),
            ("limits.cpu".to_owned(), 2000),
            ("memory".to_owned(), 4_096_000),
            ("pods".to_owned(), 10_000),
            ("count/deployments.apps".to_owned(), 5000),
            ("requests.nvidia.com/gpu".to_owned(), 2000),
        ]);
        let used = BTreeMap::from([
            ("requests.cpu".to_owned(), 250),
            ("limits.cpu".to_owned(), 0),
            ("pods".to_owned(), 1000),
            ("requests.nvidia.com/gpu".to_owned(), 1000),
        ]);
        let free = quota_free(&hard, &used);
        assert_eq!(
            free,
            BTreeMap::from([("cpu".to_owned(), 750), ("nvidia.com/gpu".to_owned(), 1000)]),
            "memory has no used yet: left out"
        );
    }

    #[test]
    fn sets_of_components_are_placed_whole() {
        // Each set: a 500m job manager and two 1-core task managers.
        let components = vec![
            Component { replicas: 1, ..replica(500) },
            Component { replicas: 2, ..replica(1000) },
        ];
        let member =
            Member { nodes: vec![node("a", 2500, 110), node("b", 2500, 110)], ..Member::default() };
        // 5 cores in total would hold two sets (2.5 each), but per node: a: jm + 2 tm = 2.5;
        // b: jm + 2 tm = 2.5 → 2 sets.
        assert_eq!(units(&member, "ns", &components, &[], true), 2);
        let member =
            Member { nodes: vec![node("a", 2000, 110), node("b", 2000, 110)], ..Member::default() };
        // a: jm + 1 tm (1.5), b: 1 tm... the second tm goes on b → one set; the next does not fit.
        assert_eq!(units(&member, "ns", &components, &[], true), 1);
        let quota = Quota {
            name: "q".into(),
            scopes: Vec::new(),
            free: BTreeMap::from([("cpu".into(), 1000)]),
        };
        let member =
            Member { nodes: member.nodes, quotas: BTreeMap::from([("ns".into(), vec![quota])]) };
        assert_eq!(
            units(&member, "ns", &components, &[], true),
            0,
            "a set asks 2.5 cores of a 1-core quota"
        );
    }
}
