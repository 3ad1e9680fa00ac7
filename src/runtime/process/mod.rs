//! The process runtime (the default): each container is a supervised host process.
//!
//! [`ProcessRuntime::start`] re-executes the plinth binary as `plinth container-init` (as runc
//! and youki do: the agent is a multi-threaded tokio process, so nothing non-trivial may run
//! between `fork` and `exec` there). The single-threaded container-init ([`init`]) sets up the
//! session, log pipes and shim, cgroups, mounts, identity and working directory, then `execve`s
//! the container's executable, so the container's pid is the pid the runtime spawned.
//!
//! Conventions:
//! - **spec and status**: container-init's stdin is one end of a Unix socket pair. The runtime
//!   writes the [`InitRequest`] as JSON and shuts down its write side; container-init answers
//!   on the same socket with nothing (EOF at `execve`, which closes its close-on-exec copy) or
//!   with one error message before exiting 1. `start` returns that message as
//!   [`RuntimeError::Start`]; setup is bounded by [`START_TIMEOUT`].
//! - **logs**: container-init creates the stdout and stderr pipes itself and starts the log
//!   shim ([`crate::logs::shim_command`]; stdout's read end on the shim's fd 0, stderr's on its
//!   fd 3) through a double fork. Neither the agent nor the container holds the read ends or is
//!   the shim's parent, so an agent restart neither kills the container by SIGPIPE nor leaves
//!   zombie shims; the shim exits at EOF, when the container tree is gone.
//! - **identity**: a container is pid + start time (`/proc/<pid>/stat` field 22), see
//!   [`procfs`]; nothing is ever signalled on a pid alone.
//! - **waiting**: `pidfd_open` + tokio's `AsyncFd` ([`pidfd`]). Own children are reaped with
//!   `waitid(P_PIDFD)` (no zombies, exact status); adopted processes (children of a previous
//!   agent) resolve as [`ExitStatus::Unknown`] when they end. Every started container must be
//!   waited for (or cleaned up) to be reaped. tokio::process is not used for containers.
//! - **signals**: `Term` goes to the process group (container-init made the container a session
//!   and group leader) and to any other process in its cgroup; `Kill` uses cgroup v2
//!   `cgroup.kill`, else the v1 freezer (freeze, SIGKILL all, thaw) or pids cgroup, plus the
//!   process group. See [`cgroups`] for the layout and the fallbacks.

pub mod cgroups;
pub mod init;
pub mod mounts;
pub mod pidfd;
pub use crate::procfs;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{
    BoxFuture, ContainerHandle, ContainerSpec, ExitStatus, Runtime, RuntimeError, StopSignal,
};
use cgroups::{CgroupLayout, CgroupParent, ContainerCgroups, Tracker};

pub use init::container_init_main;
pub use procfs::process_start_ticks;

/// How long container-init may take to set a container up before `start` gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the log shim command for a container's log file (see [`crate::logs::shim_command`]
/// for the fd convention the runtime follows).
pub type ShimCommandFn = fn(plinth_exe: &Path, log_path: &Path) -> Command;

/// Configuration of the [`ProcessRuntime`].
#[derive(Debug, Clone)]
pub struct ProcessRuntimeConfig {
    /// The plinth binary, run as `container-init` and `log-shim`. Default `/proc/self/exe`:
    /// the very binary the agent runs, even after the file was replaced by an upgrade, so the
    /// agent and its container-init always speak the same protocol.
    pub plinth_exe: PathBuf,
    /// cgroup parent: relative (default `plinth`) = below the agent's own cgroup in each
    /// hierarchy; absolute (`/plinth`) = below the hierarchy root. See [`cgroups`].
    pub cgroup_parent: String,
    /// The log shim command (default [`crate::logs::shim_command`]; tests substitute it).
    pub shim_command: ShimCommandFn,
}

impl Default for ProcessRuntimeConfig {
    fn default() -> Self {
        ProcessRuntimeConfig {
            plinth_exe: PathBuf::from("/proc/self/exe"),
            cgroup_parent: "plinth".to_string(),
            shim_command: crate::logs::shim_command,
        }
    }
}

