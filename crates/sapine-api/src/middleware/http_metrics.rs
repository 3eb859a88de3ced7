use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Label, SharedString};

/// Counts requests by route template and status, and times them.
pub async fn http_metrics(request: Request, next: Next) -> Response {
    // Shared, so the two metrics below take the route without copying it again.
    let route: SharedString = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(SharedString::const_str("unmatched"), |p| {
            SharedString::from_shared(Arc::from(p.as_str()))
        });
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = vec![
        Label::from_static_parts("method", method),
        Label::new("route", route),
        Label::new("status", status_label(response.status().as_u16())),
    ];
    metrics::histogram!("http_request_duration_seconds", labels.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", labels).increment(1);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_label(status: u16) -> SharedString {
    match status {
        200 => SharedString::const_str("200"),
        201 => SharedString::const_str("201"),
        202 => SharedString::const_str("202"),
        204 => SharedString::const_str("204"),
        401 => SharedString::const_str("401"),
        404 => SharedString::const_str("404"),
        other => SharedString::from(other.to_string()),
    }
}
