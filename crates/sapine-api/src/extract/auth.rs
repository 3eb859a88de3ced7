use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use sapine_core::Error;
use sapine_core::accounts::Caller;

use crate::error::ApiError;
use crate::state::AppState;

/// The cookie the dashboard keeps its access token in.
pub const SESSION_COOKIE: &str = "sapine_session";

/// The caller of a request that needs a signed-in user: `Authorization: Bearer <token>`, or,
/// for reading requests (GET, HEAD: the dashboard's pages, log streams), the session cookie.
/// Requests that change things need the header, which another site cannot make a browser send.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let token = match bearer {
            Some(token) => token,
            None if reading && same_origin(&parts.headers) => {
                session_cookie(&parts.headers).ok_or(Error::Unauthenticated)?
            }
            None => return Err(Error::Unauthenticated.into()),
        };
        Ok(Authenticated(state.accounts.authenticate(token).await?))
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// A browser names the page's origin on WebSocket and cross-site requests; a cookie is only
/// honoured when that origin is this server's, so another site cannot open a stream with it.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    host.is_some() && origin_host == host
}
