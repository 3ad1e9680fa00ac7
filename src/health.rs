//! Control-plane health, shared by `init` (wait), `verify` and `manifest regenerate`.
//!
//! Each component's health endpoint is read from its own static pod manifest (the readiness
//! probe, else startup, else liveness), so what plinth waits for is exactly what the
//! component serves. Endpoints are polled TLS-insecure, like kubeadm; the agent's `/pods`
//! status is read alongside, so a failure can say *why* (binary missing, crash-looping, ...).
//!
//! **Failing fast.** Some failures no retry will cure; [`wait`] stops at the first one instead
//! of running into its timeout ([`fatal`] is the rule, [`Stage::Failed`] the result), with the
//! same per-component report. A component has failed for good when either
//! 1. *it cannot be started*: the agent's typed start failure (`plinth.io/failures`, see
//!    [`crate::agent::failures`]) is at step `execve` or `resolve` with errno ENOENT, EACCES or
//!    ENOEXEC ([`PERMANENT_START_ERRNOS`]) on [`FATAL_AFTER`] consecutive attempts (the agent
//!    retries a failed start after 1 s, so this costs about a second and rides out a binary
//!    being replaced in place); or
//! 2. *it rejects its own command line*: [`FATAL_AFTER`] consecutive quick exits (each within
//!    10 s of its start, never Ready, the same non-zero exit code: the agent's `quickExits`
//!    streak; the agent restarts a first crash at once, so this takes well under a second)
//!    **and** the last lines of the latest instance's log hold the binary's own flag-parsing
//!    error ([`usage_error`]: pflag/cobra `unknown flag`, `invalid argument "…" for "--…"
//!    flag`, …; Go's flag package `flag provided but not defined`, `invalid value "…" for flag
//!    -…`). Quick exits for other reasons (etcd refusing its data dir, a component that cannot
//!    reach etcd) are not matched: they may be fixed while init waits, and the timeout stands.
//!
//! `manifest regenerate` applies the same rule to the new pod ([`fatal_after`] with one quick
//! exit instead of [`FATAL_AFTER`]): it has the previous manifest to roll back to, and the old
//! instance is already stopped, so it rolls back on the first crash with a flag error.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Probe};

/// The agent's `/pods` body.
pub type PodList = k8s_openapi::List<Pod>;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::agent::failures::{ContainerFailures, ANN_FAILURES};
use crate::fs::HostRoot;

/// Start errors (errno names) that no retry cures: the executable (or its ELF interpreter)
/// does not exist, the container's user may not execute it, it is not an executable format.
pub const PERMANENT_START_ERRNOS: [&str; 3] = ["ENOENT", "EACCES", "ENOEXEC"];

/// Consecutive failed start attempts, or quick exits, after which [`fatal`] gives up.
pub const FATAL_AFTER: u32 = 2;

/// Log lines scanned for a command-line error.
pub const USAGE_ERROR_LINES: usize = 50;

/// The line of a log tail where a Go binary rejects its own command line, if any (the last
/// such line): pflag/cobra (`Error: unknown flag: --x`, `Error: invalid argument "v" for
/// "--f" flag: …`, `unknown shorthand flag`, `flag needs an argument`, `bad flag syntax`,
/// `"x" does not take any arguments`) and Go's flag package (etcd: `flag provided but not
/// defined: -x`, `invalid value "v" for flag -f: …`, `invalid boolean value "v" for -f: …`).
pub fn usage_error(lines: &[String]) -> Option<&String> {
    const PLAIN: [&str; 6] = [
        "unknown flag: -",
        "unknown shorthand flag: ",
        "flag needs an argument: ",
        "bad flag syntax: ",
        "flag provided but not defined: -",
        "does not take any arguments, got ",
    ];
    lines.iter().rev().find(|l| {
        PLAIN.iter().any(|p| l.contains(p))
            || (l.contains("invalid argument \"") && l.contains(" flag: "))
            || (l.contains("invalid value \"") && l.contains("\" for flag -"))
            || (l.contains("invalid boolean value \"") && l.contains("\" for -"))
    })
}

