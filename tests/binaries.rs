//! Binary provisioning (issue 13): `plinth binaries pull|list|prune` and `plinth init`
//! against a release mirror on loopback (tests/support/mirror.rs): downloads, verification,
//! the cache, and every failure — each naming the URL and what was expected, leaving no file
//! in the cache. Nothing here talks to anything but 127.0.0.1 (of the host or of a netns the
//! test created).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::doubles::{component_path, using_doubles};
use crate::support::etcd::etcdctl_binary;
use crate::support::mirror::{exec_wrapper, Behaviour, Content, Mirror};
use crate::support::{etcd_binary, etcd_version, make_bin_dir, TempRoot};

fn arch() -> &'static str {
    plinth::binaries::repo::host_arch().expect("a supported architecture")
}

/// The version the component binaries (doubles or real) report: `v1.33.0`, `v1.24.0-alpha.1`.
fn kube_version() -> String {
    let out = Command::new(component_path("kube-apiserver"))
        .arg("--version")
        .output()
        .expect("kube-apiserver --version");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with('v'))
        .expect("a version")
        .split('+')
        .next()
        .unwrap()
        .to_string()
}

/// What the mirror serves for `component`: the real binary, or a wrapper of the double.
fn served(component: &str) -> Content {
    if using_doubles() {
        Content::Bytes(exec_wrapper(&component_path(component)))
    } else {
        Content::File(component_path(component))
    }
}

/// A host with a bin dir (the components minus `missing`), a temp root, a config pointing at a
/// mirror on the host's loopback.
struct Host {
    dir: tempfile::TempDir,
    root: TempRoot,
    bin: PathBuf,
    cfg: PathBuf,
    mirror: Mirror,
    version: String,
}

