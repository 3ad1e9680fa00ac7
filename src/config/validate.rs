//! Pure value checks shared by the config loader: IPs, CIDRs (and their sizes, as kubeadm
//! checks them), DNS-1123 names, certificate SANs, `host[:port]`, Kubernetes versions, paths
//! and image repositories. Each returns `Err(allowed)`: a sentence saying what is allowed.

use std::net::IpAddr;

use super::error::ValueError;
use super::spec::{Cidr, Endpoint, KubeVersion};

/// kubeadm's `MinimumAddressesInServiceSubnet`.
pub const MIN_SERVICE_ADDRESSES: u128 = 10;
/// kubeadm's `MinimumAddressesInPodSubnet`.
pub const MIN_POD_ADDRESSES: u128 = 14;
/// kubeadm's `MaximumBitsForServiceSubnet`: at most 20 host bits (/12 for IPv4, /108 for IPv6).
pub const MAX_SERVICE_SUBNET_HOST_BITS: u8 = 20;
/// kubeadm's `PodSubnetNodeMaskMaxDiff`.
pub const POD_SUBNET_NODE_MASK_MAX_DIFF: u8 = 16;

/// The apiserver's authorization modes.
pub const AUTHORIZATION_MODES: &[&str] = &[
    "AlwaysAllow",
    "AlwaysDeny",
    "ABAC",
    "Webhook",
    "RBAC",
    "Node",
];

/// hostPath volume types a pod accepts (empty = unset).
pub const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

/// An IPv4 or IPv6 address.
pub fn parse_ip(s: &str) -> Result<IpAddr, ValueError> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| ValueError::new("an IPv4 or IPv6 address, e.g. 192.168.1.10 or fd00::10"))
}

/// Number of bits in `ip`'s family.
fn family_bits(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// `ip` as a 128-bit integer (IPv4 in the low 32 bits).
fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// The network address of `ip/prefix` (host bits cleared).
fn network_of(ip: &IpAddr, prefix: u8) -> IpAddr {
    let bits = family_bits(ip);
    let host_bits = (bits - prefix) as u32;
    let v = to_u128(ip);
    let masked = if host_bits >= 128 {
        0
    } else {
        (v >> host_bits) << host_bits
    };
    match ip {
        IpAddr::V4(_) => IpAddr::from((masked as u32).to_be_bytes()),
        IpAddr::V6(_) => IpAddr::from(masked.to_be_bytes()),
    }
}

/// A CIDR `addr/prefix` whose host bits are zero.
pub fn parse_cidr(s: &str) -> Result<Cidr, ValueError> {
    let s = s.trim();
    let generic = "a CIDR such as 10.96.0.0/12 or fd00:10:96::/112";
    let (addr, prefix) = s.split_once('/').ok_or_else(|| ValueError::new(generic))?;
    let addr: IpAddr = addr.parse().map_err(|_| ValueError::new(generic))?;
    let bits = family_bits(&addr);
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= bits)
        .ok_or_else(|| ValueError::new(format!("{generic} (prefix length 0..{bits})")))?;
    let network = network_of(&addr, prefix);
    if network != addr {
        return Err(ValueError::new(format!(
            "a network address with no host bits set (did you mean {network}/{prefix}?)"
        )));
    }
    Ok(Cidr { addr, prefix })
}

/// Number of addresses in `cidr` (saturating).
pub fn cidr_size(cidr: &Cidr) -> u128 {
    let host_bits = (family_bits(&cidr.addr) - cidr.prefix) as u32;
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// True when the two networks share any address.
pub fn cidrs_overlap(a: &Cidr, b: &Cidr) -> bool {
    if a.addr.is_ipv4() != b.addr.is_ipv4() {
        return false;
    }
    let p = a.prefix.min(b.prefix);
    network_of(&a.addr, p) == network_of(&b.addr, p)
}

/// Which network a CIDR list describes (the checks differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubnetKind {
    /// `networking.serviceSubnet` / `--service-cidr`.
    Service,
    /// `networking.podSubnet` / `--pod-network-cidr`.
    Pod,
}

