//! Log segment files: append-only, one per stretch of a bot's log, named after the seq of their
//! first line (`<first_seq>.log`, zero-padded so names sort in order).
//!
//! A segment is a run of records, one per batch, little-endian:
//! `len: u32` (of what follows), `first_seq: u64`, `ts: i64` (µs since the epoch), `stream: u8`,
//! `count: u32`, `ends: [u32; count]`, then the lines' text. A record cut short by a crash is
//! dropped, with the rest of the file, when the segment is opened again.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sapine_core::bots::{LogBatch, LogStream};

/// Bytes before a record's `ends`.
const HEADER: usize = 4 + 8 + 8 + 1 + 4;
/// No record is larger: a batch holds at most one read of output plus one split line.
const MAX_RECORD: usize = 1024 * 1024;

/// What is known of a segment without reading it through.
#[derive(Debug, Clone)]
pub struct Segment {
    pub path: PathBuf,
    pub first_seq: u64,
    pub first_ts: DateTime<Utc>,
    /// Bytes of whole records in it.
    pub bytes: u64,
}

pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

pub fn encode(batch: &LogBatch, out: &mut Vec<u8>) {
    let body = HEADER - 4 + 4 * batch.len() + batch.text_bytes();
    out.reserve(body + 4);
    out.extend_from_slice(&u32::try_from(body).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&batch.first_seq.to_le_bytes());
    out.extend_from_slice(&batch.ts.timestamp_micros().to_le_bytes());
    out.push(batch.stream.code());
    out.extend_from_slice(&u32::try_from(batch.len()).unwrap_or(u32::MAX).to_le_bytes());
    for end in batch.ends() {
        out.extend_from_slice(&end.to_le_bytes());
    }
    out.extend_from_slice(batch.text().as_bytes());
}

/// The head of a record: enough to decide whether to read the rest.
struct Head {
    body: usize,
    first_seq: u64,
    ts: DateTime<Utc>,
    stream: LogStream,
    count: usize,
}

fn read_head(reader: &mut impl Read) -> io::Result<Option<Head>> {
    let mut head = [0u8; HEADER];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let body = u32_at(0) as usize;
    let count = u32_at(21) as usize;
    let ts = DateTime::from_timestamp_micros(u64_at(12) as i64);
    let stream = LogStream::from_code(head[20]);
    match (ts, stream) {
        (Some(ts), Some(stream)) if body <= MAX_RECORD && HEADER - 4 + 4 * count <= body => Ok(Some(Head {
            body,
            first_seq: u64_at(4),
            ts,
            stream,
            count,
        })),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt log record")),
    }
}

fn read_rest(reader: &mut impl Read, head: &Head) -> io::Result<LogBatch> {
    let mut rest = vec![0u8; head.body - (HEADER - 4)];
    reader.read_exact(&mut rest)?;
    let (ends, text) = rest.split_at(4 * head.count);
    let ends = ends
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let text = String::from_utf8(text.to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "log text is not UTF-8"))?;
    LogBatch::from_parts(head.first_seq, head.ts, head.stream, text, ends)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "corrupt log record"))
}

/// The segments in `dir`, oldest first, and the seq the next line gets. The newest segment is
/// read through, and whatever follows its last whole record is cut off. An empty newest file
/// is no segment, only a marker of the next seq.
pub fn open_dir(dir: &Path) -> io::Result<Opened> {
    let mut firsts: Vec<(u64, PathBuf)> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| {
                let path = e.ok()?.path();
                let seq = path.file_name()?.to_str()?.strip_suffix(".log")?.parse().ok()?;
                Some((seq, path))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    firsts.sort_unstable_by_key(|(seq, _)| *seq);
    let mut segments = Vec::with_capacity(firsts.len());
    let mut next_seq = 1;
    let mut last_ts = None;
    let newest = firsts.len().saturating_sub(1);
    for (i, (first_seq, path)) in firsts.into_iter().enumerate() {
        let mut reader = BufReader::new(File::open(&path)?);
        let first = read_head(&mut reader).ok().flatten();
        if i < newest {
            let Some(first) = first else { continue };
            let bytes = std::fs::metadata(&path)?.len();
            segments.push(Segment {
                path,
                first_seq,
                first_ts: first.ts,
                bytes,
            });
            continue;
        }
        reader.seek(SeekFrom::Start(0))?;
        let (whole, last) = scan_whole(&mut reader);
        truncate(&path, whole)?;
        match (first, last) {
            (Some(first), Some((last_seq, ts))) => {
                next_seq = last_seq + 1;
                last_ts = Some(ts);
                segments.push(Segment {
                    path,
                    first_seq,
                    first_ts: first.ts,
                    bytes: whole,
                });
            }
            // Nothing whole in it: an empty file saying which seq comes next (every line
            // expired, or the server crashed), or a first record cut short. Lines go on in it.
            _ => {
                next_seq = first_seq.max(1);
                segments.push(Segment {
                    path,
                    first_seq,
                    first_ts: Utc::now(),
                    bytes: 0,
                });
            }
        }
    }
    Ok(Opened {
        segments,
        next_seq,
        last_ts,
    })
}

/// A bot's log as found on disk.
pub struct Opened {
    pub segments: Vec<Segment>,
    /// The seq the next line gets.
    pub next_seq: u64,
    /// When the newest line kept was written.
    pub last_ts: Option<DateTime<Utc>>,
}

/// The length of the whole records at the start of a segment, and the seq and time of its
/// last line.
fn scan_whole(reader: &mut BufReader<File>) -> (u64, Option<(u64, DateTime<Utc>)>) {
    let mut whole = 0u64;
    let mut last = None;
    while let Ok(Some(head)) = read_head(reader) {
        let Ok(batch) = read_rest(reader, &head) else {
            break;
        };
        if batch.is_empty() {
            break;
        }
        whole += (head.body + 4) as u64;
        last = Some((batch.last_seq(), batch.ts));
    }
    (whole, last)
}

/// Cuts a segment back to `len` bytes.
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.set_len(len)
}

