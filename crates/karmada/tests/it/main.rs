//! End-to-end tests: the real `karmada` binary driven by the real `kubectl`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apiserver_kubectl;
mod autoscaling;
mod bench;
mod browser;
mod builtins;
mod clusters;
mod dashboard;
mod estimator;
mod ha;
mod hardening;
mod harness;
mod install;
mod interpret;
mod karmada_apis;
mod karmadactl_members;
mod mcs;
mod member_kubectl;
mod plane;
mod propagation;
mod proxy;
mod pull;
mod quota;
mod rbac;
mod scenarios;
mod search;
mod upgrade;
