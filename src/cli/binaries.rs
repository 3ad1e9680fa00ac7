//! `plinth binaries pull|list|prune`, and the download progress `plinth init` shows.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plinth::binaries::{self, Artifact, Cache, Observer, Resolved, Settings, Source};
use plinth::config::ClusterSpec;
use plinth::fs::HostRoot;

use super::{ConfigArgs, OutputFormat, RootArgs};

/// `plinth binaries ...`.
#[derive(Debug, Subcommand)]
pub enum BinariesCmd {
    /// Download, verify and cache the binaries of the configured Kubernetes version
    /// (kube-apiserver, kube-controller-manager, kube-scheduler, etcd + etcdctl, kubectl)
    /// that binPath/$PATH do not already hold in that version.
    Pull(PullCmd),
    /// List the cached binaries.
    List(ListCmd),
    /// Remove cached versions not in use (neither configured nor named by a manifest).
    Prune(PruneCmd),
}

/// `plinth binaries pull`.
#[derive(Debug, Args)]
pub struct PullCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Download nothing: fail listing what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Say what would be downloaded; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave kubectl out (only what the control plane runs).
    #[arg(long)]
    pub no_kubectl: bool,
}

/// `plinth binaries list`.
#[derive(Debug, Args)]
pub struct ListCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `plinth binaries prune`.
#[derive(Debug, Args)]
pub struct PruneCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `plinth binaries ...`.
pub fn run(cmd: BinariesCmd) -> anyhow::Result<i32> {
    match cmd {
        BinariesCmd::Pull(c) => pull(c),
        BinariesCmd::List(c) => list(c),
        BinariesCmd::Prune(c) => prune(c),
    }
}

/// The configuration: `--config`/flags when given, else the one `plinth init` persisted, else
/// the defaults (with the version of a kube-apiserver on the bin path, as init takes it).
fn spec_for(config: &ConfigArgs, root: &HostRoot) -> anyhow::Result<ClusterSpec> {
    let explicit = config.config.is_some() || config.kubernetes_version.is_some();
    if !explicit {
        if let Ok(Some(spec)) =
            plinth::config::persisted::load(root, &Default::default(), &plinth::config::RealHost)
        {
            return Ok(super::init::finish_spec(spec));
        }
    }
    super::init::load_spec(config)
}

fn pull(cmd: PullCmd) -> anyhow::Result<i32> {
    let root = cmd.root.host_root();
    let spec = spec_for(&cmd.config, &root)?;
    let mut artifacts = binaries::control_plane_artifacts(&spec);
    if !cmd.no_kubectl {
        artifacts.push(binaries::kubectl_artifact(&spec));
    }
    provide(
        &spec,
        &root,
        &artifacts,
        cmd.offline,
        cmd.dry_run,
        "[binaries]",
    )?;
    Ok(0)
}

fn provide(
    spec: &ClusterSpec,
    root: &HostRoot,
    artifacts: &[Artifact],
    offline: bool,
    dry_run: bool,
    prefix: &str,
) -> anyhow::Result<Vec<Resolved>> {
    let cache = Cache::new(root, &spec.plinth.state_dir);
    let settings = Settings::for_spec(spec, root, offline)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let obs = DownloadBars::new(prefix);
    let resolved = rt
        .block_on(binaries::ensure(
            artifacts,
            &spec.plinth.bin_path,
            &cache,
            &settings,
            dry_run,
            &obs,
        ))
        .map_err(anyhow::Error::new)?;
    for r in &resolved {
        let a = &r.artifact;
        let paths = r
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match r.source {
            Source::BinPath => println!("{prefix} {} {}: {paths}", a.component, a.version),
            Source::Cache => println!("{prefix} {} {}: cached {paths}", a.component, a.version),
            Source::Downloaded => println!(
                "{prefix} {} {}: downloaded from {}, sha256 verified, cached {paths}",
                a.component,
                a.version,
                r.urls.join(", ")
            ),
            Source::WouldDownload => println!(
                "[dry-run] would download {} {} from {} into {}",
                a.component,
                a.version,
                r.urls.join(", "),
                root.path(cache.host_version_dir(&a.component, &a.version))
                    .display()
            ),
        }
    }
    Ok(resolved)
}

/// One row of `plinth binaries list`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    component: String,
    version: String,
    names: Vec<String>,
    bytes: u64,
    path: String,
    in_use: bool,
}

