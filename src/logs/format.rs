//! The CRI log record format: `<time> <stream> <tag> <text>\n`.
//!
//! As containerd's CRI logger writes it:
//! - `time` is RFC3339Nano (Go's `time.RFC3339Nano`: nanoseconds with trailing zeros
//!   dropped, no fraction at all when zero); plinth always writes UTC (`Z`).
//! - `tag` is `F` for a record that ends a line and `P` for a partial one: a line longer than
//!   [`MAX_LINE_BYTES`] (containerd's default `max_container_log_line_size`, 16 KiB) is cut
//!   into `P` records of exactly that size followed by an `F` record with the rest.
//! - `\n` ends a line and is not part of the text; a `\r` right before it is dropped too.
//! - Output that ends (EOF) without a newline is written as a `P` record, exactly as
//!   containerd does ("treated as a partial line"), so joining records reproduces the bytes.
//! - An empty line is an `F` record with empty text (`... stdout F \n`).

use std::time::SystemTime;

use time::format_description::StaticFormatDescription;
use time::macros::format_description;

use super::{LogError, LogLine, Stream};

/// Longest text of one record; longer lines are split (containerd's default, 16 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// `t` in UTC, formatted with `format` (date and time fields only, which every instant has).
pub(super) fn format_utc(t: SystemTime, format: StaticFormatDescription) -> String {
    time::OffsetDateTime::from(t)
        .format(format)
        .expect("date and time fields format for every SystemTime")
}

/// Formats `t` as Go's RFC3339Nano in UTC: `2024-05-01T12:00:03.0405Z`.
pub fn format_timestamp(t: SystemTime) -> String {
    let mut s = format_utc(
        t,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    );
    let ns = time::OffsetDateTime::from(t).nanosecond();
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// One record, newline included: `<time> <stream> <F|P> <text>\n`.
pub fn format_record(time: &str, stream: Stream, partial: bool, text: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(time.len() + text.len() + 12);
    rec.extend_from_slice(time.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(stream.as_str().as_bytes());
    rec.extend_from_slice(if partial { b" P " } else { b" F " });
    rec.extend_from_slice(text);
    rec.push(b'\n');
    rec
}

fn parse_error(line: &str, reason: impl Into<String>) -> LogError {
    let mut shown: String = line.chars().take(120).collect();
    if shown.len() < line.len() {
        shown.push('…');
    }
    LogError::Parse {
        line: shown,
        reason: reason.into(),
    }
}

/// Parses one record (a trailing `\n` is allowed). Like the kubelet's parser, the tag field
/// may carry further `:`-separated tags after `P`/`F`; they are ignored.
pub fn parse_cri_line(line: &str) -> Result<LogLine, LogError> {
    let body = line.strip_suffix('\n').unwrap_or(line);
    let (time, rest) = body
        .split_once(' ')
        .ok_or_else(|| parse_error(line, "no timestamp"))?;
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map_err(|e| parse_error(line, format!("timestamp {time:?} is not RFC3339: {e}")))?;
    let mut fields = rest.splitn(3, ' ');
    let stream = match fields.next().unwrap_or_default() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        other => {
            return Err(parse_error(
                line,
                format!("stream {other:?} is not stdout or stderr"),
            ))
        }
    };
    let tag = fields
        .next()
        .ok_or_else(|| parse_error(line, "no log tag"))?;
    let text = fields
        .next()
        .ok_or_else(|| parse_error(line, "no space after the log tag"))?;
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err(parse_error(line, format!("log tag {tag:?} is not P or F"))),
    };
    Ok(LogLine {
        time: time.to_string(),
        stream,
        partial,
        text: text.to_string(),
    })
}

