//! Strategic merge patch for a Pod (the `patchStrategy`/`patchMergeKey` tags of core/v1):
//! maps merge recursively, `null` deletes a key, lists with a merge key (containers and
//! volumes by `name`, volumeMounts by `mountPath`, env by `name`, ports by `containerPort`,
//! ...) merge element by element, `finalizers` merge as a set, every other list is replaced.
//! Directives: `$patch: replace` / `$patch: delete` (on maps and list elements),
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` (accepted,
//! order is not changed).

use serde_json::{Map, Value};

/// How a list at a given path is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Replace the whole list.
    Replace,
    /// Merge elements that share the value of this key.
    MergeByKey(&'static str),
    /// Union of primitive values.
    MergePrimitive,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The list strategy of the field at `path` (field names from the Pod root, no indices).
fn strategy(path: &[String]) -> ListStrategy {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["metadata", "ownerReferences"] => ListStrategy::MergeByKey("uid"),
        ["metadata", "finalizers"] => ListStrategy::MergePrimitive,
        ["spec", c] if CONTAINER_LISTS.contains(c) => ListStrategy::MergeByKey("name"),
        ["spec", "volumes"] => ListStrategy::MergeByKey("name"),
        ["spec", "imagePullSecrets"] => ListStrategy::MergeByKey("name"),
        ["spec", "hostAliases"] => ListStrategy::MergeByKey("ip"),
        ["spec", "resourceClaims"] => ListStrategy::MergeByKey("name"),
        ["spec", "schedulingGates"] => ListStrategy::MergeByKey("name"),
        ["spec", "topologySpreadConstraints"] => ListStrategy::MergeByKey("topologyKey"),
        ["spec", c, field] if CONTAINER_LISTS.contains(c) => match *field {
            "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
            "volumeDevices" => ListStrategy::MergeByKey("devicePath"),
            "env" => ListStrategy::MergeByKey("name"),
            "ports" => ListStrategy::MergeByKey("containerPort"),
            _ => ListStrategy::Replace,
        },
        ["spec", c, "resources", "claims"] if CONTAINER_LISTS.contains(c) => {
            ListStrategy::MergeByKey("name")
        }
        _ => ListStrategy::Replace,
    }
}

/// Why a strategic merge patch cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicError {
    /// The patch is not a mapping.
    #[error("a strategic merge patch must be a mapping")]
    PatchNotMapping,
    /// The document is not a mapping.
    #[error("the document to patch is not a mapping")]
    DocumentNotMapping,
    /// A `$patch` directive this merge does not know.
    #[error("unknown $patch directive {0:?}")]
    UnknownDirective(String),
    /// `$retainKeys` is not a list.
    #[error("$retainKeys must be a list")]
    RetainKeysNotList,
    /// A list merged by key holds something other than a mapping.
    #[error("{path}: list elements must be mappings with the merge key {key:?}")]
    ElementNotMapping {
        /// The list's field path.
        path: String,
        /// The merge key.
        key: &'static str,
    },
    /// A list element lacks the merge key.
    #[error("{path}: element without the merge key {key:?}")]
    MissingMergeKey {
        /// The list's field path.
        path: String,
        /// The merge key.
        key: &'static str,
    },
}

/// Applies strategic merge `patch` to `doc` (a Pod as JSON).
pub(crate) fn apply(doc: &mut Value, patch: &Value) -> Result<(), StrategicError> {
    let Value::Object(p) = patch else {
        return Err(StrategicError::PatchNotMapping);
    };
    match doc {
        Value::Object(d) => merge_map(d, p, &mut Vec::new()),
        _ => Err(StrategicError::DocumentNotMapping),
    }
}

fn directive(v: &Value) -> Option<&str> {
    v.as_object()
        .and_then(|m| m.get("$patch"))
        .and_then(Value::as_str)
}

/// A patch value with every directive removed (for values inserted as new).
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| directive(e).is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), StrategicError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = match strip(&Value::Object(patch.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(StrategicError::UnknownDirective(other.to_string())),
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), pv) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            target.remove(k);
            continue;
        }
        path.push(k.clone());
        let result = merge_value(target, k, pv, path);
        path.pop();
        result?;
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let Value::Array(keys) = retain else {
            return Err(StrategicError::RetainKeysNotList);
        };
        target.retain(|k, _| keys.iter().any(|x| x.as_str() == Some(k.as_str())));
    }
    Ok(())
}

fn merge_value(
    target: &mut Map<String, Value>,
    key: &str,
    pv: &Value,
    path: &mut Vec<String>,
) -> Result<(), StrategicError> {
    match (target.get_mut(key), pv) {
        (Some(Value::Object(tm)), Value::Object(pm)) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                target.remove(key);
                Ok(())
            } else {
                merge_map(tm, pm, path)
            }
        }
        (Some(Value::Array(tl)), Value::Array(pl)) => merge_list(tl, pl, path),
        (_, Value::Object(pm)) if pm.get("$patch").and_then(Value::as_str) == Some("delete") => {
            target.remove(key);
            Ok(())
        }
        (_, v) => {
            target.insert(key.to_string(), strip(v));
            Ok(())
        }
    }
}

fn merge_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    path: &mut Vec<String>,
) -> Result<(), StrategicError> {
    if patch.iter().any(|e| directive(e) == Some("replace")) {
        *target = patch
            .iter()
            .filter(|e| directive(e) != Some("replace"))
            .map(strip)
            .collect();
        return Ok(());
    }
    match strategy(path) {
        ListStrategy::Replace => {
            *target = patch.iter().map(strip).collect();
        }
        ListStrategy::MergePrimitive => {
            for v in patch {
                if !target.contains(v) {
                    target.push(v.clone());
                }
            }
        }
        ListStrategy::MergeByKey(key) => {
            for pe in patch {
                let Value::Object(pm) = pe else {
                    return Err(StrategicError::ElementNotMapping {
                        path: path.join("."),
                        key,
                    });
                };
                let Some(kv) = pm.get(key) else {
                    return Err(StrategicError::MissingMergeKey {
                        path: path.join("."),
                        key,
                    });
                };
                let pos = target
                    .iter()
                    .position(|te| te.as_object().and_then(|m| m.get(key)) == Some(kv));
                match (directive(pe), pos) {
                    (Some("delete"), Some(i)) => {
                        target.remove(i);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(i)) => {
                        if let Value::Object(tm) = &mut target[i] {
                            merge_map(tm, pm, path)?;
                        }
                    }
                    (_, None) => target.push(strip(pe)),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
            "spec": {
                "containers": [{
                    "name": "c",
                    "command": ["c", "--a=1"],
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}]
                }],
                "volumes": [{"name": "v", "hostPath": {"path": "/v"}}],
                "tolerations": [{"key": "k"}]
            }
        })
    }

    #[test]
    fn merges_lists_by_key_and_replaces_others() {
        let mut d = pod();
        let p = json!({
            "metadata": {"labels": {"b": null, "c": "3"}},
            "spec": {
                "containers": [{
                    "name": "c",
                    "command": ["c", "--b=2"],
                    "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}],
                    "volumeMounts": [{"name": "w", "mountPath": "/w"}]
                }],
                "volumes": [{"name": "w", "hostPath": {"path": "/w"}}],
                "tolerations": [{"key": "z"}]
            }
        });
        apply(&mut d, &p).unwrap();
        assert_eq!(d["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        let c = &d["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["c", "--b=2"]));
        assert_eq!(
            c["env"],
            json!([{"name": "A", "value": "9"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 2);
        assert_eq!(d["spec"]["volumes"].as_array().unwrap().len(), 2);
        assert_eq!(d["spec"]["tolerations"], json!([{"key": "z"}]));
    }

    #[test]
    fn delete_and_replace_directives() {
        let mut d = pod();
        let p = json!({
            "spec": {
                "volumes": [{"name": "v", "$patch": "delete"}],
                "containers": [{"name": "c", "env": [{"$patch": "replace"}, {"name": "Z", "value": "z"}]}]
            },
            "metadata": {"labels": {"$patch": "replace", "only": "this"}}
        });
        apply(&mut d, &p).unwrap();
        assert_eq!(d["spec"]["volumes"], json!([]));
        assert_eq!(
            d["spec"]["containers"][0]["env"],
            json!([{"name": "Z", "value": "z"}])
        );
        assert_eq!(d["metadata"]["labels"], json!({"only": "this"}));
    }

    #[test]
    fn element_without_merge_key_is_an_error() {
        let mut d = pod();
        let e = apply(&mut d, &json!({"spec": {"containers": [{"image": "x"}]}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.containers") && e.contains("\"name\""),
            "{e}"
        );
    }
}