/// An empty file named after `next_seq`, so the numbering goes on from there after every line
/// has expired or after a crash.
pub fn mark_next(dir: &Path, next_seq: u64) -> io::Result<()> {
    append(&dir.join(file_name(next_seq)), &[])
}

pub fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Hands each batch with lines after `after` (cut to those lines) to `take`, from `segments`
/// (oldest first), until `take` returns false or `budget` bytes of records were read; `keep`
/// decides on each batch from its time and stream before it is read.
pub fn read_after(
    segments: &[Segment],
    after: u64,
    mut budget: usize,
    mut keep: impl FnMut(DateTime<Utc>, LogStream) -> Flow,
    mut take: impl FnMut(Arc<LogBatch>) -> bool,
) -> io::Result<Scan> {
    let start = segments
        .iter()
        .rposition(|s| s.first_seq <= after.saturating_add(1))
        .unwrap_or(0);
    for segment in &segments[start..] {
        let file = match File::open(&segment.path) {
            Ok(f) => f,
            // Deleted by retention while this reader looked elsewhere: its lines are gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut pos = 0u64;
        // Only whole records the writer had finished when the segment was listed.
        while pos + HEADER as u64 <= segment.bytes {
            let Some(head) = read_head(&mut reader)? else {
                break;
            };
            pos += (head.body + 4) as u64;
            if pos > segment.bytes {
                break;
            }
            let rest = (head.body - (HEADER - 4)) as i64;
            let last_seq = head.first_seq + head.count.max(1) as u64 - 1;
            if last_seq <= after {
                reader.seek_relative(rest)?;
                continue;
            }
            match keep(head.ts, head.stream) {
                Flow::Skip => {
                    reader.seek_relative(rest)?;
                    continue;
                }
                Flow::Stop => return Ok(Scan::Ended),
                Flow::Take => {}
            }
            let batch = Arc::new(read_rest(&mut reader, &head)?);
            budget = budget.saturating_sub(head.body);
            if let Some(batch) = batch.after(after)
                && !take(batch)
            {
                return Ok(Scan::Stopped);
            }
            if budget == 0 {
                return Ok(Scan::BudgetSpent);
            }
        }
    }
    Ok(Scan::Ended)
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// At the end of the log, or of the wanted time.
    Ended,
    /// The taker had enough.
    Stopped,
    /// The read budget ran out; there may be more.
    BudgetSpent,
}

/// What to do with a batch.
pub enum Flow {
    Take,
    Skip,
    /// No later batch is wanted either.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_seq: u64, lines: &[&str]) -> LogBatch {
        let mut b = LogBatch::new(first_seq, Utc::now(), LogStream::Stdout);
        for line in lines {
            b.push(line);
        }
        b
    }

    #[test]
    fn reads_back_what_was_written_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        let mut bytes = Vec::new();
        encode(&batch(1, &["one", "two"]), &mut bytes);
        encode(&batch(3, &["three"]), &mut bytes);
        let whole = bytes.len();
        encode(&batch(4, &["four"]), &mut bytes);
        append(&path, &bytes[..bytes.len() - 2]).unwrap();

        let Opened {
            segments, next_seq, ..
        } = open_dir(dir.path()).unwrap();
        assert_eq!(next_seq, 4);
        assert_eq!(segments[0].bytes, whole as u64);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole as u64);

        let mut found = Vec::new();
        let scan = read_after(
            &segments,
            1,
            usize::MAX,
            |_, _| Flow::Take,
            |b| {
                found.push(b);
                true
            },
        )
        .unwrap();
        assert_eq!(scan, Scan::Ended);
        let lines: Vec<_> = found
            .iter()
            .flat_map(|b| b.lines().map(|(s, l)| (s, l.to_owned())).collect::<Vec<_>>())
            .collect();
        assert_eq!(lines, vec![(2, "two".to_owned()), (3, "three".to_owned())]);
    }
}
