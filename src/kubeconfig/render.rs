//! Rendering a kubeconfig from `templates/kubeconfig.yaml.tera` (tera 2) and reading one back.
//!
//! Every rendered file is parsed back and compared with the intended values before it is
//! written, so the template can never emit a kubeconfig that means something else.

use base64::Engine;
use serde::Deserialize;

/// The embedded template.
pub const TEMPLATE: &str = include_str!("../../templates/kubeconfig.yaml.tera");

/// The values of one kubeconfig with an embedded client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigData {
    /// Cluster entry name (spec.cluster_name).
    pub cluster: String,
    /// API server URL.
    pub server: String,
    /// User entry name (the client certificate CN).
    pub user: String,
    /// Context name (`<user>@<cluster>`).
    pub context: String,
    /// CA certificate PEM.
    pub ca_pem: String,
    /// Client certificate PEM.
    pub cert_pem: String,
    /// Client key PEM.
    pub key_pem: String,
}

/// A kubeconfig as read from disk (only the fields plinth checks; others are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KubeconfigFile {
    /// `current-context`.
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    /// `clusters`.
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    /// `contexts`.
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    /// `users`.
    #[serde(default)]
    pub users: Vec<NamedUser>,
}

/// A `clusters[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedCluster {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The cluster.
    #[serde(default)]
    pub cluster: Cluster,
}

/// A cluster.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cluster {
    /// Server URL.
    #[serde(default)]
    pub server: String,
    /// Base64 PEM CA bundle.
    #[serde(rename = "certificate-authority-data", default)]
    pub certificate_authority_data: Option<String>,
    /// CA file path.
    #[serde(rename = "certificate-authority", default)]
    pub certificate_authority: Option<String>,
}

/// A `contexts[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedContext {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The context.
    #[serde(default)]
    pub context: Context,
}

/// A context.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    /// Cluster entry name.
    #[serde(default)]
    pub cluster: String,
    /// User entry name.
    #[serde(default)]
    pub user: String,
}

/// A `users[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedUser {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The user.
    #[serde(default)]
    pub user: User,
}

/// User credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// Base64 PEM client certificate.
    #[serde(rename = "client-certificate-data", default)]
    pub client_certificate_data: Option<String>,
    /// Base64 PEM client key.
    #[serde(rename = "client-key-data", default)]
    pub client_key_data: Option<String>,
    /// Client certificate file path.
    #[serde(rename = "client-certificate", default)]
    pub client_certificate: Option<String>,
    /// Client key file path.
    #[serde(rename = "client-key", default)]
    pub client_key: Option<String>,
}

impl KubeconfigFile {
    /// Parses a kubeconfig.
    pub fn parse(text: &str) -> Result<KubeconfigFile, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The current context's (context name, cluster, user), if all three entries exist.
    pub fn current(&self) -> Option<(&str, &Cluster, &User)> {
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)?;
        let user = self.users.iter().find(|u| u.name == ctx.context.user)?;
        Some((&ctx.name, &cluster.cluster, &user.user))
    }
}

