//! Which etcd version a spec runs, and the version-dependent choices that follow from it.
//!
//! The image tag comes from `etcd.local.imageTag` when set, else from kubeadm's
//! `SupportedEtcdVersion` table (cmd/kubeadm/app/constants) for the Kubernetes minor, as of
//! the first release of each minor. Like kubeadm, a minor outside the table gets the nearest
//! entry.

use crate::config::{ClusterSpec, Etcd};

/// kubeadm's `SupportedEtcdVersion` (Kubernetes minor → etcd image tag), sorted by minor.
const SUPPORTED_ETCD_VERSION: &[(u32, &str)] = &[
    (22, "3.5.0-0"),
    (23, "3.5.1-0"),
    (24, "3.5.3-0"),
    (25, "3.5.4-0"),
    (26, "3.5.6-0"),
    (27, "3.5.7-0"),
    (28, "3.5.9-0"),
    (29, "3.5.10-0"),
    (30, "3.5.12-0"),
    (31, "3.5.15-0"),
    (32, "3.5.16-0"),
    (33, "3.5.21-0"),
    (34, "3.6.4-0"),
];

/// The etcd image tag for `spec`: `etcd.local.imageTag` if set, else kubeadm's table entry
/// for the Kubernetes minor (e.g. 1.33 → `3.5.21-0`).
pub fn etcd_version(spec: &ClusterSpec) -> String {
    if let Etcd::Local(local) = &spec.etcd {
        if !local.image_tag.is_empty() {
            return local.image_tag.clone();
        }
    }
    default_etcd_tag(spec.kubernetes_version.minor).to_string()
}

/// kubeadm's etcd tag for Kubernetes `1.<minor>` (nearest entry outside the table).
pub fn default_etcd_tag(minor: u32) -> &'static str {
    let mut best = SUPPORTED_ETCD_VERSION[0].1;
    for (m, tag) in SUPPORTED_ETCD_VERSION {
        if *m <= minor {
            best = tag;
        }
    }
    best
}

/// A parsed etcd version (`3.5.21-0` → 3.5.21; the image revision suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EtcdSemver {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl EtcdSemver {
    /// Parses `3.5.21-0`, `v3.5.21`, `3.6.0-rc.1`; `None` when not a version.
    pub fn parse(tag: &str) -> Option<EtcdSemver> {
        let t = tag.strip_prefix('v').unwrap_or(tag);
        let core = t.split(['-', '+']).next()?;
        let mut it = core.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = it.next()?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(EtcdSemver {
            major,
            minor,
            patch,
        })
    }

    const fn new(major: u32, minor: u32, patch: u32) -> Self {
        EtcdSemver {
            major,
            minor,
            patch,
        }
    }
}

/// etcd 3.5.11 added `/livez` and `/readyz`.
pub(crate) const LIVEZ_READYZ: EtcdSemver = EtcdSemver::new(3, 5, 11);
/// etcd 3.6.0 graduated `--experimental-*` flags (feature gate / plain names).
pub(crate) const V3_6: EtcdSemver = EtcdSemver::new(3, 6, 0);

/// The version plinth acts on: the tag's version, or (for a tag that is not a version such
/// as `latest`) the table's version for the Kubernetes minor.
pub(crate) fn effective_version(spec: &ClusterSpec) -> EtcdSemver {
    let tag = etcd_version(spec);
    EtcdSemver::parse(&tag).unwrap_or_else(|| {
        tracing::warn!(
            tag = %tag,
            "etcd image tag is not a version; choosing flags and probes as for kubeadm's default"
        );
        EtcdSemver::parse(default_etcd_tag(spec.kubernetes_version.minor)).unwrap_or(LIVEZ_READYZ)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, KubeVersion};

    fn spec(minor: u32) -> ClusterSpec {
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.kubernetes_version = KubeVersion {
            major: 1,
            minor,
            patch: 0,
            pre: String::new(),
        };
        s
    }

    #[test]
    fn table_and_override() {
        assert_eq!(etcd_version(&spec(33)), "3.5.21-0");
        assert_eq!(etcd_version(&spec(34)), "3.6.4-0");
        assert_eq!(etcd_version(&spec(99)), "3.6.4-0");
        assert_eq!(etcd_version(&spec(10)), "3.5.0-0");
        let mut s = spec(24);
        if let Etcd::Local(l) = &mut s.etcd {
            l.image_tag = "3.5.1-0".into();
        }
        assert_eq!(etcd_version(&s), "3.5.1-0");
    }

    #[test]
    fn parses_and_orders_versions() {
        let v = EtcdSemver::parse("3.5.21-0").unwrap();
        assert_eq!(v, EtcdSemver::new(3, 5, 21));
        assert!(v >= LIVEZ_READYZ && v < V3_6);
        assert!(EtcdSemver::parse("3.5.10-0").unwrap() < LIVEZ_READYZ);
        assert!(EtcdSemver::parse("v3.6.0").unwrap() >= V3_6);
        assert_eq!(EtcdSemver::parse("latest"), None);
        assert_eq!(EtcdSemver::parse("3.5"), None);
    }

    #[test]
    fn unparsable_tag_falls_back_to_table() {
        let mut s = spec(34);
        if let Etcd::Local(l) = &mut s.etcd {
            l.image_tag = "latest".into();
        }
        assert_eq!(effective_version(&s), EtcdSemver::new(3, 6, 4));
    }
}
