//! kubeadm's own feature gates (`ClusterConfiguration.featureGates`), per Kubernetes minor
//! version v1.24–v1.33, as kubeadm's `cmd/kubeadm/app/features/features.go` declares them:
//! unknown and removed gates are refused, values must be booleans, locked (GA) gates must keep
//! their value, deprecated gates are accepted with a warning. Also the `feature-gates` flag
//! syntax of the components' extraArgs (`Name=bool,...`).
//!
//! The table follows features.go at v1.24.0-alpha.1 (the source snapshot the real test
//! binaries are built from), v1.29, v1.30, v1.33 and v1.34-rc, plus kubeadm's release notes for
//! removals: IPv6DualStack removed in v1.24, UnversionedKubeletConfigMap (beta v1.24, GA v1.25)
//! removed in v1.26, UpgradeAddonsBeforeControlPlane (deprecated v1.28) removed in v1.31,
//! EtcdLearnerMode (alpha v1.27, beta v1.29, GA v1.32) removed in v1.33.

use serde_json::Value;

use super::error::Errors;
use super::reader::{nearest, render};
use super::spec::{KeyAlgorithm, KubeVersion};

/// A gate's maturity in one range of minor versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Alpha,
    Beta,
    /// GA: locked to its default.
    Ga,
    Deprecated,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Alpha => "alpha",
            Stage::Beta => "beta",
            Stage::Ga => "GA",
            Stage::Deprecated => "deprecated",
        }
    }
}

/// One stage of a gate over the minors `from..=to`.
#[derive(Debug)]
struct Span {
    from: u32,
    to: u32,
    stage: Stage,
    default: bool,
}

/// One kubeadm feature gate.
#[derive(Debug)]
struct Gate {
    name: &'static str,
    /// Stages in version order; outside them the gate does not exist.
    spans: &'static [Span],
    /// What replaced it or why it went away (for removed/deprecated messages).
    note: &'static str,
}

const fn span(from: u32, to: u32, stage: Stage, default: bool) -> Span {
    Span {
        from,
        to,
        stage,
        default,
    }
}

/// Versions plinth supports: v1.24 ..= v1.33.
const FIRST_MINOR: u32 = 24;

/// kubeadm's gates from v1.24 to v1.33 (alphabetical).
const GATES: &[Gate] = &[
    Gate {
        name: "ControlPlaneKubeletLocalMode",
        spans: &[
            span(31, 32, Stage::Alpha, false),
            span(33, 33, Stage::Beta, true),
        ],
        note: "",
    },
    Gate {
        name: "EtcdLearnerMode",
        spans: &[
            span(27, 28, Stage::Alpha, false),
            span(29, 31, Stage::Beta, true),
            span(32, 32, Stage::Ga, true),
        ],
        note: "GA and always on since v1.32",
    },
    Gate {
        // GA and locked in v1.23; removed in v1.24.0 (v1.24 pre-releases still had it).
        name: "IPv6DualStack",
        spans: &[],
        note: "GA and always on since v1.23 (set both an IPv4 and an IPv6 subnet for dual-stack)",
    },
    Gate {
        name: "NodeLocalCRISocket",
        spans: &[span(32, 33, Stage::Alpha, false)],
        note: "",
    },
    Gate {
        name: "PublicKeysECDSA",
        spans: &[
            span(24, 28, Stage::Alpha, false),
            span(29, 33, Stage::Deprecated, false),
        ],
        note: "use ClusterConfiguration.encryptionAlgorithm (kubeadm.k8s.io/v1beta4) instead",
    },
    Gate {
        name: "RootlessControlPlane",
        spans: &[span(24, 33, Stage::Alpha, false)],
        note: "",
    },
    Gate {
        name: "UnversionedKubeletConfigMap",
        spans: &[
            span(24, 24, Stage::Beta, true),
            span(25, 25, Stage::Ga, true),
        ],
        note: "GA and always on since v1.25",
    },
    Gate {
        name: "UpgradeAddonsBeforeControlPlane",
        spans: &[span(28, 30, Stage::Deprecated, false)],
        note: "addons are upgraded after all control-plane instances",
    },
    Gate {
        name: "WaitForAllControlPlaneComponents",
        spans: &[
            span(30, 32, Stage::Alpha, false),
            span(33, 33, Stage::Beta, true),
        ],
        note: "",
    },
];

