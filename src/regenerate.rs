//! `plinth manifest regenerate <component>`: re-render one static pod manifest and swap it in
//! safely — flag-level diff, backup outside the manifests dir (bounded retention), atomic
//! swap, wait for the *new* pod to be healthy, and automatic rollback when it is not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::ClusterSpec;
use crate::fs::{self, HostRoot};
use crate::health;
use crate::manifests::{self, Component};

/// Backups kept per component.
pub const BACKUPS_KEPT: usize = 5;

/// Errors from regenerate.
#[derive(Debug, thiserror::Error)]
pub enum RegenerateError {
    /// The etcd user etcd's manifest runs as could not be set up (nothing was changed).
    #[error("etcd user setup failed")]
    Security(#[from] crate::security::SecurityError),
    /// Rendering failed (nothing was changed).
    #[error(transparent)]
    Manifest(#[from] crate::manifests::ManifestError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    /// Health checking could not run.
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
    /// The only change is an image tag the binary the agent runs does not match: applying it
    /// would restart the component without changing what runs (nothing was changed).
    #[error("{component}: refusing a restart that changes nothing: {mismatches}; install the binary of that version in binPath (or $PATH), or set kubernetesVersion to the binary's version")]
    ImageOnlyChange {
        /// The component.
        component: String,
        /// The mismatches, joined.
        mismatches: String,
    },
}

/// A container whose image tag names another version than the binary the agent will run
/// (the agent runs `command[0]` from binPath/`$PATH`; the image is only a label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMismatch {
    /// Container name.
    pub container: String,
    /// The image (`registry.k8s.io/kube-scheduler:v1.24.1`).
    pub image: String,
    /// The binary that will run.
    pub binary: PathBuf,
    /// What `binary --version` reports (`1.24.0-alpha.1`).
    pub version: String,
}

impl std::fmt::Display for VersionMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "container {}: image {} says {} but the agent runs {}, which is v{} (the image tag is only a label: the agent runs the binary from binPath/$PATH)",
            self.container,
            self.image,
            image_tag(&self.image).unwrap_or_default(),
            self.binary.display(),
            self.version.trim_start_matches('v')
        )
    }
}

/// The tag of `image` (`repo/name:tag` → `tag`), without a digest.
fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// The containers of `pod` named in `containers` whose image tag is a version the binary the
/// agent will run (resolved on `bin_path`, else `$PATH`) does not report. Containers whose
/// binary is not found or reports no version are skipped (preflight reports those).
pub fn version_mismatches(
    pod: &k8s_openapi::api::core::v1::Pod,
    containers: &[String],
    bin_path: &[PathBuf],
) -> Vec<VersionMismatch> {
    let mut out = Vec::new();
    let all = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    for c in all.iter().filter(|c| containers.contains(&c.name)) {
        let Some(image) = c.image.clone() else {
            continue;
        };
        let Some(tag) = image_tag(&image) else {
            continue;
        };
        let tag_version = tag.trim_start_matches('v');
        if !tag_version.starts_with(|ch: char| ch.is_ascii_digit()) {
            continue;
        }
        let Some(cmd0) = c.command.as_ref().and_then(|v| v.first()) else {
            continue;
        };
        let Some(binary) = crate::preflight::find_binary(cmd0, bin_path) else {
            continue;
        };
        let Some(version) = crate::preflight::binary_version(&binary) else {
            continue;
        };
        if version.trim_start_matches('v') != tag_version {
            out.push(VersionMismatch {
                container: c.name.clone(),
                image,
                binary,
                version,
            });
        }
    }
    out
}

/// Every difference between the manifest on disk (`old_text`, `None` when missing) and the
/// new Pod, one line each: flags one by one, images, volumes, then any other field by its
/// path (probes, env, resources, securityContext, labels, annotations, ...).
pub fn manifest_changes(
    old_text: Option<&str>,
    new: &k8s_openapi::api::core::v1::Pod,
    file_name: &str,
) -> Vec<manifests::Change> {
    match old_text.map(manifests::parse_manifest) {
        Some(Ok(old_pod)) => manifests::diff(&old_pod, new),
        Some(Err(e)) => vec![manifests::Change::Field {
            path: file_name.to_string(),
            old: Some(format!("(unparseable: {e})")),
            new: Some("(re-rendered)".into()),
        }],
        None => vec![manifests::Change::Field {
            path: file_name.to_string(),
            old: None,
            new: Some("(new file)".into()),
        }],
    }
}

