//! [`execute`]: one probe attempt, bounded by the spec's timeout.
//!
//! - httpGet: one shared HTTP client (built lazily) that, like the kubelet's prober, skips
//!   certificate verification, follows no redirects (a 3xx is a success), ignores proxies and
//!   keeps no idle connections. 200..=399 is success. `User-Agent: kube-probe/1.33` and
//!   `Accept: */*` are sent unless the probe sets them; at most [`MAX_BODY_BYTES`] of the body
//!   are read.
//! - tcpSocket: success when a connection is established within the timeout.
//! - exec: the command runs as a host process in its own process group (stdin closed); exit 0
//!   is success. On timeout the whole group is killed with SIGKILL. At most
//!   [`MAX_EXEC_OUTPUT_BYTES`] of combined stdout/stderr go into the failure message.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::spec::host_port;
use super::{ProbeAction, ProbeOutcome, ProbeSpec};

/// The User-Agent sent by httpGet probes (the kubelet sends `kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";
/// How much of an HTTP response body is read (the kubelet reads 10 KiB).
pub const MAX_BODY_BYTES: usize = 10 * 1024;
/// How much exec output is kept (the kubelet keeps 10 KiB).
pub const MAX_EXEC_OUTPUT_BYTES: usize = 10 * 1024;
/// Characters of body/output quoted in a failure message.
const QUOTE_CHARS: usize = 256;

/// Runs one attempt of `spec`; never takes (much) longer than `spec.timeout`.
pub async fn execute(spec: &ProbeSpec) -> ProbeOutcome {
    match &spec.action {
        ProbeAction::Http { .. } => http(spec).await,
        ProbeAction::Tcp { host, port } => tcp(host, *port, spec.timeout).await,
        ProbeAction::Exec { command } => exec(command, spec.timeout).await,
    }
}

/// The shared probe client, or why it could not be built.
fn client() -> Result<&'static reqwest::Client, &'static reqwest::Error> {
    static CLIENT: OnceLock<Result<reqwest::Client, reqwest::Error>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
        })
        .as_ref()
}

async fn http(spec: &ProbeSpec) -> ProbeOutcome {
    let ProbeAction::Http { headers, .. } = &spec.action else {
        return ProbeOutcome::Failure("not an httpGet probe".into());
    };
    let Some(url) = spec.action.url() else {
        return ProbeOutcome::Failure("not an httpGet probe".into());
    };
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            return ProbeOutcome::Failure(format!(
                "cannot build the HTTP probe client: {}",
                crate::error::chain(e)
            ))
        }
    };
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut req = client.get(&url).timeout(spec.timeout);
    if !has("user-agent") {
        req = req.header(reqwest::header::USER_AGENT, USER_AGENT);
    }
    if !has("accept") {
        req = req.header(reqwest::header::ACCEPT, "*/*");
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let attempt = async {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_BODY_BYTES {
            match resp.chunk().await? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_BODY_BYTES);
        Ok::<_, reqwest::Error>((status, body))
    };
    match tokio::time::timeout(spec.timeout, attempt).await {
        Err(_) => ProbeOutcome::Failure(format!(
            "Get {url:?}: timed out after {}",
            fmt_duration(spec.timeout)
        )),
        Ok(Err(e)) if e.is_timeout() => ProbeOutcome::Failure(format!(
            "Get {url:?}: timed out after {}",
            fmt_duration(spec.timeout)
        )),
        Ok(Err(e)) => ProbeOutcome::Failure(format!("Get {url:?}: {}", crate::error::chain(&e))),
        Ok(Ok((status, _))) if (200..400).contains(&status) => ProbeOutcome::Success,
        Ok(Ok((status, body))) => {
            let quoted = quote(&body);
            if quoted.is_empty() {
                ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {status}"))
            } else {
                ProbeOutcome::Failure(format!(
                    "HTTP probe failed with statuscode: {status}: {quoted}"
                ))
            }
        }
    }
}

async fn tcp(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let addr = host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_stream)) => ProbeOutcome::Success,
        Ok(Err(e)) => ProbeOutcome::Failure(format!("dial tcp {addr}: {e}")),
        Err(_) => ProbeOutcome::Failure(format!(
            "dial tcp {addr}: timed out after {}",
            fmt_duration(timeout)
        )),
    }
}

