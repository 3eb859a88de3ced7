//! Storage adapters. Each backend has its own concrete pool and migrations; the SQL itself is
//! written once (see `accounts.rs`, `bots.rs` and `metrics.rs`), in the dialect both SQLite and PostgreSQL accept.

mod accounts;
mod bot_rows;
mod bots;
mod errors;
mod metrics;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use sapine_core::StoreError;
use sapine_core::accounts::AccountStore;
use sapine_core::bots::{BotStore, MetricStore};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Everything the server keeps, behind one handle.
#[async_trait]
pub trait Database: AccountStore + BotStore + MetricStore {
    /// Applies pending migrations; safe to run at every start.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// "sqlite" or "postgres", for logs and readiness answers.
    fn backend(&self) -> &'static str;
}

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
}

/// Opens the database a URL names: `sqlite://PATH` or `postgres://...`.
pub async fn connect(url: &str, options: &PoolOptions) -> Result<Arc<dyn Database>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL scheme in {:?}: use sqlite:// or postgres://",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
