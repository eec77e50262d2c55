//! One-variable inequalities as the sets they describe: `x > 3` is `(3, \infty)`, `-y > -4`
//! is `y < 4`, `-3 < 2x + 1 < 5` is `(-2, 2)`, `|x - 1| \le 2` is `[-1, 3]` and
//! `2 \le |t| \le 5` is `[-5, -2] \cup [2, 5]`. The variable side must be linear in its one
//! variable, or the absolute value of such; anything else stays a relation.

use crate::answer_form::Answer;
use crate::budget::Budget;
use crate::evaluate::{Env, approx, approx_equal, exact};
use crate::expr::{Expr, Func};
use crate::lexer::Tok;
use crate::names::is_name;
use crate::parse::parse_expr;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

/// One end of an interval: a finite value (`None` is infinite) and whether it is included.
#[derive(Clone, Debug)]
struct End {
    value: Option<Expr>,
    closed: bool,
}

/// An interval of the variable, or of an expression in it.
#[derive(Clone, Debug)]
struct Span {
    lo: End,
    hi: End,
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

/// The set of values an inequality chain (`pos` are its relation signs) allows, as an
/// interval or a union of intervals; `None` when it is not a supported one-variable form.
pub fn solve(toks: &[Tok], pos: &[usize], budget: &Budget) -> Option<Answer> {
    let kinds: Vec<(bool, bool)> = pos
        .iter()
        .map(|&p| ineq_kind(&toks[p]))
        .collect::<Option<_>>()?;
    let mut parts = Vec::with_capacity(pos.len() + 1);
    let mut start = 0;
    for &p in pos {
        parts.push(&toks[start..p]);
        start = p + 1;
    }
    parts.push(&toks[start..]);
    let spans = match kinds.as_slice() {
        [(strict, less)] => one_sided(parts[0], parts[1], *strict, *less, budget)?,
        [(s0, less), (s1, less2)] if less == less2 => {
            let (a, b) = (constant(parts[0], budget)?, constant(parts[2], budget)?);
            let (lo, hi, lo_strict, hi_strict) = if *less {
                (a, b, *s0, *s1)
            } else {
                (b, a, *s1, *s0)
            };
            let span = Span {
                lo: End {
                    value: Some(lo),
                    closed: !lo_strict,
                },
                hi: End {
                    value: Some(hi),
                    closed: !hi_strict,
                },
            };
            preimage(parts[1], span, budget)?
        }
        _ => return None,
    };
    let mut items: Vec<Answer> = spans.into_iter().map(span_answer).collect();
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        Answer::Union(items)
    })
}

/// `left REL right` with one side constant, or both sides in the variable (`3x + 1 < x + 5`
/// is `2x - 4 < 0`).
fn one_sided(
    left: &[Tok],
    right: &[Tok],
    strict: bool,
    less: bool,
    budget: &Budget,
) -> Option<Vec<Span>> {
    let ray = |c: Expr, less: bool| {
        let bound = End {
            value: Some(c),
            closed: !strict,
        };
        let open = End {
            value: None,
            closed: false,
        };
        if less {
            Span {
                lo: open,
                hi: bound,
            }
        } else {
            Span {
                lo: bound,
                hi: open,
            }
        }
    };
    if let Some(c) = constant(right, budget) {
        return preimage(left, ray(c, less), budget);
    }
    if let Some(c) = constant(left, budget) {
        return preimage(right, ray(c, !less), budget);
    }
    let l = parse_expr(left, budget).ok()?;
    let r = parse_expr(right, budget).ok()?;
    let difference = Expr::Add(vec![l, Expr::Neg(Box::new(r))]);
    let zero = Expr::Num(BigRational::zero());
    linear_preimage(&difference, ray(zero, less), budget)
}

/// The constant a token slice stands for (no variables), if any.
fn constant(toks: &[Tok], budget: &Budget) -> Option<Expr> {
    let e = parse_expr(toks, budget).ok()?;
    let mut names = Vec::new();
    e.symbols(&mut names);
    names.is_empty().then_some(e)
}

/// The values of the variable for which the expression `toks` lies in `span`.
fn preimage(toks: &[Tok], span: Span, budget: &Budget) -> Option<Vec<Span>> {
    let parsed = parse_expr(toks, budget).ok();
    if let Some(Expr::Func(Func::Abs, args)) = &parsed
        && let [inner] = args.as_slice()
    {
        let mut out = Vec::new();
        for s in abs_preimage(span, budget)? {
            out.extend(linear_preimage(inner, s, budget)?);
        }
        return Some(out);
    }
    if let Some(f) = &parsed
        && let Some(spans) = linear_preimage(f, span.clone(), budget)
    {
        return Some(spans);
    }
    // `f(x) > 3`, `a_n \ge 1`: a name stands for the quantity itself.
    is_name(toks).then(|| vec![span])
}