/// Whether the component in `view` has failed in a way no retry will cure (see the module
/// doc); `log_tail` gives the last lines of its latest instance's log (read only when needed).
pub fn fatal(view: &AgentView, log_tail: impl FnOnce() -> Vec<String>) -> Option<String> {
    fatal_after(view, FATAL_AFTER, log_tail)
}

/// [`fatal`] with the number of quick exits (each with the binary's own flag error) that
/// make it fatal. `manifest regenerate` uses 1: it has a known-good manifest to go back to,
/// the old instance is already gone, and a flag error is the same on every start.
pub fn fatal_after(
    view: &AgentView,
    quick_exits: u32,
    log_tail: impl FnOnce() -> Vec<String>,
) -> Option<String> {
    let f = view.failures.as_ref()?;
    if let Some(s) = &f.start {
        let permanent = s
            .errno
            .as_deref()
            .is_some_and(|e| PERMANENT_START_ERRNOS.contains(&e));
        if (s.step == "execve" || s.step == "resolve") && permanent && s.attempts >= FATAL_AFTER {
            return Some(format!(
                "cannot be started ({}, {} attempts): {}",
                s.errno.as_deref().unwrap_or_default(),
                s.attempts,
                s.message
            ));
        }
    }
    let streak = f.quick_exits.as_ref()?;
    if streak.count < quick_exits.max(1) {
        return None;
    }
    let lines = log_tail();
    let line = usage_error(&lines)?;
    Some(format!(
        "rejects its command line ({} quick exit{} with code {}): {}",
        streak.count,
        if streak.count == 1 { "" } else { "s" },
        streak.exit_code,
        line.trim()
    ))
}

/// Errors from health checking.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A manifest has no usable HTTP probe to check.
    #[error("manifest {0}: no httpGet readiness, startup or liveness probe to check health with")]
    NoProbe(String),
    /// The HTTP client could not be built.
    #[error("building HTTP client: {0}")]
    Client(String),
    /// The agent's status API could not be read.
    #[error("agent status {url}: {reason}")]
    Agent {
        /// The URL tried.
        url: String,
        /// Why it failed.
        reason: String,
    },
}

/// One component to check: its manifest's pod name and the URL of its health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthTarget {
    /// Component name (the manifest's `component` label, else the pod name).
    pub component: String,
    /// The pod name as written in the manifest (the agent adds `-<node>`).
    pub pod_name: String,
    /// The health URL (`https://127.0.0.1:10257/healthz`).
    pub url: String,
}

/// Derives the health target of a static pod from its probes.
pub fn target_for(pod: &Pod, node_ip: IpAddr) -> Result<HealthTarget, HealthError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let component = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("component").cloned())
        .unwrap_or_else(|| name.clone());
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .ok_or_else(|| HealthError::NoProbe(name.clone()))?;
    let probe = [
        &container.readiness_probe,
        &container.startup_probe,
        &container.liveness_probe,
    ]
    .into_iter()
    .flatten()
    .find(|p| p.http_get.is_some())
    .ok_or_else(|| HealthError::NoProbe(name.clone()))?;
    let url =
        probe_url(probe, container, node_ip).ok_or_else(|| HealthError::NoProbe(name.clone()))?;
    Ok(HealthTarget {
        component,
        pod_name: name,
        url,
    })
}

fn probe_url(
    probe: &Probe,
    container: &k8s_openapi::api::core::v1::Container,
    node_ip: IpAddr,
) -> Option<String> {
    let get = probe.http_get.as_ref()?;
    let port = match &get.port {
        IntOrString::Int(p) => *p as u16,
        IntOrString::String(named) => container
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.name.as_deref() == Some(named.as_str()))
            .map(|p| p.container_port as u16)?,
    };
    let host = get.host.clone().unwrap_or_else(|| node_ip.to_string());
    let host = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host
    };
    let scheme = get.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let path = get.path.clone().unwrap_or_else(|| "/".into());
    Some(format!("{scheme}://{host}:{port}{path}"))
}

