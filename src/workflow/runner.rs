//! The runner: one ordered table of phases, run whole (`plinth init`), one phase or sub-phase
//! at a time (`plinth init phase certs/apiserver`), with `--skip-phases`, reporting typed
//! [`Event`]s. Dry-run is the context's business: the same rows run, writing nothing.
//!
//! A table is data: each [`Phase`] row has a name, a help text, its sub-phases and one run
//! function over the workflow's context. Rows run in table order. A phase may be split over
//! several rows (its sub-phases then run at different points, e.g. etcd's certificates before
//! the agent starts and the other certificates after); it is still one phase for `init phase`,
//! `--skip-phases` and the help.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::health::{ComponentProgress, WaitReport};
use crate::preflight::Finding;
pub use crate::report::PhaseReport;

/// Reports a [`PhaseReport`]: its lines as [`Event::Item`]s, its files as [`Event::Changed`].
pub fn emit(report: PhaseReport, reporter: &mut dyn Reporter) {
    for l in report.lines {
        reporter.report(Event::Item(l));
    }
    for p in report.changed {
        reporter.report(Event::Changed(p));
    }
}

/// A sub-phase of a [`Phase`] row (`certs/apiserver`, `control-plane/scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sub {
    /// Its name after the slash.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Other spellings accepted on the command line (`etcd/server` for `etcd-server`).
    pub aliases: &'static [&'static str],
}

impl Sub {
    /// A sub-phase without aliases.
    pub const fn new(name: &'static str, help: &'static str) -> Sub {
        Sub {
            name,
            help,
            aliases: &[],
        }
    }

    /// The same with other accepted spellings.
    pub const fn aka(self, aliases: &'static [&'static str]) -> Sub {
        Sub { aliases, ..self }
    }
}

/// The run function of a row: the context, which sub-phases run, where to report.
pub type RunFn<C, E> = fn(&mut C, &Selection, &mut dyn Reporter) -> Result<(), E>;

/// What runs before a table's first writing row: the context, the target, where to report.
pub type PrepareFn<C, E> = fn(&mut C, &Target, &mut dyn Reporter) -> Result<(), E>;

/// One row of a phase table.
pub struct Phase<C, E> {
    /// The kubeadm-style phase name (`wait-control-plane`).
    pub name: &'static str,
    /// One line of help (`init phase --help`).
    pub help: &'static str,
    /// The sub-phases this row runs, in order (empty: the phase has none).
    pub subs: &'static [Sub],
    /// Whether the row writes the node's files ([`Table::before_writes`] runs first).
    pub writes: bool,
    /// Does the work.
    pub run: RunFn<C, E>,
}

impl<C, E> Phase<C, E> {
    /// A row without sub-phases that writes nothing.
    pub fn new(name: &'static str, help: &'static str, run: RunFn<C, E>) -> Self {
        Phase {
            name,
            help,
            subs: &[],
            writes: false,
            run,
        }
    }

    /// The same row with sub-phases.
    pub fn subs(self, subs: &'static [Sub]) -> Self {
        Phase { subs, ..self }
    }

    /// The same row, marked as writing the node's files.
    pub fn writes(self) -> Self {
        Phase {
            writes: true,
            ..self
        }
    }
}

/// A workflow: its phase rows in run order.
pub struct Table<C, E> {
    /// The command (`init`), for messages.
    pub command: &'static str,
    /// The rows, in run order.
    pub rows: Vec<Phase<C, E>>,
    /// Runs once, before the first row that writes (records what the run is about to do).
    pub before_writes: Option<PrepareFn<C, E>>,
}

/// The hook a table runs once before its first writing row.
pub type BeforeWrites<C, E> = fn(&mut C, &Target, &mut dyn Reporter) -> Result<(), E>;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every row, except these phases or `phase/sub`s.
    All {
        /// `--skip-phases` values.
        skip: Vec<String>,
    },
    /// One phase, or one sub-phase (`certs/apiserver`): `init phase <path>`.
    Phase(String),
}

/// Which part of a phase a row runs this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The phase.
    pub phase: &'static str,
    /// The row's sub-phases that run, in order (empty for a phase without sub-phases).
    pub subs: Vec<&'static str>,
    /// Every sub-phase of the phase runs in this run (none skipped or left out), so a row may
    /// do its part in one step over the whole phase.
    pub whole_phase: bool,
    /// The phase was asked for by name (`init phase <name>`), not as part of the whole run.
    pub explicit: bool,
}

/// Why a phase or sub-phase did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `--skip-phases` named it.
    Requested,
    /// It does not apply to this configuration (reported by the row itself).
    NotApplicable(String),
}

