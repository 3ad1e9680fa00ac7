//! Configuration: kubeadm `InitConfiguration` + `ClusterConfiguration` (v1beta3 and v1beta4)
//! plus plinth's optional `PlinthConfiguration`, parsed strictly, defaulted as kubeadm does,
//! overridden by CLI flags, validated, and turned into a [`ClusterSpec`].

mod document;
pub mod duration;
pub mod effective;
mod error;
mod features;
mod flags;
pub mod host;
mod kubeadm;
mod numbers;
pub mod persisted;
mod plinthcfg;
mod reader;
pub mod repository;
mod resolve;
pub mod spec;
pub mod validate;

pub use error::{ConfigError, FieldError, ValueError};
pub use host::{HostInfo, RealHost, StaticHost};
pub use kubeadm::{parse_key_algorithm, KEY_ALGORITHMS};
pub use plinthcfg::{parse_security_profile, security_profile_name};
pub use spec::*;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use duration::format_go_duration;

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
        kubernetes_version_source: KubeVersionSource::Default,
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
            agent_healthz_port: crate::agent::config::DEFAULT_HEALTHZ_PORT,
            manifests_dir: "/etc/kubernetes/manifests".into(),
            state_dir: "/var/lib/plinth".into(),
            log_dir: "/var/log/pods".into(),
            kubeconfig_dir: "/etc/kubernetes".into(),
            binary_repository: repository::DEFAULT_BINARY_REPOSITORY.into(),
            etcd_binary_repository: repository::DEFAULT_ETCD_BINARY_REPOSITORY.into(),
            binary_repository_ca_bundle: None,
        },
        node_taints: vec![NodeTaint::control_plane()],
        bootstrap_tokens: vec![BootstrapTokenSpec::default()],
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

/// Loads the config file at `path` (or only defaults when `None`), applies the flag
/// `overrides`, fills kubeadm's defaults using `host`, and validates everything. All
/// validation problems are reported together. A file with no document at all (empty, or only
/// comments) is refused: it is almost certainly not the file the operator meant.
pub fn load(
    path: Option<&Path>,
    overrides: &Overrides,
    host: &dyn HostInfo,
) -> Result<ClusterSpec, ConfigError> {
    match path {
        None => load_defaults(overrides, host),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            load_str(&text, &p.display().to_string(), overrides, host)
        }
    }
}

/// Like [`load`] with no config file: kubeadm's and plinth's defaults plus the flags.
pub fn load_defaults(
    overrides: &Overrides,
    host: &dyn HostInfo,
) -> Result<ClusterSpec, ConfigError> {
    resolve_all(
        &document::Documents::default(),
        error::Errors::default(),
        "(no config file)",
        overrides,
        host,
    )
}

/// Like [`load`], from the YAML text of a config file; `source` names it in error messages
/// (`file:line:col`). The text must hold at least one document.
pub fn load_str(
    yaml: &str,
    source: &str,
    overrides: &Overrides,
    host: &dyn HostInfo,
) -> Result<ClusterSpec, ConfigError> {
    let mut errs = error::Errors::default();
    let docs = document::split(yaml, source, &mut errs)?;
    if docs.count == 0 {
        return Err(ConfigError::NoDocuments {
            source_name: source.to_string(),
        });
    }
    resolve_all(&docs, errs, source, overrides, host)
}

fn resolve_all(
    docs: &document::Documents,
    mut errs: error::Errors,
    source: &str,
    overrides: &Overrides,
    host: &dyn HostInfo,
) -> Result<ClusterSpec, ConfigError> {
    let spec = resolve::resolve(docs, overrides, host, &mut errs);
    match spec {
        Some(spec) if errs.is_empty() => Ok(spec),
        _ => Err(ConfigError::Invalid {
            source_name: source.to_string(),
            errors: errs.into_vec(),
        }),
    }
}

/// The default configuration as YAML, like `kubeadm config print init-defaults`: an
/// `InitConfiguration` and a `ClusterConfiguration` (v1beta4) with placeholder node `node` at
/// `1.2.3.4`, followed by plinth's `PlinthConfiguration`.
pub fn init_defaults_yaml() -> String {
    let d = defaults_for("node", IpAddr::from([1, 2, 3, 4]));
    let v = &d.kubernetes_version;
    let service: Vec<String> = d
        .networking
        .service_subnets
        .iter()
        .map(|c| c.to_string())
        .collect();
    let data_dir = match &d.etcd {
        Etcd::Local(l) => l.data_dir.clone(),
        Etcd::External(_) => "/var/lib/etcd".to_string(),
    };
    let cp_timeout = format_go_duration(d.timeouts.control_plane_component_health_check);
    let bin_path = if d.plinth.bin_path.is_empty() {
        " []".to_string()
    } else {
        d.plinth
            .bin_path
            .iter()
            .map(|p| format!("\n- {}", p.display()))
            .collect()
    };
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
bootstrapTokens:
- groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 24h0m0s
  usages:
  - signing
  - authentication
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {addr}
  bindPort: {port}
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
  name: {name}
  taints: null
timeouts:
  controlPlaneComponentHealthCheck: {cp_timeout}
  discovery: 5m0s
  etcdAPICall: 2m0s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 1m0s
  tlsBootstrap: 5m0s
  upgradeManifests: 5m0s
---
apiServer: {{}}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: {ca_validity}
certificateValidityPeriod: {validity}
certificatesDir: {cert_dir}
clusterName: {cluster}
controllerManager: {{}}
dns: {{}}
encryptionAlgorithm: {alg}
etcd:
  local:
    dataDir: {data_dir}
imageRepository: {repo}
kind: ClusterConfiguration
kubernetesVersion: {major}.{minor}.{patch}
networking:
  dnsDomain: {dns}
  serviceSubnet: {service}
proxy: {{}}
scheduler: {{}}
---
apiVersion: plinth.io/v1alpha1
kind: PlinthConfiguration
securityProfile: {profile}
binPath:{bin_path}
agent:
  healthzBindAddress: {hz_addr}
  healthzPort: {hz_port}
manifestsDir: {manifests}
stateDir: {state}
logDir: {log}
kubeconfigDir: {kubeconfig}
binaryRepository: {binary_repo}
etcdBinaryRepository: {etcd_repo}
",
        addr = d.advertise_address,
        port = d.bind_port,
        name = d.node_name,
        ca_validity = format_go_duration(d.ca_cert_validity),
        validity = format_go_duration(d.cert_validity),
        cert_dir = d.certificates_dir,
        cluster = d.cluster_name,
        alg = d.key_algorithm.kubeadm_name(),
        repo = d.image_repository,
        major = v.major,
        minor = v.minor,
        patch = v.patch,
        dns = d.networking.dns_domain,
        service = service.join(","),
        profile = security_profile_name(d.plinth.security_profile),
        hz_addr = d.plinth.agent_healthz_bind_address,
        hz_port = d.plinth.agent_healthz_port,
        manifests = d.plinth.manifests_dir,
        state = d.plinth.state_dir,
        log = d.plinth.log_dir,
        kubeconfig = d.plinth.kubeconfig_dir,
        binary_repo = d.plinth.binary_repository,
        etcd_repo = d.plinth.etcd_binary_repository,
    )
}

#[cfg(test)]
mod tests;
