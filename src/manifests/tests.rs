//! Tests of the whole render pipeline: snapshots, round trips, extraArgs semantics, patches,
//! --root independence, writing, the kubeadm v1.24 reference and the CIS 1.12 checks.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{
    defaults_for, Arg, Cidr, Endpoint, EnvVar, ExternalEtcd, HostPathMount, KubeVersion,
    KubeadmApiVersion, SecurityProfile,
};

const TEST_ETCD_UID: u32 = 5990;
const TEST_ETCD_GID: u32 = 5991;

fn ctx() -> RenderContext {
    RenderContext::isolated(&HostRoot::default()).with_etcd_user(TEST_ETCD_UID, TEST_ETCD_GID)
}

fn arg(n: &str, v: &str) -> Arg {
    Arg {
        name: n.into(),
        value: v.into(),
    }
}

/// A v1beta4 spec with a bit of everything: repeated extra args, env, extra volume.
fn v1beta4_spec() -> ClusterSpec {
    let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    s.networking.pod_subnets = vec![Cidr {
        addr: "10.244.0.0".parse().unwrap(),
        prefix: 16,
    }];
    s.control_plane_endpoint = Some(Endpoint {
        host: "lb.example.com".into(),
        port: 6443,
    });
    s.api_server.component.extra_args = vec![
        arg("feature-gates", "B=true"),
        arg("feature-gates", "A=true"),
        arg(
            "enable-admission-plugins",
            "NodeRestriction,DenyServiceExternalIPs",
        ),
    ];
    s.api_server.component.extra_envs = vec![EnvVar {
        name: "GOMAXPROCS".into(),
        value: "2".into(),
    }];
    s.controller_manager.extra_volumes = vec![HostPathMount {
        name: "cloud-config".into(),
        host_path: "/etc/kubernetes/cloud.conf".into(),
        mount_path: "/etc/kubernetes/cloud.conf".into(),
        read_only: true,
        path_type: "FileOrCreate".into(),
    }];
    if let Etcd::Local(l) = &mut s.etcd {
        l.extra_args = vec![arg("quota-backend-bytes", "8589934592")];
    }
    s.timeouts.control_plane_component_health_check = Duration::from_secs(300);
    s
}

/// A v1beta3 spec (extraArgs came from a map: one value per name).
fn v1beta3_spec() -> ClusterSpec {
    let mut s = defaults_for("node-a", "10.1.2.3".parse().unwrap());
    s.api_version = KubeadmApiVersion::V1Beta3;
    s.kubernetes_version = KubeVersion {
        major: 1,
        minor: 31,
        patch: 4,
        pre: String::new(),
    };
    s.bind_port = 8443;
    s.networking.dns_domain = "corp.local".into();
    s.scheduler.extra_args = vec![arg("bind-address", "0.0.0.0"), arg("v", "2")];
    s.controller_manager.extra_args = vec![arg("node-cidr-mask-size", "25")];
    s
}

#[test]
fn snapshots_v1beta4() {
    for m in render_all(&v1beta4_spec(), &ctx()).unwrap() {
        insta::assert_snapshot!(format!("v1beta4-{}", m.component.name()), m.yaml);
    }
}

#[test]
fn snapshots_v1beta3() {
    for m in render_all(&v1beta3_spec(), &ctx()).unwrap() {
        insta::assert_snapshot!(format!("v1beta3-{}", m.component.name()), m.yaml);
    }
}

#[test]
fn yaml_pod_yaml_round_trip_is_stable() {
    for spec in [v1beta4_spec(), v1beta3_spec()] {
        for m in render_all(&spec, &ctx()).unwrap() {
            let pod = parse_manifest(&m.yaml).unwrap();
            assert_eq!(pod, m.pod, "{}", m.component);
            assert_eq!(pod_to_yaml(&pod).unwrap(), m.yaml, "{}", m.component);
        }
    }
}

#[test]
fn output_keys_are_sorted() {
    let m = render(&v1beta4_spec(), Component::KubeApiserver, &ctx()).unwrap();
    let top: Vec<&str> = m
        .yaml
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(top, vec!["apiVersion", "kind", "metadata", "spec"]);
}

