//! Equivalence of parsed answers.
//!
//! Numbers without variables are compared exactly (big rationals) when possible, otherwise as
//! extended-range floats with error bounds. Expressions with variables are evaluated at
//! several pseudo-random points (the same for gold and candidate). Decimals follow the
//! tolerance rule documented in the crate docs.

use crate::answer::{Answer, Parsed};
use crate::budget::Budget;
use crate::evaluate::{Approx, Env, approx, approx_equal, exact, rational_to_x};
use crate::expr::Expr;
use crate::number::rounds_to;
use crate::xfloat::XFloat;
use num_rational::BigRational;
use num_traits::Signed;
use std::cell::Cell;

/// Evaluation points per comparison of expressions with variables.
const POINTS: usize = 5;
/// Largest set / tuple size compared element by element.
const MAX_ITEMS: usize = 200;

/// Shared state of one comparison.
pub struct Ctx<'a> {
    /// Work budget of the call.
    pub budget: &'a Budget,
    /// Absolute tolerance replacing the decimal rules, if set.
    pub abs_tolerance: Option<f64>,
    /// How the last successful match was made (for the verdict's reason).
    pub how: Cell<&'static str>,
}

/// Compares a gold and a candidate answer.
pub fn parsed_equal(gold: &Parsed, cand: &Parsed, ctx: &Ctx) -> bool {
    if let (Some(g), Some(c)) = (&gold.answer, &cand.answer) {
        if answers_equal(g, c, ctx) {
            return true;
        }
        if let Answer::Text(t) = g {
            // A text gold also matches the candidate's words once brackets and case go.
            let strip = |s: &str| {
                s.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .to_lowercase()
            };
            if !t.is_empty() && strip(t) == strip(&cand.text) {
                ctx.how.set("same text");
                return true;
            }
        }
    }
    if !gold.text.is_empty() && gold.text == cand.text {
        ctx.how.set("same normalised text");
        return true;
    }
    false
}

/// Structural equivalence of two answers.
pub fn answers_equal(g: &Answer, c: &Answer, ctx: &Ctx) -> bool {
    if ctx.budget.is_spent() {
        return false;
    }
    match (g, c) {
        (Answer::Choice(a), Answer::Choice(b)) => same(a == b, "same choice", ctx),
        (Answer::Text(a), Answer::Text(b)) => same(a == b, "same text", ctx),
        (Answer::Expr(a), Answer::Expr(b)) => expr_equal(a, b, ctx),
        (
            Answer::Equation {
                rhs,
                lhs_is_name: true,
                ..
            },
            Answer::Expr(b),
        ) => expr_equal(rhs, b, ctx),
        (
            Answer::Expr(a),
            Answer::Equation {
                rhs,
                lhs_is_name: true,
                ..
            },
        ) => expr_equal(a, rhs, ctx),
        // A response that states what an expression comes to (`a + b = 7`) answers a gold
        // value with its constant right side (as Math-Verify does); a gold equation still
        // needs the whole relation.
        (
            Answer::Expr(a),
            Answer::Equation {
                rhs,
                lhs_is_name: false,
                ..
            },
        ) if is_constant(rhs) => expr_equal(a, rhs, ctx),
        (
            Answer::Equation {
                lhs: gl,
                rhs: gr,
                lhs_is_name: gn,
                lhs_text: gt,
            },
            Answer::Equation {
                lhs: cl,
                rhs: cr,
                lhs_is_name: cn,
                lhs_text: ct,
            },
        ) => {
            if *gn && *cn && gt == ct && expr_equal(gr, cr, ctx) {
                return true;
            }
            equations_equal((gl, gr), (cl, cr), ctx)
        }
        (Answer::Relation(a), Answer::Relation(b)) => same(a == b, "same relation", ctx),
        (Answer::Set(a), Answer::Set(b)) | (Answer::Union(a), Answer::Union(b)) => {
            unordered_equal(a, b, ctx)
        }
        (Answer::Set(a), other) | (Answer::Union(a), other) if a.len() == 1 => {
            answers_equal(&a[0], other, ctx)
        }
        (other, Answer::Set(b)) | (other, Answer::Union(b)) if b.len() == 1 => {
            answers_equal(other, &b[0], ctx)
        }
        (
            Answer::Seq {
                open: o1,
                close: c1,
                items: a,
            },
            Answer::Seq {
                open: o2,
                close: c2,
                items: b,
            },
        ) => {
            let ok = o1 == o2 && c1 == c2 && ordered_equal(a, b, ctx);
            if ok {
                ctx.how.set("same tuple or interval");
            }
            ok
        }
        // A set and a tuple meet as in Math-Verify: a set gold takes the tuple's items in
        // any order (`{1, 3}` = `(3, 1)`), a tuple gold takes the set's items in the order
        // written (`(1, 3)` = `1, 3`, not `3, 1`).
        (
            Answer::Set(a),
            Answer::Seq {
                open: '(',
                close: ')',
                items,
            },
        ) if a.len() == items.len() => unordered_equal(a, items, ctx),
        (
            Answer::Seq {
                open: '(',
                close: ')',
                items,
            },
            Answer::Set(b),
        ) if b.len() == items.len() => {
            let ok = ordered_equal(items, b, ctx);
            if ok {
                ctx.how.set("same items in the same order");
            }
            ok
        }
        (Answer::Matrix(a), Answer::Matrix(b)) => {
            let equal =
                a.len() == b.len() && a.iter().zip(b).all(|(r, s)| ordered_equal(r, s, ctx));
            same(equal, "same matrix", ctx)
        }
        (
            Answer::Matrix(m),
            Answer::Seq {
                open: '(',
                close: ')',
                items,
            },
        ) => vector_equal(m, items, ctx, true),
        (
            Answer::Seq {
                open: '(',
                close: ')',
                items,
            },
            Answer::Matrix(m),
        ) => vector_equal(m, items, ctx, false),
        _ => false,
    }
}

