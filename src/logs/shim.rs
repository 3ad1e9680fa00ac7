//! The per-container log shim: `plinth log-shim --path P [--max-size BYTES] [--max-files N]`.
//!
//! File descriptor convention (set up by the runtime, see [`shim_command`]):
//! - fd 0 (stdin) is the read end of the container's **stdout** pipe;
//! - fd 3 is the read end of the container's **stderr** pipe ([`pass_stderr_fd`]).
//!
//! The shim reads both until BOTH reach EOF (one thread per stream, one shared [`CriWriter`]
//! behind a mutex), writes CRI records, fsyncs and exits 0. It calls `setsid()` (ignoring
//! EPERM) and ignores SIGTERM, SIGINT, SIGHUP and SIGPIPE, so killing the container's process
//! tree, the agent, or the agent's session does not lose the container's last words: the shim
//! ends exactly when the last writer of the pipes is gone. Write errors do not stop the
//! reading (a container must never block on a full pipe); they are reported at the end.
//!
//! Exit codes: 0 done, 2 bad arguments, 1 the log could not be opened or written.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::format::LineSplitter;
use super::writer::{CriWriter, RotatePolicy};
use super::{LogError, Stream};

/// The fd on which the shim reads the container's stderr.
pub const STDERR_FD: i32 = 3;

/// Parsed `log-shim` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// The log file (`--path`).
    pub path: PathBuf,
    /// Rotation (`--max-size`, `--max-files`; kubelet defaults).
    pub policy: RotatePolicy,
}

impl ShimArgs {
    /// Parses `--path P [--max-size BYTES] [--max-files N]` (also `--flag=value`).
    pub fn parse(args: &[String]) -> Result<ShimArgs, LogError> {
        let invalid = |field: &str, value: &str, allowed: &str| LogError::Invalid {
            field: field.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        };
        let mut path = None;
        let mut policy = RotatePolicy::kubelet();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if !matches!(flag, "--path" | "--max-size" | "--max-files") {
                return Err(invalid(
                    "argument",
                    arg,
                    "one of --path P, --max-size BYTES, --max-files N",
                ));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| invalid(flag, "", "a value is required"))?,
            };
            match flag {
                "--path" if !value.is_empty() => path = Some(PathBuf::from(value)),
                "--path" => return Err(invalid(flag, &value, "a file path")),
                "--max-size" => {
                    policy.max_size = value.parse().map_err(|_| {
                        invalid(flag, &value, "a size in bytes (0 disables rotation)")
                    })?
                }
                _ => {
                    policy.max_files = value
                        .parse()
                        .map_err(|_| invalid(flag, &value, "a number of files, at least 2"))?
                }
            }
        }
        if policy.max_files < 2 {
            return Err(invalid(
                "--max-files",
                &policy.max_files.to_string(),
                "a number of files, at least 2",
            ));
        }
        let path = path.ok_or_else(|| invalid("--path", "", "--path is required"))?;
        Ok(ShimArgs { path, policy })
    }
}

/// Builds `<plinth_exe> log-shim --path <log_path>` (kubelet rotation defaults).
///
/// The caller must, before spawning: set stdin to the read end of the container's stdout
/// pipe (`cmd.stdin(Stdio::from(stdout_read))`) and pass the read end of its stderr pipe as fd
/// 3 ([`pass_stderr_fd`]), and close its own copies of both read ends and of the write ends
/// once the container has them. stdout is `/dev/null`; stderr (the shim's own diagnostics) is
/// inherited. The shim puts itself in a new session.
pub fn shim_command(plinth_exe: &Path, log_path: &Path) -> Command {
    shim_command_with_policy(plinth_exe, log_path, RotatePolicy::kubelet())
}

/// [`shim_command`] with explicit rotation settings.
pub fn shim_command_with_policy(
    plinth_exe: &Path,
    log_path: &Path,
    policy: RotatePolicy,
) -> Command {
    let mut cmd = Command::new(plinth_exe);
    cmd.arg("log-shim")
        .arg("--path")
        .arg(log_path)
        .arg("--max-size")
        .arg(policy.max_size.to_string())
        .arg("--max-files")
        .arg(policy.max_files.to_string())
        .stdout(Stdio::null());
    cmd
}

