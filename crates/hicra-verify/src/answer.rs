//! Top-level answer structure: sets and multiple answers, tuples, intervals and unions,
//! matrices, equations, inequalities (as intervals), text and multiple-choice letters.

pub use crate::answer_form::Answer;
use crate::budget::{Budget, MAX_ANSWER_BYTES, MAX_DEPTH};
use crate::expr::Expr;
use crate::groups::{depth_delta, split_top, wraps_whole};
use crate::lexer::{Tok, lex, render};
use crate::names::is_name;
use crate::normalize::{normalize, whole_text_group};
use crate::number::number_word;
use crate::parse::parse_expr;

/// Most `±` signs expanded in one expression.
const MAX_PM: usize = 3;

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

/// The item that marks a list as going on (`1, 2, 3, …`).
const ELLIPSIS: &str = "...";

/// The listed part of a list that ends in an ellipsis (`1, 2, 3, \ldots` gives `1, 2, 3`).
fn open_list(raw: &str) -> Option<&str> {
    let t = raw.trim().trim_matches('$').trim();
    let t = t
        .strip_suffix('.')
        .filter(|r| !r.ends_with('.'))
        .unwrap_or(t)
        .trim_end();
    ["...", "\\ldots", "\\dots", "\\cdots", "\u{2026}"]
        .iter()
        .find_map(|e| t.strip_suffix(e))
        .map(str::trim_end)
        .and_then(|head| head.strip_suffix(','))
        .filter(|head| !head.trim().is_empty() && open_list(head).is_none())
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
    if let Some(head) = open_list(raw) {
        // `1, 2, 3, \ldots` goes on: it only equals a list that goes on the same way.
        let mut parsed = parse_answer(head, budget);
        parsed.answer = parsed.answer.map(|a| {
            let mut items = match a {
                Answer::Set(items) => items,
                other => vec![other],
            };
            items.push(Answer::Text(ELLIPSIS.into()));
            Answer::Set(items)
        });
        parsed.text.push_str(ELLIPSIS);
        return parsed;
    }
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
        return Ok(crate::assignments::solutions(out));
    }
    let first = &toks[0];
    let last = &toks[toks.len() - 1];
    if wraps_whole(toks) {
        let inner = &toks[1..toks.len() - 1];
        match (first, last) {
            (Tok::LSet, Tok::RSet) => return set_of(inner, budget, d),
            // `{2, 4}` written without backslashes is a set too; `{5}` is a group.
            (Tok::Sym('{'), Tok::Sym('}')) => {
                return if split_top(inner, &|t| *t == Tok::Sym(',')).len() > 1 {
                    set_of(inner, budget, d)
                } else {
                    structure(inner, budget, d)
                };
            }
            (Tok::Begin(_), Tok::End(_)) => {
                return crate::matrix::literal(inner, &|c| structure(c, budget, d));
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
                // `\left[ \begin{array}{cc} … \end{array} \right]`: brackets around a matrix.
                if matches!(inner.first(), Some(Tok::Begin(_))) && wraps_whole(inner) {
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
    if let Some(m) = crate::matrix::arithmetic(toks, budget) {
        return m;
    }
    Ok(expr_answer(expr_of(toks, budget)?))
}

/// The items of a set's content (split at `,` and `;`), nested lists flattened.
fn set_of(inner: &[Tok], budget: &Budget, depth: usize) -> Result<Answer, String> {
    let mut out = Vec::new();
    for p in split_top(inner, &|t| matches!(t, Tok::Sym(',' | ';'))) {
        if p.is_empty() {
            continue;
        }
        match structure(p, budget, depth)? {
            Answer::Set(inner) => out.extend(inner),
            a => out.push(a),
        }
    }
    Ok(Answer::Set(out))
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
    if let Some(interval) = crate::inequality::solve(toks, pos, budget) {
        return Ok(interval);
    }
    Ok(Answer::Relation(render(toks)))
}
