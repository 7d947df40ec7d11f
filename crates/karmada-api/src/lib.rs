//! Karmada's API, with upstream's group/version/kind names and JSON shapes, so that YAML written
//! for upstream Karmada works unchanged.
//!
//! - [`policy`], [`work`], [`cluster`]: typed serde structs of the kinds the controllers use,
//!   implementing `kube_core::Resource` so they work with `kube::Api`.
//! - [`kinds`]: every Karmada kind the control plane serves (group, version, plural, scope,
//!   short names, categories, subresources, printer columns), as plain data.
//! - [`admission`]: upstream's webhook defaulting and validation as pure functions.
//!
//! This crate knows nothing of HTTP, storage or async runtimes.

/// A top-level Karmada object: `apiVersion`, `kind` and `metadata` (as every kind has them),
/// then the kind's own fields. `Default` fills in `apiVersion` and `kind`, and so does
/// deserializing JSON that lacks them, so an object built in code says what it is when it is
/// written (Kubernetes refuses a body without them).
macro_rules! object {
    ($api_version:literal, $(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Debug,
            PartialEq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::schemars::JsonSchema,
        )]
        // A missing field takes its value from `Default`: `apiVersion` and `kind` the type's.
        #[serde(rename_all = "camelCase", default)]
        pub struct $name {
            #[serde(skip_serializing_if = "String::is_empty")]
            pub api_version: String,
            #[serde(skip_serializing_if = "String::is_empty")]
            pub kind: String,
            #[serde(default)]
            pub metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            pub const API_VERSION: &'static str = $api_version;
            pub const KIND: &'static str = stringify!($name);
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    api_version: $api_version.to_owned(),
                    kind: stringify!($name).to_owned(),
                    metadata: Default::default(),
                    $($field: Default::default(),)*
                }
            }
        }
    };
}
pub(crate) use object;

/// An enum-like string field of upstream's API as a Rust enum: the values upstream defines as
/// variants, `Unset` for an absent (empty) field, and `Other` for a value this version does not
/// know, kept as written so that it round-trips (validation, not parsing, refuses it where
/// upstream does). On the wire and in the schema it is the same string as before.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            /// Not set (an empty or absent field).
            #[default]
            Unset,
            $($(#[$vmeta])* $variant,)*
            /// A value this version does not know.
            Other(String),
        }

        impl $name {
            /// Every value upstream defines, as written.
            pub const VALUES: &'static [&'static str] = &[$($text,)*];

            pub fn as_str(&self) -> &str {
                match self {
                    $name::Unset => "",
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            pub fn is_unset(&self) -> bool {
                matches!(self, $name::Unset)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    "" => $name::Unset,
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok($name::from(s.as_ref()))
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                <String as ::schemars::JsonSchema>::schema_name()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(g: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                <String as ::schemars::JsonSchema>::json_schema(g)
            }
        }
    };
}
pub(crate) use string_enum;

pub mod admission;
pub mod apps;
pub mod autoscaling;
pub mod cluster;
pub mod config;
pub mod events;
pub mod features;
pub mod kinds;
pub mod mcs;
pub mod modeling;
pub mod names;
pub mod networking;
pub mod policy;
pub mod quota;
pub mod remedy;
pub mod schema;
pub mod work;
pub mod work_v1alpha1;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// `kube_core::Resource` for a kind's type, from its row in [`kinds::KINDS`] (group, storage
/// version, plural): one table says what a kind is. A kind missing from the table, or whose
/// scope differs from it, does not compile.
macro_rules! resource {
    ($ty:ty, $kind:literal, namespaced) => {
        resource!(@impl $ty, $kind, NamespaceResourceScope, true);
    };
    ($ty:ty, $kind:literal, cluster) => {
        resource!(@impl $ty, $kind, ClusterResourceScope, false);
    };
    (@impl $ty:ty, $kind:literal, $scope:ty, $namespaced:literal) => {
        const _: () = assert!(
            kinds::kind_def($kind).namespaced == $namespaced,
            concat!("the scope of ", $kind, " differs from the kinds table")
        );

        impl kube_core::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                const D: &kinds::Kind = kinds::kind_def($kind);
                Cow::Borrowed(D.kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                const D: &kinds::Kind = kinds::kind_def($kind);
                Cow::Borrowed(D.group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                const D: &kinds::Kind = kinds::kind_def($kind);
                Cow::Borrowed(D.versions[0])
            }
            fn plural(_: &()) -> Cow<'_, str> {
                const D: &kinds::Kind = kinds::kind_def($kind);
                Cow::Borrowed(D.plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

use kube_core::{ClusterResourceScope, NamespaceResourceScope};

resource!(cluster::Cluster, "Cluster", cluster);
resource!(policy::PropagationPolicy, "PropagationPolicy", namespaced);
resource!(policy::ClusterPropagationPolicy, "ClusterPropagationPolicy", cluster);
resource!(policy::OverridePolicy, "OverridePolicy", namespaced);
resource!(policy::ClusterOverridePolicy, "ClusterOverridePolicy", cluster);
resource!(policy::FederatedResourceQuota, "FederatedResourceQuota", namespaced);
resource!(policy::ClusterTaintPolicy, "ClusterTaintPolicy", cluster);
resource!(work::Work, "Work", namespaced);
resource!(work::ResourceBinding, "ResourceBinding", namespaced);
resource!(work::ClusterResourceBinding, "ClusterResourceBinding", cluster);
resource!(config::ResourceInterpreterCustomization, "ResourceInterpreterCustomization", cluster);
resource!(
    config::ResourceInterpreterWebhookConfiguration,
    "ResourceInterpreterWebhookConfiguration",
    cluster
);
resource!(autoscaling::FederatedHPA, "FederatedHPA", namespaced);
resource!(autoscaling::CronFederatedHPA, "CronFederatedHPA", namespaced);
resource!(networking::MultiClusterService, "MultiClusterService", namespaced);
resource!(networking::MultiClusterIngress, "MultiClusterIngress", namespaced);
resource!(mcs::ServiceExport, "ServiceExport", namespaced);
resource!(mcs::ServiceImport, "ServiceImport", namespaced);
resource!(remedy::Remedy, "Remedy", cluster);
resource!(apps::WorkloadRebalancer, "WorkloadRebalancer", cluster);
resource!(apps::ResourceRegistry, "ResourceRegistry", cluster);
