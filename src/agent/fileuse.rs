//! Which changed mounted files are a reason to restart a pod.
//!
//! The agent restarts a pod's containers when a configuration file it mounts changes (a
//! renewed certificate, a rewritten kubeconfig). Two refinements keep that from costing
//! availability for nothing:
//!
//! - **Used files only.** When a container's command line names files under its mounts
//!   (`--tls-cert-file=/etc/kubernetes/pki/apiserver.crt`, `--kubeconfig /etc/…/scheduler.conf`,
//!   comma-separated lists too), only those files — and, for a named directory, the files
//!   under it — count for that container. A container that names no mounted path at all (a
//!   shell script reading its files) counts every mounted file, as before.
//! - **Files the component reloads itself.** The annotation [`ANN_RELOADS_FLAGS`] lists flags
//!   (without `--`) whose files the component watches and reloads without a restart, e.g.
//!   kube-apiserver's `tls-cert-file` (its serving certificate). A change to such a file
//!   alone restarts nothing. plinth renders the annotation for the control-plane components;
//!   a manifest without it loses nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// Annotation: comma-separated flag names whose files the component reloads by itself.
pub const ANN_RELOADS_FLAGS: &str = "plinth.io/reloads-flags";

/// How one pod uses its mounted files (host paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileUse {
    /// Host paths (files or directories) the containers' command lines name; `None` when a
    /// container names none, so every mounted file counts.
    used: Option<BTreeSet<PathBuf>>,
    /// Host paths of files the component reloads by itself.
    reloaded: BTreeSet<PathBuf>,
}

/// What a set of changed files means for the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Changed files the containers use and do not reload: the pod must restart.
    pub restart: Vec<PathBuf>,
    /// Changed files the component reloads by itself.
    pub reloaded: Vec<PathBuf>,
    /// Changed files under a mount that no container's command line uses.
    pub unused: Vec<PathBuf>,
}

