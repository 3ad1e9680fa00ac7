//! `plinth completion` and `plinth man`.

use clap::{Args, CommandFactory};

/// `plinth completion <shell>`.
#[derive(Debug, Args)]
pub struct CompletionCmd {
    /// Shell to generate for.
    pub shell: clap_complete::Shell,
}

/// `plinth man`.
#[derive(Debug, Args)]
pub struct ManCmd {}

/// Prints a completion script.
pub fn completion(cmd: CompletionCmd) -> anyhow::Result<i32> {
    // Generate into memory: clap_complete panics on a write error, and a closed pipe
    // (`plinth completion bash | head`) is not an error.
    let mut c = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(cmd.shell, &mut c, "plinth", &mut buf);
    std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
    Ok(0)
}

/// Prints the man page.
pub fn man(_cmd: ManCmd) -> anyhow::Result<i32> {
    let c = super::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(c).render(&mut buf)?;
    std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
    Ok(0)
}

/// `plinth log-shim` (internal, started by the process runtime).
#[derive(Debug, Args)]
pub struct LogShimCmd {
    /// Arguments for the shim, owned by `plinth::logs`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `plinth container-init` (internal, started by the process runtime).
#[derive(Debug, Args)]
pub struct ContainerInitCmd {
    /// Arguments for container init, owned by `plinth::runtime::process`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs the log shim until both streams close.
pub fn log_shim(cmd: LogShimCmd) -> anyhow::Result<i32> {
    Ok(plinth::logs::run_shim(&cmd.args))
}

/// Sets up the container's process and execs it; returns only on failure.
pub fn container_init(cmd: ContainerInitCmd) -> anyhow::Result<i32> {
    Ok(plinth::runtime::process::container_init_main(&cmd.args))
}
