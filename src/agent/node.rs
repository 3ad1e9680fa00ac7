//! The agent's Node and Lease as the API sees them, built from the host (pure once the host
//! facts are gathered).
//!
//! Like the kubelet (`kubelet_node_status.go`): addresses (InternalIP = the node address,
//! Hostname), capacity and allocatable (cpu, memory, pods, ephemeral-storage; allocatable is
//! capacity less the kubelet's default hard eviction thresholds, memory.available 100Mi and
//! nodefs.available 10 %), nodeInfo (OS, kernel, architecture, machine ID, boot ID, system UUID,
//! the agent's version as kubeletVersion and `plinth://<version>` as the runtime), and the
//! conditions Ready, MemoryPressure, DiskPressure and PIDPressure with values measured on the
//! host against those same thresholds. The Lease in `kube-node-lease` is what the node
//! lifecycle controller watches for liveness (`nodelease`: 40 s, renewed every 10 s).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
use serde_json::json;

use super::status::time;

/// The agent's version, as the Node reports it (`kubeletVersion`).
pub const AGENT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// The runtime the Node reports (`containerRuntimeVersion`).
pub const RUNTIME_VERSION: &str = concat!("plinth://", env!("CARGO_PKG_VERSION"));
/// Pods per node (the kubelet's default `maxPods`).
pub const MAX_PODS: u32 = 110;
/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// `leaseDurationSeconds` of the node lease (kubelet's `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// memory.available below this is memory pressure (kubelet's default hard eviction).
pub const MEMORY_EVICTION_BYTES: u64 = 100 * 1024 * 1024;
/// nodefs.available below this percentage is disk pressure.
pub const DISK_EVICTION_PERCENT: u64 = 10;
/// nodefs.inodesFree below this percentage is disk pressure.
pub const INODES_EVICTION_PERCENT: u64 = 5;
/// Free process IDs below this percentage of `pid_max` is PID pressure.
pub const PID_EVICTION_PERCENT: u64 = 5;

/// What the host is, measured once per node status update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Online CPUs.
    pub cpus: u64,
    /// MemTotal (bytes).
    pub memory_bytes: u64,
    /// MemAvailable (bytes).
    pub memory_available: u64,
    /// Size of the filesystem holding the agent's state dir (bytes).
    pub fs_bytes: u64,
    /// Available bytes on it (to unprivileged users, as the kubelet counts).
    pub fs_available: u64,
    /// Inodes on it.
    pub fs_inodes: u64,
    /// Free inodes on it.
    pub fs_inodes_free: u64,
    /// kernel.pid_max.
    pub pid_max: u64,
    /// Processes and threads in use (from /proc/loadavg).
    pub pids_in_use: u64,
    /// /etc/machine-id.
    pub machine_id: String,
    /// /sys/class/dmi/id/product_uuid (empty when unreadable).
    pub system_uuid: String,
    /// /proc/sys/kernel/random/boot_id.
    pub boot_id: String,
    /// uname -r.
    pub kernel: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os_image: String,
    /// Go's name of the architecture (amd64, arm64, …).
    pub arch: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Go's GOARCH for Rust's `target_arch`.
