//! The client of the agent's status API ([`super::serve`]): `GET /healthz` and `GET /pods`,
//! typed, with typed errors. init (is an agent running? the wait), verify, regenerate, `ps`
//! and `logs` all read the agent through it.

use std::time::Duration;

use super::PodList;
use crate::agent::podconfig::Problem;

/// The `/pods` body: a PodList plus the agent's source problems (`problems`, which k8s
/// clients ignore).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PodsBody {
    /// The pods, as a k8s `v1 PodList`.
    #[serde(flatten)]
    pub list: PodList,
    /// Manifests the agent cannot run as they are (an older agent sends none).
    #[serde(default)]
    pub problems: Vec<Problem>,
}

/// Why the status API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client for the agent's status API")]
    Client(#[source] reqwest::Error),
    /// No answer (nothing listening, timeout, connection reset). The source names the URL.
    #[error("GET {path}")]
    Request {
        /// The path (`/pods`).
        path: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not a success.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The runtime for a blocking call could not be started.
    #[error("starting a runtime for the status client")]
    Runtime(#[source] std::io::Error),
    /// A body that is not what the agent sends. The source names the URL.
    #[error("GET {path}: the body is not the agent's PodList")]
    Decode {
        /// The path (`/pods`).
        path: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

/// A client of one agent's status API.
#[derive(Debug, Clone)]
pub struct StatusClient {
    addr: String,
    http: reqwest::Client,
}

impl StatusClient {
    /// A client of the agent at `addr` (`host:port`, IPv6 bracketed) whose requests give up
    /// after `timeout` (connecting: at most 500 ms).
    pub fn new(addr: impl Into<String>, timeout: Duration) -> Result<StatusClient, StatusError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_millis(500)))
            .no_proxy()
            .build()
            .map_err(StatusError::Client)?;
        Ok(StatusClient {
            addr: addr.into(),
            http,
        })
    }

    /// The agent's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The URL of `path` (`/pods`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &'static str) -> Result<reqwest::Response, StatusError> {
        let url = self.url(path);
        let resp = match self.http.get(&url).send().await {
            Ok(r) => r,
            Err(source) => return Err(StatusError::Request { path, source }),
        };
        if !resp.status().is_success() {
            return Err(StatusError::Status {
                url,
                status: resp.status(),
            });
        }
        Ok(resp)
    }

    /// `GET /healthz`: `Ok` when the agent answers 200.
    pub async fn healthz(&self) -> Result<(), StatusError> {
        self.get("/healthz").await.map(drop)
    }

    /// `GET /pods`: the agent's pods and problems.
    pub async fn pods(&self) -> Result<PodsBody, StatusError> {
        let resp = self.get("/pods").await?;
        resp.json::<PodsBody>()
            .await
            .map_err(|source| StatusError::Decode {
                path: "/pods",
                source,
            })
    }

    /// [`StatusClient::pods`] from synchronous code (its own single-threaded runtime); not
    /// from inside an async runtime.
    pub fn pods_blocking(&self) -> Result<PodsBody, StatusError> {
        block_on(self.pods())
    }

    /// [`StatusClient::healthz`] from synchronous code; not from inside an async runtime.
    pub fn healthz_blocking(&self) -> Result<(), StatusError> {
        block_on(self.healthz())
    }
}

/// Runs `f` to completion on a thread of its own with a single-threaded runtime: callable
/// from synchronous code and from inside a runtime, and it leaves the caller's thread as it
/// was. (`plinth init` forks the agent from its main thread right after asking whether one
/// runs; with the runtime on that thread, the spawned agent's etcd could not open its
/// certificates — see `init_e2e`; on a thread of its own it can.)
fn block_on<T: Send>(
    f: impl std::future::Future<Output = Result<T, StatusError>> + Send,
) -> Result<T, StatusError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(StatusError::Runtime)?
                .block_on(f)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn serve(view: super::super::StatusView) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let view: super::super::ViewFn = Arc::new(move || view.clone());
        tokio::spawn(super::super::serve(l, view));
        addr
    }

    /// The client reads what the server serves: one definition of the body on both sides.
    #[tokio::test]
    async fn client_reads_the_servers_pods_and_problems() {
        let problem = Problem {
            kind: crate::agent::podconfig::ProblemKind::InvalidManifest,
            file: "/etc/kubernetes/manifests/bad.yaml".into(),
            line: Some(3),
            reason: "mapping values are not allowed here".into(),
            pod: None,
        };
        let addr = serve(super::super::StatusView {
            pods: vec![],
            problems: vec![problem.clone()],
            node_ip: None,
        })
        .await;
        let c = StatusClient::new(&addr, Duration::from_secs(2)).unwrap();
        c.healthz().await.unwrap();
        let body = c.pods().await.unwrap();
        assert!(body.list.items.is_empty());
        assert_eq!(body.problems, [problem]);
        // Back to JSON: still a PodList a k8s client reads, problems beside it.
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["kind"], "PodList");
        assert_eq!(v["problems"][0]["line"], 3);
    }

    #[tokio::test]
    async fn errors_say_what_failed_and_keep_the_cause() {
        // Nothing listens on a port just released.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let c = StatusClient::new(&addr, Duration::from_secs(1)).unwrap();
        let e = c.pods().await.unwrap_err();
        assert!(matches!(e, StatusError::Request { .. }), "{e:?}");
        assert_eq!(e.to_string(), "GET /pods");
        // The cause names the URL, once.
        let chain = crate::error::chain(&e);
        assert_eq!(chain.matches(&addr).count(), 1, "{chain}");

        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let c = StatusClient::new(&addr, Duration::from_secs(1)).unwrap();
        let e = c.healthz().await.unwrap_err();
        assert!(
            matches!(e, StatusError::Status { status, .. } if status.as_u16() == 503),
            "{e:?}"
        );
    }
}
