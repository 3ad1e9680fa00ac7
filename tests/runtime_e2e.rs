//! End-to-end tests of the process runtime with real processes (run as root): the real
//! `plinth container-init` (CARGO_BIN_EXE_plinth), real cgroups, real mount namespaces.
//!
//! Every test uses its own cgroup parent and removes it at the end; processes are only ever
//! signalled by the pids the test itself started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use plinth::runtime::process::{procfs, ProcessRuntime, ProcessRuntimeConfig};
use plinth::runtime::{
    ContainerHandle, ContainerSpec, ExitStatus, Mount, Resources, Runtime, StopSignal,
};

/// Upper bound for anything the tests wait on (never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A stand-in log shim (test code only): appends the container's stdout (fd 0) and stderr
/// (fd 3) to the log path as plain text.
fn plain_shim(_plinth_exe: &Path, log_path: &Path) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"exec 2>/dev/null; cat <&3 >> "$1" & cat >> "$1"; wait"#)
        .arg("sh")
        .arg(log_path);
    cmd
}

/// A runtime with its own cgroup parent; removes the parent's directories when dropped.
struct Fixture {
    rt: ProcessRuntime,
    dir: tempfile::TempDir,
    parent: String,
}

impl Fixture {
    fn new(shim: plinth::runtime::process::ShimCommandFn) -> Fixture {
        let parent = unique("plinth-test");
        let rt = ProcessRuntime::new(ProcessRuntimeConfig {
            plinth_exe: PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
            cgroup_parent: parent.clone(),
            shim_command: shim,
        })
        .expect("runtime");
        Fixture {
            rt,
            dir: tempfile::tempdir().expect("tempdir"),
            parent,
        }
    }

