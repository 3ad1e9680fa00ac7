//! `plinth init`'s phase table: one row per phase (or part of a phase), in the order they run,
//! each with its run function over an [`InitContext`]. `plinth init`, `plinth init phase
//! <name>[/<sub>]`, `--skip-phases` and `--dry-run` all run this table with
//! [`super::runner::run`]; the CLI builds `init phase`'s subcommands from it and prints the
//! [`Event`]s.
//!
//! The order starts etcd early: etcd's certificates, its manifest, then the agent, so etcd
//! elects itself while the remaining keys (with RSA, most of init's own time) are generated.
//! The files written are exactly those of kubeadm's order (certs → kubeconfig → etcd →
//! control-plane); `certs` is one phase split over two rows.
//!
//! Adding a phase: one row in [`table`] and one function `fn(&mut InitContext, &Selection,
//! &mut dyn Reporter) -> Result<(), InitError>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::runner::{emit, Event, Phase, Reporter, Selection, SkipReason, Sub, Table, Target};
use crate::config::ClusterSpec;
use crate::fs::HostRoot;
use crate::init::{self as ops, AgentStart, AgentStarted, InitError};
use crate::manifests::{Component, RenderContext};
use crate::preflight;

/// etcd's certificates: made first, so etcd can start while the others are generated.
const CERTS_ETCD: &[Sub] = &[
    Sub::new("etcd-ca", "The self-signed CA for etcd's identities").aka(&["etcd/ca"]),
    Sub::new("etcd-server", "etcd's serving certificate").aka(&["etcd/server"]),
    Sub::new("etcd-peer", "etcd's peer certificate").aka(&["etcd/peer"]),
    Sub::new(
        "etcd-healthcheck-client",
        "The client certificate of etcd's liveness probe",
    )
    .aka(&["etcd/healthcheck-client"]),
];

/// The other certificates, in kubeadm's order.
const CERTS_REST: &[Sub] = &[
    Sub::new("ca", "The self-signed Kubernetes CA"),
    Sub::new("apiserver", "The apiserver's serving certificate"),
    Sub::new(
        "apiserver-kubelet-client",
        "The apiserver's client certificate for kubelets",
    ),
    Sub::new("front-proxy-ca", "The self-signed CA of the front proxy"),
    Sub::new("front-proxy-client", "The front proxy's client certificate"),
    Sub::new(
        "apiserver-etcd-client",
        "The apiserver's client certificate for etcd",
    ),
    Sub::new("sa", "The service account signing key pair"),
];

const KUBECONFIGS: &[Sub] = &[
    Sub::new("admin", "admin.conf (group kubeadm:cluster-admins)").aka(&["admin.conf"]),
    Sub::new("super-admin", "super-admin.conf (group system:masters)").aka(&["super-admin.conf"]),
    Sub::new("kubelet", "kubelet.conf (the node's identity)").aka(&["kubelet.conf"]),
    Sub::new("controller-manager", "controller-manager.conf").aka(&["controller-manager.conf"]),
    Sub::new("scheduler", "scheduler.conf").aka(&["scheduler.conf"]),
];

const ETCD: &[Sub] = &[Sub::new("local", "The local etcd's static pod manifest")];

const CONTROL_PLANE: &[Sub] = &[
    Sub::new("apiserver", "kube-apiserver's static pod manifest").aka(&["kube-apiserver"]),
    Sub::new(
        "controller-manager",
        "kube-controller-manager's static pod manifest",
    )
    .aka(&["kube-controller-manager"]),
    Sub::new("scheduler", "kube-scheduler's static pod manifest").aka(&["kube-scheduler"]),
];

const UPLOAD_CONFIG: &[Sub] = &[
    Sub::new(
        "kubeadm",
        "The ClusterConfiguration in ConfigMap kubeadm-config",
    ),
    Sub::new(
        "kubelet",
        "The kubelets' configuration in ConfigMap kubelet-config",
    ),
];

const ADDONS: &[Sub] = &[
    Sub::new("coredns", "The CoreDNS addon"),
    Sub::new("kube-proxy", "The kube-proxy addon"),
];

