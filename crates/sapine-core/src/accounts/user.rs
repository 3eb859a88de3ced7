use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Email;
use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// The name of a plan defined in the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanName(String);

impl PlanName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if crate::slug::is_slug(raw, 32) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "plan",
                "must be 1–32 characters of a-z, 0-9 and -, starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user is called on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("display_name", "must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new("display_name", "must be at most 64 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name a new account gets when none is given: the start of its email address.
    pub fn from_email(email: &Email) -> Self {
        Self(email.local_part().chars().take(Self::MAX_CHARS).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub reason: String,
    pub at: DateTime<Utc>,
    /// None bans for good; otherwise the ban lifts by itself at this time.
    pub until: Option<DateTime<Utc>>,
}

impl Ban {
    pub const MAX_REASON_CHARS: usize = 500;

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub plan: PlanName,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub ban: Option<Ban>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn active_ban(&self, now: DateTime<Utc>) -> Option<&Ban> {
        self.ban.as_ref().filter(|b| b.is_active(now))
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A user as stored, with the secret that never leaves the core.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}
