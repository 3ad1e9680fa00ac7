//! Reading container logs: [`tail`] from the end of a file, [`follow`] as it grows.
//!
//! Lines are joined per stream: `P` records are prefixes of the next record of the same
//! stream (stdout and stderr records may interleave between them). Lines that do not parse
//! as CRI records are skipped (logged at debug level), as the kubelet does.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::format::parse_cri_line;
use super::{LogError, LogLine};

/// How often [`follow`] looks for new data, rotation or truncation once at the end of the file.
pub const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes read per step when reading backwards.
const BLOCK: u64 = 64 * 1024;

/// The result of [`tail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// The last lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Offset just past the last complete record: pass it to [`follow_from`] to continue
    /// exactly where the tail ended.
    pub end_offset: u64,
}

/// The last `n` full lines of the log at `path`, oldest first (see [`tail`]).
pub fn tail_lines(path: &Path, n: usize) -> Result<Vec<LogLine>, LogError> {
    Ok(tail(path, n)?.lines)
}

/// The last `n` full lines of the log at `path`, reading backwards from the end in blocks
/// (cost proportional to what is returned, not to the file size).
///
/// Each line joins its `P` records with the final `F` record of the same stream; its `time`
/// is that of its first record and `partial` is false. A stream's trailing `P` records
/// without their `F` yet form a line with `partial: true`. Bytes after the last newline (a
/// record being written) are ignored. Lines are ordered by their last record.
pub fn tail(path: &Path, n: usize) -> Result<Tail, LogError> {
    let mut file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| LogError::io("stat", path, e))?
        .len();
    let mut asm = Reverse::new(n);
    let mut end_offset: Option<u64> = None;
    let mut pos = len;
    // Bytes from `pos` on that are not processed yet: the head of a line starting before `pos`.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 && (end_offset.is_none() || !asm.done()) {
        let start = pos.saturating_sub(BLOCK);
        let mut chunk = vec![0u8; usize::try_from(pos - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut chunk))
            .map_err(|e| LogError::io("read", path, e))?;
        chunk.extend_from_slice(&carry);
        pos = start;
        if end_offset.is_none() {
            match chunk.iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    end_offset = Some(start + i as u64 + 1);
                    chunk.truncate(i + 1);
                }
                None if start == 0 => {
                    end_offset = Some(0);
                    break;
                }
                None => {
                    carry = chunk;
                    continue;
                }
            }
        }
        // Unless at the start of the file, the first segment may begin before `start`.
        let body_start = if start == 0 {
            0
        } else {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => {
                    carry = chunk;
                    continue;
                }
            }
        };
        carry = chunk[..body_start].to_vec();
        for raw in chunk[body_start..].split(|b| *b == b'\n').rev() {
            if raw.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(raw);
            match parse_cri_line(&text) {
                Ok(rec) => asm.push(rec),
                Err(e) => tracing::debug!("{}: skipping line: {e}", path.display()),
            }
            if asm.done() {
                break;
            }
        }
    }
    Ok(Tail {
        lines: asm.finish(),
        end_offset: end_offset.unwrap_or(0),
    })
}

/// A line being assembled while reading backwards (pieces in reverse order).
struct Entry {
    pieces: Vec<LogLine>,
    /// The trailing P records of a stream, without an F record yet.
    partial: bool,
}

/// What the next-earlier record of a stream belongs to.
#[derive(Clone, Copy)]
enum Open {
    /// No record of the stream seen yet.
    None,
    /// Entry index whose beginning is not found yet.
    Collect(usize),
    /// Enough lines: older records of the stream are not needed.
    Ignore,
}

/// Assembles the last `n` lines from records fed newest first.
struct Reverse {
    n: usize,
    entries: Vec<Entry>,
    open: [Open; 2],
}

impl Reverse {
    fn new(n: usize) -> Self {
        Reverse {
            n,
            entries: Vec::new(),
            open: [Open::None; 2],
        }
    }

    fn start_entry(&mut self, s: usize, rec: LogLine, partial: bool) {
        if self.entries.len() < self.n {
            self.entries.push(Entry {
                pieces: vec![rec],
                partial,
            });
            self.open[s] = Open::Collect(self.entries.len() - 1);
        } else {
            self.open[s] = Open::Ignore;
        }
    }

