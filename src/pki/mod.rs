//! The cluster PKI, as kubeadm v1.29+ lays it out under `certificatesDir`: the three CAs, the
//! apiserver/etcd/front-proxy leaves and the service-account key pair.
//!
//! The certificate profiles are data (`pki/profiles.yaml`, see [`profile`]); this module
//! resolves them for a [`ClusterSpec`], compares them with what is on disk ([`plan`]: a
//! [`PkiPlan`] value, per file create / keep / replace with a reason / fix the mode), issues
//! exactly what is missing or wrong ([`PkiPlan::apply`]; [`reconcile`] = plan + apply), and
//! reports the state for `verify` ([`inspect`]). A dry run prints the plan.
//!
//! Unlike kubeadm, an existing leaf whose SANs no longer cover the config, that does not chain
//! to its CA, whose key does not match, that expired, or whose identity/usages differ is
//! re-issued, and the report says why. Keys are written PKCS#1/SEC1 like kubeadm's.
//!
//! Choices worth knowing:
//! - Every certificate gets NotBefore = now − 5 min (kubeadm backdates CAs that way and gives
//!   leaves the CA's NotBefore, which makes a leaf renewed years later look ancient).
//! - The apiserver gets the first IP of the *primary* service subnet only, as kubeadm's
//!   `GetAPIServerVirtualIP` (the `kubernetes` Service lives in the primary family).
//! - A CA is never replaced silently: an expired CA, a CA key without certificate or a key
//!   that does not match is an error. A CA certificate without key is external CA mode.
//! - A re-issued leaf keeps its key when the key is readable (renewal makes a new one).
//! - `certs renew` does not reconcile: [`renew`] re-signs the existing certificate's subject,
//!   SANs and usages, whatever the configuration says.
//!   Changing `key_algorithm` does not by itself re-issue existing files.
//! - Files are root-owned; giving the etcd keys to a dedicated `etcd` user (CIS profile) is
//!   the manifests/etcd phase's job.

pub mod inspect;
pub mod issue;
pub mod keys;
pub mod pem;
pub mod plan;
pub mod profile;
mod reconcile;
pub mod renew;
pub(crate) mod write;

use std::path::{Path, PathBuf};

pub use inspect::{load_pem_cert, load_pem_key, CertInfo, CertStatus};
pub use keys::PrivateKey;
pub use plan::{FileAction, FilePlan, ItemPlan, PkiPlan};
pub use profile::{
    CertProfile, ExtKeyUsage, KeyUsage, KubeconfigProfile, ProfileKind, San, ServerRule,
};
pub use reconcile::{inspect, plan, reconcile};

use crate::config::ClusterSpec;
use crate::fs::FsError;

/// Errors from the PKI phase; each names the file (root-prefixed path) or option involved.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The embedded profile data is inconsistent (a build defect; unit tests guard it).
    #[error("certificate profiles: {0}")]
    Profiles(String),
    /// `--only`/a phase name or a renew name is not known.
    #[error("unknown {field} {value:?}: allowed are {allowed}")]
    UnknownName {
        /// Which option (`certificate`, `renew`).
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed values, comma-separated.
        allowed: String,
    },
    /// A certificate or key file could not be parsed.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A CA key exists without its certificate.
    #[error(
        "{key_path} exists but {cert_path} does not: restore the CA certificate or remove the key"
    )]
    CaKeyWithoutCert {
        /// The key file.
        key_path: PathBuf,
        /// The missing certificate file.
        cert_path: PathBuf,
    },
    /// An existing CA cannot be used (plinth never replaces a CA silently).
    #[error("CA {path} cannot be used: {reason}")]
    CaInvalid {
        /// The CA certificate (or key) file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate was requested on its own but its CA does not exist yet.
    #[error("CA {ca:?} is missing ({path}): generate it first (`plinth init phase certs {ca}`)")]
    CaMissing {
        /// CA profile name.
        ca: String,
        /// The missing CA certificate.
        path: PathBuf,
    },
    /// External CA mode (CA certificate without key): a leaf is missing.
    #[error("external CA mode ({ca_path} has no key): {path} is missing and plinth cannot sign it; provide it")]
    ExternalCaLeafMissing {
        /// The missing file.
        path: PathBuf,
        /// The keyless CA certificate.
        ca_path: PathBuf,
    },
    /// External CA mode: a leaf exists but is not usable.
    #[error("external CA mode: {path} is not usable ({reason}); re-issue it with your CA")]
    ExternalCaLeafInvalid {
        /// The certificate (or key) file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Renewal was requested for a certificate whose CA key is absent.
    #[error("cannot renew {name:?}: its CA key {ca_key_path} is absent (external CA mode)")]
    ExternalCaRenew {
        /// Certificate name.
        name: String,
        /// The absent CA key.
        ca_key_path: PathBuf,
    },
    /// Key generation or signing failed.
    #[error("issuing {name:?}: {reason}")]
    Crypto {
        /// Certificate name.
        name: String,
        /// The failure.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl PkiError {
    /// `map_err` adapter: a parse failure of the file at `path`.
    pub(crate) fn parse_failed<E: std::fmt::Display>(
        path: &Path,
    ) -> impl FnOnce(E) -> PkiError + '_ {
        move |e| PkiError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// `PkiOptions::only` value selecting the etcd CA and every certificate it signs, so `init` can
/// start etcd while the remaining keys are still being generated.
pub const ETCD_GROUP: &str = "etcd/*";

/// Which leaves get a new key and certificate regardless of their state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Renew {
    /// Renew nothing (reuse what is valid).
    #[default]
    None,
    /// Renew every renewable leaf (and kubeconfig).
    All,
    /// Renew these names (from [`cert_names`]).
    Names(Vec<String>),
}

impl Renew {
    /// True if `name` is to be renewed.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Renew::None => false,
            Renew::All => true,
            Renew::Names(n) => n.iter().any(|x| x == name),
        }
    }
}

