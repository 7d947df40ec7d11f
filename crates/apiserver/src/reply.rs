//! HTTP plumbing shared by every handler: the response body type, bounded request bodies, and
//! responses (objects, errors as Kubernetes `Status`).

use std::convert::Infallible;
use std::time::Duration;

use apimachinery::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn too_many(message: &str) -> ApiError {
    let mut e = ApiError::new(429, "TooManyRequests", message);
    e.retry_after = Some(1);
    e
}

/// Reads a request body, bounded in size and in time.
pub(crate) async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collect = http_body_util::Limited::new(body, MAX_BODY_BYTES).collect();
    match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Err(_) => Err(ApiError::new(
            408,
            "Timeout",
            format!("the request body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(
            ApiError::too_large(format!("the request body is larger than {MAX_BODY_BYTES} bytes")),
        ),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// A streamed body: the chunks sent on the channel, ending when its sender is dropped (a
/// producer learns the client left when its send fails).
pub fn channel_body(chunks: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let frames = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        Some((Ok::<_, Infallible>(hyper::body::Frame::data(chunk)), chunks))
    });
    http_body_util::StreamBody::new(frames).boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

pub fn json_response(status: u16, value: &Value) -> Response<Body> {
    respond(status, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after
        && let Ok(v) = seconds.to_string().parse()
    {
        response.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    response
}
