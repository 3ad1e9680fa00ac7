//! The bundled static pod agent (`plinth agent`): keeps exactly the pods of a manifest
//! directory running, with kubelet semantics, as supervised host processes.
//!
//! Data flows one way: [`source`] (inotify + periodic relist) → [`podconfig`] (desired pods
//! by name, last known good, conflicts) → one [`worker`] per pod UID (start gate, restart
//! policy, probes, termination) → the [`crate::runtime::Runtime`]. [`state`] persists what
//! was started so a restarted agent adopts its processes; [`status`] serves `/pods`.
//!
//! [`run`] is the whole agent: it returns when `shutdown` resolves, leaving pods running
//! (like a kubelet restart) unless `stop_pods_on_exit` is set.

pub mod apisync;
pub mod changes;
pub mod config;
pub mod env;
pub mod failures;
pub mod fileuse;
pub mod hostpath;
pub mod mirror;
pub mod model;
pub mod node;
pub mod pod;
pub mod podconfig;
pub mod podlogs;
pub mod resolve;
pub mod settle;
pub mod source;
pub mod state;
pub mod status;
pub mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::AgentConfig;
use hostpath::HostPaths;
use podconfig::{Desired, PodConfig, Problem};
use resolve::Resolver;
use state::{PersistedPod, StateStore};
use status::{StatusView, ViewFn};
use worker::{Gates, Lifecycle, PodWorker, Prober, WorkerCtx};

use crate::runtime::Runtime;

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The status address cannot be bound.
    #[error("status server: cannot listen on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory cannot be created.
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
}

/// Pods the status API shows, shared between the sync loop and the server.
#[derive(Default)]
struct Registry {
    pods: Vec<RegisteredPod>,
    problems: Vec<Problem>,
}

/// A worker's status as the registry shows it.
struct RegisteredPod {
    /// The pod's name.
    name: String,
    /// Its UID is the one in the manifest dir now (not a version being stopped).
    desired: bool,
    /// Reads the worker's current status.
    snapshot: Arc<dyn Fn() -> worker::PodSnapshot + Send + Sync>,
}

