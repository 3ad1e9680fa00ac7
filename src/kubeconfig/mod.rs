//! Kubeconfig files with embedded client certificates, as kubeadm v1.29+ writes them into the
//! kubeconfig dir: admin.conf (kubeadm:cluster-admins), super-admin.conf (system:masters),
//! kubelet.conf (system:node:<node>, system:nodes), controller-manager.conf, scheduler.conf.
//!
//! The identities and server rules are data in `pki/profiles.yaml`; admin, super-admin and
//! kubelet talk to the controlPlaneEndpoint (else the local endpoint), controller-manager and
//! scheduler to the local advertise address. An existing file is kept when its embedded CA is
//! the current CA, its server URL and context are right and its client certificate is valid,
//! chains to the CA, carries the right identity, matches its key and is not about to expire;
//! otherwise it is re-written and the report says why.
//!
//! [`plan`] makes that comparison a value ([`KubeconfigPlan`]: per file create / keep /
//! replace with a reason / fix the mode); a dry run prints it, [`KubeconfigPlan::apply`]
//! writes it.

pub mod plan;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::ClusterSpec;
use crate::fs::{self as pfs, FsError, HostRoot};
use crate::pki::inspect::{fmt_time, CertInfo};
use crate::pki::profile::{self, KubeconfigProfile, ServerRule};
use crate::pki::{CertProfile, ExtKeyUsage, ModeFix, PkiError, PrivateKey, Renew};

pub use plan::{plan, KubeconfigItemPlan, KubeconfigPlan};
use render::{decode_data, KubeconfigFile};

/// Errors from the kubeconfig phase, each naming the file or option.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// An unknown kubeconfig name or renew name.
    #[error("unknown {field} {value:?}: allowed are {allowed}")]
    UnknownName {
        /// Which option (`kubeconfig`, `renew`).
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// The CA certificate does not exist.
    #[error("the CA certificate {path} is missing: run `plinth init phase certs ca` first")]
    CaMissing {
        /// The CA certificate file.
        path: PathBuf,
    },
    /// Reading the CA failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// External CA mode: a kubeconfig is missing.
    #[error("external CA mode ({ca_key_path} is absent): {path} is missing and plinth cannot sign its client certificate; provide it")]
    ExternalCaMissing {
        /// The missing kubeconfig.
        path: PathBuf,
        /// The absent CA key.
        ca_key_path: PathBuf,
    },
    /// External CA mode: a kubeconfig is not usable.
    #[error("external CA mode: {path} is not usable ({reason}); re-issue it with your CA")]
    ExternalCaInvalid {
        /// The kubeconfig.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Renewal requested without the CA key.
    #[error("cannot renew {name:?}: the CA key {ca_key_path} is absent (external CA mode)")]
    ExternalCaRenew {
        /// Kubeconfig name.
        name: String,
        /// The absent CA key.
        ca_key_path: PathBuf,
    },
    /// Key generation, signing or rendering failed.
    #[error("{path}: {reason}")]
    Render {
        /// The kubeconfig.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Options of [`plan`] and [`reconcile`] (a dry run is the plan's report, see
/// [`KubeconfigPlan::report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigOptions {
    /// `None` = all; else one of `admin`, `super-admin`, `kubelet`, `controller-manager`,
    /// `scheduler` (with or without `.conf`).
    pub only: Option<String>,
    /// Force new client certificates (names as in [`crate::pki::cert_names`], e.g.
    /// `admin.conf`; [`Renew::All`] renews every renewable kubeconfig, not kubelet.conf).
    pub renew: Renew,
}

/// What happened to one kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigAction {
    /// Written new.
    Generated,
    /// Valid and kept.
    Reused,
    /// Re-written with a new client certificate.
    Regenerated {
        /// Why.
        reason: String,
    },
    /// Renewal requested: new client key and certificate.
    Renewed,
    /// External CA mode: the user-provided file is valid and kept.
    ExternalCa,
    /// Dry run: would write.
    WouldGenerate,
    /// Dry run: would re-write (or renew).
    WouldRegenerate {
        /// Why.
        reason: String,
    },
}

/// One kubeconfig handled by [`reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigItem {
    /// File name (`admin.conf`).
    pub name: String,
    /// Host path.
    pub path: PathBuf,
    /// The server URL it (now) uses.
    pub server: String,
    /// What happened.
    pub action: KubeconfigAction,
    /// Permission fix on a kept file.
    pub mode_fixed: Option<ModeFix>,
    /// True if content was written.
    pub written: bool,
}