impl FileUse {
    /// Reads the containers' command lines, mounts and the reload annotation of `spec`.
    pub fn of(
        spec: &PodSpec,
        annotations: Option<&std::collections::BTreeMap<String, String>>,
    ) -> FileUse {
        let reload_flags: BTreeSet<String> = annotations
            .and_then(|a| a.get(ANN_RELOADS_FLAGS))
            .map(|v| {
                v.split(',')
                    .map(|f| f.trim().trim_start_matches('-').to_string())
                    .filter(|f| !f.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut used = Some(BTreeSet::new());
        let mut reloaded = BTreeSet::new();
        for c in &spec.containers {
            let (paths, reload) = container_paths(spec, c, &reload_flags);
            reloaded.extend(reload);
            match (&mut used, paths.is_empty()) {
                (_, true) => used = None,
                (Some(u), false) => u.extend(paths),
                (None, false) => {}
            }
        }
        FileUse { used, reloaded }
    }

    /// Sorts `changed` (host paths) into restart / reloaded / unused.
    pub fn judge(&self, changed: &[PathBuf]) -> Verdict {
        let mut v = Verdict::default();
        for p in changed {
            if self.reloaded.contains(p) {
                v.reloaded.push(p.clone());
            } else if self
                .used
                .as_ref()
                .is_none_or(|u| u.iter().any(|prefix| p.starts_with(prefix)))
            {
                v.restart.push(p.clone());
            } else {
                v.unused.push(p.clone());
            }
        }
        v
    }
}

/// The host paths `c`'s command line names under its mounts, and those of them given to a
/// flag in `reload_flags`.
fn container_paths(
    spec: &PodSpec,
    c: &Container,
    reload_flags: &BTreeSet<String>,
) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
    let argv: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    let mut used = BTreeSet::new();
    let mut reloaded = BTreeSet::new();
    // Files also named by a flag the component does not reload: a change restarts.
    let mut not_reloaded = BTreeSet::new();
    let mut pending_flag: Option<&str> = None;
    for (i, arg) in argv.iter().enumerate() {
        let (flag, value) = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(rest) if i > 0 => match rest.split_once('=') {
                Some((f, v)) => (Some(f), v),
                None => {
                    pending_flag = Some(rest);
                    continue;
                }
            },
            _ => (pending_flag.take(), arg.as_str()),
        };
        pending_flag = None;
        for part in value.split(',') {
            let Some(host) = host_path_of(spec, c, part.trim()) else {
                continue;
            };
            if flag.is_some_and(|f| reload_flags.contains(f)) {
                reloaded.insert(host.clone());
            } else {
                not_reloaded.insert(host.clone());
            }
            used.insert(host);
        }
    }
    reloaded.retain(|p| !not_reloaded.contains(p));
    (used, reloaded)
}

/// The host path a container path maps to through the container's hostPath mounts (the
/// longest mountPath that contains it), or `None` when it is not under one.
fn host_path_of(spec: &PodSpec, c: &Container, path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') {
        return None;
    }
    let path = Path::new(path);
    let mut best: Option<(usize, PathBuf)> = None;
    for m in c.volume_mounts.iter().flatten() {
        let mount = Path::new(&m.mount_path);
        let Ok(rest) = path.strip_prefix(mount) else {
            continue;
        };
        let Some(host) = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == m.name)
            .and_then(|v| v.host_path.as_ref())
        else {
            continue;
        };
        let depth = mount.components().count();
        if best.as_ref().is_none_or(|(d, _)| depth > *d) {
            let host = Path::new(&host.path);
            let full = if rest.as_os_str().is_empty() {
                host.to_path_buf()
            } else {
                host.join(rest)
            };
            best = Some((depth, full));
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(yaml: &str) -> (PodSpec, BTreeMap<String, String>) {
        let pod: k8s_openapi::api::core::v1::Pod =
            serde_saphyr::from_str(yaml).expect("test pod parses");
        (
            pod.spec.unwrap(),
            pod.metadata.annotations.unwrap_or_default(),
        )
    }

    const APISERVER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  annotations:
    plinth.io/reloads-flags: "tls-cert-file,tls-private-key-file,client-ca-file"
spec:
  containers:
  - name: kube-apiserver
    image: x
    command:
    - kube-apiserver
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-servers=https://127.0.0.1:2379
    - --service-account-key-file
    - /etc/kubernetes/pki/sa.pub
    volumeMounts:
    - {name: k8s-certs, mountPath: /etc/kubernetes/pki, readOnly: true}
    - {name: ca-certs, mountPath: /etc/ssl/certs, readOnly: true}
  volumes:
  - name: k8s-certs
    hostPath: {path: /srv/pki}
  - name: ca-certs
    hostPath: {path: /etc/ssl/certs}
"#;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    /// Issue 10 item 1: renewing the apiserver's serving certificate restarts nothing (the
    /// apiserver reloads it), a renewed etcd client certificate restarts it, and a file under
    /// the mounted pki dir that no flag names (another component's) is not a reason.
    #[test]
    fn renewed_serving_cert_is_reloaded_not_a_restart() {
        let (s, ann) = spec(APISERVER);
        let u = FileUse::of(&s, Some(&ann));
        let v = u.judge(&[p("/srv/pki/apiserver.crt"), p("/srv/pki/apiserver.key")]);
        assert!(v.restart.is_empty(), "{v:?}");
        assert_eq!(v.reloaded.len(), 2);
        let v = u.judge(&[
            p("/srv/pki/apiserver-etcd-client.crt"),
            p("/srv/pki/front-proxy-client.crt"),
            p("/srv/pki/sa.pub"),
        ]);
        assert_eq!(
            v.restart,
            vec![
                p("/srv/pki/apiserver-etcd-client.crt"),
                p("/srv/pki/sa.pub")
            ],
            "{v:?}"
        );
        assert_eq!(v.unused, vec![p("/srv/pki/front-proxy-client.crt")]);
    }

    /// A file one flag reloads but another flag reads only at start (kube-controller-manager's
    /// ca.crt: cluster-signing-cert-file reloads, root-ca-file does not) restarts.
    #[test]
    fn a_file_also_read_by_a_static_flag_restarts() {
        let yaml = APISERVER.replace(
            "- --etcd-servers=https://127.0.0.1:2379",
            "- --root-ca-file=/etc/kubernetes/pki/ca.crt",
        );
        let (s, ann) = spec(&yaml);
        let v = FileUse::of(&s, Some(&ann)).judge(&[p("/srv/pki/ca.crt")]);
        assert_eq!(v.restart, vec![p("/srv/pki/ca.crt")], "{v:?}");
    }

    /// Without the annotation every used file restarts; a directory flag covers its files.
    #[test]
    fn without_annotation_used_files_restart_and_dirs_cover_their_files() {
        let yaml = APISERVER
            .replace("plinth.io/reloads-flags", "other")
            .replace(
                "- --etcd-servers=https://127.0.0.1:2379",
                "- --cert-dir=/etc/ssl/certs",
            );
        let (s, ann) = spec(&yaml);
        let u = FileUse::of(&s, Some(&ann));
        let v = u.judge(&[p("/srv/pki/apiserver.crt"), p("/etc/ssl/certs/x/y.pem")]);
        assert_eq!(v.restart.len(), 2, "{v:?}");
    }

    /// A container that names no mounted path (a shell script) counts every mounted file.
    #[test]
    fn a_script_container_counts_every_mounted_file() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: conf}
spec:
  containers:
  - name: main
    image: x
    command: [sh, -c, 'cat /etc/app/app.conf; exec sleep 1000']
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
  volumes:
  - name: conf
    hostPath: {path: /etc/app}
"#;
        let (s, ann) = spec(yaml);
        let v = FileUse::of(&s, Some(&ann)).judge(&[p("/etc/app/app.conf")]);
        assert_eq!(v.restart, vec![p("/etc/app/app.conf")]);
    }
}
