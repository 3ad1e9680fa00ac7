//! The file source: discovers static pod manifests in a directory (or one file) and watches it.
//!
//! Kubelet rules: every non-dotfile in the directory, sorted by name, no recursion, symlinks
//! followed, files over [`MAX_MANIFEST_BYTES`] rejected, exactly one Pod per file. A file
//! holding several YAML documents or something other than a Pod is an error naming the file
//! and the kind. Errors never abort the listing: each file carries its own result, so the
//! pod config can keep the last known good pod of a file that went bad.
//!
//! [`Watcher`] wraps inotify (on tokio's reactor) for immediate reaction; the agent also
//! relists every `fileCheckFrequency`, which catches what inotify cannot see (the target of a
//! symlink changing, a directory that appears later).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::settle::{FileEvent, FileStamp};
use crate::fs::HostRoot;

/// Manifests larger than this are rejected (kubelet's limit).
pub const MAX_MANIFEST_BYTES: u64 = 10 * 1024 * 1024;

/// A problem with one manifest file: which file, where in it (if known) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SourceError {
    /// The manifest file, as a host path (what the user wrote, without `--root`).
    pub file: PathBuf,
    /// 1-based line of the problem, when the parser knows it.
    pub line: Option<u64>,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl SourceError {
    fn new(file: &Path, line: Option<u64>, reason: impl Into<String>) -> Self {
        SourceError {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}

/// One discovered manifest file and what it parsed to.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// The host path (as the user names it; used for identity and messages).
    pub host_path: PathBuf,
    /// The parsed Pod, or why the file is not a valid one.
    pub result: Result<Pod, SourceError>,
    /// False when the file does not end with a newline: it may be truncated or still being
    /// written (the pod config then refuses to let it replace a running pod).
    pub ends_with_newline: bool,
    /// Size, times and content hash as read (`None` when unreadable), for the settle window.
    pub stamp: Option<FileStamp>,
    /// True when the error is "still being written, waiting for it to settle".
    pub settling: bool,
}

/// Lists and parses the manifests at `manifest_path` (a host path; opened under `root`).
///
/// A directory yields one entry per non-dotfile (sorted, not recursive, symlinks followed);
/// a file yields itself. Fails as a whole only when the path itself cannot be read (for
/// example it does not exist yet): the caller then keeps its last state.
pub fn list(root: &HostRoot, manifest_path: &Path) -> Result<Vec<ManifestFile>, SourceError> {
    let local = root.path(manifest_path);
    let meta = fs::metadata(&local)
        .map_err(|e| SourceError::new(manifest_path, None, format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![read_manifest(&local, manifest_path)]);
    }
    let entries = fs::read_dir(&local)
        .map_err(|e| SourceError::new(manifest_path, None, format!("cannot list: {e}")))?;
    let mut names: Vec<std::ffi::OsString> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let local_file = local.join(&name);
        let host_file = manifest_path.join(&name);
        // Follow symlinks; skip sub-directories (no recursion) and special files silently,
        // as the kubelet does, but report a dangling symlink.
        match fs::metadata(&local_file) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) if !m.is_file() => continue,
            Ok(_) => out.push(read_manifest(&local_file, &host_file)),
            Err(e) => out.push(ManifestFile {
                ends_with_newline: true,
                stamp: None,
                settling: false,
                result: Err(SourceError::new(
                    &host_file,
                    None,
                    format!("cannot read: {e}"),
                )),
                host_path: host_file,
            }),
        }
    }
    Ok(out)
}

/// Reads and parses one manifest file (`local` is opened, `host` is reported).
pub fn read_manifest(local: &Path, host: &Path) -> ManifestFile {
    let mut stamp = None;
    let bytes = read_bytes(local, host, &mut stamp);
    ManifestFile {
        host_path: host.to_path_buf(),
        ends_with_newline: bytes.as_ref().map_or(true, |b| b.ends_with(b"\n")),
        result: bytes.and_then(|b| parse_manifest(host, &b)),
        stamp,
        settling: false,
    }
}

