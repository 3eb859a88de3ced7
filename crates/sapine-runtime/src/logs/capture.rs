//! Reads a bot's stdout or stderr into its log: split into lines, long lines cut, invalid
//! UTF-8 replaced, one batch per read.

use std::sync::Arc;

use chrono::Utc;
use sapine_core::bots::{LogBatch, LogStream, MAX_LINE_BYTES};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::bot_log::BotLog;

/// Reads start small, because most bots are idle most of the time and every running bot holds
/// two buffers; a bot that fills them gets bigger ones, up to this.
const MAX_READ: usize = 64 * 1024;
const FIRST_READ: usize = 1024;

pub async fn capture(log: Arc<BotLog>, stream: LogStream, mut output: impl AsyncRead + Unpin) {
    let mut read_size = FIRST_READ;
    let mut buf: Vec<u8> = Vec::with_capacity(read_size);
    let mut partial: Vec<u8> = Vec::new();
    loop {
        buf.clear();
        buf.reserve(read_size);
        let n = match (&mut output).take(read_size as u64).read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n == read_size && read_size < MAX_READ {
            read_size = (read_size * 4).min(MAX_READ);
        }
        let mut batch = LogBatch::new(0, Utc::now(), stream);
        split(&buf[..n], &mut partial, &mut batch);
        if !batch.is_empty() {
            log.append(batch);
        }
    }
    if !partial.is_empty() {
        let mut batch = LogBatch::new(0, Utc::now(), stream);
        push_line(&mut batch, &partial);
        log.append(batch);
    }
}

/// Adds the whole lines of `chunk` to `batch`, continuing the line in `partial` and leaving the
/// unfinished end there.
fn split(chunk: &[u8], partial: &mut Vec<u8>, batch: &mut LogBatch) {
    let mut rest = chunk;
    while let Some(newline) = memchr::memchr(b'\n', rest) {
        let line = &rest[..newline];
        if partial.is_empty() {
            push_line(batch, line);
        } else {
            partial.extend_from_slice(line);
            push_line(batch, partial);
            partial.clear();
        }
        rest = &rest[newline + 1..];
    }
    partial.extend_from_slice(rest);
    // A line that never ends is cut into pieces rather than held without bound.
    while partial.len() > MAX_LINE_BYTES {
        let cut = char_boundary(partial, MAX_LINE_BYTES);
        push_piece(batch, &partial[..cut]);
        partial.drain(..cut);
    }
}

/// A line with its `\r` (from `\r\n` endings) removed, cut into pieces if it is long.
fn push_line(batch: &mut LogBatch, line: &[u8]) {
    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
    while line.len() > MAX_LINE_BYTES {
        let cut = char_boundary(line, MAX_LINE_BYTES);
        push_piece(batch, &line[..cut]);
        line = &line[cut..];
    }
    push_piece(batch, line);
}

fn push_piece(batch: &mut LogBatch, piece: &[u8]) {
    match std::str::from_utf8(piece) {
        Ok(text) => batch.push(text),
        Err(_) => batch.push(&String::from_utf8_lossy(piece)),
    }
}

/// The largest cut at most `max` that does not split a UTF-8 character.
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| bytes.get(i).is_none_or(|b| (*b as i8) >= -0x40))
        .filter(|&i| i > 0)
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut batch = LogBatch::new(1, Utc::now(), LogStream::Stdout);
            split(chunk, &mut partial, &mut batch);
            out.extend(batch.lines().map(|(_, l)| l.to_owned()));
        }
        out
    }

    #[test]
    fn splits_lines_across_reads() {
        assert_eq!(lines_of(&[b"a\nb", b"c\r\n\n", b"d"]), vec!["a", "bc", ""]);
    }

    #[test]
    fn replaces_invalid_utf8_per_line() {
        assert_eq!(lines_of(&[b"ok\n\xff\xfe\n"]), vec!["ok", "\u{fffd}\u{fffd}"]);
    }

    #[test]
    fn cuts_long_lines_without_splitting_characters() {
        let long = "é".repeat(MAX_LINE_BYTES); // two bytes each
        let mut input = long.clone().into_bytes();
        input.push(b'\n');
        let pieces = lines_of(&[&input[..5000], &input[5000..]]);
        assert_eq!(pieces.concat(), long);
        assert!(
            pieces
                .iter()
                .all(|p| p.len() <= MAX_LINE_BYTES && !p.contains('\u{fffd}'))
        );
        assert_eq!(pieces.len(), 2);
    }
}
