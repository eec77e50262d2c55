//! Differential test against Math-Verify (the field's reference grader, PyPI
//! `math-verify`): several thousand (gold, response) pairs built from the golds in
//! `shared/data/math`, rewritten in the formats of issue 15's classes, plus wrong answers,
//! graded by both. Fails when hicra disagrees on more than 1% of the pairs outside the
//! accepted list below, or when an accepted disagreement no longer occurs.
//!
//! Math-Verify runs once, in one Python process for all pairs
//! (`tests/math_verify_oracle.py`). The Python is `$HICRA_PYTHON`, else the virtual
//! environment `.ci/run` creates (`target/math-verify-venv`), else `python3`. When
//! Math-Verify cannot be imported the test fails under CI (`CI=true`) and is skipped with a
//! message elsewhere.
//!
//! `cargo test -p hicra-verify --test math_verify -- --ignored --nocapture` also runs the
//! speed comparison (MATH-500 golds inside ~2,000-character responses), which prints
//! figures and asserts nothing.

use hicra_verify::{Config, Gold, gold_answer, verify};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::{MATH_DATA as DATA, repair};
const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/math_verify_oracle.py");

/// Largest share of pairs on which hicra may disagree with Math-Verify outside
/// [`ACCEPTED`].
const MAX_DISAGREEMENT: f64 = 0.01;

/// Disagreements accepted, each with its reason: `(format, gold, hicra's verdict, reason)`.
/// `format` is a rewrite name (any presentation) or `rewrite/presentation`; `gold` is the
/// bare gold, or `*` for every gold in that format. Each entry must still occur.
const ACCEPTED: &[(&str, &str, bool, &str)] = &[
    (
        "scaled-equation",
        "*",
        true,
        "2(f(x)) = 2(2x) is the same relation as the gold f(x) = 2x (class 7); Math-Verify \
         compares only right sides when the gold's left side is a name",
    ),
    (
        "unit/padded",
        "*",
        true,
        "`\\[ 132 \\text{ cm} \\]` states 132 with a unit (class 3); Math-Verify keeps the \
         unit as a factor when the environment starts with whitespace",
    ),
    (
        "shifted-equation",
        "N=n",
        false,
        "N = n + 1 is not N = n; Math-Verify lower-cases names, so N and n become one variable",
    ),
    (
        "swapped-sides",
        "\\frac{dM}{dt}=\\frac{10^{5} L_{\\odot}}{0.007 c^{2} M_{\\odot}^{6}} M^{6}",
        true,
        "the same equation with its sides swapped; Math-Verify treats the gold as an \
         assignment to dM/dt and compares the response's right side, dM/dt, with the value",
    ),
    (
        "swapped-sides",
        "d=\\frac{1+\\sqrt{1+8 n}}{2}",
        true,
        "the same equation with its sides swapped; Math-Verify compares the response's right \
         side, d, with the gold's value",
    ),
    (
        "boxes",
        "E_{1},E_{2}",
        true,
        "two boxed answers joined by `and` in the final sentence form the set (class 6); \
         Math-Verify reads E_1, E_2 as distinct symbols only in the gold's order",
    ),
    (
        "and-joined",
        "E_{1},E_{2}",
        true,
        "`E_2 and E_1` is the set {E_1, E_2} (class 6)",
    ),
    (
        "boxes",
        "10,11,12,13,14,-2,-1,0,1,2",
        true,
        "ten boxed answers in the final sentence form the set (class 6); Math-Verify keeps \
         fewer of them",
    ),
    (
        "boxes",
        "27,54,108,135,189,216,270,297,351,378",
        true,
        "ten boxed answers in the final sentence form the set (class 6); Math-Verify keeps \
         fewer of them",
    ),
    (
        "same",
        "x_{0} \\cos (\\omega t)+$ $\\dot{x}_{0} \\sin (\\omega t) / \\omega",
        false,
        "the gold (Minerva) splits one sum over two $…$ environments ending in a dangling `+`; \
         hicra reads the response's last environment only",
    ),
    (
        "same",
        "(-\\infty, 0) \\cup\\{1\\}$.",
        true,
        "the gold (OlympiadBench) carries a stray `$.`; hicra drops it, Math-Verify fails to \
         parse the padded copy",
    ),
    (
        "*",
        "221,$8",
        true,
        "the gold (OlympiadBench) is malformed (`221,$8`); hicra reads it as the list {221, 8}",
    ),
];