impl Host {
    fn new(missing: &[&str]) -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = make_bin_dir(&dir.path().join("bin")).expect("bin dir");
        for m in missing {
            std::fs::remove_file(bin.join(m)).expect("remove from the bin dir");
        }
        let mirror = Mirror::start(None);
        let h = Host {
            cfg: dir.path().join("cluster.yaml"),
            root: TempRoot::new().expect("root"),
            dir,
            bin,
            mirror,
            version: kube_version(),
        };
        h.write_config("");
        h
    }

    fn write_config(&self, plinth_extra: &str) {
        std::fs::write(
            &self.cfg,
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
                 nodeRegistration: {{name: cp1}}\nlocalAPIEndpoint: {{advertiseAddress: 127.0.0.1}}\n---\n\
                 apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                 kubernetesVersion: {}\n---\n\
                 apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nsecurityProfile: kubeadm\n\
                 binPath: [{}]\nbinaryRepository: {}/release\netcdBinaryRepository: {}/etcd\n{plinth_extra}",
                self.version,
                self.bin.display(),
                self.mirror.url(),
                self.mirror.url()
            ),
        )
        .expect("write config");
    }

    /// The URL of `name` in the mirror.
    fn url(&self, name: &str) -> String {
        format!("{}{}", self.mirror.url(), self.path(name))
    }

    fn path(&self, name: &str) -> String {
        format!("/release/{}/bin/linux/{}/{name}", self.version, arch())
    }

    fn plinth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(args)
            .arg("--root")
            .arg(self.root.dir())
            .arg("--config")
            .arg(&self.cfg)
            .env("PLINTH_DOWNLOAD_BACKOFF_MS", "10")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .output()
            .expect("run plinth")
    }

    fn pull(&self) -> Output {
        self.plinth(&["binaries", "pull", "--no-kubectl"])
    }

    /// The local path of a cached binary.
    fn cached(&self, component: &str, version: &str, name: &str) -> PathBuf {
        self.root
            .path(format!("/var/lib/plinth/bin/{component}/{version}/{name}"))
    }

    /// Asserts a failed pull: exit 1, stderr naming `url` and each of `expect`, and nothing
    /// left under the root (no cache dir, no temp file).
    #[track_caller]
    fn assert_refused(&self, out: &Output, url: &str, expect: &[&str]) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let show = format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "{show}");
        assert!(stderr.contains(url), "the error must name {url}:\n{show}");
        for e in expect {
            assert!(stderr.contains(e), "the error must say {e:?}:\n{show}");
        }
        let snap = self.root.snapshot().expect("snapshot");
        assert!(
            snap.is_empty(),
            "a failed download left files under the root: {snap:#?}\n{show}"
        );
        stderr
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn pull_downloads_verifies_and_caches_then_downloads_nothing() {
    let h = Host::new(&["kube-apiserver", "kube-scheduler"]);
    for c in ["kube-apiserver", "kube-scheduler"] {
        h.mirror
            .add_kubernetes("/release", &h.version, arch(), c, served(c));
    }
    let out = h.pull();
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("downloaded from {}", h.url("kube-apiserver"))),
        "{stdout}"
    );
    assert!(stdout.contains("sha256 verified"), "{stdout}");
    for c in ["kube-apiserver", "kube-scheduler"] {
        let p = h.cached(c, &h.version, c);
        assert_eq!(mode(&p), 0o755, "{}", p.display());
        assert_eq!(mode(p.parent().unwrap()), 0o755);
        let reported = Command::new(&p).arg("--version").output().unwrap();
        assert!(String::from_utf8_lossy(&reported.stdout).contains(&h.version));
    }
    assert_eq!(mode(&h.root.path("/var/lib/plinth")), 0o711);
    // No temp file is left beside the binaries.
    let names: Vec<String> = std::fs::read_dir(
        h.cached("kube-apiserver", &h.version, "x")
            .parent()
            .unwrap(),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
    assert_eq!(names, ["kube-apiserver"]);
    // The controller-manager and etcd on binPath are the right versions: not downloaded.
    let paths: Vec<String> = h.mirror.downloads().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");

    h.mirror.clear_log();
    let again = h.pull();
    assert!(again.status.success(), "{}", show(&again));
    assert!(
        h.mirror.requests().is_empty(),
        "a second pull must download nothing: {:?}",
        h.mirror.requests()
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("cached"));

    // list: table and JSON.
    let list = h.plinth(&["binaries", "list", "-o", "json"]);
    assert!(list.status.success(), "{}", show(&list));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["component"], "kube-apiserver");
    assert_eq!(rows[0]["inUse"], true);
    let table = h.plinth(&["binaries", "list"]);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("COMPONENT") && t.contains("kube-scheduler") && t.contains(&h.version),
        "{t}"
    );

    // prune: an old version goes, the ones in use stay.
    let old = h.cached("kube-apiserver", "v1.0.0", "kube-apiserver");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, b"#!/bin/sh\n").unwrap();
    let dry = h.plinth(&["binaries", "prune", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("would remove kube-apiserver v1.0.0"),
        "{}",
        show(&dry)
    );
    assert!(old.exists());
    let pruned = h.plinth(&["binaries", "prune"]);
    assert!(pruned.status.success(), "{}", show(&pruned));
    assert!(!old.parent().unwrap().exists());
    assert!(h
        .cached("kube-apiserver", &h.version, "kube-apiserver")
        .exists());
}

#[test]
fn pull_extracts_etcd_and_etcdctl_from_the_release_tarball() {
    let h = Host::new(&["etcd"]);
    let etcd = etcd_binary().expect("etcd");
    let etcdctl = etcdctl_binary().expect("etcdctl");
    let version = format!("v{}", etcd_version(&etcd));
    h.write_config("");
    // The config pins etcd to the test etcd's version (no etcd on binPath to take it from).
    std::fs::write(
        &h.cfg,
        std::fs::read_to_string(&h.cfg).unwrap().replace(
            &format!("kubernetesVersion: {}\n", h.version),
            &format!(
                "kubernetesVersion: {}\netcd:\n  local:\n    imageTag: {}-0\n",
                h.version,
                version.trim_start_matches('v')
            ),
        ),
    )
    .unwrap();
    let tar = h
        .mirror
        .add_etcd("/etcd", &version, arch(), &etcd, &etcdctl, h.dir.path());
    let out = h.pull();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&tar),
        "{}",
        show(&out)
    );
    for n in ["etcd", "etcdctl"] {
        let p = h.cached("etcd", &version, n);
        assert_eq!(mode(&p), 0o755);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(if n == "etcd" { &etcd } else { &etcdctl }).unwrap()
        );
    }
}

