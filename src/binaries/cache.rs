//! The binary cache: `<stateDir>/bin/<component>/<version>/<name>` (default
//! `/var/lib/plinth/bin`) under `--root`. Directories are 0755 and files 0755, so a component
//! running as its own user (etcd under the cis profile) can execute its binary; the state dir
//! itself is made traversable (0711: not listable). A file enters the cache only by a rename
//! from a dot-prefixed temp file in the same directory, after it was fsynced and verified:
//! a name in the cache is always a complete, verified binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fs::HostRoot;

use super::download::io_err;
use super::BinariesError;

/// Mode of cache directories and binaries.
pub const MODE_BIN: u32 = 0o755;
/// Mode the state dir gets so the cache below it is reachable by non-root components.
pub const MODE_STATE_DIR_TRAVERSE: u32 = 0o711;

/// The cache of one host.
#[derive(Debug, Clone)]
pub struct Cache {
    root: HostRoot,
    state_dir: String,
}

/// One cached version of a component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Component (`kube-apiserver`, `etcd`, `kubectl`).
    pub component: String,
    /// Version (`v1.24.0`, `v3.5.3`).
    pub version: String,
    /// The executables in it.
    pub names: Vec<String>,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The host path of the version dir.
    pub path: String,
}

impl Cache {
    /// The cache below `state_dir` (host path) on `root`.
    pub fn new(root: &HostRoot, state_dir: &str) -> Cache {
        Cache {
            root: root.clone(),
            state_dir: state_dir.trim_end_matches('/').to_string(),
        }
    }

    /// Host path of the cache dir (`/var/lib/plinth/bin`).
    pub fn host_dir(&self) -> String {
        crate::binlayout::host_dir(&self.state_dir)
    }

    /// Host path of a version dir.
    pub fn host_version_dir(&self, component: &str, version: &str) -> String {
        crate::binlayout::host_version_dir(&self.state_dir, component, version)
    }

    /// Local path of a version dir.
    pub fn version_dir(&self, component: &str, version: &str) -> PathBuf {
        self.root.path(self.host_version_dir(component, version))
    }

    /// Local path of a cached executable.
    pub fn path(&self, component: &str, version: &str, name: &str) -> PathBuf {
        self.version_dir(component, version).join(name)
    }

    /// The local paths of `names` when every one is cached (an executable regular file).
    pub fn lookup(&self, component: &str, version: &str, names: &[String]) -> Option<Vec<PathBuf>> {
        names
            .iter()
            .map(|n| {
                let p = self.path(component, version, n);
                is_executable(&p).then_some(p)
            })
            .collect()
    }

    /// Every cached version, sorted. Temp files (dot-prefixed) are not listed.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let base = self.root.path(self.host_dir());
        for comp in sorted_dirs(&base) {
            for ver in sorted_dirs(&base.join(&comp)) {
                let dir = base.join(&comp).join(&ver);
                let mut names = Vec::new();
                let mut bytes = 0;
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let n = e.file_name().to_string_lossy().into_owned();
                        if n.starts_with('.') {
                            continue;
                        }
                        if let Ok(m) = e.metadata() {
                            if m.is_file() {
                                bytes += m.len();
                                names.push(n);
                            }
                        }
                    }
                }
                names.sort();
                out.push(Entry {
                    path: self.host_version_dir(&comp, &ver),
                    component: comp.clone(),
                    version: ver,
                    names,
                    bytes,
                });
            }
        }
        out
    }

    /// Removes a cached version (and its component dir when that is then empty).
    pub fn remove(&self, component: &str, version: &str) -> Result<(), BinariesError> {
        let dir = self.version_dir(component, version);
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }

    /// Starts writing into the version dir of `component`/`version`, creating what is missing
    /// (0755; the state dir 0711). Dropping the [`Staging`] without [`Staging::commit`]
    /// removes its temp files and the directories it created.
    pub fn stage(&self, component: &str, version: &str) -> Result<Staging, BinariesError> {
        let state = self.root.path(&self.state_dir);
        let dir = self.version_dir(component, version);
        let mut created = Vec::new();
        // The missing ancestors, outermost first.
        let mut missing = Vec::new();
        let mut cur = Some(dir.as_path());
        while let Some(p) = cur {
            if p.is_dir() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        let mut staging = Staging {
            dir: dir.clone(),
            created: Vec::new(),
            temps: Vec::new(),
            committed: false,
        };
        for p in missing.into_iter().rev() {
            match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&p, e)),
            }
            created.push(p.clone());
            staging.created = created.clone();
            let mode = if p == state {
                MODE_STATE_DIR_TRAVERSE
            } else {
                MODE_BIN
            };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_err(&p, e))?;
        }
        // An existing state dir (0700 from the agent) gets the traverse bits only.
        if let Ok(m) = std::fs::metadata(&state) {
            let mode = m.permissions().mode() & 0o7777;
            if mode & 0o011 != 0o011 {
                std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode | 0o011))
                    .map_err(|e| io_err(&state, e))?;
            }
        }
        Ok(staging)
    }
}

