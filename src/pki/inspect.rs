//! Reading certificates back: the facts plinth checks before reusing a file (identity, usages,
//! SANs, validity, signature by the CA, key match) and the per-certificate status that
//! `plinth verify` and `plinth certs check-expiration` print.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::keys::{describe_public_key, PrivateKey};
use super::pem;
use super::profile::{CertProfile, ExtKeyUsage, KeyUsage, San};
use super::PkiError;
use crate::fs::FsError;

/// The facts of one parsed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Subject CommonName ("" if none).
    pub cn: String,
    /// Subject Organization values.
    pub organizations: Vec<String>,
    /// Issuer CommonName ("" if none).
    pub issuer_cn: String,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// BasicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Key usages plinth knows (digitalSignature, keyEncipherment, keyCertSign), in that order.
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages plinth knows (serverAuth, clientAuth), sorted.
    pub ext_key_usages: Vec<ExtKeyUsage>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Public key algorithm and size, e.g. `RSA-2048`, `ECDSA-P256`.
    pub key_algorithm: String,
    /// The raw subjectPublicKey bits (compare with [`PrivateKey::public_key_raw`]).
    pub public_key_raw: Vec<u8>,
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The PEM text is malformed or holds no certificate.
    #[error(transparent)]
    Pem(#[from] super::pem::PemError),
    /// The DER is not a certificate.
    #[error("not an X.509 certificate: {reason}")]
    NotX509 {
        /// What the parser says.
        reason: String,
    },
    /// An extension cannot be parsed.
    #[error("bad {extension}: {reason}")]
    Extension {
        /// `basicConstraints`, `keyUsage`, `extendedKeyUsage`, `subjectAltName`.
        extension: &'static str,
        /// What the parser says.
        reason: String,
    },
}

/// `map_err` adapter: an unparseable `extension`.
fn bad(extension: &'static str) -> impl FnOnce(x509_parser::error::X509Error) -> CertError {
    move |e| CertError::Extension {
        extension,
        reason: e.to_string(),
    }
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, CertError> {
        let (_, x) = X509Certificate::from_der(der).map_err(|e| CertError::NotX509 {
            reason: e.to_string(),
        })?;
        let name_strings =
            |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
                it.filter_map(|a| a.as_str().ok().map(str::to_string))
                    .collect::<Vec<_>>()
            };
        let cn = name_strings(&mut x.subject().iter_common_name())
            .into_iter()
            .next()
            .unwrap_or_default();
        let organizations = name_strings(&mut x.subject().iter_organization());
        let issuer_cn = name_strings(&mut x.issuer().iter_common_name())
            .into_iter()
            .next()
            .unwrap_or_default();
        let is_ca = x
            .basic_constraints()
            .map_err(bad("basicConstraints"))?
            .map(|b| b.value.ca)
            .unwrap_or(false);
        let mut key_usages = Vec::new();
        if let Some(ku) = x.key_usage().map_err(bad("keyUsage"))? {
            if ku.value.digital_signature() {
                key_usages.push(KeyUsage::DigitalSignature);
            }
            if ku.value.key_encipherment() {
                key_usages.push(KeyUsage::KeyEncipherment);
            }
            if ku.value.key_cert_sign() {
                key_usages.push(KeyUsage::KeyCertSign);
            }
        }
        let mut ext_key_usages = Vec::new();
        if let Some(eku) = x.extended_key_usage().map_err(bad("extendedKeyUsage"))? {
            if eku.value.server_auth {
                ext_key_usages.push(ExtKeyUsage::ServerAuth);
            }
            if eku.value.client_auth {
                ext_key_usages.push(ExtKeyUsage::ClientAuth);
            }
        }
        let mut dns_names = Vec::new();
        let mut ips = Vec::new();
        if let Some(san) = x
            .subject_alternative_name()
            .map_err(bad("subjectAltName"))?
        {
            for gn in &san.value.general_names {
                match gn {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            ips.push(IpAddr::from(a));
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            ips.push(IpAddr::from(a));
                        }
                    }
                    _ => {}
                }
            }
        }
        let spki = x.public_key();
        let public_key_raw = spki.subject_public_key.data.to_vec();
        let key_algorithm = spki_algorithm(spki.raw)
            .map(|alg| describe_public_key(alg, &public_key_raw))
            .unwrap_or_else(|| "unknown".into());
        Ok(CertInfo {
            der: der.to_vec(),
            cn,
            organizations,
            issuer_cn,
            not_before: x.validity().not_before.to_datetime(),
            not_after: x.validity().not_after.to_datetime(),
            is_ca,
            key_usages,
            ext_key_usages,
            dns_names,
            ips,
            key_algorithm,
            public_key_raw,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(text: &str) -> Result<CertInfo, CertError> {
        let block = pem::decode_first(text, &["CERTIFICATE"])?;
        CertInfo::from_der(&block.der)
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// True if `ca` issued this certificate: issuer name equals the CA's subject and the
    /// signature verifies with the CA's public key.
    pub fn is_signed_by(&self, ca: &CertInfo) -> bool {
        let (Ok((_, me)), Ok((_, issuer))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&ca.der),
        ) else {
            return false;
        };
        me.issuer().as_raw() == issuer.subject().as_raw()
            && me.verify_signature(Some(issuer.public_key())).is_ok()
    }

    /// True if `key` is this certificate's private key.
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        self.public_key_raw == key.public_key_raw()
    }

    /// True if the certificate lists `san`.
    pub fn covers(&self, san: &San) -> bool {
        match san {
            San::Dns(d) => self.dns_names.iter().any(|x| x.eq_ignore_ascii_case(d)),
            San::Ip(ip) => self.ips.contains(ip),
        }
    }

    /// The SANs of `want` this certificate lacks.
    pub fn missing_sans(&self, want: &[San]) -> Vec<San> {
        want.iter().filter(|s| !self.covers(s)).cloned().collect()
    }

    /// Time left until NotAfter (negative once expired).
    pub fn residual(&self, now: OffsetDateTime) -> time::Duration {
        self.not_after - now
    }
}

