use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sapine_core::StoreError;
use sapine_core::accounts::{
    Email, MailedToken, RefreshOutcome, Session, SessionId, TokenHash, TokenPurpose, User, UserId, UserRecord,
};
use sapine_core::bots::{Aggregate, Bot, BotConfig, BotId, BotName, BotStatus, Crash, Resolution, RunState};
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
use crate::metrics::{MetricRow, metric_store, signed};
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
        let file = connect.get_filename().to_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(1)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(connect)
            .await
            .map_err(db_error)?;
        keep_private(&file);
        Ok(Self { pool })
    }
}

/// The database holds password hashes and sealed secrets: only the server may read it, however
/// open the directory around it is. SQLite gives its WAL and shared-memory files the same mode.
fn keep_private(file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if path.is_file()
            && let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the database private");
        }
    }
}

account_store!(SqliteStore);
bot_store!(SqliteStore);
metric_store!(SqliteStore);

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