impl Gate {
    fn at(&self, minor: u32) -> Option<&'static Span> {
        self.spans.iter().find(|s| (s.from..=s.to).contains(&minor))
    }

    /// Why the gate is not available in `minor`.
    fn absent_because(&self, minor: u32) -> String {
        let first = self.spans.first();
        let last = self.spans.last();
        match (first, last) {
            (Some(f), _) if minor < f.from => format!("{} exists from v1.{} on", self.name, f.from),
            (Some(_), Some(l)) => format!(
                "{} was removed in v1.{}{}",
                self.name,
                l.to + 1,
                if self.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.note)
                }
            ),
            // No span in the supported range: removed in v1.24 itself (IPv6DualStack).
            _ => format!(
                "{} was removed in v1.{FIRST_MINOR} ({})",
                self.name, self.note
            ),
        }
    }
}

/// The gates of `minor` with their stage and default, for "allowed" texts.
fn known_list(minor: u32) -> String {
    let list: Vec<String> = GATES
        .iter()
        .filter_map(|g| {
            g.at(minor)
                .map(|s| format!("{} ({}, default {})", g.name, s.stage.name(), s.default))
        })
        .collect();
    list.join(", ")
}

/// What the gates change in plinth's spec.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// `PublicKeysECDSA` given: ECDSA-P256 when true, RSA-2048 when false (kubeadm lets the
    /// gate, when set, win over `encryptionAlgorithm`).
    pub key_algorithm: Option<KeyAlgorithm>,
}

/// Checks `featureGates` (each entry as (field path, gate name, value)) for Kubernetes
/// `version` (`None` when the version itself is invalid: only the value types are checked).
pub(crate) fn check(
    gates: &[(String, String, Value)],
    version: Option<&KubeVersion>,
    errs: &mut Errors,
) -> Effects {
    let mut effects = Effects::default();
    for (field, name, value) in gates {
        let Value::Bool(on) = value else {
            errs.push(
                field,
                render(value),
                "true or false (a YAML boolean, unquoted): feature gate values are booleans",
            );
            continue;
        };
        let on = *on;
        let Some(version) = version else { continue };
        let minor = version.minor;
        let v = format!("v{}.{}", version.major, version.minor);
        let gate = GATES.iter().find(|g| g.name == name);
        let Some(gate) = gate else {
            let names: Vec<&str> = GATES
                .iter()
                .filter(|g| g.at(minor).is_some())
                .map(|g| g.name)
                .collect();
            let hint = nearest(name, &names)
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            errs.push(
                field,
                on.to_string(),
                format!(
                    "not a kubeadm feature gate: {hint}the gates of kubeadm {v} are {}",
                    known_list(minor)
                ),
            );
            continue;
        };
        let Some(stage) = gate.at(minor) else {
            errs.push(
                field,
                on.to_string(),
                format!(
                    "a feature gate of kubeadm {v}: {}; the gates of {v} are {}",
                    gate.absent_because(minor),
                    known_list(minor)
                ),
            );
            continue;
        };
        if stage.stage == Stage::Ga && on != stage.default {
            errs.push(
                field,
                on.to_string(),
                format!(
                    "{}: {} is GA in {v} and locked to {} ({})",
                    stage.default, gate.name, stage.default, gate.note
                ),
            );
            continue;
        }
        if stage.stage == Stage::Deprecated {
            tracing::warn!(
                field = %field,
                "feature gate {} is deprecated in kubeadm {v}: {}",
                gate.name,
                gate.note
            );
        }
        match gate.name {
            "PublicKeysECDSA" => {
                effects.key_algorithm = Some(if on {
                    KeyAlgorithm::EcdsaP256
                } else {
                    KeyAlgorithm::Rsa2048
                });
            }
            "RootlessControlPlane" if on => errs.push(
                field,
                "true",
                "false (or leave it unset): plinth does not run the control-plane components as \
                 per-component non-root users (its `cis` security profile runs etcd unprivileged)",
            ),
            _ => tracing::debug!(
                field = %field,
                "feature gate {}={on}: no effect on what plinth renders",
                gate.name
            ),
        }
    }
    effects
}

/// Go's `strconv.ParseBool` spellings.
pub(crate) const GO_BOOLS: &[&str] = &[
    "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
];

