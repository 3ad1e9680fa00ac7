//! `addon`: the CoreDNS and kube-proxy objects kubeadm v1.24 creates (sub-phases
//! `addon/coredns` and `addon/kube-proxy`). They run on the workers' kubelets; nothing of
//! them runs on the plinth node.

pub mod coredns;
pub mod kubeproxy;

use crate::config::ClusterSpec;

/// `<imageRepository>/<name>:<tag>`.
pub fn image(spec: &ClusterSpec, name: &str, tag: &str) -> String {
    format!(
        "{}/{name}:{tag}",
        spec.image_repository.trim_end_matches('/')
    )
}
