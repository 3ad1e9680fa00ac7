//! The four control-plane components plinth writes static pod manifests for.

use std::fmt;
use std::str::FromStr;

/// One control-plane component (one static pod, one manifest file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Component {
    /// Local (stacked) etcd.
    Etcd,
    /// kube-apiserver.
    KubeApiserver,
    /// kube-controller-manager.
    KubeControllerManager,
    /// kube-scheduler.
    KubeScheduler,
}

impl Component {
    /// Every component, in the order kubeadm writes them (etcd first).
    pub fn all() -> [Component; 4] {
        [
            Component::Etcd,
            Component::KubeApiserver,
            Component::KubeControllerManager,
            Component::KubeScheduler,
        ]
    }

    /// The component's name: pod name, container name, `component` label, binary name.
    pub fn name(&self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
        }
    }

    /// The manifest file name in the manifests directory (`kube-apiserver.yaml`).
    pub fn file_name(&self) -> &'static str {
        match self {
            Component::Etcd => "etcd.yaml",
            Component::KubeApiserver => "kube-apiserver.yaml",
            Component::KubeControllerManager => "kube-controller-manager.yaml",
            Component::KubeScheduler => "kube-scheduler.yaml",
        }
    }

    /// The tera template this component is rendered from.
    pub(crate) fn template_name(&self) -> &'static str {
        match self {
            Component::Etcd => "etcd.yaml.tera",
            Component::KubeApiserver => "kube-apiserver.yaml.tera",
            Component::KubeControllerManager => "kube-controller-manager.yaml.tera",
            Component::KubeScheduler => "kube-scheduler.yaml.tera",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A component name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown component {0:?}: expected one of etcd, kube-apiserver (apiserver), kube-controller-manager (controller-manager), kube-scheduler (scheduler)")]
pub struct UnknownComponent(pub String);

impl FromStr for Component {
    type Err = UnknownComponent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "etcd" => Ok(Component::Etcd),
            "kube-apiserver" | "apiserver" => Ok(Component::KubeApiserver),
            "kube-controller-manager" | "controller-manager" => {
                Ok(Component::KubeControllerManager)
            }
            "kube-scheduler" | "scheduler" => Ok(Component::KubeScheduler),
            other => Err(UnknownComponent(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_round_trip() {
        for c in Component::all() {
            assert_eq!(c.name().parse::<Component>().unwrap(), c);
            assert_eq!(c.file_name(), format!("{}.yaml", c.name()));
        }
        assert_eq!(
            "apiserver".parse::<Component>().unwrap(),
            Component::KubeApiserver
        );
        assert_eq!(
            "controller-manager".parse::<Component>().unwrap(),
            Component::KubeControllerManager
        );
        assert_eq!(
            "scheduler".parse::<Component>().unwrap(),
            Component::KubeScheduler
        );
        let err = "kubelet".parse::<Component>().unwrap_err();
        assert!(err.to_string().contains("\"kubelet\""), "{err}");
    }
}
