//! `plinth reset`.

use std::io::{BufRead, Write};

use clap::Args;

use plinth::config::{persisted, ClusterSpec};
use plinth::fs::HostRoot;

use super::{ConfigArgs, RootArgs};

/// `plinth reset`.
#[derive(Debug, Args)]
pub struct ResetCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ResetConfigArgs,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub force: bool,
}

/// The configuration settings reset uses: where the node's files are (the config's paths,
/// the certificates dir) and the node name (its pod log dirs). init's other flags (CIDRs,
/// version, addresses, SANs) change nothing reset removes, so reset does not take them.
#[derive(Debug, Clone, Args)]
pub struct ResetConfigArgs {
    /// kubeadm config file init used (default: the configuration init persisted).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Node name init used (default: the persisted one, else the hostname, lowercased).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Certificates directory init used (host path).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
}

impl ResetConfigArgs {
    /// The full configuration arguments, the ones reset does not take unset.
    fn config_args(&self) -> ConfigArgs {
        ConfigArgs {
            config: self.config.clone(),
            node_name: self.node_name.clone(),
            cert_dir: self.cert_dir.clone(),
            ..Default::default()
        }
    }
}

/// Without `--config`, the configuration init persisted (its paths and node name, which may
/// differ from the defaults); with one, or when init persisted none, the given one.
fn reset_spec(config: &ConfigArgs, root: &HostRoot) -> anyhow::Result<ClusterSpec> {
    let host = plinth::config::RealHost;
    if config.config.is_none() {
        match persisted::load(root, &config.overrides(), &host) {
            Ok(Some(spec)) => return Ok(spec),
            Ok(None) => {}
            Err(e) => eprintln!("[reset] warning: {e}\n[reset] using the defaults' paths"),
        }
    }
    plinth::config::load(config.config.as_deref(), &config.overrides(), &host)
        .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

/// Runs `plinth reset`.
pub fn run(cmd: ResetCmd) -> anyhow::Result<i32> {
    // Reset needs the config's paths and node name, never the advertise address: do not fail
    // on a host whose default route (the address's default) is gone, e.g. a torn-down network.
    let mut config = cmd.config.config_args();
    config
        .advertise_address
        .get_or_insert_with(|| "127.0.0.1".to_string());
    let root = cmd.root.host_root();
    let spec = reset_spec(&config, &root)?;
    if !cmd.force {
        eprint!(
            "[reset] This stops the plinth agent and its pods and removes everything plinth created under {}.\n[reset] Are you sure you want to proceed? [y/N]: ",
            root.dir().display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("[reset] aborted: nothing changed");
            return Ok(1);
        }
    }
    // The etcd data dir comes from the etcd manifest actually on disk, not the config.
    let etcd_manifest = root.path(&spec.plinth.manifests_dir).join("etcd.yaml");
    let data_dir = std::fs::read_to_string(&etcd_manifest)
        .ok()
        .and_then(|t| plinth::manifests::parse_manifest(&t).ok())
        .and_then(|pod| plinth::manifests::etcd_data_dir(&pod));
    let stopped = plinth::agentctl::stop_all(&root, &spec.plinth.state_dir)?;
    for s in &stopped {
        println!("[reset] stopped {s}");
    }
    let report = plinth::reset::remove(&spec, &root, data_dir.as_deref())?;
    for r in &report.removed {
        println!("[reset] removed {r}");
    }
    for (p, why) in &report.left {
        println!("[reset] left {p}: {why}");
    }
    println!(
        "[reset] done: removed {} paths, left {}",
        report.removed.len(),
        report.left.len()
    );
    Ok(0)
}
