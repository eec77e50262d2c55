//! Answers written without math delimiters: the last plain expression of a text (`so we get
//! -7/4.`, `1,000.99€`, `1,500m²`, `we get \frac{7}{3}`, `2/7 ≈ 0.29`), and a whole response
//! that is bare mathematics (`\sqrt{2}+1`, `x^2 + 1`). Also the names that a sentence's
//! math may only label (`The area of $PQRS$ is 48.`).

use crate::envs::broken_inline_spans;
use crate::normalize::{FUNCTION_NAMES, whole_text_group};
use std::borrow::Cow;

/// Words at the end of the text examined for a plain expression.
const MAX_TAIL_WORDS: usize = 400;
/// Longest response read whole as bare mathematics.
const MAX_BARE_BYTES: usize = 300;
/// Currency signs that may stand before or after a number.
const CURRENCY: &[char] = &['$', '€', '£', '¥', '₹', '₽', '₩', '₪', '₫', '฿', '¢'];
/// LaTeX commands a plain expression may use.
const PLAIN_COMMANDS: &[&str] = &[
    "frac", "dfrac", "tfrac", "sqrt", "pi", "cdot", "times", "approx", "infty",
];
/// One-letter units written right after a number (`12m`, `5g`); other letters are
/// variables (`2x`).
const ONE_LETTER_UNITS: &[&str] = &["m", "g", "s", "h", "l", "L", "K"];
/// Commands that make mathematics out of names (`\frac{3}{4}` is not a label).
const MATH_COMMANDS: &[&str] = &[
    "frac", "dfrac", "tfrac", "sqrt", "pi", "infty", "cdot", "times", "pm", "mp", "le", "ge",
    "leq", "geq", "ne", "neq", "cup", "cap", "in", "binom", "sum", "prod", "int", "lim", "log",
    "ln", "sin", "cos", "tan", "exp", "approx", "circ", "text", "mathrm", "boxed", "begin",
];

/// Whether `w` reads as (part of) a plain expression: digits, operators, brackets and the
/// [`PLAIN_COMMANDS`] (`12`, `-7/4`, `1,234.5`, `(3,`, `2:3`, `\frac{7}{3}`, `≈`); no
/// letters.
fn is_expression_word(w: &str) -> bool {
    let mut chars = w.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            let name: String = w[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if !PLAIN_COMMANDS.contains(&name.as_str()) {
                return false;
            }
            for _ in 0..name.len() {
                chars.next();
            }
            continue;
        }
        let ok = c.is_ascii_digit()
            || matches!(
                c,
                '.' | ','
                    | '/'
                    | '+'
                    | '-'
                    | '*'
                    | '^'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '%'
                    | '$'
                    | ':'
                    | '\u{2248}'
            );
        if !ok {
            return false;
        }
    }
    !w.is_empty()
}

fn has_digit(s: &str) -> bool {
    s.contains(|c: char| c.is_ascii_digit())
}

/// The expression a word holds: the word without a currency sign before it; for the last
/// word of a run also a number with a unit after it (`1,500m²`, `12cm.`, `99€`).
fn core(w: &str, last: bool) -> Option<&str> {
    let w = w.trim_start_matches(CURRENCY);
    if is_expression_word(w) {
        return Some(w);
    }
    if !last {
        return None;
    }
    let split = w.find(|c: char| !is_expression_word(c.encode_utf8(&mut [0; 4])))?;
    let (number, unit) = w.split_at(split);
    let unit = unit.trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
    let unit_like = unit
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, '²' | '³' | '°' | '/') || CURRENCY.contains(&c))
        && (unit.chars().count() >= 2
            || ONE_LETTER_UNITS.contains(&unit)
            || unit.chars().any(|c| !c.is_ascii_alphabetic()));
    (has_digit(number) && number.ends_with(|c: char| c.is_ascii_digit() || c == '%') && unit_like)
        .then_some(number)
}

