//! Every setting of the server, defined once with its default and its doc. Values come, lowest
//! to highest precedence, from the defaults below, a TOML file, `SAPINE_<NAME>` environment
//! variables and command-line flags; an unknown key or a bad value stops start-up naming it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use sapine_core::accounts::PlanName;
use sapine_core::bots::PlanLimits;
use sapine_core::secret::SecretKey;
use sapine_runtime::SandboxMode;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting `{0}` (run `sapine config` for the list)")]
    UnknownKey(String),
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// A type a setting can have, read from its text form.
pub trait Setting: Sized {
    fn parse(raw: &str) -> Result<Self, String>;
    fn render(&self) -> String;
}

macro_rules! from_str_setting {
    ($($ty:ty),+) => {$(
        impl Setting for $ty {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.trim().parse().map_err(|e| format!("{e}"))
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )+};
}
from_str_setting!(SocketAddr, u32, u64, usize, bool, NonZeroU32);

impl Setting for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl Setting for PathBuf {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(PathBuf::from(raw))
        }
    }
    fn render(&self) -> String {
        self.display().to_string()
    }
}

/// Empty means unset.
impl Setting for Option<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Some(raw.trim().to_owned()).filter(|s| !s.is_empty()))
    }
    fn render(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

/// A comma-separated list (a TOML array in the file).
impl Setting for Vec<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn render(&self) -> String {
        self.join(",")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Setting for LogFormat {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of: text, json")),
        }
    }
    fn render(&self) -> String {
        match self {
            LogFormat::Text => "text".into(),
            LogFormat::Json => "json".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Process,
}

impl Setting for RuntimeKind {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "process" => Ok(RuntimeKind::Process),
            "docker" | "swarm" => Err(format!(
                "the {raw} runtime is planned but not available yet; use process"
            )),
            other => Err(format!("{other:?} is not one of: process")),
        }
    }
    fn render(&self) -> String {
        "process".into()
    }
}

impl Setting for SandboxMode {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "on" => Ok(SandboxMode::On),
            "off" => Ok(SandboxMode::Off),
            other => Err(format!("{other:?} is not one of: on, off")),
        }
    }
    fn render(&self) -> String {
        match self {
            SandboxMode::On => "on".into(),
            SandboxMode::Off => "off".into(),
        }
    }
}

pub struct SettingDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

macro_rules! settings {
    ($( #[doc = $doc:literal] $name:ident : $ty:ty = $default:literal, )+) => {
        /// The server's configuration, after every source has been applied.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( #[doc = $doc] pub $name: $ty, )+
            /// The file the settings were read from, if any: bots must not see it.
            pub source_file: Option<PathBuf>,
        }

        /// Name, default and doc of every setting.
        pub const SETTINGS: &[SettingDoc] = &[
            $( SettingDoc { name: stringify!($name), default: $default, doc: $doc }, )+
        ];

        impl Config {
            fn defaults() -> Result<Self, ConfigError> {
                Ok(Self {
                    $( $name: <$ty as Setting>::parse($default).map_err(|reason| ConfigError::Invalid {
                        key: stringify!($name).into(),
                        reason,
                    })?, )+
                    source_file: None,
                })
            }

            /// Sets one setting from its text form.
            pub fn set(&mut self, key: &str, raw: &str) -> Result<(), ConfigError> {
                match key {
                    $( stringify!($name) => {
                        self.$name = <$ty as Setting>::parse(raw).map_err(|reason| ConfigError::Invalid {
                            key: key.to_owned(),
                            reason,
                        })?;
                    } )+
                    _ => return Err(ConfigError::UnknownKey(key.to_owned())),
                }
                Ok(())
            }

            /// Each setting's value in its text form.
            fn rendered(&self) -> Vec<(&'static str, String)> {
                vec![ $( (stringify!($name), Setting::render(&self.$name)), )+ ]
            }
        }
    };
}

