//! The structured families of the differential test's answer forms: relations up to
//! equivalence, matrices, tuples and sets, ratios, several boxes and pairs of equations.

use super::forms::{Form, form, inline};
use super::{fraction, integer, top_level_items};

/// Inequalities up to equivalence, built from an integer gold `n`.
pub fn relations(g: &str, out: &mut Vec<Form>) {
    let Some(n) = integer(g).filter(|n| n.abs() < 1_000_000) else {
        return;
    };
    let (a, m) = (n.abs() % 50 + 1, 2 * n);
    let b = a + n.abs() % 7 + 1;
    let chain = |inner: &str| format!("${} < {inner} < {}$", m + 1, 2 * (n + 2 * a) + 1);
    add(
        out,
        &inline(&format!("y < {n}")),
        vec![
            ("relation-negated", format!("$-y > {}$", -n), true),
            ("relation-linear", format!("$2y - {m} < 0$"), true),
            ("relation-negated", format!("$-y < {}$", -n), false),
        ],
    );
    add(
        out,
        &inline(&format!("y \\le {n}")),
        vec![
            ("relation-negated-closed", format!("$-y \\ge {}$", -n), true),
            ("relation-negated-closed", format!("$-y > {}$", -n), false),
        ],
    );
    add(
        out,
        &inline(&format!("t \\in [-{b},-{a}] \\cup [{a},{b}]")),
        vec![
            (
                "relation-abs-ring",
                format!("$ {a} \\le |t| \\le {b} $"),
                true,
            ),
            (
                "relation-abs-ring",
                format!("$ {a} < |t| \\le {b} $"),
                false,
            ),
        ],
    );
    add(
        out,
        &inline(&format!("[-{b}, {b}]")),
        vec![
            ("relation-abs-ball", format!("$|t| \\le {b}$"), true),
            ("relation-abs-ball", format!("$|t| < {b}$"), false),
        ],
    );
    add(
        out,
        &inline(&format!("({n}, {})", n + 2 * a)),
        vec![
            ("relation-linear-chain", chain("2x + 1"), true),
            ("relation-linear-chain", chain("2x"), false),
        ],
    );
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
    let width = cells[0].len();
    let map = |f: &dyn Fn(&str) -> String| -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|r| r.iter().map(|c| f(c)).collect())
            .collect()
    };
    let rows = cells
        .iter()
        .map(|r| r.join(" & "))
        .collect::<Vec<_>>()
        .join(" \\\\ ");
    let spec = "c".repeat(width);
    let mut swapped = cells.clone();
    swapped.reverse();
    let mut forms = vec![
        (
            "matrix-bmatrix",
            format!("${}$", matrix("bmatrix", &cells)),
            true,
        ),
        (
            "matrix-vmatrix",
            format!("${}$", matrix("vmatrix", &cells)),
            true,
        ),
        (
            "matrix-array",
            format!("$\\left[\\begin{{array}}{{{spec}}} {rows} \\end{{array}}\\right]$"),
            true,
        ),
        (
            "matrix-sum",
            format!(
                "The result is ${} + {}$.",
                matrix("pmatrix", &map(&|c| format!("{c} - 1"))),
                matrix("pmatrix", &map(&|_| "1".to_string()))
            ),
            true,
        ),
        (
            "matrix-scaled",
            format!(
                "$2 {}$",
                matrix("pmatrix", &map(&|c| format!("\\frac{{{c}}}{{2}}")))
            ),
            true,
        ),
    ];
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
        forms.push(("matrix-product", product, true));
    }
    if swapped != cells {
        forms.push((
            "matrix-bmatrix",
            format!("${}$", matrix("bmatrix", &swapped)),
            false,
        ));
    }
    add(out, &inline(&matrix("pmatrix", &cells)), forms);
}

/// Solution tuples as sets, assignments, and sets meeting tuples.
pub fn tuples(g: &str, out: &mut Vec<Form>) {
    let listed = |x: &str, y: &str| {
        vec![
            ("tuple-listed", format!("${x}, {y}$"), true),
            ("tuple-braced", format!("${{{x}, {y}}}$"), true),
            ("tuple-listed", format!("${y}, {x}$"), false),
        ]
    };
    let (a, b) = match integer(g) {
        Some(n) if n.abs() < 1_000_000 => (n, n + 3),
        _ => {
            let inner = g.strip_prefix('(').and_then(|r| r.strip_suffix(')'));
            if let Some([x, y]) = inner.map(top_level_items).as_deref()
                && x != y
                && !x.contains('=')
            {
                add(out, &inline(g), listed(x, y));
            }
            return;
        }
    };
    add(
        out,
        &inline(&format!("({a},{b}),({b},{a})")),
        vec![
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
        ],
    );
    add(
        out,
        &inline(&format!("\\{{{a},{b}\\}}")),
        vec![
            ("set-tuple", format!("$({b},{a})$"), true),
            ("set-tuple", format!("$({a},{})$", b + 1), false),
        ],
    );
    add(
        out,
        &inline(&format!("({a}, {b})")),
        listed(&a.to_string(), &b.to_string()),
    );
    if a > 0 {
        add(
            out,
            &inline(&format!("\\pm {a}")),
            vec![
                ("pm-braced", format!("${{-{a}, {a}}}$"), true),
                ("pm-braced", format!("${a}$"), false),
            ],
        );
    }
}