/// The agent's sync loop state.
struct Agent {
    cfg: AgentConfig,
    ctx: Arc<WorkerCtx>,
    pod_config: PodConfig,
    workers: HashMap<String, PodWorker>,
    gates: Gates,
    adoptable: HashMap<String, PersistedPod>,
    desired: Desired,
    registry: Arc<Mutex<Registry>>,
    /// Admission of manifests that may still be being written.
    settle: settle::Settle,
    /// Pod UIDs recorded in the state dir at start (content the agent started before).
    recorded: BTreeSet<String>,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    cfg: AgentConfig,
    runtime: Arc<dyn Runtime>,
    prober: Arc<dyn Prober>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let root = cfg.root.clone();
    crate::fs::ensure_dir(&root.path(&cfg.state_dir), 0o700)?;
    crate::fs::ensure_dir(&root.path(&cfg.log_dir), crate::fs::MODE_DIR)?;
    if !cfg.ignored_fields.is_empty() {
        tracing::info!(
            "KubeletConfiguration fields accepted but not used by plinth agent: {}",
            cfg.ignored_fields.join(", ")
        );
    }
    let registry = Arc::new(Mutex::new(Registry::default()));
    let server = match cfg.healthz {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AgentError::Bind { addr, source: e })?;
            let view = view_fn(registry.clone(), cfg.node_ip);
            tracing::info!("status API on http://{addr} (/healthz, /pods, /errors)");
            Some(tokio::spawn(status::serve(listener, view)))
        }
        None => None,
    };
    let resolver = Arc::new(Resolver {
        root: root.clone(),
        bin_path: cfg.bin_path.clone(),
        binary_cache: Some(cfg.state_dir.clone()),
        image_commands: cfg.image_commands.clone(),
        node_name: cfg.node_name.clone(),
        node_ip: cfg.node_ip,
        log_dir: cfg.log_dir.clone(),
        host_paths: HostPaths::new(root.clone(), &cfg.state_dir),
    });
    let state = Arc::new(StateStore::new(&root, &cfg.state_dir));
    let (persisted, errors) = state.load();
    for e in errors {
        tracing::warn!("ignoring unreadable state: {e}");
    }
    let known: BTreeSet<String> = persisted.iter().map(|p| p.uid.clone()).collect();
    let ctx = Arc::new(WorkerCtx {
        runtime,
        prober,
        resolver,
        state,
        offload_blocking: true,
    });
    let mut agent = Agent {
        settle: settle::Settle::new(cfg.settle_window),
        recorded: known.clone(),
        pod_config: PodConfig::new(&cfg.node_name, known),
        cfg,
        ctx,
        workers: HashMap::new(),
        gates: Gates::default(),
        adoptable: persisted.into_iter().map(|p| (p.uid.clone(), p)).collect(),
        desired: Desired::default(),
        registry,
    };
    let mut watcher = source::Watcher::new(&agent.cfg.manifest_root, &agent.cfg.manifest_path);
    agent.relist();
    agent.adopt_or_kill_recorded();
    agent.sync();
    // The API sync never blocks the pods: it runs beside the loop, from the registry.
    let api_sync = agent.cfg.kubeconfig.as_ref().map(|kc| {
        let settings = apisync::Settings::new(
            &agent.cfg.node_name,
            agent.cfg.node_ip,
            root.path(&agent.cfg.state_dir),
        );
        tokio::spawn(apisync::run_with_kubeconfig(
            root.path(kc),
            settings,
            mirror_view_fn(agent.registry.clone()),
            std::future::pending(),
        ))
    });
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        pods = agent.desired.pods.len(),
        "first sync done; watching {}",
        agent.cfg.manifest_path.display()
    );

    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut relist = tokio::time::interval(agent.cfg.file_check_frequency);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    relist.tick().await;
    let mut reap = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    loop {
        let settle_deadline = agent.settle.next_deadline();
        tokio::select! {
            _ = &mut shutdown => break,
            events = watcher.changed() => {
                agent.note_events(events);
                agent.relist();
                agent.sync();
            }
            _ = async {
                match settle_deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            } => {
                agent.relist();
                agent.sync();
            }
            _ = relist.tick() => {
                watcher.ensure();
                agent.relist();
                agent.sync();
                agent.check_mounted_files();
            }
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                tracing::info!("SIGHUP: relisting and checking mounted files");
                agent.relist();
                agent.sync();
                agent.check_mounted_files();
            }
            _ = reap.tick() => agent.reap(),
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Some(t) = api_sync {
        t.abort();
    }
    agent.shutdown().await;
    if let Some(s) = server {
        s.abort();
    }
    Ok(())
}

fn view_fn(registry: Arc<Mutex<Registry>>, node_ip: std::net::IpAddr) -> ViewFn {
    Arc::new(move || {
        let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
        let desired_names: BTreeSet<&str> = reg
            .pods
            .iter()
            .filter(|p| p.desired)
            .map(|p| p.name.as_str())
            .collect();
        let mut pods: Vec<worker::PodSnapshot> = reg
            .pods
            .iter()
            .filter(|p| p.desired || !desired_names.contains(p.name.as_str()))
            .map(|p| (p.snapshot)())
            .collect();
        pods.sort_by(|a, b| a.pod.name.cmp(&b.pod.name));
        StatusView {
            pods,
            problems: reg.problems.clone(),
            node_ip: Some(node_ip),
        }
    })
}

/// The desired pods (and source problems) for the API sync's mirror pods.
fn mirror_view_fn(registry: Arc<Mutex<Registry>>) -> apisync::ViewSource {
    Arc::new(move || {
        let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
        apisync::View {
            pods: reg
                .pods
                .iter()
                .filter(|p| p.desired)
                .map(|p| (p.snapshot)())
                .collect(),
            problems: reg.problems.clone(),
        }
    })
}

/// Log retention when a pod version terminates: the pod's log dirs
/// (`<ns>_<name>_<uid>`) are removed except the one that just terminated (`keep`, for
/// `plinth logs --previous`-style forensics) and the current version's (`current`), so at
/// most two versions of a pod keep logs.
pub fn prune_pod_logs(
    log_dir: &std::path::Path,
    namespace: &str,
    name: &str,
    keep: &str,
    current: Option<&str>,
) {
    let prefix = format!("{namespace}_{name}_");
    let Ok(rd) = std::fs::read_dir(log_dir) else {
        return;
    };
    for e in rd.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let Some(uid) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        if uid == keep || Some(uid) == current || uid.contains('_') {
            continue;
        }
        match std::fs::remove_dir_all(e.path()) {
            Ok(()) => {
                tracing::debug!(dir = %e.path().display(), "removed logs of an old pod version")
            }
            Err(err) => {
                tracing::warn!(dir = %e.path().display(), "cannot remove old pod logs: {err}")
            }
        }
    }
}

