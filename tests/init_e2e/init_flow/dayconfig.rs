//! The configuration init persists and the day-2 verbs use (issue 8, items 2 and 6).

use super::*;
use crate::support::doubles::using_doubles;

/// Where init persists the effective configuration (under `--root`).
const PERSISTED: &str = "/var/lib/plinth/config.yaml";

/// Gives the node in `cfg` a name no other test node has. Pod UIDs include the node name, and
/// every test's agent puts its pods' cgroups below the test process's own cgroup: two nodes
/// with the same manifests (all are `cp1`) share those cgroups, so one node's restart of a
/// pod kills the other node's copy too. A unique name keeps these tests out of that.
fn rename_node(cfg: &Path, name: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let renamed = text.replace("  name: cp1\n", &format!("  name: {name}\n"));
    assert_ne!(text, renamed, "no node name in {}", cfg.display());
    std::fs::write(cfg, renamed).unwrap();
}

/// `plinth ARGS --root ROOT` in the node's netns, without `--config`.
fn plinth_no_config(node: &Node, args: &[&str], timeout: Duration) -> Out {
    let root = node.root.dir().display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--root", &root]);
    node.plinth_raw(&all, timeout)
}

/// `plinth verify` (no `--config`) until it exits 0.
fn verify_no_config_eventually(node: &Node, what: &str) -> Out {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = plinth_no_config(node, &["verify"], SHORT);
        if out.ok() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "plinth verify (no --config) still failing 30s after {what}:\n{}",
            out.show()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Regression (issue 8 item 2): `plinth verify --root R` without `--config` failed with
/// "advertiseAddress: none was given and no default route exists" (with a default route it
/// would silently have checked that interface's address instead). init now persists its
/// effective configuration and every day-2 verb loads it when no `--config` is given.
#[test]
fn verify_without_config_uses_persisted_config() {
    let mut node = Node::new("dayconf");
    rename_node(&node.cfg, "cp-dayconf");

    // Before init there is nothing to load: a clear error, nothing written.
    let out = plinth_no_config(&node, &["verify"], SHORT);
    assert!(!out.ok() && out.code.is_some(), "{}", out.show());
    assert!(
        out.stderr.contains("plinth init has not run on this root")
            && out.stderr.contains("--config"),
        "{}",
        out.show()
    );
    assert_eq!(node.root.snapshot().unwrap(), vec![]);

    let init = node.init_ok();
    assert!(
        init.stdout.contains(&format!(
            "[config] Storing the configuration used in {PERSISTED}"
        )),
        "{}",
        init.show()
    );

    // The persisted file: 0600, kubeadm's documents plus plinth's, with the address and the
    // version init used.
    let path = node.root.path(PERSISTED);
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600, "{PERSISTED} mode {mode:o}");
    let text = String::from_utf8_lossy(&node.read(PERSISTED)).into_owned();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{PERSISTED} is not YAML ({e}):\n{text}"));
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "InitConfiguration",
            "ClusterConfiguration",
            "PlinthConfiguration"
        ],
        "{text}"
    );
    assert_eq!(
        docs[0]["localAPIEndpoint"]["advertiseAddress"],
        node.ns.addr().to_string(),
        "{text}"
    );
    assert_eq!(docs[0]["nodeRegistration"]["name"], "cp-dayconf", "{text}");
    assert_eq!(docs[1]["kubernetesVersion"], binaries_version(), "{text}");

    // verify with no --config: every check passes, against init's address.
    let table = plinth_no_config(&node, &["verify"], SHORT);
    assert!(table.ok(), "verify (no --config) failed:\n{}", table.show());
    assert!(
        !table.stderr.contains("advertiseAddress"),
        "{}",
        table.show()
    );
    let json = plinth_no_config(&node, &["verify", "-o", "json"], SHORT);
    assert!(json.ok(), "{}", json.show());
    let rows = assert_no_fail_json(&json);
    let apiserver = rows
        .iter()
        .find(|r| r["category"] == "health" && r["name"] == "kube-apiserver")
        .unwrap_or_else(|| panic!("no apiserver health row:\n{}", json.stdout));
    assert_eq!(apiserver["status"], "pass", "{apiserver}");
    assert!(
        apiserver["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&node.ns.addr().to_string()),
        "{apiserver}"
    );

    // The other day-2 verbs too.
    let certs = plinth_no_config(&node, &["certs", "check-expiration"], SHORT);
    assert!(certs.ok(), "{}", certs.show());
    assert!(certs.stdout.contains("apiserver"), "{}", certs.show());
    let regen = plinth_no_config(
        &node,
        &["manifest", "regenerate", "kube-scheduler", "--diff"],
        SHORT,
    );
    assert!(regen.ok(), "{}", regen.show());
    assert!(
        regen.stdout.contains("kube-scheduler: no changes"),
        "{}",
        regen.show()
    );

    // reset with no --config uses the persisted configuration and removes it: the root is as
    // empty as before init.
    let out = plinth_no_config(&node, &["reset", "--force"], SHORT);
    node.reset_done = true;
    assert!(out.ok(), "{}", out.show());
    assert!(
        crate::support::wait_until(Duration::from_secs(5), Duration::from_millis(50), || node
            .ns
            .pids()
            .is_empty()),
        "processes left after reset: {:?}",
        node.ns.pids()
    );
    assert!(!path.exists(), "reset left {PERSISTED}");
    let d = diff_snapshots(&[], &node.root.snapshot().unwrap());
    assert!(d.is_empty(), "reset left the root different:\n{d}");
}

