//! An HTTPS client for tests that trusts exactly one CA and may present a client certificate;
//! each request runs on a thread inside the target [`NetNs`].

use std::io;
use std::path::Path;
use std::time::Duration;

use super::netns::NetNs;

/// Client settings: the CA to trust (only it) and an optional client cert + key.
#[derive(Debug, Clone)]
pub struct Https {
    ca_pem: Vec<u8>,
    identity_pem: Option<Vec<u8>>,
    timeout: Duration,
    insecure: bool,
}

/// A response: status code and body text.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body as text (lossy UTF-8).
    pub body: String,
}

impl Https {
    /// Trusts only the CA certificate(s) in `ca`.
    pub fn new(ca: &Path) -> io::Result<Https> {
        Ok(Https {
            ca_pem: std::fs::read(ca)?,
            identity_pem: None,
            timeout: Duration::from_secs(10),
            insecure: false,
        })
    }

    /// A client that does not verify the server certificate (like kubeadm's and the kubelet's
    /// HTTPS probes), for self-signed serving certs.
    pub fn insecure() -> Https {
        Https {
            ca_pem: Vec::new(),
            identity_pem: None,
            timeout: Duration::from_secs(10),
            insecure: true,
        }
    }

    /// Presents `cert` + `key` as the client certificate.
    pub fn client_cert(mut self, cert: &Path, key: &Path) -> io::Result<Https> {
        let mut pem = std::fs::read(cert)?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key)?);
        self.identity_pem = Some(pem);
        Ok(self)
    }

    /// Overall timeout per request (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Https {
        self.timeout = t;
        self
    }

    /// GET `url` from inside `ns`: (status, body).
    pub fn get(&self, ns: &NetNs, url: &str) -> io::Result<(u16, String)> {
        self.request(ns, "GET", url, None)
            .map(|r| (r.status, r.body))
    }

    /// POST `body` as JSON to `url` from inside `ns`: (status, body).
    pub fn post_json(
        &self,
        ns: &NetNs,
        url: &str,
        body: &serde_json::Value,
    ) -> io::Result<(u16, String)> {
        self.request(ns, "POST", url, Some(body.clone()))
            .map(|r| (r.status, r.body))
    }

    /// Any request; TLS and connection failures are errors (with the full cause chain).
    pub fn request(
        &self,
        ns: &NetNs,
        method: &str,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> io::Result<Response> {
        let this = self.clone();
        let url = url.to_string();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        ns.run_in(move || -> io::Result<Response> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let err = |e: reqwest::Error| {
                    let mut msg = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        msg.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    io::Error::other(msg)
                };
                let mut b = reqwest::Client::builder().timeout(this.timeout).no_proxy();
                if this.insecure {
                    b = b.danger_accept_invalid_certs(true);
                } else {
                    let ca = reqwest::Certificate::from_pem_bundle(&this.ca_pem).map_err(err)?;
                    b = b.tls_certs_only(ca);
                }
                if let Some(id) = &this.identity_pem {
                    b = b.identity(reqwest::Identity::from_pem(id).map_err(err)?);
                }
                let client = b.build().map_err(err)?;
                let mut req = client.request(method, &url);
                if let Some(v) = body {
                    req = req
                        .header("Content-Type", "application/json")
                        .body(v.to_string());
                }
                let resp = req.send().await.map_err(err)?;
                let status = resp.status().as_u16();
                let body = resp.text().await.map_err(err)?;
                Ok(Response { status, body })
            })
        })?
    }
}
