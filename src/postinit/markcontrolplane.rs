//! `mark-control-plane`: labels this node `node-role.kubernetes.io/control-plane=""` and
//! `node.kubernetes.io/exclude-from-external-load-balancers=""` and adds the taints of
//! `nodeRegistration.taints` (kubeadm's default `node-role.kubernetes.io/control-plane:NoSchedule`),
//! keeping any other taint the node has. The Node itself is registered by the agent; this
//! phase waits for it, bounded.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{Context, PhaseReport};
use crate::apiclient::{self, ApiError, Outcome};
use crate::config::NodeTaint;

/// The labels kubeadm puts on a control-plane node (value "").
pub const LABELS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/exclude-from-external-load-balancers",
];

fn same(a: &Taint, b: &NodeTaint) -> bool {
    a.key == b.key && a.effect == b.effect && a.value.as_deref().unwrap_or("") == b.value
}

/// The node's taints after marking: the wanted ones first, then every other taint it has.
pub fn merged_taints(have: &[Taint], want: &[NodeTaint]) -> Vec<Taint> {
    let mut out: Vec<Taint> = want
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: (!t.value.is_empty()).then(|| t.value.clone()),
            effect: t.effect.clone(),
            time_added: None,
        })
        .collect();
    for t in have {
        if !want.iter().any(|w| same(t, w)) {
            out.push(t.clone());
        }
    }
    out
}

/// True when `node` already carries every label and taint.
pub fn is_marked(node: &Node, want: &[NodeTaint]) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    LABELS
        .iter()
        .all(|l| labels.get(*l).is_some_and(|v| v.is_empty()))
        && want.iter().all(|w| taints.iter().any(|t| same(t, w)))
}

/// Waits (bounded) for the Node, then marks it. The patch carries the resourceVersion read,
/// so a concurrent change (the agent updating its Node) is a conflict that is re-read.
pub async fn run(ctx: &Context<'_>) -> PhaseReport {
    let spec = ctx.spec;
    let name = spec.node_name.as_str();
    let mut r = PhaseReport::new("mark-control-plane");
    r.notes.push(format!(
        "Marking the node {name} as control-plane by adding the labels: [{}]",
        LABELS.join(" ")
    ));
    if !spec.node_taints.is_empty() {
        let shown: Vec<String> = spec.node_taints.iter().map(|t| t.to_string()).collect();
        r.notes.push(format!(
            "Marking the node {name} as control-plane by adding the taints [{}]",
            shown.join(" ")
        ));
    }
    let what = format!("Node {name}");
    let api: Api<Node> = Api::all(ctx.client.clone());
    // Without anything registering the Node, look once: mark it if it is there.
    let wait = ctx.node_wait.unwrap_or_default();
    match mark(&api, name, &spec.node_taints, wait, ctx).await {
        Err(MarkError::NeverRegistered(_)) if ctx.node_wait.is_none() => {
            r.notes.push(format!(
                "skipped: Node {name} does not exist and the agent runs without a kubeconfig, \
                 so nothing registers it; run `plinth init phase mark-control-plane` once it exists"
            ));
        }
        Err(MarkError::NeverRegistered(waited)) => {
            r.error = Some(format!(
                "Node {name} was not registered within {}s: is the agent running with a \
                 kubeconfig (it registers the Node)? Check `plinth ps` and the agent's log",
                waited.as_secs()
            ))
        }
        Err(MarkError::Api(e)) => r.push(what, Err(e)),
        Ok(o) => r.push(what, Ok(o)),
    }
    r
}

enum MarkError {
    NeverRegistered(Duration),
    Api(ApiError),
}

