//! Fetching one URL into a file: `https://`, `http://` (loopback only, checked by the
//! configuration) and `file://`, with retries and backoff for transient failures, resume with
//! `Range` where the server allows it, an explicit proxy choice (`HTTPS_PROXY` / `HTTP_PROXY`
//! / `NO_PROXY`, loopback never proxied) and an optional CA bundle for a private mirror.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use super::BinariesError;

/// Told about a download's progress (the CLI draws bars; the library stays quiet).
pub trait Observer: Send + Sync {
    /// A transfer of `url` starts (`total` bytes when known), from byte `offset` on a resume.
    fn started(&self, _url: &str, _total: Option<u64>, _offset: u64) {}
    /// `bytes` more arrived.
    fn progressed(&self, _url: &str, _bytes: u64) {}
    /// The transfer ended; `ok` false when it failed (a retry may follow).
    fn finished(&self, _url: &str, _ok: bool) {}
    /// A transient failure; the next attempt starts after `delay`.
    fn retrying(&self, _url: &str, _error: &str, _delay: Duration) {}
}

/// An [`Observer`] that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Attempts per URL (transient errors only are retried).
    pub attempts: u32,
    /// Delay before the second attempt; doubled each time.
    pub backoff: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            attempts: 4,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl FetchOptions {
    /// The defaults, with `PLINTH_DOWNLOAD_ATTEMPTS` and `PLINTH_DOWNLOAD_BACKOFF_MS` applied.
    pub fn from_env() -> Self {
        let mut o = FetchOptions::default();
        if let Some(n) = env_num("PLINTH_DOWNLOAD_ATTEMPTS") {
            o.attempts = (n as u32).max(1);
        }
        if let Some(ms) = env_num("PLINTH_DOWNLOAD_BACKOFF_MS") {
            o.backoff = Duration::from_millis(ms);
        }
        o
    }
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// The proxy settings of the environment, applied the way Go's `httpproxy` (and so kubeadm)
/// applies them: `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http URLs (upper case first,
/// then lower case), never for loopback hosts, and not for hosts `NO_PROXY` lists
/// (`*`, exact hosts, `.domain`/`domain` suffixes, IPs and CIDRs; ports ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY` / `https_proxy`.
    pub https_proxy: Option<String>,
    /// `HTTP_PROXY` / `http_proxy`.
    pub http_proxy: Option<String>,
    /// `NO_PROXY` / `no_proxy`.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        let get = |a: &str, b: &str| {
            std::env::var(a)
                .ok()
                .or_else(|| std::env::var(b).ok())
                .filter(|s| !s.trim().is_empty())
        };
        ProxyEnv {
            https_proxy: get("HTTPS_PROXY", "https_proxy"),
            http_proxy: get("HTTP_PROXY", "http_proxy"),
            no_proxy: get("NO_PROXY", "no_proxy"),
        }
    }

    /// The proxy for `url`, if any.
    pub fn proxy_for(&self, url: &reqwest::Url) -> Option<String> {
        let proxy = match url.scheme() {
            "https" => self.https_proxy.clone()?,
            "http" => self.http_proxy.clone()?,
            _ => return None,
        };
        let host = url.host_str()?;
        if super::repo::is_loopback_host(host) || self.bypassed(host) {
            return None;
        }
        Some(if proxy.contains("://") {
            proxy
        } else {
            format!("http://{proxy}")
        })
    }

    fn bypassed(&self, host: &str) -> bool {
        let Some(list) = &self.no_proxy else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let ip: Option<std::net::IpAddr> = host.parse().ok();
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|entry| {
                if entry == "*" {
                    return true;
                }
                let entry = entry.to_ascii_lowercase();
                if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
                    return cidr_contains(net, bits, ip);
                }
                // Strip a port (`host:port`, `[v6]:port`), keep bare IPv6 addresses.
                let e = if entry.starts_with('[') {
                    entry
                        .trim_start_matches('[')
                        .split(']')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                } else if entry.matches(':').count() == 1 {
                    entry.split(':').next().unwrap_or_default().to_string()
                } else {
                    entry.clone()
                };
                if let (Some(ip), Ok(eip)) = (ip, e.parse::<std::net::IpAddr>()) {
                    return ip == eip;
                }
                let suffix = e.trim_start_matches('*').trim_start_matches('.');
                !suffix.is_empty() && (host == suffix || host.ends_with(&format!(".{suffix}")))
            })
    }
}

fn cidr_contains(net: &str, bits: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Fetches URLs of one or more repositories.
pub struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
    proxy: ProxyEnv,
}

