//! Mirror pods (pure): what the API should hold for each static pod, and what to do about
//! what it holds.
//!
//! As the kubelet's `mirror_client.go`: a mirror pod is the static pod as in its manifest
//! (`spec.nodeName` set) with the annotation `kubernetes.io/config.mirror` = the config hash
//! and one controller ownerReference to the Node (NodeRestriction admits nothing else from a
//! node). Its status is the agent's own view of the pod ([`super::status::to_k8s_pod`]), sent
//! as a merge patch of the `status` subresource with the mirror pod's UID as precondition.
//!
//! [`plan`] compares the desired static pods with the mirror pods the API lists on this node:
//! a missing one is created; one with another hash (the manifest changed), a stale owner (the
//! Node was re-registered) or a deletion timestamp (`kubectl delete pod`) is deleted (grace 0,
//! UID precondition) and created again; a mirror pod whose static pod does not exist (removed
//! manifest, earlier run) is deleted. Pods on the node without the mirror annotation are not
//! the agent's and are left alone.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use super::pod::StaticPod;

/// The annotation that makes a pod a mirror pod (value: the static pod's config hash).
pub const ANN_CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// The status keys the agent owns: each is sent on every patch (`null` when unset), so a
/// value that went away (a message, a cleared reason) is removed from the mirror pod too.
const STATUS_KEYS: &[&str] = &[
    "phase",
    "conditions",
    "message",
    "reason",
    "hostIP",
    "podIP",
    "podIPs",
    "startTime",
    "initContainerStatuses",
    "containerStatuses",
    "qosClass",
];

/// The mirror pod to create for `sp` on `node` (whose Node object has `node_uid`).
pub fn mirror_pod(sp: &StaticPod, node: &str, node_uid: &str) -> Pod {
    let mut pod = sp.pod.clone();
    pod.status = None;
    let meta = &mut pod.metadata;
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.to_string(),
        uid: node_uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANN_CONFIG_MIRROR.into(), sp.uid.clone());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    pod
}

pub use super::pod::qos_class;

/// The `status` object to send for a pod: `pod_status` (the agent's view) with every key the
/// agent owns present, `null` where unset.
pub fn status_value(pod_status: &k8s_openapi::api::core::v1::PodStatus) -> Value {
    let mut v = serde_json::to_value(pod_status).unwrap_or(Value::Object(Default::default()));
    if let Some(o) = v.as_object_mut() {
        for k in STATUS_KEYS {
            o.entry(k.to_string()).or_insert(Value::Null);
        }
    }
    v
}

/// The merge patch of the `status` subresource: the status, with the mirror pod's UID as a
/// precondition (a pod of the same name but another UID is refused, as the kubelet does it).
pub fn status_patch(mirror_uid: &str, status: &Value) -> Value {
    serde_json::json!({"metadata": {"uid": mirror_uid}, "status": status})
}

/// True for a pod that is a mirror pod (of anything).
pub fn is_mirror(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANN_CONFIG_MIRROR))
}

/// `namespace/name` of a pod.
pub fn key_of(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Why a live mirror pod cannot stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// No static pod of that name (manifest removed, or left by an earlier run).
    Orphan,
    /// The manifest changed: the mirror pod carries another config hash.
    Hash,
    /// Owned by another (older) Node object.
    Owner,
    /// Being deleted (e.g. `kubectl delete pod`).
    Deleting,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stale::Orphan => "no static pod of that name",
            Stale::Hash => "the manifest changed (new config hash)",
            Stale::Owner => "owned by an earlier Node object",
            Stale::Deleting => "being deleted",
        })
    }
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Live mirror pods to delete: (namespace/name, live UID, why).
    pub delete: Vec<(String, String, Stale)>,
    /// Static pods (namespace/name) to create a mirror pod for.
    pub create: Vec<String>,
    /// Static pods whose mirror pod stays: namespace/name → the mirror pod's UID.
    pub keep: BTreeMap<String, String>,
}

