//! The desired state: which pods should run, merged from the manifest files.
//!
//! Deliberately better than the kubelet:
//! - **Last known good.** A file that becomes unreadable, half-written or invalid does not
//!   stop the pod it used to define: the file's last good pod stays desired and the error
//!   (file, line, reason) is reported until the file is fixed or removed.
//! - **Conflicts.** When two files define the same pod name, neither replaces the pod that
//!   is running under that name; a conflict naming both files is reported. With nothing
//!   running yet, a pod whose UID the agent already knows (adoption) wins, else the
//!   lexically first file.
//! - **No-ops.** An identical rewrite or a chmod gives the same UID, so nothing changes; the
//!   `config.seen` time of a pod version is kept for as long as that version is desired.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::pod::{identify, StaticPod};
use super::source::{ManifestFile, SourceError};

/// What kind of problem the sources have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProblemKind {
    /// The manifest file is unreadable or not a valid static pod.
    InvalidManifest,
    /// Two files define the same pod name.
    Conflict,
    /// The manifest path itself cannot be read.
    Source,
    /// The file is being written in place: it is applied once it has stopped changing for
    /// the settle window (see [`super::settle`]).
    Settling,
}

/// A problem reported in status and logs until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Kind of problem.
    pub kind: ProblemKind,
    /// The file at fault (host path).
    pub file: PathBuf,
    /// Line in the file, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What is wrong.
    pub reason: String,
    /// The pod affected (full name), when one is: its last known good version keeps running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The pods that should run, by full name, and the current problems.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Desired pods by full name.
    pub pods: BTreeMap<String, StaticPod>,
    /// Current problems (invalid files, conflicts, an unreadable manifest path).
    pub problems: Vec<Problem>,
}

