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
    /// Rendering failed (nothing was changed).
    #[error(transparent)]
    Init(#[from] crate::init::InitError),
    /// Rendering failed (nothing was changed).
    #[error(transparent)]
    Manifest(#[from] crate::manifests::ManifestError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    /// Health checking could not run.
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
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
    /// Flag-level changes (`+ --x=1`, `- --y`, `~ --z: a → b`).
    pub diff: Vec<String>,
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
    let ctx = crate::init::render_context(spec, root, opts.diff_only)?;
    let new = manifests::render(spec, component, &ctx)?;
    let path = root
        .path(&spec.plinth.manifests_dir)
        .join(component.file_name());
    let old_text = fs::read_optional(&path)?.map(|b| String::from_utf8_lossy(&b).into_owned());
    let diff = match old_text.as_deref().map(manifests::parse_manifest) {
        Some(Ok(old_pod)) => manifests::flag_diff(&old_pod, &new.pod)
            .iter()
            .map(|c| c.to_string())
            .collect(),
        _ => vec![format!("+ {} (new file)", component.file_name())],
    };
    let mut report = Report {
        component: component.name().to_string(),
        diff,
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
    manifests::write(root, spec, std::slice::from_ref(&new), false)?;
    progress(&format!(
        "[regenerate] wrote the new {}; waiting for the new pod",
        component.file_name()
    ));
    let node_ip = spec.advertise_address;
    match wait_new_pod(
        spec,
        root,
        &new.pod,
        &path,
        node_ip,
        opts,
        NEW_POD_QUICK_EXITS,
    )
    .await?
    {
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
            fs::write_atomic(&path, old.as_bytes(), fs::MODE_PRIVATE)?;
            let old_pod = manifests::parse_manifest(&old)?;
            let restored = wait_new_pod(
                spec,
                root,
                &old_pod,
                &path,
                node_ip,
                opts,
                health::FATAL_AFTER,
            );
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
    node_ip: std::net::IpAddr,
    opts: &Options,
    quick_exits: u32,
) -> Result<Result<(), String>, RegenerateError> {
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
        let pods = health::agent_pods(&client, &crate::init::agent_addr(spec)).await;
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
                if v.restarts >= opts.max_restarts && !v.running {
                    return Ok(Err(format!(
                        "crash-looping: {} restarts, last exit code {}",
                        v.restarts,
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
