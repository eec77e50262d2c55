//! LaTeX math environments in prose (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`,
//! `\begin{align*}…\end{align*}` and friends; inline math does not run over lines) and the
//! answer inside one: its last line (inside an `aligned` layout too), after its last
//! `\Rightarrow` or `\equiv`, and the last side of a chain of `=`.

/// Display environments whose content is mathematics.
const MATH_ENVIRONMENTS: &[&str] = &[
    "align*",
    "align",
    "equation*",
    "equation",
    "gather*",
    "gather",
    "eqnarray*",
    "eqnarray",
    "multline*",
    "multline",
    "displaymath",
    "math",
];
/// Most environments recorded from one text.
const MAX_ENVS: usize = 4_096;

/// One math environment: byte span of the whole environment and its content.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Env<'a> {
    /// Index of the opening delimiter.
    pub start: usize,
    /// Index just past the closing delimiter.
    pub end: usize,
    /// Text between the delimiters.
    pub content: &'a str,
}

/// Every complete math environment in `text`, in order (at most [`MAX_ENVS`]; an unclosed
/// delimiter ends the scan). `\$` is a dollar sign, not a delimiter. Inline math (`$…$`,
/// `\(…\)`) does not run over lines: such a pair is not an environment.
pub fn math_envs(text: &str) -> Vec<Env<'_>> {
    scan(text).0
}

/// Byte ranges of inline delimiter pairs broken over lines that set their content apart
/// (`Answer $ \n 9 \n $`, `\( \n 9 \n \)`): their text is neither an environment nor a
/// plain answer. A `$` pair over lines against numbers (`$1.5 an hour\n… 120$`) is
/// currency, and its text stays.
pub fn broken_inline_spans(text: &str) -> Vec<(usize, usize)> {
    scan(text).1
}

/// The environments of `text` and the broken inline pairs (see [`math_envs`]).
fn scan(text: &str) -> (Vec<Env<'_>>, Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut broken = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() + broken.len() < MAX_ENVS {
        let (open_len, close, inline): (usize, &str, bool) = match b[i] {
            b'\\' => match b.get(i + 1) {
                Some(b'(') => (2, "\\)", true),
                Some(b'[') => (2, "\\]", false),
                Some(b'b') if text[i..].starts_with("\\begin{") => {
                    let name_start = i + 7;
                    let Some(len) = text[name_start..].find('}') else {
                        break;
                    };
                    let name = &text[name_start..name_start + len];
                    if MATH_ENVIRONMENTS.contains(&name) {
                        let open_len = 7 + len + 1;
                        let close = format!("\\end{{{name}}}");
                        match text[i + open_len..].find(&close) {
                            Some(off) => {
                                let content = &text[i + open_len..i + open_len + off];
                                let end = i + open_len + off + close.len();
                                out.push(Env {
                                    start: i,
                                    end,
                                    content,
                                });
                                i = end;
                                continue;
                            }
                            None => break,
                        }
                    }
                    i += 7;
                    continue;
                }
                // `\$`, `\\` and other escapes.
                Some(_) => {
                    i += 2;
                    continue;
                }
                None => break,
            },
            b'$' if b.get(i + 1) == Some(&b'$') => (2, "$$", false),
            b'$' => (1, "$", true),
            _ => {
                i += 1;
                continue;
            }
        };
        let from = i + open_len;
        let Some(off) = find_closing(&text[from..], close) else {
            break;
        };
        let content = &text[from..from + off];
        if inline && content.contains('\n') {
            // Delimiters standing apart from their content (`$ \n 9 \n $`, `\( … \)`) set
            // out math that is not an answer; a `$` against a number is a currency sign.
            let apart = content
                .trim_start_matches([' ', '\t'])
                .starts_with(['\n', '\r'])
                || content
                    .trim_end_matches([' ', '\t'])
                    .ends_with(['\n', '\r']);
            if close != "$" || apart {
                broken.push((i, from + off + close.len()));
            }
            i = from + off + close.len();
            continue;
        }
        out.push(Env {
            start: i,
            end: from + off + close.len(),
            content: &text[from..from + off],
        });
        i = from + off + close.len();
    }
    (out, broken)
}

/// Offset of the closing delimiter `close` in `s`, skipping escaped `\$`.
fn find_closing(s: &str, close: &str) -> Option<usize> {
    let b = s.as_bytes();
    let c = close.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(c) {
            return Some(i);
        }
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    None
}

