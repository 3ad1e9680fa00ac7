//! `plinth reset`.

use clap::Args;

use super::RootArgs;

/// `plinth reset`.
#[derive(Debug, Args)]
pub struct ResetCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub force: bool,
}

/// Runs `plinth reset`.
pub fn run(cmd: ResetCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth reset is not wired up yet")
}
