//! The validated, defaulted, typed model of one control-plane node: `ClusterSpec`.
//!
//! Everything downstream (pki, kubeconfig, manifests, init) reads only this type, never the
//! raw kubeadm YAML. Paths in here are *host* paths as they appear in generated files
//! (`/etc/kubernetes/pki`); use [`crate::fs::HostRoot`] to open them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which kubeadm API version the config file used (drives extraArgs merge semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KubeadmApiVersion {
    /// `kubeadm.k8s.io/v1beta3`: extraArgs is a map; an extra arg replaces the default.
    V1Beta3,
    /// `kubeadm.k8s.io/v1beta4`: extraArgs is a list of {name, value}; repeats allowed.
    V1Beta4,
}

/// A Kubernetes version `vMAJOR.MINOR.PATCH` (pre-release suffix kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct KubeVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Anything after `-`, e.g. `rc.1`; empty when none.
    pub pre: String,
}

impl std::fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// Where [`ClusterSpec::kubernetes_version`] came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub enum KubeVersionSource {
    /// `kubernetesVersion` in the config file, or `--kubernetes-version`.
    Config,
    /// Not set anywhere: plinth's [`crate::config::DEFAULT_KUBERNETES_VERSION`] (no
    /// kube-apiserver binary was found to ask).
    #[default]
    Default,
    /// Not set anywhere: the `--version` of this kube-apiserver binary (the one that will run).
    Binary(PathBuf),
}

/// One command-line argument for a component (`--name=value`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Arg {
    /// Flag name without leading dashes.
    pub name: String,
    /// Flag value.
    pub value: String,
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `host:port` of the control-plane endpoint (host may be a DNS name or an IP).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// DNS name or IP literal (without brackets).
    pub host: String,
    /// Port (defaults to the local bindPort when the config gives none).
    pub port: u16,
}

/// An extra hostPath volume for a component (kubeadm `extraVolumes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostPathMount {
    /// Volume name (replaces a default volume of the same name).
    pub name: String,
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub mount_path: String,
    /// Mount read-only.
    pub read_only: bool,
    /// hostPath type (`DirectoryOrCreate`, `File`, ...); empty = unset.
    pub path_type: String,
}

/// An environment variable for a component (kubeadm v1beta4 `extraEnvs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Settings shared by apiserver, controller-manager and scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComponentSpec {
    /// Extra flags, in file order (v1beta3 maps are sorted by name).
    pub extra_args: Vec<Arg>,
    /// Extra hostPath volumes.
    pub extra_volumes: Vec<HostPathMount>,
    /// Extra environment variables.
    pub extra_envs: Vec<EnvVar>,
}

/// The apiserver's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiServerSpec {
    /// Flags, volumes, env.
    pub component: ComponentSpec,
    /// Extra SANs for the serving certificate (IPs or DNS names, as given).
    pub cert_sans: Vec<String>,
}

/// Local (stacked) etcd, run as a static pod on this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalEtcd {
    /// Data directory on the host (default /var/lib/etcd).
    pub data_dir: String,
    /// Extra flags.
    pub extra_args: Vec<Arg>,
    /// Extra environment variables.
    pub extra_envs: Vec<EnvVar>,
    /// Extra SANs for etcd/server.
    pub server_cert_sans: Vec<String>,
    /// Extra SANs for etcd/peer.
    pub peer_cert_sans: Vec<String>,
    /// Image repository override for etcd (empty = the cluster's).
    pub image_repository: String,
    /// Image tag override (e.g. `3.5.21-0`); empty = chosen from kubernetesVersion.
    pub image_tag: String,
}

/// External etcd cluster: plinth runs no etcd and generates no etcd CA.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternalEtcd {
    /// Client URLs.
    pub endpoints: Vec<String>,
    /// CA file the apiserver trusts for etcd.
    pub ca_file: String,
    /// Client certificate file.
    pub cert_file: String,
    /// Client key file.
    pub key_file: String,
}

