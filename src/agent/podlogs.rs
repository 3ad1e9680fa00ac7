//! Finding a container's log file for `plinth logs`: the pod directory
//! `<log dir>/<ns>_<pod>_<uid>` (by full pod name or by the manifest's name), the container
//! directory, and the instance to show.
//!
//! Each container instance has its own file, `<restartCount>.log`, never reused (the agent
//! numbers a new instance after the files already there), and each pod version (UID) its own
//! directory. So:
//! - the **current** instance is the one the agent reports (its pod UID and restart count,
//!   [`LiveContainer`], from the status API), else the highest `<n>.log` of the most
//!   recently written pod version;
//! - the **previous** instance is the highest `<k>.log` below the current one in the same
//!   pod version; for the first instance of a pod version, the last instance of the pod
//!   version written before it;
//! - following moves on to the next instance ([`next_instance`]) when one appears.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why no log file was found.
#[derive(Debug, thiserror::Error)]
pub enum PodLogError {
    /// The log dir cannot be read.
    #[error("log dir {path}", path = path.display())]
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

/// A container instance as the agent reports it (status API `/pods`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveContainer {
    /// Namespace.
    pub namespace: String,
    /// Full pod name.
    pub pod: String,
    /// Pod UID (names the pod version's log directory).
    pub uid: String,
    /// Container name.
    pub container: String,
    /// Restart count of the instance (names its log file).
    pub restart_count: u32,
}

/// The containers of a `/pods` list with their current instance.
pub fn live_containers(list: &super::status::PodList) -> Vec<LiveContainer> {
    let mut out = Vec::new();
    for p in &list.items {
        let (Some(name), Some(uid)) = (p.metadata.name.clone(), p.metadata.uid.clone()) else {
            continue;
        };
        let namespace = p
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let statuses = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for cs in statuses.into_iter().flatten() {
            out.push(LiveContainer {
                namespace: namespace.clone(),
                pod: name.clone(),
                uid: uid.clone(),
                container: cs.name.clone(),
                restart_count: u32::try_from(cs.restart_count).unwrap_or(0),
            });
        }
    }
    out
}

struct PodDir {
    name: String,
    uid: String,
    path: PathBuf,
    newest: std::time::SystemTime,
}

/// The instance numbers (`<n>.log`) in a container directory, ascending.
fn instances(container_dir: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(container_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let n = n.strip_suffix(".log")?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse::<u32>().ok()
        })
        .collect();
    v.sort_unstable();
    v
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
/// `log_dir` (a local path, already root-prefixed): the current instance (the one in `live`,
/// when the agent reports it and its file exists, else the newest), or with `previous` the
/// one before it (see the module docs).
pub fn find_container_log(
    log_dir: &Path,
    pod: &str,
    container: Option<&str>,
    previous: bool,
    live: &[LiveContainer],
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
            uid: parts[2].to_string(),
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
    let live: Vec<&LiveContainer> = live.iter().filter(|l| l.pod == full).collect();
    // Several UIDs (versions) of the same pod: the one the agent runs, else the most
    // recently written one.
    let chosen = candidates
        .iter()
        .find(|d| live.iter().any(|l| l.uid == d.uid))
        .or_else(|| candidates.iter().max_by_key(|d| d.newest))
        .copied();
    let dir = chosen.map(|d| d.path.clone()).unwrap_or_default();
    let uid = chosen.map(|d| d.uid.clone()).unwrap_or_default();
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
    let numbers = instances(&cdir);
    let reported = live
        .iter()
        .find(|l| l.uid == uid && l.container == cname)
        .map(|l| l.restart_count)
        .filter(|n| numbers.contains(n));
    let Some(current) = reported.or_else(|| numbers.last().copied()) else {
        return Err(PodLogError::NoLog {
            pod: full,
            what: format!("container {cname} has no log file yet"),
        });
    };
    if !previous {
        return Ok(cdir.join(format!("{current}.log")));
    }
    if let Some(k) = numbers.iter().rev().find(|k| **k < current) {
        return Ok(cdir.join(format!("{k}.log")));
    }
    // The first instance of this pod version: the last one of the version written before.
    candidates
        .iter()
        .filter(|d| d.uid != uid)
        .filter_map(|d| {
            let c = d.path.join(&cname);
            let last = *instances(&c).last()?;
            let f = c.join(format!("{last}.log"));
            let t = f.metadata().and_then(|m| m.modified()).ok()?;
            Some((t, f))
        })
        .max()
        .map(|(_, f)| f)
        .ok_or_else(|| PodLogError::NoLog {
            pod: full,
            what: format!("container {cname} has no previous instance"),
        })
}

