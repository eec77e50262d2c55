//! Word splitting and word n-grams, shared by the conditional-entropy metric and mining.
//!
//! A word is a whitespace-separated piece of the normalised text (lower case, ’ ‘ → `'`)
//! with surrounding punctuation trimmed, except `,` `?` `!` and `'`, which the paper's grams
//! use (`hmm,`, `wait, but`, `what am i missing?`). A piece that is all punctuation or
//! symbols (`=`, `+`) is kept as it is.

use crate::normalize::normalize_str;

/// The words of a text, normalised.
pub fn words(text: &str) -> Vec<String> {
    normalize_str(text)
        .split_whitespace()
        .map(|piece| {
            let trimmed =
                piece.trim_matches(|c: char| !(c.is_alphanumeric() || ",?!'".contains(c)));
            if trimmed.is_empty() { piece } else { trimmed }.to_string()
        })
        .collect()
}

/// Whether a word holds at least one letter.
pub fn has_letter(word: &str) -> bool {
    word.chars().any(char::is_alphabetic)
}

/// All word n-grams of a word list for n in `min_n..=max_n`, joined with single spaces,
/// in order of position then length.
pub fn word_ngrams(words: &[String], min_n: usize, max_n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for start in 0..words.len() {
        for n in min_n.max(1)..=max_n {
            if start + n > words.len() {
                break;
            }
            out.push(words[start..start + n].join(" "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_punctuation_but_keeps_comma_question_apostrophe() {
        assert_eq!(
            words("Wait, Let\u{2019}s check (3 + 4). Done?"),
            ["wait,", "let's", "check", "3", "+", "4", "done?"]
        );
    }

    #[test]
    fn ngrams_cover_every_position_and_length() {
        let w = words("a b c d");
        assert_eq!(
            word_ngrams(&w, 2, 3),
            ["a b", "a b c", "b c", "b c d", "c d"]
        );
    }
}