/// Makes `fd` appear as fd 3 in the spawned `cmd` (the shim's stderr input). `fd` stays
/// open in this process until `cmd` is dropped.
pub fn pass_stderr_fd(cmd: &mut Command, fd: OwnedFd) {
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe dup2/fcntl.
    unsafe {
        cmd.pre_exec(move || {
            let _keep_open = &fd;
            if raw == STDERR_FD {
                // Already fd 3: just let it survive exec.
                let flags = libc::fcntl(raw, libc::F_GETFD);
                if flags < 0 || libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, STDERR_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Copies both streams into `writer` until both reach EOF; one thread per stream. Records
/// are stamped when written; a line still open at EOF becomes a `P` record. Returns the first
/// write error, after draining both streams regardless.
pub fn pump(
    stdout: impl Read + Send,
    stderr: impl Read + Send,
    writer: &Mutex<CriWriter>,
) -> Result<(), LogError> {
    let (a, b) = std::thread::scope(|s| {
        let out = s.spawn(|| pump_stream(stdout, Stream::Stdout, writer));
        let err = pump_stream(stderr, Stream::Stderr, writer);
        (out.join().unwrap_or(Ok(())), err)
    });
    a.and(b)
}

/// Reads one stream to EOF, writing records as lines complete.
fn pump_stream(
    mut r: impl Read,
    stream: Stream,
    writer: &Mutex<CriWriter>,
) -> Result<(), LogError> {
    let mut splitter = LineSplitter::default();
    let mut first_err: Option<LogError> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("log-shim: reading {stream}: {e}; treating as end of stream");
                0
            }
        };
        let mut w = writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut emit = |partial: bool, text: &[u8]| {
            if let Err(e) = w.write_record(stream, partial, text) {
                if first_err.is_none() {
                    tracing::error!("log-shim: {}", crate::error::chain(&e));
                    first_err = Some(e);
                }
            }
        };
        if n == 0 {
            splitter.finish(&mut emit);
            break;
        }
        splitter.push(&buf[..n], &mut emit);
    }
    first_err.map_or(Ok(()), Err)
}

/// Ignores the signals that would end the shim before its pipes do.
fn ignore_signals() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        if let Err(e) = unsafe { signal(sig, SigHandler::SigIgn) } {
            tracing::warn!("log-shim: cannot ignore {sig}: {e}");
        }
    }
}

/// True when `fd` is an open file descriptor.
fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Takes ownership of the shim's input fds: 0 (stdout pipe) and 3 (stderr pipe, when open).
/// Must run before this process opens any file, or fd 3 could be one of its own.
fn take_input_fds() -> (File, Option<File>) {
    // SAFETY: fd 0 belongs to this process and nothing else in it uses stdin.
    let stdout = File::from(unsafe { OwnedFd::from_raw_fd(0) });
    let stderr = fd_is_open(STDERR_FD)
        // SAFETY: by the shim's convention fd 3 is the stderr pipe handed to us, unused otherwise.
        .then(|| File::from(unsafe { OwnedFd::from_raw_fd(STDERR_FD) }));
    (stdout, stderr)
}

/// Reads both streams to EOF, discarding the data (so the container never blocks on a pipe).
fn drain(stdout: impl Read + Send, stderr: impl Read + Send) {
    fn sink(mut r: impl Read) {
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    }
    std::thread::scope(|s| {
        s.spawn(|| sink(stdout));
        sink(stderr);
    });
}

