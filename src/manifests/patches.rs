//! kubeadm-compatible patches (`patches.directory`): files named
//! `target[suffix][+patchtype].extension`, where target is `etcd`, `kube-apiserver`,
//! `kube-controller-manager` or `kube-scheduler`, patchtype is `strategic` (default), `merge`
//! (RFC 7386) or `json` (RFC 6902), and extension is `json`, `yaml` or `yml`. A file may hold
//! several YAML documents, each one patch. Patches apply in lexical file-name order, after
//! rendering and before the final Pod parse.
//!
//! As in kubeadm, files with another extension are ignored, and the targets
//! `kubeletconfiguration` and `corednsdeployment` are recognized but do not apply to
//! anything plinth renders (a warning is logged). Any other target, an unknown patch type, an
//! unparsable patch or one that does not apply is an error naming the file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fs::HostRoot;

use super::{strategic, Component, ManifestError};

/// Targets kubeadm knows that plinth renders nothing for.
const FOREIGN_TARGETS: [&str; 2] = ["kubeletconfiguration", "corednsdeployment"];

/// How a patch document is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// Kubernetes strategic merge patch for a Pod (lists merged by their merge keys).
    Strategic,
    /// JSON merge patch (RFC 7386).
    Merge,
    /// JSON patch (RFC 6902).
    Json,
}

/// One patch file of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchFile {
    /// Host path of the file (as given in the config, not root-prefixed).
    pub path: PathBuf,
    /// The component it patches; `None` for kubeadm targets plinth does not render.
    pub target: Option<Component>,
    /// Patch type.
    pub patch_type: PatchType,
}

