//! `plinth certs renew` for certificates: re-sign what is on disk, never re-derive it.
//!
//! As `kubeadm certs renew` does, a renewal keeps each existing certificate's identity — its
//! subject (O and CN), SANs, key usages and extended key usages are read from the certificate
//! file — and signs it again with its CA, with a new serial and a new validity period
//! (`certificateValidityPeriod` of the persisted configuration). The configuration only says
//! where the files and CAs are and how long the new certificate lives; the advertise address,
//! node name or extra SANs in it never change a renewed certificate. Making the SANs match the
//! configuration is `plinth init`'s job (it names every re-issued certificate and why).
//!
//! The private key is replaced, as kubeadm does (`NewCertAndKey`): a renewal is also how an
//! operator rotates a key, and nothing in the cluster pins a leaf's public key. The new key
//! has the configured `keyAlgorithm`.
//!
//! Only the named certificates are touched; nothing is written until every one is signed.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::inspect::CertInfo;
use super::issue::{self, IssueSpec};
use super::keys;
use super::plan::FilePlan;
use super::profile::{self, CertProfile, ProfileKind, San};
use super::reconcile::{assess_ca, CaPlan};
use super::write::PendingWrite;
use super::{PkiAction, PkiError, PkiItem, PkiReport};
use crate::config::{ClusterSpec, KeyAlgorithm};
use crate::fs::{self as pfs, HostRoot, MODE_CERT, MODE_KEY};

/// Which certificates [`renew`] re-signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every leaf certificate that exists (missing ones are reported and skipped, as kubeadm's
    /// `renew all` prints `MISSING!`).
    All,
    /// These certificates (names or base names, see [`super::canonical_cert_name`]); each
    /// must exist.
    Names(Vec<String>),
}

/// The SANs of an existing certificate, in its order (DNS names first, as plinth issues them).
fn existing_sans(cert: &CertInfo) -> Vec<San> {
    let mut out: Vec<San> = cert.dns_names.iter().cloned().map(San::Dns).collect();
    out.extend(cert.ips.iter().copied().map(San::Ip));
    out
}

/// One certificate to renew: its profile, the existing certificate whose identity is kept,
/// and its CA.
#[derive(Debug)]
struct Renewal {
    profile: CertProfile,
    cert: CertInfo,
    ca_der: Vec<u8>,
    ca_key: keys::PrivateKey,
}

/// What [`RenewPlan::apply`] will do: re-sign each selected certificate that exists with a
/// new key (both files replaced); the missing ones of `renew all` are only reported.
#[derive(Debug)]
pub struct RenewPlan {
    /// Every file the renewal writes (key 0600, certificate 0644), in order.
    pub files: Vec<FilePlan>,
    /// `renew all`: certificates that do not exist (reported `MISSING!`, nothing written).
    missing: Vec<PkiItem>,
    renewals: Vec<Renewal>,
    root: HostRoot,
    key_algorithm: KeyAlgorithm,
    cert_validity: std::time::Duration,
    now: OffsetDateTime,
}