/// The result of [`reconcile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigReport {
    /// One item per kubeconfig, in kubeadm's order.
    pub items: Vec<KubeconfigItem>,
    /// True when nothing was written.
    pub dry_run: bool,
}

impl KubeconfigReport {
    /// Lines in kubeadm's `[kubeconfig] ...` style.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for it in &self.items {
            let n = &it.name;
            out.push(match &it.action {
                KubeconfigAction::Generated => {
                    format!("[kubeconfig] Writing {n:?} kubeconfig file")
                }
                KubeconfigAction::Reused => {
                    format!(
                        "[kubeconfig] Using existing kubeconfig file: {:?}",
                        it.path.display().to_string()
                    )
                }
                KubeconfigAction::Regenerated { reason } => {
                    format!("[kubeconfig] Re-writing {n:?}: {reason}")
                }
                KubeconfigAction::Renewed => {
                    format!("[kubeconfig] Renewing the client certificate embedded in {n:?}")
                }
                KubeconfigAction::ExternalCa => {
                    format!("[kubeconfig] External CA mode: Using user provided {n}")
                }
                KubeconfigAction::WouldGenerate => {
                    format!("[kubeconfig] Would write {n:?} kubeconfig file")
                }
                KubeconfigAction::WouldRegenerate { reason } => {
                    format!("[kubeconfig] Would re-write {n:?}: {reason}")
                }
            });
            out.extend(
                it.mode_fixed
                    .iter()
                    .map(|m| m.line("kubeconfig", self.dry_run)),
            );
        }
        out
    }

    /// Host paths whose content or mode changed (empty after a dry run).
    pub fn changed_files(&self) -> Vec<PathBuf> {
        if self.dry_run {
            return Vec::new();
        }
        self.items
            .iter()
            .filter(|i| i.written || i.mode_fixed.is_some())
            .map(|i| i.path.clone())
            .collect()
    }
}

/// Status of one kubeconfig on disk, for `plinth verify` and `certs check-expiration`.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeconfigStatus {
    /// File name (`admin.conf`).
    pub file: String,
    /// Host path.
    pub path: PathBuf,
    /// False if missing or unparseable (see `problems`).
    pub present: bool,
    /// Server URL found ("" if none).
    pub server: String,
    /// Server URL the config calls for.
    pub expected_server: String,
    /// Client certificate CN found.
    pub client_cn: String,
    /// Client certificate O found.
    pub client_o: Vec<String>,
    /// Client certificate NotAfter (Unix epoch when absent).
    pub not_after: OffsetDateTime,
    /// Time left (negative once expired).
    pub residual: time::Duration,
    /// The embedded CA is the current CA.
    pub ca_matches: bool,
    /// The client key matches the client certificate.
    pub key_matches: bool,
    /// The client certificate is signed by the current CA.
    pub chains_to_ca: bool,
    /// Signed by a CA whose key is absent (external CA mode).
    pub externally_managed: bool,
    /// File permission bits.
    pub mode: Option<u32>,
    /// Every deviation found; empty = healthy.
    pub problems: Vec<String>,
}

/// The server URL of a kubeconfig under `rule`, IPv6 bracketed.
pub fn server_url(spec: &ClusterSpec, rule: ServerRule) -> String {
    match rule {
        ServerRule::Cluster => spec.cluster_endpoint().url(),
        ServerRule::Local => spec.local_endpoint().url(),
    }
}

