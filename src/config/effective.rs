//! The effective configuration as kubeadm-compatible YAML, and the difference between two.
//!
//! [`to_yaml`] writes a [`ClusterSpec`] back as the documents it would be read from: an
//! `InitConfiguration` and a `ClusterConfiguration` in the spec's own kubeadm API version
//! (which fixes the extraArgs semantics) and a `PlinthConfiguration`, every defaulted and
//! resolved value spelled out. Loading that text again (with no flags) gives the same spec,
//! so it can be persisted and re-read by the day-2 verbs. [`diff`] compares two specs field
//! by field, naming each field by its path in those documents.

use serde_json::{json, Map, Value};

use super::document::{api_version_string, PLINTH_API_VERSION, PLINTH_KIND};
use super::duration::format_go_duration;
use super::plinthcfg::security_profile_name;
use super::spec::{Arg, ClusterSpec, ComponentSpec, Etcd, KubeadmApiVersion};

/// One field whose value differs between two configurations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Field path, e.g. `ClusterConfiguration.scheduler.extraArgs[v].value`.
    pub field: String,
    /// The old value; `None` when the old configuration does not set it.
    pub old: Option<String>,
    /// The new value; `None` when the new configuration does not set it.
    pub new: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_string());
        write!(
            f,
            "{}: {} → {}",
            self.field,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// Inserts `value` at `key` unless it is empty (empty string, list or object).
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.to_string(), value);
    }
}

/// `extraArgs` in the version's shape: a map (v1beta3) or a list of {name, value} (v1beta4).
fn extra_args(args: &[Arg], version: KubeadmApiVersion) -> Value {
    match version {
        KubeadmApiVersion::V1Beta3 => Value::Object(
            args.iter()
                .map(|a| (a.name.clone(), Value::String(a.value.clone())))
                .collect(),
        ),
        KubeadmApiVersion::V1Beta4 => Value::Array(
            args.iter()
                .map(|a| json!({"name": a.name, "value": a.value}))
                .collect(),
        ),
    }
}

/// `extraEnvs` (v1beta4 only; v1beta3 specs never have any).
fn extra_envs(envs: &[super::spec::EnvVar]) -> Value {
    Value::Array(
        envs.iter()
            .map(|e| json!({"name": e.name, "value": e.value}))
            .collect(),
    )
}

/// The fields shared by apiServer, controllerManager and scheduler.
fn component(c: &ComponentSpec, version: KubeadmApiVersion) -> Map<String, Value> {
    let mut m = Map::new();
    put(&mut m, "extraArgs", extra_args(&c.extra_args, version));
    let volumes = c
        .extra_volumes
        .iter()
        .map(|v| {
            let mut o = Map::new();
            put(&mut o, "name", json!(v.name));
            put(&mut o, "hostPath", json!(v.host_path));
            put(&mut o, "mountPath", json!(v.mount_path));
            if v.read_only {
                o.insert("readOnly".into(), json!(true));
            }
            put(&mut o, "pathType", json!(v.path_type));
            Value::Object(o)
        })
        .collect();
    put(&mut m, "extraVolumes", Value::Array(volumes));
    put(&mut m, "extraEnvs", extra_envs(&c.extra_envs));
    m
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| json!(s)).collect())
}