async fn mark(
    api: &Api<Node>,
    name: &str,
    want: &[NodeTaint],
    wait: Duration,
    ctx: &Context<'_>,
) -> Result<Outcome, MarkError> {
    let start = tokio::time::Instant::now();
    let what = format!("Node {name}");
    loop {
        let node = apiclient::retry(&format!("get {what}"), &ctx.policy, || api.get_opt(name))
            .await
            .map_err(MarkError::Api)?;
        let Some(node) = node else {
            if start.elapsed() >= wait {
                return Err(MarkError::NeverRegistered(start.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        if is_marked(&node, want) {
            return Ok(Outcome::Unchanged);
        }
        let have = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let labels: serde_json::Map<String, serde_json::Value> =
            LABELS.iter().map(|l| (l.to_string(), json!(""))).collect();
        let patch = json!({
            "metadata": {
                "labels": labels,
                "resourceVersion": node.metadata.resource_version,
            },
            "spec": {"taints": merged_taints(&have, want)},
        });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        let result = apiclient::retry(&format!("patch {what}"), &ctx.policy, || {
            api.patch(name, &params, &patch)
        })
        .await;
        match result {
            Ok(_) => return Ok(Outcome::Updated),
            Err(ApiError::Request { source, .. })
                if apiclient::is_conflict(&source) && start.elapsed() < wait =>
            {
                continue
            }
            Err(e) => return Err(MarkError::Api(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::ApiServer;
    use kube::api::PostParams;

    fn node(name: &str, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": taints}}))
        .unwrap()
    }

    #[tokio::test]
    async fn marks_the_node_keeping_other_labels_and_taints_then_changes_nothing() {
        let server = ApiServer::new();
        let api: Api<Node> = Api::all(server.client("system:node:cp1"));
        api.create(
            &PostParams::default(),
            &node(
                "cp1",
                json!([{"key": "example.com/other", "effect": "NoExecute"}]),
            ),
        )
        .await
        .unwrap();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert!(r
            .lines()
            .contains(&"[mark-control-plane] Node cp1: updated".to_string()));
        let n = server.get("api/v1/nodes/cp1").unwrap();
        assert_eq!(
            n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            ""
        );
        assert_eq!(
            n["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"],
            ""
        );
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "cp1");
        assert_eq!(
            n["spec"]["taints"],
            json!([
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                {"key": "example.com/other", "effect": "NoExecute"}
            ])
        );
        let again = run(&ctx).await;
        assert!(again.unchanged() && !again.failed(), "{:?}", again.lines());
    }

    #[tokio::test]
    async fn waits_for_the_agent_to_register_the_node() {
        let server = ApiServer::new();
        let s2 = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let api: Api<Node> = Api::all(s2.client("system:node:cp1"));
            api.create(&PostParams::default(), &node("cp1", json!(null)))
                .await
                .unwrap();
        });
        let (s, ca) = (spec(), ca_pem());
        let mut ctx = context(&server, &s, &ca);
        ctx.node_wait = Some(Duration::from_secs(5));
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
    }

    #[tokio::test]
    async fn a_node_that_never_registers_fails_the_phase_after_the_bound() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let t = std::time::Instant::now();
        let r = run(&ctx).await;
        assert!(r.failed());
        assert!(t.elapsed() < Duration::from_secs(3));
        let last = r.lines().pop().unwrap();
        assert!(last.contains("Node cp1 was not registered"), "{last}");
    }

    #[tokio::test]
    async fn no_taints_configured_means_labels_only() {
        let server = ApiServer::new();
        let api: Api<Node> = Api::all(server.client("system:node:cp1"));
        api.create(&PostParams::default(), &node("cp1", json!(null)))
            .await
            .unwrap();
        let (mut s, ca) = (spec(), ca_pem());
        s.node_taints.clear();
        let r = run(&context(&server, &s, &ca)).await;
        assert!(!r.failed(), "{:?}", r.lines());
        let n = server.get("api/v1/nodes/cp1").unwrap();
        assert_eq!(n["spec"]["taints"], json!([]));
    }

    #[tokio::test]
    async fn without_a_registering_agent_a_missing_node_is_skipped_not_failed() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let mut ctx = context(&server, &s, &ca);
        ctx.node_wait = None;
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert!(r
            .lines()
            .iter()
            .any(|l| l.contains("skipped: Node cp1 does not exist")));
        // Once it exists, it is marked even so.
        let api: Api<Node> = Api::all(server.client("system:node:cp1"));
        api.create(&PostParams::default(), &node("cp1", json!(null)))
            .await
            .unwrap();
        let r = run(&ctx).await;
        assert!(r
            .lines()
            .contains(&"[mark-control-plane] Node cp1: updated".to_string()));
    }

    #[test]
    fn merged_taints_put_the_wanted_first_without_duplicates() {
        let have = vec![Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
        let m = merged_taints(&have, &[NodeTaint::control_plane()]);
        assert_eq!(m.len(), 1);
    }
}