    fn spec(&self, name: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            pod_uid: "pod0".into(),
            pod_name: "test-node".into(),
            namespace: "default".into(),
            container_name: name.into(),
            restart_count: 0,
            image: "busybox".into(),
            executable: "/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("GREETING".into(), "hi".into())],
            working_dir: None,
            run_as_user: None,
            run_as_group: None,
            mounts: vec![],
            resources: Resources::default(),
            log_path: self.dir.path().join(format!("{name}.log")),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Whether the runtime can track a tree through cgroups here.
    fn has_tracking(&self) -> bool {
        self.rt
            .cgroups_of("pod0/x/0")
            .is_some_and(|cg| cg.tracking_leaf().is_some())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // cleanup() removed the leaves of containers that ended; a failed test may leave
        // some behind: kill what still runs in this fixture's own cgroups, remove them all.
        let Some(cg) = self.rt.cgroups_of("pod0/x/0") else {
            return;
        };
        for leaf in cg.all_leaves() {
            let Some(base) = leaf.parent().and_then(Path::parent) else {
                continue;
            };
            if !base.ends_with(&self.parent) {
                continue;
            }
            let pods = std::fs::read_dir(base).into_iter().flatten().flatten();
            for pod in pods.filter(|e| e.path().is_dir()) {
                let leaves = std::fs::read_dir(pod.path())
                    .into_iter()
                    .flatten()
                    .flatten();
                for l in leaves.filter(|e| e.path().is_dir()) {
                    let _ = std::fs::write(l.path().join("cgroup.kill"), "1");
                    for _ in 0..100 {
                        if std::fs::remove_dir(l.path()).is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                let _ = std::fs::remove_dir(pod.path());
            }
            let _ = std::fs::remove_dir(base);
        }
    }
}

async fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}; it has {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_exit(rt: &ProcessRuntime, h: &ContainerHandle) -> ExitStatus {
    tokio::time::timeout(PATIENCE, rt.wait(h))
        .await
        .expect("container did not exit")
}

/// True once `pid` no longer runs (gone, or a zombie waiting for its new parent to reap it).
async fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match procfs::read_stat(pid) {
            Err(_) => return true,
            Ok(s) if s.is_dead() => return true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

#[tokio::test]
async fn term_stops_a_container_and_wait_reports_the_signal() {
    let fx = Fixture::new(plinth::logs::shim_command);
    let spec = fx.spec("web", "echo $GREETING; sleep 100");
    let h = fx.rt.start(&spec).expect("start");

    assert!(fx.rt.is_running(&h));
    let stat = procfs::read_stat(h.pid).unwrap();
    assert_eq!(stat.start_ticks, h.start_ticks);
    assert_eq!(stat.session, h.pid, "container leads its own session");
    assert_eq!(stat.pgrp, h.pid, "container leads its own process group");
    assert_eq!(h.id, "pod0/web/0");
    if fx.has_tracking() {
        assert!(
            fx.rt.cgroup_pids(&h).contains(&h.pid),
            "container joined its cgroup"
        );
    }
    // The real log shim writes CRI records.
    let log = wait_for_file(&spec.log_path, " stdout F hi").await;
    assert!(log.lines().count() >= 1, "{log}");

    fx.rt.signal(&h, StopSignal::Term).expect("term");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(15));
    assert!(!fx.rt.is_running(&h));
    // A second wait gets the same, already collected status.
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(15));

    fx.rt.cleanup(&h);
    if let Some(leaf) = fx.rt.cgroups_of(&h.id).and_then(|c| c.v2) {
        assert!(!leaf.exists(), "cgroup {} removed", leaf.display());
    }
}

#[tokio::test]
async fn kill_removes_a_tree_whose_grandchild_left_the_session() {
    let fx = Fixture::new(plain_shim);
    assert!(
        fx.has_tracking(),
        "this test needs a cgroup hierarchy to track the tree: {:?}",
        fx.rt.cgroup_layout()
    );
    let pidfile = fx.path("grandchild.pid");
    let script = format!(
        r#"setsid sh -c 'echo $$ > {p}.tmp; mv {p}.tmp {p}; exec sleep 1000' & sleep 1000"#,
        p = pidfile.display()
    );
    let h = fx.rt.start(&fx.spec("tree", &script)).expect("start");
    let deadline = Instant::now() + PATIENCE;
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "grandchild never wrote its pid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grandchild = read_pid(&pidfile);
    let gstat = procfs::read_stat(grandchild).unwrap();
    assert_ne!(
        gstat.session, h.pid,
        "the grandchild left the container's session"
    );
    assert_ne!(gstat.pgrp, h.pid);
    assert!(fx.rt.cgroup_pids(&h).contains(&grandchild));

    fx.rt.signal(&h, StopSignal::Kill).expect("kill");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(9));
    assert!(
        wait_gone(grandchild).await,
        "grandchild {grandchild} survived"
    );
    fx.rt.cleanup(&h);
}

#[tokio::test]
async fn a_term_trapping_container_survives_term_and_dies_on_kill() {
    let fx = Fixture::new(plain_shim);
    let spec = fx.spec(
        "stubborn",
        r#"trap "" TERM; echo ready; while :; do sleep 1; done"#,
    );
    let h = fx.rt.start(&spec).expect("start");
    wait_for_file(&spec.log_path, "ready").await;

    fx.rt.signal(&h, StopSignal::Term).expect("term");
    let early = tokio::time::timeout(Duration::from_millis(700), fx.rt.wait(&h)).await;
    assert!(early.is_err(), "exited on SIGTERM: {early:?}");
    assert!(fx.rt.is_running(&h));

    fx.rt.signal(&h, StopSignal::Kill).expect("kill");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(9));
    fx.rt.cleanup(&h);
}

#[tokio::test]
async fn bind_mounts_with_missing_targets_leave_the_host_untouched() {
    let fx = Fixture::new(plain_shim);
    let src_dir = fx.path("src-dir");
    std::fs::create_dir(&src_dir).unwrap();
    std::fs::write(src_dir.join("content"), "hello-from-source\n").unwrap();
    let src_file = fx.path("src.conf");
    std::fs::write(&src_file, "cfg-data\n").unwrap();
    let existing_target = fx.path("existing-target");
    std::fs::create_dir(&existing_target).unwrap();

    let top = PathBuf::from("/etc").join(unique("plinth-test"));
    assert!(!top.exists());
    let mountinfo_before = host_mounts();

    let script = format!(
        "cat {top}/x/content; cat {top}/y.conf; cat {ex}/content; \
         if touch {top}/x/new 2>/dev/null; then echo WRITABLE; else echo READONLY; fi; \
         if touch {ex}/rw-ok; then echo RW-OK; fi; \
         test -f /etc/passwd && echo HOST-ETC-VISIBLE",
        top = top.display(),
        ex = existing_target.display()
    );
    let mut spec = fx.spec("mounts", &script);
    spec.mounts = vec![
        Mount {
            source: src_dir.clone(),
            target: top.join("x"),
            read_only: true,
        },
        Mount {
            source: src_file.clone(),
            target: top.join("y.conf"),
            read_only: false,
        },
        Mount {
            source: src_dir.clone(),
            target: existing_target.clone(),
            read_only: false,
        },
    ];
    let h = fx.rt.start(&spec).expect("start");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Exited(0));
    let log = wait_for_file(&spec.log_path, "HOST-ETC-VISIBLE").await;
    assert_eq!(log.matches("hello-from-source").count(), 2, "{log}");
    assert!(log.contains("cfg-data"), "{log}");
    assert!(
        log.contains("READONLY") && !log.contains("WRITABLE"),
        "{log}"
    );
    assert!(log.contains("RW-OK"), "{log}");
    fx.rt.cleanup(&h);

    // Nothing was created on the host, no mount leaked into the host's namespace.
    assert!(!top.exists(), "{} was created on the host", top.display());
    assert!(!src_dir.join("new").exists());
    assert!(
        src_dir.join("rw-ok").exists(),
        "rw bind wrote through to the source"
    );
    assert!(
        !existing_target.join("content").exists(),
        "bind leaked to the host"
    );
    assert_eq!(host_mounts(), mountinfo_before);
}

