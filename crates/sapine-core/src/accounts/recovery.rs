use chrono::Duration;

use super::{Accounts, Email, NewPassword, TokenHash, TokenPurpose, UserId, mails};
use crate::{Error, Result};

const RESET_TOKEN_TTL_MINUTES: i64 = 30;

impl Accounts {
    /// Always succeeds, whether or not the address has an account (no enumeration).
    pub async fn forgot_password(&self, email: &Email) -> Result<()> {
        let Some(record) = self.store.user_by_email(email).await? else {
            return Ok(());
        };
        if record.user.active_ban(self.clock.now()).is_some() {
            return Ok(());
        }
        let token = self
            .issue_token(
                record.user.id,
                TokenPurpose::ResetPassword,
                Duration::minutes(RESET_TOKEN_TTL_MINUTES),
            )
            .await?;
        self.deliver(mails::password_reset(
            &record.user.email,
            &self.settings.public_url,
            &token,
        ));
        Ok(())
    }

    /// Sets a new password with a mailed token, which also proves the address; every session
    /// of the account ends.
    pub async fn reset_password(&self, token: &str, new_password: &NewPassword) -> Result<()> {
        let now = self.clock.now();
        let hash = TokenHash::of(token);
        let user_id = self
            .store
            .find_mailed_token(&hash, TokenPurpose::ResetPassword, now)
            .await?
            .ok_or(Error::InvalidToken)?;
        let mut user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::InvalidToken)?
            .user;
        // Checked before the token is spent, so a rejected password leaves it usable.
        new_password.ensure_unlike("new_password", &[user.email.as_str(), user.display_name.as_str()])?;
        self.ensure_not_recent(user_id, new_password).await?;
        if !self
            .store
            .spend_mailed_token(&hash, TokenPurpose::ResetPassword, now)
            .await?
        {
            return Err(Error::InvalidToken);
        }
        self.store
            .spend_user_tokens(user_id, TokenPurpose::ResetPassword, now)
            .await?;
        let new_hash = self.hasher.hash(new_password.as_password()).await?;
        self.store.set_password(user_id, &new_hash, now).await?;
        if !user.email_verified {
            user.email_verified = true;
            user.updated_at = now;
            self.store.update_user(&user).await?;
        }
        self.store.revoke_sessions(user_id, None, now).await?;
        self.cache.forget_user(user_id);
        self.deliver(mails::password_changed(&user.email));
        tracing::info!(user = %user_id, "password reset");
        Ok(())
    }

    pub(super) async fn ensure_not_recent(&self, user_id: UserId, new_password: &NewPassword) -> Result<()> {
        let recent = self
            .store
            .recent_password_hashes(user_id, super::PASSWORD_HISTORY)
            .await?;
        for old in &recent {
            if self.hasher.verify(new_password.as_password(), old).await? {
                return Err(Error::field(
                    "new_password",
                    format!("must differ from your last {} passwords", super::PASSWORD_HISTORY),
                ));
            }
        }
        Ok(())
    }
}