/// Where etcd comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Etcd {
    /// Stacked etcd on this node.
    Local(LocalEtcd),
    /// An external cluster.
    External(ExternalEtcd),
}

/// Key algorithm for every generated key (kubeadm `encryptionAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum KeyAlgorithm {
    /// RSA 2048 (kubeadm's default).
    #[default]
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
}

impl KeyAlgorithm {
    /// The kubeadm spelling (`RSA-2048`, `ECDSA-P256`, ...).
    pub fn kubeadm_name(&self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        }
    }
}

/// Service and pod networking.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Networking {
    /// Service CIDRs (one, or two for dual-stack), default 10.96.0.0/12.
    pub service_subnets: Vec<Cidr>,
    /// Pod CIDRs (may be empty).
    pub pod_subnets: Vec<Cidr>,
    /// Cluster DNS domain, default cluster.local.
    pub dns_domain: String,
}

/// Timeouts (kubeadm v1beta4 `timeouts`; v1beta3 `apiServer.timeoutForControlPlane`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timeouts {
    /// How long init waits for the control plane to be healthy (default 4m).
    pub control_plane_component_health_check: Duration,
}

/// Which hardening profile the manifests follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum SecurityProfile {
    /// Pass every scored control-plane check of CIS 1.12 (plinth's default).
    #[default]
    Cis,
    /// Reproduce kubeadm's output flag for flag.
    Kubeadm,
}

/// plinth's own settings (the optional `plinth.io/v1alpha1` `PlinthConfiguration` document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlinthSettings {
    /// Hardening profile.
    pub security_profile: SecurityProfile,
    /// Directories where the agent resolves `command[0]` (empty = `$PATH`).
    pub bin_path: Vec<PathBuf>,
    /// The agent's healthz/status address (default 127.0.0.1).
    pub agent_healthz_bind_address: IpAddr,
    /// The agent's healthz/status port (default 10248).
    pub agent_healthz_port: u16,
    /// Static pod manifest directory (host path, default /etc/kubernetes/manifests).
    pub manifests_dir: String,
    /// The agent's state dir (default /var/lib/plinth).
    pub state_dir: String,
    /// The agent's pod log dir (default /var/log/pods).
    pub log_dir: String,
    /// Kubeconfig dir (default /etc/kubernetes).
    pub kubeconfig_dir: String,
    /// Kubernetes release repository the binaries are downloaded from
    /// (`<repo>/<version>/bin/linux/<arch>/<name>`; default `https://dl.k8s.io/release`).
    pub binary_repository: String,
    /// etcd release repository (`<repo>/<version>/etcd-<version>-linux-<arch>.tar.gz`;
    /// default etcd's GitHub releases).
    pub etcd_binary_repository: String,
    /// PEM CA bundle (host path) trusted for the repositories besides the system roots.
    pub binary_repository_ca_bundle: Option<String>,
}

/// A taint `mark-control-plane` puts on this node (`nodeRegistration.taints`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeTaint {
    /// Taint key, e.g. `node-role.kubernetes.io/control-plane`.
    pub key: String,
    /// Value; empty = none.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl NodeTaint {
    /// kubeadm's default control-plane taint `node-role.kubernetes.io/control-plane:NoSchedule`.
    pub fn control_plane() -> NodeTaint {
        NodeTaint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        }
    }
}

impl std::fmt::Display for NodeTaint {
    /// `key[=value]:effect`, as kubectl and kubeadm print taints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// One `InitConfiguration.bootstrapTokens` entry, defaulted as kubeadm does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootstrapTokenSpec {
    /// The token; `None` = a random one (or the valid one an earlier init made for this entry).
    pub token: Option<crate::bootstrap::token::Token>,
    /// Description (default: kubeadm's "The default bootstrap token generated by 'kubeadm init'.").
    pub description: String,
    /// Lifetime from creation (default 24h); zero = never expires.
    pub ttl: Duration,
    /// Absolute expiry (RFC 3339); wins over `ttl`.
    pub expires: Option<String>,
    /// Usages (default signing, authentication).
    pub usages: Vec<String>,
    /// Extra groups (default system:bootstrappers:kubeadm:default-node-token).
    pub groups: Vec<String>,
}

