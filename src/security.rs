//! The dedicated `etcd` system user of the `cis` security profile and the ownership of the
//! paths etcd needs to write or read as that user.
//!
//! - The etcd **data dir** belongs to the etcd user (CIS 1.1.12 wants it `etcd:etcd`, 1.1.11
//!   mode 0700): [`chown_etcd_paths`].
//! - etcd's **private keys** (`etcd/server.key`, `etcd/peer.key`) stay `root:root` 0600 like
//!   every file under the PKI dir (CIS 1.1.19) and get a POSIX ACL read grant for the etcd
//!   user (`user:etcd:r--`, mask `r--`; see [`crate::acl`] for what `stat` then shows):
//!   [`grant_etcd_keys`]. On a filesystem without ACLs the keys are chowned to the etcd user
//!   instead, with a message saying so (1.1.19 then reports them).
//!
//! **The one documented exception to `--root`**: uids are host-wide (the agent runs etcd on
//! this host, whatever `--root` says), so [`ensure_etcd_user`] creates the user in the real
//! host's user database even under `--root`. It is idempotent. The paths chowned by
//! [`chown_etcd_paths`] do go through the root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{ClusterSpec, Etcd};
use crate::fs::HostRoot;

/// The name of the etcd system user and group.
pub const ETCD_USER: &str = "etcd";

/// Errors creating the etcd user or changing ownership.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A user-management command could not be run.
    #[error("running {command}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A user-management command failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// The user still does not exist after creating it.
    #[error("system user {user:?} not found after creating it (check {db})")]
    NotCreated {
        /// User or group name.
        user: String,
        /// The database consulted.
        db: String,
    },
    /// An ACL could not be read or set.
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
    /// A path could not be inspected or chowned.
    #[error("{op} {}", path.display())]
    Io {
        /// What was done.
        op: &'static str,
        /// The (root-prefixed) path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// uid and gid of the `etcd` user and group in the real host's user database, if both exist.
pub fn lookup_etcd_user() -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(ETCD_USER).ok().flatten()?;
    let group = nix::unistd::Group::from_name(ETCD_USER).ok().flatten()?;
    Some((user.uid.as_raw(), group.gid.as_raw()))
}

/// Creates the system group and user `etcd` in the real host's user database if missing
/// (`groupadd --system`, `useradd --system --no-create-home --shell /usr/sbin/nologin`)
/// and returns their uid and gid. Idempotent.
pub fn ensure_etcd_user() -> Result<(u32, u32), SecurityError> {
    ensure_user_in(None)
}

/// [`ensure_etcd_user`] against the user database under `prefix` (`useradd --prefix`), or
/// the real one for `None`. Lookups under a prefix read its `/etc/passwd` and `/etc/group`.
pub(crate) fn ensure_user_in(prefix: Option<&Path>) -> Result<(u32, u32), SecurityError> {
    let prefix_args: Vec<String> = prefix
        .map(|p| vec!["--prefix".to_string(), p.display().to_string()])
        .unwrap_or_default();
    if lookup_group(prefix)?.is_none() {
        let mut args = prefix_args.clone();
        args.extend(["--system".to_string(), ETCD_USER.to_string()]);
        run("groupadd", &args)?;
        tracing::info!(prefix = ?prefix, "created system group etcd");
    }
    if lookup_user(prefix)?.is_none() {
        let mut args = prefix_args.clone();
        args.extend(
            [
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--gid",
                ETCD_USER,
                ETCD_USER,
            ]
            .map(String::from),
        );
        run("useradd", &args)?;
        tracing::info!(prefix = ?prefix, "created system user etcd");
    }
    let db = |f: &str| {
        prefix
            .map(|p| p.join(f).display().to_string())
            .unwrap_or_else(|| "the host user database".into())
    };
    let uid = lookup_user(prefix)?.ok_or_else(|| SecurityError::NotCreated {
        user: ETCD_USER.into(),
        db: db("etc/passwd"),
    })?;
    let gid = lookup_group(prefix)?.ok_or_else(|| SecurityError::NotCreated {
        user: ETCD_USER.into(),
        db: db("etc/group"),
    })?;
    Ok((uid, gid))
}

fn run(program: &str, args: &[String]) -> Result<(), SecurityError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SecurityError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(SecurityError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Field 3 (the id) of the `etcd` line of a passwd/group style file.
fn id_in_file(path: &Path) -> Result<Option<u32>, SecurityError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SecurityError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    Ok(text
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&ETCD_USER))
        .and_then(|f| f.get(2).and_then(|id| id.parse().ok())))
}

fn lookup_user(prefix: Option<&Path>) -> Result<Option<u32>, SecurityError> {
    match prefix {
        Some(p) => id_in_file(&p.join("etc/passwd")),
        None => Ok(nix::unistd::User::from_name(ETCD_USER)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())),
    }
}

