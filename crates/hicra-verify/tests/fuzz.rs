//! Property-based fuzzing of extraction and equivalence: no panic, never a verdict decided by
//! the wall-clock safety net (the deterministic operation budget ends every call), and every
//! well-formed answer matches itself. The per-call time bound is a timing, measured by
//! `hicra bench verify`, not asserted here.
//!
//! CI runs 400 cases per property; `HICRA_FUZZ_CASES=1000000 cargo test -p hicra-verify
//! --test fuzz` runs a long campaign.

use hicra_verify::hostile::{hostile_pairs, large_set_pair};
use hicra_verify::{
    Config, ExtractMode, Gold, compare_answer, extract_answer, gold_answer, verify,
    wall_clock_cutoffs,
};
use proptest::prelude::*;

/// LaTeX-ish fragments that exercise every parser path, including hostile ones.
const PIECES: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "}",
    "{",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[3]",
    "^",
    "_",
    "!",
    "10",
    "9",
    "0",
    "1000000000",
    "2006",
    "x",
    "y",
    "n",
    "e",
    "i",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "<",
    "\\le",
    "\\ge",
    "\\pm",
    "\\left(",
    "\\right)",
    "\\infty",
    "\\cup",
    "\\{",
    "\\}",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "%",
    "\\%",
    "\\pi",
    "\\text{",
    "\\mathrm{",
    " cm",
    ".",
    "-",
    "+",
    "*",
    "/",
    "\\binom",
    "\\lfloor",
    "\\rfloor",
    "\\log_",
    "\\ln",
    "\\sin",
    "\\cos^2",
    " ",
    "$",
    "####",
    "<answer>",
    "</answer>",
    "final answer is ",
    "Answer: ",
    "\\cdot",
    "\\times",
    "10^{",
    "|",
    "\\,",
    "\\!",
    "52_8",
    "\\in",
    "\\approx",
    "\u{2212}",
    "π",
    "√",
    "½",
    "'",
    "\\prime",
    "\\overline",
    "a_{n}",
    ";",
    ":",
    "1,000",
    "0.5",
    ".5",
    "3e5",
    "\\tfrac12",
    ":",
    "\u{2248}",
    "\\approx",
    "\\sim",
    "\u{20ac}",
    "m\u{b2}",
    "\\begin{bmatrix}",
    "\\end{bmatrix}",
    "\\begin{array}{cc}",
    "\\end{array}",
    "\\begin{aligned}",
    "\\end{aligned}",
    "\\left[",
    "\\right]",
    "\\Rightarrow",
    "\\equiv",
    "\\pmod{7}",
    "\\quad",
    "\\ldots",
    "...",
    "a=",
    "y_1",
    "\n",
    "Final Answer: The ",
    " is ",
    " cats and ",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "$$",
    "4 4/9",
];

/// Cases per property: `HICRA_FUZZ_CASES`, default 400.
fn fuzz_cases() -> u32 {
    std::env::var("HICRA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        fragments(),
        "\\PC{0,120}",
        "[0-9a-z\\\\{}^_()+*/=,. -]{0,80}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn extraction_and_equivalence_are_safe(gold in any_text(), response in any_text()) {
        for mode in [ExtractMode::StrictBoxed, ExtractMode::Flexible] {
            extract_answer(&response, mode);
            let config = Config::with_mode(mode);
            let v = verify(&Gold::from(gold.as_str()), &response, &config);
            prop_assert!(!v.reason.is_empty());
        }
        compare_answer(&Gold::from(gold.as_str()), &response, &Config::default());
        prop_assert_eq!(wall_clock_cutoffs(), 0, "the wall-clock net decided a verdict");
    }

    #[test]
    fn answers_match_themselves_boxed(answer in fragments()) {
        let response = format!("so \\boxed{{{answer}}}");
        let v = verify(&Gold::from(answer.as_str()), &response, &Config::default());
        prop_assert!(!v.reason.is_empty());
        // When the box holds exactly the answer (its braces balance, it holds no box or
        // `####` of its own) and the gold reads as that same answer, they must match.
        let stated = answer.trim();
        let plain = stated.trim_matches('$').trim();
        if v.extracted.as_deref() == Some(stated)
            && gold_answer(&answer) == stated
            && !plain.is_empty()
        {
            prop_assert!(v.correct, "{answer:?} does not match itself: {v:?}");
        }
        prop_assert_eq!(wall_clock_cutoffs(), 0, "the wall-clock net decided a verdict");
    }

    #[test]
    fn equal_answers_in_other_formats_match(n in -100_000i64..100_000, d in 1i64..50) {
        // A value stated in another format than the gold still matches: a fraction and its
        // decimal form when it terminates, a number and its thousands-separated form.
        let gold = format!("\\frac{{{n}}}{{{d}}}");
        let response = format!("so the answer is $\\dfrac{{{}}}{{{}}}$.", 2 * n, 2 * d);
        let v = verify(&Gold::from(gold.as_str()), &response, &Config::default());
        prop_assert!(v.correct, "{gold} vs {response}: {v:?}");
        let grouped = format!("{}", n.abs())
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("{,}");
        let sign = if n < 0 { "-" } else { "" };
        let v = verify(&Gold::from(n), &format!("Thus ${sign}{grouped}$."), &Config::default());
        prop_assert!(v.correct, "{n} vs {sign}{grouped}: {v:?}");
        let wrong = verify(&Gold::from(n), &format!("Thus ${}$.", n + d), &Config::default());
        prop_assert!(!wrong.correct, "{n} vs {}: {wrong:?}", n + d);
    }
}

/// Hostile inputs named in the issue.
#[test]
fn hostile_inputs_are_bounded() {
    let cases = hostile_pairs();
    for (k, (gold, response)) in cases.iter().enumerate() {
        for mode in [ExtractMode::StrictBoxed, ExtractMode::Flexible] {
            let v = verify(
                &Gold::from(gold.as_str()),
                response,
                &Config::with_mode(mode),
            );
            assert!(
                !v.reason.is_empty(),
                "hostile case {k} ({mode:?}): no reason"
            );
        }
    }
    // A correct answer in a 1 MB response is still found and graded.
    let v = verify(&Gold::from("2"), &cases[2].1, &Config::default());
    assert!(v.correct, "{v:?}");
    assert_eq!(
        wall_clock_cutoffs(),
        0,
        "the operation budget, not the clock, ends hostile inputs"
    );
}

/// The large-set case really is parsed and compared (not skipped as too long), and ends
/// either matched or with the budget spent.
#[test]
fn large_sets_are_compared_in_full() {
    let (gold, response) = large_set_pair();
    assert!(gold.len() < 2_000, "the set must stay under the parse cap");
    let (correct, reason) =
        compare_answer(&Gold::from(gold.as_str()), &response, &Config::default());
    assert!(correct || reason.contains("budget"), "{reason}");
    assert!(!reason.contains("too long"), "{reason}");
}
