//! `plinth certs check-expiration` and `plinth certs renew`.

use clap::Subcommand;

use super::{ConfigArgs, OutputFormat, RootArgs};

/// `plinth certs ...`.
#[derive(Debug, Subcommand)]
pub enum CertsCmd {
    /// Show certificate expiry (kubeadm's table).
    CheckExpiration {
        #[command(flatten)]
        root: RootArgs,
        #[command(flatten)]
        config: ConfigArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Renew `all` or one certificate; the agent restarts exactly the affected components.
    Renew {
        /// `all` or a certificate name.
        name: String,
        #[command(flatten)]
        root: RootArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Runs `plinth certs ...`.
pub fn run(cmd: CertsCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth certs is not wired up yet")
}
