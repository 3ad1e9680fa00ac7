//! Bind mounts in the container's private mount namespace, without ever creating anything on
//! the host filesystem.
//!
//! A mount is needed only when the container must see a path somewhere else than the host
//! does (`source != target`) or read-only; otherwise the host process simply sees the host path
//! and no namespace is created.
//!
//! When a target does not exist (under `--root`, `/etc/kubernetes/pki` usually does not exist
//! on the real host), the runtime does what bubblewrap does, inside the private namespace only:
//!
//! 1. find the deepest existing ancestor `A` of the target (never `/`: that is an error);
//! 2. open `A` with `O_PATH` (the descriptor keeps naming the *original* directory after it
//!    is covered) and list its entries;
//! 3. mount a tmpfs on `A` (same mode and owner), recreate every entry in it — an empty
//!    directory or file as a mount point, a symlink with the same target — and bind-mount each
//!    original entry back from `/proc/self/fd/<fd>/<entry>` (`MS_BIND|MS_REC`, so submounts
//!    and mount flags are kept);
//! 4. create the missing path inside the tmpfs and bind the source there.
//!
//! Several mounts under the same ancestor shadow it once: directories the runtime created in
//! its own tmpfs are remembered and used directly. Sources are opened (`O_PATH`, right after
//! `unshare`, as bind mounts only take sources from the own namespace) before any
//! mount is made, so later mounts can never change what an earlier source names. Every
//! `mkdir`/`create` happens in a tmpfs mounted in the private namespace; the namespace is
//! `MS_REC|MS_SLAVE`, so none of it propagates to the host, and it all vanishes with the
//! container.
//!
//! The path logic ([`normalize_target`], [`plan_target`], [`how_to_create`], [`mount_order`], ...) is pure and
//! unit-tested; [`setup`] performs it and is only called by container-init.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::FsFlags;

use crate::runtime::Mount;

/// Errors planning or performing the container's mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount target is not a usable container path.
    #[error("mount target {target}: {reason}")]
    InvalidTarget {
        /// The target (`mountPath`).
        target: PathBuf,
        /// What is wrong and what is allowed.
        reason: &'static str,
    },
    /// Creating the target would need a tmpfs over `/`.
    #[error(
        "mount target {target}: its top-level directory does not exist, and / itself cannot be \
         shadowed; use a mountPath below an existing top-level directory"
    )]
    ShadowRoot {
        /// The target.
        target: PathBuf,
    },
    /// An existing ancestor of the target is not a directory.
    #[error("mount target {target}: {path} exists and is not a directory")]
    NotADirectory {
        /// The existing non-directory.
        path: PathBuf,
        /// The target.
        target: PathBuf,
    },
    /// The target exists with a kind the source cannot be mounted on.
    #[error(
        "mount {source_path} on {target}: source is a {source_kind}, target is a {target_kind}"
    )]
    KindMismatch {
        /// The source.
        source_path: PathBuf,
        /// The target.
        target: PathBuf,
        /// "directory" or "file".
        source_kind: &'static str,
        /// "directory" or "file".
        target_kind: &'static str,
    },
    /// An OS operation failed.
    #[error("{op} {path}")]
    Os {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn os<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MountError + 'a {
    move |source| MountError::Os {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_os<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> MountError + 'a {
    move |e| MountError::Os {
        op,
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

/// What is at a path (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// A directory.
    Dir,
    /// Anything else (file, socket, device, ...): mounted on a file.
    File,
}

impl FsKind {
    fn name(self) -> &'static str {
        match self {
            FsKind::Dir => "directory",
            FsKind::File => "file",
        }
    }
}

/// True if `m` needs the container's private mount namespace.
pub fn needs_namespace(m: &Mount) -> bool {
    m.source != m.target || m.read_only
}

/// The mounts to perform, in order: only those that need a namespace, parents before children
/// (stable by depth, as containerd sorts them).
pub fn mount_order(mounts: &[Mount]) -> Vec<&Mount> {
    let mut v: Vec<&Mount> = mounts.iter().filter(|m| needs_namespace(m)).collect();
    v.sort_by_key(|m| m.target.components().count());
    v
}

/// Checks a target is an absolute path other than `/` without `..`, and returns it
/// normalised (no `.` components, no repeated or trailing slashes).
pub fn normalize_target(target: &Path) -> Result<PathBuf, MountError> {
    let invalid = |reason| MountError::InvalidTarget {
        target: target.to_path_buf(),
        reason,
    };
    if !target.is_absolute() {
        return Err(invalid("must be an absolute path"));
    }
    let mut out = PathBuf::from("/");
    for c in target.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid("must not contain \"..\""))
            }
        }
    }
    if out.parent().is_none() {
        return Err(invalid("must not be / itself"));
    }
    Ok(out)
}

