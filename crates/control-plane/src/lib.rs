//! The control plane's API server is the generic `apiserver` plus what makes it Karmada's:
//! every kind of `karmada-api` served with its schema and printer columns ([`apis`]),
//! upstream's webhooks as in-process admission, and the access rules for the identities
//! Karmada hands out ([`access`]: agents, bootstrap tokens, components). `karmada up`,
//! `karmada apiserver`, the benchmarks and the controllers' in-process tests all build their
//! control plane with [`install`].

pub mod access;
pub mod apis;
pub mod members;
pub mod metrics;
pub mod proxy;
pub mod quota;
pub mod search;

pub use apis::install;
