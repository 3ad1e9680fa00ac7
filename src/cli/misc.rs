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
pub struct ManCmd {
    /// Write one page per command into DIR (plinth.1, plinth-init.1,
    /// plinth-init-phase-certs.1, ...) instead of printing plinth(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

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

/// The command tree as the man pages describe it: built (so each subcommand's page is named
/// `plinth-<verb>[-<sub>]`) and without clap's `help` subcommand, which has no page.
fn man_command() -> clap::Command {
    let mut c = super::Cli::command().disable_help_subcommand(true);
    c.build();
    c
}

/// Prints plinth(1), or with `--dir` writes every page (the ones plinth(1) and each page's
/// SUBCOMMANDS section refer to).
pub fn man(cmd: ManCmd) -> anyhow::Result<i32> {
    use anyhow::Context;
    match cmd.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the man page dir {}", dir.display()))?;
            clap_mangen::generate_to(man_command(), &dir)
                .with_context(|| format!("writing the man pages into {}", dir.display()))?;
            let mut pages: Vec<String> = std::fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("plinth") && n.ends_with(".1"))
                .collect();
            pages.sort();
            println!("wrote {} man pages into {}", pages.len(), dir.display());
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(man_command()).render(&mut buf)?;
            std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
        }
    }
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
