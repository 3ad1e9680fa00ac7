//! Turning the read documents + CLI flags + host facts into a validated [`ClusterSpec`]:
//! kubeadm's defaults, flags over file, and the checks that need more than one field.

use std::net::IpAddr;

use super::document::Documents;
use super::error::Errors;
use super::features;
use super::host::{is_unspecified, HostInfo};
use super::kubeadm::{read_cluster, read_init, At, RawCluster};
use super::plinthcfg::read_plinth;
use super::spec::{ApiServerSpec, Arg, Cidr, ClusterSpec, KubeVersionSource};
use super::validate::{
    check_absolute, check_cert_san, check_dns1123_subdomain, check_port, cidrs_overlap,
    parse_host_port, parse_ip, parse_kube_version, parse_subnets, SubnetKind,
    POD_SUBNET_NODE_MASK_MAX_DIFF,
};
use super::{defaults_for, Overrides};

/// The flag's value if given, else the file's.
fn pick(flag: &Option<String>, flag_name: &str, file: Option<At<String>>) -> Option<At<String>> {
    match flag {
        Some(v) => Some(At {
            field: flag_name.to_string(),
            value: v.clone(),
        }),
        None => file,
    }
}

/// Parses a subnet list, reporting every problem against its source field.
fn subnets(at: &At<String>, kind: SubnetKind, errs: &mut Errors) -> Option<Vec<Cidr>> {
    match parse_subnets(&at.value, kind) {
        Ok(list) => Some(list),
        Err(problems) => {
            for (value, allowed) in problems {
                errs.push(&at.field, value, allowed);
            }
            None
        }
    }
}

/// The last value given for `name` (later repeats win, as on a command line).
fn last_arg<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

/// kubeadm's check that each pod subnet can be split into per-node ranges.
fn check_pod_node_masks(at: &At<String>, pods: &[Cidr], cm_args: &[Arg], errs: &mut Errors) {
    if last_arg(cm_args, "allocate-node-cidrs") == Some("false") {
        return;
    }
    for pod in pods {
        let (flag, default) = if pod.addr.is_ipv4() {
            ("node-cidr-mask-size-ipv4", 24u8)
        } else {
            ("node-cidr-mask-size-ipv6", 64u8)
        };
        let mask = match last_arg(cm_args, flag) {
            None => default,
            Some(v) => match v.parse::<u8>() {
                Ok(m) => m,
                Err(_) => {
                    errs.push(
                        format!("ClusterConfiguration.controllerManager.extraArgs ({flag})"),
                        v,
                        "an integer prefix length",
                    );
                    continue;
                }
            },
        };
        if pod.prefix > mask {
            errs.push(
                &at.field,
                pod.to_string(),
                format!(
                    "a pod subnet at least as large as the per-node range /{mask} \
                     (controller-manager {flag}); use a shorter prefix or set {flag}"
                ),
            );
        } else if mask - pod.prefix > POD_SUBNET_NODE_MASK_MAX_DIFF {
            errs.push(
                &at.field,
                pod.to_string(),
                format!(
                    "a pod subnet whose prefix is within {POD_SUBNET_NODE_MASK_MAX_DIFF} bits of the \
                     per-node range /{mask} (controller-manager {flag}), i.e. at least /{}",
                    mask - POD_SUBNET_NODE_MASK_MAX_DIFF
                ),
            );
        }
    }
}

