//! `bootstrap-token`: the bootstrap tokens of `InitConfiguration.bootstrapTokens` as
//! kube-system Secrets, kubeadm's ClusterRoleBindings that let token holders post CSRs, have
//! them auto-approved and get Nodes, the rotation auto-approval for nodes, and the
//! `cluster-info` ConfigMap in kube-public that anonymous `kubeadm join` discovery reads
//! (kube-controller-manager's bootstrapsigner adds its `jws-kubeconfig-<id>` signatures).
//!
//! Idempotent: a token entry without a fixed `token` reuses the valid token an earlier init
//! made for it (same description, usages and groups) instead of minting another each run.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::rbac::{self, group, user, NODES_GROUP};
use super::{apply, apply_cluster, Context, PhaseReport};
use crate::apiclient::{self, ApiError, Outcome};
use crate::bootstrap::clusterinfo;
use crate::bootstrap::token::{Token, TokenInfo, DEFAULT_GROUP, SECRET_TYPE};
use crate::config::BootstrapTokenSpec;

/// ClusterRoleBinding letting bootstrap tokens post CSRs.
pub const KUBELET_BOOTSTRAP: &str = "kubeadm:kubelet-bootstrap";
/// ClusterRole + ClusterRoleBinding letting bootstrap tokens get Nodes.
pub const GET_NODES: &str = "kubeadm:get-nodes";
/// ClusterRoleBinding auto-approving bootstrap tokens' node client CSRs.
pub const AUTOAPPROVE_BOOTSTRAP: &str = "kubeadm:node-autoapprove-bootstrap";
/// ClusterRoleBinding auto-approving nodes' renewal CSRs.
pub const AUTOAPPROVE_ROTATION: &str = "kubeadm:node-autoapprove-certificate-rotation";
/// Role + RoleBinding (kube-public) letting anonymous read cluster-info.
pub const CLUSTER_INFO_READER: &str = "kubeadm:bootstrap-signer-clusterinfo";

