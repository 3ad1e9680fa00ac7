//! Worker tests: a fake runtime and prober under tokio's paused clock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::*;
use crate::agent::hostpath::HostPaths;
use crate::agent::pod::identify;
use crate::agent::source::parse_manifest;
use crate::fs::HostRoot;
use crate::runtime::{ContainerSpec, RuntimeError};

/// How a fake container behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    /// Exits with `code` after the duration.
    ExitAfter(Duration, i32),
    /// Runs until signalled; ignores SIGTERM if `ignore_term`.
    Forever { ignore_term: bool },
}

type BehaviourFn = dyn Fn(&ContainerSpec) -> Behaviour + Send + Sync;

/// A running fake container: its exit channel, its behaviour and its name.
type LiveContainer = (watch::Sender<Option<ExitStatus>>, Behaviour, String);

pub(crate) struct FakeRuntime {
    t0: tokio::time::Instant,
    pub events: Mutex<Vec<(Duration, String)>>,
    behaviour: Box<BehaviourFn>,
    live: Mutex<HashMap<String, LiveContainer>>,
    next_pid: Mutex<i32>,
}

impl FakeRuntime {
    pub(crate) fn new(
        f: impl Fn(&ContainerSpec) -> Behaviour + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(FakeRuntime {
            t0: tokio::time::Instant::now(),
            events: Mutex::new(vec![]),
            behaviour: Box::new(f),
            live: Mutex::new(HashMap::new()),
            next_pid: Mutex::new(100),
        })
    }

    fn log(&self, e: String) {
        self.events.lock().unwrap().push((self.t0.elapsed(), e));
    }

    /// Events whose text starts with `prefix`, with their times.
    pub(crate) fn times(&self, prefix: &str) -> Vec<Duration> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.starts_with(prefix))
            .map(|(t, _)| *t)
            .collect()
    }

    pub(crate) fn texts(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Ends a live container as if killed from outside (kill -9).
    pub(crate) fn crash(&self, name: &str) {
        let live = self.live.lock().unwrap();
        for (tx, _, n) in live.values() {
            if n == name && tx.borrow().is_none() {
                let _ = tx.send(Some(ExitStatus::Signaled(9)));
            }
        }
    }
}

