//! `plinth verify`: one row per check (pass / warn / fail, with the reason) over the running
//! control plane: agent pods, health endpoints, certificates, kubeconfig authentication,
//! file modes and owners, and etcd member health through the healthcheck client cert.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::config::ClusterSpec;
use crate::fs::HostRoot;
use crate::health;
use crate::manifests::{self, Component};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Pass,
    /// Passed with a concern.
    Warn,
    /// Failed.
    Fail,
}

/// One row of the verify report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Group: pod, health, cert, kubeconfig, file, etcd.
    pub category: String,
    /// What was checked.
    pub name: String,
    /// Verdict.
    pub status: Status,
    /// Why.
    pub reason: String,
}

fn row(
    category: &str,
    name: impl Into<String>,
    status: Status,
    reason: impl Into<String>,
) -> Check {
    Check {
        category: category.into(),
        name: name.into(),
        status,
        reason: reason.into(),
    }
}

/// Certificates expiring sooner than this are a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// Runs every check.
pub async fn run(spec: &ClusterSpec, root: &HostRoot) -> Vec<Check> {
    let mut out = Vec::new();
    let manifests_dir = root.path(&spec.plinth.manifests_dir);
    let components: Vec<Component> = Component::all()
        .into_iter()
        .filter(|c| *c != Component::Etcd || spec.has_local_etcd())
        .collect();
    // Pods and health.
    let client = match health::insecure_client(Duration::from_secs(3)) {
        Ok(c) => c,
        Err(e) => return vec![row("health", "http client", Status::Fail, e.to_string())],
    };
    let pods = health::agent_pods(&client, &spec.plinth.agent_status_addr()).await;
    if let Err(e) = &pods {
        out.push(row("pod", "agent", Status::Fail, e.to_string()));
    }
    for c in &components {
        let path = manifests_dir.join(c.file_name());
        let pod = match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| manifests::parse_manifest(&t).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                out.push(row(
                    "pod",
                    c.name(),
                    Status::Fail,
                    format!("{}: {e}", path.display()),
                ));
                continue;
            }
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let health = match health::target_for(&pod, spec.advertise_address) {
            Ok(t) => {
                let r = health::check(&client, &t.url).await;
                (t.url, r)
            }
            Err(e) => (String::new(), Err(e.to_string())),
        };
        if let Ok(list) = &pods {
            out.push(match health::agent_view(list, &pod_name, &spec.node_name) {
                Some(v) if v.running && v.ready => {
                    row("pod", c.name(), Status::Pass, format!("{} running and Ready (restarts {})", v.pod, v.restarts))
                }
                // Kubelet semantics: Ready waits for the startup probe's initialDelaySeconds even
                // when the component already serves healthy. That is a warning, not a failure.
                Some(v) if v.running && health.1.is_ok() => row(
                    "pod",
                    c.name(),
                    Status::Warn,
                    format!("{} running and healthy; the agent reports Ready once its startup probe has run", v.pod),
                ),
                Some(v) => row("pod", c.name(), Status::Fail, format!("{}: {}, ready={}", v.pod, v.state, v.ready)),
                None => row("pod", c.name(), Status::Fail, format!("the agent runs no pod {pod_name}-{}", spec.node_name)),
            });
        }
        out.push(match health {
            (url, Ok(())) => row("health", c.name(), Status::Pass, format!("{url} ok")),
            (url, Err(e)) if url.is_empty() => row("health", c.name(), Status::Fail, e),
            (url, Err(e)) => row("health", c.name(), Status::Fail, format!("{url}: {e}")),
        });
    }
    out.extend(cert_checks(spec, root));
    out.extend(kubeconfig_checks(spec, root).await);
    out.extend(file_checks(spec, root));
    if spec.has_local_etcd() {
        out.push(etcd_health(spec, root).await);
    }
    out
}

/// Certificate checks: chain, key match, SAN coverage, expiry.
pub fn cert_checks(spec: &ClusterSpec, root: &HostRoot) -> Vec<Check> {
    let statuses = match crate::pki::inspect(spec, root) {
        Ok(s) => s,
        Err(e) => return vec![row("cert", "pki", Status::Fail, e.to_string())],
    };
    statuses
        .into_iter()
        .map(|s| {
            let mut problems = Vec::new();
            if !s.chains_to_ca {
                problems.push(format!(
                    "does not chain to {}",
                    s.ca_name.clone().unwrap_or_else(|| "its CA".into())
                ));
            }
            if !s.key_matches && !s.externally_managed {
                problems.push("key does not match the certificate".to_string());
            }
            if !s.present {
                problems.push(format!("{} is missing", s.cert_path.display()));
            }
            if !s.missing_sans.is_empty() {
                problems.push(format!("SANs do not cover {}", s.missing_sans.join(", ")));
            }
            let days = s.residual.whole_days();
            if days < 0 {
                problems.push(format!("expired {} days ago", -days));
            }
            if !problems.is_empty() {
                row("cert", &s.name, Status::Fail, problems.join("; "))
            } else if (days as u64) * 86400 < EXPIRY_WARNING.as_secs() {
                row(
                    "cert",
                    &s.name,
                    Status::Warn,
                    format!("expires in {days} days"),
                )
            } else {
                row(
                    "cert",
                    &s.name,
                    Status::Pass,
                    format!("valid, expires in {days} days"),
                )
            }
        })
        .collect()
}

