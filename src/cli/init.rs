//! `plinth init` and `plinth init phase <name>`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use plinth::config::ClusterSpec;
use plinth::fs::HostRoot;
use plinth::init::{self, AgentStart, AgentStarted, Phase as InitPhase};
use plinth::manifests::Component;
use plinth::preflight::{self, Severity};

use super::progress::WaitProgress;
use super::{ConfigArgs, RootArgs};

/// `plinth init`.
#[derive(Debug, Args)]
pub struct InitCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the plan and the files that would be written; write nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Phases to skip (comma-separated), e.g. `preflight,wait-control-plane`.
    #[arg(long, value_delimiter = ',')]
    pub skip_phases: Vec<String>,
    /// Preflight checks whose errors become warnings (`all` for every check).
    #[arg(long, value_delimiter = ',', global = true)]
    pub ignore_preflight_errors: Vec<String>,
    /// Download no binaries: fail, listing what is missing, unless binPath/$PATH or the
    /// cache already hold every control-plane binary in its version.
    #[arg(long, global = true)]
    pub offline: bool,
    /// How to start the agent: systemd unit, spawned detached process, or not at all.
    #[arg(long, value_enum, default_value_t = AgentMode::Auto, global = true)]
    pub agent: AgentMode,
    #[command(subcommand)]
    pub phase: Option<InitSub>,
}

/// How `init` starts the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentMode {
    /// systemd if `plinth-agent.service` is installed, else spawn.
    Auto,
    /// Start `plinth-agent.service` through systemd.
    Systemd,
    /// Spawn `plinth agent` detached (own session, log file, pid file).
    Spawn,
    /// Do not start the agent.
    None,
}

/// `plinth init phase ...`.
#[derive(Debug, Subcommand)]
pub enum InitSub {
    /// Run one phase of init.
    #[command(subcommand)]
    Phase(Phase),
}

/// The phases of `plinth init`.
#[derive(Debug, Subcommand)]
pub enum Phase {
    /// Provide the control-plane binaries: binPath/$PATH or the cache, else download,
    /// verify and cache them (binaryRepository, etcdBinaryRepository).
    Binaries,
    /// Check the host before changing anything.
    Preflight,
    /// Generate certificates: `all` or one name (ca, apiserver, etcd-server, ...).
    Certs {
        /// `all` or a certificate name.
        #[arg(default_value = "all")]
        name: String,
    },
    /// Generate kubeconfig files: `all` or one (admin, super-admin, kubelet, controller-manager, scheduler).
    Kubeconfig {
        /// `all` or a kubeconfig name.
        #[arg(default_value = "all")]
        name: String,
    },
    /// Write the local etcd static pod manifest (`local`).
    Etcd {
        /// Only `local` is supported.
        #[arg(default_value = "local")]
        mode: String,
    },
    /// Write control-plane static pod manifests: `all`, apiserver, controller-manager, scheduler.
    ControlPlane {
        /// `all` or a component.
        #[arg(default_value = "all")]
        component: String,
    },
    /// Start the agent.
    Agent,
    /// Wait until every component is healthy.
    WaitControlPlane,
}

/// Loads and validates the config for a command (shared by init, verify, certs, ...).
pub fn load_spec(config: &ConfigArgs) -> anyhow::Result<ClusterSpec> {
    let spec = plinth::config::load(
        config.config.as_deref(),
        &config.overrides(),
        &plinth::config::RealHost,
    )
    .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    Ok(finish_spec(spec))
}

/// The defaults that come from the binaries that will run: kubernetesVersion from
/// kube-apiserver (when the config sets none; the line saying so goes to stderr) and etcd's
/// image tag from etcd. A persisted configuration already records both: nothing changes.
pub fn finish_spec(mut spec: ClusterSpec) -> ClusterSpec {
    if let Some(line) = init::default_kubernetes_version(&mut spec) {
        eprintln!("[config] {line}");
    }
    if let Some(v) = init::pin_etcd_version_to_binary(&mut spec) {
        tracing::info!("etcd on the bin path is {v}: rendering etcd for that version");
    }
    spec
}

fn print_lines(lines: &[String]) {
    for l in lines {
        println!("{l}");
    }
}

