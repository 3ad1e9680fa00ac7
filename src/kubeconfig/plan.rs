//! The kubeconfig plan as a value: [`plan`] compares each kubeconfig with what should be there
//! (writes nothing); [`KubeconfigPlan::report`] is the dry run; [`KubeconfigPlan::apply`]
//! issues the client certificates and writes every file (0600) in one atomic batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::render::{self, KubeconfigData};
use super::{
    assess, check_names, load_ca, matches_only, profiles, server_url, Ca, KubeconfigAction,
    KubeconfigError, KubeconfigItem, KubeconfigOptions, KubeconfigReport,
};
use crate::config::{ClusterSpec, KeyAlgorithm};
use crate::fs::{HostRoot, MODE_PRIVATE};
use crate::pki::issue::{self, IssueSpec};
use crate::pki::profile::KubeconfigProfile;
use crate::pki::write::{write_tagged, PendingWrite};
use crate::pki::{keys, ExtKeyUsage, FilePlan, KeyUsage, PrivateKey};

/// The signing CA of a kubeconfig's client certificate, as found when planning.
#[derive(Debug, Clone)]
enum CaSource {
    /// Loaded (its key absent = external CA mode).
    Loaded(Arc<Ca>),
    /// The CA certificate does not exist yet (a dry run of a whole init plans it too):
    /// applying fails with [`KubeconfigError::CaMissing`].
    Missing(PathBuf),
}

/// The plan of one kubeconfig.
#[derive(Debug)]
pub struct KubeconfigItemPlan {
    /// Which identity, CA and server rule.
    pub profile: KubeconfigProfile,
    /// The server URL it should use.
    pub server: String,
    /// What the report will say.
    pub action: KubeconfigAction,
    /// The file (host path, 0600) and what happens to it.
    pub file: FilePlan,
    ca: CaSource,
}

impl KubeconfigItemPlan {
    /// A new client certificate and file.
    fn issues(&self) -> bool {
        self.file.writes()
    }

    fn item(&self, action: KubeconfigAction, written: bool) -> KubeconfigItem {
        KubeconfigItem {
            name: self.profile.file.clone(),
            path: self.file.path.clone(),
            server: self.server.clone(),
            action,
            mode_fixed: None,
            written,
        }
    }
}

/// Every selected kubeconfig, in kubeadm's order. Computed by [`plan`]; nothing is written
/// until [`KubeconfigPlan::apply`].
#[derive(Debug)]
pub struct KubeconfigPlan {
    /// One entry per selected kubeconfig.
    pub items: Vec<KubeconfigItemPlan>,
    root: HostRoot,
    /// The kubeconfig dir (host path), named when key generation fails.
    dir: PathBuf,
    cluster_name: String,
    key_algorithm: KeyAlgorithm,
    cert_validity: Duration,
    now: OffsetDateTime,
}

/// Compares the kubeconfigs of `spec` under `spec.plinth.kubeconfig_dir` (inside `root`) with
/// what they should be. Reads, never writes. A missing CA certificate is planned as "every file
/// new" (applying that plan fails); a CA without key is external CA mode, where every file must
/// exist and be valid.
pub fn plan(
    spec: &ClusterSpec,
    root: &HostRoot,
    opts: &KubeconfigOptions,
) -> Result<KubeconfigPlan, KubeconfigError> {
    let all = profiles(spec);
    check_names(spec, &all, opts)?;
    let now = OffsetDateTime::now_utc();
    let dir = Path::new(&spec.plinth.kubeconfig_dir);
    let mut cas: Vec<(String, CaSource)> = Vec::new();
    let mut items = Vec::new();
    for k in all
        .iter()
        .filter(|k| opts.only.as_deref().is_none_or(|o| matches_only(k, o)))
    {
        let ca = match cas.iter().find(|(n, _)| *n == k.ca) {
            Some((_, c)) => c.clone(),
            None => {
                let c = match load_ca(spec, root, &k.ca) {
                    Ok(c) => CaSource::Loaded(Arc::new(c)),
                    Err(KubeconfigError::CaMissing { path }) => CaSource::Missing(path),
                    Err(e) => return Err(e),
                };
                cas.push((k.ca.clone(), c.clone()));
                c
            }
        };
        items.push(plan_one(spec, root, k, &dir.join(&k.file), ca, opts, now)?);
    }
    Ok(KubeconfigPlan {
        items,
        root: root.clone(),
        dir: dir.to_path_buf(),
        cluster_name: spec.cluster_name.clone(),
        key_algorithm: spec.key_algorithm,
        cert_validity: spec.cert_validity,
        now,
    })
}

