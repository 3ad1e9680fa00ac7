//! Binary provisioning: the control-plane binaries (kube-apiserver, kube-controller-manager,
//! kube-scheduler, etcd) and kubectl for the configured versions, found on `binPath`/`$PATH`
//! when they hold the right version, else in the cache, else downloaded from the release
//! repositories, verified and cached.
//!
//! - [`repo`]: the repository layouts, URLs, host architecture and versions (etcd's paired
//!   with the Kubernetes minor as kubeadm does).
//! - [`download`]: HTTP(S)/`file://` fetches with retry, backoff, resume, proxy and CA.
//! - [`verify`]: SHA-256, ELF architecture, `--version`.
//! - [`cache`]: `<stateDir>/bin/<component>/<version>/<name>`, atomic installs.
//! - [`tarball`]: etcd's release tarball.
//!
//! The agent runs a container's cached binary when the pod's image tag names a cached
//! version ([`image_executable`]), so the manifests stay exactly kubeadm's (`command:
//! kube-apiserver`) whichever way the binary got onto the host.

pub mod cache;
pub mod download;
pub mod repo;
pub mod tarball;
pub mod verify;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::ClusterSpec;
use crate::fs::HostRoot;

pub use cache::{Cache, Entry};
pub use download::{FetchOptions, Fetcher, Observer, ProxyEnv, Quiet};