/// Positions of the top-level bytes of `s` (outside `{}`, `()`, `[]`, `\{ \}`) for which
/// `is_separator(bytes, i)` holds. Escaped characters (`\x`) are never separators.
fn top_level_separators(s: &str, is_separator: impl Fn(&[u8], usize) -> bool) -> Vec<usize> {
    let b = s.as_bytes();
    let mut cuts = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                // `\{` and `\}` are brackets too.
                match b.get(i + 1) {
                    Some(b'{') => depth += 1,
                    Some(b'}') => depth -= 1,
                    _ => {}
                }
                i += 2;
                continue;
            }
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            _ if depth == 0 && is_separator(b, i) => cuts.push(i),
            _ => {}
        }
        i += 1;
    }
    cuts
}

/// The pieces of `s` between one-byte separators at `cuts`.
fn pieces<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut start = 0;
    let mut out = Vec::with_capacity(cuts.len() + 1);
    for &c in cuts {
        out.push(&s[start..c]);
        start = c + 1;
    }
    out.push(&s[start..]);
    out
}

/// Splits at top-level (outside `{}`, `()`, `[]`) occurrences of `=` that are not part of
/// `<=`, `>=`, `!=`, `==`.
fn split_equals(s: &str) -> Vec<&str> {
    let cuts = top_level_separators(s, |b, i| {
        let prev = i.checked_sub(1).map(|p| b[p]);
        let next = b.get(i + 1).copied();
        b[i] == b'=' && !matches!(prev, Some(b'<' | b'>' | b'!' | b'=')) && next != Some(b'=')
    });
    pieces(s, &cuts)
}

/// Whether a side of an equation is only a name (`x`, `f(x)`, `a_n`, `(a,b)`): letters,
/// digits in scripts, brackets and commas, with at least one letter and no operators.
fn looks_like_name(side: &str) -> bool {
    let t = side.trim();
    !t.is_empty()
        && t.len() <= 40
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && t.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '_' | '{' | '}' | '(' | ')' | ',' | ' ' | '\\' | '\'' | '$'
                )
        })
        && !t.starts_with(|c: char| c.is_ascii_digit())
}

/// The answer stated inside one math environment: its last non-empty line (`\\` separates
/// lines, `&` alignment marks go), then the last side of an `=` chain. A single
/// `name = value` is kept whole, so a gold that names the same quantity can match it.
pub fn env_answer(content: &str) -> String {
    let parts = split_answers(content);
    if parts.len() > 1 && parts.iter().any(|p| p.contains('=')) {
        return parts
            .iter()
            .map(|p| line_answer(p))
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
    }
    line_answer(content)
}

/// Joiners between several answers in one environment.
const JOINERS: &[&str] = &[
    "\\text{ or }",
    "\\text{or}",
    "\\text{ and }",
    "\\text{and}",
    "\\qquad",
    "\\quad",
];

