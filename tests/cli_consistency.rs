//! Integration tests: the CLI is consistent across verbs (issue 10, item 6) — `--root` on
//! `ps`/`logs`, errors that name their cause once, a man page per command, completion and
//! `--help` that list exactly what a verb takes, and init output in the order things happen.

use assert_cmd::cargo::cargo_bin_cmd;
use plinth::config::{defaults_for, ClusterSpec};
use plinth::fs::HostRoot;
use plinth::manifests::Component;
use predicates::prelude::*;

/// A status API on 127.0.0.1 answering every request with an empty PodList; returns its port.
fn fake_agent() -> u16 {
    let addr = crate::support::fake_status_api(
        r#"{"apiVersion":"v1","kind":"PodList","metadata":{},"items":[]}"#.to_string(),
    );
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn spec() -> ClusterSpec {
    defaults_for("cp1", "127.0.0.1".parse().expect("ip"))
}

/// A temp root where `plinth init` persisted `spec` (what `ps`/`logs` read their settings from).
fn root_with(spec: &ClusterSpec) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    plinth::config::persisted::save(spec, &HostRoot::new(Some(tmp.path()))).expect("persist");
    tmp
}

#[test]
fn ps_accepts_root_and_finds_the_agent_address_init_configured() {
    let mut spec = spec();
    spec.plinth.agent_healthz_port = fake_agent();
    let tmp = root_with(&spec);
    cargo_bin_cmd!("plinth")
        .env_remove("PLINTH_ROOT")
        .args(["ps", "-o", "json", "--root"])
        .arg(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("\"PodList\""));
}

#[test]
fn ps_root_without_init_uses_the_default_agent_address() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = fake_agent();
    // --agent still wins over the root's settings.
    cargo_bin_cmd!("plinth")
        .env_remove("PLINTH_ROOT")
        .args(["ps", "--agent", &format!("127.0.0.1:{port}"), "--root"])
        .arg(tmp.path())
        .assert()
        .success();
}

#[test]
fn logs_root_reads_the_log_dir_init_configured() {
    let mut spec = spec();
    spec.plinth.log_dir = "/srv/pod-logs".into();
    let tmp = root_with(&spec);
    let dir = tmp.path().join("srv/pod-logs/kube-system_etcd-cp1_u1/etcd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("0.log"),
        "2024-01-01T00:00:00.000000000Z stderr F hello from etcd\n",
    )
    .expect("write log");
    cargo_bin_cmd!("plinth")
        .env_remove("PLINTH_ROOT")
        .args(["logs", "etcd", "--root"])
        .arg(tmp.path())
        .assert()
        .success()
        .stdout("hello from etcd\n");
}

