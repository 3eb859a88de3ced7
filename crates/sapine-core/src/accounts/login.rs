use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::auth_cache::CachedSession;
use super::{
    Accounts, ClientInfo, Email, OpaqueToken, Password, RefreshOutcome, Session, SessionId, TokenHash, User,
};
use crate::{Error, Result};

/// How stale a session's "last used" time may get before a request writes it again; writing it
/// on every request would make each authenticated read a database write.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// An authenticated request's user and session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Arc<User>,
    pub session_id: SessionId,
}

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: Duration,
}

impl Accounts {
    pub async fn login(&self, email: &Email, password: &Password, client: ClientInfo) -> Result<TokenPair> {
        let Some(record) = self.store.user_by_email(email).await? else {
            let decoy = self
                .decoy_hash
                .get_or_try_init(|| self.hasher.hash(password))
                .await?;
            self.hasher.verify(password, decoy).await?;
            return Err(Error::InvalidCredentials);
        };
        if !self.hasher.verify(password, &record.password_hash).await? {
            return Err(Error::InvalidCredentials);
        }
        let now = self.clock.now();
        if let Some(ban) = record.user.active_ban(now) {
            return Err(Error::Banned { until: ban.until });
        }
        if !record.user.email_verified {
            return Err(Error::EmailNotVerified);
        }
        let session = Session {
            id: SessionId::new(),
            user_id: record.user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + self.settings.refresh_token_ttl,
            client,
            revoked_at: None,
        };
        let refresh = OpaqueToken::generate();
        self.store.insert_session(&session, &refresh.hash()).await?;
        tracing::info!(user = %record.user.id, session = %session.id, "logged in");
        Ok(self.token_pair(&session, refresh, now))
    }

    /// Spends the presented refresh token for a new pair. A token presented twice means it
    /// leaked: the whole session ends.
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair> {
        let now = self.clock.now();
        let replacement = OpaqueToken::generate();
        let outcome = self
            .store
            .rotate_refresh_token(
                &TokenHash::of(presented),
                &replacement.hash(),
                now,
                now + self.settings.refresh_token_ttl,
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated(session) => {
                self.cache.forget_session(session.id);
                let user = self
                    .store
                    .user_by_id(session.user_id)
                    .await?
                    .ok_or(Error::Unauthenticated)?
                    .user;
                if let Some(ban) = user.active_ban(now) {
                    self.store.revoke_sessions(user.id, None, now).await?;
                    return Err(Error::Banned { until: ban.until });
                }
                Ok(self.token_pair(&session, replacement, now))
            }
            RefreshOutcome::Reused(session_id) => {
                if let Some(session) = self.store.session(session_id).await? {
                    self.store
                        .revoke_session(session.user_id, session_id, now)
                        .await?;
                }
                self.cache.forget_session(session_id);
                tracing::warn!(session = %session_id, "spent refresh token presented again; session revoked");
                Err(Error::Unauthenticated)
            }
            RefreshOutcome::Invalid => Err(Error::Unauthenticated),
        }
    }

    pub async fn logout(&self, caller: &Caller) -> Result<()> {
        self.store
            .revoke_session(caller.user.id, caller.session_id, self.clock.now())
            .await?;
        self.cache.forget_session(caller.session_id);
        Ok(())
    }

    /// Resolves an access token to its caller; a token whose session has ended, or whose user
    /// is banned or gone, is refused.
    pub async fn authenticate(&self, access_token: &str) -> Result<Caller> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .verify(access_token, now)
            .ok_or(Error::Unauthenticated)?;
        let session_id = claims.session_id;
        let entry = match self.cache.get(session_id, now) {
            Some(entry) => entry,
            None => {
                let session = self
                    .store
                    .session(session_id)
                    .await?
                    .filter(|s| s.is_live(now))
                    .ok_or(Error::Unauthenticated)?;
                let user = self
                    .store
                    .user_by_id(session.user_id)
                    .await?
                    .ok_or(Error::Unauthenticated)?
                    .user;
                let entry = CachedSession {
                    user: Arc::new(user),
                    expires_at: session.expires_at,
                    last_touched: session.last_used_at,
                    loaded_at: now,
                };
                self.cache.insert(session_id, entry.clone());
                entry
            }
        };
        if entry.user.id != claims.user_id || entry.expires_at <= now || entry.user.active_ban(now).is_some()
        {
            return Err(Error::Unauthenticated);
        }
        self.touch(session_id, entry.last_touched, now);
        Ok(Caller {
            user: entry.user,
            session_id,
        })
    }

    fn touch(&self, session_id: SessionId, last_touched: DateTime<Utc>, now: DateTime<Utc>) {
        if now - last_touched < Duration::seconds(TOUCH_INTERVAL_SECS) {
            return;
        }
        self.cache.mark_touched(session_id, now);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(session_id, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
        });
    }

    fn token_pair(&self, session: &Session, refresh: OpaqueToken, now: DateTime<Utc>) -> TokenPair {
        TokenPair {
            access_token: self.tokens.issue(session.user_id, session.id, now),
            refresh_token: refresh.expose().to_owned(),
            expires_in: self.tokens.ttl(),
        }
    }
}
