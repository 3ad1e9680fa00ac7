//! Everything the CLI prints goes through here, so a closed pipe is never a crash.
//!
//! `plinth ps -o json | head` closes stdout early. Rust ignores SIGPIPE, so every later write
//! fails with `EPIPE`, and std's `println!` then panics. Reading less than all of the output is
//! the reader's choice, not an error: like ripgrep, plinth treats it as success.
//!
//! - The `println!`, `print!`, `eprintln!` and `eprint!` macros are **shadowed** for the whole
//!   `cli` module (this module is declared first, with `#[macro_use]`): same syntax, but they
//!   never panic. Once stdout is closed, output is dropped and the command runs to its end
//!   (a half-done `plinth init | head` must not stop between two writes); its exit code is the
//!   command's own.
//! - Explicit `writeln!(std::io::stdout().lock(), ..)?` and the like return the `BrokenPipe`
//!   error; `main` turns a `BrokenPipe` in an error chain into a quiet exit 0 when stdout is
//!   in fact a closed pipe ([`stdout_is_broken_pipe`]).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed with `EPIPE`: further stdout output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// True once stdout turned out to be a closed pipe.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// True when stdout is a pipe whose reader went away: remembered from a failed write, or
/// seen now (`poll` reports `POLLERR` on a pipe's write end once its read end is closed).
/// `main` treats a `BrokenPipe` error as success only then, so a `BrokenPipe` from anything
/// else (a socket) still fails the command.
pub fn stdout_is_broken_pipe() -> bool {
    if stdout_closed() {
        return true;
    }
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout; poll only reads/writes that struct.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n == 1 && fd.revents & libc::POLLERR != 0
}

/// Writes `args` (plus a newline when `newline`) to stdout and flushes. A closed pipe is
/// remembered and not an error; other errors are returned.
pub fn try_stdout(args: fmt::Arguments<'_>, newline: bool) -> io::Result<()> {
    if stdout_closed() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    let res = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match res {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// [`try_stdout`] for the shadowed `print!`/`println!`: other write errors (a full disk behind
/// a redirect) are logged, never a panic.
pub fn stdout(args: fmt::Arguments<'_>, newline: bool) {
    if let Err(e) = try_stdout(args, newline) {
        tracing::warn!("writing to stdout: {e}");
    }
}

/// Writes to stderr, ignoring errors: with stderr gone there is nowhere left to report one.
pub fn stderr(args: fmt::Arguments<'_>, newline: bool) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    if newline {
        let _ = err.write_all(b"\n");
    }
}

/// Like std's `println!`, but never panics (see the module docs).
macro_rules! println {
    () => {
        $crate::cli::out::stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::out::stdout(format_args!($($arg)*), true)
    };
}

/// Like std's `print!`, but never panics (see the module docs).
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::out::stdout(format_args!($($arg)*), false)
    };
}

/// Like std's `eprintln!`, but never panics (see the module docs).
macro_rules! eprintln {
    () => {
        $crate::cli::out::stderr(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::out::stderr(format_args!($($arg)*), true)
    };
}

/// Like std's `eprint!`, but never panics (see the module docs).
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::cli::out::stderr(format_args!($($arg)*), false)
    };
}

/// The error and its causes on one line, `outer: cause: root cause`, like anyhow's `{:#}` but
/// without repeating a cause the message before it already ends with. plinth's own errors
/// never print their `#[source]` in their message (tests/conventions.rs); some errors from
/// other crates (HTTP clients) do, and `{:#}` would then print the cause twice.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !c.is_empty() && !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("log dir /x: {source}")]
    struct Repeats {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn logs_error_cause_not_repeated() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let cause = io.to_string();
        let err = anyhow::Error::new(Repeats { source: io }).context("plinth logs");
        let text = error_chain(&err);
        assert_eq!(text.matches(&cause).count(), 1, "{text}");
        assert_eq!(text, format!("plinth logs: log dir /x: {cause}"));
    }

    #[test]
    fn error_chain_keeps_causes_not_in_the_message() {
        let err = anyhow::anyhow!("root cause")
            .context("middle")
            .context("outer");
        assert_eq!(error_chain(&err), "outer: middle: root cause");
    }
}