/// `plinth init`'s phases, in the order they run.
pub fn table() -> Table<InitContext, InitError> {
    const CERTS: &str = "Generate certificates";
    Table {
        command: "init",
        rows: vec![
            Phase::new(
                "binaries",
                "Provide the control-plane binaries: binPath/$PATH or the cache when they hold \
                 the configured version, else download, verify and cache them",
                binaries,
            ),
            Phase::new(
                "preflight",
                "Check the host before changing anything",
                preflight,
            ),
            Phase::new("certs", CERTS, certs).subs(CERTS_ETCD).writes(),
            Phase::new("etcd", "Write the local etcd static pod manifest", etcd)
                .subs(ETCD)
                .writes(),
            Phase::new("agent", "Start the agent", agent).writes(),
            Phase::new("certs", CERTS, certs).subs(CERTS_REST).writes(),
            Phase::new("kubeconfig", "Generate kubeconfig files", kubeconfig)
                .subs(KUBECONFIGS)
                .writes(),
            Phase::new(
                "control-plane",
                "Write the control-plane static pod manifests",
                control_plane,
            )
            .subs(CONTROL_PLANE)
            .writes(),
            Phase::new(
                "wait-control-plane",
                "Wait until every component is healthy",
                wait_control_plane,
            ),
            Phase::new(
                "upload-config",
                "Upload the kubeadm and kubelet configurations to ConfigMaps",
                upload_config,
            )
            .subs(UPLOAD_CONFIG),
            Phase::new(
                "mark-control-plane",
                "Mark this node as a control-plane (labels and taints)",
                mark_control_plane,
            ),
            Phase::new(
                "bootstrap-token",
                "Create bootstrap tokens, their RBAC and the cluster-info ConfigMap",
                bootstrap_token,
            ),
            Phase::new("addon", "Install the CoreDNS and kube-proxy addons", addon).subs(ADDONS),
            Phase::new(
                "show-join-command",
                "Show the `kubeadm join` command for worker nodes",
                show_join_command,
            ),
        ],
        before_writes: Some(record_config),
    }
}

/// How init starts the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    /// systemd if `plinth-agent.service` is installed (and the root is the real one), else
    /// spawn.
    Auto,
    /// Start `plinth-agent.service` through systemd.
    Systemd,
    /// Spawn `plinth agent` detached (own session, log file, pid file).
    Spawn,
    /// Do not start the agent.
    None,
}

impl AgentMode {
    /// How this mode starts the agent on `root`; `None` for [`AgentMode::None`].
    pub fn resolve(self, root: &HostRoot) -> Option<AgentStart> {
        match self {
            AgentMode::None => None,
            AgentMode::Systemd => Some(AgentStart::Systemd),
            AgentMode::Spawn => Some(AgentStart::Spawn),
            AgentMode::Auto if root.is_real_root() && ops::systemd_unit_installed() => {
                Some(AgentStart::Systemd)
            }
            AgentMode::Auto => Some(AgentStart::Spawn),
        }
    }
}

/// What init's phases work on.
pub struct InitContext {
    /// The validated configuration.
    pub spec: ClusterSpec,
    /// The host root (`--root`).
    pub root: HostRoot,
    /// Report what would be done; write nothing, start nothing, wait for nothing.
    pub dry_run: bool,
    /// Preflight checks whose errors become warnings (`all` for every check).
    pub ignore_preflight_errors: Vec<String>,
    /// How to start the agent.
    pub agent: AgentMode,
    /// The plinth binary the agent is started from (`None`: this process's executable).
    pub plinth_exe: Option<PathBuf>,
    /// Download no binaries (`--offline`): a missing one is an error listing them all.
    pub offline: bool,
    /// Told about downloads (the CLI's progress bars); `None`: quiet.
    pub download_observer: Option<std::sync::Arc<dyn crate::binaries::Observer>>,
    /// The worker join command, once show-join-command ran (init's success text ends with it).
    pub join_command: Option<String>,
    /// The bootstrap tokens the bootstrap-token phase made sure of (the join command's).
    tokens: Option<Vec<crate::bootstrap::token::Token>>,
    /// wait-control-plane saw the control plane healthy in this run.
    control_plane_ready: bool,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InitContext {
    /// A context with the defaults of a plain `plinth init`.
    pub fn new(spec: ClusterSpec, root: HostRoot) -> InitContext {
        InitContext {
            spec,
            root,
            dry_run: false,
            ignore_preflight_errors: Vec::new(),
            agent: AgentMode::Auto,
            plinth_exe: None,
            offline: false,
            download_observer: None,
            join_command: None,
            tokens: None,
            control_plane_ready: false,
            runtime: None,
        }
    }

    fn block_on<F: std::future::Future>(&mut self, f: F) -> Result<F::Output, InitError> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(InitError::Runtime)?;
            self.runtime = Some(rt);
        }
        Ok(self
            .runtime
            .as_ref()
            .map(|rt| rt.block_on(f))
            .expect("set above"))
    }
}

/// Runs `target` of init's table over `ctx`.
pub fn run(
    ctx: &mut InitContext,
    target: &Target,
    reporter: &mut dyn Reporter,
) -> Result<super::Summary, super::RunError<InitError>> {
    super::runner::run(&table(), ctx, target, reporter)
}

