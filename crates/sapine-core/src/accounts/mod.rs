//! Accounts and sessions: registration and verification, login with rotating refresh tokens,
//! password recovery and change, profiles, and the administration of users.

mod admin;
mod auth_cache;
mod email;
mod login;
mod mails;
mod password;
mod profile;
mod recovery;
mod registration;
mod session;
mod store;
mod tokens;
mod user;

use std::sync::Arc;

use chrono::Duration;

pub use admin::UserChanges;
pub use email::Email;
pub use login::{Caller, TokenPair};
pub use password::{HashCost, NewPassword, Password, PasswordHasher};
pub use registration::NewAccount;
pub use session::{ClientInfo, RefreshOutcome, Session, SessionId};
pub use store::AccountStore;
pub use tokens::{AccessTokens, MailedToken, OpaqueToken, TokenHash, TokenPurpose};
pub use user::{Ban, DisplayName, PlanName, Role, User, UserId, UserRecord};

use crate::clock::Clock;
use crate::mail::{Mail, Mailer};
use crate::secret::SecretKey;

/// How many earlier passwords a new one must differ from, the current one included.
pub const PASSWORD_HISTORY: u32 = 5;

#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Base of the links in mails, without a trailing slash.
    pub public_url: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub plans: Vec<PlanName>,
    pub default_plan: PlanName,
}

/// Told when a user can no longer run anything, so their bots stop with them.
#[async_trait::async_trait]
pub trait UserLifecycle: Send + Sync + 'static {
    async fn banned(&self, user: UserId);
    /// Runs before the account is deleted; a failure keeps the account.
    async fn deleting(&self, user: UserId) -> crate::Result<()>;
}

pub struct Accounts {
    lifecycle: std::sync::OnceLock<Arc<dyn UserLifecycle>>,
    store: Arc<dyn AccountStore>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    tokens: AccessTokens,
    cache: auth_cache::AuthCache,
    settings: AccountSettings,
    /// A real hash to verify against when the email is unknown, so that a login's timing does
    /// not tell whether an account exists.
    decoy_hash: tokio::sync::OnceCell<String>,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn AccountStore>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        secret: &SecretKey,
        settings: AccountSettings,
    ) -> Self {
        Self {
            lifecycle: std::sync::OnceLock::new(),
            store,
            mailer,
            clock,
            hasher,
            tokens: AccessTokens::new(secret, settings.access_token_ttl),
            cache: auth_cache::AuthCache::default(),
            settings,
            decoy_hash: tokio::sync::OnceCell::new(),
        }
    }

    /// Set once at start-up, after the services that listen exist.
    pub fn set_lifecycle(&self, lifecycle: Arc<dyn UserLifecycle>) {
        let _ = self.lifecycle.set(lifecycle);
    }

    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// Sends in the background: a slow mail server must neither delay the answer nor reveal,
    /// by timing, whether a mail was sent at all.
    fn deliver(&self, mail: Mail) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(error = %e, "mail not sent");
            }
        });
    }
}
