//! Evaluates the kube-bench `cis-1.12` control-plane checks (master.yaml 1.1–1.4, etcd.yaml
//! 2.x) against rendered manifests and a rendered tree on disk, the way kube-bench would on
//! the node: the audit command's output is simulated (process command lines come from the
//! manifests, `stat` output from the files under the tree root), then the check's test items
//! are evaluated with kube-bench's semantics (flag present/absent, `eq`, `noteq`, `gt`,
//! `gte`, `lt`, `lte`, `has`, `nothave`, `regex`-free `valid_elements`, `bitmask`; `bin_op`
//! and/or; `use_multiple_values` = every output line must pass).
//!
//! Test-only code: used by `tests/render.rs` (through `tests/support/cis`) and by the
//! manifests unit tests (`src/manifests/cis.rs` includes this file under `#[cfg(test)]`).
//!
//! The data files are embedded from `tests/data/kube-bench/` (Apache-2.0, see the LICENSE
//! there). Checks whose audit cannot be modelled are [`CheckStatus::Skipped`] with a reason.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{Component, HostRoot, RenderedManifest};

const TOP_CONFIG: &str = include_str!("../../data/kube-bench/config.yaml");
const MASTER: &str = include_str!("../../data/kube-bench/cis-1.12/master.yaml");
const ETCD: &str = include_str!("../../data/kube-bench/cis-1.12/etcd.yaml");

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Every test passed.
    Pass,
    /// A test failed.
    Fail,
    /// Not evaluated (manual check, or an audit plinth cannot model); see the detail.
    Skipped,
}

/// One evaluated check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Check id (`1.2.15`).
    pub id: String,
    /// Check text.
    pub text: String,
    /// Scored (automated) check.
    pub scored: bool,
    /// Outcome.
    pub status: CheckStatus,
    /// What was seen (the failing line, values) or why it was skipped.
    pub detail: String,
}

impl std::fmt::Display for CheckResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.status {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skipped => "SKIP",
        };
        let scored = if self.scored { "scored" } else { "unscored" };
        write!(
            f,
            "[{s}] {} ({scored}) {}: {}",
            self.id, self.text, self.detail
        )
    }
}

/// How uids/gids become names in `stat -c %U:%G` output.
pub struct OwnerNames<'a> {
    /// uid → user name.
    pub user: &'a dyn Fn(u32) -> String,
    /// gid → group name.
    pub group: &'a dyn Fn(u32) -> String,
}

