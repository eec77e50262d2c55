//! `\boxed{…}` / `\fbox{…}` answers: the last one, and the set formed by several boxed
//! answers in the final sentence (`\boxed{3}` and `\boxed{-5}`).

use crate::normalize::match_brace;

/// Most `\boxed` occurrences examined from the end.
const MAX_BOXED_TRIES: usize = 64;
/// Most boxed answers joined into one set.
const MAX_BOXED_SET: usize = 16;

/// One boxed answer: byte span of the whole `\boxed{…}` and its trimmed content.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxSpan<'a> {
    /// Index of the backslash.
    pub start: usize,
    /// Index just past the closing brace (or the token).
    pub end: usize,
    /// The argument, trimmed.
    pub content: &'a str,
}

/// What follows a `\boxed` command.
enum Boxed<'a> {
    /// The argument and its length in bytes from the command's end.
    Found(&'a str, usize),
    /// A `{` that never closes.
    Unclosed,
    /// No argument.
    Missing,
}

/// The argument after `\boxed`: `{…}` (balanced) or ` token`.
fn boxed_content(rest: &str) -> Boxed<'_> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let skipped = rest.len() - trimmed.len();
    let Some(first) = trimmed.as_bytes().first() else {
        return Boxed::Missing;
    };
    match first {
        b'{' => match match_brace(trimmed, 0) {
            Some(end) => Boxed::Found(&trimmed[1..end - 1], skipped + end),
            None => Boxed::Unclosed,
        },
        _ if skipped > 0 => {
            let end = trimmed
                .find(|c: char| c.is_whitespace() || c == '$' || c == '\\')
                .unwrap_or(trimmed.len());
            let token = trimmed[..end].trim_end_matches(['.', ',']);
            if token.is_empty() {
                Boxed::Missing
            } else {
                Boxed::Found(token, skipped + end)
            }
        }
        _ => Boxed::Missing,
    }
}

/// The byte index and length of the last `\boxed` or `\fbox` in `hay`: one backward scan
/// over the backslashes (responses are long, and their box is near the end).
fn last_box_command(hay: &str) -> Option<(usize, usize)> {
    let bytes = hay.as_bytes();
    let mut end = bytes.len();
    while let Some(at) = memchr::memrchr(b'\\', &bytes[..end]) {
        let name = &bytes[at + 1..];
        if name.starts_with(b"boxed") {
            return Some((at, "\\boxed".len()));
        }
        if name.starts_with(b"fbox") {
            return Some((at, "\\fbox".len()));
        }
        end = at;
    }
    None
}

/// The last non-empty boxed answer in `text[..end]`.
fn last_box_before(text: &str, mut end: usize) -> Option<BoxSpan<'_>> {
    for _ in 0..MAX_BOXED_TRIES {
        let (at, name_len) = last_box_command(&text[..end])?;
        match boxed_content(&text[at + name_len..]) {
            Boxed::Found(content, len) => {
                let content = content.trim();
                if !content.is_empty() {
                    return Some(BoxSpan {
                        start: at,
                        end: at + name_len + len,
                        content,
                    });
                }
            }
            // An unclosed brace here also leaves every earlier box unclosed.
            Boxed::Unclosed => return None,
            Boxed::Missing => {}
        }
        end = at;
    }
    None
}

/// Content of the last `\boxed{…}` / `\fbox{…}` / `\boxed 5` with balanced braces.
pub fn last_boxed(text: &str) -> Option<String> {
    last_box_before(text, text.len()).map(|b| b.content.to_string())
}

/// Whether the text between two boxed answers only joins them (`,`, `and`, `or`, `\quad`,
/// math delimiters), so both belong to one final statement.
pub(crate) fn only_joins(gap: &str) -> bool {
    if gap.len() > 80 {
        return false;
    }
    let mut rest = gap.to_string();
    for joiner in [
        "\\text{and}",
        "\\text{ and }",
        "\\text{or}",
        "\\text{ or }",
        "\\qquad",
        "\\quad",
        "\\,",
        "\\;",
        "\\(",
        "\\)",
        "and",
        "or",
        "$",
        ",",
        ";",
        "~",
    ] {
        rest = rest.replace(joiner, " ");
    }
    rest.trim().is_empty()
}

/// Most words between two boxes of one list (`\boxed{2} cats and \boxed{4}`).
const MAX_GAP_WORDS: usize = 4;

/// Whether the text between two boxes lists them in one sentence: only joiners, or a few
/// words with `and`, `or`, `,` or `;` and no sentence end (`\boxed{2} cats and \boxed{4}
/// dogs`).
fn lists_both(gap: &str) -> bool {
    if only_joins(gap) {
        return true;
    }
    let words: Vec<&str> = gap
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '$'))
        .filter(|w| !w.is_empty())
        .collect();
    let sentence_end = gap.contains(['\n', '.', '!', '?', ':']);
    let joined = gap.contains([',', ';']) || words.iter().any(|w| matches!(*w, "and" | "or"));
    !sentence_end
        && joined
        && words.len() <= MAX_GAP_WORDS
        && words.iter().all(|w| w.chars().all(char::is_alphabetic))
}

/// The boxed answer of a text: the last box, or, when several boxes end the text listed in
/// one sentence (joined by `,` / `and` / `or` / `\quad`, or a few words with those), all of
/// them as one comma list.
pub fn boxed_answer(text: &str) -> Option<String> {
    let last = last_box_before(text, text.len())?;
    let mut parts = vec![last.content];
    let mut first = last;
    while parts.len() < MAX_BOXED_SET {
        let Some(prev) = last_box_before(text, first.start) else {
            break;
        };
        if prev.end > first.start || !lists_both(&text[prev.end..first.start]) {
            break;
        }
        parts.push(prev.content);
        first = prev;
    }
    parts.reverse();
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_in_the_final_sentence_form_a_set() {
        assert_eq!(last_boxed("\\boxed 5."), Some("5".into()));
        assert_eq!(last_boxed("\\fbox{a{b}c}"), Some("a{b}c".into()));
        assert_eq!(last_boxed("\\boxed{unclosed"), None);
        assert_eq!(
            boxed_answer("so $\\boxed{3}$ and $\\boxed{-5}$."),
            Some("3, -5".into())
        );
        assert_eq!(
            boxed_answer("\\boxed{4},\\boxed{5},\\boxed{6}"),
            Some("4, 5, 6".into())
        );
        // A box in an earlier sentence is not part of the final answer.
        assert_eq!(
            boxed_answer("First \\boxed{1}. Then we find \\boxed{2}."),
            Some("2".into())
        );
        assert_eq!(boxed_answer("no box"), None);
    }
}
