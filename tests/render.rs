//! Integration tests: render (PKI and kubeconfigs), checked with the real `openssl` and
//! `kubectl` CLIs against kubeadm's reference fields (../shared/reference/kubeadm-v1.24/,
//! with the v1.29+ differences: kubeadm:cluster-admins, no O on the etcd clients).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use plinth::config::{defaults_for, ClusterSpec, Endpoint, KeyAlgorithm};
use plinth::fs::HostRoot;
use plinth::kubeconfig::{self, KubeconfigAction, KubeconfigOptions};
use plinth::pki::{self, PkiAction, PkiOptions, Renew};

use crate::support::tools::{
    cert_pubkey, key_pubkey, kubectl_binary, openssl_ok, run, run_ok, verify_chain, x509_text,
};
use crate::support::{diff_snapshots, snapshot_dir, TreeEntry};

/// The reference input: node cp1 at 192.168.10.5, controlPlaneEndpoint lb.example.com:6443,
/// certSANs 10.0.0.100 and api.example.com.
fn reference_spec(alg: KeyAlgorithm) -> ClusterSpec {
    let mut s = defaults_for("cp1", "192.168.10.5".parse().expect("ip"));
    s.control_plane_endpoint = Some(Endpoint {
        host: "lb.example.com".into(),
        port: 6443,
    });
    s.api_server.cert_sans = vec!["10.0.0.100".into(), "api.example.com".into()];
    s.key_algorithm = alg;
    s
}

fn snapshot(dir: &Path) -> Vec<TreeEntry> {
    snapshot_dir(dir).expect("snapshot")
}

fn kubectl_bin() -> PathBuf {
    kubectl_binary().expect("kubectl (scripts/install-deps.sh installs it)")
}

/// A fresh temp dir and the host root on it.
fn temp_root() -> (tempfile::TempDir, HostRoot) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = HostRoot::new(Some(tmp.path()));
    (tmp, root)
}

/// [`temp_root`] with the ECDSA reference spec's PKI and kubeconfigs rendered once.
fn rendered() -> (tempfile::TempDir, HostRoot, ClusterSpec) {
    let (tmp, root) = temp_root();
    let spec = reference_spec(KeyAlgorithm::EcdsaP256);
    render_all(&spec, &root);
    (tmp, root, spec)
}

fn render_all(
    spec: &ClusterSpec,
    root: &HostRoot,
) -> (pki::PkiReport, kubeconfig::KubeconfigReport) {
    let p = pki::reconcile(spec, root, &PkiOptions::default()).expect("pki");
    let k = kubeconfig::reconcile(spec, root, &KubeconfigOptions::default()).expect("kubeconfig");
    (p, k)
}

/// One expected certificate, in `openssl x509 -text` terms.
struct Expect {
    file: &'static str,
    ca: &'static str,
    subject: &'static str,
    is_ca: bool,
    eku: Option<&'static str>,
    san: Option<&'static str>,
}

const SERVER: &str = "TLS Web Server Authentication";
const CLIENT: &str = "TLS Web Client Authentication";
const PEER: &str = "TLS Web Server Authentication, TLS Web Client Authentication";
const ETCD_SANS: &str =
    "DNS:cp1, DNS:localhost, IP Address:192.168.10.5, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1";