/// Writes every file init writes (certs, etcd, kubeconfig, control-plane) except the phases
/// in `skip`, without preflight, the agent or the wait, and without recording the run (no
/// ledger, no persisted configuration): a node's files for tests and previews.
pub fn render_all(
    spec: &ClusterSpec,
    root: &HostRoot,
    skip: &[&str],
    dry_run: bool,
) -> Result<super::PhaseReport, super::RunError<InitError>> {
    let mut table = table();
    table.before_writes = None;
    table.rows.retain(|r| r.writes && r.name != "agent");
    let mut ctx = InitContext::new(spec.clone(), root.clone());
    ctx.dry_run = dry_run;
    let mut report = super::PhaseReport::default();
    let target = Target::All {
        skip: skip.iter().map(|s| s.to_string()).collect(),
    };
    super::runner::run(&table, &mut ctx, &target, &mut |e| match e {
        Event::Item(l) => report.lines.push(l),
        Event::Changed(p) => report.changed.push(p),
        _ => {}
    })?;
    Ok(report)
}

/// Before the first write: remember what exists (for reset) and store the configuration used
/// (for the day-2 verbs). `init phase X` stores the configuration only.
fn record_config(
    ctx: &mut InitContext,
    target: &Target,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    let path = crate::config::persisted::PERSISTED_CONFIG_PATH;
    let whole = matches!(target, Target::All { .. });
    if ctx.dry_run {
        if whole {
            r.report(Event::Item(format!(
                "[dry-run] would store the configuration used in {path}"
            )));
        }
        return Ok(());
    }
    if whole {
        crate::ledger::record_ledger(&ctx.spec, &ctx.root).map_err(InitError::Ledger)?;
    }
    persist_config(&ctx.spec, &ctx.root, r)
}

/// Persists the effective configuration for the day-2 verbs, first showing what changed since
/// the configuration the previous init persisted.
fn persist_config(
    spec: &ClusterSpec,
    root: &HostRoot,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    use crate::config::{effective, persisted};
    let path = persisted::PERSISTED_CONFIG_PATH;
    match persisted::load(root, &Default::default(), &crate::config::RealHost) {
        Ok(Some(old)) => {
            let changes = effective::diff(&old, spec);
            if !changes.is_empty() {
                r.report(Event::Item(format!(
                    "[config] changes since the configuration persisted in {path}:"
                )));
                for c in &changes {
                    r.report(Event::Item(format!("[config]   {c}")));
                }
            }
        }
        Ok(None) => {}
        Err(e) => r.report(Event::Warning(format!(
            "[config] warning: replacing it: {}",
            crate::error::chain(&e)
        ))),
    }
    let outcome =
        persisted::save(spec, root).map_err(|source| InitError::PersistConfig { path, source })?;
    if outcome.changed() {
        r.report(Event::Item(format!(
            "[config] Storing the configuration used in {path}"
        )));
        r.report(Event::Changed(PathBuf::from(path)));
    }
    Ok(())
}

/// The control-plane binaries ([`crate::binaries`]): each on the bin path or in the cache in
/// its version, else downloaded, verified and cached. One that cannot be provided is reported
/// as an `[ERROR Binaries-<component>]` finding (its URL, what was expected) and stops init
/// before preflight, with nothing of it left in the cache.
fn binaries(ctx: &mut InitContext, _: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    use crate::binaries::{self as bins, BinariesError, Cache, Settings};
    let spec = ctx.spec.clone();
    let root = ctx.root.clone();
    let cache = Cache::new(&root, &spec.plinth.state_dir);
    let settings = Settings::for_spec(&spec, &root, ctx.offline)
        .map_err(|e| InitError::Binaries(Box::new(e)))?;
    let artifacts = bins::control_plane_artifacts(&spec);
    let obs = ctx
        .download_observer
        .clone()
        .unwrap_or_else(|| std::sync::Arc::new(bins::Quiet));
    let dry_run = ctx.dry_run;
    let result = ctx.block_on(bins::ensure(
        &artifacts,
        &spec.plinth.bin_path,
        &cache,
        &settings,
        dry_run,
        obs.as_ref(),
    ))?;
    let resolved = match result {
        Ok(r) => r,
        Err(e @ (BinariesError::Component { .. } | BinariesError::Offline { .. })) => {
            let name = match &e {
                BinariesError::Component { component, .. } => format!("Binaries-{component}"),
                _ => "Binaries".to_string(),
            };
            r.report(Event::Preflight(preflight::Finding {
                name,
                severity: preflight::Severity::Error,
                message: crate::error::chain(&e),
                ignored: false,
            }));
            r.report(Event::Warning(
                "[binaries] nothing of it was left in the cache; fix the repository \
                 (binaryRepository/etcdBinaryRepository, binaryRepositoryCABundle, \
                 HTTPS_PROXY/NO_PROXY), put the binary on binPath, or pass --skip-phases \
                 binaries to let preflight judge the host as it is"
                    .into(),
            ));
            return Err(InitError::BinariesMissing);
        }
        Err(e) => return Err(InitError::Binaries(Box::new(e))),
    };
    for res in resolved {
        r.report(Event::Item(res.describe("[binaries]", &root, &cache)));
    }
    Ok(())
}

