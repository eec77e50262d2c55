//! Top-level answer structure: sets and multiple answers, tuples, intervals and unions,
//! matrices, equations, inequalities (as intervals), text and multiple-choice letters.

use crate::budget::{Budget, MAX_ANSWER_BYTES, MAX_DEPTH};
use crate::expr::Expr;
use crate::lexer::{Tok, lex, render};
use crate::normalize::{normalize, whole_text_group};
use crate::number::number_word;
use crate::parse::parse_expr;

/// Most `±` signs expanded in one expression.
const MAX_PM: usize = 3;

/// A structured answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A single expression.
    Expr(Expr),
    /// `lhs = rhs`; `lhs_is_name` when the left side only names the answer (`x`, `f(x)`, `a_n`).
    Equation {
        /// Left side.
        lhs: Expr,
        /// Right side.
        rhs: Expr,
        /// Whether the left side is just a name.
        lhs_is_name: bool,
        /// The left side as written (canonical text).
        lhs_text: String,
    },
    /// A relation that is compared as text (`x \ne 3`, multi-variable inequalities).
    Relation(String),
    /// A bracketed ordered list: tuple, vector or interval (`(1,2]`).
    Seq {
        /// Opening bracket.
        open: char,
        /// Closing bracket.
        close: char,
        /// Items in order.
        items: Vec<Answer>,
    },
    /// An unordered collection (`\{1,2\}` or `1, 2` as multiple answers).
    Set(Vec<Answer>),
    /// A union of intervals and sets.
    Union(Vec<Answer>),
    /// A matrix (rows of cells).
    Matrix(Vec<Vec<Answer>>),
    /// A text answer, lower-cased with spaces removed.
    Text(String),
    /// A multiple-choice letter.
    Choice(char),
}

/// A parsed answer with its canonical text (for text fallbacks and reports).
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The structure, or `None` when parsing failed.
    pub answer: Option<Answer>,
    /// Normalised text with spaces removed.
    pub text: String,
    /// Why parsing failed, if it did.
    pub error: Option<String>,
}

/// Canonical text form: spaces removed, lower case for words.
pub fn compact_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Reads a multiple-choice letter: `B`, `(B)`, `B)`.
fn choice_letter(s: &str) -> Option<char> {
    let t = s.trim();
    let inner = t.strip_prefix('(').unwrap_or(t);
    let inner = inner.strip_suffix(')').unwrap_or(inner).trim();
    let mut chars = inner.chars();
    let c = chars.next()?;
    (chars.next().is_none() && ('A'..='E').contains(&c)).then_some(c)
}

/// Whether the string reads as words rather than mathematics.
fn is_words(s: &str) -> bool {
    let t = s.trim();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 3
        && !t.contains('\\')
        && t.chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'')
        && t.split_whitespace().any(|w| w.len() >= 3)
}

/// Drops trailing unit words after a value: `18 dollars` → `18`, `5 cm` → `5`.
fn strip_trailing_words(s: &str) -> String {
    let is_unit = |w: &str| {
        w.len() >= 2
            && w.chars().all(|c| c.is_ascii_alphabetic() || c == '.')
            && !crate::normalize::FUNCTION_NAMES.contains(&w)
            && !matches!(w, "pi" | "or" | "and" | "infty")
    };
    let mut head = s.trim_end();
    let mut words = 0;
    while let Some(p) = head.rfind(' ') {
        if !is_unit(&head[p + 1..]) {
            break;
        }
        head = head[..p].trim_end();
        words += 1;
    }
    if words > 0
        && head
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_digit() || c == '}')
    {
        head.to_string()
    } else {
        s.to_string()
    }
}

