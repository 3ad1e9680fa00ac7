//! Code conventions checked over `src/` (issue 9 item 7): an error's message never repeats
//! its source — a `#[error("… {source}")]` variant prints the cause twice under `{:#}` and
//! `error::chain`.

use std::path::Path;

/// Files whose errors still print `{source}` because a caller in a file being reworked
/// elsewhere formats them with `to_string()` (the cause would be lost there): `RuntimeError`
/// (src/agent/worker.rs) and `FsError` (through `LogError` in src/health.rs). Remove an entry
/// once those callers use `plinth::error::chain`.
const NOT_YET: &[&str] = &["src/runtime/mod.rs", "src/fs.rs"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn error_messages_never_repeat_their_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if NOT_YET.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with("mod tests") {
                break; // a test module may build such an error on purpose
            }
            let t = line.trim_start();
            if t.starts_with("#[error(") && t.contains("{source}") {
                found.push(format!("{rel}:{}: {t}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "error messages that repeat their #[source] (print it through error::chain instead):\n{}",
        found.join("\n")
    );
}
