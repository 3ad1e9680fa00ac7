//! Types of the control-plane components' flags that plinth can check before anything is
//! written: a bad `extraArgs` value (`secure-port: notaport`) is refused by `config validate`,
//! `init` and `manifest regenerate` while the running instance keeps serving, instead of being
//! found out by a crash of the new instance.
//!
//! Covered: every flag kubeadm itself sets on each component, and the components' common
//! typed flags (ports, durations, booleans, IPs, CIDRs, integers), with the types of the real
//! flags (pflag for the Kubernetes components, Go's `flag` package for etcd; see the flag
//! tables of the test doubles in `tests/support/doubles`). String-typed flags, and flags plinth
//! does not know (they are version dependent), are the component's business: a value it
//! rejects makes the new instance exit at once, which `manifest regenerate` rolls back on its
//! first crash.

use std::net::IpAddr;

use super::duration::{parse_go_duration, DURATION_HELP};
use super::error::Errors;
use super::spec::Arg;

/// A flag's value type, as the component's flag parser (and, for ports, plinth's health check)
/// sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    /// `strconv.ParseBool`.
    Bool,
    /// pflag `int32`.
    Int32,
    /// pflag `int` / `int64` (64 bits on plinth's platforms).
    Int64,
    /// A non-negative integer (Go `uint` / `uint64`: etcd).
    Uint,
    /// A TCP port the component serves on: an int in 1–65535.
    Port,
    /// `time.ParseDuration`.
    Duration,
    /// `net.ParseIP`.
    Ip,
    /// Comma-separated `net.ParseCIDR` values (one per IP family).
    Cidrs,
}

impl FlagType {
    /// What a valid value looks like.
    fn allowed(self) -> String {
        match self {
            FlagType::Bool => {
                "a boolean: true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)".into()
            }
            FlagType::Int32 => "an integer from -2147483648 to 2147483647".into(),
            FlagType::Int64 => "an integer".into(),
            FlagType::Uint => "a non-negative integer".into(),
            FlagType::Port => "a port number from 1 to 65535".into(),
            FlagType::Duration => DURATION_HELP.into(),
            FlagType::Ip => "an IPv4 or IPv6 address, e.g. 192.168.1.10 or fd00::10".into(),
            FlagType::Cidrs => {
                "a CIDR, or an IPv4 and an IPv6 CIDR separated by a comma, e.g. 10.96.0.0/12 or \
                 10.96.0.0/12,fd00:10:96::/112"
                    .into()
            }
        }
    }

    /// Whether `value` parses as this type.
    fn accepts(self, value: &str) -> bool {
        match self {
            FlagType::Bool => super::features::GO_BOOLS.contains(&value),
            FlagType::Int32 => go_int(value).is_some_and(|n| i32::try_from(n).is_ok()),
            FlagType::Int64 => go_int(value).is_some_and(|n| i64::try_from(n).is_ok()),
            FlagType::Uint => go_int(value).is_some_and(|n| (0..=u64::MAX as i128).contains(&n)),
            FlagType::Port => go_int(value).is_some_and(|n| (1..=65535).contains(&n)),
            FlagType::Duration => go_duration(value),
            FlagType::Ip => value.parse::<IpAddr>().is_ok(),
            FlagType::Cidrs => {
                let parts: Vec<&str> = value.split(',').collect();
                parts.len() <= 2 && parts.iter().all(|p| cidr(p.trim()))
            }
        }
    }
}

/// `strconv.ParseInt(s, 0, 64)` (pflag's int parsing): optional sign, then decimal, or
/// `0x`/`0o`/`0b`/`0` prefixed hex, octal, binary, octal; `_` between digits.
fn go_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let n = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    Some(if neg { -n } else { n })
}

/// `time.ParseDuration` (negative values included: the component decides what they mean).
fn go_duration(s: &str) -> bool {
    let body = s
        .strip_prefix('-')
        .or_else(|| s.strip_prefix('+'))
        .unwrap_or(s);
    body == "0" || (!body.is_empty() && body.trim() == body && parse_go_duration(body).is_ok())
}

/// `net.ParseCIDR`: an address and a prefix length within its family (host bits allowed).
fn cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_digit())
        && prefix.len() <= 3
        && prefix.parse::<u32>().is_ok_and(|p| p <= bits)
}

use FlagType::*;

/// Flags every component-base binary has (klog, component-base).
const COMMON: &[(&str, FlagType)] = &[("v", Int32), ("log-flush-frequency", Duration)];