settings! {
    /// Address and port the HTTP server listens on.
    bind: SocketAddr = "127.0.0.1:8080",
    /// Directory for the database, the secret key, mail and bots' files.
    data_dir: PathBuf = "./sapine-data",
    /// Database: `sqlite://PATH` or `postgres://...`; empty means `sqlite://<data_dir>/sapine.db`.
    database_url: Option<String> = "",
    /// Most connections the server opens to the database.
    database_max_connections: u32 = "8",
    /// Redis for shared limits and events across instances; empty keeps them in-process.
    redis_url: Option<String> = "",
    /// SMTP server for mail, e.g. `smtps://user:pass@mail.example.com`; empty writes mail to `<data_dir>/mail/outbox/`.
    smtp_url: Option<String> = "",
    /// Sender of the server's mail.
    mail_from: String = "Sapine <sapine@localhost>",
    /// 32-byte key (64 hex digits or base64) that signs tokens and encrypts secrets; empty means generated once into `<data_dir>/secret.key`.
    secret_key: Option<String> = "",
    /// Where bots run: `process` (sandboxed child processes).
    runtime: RuntimeKind = "process",
    /// The URL users reach the server at, used in links inside mails; empty means `http://<bind>`.
    public_url: Option<String> = "",
    /// Log output: `text` for people, `json` for machines.
    log_format: LogFormat = "text",
    /// Log filter, e.g. `info` or `sapine=debug,info`.
    log_level: String = "info",
    /// Origins allowed to call the API from browsers, comma-separated; empty allows none.
    cors_origins: Vec<String> = "",
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    trust_proxy_headers: bool = "false",
    /// Largest request body accepted, in bytes.
    max_body_bytes: usize = "1048576",
    /// Longest a request may take before it is answered 408, in milliseconds.
    request_timeout_ms: u64 = "30000",
    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish, in milliseconds.
    shutdown_timeout_ms: u64 = "10000",
    /// Lifetime of access tokens, in seconds.
    access_token_ttl_secs: u64 = "900",
    /// A session ends after this many seconds without a token refresh.
    refresh_token_ttl_secs: u64 = "2592000",
    /// Attempts per minute one client address may make at each account endpoint (login, register, ...).
    rate_limit_ip_per_minute: NonZeroU32 = "30",
    /// Attempts per minute at each account endpoint for one account (email or token).
    rate_limit_account_per_minute: NonZeroU32 = "10",
    /// argon2id memory per password hash, in KiB (OWASP: 19456).
    password_hash_memory_kib: u32 = "19456",
    /// argon2id passes per password hash (OWASP: 2).
    password_hash_iterations: u32 = "2",
    /// Password hashes that may wait for a free core before logins are refused with 503.
    password_hash_max_waiting: usize = "256",
    /// Plans that admins can give users, comma-separated.
    plans: Vec<String> = "free",
    /// The plan new accounts get.
    default_plan: String = "free",
    /// What each plan allows, `;`-separated: `NAME: max_bots=5 memory_mb=256 cpu_percent=100 pids=128 disk_mb=512 upload_mb=50 network=on log_mb=100 log_retention=30d log_rate=5000`; keys left out take these defaults. `log_mb` and `log_retention` (s, m, h or d) bound each bot's kept log; `log_rate` is the lines per second a bot may print before the rest are dropped and counted.
    plan_limits: String = "free: max_bots=5 memory_mb=256 cpu_percent=100 pids=128 disk_mb=512 upload_mb=50 network=on log_mb=100 log_retention=30d log_rate=5000",
    /// Sandbox bots with bubblewrap (`on`), or run them unconfined (`off`, only for hosts that cannot sandbox).
    sandbox: SandboxMode = "on",
    /// How often each running bot's CPU, memory, disk and network use is sampled, in milliseconds (at least 100).
    metrics_interval_ms: u64 = "5000",
}

/// Environment variables with the `SAPINE_` prefix that are not settings.
const NOT_SETTINGS: &[&str] = &["SAPINE_CONFIG"];
const TEST_PREFIX: &str = "SAPINE_TEST_";

