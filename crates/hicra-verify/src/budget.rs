//! Work budgets that bound every verifier call: a deterministic operation counter, plus a
//! wall-clock net that only catches bugs.
//!
//! Parsing and evaluation "tick" the budget; once it is spent every further step fails, so a
//! hostile input (huge exponents, deep nesting, megabyte answers) ends quickly with "not equal".
//! The operation count alone decides verdicts, so a verdict never depends on machine load.
//! The wall clock ([`SAFETY_NET`]) is far above what the operation budget allows; if it is
//! ever hit, that is counted ([`wall_clock_cutoffs`]) and logged to stderr.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Maximum nesting of answer structures, divisions in one term and evaluator recursion (x4).
pub const MAX_DEPTH: usize = 60;
/// Maximum recursion depth of the expression parser (about five frames per bracket level).
pub const MAX_PARSE_DEPTH: usize = 400;
/// Longest answer (in bytes) that is parsed as mathematics; longer ones are compared as text.
pub const MAX_ANSWER_BYTES: usize = 2_000;
/// Largest bit length of any numerator or denominator in exact arithmetic.
pub const MAX_BITS: u64 = 16_384;
/// Largest `n` whose factorial is computed exactly.
pub const MAX_EXACT_FACTORIAL: u64 = 1_000;
/// Operations one verifier call may spend (a few ms on one core).
pub const OPERATION_LIMIT: u64 = 300_000;
/// Last-resort wall-clock limit of one call; the operation budget ends every known input
/// long before it.
pub const SAFETY_NET: Duration = Duration::from_millis(400);

/// How many calls the wall-clock net has cut off in this process.
static WALL_CLOCK_CUTOFFS: AtomicU64 = AtomicU64::new(0);

/// How many verifier calls in this process were cut off by the wall-clock safety net rather
/// than by the operation budget. Zero in normal operation; non-zero means a verdict depended
/// on machine load (a bug worth reporting with the input).
pub fn wall_clock_cutoffs() -> u64 {
    WALL_CLOCK_CUTOFFS.load(Ordering::Relaxed)
}

/// The budget was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// Operation and time budget shared by one verifier call.
pub struct Budget {
    ops: Cell<u64>,
    limit: u64,
    deadline: Instant,
}

impl Budget {
    /// A budget of `limit` operations and `time` of wall clock from now.
    pub fn new(limit: u64, time: Duration) -> Budget {
        Budget {
            ops: Cell::new(0),
            limit,
            deadline: Instant::now() + time,
        }
    }

    /// The default per-call budget: [`OPERATION_LIMIT`] operations, with the
    /// [`SAFETY_NET`] wall clock.
    pub fn standard() -> Budget {
        Budget::new(OPERATION_LIMIT, SAFETY_NET)
    }

    /// Spends `n` operations; fails once the count (or, as a last resort, the deadline) is
    /// exceeded.
    pub fn tick(&self, n: u64) -> Result<(), Exhausted> {
        let before = self.ops.get();
        let after = before.saturating_add(n.max(1));
        self.ops.set(after);
        if after > self.limit {
            return Err(Exhausted);
        }
        // Check the clock every ~4096 operations.
        if before >> 12 != after >> 12 && Instant::now() > self.deadline {
            self.ops.set(self.limit.saturating_add(1));
            let total = WALL_CLOCK_CUTOFFS.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!(
                "hicra-verify: wall-clock safety net hit after {after} operations \
                 ({total} so far in this process); the verdict depended on machine load"
            );
            return Err(Exhausted);
        }
        Ok(())
    }

    /// Whether the budget is already spent.
    pub fn is_spent(&self) -> bool {
        self.ops.get() > self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_count_decides_and_the_net_is_counted() {
        let b = Budget::new(10, Duration::from_secs(60));
        assert!(b.tick(10).is_ok());
        assert!(b.tick(1).is_err());
        assert!(b.is_spent());
        let before = wall_clock_cutoffs();
        let late = Budget::new(u64::MAX - 1, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
        assert!(
            late.tick(5000).is_err(),
            "an expired deadline stops the call"
        );
        assert!(wall_clock_cutoffs() > before);
    }
}
