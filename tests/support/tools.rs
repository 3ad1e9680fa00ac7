//! Running the real CLIs tests check our output with (`openssl`, `kubectl`).

use std::path::Path;
use std::process::Command;

/// Runs `program args...`, asserts it exits 0 and returns its stdout. Panics with a clear
/// message (including stderr) otherwise, or if the program is not installed.
pub fn run_ok<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> String {
    let (ok, out, err) = run(program, args);
    assert!(
        ok,
        "{program} {:?} failed:\nstdout: {out}\nstderr: {err}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    );
    out
}

/// Runs `program args...` and returns (success, stdout, stderr).
pub fn run<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl x509 -noout -text -in cert`.
pub fn x509_text(cert: &Path) -> String {
    run_ok(
        "openssl",
        &["x509", "-noout", "-text", "-in", &cert.to_string_lossy()],
    )
}

/// The public key of a certificate as PEM (`openssl x509 -pubkey -noout`).
pub fn cert_pubkey(cert: &Path) -> String {
    run_ok(
        "openssl",
        &["x509", "-pubkey", "-noout", "-in", &cert.to_string_lossy()],
    )
}

/// The public key of a private key as PEM (`openssl pkey -pubout`).
pub fn key_pubkey(key: &Path) -> String {
    run_ok(
        "openssl",
        &["pkey", "-pubout", "-in", &key.to_string_lossy()],
    )
}

/// `openssl verify -CAfile ca cert` succeeded with "OK".
pub fn verify_chain(ca: &Path, cert: &Path) -> bool {
    let (ok, out, _) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            &ca.to_string_lossy(),
            &cert.to_string_lossy(),
        ],
    );
    ok && out.trim_end().ends_with(": OK")
}
