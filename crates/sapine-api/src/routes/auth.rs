//! Registration, verification, login, token refresh, logout and password recovery.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use chrono::Utc;
use sapine_core::accounts::{DisplayName, Email, NewAccount, NewPassword, Password, TokenPair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::UserView;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Authenticated, ClientMeta};
use crate::rate_limit::{AuthAction, limit_auth};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let limited = |routes: OpenApiRouter<AppState>, action| {
        routes.layer(from_fn_with_state((state.clone(), action), limit_auth))
    };
    OpenApiRouter::new()
        .merge(limited(
            OpenApiRouter::new().routes(routes!(register)),
            AuthAction::Register,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(verify_email)),
            AuthAction::VerifyEmail,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(resend_verification)),
            AuthAction::ResendVerification,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(login)),
            AuthAction::Login,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(refresh)),
            AuthAction::Refresh,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(forgot_password)),
            AuthAction::ForgotPassword,
        ))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(reset_password)),
            AuthAction::ResetPassword,
        ))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    email: String,
    /// At least 8 characters and hard to guess (zxcvbn score 3 or more).
    password: String,
    display_name: Option<String>,
}

impl TryFrom<RegisterBody> for NewAccount {
    type Error = ApiError;

    fn try_from(body: RegisterBody) -> ApiResult<Self> {
        let inputs = [
            body.email.as_str(),
            body.display_name.as_deref().unwrap_or_default(),
        ];
        match (
            Email::parse(&body.email),
            NewPassword::parse("password", &body.password, &inputs),
            body.display_name.as_deref().map(DisplayName::parse).transpose(),
        ) {
            (Ok(email), Ok(password), Ok(display_name)) => Ok(NewAccount {
                email,
                password,
                display_name,
            }),
            (e, p, n) => Err(ApiError::validation(
                [e.err(), p.err(), n.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// Creates an account and mails a verification link; the account can log in once verified.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody, responses(
    (status = 201, body = UserView),
    (status = 409, description = "the email is taken", body = Problem),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = state.accounts.register(body.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(UserView::new(&user, Utc::now()))))
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token from the mail.
    token: String,
}

/// Confirms an email address with the token from the verification mail.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = TokenBody, responses(
    (status = 204),
    (status = 400, description = "invalid, used or expired token", body = Problem),
    (status = 429, body = Problem),
))]
async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<StatusCode> {
    state.accounts.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    email: String,
}

/// Sends a new verification mail if the address has an unverified account; always 202.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "auth", request_body = EmailBody, responses(
    (status = 202),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
))]
async fn resend_verification(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<StatusCode> {
    state
        .accounts
        .resend_verification(&Email::parse(&body.email)?)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
    /// For accounts with two-factor authentication (planned).
    totp_code: Option<String>,
    /// For accounts with two-factor authentication (planned).
    backup_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived bearer token for `Authorization: Bearer`.
    access_token: String,
    /// Single-use token for `/auth/refresh`.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer",
            expires_in: pair.expires_in.num_seconds(),
        }
    }
}

/// Exchanges email and password for an access and a refresh token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "`invalid_credentials`", body = Problem),
    (status = 403, description = "`email_not_verified` or `banned`", body = Problem),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
    (status = 503, description = "`busy`: too many logins at once", body = Problem),
))]
async fn login(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<TokenResponse>> {
    // Two-factor authentication is not offered yet, so no account has it on and the codes
    // have nothing to be checked against.
    let _ = (&body.totp_code, &body.backup_code);
    let password = Password::parse("password", &body.password)?;
    let pair = state
        .accounts
        .login(&Email::parse(&body.email)?, &password, client)
        .await?;
    Ok(Json(pair.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Spends a refresh token for a new pair. Presenting a spent one ends its session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshBody, responses(
    (status = 200, body = TokenResponse),
    (status = 401, body = Problem),
    (status = 403, description = "`banned`", body = Problem),
    (status = 429, body = Problem),
))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(state.accounts.refresh(&body.refresh_token).await?.into()))
}

/// Ends this session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])), responses(
    (status = 204),
    (status = 401, body = Problem),
))]
async fn logout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<StatusCode> {
    state.accounts.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a password reset token if the address has an account; always 202.
#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", request_body = EmailBody, responses(
    (status = 202),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
))]
async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<StatusCode> {
    state
        .accounts
        .forgot_password(&Email::parse(&body.email)?)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    token: String,
    new_password: String,
}

/// Sets a new password with a reset token (single use, 30 minutes); ends every session.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", request_body = ResetBody, responses(
    (status = 204),
    (status = 400, description = "invalid, used or expired token", body = Problem),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
))]
async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<StatusCode> {
    let new_password = NewPassword::parse("new_password", &body.new_password, &[])?;
    state.accounts.reset_password(&body.token, &new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