fn expectations() -> Vec<Expect> {
    vec![
        Expect { file: "ca", ca: "ca", subject: "CN = kubernetes", is_ca: true, eku: None, san: Some("DNS:kubernetes") },
        Expect {
            file: "apiserver",
            ca: "ca",
            subject: "CN = kube-apiserver",
            is_ca: false,
            eku: Some(SERVER),
            // Exactly the kubeadm reference line (pki-fields.txt).
            san: Some(
                "DNS:api.example.com, DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, \
                 DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, DNS:lb.example.com, \
                 IP Address:10.96.0.1, IP Address:192.168.10.5, IP Address:10.0.0.100",
            ),
        },
        Expect {
            file: "apiserver-kubelet-client",
            ca: "ca",
            subject: "O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client",
            is_ca: false,
            eku: Some(CLIENT),
            san: None,
        },
        Expect { file: "front-proxy-ca", ca: "front-proxy-ca", subject: "CN = front-proxy-ca", is_ca: true, eku: None, san: Some("DNS:front-proxy-ca") },
        Expect { file: "front-proxy-client", ca: "front-proxy-ca", subject: "CN = front-proxy-client", is_ca: false, eku: Some(CLIENT), san: None },
        Expect { file: "etcd/ca", ca: "etcd/ca", subject: "CN = etcd-ca", is_ca: true, eku: None, san: Some("DNS:etcd-ca") },
        Expect { file: "etcd/server", ca: "etcd/ca", subject: "CN = cp1", is_ca: false, eku: Some(PEER), san: Some(ETCD_SANS) },
        Expect { file: "etcd/peer", ca: "etcd/ca", subject: "CN = cp1", is_ca: false, eku: Some(PEER), san: Some(ETCD_SANS) },
        Expect {
            file: "etcd/healthcheck-client",
            ca: "etcd/ca",
            subject: "CN = kube-etcd-healthcheck-client",
            is_ca: false,
            eku: Some(CLIENT),
            san: None,
        },
        Expect {
            file: "apiserver-etcd-client",
            ca: "etcd/ca",
            subject: "CN = kube-apiserver-etcd-client",
            is_ca: false,
            eku: Some(CLIENT),
            san: None,
        },
    ]
}

/// The line after `header` in `openssl x509 -text` output, and whether the header says critical.
fn ext(text: &str, header: &str) -> Option<(bool, String)> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with(header) {
            let critical = l.contains("critical");
            return lines.next().map(|v| (critical, v.trim().to_string()));
        }
    }
    None
}

fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

/// `openssl x509 -noout -startdate -enddate` as seconds since the epoch.
fn dates(cert: &Path) -> (i64, i64) {
    let out = openssl_ok(&[
        "x509",
        "-noout",
        "-startdate",
        "-enddate",
        "-dateopt",
        "iso_8601",
        "-in",
        &cert.to_string_lossy(),
    ]);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    let parse = |key: &str| {
        let v = field(&out, key).unwrap_or_else(|| panic!("{key} in {out}"));
        time::PrimitiveDateTime::parse(v, fmt)
            .unwrap_or_else(|e| panic!("{v}: {e}"))
            .assume_utc()
            .unix_timestamp()
    };
    (parse("notBefore="), parse("notAfter="))
}

