//! Configuration: kubeadm `InitConfiguration` + `ClusterConfiguration` (v1beta3 and v1beta4)
//! plus plinth's optional `PlinthConfiguration`, parsed strictly, defaulted as kubeadm does,
//! overridden by CLI flags, validated, and turned into a [`ClusterSpec`].

pub mod spec;

pub use spec::*;

use std::net::IpAddr;
use std::time::Duration;

/// Kubernetes version plinth defaults to (kubeadm's `kubernetesVersion` default analogue).
pub const DEFAULT_KUBERNETES_VERSION: KubeVersion = KubeVersion {
    major: 1,
    minor: 33,
    patch: 0,
    pre: String::new(),
};

/// A fully defaulted spec for `node_name` advertising `advertise_address`: kubeadm's defaults
/// with plinth's (`cis` profile, agent on 127.0.0.1:10248). The config loader starts from this.
pub fn defaults_for(node_name: &str, advertise_address: IpAddr) -> ClusterSpec {
    ClusterSpec {
        api_version: KubeadmApiVersion::V1Beta4,
        node_name: node_name.to_string(),
        advertise_address,
        bind_port: 6443,
        control_plane_endpoint: None,
        kubernetes_version: DEFAULT_KUBERNETES_VERSION,
        image_repository: "registry.k8s.io".into(),
        networking: Networking {
            service_subnets: vec![Cidr {
                addr: IpAddr::from([10, 96, 0, 0]),
                prefix: 12,
            }],
            pod_subnets: vec![],
            dns_domain: "cluster.local".into(),
        },
        certificates_dir: "/etc/kubernetes/pki".into(),
        cluster_name: "kubernetes".into(),
        api_server: ApiServerSpec::default(),
        controller_manager: ComponentSpec::default(),
        scheduler: ComponentSpec::default(),
        etcd: Etcd::Local(LocalEtcd {
            data_dir: "/var/lib/etcd".into(),
            extra_args: vec![],
            extra_envs: vec![],
            server_cert_sans: vec![],
            peer_cert_sans: vec![],
            image_repository: String::new(),
            image_tag: String::new(),
        }),
        patches_dir: None,
        key_algorithm: KeyAlgorithm::Rsa2048,
        cert_validity: Duration::from_secs(365 * 24 * 3600),
        ca_cert_validity: Duration::from_secs(10 * 365 * 24 * 3600),
        timeouts: Timeouts {
            control_plane_component_health_check: Duration::from_secs(240),
        },
        plinth: PlinthSettings {
            security_profile: SecurityProfile::Cis,
            bin_path: vec![],
            agent_healthz_bind_address: IpAddr::from([127, 0, 0, 1]),
            agent_healthz_port: 10248,
            manifests_dir: "/etc/kubernetes/manifests".into(),
            state_dir: "/var/lib/plinth".into(),
            log_dir: "/var/log/pods".into(),
            kubeconfig_dir: "/etc/kubernetes".into(),
        },
    }
}

/// CLI flags that override the config file (kubeadm's `init` flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--advertise-address`.
    pub advertise_address: Option<String>,
    /// `--node-name`.
    pub node_name: Option<String>,
    /// `--kubernetes-version`.
    pub kubernetes_version: Option<String>,
    /// `--pod-network-cidr` (comma-separated).
    pub pod_network_cidr: Option<String>,
    /// `--service-cidr` (comma-separated).
    pub service_cidr: Option<String>,
    /// `--apiserver-cert-extra-sans`.
    pub apiserver_cert_extra_sans: Vec<String>,
    /// `--cert-dir`.
    pub cert_dir: Option<String>,
    /// `--control-plane-endpoint`.
    pub control_plane_endpoint: Option<String>,
}
