//! The status API on `healthzBindAddress:healthzPort`:
//!
//! - `GET /healthz` → `ok`
//! - `GET /pods` → a Kubernetes `PodList` (JSON) with full pod status: phase, conditions
//!   (PodScheduled, Initialized, ContainersReady, Ready), containerStatuses (state, lastState,
//!   restartCount, ready, started, containerID `plinth://<id>`). Each container's host pid is
//!   in the pod annotation `plinth.io/pids` (a JSON object, container → pid); a container that
//!   fails to start or keeps exiting quickly has typed facts in `plinth.io/failures`
//!   ([`super::failures`]). Source problems
//!   (invalid files, conflicts) appear in the affected pod's `status.message` and in a
//!   top-level `problems` array next to `items` (k8s clients ignore the extra field).
//! - `GET /errors` → `{"problems": [...]}`.
//!
//! The server is a minimal HTTP/1.1 responder on tokio (GET only, one request per
//! connection, `Connection: close`): three read-only endpoints do not justify compiling
//! hyper's server side on top of the client side already in the tree.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub mod client;

pub use client::{PodsBody, StatusClient, StatusError};

use super::failures::{ContainerFailures, ANN_FAILURES};
use super::podconfig::Problem;
use super::worker::{container_id, CState, ContainerSnapshot, Lifecycle, PodSnapshot, Terminated};

/// A list of pods as `/pods` serves it (`kind: PodList`).
pub type PodList = k8s_openapi::List<Pod>;

/// Annotation with the containers' host pids (JSON object: container name → pid).
pub const ANN_PIDS: &str = "plinth.io/pids";

/// Everything the status API shows, taken at one moment.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    /// Pods (snapshots of their workers).
    pub pods: Vec<PodSnapshot>,
    /// Current source problems.
    pub problems: Vec<Problem>,
    /// Node address (hostIP/podIP).
    pub node_ip: Option<IpAddr>,
}

/// Produces the current view on demand.
pub type ViewFn = Arc<dyn Fn() -> StatusView + Send + Sync>;

/// A wall-clock time as a Kubernetes `Time`.
pub fn time(t: SystemTime) -> Option<Time> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    k8s_openapi::jiff::Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)
        .ok()
        .map(Time)
}

fn k8s_terminated(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: t.started_at.and_then(time),
        finished_at: time(t.finished_at),
        container_id: t.container_id.clone(),
    }
}

fn container_status(c: &ContainerSnapshot) -> ContainerStatus {
    let state = match &c.state {
        CState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        CState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(*started_at),
            }),
            ..Default::default()
        },
        CState::Terminated(t) => ContainerState {
            terminated: Some(k8s_terminated(t)),
            ..Default::default()
        },
    };
    let container_id = c
        .handle
        .as_ref()
        .map(container_id)
        .or_else(|| match &c.state {
            CState::Terminated(t) => t.container_id.clone(),
            _ => None,
        });
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: String::new(),
        container_id,
        state: Some(state),
        last_state: Some(
            c.last
                .as_ref()
                .map(|t| ContainerState {
                    terminated: Some(k8s_terminated(t)),
                    ..Default::default()
                })
                .unwrap_or_default(),
        ),
        ready: c.ready,
        started: Some(c.started),
        restart_count: c.restart_count as i32,
        ..Default::default()
    }
}

fn phase(s: &PodSnapshot) -> &'static str {
    if matches!(s.lifecycle, Lifecycle::Waiting | Lifecycle::Starting) && !s.initialized {
        return "Pending";
    }
    let all_done = !s.containers.is_empty()
        && s.containers
            .iter()
            .all(|c| matches!(c.state, CState::Terminated(_)));
    if all_done {
        let ok = s
            .containers
            .iter()
            .all(|c| matches!(&c.state, CState::Terminated(t) if t.exit_code == 0));
        return if ok { "Succeeded" } else { "Failed" };
    }
    if s.containers.iter().any(|c| {
        matches!(c.state, CState::Running { .. }) || c.restart_count > 0 || c.last.is_some()
    }) {
        "Running"
    } else {
        "Pending"
    }
}

