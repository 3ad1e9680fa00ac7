//! Workflows: ordered tables of phases and the one runner that runs them.
//!
//! - [`runner`]: the table types ([`Phase`] rows with sub-phases and a run function), the
//!   typed [`Event`]s a run reports, and [`run`], which serves a whole run, one phase or
//!   sub-phase, `--skip-phases` and dry-run alike.
//! - [`init`]: `plinth init`'s table and context. A phase is one row there plus its function.

pub mod init;
pub mod runner;

pub use runner::{
    run, Event, Phase, PhaseReport, Reporter, RunError, Selection, SkipReason, Sub, Summary, Table,
    Target,
};
