//! Reading kubeadm's `InitConfiguration` and `ClusterConfiguration` (v1beta3 and v1beta4)
//! strictly: every field kubeadm knows is accepted (those plinth does not use are ignored),
//! anything else is an unknown-field error. Values that do not depend on CLI flags are
//! validated here; the rest is returned raw, with its field path, for the resolver.

use std::time::Duration;

use serde_json::Value;

use super::duration::{parse_go_duration, DURATION_HELP};
use super::error::{Errors, ValueError};
use super::features::check_flag_value;
use super::flags::check_extra_args;
use super::reader::{child, render, Obj};
use super::spec::{
    ApiServerSpec, Arg, BootstrapTokenSpec, ComponentSpec, EnvVar, Etcd, ExternalEtcd,
    HostPathMount, KeyAlgorithm, KubeadmApiVersion, LocalEtcd, NodeTaint,
};
use super::validate::{
    check_absolute, check_cert_san, check_dns1123_label, check_dns1123_subdomain,
    check_image_repository, check_label_value, check_qualified_name, parse_host_port,
    AUTHORIZATION_MODES, HOST_PATH_TYPES, TAINT_EFFECTS,
};

/// What a port field allows.
const PORT: &str = "a port number between 1 and 65535";

/// Where v1beta4-only fields are valid (for unknown-field hints in v1beta3 documents).
const V4: &str = "kubeadm.k8s.io/v1beta4";

/// A value as written in the file, with the full path of the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    /// Full field path, e.g. `InitConfiguration.localAPIEndpoint.bindPort`.
    pub field: String,
    /// The value.
    pub value: T,
}

/// What plinth takes from an `InitConfiguration`.
#[derive(Debug, Default)]
pub(crate) struct RawInit {
    /// `nodeRegistration.name`.
    pub node_name: Option<At<String>>,
    /// `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<At<String>>,
    /// `localAPIEndpoint.bindPort`.
    pub bind_port: Option<At<i64>>,
    /// `patches.directory` (validated).
    pub patches_dir: Option<String>,
    /// v1beta4 `timeouts.controlPlaneComponentHealthCheck` (validated).
    pub control_plane_timeout: Option<Duration>,
    /// `nodeRegistration.taints` (validated); `None` when absent or null.
    pub taints: Option<Vec<NodeTaint>>,
    /// `bootstrapTokens` (validated, defaulted per entry); empty when absent.
    pub bootstrap_tokens: Vec<BootstrapTokenSpec>,
}

/// What plinth takes from a `ClusterConfiguration`.
#[derive(Debug, Default)]
pub(crate) struct RawCluster {
    /// `kubernetesVersion`.
    pub kubernetes_version: Option<At<String>>,
    /// `controlPlaneEndpoint`.
    pub control_plane_endpoint: Option<At<String>>,
    /// `imageRepository` (validated).
    pub image_repository: Option<String>,
    /// `networking.serviceSubnet`.
    pub service_subnet: Option<At<String>>,
    /// `networking.podSubnet`.
    pub pod_subnet: Option<At<String>>,
    /// `networking.dnsDomain` (validated).
    pub dns_domain: Option<String>,
    /// `certificatesDir`.
    pub certificates_dir: Option<At<String>>,
    /// `clusterName` (validated).
    pub cluster_name: Option<String>,
    /// `apiServer` (validated).
    pub api_server: ApiServerSpec,
    /// `controllerManager` (validated).
    pub controller_manager: ComponentSpec,
    /// `scheduler` (validated).
    pub scheduler: ComponentSpec,
    /// `etcd` (validated); `None` when absent or invalid.
    pub etcd: Option<Etcd>,
    /// v1beta4 `encryptionAlgorithm`.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// v1beta4 `certificateValidityPeriod`.
    pub cert_validity: Option<Duration>,
    /// v1beta4 `caCertificateValidityPeriod`.
    pub ca_cert_validity: Option<Duration>,
    /// v1beta3 `apiServer.timeoutForControlPlane`.
    pub control_plane_timeout: Option<Duration>,
    /// `featureGates` as (field path, gate, value as written); checked by the resolver,
    /// which knows the Kubernetes version.
    pub feature_gates: Vec<(String, String, Value)>,
}