/// The rcgen signature algorithm that matches a SubjectPublicKeyInfo's key type (used only to
/// name the key: RSA vs the EC curves).
fn spki_algorithm(spki_der: &[u8]) -> Option<&'static rcgen::SignatureAlgorithm> {
    rcgen::SubjectPublicKeyInfo::from_der(spki_der)
        .ok()
        .map(|s| rcgen::PublicKeyData::algorithm(&s))
}

/// Reads the PEM text file at `path` and parses it with `parse`.
fn load_pem<T, E: std::fmt::Display>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, PkiError> {
    let text = std::fs::read_to_string(path).map_err(|e| FsError::io("read", path, e))?;
    parse(&text).map_err(PkiError::parse_failed(path))
}

/// Loads the first certificate of a PEM file (host path already root-prefixed).
pub fn load_pem_cert(path: &Path) -> Result<CertInfo, PkiError> {
    load_pem(path, CertInfo::from_pem)
}

/// Loads a PEM private key file (PKCS#1, SEC1 or PKCS#8).
pub fn load_pem_key(path: &Path) -> Result<PrivateKey, PkiError> {
    load_pem(path, PrivateKey::from_pem)
}

/// Status of one certificate on disk, for `plinth verify` and `plinth certs check-expiration`.
#[derive(Debug, Clone, PartialEq)]
pub struct CertStatus {
    /// Profile name (`ca`, `apiserver`, `etcd-server`, ...).
    pub name: String,
    /// kubeadm base name (`etcd/server`).
    pub base: String,
    /// Host path of the certificate.
    pub cert_path: PathBuf,
    /// Host path of the key.
    pub key_path: PathBuf,
    /// The signing CA's profile name (`None` for CAs).
    pub ca_name: Option<String>,
    /// True for CA certificates.
    pub is_ca: bool,
    /// False when the certificate file is missing or unreadable (see `problems`); the
    /// date fields are then the Unix epoch and every check is false.
    pub present: bool,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// Time left until NotAfter at inspection time (negative once expired).
    pub residual: time::Duration,
    /// The certificate is signed by its CA as on disk (CAs: self-signature verifies).
    pub chains_to_ca: bool,
    /// The key file exists and is this certificate's key (false for keyless external CAs).
    pub key_matches: bool,
    /// SANs the current config requires but the certificate lacks (`IP 10.0.0.100`).
    pub missing_sans: Vec<String>,
    /// A CA certificate whose key is absent (external CA mode), or a leaf signed by one.
    pub externally_managed: bool,
    /// Permission bits of the certificate file.
    pub mode: Option<u32>,
    /// Permission bits of the key file.
    pub key_mode: Option<u32>,
    /// Subject CN and O found, for display.
    pub subject: String,
    /// Key algorithm found (`RSA-2048`).
    pub key_algorithm: String,
    /// Every deviation from what plinth would issue, human-readable; empty = healthy.
    pub problems: Vec<String>,
}

