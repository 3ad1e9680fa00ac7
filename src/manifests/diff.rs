//! Differences between two Pods at the level a human reviews a manifest change
//! (`plinth manifest regenerate --diff`): flags, images, volumes, then any other field.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use serde_json::Value;

/// One flag added, removed or changed in a container's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// Container name.
    pub container: String,
    /// Flag name with its dashes (`--profiling`), or a positional argument.
    pub flag: String,
    /// Old value (`None` = the flag was not there).
    pub old: Option<String>,
    /// New value (`None` = the flag is gone).
    pub new: Option<String>,
}

fn flag_text(flag: &str, value: &str) -> String {
    if value.is_empty() {
        flag.to_string()
    } else {
        format!("{flag}={value}")
    }
}

impl fmt::Display for FlagChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.old, &self.new) {
            (None, Some(n)) => write!(f, "+ {}", flag_text(&self.flag, n)),
            (Some(o), None) => write!(f, "- {}", flag_text(&self.flag, o)),
            (Some(o), Some(n)) => write!(f, "~ {}: {} → {}", self.flag, o, n),
            (None, None) => write!(f, "  {}", self.flag),
        }
    }
}

/// Any reviewed difference between two Pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A command-line flag.
    Flag(FlagChange),
    /// A container image.
    Image {
        /// Container name.
        container: String,
        /// Old image.
        old: Option<String>,
        /// New image.
        new: Option<String>,
    },
    /// A volume (summarized as its source).
    Volume {
        /// Volume name.
        name: String,
        /// Old source.
        old: Option<String>,
        /// New source.
        new: Option<String>,
    },
    /// Any other field (JSON path and compact JSON values).
    Field {
        /// JSON path; list elements with a `name` by name, others by index, e.g.
        /// `spec.containers[kube-apiserver].livenessProbe.httpGet.path`.
        path: String,
        /// Old value.
        old: Option<String>,
        /// New value.
        new: Option<String>,
    },
}

fn change_line(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    old: &Option<String>,
    new: &Option<String>,
) -> fmt::Result {
    match (old, new) {
        (None, Some(n)) => write!(f, "+ {what}: {n}"),
        (Some(o), None) => write!(f, "- {what}: {o}"),
        (Some(o), Some(n)) => write!(f, "~ {what}: {o} → {n}"),
        (None, None) => write!(f, "  {what}"),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Flag(c) => c.fmt(f),
            Change::Image {
                container,
                old,
                new,
            } => change_line(f, &format!("image ({container})"), old, new),
            Change::Volume { name, old, new } => {
                change_line(f, &format!("volume {name}"), old, new)
            }
            Change::Field { path, old, new } => change_line(f, path, old, new),
        }
    }
}

fn containers(pod: &Pod) -> Vec<&Container> {
    pod.spec
        .as_ref()
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default()
}

/// `(flag, value)` pairs of a container's command + args, binary excluded.
fn flags_of(c: &Container) -> Vec<(String, String)> {
    let mut words: Vec<String> = c.command.clone().unwrap_or_default();
    if !words.is_empty() {
        words.remove(0);
    }
    words.extend(c.args.clone().unwrap_or_default());
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((n, v)) if w.starts_with('-') => (n.to_string(), v.to_string()),
            _ => (w, String::new()),
        })
        .collect()
}

fn container_flag_diff(
    name: &str,
    old: Option<&Container>,
    new: Option<&Container>,
) -> Vec<FlagChange> {
    let group = |c: Option<&Container>| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in c.map(flags_of).unwrap_or_default() {
            m.entry(k).or_default().push(v);
        }
        m
    };
    let (o, n) = (group(old), group(new));
    let mut names: Vec<&String> = o.keys().chain(n.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    let empty = Vec::new();
    for flag in names {
        let ov = o.get(flag).unwrap_or(&empty);
        let nv = n.get(flag).unwrap_or(&empty);
        if ov == nv {
            continue;
        }
        if ov.len() == 1 && nv.len() == 1 {
            out.push(FlagChange {
                container: name.to_string(),
                flag: flag.clone(),
                old: Some(ov[0].clone()),
                new: Some(nv[0].clone()),
            });
            continue;
        }
        let mut remaining = nv.clone();
        for v in ov {
            if let Some(i) = remaining.iter().position(|x| x == v) {
                remaining.remove(i);
            } else {
                out.push(FlagChange {
                    container: name.to_string(),
                    flag: flag.clone(),
                    old: Some(v.clone()),
                    new: None,
                });
            }
        }
        for v in remaining {
            out.push(FlagChange {
                container: name.to_string(),
                flag: flag.clone(),
                old: None,
                new: Some(v),
            });
        }
    }
    out
}

