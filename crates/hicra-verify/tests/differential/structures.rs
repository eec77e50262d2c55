//! The structured families of the differential test's answer forms: relations up to
//! equivalence, matrices, tuples and sets, ratios, several boxes and pairs of equations.

use super::forms::{Form, form, inline};
use super::{fraction, integer, top_level_items};

/// Inequalities up to equivalence, built from an integer gold `n`.
pub fn relations(g: &str, out: &mut Vec<Form>) {
    let Some(n) = integer(g).filter(|n| n.abs() < 1_000_000) else {
        return;
    };
    let lt = inline(&format!("y < {n}"));
    out.push(form(
        "relation-negated",
        lt.clone(),
        format!("$-y > {}$", -n),
        true,
    ));
    out.push(form(
        "relation-linear",
        lt.clone(),
        format!("$2y - {} < 0$", 2 * n),
        true,
    ));
    out.push(form(
        "relation-negated",
        lt,
        format!("$-y < {}$", -n),
        false,
    ));
    let le = inline(&format!("y \\le {n}"));
    out.push(form(
        "relation-negated-closed",
        le.clone(),
        format!("$-y \\ge {}$", -n),
        true,
    ));
    out.push(form(
        "relation-negated-closed",
        le,
        format!("$-y > {}$", -n),
        false,
    ));
    let a = n.abs() % 50 + 1;
    let b = a + n.abs() % 7 + 1;
    let ring = inline(&format!("t \\in [-{b},-{a}] \\cup [{a},{b}]"));
    out.push(form(
        "relation-abs-ring",
        ring.clone(),
        format!("$ {a} \\le |t| \\le {b} $"),
        true,
    ));
    out.push(form(
        "relation-abs-ring",
        ring,
        format!("$ {a} < |t| \\le {b} $"),
        false,
    ));
    let ball = inline(&format!("[-{b}, {b}]"));
    out.push(form(
        "relation-abs-ball",
        ball.clone(),
        format!("$|t| \\le {b}$"),
        true,
    ));
    out.push(form(
        "relation-abs-ball",
        ball,
        format!("$|t| < {b}$"),
        false,
    ));
    let open = inline(&format!("({n}, {})", n + 2 * a));
    let chain = format!("${} < 2x + 1 < {}$", 2 * n + 1, 2 * (n + 2 * a) + 1);
    out.push(form("relation-linear-chain", open.clone(), chain, true));
    out.push(form(
        "relation-linear-chain",
        open,
        format!("${} < 2x < {}$", 2 * n + 1, 2 * (n + 2 * a) + 1),
        false,
    ));
}

/// The rows and cells of a `pmatrix` gold.
fn matrix_cells(g: &str) -> Option<Vec<Vec<String>>> {
    let inner = g
        .trim()
        .strip_prefix("\\begin{pmatrix}")?
        .strip_suffix("\\end{pmatrix}")?;
    let rows: Vec<Vec<String>> = inner
        .split("\\\\")
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.split('&').map(|c| c.trim().to_string()).collect())
        .collect();
    let width = rows.first()?.len();
    rows.iter().all(|r| r.len() == width).then_some(rows)
}

/// A matrix in an environment, written from its cells.
fn matrix(env: &str, cells: &[Vec<String>]) -> String {
    let rows: Vec<String> = cells.iter().map(|r| r.join(" & ")).collect();
    format!("\\begin{{{env}}} {} \\end{{{env}}}", rows.join(" \\\\ "))
}

