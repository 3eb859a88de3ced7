//! The storage port for bots, their secrets and their crash history.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Bot, BotConfig, BotId, BotName, BotStatus, Crash, RunState};
use crate::StoreError;
use crate::accounts::UserId;
use crate::page::PageRequest;

type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait BotStore: Send + Sync + 'static {
    /// Fails with `Conflict("name")` when the owner already has a bot of that name.
    async fn insert_bot(&self, bot: &Bot) -> Result<()>;
    async fn bot(&self, id: BotId) -> Result<Option<Bot>>;
    async fn bot_by_name(&self, owner: UserId, name: &BotName) -> Result<Option<Bot>>;
    /// The owner's bots ordered by id, optionally only those in one status.
    async fn list_bots(
        &self,
        owner: UserId,
        status: Option<BotStatus>,
        page: &PageRequest,
    ) -> Result<Vec<Bot>>;
    async fn count_bots(&self, owner: UserId) -> Result<u64>;
    /// How many bots of all owners are in each status; statuses without bots are left out.
    async fn count_by_status(&self) -> Result<Vec<(BotStatus, u64)>>;
    /// Every bot of the owner, for stopping or removing them all.
    async fn bots_of(&self, owner: UserId) -> Result<Vec<Bot>>;
    /// Every bot whose owner wants it running.
    async fn bots_to_run(&self) -> Result<Vec<Bot>>;
    /// Fails with `Conflict("name")` like `insert_bot`.
    async fn update_config(&self, id: BotId, config: &BotConfig, at: DateTime<Utc>) -> Result<()>;
    async fn set_run_state(&self, id: BotId, run: &RunState) -> Result<()>;
    /// Marks every bot that was starting, running, stopping or waiting to restart as stopped,
    /// without a pid: at start-up, no process of a previous server is left.
    async fn reset_run_states(&self) -> Result<()>;
    async fn set_should_run(&self, id: BotId, should_run: bool, at: DateTime<Utc>) -> Result<()>;
    async fn set_code_version(&self, id: BotId, version: u32, at: DateTime<Utc>) -> Result<()>;
    /// Removes the bot with its secrets and crashes; false when there was none.
    async fn delete_bot(&self, id: BotId) -> Result<bool>;

    /// Replaces every secret of the bot with these sealed values.
    async fn replace_secrets(&self, id: BotId, sealed: &[(String, Vec<u8>)], at: DateTime<Utc>)
    -> Result<()>;
    async fn sealed_secrets(&self, id: BotId) -> Result<Vec<(String, Vec<u8>)>>;

    /// Records a crash and keeps only the newest `keep`.
    async fn insert_crash(&self, id: BotId, crash: &Crash, keep: u32) -> Result<()>;
    /// Newest first.
    async fn crashes(&self, id: BotId, limit: u32) -> Result<Vec<Crash>>;
}
