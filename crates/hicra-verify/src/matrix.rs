//! Matrix answers: literal environments (`pmatrix`, `bmatrix`, `vmatrix`, `array` with its
//! column specification, …) whose cells are split at `&` and rows at `\\`, and sums,
//! differences, scalar multiples and products of literal matrices, evaluated cell by cell
//! (as expressions) before comparing.

use crate::answer_form::Answer;
use crate::budget::Budget;
use crate::expr::Expr;
use crate::groups::{depth_delta, group_end, split_top, wraps_whole};
use crate::lexer::Tok;
use crate::parse::parse_expr;

/// Most cells of a matrix taking part in arithmetic.
const MAX_CELLS: usize = 400;

/// The matrix written by the content of a `\begin{…}…\end{…}` environment, each cell read
/// by `cell`.
pub fn literal(
    inner: &[Tok],
    cell: &dyn Fn(&[Tok]) -> Result<Answer, String>,
) -> Result<Answer, String> {
    let mut rows = Vec::new();
    for row in split_top(inner, &|t| *t == Tok::RowSep) {
        if row.is_empty() {
            continue;
        }
        let cells = split_top(row, &|t| *t == Tok::Sym('&'));
        rows.push(cells.into_iter().map(cell).collect::<Result<Vec<_>, _>>()?);
    }
    Ok(Answer::Matrix(rows))
}

/// A value in matrix arithmetic.
enum Value {
    Scalar(Expr),
    Matrix(Vec<Vec<Expr>>),
}

/// The matrix a literal environment (possibly in brackets) at the start of `toks` writes,
/// and the tokens it spans.
fn matrix_at(toks: &[Tok], budget: &Budget) -> Option<(Vec<Vec<Expr>>, usize)> {
    let end = group_end(toks)?;
    let group = &toks[..end];
    let env = match group.first()? {
        Tok::Begin(_) => group,
        Tok::Sym('(' | '[') if wraps_whole(&group[1..end - 1]) => &group[1..end - 1],
        _ => return None,
    };
    if !matches!(env.first(), Some(Tok::Begin(_))) {
        return None;
    }
    let mut rows = Vec::new();
    let mut cells = 0;
    for row in split_top(&env[1..env.len() - 1], &|t| *t == Tok::RowSep) {
        if row.is_empty() {
            continue;
        }
        let parsed = split_top(row, &|t| *t == Tok::Sym('&'))
            .into_iter()
            .map(|c| parse_expr(c, budget).ok())
            .collect::<Option<Vec<Expr>>>()?;
        cells += parsed.len();
        rows.push(parsed);
    }
    let width = rows.first()?.len();
    (cells <= MAX_CELLS && rows.iter().all(|r| r.len() == width)).then_some((rows, end))
}

/// The factors of one term, multiplied left to right.
fn term(toks: &[Tok], budget: &Budget) -> Option<Value> {
    let mut factors = Vec::new();
    let mut scalar_start = None;
    let mut i = 0;
    let flush = |from: Option<usize>, to: usize, out: &mut Vec<Value>| -> Option<()> {
        if let Some(s) = from {
            out.push(Value::Scalar(parse_expr(&toks[s..to], budget).ok()?));
        }
        Some(())
    };
    while i < toks.len() {
        if let Some((m, len)) = matrix_at(&toks[i..], budget) {
            flush(scalar_start.take(), i, &mut factors)?;
            factors.push(Value::Matrix(m));
            i += len;
            continue;
        }
        match &toks[i] {
            Tok::Sym('*') => flush(scalar_start.take(), i, &mut factors)?,
            Tok::Cmd(n) if n == "cdot" || n == "times" => {
                flush(scalar_start.take(), i, &mut factors)?
            }
            _ => {
                scalar_start.get_or_insert(i);
                // Skip a bracket group as one piece of the scalar.
                if depth_delta(&toks[i]) > 0 {
                    i += group_end(&toks[i..])?;
                    continue;
                }
            }
        }
        i += 1;
    }
    flush(scalar_start, toks.len(), &mut factors)?;
    let mut acc: Option<Value> = None;
    for f in factors {
        acc = Some(match acc {
            None => f,
            Some(a) => product(a, f, budget)?,
        });
    }
    acc
}

