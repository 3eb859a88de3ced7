//! Response bodies shared by several resources.

use chrono::{DateTime, Utc};
use sapine_core::accounts::{Ban, User};
use sapine_core::page::Page;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    /// `user` or `admin`.
    pub role: &'static str,
    pub email_verified: bool,
    pub plan: String,
    pub mfa_enabled: bool,
    /// The ban in force or scheduled to lift, if any.
    pub ban: Option<BanView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BanView {
    pub reason: String,
    pub banned_at: DateTime<Utc>,
    /// When the ban lifts by itself; null for a permanent ban.
    pub until: Option<DateTime<Utc>>,
}

impl UserView {
    /// Shows the ban only while it is in force: a lapsed one is history, not state.
    pub fn new(user: &User, now: DateTime<Utc>) -> Self {
        Self {
            id: user.id.0,
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            role: user.role.as_str(),
            email_verified: user.email_verified,
            plan: user.plan.as_str().to_owned(),
            mfa_enabled: user.mfa_enabled,
            ban: user.active_ban(now).map(|b: &Ban| BanView {
                reason: b.reason.clone(),
                banned_at: b.at,
                until: b.until,
            }),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> PageView<T> {
    pub fn new<U>(page: Page<U>, view: impl FnMut(U) -> T) -> Self {
        let page = page.map(view);
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}
