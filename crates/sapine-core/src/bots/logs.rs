//! A bot's log: every line it printed and every line the platform wrote about it, numbered in
//! order, kept within its plan's bounds, readable page by page and followable live. Where lines
//! are kept is behind the `LogBook` port.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::BotId;
use crate::FieldError;

/// Longer lines are split into pieces of at most this many bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The longest text a `q` filter may search for.
pub const MAX_QUERY_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines the platform writes: started, exited, restarting, throttled.
    System,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::System => "system",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Stdout => 1,
            Self::Stderr => 2,
            Self::System => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Stdout),
            2 => Some(Self::Stderr),
            3 => Some(Self::System),
            _ => None,
        }
    }
}

impl fmt::Display for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogStream {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, FieldError> {
        match s {
            "stdout" => Ok(Self::Stdout),
            "stderr" => Ok(Self::Stderr),
            "system" => Ok(Self::System),
            _ => Err(FieldError::new("stream", "must be stdout, stderr or system")),
        }
    }
}

/// One line of a bot's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Numbered from 1 per bot, without gaps, across runs and server restarts.
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

/// Consecutive lines of one stream that arrived together, so share a timestamp: the unit the
/// log is written, kept and sent in, which costs a few bytes per line instead of a line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub first_seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<u32>,
}

impl LogBatch {
    /// A batch from lines already split and at most `MAX_LINE_BYTES` each.
    pub fn new(first_seq: u64, ts: DateTime<Utc>, stream: LogStream) -> Self {
        Self {
            first_seq,
            ts,
            stream,
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// Rebuilds a batch from its parts, as written by `text()` and `ends()`; `None` when they do
    /// not fit together.
    pub fn from_parts(
        first_seq: u64,
        ts: DateTime<Utc>,
        stream: LogStream,
        text: String,
        ends: Vec<u32>,
    ) -> Option<Self> {
        let mut start = 0usize;
        for &end in &ends {
            let end = end as usize;
            if end < start || end > text.len() || !text.is_char_boundary(end) {
                return None;
            }
            start = end;
        }
        (start == text.len()).then_some(Self {
            first_seq,
            ts,
            stream,
            text,
            ends,
        })
    }

    pub fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// Keeps the first `n` lines only.
    pub fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            let end = if n == 0 { 0 } else { self.ends[n - 1] as usize };
            self.text.truncate(end);
            self.ends.truncate(n);
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The seq of the last line.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.ends.len() as u64 - 1
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// Bytes of text held.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Each line with its seq.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &str)> {
        let mut start = 0usize;
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let line = &self.text[start..end as usize];
            start = end as usize;
            (self.first_seq + i as u64, line)
        })
    }

    /// The lines after `seq` only; `None` when none is.
    pub fn after(self: Arc<Self>, seq: u64) -> Option<Arc<Self>> {
        if seq < self.first_seq {
            return Some(self);
        }
        if seq >= self.last_seq() {
            return None;
        }
        let skip = (seq - self.first_seq + 1) as usize;
        let mut rest = Self::new(seq + 1, self.ts, self.stream);
        for (_, line) in self.lines().skip(skip) {
            rest.push(line);
        }
        Some(Arc::new(rest))
    }
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub stream: Option<LogStream>,
    /// Lines containing this text, ignoring ASCII case.
    pub contains: Option<LogSearch>,
}

impl LogFilter {
    /// Whether a batch of this time and stream may hold wanted lines.
    pub fn admits_batch(&self, ts: DateTime<Utc>, stream: LogStream) -> bool {
        self.since.is_none_or(|s| ts >= s)
            && self.until.is_none_or(|u| ts < u)
            && self.stream.is_none_or(|s| s == stream)
    }

    pub fn admits_line(&self, line: &str) -> bool {
        self.contains.as_ref().is_none_or(|q| q.matches(line))
    }
}

/// Text to look for in lines: 1 to `MAX_QUERY_CHARS` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSearch(String);