/// Checks the syntax of a component's `--feature-gates` value: `Name=bool` pairs separated by
/// commas, as the component's flag parser requires (which names exist is the component's own
/// business: it refuses unknown ones at start).
pub(crate) fn check_flag_value(field: &str, value: &str, errs: &mut Errors) {
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ok = part
            .split_once('=')
            .is_some_and(|(k, v)| !k.trim().is_empty() && GO_BOOLS.contains(&v.trim()));
        if !ok {
            errs.push(
                field,
                value,
                format!(
                    "comma-separated Name=true|false pairs, e.g. \"SomeGate=true,OtherGate=false\" \
                     (`{part}` is not one)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(minor: u32) -> KubeVersion {
        KubeVersion {
            major: 1,
            minor,
            patch: 0,
            pre: String::new(),
        }
    }

    fn run(name: &str, value: Value, minor: u32) -> (Effects, Vec<super::super::FieldError>) {
        let mut errs = Errors::default();
        let gates = vec![(
            format!("ClusterConfiguration.featureGates.{name}"),
            name.to_string(),
            value,
        )];
        let e = check(&gates, Some(&version(minor)), &mut errs);
        (e, errs.into_vec())
    }

    #[test]
    fn every_supported_minor_has_gates_and_spans_are_ordered() {
        for minor in FIRST_MINOR..=33 {
            assert!(!known_list(minor).is_empty(), "v1.{minor}");
        }
        for g in GATES {
            for w in g.spans.windows(2) {
                assert_eq!(w[0].to + 1, w[1].from, "{}", g.name);
            }
        }
    }

    #[test]
    fn unknown_gate_is_refused_with_the_known_ones() {
        let (_, errs) = run("NoSuchGate", Value::Bool(true), 33);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].field,
            "ClusterConfiguration.featureGates.NoSuchGate"
        );
        assert_eq!(errs[0].value, "true");
        assert!(
            errs[0].allowed.contains("not a kubeadm feature gate")
                && errs[0]
                    .allowed
                    .contains("WaitForAllControlPlaneComponents (beta, default true)"),
            "{}",
            errs[0].allowed
        );
    }

    #[test]
    fn typo_gets_a_suggestion() {
        let (_, errs) = run("PublicKeyECDSA", Value::Bool(true), 28);
        assert!(
            errs[0].allowed.contains("did you mean `PublicKeysECDSA`?"),
            "{}",
            errs[0].allowed
        );
    }

    #[test]
    fn non_boolean_value_is_refused() {
        let (_, errs) = run("PublicKeysECDSA", Value::String("maybe".into()), 33);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].value, "maybe");
        assert!(errs[0].allowed.starts_with("true or false"));
        let (_, errs) = run("PublicKeysECDSA", Value::String("true".into()), 33);
        assert_eq!(
            errs.len(),
            1,
            "a quoted \"true\" is a string, as for kubeadm"
        );
    }

    #[test]
    fn removed_and_not_yet_added_gates_say_so() {
        let (_, errs) = run("EtcdLearnerMode", Value::Bool(true), 33);
        assert!(
            errs[0]
                .allowed
                .contains("EtcdLearnerMode was removed in v1.33 (GA and always on since v1.32)"),
            "{}",
            errs[0].allowed
        );
        let (_, errs) = run("WaitForAllControlPlaneComponents", Value::Bool(true), 29);
        assert!(
            errs[0]
                .allowed
                .contains("WaitForAllControlPlaneComponents exists from v1.30 on"),
            "{}",
            errs[0].allowed
        );
        let (_, errs) = run("IPv6DualStack", Value::Bool(true), 24);
        assert!(
            errs[0]
                .allowed
                .contains("IPv6DualStack was removed in v1.24 (GA and always on"),
            "{}",
            errs[0].allowed
        );
    }

    #[test]
    fn locked_gate_keeps_its_value() {
        let (_, errs) = run("EtcdLearnerMode", Value::Bool(false), 32);
        assert!(
            errs[0].allowed.contains("GA in v1.32 and locked to true"),
            "{}",
            errs[0].allowed
        );
        let (_, errs) = run("EtcdLearnerMode", Value::Bool(true), 32);
        assert!(errs.is_empty());
    }

    #[test]
    fn public_keys_ecdsa_selects_the_key_algorithm() {
        let (e, errs) = run("PublicKeysECDSA", Value::Bool(true), 33);
        assert!(errs.is_empty(), "deprecated gates are accepted: {errs:?}");
        assert_eq!(e.key_algorithm, Some(KeyAlgorithm::EcdsaP256));
        let (e, _) = run("PublicKeysECDSA", Value::Bool(false), 24);
        assert_eq!(e.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    }

    #[test]
    fn rootless_control_plane_is_not_implemented() {
        let (_, errs) = run("RootlessControlPlane", Value::Bool(true), 30);
        assert!(errs[0].allowed.starts_with("false"), "{}", errs[0].allowed);
        let (_, errs) = run("RootlessControlPlane", Value::Bool(false), 30);
        assert!(errs.is_empty());
    }

    #[test]
    fn flag_value_syntax() {
        let mut errs = Errors::default();
        check_flag_value("F", "A=true,B=false, C=1", &mut errs);
        assert!(errs.is_empty());
        check_flag_value("F", "A=maybe,B", &mut errs);
        let list = errs.into_vec();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].value, "A=maybe,B");
        assert!(list[0].allowed.contains("`A=maybe` is not one"));
        assert!(list[1].allowed.contains("`B` is not one"));
    }
}