/// Files being written into one version dir; see [`Cache::stage`].
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    created: Vec<PathBuf>,
    temps: Vec<(PathBuf, String)>,
    committed: bool,
}

impl Staging {
    /// The version dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new empty temp file for `name` (`.<name>.<random>.partial` in the version dir).
    pub fn temp_file(&mut self, name: &str) -> Result<(std::fs::File, PathBuf), BinariesError> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        let (file, path) = tmp.keep().map_err(|e| io_err(&self.dir, e.error))?;
        self.temps.push((path.clone(), name.to_string()));
        Ok((file, path))
    }

    /// A temp file that is not installed under a name (a tarball): removed on drop/commit.
    pub fn scratch_file(&mut self, label: &str) -> Result<(std::fs::File, PathBuf), BinariesError> {
        let (f, p) = self.temp_file(label)?;
        if let Some(last) = self.temps.last_mut() {
            last.1.clear();
        }
        Ok((f, p))
    }

    /// fsyncs, chmods 0755 and renames every named temp file to its name, then fsyncs the dir.
    /// Scratch files are removed.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, BinariesError> {
        let mut installed = Vec::new();
        for (tmp, name) in std::mem::take(&mut self.temps) {
            if name.is_empty() {
                let _ = std::fs::remove_file(&tmp);
                continue;
            }
            let f = std::fs::File::open(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(MODE_BIN))
                .map_err(|e| io_err(&tmp, e))?;
            let dest = self.dir.join(&name);
            std::fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
            installed.push(dest);
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.committed = true;
        Ok(installed)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for (tmp, _) in &self.temps {
            let _ = std::fs::remove_file(tmp);
        }
        if !self.committed {
            for d in self.created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

fn sorted_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub use crate::binlayout::is_executable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_dropped_leaves_nothing_and_commit_installs_0755() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        let cache = Cache::new(&root, "/var/lib/plinth");
        {
            let mut s = cache.stage("etcd", "v3.5.1").unwrap();
            let (mut f, _) = s.temp_file("etcd").unwrap();
            use std::io::Write;
            f.write_all(b"#!/bin/sh\n").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut s = cache.stage("etcd", "v3.5.1").unwrap();
        let (mut f, _) = s.temp_file("etcd").unwrap();
        use std::io::Write;
        f.write_all(b"#!/bin/sh\n").unwrap();
        let (_, scratch) = s.scratch_file("tarball").unwrap();
        let installed = s.commit().unwrap();
        assert!(!scratch.exists());
        let p = cache.path("etcd", "v3.5.1", "etcd");
        assert_eq!(installed, vec![p.clone()]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&p), 0o755);
        assert_eq!(mode(&cache.version_dir("etcd", "v3.5.1")), 0o755);
        assert_eq!(mode(&root.path("/var/lib/plinth")), 0o711);
        assert!(cache.lookup("etcd", "v3.5.1", &["etcd".into()]).is_some());
        assert!(cache
            .lookup("etcd", "v3.5.1", &["etcd".into(), "etcdctl".into()])
            .is_none());
        let e = cache.entries();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].names, vec!["etcd".to_string()]);
        assert_eq!(e[0].path, "/var/lib/plinth/bin/etcd/v3.5.1");
        cache.remove("etcd", "v3.5.1").unwrap();
        assert!(cache.entries().is_empty());
    }

    #[test]
    fn an_existing_private_state_dir_gets_only_traverse_bits() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        let state = root.path("/var/lib/plinth");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cache = Cache::new(&root, "/var/lib/plinth");
        drop(cache.stage("kubectl", "v1.24.0").unwrap());
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o711);
        assert!(state.is_dir(), "an existing dir is never removed");
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
    }
}
