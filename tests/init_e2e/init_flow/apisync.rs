//! The agent in the API (issue 11, items 1–3): after `plinth init`, real kubectl sees the Node
//! and the four mirror pods, and they follow the agent: kill -9, `kubectl delete pod`, a
//! manifest edit, the apiserver unreachable for a minute. With the doubles (no API to speak
//! of) the sync must fail quietly and never disturb init or the pods.

use super::*;
use crate::support::doubles::using_doubles;

const NODE: &str = "apisync1";

fn node() -> Node {
    let node = Node::new("apisync");
    let text = std::fs::read_to_string(&node.cfg).unwrap();
    std::fs::write(
        &node.cfg,
        text.replace("  name: cp1\n", &format!("  name: {NODE}\n")),
    )
    .unwrap();
    node
}

/// `kubectl ARGS -o json` with admin.conf inside the netns (None when it fails).
fn kubectl_json(node: &Node, args: &[&str]) -> Option<Value> {
    let kubectl = kubectl_binary().expect("kubectl");
    let kc = node.root.path("/etc/kubernetes/admin.conf");
    let kc = kc.display().to_string();
    let mut all = vec!["--kubeconfig", &kc, "--request-timeout=5s"];
    all.extend(args);
    all.extend(["-o", "json"]);
    let out = node.run(&kubectl, &all, SHORT);
    if !out.ok() {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

fn kubectl(node: &Node, args: &[&str]) -> Out {
    let kubectl = kubectl_binary().expect("kubectl");
    let kc = node.root.path("/etc/kubernetes/admin.conf");
    let kc = kc.display().to_string();
    let mut all = vec!["--kubeconfig", &kc];
    all.extend(args);
    node.run(&kubectl, &all, SHORT)
}

/// Mirror pods by component: (uid, restarts per container, all ready, phase, owner kind).
#[derive(Debug, Clone, PartialEq)]
struct Mirror {
    uid: String,
    restarts: i64,
    ready: bool,
    phase: String,
    owner_kind: String,
    hash: String,
}

fn mirrors(node: &Node) -> BTreeMap<String, Mirror> {
    let Some(v) = kubectl_json(node, &["get", "pods", "-n", "kube-system"]) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for p in v["items"].as_array().into_iter().flatten() {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let Some(component) = name.strip_suffix(&format!("-{NODE}")) else {
            continue;
        };
        let cs = p["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        out.insert(
            component.to_string(),
            Mirror {
                uid: p["metadata"]["uid"].as_str().unwrap_or_default().into(),
                restarts: cs
                    .iter()
                    .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                    .sum(),
                ready: !cs.is_empty() && cs.iter().all(|c| c["ready"] == true),
                phase: p["status"]["phase"].as_str().unwrap_or_default().into(),
                owner_kind: p["metadata"]["ownerReferences"][0]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                hash: p["metadata"]["annotations"]["kubernetes.io/config.mirror"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            },
        );
    }
    out
}

fn node_ready(node: &Node) -> bool {
    kubectl_json(node, &["get", "node", NODE]).is_some_and(|n| {
        n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// All four mirror pods Running and Ready, owned by the Node, restart counts as the agent's.
fn consistent(node: &Node) -> Result<(), String> {
    let m = mirrors(node);
    let agent = node.restarts();
    for c in COMPONENTS {
        let Some(p) = m.get(c) else {
            return Err(format!("no mirror pod for {c}: {m:?}"));
        };
        if p.phase != "Running" || !p.ready || p.owner_kind != "Node" {
            return Err(format!("{c}: {p:?}"));
        }
        let a = agent.get(c).map(|r| r.0).unwrap_or(-1);
        if a != p.restarts {
            return Err(format!("{c}: agent restartCount {a}, API {}", p.restarts));
        }
    }
    Ok(())
}

fn eventually<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return (v, start.elapsed()),
            Err(e) => assert!(
                start.elapsed() < limit,
                "{what}: still not after {limit:?}: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_registers_node_and_mirror_pods_that_follow_it() {
    let mut node = node();
    node.init_ok();
    if using_doubles() {
        // The double serves no nodes or pods: the sync fails, quietly and with backoff, and
        // nothing else notices. (Run with PLINTH_E2E_BIN_DIR for the real checks.)
        eprintln!("agent_registers_node_and_mirror_pods_that_follow_it: PLINTH_E2E_BIN_DIR unset (test doubles): checking only that the API sync fails quietly");
        std::thread::sleep(Duration::from_secs(5));
        let pids = node.running_pids();
        assert_eq!(pids.len(), 4, "{pids:?}");
        assert!(
            node.restarts().values().all(|r| r.0 == 0),
            "{:?}",
            node.restarts()
        );
        let log = String::from_utf8_lossy(&node.read("/var/log/plinth/agent.log")).into_owned();
        let warns = log
            .lines()
            .filter(|l| l.contains("API sync:") && l.contains("WARN"))
            .count();
        assert!(
            warns <= 4,
            "API sync failures must be logged once per streak:\n{log}"
        );
        node.verify_eventually("init");
        node.reset();
        return;
    }
    // The Node, Ready; the four mirror pods, as the agent sees them (item 3: same story).
    eventually("Node Ready", SHORT, || {
        node_ready(&node).then_some(()).ok_or("not ready".into())
    });
    eventually("mirror pods consistent with plinth ps", SHORT, || {
        consistent(&node)
    });
    let lease =
        kubectl_json(&node, &["get", "lease", NODE, "-n", "kube-node-lease"]).expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], NODE);

    // kill -9: kubectl's restartCount follows the agent's within 2 s.
    let before = mirrors(&node)["kube-scheduler"].clone();
    let pid = node.running_pids()["kube-scheduler"];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (_, agent_at) = eventually("agent sees the restart", SHORT, || {
        let r = node.restarts()["kube-scheduler"].0;
        (r > before.restarts)
            .then_some(())
            .ok_or(format!("agent restarts {r}"))
    });
    let (_, api_at) = eventually("API sees the restart", SHORT, || {
        let r = mirrors(&node)
            .get("kube-scheduler")
            .map(|m| m.restarts)
            .unwrap_or(0);
        (r > before.restarts)
            .then_some(())
            .ok_or(format!("API restarts {r}"))
    });
    eprintln!("kill -9: agent {agent_at:?}, API {api_at:?} after the kill");
    assert!(
        api_at <= agent_at + Duration::from_secs(2),
        "API {api_at:?} vs agent {agent_at:?}"
    );
    eventually("consistent after kill -9", SHORT, || consistent(&node));

    // kubectl delete pod: back within 2 s, the scheduler process untouched.
    let pid = node.running_pids()["kube-scheduler"];
    let old = mirrors(&node)["kube-scheduler"].uid.clone();
    let del = kubectl(
        &node,
        &[
            "delete",
            "pod",
            &format!("kube-scheduler-{NODE}"),
            "-n",
            "kube-system",
        ],
    );
    assert!(del.ok(), "{}", del.show());
    let (_, back) = eventually(
        "mirror pod back",
        Duration::from_secs(2),
        || match mirrors(&node).get("kube-scheduler") {
            Some(m) if m.uid != old => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    eprintln!("kubectl delete pod: back after {back:?}");
    assert_eq!(
        node.running_pids()["kube-scheduler"],
        pid,
        "the scheduler process kept running"
    );
    eventually("consistent after delete", SHORT, || consistent(&node));

    // A manifest edit replaces the mirror pod (new config hash).
    let path = "/etc/kubernetes/manifests/kube-scheduler.yaml";
    let text = String::from_utf8(node.read(path)).unwrap();
    let edited = text.replacen(
        "    tier: control-plane\n",
        "    tier: control-plane\n    e2e: edited\n",
        1,
    );
    assert_ne!(text, edited, "no tier label in {path}:\n{text}");
    let before = mirrors(&node)["kube-scheduler"].clone();
    let tmp = node.root.path("/etc/kubernetes/kube-scheduler.yaml.new");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, node.root.path(path)).unwrap();
    eventually("mirror pod replaced", LONG, || {
        let m = mirrors(&node);
        match m.get("kube-scheduler") {
            Some(p) if p.hash != before.hash && p.uid != before.uid && p.ready => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let labels = kubectl_json(
        &node,
        &[
            "get",
            "pod",
            &format!("kube-scheduler-{NODE}"),
            "-n",
            "kube-system",
        ],
    )
    .expect("pod")["metadata"]["labels"]
        .clone();
    assert_eq!(labels["e2e"], "edited");
    eventually("consistent after the edit", LONG, || consistent(&node));

    // The apiserver unreachable for 60 s (stopped, so requests hang): every pod keeps
    // running (components that lose their leader lease restart, as under a kubelet), and the
    // API catches up afterwards.
    let apiserver = node.running_pids()["kube-apiserver"];
    let stop = nix::unistd::Pid::from_raw(apiserver);
    nix::sys::signal::kill(stop, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    let pids = node.pids();
    nix::sys::signal::kill(stop, nix::sys::signal::Signal::SIGCONT).unwrap();
    for c in COMPONENTS {
        assert!(
            pids.contains_key(c),
            "{c} not running during the outage: {pids:?}"
        );
    }
    let (_, caught_up) = eventually("caught up after the outage", LONG, || consistent(&node));
    eprintln!("API caught up {caught_up:?} after the apiserver continued");
    assert!(node_ready(&node));
    node.reset();
}
