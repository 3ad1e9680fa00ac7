//! Command-line flags: kubeadm's defaults per component, the security profile's additions,
//! and the extraArgs merge (v1beta3 / v1beta4 semantics), as kubeadm's
//! `phases/controlplane/manifests.go`, `phases/etcd/local.go` and `util.ArgumentsToCommand`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::config::{Arg, ClusterSpec, Etcd, KubeadmApiVersion};

use super::etcd_version::{self, EtcdSemver};
use super::Component;

/// etcd client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd peer port.
pub const ETCD_PEER_PORT: u16 = 2380;
/// etcd metrics (and health) port.
pub const ETCD_METRICS_PORT: u16 = 2381;
/// kube-controller-manager secure port.
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
/// kube-scheduler secure port.
pub const SCHEDULER_PORT: u16 = 10259;

fn arg(name: &str, value: impl Into<String>) -> Arg {
    Arg {
        name: name.to_string(),
        value: value.into(),
    }
}

/// `dir/file` with exactly one slash between them (kubeadm's `filepath.Join`).
pub(crate) fn join(dir: &str, file: &str) -> String {
    crate::fs::join_host(dir, file)
}

/// `host:port`, bracketing IPv6 literals (Go's `net.JoinHostPort`).
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The loopback address of the advertise address's family.
pub(crate) fn loopback_for(addr: &IpAddr) -> &'static str {
    if addr.is_ipv6() {
        "::1"
    } else {
        "127.0.0.1"
    }
}

/// The last value of `name` in `args`, if any.
pub(crate) fn last_value<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

/// The extra args the user gave for `component`.
pub(crate) fn user_extra_args(spec: &ClusterSpec, component: Component) -> &[Arg] {
    match component {
        Component::KubeApiserver => &spec.api_server.component.extra_args,
        Component::KubeControllerManager => &spec.controller_manager.extra_args,
        Component::KubeScheduler => &spec.scheduler.extra_args,
        Component::Etcd => match &spec.etcd {
            Etcd::Local(l) => &l.extra_args,
            Etcd::External(_) => &[],
        },
    }
}

/// `https://<advertise>:2379`.
pub(crate) fn etcd_client_url(spec: &ClusterSpec) -> String {
    format!(
        "https://{}",
        host_port(&spec.advertise_address.to_string(), ETCD_CLIENT_PORT)
    )
}

fn etcd_peer_url(spec: &ClusterSpec) -> String {
    format!(
        "https://{}",
        host_port(&spec.advertise_address.to_string(), ETCD_PEER_PORT)
    )
}

fn csv<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// kubeadm's default flags for `component` (before the profile and extraArgs).
pub(crate) fn kubeadm_defaults(
    spec: &ClusterSpec,
    component: Component,
    external_ca: bool,
) -> Vec<Arg> {
    match component {
        Component::KubeApiserver => apiserver_defaults(spec),
        Component::KubeControllerManager => controller_manager_defaults(spec, external_ca),
        Component::KubeScheduler => scheduler_defaults(spec),
        Component::Etcd => etcd_defaults(spec),
    }
}