    fn push(&mut self, rec: LogLine) {
        let s = rec.stream.index();
        match (rec.partial, self.open[s]) {
            // An earlier piece of the line being collected.
            (true, Open::Collect(i)) => self.entries[i].pieces.push(rec),
            (true, Open::Ignore) => {}
            // The stream's newest records are P: a line still open at the end.
            (true, Open::None) => self.start_entry(s, rec, true),
            // An F record ends an earlier line (and completes the one collected so far).
            (false, _) => self.start_entry(s, rec, false),
        }
    }

    /// All `n` lines found and each one's beginning reached.
    fn done(&self) -> bool {
        self.entries.len() >= self.n && !self.open.iter().any(|o| matches!(o, Open::Collect(_)))
    }

    fn finish(self) -> Vec<LogLine> {
        self.entries
            .into_iter()
            .rev()
            .filter_map(|e| {
                let mut pieces = e.pieces.into_iter().rev();
                let first = pieces.next()?;
                let mut line = LogLine {
                    partial: e.partial,
                    ..first
                };
                for p in pieces {
                    line.text.push_str(&p.text);
                }
                Some(line)
            })
            .collect()
    }
}

/// Writes the log at `path` from its beginning to `out`, then keeps writing what is
/// appended, like `kubectl logs -f`. See [`follow_from`].
pub async fn follow(path: &Path, out: impl AsyncWrite + Unpin) -> Result<(), LogError> {
    follow_from(path, 0, out).await
}

/// Writes the log at `path` from byte `offset` on to `out` and keeps following it: the text
/// of each record (`F` records followed by a newline, `P` records without), flushed as it
/// comes. Survives rotation (when `path` is replaced by a new file, the rest of the old one
/// is written, then the new one from its start) and truncation (starts over).
///
/// Runs until writing to `out` fails (e.g. `BrokenPipe`, reported as [`LogError::Output`])
/// or reading fails; to stop it, drop the future (e.g. in `tokio::select!`).
pub async fn follow_from(
    path: &Path,
    offset: u64,
    out: impl AsyncWrite + Unpin,
) -> Result<(), LogError> {
    follow_instances(path, offset, out, |_| None).await
}

/// Like [`follow_from`], and moves on to the next container instance: whenever the followed
/// file has no new data, `next(current)` is asked for the next instance's log; when it
/// returns one, the rest of the current file is written (the instance ended before the next
/// one started), then the new file from its start. `next` should be cheap (it runs every
/// [`FOLLOW_POLL_INTERVAL`] while idle).
pub async fn follow_instances(
    path: &Path,
    offset: u64,
    mut out: impl AsyncWrite + Unpin,
    mut next: impl FnMut(&Path) -> Option<std::path::PathBuf>,
) -> Result<(), LogError> {
    let mut current = path.to_path_buf();
    let (mut file, mut ident) = open_follow(&current).await?;
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| LogError::io("seek", &current, e))?;
    let mut pos = offset;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| LogError::io("read", &current, e))?;
        if n > 0 {
            pos += n as u64;
            pending.extend_from_slice(&buf[..n]);
            write_complete(&current, &mut pending, &mut out).await?;
            continue;
        }
        match tokio::fs::metadata(&current).await {
            Ok(meta) if (meta.dev(), meta.ino()) != ident => {
                // Rotated: the writer has moved on, so the old file is final. Drain it.
                loop {
                    let n = file
                        .read(&mut buf)
                        .await
                        .map_err(|e| LogError::io("read", &current, e))?;
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
                write_complete(&current, &mut pending, &mut out).await?;
                pending.clear();
                (file, ident) = open_follow(&current).await?;
                pos = 0;
                continue;
            }
            Ok(meta) if meta.len() < pos => {
                file.seek(SeekFrom::Start(0))
                    .await
                    .map_err(|e| LogError::io("seek", &current, e))?;
                pos = 0;
                pending.clear();
                continue;
            }
            // Unchanged, or briefly missing between rename and re-create: a next instance,
            // or wait.
            _ => {
                if let Some(n) = next(&current) {
                    // Let the ended instance's log shim write its last records, then drain.
                    tokio::time::sleep(FOLLOW_POLL_INTERVAL).await;
                    loop {
                        let k = file
                            .read(&mut buf)
                            .await
                            .map_err(|e| LogError::io("read", &current, e))?;
                        if k == 0 {
                            break;
                        }
                        pending.extend_from_slice(&buf[..k]);
                    }
                    write_complete(&current, &mut pending, &mut out).await?;
                    pending.clear();
                    current = n;
                    (file, ident) = open_follow(&current).await?;
                    pos = 0;
                    continue;
                }
                tokio::time::sleep(FOLLOW_POLL_INTERVAL).await
            }
        }
    }
}