/// The kubeconfig files plinth writes (pki/profiles.yaml's list).
fn kubeconfig_files(spec: &ClusterSpec) -> Vec<String> {
    crate::kubeconfig::profiles(spec)
        .into_iter()
        .map(|k| k.file)
        .collect()
}

/// Each kubeconfig authenticates: GET /version on its server with its client cert.
pub async fn kubeconfig_checks(spec: &ClusterSpec, root: &HostRoot) -> Vec<Check> {
    let mut out = Vec::new();
    for name in kubeconfig_files(spec) {
        let path = root.path(format!(
            "{}/{name}",
            spec.plinth.kubeconfig_dir.trim_end_matches('/')
        ));
        let result = async {
            let kc = crate::client::ClientConfig::load(&path).map_err(|e| e.to_string())?;
            let client = kc.http_client().map_err(|e| e.to_string())?;
            // Ask this node's apiserver: the shared endpoint may be a load balancer.
            let url = format!("{}/version", spec.local_endpoint().url());
            let resp = client
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if resp.status().is_success() {
                let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "authenticated, server {}",
                    v["gitVersion"].as_str().unwrap_or("?")
                ))
            } else {
                Err(format!("GET {url}: HTTP {}", resp.status()))
            }
        }
        .await;
        out.push(match result {
            Ok(m) => row("kubeconfig", name, Status::Pass, m),
            Err(e) => row("kubeconfig", name, Status::Fail, e),
        });
    }
    out
}

/// Expected (mode, owner uid) of the files plinth writes.
fn expected_files(spec: &ClusterSpec) -> Vec<(String, u32)> {
    let mut v = Vec::new();
    let kdir = spec.plinth.kubeconfig_dir.trim_end_matches('/');
    for k in kubeconfig_files(spec) {
        v.push((format!("{kdir}/{k}"), 0o600));
    }
    let mdir = spec.plinth.manifests_dir.trim_end_matches('/');
    v.push((mdir.to_string(), 0o700));
    for c in Component::all() {
        if c != Component::Etcd || spec.has_local_etcd() {
            v.push((format!("{mdir}/{}", c.file_name()), 0o600));
        }
    }
    v
}

/// File modes and owners: manifests, kubeconfigs, keys (0600) and certs (0644).
pub fn file_checks(spec: &ClusterSpec, root: &HostRoot) -> Vec<Check> {
    let mut out = Vec::new();
    let mut files = expected_files(spec);
    if let Ok(statuses) = crate::pki::inspect(spec, root) {
        for s in statuses {
            files.push((s.cert_path.display().to_string(), 0o644));
            if !s.externally_managed {
                files.push((s.key_path.display().to_string(), 0o600));
            }
        }
    }
    for (host, want) in files {
        out.push(mode_check(root, &host, want, spec));
    }
    out.extend(etcd_key_checks(spec, root));
    out
}

/// Under the cis profile: etcd's keys are root-owned with an ACL read grant for the etcd user
/// ([`crate::security::grant_etcd_keys`]), or — on a filesystem without ACLs — owned by it.
pub fn etcd_key_checks(spec: &ClusterSpec, root: &HostRoot) -> Vec<Check> {
    if spec.plinth.security_profile != crate::config::SecurityProfile::Cis {
        return Vec::new();
    }
    let Some((uid, _)) = crate::security::lookup_etcd_user() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for host in crate::security::etcd_key_paths(spec) {
        let name = format!("{} (etcd read access)", host.display());
        let local = root.path(&host);
        let Ok(meta) = std::fs::metadata(&local) else {
            out.push(row("file", name, Status::Fail, "missing"));
            continue;
        };
        let fix = format!(
            "run `plinth init` again, or: chown root:root {0} && setfacl -m u:etcd:r {0}",
            host.display()
        );
        let acl = match crate::acl::get(&local) {
            Ok(a) => a,
            Err(e) => {
                out.push(row("file", name, Status::Fail, e.to_string()));
                continue;
            }
        };
        let granted = acl
            .as_ref()
            .and_then(|a| a.user_perm(uid))
            .is_some_and(|p| p & crate::acl::READ != 0);
        let check = match (meta.uid(), granted) {
            (0, true) => row(
                "file",
                name,
                Status::Pass,
                format!("root-owned; ACL user:etcd:r-- (uid {uid}) present and effective"),
            ),
            (owner, _) if owner == uid => {
                if crate::acl::supported(&local) {
                    row(
                        "file",
                        name,
                        Status::Fail,
                        format!("owned by the etcd user (CIS 1.1.19 wants root:root); {fix}"),
                    )
                } else {
                    row(
                        "file",
                        name,
                        Status::Warn,
                        "owned by the etcd user: the filesystem does not support POSIX ACLs (CIS 1.1.19 reports it)",
                    )
                }
            }
            _ => row(
                "file",
                name,
                Status::Fail,
                format!(
                    "etcd (uid {uid}) cannot read it: no effective ACL entry user:etcd:r; {fix}"
                ),
            ),
        };
        out.push(check);
    }
    out
}

