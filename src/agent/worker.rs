//! Pod workers: one tokio task per pod UID with a one-way lifecycle
//! `waiting → starting → running → terminating → terminated`.
//!
//! - **Start gate.** Workers of the same pod name share a FIFO lock; a worker holds it from
//!   before its first container starts until its last container is gone, so on a change the
//!   old pod is fully terminated before the new one starts.
//! - **Containers.** Each container has its own task: start through the runtime, supervise
//!   (exit, probes, commands), restart per `restartPolicy` with CrashLoopBackOff delays from
//!   [`crate::backoff`]; a failing liveness (or startup) probe kills and restarts it; the
//!   readiness probe feeds `ready`. Init containers run first, in order, to completion.
//! - **Termination.** SIGTERM to the container's tree, SIGKILL after the grace period
//!   (`terminationGracePeriodSeconds`, default 30 s).
//! - **Detach.** When the agent exits without `--stop-pods-on-exit`, workers let go of their
//!   processes without signalling them; the state dir lets the next agent adopt them.
//!
//! Time comes from tokio (`tokio::time::Instant`), so the logic runs under paused time in
//! tests with a fake runtime and prober.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Container;
use tokio::sync::mpsc;

use super::failures::ContainerFailures;
use super::hostpath::MountedFiles;
pub use super::model::Terminated;
use super::pod::StaticPod;
use super::resolve::{ResolveError, Resolver};
use super::state::{grace_seconds, PersistedContainer, PersistedPod, StateStore};
use crate::probe::{ProbeKind, ProbeOutcome, ProbeSpec, ProbeState, ProbeTransition};
use crate::runtime::{BoxFuture, ContainerHandle, ExitStatus, Runtime, RuntimeError, StopSignal};

#[path = "worker_machine.rs"]
pub mod machine;
use machine::{Action, ContainerMachine, Event};
pub use machine::{RestartPolicy, RestartReason, TerminationReason};

/// Runs probes; the real one is [`RealProber`], tests inject their own.
pub trait Prober: Send + Sync + 'static {
    /// Runs one probe of `container` in `pod`.
    fn probe(
        &self,
        pod: &StaticPod,
        container: &str,
        kind: ProbeKind,
        spec: &ProbeSpec,
    ) -> BoxFuture<ProbeOutcome>;
}

/// Runs probes with [`crate::probe::execute`].
#[derive(Debug, Default)]
pub struct RealProber;

impl Prober for RealProber {
    fn probe(
        &self,
        _: &StaticPod,
        _: &str,
        _: ProbeKind,
        spec: &ProbeSpec,
    ) -> BoxFuture<ProbeOutcome> {
        let spec = spec.clone();
        Box::pin(async move { crate::probe::execute(&spec).await })
    }
}

/// What every worker needs.
pub struct WorkerCtx {
    /// The container runtime.
    pub runtime: Arc<dyn Runtime>,
    /// The prober.
    pub prober: Arc<dyn Prober>,
    /// Container resolution.
    pub resolver: Arc<Resolver>,
    /// Persistent state.
    pub state: Arc<StateStore>,
    /// Run blocking calls (runtime start, fsynced state writes) on tokio's blocking pool.
    /// True in the agent; tests under a paused clock set false (the clock would otherwise
    /// jump ahead while a blocking call is in flight).
    pub offload_blocking: bool,
}

/// Runs `f` on the blocking pool when `offload`, else inline.
async fn blocking<R: Send + 'static>(
    offload: bool,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, tokio::task::JoinError> {
    if offload {
        tokio::task::spawn_blocking(f).await
    } else {
        Ok(f())
    }
}

/// The pod-level lifecycle (one way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Lifecycle {
    /// Waiting for the previous pod of the same name to terminate.
    Waiting,
    /// Preparing volumes, running init containers, starting containers.
    Starting,
    /// Containers started.
    Running,
    /// Stopping its containers.
    Terminating,
    /// All containers gone.
    Terminated,
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CState {
    /// Not running: `ContainerCreating`, `CrashLoopBackOff`, or a configuration error.
    Waiting {
        /// Reason.
        reason: String,
        /// Message.
        message: Option<String>,
    },
    /// Running since.
    Running {
        /// Start time.
        started_at: SystemTime,
    },
    /// Ended and not restarted.
    Terminated(Terminated),
}

/// What status reports about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSnapshot {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Current state.
    pub state: CState,
    /// The previous instance's end.
    pub last: Option<Terminated>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Readiness.
    pub ready: bool,
    /// Started (startup probe passed, or none).
    pub started: bool,
    /// The running instance.
    pub handle: Option<ContainerHandle>,
    /// Typed failure facts (start failures, quick exits) for the status API.
    pub failures: ContainerFailures,
}

impl ContainerSnapshot {
    fn new(c: &Container) -> Self {
        ContainerSnapshot {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            state: CState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last: None,
            restart_count: 0,
            ready: false,
            started: false,
            handle: None,
            failures: ContainerFailures::default(),
        }
    }
}

/// What status reports about one pod.
#[derive(Debug, Clone)]
pub struct PodSnapshot {
    /// The pod.
    pub pod: Arc<StaticPod>,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// A pod-level message (configuration error, waiting for the previous version).
    pub message: Option<String>,
    /// Init containers.
    pub init_containers: Vec<ContainerSnapshot>,
    /// Containers.
    pub containers: Vec<ContainerSnapshot>,
    /// When the worker first started containers.
    pub start_time: Option<SystemTime>,
    /// All init containers completed.
    pub initialized: bool,
}