pub fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl HostFacts {
    /// Measures the host; `fs` is a path on the filesystem the node's disk pressure is
    /// judged by (the agent's state dir, like the kubelet's root dir).
    pub fn gather(fs: &Path) -> HostFacts {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = |key: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
        let (fs_bytes, fs_available, fs_inodes, fs_inodes_free) =
            match nix::sys::statvfs::statvfs(fs) {
                Ok(s) => {
                    let f = s.fragment_size().max(1);
                    (
                        s.blocks() * f,
                        s.blocks_available() * f,
                        s.files(),
                        s.files_available(),
                    )
                }
                Err(_) => (0, 0, 0, 0),
            };
        let pids_in_use = read_trim("/proc/loadavg")
            .split_whitespace()
            .nth(3)
            .and_then(|f| f.split('/').nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let os_image = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        HostFacts {
            cpus,
            memory_bytes: kib("MemTotal:"),
            memory_available: kib("MemAvailable:"),
            fs_bytes,
            fs_available,
            fs_inodes,
            fs_inodes_free,
            pid_max: read_trim("/proc/sys/kernel/pid_max").parse().unwrap_or(0),
            pids_in_use,
            machine_id: {
                let m = read_trim("/etc/machine-id");
                if m.is_empty() {
                    read_trim("/var/lib/dbus/machine-id")
                } else {
                    m
                }
            },
            system_uuid: read_trim("/sys/class/dmi/id/product_uuid").to_lowercase(),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os_image,
            arch: go_arch(std::env::consts::ARCH).to_string(),
        }
    }

    /// memory.available below the hard eviction threshold.
    pub fn memory_pressure(&self) -> bool {
        self.memory_bytes > 0 && self.memory_available < MEMORY_EVICTION_BYTES
    }

    /// nodefs.available or nodefs.inodesFree below their thresholds.
    pub fn disk_pressure(&self) -> bool {
        (self.fs_bytes > 0 && self.fs_available * 100 < self.fs_bytes * DISK_EVICTION_PERCENT)
            || (self.fs_inodes > 0
                && self.fs_inodes_free * 100 < self.fs_inodes * INODES_EVICTION_PERCENT)
    }

    /// Free PIDs below the threshold.
    pub fn pid_pressure(&self) -> bool {
        self.pid_max > 0
            && self.pid_max.saturating_sub(self.pids_in_use) * 100
                < self.pid_max * PID_EVICTION_PERCENT
    }
}

/// The status and transition time of each node condition, kept across updates so
/// `lastTransitionTime` only moves when a condition flips.
#[derive(Debug, Clone, Default)]
pub struct ConditionClock {
    since: BTreeMap<&'static str, (bool, SystemTime)>,
}

impl ConditionClock {
    /// The four conditions for `facts` at `now`.
    pub fn conditions(&mut self, facts: &HostFacts, now: SystemTime) -> Vec<NodeCondition> {
        let mem = facts.memory_pressure();
        let disk = facts.disk_pressure();
        let pid = facts.pid_pressure();
        let rows: [(&'static str, bool, &str, &str); 4] = [
            (
                "MemoryPressure",
                mem,
                if mem {
                    "KubeletHasInsufficientMemory"
                } else {
                    "KubeletHasSufficientMemory"
                },
                if mem {
                    "memory.available is below 100Mi"
                } else {
                    "plinth agent has sufficient memory available"
                },
            ),
            (
                "DiskPressure",
                disk,
                if disk {
                    "KubeletHasDiskPressure"
                } else {
                    "KubeletHasNoDiskPressure"
                },
                if disk {
                    "nodefs.available is below 10% or nodefs.inodesFree below 5%"
                } else {
                    "plinth agent has no disk pressure"
                },
            ),
            (
                "PIDPressure",
                pid,
                if pid {
                    "KubeletHasInsufficientPID"
                } else {
                    "KubeletHasSufficientPID"
                },
                if pid {
                    "fewer than 5% of process IDs are free"
                } else {
                    "plinth agent has sufficient PID available"
                },
            ),
            (
                "Ready",
                true,
                "KubeletReady",
                "plinth agent is posting ready status",
            ),
        ];
        rows.iter()
            .map(|(kind, status, reason, message)| {
                let since = match self.since.get(kind) {
                    Some((s, t)) if s == status => *t,
                    _ => {
                        self.since.insert(kind, (*status, now));
                        now
                    }
                };
                NodeCondition {
                    type_: kind.to_string(),
                    status: if *status { "True" } else { "False" }.into(),
                    reason: Some(reason.to_string()),
                    message: Some(message.to_string()),
                    last_heartbeat_time: time(now),
                    last_transition_time: time(since),
                }
            })
            .collect()
    }
}

fn quantity(s: String) -> serde_json::Value {
    serde_json::Value::String(s)
}

/// The Node's status: addresses, capacity, allocatable, nodeInfo and `conditions`.
pub fn node_status(
    name: &str,
    ip: IpAddr,
    facts: &HostFacts,
    conditions: Vec<NodeCondition>,
) -> NodeStatus {
    let mem_alloc = facts.memory_bytes.saturating_sub(MEMORY_EVICTION_BYTES);
    let fs_alloc = facts.fs_bytes - facts.fs_bytes * DISK_EVICTION_PERCENT / 100;
    let v = json!({
        "addresses": [
            {"type": "InternalIP", "address": ip.to_string()},
            {"type": "Hostname", "address": name},
        ],
        "capacity": {
            "cpu": quantity(facts.cpus.to_string()),
            "memory": quantity(format!("{}Ki", facts.memory_bytes / 1024)),
            "pods": quantity(MAX_PODS.to_string()),
            "ephemeral-storage": quantity(format!("{}Ki", facts.fs_bytes / 1024)),
        },
        "allocatable": {
            "cpu": quantity(facts.cpus.to_string()),
            "memory": quantity(format!("{}Ki", mem_alloc / 1024)),
            "pods": quantity(MAX_PODS.to_string()),
            "ephemeral-storage": quantity(fs_alloc.to_string()),
        },
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel,
            "osImage": facts.os_image,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": AGENT_VERSION,
            "kubeProxyVersion": AGENT_VERSION,
            "operatingSystem": "linux",
            "architecture": facts.arch,
        },
    });
    let mut st: NodeStatus = serde_json::from_value(v).unwrap_or_default();
    st.conditions = Some(conditions);
    st
}

/// The label and the taint (effect NoSchedule) a plinth node registers with: the agent runs
/// its static pods only, never a pod the scheduler binds to it, so no workload may be placed
/// here (a kubelet-less node, like a virtual kubelet's). DaemonSets that tolerate every taint
/// (kube-proxy) keep away with a node affinity on the label.
pub const STATIC_PODS_ONLY: &str = "plinth.io/static-pods-only";

/// The Node to register: the kubelet's well-known labels (all of them labels NodeRestriction
/// lets a node set on itself), the [`STATIC_PODS_ONLY`] label and taint (a node may set its
/// taints when it registers, never later), and the status.
pub fn node_object(name: &str, arch: &str, status: NodeStatus) -> Node {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
        (STATIC_PODS_ONLY, "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut node = Node::default();
    node.metadata.name = Some(name.to_string());
    node.metadata.labels = Some(labels);
    node.metadata.annotations = Some(
        [(
            "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        taints: Some(vec![k8s_openapi::api::core::v1::Taint {
            key: STATIC_PODS_ONLY.to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    node.status = Some(status);
    node
}

/// The status fields compared to decide whether the Node needs an update (heartbeat times
/// left out: the Lease is the heartbeat).
pub fn status_digest(st: &NodeStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(st).unwrap_or_default();
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
            }
        }
    }
    v
}

/// The node's Lease, owned by its Node, renewed at `now`.
pub fn lease(name: &str, node_uid: &str, now: SystemTime) -> Lease {
    let renew = time(now).map(|t| t.0);
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew.map(micro),
        },
    }))
    .unwrap_or_default()
}