/// An HTTP client that skips certificate verification (health endpoints, like kubeadm).
pub fn insecure_client(timeout: Duration) -> Result<reqwest::Client, HealthError> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| HealthError::Client(e.to_string()))
}

/// Checks one endpoint: `Ok` for 2xx/3xx, else the reason.
pub async fn check(client: &reqwest::Client, url: &str) -> Result<(), String> {
    match client.get(url).send().await {
        Ok(resp) if resp.status().is_success() || resp.status().is_redirection() => Ok(()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            Err(format!("HTTP {status}: {}", body.trim()))
        }
        Err(e) => Err(crate::error::chain(&e)),
    }
}

/// Reads the agent's `/pods` status.
pub async fn agent_pods(
    client: &reqwest::Client,
    agent_addr: &str,
) -> Result<PodList, HealthError> {
    let url = format!("http://{agent_addr}/pods");
    let err = |reason: String| HealthError::Agent {
        url: url.clone(),
        reason,
    };
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| err(crate::error::chain(&e)))?;
    if !resp.status().is_success() {
        return Err(err(format!("HTTP {}", resp.status())));
    }
    resp.json::<PodList>().await.map_err(|e| err(e.to_string()))
}

/// Where a component is on its way to healthy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Stage {
    /// The agent is not answering yet.
    WaitingForAgent,
    /// The agent has not created the pod yet.
    Pending,
    /// The executable is not on the agent's bin path.
    WaitingForBinary(String),
    /// The container is being (re)started or backing off.
    Starting(String),
    /// The process runs; its health endpoint does not answer yet.
    Running(String),
    /// The endpoint answers but not healthy yet.
    Probing(String),
    /// Failed in a way no retry will cure ([`fatal`]): the wait stops.
    Failed(String),
    /// Healthy.
    Healthy,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::WaitingForAgent => write!(f, "waiting for agent"),
            Stage::Pending => write!(f, "pending"),
            Stage::WaitingForBinary(m) => write!(f, "waiting for binary: {m}"),
            Stage::Starting(m) => write!(f, "starting: {m}"),
            Stage::Running(m) => write!(f, "running: {m}"),
            Stage::Probing(m) => write!(f, "probing: {m}"),
            Stage::Failed(m) => write!(f, "failed: {m}"),
            Stage::Healthy => write!(f, "healthy"),
        }
    }
}

/// What the agent says about one component's pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AgentView {
    /// Full pod name in the agent.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Container name.
    pub container: String,
    /// State summary (`running`, `waiting (CrashLoopBackOff): ...`, `terminated (Error, 1)`).
    pub state: String,
    /// Restart count.
    pub restarts: i32,
    /// Exit code of the last terminated instance.
    pub last_exit_code: Option<i32>,
    /// Whether the container is running now.
    pub running: bool,
    /// Whether the container is Ready.
    pub ready: bool,
    /// Waiting reason/message if waiting.
    pub waiting: Option<String>,
    /// The agent's typed failure facts for the container (`plinth.io/failures`).
    pub failures: Option<ContainerFailures>,
}

/// Finds the agent's view of a manifest's pod (`<pod_name>-<node>`).
pub fn agent_view(pods: &PodList, pod_name: &str, node_name: &str) -> Option<AgentView> {
    let full = format!("{pod_name}-{node_name}");
    let pod = pods
        .items
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(full.as_str()))?;
    let status = pod.status.as_ref();
    let cs: Option<&ContainerStatus> = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|v| v.first());
    let mut view = AgentView {
        pod: full,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(cs) = cs {
        view.container = cs.name.clone();
        view.failures = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_FAILURES))
            .and_then(|j| {
                serde_json::from_str::<BTreeMap<String, ContainerFailures>>(j)
                    .ok()?
                    .remove(&cs.name)
            });
        view.restarts = cs.restart_count;
        view.ready = cs.ready;
        if let Some(state) = &cs.state {
            if state.running.is_some() {
                view.running = true;
                view.state = "running".into();
            } else if let Some(w) = &state.waiting {
                let msg = format!(
                    "{}{}",
                    w.reason.clone().unwrap_or_default(),
                    w.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                view.state = format!("waiting ({msg})");
                view.waiting = Some(msg);
            } else if let Some(t) = &state.terminated {
                view.state = format!(
                    "terminated ({}, exit {})",
                    t.reason.clone().unwrap_or_default(),
                    t.exit_code
                );
                view.last_exit_code = Some(t.exit_code);
            }
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            view.last_exit_code.get_or_insert(t.exit_code);
        }
    } else if let Some(c) = pod.spec.as_ref().and_then(|s| s.containers.first()) {
        view.container = c.name.clone();
        view.state = status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
    }
    Some(view)
}

