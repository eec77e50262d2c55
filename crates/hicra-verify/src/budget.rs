//! Work budgets that bound every verifier call: an operation counter and a wall-clock deadline.
//!
//! Parsing and evaluation "tick" the budget; once it is spent every further step fails, so a
//! hostile input (huge exponents, deep nesting, megabyte answers) ends quickly with "not equal".

use std::cell::Cell;
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

    /// The default per-call budget: 300,000 operations (a few ms on one core), with a 40 ms
    /// wall-clock safety net.
    pub fn standard() -> Budget {
        Budget::new(300_000, Duration::from_millis(40))
    }

    /// Spends `n` operations; fails once the count or the deadline is exceeded.
    pub fn tick(&self, n: u64) -> Result<(), Exhausted> {
        let before = self.ops.get();
        let after = before.saturating_add(n.max(1));
        self.ops.set(after);
        if after > self.limit {
            return Err(Exhausted);
        }
        // Check the clock every ~4096 operations.
        if before >> 12 != after >> 12 && Instant::now() > self.deadline {
            self.ops.set(self.limit + 1);
            return Err(Exhausted);
        }
        Ok(())
    }

    /// Whether the budget is already spent.
    pub fn is_spent(&self) -> bool {
        self.ops.get() > self.limit
    }
}
