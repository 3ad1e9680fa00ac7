//! POSIX access ACLs (`setfacl`/`getfacl` semantics), read and written directly as the
//! `system.posix_acl_access` extended attribute in the kernel's binary format: a little-endian
//! `u32` version (2), then one `{u16 tag, u16 perm, u32 id}` entry per line of the ACL, in the
//! order user::, user:ID…, group::, group:ID…, mask::, other::.
//!
//! Used to let the unprivileged `etcd` user read its two private keys while they stay
//! root-owned (CIS 1.1.19). Note what `stat` then shows: with named entries the kernel keeps
//! the ACL's **mask** in the file mode's group bits, so a 0600 key granting `user:etcd:r--`
//! has the mask `r--` and `stat -c %a` prints `640` (`chmod 600` would set the mask to `---`
//! and take the grant away). The *base* mode — user::, group::, other:: — stays `rw-,---,---`;
//! [`logical_mode`] is that mode, which plinth compares with the mode it wants.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The extended attribute holding a file's access ACL.
pub const XATTR_ACCESS: &str = "system.posix_acl_access";

const VERSION: u32 = 2;
const TAG_USER_OBJ: u16 = 0x01;
const TAG_USER: u16 = 0x02;
const TAG_GROUP_OBJ: u16 = 0x04;
const TAG_GROUP: u16 = 0x08;
const TAG_MASK: u16 = 0x10;
const TAG_OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;

/// Read permission in an ACL entry.
pub const READ: u16 = 4;

/// Why bytes are not the kernel's binary form of an ACL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XattrError {
    /// Not a 4-byte header plus 8-byte entries.
    #[error("{0} bytes is not a header plus 8-byte entries")]
    Length(usize),
    /// An unknown format version.
    #[error("version {0}, expected {VERSION}")]
    Version(u32),
    /// An entry tag the format does not define.
    #[error("unknown entry tag {0:#x}")]
    UnknownTag(u16),
    /// A required entry is absent.
    #[error("user::, group:: or other:: entry missing")]
    MissingBase,
}

/// Errors reading or writing ACLs.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The filesystem does not support POSIX ACLs (EOPNOTSUPP).
    #[error("{}: the filesystem does not support POSIX ACLs (mount it with the acl option)", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The attribute is not a valid ACL.
    #[error("{}: malformed {XATTR_ACCESS}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: XattrError,
    },
    /// The path cannot be passed to the kernel.
    #[error("{}: path contains a NUL byte", path.display())]
    NulInPath {
        /// The file.
        path: PathBuf,
    },
}

/// A POSIX access ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// `user::` (the owner) permissions (rwx bits, 0–7).
    pub user_obj: u16,
    /// `user:UID:` entries, by uid.
    pub users: Vec<(u32, u16)>,
    /// `group::` (the owning group) permissions.
    pub group_obj: u16,
    /// `group:GID:` entries, by gid.
    pub groups: Vec<(u32, u16)>,
    /// `mask::` (required with named entries; caps them and `group::`).
    pub mask: Option<u16>,
    /// `other::` permissions.
    pub other: u16,
}

impl Acl {
    /// The ACL `mode` alone stands for, plus `user:UID:r--` (mask `r--`, widened to cover
    /// `group::` as setfacl does).
    pub fn with_user_read(mode: u32, uid: u32) -> Acl {
        let group_obj = ((mode >> 3) & 7) as u16;
        Acl {
            user_obj: ((mode >> 6) & 7) as u16,
            users: vec![(uid, READ)],
            group_obj,
            groups: Vec::new(),
            mask: Some(READ | group_obj),
            other: (mode & 7) as u16,
        }
    }

    /// This ACL with the base entries (user::, group::, other::) of `mode`; named entries
    /// and the mask are kept (the mask widened to cover group::).
    pub fn with_base_mode(mut self, mode: u32) -> Acl {
        self.user_obj = ((mode >> 6) & 7) as u16;
        self.group_obj = ((mode >> 3) & 7) as u16;
        self.other = (mode & 7) as u16;
        if let Some(m) = self.mask.as_mut() {
            *m |= self.group_obj;
        }
        self
    }