/// Secure serving and delegated authn/authz of kube-controller-manager and kube-scheduler.
const SERVING: &[(&str, FlagType)] = &[
    ("bind-address", Ip),
    ("secure-port", Port),
    ("http2-max-streams-per-connection", Int64),
    ("permit-port-sharing", Bool),
    ("permit-address-sharing", Bool),
    ("authentication-skip-lookup", Bool),
    ("authentication-token-webhook-cache-ttl", Duration),
    ("authentication-tolerate-lookup-failure", Bool),
    ("authorization-webhook-cache-authorized-ttl", Duration),
    ("authorization-webhook-cache-unauthorized-ttl", Duration),
    ("profiling", Bool),
    ("contention-profiling", Bool),
    ("kube-api-burst", Int32),
    ("leader-elect", Bool),
    ("leader-elect-lease-duration", Duration),
    ("leader-elect-renew-deadline", Duration),
    ("leader-elect-retry-period", Duration),
];

/// kube-apiserver (kubeadm sets advertise-address, allow-privileged, enable-bootstrap-token-auth,
/// secure-port, service-cluster-ip-range; its string flags are the binary's business).
const APISERVER: &[(&str, FlagType)] = &[
    ("advertise-address", Ip),
    ("bind-address", Ip),
    ("secure-port", Port),
    ("allow-privileged", Bool),
    ("anonymous-auth", Bool),
    ("enable-bootstrap-token-auth", Bool),
    ("enable-aggregator-routing", Bool),
    ("enable-garbage-collector", Bool),
    ("enable-priority-and-fairness", Bool),
    ("profiling", Bool),
    ("contention-profiling", Bool),
    ("watch-cache", Bool),
    ("service-account-lookup", Bool),
    ("service-account-extend-token-expiration", Bool),
    ("service-cluster-ip-range", Cidrs),
    ("apiserver-count", Int64),
    ("max-requests-inflight", Int64),
    ("max-mutating-requests-inflight", Int64),
    ("min-request-timeout", Int64),
    ("default-watch-cache-size", Int64),
    ("delete-collection-workers", Int64),
    ("audit-log-maxage", Int64),
    ("audit-log-maxbackup", Int64),
    ("audit-log-maxsize", Int64),
    ("kubernetes-service-node-port", Int64),
    ("default-not-ready-toleration-seconds", Int64),
    ("default-unreachable-toleration-seconds", Int64),
    ("request-timeout", Duration),
    ("livez-grace-period", Duration),
    ("shutdown-delay-duration", Duration),
    ("event-ttl", Duration),
    ("kubelet-timeout", Duration),
    ("etcd-compaction-interval", Duration),
    ("etcd-count-metric-poll-period", Duration),
    ("etcd-healthcheck-timeout", Duration),
    ("storage-initialization-timeout", Duration),
    ("service-account-max-token-expiration", Duration),
    ("authentication-token-webhook-cache-ttl", Duration),
    ("authorization-webhook-cache-authorized-ttl", Duration),
    ("authorization-webhook-cache-unauthorized-ttl", Duration),
];

/// kube-controller-manager (kubeadm sets allocate-node-cidrs, cluster-cidr, leader-elect,
/// node-cidr-mask-size*, service-cluster-ip-range, use-service-account-credentials, ...).
const CONTROLLER_MANAGER: &[(&str, FlagType)] = &[
    ("allocate-node-cidrs", Bool),
    ("cluster-cidr", Cidrs),
    ("service-cluster-ip-range", Cidrs),
    ("node-cidr-mask-size", Int32),
    ("node-cidr-mask-size-ipv4", Int32),
    ("node-cidr-mask-size-ipv6", Int32),
    ("use-service-account-credentials", Bool),
    ("configure-cloud-routes", Bool),
    ("enable-hostpath-provisioner", Bool),
    ("enable-dynamic-provisioning", Bool),
    ("cluster-signing-duration", Duration),
    ("node-monitor-period", Duration),
    ("node-monitor-grace-period", Duration),
    ("node-startup-grace-period", Duration),
    ("route-reconciliation-period", Duration),
    ("min-resync-period", Duration),
    ("terminated-pod-gc-threshold", Int32),
    ("large-cluster-size-threshold", Int32),
    ("concurrent-deployment-syncs", Int32),
    ("concurrent-endpoint-syncs", Int32),
    ("concurrent-gc-syncs", Int32),
    ("concurrent-namespace-syncs", Int32),
    ("concurrent-replicaset-syncs", Int32),
    ("concurrent-service-syncs", Int32),
    ("concurrent-serviceaccount-token-syncs", Int32),
    ("horizontal-pod-autoscaler-sync-period", Duration),
    ("namespace-sync-period", Duration),
    ("resource-quota-sync-period", Duration),
    ("pvclaimbinder-sync-period", Duration),
];

/// kube-scheduler (kubeadm sets bind-address, leader-elect, kubeconfigs).
const SCHEDULER: &[(&str, FlagType)] = &[];

