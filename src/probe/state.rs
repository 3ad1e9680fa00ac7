//! [`ProbeState`]: the pure per-container, per-probe state machine (time is injected).
//!
//! Mirrors the kubelet's prober worker: the first attempt is due `initialDelaySeconds` after
//! the container started, each next one `periodSeconds` after the previous attempt. The result
//! starts at the kind's initial value (readiness Failure, liveness Success, startup Unknown)
//! and changes only when `successThreshold` consecutive successes or `failureThreshold`
//! consecutive failures are reached; only a change is reported as a [`ProbeTransition`].
//!
//! After a liveness or startup failure transition the container is going to be restarted, so
//! the probe goes on hold ([`ProbeState::next_due`] is `None`) until
//! [`ProbeState::container_restarted`]. A startup probe that succeeded is done for the life of
//! the container (`next_due` is `None` too).

use std::time::{Duration, Instant};

use super::{ProbeKind, ProbeOutcome, ProbeSpec};

/// The current result of a probe, as reported in container status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// No decision yet (startup probe before its first success or failure transition).
    Unknown,
    /// The probe is passing.
    Success,
    /// The probe is failing.
    Failure,
}

impl ProbeResult {
    /// The result a probe of `kind` has before any attempt (kubelet's initial values).
    pub fn initial(kind: ProbeKind) -> Self {
        match kind {
            ProbeKind::Startup => ProbeResult::Unknown,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
        }
    }
}

/// A change of a probe's result, returned by [`ProbeState::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTransition {
    /// `successThreshold` consecutive successes: the result became Success.
    Succeeded,
    /// `failureThreshold` consecutive failures: the result became Failure.
    Failed {
        /// The last attempt's failure message.
        reason: String,
    },
}

/// Scheduling and threshold state of one probe of one container.
#[derive(Debug, Clone)]
pub struct ProbeState {
    kind: ProbeKind,
    initial_delay: Duration,
    period: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    container_started: Instant,
    last_attempt: Option<Instant>,
    result: ProbeResult,
    /// Whether the current run is of successes (`true`) or failures.
    run_success: bool,
    /// Length of the current run of equal outcomes.
    run: u32,
    /// Stopped until the container restarts (after a liveness/startup failure transition).
    on_hold: bool,
    last_failure: Option<String>,
}

impl ProbeState {
    /// State for a probe of `kind` with `spec` of a container that started at `container_started`.
    pub fn new(kind: ProbeKind, spec: &ProbeSpec, container_started: Instant) -> Self {
        ProbeState {
            kind,
            initial_delay: spec.initial_delay,
            period: spec.period,
            success_threshold: spec.success_threshold.max(1),
            failure_threshold: spec.failure_threshold.max(1),
            container_started,
            last_attempt: None,
            result: ProbeResult::initial(kind),
            run_success: false,
            run: 0,
            on_hold: false,
            last_failure: None,
        }
    }

    /// Which probe this is.
    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// When the next attempt is due: `container_started + initial_delay` first, then
    /// `period` after the previous attempt. `None` when the probe does not run any more for
    /// this container (startup probe succeeded; liveness/startup failed and the container is
    /// to be restarted). Gating by the startup probe is the caller's job ([`super::gated_by_startup`]).
    pub fn next_due(&self) -> Option<Instant> {
        if self.on_hold || (self.kind == ProbeKind::Startup && self.result == ProbeResult::Success)
        {
            return None;
        }
        Some(match self.last_attempt {
            None => self.container_started + self.initial_delay,
            Some(t) => t + self.period,
        })
    }

