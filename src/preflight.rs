//! Preflight checks run by `plinth init` before anything changes, with kubeadm-style names
//! (`Port-6443`, `FileExisting-etcd`, `DirAvailable--etc-kubernetes-manifests`, ...) so
//! `--ignore-preflight-errors` reads the same as kubeadm's.
//!
//! Unlike kubeadm, a re-run on a node plinth already set up passes: a port held by a process
//! the agent runs for this very manifest, or a manifest dir holding only plinth's manifests,
//! is "ours", not an error — that is what makes `init` idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::ClusterSpec;
use crate::fs::HostRoot;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Severity {
    /// Fine.
    Pass,
    /// Worth saying, never blocks.
    Warning,
    /// Blocks init unless ignored.
    Error,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// kubeadm-style check name.
    pub name: String,
    /// Outcome.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// Set when an error was downgraded by `--ignore-preflight-errors`.
    pub ignored: bool,
}

/// Inputs that are not in the spec.
#[derive(Debug, Clone, Default)]
pub struct PreflightContext {
    /// Directories the agent resolves binaries in (empty = `$PATH`).
    pub bin_path: Vec<PathBuf>,
    /// pids the running agent reports for this node's pods, by manifest pod name.
    pub agent_pids: BTreeMap<String, Vec<i32>>,
    /// pid of a running plinth agent, if any.
    pub agent_pid: Option<i32>,
    /// Ports to check, with the component that will bind each.
    pub ports: Vec<(u16, String)>,
    /// Binaries the manifests run (`command[0]`), by component.
    pub binaries: Vec<(String, String)>,
    /// The manifest file names plinth writes (anything else in the dir is foreign).
    pub own_manifests: Vec<String>,
    /// Whether the local etcd data dir is known to be plinth's (recorded at a previous init).
    pub etcd_data_is_ours: bool,
    /// The user each component's pod runs as (its manifest's runAsUser/runAsGroup), by
    /// component; a component not listed runs as the agent's own user (root).
    pub run_as: BTreeMap<String, RunAs>,
}

/// The identity a component's pod runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name for messages (`etcd`, or `uid 1234`).
    pub user: String,
    /// Its uid; `None` while the user does not exist yet (init creates it): then only the
    /// permission bits for "other" can grant it anything.
    pub uid: Option<u32>,
    /// runAsGroup, else the user's primary group.
    pub gid: Option<u32>,
}

/// Runs every check. `ignore` holds lowercase check names or `all`.
pub fn run(
    spec: &ClusterSpec,
    root: &HostRoot,
    ctx: &PreflightContext,
    ignore: &[String],
) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(check_privileges(root));
    out.extend(check_resources());
    let sockets = listening_sockets();
    for (port, component) in &ctx.ports {
        out.push(check_port(*port, component, &sockets, ctx));
    }
    // Each check runs `<binary> --version`; run them at once (a Kubernetes binary takes
    // 0.1-0.3 s to print its version, so in sequence they dominated preflight). Findings
    // keep the order of `ctx.binaries`.
    let binary_findings: Vec<Finding> = std::thread::scope(|s| {
        let handles: Vec<_> = ctx
            .binaries
            .iter()
            .map(|(component, binary)| {
                (
                    component,
                    binary,
                    s.spawn(move || {
                        let mut out = vec![check_binary(component, binary, &ctx.bin_path, spec)];
                        if let (Some(run_as), Some(path)) = (
                            ctx.run_as.get(component),
                            find_binary(binary, &ctx.bin_path),
                        ) {
                            out.push(check_executable_by(component, binary, &path, run_as));
                        }
                        out
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(component, binary, h)| {
                h.join().unwrap_or_else(|_| {
                    vec![finding(
                        format!("FileExisting-{}", check_name(binary)),
                        Severity::Error,
                        format!("checking {binary} (for {component}) panicked"),
                    )]
                })
            })
            .collect()
    });
    out.extend(binary_findings);
    out.push(check_manifest_dir(spec, root, &ctx.own_manifests));
    if let crate::config::Etcd::Local(local) = &spec.etcd {
        out.push(check_etcd_data_dir(
            root,
            &local.data_dir,
            ctx.etcd_data_is_ours,
        ));
    }
    let ignore: BTreeSet<String> = ignore.iter().map(|s| s.to_ascii_lowercase()).collect();
    for f in &mut out {
        if f.severity == Severity::Error
            && (ignore.contains("all") || ignore.contains(&f.name.to_ascii_lowercase()))
        {
            f.severity = Severity::Warning;
            f.ignored = true;
        }
    }
    out
}

/// True when any finding is a (non-ignored) error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

fn finding(name: impl Into<String>, severity: Severity, message: impl Into<String>) -> Finding {
    Finding {
        name: name.into(),
        severity,
        message: message.into(),
        ignored: false,
    }
}

fn check_privileges(root: &HostRoot) -> Finding {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        finding("IsPrivilegedUser", Severity::Pass, "running as root")
    } else if !root.is_real_root() {
        finding(
            "IsPrivilegedUser",
            Severity::Warning,
            format!("not root (uid {euid}); --root is set, continuing"),
        )
    } else {
        finding(
            "IsPrivilegedUser",
            Severity::Error,
            format!("user is not running as root (uid {euid}); run as root or use --root DIR"),
        )
    }
}

fn check_resources() -> Vec<Finding> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = if cpus < 2 {
        finding(
            "NumCPU",
            Severity::Warning,
            format!("{cpus} CPU available; a control plane wants at least 2"),
        )
    } else {
        finding("NumCPU", Severity::Pass, format!("{cpus} CPUs"))
    };
    let mem_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024);
    let mem = match mem_mib {
        Some(m) if m < 1700 => finding(
            "Mem",
            Severity::Warning,
            format!("{m} MiB of memory; a control plane wants at least 1700 MiB"),
        ),
        Some(m) => finding("Mem", Severity::Pass, format!("{m} MiB of memory")),
        None => finding("Mem", Severity::Warning, "could not read /proc/meminfo"),
    };
    vec![cpu, mem]
}

