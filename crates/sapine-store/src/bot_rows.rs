//! Bot rows and the JSON forms of a bot's structured settings.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sapine_core::StoreError;
use sapine_core::accounts::UserId;
use sapine_core::bots::{
    Bot, BotConfig, BotId, BotName, BotStatus, Command, Crash, EnvVars, ExitInfo, ExitReason, Limits,
    RestartMode, RestartPolicy, RunState,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct BotRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    description: String,
    command: String,
    env: String,
    restart_policy: String,
    limits: String,
    status: String,
    pid: Option<i64>,
    started_at: Option<DateTime<Utc>>,
    restarts: i64,
    last_exit: Option<String>,
    should_run: bool,
    code_version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    secret_names: Option<String>,
}

/// The columns `BotRow` reads, secret names folded into one text with a correlated subquery.
macro_rules! bot_columns {
    () => {
        "id, owner_id, name, description, command, env, restart_policy, limits, status, pid, started_at, \
         restarts, last_exit, should_run, code_version, created_at, updated_at, \
         (SELECT string_agg(name, ',' ORDER BY name) FROM bot_secrets s WHERE s.bot_id = bots.id) \
         AS secret_names"
    };
}
pub(crate) use bot_columns;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bot {what}: {e}"))
}

fn field(what: &'static str) -> impl Fn(sapine_core::FieldError) -> StoreError {
    move |e| corrupt(what, e.message)
}

#[derive(Serialize, Deserialize)]
struct PolicyJson {
    mode: String,
    max_restarts: u32,
    window_ms: u64,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
    min_uptime_ms: u64,
    stop_timeout_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct LimitsJson {
    memory_mb: Option<u64>,
    cpu_percent: Option<u32>,
    pids: Option<u64>,
    disk_mb: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ExitJson {
    at: DateTime<Utc>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    reason: String,
    uptime_ms: u64,
}

pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

pub(crate) fn command_json(command: &Command) -> String {
    json(&command.argv())
}

pub(crate) fn env_json(env: &EnvVars) -> String {
    json(env.as_map())
}

pub(crate) fn policy_json(p: &RestartPolicy) -> String {
    json(&PolicyJson {
        mode: p.mode.as_str().into(),
        max_restarts: p.max_restarts,
        window_ms: p.window_ms,
        backoff_initial_ms: p.backoff_initial_ms,
        backoff_max_ms: p.backoff_max_ms,
        min_uptime_ms: p.min_uptime_ms,
        stop_timeout_ms: p.stop_timeout_ms,
    })
}

pub(crate) fn limits_json(l: &Limits) -> String {
    json(&LimitsJson {
        memory_mb: l.memory_mb,
        cpu_percent: l.cpu_percent,
        pids: l.pids,
        disk_mb: l.disk_mb,
    })
}

pub(crate) fn exit_json(e: &ExitInfo) -> String {
    json(&ExitJson {
        at: e.at,
        exit_code: e.exit_code,
        signal: e.signal,
        reason: e.reason.as_str().into(),
        uptime_ms: e.uptime_ms,
    })
}

fn parse_exit(text: &str) -> Result<ExitInfo, StoreError> {
    let e: ExitJson = serde_json::from_str(text).map_err(|e| corrupt("exit", e))?;
    Ok(ExitInfo {
        at: e.at,
        exit_code: e.exit_code,
        signal: e.signal,
        reason: ExitReason::from_str(&e.reason).map_err(|e| corrupt("exit reason", e))?,
        uptime_ms: e.uptime_ms,
    })
}

impl TryFrom<BotRow> for Bot {
    type Error = StoreError;

    fn try_from(row: BotRow) -> Result<Self, StoreError> {
        let argv: Vec<String> = serde_json::from_str(&row.command).map_err(|e| corrupt("command", e))?;
        let env: BTreeMap<String, String> = serde_json::from_str(&row.env).map_err(|e| corrupt("env", e))?;
        let p: PolicyJson = serde_json::from_str(&row.restart_policy).map_err(|e| corrupt("policy", e))?;
        let l: LimitsJson = serde_json::from_str(&row.limits).map_err(|e| corrupt("limits", e))?;
        Ok(Bot {
            id: BotId(row.id),
            owner: UserId(row.owner_id),
            config: BotConfig {
                name: BotName::parse(&row.name).map_err(field("name"))?,
                description: row.description,
                command: Command::parse(argv).map_err(field("command"))?,
                env: EnvVars::parse("env", env).map_err(field("env"))?,
                restart_policy: RestartPolicy {
                    mode: RestartMode::from_str(&p.mode).map_err(field("mode"))?,
                    max_restarts: p.max_restarts,
                    window_ms: p.window_ms,
                    backoff_initial_ms: p.backoff_initial_ms,
                    backoff_max_ms: p.backoff_max_ms,
                    min_uptime_ms: p.min_uptime_ms,
                    stop_timeout_ms: p.stop_timeout_ms,
                },
                limits: Limits {
                    memory_mb: l.memory_mb,
                    cpu_percent: l.cpu_percent,
                    pids: l.pids,
                    disk_mb: l.disk_mb,
                },
            },
            secret_names: row
                .secret_names
                .map(|names| names.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            run: RunState {
                status: BotStatus::from_str(&row.status).map_err(field("status"))?,
                pid: row.pid.and_then(|p| u32::try_from(p).ok()),
                started_at: row.started_at,
                restarts: u32::try_from(row.restarts).map_err(|e| corrupt("restarts", e))?,
                last_exit: row.last_exit.as_deref().map(parse_exit).transpose()?,
            },
            should_run: row.should_run,
            code_version: u32::try_from(row.code_version).map_err(|e| corrupt("code_version", e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CrashRow {
    exit: String,
    last_lines: String,
}

impl TryFrom<CrashRow> for Crash {
    type Error = StoreError;

    fn try_from(row: CrashRow) -> Result<Self, StoreError> {
        Ok(Crash {
            exit: parse_exit(&row.exit)?,
            last_lines: serde_json::from_str(&row.last_lines).map_err(|e| corrupt("last lines", e))?,
        })
    }
}
