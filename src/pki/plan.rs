//! Plans as values: what should exist on disk, what is there, and what one apply step will do
//! to each file.
//!
//! [`plan`](super::plan()) (in the assessment, [`super::reconcile`]) compares the certificate profiles of a [`ClusterSpec`] with the files under
//! `--root` and writes nothing. The result, a [`PkiPlan`], says per profile what should exist
//! (its [`CertProfile`]), what will be reported ([`PkiAction`]) and per file what happens
//! ([`FileAction`]: create, keep, replace with a reason, fix the mode). A dry run prints
//! [`PkiPlan::report`]; a real run calls [`PkiPlan::apply`], which generates the keys,
//! signs, and writes everything atomically with the plan's modes. A second run over the
//! result plans nothing but [`FileAction::Keep`] ([`PkiPlan::is_noop`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use super::issue::{self, IssueSpec};
use super::keys::{self, PrivateKey};
use super::profile::{CertProfile, ProfileKind};
use super::write::PendingWrite;
use super::{ModeFix, PkiAction, PkiError, PkiItem, PkiReport};
use crate::config::KeyAlgorithm;
use crate::fs::{self as pfs, HostRoot, MODE_CERT, MODE_KEY, MODE_PRIVATE};

/// What the apply step does to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    /// The file is absent: write it.
    Create,
    /// The file is right, mode included: leave it alone.
    Keep,
    /// The file exists but must be written anew.
    Replace {
        /// Why, e.g. `its SANs no longer cover IP 10.0.0.100`.
        reason: String,
    },
    /// The content is right but the mode is not: set the plan's mode.
    FixMode {
        /// The mode found on disk.
        from: u32,
    },
}

/// One file of a plan: where, with which mode, and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    /// Host path (without the `--root` prefix).
    pub path: PathBuf,
    /// The mode the file must have (keys and kubeconfigs 0600, certificates 0644).
    pub mode: u32,
    /// What the apply step does.
    pub action: FileAction,
}

impl FilePlan {
    /// A file that gets new content: [`FileAction::Create`] when absent, else
    /// [`FileAction::Replace`] with `reason`.
    pub(crate) fn write(root: &HostRoot, host: &Path, mode: u32, reason: &str) -> Self {
        let action = if pfs::mode_of(&root.path(host)).is_some() {
            FileAction::Replace {
                reason: reason.to_string(),
            }
        } else {
            FileAction::Create
        };
        FilePlan {
            path: host.to_path_buf(),
            mode,
            action,
        }
    }

    /// A file whose content is kept: [`FileAction::Keep`], or [`FileAction::FixMode`] when its
    /// mode differs from `mode`.
    pub(crate) fn keep(root: &HostRoot, host: &Path, mode: u32) -> Self {
        let action = match ModeFix::planned(&root.path(host), host.to_path_buf(), mode) {
            Some(fix) => FileAction::FixMode { from: fix.old },
            None => FileAction::Keep,
        };
        FilePlan {
            path: host.to_path_buf(),
            mode,
            action,
        }
    }

    /// True if the apply step writes new content.
    pub fn writes(&self) -> bool {
        matches!(self.action, FileAction::Create | FileAction::Replace { .. })
    }

    /// True if the apply step changes anything (content or mode).
    pub fn changes(&self) -> bool {
        self.action != FileAction::Keep
    }

    /// The planned mode fix, for dry-run reports.
    pub(crate) fn mode_fix(&self) -> Option<ModeFix> {
        match self.action {
            FileAction::FixMode { from } => Some(ModeFix {
                path: self.path.clone(),
                old: from,
                new: self.mode,
            }),
            _ => None,
        }
    }
}

/// The plan of one certificate profile (or the `sa` key pair).
#[derive(Debug)]
pub struct ItemPlan {
    /// What should exist.
    pub profile: CertProfile,
    /// What the report will say (the apply step's action; see [`PkiPlan::report`]).
    pub action: PkiAction,
    /// Every file the item owns, with its action.
    pub files: Vec<FilePlan>,
    /// The existing key to sign with, when it is kept.
    key: Option<PrivateKey>,
}