/// Ratios `p:q` of a fraction gold, and a labelled ratio gold.
pub fn ratios(g: &str, out: &mut Vec<Form>) {
    let Some((p, q)) = fraction(g).filter(|(p, q)| *p > 0 && *q > 1 && p != q) else {
        return;
    };
    add(
        out,
        &inline(g),
        vec![
            ("ratio", format!("${p}:{q}$"), true),
            (
                "ratio-scaled",
                format!("The ratio is {}:{}.", 2 * p, 2 * q),
                true,
            ),
            ("ratio", format!("${q}:{p}$"), false),
        ],
    );
    add(
        out,
        &inline(&format!("AM:MB = {p}:{q}")),
        vec![
            ("ratio-labelled", format!("$\\frac{{{p}}}{{{q}}}$"), true),
            ("ratio-labelled", format!("$\\frac{{{q}}}{{{p}}}$"), false),
        ],
    );
}

/// Several boxes against a set, in golds and responses.
pub fn boxes(g: &str, out: &mut Vec<Form>) {
    let Some(a) = integer(g).filter(|n| n.abs() < 1_000_000) else {
        return;
    };
    let b = a + 5;
    add(
        out,
        &inline(&format!("\\{{{a}, {b}\\}}")),
        vec![
            (
                "boxes-set",
                format!("So $\\boxed{{{a}}}, \\boxed{{{b}}}$."),
                true,
            ),
            (
                "boxes-set",
                format!("So $\\boxed{{{b}}}$ and $\\boxed{{{a}}}$."),
                true,
            ),
            ("boxes-set", format!("So $\\boxed{{{a}}}$."), false),
        ],
    );
    add(
        out,
        &format!("\\boxed{{{a}}} cats and \\boxed{{{b}}} dogs"),
        vec![
            ("boxes-worded-gold", format!("$\\boxed{{{a},{b}}}$"), true),
            (
                "boxes-worded-gold",
                format!("$\\boxed{{{a},{}}}$", b + 1),
                false,
            ),
        ],
    );
    add(
        out,
        &format!("$\\boxed{{{a}}}, \\boxed{{{b}}}$"),
        vec![
            ("boxes-gold", format!("$\\{{{b}, {a}\\}}$"), true),
            ("boxes-gold", format!("${{{a}, {b}}}$"), true),
            ("boxes-gold", format!("$\\{{{a}\\}}$"), false),
        ],
    );
}

/// Two named equations against their partners in other arrangements.
pub fn equation_pairs(g: &str, out: &mut Vec<Form>) {
    let Some(n) = integer(g) else {
        return;
    };
    let (a, b) = (n.abs() % 9 + 1, (n.abs() / 10) % 9 + 1);
    let (a2, b2) = (a * a, b * b);
    let gold = format!("y_1 = x^2 + {}x + {a2}, y_2 = x^2 - {b2}", 2 * a);
    let square = format!("y_1 = (x + {a})^2");
    let product = |y: &str| format!("{y} = (x - {b})(x + {b})");
    add(
        out,
        &inline(&gold),
        vec![
            (
                "equation-pair-vertex",
                format!("$\\boxed{{{square}}}, \\boxed{{{}}}$", product("y_2")),
                true,
            ),
            (
                "equation-pair-order",
                format!("$\\boxed{{{}}}$ and $\\boxed{{{square}}}$", product("y_2")),
                true,
            ),
            (
                "equation-pair-arranged",
                format!(
                    "$\\boxed{{y_1 - {a2} = x^2 + {}x}}$ and $\\boxed{{y_2 + {b2} = x^2}}$",
                    2 * a
                ),
                true,
            ),
            (
                "equation-pair-vertex",
                format!(
                    "$\\boxed{{{}}}, \\boxed{{y_2 = (x + {a})^2}}$",
                    product("y_1")
                ),
                false,
            ),
        ],
    );
}

/// Adds forms for one gold: `(name, response, whether it states the gold)`.
fn add(out: &mut Vec<Form>, gold: &str, rows: Vec<(&'static str, String, bool)>) {
    out.extend(
        rows.into_iter()
            .map(|(name, response, equal)| form(name, gold.to_string(), response, equal)),
    );
}
