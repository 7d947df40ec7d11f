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
/// then the kind's own fields.
macro_rules! object {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Debug,
            Default,
            PartialEq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::schemars::JsonSchema,
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub api_version: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub kind: String,
            #[serde(default)]
            pub metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            $($(#[$field_meta])* pub $field: $ty,)*
        }
    };
}
pub(crate) use object;

pub mod admission;
pub mod apps;
pub mod autoscaling;
pub mod cluster;
pub mod config;
pub mod kinds;
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