impl Runtime for FakeRuntime {
    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, RuntimeError> {
        let b = (self.behaviour)(spec);
        let pid = {
            let mut p = self.next_pid.lock().unwrap();
            *p += 1;
            *p
        };
        let id = format!(
            "{}/{}/{}",
            spec.pod_uid, spec.container_name, spec.restart_count
        );
        let (tx, _) = watch::channel(None);
        if let Behaviour::ExitAfter(d, code) = b {
            let tx2 = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if tx2.borrow().is_none() {
                    let _ = tx2.send(Some(ExitStatus::Exited(code)));
                }
            });
        }
        self.live
            .lock()
            .unwrap()
            .insert(id.clone(), (tx, b, spec.container_name.clone()));
        self.log(format!(
            "start {} {} {}",
            spec.container_name,
            spec.restart_count,
            spec.argv.join(" ")
        ));
        Ok(ContainerHandle {
            id,
            pid,
            start_ticks: pid as u64,
            started_at: SystemTime::now(),
        })
    }

    fn wait(&self, handle: &ContainerHandle) -> BoxFuture<ExitStatus> {
        let rx = self
            .live
            .lock()
            .unwrap()
            .get(&handle.id)
            .map(|(tx, _, _)| tx.subscribe());
        Box::pin(async move {
            let Some(mut rx) = rx else {
                return ExitStatus::Unknown;
            };
            loop {
                if let Some(st) = *rx.borrow_and_update() {
                    return st;
                }
                if rx.changed().await.is_err() {
                    return ExitStatus::Unknown;
                }
            }
        })
    }

    fn signal(&self, handle: &ContainerHandle, signal: StopSignal) -> Result<(), RuntimeError> {
        let live = self.live.lock().unwrap();
        let Some((tx, b, name)) = live.get(&handle.id) else {
            return Ok(());
        };
        self.log(format!("{signal:?} {name}").to_lowercase());
        let ignore = matches!(b, Behaviour::Forever { ignore_term: true });
        if tx.borrow().is_none() {
            match signal {
                StopSignal::Term if !ignore => {
                    let _ = tx.send(Some(ExitStatus::Signaled(15)));
                }
                StopSignal::Kill => {
                    let _ = tx.send(Some(ExitStatus::Signaled(9)));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn is_running(&self, handle: &ContainerHandle) -> bool {
        self.live
            .lock()
            .unwrap()
            .get(&handle.id)
            .is_some_and(|(tx, _, _)| tx.borrow().is_none())
    }

    fn cleanup(&self, handle: &ContainerHandle) {
        self.log(format!(
            "cleanup {}",
            handle.id.split('/').nth(1).unwrap_or("")
        ));
    }
}

/// A prober answering from a table (container, kind) → outcome; Success by default.
#[derive(Default)]
pub(crate) struct FakeProber {
    pub answers: Mutex<HashMap<(String, String), ProbeOutcome>>,
}

impl FakeProber {
    pub(crate) fn set(&self, container: &str, kind: ProbeKind, o: ProbeOutcome) {
        self.answers
            .lock()
            .unwrap()
            .insert((container.into(), format!("{kind:?}")), o);
    }
}

impl Prober for FakeProber {
    fn probe(
        &self,
        _: &StaticPod,
        container: &str,
        kind: ProbeKind,
        _: &ProbeSpec,
    ) -> BoxFuture<ProbeOutcome> {
        let o = self
            .answers
            .lock()
            .unwrap()
            .get(&(container.to_string(), format!("{kind:?}")))
            .cloned()
            .unwrap_or(ProbeOutcome::Success);
        Box::pin(async move { o })
    }
}

pub(crate) struct Harness {
    pub rt: Arc<FakeRuntime>,
    pub prober: Arc<FakeProber>,
    pub ctx: Arc<WorkerCtx>,
    pub gates: Gates,
    _dir: tempfile::TempDir,
}

pub(crate) fn harness(f: impl Fn(&ContainerSpec) -> Behaviour + Send + Sync + 'static) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(Some(dir.path()));
    let rt = FakeRuntime::new(f);
    let prober = Arc::new(FakeProber::default());
    let resolver = Resolver {
        host_paths: HostPaths::new(root.clone(), Path::new("/var/lib/plinth")),
        root: root.clone(),
        bin_path: vec![PathBuf::from("/bin"), PathBuf::from("/usr/bin")],
        binary_cache: None,
        image_commands: Default::default(),
        node_name: "n".into(),
        node_ip: "127.0.0.1".parse().unwrap(),
        log_dir: "/var/log/pods".into(),
    };
    let ctx = Arc::new(WorkerCtx {
        runtime: rt.clone(),
        prober: prober.clone(),
        resolver: Arc::new(resolver),
        state: Arc::new(StateStore::new(&root, Path::new("/var/lib/plinth"))),
        offload_blocking: false,
    });
    Harness {
        rt,
        prober,
        ctx,
        gates: Gates::default(),
        _dir: dir,
    }
}

pub(crate) fn pod(name: &str, policy: &str, command: &str, extra: &str) -> StaticPod {
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: c\n    image: x\n    command: [{command}]\n{extra}"
    );
    let f = Path::new("/m/p.yaml");
    identify(parse_manifest(f, yaml.as_bytes()).unwrap(), "n", f).unwrap()
}

impl Harness {
    fn spawn(&mut self, p: StaticPod) -> PodWorker {
        let gate = self.gates.get(&p.name);
        PodWorker::spawn(self.ctx.clone(), p, gate, None)
    }
}

fn secs(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_secs()).collect()
}

fn gaps(v: &[Duration]) -> Vec<u64> {
    v.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
}

#[tokio::test(start_paused = true)]
async fn always_restarts_with_crashloop_backoff_delays() {
    let mut h = harness(|_| Behaviour::ExitAfter(Duration::ZERO, 1));
    let w = h.spawn(pod("a", "Always", "'false'", ""));
    tokio::time::sleep(Duration::from_secs(400)).await;
    let starts = h.rt.times("start c");
    // First restart immediate, then 10 s doubling, capped at 300 s.
    assert_eq!(gaps(&starts)[..6], [0, 10, 20, 40, 80, 160]);
    let s = w.snapshot();
    let c = &s.containers[0];
    assert_eq!(c.restart_count as usize, starts.len() - 1);
    assert!(
        matches!(&c.state, CState::Waiting { reason, .. } if reason == "CrashLoopBackOff"),
        "{:?}",
        c.state
    );
    assert_eq!(c.last.as_ref().unwrap().exit_code, 1);
    assert_eq!(c.last.as_ref().unwrap().reason, "Error");
    // Restart counts passed to the runtime are consecutive.
    let texts = h.rt.texts();
    let counts: Vec<&str> = texts
        .iter()
        .filter(|t| t.starts_with("start c"))
        .map(|t| t.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(counts[..4], ["0", "1", "2", "3"]);
}

#[tokio::test(start_paused = true)]
async fn never_exits_and_stays_completed() {
    let mut h = harness(|_| Behaviour::ExitAfter(Duration::from_secs(1), 0));
    let w = h.spawn(pod("b", "Never", "sleep, '1'", ""));
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(h.rt.times("start c").len(), 1);
    let s = w.snapshot();
    match &s.containers[0].state {
        CState::Terminated(t) => {
            assert_eq!(t.exit_code, 0);
            assert_eq!(t.reason, "Completed");
        }
        other => panic!("expected terminated, got {other:?}"),
    }
    assert_eq!(s.containers[0].restart_count, 0);
}

#[tokio::test(start_paused = true)]
async fn on_failure_backs_off_then_stops_after_success() {
    // `false` three times, then success.
    let n = Arc::new(Mutex::new(0));
    let n2 = n.clone();
    let mut h = harness(move |_| {
        let mut n = n2.lock().unwrap();
        *n += 1;
        Behaviour::ExitAfter(Duration::ZERO, if *n <= 3 { 1 } else { 0 })
    });
    let w = h.spawn(pod("c", "OnFailure", "'false'", ""));
    tokio::time::sleep(Duration::from_secs(200)).await;
    let starts = h.rt.times("start c");
    assert_eq!(secs(&starts), [0, 0, 10, 30]);
    let s = w.snapshot();
    assert!(matches!(&s.containers[0].state, CState::Terminated(t) if t.reason == "Completed"));
    assert_eq!(s.containers[0].restart_count, 3);
}

#[tokio::test(start_paused = true)]
async fn replacement_waits_for_the_old_pod_to_be_gone() {
    let mut h = harness(|spec| Behaviour::Forever {
        ignore_term: spec.argv.iter().any(|a| a == "old"),
    });
    let mut old = h.spawn(pod("r", "Always", "sleep, old", ""));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let new = h.spawn(pod("r", "Always", "sleep, new", ""));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.rt.times("start c").len(),
        1,
        "new pod must wait for the gate"
    );
    assert_eq!(new.snapshot().lifecycle, Lifecycle::Waiting);
    old.terminate(None);
    tokio::time::sleep(Duration::from_secs(30)).await;
    // The old process ignores SIGTERM: SIGKILL after the 5 s grace, then the new one starts.
    let term = h.rt.times("term c")[0];
    let kill = h.rt.times("kill c")[0];
    assert_eq!((kill - term).as_secs(), 5);
    let starts = h.rt.times("start c");
    assert_eq!(starts.len(), 2);
    assert!(
        starts[1] >= kill,
        "new started before the old one was killed"
    );
    assert!(h.rt.texts().iter().any(|t| t.ends_with("sleep new")));
    assert!(old.is_finished());
    assert_eq!(old.snapshot().lifecycle, Lifecycle::Terminated);
    assert_eq!(new.snapshot().lifecycle, Lifecycle::Running);
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_restarts_the_container() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let probe = "    livenessProbe:\n      exec: {command: ['true']}\n      periodSeconds: 10\n      failureThreshold: 3\n";
    h.prober.set(
        "c",
        ProbeKind::Liveness,
        ProbeOutcome::Failure("boom".into()),
    );
    let w = h.spawn(pod("l", "Always", "sleep, '1000'", probe));
    // Poll in 1 s steps until the restart; switch the probe to success right after it.
    let mut waited = 0;
    while h.rt.times("start c").len() < 2 && waited < 60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
    }
    h.prober
        .set("c", ProbeKind::Liveness, ProbeOutcome::Success);
    let starts = h.rt.times("start c");
    assert_eq!(starts.len(), 2);
    // failureThreshold 3 × periodSeconds 10: not before 20 s, not much after 30 s.
    let after = (starts[1] - starts[0]).as_secs();
    assert!((20..=31).contains(&after), "restarted after {after} s");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        h.rt.times("start c").len(),
        2,
        "healthy again: no more restarts"
    );
    assert_eq!(h.rt.times("term c").len(), 1);
    let s = w.snapshot();
    assert_eq!(s.containers[0].restart_count, 1);
    let last = s.containers[0].last.clone().unwrap();
    assert_eq!(last.exit_code, 143);
    assert!(last
        .message
        .unwrap()
        .contains("Liveness probe failed: boom"));
    assert!(matches!(s.containers[0].state, CState::Running { .. }));
}

