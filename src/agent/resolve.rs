//! Turns a Pod's container into a fully resolved [`ContainerSpec`] for the runtime:
//! executable (command[0] through the bin path, or the image → executable table), argv with
//! `$(VAR)` expansion, env, workingDir, runAsUser/runAsGroup (container over pod
//! securityContext), hostPath mounts, resources and the log path.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use super::env::{expand, resolve_env, FieldValues};
use super::hostpath::HostPaths;
pub use super::model::ResolveError;
use super::pod::StaticPod;
use crate::fs::HostRoot;
use crate::runtime::{ContainerSpec, Resources};

/// Settings for resolving containers on this node.
#[derive(Debug)]
pub struct Resolver {
    /// Host root.
    pub root: HostRoot,
    /// Directories command[0] is looked up in.
    pub bin_path: Vec<PathBuf>,
    /// The state dir (host path) whose binary cache (`bin/<component>/<version>/<name>`,
    /// filled by `plinth init` / `plinth binaries pull`) is searched first, by the pod's image
    /// tag; `None` searches the bin path only.
    pub binary_cache: Option<PathBuf>,
    /// image → entrypoint (executable plus optional default arguments).
    pub image_commands: BTreeMap<String, Vec<String>>,
    /// Node name.
    pub node_name: String,
    /// Node address (status.podIP / hostIP).
    pub node_ip: IpAddr,
    /// Pod log dir (host path).
    pub log_dir: PathBuf,
    /// hostPath volumes.
    pub host_paths: HostPaths,
}

impl Resolver {
    /// The local directory holding the log files of container `container` of `pod`, one
    /// `<restartCount>.log` per instance.
    pub fn container_log_dir(&self, pod: &StaticPod, container: &str) -> PathBuf {
        self.root.path(
            crate::logs::pod_log_dir(&self.log_dir, &pod.namespace, &pod.name, &pod.uid)
                .join(container),
        )
    }

    /// Pod-level checks (run before any container starts): hostNetwork, volumes.
    pub fn prepare_pod(&self, pod: &StaticPod) -> Result<(), ResolveError> {
        let spec = pod.spec();
        if spec.host_network != Some(true) {
            return Err(ResolveError::Unsupported(
                "spec.hostNetwork must be true: the process runtime runs containers in the host network namespace (other network modes are not supported)".into(),
            ));
        }
        self.host_paths.prepare(spec)
    }