/// A listening TCP socket and the process that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Owning pid, when it could be found.
    pub pid: Option<i32>,
    /// Owning process name.
    pub comm: Option<String>,
}

/// Lists listening TCP sockets (v4 and v6) in this network namespace, with owners.
pub fn listening_sockets() -> Vec<Listener> {
    let mut by_inode: BTreeMap<u64, (IpAddr, u16)> = BTreeMap::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue; // 0A = LISTEN
            }
            if let (Some((addr, port)), Ok(inode)) =
                (parse_proc_addr(cols[1], v6), cols[9].parse::<u64>())
            {
                by_inode.insert(inode, (addr, port));
            }
        }
    }
    let owners = socket_owners(&by_inode.keys().copied().collect());
    by_inode
        .into_iter()
        .map(|(inode, (addr, port))| {
            let owner = owners.get(&inode);
            Listener {
                addr,
                port,
                pid: owner.map(|o| o.0),
                comm: owner.map(|o| o.1.clone()),
            }
        })
        .collect()
}

fn parse_proc_addr(s: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = if v6 {
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            let word = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        IpAddr::from(bytes)
    } else {
        let word = u32::from_str_radix(a, 16).ok()?;
        IpAddr::from(word.to_le_bytes())
    };
    Some((addr, port))
}

fn socket_owners(inodes: &BTreeSet<u64>) -> BTreeMap<u64, (i32, String)> {
    let mut out = BTreeMap::new();
    for pid in crate::procfs::pids() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            {
                if inodes.contains(&inode) {
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    out.entry(inode).or_insert((pid, comm));
                }
            }
        }
    }
    out
}