fn preflight(ctx: &mut InitContext, _: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    r.report(Event::Item("[preflight] Running pre-flight checks".into()));
    let pc = preflight_context(&ctx.spec, &ctx.root)?;
    let findings = preflight::run(&ctx.spec, &ctx.root, &pc, &ctx.ignore_preflight_errors);
    let failed = preflight::has_errors(&findings);
    for f in findings {
        r.report(Event::Preflight(f));
    }
    if failed {
        return Err(InitError::PreflightFailed);
    }
    Ok(())
}

fn certs(ctx: &mut InitContext, sel: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    let (spec, root) = (&ctx.spec, &ctx.root);
    if !sel.whole_phase {
        // Some of the phase: each certificate on its own.
        for name in &sel.subs {
            emit(ops::phase_certs(spec, root, Some(name), ctx.dry_run)?, r);
        }
        return Ok(());
    }
    // The whole phase: one pass over this row's certificates (the etcd group, or all of them
    // with those of the earlier row already done), reporting this row's.
    let exist: Vec<String> = crate::pki::profiles(spec)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let subs: Vec<&str> = sel
        .subs
        .iter()
        .copied()
        .filter(|s| exist.iter().any(|e| e == s))
        .collect();
    if subs.is_empty() {
        r.report(Event::Skipped {
            phase: format!("{}/{}", sel.phase, sel.subs.join("+")),
            reason: SkipReason::NotApplicable("external etcd: no etcd certificates".into()),
        });
        return Ok(());
    }
    let only = subs
        .iter()
        .all(|s| s.starts_with("etcd-"))
        .then_some(crate::pki::ETCD_GROUP);
    emit(
        ops::phase_certs_of(spec, root, only, &subs, ctx.dry_run)?,
        r,
    );
    Ok(())
}

fn kubeconfig(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    if sel.whole_phase {
        emit(
            ops::phase_kubeconfig(&ctx.spec, &ctx.root, None, ctx.dry_run)?,
            r,
        );
    } else {
        for name in &sel.subs {
            emit(
                ops::phase_kubeconfig(&ctx.spec, &ctx.root, Some(name), ctx.dry_run)?,
                r,
            );
        }
    }
    Ok(())
}

fn etcd(ctx: &mut InitContext, sel: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    if !ctx.spec.has_local_etcd() {
        if sel.explicit {
            return Err(InitError::ExternalEtcd);
        }
        r.report(Event::Skipped {
            phase: "etcd/local".into(),
            reason: SkipReason::NotApplicable("the config uses external etcd".into()),
        });
        return Ok(());
    }
    if !ctx.dry_run {
        ops::ensure_etcd_user(&ctx.spec)?;
    }
    emit(
        ops::phase_manifests(&ctx.spec, &ctx.root, &[Component::Etcd], ctx.dry_run)?,
        r,
    );
    Ok(())
}

fn control_plane(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    let comps: Vec<Component> = sel
        .subs
        .iter()
        .map(|s| {
            s.parse()
                .expect("the table's control-plane sub-phases are components")
        })
        .collect();
    emit(
        ops::phase_manifests(&ctx.spec, &ctx.root, &comps, ctx.dry_run)?,
        r,
    );
    Ok(())
}

fn agent(ctx: &mut InitContext, _: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    let how = ctx.agent.resolve(&ctx.root);
    let (spec, root) = (&ctx.spec, &ctx.root);
    if ctx.dry_run {
        let action = dry_run_agent_action(how, ops::agent_healthy(spec), spec, root);
        r.report(Event::Item(format!("[dry-run] then {action}")));
        return Ok(());
    }
    let Some(how) = how else {
        r.report(Event::Item(
            "[agent] --agent=none: not starting the agent".into(),
        ));
        return Ok(());
    };
    let exe = match &ctx.plinth_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(InitError::Exe)?,
    };
    let line = match ops::start_agent(spec, root, how, &exe)? {
        AgentStarted::AlreadyRunning => format!(
            "[agent] the agent is already running on {}",
            spec.plinth.agent_status_addr()
        ),
        AgentStarted::Systemd => "[agent] started plinth-agent.service".to_string(),
        AgentStarted::Spawned { pid, log } => format!(
            "[agent] started plinth agent (pid {pid}), log: {}",
            log.display()
        ),
    };
    r.report(Event::Item(line));
    Ok(())
}

/// What a real init would do about the agent, in words, for `--dry-run`.
pub fn dry_run_agent_action(
    how: Option<AgentStart>,
    running: bool,
    spec: &ClusterSpec,
    root: &HostRoot,
) -> String {
    let addr = spec.plinth.agent_status_addr();
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
            root.path(ops::agent_files(spec).log).display()
        ),
    }
}

