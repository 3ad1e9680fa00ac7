//! TEMPORARY stand-in for the probe module (owned by another helper); replaced on merge.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};

/// Kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Startup.
    Startup,
    /// Liveness.
    Liveness,
    /// Readiness.
    Readiness,
}
/// Error.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Invalid.
    #[error("{0}")]
    Invalid(String),
}
/// Spec.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    initial: Duration,
    period: Duration,
    success: u32,
    failure: u32,
}
impl ProbeSpec {
    /// From k8s.
    pub fn from_k8s(p: &Probe, _c: &Container, _ip: IpAddr) -> Result<ProbeSpec, ProbeError> {
        Ok(ProbeSpec {
            initial: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
            period: Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64),
            success: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure: p.failure_threshold.unwrap_or(3).max(1) as u32,
        })
    }
}
/// Outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Ok.
    Success,
    /// Failed.
    Failure(String),
}
/// Execute.
pub async fn execute(_s: &ProbeSpec) -> ProbeOutcome {
    ProbeOutcome::Success
}
/// Transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTransition {
    /// Ok.
    Succeeded,
    /// Failed.
    Failed {
        /// Why.
        reason: String,
    },
}
/// Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Unknown.
    Unknown,
    /// Success.
    Success,
    /// Failure.
    Failure,
}
/// State.
#[derive(Debug, Clone)]
pub struct ProbeState {
    spec: ProbeSpec,
    next: Instant,
    result: ProbeResult,
    ok: u32,
    bad: u32,
}
impl ProbeState {
    /// New.
    pub fn new(kind: ProbeKind, spec: &ProbeSpec, started: Instant) -> Self {
        let result = match kind {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
        };
        ProbeState {
            spec: spec.clone(),
            next: started + spec.initial,
            result,
            ok: 0,
            bad: 0,
        }
    }
    /// Next due.
    pub fn next_due(&self) -> Option<Instant> {
        Some(self.next)
    }
    /// Record.
    pub fn record(&mut self, now: Instant, o: &ProbeOutcome) -> Option<ProbeTransition> {
        self.next = now + self.spec.period;
        match o {
            ProbeOutcome::Success => {
                self.bad = 0;
                self.ok += 1;
                if self.ok >= self.spec.success && self.result != ProbeResult::Success {
                    self.result = ProbeResult::Success;
                    return Some(ProbeTransition::Succeeded);
                }
            }
            ProbeOutcome::Failure(r) => {
                self.ok = 0;
                self.bad += 1;
                if self.bad >= self.spec.failure && self.result != ProbeResult::Failure {
                    self.result = ProbeResult::Failure;
                    return Some(ProbeTransition::Failed { reason: r.clone() });
                }
            }
        }
        None
    }
    /// Result.
    pub fn result(&self) -> ProbeResult {
        self.result
    }
}
