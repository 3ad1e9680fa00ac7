//! Host filesystem access: the `--root` prefix and atomic, mode-exact writes.
//!
//! Every path plinth *writes into a file* (a manifest, a kubeconfig) is the real host path
//! (`/etc/kubernetes/pki/ca.crt`); every path plinth *opens* goes through [`HostRoot::path`],
//! which prefixes the `--root` directory. Contents therefore stay byte-identical with and
//! without `--root`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Errors from filesystem operations, always naming the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// An I/O operation failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "rename", "create dir", ...).
        op: &'static str,
        /// The host path (root-prefixed) involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// Wraps an io error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `dir/name` for a host path kept as text (config values such as `/etc/kubernetes/`):
/// exactly one slash between them, like Go's `filepath.Join` for these paths.
pub fn join_host(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

/// Mode for private keys.
pub const MODE_KEY: u32 = 0o600;
/// Mode for certificates.
pub const MODE_CERT: u32 = 0o644;
/// Mode for manifests, kubeconfigs and other sensitive files.
pub const MODE_PRIVATE: u32 = 0o600;
/// Mode for the manifests directory.
pub const MODE_MANIFEST_DIR: u32 = 0o700;
/// Mode for other directories plinth creates.
pub const MODE_DIR: u32 = 0o755;

/// The host root: `/` normally, or the `--root DIR` under which every absolute path lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
        }
    }
}

impl HostRoot {
    /// A host root at `root` (`None` = the real `/`).
    pub fn new(root: Option<&Path>) -> Self {
        match root {
            Some(r) => HostRoot {
                root: r.to_path_buf(),
            },
            None => HostRoot::default(),
        }
    }

    /// True when this is the real host root `/`.
    pub fn is_real_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Maps a host path (as written in manifests, e.g. `/etc/kubernetes/pki`) to the path to
    /// open on this machine. Relative paths are taken as relative to the root too.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        for c in host_path.as_ref().components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::ParentDir => out.push(".."),
                Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            }
        }
        out
    }

    /// The inverse of [`HostRoot::path`]: strips the root prefix from a local path.
    pub fn host_path(&self, local: &Path) -> PathBuf {
        match local.strip_prefix(&self.root) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => local.to_path_buf(),
        }
    }
}

/// What a write did to the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file did not exist and was created.
    Created,
    /// The file existed with other content and was replaced.
    Updated,
    /// The file already had exactly this content and mode: nothing was written.
    Unchanged,
    /// The content was already right but the mode was looser (or different): it was fixed.
    ModeFixed {
        /// The mode found on disk.
        old: u32,
    },
}

impl WriteOutcome {
    /// True if anything on disk changed.
    pub fn changed(&self) -> bool {
        !matches!(self, WriteOutcome::Unchanged)
    }
}

/// Creates `dir` (and parents) if missing; when created by this call the leaf gets `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<bool, FsError> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(|e| FsError::io("create dir", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(|e| FsError::io("chmod", dir, e))?;
    Ok(true)
}

/// Writes `data` to `path` atomically with exactly `mode`.
///
/// The data goes to a dot-prefixed temp file in the same directory (never picked up by a
/// directory watcher that skips dotfiles), is fsynced, renamed over `path`, and the
/// directory is fsynced. An identical file is left alone (its mode is still corrected).
///
/// POSIX ACLs: the mode compared is the file's base mode ([`crate::acl::logical_mode`]: with
/// an ACL the group bits of `st_mode` are its mask), and a replaced file's extended ACL is
/// carried over to the new file before the rename (with the base entries of `mode`), so a
/// grant such as etcd's read access to its keys survives an atomic rewrite.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<WriteOutcome, FsError> {
    write_atomic_inner(path, data, mode, false)
}

/// The extended attribute [`write_atomic_sealed`] sets: the hex SHA-256 of the content.
pub const CONTENT_SEAL_XATTR: &str = "user.plinth.sha256";

/// [`write_atomic`] for static pod manifests: the file also carries the SHA-256 of its
/// complete content in the [`CONTENT_SEAL_XATTR`] extended attribute (set before the rename),
/// so an agent that finds it at start knows it is complete without a settle wait. Where the
/// filesystem has no user xattrs the file is written all the same, unsealed.
pub fn write_atomic_sealed(path: &Path, data: &[u8], mode: u32) -> Result<WriteOutcome, FsError> {
    write_atomic_inner(path, data, mode, true)
}