/// Resolves everything; `None` when any error was recorded in `errs`. The steps run in this
/// order so that errors are reported in the order of the fields.
pub(crate) fn resolve(
    docs: &Documents,
    overrides: &Overrides,
    host: &dyn HostInfo,
    errs: &mut Errors,
) -> Option<ClusterSpec> {
    let version = docs.api_version();
    let init = read_init(
        docs.init.as_ref().map(|(_, v)| v),
        docs.init.as_ref().map_or(version, |(v, _)| *v),
        errs,
    );
    let cluster = read_cluster(
        docs.cluster.as_ref().map(|(_, v)| v),
        docs.cluster.as_ref().map_or(version, |(v, _)| *v),
        errs,
    );

    let mut spec = defaults_for("", IpAddr::from([0, 0, 0, 0]));
    spec.api_version = version;
    spec.plinth = read_plinth(docs.plinth.as_ref(), spec.plinth.clone(), errs);
    if docs.dropped {
        // A document was refused (wrong apiVersion/kind, duplicate, not a mapping): its
        // fields would be missing below and their defaults (the default route's address, the
        // hostname, ...) would produce errors that are only echoes of the real one.
        return None;
    }

    resolve_node_name(&mut spec, overrides, init.node_name, host, errs);
    if let Some(at) = &init.bind_port {
        match check_port(at.value) {
            Ok(p) => spec.bind_port = p,
            Err(allowed) => errs.push(&at.field, at.value.to_string(), allowed),
        }
    }
    let advertise = resolve_advertise(&mut spec, overrides, init.advertise_address, host, errs);
    let gates = resolve_version(&mut spec, overrides, &cluster, errs);
    if let Some(at) = pick(
        &overrides.control_plane_endpoint,
        "--control-plane-endpoint",
        cluster.control_plane_endpoint.clone(),
    ) {
        // The port defaults to the bind port.
        match parse_host_port(&at.value, spec.bind_port) {
            Ok(ep) => spec.control_plane_endpoint = Some(ep),
            Err(allowed) => errs.push(at.field, at.value, allowed),
        }
    }
    if let Some(repo) = &cluster.image_repository {
        spec.image_repository = repo.clone();
    }
    if let Some(domain) = &cluster.dns_domain {
        spec.networking.dns_domain = domain.clone();
    }
    if let Some(name) = &cluster.cluster_name {
        spec.cluster_name = name.clone();
    }
    resolve_networking(&mut spec, overrides, &cluster, advertise.as_ref(), errs);
    if let Some(at) = pick(
        &overrides.cert_dir,
        "--cert-dir",
        cluster.certificates_dir.clone(),
    ) {
        match check_absolute(&at.value) {
            Ok(()) => spec.certificates_dir = at.value,
            Err(allowed) => errs.push(at.field, at.value, allowed),
        }
    }
    // Only warnings, no errors: before the components are moved out of `cluster`.
    resolve_crypto(&mut spec, &cluster, gates);
    resolve_api_server(&mut spec, overrides, cluster.api_server, errs);
    spec.controller_manager = cluster.controller_manager;
    spec.scheduler = cluster.scheduler;
    if let Some(etcd) = cluster.etcd {
        spec.etcd = etcd;
    }
    spec.patches_dir = init.patches_dir;
    if let Some(taints) = init.taints {
        spec.node_taints = taints;
    }
    if !init.bootstrap_tokens.is_empty() {
        spec.bootstrap_tokens = init.bootstrap_tokens;
    }
    if let Some(d) = init.control_plane_timeout.or(cluster.control_plane_timeout) {
        spec.timeouts.control_plane_component_health_check = d;
    }

    errs.is_empty().then_some(spec)
}

/// Node name: flag, file, else the hostname lowercased (as kubeadm does).
fn resolve_node_name(
    spec: &mut ClusterSpec,
    overrides: &Overrides,
    file: Option<At<String>>,
    host: &dyn HostInfo,
    errs: &mut Errors,
) {
    let name_field = "InitConfiguration.nodeRegistration.name";
    let (name_at, from_host) = match pick(&overrides.node_name, "--node-name", file) {
        Some(at) => (at, false),
        None => (
            At {
                field: name_field.to_string(),
                value: host.hostname().trim().to_lowercase(),
            },
            true,
        ),
    };
    match check_dns1123_subdomain(&name_at.value) {
        Ok(()) => spec.node_name = name_at.value,
        Err(allowed) => {
            let allowed = if from_host {
                format!(
                    "{allowed} (defaulted from this host's name; set --node-name or \
                     nodeRegistration.name)"
                )
            } else {
                allowed.reason
            };
            errs.push(name_at.field, name_at.value, allowed);
        }
    }
}

/// Advertise address: flag, file, else the default route's address (kubeadm's rule). Returns
/// the field it came from and the address, for the family check of the service subnet.
fn resolve_advertise(
    spec: &mut ClusterSpec,
    overrides: &Overrides,
    file: Option<At<String>>,
    host: &dyn HostInfo,
    errs: &mut Errors,
) -> Option<(String, IpAddr)> {
    let addr_field = "InitConfiguration.localAPIEndpoint.advertiseAddress";
    let given = pick(&overrides.advertise_address, "--advertise-address", file);
    let mut advertise: Option<(String, IpAddr)> = None;
    let auto = |errs: &mut Errors, field: &str, value: &str| match host.default_route_address() {
        Some(ip) => Some((field.to_string(), ip)),
        None => {
            errs.push(
                field,
                value,
                "an IP address of this host: none was given and no default route exists to \
                 pick one from; set localAPIEndpoint.advertiseAddress or --advertise-address",
            );
            None
        }
    };
    match given {
        Some(at) => match parse_ip(&at.value) {
            Ok(ip) if is_unspecified(&ip) => advertise = auto(errs, &at.field, &at.value),
            Ok(ip) => {
                let local = host.local_addresses();
                if local.contains(&ip) {
                    advertise = Some((at.field, ip));
                } else {
                    let list: Vec<String> = local.iter().map(IpAddr::to_string).collect();
                    errs.push(
                        at.field,
                        at.value,
                        format!(
                            "an address of a local interface (this host has: {})",
                            if list.is_empty() {
                                "none".to_string()
                            } else {
                                list.join(", ")
                            }
                        ),
                    );
                }
            }
            Err(allowed) => errs.push(at.field, at.value, allowed),
        },
        None => advertise = auto(errs, addr_field, ""),
    }
    if let Some((_, ip)) = &advertise {
        spec.advertise_address = *ip;
    }
    advertise
}

