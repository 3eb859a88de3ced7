//! Wires the adapters into the core's ports from the configuration: `App::build` is used by
//! `main` and by every integration test.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use chrono::Duration as TimeDelta;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sapine_api::{AppState, AuthLimits, HttpSettings, RateLimitSettings};
use sapine_core::accounts::{AccountSettings, Accounts, HashCost, PasswordHasher, PlanName};
use sapine_core::bots::{BotMetrics, BotPorts, BotStatus, Bots, Plans, Runtime, SecretBox, StoreObserver};
use sapine_core::clock::{Clock, SystemClock};
use sapine_core::mail::Mailer;
use sapine_runtime::{LogPipeline, ProcessRuntime, ProcessSettings};
use sapine_store::{Database, PoolOptions};
use sha2::Digest;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::mail::{OutboxMailer, SmtpMailer};
use crate::readiness::Dependencies;
use crate::secret_key;

/// How often idle rate-limit keys are forgotten and metric histograms compacted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// How often series past their retention are deleted; they are only read by range, so a few
/// minutes of overhang cost nothing.
const METRICS_PRUNE_INTERVAL: Duration = Duration::from_secs(300);

/// The core services over their adapters, without HTTP: what the CLI's admin commands need.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub bots: Arc<Bots>,
    pub metrics: Arc<BotMetrics>,
    pub runtime: Arc<dyn Runtime>,
    pub database: Arc<dyn Database>,
}

impl Services {
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        create_data_dir(&config.data_dir)?;
        let secret = secret_key::load_or_generate(config.secret_key.as_deref(), &config.data_dir)?;
        let database = open_database(config).await?;
        let from = config.mail_from.parse().context("mail_from")?;
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url, from)?),
            None => Arc::new(OutboxMailer::new(
                config.data_dir.join("mail").join("outbox"),
                from,
            )?),
        };
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        let cost = HashCost {
            memory_kib: config.password_hash_memory_kib,
            iterations: config.password_hash_iterations,
        };
        let hasher = PasswordHasher::new(cost, parallelism, config.password_hash_max_waiting)
            .map_err(|e| anyhow::anyhow!("password hashing: {e}"))?;
        let default_plan = PlanName::parse(&config.default_plan)
            .map_err(|e| anyhow::anyhow!("default_plan {}", e.message))?;
        let settings = AccountSettings {
            public_url: config.public_url(),
            access_token_ttl: TimeDelta::seconds(i64::try_from(config.access_token_ttl_secs)?),
            refresh_token_ttl: TimeDelta::seconds(i64::try_from(config.refresh_token_ttl_secs)?),
            plans: config.plan_names()?,
            default_plan: default_plan.clone(),
        };
        let accounts = Arc::new(Accounts::new(
            database.clone(),
            mailer,
            clock.clone(),
            hasher,
            &secret,
            settings,
        ));
        let logs = LogPipeline::new(config.data_dir.join("logs"));
        let runtime = open_runtime(config, database.clone(), clock.clone(), logs.clone());
        let plan_limits = config.plan_limits()?;
        let default_limits = plan_limits.get(&default_plan).copied().unwrap_or_default();
        let plans = Plans::new(plan_limits, default_limits);
        let ports = BotPorts {
            store: database.clone(),
            users: database.clone(),
            runtime: runtime.clone(),
            logs,
            clock: clock.clone(),
        };
        let bots = Arc::new(Bots::new(ports, SecretBox::new(&secret), plans));
        accounts.set_lifecycle(bots.clone());
        let metrics = Arc::new(BotMetrics::new(
            database.clone(),
            runtime.clone(),
            bots.clone(),
            clock,
        ));
        Ok(Self {
            accounts,
            bots,
            metrics,
            runtime,
            database,
        })
    }
}

/// The process runtime, its cgroup named after the data dir so that servers sharing a machine
/// never touch each other's bots.
fn open_runtime(
    config: &Config,
    store: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    logs: Arc<LogPipeline>,
) -> Arc<dyn Runtime> {
    let data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let settings = ProcessSettings {
        bots_dir: data_dir.join("bots"),
        sandbox: config.sandbox,
        hidden: std::iter::once(data_dir.clone())
            .chain(config.source_file.clone())
            .collect(),
        cgroup_name: format!("sapine-{}", &hex::encode(digest)[..12]),
    };
    Arc::new(ProcessRuntime::new(
        settings,
        Arc::new(StoreObserver::new(store, clock)),
        logs,
    ))
}

/// The data dir is closed to other users but for passing through (mode 0711): sandboxed bots
/// run as an unprivileged user, and bubblewrap, running as that user, must pass through it to
/// reach the bot's own directory. Listing it and reading what is inside (the database and the
/// secret key are 0600, mail 0700) stay the server's alone.
fn create_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
            .with_context(|| format!("cannot let bots pass through data dir {}", dir.display()))?;
    }
    Ok(())
}