/// Decides the stage of a component from the agent view and the endpoint check.
pub fn stage_of(view: Option<&AgentView>, agent_up: bool, endpoint: &Result<(), String>) -> Stage {
    if endpoint.is_ok() {
        return Stage::Healthy;
    }
    if !agent_up {
        return Stage::WaitingForAgent;
    }
    let Some(v) = view else { return Stage::Pending };
    let err = endpoint.as_ref().err().cloned().unwrap_or_default();
    if let Some(w) = &v.waiting {
        let lw = w.to_ascii_lowercase();
        if lw.contains("not found") || lw.contains("executablenotfound") {
            return Stage::WaitingForBinary(w.clone());
        }
        return Stage::Starting(w.clone());
    }
    if v.running {
        if err.starts_with("HTTP ") {
            Stage::Probing(err)
        } else {
            Stage::Running(short(&err))
        }
    } else {
        Stage::Starting(v.state.clone())
    }
}

/// A healthy endpoint counts only when the agent runs the pod (with `require_agent`) and, when
/// `expected_uid` is given, runs the pod of the current manifest rather than its predecessor.
pub fn settle(
    stage: Stage,
    view: Option<&AgentView>,
    require_agent: bool,
    expected_uid: Option<&str>,
) -> Stage {
    if stage != Stage::Healthy {
        return stage;
    }
    if require_agent && !view.is_some_and(|v| v.running) {
        return Stage::Probing(
            "healthy endpoint, but the agent does not report the pod running".into(),
        );
    }
    match (view, expected_uid) {
        (Some(v), Some(want)) if v.uid != want => Stage::Starting(format!(
            "the agent still runs the previous pod (uid {}), not the current manifest's ({want})",
            v.uid
        )),
        _ => stage,
    }
}

fn short(s: &str) -> String {
    // Connection errors are long chains; the last part is the informative one.
    s.rsplit(": ").next().unwrap_or(s).to_string()
}

/// The state of one component during a wait.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentProgress {
    /// The target checked.
    pub target: HealthTarget,
    /// The current stage.
    pub stage: Stage,
    /// The agent's view, when available.
    pub agent: Option<AgentView>,
    /// Time since the wait started when it became healthy.
    #[serde(skip)]
    pub healthy_after: Option<Duration>,
}

/// Options for [`wait`].
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Agent status address (`127.0.0.1:10248`).
    pub agent_addr: String,
    /// Node name (the agent names pods `<name>-<node>`).
    pub node_name: String,
    /// Give up after this long.
    pub timeout: Duration,
    /// Poll interval.
    pub interval: Duration,
    /// Consider a component healthy only when the agent also reports it Ready (set false
    /// when no agent runs).
    pub require_agent: bool,
    /// Manifest pod name → the UID the agent gives the pod of the manifest on disk
    /// (`agent::pod::identify`). A healthy endpoint still served by the previous pod (the
    /// agent has not replaced it yet after a manifest change) does not count. Empty: not
    /// checked.
    pub expected_uids: BTreeMap<String, String>,
    /// Where the components' logs are (host root, pod log dir), for [`fatal`]'s
    /// command-line rule; `None`: that rule is not applied.
    pub logs: Option<(HostRoot, String)>,
}