/// The kubeconfig identities for `spec`, in kubeadm's order.
pub fn profiles(spec: &ClusterSpec) -> Vec<KubeconfigProfile> {
    profile::resolve_kubeconfigs(spec).expect("embedded pki/profiles.yaml is valid (unit-tested)")
}

/// A client certificate is re-issued when less than this much of it is left: 30 days, or a
/// quarter of the validity for short-lived test configurations.
pub fn renewal_margin(validity: Duration) -> Duration {
    (validity / 4).min(Duration::from_secs(30 * 24 * 3600))
}

fn matches_only(k: &KubeconfigProfile, only: &str) -> bool {
    k.file == only || k.file.strip_suffix(".conf") == Some(only)
}

#[derive(Debug)]
struct Ca {
    cert: CertInfo,
    key: Option<PrivateKey>,
    key_path: PathBuf,
}

fn load_ca(spec: &ClusterSpec, root: &HostRoot, name: &str) -> Result<Ca, KubeconfigError> {
    let ca: CertProfile = crate::pki::profiles(spec)
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PkiError::Profiles(format!("unknown CA {name:?}")))?;
    let cert_local = root.path(&ca.cert_path);
    let key_local = root.path(&ca.key_path);
    if pfs::mode_of(&cert_local).is_none() {
        return Err(KubeconfigError::CaMissing { path: cert_local });
    }
    let cert = crate::pki::load_pem_cert(&cert_local)?;
    let key = if pfs::mode_of(&key_local).is_some() {
        let key = crate::pki::load_pem_key(&key_local)?;
        if !cert.matches_key(&key) {
            return Err(PkiError::CaInvalid {
                path: key_local,
                reason: format!("it is not the key of {}", cert_local.display()),
            }
            .into());
        }
        Some(key)
    } else {
        None
    };
    Ok(Ca {
        cert,
        key,
        key_path: key_local,
    })
}

/// Facts about one existing kubeconfig, compared with what it should be.
struct Assessment {
    present: bool,
    server: String,
    client: Option<CertInfo>,
    ca_matches: bool,
    key_matches: bool,
    chains: bool,
    /// Hard problems (the file is wrong).
    problems: Vec<String>,
    /// The client certificate is close to expiry (re-issue when the CA key is available).
    expiring: Option<String>,
}

