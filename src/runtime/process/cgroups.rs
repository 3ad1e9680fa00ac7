//! cgroups for containers: tracking (which processes belong to a container), whole-tree kill,
//! and resource limits.
//!
//! Layout: `<hierarchy>/<base>/<pod_uid>/<container>-<restart>` where `<base>` is the runtime's
//! `cgroup_parent`: a relative parent (default `plinth`) is placed under the cgroup the agent
//! itself runs in, per hierarchy (so a sandboxed or delegated agent stays inside its own
//! subtree); an absolute parent (`/plinth`) is placed under the hierarchy root.
//!
//! Hierarchies are found through `/proc/self/mountinfo` and `/proc/self/cgroup`, so pure cgroup
//! v2, hybrid (v1 controllers + cgroup2 at e.g. `/sys/fs/cgroup/unified`) and pure v1 hosts all
//! work. The cgroup2 hierarchy, when mounted, tracks every container (and gives `cgroup.kill`);
//! without it a v1 `freezer` (preferred: freeze, kill, thaw) or `pids` hierarchy tracks it.
//! Resources go to v2 controller files when those controllers can be enabled down to the
//! container, else to the v1 `memory` / `cpu` hierarchies, else they are noted and ignored.
//! When no hierarchy is visible (e.g. under `ip netns exec`, which remounts `/sys`), the runtime
//! degrades to process-group signalling.
//!
//! Parsing, path building and resource → file-value mapping are pure and unit-tested.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::FsError;
use crate::runtime::Resources;

use super::procfs;

/// Errors from cgroup naming and file operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The configured cgroup parent is unusable.
    #[error("cgroup parent {value:?}: {reason}")]
    InvalidParent {
        /// The configured value.
        value: String,
        /// Why it is rejected and what is allowed.
        reason: String,
    },
    /// A name that becomes a cgroup path component is unusable.
    #[error("{field} {value:?}: {reason}")]
    InvalidName {
        /// Which field (pod uid, container name).
        field: &'static str,
        /// The value.
        value: String,
        /// Why it is rejected and what is allowed.
        reason: &'static str,
    },
    /// A cgroup file or directory operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// The v1 controllers the kernel knows (used to read controller sets out of mount options).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The CFS period the runtime uses (the kernel's and the kubelet's default), in µs.
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kubelet sets, in µs.
pub const MIN_CFS_QUOTA_US: u64 = 1_000;

/// One mounted cgroup hierarchy and where this process sits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// The hierarchy path mounted there (mountinfo field 4; `/` unless bind-mounted/namespaced).
    pub mount_root: PathBuf,
    /// This process's cgroup in the hierarchy (from `/proc/self/cgroup`).
    pub own: PathBuf,
    /// v1: the controllers bound to it (or `name=...`); v2: empty.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// The directory of hierarchy path `cg` (absolute inside the hierarchy), if this mount
    /// shows it.
    pub fn dir_of(&self, cg: &Path) -> Option<PathBuf> {
        let rel = cg.strip_prefix(&self.mount_root).ok()?;
        Some(self.mount_point.join(rel))
    }

    /// True if the controller `name` is bound to this (v1) hierarchy.
    pub fn has(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }
}

/// The cgroup hierarchies visible to this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The cgroup2 hierarchy, if mounted.
    pub v2: Option<Hierarchy>,
    /// The mounted v1 hierarchies.
    pub v1: Vec<Hierarchy>,
}

/// One line of `/proc/self/mountinfo`, reduced to what is needed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Field 4: the root of the mount within its filesystem.
    pub root: PathBuf,
    /// Field 5: the mount point.
    pub mount_point: PathBuf,
    /// The filesystem type (after the ` - ` separator).
    pub fstype: String,
    /// The super-block options.
    pub super_options: Vec<String>,
}