fn wait_control_plane(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    if ctx.dry_run {
        r.report(Event::Item(
            "[dry-run] then wait for the control plane to become healthy".into(),
        ));
        return Ok(());
    }
    let timeout = ctx.spec.timeouts.control_plane_component_health_check;
    r.report(Event::Item(format!(
        "[wait-control-plane] Waiting for the agent to run the static pods from {} (timeout {}s)",
        ctx.spec.plinth.manifests_dir,
        timeout.as_secs()
    )));
    let (targets, expected_uids) = wait_targets(&ctx.spec, &ctx.root)?;
    let opts = crate::health::WaitOptions {
        agent_addr: ctx.spec.plinth.agent_status_addr(),
        node_name: ctx.spec.node_name.clone(),
        timeout,
        interval: Duration::from_millis(100),
        require_agent: ctx.agent != AgentMode::None,
        expected_uids,
        logs: Some((ctx.root.clone(), ctx.spec.plinth.log_dir.clone())),
    };
    let report = ctx.block_on(crate::health::wait(&targets, &opts, |c, elapsed| {
        r.report(Event::Health {
            components: c.to_vec(),
            elapsed,
        })
    }))??;
    let healthy = report.healthy;
    r.report(Event::HealthReport { report, timeout });
    if !healthy {
        return Err(InitError::Unhealthy);
    }
    ctx.control_plane_ready = true;
    // kubeadm makes admin.conf's group a cluster admin once the apiserver answers; a lone
    // `init phase wait-control-plane` only waits.
    if !sel.explicit {
        let (spec, root) = (ctx.spec.clone(), ctx.root.clone());
        let line = if ctx.block_on(ops::ensure_admin_binding(&spec, &root))?? {
            "[bootstrap] created ClusterRoleBinding kubeadm:cluster-admins (group kubeadm:cluster-admins → cluster-admin)"
        } else {
            "[bootstrap] ClusterRoleBinding kubeadm:cluster-admins already exists"
        };
        r.report(Event::Item(line.into()));
    }
    Ok(())
}

/// True when something will register this node's Node object: the agent's config (written
/// by init) or the running agent's command line names a kubeconfig.
fn agent_registers_node(spec: &ClusterSpec, root: &HostRoot) -> bool {
    let files = ops::agent_files(spec);
    let config = std::fs::read_to_string(root.path(&files.config)).unwrap_or_default();
    let in_config = config.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("kubeconfig:") || l.starts_with("kubeletKubeconfig:"))
            && l.split_once(':').is_some_and(|(_, v)| !v.trim().is_empty())
    });
    let pid = std::fs::read_to_string(root.path(&files.pid)).unwrap_or_default();
    let in_cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
        .map(|c| c.split(|b| *b == 0).any(|a| a.starts_with(b"--kubeconfig")))
        .unwrap_or(false);
    in_config || in_cmdline
}

/// Prints an API phase's reports; fails the phase when any object failed.
fn emit_api(
    phase: &'static str,
    reports: Vec<crate::postinit::PhaseReport>,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    let mut failed = 0;
    for rep in &reports {
        for line in rep.lines() {
            r.report(Event::Item(line));
        }
        failed += rep.objects.iter().filter(|o| o.result.is_err()).count()
            + usize::from(rep.error.is_some());
    }
    if failed > 0 {
        return Err(InitError::ApiPhase { phase, failed });
    }
    Ok(())
}

/// Whether an API phase stops before talking to the apiserver, having said why: in a dry run
/// it reports what it would do (`what`); in a whole run whose wait-control-plane did not run (a
/// render-only `--skip-phases agent,wait-control-plane`) there is no healthy apiserver, so it
/// is skipped, saying so. `init phase <name>` always runs (and retries a starting apiserver).
fn api_gate(ctx: &InitContext, sel: &Selection, r: &mut dyn Reporter, what: &str) -> bool {
    if ctx.dry_run {
        r.report(Event::Item(format!("[dry-run] then {}: {what}", sel.phase)));
        return true;
    }
    if sel.explicit || ctx.control_plane_ready {
        return false;
    }
    r.report(Event::Skipped {
        phase: sel.phase.to_string(),
        reason: SkipReason::NotApplicable(
            "wait-control-plane did not run, so no healthy apiserver to talk to".into(),
        ),
    });
    r.report(Event::Item(format!(
        "[{}] skipped: wait-control-plane did not run (run `plinth init phase {}` once the control plane is up)",
        sel.phase, sel.phase
    )));
    true
}