fn lookup_group(prefix: Option<&Path>) -> Result<Option<u32>, SecurityError> {
    match prefix {
        Some(p) => id_in_file(&p.join("etc/group")),
        None => Ok(nix::unistd::Group::from_name(ETCD_USER)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())),
    }
}

/// The host paths etcd owns under the `cis` profile: its data dir. The certificates dir,
/// `etcd/` dir and every key stay root-owned ([`etcd_key_paths`] get an ACL instead).
pub fn etcd_owned_paths(spec: &ClusterSpec) -> Vec<PathBuf> {
    let Etcd::Local(local) = &spec.etcd else {
        return Vec::new();
    };
    vec![PathBuf::from(&local.data_dir)]
}

/// etcd's two private keys, which the etcd user must read (host paths).
pub fn etcd_key_paths(spec: &ClusterSpec) -> Vec<PathBuf> {
    if !spec.has_local_etcd() {
        return Vec::new();
    }
    let pki = Path::new(&spec.certificates_dir);
    vec![pki.join("etcd/server.key"), pki.join("etcd/peer.key")]
}

/// Gives `uid:gid` the etcd data dir (recursively: data left by an etcd that ran as root must
/// stay readable; modes are not changed; symlinks are not followed). Paths are host paths
/// opened through `root`; a missing one is skipped with a warning. Returns the host paths
/// whose owner changed (the data dir once for anything under it; empty on a second run).
/// Nothing to do for external etcd.
pub fn chown_etcd_paths(
    root: &HostRoot,
    spec: &ClusterSpec,
    uid: u32,
    gid: u32,
) -> Result<Vec<PathBuf>, SecurityError> {
    let mut changed = Vec::new();
    for host in etcd_owned_paths(spec) {
        let local = root.path(&host);
        if std::fs::symlink_metadata(&local).is_err() {
            tracing::warn!(path = %host.display(), "etcd path missing; not chowned");
            continue;
        }
        if chown_tree(&local, uid, gid, true)? {
            changed.push(host);
        }
    }
    Ok(changed)
}

/// How the etcd user reads one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAccess {
    /// root-owned 0600 with the ACL entry `user:<uid>:r--` (set or fixed by this call).
    Acl(PathBuf),
    /// The filesystem has no POSIX ACLs: the key was chowned to the etcd user instead.
    OwnedFallback(PathBuf),
}

impl std::fmt::Display for KeyAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAccess::Acl(p) => write!(
                f,
                "[etcd] {} is root-owned (0600) with an ACL read grant for the etcd user",
                p.display()
            ),
            KeyAccess::OwnedFallback(p) => write!(
                f,
                "[etcd] WARNING: the filesystem of {} does not support POSIX ACLs: the key is owned by the etcd user instead (CIS 1.1.19 will report it; mount it with the acl option and run init again)",
                p.display()
            ),
        }
    }
}

