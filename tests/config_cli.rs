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
