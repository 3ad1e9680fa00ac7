//! Integration tests: `plinth config validate` and `plinth config print init-defaults`, run as
//! the real binary. Addresses are pinned to 127.0.0.1 so the tests pass on any machine.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

use crate::support::{diff_snapshots, snapshot_dir};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// `plinth config validate --advertise-address <addr>`; the caller adds `--config FILE`.
fn validate(addr: &str) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("plinth");
    cmd.args(["config", "validate", "--advertise-address", addr]);
    cmd
}

#[test]
fn every_example_validates() {
    for (file, summary) in [
        ("single-node.yaml", "local (data dir /var/lib/etcd)"),
        ("external-etcd.yaml", "external (https://10.0.0.11:2379"),
        ("extra-sans.yaml", "https://k8s.example.com:6443"),
    ] {
        let path = example(file);
        validate("127.0.0.1")
            .arg("--config")
            .arg(&path)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "config {} is valid",
                path.display()
            )))
            .stdout(predicate::str::contains("cp1"))
            .stdout(predicate::str::contains("127.0.0.1 (bind port 6443)"))
            .stdout(predicate::str::contains("v1.33.0"))
            .stdout(predicate::str::contains("security profile:"))
            .stdout(predicate::str::contains("RSA-2048"))
            .stdout(predicate::str::contains(summary));
    }
}

#[test]
fn bad_file_fails_naming_every_field_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         networking:\n  serviceSubnett: 10.96.0.0/12\n  podSubnet: 10.96.0.0/16\n\
         encryptionAlgorithm: DSA\n",
    )
    .expect("write config");
    let before = snapshot_dir(dir.path()).expect("snapshot");
    validate("127.0.0.1")
        .current_dir(dir.path())
        .arg("--config")
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("is invalid (3 problems)"))
        .stderr(predicate::str::contains(
            "ClusterConfiguration.networking.serviceSubnett: invalid value \"10.96.0.0/12\": \
             unknown field; did you mean `serviceSubnet`?",
        ))
        .stderr(predicate::str::contains(
            "ClusterConfiguration.networking.podSubnet: invalid value \"10.96.0.0/16\"",
        ))
        .stderr(predicate::str::contains(
            "ClusterConfiguration.encryptionAlgorithm: invalid value \"DSA\"",
        ));
    let after = snapshot_dir(dir.path()).expect("snapshot");
    assert_eq!(
        after,
        before,
        "validate must not write anything: {}",
        diff_snapshots(&before, &after)
    );
}

#[test]
fn flag_errors_name_the_flag() {
    validate("127.0.0.1")
        .args(["--pod-network-cidr", "10.96.0.0/16", "--config"])
        .arg(example("single-node.yaml"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--pod-network-cidr: invalid value \"10.96.0.0/16\": a pod subnet that does not overlap",
        ));
}

#[test]
fn address_not_on_this_host_is_refused() {
    validate("192.0.2.123")
        .arg("--config")
        .arg(example("single-node.yaml"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--advertise-address: invalid value \"192.0.2.123\": an address of a local interface",
        ));
}

#[test]
fn syntax_error_reports_file_line_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "apiVersion: kubeadm.k8s.io/v1beta4\nkind: [oops\n").expect("write");
    cargo_bin_cmd!("plinth")
        .args(["config", "validate", "--config"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("{}:2:", path.display())));
}

#[test]
fn init_defaults_revalidate() {
    let out = cargo_bin_cmd!("plinth")
        .args(["config", "print", "init-defaults"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("kind: InitConfiguration"));
    assert!(text.contains("kind: ClusterConfiguration"));
    assert!(text.contains("kind: PlinthConfiguration"));
    assert!(text.contains("advertiseAddress: 1.2.3.4"));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("defaults.yaml");
    std::fs::write(&path, &text).expect("write");
    validate("127.0.0.1")
        .arg("--config")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("is valid"))
        .stdout(predicate::str::contains("node:"))
        .stdout(predicate::str::contains("local (data dir /var/lib/etcd)"));
}

// ---- issue 8, items 8 and 9: bad input is refused naming field, value and what is allowed,
// ---- and `plinth init` writes nothing.

const V4_CLUSTER: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                          kubernetesVersion: v1.33.0\n";
const V4_INIT: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";