impl ItemPlan {
    /// Every file is new: a new key and certificate (or key pair).
    pub(super) fn fresh(p: &CertProfile, root: &HostRoot, action: PkiAction) -> Self {
        let reason = match &action {
            PkiAction::Renewed => "renewal requested: new key and certificate".to_string(),
            _ => format!("{} is being generated anew", p.key_path.display()),
        };
        let cert_mode = cert_mode(p);
        ItemPlan {
            files: vec![
                FilePlan::write(root, &p.key_path, MODE_KEY, &reason),
                FilePlan::write(root, &p.cert_path, cert_mode, &reason),
            ],
            profile: p.clone(),
            action,
            key: None,
        }
    }

    /// Nothing is issued: `files` (host path, mode) stay as they are, modes enforced.
    pub(super) fn keep(
        p: &CertProfile,
        root: &HostRoot,
        action: PkiAction,
        files: &[(&Path, u32)],
    ) -> Self {
        ItemPlan {
            profile: p.clone(),
            action,
            files: files
                .iter()
                .map(|(host, mode)| FilePlan::keep(root, host, *mode))
                .collect(),
            key: None,
        }
    }

    /// A new certificate (or public key) for the existing `key` when there is one, else for
    /// a new key; `reason` says why.
    pub(super) fn reissue(
        p: &CertProfile,
        root: &HostRoot,
        reason: String,
        key: Option<PrivateKey>,
    ) -> Self {
        let key_file = match key {
            Some(_) => FilePlan::keep(root, &p.key_path, MODE_KEY),
            None => FilePlan::write(root, &p.key_path, MODE_KEY, &reason),
        };
        ItemPlan {
            files: vec![
                key_file,
                FilePlan::write(root, &p.cert_path, cert_mode(p), &reason),
            ],
            profile: p.clone(),
            action: PkiAction::Reissued { reason },
            key,
        }
    }

    fn file(&self, host: &Path) -> Option<&FilePlan> {
        self.files.iter().find(|f| f.path == host)
    }

    /// A new key is generated.
    fn new_key(&self) -> bool {
        self.file(&self.profile.key_path)
            .is_some_and(FilePlan::writes)
    }

    /// A new certificate (or public key) is written.
    fn issues(&self) -> bool {
        self.file(&self.profile.cert_path)
            .is_some_and(FilePlan::writes)
    }

    /// The report entry, with what was written and the mode fixes made.
    fn item(&self, written: Vec<PathBuf>, mode_fixed: Vec<ModeFix>) -> PkiItem {
        let p = &self.profile;
        let issued = self.issues() && p.kind != ProfileKind::Keypair;
        PkiItem {
            name: p.name.clone(),
            base: p.base.clone(),
            kind: p.kind,
            cert_path: p.cert_path.clone(),
            key_path: p.key_path.clone(),
            action: self.action.clone(),
            mode_fixed,
            written,
            serving_sans: (issued && p.is_serving()).then(|| p.sans.clone()),
        }
    }
}

/// The mode of a profile's certificate file: `sa.pub` is private like kubeadm's, certificates
/// are world-readable.
fn cert_mode(p: &CertProfile) -> u32 {
    match p.kind {
        ProfileKind::Keypair => MODE_PRIVATE,
        _ => MODE_CERT,
    }
}

/// A file to write, tagged with its item's index and its host path.
type TaggedWrite = ((usize, PathBuf), PendingWrite);

/// The certificate and key of an existing CA, to sign with (no key: external CA mode).
#[derive(Debug)]
pub(super) struct CaMaterial {
    pub(super) der: Vec<u8>,
    pub(super) key: Option<PrivateKey>,
}

/// The whole PKI plan: one [`ItemPlan`] per selected profile, in generation order (every CA
/// before its leaves). Computed by [`super::plan()`]; nothing is written until [`PkiPlan::apply`].
#[derive(Debug)]
pub struct PkiPlan {
    /// One entry per selected profile.
    pub items: Vec<ItemPlan>,
    pub(super) root: HostRoot,
    /// The CAs kept on disk, by profile name.
    pub(super) cas: BTreeMap<String, CaMaterial>,
    pub(super) key_algorithm: KeyAlgorithm,
    pub(super) cert_validity: Duration,
    pub(super) ca_cert_validity: Duration,
    /// The time the plan was made; certificates are issued as of then.
    pub(super) now: OffsetDateTime,
}

impl PkiPlan {
    /// True when applying changes nothing: every file is kept as it is.
    pub fn is_noop(&self) -> bool {
        self.files().all(|f| !f.changes())
    }