/// Why a binary could not be provided. Every variant about a download names its URL and what
/// was expected.
#[derive(Debug, thiserror::Error)]
pub enum BinariesError {
    /// 404 (or a missing `file://` path).
    #[error("{url}: not found (HTTP 404): the repository has no {expected}; check the version and binaryRepository/etcdBinaryRepository")]
    NotFound {
        /// URL.
        url: String,
        /// What was expected there.
        expected: String,
    },
    /// Another unexpected HTTP status.
    #[error("{url}: HTTP {status}, expected 200 with {expected}{}", attempts_note(*attempts))]
    HttpStatus {
        /// URL.
        url: String,
        /// Status code.
        status: u16,
        /// What was expected.
        expected: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A redirect loop or too many redirects.
    #[error("{url}: redirect loop or too many redirects (at most 10 are followed): {detail}")]
    Redirect {
        /// URL.
        url: String,
        /// reqwest's account.
        detail: String,
    },
    /// The body ended before its announced length, or the connection broke.
    #[error("{url}: download interrupted after {received} of {} bytes: {detail}{}", expected.map(|e| e.to_string()).unwrap_or_else(|| "an unknown number of".into()), attempts_note(*attempts))]
    Truncated {
        /// URL.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        expected: Option<u64>,
        /// What happened.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Connection-level failure.
    #[error("{url}: {detail}{}", attempts_note(*attempts))]
    Transport {
        /// URL.
        url: String,
        /// What happened.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The SHA-256 of the download is not the published one.
    #[error("{url}: sha256 mismatch: expected {expected} (from {sum_url}), got {actual}")]
    Checksum {
        /// URL of the binary or tarball.
        url: String,
        /// URL of the checksum.
        sum_url: String,
        /// Published digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// The checksum file has no digest for the file.
    #[error("{sum_url}: no sha256 for {file} in it (expected a 64-hex-digit digest)")]
    NoChecksum {
        /// URL of the checksum.
        sum_url: String,
        /// The file it should cover.
        file: String,
    },
    /// An ELF file for another architecture, or not an executable at all.
    #[error("{url}: {name} is {actual}, expected an ELF executable for linux/{expected} (or a #! script)")]
    WrongArch {
        /// URL.
        url: String,
        /// Executable name.
        name: String,
        /// This host's architecture.
        expected: String,
        /// What the file is.
        actual: String,
    },
    /// `--version` disagrees with the version asked for.
    #[error("{url}: `{name} {args}` reports {actual}, expected {expected}")]
    Version {
        /// URL.
        url: String,
        /// Executable name.
        name: String,
        /// The version arguments used.
        args: String,
        /// Wanted version.
        expected: String,
        /// Reported version (or why none).
        actual: String,
    },
    /// The etcd tarball lacks an executable.
    #[error("{url}: the tarball has no {missing} (expected {expected})")]
    Tarball {
        /// URL.
        url: String,
        /// Missing names.
        missing: String,
        /// Expected content.
        expected: String,
    },
    /// Something that cannot be what was expected (e.g. a huge checksum file).
    #[error("{url}: {detail}")]
    Invalid {
        /// URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// `--offline` and binaries are missing.
    #[error("--offline: not downloading; missing on this host (not on the bin path in the right version, not in the cache {cache}):\n{}\nCopy them into {cache}/<component>/<version>/, put them on binPath, or run without --offline (binaryRepository/etcdBinaryRepository may point at a mirror: https, http on loopback, or file://)", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Offline {
        /// `component version (url)` lines.
        missing: Vec<String>,
        /// Host path of the cache.
        cache: String,
    },
    /// A component missing from the host that could not be downloaded.
    #[error("{component} {version} not found in {searched} in that version nor in the cache {cache}, and downloading it failed")]
    Component {
        /// Component.
        component: String,
        /// Version.
        version: String,
        /// The bin path searched (`$PATH` when empty).
        searched: String,
        /// Host path of the cache.
        cache: String,
        /// The download's failure.
        #[source]
        source: Box<BinariesError>,
    },
    /// The CA bundle cannot be used.
    #[error("binaryRepositoryCABundle {}: {detail}", path.display())]
    CaBundle {
        /// Path.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// No release binaries for this architecture.
    #[error("no Kubernetes release binaries for this host's architecture {0} (supported: amd64, arm64, arm, ppc64le, s390x)")]
    Arch(String),
    /// A local file operation.
    #[error("{}: {detail}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        detail: String,
    },
}

fn attempts_note(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} attempts)")
    } else {
        String::new()
    }
}

impl BinariesError {
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            BinariesError::HttpStatus { attempts, .. }
            | BinariesError::Truncated { attempts, .. }
            | BinariesError::Transport { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    /// The URL the error is about, when it is about a download.
    pub fn url(&self) -> Option<&str> {
        match self {
            BinariesError::NotFound { url, .. }
            | BinariesError::HttpStatus { url, .. }
            | BinariesError::Redirect { url, .. }
            | BinariesError::Truncated { url, .. }
            | BinariesError::Transport { url, .. }
            | BinariesError::Checksum { url, .. }
            | BinariesError::WrongArch { url, .. }
            | BinariesError::Version { url, .. }
            | BinariesError::Tarball { url, .. }
            | BinariesError::Invalid { url, .. } => Some(url),
            BinariesError::NoChecksum { sum_url, .. } => Some(sum_url),
            BinariesError::Component { source, .. } => source.url(),
            _ => None,
        }
    }
}

/// How a component is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `<repo>/<version>/bin/linux/<arch>/<name>` + `.sha256`.
    Kubernetes,
    /// `<etcdRepo>/<version>/etcd-<version>-linux-<arch>.tar.gz` + `SHA256SUMS`.
    Etcd,
}

/// One component at one version: the executables it provides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// Component (`kube-apiserver`, `etcd`, `kubectl`): the cache dir name.
    pub component: String,
    /// Release version (`v1.24.0`, `v3.5.3`).
    pub version: String,
    /// Executables, the one that runs first (`etcd`, then `etcdctl`).
    pub names: Vec<String>,
    /// Publication layout.
    pub layout: Layout,
}

impl Artifact {
    fn kubernetes(name: &str, version: &str) -> Artifact {
        Artifact {
            component: name.into(),
            version: version.into(),
            names: vec![name.into()],
            layout: Layout::Kubernetes,
        }
    }

    /// The arguments that make `name` print its version (`kubectl version --client -o json`,
    /// `etcdctl version`, else `--version`).
    pub fn version_args(name: &str) -> &'static [&'static str] {
        match name {
            "kubectl" => &["version", "--client", "-o", "json"],
            "etcdctl" => &["version"],
            _ => &["--version"],
        }
    }
}

