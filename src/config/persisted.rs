//! The node-local copy of the effective configuration `plinth init` used.
//!
//! init writes it to [`PERSISTED_CONFIG_PATH`] (under `--root`), atomically, mode 0600, as a
//! kubeadm-compatible multi-document file (see [`super::effective`]). The day-2 verbs
//! (verify, certs, manifest regenerate, reset) load it when no `--config` is given, so they
//! check and render exactly what init built, never a re-derived default (such as the default
//! route's address). The path is fixed, not under the configurable `stateDir`: a verb must
//! find it before it knows the configuration. `plinth reset` removes it.
//!
//! kubeadm also uploads its configuration as the `kubeadm-config` ConfigMap; plinth does not
//! (yet): this file is the only copy.

use std::path::PathBuf;

use crate::fs::{self, FsError, HostRoot, WriteOutcome};

use super::host::HostInfo;
use super::spec::ClusterSpec;
use super::{ConfigError, Overrides};

/// Host path of the persisted configuration.
pub const PERSISTED_CONFIG_PATH: &str = "/var/lib/plinth/config.yaml";

/// Errors reading or writing the persisted configuration.
#[derive(Debug, thiserror::Error)]
pub enum PersistedError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file exists but does not load (edited by hand, or the host changed under it).
    #[error("the configuration persisted by plinth init ({path}) does not load:\n{source}")]
    Invalid {
        /// The file (under the root).
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfigError,
    },
}

/// The header written above the documents.
fn header() -> String {
    format!(
        "The effective configuration `plinth init` used on this node (every default resolved).\n\
         Written by plinth {}; the day-2 verbs (verify, certs, manifest regenerate, reset) read it\n\
         when no --config is given. Change it by re-running `plinth init --config FILE`.",
        env!("CARGO_PKG_VERSION")
    )
}

/// The persisted file's path under `root`.
pub fn persisted_path(root: &HostRoot) -> PathBuf {
    root.path(PERSISTED_CONFIG_PATH)
}

/// The YAML that [`save`] writes for `spec`.
pub fn render(spec: &ClusterSpec) -> String {
    super::effective::to_yaml(spec, &header())
}

/// Writes `spec` as the persisted configuration (atomic, 0600; unchanged content is left).
pub fn save(spec: &ClusterSpec, root: &HostRoot) -> Result<WriteOutcome, FsError> {
    fs::write_atomic(
        &persisted_path(root),
        render(spec).as_bytes(),
        fs::MODE_PRIVATE,
    )
}

/// Loads the persisted configuration with `overrides` applied (`None` when init has not
/// written one under `root`).
pub fn load(
    root: &HostRoot,
    overrides: &Overrides,
    host: &dyn HostInfo,
) -> Result<Option<ClusterSpec>, PersistedError> {
    let path = persisted_path(root);
    let Some(bytes) = fs::read_optional(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    super::load_str(&text, &path.display().to_string(), overrides, host)
        .map(Some)
        .map_err(|source| PersistedError::Invalid { path, source })
}