fn host_user(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn host_group(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

impl OwnerNames<'static> {
    /// Names from the real host's user database (as `stat` prints them).
    pub fn host() -> OwnerNames<'static> {
        OwnerNames {
            user: &host_user,
            group: &host_group,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Controls {
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(Debug, Deserialize)]
struct Check {
    id: Value,
    #[serde(default)]
    text: String,
    #[serde(default)]
    audit: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    tests: Option<Tests>,
    #[serde(default)]
    scored: bool,
    #[serde(default)]
    use_multiple_values: bool,
}

#[derive(Debug, Deserialize)]
struct Tests {
    #[serde(default)]
    bin_op: String,
    #[serde(default)]
    test_items: Vec<TestItem>,
}

#[derive(Debug, Deserialize)]
struct TestItem {
    flag: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    compare: Option<Compare>,
    #[serde(default)]
    set: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Compare {
    op: String,
    value: Value,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The kube-bench component keys and the plinth components they are.
const COMPONENTS: [(&str, Component); 4] = [
    ("apiserver", Component::KubeApiserver),
    ("controllermanager", Component::KubeControllerManager),
    ("scheduler", Component::KubeScheduler),
    ("etcd", Component::Etcd),
];

/// `$apiserverconf` etc.: the first of kube-bench's candidate files that exists in the tree,
/// else its default (kube-bench's rule).
fn variables(tree: &Path, manifests: &[RenderedManifest]) -> BTreeMap<String, String> {
    let cfg: Value = serde_saphyr::from_str(TOP_CONFIG).unwrap_or(Value::Null);
    let master = &cfg["master"];
    let pick = |list: &Value, default: &Value| -> String {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|p| in_tree(tree, p).exists())
            .map(str::to_string)
            .unwrap_or_else(|| scalar(default))
    };
    let mut vars = BTreeMap::new();
    for (key, component) in COMPONENTS {
        let c = &master[key];
        vars.insert(format!("{key}conf"), pick(&c["confs"], &c["defaultconf"]));
        if c.get("kubeconfig").is_some() {
            vars.insert(
                format!("{key}kubeconfig"),
                pick(&c["kubeconfig"], &c["defaultkubeconfig"]),
            );
        }
        let bin = manifests
            .iter()
            .find(|m| m.component == component)
            .and_then(|m| m.command().first().cloned())
            .unwrap_or_else(|| component.name().to_string());
        vars.insert(format!("{key}bin"), bin);
    }
    vars.insert(
        "etcddatadir".into(),
        pick(
            &master["etcd"]["datadirs"],
            &master["etcd"]["defaultdatadir"],
        ),
    );
    vars
}

fn in_tree(tree: &Path, host_path: &str) -> PathBuf {
    HostRoot::new(Some(tree)).path(host_path)
}

/// The simulated audit output, or why it cannot be simulated.
enum Audit {
    Output(String),
    Skip(String),
}

struct Env<'a> {
    tree: &'a Path,
    manifests: &'a [RenderedManifest],
    vars: BTreeMap<String, String>,
    owners: &'a OwnerNames<'a>,
}

impl Env<'_> {
    fn manifest(&self, c: Component) -> Option<&RenderedManifest> {
        self.manifests.iter().find(|m| m.component == c)
    }

    /// `ps -ef` line of the component, or empty when it does not run.
    fn ps(&self, c: Component) -> String {
        self.manifest(c)
            .map(|m| format!("root 1 0 0 00:00 ? 00:00:00 {}", m.command().join(" ")))
            .unwrap_or_default()
    }

    fn container_env(&self, c: Component, name: &str) -> Option<String> {
        let m = self.manifest(c)?;
        let container = m.pod.spec.as_ref()?.containers.first()?;
        container
            .env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.clone().unwrap_or_default())
    }

    /// `stat -c <format> <host path>` for one path, `None` when it does not exist.
    fn stat(&self, format: &str, host_path: &str) -> Option<String> {
        let meta = std::fs::symlink_metadata(in_tree(self.tree, host_path)).ok()?;
        let mode = meta.permissions().mode() & 0o7777;
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(ch) = chars.next() {
            if ch != '%' {
                out.push(ch);
                continue;
            }
            match chars.next() {
                Some('a') => out.push_str(&format!("{mode:o}")),
                Some('U') => out.push_str(&(self.owners.user)(meta.uid())),
                Some('G') => out.push_str(&(self.owners.group)(meta.gid())),
                Some('n') => out.push_str(host_path),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        Some(out)
    }

    fn subst(&self, s: &str) -> String {
        let mut out = s.to_string();
        // Longest names first so `$etcdconf` is not eaten by a shorter variable.
        let mut keys: Vec<&String> = self.vars.keys().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
        for k in keys {
            out = out.replace(&format!("${k}"), &self.vars[k]);
        }
        out
    }

    /// Simulates the audit command of `check`.
    fn audit(&self, check: &Check) -> Audit {
        let audit = check.audit.as_str();
        if audit.trim().is_empty() {
            return Audit::Skip("no audit command (manual check)".into());
        }
        if audit.contains("cni") {
            return Audit::Skip(
                "CNI configuration is installed by the network plugin after init, not by plinth"
                    .into(),
            );
        }
        if audit.contains("ENCRYPTION_PROVIDER_CONFIG") {
            return Audit::Skip(
                "reads the encryption provider config file, which plinth does not write".into(),
            );
        }
        let Some(format) = stat_format(audit) else {
            // A process check: `ps -ef | grep $<component>bin`.
            return match COMPONENTS
                .iter()
                .find(|(k, _)| audit.contains(&format!("${k}bin")))
            {
                Some((_, c)) => Audit::Output(self.ps(*c)),
                None => Audit::Skip(format!("audit not modelled: {audit}")),
            };
        };
        let targets: Vec<String> = if audit.contains("--data-dir") {
            // The data dir from etcd's command line if it exists, else $etcddatadir.
            let from_flag = self.manifest(Component::Etcd).and_then(|m| {
                m.command()
                    .iter()
                    .rev()
                    .find_map(|w| w.strip_prefix("--data-dir=").map(str::to_string))
            });
            let dir = from_flag
                .filter(|d| in_tree(self.tree, d).is_dir())
                .unwrap_or_else(|| self.vars["etcddatadir"].clone());
            vec![dir]
        } else if let Some(list) = for_loop_items(audit) {
            list
        } else if let Some(rest) = audit.split("find ").nth(1) {
            let mut words = rest.split_whitespace();
            let start = self.subst(words.next().unwrap_or(""));
            let name = rest
                .split("-name ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(|p| p.trim_matches(|c| c == '\'' || c == '"').to_string());
            find(self.tree, &start, name.as_deref())
        } else {
            // `stat -c ... $var` (single file).
            let after = audit
                .rsplit(format.as_str())
                .next()
                .unwrap_or("")
                .trim_start_matches(['"', '\''])
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches([';', '\'', '"']);
            vec![self.subst(after)]
        };
        let lines: Vec<String> = targets
            .iter()
            .filter_map(|t| self.stat(&format, t))
            .collect();
        if lines.is_empty() {
            return Audit::Output(String::new());
        }
        Audit::Output(lines.join("\n"))
    }
}

/// The format of the audit's `stat -c FORMAT`, unquoted.
fn stat_format(audit: &str) -> Option<String> {
    let rest = audit.split("stat -c ").nth(1)?;
    let rest = rest.trim_start();
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next().map(str::to_string);
    }
    rest.split_whitespace()
        .next()
        .map(|f| f.trim_end_matches([';', '\'', '"']).to_string())
}

/// `for x in A B; do ...` → [A, B].
fn for_loop_items(audit: &str) -> Option<Vec<String>> {
    let rest = audit.split("for ").nth(1)?;
    let items = rest.split(" in ").nth(1)?.split(';').next()?;
    if items.contains('$') {
        return None;
    }
    Some(items.split_whitespace().map(str::to_string).collect())
}

/// `find START [-name PATTERN]`: START itself and everything below it (host paths).
fn find(tree: &Path, start: &str, name: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let root = in_tree(tree, start);
    if std::fs::symlink_metadata(&root).is_err() {
        return out;
    }
    let mut stack = vec![(root, start.to_string())];
    while let Some((local, host)) = stack.pop() {
        let file_name = host.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if name.is_none_or(|pat| glob_match(pat, file_name)) {
            out.push(host.clone());
        }
        if local.is_dir() && !local.is_symlink() {
            let mut children: Vec<_> = std::fs::read_dir(&local)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            children.sort();
            for c in children.into_iter().rev() {
                let h = format!("{}/{}", host.trim_end_matches('/'), c);
                stack.push((local.join(&c), h));
            }
        }
    }
    out
}

/// Shell glob with `*` only (what the data files use).
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else if let Some(pos) = rest.find(p) {
            rest = &rest[pos + p.len()..];
        } else {
            return false;
        }
    }
    true
}

/// kube-bench's `findValue`: is `flag` in `line`, and with which value.
fn find_value(line: &str, flag: &str) -> (bool, String) {
    let Some(pos) = line.find(flag) else {
        return (false, String::new());
    };
    let after = &line[pos + flag.len()..];
    let after = after
        .strip_prefix('=')
        .or_else(|| after.strip_prefix(':').map(str::trim_start))
        .unwrap_or(after);
    let value: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
    if value.is_empty() {
        // A boolean flag written as `--flag`.
        let v = if flag.starts_with("--") { "true" } else { flag };
        (true, v.to_string())
    } else {
        (true, value)
    }
}

fn compare(op: &str, got: &str, want: &str) -> Result<bool, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    Ok(match op {
        "eq" => {
            let g = got.to_lowercase();
            if g == "true" || g == "false" {
                g == want.to_lowercase()
            } else {
                got == want
            }
        }
        "noteq" => got != want,
        "gt" => num(got)? > num(want)?,
        "gte" => num(got)? >= num(want)?,
        "lt" => num(got)? < num(want)?,
        "lte" => num(got)? <= num(want)?,
        "has" => got.contains(want),
        "nothave" => !got.contains(want),
        "valid_elements" => {
            let allowed: Vec<&str> = want.split(',').map(str::trim).collect();
            got.split(',').all(|e| allowed.contains(&e.trim()))
        }
        "bitmask" => {
            let g =
                u32::from_str_radix(got.trim(), 8).map_err(|_| format!("{got:?} is not octal"))?;
            let w = u32::from_str_radix(want.trim(), 8)
                .map_err(|_| format!("{want:?} is not octal"))?;
            w & g == g
        }
        other => return Err(format!("unsupported compare op {other:?}")),
    })
}

