//! The ledger of what `plinth init` created: the directories that did not exist before the
//! first init (host paths, in the state dir). init records it before it writes anything;
//! preflight and reset read it, so reset removes only what plinth made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::ClusterSpec;
use crate::fs::{self, FsError, HostRoot};

/// Errors reading or writing the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The ledger is not the JSON plinth writes.
    #[error("ledger {}", path.display())]
    Json {
        /// Ledger file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Host paths of the directories plinth created (didn't exist before the first init).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// Directories created by plinth (host paths).
    pub created_dirs: BTreeSet<String>,
}

/// The ledger's host path.
pub fn ledger_path(spec: &ClusterSpec) -> String {
    crate::fs::join_host(&spec.plinth.state_dir, "ledger.json")
}

/// The directory of the persisted configuration (fixed, whatever `stateDir` says).
fn persisted_config_dir() -> String {
    Path::new(crate::config::persisted::PERSISTED_CONFIG_PATH)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Every directory (host path) that plinth's writes for `spec` may create.
pub fn candidate_dirs(spec: &ClusterSpec) -> BTreeSet<String> {
    let mut leaves: Vec<String> = vec![
        spec.plinth.manifests_dir.clone(),
        spec.plinth.kubeconfig_dir.clone(),
        spec.plinth.state_dir.clone(),
        spec.plinth.log_dir.clone(),
        format!("{}/etcd", spec.certificates_dir),
        "/var/log/plinth".into(),
        "/var/log/kubernetes/audit".into(),
        persisted_config_dir(),
    ];
    if let crate::config::Etcd::Local(l) = &spec.etcd {
        leaves.push(l.data_dir.clone());
    }
    let mut out = BTreeSet::new();
    for leaf in leaves {
        let mut p = Path::new(&leaf);
        while p != Path::new("/") && !p.as_os_str().is_empty() {
            out.insert(p.display().to_string());
            p = match p.parent() {
                Some(x) => x,
                None => break,
            };
        }
    }
    out
}

/// Before init writes anything: remember which candidate dirs do not exist yet. Entries from
/// an earlier init are kept, so a re-run never "forgets" what the first run created.
pub fn record_ledger(spec: &ClusterSpec, root: &HostRoot) -> Result<Ledger, LedgerError> {
    let mut ledger = load_ledger(spec, root)?;
    for d in candidate_dirs(spec) {
        if !root.path(&d).exists() {
            ledger.created_dirs.insert(d);
        }
    }
    save_ledger(spec, root, &ledger)?;
    Ok(ledger)
}

/// Merges directories the agent reports it created into the ledger.
pub fn add_to_ledger(
    spec: &ClusterSpec,
    root: &HostRoot,
    dirs: impl IntoIterator<Item = String>,
) -> Result<(), LedgerError> {
    let mut ledger = load_ledger(spec, root)?;
    ledger.created_dirs.extend(dirs);
    save_ledger(spec, root, &ledger)
}

/// Writes the ledger atomically (mode 0600).
fn save_ledger(spec: &ClusterSpec, root: &HostRoot, ledger: &Ledger) -> Result<(), LedgerError> {
    let path = root.path(ledger_path(spec));
    let json = serde_json::to_vec_pretty(ledger).map_err(|source| LedgerError::Json {
        path: path.clone(),
        source,
    })?;
    fs::write_atomic(&path, &json, fs::MODE_PRIVATE)?;
    Ok(())
}

/// Loads the ledger (empty when absent).
pub fn load_ledger(spec: &ClusterSpec, root: &HostRoot) -> Result<Ledger, LedgerError> {
    let path = root.path(ledger_path(spec));
    match fs::read_optional(&path)? {
        None => Ok(Ledger::default()),
        Some(b) => serde_json::from_slice(&b).map_err(|source| LedgerError::Json { path, source }),
    }
}
