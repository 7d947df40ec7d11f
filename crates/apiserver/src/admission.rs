//! Admission: mutating and validating plugins run inside the API server on every write (what
//! upstream Kubernetes and Karmada do in admission webhooks).

use apimachinery::ApiError;
use serde_json::Value;

use crate::auth::User;
use crate::registry::ResourceDef;

/// What a write does, for admission plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

pub struct AdmissionRequest<'a> {
    pub operation: Operation,
    pub def: &'a ResourceDef,
    /// CRDs of kinds the server serves itself, by name.
    pub served_crds: &'a std::collections::HashMap<String, Value>,
    pub old: Option<&'a Value>,
    pub subresource: Option<&'a str>,
    pub user: &'a User,
    /// `dryRun=All`: nothing this request decides may outlive it (an allocator may pick an
    /// address to show, but must not hold it).
    pub dry_run: bool,
}

/// Mutating and validating admission, run inside the API server (what upstream does in
/// webhooks). `object` is the object to be stored (for deletes: the stored object).
pub trait Admission: Send + Sync {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError>;
}
