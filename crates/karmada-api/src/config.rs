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