type Shared = Arc<Mutex<PodSnapshot>>;

/// Commands to a pod worker.
#[derive(Debug, Clone)]
pub enum PodCommand {
    /// Stop the pod (grace override, else the pod's terminationGracePeriodSeconds).
    Terminate(Option<Duration>),
    /// Restart all containers now (new instances, restartCount+1, `reason` in lastState).
    RestartContainers(String),
    /// Let go of the processes without signalling them (agent exit).
    Detach,
}

#[derive(Debug, Clone)]
enum Ctl {
    Stop(Duration),
    Restart(RestartReason),
    Detach,
}

/// A running pod worker.
pub struct PodWorker {
    /// Pod UID.
    pub uid: String,
    /// Full pod name.
    pub name: String,
    tx: mpsc::UnboundedSender<PodCommand>,
    shared: Shared,
    mounted: Baseline,
    join: tokio::task::JoinHandle<()>,
    terminating: bool,
}

/// The mounted files a pod's containers were started with (`None` until its volumes are
/// prepared).
type Baseline = Arc<Mutex<Option<MountedFiles>>>;

impl PodWorker {
    /// Spawns the worker of `pod`, gated by `gate` (shared by all workers of this name),
    /// adopting the containers of `adopted` that the runtime confirms still run.
    pub fn spawn(
        ctx: Arc<WorkerCtx>,
        pod: StaticPod,
        gate: Arc<tokio::sync::Mutex<()>>,
        adopted: Option<PersistedPod>,
    ) -> PodWorker {
        let pod = Arc::new(pod);
        let spec = pod.spec();
        let shared: Shared = Arc::new(Mutex::new(PodSnapshot {
            pod: pod.clone(),
            lifecycle: Lifecycle::Waiting,
            message: None,
            init_containers: spec
                .init_containers
                .iter()
                .flatten()
                .map(ContainerSnapshot::new)
                .collect(),
            containers: spec.containers.iter().map(ContainerSnapshot::new).collect(),
            start_time: None,
            initialized: spec.init_containers.as_ref().is_none_or(|v| v.is_empty()),
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let mounted: Baseline = Arc::default();
        let join = tokio::spawn(run_pod(
            ctx,
            pod.clone(),
            gate,
            adopted,
            rx,
            shared.clone(),
            mounted.clone(),
        ));
        PodWorker {
            uid: pod.uid.clone(),
            name: pod.name.clone(),
            tx,
            shared,
            mounted,
            join,
            terminating: false,
        }
    }

    /// Spawns a worker that only terminates what `orphan` recorded (a pod no manifest
    /// defines any more, or an older version of one): every recorded process the runtime
    /// confirms is still the one it started gets SIGTERM, then SIGKILL after the grace.
    pub fn spawn_orphan(
        ctx: Arc<WorkerCtx>,
        orphan: PersistedPod,
        gate: Arc<tokio::sync::Mutex<()>>,
    ) -> PodWorker {
        let mut pod: k8s_openapi::api::core::v1::Pod = Default::default();
        pod.metadata.name = Some(orphan.name.clone());
        pod.metadata.namespace = Some(orphan.namespace.clone());
        pod.metadata.uid = Some(orphan.uid.clone());
        let sp = Arc::new(StaticPod {
            uid: orphan.uid.clone(),
            name: orphan.name.clone(),
            namespace: orphan.namespace.clone(),
            file: orphan.file.clone(),
            pod,
        });
        let shared: Shared = Arc::new(Mutex::new(PodSnapshot {
            pod: sp.clone(),
            lifecycle: Lifecycle::Terminating,
            message: Some("orphan from a previous agent run: terminating".into()),
            init_containers: vec![],
            containers: vec![],
            start_time: None,
            initialized: true,
        }));
        let (tx, _rx) = mpsc::unbounded_channel();
        let sh = shared.clone();
        let join = tokio::spawn(async move {
            let _guard = gate.lock_owned().await;
            let grace = Duration::from_secs(orphan.grace_seconds);
            let mut stops = Vec::new();
            for (name, h) in orphan.handles() {
                if !ctx.runtime.is_running(h) {
                    // Gone while no agent watched it (agent and pods killed): release
                    // what it held (its cgroup).
                    ctx.runtime.cleanup(h);
                    continue;
                }
                tracing::info!(pod = %orphan.name, container = %name, pid = h.pid, "terminating orphaned container");
                let ctx = ctx.clone();
                let h = h.clone();
                stops.push(tokio::spawn(async move {
                    let mut exit = ctx.runtime.wait(&h);
                    stop_instance(&ctx, &h, grace, &mut exit, None).await;
                    ctx.runtime.cleanup(&h);
                }));
            }
            for s in stops {
                let _ = s.await;
            }
            ctx.state.remove(&orphan.uid);
            lock(&sh).lifecycle = Lifecycle::Terminated;
        });
        PodWorker {
            uid: sp.uid.clone(),
            name: sp.name.clone(),
            tx,
            shared,
            mounted: Arc::default(),
            join,
            terminating: true,
        }
    }

    /// Asks the worker to terminate the pod (idempotent).
    pub fn terminate(&mut self, grace: Option<Duration>) {
        if !self.terminating {
            self.terminating = true;
            let _ = self.tx.send(PodCommand::Terminate(grace));
        }
    }

    /// True once terminate was requested.
    pub fn is_terminating(&self) -> bool {
        self.terminating
    }

    /// Restarts the pod's containers (e.g. a mounted file changed).
    pub fn restart_containers(&self, reason: &str) {
        let _ = self
            .tx
            .send(PodCommand::RestartContainers(reason.to_string()));
    }

    /// The mounted configuration files the containers were started with; `None` until the
    /// pod's volumes are prepared (nothing runs yet, so no file change can matter).
    pub fn mounted_files(&self) -> Option<MountedFiles> {
        self.mounted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes `now` as the baseline without restarting (the changes need none).
    pub fn set_mounted_files(&self, now: MountedFiles) {
        *self.mounted.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }

    /// Restarts the pod's containers because mounted files changed; `now` becomes the
    /// baseline (what the new instances start with).
    pub fn restart_for_mounted_files(&self, now: MountedFiles) {
        self.set_mounted_files(now);
        self.restart_containers("MountedFileChanged");
    }

    /// Lets go of the processes without signalling them.
    pub fn detach(&self) {
        let _ = self.tx.send(PodCommand::Detach);
    }

    /// The current status.
    pub fn snapshot(&self) -> PodSnapshot {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A shared handle on the worker's live status (for the status server).
    pub fn status_handle(&self) -> Arc<Mutex<PodSnapshot>> {
        self.shared.clone()
    }

    /// True when the worker task has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the worker task to end.
    pub async fn join(self) {
        let _ = self.join.await;
    }
}

/// Locks a worker's snapshot to change it (tells the API sync, [`super::changes`]).
fn lock(s: &Shared) -> std::sync::MutexGuard<'_, PodSnapshot> {
    super::changes::bump();
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn run_pod(
    ctx: Arc<WorkerCtx>,
    pod: Arc<StaticPod>,
    gate: Arc<tokio::sync::Mutex<()>>,
    adopted: Option<PersistedPod>,
    mut rx: mpsc::UnboundedReceiver<PodCommand>,
    shared: Shared,
    mounted: Baseline,
) {
    // 1. The start gate: the previous pod of this name must be gone.
    let Some(guard) = acquire_gate(&gate, &mut rx, &shared).await else {
        return;
    };
    {
        let mut s = lock(&shared);
        s.lifecycle = Lifecycle::Starting;
        s.message = None;
    }
    // 2. Pod-level preparation (hostNetwork, volumes), retried until it works.
    if !prepare_pod(&ctx, &pod, adopted.as_ref(), &mut rx, &shared).await {
        return;
    }
    // The mounted-file baseline: taken now that hostPath volumes exist (created ones
    // included), i.e. over exactly what the containers are started with.
    *mounted.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(ctx.resolver.host_paths.mounted_files(pod.spec()));
    lock(&shared).start_time = Some(SystemTime::now());
    let adopted_containers = adopted.map(|a| a.containers).unwrap_or_default();
    let grace = Duration::from_secs(grace_seconds(&pod));

    // 3. Init containers, in order, unless the main containers are already running.
    let pod_run = PodRun {
        ctx: &ctx,
        pod: &pod,
        shared: &shared,
        grace,
    };
    match pod_run.init_containers(&adopted_containers, &mut rx).await {
        InitEnd::Done => {}
        InitEnd::Detached => return,
        InitEnd::Failed => {
            finish(&ctx, &pod, &shared);
            drop(guard);
            return;
        }
    }
    {
        let mut s = lock(&shared);
        s.initialized = true;
        s.lifecycle = Lifecycle::Running;
    }

    // 4. Main containers, one task each, until the pod is stopped (5.) or let go of.
    if pod_run.main_containers(&adopted_containers, &mut rx).await {
        finish(&ctx, &pod, &shared);
    }
    drop(guard);
}

/// Waits for the start gate of the pod's name; `None` when the pod was stopped (or let go
/// of) meanwhile, with the pod marked terminated.
async fn acquire_gate(
    gate: &Arc<tokio::sync::Mutex<()>>,
    rx: &mut mpsc::UnboundedReceiver<PodCommand>,
    shared: &Shared,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    if let Ok(g) = gate.clone().try_lock_owned() {
        return Some(g);
    }
    lock(shared).message = Some("waiting for the previous version of this pod to terminate".into());
    loop {
        tokio::select! {
            g = gate.clone().lock_owned() => return Some(g),
            cmd = rx.recv() => match cmd {
                Some(PodCommand::RestartContainers(_)) => continue,
                _ => {
                    lock(shared).lifecycle = Lifecycle::Terminated;
                    return None;
                }
            },
        }
    }
}

/// Prepares the pod (hostNetwork, volumes), retrying with a doubling delay (1 s to 60 s)
/// until it works. False when the pod was stopped or let go of meanwhile (it is then marked
/// terminated). Adopted containers that still run are adopted despite a failure.
async fn prepare_pod(
    ctx: &WorkerCtx,
    pod: &StaticPod,
    adopted: Option<&PersistedPod>,
    rx: &mut mpsc::UnboundedReceiver<PodCommand>,
    shared: &Shared,
) -> bool {
    let mut delay = Duration::from_secs(1);
    let adopted_live = adopted.is_some_and(|a| a.handles().any(|(_, h)| ctx.runtime.is_running(h)));
    loop {
        let e = match ctx.resolver.prepare_pod(pod) {
            Ok(()) => {
                lock(shared).message = None;
                return true;
            }
            Err(e) if adopted_live => {
                // Its processes already run: adopt them anyway, report the problem.
                tracing::warn!(pod = %pod.name, "adopting running containers despite: {e}");
                return true;
            }
            Err(e) => e,
        };
        tracing::warn!(pod = %pod.name, "cannot start pod: {e}");
        {
            let mut guard = lock(shared);
            let s = &mut *guard;
            s.message = Some(e.to_string());
            for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
                c.state = CState::Waiting {
                    reason: e.reason().into(),
                    message: Some(e.to_string()),
                };
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            cmd = rx.recv() => match cmd {
                Some(PodCommand::RestartContainers(_)) => {}
                Some(PodCommand::Terminate(_)) => {
                    // Nothing of this pod runs (adopted processes are gone).
                    lock(shared).lifecycle = Lifecycle::Terminated;
                    ctx.state.remove(&pod.uid);
                    return false;
                }
                Some(PodCommand::Detach) | None => {
                    lock(shared).lifecycle = Lifecycle::Terminated;
                    return false;
                }
            },
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// How the init containers ended.
enum InitEnd {
    /// All completed (or none had to run): start the main containers.
    Done,
    /// Let go of (agent exit).
    Detached,
    /// One failed for good or the pod was stopped: the pod does not run.
    Failed,
}

/// What the steps of a started pod share.
struct PodRun<'a> {
    ctx: &'a Arc<WorkerCtx>,
    pod: &'a Arc<StaticPod>,
    shared: &'a Shared,
    /// The pod's termination grace period.
    grace: Duration,
}

impl PodRun<'_> {
    fn container_run(&self, index: usize, init: bool) -> ContainerRun {
        ContainerRun {
            ctx: self.ctx.clone(),
            pod: self.pod.clone(),
            index,
            init,
            shared: self.shared.clone(),
        }
    }

    /// Runs the init containers in order, each to completion, unless a main container was
    /// adopted (the pod already ran).
    async fn init_containers(
        &self,
        adopted: &BTreeMap<String, PersistedContainer>,
        rx: &mut mpsc::UnboundedReceiver<PodCommand>,
    ) -> InitEnd {
        let spec = self.pod.spec();
        let main_adopted = spec.containers.iter().any(|c| {
            adopted
                .get(&c.name)
                .is_some_and(|p| p.handle.is_some() || p.last_exit.is_some())
        });
        if main_adopted {
            return InitEnd::Done;
        }
        for i in 0..spec.init_containers.as_ref().map_or(0, |v| v.len()) {
            let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
            let mut task = tokio::spawn(run_container(self.container_run(i, true), ctl_rx, None));
            let end = loop {
                tokio::select! {
                    end = &mut task => break end.unwrap_or(ContainerEnd::Stopped),
                    cmd = rx.recv() => match cmd {
                        Some(PodCommand::RestartContainers(_)) => {}
                        Some(PodCommand::Detach) | None => { let _ = ctl_tx.send(Ctl::Detach); }
                        Some(PodCommand::Terminate(g)) => { let _ = ctl_tx.send(Ctl::Stop(g.unwrap_or(self.grace))); }
                    },
                }
            };
            match end {
                ContainerEnd::Completed(true) => continue,
                ContainerEnd::Detached => return InitEnd::Detached,
                ContainerEnd::Stopped => return InitEnd::Failed,
                ContainerEnd::Completed(false) => {
                    // Failed for good (restartPolicy Never): the pod does not run.
                    let name = &spec
                        .init_containers
                        .as_ref()
                        .map_or("", |v| v[i].name.as_str());
                    lock(self.shared).message = Some(format!(
                        "init container {name} failed and restartPolicy is Never"
                    ));
                    wait_for_terminate(rx).await;
                    return InitEnd::Failed;
                }
            }
        }
        InitEnd::Done
    }

    /// Runs the main containers (adopting what `adopted` recorded) until the pod is stopped:
    /// then stops them all (5. termination) and returns true; false when they were let go of.
    async fn main_containers(
        &self,
        adopted: &BTreeMap<String, PersistedContainer>,
        rx: &mut mpsc::UnboundedReceiver<PodCommand>,
    ) -> bool {
        let mut ctls = Vec::new();
        let mut tasks = Vec::new();
        for (i, c) in self.pod.spec().containers.iter().enumerate() {
            let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
            tasks.push(tokio::spawn(run_container(
                self.container_run(i, false),
                ctl_rx,
                adopted.get(&c.name).cloned(),
            )));
            ctls.push(ctl_tx);
        }
        let (ctl, detach) = loop {
            match rx.recv().await {
                Some(PodCommand::RestartContainers(reason)) => {
                    for c in &ctls {
                        let _ = c.send(Ctl::Restart(RestartReason::from(reason.clone())));
                    }
                }
                Some(PodCommand::Detach) | None => break (Ctl::Detach, true),
                Some(PodCommand::Terminate(g)) => {
                    lock(self.shared).lifecycle = Lifecycle::Terminating;
                    break (Ctl::Stop(g.unwrap_or(self.grace)), false);
                }
            }
        };
        for c in &ctls {
            let _ = c.send(ctl.clone());
        }
        for t in tasks {
            let _ = t.await;
        }
        !detach
    }
}

fn finish(ctx: &WorkerCtx, pod: &StaticPod, shared: &Shared) {
    ctx.state.remove(&pod.uid);
    lock(shared).lifecycle = Lifecycle::Terminated;
    tracing::info!(pod = %pod.name, uid = %pod.uid, "pod terminated");
}

async fn wait_for_terminate(rx: &mut mpsc::UnboundedReceiver<PodCommand>) {
    loop {
        match rx.recv().await {
            Some(PodCommand::RestartContainers(_)) => continue,
            _ => return,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerEnd {
    /// Ended and not restarted (success?).
    Completed(bool),
    /// Stopped on request.
    Stopped,
    /// Let go of on request.
    Detached,
}

struct ContainerRun {
    ctx: Arc<WorkerCtx>,
    pod: Arc<StaticPod>,
    index: usize,
    init: bool,
    shared: Shared,
}

impl ContainerRun {
    fn container(&self) -> &Container {
        let spec = self.pod.spec();
        if self.init {
            &spec.init_containers.as_ref().expect("init container index")[self.index]
        } else {
            &spec.containers[self.index]
        }
    }

    fn update(&self, f: impl FnOnce(&mut ContainerSnapshot)) {
        let mut s = lock(&self.shared);
        let c = if self.init {
            s.init_containers.get_mut(self.index)
        } else {
            s.containers.get_mut(self.index)
        };
        if let Some(c) = c {
            f(c);
            if c.ready {
                c.failures.instance_ready = true;
            }
        }
    }

    /// Records the container in the state dir (off the async thread: it fsyncs).
    async fn persist(&self, f: impl FnOnce(&mut PersistedContainer) + Send + 'static) {
        if self.init {
            return;
        }
        let name = self.container().name.clone();
        let state = self.ctx.state.clone();
        let pod = self.pod.clone();
        let n = name.clone();
        let r = blocking(self.ctx.offload_blocking, move || {
            state.update_container(&pod, &n, f)
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(pod = %self.pod.name, container = %name, "cannot persist state: {e}")
            }
            Err(e) => {
                tracing::warn!(pod = %self.pod.name, container = %name, "cannot persist state: {e}")
            }
        }
    }
}

/// How supervising a running instance ended.
enum Outcome {
    Exited(ExitStatus),
    Stop(Duration),
    Restart(RestartReason),
    Unhealthy(String),
    Detach,
}

/// Runs one container: the effects of the decisions its [`ContainerMachine`] makes.
async fn run_container(
    run: ContainerRun,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    adopted: Option<PersistedContainer>,
) -> ContainerEnd {
    let mut machine = ContainerMachine::new(
        RestartPolicy::parse(run.pod.spec().restart_policy.as_deref()),
        run.init,
        adopted.as_ref().map_or(0, |a| a.restart_count),
        adopted.as_ref().and_then(|a| a.last_exit.clone()),
        now(),
    );
    run.update(|c| {
        c.restart_count = machine.restart_count();
        c.last = machine.last().cloned();
    });
    let (mut current, recorded) = adopt(&run, adopted.as_ref());
    let mut actions = match recorded {
        Some((term, success)) => machine.step(Event::RecordedExit { term, success }, now()),
        None => vec![Action::Start],
    };
    loop {
        let mut next = None;
        for action in actions {
            match action {
                Action::ShowLast(t) => run.update(|c| c.last = Some(t)),
                Action::ShowTerminated(t) => run.update(|c| c.state = CState::Terminated(t)),
                Action::PersistExit(t) => {
                    run.persist(move |p| {
                        p.handle = None;
                        p.last_exit = Some(t);
                    })
                    .await
                }
                Action::Park { success } => return park(&run, &mut ctl, success).await,
                Action::Wait {
                    delay,
                    crash_loop,
                    on_stop,
                } => {
                    if crash_loop {
                        let msg = format!(
                            "back-off {}s restarting failed container={} pod={}",
                            delay.as_secs(),
                            run.container().name,
                            run.pod.name
                        );
                        run.update(|c| {
                            c.state = CState::Waiting {
                                reason: "CrashLoopBackOff".into(),
                                message: Some(msg.clone()),
                            }
                        });
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        c = ctl.recv() => match c {
                            Some(Ctl::Restart(_)) => {}
                            Some(Ctl::Detach) | None => return ContainerEnd::Detached,
                            Some(Ctl::Stop(_)) => {
                                if let Some(t) = on_stop {
                                    run.update(|c| c.state = CState::Terminated(t));
                                }
                                return ContainerEnd::Stopped;
                            }
                        },
                    }
                    next = Some(Event::WaitOver);
                }
                Action::Start => {
                    match run_instance(&run, &mut machine, current.take(), &mut ctl).await {
                        Ok(event) => next = Some(event),
                        Err(end) => return end,
                    }
                }
            }
        }
        // Every step ends in Start, Wait or Park, so there is always a next event.
        let Some(event) = next else {
            return ContainerEnd::Stopped;
        };
        actions = machine.step(event, now());
    }
}

/// Adoption: re-attach to a live instance; an instance that ended while the agent was away
/// counts as an exit with unknown status. Returns the live instance, or the recorded exit to
/// decide about (with whether it counts as a success).
fn adopt(
    run: &ContainerRun,
    adopted: Option<&PersistedContainer>,
) -> (Option<ContainerHandle>, Option<(Terminated, bool)>) {
    let Some(a) = adopted else {
        return (None, None);
    };
    match &a.handle {
        Some(h) if run.ctx.runtime.is_running(h) => {
            tracing::info!(pod = %run.pod.name, container = %run.container().name, pid = h.pid, "adopted running container");
            (Some(h.clone()), None)
        }
        Some(h) => {
            // Ended while no agent watched it: release what it held (its cgroup)
            // before a new instance starts.
            run.ctx.runtime.cleanup(h);
            let term = Terminated {
                exit_code: -1,
                signal: None,
                reason: TerminationReason::Unknown.as_str().into(),
                message: Some("the process ended while the agent was not running".into()),
                started_at: Some(h.started_at),
                finished_at: SystemTime::now(),
                container_id: Some(container_id(h)),
            };
            (None, Some((term, false)))
        }
        None => (
            None,
            a.last_exit.as_ref().map(|t| (t.clone(), t.exit_code == 0)),
        ),
    }
}

/// Why a container could not be started.
struct StartFailure {
    /// The waiting reason (`RunContainerError`, or the resolver's).
    reason: String,
    /// The message.
    message: String,
    /// The failed step (`resolve`, `setup`, `execve`).
    step: &'static str,
    /// The errno, when known.
    errno: Option<i32>,
}

/// Resolves and starts a new instance (off the async thread: fork and the exec handshake
/// block).
async fn start_instance(
    run: &ContainerRun,
    restart_count: u32,
) -> Result<ContainerHandle, StartFailure> {
    let ctx = &run.ctx;
    match ctx
        .resolver
        .container_spec(&run.pod, run.container(), restart_count)
    {
        Err(e) => {
            let (step, errno) = match &e {
                ResolveError::ExecutableNotFound { .. } => ("resolve", Some(libc::ENOENT)),
                _ => ("setup", None),
            };
            Err(StartFailure {
                reason: e.reason().to_string(),
                message: e.to_string(),
                step,
                errno,
            })
        }
        Ok(spec) => {
            // Starting blocks (fork, exec handshake): keep it off the async thread so other
            // pods and the status API carry on meanwhile.
            let rt = ctx.runtime.clone();
            blocking(ctx.offload_blocking, move || rt.start(&spec))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::runtime::RuntimeError::Unsupported(format!(
                        "start task failed: {e}"
                    )))
                })
                .map_err(|e| {
                    let (step, errno) = match &e {
                        RuntimeError::Exec { source, .. } => ("execve", source.raw_os_error()),
                        _ => ("setup", None),
                    };
                    StartFailure {
                        reason: "RunContainerError".to_string(),
                        message: e.to_string(),
                        step,
                        errno,
                    }
                })
        }
    }
}

/// Creates a new instance with the machine's restart count; `None` when it could not be
/// started (reported in the status).
async fn create_instance(
    run: &ContainerRun,
    machine: &mut ContainerMachine,
) -> Option<ContainerHandle> {
    let name = &run.container().name;
    // One log file per instance, never reused: after an agent restart that lost the state, or
    // for a pod version whose log dir survived (rollback), continue after the highest
    // instance file (the kubelet's calcRestartCountByLogDir).
    let dir = run.ctx.resolver.container_log_dir(&run.pod, name);
    let next_log_instance = crate::logs::next_restart_count(&dir);
    machine.step(Event::Creating { next_log_instance }, now());
    let restart_count = machine.restart_count();
    run.update(|c| {
        c.state = CState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        };
        c.restart_count = restart_count;
        c.ready = false;
        c.started = false;
    });
    match start_instance(run, restart_count).await {
        Ok(h) => {
            tracing::info!(pod = %run.pod.name, container = %name, pid = h.pid, restart_count, "container started");
            let (h2, last) = (h.clone(), machine.last().cloned());
            run.persist(move |p| {
                p.handle = Some(h2);
                p.restart_count = restart_count;
                if last.is_some() {
                    p.last_exit = last;
                }
            })
            .await;
            machine.step(Event::Started, now());
            Some(h)
        }
        Err(f) => {
            tracing::warn!(pod = %run.pod.name, container = %name, "{}", f.message);
            run.update(|c| {
                c.state = CState::Waiting {
                    reason: f.reason.clone(),
                    message: Some(f.message.clone()),
                };
                c.failures
                    .on_start_failed(f.step, f.errno, f.message.clone());
            });
            None
        }
    }
}

/// One instance: start it (unless `adopted` already runs), supervise it, stop it when asked.
/// The event that ended it for `machine`, or how the container ends (stopped, detached).
async fn run_instance(
    run: &ContainerRun,
    machine: &mut ContainerMachine,
    adopted: Option<ContainerHandle>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> Result<Event, ContainerEnd> {
    let ctx = &run.ctx;
    let name = &run.container().name;
    let h = match adopted {
        Some(h) => h,
        None => match create_instance(run, machine).await {
            Some(h) => h,
            None => return Ok(Event::StartFailed),
        },
    };
    let restart_count = machine.restart_count();
    run.update(|c| {
        c.state = CState::Running {
            started_at: h.started_at,
        };
        c.handle = Some(h.clone());
        c.restart_count = restart_count;
        c.failures.on_started();
    });
    let started_at = machine.started_at();
    let mut exit = ctx.runtime.wait(&h);
    let outcome = supervise(run, started_at, &mut exit, ctl).await;
    let own_exit = matches!(outcome, Outcome::Exited(_));
    let pod_grace = Duration::from_secs(grace_seconds(&run.pod));
    let (status, term, restart_requested) = match outcome {
        Outcome::Detach => return Err(ContainerEnd::Detached),
        Outcome::Exited(st) => (
            st,
            terminated(&h, st, TerminationReason::of(st), None),
            false,
        ),
        Outcome::Stop(grace) => {
            let serving = Serving::of(run);
            let st = stop_instance(ctx, &h, grace, &mut exit, serving.as_ref()).await;
            let t = terminated(&h, st, TerminationReason::of(st), None);
            ctx.runtime.cleanup(&h);
            run.update(|c| {
                c.state = CState::Terminated(t.clone());
                c.handle = None;
                c.ready = false;
            });
            return Err(ContainerEnd::Stopped);
        }
        Outcome::Restart(reason) => {
            tracing::info!(pod = %run.pod.name, container = %name, "restarting container: {reason}");
            let serving = Serving::of(run);
            let st = stop_instance(ctx, &h, pod_grace, &mut exit, serving.as_ref()).await;
            (
                st,
                terminated(&h, st, TerminationReason::Restarted(reason), None),
                true,
            )
        }
        Outcome::Unhealthy(msg) => {
            tracing::warn!(pod = %run.pod.name, container = %name, "{msg}; killing the container");
            let st = stop_instance(ctx, &h, pod_grace, &mut exit, None).await;
            (
                st,
                terminated(&h, st, TerminationReason::of(st), Some(msg)),
                false,
            )
        }
    };
    ctx.runtime.cleanup(&h);
    tracing::info!(pod = %run.pod.name, container = %name, exit_code = term.exit_code, reason = %term.reason, "container exited");
    let ran = now().saturating_duration_since(started_at);
    run.update(|c| {
        c.handle = None;
        c.ready = false;
        c.started = false;
        c.failures.on_exit(ran, term.exit_code, !own_exit);
    });
    Ok(Event::Ended {
        term,
        success: status.success(),
        restart_requested,
    })
}

/// A container that ended for good: report and wait for the pod to stop.
async fn park(
    run: &ContainerRun,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    success: bool,
) -> ContainerEnd {
    if run.init {
        return ContainerEnd::Completed(success);
    }
    loop {
        match ctl.recv().await {
            Some(Ctl::Restart(_)) => continue,
            Some(Ctl::Detach) | None => return ContainerEnd::Detached,
            Some(Ctl::Stop(_)) => return ContainerEnd::Completed(success),
        }
    }
}

fn terminated(
    h: &ContainerHandle,
    st: ExitStatus,
    reason: TerminationReason,
    message: Option<String>,
) -> Terminated {
    Terminated {
        exit_code: st.code(),
        signal: match st {
            ExitStatus::Signaled(s) => Some(s),
            _ => None,
        },
        reason: reason.as_str().into(),
        message,
        started_at: Some(h.started_at),
        finished_at: SystemTime::now(),
        container_id: Some(container_id(h)),
    }
}

/// The Kubernetes-style container id, `plinth://<runtime id>`.
pub fn container_id(h: &ContainerHandle) -> String {
    format!("plinth://{}", h.id)
}

async fn supervise(
    run: &ContainerRun,
    started_at: Instant,
    exit: &mut BoxFuture<ExitStatus>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> Outcome {
    let c = run.container();
    let node_ip = run.ctx.resolver.node_ip;
    let make = |p: &Option<k8s_openapi::api::core::v1::Probe>, kind: ProbeKind| {
        let p = p.as_ref()?;
        match ProbeSpec::from_k8s(p, c, node_ip, kind) {
            Ok(spec) => {
                let state = ProbeState::new(kind, &spec, started_at);
                Some((kind, spec, state))
            }
            Err(e) => {
                tracing::warn!(pod = %run.pod.name, container = %c.name, "ignoring invalid {kind:?} probe: {e}");
                None
            }
        }
    };
    let mut startup = if run.init {
        None
    } else {
        make(&c.startup_probe, ProbeKind::Startup)
    };
    let mut liveness = if run.init {
        None
    } else {
        make(&c.liveness_probe, ProbeKind::Liveness)
    };
    let mut readiness = if run.init {
        None
    } else {
        make(&c.readiness_probe, ProbeKind::Readiness)
    };
    let mut started = startup.is_none();
    let has_readiness = readiness.is_some();
    run.update(|s| {
        s.started = started;
        s.ready = started && !has_readiness;
    });
    loop {
        // Which probe is due next.
        let mut due: Option<(Instant, ProbeKind)> = None;
        let mut consider = |p: &Option<(ProbeKind, ProbeSpec, ProbeState)>| {
            if let Some((k, _, st)) = p {
                if let Some(t) = st.next_due() {
                    if due.is_none_or(|(d, _)| t < d) {
                        due = Some((t, *k));
                    }
                }
            }
        };
        if !started {
            consider(&startup);
        } else {
            consider(&liveness);
            consider(&readiness);
        }
        let sleep = async {
            match due {
                Some((t, _)) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            st = &mut *exit => return Outcome::Exited(st),
            cmd = ctl.recv() => return match cmd {
                Some(Ctl::Stop(g)) => Outcome::Stop(g),
                Some(Ctl::Restart(r)) => Outcome::Restart(r),
                Some(Ctl::Detach) | None => Outcome::Detach,
            },
            _ = sleep => {
                let Some((_, kind)) = due else { continue };
                let slot = match kind {
                    ProbeKind::Startup => &mut startup,
                    ProbeKind::Liveness => &mut liveness,
                    ProbeKind::Readiness => &mut readiness,
                };
                let Some((_, spec, state)) = slot.as_mut() else { continue };
                let fut = run.ctx.prober.probe(&run.pod, &c.name, kind, spec);
                let outcome = tokio::select! {
                    o = fut => o,
                    st = &mut *exit => return Outcome::Exited(st),
                };
                let transition = state.record(now(), &outcome);
                match (kind, transition) {
                    (ProbeKind::Startup, Some(ProbeTransition::Succeeded)) => {
                        started = true;
                        run.update(|s| {
                            s.started = true;
                            s.ready = !has_readiness;
                        });
                    }
                    (ProbeKind::Startup, Some(ProbeTransition::Failed { reason })) => {
                        return Outcome::Unhealthy(format!("Startup probe failed: {reason}"));
                    }
                    (ProbeKind::Liveness, Some(ProbeTransition::Failed { reason })) => {
                        return Outcome::Unhealthy(format!("Liveness probe failed: {reason}"));
                    }
                    (ProbeKind::Readiness, Some(ProbeTransition::Succeeded)) => run.update(|s| s.ready = true),
                    (ProbeKind::Readiness, Some(ProbeTransition::Failed { .. })) => run.update(|s| s.ready = false),
                    _ => {}
                }
            }
        }
    }
}

/// How long a container that stopped serving after SIGTERM keeps the rest of its grace
/// period: in-flight requests on open connections may finish, then it is killed.
pub const STOPPED_SERVING_DRAIN: Duration = Duration::from_secs(1);

/// How often a terminating container's serving port is checked.
const SERVING_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The port a container serves on (its readiness, else liveness, else startup probe's
/// httpGet / tcpSocket endpoint), checked with a TCP connect while it terminates.
struct Serving<'a> {
    run: &'a ContainerRun,
    spec: ProbeSpec,
}

impl<'a> Serving<'a> {
    fn of(run: &'a ContainerRun) -> Option<Serving<'a>> {
        let c = run.container();
        let node_ip = run.ctx.resolver.node_ip;
        let kinds = [
            (&c.readiness_probe, ProbeKind::Readiness),
            (&c.liveness_probe, ProbeKind::Liveness),
            (&c.startup_probe, ProbeKind::Startup),
        ];
        kinds.into_iter().find_map(|(p, kind)| {
            let spec = ProbeSpec::from_k8s(p.as_ref()?, c, node_ip, kind).ok()?;
            let (host, port) = match spec.action {
                crate::probe::ProbeAction::Http { host, port, .. }
                | crate::probe::ProbeAction::Tcp { host, port } => (host, port),
                crate::probe::ProbeAction::Exec { .. } => return None,
            };
            Some(Serving {
                run,
                spec: ProbeSpec {
                    action: crate::probe::ProbeAction::Tcp { host, port },
                    timeout: Duration::from_millis(250),
                    ..spec
                },
            })
        })
    }

    /// True when the port accepts a TCP connection.
    async fn accepts(&self) -> bool {
        let name = &self.run.container().name;
        self.run
            .ctx
            .prober
            .probe(&self.run.pod, name, ProbeKind::Readiness, &self.spec)
            .await
            .is_success()
    }
}

/// SIGTERM, wait up to `grace`, SIGKILL; returns the exit status.
///
/// With `serving` (the container's probe port) open when SIGTERM is sent: once the port no
/// longer accepts connections the component has stopped serving, so after
/// [`STOPPED_SERVING_DRAIN`] it is killed instead of holding its replacement back for the rest
/// of the grace period (kube-apiserver closes its port at once on SIGTERM but may take up to
/// its 30 s grace to exit; the node has no apiserver meanwhile).
async fn stop_instance(
    ctx: &WorkerCtx,
    h: &ContainerHandle,
    grace: Duration,
    exit: &mut BoxFuture<ExitStatus>,
    serving: Option<&Serving<'_>>,
) -> ExitStatus {
    if !grace.is_zero() {
        let watch = match serving {
            Some(s) if s.accepts().await => Some(s),
            _ => None,
        };
        if let Err(e) = ctx.runtime.signal(h, StopSignal::Term) {
            tracing::warn!(container = %h.id, "SIGTERM failed: {e}");
        }
        match watch {
            None => {
                if let Ok(st) = tokio::time::timeout(grace, &mut *exit).await {
                    return st;
                }
                tracing::info!(container = %h.id, "grace period of {}s over: SIGKILL", grace.as_secs());
            }
            Some(s) => {
                let deadline = tokio::time::Instant::now() + grace;
                let mut closed_at: Option<tokio::time::Instant> = None;
                loop {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        tracing::info!(container = %h.id, "grace period of {}s over: SIGKILL", grace.as_secs());
                        break;
                    }
                    let tick = SERVING_CHECK_EVERY.min(deadline - now);
                    if let Ok(st) = tokio::time::timeout(tick, &mut *exit).await {
                        return st;
                    }
                    let now = tokio::time::Instant::now();
                    match closed_at {
                        None if !s.accepts().await => closed_at = Some(now),
                        Some(t) if now - t >= STOPPED_SERVING_DRAIN => {
                            tracing::info!(container = %h.id, "stopped serving on its port {:?} after SIGTERM and not exited {}ms later: SIGKILL instead of waiting out the {}s grace period", s.spec.action, STOPPED_SERVING_DRAIN.as_millis(), grace.as_secs());
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if let Err(e) = ctx.runtime.signal(h, StopSignal::Kill) {
        tracing::warn!(container = %h.id, "SIGKILL failed: {e}");
    }
    match tokio::time::timeout(Duration::from_secs(30), &mut *exit).await {
        Ok(st) => st,
        Err(_) => {
            tracing::error!(container = %h.id, pid = h.pid, "process did not exit 30 s after SIGKILL");
            ExitStatus::Unknown
        }
    }
}

/// Per-name start gates.
#[derive(Debug, Default)]
pub struct Gates {
    gates: BTreeMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl Gates {
    /// The gate of pod `name`.
    pub fn get(&mut self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.gates.entry(name.to_string()).or_default().clone()
    }

    /// Drops gates nobody holds or waits for.
    pub fn prune(&mut self) {
        self.gates.retain(|_, g| Arc::strong_count(g) > 1);
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
pub(crate) mod tests;