/// How a regenerate ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The rendered manifest equals the current one: nothing done.
    Unchanged,
    /// `--diff`: only the diff was shown.
    DiffOnly,
    /// The new manifest is in place and its pod is healthy.
    Applied,
    /// The new pod did not become healthy; the old manifest was restored and is healthy.
    RolledBack {
        /// Why the new pod was judged unhealthy.
        reason: String,
    },
    /// Rolled back, but the restored pod did not become healthy either.
    RollbackUnhealthy {
        /// Why the new pod failed.
        reason: String,
    },
}

/// The result of a regenerate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The component.
    pub component: String,
    /// Every change, one per line: flags (`+ --x=1`, `- --y`, `~ --z: a → b`), images,
    /// volumes and any other field by path (`~ spec.containers[c].livenessProbe...: a → b`).
    pub diff: Vec<String>,
    /// Things the operator must know (e.g. an image tag the binary does not match).
    pub warnings: Vec<String>,
    /// Where the previous manifest was saved (host path).
    pub backup: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

/// Options for [`regenerate`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Show the diff only.
    pub diff_only: bool,
    /// How long the new pod has to become healthy.
    pub timeout: Duration,
    /// Backstop for crash loops [`health::fatal_after`] does not recognise (a component that
    /// cannot reach etcd, ...): the new pod is judged failed once it has restarted this many
    /// times. A start failure no retry will cure ends the wait earlier (see [`wait_new_pod`]).
    pub max_restarts: i32,
}

/// Re-renders `component`, swaps it in and waits; rolls back on failure.
pub async fn regenerate(
    spec: &ClusterSpec,
    root: &HostRoot,
    component: Component,
    opts: &Options,
    mut progress: impl FnMut(&str),
) -> Result<Report, RegenerateError> {
    // etcd's manifest under the cis profile runs as the etcd user: make sure it exists first
    // (an explicit step; rendering never creates it).
    if component == Component::Etcd
        && !opts.diff_only
        && spec.plinth.security_profile == crate::config::SecurityProfile::Cis
        && spec.has_local_etcd()
    {
        crate::security::ensure_etcd_user()?;
    }
    let ctx = manifests::RenderContext::for_node(root, spec);
    let new = manifests::render(spec, component, &ctx)?;
    let path = root
        .path(&spec.plinth.manifests_dir)
        .join(component.file_name());
    let old_text = fs::read_optional(&path)?.map(|b| String::from_utf8_lossy(&b).into_owned());
    let changes = manifest_changes(old_text.as_deref(), &new.pod, component.file_name());
    let mut diff: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    if diff.is_empty() && old_text.as_deref() != Some(new.yaml.as_str()) {
        diff.push("(formatting only: the Pods are equal)".into());
    }
    let image_changed: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            manifests::Change::Image { container, .. } => Some(container.clone()),
            _ => None,
        })
        .collect();
    let mismatches = if image_changed.is_empty() {
        Vec::new()
    } else {
        version_mismatches(&new.pod, &image_changed, &spec.plinth.bin_path)
    };
    let only_images = !changes.is_empty()
        && changes
            .iter()
            .all(|c| matches!(c, manifests::Change::Image { .. }));
    let mut report = Report {
        component: component.name().to_string(),
        diff,
        warnings: mismatches.iter().map(|m| m.to_string()).collect(),
        backup: None,
        outcome: Outcome::Unchanged,
    };
    if old_text.as_deref() == Some(new.yaml.as_str()) {
        return Ok(report);
    }
    if opts.diff_only {
        report.outcome = Outcome::DiffOnly;
        return Ok(report);
    }
    if only_images && !mismatches.is_empty() {
        return Err(RegenerateError::ImageOnlyChange {
            component: report.component,
            mismatches: report.warnings.join("; "),
        });
    }
    for w in &report.warnings {
        progress(&format!("[regenerate] warning: {w}"));
    }
    progress(&format!("[regenerate] {} changes:", report.component));
    for d in &report.diff {
        progress(&format!("  {d}"));
    }
    if let Some(old) = &old_text {
        let backup = backup(spec, root, component, old)?;
        progress(&format!(
            "[regenerate] backed up the current manifest to {backup}"
        ));
        report.backup = Some(backup);
    }
    let base = restarts_before(spec, root, &new.pod, &path);
    manifests::write(root, spec, std::slice::from_ref(&new), false)?;
    progress(&format!(
        "[regenerate] wrote the new {}; waiting for the new pod",
        component.file_name()
    ));
    match wait_new_pod(spec, root, &new.pod, &path, opts, base, NEW_POD_QUICK_EXITS).await? {
        Ok(()) => {
            report.outcome = Outcome::Applied;
            Ok(report)
        }
        Err(reason) => {
            progress(&format!(
                "[regenerate] the new pod is not healthy ({reason}); rolling back"
            ));
            let Some(old) = old_text else {
                report.outcome = Outcome::RollbackUnhealthy {
                    reason: format!("{reason}; there was no previous manifest"),
                };
                return Ok(report);
            };
            let old_pod = manifests::parse_manifest(&old)?;
            let base = restarts_before(spec, root, &old_pod, &path);
            fs::write_atomic_sealed(&path, old.as_bytes(), fs::MODE_PRIVATE)?;
            let restored =
                wait_new_pod(spec, root, &old_pod, &path, opts, base, health::FATAL_AFTER);
            report.outcome = match restored.await? {
                Ok(()) => Outcome::RolledBack { reason },
                Err(e) => Outcome::RollbackUnhealthy {
                    reason: format!("{reason}; after rollback: {e}"),
                },
            };
            Ok(report)
        }
    }
}