#[test]
fn logs_error_does_not_repeat_its_cause() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = cargo_bin_cmd!("plinth")
        .env_remove("PLINTH_ROOT")
        .args(["logs", "kube-apiserver", "--root"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cause = std::io::Error::from_raw_os_error(libc::ENOENT).to_string();
    assert_eq!(stderr.matches(&cause).count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{}/var/log/pods", tmp.path().display())),
        "{stderr}"
    );
}

/// Every `plinth-x(1)` a page refers to.
fn man_references(roff: &str) -> Vec<String> {
    let text = roff.replace("\\-", "-");
    let mut refs = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("plinth-") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(tail.len());
        if tail[end..].starts_with("(1)") {
            refs.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    refs
}

#[test]
fn man_pages_exist_for_every_subcommand_referenced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    cargo_bin_cmd!("plinth")
        .args(["man", "--dir"])
        .arg(tmp.path())
        .assert()
        .success();
    for page in [
        "plinth.1",
        "plinth-init.1",
        "plinth-init-phase-certs.1",
        "plinth-manifest-regenerate.1",
        "plinth-certs-renew.1",
        "plinth-reset.1",
    ] {
        assert!(tmp.path().join(page).is_file(), "{page} not written");
    }
    let top = cargo_bin_cmd!("plinth")
        .arg("man")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let top = String::from_utf8(top).expect("utf-8");
    let mut pages = vec![top.clone()];
    for e in std::fs::read_dir(tmp.path()).expect("read dir").flatten() {
        pages.push(std::fs::read_to_string(e.path()).expect("read page"));
    }
    assert!(man_references(&top).contains(&"plinth-init".to_string()));
    for page in &pages {
        for r in man_references(page) {
            assert!(
                tmp.path().join(format!("{r}.1")).is_file(),
                "{r}(1) is referenced but not generated"
            );
        }
    }
    // The hidden internal commands get no page.
    assert!(!tmp.path().join("plinth-log-shim.1").exists());
}

#[test]
fn regenerate_completion_and_help_offer_the_component_names() {
    let names = "etcd kube-apiserver kube-controller-manager kube-scheduler";
    let bash = cargo_bin_cmd!("plinth")
        .args(["completion", "bash"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let bash = String::from_utf8(bash).expect("utf-8");
    let section = bash
        .split("plinth__subcmd__manifest__subcmd__regenerate)")
        .nth(1)
        .expect("a regenerate section in the bash completion");
    let opts = section
        .lines()
        .find(|l| l.trim_start().starts_with("opts="))
        .expect("opts line");
    assert!(opts.contains(names), "{opts}");
    cargo_bin_cmd!("plinth")
        .args(["manifest", "regenerate", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kube-controller-manager"))
        .stdout(predicate::str::contains("kube-scheduler]"));
    // A wrong name is refused by clap with the list, and the short names stay accepted.
    cargo_bin_cmd!("plinth")
        .args(["manifest", "regenerate", "kube-proxy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "[possible values: etcd, kube-apiserver",
        ));
    let tmp = tempfile::tempdir().expect("tempdir");
    cargo_bin_cmd!("plinth")
        .env_remove("PLINTH_ROOT")
        .args(["manifest", "regenerate", "scheduler", "--diff", "--root"])
        .arg(tmp.path())
        .assert()
        .stderr(predicate::str::contains("invalid value").not());
}

#[test]
fn reset_help_lists_only_the_options_reset_uses() {
    let help = cargo_bin_cmd!("plinth")
        .args(["reset", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(help).expect("utf-8");
    for unused in [
        "--pod-network-cidr",
        "--service-cidr",
        "--kubernetes-version",
        "--advertise-address",
        "--apiserver-cert-extra-sans",
        "--control-plane-endpoint",
    ] {
        assert!(
            !help.contains(unused),
            "reset --help lists {unused}:\n{help}"
        );
    }
    for used in ["--root", "--config", "--force", "--node-name", "--cert-dir"] {
        assert!(help.contains(used), "reset --help lacks {used}:\n{help}");
    }
    // And reset refuses them rather than ignoring them.
    cargo_bin_cmd!("plinth")
        .args(["reset", "--force", "--pod-network-cidr", "10.0.0.0/16"])
        .assert()
        .code(2);
}

fn line_index(lines: &[String], what: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in:\n{}", lines.join("\n")))
}

#[test]
fn first_init_output_in_the_order_things_happen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = HostRoot::new(Some(tmp.path()));
    let mut spec = spec();
    spec.key_algorithm = plinth::config::KeyAlgorithm::EcdsaP256;
    plinth::init::phase_certs(&spec, &root, None, false).expect("certs");
    // init's pipelined order: etcd's manifest first, then the control plane's.
    let etcd =
        plinth::init::phase_manifests(&spec, &root, &[Component::Etcd], false).expect("etcd phase");
    let creating = line_index(&etcd.lines, "Creating /var/lib/etcd");
    if spec.plinth.security_profile == plinth::config::SecurityProfile::Cis {
        let owned = line_index(&etcd.lines, "/var/lib/etcd is owned by the etcd user");
        assert!(creating < owned, "{}", etcd.lines.join("\n"));
    }
    line_index(&etcd.lines, "Creating /etc/kubernetes/manifests");
    let cp = plinth::init::phase_manifests(
        &spec,
        &root,
        &plinth::init::control_plane_components(),
        false,
    )
    .expect("control-plane phase");
    assert!(
        !cp.lines
            .iter()
            .any(|l| l.ends_with("Unchanged /etc/kubernetes/manifests")),
        "{}",
        cp.lines.join("\n")
    );
    line_index(
        &cp.lines,
        "Creating /etc/kubernetes/manifests/kube-apiserver.yaml",
    );
}

#[test]
fn init_dry_run_shows_the_diff_of_a_changed_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = HostRoot::new(Some(tmp.path()));
    let spec = spec();
    let comps = [Component::KubeScheduler];
    plinth::init::phase_manifests(&spec, &root, &comps, false).expect("render");
    let mut changed = spec.clone();
    changed.scheduler.extra_args.push(plinth::config::Arg {
        name: "v".into(),
        value: "4".into(),
    });
    let before = std::fs::read(
        tmp.path()
            .join("etc/kubernetes/manifests/kube-scheduler.yaml"),
    )
    .expect("read");
    let report =
        plinth::init::phase_manifests(&changed, &root, &comps, true).expect("dry-run render");
    let i = line_index(
        &report.lines,
        "Would write /etc/kubernetes/manifests/kube-scheduler.yaml",
    );
    let diff = report.lines.get(i + 1).cloned().unwrap_or_default();
    assert!(diff.contains("--v=4"), "{}", report.lines.join("\n"));
    let after = std::fs::read(
        tmp.path()
            .join("etc/kubernetes/manifests/kube-scheduler.yaml"),
    )
    .expect("read");
    assert_eq!(before, after, "a dry run wrote the manifest");
}
