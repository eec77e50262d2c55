//! Names of answers: the left side of `x = 3`, `f(x) = …`, `\angle ABC = …`, `(a, b) = …`,
//! `\frac{AM}{MB} = …`, `|PQ| = …`, `P:Q = …`, which only say what the value is.

use crate::groups::{depth_delta, group_end, split_top, wraps_whole};
use crate::lexer::Tok;

/// Commands that are operators or constants, never part of a name.
const NOT_NAMES: &[&str] = &[
    "frac", "sqrt", "pi", "cdot", "times", "div", "pm", "mp", "le", "ge", "ne", "in", "cup", "cap",
    "infty", "circ", "sum", "prod", "int", "lim", "approx", "binom", "to", "quad",
];

/// Decorations whose braced argument is a name (`\overline{AB}`, `\vec{v}`).
const DECORATIONS: &[&str] = &[
    "overline",
    "overrightarrow",
    "bar",
    "hat",
    "vec",
    "widehat",
    "tilde",
    "widetilde",
    "mathcal",
];

/// Whether a token can start a name: a letter or a symbolic command (`\theta`, `\angle`).
fn symbolic(t: &Tok) -> bool {
    match t {
        Tok::Letter(_) => true,
        Tok::Cmd(n) => {
            !crate::normalize::FUNCTION_NAMES.contains(&n.as_str())
                && !NOT_NAMES.contains(&n.as_str())
        }
        _ => false,
    }
}

/// End of one name atom starting at `i`: a symbol with subscripts and primes (`a_{n}`,
/// `f'`, `x^{\prime}`), or `None` when no atom starts there.
fn name_atom_end(toks: &[Tok], mut i: usize) -> Option<usize> {
    if !symbolic(toks.get(i)?) {
        return None;
    }
    let decorated = matches!(&toks[i], Tok::Cmd(n) if DECORATIONS.contains(&n.as_str()));
    i += 1;
    if decorated && toks.get(i) == Some(&Tok::Sym('{')) {
        // `\overline{AB}`, `\vec{v}`: a decorated name.
        let end = i + group_end(&toks[i..])?;
        if !is_simple_name(&toks[i + 1..end - 1]) {
            return None;
        }
        i = end;
    }
    loop {
        match toks.get(i) {
            Some(Tok::Sym('_')) => {
                i += 1;
                if toks.get(i) == Some(&Tok::Sym('{')) {
                    let mut depth = 0;
                    while let Some(t) = toks.get(i) {
                        depth += depth_delta(t);
                        i += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                } else {
                    i += 1;
                }
            }
            Some(Tok::Sym('\'')) => i += 1,
            Some(Tok::Sym('^')) if matches!(toks.get(i + 1), Some(Tok::Cmd(n)) if n == "prime") => {
                i += 2
            }
            Some(Tok::Sym('^'))
                if toks.get(i + 1) == Some(&Tok::Sym('{'))
                    && matches!(toks.get(i + 2), Some(Tok::Cmd(n)) if n == "prime") =>
            {
                i += 3;
                while matches!(toks.get(i), Some(Tok::Cmd(n)) if n == "prime") {
                    i += 1;
                }
                i += 1;
            }
            _ => return Some(i.min(toks.len())),
        }
    }
}

/// Most atoms in a product name (`\angle ABC`, `AM`).
const MAX_NAME_ATOMS: usize = 6;

/// Whether tokens are a product of name atoms, optionally applied to arguments: `x`,
/// `a_{n}`, `f(x)`, `\Delta p`, `m_{\max}`, `AM`, `\angle ABC`.
fn is_simple_name(toks: &[Tok]) -> bool {
    let mut i = 0;
    let mut atoms = 0;
    while atoms < MAX_NAME_ATOMS {
        match name_atom_end(toks, i) {
            Some(end) => {
                i = end;
                atoms += 1;
            }
            None => break,
        }
    }
    if atoms == 0 {
        return false;
    }
    i >= toks.len() || (toks.get(i) == Some(&Tok::Sym('(')) && wraps_whole(&toks[i..]))
}

/// Whether tokens only name the answer: a simple name, a tuple of names (`(a, b, c)`), a
/// ratio of names (`\frac{AM}{MB}`, `P:Q`) or the length of one (`|PQ|`).
pub fn is_name(toks: &[Tok]) -> bool {
    if is_simple_name(toks) {
        return true;
    }
    if toks.len() >= 3
        && toks[0] == Tok::Sym('|')
        && toks[toks.len() - 1] == Tok::Sym('|')
        && is_simple_name(&toks[1..toks.len() - 1])
    {
        return true;
    }
    let ratio = split_top(toks, &|t| *t == Tok::Sym(':'));
    if ratio.len() == 2 {
        return ratio.iter().all(|p| is_simple_name(p));
    }
    if wraps_whole(toks) && matches!(toks[0], Tok::Sym('(')) {
        let parts = split_top(&toks[1..toks.len() - 1], &|t| matches!(t, Tok::Sym(',')));
        return parts.len() >= 2 && parts.iter().all(|p| is_simple_name(p));
    }
    if matches!(toks.first(), Some(Tok::Cmd(n)) if n == "frac")
        && toks.get(1) == Some(&Tok::Sym('{'))
    {
        let rest = &toks[1..];
        let Some(split) = group_end(rest) else {
            return false;
        };
        let (num, den) = rest.split_at(split);
        return wraps_whole(num)
            && wraps_whole(den)
            && is_simple_name(&num[1..num.len() - 1])
            && is_simple_name(&den[1..den.len() - 1]);
    }
    false
}
