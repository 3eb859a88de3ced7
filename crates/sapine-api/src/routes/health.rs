use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use sapine_core::FieldError;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(prometheus))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok`
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = Status)))]
async fn health() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: the database (and Redis, when configured) answer.
#[utoipa::path(get, path = "/health/ready", tag = "service", responses(
    (status = 200, body = Status),
    (status = 503, description = "a dependency does not answer; `errors` names it", body = Problem),
))]
async fn ready(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    let failing: Vec<FieldError> = state
        .readiness
        .check()
        .await
        .into_iter()
        .filter_map(|(name, error)| error.map(|e| FieldError::new(name, e)))
        .collect();
    if failing.is_empty() {
        return Ok(Json(Status { status: "ok" }));
    }
    let names: Vec<&str> = failing.iter().map(|f| f.field.as_str()).collect();
    let detail = format!("not ready: {} unavailable", names.join(", "));
    Err(ApiError {
        errors: failing,
        ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail)
    })
}

/// Prometheus text exposition of the server's metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, content_type = "text/plain")))]
async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