impl Agent {
    /// Records inotify events (names in the watched directory) for the settle window.
    fn note_events(&mut self, events: Vec<(std::ffi::OsString, settle::FileEvent)>) {
        let now = tokio::time::Instant::now().into_std();
        let is_dir = self
            .cfg
            .manifest_root
            .path(&self.cfg.manifest_path)
            .is_dir();
        for (name, ev) in events {
            let host = if is_dir {
                self.cfg.manifest_path.join(&name)
            } else if self.cfg.manifest_path.file_name() == Some(name.as_os_str()) {
                self.cfg.manifest_path.clone()
            } else {
                continue;
            };
            self.settle.note(&host, ev, now);
        }
    }

    /// Holds back files that are still being written: each becomes a `settling` problem
    /// (the pod it defined before, if any, keeps running) until it has settled.
    fn gate(&mut self, files: &mut [source::ManifestFile]) {
        let now = tokio::time::Instant::now().into_std();
        let wall = std::time::SystemTime::now();
        let present: BTreeSet<std::path::PathBuf> =
            files.iter().map(|f| f.host_path.clone()).collect();
        self.settle.retain(&present);
        for f in files.iter_mut() {
            let recorded = match &f.result {
                Ok(pod) => pod::identify(pod.clone(), &self.cfg.node_name, &f.host_path)
                    .is_ok_and(|p| self.recorded.contains(&p.uid)),
                Err(_) => false,
            };
            let verdict = self
                .settle
                .check(&f.host_path, f.stamp, recorded, now, wall);
            if let settle::Verdict::Wait { .. } = verdict {
                let mut reason = format!(
                    "written in place and still changing: waiting until it has been unchanged for {:?} (--manifest-settle-window) before applying it",
                    self.settle.window()
                );
                if let Err(e) = &f.result {
                    reason.push_str(&format!("; as it stands: {}", e.reason));
                }
                f.result = Err(source::SourceError {
                    file: f.host_path.clone(),
                    line: None,
                    reason,
                });
                f.settling = true;
            }
        }
    }

    fn relist(&mut self) {
        let mut listing = source::list(&self.cfg.manifest_root, &self.cfg.manifest_path);
        match listing.as_mut() {
            Ok(files) => self.gate(files),
            // Nothing can be admitted or waited for while the path cannot be listed.
            Err(_) => self.settle.clear(),
        }
        let now = status::time(std::time::SystemTime::now())
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let desired = self.pod_config.update(listing, &now);
        let old: BTreeSet<String> = self
            .desired
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect();
        for p in &desired.problems {
            if !old.contains(&p.to_string()) {
                if p.kind == podconfig::ProblemKind::Settling {
                    tracing::info!("{p}");
                } else {
                    tracing::warn!("{p}");
                }
            }
        }
        let new: BTreeSet<String> = desired.problems.iter().map(|p| p.to_string()).collect();
        for p in old.difference(&new) {
            tracing::info!("resolved: {p}");
        }
        self.desired = desired;
    }

    /// Orphans: recorded pods no manifest defines (any more) get a terminating worker.
    fn adopt_or_kill_recorded(&mut self) {
        let desired: BTreeSet<&str> = self.desired.pods.values().map(|p| p.uid.as_str()).collect();
        let orphans: Vec<String> = self
            .adoptable
            .keys()
            .filter(|uid| !desired.contains(uid.as_str()))
            .cloned()
            .collect();
        for uid in orphans {
            if let Some(rec) = self.adoptable.remove(&uid) {
                tracing::info!(pod = %rec.name, uid = %rec.uid, "recorded pod is no longer defined by a manifest: terminating its processes");
                let gate = self.gates.get(&rec.name);
                let w = PodWorker::spawn_orphan(self.ctx.clone(), rec, gate);
                self.workers.insert(uid, w);
            }
        }
    }

