//! Container runtimes: the [`Runtime`] trait the agent's pod workers drive, and the default
//! [`process`] runtime that runs each container as a supervised host process.
//!
//! The trait is deliberately small so a CRI runtime can be added later without touching the
//! workers: start a fully resolved [`ContainerSpec`], wait for it to exit, signal it, and
//! recognise a still-running container from a persisted [`ContainerHandle`] (adoption).

pub mod process;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

/// A boxed future, as returned by [`Runtime::wait`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A bind mount of a host path into the container's view of the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// The path to mount, as opened on this machine (already `--root`-prefixed).
    pub source: PathBuf,
    /// Where the container sees it (the Pod's `mountPath`).
    pub target: PathBuf,
    /// Mount read-only.
    pub read_only: bool,
}

/// cgroup resource settings derived from the container's requests/limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// CPU request in millicores (→ cpu shares / weight).
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores (→ CFS quota).
    pub cpu_limit_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// `oom_score_adj` for the container's processes (the kubelet uses -997 for node-critical
    /// pods such as the control plane). Best effort: a value the agent may not set (negative
    /// without CAP_SYS_RESOURCE) is skipped with a debug log.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

/// Everything needed to start one container, fully resolved by the agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// UID of the pod this container belongs to.
    pub pod_uid: String,
    /// Full pod name (`<name>-<node>`).
    pub pod_name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Container name.
    pub container_name: String,
    /// How many times this container has been restarted before this start.
    pub restart_count: u32,
    /// The image reference (recorded, not pulled).
    pub image: String,
    /// The executable to run, already resolved to an absolute path.
    pub executable: PathBuf,
    /// argv, including argv[0] (as written in the manifest).
    pub argv: Vec<String>,
    /// Environment, fully resolved (fieldRefs substituted).
    pub env: Vec<(String, String)>,
    /// Working directory as the container sees it.
    pub working_dir: Option<PathBuf>,
    /// uid to run as.
    pub run_as_user: Option<u32>,
    /// gid to run as.
    pub run_as_group: Option<u32>,
    /// Bind mounts (a private mount namespace is used only when one is needed).
    pub mounts: Vec<Mount>,
    /// cgroup resources.
    pub resources: Resources,
    /// Where this instance's CRI-format log goes.
    pub log_path: PathBuf,
}

/// A started container, as persisted in the agent's state dir for adoption.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerHandle {
    /// Runtime-specific id (for the process runtime: `<pod_uid>/<container>/<restart>`).
    pub id: String,
    /// Host pid of the container's main process.
    pub pid: i32,
    /// The process start time in clock ticks since boot (`/proc/<pid>/stat` field 22):
    /// together with the pid it identifies *this* process, never a reused pid.
    pub start_ticks: u64,
    /// Wall-clock start time.
    pub started_at: SystemTime,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    /// Exited with a code.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// Ended, but its status could not be collected (e.g. an adopted process).
    Unknown,
}

impl ExitStatus {
    /// The code Kubernetes reports (128+signal for signals, 0/1.. for exits, -1 unknown).
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) => *c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => -1,
        }
    }

    /// True for a clean exit (code 0).
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }
}

/// Which signal to send to the whole container process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Graceful: SIGTERM.
    Term,
    /// Forced: SIGKILL (cgroup.kill where available).
    Kill,
}

/// Errors from a runtime, naming the container and what failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    // Executable lookup and hostPath checks happen in the agent's resolver
    // (`agent::resolve::ResolveError`) before a runtime sees the container.
    /// The Pod uses something this runtime cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// Starting the process failed.
    #[error("container {container}: start failed: {source}")]
    Start {
        /// Container name.
        container: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The container's executable could not be executed: `execve` failed after setup, as the
    /// container's user (ENOENT: file or ELF interpreter missing; EACCES: no search permission
    /// on a directory, no exec permission, noexec mount; ENOEXEC: not an executable format).
    #[error("container {container}: execve {}: {source}", executable.display())]
    Exec {
        /// Container name.
        container: String,
        /// The executable.
        executable: PathBuf,
        /// Cause (carries the errno).
        #[source]
        source: std::io::Error,
    },
    /// Any other OS-level failure.
    #[error("{op}: {source}")]
    Os {
        /// What was attempted.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A container runtime, driven by the agent's pod workers.
pub trait Runtime: Send + Sync + 'static {
    /// Starts a container; returns once the process exists (not once it is healthy).
    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, RuntimeError>;

    /// Resolves when the container's main process has exited (works for adopted processes).
    fn wait(&self, handle: &ContainerHandle) -> BoxFuture<ExitStatus>;

    /// Signals the container's whole process tree.
    fn signal(&self, handle: &ContainerHandle, signal: StopSignal) -> Result<(), RuntimeError>;

    /// True if `handle` still names a live process this runtime started (pid *and* start
    /// time match): the adoption check. Never true for a reused pid.
    fn is_running(&self, handle: &ContainerHandle) -> bool;

    /// Releases what the container held (cgroups, ...) after it has exited.
    fn cleanup(&self, handle: &ContainerHandle);
}
