//! Static pod identity: full name `<name>-<node>`, namespace, a stable UID, and the
//! annotations the kubelet puts on mirror pods (`kubernetes.io/config.*`).
//!
//! The UID is a hash of the *normalised* pod (the parsed, typed Pod serialised canonically,
//! so comments, key order, quoting and indentation do not matter), the node name and the
//! manifest's host path: reformatting a file keeps it, editing or renaming the file changes
//! it. It doubles as `kubernetes.io/config.hash`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};

use super::source::SourceError;

/// Annotation carrying the config hash (= UID).
pub const ANN_CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Annotation naming the config source (`file`).
pub const ANN_CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Annotation with the time the agent first saw this pod version (RFC 3339).
pub const ANN_CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// Annotation naming the manifest file (host path) the pod came from.
pub const ANN_CONFIG_FILE: &str = "plinth.io/config.file";

/// A pod from a manifest, with its identity resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticPod {
    /// Stable UID (hex, 32 characters); also the config hash.
    pub uid: String,
    /// Full pod name, `<manifest name>-<node>`.
    pub name: String,
    /// Namespace (default `default`).
    pub namespace: String,
    /// The manifest file (host path).
    pub file: PathBuf,
    /// The pod with metadata (name, namespace, uid, annotations) and `spec.nodeName` filled.
    pub pod: Pod,
}

impl StaticPod {
    /// The pod's spec (always present: [`identify`] rejects a pod without one).
    pub fn spec(&self) -> &k8s_openapi::api::core::v1::PodSpec {
        static EMPTY: std::sync::OnceLock<k8s_openapi::api::core::v1::PodSpec> =
            std::sync::OnceLock::new();
        self.pod
            .spec
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// Sets the `config.seen` annotation.
    pub fn set_seen(&mut self, seen: &str) {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_CONFIG_SEEN.to_string(), seen.to_string());
    }
}