fn condition(kind: &str, ok: bool, reason: Option<&str>) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: (!ok).then(|| reason.unwrap_or("ContainersNotReady").to_string()),
        ..Default::default()
    }
}

/// The Kubernetes Pod (with status) for one worker snapshot.
pub fn to_k8s_pod(s: &PodSnapshot, problems: &[Problem], node_ip: Option<IpAddr>) -> Pod {
    let mut pod = s.pod.pod.clone();
    let pids: BTreeMap<&str, i32> = s
        .containers
        .iter()
        .chain(s.init_containers.iter())
        .filter_map(|c| c.handle.as_ref().map(|h| (c.name.as_str(), h.pid)))
        .collect();
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            ANN_PIDS.into(),
            serde_json::to_string(&pids).unwrap_or_default(),
        );
    let failures: BTreeMap<&str, &ContainerFailures> = s
        .containers
        .iter()
        .chain(s.init_containers.iter())
        .filter(|c| !c.failures.is_empty())
        .map(|c| (c.name.as_str(), &c.failures))
        .collect();
    if !failures.is_empty() {
        if let Ok(json) = serde_json::to_string(&failures) {
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ANN_FAILURES.into(), json);
        }
    }
    if matches!(s.lifecycle, Lifecycle::Terminating | Lifecycle::Terminated) {
        pod.metadata.deletion_timestamp = time(SystemTime::now());
    }
    let containers_ready = !s.containers.is_empty() && s.containers.iter().all(|c| c.ready);
    let mut messages: Vec<String> = Vec::new();
    if let Some(m) = &s.message {
        messages.push(m.clone());
    }
    for p in problems
        .iter()
        .filter(|p| p.pod.as_deref() == Some(s.pod.name.as_str()))
    {
        messages.push(p.to_string());
    }
    let ip = node_ip.map(|i| i.to_string());
    pod.status = Some(PodStatus {
        phase: Some(phase(s).to_string()),
        conditions: Some(vec![
            condition("PodScheduled", true, None),
            condition(
                "Initialized",
                s.initialized,
                Some("ContainersNotInitialized"),
            ),
            condition("ContainersReady", containers_ready, None),
            condition("Ready", containers_ready, None),
        ]),
        message: (!messages.is_empty()).then(|| messages.join("; ")),
        reason: s.message.as_ref().map(|_| match s.lifecycle {
            Lifecycle::Waiting => "WaitingForPreviousPod".to_string(),
            _ => "ConfigError".to_string(),
        }),
        host_ip: ip.clone(),
        pod_ip: ip.clone(),
        pod_ips: ip.map(|i| vec![PodIP { ip: i }]),
        start_time: s.start_time.and_then(time),
        qos_class: Some(super::pod::qos_class(s.pod.spec()).into()),
        container_statuses: Some(s.containers.iter().map(container_status).collect()),
        init_container_statuses: (!s.init_containers.is_empty())
            .then(|| s.init_containers.iter().map(container_status).collect()),
        ..Default::default()
    });
    pod
}

/// The `/pods` body: a PodList plus the top-level `problems` array.
pub fn pods_json(view: &StatusView) -> serde_json::Value {
    let list = PodList {
        items: view
            .pods
            .iter()
            .map(|p| to_k8s_pod(p, &view.problems, view.node_ip))
            .collect(),
        metadata: Default::default(),
    };
    let mut v = serde_json::to_value(&list).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "problems".into(),
            serde_json::to_value(&view.problems).unwrap_or_default(),
        );
    }
    v
}

