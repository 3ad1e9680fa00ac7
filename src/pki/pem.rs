//! Minimal PEM and DER plumbing: encode/decode PEM blocks, and re-wrap PKCS#8 private keys as
//! the "traditional" PKCS#1 (`RSA PRIVATE KEY`) / SEC1 (`EC PRIVATE KEY`) forms kubeadm writes.

use base64::Engine;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label between `BEGIN ` and the dashes, e.g. `CERTIFICATE`.
    pub label: String,
    /// The decoded DER bytes.
    pub der: Vec<u8>,
}

/// A malformed PEM text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// RFC 1421 headers (e.g. an encrypted key): not supported.
    #[error("PEM block {label:?} has headers (encrypted?)")]
    Headers {
        /// The block's label.
        label: String,
    },
    /// No END line.
    #[error("PEM block {label:?} is not terminated")]
    Unterminated {
        /// The block's label.
        label: String,
    },
    /// The body is not base64.
    #[error("PEM block {label:?} is not valid base64: {reason}")]
    Base64 {
        /// The block's label.
        label: String,
        /// What the decoder says.
        reason: String,
    },
    /// No block with a wanted label.
    #[error("no PEM block of type {wanted}")]
    Missing {
        /// The wanted labels, `or`-joined.
        wanted: String,
    },
}

/// Encodes `der` as a PEM block with 64-column base64 lines and a trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes every PEM block in `text`, in order. Text outside blocks is ignored (as OpenSSL and
/// Go do). Errors describe what is malformed.
pub fn decode_all(text: &str) -> Result<Vec<PemBlock>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                // RFC 1421 headers (e.g. encrypted keys): not supported.
                return Err(PemError::Headers {
                    label: label.to_string(),
                });
            }
            body.push_str(l);
        }
        if !closed {
            return Err(PemError::Unterminated {
                label: label.to_string(),
            });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PemError::Base64 {
                label: label.to_string(),
                reason: e.to_string(),
            })?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(blocks)
}

/// The first PEM block whose label is one of `labels`.
pub fn decode_first(text: &str, labels: &[&str]) -> Result<PemBlock, PemError> {
    decode_all(text)?
        .into_iter()
        .find(|b| labels.contains(&b.label.as_str()))
        .ok_or_else(|| PemError::Missing {
            wanted: labels.join(" or "),
        })
}

// ---- DER ------------------------------------------------------------------------------------

/// One DER element: tag byte, the whole encoding, and the content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub whole: &'a [u8],
    pub content: &'a [u8],
}

/// Reads one DER element from the front of `buf`; returns it and the rest.
pub(crate) fn read_tlv(buf: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *buf.first()?;
    let first = *buf.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    Some((
        Tlv {
            tag,
            whole: &buf[..end],
            content: &buf[hdr..end],
        },
        &buf[end..],
    ))
}

/// All DER elements inside `content` (the content of a SEQUENCE).
pub(crate) fn read_all(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// Encodes one DER element.
pub(crate) fn write_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_CTX0: u8 = 0xa0;
/// 1.2.840.113549.1.1.1 rsaEncryption.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1 id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Converts a PKCS#8 `PrivateKeyInfo` into the traditional form: PKCS#1 `RSAPrivateKey` for RSA
/// (`RSA PRIVATE KEY`), SEC1 `ECPrivateKey` with the named curve for EC (`EC PRIVATE KEY`).
/// Returns `None` for other algorithms or malformed input.
pub(crate) fn pkcs8_to_traditional(pkcs8: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    let (outer, _) = read_tlv(pkcs8)?;
    if outer.tag != TAG_SEQUENCE {
        return None;
    }
    let parts = read_all(outer.content)?;
    let alg = parts.get(1).filter(|t| t.tag == TAG_SEQUENCE)?;
    let key = parts.get(2).filter(|t| t.tag == TAG_OCTET_STRING)?;
    let alg_parts = read_all(alg.content)?;
    let oid = alg_parts.first().filter(|t| t.tag == TAG_OID)?;
    if oid.content == OID_RSA_ENCRYPTION {
        return Some(("RSA PRIVATE KEY", key.content.to_vec()));
    }
    if oid.content == OID_EC_PUBLIC_KEY {
        let curve = alg_parts.get(1).filter(|t| t.tag == TAG_OID)?;
        let (ec, _) = read_tlv(key.content)?;
        if ec.tag != TAG_SEQUENCE {
            return None;
        }
        let elems = read_all(ec.content)?;
        if elems.len() < 2 {
            return None;
        }
        let mut body = Vec::with_capacity(ec.content.len() + curve.whole.len() + 2);
        let has_params = elems.iter().any(|e| e.tag == TAG_CTX0);
        for (i, e) in elems.iter().enumerate() {
            body.extend_from_slice(e.whole);
            if i == 1 && !has_params {
                body.extend_from_slice(&write_tlv(TAG_CTX0, curve.whole));
            }
        }
        return Some(("EC PRIVATE KEY", write_tlv(TAG_SEQUENCE, &body)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_line_width() {
        let der: Vec<u8> = (0..200u8).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        let blocks = decode_all(&format!("junk\n{text}{text}")).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].der, der);
        assert_eq!(decode_first(&text, &["CERTIFICATE"]).unwrap().der, der);
        assert!(decode_first(&text, &["PRIVATE KEY"]).is_err());
    }

    #[test]
    fn pem_errors_are_reported() {
        assert!(decode_all("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(decode_all("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
        assert!(
            decode_all("-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n-----END X-----\n").is_err()
        );
    }

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70000] {
            let content = vec![7u8; len];
            let enc = write_tlv(0x04, &content);
            let (tlv, rest) = read_tlv(&enc).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.content.len(), len);
            assert_eq!(tlv.whole, &enc[..]);
        }
        assert!(
            read_tlv(&[0x04, 0x05, 1, 2]).is_none(),
            "truncated must fail"
        );
    }

    #[test]
    fn non_key_input_is_rejected() {
        assert!(pkcs8_to_traditional(&[0x30, 0x00]).is_none());
        assert!(pkcs8_to_traditional(&[0x02, 0x01, 0x00]).is_none());
    }
}
