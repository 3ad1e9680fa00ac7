//! [`ProbeSpec`]: a Pod's `Probe` validated and defaulted the way the kubelet runs it.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ProbeError, ProbeKind};

/// Kubelet default `periodSeconds`.
pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
/// Kubelet default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
/// Kubelet default `successThreshold`.
pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
/// Kubelet default `failureThreshold`.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// URL scheme of an httpGet probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (the default).
    Http,
    /// HTTPS; the server certificate is not verified, as in the kubelet.
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// What a probe does, fully resolved (host defaulted, named ports looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// GET `scheme://host:port/path`; 200..=399 is success.
    Http {
        /// HTTP or HTTPS.
        scheme: Scheme,
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Path (always starting with `/`, may carry a query).
        path: String,
        /// Extra request headers, in manifest order.
        headers: Vec<(String, String)>,
    },
    /// Open a TCP connection to `host:port`.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// Run a command as a host process; exit code 0 is success.
    Exec {
        /// argv, `command[0]` resolved through PATH.
        command: Vec<String>,
    },
}

impl ProbeAction {
    /// The URL an httpGet probe requests (`None` for other actions). IPv6 hosts are bracketed.
    pub fn url(&self) -> Option<String> {
        match self {
            ProbeAction::Http {
                scheme,
                host,
                port,
                path,
                ..
            } => Some(format!("{scheme}://{}{path}", host_port(host, *port))),
            _ => None,
        }
    }
}

/// `host:port`, with an IPv6 host in brackets.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One probe of one container, validated and with the kubelet's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What to do.
    pub action: ProbeAction,
    /// Time after the container start before the first attempt (`initialDelaySeconds`, default 0).
    pub initial_delay: Duration,
    /// Time between attempts (`periodSeconds`, default 10 s).
    pub period: Duration,
    /// Time one attempt may take (`timeoutSeconds`, default 1 s).
    pub timeout: Duration,
    /// Consecutive successes that make the result Success (default 1; must be 1 for
    /// liveness and startup probes).
    pub success_threshold: u32,
    /// Consecutive failures that make the result Failure (default 3).
    pub failure_threshold: u32,
}

/// Builds [`ProbeError`]s for one probe of one container.
struct Ctx<'a> {
    kind: ProbeKind,
    container: &'a Container,
}

impl Ctx<'_> {
    fn invalid(&self, field: &str, value: impl fmt::Display, allowed: &str) -> ProbeError {
        ProbeError::Invalid {
            kind: self.kind,
            container: self.container.name.clone(),
            field: field.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    /// An integer field: unset or 0 → `default` (API defaulting); below `min` → error.
    fn int_field(
        &self,
        field: &str,
        v: Option<i32>,
        default: i32,
        min: i32,
    ) -> Result<i32, ProbeError> {
        match v.unwrap_or(0) {
            0 => Ok(default),
            s if s < min => Err(self.invalid(field, s, &format!("must be at least {min}"))),
            s => Ok(s),
        }
    }

    /// Resolves an `IntOrString` port like the kubelet: a number, a container port name, or
    /// (last resort) a number written as a string; 1..=65535.
    fn port(&self, field: &'static str, port: &IntOrString) -> Result<u16, ProbeError> {
        let n: i64 = match port {
            IntOrString::Int(n) => i64::from(*n),
            IntOrString::String(name) => {
                let ports = self.container.ports.as_deref().unwrap_or_default();
                match ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                {
                    Some(p) => i64::from(p.container_port),
                    None => match name.parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => {
                            return Err(ProbeError::NamedPortNotFound {
                                kind: self.kind,
                                container: self.container.name.clone(),
                                field,
                                port: name.clone(),
                                declared: ports.iter().filter_map(|p| p.name.clone()).collect(),
                            })
                        }
                    },
                }
            }
        };
        u16::try_from(n)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| self.invalid(field, n, "a port number must be in 1..=65535"))
    }

    /// The probe host: the manifest's (brackets stripped) or the node address.
    fn host(&self, field: &str, host: Option<&str>, node_ip: IpAddr) -> Result<String, ProbeError> {
        let host = host.map(str::trim).unwrap_or_default();
        if host.is_empty() {
            return Ok(node_ip.to_string());
        }
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if unbracketed.parse::<IpAddr>().is_ok() {
            return Ok(unbracketed.to_string());
        }
        let valid_name = unbracketed.len() <= 253
            && unbracketed.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid_name {
            Ok(unbracketed.to_string())
        } else {
            Err(self.invalid(field, host, "an IP address or DNS name"))
        }
    }
}

