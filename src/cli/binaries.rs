//! `plinth binaries pull|list|prune`.

use clap::{Args, Subcommand};
use plinth::binaries::{self, Artifact, Cache, Resolved, Settings};
use plinth::config::ClusterSpec;
use plinth::fs::HostRoot;

use super::progress::{human_bytes, DownloadBars};
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
        println!("{}", r.describe(prefix, root, &cache));
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
