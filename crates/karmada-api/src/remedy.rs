//! `remedy.karmada.io/v1alpha1`: Remedy — actions a cluster needs while its conditions say so
//! (`TrafficControl`: send no traffic to it), written into `Cluster.status.remedyActions`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An action a Remedy asks for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum RemedyAction {
    /// Traffic is kept away from the cluster (load balancers and dispatched endpoints).
    TrafficControl,
}

impl RemedyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RemedyAction::TrafficControl => "TrafficControl",
        }
    }
}

/// How a cluster condition's status is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterConditionOperator {
    Equal,
    NotEqual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConditionRequirement {
    /// A cluster condition type (`ServiceDomainNameResolutionReady`, or any other).
    pub condition_type: String,
    pub operator: ClusterConditionOperator,
    pub condition_status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_condition_match: Option<ClusterConditionRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemedyClusterAffinity {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_names: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemedySpec {
    /// The clusters it applies to (absent: every cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_affinity: Option<RemedyClusterAffinity>,
    /// When its actions apply: any match suffices (absent: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_matches: Option<Vec<DecisionMatch>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<RemedyAction>,
}

crate::object! {
    "remedy.karmada.io/v1alpha1",
    /// Actions for clusters whose conditions match.
    Remedy {
        pub spec: RemedySpec,
    }
}

/// The actions the Remedies ask of a cluster with these conditions (sorted, each once), as
/// upstream's remedy controller decides them: a Remedy applies to the clusters its affinity
/// names (every cluster without one) when any of its decision matches holds (always without
/// any), and a match on a condition the cluster does not have does not hold.
pub fn remedy_actions(
    remedies: &[&Remedy],
    cluster: &str,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Vec<RemedyAction> {
    let mut actions: Vec<RemedyAction> = remedies
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .filter(|r| {
            r.spec
                .cluster_affinity
                .as_ref()
                .is_none_or(|a| a.cluster_names.iter().any(|n| n == cluster))
        })
        .filter(|r| match &r.spec.decision_matches {
            None => true,
            Some(matches) => {
                matches.iter().filter_map(|m| m.cluster_condition_match.as_ref()).any(|m| {
                    conditions.iter().find(|c| c.type_ == m.condition_type).is_some_and(|c| match m
                        .operator
                    {
                        ClusterConditionOperator::Equal => c.status == m.condition_status,
                        ClusterConditionOperator::NotEqual => c.status != m.condition_status,
                    })
                })
            }
        })
        .flat_map(|r| r.spec.actions.iter().copied())
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remedy(spec: serde_json::Value) -> Remedy {
        serde_json::from_value(json!({"metadata": {"name": "r"}, "spec": spec})).unwrap()
    }

    fn condition(
        type_: &str,
        status: &str,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        serde_json::from_value(
            json!({"type": type_, "status": status, "reason": "R", "message": "",
            "lastTransitionTime": "2026-12-07T00:00:00Z"}),
        )
        .unwrap()
    }

    #[test]
    fn actions_follow_affinity_and_conditions() {
        let dns = remedy(json!({"clusterAffinity": {"clusterNames": ["member1"]},
            "decisionMatches": [{"clusterConditionMatch": {"conditionType": "ServiceDomainNameResolutionReady",
                "operator": "Equal", "conditionStatus": "False"}}],
            "actions": ["TrafficControl"]}));
        let broken =
            [condition("Ready", "True"), condition("ServiceDomainNameResolutionReady", "False")];
        let fine =
            [condition("Ready", "True"), condition("ServiceDomainNameResolutionReady", "True")];
        assert_eq!(remedy_actions(&[&dns], "member1", &broken), [RemedyAction::TrafficControl]);
        assert!(remedy_actions(&[&dns], "member1", &fine).is_empty());
        assert!(remedy_actions(&[&dns], "member2", &broken).is_empty(), "not its cluster");
        assert!(
            remedy_actions(&[&dns], "member1", &fine[..1]).is_empty(),
            "a condition the cluster lacks does not match"
        );
        let not_equal = remedy(json!({"decisionMatches": [{"clusterConditionMatch": {
            "conditionType": "Ready", "operator": "NotEqual", "conditionStatus": "True"}}],
            "actions": ["TrafficControl"]}));
        assert!(remedy_actions(&[&not_equal], "member2", &fine).is_empty());
        let always = remedy(json!({"actions": ["TrafficControl"]}));
        assert_eq!(
            remedy_actions(&[&always, &dns], "member9", &[]),
            [RemedyAction::TrafficControl],
            "no affinity and no matches: every cluster, always, once"
        );
    }
}
