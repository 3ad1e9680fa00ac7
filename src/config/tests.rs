//! End-to-end tests of the config loader: both kubeadm API versions, extraArgs semantics,
//! defaults, flag overrides and every validation error (each asserting field, value and the
//! allowed text).

use std::net::IpAddr;
use std::time::Duration;

use super::*;

const REFERENCE_V1BETA3: &str = include_str!("testdata/input-config.yaml");
const KUBEADM_V124_DEFAULTS: &str = include_str!("testdata/kubeadm-v1.24-init-defaults.yaml");

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

fn host() -> StaticHost {
    StaticHost {
        hostname: "CP1.Example".into(),
        addresses: vec![
            ip("127.0.0.1"),
            ip("::1"),
            ip("192.168.10.5"),
            ip("10.0.0.5"),
            ip("fd00::5"),
        ],
        default_address: Some(ip("10.0.0.5")),
    }
}

/// Loads `yaml` as a file's text; "" means no config file at all (only defaults and flags).
fn load_any(yaml: &str, o: &Overrides) -> Result<ClusterSpec, ConfigError> {
    if yaml.is_empty() {
        load_defaults(o, &host())
    } else {
        load_str(yaml, "test.yaml", o, &host())
    }
}

fn load_ok_with(yaml: &str, o: &Overrides) -> ClusterSpec {
    load_any(yaml, o).unwrap_or_else(|e| panic!("should load:\n{e}"))
}

fn load_ok(yaml: &str) -> ClusterSpec {
    load_ok_with(yaml, &Overrides::default())
}

fn errors_with(yaml: &str, o: &Overrides) -> Vec<FieldError> {
    match load_any(yaml, o) {
        Ok(spec) => panic!("should fail, got {spec:?}"),
        Err(ConfigError::Invalid { errors, .. }) => errors,
        Err(other) => panic!("expected field errors, got {other}"),
    }
}

fn errors(yaml: &str) -> Vec<FieldError> {
    errors_with(yaml, &Overrides::default())
}

