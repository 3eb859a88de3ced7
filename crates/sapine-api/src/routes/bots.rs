//! Bots: the caller's own programs. Anyone else's bot is 404, exactly like one that does not
//! exist. `{id}` is a bot's id or its name.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use sapine_core::FieldError;
use sapine_core::bots::{
    Bot, BotChanges, BotConfig, BotName, BotStatus, CodeFormat, Command, Crash, EnvVars, ExitInfo, Limits,
    MAX_DESCRIPTION_CHARS, NewBot, RestartMode, RestartPolicy, Sample,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::PageView;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_bot, list_bots))
        .routes(routes!(get_bot, update_bot, delete_bot))
        .routes(routes!(upload_code).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .routes(routes!(start_bot))
        .routes(routes!(stop_bot))
        .routes(routes!(restart_bot))
        .routes(routes!(kill_bot))
        .routes(routes!(put_secrets, list_secrets))
        .routes(routes!(crashes))
        .routes(routes!(bot_metrics))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicyView {
    /// `always`, `on_failure` or `never`.
    #[schema(value_type = String)]
    mode: Option<String>,
    max_restarts: Option<u32>,
    window_ms: Option<u64>,
    backoff_initial_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    min_uptime_ms: Option<u64>,
    stop_timeout_ms: Option<u64>,
}

impl RestartPolicyView {
    fn of(p: &RestartPolicy) -> Self {
        Self {
            mode: Some(p.mode.as_str().to_owned()),
            max_restarts: Some(p.max_restarts),
            window_ms: Some(p.window_ms),
            backoff_initial_ms: Some(p.backoff_initial_ms),
            backoff_max_ms: Some(p.backoff_max_ms),
            min_uptime_ms: Some(p.min_uptime_ms),
            stop_timeout_ms: Some(p.stop_timeout_ms),
        }
    }

    /// Fields left out keep the value of `base`.
    fn parse(self, base: RestartPolicy) -> Result<RestartPolicy, FieldError> {
        RestartPolicy {
            mode: self
                .mode
                .as_deref()
                .map(str::parse::<RestartMode>)
                .transpose()?
                .unwrap_or(base.mode),
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            window_ms: self.window_ms.unwrap_or(base.window_ms),
            backoff_initial_ms: self.backoff_initial_ms.unwrap_or(base.backoff_initial_ms),
            backoff_max_ms: self.backoff_max_ms.unwrap_or(base.backoff_max_ms),
            min_uptime_ms: self.min_uptime_ms.unwrap_or(base.min_uptime_ms),
            stop_timeout_ms: self.stop_timeout_ms.unwrap_or(base.stop_timeout_ms),
        }
        .validate()
    }
}

/// Each limit is capped by the owner's plan; a missing one means the plan's maximum.
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsView {
    memory_mb: Option<u64>,
    cpu_percent: Option<u32>,
    pids: Option<u64>,
    disk_mb: Option<u64>,
}

impl From<LimitsView> for Limits {
    fn from(l: LimitsView) -> Self {
        Limits {
            memory_mb: l.memory_mb,
            cpu_percent: l.cpu_percent,
            pids: l.pids,
            disk_mb: l.disk_mb,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExitView {
    at: DateTime<Utc>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// `exit`, `signal`, `memory_limit`, `pids_limit`, `stopped`, `killed` or `spawn_failed`.
    reason: &'static str,
    uptime_ms: u64,
}

impl From<&ExitInfo> for ExitView {
    fn from(e: &ExitInfo) -> Self {
        Self {
            at: e.at,
            exit_code: e.exit_code,
            signal: e.signal,
            reason: e.reason.as_str(),
            uptime_ms: e.uptime_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BotView {
    id: Uuid,
    name: String,
    description: String,
    owner_id: Uuid,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    /// Names only: values are never returned.
    secret_names: Vec<String>,
    restart_policy: RestartPolicyView,
    limits: LimitsView,
    /// `created`, `starting`, `running`, `stopping`, `stopped`, `backoff` or `failed`.
    status: &'static str,
    pid: Option<u32>,
    started_at: Option<DateTime<Utc>>,
    restarts: u32,
    last_exit: Option<ExitView>,
    code_version: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Bot> for BotView {
    fn from(bot: Bot) -> Self {
        let c = bot.config;
        Self {
            id: bot.id.0,
            name: c.name.as_str().to_owned(),
            description: c.description,
            owner_id: bot.owner.0,
            command: c.command.argv().to_vec(),
            env: c.env.as_map().clone(),
            secret_names: bot.secret_names,
            restart_policy: RestartPolicyView::of(&c.restart_policy),
            limits: LimitsView {
                memory_mb: c.limits.memory_mb,
                cpu_percent: c.limits.cpu_percent,
                pids: c.limits.pids,
                disk_mb: c.limits.disk_mb,
            },
            status: bot.run.status.as_str(),
            pid: bot.run.pid,
            started_at: bot.run.started_at,
            restarts: bot.run.restarts,
            last_exit: bot.run.last_exit.as_ref().map(ExitView::from),
            code_version: bot.code_version,
            created_at: bot.created_at,
            updated_at: bot.updated_at,
        }
    }
}

fn description(raw: String) -> Result<String, FieldError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new("description", "must be at most 1000 characters"));
    }
    Ok(raw)
}

/// Reports every failing field at once, rather than the first one.
fn reject_invalid<const N: usize>(errors: [Option<&FieldError>; N]) -> ApiResult<()> {
    let errors: Vec<FieldError> = errors.into_iter().flatten().cloned().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBotBody {
    name: String,
    /// The program and its arguments, run without a shell, in the bot's code directory.
    command: Vec<String>,
    description: Option<String>,
    env: Option<BTreeMap<String, String>>,
    restart_policy: Option<RestartPolicyView>,
    limits: Option<LimitsView>,
}

impl TryFrom<NewBotBody> for NewBot {
    type Error = ApiError;

    fn try_from(body: NewBotBody) -> ApiResult<Self> {
        let name = BotName::parse(&body.name);
        let command = Command::parse(body.command);
        let env = EnvVars::parse("env", body.env.unwrap_or_default());
        let policy = body.restart_policy.map_or(Ok(RestartPolicy::default()), |p| {
            p.parse(RestartPolicy::default())
        });
        let description = description(body.description.unwrap_or_default());
        reject_invalid([
            name.as_ref().err(),
            command.as_ref().err(),
            env.as_ref().err(),
            policy.as_ref().err(),
            description.as_ref().err(),
        ])?;
        Ok(NewBot {
            config: BotConfig {
                name: name?,
                description: description?,
                command: command?,
                env: env?,
                restart_policy: policy?,
                limits: body.limits.unwrap_or_default().into(),
            },
        })
    }
}

/// Creates a bot; upload its code, then start it.
#[utoipa::path(post, path = "/bots", tag = "bots", security(("bearer" = [])), request_body = NewBotBody, responses(
    (status = 201, body = BotView),
    (status = 401, body = Problem),
    (status = 403, description = "a plan limit (`quota_exceeded`)", body = Problem),
    (status = 409, description = "the caller has a bot of this name", body = Problem),
    (status = 422, body = Problem),
))]
async fn create_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<NewBotBody>,
) -> ApiResult<(StatusCode, Json<BotView>)> {
    let bot = state.bots.create(&caller, body.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(bot.into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BotListParams {
    /// Only bots in this status.
    status: Option<String>,
    /// Page size, 1–200; 50 when absent.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's bots, oldest first.
#[utoipa::path(get, path = "/bots", tag = "bots", security(("bearer" = [])), params(BotListParams), responses(
    (status = 200, body = PageView<BotView>),
    (status = 401, body = Problem),
    (status = 422, body = Problem),
))]
async fn list_bots(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<BotListParams>,
) -> ApiResult<Json<PageView<BotView>>> {
    let page = sapine_core::page::PageRequest::parse(params.limit, params.cursor.as_deref())?;
    let status = params
        .status
        .as_deref()
        .map(str::parse::<BotStatus>)
        .transpose()?;
    let bots = state.bots.list(&caller, status, &page).await?;
    Ok(Json(PageView::new(bots, BotView::from)))
}

/// One bot.
#[utoipa::path(get, path = "/bots/{id}", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name")), responses(
    (status = 200, body = BotView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn get_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BotView>> {
    Ok(Json(state.bots.find(&caller, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotChangesBody {
    name: Option<String>,
    description: Option<String>,
    command: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    /// Fields left out keep their current values.
    restart_policy: Option<RestartPolicyView>,
    limits: Option<LimitsView>,
}

/// Changes a bot's configuration; it applies on the next start.
#[utoipa::path(patch, path = "/bots/{id}", tag = "bots", security(("bearer" = [])), request_body = BotChangesBody,
    params(("id" = String, Path, description = "bot id or name")), responses(
    (status = 200, body = BotView),
    (status = 401, body = Problem),
    (status = 403, description = "a limit above the plan (`quota_exceeded`)", body = Problem),
    (status = 404, body = Problem),
    (status = 409, body = Problem),
    (status = 422, body = Problem),
))]
async fn update_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<BotChangesBody>,
) -> ApiResult<Json<BotView>> {
    let current = state.bots.find(&caller, &id).await?;
    let name = body.name.as_deref().map(BotName::parse).transpose();
    let command = body.command.map(Command::parse).transpose();
    let env = body.env.map(|e| EnvVars::parse("env", e)).transpose();
    let policy = body
        .restart_policy
        .map(|p| p.parse(current.config.restart_policy))
        .transpose();
    let description = body.description.map(description).transpose();
    reject_invalid([
        name.as_ref().err(),
        command.as_ref().err(),
        env.as_ref().err(),
        policy.as_ref().err(),
        description.as_ref().err(),
    ])?;
    let changes = BotChanges {
        name: name?,
        description: description?,
        command: command?,
        env: env?,
        restart_policy: policy?,
        limits: body.limits.map(Limits::from),
    };
    let bot = state.bots.update(&caller, current, changes).await?;
    Ok(Json(bot.into()))
}

/// Stops the bot and deletes it with its code, secrets and history.
#[utoipa::path(delete, path = "/bots/{id}", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name")), responses(
    (status = 204),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn delete_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.bots.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct CodeView {
    /// The new `code_version`.
    version: u32,
    files: u64,
    /// Unpacked size.
    bytes: u64,
}

/// Replaces the bot's code with an archive: `application/gzip` (a `.tar.gz`) or
/// `application/zip`. The running process keeps its version until the next start.
#[utoipa::path(put, path = "/bots/{id}/code", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name")),
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "a .tar.gz or (application/zip) a .zip"),
    responses(
    (status = 200, body = CodeView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 413, description = "over the upload, size, file count or compression ratio limit; the detail names it", body = Problem),
    (status = 415, body = Problem),
    (status = 422, description = "not a valid archive, or an entry that would escape the bot's directory", body = Problem),
))]
async fn upload_code(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CodeView>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let format = match essence.as_str() {
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" => CodeFormat::TarGz,
        "application/zip" | "application/x-zip-compressed" => CodeFormat::Zip,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the archive as application/gzip (.tar.gz) or application/zip",
            ));
        }
    };
    let (version, info) = state
        .bots
        .upload_code(&caller, &id, format, body.to_vec())
        .await?;
    Ok(Json(CodeView {
        version,
        files: info.files,
        bytes: info.bytes,
    }))
}

