//! `config.karmada.io/v1alpha1`: ResourceInterpreterCustomization and
//! ResourceInterpreterWebhookConfiguration.

use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind a customization interprets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomizationTarget {
    pub api_version: String,
    pub kind: String,
}

/// A Lua script implementing one interpreter operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LuaScript {
    pub lua_script: String,
}

/// The interpreter operations a customization overrides, each a Lua script.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomizationRules {
    /// `Retain(desiredObj, observedObj)`: keeps fields the member cluster owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<LuaScript>,
    /// `GetReplicas(obj)`: the replica count and per-replica requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_resource: Option<LuaScript>,
    /// `ReviseReplica(obj, desiredReplica)`: sets a cluster's replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_revision: Option<LuaScript>,
    /// `ReflectStatus(observedObj)`: the status reported back from a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reflection: Option<LuaScript>,
    /// `AggregateStatus(desiredObj, statusItems)`: the template's status from all members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_aggregation: Option<LuaScript>,
    /// `InterpretHealth(observedObj)`: whether a member's copy is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_interpretation: Option<LuaScript>,
    /// `GetDependencies(desiredObj)`: the objects that must be propagated along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_interpretation: Option<LuaScript>,
    /// `GetComponents(desiredObj)`: replica requirements of a multi-component workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_resource: Option<LuaScript>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInterpreterCustomizationSpec {
    pub target: CustomizationTarget,
    pub customizations: CustomizationRules,
}

crate::object! {
    "config.karmada.io/v1alpha1",
    /// Declarative (Lua) interpretation of a resource kind.
    ResourceInterpreterCustomization {
        pub spec: ResourceInterpreterCustomizationSpec,
    }
}

/// Which operations on which kinds a webhook interprets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleWithOperations {
    /// e.g. `InterpretReplica`, `ReviseReplica`, `Retain`, `AggregateStatus`, or `*`.
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub kinds: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInterpreterWebhook {
    pub name: String,
    pub client_config: WebhookClientConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleWithOperations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    pub interpreter_context_versions: Vec<String>,
}

crate::object! {
    "config.karmada.io/v1alpha1",
    /// Webhooks that interpret resource kinds.
    ResourceInterpreterWebhookConfiguration {
        pub webhooks: Vec<ResourceInterpreterWebhook>,
    }
}

crate::string_enum! {
    /// An operation of the resource interpreter (as webhooks declare them; `*` is all).
    InterpreterOperation {
        InterpretReplica = "InterpretReplica",
        ReviseReplica = "ReviseReplica",
        InterpretComponent = "InterpretComponent",
        Retain = "Retain",
        AggregateStatus = "AggregateStatus",
        InterpretStatus = "InterpretStatus",
        InterpretHealth = "InterpretHealth",
        InterpretDependency = "InterpretDependency",
        All = "*",
    }
}

impl InterpreterOperation {
    /// The customization rule (`spec.customizations` field) and the Lua function that
    /// implement the operation.
    pub fn rule(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            InterpreterOperation::InterpretReplica => ("replicaResource", "GetReplicas"),
            InterpreterOperation::ReviseReplica => ("replicaRevision", "ReviseReplica"),
            InterpreterOperation::InterpretComponent => ("componentResource", "GetComponents"),
            InterpreterOperation::Retain => ("retention", "Retain"),
            InterpreterOperation::AggregateStatus => ("statusAggregation", "AggregateStatus"),
            InterpreterOperation::InterpretStatus => ("statusReflection", "ReflectStatus"),
            InterpreterOperation::InterpretHealth => ("healthInterpretation", "InterpretHealth"),
            InterpreterOperation::InterpretDependency => {
                ("dependencyInterpretation", "GetDependencies")
            }
            _ => return None,
        })
    }

    /// Every operation a customization can implement.
    pub const CUSTOMIZABLE: [InterpreterOperation; 8] = [
        InterpreterOperation::InterpretReplica,
        InterpreterOperation::ReviseReplica,
        InterpreterOperation::InterpretComponent,
        InterpreterOperation::Retain,
        InterpreterOperation::AggregateStatus,
        InterpreterOperation::InterpretStatus,
        InterpreterOperation::InterpretHealth,
        InterpreterOperation::InterpretDependency,
    ];
}

impl CustomizationRules {
    /// The script of one operation's rule, if set and not empty.
    pub fn script(&self, operation: &InterpreterOperation) -> Option<&str> {
        let rule = match operation {
            InterpreterOperation::InterpretReplica => &self.replica_resource,
            InterpreterOperation::ReviseReplica => &self.replica_revision,
            InterpreterOperation::InterpretComponent => &self.component_resource,
            InterpreterOperation::Retain => &self.retention,
            InterpreterOperation::AggregateStatus => &self.status_aggregation,
            InterpreterOperation::InterpretStatus => &self.status_reflection,
            InterpreterOperation::InterpretHealth => &self.health_interpretation,
            InterpreterOperation::InterpretDependency => &self.dependency_interpretation,
            _ => return None,
        };
        rule.as_ref().map(|r| r.lua_script.as_str()).filter(|s| !s.trim().is_empty())
    }
}

/// An object a workload depends on (what `GetDependencies` returns): by name, or every object
/// of the kind its label selector matches, in the workload's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependentObjectReference {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}