/// The host's mount table, without the network namespace handles under /run/netns that the
/// tests running in parallel add and remove (they are not this test's mounts).
fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_none_or(|m| !m.starts_with("/run/netns/"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn run_as_user_switches_identity() {
    let fx = Fixture::new(plain_shim);
    let mut spec = fx.spec("nobody", "echo uid=$(id -u) gid=$(id -g)");
    spec.run_as_user = Some(65534);
    let h = fx.rt.start(&spec).expect("start");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Exited(0));
    let log = wait_for_file(&spec.log_path, "uid=").await;
    assert!(log.contains("uid=65534"), "{log}");
    assert!(!log.contains("gid=0"), "{log}");
    fx.rt.cleanup(&h);
}

#[tokio::test]
async fn resources_and_oom_score_adj_are_applied() {
    let fx = Fixture::new(plain_shim);
    let mut spec = fx.spec("limited", "cat /proc/self/oom_score_adj; sleep 100");
    spec.resources = Resources {
        cpu_request_millis: Some(100),
        cpu_limit_millis: Some(500),
        memory_limit_bytes: Some(64 << 20),
        oom_score_adj: Some(500),
    };
    let h = fx.rt.start(&spec).expect("start");
    let log = wait_for_file(&spec.log_path, "500").await;
    assert_eq!(log.trim(), "500");

    let cg = fx.rt.cgroups_of(&h.id).unwrap();
    let v2_mem = cg
        .v2
        .as_ref()
        .map(|d| d.join("memory.max"))
        .filter(|f| f.exists());
    let v1_mem = cg
        .v1_memory
        .as_ref()
        .map(|d| d.join("memory.limit_in_bytes"))
        .filter(|f| f.exists());
    match (v2_mem, v1_mem) {
        (Some(f), _) | (None, Some(f)) => {
            assert_eq!(
                std::fs::read_to_string(&f).unwrap().trim(),
                (64u64 << 20).to_string()
            );
            let procs = std::fs::read_to_string(f.with_file_name("cgroup.procs")).unwrap();
            assert!(procs.lines().any(|l| l == h.pid.to_string()), "{procs}");
        }
        (None, None) => eprintln!("no memory controller here: limit noted and skipped"),
    }
    fx.rt.signal(&h, StopSignal::Kill).unwrap();
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(9));
    fx.rt.cleanup(&h);
    for leaf in cg.all_leaves() {
        assert!(!leaf.exists(), "{} left behind", leaf.display());
    }
}

#[tokio::test]
async fn negative_oom_score_adj_without_privilege_does_not_fail_start() {
    let fx = Fixture::new(plain_shim);
    let mut spec = fx.spec("critical", "echo started");
    spec.resources.oom_score_adj = Some(-997);
    let h = fx.rt.start(&spec).expect("start despite oom_score_adj");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Exited(0));
    wait_for_file(&spec.log_path, "started").await;
    fx.rt.cleanup(&h);
}

