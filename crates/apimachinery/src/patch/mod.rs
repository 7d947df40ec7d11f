//! The patch formats of the Kubernetes API: JSON patch (RFC 6902, with Kubernetes' quirks),
//! JSON merge patch (RFC 7386) and strategic merge patch (schema-driven, built-in kinds).

pub mod json;
pub mod merge;
pub mod strategic;

/// Why a patch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but does not apply to this object (HTTP 422).
    #[error("{0}")]
    Failed(String),
}
