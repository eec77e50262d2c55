//! The planning phrases the lab plants in its traces, by kind. Every one is an entry of the
//! paper's Strategic Gram list (`shared/reference/strategic_grams_paper.txt`), so the default
//! gram set marks exactly these as planning tokens; the execution text around them
//! (digits, `write`, `carry`, `answer:`) contains no gram.

/// Announce the column method (decomposition).
pub const COLUMN: &[&str] = &["let's break this down", "step by step", "break it down"];

/// Announce the no-carry shortcut (deduction); followed by [`SHORTCUT_CLAIM`].
pub const SHORTCUT: &[&str] = &["use the fact that", "the key insight is", "note that"];

/// The execution text completing a shortcut announcement.
pub const SHORTCUT_CLAIM: &str = "no column carries";

/// Notice that the shortcut broke (a column sum reached 10): backtracking.
pub const DETECT: &[&str] = &[
    "wait, that's not right",
    "that can't be right",
    "there is a mistake",
];

/// Switch to the other strategy after noticing: branching.
pub const SWITCH: &[&str] = &[
    "let's try a different angle",
    "alternatively",
    "let's backtrack",
];

/// Every planted phrase.
pub fn planted_phrases() -> Vec<&'static str> {
    [COLUMN, SHORTCUT, DETECT, SWITCH].concat()
}