/// Reads a field as `At<String>`, treating "" as unset (kubeadm's `omitempty`).
fn at_string(obj: &mut Obj, key: &'static str, errs: &mut Errors) -> Option<At<String>> {
    let field = obj.field(key);
    obj.nonempty_string(key, errs)
        .map(|value| At { field, value })
}

/// Reads and checks a string field with `check`; invalid values are reported and dropped.
fn checked_string(
    obj: &mut Obj,
    key: &'static str,
    check: fn(&str) -> Result<(), ValueError>,
    errs: &mut Errors,
) -> Option<String> {
    let at = at_string(obj, key, errs)?;
    match check(&at.value) {
        Ok(()) => Some(at.value),
        Err(allowed) => {
            errs.push(at.field, at.value, allowed);
            None
        }
    }
}

/// Reads a Go duration field; zero is refused when `positive`.
fn duration(
    obj: &mut Obj,
    key: &'static str,
    positive: bool,
    errs: &mut Errors,
) -> Option<Duration> {
    let at = at_string(obj, key, errs)?;
    match parse_go_duration(&at.value) {
        Ok(d) if positive && d.is_zero() => {
            errs.push(
                at.field,
                at.value,
                format!("{DURATION_HELP}, greater than zero"),
            );
            None
        }
        Ok(d) => Some(d),
        Err(why) => {
            errs.push(at.field, at.value, format!("{DURATION_HELP} ({why})"));
            None
        }
    }
}

/// Reads and validates a list of SANs.
fn cert_sans(obj: &mut Obj, key: &'static str, errs: &mut Errors) -> Vec<String> {
    let items = obj.string_list(key, errs).unwrap_or_default();
    let mut out = Vec::new();
    for (path, san) in items {
        match check_cert_san(&san) {
            Ok(()) => out.push(san),
            Err(allowed) => errs.push(path, san, allowed),
        }
    }
    out
}

/// An extra argument's name: the flag without dashes.
fn check_arg_name(name: &str) -> Result<(), ValueError> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.contains('=')
        || name.chars().any(char::is_whitespace);
    if bad {
        Err(ValueError::new(
            "a flag name without leading dashes and without '=' (e.g. `profiling`)",
        ))
    } else {
        Ok(())
    }
}

/// Reads `extraArgs`: a map (v1beta3, sorted by name) or a list of {name, value} (v1beta4, in
/// file order, repeats allowed). Each arg comes with the path of its value.
fn extra_args(obj: &mut Obj, version: KubeadmApiVersion, errs: &mut Errors) -> Vec<(String, Arg)> {
    let mut out = Vec::new();
    match version {
        KubeadmApiVersion::V1Beta3 => {
            let field = obj.field("extraArgs");
            for (path, name, value) in obj.string_map("extraArgs", errs).unwrap_or_default() {
                match check_arg_name(&name) {
                    Ok(()) => out.push((path, Arg { name, value })),
                    Err(allowed) => errs.push(format!("{field} key"), name, allowed),
                }
            }
        }
        KubeadmApiVersion::V1Beta4 => {
            for (path, item) in obj.list("extraArgs", errs).unwrap_or_default() {
                let mut o = Obj::new(path.clone(), item, errs);
                let name = o.string("name", errs);
                let value = o.string("value", errs).unwrap_or_default();
                o.finish(errs);
                match name {
                    Some(name) => match check_arg_name(&name) {
                        Ok(()) => out.push((format!("{path}.value"), Arg { name, value })),
                        Err(allowed) => errs.push(format!("{path}.name"), name, allowed),
                    },
                    None => errs.push(
                        format!("{path}.name"),
                        "",
                        "a flag name (required), e.g. {name: profiling, value: \"false\"}",
                    ),
                }
            }
        }
    }
    out
}

