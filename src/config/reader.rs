//! Strict, error-collecting reading of one YAML mapping (held as a `serde_json::Value`).
//!
//! An [`Obj`] remembers every key the caller asked for (or declared as accepted-but-ignored);
//! [`Obj::finish`] then reports every other key as an unknown field, with the nearest valid
//! name. Type mismatches are reported with the full field path. Nothing stops at the first
//! error: all problems end up in [`Errors`].

use serde_json::{Map, Value};

pub(crate) use super::error::render;
use super::error::Errors;

/// A mapping being read, with its field path (`ClusterConfiguration.networking`).
pub(crate) struct Obj<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
    known: Vec<&'static str>,
    /// Keys valid only in another API version: (key, where it is valid).
    elsewhere: Vec<(&'static str, &'static str)>,
}

/// What a value of `value`'s kind is called in messages.
fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Joins a parent path and a key.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The valid name closest to `unknown`, if it is close enough to be a plausible typo.
pub(crate) fn nearest<'k>(unknown: &str, candidates: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            let score = strsim::normalized_damerau_levenshtein(&lower, &c.to_ascii_lowercase());
            (score, *c)
        })
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Reads a string leaf: strings as they are; integers and booleans as their YAML text (so
/// `v: 2` in a string map works); anything else is a type error.
pub(crate) fn as_string(path: &str, value: &Value, errs: &mut Errors) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Number(_) => {
            errs.push(
                path,
                errs.written(path, value),
                "a string (quote the value, e.g. \"1.10\", so YAML does not read it as a number)",
            );
            None
        }
        other => {
            errs.push(
                path,
                errs.written(path, other),
                format!("a string, not {}", kind_name(other)),
            );
            None
        }
    }
}

