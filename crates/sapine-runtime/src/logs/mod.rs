//! Bots' logs on this server: `<logs_dir>/<bot id>/` holds each bot's segment files. Lines are
//! written in batches, at the latest every `FLUSH_EVERY`, and whenever someone reads.

mod bot_log;
mod capture;
mod segment;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sapine_core::Error;
use sapine_core::bots::{BotId, FeedEnd, LogBatch, LogBook, LogFeed, LogFilter, LogLine, LogPage};
use tokio::sync::{Notify, mpsc};

pub use bot_log::BotLog;
use bot_log::{MAX_VIEWERS, Snapshot, ViewerShared, Watching};
pub use capture::capture;
use segment::{Flow, Scan};

/// Lines wait at most this long in memory before they are written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Age retention is applied this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Bytes of records one page of a listing may read through.
const READ_BUDGET: usize = 32 * 1024 * 1024;
/// Bytes of records a replay reads at a time.
const REPLAY_CHUNK: usize = 512 * 1024;

pub struct LogPipeline {
    dir: PathBuf,
    logs: Mutex<HashMap<BotId, Arc<BotLog>>>,
    /// Held while a log is read from disk, so one bot's files are never opened twice at once.
    opening: tokio::sync::Mutex<()>,
    /// Whether the previous server ended without writing out its logs.
    after_crash: bool,
    flusher: Arc<Notify>,
}

/// Written at a clean shutdown, once every line is on disk; removed at start.
const CLEAN_MARK: &str = ".clean-shutdown";

impl LogPipeline {
    /// Starts the task that writes lines out and applies retention; it ends when the pipeline
    /// is dropped.
    pub fn new(dir: PathBuf) -> Arc<Self> {
        let mark = dir.join(CLEAN_MARK);
        let after_crash = dir.exists() && !mark.exists();
        let flusher = Arc::new(Notify::new());
        let pipeline = Arc::new(Self {
            dir,
            logs: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            after_crash,
            flusher: flusher.clone(),
        });
        tokio::spawn(flush_regularly(Arc::downgrade(&pipeline), flusher));
        pipeline
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<BotId, Arc<BotLog>>> {
        self.logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bot's log, read from disk the first time it is asked for.
    pub async fn open(&self, bot: BotId) -> Result<Arc<BotLog>, Error> {
        if let Some(log) = self.lock().get(&bot) {
            return Ok(log.clone());
        }
        let _opening = self.opening.lock().await;
        if let Some(log) = self.lock().get(&bot) {
            return Ok(log.clone());
        }
        let dir = self.dir.join(bot.to_string());
        let (after_crash, flusher) = (self.after_crash, self.flusher.clone());
        let opened = tokio::task::spawn_blocking(move || BotLog::open(bot, dir, after_crash, flusher))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(format!("cannot open the bot's log: {e}")))?;
        Ok(self.lock().entry(bot).or_insert_with(|| Arc::new(opened)).clone())
    }

    /// Called by the server that will write the logs, once, at start: from here on, a missing
    /// clean-shutdown mark means this server did not end cleanly. Other commands that open the
    /// services (`admin`) leave it alone.
    pub fn begin(&self) {
        if self.after_crash {
            tracing::warn!("the last server did not shut down cleanly; its last log lines may be missing");
        }
        let _ = std::fs::remove_file(self.dir.join(CLEAN_MARK));
    }

    fn all(&self) -> Vec<Arc<BotLog>> {
        self.lock().values().cloned().collect()
    }

    /// Writes out every waiting line and ends every live viewer: for a server shutting down.
    pub async fn shutdown(&self) {
        let logs = self.all();
        let mark = self.dir.join(CLEAN_MARK);
        let _ = tokio::task::spawn_blocking(move || {
            for log in logs {
                log.flush();
                log.end_viewers(FeedEnd::ShuttingDown);
            }
            let written = mark
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&mark, b""));
            if let Err(e) = written {
                tracing::error!(error = %e, "cannot mark the logs as written out");
            }
        })
        .await;
    }
}

/// Writes out waiting lines every `FLUSH_EVERY`, or sooner when a log has much waiting, and
/// applies age retention every `SWEEP_EVERY`.
async fn flush_regularly(pipeline: Weak<LogPipeline>, woken: Arc<Notify>) {
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut swept = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = woken.notified() => {}
        }
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let logs = pipeline.all();
        drop(pipeline);
        let sweep = swept.elapsed() >= SWEEP_EVERY;
        if sweep {
            swept = std::time::Instant::now();
        }
        let _ = tokio::task::spawn_blocking(move || {
            for log in logs {
                if sweep {
                    log.maintain();
                } else {
                    log.flush();
                }
            }
        })
        .await;
    }
}

#[async_trait]
impl LogBook for LogPipeline {
    async fn read(&self, bot: BotId, filter: &LogFilter, after: u64, limit: usize) -> Result<LogPage, Error> {
        let log = self.open(bot).await?;
        let filter = filter.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = log.snapshot();
            read_page(&snapshot, &filter, after, limit)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }

    async fn follow(&self, bot: BotId, after: Option<u64>) -> Result<Box<dyn LogFeed>, Error> {
        let log = self.open(bot).await?;
        if log.viewers() >= MAX_VIEWERS {
            return Err(Error::QuotaExceeded(format!(
                "a bot can have at most {MAX_VIEWERS} live viewers"
            )));
        }
        let after = match after {
            Some(after) => after,
            None => log.next_seq() - 1,
        };
        metrics::gauge!("sapine_log_viewers").increment(1);
        Ok(Box::new(Feed {
            log,
            after,
            ready: VecDeque::new(),
            stage: Stage::Replay,
        }))
    }