/// Decodes a `*-data` field (base64 of PEM text).
pub fn decode_data(field: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field.trim().as_bytes())
        .map_err(|e| format!("invalid base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "embedded data is not PEM text".to_string())
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A YAML scalar for `s`: plain when unambiguous, else a JSON (= YAML double-quoted) string.
pub fn yaml_scalar(s: &str) -> String {
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let mut chars = s.chars();
    let plain = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '/' => {
            chars.all(|c| c.is_ascii_alphanumeric() || "-._:/@+=[]".contains(c))
        }
        _ => false,
    } && !s.ends_with(':')
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

/// Renders `data` with the template and checks the result parses back to the same values.
pub fn render(data: &KubeconfigData) -> Result<String, String> {
    let mut tera = tera::Tera::new();
    tera.autoescape_on(Vec::<&str>::new());
    tera.add_raw_template("kubeconfig.yaml", TEMPLATE)
        .map_err(|e| format!("template: {e}"))?;
    let mut ctx = tera::Context::new();
    ctx.insert("cluster", &yaml_scalar(&data.cluster));
    ctx.insert("server", &yaml_scalar(&data.server));
    ctx.insert("user", &yaml_scalar(&data.user));
    ctx.insert("context", &yaml_scalar(&data.context));
    ctx.insert("ca_data", &b64(&data.ca_pem));
    ctx.insert("cert_data", &b64(&data.cert_pem));
    ctx.insert("key_data", &b64(&data.key_pem));
    let out = tera
        .render("kubeconfig.yaml", &ctx)
        .map_err(|e| format!("template: {e}"))?;
    let back = KubeconfigFile::parse(&out)
        .map_err(|e| format!("rendered kubeconfig does not parse: {e}"))?;
    let (ctx_name, cluster, user) = back
        .current()
        .ok_or("rendered kubeconfig has no usable current context")?;
    let same = ctx_name == data.context
        && back.clusters.first().map(|c| c.name.as_str()) == Some(data.cluster.as_str())
        && cluster.server == data.server
        && cluster
            .certificate_authority_data
            .as_deref()
            .map(decode_data)
            == Some(Ok(data.ca_pem.clone()))
        && back.users.first().map(|u| u.name.as_str()) == Some(data.user.as_str())
        && user.client_certificate_data.as_deref().map(decode_data)
            == Some(Ok(data.cert_pem.clone()))
        && user.client_key_data.as_deref().map(decode_data) == Some(Ok(data.key_pem.clone()));
    if !same {
        return Err("rendered kubeconfig does not round-trip to the intended values".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(server: &str, user: &str) -> KubeconfigData {
        KubeconfigData {
            cluster: "kubernetes".into(),
            server: server.into(),
            user: user.into(),
            context: format!("{user}@kubernetes"),
            ca_pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into(),
            cert_pem: "-----BEGIN CERTIFICATE-----\nAQ==\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN EC PRIVATE KEY-----\nAg==\n-----END EC PRIVATE KEY-----\n".into(),
        }
    }

    #[test]
    fn renders_like_kubeadm_and_round_trips() {
        let out = render(&data("https://192.168.10.5:6443", "system:node:cp1")).unwrap();
        assert!(
            out.contains("    server: https://192.168.10.5:6443\n"),
            "{out}"
        );
        assert!(
            out.contains("current-context: system:node:cp1@kubernetes\n"),
            "{out}"
        );
        assert!(out.contains("- name: system:node:cp1\n"), "{out}");
        assert!(out.starts_with("apiVersion: v1\n"));
        assert!(out.ends_with("client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCkFnPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=\n"), "{out}");
    }

    #[test]
    fn ipv6_and_odd_names_stay_valid_yaml() {
        let out = render(&data("https://[fd00::1]:6443", "yes")).unwrap();
        assert!(out.contains("server: https://[fd00::1]:6443"), "{out}");
        assert!(out.contains("- name: \"yes\""), "{out}");
        let weird = render(&data("https://a:1", "a: b # c")).unwrap();
        let back = KubeconfigFile::parse(&weird).unwrap();
        assert_eq!(back.users[0].name, "a: b # c");
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(
            yaml_scalar("kubernetes-admin@kubernetes"),
            "kubernetes-admin@kubernetes"
        );
        assert_eq!(yaml_scalar("on"), "\"on\"");
        assert_eq!(yaml_scalar("123"), "\"123\"");
        assert_eq!(yaml_scalar("-x"), "\"-x\"");
        assert_eq!(yaml_scalar(""), "\"\"");
    }

    #[test]
    fn current_requires_consistent_entries() {
        let f = KubeconfigFile::parse("current-context: x\ncontexts: []\n").unwrap();
        assert!(f.current().is_none());
        assert!(KubeconfigFile::parse("clusters: 5").is_err());
    }
}