    /// Records the outcome of an attempt made at `now`; returns the transition when the
    /// outcome made the result change. Ignored (returns `None`) while the probe is done or on hold.
    pub fn record(&mut self, now: Instant, outcome: &ProbeOutcome) -> Option<ProbeTransition> {
        self.next_due()?;
        self.last_attempt = Some(now);
        let success = outcome.is_success();
        if self.run > 0 && self.run_success == success {
            self.run = self.run.saturating_add(1);
        } else {
            self.run_success = success;
            self.run = 1;
        }
        match outcome {
            ProbeOutcome::Success => {
                if self.run >= self.success_threshold && self.result != ProbeResult::Success {
                    self.result = ProbeResult::Success;
                    self.run = 0;
                    return Some(ProbeTransition::Succeeded);
                }
            }
            ProbeOutcome::Failure(reason) => {
                self.last_failure = Some(reason.clone());
                if self.run >= self.failure_threshold && self.result != ProbeResult::Failure {
                    self.result = ProbeResult::Failure;
                    self.run = 0;
                    if self.kind.failure_restarts_container() {
                        self.on_hold = true;
                    }
                    return Some(ProbeTransition::Failed {
                        reason: reason.clone(),
                    });
                }
            }
        }
        None
    }

    /// The current result.
    pub fn result(&self) -> ProbeResult {
        self.result
    }

    /// The message of the most recent failed attempt, if any.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Starts over for a new instance of the container that started at `started`: initial
    /// result, no attempts, counters cleared, hold released.
    pub fn container_restarted(&mut self, started: Instant) {
        self.container_started = started;
        self.last_attempt = None;
        self.result = ProbeResult::initial(self.kind);
        self.run = 0;
        self.on_hold = false;
        self.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{ProbeAction, ProbeTransition as T};

    fn spec(initial: u64, period: u64, success: u32, failure: u32) -> ProbeSpec {
        ProbeSpec {
            action: ProbeAction::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            },
            initial_delay: Duration::from_secs(initial),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    fn fail() -> ProbeOutcome {
        ProbeOutcome::Failure("boom".into())
    }

    /// Records `outcomes` each at its due time; returns the transitions (None included).
    fn feed(st: &mut ProbeState, outcomes: &[ProbeOutcome]) -> Vec<Option<ProbeTransition>> {
        outcomes
            .iter()
            .map(|o| {
                let now = st.next_due().expect("probe should be due");
                st.record(now, o)
            })
            .collect()
    }

    #[test]
    fn initial_results_per_kind() {
        let s = spec(0, 10, 1, 3);
        let t = Instant::now();
        assert_eq!(
            ProbeState::new(ProbeKind::Readiness, &s, t).result(),
            ProbeResult::Failure
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Liveness, &s, t).result(),
            ProbeResult::Success
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Startup, &s, t).result(),
            ProbeResult::Unknown
        );
    }

    #[test]
    fn schedule_initial_delay_then_period_after_previous_attempt() {
        let t0 = Instant::now();
        let mut st = ProbeState::new(ProbeKind::Readiness, &spec(15, 10, 1, 3), t0);
        assert_eq!(st.next_due(), Some(t0 + Duration::from_secs(15)));
        // An attempt made late shifts the schedule: next is one period after it.
        let late = t0 + Duration::from_secs(17);
        st.record(late, &fail());
        assert_eq!(st.next_due(), Some(late + Duration::from_secs(10)));
        let later = late + Duration::from_millis(10_300);
        st.record(later, &ProbeOutcome::Success);
        assert_eq!(st.next_due(), Some(later + Duration::from_secs(10)));
    }

