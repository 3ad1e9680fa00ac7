//! The `cis` security profile (plinth's default): kubeadm's output plus what every scored
//! control-plane check of the CIS Kubernetes Benchmark 1.12 (kube-bench `cis-1.12`,
//! `master.yaml` 1.1–1.4 and `etcd.yaml` 2.x) needs. An evaluator of those checks is test
//! code (`tests/support/cis/evaluate.rs`, also compiled into the unit tests here).
//!
//! # What the profile adds
//!
//! | check | setting |
//! |---|---|
//! | 1.2.5 | apiserver `--kubelet-certificate-authority=<certificatesDir>/ca.crt` |
//! | 1.2.15, 1.3.2, 1.4.1 | `--profiling=false` on apiserver, controller-manager, scheduler |
//! | 1.2.16–1.2.19 | `--audit-log-path=/var/log/kubernetes/audit/audit.log`, `--audit-log-maxage=30`, `--audit-log-maxbackup=10`, `--audit-log-maxsize=100` |
//! | 3.2.1 (manual) | `--audit-policy-file=<kubernetes dir>/audit-policy.yaml`, written by [`super::write`] (0600) from `templates/audit-policy.yaml` |
//! | 1.2.29 (manual) | `--tls-cipher-suites` limited to ECDHE + AEAD suites |
//! | 1.2.30 | `--service-account-extend-token-expiration=false` |
//! | 1.3.1 (manual) | controller-manager `--terminated-pod-gc-threshold=1000` |
//! | 1.1.11, 1.1.12 | etcd data dir created 0700 ([`super::write`]) and owned by the `etcd` system user ([`crate::security::chown_etcd_paths`]) |
//! | — | etcd runs as that user: pod `runAsUser`/`runAsGroup`/`runAsNonRoot`, container `allowPrivilegeEscalation: false`, all capabilities dropped (as kubeadm's RootlessControlPlane) |
//!
//! The audit policy file and the audit log directory (0700) are hostPath-mounted into the
//! apiserver (`audit-policy` read-only, `audit-log` read-write). Every flag can still be
//! overridden through extraArgs, exactly like a kubeadm default.
//!
//! **`--kubelet-certificate-authority`**: the apiserver verifies the serving certificate of
//! every kubelet it connects to (logs, exec, port-forward, metrics proxying) against the
//! cluster CA. kubeadm's kubelets serve a self-signed certificate by default, so kubelets
//! that join this cluster need CA-signed serving certificates: set `serverTLSBootstrap: true`
//! in their KubeletConfiguration and approve their `kubernetes.io/kubelet-serving` CSRs (or
//! run a CSR approver), otherwise `kubectl logs/exec` to their pods fails with an x509 error.
//! plinth's own agent serves no kubelet API, so the control-plane node is unaffected.
//!
//! **`--anonymous-auth`** is deliberately left at its default (true): check 1.2.1 is manual,
//! and turning anonymous access off makes the unauthenticated HTTP probes of `/livez` and
//! `/readyz` fail (RBAC still grants anonymous users nothing but the health endpoints).
//!
//! | 1.1.19 | every file under the PKI dir stays `root:root`; etcd reads `etcd/server.key` and `etcd/peer.key` through a POSIX ACL read grant for the etcd user ([`crate::security::grant_etcd_keys`]), kept across renewals by [`crate::fs::write_atomic`] and checked by `plinth verify` |
//!
//! # Scored checks: none fails
//!
//! etcd stays unprivileged (its own user, no capabilities) and every scored check passes.
//! The price of the ACL shows in one **unscored** (Manual) check: **1.1.21** (key files
//! 600) reads `stat -c %a`, and with a named ACL entry the kernel keeps the ACL *mask* in
//! the mode's group bits, so `etcd/server.key` and `etcd/peer.key` show `640` (base mode
//! `rw-,---,---`, mask `r--`: only the etcd user gains read). No ACL can avoid it — a named
//! entry is only effective under a mask that allows it — and `chmod 600` would take etcd's
//! access away. A filesystem without ACLs falls back to chowning the two keys to the etcd
//! user (1.1.19 then reports them, and init says so).
//!
//! # Checks plinth cannot decide on its own (all unscored / manual)
//!
//! 1.1.9/1.1.10 (CNI files: installed by the CNI plugin later), 1.2.1 (anonymous auth, see
//! above), 1.2.3 `DenyServiceExternalIPs` (would silently break Services that use
//! `externalIPs`), 1.2.9 `EventRateLimit` (needs an admission configuration sized for the
//! cluster), 1.2.11 `AlwaysPullImages` (meaningless for plinth's process runtime, harmful
//! offline), 1.2.20 (request timeout), 1.2.27/1.2.28 (encryption at rest needs a key the
//! operator must back up; configure it through extraArgs and extraVolumes), 2.7 (a unique
//! etcd CA is already what the PKI generates), 3.x (policy review).

