//! Issuing certificates with rcgen from a resolved [`CertProfile`]: subject (O before CN, as Go
//! encodes it), validity (NotBefore backdated 5 minutes), a random 128-bit serial, key usages,
//! basic constraints, SANs, and the authority key identifier on leaves.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::keys::PrivateKey;
use super::profile::{CertProfile, ExtKeyUsage, KeyUsage, San};

/// How far NotBefore is backdated to tolerate small clock differences (kubeadm's value).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The subject and usages of a certificate to issue (a profile, or a kubeconfig identity).
#[derive(Debug, Clone)]
pub(crate) struct IssueSpec<'a> {
    pub cn: &'a str,
    pub organizations: &'a [String],
    pub key_usages: &'a [KeyUsage],
    pub ext_key_usages: &'a [ExtKeyUsage],
    pub is_ca: bool,
    pub sans: &'a [San],
}

impl<'a> From<&'a CertProfile> for IssueSpec<'a> {
    fn from(p: &'a CertProfile) -> Self {
        IssueSpec {
            cn: &p.cn,
            organizations: &p.organizations,
            key_usages: &p.key_usages,
            ext_key_usages: &p.ext_key_usages,
            is_ca: p.is_ca,
            sans: &p.sans,
        }
    }
}

/// 16 random bytes with the high bit cleared: a positive 127-bit serial (RFC 5280 allows 20).
fn random_serial() -> Result<SerialNumber, String> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    buf[0] &= 0x7f;
    if buf[0] == 0 {
        // Keep the DER INTEGER at full length and never zero.
        buf[0] = 0x01;
    }
    Ok(SerialNumber::from_slice(&buf))
}

/// A DN value encoded like Go's `pkix.Name`: PrintableString when the value allows, else UTF8.
fn dn_value(s: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(s) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(s.to_string()),
    }
}

fn params(
    spec: &IssueSpec<'_>,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    for o in spec.organizations {
        dn.push(DnType::OrganizationName, dn_value(o));
    }
    dn.push(DnType::CommonName, dn_value(spec.cn));
    p.distinguished_name = dn;
    p.not_before = now - BACKDATE;
    p.not_after = now + validity;
    p.serial_number = Some(random_serial()?);
    p.key_usages = spec
        .key_usages
        .iter()
        .map(|k| match k {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
        })
        .collect();
    p.extended_key_usages = spec
        .ext_key_usages
        .iter()
        .map(|e| match e {
            ExtKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect();
    p.is_ca = if spec.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    p.subject_alt_names = spec
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(d) => rcgen::string::Ia5String::try_from(d.as_str())
                .map(SanType::DnsName)
                .map_err(|e| format!("SAN {d:?}: {e}")),
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;
    p.use_authority_key_identifier_extension = !spec.is_ca;
    Ok(p)
}

/// Issues a self-signed CA certificate; returns its DER.
pub(crate) fn self_signed(
    spec: &IssueSpec<'_>,
    key: &PrivateKey,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<Vec<u8>, String> {
    let p = params(spec, validity, now)?;
    let cert = p.self_signed(key.pair()).map_err(|e| e.to_string())?;
    Ok(cert.der().to_vec())
}

/// Issues a certificate for `key` signed by the CA (`ca_der`, `ca_key`); returns its DER.
/// The issuer name is taken byte-for-byte from the CA certificate, so chains verify with
/// OpenSSL and Go alike, also for CAs plinth did not create.
pub(crate) fn signed(
    spec: &IssueSpec<'_>,
    key: &PrivateKey,
    ca_der: &[u8],
    ca_key: &PrivateKey,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<Vec<u8>, String> {
    let p = params(spec, validity, now)?;
    let issuer = Issuer::from_ca_cert_der(&ca_der.to_vec().into(), ca_key.pair())
        .map_err(|e| format!("reading the CA certificate: {e}"))?;
    let cert = p
        .signed_by(key.pair(), &issuer)
        .map_err(|e| e.to_string())?;
    Ok(cert.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_random_positive_and_16_bytes() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_eq!(a.len(), 16);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn printable_when_possible() {
        assert!(matches!(
            dn_value("system:masters"),
            DnValue::PrintableString(_)
        ));
        assert!(matches!(dn_value("a_b"), DnValue::Utf8String(_)));
    }
}