/// etcd v3.5 (Go `flag` package; kubeadm sets the URLs, files and these).
const ETCD: &[(&str, FlagType)] = &[
    ("client-cert-auth", Bool),
    ("peer-client-cert-auth", Bool),
    ("strict-reconfig-check", Bool),
    ("enable-pprof", Bool),
    ("enable-v2", Bool),
    ("snapshot-count", Uint),
    ("heartbeat-interval", Uint),
    ("election-timeout", Uint),
    ("max-snapshots", Uint),
    ("max-wals", Uint),
    ("max-request-bytes", Uint),
    ("quota-backend-bytes", Int64),
    ("grpc-keepalive-min-time", Duration),
    ("grpc-keepalive-interval", Duration),
    ("grpc-keepalive-timeout", Duration),
];

/// The type of `component`'s flag `name`, if plinth knows it.
pub(crate) fn flag_type(component: &str, name: &str) -> Option<FlagType> {
    let tables: &[&[(&str, FlagType)]] = match component {
        "kube-apiserver" => &[APISERVER, COMMON],
        "kube-controller-manager" => &[CONTROLLER_MANAGER, SERVING, COMMON],
        "kube-scheduler" => &[SCHEDULER, SERVING, COMMON],
        "etcd" => &[ETCD],
        _ => &[],
    };
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Checks each extra arg of `component` whose type plinth knows; `args` come with the field
/// path of their value.
pub(crate) fn check_extra_args(component: &str, args: &[(String, Arg)], errs: &mut Errors) {
    for (path, arg) in args {
        let Some(t) = flag_type(component, &arg.name) else {
            continue;
        };
        if !t.accepts(&arg.value) {
            errs.push(
                path.clone(),
                &arg.value,
                format!("{} (--{} of {component})", t.allowed(), arg.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(component: &str, name: &str, value: &str) -> bool {
        let mut errs = Errors::default();
        let arg = Arg {
            name: name.into(),
            value: value.into(),
        };
        check_extra_args(component, &[("F".into(), arg)], &mut errs);
        errs.is_empty()
    }

    #[test]
    fn typed_flags_accept_what_their_parser_accepts() {
        for (c, n, v) in [
            ("kube-apiserver", "secure-port", "6443"),
            ("kube-apiserver", "secure-port", "0x192b"),
            ("kube-apiserver", "allow-privileged", "True"),
            ("kube-apiserver", "advertise-address", "fd00::10"),
            (
                "kube-apiserver",
                "service-cluster-ip-range",
                "10.96.0.0/12,fd00:10:96::/112",
            ),
            ("kube-apiserver", "request-timeout", "1m30s"),
            ("kube-apiserver", "v", "4"),
            ("kube-scheduler", "leader-elect-lease-duration", "15s"),
            ("kube-controller-manager", "cluster-cidr", "10.244.1.0/16"),
            ("kube-controller-manager", "node-cidr-mask-size", "24"),
            ("etcd", "snapshot-count", "10000"),
            ("etcd", "quota-backend-bytes", "8589934592"),
            // Unknown flags and string flags are the component's business.
            ("kube-apiserver", "no-such-flag", "whatever"),
            ("kube-apiserver", "goaway-chance", "notafloat"),
            ("kube-scheduler", "authorization-mode", "x"),
        ] {
            assert!(ok(c, n, v), "{c} --{n}={v} should pass");
        }
    }

    #[test]
    fn typed_flags_refuse_what_their_parser_refuses() {
        for (c, n, v) in [
            ("kube-apiserver", "secure-port", "notaport"),
            ("kube-apiserver", "secure-port", "70000"),
            ("kube-apiserver", "secure-port", "0"),
            ("kube-apiserver", "allow-privileged", "yes"),
            ("kube-apiserver", "advertise-address", "10.0.0"),
            ("kube-apiserver", "service-cluster-ip-range", "10.96.0.0"),
            ("kube-apiserver", "request-timeout", "60"),
            ("kube-apiserver", "v", "high"),
            ("kube-scheduler", "bind-address", "localhost"),
            (
                "kube-controller-manager",
                "node-cidr-mask-size",
                "99999999999",
            ),
            ("etcd", "snapshot-count", "-1"),
            ("etcd", "client-cert-auth", "yes"),
        ] {
            assert!(!ok(c, n, v), "{c} --{n}={v} should fail");
        }
    }

    #[test]
    fn the_error_names_field_value_and_allowed() {
        let mut errs = Errors::default();
        let arg = Arg {
            name: "secure-port".into(),
            value: "notaport".into(),
        };
        check_extra_args(
            "kube-apiserver",
            &[(
                "ClusterConfiguration.apiServer.extraArgs[0].value".into(),
                arg,
            )],
            &mut errs,
        );
        let e = errs.into_vec();
        let text = e[0].to_string();
        assert!(
            text.contains("ClusterConfiguration.apiServer.extraArgs[0].value")
                && text.contains("notaport")
                && text.contains("a port number from 1 to 65535"),
            "{text}"
        );
    }
}