/// The binaries the control plane of `spec` runs: the three components at
/// `kubernetesVersion`, and etcd (with etcdctl) at its version when etcd is local.
pub fn control_plane_artifacts(spec: &ClusterSpec) -> Vec<Artifact> {
    let v = spec.kubernetes_version.to_string();
    let mut out: Vec<Artifact> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .map(|n| Artifact::kubernetes(n, &v))
    .collect();
    if let Some(ev) = repo::etcd_version(spec) {
        out.push(Artifact {
            component: "etcd".into(),
            version: ev,
            names: vec!["etcd".into(), "etcdctl".into()],
            layout: Layout::Etcd,
        });
    }
    out
}

/// kubectl at `kubernetesVersion`, for the operator.
pub fn kubectl_artifact(spec: &ClusterSpec) -> Artifact {
    Artifact::kubernetes("kubectl", &spec.kubernetes_version.to_string())
}

/// Where binaries are fetched from, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Kubernetes release repository.
    pub repository: String,
    /// etcd release repository.
    pub etcd_repository: String,
    /// Extra CA certificates (local path) for a private mirror.
    pub ca_bundle: Option<PathBuf>,
    /// Release architecture (`amd64`).
    pub arch: String,
    /// Refuse any download.
    pub offline: bool,
    /// Retries and timeouts.
    pub fetch: FetchOptions,
    /// Proxy settings.
    pub proxy: ProxyEnv,
}

impl Settings {
    /// From the spec's `binaryRepository`, `etcdBinaryRepository`, `binaryRepositoryCABundle`
    /// (mapped under `root`), the host architecture and the environment.
    pub fn for_spec(
        spec: &ClusterSpec,
        root: &HostRoot,
        offline: bool,
    ) -> Result<Settings, BinariesError> {
        let arch =
            repo::host_arch().ok_or_else(|| BinariesError::Arch(std::env::consts::ARCH.into()))?;
        Ok(Settings {
            repository: spec.plinth.binary_repository.clone(),
            etcd_repository: spec.plinth.etcd_binary_repository.clone(),
            ca_bundle: spec
                .plinth
                .binary_repository_ca_bundle
                .as_ref()
                .map(|p| root.path(p)),
            arch: arch.into(),
            offline,
            fetch: FetchOptions::from_env(),
            proxy: ProxyEnv::from_env(),
        })
    }

    /// The URLs `a` is fetched from: (file, its checksum) pairs.
    pub fn urls(&self, a: &Artifact) -> Vec<(String, String)> {
        match a.layout {
            Layout::Kubernetes => a
                .names
                .iter()
                .map(|n| {
                    let u = repo::kubernetes_url(&self.repository, &a.version, &self.arch, n);
                    let s = format!("{u}.sha256");
                    (u, s)
                })
                .collect(),
            Layout::Etcd => vec![(
                repo::etcd_tarball_url(&self.etcd_repository, &a.version, &self.arch),
                repo::etcd_sums_url(&self.etcd_repository, &a.version),
            )],
        }
    }
}

/// Where a component's binary comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// On `binPath`/`$PATH` in the right version.
    BinPath,
    /// Already in the cache.
    Cache,
    /// Downloaded now.
    Downloaded,
    /// Missing; a dry run would download it.
    WouldDownload,
}

/// A component and where its executables are.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolved {
    /// What.
    pub artifact: Artifact,
    /// From where.
    pub source: Source,
    /// Local paths of its executables (empty for [`Source::WouldDownload`]).
    pub paths: Vec<PathBuf>,
    /// The URLs it was (or would be) fetched from.
    pub urls: Vec<String>,
}

impl Resolved {
    /// The line init and `plinth binaries pull` print for it: `<prefix> <component> <version>:`
    /// where it is (or, in a dry run, what would be downloaded where).
    pub fn describe(&self, prefix: &str, root: &HostRoot, cache: &Cache) -> String {
        let a = &self.artifact;
        let paths = self
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match self.source {
            Source::BinPath => format!("{prefix} {} {}: {paths}", a.component, a.version),
            Source::Cache => format!("{prefix} {} {}: cached {paths}", a.component, a.version),
            Source::Downloaded => format!(
                "{prefix} {} {}: downloaded from {}, sha256 verified, cached {paths}",
                a.component,
                a.version,
                self.urls.join(", ")
            ),
            Source::WouldDownload => format!(
                "[dry-run] would download {} {} from {} into {}",
                a.component,
                a.version,
                self.urls.join(", "),
                root.path(cache.host_version_dir(&a.component, &a.version))
                    .display()
            ),
        }
    }
}

