//! The `plinth` binary: parse the command line, run it, print errors with their context.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    init_tracing(&cli.log);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            if is_broken_pipe(&err) && cli::out::stdout_is_broken_pipe() {
                std::process::exit(0);
            }
            // Not `eprintln!`: it panics when stderr is gone too.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: {}",
                cli::out::error_chain(&err)
            );
            std::process::exit(1);
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Printing into a closed pipe (`plinth ps | head`) is not an error: the reader chose to read
/// less (ripgrep's rule). Writes of the CLI's own shadowed `println!` never get here (see
/// `cli::out`); explicit writers (`plinth logs`, `completion`, `man`, tables) return
/// `BrokenPipe`, which ends the command quietly with exit 0 — only when stdout is the closed
/// pipe: an `EPIPE` from a socket is a real error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
