//! Temporary host roots (what `plinth --root DIR` points at) and tree snapshots, for checks such
//! as "reset leaves the root exactly as it was, except for what plinth did not create" or "a
//! second run changes no byte and no mtime". The one way tests snapshot a tree.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// A temporary directory used as a host root; removed on drop.
#[derive(Debug)]
pub struct TempRoot {
    dir: tempfile::TempDir,
}

/// One entry of a [`TempRoot::snapshot`]: path relative to the root, permission bits, the
/// content's sha256 (`dir` for directories, `symlink:<target>` for symlinks) and, for regular
/// files, the modification time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TreeEntry {
    /// Path relative to the root, `/`-separated, no leading slash.
    pub path: String,
    /// Mode bits (`& 0o7777`).
    pub mode: u32,
    /// Hex sha256 of a file's content, `dir`, or `symlink:<target>`.
    pub sha256: String,
    /// A regular file's mtime (a rewrite with the same bytes still shows); `None` for
    /// directories (their mtime follows every entry added or removed) and symlinks.
    pub mtime: Option<SystemTime>,
}

impl TreeEntry {
    /// True for a regular file (not a directory or symlink).
    pub fn is_file(&self) -> bool {
        self.mtime.is_some()
    }
}

impl TempRoot {
    /// A new empty root under the system temp dir.
    pub fn new() -> io::Result<TempRoot> {
        Ok(TempRoot {
            dir: tempfile::Builder::new().prefix("plinth-root-").tempdir()?,
        })
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Maps a host path (`/etc/kubernetes/pki`) to its place under this root, the way
    /// `plinth::fs::HostRoot::path` does for `--root`.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        self.host_root().path(host_path)
    }

    /// The same root as plinth's own type.
    pub fn host_root(&self) -> plinth::fs::HostRoot {
        plinth::fs::HostRoot::new(Some(self.dir.path()))
    }

    /// Writes `contents` at `host_path` under the root with `mode`, creating parent dirs.
    pub fn write(
        &self,
        host_path: impl AsRef<Path>,
        contents: &[u8],
        mode: u32,
    ) -> io::Result<PathBuf> {
        let p = self.path(host_path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, contents)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(p)
    }

    /// Every entry under the root (not the root itself), sorted by path.
    pub fn snapshot(&self) -> io::Result<Vec<TreeEntry>> {
        snapshot_dir(self.dir.path())
    }

    /// Like [`TempRoot::snapshot`], but the directories in `skip` (paths relative to the root,
    /// e.g. `var/log`) are listed without descending into them: for trees whose content
    /// legitimately changes while something runs (logs, state, a database) and whose files may
    /// vanish mid-walk.
    pub fn snapshot_excluding(&self, skip: &[&str]) -> io::Result<Vec<TreeEntry>> {
        let mut out = Vec::new();
        walk_skipping(self.dir.path(), self.dir.path(), skip, &mut out)?;
        out.sort();
        Ok(out)
    }
}

/// Snapshot of an arbitrary directory tree (see [`TreeEntry`]); symlinks are not followed.
pub fn snapshot_dir(root: &Path) -> io::Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<TreeEntry>) -> io::Result<()> {
    walk_skipping(root, dir, &[], out)
}

fn walk_skipping(
    root: &Path,
    dir: &Path,
    skip: &[&str],
    out: &mut Vec<TreeEntry>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let meta = fs::symlink_metadata(&p)?;
        let rel = p
            .strip_prefix(root)
            .map_err(io::Error::other)?
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&p)?;
            out.push(TreeEntry {
                path: rel,
                mode,
                sha256: format!("symlink:{}", target.display()),
                mtime: None,
            });
        } else if ft.is_dir() {
            let descend = !skip.contains(&rel.as_str());
            out.push(TreeEntry {
                path: rel,
                mode,
                sha256: "dir".into(),
                mtime: None,
            });
            if descend {
                walk_skipping(root, &p, skip, out)?;
            }
        } else {
            let data = fs::read(&p)?;
            out.push(TreeEntry {
                path: rel,
                mode,
                sha256: hex::encode(Sha256::digest(&data)),
                mtime: Some(meta.modified()?),
            });
        }
    }
    Ok(())
}