macro_rules! lifecycle_endpoint {
    ($fn:ident, $action:literal, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = concat!("/bots/{id}/", $action), tag = "bots", security(("bearer" = [])),
            params(("id" = String, Path, description = "bot id or name")), responses(
            (status = 202, body = BotView),
            (status = 401, body = Problem),
            (status = 404, body = Problem),
            (status = 409, description = "no code uploaded yet (`invalid_state`)", body = Problem),
            (status = 503, description = "this server cannot sandbox bots (`runtime_unavailable`)", body = Problem),
        ))]
        async fn $fn(
            State(state): State<AppState>,
            Authenticated(caller): Authenticated,
            ApiPath(id): ApiPath<String>,
        ) -> ApiResult<(StatusCode, Json<BotView>)> {
            let bot = state.bots.$method(&caller, &id).await?;
            Ok((StatusCode::ACCEPTED, Json(bot.into())))
        }
    };
}

lifecycle_endpoint!(
    start_bot,
    "start",
    start,
    "Starts the bot and keeps it running under its restart policy."
);
lifecycle_endpoint!(
    stop_bot,
    "stop",
    stop,
    "Stops the bot: SIGTERM to its processes, SIGKILL after `stop_timeout_ms`."
);
lifecycle_endpoint!(
    restart_bot,
    "restart",
    restart,
    "Stops the bot if it runs and starts it again with its current code and configuration."
);
lifecycle_endpoint!(kill_bot, "kill", kill, "Kills the bot's processes at once.");

