//! Resource metrics of bots: what the runtime measures, how raw counters become samples, how
//! samples roll up into coarser series kept for longer, and how a query picks and buckets them.
//!
//! Every stored row is an [`Aggregate`]: a raw sample is an aggregate of one, and a minute or an
//! hour is the merge of the samples in it. The store merges with the same rules as
//! [`Aggregate::merge`], so a bucket reads the same whether it was rolled up on write or on read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::{BotId, Bots, Runtime};
use crate::accounts::Caller;
use crate::clock::Clock;
use crate::{FieldError, Result, StoreError};

/// What the runtime can see of one running bot. Counters are cumulative since
/// `counters_started`; a new value there means they started again from zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub counters_started: Instant,
    pub read_at: Instant,
    pub cpu_usec: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub disk_read_bytes: Option<u64>,
    pub disk_write_bytes: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    /// How long the current run has lasted.
    pub uptime_ms: u64,
    pub restarts: u32,
}

/// How finely a series is kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
}

impl Resolution {
    /// Finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Raw, Resolution::Minute, Resolution::Hour];

    /// The width of a bucket in seconds; raw samples are not bucketed (0). Also the value the
    /// store keeps, so rows say what they are.
    pub fn width_secs(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::Minute => 60,
            Resolution::Hour => 3_600,
        }
    }

    pub fn retention(self) -> TimeDelta {
        match self {
            Resolution::Raw => TimeDelta::hours(24),
            Resolution::Minute => TimeDelta::days(7),
            Resolution::Hour => TimeDelta::days(90),
        }
    }

    /// The start of the bucket `ts_ms` falls in.
    pub fn bucket_ms(self, ts_ms: i64) -> i64 {
        match self.width_secs() * 1_000 {
            0 => ts_ms,
            width => ts_ms.div_euclid(width) * width,
        }
    }

    /// The finest resolution still holding data from `since`.
    pub fn covering(since: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| since >= now - r.retention())
            .unwrap_or(Resolution::Hour)
    }
}

/// Samples merged into one bucket (or a single raw sample).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Start of the bucket (the sample's own time for raw rows), in ms since the epoch.
    pub ts_ms: i64,
    pub samples: u64,
    /// Sum and count of the CPU readings, for an average that merges exactly.
    pub cpu_sum: f64,
    pub cpu_count: u64,
    /// The highest memory reading.
    pub memory_max: Option<u64>,
    /// Bytes moved during the bucket.
    pub disk_read_bytes: Option<u64>,
    pub disk_write_bytes: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    /// The latest sample's values.
    pub uptime_ms: u64,
    pub restarts: u32,
    /// When that latest sample was taken, so merges in any order keep the latest.
    pub last_ms: i64,
}

impl Aggregate {
    /// `other` folded into `self`: CPU averaged, memory at its peak, bytes added, uptime and
    /// restarts from the later sample.
    pub fn merge(&mut self, other: &Aggregate) {
        self.samples += other.samples;
        self.cpu_sum += other.cpu_sum;
        self.cpu_count += other.cpu_count;
        self.memory_max = max_of(self.memory_max, other.memory_max);
        self.disk_read_bytes = sum_of(self.disk_read_bytes, other.disk_read_bytes);
        self.disk_write_bytes = sum_of(self.disk_write_bytes, other.disk_write_bytes);
        self.net_rx_bytes = sum_of(self.net_rx_bytes, other.net_rx_bytes);
        self.net_tx_bytes = sum_of(self.net_tx_bytes, other.net_tx_bytes);
        if other.last_ms >= self.last_ms {
            self.uptime_ms = other.uptime_ms;
            self.restarts = other.restarts;
            self.last_ms = other.last_ms;
        }
    }

    /// The same values, as the bucket of `resolution` they belong to.
    pub fn in_bucket(&self, resolution: Resolution) -> Aggregate {
        Aggregate {
            ts_ms: resolution.bucket_ms(self.ts_ms),
            ..self.clone()
        }
    }

    pub fn cpu_percent(&self) -> Option<f64> {
        (self.cpu_count > 0).then(|| self.cpu_sum / self.cpu_count as f64)
    }
}