/// Every instance log file (`<n>.log`) of the container whose log is `current`
/// (`<log dir>/<ns>_<pod>_<uid>/<container>/<n>.log`), in all versions of its pod.
pub fn instance_files(current: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let (Some(cdir), Some(cname)) = (current.parent(), current.parent().and_then(Path::file_name))
    else {
        return out;
    };
    let Some(pdir) = cdir.parent() else {
        return out;
    };
    let (Some(log_dir), Some(pname)) = (pdir.parent(), pdir.file_name().and_then(|n| n.to_str()))
    else {
        return out;
    };
    // `<ns>_<pod>_`: namespaces and pod names hold no `_`.
    let Some(prefix) = pname.rfind('_').map(|i| &pname[..=i]) else {
        return out;
    };
    for e in std::fs::read_dir(log_dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(uid) = n.strip_prefix(prefix) else {
            continue;
        };
        if uid.contains('_') {
            continue;
        }
        let c = e.path().join(cname);
        out.extend(
            instances(&c)
                .into_iter()
                .map(|k| c.join(format!("{k}.log"))),
        );
    }
    out
}

/// The instance that follows `current` (for `plinth logs -f`): a log file of the same
/// container not in `seen` (the files that existed when following began, plus those already
/// followed) — the next `<k>.log` of the same pod version (restart), else the oldest new file
/// of another version (the pod's manifest changed, or was rolled back). A new instance only
/// starts once the previous one ended, so `current` is complete when one is returned. The
/// returned file is added to `seen`.
pub fn next_instance(current: &Path, seen: &mut BTreeSet<PathBuf>) -> Option<PathBuf> {
    let n = current
        .file_name()?
        .to_str()?
        .strip_suffix(".log")?
        .parse::<u32>()
        .ok()?;
    let cdir = current.parent()?;
    let fresh: Vec<PathBuf> = instance_files(current)
        .into_iter()
        .filter(|f| !seen.contains(f))
        .collect();
    let number =
        |f: &Path| -> Option<u32> { f.file_name()?.to_str()?.strip_suffix(".log")?.parse().ok() };
    let same = fresh
        .iter()
        .filter(|f| f.parent() == Some(cdir))
        .filter_map(|f| Some((number(f)?, f)))
        .filter(|(k, _)| *k > n)
        .min()
        .map(|(_, f)| f.clone());
    let next = same.or_else(|| {
        fresh
            .iter()
            .filter(|f| f.parent() != Some(cdir))
            .filter_map(|f| {
                let t = f.metadata().and_then(|m| m.modified()).ok()?;
                Some((t, number(f)?, f))
            })
            .min()
            .map(|(_, _, f)| f.clone())
    })?;
    seen.insert(next.clone());
    Some(next)
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
        let p = find_container_log(d.path(), "etcd", None, false, &[]).unwrap();
        assert!(p.ends_with("kube-system_etcd-n1_u1/etcd/2.log"), "{p:?}");
        let p = find_container_log(d.path(), "etcd-n1", None, true, &[]).unwrap();
        assert!(p.ends_with("etcd/0.log"), "{p:?}");
        let e = find_container_log(d.path(), "web", None, false, &[]).unwrap_err();
        assert!(e.to_string().contains("a, b"), "{e}");
        assert!(find_container_log(d.path(), "web", Some("b"), false, &[]).is_ok());
        let e = find_container_log(d.path(), "nope", None, false, &[]).unwrap_err();
        assert!(e.to_string().contains("etcd-n1, web-n1"), "{e}");
        let e = find_container_log(d.path(), "web", Some("a"), true, &[]).unwrap_err();
        assert!(e.to_string().contains("no previous instance"), "{e}");
    }

    /// Writes `<dir>/<rel>` with `text` and modification time `age_s` seconds ago.
    fn put(dir: &Path, rel: &str, text: &str, age_s: u64) -> PathBuf {
        let f = dir.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, text).unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
        f
    }

    fn live(uid: &str, restart_count: u32) -> Vec<LiveContainer> {
        vec![LiveContainer {
            namespace: "kube-system".into(),
            pod: "kube-scheduler-n1".into(),
            uid: uid.into(),
            container: "kube-scheduler".into(),
            restart_count,
        }]
    }

    /// After a rollback: version A ran (0.log), the broken version B crashed (0.log, 1.log,
    /// written last), A was restored as a new instance (1.log, quiet so far).
    fn rollback_layout(d: &Path) {
        put(
            d,
            "kube-system_kube-scheduler-n1_aaa/kube-scheduler/0.log",
            "A0",
            300,
        );
        put(
            d,
            "kube-system_kube-scheduler-n1_bbb/kube-scheduler/0.log",
            "B0",
            200,
        );
        put(
            d,
            "kube-system_kube-scheduler-n1_bbb/kube-scheduler/1.log",
            "B1",
            100,
        );
        put(
            d,
            "kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log",
            "",
            150,
        );
    }

    /// Issue 10: after a rollback `plinth logs` printed a dead instance's file.
    #[test]
    fn logs_after_restart_show_the_live_instance() {
        let d = tempfile::tempdir().unwrap();
        rollback_layout(d.path());
        let p =
            find_container_log(d.path(), "kube-scheduler", None, false, &live("aaa", 1)).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log"),
            "{p:?}"
        );
        // An agent answer about other pods (or a file not there) does not mislead.
        let p =
            find_container_log(d.path(), "kube-scheduler", None, false, &live("zzz", 7)).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_bbb/kube-scheduler/1.log"),
            "{p:?}"
        );
        let p =
            find_container_log(d.path(), "kube-scheduler", None, false, &live("aaa", 7)).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log"),
            "{p:?}"
        );
    }

    /// Issue 10: `--previous` mixed two instances.
    #[test]
    fn logs_previous_is_exactly_the_previous_instance() {
        let d = tempfile::tempdir().unwrap();
        rollback_layout(d.path());
        let p =
            find_container_log(d.path(), "kube-scheduler", None, true, &live("aaa", 1)).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_aaa/kube-scheduler/0.log"),
            "{p:?}"
        );
        // The first instance of a new pod version: the last instance of the version before.
        let d2 = tempfile::tempdir().unwrap();
        put(
            d2.path(),
            "kube-system_kube-scheduler-n1_aaa/kube-scheduler/0.log",
            "A0",
            300,
        );
        put(
            d2.path(),
            "kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log",
            "A1",
            200,
        );
        put(
            d2.path(),
            "kube-system_kube-scheduler-n1_ccc/kube-scheduler/0.log",
            "C0",
            10,
        );
        let p =
            find_container_log(d2.path(), "kube-scheduler", None, true, &live("ccc", 0)).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log"),
            "{p:?}"
        );
        let p = find_container_log(d2.path(), "kube-scheduler", None, true, &[]).unwrap();
        assert!(
            p.ends_with("kube-system_kube-scheduler-n1_aaa/kube-scheduler/1.log"),
            "{p:?}"
        );
    }

    /// Reads from `r` until the collected output contains `want`.
    async fn read_until(r: &mut tokio::io::DuplexStream, got: &mut String, want: &str) {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !got.contains(want) {
            let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; got {got:?}"))
                .unwrap();
            assert!(n > 0, "follow ended");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// Issue 10: `logs -f` stayed on a dead instance after a restart.
    #[tokio::test]
    async fn logs_follow_moves_to_the_next_instance() {
        use crate::logs::{format_record, Stream};
        let rec =
            |t: &str| format_record("2024-05-01T12:00:03Z", Stream::Stdout, false, t.as_bytes());
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("kube-system_web-n1_aaa/c");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("0.log"), rec("old-dead")).unwrap();
        std::fs::write(a.join("1.log"), rec("one")).unwrap();
        let cur = a.join("1.log");
        let mut seen = instance_files(&cur);
        assert_eq!(seen.len(), 2);
        let (tx, mut rx) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(async move {
            crate::logs::follow_instances(&cur, 0, tx, move |c| next_instance(c, &mut seen)).await
        });
        let mut got = String::new();
        read_until(&mut rx, &mut got, "one\n").await;
        // The instance's last words, then it ends and the next instance starts.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(a.join("1.log"))
            .unwrap();
        std::io::Write::write_all(&mut f, &rec("last words of 1")).unwrap();
        std::fs::write(a.join("2.log"), rec("two")).unwrap();
        read_until(&mut rx, &mut got, "two\n").await;
        // A new pod version (the manifest changed): its first instance.
        let b = d.path().join("kube-system_web-n1_bbb/c");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("0.log"), rec("new version")).unwrap();
        read_until(&mut rx, &mut got, "new version\n").await;
        task.abort();
        assert_eq!(got, "one\nlast words of 1\ntwo\nnew version\n");
    }
}
