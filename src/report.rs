//! What a render step did, as a value: the operations below the workflow (init's, `certs
//! renew`) return it; the workflow runner turns it into events.

use std::path::PathBuf;

/// What a render phase did: kubeadm-style lines, and the files it changed.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    /// `[certs] Generating "ca" certificate and key`, ...
    pub lines: Vec<String>,
    /// Host paths of files created or changed.
    pub changed: Vec<PathBuf>,
}

impl PhaseReport {
    /// Appends `other`.
    pub fn extend(&mut self, other: PhaseReport) {
        self.lines.extend(other.lines);
        self.changed.extend(other.changed);
    }
}