/// Why a certificate or key a kubeconfig embeds or references cannot be read.
#[derive(Debug, thiserror::Error)]
enum RefError {
    /// The `*-data` field is not base64 text.
    #[error("{0}")]
    Data(String),
    /// The referenced file cannot be read.
    #[error("read {file}: {reason}")]
    Read {
        /// The file as the kubeconfig names it.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// Neither a `*-data` field nor a file.
    #[error("absent")]
    Absent,
    /// Not a certificate.
    #[error(transparent)]
    Cert(#[from] crate::pki::inspect::CertError),
    /// Not a private key.
    #[error(transparent)]
    Key(#[from] crate::pki::keys::KeyError),
}

fn read_ref(root: &HostRoot, data: Option<&str>, file: Option<&str>) -> Result<String, RefError> {
    if let Some(d) = data {
        return decode_data(d).map_err(RefError::Data);
    }
    if let Some(f) = file {
        let local = root.path(f);
        return std::fs::read_to_string(&local).map_err(|e| RefError::Read {
            file: f.to_string(),
            reason: e.to_string(),
        });
    }
    Err(RefError::Absent)
}

fn assess(
    spec: &ClusterSpec,
    root: &HostRoot,
    k: &KubeconfigProfile,
    ca: &CertInfo,
    local: &Path,
    now: OffsetDateTime,
) -> Result<Assessment, KubeconfigError> {
    let mut a = Assessment {
        present: false,
        server: String::new(),
        client: None,
        ca_matches: false,
        key_matches: false,
        chains: false,
        problems: Vec::new(),
        expiring: None,
    };
    let Some(bytes) = pfs::read_optional(local)? else {
        return Ok(a);
    };
    a.present = true;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            a.problems.push("it is not a text file".into());
            return Ok(a);
        }
    };
    let file = match KubeconfigFile::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            a.problems.push(format!("it cannot be parsed: {e}"));
            return Ok(a);
        }
    };
    let Some((ctx, cluster, user)) = file.current() else {
        a.problems.push(format!(
            "its current-context {:?} does not name a context, cluster and user",
            file.current_context
        ));
        return Ok(a);
    };
    let want_ctx = format!("{}@{}", k.cn, spec.cluster_name);
    if ctx != want_ctx {
        a.problems
            .push(format!("its context is {ctx:?}, want {want_ctx:?}"));
    }
    a.server = cluster.server.clone();
    let want_server = server_url(spec, k.server);
    if cluster.server != want_server {
        a.problems.push(format!(
            "its server is {}, want {want_server}",
            cluster.server
        ));
    }
    match read_ref(
        root,
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
    )
    .and_then(|pem| Ok(CertInfo::from_pem(&pem)?))
    {
        Ok(c) if c.der == ca.der => a.ca_matches = true,
        Ok(_) => a
            .problems
            .push("its embedded CA is not the current cluster CA".into()),
        Err(e) => a.problems.push(format!("its CA cannot be read: {e}")),
    }
    let cert = read_ref(
        root,
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
    )
    .and_then(|pem| Ok(CertInfo::from_pem(&pem)?));
    let key = read_ref(
        root,
        user.client_key_data.as_deref(),
        user.client_key.as_deref(),
    )
    .and_then(|pem| Ok(PrivateKey::from_pem(&pem)?));
    match (&cert, &key) {
        (Err(e), _) => a
            .problems
            .push(format!("its client certificate cannot be read: {e}")),
        (_, Err(e)) => a
            .problems
            .push(format!("its client key cannot be read: {e}")),
        (Ok(c), Ok(key)) => {
            a.key_matches = c.matches_key(key);
            if !a.key_matches {
                a.problems
                    .push("its client key does not match its client certificate".into());
            }
        }
    }
    if let Ok(c) = cert {
        a.chains = c.is_signed_by(ca);
        if !a.chains {
            a.problems
                .push("its client certificate is not signed by the current cluster CA".into());
        }
        if c.cn != k.cn {
            a.problems.push(format!(
                "its client certificate CN is {:?}, want {:?}",
                c.cn, k.cn
            ));
        }
        let (mut have, mut want) = (c.organizations.clone(), k.organizations.clone());
        have.sort();
        want.sort();
        if have != want {
            a.problems.push(format!(
                "its client certificate O is {have:?}, want {want:?}"
            ));
        }
        if !c.ext_key_usages.contains(&ExtKeyUsage::ClientAuth) {
            a.problems
                .push("its client certificate lacks clientAuth".into());
        }
        if c.not_after <= now {
            a.problems.push(format!(
                "its client certificate expired on {}",
                fmt_time(c.not_after)
            ));
        } else if c.residual(now)
            < time::Duration::try_from(renewal_margin(spec.cert_validity))
                .unwrap_or(time::Duration::ZERO)
        {
            a.expiring = Some(format!(
                "its client certificate expires on {}",
                fmt_time(c.not_after)
            ));
        }
        a.client = Some(c);
    }
    Ok(a)
}