/// What the runtime sends container-init (JSON over its stdin socket).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitRequest {
    /// The container.
    pub spec: ContainerSpec,
    /// `cgroup.procs` files to join (prepared by the runtime).
    pub cgroup_procs: Vec<PathBuf>,
    /// The log shim to start.
    pub shim: init::ShimCommand,
}

/// The id the process runtime gives a container: `<pod_uid>/<container>/<restart>`.
pub fn container_id(spec: &ContainerSpec) -> String {
    format!(
        "{}/{}/{}",
        spec.pod_uid, spec.container_name, spec.restart_count
    )
}

/// Splits a [`container_id`] into (pod uid, container name, restart count).
pub fn parse_container_id(id: &str) -> Option<(&str, &str, u32)> {
    let mut it = id.rsplitn(3, '/');
    let restart = it.next()?.parse().ok()?;
    let name = it.next()?;
    let uid = it.next()?;
    if uid.is_empty() || name.is_empty() {
        return None;
    }
    Some((uid, name, restart))
}

/// A container this runtime instance spawned (so it is our child and ours to reap).
struct Child {
    pid: i32,
    pidfd: Arc<OwnedFd>,
    status: Arc<Mutex<Option<ExitStatus>>>,
}

/// The default container runtime: containers as supervised host processes.
pub struct ProcessRuntime {
    cfg: ProcessRuntimeConfig,
    parent: CgroupParent,
    layout: CgroupLayout,
    children: Mutex<HashMap<String, Child>>,
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("cfg", &self.cfg)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn invalid(container: &str, what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Unsupported(format!("container {container}: {what}"))
}

impl ProcessRuntime {
    /// Creates the runtime: validates the configuration and detects the cgroup hierarchies.
    pub fn new(cfg: ProcessRuntimeConfig) -> Result<ProcessRuntime, RuntimeError> {
        let layout = CgroupLayout::detect();
        if layout.is_empty() {
            tracing::info!(
                "no cgroup hierarchy visible (e.g. under `ip netns exec`): containers are tracked \
                 and killed by process group only, resources are not applied"
            );
        } else {
            tracing::debug!(?layout, "cgroup layout");
        }
        ProcessRuntime::with_cgroup_layout(cfg, layout)
    }

