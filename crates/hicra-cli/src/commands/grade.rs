//! `hicra grade`: grades JSONL `{"gold": …, "response": "…"}` pairs with the verifier and
//! writes one `{"correct", "extracted", "reason"}` line per input line, in input order.

use anyhow::Context;
use hicra_verify::{Config, ExtractMode, Gold, verify};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `hicra grade`.
#[derive(clap::Args)]
pub struct Args {
    /// Input JSONL file: one `{"gold": …, "response": "…"}` object per line (gold: string,
    /// number or list of acceptable answers). Blank lines are skipped.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL file (written atomically); standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Answer extraction: `strict-boxed` (only `\boxed{}`) or `flexible`.
    #[arg(long, default_value = "flexible")]
    pub mode: ExtractMode,
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    graded: usize,
    correct: usize,
    malformed: usize,
}

/// Grades one input line: the output JSON object, and whether it was well formed and correct.
fn grade_line(line: &str, number: usize, config: &Config) -> (Value, Option<bool>) {
    let error = |msg: String| (json!({ "error": msg, "line": number }), None);
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return error(format!("invalid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return error("expected a JSON object with \"gold\" and \"response\"".into());
    };
    let Some(gold_value) = obj.get("gold") else {
        return error("missing field \"gold\"".into());
    };
    let gold = match Gold::from_json(gold_value) {
        Ok(g) => g,
        Err(e) => return error(format!("field \"gold\": {e}")),
    };
    let response = match obj.get("response") {
        Some(Value::String(s)) => s,
        Some(_) => return error("field \"response\" must be a string".into()),
        None => return error("missing field \"response\"".into()),
    };
    let verdict = verify(&gold, response, config);
    let correct = verdict.correct;
    (
        json!({ "correct": verdict.correct, "extracted": verdict.extracted, "reason": verdict.reason }),
        Some(correct),
    )
}

/// Grades every line of `input` into `out`.
fn grade_all(input: &PathBuf, out: &mut dyn Write, config: &Config) -> anyhow::Result<Tally> {
    let file = std::fs::File::open(input)
        .with_context(|| format!("cannot open input {}", input.display()))?;
    let mut reader = BufReader::new(file);
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {}", input.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        let (value, outcome) = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => grade_line(text.trim_end_matches(['\n', '\r']), number, config),
            Err(_) => (
                json!({ "error": "line is not valid UTF-8", "line": number }),
                None,
            ),
        };
        match outcome {
            Some(correct) => {
                tally.graded += 1;
                tally.correct += usize::from(correct);
            }
            None => tally.malformed += 1,
        }
        serde_json::to_writer(&mut *out, &value).context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    Ok(tally)
}

/// Runs `hicra grade`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::with_mode(args.mode);
    let start = Instant::now();
    let tally = match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "grade".into());
            let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut writer = BufWriter::new(file);
            let result = grade_all(&args.input, &mut writer, &config).and_then(|t| {
                writer.flush().context("writing output")?;
                Ok(t)
            });
            match result {
                Ok(t) => {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    t
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut writer = BufWriter::new(stdout.lock());
            let t = grade_all(&args.input, &mut writer, &config)?;
            writer.flush().context("writing output")?;
            t
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let accuracy = if tally.graded == 0 {
        0.0
    } else {
        tally.correct as f64 / tally.graded as f64
    };
    eprintln!(
        "graded {} pairs ({} malformed lines): accuracy {:.4} ({}/{}), {:.0} pairs/s",
        tally.graded,
        tally.malformed,
        accuracy,
        tally.correct,
        tally.graded,
        tally.graded as f64 / secs.max(1e-9)
    );
    Ok(())
}
