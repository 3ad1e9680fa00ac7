//! The `cluster-info` ConfigMap in kube-public (a kubeconfig with only the cluster: CA and
//! server) that `kubeadm join` discovers anonymously, the CA public-key pin
//! (`--discovery-token-ca-cert-hash sha256:…`), and the join command built from them.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::token::Token;

/// The ConfigMap's name (in kube-public).
pub const CONFIG_MAP: &str = "cluster-info";
/// The key holding the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// The prefix of the keys the bootstrapsigner controller adds: `jws-kubeconfig-<token id>`.
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";

/// A CA certificate that cannot be pinned.
#[derive(Debug, thiserror::Error)]
pub enum ClusterInfoError {
    /// The PEM holds no parseable certificate.
    #[error("{what}: no parseable CA certificate: {reason}")]
    BadCa {
        /// Where the PEM came from.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// kubeadm's public-key pin of a CA: `sha256:` + hex SHA-256 of the certificate's DER
/// SubjectPublicKeyInfo (the first certificate of `ca_pem`). `what` names the source.
pub fn ca_cert_hash(what: &str, ca_pem: &[u8]) -> Result<String, ClusterInfoError> {
    let bad = |reason: String| ClusterInfoError::BadCa {
        what: what.to_string(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(spki))))
}

/// The kubeconfig stored in cluster-info: one unnamed cluster (CA data + server), nothing
/// else, as kubeadm writes it from admin.conf's cluster.
pub fn kubeconfig(server: &str, ca_pem: &[u8]) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    \
         certificate-authority-data: {ca}\n    \
         server: {server}\n  \
         name: \"\"\n\
         contexts: null\n\
         current-context: \"\"\n\
         kind: Config\n\
         preferences: {{}}\n\
         users: null\n"
    )
}

/// The cluster-info ConfigMap (kube-public) for `server` and the CA.
pub fn config_map(server: &str, ca_pem: &[u8]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.into()),
            namespace: Some("kube-public".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            KUBECONFIG_KEY.to_string(),
            kubeconfig(server, ca_pem),
        )])),
        ..Default::default()
    }
}

/// `host:port` of a server URL (`https://10.0.0.1:6443` → `10.0.0.1:6443`), as `kubeadm join`
/// takes it.
pub fn endpoint_of(server: &str) -> &str {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    s.trim_end_matches('/')
}

/// The worker join command: `kubeadm join <endpoint> --token <token>
/// --discovery-token-ca-cert-hash sha256:<hash>` on one line.
pub fn join_command(server: &str, token: &Token, ca_hash: &str) -> String {
    format!(
        "kubeadm join {} --token {} --discovery-token-ca-cert-hash {ca_hash}",
        endpoint_of(server),
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_hash_pins_the_subject_public_key_info() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = cert.pem();
        let hash = ca_cert_hash("ca.crt", pem.as_bytes()).unwrap();
        // The SPKI is what rcgen's key pair encodes as its public key DER.
        let spki_pem = key.public_key_pem();
        let (_, spki) = x509_parser::pem::parse_x509_pem(spki_pem.as_bytes()).unwrap();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&spki.contents)));
        assert_eq!(hash, want);
        assert_eq!(hash.len(), "sha256:".len() + 64);
        let e = ca_cert_hash("/etc/kubernetes/pki/ca.crt", b"nope").unwrap_err();
        assert!(e.to_string().contains("/etc/kubernetes/pki/ca.crt"), "{e}");
    }

    #[test]
    fn the_cluster_info_kubeconfig_has_only_the_cluster() {
        let cm = config_map("https://10.0.0.1:6443", b"PEM");
        assert_eq!(cm.metadata.namespace.as_deref(), Some("kube-public"));
        let text = &cm.data.unwrap()[KUBECONFIG_KEY];
        let v: serde_json::Value = serde_saphyr::from_str(text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            base64::engine::general_purpose::STANDARD.encode("PEM")
        );
        assert_eq!(v["clusters"][0]["name"], "");
        assert!(v["users"].is_null() && v["contexts"].is_null());
    }

    #[test]
    fn the_join_command_is_kubeadms() {
        let t = Token::parse("t", "abcdef.0123456789abcdef").unwrap();
        assert_eq!(
            join_command("https://[fd00::1]:6443", &t, "sha256:00"),
            "kubeadm join [fd00::1]:6443 --token abcdef.0123456789abcdef \
             --discovery-token-ca-cert-hash sha256:00"
        );
    }
}