    /// Creates the runtime with a given cgroup layout instead of the detected one (an empty
    /// layout = no cgroups: process-group tracking only, as under `ip netns exec`).
    pub fn with_cgroup_layout(
        cfg: ProcessRuntimeConfig,
        layout: CgroupLayout,
    ) -> Result<ProcessRuntime, RuntimeError> {
        let parent = CgroupParent::parse(&cfg.cgroup_parent)
            .map_err(|e| RuntimeError::Unsupported(format!("process runtime: {e}")))?;
        std::fs::metadata(&cfg.plinth_exe).map_err(|source| RuntimeError::Os {
            op: format!(
                "process runtime: plinth binary {}",
                cfg.plinth_exe.display()
            ),
            source,
        })?;
        Ok(ProcessRuntime {
            cfg,
            parent,
            layout,
            children: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProcessRuntimeConfig {
        &self.cfg
    }

    /// The detected cgroup hierarchies.
    pub fn cgroup_layout(&self) -> &CgroupLayout {
        &self.layout
    }

    /// The directory of the cgroup parent in every visible hierarchy (whether or not it
    /// exists yet): where all of this runtime's pod cgroups live.
    pub fn cgroup_parent_dirs(&self) -> Vec<PathBuf> {
        self.layout
            .v2
            .iter()
            .chain(self.layout.v1.iter())
            .filter_map(|h| h.dir_of(&self.parent.path_in(h)))
            .collect()
    }

    /// The cgroup directories of a container id (whether or not they exist).
    pub fn cgroups_of(&self, id: &str) -> Option<ContainerCgroups> {
        let (uid, name, restart) = parse_container_id(id)?;
        ContainerCgroups::for_container(&self.layout, &self.parent, uid, name, restart).ok()
    }

    /// Every pid in the container's tracking cgroup (empty without cgroups).
    pub fn cgroup_pids(&self, handle: &ContainerHandle) -> Vec<i32> {
        self.cgroups_of(&handle.id)
            .and_then(|cg| cg.tracking_leaf().map(cgroups::procs))
            .unwrap_or_default()
    }

    fn check_spec(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let c = &spec.container_name;
        if !spec.executable.is_absolute() {
            return Err(invalid(
                c,
                format!(
                    "executable {:?} must be an absolute path (resolved by the agent)",
                    spec.executable
                ),
            ));
        }
        if let Some(dir) = &spec.working_dir {
            if !dir.is_absolute() {
                return Err(invalid(
                    c,
                    format!("workingDir {dir:?} must be an absolute path"),
                ));
            }
        }
        for m in mounts::mount_order(&spec.mounts) {
            mounts::normalize_target(&m.target).map_err(|e| invalid(c, e))?;
            if !m.source.is_absolute() {
                return Err(invalid(
                    c,
                    format!("mount source {:?} must be an absolute path", m.source),
                ));
            }
        }
        Ok(())
    }

    /// True for our own child that has not been reaped: its pid cannot have been reused.
    fn own_unreaped(&self, handle: &ContainerHandle) -> bool {
        lock(&self.children)
            .get(&handle.id)
            .is_some_and(|c| c.pid == handle.pid && lock(&c.status).is_none())
    }

    /// Whether signalling the process group `handle.pid` can only reach the container's tree.
    fn group_is_ours(&self, handle: &ContainerHandle) -> bool {
        if handle.pid <= 1 {
            return false;
        }
        if self.own_unreaped(handle) {
            return true;
        }
        match procfs::read_stat(handle.pid) {
            // The leader itself (alive or a zombie): its group is the container's.
            Ok(s) => s.start_ticks == handle.start_ticks,
            // No such process: while members of the group remain, the kernel does not reuse
            // the pid, so the group (if any) is still the container's.
            Err(e) => e.is_not_found(),
        }
    }

    fn spawn_init(
        &self,
        spec: &ContainerSpec,
        request: &InitRequest,
    ) -> Result<(i32, OwnedFd, u64), RuntimeError> {
        let container = &spec.container_name;
        let start_err = |source: io::Error| RuntimeError::Start {
            container: container.clone(),
            source,
        };
        let json = serde_json::to_vec(request).map_err(|e| start_err(io::Error::other(e)))?;
        let (mut ours, theirs) = UnixStream::pair().map_err(start_err)?;
        let mut cmd = Command::new(&self.cfg.plinth_exe);
        cmd.arg("container-init")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| {
            start_err(io::Error::new(
                e.kind(),
                format!(
                    "spawn {} container-init: {e}",
                    self.cfg.plinth_exe.display()
                ),
            ))
        })?;
        drop(cmd); // closes our copy of container-init's end of the socket
        let pid = child.id() as i32;
        let fail = |child: &mut std::process::Child, err: io::Error| {
            let _ = child.kill();
            let _ = child.wait();
            start_err(err)
        };
        // Not reaped yet, so `pid` still names our child.
        let pidfd = match pidfd::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(fail(
                    &mut child,
                    io::Error::new(e.kind(), format!("pidfd_open: {e}")),
                ))
            }
        };
        let ticks = match procfs::process_start_ticks(pid) {
            Ok(t) => t,
            Err(e) => return Err(fail(&mut child, io::Error::other(e))),
        };
        let exchange = (|| -> io::Result<String> {
            ours.set_write_timeout(Some(START_TIMEOUT))?;
            ours.set_read_timeout(Some(START_TIMEOUT))?;
            ours.write_all(&json)?;
            ours.shutdown(std::net::Shutdown::Write)?;
            let mut msg = String::new();
            ours.read_to_string(&mut msg)?;
            Ok(msg)
        })();
        match exchange {
            Ok(msg) if msg.is_empty() => Ok((pid, pidfd, ticks)),
            Ok(msg) => {
                let _ = child.wait();
                let report = init::InitReport::parse(&msg);
                Err(match report.exec_errno {
                    Some(errno) => RuntimeError::Exec {
                        container: container.clone(),
                        executable: spec.executable.clone(),
                        source: io::Error::from_raw_os_error(errno),
                    },
                    None => start_err(io::Error::other(report.message)),
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(fail(
                    &mut child,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("container-init did not finish setup within {START_TIMEOUT:?}"),
                    ),
                ))
            }
            Err(e) => {
                // The socket broke: container-init died; report how.
                let status = child.wait();
                Err(start_err(io::Error::new(
                    e.kind(),
                    format!("container-init failed ({e}); exit status {status:?}"),
                )))
            }
        }
    }
}

impl Runtime for ProcessRuntime {
    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, RuntimeError> {
        self.check_spec(spec)?;
        let id = container_id(spec);
        {
            let children = lock(&self.children);
            if let Some(c) = children.get(&id) {
                let mut status = lock(&c.status);
                if status.is_none() {
                    if let Ok(Some(s)) = pidfd::try_reap(c.pidfd.as_fd()) {
                        *status = Some(s);
                    }
                }
                if status.is_none() {
                    return Err(invalid(
                        &spec.container_name,
                        format!("{id} is already running as pid {}", c.pid),
                    ));
                }
            }
        }
        let cg = ContainerCgroups::for_container(
            &self.layout,
            &self.parent,
            &spec.pod_uid,
            &spec.container_name,
            spec.restart_count,
        )
        .map_err(|e| invalid(&spec.container_name, e))?;
        let prepared = cgroups::prepare(&cg, &spec.resources);
        for note in &prepared.notes {
            tracing::info!(container = %id, "{note}");
        }
        let shim_cmd = (self.cfg.shim_command)(&self.cfg.plinth_exe, &spec.log_path);
        let request = InitRequest {
            spec: spec.clone(),
            cgroup_procs: prepared.procs_files.clone(),
            shim: init::ShimCommand::from_command(&shim_cmd),
        };
        let (pid, pidfd, start_ticks) = match self.spawn_init(spec, &request) {
            Ok(v) => v,
            Err(e) => {
                cgroups::remove(&cg);
                return Err(e);
            }
        };
        lock(&self.children).insert(
            id.clone(),
            Child {
                pid,
                pidfd: Arc::new(pidfd),
                status: Arc::new(Mutex::new(None)),
            },
        );
        tracing::debug!(container = %id, pid, start_ticks, "container started");
        Ok(ContainerHandle {
            id,
            pid,
            start_ticks,
            started_at: SystemTime::now(),
        })
    }