/// Inspects one profile's files (not key pairs) against the profile and its CA.
pub(crate) fn inspect_profile(
    p: &CertProfile,
    ca: Option<(&CertProfile, Option<&CertInfo>, bool)>,
    local_cert: &Path,
    local_key: &Path,
    now: OffsetDateTime,
) -> (CertStatus, Option<CertInfo>) {
    let mut st = CertStatus {
        name: p.name.clone(),
        base: p.base.clone(),
        cert_path: p.cert_path.clone(),
        key_path: p.key_path.clone(),
        ca_name: p.ca.clone(),
        is_ca: p.is_ca,
        present: false,
        not_before: OffsetDateTime::UNIX_EPOCH,
        not_after: OffsetDateTime::UNIX_EPOCH,
        residual: OffsetDateTime::UNIX_EPOCH - now,
        chains_to_ca: false,
        key_matches: false,
        missing_sans: Vec::new(),
        externally_managed: false,
        mode: crate::fs::mode_of(local_cert),
        key_mode: crate::fs::mode_of(local_key),
        subject: String::new(),
        key_algorithm: String::new(),
        problems: Vec::new(),
    };
    let cert = match load_pem_cert(local_cert) {
        Ok(c) => c,
        Err(e) => {
            st.problems.push(if st.mode.is_none() {
                format!("{} is missing", p.cert_path.display())
            } else {
                e.to_string()
            });
            return (st, None);
        }
    };
    st.present = true;
    st.not_before = cert.not_before;
    st.not_after = cert.not_after;
    st.residual = cert.residual(now);
    st.key_algorithm = cert.key_algorithm.clone();
    st.subject = subject_string(&cert);
    let key = if st.key_mode.is_some() {
        match load_pem_key(local_key) {
            Ok(k) => Some(k),
            Err(e) => {
                st.problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    st.key_matches = key.as_ref().is_some_and(|k| cert.matches_key(k));
    if key.is_some() && !st.key_matches {
        st.problems
            .push("the key does not match the certificate".into());
    }
    match ca {
        None => {
            // A CA: self-signed; keyless = externally managed.
            st.chains_to_ca = cert.is_signed_by(&cert);
            st.externally_managed = st.key_mode.is_none();
            if !st.chains_to_ca {
                st.problems
                    .push("the CA certificate is not self-signed".into());
            }
        }
        Some((ca_profile, ca_cert, ca_external)) => {
            st.externally_managed = ca_external;
            st.chains_to_ca = ca_cert.is_some_and(|c| cert.is_signed_by(c));
            if !st.chains_to_ca {
                st.problems
                    .push(format!("it is not signed by the {:?} CA", ca_profile.base));
            }
            if st.key_mode.is_none() {
                st.problems
                    .push(format!("{} is missing", p.key_path.display()));
            }
        }
    }
    st.problems.extend(identity_problems(p, &cert));
    st.missing_sans = cert
        .missing_sans(&p.sans)
        .iter()
        .map(ToString::to_string)
        .collect();
    if !st.missing_sans.is_empty() {
        st.problems.push(format!(
            "its SANs no longer cover {}",
            st.missing_sans.join(", ")
        ));
    }
    if cert.not_after <= now {
        st.problems
            .push(format!("it expired on {}", fmt_time(cert.not_after)));
    }
    if cert.not_before > now + super::issue::BACKDATE {
        st.problems.push(format!(
            "it is not valid before {}",
            fmt_time(cert.not_before)
        ));
    }
    (st, Some(cert))
}

/// `O = a, CN = b`, like `openssl x509 -subject`.
pub(crate) fn subject_string(cert: &CertInfo) -> String {
    let mut parts: Vec<String> = cert
        .organizations
        .iter()
        .map(|o| format!("O = {o}"))
        .collect();
    parts.push(format!("CN = {}", cert.cn));
    parts.join(", ")
}

/// Differences between a certificate's identity/usages and its profile (SANs and dates aside).
pub(crate) fn identity_problems(p: &CertProfile, cert: &CertInfo) -> Vec<String> {
    let mut out = Vec::new();
    if cert.cn != p.cn {
        out.push(format!("its CN is {:?}, want {:?}", cert.cn, p.cn));
    }
    let mut have = cert.organizations.clone();
    let mut want = p.organizations.clone();
    have.sort();
    want.sort();
    if have != want {
        out.push(format!("its O is {have:?}, want {want:?}"));
    }
    if cert.is_ca != p.is_ca {
        out.push(if p.is_ca {
            "it is not a CA certificate".to_string()
        } else {
            "it is a CA certificate".to_string()
        });
    }
    let mut want_eku = p.ext_key_usages.clone();
    want_eku.sort();
    if !p.is_ca && cert.ext_key_usages != want_eku {
        let f = |v: &[ExtKeyUsage]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push(format!(
            "its extended key usages are [{}], want [{}]",
            f(&cert.ext_key_usages),
            f(&want_eku)
        ));
    }
    out
}

/// RFC 3339 UTC time for messages.
pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
