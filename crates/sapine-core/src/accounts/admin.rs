use chrono::{DateTime, Utc};

use super::{Accounts, Ban, Caller, DisplayName, PlanName, Role, User, UserId, mails};
use crate::page::{Page, PageRequest};
use crate::{Error, Result};

/// Fields an admin may change on a user; None leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub plan: Option<PlanName>,
    pub display_name: Option<DisplayName>,
}

impl Accounts {
    /// Admin operations answer 404 to everyone else, so they do not reveal themselves.
    fn require_admin(caller: &Caller) -> Result<()> {
        if caller.user.is_admin() {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    pub async fn list_users(
        &self,
        caller: &Caller,
        query: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<User>> {
        Self::require_admin(caller)?;
        let rows = self.store.list_users(query, page).await?;
        Ok(Page::from_rows(rows, page, |u| u.id.0))
    }

    pub async fn user(&self, caller: &Caller, id: UserId) -> Result<User> {
        Self::require_admin(caller)?;
        Ok(self.store.user_by_id(id).await?.ok_or(Error::NotFound)?.user)
    }

    pub async fn change_user(&self, caller: &Caller, id: UserId, changes: UserChanges) -> Result<User> {
        Self::require_admin(caller)?;
        if let Some(plan) = changes.plan.as_ref().filter(|p| !self.settings.plans.contains(p)) {
            let known: Vec<&str> = self.settings.plans.iter().map(PlanName::as_str).collect();
            return Err(Error::field(
                "plan",
                format!(
                    "{:?} is not a plan of this server ({})",
                    plan.as_str(),
                    known.join(", ")
                ),
            ));
        }
        let mut user = self.store.user_by_id(id).await?.ok_or(Error::NotFound)?.user;
        user.role = changes.role.unwrap_or(user.role);
        user.plan = changes.plan.unwrap_or(user.plan);
        user.display_name = changes.display_name.unwrap_or(user.display_name);
        user.updated_at = self.clock.now();
        self.store.update_user(&user).await?;
        self.cache.forget_user(id);
        Ok(user)
    }

    /// Bans a user until `until` (for good when None); their sessions end at once.
    pub async fn ban(
        &self,
        caller: &Caller,
        id: UserId,
        reason: String,
        until: Option<DateTime<Utc>>,
    ) -> Result<User> {
        Self::require_admin(caller)?;
        let now = self.clock.now();
        if id == caller.user.id {
            return Err(Error::Conflict("admins cannot ban themselves"));
        }
        if until.is_some_and(|u| u <= now) {
            return Err(Error::field("until", "must be in the future"));
        }
        let mut user = self.store.user_by_id(id).await?.ok_or(Error::NotFound)?.user;
        user.ban = Some(Ban {
            reason,
            at: now,
            until,
        });
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.store.revoke_sessions(id, None, now).await?;
        self.cache.forget_user(id);
        if let Some(lifecycle) = self.lifecycle.get() {
            lifecycle.banned(id).await;
        }
        if let Some(ban) = &user.ban {
            self.deliver(mails::banned(&user.email, &ban.reason, ban.until));
        }
        tracing::info!(user = %id, admin = %caller.user.id, "user banned");
        Ok(user)
    }

    pub async fn unban(&self, caller: &Caller, id: UserId) -> Result<User> {
        Self::require_admin(caller)?;
        let mut user = self.store.user_by_id(id).await?.ok_or(Error::NotFound)?.user;
        if user.ban.take().is_some() {
            user.updated_at = self.clock.now();
            self.store.update_user(&user).await?;
            self.cache.forget_user(id);
            tracing::info!(user = %id, admin = %caller.user.id, "user unbanned");
        }
        Ok(user)
    }
}
