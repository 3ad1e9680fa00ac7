//! Typed facts about a container that keeps failing, for whoever reads the status API (init's
//! wait, verify) to tell "still starting" from "will never start" without parsing messages.
//!
//! Served per pod in the annotation [`ANN_FAILURES`] (JSON object: container name →
//! [`ContainerFailures`], only containers with something to say). The agent only records
//! facts and keeps retrying, as a kubelet does; the policy of when to give up lives with the
//! reader (see `health::fatal`).

use std::time::Duration;

/// Pod annotation with the containers' [`ContainerFailures`] (JSON object: container → facts).
pub const ANN_FAILURES: &str = "plinth.io/failures";

/// An instance that exits sooner than this after its start is a *quick* exit.
pub const QUICK_EXIT: Duration = Duration::from_secs(10);

/// Why the agent could not start a container (the waiting message says the same in words).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartFailure {
    /// The step that failed: `resolve` (looking the executable up on the bin path), `execve`
    /// (executing it as the container's user, after setup) or `setup` (anything else).
    pub step: String,
    /// The errno name (`ENOENT`, `EACCES`, `ENOEXEC`, ...), when the failure carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// The error, in words.
    pub message: String,
    /// Consecutive start attempts that failed at the same step with the same errno.
    pub attempts: u32,
}

/// Consecutive quick exits with one exit code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStreak {
    /// The exit code every exit of the streak had (never 0).
    pub exit_code: i32,
    /// How many instances in a row exited with it, each within [`QUICK_EXIT`] of its start and
    /// without ever being Ready.
    pub count: u32,
}

/// What the agent knows about a container's failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerFailures {
    /// The last start attempt failed (cleared by a successful start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartFailure>,
    /// The current streak of quick exits (cleared by any other kind of exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_exits: Option<ExitStreak>,
    /// The running instance has been Ready at some point (not served).
    #[serde(skip)]
    pub instance_ready: bool,
}

impl ContainerFailures {
    /// Nothing to report.
    pub fn is_empty(&self) -> bool {
        self.start.is_none() && self.quick_exits.is_none()
    }

    /// A start attempt failed.
    pub fn on_start_failed(&mut self, step: &str, errno: Option<i32>, message: String) {
        let errno = errno.map(errno_name);
        let attempts = match &self.start {
            Some(s) if s.step == step && s.errno == errno => s.attempts + 1,
            _ => 1,
        };
        self.start = Some(StartFailure {
            step: step.to_string(),
            errno,
            message,
            attempts,
        });
    }

    /// A new instance started.
    pub fn on_started(&mut self) {
        self.start = None;
        self.instance_ready = false;
    }

    /// The instance ended after running `ran`, with `exit_code`. `requested` is an exit the
    /// agent caused (a restart it decided, a stop): never a failure of the container's own.
    pub fn on_exit(&mut self, ran: Duration, exit_code: i32, requested: bool) {
        let quick_failure = !requested
            && !self.instance_ready
            && exit_code != 0
            && exit_code != -1
            && ran < QUICK_EXIT;
        self.quick_exits = match (quick_failure, self.quick_exits.take()) {
            (false, _) => None,
            (true, Some(s)) if s.exit_code == exit_code => Some(ExitStreak {
                exit_code,
                count: s.count + 1,
            }),
            (true, _) => Some(ExitStreak {
                exit_code,
                count: 1,
            }),
        };
        self.instance_ready = false;
    }
}

/// `EACCES` for 13, `errno 4095` for an unknown number.
pub fn errno_name(errno: i32) -> String {
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("errno {errno}"),
        e => format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_attempts_count_the_same_failure_only() {
        let mut f = ContainerFailures::default();
        f.on_start_failed("execve", Some(libc::EACCES), "denied".into());
        f.on_start_failed("execve", Some(libc::EACCES), "denied".into());
        let s = f.start.clone().unwrap();
        assert_eq!((s.errno.as_deref(), s.attempts), (Some("EACCES"), 2));
        f.on_start_failed("execve", Some(libc::ENOEXEC), "format".into());
        assert_eq!(f.start.as_ref().unwrap().attempts, 1);
        f.on_started();
        assert!(f.is_empty());
    }

    #[test]
    fn quick_exits_streak_needs_same_code_short_runs_and_no_readiness() {
        let quick = Duration::from_millis(300);
        let mut f = ContainerFailures::default();
        f.on_exit(quick, 1, false);
        f.on_exit(quick, 1, false);
        assert_eq!(
            f.quick_exits,
            Some(ExitStreak {
                exit_code: 1,
                count: 2
            })
        );
        f.on_exit(quick, 2, false);
        assert_eq!(f.quick_exits.as_ref().unwrap().count, 1, "other code");
        f.on_exit(QUICK_EXIT, 2, false);
        assert!(f.quick_exits.is_none(), "a long run resets");
        f.on_exit(quick, 1, false);
        f.on_exit(quick, 1, true);
        assert!(
            f.quick_exits.is_none(),
            "a restart the agent decided resets"
        );
        f.on_exit(quick, 1, false);
        f.instance_ready = true;
        f.on_exit(quick, 1, false);
        assert!(f.quick_exits.is_none(), "a Ready instance resets");
        f.on_exit(quick, 0, false);
        assert!(f.quick_exits.is_none(), "a clean exit is no failure");
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(libc::ENOEXEC), "ENOEXEC");
    }
}
