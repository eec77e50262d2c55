//! String-level normalisation of LaTeX answers before parsing.
//!
//! Owns: Unicode symbols, math delimiters (`$…$`, `\(…\)`, `\[…\]`), `\boxed` wrappers,
//! `\left`/`\right`, `\dfrac`/`\tfrac`, `\quad` separators, degrees,
//! dollars, `\text{}`-like groups (units are dropped, other text unwrapped) and thousands
//! separators; and the other readings of an answer: its decimal-comma reading, the list
//! reading of `144,149`, and the exact side before an approximation sign. Spacing commands
//! and braced thousands commas are `spacing`'s.

use crate::spacing::{braced_commas, remove_spacing};

/// Text-like LaTeX commands whose argument is plain text.
const TEXT_COMMANDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textrm",
    "textsf",
    "texttt",
    "mbox",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "operatorname",
    "boldsymbol",
    "bm",
    "textnormal",
    "hbox",
];

/// Function names that may appear inside `\operatorname{}` / `\mathrm{}` and must be kept.
pub const FUNCTION_NAMES: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "log", "exp", "sqrt", "lcm", "gcd",
];

/// Returns the index just past the group that starts with `{` at byte `open`, if balanced.
pub fn match_brace(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `s[at..]` starts the command `\name` (not a longer command name).
fn command_at(s: &str, at: usize, name: &str) -> bool {
    let rest = &s[at..];
    rest.starts_with('\\')
        && rest[1..].starts_with(name)
        && !rest[1 + name.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
}

/// The names of the commands in `s`, in order (`\frac{1}{\pi}` has `frac` and `pi`): the
/// names [`replace_command`] can replace.
fn command_names(s: &str) -> Vec<String> {
    s.match_indices('\\')
        .filter_map(|(at, _)| {
            let rest = &s[at + 1..];
            let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            (len > 0).then(|| rest[..len].to_string())
        })
        .collect()
}

/// Replaces every command `\name` (whole name) by `with`.
pub fn replace_command(s: &str, name: &str, with: &str) -> String {
    if !s.contains(name) {
        return s.to_string();
    }
    let needle = format!("\\{name}");
    if !s.contains(&needle) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = s[i..].find(&needle) {
        let at = i + off;
        out.push_str(&s[i..at]);
        if command_at(s, at, name) {
            out.push_str(with);
        } else {
            out.push_str(&needle);
        }
        i = at + needle.len();
    }
    out.push_str(&s[i..]);
    out
}

/// Maps Unicode math symbols to their LaTeX spelling.
fn replace_unicode(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{2212}' | '\u{2013}' | '\u{2014}' | '\u{2012}' | '\u{fe63}' | '\u{ff0d}' => {
                out.push('-')
            }
            '\u{00d7}' => out.push_str("\\times "),
            '\u{00b7}' | '\u{22c5}' | '\u{2219}' => out.push_str("\\cdot "),
            '\u{00f7}' => out.push('/'),
            '\u{03c0}' => out.push_str("\\pi "),
            '\u{221e}' => out.push_str("\\infty "),
            '\u{221a}' => out.push_str("\\sqrt"),
            '\u{2264}' | '\u{2a7d}' => out.push_str("\\le "),
            '\u{2265}' | '\u{2a7e}' => out.push_str("\\ge "),
            '\u{2260}' => out.push_str("\\ne "),
            '\u{00b1}' => out.push_str("\\pm "),
            '\u{2213}' => out.push_str("\\mp "),
            '\u{00b0}' => out.push_str("^\\circ "),
            '\u{222a}' => out.push_str("\\cup "),
            '\u{2229}' => out.push_str("\\cap "),
            '\u{2208}' => out.push_str("\\in "),
            '\u{2248}' => out.push_str("\\approx "),
            '\u{2032}' => out.push('\''),
            '\u{00bd}' => out.push_str("\\frac{1}{2}"),
            '\u{00bc}' => out.push_str("\\frac{1}{4}"),
            '\u{00be}' => out.push_str("\\frac{3}{4}"),
            '\u{00b2}' => out.push_str("^2"),
            '\u{00b3}' => out.push_str("^3"),
            '\u{00a0}' | '\u{2009}' | '\u{202f}' | '\u{2002}' | '\u{2003}' | '\u{200b}' => {
                out.push(' ')
            }
            '\u{ff0c}' => out.push(','),
            _ => out.push(c),
        }
    }
    out
}

