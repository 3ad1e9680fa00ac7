//! hostPath volumes: type checks before start, creation (recorded so `plinth reset` removes
//! exactly what the agent created), bind mounts, and the mounted-file digest that restarts a
//! pod when a file it mounts changes (certificate renewal).
//!
//! Every hostPath is opened as `--root` + path; the container sees it at its `mountPath`.
//!
//! **Mounted files.** Per pod, the content hash of each regular file under the hostPath
//! volumes that hold configuration: volumes mounted read-only by every container that mounts
//! them, `File`/`FileOrCreate` volumes, and any volume under `/etc/`. Data directories (such
//! as etcd's `/var/lib/etcd`, a writable `DirectoryOrCreate` outside /etc) are never hashed.
//! Directories themselves never count (a `DirectoryOrCreate` path the agent creates is not a
//! change); the baseline is taken by the pod worker after the volumes are prepared, i.e. over
//! exactly what the containers start with.
//! Bounded: files over [`DIGEST_MAX_FILE`] and directories with more than
//! [`DIGEST_MAX_ENTRIES`] entries are skipped, recursion stops at depth [`DIGEST_MAX_DEPTH`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};
use sha2::{Digest, Sha256};

use super::model::ResolveError;
use crate::fs::HostRoot;
use crate::runtime::Mount;

/// Files larger than this are not hashed for change detection.
pub const DIGEST_MAX_FILE: u64 = 1024 * 1024;
/// Directories with more entries than this are not hashed.
pub const DIGEST_MAX_ENTRIES: usize = 1000;
/// How deep the digest descends into a volume.
pub const DIGEST_MAX_DEPTH: usize = 3;

/// The record of every directory and file the agent created for hostPath volumes (host
/// paths), kept in `<state dir>/created-paths.json` for `plinth reset`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPaths {
    /// Directories created (host paths).
    pub created_dirs: BTreeSet<String>,
    /// Files created (host paths).
    pub created_files: BTreeSet<String>,
}

/// The ledger file name inside the state dir.
pub const CREATED_PATHS_FILE: &str = "created-paths.json";

/// The ledger file (local path) for `state_dir` (a host path) under `root`.
fn ledger_path(root: &HostRoot, state_dir: &Path) -> PathBuf {
    root.path(state_dir).join(CREATED_PATHS_FILE)
}