#[test]
fn template_output_that_is_not_a_pod_is_an_error_naming_the_template() {
    let e = parse_rendered("etcd.yaml.tera", "spec: [unclosed\n").unwrap_err();
    assert!(matches!(e, ManifestError::TemplateYaml { .. }), "{e}");
    assert!(e.to_string().contains("etcd.yaml.tera"), "{e}");

    let typo = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    imag: x\n";
    let e = parse_rendered("kube-scheduler.yaml.tera", typo).unwrap_err();
    assert!(
        matches!(&e, ManifestError::UnknownField { path, .. } if path == "spec.containers[0].imag"),
        "{e}"
    );
    assert!(e.to_string().contains("kube-scheduler.yaml.tera"), "{e}");

    let e = parse_rendered(
        "x.tera",
        "apiVersion: v1\nkind: Pod\nspec:\n  containers: 3\n",
    )
    .unwrap_err();
    assert!(matches!(e, ManifestError::InvalidPod { .. }), "{e}");
}

#[test]
fn hostile_values_survive_the_template() {
    let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
    let nasty = "a\"b: c # not a comment {{ x }} {% y %}\nline2 'q' \\ yes";
    spec.scheduler.extra_args = vec![arg("v", nasty)];
    spec.scheduler.extra_envs = vec![EnvVar {
        name: "ON".into(),
        value: "on".into(),
    }];
    let m = render(&spec, Component::KubeScheduler, &ctx()).unwrap();
    assert!(flags(&m).contains(&format!("--v={nasty}")));
    let env = &container(&m).env.as_ref().unwrap()[0];
    assert_eq!(
        env.value.as_deref(),
        Some("on"),
        "YAML 1.1 booleans stay strings"
    );
    assert_eq!(parse_manifest(&m.yaml).unwrap(), m.pod);
}

fn flags(m: &RenderedManifest) -> Vec<String> {
    m.command()[1..].to_vec()
}

