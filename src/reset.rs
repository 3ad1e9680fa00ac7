//! `plinth reset`: undo `plinth init` exactly.
//!
//! plinth removes only what it created: the files it writes (manifests, certificates,
//! kubeconfigs, audit policy, agent config, the persisted configuration), its state and
//! pod-log directories, the local etcd data dir named in the etcd manifest, and directories
//! that did not exist before the first `init` (recorded in a ledger at that time). A
//! directory that existed before, or that holds anything plinth did not write, is left — and
//! listed as left.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::ClusterSpec;
use crate::fs::{self, FsError, HostRoot};
use crate::manifests::Component;

/// Errors from reset.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The ledger is unreadable.
    #[error("ledger {path}: {reason}")]
    Ledger {
        /// Ledger file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Host paths of the directories plinth created (didn't exist before the first init).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// Directories created by plinth (host paths).
    pub created_dirs: BTreeSet<String>,
}

/// The ledger's host path.
pub fn ledger_path(spec: &ClusterSpec) -> String {
    format!(
        "{}/ledger.json",
        spec.plinth.state_dir.trim_end_matches('/')
    )
}

/// The directory of the persisted configuration (fixed, whatever `stateDir` says).
fn persisted_config_dir() -> String {
    Path::new(crate::config::persisted::PERSISTED_CONFIG_PATH)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Every directory (host path) that plinth's writes for `spec` may create.
pub fn candidate_dirs(spec: &ClusterSpec) -> BTreeSet<String> {
    let mut leaves: Vec<String> = vec![
        spec.plinth.manifests_dir.clone(),
        spec.plinth.kubeconfig_dir.clone(),
        spec.plinth.state_dir.clone(),
        spec.plinth.log_dir.clone(),
        format!("{}/etcd", spec.certificates_dir),
        "/var/log/plinth".into(),
        "/var/log/kubernetes/audit".into(),
        persisted_config_dir(),
    ];
    if let crate::config::Etcd::Local(l) = &spec.etcd {
        leaves.push(l.data_dir.clone());
    }
    let mut out = BTreeSet::new();
    for leaf in leaves {
        let mut p = Path::new(&leaf);
        while p != Path::new("/") && !p.as_os_str().is_empty() {
            out.insert(p.display().to_string());
            p = match p.parent() {
                Some(x) => x,
                None => break,
            };
        }
    }
    out
}

/// Before init writes anything: remember which candidate dirs do not exist yet. Entries from
/// an earlier init are kept, so a re-run never "forgets" what the first run created.
pub fn record_ledger(spec: &ClusterSpec, root: &HostRoot) -> Result<Ledger, ResetError> {
    let mut ledger = load_ledger(spec, root)?;
    for d in candidate_dirs(spec) {
        if !root.path(&d).exists() {
            ledger.created_dirs.insert(d);
        }
    }
    save_ledger(spec, root, &ledger)?;
    Ok(ledger)
}

/// Merges directories the agent reports it created into the ledger.
pub fn add_to_ledger(
    spec: &ClusterSpec,
    root: &HostRoot,
    dirs: impl IntoIterator<Item = String>,
) -> Result<(), ResetError> {
    let mut ledger = load_ledger(spec, root)?;
    ledger.created_dirs.extend(dirs);
    save_ledger(spec, root, &ledger)
}

/// Writes the ledger atomically (mode 0600).
fn save_ledger(spec: &ClusterSpec, root: &HostRoot, ledger: &Ledger) -> Result<(), ResetError> {
    let path = root.path(ledger_path(spec));
    let json = serde_json::to_vec_pretty(ledger).map_err(|e| ResetError::Ledger {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    fs::write_atomic(&path, &json, fs::MODE_PRIVATE)?;
    Ok(())
}

/// Loads the ledger (empty when absent).
pub fn load_ledger(spec: &ClusterSpec, root: &HostRoot) -> Result<Ledger, ResetError> {
    let path = root.path(ledger_path(spec));
    match fs::read_optional(&path)? {
        None => Ok(Ledger::default()),
        Some(b) => serde_json::from_slice(&b).map_err(|e| ResetError::Ledger {
            path,
            reason: e.to_string(),
        }),
    }
}

/// What reset did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResetReport {
    /// Host paths removed.
    pub removed: Vec<String>,
    /// Host paths left in place, with the reason.
    pub left: Vec<(String, String)>,
}

/// The files plinth writes for `spec` (host paths).
pub fn owned_files(spec: &ClusterSpec, extra: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let m = spec.plinth.manifests_dir.trim_end_matches('/');
    for c in Component::all() {
        v.push(format!("{m}/{}", c.file_name()));
    }
    let k = spec.plinth.kubeconfig_dir.trim_end_matches('/');
    for kc in crate::kubeconfig::profiles(spec) {
        v.push(format!("{k}/{}", kc.file));
    }
    let pki = spec.certificates_dir.trim_end_matches('/');
    for base in [
        "ca",
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd/ca",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
        "apiserver-etcd-client",
    ] {
        v.push(format!("{pki}/{base}.crt"));
        v.push(format!("{pki}/{base}.key"));
    }
    v.push(format!("{pki}/sa.key"));
    v.push(format!("{pki}/sa.pub"));
    v.push(format!("{k}/audit-policy.yaml"));
    v.push(crate::config::persisted::PERSISTED_CONFIG_PATH.to_string());
    v.extend(extra.iter().cloned());
    v
}

/// Removes what plinth created. `etcd_data_dir` is the local data dir named in the etcd
/// manifest (None for external etcd). Stopping the agent and pods is the caller's job.
pub fn remove(
    spec: &ClusterSpec,
    root: &HostRoot,
    etcd_data_dir: Option<&str>,
) -> Result<ResetReport, ResetError> {
    let mut ledger = load_ledger(spec, root)?;
    // hostPath dirs/files the agent created (DirectoryOrCreate / FileOrCreate) are plinth's too.
    let agent_created =
        crate::agent::hostpath::HostPaths::new(root.clone(), Path::new(&spec.plinth.state_dir))
            .created();
    ledger
        .created_dirs
        .extend(agent_created.created_dirs.iter().cloned());
    let mut report = ResetReport::default();
    // The pods' cgroups first: where they are is recorded in the state dir (removed below).
    remove_pod_cgroups(spec, root, &mut report);
    for f in owned_files(
        spec,
        &agent_created
            .created_files
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
    ) {
        let p = root.path(&f);
        if p.symlink_metadata().is_ok() {
            std::fs::remove_file(&p).map_err(|e| FsError::io("remove", &p, e))?;
            report.removed.push(f);
        }
    }
    // Whole trees plinth owns outright.
    let mut trees = vec![spec.plinth.state_dir.clone(), "/var/log/plinth".to_string()];
    if let Some(d) = etcd_data_dir {
        if ledger.created_dirs.contains(d) {
            trees.push(d.to_string());
        } else {
            report.left.push((
                d.to_string(),
                "etcd data dir existed before plinth init".into(),
            ));
        }
    }
    // Pod logs: the whole dir if plinth created it, else only plinth's pod dirs.
    if ledger.created_dirs.contains(&spec.plinth.log_dir) {
        trees.push(spec.plinth.log_dir.clone());
    } else if let Ok(entries) = std::fs::read_dir(root.path(&spec.plinth.log_dir)) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(&format!("-{}_", spec.node_name)) {
                trees.push(format!(
                    "{}/{name}",
                    spec.plinth.log_dir.trim_end_matches('/')
                ));
            }
        }
    }
    if ledger.created_dirs.contains("/var/log/kubernetes/audit") {
        trees.push("/var/log/kubernetes/audit".into());
    }
    let ledger_file = ledger_path(spec);
    for t in trees {
        let p = root.path(&t);
        if p.exists() {
            remove_tree(&p)?;
            report.removed.push(t);
        }
    }
    let lp = root.path(&ledger_file);
    if lp.exists() {
        std::fs::remove_file(&lp).map_err(|e| FsError::io("remove", &lp, e))?;
        report.removed.push(ledger_file);
    }
    // Directories plinth created: deepest first, only when empty.
    let mut dirs: Vec<&String> = ledger.created_dirs.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in dirs {
        let p = root.path(d);
        if !p.exists() {
            continue;
        }
        match std::fs::remove_dir(&p) {
            Ok(()) => report.removed.push(d.clone()),
            Err(_) => report
                .left
                .push((d.clone(), "holds files plinth did not create".into())),
        }
    }
    Ok(report)
}

