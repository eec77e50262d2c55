//! Hostile (gold, response) pairs: deep nesting (up to 10⁵ braces), megabyte responses, a
//! 10⁶-digit number, towers of exponents, huge factorials and binomials, runaway markers.
//! They are what the operation budget exists for; the fuzz tests check each ends with a
//! verdict decided by the budget, and `hicra bench verify` times the slowest of them against
//! the 50 ms per-call bound.

/// The hostile pairs, `(gold, response)`. Case 2 holds a correct answer (`2`) at the end of
/// a 1 MB response.
pub fn hostile_pairs() -> Vec<(String, String)> {
    let nested = format!("\\boxed{{{}1{}}}", "{".repeat(10_000), "}".repeat(10_000));
    let deeper = format!("\\boxed{{{}1{}}}", "{".repeat(100_000), "}".repeat(100_000));
    let million_digits = "7".repeat(1_000_000);
    let parens = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let megabyte = format!("{} \\boxed{{2}}", "word 12 ".repeat(1 << 17));
    let tower = format!("{}10{}", "10^{".repeat(200), "}".repeat(200));
    let boxed = |inner: String| format!("\\boxed{{{inner}}}");
    vec![
        ("1".into(), nested),
        ("1".into(), boxed(parens)),
        ("2".into(), megabyte.clone()),
        ("10^{10^{10}}".into(), "\\boxed{10^{10^{10^{10}}}}".into()),
        ("1".into(), "\\boxed{(10^9)! - (10^9)!}".into()),
        ("1000000000!".into(), "\\boxed{1000000000!}".into()),
        ("1".into(), boxed(tower)),
        ("1".into(), boxed("9".repeat(100_000))),
        ("1".into(), deeper),
        (million_digits.clone(), boxed(million_digits.clone())),
        ("7".into(), format!("The answer is {million_digits}.")),
        ("2^{100000}".into(), "\\boxed{2^{99999} \\cdot 2}".into()),
        (
            "\\binom{1000000}{500000}".into(),
            "\\boxed{\\binom{1000000}{500001}}".into(),
        ),
        (megabyte.clone(), megabyte),
        ("x".into(), boxed("-".repeat(50_000) + "x")),
        ("1".into(), boxed("1/".repeat(20_000) + "1")),
        (
            "1".into(),
            boxed("\\sqrt{".repeat(5_000) + "1" + &"}".repeat(5_000)),
        ),
        ("1".into(), "\\boxed{".repeat(150_000)),
        ("1".into(), "final answer is ".repeat(60_000)),
        large_set_pair(),
    ]
}

/// A 100-item set against the same set reversed: parsed and compared in full (not skipped as
/// too long), ending matched or with the budget spent.
pub fn large_set_pair() -> (String, String) {
    let many: Vec<String> = (1..=100).map(|k| format!("x^{{{k}}}+{k}y")).collect();
    let reversed: Vec<String> = many.iter().rev().cloned().collect();
    (many.join(", "), reversed.join(", "))
}
