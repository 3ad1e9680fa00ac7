//! Extracting executables from an etcd release tarball (`etcd-<v>-linux-<arch>/etcd`, ...).

use std::io::Read;
use std::path::Path;

/// Copies each entry of the gzip'd tarball at `tarball` whose file name is in `names` (at any
/// depth, regular files only) into the matching writer; returns the names not found.
pub fn extract(
    tarball: &Path,
    names: &[String],
    mut sink: impl FnMut(&str, &mut dyn Read) -> std::io::Result<()>,
) -> std::io::Result<Vec<String>> {
    let f = std::fs::File::open(tarball)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut missing: Vec<String> = names.to_vec();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.into_owned();
        let Some(file) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        if let Some(i) = missing.iter().position(|n| *n == file) {
            sink(&file, &mut entry)?;
            missing.remove(i);
            if missing.is_empty() {
                break;
            }
        }
    }
    Ok(missing)
}

/// Writes a gzip'd tarball with `files` (name in the archive, content, mode) — what an etcd
/// release holds; for tests and mirrors.
pub fn build(out: &Path, files: &[(String, Vec<u8>, u32)]) -> std::io::Result<()> {
    let f = std::fs::File::create(out)?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice())?;
    }
    b.into_inner()?.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_named_files_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("etcd.tar.gz");
        build(
            &t,
            &[
                (
                    "etcd-v3.5.1-linux-amd64/README.md".into(),
                    b"hi".to_vec(),
                    0o644,
                ),
                ("etcd-v3.5.1-linux-amd64/etcd".into(), b"E".to_vec(), 0o755),
                (
                    "etcd-v3.5.1-linux-amd64/etcdctl".into(),
                    b"C".to_vec(),
                    0o755,
                ),
            ],
        )
        .unwrap();
        let mut got = Vec::new();
        let missing = extract(
            &t,
            &["etcd".into(), "etcdctl".into(), "etcdutl".into()],
            |n, r| {
                let mut s = String::new();
                r.read_to_string(&mut s)?;
                got.push((n.to_string(), s));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(missing, vec!["etcdutl".to_string()]);
        assert_eq!(
            got,
            vec![("etcd".into(), "E".into()), ("etcdctl".into(), "C".into())]
        );
    }
}