/// A wait that did not end healthy: the per-component report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaitReport {
    /// Every component's last state.
    pub components: Vec<ComponentProgress>,
    /// Whether all became healthy.
    pub healthy: bool,
    /// How long the wait took.
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Polls every target (in parallel) and the agent until all are healthy or the timeout
/// passes. `on_update` is called after every round with the current states.
pub async fn wait(
    targets: &[HealthTarget],
    opts: &WaitOptions,
    mut on_update: impl FnMut(&[ComponentProgress], Duration),
) -> Result<WaitReport, HealthError> {
    let client = insecure_client(Duration::from_secs(2))?;
    let start = Instant::now();
    let mut progress: Vec<ComponentProgress> = targets
        .iter()
        .map(|t| ComponentProgress {
            target: t.clone(),
            stage: Stage::WaitingForAgent,
            agent: None,
            healthy_after: None,
        })
        .collect();
    loop {
        let (pods, checks) = tokio::join!(
            agent_pods(&client, &opts.agent_addr),
            futures_join_all(targets.iter().map(|t| check(&client, &t.url)))
        );
        let agent_up = pods.is_ok();
        for (p, result) in progress.iter_mut().zip(checks) {
            let view = pods
                .as_ref()
                .ok()
                .and_then(|l| agent_view(l, &p.target.pod_name, &opts.node_name));
            let expected_uid = opts
                .expected_uids
                .get(&p.target.pod_name)
                .map(String::as_str);
            let mut stage = settle(
                stage_of(view.as_ref(), agent_up, &result),
                view.as_ref(),
                opts.require_agent,
                expected_uid,
            );
            if let Some(v) = view.as_ref() {
                // Only the pod of the manifest on disk: its predecessor's failures are history.
                if stage != Stage::Healthy && expected_uid.is_none_or(|u| u == v.uid) {
                    let logs = || match &opts.logs {
                        Some((root, dir)) => last_log_lines(root, dir, v, USAGE_ERROR_LINES),
                        None => Vec::new(),
                    };
                    if let Some(why) = fatal(v, logs) {
                        stage = Stage::Failed(why);
                    }
                }
            }
            if stage == Stage::Healthy && p.healthy_after.is_none() {
                p.healthy_after = Some(start.elapsed());
            }
            p.stage = stage;
            p.agent = view;
        }
        on_update(&progress, start.elapsed());
        let healthy = progress.iter().all(|p| p.stage == Stage::Healthy);
        let failed = progress.iter().any(|p| matches!(p.stage, Stage::Failed(_)));
        if healthy || failed || start.elapsed() >= opts.timeout {
            return Ok(WaitReport {
                components: progress,
                healthy,
                elapsed: start.elapsed(),
            });
        }
        tokio::time::sleep(opts.interval).await;
    }
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Pin all futures and poll them together.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// The CRI log file of a component's current (or given) instance, as opened on this machine.
pub fn component_log_path(
    root: &HostRoot,
    log_dir: &str,
    view: &AgentView,
    restart: i32,
) -> PathBuf {
    root.path(log_dir)
        .join(format!("kube-system_{}_{}", view.pod, view.uid))
        .join(&view.container)
        .join(format!("{restart}.log"))
}

/// Reads the last `n` log lines of the latest instance that has a log file.
pub fn last_log_lines(root: &HostRoot, log_dir: &str, view: &AgentView, n: usize) -> Vec<String> {
    for restart in (0..=view.restarts.max(0)).rev() {
        let path = component_log_path(root, log_dir, view, restart);
        if path.exists() {
            return tail_text(&path, n);
        }
    }
    // The namespace may not be kube-system: search the log dir for the pod's directory.
    let dir = root.path(log_dir);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(&format!("_{}_{}", view.pod, view.uid)) {
                let cdir = e.path().join(&view.container);
                if let Some(latest) = latest_log(&cdir) {
                    return tail_text(&latest, n);
                }
            }
        }
    }
    Vec::new()
}

fn latest_log(dir: &Path) -> Option<PathBuf> {
    let mut logs: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u32>().ok())
        {
            logs.insert(n, e.path());
        }
    }
    logs.into_values().next_back()
}