fn check_pki_with_openssl(tmp: &Path, alg: KeyAlgorithm) {
    let pki = tmp.join("etc/kubernetes/pki");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (key_alg, key_bits, key_label) = match alg {
        KeyAlgorithm::Rsa2048 => ("rsaEncryption", "(2048 bit)", "RSA PRIVATE KEY"),
        KeyAlgorithm::EcdsaP256 => ("id-ecPublicKey", "(256 bit)", "EC PRIVATE KEY"),
        other => panic!("not covered: {other:?}"),
    };
    for e in expectations() {
        let crt = pki.join(format!("{}.crt", e.file));
        let key = pki.join(format!("{}.key", e.file));
        let ca = pki.join(format!("{}.crt", e.ca));
        assert!(
            verify_chain(&ca, &crt),
            "openssl verify -CAfile {} {}",
            ca.display(),
            crt.display()
        );
        let text = x509_text(&crt);
        assert_eq!(
            field(&text, "Subject:"),
            Some(e.subject),
            "{}: {text}",
            e.file
        );
        let issuer_cn = if e.ca == "ca" {
            "CN = kubernetes"
        } else if e.ca == "front-proxy-ca" {
            "CN = front-proxy-ca"
        } else {
            "CN = etcd-ca"
        };
        assert_eq!(field(&text, "Issuer:"), Some(issuer_cn), "{}", e.file);
        let ku = if e.is_ca {
            "Digital Signature, Key Encipherment, Certificate Sign"
        } else {
            "Digital Signature, Key Encipherment"
        };
        assert_eq!(
            ext(&text, "X509v3 Key Usage:"),
            Some((true, ku.to_string())),
            "{}",
            e.file
        );
        assert_eq!(
            ext(&text, "X509v3 Extended Key Usage:").map(|x| x.1),
            e.eku.map(str::to_string),
            "{}",
            e.file
        );
        let bc = if e.is_ca { "CA:TRUE" } else { "CA:FALSE" };
        assert_eq!(
            ext(&text, "X509v3 Basic Constraints:"),
            Some((true, bc.to_string())),
            "{}",
            e.file
        );
        let san = ext(&text, "X509v3 Subject Alternative Name:").map(|x| x.1);
        assert_eq!(san.as_deref(), e.san, "{}", e.file);
        if let (Some(got), Some(want)) = (&san, e.san) {
            let set = |s: &str| s.split(", ").map(str::to_string).collect::<BTreeSet<_>>();
            assert_eq!(set(got), set(want), "{} SAN set", e.file);
        }
        assert_eq!(
            field(&text, "Public Key Algorithm:"),
            Some(key_alg),
            "{}",
            e.file
        );
        assert_eq!(field(&text, "Public-Key:"), Some(key_bits), "{}", e.file);
        if alg == KeyAlgorithm::EcdsaP256 {
            assert_eq!(field(&text, "NIST CURVE:"), Some("P-256"), "{}", e.file);
        }
        // Validity: NotBefore backdated ~5 minutes; 10 years for CAs, 1 year for leaves.
        let (nb, na) = dates(&crt);
        assert!(
            (now - nb - 300).abs() < 120,
            "{} NotBefore {nb} vs now {now}",
            e.file
        );
        let days = if e.is_ca { 3650 } else { 365 };
        assert!(
            (na - now - days * 86400).abs() < 120,
            "{} NotAfter {na}, want now + {days}d",
            e.file
        );
        // Key pair and formats.
        assert_eq!(
            key_pubkey(&key),
            cert_pubkey(&crt),
            "{} key/cert pair",
            e.file
        );
        let key_text = std::fs::read_to_string(&key).expect("key");
        assert!(
            key_text.starts_with(&format!("-----BEGIN {key_label}-----")),
            "{}",
            e.file
        );
        assert_eq!(
            plinth::fs::mode_of(&key),
            Some(0o600),
            "{} key mode",
            e.file
        );
        assert_eq!(
            plinth::fs::mode_of(&crt),
            Some(0o644),
            "{} cert mode",
            e.file
        );
    }
    // sa.key / sa.pub: a key pair, both 0600.
    let sa_key = pki.join("sa.key");
    let sa_pub = pki.join("sa.pub");
    assert_eq!(
        key_pubkey(&sa_key),
        std::fs::read_to_string(&sa_pub).expect("sa.pub")
    );
    assert_eq!(plinth::fs::mode_of(&sa_key), Some(0o600));
    assert_eq!(plinth::fs::mode_of(&sa_pub), Some(0o600));
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let mut all: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.to_string_lossy().into_owned(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    run_ok(kubectl_bin(), &all)
}

fn b64_to_file(data: &str, path: &Path) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .expect("base64 from kubectl");
    std::fs::write(path, bytes).expect("write");
}

