//! hostPath volumes and mounts per component, as kubeadm's `phases/controlplane/volumes.go`
//! and `phases/etcd/local.go`: sorted by name, optional host CA directories only where they
//! exist, extraVolumes replacing same-named defaults.

use std::collections::BTreeMap;

use crate::config::{ClusterSpec, Etcd, HostPathMount};

use super::args::{join, last_value, user_extra_args};
pub(crate) use super::mount::{Mount, DIR_OR_CREATE, FILE_OR_CREATE};
use super::{cis, Component, RenderContext};

/// `/etc/ssl/certs`, always mounted into apiserver and controller-manager.
pub(crate) const CA_CERTS_PATH: &str = "/etc/ssl/certs";
/// Directories `/etc/ssl/certs` may link into; mounted only when they exist on the host.
pub(crate) const CA_CERTS_EXTRA_PATHS: [&str; 4] = [
    "/etc/pki",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/ca-certificates",
];
/// The controller-manager's default flexvolume plugin dir.
pub(crate) const FLEXVOLUME_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";

/// The volume name kubeadm derives from a path: `/etc/ca-certificates` → `etc-ca-certificates`.
fn volume_name_for(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "-")
}

/// The mounts of `component`, sorted by name (etcd keeps kubeadm's data-then-certs order).
pub(crate) fn mounts(spec: &ClusterSpec, component: Component, ctx: &RenderContext) -> Vec<Mount> {
    if component == Component::Etcd {
        let Etcd::Local(local) = &spec.etcd else {
            return Vec::new();
        };
        let certs = join(&spec.certificates_dir, "etcd");
        return vec![
            Mount::same("etcd-data", &local.data_dir, false, DIR_OR_CREATE),
            Mount::same("etcd-certs", &certs, false, DIR_OR_CREATE),
        ];
    }
    let mut by_name: BTreeMap<String, Mount> = BTreeMap::new();
    let mut add = |m: Mount| {
        by_name.insert(m.name.clone(), m);
    };
    let pki = spec.certificates_dir.as_str();
    match component {
        Component::KubeApiserver => {
            add(Mount::same("k8s-certs", pki, true, DIR_OR_CREATE));
            add(Mount::same("ca-certs", CA_CERTS_PATH, true, DIR_OR_CREATE));
            if let Etcd::External(ext) = &spec.etcd {
                let files = [
                    ext.ca_file.as_str(),
                    ext.cert_file.as_str(),
                    ext.key_file.as_str(),
                ];
                for (i, dir) in external_etcd_cert_dirs(&files, pki).iter().enumerate() {
                    add(Mount::same(
                        &format!("etcd-certs-{i}"),
                        dir,
                        true,
                        DIR_OR_CREATE,
                    ));
                }
            }
        }
        Component::KubeControllerManager => {
            add(Mount::same("k8s-certs", pki, true, DIR_OR_CREATE));
            add(Mount::same("ca-certs", CA_CERTS_PATH, true, DIR_OR_CREATE));
            let kubeconfig = join(&spec.plinth.kubeconfig_dir, "controller-manager.conf");
            add(Mount::same("kubeconfig", &kubeconfig, true, FILE_OR_CREATE));
            let extra = user_extra_args(spec, component);
            let flex = last_value(extra, "flex-volume-plugin-dir").unwrap_or(FLEXVOLUME_DIR);
            add(Mount::same("flexvolume-dir", flex, false, DIR_OR_CREATE));
        }
        Component::KubeScheduler => {
            let kubeconfig = join(&spec.plinth.kubeconfig_dir, "scheduler.conf");
            add(Mount::same("kubeconfig", &kubeconfig, true, FILE_OR_CREATE));
        }
        Component::Etcd => {}
    }
    if matches!(
        component,
        Component::KubeApiserver | Component::KubeControllerManager
    ) {
        for path in CA_CERTS_EXTRA_PATHS {
            if (ctx.host_dir_exists)(path) {
                add(Mount::same(
                    &volume_name_for(path),
                    path,
                    true,
                    DIR_OR_CREATE,
                ));
            }
        }
    }
    for m in cis::profile_mounts(spec, component) {
        add(m);
    }
    let extra: &[HostPathMount] = match component {
        Component::KubeApiserver => &spec.api_server.component.extra_volumes,
        Component::KubeControllerManager => &spec.controller_manager.extra_volumes,
        Component::KubeScheduler => &spec.scheduler.extra_volumes,
        Component::Etcd => &[],
    };
    for v in extra {
        add(Mount::from_extra(v));
    }
    by_name.into_values().collect()
}

