//! `plinth certs renew`: new keys and certificates from the current config (SANs are
//! recomputed, never copied from the old certificate), then a nudge to the agent, which
//! restarts exactly the pods that mount a renewed file — no manual restart step.

use crate::config::ClusterSpec;
use crate::fs::HostRoot;
use crate::init::{InitError, PhaseReport};

/// Renews `name` (`all`, a certificate name, or a kubeconfig file name like `admin.conf`).
pub fn renew(spec: &ClusterSpec, root: &HostRoot, name: &str) -> Result<PhaseReport, InitError> {
    let kubeconfig_names = crate::verify::KUBECONFIGS;
    let mut report = PhaseReport::default();
    let is_kubeconfig = kubeconfig_names.contains(&name);
    if name == "all" || !is_kubeconfig {
        let renew = if name == "all" {
            crate::pki::Renew::All
        } else {
            crate::pki::Renew::Names(vec![name.to_string()])
        };
        let opts = crate::pki::PkiOptions {
            dry_run: false,
            only: None,
            renew,
        };
        let r = crate::pki::reconcile(spec, root, &opts)?;
        report.lines.extend(r.lines());
        report.changed.extend(r.changed_files());
        // A renewed etcd key is a new file (atomic rename): the writer carries the old key's
        // ACL over, and this makes sure the etcd user the etcd manifest runs as (cis profile)
        // can read it, as init does, before the agent restarts etcd.
        if spec.plinth.security_profile == crate::config::SecurityProfile::Cis
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