impl Config {
    /// Builds the configuration from all sources and checks it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut config = Self::defaults()?;
        if let Some(path) = file {
            config.apply_file(path)?;
            config.source_file = Some(path.to_owned());
        }
        for (name, value) in env {
            if let Some(key) = name.strip_prefix("SAPINE_") {
                if NOT_SETTINGS.contains(&name.as_str()) || name.starts_with(TEST_PREFIX) {
                    continue;
                }
                config
                    .set(&key.to_ascii_lowercase(), &value)
                    .map_err(|e| match e {
                        ConfigError::UnknownKey(_) => ConfigError::UnknownKey(name.clone()),
                        other => other,
                    })?;
            }
        }
        for (key, value) in flags {
            config.set(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The defaults alone, for tests and tools that set what they need by hand.
    pub fn default_for(data_dir: &Path) -> Self {
        let mut config = Self::defaults().expect("built-in defaults are valid");
        config.data_dir = data_dir.to_owned();
        config
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |reason: String| ConfigError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
        for (key, value) in table {
            let raw = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        toml::Value::String(s) => Ok(s),
                        other => Ok(other.to_string()),
                    })
                    .collect::<Result<Vec<_>, ConfigError>>()?
                    .join(","),
                toml::Value::Table(_) => {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: "must be a value, not a table".into(),
                    });
                }
                other => other.to_string(),
            };
            self.set(&key, &raw)?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.into(),
            reason,
        };
        let has_scheme = |url: &str, schemes: &[&str]| schemes.iter().any(|s| url.starts_with(s));
        if let Some(url) = &self.database_url
            && !has_scheme(url, &["sqlite:", "postgres://", "postgresql://"])
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://".into(),
            ));
        }
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str()).map_err(|e| invalid("redis_url", e.to_string()))?;
        }
        if let Some(url) = &self.smtp_url
            && !has_scheme(url, &["smtp://", "smtps://"])
        {
            return Err(invalid("smtp_url", "must start with smtp:// or smtps://".into()));
        }
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| invalid("mail_from", e.to_string()))?;
        if let Some(key) = &self.secret_key {
            SecretKey::parse(key).map_err(|e| invalid("secret_key", e))?;
        }
        if let Some(url) = &self.public_url
            && (!has_scheme(url, &["http://", "https://"]) || url.contains(char::is_whitespace))
        {
            return Err(invalid("public_url", "must be an http:// or https:// URL".into()));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        for origin in &self.cors_origins {
            let ok = has_scheme(origin, &["http://", "https://"])
                && axum::http::HeaderValue::from_str(origin).is_ok();
            if !ok {
                return Err(invalid(
                    "cors_origins",
                    format!("{origin:?} is not an http(s) origin"),
                ));
            }
        }
        for (key, value) in [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("request_timeout_ms", self.request_timeout_ms),
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            (
                "database_max_connections",
                u64::from(self.database_max_connections),
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        if self.metrics_interval_ms < 100 {
            return Err(invalid("metrics_interval_ms", "must be at least 100".into()));
        }
        if self.access_token_ttl_secs > self.refresh_token_ttl_secs {
            return Err(invalid(
                "access_token_ttl_secs",
                "must not exceed refresh_token_ttl_secs".into(),
            ));
        }
        sapine_core::accounts::HashCost {
            memory_kib: self.password_hash_memory_kib,
            iterations: self.password_hash_iterations,
        }
        .validate()
        .map_err(|e| invalid("password_hash_memory_kib", e))?;
        let plans = self.plan_names()?;
        if plans.is_empty() {
            return Err(invalid("plans", "must name at least one plan".into()));
        }
        if !plans.iter().any(|p| p.as_str() == self.default_plan) {
            return Err(invalid(
                "default_plan",
                format!("{:?} is not one of `plans`", self.default_plan),
            ));
        }
        self.plan_limits()?;
        Ok(())
    }

    /// Each plan's limits; plans `plan_limits` does not mention get the defaults.
    pub fn plan_limits(&self) -> Result<HashMap<PlanName, PlanLimits>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "plan_limits".into(),
            reason,
        };
        let names = self.plan_names()?;
        let mut limits: HashMap<PlanName, PlanLimits> =
            names.iter().map(|n| (n.clone(), PlanLimits::default())).collect();
        for entry in self
            .plan_limits
            .split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (name, values) = entry
                .split_once(':')
                .ok_or_else(|| invalid(format!("{entry:?} does not start with `PLAN:`")))?;
            let name = names
                .iter()
                .find(|n| n.as_str() == name.trim())
                .ok_or_else(|| invalid(format!("{:?} is not one of `plans`", name.trim())))?;
            let plan =
                PlanLimits::parse(values).map_err(|e| invalid(format!("plan {}: {e}", name.as_str())))?;
            limits.insert(name.clone(), plan);
        }
        Ok(limits)
    }

    pub fn plan_names(&self) -> Result<Vec<PlanName>, ConfigError> {
        self.plans
            .iter()
            .map(|p| {
                PlanName::parse(p).map_err(|e| ConfigError::Invalid {
                    key: "plans".into(),
                    reason: format!("{p:?} {}", e.message),
                })
            })
            .collect()
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sapine.db").display()))
    }

    /// Without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Each setting's effective value with passwords and keys hidden, for `sapine config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        self.rendered()
            .into_iter()
            .map(|(name, value)| {
                let shown = match name {
                    "database_url" => redact_url(&self.database_url()),
                    "public_url" => self.public_url(),
                    "redis_url" | "smtp_url" => redact_url(&value),
                    "secret_key" if !value.is_empty() => "(set)".into(),
                    _ => value,
                };
                (name, shown)
            })
            .collect()
    }
}

/// Hides the password in `scheme://user:password@host/...`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], flags: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let flags: Vec<(String, String)> = flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, env, &flags)
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let config = load(&[], &[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://./sapine-data/sapine.db");
        assert_eq!(config.public_url(), "http://127.0.0.1:8080");
        assert!(SETTINGS.iter().all(|s| !s.doc.is_empty()));
        assert_eq!(SETTINGS.len(), config.describe().len());
    }

    #[test]
    fn flags_override_environment_which_ignores_test_variables() {
        let config = load(
            &[
                ("SAPINE_BIND", "0.0.0.0:9000"),
                ("SAPINE_TEST_POSTGRES_URL", "x"),
                ("SAPINE_CONFIG", "f"),
                ("PATH", "/bin"),
            ],
            &[("bind", "127.0.0.1:9001")],
        )
        .unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:9001");
        assert!(
            matches!(load(&[("SAPINE_BINDD", "x")], &[]), Err(ConfigError::UnknownKey(k)) if k == "SAPINE_BINDD")
        );
        assert!(
            matches!(load(&[], &[("default_plan", "gold")]), Err(ConfigError::Invalid { key, .. }) if key == "default_plan")
        );
        assert!(
            matches!(load(&[], &[("metrics_interval_ms", "99")]), Err(ConfigError::Invalid { key, .. }) if key == "metrics_interval_ms")
        );
        assert_eq!(
            load(&[], &[("metrics_interval_ms", "100")])
                .unwrap()
                .metrics_interval_ms,
            100
        );
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    }
}
