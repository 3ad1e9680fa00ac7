//! CRI-format container logs (in progress).