/// Options of [`plan`] and [`reconcile`] (a dry run is the plan's report, see
/// [`PkiPlan::report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiOptions {
    /// `None` = all; else one name (`ca`, `apiserver`, `etcd-server`, `sa`, or a base name
    /// such as `etcd/server`).
    pub only: Option<String>,
    /// Force a new key and certificate for these leaves.
    pub renew: Renew,
}

/// What [`reconcile`] did (or, in a dry run, would do) for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkiAction {
    /// Created: new key and certificate (CA or leaf), or new `sa` key pair.
    Generated,
    /// Existing files are valid and were kept.
    Reused,
    /// Existing files were wrong; a new certificate was issued (reusing the key when usable).
    Reissued {
        /// Why, e.g. `its SANs no longer cover IP 10.0.0.100`.
        reason: String,
    },
    /// Renewal requested: new key and certificate.
    Renewed,
    /// A CA certificate without key: external CA mode, used as is.
    ExternalCa,
    /// `certs renew all`: the certificate does not exist, so there is nothing to renew.
    Missing,
    /// Dry run: would generate.
    WouldGenerate,
    /// Dry run: would re-issue (or renew).
    WouldReissue {
        /// Why.
        reason: String,
    },
}

/// A file whose permission bits were (or, in a dry run, would be) tightened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeFix {
    /// Host path.
    pub path: PathBuf,
    /// Mode found.
    pub old: u32,
    /// Mode set.
    pub new: u32,
}

impl ModeFix {
    /// The report line, `[<tag>] Tightened permissions of <path> from 0644 to 0600` (`Would
    /// tighten` in a dry run).
    pub fn line(&self, tag: &str, dry_run: bool) -> String {
        format!(
            "[{tag}] {} permissions of {} from {:04o} to {:04o}",
            if dry_run {
                "Would tighten"
            } else {
                "Tightened"
            },
            self.path.display(),
            self.old,
            self.new
        )
    }

    /// Dry run: the fix a kept file at `local` (host path `host`) needs to have `mode`, if any.
    pub(crate) fn planned(local: &Path, host: PathBuf, mode: u32) -> Option<ModeFix> {
        let old = crate::fs::mode_of(local)?;
        (old != mode).then_some(ModeFix {
            path: host,
            old,
            new: mode,
        })
    }

    /// Gives a kept file at `local` (host path `host`) exactly `mode`; the fix made, if any.
    pub(crate) fn enforce(
        local: &Path,
        host: PathBuf,
        mode: u32,
    ) -> Result<Option<ModeFix>, FsError> {
        let Some(bytes) = crate::fs::read_optional(local)? else {
            return Ok(None);
        };
        Ok(match crate::fs::write_atomic(local, &bytes, mode)? {
            crate::fs::WriteOutcome::ModeFixed { old } => Some(ModeFix {
                path: host,
                old,
                new: mode,
            }),
            _ => None,
        })
    }
}

