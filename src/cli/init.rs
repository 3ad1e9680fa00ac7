//! `plinth init` and `plinth init phase <name>`.

use clap::{Args, Subcommand};

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
    #[arg(long, value_delimiter = ',')]
    pub ignore_preflight_errors: Vec<String>,
    /// How to start the agent: systemd unit, spawned detached process, or not at all.
    #[arg(long, value_enum, default_value_t = AgentMode::Auto)]
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

/// Runs `plinth init`.
pub fn run(cmd: InitCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth init is not wired up yet")
}