impl Fetcher {
    /// A fetcher trusting the system roots (webpki) plus, when given, the PEM certificates in
    /// `ca_bundle` (a private mirror's CA), with `proxy` applied per URL.
    pub fn new(
        ca_bundle: Option<&Path>,
        proxy: ProxyEnv,
        opts: FetchOptions,
    ) -> Result<Fetcher, BinariesError> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("plinth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .redirect(reqwest::redirect::Policy::limited(10));
        if let Some(path) = ca_bundle {
            let bad = |detail: String| BinariesError::CaBundle {
                path: path.to_path_buf(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let p = proxy.clone();
        b = b.proxy(reqwest::Proxy::custom(move |url| p.proxy_for(url)));
        let client = b
            .build()
            .map_err(|e| BinariesError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            opts,
            proxy,
        })
    }

    /// The proxy a request for `url` goes through (for messages).
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|u| self.proxy.proxy_for(&u))
    }

    /// A small text file (a checksum), at most 1 MiB.
    pub async fn fetch_text(&self, url: &str, what: &str) -> Result<String, BinariesError> {
        let dir = tempfile::tempdir().map_err(|e| BinariesError::Io {
            path: std::env::temp_dir(),
            detail: e.to_string(),
        })?;
        let path = dir.path().join("text");
        let mut f = std::fs::File::create(&path).map_err(|e| io_err(&path, e))?;
        self.fetch_to(url, what, &mut f, &path, &Quiet).await?;
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        if bytes.len() > 1 << 20 {
            return Err(BinariesError::Invalid {
                url: url.into(),
                detail: format!(
                    "{what} is {} bytes; expected a small text file",
                    bytes.len()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Downloads `url` into `file` (at `path`, already created and empty); `what` names the
    /// content for errors. Transient failures are retried with backoff, resuming with `Range`
    /// when the server answers 206; returns the size.
    pub async fn fetch_to(
        &self,
        url: &str,
        what: &str,
        file: &mut std::fs::File,
        path: &Path,
        obs: &dyn Observer,
    ) -> Result<u64, BinariesError> {
        if let Some(p) = url.strip_prefix("file://") {
            return copy_local(url, Path::new(p), what, file, path, obs);
        }
        let mut have: u64 = 0;
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(url, what, file, path, &mut have, obs).await {
                Ok(n) => return Ok(n),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt >= self.opts.attempts => {
                    return Err(e.with_attempts(attempt))
                }
                Err(Failure::Transient(e)) => {
                    tracing::info!("{e}; retrying in {delay:?}");
                    obs.retrying(url, &e.to_string(), delay);
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        what: &str,
        file: &mut std::fs::File,
        path: &Path,
        have: &mut u64,
        obs: &dyn Observer,
    ) -> Result<u64, Failure> {
        let mut req = self.client.get(url);
        if *have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
        }
        let resp = req.send().await.map_err(|e| classify(url, e))?;
        let status = resp.status();
        let total = match status {
            StatusCode::PARTIAL_CONTENT if *have > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                match start {
                    Some((s, total)) if s == *have => total,
                    _ => {
                        // Not the range asked for: start over.
                        *have = 0;
                        truncate(file, path).map_err(Failure::Permanent)?;
                        return Err(Failure::Transient(BinariesError::Transport {
                            url: url.into(),
                            detail: "the server answered a resume with another range".into(),
                            attempts: 0,
                        }));
                    }
                }
            }
            StatusCode::OK => {
                if *have > 0 {
                    tracing::info!(
                        "{url}: the server does not resume (200 to a Range request): starting over"
                    );
                    *have = 0;
                    truncate(file, path).map_err(Failure::Permanent)?;
                }
                resp.content_length()
            }
            StatusCode::NOT_FOUND => {
                return Err(Failure::Permanent(BinariesError::NotFound {
                    url: url.into(),
                    expected: what.into(),
                }))
            }
            s if s.is_server_error()
                || s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT =>
            {
                return Err(Failure::Transient(BinariesError::HttpStatus {
                    url: url.into(),
                    status: s.as_u16(),
                    expected: what.into(),
                    attempts: 0,
                }))
            }
            s if s.is_redirection() => {
                return Err(Failure::Permanent(BinariesError::Redirect {
                    url: url.into(),
                    detail: format!("HTTP {s} without a usable Location"),
                }))
            }
            s => {
                return Err(Failure::Permanent(BinariesError::HttpStatus {
                    url: url.into(),
                    status: s.as_u16(),
                    expected: what.into(),
                    attempts: 1,
                }))
            }
        };
        obs.started(url, total, *have);
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    file.write_all(&bytes)
                        .map_err(|e| Failure::Permanent(io_err(path, e)))?;
                    *have += bytes.len() as u64;
                    obs.progressed(url, bytes.len() as u64);
                }
                Ok(None) => break,
                Err(e) => {
                    obs.finished(url, false);
                    return Err(Failure::Transient(BinariesError::Truncated {
                        url: url.into(),
                        received: *have,
                        expected: total,
                        detail: error_chain(&e),
                        attempts: 0,
                    }));
                }
            }
        }
        if let Some(t) = total {
            if *have != t {
                obs.finished(url, false);
                return Err(Failure::Transient(BinariesError::Truncated {
                    url: url.into(),
                    received: *have,
                    expected: total,
                    detail: "the connection ended early".into(),
                    attempts: 0,
                }));
            }
        }
        obs.finished(url, true);
        Ok(*have)
    }
}

enum Failure {
    Transient(BinariesError),
    Permanent(BinariesError),
}

fn classify(url: &str, e: reqwest::Error) -> Failure {
    let detail = error_chain(&e);
    if e.is_redirect() {
        return Failure::Permanent(BinariesError::Redirect {
            url: url.into(),
            detail,
        });
    }
    if e.is_builder() {
        return Failure::Permanent(BinariesError::Transport {
            url: url.into(),
            detail,
            attempts: 1,
        });
    }
    // A certificate the client does not trust will not start being trusted on a retry.
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return Failure::Permanent(BinariesError::Transport {
            url: url.into(),
            detail: format!(
                "{detail} (for a private mirror, set binaryRepositoryCABundle to its CA)"
            ),
            attempts: 1,
        });
    }
    Failure::Transient(BinariesError::Transport {
        url: url.into(),
        detail,
        attempts: 0,
    })
}

/// `bytes 100-199/200` → (100, Some(200)).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split('-').next()?.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

fn truncate(file: &mut std::fs::File, path: &Path) -> Result<(), BinariesError> {
    file.set_len(0).map_err(|e| io_err(path, e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
    Ok(())
}

fn copy_local(
    url: &str,
    src: &Path,
    what: &str,
    file: &mut std::fs::File,
    path: &Path,
    obs: &dyn Observer,
) -> Result<u64, BinariesError> {
    let mut input = match std::fs::File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BinariesError::NotFound {
                url: url.into(),
                expected: what.into(),
            })
        }
        Err(e) => return Err(io_err(src, e)),
    };
    let total = input.metadata().ok().map(|m| m.len());
    obs.started(url, total, 0);
    let n = std::io::copy(&mut input, file).map_err(|e| io_err(path, e))?;
    obs.progressed(url, n);
    obs.finished(url, true);
    Ok(n)
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> BinariesError {
    BinariesError::Io {
        path: PathBuf::from(path),
        detail: e.to_string(),
    }
}

/// An error and its sources, `: `-joined (reqwest's own message alone says little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: Option<&str>, http: Option<&str>, no: Option<&str>) -> ProxyEnv {
        ProxyEnv {
            https_proxy: https.map(String::from),
            http_proxy: http.map(String::from),
            no_proxy: no.map(String::from),
        }
    }

    fn p(e: &ProxyEnv, url: &str) -> Option<String> {
        e.proxy_for(&reqwest::Url::parse(url).unwrap())
    }

    #[test]
    fn https_proxy_applies_to_https_urls_only() {
        let e = env(Some("proxy.corp:3128"), None, None);
        assert_eq!(
            p(
                &e,
                "https://dl.k8s.io/release/v1.24.0/bin/linux/amd64/kubectl"
            )
            .as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(p(&e, "http://127.0.0.1:8080/x"), None);
        let e = env(None, Some("http://proxy:80"), None);
        assert_eq!(p(&e, "https://dl.k8s.io/x"), None);
    }

    #[test]
    fn loopback_is_never_proxied() {
        let e = env(Some("http://proxy:3128"), Some("http://proxy:3128"), None);
        for u in [
            "http://127.0.0.1:9/x",
            "https://localhost/x",
            "http://[::1]:80/x",
        ] {
            assert_eq!(p(&e, u), None, "{u}");
        }
    }

    #[test]
    fn no_proxy_hosts_domains_ips_and_cidrs() {
        let e = env(
            Some("http://proxy:3128"),
            None,
            Some("mirror.corp, .example.com,10.0.0.0/8, 192.168.1.5:443,*.svc"),
        );
        assert_eq!(p(&e, "https://mirror.corp/x"), None);
        assert_eq!(p(&e, "https://dl.example.com/x"), None);
        assert_eq!(p(&e, "https://example.com/x"), None);
        assert_eq!(p(&e, "https://10.1.2.3/x"), None);
        assert_eq!(p(&e, "https://192.168.1.5/x"), None);
        assert_eq!(p(&e, "https://a.b.svc/x"), None);
        assert!(p(&e, "https://dl.k8s.io/x").is_some());
        assert!(p(&e, "https://notexample.com/x").is_some());
        assert!(p(&e, "https://11.0.0.1/x").is_some());
        let all = env(Some("http://proxy:3128"), None, Some("*"));
        assert_eq!(p(&all, "https://dl.k8s.io/x"), None);
    }

    #[test]
    fn content_range_start_and_total() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
