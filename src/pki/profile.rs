//! Certificate profiles: `pki/profiles.yaml` (embedded) resolved against a [`ClusterSpec`].
//!
//! The YAML is the single description of what kubeadm issues (names, files, CN/O, usages, SAN
//! rules, kubeconfig identities); this module only parses it and expands its `${variables}` and
//! SAN rules. See the comment block at the top of `pki/profiles.yaml` for the format.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::config::{ClusterSpec, Etcd};

/// The embedded profile data.
pub const PROFILES_YAML: &str = include_str!("../../pki/profiles.yaml");

/// What a profile produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// A self-signed certificate authority (`<file>.crt` + `<file>.key`).
    Ca,
    /// A certificate signed by a CA (`<file>.crt` + `<file>.key`).
    Leaf,
    /// A bare key pair (`<file>.key` + `<file>.pub`), e.g. the service-account signing key.
    Keypair,
}

/// X.509 key usage bits plinth sets (always critical, as Go's x509 does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// keyEncipherment.
    KeyEncipherment,
    /// keyCertSign.
    KeyCertSign,
}

/// Extended key usages plinth sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtKeyUsage {
    /// TLS Web Server Authentication.
    ServerAuth,
    /// TLS Web Client Authentication.
    ClientAuth,
}

impl std::fmt::Display for ExtKeyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExtKeyUsage::ServerAuth => "serverAuth",
            ExtKeyUsage::ClientAuth => "clientAuth",
        })
    }
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS {d}"),
            San::Ip(ip) => write!(f, "IP {ip}"),
        }
    }
}

/// A certificate profile resolved for one [`ClusterSpec`]: everything needed to issue or check
/// one certificate (or the `sa` key pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertProfile {
    /// Phase/renew name: `ca`, `apiserver`, `etcd-server`, `sa`, ...
    pub name: String,
    /// kubeadm's base name, relative to certificatesDir: `ca`, `etcd/server`, `sa`.
    pub base: String,
    /// CA, leaf or bare key pair.
    pub kind: ProfileKind,
    /// Name of the signing CA profile (leaves only).
    pub ca: Option<String>,
    /// Subject CommonName (empty for key pairs).
    pub cn: String,
    /// Subject Organization values.
    pub organizations: Vec<String>,
    /// Key usages.
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages.
    pub ext_key_usages: Vec<ExtKeyUsage>,
    /// BasicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Subject alternative names: DNS names sorted and de-duplicated, then IPs in rule order.
    pub sans: Vec<San>,
    /// Host path of the certificate (`.crt`; `.pub` for key pairs).
    pub cert_path: PathBuf,
    /// Host path of the private key.
    pub key_path: PathBuf,
}

impl CertProfile {
    /// True if the certificate is used to serve TLS (kubeadm prints its SANs).
    pub fn is_serving(&self) -> bool {
        self.ext_key_usages.contains(&ExtKeyUsage::ServerAuth)
    }

    /// The DNS SANs.
    pub fn dns_names(&self) -> Vec<&str> {
        self.sans
            .iter()
            .filter_map(|s| match s {
                San::Dns(d) => Some(d.as_str()),
                San::Ip(_) => None,
            })
            .collect()
    }

    /// The IP SANs.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.sans
            .iter()
            .filter_map(|s| match s {
                San::Ip(ip) => Some(*ip),
                San::Dns(_) => None,
            })
            .collect()
    }
}

/// Which endpoint a kubeconfig's server URL uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRule {
    /// controlPlaneEndpoint if set, else the local advertise endpoint.
    Cluster,
    /// This node's advertise address and bind port.
    Local,
}