fn read_ledger(ledger: &Path) -> CreatedPaths {
    fs::read(ledger)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The hostPaths the agent recorded as created under `state_dir` (empty when absent or
/// unreadable), read without preparing anything (e.g. for `plinth reset`).
pub fn created_paths(root: &HostRoot, state_dir: &Path) -> CreatedPaths {
    read_ledger(&ledger_path(root, state_dir))
}

/// Prepares hostPath volumes and records what it creates.
#[derive(Debug)]
pub struct HostPaths {
    root: HostRoot,
    ledger: PathBuf,
    lock: Mutex<()>,
}

impl HostPaths {
    /// Volumes under `root`; the ledger lives in `state_dir` (a host path).
    pub fn new(root: HostRoot, state_dir: &Path) -> Self {
        let ledger = ledger_path(&root, state_dir);
        HostPaths {
            root,
            ledger,
            lock: Mutex::new(()),
        }
    }

    /// Loads the ledger of created paths (empty when absent or unreadable).
    pub fn created(&self) -> CreatedPaths {
        read_ledger(&self.ledger)
    }

    fn record(&self, dirs: Vec<String>, files: Vec<String>) -> Result<(), ResolveError> {
        if dirs.is_empty() && files.is_empty() {
            return Ok(());
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = self.created();
        c.created_dirs.extend(dirs);
        c.created_files.extend(files);
        let json = serde_json::to_vec_pretty(&c).unwrap_or_default();
        crate::fs::write_atomic(&self.ledger, &json, crate::fs::MODE_PRIVATE)
            .map_err(|e| ResolveError::Os(e.to_string()))?;
        Ok(())
    }

    /// Checks (and for the `*OrCreate` types creates) every hostPath volume of the pod.
    /// Volumes of other kinds are an error: the process runtime only has host paths.
    pub fn prepare(&self, spec: &PodSpec) -> Result<(), ResolveError> {
        for v in spec.volumes.iter().flatten() {
            self.prepare_volume(v)?;
        }
        Ok(())
    }

    fn prepare_volume(&self, v: &Volume) -> Result<(), ResolveError> {
        let Some(hp) = &v.host_path else {
            return Err(ResolveError::Unsupported(format!(
                "volume {}: only hostPath volumes are supported by the process runtime",
                v.name
            )));
        };
        let host = Path::new(&hp.path);
        if !host.is_absolute() {
            return Err(volume_err(&v.name, host, "hostPath.path must be absolute"));
        }
        let local = self.root.path(host);
        let ty = hp.type_.as_deref().unwrap_or("");
        let meta = fs::metadata(&local);
        let missing = matches!(&meta, Err(e) if e.kind() == ErrorKind::NotFound);
        let check = |want: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(volume_err(&v.name, host, &format!("type {ty}: {}", want)))
            }
        };
        match ty {
            "" => Ok(()),
            "DirectoryOrCreate" if missing => {
                let created = create_dirs(&self.root, host)
                    .map_err(|e| volume_err(&v.name, host, &format!("cannot create: {e}")))?;
                self.record(created, vec![])
            }
            "DirectoryOrCreate" | "Directory" => check(
                "a directory must exist at the given path",
                meta.as_ref().is_ok_and(|m| m.is_dir()),
            ),
            "FileOrCreate" if missing => {
                let parent = local.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    return Err(volume_err(
                        &v.name,
                        host,
                        "type FileOrCreate: the parent directory must exist",
                    ));
                }
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&local)
                    .map_err(|e| volume_err(&v.name, host, &format!("cannot create: {e}")))?;
                self.record(vec![], vec![hp.path.clone()])
            }
            "FileOrCreate" | "File" => check(
                "a file must exist at the given path",
                meta.as_ref().is_ok_and(|m| m.is_file()),
            ),
            "Socket" => check(
                "a UNIX socket must exist at the given path",
                meta.as_ref().is_ok_and(|m| m.file_type().is_socket()),
            ),
            "CharDevice" => check(
                "a character device must exist at the given path",
                meta.as_ref().is_ok_and(|m| m.file_type().is_char_device()),
            ),
            "BlockDevice" => check(
                "a block device must exist at the given path",
                meta.as_ref().is_ok_and(|m| m.file_type().is_block_device()),
            ),
            other => Err(volume_err(
                &v.name,
                host,
                &format!("unknown hostPath type {other:?}; allowed: \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice"),
            )),
        }
    }

    /// The bind mounts of container `c`: each volumeMount's hostPath (root-prefixed, plus
    /// subPath) at its mountPath.
    pub fn mounts(&self, spec: &PodSpec, c: &Container) -> Result<Vec<Mount>, ResolveError> {
        let mut out = Vec::new();
        for m in c.volume_mounts.iter().flatten() {
            let v = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .ok_or_else(|| {
                    ResolveError::Unsupported(format!(
                        "container {}: volumeMount {:?} names no volume of the pod",
                        c.name, m.name
                    ))
                })?;
            let Some(hp) = &v.host_path else {
                return Err(ResolveError::Unsupported(format!(
                    "volume {}: only hostPath volumes are supported by the process runtime",
                    v.name
                )));
            };
            let mut source = self.root.path(&hp.path);
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if Path::new(sub).is_absolute() || sub.split('/').any(|p| p == "..") {
                    return Err(ResolveError::Unsupported(format!(
                        "container {}: volumeMount {}: subPath {sub:?} must be relative without '..'",
                        c.name, m.name
                    )));
                }
                source = source.join(sub);
            }
            if !Path::new(&m.mount_path).is_absolute() {
                return Err(ResolveError::Unsupported(format!(
                    "container {}: volumeMount {}: mountPath {:?} must be absolute",
                    c.name, m.name, m.mount_path
                )));
            }
            out.push(Mount {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only.unwrap_or(false),
            });
        }
        Ok(out)
    }

    /// The content signatures of the configuration files the pod mounts (see the module
    /// docs). Only regular files count: a directory that appears (a created `DirectoryOrCreate`
    /// path) or an empty one is not a change.
    pub fn mounted_files(&self, spec: &PodSpec) -> MountedFiles {
        let mut files = BTreeMap::new();
        for v in spec.volumes.iter().flatten() {
            let Some(hp) = &v.host_path else { continue };
            if !digest_volume(spec, v, &hp.path, hp.type_.as_deref().unwrap_or("")) {
                continue;
            }
            collect_files(
                &mut files,
                Path::new(&hp.path),
                &self.root.path(&hp.path),
                0,
            );
        }
        MountedFiles { files }
    }
}

/// What a mounted configuration file looked like: its content hash, or only its presence
/// for files over [`DIGEST_MAX_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileSig {
    Content([u8; 16]),
    TooLarge,
}

/// The mounted configuration files of a pod (host path → content signature), taken when
/// its containers are started and compared on each relist: a pod is restarted only when
/// one of these files changed content, appeared or disappeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountedFiles {
    files: BTreeMap<PathBuf, FileSig>,
}