/// Decodes the octal escapes (`\040` for space, ...) of mountinfo paths.
pub fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`, skipping malformed lines.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 || fields.len() < sep + 4 {
                return None;
            }
            Some(MountInfo {
                root: PathBuf::from(unescape_mountinfo(fields[3])),
                mount_point: PathBuf::from(unescape_mountinfo(fields[4])),
                fstype: fields[sep + 1].to_string(),
                super_options: fields[sep + 3].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// One line of `/proc/self/cgroup`: hierarchy id, controllers (empty for v2), path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for cgroup2).
    pub id: u32,
    /// Controllers (`cpu,cpuacct` → two entries, `name=systemd` kept as is).
    pub controllers: Vec<String>,
    /// The cgroup path.
    pub path: PathBuf,
}

/// Parses `/proc/self/cgroup`, skipping malformed lines.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            if !path.starts_with('/') {
                return None;
            }
            Some(ProcCgroup {
                id,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

impl CgroupLayout {
    /// Reads this process's view of the cgroup hierarchies. Unreadable files give an empty
    /// layout (no cgroups: process-group signalling only).
    pub fn detect() -> CgroupLayout {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        CgroupLayout::parse(&mountinfo, &cgroup)
    }

    /// Builds the layout from the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    /// A hierarchy is kept only if this process's cgroup in it is visible through the mount.
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> CgroupLayout {
        let own = parse_proc_cgroup(proc_cgroup);
        let mut layout = CgroupLayout::default();
        for m in parse_mountinfo(mountinfo) {
            match m.fstype.as_str() {
                "cgroup2" => {
                    if layout.v2.is_some() {
                        continue;
                    }
                    let Some(line) = own.iter().find(|l| l.id == 0 && l.controllers.is_empty())
                    else {
                        continue;
                    };
                    if line.path.starts_with(&m.root) {
                        layout.v2 = Some(Hierarchy {
                            mount_point: m.mount_point,
                            mount_root: m.root,
                            own: line.path.clone(),
                            controllers: Vec::new(),
                        });
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_options
                        .iter()
                        .filter(|o| V1_CONTROLLERS.contains(&o.as_str()) || o.starts_with("name="))
                        .cloned()
                        .collect();
                    if controllers.is_empty()
                        || layout
                            .v1
                            .iter()
                            .any(|h| same_set(&h.controllers, &controllers))
                    {
                        continue;
                    }
                    let Some(line) = own
                        .iter()
                        .find(|l| l.id != 0 && same_set(&l.controllers, &controllers))
                    else {
                        continue;
                    };
                    if line.path.starts_with(&m.root) {
                        layout.v1.push(Hierarchy {
                            mount_point: m.mount_point,
                            mount_root: m.root,
                            own: line.path.clone(),
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// The v1 hierarchy that has `controller`, if mounted.
    pub fn v1_with(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }

    /// True when no hierarchy is visible at all.
    pub fn is_empty(&self) -> bool {
        self.v2.is_none() && self.v1.is_empty()
    }
}

/// The default relative cgroup parent of an agent on `root`: `plinth` for the real root,
/// `plinth-<first 8 hex digits of sha256(root dir)>` otherwise. Pod UIDs depend only on the
/// manifest, the node name and the manifest path, so two agents on different roots (parallel
/// test nodes, lab nodes on one host) can run pods with equal UIDs; a per-root parent keeps
/// one agent's cgroup cleanup from ever killing the other's processes.
pub fn default_parent(root: &crate::fs::HostRoot) -> String {
    if root.is_real_root() {
        return "plinth".to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(root.dir().as_os_str().as_encoded_bytes());
    format!("plinth-{}", hex::encode(&digest[..4]))
}

/// A validated `cgroup_parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupParent {
    /// Absolute (under the hierarchy root) or relative (under the agent's own cgroup).
    pub absolute: bool,
    /// The path components.
    pub components: Vec<String>,
}

impl CgroupParent {
    /// Parses and validates a `cgroup_parent` value such as `plinth` or `/plinth.slice/x`.
    pub fn parse(value: &str) -> Result<CgroupParent, CgroupError> {
        let invalid = |reason: &str| CgroupError::InvalidParent {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let absolute = value.starts_with('/');
        let components: Vec<String> = value
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if components.is_empty() {
            return Err(invalid(
                "must name at least one cgroup below the agent's own (e.g. \"plinth\") or below the root (e.g. \"/plinth\")",
            ));
        }
        for c in &components {
            check_component(c).map_err(|reason| invalid(&format!("component {c:?}: {reason}")))?;
        }
        Ok(CgroupParent {
            absolute,
            components,
        })
    }

    /// The parent's path inside hierarchy `h`.
    pub fn path_in(&self, h: &Hierarchy) -> PathBuf {
        let mut p = if self.absolute {
            PathBuf::from("/")
        } else {
            h.own.clone()
        };
        p.extend(&self.components);
        p
    }

    /// Where controller enabling starts in `h` (the agent's own cgroup or the root).
    pub fn anchor_in(&self, h: &Hierarchy) -> PathBuf {
        if self.absolute {
            PathBuf::from("/")
        } else {
            h.own.clone()
        }
    }
}

fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("must not be empty");
    }
    if c == "." || c == ".." {
        return Err("must not be \".\" or \"..\"");
    }
    if c.contains('/') || c.contains('\0') || c.contains('\n') {
        return Err("must not contain '/', NUL or newline");
    }
    if c.len() > 200 {
        return Err("must be at most 200 bytes");
    }
    Ok(())
}