/// Writes `yaml` to a file outside the root, runs `plinth init --root R --config FILE`, and
/// returns its stderr after asserting exit 1 and a root unchanged byte for byte.
fn init_refuses(yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let root = crate::support::TempRoot::new().expect("root");
    root.write("/etc/hostname", b"cp1\n", 0o644)
        .expect("seed the root");
    let before = root.snapshot().expect("snapshot");
    let out = cargo_bin_cmd!("plinth")
        .args([
            "init",
            "--advertise-address",
            "127.0.0.1",
            "--node-name",
            "cp1",
        ])
        .args([
            "--agent",
            "none",
            "--skip-phases",
            "wait-control-plane",
            "--root",
        ])
        .arg(root.dir())
        .arg("--config")
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let after = root.snapshot().expect("snapshot");
    assert_eq!(
        after,
        before,
        "init with a bad config must not write anything: {}",
        diff_snapshots(&before, &after)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8")
}

/// `plinth config validate --config FILE` with `yaml`: exit 1, stderr returned.
fn validate_refuses(yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let out = validate("127.0.0.1")
        .arg("--config")
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .clone();
    String::from_utf8(out.stderr).expect("utf-8")
}

#[track_caller]
fn assert_contains(text: &str, want: &str) {
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
}

#[test]
fn unknown_feature_gate_accepted() {
    let err = init_refuses(&format!("{V4_CLUSTER}featureGates:\n  NoSuchGate: true\n"));
    assert_contains(
        &err,
        "ClusterConfiguration.featureGates.NoSuchGate: invalid value \"true\": not a kubeadm \
         feature gate",
    );
    assert_contains(
        &err,
        "the gates of kubeadm v1.33 are ControlPlaneKubeletLocalMode (beta, default true)",
    );
    assert_contains(&err, "PublicKeysECDSA (deprecated, default false)");
}

#[test]
fn non_boolean_feature_gate_value_accepted() {
    let err = init_refuses(&format!(
        "{V4_CLUSTER}featureGates:\n  PublicKeysECDSA: \"maybe\"\n"
    ));
    assert_contains(
        &err,
        "ClusterConfiguration.featureGates.PublicKeysECDSA: invalid value \"maybe\": true or false",
    );
}

#[test]
fn removed_feature_gate_accepted() {
    let err = validate_refuses(&format!(
        "{V4_CLUSTER}featureGates:\n  EtcdLearnerMode: true\n"
    ));
    assert_contains(
        &err,
        "ClusterConfiguration.featureGates.EtcdLearnerMode: invalid value \"true\": a feature \
         gate of kubeadm v1.33: EtcdLearnerMode was removed in v1.33",
    );
}

#[test]
fn component_feature_gates_flag_with_non_boolean_accepted() {
    let err = validate_refuses(&format!(
        "{V4_CLUSTER}apiServer:\n  extraArgs:\n  - name: feature-gates\n    value: SomeGate=maybe\n"
    ));
    assert_contains(
        &err,
        "ClusterConfiguration.apiServer.extraArgs[0].value: invalid value \"SomeGate=maybe\": \
         comma-separated Name=true|false pairs",
    );
}

#[test]
fn taint_with_unknown_effect_accepted() {
    let err = init_refuses(&format!(
        "{V4_INIT}nodeRegistration:\n  taints:\n  - key: node-role.kubernetes.io/control-plane\n    \
         effect: Sometimes\n"
    ));
    assert_contains(
        &err,
        "InitConfiguration.nodeRegistration.taints[0].effect: invalid value \"Sometimes\": one of \
         NoSchedule, PreferNoSchedule, NoExecute",
    );
}

#[test]
fn empty_config_file_accepted() {
    for (what, yaml) in [("empty", ""), ("blank", "\n\n   \n")] {
        let err = init_refuses(yaml);
        assert!(
            err.contains("no documents in ") && err.contains("bad.yaml"),
            "{what}: {err}"
        );
        assert_contains(&err, "expected InitConfiguration/ClusterConfiguration");
    }
}

#[test]
fn comment_only_config_file_accepted() {
    for yaml in ["# just a comment\n", "# a\n---\n# b\n---\n"] {
        let err = init_refuses(yaml);
        assert_contains(&err, "no documents in ");
        assert_contains(&err, "expected InitConfiguration/ClusterConfiguration");
        assert_contains(&err, "holds only comments");
    }
}

#[test]
fn huge_bind_port_quoted_as_1e26() {
    let err = init_refuses(&format!(
        "{V4_INIT}localAPIEndpoint:\n  bindPort: 99999999999999999999999999\n"
    ));
    assert_contains(
        &err,
        "InitConfiguration.localAPIEndpoint.bindPort: invalid value \"99999999999999999999999999\": \
         a port number between 1 and 65535",
    );
    assert!(!err.contains("1e26") && !err.contains("1e+26"), "{err}");
}

#[test]
fn billion_laughs_shows_parser_internals() {
    // Each level multiplies by 9: 9^8 = 43 million scalars from a file of a few hundred bytes.
    let mut yaml = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        yaml.push_str(&format!("{next}: &{next} [{refs}]\n"));
    }
    let err = init_refuses(&yaml);
    assert_contains(&err, "bad.yaml: refusing to read the file: ");
    assert_contains(&err, "YAML anchors and aliases");
    assert!(
        !err.contains("limits breached") && !err.contains("Nodes {") && !err.contains("Budget"),
        "parser internals in: {err}"
    );
}