fn patch_err(file: &Path, message: impl Into<String>) -> ManifestError {
    ManifestError::Patch {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

/// Parses a patch file name; `Ok(None)` for files kubeadm ignores (other extensions).
pub fn parse_file_name(
    host_path: &Path,
) -> Result<Option<(Option<Component>, PatchType)>, ManifestError> {
    let Some(name) = host_path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return Ok(None);
    };
    if !matches!(ext, "json" | "yaml" | "yml") {
        return Ok(None);
    }
    let parts: Vec<&str> = stem.split('+').collect();
    if parts.len() > 2 {
        return Err(patch_err(
            host_path,
            "too many '+' in the file name: expected target[suffix][+patchtype].extension",
        ));
    }
    let patch_type = match parts.get(1) {
        None => PatchType::Strategic,
        Some(&"strategic") => PatchType::Strategic,
        Some(&"merge") => PatchType::Merge,
        Some(&"json") => PatchType::Json,
        Some(other) => {
            return Err(patch_err(
                host_path,
                format!("unknown patch type {other:?}: expected strategic, merge or json"),
            ))
        }
    };
    let target = parts[0];
    // Longest first, so `kube-apiserver…` never matches a shorter name.
    let mut known: Vec<(&str, Option<Component>)> = Component::all()
        .into_iter()
        .map(|c| (c.name(), Some(c)))
        .chain(FOREIGN_TARGETS.iter().map(|t| (*t, None)))
        .collect();
    known.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    match known.iter().find(|(n, _)| target.starts_with(n)) {
        Some((_, c)) => Ok(Some((*c, patch_type))),
        None => Err(patch_err(
            host_path,
            format!(
                "unknown patch target {target:?}: expected etcd, kube-apiserver, \
                 kube-controller-manager, kube-scheduler (or kubeadm's kubeletconfiguration, \
                 corednsdeployment), optionally followed by a suffix"
            ),
        )),
    }
}

/// Lists the patch files of `dir` (a host path read through `root`), sorted by name.
pub fn list_patches(root: &HostRoot, dir: &str) -> Result<Vec<PatchFile>, ManifestError> {
    let local = root.path(dir);
    let entries = std::fs::read_dir(&local).map_err(|source| ManifestError::PatchDir {
        path: PathBuf::from(dir),
        source,
    })?;
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let e = e.map_err(|source| ManifestError::PatchDir {
            path: PathBuf::from(dir),
            source,
        })?;
        let is_file = e.file_type().map(|t| t.is_file()).unwrap_or(false) || e.path().is_file();
        if is_file {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let host_path = Path::new(dir).join(&n);
        match parse_file_name(&host_path)? {
            Some((target, patch_type)) => out.push(PatchFile {
                path: host_path,
                target,
                patch_type,
            }),
            None => {
                tracing::debug!(file = %host_path.display(), "patches: ignoring file (extension is not json, yaml or yml)")
            }
        }
    }
    Ok(out)
}

/// Applies every patch for `component` in `dir` to `doc`, in order. Returns the host paths
/// of the files applied.
pub(crate) fn apply_patches(
    root: &HostRoot,
    dir: &str,
    component: Component,
    doc: &mut Value,
) -> Result<Vec<PathBuf>, ManifestError> {
    let mut applied = Vec::new();
    for f in list_patches(root, dir)? {
        match f.target {
            Some(c) if c == component => {}
            Some(_) => continue,
            None => {
                if component == Component::KubeApiserver {
                    tracing::warn!(file = %f.path.display(), "patches: target is not rendered by plinth; ignored");
                }
                continue;
            }
        }
        let text = std::fs::read_to_string(root.path(&f.path))
            .map_err(|e| patch_err(&f.path, format!("read: {e}")))?;
        apply_text(&f.path, &text, f.patch_type, doc)?;
        applied.push(f.path);
    }
    Ok(applied)
}

/// Applies the patch documents in `text` (one or more YAML/JSON documents) to `doc`.
pub(crate) fn apply_text(
    file: &Path,
    text: &str,
    patch_type: PatchType,
    doc: &mut Value,
) -> Result<(), ManifestError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| patch_err(file, format!("not valid YAML/JSON: {e}")))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.is_empty() {
        return Err(patch_err(file, "contains no patch"));
    }
    for (i, patch) in docs.iter().enumerate() {
        let which = if docs.len() > 1 {
            format!("document {}: ", i + 1)
        } else {
            String::new()
        };
        match patch_type {
            PatchType::Json => {
                let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                    patch_err(file, format!("{which}not an RFC 6902 JSON patch: {e}"))
                })?;
                json_patch::patch(doc, &p)
                    .map_err(|e| patch_err(file, format!("{which}does not apply: {e}")))?;
            }
            PatchType::Merge => {
                if !patch.is_object() {
                    return Err(patch_err(
                        file,
                        format!("{which}a merge patch must be a mapping"),
                    ));
                }
                json_patch::merge(doc, patch);
            }
            PatchType::Strategic => {
                strategic::apply(doc, patch).map_err(|e| patch_err(file, format!("{which}{e}")))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<Option<(Option<Component>, PatchType)>, ManifestError> {
        parse_file_name(Path::new(name))
    }

    #[test]
    fn file_names_as_kubeadm() {
        assert_eq!(
            parse("kube-apiserver.yaml").unwrap(),
            Some((Some(Component::KubeApiserver), PatchType::Strategic))
        );
        assert_eq!(
            parse("etcd0+json.json").unwrap(),
            Some((Some(Component::Etcd), PatchType::Json))
        );
        assert_eq!(
            parse("kube-scheduler-extra+merge.yml").unwrap(),
            Some((Some(Component::KubeScheduler), PatchType::Merge))
        );
        assert_eq!(
            parse("kubeletconfiguration+strategic.yaml").unwrap(),
            Some((None, PatchType::Strategic))
        );
        assert_eq!(parse("README.md").unwrap(), None);
        let e = parse("kubelet.yaml").unwrap_err().to_string();
        assert!(
            e.contains("kubelet.yaml") && e.contains("unknown patch target"),
            "{e}"
        );
        let e = parse("etcd+foo.yaml").unwrap_err().to_string();
        assert!(e.contains("unknown patch type \"foo\""), "{e}");
        assert!(parse("etcd+json+x.yaml").is_err());
    }
}
