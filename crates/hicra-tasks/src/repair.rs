//! Repairs LaTeX backslashes lost to JSON escapes (`"\frac"` decoded as form feed + `rac`).
//!
//! A JSON writer that did not escape backslashes turns `\frac` into U+000C + `rac`,
//! `\times` / `\triangle` into TAB + …, `\beta` into U+0008 + …, `\right` into CR + ….
//! Form feed and backspace never belong in a math problem and are always restored; TAB and CR
//! are restored only when a lowercase letter follows (a command name), so real layout
//! whitespace survives. Newlines are left alone: `\n` + letters is too often real text.

/// Restores lost backslashes in `text`; returns the text and how many were restored.
pub fn repair_lost_backslashes(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len() + 8);
    let mut repaired = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next_is_lower = chars.peek().is_some_and(|n| n.is_ascii_lowercase());
        let restored = match c {
            '\u{000C}' => Some('f'),
            '\u{0008}' => Some('b'),
            '\t' if next_is_lower => Some('t'),
            '\r' if next_is_lower => Some('r'),
            _ => None,
        };
        match restored {
            Some(letter) => {
                out.push('\\');
                out.push(letter);
                repaired += 1;
            }
            None => out.push(c),
        }
    }
    (out, repaired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_escapes_become_latex_commands_again() {
        let (text, n) = repair_lost_backslashes("\u{000C}rac{1}{2} and \triangle ABC, \u{0008}eta");
        assert_eq!(text, "\\frac{1}{2} and \\triangle ABC, \\beta");
        assert_eq!(n, 3);
    }

    #[test]
    fn layout_whitespace_is_kept() {
        let input = "a\t1\r\nb\nnext";
        assert_eq!(repair_lost_backslashes(input), (input.to_string(), 0));
    }
}