#[test]
fn checksum_mismatch_is_refused_naming_url_and_both_digests() {
    let h = Host::new(&["kube-apiserver"]);
    let path = h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-apiserver",
        served("kube-apiserver"),
    );
    let wrong = "ab".repeat(32);
    h.mirror.put(
        &format!("{path}.sha256"),
        Content::Bytes(format!("{wrong}  kube-apiserver\n").into_bytes()),
    );
    let out = h.pull();
    h.assert_refused(
        &out,
        &h.url("kube-apiserver"),
        &[
            "sha256 mismatch",
            &format!("expected {wrong}"),
            "kube-apiserver.sha256",
        ],
    );
}

#[test]
fn truncated_download_is_retried_then_refused() {
    let h = Host::new(&["kube-scheduler"]);
    let path = h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-scheduler",
        served("kube-scheduler"),
    );
    h.mirror.set(&path, Behaviour::Truncate(40));
    let out = h.pull();
    h.assert_refused(
        &out,
        &h.url("kube-scheduler"),
        &["interrupted after 40 of", "after 4 attempts"],
    );
    let tries: Vec<_> = h.mirror.downloads();
    assert_eq!(tries.len(), 4, "{tries:?}");
    assert_eq!(tries[0].range, None);
    assert_eq!(tries[1].range.as_deref(), Some("bytes=40-"), "{tries:?}");
}

#[test]
fn interrupted_download_resumes_with_range() {
    let h = Host::new(&["kube-scheduler"]);
    let path = h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-scheduler",
        served("kube-scheduler"),
    );
    h.mirror.set(&path, Behaviour::TruncateOnce(25));
    let out = h.pull();
    assert!(out.status.success(), "{}", show(&out));
    let tries: Vec<_> = h.mirror.downloads();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[1].range.as_deref(), Some("bytes=25-"));
    let cached = std::fs::read(h.cached("kube-scheduler", &h.version, "kube-scheduler")).unwrap();
    let want = match served("kube-scheduler") {
        Content::Bytes(b) => b,
        Content::File(p) => std::fs::read(p).unwrap(),
    };
    assert!(cached == want, "the resumed file differs from the original");
}

#[test]
fn not_found_is_refused_naming_url() {
    let h = Host::new(&["kube-controller-manager"]);
    let out = h.pull();
    h.assert_refused(
        &out,
        &format!("{}.sha256", h.url("kube-controller-manager")),
        &["not found (HTTP 404)", "kube-controller-manager"],
    );
    // A checksum without its binary: the binary's URL is named.
    let h = Host::new(&["kube-controller-manager"]);
    let path = h.path("kube-controller-manager");
    h.mirror.put(
        &format!("{path}.sha256"),
        Content::Bytes(format!("{}\n", "a".repeat(64)).into_bytes()),
    );
    let out = h.pull();
    h.assert_refused(
        &out,
        &h.url("kube-controller-manager"),
        &["not found (HTTP 404)"],
    );
}

#[test]
fn redirect_loop_is_refused_naming_url() {
    let h = Host::new(&["kube-apiserver"]);
    let path = h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-apiserver",
        served("kube-apiserver"),
    );
    h.mirror.set(&path, Behaviour::RedirectLoop);
    let out = h.pull();
    h.assert_refused(&out, &h.url("kube-apiserver"), &["redirect loop"]);
}

#[test]
fn wrong_architecture_is_refused_naming_url_and_both_architectures() {
    let h = Host::new(&["kube-apiserver"]);
    // An ELF header for another machine (s390x = 22, or arm64 = 183 on s390x hosts).
    let other: u16 = if arch() == "arm64" { 62 } else { 183 };
    let mut elf = vec![0u8; 256];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[6] = 1;
    elf[16] = 2;
    elf[18..20].copy_from_slice(&other.to_le_bytes());
    h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-apiserver",
        Content::Bytes(elf),
    );
    let out = h.pull();
    let name = if other == 62 { "amd64" } else { "arm64" };
    h.assert_refused(
        &out,
        &h.url("kube-apiserver"),
        &[
            name,
            &format!("expected an ELF executable for linux/{}", arch()),
        ],
    );

    // Neither ELF nor a script (an HTML error page served as 200).
    let h = Host::new(&["kube-apiserver"]);
    h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-apiserver",
        Content::Bytes(b"<html>mirror login</html>\n".to_vec()),
    );
    let out = h.pull();
    h.assert_refused(
        &out,
        &h.url("kube-apiserver"),
        &["neither an ELF executable nor a #! script"],
    );
}