/// kubeadm's `getEtcdCertVolumes`: the directories holding the external etcd files that are
/// not already mounted (certificates dir, /etc/ssl/certs, the CA dirs), parents absorbing
/// children, sorted.
fn external_etcd_cert_dirs(files: &[&str], pki: &str) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for f in files {
        let dir = match f.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => f[..i].to_string(),
            None => continue,
        };
        if f.is_empty()
            || dir.starts_with(CA_CERTS_PATH)
            || dir.starts_with(pki)
            || CA_CERTS_EXTRA_PATHS.iter().any(|p| dir.starts_with(p))
        {
            continue;
        }
        if dirs.iter().any(|d| dir.starts_with(d.as_str())) {
            continue;
        }
        dirs.retain(|d| !d.starts_with(dir.as_str()));
        dirs.push(dir);
    }
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, ExternalEtcd};

    fn names(ms: &[Mount]) -> Vec<&str> {
        ms.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn optional_ca_dirs_follow_the_probe() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        spec.plinth.security_profile = crate::config::SecurityProfile::Kubeadm;
        let none = RenderContext::isolated(&crate::fs::HostRoot::default());
        let ms = mounts(&spec, Component::KubeApiserver, &none);
        assert_eq!(names(&ms), vec!["ca-certs", "k8s-certs"]);
        let mut some = none.clone();
        some.host_dir_exists = |p| p == "/etc/pki" || p == "/usr/share/ca-certificates";
        let ms = mounts(&spec, Component::KubeControllerManager, &some);
        assert_eq!(
            names(&ms),
            vec![
                "ca-certs",
                "etc-pki",
                "flexvolume-dir",
                "k8s-certs",
                "kubeconfig",
                "usr-share-ca-certificates"
            ]
        );
    }

    #[test]
    fn extra_volumes_replace_defaults_by_name() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        spec.scheduler.extra_volumes.push(HostPathMount {
            name: "kubeconfig".into(),
            host_path: "/srv/sched.conf".into(),
            mount_path: "/etc/kubernetes/scheduler.conf".into(),
            read_only: true,
            path_type: "File".into(),
        });
        let ctx = RenderContext::isolated(&crate::fs::HostRoot::default());
        let ms = mounts(&spec, Component::KubeScheduler, &ctx);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].host_path, "/srv/sched.conf");
        assert_eq!(ms[0].path_type.as_deref(), Some("File"));
    }

    #[test]
    fn external_etcd_dirs_deduplicated() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        spec.etcd = Etcd::External(ExternalEtcd {
            endpoints: vec!["https://10.0.0.9:2379".into()],
            ca_file: "/etc/etcd/pki/ca.crt".into(),
            cert_file: "/etc/etcd/pki/client/c.crt".into(),
            key_file: "/etc/kubernetes/pki/etcd-client.key".into(),
        });
        let ctx = RenderContext::isolated(&crate::fs::HostRoot::default());
        let ms = mounts(&spec, Component::KubeApiserver, &ctx);
        let e: Vec<_> = ms
            .iter()
            .filter(|m| m.name.starts_with("etcd-certs"))
            .collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].host_path, "/etc/etcd/pki");
    }
}
