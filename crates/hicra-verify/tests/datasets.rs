//! Tables built from the real benchmarks in `shared/data/math` (all 7 sets): every gold
//! matches itself boxed and reformatted equivalents; perturbed answers do not match.
//! Run with `--nocapture` to see the match rates and the failing golds.

use hicra_verify::{Config, ExtractMode, Gold, verify};
use serde_json::Value;

mod common;

use common::{MATH_DATA as DATA, repair};

/// One benchmark item: the gold as the verifier receives it, and its bare answer text.
struct Item {
    set: &'static str,
    gold: Gold,
    text: String,
}

fn load(set: &'static str) -> Vec<Item> {
    let path = format!("{DATA}/{set}/test.jsonl");
    let content = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut items = Vec::new();
    for (n, line) in content.lines().enumerate() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1));
        let (field, value) = match set {
            "gsm8k" => ("answer", v["answer"].clone()),
            "minerva_math" => ("solution", v["solution"].clone()),
            "olympiadbench" => ("final_answer", v["final_answer"].clone()),
            _ => ("answer", v["answer"].clone()),
        };
        let value = match value {
            Value::String(s) => Value::String(repair(&s)),
            other => other,
        };
        let gold =
            Gold::from_json(&value).unwrap_or_else(|e| panic!("{path}:{} {field}: {e}", n + 1));
        let text = gold
            .answer_texts()
            .into_iter()
            .next()
            .expect("a gold has at least one answer");
        items.push(Item { set, gold, text });
    }
    items
}

fn all_items() -> Vec<Item> {
    common::SETS.into_iter().flat_map(load).collect()
}

fn boxed(answer: &str) -> String {
    format!(
        "Let me work through this carefully. Adding up the pieces gives the result.\nSo the final answer is $\\boxed{{{answer}}}$."
    )
}

/// The bare answer without `$` delimiters.
fn bare(text: &str) -> String {
    text.trim().trim_matches('$').trim().to_string()
}

fn as_integer(text: &str) -> Option<i64> {
    let t = bare(text)
        .replace(",\\!", ",")
        .replace(' ', "")
        .replace("\\$", "");
    let groups: Vec<&str> = t.split(',').collect();
    if groups.len() > 1 && groups[1..].iter().any(|g| g.len() != 3) {
        return None;
    }
    let t = t.replace(',', "");
    let t = t.strip_suffix(".0").unwrap_or(&t);
    t.parse().ok()
}

/// The items of a multiple answer (depth-0 commas), each without `$`.
fn top_level_items(text: &str) -> Vec<String> {
    common::top_level_items(text)
        .iter()
        .map(|s| bare(s))
        .collect()
}

/// A simple `\frac{a}{b}` with integer parts.
fn simple_fraction(text: &str) -> Option<(i64, i64)> {
    let t = bare(text);
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let t = t.replace("\\dfrac", "\\frac");
    let rest = t.strip_prefix("\\frac{")?;
    let (a, rest) = rest.split_once("}{")?;
    let b = rest.strip_suffix('}')?;
    let (a, b): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    Some((if neg { -a } else { a }, b))
}

/// Terminating decimal expansion of a/b, if short.
fn decimal_of(a: i64, b: i64) -> Option<String> {
    let mut d = b;
    while d % 2 == 0 {
        d /= 2;
    }
    while d % 5 == 0 {
        d /= 5;
    }
    if d != 1 || b == 0 {
        return None;
    }
    let v = a as f64 / b as f64;
    let s = format!("{v}");
    (s.len() < 14).then_some(s)
}

fn with_thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Reformatted equivalents of a gold answer.
fn equivalents(text: &str) -> Vec<String> {
    let b = bare(text);
    let mut out = vec![format!("${b}$"), format!("\\({b}\\)"), format!(" {b} ")];
    if let Some(n) = as_integer(text) {
        out.push(format!("{n}.0"));
        if n >= 1000 {
            out.push(with_thousands(n));
        }
        if n >= 0 {
            out.push(format!("0{n}"));
        }
        out.push(format!("x = {n}"));
    } else if let Some((a, d)) = simple_fraction(text) {
        out.push(format!("{a}/{d}"));
        out.push(format!("\\dfrac{{{a}}}{{{d}}}"));
        if let Some(dec) = decimal_of(a, d) {
            out.push(dec);
        }
    } else {
        let items = if b.contains(",\\!") {
            vec![b.clone()]
        } else {
            top_level_items(text)
        };
        if items.len() > 1 && !b.contains('=') {
            let mut rev = items.clone();
            rev.reverse();
            out.push(rev.join(", "));
        } else if !b.contains('=')
            && !b.contains("\\in")
            && !b.contains("\\ge")
            && !b.contains("\\le")
            && !b.contains("\\text")
            && !b.contains("begin")
            && items.len() == 1
        {
            out.push(format!("y = {b}"));
        }
    }
    out
}

