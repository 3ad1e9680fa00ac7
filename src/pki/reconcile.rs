//! Assessing the PKI: compare each profile with the files on disk and decide what must happen
//! to it ([`plan`] turns the decisions into a [`PkiPlan`]; its apply step generates the
//! keys in parallel, signs in dependency order and writes atomically). Also [`inspect`], the
//! read-only report `verify` and `certs check-expiration` use.

use std::collections::BTreeMap;
use std::path::Path;

use time::OffsetDateTime;

use super::inspect::{self, fmt_time, identity_problems, CertInfo, CertStatus};
use super::issue::BACKDATE;
use super::keys::PrivateKey;
use super::plan::{CaMaterial, ItemPlan, PkiPlan};
use super::profile::{self, CertProfile, ProfileKind};
use super::{PkiAction, PkiError, PkiOptions, PkiReport};
use crate::config::ClusterSpec;
use crate::fs::{self as pfs, HostRoot, MODE_CERT, MODE_KEY, MODE_PRIVATE};

/// The state of one CA after assessment.
pub(super) enum CaPlan {
    /// No files: create it.
    Generate,
    /// Valid certificate and matching key.
    Reuse { cert: CertInfo, key: PrivateKey },
    /// Certificate without key: external CA mode.
    External { cert: CertInfo },
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match pfs::read_optional(path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| PkiError::Parse {
                path: path.to_path_buf(),
                reason: "not a PEM text file".into(),
            }),
    }
}

/// Parses an optional PEM text with `parse`; a missing or unparseable file (`shown` in the
/// message) is noted in `problems` and yields `None`.
fn parse_or_note<T, E: std::fmt::Display>(
    text: Option<&str>,
    shown: &Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let Some(text) = text else {
        problems.push(format!("{} is missing", shown.display()));
        return None;
    };
    parse(text)
        .map_err(|e| problems.push(format!("{} cannot be parsed: {e}", shown.display())))
        .ok()
}

/// Whether `only` selects profile `p`: its name (`etcd-server`), its base (`etcd/server`), or
/// [`super::ETCD_GROUP`] for every etcd certificate (init starts etcd before the rest exists).
fn matches_only(only: &str, p: &CertProfile) -> bool {
    only == p.name || only == p.base || (only == super::ETCD_GROUP && p.base.starts_with("etcd/"))
}

