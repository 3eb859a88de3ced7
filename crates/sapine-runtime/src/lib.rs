//! Runs bots as sandboxed child processes: unpacks their code safely, confines them with
//! bubblewrap and cgroups, and supervises them under their restart policy.

pub mod archive;
pub mod cgroup;
mod code;
mod logs;
mod reporter;
pub mod sandbox;
mod supervisor;
mod usage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use sapine_core::Error;
use sapine_core::bots::{
    BotId, BotStatus, CodeFormat, CodeInfo, RunObserver, RunSpec, RunState, Runtime, Usage,
};
use tokio::sync::{mpsc, watch};

use crate::cgroup::{BotCgroup, CgroupLimits, Cgroups};
use crate::reporter::Reporter;
use crate::sandbox::Sandbox;
use crate::supervisor::{Control, LiveRun, Run};
use crate::usage::Metered;

pub use logs::LogPipeline;
pub use sandbox::SandboxMode;

pub struct ProcessSettings {
    /// Where each bot's code lives: `<bots_dir>/<id>/code-<version>`.
    pub bots_dir: PathBuf,
    pub sandbox: SandboxMode,
    /// Host paths bots must not see: the data dir, the config file.
    pub hidden: Vec<PathBuf>,
    /// Name of Sapine's own cgroup under each hierarchy.
    pub cgroup_name: String,
}

/// A supervised bot: how to tell its task what to do and to learn that it has ended.
struct Supervised {
    control: mpsc::UnboundedSender<Control>,
    ended: watch::Receiver<bool>,
    /// What the metrics sampler reads, once the run is prepared.
    metered: Option<Metered>,
}

pub struct ProcessRuntime {
    bots_dir: PathBuf,
    sandbox: Result<Arc<Sandbox>, String>,
    cgroups: Option<Cgroups>,
    reporter: Reporter,
    logs: Arc<LogPipeline>,
    supervised: Mutex<HashMap<BotId, Supervised>>,
}

