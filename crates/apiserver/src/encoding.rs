//! Bodies in and out: request bodies (JSON, YAML or Kubernetes protobuf) decoded to a value,
//! and objects, lists and statuses encoded in the negotiated format (JSON, or protobuf for
//! built-in kinds, as client-go and controller-runtime ask for).

use apimachinery::ApiError;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::request::{self, BodyType, Format};

/// A decoded write body and what decoding noticed.
pub struct DecodedBody {
    pub object: Value,
    /// Fields a protobuf body carried that its message does not define (they are dropped).
    pub unknown_fields: Vec<String>,
}

/// Decodes a create or update body: JSON, YAML or Kubernetes protobuf.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<DecodedBody, ApiError> {
    let object = match request::body_type(headers) {
        BodyType::Json => request::parse_document(body, false)?,
        BodyType::Yaml => request::parse_document(body, true)?,
        BodyType::Protobuf => {
            let decoded = decode_protobuf(body)?;
            return Ok(DecodedBody {
                object: decoded.object,
                unknown_fields: decoded.unknown_fields,
            });
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            ));
        }
    };
    Ok(DecodedBody { object, unknown_fields: Vec::new() })
}

/// Decodes a Kubernetes protobuf body; malformed input is a 400 naming the problem.
pub fn decode_protobuf(body: &[u8]) -> Result<kube_protobuf::Decoded, ApiError> {
    kube_protobuf::decode(body).map_err(|e| match e {
        kube_protobuf::Error::UnknownKind { .. } => ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        )),
        other => ApiError::bad_request(format!("the protobuf body is not valid: {other}")),
    })
}

/// Decodes an options body sent with a request (`DeleteOptions`, `Eviction`...), JSON or
/// protobuf; empty means none.
pub fn decode_options(
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match request::body_type(headers) {
        BodyType::Protobuf => Ok(Some(decode_protobuf(body)?.object)),
        BodyType::Yaml => Ok(Some(request::parse_document(body, true)?)),
        _ => serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}"))),
    }
}

/// An object's body in `format` (protobuf when asked for and the kind has an encoding; JSON
/// otherwise, which every client that asks for protobuf also accepts).
pub fn object_body(format: Format, object: &Value) -> (&'static str, Bytes) {
    if format == Format::Protobuf
        && let Ok(bytes) = kube_protobuf::encode(object)
    {
        return (kube_protobuf::MEDIA_TYPE, Bytes::from(bytes));
    }
    ("application/json", Bytes::from(serde_json::to_vec(object).unwrap_or_default()))
}

/// Sets `Warning` headers (`299 - "text"`), as Kubernetes reports warnings to clients.
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        // The text is an HTTP quoted-string: quotes and backslashes escaped.
        let text =
            w.replace(|c: char| c.is_control(), " ").replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = format!("299 - \"{text}\"").parse() {
            headers.append(http::header::WARNING, v);
        }
    }
}