fn check_port(port: u16, component: &str, sockets: &[Listener], ctx: &PreflightContext) -> Finding {
    let name = format!("Port-{port}");
    let Some(l) = sockets.iter().find(|l| l.port == port) else {
        return finding(
            name,
            Severity::Pass,
            format!("port {port} is free (for {component})"),
        );
    };
    let who = match (l.pid, &l.comm) {
        (Some(pid), Some(comm)) => format!("{comm} (pid {pid})"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "an unknown process".to_string(),
    };
    let ours = l.pid.is_some_and(|pid| {
        ctx.agent_pid == Some(pid)
            || ctx
                .agent_pids
                .values()
                .flatten()
                .any(|p| *p == pid || is_descendant(pid, *p))
    });
    if ours {
        finding(
            name,
            Severity::Pass,
            format!("port {port} is in use by plinth's own {who}"),
        )
    } else {
        finding(
            name,
            Severity::Error,
            format!(
                "port {port} (needed by {component}) is in use by {who} on {}",
                l.addr
            ),
        )
    }
}

fn is_descendant(pid: i32, ancestor: i32) -> bool {
    let mut cur = pid;
    for _ in 0..64 {
        let Some(ppid) = parent_of(cur) else {
            return false;
        };
        if ppid == ancestor {
            return true;
        }
        if ppid <= 1 {
            return false;
        }
        cur = ppid;
    }
    false
}

fn parent_of(pid: i32) -> Option<i32> {
    crate::procfs::read_stat(pid).ok().map(|s| s.ppid)
}

/// The name a binary's checks carry: its file name (a cached binary is given by its path,
/// `/var/lib/plinth/bin/etcd/v3.5.1/etcd` → `etcd`), so `--ignore-preflight-errors` names
/// stay the same wherever the binary comes from.
fn check_name(binary: &str) -> &str {
    binary.rsplit('/').next().unwrap_or(binary)
}

/// Resolves `name` on the bin path (or `$PATH` when empty), like the agent does.
pub fn find_binary(name: &str, bin_path: &[PathBuf]) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let dirs: Vec<PathBuf> = if bin_path.is_empty() {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default()
    } else {
        bin_path.to_vec()
    };
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The version a binary reports (`Kubernetes v1.33.0`, `etcd Version: 3.4.23`).
pub fn binary_version(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    version_in(&text)
}

/// The first version-looking word of a `--version` output (`v` and a trailing comma dropped).
pub fn version_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches('v').trim_end_matches(','))
        .find(|w| {
            w.split('.').count() >= 2
                && w.split('.')
                    .all(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
        })
        .map(|w| w.to_string())
}

