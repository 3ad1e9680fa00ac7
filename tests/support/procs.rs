//! Processes started by tests: [`ChildGuard`] kills what it started (and its process group) on
//! drop; small polling helpers with explicit deadlines.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A process the test started; on drop it is SIGKILLed (its whole process group when it was
/// spawned as a group leader) and reaped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    pid: i32,
    group: bool,
    log: Option<PathBuf>,
}

impl ChildGuard {
    /// Spawns `cmd` as the leader of a new process group, stdout and stderr appended to `log`
    /// (a file, so a chatty child can never block on a full pipe), stdin from /dev/null.
    pub fn spawn_logged(cmd: &mut Command, log: &Path) -> io::Result<ChildGuard> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut guard = ChildGuard::spawn(cmd.stdin(Stdio::null()).stdout(out).stderr(err))?;
        guard.log = Some(log.to_path_buf());
        Ok(guard)
    }

    /// Spawns `cmd` as the leader of a new process group with its stdio as configured.
    pub fn spawn(cmd: &mut Command) -> io::Result<ChildGuard> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {cmd:?}: {e}")))?;
        let pid = child.id() as i32;
        Ok(ChildGuard {
            child: Some(child),
            pid,
            group: true,
            log: None,
        })
    }

    /// Guards an already started child (only that pid is killed on drop).
    pub fn from_child(child: Child) -> ChildGuard {
        let pid = child.id() as i32;
        ChildGuard {
            child: Some(child),
            pid,
            group: false,
            log: None,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The log file given to [`ChildGuard::spawn_logged`], if any.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The log so far (empty when there is none).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The exit status if the child has exited (reaping it), else `None`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Err(io::Error::other("child already released")),
        }
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the child (only the child, not its group).
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        kill(Pid::from_raw(self.pid), sig).map_err(io::Error::from)
    }

    /// SIGKILLs the child (and its group) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.group {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every `every` until it returns true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(every);
    }
}

/// True while a process with `pid` exists (signal 0).
pub fn pid_alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// Removes the pod cgroups an agent left behind once its processes are gone (an agent killed
/// by a test cannot clean up): every directory below the cgroup parents it recorded in
/// `<state_dir>/cgroups.json`, bottom-up, then the parents. Only empty cgroups can be removed,
/// so a cgroup that still holds a process (anyone's) is left alone.
pub fn remove_agent_cgroups(state_dir: &std::path::Path) {
    use plinth::runtime::process::cgroups::{CgroupRecord, CGROUP_RECORD_FILE};
    fn rmdir_tree(dir: &std::path::Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdir_tree(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    for parent in CgroupRecord::load(&state_dir.join(CGROUP_RECORD_FILE)).parents {
        rmdir_tree(&parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_kills_the_whole_group_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let guard =
            ChildGuard::spawn_logged(Command::new("sh").args(["-c", &script]), &log).unwrap();
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(20),
            || {
                std::fs::read_to_string(&pidfile)
                    .map(|s| !s.trim().is_empty())
                    .unwrap_or(false)
            }
        ));
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pid = guard.pid();
        assert!(pid_alive(pid) && pid_alive(grandchild));
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(20),
            || guard.log().contains("started")
        ));
        drop(guard);
        assert!(!pid_alive(pid), "shell {pid} survived");
        // The grandchild is reparented and reaped by init; it must be gone shortly.
        assert!(
            wait_until(
                Duration::from_secs(5),
                Duration::from_millis(20),
                || !pid_alive(grandchild)
                    || std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                        .map(|s| s.contains(") Z "))
                        .unwrap_or(true)
            ),
            "grandchild {grandchild} survived"
        );
    }

    #[test]
    fn wait_timeout_reports_exit_status() {
        let mut g = ChildGuard::spawn(Command::new("sh").args(["-c", "exit 3"])).unwrap();
        let st = g
            .wait_timeout(Duration::from_secs(5))
            .unwrap()
            .expect("exited");
        assert_eq!(st.code(), Some(3));
        let mut s = ChildGuard::spawn(Command::new("sleep").arg("300")).unwrap();
        assert!(s
            .wait_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none());
    }
}