#[tokio::test]
async fn wait_on_an_adopted_process_resolves_unknown() {
    let fx = Fixture::new(plain_shim);
    // A process that is not our child: the shell exits, leaving its background sleep.
    let out = Command::new("/bin/sh")
        .args(["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let h = ContainerHandle {
        id: "adopted/sleep/0".into(),
        pid,
        start_ticks: procfs::process_start_ticks(pid).unwrap(),
        started_at: SystemTime::now(),
    };
    assert!(fx.rt.is_running(&h));
    let waiter = fx.rt.wait(&h);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = tokio::time::timeout(PATIENCE, waiter).await.expect("wait");
    assert_eq!(status, ExitStatus::Unknown);
    assert!(!fx.rt.is_running(&h));
}

#[tokio::test]
async fn is_running_is_false_for_a_wrong_start_time() {
    let fx = Fixture::new(plain_shim);
    let h = fx
        .rt
        .start(&fx.spec("sleeper", "sleep 100"))
        .expect("start");
    assert!(fx.rt.is_running(&h));
    let reused = ContainerHandle {
        start_ticks: h.start_ticks + 1,
        ..h.clone()
    };
    assert!(!fx.rt.is_running(&reused));
    // Waiting on a wrong identity never blocks on the unrelated process.
    let other = ContainerHandle {
        id: "other/sleeper/0".into(),
        ..reused
    };
    assert_eq!(
        tokio::time::timeout(PATIENCE, fx.rt.wait(&other))
            .await
            .unwrap(),
        ExitStatus::Unknown
    );
    fx.rt.signal(&h, StopSignal::Kill).unwrap();
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Signaled(9));
    fx.rt.cleanup(&h);
}

#[tokio::test]
async fn setup_failures_are_reported_by_start() {
    let fx = Fixture::new(plain_shim);
    let mut spec = fx.spec("missing-exe", "true");
    spec.executable = "/nonexistent/bin/tool".into();
    let err = fx.rt.start(&spec).unwrap_err();
    // The errno of the exec itself is typed (the agent tells failures no retry cures by it).
    assert!(
        matches!(&err, plinth::runtime::RuntimeError::Exec { source, .. }
            if source.raw_os_error() == Some(libc::ENOENT)),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("missing-exe") && err.contains("execve /nonexistent/bin/tool"),
        "{err}"
    );

    let mut spec = fx.spec("bad-dir", "true");
    spec.working_dir = Some("/nonexistent-dir".into());
    let err = fx.rt.start(&spec).unwrap_err().to_string();
    assert!(err.contains("chdir /nonexistent-dir"), "{err}");
    if let Some(leaf) = fx.rt.cgroups_of("pod0/bad-dir/0").and_then(|c| c.v2) {
        assert!(!leaf.exists(), "failed start left {}", leaf.display());
    }

    let mut spec = fx.spec("bad-mount", "true");
    spec.mounts = vec![Mount {
        source: fx.path("no-such-source"),
        target: "/etc/plinth-never".into(),
        read_only: true,
    }];
    let err = fx.rt.start(&spec).unwrap_err().to_string();
    assert!(err.contains("no-such-source"), "{err}");
    assert!(!Path::new("/etc/plinth-never").exists());
}

#[tokio::test]
async fn without_cgroups_the_process_group_is_signalled() {
    // What the runtime does under `ip netns exec`, which hides the cgroup mounts.
    let fx = Fixture::new(plain_shim);
    let rt = ProcessRuntime::with_cgroup_layout(
        fx.rt.config().clone(),
        plinth::runtime::process::cgroups::CgroupLayout::default(),
    )
    .unwrap();
    let pidfile = fx.path("bg.pid");
    let script = format!(
        "sleep 1000 & echo $! > {p}.tmp; mv {p}.tmp {p}; sleep 1000",
        p = pidfile.display()
    );
    let mut spec = fx.spec("nocg", &script);
    spec.resources.memory_limit_bytes = Some(64 << 20);
    let h = rt.start(&spec).expect("start without cgroups");
    assert!(rt.cgroup_pids(&h).is_empty());
    let deadline = Instant::now() + PATIENCE;
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "no pid file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bg = read_pid(&pidfile);
    assert_eq!(procfs::read_stat(bg).unwrap().pgrp, h.pid);

    rt.signal(&h, StopSignal::Kill).unwrap();
    assert_eq!(wait_exit(&rt, &h).await, ExitStatus::Signaled(9));
    assert!(wait_gone(bg).await, "background sleep {bg} survived");
    rt.cleanup(&h);
}