#[test]
fn empty_kind_says_both_apiversion_and_kind_set() {
    let err = validate_refuses("apiVersion: kubeadm.k8s.io/v1beta4\nkind:\n");
    assert_contains(
        &err,
        "document 1.kind: invalid value \"\": kind is empty: one of InitConfiguration, \
         ClusterConfiguration, PlinthConfiguration",
    );
    assert!(!err.contains("both apiVersion and kind"), "{err}");
    let err = validate_refuses("apiVersion: kubeadm.k8s.io/v1beta4\nkind: \"\"\n");
    assert_contains(
        &err,
        "document 1.kind: invalid value \"\": kind is empty: one of",
    );
}

#[test]
fn wrong_api_version_or_kind_adds_spurious_advertise_address_error() {
    for yaml in [
        "apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\nlocalAPIEndpoint:\n  \
         advertiseAddress: 127.0.0.1\n",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfigurationn\nlocalAPIEndpoint:\n  \
         advertiseAddress: 127.0.0.1\n",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, yaml).expect("write");
        // No --advertise-address: the address would come from the dropped document, and in a
        // network namespace without a default route there is no default to fall back to.
        let ns = crate::support::NetNs::create("cfgdrop").expect("netns (run as root)");
        let out = ns
            .command(env!("CARGO_BIN_EXE_plinth"))
            .args(["config", "validate", "--config"])
            .arg(&path)
            .output()
            .expect("run plinth");
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_contains(&err, "is invalid (1 problem)");
        assert!(!err.contains("advertiseAddress"), "derived error in: {err}");
        assert!(
            !err.contains("nodeRegistration.name"),
            "derived error in: {err}"
        );
    }
}

// ---- issue 10, item 5: regenerate shows every field and never restarts for a tag alone.

/// A v1beta4 config for `version` whose binPath is `bin` (kubeadm profile: regenerate then
/// needs no etcd system user on the host).
fn versioned_config(dir: &Path, version: &str, bin: &Path) -> PathBuf {
    let path = dir.join(format!("config-{version}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             nodeRegistration: {{name: cp1}}\nlocalAPIEndpoint: {{advertiseAddress: 127.0.0.1}}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
             kubernetesVersion: {version}\n---\n\
             apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nbinPath: [{}]\n\
             securityProfile: kubeadm\n",
            bin.display()
        ),
    )
    .expect("write config");
    path
}