/// Runs `plinth init`.
pub fn run(cmd: InitCmd) -> anyhow::Result<i32> {
    let spec = load_spec(&cmd.config)?;
    let root = cmd.root.host_root();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(InitSub::Phase(p)) = &cmd.phase {
        return run_phase(&cmd, p, &spec, &root, &rt);
    }
    let skip_binaries = cmd.skip_phases.iter().any(|s| s == "binaries");
    let skip: Vec<InitPhase> = cmd
        .skip_phases
        .iter()
        .filter(|s| *s != "binaries")
        .map(|s| InitPhase::parse(s))
        .collect::<Result<_, _>>()?;
    if cmd.dry_run {
        println!("[dry-run] plinth init would do the following (nothing is written):");
    }
    if !skip_binaries && !super::binaries::init_step(&spec, &root, cmd.offline, cmd.dry_run)? {
        return Ok(1);
    }
    if !skip.contains(&InitPhase::Preflight) && !run_preflight(&cmd, &spec, &root)? {
        return Ok(1);
    }
    let mut changed = Vec::new();
    if cmd.dry_run {
        println!(
            "[dry-run] would store the configuration used in {}",
            plinth::config::persisted::PERSISTED_CONFIG_PATH
        );
    } else {
        plinth::reset::record_ledger(&spec, &root)
            .context("recording what init creates (for reset)")?;
        changed.extend(persist_config(&spec, &root)?);
    }
    // Pipelined start: etcd's certificates and manifest first, then the agent, so etcd elects
    // itself while the remaining keys are generated (with RSA that keygen is most of init's own
    // time). The files written are exactly those of the strict phase order.
    let pipelined = !cmd.dry_run
        && spec.has_local_etcd()
        && cmd.agent != AgentMode::None
        && ![InitPhase::Certs, InitPhase::Etcd, InitPhase::Agent]
            .iter()
            .any(|p| skip.contains(p));
    let mut rest_skip = skip.clone();
    if pipelined {
        let certs = init::phase_certs(&spec, &root, Some(plinth::pki::ETCD_GROUP), false)?;
        let etcd = init::phase_manifests(&spec, &root, &init::etcd_components(&spec), false)?;
        for r in [certs, etcd] {
            print_lines(&r.lines);
            changed.extend(r.changed);
        }
        start_agent(&cmd, &spec, &root)?;
        rest_skip.push(InitPhase::Etcd);
    }
    let report = init::render_all(&spec, &root, &rest_skip, cmd.dry_run)?;
    print_lines(&report.lines);
    changed.extend(report.changed);
    if cmd.dry_run {
        if !skip.contains(&InitPhase::Agent) {
            println!(
                "[dry-run] then {}",
                dry_run_agent_action(
                    resolve_agent_mode(cmd.agent, &root),
                    init::agent_healthy(&spec),
                    &spec,
                    &root
                )
            );
        }
        if !skip.contains(&InitPhase::WaitControlPlane) {
            println!("[dry-run] then wait for the control plane to become healthy");
        }
        return Ok(0);
    }
    if changed.is_empty() {
        println!("[init] every file is already up to date: nothing changed on disk");
    }
    if !pipelined && !skip.contains(&InitPhase::Agent) {
        start_agent(&cmd, &spec, &root)?;
    }
    if !skip.contains(&InitPhase::WaitControlPlane) {
        if !wait(&spec, &root, &rt, cmd.agent != AgentMode::None)? {
            return Ok(1);
        }
        match rt.block_on(init::ensure_admin_binding(&spec, &root)) {
            Ok(true) => println!("[bootstrap] created ClusterRoleBinding kubeadm:cluster-admins (group kubeadm:cluster-admins → cluster-admin)"),
            Ok(false) => println!("[bootstrap] ClusterRoleBinding kubeadm:cluster-admins already exists"),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(1);
            }
        }
        print_success(&spec, &root);
    }
    Ok(0)
}

