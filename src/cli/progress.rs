//! Live progress for waits: one indicatif line per component on a terminal; plain
//! "state changed" lines otherwise (CI logs, pipes), so progress is never silent.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plinth::health::{ComponentProgress, Stage};

/// Renders [`ComponentProgress`] updates.
pub struct WaitProgress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    last: BTreeMap<String, String>,
    prefix: String,
}

impl WaitProgress {
    /// A progress display; `prefix` starts plain lines (`[wait-control-plane]`).
    pub fn new(prefix: &str) -> Self {
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        WaitProgress {
            multi,
            bars: BTreeMap::new(),
            last: BTreeMap::new(),
            prefix: prefix.to_string(),
        }
    }

    /// Shows the latest states.
    pub fn update(&mut self, comps: &[ComponentProgress], elapsed: Duration) {
        for c in comps {
            let name = c.target.component.clone();
            let text = describe(&c.stage);
            let done = c.stage == Stage::Healthy;
            let at = c.healthy_after.unwrap_or(elapsed);
            if let Some(multi) = &self.multi {
                let bar = self.bars.entry(name.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {prefix:<24} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b.set_prefix(name.clone());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                if done {
                    if !bar.is_finished() {
                        bar.finish_with_message(format!("healthy after {:.1}s", at.as_secs_f64()));
                    }
                } else {
                    bar.set_message(format!("{text} ({:.0}s)", elapsed.as_secs_f64()));
                }
            } else if self.last.get(&name) != Some(&text) {
                eprintln!("{} {name}: {text} ({:.1}s)", self.prefix, at.as_secs_f64());
                self.last.insert(name, text);
            }
        }
    }

    /// Stops every spinner.
    pub fn finish(&mut self) {
        for b in self.bars.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}

fn describe(stage: &Stage) -> String {
    stage.to_string()
}
