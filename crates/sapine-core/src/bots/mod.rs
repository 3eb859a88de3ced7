//! Bots: users' programs, their code, secrets and limits, and the rules for running them. The
//! running itself happens behind the `Runtime` port; what it reports comes back through
//! `RunObserver` and is persisted here.

mod logs;
mod metrics;
mod observer;
mod plan;
mod runtime;
mod secrets;
mod store;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use logs::{
    FeedEnd, LogBatch, LogBook, LogFeed, LogFilter, LogLimits, LogLine, LogPage, LogSearch, LogStream,
    MAX_LINE_BYTES,
};
pub use metrics::{Aggregate, BotMetrics, MetricStore, MetricsQuery, Resolution, Sample, Usage};
pub use observer::StoreObserver;
pub use plan::{PlanLimits, Plans, ResolvedLimits};
pub use runtime::{CodeFormat, CodeInfo, RunObserver, RunSpec, Runtime};
pub use secrets::SecretBox;
pub use store::BotStore;
pub use types::{
    Bot, BotConfig, BotId, BotName, BotStatus, Command, Crash, EnvVars, ExitInfo, ExitReason, Limits,
    RestartMode, RestartPolicy, RunState, is_env_name,
};

use crate::accounts::{AccountStore, Caller, UserId, UserLifecycle};
use crate::clock::Clock;
use crate::page::{Page, PageRequest};
use crate::{Error, Result};

/// How many crash records a bot keeps.
pub const CRASHES_KEPT: u32 = 100;

/// A new bot as its owner describes it.
pub struct NewBot {
    pub config: BotConfig,
}

/// Changes to a bot's configuration; `None` leaves a field as it is.
#[derive(Default)]
pub struct BotChanges {
    pub name: Option<BotName>,
    pub description: Option<String>,
    pub command: Option<Command>,
    pub env: Option<EnvVars>,
    pub restart_policy: Option<RestartPolicy>,
    pub limits: Option<Limits>,
}

pub const MAX_DESCRIPTION_CHARS: usize = 1000;

pub struct Bots {
    store: Arc<dyn BotStore>,
    users: Arc<dyn AccountStore>,
    runtime: Arc<dyn Runtime>,
    logs: Arc<dyn LogBook>,
    clock: Arc<dyn Clock>,
    secrets: SecretBox,
    plans: Plans,
}

/// The ports `Bots` acts through.
pub struct BotPorts {
    pub store: Arc<dyn BotStore>,
    pub users: Arc<dyn AccountStore>,
    pub runtime: Arc<dyn Runtime>,
    pub logs: Arc<dyn LogBook>,
    pub clock: Arc<dyn Clock>,
}

impl Bots {
    pub fn new(ports: BotPorts, secrets: SecretBox, plans: Plans) -> Self {
        Self {
            store: ports.store,
            users: ports.users,
            runtime: ports.runtime,
            logs: ports.logs,
            clock: ports.clock,
            secrets,
            plans,
        }
    }

    /// One of the caller's bots, by id or by name; anyone else's is not found.
    pub async fn find(&self, caller: &Caller, key: &str) -> Result<Bot> {
        let owner = caller.user.id;
        if let Ok(id) = uuid::Uuid::parse_str(key)
            && let Some(bot) = self.store.bot(BotId(id)).await?.filter(|b| b.owner == owner)
        {
            return Ok(bot);
        }
        // A name may look like a UUID (hex digits and dashes), so names are tried too.
        match BotName::parse(key) {
            Ok(name) => self.store.bot_by_name(owner, &name).await?.ok_or(Error::NotFound),
            Err(_) => Err(Error::NotFound),
        }
    }