/// Evaluates one test item against one output line (plus the container env for `env:`).
fn eval_item(
    item: &TestItem,
    line: &str,
    env_value: Option<String>,
) -> Result<(bool, String), String> {
    let (mut found, mut value) = find_value(line, &item.flag);
    if !found {
        if let Some(v) = env_value {
            found = true;
            value = v;
        }
    }
    if let Some(cmp) = &item.compare {
        if !found {
            return Ok((
                false,
                format!(
                    "{} is not set (needs {} {})",
                    item.flag,
                    cmp.op,
                    scalar(&cmp.value)
                ),
            ));
        }
        let want = scalar(&cmp.value);
        let ok = compare(&cmp.op, &value, &want)?;
        return Ok((ok, format!("{}={value} ({} {want})", item.flag, cmp.op)));
    }
    if item.set == Some(false) {
        return Ok((
            !found,
            format!(
                "{} {}",
                item.flag,
                if found { "is set" } else { "is not set" }
            ),
        ));
    }
    Ok((
        found,
        format!(
            "{} {}",
            item.flag,
            if found { "is present" } else { "is missing" }
        ),
    ))
}

fn evaluate_check(env: &Env<'_>, check: &Check) -> CheckResult {
    let id = scalar(&check.id);
    let mut result = CheckResult {
        id,
        text: check.text.clone(),
        scored: check.scored,
        status: CheckStatus::Skipped,
        detail: String::new(),
    };
    let tests = match &check.tests {
        Some(t) if !t.test_items.is_empty() && check.kind != "manual" => t,
        _ => {
            result.detail = "manual check: nothing to evaluate".into();
            return result;
        }
    };
    let output = match env.audit(check) {
        Audit::Output(o) => o,
        Audit::Skip(why) => {
            result.detail = why;
            return result;
        }
    };
    let component = COMPONENTS
        .iter()
        .find(|(k, _)| check.audit.contains(&format!("${k}bin")))
        .map(|(_, c)| *c);
    let lines: Vec<&str> = if check.use_multiple_values {
        output.lines().filter(|l| !l.trim().is_empty()).collect()
    } else {
        vec![output.as_str()]
    };
    if output.trim().is_empty() {
        result.status = CheckStatus::Fail;
        result.detail = "audit produced no output (component not running or file missing)".into();
        return result;
    }
    let or = tests.bin_op == "or";
    let mut failing = Vec::new();
    let mut seen = Vec::new();
    for line in &lines {
        let mut outcomes = Vec::new();
        for item in &tests.test_items {
            let env_value = match (component, item.env.is_empty()) {
                (Some(c), false) => env.container_env(c, &item.env),
                _ => None,
            };
            match eval_item(item, line, env_value) {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    result.status = CheckStatus::Skipped;
                    result.detail = e;
                    return result;
                }
            }
        }
        let pass = if or {
            outcomes.iter().any(|(ok, _)| *ok)
        } else {
            outcomes.iter().all(|(ok, _)| *ok)
        };
        let what: Vec<String> = outcomes.into_iter().map(|(_, d)| d).collect();
        let summary = if check.use_multiple_values {
            format!("{line:?}: {}", what.join(if or { " or " } else { " and " }))
        } else {
            what.join(if or { " or " } else { " and " })
        };
        if !pass {
            failing.push(summary.clone());
        }
        seen.push(summary);
    }
    if failing.is_empty() {
        result.status = CheckStatus::Pass;
        result.detail = if seen.len() > 3 {
            format!("{} lines checked, e.g. {}", seen.len(), seen[0])
        } else {
            seen.join("; ")
        };
    } else {
        result.status = CheckStatus::Fail;
        result.detail = failing.join("; ");
    }
    result
}

