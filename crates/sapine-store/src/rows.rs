//! Rows as the database returns them, and their conversion into domain types.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sapine_core::StoreError;
use sapine_core::accounts::{
    Ban, ClientInfo, DisplayName, Email, PlanName, Role, Session, SessionId, User, UserId, UserRecord,
};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    role: String,
    plan: String,
    email_verified: bool,
    mfa_enabled: bool,
    ban_reason: Option<String>,
    banned_at: Option<DateTime<Utc>>,
    banned_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The columns `UserRow` reads, as a literal so queries can be assembled with `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, display_name, password_hash, role, plan, email_verified, mfa_enabled, \
         ban_reason, banned_at, banned_until, created_at, updated_at"
    };
}
pub(crate) use user_columns;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let ban = match (row.ban_reason, row.banned_at) {
            (Some(reason), Some(at)) => Some(Ban {
                reason,
                at,
                until: row.banned_until,
            }),
            _ => None,
        };
        Ok(UserRecord {
            user: User {
                id: UserId(row.id),
                email: Email::parse(&row.email).map_err(|e| corrupt("users.email", e.message))?,
                display_name: DisplayName::parse(&row.display_name)
                    .map_err(|e| corrupt("users.display_name", e.message))?,
                role: Role::from_str(&row.role).map_err(|e| corrupt("users.role", e))?,
                plan: PlanName::parse(&row.plan).map_err(|e| corrupt("users.plan", e.message))?,
                email_verified: row.email_verified,
                mfa_enabled: row.mfa_enabled,
                ban,
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
            password_hash: row.password_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
    revoked_at: Option<DateTime<Utc>>,
}

macro_rules! session_columns {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, ip, user_agent, revoked_at"
    };
}
pub(crate) use session_columns;

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: SessionId(row.id),
            user_id: UserId(row.user_id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            client: ClientInfo {
                ip: row.ip,
                user_agent: row.user_agent,
            },
            revoked_at: row.revoked_at,
        }
    }
}

/// A LIKE pattern matching `needle` anywhere, with LIKE's wildcards in it taken literally.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