impl LogSearch {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.chars().count() > MAX_QUERY_CHARS {
            return Err(FieldError::new(
                "q",
                format!("must be 1 to {MAX_QUERY_CHARS} characters"),
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// Linear in the line's length, whatever the text searched for.
    pub fn matches(&self, line: &str) -> bool {
        if line.len() < self.0.len() {
            return false;
        }
        let folded;
        let haystack = if line.bytes().any(|b| b.is_ascii_uppercase()) {
            folded = line.to_ascii_lowercase();
            folded.as_bytes()
        } else {
            line.as_bytes()
        };
        memchr::memmem::find(haystack, self.0.as_bytes()).is_some()
    }
}

/// One page of a log: the lines found, and where to go on when there may be more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// The seq to continue after; `None` at the end of the log.
    pub next_after: Option<u64>,
}

/// How much log a bot keeps and how fast it may write it; set by its owner's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Total bytes of kept log; the oldest lines go first.
    pub max_bytes: u64,
    /// Lines older than this go.
    pub max_age: Duration,
    /// Lines per second a bot may print; more are dropped and counted.
    pub lines_per_second: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_bytes: 100 * 1024 * 1024,
            max_age: Duration::from_secs(30 * 24 * 3600),
            lines_per_second: 5000,
        }
    }
}

/// Why a live feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnd {
    /// The viewer did not keep up with the bot; it may reconnect after its last seq.
    TooSlow,
    /// The bot and its log are gone.
    Deleted,
    /// The server is shutting down.
    ShuttingDown,
}

impl FeedEnd {
    pub fn describe(self) -> &'static str {
        match self {
            Self::TooSlow => "too slow: the viewer fell behind the bot; reconnect with after_seq",
            Self::Deleted => "the bot was deleted",
            Self::ShuttingDown => "the server is shutting down; reconnect with after_seq",
        }
    }
}

/// Lines of one bot as they come: first those after the asked seq, then new ones live.
#[async_trait]
pub trait LogFeed: Send {
    /// The next lines in order, or why there will be no more.
    async fn next(&mut self) -> Result<Arc<LogBatch>, FeedEnd>;
}

/// Where bots' logs are kept.
#[async_trait]
pub trait LogBook: Send + Sync + 'static {
    /// Up to `limit` lines after `after` that pass `filter`, oldest first. A page may hold fewer
    /// lines than asked (even none) while `next_after` says there is more to look through, so
    /// one request never reads the whole log.
    async fn read(
        &self,
        bot: BotId,
        filter: &LogFilter,
        after: u64,
        limit: usize,
    ) -> Result<LogPage, crate::Error>;
    /// Every line after `after` (none of the past when `None`), then new lines as they come.
    async fn follow(&self, bot: BotId, after: Option<u64>) -> Result<Box<dyn LogFeed>, crate::Error>;
    /// Deletes the bot's log and ends its feeds.
    async fn remove(&self, bot: BotId);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_lines_in_order() {
        let mut batch = LogBatch::new(10, Utc::now(), LogStream::Stdout);
        for line in ["a", "", "héllo"] {
            batch.push(line);
        }
        let lines: Vec<_> = batch.lines().collect();
        assert_eq!(lines, vec![(10, "a"), (11, ""), (12, "héllo")]);
        assert_eq!(batch.last_seq(), 12);
        let rest = Arc::new(batch.clone()).after(10).unwrap();
        assert_eq!(rest.lines().collect::<Vec<_>>(), vec![(11, ""), (12, "héllo")]);
        assert!(Arc::new(batch.clone()).after(12).is_none());
        let mut short = batch.clone();
        short.truncate(1);
        assert_eq!(short.lines().collect::<Vec<_>>(), vec![(10, "a")]);
        assert_eq!(short.text(), "a");
        let again = LogBatch::from_parts(
            10,
            batch.ts,
            batch.stream,
            batch.text().into(),
            batch.ends().into(),
        );
        assert_eq!(again.as_ref(), Some(&batch));
        assert!(LogBatch::from_parts(1, batch.ts, batch.stream, "héllo".into(), vec![2]).is_none());
    }

    #[test]
    fn search_ignores_case_and_is_bounded() {
        let q = LogSearch::parse("ERROR").unwrap();
        assert!(q.matches("an error happened"));
        assert!(!q.matches("all fine"));
        assert!(LogSearch::parse("").is_err());
        assert!(LogSearch::parse(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
    }
}
