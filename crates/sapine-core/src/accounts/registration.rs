use chrono::Duration;

use super::{
    Accounts, DisplayName, Email, MailedToken, NewPassword, OpaqueToken, Role, TokenHash, TokenPurpose, User,
    UserId, mails,
};
use crate::{Error, Result, StoreError};

const VERIFY_TOKEN_TTL_HOURS: i64 = 24;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password: NewPassword,
    pub display_name: Option<DisplayName>,
}

impl Accounts {
    pub async fn register(&self, new: NewAccount) -> Result<User> {
        let user = self.create_user(new, Role::User, false).await?;
        self.send_verification(&user).await?;
        Ok(user)
    }

    /// Creates an account directly, as the operator's `admin create-user` does.
    pub async fn create_user(&self, new: NewAccount, role: Role, email_verified: bool) -> Result<User> {
        let display_name = new
            .display_name
            .unwrap_or_else(|| DisplayName::from_email(&new.email));
        new.password
            .ensure_unlike("password", &[new.email.as_str(), display_name.as_str()])?;
        let hash = self.hasher.hash(new.password.as_password()).await?;
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            email: new.email,
            display_name,
            role,
            plan: self.settings.default_plan.clone(),
            email_verified,
            mfa_enabled: false,
            ban: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_user(&user, &hash).await.map_err(|e| match e {
            StoreError::Conflict(_) => Error::Conflict("an account with this email already exists"),
            other => other.into(),
        })?;
        tracing::info!(user = %user.id, "account created");
        Ok(user)
    }

    pub async fn verify_email(&self, token: &str) -> Result<()> {
        let user_id = self.spend_token(token, TokenPurpose::VerifyEmail).await?;
        let mut user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::InvalidToken)?
            .user;
        if !user.email_verified {
            user.email_verified = true;
            user.updated_at = self.clock.now();
            self.store.update_user(&user).await?;
            self.cache.forget_user(user_id);
        }
        Ok(())
    }

    /// Always succeeds, so the answer does not tell whether the address has an account.
    pub async fn resend_verification(&self, email: &Email) -> Result<()> {
        if let Some(record) = self.store.user_by_email(email).await? {
            let user = record.user;
            if !user.email_verified && user.active_ban(self.clock.now()).is_none() {
                self.send_verification(&user).await?;
            }
        }
        Ok(())
    }

    async fn send_verification(&self, user: &User) -> Result<()> {
        let token = self
            .issue_token(
                user.id,
                TokenPurpose::VerifyEmail,
                Duration::hours(VERIFY_TOKEN_TTL_HOURS),
            )
            .await?;
        self.deliver(mails::verification(
            &user.email,
            &self.settings.public_url,
            &token,
        ));
        Ok(())
    }

    pub(super) async fn issue_token(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        ttl: Duration,
    ) -> Result<OpaqueToken> {
        let token = OpaqueToken::generate();
        self.store
            .insert_mailed_token(&MailedToken {
                hash: token.hash(),
                user_id,
                purpose,
                expires_at: self.clock.now() + ttl,
            })
            .await?;
        Ok(token)
    }

    /// Spends a mailed token and says whose it was.
    pub(super) async fn spend_token(&self, token: &str, purpose: TokenPurpose) -> Result<UserId> {
        let hash = TokenHash::of(token);
        let now = self.clock.now();
        let user_id = self
            .store
            .find_mailed_token(&hash, purpose, now)
            .await?
            .ok_or(Error::InvalidToken)?;
        if !self.store.spend_mailed_token(&hash, purpose, now).await? {
            return Err(Error::InvalidToken);
        }
        Ok(user_id)
    }
}
