//! The SQL for bots' resource series, written once for both backends like `bots.rs`;
//! `metric_store!` implements the port for each concrete pool.

use sapine_core::StoreError;
use sapine_core::bots::Aggregate;

/// Writes a row, or merges it into the row of the same bucket by the rules of
/// `Aggregate::merge`. Written as INSERT ... SELECT so a sample of a bot deleted meanwhile is
/// dropped rather than failing the whole batch (SQLite needs the WHERE there for the upsert).
pub(crate) const UPSERT: &str = "INSERT INTO bot_metrics (bot_id, resolution, ts, samples, cpu_sum, cpu_count, memory_max, \
     disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes, uptime_ms, restarts, last_ts) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
     WHERE EXISTS (SELECT 1 FROM bots WHERE id = $1) \
     ON CONFLICT (bot_id, resolution, ts) DO UPDATE SET \
     samples = bot_metrics.samples + excluded.samples, \
     cpu_sum = bot_metrics.cpu_sum + excluded.cpu_sum, \
     cpu_count = bot_metrics.cpu_count + excluded.cpu_count, \
     memory_max = CASE WHEN COALESCE(excluded.memory_max, -1) > COALESCE(bot_metrics.memory_max, -1) \
         THEN excluded.memory_max ELSE bot_metrics.memory_max END, \
     disk_read_bytes = CASE WHEN excluded.disk_read_bytes IS NULL THEN bot_metrics.disk_read_bytes \
         ELSE COALESCE(bot_metrics.disk_read_bytes, 0) + excluded.disk_read_bytes END, \
     disk_write_bytes = CASE WHEN excluded.disk_write_bytes IS NULL THEN bot_metrics.disk_write_bytes \
         ELSE COALESCE(bot_metrics.disk_write_bytes, 0) + excluded.disk_write_bytes END, \
     net_rx_bytes = CASE WHEN excluded.net_rx_bytes IS NULL THEN bot_metrics.net_rx_bytes \
         ELSE COALESCE(bot_metrics.net_rx_bytes, 0) + excluded.net_rx_bytes END, \
     net_tx_bytes = CASE WHEN excluded.net_tx_bytes IS NULL THEN bot_metrics.net_tx_bytes \
         ELSE COALESCE(bot_metrics.net_tx_bytes, 0) + excluded.net_tx_bytes END, \
     uptime_ms = CASE WHEN excluded.last_ts >= bot_metrics.last_ts THEN excluded.uptime_ms ELSE bot_metrics.uptime_ms END, \
     restarts = CASE WHEN excluded.last_ts >= bot_metrics.last_ts THEN excluded.restarts ELSE bot_metrics.restarts END, \
     last_ts = CASE WHEN excluded.last_ts >= bot_metrics.last_ts THEN excluded.last_ts ELSE bot_metrics.last_ts END";

pub(crate) const SERIES: &str = "SELECT ts, samples, cpu_sum, cpu_count, memory_max, disk_read_bytes, disk_write_bytes, \
     net_rx_bytes, net_tx_bytes, uptime_ms, restarts, last_ts FROM bot_metrics \
     WHERE bot_id = $1 AND resolution = $2 AND ts >= $3 AND ts < $4 ORDER BY ts";

#[derive(sqlx::FromRow)]
pub(crate) struct MetricRow {
    ts: i64,
    samples: i64,
    cpu_sum: f64,
    cpu_count: i64,
    memory_max: Option<i64>,
    disk_read_bytes: Option<i64>,
    disk_write_bytes: Option<i64>,
    net_rx_bytes: Option<i64>,
    net_tx_bytes: Option<i64>,
    uptime_ms: i64,
    restarts: i64,
    last_ts: i64,
}

/// The columns are BIGINT, signed; counts beyond it are clamped rather than wrapped.
pub(crate) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl TryFrom<MetricRow> for Aggregate {
    type Error = StoreError;

    fn try_from(r: MetricRow) -> Result<Self, StoreError> {
        let unsigned = |what: &str, n: i64| {
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("bot metric {what}: {n}")))
        };
        let optional = |what: &str, n: Option<i64>| n.map(|n| unsigned(what, n)).transpose();
        Ok(Aggregate {
            ts_ms: r.ts,
            samples: unsigned("samples", r.samples)?,
            cpu_sum: r.cpu_sum,
            cpu_count: unsigned("cpu_count", r.cpu_count)?,
            memory_max: optional("memory_max", r.memory_max)?,
            disk_read_bytes: optional("disk_read_bytes", r.disk_read_bytes)?,
            disk_write_bytes: optional("disk_write_bytes", r.disk_write_bytes)?,
            net_rx_bytes: optional("net_rx_bytes", r.net_rx_bytes)?,
            net_tx_bytes: optional("net_tx_bytes", r.net_tx_bytes)?,
            uptime_ms: unsigned("uptime_ms", r.uptime_ms)?,
            restarts: u32::try_from(r.restarts)
                .map_err(|_| StoreError::Corrupt(format!("bot metric restarts: {}", r.restarts)))?,
            last_ms: r.last_ts,
        })
    }
}

macro_rules! metric_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl sapine_core::bots::MetricStore for $store {
            async fn record_samples(&self, samples: &[(BotId, Aggregate)]) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                for (bot, sample) in samples {
                    for resolution in Resolution::ALL {
                        let row = sample.in_bucket(resolution);
                        let width = i32::try_from(resolution.width_secs()).unwrap_or(i32::MAX);
                        sqlx::query(crate::metrics::UPSERT)
                            .bind(bot.0)
                            .bind(width)
                            .bind(row.ts_ms)
                            .bind(signed(row.samples))
                            .bind(row.cpu_sum)
                            .bind(signed(row.cpu_count))
                            .bind(row.memory_max.map(signed))
                            .bind(row.disk_read_bytes.map(signed))
                            .bind(row.disk_write_bytes.map(signed))
                            .bind(row.net_rx_bytes.map(signed))
                            .bind(row.net_tx_bytes.map(signed))
                            .bind(signed(row.uptime_ms))
                            .bind(i64::from(row.restarts))
                            .bind(row.last_ms)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                tx.commit().await.map_err(db_error)
            }

            async fn series(
                &self,
                bot: BotId,
                resolution: Resolution,
                from_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<Aggregate>> {
                sqlx::query_as::<_, MetricRow>(crate::metrics::SERIES)
                    .bind(bot.0)
                    .bind(i32::try_from(resolution.width_secs()).unwrap_or(i32::MAX))
                    .bind(from_ms)
                    .bind(until_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(Aggregate::try_from)
                    .collect()
            }

            async fn prune(&self, resolution: Resolution, before_ms: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM bot_metrics WHERE resolution = $1 AND ts < $2")
                    .bind(i32::try_from(resolution.width_secs()).unwrap_or(i32::MAX))
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use metric_store;
