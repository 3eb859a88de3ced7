//! Abuse protection for the unauthenticated account endpoints: an in-process GCRA per client IP
//! and per account (the email or token in the body), each per action.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::client_ip;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAction {
    Register,
    VerifyEmail,
    ResendVerification,
    Login,
    Refresh,
    ForgotPassword,
    ResetPassword,
}

impl fmt::Display for AuthAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthAction::Register => "register",
            AuthAction::VerifyEmail => "verify_email",
            AuthAction::ResendVerification => "resend_verification",
            AuthAction::Login => "login",
            AuthAction::Refresh => "refresh",
            AuthAction::ForgotPassword => "forgot_password",
            AuthAction::ResetPassword => "reset_password",
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub per_ip_per_minute: NonZeroU32,
    pub per_account_per_minute: NonZeroU32,
}

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct AuthLimits {
    per_ip: Limiter,
    per_account: Limiter,
    clock: DefaultClock,
}

/// What is left of the tightest limit that applied, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
struct Budget {
    limit: u32,
    remaining: u32,
    reset: Duration,
}

impl Budget {
    fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("ratelimit-limit"),
                HeaderValue::from(self.limit),
            ),
            (
                HeaderName::from_static("ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("ratelimit-reset"),
                HeaderValue::from(ceil_secs(self.reset)),
            ),
        ]
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

impl AuthLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            per_ip: RateLimiter::keyed(Quota::per_minute(settings.per_ip_per_minute))
                .with_middleware::<StateInformationMiddleware>(),
            per_account: RateLimiter::keyed(Quota::per_minute(settings.per_account_per_minute))
                .with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
        }
    }

    /// Forgets keys whose budget is full again, so memory follows recent traffic only.
    pub fn forget_idle(&self) {
        for limiter in [&self.per_ip, &self.per_account] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn check_one(&self, limiter: &Limiter, key: String) -> Result<Budget, ApiError> {
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let remaining = snapshot.remaining_burst_capacity();
                let used = quota.burst_size().get().saturating_sub(remaining);
                Ok(Budget {
                    limit: quota.burst_size().get(),
                    remaining,
                    reset: quota.replenish_interval() * used,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let budget = Budget {
                    limit: not_until.quota().burst_size().get(),
                    remaining: 0,
                    reset: wait,
                };
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many attempts; try again in {} s", ceil_secs(wait).max(1)),
                );
                error.headers.extend(budget.headers());
                error
                    .headers
                    .push((header::RETRY_AFTER, HeaderValue::from(ceil_secs(wait).max(1))));
                Err(error)
            }
        }
    }

    fn check(
        &self,
        action: AuthAction,
        ip: Option<IpAddr>,
        account: Option<&str>,
    ) -> Result<Budget, ApiError> {
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let mut budget = self.check_one(&self.per_ip, format!("{action}:{ip}"))?;
        if let Some(account) = account {
            let per_account = self.check_one(&self.per_account, format!("{action}:{account}"))?;
            if per_account.remaining < budget.remaining {
                budget = per_account;
            }
        }
        Ok(budget)
    }
}

/// The account a request is about, read leniently: a body that does not parse has none, and
/// the handler rejects it anyway.
fn account_key(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Keys {
        email: Option<String>,
        token: Option<String>,
        refresh_token: Option<String>,
    }
    let keys: Keys = serde_json::from_slice(body).ok()?;
    let key = match (keys.email, keys.token.or(keys.refresh_token)) {
        (Some(email), _) => email.trim().to_lowercase(),
        (None, Some(token)) => token,
        (None, None) => return None,
    };
    Some(key.chars().take(256).collect())
}

pub async fn limit_auth(
    State((state, action)): State<(AppState, AuthAction)>,
    request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(
        request.headers(),
        request.extensions(),
        state.http.trust_proxy_headers,
    );
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.http.max_body_bytes).await else {
        return ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    };
    match state.limits.check(action, ip, account_key(&bytes).as_deref()) {
        Err(rejection) => {
            metrics::counter!("rate_limit_rejections_total", "action" => action.to_string()).increment(1);
            rejection.into_response()
        }
        Ok(budget) => {
            let mut response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            response.headers_mut().extend(budget.headers());
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_account() {
        let limits = AuthLimits::new(RateLimitSettings {
            per_ip_per_minute: NonZeroU32::new(3).unwrap(),
            per_account_per_minute: NonZeroU32::new(2).unwrap(),
        });
        let ip = Some("10.0.0.1".parse().unwrap());
        assert_eq!(
            limits.check(AuthAction::Login, ip, Some("a")).unwrap().remaining,
            1
        );
        assert_eq!(
            limits.check(AuthAction::Login, ip, Some("a")).unwrap().remaining,
            0
        );
        let refused = limits.check(AuthAction::Login, ip, Some("a")).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .headers
                .iter()
                .any(|(name, _)| name == header::RETRY_AFTER)
        );
        // The IP's own budget (3) is now spent too, whatever the account.
        assert!(limits.check(AuthAction::Login, ip, Some("b")).is_err());
        // Other actions and other addresses have their own budgets.
        assert!(limits.check(AuthAction::Register, ip, Some("a")).is_ok());
        assert!(
            limits
                .check(AuthAction::Login, Some("10.0.0.2".parse().unwrap()), Some("c"))
                .is_ok()
        );
    }

    #[test]
    fn reads_the_account_from_the_body() {
        assert_eq!(
            account_key(br#"{"email":" Ada@X.org ","password":"p"}"#).as_deref(),
            Some("ada@x.org")
        );
        assert_eq!(account_key(br#"{"token":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(account_key(b"not json"), None);
    }
}
