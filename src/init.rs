//! `plinth init`: the phases that take a host from nothing to a healthy control plane.
//!
//! preflight → certs → kubeconfig → etcd → control-plane → agent → wait-control-plane →
//! (admin binding). Each render phase reconciles: it compares what should exist with what
//! is on disk and writes only the difference, so a second `init` changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::ClusterSpec;
use crate::fs::{self, HostRoot, WriteOutcome};
use crate::manifests::{self, Component, RenderContext, RenderedManifest};

/// Errors from the init phases, naming the phase.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Certificate phase failed.
    #[error("[certs] certificate phase failed")]
    Pki(#[from] crate::pki::PkiError),
    /// Kubeconfig phase failed.
    #[error("[kubeconfig] kubeconfig phase failed")]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    /// Manifest phase failed.
    #[error("[control-plane] manifest phase failed")]
    Manifests(#[from] crate::manifests::ManifestError),
    /// The etcd user could not be set up.
    #[error("[etcd] etcd user setup failed")]
    Security(#[from] crate::security::SecurityError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    /// The agent could not be started.
    #[error("[agent] {0}")]
    Agent(String),
    /// An unknown phase or phase argument.
    #[error("unknown phase {value:?}: allowed are {allowed}")]
    UnknownPhase {
        /// What was given.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// The admin ClusterRoleBinding could not be created.
    #[error("[bootstrap] {0}")]
    Binding(String),
}

/// The phases of init, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Phase {
    /// Host checks.
    Preflight,
    /// PKI.
    Certs,
    /// Kubeconfig files.
    Kubeconfig,
    /// The local etcd manifest.
    Etcd,
    /// apiserver, controller-manager, scheduler manifests.
    ControlPlane,
    /// Start the agent.
    Agent,
    /// Wait for health.
    WaitControlPlane,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 7] = [
        Phase::Preflight,
        Phase::Certs,
        Phase::Kubeconfig,
        Phase::Etcd,
        Phase::ControlPlane,
        Phase::Agent,
        Phase::WaitControlPlane,
    ];

    /// The kubeadm-style phase name.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Certs => "certs",
            Phase::Kubeconfig => "kubeconfig",
            Phase::Etcd => "etcd",
            Phase::ControlPlane => "control-plane",
            Phase::Agent => "agent",
            Phase::WaitControlPlane => "wait-control-plane",
        }
    }

    /// Parses a phase name (as in `--skip-phases`).
    pub fn parse(s: &str) -> Result<Phase, InitError> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| InitError::UnknownPhase {
                value: s.to_string(),
                allowed: Phase::ALL
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// What a render phase did: kubeadm-style lines, and the files it changed.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    /// `[certs] Generating "ca" certificate and key`, ...
    pub lines: Vec<String>,
    /// Host paths of files created or changed.
    pub changed: Vec<PathBuf>,
}

impl PhaseReport {
    fn extend(&mut self, other: PhaseReport) {
        self.lines.extend(other.lines);
        self.changed.extend(other.changed);
    }
}

/// Runs the certs phase (`only` = one certificate name, or all).
pub fn phase_certs(
    spec: &ClusterSpec,
    root: &HostRoot,
    only: Option<&str>,
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let opts = crate::pki::PkiOptions {
        dry_run,
        only: only.map(str::to_string),
        renew: crate::pki::Renew::None,
    };
    let report = crate::pki::reconcile(spec, root, &opts)?;
    Ok(PhaseReport {
        lines: report.lines(),
        changed: report.changed_files(),
    })
}

/// Runs the kubeconfig phase (`only` = one kubeconfig name, or all).
pub fn phase_kubeconfig(
    spec: &ClusterSpec,
    root: &HostRoot,
    only: Option<&str>,
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let opts = crate::kubeconfig::KubeconfigOptions {
        dry_run,
        only: only.map(str::to_string),
        ..Default::default()
    };
    let report = crate::kubeconfig::reconcile(spec, root, &opts)?;
    Ok(PhaseReport {
        lines: report.lines(),
        changed: report.changed_files(),
    })
}

