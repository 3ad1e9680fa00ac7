//! Integration tests: agent_e2e.
//!
//! The real `plinth agent` with the process runtime, each test in its own network namespace
//! and temp root, running a real TLS etcd (and small shell pods) from static pod manifests.
//! The status API is read from inside the namespace (127.0.0.1:10248).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::etcd::{etcdctl_binary, http_get_in};
use crate::support::{etcd_binary, pid_alive, wait_until, ChildGuard, EtcdPki, NetNs, TempRoot};

const NODE: &str = "node1";
const MANIFESTS: &str = "/etc/kubernetes/manifests";

/// One node: a temp root, a netns, and the agent running in it.
struct Node {
    root: TempRoot,
    ns: NetNs,
    agent: Option<ChildGuard>,
    starts: u32,
    /// `--file-check-frequency` (the relist period).
    relist: &'static str,
    /// More agent flags.
    extra_args: Vec<String>,
}

impl Node {
    fn new(tag: &str) -> Node {
        let root = TempRoot::new().expect("temp root");
        let ns = NetNs::create(tag).expect("netns");
        std::fs::create_dir_all(root.path(MANIFESTS)).unwrap();
        Node {
            root,
            ns,
            agent: None,
            starts: 0,
            relist: "2s",
            extra_args: Vec::new(),
        }
    }

