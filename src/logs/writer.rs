//! [`CriWriter`]: appends CRI records to a container log and rotates it by size.
//!
//! Rotation follows the kubelet's container log manager (pkg/kubelet/logs), except that the
//! writer rotates itself (there is no separate "reopen" round trip) and nothing is gzipped:
//! - before a record that would grow the file past `max_size`, the file `<n>.log` is renamed
//!   to `<n>.log.<YYYYMMDD-HHMMSS>` (UTC, the kubelet's `20060102-150405` suffix) and a new
//!   `<n>.log` is started. If that name is taken (several rotations in one second), `.1`,
//!   `.2`, … is appended;
//! - then the oldest rotated files are removed so that at most `max_files` files exist in
//!   total, the current one included (kubelet: `containerLogMaxFiles`, default 5).
//!
//! So a file never exceeds `max_size`, unless a single record is larger than `max_size`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::macros::format_description;

use super::format::{format_record, format_timestamp, format_utc};
use super::{LogError, Stream};

/// Mode of log files (containerd creates them 0640).
pub const LOG_FILE_MODE: u32 = 0o640;

/// When to rotate a container log and how many files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatePolicy {
    /// Rotate before the file would exceed this many bytes (kubelet `containerLogMaxSize`,
    /// default 10 MiB). 0 disables rotation.
    pub max_size: u64,
    /// Files kept in total, current one included (kubelet `containerLogMaxFiles`, default 5;
    /// at least 2, as in the kubelet).
    pub max_files: u32,
}

impl RotatePolicy {
    /// The kubelet's defaults: 10 MiB, 5 files.
    pub fn kubelet() -> Self {
        RotatePolicy {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
        }
    }

    /// Checks the values (max_files ≥ 2).
    pub fn validate(&self) -> Result<(), LogError> {
        if self.max_files < 2 {
            return Err(LogError::Invalid {
                field: "max_files".into(),
                value: self.max_files.to_string(),
                allowed: "must be at least 2 (the current file and one rotated file)".into(),
            });
        }
        Ok(())
    }
}

impl Default for RotatePolicy {
    fn default() -> Self {
        RotatePolicy::kubelet()
    }
}

/// Appends records to one container log file, rotating it per [`RotatePolicy`].
#[derive(Debug)]
pub struct CriWriter {
    path: PathBuf,
    file: File,
    size: u64,
    policy: RotatePolicy,
}

fn open_log(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_FILE_MODE)
        .open(path)
        .map_err(|e| LogError::io("open", path, e))
}

impl CriWriter {
    /// Opens (appending) or creates `path`, creating its parent directories.
    pub fn open(path: &Path, policy: RotatePolicy) -> Result<Self, LogError> {
        policy.validate()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LogError::io("create dir", dir, e))?;
        }
        let file = open_log(path)?;
        let size = file
            .metadata()
            .map_err(|e| LogError::io("stat", path, e))?
            .len();
        Ok(CriWriter {
            path: path.to_path_buf(),
            file,
            size,
            policy,
        })
    }

    /// The log file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the current file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes one record stamped with the current time.
    pub fn write_record(
        &mut self,
        stream: Stream,
        partial: bool,
        text: &[u8],
    ) -> Result<(), LogError> {
        self.write_record_at(SystemTime::now(), stream, partial, text)
    }

    /// Writes one record stamped `time` (rotating first when it would not fit).
    pub fn write_record_at(
        &mut self,
        time: SystemTime,
        stream: Stream,
        partial: bool,
        text: &[u8],
    ) -> Result<(), LogError> {
        let rec = format_record(&format_timestamp(time), stream, partial, text);
        let len = rec.len() as u64;
        if self.policy.max_size > 0 && self.size > 0 && self.size + len > self.policy.max_size {
            self.rotate(time)?;
        }
        self.file
            .write_all(&rec)
            .map_err(|e| LogError::io("write", &self.path, e))?;
        self.size += len;
        Ok(())
    }

    /// Flushes the file to disk.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.file
            .sync_all()
            .map_err(|e| LogError::io("fsync", &self.path, e))
    }

    /// Renames the current file away, starts a new one and prunes old rotated files.
    fn rotate(&mut self, time: SystemTime) -> Result<(), LogError> {
        // Data of the rotated file should be on disk before it is renamed and possibly pruned.
        let _ = self.file.sync_data();
        let stamp = format_utc(
            time,
            format_description!("[year][month][day]-[hour][minute][second]"),
        );
        let base = format!("{}.{stamp}", self.path.display());
        let mut target = PathBuf::from(&base);
        let mut k = 1u32;
        while target.exists() {
            target = PathBuf::from(format!("{base}.{k}"));
            k += 1;
        }
        std::fs::rename(&self.path, &target).map_err(|e| LogError::io("rename", &self.path, e))?;
        self.file = open_log(&self.path)?;
        self.size = 0;

        let rotated = rotated_logs(&self.path)?;
        let keep = self.policy.max_files.saturating_sub(1) as usize;
        let excess = rotated.len().saturating_sub(keep);
        for old in &rotated[..excess] {
            std::fs::remove_file(old).map_err(|e| LogError::io("remove", old, e))?;
        }
        Ok(())
    }
}

