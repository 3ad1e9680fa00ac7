//! `addon/coredns`: ServiceAccount, ClusterRole/Binding `system:coredns`, the `coredns`
//! ConfigMap (Corefile), Deployment `coredns` and Service `kube-dns` (at the 10th address of
//! the service subnet), as kubeadm v1.24 creates them.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use serde_json::json;

use super::super::rbac::{self, service_account};
use super::super::uploadconfig::dns_ip;
use super::super::{apply, apply_cluster, Context, PhaseReport};
use crate::config::{ClusterSpec, KubeVersion};

/// The CoreDNS version kubeadm of each Kubernetes minor deploys.
pub fn coredns_version(v: &KubeVersion) -> &'static str {
    match v.minor {
        0..=21 => "v1.8.0",
        22..=24 => "v1.8.6",
        25..=26 => "v1.9.3",
        27..=28 => "v1.10.1",
        29..=31 => "v1.11.1",
        32 => "v1.11.3",
        _ => "v1.12.0",
    }
}

/// The CoreDNS image: `coredns/coredns` under the default registries, `coredns` under a
/// custom imageRepository (as kubeadm does).
pub fn coredns_image(spec: &ClusterSpec) -> String {
    let tag = coredns_version(&spec.kubernetes_version);
    let repo = spec.image_repository.trim_end_matches('/');
    if repo == "registry.k8s.io" || repo == "k8s.gcr.io" {
        format!("{repo}/coredns/coredns:{tag}")
    } else {
        format!("{repo}/coredns:{tag}")
    }
}

/// The Corefile for the cluster domain.
pub fn corefile(domain: &str) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n       lameduck 5s\n    }}\n    ready\n    \
         kubernetes {domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n       \
         fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }}\n    prometheus :9153\n    \
         forward . /etc/resolv.conf {{\n       max_concurrent 1000\n    }}\n    cache 30\n    \
         loop\n    reload\n    loadbalance\n}}\n"
    )
}

/// The Deployment.
pub fn deployment(spec: &ClusterSpec) -> Deployment {
    let v = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{
                        "name": "coredns",
                        "image": coredns_image(spec),
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                        "ports": [
                            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                        ],
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 60, "timeoutSeconds": 5,
                            "successThreshold": 1, "failureThreshold": 5,
                        },
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["all"]},
                            "readOnlyRootFilesystem": true,
                        },
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                },
            },
        },
    });
    serde_json::from_value(v).expect("a valid Deployment")
}

/// The Service `kube-dns`.
pub fn service(spec: &ClusterSpec) -> Service {
    let v = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "clusterIP": dns_ip(spec).to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "selector": {"k8s-app": "kube-dns"},
        },
    });
    serde_json::from_value(v).expect("a valid Service")
}

/// The `coredns` ConfigMap.
pub fn config_map(spec: &ClusterSpec) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": corefile(&spec.networking.dns_domain)},
    }))
    .expect("a valid ConfigMap")
}

/// Runs `addon/coredns`.
pub async fn run(ctx: &Context<'_>) -> PhaseReport {
    let spec = ctx.spec;
    let mut r = PhaseReport::new("addons");
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "coredns", "namespace": "kube-system"}
    }))
    .expect("a valid ServiceAccount");
    apply(ctx, &mut r, sa).await;
    apply_cluster(
        ctx,
        &mut r,
        rbac::cluster_role(
            "system:coredns",
            vec![
                rbac::rule(
                    "",
                    &["endpoints", "services", "pods", "namespaces"],
                    &["list", "watch"],
                    &[],
                ),
                rbac::rule("", &["nodes"], &["get"], &[]),
                rbac::rule(
                    "discovery.k8s.io",
                    &["endpointslices"],
                    &["list", "watch"],
                    &[],
                ),
            ],
        ),
    )
    .await;
    apply_cluster(
        ctx,
        &mut r,
        rbac::cluster_role_binding(
            "system:coredns",
            "system:coredns",
            vec![service_account("kube-system", "coredns")],
        ),
    )
    .await;
    apply(ctx, &mut r, config_map(spec)).await;
    apply(ctx, &mut r, deployment(spec)).await;
    apply(ctx, &mut r, service(spec)).await;
    if !r.failed() {
        r.notes.push("Applied essential addon: CoreDNS".into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::ApiServer;

    #[test]
    fn images_follow_kubeadm() {
        let mut s = spec();
        assert_eq!(coredns_image(&s), "registry.k8s.io/coredns/coredns:v1.8.6");
        s.image_repository = "my.registry/k8s".into();
        assert_eq!(coredns_image(&s), "my.registry/k8s/coredns:v1.8.6");
    }

    #[tokio::test]
    async fn creates_coredns_then_changes_nothing() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        assert_eq!(r.objects.len(), 6);
        let svc = server
            .get("api/v1/namespaces/kube-system/services/kube-dns")
            .unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.10");
        let d = server
            .get("apis/apps/v1/namespaces/kube-system/deployments/coredns")
            .unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["serviceAccountName"],
            "coredns"
        );
        let cm = server
            .get("api/v1/namespaces/kube-system/configmaps/coredns")
            .unwrap();
        assert!(cm["data"]["Corefile"]
            .as_str()
            .unwrap()
            .contains("kubernetes cluster.local in-addr.arpa ip6.arpa"));
        assert!(run(&ctx).await.unchanged());
    }
}
