//! Liveness, readiness and startup probes with kubeadm's timings (`util/staticpod`).

use crate::config::{ClusterSpec, Etcd};

use super::args::{
    last_value, loopback_for, user_extra_args, CONTROLLER_MANAGER_PORT, ETCD_METRICS_PORT,
    SCHEDULER_PORT,
};
use super::etcd_version::{self, EtcdSemver};
use super::Component;

/// One HTTP GET probe as the template needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Probe {
    /// Host to probe; `None` = the pod IP (kubeadm leaves it empty for 0.0.0.0 / ::).
    pub host: Option<String>,
    /// Path (with query).
    pub path: String,
    /// Port.
    pub port: u16,
    /// `HTTP` or `HTTPS`.
    pub scheme: &'static str,
    /// initialDelaySeconds; `None` when 0 (omitted, as kubeadm's output).
    pub initial_delay_seconds: Option<u32>,
    /// timeoutSeconds.
    pub timeout_seconds: u32,
    /// failureThreshold.
    pub failure_threshold: u32,
    /// periodSeconds.
    pub period_seconds: u32,
}

/// The three probes of one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Probes {
    /// livenessProbe.
    pub liveness: Option<Probe>,
    /// readinessProbe.
    pub readiness: Option<Probe>,
    /// startupProbe.
    pub startup: Option<Probe>,
}

struct Target {
    host: Option<String>,
    port: u16,
    scheme: &'static str,
}

impl Target {
    fn probe(&self, path: &str, delay: u32, timeout: u32, failures: u32, period: u32) -> Probe {
        Probe {
            host: self.host.clone(),
            path: path.to_string(),
            port: self.port,
            scheme: self.scheme,
            initial_delay_seconds: (delay != 0).then_some(delay),
            timeout_seconds: timeout,
            failure_threshold: failures,
            period_seconds: period,
        }
    }

    /// kubeadm's LivenessProbe: delay 10, timeout 15, failures 8, period 10.
    fn liveness(&self, path: &str) -> Probe {
        self.probe(path, 10, 15, 8, 10)
    }

    /// kubeadm's ReadinessProbe: delay 0, timeout 15, failures 3, period 1.
    fn readiness(&self, path: &str) -> Probe {
        self.probe(path, 0, 15, 3, 1)
    }

    /// kubeadm's StartupProbe: delay 10, timeout 15, period 10, failures
    /// `ceil(controlPlaneComponentHealthCheck / period)` (4m → 24).
    fn startup(&self, path: &str, spec: &ClusterSpec) -> Probe {
        self.probe(path, 10, 15, startup_failure_threshold(spec), 10)
    }
}

/// `ceil(timeout_seconds / 10)`, at least 1.
pub(crate) fn startup_failure_threshold(spec: &ClusterSpec) -> u32 {
    let t = spec
        .timeouts
        .control_plane_component_health_check
        .as_secs_f64();
    ((t / 10.0).ceil() as u32).max(1)
}

/// kubeadm's `getProbeAddress`: the unspecified address probes the pod IP (host left empty).
fn probe_host(addr: &str) -> Option<String> {
    if addr == "0.0.0.0" || addr == "::" {
        None
    } else {
        Some(addr.to_string())
    }
}

/// The probes of `component`.
pub(crate) fn probes(spec: &ClusterSpec, component: Component) -> Probes {
    match component {
        Component::KubeApiserver => {
            let t = Target {
                host: probe_host(&spec.advertise_address.to_string()),
                port: spec.bind_port,
                scheme: "HTTPS",
            };
            Probes {
                liveness: Some(t.liveness("/livez")),
                readiness: Some(t.readiness("/readyz")),
                startup: Some(t.startup("/livez", spec)),
            }
        }
        Component::KubeControllerManager => {
            let bind = last_value(user_extra_args(spec, component), "bind-address");
            let t = Target {
                host: probe_host(bind.unwrap_or("127.0.0.1")),
                port: CONTROLLER_MANAGER_PORT,
                scheme: "HTTPS",
            };
            Probes {
                liveness: Some(t.liveness("/healthz")),
                readiness: None,
                startup: Some(t.startup("/healthz", spec)),
            }
        }
        Component::KubeScheduler => {
            let bind = last_value(user_extra_args(spec, component), "bind-address");
            let t = Target {
                host: probe_host(bind.unwrap_or("127.0.0.1")),
                port: SCHEDULER_PORT,
                scheme: "HTTPS",
            };
            // kubeadm 1.32 moved the scheduler from the deprecated /healthz to /livez + /readyz.
            if spec.kubernetes_version.minor >= 32 {
                Probes {
                    liveness: Some(t.liveness("/livez")),
                    readiness: Some(t.readiness("/readyz")),
                    startup: Some(t.startup("/livez", spec)),
                }
            } else {
                Probes {
                    liveness: Some(t.liveness("/healthz")),
                    readiness: None,
                    startup: Some(t.startup("/healthz", spec)),
                }
            }
        }
        Component::Etcd => {
            let t = etcd_target(spec);
            if etcd_version::effective_version(spec) >= etcd_version::LIVEZ_READYZ {
                Probes {
                    liveness: Some(t.liveness("/livez")),
                    readiness: Some(t.readiness("/readyz")),
                    startup: Some(t.startup("/readyz", spec)),
                }
            } else {
                Probes {
                    liveness: Some(t.liveness("/health?exclude=NOSPACE&serializable=true")),
                    readiness: None,
                    startup: Some(t.startup("/health?serializable=false", spec)),
                }
            }
        }
    }
}