    #[test]
    fn readiness_thresholds() {
        let mut st = ProbeState::new(ProbeKind::Readiness, &spec(0, 1, 2, 3), Instant::now());
        // Failures while already Failure: no transition ever.
        assert_eq!(
            feed(&mut st, &[fail(), fail(), fail(), fail()]),
            vec![None; 4]
        );
        // One success is not enough with successThreshold 2; a failure breaks the run.
        assert_eq!(
            feed(
                &mut st,
                &[ProbeOutcome::Success, fail(), ProbeOutcome::Success]
            ),
            vec![None, None, None]
        );
        assert_eq!(st.result(), ProbeResult::Failure);
        assert_eq!(
            feed(&mut st, &[ProbeOutcome::Success]),
            vec![Some(T::Succeeded)]
        );
        assert_eq!(st.result(), ProbeResult::Success);
        // Further successes do not repeat the transition.
        assert_eq!(
            feed(&mut st, &[const { ProbeOutcome::Success }; 3]),
            vec![None; 3]
        );
        // Two failures then a success: the failure run resets.
        assert_eq!(
            feed(
                &mut st,
                &[fail(), fail(), ProbeOutcome::Success, fail(), fail()]
            ),
            vec![None; 5]
        );
        assert_eq!(st.result(), ProbeResult::Success);
        let last = feed(&mut st, &[ProbeOutcome::Failure("HTTP 500".into())]);
        assert_eq!(
            last,
            vec![Some(T::Failed {
                reason: "HTTP 500".into()
            })]
        );
        assert_eq!(st.result(), ProbeResult::Failure);
        assert_eq!(st.last_failure(), Some("HTTP 500"));
        // Readiness keeps probing after failing.
        assert!(st.next_due().is_some());
        // And needs the full success threshold again after the transition.
        assert_eq!(
            feed(&mut st, &[ProbeOutcome::Success, ProbeOutcome::Success]),
            vec![None, Some(T::Succeeded)]
        );
    }

    #[test]
    fn liveness_failure_puts_probe_on_hold_until_restart() {
        let t0 = Instant::now();
        let mut st = ProbeState::new(ProbeKind::Liveness, &spec(5, 10, 1, 3), t0);
        // Successes while already Success: no transition.
        assert_eq!(
            feed(&mut st, &[const { ProbeOutcome::Success }; 2]),
            vec![None; 2]
        );
        assert_eq!(
            feed(&mut st, &[fail(), fail(), fail()]),
            vec![
                None,
                None,
                Some(T::Failed {
                    reason: "boom".into()
                })
            ]
        );
        assert_eq!(st.result(), ProbeResult::Failure);
        assert_eq!(st.next_due(), None);
        assert_eq!(st.record(t0 + Duration::from_secs(100), &fail()), None);

        let t1 = t0 + Duration::from_secs(200);
        st.container_restarted(t1);
        assert_eq!(st.result(), ProbeResult::Success);
        assert_eq!(st.next_due(), Some(t1 + Duration::from_secs(5)));
        assert_eq!(st.last_failure(), None);
        // Counters were cleared: it takes three fresh failures again.
        assert_eq!(feed(&mut st, &[fail(), fail()]), vec![None, None]);
        assert_eq!(st.result(), ProbeResult::Success);
    }

    #[test]
    fn startup_probe_stops_after_success() {
        let t0 = Instant::now();
        let mut st = ProbeState::new(ProbeKind::Startup, &spec(0, 2, 1, 30), t0);
        assert_eq!(st.next_due(), Some(t0));
        assert_eq!(feed(&mut st, &[fail(), fail()]), vec![None, None]);
        assert_eq!(st.result(), ProbeResult::Unknown);
        assert_eq!(
            feed(&mut st, &[ProbeOutcome::Success]),
            vec![Some(T::Succeeded)]
        );
        assert_eq!(st.result(), ProbeResult::Success);
        assert_eq!(st.next_due(), None);
    }

    #[test]
    fn startup_failure_threshold_restarts() {
        let mut st = ProbeState::new(ProbeKind::Startup, &spec(0, 1, 1, 2), Instant::now());
        assert_eq!(
            feed(&mut st, &[fail(), fail()]),
            vec![
                None,
                Some(T::Failed {
                    reason: "boom".into()
                })
            ]
        );
        assert_eq!(st.next_due(), None);
    }

    #[test]
    fn gating_by_startup() {
        assert!(crate::probe::gated_by_startup(ProbeKind::Liveness));
        assert!(crate::probe::gated_by_startup(ProbeKind::Readiness));
        assert!(!crate::probe::gated_by_startup(ProbeKind::Startup));
    }
}
