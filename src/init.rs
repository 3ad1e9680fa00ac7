//! The operations of `plinth init`'s phases: certificates, kubeconfigs, manifests, the etcd
//! user, starting the agent, the admin binding. Their order, and what `init phase`,
//! `--skip-phases` and dry-run run, is the table in [`crate::workflow::init`]. Each render
//! phase reconciles: it compares what should exist with what is on disk and writes only the
//! difference, so a second `init` changes nothing.

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
    #[error("[agent] {action}")]
    Agent {
        /// What failed (`spawn /usr/bin/plinth`).
        action: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `systemctl start plinth-agent.service` failed.
    #[error("[agent] systemctl start plinth-agent.service exited with {0}")]
    AgentUnit(std::process::ExitStatus),
    /// The agent's bin path cannot be passed on its command line.
    #[error("[agent] binPath cannot be passed to the agent")]
    AgentBinPath(#[source] std::env::JoinPathsError),
    /// This process's executable (which the agent runs as) could not be located.
    #[error("[agent] locating the plinth binary")]
    Exe(#[source] std::io::Error),
    /// The admin ClusterRoleBinding could not be created.
    #[error("[bootstrap] creating ClusterRoleBinding kubeadm:cluster-admins")]
    Binding(#[source] BindingError),
    /// `init phase etcd` with an external etcd.
    #[error("[etcd] the config uses external etcd (etcd.external): there is no local etcd manifest to write")]
    ExternalEtcd,
    /// Preflight found errors (each reported as a finding).
    #[error("[preflight] Some fatal errors occurred; to ignore them, pass --ignore-preflight-errors=<name,...> (names in brackets above)")]
    PreflightFailed,
    /// The control plane did not become healthy (the wait's report says why).
    #[error("[wait-control-plane] the control plane did not become healthy")]
    Unhealthy,
    /// Waiting for health could not run.
    #[error("[wait-control-plane] health check failed")]
    Health(#[from] crate::health::HealthError),
    /// The reset ledger (what init creates) could not be read or written.
    #[error("recording what init creates (for reset)")]
    Ledger(#[source] crate::reset::ResetError),
    /// The configuration could not be stored for the day-2 verbs.
    #[error("[config] storing the configuration used in {path}")]
    PersistConfig {
        /// Host path.
        path: &'static str,
        /// Why.
        #[source]
        source: crate::fs::FsError,
    },
    /// The async runtime for waiting could not be started.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A control-plane binary could not be provided (reported as an `[ERROR Binaries-…]`
    /// finding naming the URL and what was expected).
    #[error("[binaries] a control-plane binary could not be provided")]
    BinariesMissing,
    /// Binary provisioning could not start (CA bundle, architecture, client).
    #[error("[binaries] providing the control-plane binaries")]
    Binaries(#[source] Box<crate::binaries::BinariesError>),
}

impl InitError {
    /// Whether the events already told the operator everything (a failed preflight's
    /// findings, an unhealthy wait's report): print nothing more, exit 1.
    pub fn is_reported(&self) -> bool {
        matches!(self, InitError::Unhealthy | InitError::BinariesMissing)
    }
}

/// Why the admin ClusterRoleBinding could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// super-admin.conf could not be used.
    #[error("using {}", path.display())]
    Kubeconfig {
        /// Its path (as opened).
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::client::ClientError,
    },
    /// The request did not get an answer.
    #[error("POST {url}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The apiserver refused.
    #[error("POST {url}: HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status.
        status: reqwest::StatusCode,
        /// Response body.
        body: String,
    },
}

pub use crate::report::PhaseReport;

/// Runs the certs phase (`only` = one certificate name, or all).
pub fn phase_certs(
    spec: &ClusterSpec,
    root: &HostRoot,
    only: Option<&str>,
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    phase_certs_of(spec, root, only, &[], dry_run)
}

/// [`phase_certs`] reporting only the certificates named in `report` (all when empty): the
/// part of a pass over several certificates that one row of init's table stands for.
pub fn phase_certs_of(
    spec: &ClusterSpec,
    root: &HostRoot,
    only: Option<&str>,
    report: &[&str],
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let opts = crate::pki::PkiOptions {
        only: only.map(str::to_string),
        renew: crate::pki::Renew::None,
    };
    let plan = crate::pki::plan(spec, root, &opts)?;
    let mut r = if dry_run {
        plan.report()
    } else {
        plan.apply()?
    };
    if !report.is_empty() {
        r.items.retain(|i| report.contains(&i.name.as_str()));
    }
    Ok(PhaseReport {
        lines: r.lines(),
        changed: r.changed_files(),
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
        only: only.map(str::to_string),
        ..Default::default()
    };
    let plan = crate::kubeconfig::plan(spec, root, &opts)?;
    let report = if dry_run {
        plan.report()
    } else {
        plan.apply()?
    };
    Ok(PhaseReport {
        lines: report.lines(),
        changed: report.changed_files(),
    })
}

/// Creates the `etcd` system user when this node's etcd runs as it (cis profile, local
/// etcd): the explicit step before etcd's manifest is written. Returns its uid and gid.
pub fn ensure_etcd_user(spec: &ClusterSpec) -> Result<Option<(u32, u32)>, InitError> {
    if spec.plinth.security_profile == crate::config::SecurityProfile::Cis && spec.has_local_etcd()
    {
        return Ok(Some(crate::security::ensure_etcd_user()?));
    }
    Ok(None)
}

/// Renders and writes the manifests of `components`.
pub fn phase_manifests(
    spec: &ClusterSpec,
    root: &HostRoot,
    components: &[Component],
    dry_run: bool,
) -> Result<PhaseReport, InitError> {
    let ctx = RenderContext::for_node(root, spec);
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

/// The control-plane components (apiserver, controller-manager, scheduler).
pub fn control_plane_components() -> Vec<Component> {
    vec![
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
    ]
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

/// The KubeletConfiguration the agent runs with (written to the state dir).
pub fn agent_config_yaml(spec: &ClusterSpec) -> String {
    format!(
        "# Written by plinth init: the bundled agent's configuration.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         staticPodPath: {}\n\
         fileCheckFrequency: 20s\n\
         healthzBindAddress: {}\n\
         healthzPort: {}\n",
        spec.plinth.manifests_dir,
        spec.plinth.agent_healthz_bind_address,
        spec.plinth.agent_healthz_port
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
                .map_err(|source| InitError::Agent {
                    action: "systemctl start plinth-agent.service".into(),
                    source,
                })?;
            if !st.success() {
                return Err(InitError::AgentUnit(st));
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
        .map_err(|source| InitError::Agent {
            action: format!("open {}", log_local.display()),
            source,
        })?;
    let log2 = log.try_clone().map_err(|source| InitError::Agent {
        action: format!("duplicate the handle of {}", log_local.display()),
        source,
    })?;
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
        let joined =
            std::env::join_paths(&spec.plinth.bin_path).map_err(InitError::AgentBinPath)?;
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
    let child = cmd.spawn().map_err(|source| InitError::Agent {
        action: format!("spawn {}", plinth_exe.display()),
        source,
    })?;
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
    let addr = spec.plinth.agent_status_addr();
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
/// Returns true when it was created now, false when it already existed. Retries for up to
/// 30 s while the apiserver settles; a 401 or 403 ends it at once.
pub async fn ensure_admin_binding(spec: &ClusterSpec, root: &HostRoot) -> Result<bool, InitError> {
    let path = root.path(format!(
        "{}/super-admin.conf",
        spec.plinth.kubeconfig_dir.trim_end_matches('/')
    ));
    let kubeconfig = |source| {
        InitError::Binding(BindingError::Kubeconfig {
            path: path.clone(),
            source,
        })
    };
    let kc = crate::client::ClientConfig::load(&path).map_err(kubeconfig)?;
    // Talk to this node's apiserver: the load balancer may not exist yet.
    let base = spec.local_endpoint().url();
    let client = kc.http_client().map_err(kubeconfig)?;
    let url = format!("{base}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
    let mut last = None;
    for _ in 0..30 {
        match client.post(&url).json(&admin_binding_json()).send().await {
            Ok(r) if r.status().as_u16() == 201 => return Ok(true),
            Ok(r) if r.status().as_u16() == 409 => return Ok(false),
            Ok(r) => {
                let status = r.status();
                last = Some(BindingError::Status {
                    url: url.clone(),
                    status,
                    body: r.text().await.unwrap_or_default(),
                });
                if status.as_u16() == 403 || status.as_u16() == 401 {
                    break;
                }
            }
            Err(source) => {
                last = Some(BindingError::Request {
                    url: url.clone(),
                    source,
                })
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(InitError::Binding(last.expect("the loop ran")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_config_names_the_manifest_dir() {
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        let y = agent_config_yaml(&spec);
        assert!(y.contains("staticPodPath: /etc/kubernetes/manifests"));
        assert!(y.contains("healthzPort: 10248"));
        assert_eq!(spec.plinth.agent_status_addr(), "127.0.0.1:10248");
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