/// How a target is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPlan {
    /// The target exists (with this kind): mount on it directly.
    Exists(FsKind),
    /// The target is missing: `ancestor` is its deepest existing ancestor (a directory) and
    /// `missing` the components to create below it (the last one is the mount point).
    Create {
        /// Deepest existing ancestor.
        ancestor: PathBuf,
        /// Components to create, in order.
        missing: Vec<OsString>,
    },
}

/// Plans how to reach `target`, given `lookup` (what exists, symlinks followed).
pub fn plan_target(
    target: &Path,
    lookup: &dyn Fn(&Path) -> Option<FsKind>,
) -> Result<TargetPlan, MountError> {
    let target = &normalize_target(target)?;
    if let Some(kind) = lookup(target) {
        return Ok(TargetPlan::Exists(kind));
    }
    let mut missing: Vec<OsString> = Vec::new();
    let mut cur: &Path = target;
    loop {
        // normalize_target guarantees a file name and a parent until "/".
        let (Some(name), Some(parent)) = (cur.file_name(), cur.parent()) else {
            return Err(MountError::ShadowRoot {
                target: target.to_path_buf(),
            });
        };
        missing.push(name.to_os_string());
        match lookup(parent) {
            Some(FsKind::Dir) => {
                missing.reverse();
                return Ok(TargetPlan::Create {
                    ancestor: parent.to_path_buf(),
                    missing,
                });
            }
            Some(FsKind::File) => {
                return Err(MountError::NotADirectory {
                    path: parent.to_path_buf(),
                    target: target.to_path_buf(),
                })
            }
            None => cur = parent,
        }
    }
}

/// Where missing components get created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateHow {
    /// The ancestor is already a directory in one of our tmpfs shadows: create in it.
    InOwnTmpfs,
    /// The ancestor is a host directory: shadow it with a tmpfs first.
    Shadow(PathBuf),
}

/// Decides whether `ancestor` (canonical) must be shadowed; `ours` holds the directories that
/// live in our own tmpfs shadows.
pub fn how_to_create(
    ancestor: &Path,
    ours: &BTreeSet<PathBuf>,
    target: &Path,
) -> Result<CreateHow, MountError> {
    if ours.contains(ancestor) {
        return Ok(CreateHow::InOwnTmpfs);
    }
    if ancestor.parent().is_none() {
        return Err(MountError::ShadowRoot {
            target: target.to_path_buf(),
        });
    }
    Ok(CreateHow::Shadow(ancestor.to_path_buf()))
}

/// Mount flags for the read-only remount of a bind mount, keeping the flags the kernel
/// reports for it (a remount that drops e.g. `nosuid` would be refused or would widen access).
pub fn readonly_remount_flags(current: FsFlags) -> MsFlags {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let keep = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    for (st, ms) in keep {
        if current.contains(st) {
            flags |= ms;
        }
    }
    flags
}

/// The tmpfs options that give the shadow the original directory's mode and owner.
pub fn tmpfs_options(mode: u32, uid: u32, gid: u32) -> String {
    format!("mode={:o},uid={uid},gid={gid}", mode & 0o7777)
}

/// One entry of a shadowed directory and how it is recreated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowEntry {
    /// A directory: empty directory + recursive bind of the original.
    Dir(OsString),
    /// A non-directory: empty file + bind of the original.
    File(OsString),
    /// A symlink: recreated with the same target (no bind).
    Symlink(OsString, PathBuf),
}

fn lookup(path: &Path) -> Option<FsKind> {
    fs::metadata(path).ok().map(|m| {
        if m.is_dir() {
            FsKind::Dir
        } else {
            FsKind::File
        }
    })
}

/// An opened mount source: its descriptor (naming what the host path named before any mount)
/// and kind.
struct Source {
    fd: OwnedFd,
    kind: FsKind,
}

