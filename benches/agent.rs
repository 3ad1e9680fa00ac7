//! Agent benchmark (not a test; `cargo bench --bench agent`, as root): runs the real
//! `plinth agent` with the process runtime on a temp root and prints
//!
//! 0. a new manifest renamed into place → its process running (no settle wait), and one
//!    written in place → running (the settle window, `--manifest-settle-window`, default 1 s),
//! 1. manifest change → new process running (and how much of it was the old process's stop),
//! 2. kill -9 → restarted (first crash of each pod, restarted without back-off),
//! 3. agent RSS and CPU with 4 idle pods (each with a readiness probe every 10 s),
//! 4. agent CPU (and RSS) with 200 small pods (`sleep`): while starting them, then idle.
//!
//! Processes are found by scanning /proc for their command line; every process it measures
//! was started by the agent it started, and it stops them all (`--stop-pods-on-exit`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 10391;

struct Agent {
    child: Child,
    root: tempfile::TempDir,
}

impl Agent {
    fn start(pods: &[(String, String)]) -> Agent {
        let root = tempfile::Builder::new()
            .prefix("plinth-bench-")
            .tempdir()
            .expect("temp root");
        let dir = root.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&dir).unwrap();
        // As `plinth init` writes them (atomic, sealed): found complete at the agent's start.
        for (name, yaml) in pods {
            plinth::fs::write_atomic_sealed(
                &dir.join(format!("{name}.yaml")),
                yaml.as_bytes(),
                0o600,
            )
            .unwrap();
        }
        let log = std::fs::File::create(root.path().join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["--log", "warn", "agent", "--root"])
            .arg(root.path())
            .args(["--pod-manifest-path", "/etc/kubernetes/manifests"])
            .args(["--node-name", "bench", "--node-ip", "127.0.0.1"])
            .args(["--healthz-port", &PORT.to_string(), "--stop-pods-on-exit"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start plinth agent");
        Agent { child, root }
    }

    fn manifest(&self, name: &str) -> PathBuf {
        self.root
            .path()
            .join(format!("etc/kubernetes/manifests/{name}.yaml"))
    }

    /// Writes a manifest atomically (as `plinth init` does).
    fn write(&self, name: &str, yaml: &str) {
        let tmp = self
            .root
            .path()
            .join(format!("etc/kubernetes/manifests/.{name}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.manifest(name)).unwrap();
    }

    /// Writes a manifest in place (as an editor, `cp` or `cat >` does).
    fn write_in_place(&self, name: &str, yaml: &str) {
        std::fs::write(self.manifest(name), yaml).unwrap();
    }

    /// (utime + stime) in clock ticks, RSS in KiB.
    fn usage(&self) -> (u64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (ticks, rss)
    }

    /// CPU share of one core and RSS (KiB) over `secs` seconds.
    fn measure_idle(&self, secs: u64) -> (f64, u64) {
        let (t0, _) = self.usage();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let (t1, rss) = self.usage();
        (cpu_share(t1 - t0, start.elapsed()), rss)
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_share(ticks: u64, over: Duration) -> f64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks as f64 / hz / over.as_secs_f64()
}

fn pod(name: &str, marker: &str, probe_port: Option<u16>) -> String {
    let probe = probe_port
        .map(|p| {
            format!("    readinessProbe:\n      tcpSocket: {{host: 127.0.0.1, port: {p}}}\n      periodSeconds: 10\n")
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, '{marker}']\n{probe}"
    )
}

/// Pids of live (not zombie) processes whose command line is exactly `sleep <marker>`.
fn find(marker: &str) -> Vec<i32> {
    let want = format!("sleep\0{marker}\0");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            !matches!(state, Some("Z") | Some("X") | None)
        })
        .unwrap_or(false)
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return "no samples".into();
    }
    format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms (n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

fn bench_change_and_crash() {
    let run = std::process::id();
    let mk = |i: u32, gen: u32| format!("{}{:03}{:02}", run % 10000, i, gen);
    let pods: Vec<(String, String)> = (0..5)
        .map(|i| (format!("p{i}"), pod(&format!("p{i}"), &mk(i, 0), None)))
        .collect();
    let agent = Agent::start(&pods);
    for i in 0..5 {
        wait_for(Duration::from_secs(30), || find(&mk(i, 0)).len() == 1).expect("pods running");
    }
    // 0. New manifests: renamed into place (at once) and written in place (settle window).
    let mut renamed = Vec::new();
    for n in 0..5u32 {
        let marker = format!("{}{:03}77", run % 10000, n);
        agent.write(&format!("new{n}"), &pod(&format!("new{n}"), &marker, None));
        let d = wait_for(Duration::from_secs(30), || !find(&marker).is_empty())
            .expect("renamed-in pod running");
        renamed.push(ms(d));
    }
    println!(
        "new manifest renamed into place → process running: {}",
        summary(&mut renamed)
    );
    let mut in_place = Vec::new();
    for n in 0..3u32 {
        let marker = format!("{}{:03}88", run % 10000, n);
        agent.write_in_place(
            &format!("inplace{n}"),
            &pod(&format!("inplace{n}"), &marker, None),
        );
        let d = wait_for(Duration::from_secs(30), || !find(&marker).is_empty())
            .expect("in-place pod running");
        in_place.push(ms(d));
    }
    println!(
        "new manifest written in place → process running (settle window 1 s): {}",
        summary(&mut in_place)
    );
    // 1. Manifest change → new process running.
    let mut current: Vec<String> = (0..5).map(|i| mk(i, 0)).collect();
    let mut total = Vec::new();
    let mut without_stop = Vec::new();
    for gen in 1..=10u32 {
        let i = gen % 5;
        let old = find(&current[i as usize]);
        let new_marker = mk(i, gen);
        let t0 = Instant::now();
        agent.write(&format!("p{i}"), &pod(&format!("p{i}"), &new_marker, None));
        let mut stopped_at = None;
        let started = wait_for(Duration::from_secs(30), || {
            if stopped_at.is_none() && old.iter().all(|p| !alive(*p)) {
                stopped_at = Some(t0.elapsed());
            }
            !find(&new_marker).is_empty()
        })
        .expect("new process");
        total.push(ms(started));
        without_stop.push(ms(
            started.saturating_sub(stopped_at.unwrap_or(Duration::ZERO))
        ));
        current[i as usize] = new_marker;
    }
    println!(
        "manifest change → new process running: {}",
        summary(&mut total)
    );
    println!(
        "  of which after the old process was gone: {}",
        summary(&mut without_stop)
    );
    // 2. kill -9 → restarted (each pod's first crash).
    let mut restart = Vec::new();
    for marker in &current {
        let Some(&old) = find(marker).first() else {
            continue;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old),
            nix::sys::signal::Signal::SIGKILL,
        );
        let d = wait_for(Duration::from_secs(30), || {
            find(marker).iter().any(|p| *p != old)
        })
        .expect("restarted");
        restart.push(ms(d));
    }
    println!(
        "kill -9 → restarted (first crash): {}",
        summary(&mut restart)
    );
    agent.stop();
}

fn bench_idle(n: u32, probes: bool, settle: u64, window: u64) {
    let run = std::process::id() % 10000;
    let pods: Vec<(String, String)> = (0..n)
        .map(|i| {
            let marker = format!("{run}{i:04}9");
            (
                format!("idle{i}"),
                pod(&format!("idle{i}"), &marker, probes.then_some(PORT)),
            )
        })
        .collect();
    let (cpu_start, rss_start);
    let agent = Agent::start(&pods);
    let t0 = Instant::now();
    let (u0, _) = agent.usage();
    let all = wait_for(Duration::from_secs(120), || {
        (0..n).all(|i| !find(&format!("{run}{i:04}9")).is_empty())
    });
    let (u1, rss) = agent.usage();
    cpu_start = cpu_share(u1 - u0, t0.elapsed());
    rss_start = rss;
    match all {
        Some(d) => println!(
            "{n} pods: all running after {:.0} ms; agent CPU while starting them {:.1} % of a core, RSS {:.1} MiB",
            ms(d),
            cpu_start * 100.0,
            rss_start as f64 / 1024.0
        ),
        None => println!("{n} pods: not all running within 120 s"),
    }
    std::thread::sleep(Duration::from_secs(settle));
    let (cpu, rss) = agent.measure_idle(window);
    println!(
        "{n} pods idle{}: agent CPU {:.2} % of a core over {window} s, RSS {:.1} MiB",
        if probes {
            " (a readiness probe each, every 10 s)"
        } else {
            ""
        },
        cpu * 100.0,
        rss as f64 / 1024.0
    );
    agent.stop();
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("benches/agent.rs needs root (cgroups, process runtime)");
        std::process::exit(1);
    }
    if std::net::TcpListener::bind(("127.0.0.1", PORT)).is_err() {
        eprintln!("port {PORT} is busy");
        std::process::exit(1);
    }
    println!("plinth agent benchmark (process runtime, release build)");
    bench_change_and_crash();
    bench_idle(4, true, 5, 60);
    bench_idle(200, false, 5, 40);
}
