//! A bot's recent output, line by line, for its crash records. The full log pipeline reads
//! the same lines.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longer lines are cut here, so a bot printing without newlines cannot grow a line forever.
pub const MAX_LINE_BYTES: u64 = 16 * 1024;
/// Lines kept per bot.
const RING_LINES: usize = 100;
/// Read buffer per stream: small, because most bots are idle most of the time and every
/// running bot holds two; longer lines are assembled across reads.
const READ_BUFFER: usize = 1024;

#[derive(Clone, Default)]
pub struct OutputRing {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputRing {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == RING_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// A line from the platform itself, e.g. why the bot could not start.
    pub fn push_system(&self, line: String) {
        self.push(line);
    }

    /// Forgets earlier runs' lines, so a crash record shows the run that crashed.
    pub fn clear(&self) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.clear();
        }
    }

    /// The newest `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .skip(lines.len().saturating_sub(n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reads `stream` to its end, one line at a time; invalid UTF-8 is replaced.
    pub async fn capture(self, stream: impl AsyncRead + Unpin) {
        let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    self.push(String::from_utf8_lossy(&buf).into_owned());
                }
            }
        }
    }
}