#[test]
fn extra_args_v1beta3_vs_v1beta4() {
    let extra = vec![
        arg("feature-gates", "B=true"),
        arg("feature-gates", "A=true"),
        arg(
            "enable-admission-plugins",
            "NodeRestriction,DenyServiceExternalIPs",
        ),
        arg("profiling", "true"),
    ];
    let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
    spec.api_server.component.extra_args = extra;

    let v4 = flags(&render(&spec, Component::KubeApiserver, &ctx()).unwrap());
    // v1beta4: every listed value kept (sorted by value within a name), defaults replaced.
    let fg: Vec<&String> = v4
        .iter()
        .filter(|f| f.starts_with("--feature-gates="))
        .collect();
    assert_eq!(fg, vec!["--feature-gates=A=true", "--feature-gates=B=true"]);
    assert!(
        v4.contains(&"--enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs".into())
    );
    assert!(!v4.contains(&"--enable-admission-plugins=NodeRestriction".into()));
    // A user extra arg overrides the profile's flag too.
    assert!(v4.contains(&"--profiling=true".into()));
    assert!(!v4.contains(&"--profiling=false".into()));

    spec.api_version = KubeadmApiVersion::V1Beta3;
    let v3 = flags(&render(&spec, Component::KubeApiserver, &ctx()).unwrap());
    let fg: Vec<&String> = v3
        .iter()
        .filter(|f| f.starts_with("--feature-gates="))
        .collect();
    assert_eq!(
        fg,
        vec!["--feature-gates=A=true"],
        "v1beta3: last value of a name wins"
    );
    assert!(v3.contains(&"--profiling=true".into()));

    // Sorted by name in both.
    for f in [&v3, &v4] {
        let names: Vec<&str> = f.iter().map(|x| x.split('=').next().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}

#[test]
fn external_etcd_has_no_etcd_pod_and_apiserver_uses_it() {
    let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
    spec.etcd = Etcd::External(ExternalEtcd {
        endpoints: vec![
            "https://10.0.0.7:2379".into(),
            "https://10.0.0.8:2379".into(),
        ],
        ca_file: "/etc/etcd/ca.crt".into(),
        cert_file: "/etc/etcd/client.crt".into(),
        key_file: "/etc/etcd/client.key".into(),
    });
    let all = render_all(&spec, &RenderContext::isolated(&HostRoot::default())).unwrap();
    assert_eq!(
        all.iter().map(|m| m.component).collect::<Vec<_>>(),
        vec![
            Component::KubeApiserver,
            Component::KubeControllerManager,
            Component::KubeScheduler
        ]
    );
    let api = flags(&all[0]);
    for f in [
        "--etcd-servers=https://10.0.0.7:2379,https://10.0.0.8:2379",
        "--etcd-cafile=/etc/etcd/ca.crt",
        "--etcd-certfile=/etc/etcd/client.crt",
        "--etcd-keyfile=/etc/etcd/client.key",
    ] {
        assert!(api.contains(&f.to_string()), "{f} missing in {api:?}");
    }
    assert!(all[0].yaml.contains("name: etcd-certs-0"));
    assert!(matches!(
        render(&spec, Component::Etcd, &ctx()),
        Err(ManifestError::ExternalEtcd)
    ));
}

#[test]
fn cis_needs_a_non_root_etcd_user() {
    let spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
    let none = RenderContext::isolated(&HostRoot::default());
    let e = render(&spec, Component::Etcd, &none).unwrap_err();
    assert!(matches!(e, ManifestError::MissingEtcdUser), "{e}");
    assert!(e.to_string().contains("ensure_etcd_user"));
    let e = render(&spec, Component::Etcd, &none.clone().with_etcd_user(0, 0)).unwrap_err();
    assert!(matches!(e, ManifestError::EtcdUserIsRoot { .. }));
    let mut kubeadm = spec.clone();
    kubeadm.plinth.security_profile = SecurityProfile::Kubeadm;
    let m = render(&kubeadm, Component::Etcd, &none).unwrap();
    assert!(!m.yaml.contains("runAsUser"));
}

#[test]
fn proxy_env_goes_to_control_plane_but_not_etcd() {
    let spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
    let mut c = ctx();
    c.proxy_env = vec![("HTTPS_PROXY".into(), "http://proxy:3128".into())];
    let api = render(&spec, Component::KubeApiserver, &c).unwrap();
    assert!(api.yaml.contains("HTTPS_PROXY"));
    let etcd = render(&spec, Component::Etcd, &c).unwrap();
    assert!(!etcd.yaml.contains("HTTPS_PROXY"));
}

// ---------------------------------------------------------------------------------------
// Patches

fn write_patch(root: &HostRoot, name: &str, text: &str) {
    let p = root.path(format!("/etc/plinth/patches/{name}"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn patched_spec() -> ClusterSpec {
    let mut spec = v1beta4_spec();
    spec.patches_dir = Some("/etc/plinth/patches".into());
    spec
}

fn container(m: &RenderedManifest) -> &k8s_openapi::api::core::v1::Container {
    &m.pod.spec.as_ref().unwrap().containers[0]
}

fn write_all_patch_types(root: &HostRoot) {
    // strategic (default type): env merged by name, mount + volume merged by key.
    write_patch(
        root,
        "kube-apiserver.yaml",
        r#"
spec:
  containers:
  - name: kube-apiserver
    env:
    - name: GOMAXPROCS
      value: "4"
    - name: GODEBUG
      value: x509sha1=1
    volumeMounts:
    - name: extra
      mountPath: /srv/extra
      readOnly: true
  volumes:
  - name: extra
    hostPath:
      path: /srv/extra
      type: Directory
"#,
    );
    // merge (RFC 7386): labels merged, a null deletes.
    write_patch(
        root,
        "kube-scheduler+merge.yaml",
        "metadata:\n  labels:\n    team: platform\n    tier: null\n",
    );
    // json (RFC 6902), two documents in one file.
    write_patch(
        root,
        "etcd0+json.json",
        r#"[{"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "500m"}]"#,
    );
    write_patch(
        root,
        "etcd1+json.yaml",
        "- op: add\n  path: /metadata/labels/backup\n  value: \"yes\"\n---\n- op: test\n  path: /metadata/labels/backup\n  value: \"yes\"\n",
    );
    // Lexical order: kube-controller-manager0 then kube-controller-manager1 (wins).
    write_patch(
        root,
        "kube-controller-manager0+strategic.yml",
        "spec:\n  priorityClassName: a-class\n",
    );
    write_patch(
        root,
        "kube-controller-manager1.yaml",
        "spec:\n  priorityClassName: b-class\n",
    );
    write_patch(root, "notes.txt", "ignored: not a patch extension");
}

#[test]
fn patches_of_every_type_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(Some(dir.path()));
    write_all_patch_types(&root);
    let mut c = ctx();
    c.root = root.clone();
    let spec = patched_spec();
    let all = render_all(&spec, &c).unwrap();
    let get = |comp| all.iter().find(|m| m.component == comp).unwrap();

    let api = container(get(Component::KubeApiserver));
    let env: Vec<(String, String)> = api
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("GOMAXPROCS".to_string(), "4".to_string()),
            ("GODEBUG".to_string(), "x509sha1=1".to_string())
        ]
    );
    let mounts = api.volume_mounts.as_ref().unwrap();
    assert!(mounts.iter().any(|m| m.name == "extra"));
    assert!(
        mounts.iter().any(|m| m.name == "k8s-certs"),
        "defaults kept"
    );
    // The patched Pod is still serialized canonically.
    assert_eq!(
        pod_to_yaml(&get(Component::KubeApiserver).pod).unwrap(),
        get(Component::KubeApiserver).yaml
    );

    let sched = &get(Component::KubeScheduler).pod.metadata;
    let labels = sched.labels.as_ref().unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("platform"));
    assert!(!labels.contains_key("tier"));

    let etcd = get(Component::Etcd);
    let cpu = &container(etcd)
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["cpu"];
    assert_eq!(cpu.0, "500m");
    assert_eq!(
        etcd.pod
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("backup")
            .map(String::as_str),
        Some("yes")
    );

    let cm = get(Component::KubeControllerManager);
    assert_eq!(
        cm.pod.spec.as_ref().unwrap().priority_class_name.as_deref(),
        Some("b-class")
    );
}

#[test]
fn bad_patches_are_errors_naming_the_file() {
    let cases: [(&str, &str, &str); 5] = [
        ("kubelet+merge.yaml", "a: 1\n", "unknown patch target"),
        ("kube-apiserver+foo.yaml", "a: 1\n", "unknown patch type"),
        (
            "kube-apiserver+json.json",
            r#"[{"op": "remove", "path": "/spec/nope"}]"#,
            "does not apply",
        ),
        ("kube-apiserver.yaml", "spec: [unclosed\n", "not valid YAML"),
        (
            "kube-apiserver+merge.yaml",
            "spec:\n  containers:\n  - name: kube-apiserver\n    comand: [x]\n",
            "",
        ),
    ];
    for (name, text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        write_patch(&root, name, text);
        let mut c = ctx();
        c.root = root;
        let err = render(&patched_spec(), Component::KubeApiserver, &c).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name), "{name}: {msg}");
        assert!(msg.contains(want), "{name}: {msg}");
        if want.is_empty() {
            assert!(
                matches!(&err, ManifestError::UnknownField { path, .. } if path.ends_with("comand")),
                "{msg}"
            );
        }
    }
    // A missing directory is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    let mut c = ctx();
    c.root = HostRoot::new(Some(dir.path()));
    let err = render(&patched_spec(), Component::KubeScheduler, &c).unwrap_err();
    assert!(err.to_string().contains("/etc/plinth/patches"), "{err}");
}