fn upload_config(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    use crate::postinit::{uploadconfig, Context};
    if api_gate(
        ctx,
        sel,
        r,
        "store the configuration in ConfigMaps kubeadm-config and kubelet-config (kube-system)",
    ) {
        return Ok(());
    }
    let (spec, root) = (ctx.spec.clone(), ctx.root.clone());
    let reports = ctx.block_on(async {
        let pc = Context::connect(&spec, &root, "upload-config").await?;
        let mut out = Vec::new();
        if sel.subs.contains(&"kubeadm") {
            out.push(uploadconfig::kubeadm(&pc).await);
        }
        if sel.subs.contains(&"kubelet") {
            out.push(uploadconfig::kubelet(&pc).await);
        }
        Ok::<_, InitError>(out)
    })??;
    emit_api("upload-config", reports, r)
}

fn mark_control_plane(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    use crate::postinit::{markcontrolplane, Context, DEFAULT_NODE_WAIT};
    if api_gate(
        ctx,
        sel,
        r,
        &format!("label and taint Node {}", ctx.spec.node_name),
    ) {
        return Ok(());
    }
    let (spec, root) = (ctx.spec.clone(), ctx.root.clone());
    let wait = agent_registers_node(&spec, &root).then_some(DEFAULT_NODE_WAIT);
    let report = ctx.block_on(async {
        let mut pc = Context::connect(&spec, &root, "mark-control-plane").await?;
        pc.node_wait = wait;
        Ok::<_, InitError>(markcontrolplane::run(&pc).await)
    })??;
    emit_api("mark-control-plane", vec![report], r)
}

fn bootstrap_token(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    use crate::postinit::{bootstraptoken, Context};
    if api_gate(
        ctx,
        sel,
        r,
        "create the bootstrap tokens, their RBAC rules and ConfigMap kube-public/cluster-info",
    ) {
        return Ok(());
    }
    let (spec, root) = (ctx.spec.clone(), ctx.root.clone());
    let (report, tokens) = ctx.block_on(async {
        let pc = Context::connect(&spec, &root, "bootstrap-token").await?;
        Ok::<_, InitError>(bootstraptoken::run(&pc).await)
    })??;
    ctx.tokens = Some(tokens);
    emit_api("bootstrap-token", vec![report], r)
}

fn addon(ctx: &mut InitContext, sel: &Selection, r: &mut dyn Reporter) -> Result<(), InitError> {
    use crate::postinit::{addons, Context};
    if api_gate(
        ctx,
        sel,
        r,
        &format!("create the {} addon objects", sel.subs.join(" and ")),
    ) {
        return Ok(());
    }
    let (spec, root) = (ctx.spec.clone(), ctx.root.clone());
    let reports = ctx.block_on(async {
        let pc = Context::connect(&spec, &root, "addon").await?;
        let mut out = Vec::new();
        if sel.subs.contains(&"coredns") {
            out.push(addons::coredns::run(&pc).await);
        }
        if sel.subs.contains(&"kube-proxy") {
            out.push(addons::kubeproxy::run(&pc).await);
        }
        Ok::<_, InitError>(out)
    })??;
    emit_api("addon", reports, r)
}

fn show_join_command(
    ctx: &mut InitContext,
    sel: &Selection,
    r: &mut dyn Reporter,
) -> Result<(), InitError> {
    use crate::postinit::{joincommand, Context};
    if api_gate(
        ctx,
        sel,
        r,
        "print the `kubeadm join` command for worker nodes",
    ) {
        return Ok(());
    }
    let (spec, root, tokens) = (ctx.spec.clone(), ctx.root.clone(), ctx.tokens.clone());
    let (report, cmd) = ctx.block_on(async {
        let pc = Context::connect(&spec, &root, "show-join-command").await?;
        Ok::<_, InitError>(joincommand::run(&pc, tokens.as_deref()).await)
    })??;
    emit_api("show-join-command", vec![report], r)?;
    // A whole init ends its success text with it; `init phase show-join-command` prints it.
    if let (Some(c), true) = (&cmd, sel.explicit) {
        r.report(Event::Item(c.clone()));
    }
    ctx.join_command = cmd;
    Ok(())
}

/// The health targets of this node's components, from the manifests on disk (else as they
/// would be rendered), and the pod UID each manifest gives.
fn wait_targets(
    spec: &ClusterSpec,
    root: &HostRoot,
) -> Result<(Vec<crate::health::HealthTarget>, BTreeMap<String, String>), InitError> {
    let ctx = RenderContext::for_node(root, spec);
    let mut targets = Vec::new();
    let mut expected_uids = BTreeMap::new();
    for c in Component::all() {
        if c == Component::Etcd && !spec.has_local_etcd() {
            continue;
        }
        let path = root.path(&spec.plinth.manifests_dir).join(c.file_name());
        let pod = match std::fs::read_to_string(&path) {
            Ok(t) => crate::manifests::parse_manifest(&t)?,
            Err(_) => crate::manifests::render(spec, c, &ctx)?.pod,
        };
        let target = crate::health::target_for(&pod, spec.advertise_address)?;
        // After a config change the old pod may still answer until the agent replaces it:
        // only the pod of the manifest now on disk counts.
        let host_path = std::path::Path::new(&spec.plinth.manifests_dir).join(c.file_name());
        if let Ok(p) = crate::agent::pod::identify(pod, &spec.node_name, &host_path) {
            expected_uids.insert(target.pod_name.clone(), p.uid);
        }
        targets.push(target);
    }
    Ok((targets, expected_uids))
}

