//! The dedicated `etcd` system user of the `cis` security profile and the ownership of the
//! paths etcd needs to write or read as that user.
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
    #[error("running {command}: {source}")]
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
    /// A path could not be inspected or chowned.
    #[error("{op} {}: {source}", path.display())]
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

/// The host paths etcd owns under the `cis` profile: its data dir and its two private keys.
/// The certificates dir and `etcd/` dir stay root-owned.
pub fn etcd_owned_paths(spec: &ClusterSpec) -> Vec<PathBuf> {
    let Etcd::Local(local) = &spec.etcd else {
        return Vec::new();
    };
    let pki = Path::new(&spec.certificates_dir);
    vec![
        PathBuf::from(&local.data_dir),
        pki.join("etcd/server.key"),
        pki.join("etcd/peer.key"),
    ]
}

/// Gives `uid:gid` the etcd data dir (recursively: data left by an etcd that ran as root must
/// stay readable) and `etcd/server.key`, `etcd/peer.key` (modes are not changed; symlinks
/// are not followed). Paths are host paths opened through `root`; missing ones are skipped
/// with a warning (the certs phase has not run yet). Returns the host paths whose owner
/// changed (the data dir once for anything under it; empty on a second run). Nothing to do
/// for external etcd.
pub fn chown_etcd_paths(
    root: &HostRoot,
    spec: &ClusterSpec,
    uid: u32,
    gid: u32,
) -> Result<Vec<PathBuf>, SecurityError> {
    let mut changed = Vec::new();
    for (i, host) in etcd_owned_paths(spec).into_iter().enumerate() {
        let local = root.path(&host);
        if std::fs::symlink_metadata(&local).is_err() {
            tracing::warn!(path = %host.display(), "etcd path missing; not chowned");
            continue;
        }
        let recursive = i == 0;
        if chown_tree(&local, uid, gid, recursive)? {
            changed.push(host);
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
        assert_eq!(
            changed,
            vec![
                PathBuf::from("/var/lib/etcd"),
                PathBuf::from("/etc/kubernetes/pki/etcd/server.key")
            ]
        );
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