/// Persists the effective configuration for the day-2 verbs, first showing what changed since
/// the configuration the previous init persisted. Returns the host path when it was written.
fn persist_config(spec: &ClusterSpec, root: &HostRoot) -> anyhow::Result<Option<PathBuf>> {
    use plinth::config::{effective, persisted};
    let host_path = persisted::PERSISTED_CONFIG_PATH;
    match persisted::load(root, &Default::default(), &plinth::config::RealHost) {
        Ok(Some(old)) => {
            let changes = effective::diff(&old, spec);
            if !changes.is_empty() {
                println!("[config] changes since the configuration persisted in {host_path}:");
                for c in &changes {
                    println!("[config]   {c}");
                }
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("[config] warning: replacing it: {e}"),
    }
    let outcome = persisted::save(spec, root)
        .with_context(|| format!("storing the configuration used in {host_path}"))?;
    if outcome.changed() {
        println!("[config] Storing the configuration used in {host_path}");
        Ok(Some(PathBuf::from(host_path)))
    } else {
        Ok(None)
    }
}

fn run_phase(
    cmd: &InitCmd,
    phase: &Phase,
    spec: &ClusterSpec,
    root: &HostRoot,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<i32> {
    // A phase that writes the node's files records the configuration it used, as init does.
    let writes = !matches!(
        phase,
        Phase::Preflight | Phase::WaitControlPlane | Phase::Binaries
    );
    if writes && !cmd.dry_run {
        persist_config(spec, root)?;
    }
    let all = |s: &str| {
        if s == "all" {
            None
        } else {
            Some(s.to_string())
        }
    };
    let report = match phase {
        Phase::Binaries => {
            let ok = super::binaries::init_step(spec, root, cmd.offline, cmd.dry_run)?;
            return Ok(if ok { 0 } else { 1 });
        }
        Phase::Preflight => {
            return Ok(if run_preflight(cmd, spec, root)? {
                0
            } else {
                1
            })
        }
        Phase::Certs { name } => init::phase_certs(spec, root, all(name).as_deref(), cmd.dry_run)?,
        Phase::Kubeconfig { name } => {
            init::phase_kubeconfig(spec, root, all(name).as_deref(), cmd.dry_run)?
        }
        Phase::Etcd { mode } => {
            if mode != "local" {
                bail!("init phase etcd: invalid value {mode:?}: only \"local\" is supported");
            }
            if !spec.has_local_etcd() {
                bail!("init phase etcd local: the config uses external etcd (etcd.external): there is no local etcd manifest to write");
            }
            init::phase_manifests(spec, root, &[Component::Etcd], cmd.dry_run)?
        }
        Phase::ControlPlane { component } => {
            let comps = if component == "all" {
                init::control_plane_components()
            } else {
                let c: Component = component.parse().map_err(|_| {
                    anyhow::anyhow!("init phase control-plane: invalid value {component:?}: allowed are all, apiserver, controller-manager, scheduler")
                })?;
                if c == Component::Etcd {
                    bail!("init phase control-plane: etcd is written by `plinth init phase etcd local`");
                }
                vec![c]
            };
            init::phase_manifests(spec, root, &comps, cmd.dry_run)?
        }
        Phase::Agent => {
            start_agent(cmd, spec, root)?;
            return Ok(0);
        }
        Phase::WaitControlPlane => {
            return Ok(if wait(spec, root, rt, cmd.agent != AgentMode::None)? {
                0
            } else {
                1
            })
        }
    };
    print_lines(&report.lines);
    Ok(0)
}

/// Builds the preflight context from the spec, the manifests it will write and the agent.
fn preflight_context(
    spec: &ClusterSpec,
    root: &HostRoot,
) -> anyhow::Result<preflight::PreflightContext> {
    let ctx = init::render_context(spec, root, true)?;
    let mut pc = preflight::PreflightContext {
        bin_path: spec.plinth.bin_path.clone(),
        ..Default::default()
    };
    for c in Component::all() {
        if c == Component::Etcd && !spec.has_local_etcd() {
            continue;
        }
        let m = plinth::manifests::render(spec, c, &ctx)?;
        pc.own_manifests.push(c.file_name().to_string());
        if let Some(container) = m.pod.spec.as_ref().and_then(|s| s.containers.first()) {
            if let Some(bin) = container.command.as_ref().and_then(|v| v.first()) {
                // The agent runs the cached binary of the image's version when there is one.
                let cached = container.image.as_deref().and_then(|image| {
                    plinth::binaries::image_executable(
                        root,
                        std::path::Path::new(&spec.plinth.state_dir),
                        image,
                        bin,
                    )
                });
                let bin = cached
                    .map(|p| p.display().to_string())
                    .unwrap_or(bin.clone());
                pc.binaries.push((c.name().to_string(), bin));
            }
            if let Some(run_as) = run_as_of(&m.pod, container, c, spec) {
                pc.run_as.insert(c.name().to_string(), run_as);
            }
        }
    }
    pc.ports = vec![
        (spec.bind_port, "kube-apiserver".into()),
        (10257, "kube-controller-manager".into()),
        (10259, "kube-scheduler".into()),
    ];
    if spec.has_local_etcd() {
        pc.ports.extend([
            (2379, "etcd".into()),
            (2380, "etcd".into()),
            (2381, "etcd".into()),
        ]);
    }
    pc.ports
        .push((spec.plinth.agent_healthz_port, "plinth agent".into()));
    // Whatever the running agent owns is ours.
    let pids = plinth::agentctl::running_pids(root, &spec.plinth.state_dir);
    pc.agent_pid = pids.agent;
    pc.agent_pids = pids.containers;
    let ledger = plinth::reset::load_ledger(spec, root)?;
    if let plinth::config::Etcd::Local(l) = &spec.etcd {
        pc.etcd_data_is_ours = ledger.created_dirs.contains(&l.data_dir);
    }
    Ok(pc)
}

/// The non-root identity a component's pod runs as (container over pod securityContext).
/// Under the cis profile etcd runs as the `etcd` system user, which a first init has yet to
/// create (the dry render then says uid 0).
fn run_as_of(
    pod: &k8s_openapi::api::core::v1::Pod,
    container: &k8s_openapi::api::core::v1::Container,
    c: Component,
    spec: &ClusterSpec,
) -> Option<preflight::RunAs> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = container.security_context.as_ref();
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user))
        .and_then(|u| u32::try_from(u).ok());
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group))
        .and_then(|g| u32::try_from(g).ok());
    match uid {
        Some(uid) if uid != 0 => {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| format!("uid {uid}"));
            Some(preflight::RunAs {
                user,
                uid: Some(uid),
                gid,
            })
        }
        _ if c == Component::Etcd
            && spec.plinth.security_profile == plinth::config::SecurityProfile::Cis
            && plinth::security::lookup_etcd_user().is_none() =>
        {
            Some(preflight::RunAs {
                user: plinth::security::ETCD_USER.to_string(),
                uid: None,
                gid: None,
            })
        }
        _ => None,
    }
}

