//! The SQL for bots, their secrets and crashes, written once for both backends like
//! `accounts.rs`; `bot_store!` implements the port for each concrete pool.

macro_rules! bot_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl sapine_core::bots::BotStore for $store {
            async fn insert_bot(&self, bot: &Bot) -> Result<()> {
                let c = &bot.config;
                sqlx::query(
                    "INSERT INTO bots (id, owner_id, name, description, command, env, restart_policy, limits, \
                     status, pid, started_at, restarts, last_exit, should_run, code_version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, 0, NULL, $10, $11, $12, $13)",
                )
                .bind(bot.id.0)
                .bind(bot.owner.0)
                .bind(c.name.as_str())
                .bind(&c.description)
                .bind(command_json(&c.command))
                .bind(env_json(&c.env))
                .bind(policy_json(&c.restart_policy))
                .bind(limits_json(&c.limits))
                .bind(bot.run.status.as_str())
                .bind(bot.should_run)
                .bind(i64::from(bot.code_version))
                .bind(bot.created_at)
                .bind(bot.updated_at)
                .execute(&self.pool)
                .await
                .map_err(classify("name"))?;
                Ok(())
            }

            async fn bot(&self, id: BotId) -> Result<Option<Bot>> {
                sqlx::query_as::<_, BotRow>(concat!("SELECT ", bot_columns!(), " FROM bots WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?
                    .map(Bot::try_from)
                    .transpose()
            }

            async fn bot_by_name(&self, owner: UserId, name: &BotName) -> Result<Option<Bot>> {
                sqlx::query_as::<_, BotRow>(concat!(
                    "SELECT ",
                    bot_columns!(),
                    " FROM bots WHERE owner_id = $1 AND name = $2"
                ))
                .bind(owner.0)
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?
                .map(Bot::try_from)
                .transpose()
            }

            async fn list_bots(&self, owner: UserId, status: Option<BotStatus>, page: &PageRequest) -> Result<Vec<Bot>> {
                sqlx::query_as::<_, BotRow>(concat!(
                    "SELECT ",
                    bot_columns!(),
                    " FROM bots WHERE owner_id = $1 AND ($2 IS NULL OR id > $2) AND ($3 IS NULL OR status = $3) \
                     ORDER BY id LIMIT $4"
                ))
                .bind(owner.0)
                .bind(page.after)
                .bind(status.map(BotStatus::as_str))
                .bind(i64::from(page.fetch_limit()))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(Bot::try_from)
                .collect()
            }

            async fn count_bots(&self, owner: UserId) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bots WHERE owner_id = $1")
                    .bind(owner.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn count_by_status(&self) -> Result<Vec<(BotStatus, u64)>> {
                let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM bots GROUP BY status")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.into_iter()
                    .map(|(status, n)| {
                        let status = status
                            .parse::<BotStatus>()
                            .map_err(|e| StoreError::Corrupt(format!("bot status {status:?}: {}", e.message)))?;
                        Ok((status, u64::try_from(n).unwrap_or_default()))
                    })
                    .collect()
            }

            async fn bots_of(&self, owner: UserId) -> Result<Vec<Bot>> {
                sqlx::query_as::<_, BotRow>(concat!("SELECT ", bot_columns!(), " FROM bots WHERE owner_id = $1"))
                    .bind(owner.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(Bot::try_from)
                    .collect()
            }

            async fn bots_to_run(&self) -> Result<Vec<Bot>> {
                sqlx::query_as::<_, BotRow>(concat!(
                    "SELECT ",
                    bot_columns!(),
                    " FROM bots WHERE should_run ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(Bot::try_from)
                .collect()
            }

            async fn update_config(&self, id: BotId, c: &BotConfig, at: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE bots SET name = $2, description = $3, command = $4, env = $5, restart_policy = $6, \
                     limits = $7, updated_at = $8 WHERE id = $1",
                )
                .bind(id.0)
                .bind(c.name.as_str())
                .bind(&c.description)
                .bind(command_json(&c.command))
                .bind(env_json(&c.env))
                .bind(policy_json(&c.restart_policy))
                .bind(limits_json(&c.limits))
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(classify("name"))?;
                Ok(())
            }

            async fn set_run_state(&self, id: BotId, run: &RunState) -> Result<()> {
                sqlx::query(
                    "UPDATE bots SET status = $2, pid = $3, started_at = $4, restarts = $5, last_exit = $6 \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(run.status.as_str())
                .bind(run.pid.map(i64::from))
                .bind(run.started_at)
                .bind(i64::from(run.restarts))
                .bind(run.last_exit.as_ref().map(exit_json))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn reset_run_states(&self) -> Result<()> {
                sqlx::query(
                    "UPDATE bots SET status = 'stopped', pid = NULL \
                     WHERE status IN ('starting', 'running', 'stopping', 'backoff')",
                )
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn set_should_run(&self, id: BotId, should_run: bool, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE bots SET should_run = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(should_run)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn set_code_version(&self, id: BotId, version: u32, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE bots SET code_version = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(i64::from(version))
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn delete_bot(&self, id: BotId) -> Result<bool> {
                let done = sqlx::query("DELETE FROM bots WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_secrets(&self, id: BotId, sealed: &[(String, Vec<u8>)], at: DateTime<Utc>) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query("DELETE FROM bot_secrets WHERE bot_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for (name, value) in sealed {
                    sqlx::query("INSERT INTO bot_secrets (bot_id, name, sealed) VALUES ($1, $2, $3)")
                        .bind(id.0)
                        .bind(name)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                sqlx::query("UPDATE bots SET updated_at = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn sealed_secrets(&self, id: BotId) -> Result<Vec<(String, Vec<u8>)>> {
                sqlx::query_as("SELECT name, sealed FROM bot_secrets WHERE bot_id = $1 ORDER BY name")
                    .bind(id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)
            }

            async fn insert_crash(&self, id: BotId, crash: &Crash, keep: u32) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query("INSERT INTO bot_crashes (id, bot_id, exit, last_lines) VALUES ($1, $2, $3, $4)")
                    .bind(Uuid::now_v7())
                    .bind(id.0)
                    .bind(exit_json(&crash.exit))
                    .bind(json(&crash.last_lines))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(
                    "DELETE FROM bot_crashes WHERE bot_id = $1 AND id NOT IN \
                     (SELECT id FROM bot_crashes WHERE bot_id = $1 ORDER BY id DESC LIMIT $2)",
                )
                .bind(id.0)
                .bind(i64::from(keep))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn crashes(&self, id: BotId, limit: u32) -> Result<Vec<Crash>> {
                sqlx::query_as::<_, CrashRow>(
                    "SELECT exit, last_lines FROM bot_crashes WHERE bot_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(id.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(Crash::try_from)
                .collect()
            }
        }
    };
}
pub(crate) use bot_store;
