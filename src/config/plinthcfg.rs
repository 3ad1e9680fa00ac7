//! plinth's own optional document (`apiVersion: plinth.io/v1alpha1`,
//! `kind: PlinthConfiguration`, camelCase fields) → [`PlinthSettings`].

use std::path::PathBuf;

use serde_json::Value;

use super::error::Errors;
use super::reader::Obj;
use super::spec::{PlinthSettings, SecurityProfile};
use super::validate::{check_absolute, check_port, parse_ip};

/// `cis` / `kubeadm` → [`SecurityProfile`].
pub fn parse_security_profile(s: &str) -> Option<SecurityProfile> {
    match s {
        "cis" => Some(SecurityProfile::Cis),
        "kubeadm" => Some(SecurityProfile::Kubeadm),
        _ => None,
    }
}

/// The config spelling of a profile.
pub fn security_profile_name(p: SecurityProfile) -> &'static str {
    match p {
        SecurityProfile::Cis => "cis",
        SecurityProfile::Kubeadm => "kubeadm",
    }
}

/// Reads an absolute directory field into `slot` (unchanged when absent or invalid).
fn dir(obj: &mut Obj, key: &'static str, slot: &mut String, errs: &mut Errors) {
    let field = obj.field(key);
    if let Some(v) = obj.nonempty_string(key, errs) {
        match check_absolute(&v) {
            Ok(()) => *slot = v,
            Err(allowed) => errs.push(field, v, allowed),
        }
    }
}

/// Reads a binary repository URL field into `slot` (unchanged when absent or invalid).
fn repository(obj: &mut Obj, key: &'static str, slot: &mut String, errs: &mut Errors) {
    let field = obj.field(key);
    if let Some(v) = obj.nonempty_string(key, errs) {
        match super::repository::check_repository_url(&v) {
            Ok(()) => *slot = v.trim_end_matches('/').to_string(),
            Err(allowed) => errs.push(field, v, allowed),
        }
    }
}