fn container_names(old: &Pod, new: &Pod) -> Vec<String> {
    let mut names: Vec<String> = containers(old)
        .into_iter()
        .chain(containers(new))
        .map(|c| c.name.clone())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn find<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    containers(pod).into_iter().find(|c| c.name == name)
}

/// Flag-level differences of every container (matched by name), sorted by flag name.
pub fn flag_diff(old: &Pod, new: &Pod) -> Vec<FlagChange> {
    container_names(old, new)
        .iter()
        .flat_map(|n| container_flag_diff(n, find(old, n), find(new, n)))
        .collect()
}

fn volume_summary(v: &Volume) -> String {
    if let Some(hp) = &v.host_path {
        match &hp.type_ {
            Some(t) if !t.is_empty() => format!("hostPath {} ({t})", hp.path),
            _ => format!("hostPath {}", hp.path),
        }
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// Every reviewed difference: flags, images, volumes, then any other field.
pub fn diff(old: &Pod, new: &Pod) -> Vec<Change> {
    let mut out: Vec<Change> = flag_diff(old, new).into_iter().map(Change::Flag).collect();
    for n in container_names(old, new) {
        let oi = find(old, &n).and_then(|c| c.image.clone());
        let ni = find(new, &n).and_then(|c| c.image.clone());
        if oi != ni {
            out.push(Change::Image {
                container: n,
                old: oi,
                new: ni,
            });
        }
    }
    let vols = |p: &Pod| -> BTreeMap<String, String> {
        p.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .map(|vs| {
                vs.iter()
                    .map(|v| (v.name.clone(), volume_summary(v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ov, nv) = (vols(old), vols(new));
    let mut names: Vec<&String> = ov.keys().chain(nv.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (o, n) = (ov.get(name), nv.get(name));
        if o != n {
            out.push(Change::Volume {
                name: name.clone(),
                old: o.cloned(),
                new: n.cloned(),
            });
        }
    }
    let strip = |p: &Pod| -> Value {
        let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
        if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("volumes");
            if let Some(Value::Array(cs)) = spec.get_mut("containers") {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("command");
                    c.remove("args");
                    c.remove("image");
                }
            }
        }
        v
    };
    field_diff(&strip(old), &strip(new), "", &mut out);
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `(name, element)` pairs when every element is an object with a unique string `name`.
fn by_name(a: &[Value]) -> Option<Vec<(&str, &Value)>> {
    if a.is_empty() {
        return None;
    }
    let mut out: Vec<(&str, &Value)> = Vec::new();
    for v in a {
        let n = v.get("name")?.as_str()?;
        if out.iter().any(|(m, _)| *m == n) {
            return None;
        }
        out.push((n, v));
    }
    Some(out)
}

fn field_diff(old: &Value, new: &Value, path: &str, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => field_diff(x, y, &join(k), out),
                    (x, y) => out.push(Change::Field {
                        path: join(k),
                        old: x.map(compact),
                        new: y.map(compact),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if by_name(a).is_some() && by_name(b).is_some() => {
            // Containers, env, volumeMounts, ports...: matched by name, not position.
            let (ma, mb) = (
                by_name(a).unwrap_or_default(),
                by_name(b).unwrap_or_default(),
            );
            let mut names: Vec<&str> = mb.iter().map(|(n, _)| *n).collect();
            names.extend(
                ma.iter()
                    .map(|(n, _)| *n)
                    .filter(|n| !mb.iter().any(|(m, _)| m == n)),
            );
            for n in names {
                let x = ma.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
                let y = mb.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
                let p = format!("{path}[{n}]");
                match (x, y) {
                    (Some(x), Some(y)) => field_diff(x, y, &p, out),
                    (x, y) => out.push(Change::Field {
                        path: p,
                        old: x.map(compact),
                        new: y.map(compact),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                field_diff(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(Change::Field {
            path: path.to_string(),
            old: Some(compact(old)),
            new: Some(compact(new)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(cmd: &[&str], image: &str) -> Pod {
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": image, "command": cmd}]}
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn flags_added_removed_changed() {
        let old = pod(&["bin", "--a=1", "--b=2", "--r=x", "--r=y"], "img:1");
        let new = pod(&["bin", "--a=9", "--c=3", "--r=y", "--r=z"], "img:2");
        let lines: Vec<String> = flag_diff(&old, &new)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            vec!["~ --a: 1 → 9", "- --b=2", "+ --c=3", "- --r=x", "+ --r=z"]
        );
        let all: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert!(
            all.contains(&"~ image (c): img:1 → img:2".to_string()),
            "{all:?}"
        );
        assert!(diff(&old, &old).is_empty());
    }
}