/// The plan of one kubeconfig at `host`, signed by `ca`.
fn plan_one(
    spec: &ClusterSpec,
    root: &HostRoot,
    k: &KubeconfigProfile,
    host: &Path,
    ca: CaSource,
    opts: &KubeconfigOptions,
    now: OffsetDateTime,
) -> Result<KubeconfigItemPlan, KubeconfigError> {
    let (action, reason) = match &ca {
        CaSource::Missing(_) => missing_ca_action(root, k, host),
        CaSource::Loaded(ca) => decide(spec, root, k, host, ca, opts, now)?,
    };
    let file = match reason {
        Some(reason) => FilePlan::write(root, host, MODE_PRIVATE, &reason),
        None => FilePlan::keep(root, host, MODE_PRIVATE),
    };
    Ok(KubeconfigItemPlan {
        profile: k.clone(),
        server: server_url(spec, k.server),
        action,
        file,
        ca,
    })
}

/// Without the CA every file is new: (action, why the file is written).
fn missing_ca_action(
    root: &HostRoot,
    k: &KubeconfigProfile,
    host: &Path,
) -> (KubeconfigAction, Option<String>) {
    if crate::fs::mode_of(&root.path(host)).is_some() {
        let reason = format!("the {:?} CA does not exist yet", k.ca);
        (
            KubeconfigAction::Regenerated {
                reason: reason.clone(),
            },
            Some(reason),
        )
    } else {
        (KubeconfigAction::Generated, Some(String::new()))
    }
}

/// Compares an existing kubeconfig with what it should be: (action, why the file is written —
/// `None` when it is kept).
fn decide(
    spec: &ClusterSpec,
    root: &HostRoot,
    k: &KubeconfigProfile,
    host: &Path,
    ca: &Ca,
    opts: &KubeconfigOptions,
    now: OffsetDateTime,
) -> Result<(KubeconfigAction, Option<String>), KubeconfigError> {
    let local = root.path(host);
    let a = assess(spec, root, k, &ca.cert, &local, now)?;
    let renew = k.renewable && opts.renew.includes(&k.file);
    if ca.key.is_none() {
        if renew {
            return Err(KubeconfigError::ExternalCaRenew {
                name: k.file.clone(),
                ca_key_path: ca.key_path.clone(),
            });
        }
        if !a.present {
            return Err(KubeconfigError::ExternalCaMissing {
                path: local,
                ca_key_path: ca.key_path.clone(),
            });
        }
        if !a.problems.is_empty() {
            return Err(KubeconfigError::ExternalCaInvalid {
                path: local,
                reason: a.problems.join("; "),
            });
        }
        return Ok((KubeconfigAction::ExternalCa, None));
    }
    Ok(if !a.present {
        (KubeconfigAction::Generated, Some(String::new()))
    } else if renew {
        (KubeconfigAction::Renewed, Some(RENEWAL.into()))
    } else if !a.problems.is_empty() || a.expiring.is_some() {
        let mut reasons = a.problems;
        reasons.extend(a.expiring);
        let reason = reasons.join("; ");
        (
            KubeconfigAction::Regenerated {
                reason: reason.clone(),
            },
            Some(reason),
        )
    } else {
        (KubeconfigAction::Reused, None)
    })
}

/// Why a renewed kubeconfig is written.
const RENEWAL: &str = "renewal requested: new client key and certificate";

