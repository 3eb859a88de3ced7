//! The one place where failures become HTTP answers: RFC 9457 problem+json with a stable
//! `code` and the request's id.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sapine_core::{Error, FieldError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::middleware::request_id::current_request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:sapine:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code for programs to act on.
    pub code: String,
    /// The request's id, also in the `X-Request-ID` header.
    pub request_id: String,
    /// The fields at fault, when the input was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra headers for the answer (Retry-After, RateLimit-*, WWW-Authenticate).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => "several fields are invalid".to_owned(),
        };
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail)
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The stable code and default detail for a bare status, for answers produced outside the
    /// handlers (unknown routes, body limits, time-outs).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this method is not allowed here"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "the Content-Type is not supported")
            }
            StatusCode::UNAUTHORIZED => ("unauthenticated", "authentication is required"),
            s if s.is_client_error() => ("bad_request", "the request is not valid"),
            _ => ("internal", "an internal error occurred"),
        };
        Self::new(status, code, detail)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::validation(vec![e])
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(errors) => ApiError::validation(errors),
            Error::InvalidCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            Error::EmailNotVerified => Self::new(StatusCode::FORBIDDEN, "email_not_verified", e.to_string()),
            Error::Banned { until } => {
                let detail = match until {
                    Some(until) => format!("the account is banned until {}", until.to_rfc3339()),
                    None => "the account is banned".to_owned(),
                };
                Self::new(StatusCode::FORBIDDEN, "banned", detail)
            }
            Error::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
                .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            Error::NotFound => Self::not_found(),
            Error::Conflict(what) => Self::new(StatusCode::CONFLICT, "conflict", what),
            Error::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", e.to_string()),
            Error::QuotaExceeded(what) => Self::new(StatusCode::FORBIDDEN, "quota_exceeded", what),
            Error::InvalidState(why) => Self::new(StatusCode::CONFLICT, "invalid_state", why),
            Error::TooLarge(what) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", what),
            Error::Unavailable(why) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "runtime_unavailable", why),
            Error::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            Error::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable",
                )
            }
            Error::Store(cause) => {
                tracing::error!(%cause, "store error");
                Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:sapine:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            request_id: current_request_id(),
            errors: self
                .errors
                .into_iter()
                .map(|e| ProblemField {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
