//! Types the agent's modules share (the resolver and its volume and env helpers, the worker
//! and the state store), so that none of them depends on another for a type.

use std::path::PathBuf;
use std::time::SystemTime;

/// Why a container cannot be started as specified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// command[0] (or the image's mapped executable) is not on the bin path.
    #[error("container {container}: executable {name:?} not found in {searched}")]
    ExecutableNotFound {
        /// Container name.
        container: String,
        /// The name looked up.
        name: String,
        /// Directories searched, colon-separated.
        searched: String,
    },
    /// No command and no image → executable entry.
    #[error("container {container}: no command, and image {image:?} has no entry in the image table (add --image-command {image}=/path/to/executable)")]
    NoCommand {
        /// Container name.
        container: String,
        /// Image.
        image: String,
    },
    /// A hostPath volume failed its checks.
    #[error("volume {volume}: hostPath {path}: {reason}", path = path.display())]
    Volume {
        /// Volume name.
        volume: String,
        /// Host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A field the process runtime cannot honour.
    #[error("{0}")]
    Unsupported(String),
    /// A quantity that does not parse.
    #[error("container {container}: resources {field}: {value:?} is not a valid quantity (e.g. 250m, 1, 128Mi, 1G)")]
    Quantity {
        /// Container.
        container: String,
        /// Field, e.g. `limits.memory`.
        field: String,
        /// Value.
        value: String,
    },
    /// An OS-level failure while preparing.
    #[error("{0}")]
    Os(String),
}

impl ResolveError {
    /// The Kubernetes-style waiting reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::ExecutableNotFound { .. } => "ExecutableNotFound",
            ResolveError::NoCommand { .. } => "CreateContainerConfigError",
            ResolveError::Volume { .. } => "CreateContainerError",
            ResolveError::Unsupported(_) | ResolveError::Quantity { .. } => {
                "CreateContainerConfigError"
            }
            ResolveError::Os(_) => "CreateContainerError",
        }
    }
}

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    /// Exit code (128+signal when killed, -1 when unknown).
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `MountedFileChanged`, `Unknown`.
    pub reason: String,
    /// Details (e.g. the failed probe).
    pub message: Option<String>,
    /// When the instance started.
    pub started_at: Option<SystemTime>,
    /// When it ended (as seen by the agent).
    pub finished_at: SystemTime,
    /// The runtime's container id.
    pub container_id: Option<String>,
}