async fn exec(command: &[String], timeout: Duration) -> ProbeOutcome {
    let Some((program, args)) = command.split_first() else {
        return ProbeOutcome::Failure("exec probe has an empty command".into());
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return ProbeOutcome::Failure(format!("exec {command:?}: {e}")),
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));

    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return ProbeOutcome::Failure(format!("exec {command:?}: wait: {e}")),
        Err(_) => {
            // Still running: the leader is not reaped yet, so the group id is still ours.
            if let Some(pgid) = pgid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            abort(out);
            abort(err);
            return ProbeOutcome::Failure(format!(
                "command {command:?} timed out after {}",
                fmt_duration(timeout)
            ));
        }
    };
    if status.success() {
        abort(out);
        abort(err);
        return ProbeOutcome::Success;
    }
    // Collect output briefly: a leftover background child may keep the pipes open.
    let mut output = Vec::new();
    for handle in [out, err].into_iter().flatten() {
        if let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_millis(200), handle).await {
            output.extend_from_slice(&bytes);
        }
    }
    output.truncate(MAX_EXEC_OUTPUT_BYTES);
    let code = match status.code() {
        Some(c) => format!("exit code {c}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            format!("signal {}", status.signal().unwrap_or(0))
        }
    };
    let quoted = quote(&output);
    if quoted.is_empty() {
        ProbeOutcome::Failure(format!("command {command:?} failed with {code}"))
    } else {
        ProbeOutcome::Failure(format!("command {command:?} failed with {code}: {quoted}"))
    }
}

fn abort(handle: Option<tokio::task::JoinHandle<Vec<u8>>>) {
    if let Some(h) = handle {
        h.abort();
    }
}

