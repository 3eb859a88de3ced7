-- Resource series of bots. resolution is the bucket width in seconds (0: raw samples, 60,
-- 3600); ts is the bucket's start (a raw sample's own time) in ms since the epoch. Each row
-- keeps what merging needs: CPU as sum and count, memory at its peak, bytes moved, and the
-- latest sample's uptime and restarts with that sample's time.
CREATE TABLE bot_metrics (
    bot_id           BLOB NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    resolution       INTEGER NOT NULL,
    ts               BIGINT NOT NULL,
    samples          BIGINT NOT NULL,
    cpu_sum          DOUBLE PRECISION NOT NULL,
    cpu_count        BIGINT NOT NULL,
    memory_max       BIGINT,
    disk_read_bytes  BIGINT,
    disk_write_bytes BIGINT,
    net_rx_bytes     BIGINT,
    net_tx_bytes     BIGINT,
    uptime_ms        BIGINT NOT NULL,
    restarts         BIGINT NOT NULL,
    last_ts          BIGINT NOT NULL,
    PRIMARY KEY (bot_id, resolution, ts)
);
-- Pruning deletes by age across all bots.
CREATE INDEX bot_metrics_age ON bot_metrics (resolution, ts);
