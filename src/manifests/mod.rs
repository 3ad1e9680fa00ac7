//! Static pod manifests for etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
//!
//! The pipeline for one component:
//!
//! 1. compute everything in Rust from the [`ClusterSpec`]: kubeadm's default flags sorted by
//!    name ([`args`]) with the security profile's additions ([`cis`]) and the extraArgs merge,
//!    probes ([`probes`]), hostPath volumes ([`volumes`]), image, env, annotations;
//! 2. render the component's tera template (`templates/<component>.yaml.tera`, embedded);
//! 3. parse the YAML into a [`Pod`] (a parse failure or a field k8s-openapi does not know is a
//!    [`ManifestError`] naming the template), so a template can never emit an invalid Pod;
//! 4. apply the patches directory (kubeadm naming and semantics, [`patches`]) and parse again;
//! 5. serialize the Pod canonically (map keys sorted, as kubeadm's output looks), so the
//!    output is deterministic and YAML → Pod → YAML is stable.
//!
//! Files are written by [`write`]: the manifests directory 0700, every manifest 0600 through
//! [`crate::fs::write_atomic`]. Contents carry real host paths whatever `--root` is.

mod args;
pub mod cis;
mod component;
mod diff;
mod etcd_version;
pub mod patches;
mod probes;
mod strategic;
mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::Value;

use crate::config::{ClusterSpec, Etcd};
use crate::fs::{self, FsError, HostRoot, WriteOutcome};

pub use args::{merge_args, to_flags};
pub use component::{Component, UnknownComponent};
pub use diff::{diff, flag_diff, Change, FlagChange};
pub use etcd_version::{default_etcd_tag, etcd_version, EtcdSemver};
pub use probes::etcd_has_livez;