impl Default for BootstrapTokenSpec {
    /// kubeadm's default token: random, 24h, signing + authentication, the default group.
    fn default() -> Self {
        use crate::bootstrap::token as t;
        BootstrapTokenSpec {
            token: None,
            description: t::DEFAULT_DESCRIPTION.into(),
            ttl: t::DEFAULT_TTL,
            expires: None,
            usages: t::DEFAULT_USAGES.iter().map(|s| s.to_string()).collect(),
            groups: vec![t::DEFAULT_GROUP.to_string()],
        }
    }
}

impl PlinthSettings {
    /// The agent's status API address, `host:port` (IPv6 bracketed): what `init`, `verify`,
    /// `regenerate`, `ps` and `logs` read.
    pub fn agent_status_addr(&self) -> String {
        std::net::SocketAddr::new(self.agent_healthz_bind_address, self.agent_healthz_port)
            .to_string()
    }
}

/// The complete, validated description of the node to build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSpec {
    /// API version of the source file (extraArgs semantics).
    pub api_version: KubeadmApiVersion,
    /// Node name (lowercase DNS-1123), default: hostname lowercased.
    pub node_name: String,
    /// Address the apiserver advertises (and etcd listens on).
    pub advertise_address: IpAddr,
    /// apiserver secure port (default 6443).
    pub bind_port: u16,
    /// Shared endpoint for HA (load balancer); `None` = the local endpoint.
    pub control_plane_endpoint: Option<Endpoint>,
    /// Kubernetes version.
    pub kubernetes_version: KubeVersion,
    /// Where `kubernetes_version` came from (not part of the persisted configuration).
    pub kubernetes_version_source: KubeVersionSource,
    /// Image repository (default registry.k8s.io); images are recorded, not pulled.
    pub image_repository: String,
    /// Networking.
    pub networking: Networking,
    /// Certificates dir (host path, default /etc/kubernetes/pki).
    pub certificates_dir: String,
    /// Cluster name (default kubernetes).
    pub cluster_name: String,
    /// apiserver settings.
    pub api_server: ApiServerSpec,
    /// controller-manager settings.
    pub controller_manager: ComponentSpec,
    /// scheduler settings.
    pub scheduler: ComponentSpec,
    /// etcd.
    pub etcd: Etcd,
    /// kubeadm patches directory (host path), if any.
    pub patches_dir: Option<String>,
    /// Key algorithm for generated keys.
    pub key_algorithm: KeyAlgorithm,
    /// Validity of leaf certificates (default 1 year).
    pub cert_validity: Duration,
    /// Validity of CA certificates (default 10 years).
    pub ca_cert_validity: Duration,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// plinth's own settings.
    pub plinth: PlinthSettings,
    /// Taints for this node (default: the control-plane NoSchedule taint; `[]` = none).
    pub node_taints: Vec<NodeTaint>,
    /// Bootstrap tokens init creates (default: one random token). Not persisted: they are
    /// secrets, and live in the cluster as Secrets.
    pub bootstrap_tokens: Vec<BootstrapTokenSpec>,
}

impl ClusterSpec {
    /// The endpoint clients outside this node use: controlPlaneEndpoint, else the local one.
    pub fn cluster_endpoint(&self) -> Endpoint {
        self.control_plane_endpoint
            .clone()
            .unwrap_or_else(|| self.local_endpoint())
    }

    /// This node's apiserver endpoint (advertise address + bind port).
    pub fn local_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.advertise_address.to_string(),
            port: self.bind_port,
        }
    }

    /// True when etcd runs on this node.
    pub fn has_local_etcd(&self) -> bool {
        matches!(self.etcd, Etcd::Local(_))
    }
}

/// `https://host:port`, bracketing IPv6 literals.
pub fn https_url(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    }
}

impl Endpoint {
    /// `https://host:port` with IPv6 bracketed.
    pub fn url(&self) -> String {
        https_url(&self.host, self.port)
    }
}
