//! Shared by the tests that read the real benchmarks in `shared/data/math`.

/// The benchmark folder (one subfolder per set, each with `test.jsonl`).
pub const MATH_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/math");

/// The benchmark sets, in the order the tests read them.
pub const SETS: [&str; 7] = [
    "math500",
    "aime24",
    "aime25",
    "amc23",
    "minerva_math",
    "olympiadbench",
    "gsm8k",
];

/// Restores backslash escapes lost as control characters (`\f`rac, `\t`riangle).
pub fn repair(s: &str) -> String {
    s.replace('\u{c}', "\\f")
        .replace('\t', "\\t")
        .replace('\u{8}', "\\b")
}

/// Splits at top-level commas (outside brackets and braces); the items trimmed of
/// whitespace, empty ones kept.
pub fn top_level_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    items.push(current);
    items.into_iter().map(|s| s.trim().to_string()).collect()
}
