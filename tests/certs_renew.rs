//! `plinth certs renew` through the CLI on a rendered root (PKI, kubeconfigs and the
//! configuration persisted by init): a renewal keeps each certificate's identity, touches only
//! what was named, and is not steered by flags (issue 10, item 2).

use std::process::Output;

use plinth::config::{defaults_for, persisted, ClusterSpec, KubeVersionSource};
use plinth::kubeconfig::{self, KubeconfigOptions};
use plinth::pki::{self, PkiOptions};

use crate::support::tools::openssl_ok;
use crate::support::{diff_snapshots, NetNs, TempRoot};

/// A root as `plinth init` leaves it (certificates, kubeconfigs, persisted configuration) for
/// node `cp1` advertising the namespace's address.
fn initialised(ns: &NetNs) -> (TempRoot, ClusterSpec) {
    let root = TempRoot::new().expect("root");
    let mut spec = defaults_for("cp1", ns.addr());
    spec.kubernetes_version_source = KubeVersionSource::Config;
    let hr = root.host_root();
    pki::reconcile(&spec, &hr, &PkiOptions::default()).expect("pki");
    kubeconfig::reconcile(&spec, &hr, &KubeconfigOptions::default()).expect("kubeconfigs");
    persisted::save(&spec, &hr).expect("persist");
    // As init does (cis profile): the etcd user may read etcd's keys.
    if let Some((uid, gid)) = plinth::security::lookup_etcd_user() {
        plinth::security::grant_etcd_keys(&hr, &spec, uid, gid).expect("etcd key ACLs");
    }
    (root, spec)
}

fn plinth(ns: &NetNs, root: &TempRoot, args: &[&str]) -> Output {
    ns.command(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .arg("--root")
        .arg(root.dir())
        .output()
        .expect("run plinth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `openssl x509 -noout -subject -ext subjectAltName,keyUsage,extendedKeyUsage` of a cert.
fn identity(root: &TempRoot, crt: &str) -> String {
    let p = root.path(crt);
    openssl_ok(&[
        "x509",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
        "-in",
        &p.to_string_lossy(),
    ])
}

/// The paths (relative to the root) whose content or mode changed between two snapshots.
fn changed(diff: &str) -> Vec<String> {
    diff.lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
        .collect()
}

/// Replaces apiserver-kubelet-client with one a kubeadm before v1.29 issued (O =
/// system:masters, which plinth's profile no longer has), signed by the cluster CA with the
/// real openssl: a certificate init would re-issue, and a renewal of another one must leave.
fn legacy_kubelet_client(root: &TempRoot) {
    let pki = root.path("/etc/kubernetes/pki");
    let s = |n: &str| pki.join(n).to_string_lossy().into_owned();
    let ext = pki.join("legacy.ext");
    std::fs::write(
        &ext,
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    .expect("ext");
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &s("apiserver-kubelet-client.key"),
        "-subj",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "-out",
        &s("legacy.csr"),
    ]);
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        &s("legacy.csr"),
        "-CA",
        &s("ca.crt"),
        "-CAkey",
        &s("ca.key"),
        "-CAcreateserial",
        "-days",
        "300",
        "-extfile",
        &s("legacy.ext"),
        "-out",
        &s("apiserver-kubelet-client.crt"),
    ]);
    for f in ["legacy.ext", "legacy.csr", "ca.srl"] {
        let _ = std::fs::remove_file(pki.join(f));
    }
}

#[test]
fn renew_one_touches_only_that_cert() {
    let ns = NetNs::create("renew1").expect("netns (run as root)");
    let (root, _) = initialised(&ns);
    legacy_kubelet_client(&root);
    let before = root.snapshot().expect("snapshot");
    let old_id = identity(&root, "/etc/kubernetes/pki/apiserver.crt");
    let out = plinth(&ns, &root, &["certs", "renew", "apiserver"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let diff = diff_snapshots(&before, &root.snapshot().expect("snapshot"));
    assert_eq!(
        changed(&diff),
        [
            "etc/kubernetes/pki/apiserver.crt",
            "etc/kubernetes/pki/apiserver.key"
        ],
        "{diff}\n{stdout}"
    );
    assert_eq!(identity(&root, "/etc/kubernetes/pki/apiserver.crt"), old_id);
    assert!(stdout.contains("Renewing \"apiserver\""), "{stdout}");
}

#[test]
fn renew_with_a_different_advertise_address_keeps_identity() {
    let ns = NetNs::create("renewaddr").expect("netns (run as root)");
    let (root, _) = initialised(&ns);
    let pki_dir = "/etc/kubernetes/pki";
    let before = root.snapshot().expect("snapshot");
    let old_id = identity(&root, &format!("{pki_dir}/apiserver.crt"));
    assert!(old_id.contains("DNS:cp1"), "{old_id}");
    assert!(old_id.contains(&ns.addr().to_string()), "{old_id}");
    let out = plinth(
        &ns,
        &root,
        &[
            "certs",
            "renew",
            "apiserver",
            "--advertise-address",
            "127.0.0.1",
            "--node-name",
            "otherhost",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The difference is shown and said to be ignored.
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert!(stderr.contains("ignored"), "{stderr}");
    let new_id = identity(&root, &format!("{pki_dir}/apiserver.crt"));
    assert_eq!(new_id, old_id, "the apiserver's identity changed");
    assert!(!new_id.contains("otherhost") && !new_id.contains("IP Address:127.0.0.1,"));
    let diff = diff_snapshots(&before, &root.snapshot().expect("snapshot"));
    for path in changed(&diff) {
        assert!(
            path == "etc/kubernetes/pki/apiserver.crt"
                || path == "etc/kubernetes/pki/apiserver.key",
            "{path} changed:\n{diff}"
        );
    }
    assert!(!diff.contains("etcd/"), "etcd certs touched:\n{diff}");
    assert!(!diff.contains("var/lib/plinth/config.yaml"), "{diff}");
}

#[test]
fn renew_accepts_etcd_server_and_etcd_slash_server() {
    let ns = NetNs::create("renewname").expect("netns (run as root)");
    let (root, _) = initialised(&ns);
    for name in ["etcd/server", "etcd-server"] {
        let before = root.snapshot().expect("snapshot");
        let out = plinth(&ns, &root, &["certs", "renew", name]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains("\"etcd-server\""), "{stdout}");
        assert!(!stdout.contains("etcd/server\""), "two spellings: {stdout}");
        let diff = diff_snapshots(&before, &root.snapshot().expect("snapshot"));
        assert_eq!(
            changed(&diff),
            [
                "etc/kubernetes/pki/etcd/server.crt",
                "etc/kubernetes/pki/etcd/server.key"
            ],
            "{diff}"
        );
    }
    // check-expiration prints the same spelling.
    let out = plinth(&ns, &root, &["certs", "check-expiration"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("etcd-server"), "{stdout}");
    assert!(!stdout.contains("etcd/server"), "{stdout}");
    // An unknown name lists both allowed spellings' canonical form.
    let out = plinth(&ns, &root, &["certs", "renew", "etcd"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("etcd-server"),
        "{}",
        text(&out.stderr)
    );
}