fn open_path(path: &Path, dir: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if dir {
        flags |= libc::O_DIRECTORY;
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

fn fd_path(fd: &OwnedFd, entry: Option<&std::ffi::OsStr>) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if let Some(e) = entry {
        p.push(e);
    }
    p
}

fn bind(src: &Path, dst: &Path) -> Result<(), MountError> {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_os("bind-mount onto", dst))
}

/// Performs the container's mounts. Returns `false` (and does nothing) when no mount needs a
/// private namespace. Must run single-threaded (it calls `unshare(CLONE_NEWNS)`).
pub fn setup(mounts: &[Mount]) -> Result<bool, MountError> {
    let order = mount_order(mounts);
    if order.is_empty() {
        return Ok(false);
    }
    let targets = order
        .iter()
        .map(|m| normalize_target(&m.target))
        .collect::<Result<Vec<PathBuf>, MountError>>()?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(nix_os("unshare mount namespace for", Path::new("/")))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(nix_os("make mounts slave (rec)", Path::new("/")))?;

    // Open every source before anything is mounted (after unshare: bind mounts only take
    // sources from the caller's own mount namespace).
    let mut sources = Vec::with_capacity(order.len());
    for m in &order {
        let meta = fs::metadata(&m.source).map_err(os("mount source", &m.source))?;
        let kind = if meta.is_dir() {
            FsKind::Dir
        } else {
            FsKind::File
        };
        let fd = open_path(&m.source, false).map_err(os("open mount source", &m.source))?;
        sources.push(Source { fd, kind });
    }

    let mut ours: BTreeSet<PathBuf> = BTreeSet::new();
    for ((m, target), src) in order.iter().zip(&targets).zip(&sources) {
        let point = ensure_target(&m.source, target, src.kind, &mut ours)?;
        bind(&fd_path(&src.fd, None), &point)?;
        // Whatever we created at or below the mount point is now covered.
        ours.retain(|o| !o.starts_with(&point));
        if m.read_only {
            let st = nix::sys::statvfs::statvfs(&point).map_err(nix_os("statvfs", &point))?;
            mount(
                None::<&str>,
                &point,
                None::<&str>,
                readonly_remount_flags(st.flags()),
                None::<&str>,
            )
            .map_err(nix_os("remount read-only", &point))?;
        }
        tracing::debug!(source = %m.source.display(), target = %point.display(), ro = m.read_only, "bind mount");
    }
    Ok(true)
}

/// Makes `target` exist (creating only inside our own tmpfs shadows) and returns the path to
/// mount on.
fn ensure_target(
    source: &Path,
    target: &Path,
    kind: FsKind,
    ours: &mut BTreeSet<PathBuf>,
) -> Result<PathBuf, MountError> {
    match plan_target(target, &lookup)? {
        TargetPlan::Exists(found) => {
            if found != kind {
                return Err(MountError::KindMismatch {
                    source_path: source.to_path_buf(),
                    target: target.to_path_buf(),
                    source_kind: kind.name(),
                    target_kind: found.name(),
                });
            }
            fs::canonicalize(target).map_err(os("resolve", target))
        }
        TargetPlan::Create { ancestor, missing } => {
            let ancestor = fs::canonicalize(&ancestor).map_err(os("resolve", &ancestor))?;
            match how_to_create(&ancestor, ours, target)? {
                CreateHow::Shadow(a) => {
                    shadow(&a)?;
                    ours.insert(a);
                }
                CreateHow::InOwnTmpfs => {}
            }
            let mut p = ancestor;
            for (i, comp) in missing.iter().enumerate() {
                // Invariant: we only ever create inside our own tmpfs.
                if !ours.contains(&p) {
                    return Err(MountError::Os {
                        op: "refusing to create outside the private tmpfs",
                        path: p.join(comp),
                        source: io::Error::from(io::ErrorKind::PermissionDenied),
                    });
                }
                p.push(comp);
                let last = i + 1 == missing.len();
                if last && kind == FsKind::File {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&p)
                        .map_err(os("create mount point", &p))?;
                } else {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&p)
                        .map_err(os("create mount point", &p))?;
                    if !last {
                        ours.insert(p.clone());
                    }
                }
            }
            Ok(p)
        }
    }
}