/// Errors from rendering, parsing, patching or writing manifests.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The tera template failed to render (a bug in the template or its context).
    #[error("template {template}: rendering failed: {message}")]
    Template {
        /// Template name.
        template: &'static str,
        /// tera's message.
        message: String,
    },
    /// The rendered template is not valid YAML.
    #[error("template {template}: rendered text is not valid YAML: {message}")]
    TemplateYaml {
        /// Template name.
        template: &'static str,
        /// Parser message.
        message: String,
    },
    /// The document is YAML but not a valid Pod.
    #[error("{origin}: not a valid Pod: {message}")]
    InvalidPod {
        /// Where the document came from (template, or template + patches, or a file).
        origin: String,
        /// Why.
        message: String,
    },
    /// The document has a field the Pod type does not know (it would be silently dropped).
    #[error("{origin}: unknown Pod field {path}")]
    UnknownField {
        /// Where the document came from.
        origin: String,
        /// JSON path of the field, e.g. `spec.containers[0].comand`.
        path: String,
    },
    /// A manifest is not valid YAML.
    #[error("manifest is not valid YAML: {message}")]
    Yaml {
        /// Parser message.
        message: String,
    },
    /// A patch file is invalid, targets an unknown component, or does not apply.
    #[error("patch {}: {message}", file.display())]
    Patch {
        /// Host path of the patch file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The patches directory could not be read.
    #[error("patches directory {}: {source}", path.display())]
    PatchDir {
        /// Host path of the directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// etcd was requested but the spec uses an external etcd cluster.
    #[error("etcd.external is set: plinth writes no etcd manifest for an external etcd cluster")]
    ExternalEtcd,
    /// The `cis` profile runs etcd as the `etcd` user, but the context has no uid/gid for it.
    #[error("security profile cis runs etcd as the `etcd` system user, but no uid/gid was given: call plinth::security::ensure_etcd_user() and set RenderContext::etcd_user (or use securityProfile: kubeadm)")]
    MissingEtcdUser,
    /// The etcd user given is root, which defeats running etcd as a dedicated user.
    #[error("the etcd user must not be root (uid {uid}, gid {gid})")]
    EtcdUserIsRoot {
        /// uid given.
        uid: u32,
        /// gid given.
        gid: u32,
    },
    /// Serializing a Pod failed (should not happen).
    #[error("serializing {what}: {message}")]
    Serialize {
        /// What was serialized.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Host facts rendering may depend on. Contents never depend on `--root`: optional CA
/// directories are looked up on the real host, where the pods will run.
#[derive(Debug, Clone)]
pub struct RenderContext {
    /// The host root patches are read through.
    pub root: HostRoot,
    /// uid/gid of the `etcd` system user (required for the `cis` profile with local etcd).
    pub etcd_user: Option<(u32, u32)>,
    /// Whether a directory exists on the real host (for `/etc/pki`, `/usr/share/ca-certificates`,
    /// `/usr/local/share/ca-certificates`, `/etc/ca-certificates`).
    pub host_dir_exists: fn(&str) -> bool,
    /// `*_proxy` variables passed to apiserver, controller-manager and scheduler (as kubeadm).
    pub proxy_env: Vec<(String, String)>,
    /// External CA mode (ca.crt without ca.key): the controller-manager gets empty
    /// `--cluster-signing-*` flags so its CSR signer stays off, as kubeadm does.
    pub external_ca: bool,
}

fn real_dir_exists(path: &str) -> bool {
    Path::new(path).is_dir()
}

fn no_dir_exists(_: &str) -> bool {
    false
}

impl RenderContext {
    /// The real context: optional CA dirs checked on `/`, the existing `etcd` user (not
    /// created here; see [`crate::security::ensure_etcd_user`]), `*_proxy` variables from this
    /// process's environment, external CA detected under `root`.
    pub fn for_host(root: &HostRoot, spec: &ClusterSpec) -> RenderContext {
        let mut proxy_env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, v)| k.to_ascii_lowercase().ends_with("_proxy") && !v.is_empty())
            .collect();
        proxy_env.sort();
        let pki = &spec.certificates_dir;
        let external_ca = root.path(args::join(pki, "ca.crt")).is_file()
            && !root.path(args::join(pki, "ca.key")).exists();
        RenderContext {
            root: root.clone(),
            etcd_user: crate::security::lookup_etcd_user(),
            host_dir_exists: real_dir_exists,
            proxy_env,
            external_ca,
        }
    }

    /// [`RenderContext::for_host`] for rendering this node's manifests: under the cis profile
    /// with a local etcd, etcd runs as the `etcd` user, uid 0:0 until it exists (creating it is
    /// an explicit step of init, [`crate::security::ensure_etcd_user`], never of rendering).
    pub fn for_node(root: &HostRoot, spec: &ClusterSpec) -> RenderContext {
        let mut ctx = RenderContext::for_host(root, spec);
        if spec.plinth.security_profile == crate::config::SecurityProfile::Cis
            && spec.has_local_etcd()
        {
            ctx.etcd_user = Some(ctx.etcd_user.unwrap_or((0, 0)));
        }
        ctx
    }

    /// A context independent of the machine: no optional CA dirs, no proxy variables, no
    /// etcd user (set one with [`RenderContext::with_etcd_user`]). For tests and previews.
    pub fn isolated(root: &HostRoot) -> RenderContext {
        RenderContext {
            root: root.clone(),
            etcd_user: None,
            host_dir_exists: no_dir_exists,
            proxy_env: Vec::new(),
            external_ca: false,
        }
    }

    /// The same context with the etcd user's uid/gid.
    pub fn with_etcd_user(mut self, uid: u32, gid: u32) -> RenderContext {
        self.etcd_user = Some((uid, gid));
        self
    }
}

/// One rendered manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedManifest {
    /// The component.
    pub component: Component,
    /// File name in the manifests dir.
    pub file_name: &'static str,
    /// The parsed Pod.
    pub pod: Pod,
    /// The canonical YAML written to disk.
    pub yaml: String,
}

impl RenderedManifest {
    /// The command line of the (first) container: binary and flags.
    pub fn command(&self) -> Vec<String> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| {
                let mut v = c.command.clone().unwrap_or_default();
                v.extend(c.args.clone().unwrap_or_default());
                v
            })
            .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Serialize)]