    fn start_agent(&mut self) {
        self.starts += 1;
        let log = self.root.dir().join(format!("agent-{}.log", self.starts));
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_plinth"));
        cmd.env("PLINTH_LOG", "plinth=debug")
            .arg("agent")
            .arg("--root")
            .arg(self.root.dir())
            .args(["--pod-manifest-path", MANIFESTS])
            .args(["--node-name", NODE])
            .args(["--node-ip", &self.ns.addr().to_string()])
            .args(["--file-check-frequency", self.relist])
            .args(&self.extra_args);
        self.agent = Some(ChildGuard::spawn_logged(&mut cmd, &log).expect("start agent"));
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
            self.try_pods().is_some()
        });
        assert!(up, "agent status API not up:\n{}", self.agent_log());
    }

    fn kill_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            a.kill();
        }
    }

    fn agent_log(&self) -> String {
        self.agent.as_ref().map(|a| a.log()).unwrap_or_default()
    }

    fn write(&self, host_path: &str, data: impl AsRef<[u8]>) {
        let p = self.root.path(host_path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn try_pods(&self) -> Option<Value> {
        let (code, body) = http_get_in(&self.ns, "127.0.0.1:10248", "/pods").ok()?;
        if code != 200 {
            return None;
        }
        let body = body.split("\r\n\r\n").nth(1).unwrap_or(&body).to_string();
        serde_json::from_str(&body).ok()
    }

    fn pods(&self) -> Value {
        self.try_pods().unwrap_or(Value::Null)
    }

    fn pod(&self, name: &str) -> Option<Value> {
        let full = format!("{name}-{NODE}");
        self.pods()["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == full.as_str())
            .cloned()
    }

    /// The first container status of pod `name`.
    fn cs(&self, name: &str) -> Value {
        self.pod(name)
            .map(|p| p["status"]["containerStatuses"][0].clone())
            .unwrap_or(Value::Null)
    }

    fn pid(&self, name: &str) -> Option<i32> {
        let p = self.pod(name)?;
        let pids: Value =
            serde_json::from_str(p["metadata"]["annotations"]["plinth.io/pids"].as_str()?).ok()?;
        pids.as_object()?
            .values()
            .next()?
            .as_i64()
            .map(|v| v as i32)
    }

    fn ready_pid(&self, name: &str) -> Option<i32> {
        let cs = self.cs(name);
        if cs["ready"] == true && !cs["state"]["running"].is_null() {
            self.pid(name)
        } else {
            None
        }
    }

    fn wait(&self, what: &str, secs: u64, mut f: impl FnMut(&Node) -> bool) {
        let ok = wait_until(Duration::from_secs(secs), Duration::from_millis(50), || {
            f(self)
        });
        assert!(
            ok,
            "timed out after {secs}s waiting for {what}\n/pods: {}\nagent log:\n{}",
            serde_json::to_string_pretty(&self.pods()).unwrap_or_default(),
            self.agent_log()
        );
    }

    /// Pids in the namespace whose argv[0] ends with `name`.
    fn procs_named(&self, name: &str) -> Vec<i32> {
        self.ns
            .pids()
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .ok()
                    .and_then(|c| {
                        c.split(|b| *b == 0)
                            .next()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                    })
                    .is_some_and(|a0| a0 == name || a0.ends_with(&format!("/{name}")))
            })
            .collect()
    }

    fn problems(&self) -> String {
        self.pods()["problems"].to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The agent first, then the pods it left inside the namespace, then their cgroups
        // (a killed agent cannot remove them).
        self.kill_agent();
        self.ns.kill_all();
        crate::support::procs::remove_agent_cgroups(&self.root.path("/var/lib/plinth"));
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Certificates for etcd under the root, at the host paths the manifest names.
fn etcd_pki(node: &Node) -> EtcdPki {
    let pki = EtcdPki::new(&node.root.path("/etc/kubernetes/pki/etcd"), node.ns.addr())
        .expect("etcd pki");
    let data = node.root.path("/var/lib/etcd");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    pki
}

/// A kubeadm-shaped etcd static pod with TLS flags and probes (`extra` = one more flag).
fn etcd_manifest(addr: &str, extra: &str) -> String {
    let etcd = etcd_binary().expect("etcd binary (apt-get install etcd-server)");
    let pki = "/etc/kubernetes/pki/etcd";
    let mut flags = vec![
        "--name=node1".to_string(),
        "--data-dir=/var/lib/etcd".into(),
        format!("--listen-client-urls=https://127.0.0.1:2379,https://{addr}:2379"),
        format!("--advertise-client-urls=https://{addr}:2379"),
        format!("--listen-peer-urls=https://{addr}:2380"),
        format!("--initial-advertise-peer-urls=https://{addr}:2380"),
        format!("--initial-cluster=node1=https://{addr}:2380"),
        "--listen-metrics-urls=http://127.0.0.1:2381".into(),
        format!("--cert-file={pki}/etcd-server.crt"),
        format!("--key-file={pki}/etcd-server.key"),
        "--client-cert-auth=true".into(),
        format!("--trusted-ca-file={pki}/etcd-ca.crt"),
        format!("--peer-cert-file={pki}/etcd-peer.crt"),
        format!("--peer-key-file={pki}/etcd-peer.key"),
        "--peer-client-cert-auth=true".into(),
        format!("--peer-trusted-ca-file={pki}/etcd-ca.crt"),
        "--snapshot-count=10000".into(),
    ];
    if !extra.is_empty() {
        flags.push(extra.to_string());
    }
    let command: String = std::iter::once(etcd.display().to_string())
        .chain(flags)
        .map(|f| format!("    - {f}\n"))
        .collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
  labels: {{component: etcd, tier: control-plane}}
spec:
  hostNetwork: true
  priorityClassName: system-node-critical
  terminationGracePeriodSeconds: 10
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.21-0
    command:
{command}    livenessProbe:
      httpGet: {{host: 127.0.0.1, path: /health, port: 2381, scheme: HTTP}}
      periodSeconds: 2
      failureThreshold: 5
    startupProbe:
      httpGet: {{host: 127.0.0.1, path: /health, port: 2381, scheme: HTTP}}
      periodSeconds: 1
      failureThreshold: 30
    readinessProbe:
      httpGet: {{host: 127.0.0.1, path: /health, port: 2381, scheme: HTTP}}
      periodSeconds: 1
    volumeMounts:
    - {{mountPath: /var/lib/etcd, name: etcd-data}}
    - {{mountPath: /etc/kubernetes/pki/etcd, name: etcd-certs, readOnly: true}}
  volumes:
  - name: etcd-certs
    hostPath: {{path: /etc/kubernetes/pki/etcd, type: DirectoryOrCreate}}
  - name: etcd-data
    hostPath: {{path: /var/lib/etcd, type: DirectoryOrCreate}}
"
    )
}

fn etcdctl(node: &Node, pki: &EtcdPki, args: &[&str]) -> String {
    let out = node
        .ns
        .command(etcdctl_binary().expect("etcdctl (scripts/install-deps.sh: etcd-client)"))
        .env("ETCDCTL_API", "3")
        .arg("--endpoints=https://127.0.0.1:2379")
        .arg(format!("--cacert={}", pki.ca.cert.display()))
        .arg(format!("--cert={}", pki.client.cert.display()))
        .arg(format!("--key={}", pki.client.key.display()))
        .args(args)
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn etcd_ready_kill9_edit_and_removal() {
    let mut node = Node::new("ag-life");
    let _pki = etcd_pki(&node);
    let addr = node.ns.addr().to_string();
    node.write(&format!("{MANIFESTS}/etcd.yaml"), etcd_manifest(&addr, ""));
    node.start_agent();
    node.wait("etcd Ready", 60, |n| n.ready_pid("etcd").is_some());
    let pod = node.pod("etcd").unwrap();
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    let cs = node.cs("etcd");
    assert!(cs["containerID"].as_str().unwrap().starts_with("plinth://"));
    let p1 = node.ready_pid("etcd").unwrap();
    assert!(
        cmdline(p1).contains("--listen-metrics-urls"),
        "{}",
        cmdline(p1)
    );

    // kill -9 → restarted (first crash: at once) and Ready again.
    kill(Pid::from_raw(p1), Signal::SIGKILL).unwrap();
    node.wait("etcd restarted and Ready", 60, |n| {
        n.ready_pid("etcd").is_some_and(|p| p != p1)
    });
    let cs = node.cs("etcd");
    assert_eq!(cs["restartCount"], 1, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 137, "{cs}");
    let p2 = node.pid("etcd").unwrap();

    // Edit (add a flag): never two etcd processes at once; the new one has the flag.
    node.write(
        &format!("{MANIFESTS}/etcd.yaml"),
        etcd_manifest(&addr, "--heartbeat-interval=150"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut max_seen = 0;
    let p3 = loop {
        max_seen = max_seen.max(node.procs_named("etcd").len());
        if let Some(p) = node.ready_pid("etcd").filter(|p| *p != p2) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "new etcd not Ready:\n{}",
            node.agent_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(max_seen <= 1, "old and new etcd ran at the same time");
    assert!(!pid_alive(p2), "old etcd still alive");
    assert!(
        cmdline(p3).contains("--heartbeat-interval=150"),
        "{}",
        cmdline(p3)
    );
    assert_eq!(
        node.cs("etcd")["restartCount"],
        0,
        "a new pod, not a restart"
    );

    // Removal → the whole tree is gone and the pod leaves /pods.
    std::fs::remove_file(node.root.path(format!("{MANIFESTS}/etcd.yaml"))).unwrap();
    node.wait("etcd gone", 30, |n| {
        n.procs_named("etcd").is_empty() && n.pod("etcd").is_none()
    });
    assert!(!pid_alive(p3));
}

#[test]
fn agent_sigkill_and_restart_adopts_etcd() {
    let mut node = Node::new("ag-adopt");
    let pki = etcd_pki(&node);
    let addr = node.ns.addr().to_string();
    node.write(&format!("{MANIFESTS}/etcd.yaml"), etcd_manifest(&addr, ""));
    node.start_agent();
    node.wait("etcd Ready", 60, |n| n.ready_pid("etcd").is_some());
    let pid = node.ready_pid("etcd").unwrap();
    etcdctl(&node, &pki, &["put", "plinth-key", "survives"]);

    node.kill_agent();
    assert!(pid_alive(pid), "etcd must survive the agent");
    node.start_agent();
    node.wait("etcd adopted and Ready", 30, |n| {
        n.ready_pid("etcd").is_some()
    });
    assert_eq!(node.ready_pid("etcd"), Some(pid), "same etcd process");
    assert_eq!(node.cs("etcd")["restartCount"], 0);
    assert!(etcdctl(&node, &pki, &["get", "plinth-key"]).contains("survives"));
    assert!(node.agent_log().contains("adopted running container"));
}

#[test]
fn bad_files_never_stop_etcd_and_are_reported() {
    let mut node = Node::new("ag-bad");
    let _pki = etcd_pki(&node);
    let addr = node.ns.addr().to_string();
    let good = etcd_manifest(&addr, "");
    node.write(&format!("{MANIFESTS}/etcd.yaml"), &good);
    node.start_agent();
    node.wait("etcd Ready", 60, |n| n.ready_pid("etcd").is_some());
    let pid = node.ready_pid("etcd").unwrap();

    // Truncated (half-written) manifest, garbage, a wrong kind, 11 MiB, a duplicate name.
    node.write(&format!("{MANIFESTS}/etcd.yaml"), &good[..good.len() / 2]);
    node.write(
        &format!("{MANIFESTS}/garbage.yaml"),
        b"\x00\x01{{{:::\xff\xfe",
    );
    node.write(
        &format!("{MANIFESTS}/wrong-kind.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let mut big = good.clone().into_bytes();
    big.extend(std::iter::repeat_n(b'#', 11 * 1024 * 1024));
    node.write(&format!("{MANIFESTS}/big.yaml"), &big);
    node.write(&format!("{MANIFESTS}/etcd-copy.yaml"), &good);
    node.wait("all problems reported", 30, |n| {
        let p = n.problems();
        [
            "etcd.yaml",
            "garbage.yaml",
            "wrong-kind.yaml",
            "big.yaml",
            "etcd-copy.yaml",
        ]
        .iter()
        .all(|f| p.contains(&format!("{MANIFESTS}/{f}")))
            // Written in place: each is judged once it has stopped changing.
            && !p.contains("\"settling\"")
    });
    let problems = node.problems();
    assert!(
        problems.contains("only Pods can be static pods"),
        "{problems}"
    );
    assert!(problems.contains("larger than 10 MiB"), "{problems}");
    assert!(problems.contains("defined by several files"), "{problems}");
    // The affected pod's status names its file too.
    let msg = node.pod("etcd").unwrap()["status"]["message"].to_string();
    assert!(msg.contains("/etc/kubernetes/manifests/etcd.yaml"), "{msg}");
    // A relist later: etcd is the very same process, still Ready.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        node.ready_pid("etcd"),
        Some(pid),
        "{}\n{}",
        node.cs("etcd"),
        node.agent_log()
    );
    assert_eq!(node.cs("etcd")["restartCount"], 0);
    let errors = http_get_in(&node.ns, "127.0.0.1:10248", "/errors")
        .unwrap()
        .1;
    assert!(errors.contains("garbage.yaml"), "{errors}");

    // Fixing the file (same content as before) is a no-op for the running pod.
    for f in [
        "garbage.yaml",
        "wrong-kind.yaml",
        "big.yaml",
        "etcd-copy.yaml",
    ] {
        std::fs::remove_file(node.root.path(format!("{MANIFESTS}/{f}"))).unwrap();
    }
    node.write(&format!("{MANIFESTS}/etcd.yaml"), &good);
    node.wait("problems cleared", 30, |n| n.problems() == "[]");
    assert_eq!(node.ready_pid("etcd"), Some(pid));
}

/// Small shell pods: restartPolicy Never, liveness, termination grace, mounts.
#[test]
fn shell_pods_never_liveness_grace_and_mounts() {
    let mut node = Node::new("ag-misc");
    let pod = |name: &str, policy: &str, grace: u32, script: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: {grace}\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, '{script}']\n{extra}"
        )
    };
    node.write(
        &format!("{MANIFESTS}/once.yaml"),
        pod("once", "Never", 30, "sleep 1", ""),
    );
    node.write(
        &format!("{MANIFESTS}/live.yaml"),
        pod(
            "live",
            "Always",
            1,
            "exec sleep 1000",
            "    livenessProbe:\n      exec: {command: ['false']}\n      periodSeconds: 1\n      failureThreshold: 2\n",
        ),
    );
    node.write(
        &format!("{MANIFESTS}/graceful.yaml"),
        pod(
            "graceful",
            "Always",
            20,
            "trap \"echo got-term; sleep 2; echo bye; exit 0\" TERM; echo started; while :; do sleep 0.2; done",
            "",
        ),
    );
    node.write(
        &format!("{MANIFESTS}/stubborn.yaml"),
        pod(
            "stubborn",
            "Always",
            1,
            "trap \"\" TERM; echo started; while :; do sleep 0.2; done",
            "",
        ),
    );
    node.write("/srv/plinth-data/hello.txt", "hello-from-host\n");
    node.write(
        &format!("{MANIFESTS}/mounts.yaml"),
        pod(
            "mounts",
            "Always",
            1,
            "cat /mnt/plinth-e2e/hello.txt; if touch /mnt/plinth-e2e/w 2>/dev/null; then echo WRITABLE; else echo READONLY; fi; exec sleep 1000",
            "    volumeMounts:\n    - {name: data, mountPath: /mnt/plinth-e2e, readOnly: true}\n  volumes:\n  - name: data\n    hostPath: {path: /srv/plinth-data, type: Directory}\n",
        ),
    );
    node.write("/etc/plinth-e2e/app.conf", "v1\n");
    node.write(
        &format!("{MANIFESTS}/conf.yaml"),
        pod(
            "conf",
            "Always",
            1,
            "cat /etc/plinth-e2e/app.conf; exec sleep 1000",
            "    volumeMounts:\n    - {name: conf, mountPath: /etc/plinth-e2e}\n  volumes:\n  - name: conf\n    hostPath: {path: /etc/plinth-e2e, type: DirectoryOrCreate}\n",
        ),
    );
    node.start_agent();

    // A mounted configuration file changes (certificate renewal): that pod restarts.
    node.wait("conf running", 30, |n| n.pid("conf").is_some());
    let conf_pid = node.pid("conf").unwrap();
    let live_restarts_before = node.cs("once")["restartCount"].clone();
    node.write("/etc/plinth-e2e/app.conf", "v2\n");
    node.wait("conf restarted for its mounted file", 20, |n| {
        n.cs("conf")["lastState"]["terminated"]["reason"] == "MountedFileChanged"
    });
    assert_eq!(node.cs("conf")["restartCount"], 1);
    assert!(!pid_alive(conf_pid));
    assert_eq!(
        node.cs("once")["restartCount"],
        live_restarts_before,
        "other pods untouched"
    );

    // Never + `sleep 1` → Completed, never restarted.
    node.wait("once Completed", 30, |n| {
        n.cs("once")["state"]["terminated"]["reason"] == "Completed"
    });
    assert_eq!(node.cs("once")["state"]["terminated"]["exitCode"], 0);
    assert_eq!(node.pod("once").unwrap()["status"]["phase"], "Succeeded");

    // Liveness failure → restarted.
    node.wait("live restarted by liveness", 30, |n| {
        n.cs("live")["restartCount"].as_i64().unwrap_or(0) >= 1
    });
    let last = node.cs("live")["lastState"]["terminated"].clone();
    assert!(
        last["message"].as_str().unwrap_or("").contains("Liveness"),
        "{last}"
    );

    // The bind mount: the host dir under the root, seen at mountPath, read-only.
    node.wait("mounts pod logged", 30, |n| {
        let out = assert_cmd::Command::cargo_bin("plinth")
            .unwrap()
            .args(["logs", "mounts", "--root"])
            .arg(n.root.dir())
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.contains("hello-from-host") && (s.contains("READONLY") || s.contains("WRITABLE"))
    });
    let out = assert_cmd::Command::cargo_bin("plinth")
        .unwrap()
        .args(["logs", "mounts", "--root"])
        .arg(node.root.dir())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("READONLY") && !log.contains("WRITABLE"),
        "{log}"
    );
    assert!(!node.root.path("/srv/plinth-data/w").exists());

    // Grace honoured: SIGTERM, the trap runs for 2 s, exits by itself.
    node.wait("graceful running", 30, |n| n.pid("graceful").is_some());
    node.wait("stubborn running", 30, |n| n.pid("stubborn").is_some());
    let g = node.pid("graceful").unwrap();
    let s = node.pid("stubborn").unwrap();
    let removed = Instant::now();
    std::fs::remove_file(node.root.path(format!("{MANIFESTS}/graceful.yaml"))).unwrap();
    std::fs::remove_file(node.root.path(format!("{MANIFESTS}/stubborn.yaml"))).unwrap();
    node.wait("stubborn SIGKILLed after 1 s", 15, |_| !pid_alive(s));
    let stubborn_after = removed.elapsed();
    node.wait("graceful exited", 20, |_| !pid_alive(g));
    let graceful_after = removed.elapsed();
    assert!(
        stubborn_after >= Duration::from_millis(900),
        "{stubborn_after:?}"
    );
    assert!(
        graceful_after >= Duration::from_millis(1900),
        "{graceful_after:?}"
    );
    assert!(
        graceful_after < Duration::from_secs(15),
        "{graceful_after:?}"
    );
    // The log shim is its own process (as containerd's shim is): it writes the last lines the
    // container printed a moment after the container's exit, so wait for them, bounded.
    let graceful_log = |n: &Node| {
        std::fs::read_dir(n.root.path("/var/log/pods"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().contains("_graceful-"))
            .map(|e| std::fs::read_to_string(e.path().join("main/0.log")).unwrap_or_default())
            .unwrap_or_default()
    };
    let waited = Instant::now();
    while !graceful_log(&node).contains("bye") && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let glog = graceful_log(&node);
    assert!(glog.contains("got-term") && glog.contains("bye"), "{glog}");
}

/// Issue 10 item 4: `plinth logs` after restarts shows the live instance, `--previous`
/// exactly the one before, `-f` moves on across restarts, and a file is never reused for
/// another instance, also after an agent restart that lost its state. Each instance of the
/// pod prints `instance-<k>` with `k` counted on the host, which must equal its restart count.
#[test]
fn logs_after_restart_show_the_live_instance() {
    let mut node = Node::new("ag-logs");
    let script = "n=$(cat /mnt/cnt/n 2>/dev/null || echo 0); echo $((n+1)) > /mnt/cnt/n; echo instance-$n; sleep 2; exit 1";
    node.write(
        &format!("{MANIFESTS}/talk.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk}}\nspec:\n  hostNetwork: true\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, '{script}']\n    volumeMounts:\n    - {{name: cnt, mountPath: /mnt/cnt}}\n  volumes:\n  - name: cnt\n    hostPath: {{path: /srv/cnt, type: DirectoryOrCreate}}\n"
        ),
    );
    node.start_agent();
    let logs = |node: &Node, extra: &[&str]| -> String {
        // Inside the namespace: the agent's status API answers which instance is current.
        let out = node
            .ns
            .command(env!("CARGO_BIN_EXE_plinth"))
            .args(["logs", "talk", "--root"])
            .arg(node.root.dir())
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Only the pod's own lines: with PLINTH_LOG=debug the runtime's mount setup in the
        // forked child also logs into the container's stderr.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("instance-"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let restarts = |n: &Node| n.cs("talk")["restartCount"].as_i64();
    node.wait("talk restarted", 40, |n| restarts(n).unwrap_or(0) >= 1);

    // Follow from now on.
    let follow_log = node.root.dir().join("follow.log");
    let mut follow_cmd = node.ns.command(env!("CARGO_BIN_EXE_plinth"));
    follow_cmd
        .args(["logs", "-f", "talk", "--root"])
        .arg(node.root.dir());
    let mut follower = ChildGuard::spawn_logged(&mut follow_cmd, &follow_log).unwrap();

    // The current instance, exactly; --previous: exactly the one before.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rc = loop {
        assert!(Instant::now() < deadline, "talk never logged");
        let before = restarts(&node).unwrap();
        let (cur, prev) = (logs(&node, &[]), logs(&node, &["--previous"]));
        // (A just-started instance may not have printed yet.)
        if restarts(&node) == Some(before) && !cur.is_empty() {
            assert_eq!(cur, format!("instance-{before}\n"), "current instance");
            assert_eq!(
                prev,
                format!("instance-{}\n", before - 1),
                "previous instance"
            );
            break before;
        }
    };
    let uid = node.pod("talk").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let cdir = node
        .root
        .path(format!("/var/log/pods/default_talk-{NODE}_{uid}/main"));
    let first = std::fs::read(cdir.join("0.log")).unwrap();

    // The agent goes away and loses its state; the instance running then ends meanwhile.
    node.kill_agent();
    std::fs::remove_dir_all(node.root.path("/var/lib/plinth/pods")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let counted: i64 = std::fs::read_to_string(node.root.path("/srv/cnt/n"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    node.start_agent();
    // The count continues after the files there: the next instance is `counted`.
    node.wait("talk started again by the new agent", 30, |n| {
        restarts(n) == Some(counted) && cdir.join(format!("{counted}.log")).exists()
    });
    assert!(counted > rc);
    node.wait("the new instance logged", 20, |n| {
        logs(n, &[]) == format!("instance-{counted}\n")
    });
    assert_eq!(
        std::fs::read(cdir.join("0.log")).unwrap(),
        first,
        "a dead instance's file was written again"
    );
    for k in 0..=counted {
        let text = std::fs::read_to_string(cdir.join(format!("{k}.log"))).unwrap();
        assert_eq!(
            text.matches("instance-").count(),
            1,
            "{k}.log holds one instance: {text}"
        );
        assert!(text.contains(&format!("instance-{k}\n")), "{k}.log: {text}");
    }

    // -f went on from instance to instance, across the agent restart.
    node.wait("the follower reached the new instance", 20, |_| {
        std::fs::read_to_string(&follow_log)
            .unwrap_or_default()
            .contains(&format!("instance-{counted}\n"))
    });
    let followed = std::fs::read_to_string(&follow_log).unwrap();
    let pos = |k: i64| followed.find(&format!("instance-{k}\n"));
    assert!(pos(rc).is_some(), "{followed}");
    for k in rc..counted {
        assert!(
            pos(k) < pos(k + 1),
            "instance-{k} before instance-{}: {followed}",
            k + 1
        );
    }
    follower.kill();
}

/// A small shell pod (`script` runs under `sh -c`), restartPolicy Always, grace 1 s.
fn shell_pod(name: &str, script: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, '{script}']\n{extra}"
    )
}

/// Lines of the agent log saying a container of pod `name` started.
fn starts_logged(node: &Node, name: &str) -> usize {
    let full = format!("{name}-{NODE}");
    node.agent_log()
        .lines()
        .filter(|l| l.contains("container started") && l.contains(&full))
        .count()
}

/// The pod log dirs (`<ns>_<name>-<node>_<uid>`) of pod `name`: one per pod version started.
fn log_dirs(node: &Node, name: &str) -> Vec<std::path::PathBuf> {
    let marker = format!("_{name}-{NODE}_");
    let mut v: Vec<_> = std::fs::read_dir(node.root.path("/var/log/pods"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(&marker))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Regression (issue 8, item 1): kube-apiserver and kube-controller-manager were restarted
/// with reason MountedFileChanged ~20 s after init although no file changed: the digest was
/// taken before the agent created their missing DirectoryOrCreate hostPaths. Here a pod
/// mounts such paths and runs across many relists (every 200 ms): it is never restarted.
#[test]
fn no_spurious_mounted_file_restart_after_hostpath_dirs_created() {
    let mut node = Node::new("ag-mfc");
    node.relist = "200ms";
    assert!(!node.root.path("/etc/plinth-e2e-ca").exists());
    node.write(
        &format!("{MANIFESTS}/cacerts.yaml"),
        shell_pod(
            "cacerts",
            "exec sleep 1000",
            "    volumeMounts:\n    - {name: ca, mountPath: /etc/plinth-e2e-ca, readOnly: true}\n    - {name: local, mountPath: /usr/local/share/plinth-e2e-ca, readOnly: true}\n  volumes:\n  - name: ca\n    hostPath: {path: /etc/plinth-e2e-ca, type: DirectoryOrCreate}\n  - name: local\n    hostPath: {path: /usr/local/share/plinth-e2e-ca, type: DirectoryOrCreate}\n",
        ),
    );
    node.start_agent();
    node.wait("cacerts running", 30, |n| n.pid("cacerts").is_some());
    let pid = node.pid("cacerts").unwrap();
    assert!(node.root.path("/etc/plinth-e2e-ca").is_dir());
    assert!(node.root.path("/usr/local/share/plinth-e2e-ca").is_dir());
    // 15 relist periods, each checking the mounted files.
    std::thread::sleep(Duration::from_secs(3));
    let cs = node.cs("cacerts");
    assert_eq!(cs["restartCount"], 0, "{cs}\n{}", node.agent_log());
    assert_eq!(node.pid("cacerts"), Some(pid));
    assert!(pid_alive(pid));
    assert!(
        !node.agent_log().contains("mounted files changed"),
        "{}",
        node.agent_log()
    );
    assert_eq!(starts_logged(&node, "cacerts"), 1, "{}", node.agent_log());
}

/// Regression (issue 8, item 7): a NEW manifest written in place in 24-byte chunks 0.3 s
/// apart (each chunk opened, appended, closed) was admitted after 192 of 325 bytes and its
/// pod started with 0 of its 4 env vars. Now the pod starts exactly once, from the complete
/// file; an in-place edit of the running pod's file is applied once, complete, too.
#[test]
fn half_written_new_manifest_never_starts() {
    use std::io::Write;
    let mut node = Node::new("ag-chunk");
    node.start_agent();
    let manifest = |vars: &[(&str, &str)]| {
        let names: Vec<String> = vars.iter().map(|(k, _)| format!("{k}=${k}")).collect();
        let env: String = vars
            .iter()
            .map(|(k, v)| format!("    - {{name: {k}, value: \"{v}\"}}\n"))
            .collect();
        shell_pod(
            "chunky",
            &format!("echo \"vars: {}\"; exec sleep 1000", names.join(" ")),
            &format!("    env:\n{env}"),
        )
    };
    let write_chunked = |text: &str| {
        // In place: the first chunk truncates the file, the others append; the file is
        // closed after each chunk, as a chunked network copy does.
        let path = node.root.path(format!("{MANIFESTS}/chunky.yaml"));
        for (i, chunk) in text.as_bytes().chunks(24).enumerate() {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(i == 0)
                .append(i > 0)
                .open(&path)
                .unwrap();
            f.write_all(chunk).unwrap();
            drop(f);
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let v1 = manifest(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")]);
    assert!(v1.len() > 300, "{}", v1.len());
    // While it is being written the agent says it is waiting, and starts nothing.
    let path = node.root.path(format!("{MANIFESTS}/chunky.yaml"));
    std::fs::write(&path, &v1.as_bytes()[..24]).unwrap();
    node.wait("settling reported", 10, |n| {
        n.problems().contains("settling") && n.problems().contains("chunky.yaml")
    });
    write_chunked(&v1);
    node.wait("chunky running", 30, |n| n.pid("chunky").is_some());
    let logs = log_dirs(&node, "chunky");
    assert_eq!(
        logs.len(),
        1,
        "more than one version started: {logs:?}\n{}",
        node.agent_log()
    );
    node.wait("chunky logged its env", 10, |_| {
        std::fs::read_to_string(logs[0].join("main/0.log"))
            .unwrap_or_default()
            .contains("vars: A=1 B=2 C=3 D=4")
    });
    assert_eq!(starts_logged(&node, "chunky"), 1, "{}", node.agent_log());
    let pid = node.pid("chunky").unwrap();

    // An in-place edit of the running pod's file, in chunks: replaced once, by the complete
    // new version (the old one keeps running meanwhile).
    let v2 = manifest(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4"), ("E", "5")]);
    write_chunked(&v2);
    node.wait("chunky replaced", 30, |n| {
        n.pid("chunky").is_some_and(|p| p != pid)
    });
    let logs = log_dirs(&node, "chunky");
    assert_eq!(logs.len(), 2, "{logs:?}\n{}", node.agent_log());
    assert_eq!(starts_logged(&node, "chunky"), 2, "{}", node.agent_log());
    node.wait("the new version logged its env", 10, |_| {
        logs.iter().any(|d| {
            std::fs::read_to_string(d.join("main/0.log"))
                .unwrap_or_default()
                .contains("vars: A=1 B=2 C=3 D=4 E=5")
        })
    });
    assert!(node.problems() == "[]", "{}", node.problems());
}

/// A manifest renamed into place (the atomic write) starts at once, without waiting for the
/// settle window (here 10 s), while one written in place waits for it.
#[test]
fn renamed_in_manifest_starts_without_settle_wait() {
    let mut node = Node::new("ag-rename");
    node.extra_args = vec!["--manifest-settle-window".into(), "10s".into()];
    node.start_agent();
    let tmp = node.root.path(format!("{MANIFESTS}/.quick.yaml.tmp"));
    std::fs::write(&tmp, shell_pod("quick", "exec sleep 1000", "")).unwrap();
    let t0 = Instant::now();
    std::fs::rename(&tmp, node.root.path(format!("{MANIFESTS}/quick.yaml"))).unwrap();
    node.wait("quick running", 10, |n| n.pid("quick").is_some());
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "renamed-in pod took {took:?}"
    );
    // Written in place: held back, reported as waiting.
    node.write(
        &format!("{MANIFESTS}/slow.yaml"),
        shell_pod("slow", "exec sleep 1000", ""),
    );
    node.wait("slow reported as settling", 5, |n| {
        n.problems().contains("slow.yaml") && n.problems().contains("settling")
    });
    assert!(node.pod("slow").is_none(), "{}", node.pods());
    assert!(
        node.agent_log()
            .contains("waiting until it has been unchanged for 10s"),
        "{}",
        node.agent_log()
    );
}

/// The cgroup directories `<parent>/<uid>` in every hierarchy this process sees (the agent
/// runs in the test's cgroup, so a relative parent resolves the same way for it).
fn pod_cgroup_dirs(parent: &str, uid: &str) -> Vec<std::path::PathBuf> {
    use plinth::runtime::process::cgroups::{CgroupLayout, CgroupParent};
    let layout = CgroupLayout::detect();
    let p = CgroupParent::parse(parent).unwrap();
    layout
        .v2
        .iter()
        .chain(layout.v1.iter())
        .filter_map(|h| h.dir_of(&p.path_in(h)))
        .map(|d| d.join(uid))
        .collect()
}

/// Removes the test's own cgroup parent (and anything left below it) on drop.
struct CgroupParentGuard(String);

impl Drop for CgroupParentGuard {
    fn drop(&mut self) {
        for parent in pod_cgroup_dirs(&self.0, "") {
            if let Ok(rd) = std::fs::read_dir(&parent) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        // Leaves first (processes were killed by the test or the netns).
                        for leaf in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                            let _ = std::fs::remove_dir(leaf.path());
                        }
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
    }
}

/// Runs a two-process pod under the test's own cgroup parent, SIGKILLs the agent and then
/// every process of the pod; returns the pod's cgroup dirs (existing, now empty).
fn run_then_kill_agent_and_pod(node: &mut Node, parent: &str) -> Vec<std::path::PathBuf> {
    node.extra_args = vec!["--cgroup-parent".into(), parent.to_string()];
    node.write(
        &format!("{MANIFESTS}/victim.yaml"),
        shell_pod("victim", "sleep 1000 & exec sleep 1001", ""),
    );
    node.start_agent();
    node.wait("victim running", 30, |n| n.pid("victim").is_some());
    let uid = node.pod("victim").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let dirs: Vec<_> = pod_cgroup_dirs(parent, &uid)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    assert!(!dirs.is_empty(), "no pod cgroup under {parent} for {uid}");
    node.kill_agent();
    let procs = |d: &std::path::Path| -> Vec<i32> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .flat_map(|e| {
                std::fs::read_to_string(e.path().join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let pids: std::collections::BTreeSet<i32> = dirs.iter().flat_map(|d| procs(d)).collect();
    assert!(pids.len() >= 2, "{pids:?}");
    for p in &pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || dirs.iter().all(|d| procs(d).is_empty())
    ));
    assert!(dirs.iter().all(|d| d.is_dir()), "stale cgroups expected");
    dirs
}

/// Regression (issue 8, item 10): cgroups the agent created stayed behind when the agent
/// and its pods were killed. A restarted agent (the pod's manifest now removed) removes them.
#[test]
fn stale_pod_cgroups_removed_after_agent_kill() {
    let parent = format!("plinth-e2e-{}-cgkill", std::process::id());
    let _guard = CgroupParentGuard(parent.clone());
    let mut node = Node::new("ag-cgkill");
    let dirs = run_then_kill_agent_and_pod(&mut node, &parent);
    std::fs::remove_file(node.root.path(format!("{MANIFESTS}/victim.yaml"))).unwrap();
    node.start_agent();
    node.wait("stale pod cgroups removed", 20, |_| {
        dirs.iter().all(|d| !d.exists())
    });
}

/// Regression (issue 8, item 10): `plinth reset` removes the cgroups of the node's pods
/// (found through the record in the agent's state dir) after the agent and pods were killed.
#[test]
fn stale_pod_cgroups_removed_by_reset() {
    let parent = format!("plinth-e2e-{}-cgreset", std::process::id());
    let _guard = CgroupParentGuard(parent.clone());
    let mut node = Node::new("ag-cgreset");
    let dirs = run_then_kill_agent_and_pod(&mut node, &parent);
    let out = assert_cmd::Command::cargo_bin("plinth")
        .unwrap()
        .args(["reset", "--force", "--root"])
        .arg(node.root.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in &dirs {
        assert!(!d.exists(), "{} left:\n{stdout}", d.display());
        assert!(
            stdout.contains(&format!("[reset] removed {}", d.display())),
            "{stdout}"
        );
    }
    for p in pod_cgroup_dirs(&parent, "") {
        assert!(!p.exists(), "{} left:\n{stdout}", p.display());
    }
}

/// Two agents on different roots with the same node name run a pod from the same manifest:
/// equal pod UIDs. Removing the pod on one node must not touch the other node's process (they
/// shared one cgroup `plinth/<uid>/…` below the test's cgroup, and the first agent's cleanup of
/// that cgroup killed the second node's container). Each root now gets its own cgroup parent.
#[test]
fn agents_on_two_roots_never_share_a_pod_cgroup() {
    let pod = shell_pod("twin", "exec sleep 1000", "");
    let mut a = Node::new("ag-twin-a");
    let mut b = Node::new("ag-twin-b");
    for n in [&a, &b] {
        n.write(&format!("{MANIFESTS}/twin.yaml"), &pod);
    }
    a.start_agent();
    b.start_agent();
    a.wait("twin running on a", 30, |n| n.pid("twin").is_some());
    b.wait("twin running on b", 30, |n| n.pid("twin").is_some());
    let uid = |n: &Node| n.pod("twin").unwrap()["metadata"]["uid"].clone();
    assert_eq!(uid(&a), uid(&b), "the premise: equal pod UIDs");
    let pid_b = b.pid("twin").unwrap();

    std::fs::remove_file(a.root.path(format!("{MANIFESTS}/twin.yaml"))).unwrap();
    a.wait("twin gone on a", 30, |n| n.pod("twin").is_none());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        pid_alive(pid_b),
        "removing the pod on node a killed node b's container {pid_b}\nagent a:\n{}",
        a.agent_log()
    );
    assert_eq!(b.pid("twin"), Some(pid_b));
    assert_eq!(b.cs("twin")["restartCount"], 0, "{}", b.cs("twin"));
    a.kill_agent();
    b.kill_agent();
}