fn apiserver_defaults(spec: &ClusterSpec) -> Vec<Arg> {
    let pki = spec.certificates_dir.as_str();
    let mut a = vec![
        arg("advertise-address", spec.advertise_address.to_string()),
        arg("allow-privileged", "true"),
        arg("client-ca-file", join(pki, "ca.crt")),
        arg("enable-admission-plugins", "NodeRestriction"),
        arg("enable-bootstrap-token-auth", "true"),
        arg(
            "kubelet-client-certificate",
            join(pki, "apiserver-kubelet-client.crt"),
        ),
        arg(
            "kubelet-client-key",
            join(pki, "apiserver-kubelet-client.key"),
        ),
        arg(
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname",
        ),
        arg(
            "proxy-client-cert-file",
            join(pki, "front-proxy-client.crt"),
        ),
        arg("proxy-client-key-file", join(pki, "front-proxy-client.key")),
        arg("requestheader-allowed-names", "front-proxy-client"),
        arg(
            "requestheader-client-ca-file",
            join(pki, "front-proxy-ca.crt"),
        ),
        arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        arg("requestheader-group-headers", "X-Remote-Group"),
        arg("requestheader-username-headers", "X-Remote-User"),
        arg("secure-port", spec.bind_port.to_string()),
        arg(
            "service-account-issuer",
            format!(
                "https://kubernetes.default.svc.{}",
                spec.networking.dns_domain
            ),
        ),
        arg("service-account-key-file", join(pki, "sa.pub")),
        arg("service-account-signing-key-file", join(pki, "sa.key")),
        arg(
            "service-cluster-ip-range",
            csv(&spec.networking.service_subnets),
        ),
        arg("tls-cert-file", join(pki, "apiserver.crt")),
        arg("tls-private-key-file", join(pki, "apiserver.key")),
    ];
    match &spec.etcd {
        Etcd::External(ext) => {
            a.push(arg("etcd-servers", ext.endpoints.join(",")));
            if !ext.ca_file.is_empty() {
                a.push(arg("etcd-cafile", ext.ca_file.clone()));
            }
            if !ext.cert_file.is_empty() && !ext.key_file.is_empty() {
                a.push(arg("etcd-certfile", ext.cert_file.clone()));
                a.push(arg("etcd-keyfile", ext.key_file.clone()));
            }
        }
        Etcd::Local(local) => {
            let servers = local
                .extra_args
                .iter()
                .find(|x| x.name == "advertise-client-urls")
                .map(|x| x.value.clone())
                .unwrap_or_else(|| {
                    format!(
                        "https://{}",
                        host_port(loopback_for(&spec.advertise_address), ETCD_CLIENT_PORT)
                    )
                });
            a.push(arg("etcd-servers", servers));
            a.push(arg("etcd-cafile", join(pki, "etcd/ca.crt")));
            a.push(arg("etcd-certfile", join(pki, "apiserver-etcd-client.crt")));
            a.push(arg("etcd-keyfile", join(pki, "apiserver-etcd-client.key")));
        }
    }
    // kubeadm leaves --authorization-mode out when structured authorization is configured.
    let extra = &spec.api_server.component.extra_args;
    if !extra.iter().any(|x| x.name == "authorization-config") {
        a.push(arg("authorization-mode", "Node,RBAC"));
    }
    a
}

fn controller_manager_defaults(spec: &ClusterSpec, external_ca: bool) -> Vec<Arg> {
    let pki = spec.certificates_dir.as_str();
    let kubeconfig = join(&spec.plinth.kubeconfig_dir, "controller-manager.conf");
    let ca = join(pki, "ca.crt");
    let (sign_cert, sign_key) = if external_ca {
        // kubeadm: with an external CA the csrsigning controller must not start.
        (String::new(), String::new())
    } else {
        (ca.clone(), join(pki, "ca.key"))
    };
    let mut a = vec![
        arg("authentication-kubeconfig", kubeconfig.clone()),
        arg("authorization-kubeconfig", kubeconfig.clone()),
        arg("bind-address", "127.0.0.1"),
        arg("client-ca-file", ca.clone()),
        arg("cluster-signing-cert-file", sign_cert),
        arg("cluster-signing-key-file", sign_key),
        arg("controllers", "*,bootstrapsigner,tokencleaner"),
        arg("kubeconfig", kubeconfig),
        arg("leader-elect", "true"),
        arg(
            "requestheader-client-ca-file",
            join(pki, "front-proxy-ca.crt"),
        ),
        arg("root-ca-file", ca),
        arg("service-account-private-key-file", join(pki, "sa.key")),
        arg("use-service-account-credentials", "true"),
    ];
    if !spec.networking.pod_subnets.is_empty() {
        a.push(arg("allocate-node-cidrs", "true"));
        a.push(arg("cluster-cidr", csv(&spec.networking.pod_subnets)));
        if !spec.networking.service_subnets.is_empty() {
            a.push(arg(
                "service-cluster-ip-range",
                csv(&spec.networking.service_subnets),
            ));
        }
    }
    if !spec.cluster_name.is_empty() {
        a.push(arg("cluster-name", spec.cluster_name.clone()));
    }
    a
}