/// `a` on `bin_path` (or `$PATH` when empty) in its version, else in the cache.
pub fn locate(a: &Artifact, bin_path: &[PathBuf], cache: &Cache) -> Option<(Source, Vec<PathBuf>)> {
    let first = &a.names[0];
    if let Some(p) = crate::preflight::find_binary(first, bin_path) {
        let args = Artifact::version_args(first);
        match reported_version_with(&p, args) {
            Ok(v) if repo::version_matches(&v, &a.version) => {
                return Some((Source::BinPath, vec![p]));
            }
            Ok(v) => tracing::info!(
                "{} reports {v}, not {}: looking in the cache",
                p.display(),
                a.version
            ),
            Err(e) => tracing::info!("{}: {e}: looking in the cache", p.display()),
        }
    }
    cache
        .lookup(&a.component, &a.version, &a.names)
        .map(|paths| (Source::Cache, paths))
}

fn reported_version_with(path: &Path, args: &[&str]) -> Result<String, String> {
    verify::reported_version_args(path, args)
}

/// Provides every artifact: located ([`locate`]) or downloaded into the cache. With
/// `settings.offline` nothing is downloaded and the missing ones are one error; with
/// `dry_run` they are reported as [`Source::WouldDownload`]. Stops at the first failure, with
/// nothing of the failed component left in the cache.
pub async fn ensure(
    artifacts: &[Artifact],
    bin_path: &[PathBuf],
    cache: &Cache,
    settings: &Settings,
    dry_run: bool,
    obs: &dyn Observer,
) -> Result<Vec<Resolved>, BinariesError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for a in artifacts {
        let urls: Vec<String> = settings.urls(a).into_iter().map(|(u, _)| u).collect();
        match locate(a, bin_path, cache) {
            Some((source, paths)) => out.push(Resolved {
                artifact: a.clone(),
                source,
                paths,
                urls,
            }),
            None => missing.push((a.clone(), urls)),
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    if settings.offline {
        return Err(BinariesError::Offline {
            missing: missing
                .iter()
                .map(|(a, urls)| format!("{} {} ({})", a.component, a.version, urls.join(", ")))
                .collect(),
            cache: cache.host_dir(),
        });
    }
    if dry_run {
        for (a, urls) in missing {
            out.push(Resolved {
                artifact: a,
                source: Source::WouldDownload,
                paths: vec![],
                urls,
            });
        }
        return Ok(out);
    }
    let fetcher = Fetcher::new(
        settings.ca_bundle.as_deref(),
        settings.proxy.clone(),
        settings.fetch.clone(),
    )?;
    let searched = if bin_path.is_empty() {
        "$PATH".to_string()
    } else {
        bin_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    for (a, urls) in missing {
        let paths = download(&a, &fetcher, settings, cache, obs)
            .await
            .map_err(|e| BinariesError::Component {
                component: a.component.clone(),
                version: a.version.clone(),
                searched: searched.clone(),
                cache: cache.host_dir(),
                source: Box::new(e),
            })?;
        out.push(Resolved {
            artifact: a,
            source: Source::Downloaded,
            paths,
            urls,
        });
    }
    Ok(out)
}

/// Downloads, verifies and installs one artifact into the cache; returns the installed paths.
pub async fn download(
    a: &Artifact,
    fetcher: &Fetcher,
    settings: &Settings,
    cache: &Cache,
    obs: &dyn Observer,
) -> Result<Vec<PathBuf>, BinariesError> {
    let mut staging = cache.stage(&a.component, &a.version)?;
    match a.layout {
        Layout::Kubernetes => {
            for ((url, sum_url), name) in settings.urls(a).into_iter().zip(&a.names) {
                let what = format!("{name} {} for linux/{}", a.version, settings.arch);
                let sum_text = fetcher
                    .fetch_text(&sum_url, &format!("the sha256 of {what}"))
                    .await?;
                let expected = verify::parse_sha256_file(&sum_text).ok_or_else(|| {
                    BinariesError::NoChecksum {
                        sum_url: sum_url.clone(),
                        file: name.clone(),
                    }
                })?;
                let (mut file, tmp) = staging.temp_file(name)?;
                fetcher.fetch_to(&url, &what, &mut file, &tmp, obs).await?;
                drop(file);
                check_sha(&url, &sum_url, &tmp, &expected)?;
                check_executable(&url, name, &tmp, settings, &a.version)?;
            }
        }
        Layout::Etcd => {
            let (url, sum_url) = settings.urls(a).remove(0);
            let tar_name = repo::etcd_tarball_name(&a.version, &settings.arch);
            let sums = fetcher
                .fetch_text(&sum_url, &format!("the SHA256SUMS of etcd {}", a.version))
                .await?;
            let expected = verify::parse_sha256sums(&sums, &tar_name).ok_or_else(|| {
                BinariesError::NoChecksum {
                    sum_url: sum_url.clone(),
                    file: tar_name.clone(),
                }
            })?;
            let (mut file, tarball) = staging.scratch_file(&tar_name)?;
            let what = format!(
                "etcd {} for linux/{} ({tar_name})",
                a.version, settings.arch
            );
            fetcher
                .fetch_to(&url, &what, &mut file, &tarball, obs)
                .await?;
            drop(file);
            check_sha(&url, &sum_url, &tarball, &expected)?;
            let mut temps = std::collections::BTreeMap::new();
            for n in &a.names {
                temps.insert(n.clone(), staging.temp_file(n)?);
            }
            let missing = tarball::extract(&tarball, &a.names, |name, r| {
                let (f, _) = temps.get_mut(name).expect("asked for");
                std::io::copy(r, f).map(|_| ())
            })
            .map_err(|e| BinariesError::Invalid {
                url: url.clone(),
                detail: format!("not a readable gzip'd tar archive: {e}"),
            })?;
            if !missing.is_empty() {
                return Err(BinariesError::Tarball {
                    url,
                    missing: missing.join(", "),
                    expected: a.names.join(" and "),
                });
            }
            for (n, (f, p)) in temps {
                drop(f);
                check_executable(&url, &n, &p, settings, &a.version)?;
            }
        }
    }
    staging.commit()
}

fn check_sha(url: &str, sum_url: &str, path: &Path, expected: &str) -> Result<(), BinariesError> {
    let actual = verify::sha256_file(path).map_err(|e| download::io_err(path, e))?;
    if actual != expected {
        return Err(BinariesError::Checksum {
            url: url.into(),
            sum_url: sum_url.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// The architecture and `--version` checks of a downloaded executable (at a temp path).
fn check_executable(
    url: &str,
    name: &str,
    path: &Path,
    settings: &Settings,
    version: &str,
) -> Result<(), BinariesError> {
    use std::os::unix::fs::PermissionsExt;
    let kind = verify::classify_file(path).map_err(|e| download::io_err(path, e))?;
    verify::check_arch(&kind, &settings.arch).map_err(|actual| BinariesError::WrongArch {
        url: url.into(),
        name: name.into(),
        expected: settings.arch.clone(),
        actual,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| download::io_err(path, e))?;
    let args = Artifact::version_args(name);
    let reported = verify::reported_version_args(path, args);
    match reported {
        Ok(v) if repo::version_matches(&v, version) => Ok(()),
        Ok(v) => Err(BinariesError::Version {
            url: url.into(),
            name: name.into(),
            args: args.join(" "),
            expected: version.into(),
            actual: v,
        }),
        Err(e) => Err(BinariesError::Version {
            url: url.into(),
            name: name.into(),
            args: args.join(" "),
            expected: version.into(),
            actual: e,
        }),
    }
}

// The cache layout the agent shares lives below both (the agent never imports this module).
pub use crate::binlayout::{image_component_version, image_executable};

/// The (component, version) pairs in use on this host: what `spec` runs (and its kubectl),
/// plus every image of a manifest in the manifest dir.
pub fn in_use(spec: &ClusterSpec, root: &HostRoot) -> BTreeSet<(String, String)> {
    let mut set: BTreeSet<(String, String)> = control_plane_artifacts(spec)
        .into_iter()
        .chain([kubectl_artifact(spec)])
        .map(|a| (a.component, a.version))
        .collect();
    let dir = root.path(&spec.plinth.manifests_dir);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok(pod) = crate::manifests::parse_manifest(&text) else {
                continue;
            };
            let containers = pod.spec.map(|s| s.containers).unwrap_or_default();
            for c in containers {
                if let Some(cv) = c.image.as_deref().and_then(image_component_version) {
                    set.insert(cv);
                }
            }
        }
    }
    set
}

/// Removes every cached version not in `keep` (all of them with `dry_run` false); returns
/// what was (or would be) removed.
pub fn prune(
    cache: &Cache,
    keep: &BTreeSet<(String, String)>,
    dry_run: bool,
) -> Result<Vec<Entry>, BinariesError> {
    let mut removed = Vec::new();
    for e in cache.entries() {
        if keep.contains(&(e.component.clone(), e.version.clone())) {
            continue;
        }
        if !dry_run {
            cache.remove(&e.component, &e.version)?;
        }
        removed.push(e);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_map_to_cache_entries() {
        assert_eq!(
            image_component_version("registry.k8s.io/etcd:3.5.1-0"),
            Some(("etcd".into(), "v3.5.1".into()))
        );
        assert_eq!(
            image_component_version("my.reg:5000/k8s/kube-apiserver:v1.24.0"),
            Some(("kube-apiserver".into(), "v1.24.0".into()))
        );
        assert_eq!(image_component_version("my.reg:5000/kube-apiserver"), None);
    }

    #[test]
    fn control_plane_artifacts_follow_the_spec() {
        let mut spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        spec.kubernetes_version = crate::config::validate::parse_kube_version("v1.24.0").unwrap();
        let a = control_plane_artifacts(&spec);
        let names: Vec<(&str, &str)> = a
            .iter()
            .map(|a| (a.component.as_str(), a.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("kube-apiserver", "v1.24.0"),
                ("kube-controller-manager", "v1.24.0"),
                ("kube-scheduler", "v1.24.0"),
                ("etcd", "v3.5.3"),
            ]
        );
        assert_eq!(a[3].names, ["etcd", "etcdctl"]);
    }

    #[test]
    fn the_agent_finds_a_cached_binary_by_image_tag() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        let cache = Cache::new(&root, "/var/lib/plinth");
        let mut s = cache.stage("etcd", "v3.5.1").unwrap();
        s.temp_file("etcd").unwrap();
        s.commit().unwrap();
        let state = Path::new("/var/lib/plinth");
        assert_eq!(
            image_executable(&root, state, "registry.k8s.io/etcd:3.5.1-0", "etcd"),
            Some(cache.path("etcd", "v3.5.1", "etcd"))
        );
        assert_eq!(
            image_executable(&root, state, "registry.k8s.io/etcd:3.5.3-0", "etcd"),
            None
        );
        assert_eq!(
            image_executable(&root, state, "registry.k8s.io/etcd:3.5.1-0", "/bin/etcd"),
            None
        );
    }

    #[test]
    fn offline_lists_every_missing_binary_with_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(dir.path()));
        let cache = Cache::new(&root, "/var/lib/plinth");
        let mut spec = crate::config::defaults_for("n", "127.0.0.1".parse().unwrap());
        spec.kubernetes_version = crate::config::validate::parse_kube_version("v1.24.0").unwrap();
        let settings = Settings::for_spec(&spec, &root, true).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(ensure(
                &control_plane_artifacts(&spec),
                &[empty.path().to_path_buf()],
                &cache,
                &settings,
                false,
                &Quiet,
            ))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--offline"), "{e}");
        for want in [
            "kube-apiserver v1.24.0 (https://dl.k8s.io/release/v1.24.0/bin/linux/",
            "kube-scheduler v1.24.0",
            "etcd v3.5.3 (https://github.com/etcd-io/etcd/releases/download/v3.5.3/etcd-v3.5.3-linux-",
            "/var/lib/plinth/bin",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
