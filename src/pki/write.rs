//! Writing a batch of files atomically and in parallel.
//!
//! Each file still goes through [`crate::fs::write_atomic`] (dot-prefixed temp file, fsync,
//! rename, directory fsync). Issuing those fsyncs from concurrent threads lets the filesystem
//! journal commit them together: on ext4 27 sequential atomic writes cost 70–500 ms, in
//! parallel about 20 ms, which is most of the ECDSA render budget.

use std::path::PathBuf;

use crate::fs::{self as pfs, FsError, WriteOutcome, MODE_DIR};

/// One file to write: root-prefixed path, content, mode.
pub(crate) struct PendingWrite {
    pub local: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Writes every file (directories created first, sequentially), returning the outcomes in
/// input order. The first error is returned; other files may have been written by then.
pub(crate) fn write_all(files: &[PendingWrite]) -> Result<Vec<WriteOutcome>, FsError> {
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.local.parent().map(|p| p.to_path_buf()))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        pfs::ensure_dir(d, MODE_DIR)?;
    }
    if files.len() <= 1 {
        return files
            .iter()
            .map(|f| pfs::write_atomic(&f.local, &f.content, f.mode))
            .collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| s.spawn(move || pfs::write_atomic(&f.local, &f.content, f.mode)))
            .collect();
        handles
            .into_iter()
            .zip(files)
            .map(|(h, f)| {
                h.join().unwrap_or_else(|_| {
                    Err(FsError::io(
                        "write",
                        &f.local,
                        std::io::Error::other("writer thread panicked"),
                    ))
                })
            })
            .collect()
    })
}

/// Writes `files` with [`write_all`], each tagged with whatever it belongs to; returns the
/// tags of the files whose content or mode changed, in input order.
pub(crate) fn write_tagged<T>(files: Vec<(T, PendingWrite)>) -> Result<Vec<T>, FsError> {
    let (tags, pending): (Vec<T>, Vec<PendingWrite>) = files.into_iter().unzip();
    let outcomes = write_all(&pending)?;
    Ok(tags
        .into_iter()
        .zip(outcomes)
        .filter_map(|(tag, outcome)| outcome.changed().then_some(tag))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_every_file_with_its_mode_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<PendingWrite> = (0..6)
            .map(|i| PendingWrite {
                local: tmp.path().join(format!("d{}/f{i}", i % 2)),
                content: format!("{i}").into_bytes(),
                mode: if i % 2 == 0 { 0o600 } else { 0o644 },
            })
            .collect();
        let out = write_all(&files).unwrap();
        assert!(out.iter().all(|o| *o == WriteOutcome::Created));
        for f in &files {
            assert_eq!(std::fs::read(&f.local).unwrap(), f.content);
            assert_eq!(pfs::mode_of(&f.local), Some(f.mode));
        }
        let again = write_all(&files).unwrap();
        assert!(again.iter().all(|o| *o == WriteOutcome::Unchanged));
    }

    #[test]
    fn write_tagged_returns_the_tags_of_changed_files_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let same = tmp.path().join("same");
        std::fs::write(&same, "kept").unwrap();
        std::fs::set_permissions(&same, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = |name: &str, content: &str| PendingWrite {
            local: tmp.path().join(name),
            content: content.as_bytes().to_vec(),
            mode: 0o600,
        };
        let changed = write_tagged(vec![
            ("a", file("a", "new")),
            ("same", file("same", "kept")),
            ("b", file("sub/b", "new")),
        ])
        .unwrap();
        assert_eq!(changed, ["a", "b"]);
        assert_eq!(std::fs::read(tmp.path().join("sub/b")).unwrap(), b"new");
    }
}