/// The three documents of `spec`: InitConfiguration, ClusterConfiguration, PlinthConfiguration.
pub fn to_documents(spec: &ClusterSpec) -> [Value; 3] {
    let version = spec.api_version;
    let v4 = version == KubeadmApiVersion::V1Beta4;
    let timeout = format_go_duration(spec.timeouts.control_plane_component_health_check);

    let mut init = Map::new();
    init.insert("apiVersion".into(), json!(api_version_string(version)));
    init.insert("kind".into(), json!("InitConfiguration"));
    init.insert(
        "localAPIEndpoint".into(),
        json!({
            "advertiseAddress": spec.advertise_address.to_string(),
            "bindPort": spec.bind_port,
        }),
    );
    let taints: Vec<Value> = spec
        .node_taints
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("key".into(), json!(t.key));
            put(&mut o, "value", json!(t.value));
            o.insert("effect".into(), json!(t.effect));
            Value::Object(o)
        })
        .collect();
    // Always written (`[]` = no taints), so a reload does not fall back to the default taint.
    // bootstrapTokens are not: they are secrets, and live in the cluster.
    init.insert(
        "nodeRegistration".into(),
        json!({"name": spec.node_name, "taints": taints}),
    );
    if let Some(dir) = &spec.patches_dir {
        init.insert("patches".into(), json!({ "directory": dir }));
    }
    if v4 {
        init.insert(
            "timeouts".into(),
            json!({ "controlPlaneComponentHealthCheck": timeout }),
        );
    }

    let mut cluster = Map::new();
    cluster.insert("apiVersion".into(), json!(api_version_string(version)));
    cluster.insert("kind".into(), json!("ClusterConfiguration"));
    cluster.insert("clusterName".into(), json!(spec.cluster_name));
    cluster.insert(
        "kubernetesVersion".into(),
        json!(spec.kubernetes_version.to_string()),
    );
    if let Some(ep) = &spec.control_plane_endpoint {
        let host = if ep.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", ep.host)
        } else {
            ep.host.clone()
        };
        cluster.insert(
            "controlPlaneEndpoint".into(),
            json!(format!("{host}:{}", ep.port)),
        );
    }
    cluster.insert("imageRepository".into(), json!(spec.image_repository));
    cluster.insert("certificatesDir".into(), json!(spec.certificates_dir));
    let join = |list: &[super::spec::Cidr]| {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut net = Map::new();
    put(
        &mut net,
        "serviceSubnet",
        json!(join(&spec.networking.service_subnets)),
    );
    put(
        &mut net,
        "podSubnet",
        json!(join(&spec.networking.pod_subnets)),
    );
    put(&mut net, "dnsDomain", json!(spec.networking.dns_domain));
    cluster.insert("networking".into(), Value::Object(net));

    let mut api = component(&spec.api_server.component, version);
    put(&mut api, "certSANs", strings(&spec.api_server.cert_sans));
    if !v4 {
        api.insert("timeoutForControlPlane".into(), json!(timeout));
    }
    put(&mut cluster, "apiServer", Value::Object(api));
    put(
        &mut cluster,
        "controllerManager",
        Value::Object(component(&spec.controller_manager, version)),
    );
    put(
        &mut cluster,
        "scheduler",
        Value::Object(component(&spec.scheduler, version)),
    );
    let etcd = match &spec.etcd {
        Etcd::Local(l) => {
            let mut o = Map::new();
            put(&mut o, "dataDir", json!(l.data_dir));
            put(&mut o, "imageRepository", json!(l.image_repository));
            put(&mut o, "imageTag", json!(l.image_tag));
            put(&mut o, "extraArgs", extra_args(&l.extra_args, version));
            put(&mut o, "extraEnvs", extra_envs(&l.extra_envs));
            put(&mut o, "serverCertSANs", strings(&l.server_cert_sans));
            put(&mut o, "peerCertSANs", strings(&l.peer_cert_sans));
            json!({ "local": o })
        }
        Etcd::External(e) => json!({
            "external": {
                "endpoints": e.endpoints,
                "caFile": e.ca_file,
                "certFile": e.cert_file,
                "keyFile": e.key_file,
            }
        }),
    };
    cluster.insert("etcd".into(), etcd);
    if v4 {
        cluster.insert(
            "encryptionAlgorithm".into(),
            json!(spec.key_algorithm.kubeadm_name()),
        );
        cluster.insert(
            "certificateValidityPeriod".into(),
            json!(format_go_duration(spec.cert_validity)),
        );
        cluster.insert(
            "caCertificateValidityPeriod".into(),
            json!(format_go_duration(spec.ca_cert_validity)),
        );
    }

    let p = &spec.plinth;
    let mut plinth = Map::new();
    plinth.insert("apiVersion".into(), json!(PLINTH_API_VERSION));
    plinth.insert("kind".into(), json!(PLINTH_KIND));
    plinth.insert(
        "securityProfile".into(),
        json!(security_profile_name(p.security_profile)),
    );
    put(
        &mut plinth,
        "binPath",
        Value::Array(
            p.bin_path
                .iter()
                .map(|b| json!(b.display().to_string()))
                .collect(),
        ),
    );
    plinth.insert(
        "agent".into(),
        json!({
            "healthzBindAddress": p.agent_healthz_bind_address.to_string(),
            "healthzPort": p.agent_healthz_port,
        }),
    );
    plinth.insert("manifestsDir".into(), json!(p.manifests_dir));
    plinth.insert("stateDir".into(), json!(p.state_dir));
    plinth.insert("logDir".into(), json!(p.log_dir));
    plinth.insert("kubeconfigDir".into(), json!(p.kubeconfig_dir));
    plinth.insert("binaryRepository".into(), json!(p.binary_repository));
    plinth.insert(
        "etcdBinaryRepository".into(),
        json!(p.etcd_binary_repository),
    );
    if let Some(ca) = &p.binary_repository_ca_bundle {
        plinth.insert("binaryRepositoryCABundle".into(), json!(ca));
    }

    [
        Value::Object(init),
        Value::Object(cluster),
        Value::Object(plinth),
    ]
}

