//! What a plan allows each user and each of their bots.

use std::collections::HashMap;

use crate::Error;
use crate::accounts::PlanName;

use super::{Limits, LogLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    pub max_bots: u32,
    pub memory_mb: u64,
    pub cpu_percent: u32,
    pub pids: u64,
    pub disk_mb: u64,
    pub upload_mb: u64,
    /// Whether bots may reach the network; without it each runs in an empty network namespace.
    pub network: bool,
    /// How much log each bot keeps and how fast it may print.
    pub logs: LogLimits,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_bots: 5,
            memory_mb: 256,
            cpu_percent: 100,
            pids: 128,
            disk_mb: 512,
            upload_mb: 50,
            network: true,
            logs: LogLimits::default(),
        }
    }
}

impl PlanLimits {
    /// Reads `max_bots=5 memory_mb=256 ...`; keys left out keep their defaults.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut plan = Self::default();
        for pair in text.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{key} must be a positive whole number"))
            };
            match key {
                "max_bots" => plan.max_bots = u32::try_from(number()?).map_err(|e| e.to_string())?,
                "memory_mb" => plan.memory_mb = number()?,
                "cpu_percent" => plan.cpu_percent = u32::try_from(number()?).map_err(|e| e.to_string())?,
                "pids" => plan.pids = number()?,
                "disk_mb" => plan.disk_mb = number()?,
                "upload_mb" => plan.upload_mb = number()?,
                "log_mb" => plan.logs.max_bytes = number()?.saturating_mul(1024 * 1024),
                "log_retention" => plan.logs.max_age = parse_duration(value)?,
                "log_rate" => {
                    plan.logs.lines_per_second = u32::try_from(number()?).map_err(|e| e.to_string())?
                }
                "network" => {
                    plan.network = match value {
                        "on" | "true" => true,
                        "off" | "false" => false,
                        _ => return Err("network must be on or off".into()),
                    }
                }
                other => {
                    return Err(format!(
                        "unknown plan limit {other:?} (known: max_bots, memory_mb, cpu_percent, pids, disk_mb, upload_mb, network, log_mb, log_retention, log_rate)"
                    ));
                }
            }
        }
        Ok(plan)
    }

    /// The limits a bot asks for, checked against the plan; unset ones get the plan's maximum.
    pub fn resolve(&self, asked: Limits) -> Result<ResolvedLimits, Error> {
        let check = |name: &'static str, value: Option<u64>, max: u64| match value {
            Some(v) if v > max => Err(Error::QuotaExceeded(format!(
                "limits.{name} is {v}, above your plan's {max}"
            ))),
            Some(0) => Err(Error::field(&format!("limits.{name}"), "must be more than 0")),
            Some(v) => Ok(v),
            None => Ok(max),
        };
        Ok(ResolvedLimits {
            memory_mb: check("memory_mb", asked.memory_mb, self.memory_mb)?,
            cpu_percent: check(
                "cpu_percent",
                asked.cpu_percent.map(u64::from),
                u64::from(self.cpu_percent),
            )? as u32,
            pids: check("pids", asked.pids, self.pids)?,
            disk_mb: check("disk_mb", asked.disk_mb, self.disk_mb)?,
            network: self.network,
            logs: self.logs,
        })
    }
}

/// Ten years: longer is a typo, and would not fit a date.
const MAX_LOG_RETENTION_DAYS: u64 = 3650;

/// `30d`, `12h`, `15m` or `90s`.
fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let error = || format!("log_retention {value:?} must be a positive number followed by s, m, h or d");
    let unit = value.chars().last().ok_or_else(error)?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(error()),
    };
    let n: u64 = value[..value.len() - 1]
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(error)?;
    let secs = n.saturating_mul(seconds);
    if secs > MAX_LOG_RETENTION_DAYS * 86_400 {
        return Err(format!(
            "log_retention {value:?} is over {MAX_LOG_RETENTION_DAYS}d"
        ));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// The limits a run gets, every one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedLimits {
    pub memory_mb: u64,
    pub cpu_percent: u32,
    pub pids: u64,
    pub disk_mb: u64,
    pub network: bool,
    pub logs: LogLimits,
}

/// Every configured plan; a user whose plan was removed from the configuration gets the default.
#[derive(Debug, Clone)]
pub struct Plans {
    plans: HashMap<String, PlanLimits>,
    default: PlanLimits,
}

impl Plans {
    pub fn new(plans: HashMap<PlanName, PlanLimits>, default: PlanLimits) -> Self {
        Self {
            plans: plans
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect(),
            default,
        }
    }

    pub fn of(&self, plan: &PlanName) -> PlanLimits {
        self.plans.get(plan.as_str()).copied().unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_limits() {
        let plan = PlanLimits::parse("max_bots=2 memory_mb=64 network=off").unwrap();
        assert_eq!((plan.max_bots, plan.memory_mb, plan.network), (2, 64, false));
        assert!(PlanLimits::parse("memory=1").is_err());
        assert!(PlanLimits::parse("pids=0").is_err());
        let logs = PlanLimits::parse("log_mb=2 log_retention=7d log_rate=10")
            .unwrap()
            .logs;
        assert_eq!(logs.max_bytes, 2 * 1024 * 1024);
        assert_eq!(logs.max_age.as_secs(), 7 * 86_400);
        assert_eq!(logs.lines_per_second, 10);
        for bad in [
            "log_retention=7",
            "log_retention=0s",
            "log_retention=d",
            "log_retention=3651d",
            "log_retention=5w",
        ] {
            assert!(PlanLimits::parse(bad).is_err(), "{bad}");
        }
        let resolved = plan
            .resolve(Limits {
                memory_mb: Some(32),
                ..Limits::default()
            })
            .unwrap();
        assert_eq!((resolved.memory_mb, resolved.pids), (32, plan.pids));
        assert!(matches!(
            plan.resolve(Limits {
                memory_mb: Some(65),
                ..Limits::default()
            }),
            Err(Error::QuotaExceeded(_))
        ));
    }
}