/// The restart count the first container of `pod` (for the manifest at `local_path`) will
/// start with: the agent numbers instances after the log files its pod version already has
/// (after a rollback the restored version continues its count), so crash-loop detection
/// counts restarts from there.
fn restarts_before(
    spec: &ClusterSpec,
    root: &HostRoot,
    pod: &k8s_openapi::api::core::v1::Pod,
    local_path: &Path,
) -> i32 {
    let host_path =
        Path::new(&spec.plinth.manifests_dir).join(local_path.file_name().unwrap_or_default());
    let Ok(sp) = crate::agent::pod::identify(pod.clone(), &spec.node_name, &host_path) else {
        return 0;
    };
    let Some(c) = sp.spec().containers.first() else {
        return 0;
    };
    let dir = crate::logs::pod_log_dir(
        Path::new(&spec.plinth.log_dir),
        &sp.namespace,
        &sp.name,
        &sp.uid,
    )
    .join(&c.name);
    i32::try_from(crate::logs::next_restart_count(&root.path(dir))).unwrap_or(0)
}

/// Quick exits with the binary's own flag error after which the new pod is judged failed.
///
/// One, where init's wait needs [`health::FATAL_AFTER`] (2): regenerate has a known-good
/// manifest to restore, the old instance is already stopped (every second spent waiting is API
/// downtime), and a flag the binary rejects is rejected again on every start. The agent's
/// `quickExits` streak only counts exits within 10 s of the start of an instance that never was
/// Ready, and [`health::usage_error`] only matches the binary's own flag-parsing error, so a
/// slow start or a transient failure (etcd not reachable yet) never triggers it.
pub const NEW_POD_QUICK_EXITS: u32 = 1;

