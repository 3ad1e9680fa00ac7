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
    #[error("the configuration persisted by plinth init ({path}) does not load")]
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::{defaults_for, StaticHost};

    fn host() -> StaticHost {
        StaticHost {
            hostname: "ignored".into(),
            addresses: vec!["127.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap()],
            default_address: None,
        }
    }

    #[test]
    fn saved_private_and_loaded_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let none = load(&root, &Overrides::default(), &host()).unwrap();
        assert!(none.is_none(), "nothing persisted yet");

        let mut spec = defaults_for("cp9", "192.0.2.7".parse().unwrap());
        spec.kubernetes_version_source = crate::config::KubeVersionSource::Config;
        assert!(save(&spec, &root).unwrap().changed());
        let path = tmp.path().join("var/lib/plinth/config.yaml");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert!(
            !save(&spec, &root).unwrap().changed(),
            "same content rewritten"
        );
        let back = load(&root, &Overrides::default(), &host()).unwrap();
        assert_eq!(back, Some(spec.clone()));

        // Flags adjust the persisted configuration as they adjust a file.
        let o = Overrides {
            advertise_address: Some("127.0.0.1".into()),
            ..Overrides::default()
        };
        let adjusted = load(&root, &o, &host()).unwrap().unwrap();
        assert_eq!(adjusted.advertise_address.to_string(), "127.0.0.1");
        assert_eq!(adjusted.node_name, "cp9");
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let path = persisted_path(&root);
        fs::write_atomic(&path, b"kind: Nonsense\n", fs::MODE_PRIVATE).unwrap();
        let e = load(&root, &Overrides::default(), &host()).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains(&path.display().to_string()) && shown.contains("does not load"),
            "{shown}"
        );
    }
}
