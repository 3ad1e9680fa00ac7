//! `plinth manifest regenerate`.

use std::time::Duration;

use clap::{Args, Subcommand};
use plinth::regenerate::{self, Outcome};

use super::dayconfig::Policy;
use super::{ConfigArgs, RootArgs};

/// `plinth manifest ...`.
#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// Re-render one component's manifest, swap it in safely, roll back if it is not healthy.
    Regenerate(RegenerateCmd),
}

/// The components `manifest regenerate` knows, offered by completion and listed by --help
/// (the short names `apiserver`, `controller-manager`, `scheduler` stay accepted).
fn components() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("etcd"),
        PossibleValue::new("kube-apiserver").alias("apiserver"),
        PossibleValue::new("kube-controller-manager").alias("controller-manager"),
        PossibleValue::new("kube-scheduler").alias("scheduler"),
    ])
}

/// `plinth manifest regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateCmd {
    /// The component whose manifest to regenerate.
    #[arg(value_parser = components())]
    pub component: String,
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only show the diff (every field of the Pod, flags one by one).
    #[arg(long)]
    pub diff: bool,
    /// Seconds the new pod has to become healthy (default: the config's control-plane timeout).
    #[arg(long)]
    pub timeout: Option<u64>,
}

/// Runs `plinth manifest ...`.
pub fn run(cmd: ManifestCmd) -> anyhow::Result<i32> {
    let ManifestCmd::Regenerate(cmd) = cmd;
    let root = cmd.root.host_root();
    let spec = super::dayconfig::load(
        "manifest regenerate",
        &cmd.config,
        &root,
        Policy::ApplyExplicit,
    )?;
    let component: plinth::manifests::Component = cmd.component.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid component {:?}: allowed are etcd, kube-apiserver, kube-controller-manager, kube-scheduler",
            cmd.component
        )
    })?;
    let opts = regenerate::Options {
        diff_only: cmd.diff,
        timeout: cmd
            .timeout
            .map(Duration::from_secs)
            .unwrap_or(spec.timeouts.control_plane_component_health_check),
        max_restarts: 3,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(regenerate::regenerate(
        &spec,
        &root,
        component,
        &opts,
        |l| println!("{l}"),
    ))?;
    // Applied/rolled-back runs printed the diff before swapping; diff-only prints it here.
    if report.outcome == Outcome::DiffOnly || report.outcome == Outcome::Unchanged {
        if report.diff.is_empty() {
            println!("[regenerate] {}: no changes", report.component);
        } else {
            println!("[regenerate] {} changes:", report.component);
            for d in &report.diff {
                println!("  {d}");
            }
        }
        for w in &report.warnings {
            eprintln!("[regenerate] warning: {w}");
        }
    }
    let code = match &report.outcome {
        Outcome::Unchanged => {
            println!(
                "[regenerate] {} is already up to date: nothing changed",
                report.component
            );
            0
        }
        Outcome::DiffOnly => 0,
        Outcome::Applied => {
            println!("[regenerate] {} replaced and healthy", report.component);
            0
        }
        Outcome::RolledBack { reason } => {
            eprintln!("[regenerate] {} rolled back: {reason}", report.component);
            eprintln!("[regenerate] the previous manifest is restored and healthy; the failed one was not kept");
            1
        }
        Outcome::RollbackUnhealthy { reason } => {
            eprintln!(
                "[regenerate] {} rolled back but still unhealthy: {reason}",
                report.component
            );
            2
        }
    };
    Ok(code)
}