struct EnvModel {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// The flags whose files `component` watches and reloads by itself, without a restart
/// (the agent's `plinth.io/reloads-flags`): the serving and client-CA files of the
/// Kubernetes components (k8s.io/apiserver's dynamic certificate providers), the front-proxy
/// client pair of kube-apiserver's aggregator, kube-controller-manager's CSR signing pair,
/// and etcd's serving and peer pairs (etcd loads them at every TLS handshake). Everything else
/// (etcd client certs, kubeconfigs, service-account keys, CA files of etcd) is read at start.
pub fn reloads_flags(component: Component) -> &'static [&'static str] {
    match component {
        Component::KubeApiserver => &[
            "client-ca-file",
            "proxy-client-cert-file",
            "proxy-client-key-file",
            "requestheader-client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
        ],
        Component::KubeControllerManager => &[
            "client-ca-file",
            "cluster-signing-cert-file",
            "cluster-signing-key-file",
            "requestheader-client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
        ],
        Component::KubeScheduler => &[
            "client-ca-file",
            "requestheader-client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
        ],
        Component::Etcd => &["cert-file", "key-file", "peer-cert-file", "peer-key-file"],
    }
}

/// Everything a template needs; all decisions are made here, in Rust.
#[derive(Serialize)]
struct PodModel {
    annotations: Vec<KeyValue>,
    image: String,
    command: Vec<String>,
    env: Vec<EnvModel>,
    probes: BTreeMap<&'static str, Option<probes::Probe>>,
    mounts: Vec<volumes::Mount>,
    volumes: Vec<volumes::Mount>,
    run_as: Option<RunAs>,
    container_security: bool,
}

/// `<imageRepository>/<component>:<version>` (etcd: `<repo>/etcd:<etcd tag>`).
fn image(spec: &ClusterSpec, component: Component) -> String {
    match (component, &spec.etcd) {
        (Component::Etcd, Etcd::Local(local)) => {
            let repo = if local.image_repository.is_empty() {
                &spec.image_repository
            } else {
                &local.image_repository
            };
            format!("{}/etcd:{}", repo, etcd_version(spec))
        }
        _ => format!(
            "{}/{}:{}",
            spec.image_repository,
            component.name(),
            spec.kubernetes_version.to_string().replace('+', "_")
        ),
    }
}

/// The final, merged flags of `component` (without the binary name).
pub fn component_args(
    spec: &ClusterSpec,
    component: Component,
    ctx: &RenderContext,
) -> Vec<crate::config::Arg> {
    let defaults = args::overlay(
        args::kubeadm_defaults(spec, component, ctx.external_ca),
        cis::profile_args(spec, component),
    );
    args::merge_args(
        &defaults,
        args::user_extra_args(spec, component),
        spec.api_version,
    )
}

fn model(
    spec: &ClusterSpec,
    component: Component,
    ctx: &RenderContext,
) -> Result<PodModel, ManifestError> {
    let mut command = vec![component.name().to_string()];
    command.extend(to_flags(&component_args(spec, component, ctx)));

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let extra_envs = match component {
        Component::KubeApiserver => &spec.api_server.component.extra_envs,
        Component::KubeControllerManager => &spec.controller_manager.extra_envs,
        Component::KubeScheduler => &spec.scheduler.extra_envs,
        Component::Etcd => match &spec.etcd {
            Etcd::Local(l) => &l.extra_envs,
            Etcd::External(_) => return Err(ManifestError::ExternalEtcd),
        },
    };
    if component != Component::Etcd {
        for (k, v) in &ctx.proxy_env {
            env.insert(k.clone(), v.clone());
        }
    }
    for e in extra_envs {
        env.insert(e.name.clone(), e.value.clone());
    }

    let mut annotations = match component {
        Component::KubeApiserver => vec![KeyValue {
            key: "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint".into(),
            value: args::host_port(&spec.advertise_address.to_string(), spec.bind_port),
        }],
        Component::Etcd => vec![KeyValue {
            key: "kubeadm.kubernetes.io/etcd.advertise-client-urls".into(),
            value: args::etcd_client_url(spec),
        }],
        _ => Vec::new(),
    };
    annotations.push(KeyValue {
        key: crate::agent::fileuse::ANN_RELOADS_FLAGS.into(),
        value: reloads_flags(component).join(","),
    });

    let p = probes::probes(spec, component);
    let mut probe_map = BTreeMap::new();
    probe_map.insert("livenessProbe", p.liveness);
    probe_map.insert("readinessProbe", p.readiness);
    probe_map.insert("startupProbe", p.startup);

    let run_as = if component == Component::Etcd && cis::etcd_runs_as_user(spec) {
        let (uid, gid) = ctx.etcd_user.ok_or(ManifestError::MissingEtcdUser)?;
        if uid == 0 || gid == 0 {
            return Err(ManifestError::EtcdUserIsRoot { uid, gid });
        }
        Some(RunAs { uid, gid })
    } else {
        None
    };

    let mounts = volumes::mounts(spec, component, ctx);
    let mut sorted_volumes = mounts.clone();
    sorted_volumes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(PodModel {
        annotations,
        image: image(spec, component),
        command,
        env: env
            .into_iter()
            .map(|(name, value)| EnvModel { name, value })
            .collect(),
        probes: probe_map,
        mounts,
        volumes: sorted_volumes,
        container_security: run_as.is_some(),
        run_as,
    })
}