/// `spec` as a multi-document kubeadm config (YAML), with `header` as leading comment lines.
pub fn to_yaml(spec: &ClusterSpec, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (i, doc) in to_documents(spec).iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        // A `Value` of strings, numbers and bools always serializes.
        let text = serde_saphyr::to_string(doc).unwrap_or_default();
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A scalar (or list of scalars) as shown in a diff.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// The key of a list item in a field path: its `name` when every item of the list has a
/// distinct one (extraArgs, extraVolumes, extraEnvs), else its index.
fn item_keys(list: &[Value]) -> Vec<String> {
    let names: Vec<Option<&str>> = list.iter().map(|v| v["name"].as_str()).collect();
    let distinct = names.iter().all(Option::is_some)
        && names
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == names.len();
    if distinct {
        names
            .into_iter()
            .map(|n| n.unwrap_or_default().to_string())
            .collect()
    } else {
        (0..list.len()).map(|i| i.to_string()).collect()
    }
}

/// Flattens a document into `(field path, shown value)` leaves. Lists of scalars are one
/// leaf; lists of objects are keyed by [`item_keys`].
fn flatten(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                flatten(&format!("{path}.{k}"), child, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            let keys = item_keys(a);
            let by_name = keys
                .iter()
                .zip(a)
                .all(|(k, v)| v["name"].as_str() == Some(k));
            for (k, item) in keys.iter().zip(a) {
                let item_path = format!("{path}[{k}]");
                match (by_name, item) {
                    (true, Value::Object(m)) => {
                        for (field, child) in m.iter().filter(|(f, _)| f.as_str() != "name") {
                            flatten(&format!("{item_path}.{field}"), child, out);
                        }
                        if m.len() == 1 {
                            out.push((item_path, k.clone()));
                        }
                    }
                    _ => flatten(&item_path, item, out),
                }
            }
        }
        other => out.push((path.to_string(), show(other))),
    }
}

fn leaves(spec: &ClusterSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let kinds = ["InitConfiguration", "ClusterConfiguration", PLINTH_KIND];
    for (kind, doc) in kinds.iter().zip(to_documents(spec)) {
        flatten(kind, &doc, &mut out);
    }
    out
}

