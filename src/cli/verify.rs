//! `plinth verify`.

use clap::Args;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use plinth::verify::{self, Status};

use super::dayconfig::Policy;
use super::{ConfigArgs, OutputFormat, RootArgs};

/// `plinth verify`.
#[derive(Debug, Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Runs `plinth verify`: exit 1 when any check fails.
pub fn run(cmd: VerifyCmd) -> anyhow::Result<i32> {
    let root = cmd.root.host_root();
    let spec = super::dayconfig::load("verify", &cmd.config, &root, Policy::KeepPersisted)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = rt.block_on(verify::run(&spec, &root));
    match cmd.output {
        OutputFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY)
                .set_header(["CATEGORY", "CHECK", "STATUS", "REASON"]);
            for c in &checks {
                let s = match c.status {
                    Status::Pass => "pass",
                    Status::Warn => "warn",
                    Status::Fail => "FAIL",
                };
                t.add_row([c.category.as_str(), c.name.as_str(), s, c.reason.as_str()]);
            }
            println!("{t}");
            let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
            let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
            println!(
                "{} checks: {} passed, {warns} warnings, {fails} failed",
                checks.len(),
                checks.len() - fails - warns
            );
        }
        f => super::print_structured(f, &checks)?,
    }
    Ok(if verify::passed(&checks) { 0 } else { 1 })
}
