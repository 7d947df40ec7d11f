//! The in-process tier: the control plane's real API server (memory store) and simulated
//! members in the test process, the controllers chosen with `--controllers` run against them,
//! driven and observed through kube alone. A test here has one subject (a controller, or a
//! part of one) and ends in seconds; what needs the real binaries and kubectl stays in
//! `crates/karmada/tests/it`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod binding;
mod execution;
mod failover;
mod interpreter;
mod namespaces;
mod policies;
