//! Finding a container's log file for `plinth logs`: the pod directory
//! `<log dir>/<ns>_<pod>_<uid>` (by full pod name or by the manifest's name), the container
//! directory, and the current (highest `<n>.log`) or previous instance.

use std::path::{Path, PathBuf};

/// Why no log file was found.
#[derive(Debug, thiserror::Error)]
pub enum PodLogError {
    /// The log dir cannot be read.
    #[error("log dir {path}: {source}", path = path.display())]
    Read {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No pod of that name has logs.
    #[error("no logs for pod {pod:?} in {dir}{known}", dir = dir.display())]
    NoPod {
        /// The name asked for.
        pod: String,
        /// The log dir.
        dir: PathBuf,
        /// Pods that do have logs (", known pods: a, b").
        known: String,
    },
    /// A short name matches several pods.
    #[error("pod name {pod:?} is ambiguous: {matches}")]
    Ambiguous {
        /// The name asked for.
        pod: String,
        /// Matching full names.
        matches: String,
    },
    /// The container must be named.
    #[error("pod {pod} has several containers ({containers}): choose one with -c")]
    ChooseContainer {
        /// Pod.
        pod: String,
        /// Containers.
        containers: String,
    },
    /// No such container / instance.
    #[error("pod {pod}: {what}")]
    NoLog {
        /// Pod.
        pod: String,
        /// What is missing.
        what: String,
    },
}

struct PodDir {
    name: String,
    path: PathBuf,
    newest: std::time::SystemTime,
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for c in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(c.path()).into_iter().flatten().flatten() {
            if let Ok(m) = f.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
    }
    newest
}

/// Finds the log file of `container` (or the pod's only container) of `pod` under
/// `log_dir` (a local path, already root-prefixed); `previous` selects the instance before
/// the current one.
pub fn find_container_log(
    log_dir: &Path,
    pod: &str,
    container: Option<&str>,
    previous: bool,
) -> Result<PathBuf, PodLogError> {
    let rd = std::fs::read_dir(log_dir).map_err(|e| PodLogError::Read {
        path: log_dir.to_path_buf(),
        source: e,
    })?;
    let mut dirs: Vec<PodDir> = Vec::new();
    for e in rd.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = file_name.splitn(3, '_').collect();
        if parts.len() != 3 || !e.path().is_dir() {
            continue;
        }
        dirs.push(PodDir {
            name: parts[1].to_string(),
            newest: newest_mtime(&e.path()),
            path: e.path(),
        });
    }
    let exact: Vec<&PodDir> = dirs.iter().filter(|d| d.name == pod).collect();
    let candidates: Vec<&PodDir> = if !exact.is_empty() {
        exact
    } else {
        let prefix = format!("{pod}-");
        dirs.iter()
            .filter(|d| d.name.starts_with(&prefix))
            .collect()
    };
    let mut names: Vec<&str> = candidates.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        let mut known: Vec<&str> = dirs.iter().map(|d| d.name.as_str()).collect();
        known.sort();
        known.dedup();
        return Err(PodLogError::NoPod {
            pod: pod.to_string(),
            dir: log_dir.to_path_buf(),
            known: if known.is_empty() {
                String::new()
            } else {
                format!("; pods with logs: {}", known.join(", "))
            },
        });
    }
    if names.len() > 1 {
        return Err(PodLogError::Ambiguous {
            pod: pod.to_string(),
            matches: names.join(", "),
        });
    }
    let full = names[0].to_string();
    // Several UIDs (versions) of the same pod: the most recently written one.
    let dir = candidates
        .iter()
        .max_by_key(|d| d.newest)
        .map(|d| d.path.clone())
        .unwrap_or_default();
    let mut containers: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    containers.sort();
    let cname = match container {
        Some(c) => {
            if !containers.iter().any(|x| x == c) {
                return Err(PodLogError::NoLog {
                    pod: full,
                    what: format!(
                        "no container {c:?} (containers with logs: {})",
                        containers.join(", ")
                    ),
                });
            }
            c.to_string()
        }
        None if containers.len() == 1 => containers[0].clone(),
        None if containers.is_empty() => {
            return Err(PodLogError::NoLog {
                pod: full,
                what: "no container has written logs yet".into(),
            })
        }
        None => {
            return Err(PodLogError::ChooseContainer {
                pod: full,
                containers: containers.join(", "),
            })
        }
    };
    let cdir = dir.join(&cname);
    let current = std::fs::read_dir(&cdir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".log")?.parse::<u32>().ok()
        })
        .max()
        .map(|n| cdir.join(format!("{n}.log")))
        .ok_or_else(|| PodLogError::NoLog {
            pod: full.clone(),
            what: format!("container {cname} has no log file yet"),
        })?;
    if !previous {
        return Ok(current);
    }
    crate::logs::previous_log_path(&current).ok_or_else(|| PodLogError::NoLog {
        pod: full,
        what: format!("container {cname} has no previous instance"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_current_previous_by_full_or_short_name() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, "x").unwrap();
        };
        mk("kube-system_etcd-n1_u1/etcd/0.log");
        mk("kube-system_etcd-n1_u1/etcd/2.log");
        mk("kube-system_web-n1_u2/a/0.log");
        mk("kube-system_web-n1_u2/b/0.log");
        let p = find_container_log(d.path(), "etcd", None, false).unwrap();
        assert!(p.ends_with("kube-system_etcd-n1_u1/etcd/2.log"), "{p:?}");
        let p = find_container_log(d.path(), "etcd-n1", None, true).unwrap();
        assert!(p.ends_with("etcd/0.log"), "{p:?}");
        let e = find_container_log(d.path(), "web", None, false).unwrap_err();
        assert!(e.to_string().contains("a, b"), "{e}");
        assert!(find_container_log(d.path(), "web", Some("b"), false).is_ok());
        let e = find_container_log(d.path(), "nope", None, false).unwrap_err();
        assert!(e.to_string().contains("etcd-n1, web-n1"), "{e}");
        let e = find_container_log(d.path(), "web", Some("a"), true).unwrap_err();
        assert!(e.to_string().contains("no previous instance"), "{e}");
    }
}