fn check_kubeconfigs_with_kubectl(tmp: &Path) {
    let dir = tmp.join("etc/kubernetes");
    let ca = dir.join("pki/ca.crt");
    let cases = [
        (
            "admin.conf",
            "kubernetes-admin",
            "O = kubeadm:cluster-admins, CN = kubernetes-admin",
            "https://lb.example.com:6443",
        ),
        (
            "super-admin.conf",
            "kubernetes-super-admin",
            "O = system:masters, CN = kubernetes-super-admin",
            "https://lb.example.com:6443",
        ),
        (
            "kubelet.conf",
            "system:node:cp1",
            "O = system:nodes, CN = system:node:cp1",
            "https://lb.example.com:6443",
        ),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            "CN = system:kube-controller-manager",
            "https://192.168.10.5:6443",
        ),
        (
            "scheduler.conf",
            "system:kube-scheduler",
            "CN = system:kube-scheduler",
            "https://192.168.10.5:6443",
        ),
    ];
    let scratch = tempfile::tempdir().expect("tempdir");
    for (file, user, subject, server) in cases {
        let f = dir.join(file);
        assert_eq!(plinth::fs::mode_of(&f), Some(0o600), "{file} mode");
        let view = kubectl(&f, &["config", "view", "--raw"]);
        assert!(
            view.contains(&format!("server: {server}")),
            "{file}: {view}"
        );
        assert_eq!(
            kubectl(&f, &["config", "current-context"]).trim(),
            format!("{user}@kubernetes"),
            "{file}"
        );
        let jp = |path: &str| {
            kubectl(
                &f,
                &[
                    "config",
                    "view",
                    "--raw",
                    "-o",
                    &format!("jsonpath={{{path}}}"),
                ],
            )
        };
        assert_eq!(jp(".clusters[0].name"), "kubernetes");
        assert_eq!(jp(".users[0].name"), user);
        let ca_copy = scratch.path().join(format!("{file}.ca"));
        b64_to_file(
            &jp(".clusters[0].cluster.certificate-authority-data"),
            &ca_copy,
        );
        assert_eq!(
            std::fs::read(&ca_copy).expect("ca"),
            std::fs::read(&ca).expect("ca"),
            "{file} CA"
        );
        let crt = scratch.path().join(format!("{file}.crt"));
        let key = scratch.path().join(format!("{file}.key"));
        b64_to_file(&jp(".users[0].user.client-certificate-data"), &crt);
        b64_to_file(&jp(".users[0].user.client-key-data"), &key);
        assert!(
            verify_chain(&ca, &crt),
            "{file} client cert chains to ca.crt"
        );
        let text = x509_text(&crt);
        assert_eq!(field(&text, "Subject:"), Some(subject), "{file}");
        assert_eq!(
            ext(&text, "X509v3 Extended Key Usage:")
                .map(|x| x.1)
                .as_deref(),
            Some(CLIENT)
        );
        assert_eq!(
            key_pubkey(&key),
            cert_pubkey(&crt),
            "{file} client key/cert pair"
        );
    }
}

fn full_set(alg: KeyAlgorithm) {
    let (tmp, root) = temp_root();
    let spec = reference_spec(alg);
    let (p, k) = render_all(&spec, &root);
    assert!(p.items.iter().all(|i| i.action == PkiAction::Generated));
    assert!(k
        .items
        .iter()
        .all(|i| i.action == KubeconfigAction::Generated));
    check_pki_with_openssl(tmp.path(), alg);
    check_kubeconfigs_with_kubectl(tmp.path());
    // plinth's own view agrees with openssl's.
    for st in pki::inspect(&spec, &root).expect("inspect") {
        assert!(st.problems.is_empty(), "{}: {:?}", st.name, st.problems);
    }
    for st in kubeconfig::inspect(&spec, &root).expect("inspect") {
        assert!(st.problems.is_empty(), "{}: {:?}", st.file, st.problems);
    }
}

#[test]
fn rsa_2048_full_set_passes_openssl_and_kubectl() {
    full_set(KeyAlgorithm::Rsa2048);
}

#[test]
fn ecdsa_p256_full_set_passes_openssl_and_kubectl() {
    full_set(KeyAlgorithm::EcdsaP256);
}