/// kubeadm's `GetEtcdProbeEndpoint`: the first URL of a user `listen-metrics-urls`, else
/// `http://<loopback>:2381`.
fn etcd_target(spec: &ClusterSpec) -> Target {
    let loopback = loopback_for(&spec.advertise_address).to_string();
    let default = Target {
        host: Some(loopback.clone()),
        port: ETCD_METRICS_PORT,
        scheme: "HTTP",
    };
    let Etcd::Local(local) = &spec.etcd else {
        return default;
    };
    let Some(urls) = local
        .extra_args
        .iter()
        .find(|a| a.name == "listen-metrics-urls")
        .map(|a| a.value.as_str())
    else {
        return default;
    };
    let first = urls.split(',').next().unwrap_or("").trim();
    let Some((scheme, rest)) = first.split_once("://") else {
        return default;
    };
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "HTTPS"
    } else {
        "HTTP"
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = split_host_port(authority);
    Target {
        host: Some(if host.is_empty() { loopback } else { host }),
        port: port.unwrap_or(ETCD_METRICS_PORT),
        scheme,
    }
}

fn split_host_port(authority: &str) -> (String, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h.to_string(), port);
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (authority.to_string(), None),
    }
}

/// True when etcd probes use `/livez` + `/readyz` (etcd ≥ 3.5.11).
pub fn etcd_has_livez(version: &str) -> bool {
    EtcdSemver::parse(version).is_some_and(|v| v >= etcd_version::LIVEZ_READYZ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, Arg};
    use std::time::Duration;

    #[test]
    fn startup_threshold_is_timeout_over_period_rounded_up() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        assert_eq!(startup_failure_threshold(&spec), 24);
        spec.timeouts.control_plane_component_health_check = Duration::from_secs(95);
        assert_eq!(startup_failure_threshold(&spec), 10);
        spec.timeouts.control_plane_component_health_check = Duration::from_secs(0);
        assert_eq!(startup_failure_threshold(&spec), 1);
    }

    #[test]
    fn etcd_probe_paths_depend_on_version() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        let p = probes(&spec, Component::Etcd);
        assert_eq!(p.liveness.as_ref().unwrap().path, "/livez");
        assert_eq!(p.readiness.as_ref().unwrap().path, "/readyz");
        assert_eq!(p.startup.as_ref().unwrap().path, "/readyz");
        if let Etcd::Local(l) = &mut spec.etcd {
            l.image_tag = "3.5.10-0".into();
        }
        let p = probes(&spec, Component::Etcd);
        assert_eq!(
            p.liveness.as_ref().unwrap().path,
            "/health?exclude=NOSPACE&serializable=true"
        );
        assert!(p.readiness.is_none());
        assert!(etcd_has_livez("3.5.11-0") && !etcd_has_livez("3.5.9-0"));
    }

    #[test]
    fn bind_address_and_metrics_url_move_probes() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        spec.controller_manager.extra_args.push(Arg {
            name: "bind-address".into(),
            value: "0.0.0.0".into(),
        });
        let p = probes(&spec, Component::KubeControllerManager);
        assert_eq!(p.liveness.as_ref().unwrap().host, None);
        if let Etcd::Local(l) = &mut spec.etcd {
            l.extra_args.push(Arg {
                name: "listen-metrics-urls".into(),
                value: "https://[::1]:3381,http://127.0.0.1:2381".into(),
            });
        }
        let p = probes(&spec, Component::Etcd);
        let l = p.liveness.unwrap();
        assert_eq!(
            (l.host.as_deref(), l.port, l.scheme),
            (Some("::1"), 3381, "HTTPS")
        );
    }

    #[test]
    fn scheduler_probes_change_at_1_32() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        let p = probes(&spec, Component::KubeScheduler);
        assert_eq!(p.readiness.as_ref().unwrap().port, SCHEDULER_PORT);
        spec.kubernetes_version.minor = 31;
        let p = probes(&spec, Component::KubeScheduler);
        assert_eq!(p.liveness.unwrap().path, "/healthz");
        assert!(p.readiness.is_none());
    }
}
