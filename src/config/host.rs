//! What the config loader needs to know about the machine: its hostname, its interface
//! addresses and the address kubeadm would advertise by default (the default route's
//! interface). Behind a trait so tests use [`StaticHost`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Facts about the host used for defaults and validation.
pub trait HostInfo {
    /// The host name (not yet lowercased).
    fn hostname(&self) -> String;
    /// Every address configured on a local interface (loopback included).
    fn local_addresses(&self) -> Vec<IpAddr>;
    /// The address kubeadm would pick: a global unicast address of the interface holding the
    /// default route (IPv4 first, then IPv6); `None` when there is no default route.
    fn default_route_address(&self) -> Option<IpAddr>;
}

/// The real machine: `gethostname`, `getifaddrs`, `/proc/net/route` and `/proc/net/ipv6_route`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

/// A fixed host for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticHost {
    /// Host name.
    pub hostname: String,
    /// Local interface addresses.
    pub addresses: Vec<IpAddr>,
    /// The default-route address, if any.
    pub default_address: Option<IpAddr>,
}

impl HostInfo for StaticHost {
    fn hostname(&self) -> String {
        self.hostname.clone()
    }
    fn local_addresses(&self) -> Vec<IpAddr> {
        self.addresses.clone()
    }
    fn default_route_address(&self) -> Option<IpAddr> {
        self.default_address
    }
}

/// One interface address as seen by `getifaddrs`.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        tracing::warn!("getifaddrs failed: cannot list local addresses");
        return Vec::new();
    };
    addrs
        .filter_map(|ifa| {
            let addr = ifa.address?;
            let ip = if let Some(v4) = addr.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                return None;
            };
            Some((ifa.interface_name, ip))
        })
        .collect()
}

impl HostInfo for RealHost {
    fn hostname(&self) -> String {
        match nix::unistd::gethostname() {
            Ok(name) => name.to_string_lossy().into_owned(),
            Err(err) => {
                tracing::warn!(%err, "gethostname failed");
                String::new()
            }
        }
    }

    fn local_addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = interface_addresses()
            .into_iter()
            .map(|(_, ip)| ip)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn default_route_address(&self) -> Option<IpAddr> {
        let addrs = interface_addresses();
        let v4 = std::fs::read_to_string("/proc/net/route")
            .ok()
            .and_then(|t| ipv4_default_interface(&t));
        if let Some(ip) = v4.and_then(|iface| pick_global_unicast(&addrs, &iface, false)) {
            return Some(ip);
        }
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route")
            .ok()
            .and_then(|t| ipv6_default_interface(&t));
        v6.and_then(|iface| pick_global_unicast(&addrs, &iface, true))
    }
}

/// The first global unicast address of `iface` in the wanted family.
fn pick_global_unicast(addrs: &[(String, IpAddr)], iface: &str, v6: bool) -> Option<IpAddr> {
    addrs
        .iter()
        .filter(|(name, ip)| name == iface && ip.is_ipv6() == v6 && is_global_unicast(ip))
        .map(|(_, ip)| *ip)
        .next()
}

/// Go's `net.IP.IsGlobalUnicast`: not unspecified, loopback, link-local, multicast or
/// broadcast (private ranges count as global unicast, as in Go).
pub fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || *a == Ipv4Addr::BROADCAST)
        }
        IpAddr::V6(a) => {
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            !(a.is_unspecified() || a.is_loopback() || link_local || a.is_multicast())
        }
    }
}

/// The interface of the IPv4 default route with the lowest metric, from `/proc/net/route`
/// text (columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...).
pub fn ipv4_default_interface(route_table: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    route_table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(cols[3], 16).ok()?;
            let metric: u32 = cols[6].parse().ok()?;
            let default = cols[1] == "00000000" && cols[7] == "00000000";
            (default && flags & RTF_UP != 0).then(|| (metric, cols[0].to_string()))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface)
}

/// The interface of the IPv6 default route (`::/0`, up, not a reject route) with the lowest
/// metric, from `/proc/net/ipv6_route` text (dest plen src plen nexthop metric ref use flags iface).
pub fn ipv6_default_interface(route_table: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    const RTF_REJECT: u32 = 0x200;
    route_table
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                return None;
            }
            let dest_zero = cols[0].chars().all(|c| c == '0') && cols[0].len() == 32;
            let plen = u32::from_str_radix(cols[1], 16).ok()?;
            let metric = u32::from_str_radix(cols[5], 16).ok()?;
            let flags = u32::from_str_radix(cols[8], 16).ok()?;
            let iface = cols[9];
            let usable = flags & RTF_UP != 0 && flags & RTF_REJECT == 0 && iface != "lo";
            (dest_zero && plen == 0 && usable).then(|| (metric, iface.to_string()))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface)
}

/// An unspecified address (`0.0.0.0` / `::`) means "pick one for me", as in kubeadm.
pub fn is_unspecified(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => *a == Ipv4Addr::UNSPECIFIED,
        IpAddr::V6(a) => *a == Ipv6Addr::UNSPECIFIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";

    const ROUTE6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth2
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn ipv4_default_route_lowest_metric() {
        assert_eq!(ipv4_default_interface(ROUTE).as_deref(), Some("eth0"));
        let no_default = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                          eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\n";
        assert_eq!(ipv4_default_interface(no_default), None);
    }

    #[test]
    fn ipv6_default_route_skips_reject_on_lo() {
        assert_eq!(ipv6_default_interface(ROUTE6).as_deref(), Some("eth2"));
        let only_reject = ROUTE6.lines().last().unwrap_or_default();
        assert_eq!(ipv6_default_interface(only_reject), None);
    }

    #[test]
    fn picks_global_unicast_of_the_interface() {
        let addrs = vec![
            ("lo".to_string(), "127.0.0.1".parse().unwrap()),
            ("eth0".to_string(), "169.254.1.1".parse().unwrap()),
            ("eth0".to_string(), "192.168.0.5".parse().unwrap()),
            ("eth0".to_string(), "fe80::1".parse().unwrap()),
            ("eth0".to_string(), "fd00::5".parse().unwrap()),
        ];
        assert_eq!(
            pick_global_unicast(&addrs, "eth0", false),
            Some("192.168.0.5".parse().unwrap())
        );
        assert_eq!(
            pick_global_unicast(&addrs, "eth0", true),
            Some("fd00::5".parse().unwrap())
        );
        assert_eq!(pick_global_unicast(&addrs, "lo", false), None);
    }

    #[test]
    fn real_host_lists_loopback() {
        let addrs = RealHost.local_addresses();
        assert!(
            addrs.contains(&"127.0.0.1".parse().unwrap()),
            "loopback missing from {addrs:?}"
        );
        assert!(!RealHost.hostname().is_empty());
    }
}
