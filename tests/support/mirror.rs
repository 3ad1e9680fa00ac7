//! A release mirror on loopback for the binary-provisioning tests: a small threaded HTTP/1.1
//! server (one request per connection) serving the Kubernetes release layout
//! (`<prefix>/<version>/bin/linux/<arch>/<name>` + `.sha256`) and etcd's
//! (`<prefix>/<version>/etcd-<version>-linux-<arch>.tar.gz` + `SHA256SUMS`), with `Range`
//! support, a request log, and per-path misbehaviour (truncation, redirect loops, statuses).
//! It answers absolute-form requests too (`GET http://host/path`), as a forward proxy would,
//! and records them as proxied.
//!
//! The Python test doubles import `doublelib.py` from their own directory, so a mirror of the
//! doubles serves a `#!/bin/sh` wrapper per component that execs the double in place (an
//! architecture-independent script, which plinth accepts); real binaries (`PLINTH_E2E_BIN_DIR`)
//! are served byte for byte.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::netns::NetNs;

/// What a path serves.
#[derive(Debug, Clone)]
pub enum Content {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The content of this file.
    File(PathBuf),
}

impl Content {
    fn read(&self) -> Vec<u8> {
        match self {
            Content::Bytes(b) => b.clone(),
            Content::File(p) => std::fs::read(p).unwrap_or_default(),
        }
    }
}

/// How a path misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Announce the full length, never send past this byte of the file (also not on a
    /// resume), close — every time.
    Truncate(usize),
    /// [`Behaviour::Truncate`] on the first request only; later requests are served normally
    /// (with `Range`).
    TruncateOnce(usize),
    /// 302 to itself.
    RedirectLoop,
    /// Answer this status with an empty body.
    Status(u16),
    /// Ignore `Range` (always 200 with the whole file).
    NoRange,
}

/// One request the mirror saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The path (absolute-form targets reduced to their path).
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// True for an absolute-form target (a request sent to a proxy).
    pub proxied: bool,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Content>,
    behaviour: BTreeMap<String, Behaviour>,
    served_once: BTreeMap<String, bool>,
    log: Vec<Request>,
}