    /// Resolves one container of `pod` for its `restart_count`-th start.
    pub fn container_spec(
        &self,
        pod: &StaticPod,
        c: &Container,
        restart_count: u32,
    ) -> Result<ContainerSpec, ResolveError> {
        let spec = pod.spec();
        let fields = FieldValues {
            pod_name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            pod_uid: pod.uid.clone(),
            node_name: self.node_name.clone(),
            host_ip: self.node_ip,
        };
        let mut env = resolve_env(c, &fields)?;
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let image = c.image.clone().unwrap_or_default();
        let command: Vec<String> = c.command.clone().unwrap_or_default();
        let args: Vec<String> = c.args.clone().unwrap_or_default();
        let mut argv: Vec<String> = if !command.is_empty() {
            command
                .iter()
                .chain(args.iter())
                .map(|a| expand(a, &vars))
                .collect()
        } else {
            let entry = self
                .image_entry(&image)
                .ok_or_else(|| ResolveError::NoCommand {
                    container: c.name.clone(),
                    image: image.clone(),
                })?;
            let mut v = entry.clone();
            if !args.is_empty() {
                v.truncate(1);
                v.extend(args.iter().map(|a| expand(a, &vars)));
            }
            v
        };
        if argv.is_empty() || argv[0].is_empty() {
            return Err(ResolveError::NoCommand {
                container: c.name.clone(),
                image,
            });
        }
        let cached = self.binary_cache.as_ref().and_then(|state| {
            crate::binlayout::image_executable(&self.root, state, &image, &argv[0])
        });
        let executable = match cached {
            Some(p) => p,
            None => self.find_executable(&c.name, &argv[0])?,
        };
        if argv[0].contains('/') {
            argv[0] = executable.display().to_string();
        }
        if !env.iter().any(|(n, _)| n == "PATH") {
            // The bin path first, then the standard dirs a container image's PATH has: the
            // process still needs the host's ordinary tools (sh, openssl, ...).
            let mut dirs: Vec<String> = self
                .bin_path
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            for d in [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ] {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_string());
                }
            }
            let path = dirs.join(":");
            env.insert(0, ("PATH".into(), path));
        }
        let psc = spec.security_context.as_ref();
        let csc = c.security_context.as_ref();
        let run_as_user = csc
            .and_then(|s| s.run_as_user)
            .or_else(|| psc.and_then(|s| s.run_as_user));
        let run_as_group = csc
            .and_then(|s| s.run_as_group)
            .or_else(|| psc.and_then(|s| s.run_as_group));
        let to_id = |v: Option<i64>, field: &str| -> Result<Option<u32>, ResolveError> {
            v.map(|x| {
                u32::try_from(x).map_err(|_| {
                    ResolveError::Unsupported(format!(
                        "container {}: securityContext.{field} {x} is not a valid id (0..4294967295)",
                        c.name
                    ))
                })
            })
            .transpose()
        };
        let log_path = self.root.path(crate::logs::container_log_path(
            &self.log_dir,
            &pod.namespace,
            &pod.name,
            &pod.uid,
            &c.name,
            restart_count,
        ));
        Ok(ContainerSpec {
            pod_uid: pod.uid.clone(),
            pod_name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            container_name: c.name.clone(),
            restart_count,
            image,
            executable,
            argv,
            env,
            working_dir: c
                .working_dir
                .as_ref()
                .filter(|w| !w.is_empty())
                .map(PathBuf::from),
            run_as_user: to_id(run_as_user, "runAsUser")?,
            run_as_group: to_id(run_as_group, "runAsGroup")?,
            mounts: self.host_paths.mounts(spec, c)?,
            resources: Resources {
                oom_score_adj: oom_score_adj(spec),
                ..resources(c)?
            },
            log_path,
        })
    }

    fn image_entry(&self, image: &str) -> Option<&Vec<String>> {
        if let Some(e) = self.image_commands.get(image) {
            return Some(e);
        }
        // Without digest and tag, then the last path component ("docker.io/library/nginx:1.25"
        // matches "nginx").
        let no_digest = image.split('@').next().unwrap_or(image);
        let last_slash = no_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let no_tag = match no_digest[last_slash..].rfind(':') {
            Some(i) => &no_digest[..last_slash + i],
            None => no_digest,
        };
        self.image_commands
            .get(no_tag)
            .or_else(|| self.image_commands.get(&no_tag[last_slash..]))
    }

    /// Looks `name` up on the bin path (a name with a `/` is taken as is, on the real host:
    /// executables are never under `--root`).
    pub fn find_executable(&self, container: &str, name: &str) -> Result<PathBuf, ResolveError> {
        let searched = || {
            self.bin_path
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        if name.contains('/') {
            let p = PathBuf::from(name);
            return if is_executable(&p) {
                Ok(p)
            } else {
                Err(ResolveError::ExecutableNotFound {
                    container: container.into(),
                    name: name.into(),
                    searched: "(absolute path)".into(),
                })
            };
        }
        self.bin_path
            .iter()
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| ResolveError::ExecutableNotFound {
                container: container.into(),
                name: name.into(),
                searched: searched(),
            })
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Splits a colon-separated bin path (empty entries dropped).
pub fn split_bin_path(s: &str) -> Vec<PathBuf> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The kubelet's `oom_score_adj` for node-critical pods (priorityClassName
/// system-node-critical / system-cluster-critical, or priority ≥ 2·10⁹): -997.
fn oom_score_adj(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<i32> {
    let critical = matches!(
        spec.priority_class_name.as_deref(),
        Some("system-node-critical") | Some("system-cluster-critical")
    ) || spec.priority.is_some_and(|p| p >= 2_000_000_000);
    critical.then_some(-997)
}

fn resources(c: &Container) -> Result<Resources, ResolveError> {
    let Some(r) = &c.resources else {
        return Ok(Resources::default());
    };
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         which: &str,
         key: &str,
         millis: bool|
         -> Result<Option<u64>, ResolveError> {
            let Some(q) = m.as_ref().and_then(|m| m.get(key)) else {
                return Ok(None);
            };
            parse_quantity(&q.0, millis)
                .map(Some)
                .ok_or_else(|| ResolveError::Quantity {
                    container: c.name.clone(),
                    field: format!("{which}.{key}"),
                    value: q.0.clone(),
                })
        };
    Ok(Resources {
        cpu_request_millis: get(&r.requests, "requests", "cpu", true)?,
        cpu_limit_millis: get(&r.limits, "limits", "cpu", true)?,
        memory_limit_bytes: get(&r.limits, "limits", "memory", false)?,
        ..Default::default()
    })
}

/// Parses a Kubernetes quantity; `millis` returns thousandths (CPU), else whole units
/// rounded up (bytes).
pub fn parse_quantity(s: &str, millis: bool) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0f64.powi(2),
        "Gi" => 1024.0f64.powi(3),
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let v = value * mult * if millis { 1000.0 } else { 1.0 };
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::pod::identify;
    use crate::agent::source::parse_manifest;

    fn resolver(bin: &Path) -> Resolver {
        let root = HostRoot::new(Some(Path::new("/tmp/plinth-root")));
        Resolver {
            host_paths: HostPaths::new(root.clone(), Path::new("/var/lib/plinth")),
            root,
            bin_path: vec![PathBuf::from("/nonexistent"), bin.to_path_buf()],
            binary_cache: None,
            image_commands: [(
                "nginx".to_string(),
                vec!["/bin/echo".to_string(), "-n".to_string()],
            )]
            .into(),
            node_name: "n1".into(),
            node_ip: "192.0.2.7".parse().unwrap(),
            log_dir: "/var/log/pods".into(),
        }
    }

    fn pod(yaml: &str) -> StaticPod {
        let f = Path::new("/m/p.yaml");
        identify(parse_manifest(f, yaml.as_bytes()).unwrap(), "n1", f).unwrap()
    }

    #[test]
    fn resolves_command_env_user_resources_and_log_path() {
        let bin = tempfile::tempdir().unwrap();
        let exe = bin.path().join("mytool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = resolver(bin.path());
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: t, namespace: kube-system}\nspec:\n  hostNetwork: true\n  securityContext: {runAsUser: 1000, runAsGroup: 1000}\n  containers:\n  - name: c\n    image: x\n    command: [mytool, --ip=$(IP)]\n    args: [--x]\n    workingDir: /work\n    securityContext: {runAsUser: 2000}\n    env:\n    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    resources:\n      requests: {cpu: 250m}\n      limits: {cpu: '1', memory: 128Mi}\n");
        r.prepare_pod(&p).unwrap();
        let s = r.container_spec(&p, &p.spec().containers[0], 3).unwrap();
        assert_eq!(s.executable, exe);
        assert_eq!(s.argv, vec!["mytool", "--ip=192.0.2.7", "--x"]);
        assert!(s.env.contains(&("IP".into(), "192.0.2.7".into())));
        assert_eq!(s.env[0].0, "PATH");
        assert_eq!(s.run_as_user, Some(2000));
        assert_eq!(s.run_as_group, Some(1000));
        assert_eq!(s.working_dir, Some(PathBuf::from("/work")));
        assert_eq!(
            s.resources,
            Resources {
                cpu_request_millis: Some(250),
                cpu_limit_millis: Some(1000),
                memory_limit_bytes: Some(128 * 1024 * 1024),
                oom_score_adj: None,
            }
        );
        assert_eq!(s.pod_name, "t-n1");
        assert_eq!(s.restart_count, 3);
        assert_eq!(
            s.log_path,
            PathBuf::from(format!(
                "/tmp/plinth-root/var/log/pods/kube-system_t-n1_{}/c/3.log",
                p.uid
            ))
        );
    }

    /// The binary cache wins over the bin path for the image's version; another version of
    /// the image falls back to the bin path.
    #[test]
    fn cached_binary_of_the_image_tag_is_run() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let on_path = bin.join("kube-apiserver");
        std::fs::write(&on_path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&on_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = HostRoot::new(Some(&tmp.path().join("root")));
        let cached = root.path("/var/lib/plinth/bin/kube-apiserver/v1.24.0/kube-apiserver");
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut r = resolver(&bin);
        r.root = root;
        r.binary_cache = Some(PathBuf::from("/var/lib/plinth"));
        let yaml = |tag: &str| {
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: kube-system}}\nspec:\n  hostNetwork: true\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:{tag}\n    command: [kube-apiserver, --v=2]\n")
        };
        let p = pod(&yaml("v1.24.0"));
        let s = r.container_spec(&p, &p.spec().containers[0], 0).unwrap();
        assert_eq!(s.executable, cached);
        assert_eq!(s.argv, vec!["kube-apiserver", "--v=2"]);
        let p = pod(&yaml("v1.25.0"));
        let s = r.container_spec(&p, &p.spec().containers[0], 0).unwrap();
        assert_eq!(s.executable, on_path);
    }

    #[test]
    fn image_table_and_missing_executables() {
        let r = resolver(Path::new("/nonexistent2"));
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  hostNetwork: true\n  containers:\n  - {name: a, image: 'docker.io/library/nginx:1.25'}\n  - {name: b, image: 'nginx', args: [hello]}\n  - {name: c, image: redis}\n  - {name: d, image: x, command: [no-such-tool]}\n");
        let cs = &p.spec().containers;
        let a = r.container_spec(&p, &cs[0], 0).unwrap();
        assert_eq!(a.argv, vec!["/bin/echo", "-n"]);
        let b = r.container_spec(&p, &cs[1], 0).unwrap();
        assert_eq!(b.argv, vec!["/bin/echo", "hello"]);
        let e = r.container_spec(&p, &cs[2], 0).unwrap_err();
        assert!(matches!(e, ResolveError::NoCommand { .. }), "{e}");
        assert!(e.to_string().contains("--image-command redis="), "{e}");
        let e = r.container_spec(&p, &cs[3], 0).unwrap_err();
        assert_eq!(e.reason(), "ExecutableNotFound");
        assert!(e.to_string().contains("/nonexistent:/nonexistent2"), "{e}");
    }

    #[test]
    fn host_network_is_required() {
        let r = resolver(Path::new("/bin"));
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  containers:\n  - {name: a, image: x, command: [sleep]}\n");
        let e = r.prepare_pod(&p).unwrap_err();
        assert!(
            e.to_string().contains("spec.hostNetwork must be true"),
            "{e}"
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("250m", true), Some(250));
        assert_eq!(parse_quantity("1.5", true), Some(1500));
        assert_eq!(parse_quantity("128Mi", false), Some(134217728));
        assert_eq!(parse_quantity("1G", false), Some(1_000_000_000));
        assert_eq!(parse_quantity("1e3", false), Some(1000));
        assert_eq!(parse_quantity("12Q", false), None);
        assert_eq!(parse_quantity("", false), None);
    }
}
