//! The storage port for accounts, sessions and mailed tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Email, MailedToken, RefreshOutcome, Session, SessionId, TokenHash, TokenPurpose, User, UserId, UserRecord,
};
use crate::StoreError;
use crate::page::PageRequest;

type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Fails with `Conflict("email")` when the address is taken.
    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<()>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>>;
    /// Writes every mutable field of `user`; false when it no longer exists.
    async fn update_user(&self, user: &User) -> Result<bool>;
    /// Sets the password and records it in the user's password history.
    async fn set_password(&self, id: UserId, hash: &str, at: DateTime<Utc>) -> Result<()>;
    /// The newest `count` password hashes, the current one first.
    async fn recent_password_hashes(&self, id: UserId, count: u32) -> Result<Vec<String>>;
    /// Removes the user with their sessions and tokens; false when there was none.
    async fn delete_user(&self, id: UserId) -> Result<bool>;
    /// Users ordered by id, optionally those whose email or name contains `query`.
    async fn list_users(&self, query: Option<&str>, page: &PageRequest) -> Result<Vec<User>>;

    async fn insert_session(&self, session: &Session, refresh: &TokenHash) -> Result<()>;
    async fn session(&self, id: SessionId) -> Result<Option<Session>>;
    /// Atomically spends `presented` and stores `replacement`, pushing the session's expiry to
    /// `expires_at`, if `presented` is current and its session live.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        replacement: &TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome>;
    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()>;
    /// Revokes one live session of this user; false when there was none.
    async fn revoke_session(&self, user: UserId, id: SessionId, at: DateTime<Utc>) -> Result<bool>;
    /// Revokes every live session of the user but `keep`.
    async fn revoke_sessions(&self, user: UserId, keep: Option<SessionId>, at: DateTime<Utc>) -> Result<()>;
    /// Live sessions, newest first.
    async fn live_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Vec<Session>>;

    async fn insert_mailed_token(&self, token: &MailedToken) -> Result<()>;
    /// The user an unused, unexpired token belongs to, without spending it.
    async fn find_mailed_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>>;
    /// Spends the token; false when it was already spent, expired or unknown.
    async fn spend_mailed_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Spends every outstanding token of this purpose for the user.
    async fn spend_user_tokens(&self, user: UserId, purpose: TokenPurpose, now: DateTime<Utc>) -> Result<()>;

    async fn ping(&self) -> Result<()>;
}
