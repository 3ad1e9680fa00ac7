//! TEMPORARY stand-in for the backoff module (owned by another helper); replaced on merge.
use std::time::{Duration, Instant};

/// Backoff policy.
#[derive(Debug, Clone)]
pub struct BackoffPolicy {
    /// Initial delay.
    pub initial: Duration,
    /// Max delay.
    pub max: Duration,
    /// Clean running time that resets the streak.
    pub reset_after: Duration,
}
impl BackoffPolicy {
    /// kubelet's policy.
    pub fn kubelet() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}
/// CrashLoopBackOff state.
#[derive(Debug, Clone)]
pub struct CrashLoopBackoff {
    policy: BackoffPolicy,
    streak: u32,
    restarts: u32,
}
impl CrashLoopBackoff {
    /// New.
    pub fn new(policy: BackoffPolicy) -> Self {
        CrashLoopBackoff {
            policy,
            streak: 0,
            restarts: 0,
        }
    }
    /// Delay before the next start.
    pub fn on_exit(&mut self, started_at: Instant, exited_at: Instant) -> Duration {
        if exited_at.saturating_duration_since(started_at) >= self.policy.reset_after {
            self.streak = 0;
        }
        self.restarts += 1;
        let d = if self.streak == 0 {
            Duration::ZERO
        } else {
            let mut d = self.policy.initial;
            for _ in 1..self.streak {
                d = (d * 2).min(self.policy.max);
            }
            d
        };
        self.streak += 1;
        d
    }
    /// Reset.
    pub fn reset(&mut self) {
        self.streak = 0;
    }
    /// Restarts.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}