#[tokio::test(start_paused = true)]
async fn readiness_feeds_ready() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let probe = "    readinessProbe:\n      tcpSocket: {port: 1}\n      periodSeconds: 1\n";
    h.prober.set(
        "c",
        ProbeKind::Readiness,
        ProbeOutcome::Failure("no".into()),
    );
    let w = h.spawn(pod("rd", "Always", "sleep, '1000'", probe));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!w.snapshot().containers[0].ready);
    assert!(w.snapshot().containers[0].started);
    h.prober
        .set("c", ProbeKind::Readiness, ProbeOutcome::Success);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(w.snapshot().containers[0].ready);
}

#[tokio::test(start_paused = true)]
async fn kill_9_restarts_immediately_then_backs_off() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let w = h.spawn(pod("k", "Always", "sleep, '1000'", ""));
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.rt.crash("c");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        h.rt.times("start c").len(),
        2,
        "first crash restarts at once"
    );
    let last = w.snapshot().containers[0].last.clone().unwrap();
    assert_eq!(last.exit_code, 137);
    h.rt.crash("c");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.rt.times("start c").len(), 2, "second crash waits 10 s");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(h.rt.times("start c").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn mounted_file_change_restarts_without_backoff() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let w = h.spawn(pod("m", "Always", "sleep, '1000'", ""));
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.restart_containers("MountedFileChanged");
    tokio::time::sleep(Duration::from_millis(10)).await;
    w.restart_containers("MountedFileChanged");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(h.rt.times("start c").len(), 3);
    let s = w.snapshot();
    assert_eq!(s.containers[0].restart_count, 2);
    assert_eq!(
        s.containers[0].last.as_ref().unwrap().reason,
        "MountedFileChanged"
    );
}

