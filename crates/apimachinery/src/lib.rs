//! Kubernetes API machinery as pure functions over `serde_json::Value`: the `Status` error
//! model, label and field selectors, JSON patch, JSON merge patch and strategic merge patch,
//! RFC 3339 time and human durations, and the JSONPath subset that printer columns use.
//!
//! Both the API server and the controllers use it. It knows nothing of HTTP, storage or async
//! runtimes: every function here is deterministic given its inputs (the clock is passed in).

pub mod jsonpath;
pub mod managed;
pub mod object;
pub mod patch;
pub mod selector;
pub mod status;
pub mod time;

pub use status::{ApiError, Cause};