/// How often the agent's status is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Waits until the agent runs `pod` (by its UID for this file) Ready and its endpoint is
/// healthy. `Ok(Err(reason))` when it does not within the timeout, fails in a way no retry
/// will cure ([`health::fatal_after`] with `quick_exits`: the reason then holds the
/// component's own error line) or crash-loops ([`Options::max_restarts`]).
async fn wait_new_pod(
    spec: &ClusterSpec,
    root: &HostRoot,
    pod: &k8s_openapi::api::core::v1::Pod,
    local_path: &Path,
    opts: &Options,
    base_restarts: i32,
    quick_exits: u32,
) -> Result<Result<(), String>, RegenerateError> {
    let node_ip = spec.advertise_address;
    let target = health::target_for(pod, node_ip)?;
    let host_path =
        Path::new(&spec.plinth.manifests_dir).join(local_path.file_name().unwrap_or_default());
    let expected_uid = crate::agent::pod::identify(pod.clone(), &spec.node_name, &host_path)
        .map(|p| p.uid)
        .unwrap_or_default();
    let client = health::insecure_client(Duration::from_secs(2))?;
    let start = Instant::now();
    let mut last = String::from("no status yet");
    while start.elapsed() < opts.timeout {
        let pods = health::agent_pods(&client, &spec.plinth.agent_status_addr()).await;
        let view = pods
            .as_ref()
            .ok()
            .and_then(|l| health::agent_view(l, &target.pod_name, &spec.node_name));
        match view {
            Some(v) if v.uid == expected_uid => {
                let logs = || instance_logs(root, &spec.plinth.log_dir, &v);
                if !(v.running && v.ready) {
                    if let Some(why) = health::fatal_after(&v, quick_exits, logs) {
                        return Ok(Err(why));
                    }
                }
                let restarts = v.restarts - base_restarts;
                if restarts >= opts.max_restarts && !v.running {
                    return Ok(Err(format!(
                        "crash-looping: {} restarts, last exit code {}",
                        restarts,
                        v.last_exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "?".into())
                    )));
                }
                if v.running && v.ready {
                    match health::check(&client, &target.url).await {
                        Ok(()) => return Ok(Ok(())),
                        Err(e) => last = format!("{}: {e}", target.url),
                    }
                } else {
                    last = format!("{}: {}", v.pod, v.state);
                }
            }
            Some(v) => last = format!("the agent still runs the previous pod (uid {})", v.uid),
            None => {
                last = match pods {
                    Err(e) => e.to_string(),
                    Ok(_) => "the agent has not started the pod yet".into(),
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Err(format!(
        "not healthy after {}s: {last}",
        opts.timeout.as_secs()
    )))
}

/// The last log lines of the pod version's latest two instances, older first: the agent
/// restarts a first crash at once, so by the time the crash is seen, the latest log may be the
/// fresh instance's, still empty, while the error line is in the one before. Both belong to
/// this pod version (the log dir is per UID), whose quick exits are what is being judged.
fn instance_logs(root: &HostRoot, log_dir: &str, view: &health::AgentView) -> Vec<String> {
    let mut lines = Vec::new();
    let latest = view.restarts.max(0);
    for restart in latest.saturating_sub(1)..=latest {
        let path = health::component_log_path(root, log_dir, view, restart);
        if let Ok(tail) = crate::logs::tail_lines(&path, health::USAGE_ERROR_LINES) {
            lines.extend(tail.into_iter().map(|l| l.text));
        }
    }
    if lines.is_empty() {
        lines = health::last_log_lines(root, log_dir, view, health::USAGE_ERROR_LINES);
    }
    lines
}

/// The backup dir (host path), outside the manifests dir.
pub fn backup_dir(spec: &ClusterSpec) -> String {
    format!(
        "{}/manifest-backups",
        spec.plinth.state_dir.trim_end_matches('/')
    )
}

fn backup(
    spec: &ClusterSpec,
    root: &HostRoot,
    component: Component,
    text: &str,
) -> Result<String, RegenerateError> {
    let dir = backup_dir(spec);
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let host = format!("{dir}/{}.{stamp}", component.file_name());
    fs::ensure_dir(&root.path(&dir), 0o700)?;
    fs::write_atomic(&root.path(&host), text.as_bytes(), fs::MODE_PRIVATE)?;
    prune(&root.path(&dir), component.file_name(), BACKUPS_KEPT);
    Ok(host)
}

/// Keeps the newest `keep` backups of `file_name` in `dir`.
fn prune(dir: &Path, file_name: &str, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{file_name}.");
    let mut backups: Vec<(u128, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix)
                .and_then(|s| s.parse::<u128>().ok())
                .map(|t| (t, e.path()))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for (_, p) in backups.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec for `version`, a temp root holding the kube-scheduler manifest rendered for
    /// `old_version`, and the manifest's local path.
    fn setup(
        old_version: &str,
        version: &str,
    ) -> (tempfile::TempDir, HostRoot, ClusterSpec, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        let mut spec = crate::config::defaults_for("cp1", "192.0.2.10".parse().unwrap());
        spec.plinth.state_dir = "/var/lib/plinth".into();
        spec.kubernetes_version = crate::config::validate::parse_kube_version(old_version).unwrap();
        let ctx = manifests::RenderContext::for_node(&root, &spec);
        let old = manifests::render(&spec, Component::KubeScheduler, &ctx).unwrap();
        let path = root
            .path(&spec.plinth.manifests_dir)
            .join(Component::KubeScheduler.file_name());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &old.yaml).unwrap();
        spec.kubernetes_version = crate::config::validate::parse_kube_version(version).unwrap();
        (dir, root, spec, path)
    }

    fn opts(diff_only: bool) -> Options {
        Options {
            diff_only,
            timeout: Duration::from_secs(1),
            max_restarts: 1,
        }
    }

    #[tokio::test]
    async fn regenerate_diff_shows_image_change() {
        let (_d, root, spec, _path) = setup("v1.24.0", "v1.24.1");
        let report = regenerate(&spec, &root, Component::KubeScheduler, &opts(true), |_| {})
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::DiffOnly);
        assert!(
            report
                .diff
                .iter()
                .any(|l| l.contains("image (kube-scheduler)")
                    && l.contains(":v1.24.0 → ")
                    && l.ends_with(":v1.24.1")),
            "{:?}",
            report.diff
        );
    }

    #[test]
    fn diff_covers_probes_env_resources_and_labels_by_name() {
        let old: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i:1", "command": ["b", "--x=1"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "livenessProbe": {"httpGet": {"path": "/livez", "port": 1}},
                "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .unwrap();
        let new: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"a": "2"}},
            "spec": {"containers": [{"name": "c", "image": "i:1", "command": ["b", "--x=2"],
                "env": [{"name": "B", "value": "3"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 1}},
                "resources": {"requests": {"cpu": "200m"}}}]}
        }))
        .unwrap();
        let yaml = serde_json::to_string(&old).unwrap();
        let lines: Vec<String> = manifest_changes(Some(&yaml), &new, "p.yaml")
            .iter()
            .map(|c| c.to_string())
            .collect();
        for want in [
            "~ --x: 1 → 2",
            "~ metadata.labels.a: 1 → 2",
            "~ spec.containers[c].env[B].value: 2 → 3",
            "- spec.containers[c].env[A]: {\"name\":\"A\",\"value\":\"1\"}",
            "~ spec.containers[c].livenessProbe.httpGet.path: /livez → /healthz",
            "~ spec.containers[c].resources.requests.cpu: 100m → 200m",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "{want:?} not in {lines:#?}"
            );
        }
    }

    /// A fake `kube-scheduler` printing `version` for `--version`.
    fn fake_binary(dir: &Path, version: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("kube-scheduler");
        std::fs::write(&p, format!("#!/bin/sh\necho 'Kubernetes {version}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn regenerate_refuses_image_change_the_binary_does_not_match() {
        let (_d, root, mut spec, path) = setup("v1.24.0", "v1.24.1");
        let bin = tempfile::tempdir().unwrap();
        fake_binary(bin.path(), "v1.24.0-alpha.1");
        spec.plinth.bin_path = vec![bin.path().to_path_buf()];
        let before = std::fs::read(&path).unwrap();

        // --diff shows the change and warns.
        let report = regenerate(&spec, &root, Component::KubeScheduler, &opts(true), |_| {})
            .await
            .unwrap();
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        let w = &report.warnings[0];
        assert!(
            w.contains("v1.24.1") && w.contains("v1.24.0-alpha.1"),
            "{w}"
        );
        assert!(
            w.contains(&bin.path().join("kube-scheduler").display().to_string()),
            "{w}"
        );

        // The real run refuses and changes nothing.
        let mut lines = Vec::new();
        let err = regenerate(&spec, &root, Component::KubeScheduler, &opts(false), |l| {
            lines.push(l.to_string())
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("refusing a restart that changes nothing"),
            "{err}"
        );
        assert!(err.contains("v1.24.0-alpha.1"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(
            !root.path(backup_dir(&spec)).exists(),
            "no backup on refusal"
        );

        // A binary of the image's version: no warning.
        fake_binary(bin.path(), "v1.24.1");
        let report = regenerate(&spec, &root, Component::KubeScheduler, &opts(true), |_| {})
            .await
            .unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn prune_keeps_the_newest_backups() {
        let d = tempfile::tempdir().unwrap();
        for t in 1..=8 {
            std::fs::write(d.path().join(format!("etcd.yaml.{t}")), "x").unwrap();
        }
        std::fs::write(d.path().join("kube-apiserver.yaml.1"), "x").unwrap();
        prune(d.path(), "etcd.yaml", 5);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "etcd.yaml.4",
                "etcd.yaml.5",
                "etcd.yaml.6",
                "etcd.yaml.7",
                "etcd.yaml.8",
                "kube-apiserver.yaml.1"
            ]
        );
    }
}