fn max_of(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn sum_of(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// One point of a series as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub ts: DateTime<Utc>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub disk_read_bytes: Option<u64>,
    pub disk_write_bytes: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub uptime_ms: u64,
    pub restarts: u32,
}

impl From<&Aggregate> for Sample {
    fn from(a: &Aggregate) -> Self {
        Sample {
            ts: DateTime::from_timestamp_millis(a.ts_ms).unwrap_or_default(),
            cpu_percent: a.cpu_percent(),
            memory_bytes: a.memory_max,
            disk_read_bytes: a.disk_read_bytes,
            disk_write_bytes: a.disk_write_bytes,
            net_rx_bytes: a.net_rx_bytes,
            net_tx_bytes: a.net_tx_bytes,
            uptime_ms: a.uptime_ms,
            restarts: a.restarts,
        }
    }
}

/// A validated request for a bot's series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Bucket width; `None` picks one (see [`MetricsQuery::plan`]).
    pub step: Option<TimeDelta>,
}

/// Most buckets one answer may hold.
const MAX_BUCKETS: i64 = 10_000;
/// Buckets aimed at when the caller names no step.
const DEFAULT_BUCKETS: i64 = 1_000;

impl MetricsQuery {
    /// Parses the raw query values; without `since` and `until` it is the last hour.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        step: Option<&str>,
        now: DateTime<Utc>,
    ) -> std::result::Result<Self, Vec<FieldError>> {
        let time = |field: &str, raw: Option<&str>| {
            raw.map(|r| {
                DateTime::parse_from_rfc3339(r.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        FieldError::new(field, "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z")
                    })
            })
            .transpose()
        };
        let until = time("until", until);
        let since = time("since", since);
        let step = step.map(parse_step).transpose();
        let errors: Vec<FieldError> = [until.as_ref().err(), since.as_ref().err(), step.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let (since, until, step) = (since.ok().flatten(), until.ok().flatten(), step.ok().flatten());
        let until = until.unwrap_or(now);
        let since = since.unwrap_or(until - TimeDelta::hours(1));
        if since >= until {
            return Err(vec![FieldError::new("since", "must be before until")]);
        }
        let query = Self { since, until, step };
        let (_, step_ms) = query.plan(now);
        if (until - since).num_milliseconds() / step_ms > MAX_BUCKETS {
            return Err(vec![FieldError::new(
                "step",
                format!("is too small for this range: at most {MAX_BUCKETS} buckets come back"),
            )]);
        }
        Ok(query)
    }

    /// The resolution to read (the finest whose retention still covers `since`) and the bucket
    /// width in ms: the step asked for, or without one, a step giving at most 1000 buckets;
    /// either rounded up to whole buckets of that resolution (whole seconds for raw samples).
    pub fn plan(&self, now: DateTime<Utc>) -> (Resolution, i64) {
        let resolution = Resolution::covering(self.since, now);
        let grain_ms = (resolution.width_secs() * 1_000).max(1_000);
        let step_ms = match self.step {
            Some(step) => step.num_milliseconds(),
            None => ceil_div((self.until - self.since).num_milliseconds(), DEFAULT_BUCKETS),
        };
        let step_ms = ceil_div(step_ms.max(1), grain_ms) * grain_ms;
        (resolution, step_ms)
    }
}

/// `n / d` rounded up, for positive `n` and `d` (i64::div_ceil is not stable yet).
fn ceil_div(n: i64, d: i64) -> i64 {
    n.saturating_add(d - 1) / d
}

/// `300`, `300s`, `5m`, `1h` or `1d`: a whole number of seconds, at least one, at most 90 days.
fn parse_step(raw: &str) -> std::result::Result<TimeDelta, FieldError> {
    let invalid = || {
        FieldError::new(
            "step",
            "must be a duration of at least 1 second and at most 90 days: seconds (60), or with a unit: 60s, 5m, 1h, 1d",
        )
    };
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let multiplier = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let secs = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|s| (1..=90 * 86_400).contains(s))
        .ok_or_else(invalid)?;
    Ok(TimeDelta::seconds(secs))
}

/// Merges `rows` (ordered by time) into buckets of `step_ms`, each starting at a multiple of it.
pub fn bucket(rows: &[Aggregate], step_ms: i64) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    for row in rows {
        let start = row.ts_ms.div_euclid(step_ms) * step_ms;
        match out.last_mut() {
            Some(last) if last.ts_ms == start => last.merge(row),
            _ => out.push(Aggregate {
                ts_ms: start,
                ..row.clone()
            }),
        }
    }
    out
}

type StoreResult<T> = std::result::Result<T, StoreError>;