#[test]
fn output_is_byte_identical_for_any_root() {
    let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut outputs = Vec::new();
    for d in &roots {
        let root = HostRoot::new(Some(d.path()));
        write_all_patch_types(&root);
        let mut c = ctx();
        c.root = root.clone();
        let all = render_all(&patched_spec(), &c).unwrap();
        write(&root, &patched_spec(), &all, false).unwrap();
        let files: Vec<Vec<u8>> = Component::all()
            .iter()
            .map(|comp| {
                std::fs::read(root.path(format!("/etc/kubernetes/manifests/{}", comp.file_name())))
                    .unwrap()
            })
            .collect();
        let text = String::from_utf8(files.concat()).unwrap();
        assert!(
            !text.contains(&d.path().display().to_string()),
            "root leaked into contents"
        );
        outputs.push(files);
    }
    assert_eq!(outputs[0], outputs[1]);
}

// ---------------------------------------------------------------------------------------
// Writing

#[test]
fn write_modes_dry_run_and_idempotency() {
    let d = tempfile::tempdir().unwrap();
    let root = HostRoot::new(Some(d.path()));
    let spec = v1beta4_spec();
    let all = render_all(&spec, &ctx()).unwrap();

    let planned = write(&root, &spec, &all, true).unwrap();
    assert!(planned.iter().all(|(_, o)| *o == WriteOutcome::Created));
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "dry run wrote something"
    );
    let plan_paths: Vec<PathBuf> = plan_files(&spec, &Component::all())
        .into_iter()
        .map(|p| p.path)
        .collect();
    assert_eq!(
        planned.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        plan_paths
    );

    let first = write(&root, &spec, &all, false).unwrap();
    assert!(
        first.iter().all(|(_, o)| *o == WriteOutcome::Created),
        "{first:?}"
    );
    let mode = |p: &str| fs::mode_of(&root.path(p)).unwrap();
    assert_eq!(mode("/etc/kubernetes/manifests"), 0o700);
    for c in Component::all() {
        assert_eq!(
            mode(&format!("/etc/kubernetes/manifests/{}", c.file_name())),
            0o600
        );
    }
    assert_eq!(mode("/etc/kubernetes/audit-policy.yaml"), 0o600);
    assert_eq!(mode("/var/log/kubernetes/audit"), 0o700);
    assert_eq!(mode("/var/lib/etcd"), 0o700);
    assert_eq!(
        std::fs::read_to_string(root.path("/etc/kubernetes/audit-policy.yaml")).unwrap(),
        cis::AUDIT_POLICY
    );

    let second = write(&root, &spec, &all, false).unwrap();
    assert!(
        second.iter().all(|(_, o)| *o == WriteOutcome::Unchanged),
        "{second:?}"
    );

    // A looser manifests dir and manifest are tightened and reported.
    let dir = root.path("/etc/kubernetes/manifests");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = dir.join("kube-scheduler.yaml");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let third = write(&root, &spec, &all, false).unwrap();
    let outcome = |p: &str| third.iter().find(|(x, _)| x == Path::new(p)).unwrap().1;
    assert_eq!(
        outcome("/etc/kubernetes/manifests"),
        WriteOutcome::ModeFixed { old: 0o755 }
    );
    assert_eq!(
        outcome("/etc/kubernetes/manifests/kube-scheduler.yaml"),
        WriteOutcome::ModeFixed { old: 0o644 }
    );
    assert_eq!(mode("/etc/kubernetes/manifests"), 0o700);

    // The kubeadm profile writes no audit files.
    let mut kubeadm = spec.clone();
    kubeadm.plinth.security_profile = SecurityProfile::Kubeadm;
    let paths: Vec<PathBuf> = plan_files(&kubeadm, &[Component::KubeApiserver])
        .into_iter()
        .map(|p| p.path)
        .collect();
    assert!(!paths.iter().any(|p| p.to_string_lossy().contains("audit")));
}

