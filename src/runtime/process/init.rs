//! `plinth container-init`: the single-threaded re-exec'd helper that turns itself into the
//! container (as runc's and youki's init do).
//!
//! Protocol with [`super::ProcessRuntime::start`]:
//! - fd 0 is one end of a Unix socket pair. The agent writes an [`InitRequest`] as JSON and
//!   shuts its write side; container-init reads to EOF.
//! - container-init keeps a close-on-exec duplicate of that socket as its *status channel* and
//!   puts `/dev/null` on fd 0 (a container has no stdin). On any setup failure it writes one
//!   [`InitReport`] (JSON: the message, plus the errno when `execve` itself failed) to the
//!   status channel and exits 1. A successful `execve` closes the
//!   channel: the agent reads EOF with no message and knows the container runs, under the pid
//!   it spawned.
//!
//! Steps, in order: read the request; `setsid()`; create the stdout/stderr pipes and start the
//! log shim (double fork: the shim is neither the agent's nor the container's child, in its own
//! session, in the agent's cgroup, reading stdout on fd 0 and stderr on fd 3 as
//! [`crate::logs::shim`] documents); put the pipes' write ends on fds 1 and 2; join the
//! container's cgroups; mounts ([`super::mounts`]); `oom_score_adj` (best effort);
//! supplementary groups, gid, uid; `chdir`; reset signal dispositions and mask; `execve`.

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid};

use super::mounts::{self, MountError};
use super::InitRequest;

/// The PATH a container gets when its spec sets none (runc's and containerd's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why container setup failed (sent to the agent over the status channel).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Started by hand or with arguments.
    #[error("{0}")]
    Usage(String),
    /// The request could not be read or parsed.
    #[error("read the container spec from the agent: {0}")]
    Request(String),
    /// An OS operation failed.
    #[error("{op}")]
    Os {
        /// What was attempted (with the path or value involved).
        op: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A mount failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A string meant for execve contains a NUL byte.
    #[error("{field} contains a NUL byte: {value:?}")]
    Nul {
        /// argv, env or executable.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// `execve` of the container's executable failed (ENOENT, EACCES, ENOEXEC, ...).
    #[error("execve {}", executable.display())]
    Exec {
        /// The executable.
        executable: PathBuf,
        /// Cause (carries the errno).
        #[source]
        source: io::Error,
    },
    /// The failure was already written to the status channel (by the shim's launcher).
    #[error("reported")]
    Reported,
}

/// What container-init writes to the status channel when setup fails (JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitReport {
    /// The error, in words.
    pub message: String,
    /// The errno of a failed `execve` of the container's executable: the agent tells these
    /// (ENOENT, EACCES, ENOEXEC: no retry cures them) from other setup failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_errno: Option<i32>,
}

impl InitReport {
    /// Parses what the status channel carried (a plain message from an older container-init
    /// is taken as the message).
    pub fn parse(text: &str) -> InitReport {
        serde_json::from_str(text).unwrap_or_else(|_| InitReport {
            message: text.to_string(),
            exec_errno: None,
        })
    }
}

fn os_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Os { op, source }
}

fn nix_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let op = op.into();
    move |e| InitError::Os {
        op,
        source: io::Error::from(e),
    }
}

/// The status channel to the agent (close-on-exec).
struct Status(OwnedFd);

impl Status {
    fn report(&self, msg: &str) {
        self.send(&InitReport {
            message: msg.to_string(),
            exec_errno: None,
        });
    }

    fn report_error(&self, e: &InitError) {
        let exec_errno = match e {
            InitError::Exec { source, .. } => source.raw_os_error(),
            _ => None,
        };
        self.send(&InitReport {
            message: crate::error::chain(e),
            exec_errno,
        });
    }

    fn send(&self, r: &InitReport) {
        let json = serde_json::to_string(r).unwrap_or_else(|_| r.message.clone());
        write_all_fd(self.0.as_raw_fd(), json.as_bytes());
    }
}

fn write_all_fd(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer to a descriptor we hold.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Entry point of `plinth container-init`. Returns only on failure (the exit code); on
/// success the process has become the container.
pub fn container_init_main(args: &[String]) -> i32 {
    if !args.is_empty() {
        eprintln!(
            "container-init: unexpected arguments {args:?}: it takes none; it is started by \
             `plinth agent`, which sends the container spec on stdin"
        );
        return 2;
    }
    let status = match take_status_channel() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("container-init: {}", crate::error::chain(&e));
            return 2;
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&status)));
    match result {
        Ok(Err(InitError::Reported)) => 1,
        Ok(Err(e)) => {
            status.report_error(&e);
            1
        }
        Ok(Ok(never)) => match never {},
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            status.report(&format!("container-init panicked: {msg}"));
            1
        }
    }
}