/// One certificate (or key pair) handled by [`reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiItem {
    /// Profile name (`apiserver`, `etcd-server`, `sa`).
    pub name: String,
    /// kubeadm base name (`etcd/server`), used in report lines.
    pub base: String,
    /// CA, leaf or key pair.
    pub kind: ProfileKind,
    /// Host path of the certificate (`sa.pub` for the key pair).
    pub cert_path: PathBuf,
    /// Host path of the key.
    pub key_path: PathBuf,
    /// What happened.
    pub action: PkiAction,
    /// Permission fixes on kept files.
    pub mode_fixed: Vec<ModeFix>,
    /// Host paths whose content was written (empty in a dry run).
    pub written: Vec<PathBuf>,
    /// For serving certificates that were (or would be) issued: the SANs, for the report.
    pub serving_sans: Option<Vec<San>>,
}

/// The result of [`reconcile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiReport {
    /// One entry per handled profile, in generation order.
    pub items: Vec<PkiItem>,
    /// True when nothing was written (the actions are a plan).
    pub dry_run: bool,
}

fn sans_line(base: &str, verb: &str, sans: &[San]) -> String {
    let dns: Vec<String> = sans
        .iter()
        .filter_map(|s| match s {
            San::Dns(d) => Some(d.clone()),
            San::Ip(_) => None,
        })
        .collect();
    let ips: Vec<String> = sans
        .iter()
        .filter_map(|s| match s {
            San::Ip(ip) => Some(ip.to_string()),
            San::Dns(_) => None,
        })
        .collect();
    format!(
        "[certs] {base} serving cert {verb} signed for DNS names [{}] and IPs [{}]",
        dns.join(" "),
        ips.join(" ")
    )
}

