//! User administration, for admins only; everyone else gets 404.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use sapine_core::FieldError;
use sapine_core::accounts::{Ban, DisplayName, PlanName, Role, UserChanges, UserId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::{PageView, UserView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, change_user))
        .routes(routes!(ban_user))
        .routes(routes!(unban_user))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Part of an email address or display name, any case.
    q: Option<String>,
    /// Page size, 1–200; 50 when absent.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

const MAX_QUERY_CHARS: usize = 254;

/// Users, oldest first, optionally filtered by `q`.
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])), params(UserSearch), responses(
    (status = 200, body = PageView<UserView>),
    (status = 401, body = Problem),
    (status = 404, description = "the caller is not an admin", body = Problem),
))]
async fn list_users(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(search): ApiQuery<UserSearch>,
) -> ApiResult<Json<PageView<UserView>>> {
    let page = sapine_core::page::PageRequest::parse(search.limit, search.cursor.as_deref())?;
    let query = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if query.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(FieldError::new("q", "must be at most 254 characters").into());
    }
    let users = state.accounts.list_users(&caller, query, &page).await?;
    let now = Utc::now();
    Ok(Json(PageView::new(users, |u| UserView::new(&u, now))))
}

/// One user.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")), responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn get_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserView>> {
    let user = state.accounts.user(&caller, UserId(id)).await?;
    Ok(Json(UserView::new(&user, Utc::now())))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    User,
    Admin,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChangesBody {
    role: Option<RoleName>,
    /// A plan defined in the server's configuration.
    plan: Option<String>,
    display_name: Option<String>,
}

impl TryFrom<UserChangesBody> for UserChanges {
    type Error = ApiError;

    fn try_from(body: UserChangesBody) -> ApiResult<Self> {
        match (
            body.plan.as_deref().map(PlanName::parse).transpose(),
            body.display_name.as_deref().map(DisplayName::parse).transpose(),
        ) {
            (Ok(plan), Ok(display_name)) => Ok(UserChanges {
                role: body.role.map(|r| match r {
                    RoleName::User => Role::User,
                    RoleName::Admin => Role::Admin,
                }),
                plan,
                display_name,
            }),
            (p, n) => Err(ApiError::validation(
                [p.err(), n.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// Changes a user's role, plan or display name.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")), request_body = UserChangesBody, responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 422, body = Problem),
))]
async fn change_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UserChangesBody>,
) -> ApiResult<Json<UserView>> {
    let user = state
        .accounts
        .change_user(&caller, UserId(id), body.try_into()?)
        .await?;
    Ok(Json(UserView::new(&user, Utc::now())))
}

#[derive(Deserialize, ToSchema)]
pub struct BanBody {
    /// Shown to the user in the ban mail.
    reason: String,
    /// When the ban lifts by itself; absent for a permanent ban.
    until: Option<DateTime<Utc>>,
}

/// Bans a user: their sessions end at once and they cannot log in until the ban lifts.
#[utoipa::path(post, path = "/admin/users/{id}/ban", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")), request_body = BanBody, responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 409, description = "an admin banning themselves", body = Problem),
    (status = 422, body = Problem),
))]
async fn ban_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<BanBody>,
) -> ApiResult<Json<UserView>> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > Ban::MAX_REASON_CHARS {
        return Err(FieldError::new("reason", "must be 1–500 characters").into());
    }
    let user = state
        .accounts
        .ban(&caller, UserId(id), reason.to_owned(), body.until)
        .await?;
    Ok(Json(UserView::new(&user, Utc::now())))
}

/// Lifts a user's ban.
#[utoipa::path(post, path = "/admin/users/{id}/unban", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")), responses(
    (status = 200, body = UserView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn unban_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserView>> {
    let user = state.accounts.unban(&caller, UserId(id)).await?;
    Ok(Json(UserView::new(&user, Utc::now())))
}