/// `equal`, recording `how` as the reason when it holds.
fn same(equal: bool, how: &'static str, ctx: &Ctx) -> bool {
    if equal {
        ctx.how.set(how);
    }
    equal
}

/// Whether an expression has no variables.
fn is_constant(e: &Expr) -> bool {
    let mut names = Vec::new();
    e.symbols(&mut names);
    names.is_empty()
}

/// A one-row or one-column matrix against a tuple.
fn vector_equal(m: &[Vec<Answer>], items: &[Answer], ctx: &Ctx, matrix_is_gold: bool) -> bool {
    let flat: Vec<&Answer> = if m.len() == 1 {
        m[0].iter().collect()
    } else if m.iter().all(|r| r.len() == 1) {
        m.iter().map(|r| &r[0]).collect()
    } else {
        return false;
    };
    flat.len() == items.len()
        && flat.iter().zip(items).all(|(a, b)| {
            if matrix_is_gold {
                answers_equal(a, b, ctx)
            } else {
                answers_equal(b, a, ctx)
            }
        })
}

fn ordered_equal(a: &[Answer], b: &[Answer], ctx: &Ctx) -> bool {
    a.len() == b.len()
        && a.len() <= MAX_ITEMS
        && a.iter().zip(b).all(|(x, y)| answers_equal(x, y, ctx))
}

/// Multiset equality: every gold item matched by a distinct candidate item.
fn unordered_equal(a: &[Answer], b: &[Answer], ctx: &Ctx) -> bool {
    if a.len() != b.len() || a.len() > MAX_ITEMS {
        return false;
    }
    let mut used = vec![false; b.len()];
    'gold: for x in a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && answers_equal(x, y, ctx) {
                used[j] = true;
                continue 'gold;
            }
        }
        return false;
    }
    ctx.how.set("same collection of answers, in any order");
    true
}

/// Both readings of `Alt` nodes (percent, bases), or the expression itself.
fn readings(e: &Expr) -> Vec<Expr> {
    if e.has_alt() {
        vec![e.choose_alt(false), e.choose_alt(true)]
    } else {
        vec![e.clone()]
    }
}