// ---------------------------------------------------------------------------------------
// kubeadm v1.24 reference

const REFERENCE: [(&str, &str); 4] = [
    (
        "etcd",
        include_str!("../../tests/data/kubeadm-v1.24/manifests/etcd.yaml"),
    ),
    (
        "kube-apiserver",
        include_str!("../../tests/data/kubeadm-v1.24/manifests/kube-apiserver.yaml"),
    ),
    (
        "kube-controller-manager",
        include_str!("../../tests/data/kubeadm-v1.24/manifests/kube-controller-manager.yaml"),
    ),
    (
        "kube-scheduler",
        include_str!("../../tests/data/kubeadm-v1.24/manifests/kube-scheduler.yaml"),
    ),
];

/// The reference input (tests/data/kubeadm-v1.24/input-config.yaml) as a spec; the reference
/// manifests were rendered with certificatesDir /etc/kubernetes/pki-empty and etcd 3.5.1-0.
fn reference_spec(etcd_tag: &str) -> ClusterSpec {
    let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    s.api_version = KubeadmApiVersion::V1Beta3;
    s.bind_port = 6443;
    s.control_plane_endpoint = Some(Endpoint {
        host: "lb.example.com".into(),
        port: 6443,
    });
    s.networking.pod_subnets = vec![Cidr {
        addr: "10.244.0.0".parse().unwrap(),
        prefix: 16,
    }];
    s.api_server.cert_sans = vec!["10.0.0.100".into(), "api.example.com".into()];
    s.kubernetes_version = KubeVersion {
        major: 1,
        minor: 24,
        patch: 0,
        pre: String::new(),
    };
    s.image_repository = "k8s.gcr.io".into();
    s.certificates_dir = "/etc/kubernetes/pki-empty".into();
    s.plinth.security_profile = SecurityProfile::Kubeadm;
    if let Etcd::Local(l) = &mut s.etcd {
        l.image_tag = etcd_tag.into();
    }
    s
}

/// The host the reference was rendered on had these optional CA directories.
fn reference_host_dirs(p: &str) -> bool {
    matches!(
        p,
        "/etc/ca-certificates" | "/usr/share/ca-certificates" | "/usr/local/share/ca-certificates"
    )
}

fn reference_ctx() -> RenderContext {
    let mut c = RenderContext::isolated(&HostRoot::default());
    c.host_dir_exists = reference_host_dirs;
    c
}

/// Renders the reference spec and returns, per component, every difference from kubeadm's
/// output as display lines.
fn reference_differences(etcd_tag: &str) -> BTreeSet<String> {
    let spec = reference_spec(etcd_tag);
    let mut out = BTreeSet::new();
    for (name, text) in REFERENCE {
        let comp: Component = name.parse().unwrap();
        let ours = render(&spec, comp, &reference_ctx()).unwrap();
        let theirs = parse_manifest(text).unwrap();
        for change in diff(&theirs, &ours.pod) {
            out.insert(format!("{name}: {change}"));
        }
    }
    out
}

