//! The agent in the API: registers its Node, renews its Lease and keeps a mirror pod per
//! static pod whose status follows the agent's own view, through [`crate::apiclient`] with the
//! identity of the agent's kubeconfig (`system:node:<name>`, kubelet.conf).
//!
//! One way only: nothing read from the API changes what the agent runs, and no pod ever waits
//! for the API. The apiserver is down when the agent starts (the agent starts it) and whenever
//! it restarts, so every step is retried with backoff: fast for the first two minutes of a
//! failure streak (100 ms doubling to 500 ms while the apiserver is unreachable or unavailable,
//! so the API catches up within half a second of the apiserver becoming ready; to 2 s when it
//! refuses), then every 10 s; failures are logged once per streak and then once a minute.
//!
//! What happens when ([`ApiSync::step`]):
//! - Node: registered when missing (also after someone deleted it), its status (conditions,
//!   capacity, nodeInfo, see [`super::node`]) patched when it changed or every 5 minutes,
//!   checked every 10 s.
//! - Lease `kube-node-lease/<node>`: renewed every 10 s (created when missing).
//! - Mirror pods: the pods bound to the node are listed (every 10 s, and at once when a watch
//!   on them reports a deletion, so `kubectl delete pod` is undone within moments); the
//!   [`super::mirror::plan`] is applied (delete stale, create missing) and each mirror pod's
//!   status is patched when the agent's view of the pod differs from what was last sent, at
//!   most every 250 ms per pod, reacting to the workers' change signal
//!   ([`super::changes`]) after a 50 ms pause that coalesces bursts.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::mirror::{self, Stale};
use super::node::{self, ConditionClock, HostFacts};
use super::pod::StaticPod;
use super::podconfig::Problem;
use super::worker::PodSnapshot;
use crate::apiclient;

/// The desired pods (one snapshot per static pod the manifests define) and source problems.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Snapshots of the desired pods' workers.
    pub pods: Vec<PodSnapshot>,
    /// Source problems (shown in the affected pod's status message).
    pub problems: Vec<Problem>,
}

/// Produces the current [`View`].
pub type ViewSource = Arc<dyn Fn() -> View + Send + Sync>;

/// Timings and identity of the sync.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The node's name.
    pub node_name: String,
    /// Its address (InternalIP, hostIP/podIP).
    pub node_ip: IpAddr,
    /// A path on the filesystem disk pressure is judged by.
    pub fs_path: PathBuf,
    /// Lease renewal period (kubelet: 10 s = a quarter of the 40 s lease).
    pub renew_interval: Duration,
    /// How often the Node is checked (re-registered when gone, status patched when changed).
    pub node_check_interval: Duration,
    /// An unchanged Node status is still reported this often (kubelet: 5 min).
    pub node_report_interval: Duration,
    /// Full relist of the mirror pods.
    pub relist_interval: Duration,
    /// Pause after a change signal, coalescing bursts.
    pub debounce: Duration,
    /// At most one status patch per pod per this interval.
    pub status_min_interval: Duration,
    /// First retry wait.
    pub retry_first: Duration,
    /// Longest retry wait during the first [`Settings::fast_for`] of a failure streak.
    pub retry_fast_max: Duration,
    /// Longest retry wait during the fast window when the apiserver answered with a refusal
    /// (403, 404, 409, 422: usually lasting, but a young apiserver refuses mirror pods until
    /// its priority classes exist).
    pub retry_refused_max: Duration,
    /// Longest retry wait after that.
    pub retry_slow_max: Duration,
    /// How long a failure streak is retried fast.
    pub fast_for: Duration,
}

impl Settings {
    /// The agent's settings for `node_name` at `node_ip`.
    pub fn new(node_name: &str, node_ip: IpAddr, fs_path: PathBuf) -> Settings {
        Settings {
            node_name: node_name.to_string(),
            node_ip,
            fs_path,
            renew_interval: Duration::from_secs(10),
            node_check_interval: Duration::from_secs(10),
            node_report_interval: Duration::from_secs(300),
            relist_interval: Duration::from_secs(10),
            debounce: Duration::from_millis(50),
            status_min_interval: Duration::from_millis(250),
            retry_first: Duration::from_millis(100),
            retry_fast_max: Duration::from_millis(500),
            retry_refused_max: Duration::from_secs(2),
            retry_slow_max: Duration::from_secs(10),
            fast_for: Duration::from_secs(120),
        }
    }
}

/// A failed request: what was tried, and the error.
#[derive(Debug)]
pub struct Failure {
    /// Verb and object.
    pub what: String,
    /// The error.
    pub error: kube::Error,
}