fn list_entries(dir: &Path) -> Result<Vec<ShadowEntry>, MountError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(os("list", dir))? {
        let entry = entry.map_err(os("list", dir))?;
        let name = entry.file_name();
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(os("stat", &entry.path())(e)),
        };
        if ft.is_symlink() {
            let to = fs::read_link(entry.path()).map_err(os("read link", &entry.path()))?;
            out.push(ShadowEntry::Symlink(name, to));
        } else if ft.is_dir() {
            out.push(ShadowEntry::Dir(name));
        } else {
            out.push(ShadowEntry::File(name));
        }
    }
    Ok(out)
}

/// Covers directory `a` with a tmpfs that shows the same entries (bound back from the
/// original), so new paths can be created in it without touching the host.
fn shadow(a: &Path) -> Result<(), MountError> {
    let meta = fs::metadata(a).map_err(os("stat", a))?;
    let orig = open_path(a, true).map_err(os("open", a))?;
    let entries = list_entries(a)?;
    mount(
        Some("tmpfs"),
        a,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(tmpfs_options(meta.mode(), meta.uid(), meta.gid()).as_str()),
    )
    .map_err(nix_os("mount shadow tmpfs on", a))?;
    for e in &entries {
        match e {
            ShadowEntry::Symlink(name, to) => {
                let dst = a.join(name);
                std::os::unix::fs::symlink(to, &dst).map_err(os("recreate symlink", &dst))?;
            }
            ShadowEntry::Dir(name) => {
                let dst = a.join(name);
                fs::create_dir(&dst).map_err(os("create mount point", &dst))?;
                bind_back(&orig, name, &dst)?;
            }
            ShadowEntry::File(name) => {
                let dst = a.join(name);
                fs::File::create(&dst).map_err(os("create mount point", &dst))?;
                bind_back(&orig, name, &dst)?;
            }
        }
    }
    tracing::debug!(dir = %a.display(), entries = entries.len(), "shadowed with tmpfs");
    Ok(())
}