#[test]
fn second_run_changes_no_byte_and_no_mtime() {
    let (tmp, root, spec) = rendered();
    let before = snapshot(tmp.path());
    let files: Vec<&str> = before
        .iter()
        .filter(|e| e.is_file())
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        files.len(),
        22 + 5,
        "11 pki pairs + 5 kubeconfigs: {files:?}"
    );
    let (p, k) = render_all(&spec, &root);
    assert!(
        p.items.iter().all(|i| i.action == PkiAction::Reused),
        "{:?}",
        p.lines()
    );
    assert!(
        k.items.iter().all(|i| i.action == KubeconfigAction::Reused),
        "{:?}",
        k.lines()
    );
    assert!(p.changed_files().is_empty() && k.changed_files().is_empty());
    assert_eq!(diff_snapshots(&before, &snapshot(tmp.path())), "");
}

#[test]
fn added_cert_san_reissues_apiserver_and_keeps_the_ca() {
    let (tmp, root, mut spec) = rendered();
    let before = snapshot(tmp.path());
    spec.api_server.cert_sans.push("10.0.0.200".into());
    spec.api_server.cert_sans.push("new.example.com".into());
    let (p, k) = render_all(&spec, &root);
    let api = p
        .items
        .iter()
        .find(|i| i.name == "apiserver")
        .expect("apiserver item");
    assert_eq!(
        api.action,
        PkiAction::Reissued {
            reason: "its SANs no longer cover DNS new.example.com, IP 10.0.0.200".into()
        }
    );
    assert!(p
        .lines()
        .contains(&"[certs] Re-issuing \"apiserver\": its SANs no longer cover DNS new.example.com, IP 10.0.0.200".into()));
    assert!(k.items.iter().all(|i| i.action == KubeconfigAction::Reused));
    let pki = tmp.path().join("etc/kubernetes/pki");
    let text = x509_text(&pki.join("apiserver.crt"));
    let san = ext(&text, "X509v3 Subject Alternative Name:")
        .expect("SAN")
        .1;
    assert!(
        san.contains("IP Address:10.0.0.200") && san.contains("DNS:new.example.com"),
        "{san}"
    );
    assert!(verify_chain(
        &pki.join("ca.crt"),
        &pki.join("apiserver.crt")
    ));
    // Exactly one file changed: the CA (and every other file) is byte- and mtime-identical.
    let diff = diff_snapshots(&before, &snapshot(tmp.path()));
    assert!(
        diff.starts_with("~ etc/kubernetes/pki/apiserver.crt (") && diff.lines().count() == 1,
        "{diff}"
    );
}

#[test]
fn external_ca_mode_reuses_files_and_names_a_missing_leaf() {
    let (tmp, root, spec) = rendered();
    let pki = tmp.path().join("etc/kubernetes/pki");
    std::fs::remove_file(pki.join("ca.key")).expect("rm ca.key");
    let before = snapshot(tmp.path());
    let (p, k) = render_all(&spec, &root);
    assert_eq!(p.items[0].action, PkiAction::ExternalCa);
    assert!(p.lines()[0].contains("External CA mode"), "{:?}", p.lines());
    assert!(k
        .items
        .iter()
        .all(|i| i.action == KubeconfigAction::ExternalCa));
    assert_eq!(diff_snapshots(&before, &snapshot(tmp.path())), "");
    std::fs::remove_file(pki.join("apiserver-kubelet-client.crt")).expect("rm leaf");
    let before = snapshot(tmp.path());
    let err = pki::reconcile(&spec, &root, &PkiOptions::default()).expect_err("must fail");
    assert!(
        err.to_string().contains("apiserver-kubelet-client.crt"),
        "{err}"
    );
    assert_eq!(diff_snapshots(&before, &snapshot(tmp.path())), "");
}

