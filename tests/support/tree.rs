//! Snapshots of a directory tree (content hash, mode, mtime per file) to prove that a run
//! changed nothing, or exactly what it changed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The state of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: SystemTime,
}

/// Every regular file under `dir` (relative path → state); directories are walked, not listed.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, FileState> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("read_dir entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("stat");
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).expect("read");
            out.insert(
                p.strip_prefix(dir).expect("under dir").to_path_buf(),
                FileState {
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    mode: meta.permissions().mode() & 0o7777,
                    mtime: meta.modified().expect("mtime"),
                },
            );
        }
    }
    out
}

/// Relative paths whose state differs between two snapshots (added, removed or changed).
pub fn changed(
    before: &BTreeMap<PathBuf, FileState>,
    after: &BTreeMap<PathBuf, FileState>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}