/// Every field whose effective value differs between `old` and `new`, in document order
/// (fields only `new` has come after those of `old`).
pub fn diff(old: &ClusterSpec, new: &ClusterSpec) -> Vec<Change> {
    let a = leaves(old);
    let b = leaves(new);
    let find = |list: &[(String, String)], field: &str| {
        list.iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for (field, value) in &a {
        let now = find(&b, field);
        if now.as_ref() != Some(value) {
            out.push(Change {
                field: field.clone(),
                old: Some(value.clone()),
                new: now,
            });
        }
    }
    for (field, value) in &b {
        if find(&a, field).is_none() {
            out.push(Change {
                field: field.clone(),
                old: None,
                new: Some(value.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, Overrides, StaticHost};

    fn host() -> StaticHost {
        StaticHost {
            hostname: "cp1".into(),
            addresses: vec![
                "127.0.0.1".parse().unwrap(),
                "192.0.2.10".parse().unwrap(),
                "fd00::10".parse().unwrap(),
                "fd00::11".parse().unwrap(),
            ],
            default_address: None,
        }
    }

    fn load(yaml: &str) -> ClusterSpec {
        load_str(yaml, "test", &Overrides::default(), &host())
            .unwrap_or_else(|e| panic!("does not load: {e}\n{yaml}"))
    }

    /// Loading the written YAML gives back the same spec (the version's source aside: a
    /// persisted file always sets the version).
    fn assert_round_trip(spec: &ClusterSpec) {
        let yaml = to_yaml(spec, "header line 1\nline 2");
        assert!(yaml.starts_with("# header line 1\n# line 2\n"), "{yaml}");
        let mut back = load(&yaml);
        assert_eq!(
            back.kubernetes_version_source,
            crate::config::KubeVersionSource::Config
        );
        back.kubernetes_version_source = spec.kubernetes_version_source.clone();
        assert_eq!(&back, spec, "round trip changed the spec:\n{yaml}");
        assert_eq!(diff(spec, &back), vec![], "{yaml}");
        assert_eq!(to_yaml(&back, ""), to_yaml(spec, ""), "not stable");
    }

    #[test]
    fn defaults_round_trip() {
        let spec = load(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint:\n  advertiseAddress: 192.0.2.10\n",
        );
        assert_round_trip(&spec);
    }

    const RICH_V4: &str = r#"
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration: {name: node-a}
localAPIEndpoint: {advertiseAddress: "fd00::10", bindPort: 7443}
patches: {directory: /etc/plinth/patches}
timeouts: {controlPlaneComponentHealthCheck: 1m30.5s}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.24.0-alpha.1
controlPlaneEndpoint: "[fd00::10]:7443"
clusterName: edge
imageRepository: example.com/k8s
certificatesDir: /srv/pki
networking:
  serviceSubnet: fd00:1::/108,10.96.0.0/16
  podSubnet: fd00:2::/56,10.244.0.0/16
  dnsDomain: corp.local
apiServer:
  certSANs: [api.example.com, 10.0.0.1]
  extraArgs:
  - {name: profiling, value: "false"}
  - {name: v, value: "2"}
  - {name: goaway-chance, value: "1e3"}
  - {name: audit-policy-mode, value: "null"}
  - {name: v, value: "3"}
  - {name: empty, value: ""}
  extraVolumes:
  - {name: certs, hostPath: /etc/certs, mountPath: /etc/certs, readOnly: true, pathType: DirectoryOrCreate}
  - {name: plain, hostPath: /data, mountPath: /data}
  extraEnvs:
  - {name: HTTP_PROXY, value: "http://proxy:3128"}
  - {name: YES_VALUE, value: "yes"}
controllerManager:
  extraArgs:
  - {name: node-cidr-mask-size-ipv6, value: "64"}
scheduler:
  extraEnvs:
  - {name: TZ, value: "~"}
etcd:
  local:
    dataDir: /srv/etcd
    imageTag: 3.5.1-0
    imageRepository: example.com/etcd
    extraArgs: [{name: quota-backend-bytes, value: "8589934592"}]
    serverCertSANs: [etcd.example.com]
    peerCertSANs: [10.0.0.2]
encryptionAlgorithm: ECDSA-P384
certificateValidityPeriod: 2160h
caCertificateValidityPeriod: 87600h0m0.25s
---
apiVersion: plinth.io/v1alpha1
kind: PlinthConfiguration
securityProfile: kubeadm
binPath: [/opt/kube-bin, /usr/local/bin]
agent: {healthzBindAddress: "::1", healthzPort: 10250}
manifestsDir: /srv/manifests
stateDir: /srv/state
logDir: /srv/log
kubeconfigDir: /srv/kube
"#;

    #[test]
    fn every_field_round_trips_v1beta4() {
        let spec = load(RICH_V4);
        assert_eq!(spec.api_server.component.extra_args.len(), 6);
        assert_eq!(spec.kubernetes_version.pre, "alpha.1");
        assert_round_trip(&spec);
    }

    #[test]
    fn v1beta3_round_trips_in_v1beta3() {
        let spec = load(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n\
             localAPIEndpoint: {advertiseAddress: 192.0.2.10}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
             apiServer:\n  timeoutForControlPlane: 2m\n  extraArgs: {profiling: \"true\", v: \"4\"}\n\
             etcd:\n  external:\n    endpoints: [https://10.0.0.11:2379]\n    caFile: /e/ca.crt\n\
             \x20   certFile: /e/c.crt\n    keyFile: /e/c.key\n",
        );
        assert_eq!(spec.api_version, KubeadmApiVersion::V1Beta3);
        let yaml = to_yaml(&spec, "");
        assert!(yaml.contains("kubeadm.k8s.io/v1beta3"), "{yaml}");
        assert!(!yaml.contains("v1beta4"), "{yaml}");
        assert_round_trip(&spec);
    }

    #[test]
    fn diff_names_each_changed_field_old_and_new() {
        let old = load(RICH_V4);
        let changed = RICH_V4
            .replace(
                "advertiseAddress: \"fd00::10\"",
                "advertiseAddress: \"fd00::11\"",
            )
            .replace("controlPlaneEndpoint: \"[fd00::10]:7443\"\n", "")
            .replace(
                "{name: profiling, value: \"false\"}",
                "{name: profiling, value: \"true\"}",
            )
            .replace("  - {name: plain, hostPath: /data, mountPath: /data}\n", "")
            .replace("logDir: /srv/log", "logDir: /srv/log2")
            .replace(
                "scheduler:\n",
                "scheduler:\n  extraArgs: [{name: bind-address, value: 0.0.0.0}]\n",
            );
        let new = load(&changed);
        let shown: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        for want in [
            "InitConfiguration.localAPIEndpoint.advertiseAddress: fd00::10 → fd00::11",
            "ClusterConfiguration.controlPlaneEndpoint: [fd00::10]:7443 → (unset)",
            "ClusterConfiguration.apiServer.extraVolumes[plain].hostPath: /data → (unset)",
            "ClusterConfiguration.scheduler.extraArgs[bind-address].value: (unset) → 0.0.0.0",
            "PlinthConfiguration.logDir: /srv/log → /srv/log2",
        ] {
            assert!(shown.iter().any(|s| s == want), "no {want:?} in {shown:#?}");
        }
        // The apiserver's args repeat `v`: keyed by position, only the changed one shows.
        assert!(
            shown
                .iter()
                .any(|s| s == "ClusterConfiguration.apiServer.extraArgs[0].value: false → true"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 7, "{shown:#?}");
        assert_eq!(diff(&old, &old), vec![]);
    }
}