#[test]
fn renew_replaces_key_and_certificate() {
    let (tmp, root, spec) = rendered();
    let pki = tmp.path().join("etc/kubernetes/pki");
    let crt = pki.join("apiserver.crt");
    let key = pki.join("apiserver.key");
    let (old_pub, old_serial) = (
        key_pubkey(&key),
        openssl_ok(&["x509", "-noout", "-serial", "-in", &crt.to_string_lossy()]),
    );
    let admin = tmp.path().join("etc/kubernetes/admin.conf");
    let old_admin = std::fs::read(&admin).expect("admin.conf");
    let renew = Renew::Names(vec!["apiserver".into(), "admin.conf".into()]);
    let p = pki::reconcile(
        &spec,
        &root,
        &PkiOptions {
            renew: renew.clone(),
            ..Default::default()
        },
    )
    .expect("pki");
    let k = kubeconfig::reconcile(
        &spec,
        &root,
        &KubeconfigOptions {
            renew,
            ..Default::default()
        },
    )
    .expect("kc");
    assert_eq!(
        p.items
            .iter()
            .find(|i| i.name == "apiserver")
            .map(|i| &i.action),
        Some(&PkiAction::Renewed)
    );
    assert_eq!(k.items[0].action, KubeconfigAction::Renewed);
    assert_ne!(key_pubkey(&key), old_pub, "renew must change the key");
    assert_ne!(
        openssl_ok(&["x509", "-noout", "-serial", "-in", &crt.to_string_lossy()]),
        old_serial
    );
    assert_eq!(key_pubkey(&key), cert_pubkey(&crt));
    assert!(verify_chain(&pki.join("ca.crt"), &crt));
    assert_ne!(std::fs::read(&admin).expect("admin.conf"), old_admin);
    let (ok, _, err) = run(
        kubectl_bin(),
        &[
            "--kubeconfig",
            &admin.to_string_lossy(),
            "config",
            "current-context",
        ],
    );
    assert!(ok, "{err}");
}

#[test]
fn dry_run_writes_nothing_with_or_without_files() {
    let (tmp, root) = temp_root();
    let mut spec = reference_spec(KeyAlgorithm::EcdsaP256);
    let dry = PkiOptions {
        dry_run: true,
        ..Default::default()
    };
    let kdry = KubeconfigOptions {
        dry_run: true,
        ..Default::default()
    };
    let p = pki::reconcile(&spec, &root, &dry).expect("dry pki");
    assert!(p.items.iter().all(|i| i.action == PkiAction::WouldGenerate));
    assert!(p
        .lines()
        .iter()
        .any(|l| l.contains("apiserver serving cert would be signed for DNS names")));
    assert!(
        std::fs::read_dir(tmp.path()).expect("ls").next().is_none(),
        "dry run wrote files"
    );
    // The kubeconfig plan works before the CA exists (init --dry-run on a fresh machine).
    let k = kubeconfig::reconcile(&spec, &root, &kdry).expect("dry kubeconfig");
    assert!(k
        .items
        .iter()
        .all(|i| i.action == KubeconfigAction::WouldGenerate));
    assert_eq!(
        k.lines()[0],
        "[kubeconfig] Would write \"admin.conf\" kubeconfig file"
    );
    assert!(
        std::fs::read_dir(tmp.path()).expect("ls").next().is_none(),
        "dry run wrote files"
    );

    render_all(&spec, &root);
    spec.api_server.cert_sans.push("10.0.0.201".into());
    spec.control_plane_endpoint = Some(Endpoint {
        host: "lb2.example.com".into(),
        port: 6443,
    });
    let before = snapshot(tmp.path());
    let p = pki::reconcile(&spec, &root, &dry).expect("dry pki");
    let k = kubeconfig::reconcile(&spec, &root, &kdry).expect("dry kc");
    assert!(matches!(
        p.items
            .iter()
            .find(|i| i.name == "apiserver")
            .map(|i| &i.action),
        Some(PkiAction::WouldReissue { .. })
    ));
    assert!(matches!(
        k.items[0].action,
        KubeconfigAction::WouldRegenerate { .. }
    ));
    assert!(p.changed_files().is_empty() && k.changed_files().is_empty());
    assert_eq!(
        diff_snapshots(&before, &snapshot(tmp.path())),
        "",
        "dry run changed files"
    );
}

