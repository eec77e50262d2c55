//! `hicra bench verify`: verifier throughput (pairs per second, one thread) on MATH-500 gold
//! answers embedded in ~500-token responses built deterministically from the real data, and,
//! with `--python`, Math-Verify's on the same pairs and the ratio.

use anyhow::Context;
use hicra_verify::hostile::hostile_pairs;
use hicra_verify::{Config, ExtractMode, Gold, verify};
use std::path::{Path, PathBuf};

use super::math_verify::time_math_verify;
use std::time::{Duration, Instant};

/// Arguments of `hicra bench verify`.
#[derive(clap::Args)]
pub struct Args {
    /// MATH-500 JSONL (fields `solution` and `answer`).
    #[arg(long, default_value = "../shared/data/math/math500/test.jsonl")]
    pub data: PathBuf,
    /// Minimum measuring time in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Answer extraction mode.
    #[arg(long, default_value = "strict-boxed")]
    pub mode: ExtractMode,
    /// A Python with Math-Verify (`pip install math-verify==0.9.0`): also time it on the same
    /// pairs (one process) and print the ratio.
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// Characters of reasoning text per response (~500 tokens at ~4 characters per token).
const RESPONSE_CHARS: usize = 2_000;

/// One benchmark pair.
struct Pair {
    gold: String,
    response: String,
    expect_correct: bool,
}

/// Builds the pairs: the item's own solution (its `\boxed` removed) padded to ~2,000
/// characters, ending with a boxed answer: the gold for even items, the next differing gold
/// for odd ones.
fn build_pairs(path: &PathBuf) -> anyhow::Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (MATH-500 JSONL)", path.display()))?;
    let mut items = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: invalid JSON", path.display(), n + 1))?;
        let answer = v["answer"].as_str().with_context(|| {
            format!(
                "{}:{}: missing string field \"answer\"",
                path.display(),
                n + 1
            )
        })?;
        let solution = v["solution"].as_str().unwrap_or(answer);
        items.push((answer.to_string(), solution.replace("\\boxed", "")));
    }
    anyhow::ensure!(!items.is_empty(), "{} holds no items", path.display());
    let mut pairs = Vec::with_capacity(items.len());
    for (i, (answer, solution)) in items.iter().enumerate() {
        let mut body = String::with_capacity(RESPONSE_CHARS + 200);
        while body.len() < RESPONSE_CHARS {
            body.push_str(solution);
            body.push('\n');
        }
        let mut cut = RESPONSE_CHARS;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        let expect_correct = i % 2 == 0;
        // A wrong answer: the next item's gold that is written differently.
        let other = (1..items.len())
            .map(|k| &items[(i + k) % items.len()].0)
            .find(|a| *a != answer)
            .unwrap_or(answer);
        let shown = if expect_correct { answer } else { other };
        let response = format!("{body}\n\nTherefore, the final answer is $\\boxed{{{shown}}}$.");
        pairs.push(Pair {
            gold: answer.clone(),
            response,
            expect_correct,
        });
    }
    Ok(pairs)
}

/// Runs `hicra bench verify`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let pairs = build_pairs(&args.data)?;
    let config = Config::with_mode(args.mode);
    // Warm-up pass, also a sanity check of the verdicts.
    let mismatched: Vec<&Pair> = pairs
        .iter()
        .filter(|p| grade(p, &config).correct != p.expect_correct)
        .collect();
    let agree = pairs.len() - mismatched.len();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut slowest = (Duration::ZERO, 0usize);
    let start = Instant::now();
    let mut count = 0usize;
    while start.elapsed().as_secs_f64() < args.seconds {
        for (i, p) in pairs.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(grade(std::hint::black_box(p), &config));
            let took = t.elapsed();
            if took > slowest.0 {
                slowest = (took, i);
            }
            latencies.push(took);
        }
        count += pairs.len();
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let mean_len = pairs.iter().map(|p| p.response.len()).sum::<usize>() / pairs.len();
    println!(
        "verifier benchmark: {} MATH-500 pairs, responses ~{mean_len} bytes, mode {:?}, 1 thread",
        pairs.len(),
        args.mode
    );
    println!(
        "verdicts as constructed: {agree}/{} (even items correct, odd items wrong)",
        pairs.len()
    );
    for p in mismatched.iter().take(5) {
        let tail = &p.response[p.response.rfind("Therefore").unwrap_or(0)..];
        println!(
            "  unexpected verdict: gold {:?}, response ends {tail:?}",
            p.gold
        );
    }
    let rate = count as f64 / secs;
    println!("pairs/s: {rate:.0}");
    println!(
        "latency: mean {:.1} us, p50 {:?}, p99 {:?}, max {:?}",
        secs * 1e6 / count as f64,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "slowest pair: item {} (gold {:?})",
        slowest.1, pairs[slowest.1].gold
    );
    if let Some(python) = &args.python {
        compare_with_math_verify(python, &pairs, rate)?;
    }
    report_hostile_calls();
    Ok(())
}

/// One check as a reward function makes it: the gold read from its text, then the response.
fn grade(p: &Pair, config: &Config) -> hicra_verify::Verdict {
    verify(&Gold::from(p.gold.as_str()), &p.response, config)
}

/// Times Math-Verify on the same pairs and prints its rate and hicra's ratio to it.
fn compare_with_math_verify(python: &Path, pairs: &[Pair], rate: f64) -> anyhow::Result<()> {
    let texts: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.gold.as_str(), p.response.as_str()))
        .collect();
    let mv = time_math_verify(python, &texts)?;
    println!(
        "Math-Verify {}: {:.1} pairs/s (parse + verify, 1 process, after a warm-up); judged \
         {}/{} correct",
        mv.version,
        mv.pairs_per_second,
        mv.correct,
        pairs.len()
    );
    println!(
        "hicra / Math-Verify: {:.0}x",
        rate / mv.pairs_per_second.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// The per-call bound the verifier is built to (the operation budget ends every hostile
/// input well before it).
const CALL_BOUND: Duration = Duration::from_millis(50);

/// Times every hostile pair in both extraction modes (best of three, so a descheduled run
/// does not count) and prints the slowest against [`CALL_BOUND`].
fn report_hostile_calls() {
    let mut slowest = (Duration::ZERO, 0usize, ExtractMode::StrictBoxed);
    let cases = hostile_pairs();
    for (k, (gold, response)) in cases.iter().enumerate() {
        for mode in [ExtractMode::StrictBoxed, ExtractMode::Flexible] {
            let config = Config::with_mode(mode);
            let gold = Gold::from(gold.as_str());
            let best = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(verify(&gold, response, &config));
                    t.elapsed()
                })
                .min()
                .unwrap_or_default();
            if best > slowest.0 {
                slowest = (best, k, mode);
            }
        }
    }
    let (took, case, mode) = slowest;
    println!(
        "hostile inputs: {} pairs x 2 modes, slowest call {took:?} (case {case}, {mode:?}); \
         bound {CALL_BOUND:?}: {}",
        cases.len(),
        if took <= CALL_BOUND { "within" } else { "OVER" }
    );
}