/// Answers one request path.
pub fn respond(path: &str, view: &ViewFn) -> (u16, &'static str, Vec<u8>) {
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/healthz" => (200, "text/plain", b"ok".to_vec()),
        "/pods" | "/pods/" => (
            200,
            "application/json",
            serde_json::to_vec_pretty(&pods_json(&view())).unwrap_or_default(),
        ),
        "/errors" => (
            200,
            "application/json",
            serde_json::to_vec_pretty(&serde_json::json!({ "problems": view().problems }))
                .unwrap_or_default(),
        ),
        _ => (
            404,
            "text/plain",
            b"not found: try /healthz, /pods, /errors\n".to_vec(),
        ),
    }
}

/// Serves the status API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, view: ViewFn) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let view = view.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let n = sock.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let text = String::from_utf8_lossy(&buf);
            let mut first = text.lines().next().unwrap_or("").split_whitespace();
            let method = first.next().unwrap_or("");
            let path = first.next().unwrap_or("/");
            let (code, ctype, body) = if method == "GET" || method == "HEAD" {
                respond(path, &view)
            } else {
                (405, "text/plain", b"method not allowed\n".to_vec())
            };
            let reason = match code {
                200 => "OK",
                404 => "Not Found",
                _ => "Method Not Allowed",
            };
            let head = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            if method != "HEAD" {
                let _ = sock.write_all(&body).await;
            }
            let _ = sock.shutdown().await;
        });
    }
}

/// One line of `plinth ps`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PsRow {
    /// Full pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// `Running`, `Waiting (CrashLoopBackOff)`, `Exited (1)`, ...
    pub state: String,
    /// Restart count.
    pub restarts: i32,
    /// Time since the current state began (`5s`, `3m`, `2h`, `4d`).
    pub age: String,
    /// Host pid of the running container.
    pub pid: Option<i32>,
    /// Readiness.
    pub ready: bool,
    /// True when the container is running.
    pub running: bool,
}

/// The `plinth ps` lines of a `/pods` list, at wall-clock `now`.
pub fn ps_rows(list: &PodList, now: SystemTime) -> Vec<PsRow> {
    let now_ts = time(now).map(|t| t.0);
    let age = |t: Option<&Time>| -> String {
        match (t, now_ts) {
            (Some(t), Some(n)) => {
                let secs = n.as_second() - t.0.as_second();
                format_age(Duration::from_secs(secs.max(0) as u64))
            }
            _ => "-".into(),
        }
    };
    let mut rows = Vec::new();
    for p in &list.items {
        let pod = p.metadata.name.clone().unwrap_or_default();
        let pids: BTreeMap<String, i32> = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_PIDS))
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let statuses = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        for cs in statuses {
            let st = cs.state.clone().unwrap_or_default();
            let (state, since, running) = if let Some(r) = &st.running {
                ("Running".to_string(), age(r.started_at.as_ref()), true)
            } else if let Some(w) = &st.waiting {
                (
                    format!("Waiting ({})", w.reason.clone().unwrap_or_default()),
                    age(p.status.as_ref().and_then(|s| s.start_time.as_ref())),
                    false,
                )
            } else if let Some(t) = &st.terminated {
                (
                    format!(
                        "Exited ({}, {})",
                        t.exit_code,
                        t.reason.clone().unwrap_or_default()
                    ),
                    age(t.finished_at.as_ref()),
                    false,
                )
            } else {
                ("Unknown".into(), "-".into(), false)
            };
            rows.push(PsRow {
                pod: pod.clone(),
                container: cs.name.clone(),
                state,
                restarts: cs.restart_count,
                age: since,
                pid: pids.get(&cs.name).copied(),
                ready: cs.ready,
                running,
            });
        }
    }
    rows
}

