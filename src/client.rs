//! A minimal authenticated client built from a kubeconfig file (embedded CA, client
//! certificate and key), for the few API calls plinth makes itself: the admin
//! ClusterRoleBinding after init and the authentication checks of `plinth verify`.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::fs::FsError;

/// Errors loading a kubeconfig or building its client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The file could not be read.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file is not a usable kubeconfig.
    #[error("{path}: {reason}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The parts of a kubeconfig's current context plinth uses.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Server URL.
    pub server: String,
    /// CA bundle (PEM).
    pub ca_pem: Vec<u8>,
    /// Client certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// Client key (PEM).
    pub key_pem: Vec<u8>,
}

fn b64(path: &Path, field: &str, v: &serde_json::Value) -> Result<Vec<u8>, ClientError> {
    let s = v.as_str().ok_or_else(|| ClientError::Invalid {
        path: path.into(),
        reason: format!("{field} is missing"),
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ClientError::Invalid {
            path: path.into(),
            reason: format!("{field}: {e}"),
        })
}

fn named<'a>(
    doc: &'a serde_json::Value,
    list: &str,
    name: &str,
    inner: &str,
) -> Option<&'a serde_json::Value> {
    doc[list]
        .as_array()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .map(|e| &e[inner])
}

impl ClientConfig {
    /// Loads the current context of a kubeconfig with embedded credentials.
    pub fn load(path: &Path) -> Result<ClientConfig, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| FsError::io("read", path, e))?;
        Self::parse(path, &text)
    }

    /// Parses kubeconfig YAML text (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<ClientConfig, ClientError> {
        let invalid = |reason: String| ClientError::Invalid {
            path: path.into(),
            reason,
        };
        let doc: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let ctx_name = doc["current-context"]
            .as_str()
            .ok_or_else(|| invalid("no current-context".into()))?;
        let ctx = named(&doc, "contexts", ctx_name, "context")
            .ok_or_else(|| invalid(format!("context {ctx_name:?} not found")))?;
        let cluster_name = ctx["cluster"].as_str().unwrap_or_default();
        let user_name = ctx["user"].as_str().unwrap_or_default();
        let cluster = named(&doc, "clusters", cluster_name, "cluster")
            .ok_or_else(|| invalid(format!("cluster {cluster_name:?} not found")))?;
        let user = named(&doc, "users", user_name, "user")
            .ok_or_else(|| invalid(format!("user {user_name:?} not found")))?;
        Ok(ClientConfig {
            path: path.into(),
            server: cluster["server"]
                .as_str()
                .ok_or_else(|| invalid("cluster has no server".into()))?
                .to_string(),
            ca_pem: b64(
                path,
                "certificate-authority-data",
                &cluster["certificate-authority-data"],
            )?,
            cert_pem: b64(
                path,
                "client-certificate-data",
                &user["client-certificate-data"],
            )?,
            key_pem: b64(path, "client-key-data", &user["client-key-data"])?,
        })
    }

    /// A reqwest client that trusts only the kubeconfig's CA and presents its client cert.
    pub fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        let invalid = |reason: String| ClientError::Invalid {
            path: self.path.clone(),
            reason,
        };
        let ca = reqwest::Certificate::from_pem(&self.ca_pem)
            .map_err(|e| invalid(format!("CA: {e}")))?;
        let mut pem = self.cert_pem.clone();
        pem.extend_from_slice(b"\n");
        pem.extend_from_slice(&self.key_pem);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| invalid(format!("client certificate/key: {e}")))?;
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .identity(id)
            .no_proxy()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_current_context_credentials() {
        let e = base64::engine::general_purpose::STANDARD;
        let y = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a@k\nclusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: {}\ncontexts:\n- name: a@k\n  context: {{cluster: k, user: a}}\nusers:\n- name: a\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            e.encode("CA"),
            e.encode("CERT"),
            e.encode("KEY")
        );
        let c = ClientConfig::parse(Path::new("x.conf"), &y).unwrap();
        assert_eq!(c.server, "https://10.0.0.1:6443");
        assert_eq!(c.ca_pem, b"CA");
        assert_eq!(c.key_pem, b"KEY");
        let bad = y.replace("current-context: a@k", "current-context: nope");
        let err = ClientConfig::parse(Path::new("x.conf"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.conf") && err.contains("nope"), "{err}");
    }
}
