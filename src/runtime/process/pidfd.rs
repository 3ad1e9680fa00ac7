//! Process file descriptors: waiting for a process without races on pid reuse.
//!
//! `pidfd_open(2)` gives a descriptor that names exactly one process; it becomes readable when
//! that process exits, which tokio's [`AsyncFd`] turns into an awaitable event. For our own
//! children `waitid(P_PIDFD, ..)` then collects (reaps) the exit status; for adopted processes
//! (children of a previous agent) readability alone says "it ended".

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::runtime::ExitStatus;

/// Opens a pidfd for `pid` (`pidfd_open(2)`, Linux ≥ 5.3). The descriptor is close-on-exec.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is a new fd we own or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Maps a `waitid` result to an [`ExitStatus`]; `None` while the child is still running.
pub fn exit_status_from(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Exited(code)),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus::Signaled(sig as i32)),
        _ => None,
    }
}

/// Collects the exit status of our child named by `pidfd` without blocking.
///
/// `Ok(None)`: still running. Reaps the child (no zombie is left behind).
pub fn try_reap(pidfd: BorrowedFd<'_>) -> io::Result<Option<ExitStatus>> {
    match waitid(
        Id::PIDFd(pidfd),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
    ) {
        Ok(status) => Ok(exit_status_from(status)),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// Resolves once the process behind `pidfd` has exited (the pidfd turns readable).
///
/// Uses the tokio reactor; if the descriptor cannot be registered (no reactor, odd kernel) it
/// falls back to polling the descriptor every 100 ms.
pub async fn exited(pidfd: OwnedFd) {
    // SAFETY: the OwnedFd is a valid open descriptor and the AsyncFd owns it until dropped.
    match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
        Ok(afd) => loop {
            match afd.readable().await {
                Ok(mut guard) => {
                    if poll_readable(guard.get_inner().as_fd()) {
                        return;
                    }
                    guard.clear_ready();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "pidfd readiness failed; polling instead");
                    return poll_until_readable(afd.into_inner()).await;
                }
            }
        },
        Err(e) => {
            let (fd, err) = e.into_parts();
            tracing::debug!(error = %err, "pidfd not registrable with the reactor; polling");
            poll_until_readable(fd).await
        }
    }
}

async fn poll_until_readable(fd: OwnedFd) {
    while !poll_readable(fd.as_fd()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Non-blocking `poll(2)` for readability (a pidfd is readable once its process has exited).
pub fn poll_readable(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn wait_statuses_map_to_exit_statuses() {
        let pid = Pid::from_raw(10);
        assert_eq!(
            exit_status_from(WaitStatus::Exited(pid, 3)),
            Some(ExitStatus::Exited(3))
        );
        assert_eq!(
            exit_status_from(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(ExitStatus::Signaled(15))
        );
        assert_eq!(
            exit_status_from(WaitStatus::Signaled(pid, Signal::SIGKILL, true)),
            Some(ExitStatus::Signaled(9))
        );
        assert_eq!(exit_status_from(WaitStatus::StillAlive), None);
    }

    #[test]
    fn pidfd_of_a_missing_process_fails() {
        // pid_max is at most 2^22; this pid cannot exist.
        assert!(pidfd_open(i32::MAX).is_err());
    }

    #[tokio::test]
    async fn a_child_is_awaited_and_reaped_through_its_pidfd() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let fd = pidfd_open(pid).unwrap();
        exited(fd.try_clone().unwrap()).await;
        assert_eq!(try_reap(fd.as_fd()).unwrap(), Some(ExitStatus::Exited(7)));
        // Reaped: the pid no longer names our child.
        assert!(try_reap(fd.as_fd()).is_err());
        drop(child);
    }
}
