//! A bot and the values it is made of, each parsed once at the edge.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::FieldError;
use crate::accounts::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotId(pub Uuid);

impl BotId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for BotId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter: safe in URLs, paths and
/// host names alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotName(String);

impl BotName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if crate::slug::is_slug(raw, 63) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "name",
                "must be 1–63 characters of a-z, 0-9 and -, starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The program and its arguments, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(Vec<String>);

impl Command {
    const MAX_ARGS: usize = 256;
    const MAX_BYTES: usize = 16 * 1024;

    pub fn parse(argv: Vec<String>) -> Result<Self, FieldError> {
        let invalid = |m: &str| FieldError::new("command", m);
        match argv.first() {
            None => return Err(invalid("must name a program to run")),
            Some(program) if program.trim().is_empty() => {
                return Err(invalid("must name a program to run"));
            }
            Some(_) => {}
        }
        if argv.len() > Self::MAX_ARGS {
            return Err(invalid("must have at most 256 arguments"));
        }
        if argv.iter().map(String::len).sum::<usize>() > Self::MAX_BYTES {
            return Err(invalid("must be at most 16 KiB in all"));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(invalid("must not contain NUL characters"));
        }
        Ok(Self(argv))
    }

    pub fn argv(&self) -> &[String] {
        &self.0
    }
}

/// Environment variables: names a shell accepts, values without NUL, bounded in count and size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    const MAX_VARS: usize = 128;
    const MAX_VALUE_BYTES: usize = 32 * 1024;

    pub fn parse(field: &str, vars: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if vars.len() > Self::MAX_VARS {
            return Err(FieldError::new(field, "must have at most 128 entries"));
        }
        for (name, value) in &vars {
            if !is_env_name(name) {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{name:?} is not a valid name: use A-Z, a-z, 0-9 and _, not starting with a digit"
                    ),
                ));
            }
            if value.len() > Self::MAX_VALUE_BYTES || value.contains('\0') {
                return Err(FieldError::new(
                    field,
                    format!("the value of {name} must be at most 32 KiB, without NUL"),
                ));
            }
        }
        Ok(Self(vars))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

pub fn is_env_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    Always,
    OnFailure,
    Never,
}

impl RestartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::Always => "always",
            RestartMode::OnFailure => "on_failure",
            RestartMode::Never => "never",
        }
    }
}

impl FromStr for RestartMode {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        match s {
            "always" => Ok(RestartMode::Always),
            "on_failure" => Ok(RestartMode::OnFailure),
            "never" => Ok(RestartMode::Never),
            _ => Err(FieldError::new(
                "restart_policy.mode",
                "must be one of: always, on_failure, never",
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    pub max_restarts: u32,
    pub window_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub min_uptime_ms: u64,
    pub stop_timeout_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            mode: RestartMode::Always,
            max_restarts: 10,
            window_ms: 60_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            min_uptime_ms: 5_000,
            stop_timeout_ms: 10_000,
        }
    }
}

impl RestartPolicy {
    const DAY_MS: u64 = 86_400_000;

    pub fn validate(self) -> Result<Self, FieldError> {
        let field = |name: &str, message: &str| FieldError::new(format!("restart_policy.{name}"), message);
        for (name, value) in [
            ("window_ms", self.window_ms),
            ("backoff_initial_ms", self.backoff_initial_ms),
            ("backoff_max_ms", self.backoff_max_ms),
            ("min_uptime_ms", self.min_uptime_ms),
        ] {
            if value > Self::DAY_MS {
                return Err(field(name, "must be at most 86400000 (a day)"));
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(field(
                "backoff_max_ms",
                "must not be less than backoff_initial_ms",
            ));
        }
        if !(1..=10_000).contains(&self.max_restarts) {
            return Err(field("max_restarts", "must be between 1 and 10000"));
        }
        if self.window_ms == 0 {
            return Err(field("window_ms", "must be more than 0"));
        }
        if !(100..=600_000).contains(&self.stop_timeout_ms) {
            return Err(field("stop_timeout_ms", "must be between 100 and 600000"));
        }
        Ok(self)
    }

    /// The wait before the `attempt`-th consecutive restart (1-based): doubling from the
    /// initial backoff up to the maximum.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(40);
        self.backoff_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max_ms)
    }
}

