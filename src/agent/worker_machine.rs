//! The pure container state machine of a pod worker: `(state, event, now) → (state, actions)`.
//!
//! It decides, and only decides: whether an ended instance is restarted (per
//! [`RestartPolicy`]), after which CrashLoopBackOff delay ([`crate::backoff`]), what the
//! restart count is, and what the status shows. The worker's `run_container` performs the
//! actions (start, supervise, stop, wait, persist, report) and feeds what happened back in as
//! events. Time is an argument, so the machine is tested without processes or sleeping.

use std::time::{Duration, Instant};

use super::Terminated;
use crate::backoff::{BackoffPolicy, CrashLoopBackoff};
use crate::runtime::ExitStatus;

/// A pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart every ended container (the default; also for unknown values).
    Always,
    /// Restart a container that failed.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// The policy as written in a pod spec (`None` = `Always`).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that ended (`success` = exit code 0) starts again. Init containers
    /// run to completion: they restart only after a failure, unless the policy is `Never`.
    pub fn restarts(self, init: bool, success: bool) -> bool {
        match (init, self) {
            (_, RestartPolicy::Never) => false,
            (true, _) => !success,
            (false, RestartPolicy::OnFailure) => !success,
            (false, RestartPolicy::Always) => true,
        }
    }
}

/// Why the agent restarted a running container (the `reason` of its last state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartReason {
    /// A file mounted into the container changed.
    MountedFileChanged,
    /// Any other requested restart, with its reason as given.
    Other(String),
}

impl RestartReason {
    /// The reason as the status shows it.
    pub fn as_str(&self) -> &str {
        match self {
            RestartReason::MountedFileChanged => "MountedFileChanged",
            RestartReason::Other(r) => r,
        }
    }
}

impl From<String> for RestartReason {
    fn from(s: String) -> Self {
        match s.as_str() {
            "MountedFileChanged" => RestartReason::MountedFileChanged,
            _ => RestartReason::Other(s),
        }
    }
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an instance ended, as [`Terminated::reason`] spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationReason {
    /// Exit code 0.
    Completed,
    /// Any other exit or signal.
    Error,
    /// The exit status is not known (ended while no agent watched, or never reaped).
    Unknown,
    /// Stopped by the agent to be restarted.
    Restarted(RestartReason),
}

impl TerminationReason {
    /// The reason of an instance that ended with `status` on its own (or killed).
    pub fn of(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Exited(0) => TerminationReason::Completed,
            ExitStatus::Unknown => TerminationReason::Unknown,
            _ => TerminationReason::Error,
        }
    }

    /// The reason as the status shows it.
    pub fn as_str(&self) -> &str {
        match self {
            TerminationReason::Completed => "Completed",
            TerminationReason::Error => "Error",
            TerminationReason::Unknown => "Unknown",
            TerminationReason::Restarted(r) => r.as_str(),
        }
    }
}

/// What happened to a container, fed to [`ContainerMachine::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An earlier agent run recorded that the instance ended (adoption); `success` = exit 0.
    RecordedExit {
        /// The recorded end.
        term: Terminated,
        /// Whether it counts as a success.
        success: bool,
    },
    /// A new instance is about to be created; the log dir already holds instances up to
    /// `next_log_instance` (never reuse a log file).
    Creating {
        /// The next free instance number in the log dir.
        next_log_instance: u32,
    },
    /// The new instance started.
    Started,
    /// The new instance could not be started.
    StartFailed,
    /// The running instance ended (its exit, a kill after a failed probe, or a stop for a
    /// requested restart) and its resources are released.
    Ended {
        /// How it ended.
        term: Terminated,
        /// Exit code 0.
        success: bool,
        /// Stopped because a restart was requested.
        restart_requested: bool,
    },
    /// A wait asked for by [`Action::Wait`] is over (its time passed, or a restart was
    /// requested meanwhile).
    WaitOver,
}

