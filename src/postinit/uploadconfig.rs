//! `upload-config`: the ClusterConfiguration in ConfigMap kube-system/kubeadm-config and the
//! kubelets' KubeletConfiguration in kube-system/kubelet-config, each with the Role and
//! RoleBinding that let nodes and bootstrap tokens read it (what `kubeadm join` fetches).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::rbac::{self, group, NODES_GROUP};
use super::{apply, Context, PhaseReport};
use crate::bootstrap::token::DEFAULT_GROUP;
use crate::config::{ClusterSpec, KubeVersion, KubeadmApiVersion};

/// The ConfigMap holding the ClusterConfiguration.
pub const KUBEADM_CONFIG: &str = "kubeadm-config";
/// Its key.
pub const CLUSTER_CONFIGURATION_KEY: &str = "ClusterConfiguration";
/// The Role/RoleBinding letting nodes read kubeadm-config.
pub const NODES_KUBEADM_CONFIG: &str = "kubeadm:nodes-kubeadm-config";
/// The key of the kubelet ConfigMap.
pub const KUBELET_KEY: &str = "kubelet";
/// The annotation kubeadm signs generated component configs with.
pub const COMPONENT_CONFIG_HASH: &str = "kubeadm.kubernetes.io/component-config.hash";

/// The ClusterConfiguration as kubeadm v1.24 stores it: `kubeadm.k8s.io/v1beta3` (what a
/// v1.24 `kubeadm join` can decode, whatever version the config file used), every defaulted
/// field spelled out, no v1beta4-only fields.
pub fn cluster_configuration_yaml(spec: &ClusterSpec) -> String {
    let mut v3 = spec.clone();
    v3.api_version = KubeadmApiVersion::V1Beta3;
    let [_, mut cluster, _] = crate::config::effective::to_documents(&v3);
    if let Value::Object(m) = &mut cluster {
        for c in ["apiServer", "controllerManager", "scheduler"] {
            let entry = m.entry(c).or_insert_with(|| json!({}));
            if let Value::Object(o) = entry {
                o.remove("extraEnvs");
            }
        }
        if let Some(Value::Object(local)) = m.get_mut("etcd").and_then(|e| e.get_mut("local")) {
            local.remove("extraEnvs");
        }
        m.insert("dns".into(), json!({}));
    }
    serde_saphyr::to_string(&cluster).unwrap_or_default()
}

/// The n-th address of a subnet (kubeadm's cluster DNS IP is the 10th of the service subnet).
fn nth_ip(addr: IpAddr, n: u128) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(n as u32)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(n)).into()),
    }
}

/// The cluster DNS Service IP: the 10th address of the first service subnet.
pub fn dns_ip(spec: &ClusterSpec) -> IpAddr {
    let first = spec
        .networking
        .service_subnets
        .first()
        .map(|c| c.addr)
        .unwrap_or(IpAddr::from([10, 96, 0, 0]));
    nth_ip(first, 10)
}

/// The KubeletConfiguration kubeadm gives every kubelet (its non-zero defaults).
pub fn kubelet_configuration_yaml(spec: &ClusterSpec) -> String {
    let doc = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"cacheTTL": "0s", "enabled": true},
            "x509": {"clientCAFile": format!("{}/ca.crt", spec.certificates_dir.trim_end_matches('/'))},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [dns_ip(spec).to_string()],
        "clusterDomain": spec.networking.dns_domain,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": true,
        "staticPodPath": spec.plinth.manifests_dir,
    });
    serde_saphyr::to_string(&doc).unwrap_or_default()
}

/// The kubelet ConfigMap's name as the kubeadm of `version` names it: `kubelet-config` from
/// v1.24 (feature gate UnversionedKubeletConfigMap on by default), `kubelet-config-1.<minor>`
/// before, and in the v1.24 alphas, where the gate was still off by default.
pub fn kubelet_config_map_name(version: &KubeVersion) -> String {
    let legacy = version.minor < 24 || (version.minor == 24 && version.pre.starts_with("alpha"));
    if legacy {
        format!("kubelet-config-{}.{}", version.major, version.minor)
    } else {
        "kubelet-config".into()
    }
}

/// The Role/RoleBinding name for the kubelet ConfigMap (`kubeadm:kubelet-config[-1.x]`).
pub fn kubelet_config_rbac_name(version: &KubeVersion) -> String {
    format!("kubeadm:{}", kubelet_config_map_name(version))
}

