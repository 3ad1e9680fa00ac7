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
use super::profile::{self, CertProfile, ProfileKind, San};
use super::reconcile::{assess_ca, CaPlan};
use super::write::PendingWrite;
use super::{PkiAction, PkiError, PkiItem, PkiReport};
use crate::config::ClusterSpec;
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

/// Renews the selected leaf certificates under `root` (see the module docs). With `dry_run`
/// nothing is written and the report says what would be renewed.
pub fn renew(
    spec: &ClusterSpec,
    root: &HostRoot,
    selection: &Selection,
    dry_run: bool,
) -> Result<PkiReport, PkiError> {
    let profiles = profile::resolve(spec).map_err(PkiError::Profiles)?;
    let leaves: Vec<&CertProfile> = profiles
        .iter()
        .filter(|p| p.kind == ProfileKind::Leaf)
        .collect();
    let chosen: Vec<(&CertProfile, bool)> = match selection {
        Selection::All => leaves.iter().map(|p| (*p, false)).collect(),
        Selection::Names(names) => {
            let mut out = Vec::new();
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
                if !out
                    .iter()
                    .any(|(q, _): &(&CertProfile, bool)| q.name == p.name)
                {
                    out.push((*p, true));
                }
            }
            out
        }
    };
    let now = OffsetDateTime::now_utc();

    // Plan: read every existing certificate and its CA before anything is generated.
    struct Plan<'p> {
        p: &'p CertProfile,
        cert: CertInfo,
        ca_der: Vec<u8>,
        ca_key: keys::PrivateKey,
    }
    let mut plans = Vec::new();
    let mut items = Vec::new();
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
            items.push(PkiItem {
                name: p.name.clone(),
                base: p.base.clone(),
                kind: p.kind,
                cert_path: p.cert_path.clone(),
                key_path: p.key_path.clone(),
                action: PkiAction::Missing,
                mode_fixed: Vec::new(),
                written: Vec::new(),
                serving_sans: None,
            });
            continue;
        };
        let text = String::from_utf8(text).map_err(|_| PkiError::Parse {
            path: local.clone(),
            reason: "not a PEM text file".into(),
        })?;
        let cert = CertInfo::from_pem(&text).map_err(PkiError::parse_failed(&local))?;
        let ca_name = p.ca.as_deref().unwrap_or_default();
        let ca_profile = profiles
            .iter()
            .find(|c| c.name == ca_name)
            .ok_or_else(|| PkiError::Profiles(format!("{}: unknown CA {ca_name:?}", p.name)))?;
        let (ca_der, ca_key) = match assess_ca(ca_profile, root, now)? {
            CaPlan::Reuse { cert, key } => (cert.der, key),
            CaPlan::External { .. } => {
                return Err(PkiError::ExternalCaRenew {
                    name: p.name.clone(),
                    ca_key_path: root.path(&ca_profile.key_path),
                })
            }
            CaPlan::Generate => {
                return Err(PkiError::CaMissing {
                    ca: ca_name.to_string(),
                    path: root.path(&ca_profile.cert_path),
                })
            }
        };
        plans.push(Plan {
            p,
            cert,
            ca_der,
            ca_key,
        });
    }

    let mut fresh = if dry_run {
        Vec::new()
    } else {
        keys::generate_many(spec.key_algorithm, plans.len()).map_err(|reason| PkiError::Crypto {
            name: "keys".into(),
            reason,
        })?
    }
    .into_iter();
    let mut outputs: Vec<((usize, PathBuf), PendingWrite)> = Vec::new();
    let mut planned: Vec<PkiItem> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let p = plan.p;
        let sans = existing_sans(&plan.cert);
        if let Some(key) = fresh.next() {
            let issue_spec = IssueSpec {
                cn: &plan.cert.cn,
                organizations: &plan.cert.organizations,
                key_usages: &plan.cert.key_usages,
                ext_key_usages: &plan.cert.ext_key_usages,
                is_ca: false,
                sans: &sans,
            };
            let der = issue::signed(
                &issue_spec,
                &key,
                &plan.ca_der,
                &plan.ca_key,
                spec.cert_validity,
                now,
            )
            .map_err(|reason| PkiError::Crypto {
                name: p.name.clone(),
                reason,
            })?;
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
                        local: root.path(host),
                        content: content.into_bytes(),
                        mode,
                    },
                ));
            }
        }
        planned.push(PkiItem {
            name: p.name.clone(),
            base: p.base.clone(),
            kind: p.kind,
            cert_path: p.cert_path.clone(),
            key_path: p.key_path.clone(),
            action: if dry_run {
                PkiAction::WouldReissue {
                    reason: "renewal requested: new key, same subject, SANs and usages".into(),
                }
            } else {
                PkiAction::Renewed
            },
            mode_fixed: Vec::new(),
            written: Vec::new(),
            serving_sans: p.is_serving().then_some(sans),
        });
    }
    for (i, host) in super::write::write_tagged(outputs)? {
        planned[i].written.push(host);
    }
    items.extend(planned);
    Ok(PkiReport { items, dry_run })
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
        let r = renew(
            &other,
            &root,
            &Selection::Names(vec!["apiserver".into()]),
            false,
        )
        .unwrap();
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
            let r = renew(&spec, &root, &Selection::Names(vec![n.into()]), true).unwrap();
            assert_eq!(r.items.len(), 1);
            assert_eq!(r.items[0].name, "etcd-server");
            let lines = r.lines().join("\n");
            assert!(lines.contains("\"etcd-server\""), "{lines}");
            assert!(!lines.contains("etcd/server"), "{lines}");
        }
        let e = renew(&spec, &root, &Selection::Names(vec!["etcd".into()]), true).unwrap_err();
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
        let r = renew(&spec, &root, &Selection::All, false).unwrap();
        assert!(r.items.iter().any(|i| i.action == PkiAction::Missing));
        assert!(!gone.exists(), "renew does not create certificates");
        let e = renew(
            &spec,
            &root,
            &Selection::Names(vec!["front-proxy-client".into()]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("front-proxy-client.crt"), "{e}");
    }
}