fn run_preflight(cmd: &InitCmd, spec: &ClusterSpec, root: &HostRoot) -> anyhow::Result<bool> {
    println!("[preflight] Running pre-flight checks");
    let ctx = preflight_context(spec, root)?;
    let findings = preflight::run(spec, root, &ctx, &cmd.ignore_preflight_errors);
    for f in &findings {
        match f.severity {
            Severity::Pass => tracing::info!("[preflight] {}: {}", f.name, f.message),
            Severity::Warning if f.ignored => {
                eprintln!("\t[WARNING {}]: {} (ignored)", f.name, f.message)
            }
            Severity::Warning => eprintln!("\t[WARNING {}]: {}", f.name, f.message),
            Severity::Error => eprintln!("\t[ERROR {}]: {}", f.name, f.message),
        }
    }
    if preflight::has_errors(&findings) {
        eprintln!("[preflight] Some fatal errors occurred; to ignore them, pass --ignore-preflight-errors=<name,...> (names in brackets above)");
        return Ok(false);
    }
    Ok(true)
}

/// How `--agent` starts the agent on this host; `None` for `--agent=none`.
fn resolve_agent_mode(mode: AgentMode, root: &HostRoot) -> Option<AgentStart> {
    match mode {
        AgentMode::None => None,
        AgentMode::Systemd => Some(AgentStart::Systemd),
        AgentMode::Spawn => Some(AgentStart::Spawn),
        AgentMode::Auto if root.is_real_root() && init::systemd_unit_installed() => {
            Some(AgentStart::Systemd)
        }
        AgentMode::Auto => Some(AgentStart::Spawn),
    }
}