/// Parses an answer string (gold or extracted) into its structure.
pub fn parse_answer(raw: &str, budget: &Budget) -> Parsed {
    if raw.len() > MAX_ANSWER_BYTES {
        return Parsed {
            answer: None,
            text: String::new(),
            error: Some("answer too long to parse".into()),
        };
    }
    let ok = |answer: Answer, text: String| Parsed {
        answer: Some(answer),
        text,
        error: None,
    };
    let mut source = raw.to_string();
    if let Some(content) = whole_text_group(raw) {
        if let Some(c) = choice_letter(&content) {
            return ok(Answer::Choice(c), content);
        }
        let inner = normalize(&content);
        if is_words(&inner)
            || inner.chars().any(|c| c.is_alphabetic())
                && !inner.chars().any(|c| c.is_ascii_digit())
        {
            if let Some(n) = number_word(&inner) {
                return ok(Answer::Expr(Expr::Num(n)), inner);
            }
            let text = compact_text(&inner.to_lowercase());
            return ok(Answer::Text(text.clone()), text);
        }
        source = content;
    }
    let norm = normalize(&source);
    let text = compact_text(&norm);
    if text.is_empty() {
        return Parsed {
            answer: None,
            text,
            error: Some("empty answer".into()),
        };
    }
    if let Some(c) = choice_letter(&norm) {
        return ok(Answer::Choice(c), text);
    }
    if let Some(n) = number_word(&norm) {
        return ok(Answer::Expr(Expr::Num(n)), text);
    }
    let norm = strip_trailing_words(&norm);
    if is_words(&norm) {
        let t = compact_text(&norm.to_lowercase());
        return ok(Answer::Text(t.clone()), t);
    }
    let toks = match lex(&norm, budget) {
        Ok(t) => t,
        Err(e) => {
            return Parsed {
                answer: None,
                text,
                error: Some(e.0),
            };
        }
    };
    match structure(&toks, budget, 0) {
        Ok(a) => ok(a, text),
        Err(e) => Parsed {
            answer: None,
            text,
            error: Some(e),
        },
    }
}

/// Bracket depth change of a token.
fn depth_delta(t: &Tok) -> i32 {
    match t {
        Tok::Sym('(' | '[' | '{') | Tok::LSet | Tok::Begin(_) => 1,
        Tok::Sym(')' | ']' | '}') | Tok::RSet | Tok::End(_) => -1,
        Tok::Cmd(n) if n == "langle" || n == "lfloor" || n == "lceil" => 1,
        Tok::Cmd(n) if n == "rangle" || n == "rfloor" || n == "rceil" => -1,
        _ => 0,
    }
}