impl MountedFiles {
    /// The host paths of the files that differ between `self` (before) and `now`
    /// (changed content, new or removed files); empty when nothing changed.
    pub fn changed(&self, now: &MountedFiles) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (p, sig) in &self.files {
            if now.files.get(p) != Some(sig) {
                out.push(p.clone());
            }
        }
        for p in now.files.keys() {
            if !self.files.contains_key(p) {
                out.push(p.clone());
            }
        }
        out.sort();
        out
    }

    /// Number of files tracked.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is tracked.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn digest_volume(spec: &PodSpec, v: &Volume, path: &str, ty: &str) -> bool {
    if matches!(ty, "File" | "FileOrCreate") || path == "/etc" || path.starts_with("/etc/") {
        return true;
    }
    let mut mounts = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| m.name == v.name)
        .peekable();
    mounts.peek().is_some() && mounts.all(|m| m.read_only == Some(true))
}

fn collect_files(out: &mut BTreeMap<PathBuf, FileSig>, host: &Path, local: &Path, depth: usize) {
    let Ok(meta) = fs::metadata(local) else {
        return;
    };
    if meta.is_file() {
        let sig = if meta.len() <= DIGEST_MAX_FILE {
            match fs::read(local) {
                Ok(b) => {
                    let mut h = Sha256::new();
                    h.update(&b);
                    let mut d = [0u8; 16];
                    d.copy_from_slice(&h.finalize()[..16]);
                    FileSig::Content(d)
                }
                Err(_) => return,
            }
        } else {
            FileSig::TooLarge
        };
        out.insert(host.to_path_buf(), sig);
        return;
    }
    if !meta.is_dir() || depth >= DIGEST_MAX_DEPTH {
        return;
    }
    let Ok(rd) = fs::read_dir(local) else { return };
    let names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    if names.len() > DIGEST_MAX_ENTRIES {
        return;
    }
    for n in names {
        collect_files(out, &host.join(&n), &local.join(&n), depth + 1);
    }
}