impl KubeconfigPlan {
    /// True when applying changes nothing: every file is kept as it is.
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| !i.file.changes())
    }

    /// The dry-run report: what [`KubeconfigPlan::apply`] would do, nothing written.
    pub fn report(&self) -> KubeconfigReport {
        let items = self
            .items
            .iter()
            .map(|p| {
                let action = match &p.action {
                    KubeconfigAction::Generated => KubeconfigAction::WouldGenerate,
                    KubeconfigAction::Regenerated { reason } => KubeconfigAction::WouldRegenerate {
                        reason: reason.clone(),
                    },
                    KubeconfigAction::Renewed => KubeconfigAction::WouldRegenerate {
                        reason: RENEWAL.into(),
                    },
                    other => other.clone(),
                };
                let mut it = p.item(action, false);
                it.mode_fixed = p.file.mode_fix();
                it
            })
            .collect();
        KubeconfigReport {
            items,
            dry_run: true,
        }
    }

    /// Carries the plan out: new client keys in parallel, every certificate signed and every
    /// file rendered before anything is written, then one atomic batch, then the modes of the
    /// kept files. A plan made without the CA fails here, before anything is written.
    pub fn apply(self) -> Result<KubeconfigReport, KubeconfigError> {
        if let Some(CaSource::Missing(path)) = self
            .items
            .iter()
            .map(|i| &i.ca)
            .find(|c| matches!(c, CaSource::Missing(_)))
        {
            return Err(KubeconfigError::CaMissing { path: path.clone() });
        }
        let pending = self.render_all()?;
        let mut written = vec![false; self.items.len()];
        for i in write_tagged(pending)? {
            written[i] = true;
        }
        let mut items = Vec::with_capacity(self.items.len());
        for (p, written) in self.items.iter().zip(written) {
            let mut it = p.item(p.action.clone(), written);
            if !p.issues() {
                it.mode_fixed = crate::pki::ModeFix::enforce(
                    &self.root.path(&p.file.path),
                    p.file.path.clone(),
                    MODE_PRIVATE,
                )?;
            }
            items.push(it);
        }
        Ok(KubeconfigReport {
            items,
            dry_run: false,
        })
    }

    /// Every new file, rendered, tagged with its item's index.
    fn render_all(&self) -> Result<Vec<(usize, PendingWrite)>, KubeconfigError> {
        let needed = self.items.iter().filter(|p| p.issues()).count();
        let mut fresh = keys::generate_many(self.key_algorithm, needed)
            .map_err(|e| KubeconfigError::Render {
                path: self.root.path(&self.dir),
                reason: e.to_string(),
            })?
            .into_iter();
        let mut pending = Vec::new();
        for (i, p) in self.items.iter().enumerate().filter(|(_, p)| p.issues()) {
            let local = self.root.path(&p.file.path);
            let key = fresh
                .next()
                .ok_or_else(|| render_failed(&local, "no key generated"))?;
            let CaSource::Loaded(ca) = &p.ca else {
                return Err(render_failed(&local, "the CA is absent"));
            };
            let text = self.render(p, &key, ca, &local)?;
            pending.push((
                i,
                PendingWrite {
                    local,
                    content: text.into_bytes(),
                    mode: MODE_PRIVATE,
                },
            ));
        }
        Ok(pending)
    }

    /// Signs a client certificate for `key` with `ca` and renders the kubeconfig (to be
    /// written at `local`) around it.
    fn render(
        &self,
        p: &KubeconfigItemPlan,
        key: &PrivateKey,
        ca: &Ca,
        local: &Path,
    ) -> Result<String, KubeconfigError> {
        let ca_key = ca
            .key
            .as_ref()
            .ok_or_else(|| render_failed(local, "the CA key is absent"))?;
        let k = &p.profile;
        let spec_issue = IssueSpec {
            cn: &k.cn,
            organizations: &k.organizations,
            key_usages: &[KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            ext_key_usages: &[ExtKeyUsage::ClientAuth],
            is_ca: false,
            sans: &[],
        };
        let der = issue::signed(
            &spec_issue,
            key,
            &ca.cert.der,
            ca_key,
            self.cert_validity,
            self.now,
        )
        .map_err(|e| render_failed(local, e))?;
        render::render(&KubeconfigData {
            cluster: self.cluster_name.clone(),
            server: p.server.clone(),
            user: k.cn.clone(),
            context: format!("{}@{}", k.cn, self.cluster_name),
            ca_pem: ca.cert.to_pem(),
            cert_pem: crate::pki::pem::encode("CERTIFICATE", &der),
            key_pem: key.to_pem(),
        })
        .map_err(|e| render_failed(local, e))
    }
}

/// Signing or rendering the kubeconfig at `local` failed.
fn render_failed(local: &Path, reason: impl std::fmt::Display) -> KubeconfigError {
    KubeconfigError::Render {
        path: local.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults_for;
    use crate::pki::FileAction;

    #[test]
    fn a_plan_without_the_ca_is_a_dry_run_only_and_applying_it_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(tmp.path()));
        let mut s = defaults_for("cp1", "192.168.10.5".parse().unwrap());
        s.key_algorithm = KeyAlgorithm::EcdsaP256;
        let p = plan(&s, &root, &KubeconfigOptions::default()).unwrap();
        assert!(p.items.iter().all(|i| i.file.action == FileAction::Create));
        assert!(p.items.iter().all(|i| i.file.mode == 0o600));
        let e = p.apply().unwrap_err();
        assert!(matches!(e, KubeconfigError::CaMissing { .. }), "{e}");
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());

        crate::pki::reconcile(&s, &root, &Default::default()).unwrap();
        let p = plan(&s, &root, &KubeconfigOptions::default()).unwrap();
        assert!(!p.is_noop());
        assert_eq!(p.apply().unwrap().changed_files().len(), 5);
        let again = plan(&s, &root, &KubeconfigOptions::default()).unwrap();
        assert!(again.is_noop(), "{again:?}");
        assert!(again.apply().unwrap().changed_files().is_empty());
    }
}
