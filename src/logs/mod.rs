//! Container logs in the CRI format, as the kubelet and containerd keep them.
//!
//! Layout: `<log_root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`
//! ([`container_log_path`]); each line is one record
//! `<RFC3339Nano UTC time> <stdout|stderr> <F|P> <text>\n` ([`format`]).
//!
//! - Writing: [`CriWriter`] appends records and rotates by size ([`RotatePolicy`], kubelet
//!   defaults 10 MiB × 5 files). The per-container `plinth log-shim` process ([`run_shim`],
//!   started with [`shim_command`]) reads the container's stdout and stderr pipes and feeds
//!   the writer, so logs survive restarts of the agent.
//! - Reading: [`parse_cri_line`], [`tail_lines`] (reads from the end, joins `P` records into
//!   full lines), [`follow`] (like `kubectl logs -f`, survives rotation),
//!   [`follow_instances`] (also moves on to the next container instance) and
//!   [`previous_log_path`] (`kubectl logs --previous`).
//! - Instances: one file per container instance, never reused ([`next_restart_count`]).

pub mod format;
mod reader;
mod shim;
mod writer;

pub use format::{format_record, format_timestamp, parse_cri_line, LineSplitter, MAX_LINE_BYTES};
pub use reader::{
    follow, follow_from, follow_instances, tail, tail_lines, Tail, FOLLOW_POLL_INTERVAL,
};
pub use shim::{pass_stderr_fd, pump, run_shim, shim_command, shim_command_with_policy, ShimArgs};
pub use writer::{rotated_logs, CriWriter, RotatePolicy, LOG_FILE_MODE};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::fs::FsError;

/// Errors from reading or writing container logs; always names the path or value involved.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A filesystem operation ("open", "write", "rename", ...) failed on a named path.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Writing followed log text to the output failed.
    #[error("write log output")]
    Output {
        /// The underlying error (`BrokenPipe` when the reader went away).
        #[source]
        source: io::Error,
    },
    /// A line is not a CRI log record.
    #[error("not a CRI log record ({reason}): {line:?}")]
    Parse {
        /// The offending line (shortened).
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A bad argument or setting.
    #[error("{field}: invalid value {value:?}: {allowed}")]
    Invalid {
        /// The argument or field (`--max-files`, `max_size`, ...).
        field: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Fs(FsError::io(op, path, source))
    }
}

/// Which output stream of the container a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`, as written in the record.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(&self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed record, or (from [`tail_lines`]) one full line joined from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The RFC3339Nano timestamp as written (of the first record, for joined lines).
    pub time: String,
    /// The stream.
    pub stream: Stream,
    /// True for a `P` record: the line continues in the next record of the same stream
    /// (for joined lines: the line had no end yet, e.g. output cut at EOF without a newline).
    pub partial: bool,
    /// The text, without the trailing newline.
    pub text: String,
}

/// `<log_root>/<namespace>_<pod_name>_<pod_uid>/<container>/<restart_count>.log`, the kubelet's layout.
pub fn container_log_path(
    log_root: &Path,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    pod_log_dir(log_root, namespace, pod_name, pod_uid)
        .join(container)
        .join(format!("{restart_count}.log"))
}

/// `<log_root>/<namespace>_<pod_name>_<pod_uid>`: the directory holding all of a pod's logs
/// (remove it when the pod is gone).
pub fn pod_log_dir(log_root: &Path, namespace: &str, pod_name: &str, pod_uid: &str) -> PathBuf {
    log_root.join(format!("{namespace}_{pod_name}_{pod_uid}"))
}

/// The restart number of a `<n>.log` file name.
fn restart_number(file_name: &str) -> Option<u32> {
    let n = file_name.strip_suffix(".log")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The restart number of an instance log file: `<n>.log` or a rotated `<n>.log.<suffix>`.
fn instance_number(file_name: &str) -> Option<u32> {
    match file_name.split_once(".log.") {
        Some((n, _)) => restart_number(&format!("{n}.log")),
        None => restart_number(file_name),
    }
}

/// The restart count for the next instance of the container whose log directory is
/// `container_dir` (`<log_root>/<ns>_<pod>_<uid>/<container>`): one more than the highest
/// `<n>.log` (or rotated `<n>.log.*`) there, 0 when there is none. Like the kubelet's
/// `calcRestartCountByLogDir`: a container restarted after its runtime state was lost (agent
/// restart, rollback to an earlier pod version) never appends to a dead instance's file.
pub fn next_restart_count(container_dir: &Path) -> u32 {
    std::fs::read_dir(container_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| instance_number(e.file_name().to_str()?))
        .max()
        .map_or(0, |n| n.saturating_add(1))
}

/// The log of the previous instance of the container whose current log is `current`
/// (`<dir>/<n>.log`): the existing `<k>.log` in the same directory with the highest `k < n`.
/// `None` when there is none or `current` is not named `<n>.log`.
pub fn previous_log_path(current: &Path) -> Option<PathBuf> {
    let n = restart_number(current.file_name()?.to_str()?)?;
    let dir = current.parent()?;
    let best = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| restart_number(e.file_name().to_str()?))
        .filter(|k| *k < n)
        .max()?;
    Some(dir.join(format!("{best}.log")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_layout() {
        let p = container_log_path(
            Path::new("/var/log/pods"),
            "kube-system",
            "etcd-node1",
            "0a1b2c",
            "etcd",
            3,
        );
        assert_eq!(
            p,
            Path::new("/var/log/pods/kube-system_etcd-node1_0a1b2c/etcd/3.log")
        );
    }

    #[test]
    fn next_restart_count_follows_the_highest_instance_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_restart_count(&dir.path().join("missing")), 0);
        assert_eq!(next_restart_count(dir.path()), 0);
        for name in ["0.log", "2.log", "x.log", "current.log"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(next_restart_count(dir.path()), 3);
        std::fs::write(dir.path().join("4.log.20240101-000000"), "").unwrap();
        assert_eq!(next_restart_count(dir.path()), 5);
    }

    #[test]
    fn previous_log_is_highest_lower_number() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "0.log",
            "2.log",
            "5.log",
            "7.log",
            "4.log.20240101-000000",
            "x.log",
            "06.log.gz",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let cur = dir.path().join("5.log");
        assert_eq!(previous_log_path(&cur), Some(dir.path().join("2.log")));
        assert_eq!(
            previous_log_path(&dir.path().join("7.log")),
            Some(dir.path().join("5.log"))
        );
        // The current file need not exist yet.
        assert_eq!(
            previous_log_path(&dir.path().join("9.log")),
            Some(dir.path().join("7.log"))
        );
        assert_eq!(previous_log_path(&dir.path().join("0.log")), None);
        assert_eq!(previous_log_path(&dir.path().join("current.log")), None);
    }
}
