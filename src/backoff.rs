//! CrashLoopBackOff as the kubelet applies it, as a pure state machine with injected time.
//!
//! Every container exit is fed to [`CrashLoopBackoff::on_exit`] with the instants the
//! container started and exited; it answers how long to wait before the next start. The first
//! crash of a streak restarts immediately, the following ones wait `initial`, `2×initial`,
//! `4×initial`, … capped at `max` (kubelet: 0, 10 s, 20 s, 40 s, … 300 s). A container that
//! ran for at least `reset_after` (kubelet: 10 minutes) before exiting starts a new streak, so
//! its exit is again restarted immediately. The total restart count survives resets, as the
//! pod status' `restartCount` does.
//!
//! No clock is read here: callers pass [`Instant`]s, so tests run without sleeping.

use std::time::{Duration, Instant};

/// The parameters of the crash-loop backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay before the second restart of a streak (kubelet: 10 s); doubled for each further one.
    pub initial: Duration,
    /// Upper bound of the delay (kubelet: 300 s).
    pub max: Duration,
    /// A container that ran at least this long before exiting resets the streak (kubelet: 10 min).
    pub reset_after: Duration,
}

impl BackoffPolicy {
    /// The kubelet's values: 10 s doubling to 300 s, reset after 10 minutes of clean running.
    pub fn kubelet() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy::kubelet()
    }
}

/// The backoff state of one container (keep one per container, across its restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashLoopBackoff {
    policy: BackoffPolicy,
    /// Exits in the current streak (0 = no exit since the last reset).
    streak: u32,
    /// Total exits recorded, never reset (the container's restartCount).
    restarts: u32,
}

impl CrashLoopBackoff {
    /// A fresh backoff: no exits recorded.
    pub fn new(policy: BackoffPolicy) -> Self {
        CrashLoopBackoff {
            policy,
            streak: 0,
            restarts: 0,
        }
    }

    /// A fresh streak for a container that already restarted `restarts` times (e.g. the
    /// restart count read back from the state dir after an agent restart).
    pub fn with_restart_count(policy: BackoffPolicy, restarts: u32) -> Self {
        CrashLoopBackoff {
            restarts,
            ..CrashLoopBackoff::new(policy)
        }
    }

    /// The policy in use.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Records an exit of a container that started at `started_at` and exited at
    /// `exited_at`, and returns the delay before the next start.
    ///
    /// A run of at least `reset_after` resets the streak first, so that exit waits zero. An
    /// `exited_at` before `started_at` counts as a run of zero.
    pub fn on_exit(&mut self, started_at: Instant, exited_at: Instant) -> Duration {
        let ran = exited_at.saturating_duration_since(started_at);
        if ran >= self.policy.reset_after {
            self.streak = 0;
        }
        self.streak = self.streak.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        self.current_delay()
    }

    /// The delay [`on_exit`](Self::on_exit) returned last (zero when no exit is recorded).
    pub fn current_delay(&self) -> Duration {
        if self.streak <= 1 {
            return Duration::ZERO;
        }
        // streak 2 → initial, 3 → 2×initial, ...; stop doubling once past max.
        let mut delay = self.policy.initial;
        for _ in 2..self.streak {
            if delay >= self.policy.max {
                break;
            }
            delay = delay.saturating_mul(2);
        }
        delay.min(self.policy.max)
    }

    /// Forgets the current streak (the next exit restarts immediately); keeps the restart count.
    pub fn reset(&mut self) {
        self.streak = 0;
    }

    /// Total exits recorded since creation, across resets (the container's restartCount).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Exits in the current streak.
    pub fn streak(&self) -> u32 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Feeds exits of containers that each ran `ran` and returns the delays.
    fn run(b: &mut CrashLoopBackoff, t0: Instant, ran: Duration, n: usize) -> Vec<Duration> {
        let mut now = t0;
        let mut out = Vec::new();
        for _ in 0..n {
            let started = now;
            now += ran;
            let d = b.on_exit(started, now);
            out.push(d);
            now += d;
        }
        out
    }

