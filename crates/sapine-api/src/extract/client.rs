use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, header};
use sapine_core::accounts::ClientInfo;

use crate::error::ApiError;
use crate::state::AppState;

/// The client's address: the peer's, or the first `X-Forwarded-For` entry when the operator
/// says a trusted proxy sets it.
pub fn client_ip(headers: &HeaderMap, extensions: &Extensions, trust_proxy: bool) -> Option<IpAddr> {
    let forwarded = || {
        headers
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let peer = || extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if trust_proxy {
        forwarded().or_else(peer)
    } else {
        peer()
    }
}

/// Where a request came from, for the sessions list.
pub struct ClientMeta(pub ClientInfo);

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(&parts.headers, &parts.extensions, state.http.trust_proxy_headers);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(ClientMeta(ClientInfo::new(
            ip.map(|ip| ip.to_string()),
            user_agent,
        )))
    }
}