/// Opens `path` for following; returns the file and its (device, inode).
async fn open_follow(path: &Path) -> Result<(tokio::fs::File, (u64, u64)), LogError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| LogError::io("open", path, e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| LogError::io("stat", path, e))?;
    Ok((file, (meta.dev(), meta.ino())))
}

/// Writes the text of every complete record in `pending` and removes them from it.
async fn write_complete(
    path: &Path,
    pending: &mut Vec<u8>,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<(), LogError> {
    let Some(last_nl) = pending.iter().rposition(|b| *b == b'\n') else {
        return Ok(());
    };
    let mut text = Vec::new();
    for raw in pending[..last_nl].split(|b| *b == b'\n') {
        if raw.is_empty() {
            continue;
        }
        match parse_cri_line(&String::from_utf8_lossy(raw)) {
            Ok(rec) => {
                text.extend_from_slice(rec.text.as_bytes());
                if !rec.partial {
                    text.push(b'\n');
                }
            }
            Err(e) => tracing::debug!("{}: skipping line: {e}", path.display()),
        }
    }
    pending.drain(..=last_nl);
    if !text.is_empty() {
        out.write_all(&text)
            .await
            .map_err(|source| LogError::Output { source })?;
        out.flush()
            .await
            .map_err(|source| LogError::Output { source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{format_record, CriWriter, RotatePolicy, Stream};
    use std::io::Write;

    fn rec(stream: Stream, partial: bool, text: &str) -> Vec<u8> {
        format_record("2024-05-01T12:00:03Z", stream, partial, text.as_bytes())
    }

    fn texts(lines: &[LogLine]) -> Vec<(Stream, bool, &str)> {
        lines
            .iter()
            .map(|l| (l.stream, l.partial, l.text.as_str()))
            .collect()
    }

    #[test]
    fn tail_joins_p_records_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut data = Vec::new();
        data.extend(rec(Stream::Stdout, false, "first"));
        data.extend(rec(Stream::Stdout, true, "long-"));
        data.extend(rec(Stream::Stderr, false, "err in between"));
        data.extend(rec(Stream::Stdout, true, "line-"));
        data.extend(rec(Stream::Stdout, false, "end"));
        data.extend(b"garbage that is not a record\n");
        data.extend(rec(Stream::Stderr, true, "unfinished"));
        data.extend(b"2024-05-01T12:00:04Z stdout F being writ"); // no newline yet
        std::fs::write(&path, &data).unwrap();

        let all = tail(&path, 100).unwrap();
        assert_eq!(
            texts(&all.lines),
            vec![
                (Stream::Stdout, false, "first"),
                (Stream::Stderr, false, "err in between"),
                (Stream::Stdout, false, "long-line-end"),
                (Stream::Stderr, true, "unfinished"),
            ]
        );
        let complete_len = data.len() - "2024-05-01T12:00:04Z stdout F being writ".len();
        assert_eq!(all.end_offset, complete_len as u64);

        // The last two: the joined line is complete although its first piece is far back.
        let two = tail_lines(&path, 2).unwrap();
        assert_eq!(
            texts(&two),
            vec![
                (Stream::Stdout, false, "long-line-end"),
                (Stream::Stderr, true, "unfinished")
            ]
        );
        assert!(tail_lines(&path, 0).unwrap().is_empty());
        assert_eq!(tail(&path, 0).unwrap().end_offset, complete_len as u64);
    }

    #[test]
    fn tail_reads_big_files_across_blocks_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("3.log");
        let mut w = CriWriter::open(
            &path,
            RotatePolicy {
                max_size: 0,
                max_files: 5,
            },
        )
        .unwrap();
        for i in 0..20_000 {
            w.write_record(Stream::Stdout, false, format!("line {i}").as_bytes())
                .unwrap();
        }
        // A 40 KiB line split by the 16 KiB rule spans block boundaries.
        let long: String = (0..40 * 1024)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut splitter = crate::logs::LineSplitter::default();
        let mut pieces = Vec::new();
        splitter.push(format!("{long}\n").as_bytes(), &mut |p, t: &[u8]| {
            pieces.push((p, t.to_vec()))
        });
        assert_eq!(pieces.len(), 3);
        for (p, t) in &pieces {
            w.write_record(Stream::Stdout, *p, t).unwrap();
        }
        w.write_record(Stream::Stderr, false, b"last").unwrap();

        let lines = tail_lines(&path, 3).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].text, "line 19999");
        assert_eq!(lines[1].text, long);
        assert!(!lines[1].partial);
        assert_eq!(lines[2].text, "last");

        let all = tail_lines(&path, 1_000_000).unwrap();
        assert_eq!(all.len(), 20_002);
        assert_eq!(all[0].text, "line 0");
    }

    #[test]
    fn tail_of_missing_file_names_it() {
        let err = tail_lines(Path::new("/nonexistent/0.log"), 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/0.log"), "{err}");
    }

    /// Reads from `r` until the collected output contains `want`.
    async fn read_until(r: &mut tokio::io::DuplexStream, got: &mut String, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !got.contains(want) {
            let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; got {got:?}"))
                .unwrap();
            assert!(n > 0, "follow ended early");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    #[tokio::test]
    async fn follow_picks_up_appended_lines_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, rec(Stream::Stdout, false, "existing")).unwrap();
        let (tx, mut rx) = tokio::io::duplex(1 << 16);
        let p = path.clone();
        let task = tokio::spawn(async move { follow(&p, tx).await });

        let mut got = String::new();
        read_until(&mut rx, &mut got, "existing\n").await;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&rec(Stream::Stderr, true, "half ")).unwrap();
        // A record written in two pieces is only printed once complete.
        let second = rec(Stream::Stderr, false, "and rest");
        f.write_all(&second[..10]).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        f.write_all(&second[10..]).unwrap();
        read_until(&mut rx, &mut got, "and rest\n").await;
        assert_eq!(got, "existing\nhalf and rest\n");
        task.abort();
    }

    #[tokio::test]
    async fn follow_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = CriWriter::open(
            &path,
            RotatePolicy {
                max_size: 120,
                max_files: 5,
            },
        )
        .unwrap();
        let (tx, mut rx) = tokio::io::duplex(1 << 16);
        let p = path.clone();
        let task = tokio::spawn(async move { follow(&p, tx).await });
        let mut got = String::new();
        let mut want = String::new();
        for i in 0..12 {
            let line = format!("message number {i:03}");
            w.write_record(Stream::Stdout, false, line.as_bytes())
                .unwrap();
            want.push_str(&line);
            want.push('\n');
            read_until(&mut rx, &mut got, &format!("{line}\n")).await;
        }
        assert!(
            !crate::logs::rotated_logs(&path).unwrap().is_empty(),
            "the test must rotate"
        );
        assert_eq!(got, want);
        task.abort();
    }

    #[tokio::test]
    async fn follow_from_offset_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut data = rec(Stream::Stdout, false, "old");
        data.extend(rec(Stream::Stdout, false, "new"));
        std::fs::write(&path, &data).unwrap();
        let offset = tail(&path, 1).unwrap();
        assert_eq!(texts(&offset.lines), vec![(Stream::Stdout, false, "new")]);
        let (tx, mut rx) = tokio::io::duplex(1 << 16);
        let p = path.clone();
        let start = offset.end_offset;
        let task = tokio::spawn(async move { follow_from(&p, start, tx).await });
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&rec(Stream::Stdout, false, "appended"))
            .unwrap();
        let mut got = String::new();
        read_until(&mut rx, &mut got, "appended\n").await;
        assert_eq!(got, "appended\n");
        // Truncated in place: start over from the beginning.
        std::fs::write(&path, rec(Stream::Stdout, false, "x")).unwrap();
        read_until(&mut rx, &mut got, "appended\nx\n").await;
        task.abort();
    }
}