pub(super) fn check_names(
    spec: &ClusterSpec,
    profiles: &[CertProfile],
    opts: &PkiOptions,
) -> Result<(), PkiError> {
    if let Some(only) = &opts.only {
        if !profiles.iter().any(|p| matches_only(only, p)) {
            return Err(PkiError::UnknownName {
                field: "certificate",
                value: only.clone(),
                allowed: profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    if let Some((value, allowed)) = super::unknown_renew_name(spec, &opts.renew) {
        return Err(PkiError::UnknownName {
            field: "renew",
            value,
            allowed,
        });
    }
    Ok(())
}

pub(super) fn assess_ca(
    p: &CertProfile,
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<CaPlan, PkiError> {
    let cert_local = root.path(&p.cert_path);
    let key_local = root.path(&p.key_path);
    let cert_text = read(&cert_local)?;
    let key_text = read(&key_local)?;
    let cert = match (&cert_text, &key_text) {
        (None, None) => return Ok(CaPlan::Generate),
        (None, Some(_)) => {
            return Err(PkiError::CaKeyWithoutCert {
                key_path: key_local,
                cert_path: cert_local,
            })
        }
        (Some(c), _) => CertInfo::from_pem(c).map_err(PkiError::parse_failed(&cert_local))?,
    };
    let invalid = |reason: String| PkiError::CaInvalid {
        path: cert_local.clone(),
        reason,
    };
    if !cert.is_ca {
        return Err(invalid(
            "it is not a CA certificate (basicConstraints CA:FALSE)".into(),
        ));
    }
    if cert.not_after <= now {
        return Err(invalid(format!(
            "it expired on {}; rotate the CA deliberately, plinth never replaces a CA",
            fmt_time(cert.not_after)
        )));
    }
    match key_text {
        None => Ok(CaPlan::External { cert }),
        Some(k) => {
            let key = PrivateKey::from_pem(&k).map_err(PkiError::parse_failed(&key_local))?;
            if !cert.matches_key(&key) {
                return Err(PkiError::CaInvalid {
                    path: key_local,
                    reason: format!("it is not the key of {}", cert_local.display()),
                });
            }
            Ok(CaPlan::Reuse { cert, key })
        }
    }
}

/// Why an existing leaf cannot be kept (empty = valid), and its parsed key if usable.
fn assess_leaf(
    p: &CertProfile,
    ca_name: &str,
    ca: &CaPlan,
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<(bool, Vec<String>, Option<PrivateKey>), PkiError> {
    let cert_local = root.path(&p.cert_path);
    let key_local = root.path(&p.key_path);
    let cert_text = read(&cert_local)?;
    let key_text = read(&key_local)?;
    if cert_text.is_none() && key_text.is_none() {
        return Ok((true, Vec::new(), None));
    }
    let mut problems = Vec::new();
    let key = parse_or_note(
        key_text.as_deref(),
        &p.key_path,
        PrivateKey::from_pem,
        &mut problems,
    );
    let cert = parse_or_note(
        cert_text.as_deref(),
        &p.cert_path,
        CertInfo::from_pem,
        &mut problems,
    );
    if let Some(cert) = &cert {
        if let Some(k) = &key {
            if !cert.matches_key(k) {
                problems.push("its key does not match its certificate".into());
            }
        }
        match ca {
            CaPlan::Generate => problems.push(format!("its CA {ca_name:?} is being generated")),
            CaPlan::Reuse { cert: ca_cert, .. } | CaPlan::External { cert: ca_cert } => {
                if !cert.is_signed_by(ca_cert) {
                    problems.push(format!("it is not signed by the current {ca_name:?} CA"));
                }
            }
        }
        if cert.not_after <= now {
            problems.push(format!("it expired on {}", fmt_time(cert.not_after)));
        } else if cert.not_before > now + BACKDATE {
            problems.push(format!(
                "it is not valid before {}",
                fmt_time(cert.not_before)
            ));
        }
        problems.extend(identity_problems(p, cert));
        let missing = cert.missing_sans(&p.sans);
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
            problems.push(format!("its SANs no longer cover {}", list.join(", ")));
        }
    }
    Ok((false, problems, key))
}

/// The `sa` key pair: keep a readable key and re-derive `sa.pub` from it when it is missing or
/// does not match; no key means a new pair.
fn plan_sa(p: &CertProfile, root: &HostRoot) -> Result<ItemPlan, PkiError> {
    let key_local = root.path(&p.key_path);
    let pub_local = root.path(&p.cert_path);
    let Some(key_text) = read(&key_local)? else {
        return Ok(ItemPlan::fresh(p, root, PkiAction::Generated));
    };
    let key = PrivateKey::from_pem(&key_text).map_err(PkiError::parse_failed(&key_local))?;
    let reason = match read(&pub_local)? {
        None => Some(format!("{} is missing", p.cert_path.display())),
        Some(text) => (!public_key_matches(&text, &key)).then(|| {
            format!(
                "{} does not match {}",
                p.cert_path.display(),
                p.key_path.display()
            )
        }),
    };
    Ok(match reason {
        Some(reason) => ItemPlan::reissue(p, root, reason, Some(key)),
        None => ItemPlan::keep(
            p,
            root,
            PkiAction::Reused,
            &[(&p.key_path, MODE_KEY), (&p.cert_path, MODE_PRIVATE)],
        ),
    })
}

/// Whether the PEM public key `text` is the public half of `key`.
fn public_key_matches(text: &str, key: &PrivateKey) -> bool {
    super::pem::decode_first(text, &["PUBLIC KEY"])
        .ok()
        .and_then(|b| {
            use x509_parser::prelude::FromDer;
            x509_parser::x509::SubjectPublicKeyInfo::from_der(&b.der)
                .ok()
                .map(|(_, spki)| spki.subject_public_key.data.as_ref() == key.public_key_raw())
        })
        .unwrap_or(false)
}

/// Whether `opts.only` selects `p` (everything without `only`).
pub(super) fn selected(opts: &PkiOptions, p: &CertProfile) -> bool {
    opts.only.as_deref().is_none_or(|o| matches_only(o, p))
}

/// Assesses the CAs the selected profiles need. A CA that is needed only to sign a selected
/// leaf must exist.
pub(super) fn assess_cas(
    profiles: &[CertProfile],
    opts: &PkiOptions,
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<BTreeMap<String, CaPlan>, PkiError> {
    let mut cas = BTreeMap::new();
    for p in profiles.iter().filter(|p| p.kind == ProfileKind::Ca) {
        let needed = selected(opts, p)
            || profiles
                .iter()
                .any(|q| selected(opts, q) && q.ca.as_deref() == Some(p.name.as_str()));
        if !needed {
            continue;
        }
        let plan = assess_ca(p, root, now)?;
        if matches!(plan, CaPlan::Generate) && !selected(opts, p) {
            return Err(PkiError::CaMissing {
                ca: p.name.clone(),
                path: root.path(&p.cert_path),
            });
        }
        cas.insert(p.name.clone(), plan);
    }
    Ok(cas)
}

/// The plan of one selected profile, given the assessed CAs.
pub(super) fn plan_profile(
    p: &CertProfile,
    profiles: &[CertProfile],
    cas: &BTreeMap<String, CaPlan>,
    opts: &PkiOptions,
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<ItemPlan, PkiError> {
    match p.kind {
        ProfileKind::Ca => Ok(plan_ca(p, cas.get(&p.name), root)),
        ProfileKind::Keypair => plan_sa(p, root),
        ProfileKind::Leaf => plan_leaf(p, profiles, cas, opts, root, now),
    }
}

/// A CA is generated when absent and otherwise kept (its problems are errors in [`assess_ca`]).
fn plan_ca(p: &CertProfile, ca: Option<&CaPlan>, root: &HostRoot) -> ItemPlan {
    match ca {
        Some(CaPlan::Generate) | None => ItemPlan::fresh(p, root, PkiAction::Generated),
        Some(CaPlan::Reuse { .. }) => ItemPlan::keep(
            p,
            root,
            PkiAction::Reused,
            &[(&p.key_path, MODE_KEY), (&p.cert_path, MODE_CERT)],
        ),
        Some(CaPlan::External { .. }) => {
            ItemPlan::keep(p, root, PkiAction::ExternalCa, &[(&p.cert_path, MODE_CERT)])
        }
    }
}

/// A leaf: generated when absent, renewed on request, kept when valid, else re-issued with
/// the reasons. Under an external CA it must exist and be valid.
fn plan_leaf(
    p: &CertProfile,
    profiles: &[CertProfile],
    cas: &BTreeMap<String, CaPlan>,
    opts: &PkiOptions,
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<ItemPlan, PkiError> {
    let ca_name = p.ca.as_deref().unwrap_or_default();
    let Some(ca) = cas.get(ca_name) else {
        return Err(PkiError::Profiles(format!(
            "{}: unknown CA {ca_name:?}",
            p.name
        )));
    };
    let (missing, problems, key) = assess_leaf(p, ca_name, ca, root, now)?;
    let renew = opts.renew.includes(&p.name);
    if let CaPlan::External { .. } = ca {
        let ca_profile = profiles.iter().find(|c| c.name == ca_name);
        check_external_leaf(p, ca_profile, root, renew, missing, &problems)?;
    }
    Ok(if missing {
        ItemPlan::fresh(p, root, PkiAction::Generated)
    } else if renew {
        ItemPlan::fresh(p, root, PkiAction::Renewed)
    } else if problems.is_empty() {
        ItemPlan::keep(
            p,
            root,
            PkiAction::Reused,
            &[(&p.key_path, MODE_KEY), (&p.cert_path, MODE_CERT)],
        )
    } else {
        ItemPlan::reissue(p, root, problems.join("; "), key)
    })
}

/// External CA mode: plinth cannot sign, so a leaf must not be renewed and must exist valid.
fn check_external_leaf(
    p: &CertProfile,
    ca_profile: Option<&CertProfile>,
    root: &HostRoot,
    renew: bool,
    missing: bool,
    problems: &[String],
) -> Result<(), PkiError> {
    if renew {
        return Err(PkiError::ExternalCaRenew {
            name: p.name.clone(),
            ca_key_path: ca_profile
                .map(|c| root.path(&c.key_path))
                .unwrap_or_default(),
        });
    }
    if missing {
        return Err(PkiError::ExternalCaLeafMissing {
            path: root.path(&p.cert_path),
            ca_path: ca_profile
                .map(|c| root.path(&c.cert_path))
                .unwrap_or_default(),
        });
    }
    if !problems.is_empty() {
        return Err(PkiError::ExternalCaLeafInvalid {
            path: root.path(&p.cert_path),
            reason: problems.join("; "),
        });
    }
    Ok(())
}

/// Compares the PKI of `spec` with the files under `root` and says what [`PkiPlan::apply`]
/// would do. Reads, never writes. Errors name the file or option.
pub fn plan(spec: &ClusterSpec, root: &HostRoot, opts: &PkiOptions) -> Result<PkiPlan, PkiError> {
    let profiles = profile::resolve(spec).map_err(PkiError::Profiles)?;
    check_names(spec, &profiles, opts)?;
    let now = OffsetDateTime::now_utc();
    let cas = assess_cas(&profiles, opts, root, now)?;
    let items = profiles
        .iter()
        .filter(|p| selected(opts, p))
        .map(|p| plan_profile(p, &profiles, &cas, opts, root, now))
        .collect::<Result<Vec<_>, _>>()?;
    let cas = cas
        .into_iter()
        .filter_map(|(name, ca)| match ca {
            CaPlan::Reuse { cert, key } => Some((
                name,
                CaMaterial {
                    der: cert.der,
                    key: Some(key),
                },
            )),
            CaPlan::External { cert } => Some((
                name,
                CaMaterial {
                    der: cert.der,
                    key: None,
                },
            )),
            CaPlan::Generate => None,
        })
        .collect();
    Ok(PkiPlan {
        items,
        root: root.clone(),
        cas,
        key_algorithm: spec.key_algorithm,
        cert_validity: spec.cert_validity,
        ca_cert_validity: spec.ca_cert_validity,
        now,
    })
}

/// Brings the PKI under `spec.certificates_dir` (inside `root`) in line with `spec`: the
/// [`plan`], applied.
///
/// See the module docs for the rules. Errors name the file; on error nothing has been written.
pub fn reconcile(
    spec: &ClusterSpec,
    root: &HostRoot,
    opts: &PkiOptions,
) -> Result<PkiReport, PkiError> {
    plan(spec, root, opts)?.apply()
}

/// Inspects every certificate of `spec` on disk (not the `sa` key pair) for `plinth verify`
/// and `plinth certs check-expiration`. Missing files are reported, not errors.
pub fn inspect(spec: &ClusterSpec, root: &HostRoot) -> Result<Vec<CertStatus>, PkiError> {
    let profiles = profile::resolve(spec).map_err(PkiError::Profiles)?;
    let now = OffsetDateTime::now_utc();
    let mut ca_certs: BTreeMap<String, (Option<CertInfo>, bool)> = BTreeMap::new();
    let mut out = Vec::new();
    for p in &profiles {
        let local_cert = root.path(&p.cert_path);
        let local_key = root.path(&p.key_path);
        match p.kind {
            ProfileKind::Keypair => continue,
            ProfileKind::Ca => {
                let (st, cert) = inspect::inspect_profile(p, None, &local_cert, &local_key, now);
                ca_certs.insert(p.name.clone(), (cert, st.externally_managed));
                out.push(st);
            }
            ProfileKind::Leaf => {
                let ca_name = p.ca.clone().unwrap_or_default();
                let ca_profile = profiles.iter().find(|c| c.name == ca_name);
                let (ca_cert, ca_external) = ca_certs
                    .get(&ca_name)
                    .map(|(c, e)| (c.as_ref(), *e))
                    .unwrap_or((None, false));
                let (st, _) = match ca_profile {
                    Some(cp) => inspect::inspect_profile(
                        p,
                        Some((cp, ca_cert, ca_external)),
                        &local_cert,
                        &local_key,
                        now,
                    ),
                    None => {
                        return Err(PkiError::Profiles(format!(
                            "{}: unknown CA {ca_name:?}",
                            p.name
                        )))
                    }
                };
                out.push(st);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::issue::{self, IssueSpec};
    use super::super::{cert_names, PkiAction, PkiOptions, Renew};
    use super::*;
    use crate::config::{defaults_for, KeyAlgorithm};
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn spec() -> ClusterSpec {
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.key_algorithm = KeyAlgorithm::EcdsaP256;
        s
    }

    /// An empty temp root and the test spec.
    fn setup() -> (tempfile::TempDir, HostRoot, ClusterSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        (tmp, root, spec())
    }

    /// [`setup`] after a default run, with the local pki dir.
    fn rendered() -> (tempfile::TempDir, HostRoot, ClusterSpec, PathBuf) {
        let (tmp, root, s) = setup();
        run(&s, &root, &PkiOptions::default());
        let pki = tmp.path().join("etc/kubernetes/pki");
        (tmp, root, s, pki)
    }

    fn run(s: &ClusterSpec, root: &HostRoot, opts: &PkiOptions) -> PkiReport {
        reconcile(s, root, opts).unwrap()
    }

    /// The message of the error `reconcile` must fail with.
    fn failure(s: &ClusterSpec, root: &HostRoot, opts: &PkiOptions) -> String {
        reconcile(s, root, opts).unwrap_err().to_string()
    }

    /// The dry run: the plan's report, nothing applied.
    fn dry(s: &ClusterSpec, root: &HostRoot) -> PkiReport {
        crate::pki::plan(s, root, &PkiOptions::default())
            .unwrap()
            .report()
    }

    fn only(name: &str) -> PkiOptions {
        PkiOptions {
            only: Some(name.into()),
            ..Default::default()
        }
    }

    fn renew(renew: Renew) -> PkiOptions {
        PkiOptions {
            renew,
            ..Default::default()
        }
    }

    fn action<'a>(r: &'a PkiReport, name: &str) -> &'a PkiAction {
        &r.items.iter().find(|i| i.name == name).unwrap().action
    }

    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                    out.insert(p.clone(), (std::fs::read(&p).unwrap(), mode));
                }
            }
        }
        out
    }

    #[test]
    fn fresh_run_generates_everything_with_modes_then_reuses() {
        let (tmp, root, s) = setup();
        let r = run(&s, &root, &PkiOptions::default());
        assert_eq!(r.items.len(), 11);
        assert!(
            r.items.iter().all(|i| i.action == PkiAction::Generated),
            "{r:?}"
        );
        let lines = r.lines();
        assert_eq!(lines[0], "[certs] Generating \"ca\" certificate and key");
        assert!(lines.contains(&"[certs] Generating \"sa\" key and public key".to_string()));
        assert!(lines.iter().any(|l| l.starts_with(
            "[certs] apiserver serving cert is signed for DNS names [cp1 kubernetes kubernetes.default"
        )));
        let pki = tmp.path().join("etc/kubernetes/pki");
        assert_eq!(pfs::mode_of(&pki.join("ca.key")), Some(0o600));
        assert_eq!(pfs::mode_of(&pki.join("ca.crt")), Some(0o644));
        assert_eq!(pfs::mode_of(&pki.join("sa.pub")), Some(0o600));
        assert_eq!(pfs::mode_of(&pki.join("etcd/peer.key")), Some(0o600));
        assert_eq!(r.changed_files().len(), 22);
        let st = inspect(&s, &root).unwrap();
        assert_eq!(st.len(), 10);
        for c in &st {
            assert!(c.problems.is_empty(), "{}: {:?}", c.name, c.problems);
            assert!(c.chains_to_ca && c.key_matches && c.present);
        }

        let before = snapshot(tmp.path());
        let again = run(&s, &root, &PkiOptions::default());
        assert!(
            again.items.iter().all(|i| i.action == PkiAction::Reused),
            "{again:?}"
        );
        assert!(again.changed_files().is_empty());
        assert_eq!(snapshot(tmp.path()), before);
        assert_eq!(
            again.lines()[0],
            "[certs] Using existing ca certificate authority"
        );
        assert!(again
            .lines()
            .contains(&"[certs] Using existing apiserver certificate and key on disk".to_string()));
    }

    #[test]
    fn san_change_reissues_only_the_apiserver_and_keeps_its_key() {
        let (_tmp, root, mut s, pki) = rendered();
        let ca = std::fs::read(pki.join("ca.crt")).unwrap();
        let key = std::fs::read(pki.join("apiserver.key")).unwrap();
        s.api_server.cert_sans.push("10.0.0.100".into());
        let dry = dry(&s, &root);
        assert!(matches!(
            action(&dry, "apiserver"),
            PkiAction::WouldReissue { .. }
        ));
        let r = run(&s, &root, &PkiOptions::default());
        assert_eq!(
            action(&r, "apiserver"),
            &PkiAction::Reissued {
                reason: "its SANs no longer cover IP 10.0.0.100".into()
            }
        );
        assert!(r.lines().contains(
            &"[certs] Re-issuing \"apiserver\": its SANs no longer cover IP 10.0.0.100".to_string()
        ));
        assert_eq!(action(&r, "etcd-server"), &PkiAction::Reused);
        assert_eq!(std::fs::read(pki.join("ca.crt")).unwrap(), ca);
        assert_eq!(std::fs::read(pki.join("apiserver.key")).unwrap(), key);
        assert_eq!(
            r.changed_files(),
            [PathBuf::from("/etc/kubernetes/pki/apiserver.crt")]
        );
        let c = crate::pki::load_pem_cert(&pki.join("apiserver.crt")).unwrap();
        assert!(c.ips.contains(&"10.0.0.100".parse().unwrap()));
    }

    #[test]
    fn wrong_identity_foreign_ca_and_bad_key_are_reissued() {
        let (_tmp, root, s, pki) = rendered();
        // front-proxy-client signed by the wrong CA: swap in the kubelet client cert + key.
        std::fs::copy(
            pki.join("apiserver-kubelet-client.crt"),
            pki.join("front-proxy-client.crt"),
        )
        .unwrap();
        std::fs::copy(
            pki.join("apiserver-kubelet-client.key"),
            pki.join("front-proxy-client.key"),
        )
        .unwrap();
        // etcd healthcheck: key that does not match.
        std::fs::copy(
            pki.join("etcd/peer.key"),
            pki.join("etcd/healthcheck-client.key"),
        )
        .unwrap();
        let r = run(&s, &root, &PkiOptions::default());
        let PkiAction::Reissued { reason } = action(&r, "front-proxy-client") else {
            panic!("{r:?}")
        };
        assert!(
            reason.contains("not signed by the current \"front-proxy-ca\" CA"),
            "{reason}"
        );
        assert!(reason.contains("its CN is"), "{reason}");
        let PkiAction::Reissued { reason } = action(&r, "etcd-healthcheck-client") else {
            panic!("{r:?}")
        };
        assert!(reason.contains("key does not match"), "{reason}");
        assert!(inspect(&s, &root)
            .unwrap()
            .iter()
            .all(|c| c.problems.is_empty()));
    }

    #[test]
    fn loose_modes_are_tightened_and_reported() {
        let (_tmp, root, s, pki) = rendered();
        let key = pki.join("ca.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let dry = dry(&s, &root);
        assert!(
            dry.lines().iter().any(|l| l.contains(
                "Would tighten permissions of /etc/kubernetes/pki/ca.key from 0644 to 0600"
            )),
            "{:?}",
            dry.lines()
        );
        assert_eq!(pfs::mode_of(&key), Some(0o644));
        let r = run(&s, &root, &PkiOptions::default());
        let ca = r.items.iter().find(|i| i.name == "ca").unwrap();
        assert_eq!(ca.mode_fixed.len(), 1);
        assert_eq!(ca.mode_fixed[0].old, 0o644);
        assert_eq!(pfs::mode_of(&key), Some(0o600));
        assert_eq!(
            r.changed_files(),
            [PathBuf::from("/etc/kubernetes/pki/ca.key")]
        );
    }

    #[test]
    fn external_ca_mode_reuses_and_names_missing_leaves() {
        let (tmp, root, s, pki) = rendered();
        std::fs::remove_file(pki.join("ca.key")).unwrap();
        let r = run(&s, &root, &PkiOptions::default());
        assert_eq!(action(&r, "ca"), &PkiAction::ExternalCa);
        assert_eq!(action(&r, "apiserver"), &PkiAction::Reused);
        let st = inspect(&s, &root).unwrap();
        assert!(
            st.iter()
                .find(|c| c.name == "ca")
                .unwrap()
                .externally_managed
        );
        let e = reconcile(&s, &root, &renew(Renew::All)).unwrap_err();
        assert!(matches!(e, PkiError::ExternalCaRenew { .. }), "{e}");
        std::fs::remove_file(pki.join("apiserver.crt")).unwrap();
        std::fs::remove_file(pki.join("apiserver.key")).unwrap();
        let before = snapshot(tmp.path());
        let e = failure(&s, &root, &PkiOptions::default());
        assert!(e.contains("apiserver.crt"), "{e}");
        assert_eq!(snapshot(tmp.path()), before, "nothing written on error");
    }

    #[test]
    fn ca_problems_are_errors_naming_the_file() {
        let (_tmp, root, s, pki) = rendered();
        std::fs::copy(pki.join("etcd/ca.key"), pki.join("front-proxy-ca.key")).unwrap();
        let e = failure(&s, &root, &PkiOptions::default());
        assert!(
            e.contains("front-proxy-ca.key") && e.contains("not the key"),
            "{e}"
        );
        std::fs::remove_file(pki.join("front-proxy-ca.crt")).unwrap();
        let e = failure(&s, &root, &PkiOptions::default());
        assert!(
            e.contains("front-proxy-ca.crt") && e.contains("does not"),
            "{e}"
        );
        std::fs::write(pki.join("sa.key"), "junk").unwrap();
        std::fs::remove_file(pki.join("front-proxy-ca.key")).unwrap();
        let e = failure(&s, &root, &PkiOptions::default());
        assert!(e.contains("sa.key"), "{e}");
    }

    #[test]
    fn renew_only_and_dry_run() {
        let (tmp, root, s) = setup();
        // Dry run on an empty root: plans everything, writes nothing.
        let dry = dry(&s, &root);
        assert!(dry
            .items
            .iter()
            .all(|i| i.action == PkiAction::WouldGenerate));
        assert!(dry.lines()[0].starts_with("[certs] Would generate \"ca\""));
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        // A leaf alone needs its CA.
        let e = reconcile(&s, &root, &only("apiserver")).unwrap_err();
        assert!(matches!(e, PkiError::CaMissing { .. }), "{e}");
        let r = run(&s, &root, &only("ca"));
        assert_eq!(r.items.len(), 1);
        run(&s, &root, &only("etcd-ca"));
        let r = run(&s, &root, &only("etcd/server"));
        assert_eq!(
            r.items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["etcd-server"]
        );
        run(&s, &root, &PkiOptions::default());
        let pki = tmp.path().join("etc/kubernetes/pki");
        let old = std::fs::read(pki.join("etcd/server.key")).unwrap();
        let r = run(&s, &root, &renew(Renew::Names(vec!["etcd-server".into()])));
        assert_eq!(action(&r, "etcd-server"), &PkiAction::Renewed);
        assert_eq!(action(&r, "etcd-peer"), &PkiAction::Reused);
        assert_ne!(std::fs::read(pki.join("etcd/server.key")).unwrap(), old);
        let e = failure(&s, &root, &renew(Renew::Names(vec!["nope".into()])));
        assert!(
            e.contains("nope") && e.contains("apiserver-etcd-client"),
            "{e}"
        );
        let e = failure(&s, &root, &only("x"));
        assert!(e.contains("\"x\"") && e.contains("etcd-server"), "{e}");
        assert!(cert_names(&s).contains(&"admin.conf".to_string()));
        assert!(!cert_names(&s).contains(&"kubelet.conf".to_string()));
    }

    #[test]
    fn sa_pub_is_regenerated_from_the_existing_key() {
        let (_tmp, root, s, pki) = rendered();
        let key = std::fs::read(pki.join("sa.key")).unwrap();
        let pubk = std::fs::read(pki.join("sa.pub")).unwrap();
        std::fs::remove_file(pki.join("sa.pub")).unwrap();
        let r = run(&s, &root, &PkiOptions::default());
        assert!(matches!(action(&r, "sa"), PkiAction::Reissued { .. }));
        assert_eq!(std::fs::read(pki.join("sa.key")).unwrap(), key);
        assert_eq!(std::fs::read(pki.join("sa.pub")).unwrap(), pubk);
        assert_eq!(pfs::mode_of(&pki.join("sa.pub")), Some(0o600));
    }

    #[test]
    fn expired_and_not_yet_valid_leaves_are_reissued() {
        let (_tmp, root, s, pki) = rendered();
        let ca = crate::pki::load_pem_cert(&pki.join("ca.crt")).unwrap();
        let ca_key = crate::pki::load_pem_key(&pki.join("ca.key")).unwrap();
        let profiles = profile::resolve(&s).unwrap();
        let sign_at = |name: &str, at: OffsetDateTime| {
            let p = profiles.iter().find(|p| p.name == name).unwrap();
            let key = crate::pki::load_pem_key(&root.path(&p.key_path)).unwrap();
            let der = issue::signed(
                &IssueSpec::from(p),
                &key,
                &ca.der,
                &ca_key,
                s.cert_validity,
                at,
            )
            .unwrap();
            std::fs::write(
                root.path(&p.cert_path),
                super::super::pem::encode("CERTIFICATE", &der),
            )
            .unwrap();
        };
        let now = OffsetDateTime::now_utc();
        sign_at("apiserver", now - time::Duration::days(400));
        sign_at("apiserver-kubelet-client", now + time::Duration::days(2));
        let r = run(&s, &root, &PkiOptions::default());
        let PkiAction::Reissued { reason } = action(&r, "apiserver") else {
            panic!("{r:?}")
        };
        assert!(reason.starts_with("it expired on "), "{reason}");
        let PkiAction::Reissued { reason } = action(&r, "apiserver-kubelet-client") else {
            panic!("{r:?}")
        };
        assert!(reason.starts_with("it is not valid before "), "{reason}");
        let st = inspect(&s, &root).unwrap();
        assert!(st
            .iter()
            .all(|c| c.problems.is_empty() && c.residual > time::Duration::days(360)));
    }
}
