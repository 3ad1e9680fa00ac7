//! `plinth verify`.

use clap::Args;

use super::{ConfigArgs, OutputFormat, RootArgs};

/// `plinth verify`.
#[derive(Debug, Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Runs `plinth verify`.
pub fn run(cmd: VerifyCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth verify is not wired up yet")
}
