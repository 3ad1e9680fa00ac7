//! Operating the node's running agent from other commands (`init`, `certs renew`, `reset`):
//! find it, nudge it, stop it and its pods — always by pid *and* process start time, never
//! signalling a process plinth did not start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent::state::StateStore;
use crate::fs::HostRoot;
use crate::procfs;
use crate::runtime::process::{ProcessRuntime, ProcessRuntimeConfig};
use crate::runtime::{Runtime, StopSignal};

/// Errors from agent control.
#[derive(Debug, thiserror::Error)]
pub enum AgentCtlError {
    /// The runtime could not be set up to stop containers.
    #[error("stopping containers")]
    Runtime(#[from] crate::runtime::RuntimeError),
}

/// The processes of a running node.
#[derive(Debug, Clone, Default)]
pub struct NodePids {
    /// The agent's pid, if one runs for this root.
    pub agent: Option<i32>,
    /// Live container pids by pod name as written in the manifest (without `-<node>`),
    /// and by full pod name.
    pub containers: BTreeMap<String, Vec<i32>>,
}

/// The agent's pid file (host path) under `state_dir`.
pub fn pid_file(state_dir: &str) -> String {
    crate::fs::join_host(state_dir, "agent.pid")
}

/// True when `pid` is a `plinth agent` serving this root.
fn is_our_agent(pid: i32, root: &HostRoot) -> bool {
    let args = procfs::cmdline(pid);
    let is_agent = args.first().is_some_and(|a| a.ends_with("plinth"))
        && args.get(1).is_some_and(|a| a == "agent");
    if !is_agent {
        return false;
    }
    let root_arg = args
        .windows(2)
        .find(|w| w[0] == "--root")
        .map(|w| PathBuf::from(&w[1]));
    match root_arg {
        Some(r) => !root.is_real_root() && r == root.dir(),
        None => root.is_real_root(),
    }
}

/// Finds the agent for this root: its pid file first, then a scan of /proc.
pub fn find_agent(root: &HostRoot, state_dir: &str) -> Option<i32> {
    if let Ok(text) = std::fs::read_to_string(root.path(pid_file(state_dir))) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            if is_our_agent(pid, root) {
                return Some(pid);
            }
        }
    }
    let me = std::process::id() as i32;
    procfs::pids()
        .into_iter()
        .find(|&pid| pid != me && is_our_agent(pid, root))
}

/// The agent and the live container processes it recorded in its state dir.
pub fn running_pids(root: &HostRoot, state_dir: &str) -> NodePids {
    let mut out = NodePids {
        agent: find_agent(root, state_dir),
        ..Default::default()
    };
    let (pods, _) = StateStore::new(root, Path::new(state_dir)).load();
    for pod in pods {
        let short = pod
            .name
            .rsplit_once('-')
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| pod.name.clone());
        for (_, h) in pod.handles() {
            if procfs::is_alive_with(h.pid, h.start_ticks) {
                out.containers
                    .entry(pod.name.clone())
                    .or_default()
                    .push(h.pid);
                out.containers.entry(short.clone()).or_default().push(h.pid);
            }
        }
    }
    out
}

/// Asks the agent to relist now and re-check mounted files (SIGHUP). Returns what was done.
pub fn nudge(root: &HostRoot, state_dir: &str) -> Option<String> {
    let pid = find_agent(root, state_dir)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .ok()?;
    Some(format!(
        "asked the agent (pid {pid}) to re-check mounted files now"
    ))
}

/// Stops the agent (SIGTERM, it leaves pods running) and then every container it recorded
/// that is still the same process (grace period, then SIGKILL). Returns what was stopped.
pub fn stop_all(root: &HostRoot, state_dir: &str) -> Result<Vec<String>, AgentCtlError> {
    let mut stopped = Vec::new();
    if let Some(pid) = find_agent(root, state_dir) {
        let start = procfs::process_start_ticks(pid).ok();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while start.is_some_and(|s| procfs::is_alive_with(pid, s)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if start.is_some_and(|s| procfs::is_alive_with(pid, s)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        stopped.push(format!("plinth agent (pid {pid})"));
    }
    let (pods, _) = StateStore::new(root, Path::new(state_dir)).load();
    let live: Vec<_> = pods
        .iter()
        .flat_map(|p| p.handles().map(move |(c, h)| (p, c.clone(), h.clone())))
        .filter(|(_, _, h)| procfs::is_alive_with(h.pid, h.start_ticks))
        .collect();
    if live.is_empty() {
        return Ok(stopped);
    }
    let runtime = ProcessRuntime::new(ProcessRuntimeConfig::default())?;
    for (_, _, h) in &live {
        let _ = runtime.signal(h, StopSignal::Term);
    }
    let grace = live
        .iter()
        .map(|(p, _, _)| p.grace_seconds)
        .max()
        .unwrap_or(30);
    let deadline = Instant::now() + Duration::from_secs(grace);
    while live
        .iter()
        .any(|(_, _, h)| procfs::is_alive_with(h.pid, h.start_ticks))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (p, c, h) in &live {
        if procfs::is_alive_with(h.pid, h.start_ticks) {
            let _ = runtime.signal(h, StopSignal::Kill);
        }
        runtime.cleanup(h);
        stopped.push(format!("{}/{} (pid {})", p.name, c, h.pid));
    }
    Ok(stopped)
}