/// The sign of a constant: exact when possible, else from its float value.
fn sign(e: &Expr, budget: &Budget) -> Option<i32> {
    if let Some(r) = exact(e, budget) {
        return Some(if r.is_zero() {
            0
        } else if r.is_negative() {
            -1
        } else {
            1
        });
    }
    let env = Env {
        names: &[],
        values: &[],
    };
    let a = approx(e, &env, budget)?;
    if a.v.is_nan() || a.v.cmp_abs(a.err.scale(16.0)) != std::cmp::Ordering::Greater {
        return None;
    }
    Some(a.v.signum())
}

/// The values `g` takes where `|g|` lies in `span`: one interval, two, or `None` when that
/// set is empty or everything.
fn abs_preimage(span: Span, budget: &Budget) -> Option<Vec<Span>> {
    let neg = |e: &Expr| Expr::Neg(Box::new(e.clone()));
    let hi = span.hi.value.as_ref();
    if let Some(h) = hi {
        let s = sign(h, budget)?;
        if s < 0 || (s == 0 && !span.hi.closed) {
            return None;
        }
    }
    // Whether the lower bound cuts out a middle piece (`|g| > a` with a >= 0).
    let cuts = match &span.lo.value {
        None => false,
        Some(l) => {
            let s = sign(l, budget)?;
            s > 0 || (s == 0 && !span.lo.closed)
        }
    };
    if !cuts {
        let h = hi?;
        return Some(vec![Span {
            lo: End {
                value: Some(neg(h)),
                closed: span.hi.closed,
            },
            hi: span.hi.clone(),
        }]);
    }
    let low = span.lo.value.as_ref()?;
    let left = Span {
        lo: End {
            value: hi.map(neg),
            closed: span.hi.closed && hi.is_some(),
        },
        hi: End {
            value: Some(neg(low)),
            closed: span.lo.closed,
        },
    };
    let right = Span {
        lo: span.lo.clone(),
        hi: span.hi.clone(),
    };
    Some(vec![left, right])
}

/// Test points for the linearity check (exact rationals).
const CHECK_POINTS: [(i64, i64); 3] = [(2, 1), (-3, 2), (7, 3)];

/// The values of the only variable of `f` for which `f` lies in `span`, when `f` is linear
/// in it (`slope * v + offset`, slope not zero).
fn linear_preimage(f: &Expr, span: Span, budget: &Budget) -> Option<Vec<Span>> {
    let mut names = Vec::new();
    f.symbols(&mut names);
    let [v] = names.as_slice() else {
        return None;
    };
    let at = |t: Expr| f.substitute(v, &t);
    let num = |p: i64, q: i64| Expr::Num(BigRational::new(BigInt::from(p), BigInt::from(q)));
    let offset = at(num(0, 1));
    let slope = Expr::Add(vec![at(num(1, 1)), Expr::Neg(Box::new(offset.clone()))]);
    let env = Env {
        names: &[],
        values: &[],
    };
    for (p, q) in CHECK_POINTS {
        let line = Expr::Add(vec![
            offset.clone(),
            Expr::Mul(vec![num(p, q), slope.clone()]),
        ]);
        let (a, b) = (
            approx(&at(num(p, q)), &env, budget)?,
            approx(&line, &env, budget)?,
        );
        if approx_equal(a, b) != Some(true) {
            return None;
        }
    }
    let slope_sign = sign(&slope, budget)?;
    if slope_sign == 0 {
        return None;
    }
    let back = |end: End| End {
        value: end.value.map(|b| {
            let shifted = Expr::Add(vec![b, Expr::Neg(Box::new(offset.clone()))]);
            let value = Expr::Div(Box::new(shifted), Box::new(slope.clone()));
            exact(&value, budget).map_or(value, Expr::Num)
        }),
        closed: end.closed,
    };
    let (lo, hi) = (back(span.lo), back(span.hi));
    Some(vec![if slope_sign > 0 {
        Span { lo, hi }
    } else {
        Span { lo: hi, hi: lo }
    }])
}

/// An interval as an answer: `Seq` with its brackets, `±\infty` for open ends.
fn span_answer(s: Span) -> Answer {
    let end = |e: End, inf: Expr| match e.value {
        Some(v) => (Answer::Expr(v), e.closed),
        None => (Answer::Expr(inf), false),
    };
    let (lo, lo_closed) = end(s.lo, Expr::Neg(Box::new(Expr::Inf)));
    let (hi, hi_closed) = end(s.hi, Expr::Inf);
    Answer::Seq {
        open: if lo_closed { '[' } else { '(' },
        close: if hi_closed { ']' } else { ')' },
        items: vec![lo, hi],
    }
}