/// Builds the preflight context from the spec, the manifests init will write and the agent.
pub fn preflight_context(
    spec: &ClusterSpec,
    root: &HostRoot,
) -> Result<preflight::PreflightContext, InitError> {
    let ctx = RenderContext::for_node(root, spec);
    let mut pc = preflight::PreflightContext {
        bin_path: spec.plinth.bin_path.clone(),
        ..Default::default()
    };
    for c in Component::all() {
        if c == Component::Etcd && !spec.has_local_etcd() {
            continue;
        }
        let m = crate::manifests::render(spec, c, &ctx)?;
        pc.own_manifests.push(c.file_name().to_string());
        if let Some(container) = m.pod.spec.as_ref().and_then(|s| s.containers.first()) {
            if let Some(bin) = container.command.as_ref().and_then(|v| v.first()) {
                // The agent runs the cached binary of the image's version when there is one.
                let cached = container.image.as_deref().and_then(|image| {
                    crate::binaries::image_executable(
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
    let pids = crate::agentctl::running_pids(root, &spec.plinth.state_dir);
    pc.agent_pid = pids.agent;
    pc.agent_pids = pids.containers;
    let ledger = crate::ledger::load_ledger(spec, root).map_err(InitError::Ledger)?;
    if let crate::config::Etcd::Local(l) = &spec.etcd {
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
            && spec.plinth.security_profile == crate::config::SecurityProfile::Cis
            && crate::security::lookup_etcd_user().is_none() =>
        {
            Some(preflight::RunAs {
                user: crate::security::ETCD_USER.to_string(),
                uid: None,
                gid: None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::runner::{Event, Target};
    use super::*;

    fn spec() -> ClusterSpec {
        let mut s = crate::config::defaults_for("cp1", "127.0.0.1".parse().unwrap());
        s.key_algorithm = crate::config::KeyAlgorithm::EcdsaP256;
        s
    }

    /// A render-only run (`--skip-phases preflight,agent,wait-control-plane`, as the benches
    /// and the quickstart do) writes the files and skips the API phases, saying so, instead of
    /// retrying an apiserver nobody started.
    #[test]
    fn api_phases_are_skipped_when_wait_control_plane_did_not_run() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = spec();
        spec.plinth.security_profile = crate::config::SecurityProfile::Kubeadm;
        let mut ctx = InitContext::new(spec, HostRoot::new(Some(tmp.path())));
        ctx.agent = AgentMode::None;
        let mut events = Vec::new();
        let t = std::time::Instant::now();
        run(
            &mut ctx,
            &Target::All {
                skip: vec![
                    "binaries".into(),
                    "preflight".into(),
                    "agent".into(),
                    "wait-control-plane".into(),
                ],
            },
            &mut |e| events.push(e),
        )
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(30));
        let skipped: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped {
                    phase,
                    reason: SkipReason::NotApplicable(_),
                } => Some(phase.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            skipped,
            [
                "upload-config",
                "mark-control-plane",
                "bootstrap-token",
                "addon",
                "show-join-command"
            ]
        );
        assert!(ctx.join_command.is_none());
        assert!(tmp.path().join("etc/kubernetes/admin.conf").exists());
    }

    /// The certs sub-phases are exactly pki/profiles.yaml's certificates, kubeconfig's its
    /// kubeconfigs: one list each, the table follows the data.
    #[test]
    fn sub_phases_follow_the_pki_and_kubeconfig_profiles() {
        let t = table();
        let spec = spec();
        let mut certs: Vec<&str> = t.subs_of("certs").iter().map(|s| s.name).collect();
        let mut profiles: Vec<String> = crate::pki::profiles(&spec)
            .into_iter()
            .map(|p| p.name)
            .collect();
        certs.sort_unstable();
        profiles.sort();
        assert_eq!(certs, profiles);
        let kubeconfigs: Vec<String> = t
            .subs_of("kubeconfig")
            .iter()
            .map(|s| format!("{}.conf", s.name))
            .collect();
        let mut files: Vec<String> = crate::kubeconfig::profiles(&spec)
            .into_iter()
            .map(|k| k.file)
            .collect();
        let mut k = kubeconfigs.clone();
        k.sort();
        files.sort();
        assert_eq!(k, files);
    }

    #[test]
    fn phase_names_are_kubeadms_and_unknown_ones_are_refused() {
        let t = table();
        assert_eq!(
            t.phase_names(),
            [
                "binaries",
                "preflight",
                "certs",
                "etcd",
                "agent",
                "kubeconfig",
                "control-plane",
                "wait-control-plane",
                "upload-config",
                "mark-control-plane",
                "bootstrap-token",
                "addon",
                "show-join-command"
            ]
        );
        let mut ctx = InitContext::new(spec(), HostRoot::default());
        let mut events = Vec::new();
        let e = run(
            &mut ctx,
            &Target::All {
                skip: vec!["certz".into()],
            },
            &mut |e| events.push(e),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("certz") && e.contains("control-plane"), "{e}");
        assert!(
            e.contains("certs/apiserver") && e.contains("etcd/local"),
            "{e}"
        );
        assert!(events.is_empty());
    }

    /// A dry run of everything but preflight: etcd's certificates and manifest come first,
    /// then the agent, then the rest; nothing is written.
    #[test]
    fn dry_run_reports_every_phase_in_order_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut ctx = InitContext::new(spec(), root);
        ctx.dry_run = true;
        ctx.agent = AgentMode::None;
        let mut events = Vec::new();
        let summary = run(
            &mut ctx,
            &Target::All {
                skip: vec!["preflight".into()],
            },
            &mut |e| events.push(e),
        )
        .unwrap();
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        assert!(summary.ran("wait-control-plane"));
        let started: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Started { phase, .. } => Some(phase.to_string()),
                Event::Skipped { phase, .. } => Some(format!("-{phase}")),
                _ => None,
            })
            .collect();
        assert_eq!(
            started,
            [
                "binaries",
                "-preflight",
                "certs",
                "etcd",
                "agent",
                "certs",
                "kubeconfig",
                "control-plane",
                "wait-control-plane",
                "upload-config",
                "mark-control-plane",
                "bootstrap-token",
                "addon",
                "show-join-command"
            ]
        );
        let items: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Item(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let at = |want: &str| {
            items
                .iter()
                .position(|l| l.contains(want))
                .unwrap_or_else(|| panic!("no {want:?} in {items:#?}"))
        };
        assert!(at("Would generate \"etcd-ca\"") < at("etcd.yaml"));
        assert!(at("etcd.yaml") < at("--agent=none"));
        assert!(at("--agent=none") < at("Would generate \"ca\""));
        assert!(at("Would generate \"sa\"") < at("kube-apiserver.yaml"));
        // Each certificate is reported once.
        assert_eq!(
            items.iter().filter(|l| l.contains("\"etcd-ca\"")).count(),
            1,
            "{items:#?}"
        );
        // The wait, then the API phases, each saying what it would do.
        assert!(at("wait for the control plane") < at("then upload-config"));
        assert!(at("then upload-config") < at("then mark-control-plane"));
        assert!(at("then bootstrap-token") < at("then addon: create the coredns and kube-proxy"));
        assert!(items.last().unwrap().contains("then show-join-command"));
        // The end of the writing rows is announced once, before the wait.
        let writes_done = events
            .iter()
            .position(|e| matches!(e, Event::WritesDone { .. }))
            .expect("WritesDone");
        assert!(matches!(
            &events[writes_done + 1],
            Event::Started {
                phase: "wait-control-plane",
                ..
            }
        ));
    }

    #[test]
    fn init_phase_etcd_refuses_external_etcd_and_the_whole_run_skips_it() {
        let mut spec = spec();
        spec.etcd = crate::config::Etcd::External(crate::config::ExternalEtcd {
            endpoints: vec!["https://10.0.0.11:2379".into()],
            ca_file: "/e/ca.crt".into(),
            cert_file: "/e/c.crt".into(),
            key_file: "/e/c.key".into(),
        });
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut ctx = InitContext::new(spec, root);
        ctx.dry_run = true;
        let mut events = Vec::new();
        let e = run(&mut ctx, &Target::Phase("etcd".into()), &mut |e| {
            events.push(e)
        })
        .unwrap_err();
        assert!(e.to_string().contains("external etcd"), "{e}");
        let mut events = Vec::new();
        let skip = ["preflight", "agent", "wait-control-plane"]
            .map(String::from)
            .to_vec();
        run(&mut ctx, &Target::All { skip }, &mut |e| events.push(e)).unwrap();
        let na: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped {
                    phase,
                    reason: SkipReason::NotApplicable(_),
                } => Some(phase.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            na,
            [
                "certs/etcd-ca+etcd-server+etcd-peer+etcd-healthcheck-client",
                "etcd/local"
            ]
        );
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
