//! `plinth token`: create, list and delete bootstrap tokens in the cluster, as `kubeadm token`
//! does, through the API client ([`crate::apiclient`]) with an admin kubeconfig.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use time::OffsetDateTime;

use crate::apiclient::{self, ApiError, RetryPolicy};
use crate::bootstrap::token::{parse_id, rfc3339, Token, TokenError, TokenInfo};
use crate::config::BootstrapTokenSpec;

/// Errors of the token verbs.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Bad input (token, usage, group, id).
    #[error(transparent)]
    Input(#[from] TokenError),
    /// The token to create exists already.
    #[error("a token with id {0:?} already exists")]
    Exists(String),
    /// The token to delete does not exist.
    #[error("bootstrap token {0:?} not found")]
    NotFound(String),
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// How long the verbs retry an unavailable apiserver.
pub const POLICY: RetryPolicy = RetryPolicy {
    first: std::time::Duration::from_millis(200),
    max: std::time::Duration::from_secs(2),
    deadline: std::time::Duration::from_secs(20),
};

fn secrets(client: &kube::Client) -> Api<Secret> {
    Api::namespaced(client.clone(), "kube-system")
}

/// Creates the token of `entry` (its fixed token, else a new random one); refuses an id that
/// exists already, as `kubeadm token create` does.
pub async fn create(
    client: &kube::Client,
    entry: &BootstrapTokenSpec,
) -> Result<TokenInfo, TokensError> {
    let token = match &entry.token {
        Some(t) => t.clone(),
        None => Token::generate()?,
    };
    let info = crate::postinit::bootstraptoken::token_info(entry, token, OffsetDateTime::now_utc());
    let api = secrets(client);
    let secret = info.to_secret();
    let what = format!("create Secret kube-system/{}", info.token.secret_name());
    let pp = PostParams::default();
    match apiclient::retry(&what, &POLICY, || api.create(&pp, &secret)).await {
        Ok(_) => Ok(info),
        Err(ApiError::Request { source, .. }) if apiclient::is_already_exists(&source) => {
            Err(TokensError::Exists(info.token.id().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every well-formed bootstrap token, by id.
pub async fn list(client: &kube::Client) -> Result<Vec<TokenInfo>, TokensError> {
    let api = secrets(client);
    let lp = kube::api::ListParams::default()
        .fields(&format!("type={}", crate::bootstrap::token::SECRET_TYPE));
    let l = apiclient::retry(
        "list bootstrap token Secrets in kube-system",
        &POLICY,
        || api.list(&lp),
    )
    .await?;
    let mut out: Vec<TokenInfo> = l.items.iter().filter_map(TokenInfo::from_secret).collect();
    out.sort_by(|a, b| a.token.id().cmp(b.token.id()));
    Ok(out)
}

/// Deletes the token named by its id or whole token. Returns the id.
pub async fn delete(client: &kube::Client, id_or_token: &str) -> Result<String, TokensError> {
    let id = parse_id("token", id_or_token)?;
    let name = format!("{}{id}", crate::bootstrap::token::SECRET_PREFIX);
    let api = secrets(client);
    let what = format!("delete Secret kube-system/{name}");
    let dp = DeleteParams::default();
    match apiclient::retry(&what, &POLICY, || api.delete(&name, &dp)).await {
        Ok(_) => Ok(id),
        Err(ApiError::Request { source, .. }) if apiclient::is_not_found(&source) => {
            Err(TokensError::NotFound(id))
        }
        Err(e) => Err(e.into()),
    }
}

/// One token as `kubeadm token list -o json|yaml` prints it
/// (`output.kubeadm.k8s.io/v1alpha2` `BootstrapToken`).
#[derive(Debug, serde::Serialize)]
pub struct TokenOutput {
    /// `BootstrapToken`.
    pub kind: &'static str,
    /// `output.kubeadm.k8s.io/v1alpha2`.
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// The whole token.
    pub token: String,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// RFC 3339 expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Usages.
    pub usages: Vec<String>,
    /// Extra groups.
    pub groups: Vec<String>,
}

impl From<&TokenInfo> for TokenOutput {
    fn from(t: &TokenInfo) -> Self {
        TokenOutput {
            kind: "BootstrapToken",
            api_version: "output.kubeadm.k8s.io/v1alpha2",
            token: t.token.expose(),
            description: t.description.clone(),
            expires: t.expires.map(rfc3339),
            usages: t.usages.clone(),
            groups: t.groups.clone(),
        }
    }
}

/// `kubeadm token list`'s table: TOKEN, TTL, EXPIRES, USAGES, DESCRIPTION, EXTRA GROUPS.
pub fn table(tokens: &[TokenInfo], now: OffsetDateTime) -> String {
    let header = [
        "TOKEN",
        "TTL",
        "EXPIRES",
        "USAGES",
        "DESCRIPTION",
        "EXTRA GROUPS",
    ];
    let rows: Vec<[String; 6]> = tokens
        .iter()
        .map(|t| {
            [
                t.token.expose(),
                crate::bootstrap::token::ttl_column(t.expires, now),
                t.expires.map(rfc3339).unwrap_or_else(|| "<never>".into()),
                t.usages.join(","),
                if t.description.is_empty() {
                    "<none>".into()
                } else {
                    t.description.clone()
                },
                t.groups.join(","),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiclient::fake::ApiServer;

    #[tokio::test]
    async fn create_list_delete_like_kubeadm_token() {
        let server = ApiServer::new();
        let c = server.client("kubernetes-admin");
        let entry = BootstrapTokenSpec {
            token: Some(Token::parse("t", "abcdef.0123456789abcdef").unwrap()),
            description: String::new(),
            ..Default::default()
        };
        let info = create(&c, &entry).await.unwrap();
        assert_eq!(info.token.id(), "abcdef");
        let e = create(&c, &entry).await.unwrap_err();
        assert_eq!(e.to_string(), "a token with id \"abcdef\" already exists");
        let random = create(&c, &BootstrapTokenSpec::default()).await.unwrap();
        let l = list(&c).await.unwrap();
        assert_eq!(l.len(), 2);
        let now = OffsetDateTime::now_utc();
        let t = table(&l, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TOKEN   "), "{t}");
        assert!(lines[0].ends_with("EXTRA GROUPS"), "{t}");
        assert!(t.contains("abcdef.0123456789abcdef   23h   "), "{t}");
        assert!(t.contains("<none>"), "{t}");
        assert!(t.contains("authentication,signing"), "{t}");
        let j = serde_json::to_value(TokenOutput::from(&l[0])).unwrap();
        assert_eq!(j["apiVersion"], "output.kubeadm.k8s.io/v1alpha2");
        assert_eq!(j["kind"], "BootstrapToken");
        assert_eq!(
            delete(&c, "abcdef.0123456789abcdef").await.unwrap(),
            "abcdef"
        );
        assert_eq!(
            delete(&c, random.token.id()).await.unwrap(),
            random.token.id()
        );
        let e = delete(&c, "abcdef").await.unwrap_err();
        assert_eq!(e.to_string(), "bootstrap token \"abcdef\" not found");
        assert!(matches!(
            delete(&c, "nope!").await.unwrap_err(),
            TokensError::Input(_)
        ));
        assert!(list(&c).await.unwrap().is_empty());
    }
}
