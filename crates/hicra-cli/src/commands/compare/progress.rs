//! Progress of a comparison: steps done over all runs, and the time left at the rate of
//! this invocation (steps already present when it started do not count towards the rate).

use std::time::Duration;

/// Steps of a comparison, counted over all its runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps of every run together.
    pub total: u64,
    /// Steps done (finished runs count fully).
    pub done: u64,
    /// Steps that were already done when this invocation started.
    pub done_at_start: u64,
}

impl Progress {
    /// The time left at the rate since the start, `None` before the first new step.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let new = self.done.saturating_sub(self.done_at_start);
        if new == 0 {
            return None;
        }
        let left = self.total.saturating_sub(self.done);
        Some(elapsed.mul_f64(left as f64 / new as f64))
    }
}

/// `1h02m`, `3m07s` or `42s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

/// The last step logged in a `metrics.jsonl` text (0 when none), at most `cap`.
pub fn last_step(metrics: &str, cap: u64) -> u64 {
    metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("step")?.as_u64())
        .max()
        .unwrap_or(0)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_from_the_rate_of_this_invocation() {
        let p = Progress {
            total: 100,
            done: 30,
            done_at_start: 10,
        };
        // 20 new steps in 10 s: 70 left take 35 s.
        assert_eq!(
            p.eta(Duration::from_secs(10)),
            Some(Duration::from_secs(35))
        );
        let fresh = Progress { done: 10, ..p };
        assert_eq!(fresh.eta(Duration::from_secs(10)), None);
        let over = Progress { done: 100, ..p };
        assert_eq!(over.eta(Duration::from_secs(10)), Some(Duration::ZERO));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(42)), "42s");
        assert_eq!(format_duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn last_step_of_a_metrics_file() {
        let text = "{\"step\":0,\"val_accuracy\":0.1}\n{\"step\":1}\n{\"step\":2}\ntorn li";
        assert_eq!(last_step(text, 10), 2);
        assert_eq!(last_step(text, 1), 1);
        assert_eq!(last_step("", 10), 0);
    }
}
