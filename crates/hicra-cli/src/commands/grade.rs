//! `hicra grade`: grades JSONL `{"gold": …, "response": "…"}` pairs with the verifier and
//! writes one `{"correct", "extracted", "reason"}` line per input line, in input order.
//!
//! A bad line (not UTF-8, not JSON, a missing field, a gold of the wrong type) gets an
//! `{"error", "line", "field"}` output line and a `FILE:LINE: …` warning on stderr, and the
//! other lines are still graded; with `--strict` the first bad line stops the run with that
//! error (and no output file is written).

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
    /// Stop at the first malformed line instead of reporting it and going on.
    #[arg(long)]
    pub strict: bool,
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    graded: usize,
    correct: usize,
    malformed: usize,
}

/// Why one input line could not be graded.
struct LineError {
    /// The field at fault, if one is.
    field: Option<&'static str>,
    /// What is wrong.
    message: String,
}

impl LineError {
    fn new(field: Option<&'static str>, message: impl Into<String>) -> LineError {
        LineError {
            field,
            message: message.into(),
        }
    }

    /// The output line for this error.
    fn to_json(&self, number: usize) -> Value {
        json!({ "error": self.message, "line": number, "field": self.field })
    }
}

/// Grades one input line: the output JSON object and whether the answer was correct.
fn grade_line(line: &str, config: &Config) -> Result<(Value, bool), LineError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| LineError::new(None, format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(LineError::new(
            None,
            "expected a JSON object with \"gold\" and \"response\"",
        ));
    };
    let gold_value = obj
        .get("gold")
        .ok_or_else(|| LineError::new(Some("gold"), "missing field \"gold\""))?;
    let gold = Gold::from_json(gold_value)
        .map_err(|e| LineError::new(Some("gold"), format!("field \"gold\": {e}")))?;
    let response = match obj.get("response") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(LineError::new(
                Some("response"),
                format!(
                    "field \"response\" must be a string, got {}",
                    hicra_tasks::json_type_name(other)
                ),
            ));
        }
        None => {
            return Err(LineError::new(
                Some("response"),
                "missing field \"response\"",
            ));
        }
    };
    let verdict = verify(&gold, response, config);
    Ok((
        json!({ "correct": verdict.correct, "extracted": verdict.extracted, "reason": verdict.reason }),
        verdict.correct,
    ))
}

/// Grades every line of `input` into `out`; with `strict`, the first bad line is an error.
fn grade_all(
    input: &PathBuf,
    out: &mut dyn Write,
    config: &Config,
    strict: bool,
) -> anyhow::Result<Tally> {
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
        let outcome = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => grade_line(text.trim_end_matches(['\n', '\r']), config),
            Err(e) => Err(LineError::new(
                None,
                format!(
                    "line is not valid UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )),
        };
        let value = match outcome {
            Ok((value, correct)) => {
                tally.graded += 1;
                tally.correct += usize::from(correct);
                value
            }
            Err(e) => {
                if strict {
                    anyhow::bail!("{}:{number}: {}", input.display(), e.message);
                }
                eprintln!("warning: {}:{number}: {}", input.display(), e.message);
                tally.malformed += 1;
                e.to_json(number)
            }
        };
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
            let result = grade_all(&args.input, &mut writer, &config, args.strict).and_then(|t| {
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
            let t = grade_all(&args.input, &mut writer, &config, args.strict)?;
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