/// A `MicroTime` string (RFC 3339 with microseconds, UTC).
pub fn micro(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// The merge patch that renews a lease at `now`.
pub fn lease_renewal(name: &str, now: SystemTime) -> serde_json::Value {
    json!({"spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": time(now).map(|t| micro(t.0)),
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_bytes: 4 << 30,
            memory_available: 2 << 30,
            fs_bytes: 100 << 30,
            fs_available: 50 << 30,
            fs_inodes: 1000,
            fs_inodes_free: 500,
            pid_max: 4_194_304,
            pids_in_use: 300,
            machine_id: "m".into(),
            system_uuid: "u".into(),
            boot_id: "b".into(),
            kernel: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            arch: "amd64".into(),
        }
    }

    #[test]
    fn gathered_facts_are_plausible() {
        let f = HostFacts::gather(Path::new("/"));
        assert!(f.cpus >= 1 && f.memory_bytes > 0 && f.fs_bytes > 0, "{f:?}");
        assert!(!f.boot_id.is_empty() && !f.kernel.is_empty(), "{f:?}");
        assert!(f.pid_max > 0 && f.pids_in_use > 0, "{f:?}");
    }

    #[test]
    fn status_has_addresses_capacity_allocatable_info_and_conditions() {
        let mut clock = ConditionClock::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let f = facts();
        let st = node_status(
            "cp1",
            "192.0.2.10".parse().unwrap(),
            &f,
            clock.conditions(&f, t0),
        );
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(
            v["addresses"][0],
            json!({"type": "InternalIP", "address": "192.0.2.10"})
        );
        assert_eq!(
            v["addresses"][1],
            json!({"type": "Hostname", "address": "cp1"})
        );
        assert_eq!(v["capacity"]["cpu"], "2");
        assert_eq!(v["capacity"]["memory"], "4194304Ki");
        assert_eq!(v["capacity"]["pods"], "110");
        assert_eq!(v["allocatable"]["memory"], "4091904Ki");
        assert_eq!(v["nodeInfo"]["kubeletVersion"], AGENT_VERSION);
        assert_eq!(v["nodeInfo"]["containerRuntimeVersion"], RUNTIME_VERSION);
        assert_eq!(v["nodeInfo"]["bootID"], "b");
        let conds = st.conditions.as_ref().unwrap();
        let by = |t: &str| conds.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by("Ready").status, "True");
        for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(by(t).status, "False", "{t}");
        }
        // Pressure is measured, and only a flip moves lastTransitionTime.
        let t1 = t0 + Duration::from_secs(10);
        let mut low = f.clone();
        low.memory_available = 50 << 20;
        let c1 = clock.conditions(&low, t1);
        let mem = c1.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(mem.status, "True");
        assert_eq!(mem.last_transition_time, time(t1));
        let ready = c1.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.last_transition_time, time(t0));
        assert_eq!(ready.last_heartbeat_time, time(t1));
        let mut full = f.clone();
        full.fs_available = 5 << 30;
        assert!(full.disk_pressure());
        let mut pids = f.clone();
        pids.pids_in_use = pids.pid_max - 10;
        assert!(pids.pid_pressure() && !f.pid_pressure());
        // The digest ignores heartbeats only.
        let a = node_status(
            "cp1",
            "192.0.2.10".parse().unwrap(),
            &f,
            clock.conditions(&f, t1),
        );
        let b = node_status(
            "cp1",
            "192.0.2.10".parse().unwrap(),
            &f,
            clock.conditions(&f, t1 + Duration::from_secs(10)),
        );
        assert_eq!(status_digest(&a), status_digest(&b));
        assert_ne!(status_digest(&a), status_digest(&st));
    }

    #[test]
    fn node_labels_are_ones_a_node_may_set_and_lease_is_owned() {
        let n = node_object("cp1", "arm64", NodeStatus::default());
        let taints = n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(
            (taints[0].key.as_str(), taints[0].effect.as_str()),
            (STATIC_PODS_ONLY, "NoSchedule")
        );
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/arch"], "arm64");
        assert_eq!(labels[STATIC_PODS_ONLY], "true");
        assert!(labels.keys().all(|k| !k.starts_with("node-role.")));
        let l = lease(
            "cp1",
            "uid-1",
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500),
        );
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["metadata"]["namespace"], LEASE_NAMESPACE);
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(v["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(v["spec"]["renewTime"], "1970-01-01T00:00:01.500000Z");
        assert_eq!(go_arch("x86_64"), "amd64");
    }
}