/// The render context for this host: the etcd user (cis profile) and host CA dirs.
pub fn render_context(
    spec: &ClusterSpec,
    root: &HostRoot,
    dry_run: bool,
) -> Result<RenderContext, InitError> {
    let mut ctx = RenderContext::for_host(root, spec);
    if spec.plinth.security_profile == crate::config::SecurityProfile::Cis && spec.has_local_etcd()
    {
        ctx.etcd_user = Some(if dry_run {
            crate::security::lookup_etcd_user().unwrap_or((0, 0))
        } else {
            crate::security::ensure_etcd_user()?
        });
    }
    Ok(ctx)
}

/// Renders and writes the manifests of `components`.
pub fn phase_manifests(
    spec: &ClusterSpec,
    root: &HostRoot,
    components: &[Component],
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let ctx = render_context(spec, root, dry_run)?;
    let rendered: Vec<RenderedManifest> = components
        .iter()
        .map(|c| manifests::render(spec, *c, &ctx))
        .collect::<Result<_, _>>()?;
    let mut report = PhaseReport::default();
    // A dry run shows what would change in each manifest already on disk.
    let on_disk: Vec<(&RenderedManifest, Option<k8s_openapi::api::core::v1::Pod>)> = if dry_run {
        rendered
            .iter()
            .map(|m| {
                let host = Path::new(&spec.plinth.manifests_dir).join(m.file_name);
                let old = std::fs::read_to_string(root.path(&host))
                    .ok()
                    .and_then(|t| manifests::parse_manifest(&t).ok());
                (m, old)
            })
            .collect()
    } else {
        Vec::new()
    };
    let written = manifests::write(root, spec, &rendered, dry_run)?;
    // In the order things happen: the writes (which create the etcd data dir), then its
    // ownership. A directory that already exists is not news (the etcd phase may just have
    // created the manifests dir): only files are reported unchanged.
    for (path, outcome) in written {
        let host = root.host_path(&path);
        if outcome == WriteOutcome::Unchanged && root.path(&path).is_dir() {
            continue;
        }
        let verb = match outcome {
            WriteOutcome::Created => "Creating",
            WriteOutcome::Updated => "Updating",
            WriteOutcome::Unchanged => "Unchanged",
            WriteOutcome::ModeFixed { .. } => "Fixing the mode of",
        };
        let verb = if dry_run && outcome.changed() {
            "Would write"
        } else {
            verb
        };
        report
            .lines
            .push(format!("[control-plane] {verb} {}", host.display()));
        if dry_run && outcome == WriteOutcome::Updated {
            let manifest = on_disk
                .iter()
                .find(|(m, _)| host.file_name().is_some_and(|n| n == m.file_name));
            if let Some((new, Some(old))) = manifest {
                for change in manifests::diff(old, &new.pod) {
                    report.lines.push(format!("[control-plane]   {change}"));
                }
            }
        }
        if outcome.changed() {
            report.changed.push(host);
        }
    }
    // After the write: it creates the etcd data dir, which must belong to the etcd user.
    if let (Some((uid, gid)), false) = (ctx.etcd_user, dry_run) {
        if components.contains(&Component::Etcd) {
            for p in crate::security::chown_etcd_paths(root, spec, uid, gid)? {
                report.lines.push(format!(
                    "[etcd] {} is owned by the etcd user ({uid}:{gid})",
                    p.display()
                ));
            }
            for k in crate::security::grant_etcd_keys(root, spec, uid, gid)? {
                report.lines.push(k.to_string());
            }
        }
    }
    Ok(report)
}

/// The components of the etcd phase (none with external etcd).
pub fn etcd_components(spec: &ClusterSpec) -> Vec<Component> {
    if spec.has_local_etcd() {
        vec![Component::Etcd]
    } else {
        vec![]
    }
}

/// The control-plane components (apiserver, controller-manager, scheduler).
pub fn control_plane_components() -> Vec<Component> {
    vec![
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
    ]
}

