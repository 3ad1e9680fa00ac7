//! The binary repositories a cluster's binaries are fetched from: the defaults
//! (`binaryRepository`, `etcdBinaryRepository`) and what a repository URL may be.

use std::net::IpAddr;

/// The official Kubernetes release location (what `dl.k8s.io/release/<version>/bin/...` serves).
pub const DEFAULT_BINARY_REPOSITORY: &str = "https://dl.k8s.io/release";

/// etcd's GitHub releases (`<version>/etcd-<version>-linux-<arch>.tar.gz`, `SHA256SUMS`).
pub const DEFAULT_ETCD_BINARY_REPOSITORY: &str =
    "https://github.com/etcd-io/etcd/releases/download";

/// What a repository URL may be, for configuration errors.
pub const REPOSITORY_ALLOWED: &str = "an https:// URL, an http:// URL on loopback \
    (127.0.0.0/8, ::1, localhost), or a file:/// URL of an absolute directory";

/// Checks a repository URL (`binaryRepository`, `etcdBinaryRepository`); `Err` says what is
/// allowed.
pub fn check_repository_url(url: &str) -> Result<(), String> {
    let allowed = || REPOSITORY_ALLOWED.to_string();
    if let Some(path) = url.strip_prefix("file://") {
        return if path.starts_with('/') {
            Ok(())
        } else {
            Err(allowed())
        };
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| allowed())?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(allowed());
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        _ => Err(allowed()),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1 (brackets allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls_https_loopback_http_or_file() {
        for ok in [
            "https://dl.k8s.io/release",
            "https://mirror.example.com:8443/k8s/",
            "http://127.0.0.1:8080/release",
            "http://[::1]:9/x",
            "http://localhost/k8s",
            "file:///srv/mirror",
        ] {
            assert_eq!(check_repository_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://mirror.example.com/release",
            "http://10.0.0.1/release",
            "ftp://x/y",
            "dl.k8s.io/release",
            "file://relative/dir",
            "https://",
            "https://x/y?token=1",
        ] {
            let e = check_repository_url(bad).unwrap_err();
            assert!(
                e.contains("loopback") && e.contains("https://"),
                "{bad}: {e}"
            );
        }
    }
}
