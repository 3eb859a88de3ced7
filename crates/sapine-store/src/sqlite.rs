use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sapine_core::StoreError;
use sapine_core::accounts::{
    Email, MailedToken, RefreshOutcome, Session, SessionId, TokenHash, TokenPurpose, User, UserId, UserRecord,
};
use sapine_core::bots::{Bot, BotConfig, BotId, BotName, BotStatus, Crash, RunState};
use sapine_core::page::PageRequest;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use crate::accounts::account_store;
use crate::bot_rows::{
    BotRow, CrashRow, bot_columns, command_json, env_json, exit_json, json, limits_json, policy_json,
};
use crate::bots::bot_store;
use crate::errors::{classify, db_error};
use crate::rows::{SessionRow, UserRow, contains_pattern, session_columns, user_columns};
use crate::{Database, PoolOptions};

type Result<T> = std::result::Result<T, StoreError>;

/// The embedded default: one file in the data dir.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            // WAL lets readers proceed while one connection writes; the busy timeout makes a
            // writer wait for the lock instead of failing at once.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(1)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(connect)
            .await
            .map_err(db_error)?;
        Ok(Self { pool })
    }
}

account_store!(SqliteStore);
bot_store!(SqliteStore);

#[async_trait]
impl Database for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