/// Runs every render phase (certs, kubeconfig, etcd, control-plane) not in `skip`.
pub fn render_all(
    spec: &ClusterSpec,
    root: &HostRoot,
    skip: &[Phase],
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let mut report = PhaseReport::default();
    if !skip.contains(&Phase::Certs) {
        report.extend(phase_certs(spec, root, None, dry_run)?);
    }
    if !skip.contains(&Phase::Kubeconfig) {
        report.extend(phase_kubeconfig(spec, root, None, dry_run)?);
    }
    let mut comps = Vec::new();
    if !skip.contains(&Phase::Etcd) {
        comps.extend(etcd_components(spec));
    }
    if !skip.contains(&Phase::ControlPlane) {
        comps.extend(control_plane_components());
    }
    if !comps.is_empty() {
        report.extend(phase_manifests(spec, root, &comps, dry_run)?);
    }
    Ok(report)
}

/// With the process runtime the etcd that runs is the binary on the bin path, not an image:
/// when the config pins no etcd image tag, take the tag from that binary's version, so probes
/// (`/health` before 3.5.11, `/livez`+`/readyz` after) and flags match what actually runs.
/// Returns the version found.
pub fn pin_etcd_version_to_binary(spec: &mut ClusterSpec) -> Option<String> {
    let crate::config::Etcd::Local(local) = &mut spec.etcd else {
        return None;
    };
    if !local.image_tag.is_empty() {
        return None;
    }
    let bin = crate::preflight::find_binary("etcd", &spec.plinth.bin_path)?;
    let version = crate::preflight::binary_version(&bin)?;
    local.image_tag = format!("{version}-0");
    Some(version)
}

/// The version a kube-apiserver `--version` reports (`1.24.0-alpha.1`, build metadata such as
/// `+e5f3f02` dropped) as a [`crate::config::KubeVersion`].
pub fn parse_binary_kube_version(reported: &str) -> Option<crate::config::KubeVersion> {
    let core = reported.split('+').next().unwrap_or_default();
    crate::config::validate::parse_kube_version(core).ok()
}

/// When the config sets no `kubernetesVersion`, take it from the kube-apiserver binary that
/// will run (found on `binPath`, else `$PATH`, as the agent resolves it), the way
/// [`pin_etcd_version_to_binary`] does for etcd: the rendered flags and preflight's version
/// check then match what actually runs. Without such a binary (render-only, a dry run on
/// another host) plinth's default stays. Returns a line saying which version was taken from
/// where; `None` when the config (or `--kubernetes-version`) set it.
pub fn default_kubernetes_version(spec: &mut ClusterSpec) -> Option<String> {
    use crate::config::KubeVersionSource;
    if spec.kubernetes_version_source != KubeVersionSource::Default {
        return None;
    }
    let searched = if spec.plinth.bin_path.is_empty() {
        "$PATH".to_string()
    } else {
        spec.plinth
            .bin_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let default = &spec.kubernetes_version;
    let Some(bin) = crate::preflight::find_binary("kube-apiserver", &spec.plinth.bin_path) else {
        return Some(format!(
            "kubernetesVersion is not set and no kube-apiserver was found in {searched}: using \
             plinth's default {default}"
        ));
    };
    let reported = crate::preflight::binary_version(&bin);
    match reported.as_deref().and_then(parse_binary_kube_version) {
        Some(v) => {
            let line = format!(
                "kubernetesVersion is not set: using {v}, the version of {} (`kube-apiserver \
                 --version`)",
                bin.display()
            );
            spec.kubernetes_version = v;
            spec.kubernetes_version_source = KubeVersionSource::Binary(bin);
            Some(line)
        }
        None => Some(format!(
            "kubernetesVersion is not set and `{} --version` reported no usable version ({}): \
             using plinth's default {default}",
            bin.display(),
            reported.as_deref().unwrap_or("nothing")
        )),
    }
}

/// The agent's `host:port` status address from the spec.
pub fn agent_addr(spec: &ClusterSpec) -> String {
    let a = spec.plinth.agent_healthz_bind_address;
    if a.is_ipv6() {
        format!("[{a}]:{}", spec.plinth.agent_healthz_port)
    } else {
        format!("{a}:{}", spec.plinth.agent_healthz_port)
    }
}

/// The KubeletConfiguration the agent runs with (written to the state dir).
pub fn agent_config_yaml(spec: &ClusterSpec) -> String {
    format!(
        "# Written by plinth init: the bundled agent's configuration.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         staticPodPath: {}\n\
         fileCheckFrequency: 20s\n\
         healthzBindAddress: {}\n\
         healthzPort: {}\n\
         kubeletKubeconfig: {}/kubelet.conf\n",
        spec.plinth.manifests_dir,
        spec.plinth.agent_healthz_bind_address,
        spec.plinth.agent_healthz_port,
        spec.plinth.kubeconfig_dir.trim_end_matches('/'),
    )
}

/// How the agent gets started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStart {
    /// Through systemd (`plinth-agent.service`).
    Systemd,
    /// A detached `plinth agent` process.
    Spawn,
}

