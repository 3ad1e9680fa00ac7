//! Live progress for waits: one indicatif line per component on a terminal; plain
//! "state changed" lines otherwise (CI logs, pipes), so progress is never silent. And the
//! download progress `plinth init` and `plinth binaries pull` show ([`DownloadBars`]).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plinth::binaries::Observer;
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

/// `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A download in progress: its bar (on a terminal), its start and the bytes so far.
type Download = (Option<ProgressBar>, Instant, u64);

/// Download progress: an indicatif bar per file (bytes, rate, ETA) on a terminal; one line
/// at the start and one at the end of each download otherwise.
pub struct DownloadBars {
    multi: Option<MultiProgress>,
    state: Mutex<HashMap<String, Download>>,
    prefix: String,
}

impl DownloadBars {
    /// Bars on a terminal, plain lines starting with `prefix` otherwise.
    pub fn new(prefix: &str) -> Self {
        DownloadBars {
            multi: std::io::stderr().is_terminal().then(MultiProgress::new),
            state: Mutex::new(HashMap::new()),
            prefix: prefix.into(),
        }
    }
}

fn short(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl Observer for DownloadBars {
    fn started(&self, url: &str, total: Option<u64>, offset: u64) {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            });
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:<28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(short(url).to_string());
            b.set_position(offset);
            b
        });
        if bar.is_none() {
            let size = total
                .map(human_bytes)
                .unwrap_or_else(|| "size unknown".into());
            let resume = if offset > 0 {
                format!(", resuming at {}", human_bytes(offset))
            } else {
                String::new()
            };
            eprintln!("{} downloading {url} ({size}{resume})", self.prefix);
        }
        if let Ok(mut s) = self.state.lock() {
            s.insert(url.into(), (bar, Instant::now(), 0));
        }
    }

    fn progressed(&self, url: &str, bytes: u64) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((bar, _, n)) = s.get_mut(url) {
                *n += bytes;
                if let Some(b) = bar {
                    b.inc(bytes);
                }
            }
        }
    }

    fn finished(&self, url: &str, ok: bool) {
        let Some((bar, start, n)) = self.state.lock().ok().and_then(|mut s| s.remove(url)) else {
            return;
        };
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        match bar {
            Some(b) if ok => b.finish(),
            Some(b) => b.abandon(),
            None if ok => eprintln!(
                "{} downloaded {} in {secs:.1}s ({}/s)",
                self.prefix,
                human_bytes(n),
                human_bytes((n as f64 / secs) as u64)
            ),
            None => {}
        }
    }

    fn retrying(&self, _url: &str, error: &str, delay: Duration) {
        let line = format!(
            "{} {error}; retrying in {:.1}s",
            self.prefix,
            delay.as_secs_f64()
        );
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
