//! Persistent agent state for adoption: per pod UID, its config hash and, per container, the
//! [`ContainerHandle`] (pid + start time), restart count and last exit. One JSON file per pod
//! in `<state dir>/pods/<uid>.json`, written atomically on every change.
//!
//! On start the agent re-attaches to processes whose pod UID is still desired and which the
//! runtime confirms are the very processes it started (`is_running`: pid *and* start time);
//! other recorded processes are terminated (the pod changed or went away); a record whose
//! process is gone is just forgotten. A process not in the state is never signalled.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::model::Terminated;
use super::pod::StaticPod;
use crate::fs::HostRoot;
use crate::runtime::ContainerHandle;

/// Errors reading or writing the state dir.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Writing a state file failed.
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    /// A state file does not parse.
    #[error("state file {path}: {reason}", path = path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What the agent remembers about one container.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedContainer {
    /// The running instance, if one was started and not yet seen to exit.
    pub handle: Option<ContainerHandle>,
    /// Restarts so far.
    pub restart_count: u32,
    /// The last instance's end, if it ended.
    pub last_exit: Option<Terminated>,
}

/// What the agent remembers about one pod.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedPod {
    /// Pod UID (= config hash).
    pub uid: String,
    /// Full pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Manifest file (host path).
    pub file: PathBuf,
    /// terminationGracePeriodSeconds of the pod (for terminating orphans).
    pub grace_seconds: u64,
    /// Containers by name.
    pub containers: BTreeMap<String, PersistedContainer>,
}

impl PersistedPod {
    /// The live handles recorded for this pod.
    pub fn handles(&self) -> impl Iterator<Item = (&String, &ContainerHandle)> {
        self.containers
            .iter()
            .filter_map(|(n, c)| c.handle.as_ref().map(|h| (n, h)))
    }
}

/// The state dir (`<state dir>/pods`), with an in-memory copy.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    pods: Mutex<HashMap<String, PersistedPod>>,
}

impl StateStore {
    /// The store under `state_dir` (a host path, opened under `root`).
    pub fn new(root: &HostRoot, state_dir: &Path) -> Self {
        StateStore {
            dir: root.path(state_dir).join("pods"),
            pods: Mutex::new(HashMap::new()),
        }
    }

    /// Loads every persisted pod; unreadable files are reported and skipped (never fatal:
    /// the worst case is a process that is not adopted, and it is then not signalled either).
    pub fn load(&self) -> (Vec<PersistedPod>, Vec<StateError>) {
        let mut pods = Vec::new();
        let mut errors = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.filter_map(|e| e.ok()) {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !name.ends_with(".json") {
                    continue;
                }
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<PersistedPod>(&b).map_err(|e| e.to_string())
                    }) {
                    Ok(p) => pods.push(p),
                    Err(reason) => errors.push(StateError::Corrupt { path, reason }),
                }
            }
        }
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        let mut map = self.lock();
        for p in &pods {
            map.insert(p.uid.clone(), p.clone());
        }
        (pods, errors)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PersistedPod>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates one container's record of `pod` and writes the pod's file.
    pub fn update_container(
        &self,
        pod: &StaticPod,
        container: &str,
        f: impl FnOnce(&mut PersistedContainer),
    ) -> Result<(), StateError> {
        let mut map = self.lock();
        let entry = map.entry(pod.uid.clone()).or_insert_with(|| PersistedPod {
            uid: pod.uid.clone(),
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            file: pod.file.clone(),
            grace_seconds: grace_seconds(pod),
            containers: BTreeMap::new(),
        });
        f(entry.containers.entry(container.to_string()).or_default());
        let json = serde_json::to_vec_pretty(&*entry).map_err(|e| StateError::Corrupt {
            path: self.file(&pod.uid),
            reason: e.to_string(),
        })?;
        crate::fs::write_atomic(&self.file(&pod.uid), &json, crate::fs::MODE_PRIVATE)?;
        Ok(())
    }

    /// Forgets a pod (after it terminated).
    pub fn remove(&self, uid: &str) {
        self.lock().remove(uid);
        let _ = std::fs::remove_file(self.file(uid));
    }

    /// The persisted record of `uid`, if any.
    pub fn get(&self, uid: &str) -> Option<PersistedPod> {
        self.lock().get(uid).cloned()
    }

    fn file(&self, uid: &str) -> PathBuf {
        self.dir.join(format!("{uid}.json"))
    }
}

/// The pod's terminationGracePeriodSeconds (default 30).
pub fn grace_seconds(pod: &StaticPod) -> u64 {
    pod.spec()
        .termination_grace_period_seconds
        .map(|s| s.max(0) as u64)
        .unwrap_or(30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::pod::identify;
    use crate::agent::source::parse_manifest;
    use std::time::{Duration, SystemTime};

    #[test]
    fn round_trips_atomically_and_forgets() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let f = Path::new("/m/p.yaml");
        let pod = identify(
            parse_manifest(
                f,
                b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: 5\n  containers: [{name: c, image: x}]\n",
            )
            .unwrap(),
            "n",
            f,
        )
        .unwrap();
        let store = StateStore::new(&root, Path::new("/var/lib/plinth"));
        let h = ContainerHandle {
            id: "x".into(),
            pid: 42,
            start_ticks: 7,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        };
        store
            .update_container(&pod, "c", |c| {
                c.handle = Some(h.clone());
                c.restart_count = 2;
            })
            .unwrap();
        let file = d
            .path()
            .join(format!("var/lib/plinth/pods/{}.json", pod.uid));
        assert_eq!(crate::fs::mode_of(&file), Some(0o600));
        let fresh = StateStore::new(&root, Path::new("/var/lib/plinth"));
        let (pods, errors) = fresh.load();
        assert!(errors.is_empty());
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].grace_seconds, 5);
        assert_eq!(pods[0].containers["c"].handle, Some(h));
        assert_eq!(pods[0].containers["c"].restart_count, 2);
        std::fs::write(d.path().join("var/lib/plinth/pods/bad.json"), "{").unwrap();
        let (_, errors) = fresh.load();
        assert_eq!(errors.len(), 1);
        fresh.remove(&pod.uid);
        assert!(!file.exists());
    }
}
