//! Answer forms of the differential test, one family per form the verifier documents: a
//! label in a final sentence, plain numbers with units, bare LaTeX, approximations, named
//! golds and text that is not an answer here; relations, matrices, tuples, ratios, several
//! boxes and pairs of equations in `structures`. Each family writes the gold's value in
//! several surface forms, right and wrong; golds that are not of the family's kind (a
//! matrix, a relation, a named value) are built from the value of a real gold.

use super::structures::{boxes, equation_pairs, matrices, ratios, relations, tuples};
use super::{fraction, grouped, hash, integer};

/// One generated pair before presentation: the form's name, the gold, the response, and
/// whether the response states the gold.
pub struct Form {
    pub name: &'static str,
    pub gold: String,
    pub response: String,
    pub equal: bool,
}

pub fn form(name: &'static str, gold: String, response: String, equal: bool) -> Form {
    Form {
        name,
        gold,
        response,
        equal,
    }
}

/// The gold in inline math.
pub fn inline(g: &str) -> String {
    format!("${g}$")
}

/// A plain value of the gold (`12`, `3/4`) and a wrong one.
fn plain_values(g: &str) -> Option<(String, String)> {
    if let Some(n) = integer(g) {
        return Some((n.to_string(), (n + 1).to_string()));
    }
    let (p, q) = fraction(g)?;
    Some((format!("{p}/{q}"), format!("{}/{q}", p + 1)))
}

