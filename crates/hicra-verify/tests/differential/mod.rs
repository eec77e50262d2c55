//! The pairs of the differential test against Math-Verify: the golds of `shared/data/math`,
//! rewritten in equivalent formats and perturbed into wrong answers, each stated in a
//! response in one of several presentations; plus the answer forms of [`forms`].

mod forms;
mod structures;

use crate::common::{self, MATH_DATA as DATA, repair};
use hicra_verify::gold_answer;
use serde_json::Value;

/// One generated pair.
pub struct Pair {
    /// Which rewrite or perturbation produced it.
    pub format: &'static str,
    /// The gold as both graders receive it.
    pub gold: String,
    /// The model response as both graders receive it.
    pub response: String,
    /// Whether the response states the gold, for the pairs of [`forms`] (written with the
    /// form); `None` for rewrites and perturbations.
    pub expected: Option<bool>,
}

/// The bare gold answers of one benchmark set.
fn golds(set: &str) -> Vec<String> {
    let path = format!("{DATA}/{set}/test.jsonl");
    let content = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}: {e}"));
            let field = match set {
                "minerva_math" => &v["solution"],
                "olympiadbench" => &v["final_answer"][0],
                _ => &v["answer"],
            };
            let text = match field {
                Value::String(s) => repair(s),
                Value::Number(n) => n.to_string(),
                other => panic!("{path}: unexpected gold {other}"),
            };
            let bare = gold_answer(&text);
            bare.trim().trim_matches('$').trim().to_string()
        })
        .collect()
}

/// A small deterministic hash (FNV-1a) to pick formats per gold.
fn hash(s: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The integer a gold states, if it is one (`27`, `27.0`, `1,234`).
fn integer(g: &str) -> Option<i64> {
    let groups: Vec<&str> = g.split(',').collect();
    let thousands = groups[1..]
        .iter()
        .all(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()));
    if !thousands || groups[0].trim_start_matches('-').len() > 3 && groups.len() > 1 {
        return None;
    }
    let t = groups.concat();
    let t = t.strip_suffix(".0").unwrap_or(&t);
    t.parse().ok()
}

/// `\frac{p}{q}` (optionally negative) with integer parts.
fn fraction(g: &str) -> Option<(i64, i64)> {
    let (neg, rest) = match g.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, g),
    };
    let rest = rest
        .strip_prefix("\\frac{")
        .or_else(|| rest.strip_prefix("\\dfrac{"))?;
    let (p, rest) = rest.split_once("}{")?;
    let q = rest.strip_suffix('}')?;
    let (p, q): (i64, i64) = (p.parse().ok()?, q.parse().ok()?);
    (q != 0).then_some((if neg { -p } else { p }, q))
}

/// The terminating decimal of `p/q`, if short.
fn decimal(p: i64, q: i64) -> Option<String> {
    let mut d = q.abs();
    for f in [2, 5] {
        while d % f == 0 {
            d /= f;
        }
    }
    if d != 1 {
        return None;
    }
    let v = p as f64 / q as f64;
    let s = format!("{v}");
    (s.len() <= 8).then_some(s)
}

/// Writes `n` with a thousands separator `sep`.
fn grouped(n: i64, sep: &str) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Equivalent rewrites of a gold answer: `(format, answer text)`.
fn rewrites(g: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("same", g.to_string())];
    if g.contains("\\frac") {
        out.push(("dfrac", g.replace("\\frac", "\\dfrac")));
    }
    if let Some(n) = integer(g) {
        out.push(("named", format!("x = {n}")));
        out.push(("chain", format!("{} + {} = {n}", n - 1, 1)));
        if n.abs() >= 1000 {
            out.push(("thousands-braced", grouped(n, "{,}")));
            out.push(("thousands-comma", grouped(n, ",")));
        }
        out.push(("unit", format!("{n} \\text{{ cm}}")));
    }
    if let Some((p, q)) = fraction(g) {
        if let Some(d) = decimal(p, q) {
            out.push(("decimal", d));
        }
        if (0..10).contains(&p) && (1..10).contains(&q) {
            out.push(("frac-shorthand", format!("\\frac{p}{q}")));
        }
        out.push(("slash", format!("{p}/{q}")));
    }
    if g.starts_with('(') && g.ends_with(')') && !g.contains("\\left") {
        out.push((
            "left-right",
            format!("\\left({}\\right)", &g[1..g.len() - 1]),
        ));
    }
    if g.contains("\\sqrt{") {
        out.push(("spaced", g.replace("\\sqrt{", "\\, \\sqrt{")));
    }
    if let Some(rest) = g.strip_prefix("0.") {
        out.push(("leading-dot", format!(".{rest}")));
    }
    let items = top_level_items(g);
    if items.len() >= 2 && g.starts_with('(') && g.ends_with(')') {
        // One tuple: semicolons, and a named tuple.
        let inner = top_level_items(&g[1..g.len() - 1]);
        if inner.len() >= 2 && inner.len() <= 3 {
            out.push(("semicolons", format!("({})", inner.join("; "))));
            let names = ["x", "y", "z"][..inner.len()].join(", ");
            out.push(("named-tuple", format!("({names}) = {g}")));
        }
    } else if items.len() >= 2 {
        let mut rev = items.clone();
        rev.reverse();
        out.push(("reordered", rev.join(", ")));
        out.push(("and-joined", rev.join(" \\text{ and } ")));
        out.push(("boxes", rev.join(" | ")));
    }
    if g.contains("\\ge") || g.contains("\\le") {
        out.push((
            "relation-ascii",
            g.replace("\\geq", ">=")
                .replace("\\leq", "<=")
                .replace("\\ge", ">=")
                .replace("\\le", "<="),
        ));
    }
    if let Some((lhs, rhs)) = g.split_once('=')
        && !rhs.contains('=')
        && !lhs.trim().is_empty()
        && !rhs.trim().is_empty()
        && !g.contains(['<', '>', ','])
    {
        out.push(("swapped-sides", format!("{} = {}", rhs.trim(), lhs.trim())));
        out.push((
            "scaled-equation",
            format!(
                "2\\left({}\\right) = 2\\left({}\\right)",
                lhs.trim(),
                rhs.trim()
            ),
        ));
    }
    out
}