/// What the worker must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Show `term` as the previous instance's end.
    ShowLast(Terminated),
    /// Show the container as terminated with `term`.
    ShowTerminated(Terminated),
    /// Record in the state dir that the container ended for good with `term`.
    PersistExit(Terminated),
    /// Start a new instance (restart count [`ContainerMachine::restart_count`]).
    Start,
    /// Wait `delay` before starting again; `crash_loop` shows `CrashLoopBackOff` meanwhile.
    /// A stop request ends the container (showing `on_stop` as terminated, if any).
    Wait {
        /// How long.
        delay: Duration,
        /// A CrashLoopBackOff (else a start failure's retry delay).
        crash_loop: bool,
        /// What the status shows when the container is stopped during the wait.
        on_stop: Option<Terminated>,
    },
    /// The container ended for good: report it and wait for the pod to stop.
    Park {
        /// Whether it ended successfully.
        success: bool,
    },
}

/// Where a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being created (or waiting to be).
    Creating,
    /// An instance runs.
    Running,
    /// Waiting after a crash before the next start.
    CrashBackOff,
    /// Waiting after a failed start before the next attempt.
    StartBackOff,
    /// Ended for good.
    Parked,
}

/// The state of one container across its instances.
#[derive(Debug, Clone)]
pub struct ContainerMachine {
    policy: RestartPolicy,
    init: bool,
    backoff: CrashLoopBackoff,
    /// Restarts so far.
    restart_count: u32,
    /// The previous instance's end, recorded in the state dir with the next start.
    last: Option<Terminated>,
    /// When the current instance started.
    started_at: Instant,
    phase: Phase,
}

impl ContainerMachine {
    /// A container of a pod with `policy` (`init` for an init container), `restart_count`
    /// restarts and `last` recorded so far (adoption), its current instance (if any) started
    /// at `now`.
    pub fn new(
        policy: RestartPolicy,
        init: bool,
        restart_count: u32,
        last: Option<Terminated>,
        now: Instant,
    ) -> Self {
        ContainerMachine {
            policy,
            init,
            backoff: CrashLoopBackoff::new(BackoffPolicy::kubelet()),
            restart_count,
            last,
            started_at: now,
            phase: Phase::Creating,
        }
    }

    /// Restarts so far.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// The previous instance's end as recorded (for the state dir).
    pub fn last(&self) -> Option<&Terminated> {
        self.last.as_ref()
    }

    /// When the current instance started.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Where the container is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Applies `event` at `now`; the actions to perform, in order.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::RecordedExit { term, success } => {
                // The recorded exit is shown, not recorded again: the state dir has it.
                if !self.policy.restarts(self.init, success) {
                    return self.park(vec![ShowTerminated(term)], success);
                }
                self.restart_count += 1;
                self.phase = Phase::Creating;
                vec![ShowLast(term), Start]
            }
            Event::Creating { next_log_instance } => {
                self.restart_count = self.restart_count.max(next_log_instance);
                self.phase = Phase::Creating;
                vec![]
            }
            Event::Started => {
                self.started_at = now;
                self.phase = Phase::Running;
                vec![]
            }
            Event::StartFailed => {
                let delay = self.backoff.on_exit(now, now).max(Duration::from_secs(1));
                self.phase = Phase::StartBackOff;
                vec![Wait {
                    delay,
                    crash_loop: false,
                    on_stop: None,
                }]
            }
            Event::Ended {
                term,
                success,
                restart_requested,
            } => self.ended(term, success, restart_requested, now),
            Event::WaitOver => {
                if self.phase == Phase::CrashBackOff {
                    self.restart_count += 1;
                }
                self.phase = Phase::Creating;
                vec![Start]
            }
        }
    }

    fn ended(
        &mut self,
        term: Terminated,
        success: bool,
        restart_requested: bool,
        now: Instant,
    ) -> Vec<Action> {
        self.last = Some(term.clone());
        if restart_requested {
            // A requested restart: immediately, no back-off.
            self.restart_count += 1;
            self.phase = Phase::Creating;
            return vec![ShowLast(term), Start];
        }
        if !self.policy.restarts(self.init, success) {
            return self.park(
                vec![PersistExit(term.clone()), ShowTerminated(term)],
                success,
            );
        }
        let delay = self.backoff.on_exit(self.started_at, now);
        if delay.is_zero() {
            self.restart_count += 1;
            self.phase = Phase::Creating;
            return vec![ShowLast(term), Start];
        }
        self.phase = Phase::CrashBackOff;
        vec![
            ShowLast(term.clone()),
            Wait {
                delay,
                crash_loop: true,
                on_stop: Some(term),
            },
        ]
    }

    fn park(&mut self, mut actions: Vec<Action>, success: bool) -> Vec<Action> {
        self.phase = Phase::Parked;
        actions.push(Park { success });
        actions
    }
}