/// Cuts one stream's output into record texts (pure; one per stream).
///
/// [`push`](Self::push) emits `(partial, text)` for every completed line (`F`) and every
/// full-size piece of an overlong line (`P`); [`finish`](Self::finish) emits what is left at
/// EOF as a `P` record.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max_len: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    /// A splitter cutting lines longer than `max_len` bytes (at least 1).
    pub fn new(max_len: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max_len: max_len.max(1),
        }
    }

    /// Bytes buffered, waiting for the end of their line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds `data`, emitting `(partial, text)` for each record it completes.
    pub fn push(&mut self, data: &[u8], emit: &mut impl FnMut(bool, &[u8])) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.append(&rest[..i], emit);
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            emit(false, &self.buf);
            self.buf.clear();
            rest = &rest[i + 1..];
        }
        self.append(rest, emit);
    }

    /// End of the stream: emits buffered bytes (a line without its newline) as a `P` record.
    pub fn finish(&mut self, emit: &mut impl FnMut(bool, &[u8])) {
        if !self.buf.is_empty() {
            emit(true, &self.buf);
            self.buf.clear();
        }
    }

    fn append(&mut self, seg: &[u8], emit: &mut impl FnMut(bool, &[u8])) {
        self.buf.extend_from_slice(seg);
        // Cut only when more than max_len bytes are buffered, so a line of exactly
        // max_len bytes stays one F record (as containerd does).
        if self.buf.len() > self.max_len {
            let mut start = 0;
            while self.buf.len() - start > self.max_len {
                emit(true, &self.buf[start..start + self.max_len]);
                start += self.max_len;
            }
            self.buf.drain(..start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        let mut emit = |p: bool, t: &[u8]| out.push((p, t.to_vec()));
        for c in chunks {
            s.push(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    fn recs(v: &[(bool, &str)]) -> Vec<(bool, Vec<u8>)> {
        v.iter().map(|(p, t)| (*p, t.as_bytes().to_vec())).collect()
    }

    #[test]
    fn timestamps_are_go_rfc3339nano_utc() {
        let t = UNIX_EPOCH + Duration::new(1_714_564_803, 40_500_000);
        assert_eq!(format_timestamp(t), "2024-05-01T12:00:03.0405Z");
        let t = UNIX_EPOCH + Duration::new(1_714_564_803, 123_456_789);
        assert_eq!(format_timestamp(t), "2024-05-01T12:00:03.123456789Z");
        let t = UNIX_EPOCH + Duration::new(1_714_564_803, 0);
        assert_eq!(format_timestamp(t), "2024-05-01T12:00:03Z");
    }

    #[test]
    fn record_round_trip() {
        let time = format_timestamp(UNIX_EPOCH + Duration::new(1_700_000_000, 5));
        for (stream, partial, text) in [
            (Stream::Stdout, false, "hello world"),
            (Stream::Stderr, true, "  spaces  kept "),
            (Stream::Stdout, false, ""),
        ] {
            let rec = format_record(&time, stream, partial, text.as_bytes());
            let s = String::from_utf8(rec).unwrap();
            assert!(s.ends_with('\n'));
            let line = parse_cri_line(&s).unwrap();
            assert_eq!(
                line,
                LogLine {
                    time: time.clone(),
                    stream,
                    partial,
                    text: text.to_string()
                }
            );
        }
        let rec = format_record("2024-05-01T12:00:03Z", Stream::Stderr, true, b"x y");
        assert_eq!(rec, b"2024-05-01T12:00:03Z stderr P x y\n");
    }

    #[test]
    fn parse_accepts_kubelet_forms_and_rejects_garbage() {
        // A local-offset timestamp (containerd writes local time) and extra tags.
        let l =
            parse_cri_line("2016-10-06T00:17:09.669794202+02:00 stdout F:x log content").unwrap();
        assert_eq!(l.text, "log content");
        assert!(!l.partial);
        for (bad, why) in [
            ("", "no timestamp"),
            ("notatime stdout F x", "not RFC3339"),
            ("2024-05-01T12:00:03Z stdin F x", "not stdout or stderr"),
            ("2024-05-01T12:00:03Z stdout", "no log tag"),
            (
                "2024-05-01T12:00:03Z stdout F",
                "no space after the log tag",
            ),
            ("2024-05-01T12:00:03Z stdout X text", "not P or F"),
        ] {
            let err = parse_cri_line(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn splitter_lines_crlf_empty_and_eof() {
        assert_eq!(
            split(16, &[b"a\r\n\nb", b"c\nrest"]),
            recs(&[(false, "a"), (false, ""), (false, "bc"), (true, "rest")])
        );
        assert_eq!(split(16, &[b"x\n"]), recs(&[(false, "x")]));
        assert!(split(16, &[]).is_empty());
    }

    #[test]
    fn splitter_cuts_at_16_kib() {
        let exact = vec![b'a'; MAX_LINE_BYTES];
        let mut input = exact.clone();
        input.push(b'\n');
        let out = split(MAX_LINE_BYTES, &[&input]);
        assert_eq!(
            out,
            vec![(false, exact.clone())],
            "exactly 16 KiB is one F record"
        );

        // 16 KiB + 1 → P(16 KiB) + F(1); 2×16 KiB + 5, fed in odd chunks → P, P, F(5).
        let mut one_more = vec![b'b'; MAX_LINE_BYTES + 1];
        one_more.push(b'\n');
        let out = split(MAX_LINE_BYTES, &[&one_more]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], (true, vec![b'b'; MAX_LINE_BYTES]));
        assert_eq!(out[1], (false, b"b".to_vec()));

        let long: Vec<u8> = (0..2 * MAX_LINE_BYTES + 5)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut fed = long.clone();
        fed.push(b'\n');
        let chunks: Vec<&[u8]> = fed.chunks(4093).collect();
        let out = split(MAX_LINE_BYTES, &chunks);
        assert_eq!(
            out.iter().map(|(p, t)| (*p, t.len())).collect::<Vec<_>>(),
            vec![(true, MAX_LINE_BYTES), (true, MAX_LINE_BYTES), (false, 5)]
        );
        let joined: Vec<u8> = out.into_iter().flat_map(|(_, t)| t).collect();
        assert_eq!(joined, long);
    }
}