fn fail(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Failure {
    let what = what.into();
    move |error| Failure { what, error }
}

/// A failure streak: its start, its length, the next attempt and when it was last logged.
#[derive(Debug, Default)]
struct Streak {
    since: Option<Instant>,
    n: u32,
    logged: Option<Instant>,
}

impl Streak {
    /// Records a failure at `now`; returns the wait before the next attempt.
    fn failed(&mut self, s: &Settings, now: Instant, f: &Failure) -> Duration {
        let since = *self.since.get_or_insert(now);
        let cap = if now.duration_since(since) >= s.fast_for {
            s.retry_slow_max
        } else if apiclient::is_transient(&f.error) {
            s.retry_fast_max
        } else {
            s.retry_refused_max
        };
        let factor = 1u32.checked_shl(self.n.min(16)).unwrap_or(u32::MAX);
        let wait = s.retry_first.saturating_mul(factor).min(cap);
        self.n += 1;
        let log_now = self
            .logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if log_now {
            self.logged = Some(now);
            tracing::warn!(
                failures = self.n,
                "API sync: {}: {}; retrying with backoff (pods are not affected)",
                f.what,
                f.error
            );
        } else {
            tracing::debug!("API sync: {}: {}; retry in {wait:?}", f.what, f.error);
        }
        wait
    }

    fn succeeded(&mut self) {
        if self.n > 0 {
            tracing::info!(
                failures = self.n,
                "API sync: apiserver requests succeed again"
            );
        }
        *self = Streak::default();
    }
}

/// One mirror pod the agent keeps: its UID and the status last sent to it.
#[derive(Debug, Clone)]
struct Mirror {
    uid: String,
    sent: Option<Value>,
    sent_at: Option<Instant>,
}

/// The sync state.
pub struct ApiSync {
    client: kube::Client,
    s: Settings,
    view: ViewSource,
    node_uid: Option<String>,
    node_digest: Option<Value>,
    node_reported: Option<Instant>,
    node_due: Instant,
    clock: ConditionClock,
    lease_due: Instant,
    lease_streak: Streak,
    live: Option<Vec<Pod>>,
    relist_due: Instant,
    mirrors: BTreeMap<String, Mirror>,
    /// Earliest time a rate-limited status patch may go out.
    status_due: Option<Instant>,
    streak: Streak,
    retry_at: Option<Instant>,
}

impl ApiSync {
    /// A sync through `client` (authenticated as the node).
    pub fn new(client: kube::Client, s: Settings, view: ViewSource) -> ApiSync {
        let now = Instant::now();
        ApiSync {
            client,
            s,
            view,
            node_uid: None,
            node_digest: None,
            node_reported: None,
            node_due: now,
            clock: ConditionClock::default(),
            lease_due: now,
            lease_streak: Streak::default(),
            live: None,
            relist_due: now,
            mirrors: BTreeMap::new(),
            status_due: None,
            streak: Streak::default(),
            retry_at: None,
        }
    }

    /// The registered Node's UID, once known.
    pub fn node_uid(&self) -> Option<&str> {
        self.node_uid.as_deref()
    }

    /// Runs until `shutdown` resolves: reacts to the workers' change signal, to deletions the
    /// pod watch reports, and to its own timers.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let poke = Arc::new(Notify::new());
        let _watcher = AbortOnDrop(tokio::spawn(watch_pods(
            self.client.clone(),
            self.s.node_name.clone(),
            poke.clone(),
        )));
        let mut changes = super::changes::subscribe();
        tokio::pin!(shutdown);
        loop {
            if self.retry_at.is_none_or(|t| Instant::now() >= t) {
                match self.step().await {
                    Ok(()) => {
                        self.streak.succeeded();
                        self.retry_at = None;
                    }
                    Err(f) => {
                        let wait = self.streak.failed(&self.s, Instant::now(), &f);
                        self.retry_at = Some(Instant::now() + wait);
                    }
                }
            }
            let next = self.next_due();
            tokio::select! {
                _ = &mut shutdown => break,
                r = changes.changed() => {
                    if r.is_err() {
                        // The sender is a static: never closed. Keep the timers only.
                        changes = super::changes::subscribe();
                    }
                    tokio::time::sleep(self.s.debounce).await;
                    changes.borrow_and_update();
                }
                _ = poke.notified() => {
                    self.live = None;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    fn next_due(&self) -> Instant {
        if let Some(t) = self.retry_at {
            return t;
        }
        let mut t = self.node_due.min(self.lease_due).min(self.relist_due);
        if let Some(s) = self.status_due {
            t = t.min(s);
        }
        t
    }

    /// One pass: whatever is due, in order Node → Lease → mirror pods. A failure ends the
    /// pass (the caller retries with backoff); a Lease failure is retried on its own.
    pub async fn step(&mut self) -> Result<(), Failure> {
        let now = Instant::now();
        if self.node_uid.is_none() || now >= self.node_due {
            self.sync_node().await?;
            self.node_due = Instant::now() + self.s.node_check_interval;
        }
        if Instant::now() >= self.lease_due {
            match self.renew_lease().await {
                Ok(()) => {
                    self.lease_streak.succeeded();
                    self.lease_due = Instant::now() + self.s.renew_interval;
                }
                Err(f) => {
                    let wait = self.lease_streak.failed(&self.s, Instant::now(), &f);
                    self.lease_due = Instant::now() + wait;
                }
            }
        }
        if self.live.is_none() || Instant::now() >= self.relist_due {
            self.relist().await?;
        }
        self.sync_mirrors().await
    }

    async fn sync_node(&mut self) -> Result<(), Failure> {
        let name = self.s.node_name.clone();
        let facts = HostFacts::gather(&self.s.fs_path);
        let conditions = self.clock.conditions(&facts, SystemTime::now());
        let status = node::node_status(&name, self.s.node_ip, &facts, conditions);
        let digest = node::status_digest(&status);
        let api: Api<Node> = Api::all(self.client.clone());
        let live = api
            .get_opt(&name)
            .await
            .map_err(fail(format!("get Node {name}")))?;
        let Some(live) = live else {
            let obj = node::node_object(&name, &facts.arch, status);
            match api.create(&PostParams::default(), &obj).await {
                Ok(created) => {
                    let uid = created.metadata.uid.unwrap_or_default();
                    tracing::info!(node = %name, %uid, "registered Node");
                    self.set_node_uid(uid);
                    self.node_digest = Some(digest);
                    self.node_reported = Some(Instant::now());
                    return Ok(());
                }
                Err(e) if apiclient::is_already_exists(&e) => {
                    // Registered in between (a previous attempt whose answer was lost).
                    self.node_due = Instant::now();
                    return Err(Failure {
                        what: format!("create Node {name}"),
                        error: e,
                    });
                }
                Err(e) => return Err(fail(format!("create Node {name}"))(e)),
            }
        };
        self.set_node_uid(live.metadata.uid.clone().unwrap_or_default());
        let report_due = self
            .node_reported
            .is_none_or(|t| t.elapsed() >= self.s.node_report_interval);
        // Someone else's conditions (the node lifecycle controller's `Unknown` while the
        // Lease looked stale) are overwritten with the agent's at once. Quantities are not
        // compared with the live object: the apiserver rewrites them in canonical form.
        let live_conditions: BTreeMap<&str, &str> = live
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        let foreign = status
            .conditions
            .iter()
            .flatten()
            .any(|c| live_conditions.get(c.type_.as_str()) != Some(&c.status.as_str()));
        let changed = self.node_digest.as_ref() != Some(&digest) || foreign;
        if changed || report_due {
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map_err(fail(format!("patch Node {name} status")))?;
            tracing::debug!(node = %name, changed, "patched Node status");
            self.node_digest = Some(digest);
            self.node_reported = Some(Instant::now());
        }
        Ok(())
    }

    fn set_node_uid(&mut self, uid: String) {
        if self.node_uid.as_deref() != Some(uid.as_str()) {
            if self.node_uid.is_some() {
                tracing::info!(node = %self.s.node_name, %uid, "the Node was registered again: replacing mirror pods and lease owned by the old one");
            }
            self.node_uid = Some(uid);
            self.live = None;
            self.lease_due = Instant::now();
        }
    }

    async fn renew_lease(&mut self) -> Result<(), Failure> {
        let name = self.s.node_name.clone();
        let Some(uid) = self.node_uid.clone() else {
            return Ok(());
        };
        let api: Api<Lease> = Api::namespaced(self.client.clone(), node::LEASE_NAMESPACE);
        let what = format!("renew Lease {}/{name}", node::LEASE_NAMESPACE);
        match api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(node::lease_renewal(&name, SystemTime::now())),
            )
            .await
        {
            Ok(l) => {
                // A lease owned by an older Node is replaced (the garbage collector would
                // delete it anyway).
                let owned = l
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|r| r.kind == "Node" && r.uid == uid));
                if !owned {
                    let dp = DeleteParams::default();
                    api.delete(&name, &dp).await.map_err(fail(&what))?;
                    self.lease_due = Instant::now();
                }
                Ok(())
            }
            Err(e) if apiclient::is_not_found(&e) => {
                let lease = node::lease(&name, &uid, SystemTime::now());
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(()),
                    Err(e) if apiclient::is_already_exists(&e) => Ok(()),
                    Err(e) => Err(fail(format!(
                        "create Lease {}/{name}",
                        node::LEASE_NAMESPACE
                    ))(e)),
                }
            }
            Err(e) => Err(fail(what)(e)),
        }
    }

    async fn relist(&mut self) -> Result<(), Failure> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.s.node_name));
        let list = api
            .list(&lp)
            .await
            .map_err(fail(format!("list pods on node {}", self.s.node_name)))?;
        // Someone else's status change (the node lifecycle controller marks pods not ready
        // while the node looked dead) means ours must be sent again.
        for p in &list.items {
            let key = mirror::key_of(p);
            if let Some(m) = self.mirrors.get_mut(&key) {
                let have = p
                    .status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .unwrap_or(Value::Null);
                if p.metadata.uid.as_deref() != Some(m.uid.as_str())
                    || m.sent
                        .as_ref()
                        .is_some_and(|s| !apiclient::contains(&have, s))
                {
                    m.sent = None;
                }
            }
        }
        self.live = Some(list.items);
        self.relist_due = Instant::now() + self.s.relist_interval;
        Ok(())
    }

    async fn sync_mirrors(&mut self) -> Result<(), Failure> {
        let (Some(node_uid), Some(mut live)) = (self.node_uid.clone(), self.live.take()) else {
            return Ok(());
        };
        let r = self.apply(&node_uid, &mut live).await;
        if r.is_ok() {
            self.live = Some(live);
        }
        r
    }

    /// Applies the plan to `live` (kept up to date with what was done) and patches statuses.
    /// On an error `live` is dropped by the caller, so the next pass lists again.
    async fn apply(&mut self, node_uid: &str, live: &mut Vec<Pod>) -> Result<(), Failure> {
        let view = (self.view)();
        let desired: BTreeMap<String, &StaticPod> = view
            .pods
            .iter()
            .map(|s| (format!("{}/{}", s.pod.namespace, s.pod.name), &*s.pod))
            .collect();
        let plan = mirror::plan(&desired, live, node_uid);
        let node = self.s.node_name.clone();
        for (key, uid, why) in &plan.delete {
            let (ns, name) = key.split_once('/').unwrap_or(("default", key));
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            if *why == Stale::Orphan {
                tracing::info!(pod = %key, "deleting mirror pod: {why}");
            } else {
                tracing::info!(pod = %key, "replacing mirror pod: {why}");
            }
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => {}
                // Gone already, or replaced by someone: the next list tells.
                Err(e) if apiclient::is_not_found(&e) => {}
                Err(e) if apiclient::is_conflict(&e) => self.relist_due = Instant::now(),
                Err(e) => return Err(fail(format!("delete mirror pod {key}"))(e)),
            }
            live.retain(|p| p.metadata.uid.as_deref() != Some(uid.as_str()));
            self.mirrors.remove(key);
        }
        let mut current: BTreeMap<String, String> = plan.keep.clone();
        for key in &plan.create {
            let Some(sp) = desired.get(key) else { continue };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &sp.namespace);
            let pod = mirror::mirror_pod(sp, &node, node_uid);
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    tracing::info!(pod = %key, %uid, "created mirror pod");
                    current.insert(key.clone(), uid);
                    live.push(p);
                }
                // One appeared since the list (AlreadyExists), or refused: list again, retry.
                Err(e) => return Err(fail(format!("create mirror pod {key}"))(e)),
            }
        }
        self.mirrors.retain(|k, _| current.contains_key(k));
        self.status_due = None;
        let now = Instant::now();
        for snap in &view.pods {
            let key = format!("{}/{}", snap.pod.namespace, snap.pod.name);
            let Some(uid) = current.get(&key) else {
                continue;
            };
            let pod = super::status::to_k8s_pod(snap, &view.problems, Some(self.s.node_ip));
            let status = mirror::status_value(&pod.status.unwrap_or_default());
            let m = self.mirrors.entry(key.clone()).or_insert_with(|| Mirror {
                uid: uid.clone(),
                sent: None,
                sent_at: None,
            });
            if m.uid != *uid {
                *m = Mirror {
                    uid: uid.clone(),
                    sent: None,
                    sent_at: None,
                };
            }
            if m.sent.as_ref() == Some(&status) {
                continue;
            }
            if let Some(at) = m.sent_at {
                let ready = at + self.s.status_min_interval;
                if now < ready {
                    self.status_due = Some(self.status_due.map_or(ready, |d| d.min(ready)));
                    continue;
                }
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &snap.pod.namespace);
            let patch = mirror::status_patch(uid, &status);
            match api
                .patch_status(
                    &snap.pod.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(p) => {
                    tracing::debug!(pod = %key, "patched mirror pod status");
                    m.sent = Some(status);
                    m.sent_at = Some(Instant::now());
                    if let Some(l) = live.iter_mut().find(|x| x.metadata.uid == p.metadata.uid) {
                        *l = p;
                    }
                }
                // Deleted or replaced under us (404, 409, a UID mismatch): list again.
                Err(e) => return Err(fail(format!("patch mirror pod {key} status"))(e)),
            }
        }
        Ok(())
    }
}

