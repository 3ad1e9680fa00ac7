//! Small constructors for the RBAC objects kubeadm's phases create.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const GROUP: &str = "rbac.authorization.k8s.io";

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A rule: `verbs` on `resources` of API group `group` (`""` = core), optionally by name.
pub fn rule(group: &str, resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        ..Default::default()
    }
}

/// A Role in `namespace`.
pub fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(Some(namespace), name),
        rules: Some(rules),
    }
}

/// A RoleBinding of Role `role` in `namespace`.
pub fn role_binding(
    namespace: &str,
    name: &str,
    role: &str,
    subjects: Vec<Subject>,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(Some(namespace), name),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: "Role".into(),
            name: role.into(),
        },
        subjects: Some(subjects),
    }
}

/// A ClusterRole.
pub fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name),
        rules: Some(rules),
        ..Default::default()
    }
}

/// A ClusterRoleBinding of ClusterRole `role`.
pub fn cluster_role_binding(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(None, name),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(subjects),
    }
}

/// A Group subject.
pub fn group(name: &str) -> Subject {
    Subject {
        api_group: Some(GROUP.into()),
        kind: "Group".into(),
        name: name.into(),
        namespace: None,
    }
}

/// A User subject.
pub fn user(name: &str) -> Subject {
    Subject {
        api_group: Some(GROUP.into()),
        kind: "User".into(),
        name: name.into(),
        namespace: None,
    }
}

/// A ServiceAccount subject.
pub fn service_account(namespace: &str, name: &str) -> Subject {
    Subject {
        api_group: None,
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
    }
}

/// The group every node's kubelet is in.
pub const NODES_GROUP: &str = "system:nodes";