/// Validates a parsed pod and gives it its static-pod identity on `node`.
pub fn identify(mut pod: Pod, node: &str, file: &Path) -> Result<StaticPod, SourceError> {
    let err = |reason: String| SourceError {
        file: file.to_path_buf(),
        line: None,
        reason,
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(err(
            "metadata.name is missing; a static pod needs a name".into()
        ));
    }
    if !is_dns_subdomain(&name) {
        return Err(err(format!(
            "metadata.name {name:?} is not a valid name: lowercase letters, digits, '-' and '.', at most 253 characters, starting and ending alphanumeric"
        )));
    }
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let Some(spec) = pod.spec.as_ref() else {
        return Err(err("spec is missing; a Pod needs spec.containers".into()));
    };
    if spec.containers.is_empty() {
        return Err(err(
            "spec.containers is empty; a Pod needs at least one container".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
    {
        if c.name.is_empty() || !is_dns_label(&c.name) {
            return Err(err(format!(
                "container name {:?} is not a valid name: lowercase letters, digits and '-', at most 63 characters",
                c.name
            )));
        }
        if !seen.insert(c.name.clone()) {
            return Err(err(format!(
                "container name {:?} is used twice; container names must be unique in a pod",
                c.name
            )));
        }
    }
    // Normalise: the status of a manifest means nothing.
    pod.status = None;
    let uid = pod_uid(&pod, node, file);
    let full = format!("{name}-{node}");
    pod.metadata.name = Some(full.clone());
    pod.metadata.namespace = Some(namespace.clone());
    pod.metadata.uid = Some(uid.clone());
    let ann = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(ANN_CONFIG_HASH.into(), uid.clone());
    ann.insert(ANN_CONFIG_SOURCE.into(), "file".into());
    ann.insert(ANN_CONFIG_FILE.into(), file.display().to_string());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    Ok(StaticPod {
        uid,
        name: full,
        namespace,
        file: file.to_path_buf(),
        pod,
    })
}

/// The stable UID of a (normalised) pod from `file` on `node`.
pub fn pod_uid(pod: &Pod, node: &str, file: &Path) -> String {
    let mut h = Sha256::new();
    // The typed Pod serialises with a fixed field order and sorted maps: canonical.
    let canonical = serde_json::to_vec(pod).unwrap_or_default();
    h.update(&canonical);
    h.update(b"\0");
    h.update(node.as_bytes());
    h.update(b"\0");
    h.update(file.as_os_str().as_encoded_bytes());
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The pod's QoS class, as the apiserver computes it (`qos.GetPodQOS`): Guaranteed when every
/// container has cpu and memory limits with requests equal to them, BestEffort when no
/// container requests or limits cpu or memory, else Burstable.
pub fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    let containers: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.as_ref());
        let lim = r.and_then(|r| r.limits.as_ref());
        for res in ["cpu", "memory"] {
            let q = req.and_then(|m| m.get(res));
            let l = lim.and_then(|m| m.get(res));
            if q.is_some_and(|q| !is_zero(&q.0)) || l.is_some_and(|l| !is_zero(&l.0)) {
                any = true;
            }
            match (q, l) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn is_zero(q: &str) -> bool {
    q.trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse::<f64>()
        .is_ok_and(|v| v == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::source::parse_manifest;

    const A: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  hostNetwork: true\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.5\n    command: [etcd, --data-dir=/var/lib/etcd]\n";
    // The same pod, reformatted: flow style, other key order, comments, quotes.
    const A_REFORMATTED: &str = "# etcd\nkind: \"Pod\"\napiVersion: v1\nspec:\n    containers:\n        - command: ['etcd', \"--data-dir=/var/lib/etcd\"]\n          image: registry.k8s.io/etcd:3.5\n          name: etcd\n    hostNetwork: true\nmetadata: {namespace: kube-system, name: etcd}\n";

    fn sp(text: &str, node: &str, file: &str) -> StaticPod {
        let pod = parse_manifest(Path::new(file), text.as_bytes()).unwrap();
        identify(pod, node, Path::new(file)).unwrap()
    }

    #[test]
    fn identity_fields_and_annotations() {
        let p = sp(A, "node1", "/etc/kubernetes/manifests/etcd.yaml");
        assert_eq!(p.name, "etcd-node1");
        assert_eq!(p.namespace, "kube-system");
        assert_eq!(p.uid.len(), 32);
        let ann = p.pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANN_CONFIG_HASH], p.uid);
        assert_eq!(ann[ANN_CONFIG_SOURCE], "file");
        assert_eq!(p.pod.metadata.uid.as_deref(), Some(p.uid.as_str()));
        assert_eq!(p.spec().node_name.as_deref(), Some("node1"));
        let no_ns = sp(
            &A.replace("  namespace: kube-system\n", ""),
            "n",
            "/m/etcd.yaml",
        );
        assert_eq!(no_ns.namespace, "default");
    }

    #[test]
    fn uid_is_stable_under_reformatting_and_changes_with_content_node_and_path() {
        let f = "/etc/kubernetes/manifests/etcd.yaml";
        let a = sp(A, "node1", f);
        assert_eq!(a.uid, sp(A_REFORMATTED, "node1", f).uid);
        assert_ne!(
            a.uid,
            sp(&A.replace("/var/lib/etcd", "/var/lib/etcd2"), "node1", f).uid
        );
        assert_ne!(a.uid, sp(A, "node2", f).uid);
        assert_ne!(
            a.uid,
            sp(A, "node1", "/etc/kubernetes/manifests/etcd2.yaml").uid
        );
    }

    #[test]
    fn rejects_invalid_names_and_containers() {
        let f = Path::new("/m/x.yaml");
        let bad_name = parse_manifest(
            f,
            A.replace("name: etcd\n  namespace", "name: Etcd_1\n  namespace")
                .as_bytes(),
        )
        .unwrap();
        let e = identify(bad_name, "n", f).unwrap_err();
        assert!(e.reason.contains("\"Etcd_1\""), "{e}");
        let dup = A.replace(
            "    command: [etcd, --data-dir=/var/lib/etcd]\n",
            "    command: [etcd]\n  - name: etcd\n    image: x\n",
        );
        let e = identify(parse_manifest(f, dup.as_bytes()).unwrap(), "n", f).unwrap_err();
        assert!(e.reason.contains("used twice"), "{e}");
        let nospec = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n";
        let e = identify(parse_manifest(f, nospec.as_bytes()).unwrap(), "n", f).unwrap_err();
        assert!(e.reason.contains("spec is missing"), "{e}");
    }
}