/// Validates a name that becomes a cgroup path component.
pub fn check_name(field: &'static str, value: &str) -> Result<(), CgroupError> {
    check_component(value).map_err(|reason| CgroupError::InvalidName {
        field,
        value: value.to_string(),
        reason,
    })
}

/// How a v1-only host tracks a container's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracker {
    /// The `freezer` controller: kill is freeze, SIGKILL all, thaw (no fork races).
    Freezer,
    /// The `pids` controller: kill repeats until the cgroup is empty.
    Pids,
}

/// The cgroup directories of one container (whether or not they exist yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerCgroups {
    /// Leaf in the cgroup2 hierarchy.
    pub v2: Option<PathBuf>,
    /// The anchor directory in cgroup2 from which controllers are enabled down to the leaf.
    pub v2_anchor: Option<PathBuf>,
    /// Leaf in the v1 tracking hierarchy (only when there is no cgroup2).
    pub v1_track: Option<(PathBuf, Tracker)>,
    /// Leaf in the v1 memory hierarchy.
    pub v1_memory: Option<PathBuf>,
    /// Leaf in the v1 cpu hierarchy.
    pub v1_cpu: Option<PathBuf>,
}

impl ContainerCgroups {
    /// Computes the directories for container `<pod_uid>/<container>-<restart>`.
    pub fn for_container(
        layout: &CgroupLayout,
        parent: &CgroupParent,
        pod_uid: &str,
        container: &str,
        restart: u32,
    ) -> Result<ContainerCgroups, CgroupError> {
        check_name("pod uid", pod_uid)?;
        check_name("container name", container)?;
        let leaf = |h: &Hierarchy| -> Option<PathBuf> {
            let mut cg = parent.path_in(h);
            cg.push(pod_uid);
            cg.push(format!("{container}-{restart}"));
            h.dir_of(&cg)
        };
        let mut out = ContainerCgroups::default();
        if let Some(h) = &layout.v2 {
            out.v2 = leaf(h);
            out.v2_anchor = h.dir_of(&parent.anchor_in(h));
        }
        if out.v2.is_none() {
            out.v1_track = layout
                .v1_with("freezer")
                .and_then(|h| leaf(h).map(|d| (d, Tracker::Freezer)))
                .or_else(|| {
                    layout
                        .v1_with("pids")
                        .and_then(|h| leaf(h).map(|d| (d, Tracker::Pids)))
                });
        }
        out.v1_memory = layout.v1_with("memory").and_then(leaf);
        out.v1_cpu = layout.v1_with("cpu").and_then(leaf);
        Ok(out)
    }

    /// Every leaf directory that may exist for this container (deduplicated).
    pub fn all_leaves(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        let candidates = [
            self.v2.clone(),
            self.v1_track.as_ref().map(|(d, _)| d.clone()),
            self.v1_memory.clone(),
            self.v1_cpu.clone(),
        ];
        for d in candidates.into_iter().flatten() {
            if !v.contains(&d) {
                v.push(d);
            }
        }
        v
    }

    /// The leaf that tracks the container's processes: cgroup2, else the v1 tracker.
    pub fn tracking_leaf(&self) -> Option<&Path> {
        self.v2
            .as_deref()
            .or(self.v1_track.as_ref().map(|(d, _)| d.as_path()))
    }
}

/// `cpu.shares` for a CPU request (the kubelet's `MilliCPUToShares`: min 2, max 262144).
pub fn cpu_shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).clamp(2, 262_144)
}

