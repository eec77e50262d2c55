//! LaTeX spacing in answers: the spacing commands (`\,` `\;` `\:` `\ ` `~`, `\!`) and the
//! braced thousands comma `{,}`.

/// `{,}` (and `{, }` with spaces, between digits) is a thousands comma: `14 {, }916` is
/// `14,916`.
pub(crate) fn braced_commas(s: &str) -> String {
    if !s.contains('{') || !s.contains(',') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('{') {
        let inner = rest[at + 1..].trim_start_matches(' ');
        let closes = inner
            .strip_prefix(',')
            .map(|r| r.trim_start_matches(' '))
            .and_then(|r| r.strip_prefix('}'));
        match closes {
            Some(after) => {
                let before = &rest[..at];
                let digits_around = before.trim_end().ends_with(|c: char| c.is_ascii_digit())
                    && after.trim_start().starts_with(|c: char| c.is_ascii_digit());
                if digits_around {
                    out.push_str(before.trim_end());
                    out.push(',');
                    rest = after.trim_start();
                } else {
                    out.push_str(before);
                    out.push(',');
                    rest = after;
                }
            }
            None => {
                out.push_str(&rest[..=at]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces spacing commands (`\,` `\;` `\:` `\ ` `~`) by a space and drops `\!`, leaving `\\` intact.
pub(crate) fn remove_spacing(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '~' => out.push(' '),
            '\\' => match chars.peek() {
                Some('\\') => {
                    chars.next();
                    out.push_str("\\\\");
                }
                Some(',' | ';' | ':' | ' ') => {
                    chars.next();
                    out.push(' ');
                }
                Some('!') => {
                    chars.next();
                }
                _ => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}
