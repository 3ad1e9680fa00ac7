//! `plinth certs check-expiration` and `plinth certs renew`.

use clap::Subcommand;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use super::dayconfig::Policy;
use super::{ConfigArgs, OutputFormat, RootArgs};

/// `plinth certs ...`.
#[derive(Debug, Subcommand)]
pub enum CertsCmd {
    /// Show certificate expiry (kubeadm's table).
    CheckExpiration {
        #[command(flatten)]
        root: RootArgs,
        #[command(flatten)]
        config: ConfigArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Renew `all` or one certificate, keeping its subject, SANs and usages (new key, serial
    /// and validity); the agent restarts exactly the affected components. The configuration
    /// is the one `plinth init` persisted: flags or a --config that differ are shown and
    /// ignored (change SANs with `plinth init`).
    Renew {
        /// `all`, a certificate name (`etcd-server` or `etcd/server`) or a kubeconfig
        /// (`admin.conf`).
        name: String,
        #[command(flatten)]
        root: RootArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// One row of `check-expiration`.
#[derive(Debug, serde::Serialize)]
struct Row {
    certificate: String,
    expires: String,
    residual_days: i64,
    certificate_authority: String,
    externally_managed: bool,
    is_ca: bool,
}

fn expires(t: time::OffsetDateTime) -> String {
    let f =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    t.format(f).unwrap_or_else(|_| t.to_string())
}

fn residual(days: i64) -> String {
    if days < 0 {
        "<invalid>".into()
    } else if days >= 365 {
        format!("{}y", days / 365)
    } else {
        format!("{days}d")
    }
}

/// Runs `plinth certs ...`.
pub fn run(cmd: CertsCmd) -> anyhow::Result<i32> {
    match cmd {
        CertsCmd::CheckExpiration {
            root,
            config,
            output,
        } => {
            let root = root.host_root();
            let spec = super::dayconfig::load(
                "certs check-expiration",
                &config,
                &root,
                Policy::KeepPersisted,
            )?;
            let mut rows: Vec<Row> = plinth::pki::inspect(&spec, &root)?
                .into_iter()
                .map(|s| Row {
                    certificate: s.name.clone(),
                    expires: expires(s.not_after),
                    residual_days: s.residual.whole_days(),
                    certificate_authority: s.ca_name.clone().unwrap_or_default(),
                    externally_managed: s.externally_managed,
                    is_ca: s.is_ca,
                })
                .collect();
            for k in plinth::kubeconfig::inspect(&spec, &root)? {
                rows.push(Row {
                    certificate: k.file.clone(),
                    expires: expires(k.not_after),
                    residual_days: k.residual.whole_days(),
                    certificate_authority: "ca".into(),
                    externally_managed: false,
                    is_ca: false,
                });
            }
            if output != OutputFormat::Table {
                super::print_structured(output, &rows)?;
                return Ok(0);
            }
            let mut leaves = Table::new();
            leaves.load_preset(UTF8_BORDERS_ONLY).set_header([
                "CERTIFICATE",
                "EXPIRES",
                "RESIDUAL TIME",
                "CERTIFICATE AUTHORITY",
                "EXTERNALLY MANAGED",
            ]);
            let mut cas = Table::new();
            cas.load_preset(UTF8_BORDERS_ONLY).set_header([
                "CERTIFICATE AUTHORITY",
                "EXPIRES",
                "RESIDUAL TIME",
                "EXTERNALLY MANAGED",
            ]);
            for r in &rows {
                let ext = if r.externally_managed { "yes" } else { "no" };
                if r.is_ca {
                    cas.add_row([
                        r.certificate.clone(),
                        r.expires.clone(),
                        residual(r.residual_days),
                        ext.into(),
                    ]);
                } else {
                    leaves.add_row([
                        r.certificate.clone(),
                        r.expires.clone(),
                        residual(r.residual_days),
                        r.certificate_authority.clone(),
                        ext.into(),
                    ]);
                }
            }
            println!("{leaves}\n\n{cas}");
            Ok(0)
        }
        CertsCmd::Renew { name, root, config } => {
            let root = root.host_root();
            let spec = super::dayconfig::load("certs renew", &config, &root, Policy::KeepIdentity)?;
            let Some(name) = plinth::pki::canonical_cert_name(&spec, &name) else {
                anyhow::bail!(
                    "certs renew: unknown certificate {name:?}: allowed are all, {} (etcd \
                     certificates may also be spelled etcd/server etc.)",
                    plinth::pki::cert_names(&spec).join(", ")
                );
            };
            let report = plinth::certs::renew(&spec, &root, &name)?;
            for l in &report.lines {
                println!("{l}");
            }
            println!("[certs] renewed {} files; the agent restarts the components that mount them (no manual restart needed)", report.changed.len());
            Ok(0)
        }
    }
}