/// What a real init would do about the agent, in words, for `--dry-run`.
fn dry_run_agent_action(
    how: Option<AgentStart>,
    running: bool,
    spec: &ClusterSpec,
    root: &HostRoot,
) -> String {
    let addr = init::agent_addr(spec);
    match how {
        None => "leave the agent alone (--agent=none): nothing to start".to_string(),
        Some(_) if running => {
            format!("the agent is already running on {addr}: nothing to start")
        }
        Some(AgentStart::Systemd) => {
            "start the agent through systemd (systemctl start plinth-agent.service)".to_string()
        }
        Some(AgentStart::Spawn) => format!(
            "start the agent as a detached `plinth agent` process (status on {addr}, log in {})",
            root.path(init::agent_files(spec).log).display()
        ),
    }
}

/// ` --root DIR` for the commands init suggests, empty for the real root.
pub(crate) fn root_flag(root: &HostRoot) -> String {
    if root.is_real_root() {
        String::new()
    } else {
        format!(" --root {}", root.dir().display())
    }
}

fn start_agent(cmd: &InitCmd, spec: &ClusterSpec, root: &HostRoot) -> anyhow::Result<()> {
    let Some(how) = resolve_agent_mode(cmd.agent, root) else {
        println!("[agent] --agent=none: not starting the agent");
        return Ok(());
    };
    let exe = std::env::current_exe().context("locating the plinth binary")?;
    match init::start_agent(spec, root, how, &exe)? {
        AgentStarted::AlreadyRunning => println!(
            "[agent] the agent is already running on {}",
            init::agent_addr(spec)
        ),
        AgentStarted::Systemd => println!("[agent] started plinth-agent.service"),
        AgentStarted::Spawned { pid, log } => println!(
            "[agent] started plinth agent (pid {pid}), log: {}",
            log.display()
        ),
    }
    Ok(())
}

fn wait(
    spec: &ClusterSpec,
    root: &HostRoot,
    rt: &tokio::runtime::Runtime,
    require_agent: bool,
) -> anyhow::Result<bool> {
    let timeout = spec.timeouts.control_plane_component_health_check;
    println!(
        "[wait-control-plane] Waiting for the agent to run the static pods from {} (timeout {}s)",
        spec.plinth.manifests_dir,
        timeout.as_secs()
    );
    let ctx = init::render_context(spec, root, true)?;
    let mut targets = Vec::new();
    let mut expected_uids = std::collections::BTreeMap::new();
    for c in Component::all() {
        if c == Component::Etcd && !spec.has_local_etcd() {
            continue;
        }
        let path = root.path(&spec.plinth.manifests_dir).join(c.file_name());
        let pod = match std::fs::read_to_string(&path) {
            Ok(t) => plinth::manifests::parse_manifest(&t)?,
            Err(_) => plinth::manifests::render(spec, c, &ctx)?.pod,
        };
        let target = plinth::health::target_for(&pod, spec.advertise_address)?;
        // After a config change the old pod may still answer until the agent replaces it:
        // only the pod of the manifest now on disk counts.
        let host_path = std::path::Path::new(&spec.plinth.manifests_dir).join(c.file_name());
        if let Ok(p) = plinth::agent::pod::identify(pod, &spec.node_name, &host_path) {
            expected_uids.insert(target.pod_name.clone(), p.uid);
        }
        targets.push(target);
    }
    let opts = plinth::health::WaitOptions {
        agent_addr: init::agent_addr(spec),
        node_name: spec.node_name.clone(),
        timeout,
        interval: Duration::from_millis(100),
        require_agent,
        expected_uids,
        logs: Some((root.clone(), spec.plinth.log_dir.clone())),
    };
    let mut progress = WaitProgress::new("[wait-control-plane]");
    let report = rt.block_on(plinth::health::wait(&targets, &opts, |c, e| {
        progress.update(c, e)
    }))?;
    progress.finish();
    if report.healthy {
        println!(
            "[wait-control-plane] all {} components are healthy after {:.1}s",
            report.components.len(),
            report.elapsed.as_secs_f64()
        );
        return Ok(true);
    }
    let failed: Vec<&str> = report
        .components
        .iter()
        .filter(|c| matches!(c.stage, plinth::health::Stage::Failed(_)))
        .map(|c| c.target.component.as_str())
        .collect();
    if failed.is_empty() {
        eprintln!(
            "[wait-control-plane] the control plane did not become healthy within {}s:",
            timeout.as_secs()
        );
    } else {
        eprintln!(
            "[wait-control-plane] {} failed after {:.1}s in a way no retry will fix; not waiting for the {}s timeout:",
            failed.join(", "),
            report.elapsed.as_secs_f64(),
            timeout.as_secs()
        );
    }
    for c in report
        .components
        .iter()
        .filter(|c| c.stage != plinth::health::Stage::Healthy)
    {
        eprintln!("\n  {} — {}", c.target.component, c.stage);
        eprintln!("    health endpoint: {}", c.target.url);
        match &c.agent {
            Some(v) => {
                eprintln!(
                    "    agent: pod {} container {}: {}",
                    v.pod, v.container, v.state
                );
                eprintln!(
                    "    restarts: {}, last exit code: {}",
                    v.restarts,
                    v.last_exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "none".into())
                );
                let lines = plinth::health::last_log_lines(root, &spec.plinth.log_dir, v, 20);
                if lines.is_empty() {
                    eprintln!("    log: (empty)");
                } else {
                    eprintln!("    last {} log lines:", lines.len());
                    for l in lines {
                        eprintln!("      | {l}");
                    }
                }
            }
            None => {
                eprintln!(
                    "    agent: no pod for this manifest (is the agent running? `plinth ps{}`)",
                    root_flag(root)
                )
            }
        }
    }
    Ok(false)
}

