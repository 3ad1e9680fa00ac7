//! Where the binaries come from: the Kubernetes release layout
//! (`<repo>/<version>/bin/linux/<arch>/<name>` + `<name>.sha256`) and etcd's release layout
//! (`<etcdRepo>/<version>/etcd-<version>-linux-<arch>.tar.gz` + `<version>/SHA256SUMS`), the
//! host architecture in those names, and the versions each component is fetched at.

use crate::config::{ClusterSpec, Etcd};

// The repository settings (defaults, what a URL may be) belong to the configuration.
pub use crate::config::repository::{
    check_repository_url, is_loopback_host, DEFAULT_BINARY_REPOSITORY,
    DEFAULT_ETCD_BINARY_REPOSITORY, REPOSITORY_ALLOWED,
};

/// The release architecture name of this host (`amd64`, `arm64`, ...); `None` when the
/// Kubernetes releases have no binaries for it.
pub fn host_arch() -> Option<&'static str> {
    arch_for(std::env::consts::ARCH)
}

/// Rust's `target_arch` → the Kubernetes/etcd release name.
pub fn arch_for(rust_arch: &str) -> Option<&'static str> {
    match rust_arch {
        "x86_64" => Some("amd64"),
        "aarch64" => Some("arm64"),
        "arm" => Some("arm"),
        "powerpc64" if cfg!(target_endian = "little") => Some("ppc64le"),
        "s390x" => Some("s390x"),
        _ => None,
    }
}

/// `<repo>/<version>/bin/linux/<arch>/<name>`.
pub fn kubernetes_url(repo: &str, version: &str, arch: &str, name: &str) -> String {
    format!(
        "{}/{version}/bin/linux/{arch}/{name}",
        repo.trim_end_matches('/')
    )
}

/// `<repo>/<version>/etcd-<version>-linux-<arch>.tar.gz`.
pub fn etcd_tarball_url(repo: &str, version: &str, arch: &str) -> String {
    format!(
        "{}/{version}/{}",
        repo.trim_end_matches('/'),
        etcd_tarball_name(version, arch)
    )
}

/// `etcd-<version>-linux-<arch>.tar.gz`.
pub fn etcd_tarball_name(version: &str, arch: &str) -> String {
    format!("etcd-{version}-linux-{arch}.tar.gz")
}

/// `<repo>/<version>/SHA256SUMS`.
pub fn etcd_sums_url(repo: &str, version: &str) -> String {
    format!("{}/{version}/SHA256SUMS", repo.trim_end_matches('/'))
}

pub use crate::binlayout::{etcd_release_version, release_version_for_image};

/// The etcd release `spec` runs: `etcd.local.imageTag` when set, else the version kubeadm's
/// `SupportedEtcdVersion` pairs with the Kubernetes minor (1.24 → v3.5.3); `None` with
/// external etcd.
pub fn etcd_version(spec: &ClusterSpec) -> Option<String> {
    match &spec.etcd {
        Etcd::Local(_) => Some(etcd_release_version(&crate::manifests::etcd_version(spec))),
        Etcd::External(_) => None,
    }
}

/// True when a version a binary reports (`1.24.0-alpha.1+e5f3f02`, `v3.5.1`) is `wanted`
/// (`v1.24.0-alpha.1`): the leading `v` and build metadata are ignored.
pub fn version_matches(reported: &str, wanted: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_start_matches('v');
        s.split('+').next().unwrap_or_default().to_string()
    };
    !reported.trim().is_empty() && norm(reported) == norm(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_release_layouts() {
        assert_eq!(
            kubernetes_url(
                "https://dl.k8s.io/release/",
                "v1.24.0",
                "amd64",
                "kube-apiserver"
            ),
            "https://dl.k8s.io/release/v1.24.0/bin/linux/amd64/kube-apiserver"
        );
        assert_eq!(
            etcd_tarball_url(DEFAULT_ETCD_BINARY_REPOSITORY, "v3.5.3", "arm64"),
            "https://github.com/etcd-io/etcd/releases/download/v3.5.3/etcd-v3.5.3-linux-arm64.tar.gz"
        );
        assert_eq!(
            etcd_sums_url("file:///srv/etcd", "v3.5.3"),
            "file:///srv/etcd/v3.5.3/SHA256SUMS"
        );
    }

    #[test]
    fn etcd_versions_from_image_tags_and_kubeadm_pairing() {
        assert_eq!(etcd_release_version("3.5.1-0"), "v3.5.1");
        assert_eq!(etcd_release_version("v3.5.21"), "v3.5.21");
        assert_eq!(etcd_release_version("3.6.0-rc.1"), "v3.6.0-rc.1");
        assert_eq!(release_version_for_image("etcd", "3.4.23-0"), "v3.4.23");
        assert_eq!(
            release_version_for_image("kube-apiserver", "v1.24.0-alpha.1"),
            "v1.24.0-alpha.1"
        );
        let mut spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        spec.kubernetes_version = crate::config::validate::parse_kube_version("v1.24.0").unwrap();
        assert_eq!(etcd_version(&spec).as_deref(), Some("v3.5.3"));
    }

    #[test]
    fn reported_versions_match_ignoring_v_and_build_metadata() {
        assert!(version_matches("1.24.0-alpha.1+e5f3f02", "v1.24.0-alpha.1"));
        assert!(version_matches("3.5.1", "v3.5.1"));
        assert!(!version_matches("3.5.1", "v3.5.10"));
        assert!(!version_matches("", "v1.0.0"));
    }

    #[test]
    fn host_arch_names() {
        assert_eq!(arch_for("x86_64"), Some("amd64"));
        assert_eq!(arch_for("aarch64"), Some("arm64"));
        assert_eq!(arch_for("riscv64"), None);
    }
}