/// A kubeconfig client identity resolved for one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigProfile {
    /// File name in the kubeconfig dir (`admin.conf`).
    pub file: String,
    /// Client certificate CN, also the kubeconfig user name.
    pub cn: String,
    /// Client certificate O values.
    pub organizations: Vec<String>,
    /// CA profile that signs the client certificate.
    pub ca: String,
    /// Server URL rule.
    pub server: ServerRule,
    /// Handled by `certs renew` (kubeadm leaves kubelet.conf alone).
    pub renewable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    certificates: Vec<RawCert>,
    kubeconfigs: Vec<RawKubeconfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCert {
    name: String,
    file: String,
    kind: ProfileKind,
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    when: Option<When>,
    #[serde(default)]
    cn: Option<String>,
    #[serde(default)]
    o: Vec<String>,
    #[serde(default)]
    key_usage: Vec<KeyUsage>,
    #[serde(default)]
    ext_key_usage: Vec<ExtKeyUsage>,
    #[serde(default)]
    sans: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum When {
    LocalEtcd,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubeconfig {
    file: String,
    cn: String,
    #[serde(default)]
    o: Vec<String>,
    ca: String,
    server: ServerRule,
    #[serde(default = "yes")]
    renewable: bool,
}

fn yes() -> bool {
    true
}

fn raw() -> Result<&'static RawFile, String> {
    static RAW: OnceLock<Result<RawFile, String>> = OnceLock::new();
    RAW.get_or_init(|| {
        let raw: RawFile =
            serde_saphyr::from_str(PROFILES_YAML).map_err(|e| format!("pki/profiles.yaml: {e}"))?;
        check_raw(&raw)?;
        Ok(raw)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Structural checks on the data: unique names, CAs before their leaves, CAs really CAs.
fn check_raw(raw: &RawFile) -> Result<(), String> {
    let mut seen: BTreeMap<&str, ProfileKind> = BTreeMap::new();
    for c in &raw.certificates {
        if seen.insert(&c.name, c.kind).is_some() {
            return Err(format!("pki/profiles.yaml: duplicate profile {:?}", c.name));
        }
        match c.kind {
            ProfileKind::Leaf => {
                let ca = c
                    .ca
                    .as_deref()
                    .ok_or_else(|| format!("pki/profiles.yaml: leaf {:?} names no ca", c.name))?;
                if seen.get(ca) != Some(&ProfileKind::Ca) {
                    return Err(format!(
                        "pki/profiles.yaml: leaf {:?} must come after its CA {ca:?}",
                        c.name
                    ));
                }
                if c.ext_key_usage.is_empty() {
                    return Err(format!(
                        "pki/profiles.yaml: leaf {:?} has no ext_key_usage",
                        c.name
                    ));
                }
            }
            ProfileKind::Ca => {
                if !c.key_usage.contains(&KeyUsage::KeyCertSign) {
                    return Err(format!(
                        "pki/profiles.yaml: CA {:?} lacks keyCertSign",
                        c.name
                    ));
                }
            }
            ProfileKind::Keypair => {}
        }
        if c.kind != ProfileKind::Keypair && c.cn.as_deref().unwrap_or("").is_empty() {
            return Err(format!("pki/profiles.yaml: {:?} has no cn", c.name));
        }
    }
    for k in &raw.kubeconfigs {
        if seen.get(k.ca.as_str()) != Some(&ProfileKind::Ca) {
            return Err(format!(
                "pki/profiles.yaml: kubeconfig {:?}: unknown CA {:?}",
                k.file, k.ca
            ));
        }
    }
    Ok(())
}

/// Variables available to `${...}` templates and `LIST:` rules.
struct Vars {
    scalars: BTreeMap<&'static str, String>,
    lists: BTreeMap<&'static str, Vec<String>>,
}

impl Vars {
    fn for_spec(spec: &ClusterSpec) -> Vars {
        let mut scalars = BTreeMap::new();
        scalars.insert("node_name", spec.node_name.clone());
        scalars.insert("dns_domain", spec.networking.dns_domain.clone());
        scalars.insert("advertise_address", spec.advertise_address.to_string());
        scalars.insert(
            "service_vip",
            spec.networking
                .service_subnets
                .first()
                .map(|c| first_ip(c.addr, c.prefix).to_string())
                .unwrap_or_default(),
        );
        scalars.insert(
            "control_plane_host",
            spec.control_plane_endpoint
                .as_ref()
                .map(|e| e.host.clone())
                .unwrap_or_default(),
        );
        let mut lists = BTreeMap::new();
        lists.insert("apiserver_cert_sans", spec.api_server.cert_sans.clone());
        let (server, peer) = match &spec.etcd {
            Etcd::Local(l) => (l.server_cert_sans.clone(), l.peer_cert_sans.clone()),
            Etcd::External(_) => (Vec::new(), Vec::new()),
        };
        lists.insert("etcd_server_cert_sans", server);
        lists.insert("etcd_peer_cert_sans", peer);
        Vars { scalars, lists }
    }

    fn expand(&self, template: &str, cn: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in {template:?}"))?;
            let name = &after[..end];
            if name == "cn" {
                out.push_str(cn);
            } else {
                let v = self
                    .scalars
                    .get(name)
                    .ok_or_else(|| format!("unknown variable ${{{name}}} in {template:?}"))?;
                out.push_str(v);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The first usable address of a subnet (network address + 1), e.g. 10.96.0.1 for 10.96.0.0/12.
pub fn first_ip(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(((bits & mask).wrapping_add(1)).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(((bits & mask).wrapping_add(1)).into())
        }
    }
}

/// True for a lowercase-or-not RFC 1123 subdomain, optionally with a leading `*.` wildcard.
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

fn classify(value: &str) -> Option<San> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        Some(San::Ip(ip))
    } else if is_dns_name(value) {
        Some(San::Dns(value.to_string()))
    } else {
        None
    }
}

fn resolve_sans(
    rules: &[String],
    vars: &Vars,
    cn: &str,
    profile: &str,
) -> Result<Vec<San>, String> {
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut push = |san: San| match san {
        San::Dns(d) => dns.push(d),
        San::Ip(ip) => {
            if !ips.contains(&ip) {
                ips.push(ip)
            }
        }
    };
    for rule in rules {
        let (kind, arg) = rule
            .split_once(':')
            .ok_or_else(|| format!("profile {profile:?}: SAN rule {rule:?} has no kind"))?;
        match kind {
            "DNS" => push(San::Dns(vars.expand(arg, cn)?)),
            "IP" => {
                let v = vars.expand(arg, cn)?;
                let ip = v.parse::<IpAddr>().map_err(|_| {
                    format!("profile {profile:?}: SAN rule {rule:?} gives {v:?}, not an IP")
                })?;
                push(San::Ip(ip));
            }
            "ANY" => {
                let v = vars.expand(arg, cn)?;
                if v.is_empty() {
                    continue;
                }
                match classify(&v) {
                    Some(s) => push(s),
                    None => tracing::warn!(
                        "[certs] {v:?} was not added to the {profile:?} SANs: not an IP or a DNS-1123 name"
                    ),
                }
            }
            "LIST" => {
                let list = vars
                    .lists
                    .get(arg)
                    .ok_or_else(|| format!("profile {profile:?}: unknown list {arg:?}"))?;
                for v in list {
                    match classify(v.trim()) {
                        Some(s) => push(s),
                        None => tracing::warn!(
                            "[certs] {v:?} was not added to the {profile:?} SANs: not an IP or a DNS-1123 name"
                        ),
                    }
                }
            }
            other => {
                return Err(format!(
                    "profile {profile:?}: unknown SAN rule kind {other:?}"
                ));
            }
        }
    }
    dns.sort();
    dns.dedup();
    Ok(dns
        .into_iter()
        .map(San::Dns)
        .chain(ips.into_iter().map(San::Ip))
        .collect())
}

/// Resolves every certificate profile that applies to `spec`, in generation order.
pub fn resolve(spec: &ClusterSpec) -> Result<Vec<CertProfile>, String> {
    let raw = raw()?;
    let vars = Vars::for_spec(spec);
    let dir = Path::new(&spec.certificates_dir);
    let mut out = Vec::new();
    for c in &raw.certificates {
        if c.when == Some(When::LocalEtcd) && !spec.has_local_etcd() {
            continue;
        }
        let cn = match &c.cn {
            Some(t) => vars.expand(t, "")?,
            None => String::new(),
        };
        let organizations =
            c.o.iter()
                .map(|o| vars.expand(o, &cn))
                .collect::<Result<Vec<_>, _>>()?;
        let sans = resolve_sans(&c.sans, &vars, &cn, &c.name)?;
        let (cert_path, key_path) = match c.kind {
            ProfileKind::Keypair => (
                dir.join(format!("{}.pub", c.file)),
                dir.join(format!("{}.key", c.file)),
            ),
            _ => (
                dir.join(format!("{}.crt", c.file)),
                dir.join(format!("{}.key", c.file)),
            ),
        };
        out.push(CertProfile {
            name: c.name.clone(),
            base: c.file.clone(),
            kind: c.kind,
            ca: c.ca.clone(),
            cn,
            organizations,
            key_usages: c.key_usage.clone(),
            ext_key_usages: c.ext_key_usage.clone(),
            is_ca: c.kind == ProfileKind::Ca,
            sans,
            cert_path,
            key_path,
        });
    }
    Ok(out)
}

/// Resolves the kubeconfig client identities for `spec`, in kubeadm's order.
pub fn resolve_kubeconfigs(spec: &ClusterSpec) -> Result<Vec<KubeconfigProfile>, String> {
    let raw = raw()?;
    let vars = Vars::for_spec(spec);
    raw.kubeconfigs
        .iter()
        .map(|k| {
            let cn = vars.expand(&k.cn, "")?;
            Ok(KubeconfigProfile {
                file: k.file.clone(),
                organizations: k
                    .o
                    .iter()
                    .map(|o| vars.expand(o, &cn))
                    .collect::<Result<Vec<_>, String>>()?,
                cn,
                ca: k.ca.clone(),
                server: k.server,
                renewable: k.renewable,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, Endpoint, ExternalEtcd};

    fn spec() -> ClusterSpec {
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.control_plane_endpoint = Some(Endpoint {
            host: "lb.example.com".into(),
            port: 6443,
        });
        s.api_server.cert_sans = vec!["10.0.0.100".into(), "api.example.com".into()];
        s
    }

    fn by_name<'a>(ps: &'a [CertProfile], n: &str) -> &'a CertProfile {
        ps.iter().find(|p| p.name == n).unwrap()
    }

    #[test]
    fn embedded_data_parses_and_is_consistent() {
        raw().unwrap();
        let names: Vec<_> = resolve(&spec())
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [
                "ca",
                "apiserver",
                "apiserver-kubelet-client",
                "front-proxy-ca",
                "front-proxy-client",
                "etcd-ca",
                "etcd-server",
                "etcd-peer",
                "etcd-healthcheck-client",
                "apiserver-etcd-client",
                "sa"
            ]
        );
    }

    #[test]
    fn apiserver_sans_match_the_kubeadm_reference() {
        let ps = resolve(&spec()).unwrap();
        let api = by_name(&ps, "apiserver");
        // Exactly the reference's order (pki-fields.txt): DNS sorted, then IPs in rule order.
        let want = "DNS api.example.com, DNS cp1, DNS kubernetes, DNS kubernetes.default, \
                    DNS kubernetes.default.svc, DNS kubernetes.default.svc.cluster.local, \
                    DNS lb.example.com, IP 10.96.0.1, IP 192.168.10.5, IP 10.0.0.100";
        let got: Vec<String> = api.sans.iter().map(|s| s.to_string()).collect();
        assert_eq!(got.join(", "), want);
        assert!(api.is_serving());
        assert_eq!(
            api.cert_path,
            PathBuf::from("/etc/kubernetes/pki/apiserver.crt")
        );
    }

    #[test]
    fn etcd_and_ca_profiles_match_the_reference() {
        let ps = resolve(&spec()).unwrap();
        let peer = by_name(&ps, "etcd-peer");
        assert_eq!(peer.cn, "cp1");
        let got: Vec<String> = peer.sans.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            got,
            [
                "DNS cp1",
                "DNS localhost",
                "IP 192.168.10.5",
                "IP 127.0.0.1",
                "IP ::1"
            ]
        );
        assert_eq!(
            peer.ext_key_usages,
            [ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth]
        );
        let ca = by_name(&ps, "etcd-ca");
        assert!(ca.is_ca);
        assert_eq!(ca.sans, [San::Dns("etcd-ca".into())]);
        assert_eq!(
            ca.key_path,
            PathBuf::from("/etc/kubernetes/pki/etcd/ca.key")
        );
        let kc = by_name(&ps, "apiserver-kubelet-client");
        assert_eq!(kc.organizations, ["kubeadm:cluster-admins"]);
        assert!(by_name(&ps, "apiserver-etcd-client")
            .organizations
            .is_empty());
        let sa = by_name(&ps, "sa");
        assert_eq!(sa.cert_path, PathBuf::from("/etc/kubernetes/pki/sa.pub"));
    }

    #[test]
    fn external_etcd_drops_the_etcd_profiles() {
        let mut s = spec();
        s.etcd = Etcd::External(ExternalEtcd {
            endpoints: vec!["https://10.0.0.9:2379".into()],
            ca_file: "/etc/etcd/ca.crt".into(),
            cert_file: "/etc/etcd/c.crt".into(),
            key_file: "/etc/etcd/c.key".into(),
        });
        let names: Vec<_> = resolve(&s).unwrap().into_iter().map(|p| p.name).collect();
        assert!(!names
            .iter()
            .any(|n| n.starts_with("etcd") || n == "apiserver-etcd-client"));
        assert!(names.contains(&"apiserver".to_string()));
    }

    #[test]
    fn ipv6_and_extra_sans_are_classified() {
        let mut s = defaults_for("n1", "fd00::5".parse().unwrap());
        s.networking.service_subnets[0] = crate::config::Cidr {
            addr: "fd00:10::".parse().unwrap(),
            prefix: 108,
        };
        s.control_plane_endpoint = Some(Endpoint {
            host: "fd00::100".into(),
            port: 6443,
        });
        s.api_server.cert_sans = vec!["*.example.com".into(), "not a name".into()];
        let ps = resolve(&s).unwrap();
        let api = by_name(&ps, "apiserver");
        assert!(api.sans.contains(&San::Ip("fd00:10::1".parse().unwrap())));
        assert!(api.sans.contains(&San::Ip("fd00::100".parse().unwrap())));
        assert!(api.sans.contains(&San::Dns("*.example.com".into())));
        assert!(!api
            .sans
            .iter()
            .any(|s| s.to_string().contains("not a name")));
    }

    #[test]
    fn first_ip_masks_host_bits() {
        assert_eq!(
            first_ip("10.96.0.0".parse().unwrap(), 12).to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            first_ip("10.96.5.7".parse().unwrap(), 12).to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            first_ip("fd00::".parse().unwrap(), 64).to_string(),
            "fd00::1"
        );
    }

    #[test]
    fn kubeconfig_identities_follow_kubeadm() {
        let ks = resolve_kubeconfigs(&spec()).unwrap();
        let files: Vec<_> = ks.iter().map(|k| k.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "admin.conf",
                "super-admin.conf",
                "kubelet.conf",
                "controller-manager.conf",
                "scheduler.conf"
            ]
        );
        assert_eq!(ks[2].cn, "system:node:cp1");
        assert_eq!(ks[2].organizations, ["system:nodes"]);
        assert_eq!(ks[1].organizations, ["system:masters"]);
        assert_eq!(ks[3].server, ServerRule::Local);
        assert_eq!(ks[0].server, ServerRule::Cluster);
    }

    #[test]
    fn template_errors_are_reported() {
        let vars = Vars::for_spec(&spec());
        assert!(vars.expand("${nope}", "").is_err());
        assert!(vars.expand("${node_name", "").is_err());
        assert_eq!(vars.expand("a.${node_name}.b", "").unwrap(), "a.cp1.b");
        assert!(resolve_sans(&["FOO:x".into()], &vars, "", "t").is_err());
        assert!(resolve_sans(&["IP:${node_name}".into()], &vars, "", "t").is_err());
    }
}
