//! Which configuration a day-2 verb works from.
//!
//! `plinth init` persists the effective configuration it used
//! ([`plinth::config::persisted::PERSISTED_CONFIG_PATH`] under `--root`). Without `--config`
//! (or any config flag) a day-2 verb loads exactly that. With one, the explicit configuration
//! is compared with the persisted one and any difference is printed (field, old → new) before
//! anything happens; then the verb's [`Policy`] decides which one it uses. Nothing ever
//! replaces the persisted configuration except `plinth init`.

use anyhow::bail;
use plinth::config::{effective, persisted, ClusterSpec, Overrides, RealHost};
use plinth::fs::HostRoot;

use super::ConfigArgs;

/// What a verb does with an explicit configuration that differs from the persisted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Checks (verify, certs check-expiration): the persisted configuration — what the node
    /// was built from — stays authoritative; the difference is shown, not used.
    KeepPersisted,
    /// certs renew: a renewal keeps each certificate's identity (read from the certificate),
    /// and everything else (paths, CAs, validity) comes from the persisted configuration; a
    /// configuration or flags given are shown as a difference and ignored.
    KeepIdentity,
    /// Changes (manifest regenerate): apply the explicit configuration, after the
    /// difference has been printed. The persisted configuration is not changed.
    ApplyExplicit,
}

/// True when any flag that feeds the configuration was given.
fn flags_given(o: &Overrides) -> bool {
    o.advertise_address.is_some()
        || o.node_name.is_some()
        || o.kubernetes_version.is_some()
        || o.pod_network_cidr.is_some()
        || o.service_cidr.is_some()
        || !o.apiserver_cert_extra_sans.is_empty()
        || o.cert_dir.is_some()
        || o.control_plane_endpoint.is_some()
}

/// The configuration `verb` works from on `root` (see the module doc).
pub fn load(
    verb: &str,
    config: &ConfigArgs,
    root: &HostRoot,
    policy: Policy,
) -> anyhow::Result<ClusterSpec> {
    let path = persisted::persisted_path(root);
    let overrides = config.overrides();
    let explicit = config.config.is_some() || flags_given(&overrides);
    let stored = persisted::load(root, &Overrides::default(), &RealHost);
    if !explicit {
        return match stored {
            Ok(Some(spec)) => {
                tracing::info!("{verb}: using the configuration in {}", path.display());
                Ok(super::init::finish_spec(spec))
            }
            Ok(None) => bail!(
                "{verb}: no configuration: plinth init has not run on this root ({} does not \
                 exist); run `plinth init` first, or pass --config FILE",
                path.display()
            ),
            Err(e) => bail!("{verb}: {e}\n(pass --config FILE to use another configuration)"),
        };
    }
    // Flags without --config adjust the persisted configuration, as they adjust a file.
    let (given, source) = match (&config.config, &stored) {
        (Some(file), _) => (
            super::init::load_spec(config)?,
            format!("--config {}", file.display()),
        ),
        (None, Ok(Some(_))) => match persisted::load(root, &overrides, &RealHost)? {
            Some(spec) => (
                super::init::finish_spec(spec),
                "command-line flags".to_string(),
            ),
            None => (super::init::load_spec(config)?, String::new()),
        },
        (None, _) => (super::init::load_spec(config)?, String::new()),
    };
    let persisted_spec = match stored {
        Ok(Some(spec)) => super::init::finish_spec(spec),
        Ok(None) => return Ok(given),
        Err(e) => {
            eprintln!("[config] warning: {e}\n[config] {verb} uses the configuration given");
            return Ok(given);
        }
    };
    let changes = effective::diff(&persisted_spec, &given);
    if changes.is_empty() {
        return Ok(given);
    }
    eprintln!(
        "[config] the configuration given ({source}) differs from the one plinth init \
         persisted in {} ({} {}):",
        path.display(),
        changes.len(),
        if changes.len() == 1 {
            "field"
        } else {
            "fields"
        }
    );
    for c in &changes {
        eprintln!("[config]   {c}");
    }
    match policy {
        Policy::KeepPersisted => {
            eprintln!(
                "[config] {verb} checks against the persisted configuration (what this node was \
                 built from), not the one given; re-run `plinth init` with it to make it this \
                 node's configuration"
            );
            Ok(persisted_spec)
        }
        Policy::KeepIdentity => {
            eprintln!(
                "[config] ignored: {verb} keeps each certificate's subject, SANs and usages as \
                 they are on disk and takes everything else from the persisted configuration; to \
                 change SANs, re-run `plinth init` with the new configuration (it says which \
                 certificates it re-issues and why)"
            );
            Ok(persisted_spec)
        }
        Policy::ApplyExplicit => {
            eprintln!(
                "[config] {verb} applies the configuration given; the persisted configuration is \
                 unchanged (re-run `plinth init` with it to make it this node's configuration)"
            );
            Ok(given)
        }
    }
}