fn bind_back(orig: &OwnedFd, name: &std::ffi::OsStr, dst: &Path) -> Result<(), MountError> {
    match bind(&fd_path(orig, Some(name)), dst) {
        // The entry vanished on the host since it was listed: leave the empty placeholder.
        Err(MountError::Os { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mnt(src: &str, dst: &str, ro: bool) -> Mount {
        Mount {
            source: src.into(),
            target: dst.into(),
            read_only: ro,
        }
    }

    fn fake(entries: &[(&str, FsKind)]) -> impl Fn(&Path) -> Option<FsKind> {
        let map: BTreeMap<PathBuf, FsKind> = entries
            .iter()
            .map(|(p, k)| (PathBuf::from(p), *k))
            .collect();
        move |p: &Path| map.get(p).copied()
    }

    #[test]
    fn only_relocated_or_readonly_mounts_need_a_namespace() {
        assert!(!needs_namespace(&mnt("/etc/k", "/etc/k", false)));
        assert!(needs_namespace(&mnt("/etc/k", "/etc/k", true)));
        assert!(needs_namespace(&mnt("/r/etc/k", "/etc/k", false)));
        let ms = [
            mnt("/r/a/b/c", "/a/b/c", false),
            mnt("/same", "/same", false),
            mnt("/r/a", "/a", true),
            mnt("/r/x/y", "/x/y", false),
        ];
        let order: Vec<&Path> = mount_order(&ms)
            .iter()
            .map(|m| m.target.as_path())
            .collect();
        assert_eq!(
            order,
            vec![Path::new("/a"), Path::new("/x/y"), Path::new("/a/b/c")]
        );
    }

    #[test]
    fn targets_must_be_absolute_normalised_and_not_root() {
        for bad in ["relative/x", "/a/../b", "/", "//"] {
            let err = normalize_target(Path::new(bad)).unwrap_err().to_string();
            assert!(err.contains("mount target"), "{bad}: {err}");
        }
        assert_eq!(
            normalize_target(Path::new("/etc/./kubernetes//pki/")).unwrap(),
            Path::new("/etc/kubernetes/pki")
        );
    }

    #[test]
    fn existing_targets_are_mounted_directly() {
        let look = fake(&[
            ("/", FsKind::Dir),
            ("/etc", FsKind::Dir),
            ("/etc/hosts", FsKind::File),
        ]);
        assert_eq!(
            plan_target(Path::new("/etc/hosts"), &look).unwrap(),
            TargetPlan::Exists(FsKind::File)
        );
    }

    #[test]
    fn missing_targets_find_the_deepest_existing_ancestor() {
        let look = fake(&[("/", FsKind::Dir), ("/etc", FsKind::Dir)]);
        assert_eq!(
            plan_target(Path::new("/etc/kubernetes/pki"), &look).unwrap(),
            TargetPlan::Create {
                ancestor: PathBuf::from("/etc"),
                missing: vec!["kubernetes".into(), "pki".into()],
            }
        );
        let look = fake(&[
            ("/", FsKind::Dir),
            ("/etc", FsKind::Dir),
            ("/etc/kubernetes", FsKind::Dir),
        ]);
        assert_eq!(
            plan_target(Path::new("/etc/kubernetes/pki"), &look).unwrap(),
            TargetPlan::Create {
                ancestor: PathBuf::from("/etc/kubernetes"),
                missing: vec!["pki".into()],
            }
        );
    }

    #[test]
    fn a_file_on_the_way_is_an_error_naming_it() {
        let look = fake(&[
            ("/", FsKind::Dir),
            ("/etc", FsKind::Dir),
            ("/etc/hosts", FsKind::File),
        ]);
        let err = plan_target(Path::new("/etc/hosts/x"), &look).unwrap_err();
        assert!(
            matches!(&err, MountError::NotADirectory { path, .. } if path == Path::new("/etc/hosts")),
            "{err}"
        );
    }

    #[test]
    fn missing_top_level_dirs_would_need_root_shadowing() {
        let look = fake(&[("/", FsKind::Dir)]);
        let plan = plan_target(Path::new("/nonexistent/x"), &look).unwrap();
        let TargetPlan::Create { ancestor, .. } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(ancestor, Path::new("/"));
        let err =
            how_to_create(&ancestor, &BTreeSet::new(), Path::new("/nonexistent/x")).unwrap_err();
        assert!(matches!(err, MountError::ShadowRoot { .. }));
        assert!(err.to_string().contains("/nonexistent/x"));
    }

    #[test]
    fn shadow_once_then_create_in_own_tmpfs() {
        let mut ours = BTreeSet::new();
        assert_eq!(
            how_to_create(Path::new("/etc"), &ours, Path::new("/etc/a/b")).unwrap(),
            CreateHow::Shadow(PathBuf::from("/etc"))
        );
        ours.insert(PathBuf::from("/etc"));
        ours.insert(PathBuf::from("/etc/a"));
        assert_eq!(
            how_to_create(Path::new("/etc/a"), &ours, Path::new("/etc/a/c")).unwrap(),
            CreateHow::InOwnTmpfs
        );
        // A host directory bound back inside the shadow is shadowed in turn.
        assert_eq!(
            how_to_create(Path::new("/etc/ssl"), &ours, Path::new("/etc/ssl/x")).unwrap(),
            CreateHow::Shadow(PathBuf::from("/etc/ssl"))
        );
    }

    #[test]
    fn readonly_remount_keeps_existing_restrictions() {
        let f =
            readonly_remount_flags(FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_RELATIME);
        assert!(f.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT | MsFlags::MS_BIND));
        assert!(f.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME));
        assert!(!f.contains(MsFlags::MS_NOEXEC));
        let plain = readonly_remount_flags(FsFlags::empty());
        assert_eq!(
            plain,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn tmpfs_keeps_mode_and_owner() {
        assert_eq!(tmpfs_options(0o40755, 0, 0), "mode=755,uid=0,gid=0");
        assert_eq!(tmpfs_options(0o41777, 5, 6), "mode=1777,uid=5,gid=6");
    }

    #[test]
    fn entries_are_classified_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink("d", dir.path().join("l")).unwrap();
        let mut entries = list_entries(dir.path()).unwrap();
        entries.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        assert_eq!(
            entries,
            vec![
                ShadowEntry::Dir("d".into()),
                ShadowEntry::File("f".into()),
                ShadowEntry::Symlink("l".into(), PathBuf::from("d")),
            ]
        );
    }

    #[test]
    fn no_mounts_needed_means_no_namespace() {
        assert!(!setup(&[mnt("/etc", "/etc", false)]).unwrap());
        assert!(!setup(&[]).unwrap());
    }
}