/// Compares the static pods (`desired`, by namespace/name) with the pods the API lists on
/// this node (`live`).
pub fn plan(desired: &BTreeMap<String, &StaticPod>, live: &[Pod], node_uid: &str) -> Plan {
    let mut out = Plan::default();
    let mut seen = BTreeSet::new();
    for p in live.iter().filter(|p| is_mirror(p)) {
        let key = key_of(p);
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let verdict = match desired.get(&key) {
            None => Some(Stale::Orphan),
            Some(_) if p.metadata.deletion_timestamp.is_some() => Some(Stale::Deleting),
            Some(sp) => {
                let ann = p.metadata.annotations.as_ref();
                let hash = ann.and_then(|a| a.get(ANN_CONFIG_MIRROR));
                let owner_ok = p
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|r| r.kind == "Node" && r.uid == node_uid));
                if hash != Some(&sp.uid) {
                    Some(Stale::Hash)
                } else if !owner_ok {
                    Some(Stale::Owner)
                } else {
                    None
                }
            }
        };
        seen.insert(key.clone());
        match verdict {
            Some(why) => {
                if why != Stale::Orphan {
                    out.create.push(key.clone());
                }
                out.delete.push((key, uid, why));
            }
            None => {
                out.keep.insert(key, uid);
            }
        }
    }
    for key in desired.keys() {
        if !seen.contains(key) {
            out.create.push(key.clone());
        }
    }
    out.create.sort();
    out.create.dedup();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::pod::{identify, ANN_CONFIG_HASH};
    use crate::agent::source::parse_manifest;
    use std::path::Path;

    pub(crate) fn static_pod(name: &str, arg: &str) -> StaticPod {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: kube-system\n  labels: {{component: {name}, tier: control-plane}}\nspec:\n  hostNetwork: true\n  priorityClassName: system-node-critical\n  containers:\n  - name: {name}\n    image: registry.k8s.io/{name}:v1.24.0\n    command: [{name}, --v={arg}]\n    resources: {{requests: {{cpu: 250m}}}}\n"
        );
        let f = format!("/etc/kubernetes/manifests/{name}.yaml");
        identify(
            parse_manifest(Path::new(&f), text.as_bytes()).unwrap(),
            "cp1",
            Path::new(&f),
        )
        .unwrap()
    }

    fn live(sp: &StaticPod, node_uid: &str, uid: &str) -> Pod {
        let mut p = mirror_pod(sp, "cp1", node_uid);
        p.metadata.uid = Some(uid.into());
        p
    }

    #[test]
    fn mirror_pod_has_annotations_owner_and_node_name_but_no_uid_or_status() {
        let sp = static_pod("kube-scheduler", "2");
        let m = mirror_pod(&sp, "cp1", "node-uid");
        let ann = m.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANN_CONFIG_MIRROR], sp.uid);
        assert_eq!(ann[ANN_CONFIG_HASH], sp.uid);
        assert_eq!(ann["kubernetes.io/config.source"], "file");
        assert_eq!(m.metadata.uid, None);
        assert!(m.status.is_none());
        let o = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                o.api_version.as_str(),
                o.kind.as_str(),
                o.name.as_str(),
                o.uid.as_str()
            ),
            ("v1", "Node", "cp1", "node-uid")
        );
        assert_eq!(o.controller, Some(true));
        assert_eq!(o.block_owner_deletion, None);
        assert_eq!(m.spec.as_ref().unwrap().node_name.as_deref(), Some("cp1"));
        assert_eq!(m.metadata.labels.as_ref().unwrap()["tier"], "control-plane");
        assert_eq!(key_of(&m), "kube-system/kube-scheduler-cp1");
    }

    #[test]
    fn plan_creates_keeps_replaces_and_deletes_orphans() {
        let a = static_pod("etcd", "1");
        let b = static_pod("kube-scheduler", "1");
        let b2 = static_pod("kube-scheduler", "2");
        let c = static_pod("kube-apiserver", "1");
        let gone = static_pod("old", "1");
        let desired: BTreeMap<String, &StaticPod> = [&a, &b2, &c]
            .into_iter()
            .map(|p| (format!("kube-system/{}", p.name), p))
            .collect();
        let mut deleting = live(&c, "n1", "u-c");
        deleting.metadata.deletion_timestamp =
            crate::agent::status::time(std::time::SystemTime::now());
        let mut not_ours = live(&gone, "n1", "u-x");
        not_ours.metadata.name = Some("daemon-xyz".into());
        not_ours.metadata.annotations = None;
        let live = vec![
            live(&a, "n1", "u-a"),
            live(&b, "n1", "u-b"),
            deleting,
            live(&gone, "n1", "u-old"),
            not_ours,
        ];
        let p = plan(&desired, &live, "n1");
        assert_eq!(
            p.keep,
            [("kube-system/etcd-cp1".to_string(), "u-a".to_string())].into()
        );
        assert_eq!(
            p.delete,
            vec![
                (
                    "kube-system/kube-scheduler-cp1".into(),
                    "u-b".into(),
                    Stale::Hash
                ),
                (
                    "kube-system/kube-apiserver-cp1".into(),
                    "u-c".into(),
                    Stale::Deleting
                ),
                ("kube-system/old-cp1".into(), "u-old".into(), Stale::Orphan),
            ]
        );
        assert_eq!(
            p.create,
            vec![
                "kube-system/kube-apiserver-cp1",
                "kube-system/kube-scheduler-cp1"
            ]
        );
        // A re-registered Node (new UID): every mirror pod is replaced.
        let p = plan(&desired, &live[..1], "n2");
        assert_eq!(p.delete[0].2, Stale::Owner);
        assert_eq!(p.create.len(), 3);
    }

    #[test]
    fn qos_classes() {
        let sp = static_pod("kube-apiserver", "1");
        assert_eq!(qos_class(sp.spec()), "Burstable");
        let mut spec = sp.spec().clone();
        spec.containers[0].resources = None;
        assert_eq!(qos_class(&spec), "BestEffort");
        let q = |s: &str| k8s_openapi::apimachinery::pkg::api::resource::Quantity(s.into());
        spec.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some([("cpu".into(), q("1")), ("memory".into(), q("1Gi"))].into()),
            ..Default::default()
        });
        assert_eq!(qos_class(&spec), "Guaranteed");
    }

    #[test]
    fn status_value_names_every_owned_key() {
        let st = k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        };
        let v = status_value(&st);
        assert_eq!(v["phase"], "Running");
        assert!(v.as_object().unwrap().contains_key("message"));
        assert!(v["message"].is_null());
        let p = status_patch("u1", &v);
        assert_eq!(p["metadata"]["uid"], "u1");
    }
}