static TEMPLATES: OnceLock<Result<tera::Tera, String>> = OnceLock::new();

fn templates() -> Result<&'static tera::Tera, ManifestError> {
    let t = TEMPLATES.get_or_init(|| {
        let mut t = tera::Tera::new();
        t.autoescape_on(Vec::<&str>::new());
        // A JSON string is a valid YAML double-quoted scalar: values can never break the YAML.
        t.register_filter("q", |s: &str, _: tera::Kwargs, _: &tera::State| -> String {
            serde_json::to_string(s).unwrap_or_default()
        });
        t.add_raw_templates(vec![
            (
                "etcd.yaml.tera",
                include_str!("../../templates/etcd.yaml.tera"),
            ),
            (
                "kube-apiserver.yaml.tera",
                include_str!("../../templates/kube-apiserver.yaml.tera"),
            ),
            (
                "kube-controller-manager.yaml.tera",
                include_str!("../../templates/kube-controller-manager.yaml.tera"),
            ),
            (
                "kube-scheduler.yaml.tera",
                include_str!("../../templates/kube-scheduler.yaml.tera"),
            ),
        ])
        .map_err(|e| e.to_string())?;
        Ok(t)
    });
    t.as_ref().map_err(|message| ManifestError::Template {
        template: "templates/*.yaml.tera",
        message: message.clone(),
    })
}

/// Renders the template of `component` to its raw text (before parsing and patches).
fn render_template(
    spec: &ClusterSpec,
    component: Component,
    ctx: &RenderContext,
) -> Result<String, ManifestError> {
    let template = component.template_name();
    let model = model(spec, component, ctx)?;
    let context = tera::Context::from_serialize(&model).map_err(|e| ManifestError::Template {
        template,
        message: e.to_string(),
    })?;
    templates()?
        .render(template, &context)
        .map_err(|e| ManifestError::Template {
            template,
            message: format!("{e}{}", source_chain(&e)),
        })
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Renders one component's manifest (see the module docs for the pipeline).
pub fn render(
    spec: &ClusterSpec,
    component: Component,
    ctx: &RenderContext,
) -> Result<RenderedManifest, ManifestError> {
    if component == Component::Etcd && !spec.has_local_etcd() {
        return Err(ManifestError::ExternalEtcd);
    }
    let template = component.template_name();
    let text = render_template(spec, component, ctx)?;
    let (mut value, mut pod) = parse_rendered(template, &text)?;
    if let Some(dir) = &spec.patches_dir {
        let applied = patches::apply_patches(&ctx.root, dir, component, &mut value)?;
        if !applied.is_empty() {
            let names: Vec<String> = applied.iter().map(|p| p.display().to_string()).collect();
            pod = value_to_pod(
                &value,
                &format!("template {template} patched by {}", names.join(", ")),
            )?;
        }
    }
    let yaml = pod_to_yaml(&pod)?;
    Ok(RenderedManifest {
        component,
        file_name: component.file_name(),
        pod,
        yaml,
    })
}

/// Parses a template's output: YAML errors and non-Pods are errors naming the template.
fn parse_rendered(template: &'static str, text: &str) -> Result<(Value, Pod), ManifestError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ManifestError::TemplateYaml {
        template,
        message: e.to_string(),
    })?;
    let pod = value_to_pod(&value, &format!("template {template}"))?;
    Ok((value, pod))
}

