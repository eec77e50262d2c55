//! `hicra grade`: grades JSONL `{"gold": …, "response": "…"}` pairs with the verifier and
//! writes one `{"correct", "extracted", "reason"}` line per input line, in input order.
//!
//! A bad line (not UTF-8, not JSON, a missing field, a gold of the wrong type) gets an
//! `{"error", "line", "field"}` output line and a `FILE:LINE: …` warning on stderr, and the
//! other lines are still graded; with `--strict` the first bad line stops the run with that
//! error (and no output file is written). A UTF-8 byte order mark at the start is ignored.
//!
//! `--output` is written atomically; it is never the input (also through links), and an
//! existing file there is replaced only with `--force`.

use anyhow::Context;
use hicra_verify::{Config, ExtractMode, Gold, verify};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `hicra grade`.
#[derive(clap::Args)]
pub struct Args {
    /// Input JSONL file: one `{"gold": …, "response": "…"}` object per line (gold: string,
    /// number or list of acceptable answers). Blank lines are skipped.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL file (written atomically; never the input); standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an existing `--output` file.
    #[arg(long)]
    pub force: bool,
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
    input: &Path,
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
        let line = if number == 1 {
            hicra_tasks::strip_bom(&buf)
        } else {
            &buf[..]
        };
        let outcome = match std::str::from_utf8(line) {
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

/// Whether two paths name the same file (through links, hard or symbolic).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt;
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => a.canonicalize().ok() == b.canonicalize().ok(),
        _ => false,
    }
}

/// Refuses an output that is the input, or an existing file without `--force`.
fn check_output(input: &Path, output: &Path, force: bool) -> anyhow::Result<()> {
    if same_file(input, output) {
        anyhow::bail!(
            "--output {} is the input file {}: grading would destroy it; name another file",
            output.display(),
            input.display()
        );
    }
    if output.exists() && !force {
        anyhow::bail!(
            "--output {} already exists: add --force to replace it, or name another file",
            output.display()
        );
    }
    Ok(())
}

/// Grades into `path` through a temporary sibling renamed into place (removed on failure).
fn grade_to_file(args: &Args, path: &Path, config: &Config) -> anyhow::Result<Tally> {
    check_output(&args.input, path, args.force)?;
    hicra_model::io::atomic::clean_stale_for(path);
    let tmp = hicra_model::io::atomic::temp_path(path);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut writer = BufWriter::new(file);
    let result = grade_all(&args.input, &mut writer, config, args.strict).and_then(|t| {
        writer.flush().context("writing output")?;
        writer
            .get_ref()
            .sync_all()
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(t)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `hicra grade`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::with_mode(args.mode);
    let start = Instant::now();
    let tally = match &args.output {
        Some(path) => grade_to_file(&args, path, &config)?,
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