/// Asserts one error names `field` with `value` and an allowed text containing `allowed`.
#[track_caller]
fn assert_has(errs: &[FieldError], field: &str, value: &str, allowed: &str) {
    let found = errs
        .iter()
        .any(|e| e.field == field && e.value == value && e.allowed.contains(allowed));
    assert!(
        found,
        "no error {field} = {value:?} ({allowed}) in:\n{}",
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const V4_HEAD: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
const V3_HEAD: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
const V4_INIT: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";

fn args(list: &[(&str, &str)]) -> Vec<Arg> {
    list.iter()
        .map(|(n, v)| Arg {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

// ---------- both versions ----------

#[test]
fn reference_v1beta3_input_loads() {
    let s = load_ok(REFERENCE_V1BETA3);
    assert_eq!(s.api_version, KubeadmApiVersion::V1Beta3);
    assert_eq!(s.node_name, "cp1");
    assert_eq!(s.advertise_address, ip("192.168.10.5"));
    assert_eq!(s.bind_port, 6443);
    assert_eq!(s.kubernetes_version.to_string(), "v1.24.0");
    assert_eq!(
        s.control_plane_endpoint,
        Some(Endpoint {
            host: "lb.example.com".into(),
            port: 6443
        })
    );
    assert_eq!(s.networking.pod_subnets[0].to_string(), "10.244.0.0/16");
    assert_eq!(s.networking.service_subnets[0].to_string(), "10.96.0.0/12");
    assert_eq!(s.api_server.cert_sans, ["10.0.0.100", "api.example.com"]);
    assert_eq!(s.certificates_dir, "/etc/kubernetes/pki");
    assert!(s.has_local_etcd());
}

#[test]
fn kubeadm_v124_init_defaults_load() {
    let h = StaticHost {
        hostname: "x".into(),
        addresses: vec![ip("1.2.3.4")],
        default_address: None,
    };
    let s = load_str(KUBEADM_V124_DEFAULTS, "defaults", &Overrides::default(), &h)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.api_version, KubeadmApiVersion::V1Beta3);
    assert_eq!(s.node_name, "node");
    assert_eq!(s.image_repository, "k8s.gcr.io");
    assert_eq!(s.kubernetes_version.to_string(), "v1.24.0");
    assert_eq!(
        s.timeouts.control_plane_component_health_check,
        Duration::from_secs(240)
    );
}

#[test]
fn v1beta4_full_config() {
    let yaml = format!(
        "{V4_INIT}localAPIEndpoint:
  advertiseAddress: fd00::5
  bindPort: 7443
nodeRegistration:
  name: cp-1
  criSocket: unix:///run/containerd/containerd.sock
  taints: []
  kubeletExtraArgs:
  - name: v
    value: \"2\"
patches:
  directory: /etc/plinth/patches
timeouts:
  controlPlaneComponentHealthCheck: 2m30s
  kubeletHealthCheck: 4m
dryRun: false
---
{V4_HEAD}kubernetesVersion: v1.33.2
clusterName: prod
imageRepository: registry.example.com:5000/k8s
certificatesDir: /srv/pki
controlPlaneEndpoint: \"[fd00::100]:443\"
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 2160h
caCertificateValidityPeriod: 43800h0m0s
networking:
  serviceSubnet: fd00:96::/112,10.96.0.0/16
  podSubnet: fd00:244::/56,10.244.0.0/16
  dnsDomain: k8s.example
apiServer:
  certSANs: [\"*.apps.example.com\", 192.0.2.1]
  extraArgs:
  - name: authorization-mode
    value: Node,RBAC
  - name: feature-gates
    value: A=true
  - name: feature-gates
    value: B=true
  extraEnvs:
  - name: HTTPS_PROXY
    value: http://proxy:3128
  extraVolumes:
  - name: audit
    hostPath: /var/log/audit
    mountPath: /var/log/audit
    pathType: DirectoryOrCreate
  - name: policy
    hostPath: /etc/policy.yaml
    mountPath: /etc/policy.yaml
    readOnly: true
    pathType: File
controllerManager:
  extraArgs:
  - name: node-cidr-mask-size-ipv6
    value: \"64\"
scheduler:
  extraArgs:
  - name: profiling
    value: \"false\"
etcd:
  local:
    dataDir: /srv/etcd
    imageRepository: registry.example.com/etcd
    imageTag: 3.5.21-0
    serverCertSANs: [etcd.example.com]
    peerCertSANs: [10.0.0.9]
    extraArgs:
    - name: quota-backend-bytes
      value: \"8589934592\"
    extraEnvs:
    - name: ETCD_X
      value: y
dns:
  disabled: true
proxy:
  disabled: true
featureGates:
  WaitForAllControlPlaneComponents: true
"
    );
    let s = load_ok(&yaml);
    assert_eq!(s.api_version, KubeadmApiVersion::V1Beta4);
    assert_eq!(s.node_name, "cp-1");
    assert_eq!(s.advertise_address, ip("fd00::5"));
    assert_eq!(s.bind_port, 7443);
    assert_eq!(s.kubernetes_version.to_string(), "v1.33.2");
    assert_eq!(s.cluster_name, "prod");
    assert_eq!(s.image_repository, "registry.example.com:5000/k8s");
    assert_eq!(s.certificates_dir, "/srv/pki");
    assert_eq!(s.cluster_endpoint().url(), "https://[fd00::100]:443");
    assert_eq!(s.key_algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(s.cert_validity, Duration::from_secs(2160 * 3600));
    assert_eq!(s.ca_cert_validity, Duration::from_secs(43800 * 3600));
    assert_eq!(
        s.timeouts.control_plane_component_health_check,
        Duration::from_secs(150)
    );
    assert_eq!(s.patches_dir.as_deref(), Some("/etc/plinth/patches"));
    let svc: Vec<String> = s
        .networking
        .service_subnets
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(svc, ["fd00:96::/112", "10.96.0.0/16"]);
    assert_eq!(s.networking.pod_subnets.len(), 2);
    assert_eq!(s.networking.dns_domain, "k8s.example");
    assert_eq!(s.api_server.cert_sans, ["*.apps.example.com", "192.0.2.1"]);
    // v1beta4: file order, repeats kept.
    assert_eq!(
        s.api_server.component.extra_args,
        args(&[
            ("authorization-mode", "Node,RBAC"),
            ("feature-gates", "A=true"),
            ("feature-gates", "B=true"),
        ])
    );
    assert_eq!(
        s.api_server.component.extra_envs,
        [EnvVar {
            name: "HTTPS_PROXY".into(),
            value: "http://proxy:3128".into()
        }]
    );
    assert_eq!(
        s.api_server.component.extra_volumes[1],
        HostPathMount {
            name: "policy".into(),
            host_path: "/etc/policy.yaml".into(),
            mount_path: "/etc/policy.yaml".into(),
            read_only: true,
            path_type: "File".into(),
        }
    );
    assert!(!s.api_server.component.extra_volumes[0].read_only);
    assert_eq!(s.scheduler.extra_args, args(&[("profiling", "false")]));
    match &s.etcd {
        Etcd::Local(l) => {
            assert_eq!(l.data_dir, "/srv/etcd");
            assert_eq!(l.image_repository, "registry.example.com/etcd");
            assert_eq!(l.image_tag, "3.5.21-0");
            assert_eq!(l.server_cert_sans, ["etcd.example.com"]);
            assert_eq!(l.peer_cert_sans, ["10.0.0.9"]);
            assert_eq!(l.extra_args, args(&[("quota-backend-bytes", "8589934592")]));
            assert_eq!(l.extra_envs[0].name, "ETCD_X");
        }
        other => panic!("expected local etcd, got {other:?}"),
    }
}

#[test]
fn v1beta3_extra_args_map_sorted_by_name() {
    let yaml = format!(
        "{V3_HEAD}apiServer:
  extraArgs:
    v: 2
    authorization-mode: Node,RBAC
    audit-log-maxage: \"30\"
    enable-admission-plugins: NodeRestriction
  timeoutForControlPlane: 5m
controllerManager:
  extraArgs:
    profiling: false
etcd:
  local:
    extraArgs:
      snapshot-count: \"10000\"
      auto-compaction-retention: \"8\"
"
    );
    let s = load_ok(&yaml);
    assert_eq!(s.api_version, KubeadmApiVersion::V1Beta3);
    assert_eq!(
        s.api_server.component.extra_args,
        args(&[
            ("audit-log-maxage", "30"),
            ("authorization-mode", "Node,RBAC"),
            ("enable-admission-plugins", "NodeRestriction"),
            ("v", "2"),
        ])
    );
    assert_eq!(
        s.controller_manager.extra_args,
        args(&[("profiling", "false")])
    );
    assert_eq!(
        s.timeouts.control_plane_component_health_check,
        Duration::from_secs(300)
    );
    match &s.etcd {
        Etcd::Local(l) => assert_eq!(
            l.extra_args,
            args(&[
                ("auto-compaction-retention", "8"),
                ("snapshot-count", "10000")
            ])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_specific_fields_are_unknown_in_the_other_version() {
    let v3 = errors(&format!(
        "{V3_HEAD}encryptionAlgorithm: RSA-4096\napiServer:\n  extraEnvs: []\n"
    ));
    assert_has(
        &v3,
        "ClusterConfiguration.encryptionAlgorithm",
        "RSA-4096",
        "unknown field",
    );
    assert_has(
        &v3,
        "ClusterConfiguration.apiServer.extraEnvs",
        "[]",
        "unknown field",
    );

    let v4 = errors(&format!(
        "{V4_HEAD}apiServer:\n  timeoutForControlPlane: 4m0s\n  extraArgs:\n    v: \"2\"\n"
    ));
    assert_has(
        &v4,
        "ClusterConfiguration.apiServer.timeoutForControlPlane",
        "4m0s",
        "exists only in kubeadm.k8s.io/v1beta3 (v1beta4 uses InitConfiguration.timeouts",
    );
    assert_has(
        &v4,
        "ClusterConfiguration.apiServer.extraArgs",
        "{\"v\":\"2\"}",
        "a list, not a mapping",
    );
}

#[test]
fn other_documents_accepted_or_rejected() {
    let s = load_ok(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n---\n\
         apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n",
    );
    assert_eq!(s.api_version, KubeadmApiVersion::V1Beta4);
    let errs = errors("apiVersion: v1\nkind: Pod\n");
    assert_has(
        &errs,
        "document 1 (apiVersion/kind)",
        "apiVersion: v1, kind: Pod",
        "InitConfiguration or ClusterConfiguration",
    );
}

// ---------- defaults ----------

#[test]
fn empty_config_is_kubeadm_defaults_from_host() {
    let s = load_ok("");
    assert_eq!(s, defaults_for("cp1.example", ip("10.0.0.5")));
    let none = load(None, &Overrides::default(), &host()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none, s);
}

#[test]
fn unspecified_advertise_address_picks_default_route() {
    let s = load_ok(&format!(
        "{V4_INIT}localAPIEndpoint:\n  advertiseAddress: 0.0.0.0\n"
    ));
    assert_eq!(s.advertise_address, ip("10.0.0.5"));
}

#[test]
fn no_default_route_asks_for_an_address() {
    let h = StaticHost {
        hostname: "n".into(),
        addresses: vec![ip("127.0.0.1")],
        default_address: None,
    };
    let err = load_defaults(&Overrides::default(), &h).unwrap_err();
    let errs = err.field_errors();
    assert_has(
        errs,
        "InitConfiguration.localAPIEndpoint.advertiseAddress",
        "",
        "set localAPIEndpoint.advertiseAddress or --advertise-address",
    );
}

#[test]
fn hostname_that_is_no_dns_name_is_reported() {
    let h = StaticHost {
        hostname: "my_host".into(),
        addresses: vec![ip("10.0.0.5")],
        default_address: Some(ip("10.0.0.5")),
    };
    let err = load_defaults(&Overrides::default(), &h).unwrap_err();
    assert_has(
        err.field_errors(),
        "InitConfiguration.nodeRegistration.name",
        "my_host",
        "set --node-name",
    );
}

#[test]
fn plinth_document_is_applied() {
    let s = load_ok(
        "apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nsecurityProfile: kubeadm\n\
         binPath: [/opt/bin]\nagent:\n  healthzPort: 10300\n",
    );
    assert_eq!(s.plinth.security_profile, SecurityProfile::Kubeadm);
    assert_eq!(s.plinth.bin_path, [std::path::PathBuf::from("/opt/bin")]);
    assert_eq!(s.plinth.agent_healthz_port, 10300);
}

#[test]
fn init_defaults_yaml_loads_back_to_the_defaults() {
    let h = StaticHost {
        hostname: "ignored".into(),
        addresses: vec![ip("1.2.3.4")],
        default_address: None,
    };
    let yaml = init_defaults_yaml();
    let s = load_str(&yaml, "init-defaults", &Overrides::default(), &h)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    // The printed defaults spell kubernetesVersion out, so the loaded one comes from the file.
    let mut expected = defaults_for("node", ip("1.2.3.4"));
    expected.kubernetes_version_source = KubeVersionSource::Config;
    // Like kubeadm's, the printed defaults carry the placeholder token abcdef.0123456789abcdef:
    // loaded, it is the token init creates (the built-in default generates a random one).
    expected.bootstrap_tokens[0].token =
        Some(crate::bootstrap::token::Token::parse("t", "abcdef.0123456789abcdef").unwrap());
    assert_eq!(s, expected);
    assert!(yaml.contains("apiVersion: kubeadm.k8s.io/v1beta4"));
    assert!(yaml.contains("kind: PlinthConfiguration"));
    assert!(yaml.contains("certificateValidityPeriod: 8760h0m0s"));
    assert!(yaml.contains("caCertificateValidityPeriod: 87600h0m0s"));
}

// ---------- overrides ----------

#[test]
fn flags_override_the_file() {
    let o = Overrides {
        advertise_address: Some("10.0.0.5".into()),
        node_name: Some("flag-node".into()),
        kubernetes_version: Some("1.33.1".into()),
        pod_network_cidr: Some("10.32.0.0/16".into()),
        service_cidr: Some("10.112.0.0/16".into()),
        apiserver_cert_extra_sans: vec!["extra.example.com".into(), "10.0.0.100".into()],
        cert_dir: Some("/srv/flag-pki".into()),
        control_plane_endpoint: Some("flag-lb.example.com".into()),
    };
    let s = load_ok_with(REFERENCE_V1BETA3, &o);
    assert_eq!(s.advertise_address, ip("10.0.0.5"));
    assert_eq!(s.node_name, "flag-node");
    assert_eq!(s.kubernetes_version.to_string(), "v1.33.1");
    assert_eq!(s.networking.pod_subnets[0].to_string(), "10.32.0.0/16");
    assert_eq!(s.networking.service_subnets[0].to_string(), "10.112.0.0/16");
    // Appended, without duplicating one the file already has.
    assert_eq!(
        s.api_server.cert_sans,
        ["10.0.0.100", "api.example.com", "extra.example.com"]
    );
    assert_eq!(s.certificates_dir, "/srv/flag-pki");
    assert_eq!(
        s.control_plane_endpoint,
        Some(Endpoint {
            host: "flag-lb.example.com".into(),
            port: 6443
        })
    );
}

#[test]
fn endpoint_without_port_uses_bind_port() {
    let yaml = format!("{V4_INIT}localAPIEndpoint:\n  bindPort: 7443\n");
    let o = Overrides {
        control_plane_endpoint: Some("lb.example.com".into()),
        ..Overrides::default()
    };
    assert_eq!(load_ok_with(&yaml, &o).cluster_endpoint().port, 7443);
}

#[test]
fn flag_errors_name_the_flag() {
    let o = Overrides {
        advertise_address: Some("not-an-ip".into()),
        node_name: Some("Bad_Name".into()),
        kubernetes_version: Some("latest".into()),
        pod_network_cidr: Some("10.244.0.1/16".into()),
        service_cidr: Some("10.0.0.0/8".into()),
        apiserver_cert_extra_sans: vec!["bad san".into()],
        cert_dir: Some("pki".into()),
        control_plane_endpoint: Some("lb:99999".into()),
    };
    let errs = errors_with("", &o);
    assert_has(
        &errs,
        "--advertise-address",
        "not-an-ip",
        "IPv4 or IPv6 address",
    );
    assert_has(&errs, "--node-name", "Bad_Name", "RFC 1123 subdomain");
    assert_has(&errs, "--kubernetes-version", "latest", "network");
    assert_has(
        &errs,
        "--pod-network-cidr",
        "10.244.0.1/16",
        "did you mean 10.244.0.0/16?",
    );
    assert_has(&errs, "--service-cidr", "10.0.0.0/8", ">= /12");
    assert_has(
        &errs,
        "--apiserver-cert-extra-sans",
        "bad san",
        "IP address",
    );
    assert_has(&errs, "--cert-dir", "pki", "absolute");
    assert_has(&errs, "--control-plane-endpoint", "lb:99999", "1..65535");
    assert_eq!(errs.len(), 8, "{errs:?}");
}

// ---------- validation errors ----------

#[test]
fn invalid_advertise_address() {
    let errs = errors(&format!(
        "{V4_INIT}localAPIEndpoint:\n  advertiseAddress: 300.1.1.1\n"
    ));
    assert_has(
        &errs,
        "InitConfiguration.localAPIEndpoint.advertiseAddress",
        "300.1.1.1",
        "an IPv4 or IPv6 address",
    );
}

#[test]
fn advertise_address_not_on_this_host() {
    let errs = errors(&format!(
        "{V4_INIT}localAPIEndpoint:\n  advertiseAddress: 10.9.9.9\n"
    ));
    assert_has(
        &errs,
        "InitConfiguration.localAPIEndpoint.advertiseAddress",
        "10.9.9.9",
        "an address of a local interface (this host has: 127.0.0.1, ::1, 192.168.10.5",
    );
}

#[test]
fn bind_port_out_of_range() {
    for bad in ["0", "65536", "-1"] {
        let errs = errors(&format!("{V4_INIT}localAPIEndpoint:\n  bindPort: {bad}\n"));
        assert_has(
            &errs,
            "InitConfiguration.localAPIEndpoint.bindPort",
            bad,
            "between 1 and 65535",
        );
    }
}

#[test]
fn node_name_not_lowercase_dns() {
    let errs = errors(&format!("{V4_INIT}nodeRegistration:\n  name: CP1\n"));
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.name",
        "CP1",
        "lowercase RFC 1123 subdomain",
    );
}

#[test]
fn invalid_service_and_pod_cidrs() {
    let errs = errors(&format!(
        "{V4_HEAD}networking:\n  serviceSubnet: 10.96.0.0/33\n  podSubnet: 10.244.1.0/16\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.networking.serviceSubnet",
        "10.96.0.0/33",
        "a CIDR",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.networking.podSubnet",
        "10.244.1.0/16",
        "no host bits set (did you mean 10.244.0.0/16?)",
    );
}

#[test]
fn service_subnet_too_large() {
    let errs = errors(&format!(
        "{V4_HEAD}networking:\n  serviceSubnet: 10.0.0.0/11\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.networking.serviceSubnet",
        "10.0.0.0/11",
        "for 32-bit addresses the prefix must be >= /12",
    );
}

#[test]
fn overlapping_pod_and_service_cidrs() {
    let errs = errors(&format!(
        "{V4_HEAD}networking:\n  serviceSubnet: 10.96.0.0/12\n  podSubnet: 10.100.0.0/16\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.networking.podSubnet",
        "10.100.0.0/16",
        "does not overlap the service subnet 10.96.0.0/12 (ClusterConfiguration.networking.serviceSubnet)",
    );
}

#[test]
fn pod_subnet_smaller_than_node_mask() {
    let errs = errors(&format!(
        "{V4_HEAD}networking:\n  podSubnet: 10.244.0.0/25\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.networking.podSubnet",
        "10.244.0.0/25",
        "per-node range /24",
    );
    // ... unless node CIDR allocation is off.
    load_ok(&format!(
        "{V4_HEAD}networking:\n  podSubnet: 10.244.0.0/25\ncontrollerManager:\n  extraArgs:\n  - name: allocate-node-cidrs\n    value: \"false\"\n"
    ));
}

#[test]
fn advertise_family_must_match_service_family() {
    let o = Overrides {
        advertise_address: Some("fd00::5".into()),
        ..Overrides::default()
    };
    let errs = errors_with("", &o);
    assert_has(&errs, "--advertise-address", "fd00::5", "same IP family");
}

#[test]
fn both_local_and_external_etcd() {
    let errs = errors(&format!(
        "{V4_HEAD}etcd:\n  local:\n    dataDir: /var/lib/etcd\n  external:\n    endpoints: [https://10.0.0.10:2379]\n    caFile: /a\n    certFile: /b\n    keyFile: /c\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.etcd",
        "local and external",
        "either etcd.local or etcd.external, not both",
    );
}

#[test]
fn external_etcd_valid() {
    let s = load_ok(&format!(
        "{V4_HEAD}etcd:\n  external:\n    endpoints: [https://10.0.0.10:2379, https://etcd2.example.com:2379]\n    caFile: /etc/etcd/ca.crt\n    certFile: /etc/etcd/client.crt\n    keyFile: /etc/etcd/client.key\n"
    ));
    assert_eq!(
        s.etcd,
        Etcd::External(ExternalEtcd {
            endpoints: vec![
                "https://10.0.0.10:2379".into(),
                "https://etcd2.example.com:2379".into()
            ],
            ca_file: "/etc/etcd/ca.crt".into(),
            cert_file: "/etc/etcd/client.crt".into(),
            key_file: "/etc/etcd/client.key".into(),
        })
    );
    assert!(!s.has_local_etcd());
}

#[test]
fn external_etcd_problems() {
    let errs = errors(&format!(
        "{V4_HEAD}etcd:\n  external:\n    endpoints: []\n    caFile: etc/ca.crt\n    certFile: /c.crt\n"
    ));
    let p = "ClusterConfiguration.etcd.external";
    assert_has(
        &errs,
        &format!("{p}.endpoints"),
        "",
        "at least one etcd client URL",
    );
    assert_has(&errs, &format!("{p}.caFile"), "etc/ca.crt", "absolute path");
    assert_has(
        &errs,
        &format!("{p}.keyFile"),
        "",
        "caFile, certFile and keyFile must all be set",
    );
    let errs = errors(&format!(
        "{V4_HEAD}etcd:\n  external:\n    endpoints: [http://10.0.0.10:2379]\n    caFile: /a\n    certFile: /b\n    keyFile: /c\n"
    ));
    assert_has(
        &errs,
        &format!("{p}.endpoints[0]"),
        "http://10.0.0.10:2379",
        "https:// URL",
    );
}

#[test]
fn unknown_encryption_algorithm() {
    let errs = errors(&format!("{V4_HEAD}encryptionAlgorithm: DSA-1024\n"));
    assert_has(
        &errs,
        "ClusterConfiguration.encryptionAlgorithm",
        "DSA-1024",
        "one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384",
    );
}

#[test]
fn every_key_algorithm_accepted() {
    for (name, alg) in [
        ("RSA-2048", KeyAlgorithm::Rsa2048),
        ("RSA-3072", KeyAlgorithm::Rsa3072),
        ("RSA-4096", KeyAlgorithm::Rsa4096),
        ("ECDSA-P256", KeyAlgorithm::EcdsaP256),
        ("ECDSA-P384", KeyAlgorithm::EcdsaP384),
    ] {
        let s = load_ok(&format!("{V4_HEAD}encryptionAlgorithm: {name}\n"));
        assert_eq!(s.key_algorithm, alg);
        assert_eq!(alg.kubeadm_name(), name);
    }
}

#[test]
fn unknown_authorization_mode() {
    let v4 = errors(&format!(
        "{V4_HEAD}apiServer:\n  extraArgs:\n  - name: authorization-mode\n    value: Node,Magic\n"
    ));
    assert_has(
        &v4,
        "ClusterConfiguration.apiServer.extraArgs[0].value",
        "Node,Magic",
        "AlwaysAllow, AlwaysDeny, ABAC, Webhook, RBAC, Node (`Magic` is not one)",
    );
    let v3 = errors(&format!(
        "{V3_HEAD}apiServer:\n  extraArgs:\n    authorization-mode: rbac\n"
    ));
    assert_has(
        &v3,
        "ClusterConfiguration.apiServer.extraArgs.authorization-mode",
        "rbac",
        "`rbac` is not one",
    );
}

#[test]
fn invalid_dns_domain() {
    let errs = errors(&format!(
        "{V4_HEAD}networking:\n  dnsDomain: Cluster_Local\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.networking.dnsDomain",
        "Cluster_Local",
        "RFC 1123 subdomain",
    );
}

#[test]
fn invalid_cert_sans() {
    let errs = errors(&format!(
        "{V4_HEAD}apiServer:\n  certSANs: [ok.example.com, \"bad_name\", \"*.ok.example.com\"]\netcd:\n  local:\n    serverCertSANs: [\"a..b\"]\n    peerCertSANs: [\"*\"]\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.apiServer.certSANs[1]",
        "bad_name",
        "an IP address, a lowercase DNS name",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.etcd.local.serverCertSANs[0]",
        "a..b",
        "wildcard",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.etcd.local.peerCertSANs[0]",
        "*",
        "wildcard",
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn relative_certificates_dir() {
    let errs = errors(&format!("{V4_HEAD}certificatesDir: etc/kubernetes/pki\n"));
    assert_has(
        &errs,
        "ClusterConfiguration.certificatesDir",
        "etc/kubernetes/pki",
        "an absolute path",
    );
}

#[test]
fn invalid_durations() {
    let errs = errors(&format!(
        "{V4_HEAD}certificateValidityPeriod: 1y\ncaCertificateValidityPeriod: \"0\"\n---\n{V4_INIT}timeouts:\n  controlPlaneComponentHealthCheck: 4\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.certificateValidityPeriod",
        "1y",
        "a Go duration such as 8760h0m0s",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.caCertificateValidityPeriod",
        "0",
        "greater than zero",
    );
    assert_has(
        &errs,
        "InitConfiguration.timeouts.controlPlaneComponentHealthCheck",
        "4",
        "missing unit",
    );
}

#[test]
fn invalid_security_profile_and_healthz_port() {
    let errs = errors(
        "apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nsecurityProfile: paranoid\nagent:\n  healthzPort: 0\n",
    );
    assert_has(
        &errs,
        "PlinthConfiguration.securityProfile",
        "paranoid",
        "cis (CIS benchmark hardening, the default) or kubeadm",
    );
    assert_has(
        &errs,
        "PlinthConfiguration.agent.healthzPort",
        "0",
        "between 1 and 65535",
    );
}

#[test]
fn kubernetes_version_label_refused() {
    let errs = errors(&format!("{V4_HEAD}kubernetesVersion: stable\n"));
    assert_has(
        &errs,
        "ClusterConfiguration.kubernetesVersion",
        "stable",
        "need network access",
    );
}

#[test]
fn extra_volume_and_env_problems() {
    let errs = errors(&format!(
        "{V4_HEAD}scheduler:\n  extraVolumes:\n  - name: Bad\n    hostPath: rel\n    mountPath: /m\n    pathType: Folder\n  extraEnvs:\n  - name: X\n    valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}\n"
    ));
    let p = "ClusterConfiguration.scheduler";
    assert_has(
        &errs,
        &format!("{p}.extraVolumes[0].name"),
        "Bad",
        "RFC 1123 label",
    );
    assert_has(
        &errs,
        &format!("{p}.extraVolumes[0].hostPath"),
        "rel",
        "absolute",
    );
    assert_has(
        &errs,
        &format!("{p}.extraVolumes[0].pathType"),
        "Folder",
        "DirectoryOrCreate",
    );
    assert_has(
        &errs,
        &format!("{p}.extraEnvs[0].valueFrom"),
        "{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}",
        "`value` only",
    );
}

#[test]
fn extra_arg_names_must_not_have_dashes() {
    let errs = errors(&format!(
        "{V4_HEAD}controllerManager:\n  extraArgs:\n  - name: --profiling\n    value: \"false\"\n  - value: x\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.controllerManager.extraArgs[0].name",
        "--profiling",
        "without leading dashes",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.controllerManager.extraArgs[1].name",
        "",
        "required",
    );
}

#[test]
fn unknown_fields_everywhere_with_suggestions() {
    let errs = errors(&format!(
        "{V4_INIT}localAPIEndpoint:\n  advertiseAdress: 10.0.0.5\nnodeRegistraton:\n  name: x\n---\n\
         {V4_HEAD}networking:\n  serviceSubnett: 10.96.0.0/12\napiServer:\n  certSans: [a]\netcd:\n  local:\n    datadir: /x\n"
    ));
    assert_has(
        &errs,
        "InitConfiguration.localAPIEndpoint.advertiseAdress",
        "10.0.0.5",
        "did you mean `advertiseAddress`?",
    );
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistraton",
        "{\"name\":\"x\"}",
        "did you mean `nodeRegistration`?",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.networking.serviceSubnett",
        "10.96.0.0/12",
        "did you mean `serviceSubnet`?",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.apiServer.certSans",
        "[\"a\"]",
        "did you mean `certSANs`?",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.etcd.local.datadir",
        "/x",
        "did you mean `dataDir`?",
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn all_errors_are_collected_and_displayed_one_per_line() {
    let yaml = format!(
        "{V4_INIT}localAPIEndpoint:\n  bindPort: 0\nnodeRegistration:\n  name: UPPER\n---\n\
         {V4_HEAD}encryptionAlgorithm: nope\ncertificatesDir: rel\nnetworking:\n  dnsDomain: \"-x\"\n"
    );
    let err = load_str(&yaml, "many.yaml", &Overrides::default(), &host()).unwrap_err();
    assert_eq!(err.field_errors().len(), 5, "{err}");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines().any(|l| l
            == "InitConfiguration.localAPIEndpoint.bindPort: invalid value \"0\": a port number between 1 and 65535"),
        "{text}"
    );
}

#[test]
fn syntax_errors_carry_file_line_column() {
    let err = load_str(
        "apiVersion: x\nkind: [unclosed\n",
        "broken.yaml",
        &Overrides::default(),
        &host(),
    )
    .unwrap_err();
    match &err {
        ConfigError::Syntax {
            source_name, line, ..
        } => {
            assert_eq!(source_name, "broken.yaml");
            assert!(*line >= 2, "{err}");
        }
        other => panic!("expected a syntax error, got {other}"),
    }
    assert!(err.to_string().starts_with("broken.yaml:"), "{err}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = load(
        Some(std::path::Path::new("/nonexistent/plinth.yaml")),
        &Overrides::default(),
        &host(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/plinth.yaml"));
}

// ---- issue 8, items 8 and 9 ----

#[test]
fn empty_or_comment_only_text_has_no_documents() {
    for yaml in [
        "",
        "\n  \n",
        "# only a comment\n",
        "---\n",
        "# a\n---\n# b\n...\n",
    ] {
        match load_str(yaml, "c.yaml", &Overrides::default(), &host()) {
            Err(e @ ConfigError::NoDocuments { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with(
                        "no documents in c.yaml: expected InitConfiguration/ClusterConfiguration"
                    ),
                    "{text}"
                );
            }
            other => panic!("{yaml:?}: expected NoDocuments, got {other:?}"),
        }
    }
    // A file holding only an ignored kind has a document: defaults apply.
    load_ok("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
}

#[test]
fn numbers_are_quoted_as_written() {
    let errs = errors(&format!(
        "{V4_INIT}localAPIEndpoint:\n  bindPort: 99999999999999999999999999\n---\n\
         {V4_HEAD}kubernetesVersion: 1.30\n"
    ));
    assert_has(
        &errs,
        "InitConfiguration.localAPIEndpoint.bindPort",
        "99999999999999999999999999",
        "a port number between 1 and 65535",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.kubernetesVersion",
        "1.30",
        "quote the value",
    );
}

#[test]
fn dropped_document_adds_no_derived_errors() {
    // No default route: a dropped InitConfiguration would otherwise add an advertiseAddress
    // error, and the hostname default a node name one.
    let h = StaticHost {
        hostname: "Bad_Host".into(),
        addresses: vec![ip("127.0.0.1")],
        default_address: None,
    };
    for yaml in [
        "apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\n",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfig\n",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind:\n",
        "[1, 2]\n",
    ] {
        let err = load_str(yaml, "x.yaml", &Overrides::default(), &h).unwrap_err();
        assert_eq!(err.field_errors().len(), 1, "{yaml:?}: {err}");
    }
    // Fields of the documents that were kept are still checked.
    let err = load_str(
        &format!("apiVersion: v1\nkind: ConfigMap\n---\n{V4_HEAD}clusterName: Bad_Name\n"),
        "x.yaml",
        &Overrides::default(),
        &h,
    )
    .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "document 1 (apiVersion/kind)",
            "ClusterConfiguration.clusterName"
        ]
    );
}

#[test]
fn missing_or_empty_kind_and_api_version_are_named() {
    let errs = errors("apiVersion: kubeadm.k8s.io/v1beta4\nkind: \"\"\n");
    assert_has(
        &errs,
        "document 1.kind",
        "",
        "kind is empty: one of InitConfiguration, ClusterConfiguration, PlinthConfiguration",
    );
    let errs = errors("kind: InitConfiguration\napiVersion: 7\n");
    assert_has(
        &errs,
        "document 1.apiVersion",
        "7",
        "a string: kubeadm.k8s.io/v1beta3 or kubeadm.k8s.io/v1beta4",
    );
    let errs = errors("kind: InitConfiguration\n");
    assert_has(&errs, "document 1.apiVersion", "", "apiVersion is missing");
}

#[test]
fn alias_bomb_is_refused_in_operator_terms() {
    let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for w in names.windows(2) {
        yaml.push_str(&format!(
            "{}: &{} [{}]\n",
            w[1],
            w[1],
            vec![format!("*{}", w[0]); 10].join(", ")
        ));
    }
    match load_str(&yaml, "bomb.yaml", &Overrides::default(), &host()) {
        Err(e @ ConfigError::TooLarge { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("bomb.yaml: refusing to read the file: it "),
                "{text}"
            );
            assert!(text.contains("YAML anchors and aliases"), "{text}");
            assert!(!text.contains('{'), "no parser internals: {text}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn taints_are_checked() {
    let errs = errors(&format!(
        "{V4_INIT}nodeRegistration:\n  taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: Sometimes\n  \
         - effect: NoSchedule\n  - key: \"bad key\"\n    value: \"-x\"\n  - key: a\n"
    ));
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.taints[0].effect",
        "Sometimes",
        "one of NoSchedule, PreferNoSchedule, NoExecute",
    );
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.taints[1].key",
        "",
        "(required)",
    );
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.taints[2].key",
        "bad key",
        "a qualified name",
    );
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.taints[2].value",
        "-x",
        "at most 63 characters",
    );
    assert_has(
        &errs,
        "InitConfiguration.nodeRegistration.taints[3].effect",
        "",
        "(required)",
    );
    assert_eq!(errs.len(), 6, "{errs:?}");
    // What kubeadm writes is fine, as are null and [].
    load_ok(&format!(
        "{V4_INIT}nodeRegistration:\n  taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n  \
         - key: k\n    value: v\n    effect: NoExecute\n    timeAdded: \"2024-01-01T00:00:00Z\"\n"
    ));
}

#[test]
fn feature_gates_are_checked_against_the_version() {
    let errs = errors(&format!(
        "{V4_HEAD}kubernetesVersion: v1.30.0\nfeatureGates:\n  NoSuchGate: true\n  PublicKeysECDSA: maybe\n  \
         ControlPlaneKubeletLocalMode: true\n"
    ));
    assert_has(
        &errs,
        "ClusterConfiguration.featureGates.NoSuchGate",
        "true",
        "the gates of kubeadm v1.30 are",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.featureGates.PublicKeysECDSA",
        "maybe",
        "true or false",
    );
    assert_has(
        &errs,
        "ClusterConfiguration.featureGates.ControlPlaneKubeletLocalMode",
        "true",
        "ControlPlaneKubeletLocalMode exists from v1.31 on",
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    let errs = errors(&format!("{V4_HEAD}featureGates: [PublicKeysECDSA]\n"));
    assert_has(
        &errs,
        "ClusterConfiguration.featureGates",
        "[\"PublicKeysECDSA\"]",
        "a mapping of kubeadm feature gate names",
    );
    // The --kubernetes-version flag decides the version too.
    let o = Overrides {
        kubernetes_version: Some("v1.29.0".into()),
        ..Overrides::default()
    };
    let errs = errors_with(
        &format!("{V4_HEAD}featureGates:\n  WaitForAllControlPlaneComponents: true\n"),
        &o,
    );
    assert_has(
        &errs,
        "ClusterConfiguration.featureGates.WaitForAllControlPlaneComponents",
        "true",
        "exists from v1.30 on",
    );
}

#[test]
fn public_keys_ecdsa_gate_selects_ecdsa_keys() {
    let s = load_ok(&format!(
        "{V3_HEAD}kubernetesVersion: v1.28.0\nfeatureGates:\n  PublicKeysECDSA: true\n"
    ));
    assert_eq!(s.key_algorithm, KeyAlgorithm::EcdsaP256);
    // kubeadm: the gate, when set, wins over encryptionAlgorithm.
    let s = load_ok(&format!(
        "{V4_HEAD}kubernetesVersion: v1.33.0\nencryptionAlgorithm: RSA-4096\nfeatureGates:\n  \
         PublicKeysECDSA: false\n"
    ));
    assert_eq!(s.key_algorithm, KeyAlgorithm::Rsa2048);
}

#[test]
fn taints_and_bootstrap_tokens_are_read_and_defaulted() {
    let s = load_str(V4_INIT, "t", &Overrides::default(), &host()).unwrap();
    assert_eq!(s.node_taints, vec![NodeTaint::control_plane()]);
    assert_eq!(s.bootstrap_tokens, vec![BootstrapTokenSpec::default()]);
    assert!(s.bootstrap_tokens[0].token.is_none());

    let yaml = format!(
        "{V4_INIT}nodeRegistration:\n  taints: []\nbootstrapTokens:\n- token: abcdef.0123456789abcdef\n  \
         ttl: 1h\n  groups: [system:bootstrappers:workers]\n  usages: [authentication]\n  description: mine\n"
    );
    let s = load_str(&yaml, "t", &Overrides::default(), &host()).unwrap();
    assert!(s.node_taints.is_empty());
    let t = &s.bootstrap_tokens[0];
    assert_eq!(
        t.token.as_ref().unwrap().expose(),
        "abcdef.0123456789abcdef"
    );
    assert_eq!(t.ttl, std::time::Duration::from_secs(3600));
    assert_eq!(t.groups, ["system:bootstrappers:workers"]);
    assert_eq!(t.usages, ["authentication"]);
    assert_eq!(t.description, "mine");
}

#[test]
fn bad_bootstrap_tokens_name_the_field_and_hide_the_secret() {
    let yaml = format!(
        "{V4_INIT}bootstrapTokens:\n- token: abcdef.SECRETSECRETSECR\n  usages: [sign]\n  \
         groups: [system:nodes]\n  expires: tomorrow\n"
    );
    let e = load_str(&yaml, "t", &Overrides::default(), &host())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("InitConfiguration.bootstrapTokens[0].token"),
        "{e}"
    );
    assert!(!e.contains("SECRET"), "{e}");
    assert!(
        e.contains("InitConfiguration.bootstrapTokens[0].usages[0]"),
        "{e}"
    );
    assert!(
        e.contains("InitConfiguration.bootstrapTokens[0].groups[0]"),
        "{e}"
    );
    assert!(
        e.contains("InitConfiguration.bootstrapTokens[0].expires"),
        "{e}"
    );
}
