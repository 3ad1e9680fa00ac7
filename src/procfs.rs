//! Reading `/proc`, the one place that does (the runtime, preflight and agentctl use it): the
//! processes, their command lines, and a process's identity (pid + start time), state,
//! process group and session.
//!
//! A pid alone never identifies a process (pids are reused); pid + start time (field 22 of
//! `/proc/<pid>/stat`, clock ticks since boot) does. The parsing is pure and unit-tested; the
//! readers are thin wrappers around `std::fs::read_to_string`.

use std::io;
use std::path::Path;

/// Errors reading or parsing `/proc/<pid>/stat`.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (most often: the process does not exist).
    #[error("read /proc/{pid}/stat")]
    Read {
        /// The pid asked about.
        pid: i32,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The file's content is not what the kernel documents.
    #[error("/proc/{pid}/stat: malformed ({reason}): {text:?}")]
    Malformed {
        /// The pid asked about.
        pid: i32,
        /// What was wrong.
        reason: &'static str,
        /// The text read.
        text: String,
    },
}

impl ProcError {
    /// True when the process simply does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcError::Read { source, .. }
            if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH))
    }
}

/// The fields of `/proc/<pid>/stat` the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1: the pid.
    pub pid: i32,
    /// Field 3: state (`R`, `S`, `D`, `Z`, `T`, `X`, ...).
    pub state: char,
    /// Field 4: parent pid.
    pub ppid: i32,
    /// Field 5: process group id.
    pub pgrp: i32,
    /// Field 6: session id.
    pub session: i32,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
}

impl ProcStat {
    /// True for a process that has exited but not been reaped (or is being reaped).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and `)`, so the
/// remaining fields are taken after the *last* `)`.
pub fn parse_stat(pid: i32, text: &str) -> Result<ProcStat, ProcError> {
    let malformed = |reason| ProcError::Malformed {
        pid,
        reason,
        text: text.chars().take(256).collect(),
    };
    let open = text.find('(').ok_or_else(|| malformed("no '('"))?;
    let close = text.rfind(')').ok_or_else(|| malformed("no ')'"))?;
    if close < open {
        return Err(malformed("')' before '('"));
    }
    let stat_pid: i32 = text[..open]
        .trim()
        .parse()
        .map_err(|_| malformed("field 1 (pid) is not a number"))?;
    // Fields from 3 on; index i holds field i + 3.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<&str, ProcError> {
        rest.get(n - 3)
            .copied()
            .ok_or_else(|| malformed("too few fields"))
    };
    let mut state_chars = field(3)?.chars();
    let state = match (state_chars.next(), state_chars.next()) {
        (Some(c), None) => c,
        _ => return Err(malformed("field 3 (state) is not one character")),
    };
    let num = |n: usize, reason| -> Result<i64, ProcError> {
        field(n)?.parse::<i64>().map_err(|_| malformed(reason))
    };
    let ppid = num(4, "field 4 (ppid) is not a number")?;
    let pgrp = num(5, "field 5 (pgrp) is not a number")?;
    let session = num(6, "field 6 (session) is not a number")?;
    let start_ticks: u64 = field(22)?
        .parse()
        .map_err(|_| malformed("field 22 (starttime) is not a number"))?;
    let to_pid = |v: i64, reason| i32::try_from(v).map_err(|_| malformed(reason));
    Ok(ProcStat {
        pid: stat_pid,
        state,
        ppid: to_pid(ppid, "field 4 (ppid) out of range")?,
        pgrp: to_pid(pgrp, "field 5 (pgrp) out of range")?,
        session: to_pid(session, "field 6 (session) out of range")?,
        start_ticks,
    })
}

/// Reads and parses `/proc/<pid>/stat`.
pub fn read_stat(pid: i32) -> Result<ProcStat, ProcError> {
    read_stat_at(Path::new("/proc"), pid)
}

/// Reads and parses `<proc>/<pid>/stat` (the `/proc` mount point is a parameter for tests).
pub fn read_stat_at(proc: &Path, pid: i32) -> Result<ProcStat, ProcError> {
    let path = proc.join(pid.to_string()).join("stat");
    let text = std::fs::read_to_string(&path).map_err(|source| ProcError::Read { pid, source })?;
    parse_stat(pid, &text)
}

/// The start time (clock ticks since boot) of process `pid`: with the pid, its identity.
pub fn process_start_ticks(pid: i32) -> Result<u64, ProcError> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// Whether a stat (or its absence) shows `pid` alive with exactly `start_ticks`.
pub fn matches_identity(stat: Option<&ProcStat>, start_ticks: u64) -> bool {
    stat.is_some_and(|s| s.start_ticks == start_ticks && !s.is_dead())
}

/// True if `pid` is alive (not a zombie) and started at `start_ticks`.
pub fn is_alive_with(pid: i32, start_ticks: u64) -> bool {
    pid > 0 && matches_identity(read_stat(pid).ok().as_ref(), start_ticks)
}

/// The pids of every process in `/proc` (empty when it cannot be read).
pub fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The command line of `pid` (`/proc/<pid>/cmdline`), empty when it cannot be read.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the content of a `cgroup.procs` file (one pid per line).
pub fn parse_pid_list(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEP: &str = "4242 (sleep) S 4200 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 2244608 128 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn parses_the_documented_fields() {
        let s = parse_stat(4242, SLEEP).unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 4242,
                state: 'S',
                ppid: 4200,
                pgrp: 4242,
                session: 4242,
                start_ticks: 987654,
            }
        );
        assert!(!s.is_dead());
    }

    #[test]
    fn command_names_with_spaces_and_parens_are_skipped() {
        let text = SLEEP.replace("(sleep)", "(we) ird ) Z 1 2 (name)");
        let s = parse_stat(4242, &text).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_ticks, 987654);
        assert_eq!(s.ppid, 4200);
    }

    #[test]
    fn zombies_are_dead() {
        let text = SLEEP.replace(") S ", ") Z ");
        let s = parse_stat(4242, &text).unwrap();
        assert!(s.is_dead());
        assert!(!matches_identity(Some(&s), 987654));
    }

    #[test]
    fn identity_needs_matching_start_ticks() {
        let s = parse_stat(4242, SLEEP).unwrap();
        assert!(matches_identity(Some(&s), 987654));
        assert!(!matches_identity(Some(&s), 987655));
        assert!(!matches_identity(None, 987654));
    }

    #[test]
    fn truncated_or_garbage_text_is_an_error_naming_the_pid() {
        let short = "1 (init) S 0 1 1";
        let err = parse_stat(1, short).unwrap_err();
        assert!(err.to_string().contains("/proc/1/stat"), "{err}");
        assert!(err.to_string().contains("too few fields"), "{err}");
        assert!(parse_stat(1, "garbage").is_err());
        assert!(parse_stat(1, &SLEEP.replace("987654", "x")).is_err());
        assert!(parse_stat(1, &SLEEP.replace(") S ", ") SS ")).is_err());
    }

    #[test]
    fn own_process_is_alive_with_its_start_ticks() {
        let me = std::process::id() as i32;
        let ticks = process_start_ticks(me).unwrap();
        assert!(is_alive_with(me, ticks));
        assert!(!is_alive_with(me, ticks + 1));
        assert!(!is_alive_with(0, ticks));
    }

    #[test]
    fn missing_process_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_stat_at(dir.path(), 77).unwrap_err();
        assert!(err.is_not_found());
    }

    #[test]
    fn pid_lists_skip_blank_and_bad_lines() {
        assert_eq!(parse_pid_list("1\n\n 23 \nx\n-4\n0\n"), vec![1, 23]);
    }
}