/// Reads `extraVolumes`.
fn extra_volumes(obj: &mut Obj, errs: &mut Errors) -> Vec<HostPathMount> {
    let mut out: Vec<HostPathMount> = Vec::new();
    for (path, item) in obj.list("extraVolumes", errs).unwrap_or_default() {
        let mut o = Obj::new(path.clone(), item, errs);
        let name = o.string("name", errs).unwrap_or_default();
        let host_path = o.string("hostPath", errs).unwrap_or_default();
        let mount_path = o.string("mountPath", errs).unwrap_or_default();
        let read_only = o.bool("readOnly", errs).unwrap_or(false);
        let path_type = o.string("pathType", errs).unwrap_or_default();
        o.finish(errs);
        let mut ok = true;
        if let Err(allowed) = check_dns1123_label(&name) {
            errs.push(
                format!("{path}.name"),
                &name,
                format!("{allowed} (required)"),
            );
            ok = false;
        } else if out.iter().any(|v| v.name == name) {
            errs.push(
                format!("{path}.name"),
                &name,
                "a volume name not used by another extra volume of this component",
            );
            ok = false;
        }
        for (key, value) in [("hostPath", &host_path), ("mountPath", &mount_path)] {
            if let Err(allowed) = check_absolute(value) {
                errs.push(
                    format!("{path}.{key}"),
                    value,
                    format!("{allowed} (required)"),
                );
                ok = false;
            }
        }
        if out.iter().any(|v| v.mount_path == mount_path) {
            errs.push(
                format!("{path}.mountPath"),
                &mount_path,
                "a mount path not used by another extra volume of this component",
            );
            ok = false;
        }
        if !HOST_PATH_TYPES.contains(&path_type.as_str()) {
            errs.push(
                format!("{path}.pathType"),
                &path_type,
                format!("one of {}", HOST_PATH_TYPES[1..].join(", ")),
            );
            ok = false;
        }
        if ok {
            out.push(HostPathMount {
                name,
                host_path,
                mount_path,
                read_only,
                path_type,
            });
        }
    }
    out
}

/// Reads v1beta4 `extraEnvs` (name + value; `valueFrom` needs an API server, so is refused).
fn extra_envs(obj: &mut Obj, errs: &mut Errors) -> Vec<EnvVar> {
    let mut out = Vec::new();
    for (path, item) in obj.list("extraEnvs", errs).unwrap_or_default() {
        let mut o = Obj::new(path.clone(), item, errs);
        let name = o.string("name", errs).unwrap_or_default();
        let value = o.string("value", errs).unwrap_or_default();
        if let Some(v) = o.raw("valueFrom") {
            errs.push(
                format!("{path}.valueFrom"),
                render(v),
                "`value` only: plinth's static pods have no API server to resolve valueFrom",
            );
        }
        o.finish(errs);
        if name.is_empty() || name.contains('=') {
            errs.push(
                format!("{path}.name"),
                &name,
                "an environment variable name (required, without '=')",
            );
            continue;
        }
        out.push(EnvVar { name, value });
    }
    out
}

/// Reads the fields shared by apiServer, controllerManager and scheduler.
fn component(
    obj: &mut Obj,
    name: &'static str,
    version: KubeadmApiVersion,
    errs: &mut Errors,
) -> (ComponentSpec, Vec<(String, Arg)>) {
    let args = extra_args(obj, version, errs);
    check_extra_args(name, &args, errs);
    for (path, arg) in args.iter().filter(|(_, a)| a.name == "feature-gates") {
        check_flag_value(path, &arg.value, errs);
    }
    let extra_volumes = extra_volumes(obj, errs);
    let extra_envs = match version {
        KubeadmApiVersion::V1Beta4 => extra_envs(obj, errs),
        KubeadmApiVersion::V1Beta3 => {
            obj.only_in(&["extraEnvs"], V4);
            Vec::new()
        }
    };
    let spec = ComponentSpec {
        extra_args: args.iter().map(|(_, a)| a.clone()).collect(),
        extra_volumes,
        extra_envs,
    };
    (spec, args)
}

/// Reads a component mapping at `key` of the ClusterConfiguration (absent = defaults).
fn component_at(
    cluster: &mut Obj,
    key: &'static str,
    name: &'static str,
    version: KubeadmApiVersion,
    errs: &mut Errors,
) -> ComponentSpec {
    match cluster.obj(key, errs) {
        Some(mut o) => {
            let (spec, _) = component(&mut o, name, version, errs);
            o.finish(errs);
            spec
        }
        None => ComponentSpec::default(),
    }
}