/// kubeadm's component-config signature: `sha256:` over the values in key order.
pub fn config_map_hash(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for v in data.values() {
        h.update(v.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn config_map(name: &str, data: BTreeMap<String, String>, signed: bool) -> ConfigMap {
    let annotations = signed
        .then(|| BTreeMap::from([(COMPONENT_CONFIG_HASH.to_string(), config_map_hash(&data))]));
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-system".into()),
            annotations,
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// The kubeadm-config ConfigMap.
pub fn kubeadm_config(spec: &ClusterSpec) -> ConfigMap {
    config_map(
        KUBEADM_CONFIG,
        BTreeMap::from([(
            CLUSTER_CONFIGURATION_KEY.to_string(),
            cluster_configuration_yaml(spec),
        )]),
        false,
    )
}

/// The kubelet ConfigMap (signed as kubeadm signs the configs it generates).
pub fn kubelet_config(spec: &ClusterSpec) -> ConfigMap {
    config_map(
        &kubelet_config_map_name(&spec.kubernetes_version),
        BTreeMap::from([(KUBELET_KEY.to_string(), kubelet_configuration_yaml(spec))]),
        true,
    )
}

fn read(name: &str) -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    vec![rbac::rule("", &["configmaps"], &["get"], &[name])]
}

/// Runs `upload-config` (both sub-phases).
pub async fn run(ctx: &Context<'_>) -> PhaseReport {
    let mut r = kubeadm(ctx).await;
    let k = kubelet(ctx).await;
    r.notes.extend(k.notes);
    r.objects.extend(k.objects);
    r
}

/// `upload-config/kubeadm`: kubeadm-config and its Role/RoleBinding.
pub async fn kubeadm(ctx: &Context<'_>) -> PhaseReport {
    let spec = ctx.spec;
    let mut r = PhaseReport::new("upload-config");
    r.notes.push(format!(
        "Storing the configuration used in ConfigMap \"{KUBEADM_CONFIG}\" in the \"kube-system\" Namespace"
    ));
    apply(ctx, &mut r, kubeadm_config(spec)).await;
    apply(
        ctx,
        &mut r,
        rbac::role("kube-system", NODES_KUBEADM_CONFIG, read(KUBEADM_CONFIG)),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role_binding(
            "kube-system",
            NODES_KUBEADM_CONFIG,
            NODES_KUBEADM_CONFIG,
            vec![group(DEFAULT_GROUP), group(NODES_GROUP)],
        ),
    )
    .await;
    r
}

/// `upload-config/kubelet`: the kubelet ConfigMap and its Role/RoleBinding.
pub async fn kubelet(ctx: &Context<'_>) -> PhaseReport {
    let spec = ctx.spec;
    let mut r = PhaseReport::new("upload-config");
    let kubelet_cm = kubelet_config_map_name(&spec.kubernetes_version);
    r.notes.push(format!(
        "Creating a ConfigMap \"{kubelet_cm}\" in namespace kube-system with the configuration for the kubelets in the cluster"
    ));
    apply(ctx, &mut r, kubelet_config(spec)).await;
    let rbac_name = kubelet_config_rbac_name(&spec.kubernetes_version);
    apply(
        ctx,
        &mut r,
        rbac::role("kube-system", &rbac_name, read(&kubelet_cm)),
    )
    .await;
    apply(
        ctx,
        &mut r,
        rbac::role_binding(
            "kube-system",
            &rbac_name,
            &rbac_name,
            vec![group(NODES_GROUP), group(DEFAULT_GROUP)],
        ),
    )
    .await;
    r
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ca_pem, context, spec};
    use super::*;
    use crate::apiclient::fake::{ApiServer, Denied};
    use crate::apiclient::Outcome;
    use crate::config::validate::parse_kube_version;

    #[test]
    fn the_cluster_configuration_is_v1beta3_for_kubeadm_1_24() {
        let mut s = spec();
        s.api_server
            .component
            .extra_envs
            .push(crate::config::EnvVar {
                name: "A".into(),
                value: "b".into(),
            });
        let y = cluster_configuration_yaml(&s);
        let v: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(v["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(v["kind"], "ClusterConfiguration");
        assert_eq!(v["kubernetesVersion"], "v1.24.0");
        assert_eq!(v["networking"]["serviceSubnet"], "10.96.0.0/12");
        assert_eq!(v["dns"], json!({}));
        assert!(v["apiServer"].get("extraEnvs").is_none(), "{y}");
        assert!(v.get("encryptionAlgorithm").is_none(), "{y}");
    }

    #[test]
    fn the_kubelet_config_map_is_named_as_that_kubeadm_names_it() {
        let v = |s: &str| parse_kube_version(s).unwrap();
        assert_eq!(kubelet_config_map_name(&v("v1.24.0")), "kubelet-config");
        assert_eq!(kubelet_config_map_name(&v("v1.33.1")), "kubelet-config");
        assert_eq!(
            kubelet_config_map_name(&v("v1.24.0-alpha.1")),
            "kubelet-config-1.24"
        );
        assert_eq!(
            kubelet_config_map_name(&v("v1.23.4")),
            "kubelet-config-1.23"
        );
        assert_eq!(
            kubelet_config_rbac_name(&v("v1.23.4")),
            "kubeadm:kubelet-config-1.23"
        );
        assert_eq!(
            kubelet_config_rbac_name(&v("v1.24.0")),
            "kubeadm:kubelet-config"
        );
    }

    #[test]
    fn the_kubelet_configuration_points_at_cluster_dns() {
        let y = kubelet_configuration_yaml(&spec());
        let v: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(v["clusterDNS"], json!(["10.96.0.10"]));
        assert_eq!(v["clusterDomain"], "cluster.local");
        assert_eq!(
            v["authentication"]["x509"]["clientCAFile"],
            "/etc/kubernetes/pki/ca.crt"
        );
        let cm = kubelet_config(&spec());
        let ann = cm.metadata.annotations.unwrap();
        assert!(ann[COMPONENT_CONFIG_HASH].starts_with("sha256:"));
    }

    #[tokio::test]
    async fn upload_config_creates_then_changes_nothing() {
        let server = ApiServer::new();
        let (s, ca) = (spec(), ca_pem());
        let ctx = context(&server, &s, &ca);
        let r = run(&ctx).await;
        assert!(!r.failed(), "{:?}", r.lines());
        let what: Vec<&str> = r.objects.iter().map(|o| o.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "ConfigMap kube-system/kubeadm-config",
                "Role kube-system/kubeadm:nodes-kubeadm-config",
                "RoleBinding kube-system/kubeadm:nodes-kubeadm-config",
                "ConfigMap kube-system/kubelet-config",
                "Role kube-system/kubeadm:kubelet-config",
                "RoleBinding kube-system/kubeadm:kubelet-config",
            ]
        );
        assert!(r
            .objects
            .iter()
            .all(|o| matches!(o.result, Ok(Outcome::Created))));
        let cm = server
            .get("api/v1/namespaces/kube-system/configmaps/kubeadm-config")
            .unwrap();
        assert!(cm["data"]["ClusterConfiguration"]
            .as_str()
            .unwrap()
            .contains("kind: ClusterConfiguration"));
        let rb = server
            .get("apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/kubeadm:nodes-kubeadm-config")
            .unwrap();
        assert_eq!(rb["subjects"][0]["name"], DEFAULT_GROUP);
        assert_eq!(rb["subjects"][1]["name"], "system:nodes");

        let again = run(&ctx).await;
        assert!(again.unchanged(), "{:?}", again.lines());
        assert!(again
            .lines()
            .iter()
            .any(|l| l.ends_with("kubeadm-config: unchanged")));

        // A changed config updates only the ConfigMap that holds it.
        let mut s2 = s.clone();
        s2.networking.dns_domain = "example.org".into();
        let ctx2 = context(&server, &s2, &ca);
        let r = run(&ctx2).await;
        let updated: Vec<&str> = r
            .objects
            .iter()
            .filter(|o| matches!(o.result, Ok(Outcome::Updated)))
            .map(|o| o.what.as_str())
            .collect();
        assert_eq!(
            updated,
            [
                "ConfigMap kube-system/kubeadm-config",
                "ConfigMap kube-system/kubelet-config"
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_object_is_reported_and_the_others_still_applied() {
        let server = ApiServer::new();
        server.set_admission(|r| {
            if r.resource == "roles" && r.verb == "create" {
                Err(Denied::forbidden(
                    "roles.rbac.authorization.k8s.io is forbidden",
                ))
            } else {
                Ok(())
            }
        });
        let (s, ca) = (spec(), ca_pem());
        let r = run(&context(&server, &s, &ca)).await;
        assert!(r.failed());
        let failed: Vec<String> = r
            .lines()
            .into_iter()
            .filter(|l| l.contains("FAILED"))
            .collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed[0].starts_with(
            "[upload-config] Role kube-system/kubeadm:nodes-kubeadm-config: FAILED: create Role"
        ), "{failed:?}");
        assert!(failed[0].contains("forbidden"), "{failed:?}");
        assert!(server
            .get("api/v1/namespaces/kube-system/configmaps/kubelet-config")
            .is_some());
    }
}