#[tokio::test(start_paused = true)]
async fn detach_leaves_processes_alone_and_adoption_reattaches() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let p = pod("d", "Always", "sleep, '1000'", "");
    let w = h.spawn(p.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.detach();
    w.join().await;
    assert!(h.rt.times("term").is_empty() && h.rt.times("kill").is_empty());
    // A new agent: state says the container runs; the runtime confirms; no new start.
    let store = StateStore::new(&h.ctx.resolver.root, Path::new("/var/lib/plinth"));
    let (pods, _) = store.load();
    assert_eq!(pods.len(), 1);
    let gate = h.gates.get(&p.name);
    let w2 = PodWorker::spawn(h.ctx.clone(), p, gate, Some(pods[0].clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.rt.times("start c").len(), 1, "adopted, not restarted");
    assert!(matches!(
        w2.snapshot().containers[0].state,
        CState::Running { .. }
    ));
    assert!(w2.snapshot().containers[0].handle.is_some());
}

#[tokio::test(start_paused = true)]
async fn orphans_are_terminated_and_only_live_ones_signalled() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let p = pod("o", "Always", "sleep, '1000'", "");
    let w = h.spawn(p.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.detach();
    w.join().await;
    let mut rec = h.ctx.state.get(&p.uid).unwrap();
    // A second recorded container whose process is not ours any more (pid reused).
    rec.containers.insert(
        "ghost".into(),
        PersistedContainer {
            handle: Some(ContainerHandle {
                id: "not-ours".into(),
                pid: 1,
                start_ticks: 1,
                started_at: SystemTime::now(),
            }),
            ..Default::default()
        },
    );
    let gate = h.gates.get(&p.name);
    let o = PodWorker::spawn_orphan(h.ctx.clone(), rec, gate);
    o.join().await;
    assert_eq!(
        h.rt.texts()
            .iter()
            .filter(|t| t.starts_with("term"))
            .count(),
        1
    );
    assert!(h.ctx.state.get(&p.uid).is_none());
}

#[tokio::test(start_paused = true)]
async fn bad_pod_reports_config_error_and_stays_pending() {
    let mut h = harness(|_| Behaviour::Forever { ignore_term: false });
    let w = h.spawn(pod("e", "Always", "no-such-binary-xyz", ""));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.rt.times("start").is_empty());
    match &w.snapshot().containers[0].state {
        CState::Waiting { reason, message } => {
            assert_eq!(reason, "ExecutableNotFound");
            assert!(message.as_ref().unwrap().contains("no-such-binary-xyz"));
        }
        s => panic!("{s:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_to_completion_first() {
    let mut h = harness(|spec| {
        if spec.container_name == "init" {
            Behaviour::ExitAfter(Duration::from_secs(2), 0)
        } else {
            Behaviour::Forever { ignore_term: false }
        }
    });
    let extra = "  initContainers:\n  - name: init\n    image: x\n    command: ['true']\n";
    let w = h.spawn(pod("i", "Always", "sleep, '1000'", extra));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!w.snapshot().initialized);
    assert!(
        h.rt.times("start c").is_empty(),
        "main container waits for init"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let init = h.rt.times("start init");
    let main = h.rt.times("start c");
    assert_eq!(init.len(), 1);
    assert_eq!(main.len(), 1);
    assert!(main[0] >= init[0] + Duration::from_secs(2));
    let s = w.snapshot();
    assert!(s.initialized);
    assert!(
        matches!(&s.init_containers[0].state, CState::Terminated(t) if t.reason == "Completed")
    );
}

/// Issue 10: after a rollback the restored pod version's container appended to the 0.log of
/// a dead instance. A container starting where instance files already exist (agent restart
/// without state, a pod version whose log dir survived) continues after the highest one.
#[tokio::test(start_paused = true)]
async fn log_file_names_never_reused_across_instances() {
    let seen: Arc<Mutex<Vec<(u32, PathBuf)>>> = Arc::default();
    let seen2 = seen.clone();
    let mut h = harness(move |spec| {
        // The log shim creates the instance's file when it starts.
        std::fs::create_dir_all(spec.log_path.parent().unwrap()).unwrap();
        std::fs::write(&spec.log_path, "").unwrap();
        seen2
            .lock()
            .unwrap()
            .push((spec.restart_count, spec.log_path.clone()));
        Behaviour::ExitAfter(Duration::ZERO, 1)
    });
    let p = pod("a", "Always", "'false'", "");
    let dir = h.ctx.resolver.container_log_dir(&p, "c");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0.log"), "dead instance 0\n").unwrap();
    std::fs::write(dir.join("1.log"), "dead instance 1\n").unwrap();
    let w = h.spawn(p);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    let counts: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(counts[..3], [2, 3, 4], "{seen:?}");
    for (n, path) in &seen {
        assert_eq!(path, &dir.join(format!("{n}.log")));
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("0.log")).unwrap(),
        "dead instance 0\n"
    );
    assert_eq!(
        w.snapshot().containers[0].restart_count,
        *counts.last().unwrap()
    );
}

/// Issue 10 item 1: kube-apiserver closes its port at once on SIGTERM but may take its whole
/// grace period to exit, leaving the node without an apiserver. A container whose probe port
/// stops accepting connections after SIGTERM is killed after the short drain; one that keeps
/// serving (or was never serving) gets its full grace period, as before.
#[tokio::test(start_paused = true)]
async fn stopped_serving_after_sigterm_is_killed_after_the_drain_not_the_grace() {
    let probe = "    readinessProbe:\n      tcpSocket: {port: 6443}\n      periodSeconds: 1\n";
    for closes_port in [true, false] {
        let mut h = harness(|_| Behaviour::Forever { ignore_term: true });
        let mut w = h.spawn(pod("s", "Always", "sleep, '1000'", probe));
        tokio::time::sleep(Duration::from_secs(2)).await;
        w.terminate(None);
        // The worker checks the port, sends SIGTERM; then the process closes its port.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(h.rt.times("term c").len(), 1, "SIGTERM sent");
        if closes_port {
            h.prober.set(
                "c",
                ProbeKind::Readiness,
                ProbeOutcome::Failure("connection refused".into()),
            );
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        let term = h.rt.times("term c")[0];
        let kill = h.rt.times("kill c")[0];
        let waited = kill - term;
        if closes_port {
            assert!(
                waited >= STOPPED_SERVING_DRAIN && waited < Duration::from_secs(2),
                "killed {waited:?} after SIGTERM (port closed: drain, not the 5 s grace)"
            );
        } else {
            assert_eq!(waited.as_secs(), 5, "still serving: the whole grace period");
        }
    }
}