/// `5s`, `3m`, `2h`, `4d`.
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::podconfig::ProblemKind;
    use crate::agent::worker::tests::pod;
    use crate::runtime::ContainerHandle;

    fn snapshot() -> PodSnapshot {
        let p = pod("web", "Always", "sleep, '1'", "");
        let handle = ContainerHandle {
            id: "u/c/1".into(),
            pid: 4242,
            start_ticks: 1,
            started_at: SystemTime::now(),
        };
        PodSnapshot {
            pod: Arc::new(p),
            lifecycle: Lifecycle::Running,
            message: None,
            init_containers: vec![],
            containers: vec![ContainerSnapshot {
                name: "c".into(),
                image: "x".into(),
                state: CState::Running {
                    started_at: SystemTime::now(),
                },
                last: Some(Terminated {
                    exit_code: 137,
                    signal: Some(9),
                    reason: "Error".into(),
                    message: None,
                    started_at: None,
                    finished_at: SystemTime::now(),
                    container_id: Some("plinth://u/c/0".into()),
                }),
                restart_count: 1,
                ready: true,
                started: true,
                handle: Some(handle),
                failures: Default::default(),
            }],
            start_time: Some(SystemTime::now()),
            initialized: true,
        }
    }

    #[test]
    fn pod_status_has_phase_conditions_container_state_and_pid() {
        let s = snapshot();
        let problems = vec![Problem {
            kind: ProblemKind::InvalidManifest,
            file: "/m/p.yaml".into(),
            line: Some(3),
            reason: "invalid YAML".into(),
            pod: Some("web-n".into()),
        }];
        let p = to_k8s_pod(&s, &problems, Some("10.0.0.1".parse().unwrap()));
        let st = p.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        let conds = st.conditions.unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        let cs = &st.container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 1);
        assert_eq!(cs.container_id.as_deref(), Some("plinth://u/c/1"));
        assert!(cs.state.as_ref().unwrap().running.is_some());
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            137
        );
        assert_eq!(st.host_ip.as_deref(), Some("10.0.0.1"));
        assert!(st.message.unwrap().contains("/m/p.yaml:3: invalid YAML"));
        assert_eq!(p.metadata.annotations.unwrap()[ANN_PIDS], "{\"c\":4242}");
    }

    #[test]
    fn ps_rows_show_state_restarts_pid_and_ready() {
        let list = PodList {
            items: vec![to_k8s_pod(&snapshot(), &[], None)],
            metadata: Default::default(),
        };
        let rows = ps_rows(&list, SystemTime::now() + Duration::from_secs(125));
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.pod.as_str(), r.container.as_str()), ("web-n", "c"));
        assert_eq!(r.state, "Running");
        assert_eq!(r.restarts, 1);
        assert_eq!(r.pid, Some(4242));
        assert!(r.ready && r.running);
        assert_eq!(r.age, "2m");
        assert_eq!(format_age(Duration::from_secs(3 * 86400)), "3d");
    }

    #[test]
    fn phases() {
        let mut s = snapshot();
        s.containers[0].state = CState::Terminated(s.containers[0].last.clone().unwrap());
        assert_eq!(phase(&s), "Failed");
        if let CState::Terminated(t) = &mut s.containers[0].state {
            t.exit_code = 0;
        }
        assert_eq!(phase(&s), "Succeeded");
        s.containers[0].state = CState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        };
        s.containers[0].restart_count = 0;
        s.containers[0].last = None;
        assert_eq!(phase(&s), "Pending");
    }

    #[tokio::test]
    async fn serves_healthz_pods_and_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let view: ViewFn = Arc::new(|| StatusView {
            pods: vec![snapshot()],
            problems: vec![Problem {
                kind: ProblemKind::Conflict,
                file: "/m/dup.yaml".into(),
                line: None,
                reason: "dup".into(),
                pod: None,
            }],
            node_ip: None,
        });
        let server = tokio::spawn(serve(listener, view));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.ends_with("\r\n\r\nok"));
        let pods = get("/pods").await;
        let body = pods.split("\r\n\r\n").nth(1).unwrap();
        let list: PodList = serde_json::from_str(body).unwrap();
        assert_eq!(list.items[0].metadata.name.as_deref(), Some("web-n"));
        assert!(body.contains("/m/dup.yaml"));
        assert!(get("/errors").await.contains("/m/dup.yaml"));
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
