//! Math answer extraction and equivalence checking: the rule-based reward.
//!
//! ```
//! use hicra_verify::{verify, Config, Gold};
//! let v = verify(&Gold::from("\\frac{1}{2}"), "so the answer is $\\boxed{0.5}$", &Config::default());
//! assert!(v.correct);
//! ```
//!
//! # Pipeline
//! 1. [`extract_answer`] finds the final answer of a response. `strict-boxed` (the paper's
//!    protocol, used by `hicra eval`) takes the last `\boxed{}` only. `flexible` (the
//!    default, used by `hicra grade`) takes, in order: boxed answers (several boxes ending
//!    the text listed in one sentence form one set); the last LaTeX math environment
//!    (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`, `\begin{align*}…`), or a text marker ("final
//!    answer is", "the answer is", "answer:", `<answer>`, `####`) when the marker comes
//!    after that environment, or a plain value stated after the environment (class 8);
//!    then a whole response of bare LaTeX (class 10); and last, a plain expression ending
//!    the text (`plain`). Inside an environment the answer is its last line, after its
//!    last `\Rightarrow`/`\equiv` (without `\pmod{n}`), and the last side of an `=` chain
//!    (`x = 5+5+1 = 3k` gives `3k`); a single `x = 3` keeps its name.
//! 2. Golds are extracted the same way ([`gold_answer`]): `####`, boxes, and worked
//!    solutions (prose around math) give their stated answer; a bare answer
//!    (`\frac{1}{2}`, `$x \geq 7$`, `$(1,1)$, $(3,2)$`) is kept whole.
//! 3. Gold and answer are normalised (`normalize`), tokenised (`lexer`), parsed into a
//!    structure (`answer`: sets, tuples, intervals, matrices, equations, text, choices) whose
//!    leaves are expressions (`parse`, `expr`).
//! 4. `compare` decides equivalence: exact big rationals when there are no variables or
//!    irrational constants; otherwise extended-range floats (`xfloat`: f64 mantissa, i64
//!    exponent, so `1/2006!` is not 0) with a running error bound (`evaluate`), at five
//!    pseudo-random points for expressions with variables.
//!
//! # What is equal, class by class
//! 1. **LaTeX outside boxes**: `$\frac{2}{7}$`, `\(x \in (-3, 8)\)`, `$$\sqrt5$$`,
//!    `\[ … \]` are read whole in flexible mode (`-\frac{7}{4}` is not `4`). Not read: an
//!    answer stated only in words after its environment ("… $x$, which is seven").
//! 2. **Golds that are not bare answers**: `$x \geq 7$` equals `x \ge 7`; a MATH
//!    `solution` equals its boxed answer; "… the total is $\frac34$." equals `0.75`.
//! 3. **Shorthands and decoration**: `\frac25` = `\frac2{5}` = `\dfrac{2}{5}` = `\tfrac25`,
//!    `\sqrt5` = `\sqrt{5}`; `\left( \right)`, `\,` `\!` `\;` `~`, `\textbf{…}` are
//!    ignored; a unit in `\text{}`/`\mbox{}`/`\mathrm{}` after a value is dropped
//!    (`5\text{ cm}` = 5), as are `^\circ` and `\%` (see percent below). A bare letter
//!    is a variable, not a unit: `0.64N` ≠ `0.64`.
//! 4. **Number formats**: `1 000` = `1,000` = `12{,}345`-style groups; `.7` = 0.7. A comma
//!    followed by exactly three digits after a 1-3 digit group not starting with 0 is a
//!    thousands separator (`1,000` is 1000, never 1.0). Any other `digits,digits` (`3,14`,
//!    `2500,75`, `0,125`) is read both as a decimal comma and as a list of two answers, and
//!    matches a gold equal to either. A trailing sentence (`… $12{,}345$. I hope it is
//!    correct.`) is not part of the answer; digits inside a word (`QX7BR`) are not a number.
//! 5. **Relations**: `x \geq 7` = `7 \leq x` = `x \ge 7` = `x>=7`; `\gt`, `\lt`, `<=`,
//!    `>=`, `!=`, `\neq` are operators (`3!=6` after a number is a factorial). One-variable
//!    inequalities equal their interval (`x > 3` = `(3, \infty)`, `-3 < x < 8` = `(-3, 8)` =
//!    `x \in (-3,8)`); strictness matters (`x \ge 3` ≠ `(3, \infty)`). `x \ne 2` is
//!    compared as text.
//! 6. **Named answers and sets**: `x = 3` = `3` when the left side only names the answer
//!    (`x`, `f(x)`, `a_n`, a product of names like `AM` or `\angle ABC`, a ratio of names
//!    `\frac{AM}{MB}`, a tuple of names `(a,b,c)`); `x + y = 3` ≠ `3`. Several answers
//!    written with `,`, `;`, "and", "or", `\quad`, `\text{or}` or several boxes are one
//!    unordered set (`\boxed{3}` and `\boxed{-5}` = `\{-5, 3\}`), and so are environments
//!    joined by "or" (`$x = 3$ or $x = -5$`); a box or environment in an earlier sentence is
//!    not part of it. Tuples may use `;` (`(1;-3;5)` = `(1,-3,5)`); `(x, y) = (2, 9) \quad
//!    \text{and} \quad (9, 2)` = `(2, 9), (9, 2)`. Sets are multisets: `3` ≠ `\{3, -5\}`.
//! 7. **Equations**: two equations are equal when `l1 - r1 = k (l2 - r2)` for a constant
//!    `k ≠ 0` (`x^2/18 + y^2/8 = 1/2` = `x^2/9 + y^2/4 = 1`, `1 = k` = `k = 1`);
//!    `f(x)=2 \text{ or } f(x)=-2` is a set of two equations. An equation whose sides are
//!    both constant, or an unnamed chain, is read as its last side (`2 + 3 = 5` = 5). A
//!    response equation with a constant right side answers a value gold with it
//!    (`$a + b = 7$` = `7`, as Math-Verify has it); a gold equation still needs the whole
//!    relation (`x + y = 3` as gold ≠ `3`).
//! 8. **A label in a final sentence**: math that only names something (`$k$`, `$PQRS$`,
//!    `$\triangle ABC$`, `$x_1$`) is not the answer when the sentence states a value after
//!    it (`Final Answer: The largest $k$ is 17.` = 17, `The area of $PQRS$ is 48.` = 48);
//!    a plain value in a later sentence than the last environment is the answer (`…
//!    $m = \frac{30}{n}$. Therefore, there are 9 ways.` = 9; a display formula followed by
//!    a capitalised word starts a new sentence).
//! 9. **The last plain number** keeps its thousands separators, a currency sign before or
//!    after it and a unit after it (`it is not 7 but 2,000.5 kg` = 2000.5, `€1,500`,
//!    `1,500m²`, `1,000.99€`), its percent (`40%.`), `{, }` between digits as a thousands
//!    comma, and reads `4 4/9` as a mixed number (`11 6/6` and `4 4/0` are no numbers);
//!    `12:00` is a time, not a ratio; a number with a one-letter variable (`2x`) is not a
//!    number with a unit.
//! 10. **Bare LaTeX**: a whole response without delimiters and without prose is its answer
//!     (`\frac{7}{3}`, `-\frac{7}{3}`, `\sqrt{2}+1`, a bare matrix), and plain text may end
//!     in `\frac{7}{3}`.
//! 11. **Approximations**: an answer going on to `\approx`, `\sim`, `\simeq` or `≈` is read
//!     both as its exact side and as written (`$x = 2/7 \approx 0.29$` = `2/7`, and = `0.29`
//!     when that is the gold); a bare name before the sign (`x \approx 11`) is not a value.
//! 12. **Relations up to equivalence** (`inequality`): a one-variable inequality whose
//!     variable side is linear (`-y > -4`, `2x - 4 > 0`, `3 < 2x - 1`, `-3 < 2x + 1 < 5`) or
//!     the absolute value of a linear expression (`|x - 1| \le 2` = `[-1, 3]`, `|x| > 2`,
//!     `2 \le |t| \le 5` = `[-5,-2] \cup [2,5]`) is the interval or union it describes.
//! 13. **Matrices** (`matrix`): `pmatrix`, `bmatrix`, `vmatrix` (read as the matrix it
//!     writes), `matrix`, `array` with its column specification and `\left[ … \right]` are
//!     the same matrix when their entries are equal; entries are full expressions; sums,
//!     differences, scalar multiples and products of literal matrices are evaluated first.
//! 14. **Sets, tuples, assignments** (`assignments`): lists of tuples are sets in any order;
//!     `a=2,b=5;a=5,b=2` (also joined by "or") lists the tuples `(2,5),(5,2)`, `x=2, y=5` is
//!     the tuple `(2,5)` (values ordered by name); `{2, 4}` without backslashes is a set. A
//!     set and a tuple meet as Math-Verify documents: a set gold takes a tuple's items in any
//!     order (`\{1,3\}` = `(3,1)`), a tuple gold takes a set's or list's items in the
//!     written order (`(1,3)` = `1, 3` = `{1,3}`, ≠ `\{3,1\}`). A list ending in an ellipsis
//!     (`1, 2, 3, \ldots`) goes on: it is not the finite list.
//! 15. **Ratios**: `a:b` is `a/b` (`3:8` = `6:16` = `\frac38`); a labelled ratio gold
//!     `A_1:A_2=3:8` names its value.
//! 16. **Several boxes against a set**: boxes listed in one sentence, by joiners or a few
//!     words with `and`/`or`/`,` (`\boxed{2} cats and \boxed{4} dogs`), form one set, in
//!     golds and responses alike (`\boxed{2}, \boxed{4}` = `\{2, 4\}` = `{2, 4}` =
//!     `\boxed{2,4}`). A response written like `144,149` reads both as 144149 and as the
//!     list 144, 149.
//! 17. **Named golds** (`names`): `|PQ| = 6`, `P:Q = 6`, `\overline{AB} = 5` name their
//!     value, like `x = 3`.
//! 18. **Not an answer**: inline math broken over lines (`Answer $ \n 9 \n $`,
//!     `\( \n 9 \n \)`) is not an environment, as in Math-Verify; when its delimiters stand
//!     apart from its content, its text is not a plain answer either (a `$` pair over lines
//!     against numbers, `$1.5 an hour\n… 120$`, is currency and its numbers stay). Display
//!     math (`\[ … \]`, `$$ … $$`) may span lines.
//! 19. **Pairs of equations**: `y_1 = …, y_2 = …` against two boxed equations compares
//!     each named equation with its partner, in any order and arrangement
//!     (`y_1 - 1 = x^2 + 2x` = `y_1 = x^2 + 2x + 1`).
//!
//! # Complex numbers
//! `i` is an ordinary variable (Math-Verify 0.9 parses it as a symbol too): answers equal as
//! polynomials or rational functions in `i` match (`2i + 1` = `1 + 2i`, `\frac{1+i}{2}` =
//! `\frac12 + \frac i2`), identities that need `i^2 = -1` do not (`i^2` ≠ `-1`).
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
//! - `50\%` matches both `0.5` and `50`; `52_8` matches both `42` and `52`.
//! - `e` is Euler's number.
//!
//! # Safety and determinism
//! No `eval`, no processes. Every call is bounded by a deterministic 300,000-operation
//! budget, which alone decides verdicts (so rewards never depend on machine load), a
//! 2,000-byte cap on parsed answers, recursion caps, a 16,384-bit cap on exact numbers
//! (factorials exact up to 1000!, beyond that via log-Gamma), and a 64 KiB search window
//! for environments and markers; exhausted budgets and unparsable answers are "not equal"
//! with a reason. A 400 ms wall clock is only a last-resort net: when it ever fires it is
//! counted ([`wall_clock_cutoffs`]) and logged to stderr. `tests/fuzz.rs` (proptest, 400
//! cases per property in CI, `HICRA_FUZZ_CASES` for long runs, plus the hostile inputs of
//! [`hostile::hostile_pairs`]: 10⁵ nested braces, a 10⁶-digit number, …) checks no panic, no wall-clock cut-off, and that every
//! well-formed answer matches itself. The 50 ms per-call bound is a timing, so it is measured
//! by `hicra bench verify` (the slowest hostile call), not asserted in a test.
//!
//! # Labelled cases
//! `tests/classes.rs` (classes 1–7) and `tests/forms.rs` (classes 8–19, 200 cases written by
//! hand) grade labelled `(gold, response, equal?)` cases end to end; every case agrees.
//!
//! # Agreement with Math-Verify
//! `tests/math_verify.rs` grades pairs built from the golds of `shared/data/math`
//! (`tests/differential`: rewritten in the formats above, wrong answers, and every class
//! above in several surface forms, right and wrong) with hicra and with Math-Verify 0.9.0
//! (one worker process per CPU); it fails above 1% disagreement outside its accepted list, which
//! names each accepted disagreement and why hicra's verdict stands, and prints every
//! disagreement. On 2026-12-07 (0399e98, idle machine; `docs/VERIFY.md`): 7,382 pairs,
//! none outside the accepted list, 375 accepted in 30 kinds (raw agreement 0.9492: bare
//! LaTeX, intervals from relations, `vmatrix`, assignment lists, broken inline math, mixed
//! numbers, `\sim`/`≈`, boxes of three-digit numbers, plain ratios, rearranged equations,
//! where Math-Verify misreads the form). The
//! 1,838 form pairs also carry the verdict they were written with; hicra gives it on all.
//!
//! # Agreement with public grader tables
//! `tests/grader_cases.rs` checks the hendrycks MATH, OlympiadBench and Qwen2.5-Math tables
//! (68 labelled cases; one Qwen case has no label and is skipped). The disagreements, all
//! deliberate:
//! - hendrycks `test_order` (`10, 4, -2` vs `4, 10, -2`, expected unequal) and
//!   `test_decimals` (`0.1, 4, 2` vs `4, .1, 2`): hendrycks compares strings, so any
//!   reordering fails; here a bare comma list is a set of answers ("find all solutions"), so
//!   reordering matches (sets and multiple answers are unordered, as documented above).
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
mod answer_form;
mod assignments;
mod boxed;
mod budget;
mod commands;
mod compare;
mod envs;
mod error;
mod evaluate;
mod expr;
mod extract;
mod gold;
mod groups;
pub mod hostile;
mod inequality;
mod lexer;
mod matrix;
mod names;
mod normalize;
mod number;
mod parse;
mod plain;
mod reward;
mod spacing;
mod verdict;
mod xfloat;

pub use budget::wall_clock_cutoffs;
pub use error::VerifyError;
pub use extract::{ExtractMode, extract_answer, gold_answer};
pub use gold::Gold;
pub use reward::{RewardScheme, reward};
pub use verdict::{Config, Verdict, compare_answer, verify};
