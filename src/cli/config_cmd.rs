//! `plinth config print init-defaults` and `plinth config validate`.

use clap::Subcommand;

use super::ConfigArgs;

/// `plinth config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print configuration.
    #[command(subcommand)]
    Print(PrintCmd),
    /// Validate a config file (with the same flags as init); writes nothing.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// `plinth config print ...`.
#[derive(Debug, Subcommand)]
pub enum PrintCmd {
    /// Print the default InitConfiguration + ClusterConfiguration (+ PlinthConfiguration).
    InitDefaults,
}

/// Runs `plinth config ...`.
pub fn run(cmd: ConfigCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth config is not wired up yet")
}