/// Resource limits of one bot; `None` means the plan's maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_mb: Option<u64>,
    pub cpu_percent: Option<u32>,
    pub pids: Option<u64>,
    pub disk_mb: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotStatus {
    Created,
    Starting,
    Running,
    Stopping,
    Stopped,
    Backoff,
    Failed,
}

impl BotStatus {
    pub const ALL: [BotStatus; 7] = [
        BotStatus::Created,
        BotStatus::Starting,
        BotStatus::Running,
        BotStatus::Stopping,
        BotStatus::Stopped,
        BotStatus::Backoff,
        BotStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BotStatus::Created => "created",
            BotStatus::Starting => "starting",
            BotStatus::Running => "running",
            BotStatus::Stopping => "stopping",
            BotStatus::Stopped => "stopped",
            BotStatus::Backoff => "backoff",
            BotStatus::Failed => "failed",
        }
    }

    /// Whether a process of the bot exists or is about to.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            BotStatus::Starting | BotStatus::Running | BotStatus::Stopping | BotStatus::Backoff
        )
    }
}

impl FromStr for BotStatus {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        BotStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                FieldError::new(
                    "status",
                    "must be one of: created, starting, running, stopping, stopped, backoff, failed",
                )
            })
    }
}

/// Why a run ended, as crash records and `last_exit` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Exit,
    Signal,
    MemoryLimit,
    PidsLimit,
    Stopped,
    Killed,
    SpawnFailed,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exit => "exit",
            ExitReason::Signal => "signal",
            ExitReason::MemoryLimit => "memory_limit",
            ExitReason::PidsLimit => "pids_limit",
            ExitReason::Stopped => "stopped",
            ExitReason::Killed => "killed",
            ExitReason::SpawnFailed => "spawn_failed",
        }
    }
}

impl FromStr for ExitReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            ExitReason::Exit,
            ExitReason::Signal,
            ExitReason::MemoryLimit,
            ExitReason::PidsLimit,
            ExitReason::Stopped,
            ExitReason::Killed,
            ExitReason::SpawnFailed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("unknown exit reason {s:?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub at: DateTime<Utc>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    pub uptime_ms: u64,
}

impl ExitInfo {
    /// A run that ended on its own with code 0; anything else counts as a failure.
    pub fn is_success(&self) -> bool {
        self.reason == ExitReason::Exit && self.exit_code == Some(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    pub exit: ExitInfo,
    pub last_lines: Vec<String>,
}

/// What the owner configures; applies on the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotConfig {
    pub name: BotName,
    pub description: String,
    pub command: Command,
    pub env: EnvVars,
    pub restart_policy: RestartPolicy,
    pub limits: Limits,
}

/// Where the bot is in its life, as the supervisor last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub status: BotStatus,
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
}

impl RunState {
    pub fn created() -> Self {
        Self {
            status: BotStatus::Created,
            pid: None,
            started_at: None,
            restarts: 0,
            last_exit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub id: BotId,
    pub owner: UserId,
    pub config: BotConfig,
    pub secret_names: Vec<String>,
    pub run: RunState,
    /// Whether the owner wants it running; a restarted server brings back exactly these.
    pub should_run: bool,
    pub code_version: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = RestartPolicy {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..RestartPolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| policy.backoff_ms(n)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(policy.backoff_ms(u32::MAX), 1_000);
    }

    #[test]
    fn names_commands_and_env_are_checked() {
        assert!(BotName::parse("my-bot-2").is_ok());
        for bad in ["", "2bot", "Bot", "a_b", &"a".repeat(64)] {
            assert!(BotName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Command::parse(vec![]).is_err());
        assert!(Command::parse(vec!["python3".into(), "bot.py".into()]).is_ok());
        let env = |k: &str| EnvVars::parse("env", BTreeMap::from([(k.to_owned(), "v".to_owned())]));
        assert!(env("TOKEN_1").is_ok());
        assert!(env("1X").is_err() && env("A-B").is_err() && env("").is_err());
    }
}
