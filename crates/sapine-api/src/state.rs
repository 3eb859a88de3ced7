use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metrics_exporter_prometheus::PrometheusHandle;
use sapine_core::accounts::Accounts;
use sapine_core::bots::{BotMetrics, Bots};

use crate::rate_limit::AuthLimits;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub bots: Arc<Bots>,
    pub bot_metrics: Arc<BotMetrics>,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: PrometheusHandle,
    pub limits: Arc<AuthLimits>,
    pub http: Arc<HttpSettings>,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    /// The largest code archive any plan accepts; each plan's own limit is checked after.
    pub max_upload_bytes: usize,
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty allows none.
    pub cors_origins: Vec<String>,
    /// Send Strict-Transport-Security (the public URL is https).
    pub hsts: bool,
    pub trust_proxy_headers: bool,
}

/// The dependencies `/health/ready` asks after.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// Each dependency's name, with the reason it is not ready if it is not.
    async fn check(&self) -> Vec<(&'static str, Option<String>)>;
}