/// Checks fd 0 is the agent's socket, reads the request from it, then moves it to a
/// close-on-exec fd and puts `/dev/null` on fd 0.
fn take_status_channel() -> Result<Status, InitError> {
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(0, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(InitError::Usage(
            "stdin is not the agent's socket: container-init is internal to `plinth agent`"
                .to_string(),
        ));
    }
    // SAFETY: duplicating fd 0 into a new close-on-exec fd we then own.
    let dup = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(os_err("duplicate the status channel")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `dup` is a fresh descriptor owned by nobody else.
    Ok(Status(unsafe { OwnedFd::from_raw_fd(dup) }))
}

fn read_request(status: &Status) -> Result<InitRequest, InitError> {
    let mut buf = Vec::new();
    let fd = status.0.try_clone().map_err(os_err("duplicate fd"))?;
    std::fs::File::from(fd)
        .read_to_end(&mut buf)
        .map_err(|e| InitError::Request(e.to_string()))?;
    let req: InitRequest =
        serde_json::from_slice(&buf).map_err(|e| InitError::Request(e.to_string()))?;
    // fd 0 becomes /dev/null.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(os_err("open /dev/null"))?;
    dup2(null.as_raw_fd(), 0).map_err(os_err("dup2 /dev/null onto stdin"))?;
    Ok(req)
}

fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors this process holds.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

enum Never {}

fn run(status: &Status) -> Result<Never, InitError> {
    let req = read_request(status)?;
    let spec = &req.spec;

    nix::unistd::setsid().map_err(nix_err("setsid"))?;

    // Logs: the shim gets the read ends, we keep the write ends on 1 and 2.
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(nix_err("create stdout pipe"))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(nix_err("create stderr pipe"))?;
    start_log_shim(&req, out_r, err_r, status)?;
    dup2(out_w.as_raw_fd(), 1).map_err(os_err("dup2 stdout pipe"))?;
    dup2(err_w.as_raw_fd(), 2).map_err(os_err("dup2 stderr pipe"))?;
    drop((out_w, err_w));

    // cgroups (tracking, kill, resources): before anything can fork.
    let pid = std::process::id().to_string();
    for procs in &req.cgroup_procs {
        std::fs::write(procs, &pid).map_err(os_err(format!("join cgroup {}", procs.display())))?;
    }

    mounts::setup(&spec.mounts)?;

    if let Some(adj) = spec.resources.oom_score_adj {
        set_oom_score_adj(adj)?;
    }

    let env = container_env(&spec.env, spec.run_as_user);
    switch_identity(spec.run_as_user, spec.run_as_group)?;

    let dir = spec
        .working_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/"));
    std::env::set_current_dir(&dir).map_err(os_err(format!("chdir {}", dir.display())))?;

    let exe = cstring("executable", spec.executable.as_os_str().as_bytes())?;
    let mut argv = spec
        .argv
        .iter()
        .map(|a| cstring("argv", a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        argv.push(exe.clone());
    }
    let envp = env
        .iter()
        .map(|(k, v)| cstring("env", format!("{k}={v}").as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;

    reset_signals();
    mark_inherited_fds_cloexec();
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err(InitError::Exec {
        executable: spec.executable.clone(),
        source: io::Error::from(err),
    })
}

fn cstring(field: &'static str, bytes: &[u8]) -> Result<CString, InitError> {
    CString::new(bytes).map_err(|_| InitError::Nul {
        field,
        value: String::from_utf8_lossy(bytes).into_owned(),
    })
}

/// Starts the log shim through an intermediate process that exits at once, so the shim is
/// reparented (to init or the nearest subreaper) and never becomes the container's child.
fn start_log_shim(
    req: &InitRequest,
    out_r: OwnedFd,
    err_r: OwnedFd,
    status: &Status,
) -> Result<(), InitError> {
    let mut cmd = req.shim.to_command();
    // SAFETY: container-init is single-threaded, so the child may do anything.
    match unsafe { nix::unistd::fork() }.map_err(nix_err("fork the log shim launcher"))? {
        nix::unistd::ForkResult::Child => {
            cmd.stdin(Stdio::from(out_r)).stdout(Stdio::null());
            crate::logs::pass_stderr_fd(&mut cmd, err_r);
            let code = match cmd.spawn() {
                Ok(_child) => 0,
                Err(e) => {
                    status.report(&format!(
                        "start log shim {}: {e}",
                        Path::new(cmd.get_program()).display()
                    ));
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors or flushing its buffers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop((out_r, err_r));
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                Ok(_) => Err(InitError::Reported),
                Err(e) => Err(nix_err("wait for the log shim launcher")(e)),
            }
        }
    }
}

/// Writes `/proc/self/oom_score_adj`; values the kernel refuses for lack of privilege
/// (EPERM/EACCES, e.g. a negative value without CAP_SYS_RESOURCE) are skipped.
fn set_oom_score_adj(adj: i32) -> Result<(), InitError> {
    match std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
            tracing::debug!(adj, error = %e, "oom_score_adj not permitted; skipped");
            Ok(())
        }
        Err(e) => Err(os_err(format!("write oom_score_adj {adj}"))(e)),
    }
}

/// The container's environment: the spec's, plus `PATH` and `HOME` when it sets none.
pub fn container_env(env: &[(String, String)], run_as_user: Option<u32>) -> Vec<(String, String)> {
    let mut out = env.to_vec();
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    if !out.iter().any(|(k, _)| k == "HOME") {
        let uid = Uid::from_raw(run_as_user.unwrap_or(0));
        let home = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_string());
        out.push(("HOME".to_string(), home));
    }
    out
}

/// The identity to switch to: (supplementary groups, gid, uid), `None` for "keep".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Primary gid, if it changes.
    pub gid: Option<u32>,
    /// uid, if it changes.
    pub uid: Option<u32>,
}

/// Resolves runAsUser/runAsGroup like a CRI runtime: without runAsGroup the user's primary
/// group (from the host's passwd, else 0); supplementary groups are the user's groups from
/// the host's group database (`user_groups`), else just the primary group.
pub fn resolve_identity(
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
    passwd_gid: Option<u32>,
    user_groups: Option<Vec<u32>>,
) -> Option<Identity> {
    if run_as_user.is_none() && run_as_group.is_none() {
        return None;
    }
    let gid = run_as_group.or(run_as_user.map(|_| passwd_gid.unwrap_or(0)));
    let groups = match (user_groups, gid) {
        (Some(mut g), Some(gid)) => {
            if !g.contains(&gid) {
                g.insert(0, gid);
            }
            g
        }
        (None, Some(gid)) => vec![gid],
        (_, None) => Vec::new(),
    };
    Some(Identity {
        groups,
        gid,
        uid: run_as_user,
    })
}

fn switch_identity(run_as_user: Option<u32>, run_as_group: Option<u32>) -> Result<(), InitError> {
    let user =
        run_as_user.and_then(|u| nix::unistd::User::from_uid(Uid::from_raw(u)).ok().flatten());
    let passwd_gid = user.as_ref().map(|u| u.gid.as_raw());
    let user_groups = user.as_ref().and_then(|u| {
        let name = CString::new(u.name.as_bytes()).ok()?;
        let gid = run_as_group.map(Gid::from_raw).unwrap_or(u.gid);
        nix::unistd::getgrouplist(&name, gid)
            .ok()
            .map(|v| v.into_iter().map(|g| g.as_raw()).collect())
    });
    let Some(id) = resolve_identity(run_as_user, run_as_group, passwd_gid, user_groups) else {
        return Ok(());
    };
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(nix_err(format!("setgroups {:?}", id.groups)))?;
    if let Some(gid) = id.gid {
        nix::unistd::setgid(Gid::from_raw(gid)).map_err(nix_err(format!("setgid {gid}")))?;
    }
    if let Some(uid) = id.uid {
        nix::unistd::setuid(Uid::from_raw(uid)).map_err(nix_err(format!("setuid {uid}")))?;
    }
    Ok(())
}

/// Restores default dispositions for every catchable signal and unblocks all signals: the
/// Rust runtime ignores SIGPIPE, the agent's threads may block signals, and glibc's
/// `posix_spawn` leaves its internal signals (32, 33) ignored in the child; all of that would
/// otherwise be inherited across `execve`. The raw `rt_sigaction` syscall is used because
/// glibc refuses to touch its internal signals; an all-zero kernel `struct sigaction` is
/// `SIG_DFL` with no flags and an empty mask on every architecture.
fn reset_signals() {
    let default_action = [0u64; 8];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed, large-enough kernel sigaction; no old action requested.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    // SAFETY: an empty, initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Marks every fd above 2 close-on-exec, so nothing the agent leaked reaches the container.
fn mark_inherited_fds_cloexec() {
    // SAFETY: close_range only changes flags of our own descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "close_range(CLOEXEC) unavailable");
    }
}

/// The log shim's command line, carried from the agent to container-init.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShimCommand {
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment changes (`None` removes the variable).
    pub env: Vec<(OsString, Option<OsString>)>,
    /// Working directory, if set.
    pub cwd: Option<PathBuf>,
}

