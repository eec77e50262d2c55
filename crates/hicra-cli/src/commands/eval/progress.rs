//! Progress of an evaluation: a bar on a terminal; otherwise a line every 30 s.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Progress of an evaluation: a bar on a terminal; otherwise a line every 30 s with the items
/// done, the rate and the time left.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    name: String,
    total: usize,
    done: usize,
    resumed_at: usize,
    start: Instant,
    last_line: Instant,
}

const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(30);

impl Progress {
    pub fn new(name: &str, total: usize, done: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} problems, {elapsed} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(format!("eval {name}"));
            bar.set_position(done as u64);
            bar
        });
        Progress {
            bar,
            name: name.to_string(),
            total,
            done,
            resumed_at: done,
            start: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub fn item_done(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
        }
        self.tick();
    }

    pub fn tick(&mut self) {
        if self.bar.is_none() && self.last_line.elapsed() >= PROGRESS_LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = (self.done - self.resumed_at) as f64 / secs;
        let left = self.total - self.done;
        let eta = if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "unknown".to_string()
        };
        format!(
            "eval {}: {}/{} problems, {:.3} problems/s, ETA {eta}",
            self.name, self.done, self.total, rate
        )
    }

    pub fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}", self.line()),
        }
    }
}