    /// Every file of the plan, in order.
    pub fn files(&self) -> impl Iterator<Item = &FilePlan> {
        self.items.iter().flat_map(|i| i.files.iter())
    }

    /// The dry-run report: what [`PkiPlan::apply`] would do (`Would generate`, `Would
    /// re-issue`, `Would tighten`), with nothing written.
    pub fn report(&self) -> PkiReport {
        let items = self
            .items
            .iter()
            .map(|plan| {
                let mut it = plan.item(
                    Vec::new(),
                    plan.files.iter().filter_map(FilePlan::mode_fix).collect(),
                );
                it.action = match &plan.action {
                    PkiAction::Generated => PkiAction::WouldGenerate,
                    PkiAction::Reissued { reason } => PkiAction::WouldReissue {
                        reason: reason.clone(),
                    },
                    PkiAction::Renewed => PkiAction::WouldReissue {
                        reason: "renewal requested: new key and certificate".into(),
                    },
                    other => other.clone(),
                };
                it
            })
            .collect();
        PkiReport {
            items,
            dry_run: true,
        }
    }

    /// Carries the plan out: generates the new keys in parallel, signs (CAs first), writes
    /// every new file in one atomic batch, then sets the modes of the kept files. Nothing is
    /// written until every certificate has been signed.
    pub fn apply(mut self) -> Result<PkiReport, PkiError> {
        self.generate_keys()?;
        let outputs = self.sign()?;
        let mut written: Vec<Vec<PathBuf>> = vec![Vec::new(); self.items.len()];
        for (i, host) in super::write::write_tagged(outputs)? {
            written[i].push(host);
        }
        let mut items = Vec::with_capacity(self.items.len());
        for (plan, written) in self.items.iter().zip(written) {
            let mut mode_fixed = Vec::new();
            for f in plan.files.iter().filter(|f| !f.writes()) {
                mode_fixed.extend(ModeFix::enforce(
                    &self.root.path(&f.path),
                    f.path.clone(),
                    f.mode,
                )?);
            }
            items.push(plan.item(written, mode_fixed));
        }
        Ok(PkiReport {
            items,
            dry_run: false,
        })
    }

    /// The keys of the items that need new ones, generated in parallel.
    fn generate_keys(&mut self) -> Result<(), PkiError> {
        let needed = self.items.iter().filter(|p| p.new_key()).count();
        let mut fresh = keys::generate_many(self.key_algorithm, needed)
            .map_err(|e| PkiError::Crypto {
                name: "keys".into(),
                reason: e.to_string(),
            })?
            .into_iter();
        for plan in self.items.iter_mut().filter(|p| p.new_key()) {
            plan.key = fresh.next();
        }
        Ok(())
    }

    /// Signs every new certificate in order (profiles put each CA before its leaves); the new
    /// files, each tagged with its item's index and host path.
    fn sign(&self) -> Result<Vec<TaggedWrite>, PkiError> {
        let mut ca_material: BTreeMap<String, (Vec<u8>, Option<&PrivateKey>)> = self
            .cas
            .iter()
            .map(|(name, ca)| (name.clone(), (ca.der.clone(), ca.key.as_ref())))
            .collect();
        let mut outputs = Vec::new();
        for (i, plan) in self.items.iter().enumerate() {
            if !plan.issues() {
                continue;
            }
            let p = &plan.profile;
            let mut output = |host: &Path, content: String, mode: u32| {
                outputs.push((
                    (i, host.to_path_buf()),
                    PendingWrite {
                        local: self.root.path(host),
                        content: content.into_bytes(),
                        mode,
                    },
                ));
            };
            let crypto = |reason: String| PkiError::Crypto {
                name: p.name.clone(),
                reason,
            };
            let key = plan
                .key
                .as_ref()
                .ok_or_else(|| crypto("no key available".into()))?;
            if plan.new_key() {
                output(&p.key_path, key.to_pem(), MODE_KEY);
            }
            let content = match p.kind {
                ProfileKind::Keypair => key.public_key_pem(),
                ProfileKind::Ca => {
                    let der = issue::self_signed(
                        &IssueSpec::from(p),
                        key,
                        self.ca_cert_validity,
                        self.now,
                    )
                    .map_err(crypto)?;
                    let pem = super::pem::encode("CERTIFICATE", &der);
                    ca_material.insert(p.name.clone(), (der, Some(key)));
                    pem
                }
                ProfileKind::Leaf => {
                    let ca_name = p.ca.clone().unwrap_or_default();
                    let (ca_der, ca_key) = ca_material
                        .get(&ca_name)
                        .and_then(|(d, k)| k.map(|k| (d, k)))
                        .ok_or_else(|| crypto(format!("CA {ca_name:?} has no key")))?;
                    let der = issue::signed(
                        &IssueSpec::from(p),
                        key,
                        ca_der,
                        ca_key,
                        self.cert_validity,
                        self.now,
                    )
                    .map_err(crypto)?;
                    super::pem::encode("CERTIFICATE", &der)
                }
            };
            output(&p.cert_path, content, cert_mode(p));
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults_for, ClusterSpec};
    use crate::pki::Renew;
    use crate::pki::{plan, PkiOptions};
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, HostRoot, ClusterSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.key_algorithm = KeyAlgorithm::EcdsaP256;
        (tmp, root, s)
    }