/// Matrices in every notation, and sums, multiples and products of literal matrices.
pub fn matrices(g: &str, out: &mut Vec<Form>) {
    let cells = match (matrix_cells(g), integer(g)) {
        (Some(c), _) => c,
        (None, Some(n)) if n.abs() < 1_000_000 => vec![
            vec![n.to_string(), (n + 1).to_string()],
            vec![(n + 2).to_string(), (n + 3).to_string()],
        ],
        _ => return,
    };
    let gold = inline(&matrix("pmatrix", &cells));
    let width = cells[0].len();
    let map = |f: &dyn Fn(&str) -> String| -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|r| r.iter().map(|c| f(c)).collect())
            .collect()
    };
    let ones = map(&|_| "1".to_string());
    let spec = "c".repeat(width);
    let forms = [
        ("matrix-bmatrix", format!("${}$", matrix("bmatrix", &cells))),
        ("matrix-vmatrix", format!("${}$", matrix("vmatrix", &cells))),
        (
            "matrix-array",
            format!(
                "$\\left[\\begin{{array}}{{{spec}}} {} \\end{{array}}\\right]$",
                cells
                    .iter()
                    .map(|r| r.join(" & "))
                    .collect::<Vec<_>>()
                    .join(" \\\\ ")
            ),
        ),
        (
            "matrix-sum",
            format!(
                "The result is ${} + {}$.",
                matrix("pmatrix", &map(&|c| format!("{c} - 1"))),
                matrix("pmatrix", &ones)
            ),
        ),
        (
            "matrix-scaled",
            format!(
                "$2 {}$",
                matrix("pmatrix", &map(&|c| format!("\\frac{{{c}}}{{2}}")))
            ),
        ),
    ];
    for (name, response) in forms {
        out.push(form(name, gold.clone(), response, true));
    }
    if cells.len() == width {
        let identity: Vec<Vec<String>> = (0..width)
            .map(|r| {
                (0..width)
                    .map(|c| if r == c { "1" } else { "0" }.to_string())
                    .collect()
            })
            .collect();
        let product = format!(
            "${}{}$",
            matrix("pmatrix", &cells),
            matrix("pmatrix", &identity)
        );
        out.push(form("matrix-product", gold.clone(), product, true));
    }
    let mut swapped = cells.clone();
    swapped.reverse();
    if swapped != cells {
        out.push(form(
            "matrix-bmatrix",
            gold,
            format!("${}$", matrix("bmatrix", &swapped)),
            false,
        ));
    }
}

/// Solution tuples as sets, assignments, and sets meeting tuples.
pub fn tuples(g: &str, out: &mut Vec<Form>) {
    let (a, b) = match integer(g) {
        Some(n) if n.abs() < 1_000_000 => (n, n + 3),
        _ => {
            let inner = g.strip_prefix('(').and_then(|r| r.strip_suffix(')'));
            match inner.map(top_level_items).as_deref() {
                Some([x, y]) if x != y && !x.contains('=') => {
                    let gold = inline(g);
                    out.push(form(
                        "tuple-listed",
                        gold.clone(),
                        format!("${x}, {y}$"),
                        true,
                    ));
                    out.push(form(
                        "tuple-braced",
                        gold.clone(),
                        format!("${{{x}, {y}}}$"),
                        true,
                    ));
                    out.push(form("tuple-listed", gold, format!("${y}, {x}$"), false));
                }
                _ => {}
            }
            return;
        }
    };
    let pairs = inline(&format!("({a},{b}),({b},{a})"));
    for (name, response, equal) in [
        (
            "tuples-reordered",
            format!("$({b}, {a}), ({a}, {b})$"),
            true,
        ),
        (
            "tuples-assigned-or",
            format!("$x={a}, y={b}$ or $x={b}, y={a}$"),
            true,
        ),
        (
            "tuples-assigned",
            format!("$x={a},y={b};x={b},y={a}$"),
            true,
        ),
        ("tuples-reordered", format!("$({a}, {b})$"), false),
        (
            "tuples-assigned",
            format!("$x={a},y={b};x={b},y={}$", a + 1),
            false,
        ),
    ] {
        out.push(form(name, pairs.clone(), response, equal));
    }
    let set = inline(&format!("\\{{{a},{b}\\}}"));
    out.push(form("set-tuple", set.clone(), format!("$({b},{a})$"), true));
    out.push(form("set-tuple", set, format!("$({a},{})$", b + 1), false));
    let tuple = inline(&format!("({a}, {b})"));
    out.push(form(
        "tuple-listed",
        tuple.clone(),
        format!("${a}, {b}$"),
        true,
    ));
    out.push(form(
        "tuple-braced",
        tuple.clone(),
        format!("${{{a}, {b}}}$"),
        true,
    ));
    out.push(form("tuple-listed", tuple, format!("${b}, {a}$"), false));
    if a > 0 {
        let pm = inline(&format!("\\pm {a}"));
        out.push(form(
            "pm-braced",
            pm.clone(),
            format!("${{-{a}, {a}}}$"),
            true,
        ));
        out.push(form("pm-braced", pm, format!("${a}$"), false));
    }
}