/// Parses a comma-separated list of one CIDR, or two of different families (dual-stack),
/// applying kubeadm's size rules. Every problem is returned (as `(value, allowed)` pairs).
pub fn parse_subnets(s: &str, kind: SubnetKind) -> Result<Vec<Cidr>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    for part in &parts {
        match parse_cidr(part) {
            Ok(c) => out.push(c),
            Err(e) => errors.push((part.to_string(), e.reason)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let dual = "one CIDR, or two CIDRs of different families (IPv4,IPv6) for dual-stack";
    if out.len() > 2 || (out.len() == 2 && out[0].addr.is_ipv4() == out[1].addr.is_ipv4()) {
        return Err(vec![(s.to_string(), dual.to_string())]);
    }
    for c in &out {
        let size = cidr_size(c);
        let host_bits = family_bits(&c.addr) - c.prefix;
        let min = match kind {
            SubnetKind::Service => MIN_SERVICE_ADDRESSES,
            SubnetKind::Pod => MIN_POD_ADDRESSES,
        };
        if size < min {
            errors.push((
                c.to_string(),
                format!("a subnet with at least {min} addresses (this one has {size})"),
            ));
        }
        if kind == SubnetKind::Service && host_bits > MAX_SERVICE_SUBNET_HOST_BITS {
            let bits = family_bits(&c.addr);
            errors.push((
                c.to_string(),
                format!(
                    "a smaller service subnet: for {bits}-bit addresses the prefix must be >= /{} (kubeadm's limit)",
                    bits - MAX_SERVICE_SUBNET_HOST_BITS
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Checks one DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn dns1123_label_ok(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A lowercase RFC 1123 subdomain (`node-1.example.com`), at most 253 characters.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), ValueError> {
    let allowed = "a lowercase RFC 1123 subdomain: labels of a-z, 0-9 and '-', separated by '.', \
                   each starting and ending with a letter or digit, at most 253 characters";
    if s.len() > 253 || !s.split('.').all(dns1123_label_ok) {
        return Err(ValueError::new(allowed));
    }
    Ok(())
}

/// A DNS-1123 label (`etc-pki`), as a pod volume name must be.
pub fn check_dns1123_label(s: &str) -> Result<(), ValueError> {
    if dns1123_label_ok(s) {
        Ok(())
    } else {
        Err(ValueError::new(
            "a lowercase RFC 1123 label: a-z, 0-9 and '-', starting and ending with a letter \
             or digit, at most 63 characters",
        ))
    }
}

/// Taint effects a node accepts.
pub const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// The name part of a Kubernetes qualified name / label value: alphanumerics, '-', '_', '.',
/// starting and ending with an alphanumeric, at most 63 characters.
fn label_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A Kubernetes qualified name (label or taint key): `[prefix/]name`, the prefix a DNS-1123
/// subdomain.
pub fn check_qualified_name(s: &str) -> Result<(), ValueError> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if label_name_ok(name) && prefix.is_none_or(|p| check_dns1123_subdomain(p).is_ok()) {
        return Ok(());
    }
    Err(ValueError::new(
        "a qualified name such as node-role.kubernetes.io/control-plane: an optional DNS          subdomain prefix and '/', then at most 63 characters of a-z, A-Z, 0-9, '-', '_' and          '.', starting and ending with a letter or digit",
    ))
}

/// A label (or taint) value: empty, or a name as in [`check_qualified_name`] without prefix.
pub fn check_label_value(s: &str) -> Result<(), ValueError> {
    if s.is_empty() || label_name_ok(s) {
        return Ok(());
    }
    Err(ValueError::new(
        "empty, or at most 63 characters of a-z, A-Z, 0-9, '-', '_' and '.', starting and          ending with a letter or digit",
    ))
}

/// A certificate SAN: an IP address, a DNS-1123 subdomain, or a wildcard `*.example.com`.
pub fn check_cert_san(s: &str) -> Result<(), ValueError> {
    if s.parse::<IpAddr>().is_ok() || check_dns1123_subdomain(s).is_ok() {
        return Ok(());
    }
    if let Some(rest) = s.strip_prefix("*.") {
        if s.len() <= 253 && check_dns1123_subdomain(rest).is_ok() {
            return Ok(());
        }
    }
    Err(ValueError::new(
        "an IP address, a lowercase DNS name (RFC 1123 subdomain) or a wildcard DNS name \
         such as *.example.com",
    ))
}

/// A port number 1..=65535.
pub fn check_port(port: i64) -> Result<u16, ValueError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ValueError::new("a port number between 1 and 65535"))
}

/// `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address; host is an IP or a DNS-1123
/// subdomain. A missing port becomes `default_port`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<Endpoint, ValueError> {
    let allowed = "host or host:port, where host is an IP address or a lowercase DNS name \
                   (IPv6 with a port as [fd00::1]:6443) and port is 1..65535";
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| ValueError::new(allowed))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| ValueError::new(allowed))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| ValueError::new(allowed))?,
            ),
        };
        (h.to_string(), port)
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        (s.to_string(), None)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty()
        || (host.parse::<IpAddr>().is_err() && check_dns1123_subdomain(&host).is_err())
    {
        return Err(ValueError::new(allowed));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .and_then(|p| check_port(p).ok())
            .ok_or_else(|| ValueError::new(allowed))?,
    };
    Ok(Endpoint { host, port })
}