/// The certificates `selection` names (each `true` when it must exist).
fn choose<'p>(
    leaves: &[&'p CertProfile],
    selection: &Selection,
) -> Result<Vec<(&'p CertProfile, bool)>, PkiError> {
    let Selection::Names(names) = selection else {
        return Ok(leaves.iter().map(|p| (*p, false)).collect());
    };
    let mut out: Vec<(&CertProfile, bool)> = Vec::new();
    for n in names {
        let Some(p) = leaves.iter().find(|p| p.name == *n || p.base == *n) else {
            return Err(PkiError::UnknownName {
                field: "certificate",
                value: n.clone(),
                allowed: leaves
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if !out.iter().any(|(q, _)| q.name == p.name) {
            out.push((*p, true));
        }
    }
    Ok(out)
}

/// The report entry of `p` with `action`.
fn item(p: &CertProfile, action: PkiAction, serving_sans: Option<Vec<San>>) -> PkiItem {
    PkiItem {
        name: p.name.clone(),
        base: p.base.clone(),
        kind: p.kind,
        cert_path: p.cert_path.clone(),
        key_path: p.key_path.clone(),
        action,
        mode_fixed: Vec::new(),
        written: Vec::new(),
        serving_sans,
    }
}

/// The usable CA of `p` (its certificate DER and key): external and missing CAs are errors.
fn signing_ca(
    p: &CertProfile,
    profiles: &[CertProfile],
    root: &HostRoot,
    now: OffsetDateTime,
) -> Result<(Vec<u8>, keys::PrivateKey), PkiError> {
    let ca_name = p.ca.as_deref().unwrap_or_default();
    let ca_profile = profiles
        .iter()
        .find(|c| c.name == ca_name)
        .ok_or_else(|| PkiError::Profiles(format!("{}: unknown CA {ca_name:?}", p.name)))?;
    match assess_ca(ca_profile, root, now)? {
        CaPlan::Reuse { cert, key } => Ok((cert.der, key)),
        CaPlan::External { .. } => Err(PkiError::ExternalCaRenew {
            name: p.name.clone(),
            ca_key_path: root.path(&ca_profile.key_path),
        }),
        CaPlan::Generate => Err(PkiError::CaMissing {
            ca: ca_name.to_string(),
            path: root.path(&ca_profile.cert_path),
        }),
    }
}

/// Reads every selected certificate and its CA (see the module docs); writes nothing.
pub fn plan(
    spec: &ClusterSpec,
    root: &HostRoot,
    selection: &Selection,
) -> Result<RenewPlan, PkiError> {
    let profiles = profile::resolve(spec).map_err(PkiError::Profiles)?;
    let leaves: Vec<&CertProfile> = profiles
        .iter()
        .filter(|p| p.kind == ProfileKind::Leaf)
        .collect();
    let chosen = choose(&leaves, selection)?;
    let now = OffsetDateTime::now_utc();
    let mut renewals = Vec::new();
    let mut missing = Vec::new();
    for (p, required) in chosen {
        let local = root.path(&p.cert_path);
        let Some(text) = pfs::read_optional(&local)? else {
            if required {
                return Err(PkiError::Parse {
                    path: local,
                    reason: format!(
                        "there is no {:?} certificate to renew; create it with `plinth init` \
                         (renew keeps an existing certificate's identity, it does not make one)",
                        p.name
                    ),
                });
            }
            missing.push(item(p, PkiAction::Missing, None));
            continue;
        };
        let text = String::from_utf8(text).map_err(|_| PkiError::Parse {
            path: local.clone(),
            reason: "not a PEM text file".into(),
        })?;
        let cert = CertInfo::from_pem(&text).map_err(PkiError::parse_failed(&local))?;
        let (ca_der, ca_key) = signing_ca(p, &profiles, root, now)?;
        renewals.push(Renewal {
            profile: p.clone(),
            cert,
            ca_der,
            ca_key,
        });
    }
    let files = renewals
        .iter()
        .flat_map(|r| {
            [
                (&r.profile.key_path, MODE_KEY),
                (&r.profile.cert_path, MODE_CERT),
            ]
        })
        .map(|(host, mode)| FilePlan::write(root, host, mode, RENEWAL))
        .collect();
    Ok(RenewPlan {
        files,
        missing,
        renewals,
        root: root.clone(),
        key_algorithm: spec.key_algorithm,
        cert_validity: spec.cert_validity,
        now,
    })
}

/// Why a renewed certificate is replaced.
const RENEWAL: &str = "renewal requested: new key, same subject, SANs and usages";

impl RenewPlan {
    /// The dry-run report: what [`RenewPlan::apply`] would renew, nothing written.
    pub fn report(&self) -> PkiReport {
        let mut items = self.missing.clone();
        items.extend(self.renewals.iter().map(|r| {
            item(
                &r.profile,
                PkiAction::WouldReissue {
                    reason: RENEWAL.into(),
                },
                r.profile.is_serving().then(|| existing_sans(&r.cert)),
            )
        }));
        PkiReport {
            items,
            dry_run: true,
        }
    }

    /// New keys in parallel, every certificate re-signed, then one atomic batch of writes.
    pub fn apply(self) -> Result<PkiReport, PkiError> {
        let fresh = keys::generate_many(self.key_algorithm, self.renewals.len()).map_err(|e| {
            PkiError::Crypto {
                name: "keys".into(),
                reason: e.to_string(),
            }
        })?;
        let mut outputs: Vec<((usize, PathBuf), PendingWrite)> = Vec::new();
        let mut planned: Vec<PkiItem> = Vec::new();
        for (i, (r, key)) in self.renewals.iter().zip(fresh).enumerate() {
            let p = &r.profile;
            let sans = existing_sans(&r.cert);
            let der = self.sign(r, &key, &sans)?;
            for (host, content, mode) in [
                (&p.key_path, key.to_pem(), MODE_KEY),
                (
                    &p.cert_path,
                    super::pem::encode("CERTIFICATE", &der),
                    MODE_CERT,
                ),
            ] {
                outputs.push((
                    (i, host.clone()),
                    PendingWrite {
                        local: self.root.path(host),
                        content: content.into_bytes(),
                        mode,
                    },
                ));
            }
            planned.push(item(p, PkiAction::Renewed, p.is_serving().then_some(sans)));
        }
        for (i, host) in super::write::write_tagged(outputs)? {
            planned[i].written.push(host);
        }
        let mut items = self.missing;
        items.extend(planned);
        Ok(PkiReport {
            items,
            dry_run: false,
        })
    }

    /// Re-signs `r`'s certificate for `key`, keeping its subject, SANs and usages.
    fn sign(&self, r: &Renewal, key: &keys::PrivateKey, sans: &[San]) -> Result<Vec<u8>, PkiError> {
        let issue_spec = IssueSpec {
            cn: &r.cert.cn,
            organizations: &r.cert.organizations,
            key_usages: &r.cert.key_usages,
            ext_key_usages: &r.cert.ext_key_usages,
            is_ca: false,
            sans,
        };
        issue::signed(
            &issue_spec,
            key,
            &r.ca_der,
            &r.ca_key,
            self.cert_validity,
            self.now,
        )
        .map_err(|reason| PkiError::Crypto {
            name: r.profile.name.clone(),
            reason,
        })
    }
}

/// Renews the selected leaf certificates under `root` (see the module docs): the [`plan`],
/// applied.
pub fn renew(
    spec: &ClusterSpec,
    root: &HostRoot,
    selection: &Selection,
) -> Result<PkiReport, PkiError> {
    plan(spec, root, selection)?.apply()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::pki::{reconcile, PkiOptions};

    /// The facts a renewal must keep, as raw DER: subject, SANs, key usage, extended key usage.
    fn identity(der: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (_, x) = X509Certificate::from_der(der).unwrap();
        let mut exts: Vec<Vec<u8>> = x
            .extensions()
            .iter()
            .filter(|e| {
                let oid = e.oid.to_id_string();
                // subjectAltName, keyUsage, extKeyUsage, basicConstraints
                ["2.5.29.17", "2.5.29.15", "2.5.29.37", "2.5.29.19"].contains(&oid.as_str())
            })
            .map(|e| [e.oid.as_bytes(), e.value].concat())
            .collect();
        exts.sort();
        (x.subject().as_raw().to_vec(), exts)
    }

    fn der(root: &HostRoot, host: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(root.path(host)).unwrap();
        super::super::pem::decode_first(&text, &["CERTIFICATE"])
            .unwrap()
            .der
    }

    #[test]
    fn renew_keeps_subject_sans_and_usages() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut init_spec = crate::config::defaults_for("cp1", "192.168.10.5".parse().unwrap());
        init_spec.api_server.cert_sans = vec!["api.example.com".into()];
        init_spec.cert_validity = Duration::from_secs(86400);
        reconcile(&init_spec, &root, &PkiOptions::default()).unwrap();
        let crt = "/etc/kubernetes/pki/apiserver.crt";
        let key = "/etc/kubernetes/pki/apiserver.key";
        let old_der = der(&root, crt);
        let old_key = std::fs::read(root.path(key)).unwrap();
        let old = CertInfo::from_der(&old_der).unwrap();

        // A configuration that would give other SANs and another CN to an issued
        // certificate: the renewal must not care.
        let mut other = crate::config::defaults_for("otherhost", "10.1.2.3".parse().unwrap());
        other.cert_validity = Duration::from_secs(365 * 86400);
        let r = renew(&other, &root, &Selection::Names(vec!["apiserver".into()])).unwrap();
        assert_eq!(r.items.len(), 1, "{:?}", r.items);
        assert_eq!(r.items[0].action, PkiAction::Renewed);

        let new_der = der(&root, crt);
        let new = CertInfo::from_der(&new_der).unwrap();
        assert_eq!(identity(&new_der), identity(&old_der), "identity changed");
        assert_eq!(new.cn, "kube-apiserver");
        assert!(new.dns_names.contains(&"cp1".to_string()), "{new:?}");
        assert!(new.dns_names.contains(&"api.example.com".to_string()));
        assert!(!new.dns_names.contains(&"otherhost".to_string()));
        assert_eq!((&new.dns_names, &new.ips), (&old.dns_names, &old.ips));
        assert_eq!(new.key_usages, old.key_usages);
        assert!(!new.key_usages.is_empty());
        assert_eq!(new.ext_key_usages, old.ext_key_usages);
        // New key (as kubeadm), new serial, validity from the configuration, same CA.
        let new_key = std::fs::read(root.path(key)).unwrap();
        assert_ne!(new_key, old_key, "the key is rotated");
        let pk = keys::PrivateKey::from_pem(std::str::from_utf8(&new_key).unwrap()).unwrap();
        assert!(new.matches_key(&pk));
        let serial = |d: &[u8]| {
            X509Certificate::from_der(d)
                .unwrap()
                .1
                .raw_serial()
                .to_vec()
        };
        assert_ne!(serial(&new_der), serial(&old_der));
        assert!(new.not_after > old.not_after + time::Duration::days(300));
        assert!(new.not_before >= old.not_before);
        let ca = CertInfo::from_der(&der(&root, "/etc/kubernetes/pki/ca.crt")).unwrap();
        assert!(new.is_signed_by(&ca));
        assert_eq!(crate::fs::mode_of(&root.path(key)), Some(MODE_KEY));
        assert_eq!(crate::fs::mode_of(&root.path(crt)), Some(MODE_CERT));
    }

    #[test]
    fn renew_accepts_both_spellings_and_reports_one() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let spec = crate::config::defaults_for("cp1", "192.168.10.5".parse().unwrap());
        reconcile(&spec, &root, &PkiOptions::default()).unwrap();
        for n in ["etcd/server", "etcd-server"] {
            let r = plan(&spec, &root, &Selection::Names(vec![n.into()]))
                .unwrap()
                .report();
            assert_eq!(r.items.len(), 1);
            assert_eq!(r.items[0].name, "etcd-server");
            let lines = r.lines().join("\n");
            assert!(lines.contains("\"etcd-server\""), "{lines}");
            assert!(!lines.contains("etcd/server"), "{lines}");
        }
        let e = plan(&spec, &root, &Selection::Names(vec!["etcd".into()])).unwrap_err();
        assert!(e.to_string().contains("etcd-server"), "{e}");
    }

    #[test]
    fn renew_all_skips_a_missing_certificate_and_names_a_missing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let spec = crate::config::defaults_for("cp1", "192.168.10.5".parse().unwrap());
        reconcile(&spec, &root, &PkiOptions::default()).unwrap();
        let gone = root.path("/etc/kubernetes/pki/front-proxy-client.crt");
        std::fs::remove_file(&gone).unwrap();
        let r = renew(&spec, &root, &Selection::All).unwrap();
        assert!(r.items.iter().any(|i| i.action == PkiAction::Missing));
        assert!(!gone.exists(), "renew does not create certificates");
        let e = renew(
            &spec,
            &root,
            &Selection::Names(vec!["front-proxy-client".into()]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("front-proxy-client.crt"), "{e}");
    }
}