/// Checks every `authorization-mode` value of the apiserver's extra args.
fn check_authorization_modes(args: &[(String, Arg)], errs: &mut Errors) {
    for (path, arg) in args.iter().filter(|(_, a)| a.name == "authorization-mode") {
        for mode in arg.value.split(',') {
            if !AUTHORIZATION_MODES.contains(&mode) {
                errs.push(
                    path.clone(),
                    &arg.value,
                    format!(
                        "a comma-separated list of authorization modes from {} (`{mode}` is not one)",
                        AUTHORIZATION_MODES.join(", ")
                    ),
                );
            }
        }
    }
}

/// Reads `nodeRegistration.taints`: `None` when absent or null (kubeadm's default taint
/// applies), `Some(list)` otherwise (`[]` = no taints). Invalid entries are reported and dropped.
fn read_taints(nr: &mut Obj, errs: &mut Errors) -> Option<Vec<NodeTaint>> {
    let items = nr.list("taints", errs)?;
    let mut out = Vec::new();
    for (path, item) in items {
        let mut o = Obj::new(path.clone(), item, errs);
        let has = |k: &str| o.has(k);
        let (has_key, has_effect) = (has("key"), has("effect"));
        let key = o.string("key", errs);
        let value = o.string("value", errs);
        let effect = o.string("effect", errs);
        o.ignore(&["timeAdded"]);
        o.finish(errs);
        let field = |k: &str| format!("{path}.{k}");
        let mut ok = true;
        match &key {
            Some(k) => {
                if let Err(allowed) = check_qualified_name(k) {
                    errs.push(field("key"), k, allowed);
                    ok = false;
                }
            }
            None if !has_key => {
                errs.push(
                    field("key"),
                    "",
                    "a taint key (required), e.g. node-role.kubernetes.io/control-plane",
                );
                ok = false;
            }
            None => ok = false,
        }
        if let Some(v) = &value {
            if let Err(allowed) = check_label_value(v) {
                errs.push(field("value"), v, allowed);
                ok = false;
            }
        }
        match &effect {
            Some(e) if TAINT_EFFECTS.contains(&e.as_str()) => {}
            Some(e) => {
                errs.push(
                    field("effect"),
                    e,
                    format!("one of {}", TAINT_EFFECTS.join(", ")),
                );
                ok = false;
            }
            None if !has_effect => {
                errs.push(
                    field("effect"),
                    "",
                    format!("one of {} (required)", TAINT_EFFECTS.join(", ")),
                );
                ok = false;
            }
            None => ok = false,
        }
        if let (true, Some(key), Some(effect)) = (ok, key, effect) {
            out.push(NodeTaint {
                key,
                value: value.unwrap_or_default(),
                effect,
            });
        }
    }
    Some(out)
}

/// Reads `bootstrapTokens`, defaulting each entry as kubeadm does (ttl 24h, usages signing +
/// authentication, the default-node-token group, kubeadm's description). Invalid values are
/// reported with their field path; the token secret is never echoed.
fn read_bootstrap_tokens(doc: &mut Obj, errs: &mut Errors) -> Vec<BootstrapTokenSpec> {
    use crate::bootstrap::token::{check_group, check_usage, Token};
    let mut out = Vec::new();
    for (path, item) in doc.list("bootstrapTokens", errs).unwrap_or_default() {
        let mut o = Obj::new(path.clone(), item, errs);
        let mut spec = BootstrapTokenSpec::default();
        let token_field = o.field("token");
        if let Some(t) = o.nonempty_string("token", errs) {
            match Token::parse(&token_field, &t) {
                Ok(t) => spec.token = Some(t),
                Err(e) => {
                    let shown = match e {
                        crate::bootstrap::token::TokenError::Format { value, .. } => value,
                        _ => String::new(),
                    };
                    errs.push(
                        token_field,
                        shown,
                        "a bootstrap token [a-z0-9]{6}.[a-z0-9]{16}, e.g. abcdef.0123456789abcdef",
                    )
                }
            }
        }
        if let Some(d) = o.nonempty_string("description", errs) {
            spec.description = d;
        }
        if let Some(ttl) = duration(&mut o, "ttl", false, errs) {
            spec.ttl = ttl;
        }
        let expires_field = o.field("expires");
        if let Some(e) = o.nonempty_string("expires", errs) {
            use time::format_description::well_known::Rfc3339;
            match time::OffsetDateTime::parse(&e, &Rfc3339) {
                Ok(_) => spec.expires = Some(e),
                Err(why) => errs.push(
                    expires_field,
                    e,
                    format!("an RFC 3339 time such as 2030-01-01T00:00:00Z ({why})"),
                ),
            }
        }
        let usages = o.string_list("usages", errs).unwrap_or_default();
        if !usages.is_empty() {
            spec.usages.clear();
            for (p, u) in usages {
                match check_usage(&p, &u) {
                    Ok(()) if !spec.usages.contains(&u) => spec.usages.push(u),
                    Ok(()) => {}
                    Err(_) => errs.push(p, u, "one of signing, authentication"),
                }
            }
        }
        let groups = o.string_list("groups", errs).unwrap_or_default();
        if !groups.is_empty() {
            spec.groups.clear();
            for (p, g) in groups {
                match check_group(&p, &g) {
                    Ok(()) => spec.groups.push(g),
                    Err(_) => errs.push(
                        p,
                        g,
                        "a group system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9], e.g. \
                         system:bootstrappers:kubeadm:default-node-token",
                    ),
                }
            }
        }
        o.finish(errs);
        out.push(spec);
    }
    out
}