/// The token Secret's content for `entry` and `token`, expiring per `expires`/`ttl` from `now`.
pub fn token_info(entry: &BootstrapTokenSpec, token: Token, now: OffsetDateTime) -> TokenInfo {
    let expires = match &entry.expires {
        Some(e) => OffsetDateTime::parse(e, &Rfc3339).ok(),
        None if entry.ttl.is_zero() => None,
        None => Some(now + entry.ttl),
    };
    TokenInfo {
        token,
        description: entry.description.clone(),
        expires,
        usages: sorted(&entry.usages),
        groups: entry.groups.clone(),
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// True when the stored token `have` serves `entry` (with token `want` when it is fixed):
/// same secret, description, usages and groups, and not expired (or expiring exactly when
/// `expires` says).
pub fn serves(have: &TokenInfo, entry: &BootstrapTokenSpec, now: OffsetDateTime) -> bool {
    let token_ok = entry.token.as_ref().is_none_or(|t| *t == have.token);
    let expiry_ok = match &entry.expires {
        Some(e) => OffsetDateTime::parse(e, &Rfc3339).ok() == have.expires,
        None if entry.ttl.is_zero() => have.expires.is_none(),
        None => !have.expired(now),
    };
    token_ok
        && expiry_ok
        && have.description == entry.description
        && have.usages == sorted(&entry.usages)
        && have.groups == entry.groups
}

/// The bootstrap tokens stored in kube-system (well-formed ones).
pub async fn list_tokens(ctx: &Context<'_>) -> Result<Vec<TokenInfo>, ApiError> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    let lp = ListParams::default().fields(&format!("type={SECRET_TYPE}"));
    let list = apiclient::retry(
        "list bootstrap token Secrets in kube-system",
        &ctx.policy,
        || api.list(&lp),
    )
    .await?;
    Ok(list
        .items
        .iter()
        .filter_map(TokenInfo::from_secret)
        .collect())
}

/// Picks the token for each entry: its fixed token, else a stored one that serves it (the
/// latest-expiring, each used once), else `None` (a new one is to be generated).
pub fn pick(
    entries: &[BootstrapTokenSpec],
    stored: &[TokenInfo],
    now: OffsetDateTime,
) -> Vec<Option<Token>> {
    let mut used: Vec<Token> = entries.iter().filter_map(|e| e.token.clone()).collect();
    entries
        .iter()
        .map(|e| {
            if let Some(t) = &e.token {
                return Some(t.clone());
            }
            let best = stored
                .iter()
                .filter(|s| !used.contains(&s.token) && serves(s, e, now))
                .max_by_key(|s| s.expires.map(|t| t.unix_timestamp()).unwrap_or(i64::MAX))?;
            used.push(best.token.clone());
            Some(best.token.clone())
        })
        .collect()
}

/// Makes the Secret of `entry` hold `token`: unchanged when the stored one already serves the
/// entry (its expiry is not pushed on by a re-run), else created or replaced.
async fn ensure_token(
    ctx: &Context<'_>,
    entry: &BootstrapTokenSpec,
    token: Token,
    now: OffsetDateTime,
) -> (String, Result<Outcome, ApiError>) {
    let what = format!("Secret kube-system/{}", token.secret_name());
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    let name = token.secret_name();
    let desired = token_info(entry, token, now).to_secret();
    let pp = PostParams::default();
    let result = async {
        loop {
            let live = apiclient::retry(&format!("get {what}"), &ctx.policy, || api.get_opt(&name))
                .await?;
            match live {
                None => {
                    match apiclient::retry(&format!("create {what}"), &ctx.policy, || {
                        api.create(&pp, &desired)
                    })
                    .await
                    {
                        Ok(_) => return Ok(Outcome::Created),
                        Err(ApiError::Request { source, .. })
                            if apiclient::is_already_exists(&source) =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
                Some(live) => {
                    if TokenInfo::from_secret(&live).is_some_and(|h| serves(&h, entry, now)) {
                        return Ok(Outcome::Unchanged);
                    }
                    let mut replace = desired.clone();
                    replace.metadata.resource_version = live.metadata.resource_version.clone();
                    match apiclient::retry(&format!("update {what}"), &ctx.policy, || {
                        api.replace(&name, &pp, &replace)
                    })
                    .await
                    {
                        Ok(_) => return Ok(Outcome::Updated),
                        Err(ApiError::Request { source, .. })
                            if apiclient::is_conflict(&source) =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    .await;
    (what, result)
}

/// Runs `bootstrap-token`. Returns the report and the tokens now in place, in config order
/// (the first is the one the join command shows).
pub async fn run(ctx: &Context<'_>) -> (PhaseReport, Vec<Token>) {
    let spec = ctx.spec;
    let mut r = PhaseReport::new("bootstrap-token");
    let now = OffsetDateTime::now_utc();
    let mut tokens = Vec::new();
    r.notes
        .push("Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles".into());
    let stored = if spec.bootstrap_tokens.iter().any(|e| e.token.is_none()) {
        match list_tokens(ctx).await {
            Ok(s) => s,
            Err(e) => {
                r.push("Secrets kube-system (bootstrap tokens)".into(), Err(e));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    for (entry, picked) in
        spec.bootstrap_tokens
            .iter()
            .zip(pick(&spec.bootstrap_tokens, &stored, now))
    {
        let token = match picked.map(Ok).unwrap_or_else(Token::generate) {
            Ok(t) => t,
            Err(e) => {
                r.error = Some(e.to_string());
                continue;
            }
        };
        let (what, result) = ensure_token(ctx, entry, token.clone(), now).await;
        if result.is_ok() {
            tokens.push(token);
        }
        r.push(what, result);
    }
    r.notes
        .push("configured RBAC rules to allow Node Bootstrap tokens to get nodes".into());
    r.notes.push("configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get long term certificate credentials".into());
    r.notes.push("configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a Node Bootstrap Token".into());
    r.notes.push("configured RBAC rules to allow certificate rotation for all node client certificates in the cluster".into());
    r.notes
        .push("Creating the \"cluster-info\" ConfigMap in the \"kube-public\" namespace".into());
    for crb in [rbac::cluster_role_binding(
        KUBELET_BOOTSTRAP,
        "system:node-bootstrapper",
        vec![group(DEFAULT_GROUP)],
    )] {
        apply_cluster(ctx, &mut r, crb).await;
    }
    apply_cluster(
        ctx,
        &mut r,
        rbac::cluster_role(GET_NODES, vec![rbac::rule("", &["nodes"], &["get"], &[])]),
    )
    .await;
    for crb in [
        rbac::cluster_role_binding(GET_NODES, GET_NODES, vec![group(DEFAULT_GROUP)]),
        rbac::cluster_role_binding(
            AUTOAPPROVE_BOOTSTRAP,
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group(DEFAULT_GROUP)],
        ),
        rbac::cluster_role_binding(
            AUTOAPPROVE_ROTATION,
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group(NODES_GROUP)],
        ),
    ] {
        apply_cluster(ctx, &mut r, crb).await;
    }
    apply(
        ctx,
        &mut r,
        clusterinfo::config_map(&ctx.server, &ctx.ca_pem),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role(
            "kube-public",
            CLUSTER_INFO_READER,
            vec![rbac::rule(
                "",
                &["configmaps"],
                &["get"],
                &[clusterinfo::CONFIG_MAP],
            )],
        ),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role_binding(
            "kube-public",
            CLUSTER_INFO_READER,
            CLUSTER_INFO_READER,
            vec![user("system:anonymous")],
        ),
    )
    .await;
    (r, tokens)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::{ApiServer, Denied};
    use serde_json::json;
    use std::time::Duration;

    fn outcomes(r: &PhaseReport) -> Vec<(String, String)> {
        r.objects
            .iter()
            .map(|o| {
                (
                    o.what.clone(),
                    match &o.result {
                        Ok(x) => x.to_string(),
                        Err(e) => format!("error: {e}"),
                    },
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn creates_the_token_rbac_and_cluster_info_then_reuses_the_token() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let (r, tokens) = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert_eq!(tokens.len(), 1);
        let t = &tokens[0];
        let names: Vec<String> = outcomes(&r)
            .into_iter()
            .map(|(w, o)| format!("{w}: {o}"))
            .collect();
        assert_eq!(
            names,
            [
                format!("Secret kube-system/bootstrap-token-{}: created", t.id()),
                "ClusterRoleBinding kubeadm:kubelet-bootstrap: created".into(),
                "ClusterRole kubeadm:get-nodes: created".into(),
                "ClusterRoleBinding kubeadm:get-nodes: created".into(),
                "ClusterRoleBinding kubeadm:node-autoapprove-bootstrap: created".into(),
                "ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation: created".into(),
                "ConfigMap kube-public/cluster-info: created".into(),
                "Role kube-public/kubeadm:bootstrap-signer-clusterinfo: created".into(),
                "RoleBinding kube-public/kubeadm:bootstrap-signer-clusterinfo: created".into(),
            ]
        );
        let secret = server
            .get(&format!(
                "api/v1/namespaces/kube-system/secrets/bootstrap-token-{}",
                t.id()
            ))
            .unwrap();
        assert_eq!(secret["type"], SECRET_TYPE);
        let s: Secret = serde_json::from_value(secret).unwrap();
        let info = TokenInfo::from_secret(&s).unwrap();
        assert_eq!(info.groups, [DEFAULT_GROUP]);
        assert_eq!(info.usages, ["authentication", "signing"]);
        let left = info.expires.unwrap() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::hours(23) && left <= time::Duration::hours(24));
        let rb = server
            .get("apis/rbac.authorization.k8s.io/v1/namespaces/kube-public/rolebindings/kubeadm:bootstrap-signer-clusterinfo")
            .unwrap();
        assert_eq!(
            rb["subjects"],
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}])
        );
        let ci = server
            .get("api/v1/namespaces/kube-public/configmaps/cluster-info")
            .unwrap();
        assert!(ci["data"]["kubeconfig"]
            .as_str()
            .unwrap()
            .contains("server: https://10.0.0.5:6443"));

        // The bootstrapsigner signs cluster-info; a second run reuses the token and leaves
        // everything (the signature too) alone.
        let mut cm = server
            .get("api/v1/namespaces/kube-public/configmaps/cluster-info")
            .unwrap();
        cm["data"][format!("jws-kubeconfig-{}", t.id())] = json!("sig");
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(server.client("kcm"), "kube-public");
        cms.replace(
            "cluster-info",
            &PostParams::default(),
            &serde_json::from_value(cm).unwrap(),
        )
        .await
        .unwrap();
        let (again, tokens2) = run(&ctx).await;
        assert_eq!(tokens2, tokens);
        assert!(again.unchanged(), "{:?}", again.lines());
        let ci = server
            .get("api/v1/namespaces/kube-public/configmaps/cluster-info")
            .unwrap();
        assert_eq!(ci["data"][format!("jws-kubeconfig-{}", t.id())], "sig");
        assert_eq!(
            server.list("api/v1/namespaces/kube-system/secrets").len(),
            1
        );
    }

    #[tokio::test]
    async fn a_fixed_token_is_created_and_an_expired_one_is_renewed() {
        let server = ApiServer::new();
        let (mut s, ca) = (spec(), ca_pem());
        let tok = Token::parse("t", "abcdef.0123456789abcdef").unwrap();
        s.bootstrap_tokens[0].token = Some(tok.clone());
        s.bootstrap_tokens[0].ttl = Duration::from_secs(3600);
        let ctx = context(&server, &s, &ca);
        let (r, tokens) = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert_eq!(tokens, std::slice::from_ref(&tok));
        // Expire it behind our back: the next run renews it (updated).
        let path = "api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef";
        let mut sec = server.get(path).unwrap();
        sec["data"]["expiration"] = json!(base64_of("2001-01-01T00:00:00Z"));
        let api: Api<Secret> = Api::namespaced(server.client("x"), "kube-system");
        api.replace(
            "bootstrap-token-abcdef",
            &PostParams::default(),
            &serde_json::from_value(sec).unwrap(),
        )
        .await
        .unwrap();
        let (r, _) = run(&ctx).await;
        assert_eq!(
            outcomes(&r)[0],
            (
                "Secret kube-system/bootstrap-token-abcdef".to_string(),
                "updated".to_string()
            )
        );
        let (r, _) = run(&ctx).await;
        assert!(r.unchanged(), "{:?}", r.lines());
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[tokio::test]
    async fn a_refused_secret_is_reported_and_the_rest_applied() {
        let server = ApiServer::new();
        server.set_admission(|r| {
            if r.resource == "secrets" && r.verb == "create" {
                Err(Denied::invalid(
                    "Secret is invalid: data[token-secret]: Invalid value",
                ))
            } else {
                Ok(())
            }
        });
        let (s, ca) = (spec(), ca_pem());
        let (r, tokens) = run(&context(&server, &s, &ca)).await;
        assert!(r.failed() && tokens.is_empty());
        let lines = r.lines();
        let bad: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
        assert_eq!(bad.len(), 1, "{lines:?}");
        assert!(
            bad[0].contains("Secret kube-system/bootstrap-token-")
                && bad[0].contains("Invalid value"),
            "{bad:?}"
        );
        assert!(server
            .get("api/v1/namespaces/kube-public/configmaps/cluster-info")
            .is_some());
    }

    #[test]
    fn pick_reuses_each_stored_token_once() {
        let now = OffsetDateTime::now_utc();
        let e = BootstrapTokenSpec::default();
        let stored = vec![token_info(&e, Token::generate().unwrap(), now)];
        let picked = pick(&[e.clone(), e.clone()], &stored, now);
        assert_eq!(picked[0].as_ref(), Some(&stored[0].token));
        assert!(picked[1].is_none());
        // A stored token with other groups does not serve the entry.
        let mut other = e.clone();
        other.groups = vec!["system:bootstrappers:other".into()];
        assert_eq!(pick(&[other], &stored, now), [None]);
    }
}
