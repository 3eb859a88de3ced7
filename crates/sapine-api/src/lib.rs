//! Sapine's HTTP API: routes per resource under `/api/v1`, the service endpoints, the
//! interactive docs, and the middleware every request passes through.

mod error;
mod extract;
mod middleware;
mod openapi;
mod rate_limit;
mod routes;
mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, Problem};
pub use rate_limit::{AuthLimits, RateLimitSettings};
pub use state::{AppState, HttpSettings, Readiness};

pub const API_BASE: &str = "/api/v1";

/// The whole HTTP surface, ready to serve.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes(&state).split_for_parts();
    let http = state.http.clone();
    api.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .merge(routes::pages::router(&state))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.request_timeout,
        ))
        .layer(cors(&http.cors_origins))
        .layer(from_fn(middleware::problem_fallback::problem_fallback))
        .layer(from_fn_with_state(
            http.hsts,
            middleware::security_headers::security_headers,
        ))
        .layer(from_fn(middleware::http_metrics::http_metrics))
        .layer(from_fn(middleware::request_id::request_id))
}

fn api_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let v1 = routes::auth::router(state)
        .merge(routes::me::router())
        .merge(routes::admin::router())
        .merge(routes::bots::router(state.http.max_upload_bytes))
        .merge(routes::logs::router());
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(API_BASE, v1)
        .merge(routes::health::router())
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi_document(state: &AppState) -> utoipa::openapi::OpenApi {
    api_routes(state).split_for_parts().1
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
}