impl ProbeSpec {
    /// Validates `probe` (of `container`, as its `kind` probe) and applies the kubelet's
    /// defaults. `node_ip` is the host used when httpGet/tcpSocket set no `host` (the pod IP of
    /// a hostNetwork pod is the node's).
    pub fn from_k8s(
        probe: &Probe,
        container: &Container,
        node_ip: IpAddr,
        kind: ProbeKind,
    ) -> Result<ProbeSpec, ProbeError> {
        let cx = Ctx { kind, container };

        let mut handlers = Vec::new();
        if probe.http_get.is_some() {
            handlers.push("httpGet");
        }
        if probe.tcp_socket.is_some() {
            handlers.push("tcpSocket");
        }
        if probe.exec.is_some() {
            handlers.push("exec");
        }
        if probe.grpc.is_some() {
            handlers.push("grpc");
        }
        if handlers.len() > 1 {
            return Err(ProbeError::MultipleHandlers {
                kind,
                container: container.name.clone(),
                handlers,
            });
        }

        let action = if let Some(http) = &probe.http_get {
            let scheme = match http.scheme.as_deref() {
                None | Some("") | Some("HTTP") => Scheme::Http,
                Some("HTTPS") => Scheme::Https,
                Some(other) => {
                    return Err(cx.invalid("httpGet.scheme", other, "one of HTTP, HTTPS"))
                }
            };
            let host = cx.host("httpGet.host", http.host.as_deref(), node_ip)?;
            let port = cx.port("httpGet.port", &http.port)?;
            let path = match http.path.as_deref() {
                None | Some("") => "/".to_string(),
                Some(p) if p.starts_with('/') => p.to_string(),
                Some(p) => format!("/{p}"),
            };
            let mut headers = Vec::new();
            for (i, h) in http.http_headers.iter().flatten().enumerate() {
                if reqwest::header::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
                    return Err(cx.invalid(
                        &format!("httpGet.httpHeaders[{i}].name"),
                        &h.name,
                        "a valid HTTP header name",
                    ));
                }
                if reqwest::header::HeaderValue::from_str(&h.value).is_err() {
                    return Err(cx.invalid(
                        &format!("httpGet.httpHeaders[{i}].value"),
                        &h.value,
                        "a valid HTTP header value (visible ASCII, no control characters)",
                    ));
                }
                headers.push((h.name.clone(), h.value.clone()));
            }
            let action = ProbeAction::Http {
                scheme,
                host,
                port,
                path: path.clone(),
                headers,
            };
            let url = action.url().unwrap_or_default();
            if reqwest::Url::parse(&url).is_err() {
                return Err(cx.invalid("httpGet.path", path, "a valid URL path"));
            }
            action
        } else if let Some(tcp) = &probe.tcp_socket {
            ProbeAction::Tcp {
                host: cx.host("tcpSocket.host", tcp.host.as_deref(), node_ip)?,
                port: cx.port("tcpSocket.port", &tcp.port)?,
            }
        } else if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            if command.first().is_none_or(|c| c.is_empty()) {
                return Err(cx.invalid(
                    "exec.command",
                    format!("{command:?}"),
                    "a non-empty command (command[0] is the executable)",
                ));
            }
            ProbeAction::Exec { command }
        } else if probe.grpc.is_some() {
            return Err(ProbeError::Unsupported {
                kind,
                container: container.name.clone(),
                handler: "grpc",
            });
        } else {
            return Err(ProbeError::NoHandler {
                kind,
                container: container.name.clone(),
            });
        };

        let initial_delay =
            cx.int_field("initialDelaySeconds", probe.initial_delay_seconds, 0, 0)?;
        let period = cx.int_field(
            "periodSeconds",
            probe.period_seconds,
            DEFAULT_PERIOD_SECONDS,
            1,
        )?;
        let timeout = cx.int_field(
            "timeoutSeconds",
            probe.timeout_seconds,
            DEFAULT_TIMEOUT_SECONDS,
            1,
        )?;
        let success_threshold = cx.int_field(
            "successThreshold",
            probe.success_threshold,
            DEFAULT_SUCCESS_THRESHOLD,
            1,
        )?;
        let failure_threshold = cx.int_field(
            "failureThreshold",
            probe.failure_threshold,
            DEFAULT_FAILURE_THRESHOLD,
            1,
        )?;
        if kind.failure_restarts_container() && success_threshold != 1 {
            return Err(cx.invalid(
                "successThreshold",
                success_threshold,
                &format!("must be 1 for a {kind}"),
            ));
        }

        let secs = |s: i32| Duration::from_secs(u64::try_from(s).unwrap_or(0));
        Ok(ProbeSpec {
            action,
            initial_delay: secs(initial_delay),
            period: secs(period),
            timeout: secs(timeout),
            success_threshold: u32::try_from(success_threshold).unwrap_or(1),
            failure_threshold: u32::try_from(failure_threshold).unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, TCPSocketAction,
    };

    const NODE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));

    fn container() -> Container {
        Container {
            name: "etcd".into(),
            ports: Some(vec![
                ContainerPort {
                    name: Some("metrics".into()),
                    container_port: 2381,
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("client".into()),
                    container_port: 2379,
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn http(port: IntOrString) -> Probe {
        Probe {
            http_get: Some(HTTPGetAction {
                port,
                path: Some("/health".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec(p: &Probe, kind: ProbeKind) -> Result<ProbeSpec, ProbeError> {
        ProbeSpec::from_k8s(p, &container(), NODE, kind)
    }

    #[test]
    fn kubelet_defaults_and_node_host() {
        let s = spec(&http(IntOrString::Int(2381)), ProbeKind::Liveness).unwrap();
        assert_eq!(s.initial_delay, Duration::ZERO);
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(s.success_threshold, 1);
        assert_eq!(s.failure_threshold, 3);
        assert_eq!(
            s.action,
            ProbeAction::Http {
                scheme: Scheme::Http,
                host: "10.0.0.7".into(),
                port: 2381,
                path: "/health".into(),
                headers: vec![],
            }
        );
        assert_eq!(s.action.url().unwrap(), "http://10.0.0.7:2381/health");
    }

    #[test]
    fn explicit_values_and_zero_means_default() {
        let mut p = http(IntOrString::Int(80));
        p.initial_delay_seconds = Some(15);
        p.period_seconds = Some(0);
        p.timeout_seconds = Some(15);
        p.failure_threshold = Some(8);
        p.success_threshold = Some(2);
        let s = spec(&p, ProbeKind::Readiness).unwrap();
        assert_eq!(s.initial_delay, Duration::from_secs(15));
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(15));
        assert_eq!(s.failure_threshold, 8);
        assert_eq!(s.success_threshold, 2);
    }

    #[test]
    fn negative_values_name_the_field() {
        let mut p = http(IntOrString::Int(80));
        p.period_seconds = Some(-1);
        let err = spec(&p, ProbeKind::Readiness).unwrap_err().to_string();
        assert!(err.contains("readinessProbe"), "{err}");
        assert!(err.contains("\"etcd\""), "{err}");
        assert!(err.contains("periodSeconds"), "{err}");
        assert!(err.contains("\"-1\""), "{err}");

        let mut p = http(IntOrString::Int(80));
        p.initial_delay_seconds = Some(-5);
        let err = spec(&p, ProbeKind::Readiness).unwrap_err().to_string();
        assert!(err.contains("initialDelaySeconds"), "{err}");
    }

    #[test]
    fn named_ports_resolve_and_missing_names_are_reported() {
        let s = spec(
            &http(IntOrString::String("client".into())),
            ProbeKind::Startup,
        )
        .unwrap();
        assert!(matches!(s.action, ProbeAction::Http { port: 2379, .. }));

        let err = spec(
            &http(IntOrString::String("peer".into())),
            ProbeKind::Startup,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ProbeError::NamedPortNotFound {
                kind: ProbeKind::Startup,
                container: "etcd".into(),
                field: "httpGet.port",
                port: "peer".into(),
                declared: vec!["metrics".into(), "client".into()],
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"peer\"") && msg.contains("metrics, client"),
            "{msg}"
        );

        // A number written as a string is accepted as a last resort, like the kubelet.
        let s = spec(
            &http(IntOrString::String("8080".into())),
            ProbeKind::Startup,
        )
        .unwrap();
        assert!(matches!(s.action, ProbeAction::Http { port: 8080, .. }));
    }

    #[test]
    fn port_range_is_checked() {
        for bad in [0, -1, 65536] {
            let err = spec(&http(IntOrString::Int(bad)), ProbeKind::Liveness).unwrap_err();
            assert!(
                matches!(&err, ProbeError::Invalid { field, value, .. } if field == "httpGet.port" && *value == bad.to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn success_threshold_must_be_one_for_liveness_and_startup() {
        let mut p = http(IntOrString::Int(80));
        p.success_threshold = Some(2);
        for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
            let err = spec(&p, kind).unwrap_err().to_string();
            assert!(
                err.contains("successThreshold") && err.contains("must be 1"),
                "{err}"
            );
        }
        assert!(spec(&p, ProbeKind::Readiness).is_ok());
    }

    #[test]
    fn handler_count_and_grpc() {
        let none = Probe::default();
        assert!(matches!(
            spec(&none, ProbeKind::Liveness),
            Err(ProbeError::NoHandler { .. })
        ));

        let mut two = http(IntOrString::Int(80));
        two.tcp_socket = Some(TCPSocketAction {
            port: IntOrString::Int(80),
            ..Default::default()
        });
        let err = spec(&two, ProbeKind::Liveness).unwrap_err();
        assert!(err.to_string().contains("httpGet, tcpSocket"), "{err}");

        let grpc = Probe {
            grpc: Some(GRPCAction {
                port: 2379,
                service: None,
            }),
            ..Default::default()
        };
        let err = spec(&grpc, ProbeKind::Liveness).unwrap_err();
        assert!(matches!(
            err,
            ProbeError::Unsupported {
                handler: "grpc",
                ..
            }
        ));
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn https_host_headers_and_ipv6() {
        let p = Probe {
            http_get: Some(HTTPGetAction {
                scheme: Some("HTTPS".into()),
                host: Some("::1".into()),
                port: IntOrString::String("metrics".into()),
                path: Some("livez?verbose".into()),
                http_headers: Some(vec![HTTPHeader {
                    name: "X-Probe".into(),
                    value: "yes".into(),
                }]),
            }),
            ..Default::default()
        };
        let s = spec(&p, ProbeKind::Liveness).unwrap();
        assert_eq!(s.action.url().unwrap(), "https://[::1]:2381/livez?verbose");
        assert!(matches!(&s.action, ProbeAction::Http { headers, host, .. }
            if headers == &vec![("X-Probe".to_string(), "yes".to_string())] && host == "::1"));

        // Bracketed form is accepted too.
        let mut p2 = p.clone();
        p2.http_get.as_mut().unwrap().host = Some("[fd00::1]".into());
        let s = spec(&p2, ProbeKind::Liveness).unwrap();
        assert!(matches!(&s.action, ProbeAction::Http { host, .. } if host == "fd00::1"));

        // IPv6 node address as the default host.
        let s = ProbeSpec::from_k8s(
            &http(IntOrString::Int(80)),
            &container(),
            "fd00::7".parse().unwrap(),
            ProbeKind::Liveness,
        )
        .unwrap();
        assert_eq!(s.action.url().unwrap(), "http://[fd00::7]:80/health");
    }

    #[test]
    fn bad_scheme_header_and_host_are_errors() {
        let mut p = http(IntOrString::Int(80));
        p.http_get.as_mut().unwrap().scheme = Some("ftp".into());
        let err = spec(&p, ProbeKind::Liveness).unwrap_err().to_string();
        assert!(
            err.contains("httpGet.scheme") && err.contains("\"ftp\"") && err.contains("HTTPS"),
            "{err}"
        );

        let mut p = http(IntOrString::Int(80));
        p.http_get.as_mut().unwrap().http_headers = Some(vec![HTTPHeader {
            name: "bad header".into(),
            value: "x".into(),
        }]);
        let err = spec(&p, ProbeKind::Liveness).unwrap_err().to_string();
        assert!(err.contains("httpGet.httpHeaders[0].name"), "{err}");

        let mut p = http(IntOrString::Int(80));
        p.http_get.as_mut().unwrap().host = Some("no spaces allowed".into());
        let err = spec(&p, ProbeKind::Liveness).unwrap_err().to_string();
        assert!(err.contains("httpGet.host"), "{err}");
    }

    #[test]
    fn tcp_and_exec() {
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: Some("127.0.0.1".into()),
                port: IntOrString::String("client".into()),
            }),
            ..Default::default()
        };
        let s = spec(&tcp, ProbeKind::Readiness).unwrap();
        assert_eq!(
            s.action,
            ProbeAction::Tcp {
                host: "127.0.0.1".into(),
                port: 2379
            }
        );
        let err = ProbeSpec::from_k8s(
            &Probe {
                tcp_socket: Some(TCPSocketAction {
                    host: None,
                    port: IntOrString::String("nope".into()),
                }),
                ..Default::default()
            },
            &container(),
            NODE,
            ProbeKind::Readiness,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ProbeError::NamedPortNotFound {
                field: "tcpSocket.port",
                ..
            }
        ));

        let exec = Probe {
            exec: Some(ExecAction {
                command: Some(vec!["etcdctl".into(), "endpoint".into(), "health".into()]),
            }),
            ..Default::default()
        };
        let s = spec(&exec, ProbeKind::Liveness).unwrap();
        assert_eq!(
            s.action,
            ProbeAction::Exec {
                command: vec!["etcdctl".into(), "endpoint".into(), "health".into()]
            }
        );
        let empty = Probe {
            exec: Some(ExecAction { command: None }),
            ..Default::default()
        };
        let err = spec(&empty, ProbeKind::Liveness).unwrap_err().to_string();
        assert!(err.contains("exec.command"), "{err}");
    }
}