/// Serves `apiserver.crt` with `openssl s_server` on loopback (client certificates required and
/// verified against ca.crt) and talks to it with `kubectl --kubeconfig admin.conf get --raw /`:
/// Go's TLS stack must accept the serving chain and SAN and load the client key/cert pair.
fn tls_round_trip(alg: KeyAlgorithm) {
    let (tmp, root) = temp_root();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut spec = reference_spec(alg);
    spec.control_plane_endpoint = Some(Endpoint {
        host: "127.0.0.1".into(),
        port,
    });
    render_all(&spec, &root);
    let pki = tmp.path().join("etc/kubernetes/pki");
    let path = |f: &str| pki.join(f).to_string_lossy().into_owned();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-cert",
            &path("apiserver.crt"),
            "-key",
            &path("apiserver.key"),
        ])
        .args(["-CAfile", &path("ca.crt"), "-Verify", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let admin = tmp.path().join("etc/kubernetes/admin.conf");
    let kubectl = kubectl_bin();
    let mut last = (false, String::new(), String::new());
    for _ in 0..50 {
        last = run(
            &kubectl,
            &[
                "--kubeconfig",
                &admin.to_string_lossy(),
                "get",
                "--raw",
                "/",
                "--request-timeout=5s",
            ],
        );
        if last.0 || !last.2.contains("connection refused") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(last.0, "kubectl over TLS failed: {}", last.2);
    assert!(last.1.contains("s_server"), "unexpected body: {}", last.1);
}

#[test]
fn kubectl_speaks_tls_with_the_generated_rsa_certificates() {
    tls_round_trip(KeyAlgorithm::Rsa2048);
}

#[test]
fn kubectl_speaks_tls_with_the_generated_ecdsa_certificates() {
    tls_round_trip(KeyAlgorithm::EcdsaP256);
}

/// CAs made by someone else (here: the openssl CLI, which writes PKCS#8 RSA keys, SEC1 EC keys
/// and UTF8String names) are reused as they are, and the leaves plinth signs with them verify.
#[test]
fn existing_openssl_cas_with_pkcs8_and_sec1_keys_are_reused() {
    let (tmp, root) = temp_root();
    let spec = reference_spec(KeyAlgorithm::EcdsaP256);
    let pki = tmp.path().join("etc/kubernetes/pki");
    std::fs::create_dir_all(pki.join("etcd")).expect("mkdir");
    let p = |f: &str| pki.join(f).to_string_lossy().into_owned();
    let (ca_key, ca_crt, fp_key, fp_crt) = (
        p("ca.key"),
        p("ca.crt"),
        p("front-proxy-ca.key"),
        p("front-proxy-ca.crt"),
    );
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
    ];
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &ca_key,
    ];
    args.extend(["-out", &ca_crt, "-subj", "/CN=kubernetes", "-days", "3650"]);
    args.extend(ca_ext);
    openssl_ok(&args);
    openssl_ok(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &fp_key,
    ]);
    let mut args = vec!["req", "-x509", "-new", "-key", &fp_key, "-out", &fp_crt];
    args.extend(["-subj", "/CN=front-proxy-ca", "-days", "3650"]);
    args.extend(ca_ext);
    openssl_ok(&args);
    assert!(std::fs::read_to_string(pki.join("ca.key"))
        .expect("key")
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(pki.join("front-proxy-ca.key"))
        .expect("key")
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let ca_before = std::fs::read(pki.join("ca.crt")).expect("ca");
    let (p_report, _) = render_all(&spec, &root);
    let act = |n: &str| {
        p_report
            .items
            .iter()
            .find(|i| i.name == n)
            .map(|i| i.action.clone())
    };
    assert_eq!(act("ca"), Some(PkiAction::Reused));
    assert_eq!(act("front-proxy-ca"), Some(PkiAction::Reused));
    assert_eq!(act("etcd-ca"), Some(PkiAction::Generated));
    assert_eq!(std::fs::read(pki.join("ca.crt")).expect("ca"), ca_before);
    assert!(verify_chain(
        &pki.join("ca.crt"),
        &pki.join("apiserver.crt")
    ));
    assert!(verify_chain(
        &pki.join("front-proxy-ca.crt"),
        &pki.join("front-proxy-client.crt")
    ));
    check_kubeconfigs_with_kubectl(tmp.path());
    // Whatever mode openssl gave the keys, they are 0600 now.
    assert_eq!(plinth::fs::mode_of(&pki.join("ca.key")), Some(0o600));
    assert_eq!(
        plinth::fs::mode_of(&pki.join("front-proxy-ca.key")),
        Some(0o600)
    );
}