fn check_names(
    spec: &ClusterSpec,
    ks: &[KubeconfigProfile],
    opts: &KubeconfigOptions,
) -> Result<(), KubeconfigError> {
    if let Some(only) = &opts.only {
        if !ks.iter().any(|k| matches_only(k, only)) {
            return Err(KubeconfigError::UnknownName {
                field: "kubeconfig",
                value: only.clone(),
                allowed: ks
                    .iter()
                    .map(|k| k.file.trim_end_matches(".conf"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    if let Some((value, allowed)) = crate::pki::unknown_renew_name(spec, &opts.renew) {
        return Err(KubeconfigError::UnknownName {
            field: "renew",
            value,
            allowed,
        });
    }
    Ok(())
}

/// Writes (or keeps) the kubeconfigs under `spec.plinth.kubeconfig_dir` inside `root`: the
/// [`plan`], applied. Needs the cluster CA (`ca.crt` + `ca.key`; without the key, external CA
/// mode: the files must exist and be valid). On error nothing has been written.
pub fn reconcile(
    spec: &ClusterSpec,
    root: &HostRoot,
    opts: &KubeconfigOptions,
) -> Result<KubeconfigReport, KubeconfigError> {
    plan(spec, root, opts)?.apply()
}

/// Inspects every kubeconfig of `spec` on disk. Missing files are reported, not errors; a
/// missing CA certificate is an error.
pub fn inspect(
    spec: &ClusterSpec,
    root: &HostRoot,
) -> Result<Vec<KubeconfigStatus>, KubeconfigError> {
    let now = OffsetDateTime::now_utc();
    let dir = Path::new(&spec.plinth.kubeconfig_dir);
    let mut out = Vec::new();
    for k in profiles(spec) {
        let ca = load_ca(spec, root, &k.ca)?;
        let host = dir.join(&k.file);
        let local = root.path(&host);
        let a = assess(spec, root, &k, &ca.cert, &local, now)?;
        let mut problems = a.problems;
        if !a.present {
            problems.push(format!("{} is missing", host.display()));
        }
        problems.extend(a.expiring);
        let (client_cn, client_o, not_after) = match &a.client {
            Some(c) => (c.cn.clone(), c.organizations.clone(), c.not_after),
            None => (String::new(), Vec::new(), OffsetDateTime::UNIX_EPOCH),
        };
        out.push(KubeconfigStatus {
            file: k.file.clone(),
            path: host,
            present: a.present,
            server: a.server,
            expected_server: server_url(spec, k.server),
            client_cn,
            client_o,
            not_after,
            residual: not_after - now,
            ca_matches: a.ca_matches,
            key_matches: a.key_matches,
            chains_to_ca: a.chains,
            externally_managed: ca.key.is_none(),
            mode: pfs::mode_of(&local),
            problems,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, Endpoint};

    #[test]
    fn server_rules_follow_kubeadm() {
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        assert_eq!(
            server_url(&s, ServerRule::Cluster),
            "https://192.168.10.5:6443"
        );
        s.control_plane_endpoint = Some(Endpoint {
            host: "lb.example.com".into(),
            port: 8443,
        });
        assert_eq!(
            server_url(&s, ServerRule::Cluster),
            "https://lb.example.com:8443"
        );
        assert_eq!(
            server_url(&s, ServerRule::Local),
            "https://192.168.10.5:6443"
        );
        let v6 = defaults_for("cp1", "fd00::5".parse().unwrap());
        assert_eq!(server_url(&v6, ServerRule::Local), "https://[fd00::5]:6443");
    }

    #[test]
    fn margin_is_bounded() {
        assert_eq!(
            renewal_margin(Duration::from_secs(365 * 86400)),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(4 * 86400)),
            Duration::from_secs(86400)
        );
    }

    #[test]
    fn only_accepts_phase_and_file_names() {
        let s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        let ks = profiles(&s);
        assert!(matches_only(&ks[0], "admin"));
        assert!(matches_only(&ks[0], "admin.conf"));
        assert!(!matches_only(&ks[1], "admin"));
        let opts = KubeconfigOptions {
            only: Some("bogus".into()),
            ..Default::default()
        };
        let e = check_names(&s, &ks, &opts).unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("super-admin"), "{e}");
    }

    fn setup() -> (tempfile::TempDir, HostRoot, ClusterSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.key_algorithm = crate::config::KeyAlgorithm::EcdsaP256;
        crate::pki::reconcile(&s, &root, &Default::default()).unwrap();
        (tmp, root, s)
    }

    fn action<'a>(r: &'a KubeconfigReport, name: &str) -> &'a KubeconfigAction {
        &r.items.iter().find(|i| i.name == name).unwrap().action
    }

    #[test]
    fn writes_reuses_and_follows_endpoint_changes() {
        let (tmp, root, mut s) = setup();
        let r = reconcile(&s, &root, &Default::default()).unwrap();
        assert!(r
            .items
            .iter()
            .all(|i| i.action == KubeconfigAction::Generated));
        assert_eq!(
            r.lines()[0],
            "[kubeconfig] Writing \"admin.conf\" kubeconfig file"
        );
        let admin = tmp.path().join("etc/kubernetes/admin.conf");
        assert_eq!(pfs::mode_of(&admin), Some(0o600));
        let st = inspect(&s, &root).unwrap();
        assert_eq!(st.len(), 5);
        for k in &st {
            assert!(k.problems.is_empty(), "{}: {:?}", k.file, k.problems);
        }
        let kubelet = st.iter().find(|k| k.file == "kubelet.conf").unwrap();
        assert_eq!(kubelet.client_cn, "system:node:cp1");
        assert_eq!(kubelet.client_o, ["system:nodes"]);

        let again = reconcile(&s, &root, &Default::default()).unwrap();
        assert!(again
            .items
            .iter()
            .all(|i| i.action == KubeconfigAction::Reused));
        assert!(again.changed_files().is_empty());
        assert_eq!(
            again.lines()[0],
            "[kubeconfig] Using existing kubeconfig file: \"/etc/kubernetes/admin.conf\""
        );

        s.control_plane_endpoint = Some(Endpoint {
            host: "lb.example.com".into(),
            port: 6443,
        });
        let r = reconcile(&s, &root, &Default::default()).unwrap();
        let KubeconfigAction::Regenerated { reason } = action(&r, "admin.conf") else {
            panic!("{r:?}")
        };
        assert!(
            reason.contains("want https://lb.example.com:6443"),
            "{reason}"
        );
        assert!(matches!(
            action(&r, "kubelet.conf"),
            KubeconfigAction::Regenerated { .. }
        ));
        assert_eq!(action(&r, "scheduler.conf"), &KubeconfigAction::Reused);
        assert_eq!(
            action(&r, "controller-manager.conf"),
            &KubeconfigAction::Reused
        );
    }

    #[test]
    fn renew_dry_run_and_external_ca() {
        let (tmp, root, s) = setup();
        let dry = plan(&s, &root, &Default::default()).unwrap().report();
        assert!(dry
            .items
            .iter()
            .all(|i| i.action == KubeconfigAction::WouldGenerate));
        assert!(!tmp.path().join("etc/kubernetes/admin.conf").exists());
        reconcile(&s, &root, &Default::default()).unwrap();
        let r = reconcile(
            &s,
            &root,
            &KubeconfigOptions {
                renew: Renew::All,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(action(&r, "admin.conf"), &KubeconfigAction::Renewed);
        assert_eq!(
            action(&r, "kubelet.conf"),
            &KubeconfigAction::Reused,
            "kubelet.conf is not renewable"
        );
        std::fs::remove_file(tmp.path().join("etc/kubernetes/pki/ca.key")).unwrap();
        let r = reconcile(&s, &root, &Default::default()).unwrap();
        assert!(r
            .items
            .iter()
            .all(|i| i.action == KubeconfigAction::ExternalCa));
        std::fs::remove_file(tmp.path().join("etc/kubernetes/scheduler.conf")).unwrap();
        let e = reconcile(&s, &root, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheduler.conf"), "{e}");
        std::fs::remove_file(tmp.path().join("etc/kubernetes/pki/ca.crt")).unwrap();
        let e = reconcile(&s, &root, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.crt"), "{e}");
    }
}