/// What a run reports, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A row starts (its sub-phases that run).
    Started {
        /// The phase.
        phase: &'static str,
        /// Its sub-phases in this row that run.
        subs: Vec<&'static str>,
    },
    /// A phase or sub-phase (`certs/sa`) does not run.
    Skipped {
        /// `phase` or `phase/sub`.
        phase: String,
        /// Why.
        reason: SkipReason,
    },
    /// A row finished.
    Done {
        /// The phase.
        phase: &'static str,
    },
    /// A row failed; the run stops.
    Failed {
        /// The phase.
        phase: &'static str,
        /// The error, one line.
        error: String,
    },
    /// One thing done, kubeadm style (`[certs] Generating "ca" certificate and key`).
    Item(String),
    /// Something the operator should read; not an error.
    Warning(String),
    /// A file created or changed (host path).
    Changed(PathBuf),
    /// The last row that writes has run: the number of files it and the rows before changed.
    WritesDone {
        /// Files created or changed.
        changed: usize,
    },
    /// One preflight check's result.
    Preflight(Finding),
    /// A health wait's progress: every component's state after one round.
    Health {
        /// The components.
        components: Vec<ComponentProgress>,
        /// Since the wait started.
        elapsed: Duration,
    },
    /// A health wait ended (healthy or not).
    HealthReport {
        /// The per-component report.
        report: WaitReport,
        /// The wait's timeout.
        timeout: Duration,
    },
}

/// Where a run reports its [`Event`]s (the CLI prints them; tests collect them).
pub trait Reporter {
    /// Takes one event.
    fn report(&mut self, event: Event);
}

impl<F: FnMut(Event)> Reporter for F {
    fn report(&mut self, event: Event) {
        self(event)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Phases that ran (each once, in order).
    pub ran: Vec<&'static str>,
}

impl Summary {
    /// Whether `phase` ran (some of it, at least).
    pub fn ran(&self, phase: &str) -> bool {
        self.ran.contains(&phase)
    }
}

/// The selection could not be resolved against the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A phase name that is not in the table.
    #[error("unknown phase {value:?}: allowed are {allowed}")]
    UnknownPhase {
        /// What was given.
        value: String,
        /// The allowed names (phases and `phase/sub`).
        allowed: String,
    },
    /// A sub-phase its phase does not have.
    #[error("{command} phase {phase}: invalid value {value:?}: allowed are {allowed}")]
    UnknownSub {
        /// The command (`init`).
        command: &'static str,
        /// The phase.
        phase: &'static str,
        /// What was given.
        value: String,
        /// `all` and the sub-phase names.
        allowed: String,
    },
}

/// A run that did not finish.
#[derive(Debug)]
pub enum RunError<E> {
    /// Nothing ran: the target or `--skip-phases` names what the table does not have.
    Select(SelectError),
    /// A phase failed (the rows before it ran).
    Phase {
        /// The phase that failed.
        phase: &'static str,
        /// Its error.
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    // The phase's error says which phase it is: shown as it is, with its own causes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Select(e) => e.fmt(f),
            RunError::Phase { error, .. } => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Select(e) => e.source(),
            RunError::Phase { error, .. } => error.source(),
        }
    }
}