/// cgroup2 `cpu.weight` for v1 shares (the conversion runc and the kubelet use).
pub fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The CFS quota (µs per [`CFS_PERIOD_US`]) for a CPU limit, at least [`MIN_CFS_QUOTA_US`].
pub fn cfs_quota_us(limit_millis: u64) -> u64 {
    (limit_millis.saturating_mul(CFS_PERIOD_US) / 1000).max(MIN_CFS_QUOTA_US)
}

/// Which controllers a [`Resources`] value needs.
pub fn needs(res: &Resources) -> (bool, bool) {
    let memory = res.memory_limit_bytes.is_some();
    let cpu = res.cpu_request_millis.is_some() || res.cpu_limit_millis.is_some();
    (memory, cpu)
}

/// cgroup2 memory files for `res`.
pub fn v2_memory_files(res: &Resources) -> Vec<(&'static str, String)> {
    res.memory_limit_bytes
        .map(|b| vec![("memory.max", b.to_string())])
        .unwrap_or_default()
}

/// cgroup2 cpu files for `res`.
pub fn v2_cpu_files(res: &Resources) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(req) = res.cpu_request_millis {
        v.push(("cpu.weight", cpu_weight(cpu_shares(req)).to_string()));
    }
    if let Some(lim) = res.cpu_limit_millis {
        v.push((
            "cpu.max",
            format!("{} {}", cfs_quota_us(lim), CFS_PERIOD_US),
        ));
    }
    v
}

/// cgroup v1 memory files for `res`.
pub fn v1_memory_files(res: &Resources) -> Vec<(&'static str, String)> {
    res.memory_limit_bytes
        .map(|b| vec![("memory.limit_in_bytes", b.to_string())])
        .unwrap_or_default()
}

/// cgroup v1 cpu files for `res` (period before quota, as the kernel validates the pair).
pub fn v1_cpu_files(res: &Resources) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(req) = res.cpu_request_millis {
        v.push(("cpu.shares", cpu_shares(req).to_string()));
    }
    if let Some(lim) = res.cpu_limit_millis {
        v.push(("cpu.cfs_period_us", CFS_PERIOD_US.to_string()));
        v.push(("cpu.cfs_quota_us", cfs_quota_us(lim).to_string()));
    }
    v
}

/// The result of preparing a container's cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The `cgroup.procs` files container-init writes its pid into.
    pub procs_files: Vec<PathBuf>,
    /// What could not be done (logged at info, never fatal).
    pub notes: Vec<String>,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Fs(FsError::io(op, path, source))
}

fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    std::fs::write(&path, value).map_err(io_err("write", &path))
}

fn read_words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Enables `controller` in `cgroup.subtree_control` of `anchor` and every directory between it
/// and `leaf` (exclusive). Returns whether the controller is then available in `leaf`.
fn enable_v2_controller(anchor: &Path, leaf: &Path, controller: &str) -> Result<bool, CgroupError> {
    let Ok(rel) = leaf.strip_prefix(anchor) else {
        return Ok(false);
    };
    let mut dir = anchor.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let subtree = dir.join("cgroup.subtree_control");
        if !read_words(&subtree).iter().any(|c| c == controller) {
            if !read_words(&dir.join("cgroup.controllers"))
                .iter()
                .any(|c| c == controller)
            {
                return Ok(false);
            }
            std::fs::write(&subtree, format!("+{controller}"))
                .map_err(io_err("enable controller in", &subtree))?;
        }
        if i + 1 < comps.len() {
            dir.push(comp);
        }
    }
    Ok(true)
}