    #[test]
    fn kubelet_sequence_is_0_10_20_40_80_160_300_300() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy::kubelet());
        let delays = run(&mut b, Instant::now(), secs(1), 8);
        let want: Vec<Duration> = [0, 10, 20, 40, 80, 160, 300, 300]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!(delays, want);
        assert_eq!(b.restarts(), 8);
        assert_eq!(b.streak(), 8);
        assert_eq!(b.current_delay(), secs(300));
    }

    #[test]
    fn long_streak_stays_capped_without_overflow() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy::kubelet());
        let delays = run(&mut b, Instant::now(), Duration::ZERO, 200);
        assert!(delays[6..].iter().all(|d| *d == secs(300)));
        assert_eq!(b.restarts(), 200);
    }

    #[test]
    fn ten_minutes_of_clean_running_resets_the_streak() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy::kubelet());
        let t0 = Instant::now();
        let delays = run(&mut b, t0, secs(1), 5);
        assert_eq!(delays.last(), Some(&secs(80)));
        // This run lasted 10 minutes: its exit restarts immediately...
        let start = t0 + secs(10_000);
        assert_eq!(b.on_exit(start, start + secs(600)), Duration::ZERO);
        // ...and the streak starts over: the next quick crash waits 10 s, then 20 s.
        let t = start + secs(601);
        assert_eq!(b.on_exit(t, t + secs(1)), secs(10));
        assert_eq!(b.on_exit(t + secs(20), t + secs(21)), secs(20));
        assert_eq!(b.restarts(), 8, "restart count survives the reset");
    }

    #[test]
    fn reset_boundary_is_inclusive() {
        let policy = BackoffPolicy::kubelet();
        let t0 = Instant::now();

        let mut just_short = CrashLoopBackoff::new(policy);
        run(&mut just_short, t0, secs(1), 3); // 0, 10, 20
        let ran = policy.reset_after - Duration::from_nanos(1);
        assert_eq!(just_short.on_exit(t0, t0 + ran), secs(40));

        let mut exactly = CrashLoopBackoff::new(policy);
        run(&mut exactly, t0, secs(1), 3);
        assert_eq!(exactly.on_exit(t0, t0 + policy.reset_after), Duration::ZERO);
        assert_eq!(exactly.streak(), 1);
    }

    #[test]
    fn cap_is_reached_exactly_at_max() {
        // 10 → 20 → 40 → 80 → 160 → 320 capped: the first capped delay is exactly max.
        let policy = BackoffPolicy {
            initial: secs(10),
            max: secs(160),
            reset_after: secs(600),
        };
        let mut b = CrashLoopBackoff::new(policy);
        let delays = run(&mut b, Instant::now(), secs(1), 7);
        let want: Vec<Duration> = [0, 10, 20, 40, 80, 160, 160]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!(delays, want);
    }

    #[test]
    fn explicit_reset_keeps_restart_count() {
        let mut b = CrashLoopBackoff::with_restart_count(BackoffPolicy::kubelet(), 7);
        let t0 = Instant::now();
        assert_eq!(b.on_exit(t0, t0), Duration::ZERO);
        assert_eq!(b.on_exit(t0, t0), secs(10));
        b.reset();
        assert_eq!(b.current_delay(), Duration::ZERO);
        assert_eq!(b.on_exit(t0, t0), Duration::ZERO);
        assert_eq!(b.restarts(), 10);
    }

    #[test]
    fn exit_before_start_counts_as_zero_run() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy::kubelet());
        let t0 = Instant::now() + secs(100);
        assert_eq!(b.on_exit(t0, t0 - secs(50)), Duration::ZERO);
        assert_eq!(b.on_exit(t0, t0 - secs(50)), secs(10));
    }
}
