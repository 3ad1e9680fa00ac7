//! Private keys: generation (in parallel, since RSA key generation dominates render time),
//! PEM encoding in kubeadm's formats, and reading existing keys in any common format.
//!
//! Keys are written like kubeadm writes them: PKCS#1 `RSA PRIVATE KEY` for RSA and SEC1
//! `EC PRIVATE KEY` (with the named curve) for ECDSA. aws-lc-rs produces PKCS#8; the
//! conversion is a re-wrap of the same key material ([`super::pem::pkcs8_to_traditional`]).
//! Reading accepts PKCS#1, SEC1 and PKCS#8 (`PRIVATE KEY`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize};

use super::pem;
use crate::config::KeyAlgorithm;

/// Why a key could not be generated or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation failed.
    #[error("generating a {alg} key: {reason}")]
    Generate {
        /// The algorithm (`RSA-2048`, `ECDSA-P256`, ...).
        alg: &'static str,
        /// What failed.
        reason: String,
    },
    /// The PEM text is malformed or holds no private key.
    #[error(transparent)]
    Pem(#[from] pem::PemError),
    /// The key's format or algorithm is not supported.
    #[error("unsupported private key: {reason}")]
    Unsupported {
        /// What the parser says.
        reason: String,
    },
    /// An Ed25519 key.
    #[error("Ed25519 keys are not supported (Kubernetes expects RSA or ECDSA)")]
    Ed25519,
    /// A generator thread panicked.
    #[error("key generation worker panicked")]
    WorkerPanicked,
}

/// A private key (any of the supported algorithms), ready to sign.
#[derive(Debug)]
pub struct PrivateKey {
    pair: KeyPair,
}

impl PrivateKey {
    /// Generates a fresh key of `alg`.
    pub fn generate(alg: KeyAlgorithm) -> Result<PrivateKey, KeyError> {
        let pair = match alg {
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
        .map_err(|e| KeyError::Generate {
            alg: alg.kubeadm_name(),
            reason: e.to_string(),
        })?;
        Ok(PrivateKey { pair })
    }

    /// Parses a PEM private key: PKCS#1, SEC1 or PKCS#8 (unencrypted).
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        let block = pem::decode_first(text, &["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"])?;
        let der = rustls_pki_types_from(&block);
        let pair = KeyPair::try_from(&der).map_err(|e| KeyError::Unsupported {
            reason: e.to_string(),
        })?;
        if pair.algorithm() == &rcgen::PKCS_ED25519 {
            return Err(KeyError::Ed25519);
        }
        Ok(PrivateKey { pair })
    }

    /// The key in kubeadm's PEM format (PKCS#1 / SEC1; PKCS#8 for anything else).
    pub fn to_pem(&self) -> String {
        match pem::pkcs8_to_traditional(self.pair.serialized_der()) {
            Some((label, der)) => pem::encode(label, &der),
            None => pem::encode("PRIVATE KEY", self.pair.serialized_der()),
        }
    }

    /// The public key as a PEM `PUBLIC KEY` (PKIX SubjectPublicKeyInfo), as kubeadm's sa.pub.
    pub fn public_key_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.pair.subject_public_key_info())
    }

    /// The raw public key bits (RSAPublicKey DER or the EC point), as in a certificate's
    /// subjectPublicKey BIT STRING.
    pub fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key_raw()
    }

    /// Human-readable algorithm, e.g. `RSA-2048` or `ECDSA-P256` (kubeadm's spelling).
    pub fn algorithm_name(&self) -> String {
        describe_public_key(self.pair.algorithm(), self.pair.public_key_raw())
    }

    /// The key pair, for signing.
    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

fn rustls_pki_types_from(block: &pem::PemBlock) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
    match block.label.as_str() {
        "RSA PRIVATE KEY" => PrivatePkcs1KeyDer::from(block.der.clone()).into(),
        "EC PRIVATE KEY" => PrivateSec1KeyDer::from(block.der.clone()).into(),
        _ => PrivatePkcs8KeyDer::from(block.der.clone()).into(),
    }
}

/// Describes a public key: `RSA-<bits>`, `ECDSA-P256`, `ECDSA-P384`, ...
pub(crate) fn describe_public_key(alg: &rcgen::SignatureAlgorithm, raw: &[u8]) -> String {
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        "ECDSA-P256".into()
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        "ECDSA-P384".into()
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
        "ECDSA-P521".into()
    } else {
        match rsa_modulus_bits(raw) {
            Some(bits) => format!("RSA-{bits}"),
            None => "unknown".into(),
        }
    }
}

/// Bit length of the modulus of a DER `RSAPublicKey`.
pub(crate) fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let (seq, _) = pem::read_tlv(rsa_public_key)?;
    let (n, _) = pem::read_tlv(seq.content)?;
    let bytes = n.content;
    let first = bytes.iter().position(|b| *b != 0)?;
    let lead = bytes[first];
    Some((bytes.len() - first - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

/// Generates `count` keys of `alg` using every available core (work-stealing over an atomic
/// counter, since RSA prime search time varies a lot from key to key).
pub fn generate_many(alg: KeyAlgorithm, count: usize) -> Result<Vec<PrivateKey>, KeyError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(count);
    if workers <= 1 {
        return (0..count).map(|_| PrivateKey::generate(alg)).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<PrivateKey, KeyError>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let key = PrivateKey::generate(alg);
                if let Ok(mut guard) = slots.lock() {
                    guard[i] = Some(key);
                }
            });
        }
    });
    let slots = slots.into_inner().map_err(|_| KeyError::WorkerPanicked)?;
    slots
        .into_iter()
        .map(|k| k.unwrap_or(Err(KeyError::WorkerPanicked)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_keys_are_written_as_sec1_and_read_back() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{pem}");
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key_raw(), k.public_key_raw());
        assert_eq!(back.algorithm_name(), "ECDSA-P256");
        let k384 = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let back = PrivateKey::from_pem(&k384.to_pem()).unwrap();
        assert_eq!(back.algorithm_name(), "ECDSA-P384");
        assert_eq!(back.public_key_raw(), k384.public_key_raw());
    }

    #[test]
    fn rsa_keys_are_written_as_pkcs1_and_read_back_in_every_format() {
        let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
        assert_eq!(k.algorithm_name(), "RSA-2048");
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key_raw(), k.public_key_raw());
        // PKCS#8 is accepted too.
        let pkcs8 = pem::encode("PRIVATE KEY", k.pair().serialized_der());
        let back8 = PrivateKey::from_pem(&pkcs8).unwrap();
        assert_eq!(back8.public_key_raw(), k.public_key_raw());
        assert!(k.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn garbage_keys_are_rejected() {
        assert!(PrivateKey::from_pem("hello").is_err());
        let bogus = pem::encode("RSA PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(PrivateKey::from_pem(&bogus).is_err());
    }

    #[test]
    fn generate_many_returns_distinct_keys() {
        let keys = generate_many(KeyAlgorithm::EcdsaP256, 5).unwrap();
        assert_eq!(keys.len(), 5);
        let mut raws: Vec<_> = keys.iter().map(|k| k.public_key_raw().to_vec()).collect();
        raws.sort();
        raws.dedup();
        assert_eq!(raws.len(), 5);
        assert!(generate_many(KeyAlgorithm::EcdsaP256, 0)
            .unwrap()
            .is_empty());
    }
}