/// The body of `plinth log-shim`; returns the process exit code.
pub fn run_shim(args: &[String]) -> i32 {
    let (stdout, stderr) = take_input_fds();
    let stderr: Box<dyn Read + Send> = match stderr {
        Some(f) => Box::new(f),
        None => {
            tracing::warn!("log-shim: fd {STDERR_FD} is not open; logging stdout only");
            Box::new(std::io::empty())
        }
    };
    let args = match ShimArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("plinth log-shim: {}", crate::error::chain(&e));
            return 2;
        }
    };
    // A new session: not hit by signals to the agent's process group or terminal.
    let _ = nix::unistd::setsid();
    ignore_signals();

    let writer = match CriWriter::open(&args.path, args.policy) {
        Ok(w) => Mutex::new(w),
        Err(e) => {
            eprintln!("plinth log-shim: {}", crate::error::chain(&e));
            drain(stdout, stderr);
            return 1;
        }
    };
    let pumped = pump(stdout, stderr, &writer);
    let mut w = writer.into_inner().unwrap_or_else(|p| p.into_inner());
    let synced = w.sync();
    match pumped.and(synced) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("plinth log-shim: {}", crate::error::chain(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse_cri_line;
    use std::sync::{Arc, Condvar};

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let a = ShimArgs::parse(&args(&["--path", "/x/0.log"])).unwrap();
        assert_eq!(a.path, PathBuf::from("/x/0.log"));
        assert_eq!(a.policy, RotatePolicy::kubelet());
        let a =
            ShimArgs::parse(&args(&["--max-size=100", "--path=/y", "--max-files", "2"])).unwrap();
        assert_eq!(
            a.policy,
            RotatePolicy {
                max_size: 100,
                max_files: 2
            }
        );

        for (bad, needle) in [
            (vec![], "--path is required"),
            (vec!["--path"], "a value is required"),
            (vec!["--path", "p", "--max-size", "ten"], "\"ten\""),
            (vec!["--path", "p", "--max-files", "1"], "at least 2"),
            (vec!["--path", "p", "--verbose"], "\"--verbose\""),
        ] {
            let err = ShimArgs::parse(&args(&bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn command_line_round_trips_through_the_parser() {
        let cmd = shim_command_with_policy(
            Path::new("/usr/bin/plinth"),
            Path::new("/var/log/pods/a/b/0.log"),
            RotatePolicy {
                max_size: 1234,
                max_files: 3,
            },
        );
        assert_eq!(
            cmd.get_args().next(),
            Some(std::ffi::OsStr::new("log-shim"))
        );
        assert_eq!(cmd.get_program(), "/usr/bin/plinth");
        let rest: Vec<String> = cmd
            .get_args()
            .skip(1)
            .map(|a| a.to_str().unwrap().to_string())
            .collect();
        let parsed = ShimArgs::parse(&rest).unwrap();
        assert_eq!(parsed.path, PathBuf::from("/var/log/pods/a/b/0.log"));
        assert_eq!(
            parsed.policy,
            RotatePolicy {
                max_size: 1234,
                max_files: 3
            }
        );
    }

    /// Readers that hand out a global script of chunks strictly in order: a reader serves its
    /// next chunk only once every earlier chunk was served and the pump came back for more
    /// (i.e. wrote the records of the previous chunk).
    struct Scripted {
        me: Stream,
        script: Arc<Vec<(Stream, Vec<u8>)>>,
        turn: Arc<(Mutex<usize>, Condvar)>,
        served: Option<usize>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.turn;
            let mut turn = lock.lock().unwrap();
            if let Some(i) = self.served.take() {
                *turn = i + 1;
                cv.notify_all();
            }
            let from = *turn;
            let Some(next) = (from..self.script.len()).find(|i| self.script[*i].0 == self.me)
            else {
                return Ok(0);
            };
            while *turn != next {
                turn = cv.wait(turn).unwrap();
            }
            let data = &self.script[next].1;
            buf[..data.len()].copy_from_slice(data);
            self.served = Some(next);
            Ok(data.len())
        }
    }

    #[test]
    fn pump_interleaves_two_streams_in_order() {
        let script: Vec<(Stream, Vec<u8>)> = vec![
            (Stream::Stdout, b"out-1\nhalf ".to_vec()),
            (Stream::Stderr, b"err-1\n".to_vec()),
            (Stream::Stdout, b"line\nout-3\n".to_vec()),
            (Stream::Stderr, b"err-2\nno newline at eof".to_vec()),
        ];
        let script = Arc::new(script);
        let turn = Arc::new((Mutex::new(0usize), Condvar::new()));
        let reader = |me| Scripted {
            me,
            script: script.clone(),
            turn: turn.clone(),
            served: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let writer = Mutex::new(CriWriter::open(&path, RotatePolicy::kubelet()).unwrap());
        pump(reader(Stream::Stdout), reader(Stream::Stderr), &writer).unwrap();

        let got: Vec<(Stream, bool, String)> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let l = parse_cri_line(l).unwrap();
                (l.stream, l.partial, l.text)
            })
            .collect();
        let want = vec![
            (Stream::Stdout, false, "out-1".to_string()),
            (Stream::Stderr, false, "err-1".to_string()),
            (Stream::Stdout, false, "half line".to_string()),
            (Stream::Stdout, false, "out-3".to_string()),
            (Stream::Stderr, false, "err-2".to_string()),
            (Stream::Stderr, true, "no newline at eof".to_string()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn pump_handles_big_unstructured_input_from_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let writer = Mutex::new(CriWriter::open(&path, RotatePolicy::kubelet()).unwrap());
        let out: Vec<u8> = (0..5000)
            .flat_map(|i| format!("stdout line {i}\n").into_bytes())
            .collect();
        let err: Vec<u8> = (0..5000)
            .flat_map(|i| format!("stderr line {i}\n").into_bytes())
            .collect();
        pump(&out[..], &err[..], &writer).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut next = [0usize; 2];
        for l in text.lines() {
            let l = parse_cri_line(l).unwrap();
            let i = if l.stream == Stream::Stdout { 0 } else { 1 };
            assert_eq!(l.text, format!("{} line {}", l.stream, next[i]));
            next[i] += 1;
        }
        assert_eq!(next, [5000, 5000]);
    }

    #[test]
    fn stderr_fd_is_passed_as_fd_3() {
        // A child that copies fd 3 to stdout proves the plumbing without the plinth binary.
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, b"via fd 3").unwrap();
        drop(w);
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("cat <&3");
        pass_stderr_fd(&mut cmd, r);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"via fd 3");
    }
}