/// `a * b` for scalars and matrices.
fn product(a: Value, b: Value, budget: &Budget) -> Option<Value> {
    let scale = |k: &Expr, m: Vec<Vec<Expr>>| {
        m.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| Expr::Mul(vec![k.clone(), c]))
                    .collect()
            })
            .collect()
    };
    Some(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(Expr::Mul(vec![x, y])),
        (Value::Scalar(k), Value::Matrix(m)) | (Value::Matrix(m), Value::Scalar(k)) => {
            Value::Matrix(scale(&k, m))
        }
        (Value::Matrix(x), Value::Matrix(y)) => {
            let inner = y.len();
            if x.iter().any(|r| r.len() != inner) {
                return None;
            }
            let cols = y.first()?.len();
            budget.tick((x.len() * cols * inner) as u64).ok()?;
            let cell = |r: usize, c: usize| {
                Expr::Add(
                    (0..inner)
                        .map(|k| Expr::Mul(vec![x[r][k].clone(), y[k][c].clone()]))
                        .collect(),
                )
            };
            Value::Matrix(
                (0..x.len())
                    .map(|r| (0..cols).map(|c| cell(r, c)).collect())
                    .collect(),
            )
        }
    })
}

/// Whether the `-`/`+` at `i` separates two terms (not a sign after an operator).
fn is_term_break(toks: &[Tok], i: usize) -> bool {
    i > 0
        && !matches!(
            &toks[i - 1],
            Tok::Sym('*' | '+' | '-' | '(' | '[' | '{' | '^' | '_')
        )
        && !matches!(&toks[i - 1], Tok::Cmd(n) if n == "cdot" || n == "times")
}

/// A sum, difference, scalar multiple or product of literal matrices as the matrix it
/// evaluates to; `None` when `toks` is not such an expression (no literal matrix at the top
/// level, shapes that do not fit, a matrix added to a number).
pub fn arithmetic(toks: &[Tok], budget: &Budget) -> Option<Result<Answer, String>> {
    let mut depth = 0;
    let mut has_matrix = false;
    let mut terms: Vec<(bool, &[Tok])> = Vec::new();
    let (mut start, mut negative) = (0, false);
    for (i, t) in toks.iter().enumerate() {
        if depth == 0 {
            has_matrix |= matches!(t, Tok::Begin(_));
            if matches!(t, Tok::Sym('+' | '-')) {
                if is_term_break(toks, i) {
                    terms.push((negative, &toks[start..i]));
                    negative = *t == Tok::Sym('-');
                    start = i + 1;
                } else if i == start {
                    negative ^= *t == Tok::Sym('-');
                    start = i + 1;
                }
            }
        }
        depth += depth_delta(t);
    }
    terms.push((negative, &toks[start..]));
    if !has_matrix {
        return None;
    }
    let mut sum: Option<Vec<Vec<Expr>>> = None;
    for (negative, t) in terms {
        let Value::Matrix(m) = term(t, budget)? else {
            return None;
        };
        let m: Vec<Vec<Expr>> = if negative {
            m.into_iter()
                .map(|r| r.into_iter().map(|c| Expr::Neg(Box::new(c))).collect())
                .collect()
        } else {
            m
        };
        sum = Some(match sum {
            None => m,
            Some(s) => {
                let same_shape =
                    s.len() == m.len() && s.iter().zip(&m).all(|(a, b)| a.len() == b.len());
                if !same_shape {
                    return None;
                }
                s.into_iter()
                    .zip(m)
                    .map(|(a, b)| {
                        a.into_iter()
                            .zip(b)
                            .map(|(x, y)| Expr::Add(vec![x, y]))
                            .collect()
                    })
                    .collect()
            }
        });
    }
    let rows = sum?
        .into_iter()
        .map(|r| r.into_iter().map(Answer::Expr).collect())
        .collect();
    Some(Ok(Answer::Matrix(rows)))
}