    fn sync(&mut self) {
        let desired_uids: BTreeSet<String> =
            self.desired.pods.values().map(|p| p.uid.clone()).collect();
        for w in self.workers.values_mut() {
            if !desired_uids.contains(&w.uid) && !w.is_terminating() {
                tracing::info!(pod = %w.name, uid = %w.uid, "pod removed or changed: terminating");
                w.terminate(None);
            }
        }
        for p in self.desired.pods.values() {
            if self.workers.contains_key(&p.uid) {
                continue;
            }
            tracing::info!(pod = %p.name, uid = %p.uid, file = %p.file.display(), "starting pod worker");
            let adopted = self.adoptable.remove(&p.uid);
            let gate = self.gates.get(&p.name);
            let w = PodWorker::spawn(self.ctx.clone(), p.clone(), gate, adopted);
            self.workers.insert(p.uid.clone(), w);
        }
        self.publish();
    }

    fn check_mounted_files(&mut self) {
        for p in self.desired.pods.values() {
            let Some(w) = self.workers.get(&p.uid) else {
                continue;
            };
            // No baseline yet: the pod's containers have not been started.
            let Some(base) = w.mounted_files() else {
                continue;
            };
            let now = self.ctx.resolver.host_paths.mounted_files(p.spec());
            let changed = base.changed(&now);
            if changed.is_empty() {
                continue;
            }
            let verdict =
                fileuse::FileUse::of(p.spec(), p.pod.metadata.annotations.as_ref()).judge(&changed);
            let names = |v: &[std::path::PathBuf]| {
                v.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !verdict.reloaded.is_empty() {
                tracing::info!(pod = %p.name, files = %names(&verdict.reloaded), "mounted files changed that the component reloads by itself: no restart for them");
            }
            if !verdict.unused.is_empty() {
                tracing::info!(pod = %p.name, files = %names(&verdict.unused), "mounted files changed that no container's command line uses: no restart for them");
            }
            if verdict.restart.is_empty() {
                w.set_mounted_files(now);
            } else {
                tracing::info!(pod = %p.name, files = %names(&verdict.restart), "mounted files changed: restarting the pod's containers");
                w.restart_for_mounted_files(now);
            }
        }
    }

    fn reap(&mut self) {
        let desired_uids: BTreeSet<&str> =
            self.desired.pods.values().map(|p| p.uid.as_str()).collect();
        let before = self.workers.len();
        let mut gone: Vec<(String, String, String)> = Vec::new();
        self.workers.retain(|uid, w| {
            // A worker told to terminate is done once finished, even when its UID is desired
            // again: a manifest rolled back to its previous content (`manifest regenerate`)
            // while that version's worker was still stopping gets a fresh worker from `sync`.
            let done = w.is_finished() && w.snapshot().lifecycle == Lifecycle::Terminated;
            let keep = !(done && (w.is_terminating() || !desired_uids.contains(uid.as_str())));
            if !keep {
                gone.push((
                    w.snapshot().pod.namespace.clone(),
                    w.name.clone(),
                    uid.clone(),
                ));
            }
            keep
        });
        for (ns, name, uid) in gone {
            let current = self.desired.pods.get(&name).map(|p| p.uid.as_str());
            prune_pod_logs(
                &self.cfg.root.path(&self.cfg.log_dir),
                &ns,
                &name,
                &uid,
                current,
            );
        }
        if self.workers.len() != before {
            self.gates.prune();
            let missing = self
                .desired
                .pods
                .values()
                .any(|p| !self.workers.contains_key(&p.uid));
            if missing {
                self.sync();
            } else {
                self.publish();
            }
        }
    }

    fn publish(&self) {
        let desired_uids: BTreeSet<&str> =
            self.desired.pods.values().map(|p| p.uid.as_str()).collect();
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        reg.problems = self.desired.problems.clone();
        reg.pods = self
            .workers
            .values()
            .map(|w| {
                let h = w.status_handle();
                RegisteredPod {
                    name: w.name.clone(),
                    desired: desired_uids.contains(w.uid.as_str()),
                    snapshot: Arc::new(move || h.lock().unwrap_or_else(|e| e.into_inner()).clone()),
                }
            })
            .collect();
        drop(reg);
        changes::bump();
    }

    async fn shutdown(self) {
        let stop = self.cfg.stop_pods_on_exit;
        tracing::info!(
            "agent stopping; {}",
            if stop {
                "stopping all pods"
            } else {
                "leaving pods running"
            }
        );
        let mut workers: BTreeMap<String, PodWorker> = self.workers.into_iter().collect();
        for w in workers.values_mut() {
            if stop {
                w.terminate(None);
            } else {
                w.detach();
            }
        }
        for (_, w) in workers {
            w.join().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::worker::tests::{Behaviour, FakeProber, FakeRuntime};
    use std::path::{Path, PathBuf};

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 3\n  containers:\n  - name: c\n    image: x\n    command: [sleep, 'ARG']\n";

    /// Runs the agent on `root` in the background; sending on the returned channel stops it.
    fn spawn_agent(
        root: &Path,
        stop_pods_on_exit: bool,
        rt: &Arc<FakeRuntime>,
    ) -> (
        tokio::task::JoinHandle<Result<(), AgentError>>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        spawn_agent_with(cfg(root, stop_pods_on_exit), rt)
    }

    fn spawn_agent_with(
        cfg: AgentConfig,
        rt: &Arc<FakeRuntime>,
    ) -> (
        tokio::task::JoinHandle<Result<(), AgentError>>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(run(
            cfg,
            rt.clone(),
            Arc::new(FakeProber::default()),
            async move {
                let _ = rx.await;
            },
        ));
        (agent, tx)
    }

    fn cfg(root: &Path, stop: bool) -> AgentConfig {
        AgentConfig {
            root: crate::fs::HostRoot::new(Some(root)),
            manifest_root: crate::fs::HostRoot::new(Some(root)),
            manifest_path: PathBuf::from("/etc/kubernetes/manifests"),
            file_check_frequency: Duration::from_secs(20),
            settle_window: Duration::from_millis(200),
            healthz: None,
            node_name: "n1".into(),
            node_ip: "127.0.0.1".parse().unwrap(),
            state_dir: "/var/lib/plinth".into(),
            log_dir: "/var/log/pods".into(),
            bin_path: vec!["/bin".into(), "/usr/bin".into()],
            image_commands: Default::default(),
            stop_pods_on_exit: stop,
            ignored_fields: vec![],
            kubeconfig: None,
        }
    }

    async fn eventually(what: &str, f: impl Fn() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    fn count(rt: &FakeRuntime, prefix: &str) -> usize {
        rt.texts().iter().filter(|t| t.starts_with(prefix)).count()
    }

    #[tokio::test]
    async fn reacts_to_edits_bad_files_and_removal_then_adopts_after_restart() {
        let d = tempfile::tempdir().unwrap();
        let mdir = d.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&mdir).unwrap();
        std::fs::write(mdir.join("web.yaml"), POD.replace("ARG", "100")).unwrap();
        let rt = FakeRuntime::new(|_| Behaviour::Forever { ignore_term: false });
        let (agent, tx) = spawn_agent(d.path(), false, &rt);
        eventually("first start", || count(&rt, "start c 0 sleep 100") == 1).await;
        // Edit: the old one is stopped before the new one starts.
        std::fs::write(mdir.join("web.yaml"), POD.replace("ARG", "200")).unwrap();
        eventually("replacement", || count(&rt, "start c 0 sleep 200") == 1).await;
        let texts = rt.texts();
        let term = texts.iter().position(|t| t == "term c").unwrap();
        let new = texts
            .iter()
            .position(|t| t == "start c 0 sleep 200")
            .unwrap();
        assert!(term < new, "{texts:?}");
        // Garbage, wrong kind, duplicates: the pod keeps running.
        std::fs::write(
            mdir.join("web.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: [",
        )
        .unwrap();
        std::fs::write(mdir.join("dup.yaml"), POD.replace("ARG", "300")).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(&rt, "start"), 2, "{:?}", rt.texts());
        assert_eq!(count(&rt, "term"), 1);
        std::fs::remove_file(mdir.join("dup.yaml")).unwrap();
        std::fs::write(mdir.join("web.yaml"), POD.replace("ARG", "200")).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(&rt, "start"), 2, "identical content again: no-op");
        // Agent exits: pods stay.
        tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
        assert_eq!(count(&rt, "term"), 1);
        // A new agent adopts the running process instead of starting another.
        let (agent, tx) = spawn_agent(d.path(), true, &rt);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count(&rt, "start"),
            2,
            "adopted, not restarted: {:?}",
            rt.texts()
        );
        // Removal stops the pod.
        std::fs::remove_file(mdir.join("web.yaml")).unwrap();
        eventually("removal", || count(&rt, "term") == 2).await;
        tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
        let state = d.path().join("var/lib/plinth/pods");
        assert_eq!(
            std::fs::read_dir(state).unwrap().count(),
            0,
            "state forgotten"
        );
    }

    /// Regression (issue 8, item 1): the agent creates a missing `DirectoryOrCreate`
    /// hostPath when the pod starts; the relists that follow must not see that as a mounted
    /// file change (kube-apiserver was restarted with MountedFileChanged ~20 s after init).
    /// A real change of a mounted file still restarts the pod.
    #[tokio::test]
    async fn no_spurious_mounted_file_restart_after_hostpath_dirs_created() {
        let d = tempfile::tempdir().unwrap();
        let mdir = d.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&mdir).unwrap();
        let pod = POD.replace("ARG", "100")
            + "    volumeMounts:\n    - {name: ca, mountPath: /etc/ca-certificates, readOnly: true}\n    - {name: local, mountPath: /usr/local/share/ca-certificates, readOnly: true}\n  volumes:\n  - name: ca\n    hostPath: {path: /etc/ca-certificates, type: DirectoryOrCreate}\n  - name: local\n    hostPath: {path: /usr/local/share/ca-certificates, type: DirectoryOrCreate}\n";
        std::fs::write(mdir.join("web.yaml"), pod).unwrap();
        let rt = FakeRuntime::new(|_| Behaviour::Forever { ignore_term: false });
        let mut c = cfg(d.path(), true);
        c.file_check_frequency = Duration::from_millis(50);
        let (agent, tx) = spawn_agent_with(c, &rt);
        eventually("first start", || count(&rt, "start c 0 sleep 100") == 1).await;
        assert!(d.path().join("etc/ca-certificates").is_dir());
        assert!(d.path().join("usr/local/share/ca-certificates").is_dir());
        // Many relist periods (each checks the mounted files).
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(count(&rt, "start"), 1, "restarted: {:?}", rt.texts());
        assert_eq!(count(&rt, "term"), 0, "{:?}", rt.texts());
        // A real change does restart it.
        std::fs::write(d.path().join("etc/ca-certificates/extra.pem"), "x").unwrap();
        eventually("restart for a real change", || {
            count(&rt, "start c 1 sleep 100") == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(&rt, "start"), 2, "once: {:?}", rt.texts());
        tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
    }

    #[test]
    fn old_pod_versions_lose_their_logs() {
        let d = tempfile::tempdir().unwrap();
        for dir in [
            "kube-system_etcd-n1_u1/etcd",
            "kube-system_etcd-n1_u2/etcd",
            "kube-system_etcd-n1_u3/etcd",
            "kube-system_etcd-n1-x_u9/etcd",
            "default_etcd-n1_u4/etcd",
        ] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        prune_pod_logs(d.path(), "kube-system", "etcd-n1", "u2", Some("u3"));
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "default_etcd-n1_u4",
                "kube-system_etcd-n1-x_u9",
                "kube-system_etcd-n1_u2",
                "kube-system_etcd-n1_u3"
            ]
        );
    }

    #[tokio::test]
    async fn orphans_of_a_previous_run_are_killed_when_their_manifest_changed() {
        let d = tempfile::tempdir().unwrap();
        let mdir = d.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&mdir).unwrap();
        std::fs::write(mdir.join("web.yaml"), POD.replace("ARG", "1")).unwrap();
        let rt = FakeRuntime::new(|_| Behaviour::Forever { ignore_term: false });
        let (agent, tx) = spawn_agent(d.path(), false, &rt);
        eventually("start", || count(&rt, "start") == 1).await;
        tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
        // Changed while the agent was down.
        std::fs::write(mdir.join("web.yaml"), POD.replace("ARG", "2")).unwrap();
        let (agent, tx) = spawn_agent(d.path(), true, &rt);
        eventually("replacement", || count(&rt, "start c 0 sleep 2") == 1).await;
        let texts = rt.texts();
        let term = texts
            .iter()
            .position(|t| t == "term c")
            .expect("orphan terminated");
        let new = texts.iter().position(|t| t == "start c 0 sleep 2").unwrap();
        assert!(term < new, "{texts:?}");
        tx.send(()).unwrap();
        agent.await.unwrap().unwrap();
        assert_eq!(count(&rt, "term"), 2, "stop-pods-on-exit stops the new one");
    }
}
