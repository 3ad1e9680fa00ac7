//! Numbers as written in the file. The config is read as `serde_json::Value`, which holds a
//! number only as i64, u64 or f64: `99999999999999999999999999` becomes `1e26` and `1.10`
//! becomes `1.1`. Error messages must quote what the operator wrote, so a second, span-aware
//! pass records the source text of every number whose rendering differs from it.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::reader::child;

/// A YAML node, keeping only what is needed to find numbers and their spans.
enum Tree {
    Map(Vec<(String, Spanned<Tree>)>),
    Seq(Vec<Spanned<Tree>>),
    /// A number, rendered as `serde_json::Value` renders it.
    Number(String),
    Other,
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        let shown = serde_json::Number::from_f64(v)
            .map(|n| n.to_string())
            .unwrap_or_default();
        Ok(Tree::Number(shown))
    }
    fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value::<Spanned<Tree>>()?));
        }
        Ok(Tree::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

/// `(document index, field path inside the document, text as written)` for every number
/// whose `serde_json::Value` rendering differs from its source text. Best effort: empty when
/// the span-aware pass fails (the main pass reports real errors).
pub(crate) fn written(yaml: &str) -> Vec<(usize, String, String)> {
    let docs: Vec<Spanned<Tree>> = match serde_saphyr::from_multiple(yaml) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!("span pass over the config failed: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        walk(yaml, i, "", doc, &mut out);
    }
    out
}

fn walk(
    yaml: &str,
    doc: usize,
    path: &str,
    node: &Spanned<Tree>,
    out: &mut Vec<(usize, String, String)>,
) {
    match &node.value {
        Tree::Map(entries) => {
            for (k, v) in entries {
                walk(yaml, doc, &child(path, k), v, out);
            }
        }
        Tree::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(yaml, doc, &format!("{path}[{i}]"), v, out);
            }
        }
        Tree::Number(shown) => {
            let span = node.defined.span();
            let text = span.byte_offset().zip(span.byte_len()).and_then(|(o, l)| {
                let (o, l) = (usize::try_from(o).ok()?, usize::try_from(l).ok()?);
                yaml.get(o..o.checked_add(l)?)
            });
            if let Some(text) = text.map(str::trim) {
                if !text.is_empty() && text != shown {
                    out.push((doc, path.to_string(), text.to_string()));
                }
            }
        }
        Tree::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_numbers_that_do_not_survive_as_written() {
        let yaml = "a:\n  port: 99999999999999999999999999 # big\n  ok: 6443\n  v: 1.10\n\
                    l: [1.50, 2]\n---\nx: 0x10\n";
        let got = written(yaml);
        assert_eq!(
            got,
            vec![
                (
                    0,
                    "a.port".to_string(),
                    "99999999999999999999999999".to_string()
                ),
                (0, "a.v".to_string(), "1.10".to_string()),
                (0, "l[0]".to_string(), "1.50".to_string()),
                (1, "x".to_string(), "0x10".to_string()),
            ]
        );
    }

    #[test]
    fn broken_yaml_gives_nothing() {
        assert!(written("a: [").is_empty());
    }
}