impl<C, E> Table<C, E> {
    /// Phase names in order, each once.
    pub fn phase_names(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.name) {
                out.push(r.name);
            }
        }
        out
    }

    /// The help of `phase` (its first row's).
    pub fn help(&self, phase: &str) -> Option<&'static str> {
        self.rows.iter().find(|r| r.name == phase).map(|r| r.help)
    }

    /// Every sub-phase of `phase`, over all its rows, in run order.
    pub fn subs_of(&self, phase: &str) -> Vec<Sub> {
        self.rows
            .iter()
            .filter(|r| r.name == phase)
            .flat_map(|r| r.subs.iter().copied())
            .collect()
    }

    /// Every name `--skip-phases` and `init phase` accept: `phase` and `phase/sub`, in order.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.phase_names() {
            out.push(p.to_string());
            out.extend(self.subs_of(p).iter().map(|s| format!("{p}/{}", s.name)));
        }
        out
    }

    /// Resolves `phase` or `phase/sub` (a sub by name or alias) to (phase, sub).
    pub fn resolve(&self, path: &str) -> Result<(&'static str, Option<&'static str>), SelectError> {
        let (name, sub) = match path.split_once('/') {
            Some((n, s)) => (n, Some(s)),
            None => (path, None),
        };
        let Some(phase) = self.phase_names().into_iter().find(|p| *p == name) else {
            return Err(SelectError::UnknownPhase {
                value: path.to_string(),
                allowed: self.paths().join(", "),
            });
        };
        let Some(sub) = sub else {
            return Ok((phase, None));
        };
        let subs = self.subs_of(phase);
        match subs
            .iter()
            .find(|s| s.name == sub || s.aliases.contains(&sub))
        {
            Some(s) => Ok((phase, Some(s.name))),
            None => Err(SelectError::UnknownSub {
                command: self.command,
                phase,
                value: sub.to_string(),
                allowed: std::iter::once("all")
                    .chain(subs.iter().map(|s| s.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The rows that run for `target`, with their selections, and what is skipped (in order).
    pub fn plan(&self, target: &Target) -> Result<Vec<Step>, SelectError> {
        let mut steps = Vec::new();
        match target {
            Target::All { skip } => {
                let skip: Vec<(&str, Option<&str>)> = skip
                    .iter()
                    .map(|s| self.resolve(s))
                    .collect::<Result<_, _>>()?;
                let phase_skipped = |p: &str| skip.contains(&(p, None));
                let sub_skipped = |p: &str, s: &str| skip.contains(&(p, Some(s)));
                let mut announced: Vec<&str> = Vec::new();
                for (i, row) in self.rows.iter().enumerate() {
                    if phase_skipped(row.name) {
                        if !announced.contains(&row.name) {
                            announced.push(row.name);
                            steps.push(Step::Skip(row.name.to_string()));
                        }
                        continue;
                    }
                    let mut subs = Vec::new();
                    for s in row.subs {
                        if sub_skipped(row.name, s.name) {
                            steps.push(Step::Skip(format!("{}/{}", row.name, s.name)));
                        } else {
                            subs.push(s.name);
                        }
                    }
                    if !row.subs.is_empty() && subs.is_empty() {
                        continue;
                    }
                    let whole_phase = !skip.iter().any(|(p, _)| *p == row.name);
                    steps.push(Step::Run {
                        row: i,
                        selection: Selection {
                            phase: row.name,
                            subs,
                            whole_phase,
                            explicit: false,
                        },
                    });
                }
            }
            Target::Phase(path) => {
                let (phase, sub) = self.resolve(path)?;
                let all_subs = self.subs_of(phase);
                for (i, row) in self.rows.iter().enumerate() {
                    if row.name != phase {
                        continue;
                    }
                    let subs: Vec<&'static str> = row
                        .subs
                        .iter()
                        .map(|s| s.name)
                        .filter(|s| sub.is_none_or(|want| want == *s))
                        .collect();
                    if !row.subs.is_empty() && subs.is_empty() {
                        continue;
                    }
                    steps.push(Step::Run {
                        row: i,
                        selection: Selection {
                            phase,
                            subs,
                            whole_phase: sub.is_none() || all_subs.len() == 1,
                            explicit: true,
                        },
                    });
                }
            }
        }
        Ok(steps)
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run row `row` with this selection.
    Run {
        /// Index into [`Table::rows`].
        row: usize,
        /// What of it runs.
        selection: Selection,
    },
    /// A phase or `phase/sub` skipped by request.
    Skip(String),
}

/// Counts [`Event::Changed`] on the way through.
struct Counting<'a> {
    inner: &'a mut dyn Reporter,
    changed: usize,
}

impl Reporter for Counting<'_> {
    fn report(&mut self, event: Event) {
        if matches!(event, Event::Changed(_)) {
            self.changed += 1;
        }
        self.inner.report(event);
    }
}

/// Runs `target` of `table` over `ctx`, reporting to `reporter`. Stops at the first phase that
/// fails (after an [`Event::Failed`]).
pub fn run<C, E: fmt::Display>(
    table: &Table<C, E>,
    ctx: &mut C,
    target: &Target,
    reporter: &mut dyn Reporter,
) -> Result<Summary, RunError<E>> {
    let steps = table.plan(target).map_err(RunError::Select)?;
    let last_write = steps
        .iter()
        .rposition(|s| matches!(s, Step::Run { row, .. } if table.rows[*row].writes));
    let mut out = Counting {
        inner: reporter,
        changed: 0,
    };
    let mut prepared = false;
    let mut summary = Summary::default();
    for (n, step) in steps.iter().enumerate() {
        let (row, selection) = match step {
            Step::Skip(phase) => {
                out.report(Event::Skipped {
                    phase: phase.clone(),
                    reason: SkipReason::Requested,
                });
                continue;
            }
            Step::Run { row, selection } => (&table.rows[*row], selection),
        };
        let fail = |out: &mut Counting, error: E| {
            out.report(Event::Failed {
                phase: row.name,
                error: error.to_string(),
            });
            RunError::Phase {
                phase: row.name,
                error,
            }
        };
        if row.writes && !prepared {
            prepared = true;
            if let Some(prepare) = table.before_writes {
                prepare(ctx, target, &mut out).map_err(|e| fail(&mut out, e))?;
            }
        }
        out.report(Event::Started {
            phase: row.name,
            subs: selection.subs.clone(),
        });
        (row.run)(ctx, selection, &mut out).map_err(|e| fail(&mut out, e))?;
        out.report(Event::Done { phase: row.name });
        if !summary.ran(row.name) {
            summary.ran.push(row.name);
        }
        if Some(n) == last_write {
            let changed = out.changed;
            out.report(Event::WritesDone { changed });
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake workflow: each row appends what it ran to the context.
    #[derive(Default)]
    struct Ctx {
        ran: Vec<String>,
        fail: Option<&'static str>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0} broke")]
    struct Broke(String);

    fn record(ctx: &mut Ctx, sel: &Selection, r: &mut dyn Reporter) -> Result<(), Broke> {
        if ctx.fail == Some(sel.phase) {
            return Err(Broke(sel.phase.into()));
        }
        let what = if sel.subs.is_empty() {
            sel.phase.to_string()
        } else {
            format!("{}/{}", sel.phase, sel.subs.join("+"))
        };
        r.report(Event::Item(format!("ran {what}")));
        if !matches!(sel.phase, "check" | "start" | "wait") {
            r.report(Event::Changed(PathBuf::from(format!("/{what}"))));
        }
        ctx.ran.push(format!("{what} whole={}", sel.whole_phase));
        Ok(())
    }

    fn prepare(ctx: &mut Ctx, _: &Target, _: &mut dyn Reporter) -> Result<(), Broke> {
        ctx.ran.push("prepare".into());
        Ok(())
    }

    const KEYS_EARLY: &[Sub] = &[Sub::new("early", "the key needed first")];
    const KEYS_LATE: &[Sub] = &[
        Sub::new("one", "key one").aka(&["key/one"]),
        Sub::new("two", "key two"),
    ];
    const FILES: &[Sub] = &[Sub::new("local", "the local file")];

    /// check → keys/early → files/local → start → keys/one,two → wait: `keys` is split so
    /// `start` runs as soon as what it needs exists.
    fn table() -> Table<Ctx, Broke> {
        Table {
            command: "init",
            rows: vec![
                Phase::new("check", "checks", record),
                Phase::new("keys", "keys", record).subs(KEYS_EARLY).writes(),
                Phase::new("files", "files", record).subs(FILES).writes(),
                Phase::new("start", "start", record),
                Phase::new("keys", "keys", record).subs(KEYS_LATE).writes(),
                Phase::new("wait", "wait", record),
            ],
            before_writes: Some(prepare),
        }
    }

    fn run_collect(
        table: &Table<Ctx, Broke>,
        ctx: &mut Ctx,
        target: Target,
    ) -> (Result<Summary, RunError<Broke>>, Vec<Event>) {
        let mut events = Vec::new();
        let r = run(table, ctx, &target, &mut |e| events.push(e));
        (r, events)
    }

    fn all() -> Target {
        Target::All { skip: vec![] }
    }

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Started { phase, subs } if subs.is_empty() => Some(format!("+{phase}")),
                Event::Started { phase, subs } => Some(format!("+{phase}/{}", subs.join("+"))),
                Event::Skipped { phase, .. } => Some(format!("-{phase}")),
                Event::Done { phase } => Some(format!("={phase}")),
                Event::Failed { phase, .. } => Some(format!("!{phase}")),
                Event::WritesDone { changed } => Some(format!("writes:{changed}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn whole_run_follows_the_table_order_with_split_phases() {
        let mut ctx = Ctx::default();
        let (r, events) = run_collect(&table(), &mut ctx, all());
        let summary = r.unwrap();
        assert_eq!(
            names(&events),
            [
                "+check",
                "=check",
                "+keys/early",
                "=keys",
                "+files/local",
                "=files",
                "+start",
                "=start",
                "+keys/one+two",
                "=keys",
                "writes:3",
                "+wait",
                "=wait"
            ]
        );
        assert_eq!(summary.ran, ["check", "keys", "files", "start", "wait"]);
        // The hook runs once, right before the first row that writes.
        assert_eq!(
            ctx.ran[..3],
            ["check whole=true", "prepare", "keys/early whole=true"]
        );
    }

    #[test]
    fn skip_phases_skips_whole_phases_and_sub_phases() {
        let mut ctx = Ctx::default();
        let skip = vec!["start".to_string(), "keys/two".to_string()];
        let (r, events) = run_collect(&table(), &mut ctx, Target::All { skip });
        r.unwrap();
        assert_eq!(
            names(&events),
            [
                "+check",
                "=check",
                "+keys/early",
                "=keys",
                "+files/local",
                "=files",
                "-start",
                "-keys/two",
                "+keys/one",
                "=keys",
                "writes:3",
                "+wait",
                "=wait"
            ]
        );
        // A row of a phase with a skipped sub-phase knows it does not run the whole phase.
        assert!(
            ctx.ran.contains(&"keys/one whole=false".to_string()),
            "{:?}",
            ctx.ran
        );
        assert!(
            ctx.ran.contains(&"keys/early whole=false".to_string()),
            "{:?}",
            ctx.ran
        );
    }

    #[test]
    fn unknown_skip_names_are_refused_listing_what_is_allowed_and_nothing_runs() {
        let mut ctx = Ctx::default();
        for bad in ["stat", "keys/three"] {
            let (r, events) = run_collect(
                &table(),
                &mut ctx,
                Target::All {
                    skip: vec![bad.to_string()],
                },
            );
            let e = r.unwrap_err().to_string();
            assert!(e.contains(bad.rsplit('/').next().unwrap()), "{e}");
            assert!(events.is_empty() && ctx.ran.is_empty());
        }
        let (r, _) = run_collect(
            &table(),
            &mut ctx,
            Target::All {
                skip: vec!["stat".into()],
            },
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "unknown phase \"stat\": allowed are check, keys, keys/early, keys/one, keys/two, \
             files, files/local, start, wait"
        );
    }

    #[test]
    fn one_phase_runs_all_its_rows_and_one_sub_phase_only_its_row() {
        let mut ctx = Ctx::default();
        let (r, events) = run_collect(&table(), &mut ctx, Target::Phase("keys".into()));
        assert_eq!(r.unwrap().ran, ["keys"]);
        assert_eq!(
            names(&events),
            ["+keys/early", "=keys", "+keys/one+two", "=keys", "writes:2"]
        );
        assert_eq!(
            ctx.ran,
            [
                "prepare",
                "keys/early whole=true",
                "keys/one+two whole=true"
            ]
        );

        let mut ctx = Ctx::default();
        let (r, events) = run_collect(&table(), &mut ctx, Target::Phase("keys/key/one".into()));
        r.unwrap();
        assert_eq!(names(&events), ["+keys/one", "=keys", "writes:1"]);
        assert_eq!(ctx.ran, ["prepare", "keys/one whole=false"]);

        let (r, _) = run_collect(&table(), &mut ctx, Target::Phase("keys/three".into()));
        assert_eq!(
            r.unwrap_err().to_string(),
            "init phase keys: invalid value \"three\": allowed are all, early, one, two"
        );
    }

    #[test]
    fn a_failing_phase_stops_the_run_after_a_failed_event() {
        let mut ctx = Ctx {
            fail: Some("start"),
            ..Default::default()
        };
        let (r, events) = run_collect(&table(), &mut ctx, all());
        match r.unwrap_err() {
            RunError::Phase { phase, error } => {
                assert_eq!(phase, "start");
                assert_eq!(error.to_string(), "start broke");
            }
            e => panic!("{e}"),
        }
        assert_eq!(
            names(&events)[names(&events).len() - 2..],
            ["+start", "!start"]
        );
        assert!(!ctx.ran.iter().any(|r| r.starts_with("wait")));
    }

    fn after_wait(ctx: &mut Ctx, sel: &Selection, r: &mut dyn Reporter) -> Result<(), Broke> {
        record(ctx, sel, r)
    }

    /// Adding a phase is one row plus its function (here `after_wait`).
    #[test]
    fn adding_a_phase_is_one_row() {
        let mut t = table();
        t.rows.push(Phase::new(
            "after-wait",
            "runs once the wait is over",
            after_wait,
        ));
        let mut ctx = Ctx::default();
        let (r, events) = run_collect(&t, &mut ctx, all());
        r.unwrap();
        assert_eq!(
            names(&events)[names(&events).len() - 2..],
            ["+after-wait", "=after-wait"]
        );
        assert!(t.paths().contains(&"after-wait".to_string()));
        let mut ctx = Ctx::default();
        let skip = vec!["after-wait".to_string()];
        let (_, events) = run_collect(&t, &mut ctx, Target::All { skip });
        assert_eq!(names(&events).last().unwrap(), "-after-wait");
    }
}