fn read_bytes(
    local: &Path,
    host: &Path,
    stamp: &mut Option<FileStamp>,
) -> Result<Vec<u8>, SourceError> {
    let f = fs::File::open(local)
        .map_err(|e| SourceError::new(host, None, format!("cannot read: {e}")))?;
    let mut buf = Vec::new();
    // Read at most one byte more than allowed, so a file growing under us is still caught.
    (&f).take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SourceError::new(host, None, format!("cannot read: {e}")))?;
    // Stat after reading: a write that lands during the read changes the stamp, so the
    // next relist sees the file as changed.
    let sealed = crate::fs::content_sealed(&f, &buf);
    *stamp = f.metadata().ok().map(|m| FileStamp::new(&m, &buf, sealed));
    if buf.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(SourceError::new(
            host,
            None,
            format!(
                "file is larger than {} MiB; static pod manifests are limited to {MAX_MANIFEST_BYTES} bytes",
                MAX_MANIFEST_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(buf)
}

/// Parses manifest bytes into a Pod: exactly one YAML (or JSON) document of kind Pod, v1.
pub fn parse_manifest(host: &Path, bytes: &[u8]) -> Result<Pod, SourceError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        SourceError::new(
            host,
            Some(line_of_offset(bytes, e.valid_up_to())),
            "file is not valid UTF-8 text",
        )
    })?;
    if text.trim().is_empty() {
        return Err(SourceError::new(
            host,
            None,
            "file is empty; a static pod manifest holds exactly one Pod",
        ));
    }
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML").to_string();
        SourceError::new(host, line, format!("invalid YAML: {first}"))
    })?;
    let docs: Vec<serde_json::Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let doc = match docs.len() {
        0 => {
            return Err(SourceError::new(
                host,
                None,
                "file holds no YAML document; a static pod manifest holds exactly one Pod",
            ))
        }
        1 => docs.into_iter().next().unwrap_or_default(),
        n => {
            let kinds: Vec<String> = docs.iter().map(kind_of).collect();
            return Err(SourceError::new(
                host,
                None,
                format!(
                    "file holds {n} YAML documents (kinds {}); only one Pod per file: only Pods can be static pods, one per file",
                    kinds.join(", ")
                ),
            ));
        }
    };
    if !doc.is_object() {
        return Err(SourceError::new(
            host,
            Some(1),
            "document is not a mapping; expected a Pod (apiVersion: v1, kind: Pod)",
        ));
    }
    let kind = kind_of(&doc);
    if kind != "Pod" {
        return Err(SourceError::new(
            host,
            None,
            format!("kind {kind:?}: only Pods can be static pods"),
        ));
    }
    let api = doc
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("<missing>");
    if api != "v1" {
        return Err(SourceError::new(
            host,
            None,
            format!("apiVersion {api:?}: a Pod must have apiVersion \"v1\""),
        ));
    }
    serde_json::from_value::<Pod>(doc)
        .map_err(|e| SourceError::new(host, None, format!("invalid Pod: {e}")))
}

fn kind_of(doc: &serde_json::Value) -> String {
    doc.get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("<missing>")
        .to_string()
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
        + 1
}

/// Watches the manifest directory with inotify; [`Watcher::changed`] resolves on any change.
pub struct Watcher {
    fd: Option<tokio::io::unix::AsyncFd<inotify::Inotify>>,
    dir: PathBuf,
    /// Events were read but not yet reported (the future was dropped mid-way): report them
    /// on the next call, so [`Watcher::changed`] is cancel-safe.
    dirty: bool,
    /// The file events read so far (name in the watched directory, what happened).
    events: Vec<(std::ffi::OsString, FileEvent)>,
}

/// What an inotify event mask means for the file it names.
fn file_event(m: inotify::EventMask) -> FileEvent {
    use inotify::EventMask as E;
    if m.contains(E::MOVED_TO) {
        FileEvent::Renamed
    } else if m.intersects(E::CREATE | E::MODIFY | E::CLOSE_WRITE) {
        FileEvent::Written
    } else {
        FileEvent::Other
    }
}

impl Watcher {
    /// Starts watching the directory of `manifest_path` (the path itself if it is a
    /// directory, else its parent). A directory that does not exist yet is retried by
    /// [`Watcher::ensure`] on each relist.
    pub fn new(root: &HostRoot, manifest_path: &Path) -> Watcher {
        let local = root.path(manifest_path);
        let dir = if local.is_dir() {
            local
        } else {
            local.parent().map(Path::to_path_buf).unwrap_or(local)
        };
        let mut w = Watcher {
            fd: None,
            dir,
            dirty: false,
            events: Vec::new(),
        };
        w.ensure();
        w
    }

