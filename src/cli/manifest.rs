//! `plinth manifest regenerate`.

use clap::{Args, Subcommand};

use super::{ConfigArgs, RootArgs};

/// `plinth manifest ...`.
#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// Re-render one component's manifest, swap it in safely, roll back if it is not healthy.
    Regenerate(RegenerateCmd),
}

/// `plinth manifest regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateCmd {
    /// etcd, kube-apiserver, kube-controller-manager or kube-scheduler.
    pub component: String,
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only show the flag-level diff.
    #[arg(long)]
    pub diff: bool,
}

/// Runs `plinth manifest ...`.
pub fn run(cmd: ManifestCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth manifest is not wired up yet")
}
