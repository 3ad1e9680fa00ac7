//! Splitting a config file into its YAML documents and sorting them by apiVersion + kind.

use serde_json::Value;

use super::error::{ConfigError, Errors};
use super::reader::render;
use super::spec::KubeadmApiVersion;

/// kubeadm's API group.
pub const KUBEADM_GROUP: &str = "kubeadm.k8s.io";
/// plinth's own API version.
pub const PLINTH_API_VERSION: &str = "plinth.io/v1alpha1";
/// plinth's own document kind.
pub const PLINTH_KIND: &str = "PlinthConfiguration";

/// What each document may be, for error messages.
const ALLOWED_DOCUMENTS: &str = "InitConfiguration or ClusterConfiguration \
    (kubeadm.k8s.io/v1beta3 or kubeadm.k8s.io/v1beta4), PlinthConfiguration \
    (plinth.io/v1alpha1), or KubeletConfiguration (kubelet.config.k8s.io) / \
    KubeProxyConfiguration (kubeproxy.config.k8s.io), which are accepted and ignored";

/// The documents of one config file, by kind.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    /// `InitConfiguration` and its API version.
    pub init: Option<(KubeadmApiVersion, Value)>,
    /// `ClusterConfiguration` and its API version.
    pub cluster: Option<(KubeadmApiVersion, Value)>,
    /// `PlinthConfiguration`.
    pub plinth: Option<Value>,
}

impl Documents {
    /// The kubeadm API version in use (v1beta4 when no kubeadm document is present).
    pub fn api_version(&self) -> KubeadmApiVersion {
        self.init
            .as_ref()
            .or(self.cluster.as_ref())
            .map(|(v, _)| *v)
            .unwrap_or(KubeadmApiVersion::V1Beta4)
    }
}

/// The `apiVersion` string of a kubeadm version.
pub fn api_version_string(v: KubeadmApiVersion) -> &'static str {
    match v {
        KubeadmApiVersion::V1Beta3 => "kubeadm.k8s.io/v1beta3",
        KubeadmApiVersion::V1Beta4 => "kubeadm.k8s.io/v1beta4",
    }
}