/// The non-empty items of a gold split at top-level commas.
fn top_level_items(g: &str) -> Vec<String> {
    let mut items = common::top_level_items(g);
    items.retain(|i| !i.is_empty());
    items
}

/// Wrong answers for a gold: `(format, answer text)`; `other` is a different gold.
fn perturbations(g: &str, other: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("other-gold", other.to_string())];
    if let Some(n) = integer(g) {
        out.push(("plus-one", (n + 1).to_string()));
        out.push(("doubled", (2 * n + 2).to_string()));
    }
    if let Some((p, q)) = fraction(g) {
        out.push(("numerator", format!("\\frac{{{}}}{{{q}}}", p + 1)));
    }
    if g.contains("\\sqrt{") {
        out.push(("sqrt-arg", g.replacen("\\sqrt{", "\\sqrt{2", 1)));
    }
    let items = top_level_items(g);
    if items.len() >= 2 && !(g.starts_with('(') && g.ends_with(')')) {
        out.push(("dropped-item", items[1..].join(", ")));
    }
    if g.starts_with('(') && g.ends_with(')') {
        let inner = top_level_items(&g[1..g.len() - 1]);
        if inner.len() == 2 && inner[0] != inner[1] {
            out.push(("swapped-tuple", format!("({}, {})", inner[1], inner[0])));
        }
    }
    if let Some((lhs, rhs)) = g.split_once('=')
        && !rhs.contains('=')
        && !g.contains(['<', '>', ','])
        && !rhs.trim().is_empty()
    {
        out.push((
            "shifted-equation",
            format!("{} = {} + 1", lhs.trim(), rhs.trim()),
        ));
    }
    out
}

/// Ways a response states its answer `a`: `(format, response)`. One pair in 50 pads the
/// environment with spaces and newlines.
fn present(a: &str, k: u64) -> (&'static str, String) {
    let lead = "Let me work through this step by step. Combining the cases above";
    if k % 50 == 7 {
        return ("padded", format!("{lead}, we obtain\n\\[\n {a} \n\\]"));
    }
    match k % 5 {
        0 => ("boxed", format!("{lead}, the answer is $\\boxed{{{a}}}$.")),
        1 => ("inline", format!("{lead}, we obtain ${a}$.")),
        2 => ("display", format!("{lead}, we obtain\n\\[{a}\\]")),
        3 => (
            "final",
            format!("{lead}.\nThe final answer is ${a}$. I hope it is correct."),
        ),
        _ => ("parens", format!("{lead}, we obtain \\({a}\\).")),
    }
}

/// The generated pairs: for each gold, two equivalent rewrites and one wrong answer, each in
/// a presentation chosen by hash.
pub fn pairs() -> Vec<Pair> {
    let mut all: Vec<String> = Vec::new();
    for set in common::SETS {
        let mut g = golds(set);
        if set == "gsm8k" {
            g.truncate(400);
        }
        all.extend(g);
    }
    all.retain(|g| !g.is_empty() && g.len() <= 200);
    let mut out = Vec::new();
    for (i, g) in all.iter().enumerate() {
        let other = (1..all.len())
            .map(|k| &all[(i + k * 7) % all.len()])
            .find(|o| *o != g)
            .expect("golds differ");
        let gold = format!("${g}$");
        let good = rewrites(g);
        let bad = perturbations(g, other);
        let picks = [
            (&good, hash(g, 1), true),
            (&good, hash(g, 2), true),
            (&bad, hash(g, 3), false),
        ];
        let mut seen = Vec::new();
        for (options, h, _) in picks {
            let (format, answer) = &options[(h % options.len() as u64) as usize];
            if seen.contains(format) {
                continue;
            }
            seen.push(format);
            let (how, response) = if *format == "boxes" {
                // Several boxed answers in the final sentence.
                let boxes: Vec<String> = answer
                    .split(" | ")
                    .map(|a| format!("$\\boxed{{{a}}}$"))
                    .collect();
                (
                    "text",
                    format!(
                        "Checking each case, the solutions are {}.",
                        boxes.join(" and ")
                    ),
                )
            } else {
                present(answer, h >> 8)
            };
            out.push(Pair {
                format: leak(format!("{format}/{how}")),
                gold: gold.clone(),
                response,
                expected: None,
            });
        }
        for f in forms::forms_for(g, other) {
            out.push(Pair {
                format: leak(format!("{}/text", f.name)),
                gold: f.gold,
                response: f.response,
                expected: Some(f.equal),
            });
        }
    }
    out
}

/// Interns a format name for the `'static` table.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