/// Splits an environment's content into answers at top-level `,`, `;` and [`JOINERS`].
fn split_answers(content: &str) -> Vec<String> {
    let mut s = content.to_string();
    for j in JOINERS {
        s = s.replace(j, ";");
    }
    let cuts = top_level_separators(&s, |b, i| matches!(b[i], b',' | b';'));
    pieces(&s, &cuts)
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits at `\\\\` line breaks outside braces and nested environments (a matrix's rows
/// stay together).
fn top_rows(content: &str) -> Vec<&str> {
    let b = content.as_bytes();
    let mut rows = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'\\') => {
                if depth == 0 {
                    rows.push(&content[start..i]);
                    start = i + 2;
                }
                i += 2;
                continue;
            }
            b'\\' => {
                let rest = &b[i..];
                if rest.starts_with(b"\\begin{") {
                    depth += 1;
                } else if rest.starts_with(b"\\end{") {
                    depth -= 1;
                }
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    rows.push(&content[start.min(content.len())..]);
    rows
}

/// The line without its alignment marks: `&` outside nested environments (a matrix keeps
/// its column separators).
fn without_alignment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut depth = 0i32;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("\\begin{") {
            depth += 1;
        } else if rest.starts_with("\\end{") {
            depth -= 1;
        }
        if c == '\\' && rest.len() > 1 && rest.is_char_boundary(2) {
            // An escape (`\&` stays as written).
            out.push_str(&rest[..2]);
            rest = &rest[2..];
            continue;
        }
        out.push(if c == '&' && depth <= 0 { ' ' } else { c });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Alignment environments that only lay out lines (`\begin{aligned} … \end{aligned}`).
const LAYOUTS: &[&str] = &[
    "aligned",
    "split",
    "gathered",
    "align*",
    "align",
    "eqnarray*",
];

/// The content of an alignment environment wrapping the whole of `content`, else `content`.
fn unwrap_alignment(content: &str) -> &str {
    let t = content.trim();
    for name in LAYOUTS {
        let open = format!("\\begin{{{name}}}");
        let close = format!("\\end{{{name}}}");
        if let Some(inner) = t.strip_prefix(&open).and_then(|r| r.strip_suffix(&close)) {
            return inner;
        }
    }
    content
}

/// Signs after which a line states its conclusion: the part after the last one is the answer
/// (`2x = 6 \Rightarrow x = 3`, `24 \equiv 3 \pmod{7}` gives `3`).
const STEP_SIGNS: &[&str] = &[
    "\\Rightarrow",
    "\\Longrightarrow",
    "\\implies",
    "\\therefore",
    "\\equiv",
];

/// The part of a line after its last top-level [`STEP_SIGNS`], without a trailing modulus
/// (`\pmod{7}`, `\pmod 7`, `(\bmod 7)`, `\mod 7`).
fn after_last_step(line: &str) -> &str {
    let cuts = top_level_separators(line, |b, i| b[i] == b'\\');
    let mut out = line;
    let mut modular = false;
    for &at in cuts.iter().rev() {
        if let Some(sign) = STEP_SIGNS.iter().find(|sign| {
            line[at..].starts_with(**sign)
                && !line[at + sign.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
        }) {
            out = line[at + sign.len()..].trim();
            modular = *sign == "\\equiv";
            break;
        }
    }
    if !modular || out.is_empty() {
        return if out.is_empty() { line } else { out };
    }
    for m in ["(\\bmod", "(\\mod", "\\pmod", "\\bmod", "\\mod"] {
        if let Some(at) = out.find(m) {
            return out[..at].trim();
        }
    }
    out
}

/// The answer of one line or part (see [`env_answer`]).
fn line_answer(content: &str) -> String {
    let rows = top_rows(unwrap_alignment(content));
    let last_line = rows
        .iter()
        .map(|r| r.trim())
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let line = without_alignment(last_line);
    let line = line.trim();
    // Sentence punctuation goes; an ellipsis (`1, 2, 3, ...`) is part of the answer.
    let line = if line.ends_with("...") {
        line
    } else {
        line.trim_end_matches(['.', ',', ';']).trim()
    };
    let line = after_last_step(line);
    let sides = split_equals(line);
    if sides.len() >= 3 {
        return sides[sides.len() - 1].trim().to_string();
    }
    if sides.len() == 2 && sides[0].trim().is_empty() {
        // `= 12` continuing an aligned chain.
        return sides[1].trim().to_string();
    }
    if sides.len() == 2
        && !looks_like_name(sides[0])
        && !sides[1].trim().is_empty()
        && !sides[0].chars().any(|c| c.is_ascii_alphabetic())
        && !sides[1].chars().any(|c| c.is_ascii_alphabetic())
    {
        // `2 + 3 = 5`: a computation ending in its value. An equation with a variable
        // (`x + y = 3`, `2x = 6`) is kept as an equation.
        return sides[1].trim().to_string();
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_environments_in_order() {
        let t = "cost \\$5 and $x$, then $$y=2$$ and \\(z\\) or \\[w\\] \\begin{align*}a&=1\\\\&=2\\end{align*}";
        let contents: Vec<&str> = math_envs(t).iter().map(|e| e.content).collect();
        assert_eq!(contents, ["x", "y=2", "z", "w", "a&=1\\\\&=2"]);
        assert_eq!(math_envs("an unclosed $x").len(), 0);
    }

    #[test]
    fn answer_is_the_last_side_of_a_chain() {
        assert_eq!(env_answer("x = 5+5+1 = 3k"), "3k");
        assert_eq!(env_answer("x = 3"), "x = 3");
        assert_eq!(env_answer("2+3 = 5"), "5");
        assert_eq!(env_answer("x + y = 3"), "x + y = 3");
        assert_eq!(env_answer("1 = k"), "1 = k");
        assert_eq!(env_answer("a &= 1 \\\\ &= 2."), "2");
        assert_eq!(env_answer("x \\le 7"), "x \\le 7");
        assert_eq!(env_answer("x <= 7"), "x <= 7");
        assert_eq!(env_answer("f(x) = x^2 = 9"), "9");
        // A named quantity keeps its name; the comparison drops it when the gold has none.
        assert_eq!(
            env_answer("\\frac{AM}{MB}=\\frac{2}{\\sqrt5}"),
            "\\frac{AM}{MB}=\\frac{2}{\\sqrt5}"
        );
    }
}
