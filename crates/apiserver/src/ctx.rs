//! A resource request being served ([`Req`]): what the pipeline decided (resource, namespace,
//! caller, answer format, `fieldValidation`) handed to the storage core's verbs, which collect
//! warnings on it.

use apimachinery::ApiError;
use http::{HeaderMap, Response};
use serde_json::Value;

use crate::auth::User;
use crate::registry::ResourceDef;
use crate::reply::{Body, respond};
use crate::request::{Format, Query};

/// `fieldValidation`: what happens to fields an object's schema does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// 400 `strict decoding error: unknown field "..."`.
    Strict,
    /// Dropped, with a `Warning` header per field (Kubernetes' default).
    Warn,
    /// Dropped silently.
    Ignore,
}

impl FieldValidation {
    fn parse(query: &Query) -> Result<FieldValidation, ApiError> {
        match query.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Strict\", \"Warn\": got {other:?}"
            ))),
        }
    }
}

/// A resource request being served: the resource, the caller, the query and how answers are
/// encoded. Verb handlers take it instead of long argument lists.
pub(crate) struct Req<'a> {
    pub def: &'a ResourceDef,
    pub ns: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: &'a Query,
    pub user: &'a User,
    /// The negotiated response encoding.
    pub format: Format,
    pub validation: FieldValidation,
    warnings: parking_lot::Mutex<Vec<String>>,
}

impl<'a> Req<'a> {
    pub fn new(
        def: &'a ResourceDef,
        ns: Option<&'a str>,
        headers: &'a HeaderMap,
        query: &'a Query,
        user: &'a User,
        format: Format,
    ) -> Result<Req<'a>, ApiError> {
        let validation = FieldValidation::parse(query)?;
        Ok(Req { def, ns, headers, query, user, format, validation, warnings: Default::default() })
    }

    /// Applies `fieldValidation` to fields the object's schema does not know.
    pub fn unknown_fields(&self, fields: &[String]) -> Result<(), ApiError> {
        if fields.is_empty() {
            return Ok(());
        }
        match self.validation {
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            FieldValidation::Warn => {
                let mut warnings = self.warnings.lock();
                for f in fields {
                    let w = format!("unknown field {f:?}");
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }

    /// Decodes a create or update body (JSON, YAML or protobuf). As Kubernetes' decoders, a
    /// body must say what it is: `kind` and `apiVersion` (which must then fit the endpoint).
    pub fn decode(&self, body: &[u8]) -> Result<Value, ApiError> {
        let decoded = crate::encoding::decode_body(self.headers, body)?;
        self.unknown_fields(&decoded.unknown_fields)?;
        let object = decoded.object;
        if object.is_object() {
            let text =
                |k: &str| object.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            let shown = || {
                let mut s = serde_json::to_string(&object).unwrap_or_default();
                if s.len() > 100 {
                    let mut cut = 100;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                    s.push_str("...");
                }
                s
            };
            if !text("kind") {
                return Err(ApiError::bad_request(format!(
                    "Object 'Kind' is missing in '{}'",
                    shown()
                )));
            }
            if !text("apiVersion") {
                return Err(ApiError::bad_request(format!(
                    "Object 'apiVersion' is missing in '{}'",
                    shown()
                )));
            }
        }
        Ok(object)
    }

    /// An object answer in the negotiated format, with any warnings.
    pub fn respond(&self, status: u16, object: &Value) -> Response<Body> {
        let (content_type, bytes) = crate::encoding::object_body(self.format, object);
        self.finish(respond(status, content_type, bytes))
    }

    /// Adds the collected warnings to a response.
    pub fn finish(&self, mut response: Response<Body>) -> Response<Body> {
        crate::encoding::add_warnings(response.headers_mut(), &self.warnings.lock());
        response
    }
}