/// `1.33.0`, `v1.33.0` or `v1.33.0-rc.1`. Labels such as `stable` are refused: resolving them
/// needs the network.
pub fn parse_kube_version(s: &str) -> Result<KubeVersion, ValueError> {
    let allowed = "an exact Kubernetes version such as v1.33.0 or 1.33.0 (optionally with a \
                   pre-release suffix such as -rc.1)";
    let t = s.trim();
    let label = ["stable", "latest", "ci/", "release/"]
        .iter()
        .any(|p| t.starts_with(p));
    if label {
        return Err(ValueError::new(format!(
            "{allowed}; version labels like `stable` or `latest` need network access to \
             resolve, which plinth does not do"
        )));
    }
    let body = t.strip_prefix('v').unwrap_or(t);
    let (core, pre) = match body.split_once('-') {
        Some((c, p)) => (c, p),
        None => (body, ""),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let pre_ok = pre
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if nums.len() != 3 || body.contains('-') && pre.is_empty() || !pre_ok {
        return Err(ValueError::new(allowed));
    }
    let parse = |n: &str| -> Result<u32, ValueError> {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::new(allowed));
        }
        n.parse().map_err(|_| ValueError::new(allowed))
    };
    let v = KubeVersion {
        major: parse(nums[0])?,
        minor: parse(nums[1])?,
        patch: parse(nums[2])?,
        pre: pre.to_string(),
    };
    if v.major != 1 {
        return Err(ValueError::new(format!("{allowed} (major version 1)")));
    }
    Ok(v)
}

/// An absolute path.
pub fn check_absolute(s: &str) -> Result<(), ValueError> {
    if s.starts_with('/') {
        Ok(())
    } else {
        Err(ValueError::new("an absolute path (starting with /)"))
    }
}