fn tail_text(path: &Path, n: usize) -> Vec<String> {
    match crate::logs::tail_lines(path, n) {
        Ok(lines) => lines.into_iter().map(|l| l.text).collect(),
        Err(e) => vec![format!("(could not read {}: {e})", path.display())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn target_prefers_readiness_probe_and_defaults_host() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system, labels: {component: kube-apiserver}}
spec:
  containers:
  - name: kube-apiserver
    image: x
    livenessProbe: {httpGet: {host: 10.0.0.1, path: /livez, port: 6443, scheme: HTTPS}}
    readinessProbe: {httpGet: {path: /readyz, port: 6443, scheme: HTTPS}}
"#);
        let t = target_for(&p, "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(t.url, "https://192.0.2.1:6443/readyz");
        assert_eq!(t.component, "kube-apiserver");
    }

    #[test]
    fn target_resolves_named_ports_and_brackets_v6() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: etcd}
spec:
  containers:
  - name: etcd
    image: x
    ports: [{name: metrics, containerPort: 2381}]
    startupProbe: {httpGet: {host: "::1", path: /health, port: metrics}}
"#);
        let t = target_for(&p, "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(t.url, "http://[::1]:2381/health");
    }

    #[test]
    fn missing_probe_is_an_error_naming_the_pod() {
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i}]}\n");
        let e = target_for(&p, "127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("manifest x"), "{e}");
    }

    #[test]
    fn healthy_counts_only_for_the_current_manifests_running_pod() {
        let view = AgentView {
            uid: "new".into(),
            running: true,
            ..Default::default()
        };
        assert_eq!(
            settle(Stage::Healthy, Some(&view), true, Some("new")),
            Stage::Healthy
        );
        assert_eq!(
            settle(Stage::Healthy, Some(&view), true, None),
            Stage::Healthy
        );
        let stale = settle(Stage::Healthy, Some(&view), true, Some("newer"));
        assert!(
            matches!(&stale, Stage::Starting(m) if m.contains("previous pod (uid new)")),
            "{stale}"
        );
        let stopped = AgentView {
            running: false,
            ..view.clone()
        };
        assert!(matches!(
            settle(Stage::Healthy, Some(&stopped), true, Some("new")),
            Stage::Probing(_)
        ));
        assert_eq!(
            settle(Stage::Healthy, None, false, Some("x")),
            Stage::Healthy,
            "no agent required, none seen"
        );
        let probing = Stage::Probing("HTTP 500".into());
        assert_eq!(
            settle(probing.clone(), Some(&view), true, Some("other")),
            probing
        );
    }

    #[test]
    fn stage_reflects_agent_and_endpoint() {
        let ok: Result<(), String> = Ok(());
        let refused: Result<(), String> = Err("error sending request: connection refused".into());
        assert_eq!(stage_of(None, false, &ok), Stage::Healthy);
        assert_eq!(stage_of(None, false, &refused), Stage::WaitingForAgent);
        assert_eq!(stage_of(None, true, &refused), Stage::Pending);
        let waiting = AgentView {
            waiting: Some("ExecutableNotFound: kube-apiserver not found".into()),
            ..Default::default()
        };
        assert!(matches!(
            stage_of(Some(&waiting), true, &refused),
            Stage::WaitingForBinary(_)
        ));
        let running = AgentView {
            running: true,
            ..Default::default()
        };
        assert_eq!(
            stage_of(Some(&running), true, &refused),
            Stage::Running("connection refused".into())
        );
        let probing: Result<(), String> = Err("HTTP 500: etcd not ready".into());
        assert!(matches!(
            stage_of(Some(&running), true, &probing),
            Stage::Probing(_)
        ));
    }

    fn failing(failures: ContainerFailures) -> AgentView {
        AgentView {
            failures: Some(failures),
            ..Default::default()
        }
    }

    /// Issue 8 item 3: a start error no retry cures (etcd's binary under a 0700 dir: execve
    /// EACCES as the etcd user) is fatal after two attempts, not after the 240 s timeout.
    #[test]
    fn permanent_start_errors_are_fatal_after_two_attempts() {
        let mut f = ContainerFailures::default();
        f.on_start_failed(
            "execve",
            Some(libc::EACCES),
            "execve /x/etcd: Permission denied".into(),
        );
        assert_eq!(fatal(&failing(f.clone()), Vec::new), None, "one attempt");
        f.on_start_failed(
            "execve",
            Some(libc::EACCES),
            "execve /x/etcd: Permission denied".into(),
        );
        let why = fatal(&failing(f), Vec::new).expect("fatal");
        assert!(why.contains("EACCES") && why.contains("/x/etcd"), "{why}");
        for (step, errno) in [("resolve", libc::ENOENT), ("execve", libc::ENOEXEC)] {
            let mut f = ContainerFailures::default();
            f.on_start_failed(step, Some(errno), "x".into());
            f.on_start_failed(step, Some(errno), "x".into());
            assert!(fatal(&failing(f), Vec::new).is_some(), "{step} {errno}");
        }
        // Transient or other failures keep the wait going.
        let mut f = ContainerFailures::default();
        f.on_start_failed("execve", Some(libc::ETXTBSY), "busy".into());
        f.on_start_failed("execve", Some(libc::ETXTBSY), "busy".into());
        f.on_start_failed("setup", Some(libc::EACCES), "mount".into());
        f.on_start_failed("setup", Some(libc::EACCES), "mount".into());
        assert_eq!(fatal(&failing(f), Vec::new), None);
    }

    #[test]
    fn quick_exits_are_fatal_only_with_the_binarys_own_flag_error() {
        let quick = Duration::from_millis(200);
        let mut f = ContainerFailures::default();
        f.on_exit(quick, 1, false);
        let flag_error = || {
            vec![
                "Usage:".to_string(),
                r#"Error: invalid argument "notaport" for "--secure-port" flag: strconv.ParseInt: parsing "notaport": invalid syntax"#.to_string(),
            ]
        };
        assert_eq!(fatal(&failing(f.clone()), flag_error), None, "one exit");
        f.on_exit(quick, 1, false);
        let why = fatal(&failing(f.clone()), flag_error).expect("fatal");
        assert!(
            why.contains("--secure-port") && why.contains("2 quick exits with code 1"),
            "{why}"
        );
        // The same streak with another cause (etcd refusing its data dir) is not fatal.
        let other = || vec!["cannot access data directory: permission denied".to_string()];
        assert_eq!(fatal(&failing(f), other), None);
        // regenerate's rule: the first quick exit with the flag error is enough.
        let mut f = ContainerFailures::default();
        f.on_exit(quick, 1, false);
        let flag_error = || vec!["Error: unknown flag: --no-such-flag".to_string()];
        let why = fatal_after(&failing(f.clone()), 1, flag_error).expect("fatal after 1");
        assert!(why.contains("Error: unknown flag: --no-such-flag"), "{why}");
        assert_eq!(fatal_after(&failing(f), 1, Vec::new), None, "no flag error");
    }

    #[test]
    fn usage_errors_of_pflag_and_go_flag_are_recognised() {
        for line in [
            "Error: unknown flag: --insecure-port",
            "Error: unknown shorthand flag: 'x' in -x",
            "Error: flag needs an argument: --v",
            r#"Error: invalid argument "maybe" for "--profiling" flag: strconv.ParseBool: parsing "maybe": invalid syntax"#,
            "flag provided but not defined: -no-such-flag",
            r#"invalid value "x" for flag -snapshot-count: parse error"#,
            r#"invalid boolean value "maybe" for -debug: parse error"#,
            r#"Error: "kube-scheduler" does not take any arguments, got ["x"]"#,
        ] {
            assert!(usage_error(&[line.to_string()]).is_some(), "{line}");
        }
        for line in [
            "E1123 21:03:04.123456  1234 run.go:74] \"command failed\" err=\"failed to connect to etcd\"",
            "invalid argument in request",
        ] {
            assert!(usage_error(&[line.to_string()]).is_none(), "{line}");
        }
    }
}
