//! The library's module graph has no cycles (issue 9 item 5).
//!
//! Reads every file under `src/` (not `main.rs`), drops comments, string literals and
//! `#[cfg(test)]` modules, and collects each `crate::…`, `super::…` and child-module path it
//! uses (in `use` trees and inline). A path resolves to the deepest module file it names; an
//! edge from a module to one of its ancestors is a facade use (`use super::Item`) and is not
//! counted. Any cycle among the remaining edges fails the test, naming the modules on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`agent::worker`) → the file's code with comments, strings and test modules
/// blanked out.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let Some(name) = module_name(rel) else {
                continue;
            };
            let text = std::fs::read_to_string(&p).expect("read source file");
            out.insert(name, strip_tests(&blank_comments_and_strings(&text)));
        }
    }
    out
}

/// `agent/worker.rs` → `agent::worker`, `agent/mod.rs` → `agent`, `lib.rs` → ``; `main.rs`
/// (another crate) and `*_tests.rs` / `tests.rs` files (test code) → None.
fn module_name(rel: &Path) -> Option<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    if (parts.is_empty() && stem == "main") || stem == "tests" || stem.ends_with("_tests") {
        return None;
    }
    if stem != "mod" && !(parts.is_empty() && stem == "lib") {
        parts.push(stem.to_string());
    }
    Some(parts.join("::"))
}

/// Replaces comments and the contents of string and char literals with spaces (keeping the
/// braces of code balanced and paths in text out of the graph).
fn blank_comments_and_strings(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if c == 'r' && !ident_before && matches!(next, Some('"') | Some('#')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') — not a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
                continue;
            }
            if b.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Removes every `#[cfg(test)]` item that is a `mod … { … }` block or a `mod …;` line.
fn strip_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        // Skip further attributes, then look at the item.
        let mut item = after.trim_start();
        while item.starts_with("#[") {
            let end = item.find(']').map_or(item.len(), |e| e + 1);
            item = item[end..].trim_start();
        }
        let item_start = after.len() - item.len();
        let is_mod = item.starts_with("mod ") || item.starts_with("pub mod ");
        if !is_mod {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let semi = item.find(';');
        let brace = item.find('{');
        match (semi, brace) {
            (Some(s), b) if b.is_none_or(|b| s < b) => {
                rest = &after[item_start + s + 1..];
            }
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[item_start + end..];
            }
            _ => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every path the code names: `use` trees expanded, plus inline `crate::…` / `super::…` paths.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if word_start && starts_with(&chars, i, "use ") {
            let end = (i..chars.len())
                .find(|&j| chars[j] == ';')
                .unwrap_or(chars.len());
            let tree: String = chars[i + 4..end].iter().collect();
            expand_use(&tree, &[], &mut out);
            i = end;
            continue;
        }
        if word_start && (starts_with(&chars, i, "crate::") || starts_with(&chars, i, "super::")) {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == ':')
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            out.push(
                text.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn starts_with(chars: &[char], at: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(at + k) == Some(&c))
}

/// Expands `a::b::{c, d::{e, f}}` into `[a,b,c]`, `[a,b,d,e]`, `[a,b,d,f]`.
fn expand_use(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let close = tree.rfind('}').unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let mut base = prefix.to_vec();
        base.extend(segments(head));
        let mut depth = 0;
        let mut start = 0;
        let inner_chars: Vec<(usize, char)> = inner.char_indices().collect();
        for &(k, ch) in &inner_chars {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..k], &base, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], &base, out);
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut p = prefix.to_vec();
        p.extend(segments(path));
        if !p.is_empty() {
            out.push(p);
        }
    }
}

fn segments(s: &str) -> Vec<String> {
    s.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
        .map(str::to_string)
        .collect()
}

/// The module `path` (seen from module `from`) lands in: the deepest known module it names.
fn resolve(from: &str, path: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<String> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").map(str::to_string).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some("self") => rest = &rest[1..],
        Some(first) => {
            // A child module of `from` (`use child::Item`); anything else is an external
            // crate, std, or an item in scope.
            let mut child = base.clone();
            child.push(first.to_string());
            if !known.contains(&child.join("::")) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = base.join("::");
    let mut cur = base;
    for seg in rest {
        cur.push(seg.clone());
        let name = cur.join("::");
        if known.contains(&name) {
            best = name;
        } else {
            break;
        }
    }
    Some(best)
}

/// True when `a` is `b` or an ancestor of it.
fn is_ancestor_or_self(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || b.starts_with(&format!("{a}::"))
}

/// Module → modules it uses (ancestors excluded).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    let mut g = BTreeMap::new();
    for (name, code) in &mods {
        let edges: BTreeSet<String> = paths(code)
            .iter()
            .filter_map(|p| resolve(name, p, &known))
            .filter(|t| !is_ancestor_or_self(t, name))
            .collect();
        g.insert(name.clone(), edges);
    }
    g
}

/// Every strongly connected component with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        on: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The graph with every module folded into its top-level module (`agent::worker` → `agent`).
fn top_level(g: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let mut t: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, edges) in g {
        let entry = t.entry(top(a)).or_default();
        entry.extend(edges.iter().map(|b| top(b)).filter(|b| *b != top(a)));
    }
    t
}

/// One line per cycle: its modules and the edges between them.
fn cycle_report(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    cycles(g)
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g[a].iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("cycle {{{}}}: {}", c.join(", "), edges.join("; "))
        })
        .collect()
}

/// No cycle among the files of `src/`, nor among its top-level modules.
#[test]
fn no_module_cycles_in_src() {
    let files = graph(&src_dir());
    assert!(
        files.contains_key("agent::worker") && files.contains_key(""),
        "src/ not read"
    );
    let mut report = cycle_report(&files);
    report.extend(cycle_report(&top_level(&files)));
    assert!(report.is_empty(), "module cycles:\n{}", report.join("\n"));
}

/// The checker itself finds a two-module cycle, through `use` trees and inline paths, and
/// ignores child → parent facade uses, comments, strings and test modules.
#[test]
fn module_cycle_checker_sees_use_trees_and_ignores_tests() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod x;\nmod y;\nmod z;\npub use x::X;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/x.rs"),
        "use super::{Facade, y::{Y, other}};\n// crate::a::z in a comment\nconst S: &str = \"crate::a::z\";\n",
    )
    .unwrap();
    std::fs::write(src.join("a/y.rs"), "fn f() { crate::a::x::g(); }\n").unwrap();
    std::fs::write(
        src.join("a/z.rs"),
        "pub fn h() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::x::X;\n    fn f() { let _ = '{'; }\n}\n",
    )
    .unwrap();
    let g = graph(src);
    assert_eq!(g["a::x"], BTreeSet::from(["a::y".to_string()]));
    assert_eq!(g["a::y"], BTreeSet::from(["a::x".to_string()]));
    assert!(g["a::z"].is_empty(), "{:?}", g["a::z"]);
    assert_eq!(
        cycles(&g),
        vec![vec!["a::x".to_string(), "a::y".to_string()]]
    );
}
