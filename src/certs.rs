//! `plinth certs renew`: re-sign the named certificates with their CA, keeping each one's
//! subject, SANs and usages (see [`crate::pki::renew`]); renew the client certificates embedded
//! in the kubeconfigs; then nudge the agent, which restarts exactly the pods that use a renewed
//! file — no manual restart step.
//!
//! The configuration (normally the one persisted by `plinth init`) only says where the files
//! are and how long the new certificates live: it never changes a renewed identity.

use crate::config::ClusterSpec;
use crate::fs::HostRoot;
use crate::pki::renew::Selection;
use crate::workflow::PhaseReport;

/// Errors from `certs renew`.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Renewing certificates failed.
    #[error("[certs] renewing certificates failed")]
    Pki(#[from] crate::pki::PkiError),
    /// Renewing the kubeconfigs' client certificates failed.
    #[error("[kubeconfig] renewing kubeconfig client certificates failed")]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    /// The etcd user's read access to a renewed etcd key could not be granted.
    #[error("[certs] granting the etcd user access to its renewed keys failed")]
    Security(#[from] crate::security::SecurityError),
}

/// Renews `name`: `all`, a certificate name (`etcd-server` or `etcd/server`), or a kubeconfig
/// file name like `admin.conf`.
pub fn renew(spec: &ClusterSpec, root: &HostRoot, name: &str) -> Result<PhaseReport, CertsError> {
    let name = crate::pki::canonical_cert_name(spec, name).unwrap_or_else(|| name.to_string());
    let name = name.as_str();
    let mut report = PhaseReport::default();
    let is_kubeconfig = crate::kubeconfig::profiles(spec)
        .iter()
        .any(|k| k.file == name);
    if name == "all" || !is_kubeconfig {
        let selection = if name == "all" {
            Selection::All
        } else {
            Selection::Names(vec![name.to_string()])
        };
        let r = crate::pki::renew::renew(spec, root, &selection, false)?;
        report.lines.extend(r.lines());
        let changed = r.changed_files();
        // A renewed etcd key is a new file (atomic rename): this makes sure the etcd user the
        // etcd manifest runs as (cis profile) can read it, as init does, before the agent
        // restarts etcd.
        let etcd_key_renewed = r
            .items
            .iter()
            .any(|i| !i.written.is_empty() && i.name.starts_with("etcd-"));
        report.changed.extend(changed);
        if etcd_key_renewed
            && spec.plinth.security_profile == crate::config::SecurityProfile::Cis
            && spec.has_local_etcd()
        {
            if let Some((uid, gid)) = crate::security::lookup_etcd_user() {
                for k in crate::security::grant_etcd_keys(root, spec, uid, gid)? {
                    report.lines.push(k.to_string());
                }
            }
        }
    }
    if name == "all" || is_kubeconfig {
        let only = if name == "all" {
            None
        } else {
            Some(name.trim_end_matches(".conf").to_string())
        };
        let renew = match &only {
            None => crate::pki::Renew::All,
            Some(_) => crate::pki::Renew::Names(vec![name.to_string()]),
        };
        let opts = crate::kubeconfig::KubeconfigOptions {
            dry_run: false,
            only,
            renew,
        };
        let r = crate::kubeconfig::reconcile(spec, root, &opts)?;
        report.lines.extend(r.lines());
        report.changed.extend(r.changed_files());
    }
    if let Some(msg) = crate::agentctl::nudge(root, &spec.plinth.state_dir) {
        report.lines.push(format!("[certs] {msg}"));
    }
    Ok(report)
}
