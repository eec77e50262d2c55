//! Bracket structure of token slices: depth, top-level splits, whole-slice groups.

use crate::lexer::Tok;

/// Bracket depth change of a token.
pub fn depth_delta(t: &Tok) -> i32 {
    match t {
        Tok::Sym('(' | '[' | '{') | Tok::LSet | Tok::Begin(_) => 1,
        Tok::Sym(')' | ']' | '}') | Tok::RSet | Tok::End(_) => -1,
        Tok::Cmd(n) if n == "langle" || n == "lfloor" || n == "lceil" => 1,
        Tok::Cmd(n) if n == "rangle" || n == "rfloor" || n == "rceil" => -1,
        _ => 0,
    }
}

/// Splits at depth-0 tokens satisfying `is_sep`.
pub fn split_top<'t>(toks: &'t [Tok], is_sep: &dyn Fn(&Tok) -> bool) -> Vec<&'t [Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if depth == 0 && is_sep(t) {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
        depth += depth_delta(t);
    }
    parts.push(&toks[start..]);
    parts
}

/// Whether the first token opens a group that closes exactly at the last token.
pub fn wraps_whole(toks: &[Tok]) -> bool {
    if toks.len() < 2 || depth_delta(&toks[0]) <= 0 {
        return false;
    }
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate() {
        depth += depth_delta(t);
        if depth == 0 {
            return i == toks.len() - 1;
        }
    }
    false
}

/// Index just past the bracket group that starts `toks`, if it closes.
pub fn group_end(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate() {
        depth += depth_delta(t);
        if depth == 0 {
            return Some(i + 1);
        }
    }
    None
}