/// Differences of newer kubeadm (v1.29+, which plinth follows) from the v1.24 reference,
/// independent of the etcd version. Each with its reason.
const NEWER_KUBEADM: [(&str, &str); 9] = [
    (
        "etcd: - status: {}",
        "kubeadm's Go serializer writes an empty status; a static pod manifest has none",
    ),
    (
        "kube-apiserver: - status: {}",
        "kubeadm's Go serializer writes an empty status; a static pod manifest has none",
    ),
    (
        "kube-controller-manager: - status: {}",
        "kubeadm's Go serializer writes an empty status; a static pod manifest has none",
    ),
    (
        "kube-scheduler: - status: {}",
        "kubeadm's Go serializer writes an empty status; a static pod manifest has none",
    ),
    (
        "etcd: + spec.priority: 2000001000",
        "newer kubeadm sets the numeric priority of system-node-critical next to the class name",
    ),
    (
        "kube-apiserver: + spec.priority: 2000001000",
        "newer kubeadm sets the numeric priority of system-node-critical next to the class name",
    ),
    (
        "kube-controller-manager: + spec.priority: 2000001000",
        "newer kubeadm sets the numeric priority of system-node-critical next to the class name",
    ),
    (
        "kube-scheduler: + spec.priority: 2000001000",
        "newer kubeadm sets the numeric priority of system-node-critical next to the class name",
    ),
    (
        "etcd: ~ spec.containers[etcd].livenessProbe.httpGet.path: /health → /health?exclude=NOSPACE&serializable=true",
        "kubeadm 1.25+ probes etcd < 3.5.11 with serializable, NOSPACE-tolerant health checks (kubernetes#110072)",
    ),
];

/// plinth's own additions to every manifest, whatever the profile: the agent reads them,
/// a kubelet ignores them.
const PLINTH_ADDITIONS: [(&str, &str); 4] = [
    (
        "etcd: + metadata.annotations.plinth.io/reloads-flags: cert-file,key-file,peer-cert-file,peer-key-file",
        "files the component reloads by itself: a renewal of them restarts nothing",
    ),
    (
        "kube-apiserver: + metadata.annotations.plinth.io/reloads-flags: client-ca-file,proxy-client-cert-file,proxy-client-key-file,requestheader-client-ca-file,tls-cert-file,tls-private-key-file",
        "files the component reloads by itself: a renewal of them restarts nothing",
    ),
    (
        "kube-controller-manager: + metadata.annotations: {\"plinth.io/reloads-flags\":\"client-ca-file,cluster-signing-cert-file,cluster-signing-key-file,requestheader-client-ca-file,tls-cert-file,tls-private-key-file\"}",
        "files the component reloads by itself: a renewal of them restarts nothing",
    ),
    (
        "kube-scheduler: + metadata.annotations: {\"plinth.io/reloads-flags\":\"client-ca-file,requestheader-client-ca-file,tls-cert-file,tls-private-key-file\"}",
        "files the component reloads by itself: a renewal of them restarts nothing",
    ),
];

/// Every difference seen is documented in `allowed`, and every documented one is seen.
fn assert_differences_are_exactly(diffs: &BTreeSet<String>, allowed: &BTreeSet<String>) {
    let unexpected: Vec<&String> = diffs.difference(allowed).collect();
    assert!(
        unexpected.is_empty(),
        "undocumented differences: {unexpected:#?}"
    );
    let missing: Vec<&String> = allowed.difference(diffs).collect();
    assert!(
        missing.is_empty(),
        "documented differences not seen: {missing:#?}"
    );
}

#[test]
fn kubeadm_profile_matches_the_v1_24_reference_flag_for_flag() {
    // With the reference's own etcd (3.5.1-0), every flag of every container is identical.
    let diffs = reference_differences("3.5.1-0");
    let flag_diffs: Vec<&String> = diffs.iter().filter(|d| d.contains(" --")).collect();
    assert!(flag_diffs.is_empty(), "flag differences: {flag_diffs:#?}");

    // Everything else differs only where newer kubeadm differs.
    let mut allowed: BTreeSet<String> = NEWER_KUBEADM.iter().map(|(d, _)| d.to_string()).collect();
    allowed.extend(PLINTH_ADDITIONS.iter().map(|(d, _)| d.to_string()));
    allowed.insert(
        "etcd: ~ spec.containers[etcd].startupProbe.httpGet.path: /health → /health?serializable=false"
            .into(),
    );
    assert_differences_are_exactly(&diffs, &allowed);
}