impl Desired {
    /// The problems affecting the pod `name`.
    pub fn problems_for(&self, name: &str) -> Vec<&Problem> {
        self.problems
            .iter()
            .filter(|p| p.pod.as_deref() == Some(name))
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
struct FileEntry {
    good: Option<StaticPod>,
    error: Option<SourceError>,
    settling: bool,
}

/// Merges successive listings into the desired state.
#[derive(Debug)]
pub struct PodConfig {
    node: String,
    files: BTreeMap<PathBuf, FileEntry>,
    active: BTreeMap<String, StaticPod>,
    seen: HashMap<String, String>,
    known_uids: BTreeSet<String>,
    source_error: Option<SourceError>,
}

impl PodConfig {
    /// A pod config for `node`. `known_uids` are pods already running (from the state dir):
    /// they win a name conflict when nothing else is running under that name.
    pub fn new(node: &str, known_uids: BTreeSet<String>) -> Self {
        PodConfig {
            node: node.to_string(),
            files: BTreeMap::new(),
            active: BTreeMap::new(),
            seen: HashMap::new(),
            known_uids,
            source_error: None,
        }
    }

    /// Applies one full listing (`Err` = the manifest path could not be read: everything
    /// stays as it was) and returns the new desired state. `now` is the RFC 3339 time used
    /// for `config.seen` of pod versions seen for the first time.
    pub fn update(
        &mut self,
        listing: Result<Vec<ManifestFile>, SourceError>,
        now: &str,
    ) -> Desired {
        match listing {
            Err(e) => {
                self.source_error = Some(e);
            }
            Ok(files) => {
                self.source_error = None;
                let mut next = BTreeMap::new();
                for f in files {
                    let prev = self.files.remove(&f.host_path).unwrap_or_default();
                    let settling = f.settling;
                    let parsed = f
                        .result
                        .and_then(|pod| identify(pod, &self.node, &f.host_path))
                        .and_then(|p| match &prev.good {
                            // A valid but possibly truncated file must not replace a pod.
                            Some(old) if !f.ends_with_newline && old.uid != p.uid => {
                                Err(SourceError {
                                    file: f.host_path.clone(),
                                    line: None,
                                    reason: "the file does not end with a newline: it looks truncated or still being written, so it does not replace the running pod (end the file with a newline to apply it)".into(),
                                })
                            }
                            _ => Ok(p),
                        });
                    let entry = match parsed {
                        Ok(p) => FileEntry {
                            good: Some(p),
                            error: None,
                            settling: false,
                        },
                        Err(e) => FileEntry {
                            good: prev.good,
                            error: Some(e),
                            settling,
                        },
                    };
                    next.insert(f.host_path, entry);
                }
                self.files = next;
                self.merge();
            }
        }
        self.stamp_seen(now);
        self.desired()
    }

    fn merge(&mut self) {
        let mut by_name: BTreeMap<String, Vec<&StaticPod>> = BTreeMap::new();
        for e in self.files.values() {
            if let Some(p) = &e.good {
                by_name.entry(p.name.clone()).or_default().push(p);
            }
        }
        let mut active = BTreeMap::new();
        for (name, candidates) in by_name {
            let chosen = if candidates.len() == 1 {
                candidates[0].clone()
            } else if let Some(running) = self.active.get(&name) {
                running.clone()
            } else if let Some(known) = candidates.iter().find(|c| self.known_uids.contains(&c.uid))
            {
                (*known).clone()
            } else {
                candidates[0].clone()
            };
            active.insert(name, chosen);
        }
        self.active = active;
    }

    fn stamp_seen(&mut self, now: &str) {
        let mut seen = HashMap::new();
        for p in self.active.values_mut() {
            let t = self
                .seen
                .get(&p.uid)
                .cloned()
                .unwrap_or_else(|| now.to_string());
            p.set_seen(&t);
            seen.insert(p.uid.clone(), t);
        }
        self.seen = seen;
    }

    fn desired(&self) -> Desired {
        let mut problems = Vec::new();
        if let Some(e) = &self.source_error {
            problems.push(Problem {
                kind: ProblemKind::Source,
                file: e.file.clone(),
                line: e.line,
                reason: format!("{}; keeping the pods already known", e.reason),
                pod: None,
            });
        }
        for (path, e) in &self.files {
            if let Some(err) = &e.error {
                let pod = e.good.as_ref().map(|g| g.name.clone());
                let reason = match &pod {
                    Some(p) => format!(
                        "{}; pod {p} keeps running its last good version",
                        err.reason
                    ),
                    None => err.reason.clone(),
                };
                problems.push(Problem {
                    kind: if e.settling {
                        ProblemKind::Settling
                    } else {
                        ProblemKind::InvalidManifest
                    },
                    file: path.clone(),
                    line: err.line,
                    reason,
                    pod,
                });
            }
        }
        // Conflicts: every file whose good pod shares its name with another file's.
        let mut by_name: BTreeMap<&str, Vec<&PathBuf>> = BTreeMap::new();
        for (path, e) in &self.files {
            if let Some(p) = &e.good {
                by_name.entry(p.name.as_str()).or_default().push(path);
            }
        }
        for (name, files) in by_name {
            if files.len() < 2 {
                continue;
            }
            let running = self.active.get(name).map(|p| p.file.clone());
            let running_uid = self.active.get(name).map(|p| p.uid.as_str());
            let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            for f in &files {
                let file_uid = self.files[*f].good.as_ref().map(|g| g.uid.as_str());
                if file_uid.is_some() && file_uid == running_uid {
                    continue;
                }
                problems.push(Problem {
                    kind: ProblemKind::Conflict,
                    file: (*f).clone(),
                    line: None,
                    reason: format!(
                        "pod {name} is defined by several files ({}); neither replaces the running one (from {}): remove or rename one",
                        list.join(", "),
                        running
                            .as_ref()
                            .map(|r| r.display().to_string())
                            .unwrap_or_else(|| "none".into())
                    ),
                    pod: Some(name.to_string()),
                });
            }
        }
        Desired {
            pods: self.active.clone(),
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::source::parse_manifest;
    use std::path::Path;

    fn pod_yaml(name: &str, arg: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '{arg}']\n")
    }

    fn file(path: &str, text: &str) -> ManifestFile {
        ManifestFile {
            host_path: PathBuf::from(path),
            result: parse_manifest(Path::new(path), text.as_bytes()),
            ends_with_newline: text.ends_with('\n'),
            stamp: None,
            settling: false,
        }
    }

    fn uids(d: &Desired) -> Vec<(String, String)> {
        d.pods
            .iter()
            .map(|(n, p)| (n.clone(), p.uid.clone()))
            .collect()
    }

    #[test]
    fn identical_rewrite_is_a_no_op_and_seen_is_kept() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let d1 = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "1"))]), "T1");
        let d2 = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "1"))]), "T2");
        assert_eq!(uids(&d1), uids(&d2));
        assert_eq!(d1.pods["a-n"], d2.pods["a-n"], "seen must not change");
        let d3 = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "2"))]), "T3");
        assert_ne!(uids(&d1), uids(&d3));
        let seen = |d: &Desired| {
            d.pods["a-n"].pod.metadata.annotations.as_ref().unwrap()
                [crate::agent::pod::ANN_CONFIG_SEEN]
                .clone()
        };
        assert_eq!(seen(&d1), "T1");
        assert_eq!(seen(&d3), "T3");
    }

    #[test]
    fn broken_file_keeps_last_known_good_and_reports_until_fixed() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let good = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "1"))]), "T");
        for broken in [
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n", // half-written
            "\u{0}\u{1}garbage: : :",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
            "",
        ] {
            let d = pc.update(Ok(vec![file("/m/a.yaml", broken)]), "T");
            assert_eq!(uids(&d), uids(&good), "pod must survive {broken:?}");
            assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
            let p = &d.problems[0];
            assert_eq!(p.kind, ProblemKind::InvalidManifest);
            assert_eq!(p.file, PathBuf::from("/m/a.yaml"));
            assert_eq!(p.pod.as_deref(), Some("a-n"));
            assert_eq!(d.problems_for("a-n").len(), 1);
        }
        // Unreadable (permission denied, vanished mid-read) is the same.
        let unreadable = ManifestFile {
            ends_with_newline: true,
            stamp: None,
            settling: false,
            host_path: "/m/a.yaml".into(),
            result: Err(SourceError {
                file: "/m/a.yaml".into(),
                line: None,
                reason: "cannot read: permission denied".into(),
            }),
        };
        let d = pc.update(Ok(vec![unreadable]), "T");
        assert_eq!(uids(&d), uids(&good));
        // Fixed: the error goes away.
        let d = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "1"))]), "T");
        assert!(d.problems.is_empty());
        assert_eq!(uids(&d), uids(&good));
        // Removed: the pod goes away.
        let d = pc.update(Ok(vec![]), "T");
        assert!(d.pods.is_empty());
    }

    #[test]
    fn truncated_but_valid_file_does_not_replace_the_running_pod() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let full = pod_yaml("a", "1") + "    args:\n    - --flag=value\n";
        let good = pc.update(Ok(vec![file("/m/a.yaml", &full)]), "T");
        // Cut mid-line: still a valid Pod (without the args), but no final newline.
        let cut = &full[..full.len() - 3];
        let d = pc.update(Ok(vec![file("/m/a.yaml", cut)]), "T");
        assert_eq!(uids(&d), uids(&good));
        assert!(
            d.problems[0].reason.contains("does not end with a newline"),
            "{:?}",
            d.problems
        );
        // A new file without a final newline is fine: nothing to protect.
        let d = pc.update(
            Ok(vec![
                file("/m/a.yaml", &full),
                file("/m/b.yaml", pod_yaml("b", "1").trim_end()),
            ]),
            "T",
        );
        assert!(d.pods.contains_key("b-n") && d.problems.is_empty());
    }

    #[test]
    fn invalid_file_never_seen_good_defines_nothing() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let d = pc.update(
            Ok(vec![file(
                "/m/dep.yaml",
                "apiVersion: apps/v1\nkind: Deployment\n",
            )]),
            "T",
        );
        assert!(d.pods.is_empty());
        assert_eq!(d.problems[0].pod, None);
        assert!(d.problems[0]
            .reason
            .contains("only Pods can be static pods"));
    }

    #[test]
    fn unreadable_manifest_dir_keeps_everything() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let good = pc.update(Ok(vec![file("/m/a.yaml", &pod_yaml("a", "1"))]), "T");
        let d = pc.update(
            Err(SourceError {
                file: "/m".into(),
                line: None,
                reason: "cannot read: gone".into(),
            }),
            "T",
        );
        assert_eq!(uids(&d), uids(&good));
        assert_eq!(d.problems[0].kind, ProblemKind::Source);
    }

    #[test]
    fn duplicate_name_never_replaces_the_running_pod() {
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let first = pc.update(Ok(vec![file("/m/b.yaml", &pod_yaml("a", "1"))]), "T");
        // A lexically earlier file with the same pod name appears (kubelet: last one wins).
        let d = pc.update(
            Ok(vec![
                file("/m/a.yaml", &pod_yaml("a", "2")),
                file("/m/b.yaml", &pod_yaml("a", "1")),
            ]),
            "T",
        );
        assert_eq!(uids(&d), uids(&first), "running pod replaced");
        assert_eq!(d.problems.len(), 1);
        let p = &d.problems[0];
        assert_eq!(p.kind, ProblemKind::Conflict);
        assert_eq!(p.file, PathBuf::from("/m/a.yaml"));
        assert!(
            p.reason.contains("/m/a.yaml") && p.reason.contains("/m/b.yaml"),
            "{p}"
        );
        // Editing the running file while the conflict lasts does not replace it either.
        let d = pc.update(
            Ok(vec![
                file("/m/a.yaml", &pod_yaml("a", "2")),
                file("/m/b.yaml", &pod_yaml("a", "3")),
            ]),
            "T",
        );
        assert_eq!(uids(&d), uids(&first));
        assert_eq!(d.problems.len(), 2);
        // Conflict resolved by removing the duplicate: b's current content runs.
        let d = pc.update(Ok(vec![file("/m/b.yaml", &pod_yaml("a", "3"))]), "T");
        assert_ne!(uids(&d), uids(&first));
        assert!(d.problems.is_empty());
    }

    #[test]
    fn conflict_at_start_prefers_known_uid_then_first_file() {
        let files = || {
            vec![
                file("/m/a.yaml", &pod_yaml("x", "1")),
                file("/m/b.yaml", &pod_yaml("x", "2")),
            ]
        };
        let mut pc = PodConfig::new("n", BTreeSet::new());
        let d = pc.update(Ok(files()), "T");
        assert_eq!(d.pods["x-n"].file, PathBuf::from("/m/a.yaml"));
        let b_uid = {
            let mut pc = PodConfig::new("n", BTreeSet::new());
            pc.update(Ok(vec![file("/m/b.yaml", &pod_yaml("x", "2"))]), "T")
                .pods["x-n"]
                .uid
                .clone()
        };
        let mut pc = PodConfig::new("n", [b_uid.clone()].into());
        let d = pc.update(Ok(files()), "T");
        assert_eq!(d.pods["x-n"].uid, b_uid);
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].file, PathBuf::from("/m/a.yaml"));
    }
}
