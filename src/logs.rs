//! TEMPORARY stand-in for the logs module (owned by another helper); replaced on merge.
use std::path::{Path, PathBuf};

/// Errors.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// IO.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}
/// One log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Time.
    pub time: String,
    /// Stream.
    pub stream: String,
    /// Text.
    pub text: String,
}
/// Path of a container log.
pub fn container_log_path(
    log_root: &Path,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    log_root
        .join(format!("{namespace}_{pod_name}_{pod_uid}"))
        .join(container)
        .join(format!("{restart_count}.log"))
}
/// Last n lines.
pub fn tail_lines(path: &Path, n: usize) -> Result<Vec<LogLine>, LogError> {
    let s = std::fs::read_to_string(path).map_err(|e| LogError::Io {
        path: path.into(),
        source: e,
    })?;
    let v: Vec<LogLine> = s
        .lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let time = it.next().unwrap_or_default().to_string();
            let stream = it.next().unwrap_or_default().to_string();
            let _ = it.next();
            LogLine {
                time,
                stream,
                text: it.next().unwrap_or_default().to_string(),
            }
        })
        .collect();
    let skip = v.len().saturating_sub(n);
    Ok(v.into_iter().skip(skip).collect())
}
/// Follow.
pub async fn follow(path: &Path, out: impl tokio::io::AsyncWrite + Unpin) -> Result<(), LogError> {
    let _ = (path, out);
    Ok(())
}