/// Reads `InitConfiguration` (or nothing: all defaults).
pub(crate) fn read_init(
    value: Option<&Value>,
    version: KubeadmApiVersion,
    errs: &mut Errors,
) -> RawInit {
    let mut raw = RawInit::default();
    let Some(value) = value else { return raw };
    let v4 = version == KubeadmApiVersion::V1Beta4;
    let mut doc = Obj::new("InitConfiguration", value, errs);
    doc.ignore(&["apiVersion", "kind", "certificateKey", "skipPhases"]);
    if v4 {
        doc.ignore(&["dryRun"]);
    } else {
        doc.only_in(&["dryRun", "timeouts"], V4);
    }
    if let Some(mut nr) = doc.obj("nodeRegistration", errs) {
        raw.node_name = at_string(&mut nr, "name", errs);
        raw.taints = read_taints(&mut nr, errs);
        nr.ignore(&[
            "criSocket",
            "kubeletExtraArgs",
            "ignorePreflightErrors",
            "imagePullPolicy",
        ]);
        if v4 {
            nr.ignore(&["imagePullSerial"]);
        } else {
            nr.only_in(&["imagePullSerial"], V4);
        }
        nr.finish(errs);
    }
    raw.bootstrap_tokens = read_bootstrap_tokens(&mut doc, errs);
    if let Some(mut ep) = doc.obj("localAPIEndpoint", errs) {
        raw.advertise_address = at_string(&mut ep, "advertiseAddress", errs);
        let field = ep.field("bindPort");
        raw.bind_port = ep
            .int("bindPort", PORT, errs)
            .map(|value| At { field, value });
        ep.finish(errs);
    }
    if let Some(mut p) = doc.obj("patches", errs) {
        raw.patches_dir = checked_string(&mut p, "directory", check_absolute, errs);
        p.finish(errs);
    }
    if v4 {
        if let Some(mut t) = doc.obj("timeouts", errs) {
            raw.control_plane_timeout =
                duration(&mut t, "controlPlaneComponentHealthCheck", true, errs);
            for key in [
                "kubeletHealthCheck",
                "kubernetesAPICall",
                "etcdAPICall",
                "tlsBootstrap",
                "discovery",
                "upgradeManifests",
            ] {
                let _ = duration(&mut t, key, false, errs);
            }
            t.finish(errs);
        }
    }
    doc.finish(errs);
    raw
}

