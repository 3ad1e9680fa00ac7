//! `show-join-command`: the `kubeadm join <endpoint> --token … --discovery-token-ca-cert-hash
//! sha256:…` line init's success text ends with, for the first bootstrap token.

use time::OffsetDateTime;

use super::bootstraptoken::{list_tokens, pick};
use super::{Context, PhaseReport};
use crate::bootstrap::clusterinfo::{ca_cert_hash, join_command};
use crate::bootstrap::token::Token;

/// The worker join command for `token` with this context's server and CA.
pub fn command(ctx: &Context<'_>, token: &Token) -> Result<String, String> {
    let hash =
        ca_cert_hash("the cluster CA in admin.conf", &ctx.ca_pem).map_err(|e| e.to_string())?;
    Ok(join_command(&ctx.server, token, &hash))
}

/// Runs `show-join-command`: with `tokens` from a bootstrap-token run just now, else the
/// first configured token (a fixed one, or the stored token serving the first entry).
pub async fn run(ctx: &Context<'_>, tokens: Option<&[Token]>) -> (PhaseReport, Option<String>) {
    let mut r = PhaseReport::new("show-join-command");
    let token = match tokens.and_then(|t| t.first()) {
        Some(t) => Some(t.clone()),
        None => {
            let entries = &ctx.spec.bootstrap_tokens;
            match entries.first().and_then(|e| e.token.clone()) {
                Some(t) => Some(t),
                None => match list_tokens(ctx).await {
                    Ok(stored) => pick(entries, &stored, OffsetDateTime::now_utc())
                        .into_iter()
                        .next()
                        .flatten(),
                    Err(e) => {
                        r.push("Secrets kube-system (bootstrap tokens)".into(), Err(e));
                        return (r, None);
                    }
                },
            }
        }
    };
    let Some(token) = token else {
        r.error = Some(
            "no valid bootstrap token for the first bootstrapTokens entry: run `plinth init \
             phase bootstrap-token` or `plinth token create --print-join-command`"
                .into(),
        );
        return (r, None);
    };
    match command(ctx, &token) {
        Ok(c) => (r, Some(c)),
        Err(e) => {
            r.error = Some(e);
            (r, None)
        }
    }
}

/// The closing lines of init's success text, as kubeadm words them.
pub fn success_tail(join: &str) -> String {
    format!(
        "\nThen you can join any number of worker nodes by running the following on each as root:\n\n{join}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::ApiServer;

    #[tokio::test]
    async fn the_join_command_uses_the_stored_token_and_the_ca_pin() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let (r, none) = run(&ctx, None).await;
        assert!(none.is_none() && r.failed());
        let (_, tokens) = super::super::bootstraptoken::run(&ctx).await;
        let (r, cmd) = run(&ctx, None).await;
        assert!(!r.failed(), "{:?}", r.lines());
        let cmd = cmd.unwrap();
        let hash = ca_cert_hash("ca", &ca).unwrap();
        assert_eq!(
            cmd,
            format!(
                "kubeadm join 10.0.0.5:6443 --token {} --discovery-token-ca-cert-hash {hash}",
                tokens[0].expose()
            )
        );
        assert!(success_tail(&cmd).ends_with(&format!("{cmd}\n")));
    }
}