/// Lets the etcd user (`uid`) read etcd's keys while they stay root-owned: each existing key
/// becomes `root:root` with base mode 0600 plus `user:<uid>:r--` (mask `r--`). On a filesystem
/// without ACLs it is chowned to `uid:gid` instead. Returns what changed (empty on a second
/// run); missing keys are skipped (the certs phase has not run yet).
pub fn grant_etcd_keys(
    root: &HostRoot,
    spec: &ClusterSpec,
    uid: u32,
    gid: u32,
) -> Result<Vec<KeyAccess>, SecurityError> {
    let mut changed = Vec::new();
    for host in etcd_key_paths(spec) {
        let local = root.path(&host);
        let Ok(meta) = std::fs::symlink_metadata(&local) else {
            tracing::warn!(path = %host.display(), "etcd key missing; no ACL set");
            continue;
        };
        match crate::acl::grant_user_read(&local, crate::fs::MODE_KEY, uid) {
            Ok(acl_changed) => {
                let owner_changed = meta.uid() != 0 || meta.gid() != 0;
                if owner_changed {
                    // A key an older plinth gave to the etcd user comes back to root.
                    std::os::unix::fs::lchown(&local, Some(0), Some(0)).map_err(|source| {
                        SecurityError::Io {
                            op: "chown",
                            path: local.clone(),
                            source,
                        }
                    })?;
                }
                if acl_changed || owner_changed {
                    changed.push(KeyAccess::Acl(host));
                }
            }
            Err(crate::acl::AclError::Unsupported { .. }) => {
                if chown_tree(&local, uid, gid, false)? {
                    changed.push(KeyAccess::OwnedFallback(host));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(changed)
}

/// lchowns `path` (and, if `recursive`, everything below it); true if anything changed.
fn chown_tree(path: &Path, uid: u32, gid: u32, recursive: bool) -> Result<bool, SecurityError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| SecurityError::Io {
        op: "stat",
        path: path.to_path_buf(),
        source,
    })?;
    let mut changed = false;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|source| {
            SecurityError::Io {
                op: "chown",
                path: path.to_path_buf(),
                source,
            }
        })?;
        changed = true;
    }
    if recursive && meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| SecurityError::Io {
            op: "read dir",
            path: path.to_path_buf(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| SecurityError::Io {
                op: "read dir",
                path: path.to_path_buf(),
                source,
            })?;
            changed |= chown_tree(&e.path(), uid, gid, true)?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults_for;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn chown_is_idempotent_and_skips_missing() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        fs::create_dir_all(root.path("/var/lib/etcd")).unwrap();
        fs::create_dir_all(root.path("/etc/kubernetes/pki/etcd")).unwrap();
        fs::write(root.path("/etc/kubernetes/pki/etcd/server.key"), "k").unwrap();
        fs::create_dir_all(root.path("/var/lib/etcd/member/snap")).unwrap();
        fs::write(root.path("/var/lib/etcd/member/snap/db"), "d").unwrap();
        let changed = chown_etcd_paths(&root, &spec, 4242, 4343).unwrap();
        assert_eq!(changed, vec![PathBuf::from("/var/lib/etcd")]);
        let key = fs::metadata(root.path("/etc/kubernetes/pki/etcd/server.key")).unwrap();
        assert_eq!(key.uid(), 0, "keys stay root-owned (CIS 1.1.19)");
        let m = fs::metadata(root.path("/var/lib/etcd")).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4343));
        let db = fs::metadata(root.path("/var/lib/etcd/member/snap/db")).unwrap();
        assert_eq!(
            (db.uid(), db.gid()),
            (4242, 4343),
            "data dir chowned recursively"
        );
        let dir = fs::metadata(root.path("/etc/kubernetes/pki/etcd")).unwrap();
        assert_eq!(dir.uid(), 0, "the etcd certs dir stays root-owned");
        assert!(chown_etcd_paths(&root, &spec, 4242, 4343)
            .unwrap()
            .is_empty());
    }

    /// etcd's keys stay root:root (CIS 1.1.19) with an ACL read grant for the etcd user; a key
    /// an older plinth chowned to etcd comes back to root; a second run changes nothing.
    #[test]
    fn etcd_keys_are_root_owned_with_an_acl_read_grant() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        let dir = root.path("/etc/kubernetes/pki/etcd");
        fs::create_dir_all(&dir).unwrap();
        for k in ["server.key", "peer.key"] {
            fs::write(dir.join(k), "k").unwrap();
            fs::set_permissions(dir.join(k), fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::os::unix::fs::lchown(dir.join("peer.key"), Some(4242), Some(4343)).unwrap();
        let changed = grant_etcd_keys(&root, &spec, 4242, 4343).unwrap();
        if matches!(changed.first(), Some(KeyAccess::OwnedFallback(_))) {
            eprintln!("skipped: no ACL support here");
            return;
        }
        assert_eq!(changed.len(), 2, "{changed:?}");
        for k in ["server.key", "peer.key"] {
            let p = dir.join(k);
            let m = fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (0, 0), "{k}");
            assert_eq!(crate::acl::logical_mode(&p, &m), 0o600, "{k}");
            let acl = crate::acl::get(&p).unwrap().expect("ACL");
            assert_eq!(acl.user_perm(4242), Some(crate::acl::READ), "{k}");
            assert_eq!(acl.users.len(), 1, "{k}: only the etcd user");
        }
        assert!(grant_etcd_keys(&root, &spec, 4242, 4343)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn creates_user_under_prefix_idempotently() {
        if !nix::unistd::Uid::effective().is_root() || which("useradd").is_none() {
            eprintln!("skipped: needs root and useradd");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(etc.join("group"), "root:x:0:\n").unwrap();
        fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        fs::write(etc.join("gshadow"), "root:*::\n").unwrap();
        for f in ["login.defs"] {
            if let Ok(t) = fs::read_to_string(Path::new("/etc").join(f)) {
                fs::write(etc.join(f), t).unwrap();
            }
        }
        let (uid, gid) = ensure_user_in(Some(d.path())).unwrap();
        assert!(uid > 0 && gid > 0);
        let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
        let line = passwd.lines().find(|l| l.starts_with("etcd:")).unwrap();
        assert!(line.ends_with(":/usr/sbin/nologin"), "{line}");
        assert_eq!(ensure_user_in(Some(d.path())).unwrap(), (uid, gid));
        assert_eq!(passwd.matches("etcd:").count(), 1);
    }

    fn which(p: &str) -> Option<PathBuf> {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(p))
            .find(|p| p.exists())
    }
}
