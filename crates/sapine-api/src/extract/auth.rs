use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sapine_core::Error;
use sapine_core::accounts::Caller;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller of a request that needs a signed-in user: `Authorization: Bearer <token>`.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(Error::Unauthenticated)?;
        Ok(Authenticated(state.accounts.authenticate(token).await?))
    }
}