/// Ratios `p:q` of a fraction gold, and a labelled ratio gold.
pub fn ratios(g: &str, out: &mut Vec<Form>) {
    let Some((p, q)) = fraction(g).filter(|(p, q)| *p > 0 && *q > 1 && p != q) else {
        return;
    };
    let gold = inline(g);
    out.push(form("ratio", gold.clone(), format!("${p}:{q}$"), true));
    out.push(form(
        "ratio-scaled",
        gold.clone(),
        format!("The ratio is {}:{}.", 2 * p, 2 * q),
        true,
    ));
    out.push(form("ratio", gold, format!("${q}:{p}$"), false));
    let labelled = inline(&format!("AM:MB = {p}:{q}"));
    out.push(form(
        "ratio-labelled",
        labelled.clone(),
        format!("$\\frac{{{p}}}{{{q}}}$"),
        true,
    ));
    out.push(form(
        "ratio-labelled",
        labelled,
        format!("$\\frac{{{q}}}{{{p}}}$"),
        false,
    ));
}

/// Several boxes against a set, in golds and responses.
pub fn boxes(g: &str, out: &mut Vec<Form>) {
    let Some(a) = integer(g).filter(|n| n.abs() < 1_000_000) else {
        return;
    };
    let b = a + 5;
    let set = inline(&format!("\\{{{a}, {b}\\}}"));
    out.push(form(
        "boxes-set",
        set.clone(),
        format!("So $\\boxed{{{a}}}, \\boxed{{{b}}}$."),
        true,
    ));
    out.push(form(
        "boxes-set",
        set.clone(),
        format!("So $\\boxed{{{b}}}$ and $\\boxed{{{a}}}$."),
        true,
    ));
    out.push(form(
        "boxes-set",
        set,
        format!("So $\\boxed{{{a}}}$."),
        false,
    ));
    let worded = format!("\\boxed{{{a}}} cats and \\boxed{{{b}}} dogs");
    out.push(form(
        "boxes-worded-gold",
        worded.clone(),
        format!("$\\boxed{{{a},{b}}}$"),
        true,
    ));
    out.push(form(
        "boxes-worded-gold",
        worded,
        format!("$\\boxed{{{a},{}}}$", b + 1),
        false,
    ));
    let listed = format!("$\\boxed{{{a}}}, \\boxed{{{b}}}$");
    out.push(form(
        "boxes-gold",
        listed.clone(),
        format!("$\\{{{b}, {a}\\}}$"),
        true,
    ));
    out.push(form(
        "boxes-gold",
        listed.clone(),
        format!("${{{a}, {b}}}$"),
        true,
    ));
    out.push(form("boxes-gold", listed, format!("$\\{{{a}\\}}$"), false));
}

/// Two named equations against their partners in other arrangements.
pub fn equation_pairs(g: &str, out: &mut Vec<Form>) {
    let Some(n) = integer(g) else {
        return;
    };
    let a = n.abs() % 9 + 1;
    let b = (n.abs() / 10) % 9 + 1;
    let gold = inline(&format!(
        "y_1 = x^2 + {}x + {}, y_2 = x^2 - {}",
        2 * a,
        a * a,
        b * b
    ));
    let forms = [
        (
            "equation-pair-vertex",
            format!("$\\boxed{{y_1 = (x + {a})^2}}, \\boxed{{y_2 = (x - {b})(x + {b})}}$"),
            true,
        ),
        (
            "equation-pair-order",
            format!("$\\boxed{{y_2 = (x + {b})(x - {b})}}$ and $\\boxed{{y_1 = (x + {a})^2}}$"),
            true,
        ),
        (
            "equation-pair-arranged",
            format!(
                "$\\boxed{{y_1 - {} = x^2 + {}x}}$ and $\\boxed{{y_2 + {} = x^2}}$",
                a * a,
                2 * a,
                b * b
            ),
            true,
        ),
        (
            "equation-pair-vertex",
            format!("$\\boxed{{y_1 = (x - {b})(x + {b})}}, \\boxed{{y_2 = (x + {a})^2}}$"),
            false,
        ),
    ];
    for (name, response, equal) in forms {
        out.push(form(name, gold.clone(), response, equal));
    }
}