/// Parses the YAML stream; syntax errors are fatal (with `source:line:col`), while problems
/// with individual documents are collected in `errs`.
pub(crate) fn split(yaml: &str, source: &str, errs: &mut Errors) -> Result<Documents, ConfigError> {
    use serde_saphyr::MessageFormatter;
    let options = serde_saphyr::options! { with_snippet: false };
    let values: Vec<Value> =
        serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = serde_saphyr::UserMessageFormatter
                .format_message(e.without_snippet())
                .into_owned();
            ConfigError::Syntax {
                source_name: source.to_string(),
                line,
                column,
                message,
            }
        })?;

    let mut docs = Documents::default();
    for (i, value) in values.iter().enumerate() {
        let label = format!("document {}", i + 1);
        let Value::Object(map) = value else {
            errs.push(
                &label,
                render(value),
                format!("a mapping with apiVersion and kind: {ALLOWED_DOCUMENTS}"),
            );
            continue;
        };
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version.is_empty() || kind.is_empty() {
            errs.push(
                format!("{label} (apiVersion/kind)"),
                format!("apiVersion: {api_version:?}, kind: {kind:?}"),
                format!("both apiVersion and kind set: {ALLOWED_DOCUMENTS}"),
            );
            continue;
        }
        let (group, _) = api_version.split_once('/').unwrap_or((api_version, ""));
        match kind {
            "InitConfiguration" | "ClusterConfiguration" => {
                let version = match api_version {
                    "kubeadm.k8s.io/v1beta3" => KubeadmApiVersion::V1Beta3,
                    "kubeadm.k8s.io/v1beta4" => KubeadmApiVersion::V1Beta4,
                    other => {
                        let hint = if group == KUBEADM_GROUP {
                            " (older versions are not supported; convert with `kubeadm config migrate`)"
                        } else {
                            ""
                        };
                        errs.push(
                            format!("{kind}.apiVersion"),
                            other,
                            format!("kubeadm.k8s.io/v1beta3 or kubeadm.k8s.io/v1beta4{hint}"),
                        );
                        continue;
                    }
                };
                let slot = if kind == "InitConfiguration" {
                    &mut docs.init
                } else {
                    &mut docs.cluster
                };
                if slot.is_some() {
                    errs.push(
                        format!("{label} ({kind})"),
                        kind,
                        format!("at most one {kind} document per file"),
                    );
                    continue;
                }
                *slot = Some((version, value.clone()));
            }
            PLINTH_KIND => {
                if api_version != PLINTH_API_VERSION {
                    errs.push(
                        "PlinthConfiguration.apiVersion",
                        api_version,
                        PLINTH_API_VERSION,
                    );
                    continue;
                }
                if docs.plinth.is_some() {
                    errs.push(
                        format!("{label} ({kind})"),
                        kind,
                        "at most one PlinthConfiguration document per file",
                    );
                    continue;
                }
                docs.plinth = Some(value.clone());
            }
            "KubeletConfiguration" if group == "kubelet.config.k8s.io" => {
                tracing::warn!(
                    document = i + 1,
                    "ignoring KubeletConfiguration: plinth runs no kubelet (its agent takes no kubelet config)"
                );
            }
            "KubeProxyConfiguration" if group == "kubeproxy.config.k8s.io" => {
                tracing::warn!(
                    document = i + 1,
                    "ignoring KubeProxyConfiguration: plinth does not deploy kube-proxy"
                );
            }
            _ => {
                errs.push(
                    format!("{label} (apiVersion/kind)"),
                    format!("apiVersion: {api_version}, kind: {kind}"),
                    ALLOWED_DOCUMENTS,
                );
            }
        }
    }

    if let (Some((vi, _)), Some((vc, _))) = (&docs.init, &docs.cluster) {
        if vi != vc {
            errs.push(
                "ClusterConfiguration.apiVersion",
                api_version_string(*vc),
                format!(
                    "the same version as InitConfiguration ({})",
                    api_version_string(*vi)
                ),
            );
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_ok(yaml: &str) -> (Documents, Vec<super::super::error::FieldError>) {
        let mut errs = Errors::default();
        let docs = split(yaml, "test.yaml", &mut errs).expect("no syntax error");
        (docs, errs.into_vec())
    }

    #[test]
    fn sorts_documents_by_kind() {
        let (docs, errs) = split_ok(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\n\
             apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\n---\n\
             apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert!(docs.init.is_some() && docs.cluster.is_some() && docs.plinth.is_some());
        assert_eq!(docs.api_version(), KubeadmApiVersion::V1Beta3);
    }

    #[test]
    fn empty_stream_defaults_to_v1beta4() {
        let (docs, errs) = split_ok("");
        assert!(errs.is_empty());
        assert_eq!(docs.api_version(), KubeadmApiVersion::V1Beta4);
    }

    #[test]
    fn syntax_error_has_position() {
        let mut errs = Errors::default();
        let err = split("a: b\n  c: [\n", "bad.yaml", &mut errs).unwrap_err();
        let text = err.to_string();
        match err {
            ConfigError::Syntax { line, column, .. } => {
                assert!(line >= 1 && column >= 1, "{text}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(text.starts_with("bad.yaml:"), "{text}");
    }

    #[test]
    fn unknown_kind_and_old_version_are_errors() {
        let (_, errs) = split_ok(
            "apiVersion: v1\nkind: ConfigMap\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\n---\n\
             kind: ClusterConfiguration\n",
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].field, "document 1 (apiVersion/kind)");
        assert_eq!(errs[0].value, "apiVersion: v1, kind: ConfigMap");
        assert!(errs[0].allowed.contains("PlinthConfiguration"));
        assert_eq!(errs[1].field, "InitConfiguration.apiVersion");
        assert!(errs[1].allowed.contains("kubeadm config migrate"));
        assert!(errs[2].allowed.contains("both apiVersion and kind"));
    }

    #[test]
    fn mixed_versions_and_duplicates_are_errors() {
        let (_, errs) = split_ok(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "document 3 (InitConfiguration)",
                "ClusterConfiguration.apiVersion"
            ]
        );
        assert!(errs[1].allowed.contains("kubeadm.k8s.io/v1beta4"));
    }
}