/// Removes `$`, `\(`, `\)`, `\[`, `\]` math delimiters and `\$` dollar signs.
fn strip_delimiters(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => {}
            '\\' => match chars.peek() {
                Some('(' | ')' | '[' | ']' | '$') => {
                    chars.next();
                }
                Some('\\') => {
                    chars.next();
                    out.push_str("\\\\");
                }
                _ => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

/// Replaces `\boxed{X}` / `\fbox{X}` by `X` (wherever they appear).
fn unwrap_boxed(s: &str) -> String {
    let mut s = s.to_string();
    for needle in ["\\boxed", "\\fbox"] {
        let mut guard = 0;
        while let Some(at) = s.find(needle) {
            guard += 1;
            if guard > 50 {
                break;
            }
            let after = at + needle.len();
            let open = after + s[after..].len() - s[after..].trim_start().len();
            match match_brace(&s, open) {
                Some(end) => {
                    let inner = s[open + 1..end - 1].to_string();
                    s = format!("{}{}{}", &s[..at], inner, &s[end..]);
                }
                None => {
                    s = format!("{}{}", &s[..at], &s[after..]);
                }
            }
        }
    }
    s
}

/// LaTeX commands that are sometimes written with a doubled backslash (`\\frac`).
const DOUBLED_COMMANDS: &[&str] = &[
    "frac", "dfrac", "tfrac", "sqrt", "pi", "cdot", "times", "text", "left", "right",
];

/// Turns `\\frac` (a doubled backslash before a known command) into `\frac`.
fn fix_doubled_backslash(s: &str) -> String {
    if !s.contains("\\\\") {
        return s.to_string();
    }
    let mut out = s.to_string();
    for name in DOUBLED_COMMANDS {
        let needle = format!("\\\\{name}");
        out = out.replace(&needle, &format!("\\{name}"));
    }
    out
}

/// Removes `\left`, `\right` and the `\big`-family sizing commands.
fn remove_sizing(s: &str) -> String {
    let mut out = s.to_string();
    // Every sizing command's name holds one of these.
    if !["left", "right", "big", "Big"]
        .iter()
        .any(|part| s.contains(part))
    {
        return out;
    }
    for name in [
        "left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "big", "Big", "bigg",
        "Bigg",
    ] {
        if out.contains(name) {
            out = replace_command(&out, name, "");
        }
    }
    out = out.replace("\\left.", "").replace("\\right.", "");
    out
}

/// `\quad` and `\qquad` between two answers separate them (`3 \quad -5` is `3, -5`); at
/// the start of an answer or a side (`y = \quad (1, 2)`) they are only space.
fn quad_separators(s: &str) -> String {
    if !s.contains("quad") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\\q") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let len = ["\\qquad", "\\quad"]
            .iter()
            .find(|q| tail.starts_with(**q) && command_at(tail, 0, &q[1..]))
            .map(|q| q.len());
        match len {
            Some(len) => {
                let leading = out.trim_end().is_empty()
                    || out.trim_end().ends_with(['=', ',', ';', '(', '[', '{']);
                out.push_str(if leading { " " } else { " , " });
                rest = &tail[len..];
            }
            None => {
                out.push_str("\\q");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Plain replacements of commands with equivalent spellings.
fn replace_commands(s: &str) -> String {
    let mut out = quad_separators(s);
    if out.contains("circ") {
        out = out
            .replace("^{\\circ}", "")
            .replace("^\\circ", "")
            .replace("^ {\\circ}", "");
    }
    let pairs: &[(&str, &str)] = &[
        ("dfrac", "\\frac"),
        ("tfrac", "\\frac"),
        ("cfrac", "\\frac"),
        ("dbinom", "\\binom"),
        ("tbinom", "\\binom"),
        ("geqslant", "\\ge "),
        ("leqslant", "\\le "),
        ("geq", "\\ge "),
        ("leq", "\\le "),
        ("neq", "\\ne "),
        ("lt", "<"),
        ("gt", ">"),
        ("displaystyle", " "),
        ("textstyle", " "),
        ("limits", " "),
        ("degree", ""),
        ("circ", ""),
        ("lvert", "|"),
        ("rvert", "|"),
        ("vert", "|"),
        ("mid", "|"),
        ("lbrace", "\\{"),
        ("rbrace", "\\}"),
        ("dots", ""),
        ("ldots", ""),
        ("cdots", ""),
        ("emptyset", "\\{\\}"),
        ("varnothing", "\\{\\}"),
        ("varepsilon", "\\epsilon "),
        ("varphi", "\\phi "),
        ("vartheta", "\\theta "),
        ("colon", ":"),
    ];
    // The commands present, read once (and again after a replacement): most answers hold
    // none of these names, and one scan is cheaper than a substring search per name.
    let mut present = command_names(&out);
    for (name, with) in pairs {
        if present.iter().any(|c| c == name) {
            out = replace_command(&out, name, with);
            present = command_names(&out);
        }
    }
    while let Some(at) = out.find(",\\!") {
        let rest = out[at + 3..].trim_start().to_string();
        out = format!("{},{}", &out[..at], rest);
    }
    out = remove_spacing(&out);
    out = out.replace("^{}", "").replace("^ {}", "");
    out = braced_commas(&out.replace("\\%", "%"));
    out
}

/// Whether a `\text{}` content reads as a unit or other trailing words to drop.
fn is_unit_words(content: &str) -> bool {
    let t = content.trim();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 2
        && t.chars().all(|c| {
            c.is_alphabetic()
                || c == ' '
                || c == '.'
                || c == '/'
                || c == '^'
                || c == '-'
                || c.is_ascii_digit()
        })
        && !FUNCTION_NAMES.contains(&t)
}

/// Unwraps `\text{…}`-like groups, dropping unit words and mapping "and"/"or" to commas.
fn handle_text_groups(s: &str) -> String {
    let mut out = s.to_string();
    if !TEXT_COMMANDS.iter().any(|name| s.contains(name)) {
        return out;
    }
    let mut guard = 0;
    loop {
        guard += 1;
        if guard > 100 {
            break;
        }
        let found = TEXT_COMMANDS
            .iter()
            .filter_map(|name| {
                let needle = format!("\\{name}");
                let mut from = 0;
                while let Some(off) = out[from..].find(&needle) {
                    let at = from + off;
                    if command_at(&out, at, name) {
                        return Some((at, needle.len()));
                    }
                    from = at + needle.len();
                }
                None
            })
            .min();
        let Some((at, len)) = found else { break };
        let after = at + len;
        let open = after + out[after..].len() - out[after..].trim_start().len();
        let Some(end) = match_brace(&out, open) else {
            out = format!("{}{}", &out[..at], &out[after..]);
            continue;
        };
        let content = out[open + 1..end - 1].to_string();
        let trimmed = content.trim();
        let lower = trimmed.to_ascii_lowercase();
        let before = out[..at].trim_end();
        let in_braced_script = before.ends_with("_{") || before.ends_with("^{");
        let in_script = before.ends_with('_') || before.ends_with('^') || in_braced_script;
        let replacement = if lower == "and" || lower == "or" || lower == "," || lower == "and/or" {
            ",".to_string()
        } else if !in_script && is_unit_words(trimmed) && !before.is_empty() {
            // A unit after a value: drop it, with a following power like `^2`.
            let rest = &out[end..];
            let rest_trim = rest.trim_start();
            let mut skip = rest.len() - rest_trim.len();
            if let Some(r) = rest_trim.strip_prefix('^') {
                let r2 = r.trim_start();
                let extra = r.len() - r2.len();
                if r2.starts_with('{') {
                    if let Some(e) = match_brace(r2, 0) {
                        skip += 1 + extra + e;
                    }
                } else if let Some(c) = r2.chars().next() {
                    skip += 1 + extra + c.len_utf8();
                }
            }
            out = format!("{} {}", &out[..at], &out[end + skip..]);
            continue;
        } else if in_braced_script {
            trimmed.to_string()
        } else if in_script {
            format!("{{{trimmed}}}")
        } else {
            format!(" {trimmed} ")
        };
        out = format!("{}{}{}", &out[..at], replacement, &out[end..]);
    }
    out
}

/// Removes `,` thousands separators at bracket depth 0 (`1,450,000` → `1450000`) and
/// `1 000`-style space separators when the whole answer is such a number.
fn remove_thousands(s: &str) -> String {
    let t = s.trim();
    // Space separated: whole answer only.
    let groups: Vec<&str> = t.split(' ').collect();
    if groups.len() > 1
        && groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
    {
        return groups.concat();
    }
    if !s.contains(',') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if c.is_ascii_digit()
            && depth == 0
            && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.' || b[i - 1] == b','))
        {
            // Leading group of 1-3 digits followed by one or more ",ddd" groups.
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            // A thousands group never starts with 0 (`0,125` is a decimal comma).
            if j - i <= 3 && (b[i] != b'0' || j - i == 1 && j == b.len()) {
                let mut k = j;
                let mut groups = 0;
                while k + 4 <= b.len()
                    && b[k] == b','
                    && b[k + 1..k + 4].iter().all(|d| d.is_ascii_digit())
                    && !(k + 4 < b.len() && b[k + 4].is_ascii_digit())
                {
                    k += 4;
                    groups += 1;
                }
                if groups > 0 {
                    for &d in &b[i..k] {
                        if d != b',' {
                            out.push(d as char);
                        }
                    }
                    i = k;
                    continue;
                }
            }
            out.push_str(&s[i..j]);
            i = j;
            continue;
        }
        let ch_len = s[i..].chars().next().map(|c| c.len_utf8()).unwrap_or(1);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// The decimal-comma reading of an answer that is one number written `digits,digits`
/// where the comma cannot be a thousands separator: `3,14` → `3.14`, `2500,75` →
/// `2500.75`, `0,125` → `0.125`. A comma followed by exactly three digits after a 1-3 digit
/// group that does not start with 0 (`1,000`, `12,345`) is a thousands separator, so has no
/// decimal reading.
pub fn decimal_comma_reading(s: &str) -> Option<String> {
    let t = s.trim().trim_matches('$').trim();
    let (sign, body) = match t.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", t),
    };
    let (int, frac) = body.split_once(',')?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 40 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let thousands = frac.len() == 3 && int.len() <= 3 && !int.starts_with('0');
    (!thousands).then(|| format!("{sign}{int}.{frac}"))
}

/// The list reading of a response written like a number with thousands separators:
/// `144,149` is 144149 or the two answers 144, 149 (a gold equal to either matches).
pub fn thousands_list_reading(s: &str) -> Option<String> {
    let t = s.trim().trim_matches('$').trim();
    let groups: Vec<&str> = t.split(',').collect();
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let first = groups[0].strip_prefix('-').unwrap_or(groups[0]);
    let thousands = groups.len() >= 2
        && groups.len() <= 8
        && digits(first)
        && first.len() <= 3
        && groups[1..].iter().all(|g| g.len() == 3 && digits(g));
    thousands.then(|| groups.join(", "))
}

/// Signs after which a value is only approximate.
const APPROX_SIGNS: &[&str] = &["\\approx", "\\thickapprox", "\\simeq", "\\sim", "\u{2248}"];

/// The exact part of an answer that goes on to an approximation: `2/7 \approx 0.29` is
/// `2/7`, `x = \frac{2}{7} \approx 0.29` is `x = \frac{2}{7}`, `≈` likewise. A bare name
/// before the sign (`x \approx 0.29`) is not a value, so the answer is kept whole.
pub fn exact_side(s: &str) -> &str {
    if !(s.contains("\\approx") || s.contains("\\sim") || s.contains('\u{2248}')) {
        return s;
    }
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            _ if depth == 0 => {
                let found = APPROX_SIGNS.iter().any(|sign| {
                    s.is_char_boundary(i)
                        && s[i..].starts_with(*sign)
                        && !s[i + sign.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
                });
                if found {
                    let before = s[..i].trim();
                    let is_value = before.contains(|c: char| {
                        c.is_ascii_digit() || matches!(c, '=' | '+' | '-' | '*' | '/' | '^')
                    }) || ["\\frac", "\\sqrt", "\\pi"]
                        .iter()
                        .any(|c| before.contains(c));
                    return if is_value { before } else { s };
                }
                if b[i] == b'\\' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// Trims whitespace and trailing sentence punctuation.
fn trim_punctuation(s: &str) -> &str {
    let mut t = s.trim();
    loop {
        let before = t.len();
        t = t.trim_end_matches(['.', ';', ',', ' ', '\n', '\t']).trim();
        t = t.strip_suffix("\\\\").unwrap_or(t).trim();
        if t.len() == before {
            break;
        }
    }
    t
}

/// Full normalisation of an answer string (see the module docs).
pub fn normalize(input: &str) -> String {
    let s = replace_unicode(input);
    let s = strip_delimiters(&s);
    if !s.contains(['\\', '~', '{']) {
        // Plain text: only punctuation and thousands separators apply.
        let s = trim_punctuation(&s).to_string();
        let s = remove_thousands(&s);
        return s.trim().trim_start_matches('=').trim().to_string();
    }
    let s = unwrap_boxed(&s);
    let s = fix_doubled_backslash(&s);
    let s = remove_sizing(&s);
    let s = replace_commands(&s);
    let s = handle_text_groups(&s);
    let s = trim_punctuation(&s).to_string();
    let s = remove_thousands(&s);
    let s = s.trim().trim_start_matches('=').trim();
    s.to_string()
}

/// If the whole answer is one text group (`\text{Evelyn}`), returns its content.
pub fn whole_text_group(s: &str) -> Option<String> {
    let t = s.trim().trim_matches('$').trim();
    let command = t.strip_prefix('\\')?;
    for name in TEXT_COMMANDS {
        if let Some(rest) = command.strip_prefix(name) {
            let rest_t = rest.trim_start();
            let open = t.len() - rest_t.len();
            if let Some(end) = match_brace(t, open)
                && t[end..].trim().trim_end_matches('.').is_empty()
            {
                return Some(t[open + 1..end - 1].trim().to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_forms() {
        assert_eq!(normalize("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(normalize("10\\text{ units}"), "10");
        assert_eq!(normalize("15\\mbox{ cm}^2"), "15");
        assert_eq!(normalize("1,450,000"), "1450000");
        assert_eq!(normalize("\\$32,\\!348"), "32348");
        assert_eq!(normalize("(12,102)"), "(12,102)");
        assert_eq!(normalize("1 000"), "1000");
        assert_eq!(normalize("106^\\circ"), "106");
        assert_eq!(
            normalize("\\left( 3, \\frac{\\pi}{2} \\right)"),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(normalize("k_{\\mathrm{B}}"), "k_{B}");
        assert_eq!(normalize("\\boxed{5}."), "5");
        assert_eq!(normalize("3, 5, 7"), "3, 5, 7");
    }
}
