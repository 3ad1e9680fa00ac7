//! `addon/kube-proxy`: ServiceAccount, the `kube-proxy` ConfigMap (KubeProxyConfiguration and
//! an in-cluster kubeconfig), the DaemonSet, ClusterRoleBinding `kubeadm:node-proxier` and the
//! Role/RoleBinding that let bootstrap tokens read the ConfigMap, as kubeadm v1.24 creates them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use serde_json::json;

use super::super::rbac::{self, group, service_account};
use super::super::uploadconfig::{config_map_hash, COMPONENT_CONFIG_HASH};
use super::super::{apply, apply_cluster, Context, PhaseReport};
use super::image;
use crate::agent::node::STATIC_PODS_ONLY;
use crate::bootstrap::token::DEFAULT_GROUP;
use crate::config::ClusterSpec;

/// The ConfigMap (and its Role) name.
pub const NAME: &str = "kube-proxy";
/// The key of the KubeProxyConfiguration.
pub const CONFIG_KEY: &str = "config.conf";

/// The KubeProxyConfiguration kubeadm generates (its non-default fields).
pub fn proxy_configuration_yaml(spec: &ClusterSpec) -> String {
    let cidr = spec
        .networking
        .pod_subnets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let doc = json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "clusterCIDR": cidr,
        "mode": "",
    });
    serde_saphyr::to_string(&doc).unwrap_or_default()
}

/// The in-cluster kubeconfig kube-proxy uses (its service account token and CA).
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    \
         certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    \
         server: {server}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    \
         namespace: default\n    user: default\n  name: default\ncurrent-context: default\n\
         users:\n- name: default\n  user:\n    \
         tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"
    )
}

/// The `kube-proxy` ConfigMap for the server URL workers reach (controlPlaneEndpoint, else
/// this node's), signed as kubeadm signs generated component configs.
pub fn config_map(spec: &ClusterSpec) -> ConfigMap {
    let data = BTreeMap::from([
        (
            "kubeconfig.conf".to_string(),
            kubeconfig(&spec.cluster_endpoint().url()),
        ),
        (CONFIG_KEY.to_string(), proxy_configuration_yaml(spec)),
    ]);
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
    }))
    .expect("a valid ConfigMap");
    cm.metadata.annotations = Some(BTreeMap::from([(
        COMPONENT_CONFIG_HASH.to_string(),
        config_map_hash(&data),
    )]));
    cm.data = Some(data);
    cm
}

/// The kube-proxy image for the cluster's version (`+` becomes `_`, as in image tags).
pub fn proxy_image(spec: &ClusterSpec) -> String {
    image(
        spec,
        "kube-proxy",
        &spec.kubernetes_version.to_string().replace('+', "_"),
    )
}

/// The DaemonSet.
pub fn daemon_set(spec: &ClusterSpec) -> DaemonSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": "kube-proxy",
                        "image": proxy_image(spec),
                        "imagePullPolicy": "IfNotPresent",
                        "command": [
                            "/usr/local/bin/kube-proxy",
                            format!("--config=/var/lib/kube-proxy/{CONFIG_KEY}"),
                            "--hostname-override=$(NODE_NAME)",
                        ],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                            // kubeadm's `readOnly: false` is the default the apiserver drops: left
                            // out, so a re-run finds the stored DaemonSet unchanged.
                            {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true},
                        ],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    }],
                    "hostNetwork": true,
                    "serviceAccountName": "kube-proxy",
                    "volumes": [
                        {"name": "kube-proxy", "configMap": {"name": NAME}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    ],
                    "tolerations": [{"operator": "Exists"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    // Not on plinth nodes: their agent runs static pods only (kubeadm's
                    // DaemonSet has no affinity; it tolerates every taint).
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": STATIC_PODS_ONLY, "operator": "DoesNotExist"},
                        ]}],
                    }}},
                },
            },
        },
    }))
    .expect("a valid DaemonSet")
}

/// Runs `addon/kube-proxy`.
pub async fn run(ctx: &Context<'_>) -> PhaseReport {
    let spec = ctx.spec;
    let mut r = PhaseReport::new("addons");
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"}
    }))
    .expect("a valid ServiceAccount");
    apply(ctx, &mut r, sa).await;
    apply(ctx, &mut r, config_map(spec)).await;
    apply(ctx, &mut r, daemon_set(spec)).await;
    apply_cluster(
        ctx,
        &mut r,
        rbac::cluster_role_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            vec![service_account("kube-system", "kube-proxy")],
        ),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role(
            "kube-system",
            NAME,
            vec![rbac::rule("", &["configmaps"], &["get"], &[NAME])],
        ),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role_binding("kube-system", NAME, NAME, vec![group(DEFAULT_GROUP)]),
    )
    .await;
    if !r.failed() {
        r.notes.push("Applied essential addon: kube-proxy".into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::ApiServer;

    #[tokio::test]
    async fn creates_kube_proxy_then_changes_nothing() {
        let server = ApiServer::new();
        let (mut s, ca) = (spec(), ca_pem());
        s.networking.pod_subnets = vec![crate::config::Cidr {
            addr: "10.244.0.0".parse().unwrap(),
            prefix: 16,
        }];
        let ctx = context(&server, &s, &ca);
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert_eq!(r.objects.len(), 6);
        let ds = server
            .get("apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy")
            .unwrap();
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.k8s.io/kube-proxy:v1.24.0"
        );
        let cm = server
            .get("api/v1/namespaces/kube-system/configmaps/kube-proxy")
            .unwrap();
        let conf = cm["data"]["config.conf"].as_str().unwrap();
        assert!(conf.contains("clusterCIDR: 10.244.0.0/16"), "{conf}");
        assert!(cm["data"]["kubeconfig.conf"]
            .as_str()
            .unwrap()
            .contains("server: https://10.0.0.5:6443"));
        assert!(run(&ctx).await.unchanged());
    }
}
