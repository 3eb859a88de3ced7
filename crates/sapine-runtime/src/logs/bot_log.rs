//! One bot's log while the server runs: numbers lines, throttles floods, keeps a short tail in
//! memory, hands new lines to live viewers and writes them, batched, to segment files within
//! the plan's size and age.

use std::collections::VecDeque;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use sapine_core::bots::{BotId, FeedEnd, LogBatch, LogLimits, LogStream};
use tokio::sync::{Notify, mpsc};

use super::segment::{self, Segment};

/// Text kept in memory per bot for crash records and quick replays.
const TAIL_BYTES: usize = 64 * 1024;
/// The flusher is woken once this much waits to be written, before its next round.
const FLUSH_BYTES: usize = 256 * 1024;
/// Written at once by the bot's own reader once this much waits: a disk slower than the bot
/// holds the bot back rather than letting memory grow.
const FLUSH_NOW_BYTES: usize = 4 * 1024 * 1024;
/// The most lines that can wait unwritten: `FLUSH_NOW_BYTES` at four bytes or more a line, plus
/// one batch. What a crashed server may have shown viewers but not written.
const UNWRITTEN_LINES_MAX: u64 = (FLUSH_NOW_BYTES as u64 + 1024 * 1024) / 4;
/// A viewer further behind than this is disconnected.
pub const VIEWER_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Live viewers per bot.
pub const MAX_VIEWERS: usize = 32;
/// Largest segment file; smaller when the plan keeps little, so retention can act on it.
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const MIN_SEGMENT_BYTES: u64 = 16 * 1024;

pub struct BotLog {
    bot: BotId,
    dir: PathBuf,
    /// Woken when enough waits to be written.
    flusher: Arc<Notify>,
    state: Mutex<State>,
}

/// What a batch costs in memory: its text, its line ends and the rest of it.
fn cost(batch: &LogBatch) -> usize {
    batch.text_bytes() + 4 * batch.len() + 64
}

struct State {
    next_seq: u64,
    /// When the newest line was added.
    last_ts: Option<DateTime<Utc>>,
    segments: Vec<Segment>,
    /// Bytes of the segments together.
    kept_bytes: u64,
    /// Batches not written yet, oldest first.
    pending: Vec<Arc<LogBatch>>,
    pending_bytes: usize,
    tail: VecDeque<Arc<LogBatch>>,
    tail_bytes: usize,
    viewers: Vec<Viewer>,
    /// The owner's plan's bounds, known once the bot runs on this server; until then nothing
    /// is deleted, since the plan may keep more than the defaults.
    limits: Option<LogLimits>,
    throttle: Throttle,
    removed: bool,
}

/// A live viewer's end of the log: batches go into its queue until it falls too far behind.
pub struct Viewer {
    queue: mpsc::UnboundedSender<Arc<LogBatch>>,
    shared: Arc<ViewerShared>,
}

/// What a viewer and the log both see.
#[derive(Default)]
pub struct ViewerShared {
    /// Text bytes queued and not yet taken.
    pub queued: AtomicUsize,
    /// Why the log ended the feed (a `FeedEnd` code), 0 while it has not.
    end: AtomicU8,
}

impl ViewerShared {
    pub fn end(&self) -> Option<FeedEnd> {
        match self.end.load(Ordering::Acquire) {
            1 => Some(FeedEnd::TooSlow),
            2 => Some(FeedEnd::Deleted),
            3 => Some(FeedEnd::ShuttingDown),
            _ => None,
        }
    }

    fn set_end(&self, end: FeedEnd) {
        let code = match end {
            FeedEnd::TooSlow => 1,
            FeedEnd::Deleted => 2,
            FeedEnd::ShuttingDown => 3,
        };
        self.end.store(code, Ordering::Release);
    }
}

/// A token bucket of lines: a second's worth of burst, refilled at the plan's rate.
struct Throttle {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
    noticed: Instant,
}

impl Throttle {
    fn new() -> Self {
        Self {
            tokens: f64::MAX,
            refilled: Instant::now(),
            dropped: 0,
            noticed: Instant::now(),
        }
    }

    /// How many of `lines` may pass now.
    fn admit(&mut self, lines: usize, rate: u32) -> usize {
        let now = Instant::now();
        let rate = f64::from(rate);
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate);
        self.refilled = now;
        let admitted = (self.tokens.floor() as usize).min(lines);
        self.tokens -= admitted as f64;
        self.dropped += (lines - admitted) as u64;
        admitted
    }

    /// The notice for lines dropped since the last one, at most once a second unless `now`.
    fn notice(&mut self, rate: u32, now: bool) -> Option<String> {
        if self.dropped == 0 || (!now && self.noticed.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        self.noticed = Instant::now();
        let dropped = std::mem::take(&mut self.dropped);
        Some(format!(
            "output throttled: {dropped} lines dropped (the plan allows {rate} lines per second)"
        ))
    }
}

