//! Extraction of the final answer from a model response.
//!
//! Strict mode takes only the last `\boxed{…}` / `\fbox{…}` (or `\boxed 5`). Flexible mode
//! falls back, in order, to `<answer>…</answer>`, GSM8K `#### …`, "final answer is …",
//! "answer: …", and the last number in the text. The text markers are searched in the last
//! 64 KiB of the response (the final answer is at the end; this bounds the work).

use crate::normalize::match_brace;
use serde::{Deserialize, Serialize};

/// Longest extracted answer kept (bytes); longer ones are cut at a character boundary.
const MAX_EXTRACTED_BYTES: usize = 4_096;
/// Most `\boxed` occurrences examined from the end.
const MAX_BOXED_TRIES: usize = 64;

/// How answers are found in a response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtractMode {
    /// Only `\boxed{}` / `\fbox{}` counts (the paper's protocol).
    StrictBoxed,
    /// Boxed first, then the other markers, then the last number.
    #[default]
    Flexible,
}

impl std::str::FromStr for ExtractMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict-boxed" | "strict" => Ok(ExtractMode::StrictBoxed),
            "flexible" => Ok(ExtractMode::Flexible),
            other => Err(format!(
                "unknown extraction mode {other:?} (expected strict-boxed or flexible)"
            )),
        }
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Content of the last `\boxed{…}` / `\fbox{…}` / `\boxed 5` with balanced braces.
pub fn last_boxed(text: &str) -> Option<String> {
    let mut end = text.len();
    for _ in 0..MAX_BOXED_TRIES {
        let hay = &text[..end];
        let at = match (hay.rfind("\\boxed"), hay.rfind("\\fbox")) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        let name_len = if text[at..].starts_with("\\boxed") {
            6
        } else {
            5
        };
        match boxed_content(&text[at + name_len..]) {
            Boxed::Found(content) => {
                let content = content.trim();
                if !content.is_empty() {
                    return Some(cap(content, MAX_EXTRACTED_BYTES).to_string());
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

/// What follows a `\boxed` command.
enum Boxed<'a> {
    /// The argument.
    Found(&'a str),
    /// A `{` that never closes.
    Unclosed,
    /// No argument.
    Missing,
}

/// The argument after `\boxed`: `{…}` (balanced) or ` token`.
fn boxed_content(rest: &str) -> Boxed<'_> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let bytes = trimmed.as_bytes();
    let Some(first) = bytes.first() else {
        return Boxed::Missing;
    };
    match first {
        b'{' => match match_brace(trimmed, 0) {
            Some(end) => Boxed::Found(&trimmed[1..end - 1]),
            None => Boxed::Unclosed,
        },
        _ if rest.starts_with([' ', '\t']) => {
            let end = trimmed
                .find(|c: char| c.is_whitespace() || c == '$' || c == '\\')
                .unwrap_or(trimmed.len());
            let token = trimmed[..end].trim_end_matches(['.', ',']);
            if token.is_empty() {
                Boxed::Missing
            } else {
                Boxed::Found(token)
            }
        }
        _ => Boxed::Missing,
    }
}

/// Bytes at the end of a response searched for the text markers ("answer:", `<answer>`…).
const MARKER_WINDOW: usize = 64 * 1024;

/// Finds the last case-insensitive occurrence of an ASCII `needle` within the last
/// [`MARKER_WINDOW`] bytes; returns the byte index after it.
fn rfind_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let from = h.len().saturating_sub(MARKER_WINDOW);
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (from..=h.len() - n.len())
        .rev()
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
        .map(|i| i + n.len())
}

/// The rest of the line after `at`, cleaned of `$`, leading `:`/`is` and a trailing period.
fn rest_of_line(text: &str, at: usize) -> Option<String> {
    let rest = &text[at..];
    let line = rest.split('\n').next().unwrap_or("");
    let line = line.trim().trim_start_matches(':').trim();
    let line = line.strip_prefix("is ").unwrap_or(line).trim();
    if let Some(b) = last_boxed(line) {
        return Some(b);
    }
    let line = line.trim_end_matches(['.', ' ']).trim_matches('$').trim();
    let line = line
        .trim_start_matches("\\(")
        .trim_end_matches("\\)")
        .trim();
    let line = line
        .trim_start_matches("\\[")
        .trim_end_matches("\\]")
        .trim();
    (!line.is_empty()).then(|| cap(line, MAX_EXTRACTED_BYTES).to_string())
}

/// The last number in the text (`-1,234.5`, `3/4`), if any.
fn last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = b.len();
    while i > 0 && !b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i == 0 {
        return None;
    }
    let end = i;
    let mut start = end;
    while start > 0 {
        let c = b[start - 1];
        let digit_before = start >= 2 && b[start - 2].is_ascii_digit();
        if c.is_ascii_digit() || ((c == b'.' || c == b',' || c == b'/') && digit_before) {
            start -= 1;
        } else {
            break;
        }
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    Some(text[start..end].to_string())
}

/// Extracts the final answer of `response` under `mode`.
pub fn extract_answer(response: &str, mode: ExtractMode) -> Option<String> {
    if let Some(b) = last_boxed(response) {
        return Some(b);
    }
    if mode == ExtractMode::StrictBoxed {
        return None;
    }
    if let Some(open) = rfind_ascii_ci(response, "<answer>") {
        let inner = &response[open..];
        let inner = match inner.find("</answer>") {
            Some(close) => &inner[..close],
            None => inner,
        };
        let inner = inner.trim().trim_matches('$').trim();
        if !inner.is_empty() {
            return Some(cap(inner, MAX_EXTRACTED_BYTES).to_string());
        }
    }
    if let Some(at) = response.rfind("####")
        && let Some(a) = rest_of_line(response, at + 4)
    {
        return Some(a);
    }
    for marker in ["final answer is", "final answer:", "answer is", "answer:"] {
        if let Some(at) = rfind_ascii_ci(response, marker)
            && let Some(a) = rest_of_line(response, at)
        {
            return Some(a);
        }
    }
    last_number(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtractMode::*;

    #[test]
    fn extracts_in_priority_order() {
        assert_eq!(
            extract_answer("so \\boxed{1} then \\boxed{\\frac{1}{2}}.", StrictBoxed).as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(
            extract_answer("\\boxed 5.", StrictBoxed).as_deref(),
            Some("5")
        );
        assert_eq!(
            extract_answer("\\fbox{a{b}c}", StrictBoxed).as_deref(),
            Some("a{b}c")
        );
        assert_eq!(extract_answer("The answer is 7.", StrictBoxed), None);
        assert_eq!(
            extract_answer("The final answer is $\\frac{3}{4}$.", Flexible).as_deref(),
            Some("\\frac{3}{4}")
        );
        assert_eq!(
            extract_answer("work\n#### 1,234\n", Flexible).as_deref(),
            Some("1,234")
        );
        assert_eq!(
            extract_answer("<answer> 12 </answer>", Flexible).as_deref(),
            Some("12")
        );
        assert_eq!(
            extract_answer("Answer: x=3", Flexible).as_deref(),
            Some("x=3")
        );
        assert_eq!(
            extract_answer("we get 3 apples and then -4.5 more", Flexible).as_deref(),
            Some("-4.5")
        );
        assert_eq!(extract_answer("nothing here", Flexible), None);
        assert_eq!(extract_answer("\\boxed{unclosed", Flexible), None);
    }
}