impl ShimCommand {
    /// Captures what can be carried of `cmd` (program, args, env changes, cwd; the stdio
    /// setup is the runtime's, per the shim's fd convention).
    pub fn from_command(cmd: &Command) -> ShimCommand {
        ShimCommand {
            program: cmd.get_program().to_os_string(),
            args: cmd.get_args().map(|a| a.to_os_string()).collect(),
            env: cmd
                .get_envs()
                .map(|(k, v)| (k.to_os_string(), v.map(|v| v.to_os_string())))
                .collect(),
            cwd: cmd.get_current_dir().map(Path::to_path_buf),
        }
    }

    /// Rebuilds the command.
    pub fn to_command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_gets_default_path_and_home_only_when_missing() {
        let env = container_env(&[("A".into(), "1".into())], None);
        assert!(env.contains(&("PATH".to_string(), DEFAULT_PATH.to_string())));
        assert!(env.iter().any(|(k, _)| k == "HOME"));
        let env = container_env(
            &[("PATH".into(), "/x".into()), ("HOME".into(), "/h".into())],
            Some(65534),
        );
        assert_eq!(
            env,
            vec![
                ("PATH".to_string(), "/x".to_string()),
                ("HOME".to_string(), "/h".to_string())
            ]
        );
    }

    #[test]
    fn identity_resolution_follows_cri_rules() {
        assert_eq!(resolve_identity(None, None, None, None), None);
        // runAsUser only, unknown to passwd: gid 0, groups [0].
        assert_eq!(
            resolve_identity(Some(1234), None, None, None),
            Some(Identity {
                groups: vec![0],
                gid: Some(0),
                uid: Some(1234)
            })
        );
        // Known user: primary group and its supplementary groups.
        assert_eq!(
            resolve_identity(Some(65534), None, Some(65534), Some(vec![65534, 4])),
            Some(Identity {
                groups: vec![65534, 4],
                gid: Some(65534),
                uid: Some(65534)
            })
        );
        // runAsGroup wins and is always among the groups.
        assert_eq!(
            resolve_identity(Some(65534), Some(7), Some(65534), Some(vec![4])),
            Some(Identity {
                groups: vec![7, 4],
                gid: Some(7),
                uid: Some(65534)
            })
        );
        // runAsGroup only: keep uid.
        assert_eq!(
            resolve_identity(None, Some(7), None, None),
            Some(Identity {
                groups: vec![7],
                gid: Some(7),
                uid: None
            })
        );
    }

    #[test]
    fn shim_command_round_trips_through_json() {
        let mut cmd = Command::new("/usr/bin/plinth");
        cmd.args(["log-shim", "--path", "/var/log/pods/x/0.log"])
            .env("A", "1")
            .env_remove("B")
            .current_dir("/tmp");
        let shim = ShimCommand::from_command(&cmd);
        let json = serde_json::to_string(&shim).unwrap();
        let back: ShimCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(back, shim);
        let rebuilt = back.to_command();
        assert_eq!(rebuilt.get_program(), "/usr/bin/plinth");
        assert_eq!(rebuilt.get_args().count(), 3);
        assert_eq!(rebuilt.get_envs().count(), 2);
        assert_eq!(rebuilt.get_current_dir(), Some(Path::new("/tmp")));
    }

    #[test]
    fn nul_bytes_are_rejected_naming_the_field() {
        let err = cstring("argv", b"a\0b").unwrap_err();
        assert!(err.to_string().contains("argv"), "{err}");
        assert!(cstring("env", b"A=1").is_ok());
    }

    #[test]
    fn arguments_are_refused_with_usage_code() {
        assert_eq!(container_init_main(&["x".to_string()]), 2);
    }
}