#[test]
fn kubeadm_profile_with_new_etcd_differs_only_as_documented() {
    // The reference README: etcd >= 3.5.11 gets /livez and /readyz probes on the metrics
    // port plus two flags.
    let diffs = reference_differences("3.5.21-0");
    let documented: [(&str, &str); 6] = [
        (
            "etcd: + --experimental-initial-corrupt-check=true",
            "kubeadm enables etcd's startup corruption check (kubeadm#2676)",
        ),
        (
            "etcd: + --experimental-watch-progress-notify-interval=5s",
            "kubeadm lets etcd send watch progress notifications (kubeadm#2731)",
        ),
        (
            "etcd: ~ image (etcd): k8s.gcr.io/etcd:3.5.1-0 → k8s.gcr.io/etcd:3.5.21-0",
            "the etcd version under test",
        ),
        (
            "etcd: ~ spec.containers[etcd].livenessProbe.httpGet.path: /health → /livez",
            "etcd >= 3.5.11 liveness uses /livez (kubernetes#124465)",
        ),
        (
            "etcd: ~ spec.containers[etcd].startupProbe.httpGet.path: /health → /readyz",
            "etcd >= 3.5.11 startup uses /readyz (kubernetes#124465)",
        ),
        (
            "etcd: + spec.containers[etcd].readinessProbe: {\"failureThreshold\":3,\"httpGet\":{\"host\":\"127.0.0.1\",\"path\":\"/readyz\",\"port\":2381,\"scheme\":\"HTTP\"},\"periodSeconds\":1,\"timeoutSeconds\":15}",
            "etcd >= 3.5.11 gets a readiness probe on /readyz (kubernetes#124465)",
        ),
    ];
    let mut allowed: BTreeSet<String> = documented.iter().map(|(d, _)| d.to_string()).collect();
    // The etcd-independent differences, except the old-etcd probe path.
    allowed.extend(NEWER_KUBEADM[..8].iter().map(|(d, _)| d.to_string()));
    allowed.extend(PLINTH_ADDITIONS.iter().map(|(d, _)| d.to_string()));
    assert_differences_are_exactly(&diffs, &allowed);
}

// ---------------------------------------------------------------------------------------
// CIS 1.12

/// Writes stand-ins for what the pki and kubeconfig phases write, with plinth's modes.
fn write_stand_in_tree(root: &HostRoot, spec: &ClusterSpec) {
    let pki = Path::new(&spec.certificates_dir);
    let certs = [
        "ca",
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "apiserver-etcd-client",
        "etcd/ca",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
    ];
    for c in certs {
        let base = pki.join(c);
        fs::write_atomic(
            &root.path(base.with_extension("crt")),
            b"cert",
            fs::MODE_CERT,
        )
        .unwrap();
        fs::write_atomic(&root.path(base.with_extension("key")), b"key", fs::MODE_KEY).unwrap();
    }
    fs::write_atomic(&root.path(pki.join("sa.key")), b"key", fs::MODE_KEY).unwrap();
    fs::write_atomic(&root.path(pki.join("sa.pub")), b"pub", fs::MODE_PRIVATE).unwrap();
    for k in [
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
        "kubelet.conf",
    ] {
        let p = Path::new(&spec.plinth.kubeconfig_dir).join(k);
        fs::write_atomic(&root.path(p), b"kubeconfig", fs::MODE_PRIVATE).unwrap();
    }
}

fn test_user(uid: u32) -> String {
    match uid {
        0 => "root".into(),
        TEST_ETCD_UID => "etcd".into(),
        other => other.to_string(),
    }
}

fn test_group(gid: u32) -> String {
    match gid {
        0 => "root".into(),
        TEST_ETCD_GID => "etcd".into(),
        other => other.to_string(),
    }
}

/// Renders, writes and evaluates a full tree for `spec`; prints every result.
fn cis_results(spec: &ClusterSpec, chown_etcd: bool) -> (tempfile::TempDir, Vec<cis::CheckResult>) {
    let d = tempfile::tempdir().unwrap();
    let root = HostRoot::new(Some(d.path()));
    let all = render_all(spec, &ctx()).unwrap();
    write(&root, spec, &all, false).unwrap();
    write_stand_in_tree(&root, spec);
    if chown_etcd {
        crate::security::chown_etcd_paths(&root, spec, TEST_ETCD_UID, TEST_ETCD_GID).unwrap();
        crate::security::grant_etcd_keys(&root, spec, TEST_ETCD_UID, TEST_ETCD_GID).unwrap();
    }
    let owners = cis::OwnerNames {
        user: &test_user,
        group: &test_group,
    };
    let results = cis::evaluate_with(d.path(), &all, &owners);
    for r in &results {
        println!("{r}");
    }
    (d, results)
}