    /// The base mode (user::, group::, other::), without the mask.
    pub fn base_mode(&self) -> u32 {
        (u32::from(self.user_obj) << 6) | (u32::from(self.group_obj) << 3) | u32::from(self.other)
    }

    /// The effective permissions of the named user `uid` (its entry, capped by the mask).
    pub fn user_perm(&self, uid: u32) -> Option<u16> {
        let p = self.users.iter().find(|(u, _)| *u == uid)?.1;
        Some(p & self.mask.unwrap_or(7))
    }

    /// The kernel's binary form.
    pub fn to_xattr(&self) -> Vec<u8> {
        let mut entries: Vec<(u16, u16, u32)> = vec![(TAG_USER_OBJ, self.user_obj, UNDEFINED_ID)];
        let mut users = self.users.clone();
        users.sort();
        entries.extend(users.iter().map(|(id, p)| (TAG_USER, *p, *id)));
        entries.push((TAG_GROUP_OBJ, self.group_obj, UNDEFINED_ID));
        let mut groups = self.groups.clone();
        groups.sort();
        entries.extend(groups.iter().map(|(id, p)| (TAG_GROUP, *p, *id)));
        if let Some(m) = self.mask {
            entries.push((TAG_MASK, m, UNDEFINED_ID));
        }
        entries.push((TAG_OTHER, self.other, UNDEFINED_ID));
        let mut out = VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(perm.to_le_bytes());
            out.extend(id.to_le_bytes());
        }
        out
    }

    /// Parses the kernel's binary form.
    pub fn from_xattr(bytes: &[u8]) -> Result<Acl, XattrError> {
        if bytes.len() < 4 || !(bytes.len() - 4).is_multiple_of(8) {
            return Err(XattrError::Length(bytes.len()));
        }
        let version = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if version != VERSION {
            return Err(XattrError::Version(version));
        }
        let mut acl = Acl {
            user_obj: 0,
            users: Vec::new(),
            group_obj: 0,
            groups: Vec::new(),
            mask: None,
            other: 0,
        };
        let mut seen = 0u16;
        for e in bytes[4..].chunks_exact(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]) & 7;
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            seen |= tag;
            match tag {
                TAG_USER_OBJ => acl.user_obj = perm,
                TAG_USER => acl.users.push((id, perm)),
                TAG_GROUP_OBJ => acl.group_obj = perm,
                TAG_GROUP => acl.groups.push((id, perm)),
                TAG_MASK => acl.mask = Some(perm),
                TAG_OTHER => acl.other = perm,
                t => return Err(XattrError::UnknownTag(t)),
            }
        }
        let base = TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER;
        if seen & base != base {
            return Err(XattrError::MissingBase);
        }
        Ok(acl)
    }
}

fn cpath(path: &Path) -> Result<CString, AclError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| AclError::NulInPath {
        path: path.to_path_buf(),
    })
}

fn unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP) || e.raw_os_error() == Some(libc::ENOTSUP)
}