/// Equivalence of two expressions (any reading of either side).
pub fn expr_equal(g: &Expr, c: &Expr, ctx: &Ctx) -> bool {
    let (gs, cs) = (readings(g), readings(c));
    gs.iter()
        .any(|g| cs.iter().any(|c| single_expr_equal(g, c, ctx)))
}

/// Precision of a decimal literal at the top of an expression: `(value, ulp, significant digits)`.
fn decimal_info(e: &Expr) -> Option<(i64, u32)> {
    match e {
        Expr::Dec { ulp, sig, .. } => Some((*ulp, *sig)),
        Expr::Neg(a) => decimal_info(a),
        Expr::Mul(v) if v.len() == 2 => {
            let Expr::Pow(base, k) = &v[1] else {
                return None;
            };
            let Expr::Num(ten) = &**base else { return None };
            if *ten != BigRational::from_integer(10.into()) {
                return None;
            }
            let k: i64 = match &**k {
                Expr::Num(k) if k.is_integer() => k.to_integer().try_into().ok()?,
                Expr::Neg(inner) => match &**inner {
                    Expr::Num(k) if k.is_integer() => -i64::try_from(k.to_integer()).ok()?,
                    _ => return None,
                },
                _ => return None,
            };
            match &v[0] {
                Expr::Dec { ulp, sig, .. } => Some((ulp + k, *sig)),
                Expr::Num(n) if n.is_integer() => {
                    let digits = n.to_integer().abs().to_string();
                    let trimmed = digits.trim_end_matches('0');
                    Some((
                        k + (digits.len() - trimmed.len()) as i64,
                        trimmed.len().max(1) as u32,
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `0.5 * 10^ulp` as an extended float.
fn half_ulp(ulp: i64) -> XFloat {
    XFloat::exp_of(ulp as f64 * std::f64::consts::LN_10).scale(0.5)
}

fn single_expr_equal(g: &Expr, c: &Expr, ctx: &Ctx) -> bool {
    if g == c {
        ctx.how.set("identical");
        return true;
    }
    let mut names = Vec::new();
    g.symbols(&mut names);
    c.symbols(&mut names);
    if names.is_empty() {
        return constant_equal(g, c, ctx);
    }
    names.sort();
    let mut agreeing = 0;
    for k in 0..POINTS {
        let values: Vec<f64> = names.iter().map(|n| point_value(n, k)).collect();
        let env = Env {
            names: &names,
            values: &values,
        };
        let (Some(a), Some(b)) = (approx(g, &env, ctx.budget), approx(c, &env, ctx.budget)) else {
            return false;
        };
        match approx_equal(a, b) {
            Some(true) => agreeing += 1,
            Some(false) => return false,
            None => {}
        }
    }
    if agreeing >= 2 {
        ctx.how.set("equal at random points");
        true
    } else {
        false
    }
}

/// Gold and candidate without variables.
fn constant_equal(g: &Expr, c: &Expr, ctx: &Ctx) -> bool {
    let gd = decimal_info(g);
    let cd = decimal_info(c);
    if let (Some(ge), Some(ce)) = (exact(g, ctx.budget), exact(c, ctx.budget)) {
        if ge == ce {
            ctx.how.set("exactly equal");
            return true;
        }
        if let Some(tol) = ctx.abs_tolerance {
            let ok = rational_to_x(&(ge - ce)).abs().to_f64() <= tol;
            if ok {
                ctx.how.set("within the given tolerance");
            }
            return ok;
        }
        if let Some((ulp, sig)) = gd {
            let cand_at_least_as_precise = cd.is_none_or(|(cu, _)| cu <= ulp);
            if sig >= 2 && cand_at_least_as_precise && rounds_to(&ce, &ge, ulp) {
                ctx.how.set("rounds to the gold decimal");
                return true;
            }
        }
        if let (Some((ulp, sig)), None) = (cd, gd)
            && sig >= 3
            && rounds_to(&ge, &ce, ulp)
        {
            ctx.how.set("decimal rounding of the exact gold");
            return true;
        }
        return false;
    }
    let env = Env {
        names: &[],
        values: &[],
    };
    let (Some(a), Some(b)) = (approx(g, &env, ctx.budget), approx(c, &env, ctx.budget)) else {
        return false;
    };
    if approx_equal(a, b) == Some(true) {
        ctx.how.set("numerically equal");
        return true;
    }
    if !a.v.is_finite() || !b.v.is_finite() {
        return false;
    }
    let diff = a.v.sub(b.v).abs();
    let noise = a.err.add(b.err).scale(16.0);
    let within = |bound: XFloat| diff.cmp_abs(bound.add(noise)) == std::cmp::Ordering::Less;
    if let Some(tol) = ctx.abs_tolerance {
        let ok = within(XFloat::from_f64(tol));
        if ok {
            ctx.how.set("within the given tolerance");
        }
        return ok;
    }
    if let Some((ulp, sig)) = gd
        && sig >= 2
        && cd.is_none_or(|(cu, _)| cu <= ulp)
        && within(half_ulp(ulp))
    {
        ctx.how.set("rounds to the gold decimal");
        return true;
    }
    if let (Some((ulp, sig)), None) = (cd, gd)
        && sig >= 3
        && within(half_ulp(ulp))
    {
        ctx.how.set("decimal rounding of the exact gold");
        return true;
    }
    false
}

/// `l1 = r1` and `l2 = r2` describe the same relation: `l1 - r1 = k (l2 - r2)` for a constant
/// `k ≠ 0` at every evaluation point.
fn equations_equal(g: (&Expr, &Expr), c: (&Expr, &Expr), ctx: &Ctx) -> bool {
    let dg = Expr::Add(vec![g.0.clone(), Expr::Neg(Box::new(g.1.clone()))]);
    let dc = Expr::Add(vec![c.0.clone(), Expr::Neg(Box::new(c.1.clone()))]);
    let mut names = Vec::new();
    dg.symbols(&mut names);
    dc.symbols(&mut names);
    if names.is_empty() {
        return false;
    }
    names.sort();
    let mut ratio: Option<Approx> = None;
    let mut agreeing = 0;
    for k in 0..POINTS {
        let values: Vec<f64> = names.iter().map(|n| point_value(n, k)).collect();
        let env = Env {
            names: &names,
            values: &values,
        };
        let (Some(a), Some(b)) = (approx(&dg, &env, ctx.budget), approx(&dc, &env, ctx.budget))
        else {
            return false;
        };
        if a.v.is_nan() || b.v.is_nan() || !a.v.is_finite() || !b.v.is_finite() {
            continue;
        }
        let a_zero = a.v.cmp_abs(a.err.scale(16.0)) != std::cmp::Ordering::Greater;
        let b_zero = b.v.cmp_abs(b.err.scale(16.0)) != std::cmp::Ordering::Greater;
        if a_zero != b_zero {
            return false;
        }
        if a_zero {
            continue;
        }
        let r = Approx {
            v: a.v.div(b.v),
            err: a
                .err
                .div(b.v.abs())
                .add(a.v.div(b.v).abs().mul(b.err.div(b.v.abs()))),
        };
        match ratio {
            None => ratio = Some(r),
            Some(r0) => {
                if approx_equal(r0, r) != Some(true) {
                    return false;
                }
            }
        }
        agreeing += 1;
    }
    if agreeing >= 2 {
        ctx.how.set("equivalent equations");
        true
    } else {
        false
    }
}

/// Ranges of the evaluation points (point `k` uses range `k % 5`).
const POINT_RANGES: [(f64, f64); 5] = [(1.1, 2.9), (2.1, 6.9), (1.1, 2.9), (4.1, 11.9), (0.3, 0.9)];

/// Deterministic pseudo-random value of variable `name` at point `k` (see [`POINT_RANGES`]).
fn point_value(name: &str, k: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let (lo, hi) = POINT_RANGES[k % POINT_RANGES.len()];
    lo + (hi - lo) * ((z >> 11) as f64 / (1u64 << 53) as f64)
}