/// Kubernetes version: flag, file, else left to the caller (the kube-apiserver binary that
/// will run, or plinth's default when there is none; see `init::default_kubernetes_version`).
/// Then kubeadm's feature gates of that version (of the default one when it is unset).
fn resolve_version(
    spec: &mut ClusterSpec,
    overrides: &Overrides,
    cluster: &RawCluster,
    errs: &mut Errors,
) -> features::Effects {
    let mut version_ok = true;
    if let Some(at) = pick(
        &overrides.kubernetes_version,
        "--kubernetes-version",
        cluster.kubernetes_version.clone(),
    ) {
        match parse_kube_version(&at.value) {
            Ok(v) => {
                spec.kubernetes_version = v;
                spec.kubernetes_version_source = KubeVersionSource::Config;
            }
            Err(allowed) => {
                errs.push(at.field, at.value, allowed);
                version_ok = false;
            }
        }
    }
    features::check(
        &cluster.feature_gates,
        version_ok.then_some(&spec.kubernetes_version),
        errs,
    )
}

/// Networking: flags over file, then kubeadm's cross checks (pod subnets vs. per-node masks
/// and the service subnets; the advertise address in the primary service family).
fn resolve_networking(
    spec: &mut ClusterSpec,
    overrides: &Overrides,
    cluster: &RawCluster,
    advertise: Option<&(String, IpAddr)>,
    errs: &mut Errors,
) {
    let svc_at = pick(
        &overrides.service_cidr,
        "--service-cidr",
        cluster.service_subnet.clone(),
    );
    let svc_field = svc_at.as_ref().map_or(
        "ClusterConfiguration.networking.serviceSubnet".to_string(),
        |a| a.field.clone(),
    );
    let mut services_ok = true;
    if let Some(at) = &svc_at {
        match subnets(at, SubnetKind::Service, errs) {
            Some(list) => spec.networking.service_subnets = list,
            None => services_ok = false,
        }
    }
    if let Some(at) = pick(
        &overrides.pod_network_cidr,
        "--pod-network-cidr",
        cluster.pod_subnet.clone(),
    ) {
        if let Some(pods) = subnets(&at, SubnetKind::Pod, errs) {
            check_pod_node_masks(&at, &pods, &cluster.controller_manager.extra_args, errs);
            if services_ok {
                check_pod_service_overlap(
                    &at,
                    &pods,
                    &spec.networking.service_subnets,
                    &svc_field,
                    errs,
                );
            }
            spec.networking.pod_subnets = pods;
        }
    }
    // The apiserver requires the advertise address in the primary service family.
    if let (Some((field, ip)), true) = (advertise, services_ok) {
        if let Some(primary) = spec.networking.service_subnets.first() {
            if primary.addr.is_ipv4() != ip.is_ipv4() {
                errs.push(
                    field,
                    ip.to_string(),
                    format!(
                        "an address of the same IP family as the primary service subnet {primary} \
                         ({svc_field}); kube-apiserver refuses mixed families"
                    ),
                );
            }
        }
    }
}

/// kubeadm's check that no pod subnet overlaps a service subnet.
fn check_pod_service_overlap(
    at: &At<String>,
    pods: &[Cidr],
    services: &[Cidr],
    svc_field: &str,
    errs: &mut Errors,
) {
    for pod in pods {
        for svc in services {
            if cidrs_overlap(pod, svc) {
                errs.push(
                    &at.field,
                    pod.to_string(),
                    format!(
                        "a pod subnet that does not overlap the service subnet {svc} \
                         ({svc_field})"
                    ),
                );
            }
        }
    }
}

/// apiserver settings, with --apiserver-cert-extra-sans appended to certSANs.
fn resolve_api_server(
    spec: &mut ClusterSpec,
    overrides: &Overrides,
    api_server: ApiServerSpec,
    errs: &mut Errors,
) {
    spec.api_server = api_server;
    for san in overrides
        .apiserver_cert_extra_sans
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        match check_cert_san(san) {
            Ok(()) => {
                if !spec.api_server.cert_sans.iter().any(|s| s == san) {
                    spec.api_server.cert_sans.push(san.to_string());
                }
            }
            Err(allowed) => errs.push("--apiserver-cert-extra-sans", san, allowed),
        }
    }
}

/// Key algorithm (the PublicKeysECDSA gate wins, as in kubeadm) and validity periods.
fn resolve_crypto(spec: &mut ClusterSpec, cluster: &RawCluster, gates: features::Effects) {
    if let Some(alg) = cluster.key_algorithm {
        spec.key_algorithm = alg;
    }
    if let Some(alg) = gates.key_algorithm {
        // kubeadm: the PublicKeysECDSA gate, when set, wins over encryptionAlgorithm.
        if cluster.key_algorithm.is_some_and(|a| a != alg) {
            tracing::warn!(
                "featureGates.PublicKeysECDSA overrides encryptionAlgorithm: using {}",
                alg.kubeadm_name()
            );
        }
        spec.key_algorithm = alg;
    }
    if let Some(d) = cluster.cert_validity {
        spec.cert_validity = d;
    }
    if let Some(d) = cluster.ca_cert_validity {
        spec.ca_cert_validity = d;
    }
    if spec.cert_validity > spec.ca_cert_validity {
        tracing::warn!(
            "certificateValidityPeriod is longer than caCertificateValidityPeriod: leaf \
             certificates will outlive their CA"
        );
    }
}