/// Replaces the bot's secrets: each becomes an environment variable of the bot's next start.
/// Values are encrypted at rest and never returned.
#[utoipa::path(put, path = "/bots/{id}/secrets", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name")),
    request_body(content = BTreeMap<String, String>, description = "secret names and values"), responses(
    (status = 204),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 422, body = Problem),
))]
async fn put_secrets(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(secrets): ApiJson<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    state.bots.replace_secrets(&caller, &id, secrets).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SecretNamesView {
    names: Vec<String>,
}

/// The names of the bot's secrets.
#[utoipa::path(get, path = "/bots/{id}/secrets", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name")), responses(
    (status = 200, body = SecretNamesView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn list_secrets(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SecretNamesView>> {
    let bot = state.bots.find(&caller, &id).await?;
    Ok(Json(SecretNamesView {
        names: bot.secret_names,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CrashView {
    at: DateTime<Utc>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// `exit`, `signal`, `memory_limit`, `pids_limit` or `spawn_failed`.
    reason: &'static str,
    uptime_ms: u64,
    /// The bot's last lines of output before it ended, oldest first.
    last_lines: Vec<String>,
}

impl From<Crash> for CrashView {
    fn from(c: Crash) -> Self {
        Self {
            at: c.exit.at,
            exit_code: c.exit.exit_code,
            signal: c.exit.signal,
            reason: c.exit.reason.as_str(),
            uptime_ms: c.exit.uptime_ms,
            last_lines: c.last_lines,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CrashesView {
    items: Vec<CrashView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CrashParams {
    /// How many, 1–100; 20 when absent.
    limit: Option<u32>,
}

/// The bot's crashes, newest first.
#[utoipa::path(get, path = "/bots/{id}/crashes", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name"), CrashParams), responses(
    (status = 200, body = CrashesView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn crashes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<CrashParams>,
) -> ApiResult<Json<CrashesView>> {
    let limit = match params.limit {
        None => 20,
        Some(n @ 1..=100) => n,
        Some(_) => return Err(FieldError::new("limit", "must be between 1 and 100").into()),
    };
    let items = state.bots.crashes(&caller, &id, limit).await?;
    Ok(Json(CrashesView {
        items: items.into_iter().map(CrashView::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Start of the range, RFC 3339; an hour before `until` when absent.
    since: Option<String>,
    /// End of the range (exclusive), RFC 3339; now when absent.
    until: Option<String>,
    /// Bucket width: whole seconds (`60`) or with a unit (`60s`, `5m`, `1h`, `1d`), from 1 s to
    /// 90 days, at most 10000 buckets per answer. Rounded up to whole buckets of the series read
    /// (raw samples for ranges starting within 24 h, minutes within 7 days, hours within 90 days).
    /// When absent, the finest step giving at most 1000 buckets.
    step: Option<String>,
}

/// One bucket of a bot's series. Fields the platform cannot see for this bot are null.
#[derive(Serialize, ToSchema)]
pub struct SampleView {
    /// Start of the bucket.
    ts: DateTime<Utc>,
    /// Average CPU use over the bucket; 100 is one core fully busy.
    cpu_percent: Option<f64>,
    /// Highest memory use seen in the bucket.
    memory_bytes: Option<u64>,
    /// How long the bot's current run had lasted at the bucket's last sample.
    uptime_ms: u64,
    /// The bot's restart count at the bucket's last sample.
    restarts: u32,
    /// Bytes read from storage during the bucket.
    disk_read_bytes: Option<u64>,
    /// Bytes written to storage during the bucket.
    disk_write_bytes: Option<u64>,
    /// Bytes received during the bucket; known only for bots in a network namespace of their own.
    net_rx_bytes: Option<u64>,
    /// Bytes sent during the bucket; known only like `net_rx_bytes`.
    net_tx_bytes: Option<u64>,
}

impl From<Sample> for SampleView {
    fn from(s: Sample) -> Self {
        Self {
            ts: s.ts,
            cpu_percent: s.cpu_percent.map(|p| (p * 100.0).round() / 100.0),
            memory_bytes: s.memory_bytes,
            uptime_ms: s.uptime_ms,
            restarts: s.restarts,
            disk_read_bytes: s.disk_read_bytes,
            disk_write_bytes: s.disk_write_bytes,
            net_rx_bytes: s.net_rx_bytes,
            net_tx_bytes: s.net_tx_bytes,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MetricsView {
    /// Oldest first; buckets without samples (the bot was not running) are left out.
    samples: Vec<SampleView>,
}

/// The bot's resource use over time, sampled while it runs.
#[utoipa::path(get, path = "/bots/{id}/metrics", tag = "bots", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name"), MetricsParams), responses(
    (status = 200, body = MetricsView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 422, description = "a bad `since`, `until` or `step`; `errors` names it", body = Problem),
))]
async fn bot_metrics(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<MetricsParams>,
) -> ApiResult<Json<MetricsView>> {
    let query = state
        .bot_metrics
        .query(
            params.since.as_deref(),
            params.until.as_deref(),
            params.step.as_deref(),
        )
        .map_err(ApiError::validation)?;
    let samples = state.bot_metrics.series(&caller, &id, &query).await?;
    Ok(Json(MetricsView {
        samples: samples.into_iter().map(SampleView::from).collect(),
    }))
}