#[test]
fn version_mismatch_is_refused_naming_url_and_both_versions() {
    let h = Host::new(&["kube-scheduler"]);
    h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-scheduler",
        Content::Bytes(b"#!/bin/sh\necho 'Kubernetes v1.99.7'\n".to_vec()),
    );
    let out = h.pull();
    h.assert_refused(
        &out,
        &h.url("kube-scheduler"),
        &["reports 1.99.7", &format!("expected {}", h.version)],
    );
}

#[test]
fn offline_refuses_listing_what_is_missing() {
    let h = Host::new(&["kube-apiserver", "kube-scheduler"]);
    let out = h.plinth(&["binaries", "pull", "--no-kubectl", "--offline"]);
    let stderr = h.assert_refused(
        &out,
        &h.url("kube-apiserver"),
        &["--offline", &h.url("kube-scheduler"), "/var/lib/plinth/bin"],
    );
    assert!(!stderr.contains("kube-controller-manager"), "{stderr}");
    assert!(h.mirror.requests().is_empty());
}

#[test]
fn file_repository_is_read_in_place() {
    let h = Host::new(&["kube-apiserver"]);
    let repo = h.dir.path().join("repo");
    let dir = repo.join(format!("{}/bin/linux/{}", h.version, arch()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = match served("kube-apiserver") {
        Content::Bytes(b) => b,
        Content::File(p) => std::fs::read(p).unwrap(),
    };
    std::fs::write(dir.join("kube-apiserver"), &body).unwrap();
    std::fs::write(
        dir.join("kube-apiserver.sha256"),
        crate::support::mirror::sha256_hex(&body),
    )
    .unwrap();
    h.write_config("");
    let text = std::fs::read_to_string(&h.cfg).unwrap().replace(
        &format!("binaryRepository: {}/release", h.mirror.url()),
        &format!("binaryRepository: file://{}", repo.display()),
    );
    std::fs::write(&h.cfg, text).unwrap();
    let out = h.pull();
    assert!(out.status.success(), "{}", show(&out));
    assert!(h
        .cached("kube-apiserver", &h.version, "kube-apiserver")
        .exists());
    assert!(h.mirror.requests().is_empty());
}

#[test]
fn bad_repository_settings_are_config_errors() {
    let h = Host::new(&[]);
    h.write_config("binaryRepositoryCABundle: relative/ca.pem\n");
    let text = std::fs::read_to_string(&h.cfg).unwrap().replace(
        &format!("binaryRepository: {}/release", h.mirror.url()),
        "binaryRepository: http://mirror.example.com/release",
    );
    std::fs::write(&h.cfg, text).unwrap();
    let out = h.pull();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr.contains("PlinthConfiguration.binaryRepository")
            && stderr.contains("http://mirror.example.com/release")
            && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(
        stderr.contains("PlinthConfiguration.binaryRepositoryCABundle"),
        "{stderr}"
    );
}

/// One `plinth` run inside a netns, output to files (the agent init spawns inherits none of
/// our pipes), killed after `timeout`.
fn run_in_ns(
    ns: &crate::support::NetNs,
    dir: &Path,
    n: &str,
    args: &[&str],
    timeout: std::time::Duration,
) -> (Option<i32>, String, String) {
    use std::process::Stdio;
    let (o, e) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_plinth"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    let mut g = crate::support::ChildGuard::spawn(&mut cmd).expect("spawn plinth");
    let status = g.wait_timeout(timeout).expect("wait");
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let (out, err) = (read(&o), read(&e));
    assert!(
        status.is_some(),
        "plinth {args:?} still running after {timeout:?}:\n{out}\n{err}"
    );
    (status.and_then(|s| s.code()), out, err)
}

/// Resets the node on drop (also on panic), before the netns and the dirs go.
struct Node {
    ns: crate::support::NetNs,
    root: TempRoot,
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Node {
    fn plinth(
        &self,
        n: &str,
        args: &[&str],
        timeout: std::time::Duration,
    ) -> (Option<i32>, String, String) {
        let root = self.root.dir().display().to_string();
        let cfg = self.cfg.display().to_string();
        let mut all = args.to_vec();
        all.extend(["--root", &root, "--config", &cfg]);
        run_in_ns(&self.ns, self.dir.path(), n, &all, timeout)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.plinth(
            "reset",
            &["reset", "--force"],
            std::time::Duration::from_secs(60),
        );
    }
}

/// The done-when test of issue 13: `plinth init` with `binaryRepository` and
/// `etcdBinaryRepository` pointing at a mirror on the netns' loopback (serving the doubles,
/// or the real binaries under `PLINTH_E2E_BIN_DIR`, and the real etcd in a release tarball)
/// downloads, verifies and caches all four components and brings the control plane up
/// (etcd running as its own user from the cache); a second init downloads nothing.
#[test]
fn init_from_a_loopback_mirror_downloads_caches_and_comes_up_then_downloads_nothing() {
    use std::time::Duration;
    crate::init_e2e::init_flow::ensure_etcd_user();
    let ns = crate::support::NetNs::create("bins").expect("netns");
    let root = TempRoot::new().expect("root");
    // A real host's / is 0755: the etcd user must reach its binary in the cache.
    std::fs::set_permissions(root.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("plinth-bins-")
        .tempdir()
        .expect("tempdir");
    let empty_bin = dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty_bin).unwrap();
    let mirror = Mirror::start(Some(&ns));
    let version = kube_version();
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        mirror.add_kubernetes("/release", &version, arch(), c, served(c));
    }
    let etcd = etcd_binary().expect("etcd");
    let etcd_v = etcd_version(&etcd);
    mirror.add_etcd(
        "/etcd",
        &format!("v{etcd_v}"),
        arch(),
        &etcd,
        &etcdctl_binary().expect("etcdctl"),
        dir.path(),
    );
    let cfg = dir.path().join("cluster.yaml");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             nodeRegistration: {{name: cp1}}\nlocalAPIEndpoint: {{advertiseAddress: {addr}}}\n\
             timeouts: {{controlPlaneComponentHealthCheck: 90s}}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
             kubernetesVersion: {version}\nencryptionAlgorithm: ECDSA-P256\n\
             etcd: {{local: {{imageTag: {etcd_v}-0}}}}\n---\n\
             apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\n\
             binPath: [{bin}]\nbinaryRepository: {url}/release\netcdBinaryRepository: {url}/etcd\n",
            addr = ns.addr(),
            bin = empty_bin.display(),
            url = mirror.url(),
        ),
    )
    .unwrap();
    let node = Node { ns, root, dir, cfg };

    let (code, out, err) = node.plinth("init1", &["init"], Duration::from_secs(180));
    let show = format!("exit {code:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert_eq!(code, Some(0), "init from the mirror failed:\n{show}");
    assert!(out.contains("has initialized successfully"), "{show}");
    let mut got: Vec<String> = mirror.downloads().into_iter().map(|r| r.path).collect();
    got.sort();
    let mut want: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .map(|c| format!("/release/{version}/bin/linux/{}/{c}", arch()))
    .chain([format!(
        "/etcd/v{etcd_v}/etcd-v{etcd_v}-linux-{}.tar.gz",
        arch()
    )])
    .collect();
    want.sort();
    assert_eq!(got, want, "{show}");
    let cache =
        |c: &str, v: &str, n: &str| node.root.path(format!("/var/lib/plinth/bin/{c}/{v}/{n}"));
    for (c, v, n) in [
        ("kube-apiserver", version.as_str(), "kube-apiserver"),
        (
            "kube-controller-manager",
            &version,
            "kube-controller-manager",
        ),
        ("kube-scheduler", &version, "kube-scheduler"),
        ("etcd", &format!("v{etcd_v}"), "etcd"),
        ("etcd", &format!("v{etcd_v}"), "etcdctl"),
    ] {
        assert_eq!(mode(&cache(c, v, n)), 0o755, "{c} {v} {n}");
    }
    // The agent runs the cached binaries (the manifests still say `command: [etcd, ...]`).
    let manifest =
        std::fs::read_to_string(node.root.path("/etc/kubernetes/manifests/etcd.yaml")).unwrap();
    assert!(manifest.contains("- etcd\n"), "{manifest}");
    let ps = run_in_ns(
        &node.ns,
        node.dir.path(),
        "ps",
        &["ps", "-o", "json"],
        Duration::from_secs(30),
    );
    assert_eq!(ps.0, Some(0), "{ps:?}");
    let cached_etcd = cache("etcd", &format!("v{etcd_v}"), "etcd");
    let running: Vec<String> = node
        .ns
        .pids()
        .iter()
        .filter_map(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        running
            .iter()
            .any(|p| *p == cached_etcd.display().to_string()),
        "etcd must run from the cache {}: {running:#?}",
        cached_etcd.display()
    );

    mirror.clear_log();
    let (code, out, err) = node.plinth("init2", &["init"], Duration::from_secs(180));
    let show = format!("exit {code:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert_eq!(code, Some(0), "the second init failed:\n{show}");
    assert!(
        mirror.requests().is_empty(),
        "the second init must download nothing: {:?}\n{show}",
        mirror.requests()
    );
    assert!(
        out.contains(&format!("[binaries] etcd v{etcd_v}: cached")),
        "{show}"
    );
}

/// A component that cannot be downloaded stops init before preflight with a preflight-style
/// error naming the URL, and init writes nothing.
#[test]
fn init_stops_before_preflight_when_a_binary_cannot_be_provided() {
    let h = Host::new(&["kube-apiserver"]);
    let out = h.plinth(&[
        "init",
        "--agent",
        "none",
        "--skip-phases",
        "wait-control-plane",
    ]);
    let stderr = h.assert_refused(
        &out,
        &format!("{}.sha256", h.url("kube-apiserver")),
        &["[ERROR Binaries-kube-apiserver]", "not found (HTTP 404)"],
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("[preflight]"),
        "{stderr}"
    );
    // --offline says what is missing and downloads nothing.
    h.mirror.clear_log();
    let out = h.plinth(&["init", "--offline", "--agent", "none"]);
    h.assert_refused(
        &out,
        &h.url("kube-apiserver"),
        &["--offline", "[ERROR Binaries]"],
    );
    assert!(h.mirror.requests().is_empty());
    // A dry run says what it would download and writes nothing.
    let out = h.plinth(&["init", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "[dry-run] would download kube-apiserver {} from {}",
            h.version,
            h.url("kube-apiserver")
        )),
        "{}",
        show(&out)
    );
    assert!(h.mirror.requests().is_empty());
    assert!(h.root.snapshot().unwrap().is_empty());
    // `init phase binaries` on its own downloads and caches, and writes nothing else.
    h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kube-apiserver",
        served("kube-apiserver"),
    );
    let out = h.plinth(&["init", "phase", "binaries"]);
    assert!(out.status.success(), "{}", show(&out));
    let others: Vec<String> = h
        .root
        .snapshot()
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .filter(|p| {
            !p.starts_with("var/lib/plinth/bin")
                && !["var", "var/lib", "var/lib/plinth"].contains(&p.as_str())
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");
    assert!(h
        .cached("kube-apiserver", &h.version, "kube-apiserver")
        .exists());
}

/// A private HTTPS mirror (inside a netns, on its TEST-NET address) whose CA is not in the
/// system roots: refused without `binaryRepositoryCABundle` (naming the URL and the setting,
/// nothing cached), used with it; `HTTPS_PROXY` is honoured (a CONNECT through a proxy on
/// the netns' loopback) and `NO_PROXY` bypasses it.
#[test]
fn https_mirror_with_a_ca_bundle_through_https_proxy_and_no_proxy() {
    use crate::support::{NetNs, TestCa, Usage};
    let ns = NetNs::create("binca").expect("netns");
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "mirror-ca", "plinth test mirror CA").expect("ca");
    let addr = ns.addr();
    let serving = ca
        .issue(
            dir.path(),
            "mirror",
            "mirror",
            &[],
            &[format!("IP:{addr}")],
            Usage::Server,
        )
        .expect("serving cert");
    let mirror = Mirror::start_tls(Some(&ns), addr, &serving.cert, &serving.key);
    let proxy = Mirror::start(Some(&ns));
    let version = kube_version();
    mirror.add_kubernetes(
        "/release",
        &version,
        arch(),
        "kube-apiserver",
        served("kube-apiserver"),
    );
    let bin = make_bin_dir(&dir.path().join("bin")).unwrap();
    std::fs::remove_file(bin.join("kube-apiserver")).unwrap();
    let root = TempRoot::new().unwrap();
    let cfg = dir.path().join("cluster.yaml");
    let write_cfg = |ca_bundle: bool| {
        std::fs::write(
            &cfg,
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
                 nodeRegistration: {{name: cp1}}\nlocalAPIEndpoint: {{advertiseAddress: 127.0.0.1}}\n---\n\
                 apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n---\n\
                 apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nbinPath: [{}]\n\
                 binaryRepository: {}/release\n{}",
                bin.display(),
                mirror.url(),
                if ca_bundle { "binaryRepositoryCABundle: /etc/plinth/mirror-ca.pem\n" } else { "" }
            ),
        )
        .unwrap()
    };
    let pull = |env: &[(&str, String)]| {
        let mut cmd = ns.command(env!("CARGO_BIN_EXE_plinth"));
        cmd.args(["binaries", "pull", "--no-kubectl", "--root"])
            .arg(root.dir())
            .arg("--config")
            .arg(&cfg)
            .env("PLINTH_DOWNLOAD_BACKOFF_MS", "10");
        for k in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run plinth")
    };
    let url = format!(
        "{}/release/{version}/bin/linux/{}/kube-apiserver.sha256",
        mirror.url(),
        arch()
    );
    let cached = root.path(format!(
        "/var/lib/plinth/bin/kube-apiserver/{version}/kube-apiserver"
    ));

    // Without the CA: refused, naming the URL and the setting to use; nothing cached.
    write_cfg(false);
    let out = pull(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr.contains(&url) && stderr.contains("binaryRepositoryCABundle"),
        "{}",
        show(&out)
    );
    assert!(
        root.snapshot().unwrap().is_empty(),
        "{:#?}",
        root.snapshot()
    );

    // With the CA bundle (under --root, like every host path) and HTTPS_PROXY: through the
    // proxy.
    root.write(
        "/etc/plinth/mirror-ca.pem",
        &std::fs::read(&ca.cert).unwrap(),
        0o644,
    )
    .unwrap();
    write_cfg(true);
    let out = pull(&[("HTTPS_PROXY", proxy.url())]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(cached.exists());
    let tunnels: Vec<String> = proxy.requests().into_iter().map(|r| r.path).collect();
    // One tunnel per connection (the checksum, the binary): every one to the mirror.
    assert!(
        tunnels.len() >= 2
            && tunnels
                .iter()
                .all(|t| *t == format!("CONNECT {}", mirror.addr())),
        "{tunnels:?}\n{}",
        show(&out)
    );

    // NO_PROXY (a CIDR holding the mirror): straight to the mirror.
    std::fs::remove_dir_all(root.path("/var/lib/plinth/bin")).unwrap();
    proxy.clear_log();
    let out = pull(&[
        ("HTTPS_PROXY", proxy.url()),
        ("NO_PROXY", "example.com,192.0.2.0/24".to_string()),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(cached.exists());
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

/// `plinth binaries pull` also provides kubectl for the operator, checking the version
/// `kubectl version --client -o json` reports.
#[test]
fn pull_provides_kubectl_checking_its_client_version() {
    let h = Host::new(&[]);
    let kubectl = |v: &str| {
        Content::Bytes(
            format!(
                "#!/bin/sh\n[ \"$1 $2 $3 $4\" = 'version --client -o json' ] || exit 1\n\
                 printf '{{\\n  \"clientVersion\": {{\\n    \"gitVersion\": \"{v}\"\\n  }}\\n}}\\n'\n"
            )
            .into_bytes(),
        )
    };
    h.mirror
        .add_kubernetes("/release", &h.version, arch(), "kubectl", kubectl("v1.2.3"));
    let out = h.plinth(&["binaries", "pull"]);
    h.assert_refused(
        &out,
        &h.url("kubectl"),
        &[
            "`kubectl version --client -o json` reports 1.2.3",
            &format!("expected {}", h.version),
        ],
    );
    h.mirror.add_kubernetes(
        "/release",
        &h.version,
        arch(),
        "kubectl",
        kubectl(&h.version),
    );
    let out = h.plinth(&["binaries", "pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(mode(&h.cached("kubectl", &h.version, "kubectl")), 0o755);
}