fn print_success(spec: &ClusterSpec, root: &HostRoot) {
    print!("{}", success_text(spec, root));
}

/// init's closing text: how to use the cluster, and the exact plinth commands for this root.
fn success_text(spec: &ClusterSpec, root: &HostRoot) -> String {
    let kdir = root.path(&spec.plinth.kubeconfig_dir);
    let root_flag = root_flag(root);
    format!(
        "\nYour Kubernetes control-plane has initialized successfully!\n\n\
         To start using your cluster, run:\n\n  \
         export KUBECONFIG={kdir}/admin.conf\n  \
         kubectl get --raw /readyz\n\n\
         Check the control plane at any time with:\n\n  \
         plinth verify{root_flag}\n  \
         plinth ps{root_flag}\n\n\
         Pod logs are under {logs} (`plinth logs{root_flag} <pod>`); the agent logs to {agent}.\n",
        kdir = kdir.display(),
        logs = root.path(&spec.plinth.log_dir).display(),
        agent = root.path(init::agent_files(spec).log).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        plinth::config::defaults_for("cp1", "127.0.0.1".parse().unwrap())
    }

    #[test]
    fn init_closing_text_suggests_ps_and_logs_with_the_root() {
        let root = HostRoot::new(Some(std::path::Path::new("/tmp/node-a")));
        let text = success_text(&spec(), &root);
        assert!(
            text.contains("  plinth verify --root /tmp/node-a\n"),
            "{text}"
        );
        assert!(text.contains("  plinth ps --root /tmp/node-a\n"), "{text}");
        assert!(
            text.contains("(`plinth logs --root /tmp/node-a <pod>`)"),
            "{text}"
        );
    }

    #[test]
    fn init_closing_text_has_no_root_flag_for_the_real_root() {
        let text = success_text(&spec(), &HostRoot::new(None));
        assert!(text.contains("  plinth ps\n"), "{text}");
        assert!(text.contains("(`plinth logs <pod>`)"), "{text}");
        assert!(!text.contains("--root"), "{text}");
    }

    #[test]
    fn dry_run_agent_action_says_what_happens_in_words() {
        let spec = spec();
        let root = HostRoot::new(Some(std::path::Path::new("/tmp/node-a")));
        let spawn = dry_run_agent_action(Some(AgentStart::Spawn), false, &spec, &root);
        assert!(
            spawn.starts_with("start the agent as a detached"),
            "{spawn}"
        );
        let running = dry_run_agent_action(Some(AgentStart::Spawn), true, &spec, &root);
        assert_eq!(
            running,
            "the agent is already running on 127.0.0.1:10248: nothing to start"
        );
        let none = dry_run_agent_action(None, true, &spec, &root);
        assert!(none.contains("nothing to start"), "{none}");
        for s in [spawn, running, none] {
            assert!(!s.contains("Auto") && !s.contains("Spawn"), "{s}");
        }
    }
}
