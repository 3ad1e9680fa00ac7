//! The strict test doubles for kube-apiserver, kube-controller-manager and kube-scheduler
//! (Python scripts beside this file; TEST DOUBLES — NEVER SHIPPED, see DEVELOPERS.md), and the
//! choice between them and real binaries (`PLINTH_E2E_BIN_DIR`).

use std::io;
use std::path::{Path, PathBuf};

use super::etcd::etcd_binary;

/// The three control-plane components the doubles stand in for.
pub const COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The directory holding the double scripts (named exactly like the real binaries).
pub fn doubles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/doubles")
}

/// `PLINTH_E2E_BIN_DIR` when set (and non-empty): real binaries are used instead of doubles.
pub fn real_bin_dir() -> Option<PathBuf> {
    std::env::var_os("PLINTH_E2E_BIN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// True when the e2e suite runs against the doubles (PLINTH_E2E_BIN_DIR unset).
pub fn using_doubles() -> bool {
    real_bin_dir().is_none()
}

/// Where `component` comes from: `$PLINTH_E2E_BIN_DIR/<component>` or the double.
pub fn component_path(component: &str) -> PathBuf {
    match real_bin_dir() {
        Some(d) => d.join(component),
        None => doubles_dir().join(component),
    }
}

/// Fills `dest` with symlinks named kube-apiserver, kube-controller-manager, kube-scheduler
/// (real or doubles, see [`component_path`]) and etcd (see [`etcd_binary`]), for use as the
/// agent's bin path. Returns `dest`. Remove one link to simulate a missing binary.
pub fn make_bin_dir(dest: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dest)?;
    for c in COMPONENTS {
        let target = component_path(c);
        if !target.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{c}: {} does not exist", target.display()),
            ));
        }
        link(&target, &dest.join(c))?;
    }
    let etcd = etcd_binary().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no etcd binary: run scripts/install-deps.sh or set PLINTH_ETCD_BIN",
        )
    })?;
    link(&etcd, &dest.join("etcd"))?;
    Ok(dest.to_path_buf())
}

fn link(target: &Path, at: &Path) -> io::Result<()> {
    match std::fs::remove_file(at) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(target, at)
}