/// A readable difference between two snapshots (`+ added`, `- removed`, `~ changed`: content,
/// mode or a file's mtime), one line per path; empty when they are equal. Use it as the
/// assertion message.
pub fn diff_snapshots(before: &[TreeEntry], after: &[TreeEntry]) -> String {
    use std::collections::BTreeMap;
    let b: BTreeMap<&str, &TreeEntry> = before.iter().map(|e| (e.path.as_str(), e)).collect();
    let a: BTreeMap<&str, &TreeEntry> = after.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut lines = Vec::new();
    for (p, e) in &b {
        match a.get(p) {
            None => lines.push(format!("- {p} ({:o})", e.mode)),
            Some(n) if n != e => lines.push(format!(
                "~ {p} (mode {:o} -> {:o}, {} -> {}{})",
                e.mode,
                n.mode,
                e.sha256,
                n.sha256,
                if n.mtime != e.mtime {
                    ", mtime changed"
                } else {
                    ""
                }
            )),
            _ => {}
        }
    }
    for (p, e) in &a {
        if !b.contains_key(p) {
            lines.push(format!("+ {p} ({:o})", e.mode));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_maps_host_paths_under_the_root_like_hostroot() {
        let r = TempRoot::new().unwrap();
        assert_eq!(
            r.path("/etc/kubernetes/pki/ca.crt"),
            r.dir().join("etc/kubernetes/pki/ca.crt")
        );
        assert_eq!(
            r.path("/etc/kubernetes/pki/ca.crt"),
            r.host_root().path("/etc/kubernetes/pki/ca.crt")
        );
    }

    #[test]
    fn snapshot_sees_content_mode_and_additions() {
        let r = TempRoot::new().unwrap();
        r.write("/etc/a.conf", b"one", 0o600).unwrap();
        r.write("/var/lib/x/b", b"two", 0o644).unwrap();
        let s1 = r.snapshot().unwrap();
        let paths: Vec<&str> = s1.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/a.conf",
                "var",
                "var/lib",
                "var/lib/x",
                "var/lib/x/b"
            ]
        );
        let a = s1.iter().find(|e| e.path == "etc/a.conf").unwrap();
        assert_eq!(a.mode, 0o600);
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"one")));
        assert_eq!(diff_snapshots(&s1, &r.snapshot().unwrap()), "");

        fs::set_permissions(r.path("/etc/a.conf"), fs::Permissions::from_mode(0o644)).unwrap();
        r.write("/etc/new", b"", 0o600).unwrap();
        fs::remove_file(r.path("/var/lib/x/b")).unwrap();
        let d = diff_snapshots(&s1, &r.snapshot().unwrap());
        assert!(d.contains("~ etc/a.conf (mode 600 -> 644"), "{d}");
        assert!(d.contains("+ etc/new"), "{d}");
        assert!(d.contains("- var/lib/x/b"), "{d}");
    }

    #[test]
    fn snapshot_sees_a_same_content_rewrite_of_a_file_by_its_mtime() {
        let r = TempRoot::new().unwrap();
        let p = r.write("/etc/a.conf", b"one", 0o600).unwrap();
        let s1 = r.snapshot().unwrap();
        let files: Vec<&str> = s1
            .iter()
            .filter(|e| e.is_file())
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(files, ["etc/a.conf"]);
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let s2 = r.snapshot().unwrap();
        assert_ne!(s1, s2);
        let d = diff_snapshots(&s1, &s2);
        assert!(
            d.starts_with("~ etc/a.conf (mode 600 -> 600") && d.ends_with(", mtime changed)"),
            "{d}"
        );
        assert_eq!(d.lines().count(), 1, "{d}");
    }

    #[test]
    fn snapshot_excluding_lists_skipped_dirs_without_their_content() {
        let r = TempRoot::new().unwrap();
        r.write("/etc/a.conf", b"one", 0o600).unwrap();
        r.write("/var/log/x/y.log", b"log", 0o644).unwrap();
        let s1 = r.snapshot_excluding(&["var/log"]).unwrap();
        let paths: Vec<&str> = s1.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["etc", "etc/a.conf", "var", "var/log"]);
        r.write("/var/log/x/y.log", b"more log", 0o644).unwrap();
        assert_eq!(s1, r.snapshot_excluding(&["var/log"]).unwrap());
        r.write("/etc/a.conf", b"two", 0o600).unwrap();
        assert_ne!(s1, r.snapshot_excluding(&["var/log"]).unwrap());
    }
}
