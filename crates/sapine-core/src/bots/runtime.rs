//! The port to whatever runs bots (sandboxed processes now, an orchestrator later), and the
//! observer through which it reports what happened to them.

use async_trait::async_trait;

use super::{BotId, Command, Crash, ResolvedLimits, RestartPolicy, RunState, Usage};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFormat {
    TarGz,
    Zip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub files: u64,
    pub bytes: u64,
}

/// Everything one run of a bot needs. Its `Debug` leaves out the environment, which holds
/// decrypted secrets.
#[derive(Clone)]
pub struct RunSpec {
    pub bot: BotId,
    pub code_version: u32,
    pub command: Command,
    /// The bot's environment and its decrypted secrets: nothing of the server's.
    pub env: Vec<(String, String)>,
    pub policy: RestartPolicy,
    pub limits: ResolvedLimits,
    /// Restarts already counted for this bot, so the number keeps growing across starts.
    pub restarts: u32,
}

impl std::fmt::Debug for RunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("bot", &self.bot)
            .field("code_version", &self.code_version)
            .field("command", &self.command)
            .field("env", &format_args!("{} variables", self.env.len()))
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .field("restarts", &self.restarts)
            .finish()
    }
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Why bots cannot run on this server, if they cannot.
    fn unavailable_reason(&self) -> Option<String>;
    /// Unpacks an archive as the bot's code `version`, leaving the current code untouched on
    /// failure. `Validation`, `TooLarge` and `InvalidState` errors say what was wrong.
    async fn install_code(
        &self,
        bot: BotId,
        version: u32,
        format: CodeFormat,
        archive: Vec<u8>,
        max_unpacked_bytes: u64,
    ) -> Result<CodeInfo, Error>;
    /// Starts supervising a run; a bot already supervised is left as it is.
    async fn start(&self, spec: RunSpec) -> Result<(), Error>;
    /// Stops the bot: SIGTERM to its whole process tree, SIGKILL after its stop timeout.
    /// Returns once it is gone.
    async fn stop(&self, bot: BotId);
    /// Kills the bot's whole process tree at once; returns once it is gone.
    async fn kill(&self, bot: BotId);
    /// Stops the bot if it runs and deletes its code and files.
    async fn remove(&self, bot: BotId);
    /// Ends every process a previous server left behind, before bots are brought back: the
    /// server that calls it takes the data dir over.
    async fn clean_up_leftovers(&self);
    /// Stops every bot without changing what should run: for a server shutting down.
    async fn shutdown(&self);
    /// What each bot with a live process uses now, as far as this runtime can see.
    async fn usage(&self) -> Vec<(BotId, Usage)>;
}

/// Receives what happens to bots as it happens; the bot service persists it.
#[async_trait]
pub trait RunObserver: Send + Sync + 'static {
    async fn run_state(&self, bot: BotId, state: RunState);
    async fn crashed(&self, bot: BotId, crash: Crash);
}