/// Where series are kept. Rows are deleted with their bot.
#[async_trait]
pub trait MetricStore: Send + Sync + 'static {
    /// Stores each raw sample and merges it into its bucket of every coarser resolution, by the
    /// rules of [`Aggregate::merge`]. Samples of bots that no longer exist are dropped.
    async fn record_samples(&self, samples: &[(BotId, Aggregate)]) -> StoreResult<()>;
    /// The bot's rows of one resolution with `from_ms <= ts_ms < until_ms`, oldest first.
    async fn series(
        &self,
        bot: BotId,
        resolution: Resolution,
        from_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<Aggregate>>;
    /// Deletes rows of `resolution` older than `before_ms`.
    async fn prune(&self, resolution: Resolution, before_ms: i64) -> StoreResult<u64>;
}

/// Where counters were when last read, to turn the next reading into a rate.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    counters_started: Instant,
    at: Instant,
    cpu_usec: Option<u64>,
    disk_read_bytes: Option<u64>,
    disk_write_bytes: Option<u64>,
    net_rx_bytes: Option<u64>,
    net_tx_bytes: Option<u64>,
}

impl Baseline {
    /// Counters that start at zero when the runtime starts counting.
    fn zero(counters_started: Instant) -> Self {
        Self {
            counters_started,
            at: counters_started,
            cpu_usec: Some(0),
            disk_read_bytes: Some(0),
            disk_write_bytes: Some(0),
            net_rx_bytes: Some(0),
            net_tx_bytes: Some(0),
        }
    }

    fn of(usage: &Usage) -> Self {
        Self {
            counters_started: usage.counters_started,
            at: usage.read_at,
            cpu_usec: usage.cpu_usec,
            disk_read_bytes: usage.disk_read_bytes,
            disk_write_bytes: usage.disk_write_bytes,
            net_rx_bytes: usage.net_rx_bytes,
            net_tx_bytes: usage.net_tx_bytes,
        }
    }
}

/// A counter's growth; a counter that went down (a process of the tree ended, when counting
/// from /proc) counts as no growth rather than as a huge one.
fn growth(now: Option<u64>, before: Option<u64>) -> Option<u64> {
    Some(now?.saturating_sub(before.unwrap_or(0)))
}

/// Turns a reading into a sample: CPU % over the time since the previous reading (100 = one
/// core busy), bytes moved since then.
fn sample_of(usage: &Usage, before: &Baseline, ts_ms: i64) -> Aggregate {
    let elapsed = usage.read_at.saturating_duration_since(before.at);
    let cpu = growth(usage.cpu_usec, before.cpu_usec)
        .filter(|_| elapsed >= Duration::from_millis(1))
        .map(|used| used as f64 * 100.0 / elapsed.as_micros() as f64);
    Aggregate {
        ts_ms,
        samples: 1,
        cpu_sum: cpu.unwrap_or(0.0),
        cpu_count: u64::from(cpu.is_some()),
        memory_max: usage.memory_bytes,
        disk_read_bytes: growth(usage.disk_read_bytes, before.disk_read_bytes),
        disk_write_bytes: growth(usage.disk_write_bytes, before.disk_write_bytes),
        net_rx_bytes: growth(usage.net_rx_bytes, before.net_rx_bytes),
        net_tx_bytes: growth(usage.net_tx_bytes, before.net_tx_bytes),
        uptime_ms: usage.uptime_ms,
        restarts: usage.restarts,
        last_ms: ts_ms,
    }
}

/// Samples running bots and serves their series.
pub struct BotMetrics {
    store: Arc<dyn MetricStore>,
    runtime: Arc<dyn Runtime>,
    bots: Arc<Bots>,
    clock: Arc<dyn Clock>,
    baselines: Mutex<HashMap<BotId, Baseline>>,
}