/// Evaluates every check of master.yaml 1.1–1.4 and etcd.yaml 2.x against `manifests`
/// (command lines, env) and the files under `tree_root` (a `--root` directory, or `/`),
/// with owner names from the host's user database.
pub fn evaluate(tree_root: &Path, manifests: &[RenderedManifest]) -> Vec<CheckResult> {
    evaluate_with(tree_root, manifests, &OwnerNames::host())
}

/// [`evaluate`] with explicit uid/gid → name mappings (for trees owned by test uids).
pub fn evaluate_with(
    tree_root: &Path,
    manifests: &[RenderedManifest],
    owners: &OwnerNames<'_>,
) -> Vec<CheckResult> {
    let env = Env {
        tree: tree_root,
        manifests,
        vars: variables(tree_root, manifests),
        owners,
    };
    let mut out = Vec::new();
    for data in [MASTER, ETCD] {
        let controls: Controls = match serde_saphyr::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                out.push(CheckResult {
                    id: "data".into(),
                    text: "kube-bench data".into(),
                    scored: true,
                    status: CheckStatus::Fail,
                    detail: format!("cannot parse embedded kube-bench data: {e}"),
                });
                continue;
            }
        };
        for group in &controls.groups {
            for check in &group.checks {
                out.push(evaluate_check(&env, check));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_value_like_kube_bench() {
        let line = "root 1 kube-apiserver --profiling=false --authorization-mode=Node,RBAC --x";
        assert_eq!(find_value(line, "--profiling"), (true, "false".into()));
        assert_eq!(find_value(line, "--x"), (true, "true".into()));
        assert!(!find_value(line, "--nope").0);
        assert_eq!(
            find_value("permissions=600", "permissions"),
            (true, "600".into())
        );
    }

    #[test]
    fn compare_ops() {
        assert!(compare("bitmask", "600", "600").unwrap());
        assert!(compare("bitmask", "400", "600").unwrap());
        assert!(!compare("bitmask", "644", "600").unwrap());
        assert!(compare("gte", "30", "30").unwrap());
        assert!(!compare("gte", "29", "30").unwrap());
        assert!(compare("eq", "FALSE", "false").unwrap());
        assert!(compare("has", "Node,RBAC", "Node").unwrap());
        assert!(compare("nothave", "Node,RBAC", "AlwaysAllow").unwrap());
        assert!(compare("valid_elements", "a,b", "a,b,c").unwrap());
        assert!(!compare("valid_elements", "a,d", "a,b,c").unwrap());
        assert!(compare("gte", "x", "1").is_err());
    }

    #[test]
    fn audit_parsing_helpers() {
        assert_eq!(
            stat_format("/bin/sh -c 'if test -e $a; then stat -c permissions=%a $a; fi'")
                .as_deref(),
            Some("permissions=%a")
        );
        assert_eq!(
            stat_format("for x in /a /b; do stat -c \"ownership=%U:%G %n\" $x; done").as_deref(),
            Some("ownership=%U:%G %n")
        );
        assert_eq!(
            for_loop_items(" for adminconf in /etc/a.conf /etc/b.conf; do x; done"),
            Some(vec!["/etc/a.conf".to_string(), "/etc/b.conf".to_string()])
        );
        assert!(glob_match("*etcd*", "etcd.yaml"));
        assert!(glob_match("*.crt", "ca.crt"));
        assert!(!glob_match("*.crt", "ca.key"));
    }

    #[test]
    fn embedded_data_parses() {
        for data in [MASTER, ETCD] {
            let c: Controls = serde_saphyr::from_str(data).unwrap();
            assert!(c.groups.iter().map(|g| g.checks.len()).sum::<usize>() > 5);
        }
    }
}