/// One generated pair.
struct Pair {
    /// Which rewrite or perturbation produced it.
    format: &'static str,
    /// The gold as both graders receive it.
    gold: String,
    /// The model response as both graders receive it.
    response: String,
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
    let t = g.replace(',', "");
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

/// Splits at top-level commas (outside brackets and braces).
fn top_level_items(g: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in g.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur.trim().to_string());
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
fn pairs() -> Vec<Pair> {
    let sets = [
        "math500",
        "aime24",
        "aime25",
        "amc23",
        "minerva_math",
        "olympiadbench",
        "gsm8k",
    ];
    let mut all: Vec<String> = Vec::new();
    for set in sets {
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
            });
        }
    }
    out
}

/// Interns a format name for the `'static` table.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The Python that runs Math-Verify.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HICRA_PYTHON") {
        return PathBuf::from(p);
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/math-verify-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Math-Verify's verdicts and its grading time, or `None` (with the reason printed) when it
/// cannot run here.
fn math_verify(pairs: &[(String, String)]) -> Option<(Vec<bool>, f64)> {
    let dir = tempfile_dir();
    let input = dir.join("pairs.jsonl");
    let output = dir.join("verdicts.jsonl");
    let mut text = String::new();
    for (gold, response) in pairs {
        text.push_str(&json!({ "gold": gold, "response": response }).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write pairs");
    let py = python();
    let run = Command::new(&py)
        .arg(ORACLE)
        .arg(&input)
        .arg(&output)
        .output();
    let unavailable = |why: String| {
        let msg = format!(
            "Math-Verify is not available ({why}); install it with `pip install math-verify==0.9.0` \
             or point HICRA_PYTHON at a Python that has it"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        println!("SKIPPED: {msg}");
    };
    let out = match run {
        Ok(o) => o,
        Err(e) => {
            unavailable(format!("cannot run {}: {e}", py.display()));
            return None;
        }
    };
    if !out.status.success() {
        unavailable(format!(
            "{} exited with {}: {}",
            py.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
        return None;
    }
    let content = std::fs::read_to_string(&output).expect("oracle output");
    let mut verdicts = Vec::new();
    let mut seconds = 0.0;
    for line in content.lines() {
        let v: Value = serde_json::from_str(line).expect("oracle line is JSON");
        if let Some(s) = v["seconds"].as_f64() {
            seconds = s;
        } else {
            verdicts.push(v["correct"].as_bool().expect("verdict"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(verdicts.len(), pairs.len(), "one verdict per pair");
    Some((verdicts, seconds))
}

/// A fresh scratch directory under the system temp dir.
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hicra-verify-mv-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn agrees_with_math_verify() {
    let pairs = pairs();
    assert!(pairs.len() >= 3_000, "only {} pairs", pairs.len());
    let texts: Vec<(String, String)> = pairs
        .iter()
        .map(|p| (p.gold.clone(), p.response.clone()))
        .collect();
    let Some((reference, mv_seconds)) = math_verify(&texts) else {
        return;
    };
    let config = Config::default();
    let start = Instant::now();
    let ours: Vec<bool> = pairs
        .iter()
        .map(|p| verify(&Gold::from(p.gold.as_str()), &p.response, &config).correct)
        .collect();
    let hicra_seconds = start.elapsed().as_secs_f64();
    let mut unaccepted = Vec::new();
    let mut accepted_seen = vec![false; ACCEPTED.len()];
    for (k, p) in pairs.iter().enumerate() {
        if ours[k] == reference[k] {
            continue;
        }
        let bare = &p.gold[1..p.gold.len() - 1];
        let rewrite = p.format.split('/').next().unwrap_or("");
        match ACCEPTED.iter().position(|(f, g, verdict, _)| {
            (*f == "*" || *f == rewrite || *f == p.format)
                && (*g == "*" || *g == bare)
                && *verdict == ours[k]
        }) {
            Some(i) => accepted_seen[i] = true,
            None => unaccepted.push(format!(
                "[{}] gold {:?}: hicra {}, Math-Verify {}; response ends {:?}",
                p.format,
                p.gold,
                ours[k],
                reference[k],
                &p.response[p.response.len().saturating_sub(60)..]
            )),
        }
    }
    for line in unaccepted.iter().take(200) {
        println!("{line}");
    }
    let positives = reference.iter().filter(|&&r| r).count();
    let rate = unaccepted.len() as f64 / pairs.len() as f64;
    println!(
        "{} pairs ({} correct by Math-Verify): {} accepted disagreements, {} others ({:.2}%); \
         grading time hicra {:.3} s, Math-Verify {:.1} s",
        pairs.len(),
        positives,
        accepted_seen.iter().filter(|&&s| s).count(),
        unaccepted.len(),
        100.0 * rate,
        hicra_seconds,
        mv_seconds
    );
    let stale: Vec<_> = ACCEPTED
        .iter()
        .zip(&accepted_seen)
        .filter(|(_, seen)| !**seen)
        .map(|(a, _)| a)
        .collect();
    assert!(
        stale.is_empty(),
        "accepted disagreements that no longer occur: {stale:?}"
    );
    assert!(
        rate <= MAX_DISAGREEMENT,
        "hicra disagrees with Math-Verify on {:.2}% of {} pairs",
        100.0 * rate,
        pairs.len()
    );
}

/// MATH-500 golds inside ~2,000-character responses, as `hicra bench verify` builds them:
/// the item's solution (boxes removed) repeated to length, ending with the boxed gold for
/// even items and another item's gold for odd ones.
fn long_response_pairs() -> Vec<(String, String)> {
    let path = format!("{DATA}/math500/test.jsonl");
    let content = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let items: Vec<(String, String)> = content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON");
            let answer = v["answer"].as_str().expect("answer").to_string();
            let solution = v["solution"]
                .as_str()
                .unwrap_or(&answer)
                .replace("\\boxed", "");
            (answer, solution)
        })
        .collect();
    items
        .iter()
        .enumerate()
        .map(|(i, (answer, solution))| {
            let mut body = String::new();
            while body.len() < 2_000 {
                body.push_str(solution);
                body.push('\n');
            }
            let mut cut = 2_000;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            let shown = if i % 2 == 0 {
                answer
            } else {
                &items[(i + 1) % items.len()].0
            };
            (
                format!("${answer}$"),
                format!("{body}\n\nTherefore, the final answer is $\\boxed{{{shown}}}$."),
            )
        })
        .collect()
}

/// Throughput of hicra and Math-Verify side by side (one thread each); prints, asserts
/// nothing. Run with `--ignored --nocapture`.
#[test]
#[ignore = "speed comparison: prints figures, takes about a minute"]
fn speed_vs_math_verify() {
    let pairs = long_response_pairs();
    let Some((_, mv_seconds)) = math_verify(&pairs) else {
        return;
    };
    let config = Config::default();
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        for (gold, response) in &pairs {
            std::hint::black_box(verify(&Gold::from(gold.as_str()), response, &config));
        }
    }
    let hicra_seconds = start.elapsed().as_secs_f64() / rounds as f64;
    let n = pairs.len() as f64;
    println!(
        "MATH-500 golds in ~2,000-character responses, {} pairs, flexible mode, one thread:\n  \
         hicra        {:>10.0} pairs/s\n  Math-Verify  {:>10.1} pairs/s\n  ratio        {:>10.0}x",
        pairs.len(),
        n / hicra_seconds,
        n / mv_seconds,
        mv_seconds / hicra_seconds
    );
}