fn mode_check(root: &HostRoot, host: &str, want: u32, spec: &ClusterSpec) -> Check {
    let local = root.path(host);
    let Ok(meta) = std::fs::metadata(&local) else {
        return row("file", host, Status::Fail, "missing");
    };
    // With a POSIX ACL the group bits are its mask: compare the base mode, and allow only the
    // etcd user's read grant on etcd's keys as named entries.
    let mode = crate::acl::logical_mode(&local, &meta);
    if let Ok(Some(acl)) = crate::acl::get(&local) {
        let etcd_key = crate::security::etcd_key_paths(spec)
            .iter()
            .any(|k| k == Path::new(host));
        let etcd_uid = crate::security::lookup_etcd_user().map(|(u, _)| u);
        let extra: Vec<String> = acl
            .users
            .iter()
            .filter(|(u, p)| !(etcd_key && Some(*u) == etcd_uid && p & !crate::acl::READ == 0))
            .map(|(u, p)| format!("user:{u}:{p:o}"))
            .chain(acl.groups.iter().map(|(g, p)| format!("group:{g}:{p:o}")))
            .collect();
        if !extra.is_empty() {
            return row(
                "file",
                host,
                Status::Fail,
                format!("has ACL entries granting access: {}", extra.join(", ")),
            );
        }
    }
    let owner_ok = meta.uid() == 0 || owner_is_etcd(host, meta.uid());
    if mode & !want != 0 {
        row(
            "file",
            host,
            Status::Fail,
            format!("mode {mode:04o} is looser than {want:04o}"),
        )
    } else if !owner_ok && nix::unistd::geteuid().is_root() {
        row(
            "file",
            host,
            Status::Fail,
            format!("owned by uid {}, expected root", meta.uid()),
        )
    } else {
        row(
            "file",
            host,
            Status::Pass,
            format!("mode {mode:04o}, uid {}", meta.uid()),
        )
    }
}

fn owner_is_etcd(host: &str, uid: u32) -> bool {
    Path::new(host).to_string_lossy().contains("etcd")
        && crate::security::lookup_etcd_user().is_some_and(|(u, _)| u == uid)
}

/// etcd member health through the healthcheck client certificate (as kubeadm's probe would).
pub async fn etcd_health(spec: &ClusterSpec, root: &HostRoot) -> Check {
    let dir = root.path(&spec.certificates_dir);
    let read =
        |p: &str| std::fs::read(dir.join(p)).map_err(|e| format!("{}: {e}", dir.join(p).display()));
    let result = async {
        let ca =
            reqwest::Certificate::from_pem(&read("etcd/ca.crt")?).map_err(|e| e.to_string())?;
        let mut pem = read("etcd/healthcheck-client.crt")?;
        pem.push(b'\n');
        pem.extend(read("etcd/healthcheck-client.key")?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .identity(id)
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let url = "https://127.0.0.1:2379/health";
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        if v["health"] == "true" || v["health"] == true {
            Ok(format!(
                "{url}: healthy (mTLS as kube-etcd-healthcheck-client)"
            ))
        } else {
            Err(format!("{url}: {v}"))
        }
    }
    .await;
    match result {
        Ok(m) => row("etcd", "member health", Status::Pass, m),
        Err(e) => row("etcd", "member health", Status::Fail, e),
    }
}

/// True when no check failed.
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn loose_modes_fail_and_exact_modes_pass() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let spec = crate::config::defaults_for("cp1", "10.0.0.1".parse().unwrap());
        let p = root.path("/etc/kubernetes/admin.conf");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            mode_check(&root, "/etc/kubernetes/admin.conf", 0o600, &spec).status,
            Status::Fail
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            mode_check(&root, "/etc/kubernetes/admin.conf", 0o600, &spec).status,
            Status::Pass
        );
        assert_eq!(
            mode_check(&root, "/etc/kubernetes/nope.conf", 0o600, &spec).status,
            Status::Fail
        );
    }
}
