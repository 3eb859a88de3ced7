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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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

/// For teams: several API instances share one PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(db_error)?;
        Ok(Self { pool })
    }
}

account_store!(PgStore);
bot_store!(PgStore);
metric_store!(PgStore);

#[async_trait]
impl Database for PgStore {
    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