    fn file<'a>(p: &'a PkiPlan, host: &str) -> &'a FilePlan {
        p.files().find(|f| f.path == Path::new(host)).unwrap()
    }

    #[test]
    fn plan_says_per_file_what_apply_does_and_a_second_plan_is_a_noop() {
        let (tmp, root, s) = setup();
        let p = plan(&s, &root, &PkiOptions::default()).unwrap();
        assert!(p.files().all(|f| f.action == FileAction::Create), "{p:?}");
        assert_eq!(p.files().count(), 22);
        assert_eq!(file(&p, "/etc/kubernetes/pki/ca.key").mode, 0o600);
        assert_eq!(file(&p, "/etc/kubernetes/pki/ca.crt").mode, 0o644);
        assert_eq!(file(&p, "/etc/kubernetes/pki/sa.pub").mode, 0o600);
        assert!(!p.is_noop());
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "planning writes nothing"
        );
        let report = p.apply().unwrap();
        assert_eq!(report.changed_files().len(), 22);

        let again = plan(&s, &root, &PkiOptions::default()).unwrap();
        assert!(again.is_noop(), "{again:?}");
        assert!(again.report().changed_files().is_empty());
        assert!(again.apply().unwrap().changed_files().is_empty());
    }

    #[test]
    fn plan_names_replacements_and_mode_fixes() {
        let (tmp, root, mut s) = setup();
        plan(&s, &root, &PkiOptions::default())
            .unwrap()
            .apply()
            .unwrap();
        let pki = tmp.path().join("etc/kubernetes/pki");
        std::fs::set_permissions(pki.join("ca.crt"), std::fs::Permissions::from_mode(0o664))
            .unwrap();
        s.api_server.cert_sans.push("10.0.0.100".into());
        let opts = PkiOptions {
            renew: Renew::Names(vec!["etcd-peer".into()]),
            ..Default::default()
        };
        let p = plan(&s, &root, &opts).unwrap();
        assert_eq!(
            file(&p, "/etc/kubernetes/pki/ca.crt").action,
            FileAction::FixMode { from: 0o664 }
        );
        assert_eq!(
            file(&p, "/etc/kubernetes/pki/apiserver.key").action,
            FileAction::Keep,
            "a re-issued leaf keeps its key"
        );
        assert_eq!(
            file(&p, "/etc/kubernetes/pki/apiserver.crt").action,
            FileAction::Replace {
                reason: "its SANs no longer cover IP 10.0.0.100".into()
            }
        );
        for f in ["etcd/peer.key", "etcd/peer.crt"] {
            assert_eq!(
                file(&p, &format!("/etc/kubernetes/pki/{f}")).action,
                FileAction::Replace {
                    reason: "renewal requested: new key and certificate".into()
                }
            );
        }
        let mut changed: Vec<PathBuf> = p
            .files()
            .filter(|f| f.changes())
            .map(|f| f.path.clone())
            .collect();
        changed.sort();
        let mut applied = p.apply().unwrap().changed_files();
        applied.sort();
        assert_eq!(applied, changed, "apply changes exactly the planned files");
        assert_eq!(pfs::mode_of(&pki.join("ca.crt")), Some(0o644));
    }
}
