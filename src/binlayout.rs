//! The binary cache's on-disk layout, shared by plinth's provisioning ([`crate::binaries`])
//! and the agent (which runs a container's cached binary): `<stateDir>/bin/<component>/
//! <version>/<name>`, and the (component, version) an image reference names. Below both: it
//! uses nothing of plinth's but [`HostRoot`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fs::HostRoot;

/// Host path of the cache dir below `state_dir` (`/var/lib/plinth/bin`).
pub fn host_dir(state_dir: &str) -> String {
    format!("{}/bin", state_dir.trim_end_matches('/'))
}

/// Host path of a version dir (`<stateDir>/bin/<component>/<version>`).
pub fn host_version_dir(state_dir: &str, component: &str, version: &str) -> String {
    format!("{}/{component}/{version}", host_dir(state_dir))
}

/// An executable regular file.
pub fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The cached executable `name` for a container's `image` (`registry.k8s.io/etcd:3.5.1-0` →
/// `<stateDir>/bin/etcd/v3.5.1/<name>`), when it is cached; `None` for a path-qualified name,
/// an image without a tag, or nothing cached.
pub fn image_executable(
    root: &HostRoot,
    state_dir: &Path,
    image: &str,
    name: &str,
) -> Option<PathBuf> {
    if name.contains('/') || name.is_empty() {
        return None;
    }
    let (component, version) = image_component_version(image)?;
    let host = host_version_dir(&state_dir.to_string_lossy(), &component, &version);
    let p = root.path(host).join(name);
    is_executable(&p).then_some(p)
}

/// `registry.k8s.io/etcd:3.5.1-0` → (`etcd`, `v3.5.1`); `None` without a tag (or a digest).
pub fn image_component_version(image: &str) -> Option<(String, String)> {
    let image = image.split('@').next()?;
    let last = image.rsplit('/').next()?;
    let (component, tag) = last.split_once(':')?;
    if component.is_empty() || tag.is_empty() {
        return None;
    }
    Some((
        component.to_string(),
        release_version_for_image(component, tag),
    ))
}

/// The etcd release version for an image tag: `3.5.1-0` → `v3.5.1` (the image revision
/// dropped), `v3.6.0-rc.1` → `v3.6.0-rc.1`.
pub fn etcd_release_version(tag: &str) -> String {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let t = match t.rsplit_once('-') {
        Some((core, rev)) if !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_digit()) => core,
        _ => t,
    };
    format!("v{t}")
}

/// The release version a component image tag stands for: etcd's tags carry an image
/// revision (`3.5.1-0` → `v3.5.1`), Kubernetes tags are the version (`v1.24.0`).
pub fn release_version_for_image(component: &str, tag: &str) -> String {
    if component == "etcd" {
        etcd_release_version(tag)
    } else if tag.starts_with('v') {
        tag.to_string()
    } else {
        format!("v{tag}")
    }
}
