//! One hostPath volume and its mount, as the manifests' volume lists and the security
//! profile's extra mounts describe it.

use crate::config::HostPathMount;

/// `DirectoryOrCreate`.
pub(crate) const DIR_OR_CREATE: &str = "DirectoryOrCreate";
/// `FileOrCreate`.
pub(crate) const FILE_OR_CREATE: &str = "FileOrCreate";

/// One hostPath volume and its mount in the component's container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Mount {
    /// Volume (and mount) name.
    pub name: String,
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub mount_path: String,
    /// Read-only mount.
    pub read_only: bool,
    /// hostPath type; `None` leaves it unset.
    pub path_type: Option<String>,
}

impl Mount {
    /// A mount at the same path inside and outside.
    pub(crate) fn same(name: &str, path: &str, read_only: bool, path_type: &str) -> Mount {
        Mount {
            name: name.to_string(),
            host_path: path.to_string(),
            mount_path: path.to_string(),
            read_only,
            path_type: Some(path_type.to_string()),
        }
    }

    pub(super) fn from_extra(v: &HostPathMount) -> Mount {
        Mount {
            name: v.name.clone(),
            host_path: v.host_path.clone(),
            mount_path: v.mount_path.clone(),
            read_only: v.read_only,
            path_type: (!v.path_type.is_empty()).then(|| v.path_type.clone()),
        }
    }
}
