//! Checks a downloaded file passes before it may enter the cache: its SHA-256 against the
//! published checksum, its ELF header against the host architecture, and the version its
//! `--version` reports.
//!
//! A file starting with `#!` (a script, such as the Python test doubles served by the test
//! mirror) runs through its interpreter on any architecture and passes the architecture
//! check; anything that is neither an ELF executable nor a script is refused.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecKind {
    /// An ELF file for machine `e_machine` (e.g. 62 = x86-64).
    Elf {
        /// `e_machine` from the header.
        machine: u16,
        /// 64-bit (`ELFCLASS64`).
        class64: bool,
    },
    /// A `#!` script: architecture-independent.
    Script,
    /// Neither: not executable on Linux.
    Other,
}

/// The ELF `e_machine` for a release architecture name (`amd64` → 62).
pub fn elf_machine(arch: &str) -> Option<u16> {
    match arch {
        "amd64" => Some(62),
        "arm64" => Some(183),
        "arm" => Some(40),
        "ppc64le" => Some(21),
        "s390x" => Some(22),
        "386" => Some(3),
        _ => None,
    }
}

/// A readable name for an ELF `e_machine`.
pub fn machine_name(machine: u16) -> String {
    match machine {
        62 => "amd64 (x86-64)".into(),
        183 => "arm64 (AArch64)".into(),
        40 => "arm (ARM)".into(),
        21 => "ppc64le (PowerPC64)".into(),
        22 => "s390x (S/390)".into(),
        3 => "386 (i386)".into(),
        243 => "riscv64 (RISC-V)".into(),
        m => format!("ELF machine {m}"),
    }
}

/// Classifies a file by its first bytes (`\x7fELF` header, `#!`).
pub fn classify(head: &[u8]) -> ExecKind {
    if head.len() >= 20 && head[..4] == *b"\x7fELF" {
        let class64 = head[4] == 2;
        let machine = if head[5] == 2 {
            u16::from_be_bytes([head[18], head[19]])
        } else {
            u16::from_le_bytes([head[18], head[19]])
        };
        return ExecKind::Elf { machine, class64 };
    }
    if head.starts_with(b"#!") {
        return ExecKind::Script;
    }
    ExecKind::Other
}

/// Reads the first 64 bytes of `path` and classifies them.
pub fn classify_file(path: &Path) -> std::io::Result<ExecKind> {
    let mut f = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(64);
    f.by_ref().take(64).read_to_end(&mut head)?;
    Ok(classify(&head))
}

/// Why a file cannot run on a host of `arch`: `Ok(())` for a matching ELF or a script,
/// else `Err(actual)` describing what the file is.
pub fn check_arch(kind: &ExecKind, arch: &str) -> Result<(), String> {
    match kind {
        ExecKind::Script => Ok(()),
        ExecKind::Elf { machine, .. } if Some(*machine) == elf_machine(arch) => Ok(()),
        ExecKind::Elf { machine, .. } => {
            Err(format!("an ELF executable for {}", machine_name(*machine)))
        }
        ExecKind::Other => Err("neither an ELF executable nor a #! script".into()),
    }
}

/// The lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The digest in a `<name>.sha256` file (`<hex>` or `<hex>  <name>`); `None` when the text
/// holds no 64-hex-digit digest.
pub fn parse_sha256_file(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    is_sha256(word).then(|| word.to_ascii_lowercase())
}

/// The digest of `file` in a `SHA256SUMS` listing (`<hex>  <file>` lines, `*` binary marker
/// allowed).
pub fn parse_sha256sums(text: &str, file: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let digest = it.next()?;
        let name = it.next()?.trim_start_matches('*');
        let name = name.rsplit('/').next().unwrap_or(name);
        (name == file && is_sha256(digest)).then(|| digest.to_ascii_lowercase())
    })
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs `path --version` (bounded to 20 s) and returns the version it reports, as
/// [`crate::preflight::binary_version`] reads it; the whole output when no version is found.
pub fn reported_version(path: &Path) -> Result<String, String> {
    reported_version_args(path, &["--version"])
}

/// [`reported_version`] with other arguments (`kubectl version --client`).
pub fn reported_version_args(path: &Path, args: &[&str]) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let mut last_err = String::new();
    for _ in 0..50 {
        let child = Command::new(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = match child {
            Ok(c) => c,
            // Another thread's fork may still hold the just-written file open (ETXTBSY).
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                last_err = e.to_string();
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(format!("cannot run it: {e}")),
        };
        let out = wait_bounded(child, Duration::from_secs(20))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        return Ok(version_of(&text).unwrap_or_else(|| {
            let t = text.trim();
            if t.is_empty() {
                "nothing".to_string()
            } else {
                format!("no version ({:?})", t.chars().take(200).collect::<String>())
            }
        }));
    }
    Err(format!("cannot run it: {last_err}"))
}

/// The version in a `--version` output: a `gitVersion` (kubectl's JSON) when there is one,
/// else the first version-looking word.
pub fn version_of(text: &str) -> Option<String> {
    if let Some(i) = text.find("\"gitVersion\"") {
        let rest = &text[i + "\"gitVersion\"".len()..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        return rest
            .split('"')
            .next()
            .map(|v| v.trim_start_matches('v').to_string());
    }
    crate::preflight::version_in(text)
}

fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output, String> {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|e| e.to_string()),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it did not exit within {}s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn elf_header_names_the_architecture() {
        assert_eq!(check_arch(&classify(&elf(62)), "amd64"), Ok(()));
        let e = check_arch(&classify(&elf(183)), "amd64").unwrap_err();
        assert!(e.contains("arm64"), "{e}");
        assert_eq!(
            check_arch(&classify(b"#!/usr/bin/python3\n"), "arm64"),
            Ok(())
        );
        let e = check_arch(&classify(b"<html>404</html>"), "amd64").unwrap_err();
        assert!(e.contains("neither"), "{e}");
    }

    #[test]
    fn checksum_files_both_forms() {
        let d = "a".repeat(64);
        assert_eq!(parse_sha256_file(&format!("{d}\n")), Some(d.clone()));
        assert_eq!(
            parse_sha256_file(&format!("{d}  kube-apiserver\n")),
            Some(d.clone())
        );
        assert_eq!(parse_sha256_file("<html>"), None);
        let sums = format!(
            "{}  etcd-v3.5.1-linux-arm64.tar.gz\n{d} *etcd-v3.5.1-linux-amd64.tar.gz\n",
            "b".repeat(64)
        );
        assert_eq!(
            parse_sha256sums(&sums, "etcd-v3.5.1-linux-amd64.tar.gz"),
            Some(d)
        );
        assert_eq!(
            parse_sha256sums(&sums, "etcd-v3.5.1-linux-s390x.tar.gz"),
            None
        );
    }

    #[test]
    fn versions_from_each_kind_of_output() {
        assert_eq!(
            version_of("Kubernetes v1.24.0-alpha.1\n").as_deref(),
            Some("1.24.0-alpha.1")
        );
        assert_eq!(
            version_of("etcdctl version: 3.5.1\nAPI version: 3.5\n").as_deref(),
            Some("3.5.1")
        );
        assert_eq!(
            version_of("{\n  \"clientVersion\": {\n    \"major\": \"1\",\n    \"gitVersion\": \"v1.33.0\",\n").as_deref(),
            Some("1.33.0")
        );
        assert_eq!(version_of("Error: unknown flag: --version"), None);
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