fn apply(dir: &Path, files: &[(&'static str, String)]) -> Result<(), CgroupError> {
    for (name, value) in files {
        write_file(dir, name, value)?;
    }
    Ok(())
}

/// Creates the container's cgroups and writes its resource settings. Never fails: whatever
/// cannot be done is returned as a note and the container runs without it.
pub fn prepare(cg: &ContainerCgroups, res: &Resources) -> Prepared {
    let mut out = Prepared::default();
    let (need_mem, need_cpu) = needs(res);
    let mut mem_done = !need_mem;
    let mut cpu_done = !need_cpu;

    if let Some(leaf) = &cg.v2 {
        // Create the parents first, enable controllers top-down, then the leaf.
        let parent_ok = match leaf.parent() {
            Some(p) => std::fs::create_dir_all(p).map_err(io_err("create cgroup", p)),
            None => Ok(()),
        };
        let mut v2_ok = parent_ok.is_ok();
        if let Err(e) = parent_ok {
            out.notes
                .push(format!("cgroup v2 tracking unavailable: {e}"));
        }
        let mut enabled = Vec::new();
        if v2_ok {
            for (want, controller) in [(need_mem, "memory"), (need_cpu, "cpu")] {
                if !want {
                    continue;
                }
                match cg
                    .v2_anchor
                    .as_deref()
                    .map(|a| enable_v2_controller(a, leaf, controller))
                {
                    Some(Ok(true)) => enabled.push(controller),
                    Some(Ok(false)) | None => {}
                    Some(Err(e)) => out.notes.push(format!("cgroup v2 {controller}: {e}")),
                }
            }
            if let Err(e) = std::fs::create_dir_all(leaf).map_err(io_err("create cgroup", leaf)) {
                out.notes
                    .push(format!("cgroup v2 tracking unavailable: {e}"));
                v2_ok = false;
            }
        }
        if v2_ok {
            out.procs_files.push(leaf.join("cgroup.procs"));
            if enabled.contains(&"memory") && leaf.join("memory.max").exists() {
                match apply(leaf, &v2_memory_files(res)) {
                    Ok(()) => mem_done = true,
                    Err(e) => out.notes.push(format!("memory limit not applied: {e}")),
                }
            }
            if enabled.contains(&"cpu") && leaf.join("cpu.max").exists() {
                match apply(leaf, &v2_cpu_files(res)) {
                    Ok(()) => cpu_done = true,
                    Err(e) => out.notes.push(format!("cpu settings not applied: {e}")),
                }
            }
        }
    }

    if let Some((leaf, tracker)) = &cg.v1_track {
        match std::fs::create_dir_all(leaf).map_err(io_err("create cgroup", leaf)) {
            Ok(()) => out.procs_files.push(leaf.join("cgroup.procs")),
            Err(e) => out
                .notes
                .push(format!("cgroup v1 {tracker:?} tracking unavailable: {e}")),
        }
    }

    let v1_res = [
        (
            &mut mem_done,
            cg.v1_memory.as_ref(),
            v1_memory_files(res),
            "memory limit",
        ),
        (
            &mut cpu_done,
            cg.v1_cpu.as_ref(),
            v1_cpu_files(res),
            "cpu settings",
        ),
    ];
    for (done, dir, files, what) in v1_res {
        if *done {
            continue;
        }
        let Some(dir) = dir else {
            out.notes.push(format!(
                "{what} not applied: no cgroup controller available for it"
            ));
            continue;
        };
        let result = std::fs::create_dir_all(dir)
            .map_err(io_err("create cgroup", dir))
            .and_then(|()| apply(dir, &files));
        match result {
            Ok(()) => {
                *done = true;
                let procs = dir.join("cgroup.procs");
                if !out.procs_files.contains(&procs) {
                    out.procs_files.push(procs);
                }
            }
            Err(e) => out.notes.push(format!("{what} not applied: {e}")),
        }
    }
    out
}

/// The pids in the cgroup directory `dir` (empty if it does not exist).
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| procfs::parse_pid_list(&t))
        .unwrap_or_default()
}

/// Kills everything in a cgroup2 directory through `cgroup.kill` (Linux ≥ 5.14).
/// `Ok(false)` when the kernel has no `cgroup.kill`.
pub fn kill_v2(dir: &Path) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.kill");
    if !file.exists() {
        return Ok(false);
    }
    std::fs::write(&file, "1")
        .map(|()| true)
        .map_err(io_err("write", &file))
}

