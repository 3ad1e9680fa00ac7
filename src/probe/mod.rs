//! Kubelet probes: startup, liveness and readiness.
//!
//! - [`ProbeSpec::from_k8s`] turns a Pod's `Probe` into a validated, defaulted [`ProbeSpec`]
//!   (kubelet defaults, host defaulting to the node address, named ports resolved).
//! - [`execute`] runs one probe attempt (httpGet over HTTP/HTTPS without certificate
//!   verification, tcpSocket, exec as a host process) and returns a [`ProbeOutcome`].
//! - [`ProbeState`] is the pure per-container state machine: when the next attempt is due and
//!   when consecutive outcomes cross `successThreshold` / `failureThreshold`.
//!
//! Gating as in the kubelet: while a container has a startup probe that has not yet
//! succeeded, its liveness and readiness probes do not run ([`gated_by_startup`]) and the
//! container counts as not ready. A liveness or startup failure means the container is
//! restarted; readiness only feeds the pod's `Ready` condition.

mod execute;
mod spec;
mod state;

pub use execute::{execute, MAX_BODY_BYTES, MAX_EXEC_OUTPUT_BYTES, USER_AGENT};
pub use spec::{ProbeAction, ProbeSpec, Scheme};
pub use state::{ProbeResult, ProbeState, ProbeTransition};

use std::fmt;

/// Which of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `startupProbe`: gates the other two; failure restarts the container.
    Startup,
    /// `livenessProbe`: failure restarts the container.
    Liveness,
    /// `readinessProbe`: feeds the container's and pod's `Ready` condition.
    Readiness,
}

impl ProbeKind {
    /// The Pod field name (`startupProbe`, `livenessProbe`, `readinessProbe`).
    pub fn field(&self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }

    /// True when a failure crossing the threshold restarts the container (liveness, startup).
    pub fn failure_restarts_container(&self) -> bool {
        matches!(self, ProbeKind::Startup | ProbeKind::Liveness)
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// True when probes of `kind` must not run until the container's startup probe (if it has
/// one) succeeded: liveness and readiness, as in the kubelet.
pub fn gated_by_startup(kind: ProbeKind) -> bool {
    matches!(kind, ProbeKind::Liveness | ProbeKind::Readiness)
}

/// The result of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The probe passed.
    Success,
    /// The probe failed; the text says why (status code, exit code, timeout, ...).
    Failure(String),
}

impl ProbeOutcome {
    /// True for [`ProbeOutcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeOutcome::Success)
    }
}

/// A probe definition that cannot be run; always names the container, the probe and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No handler (httpGet, tcpSocket, exec) is set.
    #[error("{kind} of container {container:?}: no handler set (one of httpGet, tcpSocket, exec is required)")]
    NoHandler {
        /// The probe.
        kind: ProbeKind,
        /// The container name.
        container: String,
    },
    /// More than one handler is set.
    #[error("{kind} of container {container:?}: exactly one handler is allowed, found {}", handlers.join(", "))]
    MultipleHandlers {
        /// The probe.
        kind: ProbeKind,
        /// The container name.
        container: String,
        /// The handlers that are set.
        handlers: Vec<&'static str>,
    },
    /// A handler plinth does not implement (grpc).
    #[error("{kind} of container {container:?}: the {handler} handler is not supported by plinth (use httpGet, tcpSocket or exec)")]
    Unsupported {
        /// The probe.
        kind: ProbeKind,
        /// The container name.
        container: String,
        /// The handler's field name.
        handler: &'static str,
    },
    /// A named port that the container does not declare.
    #[error("{kind} of container {container:?}: {field}: no container port named {port:?} (declared: {})", if declared.is_empty() { "none".to_string() } else { declared.join(", ") })]
    NamedPortNotFound {
        /// The probe.
        kind: ProbeKind,
        /// The container name.
        container: String,
        /// The field (`httpGet.port`, `tcpSocket.port`).
        field: &'static str,
        /// The port name asked for.
        port: String,
        /// The port names the container declares.
        declared: Vec<String>,
    },
    /// Any other invalid value.
    #[error("{kind} of container {container:?}: {field}: invalid value {value:?}: {allowed}")]
    Invalid {
        /// The probe.
        kind: ProbeKind,
        /// The container name.
        container: String,
        /// The field within the probe (`periodSeconds`, `httpGet.scheme`, ...).
        field: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}