/// What starting the agent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStarted {
    /// An agent was already answering on its status port.
    AlreadyRunning,
    /// Started via systemd.
    Systemd,
    /// Spawned with this pid; log at this host path.
    Spawned {
        /// pid of the agent.
        pid: i32,
        /// Its log file (host path).
        log: PathBuf,
    },
}

/// True when the systemd unit `plinth-agent.service` is installed and systemd runs.
pub fn systemd_unit_installed() -> bool {
    Path::new("/run/systemd/system").exists()
        && Command::new("systemctl")
            .args(["cat", "plinth-agent.service"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Files the agent start writes in the state dir: its config, pid file, log.
pub struct AgentFiles {
    /// KubeletConfiguration (host path).
    pub config: String,
    /// pid file (host path).
    pub pid: String,
    /// log file (host path).
    pub log: String,
}

/// The agent's files for this spec.
pub fn agent_files(spec: &ClusterSpec) -> AgentFiles {
    let s = spec.plinth.state_dir.trim_end_matches('/');
    AgentFiles {
        config: format!("{s}/agent-config.yaml"),
        pid: format!("{s}/agent.pid"),
        log: "/var/log/plinth/agent.log".to_string(),
    }
}

/// Starts the agent unless one already answers on its status port.
pub fn start_agent(
    spec: &ClusterSpec,
    root: &HostRoot,
    how: AgentStart,
    plinth_exe: &Path,
) -> Result<AgentStarted, InitError> {
    if agent_healthy(spec) {
        return Ok(AgentStarted::AlreadyRunning);
    }
    let files = agent_files(spec);
    fs::ensure_dir(&root.path(&spec.plinth.state_dir), 0o700)?;
    fs::write_atomic(
        &root.path(&files.config),
        agent_config_yaml(spec).as_bytes(),
        fs::MODE_PRIVATE,
    )?;
    match how {
        AgentStart::Systemd => {
            let st = Command::new("systemctl")
                .args(["start", "plinth-agent.service"])
                .status()
                .map_err(|e| {
                    InitError::Agent(format!("systemctl start plinth-agent.service: {e}"))
                })?;
            if !st.success() {
                return Err(InitError::Agent(format!(
                    "systemctl start plinth-agent.service exited with {st}"
                )));
            }
            Ok(AgentStarted::Systemd)
        }
        AgentStart::Spawn => spawn_agent(spec, root, &files, plinth_exe),
    }
}

fn spawn_agent(
    spec: &ClusterSpec,
    root: &HostRoot,
    files: &AgentFiles,
    plinth_exe: &Path,
) -> Result<AgentStarted, InitError> {
    use std::os::unix::process::CommandExt;
    let log_local = root.path(&files.log);
    if let Some(dir) = log_local.parent() {
        fs::ensure_dir(dir, 0o700)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_local)
        .map_err(|e| InitError::Agent(format!("open {}: {e}", log_local.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| InitError::Agent(e.to_string()))?;
    let mut cmd = Command::new(plinth_exe);
    cmd.arg("agent")
        .arg("--config")
        .arg(&files.config)
        .arg("--node-name")
        .arg(&spec.node_name);
    cmd.arg("--state-dir")
        .arg(&spec.plinth.state_dir)
        .arg("--log-dir")
        .arg(&spec.plinth.log_dir);
    if !root.is_real_root() {
        cmd.arg("--root").arg(root.dir());
    }
    if !spec.plinth.bin_path.is_empty() {
        let joined = std::env::join_paths(&spec.plinth.bin_path)
            .map_err(|e| InitError::Agent(e.to_string()))?;
        cmd.arg("--bin-path").arg(joined);
    }
    cmd.env(
        "PLINTH_LOG",
        std::env::var("PLINTH_LOG").unwrap_or_else(|_| "info".into()),
    );
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid is async-signal-safe; it detaches the agent into its own session so it
    // outlives this `plinth init`.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| InitError::Agent(format!("spawn {}: {e}", plinth_exe.display())))?;
    let pid = child.id() as i32;
    // The child is detached; it is reaped by init when this process exits.
    std::mem::forget(child);
    fs::write_atomic(
        &root.path(&files.pid),
        format!("{pid}\n").as_bytes(),
        fs::MODE_PRIVATE,
    )?;
    Ok(AgentStarted::Spawned {
        pid,
        log: PathBuf::from(&files.log),
    })
}

/// True if an agent answers `/healthz` on the spec's status address.
pub fn agent_healthy(spec: &ClusterSpec) -> bool {
    use std::io::{Read, Write};
    let addr = agent_addr(spec);
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &match addr.parse() {
            Ok(a) => a,
            Err(_) => return false,
        },
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

/// The kubeadm v1.29+ ClusterRoleBinding that makes admin.conf's group a cluster admin.
pub fn admin_binding_json() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:cluster-admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}]
    })
}

/// Creates (idempotently) the `kubeadm:cluster-admins` binding using super-admin.conf.
/// Returns true when it was created now, false when it already existed.
pub async fn ensure_admin_binding(spec: &ClusterSpec, root: &HostRoot) -> Result<bool, InitError> {
    let path = root.path(format!(
        "{}/super-admin.conf",
        spec.plinth.kubeconfig_dir.trim_end_matches('/')
    ));
    let kc =
        crate::client::ClientConfig::load(&path).map_err(|e| InitError::Binding(e.to_string()))?;
    // Talk to this node's apiserver: the load balancer may not exist yet.
    let base = spec.local_endpoint().url();
    let client = kc
        .http_client()
        .map_err(|e| InitError::Binding(e.to_string()))?;
    let url = format!("{base}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
    let mut last = String::new();
    for _ in 0..30 {
        match client.post(&url).json(&admin_binding_json()).send().await {
            Ok(r) if r.status().as_u16() == 201 => return Ok(true),
            Ok(r) if r.status().as_u16() == 409 => return Ok(false),
            Ok(r) => {
                let status = r.status();
                last = format!(
                    "POST {url}: HTTP {status}: {}",
                    r.text().await.unwrap_or_default()
                );
                if status.as_u16() == 403 || status.as_u16() == 401 {
                    break;
                }
            }
            Err(e) => last = format!("POST {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(InitError::Binding(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_parse_by_kubeadm_name() {
        assert_eq!(
            Phase::parse("wait-control-plane").unwrap(),
            Phase::WaitControlPlane
        );
        let e = Phase::parse("certz").unwrap_err().to_string();
        assert!(e.contains("certz") && e.contains("control-plane"), "{e}");
    }

    #[test]
    fn agent_config_names_the_manifest_dir() {
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        let y = agent_config_yaml(&spec);
        assert!(y.contains("staticPodPath: /etc/kubernetes/manifests"));
        assert!(y.contains("healthzPort: 10248"));
        assert!(y.contains("kubeletKubeconfig: /etc/kubernetes/kubelet.conf"));
        assert_eq!(agent_addr(&spec), "127.0.0.1:10248");
    }

    /// A fake `kube-apiserver` in a fresh bin dir that prints `output` for `--version`.
    fn fake_apiserver(output: &str) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("kube-apiserver");
        std::fs::write(&bin, format!("#!/bin/sh\necho '{output}'\n")).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread's fork may briefly hold the file open for writing (ETXTBSY):
        // wait until it runs.
        for _ in 0..100 {
            match std::process::Command::new(&bin).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => break,
            }
        }
        dir
    }

    fn spec_with_bin_path(dir: &Path) -> ClusterSpec {
        let mut spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        spec.plinth.bin_path = vec![dir.to_path_buf()];
        spec
    }

    /// Regression (issue 8 item 6): with no kubernetesVersion, the default was v1.33.0 whatever
    /// kube-apiserver would run, and preflight's skew check then failed on a v1.24 binary.
    #[test]
    fn kubernetes_version_defaults_to_apiserver_binary_version() {
        use crate::config::KubeVersionSource;
        let dir = fake_apiserver("Kubernetes v1.24.0-alpha.1");
        let mut spec = spec_with_bin_path(dir.path());
        let line = default_kubernetes_version(&mut spec).expect("a line saying where from");
        assert_eq!(spec.kubernetes_version.to_string(), "v1.24.0-alpha.1");
        let bin = dir.path().join("kube-apiserver");
        assert_eq!(
            spec.kubernetes_version_source,
            KubeVersionSource::Binary(bin.clone())
        );
        assert!(
            line.contains("v1.24.0-alpha.1") && line.contains(&bin.display().to_string()),
            "{line}"
        );
        // Asked again (the spec now says where it came from): nothing changes.
        assert_eq!(default_kubernetes_version(&mut spec), None);

        // Build metadata is dropped; the core version and pre-release stay.
        let dir = fake_apiserver("Kubernetes v1.24.1-rc.0.12+e5f3f020084e16");
        let mut spec = spec_with_bin_path(dir.path());
        default_kubernetes_version(&mut spec).unwrap();
        assert_eq!(spec.kubernetes_version.to_string(), "v1.24.1-rc.0.12");
    }

    #[test]
    fn kubernetes_version_set_in_the_config_is_kept() {
        let dir = fake_apiserver("Kubernetes v1.24.0");
        let mut spec = spec_with_bin_path(dir.path());
        spec.kubernetes_version_source = crate::config::KubeVersionSource::Config;
        assert_eq!(default_kubernetes_version(&mut spec), None);
        assert_eq!(
            spec.kubernetes_version,
            crate::config::DEFAULT_KUBERNETES_VERSION
        );
    }

    #[test]
    fn kubernetes_version_falls_back_to_the_default_without_a_binary() {
        let empty = tempfile::tempdir().unwrap();
        let mut spec = spec_with_bin_path(empty.path());
        let line = default_kubernetes_version(&mut spec).unwrap();
        assert_eq!(
            spec.kubernetes_version,
            crate::config::DEFAULT_KUBERNETES_VERSION
        );
        assert_eq!(
            spec.kubernetes_version_source,
            crate::config::KubeVersionSource::Default
        );
        assert!(
            line.contains("no kube-apiserver") && line.contains("v1.33.0"),
            "{line}"
        );
        let dir = fake_apiserver("no version here");
        let mut spec = spec_with_bin_path(dir.path());
        let line = default_kubernetes_version(&mut spec).unwrap();
        assert_eq!(
            spec.kubernetes_version,
            crate::config::DEFAULT_KUBERNETES_VERSION
        );
        assert!(line.contains("no usable version"), "{line}");
    }

    #[test]
    fn admin_binding_matches_kubeadm() {
        let b = admin_binding_json();
        assert_eq!(b["metadata"]["name"], "kubeadm:cluster-admins");
        assert_eq!(b["roleRef"]["name"], "cluster-admin");
        assert_eq!(b["subjects"][0]["name"], "kubeadm:cluster-admins");
    }
}