/// Splits at depth-0 tokens satisfying `is_sep`.
fn split_top<'t>(toks: &'t [Tok], is_sep: &dyn Fn(&Tok) -> bool) -> Vec<&'t [Tok]> {
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
fn wraps_whole(toks: &[Tok]) -> bool {
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

/// Commands that are operators or constants, never part of a name.
const NOT_NAMES: &[&str] = &[
    "frac", "sqrt", "pi", "cdot", "times", "div", "pm", "mp", "le", "ge", "ne", "in", "cup", "cap",
    "infty", "circ", "sum", "prod", "int", "lim", "approx", "binom", "to", "quad",
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
    i += 1;
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

/// Whether tokens only name the answer: a simple name, a tuple of names (`(a, b, c)`) or a
/// ratio of names (`\frac{AM}{MB}`).
fn is_name(toks: &[Tok]) -> bool {
    if is_simple_name(toks) {
        return true;
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

/// Index just past the bracket group that starts `toks`, if it closes.
fn group_end(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate() {
        depth += depth_delta(t);
        if depth == 0 {
            return Some(i + 1);
        }
    }
    None
}

fn is_relation(t: &Tok) -> bool {
    match t {
        Tok::Sym('=' | '<' | '>') => true,
        Tok::Cmd(n) => matches!(
            n.as_str(),
            "le" | "ge" | "ne" | "approx" | "sim" | "simeq" | "equiv" | "cong"
        ),
        _ => false,
    }
}

fn expr_of(toks: &[Tok], budget: &Budget) -> Result<Expr, String> {
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    parse_expr(toks, budget).map_err(|e| e.0)
}

/// An expression answer, expanding `±` into a set.
fn expr_answer(e: Expr) -> Answer {
    if e.has_pm() {
        Answer::Set(e.expand_pm(MAX_PM).into_iter().map(Answer::Expr).collect())
    } else {
        Answer::Expr(e)
    }
}

/// Builds the structure of a token slice.
fn structure(toks: &[Tok], budget: &Budget, depth: usize) -> Result<Answer, String> {
    if depth > MAX_DEPTH {
        return Err("answer nested too deeply".into());
    }
    budget.tick(1).map_err(|_| "budget spent".to_string())?;
    let d = depth + 1;
    let toks = match toks.last() {
        Some(Tok::Sym('.' | ',' | ';')) => &toks[..toks.len() - 1],
        _ => toks,
    };
    if toks.is_empty() {
        return Err("empty answer".into());
    }
    // `x \in S`: the answer is S.
    let in_parts = split_top(toks, &|t| matches!(t, Tok::Cmd(n) if n == "in"));
    if in_parts.len() == 2 && is_name(in_parts[0]) {
        return structure(in_parts[1], budget, d);
    }
    let unions = split_top(toks, &|t| matches!(t, Tok::Cmd(n) if n == "cup"));
    if unions.len() > 1 {
        return Ok(Answer::Union(
            unions
                .into_iter()
                .map(|p| structure(p, budget, d))
                .collect::<Result<_, _>>()?,
        ));
    }
    let items = split_top(toks, &|t| matches!(t, Tok::Sym(',' | ';')));
    if items.len() > 1 {
        let mut out = Vec::new();
        for p in items {
            if p.is_empty() {
                continue;
            }
            match structure(p, budget, d)? {
                Answer::Set(inner) if !matches!(p.first(), Some(Tok::LSet)) => out.extend(inner),
                a => out.push(a),
            }
        }
        return Ok(Answer::Set(out));
    }
    let first = &toks[0];
    let last = &toks[toks.len() - 1];
    if wraps_whole(toks) {
        let inner = &toks[1..toks.len() - 1];
        match (first, last) {
            (Tok::LSet, Tok::RSet) => {
                let parts = split_top(inner, &|t| matches!(t, Tok::Sym(',' | ';')));
                let mut out = Vec::new();
                for p in parts.into_iter().filter(|p| !p.is_empty()) {
                    match structure(p, budget, d)? {
                        Answer::Set(inner) => out.extend(inner),
                        a => out.push(a),
                    }
                }
                return Ok(Answer::Set(out));
            }
            (Tok::Begin(_), Tok::End(_)) => {
                let mut rows = Vec::new();
                for row in split_top(inner, &|t| *t == Tok::RowSep) {
                    if row.is_empty() {
                        continue;
                    }
                    let cells = split_top(row, &|t| *t == Tok::Sym('&'));
                    rows.push(
                        cells
                            .into_iter()
                            .map(|c| structure(c, budget, d))
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                return Ok(Answer::Matrix(rows));
            }
            (Tok::Sym(o @ ('(' | '[')), Tok::Sym(c @ (')' | ']'))) => {
                let mut parts = split_top(inner, &|t| *t == Tok::Sym(','));
                if parts.len() == 1 {
                    // `(1; -3; 5)`: semicolons separate the items.
                    parts = split_top(inner, &|t| *t == Tok::Sym(';'));
                }
                if parts.len() >= 2 {
                    let items = parts
                        .into_iter()
                        .map(|p| structure(p, budget, d))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(Answer::Seq {
                        open: *o,
                        close: *c,
                        items,
                    });
                }
                if *o == '(' && *c == ')' && matches!(inner.first(), Some(Tok::Begin(_))) {
                    return structure(inner, budget, d);
                }
            }
            (Tok::Cmd(o), Tok::Cmd(c)) if o == "langle" && c == "rangle" => {
                let parts = split_top(inner, &|t| *t == Tok::Sym(','));
                let items = parts
                    .into_iter()
                    .map(|p| structure(p, budget, d))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Answer::Seq {
                    open: '(',
                    close: ')',
                    items,
                });
            }
            _ => {}
        }
    }
    let rel_positions: Vec<usize> = {
        let mut depth_now = 0;
        let mut v = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            if depth_now == 0 && is_relation(t) {
                v.push(i);
            }
            depth_now += depth_delta(t);
        }
        v
    };
    if !rel_positions.is_empty() {
        return relation(toks, &rel_positions, budget, d);
    }
    Ok(expr_answer(expr_of(toks, budget)?))
}

/// Equations and inequalities.
fn relation(toks: &[Tok], pos: &[usize], budget: &Budget, depth: usize) -> Result<Answer, String> {
    let all_eq = pos.iter().all(|&p| {
        matches!(&toks[p], Tok::Sym('=') | Tok::Cmd(_))
            && !matches!(&toks[p], Tok::Cmd(n) if n == "le" || n == "ge" || n == "ne")
    });
    if all_eq {
        let (first, last) = (pos[0], pos[pos.len() - 1]);
        let lhs_toks = &toks[..first];
        let rhs_toks = &toks[last + 1..];
        let lhs_is_name = is_name(lhs_toks);
        if !lhs_is_name && !rhs_toks.is_empty() {
            // `5 + 5 + 1 = 11` and unnamed chains `a = b = c`: the answer is the last side
            // (`1 = k` stays an equation).
            let constant = |t: &[Tok]| {
                expr_of(t, budget).is_ok_and(|e| {
                    let mut syms = Vec::new();
                    e.symbols(&mut syms);
                    syms.is_empty()
                })
            };
            if first != last || constant(lhs_toks) && constant(rhs_toks) {
                return structure(rhs_toks, budget, depth + 1);
            }
        }
        if lhs_is_name && first == last {
            // `v = (1, 2)`, `S = \{1, 2\}`: a name for a structured answer.
            let structured = structure(rhs_toks, budget, depth + 1)?;
            if !matches!(structured, Answer::Expr(_)) {
                return Ok(structured);
            }
        }
        let rhs = expr_of(rhs_toks, budget)?;
        let lhs_text = render(lhs_toks);
        let lhs = match expr_of(lhs_toks, budget) {
            Ok(l) => l,
            Err(_) if lhs_is_name => Expr::Sym(lhs_text.clone()),
            Err(e) => return Err(e),
        };
        if rhs.has_pm() && lhs_is_name {
            let items = rhs
                .expand_pm(MAX_PM)
                .into_iter()
                .map(|r| Answer::Equation {
                    lhs: lhs.clone(),
                    rhs: r,
                    lhs_is_name,
                    lhs_text: lhs_text.clone(),
                })
                .collect();
            return Ok(Answer::Set(items));
        }
        return Ok(Answer::Equation {
            lhs,
            rhs,
            lhs_is_name,
            lhs_text,
        });
    }
    if let Some(interval) = inequality_interval(toks, pos, budget) {
        return Ok(interval);
    }
    Ok(Answer::Relation(render(toks)))
}

/// Direction of an inequality sign: `Some((strict, less))`.
fn ineq_kind(t: &Tok) -> Option<(bool, bool)> {
    match t {
        Tok::Sym('<') => Some((true, true)),
        Tok::Sym('>') => Some((true, false)),
        Tok::Cmd(n) if n == "le" => Some((false, true)),
        Tok::Cmd(n) if n == "ge" => Some((false, false)),
        _ => None,
    }
}

/// `x > a`, `a \le x < b` (one named variable, constant bounds) as an interval.
fn inequality_interval(toks: &[Tok], pos: &[usize], budget: &Budget) -> Option<Answer> {
    let kinds: Vec<(bool, bool)> = pos
        .iter()
        .map(|&p| ineq_kind(&toks[p]))
        .collect::<Option<_>>()?;
    let neg_inf = || Answer::Expr(Expr::Neg(Box::new(Expr::Inf)));
    let constant = |t: &[Tok]| -> Option<Answer> {
        let e = expr_of(t, budget).ok()?;
        let mut syms = Vec::new();
        e.symbols(&mut syms);
        syms.is_empty().then_some(Answer::Expr(e))
    };
    match pos.len() {
        1 => {
            let (strict, less) = kinds[0];
            let (left, right) = (&toks[..pos[0]], &toks[pos[0] + 1..]);
            // Normalise to `x < a` / `x > a` with the variable on the left.
            let (bound, var_less) = if is_name(left) {
                (constant(right)?, less)
            } else if is_name(right) {
                (constant(left)?, !less)
            } else {
                return None;
            };
            let (open, close, items) = if var_less {
                ('(', if strict { ')' } else { ']' }, vec![neg_inf(), bound])
            } else {
                (
                    if strict { '(' } else { '[' },
                    ')',
                    vec![bound, Answer::Expr(Expr::Inf)],
                )
            };
            Some(Answer::Seq { open, close, items })
        }
        2 => {
            let (a, x, b) = (
                &toks[..pos[0]],
                &toks[pos[0] + 1..pos[1]],
                &toks[pos[1] + 1..],
            );
            if !is_name(x) || kinds[0].1 != kinds[1].1 {
                return None;
            }
            let (lo, hi, lo_strict, hi_strict) = if kinds[0].1 {
                (constant(a)?, constant(b)?, kinds[0].0, kinds[1].0)
            } else {
                (constant(b)?, constant(a)?, kinds[1].0, kinds[0].0)
            };
            Some(Answer::Seq {
                open: if lo_strict { '(' } else { '[' },
                close: if hi_strict { ')' } else { ']' },
                items: vec![lo, hi],
            })
        }
        _ => None,
    }
}