/// Applies a `PlinthConfiguration` document (if any) on top of `defaults`.
pub(crate) fn read_plinth(
    value: Option<&Value>,
    defaults: PlinthSettings,
    errs: &mut Errors,
) -> PlinthSettings {
    let mut s = defaults;
    let Some(value) = value else { return s };
    let mut doc = Obj::new("PlinthConfiguration", value, errs);
    doc.ignore(&["apiVersion", "kind"]);

    let field = doc.field("securityProfile");
    if let Some(v) = doc.nonempty_string("securityProfile", errs) {
        match parse_security_profile(&v) {
            Some(p) => s.security_profile = p,
            None => errs.push(
                field,
                v,
                "cis (CIS benchmark hardening, the default) or kubeadm (kubeadm's flags exactly)",
            ),
        }
    }

    if let Some(items) = doc.string_list("binPath", errs) {
        let mut bin_path = Vec::new();
        for (path, dir) in items {
            match check_absolute(&dir) {
                Ok(()) => bin_path.push(PathBuf::from(dir)),
                Err(allowed) => errs.push(path, dir, allowed),
            }
        }
        s.bin_path = bin_path;
    }

    if let Some(mut agent) = doc.obj("agent", errs) {
        let field = agent.field("healthzBindAddress");
        if let Some(v) = agent.nonempty_string("healthzBindAddress", errs) {
            match parse_ip(&v) {
                Ok(ip) => s.agent_healthz_bind_address = ip,
                Err(allowed) => errs.push(field, v, allowed),
            }
        }
        let field = agent.field("healthzPort");
        if let Some(port) = agent.int("healthzPort", "a port number between 1 and 65535", errs) {
            match check_port(port) {
                Ok(p) => s.agent_healthz_port = p,
                Err(allowed) => errs.push(field, port.to_string(), allowed),
            }
        }
        agent.finish(errs);
    }

    dir(&mut doc, "manifestsDir", &mut s.manifests_dir, errs);
    dir(&mut doc, "stateDir", &mut s.state_dir, errs);
    dir(&mut doc, "logDir", &mut s.log_dir, errs);
    dir(&mut doc, "kubeconfigDir", &mut s.kubeconfig_dir, errs);
    repository(&mut doc, "binaryRepository", &mut s.binary_repository, errs);
    repository(
        &mut doc,
        "etcdBinaryRepository",
        &mut s.etcd_binary_repository,
        errs,
    );
    let field = doc.field("binaryRepositoryCABundle");
    if let Some(v) = doc.nonempty_string("binaryRepositoryCABundle", errs) {
        match check_absolute(&v) {
            Ok(()) => s.binary_repository_ca_bundle = Some(v),
            Err(allowed) => errs.push(
                field,
                v,
                format!("{allowed}: a PEM file of CA certificates"),
            ),
        }
    }
    doc.finish(errs);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults_for;
    use serde_json::json;

    fn defaults() -> PlinthSettings {
        defaults_for("n", "10.0.0.1".parse().unwrap()).plinth
    }

    #[test]
    fn reads_every_field() {
        let v = json!({
            "apiVersion": "plinth.io/v1alpha1", "kind": "PlinthConfiguration",
            "securityProfile": "kubeadm", "binPath": ["/opt/k8s/bin", "/usr/local/bin"],
            "agent": {"healthzBindAddress": "::1", "healthzPort": 10250},
            "manifestsDir": "/srv/manifests", "stateDir": "/srv/state",
            "logDir": "/srv/log", "kubeconfigDir": "/srv/kube"
        });
        let mut errs = Errors::default();
        let s = read_plinth(Some(&v), defaults(), &mut errs);
        assert!(errs.is_empty(), "{:?}", errs.into_vec());
        assert_eq!(s.security_profile, SecurityProfile::Kubeadm);
        assert_eq!(
            s.bin_path,
            [
                PathBuf::from("/opt/k8s/bin"),
                PathBuf::from("/usr/local/bin")
            ]
        );
        assert_eq!(
            s.agent_healthz_bind_address,
            "::1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(s.agent_healthz_port, 10250);
        assert_eq!(s.manifests_dir, "/srv/manifests");
        assert_eq!(s.state_dir, "/srv/state");
        assert_eq!(s.log_dir, "/srv/log");
        assert_eq!(s.kubeconfig_dir, "/srv/kube");
    }

    #[test]
    fn absent_document_keeps_defaults() {
        let mut errs = Errors::default();
        assert_eq!(read_plinth(None, defaults(), &mut errs), defaults());
    }

    #[test]
    fn invalid_values_name_field_value_and_allowed() {
        let v = json!({
            "securityProfile": "strict", "binPath": ["bin"],
            "agent": {"healthzBindAddress": "localhost", "healthzPort": 70000, "port": 1},
            "stateDir": "var/lib/plinth"
        });
        let mut errs = Errors::default();
        read_plinth(Some(&v), defaults(), &mut errs);
        let list = errs.into_vec();
        let find = |f: &str| {
            list.iter()
                .find(|e| e.field == f)
                .unwrap_or_else(|| panic!("no error for {f}: {list:?}"))
        };
        let e = find("PlinthConfiguration.securityProfile");
        assert_eq!(e.value, "strict");
        assert!(e.allowed.contains("cis") && e.allowed.contains("kubeadm"));
        assert!(find("PlinthConfiguration.binPath[0]")
            .allowed
            .contains("absolute"));
        assert!(find("PlinthConfiguration.agent.healthzBindAddress")
            .allowed
            .contains("IP"));
        let p = find("PlinthConfiguration.agent.healthzPort");
        assert_eq!(p.value, "70000");
        assert!(p.allowed.contains("1 and 65535"));
        assert!(find("PlinthConfiguration.agent.port")
            .allowed
            .contains("unknown field"));
        assert!(find("PlinthConfiguration.stateDir")
            .allowed
            .contains("absolute"));
        assert_eq!(list.len(), 6, "{list:?}");
    }

    #[test]
    fn binary_repositories_and_ca_bundle() {
        let v = json!({
            "binaryRepository": "https://mirror.example.com/k8s/release/",
            "etcdBinaryRepository": "file:///srv/mirror/etcd",
            "binaryRepositoryCABundle": "/etc/plinth/mirror-ca.pem"
        });
        let mut errs = Errors::default();
        let s = read_plinth(Some(&v), defaults(), &mut errs);
        assert!(errs.is_empty(), "{:?}", errs.into_vec());
        assert_eq!(
            s.binary_repository,
            "https://mirror.example.com/k8s/release"
        );
        assert_eq!(s.etcd_binary_repository, "file:///srv/mirror/etcd");
        assert_eq!(
            s.binary_repository_ca_bundle.as_deref(),
            Some("/etc/plinth/mirror-ca.pem")
        );
        let d = defaults();
        assert_eq!(d.binary_repository, "https://dl.k8s.io/release");
        assert_eq!(
            d.etcd_binary_repository,
            "https://github.com/etcd-io/etcd/releases/download"
        );
    }

    #[test]
    fn bad_binary_repositories_name_field_value_and_allowed() {
        let v = json!({
            "binaryRepository": "http://mirror.example.com/release",
            "etcdBinaryRepository": "ftp://x/etcd",
            "binaryRepositoryCABundle": "ca.pem"
        });
        let mut errs = Errors::default();
        let s = read_plinth(Some(&v), defaults(), &mut errs);
        assert_eq!(s.binary_repository, defaults().binary_repository);
        let list = errs.into_vec();
        assert_eq!(list.len(), 3, "{list:?}");
        let e = &list[0];
        assert_eq!(e.field, "PlinthConfiguration.binaryRepository");
        assert_eq!(e.value, "http://mirror.example.com/release");
        assert!(
            e.allowed.contains("loopback") && e.allowed.contains("file://"),
            "{e:?}"
        );
        assert_eq!(list[1].field, "PlinthConfiguration.etcdBinaryRepository");
        assert_eq!(
            list[2].field,
            "PlinthConfiguration.binaryRepositoryCABundle"
        );
        assert!(list[2].allowed.contains("absolute"));
    }
}
