//! `plinth agent`, `plinth ps`, `plinth logs`.

use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, RootArgs};

/// `plinth agent`.
#[derive(Debug, Args)]
pub struct AgentCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Static pod manifest directory (or single file).
    #[arg(long, value_name = "DIR")]
    pub pod_manifest_path: Option<PathBuf>,
    /// KubeletConfiguration file (kubelet.config.k8s.io/v1beta1).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node name (default: hostname, lowercased).
    #[arg(long)]
    pub node_name: Option<String>,
    /// State directory (host path).
    #[arg(long, default_value = "/var/lib/plinth")]
    pub state_dir: PathBuf,
    /// Pod log directory (host path).
    #[arg(long, default_value = "/var/log/pods")]
    pub log_dir: PathBuf,
    /// Directories to resolve command[0] in (colon-separated; default: $PATH).
    #[arg(long, env = "PLINTH_BIN_PATH")]
    pub bin_path: Option<String>,
    /// Image to executable table entries, `image=executable` (repeatable).
    #[arg(long = "image-command", value_name = "IMAGE=EXE")]
    pub image_commands: Vec<String>,
    /// Stop all pods when the agent exits (default: leave them running).
    #[arg(long)]
    pub stop_pods_on_exit: bool,
}

/// `plinth ps`.
#[derive(Debug, Args)]
pub struct PsCmd {
    /// Agent status address.
    #[arg(long, default_value = "127.0.0.1:10248")]
    pub agent: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Show all containers, including exited ones.
    #[arg(short, long)]
    pub all: bool,
}

/// `plinth logs`.
#[derive(Debug, Args)]
pub struct LogsCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Pod name (full `<name>-<node>` or the manifest's name).
    pub pod: String,
    /// Container name (default: the pod's only/first container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Follow the log.
    #[arg(short, long)]
    pub follow: bool,
    /// Show the previous instance's log.
    #[arg(short, long)]
    pub previous: bool,
    /// Pod log directory (host path).
    #[arg(long, default_value = "/var/log/pods")]
    pub log_dir: PathBuf,
    /// Number of lines from the end to show (default: all).
    #[arg(long)]
    pub tail: Option<usize>,
}

/// Runs the agent until SIGTERM/SIGINT.
pub fn run_agent(cmd: AgentCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth agent is not wired up yet")
}

/// Prints the agent's containers.
pub fn run_ps(cmd: PsCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth ps is not wired up yet")
}

/// Prints a container log.
pub fn run_logs(cmd: LogsCmd) -> anyhow::Result<i32> {
    let _ = cmd;
    anyhow::bail!("plinth logs is not wired up yet")
}