/// The default (`cis`) profile on a REAL full render (PKI, kubeconfigs, manifests, audit
/// policy, etcd user and ownership — exactly what `plinth init` writes) passes every scored
/// control-plane check of CIS 1.12, evaluated from kube-bench's data files, with 0 FAILs:
/// 1.1.19 (PKI ownership root:root) included — etcd's keys stay root-owned and the etcd user
/// reads them through a POSIX ACL grant.
#[test]
fn cis_profile_full_render_passes_every_scored_check() {
    use plinth::manifests::cis::{self, CheckStatus};
    let (tmp, root) = temp_root();
    let mut spec = defaults_for("cp1", "192.0.2.10".parse().unwrap());
    spec.key_algorithm = KeyAlgorithm::EcdsaP256;
    assert_eq!(
        spec.plinth.security_profile,
        plinth::config::SecurityProfile::Cis
    );
    plinth::workflow::init::render_all(&spec, &root, &[], false).expect("full render");
    let ctx = plinth::manifests::RenderContext::for_node(&root, &spec);
    let manifests = plinth::manifests::render_all(&spec, &ctx).unwrap();
    let results = cis::evaluate(tmp.path(), &manifests);
    let scored: Vec<_> = results.iter().filter(|r| r.scored).collect();
    assert!(
        scored.len() > 40,
        "expected the scored master + etcd checks, got {}",
        scored.len()
    );
    let failed: Vec<String> = scored
        .iter()
        .filter(|r| r.status == CheckStatus::Fail)
        .map(|r| r.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "scored CIS checks failing:\n{}",
        failed.join("\n")
    );
    for r in &scored {
        if r.status == CheckStatus::Skipped {
            assert!(
                !r.detail.is_empty(),
                "check {} skipped without a reason",
                r.id
            );
        }
    }
    // Every flag and file-mode check ran (not skipped) for the four components.
    for id in [
        "1.1.1", "1.1.11", "1.1.12", "1.1.19", "1.1.20", "1.2.15", "1.2.16", "1.3.2", "1.4.1",
        "2.1", "2.2",
    ] {
        let r = results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no check {id}"));
        assert_eq!(r.status, CheckStatus::Pass, "{r}");
    }
    // etcd reads its root-owned keys through an ACL: the etcd user can really read them.
    let (etcd_uid, _) = plinth::security::lookup_etcd_user().expect("etcd user");
    for k in ["etcd/server.key", "etcd/peer.key"] {
        let p = tmp.path().join("etc/kubernetes/pki").join(k);
        let acl = plinth::acl::get(&p).unwrap().expect("ACL on etcd's key");
        assert_eq!(acl.user_perm(etcd_uid), Some(plinth::acl::READ), "{k}");
        assert_eq!(acl.base_mode(), 0o600, "{k}");
    }
}