fn scheduler_defaults(spec: &ClusterSpec) -> Vec<Arg> {
    let kubeconfig = join(&spec.plinth.kubeconfig_dir, "scheduler.conf");
    vec![
        arg("authentication-kubeconfig", kubeconfig.clone()),
        arg("authorization-kubeconfig", kubeconfig.clone()),
        arg("bind-address", "127.0.0.1"),
        arg("kubeconfig", kubeconfig),
        arg("leader-elect", "true"),
    ]
}

fn etcd_defaults(spec: &ClusterSpec) -> Vec<Arg> {
    let Etcd::Local(local) = &spec.etcd else {
        return Vec::new();
    };
    let pki = spec.certificates_dir.as_str();
    let loopback = loopback_for(&spec.advertise_address);
    let client = etcd_client_url(spec);
    let peer = etcd_peer_url(spec);
    let mut a = vec![
        arg("advertise-client-urls", client.clone()),
        arg("cert-file", join(pki, "etcd/server.crt")),
        arg("client-cert-auth", "true"),
        arg("data-dir", local.data_dir.clone()),
        arg("initial-advertise-peer-urls", peer.clone()),
        arg(
            "initial-cluster",
            format!("{}={}", spec.node_name, peer.clone()),
        ),
        arg("key-file", join(pki, "etcd/server.key")),
        arg(
            "listen-client-urls",
            format!(
                "https://{},{}",
                host_port(loopback, ETCD_CLIENT_PORT),
                client
            ),
        ),
        arg(
            "listen-metrics-urls",
            format!("http://{}", host_port(loopback, ETCD_METRICS_PORT)),
        ),
        arg("listen-peer-urls", peer),
        arg("name", spec.node_name.clone()),
        arg("peer-cert-file", join(pki, "etcd/peer.crt")),
        arg("peer-client-cert-auth", "true"),
        arg("peer-key-file", join(pki, "etcd/peer.key")),
        arg("peer-trusted-ca-file", join(pki, "etcd/ca.crt")),
        arg("snapshot-count", "10000"),
        arg("trusted-ca-file", join(pki, "etcd/ca.crt")),
    ];
    a.extend(etcd_version_flags(etcd_version::effective_version(spec)));
    a
}

/// The flags newer kubeadm adds for newer etcd: the initial corruption check and watch
/// progress notifications, from 3.5.11 on (3.6 renamed them: a feature gate and a plain flag).
pub(crate) fn etcd_version_flags(v: EtcdSemver) -> Vec<Arg> {
    if v >= etcd_version::V3_6 {
        vec![
            arg("feature-gates", "InitialCorruptCheck=true"),
            arg("watch-progress-notify-interval", "5s"),
        ]
    } else if v >= etcd_version::LIVEZ_READYZ {
        vec![
            arg("experimental-initial-corrupt-check", "true"),
            arg("experimental-watch-progress-notify-interval", "5s"),
        ]
    } else {
        Vec::new()
    }
}

/// Adds `additions` to `base`, replacing every base flag of the same name (the security
/// profile's flags take precedence over kubeadm's defaults).
pub(crate) fn overlay(base: Vec<Arg>, additions: Vec<Arg>) -> Vec<Arg> {
    let names: BTreeSet<&str> = additions.iter().map(|a| a.name.as_str()).collect();
    let mut out: Vec<Arg> = base
        .into_iter()
        .filter(|a| !names.contains(a.name.as_str()))
        .collect();
    out.extend(additions);
    out
}