/// Connects to the configured database and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<Arc<dyn Database>> {
    let options = PoolOptions {
        max_connections: config.database_max_connections,
    };
    let database = sapine_store::connect(&config.database_url(), &options)
        .await
        .context("cannot open the database")?;
    database.migrate().await.context("cannot migrate the database")?;
    Ok(database)
}

/// The process-wide Prometheus recorder; installed once, shared by every app in the process.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &buckets)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

pub struct App {
    listener: TcpListener,
    router: Router,
    shutdown_timeout: Duration,
    housekeeping: JoinHandle<()>,
    sampler: JoinHandle<()>,
    services: Services,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let services = Services::open(&config, clock).await?;
        let redis = config
            .redis_url
            .as_deref()
            .map(redis::Client::open)
            .transpose()
            .context("redis_url")?;
        let limits = Arc::new(AuthLimits::new(RateLimitSettings {
            per_ip_per_minute: config.rate_limit_ip_per_minute,
            per_account_per_minute: config.rate_limit_account_per_minute,
        }));
        let metrics = metrics_handle();
        let max_upload_mb = config
            .plan_limits()?
            .values()
            .map(|p| p.upload_mb)
            .max()
            .unwrap_or(1);
        let state = AppState {
            accounts: services.accounts.clone(),
            bots: services.bots.clone(),
            bot_metrics: services.metrics.clone(),
            readiness: Arc::new(Dependencies {
                database: services.database.clone(),
                redis,
            }),
            metrics: metrics.clone(),
            limits: limits.clone(),
            http: Arc::new(HttpSettings {
                max_body_bytes: config.max_body_bytes,
                max_upload_bytes: usize::try_from(max_upload_mb.saturating_mul(1024 * 1024))
                    .unwrap_or(usize::MAX),
                request_timeout: Duration::from_millis(config.request_timeout_ms),
                cors_origins: config.cors_origins.clone(),
                hsts: config.public_url().starts_with("https://"),
                trust_proxy_headers: config.trust_proxy_headers,
            }),
        };
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            loop {
                tick.tick().await;
                limits.forget_idle();
                metrics.run_upkeep();
            }
        });
        let sampler = spawn_sampler(
            services.metrics.clone(),
            services.database.clone(),
            Duration::from_millis(config.metrics_interval_ms),
        );
        match services.bots.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(bots = n, "brought back the bots that should run"),
            Err(e) => tracing::error!(error = %e, "cannot bring back the bots that should run"),
        }
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        tracing::info!(
            addr = %listener.local_addr()?,
            database = services.database.backend(),
            data_dir = %config.data_dir.display(),
            version = env!("CARGO_PKG_VERSION"),
            "sapine is listening"
        );
        Ok(Self {
            listener,
            router: sapine_api::router(state),
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
            housekeeping,
            sampler,
            services,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        let graceful = async move {
            stop.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stopping.send(true);
        };
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(
            listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful)
        .into_future();
        let timeout = self.shutdown_timeout;
        let deadline = async move {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(timeout).await;
        };
        let result = tokio::select! {
            result = server => result.context("server failed"),
            () = deadline => {
                tracing::warn!(timeout_ms = timeout.as_millis() as u64, "requests still in flight at the shutdown deadline were cut off");
                Ok(())
            }
        };
        self.housekeeping.abort();
        self.sampler.abort();
        tracing::info!("stopping bots");
        self.services.runtime.shutdown().await;
        tracing::info!("stopped");
        result
    }
}

/// Samples every running bot each `interval`, refreshes the `sapine_bots` gauge, and now and
/// then deletes series past their retention. A slow round delays the next rather than piling
/// rounds up.
fn spawn_sampler(
    bot_metrics: Arc<BotMetrics>,
    database: Arc<dyn Database>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned_at: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = bot_metrics.sample().await {
                tracing::warn!(error = %e, "cannot record bot metrics");
            }
            match database.count_by_status().await {
                Ok(counts) => {
                    for status in BotStatus::ALL {
                        let n = counts.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
                        metrics::gauge!("sapine_bots", "status" => status.as_str()).set(n as f64);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot count bots by status"),
            }
            if pruned_at.is_none_or(|at| at.elapsed() >= METRICS_PRUNE_INTERVAL) {
                pruned_at = Some(std::time::Instant::now());
                match bot_metrics.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "deleted bot metrics past their retention"),
                    Err(e) => tracing::warn!(error = %e, "cannot delete old bot metrics"),
                }
            }
        }
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