    async fn remove(&self, bot: BotId) {
        let log = self.lock().remove(&bot);
        let dir = self.dir.join(bot.to_string());
        let _ = tokio::task::spawn_blocking(move || match log {
            Some(log) => log.remove(),
            None => {
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::error!(bot = %bot, error = %e, "cannot delete the bot's log");
                }
            }
        })
        .await;
    }
}

fn read_page(snapshot: &Snapshot, filter: &LogFilter, after: u64, limit: usize) -> Result<LogPage, Error> {
    let mut lines = Vec::new();
    let mut scanned = after;
    let until = filter.until;
    let keep = |ts, stream| {
        if until.is_some_and(|until| ts >= until) {
            Flow::Stop
        } else if filter.admits_batch(ts, stream) {
            Flow::Take
        } else {
            Flow::Skip
        }
    };
    let take = |batch: Arc<LogBatch>| {
        for (seq, line) in batch.lines() {
            scanned = seq;
            if filter.admits_line(line) {
                lines.push(LogLine {
                    seq,
                    ts: batch.ts,
                    stream: batch.stream,
                    line: line.to_owned(),
                });
                if lines.len() == limit {
                    return false;
                }
            }
        }
        true
    };
    let scan = segment::read_after(&snapshot.segments, after, READ_BUDGET, keep, take)
        .map_err(|e| Error::Internal(format!("cannot read the bot's log: {e}")))?;
    let next_after = match scan {
        Scan::Ended => None,
        Scan::Stopped => lines.last().map(|l| l.seq),
        Scan::BudgetSpent => Some(scanned),
    };
    Ok(LogPage { lines, next_after })
}

enum Stage {
    /// Reading what is on disk, before joining the live viewers.
    Replay,
    /// Reading what was written before joining, up to (not including) `live_from`.
    CatchUp {
        snapshot: Snapshot,
        live: mpsc::UnboundedReceiver<Arc<LogBatch>>,
        shared: Arc<ViewerShared>,
    },
    Live {
        live: mpsc::UnboundedReceiver<Arc<LogBatch>>,
        shared: Arc<ViewerShared>,
    },
}

struct Feed {
    log: Arc<BotLog>,
    /// The last seq handed out.
    after: u64,
    ready: VecDeque<Arc<LogBatch>>,
    stage: Stage,
}

impl Drop for Feed {
    fn drop(&mut self) {
        metrics::gauge!("sapine_log_viewers").decrement(1);
    }
}

impl Feed {
    async fn read_disk(&self, snapshot: Option<Snapshot>) -> Result<(Vec<Arc<LogBatch>>, bool), FeedEnd> {
        let log = self.log.clone();
        let after = self.after;
        tokio::task::spawn_blocking(move || {
            let snapshot = snapshot.unwrap_or_else(|| log.snapshot());
            let mut batches = Vec::new();
            let scan = segment::read_after(
                &snapshot.segments,
                after,
                REPLAY_CHUNK,
                |_, _| Flow::Take,
                |b| {
                    batches.push(b);
                    true
                },
            )?;
            Ok::<_, std::io::Error>((batches, scan == Scan::BudgetSpent))
        })
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(FeedEnd::ShuttingDown)
    }
}

#[async_trait]
impl LogFeed for Feed {
    async fn next(&mut self) -> Result<Arc<LogBatch>, FeedEnd> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                // Lines seen already (a batch straddling the replay and the live part) are cut.
                if let Some(batch) = batch.after(self.after) {
                    self.after = batch.last_seq();
                    return Ok(batch);
                }
                continue;
            }
            // Waiting for live lines leaves the stage in place, so a caller may drop this
            // future (when its client goes) without losing its place among the viewers.
            if let Stage::Live { live, shared } = &mut self.stage {
                match live.recv().await {
                    Some(batch) => {
                        shared.queued.fetch_sub(batch.text_bytes(), Ordering::AcqRel);
                        self.ready.push_back(batch);
                        continue;
                    }
                    None => return Err(shared.end().unwrap_or(FeedEnd::ShuttingDown)),
                }
            }
            match std::mem::replace(&mut self.stage, Stage::Replay) {
                Stage::Replay => {
                    let (batches, more) = self.read_disk(None).await?;
                    if batches.is_empty() && !more {
                        // Caught up with the disk: join the live viewers, then read what was
                        // written in between.
                        let Watching {
                            snapshot,
                            live,
                            shared,
                        } = self.log.watch()?;
                        self.stage = Stage::CatchUp {
                            snapshot,
                            live,
                            shared,
                        };
                    }
                    self.ready.extend(batches);
                }
                Stage::CatchUp {
                    snapshot,
                    live,
                    shared,
                } => {
                    let (batches, more) = if self.after + 1 >= snapshot.next_seq {
                        (Vec::new(), false)
                    } else {
                        self.read_disk(Some(snapshot.clone())).await?
                    };
                    self.stage = if batches.is_empty() && !more {
                        Stage::Live { live, shared }
                    } else {
                        Stage::CatchUp {
                            snapshot,
                            live,
                            shared,
                        }
                    };
                    self.ready.extend(batches);
                }
                live @ Stage::Live { .. } => self.stage = live,
            }
        }
    }
}