use crate::config::{Arg, ClusterSpec, SecurityProfile};

use super::args::join;
use super::mount::{Mount, DIR_OR_CREATE};
use super::Component;

// The kube-bench check evaluator: test-only code, shared with the integration tests.
#[cfg(test)]
use crate::{fs::HostRoot, manifests::RenderedManifest};
#[cfg(test)]
#[path = "../../tests/support/cis/evaluate.rs"]
#[allow(dead_code)] // parts only the integration tests use
mod evaluate;
#[cfg(test)]
pub(crate) use evaluate::{evaluate_with, CheckResult, CheckStatus, OwnerNames};

/// The audit log directory (host path), created 0700.
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes/audit";
/// The audit log file passed to `--audit-log-path`.
pub const AUDIT_LOG_PATH: &str = "/var/log/kubernetes/audit/audit.log";
/// The default audit policy written for the `cis` profile.
pub const AUDIT_POLICY: &str = include_str!("../../templates/audit-policy.yaml");
/// controller-manager `--terminated-pod-gc-threshold` (CIS 1.3.1; the check only needs it
/// set: 1000 keeps finished Job pods around long enough to read their logs).
pub const TERMINATED_POD_GC_THRESHOLD: &str = "1000";
/// apiserver `--tls-cipher-suites` (CIS 1.2.29): ECDHE key exchange with AEAD ciphers only.
pub const TLS_CIPHER_SUITES: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/// The host path of the audit policy file (`<kubernetes dir>/audit-policy.yaml`).
pub fn audit_policy_path(spec: &ClusterSpec) -> String {
    join(&spec.plinth.kubeconfig_dir, "audit-policy.yaml")
}

fn is_cis(spec: &ClusterSpec) -> bool {
    spec.plinth.security_profile == SecurityProfile::Cis
}

fn arg(name: &str, value: impl Into<String>) -> Arg {
    Arg {
        name: name.to_string(),
        value: value.into(),
    }
}

/// The flags the profile adds to (or sets over) kubeadm's defaults for `component`.
pub(crate) fn profile_args(spec: &ClusterSpec, component: Component) -> Vec<Arg> {
    if !is_cis(spec) {
        return Vec::new();
    }
    match component {
        Component::KubeApiserver => vec![
            arg("audit-log-maxage", "30"),
            arg("audit-log-maxbackup", "10"),
            arg("audit-log-maxsize", "100"),
            arg("audit-log-path", AUDIT_LOG_PATH),
            arg("audit-policy-file", audit_policy_path(spec)),
            arg(
                "kubelet-certificate-authority",
                join(&spec.certificates_dir, "ca.crt"),
            ),
            arg("profiling", "false"),
            arg("service-account-extend-token-expiration", "false"),
            arg("tls-cipher-suites", TLS_CIPHER_SUITES),
        ],
        Component::KubeControllerManager => vec![
            arg("profiling", "false"),
            arg("terminated-pod-gc-threshold", TERMINATED_POD_GC_THRESHOLD),
        ],
        Component::KubeScheduler => vec![arg("profiling", "false")],
        Component::Etcd => Vec::new(),
    }
}

/// The hostPath mounts the profile adds for `component` (audit policy and log dir).
pub(crate) fn profile_mounts(spec: &ClusterSpec, component: Component) -> Vec<Mount> {
    if !is_cis(spec) || component != Component::KubeApiserver {
        return Vec::new();
    }
    let policy = audit_policy_path(spec);
    vec![
        Mount::same("audit-log", AUDIT_LOG_DIR, false, DIR_OR_CREATE),
        Mount::same("audit-policy", &policy, true, "File"),
    ]
}

/// True when the profile runs etcd as the dedicated `etcd` user.
pub(crate) fn etcd_runs_as_user(spec: &ClusterSpec) -> bool {
    is_cis(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults_for;

    #[test]
    fn kubeadm_profile_adds_nothing() {
        let mut spec = defaults_for("cp1", "10.0.0.1".parse().unwrap());
        assert!(!profile_args(&spec, Component::KubeApiserver).is_empty());
        spec.plinth.security_profile = SecurityProfile::Kubeadm;
        for c in Component::all() {
            assert!(profile_args(&spec, c).is_empty());
            assert!(profile_mounts(&spec, c).is_empty());
        }
        assert!(!etcd_runs_as_user(&spec));
    }

    #[test]
    fn audit_policy_is_valid_yaml_policy() {
        let v: serde_json::Value = serde_saphyr::from_str(AUDIT_POLICY).unwrap();
        assert_eq!(v["kind"], "Policy");
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
        let rules = v["rules"].as_array().unwrap();
        assert_eq!(rules.last().unwrap()["level"], "Metadata");
    }
}