/// Reads `etcd.local`.
fn read_local_etcd(o: &mut Obj, version: KubeadmApiVersion, errs: &mut Errors) -> LocalEtcd {
    let image_repository =
        checked_string(o, "imageRepository", check_image_repository, errs).unwrap_or_default();
    let image_tag = o.nonempty_string("imageTag", errs).unwrap_or_default();
    let data_dir = checked_string(o, "dataDir", check_absolute, errs)
        .unwrap_or_else(|| "/var/lib/etcd".to_string());
    // etcd has extraArgs and (v1beta4) extraEnvs, but no extraVolumes.
    let extra_args = extra_args(o, version, errs);
    check_extra_args("etcd", &extra_args, errs);
    let extra_args = extra_args.into_iter().map(|(_, a)| a).collect();
    let extra_envs = match version {
        KubeadmApiVersion::V1Beta4 => extra_envs(o, errs),
        KubeadmApiVersion::V1Beta3 => {
            o.only_in(&["extraEnvs"], V4);
            Vec::new()
        }
    };
    let server_cert_sans = cert_sans(o, "serverCertSANs", errs);
    let peer_cert_sans = cert_sans(o, "peerCertSANs", errs);
    LocalEtcd {
        data_dir,
        extra_args,
        extra_envs,
        server_cert_sans,
        peer_cert_sans,
        image_repository,
        image_tag,
    }
}

/// Checks one external etcd endpoint: an `https://host[:port]` URL.
fn check_etcd_endpoint(url: &str) -> Result<(), ValueError> {
    let allowed = "an https:// URL such as https://10.0.0.10:2379 (plinth talks to external etcd \
                   over TLS only)";
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ValueError::new(allowed))?;
    let authority = rest.split('/').next().unwrap_or_default();
    parse_host_port(authority, 2379)
        .map(|_| ())
        .map_err(|_| ValueError::new(allowed))
}

/// Reads `etcd.external`; every field is required.
fn read_external_etcd(o: &mut Obj, errs: &mut Errors) -> Option<ExternalEtcd> {
    let mut ok = true;
    let endpoints_field = o.field("endpoints");
    let endpoints = o.string_list("endpoints", errs).unwrap_or_default();
    if endpoints.is_empty() {
        errs.push(
            &endpoints_field,
            "",
            "at least one etcd client URL, e.g. [https://10.0.0.10:2379] (required)",
        );
        ok = false;
    }
    for (path, url) in &endpoints {
        if let Err(allowed) = check_etcd_endpoint(url) {
            errs.push(path, url, allowed);
            ok = false;
        }
    }
    let mut file = |key: &'static str| -> String {
        let field = o.field(key);
        let value = o.string(key, errs).unwrap_or_default();
        if value.is_empty() {
            errs.push(
                field,
                "",
                "an absolute path (required: plinth uses TLS to external etcd, so caFile, \
                 certFile and keyFile must all be set)",
            );
            ok = false;
        } else if let Err(allowed) = check_absolute(&value) {
            errs.push(field, &value, allowed);
            ok = false;
        }
        value
    };
    let ca_file = file("caFile");
    let cert_file = file("certFile");
    let key_file = file("keyFile");
    ok.then(|| ExternalEtcd {
        endpoints: endpoints.into_iter().map(|(_, u)| u).collect(),
        ca_file,
        cert_file,
        key_file,
    })
}

/// Reads `featureGates`: a mapping of gate names to values (checked later, per version).
fn feature_gates(doc: &mut Obj, errs: &mut Errors) -> Vec<(String, String, Value)> {
    let field = doc.field("featureGates");
    match doc.raw("featureGates") {
        None => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (child(&field, k), k.clone(), v.clone()))
            .collect(),
        Some(other) => {
            errs.push(
                field,
                render(other),
                "a mapping of kubeadm feature gate names to true/false, e.g. {PublicKeysECDSA: true}",
            );
            Vec::new()
        }
    }
}

