//! Math answer extraction and equivalence checking: the rule-based reward.
//!
//! ```
//! use hicra_verify::{verify, Config, Gold};
//! let v = verify(&Gold::from("\\frac{1}{2}"), "so the answer is $\\boxed{0.5}$", &Config::default());
//! assert!(v.correct);
//! ```
//!
//! # Pipeline
//! 1. [`extract_answer`] finds the final answer (last `\boxed{}`; in flexible mode also
//!    `<answer>`, `####`, "final answer is", "answer:", last number).
//! 2. Gold and answer are normalised (`normalize`), tokenised (`lexer`), parsed into a
//!    structure (`answer`: sets, tuples, intervals, matrices, equations, text, choices) whose
//!    leaves are expressions (`parse`, `expr`).
//! 3. `compare` decides equivalence: exact big rationals when there are no variables or
//!    irrational constants; otherwise extended-range floats (`xfloat`: f64 mantissa, i64
//!    exponent, so `1/2006!` is not 0) with a running error bound (`evaluate`), at five
//!    pseudo-random points for expressions with variables.
//!
//! # Decimal tolerance rule
//! Exactly equal values always match. Otherwise, a gold written as a decimal `g` with at
//! least 2 significant digits and last digit at `10^u` matches a value `v` (written with at
//! least the same precision, or exact) when `v` rounds to `g` at that digit (half away from
//! zero): `1.6` accepts `1.5708`, `0.29` accepts `0.290243`. An answer written as a decimal
//! with at least 3 significant digits matches a non-decimal gold that rounds to it at the
//! answer's last digit: `0.0833333333333333` = `1/12`, `2.6667` = `8/3`, `0.333` = `1/3`,
//! but `0.3` ≠ `1/3` and `0.08` ≠ `0.0833`. With [`Config::abs_tolerance`] set, numbers
//! match when `|a - b| <= tol` instead (OlympiadBench's per-problem precision).
//!
//! # Other documented choices
//! - Top-level comma lists (`1, 2`), `\{…\}` sets, `±` and unions are unordered; bracketed
//!   lists `(1,2)`, `[1,2)` and vectors are ordered; a column/row matrix equals a tuple.
//! - `x = 3` matches `3` when the left side only names the answer (`x`, `f(x)`, `a_n`);
//!   two equations match when `l1 - r1 = k (l2 - r2)` for a constant `k ≠ 0`.
//! - `50\%` matches both `0.5` and `50`; `52_8` matches both `42` and `52`.
//! - `e` is Euler's number; `i` is an ordinary variable (no complex arithmetic).
//! - Units in `\text{}`/`\mbox{}`/`\mathrm{}` after a value are dropped; a bare letter is a
//!   variable (`0.64N` ≠ `0.64`).
//!
//! # Safety
//! No `eval`, no processes. Every call is bounded by a 300,000-operation budget, a 40 ms
//! wall-clock safety net, a 2,000-byte cap on parsed answers, recursion caps, a
//! 16,384-bit cap on exact numbers (factorials exact up to 1000!, beyond that via
//! log-Gamma), and a 64 KiB search window for text markers; exhausted budgets and
//! unparsable answers are "not equal" with a reason. `tests/fuzz.rs` (proptest plus the
//! issue's hostile inputs) checks no panic and no call over 50 ms.
//!
//! # Agreement with public grader tables
//! `tests/grader_cases.rs` checks the hendrycks MATH, OlympiadBench and Qwen2.5-Math tables
//! (68 labelled cases; one Qwen case has no label and is skipped). The disagreements, all
//! deliberate:
//! - hendrycks `test_order` (`10, 4, -2` vs `4, 10, -2`, expected unequal) and
//!   `test_decimals` (`0.1, 4, 2` vs `4, .1, 2`): hendrycks compares strings, so any
//!   reordering fails; here a bare comma list is a set of answers ("find all solutions"), so
//!   reordering matches. The issue asks for exactly this (sets and multiple answers are
//!   unordered).
//!
//! OlympiadBench gives one case a precision list (`[1e34, 0.001]`, one per answer); the test
//! applies its largest value as [`Config::abs_tolerance`].
//!
//! # Benchmark tables
//! `tests/datasets.rs` builds tables from all 7 benchmarks in `shared/data/math` (2,866
//! golds): each gold boxed must match itself (100%), reformatted equivalents (`$…$`, `\(…\)`,
//! `1,234`, `025`, `27.0`, `x = …`, `a/b`, `\dfrac`, terminating decimals, reordered
//! multiple answers) must match (99.99%: the one failure is the Minerva gold
//! `np.arcsin(10/13)`, which is Python code, not mathematics), and perturbations (`n+1`,
//! `n-10`, changed fractions, a dropped answer, `gold + 1`, `2(gold)`, `3(gold)` for rounded
//! decimals) must not match (100%).
//!
//! # Known limitations
//! - Numbers too large for exact arithmetic (over 16,384 bits) are compared as floats with
//!   about 15 significant digits: `10^{10^{10}}` and `10^{10^{10}} + 1` compare equal.
//! - Expressions with variables are compared at 5 real points; functions like `\lfloor n/5
//!   \rfloor` are compared as functions of a real `n`, and complex answers use `i` as a
//!   plain variable (`i^2` is not `-1`).

mod answer;
mod boxed;
mod budget;
mod compare;
mod envs;
mod error;
mod evaluate;
mod expr;
mod extract;
mod gold;
mod lexer;
mod normalize;
mod number;
mod parse;
mod reward;
mod verdict;
mod xfloat;

pub use budget::wall_clock_cutoffs;
pub use error::VerifyError;
pub use extract::{ExtractMode, extract_answer, gold_answer};
pub use gold::Gold;
pub use reward::{RewardScheme, reward};
pub use verdict::{Config, Verdict, compare_answer, verify};
