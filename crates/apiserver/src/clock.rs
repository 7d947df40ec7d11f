//! The wall clock, as the API server stamps objects with it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The time as an RFC 3339 timestamp (`creationTimestamp`, conditions, Events).
pub fn now_rfc3339() -> String {
    apimachinery::time::format_rfc3339(now_seconds())
}