/// kubeadm's extraArgs merge. Every default whose name the user lists is dropped and every
/// listed value is kept (v1beta4 allows one name several times; for v1beta3, whose extraArgs
/// is a map, the last value of a repeated name wins). The result is sorted by name, then by
/// value, exactly as kubeadm's `ArgumentsToCommand` sorts.
pub fn merge_args(defaults: &[Arg], extra: &[Arg], api: KubeadmApiVersion) -> Vec<Arg> {
    let extra: Vec<Arg> = match api {
        KubeadmApiVersion::V1Beta4 => extra.to_vec(),
        KubeadmApiVersion::V1Beta3 => {
            let mut out: Vec<Arg> = Vec::new();
            for a in extra {
                if let Some(existing) = out.iter_mut().find(|e| e.name == a.name) {
                    existing.value = a.value.clone();
                } else {
                    out.push(a.clone());
                }
            }
            out
        }
    };
    let overridden: BTreeSet<&str> = extra.iter().map(|a| a.name.as_str()).collect();
    let mut out: Vec<Arg> = extra.clone();
    out.extend(
        defaults
            .iter()
            .filter(|a| !overridden.contains(a.name.as_str()))
            .cloned(),
    );
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
    out
}

/// `--name=value` strings.
pub fn to_flags(args: &[Arg]) -> Vec<String> {
    args.iter()
        .map(|a| format!("--{}={}", a.name, a.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults_for;

    fn a(n: &str, v: &str) -> Arg {
        arg(n, v)
    }

    #[test]
    fn v1beta4_repeats_replace_all_defaults_of_that_name() {
        let defaults = vec![a("x", "1"), a("x", "2"), a("b", "keep")];
        let extra = vec![a("x", "9"), a("x", "3"), a("c", "new")];
        let got = merge_args(&defaults, &extra, KubeadmApiVersion::V1Beta4);
        assert_eq!(
            to_flags(&got),
            vec!["--b=keep", "--c=new", "--x=3", "--x=9"]
        );
    }

    #[test]
    fn v1beta3_last_value_wins_and_replaces_default() {
        let defaults = vec![a("x", "1"), a("b", "keep")];
        let extra = vec![a("x", "9"), a("x", "3")];
        let got = merge_args(&defaults, &extra, KubeadmApiVersion::V1Beta3);
        assert_eq!(to_flags(&got), vec!["--b=keep", "--x=3"]);
    }

    #[test]
    fn etcd_flags_follow_version() {
        assert!(etcd_version_flags(EtcdSemver::parse("3.5.10-0").unwrap()).is_empty());
        let f = to_flags(&etcd_version_flags(EtcdSemver::parse("3.5.21-0").unwrap()));
        assert_eq!(
            f,
            vec![
                "--experimental-initial-corrupt-check=true",
                "--experimental-watch-progress-notify-interval=5s"
            ]
        );
        let f = to_flags(&etcd_version_flags(EtcdSemver::parse("3.6.4-0").unwrap()));
        assert_eq!(
            f,
            vec![
                "--feature-gates=InitialCorruptCheck=true",
                "--watch-progress-notify-interval=5s"
            ]
        );
    }

    #[test]
    fn ipv6_advertise_uses_ipv6_loopback_and_brackets() {
        let spec = defaults_for("cp1", "fd00::5".parse().unwrap());
        let etcd = to_flags(&kubeadm_defaults(&spec, Component::Etcd, false));
        assert!(
            etcd.contains(
                &"--listen-client-urls=https://[::1]:2379,https://[fd00::5]:2379".to_string()
            ),
            "{etcd:?}"
        );
        assert!(etcd.contains(&"--listen-metrics-urls=http://[::1]:2381".to_string()));
        let api = to_flags(&kubeadm_defaults(&spec, Component::KubeApiserver, false));
        assert!(api.contains(&"--etcd-servers=https://[::1]:2379".to_string()));
    }

    #[test]
    fn external_ca_blanks_signing_files() {
        let spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        let cm = to_flags(&kubeadm_defaults(
            &spec,
            Component::KubeControllerManager,
            true,
        ));
        assert!(cm.contains(&"--cluster-signing-cert-file=".to_string()));
        assert!(cm.contains(&"--cluster-signing-key-file=".to_string()));
    }

    #[test]
    fn overlay_replaces_same_named_defaults() {
        let got = overlay(vec![a("p", "1"), a("q", "2")], vec![a("p", "9")]);
        assert_eq!(to_flags(&got), vec!["--q=2", "--p=9"]);
    }
}
