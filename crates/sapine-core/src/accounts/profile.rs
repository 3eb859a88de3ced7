use super::{Accounts, Caller, DisplayName, NewPassword, Password, Session, SessionId, User, mails};
use crate::page::{Page, PageRequest};
use crate::{Error, Result};

impl Accounts {
    pub async fn update_profile(&self, caller: &Caller, display_name: Option<DisplayName>) -> Result<User> {
        let mut user = self
            .store
            .user_by_id(caller.user.id)
            .await?
            .ok_or(Error::NotFound)?
            .user;
        if let Some(name) = display_name {
            user.display_name = name;
            user.updated_at = self.clock.now();
            self.store.update_user(&user).await?;
            self.cache.forget_user(user.id);
        }
        Ok(user)
    }

    /// Changes the password and signs out every other session of the account.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &Password,
        new_password: &NewPassword,
    ) -> Result<()> {
        let record = self
            .store
            .user_by_id(caller.user.id)
            .await?
            .ok_or(Error::NotFound)?;
        if !self.hasher.verify(current, &record.password_hash).await? {
            return Err(Error::field("current_password", "is not your current password"));
        }
        let user = record.user;
        new_password.ensure_unlike("new_password", &[user.email.as_str(), user.display_name.as_str()])?;
        self.ensure_not_recent(user.id, new_password).await?;
        let now = self.clock.now();
        let hash = self.hasher.hash(new_password.as_password()).await?;
        self.store.set_password(user.id, &hash, now).await?;
        self.store
            .revoke_sessions(user.id, Some(caller.session_id), now)
            .await?;
        self.cache.forget_user(user.id);
        self.deliver(mails::password_changed(&user.email));
        tracing::info!(user = %user.id, "password changed");
        Ok(())
    }

    /// Deletes the account; its sessions end with it.
    pub async fn delete_account(&self, caller: &Caller) -> Result<()> {
        if let Some(lifecycle) = self.lifecycle.get() {
            lifecycle.deleting(caller.user.id).await?;
        }
        self.store.delete_user(caller.user.id).await?;
        self.cache.forget_user(caller.user.id);
        tracing::info!(user = %caller.user.id, "account deleted");
        Ok(())
    }

    pub async fn sessions(&self, caller: &Caller, page: &PageRequest) -> Result<Page<Session>> {
        let rows = self
            .store
            .live_sessions(caller.user.id, self.clock.now(), page)
            .await?;
        Ok(Page::from_rows(rows, page, |s| s.id.0))
    }

    pub async fn revoke_session(&self, caller: &Caller, id: SessionId) -> Result<()> {
        if !self
            .store
            .revoke_session(caller.user.id, id, self.clock.now())
            .await?
        {
            return Err(Error::NotFound);
        }
        self.cache.forget_session(id);
        Ok(())
    }
}