impl BotMetrics {
    pub fn new(
        store: Arc<dyn MetricStore>,
        runtime: Arc<dyn Runtime>,
        bots: Arc<Bots>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            runtime,
            bots,
            clock,
            baselines: Mutex::new(HashMap::new()),
        }
    }

    /// Reads every running bot once and records a sample of each; returns how many.
    pub async fn sample(&self) -> Result<usize> {
        let usage = self.runtime.usage().await;
        let ts_ms = self.clock.now().timestamp_millis();
        let samples: Vec<(BotId, Aggregate)> = {
            let mut baselines = self.baselines.lock().unwrap_or_else(|p| p.into_inner());
            // Bots that stopped are forgotten; their next run counts from zero again.
            baselines.retain(|bot, _| usage.iter().any(|(b, _)| b == bot));
            usage
                .iter()
                .map(|(bot, usage)| {
                    let before = baselines
                        .get(bot)
                        .filter(|b| b.counters_started == usage.counters_started)
                        .copied()
                        .unwrap_or_else(|| Baseline::zero(usage.counters_started));
                    baselines.insert(*bot, Baseline::of(usage));
                    (*bot, sample_of(usage, &before, ts_ms))
                })
                .collect()
        };
        if !samples.is_empty() {
            self.store.record_samples(&samples).await?;
        }
        Ok(samples.len())
    }

    /// Deletes what each resolution keeps no longer.
    pub async fn prune(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut deleted = 0;
        for resolution in Resolution::ALL {
            let before = (now - resolution.retention()).timestamp_millis();
            deleted += self.store.prune(resolution, before).await?;
        }
        Ok(deleted)
    }

    /// Parses a query against this service's clock: without a range it is the last hour.
    pub fn query(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        step: Option<&str>,
    ) -> std::result::Result<MetricsQuery, Vec<FieldError>> {
        MetricsQuery::parse(since, until, step, self.clock.now())
    }

    /// The series of one of the caller's bots; anyone else's is not found.
    pub async fn series(&self, caller: &Caller, key: &str, query: &MetricsQuery) -> Result<Vec<Sample>> {
        let bot = self.bots.find(caller, key).await?;
        let (resolution, step_ms) = query.plan(self.clock.now());
        // Whole buckets: the first one may start before `since`.
        let from_ms = query.since.timestamp_millis().div_euclid(step_ms) * step_ms;
        let rows = self
            .store
            .series(bot.id, resolution, from_ms, query.until.timestamp_millis())
            .await?;
        Ok(bucket(&rows, step_ms).iter().map(Sample::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn row(ts_ms: i64, cpu: f64, memory: u64, uptime_ms: u64) -> Aggregate {
        Aggregate {
            ts_ms,
            samples: 1,
            cpu_sum: cpu,
            cpu_count: 1,
            memory_max: Some(memory),
            disk_read_bytes: Some(10),
            disk_write_bytes: None,
            net_rx_bytes: None,
            net_tx_bytes: None,
            uptime_ms,
            restarts: (uptime_ms / 1_000) as u32,
            last_ms: ts_ms,
        }
    }

    #[test]
    fn the_finest_resolution_covering_since_is_read() {
        let now = at("2025-03-01T12:00:00Z");
        let covering = |hours: i64| Resolution::covering(now - TimeDelta::hours(hours), now);
        assert_eq!(covering(1), Resolution::Raw);
        assert_eq!(covering(24), Resolution::Raw);
        assert_eq!(covering(25), Resolution::Minute);
        assert_eq!(covering(7 * 24), Resolution::Minute);
        assert_eq!(covering(7 * 24 + 1), Resolution::Hour);
        assert_eq!(covering(365 * 24), Resolution::Hour);
    }

    #[test]
    fn steps_are_never_finer_than_the_resolution() {
        let now = at("2025-03-01T12:00:00Z");
        let query = |since_h: i64, step: Option<&str>| {
            let since = (now - TimeDelta::hours(since_h)).to_rfc3339();
            MetricsQuery::parse(Some(&since), None, step, now).expect("valid")
        };
        assert_eq!(query(1, None).plan(now), (Resolution::Raw, 4_000));
        assert_eq!(query(1, Some("10s")).plan(now), (Resolution::Raw, 10_000));
        assert_eq!(query(48, Some("10")).plan(now), (Resolution::Minute, 60_000));
        assert_eq!(query(48, Some("5m")).plan(now), (Resolution::Minute, 300_000));
        assert_eq!(query(48, Some("90s")).plan(now), (Resolution::Minute, 120_000));
        assert_eq!(query(48, None).plan(now), (Resolution::Minute, 180_000));
        assert_eq!(query(30 * 24, None).plan(now), (Resolution::Hour, 3_600_000));
    }

    #[test]
    fn queries_default_to_the_last_hour_and_name_bad_fields() {
        let now = at("2025-03-01T12:00:00Z");
        let q = MetricsQuery::parse(None, None, None, now).expect("defaults");
        assert_eq!(
            (q.since, q.until, q.step),
            (at("2025-03-01T11:00:00Z"), now, None)
        );
        let fields = |since, until, step| {
            MetricsQuery::parse(since, until, step, now)
                .expect_err("invalid")
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(Some("yesterday"), None, Some("0")), ["since", "step"]);
        assert_eq!(fields(None, Some("2025-13-01T00:00:00Z"), None), ["until"]);
        assert_eq!(
            fields(Some("2025-03-01T12:00:00Z"), Some("2025-03-01T11:00:00Z"), None),
            ["since"]
        );
        for bad in ["", "x", "5 m", "-5", "1w", "99999999999999999999", "91d"] {
            assert_eq!(fields(None, None, Some(bad)), ["step"], "{bad:?}");
        }
        assert_eq!(fields(Some("2025-03-01T00:00:00Z"), None, Some("1s")), ["step"]);
        // Over months, hourly rows make even a one-second step a few thousand buckets.
        assert!(MetricsQuery::parse(Some("2025-01-01T00:00:00Z"), None, Some("1s"), now).is_ok());
        for (good, secs) in [
            ("60", 60),
            ("60s", 60),
            ("5m", 300),
            ("1h", 3_600),
            ("2d", 172_800),
        ] {
            let q = MetricsQuery::parse(None, None, Some(good), now).expect(good);
            assert_eq!(q.step, Some(TimeDelta::seconds(secs)));
        }
    }

    #[test]
    fn buckets_average_cpu_keep_peak_memory_and_the_last_uptime() {
        let rows = [
            row(0, 10.0, 100, 1_000),
            row(5_000, 30.0, 300, 6_000),
            row(10_000, 50.0, 200, 11_000),
            row(60_000, 90.0, 50, 61_000),
        ];
        let buckets = bucket(&rows, 60_000);
        assert_eq!(buckets.len(), 2);
        let first = Sample::from(&buckets[0]);
        assert_eq!(first.ts.timestamp_millis(), 0);
        assert_eq!(first.cpu_percent, Some(30.0));
        assert_eq!(first.memory_bytes, Some(300));
        assert_eq!(first.uptime_ms, 11_000);
        assert_eq!(first.restarts, 11);
        assert_eq!(first.disk_read_bytes, Some(30));
        assert_eq!(first.disk_write_bytes, None);
        assert_eq!(Sample::from(&buckets[1]).cpu_percent, Some(90.0));
    }

    #[test]
    fn rollups_merge_the_same_in_any_order() {
        let rows = [
            row(1_000, 20.0, 5, 1),
            row(2_000, 40.0, 9, 2),
            row(3_000, 60.0, 7, 3),
        ];
        let mut forward = rows[0].in_bucket(Resolution::Minute);
        forward.merge(&rows[1]);
        forward.merge(&rows[2]);
        let mut backward = rows[2].in_bucket(Resolution::Minute);
        backward.merge(&rows[1]);
        backward.merge(&rows[0]);
        assert_eq!(forward, backward);
        assert_eq!(forward.ts_ms, 0);
        assert_eq!(
            (forward.samples, forward.cpu_percent(), forward.memory_max),
            (3, Some(40.0), Some(9))
        );
        assert_eq!(forward.uptime_ms, 3);
        assert_eq!(Resolution::Hour.bucket_ms(3_599_999), 0);
        assert_eq!(Resolution::Hour.bucket_ms(3_600_000), 3_600_000);
    }

    #[test]
    fn cpu_percent_comes_from_counter_growth() {
        let start = Instant::now();
        let usage = |secs: u64, cpu_usec: u64| Usage {
            counters_started: start,
            read_at: start + Duration::from_secs(secs),
            cpu_usec: Some(cpu_usec),
            memory_bytes: Some(1),
            disk_read_bytes: Some(secs * 100),
            disk_write_bytes: None,
            net_rx_bytes: None,
            net_tx_bytes: None,
            uptime_ms: secs * 1_000,
            restarts: 0,
        };
        // From the start of counting: one core busy for 2 of 4 seconds.
        let first = sample_of(&usage(4, 2_000_000), &Baseline::zero(start), 0);
        assert_eq!(first.cpu_percent(), Some(50.0));
        assert_eq!(first.disk_read_bytes, Some(400));
        // Then a full core over the next second.
        let second = sample_of(&usage(5, 3_000_000), &Baseline::of(&usage(4, 2_000_000)), 0);
        assert_eq!(second.cpu_percent(), Some(100.0));
        assert_eq!(second.disk_read_bytes, Some(100));
        // A counter that went down grows by nothing.
        let dropped = sample_of(&usage(6, 1_000_000), &Baseline::of(&usage(5, 3_000_000)), 0);
        assert_eq!(dropped.cpu_percent(), Some(0.0));
    }
}