/// True when the open file `f`, whose content is `data`, carries a matching
/// [`CONTENT_SEAL_XATTR`] (written complete by [`write_atomic_sealed`]).
pub fn content_sealed(f: &fs::File, data: &[u8]) -> bool {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(CONTENT_SEAL_XATTR).unwrap_or_default();
    let mut buf = [0u8; 128];
    // SAFETY: `f` is an open fd, `name` a NUL-terminated string, `buf` writable for its length.
    let n = unsafe {
        libc::fgetxattr(
            f.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n > 0 && buf[..n as usize] == *content_seal(data).as_bytes()
}

fn content_seal(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn seal(f: &fs::File, data: &[u8]) {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(CONTENT_SEAL_XATTR).unwrap_or_default();
    let value = content_seal(data);
    // SAFETY: `f` is an open fd, `name` a NUL-terminated string, `value` readable.
    let rc = unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(
            "cannot set {CONTENT_SEAL_XATTR}: {}",
            io::Error::last_os_error()
        );
    }
}

fn write_atomic_inner(
    path: &Path,
    data: &[u8],
    mode: u32,
    sealed: bool,
) -> Result<WriteOutcome, FsError> {
    let existing = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(FsError::io("read", path, e)),
    };
    if let Some(old) = &existing {
        if old.as_slice() == data {
            let meta = fs::metadata(path).map_err(|e| FsError::io("stat", path, e))?;
            let old_mode = crate::acl::logical_mode(path, &meta);
            if old_mode == mode {
                return Ok(WriteOutcome::Unchanged);
            }
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| FsError::io("chmod", path, e))?;
            return Ok(WriteOutcome::ModeFixed { old: old_mode });
        }
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    ensure_dir(dir, MODE_DIR)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.plinth-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| FsError::io("create", &tmp, e))?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| FsError::io("chmod", &tmp, e))?;
        if existing.is_some() {
            let acl = crate::acl::get(path).map_err(|e| {
                FsError::io("read ACL", path, io::Error::other(crate::error::chain(&e)))
            })?;
            if let Some(acl) = acl {
                crate::acl::set(&tmp, &acl.with_base_mode(mode)).map_err(|e| {
                    FsError::io("set ACL", &tmp, io::Error::other(crate::error::chain(&e)))
                })?;
            }
        }
        f.write_all(data)
            .map_err(|e| FsError::io("write", &tmp, e))?;
        if sealed {
            seal(&f, data);
        }
        f.sync_all().map_err(|e| FsError::io("fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| FsError::io("rename", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    Ok(if existing.is_some() {
        WriteOutcome::Updated
    } else {
        WriteOutcome::Created
    })
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    let d = File::open(dir).map_err(|e| FsError::io("open dir", dir, e))?;
    d.sync_all().map_err(|e| FsError::io("fsync dir", dir, e))
}

/// Reads a file, mapping "not found" to `None`.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::io("read", path, e)),
    }
}

/// The permission bits of `path`, if it exists.
/// (With a POSIX ACL: its base mode, see [`crate::acl::logical_mode`].)
pub fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| crate::acl::logical_mode(path, &m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_prefixes_absolute_paths() {
        let r = HostRoot::new(Some(Path::new("/tmp/x")));
        assert_eq!(
            r.path("/etc/kubernetes/pki"),
            PathBuf::from("/tmp/x/etc/kubernetes/pki")
        );
        assert_eq!(
            r.host_path(Path::new("/tmp/x/etc/a")),
            PathBuf::from("/etc/a")
        );
        assert_eq!(HostRoot::default().path("/etc/a"), PathBuf::from("/etc/a"));
    }

    #[test]
    fn atomic_write_reports_outcomes_and_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/f.txt");
        assert_eq!(
            write_atomic(&p, b"a", 0o600).unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(mode_of(&p), Some(0o600));
        assert_eq!(
            write_atomic(&p, b"a", 0o600).unwrap(),
            WriteOutcome::Unchanged
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            write_atomic(&p, b"a", 0o600).unwrap(),
            WriteOutcome::ModeFixed { old: 0o644 }
        );
        assert_eq!(
            write_atomic(&p, b"b", 0o600).unwrap(),
            WriteOutcome::Updated
        );
        assert_eq!(fs::read(&p).unwrap(), b"b");
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temp files left behind");
    }

    /// etcd's keys carry an ACL read grant (mode shows 0640: the mask): an unchanged rewrite
    /// is not a "mode fix" (which would chmod the grant away), and a renewal's atomic rename
    /// keeps the grant on the new file.
    #[test]
    fn acl_grant_survives_rewrites_and_is_not_a_mode_change() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("server.key");
        write_atomic(&p, b"old", MODE_KEY).unwrap();
        match crate::acl::grant_user_read(&p, MODE_KEY, 4242) {
            Err(crate::acl::AclError::Unsupported { .. }) => {
                eprintln!("skipped: no ACL support here");
                return;
            }
            r => assert!(r.unwrap()),
        }
        assert_eq!(mode_of(&p), Some(MODE_KEY));
        assert_eq!(
            write_atomic(&p, b"old", MODE_KEY).unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(
            write_atomic(&p, b"renewed", MODE_KEY).unwrap(),
            WriteOutcome::Updated
        );
        let acl = crate::acl::get(&p)
            .unwrap()
            .expect("ACL kept by the rename");
        assert_eq!(acl.user_perm(4242), Some(crate::acl::READ));
        assert_eq!(mode_of(&p), Some(MODE_KEY));
        assert_eq!(fs::read(&p).unwrap(), b"renewed");
    }
}
