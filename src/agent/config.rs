//! Agent configuration: a KubeletConfiguration file (`kubelet.config.k8s.io/v1beta1`) and
//! command-line flags (which win), resolved into one [`AgentConfig`].
//!
//! Honoured KubeletConfiguration fields: `staticPodPath` (a directory or a single file),
//! `fileCheckFrequency` (default 20s), `healthzPort` and `healthzBindAddress` (default
//! 127.0.0.1:10248; port 0 disables the status server), and plinth's own `kubeconfig` (alias
//! `kubeletKubeconfig`: the kubeconfig of the agent's API identity, `system:node:<name>`; see
//! [`super::apisync`]). Every other field is accepted and listed once, at start, as ignored.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::HostRoot;

/// The KubeletConfiguration apiVersion accepted.
pub const KUBELET_CONFIG_API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// Default relist period.
pub const DEFAULT_FILE_CHECK_FREQUENCY: Duration = Duration::from_secs(20);
/// Longest accepted settle window.
pub const MAX_SETTLE_WINDOW: Duration = Duration::from_secs(600);
/// Default status port.
pub const DEFAULT_HEALTHZ_PORT: u16 = 10248;

/// Errors in the agent configuration, naming the field, the value and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("config file {path}", path = path.display())]
    Read {
        /// File (as opened).
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid YAML or not a KubeletConfiguration.
    #[error("config file {path}: {reason}", path = path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A field or flag has a bad value.
    #[error("{field}: {value:?} is not valid: {allowed}")]
    Field {
        /// Field or flag name.
        field: String,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// No manifest path anywhere.
    #[error("no static pod path: pass --pod-manifest-path DIR or a --config KubeletConfiguration with staticPodPath")]
    NoManifestPath,
}

/// Command-line inputs (all optional; unset flags fall back to the file, then defaults).
#[derive(Debug, Clone, Default)]
pub struct AgentFlags {
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--pod-manifest-path` (host path).
    pub pod_manifest_path: Option<PathBuf>,
    /// `--config` (host path).
    pub config: Option<PathBuf>,
    /// `--node-name`.
    pub node_name: Option<String>,
    /// `--node-ip`.
    pub node_ip: Option<String>,
    /// `--state-dir` (host path).
    pub state_dir: PathBuf,
    /// `--log-dir` (host path).
    pub log_dir: PathBuf,
    /// `--bin-path` (colon-separated).
    pub bin_path: Option<String>,
    /// `--image-command IMAGE=EXE [ARGS...]`.
    pub image_commands: Vec<String>,
    /// `--healthz-port`.
    pub healthz_port: Option<u16>,
    /// `--manifest-settle-window` (Go duration).
    pub manifest_settle_window: Option<String>,
    /// `--healthz-bind-address`.
    pub healthz_bind_address: Option<String>,
    /// `--file-check-frequency` (Go duration).
    pub file_check_frequency: Option<String>,
    /// `--stop-pods-on-exit`.
    pub stop_pods_on_exit: bool,
    /// `--kubeconfig` (host path): register the Node and mirror pods with this identity.
    pub kubeconfig: Option<PathBuf>,
}

/// The resolved agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Host root.
    pub root: HostRoot,
    /// Manifest directory or file: a host path opened under [`AgentConfig::manifest_root`].
    pub manifest_path: PathBuf,
    /// The root the manifest path is opened under: `root`, except for a relative
    /// `--pod-manifest-path`, which is taken from the current directory as is.
    pub manifest_root: HostRoot,
    /// Full relist period.
    pub file_check_frequency: Duration,
    /// How long a manifest written in place must stay unchanged before it is applied
    /// (files renamed into place are applied at once; see [`super::settle`]).
    pub settle_window: Duration,
    /// Status server address (`None` = disabled).
    pub healthz: Option<SocketAddr>,
    /// Node name.
    pub node_name: String,
    /// Node address (status.podIP / hostIP, probe host).
    pub node_ip: IpAddr,
    /// State dir (host path).
    pub state_dir: PathBuf,
    /// Pod log dir (host path).
    pub log_dir: PathBuf,
    /// Where command[0] is looked up.
    pub bin_path: Vec<PathBuf>,
    /// Image → entrypoint table.
    pub image_commands: BTreeMap<String, Vec<String>>,
    /// Stop pods when the agent exits.
    pub stop_pods_on_exit: bool,
    /// KubeletConfiguration fields present but not honoured.
    pub ignored_fields: Vec<String>,
    /// The kubeconfig (host path, opened under `root`) of the agent's API identity; `None`
    /// = no API sync (the agent runs its pods all the same).
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct FileConfig {
    static_pod_path: Option<String>,
    file_check_frequency: Option<String>,
    healthz_port: Option<i64>,
    healthz_bind_address: Option<String>,
    kubeconfig: Option<String>,
    ignored: Vec<String>,
}

const HONOURED: &[&str] = &[
    "apiVersion",
    "kind",
    "staticPodPath",
    "fileCheckFrequency",
    "healthzPort",
    "healthzBindAddress",
    "kubeconfig",
    "kubeletKubeconfig",
];

fn load_file(root: &HostRoot, path: &Path) -> Result<FileConfig, ConfigError> {
    let local = root.path(path);
    let text = std::fs::read_to_string(&local).map_err(|e| ConfigError::Read {
        path: local.clone(),
        source: e,
    })?;
    parse_kubelet_config(path, &text)
}

fn parse_kubelet_config(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let v: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(" (line {})", l.line()))
            .unwrap_or_default();
        invalid(format!(
            "invalid YAML{line}: {}",
            e.to_string().lines().next().unwrap_or("")
        ))
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("expected a KubeletConfiguration mapping".into()))?;
    let api = obj
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("<missing>");
    let kind = obj
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("<missing>");
    if api != KUBELET_CONFIG_API_VERSION || kind != "KubeletConfiguration" {
        return Err(invalid(format!(
            "apiVersion {api:?} kind {kind:?}: expected apiVersion {KUBELET_CONFIG_API_VERSION:?} kind \"KubeletConfiguration\""
        )));
    }
    let str_field = |name: &str| -> Result<Option<String>, ConfigError> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!("{name}: {other} is not a string"))),
        }
    };
    let healthz_port = match obj.get("healthzPort") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| invalid(format!("healthzPort: {v} is not an integer (0..65535)")))?,
        ),
    };
    Ok(FileConfig {
        static_pod_path: str_field("staticPodPath")?,
        file_check_frequency: str_field("fileCheckFrequency")?,
        healthz_port,
        healthz_bind_address: str_field("healthzBindAddress")?,
        kubeconfig: match (str_field("kubeconfig")?, str_field("kubeletKubeconfig")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(format!(
                    "kubeconfig {a:?} and kubeletKubeconfig {b:?} differ: set one of them"
                )))
            }
            (a, b) => a.or(b),
        },
        ignored: obj
            .keys()
            .filter(|k| !HONOURED.contains(&k.as_str()))
            .cloned()
            .collect(),
    })
}

impl AgentConfig {
    /// Resolves flags (and the config file they name) into a configuration.
    pub fn resolve(flags: &AgentFlags) -> Result<AgentConfig, ConfigError> {
        let root = HostRoot::new(flags.root.as_deref());
        let file = match &flags.config {
            Some(p) => load_file(&root, p)?,
            None => FileConfig::default(),
        };
        let mut manifest_root = root.clone();
        let mut manifest_path = flags
            .pod_manifest_path
            .clone()
            .or_else(|| file.static_pod_path.clone().map(PathBuf::from))
            .ok_or(ConfigError::NoManifestPath)?;
        if let Some(rel) = flags.pod_manifest_path.as_ref().filter(|p| p.is_relative()) {
            let cwd = std::env::current_dir().map_err(|e| ConfigError::Field {
                field: "--pod-manifest-path".into(),
                value: rel.display().to_string(),
                allowed: format!("a path; the current directory is unreadable: {e}"),
            })?;
            manifest_path = cwd.join(rel);
            manifest_root = HostRoot::default();
        }
        if !manifest_path.is_absolute() {
            return Err(ConfigError::Field {
                field: "staticPodPath".into(),
                value: manifest_path.display().to_string(),
                allowed: "an absolute path".into(),
            });
        }
        let fcf = match flags
            .file_check_frequency
            .as_ref()
            .or(file.file_check_frequency.as_ref())
        {
            Some(s) => parse_go_duration(s)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::Field {
                    field: "fileCheckFrequency".into(),
                    value: s.clone(),
                    allowed: "a positive duration such as 20s, 1m30s, 500ms".into(),
                })?,
            None => DEFAULT_FILE_CHECK_FREQUENCY,
        };
        let settle_window = match &flags.manifest_settle_window {
            Some(s) => parse_go_duration(s)
                .filter(|d| !d.is_zero() && *d <= MAX_SETTLE_WINDOW)
                .ok_or_else(|| ConfigError::Field {
                    field: "--manifest-settle-window".into(),
                    value: s.clone(),
                    allowed: "a positive duration up to 10m, such as 1s or 500ms".into(),
                })?,
            None => super::settle::DEFAULT_SETTLE_WINDOW,
        };
        let port: i64 = flags
            .healthz_port
            .map(i64::from)
            .or(file.healthz_port)
            .unwrap_or(DEFAULT_HEALTHZ_PORT as i64);
        let port = u16::try_from(port).map_err(|_| ConfigError::Field {
            field: "healthzPort".into(),
            value: port.to_string(),
            allowed: "0 (disabled) to 65535".into(),
        })?;
        let bind = flags
            .healthz_bind_address
            .clone()
            .or(file.healthz_bind_address)
            .unwrap_or_else(|| "127.0.0.1".into());
        let bind_ip: IpAddr = bind.parse().map_err(|_| ConfigError::Field {
            field: "healthzBindAddress".into(),
            value: bind.clone(),
            allowed: "an IP address such as 127.0.0.1".into(),
        })?;
        let node_name = match &flags.node_name {
            Some(n) => n.to_lowercase(),
            None => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().to_lowercase())
                .unwrap_or_else(|_| "localhost".into()),
        };
        if node_name.is_empty()
            || !node_name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(ConfigError::Field {
                field: "--node-name".into(),
                value: node_name,
                allowed: "lowercase letters, digits, '-' and '.'".into(),
            });
        }
        let node_ip = match &flags.node_ip {
            Some(s) => s.parse().map_err(|_| ConfigError::Field {
                field: "--node-ip".into(),
                value: s.clone(),
                allowed: "an IP address".into(),
            })?,
            None => default_node_ip(),
        };
        let bin_path = match &flags.bin_path {
            Some(s) => super::resolve::split_bin_path(s),
            None => super::resolve::split_bin_path(&std::env::var("PATH").unwrap_or_else(|_| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            })),
        };
        let kubeconfig = match flags
            .kubeconfig
            .clone()
            .or_else(|| file.kubeconfig.clone().map(PathBuf::from))
        {
            Some(p) if p.as_os_str().is_empty() || !p.is_absolute() => {
                return Err(ConfigError::Field {
                    field: if flags.kubeconfig.is_some() {
                        "--kubeconfig"
                    } else {
                        "kubeconfig"
                    }
                    .into(),
                    value: p.display().to_string(),
                    allowed: "an absolute path to a kubeconfig file".into(),
                })
            }
            other => other,
        };
        let mut image_commands = BTreeMap::new();
        for entry in &flags.image_commands {
            let (image, cmd) = entry.split_once('=').ok_or_else(|| ConfigError::Field {
                field: "--image-command".into(),
                value: entry.clone(),
                allowed: "IMAGE=EXECUTABLE [ARGS...], e.g. nginx=/usr/sbin/nginx".into(),
            })?;
            let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
            if image.is_empty() || argv.is_empty() {
                return Err(ConfigError::Field {
                    field: "--image-command".into(),
                    value: entry.clone(),
                    allowed: "IMAGE=EXECUTABLE [ARGS...], both non-empty".into(),
                });
            }
            image_commands.insert(image.to_string(), argv);
        }
        Ok(AgentConfig {
            root,
            manifest_path,
            manifest_root,
            file_check_frequency: fcf,
            settle_window,
            healthz: (port != 0).then_some(SocketAddr::new(bind_ip, port)),
            node_name,
            node_ip,
            state_dir: flags.state_dir.clone(),
            log_dir: flags.log_dir.clone(),
            bin_path,
            image_commands,
            stop_pods_on_exit: flags.stop_pods_on_exit,
            ignored_fields: file.ignored,
            kubeconfig,
        })
    }
}

/// The first non-loopback, non-link-local address of an up interface (IPv4 preferred),
/// else 127.0.0.1.
pub fn default_node_ip() -> IpAddr {
    let mut v6 = None;
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if !a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
                continue;
            }
            let Some(addr) = a.address else { continue };
            if let Some(sin) = addr.as_sockaddr_in() {
                let ip = sin.ip();
                if !ip.is_loopback() && !ip.is_link_local() {
                    return IpAddr::V4(ip);
                }
            } else if let Some(sin6) = addr.as_sockaddr_in6() {
                let ip = sin6.ip();
                if !ip.is_loopback() && (ip.segments()[0] & 0xffc0) != 0xfe80 && v6.is_none() {
                    v6 = Some(IpAddr::V6(ip));
                }
            }
        }
    }
    v6.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Parses a Go duration (`20s`, `1m30s`, `500ms`, `1h`, `1.5s`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> AgentFlags {
        AgentFlags {
            state_dir: "/var/lib/plinth".into(),
            log_dir: "/var/log/pods".into(),
            node_name: Some("Node1".into()),
            node_ip: Some("10.1.2.3".into()),
            ..Default::default()
        }
    }

    #[test]
    fn kubelet_configuration_fields_and_ignored_list() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/kc.yaml"),
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\nfileCheckFrequency: 1m30s\nhealthzPort: 10300\nhealthzBindAddress: 0.0.0.0\ncgroupDriver: systemd\nclusterDNS: [10.96.0.10]\n",
        )
        .unwrap();
        let mut f = flags();
        f.root = Some(d.path().to_path_buf());
        f.config = Some("/etc/kc.yaml".into());
        let c = AgentConfig::resolve(&f).unwrap();
        assert_eq!(c.manifest_path, PathBuf::from("/etc/kubernetes/manifests"));
        assert_eq!(c.file_check_frequency, Duration::from_secs(90));
        assert_eq!(c.healthz, Some("0.0.0.0:10300".parse().unwrap()));
        assert_eq!(c.ignored_fields, vec!["cgroupDriver", "clusterDNS"]);
        assert_eq!(c.node_name, "node1");
        // Flags win.
        f.pod_manifest_path = Some("/other".into());
        f.healthz_port = Some(0);
        let c = AgentConfig::resolve(&f).unwrap();
        assert_eq!(c.manifest_path, PathBuf::from("/other"));
        assert_eq!(c.healthz, None);
    }

    #[test]
    fn defaults_and_errors() {
        let mut f = flags();
        f.pod_manifest_path = Some("/m".into());
        f.image_commands = vec!["nginx=/usr/sbin/nginx -g daemon".into()];
        let c = AgentConfig::resolve(&f).unwrap();
        assert_eq!(c.file_check_frequency, Duration::from_secs(20));
        assert_eq!(c.healthz, Some("127.0.0.1:10248".parse().unwrap()));
        assert_eq!(
            c.image_commands["nginx"],
            vec!["/usr/sbin/nginx", "-g", "daemon"]
        );
        let mut bad = f.clone();
        bad.image_commands = vec!["nginx".into()];
        assert!(AgentConfig::resolve(&bad)
            .unwrap_err()
            .to_string()
            .contains("--image-command"));
        let mut bad = f.clone();
        bad.file_check_frequency = Some("soon".into());
        let e = AgentConfig::resolve(&bad).unwrap_err().to_string();
        assert!(
            e.contains("fileCheckFrequency") && e.contains("\"soon\""),
            "{e}"
        );
        assert_eq!(c.settle_window, Duration::from_secs(1));
        for v in ["0s", "soon", "11m"] {
            let mut bad = f.clone();
            bad.manifest_settle_window = Some(v.into());
            let e = AgentConfig::resolve(&bad).unwrap_err().to_string();
            assert!(
                e.contains("--manifest-settle-window") && e.contains(&format!("{v:?}")),
                "{e}"
            );
        }
        let mut ok = f.clone();
        ok.manifest_settle_window = Some("250ms".into());
        assert_eq!(
            AgentConfig::resolve(&ok).unwrap().settle_window,
            Duration::from_millis(250)
        );
        let mut bad = f.clone();
        bad.healthz_bind_address = Some("localhost:1".into());
        assert!(AgentConfig::resolve(&bad).is_err());
        let mut none = flags();
        none.pod_manifest_path = None;
        assert!(matches!(
            AgentConfig::resolve(&none),
            Err(ConfigError::NoManifestPath)
        ));
    }

    #[test]
    fn kubeconfig_from_flag_or_either_file_key() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        let head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /m\n";
        let mut f = flags();
        f.root = Some(d.path().to_path_buf());
        f.config = Some("/etc/kc.yaml".into());
        for key in ["kubeconfig", "kubeletKubeconfig"] {
            std::fs::write(
                d.path().join("etc/kc.yaml"),
                format!("{head}{key}: /etc/kubernetes/kubelet.conf\n"),
            )
            .unwrap();
            let c = AgentConfig::resolve(&f).unwrap();
            assert_eq!(c.kubeconfig, Some("/etc/kubernetes/kubelet.conf".into()));
            assert!(c.ignored_fields.is_empty(), "{:?}", c.ignored_fields);
        }
        f.kubeconfig = Some("/k.conf".into());
        assert_eq!(
            AgentConfig::resolve(&f).unwrap().kubeconfig,
            Some("/k.conf".into())
        );
        f.kubeconfig = Some("rel.conf".into());
        let e = AgentConfig::resolve(&f).unwrap_err().to_string();
        assert!(
            e.contains("--kubeconfig") && e.contains("\"rel.conf\""),
            "{e}"
        );
        std::fs::write(
            d.path().join("etc/kc.yaml"),
            format!("{head}kubeconfig: /a\nkubeletKubeconfig: /b\n"),
        )
        .unwrap();
        f.kubeconfig = None;
        let e = AgentConfig::resolve(&f).unwrap_err().to_string();
        assert!(e.contains("\"/a\"") && e.contains("\"/b\""), "{e}");
        std::fs::write(d.path().join("etc/kc.yaml"), head).unwrap();
        assert_eq!(AgentConfig::resolve(&f).unwrap().kubeconfig, None);
    }

    #[test]
    fn rejects_other_kinds() {
        let e = parse_kubelet_config(Path::new("/c.yaml"), "apiVersion: v1\nkind: Pod\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("KubeletConfiguration") && e.contains("/c.yaml"),
            "{e}"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("s"), None);
    }
}