fn list(cmd: ListCmd) -> anyhow::Result<i32> {
    let root = cmd.root.host_root();
    let spec = spec_for(&cmd.config, &root)?;
    let cache = Cache::new(&root, &spec.plinth.state_dir);
    let used = binaries::in_use(&spec, &root);
    let rows: Vec<Row> = cache
        .entries()
        .into_iter()
        .map(|e| Row {
            in_use: used.contains(&(e.component.clone(), e.version.clone())),
            component: e.component,
            version: e.version,
            names: e.names,
            bytes: e.bytes,
            path: e.path,
        })
        .collect();
    if cmd.output != OutputFormat::Table {
        super::print_structured(cmd.output, &rows)?;
        return Ok(0);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["COMPONENT", "VERSION", "BINARIES", "SIZE", "IN USE", "PATH"]);
    for r in &rows {
        table.add_row([
            r.component.clone(),
            r.version.clone(),
            r.names.join(","),
            human_bytes(r.bytes),
            if r.in_use { "yes" } else { "no" }.to_string(),
            r.path.clone(),
        ]);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(
            out,
            "no cached binaries in {}",
            root.path(cache.host_dir()).display()
        )?;
    } else {
        writeln!(out, "{table}")?;
    }
    Ok(0)
}

fn prune(cmd: PruneCmd) -> anyhow::Result<i32> {
    let root = cmd.root.host_root();
    let spec = spec_for(&cmd.config, &root)?;
    let cache = Cache::new(&root, &spec.plinth.state_dir);
    let used = binaries::in_use(&spec, &root);
    let removed = binaries::prune(&cache, &used, cmd.dry_run)?;
    let verb = if cmd.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut total = 0;
    for e in &removed {
        total += e.bytes;
        println!(
            "[binaries] {verb} {} {} ({}, {})",
            e.component,
            e.version,
            human_bytes(e.bytes),
            root.path(&e.path).display()
        );
    }
    println!(
        "[binaries] {verb} {} cached version(s), {}; kept what kubernetesVersion {} and the manifests in {} use",
        removed.len(),
        human_bytes(total),
        spec.kubernetes_version,
        spec.plinth.manifests_dir
    );
    Ok(0)
}

/// `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One transfer in flight: its bar (on a terminal), start, bytes so far.
type Transfer = (Option<ProgressBar>, Instant, u64);

/// Download progress: an indicatif bar per file (bytes, rate, ETA) on a terminal; one line
/// at the start and one at the end of each download otherwise.
pub struct DownloadBars {
    multi: Option<MultiProgress>,
    state: Mutex<HashMap<String, Transfer>>,
    prefix: String,
}

impl DownloadBars {
    /// Bars on a terminal, plain lines starting with `prefix` otherwise.
    pub fn new(prefix: &str) -> Self {
        DownloadBars {
            multi: std::io::stderr().is_terminal().then(MultiProgress::new),
            state: Mutex::new(HashMap::new()),
            prefix: prefix.into(),
        }
    }
}

fn short(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl Observer for DownloadBars {
    fn started(&self, url: &str, total: Option<u64>, offset: u64) {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            });
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:<28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(short(url).to_string());
            b.set_position(offset);
            b
        });
        if bar.is_none() {
            let size = total
                .map(human_bytes)
                .unwrap_or_else(|| "size unknown".into());
            let resume = if offset > 0 {
                format!(", resuming at {}", human_bytes(offset))
            } else {
                String::new()
            };
            eprintln!("{} downloading {url} ({size}{resume})", self.prefix);
        }
        if let Ok(mut s) = self.state.lock() {
            s.insert(url.into(), (bar, Instant::now(), 0));
        }
    }

    fn progressed(&self, url: &str, bytes: u64) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((bar, _, n)) = s.get_mut(url) {
                *n += bytes;
                if let Some(b) = bar {
                    b.inc(bytes);
                }
            }
        }
    }

    fn finished(&self, url: &str, ok: bool) {
        let Some((bar, start, n)) = self.state.lock().ok().and_then(|mut s| s.remove(url)) else {
            return;
        };
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        match bar {
            Some(b) if ok => b.finish(),
            Some(b) => b.abandon(),
            None if ok => eprintln!(
                "{} downloaded {} in {secs:.1}s ({}/s)",
                self.prefix,
                human_bytes(n),
                human_bytes((n as f64 / secs) as u64)
            ),
            None => {}
        }
    }

    fn retrying(&self, _url: &str, error: &str, delay: Duration) {
        let line = format!(
            "{} {error}; retrying in {:.1}s",
            self.prefix,
            delay.as_secs_f64()
        );
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