impl PkiReport {
    /// Human-readable lines in kubeadm's `[certs] ...` style.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for it in &self.items {
            // One spelling everywhere: the name `certs renew` and check-expiration use
            // (`etcd-server`, kubeadm's CLI name), not the file base name (`etcd/server`).
            let b = &it.name;
            let keypair = it.kind == ProfileKind::Keypair;
            match (&it.action, it.kind) {
                (PkiAction::Generated, ProfileKind::Keypair) => {
                    out.push(format!("[certs] Generating {b:?} key and public key"))
                }
                (PkiAction::Generated, _) => {
                    out.push(format!("[certs] Generating {b:?} certificate and key"))
                }
                (PkiAction::Reused, ProfileKind::Ca) => {
                    out.push(format!("[certs] Using existing {b} certificate authority"))
                }
                (PkiAction::Reused, ProfileKind::Keypair) => {
                    out.push(format!("[certs] Using the existing {b:?} key"))
                }
                (PkiAction::Reused, ProfileKind::Leaf) => out.push(format!(
                    "[certs] Using existing {b} certificate and key on disk"
                )),
                (PkiAction::Reissued { reason }, _) => {
                    out.push(format!("[certs] Re-issuing {b:?}: {reason}"))
                }
                (PkiAction::Renewed, _) => {
                    out.push(format!("[certs] Renewing {b:?}: new key and certificate"))
                }
                (PkiAction::Missing, _) => out.push(format!(
                    "[certs] MISSING! {b:?}: not renewed (it does not exist; `plinth init` creates it)"
                )),
                (PkiAction::ExternalCa, _) => out.push(format!(
                    "[certs] External CA mode: using existing {b} keyless certificate authority"
                )),
                (PkiAction::WouldGenerate, _) => out.push(if keypair {
                    format!("[certs] Would generate {b:?} key and public key")
                } else {
                    format!("[certs] Would generate {b:?} certificate and key")
                }),
                (PkiAction::WouldReissue { reason }, _) => {
                    out.push(format!("[certs] Would re-issue {b:?}: {reason}"))
                }
            }
            if let Some(sans) = &it.serving_sans {
                let verb = if matches!(
                    it.action,
                    PkiAction::WouldGenerate | PkiAction::WouldReissue { .. }
                ) {
                    "would be"
                } else {
                    "is"
                };
                out.push(sans_line(b, verb, sans));
            }
            out.extend(it.mode_fixed.iter().map(|m| m.line("certs", self.dry_run)));
        }
        out
    }

    /// Host paths whose content or mode changed (empty after a dry run).
    pub fn changed_files(&self) -> Vec<PathBuf> {
        if self.dry_run {
            return Vec::new();
        }
        let mut out: Vec<PathBuf> = Vec::new();
        for it in &self.items {
            out.extend(it.written.iter().cloned());
            out.extend(it.mode_fixed.iter().map(|m| m.path.clone()));
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Every certificate profile that applies to `spec`, resolved (SANs, CN, paths), in
/// generation order. External etcd drops the etcd CA and the etcd certificates.
pub fn profiles(spec: &ClusterSpec) -> Vec<CertProfile> {
    // The data is embedded at build time and checked by unit tests; a failure here is a
    // build defect, not bad input.
    profile::resolve(spec).expect("embedded pki/profiles.yaml is valid (unit-tested)")
}

/// The first name of `renew` that is not one of [`cert_names`], with the allowed names
/// comma-joined: (value, allowed) for the `UnknownName` errors of the pki and kubeconfig phases.
pub(crate) fn unknown_renew_name(spec: &ClusterSpec, renew: &Renew) -> Option<(String, String)> {
    let Renew::Names(names) = renew else {
        return None;
    };
    let allowed = cert_names(spec);
    names
        .iter()
        .find(|n| !allowed.contains(n))
        .map(|n| (n.clone(), allowed.join(", ")))
}

/// The one spelling of a certificate name: `etcd/server` (the file base name init's output used
/// to print) and `etcd-server` (kubeadm's CLI name) are the same certificate, and both give
/// `etcd-server`. Kubeconfig names (`admin.conf`) and `all` are returned as they are; `None`
/// for a name that is neither a certificate nor a renewable kubeconfig.
pub fn canonical_cert_name(spec: &ClusterSpec, name: &str) -> Option<String> {
    if name == "all" {
        return Some(name.to_string());
    }
    if let Some(p) = profiles(spec)
        .into_iter()
        .find(|p| p.kind == ProfileKind::Leaf && (p.name == name || p.base == name))
    {
        return Some(p.name);
    }
    cert_names(spec).into_iter().find(|n| n == name)
}

/// Names `certs renew` accepts, in kubeadm's naming: the leaf certificates, then the
/// kubeconfigs with embedded client certificates (except kubelet.conf, as kubeadm).
pub fn cert_names(spec: &ClusterSpec) -> Vec<String> {
    let mut out: Vec<String> = profiles(spec)
        .into_iter()
        .filter(|p| p.kind == ProfileKind::Leaf)
        .map(|p| p.name)
        .collect();
    out.extend(
        profile::resolve_kubeconfigs(spec)
            .expect("embedded pki/profiles.yaml is valid (unit-tested)")
            .into_iter()
            .filter(|k| k.renewable)
            .map(|k| k.file),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mode_fix_is_planned_enforced_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("admin.conf");
        let host = PathBuf::from("/etc/kubernetes/admin.conf");
        assert_eq!(ModeFix::planned(&local, host.clone(), 0o600), None);
        assert_eq!(ModeFix::enforce(&local, host.clone(), 0o600).unwrap(), None);
        std::fs::write(&local, "x").unwrap();
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o644)).unwrap();
        let want = ModeFix {
            path: host.clone(),
            old: 0o644,
            new: 0o600,
        };
        assert_eq!(
            ModeFix::planned(&local, host.clone(), 0o600),
            Some(want.clone())
        );
        assert_eq!(
            crate::fs::mode_of(&local),
            Some(0o644),
            "planning changes nothing"
        );
        assert_eq!(
            want.line("kubeconfig", true),
            "[kubeconfig] Would tighten permissions of /etc/kubernetes/admin.conf from 0644 to 0600"
        );
        assert_eq!(
            ModeFix::enforce(&local, host.clone(), 0o600).unwrap(),
            Some(want.clone())
        );
        assert_eq!(crate::fs::mode_of(&local), Some(0o600));
        assert_eq!(std::fs::read(&local).unwrap(), b"x");
        assert_eq!(
            want.line("certs", false),
            "[certs] Tightened permissions of /etc/kubernetes/admin.conf from 0644 to 0600"
        );
        assert_eq!(ModeFix::planned(&local, host.clone(), 0o600), None);
        assert_eq!(ModeFix::enforce(&local, host, 0o600).unwrap(), None);
    }

    #[test]
    fn unknown_renew_names_are_named_with_the_allowed_list() {
        let s = crate::config::defaults_for("cp1", "192.168.10.5".parse().unwrap());
        assert_eq!(unknown_renew_name(&s, &Renew::All), None);
        let ok = Renew::Names(vec!["apiserver".into(), "admin.conf".into()]);
        assert_eq!(unknown_renew_name(&s, &ok), None);
        let bad = Renew::Names(vec!["apiserver".into(), "nope".into()]);
        let (value, allowed) = unknown_renew_name(&s, &bad).unwrap();
        assert_eq!(value, "nope");
        assert_eq!(allowed, cert_names(&s).join(", "));
    }
}