    /// (Re)installs the inotify watch if it is not in place; true when watching.
    pub fn ensure(&mut self) -> bool {
        if self.fd.is_some() {
            return true;
        }
        if !self.dir.is_dir() {
            return false;
        }
        let result = (|| -> std::io::Result<tokio::io::unix::AsyncFd<inotify::Inotify>> {
            let ino = inotify::Inotify::init()?;
            use inotify::WatchMask as M;
            ino.watches().add(
                &self.dir,
                M::CREATE
                    | M::DELETE
                    | M::MODIFY
                    | M::CLOSE_WRITE
                    | M::MOVED_FROM
                    | M::MOVED_TO
                    | M::ATTRIB
                    | M::DELETE_SELF
                    | M::MOVE_SELF,
            )?;
            // SAFETY: `ino` owns its inotify fd, which stays open until the AsyncFd (which
            // owns `ino`) deregisters it on drop.
            Ok(unsafe { tokio::io::unix::AsyncFd::register(ino) }?)
        })();
        match result {
            Ok(fd) => {
                self.fd = Some(fd);
                true
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "inotify watch failed, relying on periodic relist: {e}");
                false
            }
        }
    }

    /// Waits for the next change in the directory, then for a short quiet period (so a burst
    /// of events, such as an editor's write-rename, causes one relist), and returns the file
    /// events in order (name in the directory, what happened). Never resolves when no watch
    /// is installed.
    /// Cancel-safe: events read by a dropped call are reported by the next one.
    pub async fn changed(&mut self) -> Vec<(std::ffi::OsString, FileEvent)> {
        let mut buf = [0u8; 4096];
        while !self.dirty {
            let Some(fd) = self.fd.as_mut() else {
                std::future::pending::<()>().await;
                return Vec::new();
            };
            let mut guard = match fd.readable_mut().await {
                Ok(g) => g,
                Err(_) => {
                    self.fd = None;
                    continue;
                }
            };
            let mut self_gone = false;
            match guard.try_io(|inner| {
                inner.get_mut().read_events(&mut buf).map(|evs| {
                    evs.map(|e| (e.mask, e.name.map(|n| n.to_os_string())))
                        .collect::<Vec<_>>()
                })
            }) {
                Ok(Ok(evs)) => {
                    let masks: Vec<inotify::EventMask> = evs.iter().map(|e| e.0).collect();
                    self.events.extend(
                        evs.into_iter()
                            .filter_map(|(m, n)| n.map(|n| (n, file_event(m)))),
                    );
                    if masks.iter().any(|m| {
                        m.intersects(
                            inotify::EventMask::DELETE_SELF
                                | inotify::EventMask::MOVE_SELF
                                | inotify::EventMask::IGNORED,
                        )
                    }) {
                        self_gone = true;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!("inotify read failed: {e}");
                    self_gone = true;
                }
                Err(_would_block) => continue,
            }
            drop(guard);
            if self_gone {
                self.fd = None;
            }
            self.dirty = true;
        }
        // Coalesce the rest of a burst (a non-blocking drain; readiness is re-checked by
        // try_io on the next call).
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Some(fd) = self.fd.as_mut() {
            while let Ok(evs) = fd.get_mut().read_events(&mut buf) {
                let mut n = 0;
                for e in evs {
                    n += 1;
                    if let Some(name) = e.name {
                        self.events.push((name.to_os_string(), file_event(e.mask)));
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
        self.dirty = false;
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '1000']\n";

    fn names(files: &[ManifestFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.host_path.display().to_string())
            .collect()
    }

    #[test]
    fn lists_sorted_non_dotfiles_without_recursion() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let m = d.path().join("etc/manifests");
        fs::create_dir_all(m.join("sub")).unwrap();
        fs::write(m.join("b.yaml"), POD).unwrap();
        fs::write(m.join("a.yaml"), POD).unwrap();
        fs::write(m.join(".hidden.yaml"), POD).unwrap();
        fs::write(m.join("sub/c.yaml"), POD).unwrap();
        std::os::unix::fs::symlink(m.join("a.yaml"), m.join("z-link.yaml")).unwrap();
        let files = list(&root, Path::new("/etc/manifests")).unwrap();
        assert_eq!(
            names(&files),
            vec![
                "/etc/manifests/a.yaml",
                "/etc/manifests/b.yaml",
                "/etc/manifests/z-link.yaml"
            ]
        );
        assert!(files.iter().all(|f| f.result.is_ok()), "{files:?}");
        assert_eq!(
            files[2].result.as_ref().unwrap().metadata.name.as_deref(),
            Some("web")
        );
    }

    #[test]
    fn single_file_path_and_missing_path() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        fs::write(d.path().join("pod.yaml"), POD).unwrap();
        let files = list(&root, Path::new("/pod.yaml")).unwrap();
        assert_eq!(names(&files), vec!["/pod.yaml"]);
        let err = list(&root, Path::new("/nope")).unwrap_err();
        assert_eq!(err.file, PathBuf::from("/nope"));
        assert!(err.reason.contains("cannot read"), "{err}");
    }

    #[test]
    fn rejects_files_over_10_mib() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let mut big = POD.to_string();
        big.push('#');
        big.push_str(&"x".repeat(MAX_MANIFEST_BYTES as usize));
        fs::write(d.path().join("big.yaml"), big).unwrap();
        let files = list(&root, Path::new("/")).unwrap();
        let err = files[0].result.as_ref().unwrap_err();
        assert_eq!(err.file, PathBuf::from("/big.yaml"));
        assert!(err.reason.contains("larger than 10 MiB"), "{err}");
    }

    #[test]
    fn multi_document_and_wrong_kind_are_errors_naming_file_and_kind() {
        let host = Path::new("/m/two.yaml");
        let two = format!("{POD}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
        let err = parse_manifest(host, two.as_bytes()).unwrap_err();
        assert_eq!(err.file, host);
        assert!(err.reason.contains("2 YAML documents"), "{err}");
        assert!(err.reason.contains("ConfigMap"), "{err}");
        assert!(err.reason.contains("only Pods can be static pods"), "{err}");

        let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n";
        let err = parse_manifest(Path::new("/m/dep.yaml"), dep.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/m/dep.yaml: kind \"Deployment\": only Pods can be static pods"
        );
        // A trailing document separator is not a second document.
        assert!(parse_manifest(host, format!("{POD}---\n").as_bytes()).is_ok());
    }

    #[test]
    fn garbage_reports_a_line() {
        let err = parse_manifest(
            Path::new("/m/bad.yaml"),
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
        )
        .unwrap_err();
        assert!(err.reason.starts_with("invalid YAML"), "{err}");
        assert!(err.line.is_some(), "{err:?}");
        let err = parse_manifest(Path::new("/m/e.yaml"), b"  \n").unwrap_err();
        assert!(err.reason.contains("empty"), "{err}");
        let err = parse_manifest(
            Path::new("/m/t.yaml"),
            b"apiVersion: v1\nkind: Pod\nspec: 3\n",
        )
        .unwrap_err();
        assert!(err.reason.starts_with("invalid Pod"), "{err}");
    }

    #[test]
    fn plinth_sealed_manifest_is_recognised_and_an_edit_breaks_the_seal() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let p = d.path().join("a.yaml");
        crate::fs::write_atomic_sealed(&p, POD.as_bytes(), 0o600).unwrap();
        let f = read_manifest(&p, Path::new("/a.yaml"));
        if !f.stamp.unwrap().sealed {
            // No user xattrs on this filesystem: the agent falls back to the settle window.
            return;
        }
        assert!(f.result.is_ok());
        fs::write(&p, POD.replace("1000", "2000")).unwrap();
        let f = read_manifest(&p, Path::new("/a.yaml"));
        assert!(
            !f.stamp.unwrap().sealed,
            "edited in place: the seal no longer matches"
        );
        fs::write(&p, &POD[..40]).unwrap();
        assert!(
            !list(&root, Path::new("/")).unwrap()[0]
                .stamp
                .unwrap()
                .sealed
        );
        fs::write(d.path().join("b.yaml"), POD).unwrap();
        let f = read_manifest(&d.path().join("b.yaml"), Path::new("/b.yaml"));
        assert!(!f.stamp.unwrap().sealed);
    }

    #[tokio::test]
    async fn watcher_reports_a_new_file() {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path()));
        let mut w = Watcher::new(&root, Path::new("/"));
        assert!(w.ensure());
        let p = d.path().join("new.yaml");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            fs::write(p, POD).unwrap();
        });
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .expect("no inotify event within 5 s");
        writer.await.unwrap();
    }
}
