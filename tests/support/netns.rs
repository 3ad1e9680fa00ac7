//! Network namespaces for end-to-end tests: every server a test starts lives inside a netns the
//! test created itself, with loopback and one TEST-NET-1 address (192.0.2.0/24) on a veth whose
//! host-side peer stays down, so no traffic can leave it.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace `plinth-<prefix>-<pid>-<n>` with `lo` up and one address on `eth0`.
///
/// Dropping it SIGKILLs every process still inside (all were started by the test), deletes the
/// veth pair and the namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    addr: Ipv4Addr,
    host_veth: String,
    /// False until the namespace exists (so a failed create cleans up exactly what it made).
    created: bool,
    veth_created: bool,
}

/// Runs `ip ARGS`, turning a non-zero exit into an error carrying its stderr.
pub(crate) fn ip(args: &[&str]) -> io::Result<Output> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running `ip {}`: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

impl NetNs {
    /// Creates the namespace, its loopback, and `eth0` with 192.0.2.<n>/24 (peer left down).
    pub fn create(prefix: &str) -> io::Result<NetNs> {
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("plinth-{prefix}-{pid}-{n}");
        // Interface names are limited to 15 bytes: "pl" + pid hex (≤ 6) + "x" + n hex + "h".
        let host_veth = format!("pl{pid:x}x{:x}h", n % 0x1000);
        let host_octet = 1 + ((pid + n) % 253) as u8;
        let mut ns = NetNs {
            name,
            addr: Ipv4Addr::new(192, 0, 2, host_octet),
            host_veth,
            created: false,
            veth_created: false,
        };
        ip(&["netns", "add", &ns.name])?;
        ns.created = true;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        ip(&[
            "link",
            "add",
            &ns.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.name,
        ])?;
        ns.veth_created = true;
        let cidr = format!("{}/24", ns.addr);
        ip(&["-n", &ns.name, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"])?;
        // The host side stays DOWN: nothing inside can reach the host or beyond.
        Ok(ns)
    }

    /// The namespace name (as in `ip netns list`, `/run/netns/<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The non-loopback address inside the namespace.
    pub fn addr(&self) -> IpAddr {
        IpAddr::V4(self.addr)
    }

    /// The bind-mounted namespace file, `/run/netns/<name>`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command that runs `program` inside the namespace via `nsenter --net=… --`.
    ///
    /// (`ip netns exec` would remount /sys, hiding the cgroup mounts the agent needs.)
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        c
    }

    /// Pids of processes whose network namespace is this one (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        match ip(&["netns", "pids", &self.name]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Runs `f` on a fresh thread that has joined this namespace (`setns`), so sockets it opens
    /// (e.g. a reqwest client) live inside. Only that thread changes namespace.
    pub fn run_in<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = self.path();
        let handle = thread::spawn(move || -> io::Result<R> {
            let file = File::open(&path)?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("setns {path}: {e}")))?;
            Ok(f())
        });
        handle
            .join()
            .map_err(|_| io::Error::other("thread inside the netns panicked"))?
    }
}

impl NetNs {
    /// SIGKILLs every process inside the namespace (all started by the test) until none is
    /// left, for at most 5 s.
    pub fn kill_all(&self) {
        if !self.created {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                // Every process in this netns was started by the test inside it.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.kill_all();
        if self.veth_created {
            let _ = ip(&["link", "del", &self.host_veth]);
        }
        if self.created {
            let _ = ip(&["netns", "delete", &self.name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns_listed(name: &str) -> bool {
        let out = ip(&["netns", "list"]).expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name))
    }

    #[test]
    fn create_gives_an_isolated_namespace_with_its_address_and_cleans_up() {
        let ns = NetNs::create("selftest").expect("create netns");
        let name = ns.name().to_string();
        let host_veth = ns.host_veth.clone();
        assert!(name.starts_with("plinth-selftest-"), "{name}");
        assert!(netns_listed(&name), "{name} not in ip netns list");

        let out = ip(&["-n", &name, "-o", "addr", "show"]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("inet {}/24", ns.addr())),
            "address {} not in:\n{text}",
            ns.addr()
        );
        assert!(
            text.contains("lo ") && text.contains("127.0.0.1/8"),
            "{text}"
        );
        match ns.addr() {
            IpAddr::V4(a) => assert_eq!(&a.octets()[..3], &[192, 0, 2]),
            other => panic!("not TEST-NET-1: {other}"),
        }
        // No default route: nothing can leave.
        let routes = ip(&["-n", &name, "route", "show"]).unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(!routes.contains("default"), "{routes}");
        // Host side of the veth exists and is down.
        let link = ip(&["-o", "link", "show", &host_veth]).unwrap();
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(link.contains("state DOWN"), "{link}");

        // A process started inside is seen by pids() and killed by drop.
        let mut child = ns.command("sleep").arg("300").spawn().expect("spawn sleep");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ns.pids().contains(&(child.id() as i32)) {
            assert!(Instant::now() < deadline, "sleep never appeared in {name}");
            thread::sleep(Duration::from_millis(20));
        }
        // A socket opened by run_in lives inside: binding the netns address works there only.
        let addr = ns.addr();
        let bound = ns
            .run_in(move || std::net::TcpListener::bind((addr, 0)).is_ok())
            .unwrap();
        assert!(bound, "could not bind {addr} inside the netns");
        assert!(
            std::net::TcpListener::bind((addr, 0)).is_err(),
            "{addr} must not exist on the host"
        );

        drop(ns);
        let status = child.wait().expect("wait sleep");
        assert!(!status.success(), "sleep should have been killed");
        assert!(!netns_listed(&name), "{name} still listed after drop");
        assert!(
            ip(&["link", "show", &host_veth]).is_err(),
            "{host_veth} still exists"
        );
    }

    #[test]
    fn two_namespaces_get_distinct_names_and_veths() {
        let a = NetNs::create("pair").unwrap();
        let b = NetNs::create("pair").unwrap();
        assert_ne!(a.name(), b.name());
        assert_ne!(a.host_veth, b.host_veth);
        assert!(a.host_veth.len() <= 15 && b.host_veth.len() <= 15);
    }
}