/// The UIDs of this node's pods: those recorded in the agent's state dir, and those named by
/// its pod log dirs (`<namespace>_<name>-<node>_<uid>`).
fn pod_uids(spec: &ClusterSpec, root: &HostRoot) -> BTreeSet<String> {
    let (pods, _) =
        crate::agent::state::StateStore::new(root, Path::new(&spec.plinth.state_dir)).load();
    let mut uids: BTreeSet<String> = pods.into_iter().map(|p| p.uid).collect();
    if let Ok(entries) = std::fs::read_dir(root.path(&spec.plinth.log_dir)) {
        let marker = format!("-{}_", spec.node_name);
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((_, uid)) = name.rsplit_once('_').filter(|_| name.contains(&marker)) {
                uids.insert(uid.to_string());
            }
        }
    }
    uids
}

/// Removes the cgroups of this node's pods (whatever is left in them is killed) under every
/// cgroup parent the agent recorded, then each parent if nothing else is in it. Other
/// cgroups are never touched.
fn remove_pod_cgroups(spec: &ClusterSpec, root: &HostRoot, report: &mut ResetReport) {
    use crate::runtime::process::cgroups::{self, CgroupRecord, CGROUP_RECORD_FILE};
    let record = CgroupRecord::load(&root.path(&spec.plinth.state_dir).join(CGROUP_RECORD_FILE));
    if record.parents.is_empty() {
        return;
    }
    let uids = pod_uids(spec, root);
    for parent in &record.parents {
        for uid in &uids {
            if cgroups::check_name("pod uid", uid).is_err() {
                continue;
            }
            let dir = parent.join(uid);
            match cgroups::remove_pod_dir(&dir) {
                Ok(true) => report.removed.push(dir.display().to_string()),
                Ok(false) => {}
                Err(e) => report.left.push((
                    dir.display().to_string(),
                    format!("cannot remove cgroup: {e}"),
                )),
            }
        }
        if parent.is_dir() {
            match std::fs::remove_dir(parent) {
                Ok(()) => report.removed.push(parent.display().to_string()),
                Err(_) => report.left.push((
                    parent.display().to_string(),
                    "holds cgroups of pods this node does not know".into(),
                )),
            }
        }
    }
}

