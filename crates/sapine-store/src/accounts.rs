//! The SQL for accounts, sessions and mailed tokens, written once for both backends: the
//! statements use `$n` parameters and syntax that SQLite and PostgreSQL both accept, and
//! `account_store!` implements the port for each backend's concrete pool.

macro_rules! account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl sapine_core::accounts::AccountStore for $store {
            async fn insert_user(&self, user: &User, password_hash: &str) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO users (id, email, display_name, password_hash, role, plan, email_verified, \
                     mfa_enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(user.id.0)
                .bind(user.email.as_str())
                .bind(user.display_name.as_str())
                .bind(password_hash)
                .bind(user.role.as_str())
                .bind(user.plan.as_str())
                .bind(user.email_verified)
                .bind(user.mfa_enabled)
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(classify("email"))?;
                sqlx::query("INSERT INTO password_history (user_id, password_hash, set_at) VALUES ($1, $2, $3)")
                    .bind(user.id.0)
                    .bind(password_hash)
                    .bind(user.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>> {
                sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?
                    .map(UserRecord::try_from)
                    .transpose()
            }

            async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>> {
                sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?
                    .map(UserRecord::try_from)
                    .transpose()
            }

            async fn update_user(&self, user: &User) -> Result<bool> {
                let ban = user.ban.as_ref();
                let done = sqlx::query(
                    "UPDATE users SET display_name = $2, role = $3, plan = $4, email_verified = $5, \
                     mfa_enabled = $6, ban_reason = $7, banned_at = $8, banned_until = $9, updated_at = $10 \
                     WHERE id = $1",
                )
                .bind(user.id.0)
                .bind(user.display_name.as_str())
                .bind(user.role.as_str())
                .bind(user.plan.as_str())
                .bind(user.email_verified)
                .bind(user.mfa_enabled)
                .bind(ban.map(|b| b.reason.as_str()))
                .bind(ban.map(|b| b.at))
                .bind(ban.and_then(|b| b.until))
                .bind(user.updated_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_password(&self, id: UserId, hash: &str, at: DateTime<Utc>) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query("INSERT INTO password_history (user_id, password_hash, set_at) VALUES ($1, $2, $3)")
                    .bind(id.0)
                    .bind(hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn recent_password_hashes(&self, id: UserId, count: u32) -> Result<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
                )
                .bind(id.0)
                .bind(i64::from(count))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)
            }

            async fn delete_user(&self, id: UserId) -> Result<bool> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_users(&self, query: Option<&str>, page: &PageRequest) -> Result<Vec<User>> {
                let rows = sqlx::query_as::<_, UserRow>(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE ($1 IS NULL OR id > $1) AND ($2 IS NULL \
                     OR lower(email) LIKE $2 ESCAPE '\\' OR lower(display_name) LIKE $2 ESCAPE '\\') \
                     ORDER BY id LIMIT $3"
                ))
                .bind(page.after)
                .bind(query.map(contains_pattern))
                .bind(i64::from(page.fetch_limit()))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(|r| UserRecord::try_from(r).map(|r| r.user)).collect()
            }

            async fn insert_session(&self, session: &Session, refresh: &TokenHash) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(session.id.0)
                .bind(session.user_id.0)
                .bind(session.created_at)
                .bind(session.last_used_at)
                .bind(session.expires_at)
                .bind(session.client.ip.as_deref())
                .bind(session.client.user_agent.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(refresh.as_str())
                    .bind(session.id.0)
                    .bind(session.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn session(&self, id: SessionId) -> Result<Option<Session>> {
                let row = sqlx::query_as::<_, SessionRow>(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id = $1"
                ))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(Session::from))
            }

            async fn rotate_refresh_token(
                &self,
                presented: &TokenHash,
                replacement: &TokenHash,
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> Result<RefreshOutcome> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                // Spending first, conditionally, makes two concurrent presentations of one token
                // resolve to one rotation and one reuse.
                let spent: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL \
                     RETURNING session_id",
                )
                .bind(presented.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some(session_id) = spent else {
                    let earlier: Option<Uuid> =
                        sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                            .bind(presented.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(earlier.map_or(RefreshOutcome::Invalid, |id| RefreshOutcome::Reused(SessionId(id))));
                };
                let session: Session = sqlx::query_as::<_, SessionRow>(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id = $1"
                ))
                .bind(session_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?
                .into();
                if !session.is_live(now) {
                    tx.commit().await.map_err(db_error)?;
                    return Ok(RefreshOutcome::Invalid);
                }
                sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(replacement.as_str())
                    .bind(session_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query("UPDATE sessions SET last_used_at = $2, expires_at = $3 WHERE id = $1")
                    .bind(session_id)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(RefreshOutcome::Rotated(Session {
                    last_used_at: now,
                    expires_at,
                    ..session
                }))
            }

            async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn revoke_session(&self, user: UserId, id: SessionId, at: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL \
                     AND expires_at > $3",
                )
                .bind(id.0)
                .bind(user.0)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_sessions(&self, user: UserId, keep: Option<SessionId>, at: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND revoked_at IS NULL \
                     AND ($2 IS NULL OR id <> $2)",
                )
                .bind(user.0)
                .bind(keep.map(|k| k.0))
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn live_sessions(&self, user: UserId, now: DateTime<Utc>, page: &PageRequest) -> Result<Vec<Session>> {
                let rows = sqlx::query_as::<_, SessionRow>(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                     AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
                ))
                .bind(user.0)
                .bind(now)
                .bind(page.after)
                .bind(i64::from(page.fetch_limit()))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Session::from).collect())
            }

            async fn insert_mailed_token(&self, token: &MailedToken) -> Result<()> {
                sqlx::query(
                    "INSERT INTO mailed_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token.hash.as_str())
                .bind(token.user_id.0)
                .bind(token.purpose.as_str())
                .bind(token.expires_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn find_mailed_token(
                &self,
                hash: &TokenHash,
                purpose: TokenPurpose,
                now: DateTime<Utc>,
            ) -> Result<Option<UserId>> {
                let user: Option<Uuid> = sqlx::query_scalar(
                    "SELECT user_id FROM mailed_tokens WHERE token_hash = $1 AND purpose = $2 \
                     AND spent_at IS NULL AND expires_at > $3",
                )
                .bind(hash.as_str())
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(user.map(UserId))
            }

            async fn spend_mailed_token(&self, hash: &TokenHash, purpose: TokenPurpose, now: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE mailed_tokens SET spent_at = $3 WHERE token_hash = $1 AND purpose = $2 \
                     AND spent_at IS NULL AND expires_at > $3",
                )
                .bind(hash.as_str())
                .bind(purpose.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn spend_user_tokens(&self, user: UserId, purpose: TokenPurpose, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE mailed_tokens SET spent_at = $3 WHERE user_id = $1 AND purpose = $2 AND spent_at IS NULL",
                )
                .bind(user.0)
                .bind(purpose.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
                Ok(())
            }
        }
    };
}
pub(crate) use account_store;