/// Regression (issue 8 item 2): an explicit `--config` that differs from what init used was
/// applied (or checked against) silently. Now the difference is printed field by field
/// (old → new); verify keeps checking against the persisted configuration, regenerate
/// applies the explicit one only after printing it, and only init changes the persisted one.
#[test]
fn differing_config_is_shown_as_a_diff_never_applied_silently() {
    let mut node = Node::new("daydiff");
    rename_node(&node.cfg, "cp-daydiff");
    node.init_ok();
    let persisted = node.read(PERSISTED);
    let other = node.dir.path().join("other.yaml");
    node.write_config(
        &other,
        &Knobs {
            scheduler_extra_args: &[("v", "2")],
            ..Knobs::default()
        },
    );
    rename_node(&other, "cp-daydiff");
    let diff_line = "ClusterConfiguration.scheduler.extraArgs[v].value: (unset) → 2";

    // verify: the diff is shown; the check runs against the persisted configuration.
    let v = node.plinth_with(&other, &["verify"], SHORT);
    assert!(v.ok(), "{}", v.show());
    assert!(v.stderr.contains(diff_line), "no diff shown:\n{}", v.show());
    assert!(
        v.stderr
            .contains("checks against the persisted configuration"),
        "{}",
        v.show()
    );

    // The same configuration as init's: no diff.
    let same = node.plinth(&["verify"], SHORT);
    assert!(same.ok(), "{}", same.show());
    assert!(!same.stderr.contains("differs"), "{}", same.show());

    // regenerate: the diff first, then the explicit configuration is applied.
    let r = node.plinth_with(
        &other,
        &["manifest", "regenerate", "kube-scheduler"],
        Duration::from_secs(300),
    );
    assert!(r.ok(), "{}", r.show());
    assert!(r.stderr.contains(diff_line), "no diff shown:\n{}", r.show());
    assert!(
        r.stderr
            .contains("manifest regenerate applies the configuration given"),
        "{}",
        r.show()
    );
    let manifest =
        String::from_utf8_lossy(&node.read("/etc/kubernetes/manifests/kube-scheduler.yaml"))
            .into_owned();
    assert!(manifest.contains("--v=2"), "{manifest}");
    assert_eq!(
        String::from_utf8_lossy(&node.read(PERSISTED)),
        String::from_utf8_lossy(&persisted),
        "regenerate changed the persisted configuration"
    );

    // init with it: says what changed, and persists it.
    let init = node.plinth_with(&other, &["init"], INIT_TIMEOUT);
    assert!(init.ok(), "{}", init.show());
    assert!(
        init.stdout
            .contains("[config] changes since the configuration persisted")
            && init.stdout.contains(diff_line),
        "{}",
        init.show()
    );
    let now = String::from_utf8_lossy(&node.read(PERSISTED)).into_owned();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&now).expect("persisted YAML");
    assert_eq!(
        docs[1]["scheduler"]["extraArgs"][0],
        serde_json::json!({"name": "v", "value": "2"}),
        "{now}"
    );
    verify_no_config_eventually(&node, "init with the changed configuration");
    node.reset();
}

/// Regression (issue 8 item 6): with no kubernetesVersion in the config, plinth took its
/// fixed default (v1.33.0) and preflight's version check then failed against the binary that
/// would run (real v1.24 binaries; here the doubles claim v1.32.0 to show the same thing).
/// Now the version is the kube-apiserver binary's, and init says where it came from.
#[test]
fn kubernetes_version_defaults_to_apiserver_binary_version() {
    let mut node = Node::new("kver");
    let doubles_version = "v1.32.0";
    let version = if using_doubles() {
        doubles_version.to_string()
    } else {
        binaries_version()
    };
    let cfg = node.dir.path().join("no-version.yaml");
    node.write_config(&cfg, &Knobs::default());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("kubernetesVersion: {}\n", binaries_version());
    assert!(text.contains(&line), "{text}");
    std::fs::write(&cfg, text.replace(&line, "")).unwrap();

    let root = node.root.dir().display().to_string();
    let cfg_arg = cfg.display().to_string();
    let n = node.runs.fetch_add(1, Ordering::SeqCst);
    let out_path = node.dir.path().join(format!("run{n}.out"));
    let err_path = node.dir.path().join(format!("run{n}.err"));
    let mut cmd = node.ns.command(Path::new(env!("CARGO_BIN_EXE_plinth")));
    cmd.args(["init", "--dry-run", "--root", &root, "--config", &cfg_arg])
        .env("PLINTH_DOUBLE_VERSION", doubles_version)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = ChildGuard::spawn(&mut cmd).expect("spawn");
    let status = child.wait_timeout(SHORT).expect("wait");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let show = format!("exit {status:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        matches!(status, Some(s) if s.success()),
        "init --dry-run without kubernetesVersion failed:\n{show}"
    );
    let apiserver = node.bin.join("kube-apiserver");
    assert!(
        stderr.contains(&format!(
            "kubernetesVersion is not set: using {version}, the version of {}",
            apiserver.display()
        )),
        "init does not say which version it took from where:\n{show}"
    );
    assert!(!stderr.contains("KubernetesVersion-"), "{show}");
    assert_eq!(
        node.root.snapshot().unwrap(),
        vec![],
        "a dry run wrote files"
    );
    node.reset_done = true; // nothing to reset
}