/// Renders every component this node runs: etcd (unless etcd is external), apiserver,
/// controller-manager, scheduler.
pub fn render_all(
    spec: &ClusterSpec,
    ctx: &RenderContext,
) -> Result<Vec<RenderedManifest>, ManifestError> {
    Component::all()
        .into_iter()
        .filter(|c| *c != Component::Etcd || spec.has_local_etcd())
        .map(|c| render(spec, c, ctx))
        .collect()
}

/// Parses a manifest (YAML) into a Pod. Unknown fields are ignored, as the kubelet does.
pub fn parse_manifest(yaml: &str) -> Result<Pod, ManifestError> {
    let value: Value = serde_saphyr::from_str(yaml).map_err(|e| ManifestError::Yaml {
        message: e.to_string(),
    })?;
    serde_json::from_value(value).map_err(|e| ManifestError::InvalidPod {
        origin: "manifest".into(),
        message: e.to_string(),
    })
}

/// Parses a JSON value into a Pod, refusing fields the Pod type would silently drop.
fn value_to_pod(value: &Value, origin: &str) -> Result<Pod, ManifestError> {
    let pod: Pod =
        serde_json::from_value(value.clone()).map_err(|e| ManifestError::InvalidPod {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
    let back = serde_json::to_value(&pod).map_err(|e| ManifestError::Serialize {
        what: origin.to_string(),
        message: e.to_string(),
    })?;
    if let Some(path) = lost_field(value, &back, "") {
        return Err(ManifestError::UnknownField {
            origin: origin.to_string(),
            path,
        });
    }
    Ok(pod)
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The first field present (and non-empty) in `input` but missing in `output`.
fn lost_field(input: &Value, output: &Value, path: &str) -> Option<String> {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if is_empty_value(v) {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    None => return Some(p),
                    Some(bv) => {
                        if let Some(found) = lost_field(v, bv, &p) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b.iter())
            .enumerate()
            .find_map(|(i, (x, y))| lost_field(x, y, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// A JSON value serialized with every map's keys sorted.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &Sorted(&m[k]))?;
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Serializes any value as canonical YAML: keys sorted, plain/quoted scalars (no folding).
pub(crate) fn to_canonical_yaml(value: &Value, what: &str) -> Result<String, ManifestError> {
    let mut opts = serde_saphyr::SerializerOptions::default();
    opts.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(&Sorted(value), opts).map_err(|e| {
        ManifestError::Serialize {
            what: what.to_string(),
            message: e.to_string(),
        }
    })
}

/// A Pod as canonical YAML (what plinth writes): keys sorted, deterministic.
pub fn pod_to_yaml(pod: &Pod) -> Result<String, ManifestError> {
    let what = pod.metadata.name.clone().unwrap_or_else(|| "pod".into());
    let value = serde_json::to_value(pod).map_err(|e| ManifestError::Serialize {
        what: what.clone(),
        message: e.to_string(),
    })?;
    to_canonical_yaml(&value, &what)
}

/// What a file or directory in the plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedKind {
    /// A directory created (or tightened) with the mode.
    Dir,
    /// A file written atomically with the mode.
    File,
}

/// One path [`write`] creates or updates (host path, as in the manifests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Host path (no `--root` prefix).
    pub path: PathBuf,
    /// Mode it gets.
    pub mode: u32,
    /// File or directory.
    pub kind: PlannedKind,
    /// The component it belongs to, if any.
    pub component: Option<Component>,
}

/// Every path [`write`] touches for `components` (for `init --dry-run`), in write order.
/// Needs no rendering and no disk access.
pub fn plan_files(spec: &ClusterSpec, components: &[Component]) -> Vec<PlannedFile> {
    let mut out = vec![PlannedFile {
        path: PathBuf::from(&spec.plinth.manifests_dir),
        mode: fs::MODE_MANIFEST_DIR,
        kind: PlannedKind::Dir,
        component: None,
    }];
    for c in components {
        if *c == Component::Etcd {
            if let Etcd::Local(local) = &spec.etcd {
                out.push(PlannedFile {
                    path: PathBuf::from(&local.data_dir),
                    mode: 0o700,
                    kind: PlannedKind::Dir,
                    component: Some(*c),
                });
            }
        }
        if *c == Component::KubeApiserver && !cis::profile_mounts(spec, *c).is_empty() {
            out.push(PlannedFile {
                path: PathBuf::from(cis::audit_policy_path(spec)),
                mode: fs::MODE_PRIVATE,
                kind: PlannedKind::File,
                component: Some(*c),
            });
            out.push(PlannedFile {
                path: PathBuf::from(cis::AUDIT_LOG_DIR),
                mode: 0o700,
                kind: PlannedKind::Dir,
                component: Some(*c),
            });
        }
        out.push(PlannedFile {
            path: Path::new(&spec.plinth.manifests_dir).join(c.file_name()),
            mode: fs::MODE_PRIVATE,
            kind: PlannedKind::File,
            component: Some(*c),
        });
    }
    out
}

/// Creates `dir` with `mode` if missing, or removes permission bits beyond `mode` if it is
/// looser. With `dry_run` only reports what would happen.
fn ensure_private_dir(dir: &Path, mode: u32, dry_run: bool) -> Result<WriteOutcome, ManifestError> {
    match fs::mode_of(dir) {
        None => {
            if !dry_run {
                fs::ensure_dir(dir, mode)?;
                // ensure_dir leaves an existing-by-race dir alone; set the mode exactly.
                set_mode(dir, mode)?;
            }
            Ok(WriteOutcome::Created)
        }
        Some(old) if old & !mode & 0o777 != 0 => {
            if !dry_run {
                set_mode(dir, old & mode)?;
            }
            Ok(WriteOutcome::ModeFixed { old })
        }
        Some(_) => Ok(WriteOutcome::Unchanged),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ManifestError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| FsError::io("chmod", path, e).into())
}

/// What [`fs::write_atomic`] would do, without doing it.
fn predict_write(path: &Path, data: &[u8], mode: u32) -> Result<WriteOutcome, ManifestError> {
    match fs::read_optional(path)? {
        None => Ok(WriteOutcome::Created),
        Some(old) if old == data => match fs::mode_of(path) {
            Some(m) if m == mode => Ok(WriteOutcome::Unchanged),
            Some(m) => Ok(WriteOutcome::ModeFixed { old: m }),
            None => Ok(WriteOutcome::Created),
        },
        Some(_) => Ok(WriteOutcome::Updated),
    }
}

fn write_file(
    path: &Path,
    data: &[u8],
    mode: u32,
    dry_run: bool,
) -> Result<WriteOutcome, ManifestError> {
    if dry_run {
        predict_write(path, data, mode)
    } else {
        Ok(fs::write_atomic_sealed(path, data, mode)?)
    }
}

/// Writes `manifests` under `root`: the manifests dir (created 0700, tightened if looser),
/// each manifest 0600 atomically; with etcd, its data dir (0700); with the apiserver under
/// the `cis` profile, the audit policy (0600) and the audit log dir (0700). Returns every
/// path (host path, without the root prefix) with what happened to it, in [`plan_files`]
/// order. With `dry_run` nothing is written and the outcomes say what would happen.
pub fn write(
    root: &HostRoot,
    spec: &ClusterSpec,
    manifests: &[RenderedManifest],
    dry_run: bool,
) -> Result<Vec<(PathBuf, WriteOutcome)>, ManifestError> {
    let components: Vec<Component> = manifests.iter().map(|m| m.component).collect();
    let mut out = Vec::new();
    for planned in plan_files(spec, &components) {
        let local = root.path(&planned.path);
        let outcome = match planned.kind {
            PlannedKind::Dir => ensure_private_dir(&local, planned.mode, dry_run)?,
            PlannedKind::File => {
                let data: &[u8] = match planned.component {
                    Some(c) if planned.path.file_name().is_some_and(|n| n == c.file_name()) => {
                        manifests
                            .iter()
                            .find(|m| m.component == c)
                            .map(|m| m.yaml.as_bytes())
                            .unwrap_or_default()
                    }
                    _ => cis::AUDIT_POLICY.as_bytes(),
                };
                write_file(&local, data, planned.mode, dry_run)?
            }
        };
        if outcome.changed() {
            tracing::debug!(path = %planned.path.display(), ?outcome, dry_run, "manifests: write");
        }
        out.push((planned.path, outcome));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

/// The etcd data dir a rendered etcd manifest uses (`--data-dir`), if any.
pub fn etcd_data_dir(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .containers
        .first()?
        .command
        .as_ref()?
        .iter()
        .find_map(|a| a.strip_prefix("--data-dir=").map(str::to_string))
}