/// Aborts the task when dropped (also when the sync itself is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the pods bound to `node` and pokes the sync when a mirror pod is deleted or marked
/// for deletion. Without a watch (an apiserver that refuses it), the periodic relist remains.
async fn watch_pods(client: kube::Client, node: String, poke: Arc<Notify>) {
    let api: Api<Pod> = Api::all(client);
    let wp = WatchParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .timeout(290);
    let mut rv = "0".to_string();
    let mut fails: u32 = 0;
    loop {
        match api.watch(&wp, &rv).await {
            Ok(stream) => {
                fails = 0;
                let mut stream = std::pin::pin!(stream);
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => {
                            rv = p.metadata.resource_version.clone().unwrap_or(rv);
                            if p.metadata.deletion_timestamp.is_some() && mirror::is_mirror(&p) {
                                poke.notify_one();
                            }
                        }
                        Ok(WatchEvent::Deleted(p)) => {
                            rv = p.metadata.resource_version.clone().unwrap_or(rv);
                            if mirror::is_mirror(&p) {
                                poke.notify_one();
                            }
                        }
                        Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                        Ok(WatchEvent::Error(e)) => {
                            if e.code == 410 {
                                rv = "0".into();
                            }
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Err(e) => {
                fails += 1;
                let wait = if apiclient::code(&e) == Some(405) {
                    Duration::from_secs(60)
                } else {
                    Duration::from_millis(200 * u64::from(fails.min(10)))
                };
                tracing::debug!("API sync: watch pods on {node}: {e}; again in {wait:?}");
                // After a gap, catch up with a list.
                poke.notify_one();
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Connects with `kubeconfig` (retrying until it can) and runs the sync until `shutdown`.
pub async fn run_with_kubeconfig(
    kubeconfig: PathBuf,
    s: Settings,
    view: ViewSource,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut n: u32 = 0;
    let client = loop {
        match apiclient::connect(&kubeconfig).await {
            Ok(c) => break c,
            Err(e) => {
                if n.is_multiple_of(60) {
                    tracing::warn!("API sync: {e:#}; retrying (pods are not affected)");
                }
                n += 1;
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    tracing::info!(
        kubeconfig = %kubeconfig.display(),
        node = %s.node_name,
        "API sync: registering the Node and mirror pods"
    );
    ApiSync::new(client, s, view).run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status condition `ty` of an object (which must have it).
    fn condition(obj: &Value, ty: &str) -> Value {
        obj["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .unwrap_or_else(|| panic!("no {ty} condition in {obj}"))
            .clone()
    }
    use crate::agent::mirror::tests::static_pod;
    use crate::agent::worker::{CState, ContainerSnapshot, Lifecycle};
    use crate::apiclient::fake::{ApiServer, Denied, Request};
    use std::sync::Mutex;

    const NODE: &str = "cp1";

    /// What the real apiserver (Node authorizer + NodeRestriction, v1.24) refuses a node's
    /// identity for the calls the agent makes. Denials are recorded for the assertions.
    fn node_rules(denials: Arc<Mutex<Vec<String>>>) -> impl Fn(&Request<'_>) -> Result<(), Denied> {
        move |r| {
            let res = check(r);
            if let Err(d) = &res {
                denials.lock().unwrap().push(format!(
                    "{} {} {}/{:?} {:?}: {}",
                    r.user, r.verb, r.resource, r.subresource, r.name, d.message
                ));
            }
            res
        }
    }

    fn check(r: &Request<'_>) -> Result<(), Denied> {
        let Some(me) = r.user.strip_prefix("system:node:") else {
            return Ok(()); // an admin
        };
        let deny = |m: &str| Err(Denied::forbidden(format!("node {me:?}: {m}")));
        let field = |v: Option<&Value>, path: &str| -> Option<String> {
            path.split('.')
                .try_fold(v?, |v, k| v.get(k))
                .and_then(|v| v.as_str().map(String::from))
        };
        match (r.resource, r.subresource, r.verb) {
            ("nodes", None, "get" | "list") => Ok(()),
            ("nodes", None | Some("status"), "create" | "update" | "patch") => {
                if r.name != Some(me) {
                    return deny("is not allowed to modify another node");
                }
                if r.verb != "create" {
                    let old = r.existing.map(|e| e["spec"]["taints"].clone());
                    let new = r.object.map(|o| o["spec"]["taints"].clone());
                    if old != new {
                        return deny("is not allowed to modify taints");
                    }
                }
                let labels = r.object.and_then(|o| o["metadata"]["labels"].as_object());
                for k in labels.into_iter().flatten().map(|(k, _)| k) {
                    if k.starts_with("node-role.kubernetes.io/")
                        || k.starts_with("node-restriction.kubernetes.io/")
                    {
                        return deny(&format!("is not allowed to set label {k}"));
                    }
                }
                Ok(())
            }
            ("leases", None, _) => {
                if r.namespace != Some(node::LEASE_NAMESPACE) || r.name != Some(me) {
                    return deny("can only access its own node lease");
                }
                Ok(())
            }
            ("pods", None, "get" | "list") => Ok(()),
            ("pods", None, "create") => {
                let o = r.object;
                if o.and_then(|o| o["metadata"]["annotations"].get(mirror::ANN_CONFIG_MIRROR))
                    .is_none()
                {
                    return deny("can only create mirror pods");
                }
                if field(o, "spec.nodeName").as_deref() != Some(me) {
                    return deny("can only create pods with spec.nodeName set to itself");
                }
                let owners = o
                    .and_then(|o| o["metadata"]["ownerReferences"].as_array())
                    .cloned()
                    .unwrap_or_default();
                let ok = owners.len() == 1
                    && owners[0]["apiVersion"] == "v1"
                    && owners[0]["kind"] == "Node"
                    && owners[0]["name"] == me
                    && owners[0]["controller"] == true
                    && owners[0]["blockOwnerDeletion"] != true
                    && owners[0]["uid"].as_str().is_some_and(|u| !u.is_empty());
                if !ok {
                    return deny(
                        "can only create pods with a controller owner reference set to itself",
                    );
                }
                if field(o, "spec.serviceAccountName").is_some() {
                    return deny("can not create pods that reference a service account");
                }
                Ok(())
            }
            ("pods", None, "delete") => {
                if field(r.existing, "spec.nodeName").as_deref() != Some(me) {
                    return deny("can only delete pods with spec.nodeName set to itself");
                }
                Ok(())
            }
            ("pods", Some("status"), "update" | "patch") => {
                if field(r.existing, "spec.nodeName").as_deref() != Some(me) {
                    return deny(
                        "can only update pod status for pods with spec.nodeName set to itself",
                    );
                }
                let labels = |v: Option<&Value>| v.map(|v| v["metadata"]["labels"].clone());
                if labels(r.existing) != labels(r.object) {
                    return deny("cannot update labels through pod status");
                }
                Ok(())
            }
            (res, sub, verb) => deny(&format!("may not {verb} {res}/{sub:?}")),
        }
    }

    fn snapshot(sp: StaticPod, restarts: u32) -> PodSnapshot {
        let name = sp.spec().containers[0].name.clone();
        PodSnapshot {
            pod: Arc::new(sp),
            lifecycle: Lifecycle::Running,
            message: None,
            init_containers: vec![],
            containers: vec![ContainerSnapshot {
                name,
                image: "img".into(),
                state: CState::Running {
                    started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                },
                last: None,
                restart_count: restarts,
                ready: true,
                started: true,
                handle: None,
                failures: Default::default(),
            }],
            start_time: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            initialized: true,
        }
    }

    struct Rig {
        server: ApiServer,
        denials: Arc<Mutex<Vec<String>>>,
        pods: Arc<Mutex<Vec<PodSnapshot>>>,
    }

    impl Rig {
        fn new() -> Rig {
            let server = ApiServer::new();
            let denials = Arc::new(Mutex::new(Vec::new()));
            server.set_admission(node_rules(denials.clone()));
            Rig {
                server,
                denials,
                pods: Arc::new(Mutex::new(vec![
                    snapshot(static_pod("etcd", "1"), 0),
                    snapshot(static_pod("kube-scheduler", "1"), 0),
                ])),
            }
        }

        fn sync(&self) -> ApiSync {
            let pods = self.pods.clone();
            let view: ViewSource = Arc::new(move || View {
                pods: pods.lock().unwrap().clone(),
                problems: vec![],
            });
            let mut s = Settings::new(NODE, "192.0.2.10".parse().unwrap(), "/".into());
            s.relist_interval = Duration::from_secs(1);
            s.node_check_interval = Duration::from_secs(1);
            ApiSync::new(self.server.client(&format!("system:node:{NODE}")), s, view)
        }

        fn pod(&self, name: &str) -> Option<Value> {
            self.server
                .get(&format!("api/v1/namespaces/kube-system/pods/{name}-{NODE}"))
        }

        fn node_uid(&self) -> String {
            self.server.get(&format!("api/v1/nodes/{NODE}")).unwrap()["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_string()
        }

        fn no_denials(&self) {
            let d = self.denials.lock().unwrap();
            assert!(d.is_empty(), "the apiserver would refuse: {d:#?}");
        }
    }

    #[tokio::test]
    async fn registers_node_lease_and_mirror_pods_as_the_node_may() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        rig.no_denials();
        let node = rig.server.get("api/v1/nodes/cp1").unwrap();
        let ready = condition(&node, "Ready");
        assert_eq!(ready["status"], "True");
        assert_eq!(node["status"]["addresses"][0]["address"], "192.0.2.10");
        assert_eq!(
            node["status"]["nodeInfo"]["containerRuntimeVersion"],
            node::RUNTIME_VERSION
        );
        let lease = rig
            .server
            .get("apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cp1")
            .unwrap();
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(
            lease["metadata"]["ownerReferences"][0]["uid"],
            rig.node_uid()
        );
        for name in ["etcd", "kube-scheduler"] {
            let p = rig.pod(name).unwrap_or_else(|| panic!("{name} mirror pod"));
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Node");
            assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], rig.node_uid());
            assert!(p["metadata"]["annotations"][mirror::ANN_CONFIG_MIRROR].is_string());
            assert_eq!(p["status"]["phase"], "Running");
            assert_eq!(p["status"]["hostIP"], "192.0.2.10");
            assert_eq!(p["status"]["qosClass"], "Burstable");
            assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
            let conds: Vec<&str> = p["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            for c in ["Initialized", "Ready", "ContainersReady", "PodScheduled"] {
                assert!(conds.contains(&c), "{c} in {conds:?}");
            }
        }
        // Nothing changed: a second pass writes nothing but the lease when due.
        let before = rig.server.requests().len();
        sync.step().await.unwrap();
        let writes: Vec<_> = rig.server.requests()[before..]
            .iter()
            .filter(|r| r.verb != "get" && r.verb != "list")
            .cloned()
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn restart_count_is_patched_and_bursts_are_coalesced() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        let patches = |rig: &Rig| {
            rig.server
                .requests()
                .iter()
                .filter(|r| r.verb == "patch" && r.path.ends_with("kube-scheduler-cp1/status"))
                .count()
        };
        assert_eq!(patches(&rig), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for n in 1..=5 {
            rig.pods.lock().unwrap()[1].containers[0].restart_count = n;
            sync.step().await.unwrap();
        }
        // The first change goes out at once; the rest wait out the per-pod interval.
        assert_eq!(patches(&rig), 2);
        assert!(sync.status_due.is_some());
        tokio::time::sleep(Duration::from_millis(300)).await;
        sync.step().await.unwrap();
        assert_eq!(patches(&rig), 3);
        let p = rig.pod("kube-scheduler").unwrap();
        assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 5);
        rig.no_denials();
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_mirror_pod_comes_back_and_a_changed_manifest_replaces_it() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        let old_uid = rig.pod("kube-scheduler").unwrap()["metadata"]["uid"].clone();
        rig.server
            .remove("api/v1/namespaces/kube-system/pods/kube-scheduler-cp1")
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        sync.step().await.unwrap();
        let back = rig.pod("kube-scheduler").expect("recreated");
        assert_ne!(back["metadata"]["uid"], old_uid);
        assert_eq!(
            back["status"]["phase"], "Running",
            "status sent to the new one too"
        );
        // Manifest edit: new config hash.
        let edited = static_pod("kube-scheduler", "2");
        let hash = edited.uid.clone();
        rig.pods.lock().unwrap()[1] = snapshot(edited, 0);
        sync.step().await.unwrap();
        let p = rig.pod("kube-scheduler").unwrap();
        assert_eq!(
            p["metadata"]["annotations"][mirror::ANN_CONFIG_MIRROR],
            hash.as_str()
        );
        assert_ne!(p["metadata"]["uid"], back["metadata"]["uid"]);
        // Manifest removed: its mirror pod goes.
        rig.pods.lock().unwrap().truncate(1);
        sync.step().await.unwrap();
        assert!(rig.pod("kube-scheduler").is_none());
        assert!(rig.pod("etcd").is_some());
        rig.no_denials();
    }

    #[tokio::test]
    async fn marked_for_deletion_is_replaced_orphans_go_and_other_pods_stay() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        let admin: Api<Pod> = Api::namespaced(rig.server.client("admin"), "kube-system");
        // An orphan mirror pod from an earlier run, a pod that is not a mirror pod (a
        // DaemonSet's, scheduled here), and `kubectl delete pod` on a node-bound pod (graceful:
        // only a deletion timestamp until the node confirms).
        let mut orphan = mirror::mirror_pod(&static_pod("old", "1"), NODE, &rig.node_uid());
        orphan.metadata.uid = None;
        admin.create(&PostParams::default(), &orphan).await.unwrap();
        let mut other = mirror::mirror_pod(&static_pod("ds", "1"), NODE, &rig.node_uid());
        other.metadata.annotations = None;
        other.metadata.owner_references = None;
        admin.create(&PostParams::default(), &other).await.unwrap();
        let uid = rig.pod("etcd").unwrap()["metadata"]["uid"].clone();
        admin
            .patch(
                "etcd-cp1",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})),
            )
            .await
            .unwrap();
        sync.live = None; // as the watch's poke does
        sync.step().await.unwrap();
        assert!(rig.pod("old").is_none(), "orphan deleted");
        assert!(rig.pod("ds").is_some(), "not a mirror pod: left alone");
        let etcd = rig.pod("etcd").unwrap();
        assert_ne!(etcd["metadata"]["uid"], uid);
        assert!(etcd["metadata"]["deletionTimestamp"].is_null());
        rig.no_denials();
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_node_is_registered_again_with_its_lease_and_mirror_pods() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        let first = rig.node_uid();
        rig.server.remove("api/v1/nodes/cp1").unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        sync.step().await.unwrap();
        let second = rig.node_uid();
        assert_ne!(first, second);
        // The garbage collector would delete them too; the agent does not wait for it.
        sync.step().await.unwrap();
        for name in ["etcd", "kube-scheduler"] {
            let p = rig.pod(name).unwrap();
            assert_eq!(
                p["metadata"]["ownerReferences"][0]["uid"],
                second.as_str(),
                "{name}"
            );
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        sync.step().await.unwrap();
        sync.step().await.unwrap();
        let lease = rig
            .server
            .get("apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cp1")
            .unwrap();
        assert_eq!(
            lease["metadata"]["ownerReferences"][0]["uid"],
            second.as_str()
        );
        rig.no_denials();
    }

    /// The node lifecycle controller marks a node whose Lease went stale `Unknown` (and its
    /// pods not ready); once the agent reaches the API again its own view wins.
    #[tokio::test(start_paused = true)]
    async fn conditions_someone_else_wrote_are_put_right() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        let admin: Api<Node> = Api::all(rig.server.client("admin"));
        admin
            .patch_status(
                NODE,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": [
                    {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}})),
            )
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(rig.server.client("admin"), "kube-system");
        pods.patch_status(
            "etcd-cp1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        sync.step().await.unwrap();
        let node = rig.server.get("api/v1/nodes/cp1").unwrap();
        let ready = condition(&node, "Ready");
        assert_eq!(ready["status"], "True");
        let etcd = rig.pod("etcd").unwrap();
        let ready = condition(&etcd, "Ready");
        assert_eq!(ready["status"], "True");
        rig.no_denials();
    }

    #[tokio::test(start_paused = true)]
    async fn api_down_for_a_minute_is_retried_quietly_then_caught_up() {
        let rig = Rig::new();
        rig.server.set_down(true);
        let sync = rig.sync();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sync.run(async {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let attempts = rig.server.requests().len();
        assert_eq!(attempts, 0, "a down server logs nothing");
        // Meanwhile the pods changed.
        rig.pods.lock().unwrap()[0].containers[0].restart_count = 3;
        super::super::changes::bump();
        rig.server.set_down(false);
        let up = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let caught_up = rig
                .pod("etcd")
                .is_some_and(|p| p["status"]["containerStatuses"][0]["restartCount"] == 3)
                && rig.pod("kube-scheduler").is_some();
            if caught_up {
                break;
            }
            assert!(up.elapsed() < Duration::from_secs(2), "not caught up");
        }
        assert!(
            up.elapsed() <= Duration::from_millis(700),
            "caught up after {:?}",
            up.elapsed()
        );
        rig.no_denials();
        tx.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_or_refusal_fails_the_pass_and_the_next_pass_recovers() {
        let rig = Rig::new();
        let mut sync = rig.sync();
        sync.step().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.pods.lock().unwrap()[0].containers[0].restart_count = 1;
        let once = Arc::new(Mutex::new(true));
        let denials = rig.denials.clone();
        rig.server.set_admission(move |r| {
            if r.subresource == Some("status") && r.resource == "pods" {
                let mut o = once.lock().unwrap();
                if *o {
                    *o = false;
                    return Err(Denied {
                        code: 409,
                        reason: "Conflict".into(),
                        message: "the object has been modified".into(),
                    });
                }
            }
            node_rules(denials.clone())(r)
        });
        let err = sync.step().await.unwrap_err();
        assert!(apiclient::is_conflict(&err.error), "{err:?}");
        assert!(err.what.contains("etcd-cp1"), "{}", err.what);
        assert!(sync.live.is_none(), "lists again after a conflict");
        sync.step().await.unwrap();
        let p = rig.pod("etcd").unwrap();
        assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 1);
        rig.no_denials();
    }

    #[test]
    fn the_node_rules_refuse_what_the_apiserver_refuses() {
        let obj = json!({"metadata": {"name": "x-cp1", "annotations": {}},
            "spec": {"nodeName": "cp1"}});
        let req = |user, resource, verb, object: Option<&'static Value>, name| Request {
            user,
            verb,
            resource,
            subresource: None,
            namespace: Some("kube-system"),
            name,
            object,
            existing: None,
        };
        let obj: &'static Value = Box::leak(Box::new(obj));
        // No mirror annotation.
        assert!(check(&req(
            "system:node:cp1",
            "pods",
            "create",
            Some(obj),
            Some("x-cp1")
        ))
        .is_err());
        // Another node's Node, pods update, node delete.
        assert!(check(&req("system:node:cp1", "nodes", "patch", None, Some("cp2"))).is_err());
        assert!(check(&req("system:node:cp1", "pods", "update", None, Some("x"))).is_err());
        assert!(check(&req(
            "system:node:cp1",
            "nodes",
            "delete",
            None,
            Some("cp1")
        ))
        .is_err());
        assert!(check(&req("admin", "nodes", "delete", None, Some("cp1"))).is_ok());
    }
}
