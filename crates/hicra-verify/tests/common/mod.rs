//! Shared by the tests that read the real benchmarks in `shared/data/math`.

/// The benchmark folder (one subfolder per set, each with `test.jsonl`).
pub const MATH_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/math");

/// Restores backslash escapes lost as control characters (`\f`rac, `\t`riangle).
pub fn repair(s: &str) -> String {
    s.replace('\u{c}', "\\f")
        .replace('\t', "\\t")
        .replace('\u{8}', "\\b")
}