    fn wait(&self, handle: &ContainerHandle) -> BoxFuture<ExitStatus> {
        let own = lock(&self.children)
            .get(&handle.id)
            .filter(|c| c.pid == handle.pid)
            .map(|c| (c.pidfd.clone(), c.status.clone()));
        match own {
            Some((pidfd, status)) => Box::pin(wait_own(pidfd, status)),
            None => Box::pin(wait_adopted(handle.pid, handle.start_ticks)),
        }
    }

    fn signal(&self, handle: &ContainerHandle, signal: StopSignal) -> Result<(), RuntimeError> {
        let cg = self.cgroups_of(&handle.id);
        let group_ok = self.group_is_ours(handle);
        let os_err = |op: String| {
            move |e: nix::Error| RuntimeError::Os {
                op,
                source: io::Error::from(e),
            }
        };
        let killpg = |sig: Signal| -> Result<(), RuntimeError> {
            if !group_ok {
                return Ok(());
            }
            match nix::sys::signal::killpg(Pid::from_raw(handle.pid), sig) {
                Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
                Err(e) => Err(os_err(format!(
                    "{}: killpg {} {sig}",
                    handle.id, handle.pid
                ))(e)),
            }
        };
        match signal {
            StopSignal::Term => {
                killpg(Signal::SIGTERM)?;
                // Processes that left the group (setsid) but not the cgroup.
                if let Some(dir) = cg.as_ref().and_then(|c| c.tracking_leaf()) {
                    for pid in cgroups::procs(dir) {
                        let in_group = procfs::read_stat(pid)
                            .map(|s| s.pgrp == handle.pid)
                            .unwrap_or(true);
                        if !(group_ok && in_group) {
                            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
                        }
                    }
                }
                Ok(())
            }
            StopSignal::Kill => {
                let mut killed_by_cgroup = false;
                if let Some(cg) = &cg {
                    if let Some(v2) = cg.v2.as_deref().filter(|d| d.is_dir()) {
                        killed_by_cgroup = cgroups::kill_v2(v2).map_err(|e| RuntimeError::Os {
                            op: format!("{}: cgroup.kill", handle.id),
                            source: io::Error::other(e),
                        })?;
                        if !killed_by_cgroup {
                            cgroups::signal_all(v2, Signal::SIGKILL, true);
                            killed_by_cgroup = true;
                        }
                    } else if let Some((dir, tracker)) =
                        cg.v1_track.as_ref().filter(|(d, _)| d.is_dir())
                    {
                        match tracker {
                            Tracker::Freezer => {
                                if let Err(e) = cgroups::freeze_kill(dir) {
                                    tracing::warn!(container = %handle.id, error = %e, "freezer kill failed");
                                    cgroups::signal_all(dir, Signal::SIGKILL, true);
                                }
                            }
                            Tracker::Pids => cgroups::signal_all(dir, Signal::SIGKILL, true),
                        }
                        killed_by_cgroup = true;
                    }
                }
                killpg(Signal::SIGKILL)?;
                if !killed_by_cgroup {
                    tracing::debug!(container = %handle.id, "no cgroup: killed the process group only");
                }
                Ok(())
            }
        }
    }