use Action::{Park, PersistExit, ShowLast, ShowTerminated, Start, Wait};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn term(code: i32) -> Terminated {
        let status = ExitStatus::Exited(code);
        Terminated {
            exit_code: code,
            signal: None,
            reason: TerminationReason::of(status).as_str().into(),
            message: None,
            started_at: None,
            finished_at: SystemTime::UNIX_EPOCH,
            container_id: None,
        }
    }

    fn ended(code: i32) -> Event {
        Event::Ended {
            term: term(code),
            success: code == 0,
            restart_requested: false,
        }
    }

    /// The clock, as the worker reads it: tokio's, paused.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[test]
    fn restart_policy_follows_the_kubelet() {
        use RestartPolicy::*;
        assert_eq!(RestartPolicy::parse(None), Always);
        assert_eq!(RestartPolicy::parse(Some("OnFailure")), OnFailure);
        assert_eq!(RestartPolicy::parse(Some("Never")), Never);
        assert_eq!(RestartPolicy::parse(Some("bogus")), Always);
        for (policy, init, success, restarts) in [
            (Always, false, true, true),
            (Always, false, false, true),
            (OnFailure, false, true, false),
            (OnFailure, false, false, true),
            (Never, false, false, false),
            (Always, true, true, false),
            (Always, true, false, true),
            (OnFailure, true, false, true),
            (Never, true, false, false),
        ] {
            assert_eq!(
                policy.restarts(init, success),
                restarts,
                "{policy:?} init={init} success={success}"
            );
        }
    }

    #[test]
    fn reasons_are_spelled_as_the_status_shows_them() {
        assert_eq!(
            TerminationReason::of(ExitStatus::Exited(0)).as_str(),
            "Completed"
        );
        assert_eq!(
            TerminationReason::of(ExitStatus::Exited(2)).as_str(),
            "Error"
        );
        assert_eq!(
            TerminationReason::of(ExitStatus::Signaled(9)).as_str(),
            "Error"
        );
        assert_eq!(
            TerminationReason::of(ExitStatus::Unknown).as_str(),
            "Unknown"
        );
        let r = RestartReason::from("MountedFileChanged".to_string());
        assert_eq!(r, RestartReason::MountedFileChanged);
        assert_eq!(
            TerminationReason::Restarted(r).as_str(),
            "MountedFileChanged"
        );
        assert_eq!(RestartReason::from("x".to_string()).as_str(), "x");
    }

    #[tokio::test(start_paused = true)]
    async fn crash_loop_backs_off_and_counts_restarts_after_the_wait() {
        let mut m = ContainerMachine::new(RestartPolicy::Always, false, 0, None, now());
        assert_eq!(m.step(Event::Started, now()), vec![]);
        assert_eq!(m.phase(), Phase::Running);
        // The first crash of a streak restarts at once.
        assert_eq!(m.step(ended(1), now()), vec![ShowLast(term(1)), Start]);
        assert_eq!(m.restart_count(), 1);
        // The next quick crash waits 10 s; the restart counts once the wait is over.
        m.step(Event::Started, now());
        let actions = m.step(ended(1), now());
        assert_eq!(
            actions,
            vec![
                ShowLast(term(1)),
                Wait {
                    delay: Duration::from_secs(10),
                    crash_loop: true,
                    on_stop: Some(term(1)),
                }
            ]
        );
        assert_eq!(m.phase(), Phase::CrashBackOff);
        assert_eq!(m.restart_count(), 1);
        assert_eq!(m.last(), Some(&term(1)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(m.step(Event::WaitOver, now()), vec![Start]);
        assert_eq!(m.restart_count(), 2);
        // The delay doubles while it keeps crashing...
        m.step(Event::Started, now());
        tokio::time::advance(Duration::from_secs(1)).await;
        let actions = m.step(ended(1), now());
        assert!(
            matches!(actions[1], Wait { delay, .. } if delay == Duration::from_secs(20)),
            "{actions:?}"
        );
        m.step(Event::WaitOver, now());
        // ... and a run of 10 minutes starts a new streak: restarted at once.
        m.step(Event::Started, now());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(m.step(ended(1), now()), vec![ShowLast(term(1)), Start]);
        assert_eq!(m.restart_count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_requested_restart_is_immediate_and_a_start_failure_retries_without_counting() {
        let mut m = ContainerMachine::new(RestartPolicy::Never, false, 3, None, now());
        m.step(Event::Started, now());
        let restarted = Terminated {
            reason: TerminationReason::Restarted(RestartReason::MountedFileChanged)
                .as_str()
                .into(),
            ..term(0)
        };
        assert_eq!(
            m.step(
                Event::Ended {
                    term: restarted.clone(),
                    success: true,
                    restart_requested: true,
                },
                now()
            ),
            vec![ShowLast(restarted), Start],
            "restartPolicy Never does not stop a requested restart"
        );
        assert_eq!(m.restart_count(), 4);
        // The log dir knows of more instances: never reuse a log file.
        m.step(
            Event::Creating {
                next_log_instance: 7,
            },
            now(),
        );
        assert_eq!(m.restart_count(), 7);
        let actions = m.step(Event::StartFailed, now());
        assert_eq!(
            actions,
            vec![Wait {
                delay: Duration::from_secs(1),
                crash_loop: false,
                on_stop: None,
            }],
            "a failed start is retried after at least a second"
        );
        assert_eq!(m.phase(), Phase::StartBackOff);
        assert_eq!(m.step(Event::WaitOver, now()), vec![Start]);
        assert_eq!(m.restart_count(), 7, "a failed start is not a restart");
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_container_that_does_not_restart_is_persisted_and_parked() {
        let mut m = ContainerMachine::new(RestartPolicy::OnFailure, false, 0, None, now());
        m.step(Event::Started, now());
        assert_eq!(
            m.step(ended(0), now()),
            vec![
                PersistExit(term(0)),
                ShowTerminated(term(0)),
                Park { success: true }
            ]
        );
        assert_eq!(m.phase(), Phase::Parked);
        // An init container that completes is not restarted even under Always.
        let mut init = ContainerMachine::new(RestartPolicy::Always, true, 0, None, now());
        init.step(Event::Started, now());
        assert_eq!(
            init.step(ended(0), now()).last(),
            Some(&Park { success: true })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_exit_recorded_by_an_earlier_agent_is_decided_without_recording_it_again() {
        let mut m = ContainerMachine::new(RestartPolicy::Always, false, 2, Some(term(0)), now());
        let actions = m.step(
            Event::RecordedExit {
                term: term(-1),
                success: false,
            },
            now(),
        );
        assert_eq!(actions, vec![ShowLast(term(-1)), Start]);
        assert_eq!(m.restart_count(), 3);
        assert_eq!(m.last(), Some(&term(0)), "the state dir keeps what it had");
        let mut never = ContainerMachine::new(RestartPolicy::Never, false, 0, None, now());
        assert_eq!(
            never.step(
                Event::RecordedExit {
                    term: term(1),
                    success: false,
                },
                now()
            ),
            vec![ShowTerminated(term(1)), Park { success: false }]
        );
    }
}