#[tokio::test]
async fn containers_start_clean_signals_stdin_fds_cwd_and_env() {
    let fx = Fixture::new(plain_shim);
    let script = "grep -E '^Sig(Ign|Blk)' /proc/self/status; echo stdin=$(readlink /proc/self/fd/0); \
                  echo fds=$(ls /proc/self/fd | tr '\\n' ' '); echo cwd=$(pwd); echo path=$PATH; echo END";
    let spec = fx.spec("clean", script);
    let h = fx.rt.start(&spec).expect("start");
    assert_eq!(wait_exit(&fx.rt, &h).await, ExitStatus::Exited(0));
    let log = wait_for_file(&spec.log_path, "END").await;
    assert!(log.contains("SigIgn:\t0000000000000000"), "{log}");
    assert!(log.contains("SigBlk:\t0000000000000000"), "{log}");
    assert!(log.contains("stdin=/dev/null"), "{log}");
    // 0, 1, 2 and the directory `ls` itself opened: nothing leaked from the agent.
    assert!(log.contains("fds=0 1 2 3\n"), "{log}");
    assert!(log.contains("cwd=/\n"), "{log}");
    assert!(log.contains("path=/usr/local/sbin:"), "{log}");
    fx.rt.cleanup(&h);
}

/// Not a test on its own: the "agent" process of
/// [`containers_outlive_their_agent_and_are_adopted`], re-executed from this test binary.
#[tokio::test]
#[ignore = "helper process, run by containers_outlive_their_agent_and_are_adopted"]
async fn helper_agent_process() {
    let (Ok(dir), Ok(parent)) = (
        std::env::var("PLINTH_RT_HELPER_DIR"),
        std::env::var("PLINTH_RT_HELPER_PARENT"),
    ) else {
        return;
    };
    let rt = ProcessRuntime::new(ProcessRuntimeConfig {
        plinth_exe: PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
        cgroup_parent: parent,
        shim_command: plinth::logs::shim_command,
    })
    .unwrap();
    let mut spec =
        Fixture::new(plain_shim).spec("ticker", "while :; do echo tick; sleep 0.05; done");
    spec.log_path = Path::new(&dir).join("ticker.log");
    let h = rt.start(&spec).unwrap();
    let file = Path::new(&dir).join("handle.json");
    std::fs::write(file.with_extension("tmp"), serde_json::to_vec(&h).unwrap()).unwrap();
    std::fs::rename(file.with_extension("tmp"), &file).unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// Kills the helper "agent" (a process this test started) however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn containers_outlive_their_agent_and_are_adopted() {
    let fx = Fixture::new(plain_shim);
    let mut agent = KillOnDrop(
        Command::new("/proc/self/exe") // the running test binary, even if a rebuild replaced the file
            .args([
                "runtime_e2e::helper_agent_process",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("PLINTH_RT_HELPER_DIR", fx.dir.path())
            .env("PLINTH_RT_HELPER_PARENT", &fx.parent)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let handle_file = fx.path("handle.json");
    let deadline = Instant::now() + PATIENCE;
    while !handle_file.exists() {
        assert!(
            agent.0.try_wait().unwrap().is_none(),
            "helper agent exited early"
        );
        assert!(Instant::now() < deadline, "helper agent wrote no handle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let h: ContainerHandle = serde_json::from_slice(&std::fs::read(&handle_file).unwrap()).unwrap();
    // The "agent" dies hard, as with kill -9.
    let agent_pid = agent.0.id() as i32;
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();

    // A new runtime instance (the restarted agent) recognises the container...
    assert!(fx.rt.is_running(&h));
    assert_ne!(procfs::read_stat(h.pid).unwrap().ppid, agent_pid);
    // ...which keeps running and logging: no SIGPIPE, the shim holds the pipes.
    let log = fx.path("ticker.log");
    let before = wait_for_file(&log, "stdout F tick").await.len();
    let deadline = Instant::now() + PATIENCE;
    while std::fs::metadata(&log)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
        <= before
    {
        assert!(
            Instant::now() < deadline,
            "the log stopped growing after the agent died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fx.rt.is_running(&h));

    // Adopted: stop it, wait resolves Unknown (not our child), cgroup removed.
    let waiter = fx.rt.wait(&h);
    fx.rt.signal(&h, StopSignal::Term).unwrap();
    assert_eq!(
        tokio::time::timeout(PATIENCE, waiter).await.unwrap(),
        ExitStatus::Unknown
    );
    assert!(!fx.rt.is_running(&h));
    fx.rt.cleanup(&h);
    if let Some(leaf) = fx.rt.cgroups_of(&h.id).and_then(|c| c.v2) {
        assert!(!leaf.exists(), "{} left behind", leaf.display());
    }
}
