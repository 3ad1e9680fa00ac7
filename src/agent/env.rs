//! Container environment: static values, `valueFrom.fieldRef` (metadata.name,
//! metadata.namespace, metadata.uid, spec.nodeName, status.podIP / status.hostIP = the node
//! address), and Kubernetes `$(VAR)` expansion in values, command and args.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Container;

use super::model::ResolveError;

/// What fieldRefs resolve to for one pod.
#[derive(Debug, Clone)]
pub struct FieldValues {
    /// Full pod name.
    pub pod_name: String,
    /// Namespace.
    pub namespace: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Node name.
    pub node_name: String,
    /// The node address (pods use the host network, so podIP = hostIP).
    pub host_ip: IpAddr,
}

impl FieldValues {
    fn get(&self, path: &str) -> Option<String> {
        Some(match path {
            "metadata.name" => self.pod_name.clone(),
            "metadata.namespace" => self.namespace.clone(),
            "metadata.uid" => self.pod_uid.clone(),
            "spec.nodeName" => self.node_name.clone(),
            "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
                self.host_ip.to_string()
            }
            "spec.serviceAccountName" => String::new(),
            _ => return None,
        })
    }
}

/// Resolves a container's `env` into name/value pairs, in order, with `$(VAR)` expanded
/// against the variables defined before it.
pub fn resolve_env(
    c: &Container,
    fields: &FieldValues,
) -> Result<Vec<(String, String)>, ResolveError> {
    if c.env_from.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(ResolveError::Unsupported(format!(
            "container {}: envFrom is not supported: static pods cannot reference ConfigMaps or Secrets",
            c.name
        )));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                fields.get(&f.field_path).ok_or_else(|| {
                    ResolveError::Unsupported(format!(
                        "container {}: env {}: fieldRef {:?} is not supported; allowed: metadata.name, metadata.namespace, metadata.uid, spec.nodeName, status.podIP, status.hostIP",
                        c.name, e.name, f.field_path
                    ))
                })?
            } else {
                return Err(ResolveError::Unsupported(format!(
                    "container {}: env {}: only valueFrom.fieldRef is supported (static pods cannot reference ConfigMaps, Secrets or resource fields)",
                    c.name, e.name
                )));
            }
        } else {
            expand(e.value.as_deref().unwrap_or(""), &vars)
        };
        vars.insert(e.name.clone(), value.clone());
        if let Some(slot) = out.iter_mut().find(|(n, _)| *n == e.name) {
            slot.1 = value;
        } else {
            out.push((e.name.clone(), value));
        }
    }
    Ok(out)
}

/// Kubernetes variable expansion: `$(NAME)` becomes the value of a defined variable (left
/// as is when undefined); `$$` is an escaped `$`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'(' {
                if let Some(end) = input[i + 2..].find(')') {
                    let name = &input[i + 2..i + 2 + end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&input[i..i + 3 + end]),
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> FieldValues {
        FieldValues {
            pod_name: "etcd-n1".into(),
            namespace: "kube-system".into(),
            pod_uid: "u".into(),
            node_name: "n1".into(),
            host_ip: "10.0.0.5".parse().unwrap(),
        }
    }

    fn container(env: serde_json::Value) -> Container {
        serde_json::from_value(serde_json::json!({"name": "c", "env": env})).unwrap()
    }

    #[test]
    fn static_field_refs_and_expansion() {
        let c = container(serde_json::json!([
            {"name": "A", "value": "x"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "URL", "value": "http://$(IP):2379/$(A)/$(NOPE)/$$(A)"},
        ]));
        let env = resolve_env(&c, &fields()).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("POD"), "etcd-n1");
        assert_eq!(get("NS"), "kube-system");
        assert_eq!(get("IP"), "10.0.0.5");
        assert_eq!(get("NODE"), "n1");
        assert_eq!(get("URL"), "http://10.0.0.5:2379/x/$(NOPE)/$(A)");
    }

    #[test]
    fn unsupported_sources_are_clear_errors() {
        let c = container(serde_json::json!([
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ]));
        let e = resolve_env(&c, &fields()).unwrap_err().to_string();
        assert!(e.contains("env S") && e.contains("fieldRef"), "{e}");
        let c = container(serde_json::json!([
            {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
        ]));
        let e = resolve_env(&c, &fields()).unwrap_err().to_string();
        assert!(e.contains("metadata.labels"), "{e}");
    }
}
