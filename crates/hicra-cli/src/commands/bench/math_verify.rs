//! Math-Verify's side of `hicra bench verify`: the same pairs timed in a Python process.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

/// The script the Python process runs.
const SCRIPT: &str = include_str!("math_verify_side.py");

/// What Math-Verify did with the pairs.
pub struct MathVerifyTiming {
    /// Its version.
    pub version: String,
    /// Pairs graded per second (one process, after a warm-up).
    pub pairs_per_second: f64,
    /// Pairs it judged correct.
    pub correct: usize,
}

/// Times Math-Verify on `pairs` (gold, response) with `python`.
pub fn time_math_verify(python: &Path, pairs: &[(&str, &str)]) -> anyhow::Result<MathVerifyTiming> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    // Not `math_verify.py`: the script's folder comes first on `sys.path`, and that name would
    // shadow the package.
    let script = dir.path().join("math_verify_side.py");
    std::fs::write(&script, SCRIPT).context("cannot write the Math-Verify script")?;
    let input = dir.path().join("pairs.jsonl");
    let mut text = String::new();
    for (gold, response) in pairs {
        text.push_str(&serde_json::json!({ "gold": gold, "response": response }).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).context("cannot write the pairs for Math-Verify")?;
    let out = Command::new(python)
        .arg(&script)
        .arg(&input)
        .output()
        .with_context(|| format!("--python {}: cannot start it", python.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => bail!(
            "--python {}: {} (pip install math-verify==0.9.0)",
            python.display(),
            stderr.trim()
        ),
        _ => bail!(
            "--python {}: Math-Verify's run failed ({}): {}",
            python.display(),
            out.status,
            stderr.trim()
        ),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last)
        .with_context(|| format!("--python {}: unexpected output {last:?}", python.display()))?;
    let field = |name: &str| {
        v[name]
            .as_f64()
            .with_context(|| format!("Math-Verify's output has no number {name:?}: {last}"))
    };
    let seconds = field("seconds")?;
    Ok(MathVerifyTiming {
        version: v["version"].as_str().unwrap_or("?").to_string(),
        pairs_per_second: field("pairs")? / seconds.max(1e-9),
        correct: field("correct")? as usize,
    })
}