/// Answers that must not match.
fn perturbations(text: &str) -> Vec<String> {
    let b = bare(text);
    if let Some(n) = as_integer(text) {
        return vec![format!("{}", n + 1), format!("{}", n - 10)];
    }
    if let Some((a, d)) = simple_fraction(text) {
        return vec![
            format!("\\frac{{{}}}{{{d}}}", a + 1),
            format!("\\frac{{{d}}}{{{a}}}"),
        ];
    }
    let items = top_level_items(text);
    if items.len() > 1 {
        return vec![items[1..].join(", ")];
    }
    if b.contains('=')
        || b.contains("\\in")
        || b.contains("begin")
        || b.starts_with('(')
        || b.starts_with('[')
        || b.contains("\\text")
    {
        return vec![];
    }
    if b.contains('.')
        || b.contains('e') && b.chars().any(|c| c.is_ascii_digit()) && !b.contains('\\')
    {
        // Rounded decimals: "+ 1" may stay within the gold's precision, so scale instead.
        return vec![format!("3\\left({b}\\right)")];
    }
    vec![format!("{b} + 1"), format!("2\\left({b}\\right)")]
}

#[test]
fn golds_match_themselves_equivalents_and_not_perturbations() {
    let items = all_items();
    let strict = Config {
        mode: ExtractMode::StrictBoxed,
        ..Config::default()
    };
    let mut report = Vec::new();
    let (mut self_ok, mut eq_ok, mut eq_n, mut pert_ok, mut pert_n) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for set in common::SETS {
        let (mut s_ok, mut s_n, mut e_ok, mut e_n, mut p_ok, mut p_n) = (0, 0, 0, 0, 0, 0);
        for item in items.iter().filter(|i| i.set == set) {
            s_n += 1;
            let v = verify(&item.gold, &boxed(&item.text), &strict);
            if v.correct {
                s_ok += 1;
            } else {
                failures.push(format!("[{set}] self: {:?} ({})", item.text, v.reason));
            }
            for e in equivalents(&item.text) {
                e_n += 1;
                let v = verify(&item.gold, &boxed(&e), &strict);
                if v.correct {
                    e_ok += 1;
                } else {
                    failures.push(format!(
                        "[{set}] equivalent: {:?} vs {:?} ({})",
                        item.text, e, v.reason
                    ));
                }
            }
            for p in perturbations(&item.text) {
                p_n += 1;
                let v = verify(&item.gold, &boxed(&p), &strict);
                if !v.correct {
                    p_ok += 1;
                } else {
                    failures.push(format!(
                        "[{set}] perturbed matched: {:?} vs {:?} ({})",
                        item.text, p, v.reason
                    ));
                }
            }
        }
        report.push(format!(
            "{set:14} self {s_ok}/{s_n}  equivalents {e_ok}/{e_n}  perturbed rejected {p_ok}/{p_n}"
        ));
        self_ok += s_ok;
        eq_ok += e_ok;
        eq_n += e_n;
        pert_ok += p_ok;
        pert_n += p_n;
    }
    let total = items.len();
    // Golds the parser cannot read are only matched as text: list them.
    let unparsed: Vec<&str> = items
        .iter()
        .filter(|i| {
            let (_, reason) =
                hicra_verify::compare_answer(&i.gold, "\\text{zzqq}", &Config::default());
            reason.contains("gold could not be parsed")
        })
        .map(|i| i.text.as_str())
        .collect();
    println!(
        "golds not parsed as mathematics ({}): {unparsed:?}",
        unparsed.len()
    );
    println!("{}", report.join("\n"));
    println!("failures ({}):\n{}", failures.len(), failures.join("\n"));
    let rate = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    println!(
        "TOTAL self {:.4}  equivalents {:.4}  perturbed rejected {:.4}",
        rate(self_ok, total),
        rate(eq_ok, eq_n),
        rate(pert_ok, pert_n)
    );
    assert_eq!(total, 1319 + 500 + 30 + 30 + 40 + 272 + 675);
    assert!(
        rate(self_ok, total) >= 0.995,
        "self-match rate {}",
        rate(self_ok, total)
    );
    assert!(
        rate(eq_ok, eq_n) >= 0.98,
        "equivalent match rate {}",
        rate(eq_ok, eq_n)
    );
    assert!(
        rate(pert_ok, pert_n) >= 0.99,
        "perturbation rejection rate {}",
        rate(pert_ok, pert_n)
    );
    assert!(
        unparsed.len() <= total / 100,
        "{} golds do not parse",
        unparsed.len()
    );
}
