//! `plinth agent`, `plinth ps`, `plinth logs`.

use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, RootArgs};

/// `plinth agent`.
#[derive(Debug, Args)]
pub struct AgentCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Static pod manifest directory (or single file).
    #[arg(long, value_name = "DIR")]
    pub pod_manifest_path: Option<PathBuf>,
    /// KubeletConfiguration file (kubelet.config.k8s.io/v1beta1).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node name (default: hostname, lowercased).
    #[arg(long)]
    pub node_name: Option<String>,
    /// State directory (host path).
    #[arg(long, default_value = "/var/lib/plinth")]
    pub state_dir: PathBuf,
    /// Pod log directory (host path).
    #[arg(long, default_value = "/var/log/pods")]
    pub log_dir: PathBuf,
    /// Directories to resolve command[0] in (colon-separated; default: $PATH).
    #[arg(long, env = "PLINTH_BIN_PATH")]
    pub bin_path: Option<String>,
    /// Image to executable table entries, `image=executable` (repeatable).
    #[arg(long = "image-command", value_name = "IMAGE=EXE")]
    pub image_commands: Vec<String>,
    /// Stop all pods when the agent exits (default: leave them running).
    #[arg(long)]
    pub stop_pods_on_exit: bool,
    /// Node address for status.podIP/hostIP and probes (default: first non-loopback address).
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<String>,
    /// Status API port (overrides healthzPort; 0 disables the status API).
    #[arg(long, value_name = "PORT")]
    pub healthz_port: Option<u16>,
    /// Status API address (overrides healthzBindAddress).
    #[arg(long, value_name = "IP")]
    pub healthz_bind_address: Option<String>,
    /// Full relist period (Go duration; overrides fileCheckFrequency).
    #[arg(long, value_name = "DURATION")]
    pub file_check_frequency: Option<String>,
    /// How long a manifest written in place must stay unchanged before it is applied (Go
    /// duration, default 1s); a manifest renamed into place is applied at once.
    #[arg(long, value_name = "DURATION")]
    pub manifest_settle_window: Option<String>,
    /// cgroup parent for containers (relative = below the agent's cgroup). Default `plinth`;
    /// with a `--root` other than `/`, `plinth-<hash of the root>`, so agents on different
    /// roots (test nodes, labs) never share a pod's cgroup.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
}

/// `plinth ps`.
#[derive(Debug, Args)]
pub struct PsCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Agent status address (default: the one plinth init configured for this root, else
    /// 127.0.0.1:10248).
    #[arg(long, value_name = "HOST:PORT")]
    pub agent: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Show all containers, including exited ones.
    #[arg(short, long)]
    pub all: bool,
}

/// `plinth logs`.
#[derive(Debug, Args)]
pub struct LogsCmd {
    #[command(flatten)]
    pub root: RootArgs,
    /// Pod name (full `<name>-<node>` or the manifest's name).
    pub pod: String,
    /// Container name (default: the pod's only/first container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Follow the log of the live container: when it restarts (or its pod's manifest changes
    /// or is rolled back), continue with the new instance's log, until interrupted (kubectl
    /// instead ends when the container ends).
    #[arg(short, long)]
    pub follow: bool,
    /// Show the log of the instance before the current one (the highest `<n>.log` below the
    /// current in the same pod version; for the first instance of a pod version, the last
    /// instance of the version before it). With --follow: printed, not followed.
    #[arg(short, long)]
    pub previous: bool,
    /// Agent status address, asked which instance is current (when it does not answer, the
    /// newest log file is taken; default: the one plinth init configured for this root, else
    /// 127.0.0.1:10248).
    #[arg(long, value_name = "ADDR")]
    pub agent: Option<String>,
    /// Pod log directory (host path; default: the one plinth init configured for this root,
    /// else /var/log/pods).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Number of lines from the end to show (default: all).
    #[arg(long)]
    pub tail: Option<usize>,
}

/// Runs the agent until SIGTERM/SIGINT.
pub fn run_agent(cmd: AgentCmd) -> anyhow::Result<i32> {
    use std::sync::Arc;

    use anyhow::Context;
    use plinth::agent::config::{AgentConfig, AgentFlags};

    let flags = AgentFlags {
        root: cmd.root.root.clone(),
        pod_manifest_path: cmd.pod_manifest_path.clone(),
        config: cmd.config.clone(),
        node_name: cmd.node_name.clone(),
        node_ip: cmd.node_ip.clone(),
        state_dir: cmd.state_dir.clone(),
        log_dir: cmd.log_dir.clone(),
        bin_path: cmd.bin_path.clone(),
        image_commands: cmd.image_commands.clone(),
        healthz_port: cmd.healthz_port,
        healthz_bind_address: cmd.healthz_bind_address.clone(),
        file_check_frequency: cmd.file_check_frequency.clone(),
        manifest_settle_window: cmd.manifest_settle_window.clone(),
        stop_pods_on_exit: cmd.stop_pods_on_exit,
    };
    let cfg = AgentConfig::resolve(&flags)?;
    let runtime = plinth::runtime::process::ProcessRuntime::new(
        plinth::runtime::process::ProcessRuntimeConfig {
            cgroup_parent: cmd
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| plinth::runtime::process::cgroups::default_parent(&cfg.root)),
            ..Default::default()
        },
    )
    .context("starting the process runtime")?;
    // Record where the pod cgroups live, so `plinth reset` (in another cgroup) finds them.
    let state_dir = cfg.root.path(&cfg.state_dir);
    plinth::fs::ensure_dir(&state_dir, 0o700)?;
    plinth::runtime::process::cgroups::CgroupRecord::add(
        &state_dir.join(plinth::runtime::process::cgroups::CGROUP_RECORD_FILE),
        runtime.cgroup_parent_dirs(),
    )
    .context("recording the cgroup parent")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        plinth::agent::run(
            cfg,
            Arc::new(runtime),
            Arc::new(plinth::agent::worker::RealProber),
            shutdown,
        )
        .await
        .map_err(anyhow::Error::from)
    })?;
    Ok(0)
}