/// The mirror; stops on drop.
pub struct Mirror {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Mirror {
    /// A mirror on 127.0.0.1 of the host (or of `ns` when given: the listening socket is made
    /// inside that namespace).
    pub fn start(ns: Option<&NetNs>) -> Mirror {
        let listener = match ns {
            Some(ns) => ns
                .run_in(|| TcpListener::bind("127.0.0.1:0"))
                .expect("enter netns")
                .expect("bind the mirror"),
            None => TcpListener::bind("127.0.0.1:0").expect("bind the mirror"),
        };
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let st = st.clone();
                        thread::spawn(move || {
                            let _ = serve(s, &st);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Mirror { addr, state, stop }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `content` at `path`.
    pub fn put(&self, path: &str, content: Content) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.into(), content);
    }

    /// Makes `path` misbehave.
    pub fn set(&self, path: &str, b: Behaviour) {
        self.state.lock().unwrap().behaviour.insert(path.into(), b);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Publishes a Kubernetes binary and its `.sha256` under `prefix` (`/release`); returns
    /// the path of the binary.
    pub fn add_kubernetes(
        &self,
        prefix: &str,
        version: &str,
        arch: &str,
        name: &str,
        content: Content,
    ) -> String {
        let path = format!("{prefix}/{version}/bin/linux/{arch}/{name}");
        let digest = sha256_hex(&content.read());
        self.put(
            &format!("{path}.sha256"),
            Content::Bytes(format!("{digest}\n").into_bytes()),
        );
        self.put(&path, content);
        path
    }

    /// Publishes an etcd release tarball (`etcd` and `etcdctl` in
    /// `etcd-<version>-linux-<arch>/`) built in `scratch`, and `SHA256SUMS`; returns the path
    /// of the tarball.
    pub fn add_etcd(
        &self,
        prefix: &str,
        version: &str,
        arch: &str,
        etcd: &Path,
        etcdctl: &Path,
        scratch: &Path,
    ) -> String {
        let dir = format!("etcd-{version}-linux-{arch}");
        let name = format!("{dir}.tar.gz");
        let out = scratch.join(&name);
        plinth::binaries::tarball::build(
            &out,
            &[
                (
                    format!("{dir}/etcd"),
                    std::fs::read(etcd).expect("read etcd"),
                    0o755,
                ),
                (
                    format!("{dir}/etcdctl"),
                    std::fs::read(etcdctl).expect("read etcdctl"),
                    0o755,
                ),
                (format!("{dir}/README.md"), b"etcd\n".to_vec(), 0o644),
            ],
        )
        .expect("build the etcd tarball");
        let digest = sha256_hex(&std::fs::read(&out).unwrap());
        let sums = format!(
            "{}  etcd-{version}-linux-s390x.tar.gz\n{digest}  {name}\n",
            "0".repeat(64)
        );
        self.put(
            &format!("{prefix}/{version}/SHA256SUMS"),
            Content::Bytes(sums.into_bytes()),
        );
        let path = format!("{prefix}/{version}/{name}");
        self.put(&path, Content::File(out));
        path
    }

    /// Requests for binaries or tarballs (not checksums).
    pub fn downloads(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| !r.path.ends_with(".sha256") && !r.path.ends_with("SHA256SUMS"))
            .collect()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A `#!/bin/sh` wrapper that execs `target` with the same arguments (how a mirror serves the
/// Python doubles, which need their own directory).
pub fn exec_wrapper(target: &Path) -> Vec<u8> {
    format!(
        "#!/bin/sh\n# TEST DOUBLE wrapper served by the test mirror — NEVER SHIPPED\nexec '{}' \"$@\"\n",
        target.display()
    )
    .into_bytes()
}

fn serve(s: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (path, proxied) = match target.strip_prefix("http://") {
        Some(rest) => (
            format!("/{}", rest.split_once('/').map(|x| x.1).unwrap_or("")),
            true,
        ),
        None => (target.clone(), false),
    };
    let (content, behaviour) = {
        let mut st = state.lock().unwrap();
        st.log.push(Request {
            path: path.clone(),
            range: range.clone(),
            proxied,
        });
        let mut b = st.behaviour.get(&path).cloned();
        if matches!(b, Some(Behaviour::TruncateOnce(_)))
            && st.served_once.insert(path.clone(), true).is_some()
        {
            b = None;
        }
        (st.files.get(&path).cloned(), b)
    };
    let mut w = s;
    match behaviour {
        Some(Behaviour::RedirectLoop) => {
            return write!(w, "HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Some(Behaviour::Status(code)) => {
            return write!(
                w,
                "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        _ => {}
    }
    let Some(content) = content else {
        return write!(
            w,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
        );
    };
    let body = content.read();
    let len = body.len();
    let start = match (&behaviour, range.as_deref()) {
        (Some(Behaviour::NoRange), _) | (_, None) => None,
        (_, Some(r)) => r
            .strip_prefix("bytes=")
            .and_then(|x| x.strip_suffix('-'))
            .and_then(|x| x.parse::<usize>().ok())
            .filter(|s| *s < len),
    };
    let (status, slice, extra) = match start {
        Some(s) => (
            "206 Partial Content",
            &body[s..],
            format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
        ),
        None => ("200 OK", &body[..], String::new()),
    };
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n{extra}Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        slice.len()
    )?;
    let offset = start.unwrap_or(0);
    let send = match behaviour {
        Some(Behaviour::Truncate(n)) | Some(Behaviour::TruncateOnce(n)) => {
            n.saturating_sub(offset).min(slice.len())
        }
        _ => slice.len(),
    };
    w.write_all(&slice[..send])?;
    w.flush()?;
    if send < slice.len() {
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
    // Drain nothing more: one request per connection.
    let _ = r.read(&mut [0u8; 1]);
    Ok(())
}