/// A new live viewer: what is on disk from before it joined, and its queue of what comes after.
pub struct Watching {
    pub snapshot: Snapshot,
    pub live: mpsc::UnboundedReceiver<Arc<LogBatch>>,
    pub shared: Arc<ViewerShared>,
}

/// What a reader needs to read the log without holding it.
#[derive(Clone)]
pub struct Snapshot {
    pub segments: Vec<Segment>,
    pub next_seq: u64,
}

impl BotLog {
    /// Opens the bot's log in `dir`. After a server that did not shut down cleanly, the
    /// numbering skips ahead past every seq that may have reached a viewer without reaching
    /// the disk, so no seq is ever given to two lines.
    pub fn open(bot: BotId, dir: PathBuf, after_crash: bool, flusher: Arc<Notify>) -> std::io::Result<Self> {
        let segment::Opened {
            segments,
            mut next_seq,
            last_ts,
        } = segment::open_dir(&dir)?;
        let mut segments = segments;
        if after_crash && !segments.is_empty() {
            next_seq += UNWRITTEN_LINES_MAX;
            segment::mark_next(&dir, next_seq)?;
            segments.push(Segment {
                path: dir.join(segment::file_name(next_seq)),
                first_seq: next_seq,
                first_ts: Utc::now(),
                bytes: 0,
            });
        }
        let kept_bytes = segments.iter().map(|s| s.bytes).sum();
        Ok(Self {
            bot,
            dir,
            flusher,
            state: Mutex::new(State {
                next_seq,
                last_ts,
                segments,
                kept_bytes,
                pending: Vec::new(),
                pending_bytes: 0,
                tail: VecDeque::new(),
                tail_bytes: 0,
                viewers: Vec::new(),
                limits: None,
                throttle: Throttle::new(),
                removed: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The plan's bounds, applied from the next line on.
    pub fn set_limits(&self, limits: LogLimits) {
        self.lock().limits = Some(limits);
    }

    /// The seq the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Adds a bot's output, as much of it as the plan's rate allows.
    pub fn append(&self, mut batch: LogBatch) {
        let mut state = self.lock();
        if state.removed {
            return;
        }
        let rate = state.limits.unwrap_or_default().lines_per_second;
        let lines = batch.len();
        let admitted = state.throttle.admit(lines, rate);
        if admitted < lines {
            metrics::counter!("sapine_log_dropped_lines_total").increment((lines - admitted) as u64);
            batch.truncate(admitted);
        }
        if !batch.is_empty() {
            self.publish(&mut state, batch);
        }
        if let Some(notice) = state.throttle.notice(rate, false) {
            self.publish_system(&mut state, &notice);
        }
    }

    /// A line of the platform's own.
    pub fn system(&self, line: &str) {
        let mut state = self.lock();
        if !state.removed {
            self.publish_system(&mut state, line);
        }
    }

    /// Says how many lines were dropped since the last notice, if any were: at the end of a run,
    /// so no drop goes unreported.
    pub fn report_drops(&self) {
        let mut state = self.lock();
        let rate = state.limits.unwrap_or_default().lines_per_second;
        if let Some(notice) = state.throttle.notice(rate, true) {
            self.publish_system(&mut state, &notice);
        }
    }

    fn publish_system(&self, state: &mut State, line: &str) {
        let mut batch = LogBatch::new(0, Utc::now(), LogStream::System);
        batch.push(line);
        self.publish(state, batch);
    }

    fn publish(&self, state: &mut State, mut batch: LogBatch) {
        batch.first_seq = state.next_seq;
        // Stamped under the lock, so time never goes backwards along the seqs; to the
        // microsecond, as segments keep it, so a line reads the same live and from disk.
        let now = Utc::now().trunc_subsecs(6);
        batch.ts = state.last_ts.map_or(now, |last| now.max(last));
        state.last_ts = Some(batch.ts);
        state.next_seq += batch.len() as u64;
        metrics::counter!("sapine_log_lines_total").increment(batch.len() as u64);
        metrics::counter!("sapine_log_bytes_total").increment(batch.text_bytes() as u64);
        let batch = Arc::new(batch);
        let bytes = cost(&batch);
        state.viewers.retain(|viewer| {
            let queued = viewer.shared.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
            if queued > VIEWER_QUEUE_BYTES {
                viewer.shared.set_end(FeedEnd::TooSlow);
                return false;
            }
            viewer.queue.send(batch.clone()).is_ok()
        });
        state.tail_bytes += bytes;
        state.tail.push_back(batch.clone());
        while state.tail.len() > 1 && state.tail_bytes - cost(&state.tail[0]) >= TAIL_BYTES {
            if let Some(old) = state.tail.pop_front() {
                state.tail_bytes -= cost(&old);
            }
        }
        state.pending_bytes += bytes;
        state.pending.push(batch);
        if state.pending_bytes >= FLUSH_NOW_BYTES {
            self.flush_locked(state);
        } else if state.pending_bytes >= FLUSH_BYTES {
            self.flusher.notify_one();
        }
    }

    /// The text of the bot's newest `n` lines of output from `since_seq` on, from the tail, with
    /// the platform's own lines too if `system`.
    pub fn last_lines(&self, since_seq: u64, n: usize, system: bool) -> Vec<String> {
        let state = self.lock();
        let mut lines: Vec<String> = state
            .tail
            .iter()
            .rev()
            .filter(|b| system || b.stream != LogStream::System)
            .flat_map(|b| {
                let mut lines: Vec<_> = b.lines().filter(|(seq, _)| *seq >= since_seq).collect();
                lines.reverse();
                lines
            })
            .take(n)
            .map(|(_, line)| line.to_owned())
            .collect();
        lines.reverse();
        lines
    }

    /// Frees the tail once a supervisor is done with it: readers go to the segments, and a bot
    /// that does not run should hold no memory for its output.
    pub fn release_tail(&self) {
        let mut state = self.lock();
        state.tail = VecDeque::new();
        state.tail_bytes = 0;
    }

    /// Writes what is waiting; lines are on disk (in the page cache) when it returns.
    pub fn flush(&self) {
        let mut state = self.lock();
        self.flush_locked(&mut state);
    }

    fn flush_locked(&self, state: &mut State) {
        if state.pending.is_empty() || state.removed {
            return;
        }
        let max_bytes = state.limits.unwrap_or_default().max_bytes;
        let segment_max = (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
        let pending = std::mem::take(&mut state.pending);
        state.pending_bytes = 0;
        let mut bytes = Vec::new();
        for batch in pending {
            let rotate = state.segments.last().is_none_or(|s| s.bytes >= segment_max);
            if rotate {
                self.write_out(state, &mut bytes);
                if let Err(e) = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                {
                    tracing::error!(bot = %self.bot, error = %e, "cannot create the log directory; lines are lost");
                    return;
                }
                state.segments.push(Segment {
                    path: self.dir.join(segment::file_name(batch.first_seq)),
                    first_seq: batch.first_seq,
                    first_ts: batch.ts,
                    bytes: 0,
                });
            }
            let before = bytes.len();
            segment::encode(&batch, &mut bytes);
            if let Some(active) = state.segments.last_mut() {
                active.bytes += (bytes.len() - before) as u64;
            }
            state.kept_bytes += (bytes.len() - before) as u64;
        }
        self.write_out(state, &mut bytes);
        self.apply_retention(state);
    }

    /// Appends `bytes` to the newest segment.
    fn write_out(&self, state: &mut State, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(active) = state.segments.last_mut()
            && let Err(e) = segment::append(&active.path, bytes)
        {
            // The file must end where the segment says, or later records would follow a
            // partial one; a file that cannot be cut back is left for a new segment.
            active.bytes -= bytes.len() as u64;
            state.kept_bytes -= bytes.len() as u64;
            if segment::truncate(&active.path, active.bytes).is_err() {
                active.bytes = u64::MAX / 2;
            }
            tracing::error!(bot = %self.bot, error = %e, lines_lost = true, "cannot write the bot's log");
        }
        bytes.clear();
    }

    /// Deletes the oldest segments while the log is over its size, or while every line in them
    /// is over its age.
    fn apply_retention(&self, state: &mut State) {
        let Some(limits) = state.limits else {
            return;
        };
        let cutoff = chrono::TimeDelta::from_std(limits.max_age)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        loop {
            let over_size = state.kept_bytes > limits.max_bytes && state.segments.len() > 1;
            let expired = match (state.segments.get(1), state.segments.first()) {
                (Some(next), _) => next.first_ts < cutoff,
                // The only segment: all of it is old once the newest line is.
                (None, Some(only)) => {
                    only.bytes > 0 && state.last_ts.is_none_or(|ts| ts < cutoff) && state.pending.is_empty()
                }
                (None, None) => false,
            };
            if !over_size && !expired {
                return;
            }
            let old = state.segments.remove(0);
            state.kept_bytes = state.kept_bytes.saturating_sub(old.bytes);
            if let Err(e) = std::fs::remove_file(&old.path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::error!(bot = %self.bot, error = %e, "cannot delete an old log segment");
            }
            if state.segments.is_empty()
                && let Err(e) = segment::mark_next(&self.dir, state.next_seq)
            {
                tracing::error!(bot = %self.bot, error = %e, "cannot record the log's next seq");
            }
        }
    }

    /// Flushes, then applies retention for age; for the periodic sweep.
    pub fn maintain(&self) {
        let mut state = self.lock();
        self.flush_locked(&mut state);
        self.apply_retention(&mut state);
    }

    /// Flushes, so every line so far is on disk, and says where.
    pub fn snapshot(&self) -> Snapshot {
        let mut state = self.lock();
        self.flush_locked(&mut state);
        Snapshot {
            segments: state.segments.clone(),
            next_seq: state.next_seq,
        }
    }

    /// Flushes and adds a live viewer, who gets every line from the snapshot's `next_seq` on.
    pub fn watch(&self) -> Result<Watching, FeedEnd> {
        let mut state = self.lock();
        if state.removed {
            return Err(FeedEnd::Deleted);
        }
        self.flush_locked(&mut state);
        let (queue, live) = mpsc::unbounded_channel();
        let shared = Arc::new(ViewerShared::default());
        state.viewers.push(Viewer {
            queue,
            shared: shared.clone(),
        });
        let snapshot = Snapshot {
            segments: state.segments.clone(),
            next_seq: state.next_seq,
        };
        Ok(Watching {
            snapshot,
            live,
            shared,
        })
    }

    /// Live viewers still connected.
    pub fn viewers(&self) -> usize {
        let mut state = self.lock();
        state.viewers.retain(|v| !v.queue.is_closed());
        state.viewers.len()
    }

    /// Ends every live viewer with `end`.
    pub fn end_viewers(&self, end: FeedEnd) {
        let mut state = self.lock();
        for viewer in state.viewers.drain(..) {
            viewer.shared.set_end(end);
        }
    }

    /// Ends the viewers and deletes every file; nothing is kept from here on.
    pub fn remove(&self) {
        let mut state = self.lock();
        for viewer in state.viewers.drain(..) {
            viewer.shared.set_end(FeedEnd::Deleted);
        }
        state.removed = true;
        state.pending.clear();
        state.tail.clear();
        state.segments.clear();
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(bot = %self.bot, error = %e, "cannot delete the bot's log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path, after_crash: bool) -> BotLog {
        BotLog::open(BotId::new(), dir.to_owned(), after_crash, Arc::new(Notify::new())).unwrap()
    }

    fn print(log: &BotLog, lines: &[&str]) {
        let mut batch = LogBatch::new(0, Utc::now(), LogStream::Stdout);
        for line in lines {
            batch.push(line);
        }
        log.append(batch);
        log.flush();
    }

    #[test]
    fn numbering_goes_on_across_opens_and_skips_ahead_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), false);
        print(&log, &["a", "b"]);
        drop(log);
        let log = open(dir.path(), false);
        assert_eq!(log.next_seq(), 3);
        drop(log);

        // Lines 3.. may have reached viewers without reaching the disk: never number them again.
        let log = open(dir.path(), true);
        let skipped = 3 + UNWRITTEN_LINES_MAX;
        assert_eq!(log.next_seq(), skipped);
        drop(log);
        let log = open(dir.path(), false);
        assert_eq!(log.next_seq(), skipped, "the skip is on disk before any line");
        print(&log, &["c"]);
        drop(log);
        let log = open(dir.path(), false);
        assert_eq!(log.next_seq(), skipped + 1);
        let snapshot = log.snapshot();
        let mut seqs = Vec::new();
        segment::read_after(
            &snapshot.segments,
            0,
            usize::MAX,
            |_, _| segment::Flow::Take,
            |b| {
                seqs.extend(b.lines().map(|(seq, _)| seq));
                true
            },
        )
        .unwrap();
        assert_eq!(seqs, vec![1, 2, skipped]);
    }

    #[test]
    fn empty_lines_count_against_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), false);
        for _ in 0..200 {
            print(&log, &[""; 100]);
        }
        let state = log.lock();
        assert!(state.tail_bytes < 2 * TAIL_BYTES, "{}", state.tail_bytes);
    }
}