impl<'a> Obj<'a> {
    /// Starts reading `value` at `path`. `null` reads as an empty mapping; anything else that
    /// is not a mapping is an error (and then reads as empty).
    pub(crate) fn new(path: impl Into<String>, value: &'a Value, errs: &mut Errors) -> Self {
        let path = path.into();
        let map = match value {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                errs.push(
                    &path,
                    errs.written(&path, other),
                    format!("a mapping, not {}", kind_name(other)),
                );
                None
            }
        };
        Obj {
            path,
            map,
            known: Vec::new(),
            elsewhere: Vec::new(),
        }
    }

    /// This object's field path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The full path of `key` inside this object.
    pub(crate) fn field(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The raw value of `key` (marking it known); `null` counts as absent.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        match self.map.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Declares keys that are valid but not used by plinth; any value is accepted.
    pub(crate) fn ignore(&mut self, keys: &[&'static str]) {
        for key in keys {
            if self.map.is_some_and(|m| m.contains_key(*key)) {
                tracing::debug!(field = %self.field(key), "accepted and ignored (not used by plinth)");
            }
            self.known.push(key);
        }
    }

    /// Declares keys that exist only in another API version (`valid_in` says which), so the
    /// unknown-field error can say so instead of guessing a spelling.
    pub(crate) fn only_in(&mut self, keys: &[&'static str], valid_in: &'static str) {
        self.elsewhere.extend(keys.iter().map(|k| (*k, valid_in)));
    }

    /// A string field.
    pub(crate) fn string(&mut self, key: &'static str, errs: &mut Errors) -> Option<String> {
        let v = self.raw(key)?;
        as_string(&self.field(key), v, errs)
    }

    /// A string field where an empty string means "unset" (Go `omitempty` semantics).
    pub(crate) fn nonempty_string(
        &mut self,
        key: &'static str,
        errs: &mut Errors,
    ) -> Option<String> {
        self.string(key, errs).filter(|s| !s.is_empty())
    }

    /// An integer field (any integer; range checks are the caller's). `what` says what is
    /// allowed, e.g. "a port number between 1 and 65535".
    pub(crate) fn int(&mut self, key: &'static str, what: &str, errs: &mut Errors) -> Option<i64> {
        let v = self.raw(key)?;
        let field = self.field(key);
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    let written = errs.written(&field, v);
                    errs.push(field, written, what);
                    None
                }
            },
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    errs.push(field, s.clone(), what);
                    None
                }
            },
            other => {
                errs.push(
                    &field,
                    errs.written(&field, other),
                    format!("{what}, not {}", kind_name(other)),
                );
                None
            }
        }
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, key: &'static str, errs: &mut Errors) -> Option<bool> {
        let v = self.raw(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            other => {
                let field = self.field(key);
                let written = errs.written(&field, other);
                errs.push(field, written, "true or false");
                None
            }
        }
    }

    /// A list field: each element with its path (`field[i]`).
    pub(crate) fn list(
        &mut self,
        key: &'static str,
        errs: &mut Errors,
    ) -> Option<Vec<(String, &'a Value)>> {
        let v = self.raw(key)?;
        let field = self.field(key);
        match v {
            Value::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{field}[{i}]"), item))
                    .collect(),
            ),
            other => {
                errs.push(
                    &field,
                    errs.written(&field, other),
                    format!("a list, not {}", kind_name(other)),
                );
                None
            }
        }
    }

    /// A list of strings.
    pub(crate) fn string_list(
        &mut self,
        key: &'static str,
        errs: &mut Errors,
    ) -> Option<Vec<(String, String)>> {
        let items = self.list(key, errs)?;
        Some(
            items
                .into_iter()
                .filter_map(|(path, v)| as_string(&path, v, errs).map(|s| (path, s)))
                .collect(),
        )
    }

    /// A map of string to string (v1beta3 `extraArgs`), as (path, key, value) sorted by key.
    pub(crate) fn string_map(
        &mut self,
        key: &'static str,
        errs: &mut Errors,
    ) -> Option<Vec<(String, String, String)>> {
        let v = self.raw(key)?;
        let field = self.field(key);
        match v {
            Value::Object(m) => {
                // serde_json's map is ordered by key, which is exactly the order we want.
                Some(
                    m.iter()
                        .filter_map(|(k, v)| {
                            let p = child(&field, k);
                            as_string(&p, v, errs).map(|s| (p, k.clone(), s))
                        })
                        .collect(),
                )
            }
            other => {
                errs.push(
                    &field,
                    errs.written(&field, other),
                    format!("a mapping of names to values, not {}", kind_name(other)),
                );
                None
            }
        }
    }

    /// A nested mapping field (`None` when absent or null).
    pub(crate) fn obj(&mut self, key: &'static str, errs: &mut Errors) -> Option<Obj<'a>> {
        let v = self.raw(key)?;
        Some(Obj::new(self.field(key), v, errs))
    }

    /// True when `key` is present with a non-null value (does not mark it known).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map
            .and_then(|m| m.get(key))
            .is_some_and(|v| !v.is_null())
    }

    /// Reports every key that was neither read nor declared, suggesting the nearest valid name.
    pub(crate) fn finish(self, errs: &mut Errors) {
        let Some(map) = self.map else { return };
        for (key, value) in map {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let mut valid: Vec<&str> = self.known.clone();
            valid.sort_unstable();
            valid.dedup();
            let other = self.elsewhere.iter().find(|(k, _)| k == key);
            let hint = match (other, nearest(key, &valid)) {
                (Some((_, valid_in)), _) => {
                    format!("unknown field in this API version; it exists only in {valid_in}")
                }
                (None, Some(name)) => format!("unknown field; did you mean `{name}`?"),
                (None, None) => format!("unknown field; valid fields here: {}", valid.join(", ")),
            };
            let field = child(&self.path, key);
            let written = errs.written(&field, value);
            errs.push(field, written, hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_with_nearest_name() {
        let v = json!({"serviceSubnett": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"});
        let mut errs = Errors::default();
        let mut o = Obj::new("ClusterConfiguration.networking", &v, &mut errs);
        assert_eq!(
            o.string("podSubnet", &mut errs).as_deref(),
            Some("10.244.0.0/16")
        );
        assert_eq!(o.string("serviceSubnet", &mut errs), None);
        o.ignore(&["dnsDomain"]);
        o.finish(&mut errs);
        let list = errs.into_vec();
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0].field,
            "ClusterConfiguration.networking.serviceSubnett"
        );
        assert_eq!(list[0].value, "10.96.0.0/12");
        assert!(
            list[0].allowed.contains("did you mean `serviceSubnet`?"),
            "{}",
            list[0].allowed
        );
    }

    #[test]
    fn far_off_unknown_field_lists_valid_fields() {
        let v = json!({"zzzzzzzz": 1});
        let mut errs = Errors::default();
        let mut o = Obj::new("X", &v, &mut errs);
        o.ignore(&["alpha", "beta"]);
        o.finish(&mut errs);
        let list = errs.into_vec();
        assert_eq!(
            list[0].allowed,
            "unknown field; valid fields here: alpha, beta"
        );
    }

    #[test]
    fn type_errors_name_the_path_and_collect_all() {
        let v = json!({"a": [1], "b": "x", "c": {"d": 1}, "e": 1.5});
        let mut errs = Errors::default();
        let mut o = Obj::new("Doc", &v, &mut errs);
        assert_eq!(o.string("a", &mut errs), None);
        assert_eq!(o.int("b", "an integer", &mut errs), None);
        assert_eq!(o.string("c", &mut errs), None);
        assert_eq!(o.string("e", &mut errs), None);
        o.finish(&mut errs);
        let list = errs.into_vec();
        let fields: Vec<&str> = list.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["Doc.a", "Doc.b", "Doc.c", "Doc.e"]);
        assert!(list[0].allowed.contains("a string, not a list"));
        assert!(list[1].allowed.contains("an integer"));
        assert!(list[3].allowed.contains("quote the value"));
    }

    #[test]
    fn scalars_read_as_strings_and_null_is_absent() {
        let v = json!({"n": 2, "b": false, "z": null});
        let mut errs = Errors::default();
        let mut o = Obj::new("M", &v, &mut errs);
        assert_eq!(o.string("n", &mut errs).as_deref(), Some("2"));
        assert_eq!(o.string("b", &mut errs).as_deref(), Some("false"));
        assert_eq!(o.string("z", &mut errs), None);
        o.finish(&mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn string_map_is_sorted_with_paths() {
        let v = json!({"m": {"zeta": "1", "alpha": "2"}});
        let mut errs = Errors::default();
        let mut o = Obj::new("C", &v, &mut errs);
        let m = o.string_map("m", &mut errs).unwrap_or_default();
        assert_eq!(
            m,
            vec![
                (
                    "C.m.alpha".to_string(),
                    "alpha".to_string(),
                    "2".to_string()
                ),
                ("C.m.zeta".to_string(), "zeta".to_string(), "1".to_string()),
            ]
        );
    }

    #[test]
    fn non_mapping_is_an_error() {
        let v = json!([1, 2]);
        let mut errs = Errors::default();
        let o = Obj::new("InitConfiguration", &v, &mut errs);
        o.finish(&mut errs);
        let list = errs.into_vec();
        assert_eq!(list.len(), 1);
        assert!(list[0].allowed.contains("a mapping, not a list"));
    }
}