/// The extended access ACL of `path`; `None` when it has none (its mode says everything) or
/// the filesystem does not support ACLs.
pub fn get(path: &Path) -> Result<Option<Acl>, AclError> {
    let c = cpath(path)?;
    let name = CString::new(XATTR_ACCESS).expect("no NUL");
    let mut buf = vec![0u8; 4 + 8 * 32];
    loop {
        // SAFETY: valid C strings and a buffer of the length passed.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Acl::from_xattr(&buf)
                .map(Some)
                .map_err(|source| AclError::Malformed {
                    path: path.to_path_buf(),
                    source,
                });
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ if unsupported(&e) => return Ok(None),
            _ => {
                return Err(AclError::Io {
                    op: "getxattr",
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
}

/// Whether the filesystem of `path` supports POSIX ACLs (reading the attribute does not
/// fail with EOPNOTSUPP).
pub fn supported(path: &Path) -> bool {
    let Ok(c) = cpath(path) else { return false };
    let name = CString::new(XATTR_ACCESS).expect("no NUL");
    // SAFETY: valid C strings; a size query (no buffer).
    let n = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    n >= 0 || !unsupported(&std::io::Error::last_os_error())
}

/// Sets the access ACL of `path` (the kernel also sets the mode's group bits to the mask).
pub fn set(path: &Path, acl: &Acl) -> Result<(), AclError> {
    let c = cpath(path)?;
    let name = CString::new(XATTR_ACCESS).expect("no NUL");
    let bytes = acl.to_xattr();
    // SAFETY: valid C strings and a buffer of the length passed.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            name.as_ptr(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if unsupported(&e) {
        return Err(AclError::Unsupported {
            path: path.to_path_buf(),
        });
    }
    Err(AclError::Io {
        op: "setxattr",
        path: path.to_path_buf(),
        source: e,
    })
}

/// Copies the extended access ACL of `from` (if any) to `to`: what a file replaced by an
/// atomic rename must keep.
pub fn copy(from: &Path, to: &Path) -> Result<(), AclError> {
    match get(from)? {
        Some(acl) => set(to, &acl),
        None => Ok(()),
    }
}

/// Gives `path` exactly the base `mode` plus `user:UID:r--`; true if anything changed.
/// [`AclError::Unsupported`] when the filesystem has no ACLs.
pub fn grant_user_read(path: &Path, mode: u32, uid: u32) -> Result<bool, AclError> {
    let want = Acl::with_user_read(mode, uid);
    if get(path)?.as_ref() == Some(&want) {
        return Ok(false);
    }
    set(path, &want)?;
    Ok(true)
}

/// The mode of `path` as plinth means it: the base mode of its ACL when it has one (the
/// group bits of `st_mode` are then the ACL mask), else its permission bits.
pub fn logical_mode(path: &Path, meta: &std::fs::Metadata) -> u32 {
    let bits = meta.permissions().mode() & 0o7777;
    match get(path) {
        Ok(Some(acl)) => (bits & 0o7000) | acl.base_mode(),
        _ => bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_format_round_trips_in_kernel_order() {
        let acl = Acl::with_user_read(0o600, 999);
        let bytes = acl.to_xattr();
        // version, user::rw-, user:999:r--, group::---, mask::r--, other::---
        let want: Vec<u8> = [
            &2u32.to_le_bytes()[..],
            &[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff],
            &[2, 0, 4, 0],
            &999u32.to_le_bytes(),
            &[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            &[0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff],
            &[0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        assert_eq!(bytes, want);
        assert_eq!(Acl::from_xattr(&bytes).unwrap(), acl);
        assert_eq!(acl.base_mode(), 0o600);
        assert_eq!(acl.user_perm(999), Some(READ));
        assert!(Acl::from_xattr(&bytes[..10]).is_err());
    }

    #[test]
    fn grant_sets_mask_in_group_bits_and_keeps_base_mode() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("k.key");
        std::fs::write(&f, "k").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        match grant_user_read(&f, 0o600, 4242) {
            Err(AclError::Unsupported { .. }) => {
                eprintln!("skipped: no ACL support on {}", d.path().display());
                return;
            }
            r => assert!(r.unwrap()),
        }
        let meta = std::fs::metadata(&f).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o640,
            "stat shows the mask in the group bits"
        );
        assert_eq!(logical_mode(&f, &meta), 0o600);
        assert_eq!(get(&f).unwrap().unwrap().user_perm(4242), Some(READ));
        assert!(!grant_user_read(&f, 0o600, 4242).unwrap(), "idempotent");
        let g = d.path().join("copy");
        std::fs::write(&g, "k").unwrap();
        copy(&f, &g).unwrap();
        assert_eq!(get(&g).unwrap(), get(&f).unwrap());
    }
}