/// The words of `text` with their byte offsets.
fn words(text: &str) -> impl DoubleEndedIterator<Item = (usize, &str)> {
    text.split_whitespace()
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

/// The last plain expression of `text` (the last run of expression words, skipping the words
/// after it, trimmed of sentence punctuation) and the byte offset of its first word; `None`
/// when it has no digit.
pub fn plain_tail_at(text: &str) -> Option<(usize, String)> {
    let tail: Vec<(usize, &str)> = words(text).rev().take(MAX_TAIL_WORDS).collect();
    let first = tail
        .iter()
        .position(|(_, w)| core(w, true).is_some_and(has_digit))?;
    let mut run = vec![core(tail[first].1, true)?];
    let mut start = tail[first].0;
    for (at, w) in &tail[first + 1..] {
        match core(w, false) {
            Some(c) => {
                run.push(c);
                start = *at;
            }
            None => break,
        }
    }
    run.reverse();
    let joined = run.join(" ");
    let t = joined
        .trim_start_matches(['=', '(', ','])
        .trim_end_matches(['.', ',', ';', ':', '$', ')'])
        .trim_matches('$')
        .trim();
    // Keep a closing bracket that closes something in the expression.
    let t = if joined
        .trim_end_matches(['.', ',', ';', ':', '$'])
        .ends_with(')')
        && t.contains('(')
    {
        joined
            .trim_start_matches(['=', ','])
            .trim_end_matches(['.', ',', ';', ':', '$'])
            .trim()
    } else {
        t
    };
    has_digit(t).then(|| (start, t.to_string()))
}

/// Whether the text has prose: a word of three or more bytes of letters (any script) outside
/// LaTeX commands and environment names, other than `and`, `or` and function names (`sin`,
/// `log`).
pub fn has_prose(text: &str) -> bool {
    let mut run = String::new();
    let mut command: Option<String> = None;
    let mut last_command = String::new();
    let mut in_env_name = false;
    for c in text.chars().chain(std::iter::once(' ')) {
        if let Some(name) = command.as_mut() {
            if c.is_ascii_alphabetic() {
                name.push(c);
                continue;
            }
            last_command = command.take().unwrap_or_default();
        }
        if in_env_name {
            in_env_name = c != '}';
            continue;
        }
        if c.is_alphabetic() {
            run.push(c);
            continue;
        }
        if run.len() >= 3
            && !matches!(run.as_str(), "and" | "or")
            && !FUNCTION_NAMES.contains(&run.as_str())
        {
            return true;
        }
        run.clear();
        in_env_name = c == '{' && matches!(last_command.as_str(), "begin" | "end");
        last_command.clear();
        if c == '\\' {
            command = Some(String::new());
        }
    }
    false
}

/// The whole response when it is bare mathematics: one short line with no prose
/// (`\frac{7}{3}`, `-\frac{7}{3}`, `\sqrt{2}+1`, a bare matrix), or one `\text{…}` group.
pub fn bare_math(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('.').trim();
    let short = !t.is_empty() && t.len() <= MAX_BARE_BYTES && !t.contains(['\n', '$']);
    let math = || !t.contains("\\text") && !has_prose(t);
    (short && (math() || whole_text_group(t).is_some())).then(|| t.to_string())
}

/// Whether an answer only names something (`k`, `PQRS`, `\triangle ABC`, `x_1`, `f(x)`): no
/// numbers outside subscripts, no operators, no mathematical commands.
pub fn is_label(answer: &str) -> bool {
    let t = answer.trim();
    let mut rest = t;
    let mut letters = 0;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match c {
            '_' => {
                // A subscript: one character or a braced group.
                let after = &rest[1..];
                let skip = match after.strip_prefix('{') {
                    Some(inner) => inner.find('}').map(|e| e + 2),
                    None => after.chars().next().map(char::len_utf8),
                };
                match skip {
                    Some(n) => rest = &after[n..],
                    None => return false,
                }
                continue;
            }
            '\\' => {
                let name: String = rest[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                if name.is_empty() || MATH_COMMANDS.contains(&name.as_str()) {
                    return false;
                }
                rest = &rest[1 + name.len()..];
                continue;
            }
            c if c.is_alphabetic() => letters += 1,
            ' ' | '\'' | '(' | ')' | ',' | '{' | '}' => {}
            _ => return false,
        }
        rest = &rest[len..];
    }
    letters > 0 && t.len() <= 40
}

/// Whether a sentence ends within `s`: `.`, `!` or `?` before a space, or a line break.
pub fn has_sentence_break(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'\n'
            || matches!(c, b'.' | b'!' | b'?')
                && b.get(i + 1).is_some_and(|n| n.is_ascii_whitespace())
    })
}

/// `text` with its inline delimiter pairs broken over lines blanked out (their content is
/// not an answer).
pub fn without_broken_math(text: &str) -> Cow<'_, str> {
    let spans = broken_inline_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push(' ');
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}