/// The agent's status address and the pod log dir (host path) of the node on `root`: those
/// plinth init persisted for it, else the agent's defaults (`127.0.0.1:10248`,
/// `/var/log/pods`).
fn node_settings(root: &plinth::fs::HostRoot) -> (String, String) {
    let persisted = plinth::config::persisted::load(
        root,
        &plinth::config::Overrides::default(),
        &plinth::config::RealHost,
    );
    match persisted {
        Ok(Some(spec)) => (spec.plinth.agent_status_addr(), spec.plinth.log_dir.clone()),
        Ok(None) => ("127.0.0.1:10248".into(), "/var/log/pods".into()),
        Err(e) => {
            tracing::warn!("using the agent's default address and log dir: {e}");
            ("127.0.0.1:10248".into(), "/var/log/pods".into())
        }
    }
}

/// Prints the agent's containers.
pub fn run_ps(cmd: PsCmd) -> anyhow::Result<i32> {
    use anyhow::Context;
    use plinth::agent::status::{ps_rows, PodList};

    let agent = cmd
        .agent
        .clone()
        .unwrap_or_else(|| node_settings(&cmd.root.host_root()).0);
    let url = format!("http://{agent}/pods");
    let body: serde_json::Value = fetch_pods(&agent, std::time::Duration::from_secs(10))
        .with_context(|| {
            format!("reading the agent status at {url} (is `plinth agent` running?)")
        })?;
    if cmd.output != OutputFormat::Table {
        super::print_structured(cmd.output, &body)?;
        return Ok(0);
    }
    let list: PodList =
        serde_json::from_value(body.clone()).context("the agent's /pods is not a PodList")?;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "POD",
        "CONTAINER",
        "STATE",
        "RESTARTS",
        "AGE",
        "PID",
        "READY",
    ]);
    for r in ps_rows(&list, std::time::SystemTime::now()) {
        if !cmd.all && r.state.starts_with("Exited") {
            continue;
        }
        table.add_row([
            r.pod,
            r.container,
            r.state,
            r.restarts.to_string(),
            r.age,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if r.ready { "true" } else { "false" }.to_string(),
        ]);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    if let Some(problems) = body.get("problems").and_then(|p| p.as_array()) {
        for p in problems {
            let file = p.get("file").and_then(|v| v.as_str()).unwrap_or("?");
            let line = p
                .get("line")
                .and_then(|v| v.as_u64())
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            let reason = p.get("reason").and_then(|v| v.as_str()).unwrap_or("");
            eprintln!("warning: {file}{line}: {reason}");
        }
    }
    Ok(0)
}

/// GETs `/pods` from the agent's status API at `addr` and decodes it as `T`.
fn fetch_pods<T: serde::de::DeserializeOwned>(
    addr: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<T> {
    let url = format!("http://{addr}/pods");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        reqwest::Client::builder()
            .timeout(timeout)
            .build()?
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json::<T>()
            .await
    })?)
}

/// The containers the agent at `addr` reports running, or nothing when it does not answer.
fn live_containers(addr: &str) -> Vec<plinth::agent::podlogs::LiveContainer> {
    let url = format!("http://{addr}/pods");
    let list =
        fetch_pods::<plinth::agent::status::PodList>(addr, std::time::Duration::from_secs(2));
    match list {
        Ok(l) => plinth::agent::podlogs::live_containers(&l),
        Err(e) => {
            tracing::debug!("agent status at {url}: {e}; taking the newest log file");
            Vec::new()
        }
    }
}

/// Prints a container log.
pub fn run_logs(cmd: LogsCmd) -> anyhow::Result<i32> {
    let root = cmd.root.host_root();
    let (default_agent, default_log_dir) = node_settings(&root);
    let log_dir = cmd
        .log_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_log_dir));
    let dir = root.path(&log_dir);
    let live = live_containers(cmd.agent.as_deref().unwrap_or(&default_agent));
    let path = plinth::agent::podlogs::find_container_log(
        &dir,
        &cmd.pod,
        cmd.container.as_deref(),
        cmd.previous,
        &live,
    )?;
    let tail = plinth::logs::tail(&path, cmd.tail.unwrap_or(usize::MAX))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for l in &tail.lines {
            writeln!(out, "{}", l.text)?;
        }
        out.flush()?;
    }
    if cmd.follow && !cmd.previous {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut seen = plinth::agent::podlogs::instance_files(&path);
        let next = move |cur: &std::path::Path| {
            let n = plinth::agent::podlogs::next_instance(cur, &mut seen)?;
            eprintln!(
                "plinth logs: {} ended; following the next instance ({})",
                cur.display(),
                n.display()
            );
            Some(n)
        };
        rt.block_on(plinth::logs::follow_instances(
            &path,
            tail.end_offset,
            tokio::io::stdout(),
            next,
        ))?;
    }
    Ok(0)
}