/// Reads up to [`MAX_EXEC_OUTPUT_BYTES`] and discards the rest until EOF.
async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_EXEC_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The first [`QUOTE_CHARS`] characters of `bytes` (lossy UTF-8), whitespace-trimmed.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    fn http_spec(
        port: u16,
        path: &str,
        headers: Vec<(String, String)>,
        scheme: super::super::Scheme,
    ) -> ProbeSpec {
        ProbeSpec {
            action: ProbeAction::Http {
                scheme,
                host: "127.0.0.1".into(),
                port,
                path: path.into(),
                headers,
            },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_millis(1500),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    fn plain(port: u16, path: &str) -> ProbeSpec {
        http_spec(port, path, vec![], super::super::Scheme::Http)
    }

    /// Reads one HTTP request head from `s`.
    async fn read_head(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b).await {
                Ok(1) => head.push(b[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// A tiny HTTP server: answers by path (`/status/<code>`, `/redirect`, `/hang`) and
    /// reports each request head on the returned channel.
    async fn server() -> (u16, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut sock).await;
                    let target = head.split_whitespace().nth(1).unwrap_or("/");
                    let path = target.split('?').next().unwrap_or("/").to_string();
                    let _ = tx.send(head);
                    let resp = if path == "/hang" {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    } else if path == "/redirect" {
                        "HTTP/1.1 302 Found\r\nLocation: /status/500\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    } else if let Some(code) = path.strip_prefix("/status/") {
                        let body = format!("body of {code}");
                        format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn http_status_codes() {
        let (port, mut rx) = server().await;
        assert_eq!(
            execute(&plain(port, "/status/200")).await,
            ProbeOutcome::Success
        );
        assert_eq!(
            execute(&plain(port, "/status/399")).await,
            ProbeOutcome::Success
        );
        match execute(&plain(port, "/status/404")).await {
            ProbeOutcome::Failure(m) => assert!(
                m.contains("statuscode: 404") && m.contains("body of 404"),
                "{m}"
            ),
            o => panic!("404 must fail: {o:?}"),
        }
        match execute(&plain(port, "/status/500")).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("statuscode: 500"), "{m}"),
            o => panic!("500 must fail: {o:?}"),
        }
        match execute(&plain(port, "/status/400")).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("statuscode: 400"), "{m}"),
            o => panic!("400 must fail: {o:?}"),
        }
        // 302 counts as success and is not followed (its target would answer 500).
        while rx.try_recv().is_ok() {}
        assert_eq!(
            execute(&plain(port, "/redirect")).await,
            ProbeOutcome::Success
        );
        let first = rx.recv().await.unwrap();
        assert!(first.starts_with("GET /redirect "), "{first}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rx.try_recv().is_err(), "the redirect must not be followed");
    }

    #[tokio::test]
    async fn http_sends_headers_and_user_agent() {
        let (port, mut rx) = server().await;
        let spec = http_spec(
            port,
            "/status/200?x=1",
            vec![
                ("X-Custom".into(), "hello".into()),
                ("Accept".into(), "application/json".into()),
            ],
            super::super::Scheme::Http,
        );
        assert_eq!(execute(&spec).await, ProbeOutcome::Success);
        let head = rx.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /status/200?x=1 http/1.1"), "{head}");
        assert!(head.contains("x-custom: hello"), "{head}");
        assert!(head.contains("user-agent: kube-probe/1.33"), "{head}");
        assert!(head.contains("accept: application/json"), "{head}");
        assert!(!head.contains("accept: */*"), "{head}");

        // A probe-set User-Agent replaces the default.
        let spec = http_spec(
            port,
            "/status/200",
            vec![("User-Agent".into(), "mine".into())],
            super::super::Scheme::Http,
        );
        assert_eq!(execute(&spec).await, ProbeOutcome::Success);
        let head = rx.recv().await.unwrap().to_ascii_lowercase();
        assert!(
            head.contains("user-agent: mine") && !head.contains("kube-probe"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn http_timeout_and_refused() {
        let (port, _rx) = server().await;
        let mut spec = plain(port, "/hang");
        spec.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        match execute(&spec).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("timed out after 300ms"), "{m}"),
            o => panic!("hang must time out: {o:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));

        let closed = closed_port().await;
        match execute(&plain(closed, "/")).await {
            ProbeOutcome::Failure(m) => assert!(m.contains(&format!("127.0.0.1:{closed}")), "{m}"),
            o => panic!("closed port must fail: {o:?}"),
        }
    }

    /// A port with nothing listening (bound, then released).
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        port
    }

    /// An HTTPS server with a self-signed certificate (rustls, already a dependency), on a
    /// std thread; answers every request with `code` and reports the request head.
    fn tls_server(code: u16) -> (u16, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { return };
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = tls.write_all(resp.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn https_without_certificate_verification() {
        let (port, rx) = tls_server(200);
        let spec = http_spec(
            port,
            "/livez",
            vec![("X-Tls".into(), "1".into())],
            super::super::Scheme::Https,
        );
        assert_eq!(execute(&spec).await, ProbeOutcome::Success);
        let head = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            head.starts_with("get /livez http/1.1") && head.contains("x-tls: 1"),
            "{head}"
        );

        let (port, _rx) = tls_server(503);
        let spec = http_spec(port, "/livez", vec![], super::super::Scheme::Https);
        match execute(&spec).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("statuscode: 503"), "{m}"),
            o => panic!("503 must fail: {o:?}"),
        }
    }

    #[tokio::test]
    async fn tcp_open_and_closed() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let tcp = |port| ProbeSpec {
            action: ProbeAction::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            ..plain(port, "/")
        };
        assert_eq!(execute(&tcp(port)).await, ProbeOutcome::Success);
        drop(l);
        match execute(&tcp(port)).await {
            ProbeOutcome::Failure(m) => {
                assert!(m.contains(&format!("dial tcp 127.0.0.1:{port}")), "{m}")
            }
            o => panic!("closed port must fail: {o:?}"),
        }
    }

    fn exec_spec(cmd: &[&str], timeout_ms: u64) -> ProbeSpec {
        ProbeSpec {
            action: ProbeAction::Exec {
                command: cmd.iter().map(|s| s.to_string()).collect(),
            },
            timeout: Duration::from_millis(timeout_ms),
            ..plain(1, "/")
        }
    }

    #[tokio::test]
    async fn exec_true_false_output_and_missing() {
        assert_eq!(
            execute(&exec_spec(&["true"], 5000)).await,
            ProbeOutcome::Success
        );
        match execute(&exec_spec(&["false"], 5000)).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("exit code 1"), "{m}"),
            o => panic!("false must fail: {o:?}"),
        }
        match execute(&exec_spec(
            &["sh", "-c", "echo not healthy >&2; exit 3"],
            5000,
        ))
        .await
        {
            ProbeOutcome::Failure(m) => assert!(
                m.contains("exit code 3") && m.contains("not healthy"),
                "{m}"
            ),
            o => panic!("exit 3 must fail: {o:?}"),
        }
        match execute(&exec_spec(&["/nonexistent/probe-binary"], 5000)).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("/nonexistent/probe-binary"), "{m}"),
            o => panic!("missing binary must fail: {o:?}"),
        }
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell's child (sleep) must die with it: report its pid, then wait on it.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        match execute(&exec_spec(&["sh", "-c", &script], 400)).await {
            ProbeOutcome::Failure(m) => assert!(m.contains("timed out after 400ms"), "{m}"),
            o => panic!("sleep must time out: {o:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was killed by the group SIGKILL (it may linger as a zombie of init
        // briefly, so check its state rather than its existence).
        let mut gone = false;
        for _ in 0..50 {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => gone = true,
                Ok(stat) => {
                    gone = stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                }
            }
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "sleep {pid} survived the probe timeout");
    }
}
