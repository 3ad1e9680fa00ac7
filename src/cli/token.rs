//! `plinth token create|list|delete|generate`, as `kubeadm token`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use plinth::bootstrap::token::{check_group, check_usage, Token, DEFAULT_GROUP};
use plinth::config::BootstrapTokenSpec;

use super::{OutputFormat, RootArgs};

/// `plinth token`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a bootstrap token on the server (and optionally print the join command).
    Create(CreateArgs),
    /// List the bootstrap tokens on the server.
    List(ListArgs),
    /// Delete bootstrap tokens (by id or whole token).
    Delete(DeleteArgs),
    /// Generate and print a random token, without creating it.
    Generate,
}

/// Where to talk to the cluster.
#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub root: RootArgs,
    /// The admin kubeconfig (default: <root>/etc/kubernetes/admin.conf).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl Target {
    fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig
            .clone()
            .unwrap_or_else(|| self.root.host_root().path("/etc/kubernetes/admin.conf"))
    }
}

/// `plinth token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Target,
    /// The token to create (`[a-z0-9]{6}.[a-z0-9]{16}`); default: a random one.
    pub token: Option<String>,
    /// Lifetime (Go duration); 0 = never expires.
    #[arg(long, default_value = "24h0m0s")]
    pub ttl: String,
    /// Usages (signing, authentication).
    #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
    pub usages: Vec<String>,
    /// Extra groups.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_GROUP)]
    pub groups: Vec<String>,
    /// A human-readable description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Print the whole `kubeadm join` command instead of only the token.
    #[arg(long)]
    pub print_join_command: bool,
}

/// `plinth token list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `plinth token delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
    /// Token ids or whole tokens.
    #[arg(required = true)]
    pub tokens: Vec<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn client(t: &Target) -> anyhow::Result<kube::Client> {
    let path = t.kubeconfig();
    plinth::apiclient::connect(&path)
        .await
        .with_context(|| format!("connecting with {}", path.display()))
}

/// The spec of the token to create from the flags, checked (errors name the flag and value).
fn entry(a: &CreateArgs) -> anyhow::Result<BootstrapTokenSpec> {
    let mut e = BootstrapTokenSpec {
        description: a.description.clone(),
        ..Default::default()
    };
    if let Some(t) = &a.token {
        e.token = Some(Token::parse("token argument", t)?);
    }
    e.ttl = plinth::config::duration::parse_go_duration(&a.ttl).map_err(|why| {
        anyhow::anyhow!(
            "--ttl: invalid value {:?}: allowed is a Go duration such as 24h0m0s or 30m ({why})",
            a.ttl
        )
    })?;
    for u in &a.usages {
        check_usage("--usages", u)?;
    }
    for g in &a.groups {
        check_group("--groups", g)?;
    }
    e.usages = a.usages.clone();
    e.groups = a.groups.clone();
    Ok(e)
}

/// Runs `plinth token …`.
pub fn run(cmd: TokenCmd) -> anyhow::Result<i32> {
    match cmd {
        TokenCmd::Generate => {
            println!("{}", Token::generate()?.expose());
            Ok(0)
        }
        TokenCmd::Create(a) => {
            let e = entry(&a)?;
            let rt = runtime()?;
            let info = rt.block_on(async {
                let c = client(&a.target).await?;
                anyhow::Ok(plinth::tokens::create(&c, &e).await?)
            })?;
            if a.print_join_command {
                let path = a.target.kubeconfig();
                let kc = plinth::client::ClientConfig::load(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let hash = plinth::bootstrap::clusterinfo::ca_cert_hash(
                    &format!("the CA in {}", path.display()),
                    &kc.ca_pem,
                )?;
                println!(
                    "{}",
                    plinth::bootstrap::clusterinfo::join_command(&kc.server, &info.token, &hash)
                );
            } else {
                println!("{}", info.token.expose());
            }
            Ok(0)
        }
        TokenCmd::List(a) => {
            let rt = runtime()?;
            let tokens = rt.block_on(async {
                let c = client(&a.target).await?;
                anyhow::Ok(plinth::tokens::list(&c).await?)
            })?;
            match a.output {
                OutputFormat::Table => {
                    print!(
                        "{}",
                        plinth::tokens::table(&tokens, time::OffsetDateTime::now_utc())
                    );
                }
                OutputFormat::Json => {
                    for t in &tokens {
                        super::print_structured(a.output, &plinth::tokens::TokenOutput::from(t))?;
                    }
                }
                OutputFormat::Yaml => {
                    for (i, t) in tokens.iter().enumerate() {
                        if i > 0 {
                            println!("---");
                        }
                        super::print_structured(a.output, &plinth::tokens::TokenOutput::from(t))?;
                    }
                }
            }
            Ok(0)
        }
        TokenCmd::Delete(a) => {
            let rt = runtime()?;
            rt.block_on(async {
                let c = client(&a.target).await?;
                for t in &a.tokens {
                    let id = plinth::tokens::delete(&c, t).await?;
                    println!("bootstrap token {id:?} deleted");
                }
                anyhow::Ok(())
            })?;
            Ok(0)
        }
    }
}