/// Reads `ClusterConfiguration` (or nothing: all defaults).
pub(crate) fn read_cluster(
    value: Option<&Value>,
    version: KubeadmApiVersion,
    errs: &mut Errors,
) -> RawCluster {
    let mut raw = RawCluster::default();
    let Some(value) = value else { return raw };
    let v4 = version == KubeadmApiVersion::V1Beta4;
    let mut doc = Obj::new("ClusterConfiguration", value, errs);
    doc.ignore(&["apiVersion", "kind", "dns"]);
    raw.feature_gates = feature_gates(&mut doc, errs);
    if v4 {
        doc.ignore(&["proxy"]);
    } else {
        doc.only_in(
            &[
                "proxy",
                "encryptionAlgorithm",
                "certificateValidityPeriod",
                "caCertificateValidityPeriod",
            ],
            V4,
        );
    }
    raw.kubernetes_version = at_string(&mut doc, "kubernetesVersion", errs);
    raw.control_plane_endpoint = at_string(&mut doc, "controlPlaneEndpoint", errs);
    raw.image_repository =
        checked_string(&mut doc, "imageRepository", check_image_repository, errs);
    raw.certificates_dir = at_string(&mut doc, "certificatesDir", errs);
    raw.cluster_name = checked_string(&mut doc, "clusterName", check_dns1123_subdomain, errs);

    if let Some(mut net) = doc.obj("networking", errs) {
        raw.service_subnet = at_string(&mut net, "serviceSubnet", errs);
        raw.pod_subnet = at_string(&mut net, "podSubnet", errs);
        raw.dns_domain = checked_string(&mut net, "dnsDomain", check_dns1123_subdomain, errs);
        net.finish(errs);
    }

    if let Some(mut api) = doc.obj("apiServer", errs) {
        let (component, args) = component(&mut api, "kube-apiserver", version, errs);
        check_authorization_modes(&args, errs);
        let cert_sans = cert_sans(&mut api, "certSANs", errs);
        if v4 {
            api.only_in(
                &["timeoutForControlPlane"],
                "kubeadm.k8s.io/v1beta3 (v1beta4 uses InitConfiguration.timeouts.controlPlaneComponentHealthCheck)",
            );
        } else {
            raw.control_plane_timeout = duration(&mut api, "timeoutForControlPlane", true, errs);
        }
        api.finish(errs);
        raw.api_server = ApiServerSpec {
            component,
            cert_sans,
        };
    }
    raw.controller_manager = component_at(
        &mut doc,
        "controllerManager",
        "kube-controller-manager",
        version,
        errs,
    );
    raw.scheduler = component_at(&mut doc, "scheduler", "kube-scheduler", version, errs);

    if let Some(mut etcd) = doc.obj("etcd", errs) {
        let both = etcd.has("local") && etcd.has("external");
        let local = etcd.obj("local", errs).map(|mut o| {
            let l = read_local_etcd(&mut o, version, errs);
            o.finish(errs);
            l
        });
        let external = etcd.obj("external", errs).map(|mut o| {
            let e = read_external_etcd(&mut o, errs);
            o.finish(errs);
            e
        });
        if both {
            errs.push(
                etcd.path().to_string(),
                "local and external",
                "either etcd.local or etcd.external, not both",
            );
        } else if let Some(l) = local {
            raw.etcd = Some(Etcd::Local(l));
        } else if let Some(Some(e)) = external {
            raw.etcd = Some(Etcd::External(e));
        }
        etcd.finish(errs);
    }

    if v4 {
        if let Some(at) = at_string(&mut doc, "encryptionAlgorithm", errs) {
            raw.key_algorithm = parse_key_algorithm(&at.value);
            if raw.key_algorithm.is_none() {
                errs.push(
                    at.field,
                    at.value,
                    format!("one of {}", KEY_ALGORITHMS.join(", ")),
                );
            }
        }
        raw.cert_validity = duration(&mut doc, "certificateValidityPeriod", true, errs);
        raw.ca_cert_validity = duration(&mut doc, "caCertificateValidityPeriod", true, errs);
    }
    doc.finish(errs);
    raw
}

/// The kubeadm spellings of the supported key algorithms.
pub const KEY_ALGORITHMS: &[&str] = &[
    "RSA-2048",
    "RSA-3072",
    "RSA-4096",
    "ECDSA-P256",
    "ECDSA-P384",
];

/// `RSA-2048` ... `ECDSA-P384` → [`KeyAlgorithm`].
pub fn parse_key_algorithm(s: &str) -> Option<KeyAlgorithm> {
    Some(match s {
        "RSA-2048" => KeyAlgorithm::Rsa2048,
        "RSA-3072" => KeyAlgorithm::Rsa3072,
        "RSA-4096" => KeyAlgorithm::Rsa4096,
        "ECDSA-P256" => KeyAlgorithm::EcdsaP256,
        "ECDSA-P384" => KeyAlgorithm::EcdsaP384,
        _ => return None,
    })
}
