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
        .map(|piece| trim_piece(piece).to_string())
        .collect()
}

/// The first `n` words of a text (as [`words`] gives them), or `None` when it has fewer;
/// reads no further than it needs (lower-casing never turns a character into whitespace or
/// back, so splitting before normalising gives the same pieces).
pub fn first_words(text: &str, n: usize) -> Option<Vec<String>> {
    let out: Vec<String> = text
        .split_whitespace()
        .take(n)
        .map(|piece| trim_piece(&normalize_str(piece)).to_string())
        .collect();
    (out.len() == n).then_some(out)
}

/// Byte spans of the whitespace-separated pieces of a text (the units [`words`] returns).
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

fn trim_piece(piece: &str) -> &str {
    let trimmed = piece.trim_matches(|c: char| !(c.is_alphanumeric() || ",?!'".contains(c)));
    if trimmed.is_empty() { piece } else { trimmed }
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
    fn first_words_and_spans_agree_with_words() {
        let text = "  Wait, Let\u{2019}s  check (3 + 4).\nDone?";
        let all = words(text);
        assert_eq!(first_words(text, 3).unwrap(), all[..3]);
        assert_eq!(first_words(text, all.len()).unwrap(), all);
        assert_eq!(first_words(text, all.len() + 1), None);
        let spans = word_spans(text);
        assert_eq!(spans.len(), all.len());
        assert_eq!(&text[spans[0].0..spans[0].1], "Wait,");
        assert_eq!(&text[spans[6].0..spans[6].1], "Done?");
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
