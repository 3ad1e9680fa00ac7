//! `plinth init` and `plinth init phase <name>[/<sub>]`: parse, run init's phase table
//! ([`plinth::workflow::init`]), print its events.

use std::time::Duration;

use clap::Args;
use plinth::config::ClusterSpec;
use plinth::fs::HostRoot;
use plinth::init;
use plinth::preflight::Severity;
use plinth::workflow::Event;

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

/// `plinth init phase <name> [<sub>]` (or `<name>/<sub>`): the subcommands are built from
/// init's phase table ([`plinth::workflow::init::table`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSub {
    /// `phase` or `phase/sub`.
    pub path: String,
}

/// The positional argument of a phase with sub-phases (`init phase certs apiserver`).
const SUB_ARG: &str = "sub-phase";

impl clap::FromArgMatches for InitSub {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let Some(("phase", pm)) = m.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let Some((name, sm)) = pm.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let path = match sm.try_get_one::<String>(SUB_ARG).ok().flatten() {
            Some(sub) if sub != "all" => format!("{name}/{sub}"),
            _ => name.to_string(),
        };
        Ok(InitSub { path })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Subcommand for InitSub {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.subcommand(phase_command())
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        name == "phase"
    }
}

/// `init phase`: one subcommand per phase of the table, with its sub-phases as the optional
/// positional argument (`all` by default), plus hidden `phase/sub` spellings.
fn phase_command() -> clap::Command {
    let table = plinth::workflow::init::table();
    let mut cmd = clap::Command::new("phase")
        .about("Run one phase of init")
        .subcommand_required(true)
        .arg_required_else_help(true);
    for name in table.phase_names() {
        let subs = table.subs_of(name);
        let mut sc = clap::Command::new(name).about(table.help(name).unwrap_or_default());
        if !subs.is_empty() {
            let list: Vec<&str> = subs.iter().map(|s| s.name).collect();
            sc = sc.arg(
                clap::Arg::new(SUB_ARG)
                    .value_name("SUB_PHASE")
                    .default_value("all")
                    .help(format!("`all` or one of: {}", list.join(", "))),
            );
            for s in &subs {
                cmd = cmd.subcommand(
                    clap::Command::new(format!("{name}/{}", s.name).leak() as &str)
                        .about(s.help)
                        .aliases(
                            s.aliases
                                .iter()
                                .map(|a| format!("{name}/{a}").leak() as &str),
                        )
                        .hide(true),
                );
            }
        }
        cmd = cmd.subcommand(sc);
    }
    cmd
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

/// Runs `plinth init` (or `init phase ...`) through init's phase table, printing its events.
pub fn run(cmd: InitCmd) -> anyhow::Result<i32> {
    use plinth::workflow::{init as flow, RunError, Target};
    let spec = load_spec(&cmd.config)?;
    let root = cmd.root.host_root();
    let target = match &cmd.phase {
        Some(sub) => Target::Phase(sub.path.clone()),
        None => Target::All {
            skip: cmd.skip_phases.clone(),
        },
    };
    let whole = matches!(target, Target::All { .. });
    let mut ctx = flow::InitContext::new(spec.clone(), root.clone());
    ctx.dry_run = cmd.dry_run;
    ctx.ignore_preflight_errors = cmd.ignore_preflight_errors.clone();
    ctx.offline = cmd.offline;
    ctx.download_observer = Some(std::sync::Arc::new(super::progress::DownloadBars::new(
        "[binaries]",
    )));
    ctx.agent = match cmd.agent {
        AgentMode::Auto => flow::AgentMode::Auto,
        AgentMode::Systemd => flow::AgentMode::Systemd,
        AgentMode::Spawn => flow::AgentMode::Spawn,
        AgentMode::None => flow::AgentMode::None,
    };
    // Refuse unknown names before printing anything.
    flow::table().plan(&target)?;
    if cmd.dry_run && whole {
        println!("[dry-run] plinth init would do the following (nothing is written):");
    }
    let mut printer = Printer {
        spec: &spec,
        root: &root,
        report_unchanged: whole && !cmd.dry_run,
        progress: None,
    };
    match flow::run(&mut ctx, &target, &mut |e| printer.print(e)) {
        Ok(summary) => {
            if summary.ran("wait-control-plane") && !cmd.dry_run && whole {
                print!("{}", success_text(&spec, &root));
                // Like kubeadm's, the text ends with the worker join command.
                if let Some(join) = &ctx.join_command {
                    print!("{}", plinth::postinit::joincommand::success_tail(join));
                }
            }
            Ok(0)
        }
        Err(RunError::Phase { error, .. }) if error.is_reported() => Ok(1),
        Err(RunError::Phase {
            error: e @ plinth::init::InitError::PreflightFailed,
            ..
        }) => {
            eprintln!("{e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints init's events: lines on stdout, warnings and preflight findings on stderr, the
/// wait's progress live (indicatif on a terminal) and its report.
struct Printer<'a> {
    spec: &'a ClusterSpec,
    root: &'a HostRoot,
    /// Say so when the render phases changed nothing (a whole, real run).
    report_unchanged: bool,
    progress: Option<WaitProgress>,
}

impl Printer<'_> {
    fn print(&mut self, event: Event) {
        match event {
            Event::Item(line) => println!("{line}"),
            Event::Warning(line) => eprintln!("{line}"),
            Event::WritesDone { changed: 0 } if self.report_unchanged => {
                println!("[init] every file is already up to date: nothing changed on disk")
            }
            Event::Preflight(f) => match f.severity {
                Severity::Pass => tracing::info!("[preflight] {}: {}", f.name, f.message),
                Severity::Warning if f.ignored => {
                    eprintln!("\t[WARNING {}]: {} (ignored)", f.name, f.message)
                }
                Severity::Warning => eprintln!("\t[WARNING {}]: {}", f.name, f.message),
                Severity::Error => eprintln!("\t[ERROR {}]: {}", f.name, f.message),
            },
            Event::Health {
                components,
                elapsed,
            } => self
                .progress
                .get_or_insert_with(|| WaitProgress::new("[wait-control-plane]"))
                .update(&components, elapsed),
            Event::HealthReport { report, timeout } => {
                if let Some(mut p) = self.progress.take() {
                    p.finish();
                }
                print_wait_report(&report, timeout, self.spec, self.root);
            }
            Event::Skipped { phase, reason } => {
                tracing::debug!("[{phase}] skipped: {reason:?}")
            }
            Event::Started { .. }
            | Event::Done { .. }
            | Event::Failed { .. }
            | Event::Changed(_)
            | Event::WritesDone { .. } => {}
        }
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

/// The end of the wait: how long it took, or for each component not healthy why, with its
/// log's last lines.
fn print_wait_report(
    report: &plinth::health::WaitReport,
    timeout: Duration,
    spec: &ClusterSpec,
    root: &HostRoot,
) {
    if report.healthy {
        println!(
            "[wait-control-plane] all {} components are healthy after {:.1}s",
            report.components.len(),
            report.elapsed.as_secs_f64()
        );
        return;
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
}