/// Sort key of a rotated file name suffix `<YYYYMMDD-HHMMSS>[.<k>]`.
fn rotation_key(suffix: &str) -> Option<(String, u32)> {
    let (stamp, k) = match suffix.split_once('.') {
        Some((s, k)) => (s, k.parse::<u32>().ok()?),
        None => (suffix, 0),
    };
    let ok = stamp.len() == 15
        && stamp.as_bytes()[8] == b'-'
        && stamp
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit());
    ok.then(|| (stamp.to_string(), k))
}

/// The rotated files of the log `current` (`<current>.<YYYYMMDD-HHMMSS>[.<k>]`), oldest first.
pub fn rotated_logs(current: &Path) -> Result<Vec<PathBuf>, LogError> {
    let (Some(dir), Some(name)) = (
        current.parent(),
        current.file_name().and_then(|n| n.to_str()),
    ) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{name}.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io("read dir", dir, e))? {
        let entry = entry.map_err(|e| LogError::io("read dir", dir, e))?;
        let file_name = entry.file_name();
        let Some(suffix) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some(key) = rotation_key(suffix) {
            found.push((key, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse_cri_line;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn appends_records_and_counts_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns_pod_uid/c/0.log");
        let mut w = CriWriter::open(&path, RotatePolicy::kubelet()).unwrap();
        let t = UNIX_EPOCH + Duration::new(1_714_564_803, 500_000_000);
        w.write_record_at(t, Stream::Stdout, false, b"one").unwrap();
        w.write_record_at(t, Stream::Stderr, true, b"two").unwrap();
        w.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "2024-05-01T12:00:03.5Z stdout F one\n2024-05-01T12:00:03.5Z stderr P two\n"
        );
        assert_eq!(w.size(), text.len() as u64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, LOG_FILE_MODE);

        // Reopening appends.
        drop(w);
        let mut w = CriWriter::open(&path, RotatePolicy::kubelet()).unwrap();
        assert_eq!(w.size(), text.len() as u64);
        w.write_record(Stream::Stdout, false, b"three").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            parse_cri_line(text.lines().nth(2).unwrap()).unwrap().text,
            "three"
        );
    }

    #[test]
    fn rotation_keeps_exactly_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let policy = RotatePolicy {
            max_size: 200,
            max_files: 3,
        };
        let mut w = CriWriter::open(&path, policy).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_714_564_803);
        // Each record is 20 (time) + 1 + 6 + 3 + 40 + 1 = 71 bytes: two per file.
        let mut written = Vec::new();
        for i in 0..20u64 {
            let text = format!("{i:040}");
            // Several rotations fall in the same second: exercises the `.k` suffixes.
            let t = t0 + Duration::from_millis(i * 300);
            w.write_record_at(t, Stream::Stdout, false, text.as_bytes())
                .unwrap();
            written.push(text);
        }
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
        let rotated = rotated_logs(&path).unwrap();
        assert_eq!(rotated.len(), 2);
        for f in &rotated {
            let name = f.file_name().unwrap().to_string_lossy();
            assert!(name.starts_with("0.log.20240501-12000"), "{name}");
        }
        for f in files.iter() {
            assert!(std::fs::metadata(f).unwrap().len() <= 200, "{f:?} too big");
        }
        // Oldest rotated, newer rotated, current: together the last 6 records, in order.
        let mut texts = Vec::new();
        for f in rotated.iter().chain(std::iter::once(&path)) {
            for line in std::fs::read_to_string(f).unwrap().lines() {
                texts.push(parse_cri_line(line).unwrap().text);
            }
        }
        assert_eq!(texts, written[14..].to_vec());
        // Names follow the kubelet: 0.log.YYYYMMDD-HHMMSS[.k].
        let name = rotated[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(name.starts_with("0.log.20240501-1200"), "{name}");
    }

    #[test]
    fn rotation_order_uses_numeric_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("1.log");
        for n in [
            "1.log.20240501-120000.10",
            "1.log.20240501-120000",
            "1.log.20240501-120000.2",
            "1.log.20240430-235959",
            "1.log.gz",
            "1.log.20240501-120000.tmp",
            "10.log.20240501-120000",
        ] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<String> = rotated_logs(&cur)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "1.log.20240430-235959",
                "1.log.20240501-120000",
                "1.log.20240501-120000.2",
                "1.log.20240501-120000.10"
            ]
        );
    }

    #[test]
    fn rejects_single_file_policy() {
        let dir = tempfile::tempdir().unwrap();
        let err = CriWriter::open(
            &dir.path().join("0.log"),
            RotatePolicy {
                max_size: 10,
                max_files: 1,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_files") && err.contains("\"1\""), "{err}");
        assert!(!dir.path().join("0.log").exists());
    }

    #[test]
    fn oversized_record_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = CriWriter::open(
            &path,
            RotatePolicy {
                max_size: 50,
                max_files: 2,
            },
        )
        .unwrap();
        w.write_record(Stream::Stdout, false, &[b'x'; 100]).unwrap();
        w.write_record(Stream::Stdout, false, &[b'y'; 100]).unwrap();
        assert_eq!(rotated_logs(&path).unwrap().len(), 1);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains(&"y".repeat(100)));
    }
}