/// `kubernetesVersion: v1.24.1` with a v1.24.0-alpha.1 kube-scheduler on the bin path (as
/// the v1.24 source tree builds): `--diff` shows the image change and warns that the binary
/// is another version; the real run refuses instead of restarting the scheduler for nothing.
#[test]
fn regenerate_reports_an_image_version_the_binary_does_not_have() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("kube-scheduler");
    std::fs::write(&fake, "#!/bin/sh\necho 'Kubernetes v1.24.0-alpha.1'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = crate::support::TempRoot::new().expect("root");

    // The manifest as init wrote it for v1.24.0.
    let old_cfg = versioned_config(dir.path(), "v1.24.0", &bin);
    let spec = plinth::config::load(
        Some(&old_cfg),
        &Default::default(),
        &plinth::config::RealHost,
    )
    .expect("config");
    let host = plinth::fs::HostRoot::new(Some(root.dir()));
    let ctx = plinth::manifests::RenderContext::for_host(&host, &spec);
    let old = plinth::manifests::render(&spec, plinth::manifests::Component::KubeScheduler, &ctx)
        .expect("render");
    root.write(
        "/etc/kubernetes/manifests/kube-scheduler.yaml",
        old.yaml.as_bytes(),
        0o600,
    )
    .expect("write manifest");
    let before = root.snapshot().expect("snapshot");

    let cfg = versioned_config(dir.path(), "v1.24.1", &bin);
    let regenerate = |diff: bool| {
        let mut cmd = cargo_bin_cmd!("plinth");
        cmd.args([
            "manifest",
            "regenerate",
            "kube-scheduler",
            "--timeout",
            "1",
            "--root",
        ])
        .arg(root.dir())
        .arg("--config")
        .arg(&cfg);
        if diff {
            cmd.arg("--diff");
        }
        cmd.output().expect("run plinth")
    };
    let out = regenerate(true);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("~ image (kube-scheduler): registry.k8s.io/kube-scheduler:v1.24.0 → registry.k8s.io/kube-scheduler:v1.24.1"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("no flag changes") && !stdout.contains("no changes"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning")
            && stderr.contains("v1.24.0-alpha.1")
            && stderr.contains(&fake.display().to_string()),
        "{stderr}"
    );

    let out = regenerate(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing a restart that changes nothing")
            && stderr.contains("v1.24.0-alpha.1"),
        "{stderr}"
    );
    let after = root.snapshot().expect("snapshot");
    assert_eq!(after, before, "{}", diff_snapshots(&before, &after));
}

/// Issue 10 item 3: `manifest regenerate kube-apiserver` with `secure-port: notaport` wrote
/// the manifest, stopped the serving apiserver and only then found out. A value plinth can
/// type-check is refused before anything is touched — by `manifest regenerate`, `init` and
/// `config validate` alike — naming the field, the value and what is allowed, in both extraArgs
/// shapes (v1beta4 list, v1beta3 map) and for every component.
#[test]
fn regenerate_broken_flag_is_rejected_before_anything_changes() {
    const V3_CLUSTER: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
                              kubernetesVersion: v1.24.0\n";
    let cases = [
        (
            "kube-apiserver",
            format!("{V4_CLUSTER}apiServer:\n  extraArgs:\n  - name: v\n    value: \"2\"\n  - name: secure-port\n    value: notaport\n"),
            "ClusterConfiguration.apiServer.extraArgs[1].value: invalid value \"notaport\": a port number from 1 to 65535",
        ),
        (
            "kube-apiserver",
            format!("{V3_CLUSTER}apiServer:\n  extraArgs:\n    secure-port: notaport\n"),
            "ClusterConfiguration.apiServer.extraArgs.secure-port: invalid value \"notaport\": a port number from 1 to 65535",
        ),
        (
            "kube-controller-manager",
            format!("{V4_CLUSTER}controllerManager:\n  extraArgs:\n  - name: allocate-node-cidrs\n    value: \"yes\"\n"),
            "ClusterConfiguration.controllerManager.extraArgs[0].value: invalid value \"yes\": a boolean",
        ),
        (
            "kube-scheduler",
            format!("{V4_CLUSTER}scheduler:\n  extraArgs:\n  - name: leader-elect-lease-duration\n    value: \"15\"\n"),
            "ClusterConfiguration.scheduler.extraArgs[0].value: invalid value \"15\": a Go duration",
        ),
        (
            "etcd",
            format!("{V4_CLUSTER}etcd:\n  local:\n    extraArgs:\n    - name: snapshot-count\n      value: \"-5\"\n"),
            "ClusterConfiguration.etcd.local.extraArgs[0].value: invalid value \"-5\": a non-negative integer",
        ),
    ];
    for (component, yaml, want) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, &yaml).expect("write config");
        let root = crate::support::TempRoot::new().expect("root");
        root.write("/etc/hostname", b"cp1\n", 0o644)
            .expect("seed the root");
        let manifest = format!("/etc/kubernetes/manifests/{component}.yaml");
        root.write(&manifest, b"# the running manifest\n", 0o600)
            .expect("seed the manifest");
        let before = root.snapshot().expect("snapshot");
        let out = cargo_bin_cmd!("plinth")
            .args(["manifest", "regenerate", component, "--root"])
            .arg(root.dir())
            .arg("--config")
            .arg(&path)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let after = root.snapshot().expect("snapshot");
        assert_eq!(
            after,
            before,
            "regenerate with a bad flag must not touch anything: {}",
            diff_snapshots(&before, &after)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_contains(&stderr, want);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("wrote the new"),
            "{stderr}"
        );
        // The same config is refused by validate and init.
        assert_contains(&validate_refuses(&yaml), want);
        assert_contains(&init_refuses(&yaml), want);
    }
}
