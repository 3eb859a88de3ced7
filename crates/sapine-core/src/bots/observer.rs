//! Persists what the runtime reports about bots.

use std::sync::Arc;

use async_trait::async_trait;

use super::{BotId, BotStatus, BotStore, CRASHES_KEPT, Crash, ExitReason, RunObserver, RunState};
use crate::clock::Clock;

pub struct StoreObserver {
    store: Arc<dyn BotStore>,
    clock: Arc<dyn Clock>,
}

impl StoreObserver {
    pub fn new(store: Arc<dyn BotStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

#[async_trait]
impl RunObserver for StoreObserver {
    async fn run_state(&self, bot: BotId, state: RunState) {
        // A run that ended by itself (finished, or gave up) is not brought back by a restarted
        // server; one stopped because the server is shutting down is.
        let finished = match state.status {
            BotStatus::Failed => true,
            BotStatus::Stopped => state
                .last_exit
                .as_ref()
                .is_some_and(|e| e.reason != ExitReason::Stopped && e.reason != ExitReason::Killed),
            _ => false,
        };
        if let Err(e) = self.store.set_run_state(bot, &state).await {
            tracing::error!(bot = %bot, error = %e, "cannot record a bot's state");
        }
        if finished && let Err(e) = self.store.set_should_run(bot, false, self.clock.now()).await {
            tracing::error!(bot = %bot, error = %e, "cannot record that a bot finished");
        }
    }

    async fn crashed(&self, bot: BotId, crash: Crash) {
        if let Err(e) = self.store.insert_crash(bot, &crash, CRASHES_KEPT).await {
            tracing::error!(bot = %bot, error = %e, "cannot record a crash");
        }
    }
}