/// Creates `host` (and missing parents) under `root`; returns the host paths it created.
fn create_dirs(root: &HostRoot, host: &Path) -> std::io::Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut p = Some(host);
    while let Some(dir) = p {
        if dir == Path::new("/") || root.path(dir).exists() {
            break;
        }
        missing.push(dir.to_path_buf());
        p = dir.parent();
    }
    let mut created = Vec::new();
    for dir in missing.iter().rev() {
        match fs::create_dir(root.path(dir)) {
            Ok(()) => created.push(dir.display().to_string()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

fn volume_err(volume: &str, path: &Path, reason: &str) -> ResolveError {
    ResolveError::Volume {
        volume: volume.to_string(),
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn pod_spec(vol_type: &str, path: &str, read_only: bool) -> PodSpec {
        spec(serde_json::json!({
            "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/in", "readOnly": read_only}]}],
            "volumes": [{"name": "v", "hostPath": {"path": path, "type": vol_type}}],
        }))
    }

    #[test]
    fn or_create_types_create_and_record_exactly_what_they_created() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        fs::create_dir_all(d.path().join("var/lib/plinth")).unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        let hp = HostPaths::new(root.clone(), Path::new("/var/lib/plinth"));
        hp.prepare(&pod_spec("DirectoryOrCreate", "/etc/a/b", false))
            .unwrap();
        assert!(d.path().join("etc/a/b").is_dir());
        hp.prepare(&pod_spec("FileOrCreate", "/etc/a/f.conf", false))
            .unwrap();
        assert!(d.path().join("etc/a/f.conf").is_file());
        let c = hp.created();
        assert_eq!(
            c.created_dirs.iter().cloned().collect::<Vec<_>>(),
            vec!["/etc/a", "/etc/a/b"]
        );
        assert_eq!(
            c.created_files.iter().cloned().collect::<Vec<_>>(),
            vec!["/etc/a/f.conf"]
        );
        // Existing paths are not recorded again.
        hp.prepare(&pod_spec("DirectoryOrCreate", "/etc", false))
            .unwrap();
        assert_eq!(hp.created(), c);
    }

    #[test]
    fn type_checks_fail_with_volume_path_and_type() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        fs::create_dir_all(d.path().join("dir")).unwrap();
        fs::write(d.path().join("file"), "x").unwrap();
        let hp = HostPaths::new(root, Path::new("/state"));
        let e = hp
            .prepare(&pod_spec("Directory", "/missing", false))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "volume v: hostPath /missing: type Directory: a directory must exist at the given path"
        );
        assert!(hp.prepare(&pod_spec("File", "/dir", false)).is_err());
        assert!(hp.prepare(&pod_spec("Directory", "/file", false)).is_err());
        assert!(hp.prepare(&pod_spec("File", "/file", false)).is_ok());
        assert!(hp.prepare(&pod_spec("", "/whatever", false)).is_ok());
        assert!(hp.prepare(&pod_spec("Socket", "/file", false)).is_err());
        let e = hp.prepare(&pod_spec("Bogus", "/file", false)).unwrap_err();
        assert!(e.to_string().contains("unknown hostPath type"), "{e}");
        let e = hp
            .prepare(&pod_spec("FileOrCreate", "/nodir/f", false))
            .unwrap_err();
        assert!(e.to_string().contains("parent directory"), "{e}");
        assert!(
            !d.path().join("state").exists(),
            "nothing recorded on failure"
        );
    }

    #[test]
    fn mounts_are_root_prefixed_at_mount_path() {
        let root = HostRoot::new(Some(Path::new("/tmp/r")));
        let hp = HostPaths::new(root, Path::new("/state"));
        let s = pod_spec("", "/etc/kubernetes/pki", true);
        let m = hp.mounts(&s, &s.containers[0]).unwrap();
        assert_eq!(
            m,
            vec![Mount {
                source: "/tmp/r/etc/kubernetes/pki".into(),
                target: "/in".into(),
                read_only: true
            }]
        );
    }

    #[test]
    fn digest_tracks_config_files_only() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        fs::create_dir_all(d.path().join("etc/pki")).unwrap();
        fs::create_dir_all(d.path().join("var/lib/data")).unwrap();
        fs::write(d.path().join("etc/pki/ca.crt"), "a").unwrap();
        let s = spec(serde_json::json!({
            "containers": [{"name": "c", "volumeMounts": [
                {"name": "certs", "mountPath": "/etc/pki"},
                {"name": "data", "mountPath": "/data"}]}],
            "volumes": [
                {"name": "certs", "hostPath": {"path": "/etc/pki", "type": "DirectoryOrCreate"}},
                {"name": "data", "hostPath": {"path": "/var/lib/data", "type": "DirectoryOrCreate"}}],
        }));
        let hp = HostPaths::new(root, Path::new("/state"));
        let d0 = hp.mounted_files(&s);
        assert_eq!(d0.len(), 1);
        fs::write(d.path().join("var/lib/data/wal"), "changes").unwrap();
        assert!(
            d0.changed(&hp.mounted_files(&s)).is_empty(),
            "data dir must not count"
        );
        fs::write(d.path().join("etc/pki/ca.crt"), "renewed").unwrap();
        let d1 = hp.mounted_files(&s);
        assert_eq!(d0.changed(&d1), vec![PathBuf::from("/etc/pki/ca.crt")]);
        fs::write(d.path().join("etc/pki/big"), vec![0u8; 2 * 1024 * 1024]).unwrap();
        let d2 = hp.mounted_files(&s);
        assert_eq!(
            d1.changed(&d2),
            vec![PathBuf::from("/etc/pki/big")],
            "a new file counts"
        );
        fs::write(d.path().join("etc/pki/big"), vec![1u8; 2 * 1024 * 1024]).unwrap();
        assert!(
            d2.changed(&hp.mounted_files(&s)).is_empty(),
            "big file content is skipped"
        );
    }
}

#[cfg(test)]
mod mounted_file_tests {
    use super::*;

    /// Regression (issue 8, item 1): a `DirectoryOrCreate` path that did not exist and is
    /// created by the agent (empty) is not a mounted-file change.
    #[test]
    fn created_empty_hostpath_dirs_are_not_a_mounted_file_change() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        fs::create_dir_all(d.path().join("var/lib/plinth")).unwrap();
        let s: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "c", "volumeMounts": [
                {"name": "ca", "mountPath": "/etc/ca-certificates", "readOnly": true},
                {"name": "local", "mountPath": "/usr/local/share/ca-certificates", "readOnly": true}]}],
            "volumes": [
                {"name": "ca", "hostPath": {"path": "/etc/ca-certificates", "type": "DirectoryOrCreate"}},
                {"name": "local", "hostPath": {"path": "/usr/local/share/ca-certificates", "type": "DirectoryOrCreate"}}],
        }))
        .unwrap();
        let hp = HostPaths::new(root, Path::new("/var/lib/plinth"));
        let before = hp.mounted_files(&s);
        hp.prepare(&s).unwrap();
        assert!(d.path().join("etc/ca-certificates").is_dir());
        let after = hp.mounted_files(&s);
        assert!(
            before.changed(&after).is_empty(),
            "{:?}",
            before.changed(&after)
        );
        fs::create_dir_all(d.path().join("etc/ca-certificates/sub/empty")).unwrap();
        assert!(before.changed(&hp.mounted_files(&s)).is_empty());
        fs::write(d.path().join("etc/ca-certificates/sub/x.pem"), "x").unwrap();
        assert_eq!(
            before.changed(&hp.mounted_files(&s)),
            vec![PathBuf::from("/etc/ca-certificates/sub/x.pem")]
        );
    }
}
