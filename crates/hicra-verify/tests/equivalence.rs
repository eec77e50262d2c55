//! Behaviour table of the equivalence checker: every kind of answer the issue lists, with
//! matching and non-matching candidates.

use hicra_verify::{Config, Gold, compare_answer};

/// (gold, candidate answer, expected match)
const CASES: &[(&str, &str, bool)] = &[
    // numbers and normalisation
    ("25", "025", true),
    ("1450000", "1,450,000", true),
    ("1000", "1 000", true),
    ("27.0", "27", true),
    ("\\frac12", "0.5", true),
    ("\\frac{1}{2}", "\\dfrac{1}{2}", true),
    ("\\frac{1}{2}", "1/2", true),
    ("0.5", "\\tfrac{1}{2}", true),
    ("0.5", "0.6", false),
    ("137 \\frac{1}{2}", "137.5", true),
    ("1\\frac{4}{5}", "\\frac{9}{5}", true),
    ("4.5e33", "4.5\\times 10^{33}", true),
    ("-3", "\u{2212}3", true),
    ("-3", "3", false),
    ("10\\%", "10", true),
    ("0.6", "60\\%", true),
    ("30^\\circ", "30", true),
    ("\\$18.90", "18.9", true),
    ("5.4 \\text{ cents}", "5.4", true),
    ("7", "seven", true),
    ("18", "\\text{18 dollars}", true),
    ("\\frac{1}{12}", "0.0833333333333333", true),
    ("\\frac{1}{3}", "0.3", false),
    ("\\frac{1}{3}", "0.333", true),
    ("1.6", "1.5708", true),
    ("1.6", "1.7", false),
    // expressions
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", false),
    ("\\frac{1}{2004!}", "\\frac{2005 \\cdot 2006}{2006!}", true),
    ("4", "4\\sqrt{2}", false),
    ("1-\\frac{1}{e}", "1+\\frac{1}{e}", false),
    ("1-\\frac{1}{e}", "\\frac{e-1}{e}", true),
    ("2\\sqrt{2}", "\\sqrt{8}", true),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", true),
    ("\\pi/2", "\\frac{\\pi}{2}", true),
    ("2\\pi", "6.28", true),
    ("2\\pi", "6.3", false),
    ("\\log_2 8", "3", true),
    ("\\ln(e^2)", "2", true),
    ("\\sin^2 x + \\cos^2 x", "1", true),
    ("\\binom{5}{2}", "10", true),
    ("\\binom{n}{2}", "\\frac{n(n-1)}{2}", true),
    ("(x-2)(x+2)", "x^2-4", true),
    ("x^2+1", "x^2-1", false),
    ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", true),
    ("2^{1009}", "2^{1008}\\cdot 2", true),
    ("10^{10^{10}}", "2 \\cdot 10^{10^{10}}", false),
    ("10^{10^{10^{10}}}", "10^{10}", false),
    ("1000000000!", "1000000001!", false),
    // equations and names
    ("x=3", "3", true),
    ("3", "x=3", true),
    ("y=2x+1", "2x+1=y", true),
    ("y=2x+1", "y=2x-1", false),
    ("f(x)=2x", "2x", true),
    ("a_n = 2n+1", "a_{n}=1+2n", true),
    // tuples, sets, intervals
    ("(1,2)", "(2,1)", false),
    ("(1,2)", "\\left(1, 2\\right)", true),
    ("1, 2", "2, 1", true),
    ("\\{1,2\\}", "\\{2,1\\}", true),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", true),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}", false),
    ("(-\\infty, 0]", "x \\le 0", true),
    ("(-\\infty, 0]", "(-\\infty, 0)", false),
    ("[2, 5)", "2 \\le x < 5", true),
    ("(5,\\infty)", "x > 5", true),
    (
        "(-\\infty, 2) \\cup (3, \\infty)",
        "(3,\\infty)\\cup(-\\infty,2)",
        true,
    ),
    (
        "(-\\infty, 2) \\cup (3, \\infty)",
        "(-\\infty,2]\\cup(3,\\infty)",
        false,
    ),
    // matrices and vectors
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        true,
    ),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}",
        false,
    ),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}",
        "(-\\frac{1}{3}, \\frac{2}{3})",
        true,
    ),
    // text, bases, choices
    ("\\text{Evelyn}", "Evelyn", true),
    ("\\text{Evelyn}", "\\text{Navin}", false),
    ("\\text{east}", "East", true),
    ("52_8", "52_8", true),
    ("52_8", "42", true),
    ("204_5", "204", true),
    ("204_5", "205", false),
    ("\\text{(B)}", "B", true),
    ("\\text{(B)}", "\\textbf{(B)}", true),
    ("(C)", "(B)", false),
    // mixed shapes from the benchmarks
    ("x \\in [-2,7]", "[-2, 7]", true),
    ("k \\geqslant 2", "[2, \\infty)", true),
    ("k \\geqslant 2", "(2, \\infty)", false),
    ("2516_8", "2516_{8}", true),
    ("-2 + 7i", "7i - 2", true),
    ("-2 + 7i", "-2 - 7i", false),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5", true),
    ("\\$1,450,000", "1450000", true),
    ("f(n) = n^2", "n^2", true),
    ("y = -2x", "-2x", true),
    ("x + y = 3", "3", false),
    ("(2,1),(3,1)", "(3,1),(2,1)", true),
    ("(2,1),(3,1)", "(1,2),(3,1)", false),
    (
        "\\frac{100!}{2^{50}}",
        "\\frac{100!}{2^{49} \\cdot 2}",
        true,
    ),
    ("\\frac{100!}{2^{50}}", "\\frac{99!}{2^{50}}", false),
];

#[test]
fn behaviour_table() {
    let mut failures = Vec::new();
    for (gold, answer, expected) in CASES {
        let (got, reason) = compare_answer(&Gold::from(*gold), answer, &Config::default());
        if got != *expected {
            failures.push(format!(
                "gold {gold:?} vs {answer:?}: expected {expected}, got {got} ({reason})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