    fn is_running(&self, handle: &ContainerHandle) -> bool {
        if let Some(c) = lock(&self.children).get(&handle.id) {
            if c.pid == handle.pid && lock(&c.status).is_some() {
                return false;
            }
        }
        procfs::is_alive_with(handle.pid, handle.start_ticks)
    }

    fn cleanup(&self, handle: &ContainerHandle) {
        {
            let mut children = lock(&self.children);
            if let Some(c) = children.get(&handle.id).filter(|c| c.pid == handle.pid) {
                let mut status = lock(&c.status);
                if status.is_none() {
                    match pidfd::try_reap(c.pidfd.as_fd()) {
                        Ok(Some(s)) => *status = Some(s),
                        Ok(None) => {
                            tracing::warn!(container = %handle.id, pid = handle.pid, "cleanup of a running container skipped");
                            return;
                        }
                        Err(e) => {
                            tracing::debug!(container = %handle.id, error = %e, "reap at cleanup");
                        }
                    }
                }
                drop(status);
                children.remove(&handle.id);
            } else if procfs::is_alive_with(handle.pid, handle.start_ticks) {
                // Not our child (adopted) and still running: nothing to release yet.
                tracing::warn!(container = %handle.id, pid = handle.pid, "cleanup of a running container skipped");
                return;
            }
        }
        if let Some(cg) = self.cgroups_of(&handle.id) {
            cgroups::remove(&cg);
        }
    }
}

/// Waits for our own child and reaps it (once; later waiters get the stored status).
async fn wait_own(pidfd: Arc<OwnedFd>, status: Arc<Mutex<Option<ExitStatus>>>) -> ExitStatus {
    loop {
        if let Some(s) = *lock(&status) {
            return s;
        }
        match pidfd.try_clone() {
            Ok(dup) => pidfd::exited(dup).await,
            Err(e) => {
                tracing::warn!(error = %e, "dup pidfd; polling");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut guard = lock(&status);
        if let Some(s) = *guard {
            return s;
        }
        match pidfd::try_reap(pidfd.as_fd()) {
            Ok(Some(s)) => {
                *guard = Some(s);
                return s;
            }
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "waitid(P_PIDFD) failed");
                *guard = Some(ExitStatus::Unknown);
                return ExitStatus::Unknown;
            }
        }
    }
}

/// Waits for a process that is not our child (adopted after an agent restart).
async fn wait_adopted(pid: i32, start_ticks: u64) -> ExitStatus {
    let fd = match pidfd::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return ExitStatus::Unknown,
        Err(e) => {
            // Never report a live container as ended: fall back to watching /proc.
            tracing::warn!(pid, error = %e, "pidfd_open failed; polling /proc");
            while procfs::is_alive_with(pid, start_ticks) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            return ExitStatus::Unknown;
        }
    };
    // The pidfd now pins *some* process with this pid: make sure it is the right one.
    if !procfs::is_alive_with(pid, start_ticks) {
        return ExitStatus::Unknown;
    }
    pidfd::exited(fd).await;
    ExitStatus::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Mount, Resources};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            pod_uid: "0123abcd".into(),
            pod_name: "etcd-node1".into(),
            namespace: "kube-system".into(),
            container_name: "etcd".into(),
            restart_count: 2,
            image: "registry.k8s.io/etcd:3.5".into(),
            executable: "/usr/bin/etcd".into(),
            argv: vec!["etcd".into()],
            env: vec![],
            working_dir: None,
            run_as_user: None,
            run_as_group: None,
            mounts: vec![],
            resources: Resources::default(),
            log_path: "/var/log/pods/x/etcd/2.log".into(),
        }
    }

    fn runtime() -> ProcessRuntime {
        ProcessRuntime::new(ProcessRuntimeConfig {
            plinth_exe: PathBuf::from("/bin/true"),
            ..ProcessRuntimeConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn ids_round_trip() {
        let id = container_id(&spec());
        assert_eq!(id, "0123abcd/etcd/2");
        assert_eq!(parse_container_id(&id), Some(("0123abcd", "etcd", 2)));
        assert_eq!(parse_container_id("a/b"), None);
        assert_eq!(parse_container_id("a/b/x"), None);
        assert_eq!(parse_container_id("/b/1"), None);
    }

    #[test]
    fn config_errors_name_the_value() {
        let err = ProcessRuntime::new(ProcessRuntimeConfig {
            cgroup_parent: "../x".into(),
            plinth_exe: "/bin/true".into(),
            ..ProcessRuntimeConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"../x\""), "{err}");
        let err = ProcessRuntime::new(ProcessRuntimeConfig {
            plinth_exe: "/nonexistent/plinth".into(),
            ..ProcessRuntimeConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/plinth"), "{err}");
    }

    #[test]
    fn bad_specs_are_refused_before_anything_starts() {
        let rt = runtime();
        let mut s = spec();
        s.executable = "etcd".into();
        let err = rt.start(&s).unwrap_err().to_string();
        assert!(err.contains("etcd") && err.contains("absolute"), "{err}");

        let mut s = spec();
        s.mounts = vec![Mount {
            source: "/r/etc/kubernetes".into(),
            target: "etc/kubernetes".into(),
            read_only: false,
        }];
        let err = rt.start(&s).unwrap_err().to_string();
        assert!(
            err.contains("etc/kubernetes") && err.contains("absolute"),
            "{err}"
        );

        let mut s = spec();
        s.container_name = "a/b".into();
        let err = rt.start(&s).unwrap_err().to_string();
        assert!(err.contains("container name"), "{err}");
    }

    #[test]
    fn requests_round_trip_through_json() {
        let req = InitRequest {
            spec: spec(),
            cgroup_procs: vec!["/sys/fs/cgroup/x/cgroup.procs".into()],
            shim: init::ShimCommand::from_command(&crate::logs::shim_command(
                Path::new("/proc/self/exe"),
                Path::new("/var/log/pods/x/etcd/2.log"),
            )),
        };
        let json = serde_json::to_vec(&req).unwrap();
        assert_eq!(serde_json::from_slice::<InitRequest>(&json).unwrap(), req);
    }

    #[test]
    fn foreign_and_stale_handles_are_not_running() {
        let rt = runtime();
        let me = std::process::id() as i32;
        let ticks = process_start_ticks(me).unwrap();
        let h = ContainerHandle {
            id: "u/c/0".into(),
            pid: me,
            start_ticks: ticks,
            started_at: SystemTime::now(),
        };
        assert!(rt.is_running(&h));
        let stale = ContainerHandle {
            start_ticks: ticks + 1,
            ..h.clone()
        };
        assert!(!rt.is_running(&stale));
        // A reused pid is never treated as the container's process group.
        assert!(!rt.group_is_ours(&stale));
        assert!(rt.group_is_ours(&h));
    }
}
