//! The signed-in user's own account: profile, password, sessions, deletion.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sapine_core::accounts::{DisplayName, NewPassword, Password, Session, SessionId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::{PageView, UserView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated, ListParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me, delete_me))
        .routes(routes!(change_password))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
}

/// The caller's profile.
#[utoipa::path(get, path = "/users/me", tag = "account", security(("bearer" = [])), responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
))]
async fn me(Authenticated(caller): Authenticated) -> Json<UserView> {
    Json(UserView::new(&caller.user, Utc::now()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    display_name: Option<String>,
}

/// Changes the caller's profile.
#[utoipa::path(patch, path = "/users/me", tag = "account", security(("bearer" = [])), request_body = ProfileChanges, responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
    (status = 422, body = Problem),
))]
async fn update_me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<ProfileChanges>,
) -> ApiResult<Json<UserView>> {
    let display_name = body.display_name.as_deref().map(DisplayName::parse).transpose()?;
    let user = state.accounts.update_profile(&caller, display_name).await?;
    Ok(Json(UserView::new(&user, Utc::now())))
}

/// Deletes the caller's account; every session ends.
#[utoipa::path(delete, path = "/users/me", tag = "account", security(("bearer" = [])), responses(
    (status = 204),
    (status = 401, body = Problem),
))]
async fn delete_me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<StatusCode> {
    state.accounts.delete_account(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    /// Hard to guess, and none of the last 5 passwords of the account.
    new_password: String,
}

/// Changes the password; the account's other sessions end.
#[utoipa::path(post, path = "/users/me/password", tag = "account", security(("bearer" = [])), request_body = PasswordChange, responses(
    (status = 204),
    (status = 401, body = Problem),
    (status = 422, description = "wrong current password, weak or reused new one", body = Problem),
))]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let (current, new) = match (
        Password::parse("current_password", &body.current_password),
        NewPassword::parse("new_password", &body.new_password, &[]),
    ) {
        (Ok(current), Ok(new)) => (current, new),
        (c, n) => {
            return Err(ApiError::validation(
                [c.err(), n.err()].into_iter().flatten().collect(),
            ));
        }
    };
    state.accounts.change_password(&caller, &current, &new).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The session making this request.
    current: bool,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/users/me/sessions", tag = "account", security(("bearer" = [])), params(ListParams), responses(
    (status = 200, body = PageView<SessionView>),
    (status = 401, body = Problem),
))]
async fn sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<PageView<SessionView>>> {
    let page = state.accounts.sessions(&caller, &params.page()?).await?;
    Ok(Json(PageView::new(page, |s: Session| SessionView {
        id: s.id.0,
        created_at: s.created_at,
        last_used_at: s.last_used_at,
        expires_at: s.expires_at,
        ip: s.client.ip,
        user_agent: s.client.user_agent,
        current: s.id == caller.session_id,
    })))
}

/// Ends one of the caller's sessions at once.
#[utoipa::path(delete, path = "/users/me/sessions/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id")), responses(
    (status = 204),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.accounts.revoke_session(&caller, SessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
