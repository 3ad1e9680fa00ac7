//! `plinth config print init-defaults` and `plinth config validate`.

use std::io::Write;

use clap::Subcommand;
use plinth::config::{self, ClusterSpec, ConfigError, Etcd, KubeVersionSource, RealHost};

use super::ConfigArgs;

/// `plinth config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print configuration.
    #[command(subcommand)]
    Print(PrintCmd),
    /// Validate a config file (with the same flags as init); writes nothing.
    Validate {
        #[command(flatten)]
        config: Box<ConfigArgs>,
    },
}

/// `plinth config print ...`.
#[derive(Debug, Subcommand)]
pub enum PrintCmd {
    /// Print the default InitConfiguration + ClusterConfiguration (+ PlinthConfiguration).
    InitDefaults,
}

/// Runs `plinth config ...`.
pub fn run(cmd: ConfigCmd) -> anyhow::Result<i32> {
    match cmd {
        ConfigCmd::Print(PrintCmd::InitDefaults) => {
            let mut out = std::io::stdout().lock();
            out.write_all(config::init_defaults_yaml().as_bytes())?;
            out.flush()?;
            Ok(0)
        }
        ConfigCmd::Validate { config } => validate(&config),
    }
}

/// `plinth config validate`: load + validate, print a summary or every error.
fn validate(args: &ConfigArgs) -> anyhow::Result<i32> {
    let name = args
        .config
        .as_ref()
        .map_or_else(|| "(defaults)".to_string(), |p| p.display().to_string());
    match config::load(args.config.as_deref(), &args.overrides(), &RealHost) {
        Ok(mut spec) => {
            // As init does: an unset kubernetesVersion is the kube-apiserver binary's.
            plinth::init::default_kubernetes_version(&mut spec);
            let mut out = std::io::stdout().lock();
            writeln!(out, "config {name} is valid")?;
            write_summary(&mut out, &spec)?;
            out.flush()?;
            Ok(0)
        }
        Err(ConfigError::Invalid { errors, .. }) => {
            // stderr write errors must not turn exit 1 into main's quiet BrokenPipe exit 0.
            let n = errors.len();
            let noun = if n == 1 { "problem" } else { "problems" };
            eprintln!("config {name} is invalid ({n} {noun}):");
            for e in &errors {
                eprintln!("{e}");
            }
            Ok(1)
        }
        Err(other) => {
            eprintln!("error: {other}");
            Ok(1)
        }
    }
}

/// The version and, unless the config set it, where it came from.
fn kubernetes_version(spec: &ClusterSpec) -> String {
    let v = &spec.kubernetes_version;
    match &spec.kubernetes_version_source {
        KubeVersionSource::Config => v.to_string(),
        KubeVersionSource::Binary(bin) => format!("{v} (from `{} --version`)", bin.display()),
        KubeVersionSource::Default => {
            format!("{v} (plinth's default: no kube-apiserver binary found to take it from)")
        }
    }
}

/// The short summary `config validate` prints for a valid config.
fn write_summary(out: &mut impl Write, spec: &ClusterSpec) -> std::io::Result<()> {
    let etcd = match &spec.etcd {
        Etcd::Local(l) => format!("local (data dir {})", l.data_dir),
        Etcd::External(e) => format!("external ({})", e.endpoints.join(", ")),
    };
    let rows = [
        ("node", spec.node_name.clone()),
        (
            "advertise address",
            format!("{} (bind port {})", spec.advertise_address, spec.bind_port),
        ),
        ("control-plane endpoint", spec.cluster_endpoint().url()),
        ("kubernetes version", kubernetes_version(spec)),
        (
            "security profile",
            config::security_profile_name(spec.plinth.security_profile).to_string(),
        ),
        ("etcd", etcd),
        (
            "key algorithm",
            spec.key_algorithm.kubeadm_name().to_string(),
        ),
    ];
    for (k, v) in rows {
        writeln!(out, "  {:<24}{v}", format!("{k}:"))?;
    }
    Ok(())
}