impl ProcessRuntime {
    /// Probes the sandbox and cgroups once. A host that cannot sandbox still serves everything
    /// but bots, and says why; one without manageable cgroups falls back to rlimits.
    pub fn new(settings: ProcessSettings, observer: Arc<dyn RunObserver>, logs: Arc<LogPipeline>) -> Self {
        // Others may pass through to a bot's directory (the sandbox's user must) but not list them.
        let bots_dir =
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o711)
                .create(&settings.bots_dir)
                .map_err(|e| format!("cannot create {}: {e}", settings.bots_dir.display()));
        let sandbox = bots_dir
            .and_then(|()| Sandbox::probe(settings.sandbox, settings.hidden, &settings.bots_dir))
            .map(Arc::new);
        match &sandbox {
            Ok(s) if s.mode() == SandboxMode::Off => {
                tracing::warn!("sandbox = \"off\": bots run unconfined, with the server's own rights")
            }
            Ok(_) => tracing::info!("bots run sandboxed by bubblewrap"),
            Err(reason) => {
                tracing::error!(%reason, "bots cannot be sandboxed on this host and will not start")
            }
        }
        let cgroups = match Cgroups::detect(&settings.cgroup_name) {
            Ok(c) => {
                tracing::info!(version = c.version(), "bot limits enforced by cgroups");
                Some(c)
            }
            Err(e) => {
                tracing::warn!(reason = %e, "cgroups cannot be managed: bot limits fall back to rlimits");
                None
            }
        };
        Self {
            bots_dir: settings.bots_dir,
            sandbox,
            cgroups,
            reporter: Reporter::spawn(observer),
            logs,
            supervised: Mutex::new(HashMap::new()),
        }
    }

    fn bot_dir(&self, bot: BotId) -> PathBuf {
        self.bots_dir.join(bot.to_string())
    }

    /// The run's code directory and its fresh cgroup.
    async fn prepare(&self, spec: &RunSpec) -> Result<(PathBuf, Option<Arc<BotCgroup>>), Error> {
        let code_dir = code::prepare_run(&self.bot_dir(spec.bot), spec.code_version).await?;
        let Some(cgroups) = self.cgroups.clone() else {
            return Ok((code_dir, None));
        };
        let key = spec.bot.to_string();
        let limits = CgroupLimits {
            memory_bytes: Some(spec.limits.memory_mb.saturating_mul(1024 * 1024)),
            cpu_percent: Some(spec.limits.cpu_percent),
            pids: Some(spec.limits.pids),
        };
        let created = tokio::task::spawn_blocking(move || cgroups.create(&key, &limits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(format!("cannot create the bot's cgroup: {e}")))?;
        Ok((code_dir, Some(Arc::new(created))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BotId, Supervised>> {
        self.supervised
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `control` to the bot's task, if it has one, and waits for the task to end.
    async fn end(&self, bot: BotId, control: Control) {
        let handle = self
            .lock()
            .get(&bot)
            .map(|s| (s.control.clone(), s.ended.clone()));
        if let Some((sender, mut ended)) = handle {
            let _ = sender.send(control);
            let _ = ended.wait_for(|done| *done).await;
        }
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn unavailable_reason(&self) -> Option<String> {
        self.sandbox.as_ref().err().cloned()
    }

    async fn install_code(
        &self,
        bot: BotId,
        version: u32,
        format: CodeFormat,
        archive: Vec<u8>,
        max_unpacked_bytes: u64,
    ) -> Result<CodeInfo, Error> {
        let owner = self.sandbox.as_ref().ok().and_then(|s| s.host_user());
        code::install(
            self.bot_dir(bot),
            version,
            format,
            archive,
            max_unpacked_bytes,
            owner,
        )
        .await
    }

    async fn start(&self, spec: RunSpec) -> Result<(), Error> {
        let sandbox = self.sandbox.clone().map_err(Error::Unavailable)?;
        let (control, receiver) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(false);
        {
            // Checked and claimed under one lock, so two starts at once make one supervisor.
            let mut supervised = self.lock();
            if supervised.get(&spec.bot).is_some_and(|s| !*s.ended.borrow()) {
                return Ok(());
            }
            supervised.insert(
                spec.bot,
                Supervised {
                    control,
                    ended,
                    metered: None,
                },
            );
        }
        let counting_since = Instant::now();
        let prepared = async {
            let log = self.logs.open(spec.bot).await?;
            let (code_dir, cgroup) = self.prepare(&spec).await?;
            Ok::<_, Error>((code_dir, cgroup, log))
        };
        let (code_dir, cgroup, log) = match prepared.await {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = ended_tx.send(true);
                return Err(e);
            }
        };
        log.set_limits(spec.limits.logs);
        // Reported before answering, so the caller sees the start it asked for at once.
        let starting = RunState {
            status: BotStatus::Starting,
            restarts: spec.restarts,
            ..RunState::created()
        };
        let reported = self.reporter.state_delivered(spec.bot, starting);
        let (live, live_run) = watch::channel::<Option<LiveRun>>(None);
        if let Some(entry) = self.lock().get_mut(&spec.bot) {
            entry.metered = Some(Metered {
                live: live_run,
                cgroup: cgroup.clone(),
                // A cgroup's counters start with it and run on across restarts.
                counting_since: cgroup.as_ref().map(|_| counting_since),
            });
        }
        let run = Run {
            spec,
            code_dir,
            sandbox,
            cgroup: cgroup.clone(),
            reporter: self.reporter.clone(),
            log,
            live,
        };
        let log = run.log.clone();
        tokio::spawn(async move {
            supervisor::supervise(run, receiver).await;
            log.release_tail();
            if let Some(group) = cgroup {
                let _ = tokio::task::spawn_blocking(move || group.destroy()).await;
            }
            let _ = ended_tx.send(true);
        });
        reported.await;
        Ok(())
    }

    async fn stop(&self, bot: BotId) {
        self.end(bot, Control::Stop).await;
    }

    async fn kill(&self, bot: BotId) {
        self.end(bot, Control::Kill).await;
    }

    async fn remove(&self, bot: BotId) {
        self.end(bot, Control::Kill).await;
        self.lock().remove(&bot);
        let dir = self.bot_dir(bot);
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
        if let Ok(Err(e)) = removed {
            tracing::error!(bot = %bot, error = %e, "cannot delete the bot's files");
        }
    }

    async fn clean_up_leftovers(&self) {
        self.logs.begin();
        let Some(cgroups) = self.cgroups.clone() else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            for key in cgroups.existing() {
                if let Some(group) = cgroups.open(&key) {
                    if !group.pids().is_empty() {
                        tracing::warn!(bot = %key, "ending processes a previous server left behind");
                    }
                    BotCgroup::destroy(&group);
                }
            }
        })
        .await;
    }

    async fn usage(&self) -> Vec<(BotId, Usage)> {
        let targets: Vec<_> = self
            .lock()
            .iter()
            .filter_map(|(bot, s)| Some((*bot, s.metered.as_ref()?.target()?)))
            .collect();
        if targets.is_empty() {
            return Vec::new();
        }
        tokio::task::spawn_blocking(move || usage::measure(targets))
            .await
            .unwrap_or_default()
    }

    async fn shutdown(&self) {
        let handles: Vec<_> = self
            .lock()
            .values()
            .map(|s| (s.control.clone(), s.ended.clone()))
            .collect();
        // Every bot is told first, so their stop timeouts run side by side.
        for (control, _) in &handles {
            let _ = control.send(Control::Stop);
        }
        for (_, mut ended) in handles {
            let _ = ended.wait_for(|done| *done).await;
        }
        self.logs.shutdown().await;
        if let Some(cgroups) = self.cgroups.clone() {
            let _ = tokio::task::spawn_blocking(move || cgroups.release()).await;
        }
    }
}