fn failing_scored(results: &[cis::CheckResult]) -> BTreeSet<String> {
    results
        .iter()
        .filter(|r| r.scored && r.status != cis::CheckStatus::Pass)
        .map(|r| r.id.clone())
        .collect()
}

#[test]
fn cis_profile_passes_every_scored_control_plane_check() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: the etcd data dir and keys can only be chowned as root");
        return;
    }
    let spec = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    let (dir, results) = cis_results(&spec, true);

    let ids: BTreeSet<&str> = results.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "1.1.1", "1.1.12", "1.1.19", "1.2.30", "1.3.7", "1.4.2", "2.1", "2.6",
    ] {
        assert!(ids.contains(id), "check {id} was not evaluated");
    }
    let scored = results.iter().filter(|r| r.scored).count();
    assert!(scored >= 45, "only {scored} scored checks evaluated");
    for r in results
        .iter()
        .filter(|r| r.status == cis::CheckStatus::Skipped)
    {
        assert!(!r.scored, "scored check skipped: {r}");
        assert!(!r.detail.is_empty(), "skipped without a reason: {r}");
    }

    // No scored check fails: etcd's keys stay root:root with an ACL read grant (see cis.rs).
    assert_eq!(
        failing_scored(&results),
        BTreeSet::new(),
        "failing scored checks"
    );
    let mut not_root = Vec::new();
    let mut stack = vec![dir.path().join("etc/kubernetes/pki")];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.uid() != 0 || m.gid() != 0 {
            not_root.push(p.strip_prefix(dir.path()).unwrap().display().to_string());
        }
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert_eq!(
        not_root,
        Vec::<String>::new(),
        "not root:root under the PKI dir"
    );
    for k in ["etcd/server.key", "etcd/peer.key"] {
        let p = dir.path().join("etc/kubernetes/pki").join(k);
        let acl = crate::acl::get(&p).unwrap().expect("an ACL on etcd's key");
        assert_eq!(acl.user_perm(TEST_ETCD_UID), Some(crate::acl::READ), "{k}");
    }

    // Unscored checks the profile also satisfies.
    let status = |id: &str| results.iter().find(|r| r.id == id).unwrap().status;
    for id in ["1.2.29", "1.3.1", "2.7"] {
        assert_eq!(status(id), cis::CheckStatus::Pass, "{id}");
    }
}

#[test]
fn kubeadm_profile_fails_exactly_the_checks_kubeadm_is_known_to_fail() {
    // Cross-checks the evaluator: the reference README lists what kubeadm's defaults fail.
    let mut spec = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    spec.plinth.security_profile = SecurityProfile::Kubeadm;
    let (_dir, results) = cis_results(&spec, false);
    let expected: BTreeSet<String> = [
        "1.1.12", "1.2.5", "1.2.15", "1.2.16", "1.2.17", "1.2.18", "1.2.19", "1.2.30", "1.3.2",
        "1.4.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(failing_scored(&results), expected);
}

#[test]
fn cis_file_checks_catch_loose_modes() {
    let spec = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    let d = tempfile::tempdir().unwrap();
    let root = HostRoot::new(Some(d.path()));
    let all = render_all(&spec, &ctx()).unwrap();
    write(&root, &spec, &all, false).unwrap();
    write_stand_in_tree(&root, &spec);
    let loosen = |p: &str, m: u32| {
        std::fs::set_permissions(root.path(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    loosen("/etc/kubernetes/manifests/kube-apiserver.yaml", 0o644);
    loosen("/var/lib/etcd", 0o750);
    loosen("/etc/kubernetes/super-admin.conf", 0o640);
    let owners = cis::OwnerNames {
        user: &test_user,
        group: &test_group,
    };
    let results = cis::evaluate_with(d.path(), &all, &owners);
    let status = |id: &str| results.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(status("1.1.1"), cis::CheckStatus::Fail);
    assert_eq!(status("1.1.3"), cis::CheckStatus::Pass);
    assert_eq!(status("1.1.11"), cis::CheckStatus::Fail);
    assert_eq!(status("1.1.13"), cis::CheckStatus::Fail);
}