/// Removes a directory tree. A container's log shim may still flush its last record for a
/// moment after the container died (it exits on EOF), re-creating a file mid-removal: retry.
fn remove_tree(p: &Path) -> Result<(), FsError> {
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(p) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if attempt < 20 => {
                tracing::debug!("remove {}: {e}; retrying", p.display());
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(FsError::io("remove dir", p, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_removes_only_what_plinth_created() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        // Pre-existing: /etc with a user file.
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(root.path("/etc/hosts"), "keep").unwrap();
        record_ledger(&spec, &root).unwrap();
        for f in [
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/manifests/etcd.yaml",
        ] {
            fs::write_atomic(&root.path(f), b"x", 0o600).unwrap();
        }
        std::fs::create_dir_all(root.path("/var/lib/etcd/member")).unwrap();
        // A file plinth did not create, inside a dir it did.
        std::fs::write(root.path("/etc/kubernetes/mine.txt"), "user").unwrap();
        let r = remove(&spec, &root, Some("/var/lib/etcd")).unwrap();
        assert!(root.path("/etc/hosts").exists());
        assert!(root.path("/etc/kubernetes/mine.txt").exists());
        assert!(!root.path("/etc/kubernetes/pki").exists());
        assert!(!root.path("/var/lib/etcd").exists());
        assert!(
            !root.path("/var").exists(),
            "created parents are removed too"
        );
        assert!(r.left.iter().any(|(p, _)| p == "/etc/kubernetes"));
        assert!(r.removed.iter().any(|p| p == "/etc/kubernetes/admin.conf"));
    }

    /// Regression (issue 8, item 10): the pod cgroups the agent created are removed by
    /// reset, found through the record in the state dir; cgroups of pods this node does not
    /// know (another agent's) are left. (A plain directory tree stands in for cgroupfs.)
    #[test]
    fn reset_removes_the_pod_cgroups_of_the_node() {
        use crate::runtime::process::cgroups::{CgroupRecord, CGROUP_RECORD_FILE};
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(&d.path().join("root")));
        let spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        record_ledger(&spec, &root).unwrap();
        let cg = d.path().join("cgroupfs");
        let parents = [cg.join("unified/plinth"), cg.join("memory/x/plinth")];
        for p in &parents {
            for leaf in [
                "u-state/etcd-0",
                "u-state/etcd-1",
                "u-log/main-0",
                "other/c-0",
            ] {
                std::fs::create_dir_all(p.join(leaf)).unwrap();
            }
        }
        let state = root.path(&spec.plinth.state_dir);
        let pod = crate::agent::state::PersistedPod {
            uid: "u-state".into(),
            name: "etcd-n".into(),
            namespace: "kube-system".into(),
            ..Default::default()
        };
        fs::write_atomic(
            &state.join("pods/u-state.json"),
            &serde_json::to_vec(&pod).unwrap(),
            0o600,
        )
        .unwrap();
        std::fs::create_dir_all(
            root.path(&spec.plinth.log_dir)
                .join("kube-system_kube-scheduler-n_u-log/main"),
        )
        .unwrap();
        CgroupRecord::add(&state.join(CGROUP_RECORD_FILE), parents.iter().cloned()).unwrap();
        let r = remove(&spec, &root, None).unwrap();
        for p in &parents {
            assert!(!p.join("u-state").exists());
            assert!(!p.join("u-log").exists());
            assert!(
                p.join("other/c-0").exists(),
                "another agent's pod cgroup is kept"
            );
            assert!(
                r.removed.contains(&p.join("u-state").display().to_string()),
                "{r:?}"
            );
            assert!(
                r.left.iter().any(|(l, _)| *l == p.display().to_string()),
                "{r:?}"
            );
        }
        // Without other pods the parent goes too.
        for p in &parents {
            std::fs::remove_dir_all(p.join("other")).unwrap();
        }
        CgroupRecord::add(&state.join(CGROUP_RECORD_FILE), parents.iter().cloned()).unwrap();
        let r = remove(&spec, &root, None).unwrap();
        for p in &parents {
            assert!(!p.exists());
            assert!(r.removed.contains(&p.display().to_string()), "{r:?}");
        }
    }
}