fn check_binary(
    component: &str,
    binary: &str,
    bin_path: &[PathBuf],
    spec: &ClusterSpec,
) -> Finding {
    let name = format!("FileExisting-{}", check_name(binary));
    let searched = if bin_path.is_empty() {
        "$PATH".to_string()
    } else {
        bin_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let Some(path) = find_binary(binary, bin_path) else {
        return finding(
            name,
            Severity::Error,
            format!("{binary} (for {component}) not found in {searched}; install it or set binPath in the PlinthConfiguration"),
        );
    };
    let Some(version) = binary_version(&path) else {
        return finding(
            name,
            Severity::Warning,
            format!("{} found but `--version` gave no version", path.display()),
        );
    };
    if component == "etcd" {
        return finding(
            name,
            Severity::Pass,
            format!("{} (etcd {version})", path.display()),
        );
    }
    let want = &spec.kubernetes_version;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if major != want.major || minor != want.minor {
        return finding(
            format!("KubernetesVersion-{}", check_name(binary)),
            Severity::Error,
            format!(
                "{} is v{version} but kubernetesVersion is {want}: the control plane must run the configured minor version",
                path.display()
            ),
        );
    }
    if version.trim_start_matches('v') != want.to_string().trim_start_matches('v') {
        // The agent runs this binary whatever the image tag says: the manifests will claim
        // `want` while `version` runs, and a later regenerate that only changes the tag would
        // restart the component for nothing.
        return finding(
            format!("KubernetesVersion-{}", check_name(binary)),
            Severity::Warning,
            format!(
                "{} is v{version} but kubernetesVersion is {want}: the manifests' image tags will say {want} while v{version} runs (the agent runs the binary from binPath/$PATH; the image is only a label)",
                path.display()
            ),
        );
    }
    finding(
        name,
        Severity::Pass,
        format!("{} (v{version})", path.display()),
    )
}

/// Whether the user a component's pod runs as may execute its binary: every directory on the
/// way (the path as given and, through symlinks, the file it names) must grant search (x) and
/// the file exec (x, plus read for a `#!` script, which its interpreter must read). With a
/// known user and plinth running as root this is tested for real — `<binary> --version` is
/// run as that uid, gid and supplementary groups, as the agent's container-init would exec it
/// — and the permission bits only name the culprit; for a user init has yet to create only
/// the bits for "other" are consulted.
fn check_executable_by(component: &str, binary: &str, path: &Path, run_as: &RunAs) -> Finding {
    let name = format!("FileExecutable-{}", check_name(binary));
    let who = match (run_as.uid, run_as.gid) {
        (Some(u), Some(g)) => format!("user {} (uid {u}, gid {g})", run_as.user),
        (Some(u), None) => format!("user {} (uid {u})", run_as.user),
        _ => format!("user {} (created by init)", run_as.user),
    };
    let ident = run_as.uid.map(|uid| identity_of(uid, run_as.gid));
    let denied = permission_walk(path, ident.as_ref());
    let real = match &ident {
        Some(id) if nix::unistd::geteuid().is_root() => Some(exec_as(path, id)),
        _ => None,
    };
    let problem = match (real, denied) {
        (Some(Ok(())), _) => None,
        (Some(Err(e)), Some(d)) => Some(format!(
            "{} (executing it as that user: {e}); fix: {}",
            d.reason(),
            d.fix()
        )),
        (Some(Err(e)), None) => Some(format!(
            "executing it as that user fails: {e}; fix: check the ACLs (getfacl) and mount options (noexec) of {} and its directories",
            path.display()
        )),
        (None, Some(d)) => Some(format!("{}; fix: {}", d.reason(), d.fix())),
        (None, None) => None,
    };
    match problem {
        None => finding(
            name,
            Severity::Pass,
            format!(
                "{} is executable by {who}, which the {component} pod runs as",
                path.display()
            ),
        ),
        Some(p) => finding(
            name,
            Severity::Error,
            format!(
                "{binary} ({}) cannot be executed by {who}, which the {component} pod runs as: {p}",
                path.display()
            ),
        ),
    }
}

/// uid, gid and supplementary groups, resolved as the agent's container-init does.
fn identity_of(uid: u32, gid: Option<u32>) -> crate::runtime::process::init::Identity {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let passwd_gid = user.as_ref().map(|u| u.gid.as_raw());
    let groups = user.as_ref().and_then(|u| {
        let name = std::ffi::CString::new(u.name.as_bytes()).ok()?;
        let g = gid.map(nix::unistd::Gid::from_raw).unwrap_or(u.gid);
        nix::unistd::getgrouplist(&name, g)
            .ok()
            .map(|v| v.into_iter().map(|g| g.as_raw()).collect())
    });
    crate::runtime::process::init::resolve_identity(Some(uid), gid, passwd_gid, groups).unwrap_or(
        crate::runtime::process::init::Identity {
            groups: Vec::new(),
            gid,
            uid: Some(uid),
        },
    )
}

/// Runs `path --version` as `id` (a child that drops to it before `execve`); `Err` carries
/// the error of the exec itself.
fn exec_as(
    path: &Path,
    id: &crate::runtime::process::init::Identity,
) -> Result<(), std::io::Error> {
    use std::os::unix::process::CommandExt;
    let groups: Vec<libc::gid_t> = id.groups.clone();
    let (uid, gid) = (id.uid, id.gid);
    let mut cmd = Command::new(path);
    cmd.arg("--version")
        .env_clear()
        .env("PATH", crate::runtime::process::init::DEFAULT_PATH)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(g) = gid {
                if libc::setgid(g) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(u) = uid {
                if libc::setuid(u) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.status().map(|_| ())
}

/// A path component the permission bits deny.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Denied {
    path: PathBuf,
    mode: u32,
    owner: (u32, u32),
    /// What is missing: `x` (search/exec) or `rx`.
    need: &'static str,
    /// The class of the user: `u`, `g` or `o`.
    class: char,
    is_dir: bool,
}

impl Denied {
    fn fix(&self) -> String {
        format!("chmod {}+{} {}", self.class, self.need, self.path.display())
    }

    fn reason(&self) -> String {
        let what = if self.is_dir { "directory" } else { "file" };
        let denies = if self.is_dir {
            "search (x)".to_string()
        } else if self.need == "x" {
            "execute (x)".to_string()
        } else {
            "read and execute (rx, a script)".to_string()
        };
        format!(
            "{what} {} (mode {:04o}, owner uid {} gid {}) denies it {denies}",
            self.path.display(),
            self.mode & 0o7777,
            self.owner.0,
            self.owner.1,
        )
    }
}

/// The first directory or file on the way to `path` whose permission bits deny `id` (uid and
/// groups; `None`: a user that owns nothing and is in no group, so "other" applies).
fn permission_walk(
    path: &Path,
    id: Option<&crate::runtime::process::init::Identity>,
) -> Option<Denied> {
    use std::os::unix::fs::MetadataExt;
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let target = std::fs::canonicalize(&abs).unwrap_or_else(|_| abs.clone());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in [&abs, &target] {
        for d in p.ancestors().skip(1) {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    dirs.sort_by_key(|d| d.components().count());
    let uid = id.and_then(|i| i.uid);
    if uid == Some(0) {
        return None;
    }
    let groups: Vec<u32> = id
        .map(|i| i.groups.iter().copied().chain(i.gid).collect())
        .unwrap_or_default();
    let class_of = |m: &std::fs::Metadata| -> (char, u32) {
        if uid == Some(m.uid()) {
            ('u', (m.mode() >> 6) & 7)
        } else if groups.contains(&m.gid()) {
            ('g', (m.mode() >> 3) & 7)
        } else {
            ('o', m.mode() & 7)
        }
    };
    for d in dirs {
        let Ok(m) = std::fs::metadata(&d) else {
            continue;
        };
        let (class, bits) = class_of(&m);
        if bits & 1 == 0 {
            return Some(Denied {
                path: d,
                mode: m.mode(),
                owner: (m.uid(), m.gid()),
                need: "x",
                class,
                is_dir: true,
            });
        }
    }
    let m = std::fs::metadata(&target).ok()?;
    let (class, bits) = class_of(&m);
    let script = std::fs::File::open(&target)
        .and_then(|mut f| {
            let mut b = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut b).map(|_| b == *b"#!")
        })
        .unwrap_or(false);
    let need = if script { 5 } else { 1 };
    (bits & need != need).then(|| Denied {
        path: target.clone(),
        mode: m.mode(),
        owner: (m.uid(), m.gid()),
        need: if script { "rx" } else { "x" },
        class,
        is_dir: false,
    })
}

fn check_manifest_dir(spec: &ClusterSpec, root: &HostRoot, own: &[String]) -> Finding {
    let dir = &spec.plinth.manifests_dir;
    let name = format!("DirAvailable-{}", dir.replace('/', "-"));
    if let Some(f) = not_a_directory(root, dir, &name) {
        return f;
    }
    let Ok(entries) = std::fs::read_dir(root.path(dir)) else {
        return finding(name, Severity::Pass, format!("{dir} does not exist yet"));
    };
    let foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !own.contains(n))
        .collect();
    if foreign.is_empty() {
        finding(
            name,
            Severity::Pass,
            format!("{dir} holds only plinth's manifests"),
        )
    } else {
        finding(
            name,
            Severity::Error,
            format!(
                "{dir} holds manifests plinth did not write: {}",
                foreign.join(", ")
            ),
        )
    }
}

/// An error finding when `dir` exists but is not a directory (e.g. a regular file where the
/// directory must go): reading it as an empty directory would wrongly pass the check.
fn not_a_directory(root: &HostRoot, dir: &str, name: &str) -> Option<Finding> {
    let meta = std::fs::metadata(root.path(dir)).ok()?;
    (!meta.is_dir()).then(|| {
        finding(
            name.to_string(),
            Severity::Error,
            format!("{dir} exists and is not a directory"),
        )
    })
}

fn check_etcd_data_dir(root: &HostRoot, data_dir: &str, ours: bool) -> Finding {
    let name = format!("DirAvailable-{}", data_dir.replace('/', "-"));
    if let Some(f) = not_a_directory(root, data_dir, &name) {
        return f;
    }
    let empty = std::fs::read_dir(root.path(data_dir))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if empty {
        finding(
            name,
            Severity::Pass,
            format!("{data_dir} is empty or absent"),
        )
    } else if ours {
        finding(
            name,
            Severity::Pass,
            format!("{data_dir} holds this node's etcd data"),
        )
    } else {
        finding(
            name,
            Severity::Error,
            format!("{data_dir} is not empty and was not created by plinth"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_addresses() {
        assert_eq!(
            parse_proc_addr("0100007F:1A0B", false),
            Some(("127.0.0.1".parse().unwrap(), 0x1A0B))
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:0050", true),
            Some(("::1".parse().unwrap(), 80))
        );
    }

    #[test]
    fn a_bound_port_names_its_owner_pid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let f = check_port(
            port,
            "kube-apiserver",
            &listening_sockets(),
            &PreflightContext::default(),
        );
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains(&format!("pid {}", std::process::id())),
            "{}",
            f.message
        );
        let ctx = PreflightContext {
            agent_pid: Some(std::process::id() as i32),
            ..Default::default()
        };
        let f = check_port(port, "kube-apiserver", &listening_sockets(), &ctx);
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }

    #[test]
    fn a_file_where_the_etcd_data_dir_goes_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let f = check_etcd_data_dir(&root, "/var/lib/etcd", false);
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
        std::fs::create_dir_all(tmp.path().join("var/lib")).unwrap();
        std::fs::write(tmp.path().join("var/lib/etcd"), b"x").unwrap();
        for ours in [false, true] {
            let f = check_etcd_data_dir(&root, "/var/lib/etcd", ours);
            assert_eq!(f.severity, Severity::Error, "{}", f.message);
            assert_eq!(f.name, "DirAvailable--var-lib-etcd");
            assert!(
                f.message
                    .contains("/var/lib/etcd exists and is not a directory"),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn missing_binary_is_named() {
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        let f = check_binary(
            "kube-apiserver",
            "kube-apiserver-nope",
            &[PathBuf::from("/nonexistent")],
            &spec,
        );
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains("kube-apiserver-nope") && f.message.contains("/nonexistent"),
            "{}",
            f.message
        );
    }

    #[test]
    fn binary_version_other_than_kubernetes_version_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::tempdir().unwrap();
        let p = bin.path().join("kube-scheduler");
        std::fs::write(&p, "#!/bin/sh\necho 'Kubernetes v1.24.0-alpha.1'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        spec.kubernetes_version = crate::config::validate::parse_kube_version("v1.24.1").unwrap();
        let f = check_binary(
            "kube-scheduler",
            "kube-scheduler",
            &[bin.path().to_path_buf()],
            &spec,
        );
        assert_eq!(f.severity, Severity::Warning, "{}", f.message);
        assert!(
            f.message.contains("v1.24.0-alpha.1") && f.message.contains("v1.24.1"),
            "{}",
            f.message
        );
        spec.kubernetes_version =
            crate::config::validate::parse_kube_version("v1.24.0-alpha.1").unwrap();
        let f = check_binary(
            "kube-scheduler",
            "kube-scheduler",
            &[bin.path().to_path_buf()],
            &spec,
        );
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }

    #[test]
    fn ignore_downgrades_errors() {
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        let root = HostRoot::new(Some(tempfile::tempdir().unwrap().path()));
        let ctx = PreflightContext {
            binaries: vec![("kube-apiserver".into(), "definitely-missing-bin".into())],
            bin_path: vec![PathBuf::from("/nonexistent")],
            ..Default::default()
        };
        let f = run(&spec, &root, &ctx, &[]);
        assert!(has_errors(&f));
        let f = run(
            &spec,
            &root,
            &ctx,
            &["FileExisting-definitely-missing-bin".into()],
        );
        assert!(!has_errors(&f));
        assert!(f.iter().any(|x| x.ignored));
    }

    /// Issue 8 item 3: a binary under a 0700 directory cannot be executed by the unprivileged
    /// user etcd runs as: the walk names the directory and the fix; as root it is tested for
    /// real by executing the binary as that user.
    #[test]
    fn binary_under_a_private_dir_is_not_executable_by_the_pod_user() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("tool");
        std::fs::write(&exe, "#!/bin/sh\necho tool 1.2.3\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();
        let nobody = crate::runtime::process::init::Identity {
            groups: vec![4343],
            gid: Some(4343),
            uid: Some(4242),
        };
        let denied = permission_walk(&exe, Some(&nobody)).expect("denied");
        assert_eq!(denied.path, bin);
        assert_eq!(denied.fix(), format!("chmod o+x {}", bin.display()));
        let run_as = RunAs {
            user: "etcd".into(),
            uid: Some(4242),
            gid: Some(4343),
        };
        let f = check_executable_by("etcd", "tool", &exe, &run_as);
        assert_eq!(f.severity, Severity::Error, "{}", f.message);
        assert_eq!(f.name, "FileExecutable-tool");
        for want in [
            exe.display().to_string(),
            "user etcd".into(),
            format!("chmod o+x {}", bin.display()),
        ] {
            assert!(f.message.contains(&want), "{want:?} not in {}", f.message);
        }
        // A user init has yet to create: only "other" counts.
        let future = RunAs {
            uid: None,
            gid: None,
            ..run_as.clone()
        };
        let f = check_executable_by("etcd", "tool", &exe, &future);
        assert_eq!(f.severity, Severity::Error, "{}", f.message);
        // Fixed as the message says (and a script must also be readable): passes.
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o711)).unwrap();
        let denied = permission_walk(&exe, Some(&nobody)).expect("a script needs r");
        assert_eq!(denied.fix(), format!("chmod o+rx {}", exe.display()));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = check_executable_by("etcd", "tool", &exe, &run_as);
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }
}
