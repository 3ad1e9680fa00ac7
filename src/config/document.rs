//! Splitting a config file into its YAML documents and sorting them by apiVersion + kind.

use serde_json::Value;

use super::error::{ConfigError, Errors};
use super::numbers;
use super::reader::{child, render};
use super::spec::KubeadmApiVersion;

/// kubeadm's API group.
pub const KUBEADM_GROUP: &str = "kubeadm.k8s.io";
/// plinth's own API version.
pub const PLINTH_API_VERSION: &str = "plinth.io/v1alpha1";
/// plinth's own document kind.
pub const PLINTH_KIND: &str = "PlinthConfiguration";

/// The kinds a document may have, for a missing or empty `kind`.
const KINDS: &str = "one of InitConfiguration, ClusterConfiguration, PlinthConfiguration \
    (KubeletConfiguration and KubeProxyConfiguration are accepted and ignored)";

/// The API versions a document may have, for a missing or empty `apiVersion`.
const API_VERSIONS: &str = "kubeadm.k8s.io/v1beta3 or kubeadm.k8s.io/v1beta4 for \
    InitConfiguration and ClusterConfiguration, plinth.io/v1alpha1 for PlinthConfiguration";

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
    /// How many (non-empty) documents the file holds, including ignored kinds.
    pub count: usize,
    /// True when a document was refused (bad apiVersion/kind, duplicate, not a mapping): its
    /// fields are missing, so nothing derived from them may be checked.
    pub dropped: bool,
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

/// A config file is a few hundred YAML nodes: these limits only stop hostile input.
const MAX_NODES_HINT: &str = "a kubeadm config file has a few hundred";

/// Operator-level words for a parser limit that was hit (`None`: not a limit error).
fn limit_reason(e: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach as B;
    use serde_saphyr::Error as E;
    let aliases =
        "YAML anchors and aliases (`&a` ... `*a`) repeat content: a \"billion laughs\" file";
    Some(match e {
        E::AliasError { error, .. } => return limit_reason(error),
        E::Budget { breach, .. } => match breach {
            B::Nodes { nodes } => format!(
                "it expands to more than {} YAML nodes ({nodes} when reading stopped; \
                 {MAX_NODES_HINT}); {aliases}?",
                nodes.saturating_sub(1)
            ),
            B::Events { events } => format!(
                "it expands to more than {} YAML parser events ({MAX_NODES_HINT} nodes); \
                 {aliases}?",
                events.saturating_sub(1)
            ),
            B::Aliases { aliases: n } => {
                format!(
                    "it uses more than {} YAML aliases; {aliases}?",
                    n.saturating_sub(1)
                )
            }
            B::Anchors { anchors } => {
                format!(
                    "it defines more than {} YAML anchors",
                    anchors.saturating_sub(1)
                )
            }
            B::Depth { depth } => format!(
                "it nests mappings/lists more than {} levels deep",
                depth.saturating_sub(1)
            ),
            B::Documents { documents } => format!(
                "it holds more than {} YAML documents (a config has at most a few)",
                documents.saturating_sub(1)
            ),
            _ => format!(
                "it exceeds a YAML size limit (too much text, too many merge keys or too \
                 much alias expansion for a config file); {aliases}?"
            ),
        },
        E::AliasReplayLimitExceeded {
            max_total_replayed_events,
            ..
        } => format!(
            "its YAML aliases expand to more than {max_total_replayed_events} parser events \
             ({MAX_NODES_HINT} nodes); {aliases}?"
        ),
        E::AliasExpansionLimitExceeded {
            max_expansions_per_anchor,
            ..
        } => format!(
            "one YAML anchor is expanded more than {max_expansions_per_anchor} times; {aliases}?"
        ),
        E::AliasReplayStackDepthExceeded { max_depth, .. } => {
            format!("its YAML aliases nest more than {max_depth} levels deep; {aliases}?")
        }
        _ => return None,
    })
}

/// The `apiVersion` string of a kubeadm version.
pub fn api_version_string(v: KubeadmApiVersion) -> &'static str {
    match v {
        KubeadmApiVersion::V1Beta3 => "kubeadm.k8s.io/v1beta3",
        KubeadmApiVersion::V1Beta4 => "kubeadm.k8s.io/v1beta4",
    }
}

/// Parses the YAML stream; syntax errors and resource limits are fatal (with `source:line:col`
/// or the limit in operator terms), while problems with individual documents are collected in
/// `errs`.
pub(crate) fn split(yaml: &str, source: &str, errs: &mut Errors) -> Result<Documents, ConfigError> {
    use serde_saphyr::MessageFormatter;
    let options = serde_saphyr::options! { with_snippet: false };
    let values: Vec<Value> =
        serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| {
            let e = e.without_snippet();
            if let Some(reason) = limit_reason(e) {
                return ConfigError::TooLarge {
                    source_name: source.to_string(),
                    reason,
                };
            }
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = serde_saphyr::UserMessageFormatter
                .format_message(e)
                .into_owned();
            ConfigError::Syntax {
                source_name: source.to_string(),
                line,
                column,
                message,
            }
        })?;
    // `---` alone, or a comment between separators, is an empty (null) document: no document.
    let mut numbers = numbers::written(yaml);
    let values: Vec<(usize, Value)> = values
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .collect();

    let errors_before = errs.len();
    let mut docs = Documents {
        count: values.len(),
        ..Documents::default()
    };
    for (i, value) in &values {
        let i = *i;
        let label = format!("document {}", i + 1);
        let Value::Object(map) = value else {
            errs.push(
                &label,
                render(value),
                format!("a mapping with apiVersion and kind: {ALLOWED_DOCUMENTS}"),
            );
            continue;
        };
        // Each of apiVersion and kind must be a non-empty string; say which one is wrong.
        let mut header = |key: &str, allowed: &str| -> Option<&str> {
            let field = format!("{label}.{key}");
            match map.get(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
                None => {
                    errs.push(field, "", format!("{key} is missing: {allowed}"));
                    None
                }
                Some(Value::Null) => {
                    errs.push(field, "", format!("{key} is empty: {allowed}"));
                    None
                }
                Some(Value::String(s)) => {
                    errs.push(field, s.as_str(), format!("{key} is empty: {allowed}"));
                    None
                }
                Some(other) => {
                    errs.push(field, render(other), format!("a string: {allowed}"));
                    None
                }
            }
        };
        let kind = header("kind", KINDS);
        let api_version = header("apiVersion", API_VERSIONS);
        let (Some(kind), Some(api_version)) = (kind, api_version) else {
            continue;
        };
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
    // Every error recorded in the loop above refused a document.
    docs.dropped = errs.len() > errors_before;

    // Numbers as written, keyed by full field path (Kind.a.b) for the documents kept.
    let kinds: Vec<(usize, &str)> = values
        .iter()
        .filter_map(|(i, v)| v.get("kind").and_then(Value::as_str).map(|k| (*i, k)))
        .collect();
    let written = numbers
        .drain(..)
        .filter_map(|(doc, path, text)| {
            let (_, kind) = kinds.iter().find(|(i, _)| *i == doc)?;
            Some((child(kind, &path), text))
        })
        .collect();
    errs.set_written(written);

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
        assert_eq!(errs[2].field, "document 3.apiVersion");
        assert!(errs[2]
            .allowed
            .starts_with("apiVersion is missing: kubeadm.k8s.io/v1beta3"));
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