/// A final sentence whose math only labels what it states, or an environment followed by a
/// later sentence stating the value.
fn labels(g: &str, out: &mut Vec<Form>) {
    let Some((right, wrong)) = plain_values(g) else {
        return;
    };
    let templates: [(&'static str, &str); 4] = [
        ("label-final", "Final Answer: The largest $k$ is {}."),
        (
            "label-area",
            "Putting the pieces together, the area of $PQRS$ is {}.",
        ),
        (
            "label-later",
            "From the first step, $m = \\frac{30}{n}$. Therefore, there are {} ways.",
        ),
        (
            "label-display",
            "We get \\[ T = 2s + 1 \\] Hence the total comes to {}.",
        ),
    ];
    for (name, t) in templates {
        out.push(form(name, inline(g), t.replace("{}", &right), true));
        out.push(form(name, inline(g), t.replace("{}", &wrong), false));
    }
}

/// The last number of plain text with units, currency or percent, and mixed numbers.
fn units(g: &str, out: &mut Vec<Form>) {
    if let Some(n) = integer(g) {
        let (s, w) = (grouped(n, ","), grouped(n + 7, ","));
        let gold = inline(g);
        for (name, t) in [
            ("units-kg", "it is not {o} but {v} kg"),
            (
                "units-euro",
                "Before the discount it was €{o}; in the end the bill comes to €{v}.",
            ),
            (
                "units-suffix",
                "the old floor had {o}m², so the floor covers {v}m² in total",
            ),
        ] {
            out.push(form(
                name,
                gold.clone(),
                t.replace("{o}", &w).replace("{v}", &s),
                true,
            ));
            out.push(form(
                name,
                gold.clone(),
                t.replace("{o}", &s).replace("{v}", &w),
                false,
            ));
        }
        if n >= 0 {
            let pct = inline(&format!("{n}\\%"));
            out.push(form(
                "units-percent",
                pct.clone(),
                format!("The price increases by {n}%."),
                true,
            ));
            out.push(form(
                "units-percent",
                pct,
                format!("The price increases by {}%.", n + 1),
                false,
            ));
        }
    }
    if let Some((p, q)) = fraction(g)
        && p.abs() > q
        && q > 1
    {
        let sign = if p < 0 { "-" } else { "" };
        let (whole, rest) = (p.abs() / q, p.abs() % q);
        let gold = inline(g);
        out.push(form(
            "mixed",
            gold.clone(),
            format!("The answer is {sign}{whole} {rest}/{q}."),
            true,
        ));
        out.push(form(
            "mixed",
            gold,
            format!("The answer is {sign}{whole}."),
            false,
        ));
    }
}

/// A whole response that is bare LaTeX, or LaTeX ending plain text.
fn bare(g: &str, other: &str, out: &mut Vec<Form>) {
    if !g.contains('\\') || g.contains(['$', '\n']) || g.contains("\\text") || g.len() > 60 {
        return;
    }
    out.push(form("bare", inline(g), g.to_string(), true));
    if g.contains("\\frac") {
        out.push(form(
            "bare-dfrac",
            inline(g),
            g.replace("\\frac", "\\dfrac"),
            true,
        ));
    }
    if fraction(g).is_some() {
        out.push(form(
            "bare-tail",
            inline(g),
            format!("so we get {g}."),
            true,
        ));
    }
    if !g.starts_with(['-', '(', '[']) {
        out.push(form("bare", inline(g), format!("-{g}"), false));
    }
    if other.contains('\\') && !other.contains('$') {
        out.push(form("bare", inline(g), other.to_string(), false));
    }
}

/// The exact value before an approximation sign.
fn approximations(g: &str, out: &mut Vec<Form>) {
    if let Some(n) = integer(g) {
        out.push(form(
            "approx-integer",
            inline(g),
            format!("$x \\approx {n}$"),
            true,
        ));
        out.push(form(
            "approx-integer",
            inline(g),
            format!("$x \\approx {}$", n + 1),
            false,
        ));
    }
    let Some((p, q)) = fraction(g) else {
        return;
    };
    let v = p as f64 / q as f64;
    let wrong = (p + 1) as f64 / q as f64;
    out.push(form(
        "approx-named",
        inline(g),
        format!("$x = {g} \\approx {v:.2}$"),
        true,
    ));
    out.push(form(
        "approx-plain",
        inline(g),
        format!("we get {p}/{q} ≈ {v:.3}"),
        true,
    ));
    out.push(form(
        "approx-boxed",
        inline(g),
        format!("\\boxed{{{g} \\approx {v:.3}}}"),
        true,
    ));
    out.push(form(
        "approx-sim",
        inline(g),
        format!("So $r = {g} \\sim {v:.2}$"),
        true,
    ));
    out.push(form(
        "approx-named",
        inline(g),
        format!("$x = \\frac{{{}}}{{{q}}} \\approx {wrong:.2}$", p + 1),
        false,
    ));
}

/// Golds that name their value.
fn named(g: &str, out: &mut Vec<Form>) {
    let Some(n) = integer(g) else {
        return;
    };
    for (name, gold) in [
        ("named-length", format!("|PQ| = {n}")),
        ("named-ratio", format!("P:Q = {n}")),
        ("named-segment", format!("\\overline{{AB}} = {n}")),
    ] {
        out.push(form(
            name,
            inline(&gold),
            format!("So the answer is $\\boxed{{{n}}}$."),
            true,
        ));
        out.push(form(
            name,
            inline(&gold),
            format!("So the answer is {}.", n + 1),
            false,
        ));
    }
}

/// Math delimiters broken over lines (not an answer), against display math that may be.
fn broken_lines(g: &str, out: &mut Vec<Form>) {
    let Some((v, _)) = plain_values(g) else {
        return;
    };
    let gold = inline(g);
    out.push(form(
        "broken-inline",
        gold.clone(),
        format!("Answer $ \n {v} \n $"),
        false,
    ));
    out.push(form(
        "broken-parens",
        gold.clone(),
        format!("Answer \\( \n {v} \n \\)"),
        false,
    ));
    out.push(form(
        "display-lines",
        gold.clone(),
        format!("Answer \\[ \n {v} \n \\]"),
        true,
    ));
    out.push(form(
        "display-lines",
        gold,
        format!("Answer $$ \n {v} \n $$"),
        true,
    ));
}

/// A family's writer of forms.
type Writer<'a> = &'a dyn Fn(&mut Vec<Form>);

/// The families that apply to gold `g`, each as its forms (`other` is a different gold).
fn families(g: &str, other: &str) -> Vec<Vec<Form>> {
    let writers: [Writer; 12] = [
        &|o| labels(g, o),
        &|o| units(g, o),
        &|o| bare(g, other, o),
        &|o| approximations(g, o),
        &|o| relations(g, o),
        &|o| matrices(g, o),
        &|o| tuples(g, o),
        &|o| ratios(g, o),
        &|o| boxes(g, o),
        &|o| named(g, o),
        &|o| broken_lines(g, o),
        &|o| equation_pairs(g, o),
    ];
    writers
        .iter()
        .map(|write| {
            let mut forms = Vec::new();
            write(&mut forms);
            forms
        })
        .filter(|forms| !forms.is_empty())
        .collect()
}

/// A well-mixed index below `n` for gold `g` (FNV's low bits repeat across salts).
fn pick(g: &str, salt: u64, n: usize) -> usize {
    let mut z = hash(g, salt);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % n.max(1) as u64) as usize
}

/// The forms used for gold `g`: for each draw, a family that applies and one of its forms,
/// right or wrong, chosen by hash (one draw for an integer gold, two for the rarer
/// fractions and LaTeX golds); every form for the few matrix and tuple golds of the data.
pub fn forms_for(g: &str, other: &str) -> Vec<Form> {
    let mut families = families(g, other);
    if g.contains("pmatrix") || (g.starts_with('(') && integer(g).is_none()) {
        return families.into_iter().flatten().collect();
    }
    let draws = if integer(g).is_some() { 1 } else { 2 };
    let mut out = Vec::new();
    for draw in 0..draws {
        if families.is_empty() {
            break;
        }
        let family = families.swap_remove(pick(g, 11 + draw, families.len()));
        // A right form for two draws in three, a wrong one for the third.
        let right = pick(g, 13 + draw, 3) != 0;
        let mut pool: Vec<Form> = family.into_iter().filter(|f| f.equal == right).collect();
        if !pool.is_empty() {
            let k = pick(g, 15 + draw, pool.len());
            out.push(pool.swap_remove(k));
        }
    }
    out
}