/// A container image repository such as `registry.k8s.io` or `my.registry:5000/k8s`.
pub fn check_image_repository(s: &str) -> Result<(), ValueError> {
    let allowed = "an image repository such as registry.k8s.io or registry.example.com:5000/k8s \
                   (no scheme, no tag)";
    let mut parts = s.split('/');
    let first = parts.next().unwrap_or_default();
    let (host, port) = match first.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (first, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    let port_ok = port.is_none_or(|p| check_port(p.parse().unwrap_or(0)).is_ok());
    // Path components: lowercase alphanumerics separated by '.', '_', '__' or '-'.
    let comp_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if host_ok && port_ok && parts.all(comp_ok) {
        Ok(())
    } else {
        Err(ValueError::new(allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        parse_cidr(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn cidr_parsing_and_host_bits() {
        assert_eq!(cidr("10.96.0.0/12").prefix, 12);
        assert_eq!(cidr("fd00::/64").addr, "fd00::".parse::<IpAddr>().unwrap());
        let err = parse_cidr("10.96.0.1/12").unwrap_err();
        assert!(err.reason.contains("did you mean 10.96.0.0/12?"), "{err}");
        assert!(parse_cidr("10.96.0.0").is_err());
        assert!(parse_cidr("10.96.0.0/33")
            .unwrap_err()
            .reason
            .contains("0..32"));
        assert!(parse_cidr("fd00::/129").is_err());
        assert!(parse_cidr("banana/8").is_err());
    }

    #[test]
    fn overlap() {
        assert!(cidrs_overlap(&cidr("10.96.0.0/12"), &cidr("10.100.0.0/16")));
        assert!(cidrs_overlap(&cidr("10.100.0.0/16"), &cidr("10.96.0.0/12")));
        assert!(!cidrs_overlap(
            &cidr("10.96.0.0/12"),
            &cidr("10.244.0.0/16")
        ));
        assert!(!cidrs_overlap(&cidr("10.96.0.0/12"), &cidr("fd00::/64")));
        assert!(cidrs_overlap(&cidr("0.0.0.0/0"), &cidr("192.168.0.0/24")));
    }

    #[test]
    fn service_subnet_size_limits() {
        assert!(parse_subnets("10.96.0.0/12", SubnetKind::Service).is_ok());
        let too_big = parse_subnets("10.0.0.0/8", SubnetKind::Service).unwrap_err();
        assert_eq!(too_big[0].0, "10.0.0.0/8");
        assert!(
            too_big[0].1.contains("prefix must be >= /12"),
            "{}",
            too_big[0].1
        );
        let v6 = parse_subnets("fd00::/64", SubnetKind::Service).unwrap_err();
        assert!(v6[0].1.contains(">= /108"));
        assert!(parse_subnets("fd00::/108", SubnetKind::Service).is_ok());
        let too_small = parse_subnets("10.96.0.0/29", SubnetKind::Service).unwrap_err();
        assert!(too_small[0].1.contains("at least 10 addresses"));
        // Pods may be bigger than /12.
        assert!(parse_subnets("10.0.0.0/8", SubnetKind::Pod).is_ok());
    }

    #[test]
    fn dual_stack_lists() {
        let ok = parse_subnets("10.244.0.0/16, fd00:1::/56", SubnetKind::Pod).unwrap();
        assert_eq!(ok.len(), 2);
        let same = parse_subnets("10.244.0.0/16,10.245.0.0/16", SubnetKind::Pod).unwrap_err();
        assert!(same[0].1.contains("dual-stack"));
        let three = parse_subnets("10.1.0.0/16,fd00::/56,10.2.0.0/16", SubnetKind::Pod);
        assert!(three.is_err());
        let bad = parse_subnets("10.1.0.0/16,nope", SubnetKind::Pod).unwrap_err();
        assert_eq!(bad[0].0, "nope");
    }

    #[test]
    fn dns_names() {
        assert!(check_dns1123_subdomain("node-1.example.com").is_ok());
        assert!(check_dns1123_subdomain("cp1").is_ok());
        for bad in ["Node1", "-a", "a-", "a..b", "", "a_b", &"a".repeat(64)] {
            assert!(check_dns1123_subdomain(bad).is_err(), "{bad}");
        }
        assert!(check_dns1123_label("etc-pki").is_ok());
        assert!(check_dns1123_label("a.b").is_err());
    }

    #[test]
    fn cert_sans() {
        for ok in [
            "10.0.0.100",
            "fd00::1",
            "api.example.com",
            "*.example.com",
            "localhost",
        ] {
            assert!(check_cert_san(ok).is_ok(), "{ok}");
        }
        for bad in ["*", "a.*.com", "Under_score", "https://x", "*.", ""] {
            let err = check_cert_san(bad).unwrap_err();
            assert!(err.reason.contains("wildcard"), "{bad}: {err}");
        }
    }

    #[test]
    fn host_port() {
        let e = parse_host_port("lb.example.com:6443", 1).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("lb.example.com", 6443));
        let e = parse_host_port("lb.example.com", 7443).unwrap();
        assert_eq!(e.port, 7443);
        let e = parse_host_port("[fd00::1]:8443", 1).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("fd00::1", 8443));
        let e = parse_host_port("fd00::1", 6443).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("fd00::1", 6443));
        let e = parse_host_port("10.0.0.1:443", 1).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.1", 443));
        for bad in [
            "lb:0", "lb:70000", "lb:x", "LB", "[fd00::1", "[zz]:1", ":6443", "a b",
        ] {
            assert!(parse_host_port(bad, 6443).is_err(), "{bad}");
        }
    }

    #[test]
    fn kube_versions() {
        let v = parse_kube_version("v1.33.0").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 33, 0));
        assert_eq!(parse_kube_version("1.33.0").unwrap(), v);
        let rc = parse_kube_version("v1.34.0-rc.1").unwrap();
        assert_eq!(rc.pre, "rc.1");
        assert_eq!(rc.to_string(), "v1.34.0-rc.1");
        let err = parse_kube_version("stable").unwrap_err();
        assert!(err.reason.contains("network"), "{err}");
        assert!(parse_kube_version("stable-1")
            .unwrap_err()
            .reason
            .contains("network"));
        for bad in ["1.33", "v1.33.x", "2.0.0", "v1.33.0-", "", "v1.33.0+k3s1"] {
            assert!(parse_kube_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_paths_images() {
        assert_eq!(check_port(6443), Ok(6443));
        assert!(check_port(0).is_err());
        assert!(check_port(65536).is_err());
        assert!(check_absolute("/etc/kubernetes").is_ok());
        assert!(check_absolute("etc/kubernetes").is_err());
        for ok in [
            "registry.k8s.io",
            "localhost:5000/k8s",
            "my-reg.example.com/a/b_c",
        ] {
            assert!(check_image_repository(ok).is_ok(), "{ok}");
        }
        for bad in ["https://registry.k8s.io", "reg/UPPER", "", "reg:99999"] {
            assert!(check_image_repository(bad).is_err(), "{bad}");
        }
    }
}
