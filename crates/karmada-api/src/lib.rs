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

pub mod admission;
pub mod apps;
pub mod autoscaling;
pub mod cluster;
pub mod config;
pub mod events;
pub mod kinds;
pub mod names;
pub mod networking;
pub mod policy;
pub mod schema;
pub mod work;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

macro_rules! resource {
    ($ty:ty, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube_core::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
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

resource!(
    policy::PropagationPolicy,
    "policy.karmada.io",
    "v1alpha1",
    "PropagationPolicy",
    "propagationpolicies",
    NamespaceResourceScope
);
resource!(
    policy::ClusterPropagationPolicy,
    "policy.karmada.io",
    "v1alpha1",
    "ClusterPropagationPolicy",
    "clusterpropagationpolicies",
    ClusterResourceScope
);
resource!(
    policy::OverridePolicy,
    "policy.karmada.io",
    "v1alpha1",
    "OverridePolicy",
    "overridepolicies",
    NamespaceResourceScope
);
resource!(
    policy::ClusterOverridePolicy,
    "policy.karmada.io",
    "v1alpha1",
    "ClusterOverridePolicy",
    "clusteroverridepolicies",
    ClusterResourceScope
);
resource!(
    work::ResourceBinding,
    "work.karmada.io",
    "v1alpha2",
    "ResourceBinding",
    "resourcebindings",
    NamespaceResourceScope
);
resource!(
    work::ClusterResourceBinding,
    "work.karmada.io",
    "v1alpha2",
    "ClusterResourceBinding",
    "clusterresourcebindings",
    ClusterResourceScope
);
resource!(work::Work, "work.karmada.io", "v1alpha1", "Work", "works", NamespaceResourceScope);
resource!(
    cluster::Cluster,
    "cluster.karmada.io",
    "v1alpha1",
    "Cluster",
    "clusters",
    ClusterResourceScope
);
