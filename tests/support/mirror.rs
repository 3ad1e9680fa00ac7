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
    scheme: &'static str,
}

impl Mirror {
    /// A mirror on 127.0.0.1 of the host (or of `ns` when given: it listens and connects
    /// inside that namespace).
    pub fn start(ns: Option<&NetNs>) -> Mirror {
        Self::spawn(ns, "127.0.0.1".parse().unwrap(), None)
    }

    /// An HTTPS mirror on `ip` (inside `ns` when given) serving the certificate chain and key
    /// in these PEM files.
    pub fn start_tls(ns: Option<&NetNs>, ip: std::net::IpAddr, cert: &Path, key: &Path) -> Mirror {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("read cert")
            .collect::<Result<_, _>>()
            .expect("parse cert");
        let key = PrivateKeyDer::from_pem_file(key).expect("read key");
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server cert");
        Self::spawn(ns, ip, Some(Arc::new(cfg)))
    }

    fn spawn(
        ns: Option<&NetNs>,
        ip: std::net::IpAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Mirror {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let ns_path = ns.map(|n| n.path());
        let is_tls = tls.is_some();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            // Threads inherit the namespace of the thread that creates them: the connection
            // threads (and a proxy's outgoing connections) live inside too.
            if let Some(p) = ns_path {
                let f = std::fs::File::open(&p).expect("open netns");
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            }
            let listener = TcpListener::bind((ip, 0)).expect("bind the mirror");
            listener.set_nonblocking(true).expect("nonblocking");
            tx.send(listener.local_addr().expect("addr")).unwrap();
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let st = st.clone();
                        let tls = tls.clone();
                        thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                            match tls {
                                Some(cfg) => {
                                    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                        return;
                                    };
                                    let _ = serve(rustls::StreamOwned::new(conn, s), &st, None);
                                }
                                None => {
                                    let raw = s.try_clone().ok();
                                    let _ = serve(s, &st, raw);
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let addr = rx.recv().expect("the mirror's address");
        Mirror {
            addr,
            state,
            stop,
            scheme: if is_tls { "https" } else { "http" },
        }
    }

    /// `http://127.0.0.1:<port>` (`https://<ip>:<port>` for a TLS mirror).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

/// Reads the request head (up to the blank line) byte by byte.
fn read_head(s: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if s.read(&mut b)? == 0 {
            break;
        }
        head.push(b[0]);
        if head.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Serves one request on `w`; `raw` is the plain TCP connection (for a CONNECT tunnel).
fn serve<S: Read + Write>(
    mut w: S,
    state: &Mutex<State>,
    raw: Option<TcpStream>,
) -> std::io::Result<()> {
    let head = read_head(&mut w)?;
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default().to_string();
    let method = line.split_whitespace().next().unwrap_or("GET").to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    for h in lines {
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    if method == "CONNECT" {
        // A forward proxy's tunnel: log it, connect, splice both ways.
        state.lock().unwrap().log.push(Request {
            path: format!("CONNECT {target}"),
            range: None,
            proxied: true,
        });
        drop(w);
        return tunnel(raw, &target);
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
    // Dropping the stream closes the connection (one request per connection; a truncated
    // body ends here, short of its Content-Length).
    Ok(())
}

/// The proxy side of CONNECT: answers 200, then copies bytes both ways until either side
/// closes.
fn tunnel(client: Option<TcpStream>, target: &str) -> std::io::Result<()> {
    let Some(mut client) = client else {
        return Ok(()); // CONNECT over TLS: not a proxy
    };
    let Ok(upstream) = TcpStream::connect(target) else {
        return write!(
            client,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
        );
    };
    write!(client, "HTTP/1.1 200 Connection established\r\n\r\n")?;
    client.set_read_timeout(None)?;
    let (mut c_read, mut c_write) = (client.try_clone()?, client);
    let (mut u_read, mut u_write) = (upstream.try_clone()?, upstream);
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}