    pub async fn create(&self, caller: &Caller, new: NewBot) -> Result<Bot> {
        let plan = self.plans.of(&caller.user.plan);
        let owned = self.store.count_bots(caller.user.id).await?;
        if owned >= u64::from(plan.max_bots) {
            return Err(Error::QuotaExceeded(format!(
                "your plan allows {} bots (max_bots)",
                plan.max_bots
            )));
        }
        plan.resolve(new.config.limits)?;
        let now = self.clock.now();
        let bot = Bot {
            id: BotId::new(),
            owner: caller.user.id,
            config: new.config,
            secret_names: Vec::new(),
            run: RunState::created(),
            should_run: false,
            code_version: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_bot(&bot).await.map_err(name_clash)?;
        tracing::info!(bot = %bot.id, owner = %bot.owner, "bot created");
        Ok(bot)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<BotStatus>,
        page: &PageRequest,
    ) -> Result<Page<Bot>> {
        let bots = self.store.list_bots(caller.user.id, status, page).await?;
        Ok(Page::from_rows(bots, page, |b| b.id.0))
    }

    /// Changes `bot`, which the caller got from `find`: partial changes are made against it.
    pub async fn update(&self, caller: &Caller, mut bot: Bot, changes: BotChanges) -> Result<Bot> {
        let config = &mut bot.config;
        if let Some(name) = changes.name {
            config.name = name;
        }
        if let Some(description) = changes.description {
            config.description = description;
        }
        if let Some(command) = changes.command {
            config.command = command;
        }
        if let Some(env) = changes.env {
            config.env = env;
        }
        if let Some(policy) = changes.restart_policy {
            config.restart_policy = policy;
        }
        if let Some(limits) = changes.limits {
            self.plans.of(&caller.user.plan).resolve(limits)?;
            config.limits = limits;
        }
        bot.updated_at = self.clock.now();
        self.store
            .update_config(bot.id, &bot.config, bot.updated_at)
            .await
            .map_err(name_clash)?;
        Ok(bot)
    }

    pub async fn delete(&self, caller: &Caller, key: &str) -> Result<()> {
        let bot = self.find(caller, key).await?;
        self.remove(bot.id).await
    }

    async fn remove(&self, id: BotId) -> Result<()> {
        self.store.set_should_run(id, false, self.clock.now()).await?;
        self.runtime.remove(id).await;
        self.logs.remove(id).await;
        self.store.delete_bot(id).await?;
        tracing::info!(bot = %id, "bot deleted");
        Ok(())
    }

    /// Unpacks a new version of the bot's code; the running version is left alone until the
    /// next start.
    pub async fn upload_code(
        &self,
        caller: &Caller,
        key: &str,
        format: CodeFormat,
        archive: Vec<u8>,
    ) -> Result<(u32, CodeInfo)> {
        let bot = self.find(caller, key).await?;
        let plan = self.plans.of(&caller.user.plan);
        let max_upload = plan.upload_mb * 1024 * 1024;
        if archive.len() as u64 > max_upload {
            return Err(Error::TooLarge(format!(
                "the archive is larger than your plan's upload limit of {} MB (upload_mb)",
                plan.upload_mb
            )));
        }
        let limits = plan.resolve(bot.config.limits)?;
        let version = bot.code_version + 1;
        let info = self
            .runtime
            .install_code(bot.id, version, format, archive, limits.disk_mb * 1024 * 1024)
            .await?;
        self.store
            .set_code_version(bot.id, version, self.clock.now())
            .await?;
        tracing::info!(bot = %bot.id, version, files = info.files, bytes = info.bytes, "code uploaded");
        Ok((version, info))
    }

    pub async fn start(&self, caller: &Caller, key: &str) -> Result<Bot> {
        let bot = self.find(caller, key).await?;
        let spec = self.run_spec(&bot, &caller.user.plan).await?;
        self.run(spec).await?;
        self.reload(bot.id).await
    }

    /// Records that the bot should run, then starts it; a start that fails is not left
    /// recorded, so a restarted server does not try it again.
    async fn run(&self, spec: RunSpec) -> Result<()> {
        let id = spec.bot;
        self.store.set_should_run(id, true, self.clock.now()).await?;
        if let Err(e) = self.runtime.start(spec).await {
            self.store.set_should_run(id, false, self.clock.now()).await?;
            return Err(e);
        }
        Ok(())
    }

    pub async fn stop(&self, caller: &Caller, key: &str) -> Result<Bot> {
        let bot = self.find(caller, key).await?;
        self.store.set_should_run(bot.id, false, self.clock.now()).await?;
        self.runtime.stop(bot.id).await;
        self.reload(bot.id).await
    }

    pub async fn kill(&self, caller: &Caller, key: &str) -> Result<Bot> {
        let bot = self.find(caller, key).await?;
        self.store.set_should_run(bot.id, false, self.clock.now()).await?;
        self.runtime.kill(bot.id).await;
        self.reload(bot.id).await
    }

    /// Stops the bot if it runs, then starts it with its current configuration and code.
    pub async fn restart(&self, caller: &Caller, key: &str) -> Result<Bot> {
        let bot = self.find(caller, key).await?;
        let spec = self.run_spec(&bot, &caller.user.plan).await?;
        self.runtime.stop(bot.id).await;
        self.run(spec).await?;
        self.reload(bot.id).await
    }

    pub async fn replace_secrets(
        &self,
        caller: &Caller,
        key: &str,
        values: BTreeMap<String, String>,
    ) -> Result<()> {
        secrets::validate(&values)?;
        let bot = self.find(caller, key).await?;
        let sealed = values
            .iter()
            .map(|(name, value)| Ok((name.clone(), self.secrets.seal(bot.id, name, value)?)))
            .collect::<Result<Vec<_>>>()?;
        self.store
            .replace_secrets(bot.id, &sealed, self.clock.now())
            .await?;
        Ok(())
    }

    pub async fn crashes(&self, caller: &Caller, key: &str, limit: u32) -> Result<Vec<Crash>> {
        let bot = self.find(caller, key).await?;
        Ok(self.store.crashes(bot.id, limit).await?)
    }

    /// A page of the bot's log: lines after `after` that pass `filter`.
    pub async fn logs(
        &self,
        caller: &Caller,
        key: &str,
        filter: &LogFilter,
        after: u64,
        limit: usize,
    ) -> Result<LogPage> {
        let bot = self.find(caller, key).await?;
        self.logs.read(bot.id, filter, after, limit).await
    }

    /// The bot's lines after `after`, then live ones as the bot prints them.
    pub async fn follow_logs(
        &self,
        caller: &Caller,
        key: &str,
        after: Option<u64>,
    ) -> Result<Box<dyn LogFeed>> {
        let bot = self.find(caller, key).await?;
        self.logs.follow(bot.id, after).await
    }

    /// Brings back, once, every bot that should run: called at start-up after the runtime has
    /// ended whatever a previous server left behind.
    pub async fn resume(&self) -> Result<usize> {
        self.runtime.clean_up_leftovers().await;
        // What a previous server recorded as running is not any more; the bots brought back
        // below report their new state, the others stay honestly stopped.
        self.store.reset_run_states().await?;
        let mut resumed = 0;
        for bot in self.store.bots_to_run().await? {
            let Some(owner) = self.users.user_by_id(bot.owner).await? else {
                continue;
            };
            if owner.user.active_ban(self.clock.now()).is_some() {
                continue;
            }
            match self.run_spec(&bot, &owner.user.plan).await {
                Ok(spec) => match self.runtime.start(spec).await {
                    Ok(()) => resumed += 1,
                    Err(e) => tracing::error!(bot = %bot.id, error = %e, "cannot resume bot"),
                },
                Err(e) => tracing::error!(bot = %bot.id, error = %e, "cannot resume bot"),
            }
        }
        Ok(resumed)
    }

    async fn run_spec(&self, bot: &Bot, plan: &crate::accounts::PlanName) -> Result<RunSpec> {
        if bot.code_version == 0 {
            return Err(Error::InvalidState(
                "upload the bot's code before starting it".into(),
            ));
        }
        if let Some(reason) = self.runtime.unavailable_reason() {
            return Err(Error::Unavailable(reason));
        }
        let limits = self.plans.of(plan).resolve(bot.config.limits)?;
        let mut env: Vec<(String, String)> = bot
            .config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, sealed) in self.store.sealed_secrets(bot.id).await? {
            let value = self.secrets.open(bot.id, &name, &sealed)?;
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
        Ok(RunSpec {
            bot: bot.id,
            code_version: bot.code_version,
            command: bot.config.command.clone(),
            env,
            policy: bot.config.restart_policy,
            limits,
            restarts: bot.run.restarts,
        })
    }

    async fn reload(&self, id: BotId) -> Result<Bot> {
        self.store.bot(id).await?.ok_or(Error::NotFound)
    }

    async fn stop_all_of(&self, owner: UserId) -> Result<()> {
        for bot in self.store.bots_of(owner).await? {
            self.store.set_should_run(bot.id, false, self.clock.now()).await?;
            self.runtime.stop(bot.id).await;
        }
        Ok(())
    }
}

#[async_trait]
impl UserLifecycle for Bots {
    async fn banned(&self, user: UserId) {
        if let Err(e) = self.stop_all_of(user).await {
            tracing::error!(user = %user, error = %e, "cannot stop the bots of a banned user");
        }
    }

    async fn deleting(&self, user: UserId) -> Result<()> {
        for bot in self.store.bots_of(user).await? {
            self.remove(bot.id).await?;
        }
        Ok(())
    }
}

fn name_clash(e: crate::StoreError) -> Error {
    match e {
        crate::StoreError::Conflict(_) => Error::Conflict("you already have a bot with this name"),
        other => other.into(),
    }
}
