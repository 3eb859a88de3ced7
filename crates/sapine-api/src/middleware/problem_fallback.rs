use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, PROBLEM_JSON};

/// Answers produced outside the handlers (unknown route, wrong method, body over the limit,
/// time-out) come with an empty or plain body; this gives them the same problem+json shape as
/// every other error. HTML error pages, which the pages for mail links render on purpose, are
/// left as they are.
pub async fn problem_fallback(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let deliberate = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || deliberate {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut replaced = ApiError::for_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}
