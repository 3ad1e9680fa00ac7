//! The command line: clap definitions and dispatch. Each verb lives in its own file and only
//! parses, calls the library, and prints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

// First, so its non-panicking `println!`/`eprintln!` shadow std's in every module below.
#[macro_use]
pub mod out;

mod agent;
mod binaries;
mod certs;
mod config_cmd;
mod dayconfig;
mod init;
mod manifest;
mod misc;
mod progress;
mod reset;
mod token;
mod verify;

/// plinth: turn one Linux host into a Kubernetes control-plane node.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info`, `plinth=debug`.
    #[arg(long, global = true, env = "PLINTH_LOG", default_value = "warn")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bootstrap this host as a control-plane node (render, start the agent, wait healthy).
    Init(init::InitCmd),
    /// Inspect and validate configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCmd),
    /// Run the bundled static pod agent on a manifest directory.
    Agent(agent::AgentCmd),
    /// List the agent's containers (like `crictl ps`).
    Ps(agent::PsCmd),
    /// Print a container's log.
    Logs(agent::LogsCmd),
    /// Check the control plane: pods, health endpoints, certificates, kubeconfigs, modes.
    Verify(verify::VerifyCmd),
    /// Day-2 manifest operations.
    #[command(subcommand)]
    Manifest(manifest::ManifestCmd),
    /// Certificate expiry checks and renewal.
    #[command(subcommand)]
    Certs(certs::CertsCmd),
    /// Download, verify, list and prune the cached control-plane binaries.
    #[command(subcommand)]
    Binaries(binaries::BinariesCmd),
    /// Remove everything plinth created on this host.
    Reset(reset::ResetCmd),
    /// Manage bootstrap tokens (as `kubeadm token`).
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Print a shell completion script.
    Completion(misc::CompletionCmd),
    /// Print plinth(1) (roff), or write a page per command with `--dir DIR`.
    Man(misc::ManCmd),
    /// Internal: per-container log shim (reads a container's stdout/stderr, writes CRI logs).
    #[command(hide = true, name = "log-shim")]
    LogShim(misc::LogShimCmd),
    /// Internal: container init (sets up mounts, user, cgroup, then execs the command).
    #[command(hide = true, name = "container-init")]
    ContainerInit(misc::ContainerInitCmd),
}

/// Where the host root is (`--root`), shared by every verb that touches the host.
#[derive(Debug, Clone, Args)]
pub struct RootArgs {
    /// Treat DIR as the host root: every path plinth reads or writes is DIR-prefixed, while
    /// file contents stay exactly those of a real run.
    #[arg(long, global = true, value_name = "DIR", env = "PLINTH_ROOT")]
    pub root: Option<PathBuf>,
}

impl RootArgs {
    /// The library's view of the root.
    pub fn host_root(&self) -> plinth::fs::HostRoot {
        plinth::fs::HostRoot::new(self.root.as_deref())
    }
}

/// The config file and the kubeadm-style flags that override it.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// kubeadm config file (InitConfiguration + ClusterConfiguration [+ PlinthConfiguration]).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The IP address the API server advertises.
    #[arg(long, global = true, value_name = "IP")]
    pub advertise_address: Option<String>,
    /// Node name (default: hostname, lowercased).
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Kubernetes version, e.g. v1.33.0.
    #[arg(long, global = true, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Pod network CIDR(s), comma-separated.
    #[arg(long, global = true, value_name = "CIDR")]
    pub pod_network_cidr: Option<String>,
    /// Service CIDR(s), comma-separated.
    #[arg(long, global = true, value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Extra SANs for the apiserver serving certificate.
    #[arg(long, global = true, value_name = "SAN", value_delimiter = ',')]
    pub apiserver_cert_extra_sans: Vec<String>,
    /// Certificates directory (host path).
    #[arg(long, global = true, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Shared endpoint (host[:port]) for all control-plane nodes.
    #[arg(long, global = true, value_name = "HOST[:PORT]")]
    pub control_plane_endpoint: Option<String>,
}

impl ConfigArgs {
    /// The flag overrides in the library's form.
    pub fn overrides(&self) -> plinth::config::Overrides {
        plinth::config::Overrides {
            advertise_address: self.advertise_address.clone(),
            node_name: self.node_name.clone(),
            kubernetes_version: self.kubernetes_version.clone(),
            pod_network_cidr: self.pod_network_cidr.clone(),
            service_cidr: self.service_cidr.clone(),
            apiserver_cert_extra_sans: self.apiserver_cert_extra_sans.clone(),
            cert_dir: self.cert_dir.clone(),
            control_plane_endpoint: self.control_plane_endpoint.clone(),
        }
    }
}

/// Output format for commands a script may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Init(c) => init::run(c),
        Command::Config(c) => config_cmd::run(c),
        Command::Agent(c) => agent::run_agent(c),
        Command::Ps(c) => agent::run_ps(c),
        Command::Logs(c) => agent::run_logs(c),
        Command::Verify(c) => verify::run(c),
        Command::Manifest(c) => manifest::run(c),
        Command::Certs(c) => certs::run(c),
        Command::Reset(c) => reset::run(c),
        Command::Binaries(c) => binaries::run(c),
        Command::Token(c) => token::run(c),
        Command::Completion(c) => misc::completion(c),
        Command::Man(c) => misc::man(c),
        Command::LogShim(c) => misc::log_shim(c),
        Command::ContainerInit(c) => misc::container_init(c),
    }
}

/// Prints `value` as JSON or YAML (for `-o json|yaml`).
pub fn print_structured<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(value)?,
        OutputFormat::Table => anyhow::bail!("table output is printed by the command itself"),
    };
    out::try_stdout(format_args!("{text}"), false)?;
    Ok(())
}