/// Sends `sig` to every process in `dir`, repeating (up to a bound) while new ones appear.
pub fn signal_all(dir: &Path, sig: nix::sys::signal::Signal, repeat: bool) {
    let rounds = if repeat { 50 } else { 1 };
    for _ in 0..rounds {
        let pids = procs(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        if repeat {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// v1 freezer kill: freeze the cgroup (so nothing forks), SIGKILL every member, thaw.
pub fn freeze_kill(dir: &Path) -> Result<(), CgroupError> {
    write_file(dir, "freezer.state", "FROZEN")?;
    for _ in 0..200 {
        let state = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
        if state.trim() == "FROZEN" {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    signal_all(dir, nix::sys::signal::Signal::SIGKILL, false);
    write_file(dir, "freezer.state", "THAWED")
}

/// Removes the container's leaf directories (retrying briefly while the last processes leave)
/// and then its pod directories if they are empty. The container has exited: processes it
/// left behind in its cgroup (children that escaped its process group) are killed first, as
/// a container runtime does when a container's main process ends.
pub fn remove(cg: &ContainerCgroups) {
    if let Some(track) = cg.tracking_leaf().filter(|d| d.is_dir()) {
        if !procs(track).is_empty() {
            tracing::info!(cgroup = %track.display(), "killing processes the container left behind");
            if !kill_v2(track).unwrap_or(false) {
                signal_all(track, nix::sys::signal::Signal::SIGKILL, true);
                if track.join("freezer.state").exists() {
                    let _ = write_file(track, "freezer.state", "THAWED");
                }
            }
        }
    }
    for leaf in cg.all_leaves() {
        for attempt in 0..50 {
            match std::fs::remove_dir(&leaf) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    tracing::warn!(path = %leaf.display(), error = %e, "cannot remove cgroup");
                    break;
                }
            }
        }
        if let Some(pod) = leaf.parent() {
            // Fails (harmlessly) while other containers of the pod still have cgroups.
            let _ = std::fs::remove_dir(pod);
        }
    }
}

/// The file in the agent's state dir that records where its cgroup parents are, so that
/// `plinth reset` (which runs in another cgroup) finds the pod cgroups.
pub const CGROUP_RECORD_FILE: &str = "cgroups.json";

/// The cgroup parent directories an agent used (absolute paths under the cgroup mounts).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupRecord {
    /// `<mount>/<...>/<cgroup parent>` per hierarchy.
    pub parents: std::collections::BTreeSet<PathBuf>,
}

impl CgroupRecord {
    /// Loads the record at `path` (empty when absent or unreadable).
    pub fn load(path: &Path) -> CgroupRecord {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds `parents` to the record at `path` (written atomically, 0600) when any is new.
    pub fn add(path: &Path, parents: impl IntoIterator<Item = PathBuf>) -> Result<(), CgroupError> {
        let mut rec = CgroupRecord::load(path);
        let before = rec.parents.len();
        rec.parents.extend(parents);
        if rec.parents.len() == before && path.exists() {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        crate::fs::write_atomic(path, &json, crate::fs::MODE_PRIVATE)?;
        Ok(())
    }
}

/// Removes a pod's cgroup directory `dir` (`<parent>/<pod uid>`) in one hierarchy: SIGKILLs
/// whatever is still in its container cgroups, removes those, then `dir`. `Ok(false)` when
/// it does not exist.
pub fn remove_pod_dir(dir: &Path) -> Result<bool, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let leaf = e.path();
        if !kill_v2(&leaf).unwrap_or(false) {
            signal_all(&leaf, nix::sys::signal::Signal::SIGKILL, true);
            if leaf.join("freezer.state").exists() {
                // A kill cut short by the agent's death may have left it frozen.
                let _ = write_file(&leaf, "freezer.state", "THAWED");
            }
        }
        remove_dir_retrying(&leaf)?;
    }
    remove_dir_retrying(dir)?;
    Ok(true)
}

/// `rmdir`, retrying briefly while the last processes leave a cgroup.
fn remove_dir_retrying(dir: &Path) -> Result<(), CgroupError> {
    for attempt in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 199 => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(io_err("remove", dir)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/sandbox/abc
1:cpu:/
0::/
";

    fn layout_hybrid() -> CgroupLayout {
        CgroupLayout::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    }

    #[test]
    fn hybrid_layout_finds_cgroup2_and_v1_controllers() {
        let l = layout_hybrid();
        let v2 = l.v2.as_ref().unwrap();
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(v2.own, Path::new("/"));
        assert_eq!(l.v1_with("memory").unwrap().own, Path::new("/sandbox/abc"));
        assert!(l.v1_with("freezer").is_some());
        assert!(l.v1_with("cpuacct").is_none());
        assert_eq!(l.v1.len(), 5, "{:?}", l.v1);
    }

    #[test]
    fn pure_v2_with_comounted_controller_names() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = CgroupLayout::parse(mi, "0::/system.slice/plinth.service\n");
        let v2 = l.v2.unwrap();
        assert_eq!(v2.own, Path::new("/system.slice/plinth.service"));
        assert!(l.v1.is_empty());
    }

    #[test]
    fn v1_comounted_cpu_cpuacct_matches_its_proc_line() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let l = CgroupLayout::parse(mi, "3:cpuacct,cpu:/x\n");
        let h = l.v1_with("cpu").unwrap();
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h.own, Path::new("/x"));
        assert!(h.has("cpuacct"));
    }

    #[test]
    fn no_cgroup_mounts_means_empty_layout() {
        // What `ip netns exec` leaves: /sys remounted, no cgroup mounts.
        let mi = "22 27 0:21 / /proc rw - proc proc rw\n50 27 0:60 / /sys rw - sysfs x rw\n";
        let l = CgroupLayout::parse(mi, HYBRID_CGROUP);
        assert!(l.is_empty());
    }

    #[test]
    fn namespaced_mount_root_is_stripped_and_unreachable_cgroups_skipped() {
        let mi = "41 31 0:38 /kubepods/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let l = CgroupLayout::parse(mi, "0::/kubepods/x/agent\n");
        let v2 = l.v2.clone().unwrap();
        assert_eq!(
            v2.dir_of(Path::new("/kubepods/x/agent/plinth")).unwrap(),
            Path::new("/sys/fs/cgroup/agent/plinth")
        );
        assert!(v2.dir_of(Path::new("/other")).is_none());
        let l = CgroupLayout::parse(mi, "0::/elsewhere\n");
        assert!(l.v2.is_none());
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/trailing\04"), r"/trailing\04");
        let mi = r"1 2 0:1 / /mnt/with\040space rw - cgroup2 cgroup2 rw";
        assert_eq!(
            parse_mountinfo(mi)[0].mount_point,
            Path::new("/mnt/with space")
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_mountinfo("garbage\n1 2 3 - x\n").is_empty());
        assert!(parse_proc_cgroup("x:y:/z\n1:cpu:relative\n").is_empty());
        assert_eq!(
            parse_proc_cgroup("0::/a (deleted)\n")[0].path,
            Path::new("/a")
        );
    }

    #[test]
    fn default_parent_is_per_root() {
        use crate::fs::HostRoot;
        assert_eq!(default_parent(&HostRoot::default()), "plinth");
        let a = default_parent(&HostRoot::new(Some(Path::new("/tmp/node-a"))));
        let b = default_parent(&HostRoot::new(Some(Path::new("/tmp/node-b"))));
        assert!(
            a.starts_with("plinth-") && a.len() == "plinth-".len() + 8,
            "{a}"
        );
        assert_ne!(a, b, "two roots share a cgroup parent");
        assert_eq!(
            a,
            default_parent(&HostRoot::new(Some(Path::new("/tmp/node-a"))))
        );
        assert!(CgroupParent::parse(&a).is_ok());
    }

    #[test]
    fn parent_validation_names_the_value() {
        assert_eq!(
            CgroupParent::parse("plinth").unwrap(),
            CgroupParent {
                absolute: false,
                components: vec!["plinth".into()]
            }
        );
        assert!(CgroupParent::parse("/plinth.slice/x").unwrap().absolute);
        for bad in ["", "/", "a/../b", "./x"] {
            let err = CgroupParent::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn container_paths_follow_the_layout() {
        let l = layout_hybrid();
        let parent = CgroupParent::parse("plinth").unwrap();
        let cg = ContainerCgroups::for_container(&l, &parent, "uid1", "etcd", 3).unwrap();
        assert_eq!(
            cg.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/plinth/uid1/etcd-3"))
        );
        assert_eq!(
            cg.v2_anchor.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cg.v1_track, None, "cgroup2 tracks when present");
        // Relative parents nest under the agent's own v1 cgroup.
        assert_eq!(
            cg.v1_memory.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/memory/sandbox/abc/plinth/uid1/etcd-3"
            ))
        );
        assert_eq!(
            cg.v1_cpu.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu/plinth/uid1/etcd-3"))
        );
        assert_eq!(cg.tracking_leaf(), cg.v2.as_deref());
        assert_eq!(cg.all_leaves().len(), 3);

        let abs = CgroupParent::parse("/plinth").unwrap();
        let cg = ContainerCgroups::for_container(&l, &abs, "uid1", "etcd", 0).unwrap();
        assert_eq!(
            cg.v1_memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/plinth/uid1/etcd-0"))
        );
    }

    #[test]
    fn v1_only_hosts_track_with_freezer_then_pids() {
        let mut l = layout_hybrid();
        l.v2 = None;
        let parent = CgroupParent::parse("plinth").unwrap();
        let cg = ContainerCgroups::for_container(&l, &parent, "u", "c", 0).unwrap();
        assert_eq!(
            cg.v1_track,
            Some((
                PathBuf::from("/sys/fs/cgroup/freezer/plinth/u/c-0"),
                Tracker::Freezer
            ))
        );
        l.v1.retain(|h| !h.has("freezer"));
        let cg = ContainerCgroups::for_container(&l, &parent, "u", "c", 0).unwrap();
        assert_eq!(cg.v1_track.unwrap().1, Tracker::Pids);
    }

    #[test]
    fn names_that_would_escape_the_cgroup_are_rejected() {
        let l = layout_hybrid();
        let parent = CgroupParent::parse("plinth").unwrap();
        for (uid, name) in [("..", "c"), ("u", "a/b"), ("", "c"), ("u", ".")] {
            let err = ContainerCgroups::for_container(&l, &parent, uid, name, 0).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidName { .. }), "{err}");
        }
    }

    #[test]
    fn cpu_conversions_match_the_kubelet() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(1_000_000), 262_144);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cfs_quota_us(250), 25_000);
        assert_eq!(cfs_quota_us(1), MIN_CFS_QUOTA_US);
    }

    #[test]
    fn resources_map_to_files() {
        let res = Resources {
            cpu_request_millis: Some(100),
            cpu_limit_millis: Some(500),
            memory_limit_bytes: Some(64 << 20),
            ..Resources::default()
        };
        assert_eq!(needs(&res), (true, true));
        assert_eq!(
            v2_memory_files(&res),
            vec![("memory.max", (64u64 << 20).to_string())]
        );
        assert_eq!(
            v2_cpu_files(&res),
            vec![
                ("cpu.weight", "4".to_string()),
                ("cpu.max", "50000 100000".to_string())
            ]
        );
        assert_eq!(
            v1_cpu_files(&res),
            vec![
                ("cpu.shares", "102".to_string()),
                ("cpu.cfs_period_us", "100000".to_string()),
                ("cpu.cfs_quota_us", "50000".to_string())
            ]
        );
        assert_eq!(
            v1_memory_files(&res),
            vec![("memory.limit_in_bytes", (64u64 << 20).to_string())]
        );
        let none = Resources::default();
        assert_eq!(needs(&none), (false, false));
        assert!(v2_cpu_files(&none).is_empty() && v1_memory_files(&none).is_empty());
    }

    #[test]
    fn prepare_in_a_fake_tree_writes_v1_values_and_joins_files() {
        // A plain directory stands in for cgroupfs: the runtime only creates dirs and writes
        // files, so the mapping from layout to files is checked without root or cgroupfs.
        let tmp = tempfile::tempdir().unwrap();
        let mut l = layout_hybrid();
        l.v2 = None;
        for h in &mut l.v1 {
            h.mount_point = tmp.path().join(h.mount_point.strip_prefix("/").unwrap());
        }
        let parent = CgroupParent::parse("p").unwrap();
        let cg = ContainerCgroups::for_container(&l, &parent, "u", "c", 1).unwrap();
        let res = Resources {
            cpu_limit_millis: Some(200),
            memory_limit_bytes: Some(1000),
            ..Resources::default()
        };
        let prep = prepare(&cg, &res);
        assert!(prep.notes.is_empty(), "{:?}", prep.notes);
        let mem = cg.v1_memory.clone().unwrap();
        assert_eq!(
            std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
            "1000"
        );
        let cpu = cg.v1_cpu.clone().unwrap();
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "20000"
        );
        let track = cg.v1_track.clone().unwrap().0;
        assert_eq!(
            prep.procs_files,
            vec![
                track.join("cgroup.procs"),
                mem.join("cgroup.procs"),
                cpu.join("cgroup.procs")
            ]
        );
    }

    #[test]
    fn prepare_notes_resources_nobody_can_apply() {
        let prep = prepare(
            &ContainerCgroups::default(),
            &Resources {
                memory_limit_bytes: Some(1),
                ..Resources::default()
            },
        );
        assert!(prep.procs_files.is_empty());
        assert_eq!(prep.notes.len(), 1);
        assert!(
            prep.notes[0].contains("memory limit not applied"),
            "{:?}",
            prep.notes
        );
    }
}
